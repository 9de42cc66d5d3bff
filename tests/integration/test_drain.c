/* Graceful drain: SIGTERM to a worker mid-stream. It tells the scheduler,
 * which sends it nothing new; its stream finishes in full; then it exits
 * cleanly. Past its drain deadline, what it still runs ends with an
 * error. */
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

#define GPU0(metric)                                                           \
  metric "{worker=\"gpu-0\",class=\"gpu\",profile=\"gpu-h100\",model=\"codex-" \
         "70b\"}"

static void test_sigterm_mid_stream(void **state) {
  hc_fixture_t *f = *state;
  hc_sched_start(&f->s, NULL);
  harness_proc_t *gpu0 =
      hc_worker_start(&f->s, f->dir, "gpu-0", "gpu-h100", NULL, NULL);
  hc_wait_registered(&f->s, 1);

  char url[160], out[600];
  snprintf(url, sizeof url, "%s/v1/completions", f->s.base);
  snprintf(out, sizeof out, "%s/stream.out", f->dir);
  char *curl[] = {"curl", "-sN", "-H", "Content-Type: application/json", "-d",
                  "{\"model\":\"codex-70b\",\"prompt\":\"x\",\"max_tokens\":200,"
                  "\"stream\":true}",
                  url, NULL};
  harness_proc_t *stream = harness_spawn(out, curl);
  assert_non_null(stream);
  assert_true(hc_wait_metric(f->dir, f->s.base,
                             GPU0("infsched_worker_outstanding"), 1) == 1);
  hc_worker_start(&f->s, f->dir, "gpu-1", "gpu-h100", NULL, NULL);
  hc_wait_registered(&f->s, 2);

  harness_kill(gpu0, SIGTERM);
  char gpu0_log[600];
  snprintf(gpu0_log, sizeof gpu0_log, "%s/gpu-0.log", f->dir);
  assert_int_equal(harness_wait_log(gpu0_log, "draining", 10000), 0);
  /* New work goes to the other worker, once the scheduler has heard. */
  assert_true(zclient_wait_status(f->s.clients, zclient_says_draining, "gpu-0",
                                  10000));
  for (int i = 0; i < 3; i++) {
    hc_response_t r;
    char buf[64];
    hc_post(f->dir, url,
            "{\"model\":\"codex-70b\",\"prompt\":\"y\",\"max_tokens\":2}", NULL,
            &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hc_header(&r, "x-infsched-worker", buf, sizeof buf),
                        "gpu-1");
    hc_response_free(&r);
  }

  /* The stream it was running finishes in full. */
  int status;
  assert_int_equal(harness_wait(stream, 60000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char *body = harness_read_file(out);
  assert_non_null(body);
  assert_non_null(strstr(body, "\"finish_reason\":\"length\""));
  assert_non_null(strstr(body, "data: [DONE]"));
  assert_null(strstr(body, "\"error\""));
  free(body);
  assert_int_equal(harness_wait(gpu0, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(harness_count_log(gpu0_log, "drained") == 1);
  harness_stop(&gpu0);
  harness_stop(&stream);
}

/* A drain that outlasts its deadline: every request still open on the
 * worker ends at the deadline with an error of its own, streamed or not,
 * none hangs, none is left open; the worker exits cleanly. */
static void test_drain_deadline_ends_open_requests(void **state) {
  hc_fixture_t *f = *state;
  hc_sched_start(&f->s, NULL);
  const char *extra[] = {"--drain-timeout-ms", "300", NULL};
  harness_proc_t *gpu0 =
      hc_worker_start(&f->s, f->dir, "gpu-0", "gpu-h100", NULL, extra);
  hc_wait_registered(&f->s, 1);

  char url[160];
  snprintf(url, sizeof url, "%s/v1/completions", f->s.base);
  enum { STREAMS = 2, REQUESTS = 3 };
  harness_proc_t *curls[REQUESTS];
  char out[REQUESTS][600];
  for (int i = 0; i < REQUESTS; i++) {
    snprintf(out[i], sizeof out[i], "%s/long-%d.out", f->dir, i);
    /* Far longer than the deadline: some 20 ms a token. */
    char *curl[] = {"curl", "-sN", "-H", "Content-Type: application/json",
                    "-d",
                    i < STREAMS
                        ? "{\"model\":\"codex-70b\",\"prompt\":\"x\","
                          "\"max_tokens\":5000,\"stream\":true}"
                        : "{\"model\":\"codex-70b\",\"prompt\":\"x\","
                          "\"max_tokens\":5000}",
                    url, NULL};
    curls[i] = harness_spawn(out[i], curl);
    assert_non_null(curls[i]);
  }
  assert_true(hc_wait_metric(f->dir, f->s.base,
                             GPU0("infsched_worker_outstanding"),
                             REQUESTS) == REQUESTS);

  harness_kill(gpu0, SIGTERM);
  int status;
  for (int i = 0; i < REQUESTS; i++) {
    assert_int_equal(harness_wait(curls[i], 15000, &status), 0);
    char *body = harness_read_file(out[i]);
    assert_non_null(body);
    if (!strstr(body, "drain deadline of 300 ms passed") ||
        !strstr(body, "\"code\":\"backend_error\"") ||
        strstr(body, "[DONE]") || strstr(body, "\"finish_reason\":\"length\""))
      fail_msg("request %d did not end with the drain's error: %s", i, body);
    free(body);
    harness_stop(&curls[i]);
  }
  assert_int_equal(harness_wait(gpu0, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char gpu0_log[600];
  snprintf(gpu0_log, sizeof gpu0_log, "%s/gpu-0.log", f->dir);
  assert_int_equal(harness_count_log(gpu0_log, "drain deadline passed with 3 "
                                               "requests open"),
                   1);
  harness_stop(&gpu0);
  assert_true(hc_wait_metric(f->dir, f->s.base, "infsched_open_requests", 0) ==
              0);
  assert_true(hc_wait_metric(f->dir, f->s.base,
                             "infsched_requests_total{class=\"agent\","
                             "outcome=\"failed\"}",
                             REQUESTS) == REQUESTS);
}

/* /healthz says 503 while no worker serves (none registered, or the only
 * one draining), 200 while one does; HEAD answers the same without a
 * body. */
static void test_healthz_follows_serving_workers(void **state) {
  hc_fixture_t *f = *state;
  hc_sched_start(&f->s, NULL);
  char url[160];
  snprintf(url, sizeof url, "%s/healthz", f->s.base);
  hc_response_t r;
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(r.body, "\"status\":\"unavailable\""));
  hc_response_free(&r);
  harness_proc_t *w =
      hc_worker_start(&f->s, f->dir, "gpu-0", "gpu-h100", NULL, NULL);
  hc_wait_registered(&f->s, 1);
  assert_true(hc_wait_metric(f->dir, f->s.base, GPU0("infsched_worker_healthy"),
                             1) == 1);
  const char *head[] = {"-I", url, NULL};
  hc_curl(f->dir, head, &r);
  assert_int_equal(r.status, 200);
  /* curl -I prints the headers as its output: no JSON follows them. */
  assert_null(strstr(r.body ? r.body : "", "\"status\""));
  assert_non_null(strstr(r.headers, "Content-Length: "));
  hc_response_free(&r);
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"serving\":1"));
  hc_response_free(&r);
  harness_kill(w, SIGTERM);
  int status;
  assert_int_equal(harness_wait(w, 10000, &status), 0);
  /* Its draining heartbeat, sent as it stopped, has been read. */
  assert_true(zclient_wait_status(f->s.clients, zclient_says_draining, "gpu-0",
                                  10000));
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 503);
  hc_response_free(&r);
  harness_stop(&w);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sigterm_mid_stream, hc_setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_drain_deadline_ends_open_requests,
                                      hc_setup, hc_teardown),
      cmocka_unit_test_setup_teardown(test_healthz_follows_serving_workers,
                                      hc_setup, hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
