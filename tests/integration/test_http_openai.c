/* The official openai npm client (installed by the npm_install_openai
 * fixture) against the scheduler's HTTP API: completions and chat,
 * streamed and not, the model list, and errors raised as the client's own
 * error classes. */
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

#ifndef OPENAI_CLIENT
#error "OPENAI_CLIENT must name openai_client.mjs in the build tree"
#endif

#define MODEL "codex-70b"

/* Runs a node script whose argv ends in a NULL slot for the JSON file it
 * writes, then a NULL; returns what it wrote. */
static cJSON *run_node(const char *dir, char **argv) {
  char out[600], log[600];
  snprintf(out, sizeof out, "%s/node.json", dir);
  snprintf(log, sizeof log, "%s/node.log", dir);
  size_t n = 0;
  while (argv[n])
    n++;
  argv[n] = out;
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  int status;
  assert_int_equal(harness_wait(p, 60000, &status), 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char *text = harness_read_file(log);
    fail_msg("node failed: %s", text ? text : "");
  }
  harness_stop(&p);
  return harness_read_json(out);
}

static void test_openai_node_client(void **state) {
  (void)state;
  char *dir = harness_tmpdir();
  hc_sched_t s;
  hc_sched_init(&s, dir, "scheduler");
  hc_sched_start(&s, NULL);
  hc_worker_start(&s, dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&s, 1);

  char base[160];
  snprintf(base, sizeof base, "%s/v1", s.base);
  char *argv[] = {"node", OPENAI_CLIENT, base, MODEL, NULL, NULL};
  cJSON *j = run_node(dir, argv);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "completion.object")->valuestring,
                      "text_completion");
  assert_string_equal(hc_at(j, "completion.text")->valuestring,
                      " tok tok tok tok");
  assert_string_equal(hc_at(j, "completion.finish")->valuestring, "length");
  assert_int_equal(hc_at(j, "completion.usage.completion_tokens")->valueint, 4);
  assert_string_equal(hc_at(j, "completion.model")->valuestring, MODEL);

  assert_string_equal(hc_at(j, "completion_stream.text")->valuestring,
                      " tok tok tok tok tok");
  assert_string_equal(hc_at(j, "completion_stream.finish")->valuestring,
                      "length");
  assert_true(hc_at(j, "completion_stream.chunks")->valueint >= 2);

  assert_string_equal(hc_at(j, "chat.object")->valuestring, "chat.completion");
  assert_string_equal(hc_at(j, "chat.role")->valuestring, "assistant");
  assert_string_equal(hc_at(j, "chat.content")->valuestring, " tok tok tok");
  assert_int_equal(hc_at(j, "chat.usage.total_tokens")->valueint,
                   hc_at(j, "chat.usage.prompt_tokens")->valueint + 3);

  assert_string_equal(hc_at(j, "chat_stream.role")->valuestring, "assistant");
  assert_string_equal(hc_at(j, "chat_stream.text")->valuestring,
                      " tok tok tok tok");
  assert_string_equal(hc_at(j, "chat_stream.finish")->valuestring, "length");
  assert_int_equal(hc_at(j, "chat_stream.usage.completion_tokens")->valueint,
                   4);

  assert_string_equal(hc_at(j, "models.0")->valuestring, MODEL);
  assert_null(hc_at(j, "models.1"));
  assert_string_equal(hc_at(j, "model_classes.0")->valuestring, "sram");
  assert_null(hc_at(j, "model_classes.1"));
  assert_string_equal(hc_at(j, "model.id")->valuestring, MODEL);
  assert_string_equal(hc_at(j, "model.object")->valuestring, "model");
  assert_int_equal(hc_at(j, "model.workers")->valueint, 1);
  assert_int_equal(hc_at(j, "model_missing.status")->valueint, 404);

  assert_int_equal(hc_at(j, "not_found.status")->valueint, 404);
  assert_string_equal(hc_at(j, "not_found.name")->valuestring, "NotFoundError");
  assert_string_equal(hc_at(j, "not_found.code")->valuestring,
                      "model_not_found");
  assert_int_equal(hc_at(j, "bad_request.status")->valueint, 400);
  assert_string_equal(hc_at(j, "bad_request.name")->valuestring,
                      "BadRequestError");
  cJSON_Delete(j);

  /* The class header given through the client reached the core. */
  assert_true(hc_wait_metric(dir, s.base,
                             "infsched_requests_total{class=\"interactive\","
                             "outcome=\"completed\"}",
                             1) == 1);
  harness_stop_all();
  assert_int_equal(hc_check_logs(dir), 0);
  harness_rmtree(dir);
  free(dir);
}

