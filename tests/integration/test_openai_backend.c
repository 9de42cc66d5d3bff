/* The openai worker backend against a real upstream: scheduler B's workers
 * forward to scheduler A's HTTP API, whose sim workers answer. End to end
 * streamed and not, both upstream APIs, upstream errors and timeouts as
 * clear errors, and a client that leaves B cancelling the work on A. */
#include "test_http_common.h"
#include "zclient.h"

#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MODEL "codex-70b"
#define A_RUNNING                                                              \
  "infsched_worker_running{worker=\"sram-0\",class=\"sram\",profile=\"sram-"   \
  "wse3\",model=\"codex-70b\"}"

typedef struct fixture {
  char *dir;
  hc_sched_t a; /* upstream, with a sim worker */
  hc_sched_t b; /* front, with openai workers pointed at a */
  char upstream[160];
  char url[160];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  assert_non_null(f);
  hc_sched_init(&f->a, f->dir, "upstream");
  hc_sched_init(&f->b, f->dir, "front");
  hc_sched_start(&f->a, NULL);
  hc_worker_start(&f->a, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->a, 1);
  hc_sched_start(&f->b, NULL);
  snprintf(f->upstream, sizeof f->upstream, "openai:%s/v1", f->a.base);
  snprintf(f->url, sizeof f->url, "%s/v1/completions", f->b.base);
  *state = f;
  return 0;
}

/* Starts an openai worker on b serving model, with backend options. */
static void start_forwarder(fixture_t *f, const char *id, const char *model,
                            const char *options) {
  char spec[512];
  snprintf(spec, sizeof spec, "%s%s", f->upstream, options ? options : "");
  const char *extra[] = {"--model", model, NULL};
  hc_worker_start(&f->b, f->dir, id, "gpu-h100", spec, extra);
}

static void test_chain_end_to_end(void **state) {
  fixture_t *f = *state;
  start_forwarder(f, "oa-0", MODEL, NULL);
  /* Same upstream through its chat API, under another model name here. */
  start_forwarder(f, "oa-chat", "chat-here", ",api=chat,model=" MODEL);
  hc_wait_registered(&f->b, 2);

  hc_response_t r;
  char buf[64];
  const char *interactive[] = {"x-infsched-class: interactive", NULL};
  hc_post(f->dir, f->url,
          "{\"model\":\"" MODEL "\",\"prompt\":\"hello\",\"max_tokens\":6}",
          interactive, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(hc_header(&r, "x-infsched-worker", buf, sizeof buf),
                      "oa-0");
  cJSON *j = hc_json(r.body);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "choices.0.text")->valuestring,
                      " tok tok tok tok tok tok");
  assert_int_equal(hc_at(j, "usage.completion_tokens")->valueint, 6);
  /* The upstream's own count of the prompt ("hello": 5 bytes). */
  assert_int_equal(hc_at(j, "usage.prompt_tokens")->valueint, 1);
  assert_string_equal(hc_at(j, "choices.0.finish_reason")->valuestring,
                      "length");
  cJSON_Delete(j);
  hc_response_free(&r);

  const char *stream[] = {"-N", NULL};
  hc_post(f->dir, f->url,
          "{\"model\":\"" MODEL "\",\"prompt\":\"hello\",\"max_tokens\":4,"
          "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
          stream, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"text\":\" tok\""));
  assert_non_null(strstr(r.body, "\"completion_tokens\":4"));
  assert_non_null(strstr(r.body, "data: [DONE]\n\n"));
  hc_response_free(&r);

  char chat_url[160];
  snprintf(chat_url, sizeof chat_url, "%s/v1/chat/completions", f->b.base);
  hc_post(f->dir, chat_url,
          "{\"model\":\"chat-here\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"hi\"}],\"max_tokens\":3}",
          NULL, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(hc_header(&r, "x-infsched-worker", buf, sizeof buf),
                      "oa-chat");
  j = hc_json(r.body);
  assert_string_equal(hc_at(j, "choices.0.message.content")->valuestring,
                      " tok tok tok");
  assert_string_equal(hc_at(j, "model")->valuestring, "chat-here");
  cJSON_Delete(j);
  hc_response_free(&r);

  /* The upstream saw HTTP clients of the class asked for at the front. */
  assert_true(hc_wait_metric(f->dir, f->a.base,
                             "infsched_requests_total{class=\"interactive\","
                             "outcome=\"completed\"}",
                             1) == 1);
  assert_true(hc_wait_metric(f->dir, f->a.base,
                             "infsched_http_responses_total{route=\"/v1/chat"
                             "/completions\",code=\"200\"}",
                             1) == 1);
}

