/* The front door's pure parts: OpenAI request parsing and rendering, text
 * block hashes, SSE framing, and the metrics exposition. */
#include "buf.h"
#include "metrics.h"
#include "oai.h"
#include "prompt_hash.h"
#include "sse.h"

#include "infsched.pb-c.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int parse(oai_kind_t kind, const char *body, oai_request_t *r, char *msg,
                 const char **param) {
  return oai_parse_request(kind, body, strlen(body), r, msg, 256, param);
}

static void test_parse_completion(void **state) {
  (void)state;
  oai_request_t r;
  char msg[256];
  const char *param;
  assert_int_equal(parse(OAI_COMPLETIONS,
                         "{\"model\":\"m\",\"prompt\":\"abc\",\"max_tokens\":9,"
                         "\"stream\":true,\"stream_options\":{\"include_usage\""
                         ":true},\"infsched_class\":\"batch\","
                         "\"infsched_session\":\"s\",\"temperature\":0.2}",
                         &r, msg, &param),
                   0);
  assert_string_equal(r.model, "m");
  assert_string_equal(r.prompt, "abc");
  assert_int_equal(r.prompt_len, 3);
  assert_int_equal(r.max_tokens, 9);
  assert_true(r.stream);
  assert_true(r.include_usage);
  assert_true(r.has_class);
  assert_int_equal(r.cls, INFS_CLASS_BATCH);
  assert_string_equal(r.session, "s");
  oai_request_free(&r);

  assert_int_equal(parse(OAI_COMPLETIONS,
                         "{\"model\":\"m\",\"prompt\":[\"one\"]}", &r, msg,
                         &param),
                   0);
  assert_string_equal(r.prompt, "one");
  assert_int_equal(r.max_tokens, OAI_DEFAULT_MAX_TOKENS_COMPLETIONS);
  assert_false(r.stream);
  oai_request_free(&r);
}

static void test_parse_chat(void **state) {
  (void)state;
  oai_request_t r;
  char msg[256];
  const char *param;
  assert_int_equal(
      parse(OAI_CHAT,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
            "\"be brief\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
            "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":"
            "\"assistant\",\"content\":null}],\"max_completion_tokens\":5}",
            &r, msg, &param),
      0);
  assert_string_equal(r.prompt, "system: be brief\nuser: ab\nassistant: \n");
  assert_int_equal(r.max_tokens, 5);
  oai_request_free(&r);
  assert_int_equal(parse(OAI_CHAT,
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"x\"}]}",
                         &r, msg, &param),
                   0);
  assert_int_equal(r.max_tokens, OAI_DEFAULT_MAX_TOKENS_CHAT);
  oai_request_free(&r);
}

/* What the scheduler does not act on reaches the backend as sent: chat
 * messages whole (parts it cannot render too), the typed sampling fields,
 * and every other field in options. */
static void test_parse_backend_fields(void **state) {
  (void)state;
  oai_request_t r;
  char msg[256];
  const char *param;
  assert_int_equal(
      parse(OAI_CHAT,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
            "\"s\"},{\"role\":\"user\",\"name\":\"ann\",\"content\":[{\"type\":"
            "\"image_url\",\"image_url\":{\"url\":\"u\"}}]}],\"temperature\":0.7,"
            "\"top_p\":1,\"seed\":-42,\"stop\":[\"x\"],\"tools\":[{\"type\":"
            "\"function\"}],\"logprobs\":true,\"user\":null,\"top_k\":5}",
            &r, msg, &param),
      0);
  assert_string_equal(r.prompt, "system: s\nuser: \n");
  assert_string_equal(r.messages,
                      "[{\"role\":\"system\",\"content\":\"s\"},{\"role\":"
                      "\"user\",\"name\":\"ann\",\"content\":[{\"type\":"
                      "\"image_url\",\"image_url\":{\"url\":\"u\"}}]}]");
  assert_string_equal(r.options,
                      "{\"stop\":[\"x\"],\"tools\":[{\"type\":\"function\"}],"
                      "\"logprobs\":true,\"top_k\":5}");
  assert_true(r.has_temperature && r.has_top_p && r.has_seed);
  assert_true(r.temperature == 0.7 && r.top_p == 1.0);
  assert_int_equal(r.seed, -42);
  oai_request_free(&r);
  assert_int_equal(parse(OAI_COMPLETIONS,
                         "{\"model\":\"m\",\"prompt\":\"p\",\"stream\":false}",
                         &r, msg, &param),
                   0);
  assert_null(r.messages);
  assert_null(r.options);
  assert_false(r.has_temperature || r.has_top_p || r.has_seed);
  oai_request_free(&r);
}

