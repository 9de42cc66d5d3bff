/* The openai backend's side of vLLM's disaggregated prefill (NIXL
 * connector), driven as a worker drives it, on a loop of the test's own,
 * against fake-vllm processes (tests/integration/fake_vllm.c) that refuse
 * any prefill request not shaped as vLLM's proxy shapes it and hand the
 * KV over as vLLM's instances do: the prefill streams the first token and
 * relays the kv_transfer_params; the decode sends them back, its instance
 * reads the KV from the prefill's, and the client gets each token once;
 * every way the exchange can fail is ERROR_KV_TRANSFER. A resumed chat
 * request is answered anew without repeating what the client has. Then
 * the same behind the scheduler, with a prefill-role and a decode-role
 * worker: split requests answered once, and the fall back to one worker
 * when the prefill instance has no connector or the KV cannot be read. */
#include "builtin.h"
#include "infsched.pb-c.h"
#include "test_http_common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define RUN_MS 10000

/* What the backend reported for one request. */
typedef struct seen {
  char text[512];
  uint32_t tokens;
  bool done, failed, prefilled;
  int code;
  char message[512];
  char *params; /* the prefill's kv_transfer_params */
  infs_backend_usage_t usage;
} seen_t;

typedef struct fixture {
  char *dir; /* first, for harness_fixture_new */
  uv_loop_t loop;
  uv_timer_t timer;
  bool timed_out;
  infs_profile_t profile;
  seen_t seen[8]; /* by request id */
  int p_port, d_port;
  hc_sched_t s;
} fixture_t;

static seen_t *seen_of(void *ctx, uint64_t id) {
  fixture_t *f = ctx;
  assert_true(id < sizeof f->seen / sizeof *f->seen);
  return &f->seen[id];
}

/* A request ended: back to the test, which waits for it. */
static seen_t *ended(void *ctx, uint64_t id) {
  seen_t *s = seen_of(ctx, id);
  assert_false(s->done || s->failed || s->prefilled);
  uv_stop(&((fixture_t *)ctx)->loop);
  return s;
}

static void on_tokens(void *ctx, uint64_t id, uint32_t n, const char *text,
                      size_t len) {
  seen_t *s = seen_of(ctx, id);
  assert_false(s->done || s->failed || s->prefilled);
  s->tokens += n;
  size_t have = strlen(s->text);
  assert_true(have + len < sizeof s->text);
  memcpy(s->text + have, text, len);
  s->text[have + len] = '\0';
}

static void on_done(void *ctx, uint64_t id, const infs_backend_usage_t *u) {
  seen_t *s = ended(ctx, id);
  s->done = true;
  s->usage = *u;
}

static void on_failed(void *ctx, uint64_t id, int code, const char *msg) {
  seen_t *s = ended(ctx, id);
  s->failed = true;
  s->code = code;
  snprintf(s->message, sizeof s->message, "%s", msg);
}

static void on_prefilled(void *ctx, uint64_t id, const infs_backend_usage_t *u,
                         const char *params, size_t len) {
  seen_t *s = ended(ctx, id);
  s->prefilled = true;
  s->usage = *u;
  s->params = strndup(params, len);
}

static void on_timer(uv_timer_t *t) {
  fixture_t *f = t->data;
  f->timed_out = true;
  uv_stop(&f->loop);
}

/* Runs the loop until request id has its terminal callback. */
static seen_t *run_until_end(fixture_t *f, uint64_t id) {
  seen_t *s = &f->seen[id];
  f->timed_out = false;
  uv_timer_start(&f->timer, on_timer, RUN_MS, 0);
  while (!s->done && !s->failed && !s->prefilled && !f->timed_out)
    uv_run(&f->loop, UV_RUN_DEFAULT);
  uv_timer_stop(&f->timer);
  if (f->timed_out)
    fail_msg("request %llu has not ended within %d ms",
             (unsigned long long)id, RUN_MS);
  return s;
}

/* Starts a fake-vllm on a free port as engine name, with extra flags
 * (NULL-terminated, or NULL), and waits until it listens. */
