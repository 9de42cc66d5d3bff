/* infsched-cluster end to end: refusals that must start nothing, start-up
 * failures, supervision and shutdown with stand-in daemons (shell scripts),
 * and a real cluster once infsched-scheduler and infsched-worker are built. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define EXIT_TIMEOUT_MS 20000
#define EVENT_TIMEOUT_MS 20000
#define MAX_PIDS 64
/* How long the launcher's children may outlive it, and hold its ports. */
#define ORPHAN_DEADLINE_MS 5000

extern char **environ;

typedef struct fixture {
  char *dir;
  char log[512];
  char file[512];    /* the cluster file */
  char bin[512];     /* stand-in daemons */
  char spawned[512]; /* each stand-in appends its name here */
  char clients[64];
  char workers[64];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  snprintf(f->log, sizeof f->log, "%s/cluster.log", f->dir);
  snprintf(f->file, sizeof f->file, "%s/cluster.yaml", f->dir);
  snprintf(f->bin, sizeof f->bin, "%s/bin", f->dir);
  snprintf(f->spawned, sizeof f->spawned, "%s/spawned", f->dir);
  int cport = harness_free_port(), wport;
  do
    wport = harness_free_port();
  while (wport == cport && cport > 0);
  snprintf(f->clients, sizeof f->clients, "tcp://127.0.0.1:%d", cport);
  snprintf(f->workers, sizeof f->workers, "tcp://127.0.0.1:%d", wport);
  *state = f;
  return 0;
}

/* Writes infsched-scheduler and infsched-worker scripts into f->bin. Both
 * note that they ran; the worker then runs worker_body. */
static void write_stand_ins(fixture_t *f, const char *worker_body) {
  char path[600], text[2048];
  assert_true(mkdir(f->bin, 0755) == 0 || errno == EEXIST);
  snprintf(path, sizeof path, "%s/infsched-scheduler", f->bin);
  snprintf(text, sizeof text,
           "#!/bin/sh\n"
           "echo scheduler >> '%s'\n"
           "echo \"scheduler args: $*\"\n"
           "trap 'echo scheduler stopping; exit 0' TERM INT\n"
           "touch '%s.ready'\n"
           "while :; do sleep 0.05; done\n",
           f->spawned, f->spawned);
  assert_int_equal(harness_write_file(path, text, 0755), 0);
  snprintf(path, sizeof path, "%s/infsched-worker", f->bin);
  snprintf(text, sizeof text, "#!/bin/sh\necho worker >> '%s'\n%s\n",
           f->spawned, worker_body);
  assert_int_equal(harness_write_file(path, text, 0755), 0);
}

/* A worker that prints a line in two pieces and runs until SIGTERM. */
static const char *const k_worker_ok =
    "printf 'worker '\n"
    "sleep 0.05\n"
    "echo \"up as $4\"\n"
    "trap 'echo worker stopping; exit 0' TERM INT\n"
    "while :; do sleep 0.05; done";

static void write_cluster(fixture_t *f, const char *workers_yaml) {
  char text[4096];
  snprintf(text, sizeof text,
           "profiles: %s\n"
           "scheduler:\n"
           "  policy: least_loaded\n"
           "  heartbeat_ms: 100\n"
           "workers:\n%s",
           harness_source("configs/profiles.yaml"), workers_yaml);
  assert_int_equal(harness_write_file(f->file, text, 0644), 0);
}

static const char *const k_two_workers = "  - name: a\n"
                                         "    profile: gpu-h100\n"
                                         "    count: 2\n";

/* Starts "infsched-cluster up" on the fixture's file, ports and bin dir,
 * followed by up to two extra arguments. */
static harness_proc_t *start_cluster(fixture_t *f, const char *bin_dir,
                                     const char *x1, const char *x2) {
  char *argv[16];
  int n = 0;
  argv[n++] = (char *)harness_bin("infsched-cluster");
  argv[n++] = "up";
  argv[n++] = f->file;
  argv[n++] = "--bin-dir";
  argv[n++] = (char *)bin_dir;
  argv[n++] = "--clients";
  argv[n++] = f->clients;
  argv[n++] = "--workers";
  argv[n++] = f->workers;
  argv[n++] = "--http";
  argv[n++] = "off";
  if (x1)
    argv[n++] = (char *)x1;
  if (x2)
    argv[n++] = (char *)x2;
  argv[n] = NULL;
  harness_proc_t *p = harness_spawn(f->log, argv);
  assert_non_null(p);
  return p;
}