static void test_parse_errors(void **state) {
  (void)state;
  static const struct {
    oai_kind_t kind;
    const char *body;
    const char *param;
  } cases[] = {
      {OAI_COMPLETIONS, "{\"model\":", NULL},
      {OAI_COMPLETIONS, "[]", NULL},
      {OAI_COMPLETIONS, "{\"prompt\":\"x\"}", "model"},
      {OAI_COMPLETIONS, "{\"model\":\"\",\"prompt\":\"x\"}", "model"},
      {OAI_COMPLETIONS, "{\"model\":\"m\"}", "prompt"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}", "prompt"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[1,2]}", "prompt"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":0}",
       "max_tokens"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":1.5}",
       "max_tokens"},
      {OAI_COMPLETIONS,
       "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":\"9\"}", "max_tokens"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"n\":2}", "n"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"stream\":1}",
       "stream"},
      {OAI_COMPLETIONS,
       "{\"model\":\"m\",\"prompt\":\"x\",\"infsched_class\":\"vip\"}",
       "infsched_class"},
      {OAI_CHAT, "{\"model\":\"m\",\"messages\":[]}", "messages"},
      {OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}",
       "messages"},
      {OAI_CHAT,
       "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{"
       "\"text\":\"x\"}]}]}",
       "messages"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":3}",
       "temperature"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"top_p\":\"1\"}",
       "top_p"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"seed\":1.5}",
       "seed"},
      {OAI_COMPLETIONS,
       "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\","
       "\"e\"]}",
       "stop"},
      {OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[1]}",
       "stop"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    oai_request_t r;
    char msg[256] = "";
    const char *param = "unset";
    assert_int_equal(parse(cases[i].kind, cases[i].body, &r, msg, &param), -1);
    assert_true(strlen(msg) > 0);
    if (cases[i].param)
      assert_string_equal(param, cases[i].param);
    else
      assert_null(param);
    assert_null(r.model);
  }
}

/* Tool calls streamed in pieces become whole calls in an answer, and a
 * stream's pieces are relayed as they came. */
