/* Prefill and decode on different workers (docs/disaggregation.md), with
 * real processes on free loopback ports: a scheduler, two prefill-role and
 * two decode-role workers on the sim backend, and loadgen's long prompts
 * through the client library. One prefill worker is SIGKILLed mid-load:
 * nothing is lost, every request gets exactly one answer, and requests did
 * take the split path, as the scheduler's counters show. */
#include "harness.h"
#include "test_http_common.h"
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

#include <cmocka.h>

#define START_TIMEOUT_MS 15000

typedef struct fixture {
  char *dir;
  char clients[64];
  char workers[64];
  char sched_log[512];
} fixture_t;

static int setup(void **state) {
  int port[2];
  if (harness_free_ports(port, 2))
    return -1;
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  snprintf(f->clients, sizeof f->clients, "tcp://127.0.0.1:%d", port[0]);
  snprintf(f->workers, sizeof f->workers, "tcp://127.0.0.1:%d", port[1]);
  snprintf(f->sched_log, sizeof f->sched_log, "%s/scheduler.log", f->dir);
  *state = f;
  return 0;
}

static harness_proc_t *start_worker(fixture_t *f, const char *id,
                                    const char *profile, const char *role) {
  char log[600];
  snprintf(log, sizeof log, "%s/%s.log", f->dir, id);
  char *argv[] = {(char *)harness_bin("infsched-worker"),
                  "--scheduler", f->workers, "--id", (char *)id,
                  "--profile", (char *)profile, "--role", (char *)role,
                  "--profiles",
                  (char *)harness_source("configs/profiles.yaml"), NULL};
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  return p;
}

/* The prefill worker to kill holds a prefill, after some requests were
 * handed off. */
static bool prefilling(const Infsched__Status *s, void *arg) {
  if (zclient_counter(s, "split.prefilled") < 3)
    return false;
  for (size_t i = 0; i < s->n_workers; i++)
    if (strcmp(s->workers[i]->worker_id, arg) == 0)
      return s->workers[i]->outstanding >= 1;
  return false;
}

static bool lost_one(const Infsched__Status *s, void *arg) {
  (void)arg;
  return zclient_counter(s, "workers_lost") == 1 && s->n_workers == 3;
}

/* The latest status keep saw. */
static Infsched__Status *last;

/* Keeps a copy of the status it sees, in last. */
static bool keep(const Infsched__Status *s, void *arg) {
  (void)arg;
  if (last)
    infsched__status__free_unpacked(last, NULL);
  size_t len = infsched__status__get_packed_size(s);
  uint8_t *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  infsched__status__pack(s, buf);
  last = infsched__status__unpack(NULL, len, buf);
  free(buf);
  assert_non_null(last);
  return true;
}

static double num(const cJSON *o, const char *group, const char *key) {
  const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, group);
  const cJSON *v = g ? cJSON_GetObjectItemCaseSensitive(g, key) : NULL;
  assert_non_null(v);
  return v->valuedouble;
}

