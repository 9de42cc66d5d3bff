/* API keys on the HTTP API, with curl against a real scheduler: 401 (and
 * its challenge) without a key or with a wrong one, every inference route
 * and the model list closed, /healthz and /metrics open; a key's tenant
 * class applies where the request names none; requests and tokens are
 * counted by tenant. */
#include "test_http_common.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define KEY_ACME "sk-acme-0123456789abcdef"
#define KEY_BATCH "sk-batchco-0123456789ab"
#define BODY(n)                                                                \
  "{\"model\":\"codex-70b\",\"prompt\":\"x\",\"max_tokens\":" #n "}"
#define TENANT(name, rest) "{tenant=\"" name "\"," rest "}"

static void post(hc_fixture_t *f, const char *path, const char *json,
                 const char *key, const char *extra, hc_response_t *r) {
  char url[160], auth[128];
  snprintf(url, sizeof url, "%s%s", f->s.base, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "");
  const char *headers[] = {key ? auth : extra, key ? extra : NULL, NULL};
  hc_post(f->dir, url, json, headers, r);
}

/* The status of a completion request, its answer dropped. */
static int status_of(hc_fixture_t *f, const char *json, const char *key,
                     const char *extra) {
  hc_response_t r;
  post(f, "/v1/completions", json, key, extra, &r);
  int status = r.status;
  hc_response_free(&r);
  return status;
}

/* Waits until n requests of class cls have completed. */
static void completed(hc_fixture_t *f, const char *cls, double n) {
  char series[160];
  snprintf(series, sizeof series,
           "infsched_requests_total{class=\"%s\",outcome=\"completed\"}", cls);
  assert_true(hc_wait_metric(f->dir, f->s.base, series, n) == n);
}

/* A 401 as OpenAI's clients read it, with RFC 6750's challenge. */
static void expect_401(hc_response_t *r, const char *code) {
  char buf[128];
  assert_int_equal(r->status, 401);
  assert_non_null(hc_header(r, "www-authenticate", buf, sizeof buf));
  assert_int_equal(strncmp(buf, "Bearer ", 7), 0);
  cJSON *j = hc_json(r->body);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "error.type")->valuestring,
                      "invalid_request_error");
  assert_string_equal(hc_at(j, "error.code")->valuestring, code);
  cJSON_Delete(j);
  hc_response_free(r);
}

