/* A partition between hosts, with network namespaces standing in for them:
 * two workers, each in a namespace of its own joined to the scheduler's by
 * a veth pair, under load; one link is cut and healed. Asserts how soon the
 * scheduler notices, what becomes of the requests, and how soon the worker
 * is back. Needs root (CAP_NET_ADMIN) and iproute2; exits 77 (skipped)
 * where namespaces cannot be made. Addresses are link-local
 * (169.254.0.0/16) on links that exist only inside this machine. */
#include "clock.h"
#include "harness.h"
#include "zclient.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define SKIP 77
#define START_TIMEOUT_MS 15000
/* Heartbeats every 100 ms, lost after 3 missed: the scheduler must notice
 * well within this. */
#define DETECT_MAX_MS 2000
/* TCP retransmits back off while the link is down; the first one after
 * the heal brings the worker back. */
#define REJOIN_MAX_MS 10000

typedef struct fixture {
  char *dir;
  char tag[16];  /* names of this run's namespaces and links */
  int net;       /* this run's 169.254.net.0/24, see claim_net */
  char addr[32]; /* the scheduler's, on the root namespace's loopback */
  char clients[64];
  char workers[64];
  harness_proc_t *scheduler;
} fixture_t;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char quiet[600];
  snprintf(quiet, sizeof quiet, "%s >/dev/null 2>&1", cmd);
  int rc = system(quiet);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void net_down(const char *tag, const char *addr) {
  for (char host = 'a'; host <= 'b'; host++) {
    sh("ip link del %s%c0", tag, host);
    sh("ip netns del %s%c", tag, host);
  }
  if (addr[0])
    sh("ip addr del %s/32 dev lo", addr);
}

/* Runs of this test on one machine at once each take a /24 of their own:
 * the scheduler's address, 169.254.N.9, added to the root namespace's
 * loopback (so that no cut link takes it down), can be added only once,
 * which claims N. Returns 0, or -1 when all are taken. */
static int claim_net(fixture_t *f) {
  for (int i = 0; i < 250; i++) {
    int n = 1 + (int)((getpid() + i) % 250);
    snprintf(f->addr, sizeof f->addr, "169.254.%d.9", n);
    if (sh("ip addr add %s/32 dev lo", f->addr) == 0) {
      f->net = n;
      return 0;
    }
  }
  f->addr[0] = '\0';
  return -1;
}

/* Hosts a and b: a namespace each, a veth pair to the root namespace
 * (169.254.net.4i+1/30 on the root's side, .4i+2 on the host's), a default
 * route through it. */
static int net_up(const char *tag, int net) {
  for (int i = 0; i < 2; i++) {
    char host = (char)('a' + i);
    int root = 4 * i + 1;
    if (sh("ip netns add %s%c", tag, host) ||
        sh("ip link add %s%c0 type veth peer name %s%c1", tag, host, tag,
           host) ||
        sh("ip link set %s%c1 netns %s%c", tag, host, tag, host) ||
        sh("ip addr add 169.254.%d.%d/30 dev %s%c0", net, root, tag, host) ||
        sh("ip link set %s%c0 up", tag, host) ||
        sh("ip netns exec %s%c ip addr add 169.254.%d.%d/30 dev %s%c1", tag,
           host, net, root + 1, tag, host) ||
        sh("ip netns exec %s%c ip link set %s%c1 up", tag, host, tag, host) ||
        sh("ip netns exec %s%c ip link set lo up", tag, host) ||
        sh("ip netns exec %s%c ip route add default via 169.254.%d.%d", tag,
           host, net, root))
      return -1;
  }
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  harness_stop_all();
  net_down(f->tag, f->addr);
  return harness_fixture_end(state);
}

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  *state = f;
  snprintf(f->tag, sizeof f->tag, "is%05d", (int)(getpid() % 100000));
  net_down(f->tag, "");
  if (claim_net(f)) {
    harness_fixture_end(state);
    return -1;
  }
  snprintf(f->clients, sizeof f->clients, "tcp://127.0.0.1:%d",
           harness_free_port());
  snprintf(f->workers, sizeof f->workers, "tcp://%s:%d", f->addr,
           harness_free_port());
  if (net_up(f->tag, f->net)) {
    teardown(state);
    return -1;
  }
  return 0;
}