static void test_prefill_worker_killed(void **state) {
  fixture_t *f = *state;
  /* A worker is lost after a second without heartbeats (as in test_e2e:
   * slow enough for a loaded machine). */
  char *sargv[] = {(char *)harness_bin("infsched-scheduler"),
                   "--clients", f->clients, "--workers", f->workers,
                   "--http", "off", "--heartbeat-ms", "100",
                   "--heartbeat-miss", "10", "--links", "tpu>gpu=50:20",
                   NULL};
  harness_proc_t *scheduler = harness_spawn(f->sched_log, sargv);
  assert_non_null(scheduler);
  harness_proc_t *victim = start_worker(f, "tpu-p0", "tpu-v6e", "prefill");
  start_worker(f, "tpu-p1", "tpu-v6e", "prefill");
  start_worker(f, "gpu-d0", "gpu-h100", "decode");
  start_worker(f, "gpu-d1", "gpu-h100", "decode");
  size_t four = 4;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &four,
                                  START_TIMEOUT_MS));
  /* The roles as registered. */
  assert_true(zclient_wait_status(f->clients, keep, NULL, 5000));
  for (size_t i = 0; i < last->n_workers; i++)
    assert_int_equal(last->workers[i]->role,
                     last->workers[i]->worker_id[4] == 'p'
                         ? INFSCHED__ROLE__ROLE_PREFILL
                         : INFSCHED__ROLE__ROLE_DECODE);

  /* Prompts long enough to be worth prefilling elsewhere. */
  char report[600], log[600];
  snprintf(report, sizeof report, "%s/report.json", f->dir);
  snprintf(log, sizeof log, "%s/loadgen.log", f->dir);
  char *largv[] = {(char *)harness_bin("infsched-loadgen"),
                   "--scheduler", f->clients, "--rate", "12", "--duration",
                   "6", "--seed", "13", "--prompt-tokens",
                   "lognormal:3000:0.3:1500:6000", "--output-tokens",
                   "lognormal:40:0.5:8:200", "--drain", "30",
                   "--report-json", report, NULL};
  harness_proc_t *loadgen = harness_spawn(log, largv);
  assert_non_null(loadgen);
  assert_true(zclient_wait_status(f->clients, prefilling, "tpu-p0",
                                  START_TIMEOUT_MS));
  harness_kill(victim, SIGKILL);

  int status;
  assert_int_equal(harness_wait(loadgen, 90000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* Nothing lost, nothing failed: every request completed, once. */
  cJSON *j = harness_read_json(report);
  assert_non_null(j);
  double sent = num(j, "requests", "sent");
  assert_true(sent > 40);
  assert_int_equal((int)num(j, "requests", "lost"), 0);
  assert_int_equal((int)num(j, "requests", "failed"), 0);
  assert_int_equal((int)num(j, "requests", "rejected"), 0);
  assert_int_equal((int)num(j, "requests", "completed"), (int)sent);
  /* The Dones of split requests carry their phases: the KV crossed the
   * 50 GB/s link in a measurable time. */
  const cJSON *phases = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(j, "phases"), "split");
  const cJSON *transfer = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(phases, "latency_ms"), "transfer");
  assert_non_null(transfer);
  assert_true(
      cJSON_GetObjectItemCaseSensitive(phases, "requests")->valuedouble >
      sent / 2);
  assert_true(cJSON_GetObjectItemCaseSensitive(transfer, "mean")->valuedouble >
              0);
  cJSON_Delete(j);
  assert_int_equal(
      harness_count_log(log, "answers for unknown or finished requests"), 0);

  /* The loss was noticed, and the split path taken end to end. */
  assert_true(zclient_wait_status(f->clients, lost_one, NULL, 5000));
  assert_true(zclient_wait_status(f->clients, keep, NULL, 5000));
  uint64_t split = zclient_counter(last, "split");
  uint64_t prefilled = zclient_counter(last, "split.prefilled");
  uint64_t decoded = zclient_counter(last, "split.decoded");
  assert_true(split >= sent / 2);
  assert_true(prefilled > 0 && prefilled <= split);
  assert_true(decoded > 0 && decoded <= prefilled);
  assert_int_equal(last->completed, (uint64_t)sent);
  assert_int_equal(last->failed, 0);
  assert_int_equal(harness_count_log(f->sched_log,
                                     "worker tpu-p0 lost: no heartbeat"),
                   1);
  infsched__status__free_unpacked(last, NULL);
  last = NULL;

  harness_kill(scheduler, SIGTERM);
  assert_int_equal(harness_wait(scheduler, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A split request through the HTTP API: its answer's usage is the whole
 * request's, its worker the decode worker, and /metrics counts it, its
 * phases and the roles. */
static void test_split_over_http(void **state) {
  hc_fixture_t *f = *state;
  static const char *const sched[] = {"--links", "tpu>gpu=50:20", NULL};
  static const char *const prefill[] = {"--role", "prefill", NULL};
  static const char *const decode[] = {"--role", "decode", NULL};
  hc_sched_start(&f->s, sched);
  hc_worker_start(&f->s, f->dir, "tpu-p0", "tpu-v6e", NULL, prefill);
  hc_worker_start(&f->s, f->dir, "gpu-d0", "gpu-h100", NULL, decode);
  hc_wait_registered(&f->s, 2);
  /* Some 2,000 tokens of prompt: worth prefilling elsewhere. */
  size_t n = 8000;
  char *json = malloc(n + 64);
  assert_non_null(json);
  int k = snprintf(json, n + 64, "{\"model\":\"codex-70b\",\"prompt\":\"");
  for (size_t i = 0; i < n; i++)
    json[k++] = "abcd efgh "[i % 10];
  snprintf(json + k, 64, "\",\"max_tokens\":8}");
  char url[160], buf[128];
  snprintf(url, sizeof url, "%s/v1/completions", f->s.base);
  hc_response_t r;
  hc_post(f->dir, url, json, NULL, &r);
  free(json);
  assert_int_equal(r.status, 200);
  assert_string_equal(hc_header(&r, "x-infsched-worker", buf, sizeof buf),
                      "gpu-d0");
  cJSON *j = hc_json(r.body);
  assert_non_null(j);
  assert_true(hc_at(j, "usage.prompt_tokens")->valuedouble >= 1000);
  assert_int_equal((int)hc_at(j, "usage.completion_tokens")->valuedouble, 8);
  cJSON_Delete(j);
  hc_response_free(&r);

  char metrics[160];
  snprintf(metrics, sizeof metrics, "%s/metrics", f->s.base);
  hc_get(f->dir, metrics, &r);
  assert_int_equal(r.status, 200);
  static const struct {
    const char *series;
    double value;
  } want[] = {
      {"infsched_scheduler_split_total", 1},
      {"infsched_scheduler_prefilled_total", 1},
      {"infsched_scheduler_split_decoded_total", 1},
      {"infsched_scheduler_kv_fallbacks_total", 0},
      {"infsched_worker_role{worker=\"tpu-p0\",role=\"prefill\"}", 1},
      {"infsched_worker_role{worker=\"gpu-d0\",role=\"decode\"}", 1},
      {"infsched_tokens_total{class=\"agent\",kind=\"generated\"}", 8},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    if (hc_metric(r.body, want[i].series) != want[i].value)
      fail_msg("%s: %g, not %g", want[i].series,
               hc_metric(r.body, want[i].series), want[i].value);
  hc_response_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_prefill_worker_killed, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_split_over_http, hc_setup,
                                      hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