static void test_tool_calls(void **state) {
  (void)state;
  static const char *const pieces[] = {
      "[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
      "\"function\":{\"name\":\"read_file\",\"arguments\":\"\"}}]",
      "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"path\\\":\"}}]",
      "[{\"index\":1,\"id\":\"call_2\",\"type\":\"function\","
      "\"function\":{\"name\":\"ls\",\"arguments\":\"{}\"}},"
      "{\"index\":0,\"function\":{\"arguments\":\"\\\"a.c\\\"}\"}}]",
  };
  oai_pieces_t t = {0};
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(oai_tool_calls_merge(&t, pieces[i], strlen(pieces[i])),
                     0);
  assert_int_equal(oai_tool_calls_merge(&t, "{}", 2), -1);
  assert_int_equal(oai_tool_calls_merge(&t, "[", 1), -1);
  oai_meta_t m = {.kind = OAI_CHAT, .id = "chatcmpl-1", .model = "m",
                  .created = 1};
  oai_usage_t u = {.prompt_tokens = 3, .completion_tokens = 3};
  char *s = oai_render_response(&m, "", "tool_calls", &u, NULL, &t);
  cJSON *j = cJSON_Parse(s);
  assert_non_null(j);
  const cJSON *msg = cJSON_GetObjectItem(
      cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(msg, "content")));
  const cJSON *calls = cJSON_GetObjectItem(msg, "tool_calls");
  assert_int_equal(cJSON_GetArraySize(calls), 2);
  const cJSON *c0 = cJSON_GetArrayItem(calls, 0);
  assert_null(cJSON_GetObjectItem(c0, "index"));
  assert_string_equal(cJSON_GetObjectItem(c0, "id")->valuestring, "call_1");
  assert_string_equal(cJSON_GetObjectItem(c0, "type")->valuestring,
                      "function");
  const cJSON *f0 = cJSON_GetObjectItem(c0, "function");
  assert_string_equal(cJSON_GetObjectItem(f0, "name")->valuestring,
                      "read_file");
  assert_string_equal(cJSON_GetObjectItem(f0, "arguments")->valuestring,
                      "{\"path\":\"a.c\"}");
  const cJSON *f1 = cJSON_GetObjectItem(cJSON_GetArrayItem(calls, 1),
                                        "function");
  assert_string_equal(cJSON_GetObjectItem(f1, "name")->valuestring, "ls");
  cJSON_Delete(j);
  free(s);
  /* With text too, the content stays. */
  s = oai_render_response(&m, "Let me look.", "tool_calls", &u, NULL, &t);
  assert_non_null(strstr(s, "\"content\":\"Let me look.\""));
  free(s);
  oai_pieces_free(&t);
  oai_pieces_free(&t);

  s = oai_render_tool_chunk(&m, pieces[1], strlen(pieces[1]));
  j = cJSON_Parse(s);
  const cJSON *d = cJSON_GetObjectItem(
      cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "delta");
  assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring,
                      "chat.completion.chunk");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "tool_calls")),
                   1);
  cJSON_Delete(j);
  free(s);
  assert_null(oai_render_tool_chunk(&m, "nope", 4));
}

/* Log probabilities streamed in pieces: an answer gets each array joined
 * under its key, a stream each piece in an event of its own. */
static void test_logprobs(void **state) {
  (void)state;
  static const char *const chat[] = {
      "{\"content\":[{\"token\":\"a\",\"logprob\":-0.5}]}",
      "{\"content\":[{\"token\":\"b\",\"logprob\":-1},"
      "{\"token\":\"c\",\"logprob\":-2}],\"refusal\":null}",
  };
  oai_pieces_t t = {0};
  for (size_t i = 0; i < 2; i++)
    assert_int_equal(oai_logprobs_merge(&t, chat[i], strlen(chat[i])), 0);
  assert_int_equal(oai_logprobs_merge(&t, "[1]", 3), -1);
  oai_meta_t m = {.kind = OAI_CHAT, .id = "chatcmpl-1", .model = "m",
                  .created = 1};
  oai_usage_t u = {.prompt_tokens = 3, .completion_tokens = 3};
  char *s = oai_render_response(&m, "abc", "stop", &u, NULL, &t);
  cJSON *j = cJSON_Parse(s);
  const cJSON *content = cJSON_GetObjectItem(
      cJSON_GetObjectItem(
          cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0),
          "logprobs"),
      "content");
  assert_int_equal(cJSON_GetArraySize(content), 3);
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetArrayItem(content, 2), "token")->valuestring,
      "c");
  cJSON_Delete(j);
  free(s);
  oai_pieces_free(&t);

  /* Completions: parallel arrays, each joined. */
  static const char *const cmpl[] = {
      "{\"tokens\":[\"a\"],\"token_logprobs\":[-0.5],\"text_offset\":[0]}",
      "{\"tokens\":[\"b\"],\"token_logprobs\":[-1],\"text_offset\":[1]}",
  };
  for (size_t i = 0; i < 2; i++)
    assert_int_equal(oai_logprobs_merge(&t, cmpl[i], strlen(cmpl[i])), 0);
  m.kind = OAI_COMPLETIONS;
  s = oai_render_response(&m, "ab", "stop", &u, NULL, &t);
  assert_non_null(strstr(s, "\"logprobs\":{\"tokens\":[\"a\",\"b\"],"
                            "\"token_logprobs\":[-0.5,-1],"
                            "\"text_offset\":[0,1]}"));
  free(s);
  oai_pieces_free(&t);
  /* Without any, null as before. */
  s = oai_render_response(&m, "ab", "stop", &u, NULL, &t);
  assert_non_null(strstr(s, "\"logprobs\":null"));
  free(s);

  s = oai_render_logprobs_chunk(&m, cmpl[1], strlen(cmpl[1]));
  assert_non_null(strstr(s, "\"text\":\"\",\"logprobs\":{\"tokens\":[\"b\"]"));
  free(s);
  assert_null(oai_render_logprobs_chunk(&m, "null", 4));
}