static int start_fake(fixture_t *f, const char *name, const char *extra) {
  int port = harness_free_port();
  char listen[32], log[600];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(log, sizeof log, "%s/%s.log", f->dir, name);
  char *argv[] = {(char *)harness_bin("fake-vllm"), "--listen", listen,
                  "--engine-id", (char *)name, (char *)extra, NULL};
  assert_non_null(harness_spawn(log, argv));
  assert_int_equal(harness_wait_log(log, "listening on", HC_START_MS), 0);
  return port;
}

/* A counter of a fake's GET /stats. */
static double fake_stat(fixture_t *f, int port, const char *name) {
  char url[96];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/stats", port);
  hc_response_t r;
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 200);
  cJSON *j = hc_json(r.body);
  assert_non_null(j);
  double v = hc_at(j, name)->valuedouble;
  cJSON_Delete(j);
  hc_response_free(&r);
  return v;
}

static void *open_backend(fixture_t *f, int port) {
  infs_backend_host_t host = {
      .ctx = f,
      .loop = &f->loop,
      .profile = &f->profile,
      .tokens = on_tokens,
      .done = on_done,
      .failed = on_failed,
      .prefilled = on_prefilled,
  };
  char args[96], err[256];
  snprintf(args, sizeof args, "http://127.0.0.1:%d/v1,health_ms=0", port);
  void *state = NULL;
  assert_int_equal(backend_openai.create(&host, args, &state, err, sizeof err),
                   0);
  return state;
}

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->timer);
  f->timer.data = f;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  uv_close((uv_handle_t *)&f->timer, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  /* The backends closed every handle they opened. */
  int closed = uv_loop_close(&f->loop);
  for (size_t i = 0; i < sizeof f->seen / sizeof *f->seen; i++)
    free(f->seen[i].params);
  harness_stop_all();
  int logs = hc_check_logs(f->dir);
  harness_fixture_end(state);
  return closed || logs ? -1 : 0;
}

/* The request a worker hands its backend for the decode of a split
 * request: the client's, with the first token's text appended and counted
 * as resumed, as for a migration, and the prefill's handle. */
static infs_request_t decode_of(const infs_request_t *client, char *joined,
                                size_t cap, const char *first,
                                const infs_kv_handle_t *kv, uint64_t id) {
  assert_true(strlen(client->prompt) + strlen(first) < cap);
  strcpy(joined, client->prompt);
  strcat(joined, first);
  infs_request_t r = *client;
  r.id = id;
  r.prompt = joined;
  r.prompt_len = strlen(joined);
  r.prompt_tokens += 1;
  r.max_tokens -= 1;
  r.resumed = 1;
  r.resumed_len = strlen(first);
  r.phase = INFS_PHASE_DECODE;
  r.kv = kv;
  return r;
}