static void test_api_keys(void **state) {
  hc_fixture_t *f = *state;
  char keys[600];
  snprintf(keys, sizeof keys, "%s/keys.yaml", f->dir);
  assert_int_equal(harness_write_file(keys,
                                      "keys:\n"
                                      "  - key: " KEY_ACME "\n"
                                      "    tenant: acme\n"
                                      "    class: interactive\n"
                                      "  - key: " KEY_BATCH "\n"
                                      "    tenant: batchco\n"
                                      "    class: batch\n",
                                      0600),
                   0);
  const char *extra[] = {"--api-keys", keys, NULL};
  hc_sched_start(&f->s, extra);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 1);
  hc_response_t r;

  /* Closed: without a key, with a wrong one, or another scheme. */
  post(f, "/v1/completions", BODY(2), NULL, NULL, &r);
  expect_401(&r, "missing_api_key");
  post(f, "/v1/chat/completions",
       "{\"model\":\"codex-70b\",\"messages\":[{\"role\":\"user\","
       "\"content\":\"x\"}]}",
       "sk-acme-0123456789abcdeX", NULL, &r);
  expect_401(&r, "invalid_api_key");
  post(f, "/v1/completions", BODY(2), NULL, "Authorization: Basic " KEY_ACME,
       &r);
  expect_401(&r, "missing_api_key");
  char url[160];
  snprintf(url, sizeof url, "%s/v1/models", f->s.base);
  hc_get(f->dir, url, &r);
  expect_401(&r, "missing_api_key");

  /* Open: what load balancers and scrapers ask. */
  snprintf(url, sizeof url, "%s/healthz", f->s.base);
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 200);
  hc_response_free(&r);
  snprintf(url, sizeof url, "%s/metrics", f->s.base);
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 200);
  /* Every tenant's series exist from the start, at zero. */
  assert_true(hc_metric(r.body, "infsched_tenant_requests_total" TENANT(
                                    "batchco", "outcome=\"completed\"")) == 0);
  hc_response_free(&r);

  /* acme's key: its requests are interactive unless they say otherwise;
   * the scheme is any case. */
  assert_int_equal(status_of(f, BODY(3), KEY_ACME, NULL), 200);
  completed(f, "interactive", 1);
  assert_int_equal(
      status_of(f, BODY(3), NULL, "authorization: bearer " KEY_ACME), 200);
  completed(f, "interactive", 2);
  /* The header's class wins over the tenant's, and so does the body's. */
  assert_int_equal(
      status_of(f, BODY(4), KEY_BATCH, "x-infsched-class: interactive"), 200);
  assert_int_equal(status_of(f,
                             "{\"model\":\"codex-70b\",\"prompt\":\"x\","
                             "\"max_tokens\":1,\"infsched_class\":\"agent\"}",
                             KEY_BATCH, NULL),
                   200);
  assert_int_equal(status_of(f, BODY(5), KEY_BATCH, NULL), 200);
  completed(f, "batch", 1);
  completed(f, "agent", 1);
  completed(f, "interactive", 3);
  /* A key opens the model list too. */
  snprintf(url, sizeof url, "%s/v1/models", f->s.base);
  const char *list[] = {"-H", "Authorization: Bearer " KEY_BATCH, url, NULL};
  hc_curl(f->dir, list, &r);
  assert_int_equal(r.status, 200);
  hc_response_free(&r);
  /* A bad request of a tenant is its rejection. */
  assert_int_equal(status_of(f, "{\"model\":\"codex-70b\"}", KEY_BATCH, NULL),
                   400);

  snprintf(url, sizeof url, "%s/metrics", f->s.base);
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 200);
  const char *m = r.body;
  assert_true(hc_metric(m, "infsched_tenant_requests_received_total{tenant="
                           "\"acme\"}") == 2);
  assert_true(hc_metric(m, "infsched_tenant_requests_received_total{tenant="
                           "\"batchco\"}") == 4);
  assert_true(hc_metric(m, "infsched_tenant_requests_total" TENANT(
                               "acme", "outcome=\"completed\"")) == 2);
  assert_true(hc_metric(m, "infsched_tenant_requests_total" TENANT(
                               "batchco", "outcome=\"completed\"")) == 3);
  assert_true(hc_metric(m, "infsched_tenant_requests_total" TENANT(
                               "batchco", "outcome=\"rejected\"")) == 1);
  assert_true(hc_metric(m, "infsched_tenant_requests_total" TENANT(
                               "acme", "outcome=\"failed\"")) == 0);
  assert_true(hc_metric(m, "infsched_tenant_tokens_total" TENANT(
                               "acme", "kind=\"generated\"")) == 6);
  assert_true(hc_metric(m, "infsched_tenant_tokens_total" TENANT(
                               "batchco", "kind=\"generated\"")) == 10);
  assert_true(hc_metric(m, "infsched_tenant_tokens_total" TENANT(
                               "acme", "kind=\"prompt\"")) > 0);
  assert_true(hc_metric(m, "infsched_http_responses_total{route=\"/v1/"
                           "completions\",code=\"401\"}") == 2);
  hc_response_free(&r);
  /* Written 0600: no warning that others may read the keys. */
  assert_int_equal(harness_count_log(f->s.log, "readable by others"), 0);
}

/* Keys others may read are served, with a warning. */
static void test_readable_keys_file_warned(void **state) {
  hc_fixture_t *f = *state;
  char keys[600];
  snprintf(keys, sizeof keys, "%s/keys.yaml", f->dir);
  assert_int_equal(harness_write_file(keys,
                                      "keys:\n"
                                      "  - {key: " KEY_ACME ", tenant: acme}\n",
                                      0644),
                   0);
  const char *extra[] = {"--api-keys", keys, NULL};
  hc_sched_start(&f->s, extra);
  assert_int_equal(harness_wait_log(f->s.log,
                                    "is readable by others than its owner "
                                    "(mode 644)",
                                    5000),
                   0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_api_keys, hc_setup, hc_teardown),
      cmocka_unit_test_setup_teardown(test_readable_keys_file_warned, hc_setup,
                                      hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