/* Model ids in GET /v1/models/ID: percent-decoded, a raw '/' kept, bad
 * escapes refused with why. */
static void test_model_id(void **state) {
  (void)state;
  static const struct {
    const char *path;
    int rc;
    const char *id; /* rc 1: the id; rc -1: in the message */
  } table[] = {
      {"/v1/models/codex-70b", 1, "codex-70b"},
      {"/v1/models/meta-llama%2FLlama-3.1-8B", 1, "meta-llama/Llama-3.1-8B"},
      {"/v1/models/meta-llama%2fLlama-3.1-8B", 1, "meta-llama/Llama-3.1-8B"},
      {"/v1/models/meta-llama/Llama-3.1-8B", 1, "meta-llama/Llama-3.1-8B"},
      {"/v1/models/a%20b%25c", 1, "a b%c"},
      {"/v1/models/a+b", 1, "a+b"}, /* '+' is a space in queries only */
      {"/v1/models", 0, NULL},
      {"/v1/models/", 0, NULL},
      {"/v1/completions", 0, NULL},
      {"/v1/models/a%2", -1, "bad escape at '%2'"},
      {"/v1/models/a%zz", -1, "bad escape at '%zz'"},
      {"/v1/models/a%00b", -1, "not %00"},
      {"/v1/models/0123456789", -1, "longer than 7 bytes"},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    char out[64], msg[128] = "";
    size_t len = table[i].rc < 0 && strstr(table[i].id, "longer") ? 8
                                                                   : sizeof out;
    int rc = oai_model_id(table[i].path, out, len, msg, sizeof msg);
    if (rc != table[i].rc)
      fail_msg("%s: %d, wanted %d", table[i].path, rc, table[i].rc);
    if (rc > 0)
      assert_string_equal(out, table[i].id);
    else if (rc < 0 && !strstr(msg, table[i].id))
      fail_msg("%s: '%s' does not say '%s'", table[i].path, msg, table[i].id);
  }
}

