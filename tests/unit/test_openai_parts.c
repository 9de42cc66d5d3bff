/* The openai backend's pure parts: its options, its SSE reader and the
 * bodies it sends upstream, vLLM's disaggregated exchange among them. */
#include "openai_body.h"
#include "openai_opts.h"
#include "openai_sse.h"

#include <cjson/cJSON.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_options(void **state) {
  (void)state;
  openai_opts_t o;
  char err[256], url[1100];
  assert_int_equal(openai_opts_parse("http://h:1/v1/", &o, err, sizeof err), 0);
  assert_string_equal(o.base, "http://h:1/v1");
  assert_int_equal(o.api, OPENAI_API_AUTO);
  assert_false(openai_opts_chat(&o, false));
  assert_true(openai_opts_chat(&o, true));
  assert_int_equal(o.timeout_ms, OPENAI_DEFAULT_TIMEOUT_MS);
  openai_opts_endpoint(&o, false, url, sizeof url);
  assert_string_equal(url, "http://h:1/v1/completions");
  assert_int_equal(
      openai_opts_parse("https://h/v1,model=llama,api=chat,timeout_ms=250,"
                        "connect_timeout_ms=50,api_key_env=KEY",
                        &o, err, sizeof err),
      0);
  assert_string_equal(o.model, "llama");
  assert_true(openai_opts_chat(&o, false));
  assert_int_equal(o.timeout_ms, 250);
  assert_int_equal(o.connect_timeout_ms, 50);
  assert_string_equal(o.api_key_env, "KEY");
  openai_opts_endpoint(&o, true, url, sizeof url);
  assert_string_equal(url, "https://h/v1/chat/completions");

  static const char *const bad[] = {
      NULL,
      "",
      "ftp://h",
      "h:80/v1",
      "http://h,x",
      "http://h,colour=red",
      "http://h,api=rpc",
      "http://h,timeout_ms=-1",
      "http://h,timeout_ms=9x",
      "http://h,api_key_env=",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_int_equal(openai_opts_parse(bad[i], &o, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
  }
}

typedef struct seen {
  char data[8][64];
  int n;
  int stop_at;
} seen_t;

static int on_event(void *arg, const char *data, size_t len) {
  seen_t *s = arg;
  assert_int_equal(strlen(data), len);
  snprintf(s->data[s->n], sizeof s->data[0], "%s", data);
  return ++s->n == s->stop_at ? 7 : 0;
}

static void test_sse_reader(void **state) {
  (void)state;
  const char *stream = ": comment\r\n"
                       "data: {\"a\":1}\r\n\r\n"
                       "event: x\nid: 3\ndata:two\ndata: lines\n\n"
                       "data: [DONE]\r\r"
                       "data: unfinished";
  /* Byte by byte and whole must agree. */
  for (int step = 1; step <= 2; step++) {
    openai_sse_t p;
    seen_t s = {.stop_at = -1};
    openai_sse_init(&p);
    size_t len = strlen(stream);
    if (step == 1) {
      for (size_t i = 0; i < len; i++)
        assert_int_equal(openai_sse_feed(&p, stream + i, 1, on_event, &s), 0);
    } else {
      assert_int_equal(openai_sse_feed(&p, stream, len, on_event, &s), 0);
    }
    assert_int_equal(s.n, 3);
    assert_string_equal(s.data[0], "{\"a\":1}");
    assert_string_equal(s.data[1], "two\nlines");
    assert_string_equal(s.data[2], "[DONE]");
    openai_sse_free(&p);
  }
  openai_sse_t p;
  seen_t s = {.stop_at = 1};
  openai_sse_init(&p);
  assert_int_equal(
      openai_sse_feed(&p, "data: a\n\ndata: b\n\n", 18, on_event, &s), 7);
  assert_int_equal(s.n, 1);
  openai_sse_free(&p);
}

/* An upstream cannot grow the reader without bound: a line of
 * OPENAI_SSE_MAX bytes is an error, one byte less is not. */
static void test_sse_reader_caps_a_line(void **state) {
  (void)state;
  char *big = malloc(OPENAI_SSE_MAX + 1);
  assert_non_null(big);
  memset(big, 'x', OPENAI_SSE_MAX);
  big[OPENAI_SSE_MAX] = '\n';
  openai_sse_t p;
  seen_t s = {.stop_at = -1};
  openai_sse_init(&p);
  assert_int_equal(openai_sse_feed(&p, big, OPENAI_SSE_MAX - 1, on_event, &s),
                   0);
  assert_int_equal(openai_sse_feed(&p, big, 1, on_event, &s), -1);
  openai_sse_free(&p);
  openai_sse_init(&p);
  assert_int_equal(openai_sse_feed(&p, big, OPENAI_SSE_MAX - 1, on_event, &s),
                   0);
  assert_int_equal(openai_sse_feed(&p, "\n", 1, on_event, &s), 0);
  openai_sse_free(&p);
  free(big);
}

static cJSON *body_of(const infs_request_t *r, bool chat) {
  char *text = NULL;
  const char *why = NULL;
  assert_int_equal(openai_body(r, "up-model", chat, &text, &why), 0);
  cJSON *j = cJSON_Parse(text);
  assert_non_null(j);
  free(text);
  return j;
}

static const cJSON *field(const cJSON *o, const char *name) {
  return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* The body's fields, in the order they were added, as "name=json" lines
 * that one comparison checks whole. */
static void assert_fields(const cJSON *o, const char *want) {
  char got[2048] = "";
  size_t len = 0;
  const cJSON *f;
  cJSON_ArrayForEach(f, o) {
    char *v = cJSON_PrintUnformatted(f);
    len += (size_t)snprintf(got + len, sizeof got - len, "%s=%s\n", f->string,
                            v);
    free(v);
  }
  assert_string_equal(got, want);
}

/* A whole request: the client's options as sent (less the fields the
 * worker sets, and a kv_transfer_params of the client's own), streamed. */
static void test_body_of_a_whole_request(void **state) {
  (void)state;
  infs_request_t r = {
      .prompt = "def f():",
      .prompt_len = 8,
      .max_tokens = 7,
      .options = "{\"stop\":[\"\\n\"],\"max_tokens\":99,\"min_tokens\":2,"
                 "\"kv_transfer_params\":{\"do_remote_prefill\":true,"
                 "\"remote_host\":\"10.9.9.9\"}}",
      .has_seed = 1,
      .seed = 5,
  };
  cJSON *j = body_of(&r, false);
  assert_fields(j, "stop=[\"\\n\"]\n"
                   "min_tokens=2\n"
                   "model=\"up-model\"\n"
                   "prompt=\"def f():\"\n"
                   "seed=5\n"
                   "max_tokens=7\n"
                   "stream=true\n"
                   "stream_options={\"include_usage\":true}\n");
  cJSON_Delete(j);

  r.options = "[1]";
  char *text = NULL;
  const char *why = NULL;
  assert_int_equal(openai_body(&r, "m", false, &text, &why),
                   OPENAI_BODY_BAD_OPTIONS);
  assert_null(text);
  assert_non_null(strstr(why, "options"));
}

/* The prefill of a split request, as vLLM's NIXL proxy
 * (tests/v1/kv_connector/nixl_integration/toy_proxy_server.py) sends it:
 * one token, not streamed, no stream_options or min_tokens, and
 * kv_transfer_params asking the server to keep the KV for a remote
 * decode. */
static void test_body_of_a_prefill(void **state) {
  (void)state;
  infs_request_t r = {
      .prompt = "def f():",
      .prompt_len = 8,
      .max_tokens = 64,
      .options = "{\"min_tokens\":4,\"min_completion_tokens\":4,"
                 "\"stop\":\"x\"}",
      .phase = INFS_PHASE_PREFILL,
  };
  cJSON *j = body_of(&r, false);
  assert_fields(j, "stop=\"x\"\n"
                   "model=\"up-model\"\n"
                   "prompt=\"def f():\"\n"
                   "max_tokens=1\n"
                   "stream=false\n"
                   "kv_transfer_params={\"do_remote_decode\":true,"
                   "\"do_remote_prefill\":false,\"remote_engine_id\":null,"
                   "\"remote_block_ids\":null,\"remote_host\":null,"
                   "\"remote_port\":null}\n");
  cJSON_Delete(j);
  /* A chat prefill the same, with the messages as sent. */
  r.messages = "[{\"role\":\"user\",\"content\":\"hi\"}]";
  j = body_of(&r, true);
  assert_string_equal(
      cJSON_GetArrayItem(field(j, "messages"), 0)->child->next->valuestring,
      "hi");
  assert_true(cJSON_IsFalse(field(j, "stream")));
  assert_int_equal(field(j, "max_tokens")->valueint, 1);
  assert_true(cJSON_IsTrue(
      field(field(j, "kv_transfer_params"), "do_remote_decode")));
  cJSON_Delete(j);
}

/* The decode of a split request: the client's request as the prefill
 * instance ran it (its prompt without the first token's text, which the
 * worker appended as for a migration, and its whole max_tokens), streamed,
 * with the kv_transfer_params the prefill instance returned as they came. */
static void test_body_of_a_decode(void **state) {
  (void)state;
  const char *params =
      "{\"do_remote_prefill\":true,\"do_remote_decode\":false,"
      "\"remote_block_ids\":[4,5],\"remote_engine_id\":\"e-1\","
      "\"remote_request_id\":\"cmpl-9\",\"remote_host\":\"10.0.0.5\","
      "\"remote_port\":5600,\"tp_size\":1}";
  infs_kv_handle_t kv = {.params_json = params, .params_len = strlen(params)};
  infs_request_t r = {
      .prompt = "def f(): w1",
      .prompt_len = 11,
      .max_tokens = 63,
      .resumed = 1,
      .resumed_len = 3,
      .options = "{\"min_tokens\":4}",
      .phase = INFS_PHASE_DECODE,
      .kv = &kv,
  };
  cJSON *j = body_of(&r, false);
  assert_fields(j, "min_tokens=4\n"
                   "model=\"up-model\"\n"
                   "prompt=\"def f():\"\n"
                   "max_tokens=64\n"
                   "stream=true\n"
                   "stream_options={\"include_usage\":true}\n"
                   "kv_transfer_params={\"do_remote_prefill\":true,"
                   "\"do_remote_decode\":false,\"remote_block_ids\":[4,5],"
                   "\"remote_engine_id\":\"e-1\",\"remote_request_id\":"
                   "\"cmpl-9\",\"remote_host\":\"10.0.0.5\","
                   "\"remote_port\":5600,\"tp_size\":1}\n");
  cJSON_Delete(j);

  /* A prefill from a backend that left no vLLM handle (the sim's), or one
   * that is not an object: nothing to decode from. */
  static const char *const bad[] = {NULL, "[]", "{\"a\":"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    kv.params_json = bad[i];
    kv.params_len = bad[i] ? strlen(bad[i]) : 0;
    char *text = NULL;
    const char *why = NULL;
    assert_int_equal(openai_body(&r, "m", false, &text, &why),
                     OPENAI_BODY_BAD_KV);
    assert_null(text);
    assert_non_null(strstr(why, "kv_transfer_params"));
  }
}

/* A migrated request: a completion goes on from its prompt and the text
 * the client has; a chat request is asked anew, whole, for the backend to
 * drop what the client has from its answer. */
static void test_body_of_a_resumed_request(void **state) {
  (void)state;
  infs_request_t r = {
      .prompt = "user: hi\n w1 w2",
      .prompt_len = strlen("user: hi\n w1 w2"),
      .max_tokens = 4,
      .resumed = 2,
      .resumed_len = 6,
  };
  assert_false(openai_body_regenerates(&r, false));
  cJSON *j = body_of(&r, false);
  assert_string_equal(field(j, "prompt")->valuestring, "user: hi\n w1 w2");
  assert_int_equal(field(j, "max_tokens")->valueint, 4);
  cJSON_Delete(j);

  assert_true(openai_body_regenerates(&r, true));
  /* A completion sent as a chat message, then a chat request. */
  static const struct {
    const char *messages, *content;
  } asked[] = {{NULL, "user: hi\n"},
               {"[{\"role\":\"user\",\"content\":\"hi\"}]", "hi"}};
  for (size_t i = 0; i < sizeof asked / sizeof *asked; i++) {
    r.messages = asked[i].messages;
    j = body_of(&r, true);
    const cJSON *m = cJSON_GetArrayItem(field(j, "messages"), 0);
    assert_string_equal(field(m, "content")->valuestring, asked[i].content);
    assert_int_equal(field(j, "max_tokens")->valueint, 6);
    cJSON_Delete(j);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_sse_reader),
      cmocka_unit_test(test_sse_reader_caps_a_line),
      cmocka_unit_test(test_body_of_a_whole_request),
      cmocka_unit_test(test_body_of_a_prefill),
      cmocka_unit_test(test_body_of_a_decode),
      cmocka_unit_test(test_body_of_a_resumed_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
