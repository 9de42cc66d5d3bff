/* One rule for every program's exit status (lib/cli.h): 2 when what was
 * typed is wrong, 3 when it is right but the program cannot start. Every
 * flag a program's --help lists must have a row here, so a new flag comes
 * with the value it refuses; each bad value must exit 2 and name the flag
 * or the value. Then the "cannot start" cases: a port in use, a scheduler
 * that does not answer. */
#include "harness.h"

#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define EXIT_WITHIN_MS 15000
#define MAX_ARGS 24

/* A flag and a value the program must refuse; NULL when any text is a
 * valid value (a name, or a file only written at the end). */
typedef struct flag_case {
  const char *flag;
  const char *bad;
} flag_case_t;

#define WORKLOAD_FLAGS                                                       \
  {"--workload", "nope"}, {"--rate", "x"}, {"--rate-end", "-1"},             \
      {"--burst", "1:2"}, {"--duration", "x"}, {"--speedup", "0"},           \
      {"--copies", "0"},                                                     \
      {"--max-requests", "x"}, {"--seed", "x"}, {"--class-mix", "urgent=1"}, \
      {"--prompt-tokens", "lognormal:x"}, {"--output-tokens", "0"},          \
      {"--block-size", "0"}, {"--shared-prefix", "2"}, {"--slo", "x"},       \
      {"--sessions", "x"}, {"--session-rate", "-1"}, {"--turns", "x"},       \
      {"--steps", "x"}, {"--think-time", "x"}, {"--tool-time", "x"},         \
      {"--max-context", "x"}, {"--set", "nokey"}, {"--record", NULL}

static const flag_case_t k_scheduler[] = {
    {"--clients", "bogus"},
    {"--workers", "tcp://127.0.0.1:x"},
    {"--policy", "fastest"},
    {"--heartbeat-ms", "5"},
    {"--heartbeat-miss", "x"},
    {"--queue-limit", "-1"},
    {"--queue-timeout-ms", "0"},
    {"--max-attempts", "0"},
    {"--progress-timeout-ms", "x"},
    {"--slo", "interactive=x"},
    {"--latency-weight", "x"},
    {"--cache-balance-abs", "x"},
    {"--cache-balance-rel", "-1"},
    {"--cache-match-threshold", "2"},
    {"--kv-prefill-scale", "x"},
    {"--kv-overlap-credit", "1.5"},
    {"--kv-request-weight", "-1"},
    {"--kv-temperature", "x"},
    {"--score-queue-weight", "x"},
    {"--score-kv-weight", "-1"},
    {"--score-prefix-weight", "x"},
    {"--kwh-price", "x"},
    {"--http", "localhost:9080x"},
    {"--http-max-body", "1"},
    {"--http-max-conns", "-1"},
    {"--api-keys", "/nonexistent/keys.yaml"},
    {"--profiles", "/nonexistent/profiles.yaml"},
    {"--max-msg-bytes", "1"},
    {"--auth", "maybe"},
    {"--keys", ""},
    {"--key", "/nonexistent/scheduler.key_secret"},
    {"--log-level", "loud"},
    {"--links", "tpu>gpu=fast"},
    {NULL, NULL},
};

static const flag_case_t k_worker[] = {
    {"--scheduler", "bogus"},
    {"--id", ""},
    {"--profile", "gpu-h900"},
    {"--profiles", "/nonexistent/profiles.yaml"},
    {"--backend", "vllm"},
    {"--model", NULL}, /* replaced by an overlong name below */
    {"--capacity", "0"},
    {"--drain-timeout-ms", "soon"},
    {"--heartbeat-ms", "1"},
    {"--kwh-price", "x"},
    {"--max-msg-bytes", "1"},
    {"--auth", "maybe"},
    {"--keys", ""},
    {"--key", "/nonexistent/worker.key_secret"},
    {"--server-key", "/nonexistent/scheduler.key"},
    {"--log-level", "loud"},
    {"--role", "all"},
    {NULL, NULL},
};