static void test_render(void **state) {
  (void)state;
  oai_meta_t m = {OAI_CHAT, "chatcmpl-1", "m", 1700000000};
  oai_usage_t u = {3, 2, 1};
  oai_extra_t x = {"w-0", "gpu", 0.5};
  char *s = oai_render_response(&m, "hi \"there\"", "stop", &u, &x, NULL);
  cJSON *j = cJSON_Parse(s);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring,
                      "chat.completion");
  cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(c, "message"), "content")
          ->valuestring,
      "hi \"there\"");
  cJSON *usage = cJSON_GetObjectItem(j, "usage");
  assert_int_equal(cJSON_GetObjectItem(usage, "total_tokens")->valueint, 5);
  cJSON_Delete(j);
  free(s);

  s = oai_render_chunk(&m, NULL, true, NULL);
  assert_non_null(strstr(s, "\"delta\":{\"role\":\"assistant\"}"));
  assert_non_null(strstr(s, "\"finish_reason\":null"));
  free(s);
  m.kind = OAI_COMPLETIONS;
  s = oai_render_chunk(&m, "x", false, "length");
  assert_non_null(strstr(s, "\"object\":\"text_completion\""));
  assert_non_null(strstr(s, "\"text\":\"x\""));
  assert_non_null(strstr(s, "\"finish_reason\":\"length\""));
  free(s);
  s = oai_render_usage_chunk(&m, &u);
  assert_non_null(strstr(s, "\"choices\":[]"));
  free(s);
  s = oai_render_error("bad\nthing", "invalid_request_error", "prompt", NULL);
  assert_string_equal(s, "{\"error\":{\"message\":\"bad\\nthing\",\"type\":"
                         "\"invalid_request_error\",\"param\":\"prompt\","
                         "\"code\":null}}");
  free(s);
}

static void test_prompt_hash(void **state) {
  (void)state;
  char a[1024], b[1024];
  memset(a, 'a', sizeof a);
  memcpy(b, a, sizeof b);
  b[700] = 'b'; /* third chunk of 256 differs */
  uint64_t ha[4], hb[4];
  assert_int_equal(prompt_hash_chunk_bytes(64), 256);
  assert_int_equal(prompt_hash_blocks(a, sizeof a, 256, ha, 4), 4);
  assert_int_equal(prompt_hash_blocks(b, sizeof b, 256, hb, 4), 4);
  assert_true(ha[0] == hb[0] && ha[1] == hb[1]);
  assert_true(ha[2] != hb[2] && ha[3] != hb[3]);
  /* Chained: equal chunks at different positions hash differently. */
  assert_true(ha[0] != ha[1]);
  assert_int_equal(prompt_hash_blocks(a, 255, 256, ha, 4), 0);
  assert_int_equal(prompt_hash_blocks(a, 1000, 256, ha, 2), 3);
  assert_int_equal(prompt_hash_estimate_tokens(0), 1);
  assert_int_equal(prompt_hash_estimate_tokens(4096), 1024);
}

static void test_sse(void **state) {
  (void)state;
  buf_t b = {0};
  sse_append_event(&b, "{\"a\":1}");
  sse_append_event(&b, "one\ntwo");
  sse_append_done(&b);
  assert_string_equal(b.data, "data: {\"a\":1}\n\ndata: one\ndata: two\n\n"
                              "data: [DONE]\n\n");
  buf_free(&b);
}

