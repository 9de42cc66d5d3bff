/* The launcher's pure parts: cluster file parsing and its error messages,
 * restart back-off, and endpoint rewriting. */
#include "infsched/errors.h"
#include "backoff.h"
#include "cluster_file.h"
#include "endpoint.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Writes text to a new temporary file whose path is returned in path. */
static void write_temp(const char *text, char *path, size_t len) {
  snprintf(path, len, "/tmp/infsched-cluster-file-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t n = strlen(text);
  assert_int_equal(write(fd, text, n), (ssize_t)n);
  close(fd);
}

static cluster_spec_t *load_text(const char *text, char *err, size_t errlen,
                                 int *rc) {
  char path[64];
  cluster_spec_t *spec = NULL;
  write_temp(text, path, sizeof path);
  *rc = cluster_file_load(path, &spec, err, errlen);
  unlink(path);
  return spec;
}

static void test_full_file(void **state) {
  (void)state;
  char err[512];
  int rc;
  cluster_spec_t *s =
      load_text("profiles: ../configs/profiles.yaml\n"
                "scheduler:\n"
                "  clients: tcp://*:6000\n"
                "  workers: tcp://127.0.0.1:6001\n"
                "  policy: balanced\n"
                "  heartbeat_ms: 250\n"
                "  heartbeat_miss: 3\n"
                "  api_keys: keys/api.yaml\n"
                "workers:\n"
                "  - name: gpu\n"
                "    profile: gpu-h100\n"
                "    count: 2\n"
                "    model: codex-70b\n"
                "  - {name: sram, profile: sram-wse3, "
                "backend: 'openai:http://127.0.0.1:1/v1'}\n",
                err, sizeof err, &rc);
  assert_int_equal(rc, 0);
  assert_non_null(s);
  assert_string_equal(s->profiles_path, "/tmp/../configs/profiles.yaml");
  assert_string_equal(s->clients, "tcp://*:6000");
  assert_string_equal(s->workers_addr, "tcp://127.0.0.1:6001");
  assert_string_equal(s->policy, "balanced");
  assert_int_equal(s->heartbeat_ms, 250);
  assert_int_equal(s->heartbeat_miss, 3);
  assert_int_equal(s->nworkers, 2);
  assert_string_equal(s->workers[0].name, "gpu");
  assert_string_equal(s->workers[0].profile, "gpu-h100");
  assert_string_equal(s->workers[0].backend, "sim");
  assert_string_equal(s->workers[0].model, "codex-70b");
  assert_int_equal(s->workers[0].count, 2);
  assert_int_equal(s->workers[0].profile_line, 11);
  /* Like the profiles, the keys file is where the cluster file says. */
  assert_string_equal(s->set[SET_API_KEYS], "/tmp/keys/api.yaml");
  assert_string_equal(s->workers[1].backend, "openai:http://127.0.0.1:1/v1");
  assert_string_equal(s->set[SET_POLICY], "balanced");
  assert_null(s->set[SET_SLO]);
  assert_string_equal(s->workers[0].set[SET_MODEL], "codex-70b");
  assert_null(s->workers[0].set[SET_BACKEND]);
  assert_string_equal(s->workers[1].model, "");
  assert_int_equal(s->workers[1].count, 1);
  assert_int_equal(cluster_spec_instances(s), 3);
  char name[64];
  cluster_instance_name(&s->workers[0], 1, name, sizeof name);
  assert_string_equal(name, "gpu-1");
  cluster_spec_destroy(&s);
  assert_null(s);
  cluster_spec_destroy(&s);
}

static void test_defaults(void **state) {
  (void)state;
  char err[512];
  int rc;
  cluster_spec_t *s = load_text("profiles: /etc/p.yaml\nscheduler: {}\n"
                                "workers: []\n",
                                err, sizeof err, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(s->profiles_path, "/etc/p.yaml");
  assert_string_equal(s->clients, "tcp://127.0.0.1:5555");
  assert_string_equal(s->workers_addr, "tcp://127.0.0.1:5556");
  assert_string_equal(s->policy, "least_loaded");
  assert_int_equal(s->heartbeat_ms, 200);
  assert_int_equal(s->heartbeat_miss, 5);
  assert_int_equal(s->nworkers, 0);
  cluster_spec_destroy(&s);
}

typedef struct bad_case {
  const char *text;
  const char *expect; /* after "PATH:" */
} bad_case_t;

static const bad_case_t k_bad[] = {
    {"", "1: empty cluster file"},
    {"- a\n", "1: expected a mapping with profiles, scheduler and workers, "
              "got a list"},
    {"profiles: p\nscheduler: {}\nworkers: []\nextra: 1\n",
     "4: cluster: unknown key 'extra' (expected profiles, scheduler, "
     "workers, links)"},
    {"profiles: p\nprofiles: q\nscheduler: {}\nworkers: []\n",
     "2: cluster: key 'profiles' given twice (also on line 1)"},
    {"scheduler: {}\nworkers: []\n", "1: cluster: 'profiles' is missing"},
    {"profiles: p\nworkers: []\n", "1: cluster: 'scheduler' is missing"},
    {"profiles: p\nscheduler: []\nworkers: []\n",
     "2: scheduler: expected a mapping, got a list"},
    {"profiles: p\nscheduler:\n  heartbeat_ms: fast\nworkers: []\n",
     "3: scheduler.heartbeat_ms: expected a whole number, got 'fast'"},
    {"profiles: p\nscheduler:\n  heartbeat_miss: -1\nworkers: []\n",
     "3: scheduler.heartbeat_miss: expected a whole number, got '-1'"},
    {"profiles: p\nscheduler:\n  heartbeat_ms: 5\nworkers: []\n",
     "3: scheduler.heartbeat_ms: 5 is out of range [10, 60000]"},
    /* What the daemons refuse, the file refuses too (lib/settings.c). */
    {"profiles: p\nscheduler:\n  heartbeat_ms: 600000\nworkers: []\n",
     "3: scheduler.heartbeat_ms: 600000 is out of range [10, 60000]"},
    {"profiles: p\nscheduler:\n  heartbeat_miss: 1\nworkers: []\n",
     "3: scheduler.heartbeat_miss: 1 is out of range [2, 1000]"},
    {"profiles: p\nscheduler:\n  policy: fastest\nworkers: []\n",
     "3: scheduler.policy: unknown policy 'fastest' (round_robin, "},
    {"profiles: p\nscheduler:\n  http: 127.0.0.1:99999\nworkers: []\n",
     "3: scheduler.http: '127.0.0.1:99999' is not HOST:PORT with PORT 0 to "
     "65535"},
    {"profiles: p\nscheduler:\n  queue_limit: lots\nworkers: []\n",
     "3: scheduler.queue_limit: expected a whole number, got 'lots'"},
    {"profiles: p\nscheduler:\n  log_level: debug\nworkers: []\n",
     "3: scheduler: unknown key 'log_level' (expected clients, workers, "},
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: a\n    profile: x\n"
     "    backend: simm\n",
     "6: workers[0].backend: unknown backend 'simm'"},
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: a\n    profile: x\n"
     "    capacity: 0\n",
     "6: workers[0].capacity: 0 is out of range [1, 1000000]"},
    {"profiles: p\nscheduler: {}\nworkers: []\n---\nprofiles: q\n",
     "5: a second YAML document"},
    {"profiles: p\nscheduler:\n  workers: localhost\nworkers: []\n",
     "3: scheduler.workers: 'localhost' is not an endpoint"},
    {"profiles: p\nscheduler:\n  clients: tcp://a:1\n  workers: tcp://a:1\n"
     "workers: []\n",
     "4: scheduler.workers: same endpoint as clients (tcp://a:1)"},
    {"profiles: p\nscheduler: {}\nworkers: {}\n",
     "3: workers: expected a list, got a mapping"},
    {"profiles: p\nscheduler: {}\nworkers:\n  - gpu\n",
     "4: workers[0]: expected a mapping, got a scalar"},
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: a b\n    profile: x\n",
     "4: workers[0].name: 'a b' may only hold letters"},
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: a\n    profile: x\n"
     "    count: 1025\n",
     "6: workers[0].count: 1025 is out of range [1, 1024]"},
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: a\n    profile: x\n"
     "    profiel: y\n",
     "6: workers[0]: unknown key 'profiel'"},
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: a\n    profile: [x]\n",
     "5: workers[0].profile: expected a string, got a list"},
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: a\n    profile: x\n"
     "  - name: a\n    profile: y\n",
     "6: workers[1].name: 'a' is also the name of the entry on line 4"},
    {"profiles: p\nscheduler: {\nworkers: []\n",
     "4: not valid YAML: did not find expected ',' or '}' while parsing a "
     "flow mapping"},
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
     "    profile: x\n",
     "4: workers[0].name: longer than 58 characters"},
};