static void assert_error(const hc_response_t *r, int status, const char *code,
                         const char *needle) {
  if (r->status != status)
    fail_msg("status %d, not %d: %s", r->status, status, r->body);
  cJSON *j = hc_json(r->body);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "error.code")->valuestring, code);
  const char *msg = hc_at(j, "error.message")->valuestring;
  if (!strstr(msg, needle))
    fail_msg("'%s' not in '%s'", needle, msg);
  cJSON_Delete(j);
}

static void test_upstream_errors_are_clear(void **state) {
  fixture_t *f = *state;
  int dead = harness_free_port();
  char spec[160];
  /* No health probe: the transfer itself must fail clearly. */
  snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,health_ms=0", dead);
  const char *extra[] = {"--model", "dead", NULL};
  hc_worker_start(&f->b, f->dir, "oa-dead", "gpu-h100", spec, extra);
  start_forwarder(f, "oa-missing", "missing", ",model=no-such-model");
  start_forwarder(f, "oa-slow", "slow", ",timeout_ms=300,model=" MODEL);
  hc_wait_registered(&f->b, 3);

  hc_response_t r;
  hc_post(f->dir, f->url,
          "{\"model\":\"dead\",\"prompt\":\"x\",\"max_tokens\":2}", NULL, &r);
  assert_error(&r, 502, "backend_error", "Couldn't connect");
  assert_non_null(strstr(r.body, "oa-dead"));
  /* The caller learns which worker failed, not where its upstream is. */
  char addr[32];
  snprintf(addr, sizeof addr, ":%d", dead);
  assert_null(strstr(r.body, addr));
  assert_null(strstr(r.body, "127.0.0.1"));
  hc_response_free(&r);

  hc_post(f->dir, f->url,
          "{\"model\":\"missing\",\"prompt\":\"x\",\"max_tokens\":2}", NULL,
          &r);
  assert_error(&r, 502, "backend_error", "upstream HTTP 404");
  assert_non_null(strstr(r.body, "no-such-model"));
  hc_response_free(&r);

  /* Streamed, failing before its first token: the same status. */
  const char *stream[] = {"-N", NULL};
  hc_post(f->dir, f->url,
          "{\"model\":\"missing\",\"prompt\":\"x\",\"max_tokens\":2,"
          "\"stream\":true}",
          stream, &r);
  assert_error(&r, 502, "backend_error", "upstream HTTP 404");
  hc_response_free(&r);

  hc_post(f->dir, f->url,
          "{\"model\":\"slow\",\"prompt\":\"x\",\"max_tokens\":30000}", NULL,
          &r);
  assert_error(&r, 504, "upstream_timeout", "timed out");
  assert_null(strstr(r.body, f->a.http));
  hc_response_free(&r);
  /* The upstream request was abandoned, and cancelled there. */
  assert_true(hc_wait_metric(f->dir, f->a.base,
                             "infsched_scheduler_cancelled_total", 1) == 1);
  assert_true(hc_wait_metric_within(f->dir, f->a.base, A_RUNNING, 0,
                                    CANCEL_WITHIN_MS) == 0);
}

/* A client leaving the front mid-stream: the forwarder aborts its upstream
 * transfer, and the upstream cancels the work on its own worker. */