static int exit_code(harness_proc_t *p) {
  int status = 0;
  assert_int_equal(harness_wait(p, EXIT_TIMEOUT_MS, &status), 0);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void assert_log_has(const fixture_t *f, const char *needle) {
  if (harness_count_log(f->log, needle) > 0)
    return;
  char *text = harness_read_file(f->log);
  fail_msg("log lacks \"%s\"; it holds:\n%s", needle, text ? text : "");
  free(text);
}

/* Pids the launcher reported as "started NAME pid N"; with name, only that
 * child's. Returns how many were found. */
static int logged_pids(const fixture_t *f, const char *name, pid_t *pids,
                       int max) {
  char *text = harness_read_file(f->log);
  int n = 0;
  for (const char *s = text; s && n < max && (s = strstr(s, "started ")); s++) {
    char who[128];
    int pid;
    if (sscanf(s, "started %127s pid %d", who, &pid) == 2 &&
        (!name || strcmp(who, name) == 0))
      pids[n++] = (pid_t)pid;
  }
  free(text);
  return n;
}

static void assert_all_gone(const fixture_t *f) {
  pid_t pids[MAX_PIDS];
  int n = logged_pids(f, NULL, pids, MAX_PIDS);
  for (int i = 0; i < n; i++) {
    errno = 0;
    if (kill(pids[i], 0) == 0 || errno != ESRCH)
      fail_msg("child pid %d is still there", (int)pids[i]);
  }
}

/* --- refusals: nothing may be spawned --- */

typedef struct bad_case {
  const char *yaml; /* after "profiles: ...\n" */
  const char *expect;
} bad_case_t;

static void test_bad_file_starts_nothing(void **state) {
  fixture_t *f = *state;
  static const bad_case_t cases[] = {
      {"scheduler:\n  policy: [least_loaded\nworkers: []\n",
       "cluster.yaml:4: "},
      {"scheduler:\n  heartbeat-ms: 100\nworkers: []\n",
       "cluster.yaml:3: scheduler: unknown key 'heartbeat-ms'"},
      {"scheduler: {}\n", "cluster.yaml:1: cluster: 'workers' is missing"},
      {"scheduler: {}\nworkers:\n  - name: a\n    profile: gpu-h100\n"
       "    count: 0\n",
       "cluster.yaml:6: workers[0].count: 0 is out of range"},
      {"scheduler: {}\nworkers:\n  - name: a\n    count: 1\n",
       "cluster.yaml:4: workers[0]: 'profile' is missing"},
      {"scheduler:\n  clients: 5555\nworkers: []\n",
       "cluster.yaml:3: scheduler.clients: '5555' is not an endpoint"},
      {"scheduler: {}\nworkers:\n  - name: a\n    profile: gpu-h100\n"
       "  - name: b\n    profile: gpu-h200\n",
       "cluster.yaml:7: workers[1].profile: unknown profile 'gpu-h200'"},
  };
  char text[2048];
  write_stand_ins(f, k_worker_ok);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(text, sizeof text, "profiles: %s\n%s",
             harness_source("configs/profiles.yaml"), cases[i].yaml);
    assert_int_equal(harness_write_file(f->file, text, 0644), 0);
    unlink(f->log);
    harness_proc_t *p = start_cluster(f, f->bin, NULL, NULL);
    assert_int_equal(exit_code(p), 2);
    harness_stop(&p);
    assert_log_has(f, cases[i].expect);
    assert_int_equal(access(f->spawned, F_OK), -1);
  }
}

static void test_missing_binary(void **state) {
  fixture_t *f = *state;
  char empty[600];
  snprintf(empty, sizeof empty, "%s/empty", f->dir);
  assert_int_equal(mkdir(empty, 0755), 0);
  write_cluster(f, k_two_workers);
  harness_proc_t *p = start_cluster(f, empty, NULL, NULL);
  assert_int_equal(exit_code(p), 3);
  harness_stop(&p);
  assert_log_has(f, "infsched-scheduler: No such file or directory");
}

static void test_address_in_use(void **state) {
  fixture_t *f = *state;
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(fd, 1), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  snprintf(f->workers, sizeof f->workers, "tcp://127.0.0.1:%d",
           ntohs(sa.sin_port));

  write_stand_ins(f, k_worker_ok);
  write_cluster(f, k_two_workers);
  harness_proc_t *p = start_cluster(f, f->bin, NULL, NULL);
  int code = exit_code(p);
  close(fd);
  assert_int_equal(code, 3);
  harness_stop(&p);
  assert_log_has(f, "Address already in use");
  assert_int_equal(access(f->spawned, F_OK), -1);
}