/* A prefix naming a tpu and a gpu entry, for the links cases. */
#define LINKS_HEAD                                                             \
  "profiles: p\nscheduler: {}\nworkers:\n"                                     \
  "  - {name: big, profile: tpu-v6e, count: 2}\n"                              \
  "  - {name: gpu, profile: gpu-h100}\nlinks:\n"

static const bad_case_t k_bad_links[] = {
    {"profiles: p\nscheduler: {}\nworkers:\n  - name: a\n    profile: x\n"
     "    role: fast\n",
     "6: workers[0].role: unknown role 'fast' (both, prefill or decode)"},
    {LINKS_HEAD "  - {from: tpu, to: gpu, gbps: -5}\n",
     "7: links[0].gbps: -5 is not a bandwidth (GB/s above 0)"},
    {LINKS_HEAD "  - {from: tpu, to: gpu, gbps: 0}\n",
     "7: links[0].gbps: 0 is not a bandwidth (GB/s above 0)"},
    {LINKS_HEAD "  - {from: tpu, to: gpu, gbps: fast}\n",
     "7: links[0].gbps: expected a number, got fast"},
    {LINKS_HEAD "  - {from: tpu, to: gpu, gbps: .nan}\n",
     "7: links[0].gbps: expected a number, got .nan"},
    {LINKS_HEAD "  - {from: tpu, to: gpu}\n", "7: links[0]: 'gbps' is missing"},
    {LINKS_HEAD "  - {from: tpu, to: gpu, gbps: 5, latency_us: -1}\n",
     "7: links[0].latency_us: -1 is not a latency (0 or more microseconds)"},
    {LINKS_HEAD "  - {from: tpu, to: gpu, gbps: 5, overlap: maybe}\n",
     "7: links[0].overlap: expected true or false, got maybe"},
    {LINKS_HEAD "  - {from: tpu, to: gpu, gbps: 5, bandwidth: 5}\n",
     "7: links[0]: unknown key 'bandwidth' (expected from, to, gbps, "
     "latency_us, overlap)"},
    {LINKS_HEAD "  - {from: fpga, to: gpu, gbps: 5}\n",
     "7: links[0].from: 'fpga' is neither '*', a worker class"},
    /* An entry's name is not a worker; its instances are. */
    {LINKS_HEAD "  - {from: big, to: gpu, gbps: 5}\n",
     "7: links[0].from: 'big' is neither"},
    {LINKS_HEAD "  - {from: big-2, to: gpu, gbps: 5}\n",
     "7: links[0].from: 'big-2' is neither"},
    {LINKS_HEAD "  - {from: big-01, to: gpu, gbps: 5}\n",
     "7: links[0].from: 'big-01' is neither"},
    {LINKS_HEAD "  - {from: tpu, to: sram-wse3, gbps: 5}\n",
     "7: links[0].to: 'sram-wse3' is neither"},
    {LINKS_HEAD "  - {from: tpu, gbps: 5}\n", "7: links[0]: 'to' is missing"},
    {LINKS_HEAD "  - {from: tpu, to: gpu, gbps: 5}\n"
                "  - {from: tpu, to: gpu, gbps: 50}\n",
     "8: links[1]: the link tpu>gpu is also given on line 7"},
    {LINKS_HEAD "  tpu: gpu\n", "7: links: expected a list, got a mapping"},
    {LINKS_HEAD "  - tpu>gpu=5\n", "7: links[0]: expected a mapping, got a "
                                   "scalar"},
};