/* client's request split across two fake vLLM instances. */
static void prefill_then_decode(fixture_t *f, const infs_request_t *client) {
  f->p_port = start_fake(f, "vllm-p", NULL);
  f->d_port = start_fake(f, "vllm-d", NULL);
  void *p = open_backend(f, f->p_port);
  void *d = open_backend(f, f->d_port);

  infs_request_t pre = *client;
  pre.id = 1;
  pre.phase = INFS_PHASE_PREFILL;
  assert_int_equal(backend_openai.submit(p, &pre), 0);
  seen_t *s = run_until_end(f, 1);
  if (!s->prefilled)
    fail_msg("prefill: %s", s->message);
  /* The first token reaches the client at once, then the handle. */
  assert_string_equal(s->text, " w1");
  assert_int_equal(s->tokens, 1);
  assert_int_equal(s->usage.generated_tokens, 1);
  assert_true(s->usage.prompt_tokens > 0);
  cJSON *kv = cJSON_Parse(s->params);
  assert_non_null(kv);
  assert_true(cJSON_IsTrue(hc_at(kv, "do_remote_prefill")));
  assert_true(cJSON_IsFalse(hc_at(kv, "do_remote_decode")));
  assert_string_equal(hc_at(kv, "remote_engine_id")->valuestring, "vllm-p");
  assert_string_equal(hc_at(kv, "remote_host")->valuestring, "127.0.0.1");
  assert_int_equal(hc_at(kv, "remote_port")->valueint, f->p_port);
  assert_non_null(hc_at(kv, "remote_request_id"));
  assert_non_null(hc_at(kv, "remote_block_ids.0"));
  cJSON_Delete(kv);
  assert_int_equal(fake_stat(f, f->p_port, "prefills"), 1);
  assert_int_equal(fake_stat(f, f->p_port, "held"), 1);
  /* The release: vLLM holds the KV until the decode instance reads it, so
   * there is nothing left to stop, and no callback follows. */
  backend_openai.cancel(p, 1);

  infs_kv_handle_t handle = {.params_json = s->params,
                             .params_len = strlen(s->params)};
  char joined[256];
  infs_request_t dec =
      decode_of(client, joined, sizeof joined, s->text, &handle, 2);
  assert_int_equal(backend_openai.submit(d, &dec), 0);
  s = run_until_end(f, 2);
  if (!s->done)
    fail_msg("decode: %s", s->message);
  /* The decode instance streams from the first token; the client has it. */
  assert_string_equal(s->text, " w2 w3 w4 w5 w6");
  assert_int_equal(s->tokens, 5);
  /* Counted as the worker counts a resumed request. */
  assert_int_equal(s->usage.generated_tokens, 5);
  assert_int_equal(s->usage.prompt_tokens, f->seen[1].usage.prompt_tokens + 1);
  assert_int_equal(fake_stat(f, f->d_port, "decodes"), 1);
  assert_int_equal(fake_stat(f, f->p_port, "pulls"), 1);
  assert_int_equal(fake_stat(f, f->p_port, "held"), 0);

  /* A handle is good for one read: the blocks were freed when read. */
  dec.id = 3;
  assert_int_equal(backend_openai.submit(d, &dec), 0);
  s = run_until_end(f, 3);
  assert_true(s->failed);
  assert_int_equal(s->code, INFSCHED__ERROR_CODE__ERROR_KV_TRANSFER);
  assert_non_null(strstr(s->message, "KV transfer from engine vllm-p failed"));
  assert_int_equal(s->tokens, 0);

  assert_int_equal(fake_stat(f, f->p_port, "rejected"), 0);
  assert_int_equal(fake_stat(f, f->d_port, "rejected"), 0);
  backend_openai.destroy(p);
  backend_openai.destroy(d);
}

static void test_completion_prefill_then_decode(void **state) {
  infs_request_t client = {
      .model = "m",
      .prompt = "def add(a, b):",
      .prompt_len = strlen("def add(a, b):"),
      .prompt_tokens = 5,
      .max_tokens = 6,
      .options = "{\"stop\":[\"\\n\\n\"],\"min_tokens\":2}",
  };
  prefill_then_decode(*state, &client);
}

static void test_chat_prefill_then_decode(void **state) {
  infs_request_t client = {
      .model = "m",
      .prompt = "system: brief\nuser: hi\n",
      .prompt_len = strlen("system: brief\nuser: hi\n"),
      .prompt_tokens = 6,
      .max_tokens = 6,
      .messages = "[{\"role\":\"system\",\"content\":\"brief\"},"
                  "{\"role\":\"user\",\"content\":\"hi\"}]",
  };
  prefill_then_decode(*state, &client);
}

/* A vLLM started without --kv-transfer-config answers the prefill as a
 * plain completion, without kv_transfer_params: the prefill fails before
 * its token reaches the client, so the scheduler can run it whole. */
static void test_prefill_without_connector(void **state) {
  fixture_t *f = *state;
  f->p_port = start_fake(f, "vllm-p", "--no-connector");
  void *p = open_backend(f, f->p_port);
  infs_request_t r = {.id = 1, .model = "m", .prompt = "x", .prompt_len = 1,
                      .max_tokens = 6, .phase = INFS_PHASE_PREFILL};
  assert_int_equal(backend_openai.submit(p, &r), 0);
  seen_t *s = run_until_end(f, 1);
  assert_true(s->failed);
  assert_int_equal(s->code, INFSCHED__ERROR_CODE__ERROR_KV_TRANSFER);
  assert_non_null(strstr(s->message, "no kv_transfer_params"));
  assert_int_equal(s->tokens, 0);
  assert_int_equal(fake_stat(f, f->p_port, "plain"), 1);
  backend_openai.destroy(p);
}

/* A decode whose prefill left no vLLM handle (a sim worker prefilled it)
 * fails at once; a client's own kv_transfer_params never reach the
 * upstream, which would otherwise read KV from wherever they point. */