static void test_usage_errors(void **state) {
  fixture_t *f = *state;
  write_cluster(f, k_two_workers);
  const char *bad[][2] = {
      {"--frobnicate", NULL}, {"--log-level", "loud"}, {"--grace-ms", "soon"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    harness_proc_t *p = start_cluster(f, f->bin, bad[i][0], bad[i][1]);
    assert_int_equal(exit_code(p), 2);
    harness_stop(&p);
  }
  assert_log_has(f, "unknown option '--frobnicate'");
  assert_log_has(f, "--log-level: unknown level 'loud' (debug, info, warn "
                    "or error)");

  /* No command: the message names every command there is. */
  char *none[] = {(char *)harness_bin("infsched-cluster"), NULL};
  harness_proc_t *p = harness_spawn(f->log, none);
  assert_non_null(p);
  assert_int_equal(exit_code(p), 2);
  harness_stop(&p);
  assert_log_has(f, "missing command (up, check, status or settings)");

  char *help[] = {(char *)harness_bin("infsched-cluster"), "--help", NULL};
  p = harness_spawn(f->log, help);
  assert_non_null(p);
  assert_int_equal(exit_code(p), 0);
  harness_stop(&p);
  assert_log_has(f, "Usage: infsched-cluster up FILE");
}

/* --- supervision with stand-in daemons --- */

static void test_startup_failure_stops_everything(void **state) {
  fixture_t *f = *state;
  /* The worker fails only once the scheduler can answer SIGTERM, so the
   * test sees the launcher stop a running scheduler. */
  char body[1024];
  snprintf(body, sizeof body,
           "while [ ! -e '%s.ready' ]; do sleep 0.01; done\n"
           "echo \"error infsched-worker: unknown profile\" >&2\n"
           "exit 3",
           f->spawned);
  write_stand_ins(f, body);
  write_cluster(f, k_two_workers);
  harness_proc_t *p = start_cluster(f, f->bin, NULL, NULL);
  assert_int_equal(exit_code(p), 3);
  harness_stop(&p);
  assert_log_has(f, "could not start (exit status 3); its last line: "
                    "error infsched-worker: unknown profile");
  /* Not restarted: one start per worker. */
  assert_int_equal(harness_count_log(f->log, "started a-0 pid"), 1);
  assert_int_equal(harness_count_log(f->log, "restarting"), 0);
  assert_log_has(f, "[scheduler] scheduler stopping");
  assert_all_gone(f);
}

static void test_restart_and_clean_stop(void **state) {
  fixture_t *f = *state;
  pid_t pids[MAX_PIDS];
  write_stand_ins(f, k_worker_ok);
  write_cluster(f, k_two_workers);
  harness_proc_t *p = start_cluster(f, f->bin, NULL, NULL);
  assert_int_equal(
      harness_wait_log(f->log, "cluster up: scheduler at ", EVENT_TIMEOUT_MS),
      0);
  /* Output arrives prefixed, and a line printed in pieces stays whole. */
  assert_int_equal(
      harness_wait_log(f->log, "[a-0] worker up as a-0", EVENT_TIMEOUT_MS), 0);
  assert_log_has(f, "[scheduler] scheduler args: --clients ");

  assert_int_equal(logged_pids(f, "a-0", pids, MAX_PIDS), 1);
  assert_int_equal(kill(pids[0], SIGKILL), 0);
  assert_int_equal(
      harness_wait_log(f->log, "restarting a-0 in 250 ms", EVENT_TIMEOUT_MS),
      0);
  assert_int_equal(
      harness_wait_log_count(f->log, "started a-0 pid", 2, EVENT_TIMEOUT_MS),
      0);
  assert_int_equal(harness_wait_log_count(f->log, "[a-0] worker up as a-0", 2,
                                          EVENT_TIMEOUT_MS),
                   0);

  harness_kill(p, SIGTERM);
  assert_int_equal(exit_code(p), 0);
  harness_stop(&p);
  assert_log_has(f, "[a-1] worker stopping");
  assert_log_has(f, "cluster stopped");
  assert_all_gone(f);
}

static void test_stop_escalates_to_sigkill(void **state) {
  fixture_t *f = *state;
  write_stand_ins(f, "trap '' TERM\necho stubborn\n"
                     "while :; do sleep 0.05; done");
  /* The workers' drain deadline comes before the grace. */
  write_cluster(f, "  - name: a\n"
                   "    profile: gpu-h100\n"
                   "    count: 2\n"
                   "    drain_timeout_ms: 200\n");
  harness_proc_t *p = start_cluster(f, f->bin, "--grace-ms", "300");
  assert_int_equal(
      harness_wait_log_count(f->log, "stubborn", 2, EVENT_TIMEOUT_MS), 0);
  harness_kill(p, SIGINT);
  assert_int_equal(exit_code(p), 0);
  harness_stop(&p);
  assert_log_has(f, "still running after 500 ms; sending SIGKILL");
  assert_log_has(f, "a-0 killed by signal 9");
  assert_all_gone(f);
}

/* --- the real daemons --- */

/* The directory of the daemons, into dir; false when they are not built. */
static bool daemons_dir(char *dir, size_t len) {
  const char *sched = harness_bin("infsched-scheduler");
  if (access(sched, X_OK) != 0 ||
      access(harness_bin("infsched-worker"), X_OK) != 0)
    return false;
  snprintf(dir, len, "%s", sched);
  *strrchr(dir, '/') = '\0';
  return true;
}

/* "infsched-cluster status" lists each worker with the role its entry
 * gave it. */
static void assert_status_roles(fixture_t *f) {
  char out[600];
  snprintf(out, sizeof out, "%s/status.out", f->dir);
  char *argv[] = {(char *)harness_bin("infsched-cluster"), "status", f->file,
                  "--clients", f->clients, NULL};
  harness_proc_t *p = harness_spawn(out, argv);
  assert_non_null(p);
  assert_int_equal(exit_code(p), 0);
  harness_stop(&p);
  char *text = harness_read_file(out);
  assert_non_null(text);
  static const struct {
    const char *worker, *role;
  } want[] = {{"gpu-0", "both"}, {"gpu-1", "both"}, {"sram", "decode"},
              {"tpu", "prefill"}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    char *line = text;
    while ((line = strstr(line, "\n")) &&
           strncmp(line + 1, want[i].worker, strlen(want[i].worker)) != 0)
      line++;
    assert_non_null(line);
    char *end = strchr(line + 1, '\n');
    assert_non_null(end);
    *end = '\0';
    assert_non_null(strstr(line, want[i].role));
    *end = '\n';
  }
  free(text);
}

static void test_real_cluster(void **state) {
  fixture_t *f = *state;
  pid_t pids[MAX_PIDS];
  char bin_dir[600];
  if (!daemons_dir(bin_dir, sizeof bin_dir))
    skip();

  write_cluster(f, "  - name: gpu\n    profile: gpu-h100\n    count: 2\n"
                   "  - name: sram\n    profile: sram-wse3\n"
                   "    role: decode\n"
                   "  - name: tpu\n    profile: tpu-v6e\n    role: prefill\n");
  harness_proc_t *p = start_cluster(f, bin_dir, NULL, NULL);
  assert_int_equal(harness_wait_log(f->log,
                                    "cluster ready: 4/4 workers registered",
                                    EVENT_TIMEOUT_MS),
                   0);
  /* In the order it happened: up, then ready; each worker registered once
   * even if it started before the scheduler listened. */
  char *text = harness_read_file(f->log);
  assert_non_null(text);
  const char *up = strstr(text, "cluster up: ");
  assert_non_null(up);
  assert_true(up < strstr(text, "cluster ready: "));
  free(text);
  assert_int_equal(harness_count_log(f->log, "worker gpu-0 registered"), 1);
  /* Authenticated by default: each worker with a key of its own, which a
   * restarted gpu-0 registers its id with again. */
  assert_log_has(f, "authentication: CURVE, ");
  assert_status_roles(f);

  assert_int_equal(logged_pids(f, "gpu-0", pids, MAX_PIDS), 1);
  assert_int_equal(kill(pids[0], SIGKILL), 0);
  assert_int_equal(
      harness_wait_log(f->log, "restarting gpu-0", EVENT_TIMEOUT_MS), 0);
  assert_int_equal(
      harness_wait_log_count(f->log, "started gpu-0 pid", 2, EVENT_TIMEOUT_MS),
      0);
  assert_int_equal(
      harness_wait_log_count(f->log, "cluster ready: 4/4", 2, EVENT_TIMEOUT_MS),
      0);

  harness_kill(p, SIGTERM);
  assert_int_equal(exit_code(p), 0);
  harness_stop(&p);
  assert_log_has(f, "cluster stopped");
  /* The workers drained, all four, before the scheduler was stopped. */
  text = harness_read_file(f->log);
  assert_non_null(text);
  const char *sched_exit = strstr(text, "scheduler exited");
  assert_non_null(sched_exit);
  int drained = 0;
  for (const char *q = text; (q = strstr(q, "drained: every request")); q++)
    drained += q < sched_exit;
  assert_int_equal(drained, 4);
  free(text);
  assert_all_gone(f);
}

/* Whether the process's command line has flag followed by value. */
static bool has_arg(pid_t pid, const char *flag, const char *value) {
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  FILE *fp = fopen(path, "r");
  if (!fp)
    return false;
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[n] = '\0';
  for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
    if (strcmp(buf + i, flag) == 0 && i + strlen(flag) + 1 < n)
      return strcmp(buf + i + strlen(flag) + 1, value) == 0;
  return false;
}

/* A worker entry's role reaches its workers as --role, and the links:
 * section the scheduler as one --links spec; both take them and register. */
static void test_roles_and_links(void **state) {
  fixture_t *f = *state;
  pid_t pids[MAX_PIDS];
  char bin_dir[600];
  if (!daemons_dir(bin_dir, sizeof bin_dir))
    skip();
  write_cluster(f, "  - {name: pre, profile: tpu-v6e, role: prefill}\n"
                   "  - {name: dec, profile: gpu-h100, role: decode}\n"
                   "links:\n"
                   "  - {from: tpu, to: gpu, gbps: 50, overlap: true}\n"
                   "  - {from: '*', to: '*', gbps: 12.5, latency_us: 5}\n");
  harness_proc_t *p = start_cluster(f, bin_dir, NULL, NULL);
  assert_int_equal(harness_wait_log(f->log,
                                    "cluster ready: 2/2 workers registered",
                                    EVENT_TIMEOUT_MS),
                   0);
  assert_int_equal(logged_pids(f, "scheduler", pids, MAX_PIDS), 1);
  assert_true(has_arg(pids[0], "--links", "tpu>gpu=50:20:overlap,*>*=12.5:5"));
  assert_int_equal(logged_pids(f, "pre-0", pids, MAX_PIDS), 1);
  assert_true(has_arg(pids[0], "--role", "prefill"));
  assert_int_equal(logged_pids(f, "dec-0", pids, MAX_PIDS), 1);
  assert_true(has_arg(pids[0], "--role", "decode"));
  harness_kill(p, SIGTERM);
  assert_int_equal(exit_code(p), 0);
  harness_stop(&p);
  assert_all_gone(f);
}

/* The ports of a cluster and the pids its launcher started. */
typedef struct remains {
  int ports[3];
  pid_t pids[MAX_PIDS];
  int npids;
} remains_t;

static int nothing_left(void *arg) {
  const remains_t *r = arg;
  for (int i = 0; i < r->npids; i++)
    if (!harness_pid_gone(r->pids[i]))
      return 0;
  for (int i = 0; i < 3; i++)
    if (!harness_port_free(r->ports[i]))
      return 0;
  return 1;
}

static int port_of(const char *endpoint) {
  return atoi(strrchr(endpoint, ':') + 1);
}

static void test_sigkill_of_launcher_leaves_nothing(void **state) {
  fixture_t *f = *state;
  remains_t r;
  const char *sched = harness_bin("infsched-scheduler");
  if (access(sched, X_OK) != 0)
    skip();
  char bin_dir[600], http[64];
  snprintf(bin_dir, sizeof bin_dir, "%s", sched);
  *strrchr(bin_dir, '/') = '\0';
  r.ports[0] = port_of(f->clients);
  r.ports[1] = port_of(f->workers);
  do
    r.ports[2] = harness_free_port();
  while (r.ports[2] == r.ports[0] || r.ports[2] == r.ports[1]);
  snprintf(http, sizeof http, "127.0.0.1:%d", r.ports[2]);

  write_cluster(f, "  - name: gpu\n    profile: gpu-h100\n    count: 2\n");
  harness_proc_t *p = start_cluster(f, bin_dir, "--http", http);
  assert_int_equal(harness_wait_log(f->log,
                                    "cluster ready: 2/2 workers registered",
                                    EVENT_TIMEOUT_MS),
                   0);
  r.npids = logged_pids(f, NULL, r.pids, MAX_PIDS);
  assert_int_equal(r.npids, 3);
  assert_false(nothing_left(&r));

  harness_kill(p, SIGKILL);
  int status;
  assert_int_equal(harness_wait(p, EXIT_TIMEOUT_MS, &status), 0);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  /* Not harness_stop yet: it would kill the launcher's process group,
   * where the children are. */
  int left = harness_wait_until(nothing_left, &r, ORPHAN_DEADLINE_MS);
  harness_stop(&p);
  if (left)
    fail_msg("a child or a port outlived the launcher by %d ms",
             ORPHAN_DEADLINE_MS);

  /* A launcher started again on the same file and ports comes up. */
  p = start_cluster(f, bin_dir, "--http", http);
  assert_int_equal(harness_wait_log_count(f->log, "cluster ready: 2/2", 2,
                                          EVENT_TIMEOUT_MS),
                   0);
  harness_kill(p, SIGTERM);
  assert_int_equal(exit_code(p), 0);
  harness_stop(&p);
}

/* A daemon whose stderr is a pipe: the test reads it until it can close
 * it. */
typedef struct piped {
  pid_t pid;
  int fd; /* the read end */
} piped_t;

static piped_t spawn_piped(char *const argv[]) {
  piped_t d = {-1, -1};
  int fds[2];
  posix_spawn_file_actions_t fa;
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  assert_int_equal(posix_spawn(&d.pid, argv[0], &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  d.fd = fds[0];
  return d;
}

/* Reads d's stderr until it has printed needle; 0 or -ETIMEDOUT. */
static int read_until(piped_t *d, const char *needle) {
  static char seen[1 << 16];
  size_t len = 0;
  int waited = 0;
  while (waited < EVENT_TIMEOUT_MS) {
    struct pollfd p = {d->fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) {
      waited += 100;
      continue;
    }
    if (len + 1 >= sizeof seen)
      len = 0;
    ssize_t n = read(d->fd, seen + len, sizeof seen - 1 - len);
    if (n <= 0)
      return -EPIPE;
    len += (size_t)n;
    seen[len] = '\0';
    if (strstr(seen, needle))
      return 0;
  }
  return -ETIMEDOUT;
}

/* Reaps pid, killing it when it has not exited within EXIT_TIMEOUT_MS (its
 * status then says SIGKILL). */
static int exit_status_of(pid_t pid) {
  int status;
  for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited += 10) {
    if (waited >= EXIT_TIMEOUT_MS) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    usleep(10000);
  }
  return status;
}

/* What an orphan meets: the reader of its stderr is gone. Its next log
 * line (the one its SIGTERM prints) must not kill it. */
static void test_daemons_outlive_closed_stderr(void **state) {
  fixture_t *f = *state;
  const char *sched = harness_bin("infsched-scheduler");
  const char *worker = harness_bin("infsched-worker");
  if (access(sched, X_OK) != 0 || access(worker, X_OK) != 0)
    skip();
  char *sargv[] = {(char *)sched, "--clients", f->clients,
                   "--workers", f->workers, "--http", "off", NULL};
  char *wargv[] = {(char *)worker, "--scheduler", f->workers, "--id", "w-0",
                   "--profiles", (char *)harness_source("configs/profiles.yaml"),
                   NULL};
  piped_t s = spawn_piped(sargv);
  piped_t w = spawn_piped(wargv);
  int up = read_until(&s, "listening: clients") == 0 &&
           read_until(&w, "registered with") == 0;
  close(w.fd);
  close(s.fd);

  /* Both are stopped before anything is asserted: they are not in the
   * harness's registry. */
  kill(w.pid, SIGTERM);
  int wstatus = exit_status_of(w.pid);
  kill(s.pid, SIGTERM);
  int sstatus = exit_status_of(s.pid);
  assert_true(up);
  assert_true(WIFEXITED(wstatus));
  assert_int_equal(WEXITSTATUS(wstatus), 0);
  assert_true(WIFEXITED(sstatus));
  assert_int_equal(WEXITSTATUS(sstatus), 0);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, harness_fixture_end)
  const struct CMUnitTest tests[] = {
      T(test_bad_file_starts_nothing),
      T(test_missing_binary),
      T(test_address_in_use),
      T(test_usage_errors),
      T(test_startup_failure_stops_everything),
      T(test_restart_and_clean_stop),
      T(test_stop_escalates_to_sigkill),
      T(test_real_cluster),
      T(test_roles_and_links),
      T(test_sigkill_of_launcher_leaves_nothing),
      T(test_daemons_outlive_closed_stderr),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