static void check_bad(const bad_case_t *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char err[512], path[64];
    cluster_spec_t *s = NULL;
    write_temp(cases[i].text, path, sizeof path);
    int rc = cluster_file_load(path, &s, err, sizeof err);
    unlink(path);
    if (rc == 0) {
      cluster_spec_destroy(&s);
      fail_msg("case %zu loaded; expected \"%s\"", i, cases[i].expect);
    }
    assert_null(s);
    char want[600];
    snprintf(want, sizeof want, "%s:%s", path, cases[i].expect);
    if (strncmp(err, want, strlen(want)) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, want);
  }
}

static void test_bad_files(void **state) {
  (void)state;
  check_bad(k_bad, sizeof k_bad / sizeof k_bad[0]);
  check_bad(k_bad_links, sizeof k_bad_links / sizeof k_bad_links[0]);
}

/* links: becomes the scheduler's --links spec, rule by rule in order, the
 * latency written out when overlap needs a place after it. */
static void test_links(void **state) {
  (void)state;
  char err[512];
  int rc;
  cluster_spec_t *s =
      load_text(LINKS_HEAD "  - {from: tpu, to: gpu, gbps: 50, "
                           "latency_us: 20, overlap: true}\n"
                           "  - {from: big-1, to: gpu-0, gbps: 200, "
                           "overlap: true}\n"
                           "  - {from: tpu-v6e, to: '*', gbps: 12.5, "
                           "overlap: false}\n"
                           "  - {from: '*', to: '*', gbps: 0.5, "
                           "latency_us: 0}\n",
                err, sizeof err, &rc);
  if (rc)
    fail_msg("%s", err);
  assert_string_equal(s->links, "tpu>gpu=50:20:overlap,"
                                "big-1>gpu-0=200:20:overlap,"
                                "tpu-v6e>*=12.5,*>*=0.5:0");
  assert_int_equal(s->links_line, 7);
  cluster_spec_destroy(&s);
  /* No section, or an empty one: no spec, the scheduler's defaults. */
  s = load_text("profiles: p\nscheduler: {}\nworkers: []\nlinks: []\n", err,
                sizeof err, &rc);
  assert_int_equal(rc, 0);
  assert_null(s->links);
  cluster_spec_destroy(&s);
}