static const flag_case_t k_cluster[] = {
    {"--bin-dir", NULL}, /* a missing program: cannot start, below */
    {"--clients", "bogus"},
    {"--workers", "5556"},
    {"--http", "nowhere"},
    {"--log-level", "loud"},
    {"--grace-ms", "soon"},
    {NULL, NULL},
};

static const flag_case_t k_loadgen[] = {
    {"--scheduler", "bogus"},
    {"--model", NULL},
    {"--wait-workers", "x"},
    {"--wait-timeout", "0"},
    WORKLOAD_FLAGS,
    {"--drain", "-1"},
    {"--chars-per-token", "-1"},
    {"--report-json", NULL},
    {"--report-html", NULL},
    {"--policy-label", NULL},
    {"--auth", "maybe"},
    {"--keys", ""},
    {"--key", "/nonexistent/client.key_secret"},
    {"--server-key", "/nonexistent/scheduler.key"},
    {"--log-level", "loud"},
    {NULL, NULL},
};

static const flag_case_t k_sim[] = {
    {"--cluster", "/nonexistent/cluster.yaml"},
    {"--pool", "gpu=x"},
    {"--pool", "gpu:fast=1"},
    {"--links", "tpu>gpu=-1"},
    {"--policy", "fastest"},
    {"--heartbeat-ms", "x"},
    {"--queue-limit", "x"},
    {"--queue-timeout-ms", "x"},
    {"--max-attempts", "x"},
    {"--latency-weight", "x"},
    {"--cache-balance-abs", "x"},
    {"--cache-balance-rel", "-1"},
    {"--cache-match-threshold", "2"},
    {"--kv-prefill-scale", "x"},
    {"--kv-overlap-credit", "1.5"},
    {"--kv-request-weight", "-1"},
    {"--kv-temperature", "x"},
    {"--score-queue-weight", "x"},
    {"--score-kv-weight", "-1"},
    {"--score-prefix-weight", "x"},
    {"--delay-us", "x"},
    {"--kwh-price", "x"},
    {"--model", NULL},
    {"--drain", "x"},
    WORKLOAD_FLAGS,
    {"--compare", "fastest"},
    {"--sweep", NULL},
    {"--sweep-grid", "gpu=x"},
    {"--capacity", NULL},
    {"--target", "2"},
    {"--seeds", "0"},
    {"--min-requests", "x"},
    {"--scale-by", "stretch"},
    {"--matrix", NULL},
    {"--matrix-workload", "nope"},
    {"--matrix-pool", "x"},
    {"--matrix-md", NULL},
    {"--report-json", NULL},
    {"--report-html", NULL},
    {"--log-level", "loud"},
    {NULL, NULL},
};

static const flag_case_t k_calibrate[] = {
    {"--url", "ftp://x"},
    {"--model", NULL},
    {"--api-key-env", "INFSCHED_NO_SUCH_VARIABLE"},
    {"--api", "rest"},
    {"--ignore-eos", NULL},
    {"--timeout", "0"},
    {"--prompts", "32,,64"},
    {"--prefix", "100"},
    {"--suffixes", "0"},
    {"--max-concurrency", "1"},
    {"--output-tokens", "2"},
    {"--decode-prompt", "0"},
    {"--repeats", "x"},
    {"--decode-repeats", "0"},
    {"--chars-per-token", "0"},
    {"--base", "nope"},
    {"--profiles", "/nonexistent/profiles.yaml"},
    {"--set", "speed=1"},
    {"--name", "a b"},
    {"--date", ""},
    {"--out", NULL},
    {NULL, NULL},
};

typedef struct fixture {
  char *dir;
  char log[600];
  char clients[64], workers[64], unused[64];
  char cluster[600];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  snprintf(f->log, sizeof f->log, "%s/out.log", f->dir);
  snprintf(f->clients, sizeof f->clients, "tcp://127.0.0.1:%d",
           harness_free_port());
  snprintf(f->workers, sizeof f->workers, "tcp://127.0.0.1:%d",
           harness_free_port());
  snprintf(f->unused, sizeof f->unused, "tcp://127.0.0.1:%d",
           harness_free_port());
  snprintf(f->cluster, sizeof f->cluster, "%s/cluster.yaml", f->dir);
  char text[1024];
  snprintf(text, sizeof text,
           "profiles: %s\nscheduler:\n  http: \"off\"\nworkers:\n"
           "  - name: gpu\n    profile: gpu-h100\n",
           harness_source("configs/profiles.yaml"));
  assert_int_equal(harness_write_file(f->cluster, text, 0644), 0);
  *state = f;
  return 0;
}