static void test_metrics(void **state) {
  (void)state;
  core_config_t cfg;
  core_config_defaults(&cfg);
  int err;
  core_t *core = core_new(&cfg, 0, &err);
  assert_non_null(core);
  metrics_t *m = metrics_new(0);
  core_peer_t peer = {.door = CORE_DOOR_HTTP, .len = 8};
  core_action_t a = {.kind = CORE_ACT_CHUNK,
                     .request_id = 7,
                     .peer = peer,
                     .cls = INFS_CLASS_INTERACTIVE,
                     .arrived = 1000};
  metrics_on_action(m, 21000, &a); /* ttft 20 ms */
  a.streamed = true;
  metrics_on_action(m, 41000, &a); /* a later chunk: no second ttft */
  Infsched__Usage usage = INFSCHED__USAGE__INIT;
  usage.prompt_tokens = 10;
  usage.generated_tokens = 4;
  Infsched__Done done = INFSCHED__DONE__INIT;
  done.usage = &usage;
  done.cost_usd = 0.25;
  a.kind = CORE_ACT_DONE;
  a.passthrough = &done;
  metrics_on_action(m, 301000, &a); /* e2e 300 ms */
  /* A Done the core made (a split request's): its figures, not a
   * worker's message. */
  core_done_t made = {.prompt_tokens = 3000, .generated_tokens = 7,
                      .cost_usd = 0.5};
  a = (core_action_t){.kind = CORE_ACT_DONE, .request_id = 9, .peer = peer,
                      .cls = INFS_CLASS_AGENT, .arrived = 1000,
                      .done = &made, .streamed = true};
  metrics_on_action(m, 401000, &a);
  a = (core_action_t){.kind = CORE_ACT_ERROR,
                      .request_id = 8,
                      .peer = peer,
                      .code = 100,
                      .cls = INFS_CLASS_BATCH};
  metrics_on_action(m, 5, &a);
  metrics_on_http_status(m, METRICS_ROUTE_COMPLETIONS, 429);
  infs_profile_t tpu;
  memset(&tpu, 0, sizeof tpu);
  strcpy(tpu.name, "tpu");
  tpu.cls = INFS_WORKER_TPU;
  tpu.max_batch = 8;
  tpu.max_context = 8192;
  tpu.kv_tokens = 32768;
  tpu.block_size = 16;
  tpu.mem_bw_gbs = tpu.mem_eff = tpu.weights_gb = tpu.params_b = 1;
  tpu.peak_tflops = tpu.mfu = 1;
  core_worker_info_t info = {.worker_id = "tpu-0", .model = "m",
                             .profile = &tpu, .capacity = 4,
                             .role = INFS_ROLE_PREFILL};
  core_peer_t wp = {.door = CORE_DOOR_ZMQ, .len = 1, .id = "w"};
  core_on_register(core, 0, &wp, &info);
  buf_t out = {0};
  metrics_render(m, core, 2000000, 3, &out);
  const char *want[] = {
      "infsched_requests_total{class=\"interactive\",outcome=\"completed\"} "
      "1\n",
      "infsched_requests_total{class=\"batch\",outcome=\"rejected\"} 1\n",
      "infsched_ttft_seconds_bucket{class=\"interactive\",le=\"0.01\"} 0\n",
      "infsched_ttft_seconds_bucket{class=\"interactive\",le=\"0.025\"} 1\n",
      "infsched_ttft_seconds_count{class=\"interactive\"} 1\n",
      "infsched_e2e_seconds_bucket{class=\"interactive\",le=\"0.25\"} 0\n",
      "infsched_e2e_seconds_bucket{class=\"interactive\",le=\"0.5\"} 1\n",
      "infsched_e2e_seconds_count{class=\"interactive\"} 1\n",
      "infsched_tokens_total{class=\"interactive\",kind=\"generated\"} 4\n",
      "infsched_request_cost_usd_total{class=\"interactive\"} 0.25\n",
      "infsched_tokens_total{class=\"agent\",kind=\"prompt\"} 3000\n",
      "infsched_tokens_total{class=\"agent\",kind=\"generated\"} 7\n",
      "infsched_request_cost_usd_total{class=\"agent\"} 0.5\n",
      "infsched_worker_role{worker=\"tpu-0\",role=\"prefill\"} 1\n",
      "infsched_http_responses_total{route=\"/v1/completions\",code=\"429\"} "
      "1\n",
      "infsched_http_connections 3\n",
      "infsched_uptime_seconds 2.000\n",
      "# TYPE infsched_ttft_seconds histogram\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!strstr(out.data, want[i]))
      fail_msg("missing: %s", want[i]);
  buf_free(&out);
  metrics_destroy(&m);
  core_destroy(&core);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_completion),
      cmocka_unit_test(test_parse_chat),
      cmocka_unit_test(test_parse_backend_fields),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_render),
      cmocka_unit_test(test_model_id),
      cmocka_unit_test(test_tool_calls),
      cmocka_unit_test(test_logprobs),
      cmocka_unit_test(test_prompt_hash),
      cmocka_unit_test(test_sse),
      cmocka_unit_test(test_metrics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
