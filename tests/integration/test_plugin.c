/* A backend loaded from a shared library (tests/plugins/echo_backend.c):
 * served end to end over HTTP, cancelled when its client leaves, and clear
 * start-up failures for a missing file, a library that is not a backend
 * and bad plugin arguments. */
#include "test_http_common.h"

#include <setjmp.h>
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

#ifndef ECHO_PLUGIN
#error "ECHO_PLUGIN must name the built example plugin"
#endif

#define RUNNING                                                                \
  "infsched_worker_running{worker=\"echo-0\",class=\"gpu\",profile=\"gpu-"     \
  "h100\",model=\"echo\"}"

typedef hc_fixture_t fixture_t;

static void test_plugin_serves_and_cancels(void **state) {
  fixture_t *f = *state;
  hc_sched_start(&f->s, NULL);
  const char *extra[] = {"--model", "echo", NULL};
  hc_worker_start(&f->s, f->dir, "echo-0", "gpu-h100",
                  "plugin:" ECHO_PLUGIN ":delay_ms=2", extra);
  hc_wait_registered(&f->s, 1);

  char url[160];
  snprintf(url, sizeof url, "%s/v1/completions", f->s.base);
  hc_response_t r;
  hc_post(f->dir, url,
          "{\"model\":\"echo\",\"prompt\":\"the quick brown fox\","
          "\"max_tokens\":3}",
          NULL, &r);
  assert_int_equal(r.status, 200);
  cJSON *j = hc_json(r.body);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "choices.0.text")->valuestring,
                      " the quick brown");
  assert_int_equal(hc_at(j, "usage.completion_tokens")->valueint, 3);
  cJSON_Delete(j);
  hc_response_free(&r);

  const char *stream[] = {"-N", NULL};
  hc_post(f->dir, url,
          "{\"model\":\"echo\",\"prompt\":\"a b\",\"max_tokens\":4,"
          "\"stream\":true}",
          stream, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"text\":\" a\""));
  assert_non_null(strstr(r.body, "\"text\":\" echo\""));
  assert_non_null(strstr(r.body, "data: [DONE]"));
  hc_response_free(&r);

  /* A client that leaves mid-stream: the plugin's cancel runs. */
  int fd = hc_post_completion(f->s.http_port,
                              "{\"model\":\"echo\",\"prompt\":\"x\","
                              "\"max_tokens\":100000,\"stream\":true}");
  char *in = NULL;
  size_t in_len = 0;
  assert_int_equal(hc_read_until(fd, &in, &in_len, "\"text\":\" x\"", 10000),
                   0);
  assert_true(hc_wait_metric(f->dir, f->s.base, RUNNING, 1) == 1);
  close(fd);
  free(in);
  assert_true(hc_wait_metric(f->dir, f->s.base, RUNNING, 0) == 0);
}

static void expect_start_failure(fixture_t *f, const char *spec, int status,
                                 const char *needle) {
  hc_expect_worker_start_failure(&f->s, f->dir, spec, status, needle);
}

/* A plugin that does not load, or whose arguments it refuses
 * (INFS_ECONFIG), is a bad --backend value: status 2. */
static void test_plugin_start_failures(void **state) {
  fixture_t *f = *state;
  char spec[700], notplugin[600];
  snprintf(spec, sizeof spec, "plugin:%s/missing.so", f->dir);
  expect_start_failure(f, spec, 2, "cannot load plugin");
  /* A real shared library that exports no backend. */
  snprintf(notplugin, sizeof notplugin, "%s/libnot.so", f->dir);
  char *cc[] = {"cc", "-shared", "-fPIC",     "-x", "c",
                "-o", notplugin, "/dev/null", NULL};
  char log[600];
  snprintf(log, sizeof log, "%s/cc.log", f->dir);
  harness_proc_t *p = harness_spawn(log, cc);
  int status;
  assert_int_equal(harness_wait(p, 30000, &status), 0);
  assert_int_equal(WEXITSTATUS(status), 0);
  harness_stop(&p);
  snprintf(spec, sizeof spec, "plugin:%s", notplugin);
  expect_start_failure(f, spec, 2, "does not export infsched_backend_entry");
  expect_start_failure(f, "plugin:" ECHO_PLUGIN ":delay_ms=fast", 2,
                       "echo: expected delay_ms=N");
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_plugin_serves_and_cancels, hc_setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_plugin_start_failures, hc_setup,
                                      hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