/* Runs argv to its end with output in f->log (emptied first) and returns
 * its exit status; fails the test if it does not exit in time. */
static int run(fixture_t *f, char *const argv[]) {
  unlink(f->log);
  harness_proc_t *p = harness_spawn(f->log, argv);
  assert_non_null(p);
  int status;
  if (harness_wait(p, EXIT_WITHIN_MS, &status) != 0) {
    harness_stop(&p);
    fail_msg("%s did not exit", argv[0]);
  }
  harness_stop(&p);
  if (!WIFEXITED(status))
    fail_msg("%s ended by signal %d", argv[0], WTERMSIG(status));
  return WEXITSTATUS(status);
}

/* The flags --help lists (each "--name" that starts a help line). */
static size_t help_flags(fixture_t *f, const char *prog, char flags[][40],
                         size_t max) {
  char *argv[] = {(char *)harness_bin(prog), "--help", NULL};
  assert_int_equal(run(f, argv), 0);
  char *text = harness_read_file(f->log);
  assert_non_null(text);
  size_t n = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    char *s = line + strspn(line, " ");
    if (strncmp(s, "-h, ", 4) == 0)
      s += 4;
    if (strncmp(s, "--", 2) != 0 || s == line)
      continue;
    size_t len = strcspn(s, " ");
    assert_true(len < 40 && n < max);
    memcpy(flags[n], s, len);
    flags[n][len] = '\0';
    bool dup = false;
    for (size_t i = 0; i < n; i++)
      dup = dup || strcmp(flags[i], flags[n]) == 0;
    n += !dup && strcmp(flags[n], "--help") != 0 &&
         strcmp(flags[n], "--version") != 0;
  }
  free(text);
  return n;
}

/* Every flag in --help has a case, every case is a flag of --help, and
 * each bad value exits 2 naming the flag or the value. base holds the
 * arguments that make the rest of the command line valid. */