static void test_cancel_reaches_the_upstream_worker(void **state) {
  fixture_t *f = *state;
  start_forwarder(f, "oa-0", MODEL, NULL);
  hc_wait_registered(&f->b, 1);
  int fd = hc_post_completion(
      f->b.http_port, "{\"model\":\"" MODEL "\",\"prompt\":\"x\","
                      "\"max_tokens\":30000,\"stream\":true}");
  char *in = NULL;
  size_t in_len = 0;
  assert_int_equal(hc_read_until(fd, &in, &in_len, "\"text\":\" tok\"", 10000),
                   0);
  assert_true(hc_wait_metric(f->dir, f->a.base, A_RUNNING, 1) == 1);
  close(fd);
  free(in);
  assert_true(hc_wait_metric(f->dir, f->b.base,
                             "infsched_scheduler_cancelled_total", 1) == 1);
  assert_true(hc_wait_metric(f->dir, f->a.base,
                             "infsched_requests_total{class=\"agent\","
                             "outcome=\"cancelled\"}",
                             1) == 1);
  assert_true(hc_wait_metric_within(f->dir, f->a.base, A_RUNNING, 0,
                                    CANCEL_WITHIN_MS) == 0);
  assert_true(hc_wait_metric(f->dir, f->b.base,
                             "infsched_worker_running{worker=\"oa-0\",class="
                             "\"gpu\",profile=\"gpu-h100\",model=\"codex-70b"
                             "\"}",
                             0) == 0);
}

static void expect_start_failure(fixture_t *f, const char *spec, int status,
                                 const char *needle) {
  hc_expect_worker_start_failure(&f->b, f->dir, spec, status, needle);
}

/* Malformed options are refused with the flags (status 2, as
 * infsched-cluster check refuses them); an unset key variable only as the
 * worker starts (status 3). */
static void test_bad_backend_options(void **state) {
  fixture_t *f = *state;
  expect_start_failure(f, "openai", 2, "needs the server's URL");
  expect_start_failure(f, "openai:ftp://host/v1", 2, "not an http");
  expect_start_failure(f, "openai:http://127.0.0.1:1/v1,colour=blue", 2,
                       "unknown option 'colour'");
  expect_start_failure(f, "openai:http://127.0.0.1:1/v1,timeout_ms=soon", 2,
                       "bad value for timeout_ms");
  expect_start_failure(f,
                       "openai:http://127.0.0.1:1/v1,api_key_env="
                       "INFSCHED_TEST_UNSET_KEY",
                       3, "INFSCHED_TEST_UNSET_KEY is not set");
}

struct at_least {
  const char *dir, *base, *series;
  double min;
};

/* harness_wait_until's condition: a scrape shows series at least min. */
static int metric_at_least(void *arg) {
  struct at_least *a = arg;
  char url[200];
  snprintf(url, sizeof url, "%s/metrics", a->base);
  hc_response_t r;
  hc_get(a->dir, url, &r);
  double v = hc_metric(r.body, a->series);
  hc_response_free(&r);
  return v >= a->min;
}

static double report_num(const cJSON *j, const char *path) {
  const cJSON *v = hc_at(j, path);
  assert_non_null(v);
  return v->valuedouble;
}

/* One of two upstreams dies under load: once its worker's health probe
 * fails nothing more goes there, the requests it failed before their
 * first token complete on the other, none is lost; it comes back and its
 * worker serves again. */