static void test_handles_from_elsewhere(void **state) {
  fixture_t *f = *state;
  f->d_port = start_fake(f, "vllm-d", NULL);
  void *d = open_backend(f, f->d_port);
  infs_kv_handle_t sim = {.tokens = 100, .bytes = 1 << 20};
  infs_request_t r = {.id = 1, .model = "m", .prompt = "x w1", .prompt_len = 4,
                      .max_tokens = 5, .resumed = 1, .resumed_len = 3,
                      .phase = INFS_PHASE_DECODE, .kv = &sim};
  assert_int_equal(backend_openai.submit(d, &r), 0);
  seen_t *s = run_until_end(f, 1);
  assert_true(s->failed);
  assert_int_equal(s->code, INFSCHED__ERROR_CODE__ERROR_KV_TRANSFER);

  infs_request_t whole = {
      .id = 2, .model = "m", .prompt = "x", .prompt_len = 1, .max_tokens = 3,
      .options = "{\"kv_transfer_params\":{\"do_remote_prefill\":true,"
                 "\"remote_host\":\"10.9.9.9\",\"remote_port\":5600}}"};
  assert_int_equal(backend_openai.submit(d, &whole), 0);
  s = run_until_end(f, 2);
  assert_true(s->done);
  assert_string_equal(s->text, " w1 w2 w3");
  assert_int_equal(fake_stat(f, f->d_port, "plain"), 1);
  assert_int_equal(fake_stat(f, f->d_port, "decodes"), 0);
  backend_openai.destroy(d);
}

/* A chat request run whole after its split failed (or migrated from a
 * lost worker) is answered anew, and the client gets each token once. */
static void test_resumed_chat_is_answered_anew(void **state) {
  fixture_t *f = *state;
  f->d_port = start_fake(f, "vllm-d", NULL);
  void *d = open_backend(f, f->d_port);
  infs_request_t r = {.id = 1, .model = "m", .prompt = "user: hi\n w1",
                      .prompt_len = strlen("user: hi\n w1"),
                      .prompt_tokens = 4, .max_tokens = 3, .resumed = 1,
                      .resumed_len = 3,
                      .messages = "[{\"role\":\"user\",\"content\":\"hi\"}]"};
  assert_int_equal(backend_openai.submit(d, &r), 0);
  seen_t *s = run_until_end(f, 1);
  assert_true(s->done);
  assert_string_equal(s->text, " w2 w3 w4");
  assert_int_equal(s->usage.generated_tokens, 3);
  backend_openai.destroy(d);
}

/* --- behind the scheduler --- */

#define MODEL "qwen3-8b"

/* A scheduler with a prefill-role and a decode-role openai worker, each in
 * front of its own fake vLLM (P with p_flag, NULL for none). */
static void start_pool(fixture_t *f, const char *p_flag) {
  f->p_port = start_fake(f, "vllm-p", p_flag);
  f->d_port = start_fake(f, "vllm-d", NULL);
  hc_sched_init(&f->s, f->dir, "scheduler");
  hc_sched_start(&f->s, NULL);
  char spec[96];
  const char *prefill[] = {"--role", "prefill", "--model", MODEL, NULL};
  snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1", f->p_port);
  hc_worker_start(&f->s, f->dir, "pre-0", "tpu-v6e", spec, prefill);
  const char *decode[] = {"--role", "decode", "--model", MODEL, NULL};
  snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1", f->d_port);
  hc_worker_start(&f->s, f->dir, "dec-0", "gpu-h100", spec, decode);
  hc_wait_registered(&f->s, 2);
}

/* A completion of a prompt long enough to split (some 1,500 tokens, over
 * POLICY_SPLIT_MIN_TOKENS, that no worker holds). */