#ifndef OPENAI_PASSTHROUGH
#error "OPENAI_PASSTHROUGH must name openai_passthrough.mjs in the build tree"
#endif

/* What the official client sends reaches an openai backend's upstream as
 * sent (sampling fields, stop, tools, multi-turn chat with its system
 * message, names, tool calls and content parts), under the worker's
 * --model; a sim worker refuses what it cannot honour with 400 and ends a
 * request with a stop sequence early, the same way for the same seed. */
static void test_request_reaches_upstream(void **state) {
  (void)state;
  char *dir = harness_tmpdir();
  hc_sched_t s;
  hc_sched_init(&s, dir, "scheduler");
  hc_sched_start(&s, NULL);
  int port = harness_free_port();
  char spec[64], port_s[16];
  /* Its upstream starts with the client below: probed often, the worker
   * is healthy soon after, as the script waits to see. */
  snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,health_ms=100",
           port);
  snprintf(port_s, sizeof port_s, "%d", port);
  const char *extra[] = {"--model", "up-model", NULL};
  hc_worker_start(&s, dir, "oa-0", "gpu-h100", spec, extra);
  hc_worker_start(&s, dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&s, 2);
  /* The scheduler has heard that the upstream is down before the script
   * starts it: the script's wait for both workers to serve then waits for
   * a heartbeat after a probe found it up, and no request of its waits
   * out the grace. */
  assert_true(
      zclient_wait_status(s.clients, zclient_says_unhealthy, "oa-0", 15000));

  char base[160];
  snprintf(base, sizeof base, "%s/v1", s.base);
  char *argv[] = {"node", OPENAI_PASSTHROUGH, base, port_s, "up-model", MODEL,
                  NULL, NULL};
  cJSON *j = run_node(dir, argv);
  assert_non_null(j);
  const cJSON *sent = cJSON_GetObjectItem(j, "sent");
  const cJSON *received = cJSON_GetObjectItem(j, "received");
  assert_int_equal(cJSON_GetArraySize(received), cJSON_GetArraySize(sent));
  for (int i = 0; i < cJSON_GetArraySize(sent); i++) {
    const cJSON *si = cJSON_GetArrayItem(sent, i);
    const cJSON *ri = cJSON_GetArrayItem(received, i);
    bool chat = strcmp(cJSON_GetObjectItem(si, "kind")->valuestring, "chat") == 0;
    assert_string_equal(cJSON_GetObjectItem(ri, "path")->valuestring,
                        chat ? "/v1/chat/completions" : "/v1/completions");
    const cJSON *body = cJSON_GetObjectItem(ri, "body");
    const cJSON *field;
    cJSON_ArrayForEach(field, cJSON_GetObjectItem(si, "body")) {
      if (strcmp(field->string, "stream") == 0)
        continue;
      const cJSON *got = cJSON_GetObjectItemCaseSensitive(body, field->string);
      if (!cJSON_Compare(field, got, true)) {
        char *a = cJSON_PrintUnformatted(field);
        char *b = got ? cJSON_PrintUnformatted(got) : NULL;
        fail_msg("request %d: '%s' sent %s, upstream got %s", i, field->string,
                 a, b ? b : "nothing");
      }
    }
    assert_string_equal(hc_at(j, "answers.0.text")->valuestring, "ok");
  }
  assert_string_equal(hc_at(j, "answers.1.finish")->valuestring, "stop");
  /* The upstream's tool call, streamed in pieces, reaches the client whole
   * in an answer and piece by piece in a stream. */
  for (int i = 3; i <= 4; i++) {
    char path[64];
    snprintf(path, sizeof path, "answers.%d.finish", i);
    assert_string_equal(hc_at(j, path)->valuestring, "tool_calls");
    snprintf(path, sizeof path, "answers.%d.tool_calls.0.id", i);
    assert_string_equal(hc_at(j, path)->valuestring, "call_9");
    snprintf(path, sizeof path, "answers.%d.tool_calls.0.type", i);
    assert_string_equal(hc_at(j, path)->valuestring, "function");
    snprintf(path, sizeof path, "answers.%d.tool_calls.0.function.name", i);
    assert_string_equal(hc_at(j, path)->valuestring, "read_file");
    snprintf(path, sizeof path, "answers.%d.tool_calls.0.function.arguments",
             i);
    assert_string_equal(hc_at(j, path)->valuestring, "{\"path\":\"b.c\"}");
    snprintf(path, sizeof path, "answers.%d.tool_calls.1", i);
    assert_null(hc_at(j, path));
  }
  assert_true(cJSON_IsNull(hc_at(j, "answers.3.text"))); /* content null */
  /* The upstream's log probabilities, in each API's shape. */
  assert_string_equal(hc_at(j, "answers.0.logprobs.tokens.0")->valuestring,
                      "ok");
  assert_true(hc_at(j, "answers.0.logprobs.token_logprobs.0")->valuedouble ==
              -0.25);
  assert_string_equal(
      hc_at(j, "answers.1.logprobs.content.0.token")->valuestring, "ok");
  assert_true(hc_at(j, "answers.1.logprobs.content.0.logprob")->valuedouble ==
              -0.25);
  assert_true(cJSON_IsNull(hc_at(j, "answers.3.logprobs")));
  assert_string_equal(hc_at(j, "answers.2.text")->valuestring, "ok");

  assert_int_equal(hc_at(j, "refused.status")->valueint, 400);
  assert_string_equal(hc_at(j, "refused.name")->valuestring, "BadRequestError");
  assert_non_null(strstr(hc_at(j, "refused.message")->valuestring, "'tools'"));
  assert_string_equal(hc_at(j, "stopped.finish")->valuestring, "stop");
  int stopped = hc_at(j, "stopped.tokens")->valueint;
  assert_true(stopped >= 1 && stopped < 50);
  assert_int_equal(hc_at(j, "stopped_again.tokens")->valueint, stopped);
  cJSON_Delete(j);
  harness_stop_all();
  assert_int_equal(hc_check_logs(dir), 0);
  harness_rmtree(dir);
  free(dir);
}