static void test_upstream_dies_and_returns(void **state) {
  fixture_t *f = *state;
  hc_sched_t a2;
  hc_sched_init(&a2, f->dir, "upstream2");
  hc_sched_start(&a2, NULL);
  harness_proc_t *a2w =
      hc_worker_start(&a2, f->dir, "sram-2", "sram-wse3", NULL, NULL);
  hc_wait_registered(&a2, 1);
  char spec1[200], spec2[200];
  snprintf(spec1, sizeof spec1, "%s,health_ms=100", f->upstream);
  snprintf(spec2, sizeof spec2, "openai:%s/v1,health_ms=100", a2.base);
  const char *extra[] = {"--model", MODEL, NULL};
  hc_worker_start(&f->b, f->dir, "oa-1", "gpu-h100", spec1, extra);
  hc_worker_start(&f->b, f->dir, "oa-2", "gpu-h100", spec2, extra);
  hc_wait_registered(&f->b, 2);
#define OA2(metric)                                                            \
  metric "{worker=\"oa-2\",class=\"gpu\",profile=\"gpu-h100\",model=\"" MODEL   \
         "\"}"
  assert_true(hc_wait_metric(f->dir, f->b.base, OA2("infsched_worker_healthy"),
                             1) == 1);

  char report[600], log[600];
  snprintf(report, sizeof report, "%s/report.json", f->dir);
  snprintf(log, sizeof log, "%s/loadgen.log", f->dir);
  char *argv[] = {(char *)harness_bin("infsched-loadgen"), "--scheduler",
                  f->b.clients, "--model", MODEL, "--rate", "20",
                  "--duration", "4", "--seed", "3", "--prompt-tokens", "64",
                  "--output-tokens", "4", "--drain", "30", "--report-json",
                  report, NULL};
  harness_proc_t *loadgen = harness_spawn(log, argv);
  assert_non_null(loadgen);
  /* Kill the second upstream once it has served some of the load. */
  struct at_least busy = {f->dir, a2.base, "infsched_scheduler_dispatches_total",
                          5};
  assert_int_equal(harness_wait_until(metric_at_least, &busy, 15000), 0);
  /* Its worker frozen first, no stream through it moves on: those open on
   * it now are all that can have streamed when it dies. */
  harness_kill(a2w, SIGSTOP);
  hc_response_t r;
  char a2_metrics[200];
  snprintf(a2_metrics, sizeof a2_metrics, "%s/metrics", a2.base);
  hc_get(f->dir, a2_metrics, &r);
  double open_at_death = hc_metric(r.body, "infsched_open_requests");
  hc_response_free(&r);
  assert_true(open_at_death >= 0);
  harness_kill(a2.proc, SIGKILL);
  harness_kill(a2w, SIGKILL);
  /* Awaited in Status, where the flag is the heartbeat's own: the healthy
   * gauge also drops while heartbeats are merely late, before the core has
   * heard that the upstream is down and while it may still place there. */
  assert_true(zclient_wait_status(f->b.clients, zclient_says_unhealthy, "oa-2", 15000));
  char oa2_log[600];
  snprintf(oa2_log, sizeof oa2_log, "%s/oa-2.log", f->dir);
  assert_true(harness_count_log(oa2_log, "unhealthy") >= 1);
  char metrics_url[200];
  snprintf(metrics_url, sizeof metrics_url, "%s/metrics", f->b.base);
  hc_get(f->dir, metrics_url, &r);
  double sent_to_dead = hc_metric(r.body, OA2("infsched_worker_dispatches_total"));
  hc_response_free(&r);

  int status;
  assert_int_equal(harness_wait(loadgen, 90000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  cJSON *j = harness_read_json(report);
  assert_non_null(j);
  double sent = report_num(j, "requests.sent");
  assert_true(sent >= 60);
  assert_int_equal(report_num(j, "requests.lost"), 0);
  assert_int_equal(report_num(j, "requests.rejected"), 0);
  /* Only a request streaming from it at the moment it died can fail. */
  double failed = report_num(j, "requests.failed");
  print_message("upstream died with %.0f requests open, %.0f failed\n",
                open_at_death, failed);
  assert_true(failed <= open_at_death);
  assert_true(report_num(j, "requests.completed") == sent - failed);
  cJSON_Delete(j);
  hc_get(f->dir, metrics_url, &r);
  assert_true(hc_metric(r.body, OA2("infsched_worker_dispatches_total")) ==
              sent_to_dead);
  hc_response_free(&r);

  /* It comes back, on the same address: the worker serves again. */
  hc_sched_start(&a2, NULL);
  hc_worker_start(&a2, f->dir, "sram-2", "sram-wse3", NULL, NULL);
  hc_wait_registered(&a2, 2);
  assert_true(hc_wait_metric(f->dir, f->b.base, OA2("infsched_worker_healthy"),
                             1) == 1);
  bool served = false;
  char buf[64];
  for (int i = 0; i < 20 && !served; i++) {
    hc_post(f->dir, f->url,
            "{\"model\":\"" MODEL "\",\"prompt\":\"x\",\"max_tokens\":2}", NULL,
            &r);
    assert_int_equal(r.status, 200);
    const char *w = hc_header(&r, "x-infsched-worker", buf, sizeof buf);
    served = w && strcmp(w, "oa-2") == 0;
    hc_response_free(&r);
  }
  assert_true(served);
#undef OA2
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  unsetenv("INFSCHED_TEST_UNSET_KEY");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_chain_end_to_end, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_upstream_errors_are_clear, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_upstream_dies_and_returns, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_cancel_reaches_the_upstream_worker,
                                      setup, hc_teardown),
      cmocka_unit_test_setup_teardown(test_bad_backend_options, setup,
                                      hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