static void post_long(fixture_t *f, bool chat, bool stream, hc_response_t *r) {
  static char prompt[6001];
  memset(prompt, 'x', sizeof prompt - 1);
  for (size_t i = 4; i < sizeof prompt - 1; i += 5)
    prompt[i] = ' ';
  char *body = malloc(sizeof prompt + 256);
  assert_non_null(body);
  if (chat)
    snprintf(body, sizeof prompt + 256,
             "{\"model\":\"" MODEL "\",\"max_tokens\":6,\"stream\":%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             stream ? "true" : "false", prompt);
  else
    snprintf(body, sizeof prompt + 256,
             "{\"model\":\"" MODEL "\",\"max_tokens\":6,\"stream\":%s,"
             "\"prompt\":\"%s\"}",
             stream ? "true" : "false", prompt);
  char url[160];
  snprintf(url, sizeof url, "%s/v1/%s", f->s.base,
           chat ? "chat/completions" : "completions");
  const char *args[] = {"-N", NULL};
  hc_post(f->dir, url, body, stream ? args : NULL, r);
  free(body);
  assert_int_equal(r->status, 200);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

/* The scheduler splits long prompts across the pair: the prefill goes to
 * P's vLLM shaped as vLLM's proxy shapes it, the decode carries its
 * kv_transfer_params to D's, which reads the KV from P's; the client gets
 * every token once, streamed or not, completion or chat. */
static void test_split_behind_the_scheduler(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL);
  hc_response_t r;
  post_long(f, false, false, &r);
  cJSON *j = hc_json(r.body);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "choices.0.text")->valuestring,
                      " w1 w2 w3 w4 w5 w6");
  assert_int_equal(hc_at(j, "usage.completion_tokens")->valueint, 6);
  cJSON_Delete(j);
  hc_response_free(&r);

  post_long(f, false, true, &r);
  assert_int_equal(count(r.body, "\"text\":\" w1\""), 1);
  assert_int_equal(count(r.body, "\"text\":\" w6\""), 1);
  assert_non_null(strstr(r.body, "data: [DONE]"));
  hc_response_free(&r);

  post_long(f, true, true, &r);
  assert_int_equal(count(r.body, "\"content\":\" w1\""), 1);
  assert_int_equal(count(r.body, "\"content\":\" w6\""), 1);
  hc_response_free(&r);

  /* Each went the split path: three prefills held and read once. */
  assert_int_equal(fake_stat(f, f->p_port, "prefills"), 3);
  assert_int_equal(fake_stat(f, f->p_port, "pulls"), 3);
  assert_int_equal(fake_stat(f, f->p_port, "held"), 0);
  assert_int_equal(fake_stat(f, f->d_port, "decodes"), 3);
  assert_int_equal(fake_stat(f, f->d_port, "plain"), 0);
  assert_int_equal(fake_stat(f, f->p_port, "rejected"), 0);
  assert_int_equal(fake_stat(f, f->d_port, "rejected"), 0);
}

/* A prefill instance without the connector: the prefill fails with
 * ERROR_KV_TRANSFER before its token, and the decode worker runs the
 * request whole. */
static void test_split_falls_back_without_connector(void **state) {
  fixture_t *f = *state;
  start_pool(f, "--no-connector");
  hc_response_t r;
  post_long(f, false, false, &r);
  cJSON *j = hc_json(r.body);
  assert_string_equal(hc_at(j, "choices.0.text")->valuestring,
                      " w1 w2 w3 w4 w5 w6");
  cJSON_Delete(j);
  hc_response_free(&r);
  assert_int_equal(fake_stat(f, f->d_port, "plain"), 1);
  char log[600];
  snprintf(log, sizeof log, "%s/pre-0.log", f->dir);
  assert_true(harness_count_log(log, "no kv_transfer_params") >= 1);
}

/* The decode instance cannot read the KV: the decode fails with
 * ERROR_KV_TRANSFER before its first new token, and the request runs
 * whole on the decode worker from the token the client has. */
static void test_split_falls_back_when_the_pull_fails(void **state) {
  fixture_t *f = *state;
  start_pool(f, "--fail-pulls");
  hc_response_t r;
  post_long(f, false, false, &r);
  cJSON *j = hc_json(r.body);
  assert_string_equal(hc_at(j, "choices.0.text")->valuestring,
                      " w1 w2 w3 w4 w5 w6");
  cJSON_Delete(j);
  hc_response_free(&r);
  assert_int_equal(fake_stat(f, f->d_port, "failed_pulls"), 1);
  assert_int_equal(fake_stat(f, f->d_port, "plain"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_completion_prefill_then_decode,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_chat_prefill_then_decode, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_prefill_without_connector, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_handles_from_elsewhere, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_resumed_chat_is_answered_anew,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_split_behind_the_scheduler, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_split_falls_back_without_connector,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_split_falls_back_when_the_pull_fails, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