static void test_missing_file(void **state) {
  (void)state;
  char err[512];
  cluster_spec_t *s = NULL;
  assert_true(cluster_file_load("/nonexistent/c.yaml", &s, err, sizeof err) <
              0);
  assert_null(s);
  assert_string_equal(err, "/nonexistent/c.yaml: No such file or directory");
}

/* scheduler.slo is parsed when the file loads, and checked against an idle
 * worker of each listed profile, by the model, with the profiles. */
static void test_slo_checked_against_profiles(void **state) {
  (void)state;
  char err[512];
  int rc;
  static const char *const head =
      "profiles: " INFSCHED_SOURCE_DIR "/configs/profiles.yaml\n"
      "scheduler:\n"
      "  slo: %s\n"
      "workers:\n"
      "  - {name: gpu, profile: gpu-h100}\n"
      "  - {name: tpu, profile: tpu-v6e}\n";
  char text[512];
  snprintf(text, sizeof text, head, "interactive=300+250:30");
  cluster_spec_t *s = load_text(text, err, sizeof err, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(s->set[SET_SLO], "interactive=300+250:30");
  assert_int_equal(cluster_spec_check_profiles(s, err, sizeof err), 0);
  cluster_spec_destroy(&s);

  /* The TPU's bare decode step at 64K of context is 25.8 ms. */
  snprintf(text, sizeof text, head, "agent=2000+250:25");
  s = load_text(text, err, sizeof err, &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(cluster_spec_check_profiles(s, err, sizeof err),
                   INFS_ECONFIG);
  assert_non_null(strstr(err, ":3: scheduler.slo: SLO of agent: TPOT target "
                              "25 ms is below what an idle tpu worker "
                              "(profile tpu-v6e) takes per output token at "
                              "65536 tokens of context, 25.8 ms "
                              "(workers[1])"));
  cluster_spec_destroy(&s);

  snprintf(text, sizeof text, head, "interactive=450");
  s = load_text(text, err, sizeof err, &rc);
  assert_null(s);
  assert_non_null(strstr(err, ":3: scheduler.slo: SLO of interactive: "
                              "expected TTFT_MS[+MS_PER_1K_UNCACHED]:TPOT_MS"));
}

static void test_backoff(void **state) {
  (void)state;
  /* ran_ms: how long the process ran; delay: what backoff_next returns. */
  static const struct {
    uint64_t ran_ms, delay;
  } steps[] = {
      {10, 250},    {10, 500},  {10, 1000},   {29999, 2000},
      {0, 4000},    {0, 8000},  {0, 10000},   {0, 10000},
      {30000, 250}, {100, 500}, {45000, 250}, {0, 500},
  };
  backoff_t b = {0};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
    assert_int_equal(backoff_next(&b, steps[i].ran_ms), steps[i].delay);
}

static void test_connect_addr(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"tcp://*:5556", "tcp://127.0.0.1:5556"},
      {"tcp://0.0.0.0:5556", "tcp://127.0.0.1:5556"},
      {"tcp://[::]:5556", "tcp://[::1]:5556"},
      {"tcp://10.0.0.7:5556", "tcp://10.0.0.7:5556"},
      {"ipc:///tmp/s.sock", "ipc:///tmp/s.sock"},
  };
  char out[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(endpoint_connect_addr(cases[i][0], out, sizeof out), 0);
    assert_string_equal(out, cases[i][1]);
  }
  assert_int_equal(endpoint_connect_addr("tcp://*:5556", out, 8),
                   -ENAMETOOLONG);
}

static void test_check_bindable(void **state) {
  (void)state;
  char err[256];
  /* Transports and hosts that cannot be checked here pass. */
  assert_int_equal(endpoint_check_bindable("ipc:///tmp/x", err, sizeof err), 0);
  assert_int_equal(endpoint_check_bindable("tcp://eth9:1", err, sizeof err), 0);
  assert_int_equal(
      endpoint_check_bindable("tcp://127.0.0.1:*", err, sizeof err), 0);
  assert_int_equal(
      endpoint_check_bindable("tcp://127.0.0.1:0", err, sizeof err), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_file),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_links),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_slo_checked_against_profiles),
      cmocka_unit_test(test_backoff),
      cmocka_unit_test(test_connect_addr),
      cmocka_unit_test(test_check_bindable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