#ifndef OPENAI_KEYS
#error "OPENAI_KEYS must name openai_keys.mjs in the build tree"
#endif

#define KEY "sk-team-a-0123456789abcdef"

/* With API keys, the client's apiKey is what opens the API, and a wrong
 * one is the client's AuthenticationError; the key's tenant is counted. */
static void test_openai_client_with_api_keys(void **state) {
  hc_fixture_t *f = *state;
  const char *dir = f->dir;
  char keys[600];
  snprintf(keys, sizeof keys, "%s/keys.yaml", dir);
  assert_int_equal(harness_write_file(keys,
                                      "keys:\n"
                                      "  - key: " KEY "\n"
                                      "    tenant: team-a\n",
                                      0600),
                   0);
  const char *extra[] = {"--api-keys", keys, NULL};
  hc_sched_start(&f->s, extra);
  hc_worker_start(&f->s, dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 1);

  char base[160];
  snprintf(base, sizeof base, "%s/v1", f->s.base);
  char *argv[] = {"node", OPENAI_KEYS, base, MODEL, KEY, NULL, NULL};
  cJSON *j = run_node(dir, argv);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "completion.text")->valuestring, " tok tok tok");
  assert_string_equal(hc_at(j, "model")->valuestring, MODEL);
  assert_int_equal(hc_at(j, "wrong_key.status")->valueint, 401);
  assert_string_equal(hc_at(j, "wrong_key.name")->valuestring,
                      "AuthenticationError");
  assert_string_equal(hc_at(j, "wrong_key.code")->valuestring,
                      "invalid_api_key");
  assert_int_equal(hc_at(j, "wrong_key_models.status")->valueint, 401);
  cJSON_Delete(j);
  assert_true(hc_wait_metric(dir, f->s.base,
                             "infsched_tenant_requests_total{tenant=\"team-a\","
                             "outcome=\"completed\"}",
                             1) == 1);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_openai_node_client),
      cmocka_unit_test(test_request_reaches_upstream),
      cmocka_unit_test_setup_teardown(test_openai_client_with_api_keys,
                                      hc_setup, hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