static void check_program(fixture_t *f, const char *prog,
                          const flag_case_t *cases, const char *const *base) {
  char flags[96][40];
  size_t n = help_flags(f, prog, flags, 96);
  size_t n_cases = 0;
  for (const flag_case_t *c = cases; c->flag; c++, n_cases++) {
    bool listed = false;
    for (size_t i = 0; i < n; i++)
      listed = listed || strcmp(flags[i], c->flag) == 0;
    if (!listed)
      fail_msg("%s: %s has a case but is not in --help", prog, c->flag);
  }
  for (size_t i = 0; i < n; i++) {
    bool found = false;
    for (const flag_case_t *c = cases; c->flag && !found; c++)
      found = strcmp(flags[i], c->flag) == 0;
    if (!found)
      fail_msg("%s: %s is in --help but has no case here", prog, flags[i]);
  }
  assert_true(n_cases >= n);

  char longname[400];
  memset(longname, 'm', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  for (const flag_case_t *c = cases; c->flag; c++) {
    const char *bad = c->bad;
    if (!bad && strcmp(prog, "infsched-worker") == 0 &&
        strcmp(c->flag, "--model") == 0)
      bad = longname;
    if (!bad)
      continue;
    char *argv[MAX_ARGS];
    int k = 0;
    argv[k++] = (char *)harness_bin(prog);
    for (const char *const *b = base; *b; b++)
      argv[k++] = (char *)*b;
    argv[k++] = (char *)c->flag;
    argv[k++] = (char *)bad;
    argv[k] = NULL;
    int code = run(f, argv);
    char *out = harness_read_file(f->log);
    if (code != 2)
      fail_msg("%s %s '%.40s': exit %d, not 2: %s", prog, c->flag, bad, code,
               out ? out : "");
    const char *named = *bad ? bad : c->flag;
    if (!out || (!strstr(out, c->flag) && !strstr(out, named)))
      fail_msg("%s %s '%.40s': the message names neither: %s", prog, c->flag,
               bad, out ? out : "");
    free(out);
  }
}

static void test_bad_values_exit_2(void **state) {
  fixture_t *f = *state;
  const char *sched[] = {"--clients", f->clients, "--workers", f->workers,
                         "--http",    "off",      NULL};
  check_program(f, "infsched-scheduler", k_scheduler, sched);
  const char *worker[] = {"--scheduler", f->workers, "--profiles",
                          harness_source("configs/profiles.yaml"), NULL};
  check_program(f, "infsched-worker", k_worker, worker);
  const char *cluster[] = {"up", f->cluster, NULL};
  check_program(f, "infsched-cluster", k_cluster, cluster);
  const char *loadgen[] = {"--scheduler", f->unused, "--max-requests", "1",
                           NULL};
  check_program(f, "infsched-loadgen", k_loadgen, loadgen);
  const char *sim[] = {"--cluster", f->cluster, "--max-requests", "1", NULL};
  check_program(f, "infsched-sim", k_sim, sim);
  char url[96];
  snprintf(url, sizeof url, "http://%s/v1", f->unused + strlen("tcp://"));
  const char *calibrate[] = {"--url",  url,        "--model",    "m",
                             "--base", "gpu-h100", "--profiles",
                             harness_source("configs/profiles.yaml"), NULL};
  check_program(f, "infsched-calibrate", k_calibrate, calibrate);
}

/* Right values the machine refuses: 3. */
static void test_cannot_start_exits_3(void **state) {
  fixture_t *f = *state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 1), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  char taken[64], http[64];
  snprintf(taken, sizeof taken, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
  snprintf(http, sizeof http, "127.0.0.1:%d", ntohs(a.sin_port));

  char *sched_clients[] = {(char *)harness_bin("infsched-scheduler"),
                           "--clients",
                           taken,
                           "--workers",
                           f->workers,
                           "--http",
                           "off",
                           NULL};
  assert_int_equal(run(f, sched_clients), 3);
  assert_int_equal(harness_wait_log(f->log, "Address already in use", 0), 0);
  char *sched_http[] = {(char *)harness_bin("infsched-scheduler"),
                        "--clients",
                        f->clients,
                        "--workers",
                        f->workers,
                        "--http",
                        http,
                        NULL};
  assert_int_equal(run(f, sched_http), 3);
  char *cluster[] = {(char *)harness_bin("infsched-cluster"),
                     "up",
                     f->cluster,
                     "--clients",
                     taken,
                     NULL};
  assert_int_equal(run(f, cluster), 3);
  assert_int_equal(harness_wait_log(f->log, "Address already in use", 0), 0);
  char *nobin[] = {(char *)harness_bin("infsched-cluster"),
                   "up",
                   f->cluster,
                   "--bin-dir",
                   f->dir,
                   NULL};
  assert_int_equal(run(f, nobin), 3);
  close(fd);

  /* Nobody at the address: loadgen says so and sends nothing. */
  char *loadgen[] = {(char *)harness_bin("infsched-loadgen"),
                     "--scheduler",
                     f->unused,
                     "--max-requests",
                     "3",
                     NULL};
  assert_int_equal(run(f, loadgen), 3);
  assert_int_equal(harness_wait_log(f->log, "is unreachable", 0), 0);
  assert_int_equal(harness_count_log(f->log, "lost"), 0);

  /* Nobody serving at the URL: calibrate says so after its first
   * request. */
  char url[96];
  snprintf(url, sizeof url, "http://%s/v1", f->unused + strlen("tcp://"));
  char *calibrate[] = {(char *)harness_bin("infsched-calibrate"),
                       "--url",
                       url,
                       "--model",
                       "m",
                       "--base",
                       "gpu-h100",
                       "--profiles",
                       (char *)harness_source("configs/profiles.yaml"),
                       NULL};
  assert_int_equal(run(f, calibrate), 3);
  assert_int_equal(harness_wait_log(f->log, "does not answer", 0), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_bad_values_exit_2, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_cannot_start_exits_3, setup,
                                      harness_fixture_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