static harness_proc_t *start_worker(fixture_t *f, char host) {
  char log[600], ns[32], id[16];
  snprintf(log, sizeof log, "%s/worker-%c.log", f->dir, host);
  snprintf(ns, sizeof ns, "%s%c", f->tag, host);
  snprintf(id, sizeof id, "host-%c", host);
  /* ip netns exec execs the worker in place: the pid is the worker's. */
  char *argv[] = {"ip",
                  "netns",
                  "exec",
                  ns,
                  (char *)harness_bin("infsched-worker"),
                  "--scheduler",
                  f->workers,
                  "--id",
                  id,
                  "--profile",
                  "gpu-h100",
                  "--profiles",
                  (char *)harness_source("configs/profiles.yaml"),
                  NULL};
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  return p;
}

static bool b_busy(const Infsched__Status *s, void *arg) {
  (void)arg;
  for (size_t i = 0; i < s->n_workers; i++)
    if (strcmp(s->workers[i]->worker_id, "host-b") == 0)
      return s->workers[i]->outstanding >= 2;
  return false;
}

static bool lost_b_and_moved(const Infsched__Status *s, void *arg) {
  (void)arg;
  return zclient_counter(s, "workers_lost") == 1 &&
         zclient_counter(s, "redispatched") >= 1;
}

static double num(const cJSON *o, const char *a, const char *b) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(o, a), b);
  assert_non_null(v);
  return v->valuedouble;
}

static void test_partition_cut_and_healed(void **state) {
  fixture_t *f = *state;
  char slog[600], report[600], lg_log[600];
  snprintf(slog, sizeof slog, "%s/scheduler.log", f->dir);
  char *sargv[] = {(char *)harness_bin("infsched-scheduler"),
                   "--clients",
                   f->clients,
                   "--workers",
                   f->workers,
                   "--http",
                   "off",
                   "--heartbeat-ms",
                   "100",
                   "--heartbeat-miss",
                   "3",
                   NULL};
  f->scheduler = harness_spawn(slog, sargv);
  assert_non_null(f->scheduler);
  start_worker(f, 'a');
  start_worker(f, 'b');
  size_t one = 1, two = 2;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &two,
                                  START_TIMEOUT_MS));

  snprintf(report, sizeof report, "%s/report.json", f->dir);
  snprintf(lg_log, sizeof lg_log, "%s/loadgen.log", f->dir);
  char *largv[] = {(char *)harness_bin("infsched-loadgen"),
                   "--scheduler",
                   f->clients,
                   "--rate",
                   "20",
                   "--duration",
                   "6",
                   "--seed",
                   "3",
                   "--output-tokens",
                   "lognormal:100:0.5:8:400",
                   "--drain",
                   "60",
                   "--report-json",
                   report,
                   NULL};
  harness_proc_t *loadgen = harness_spawn(lg_log, largv);
  assert_non_null(loadgen);
  assert_true(zclient_wait_status(f->clients, b_busy, NULL, START_TIMEOUT_MS));

  /* Cut host b off: its packets go nowhere, no connection is closed. */
  assert_int_equal(sh("ip link set %sb0 down", f->tag), 0);
  long long cut = clock_ms();
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &one,
                                  DETECT_MAX_MS));
  long long detected = clock_ms();
  assert_true(zclient_wait_status(f->clients, lost_b_and_moved, NULL, 1000));

  assert_int_equal(sh("ip link set %sb0 up", f->tag), 0);
  long long healed = clock_ms();
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &two,
                                  REJOIN_MAX_MS));
  long long back = clock_ms();
  print_message("partition: lost after %lld ms, back %lld ms after the "
                "heal\n",
                detected - cut, back - healed);

  int status;
  assert_int_equal(harness_wait(loadgen, 120000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  cJSON *j = harness_read_json(report);
  assert_non_null(j);
  double sent = num(j, "requests", "sent");
  double completed = num(j, "requests", "completed");
  print_message("partition: %.0f sent, %.0f completed, %.0f failed\n", sent,
                completed, num(j, "requests", "failed"));
  /* The requests host b held went on on host a: none lost, none failed,
   * and host b's copies, which it reported when it came back, were
   * cancelled there rather than answered twice. */
  assert_int_equal((int)num(j, "requests", "lost"), 0);
  assert_int_equal((int)num(j, "requests", "failed"), 0);
  assert_int_equal((int)completed, (int)sent);
  cJSON_Delete(j);
  assert_int_equal(harness_count_log(lg_log, "answers for unknown or"), 0);
}

/* Whether this process may make network namespaces. */
static bool namespaces_allowed(void) {
  char name[32];
  snprintf(name, sizeof name, "isprobe%d", (int)(getpid() % 100000));
  if (geteuid() != 0 || sh("ip netns add %s", name))
    return false;
  sh("ip netns del %s", name);
  return true;
}

int main(void) {
  if (!namespaces_allowed()) {
    printf("skipped: network namespaces cannot be made here (root and "
           "iproute2 are needed)\n");
    return SKIP;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_partition_cut_and_healed, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
