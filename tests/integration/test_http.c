/* The scheduler's OpenAI-compatible HTTP front door with real processes:
 * curl drives completions and chat, streamed and not; every error status;
 * keep-alive and pipelining; a client that vanishes mid-stream has its
 * request cancelled on the worker; slow clients stall nothing; /metrics
 * passes promtool's strict check; with no worker registered, ZeroMQ and
 * HTTP requests alike wait for one. */
#include "test_http_common.h"
#include "clock.h"
#include "zclient.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MODEL "codex-70b"

typedef struct fixture {
  char *dir;
  hc_sched_t s;
  char url_cmpl[160];
  char url_chat[160];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  assert_non_null(f);
  hc_sched_init(&f->s, f->dir, "scheduler");
  *state = f;
  return 0;
}

/* Starts the scheduler (whose ports may change if they were taken). */
static void start_scheduler(fixture_t *f, const char *const *extra) {
  hc_sched_start(&f->s, extra);
  snprintf(f->url_cmpl, sizeof f->url_cmpl, "%s/v1/completions", f->s.base);
  snprintf(f->url_chat, sizeof f->url_chat, "%s/v1/chat/completions",
           f->s.base);
}

/* A scheduler with one fast sim worker. */
static void start_pool(fixture_t *f, const char *const *sched_extra,
                       const char *const *worker_extra) {
  start_scheduler(f, sched_extra);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, worker_extra);
  hc_wait_registered(&f->s, 1);
}

/* Checks the SSE body of a stream: every event is JSON of the given
 * object type until "data: [DONE]", the last one. Returns the text. */
static char *check_stream(const char *body, const char *object, bool chat,
                          char *finish, size_t finish_len) {
  size_t cap = 4096, len = 0;
  char *text = calloc(1, cap);
  const char *p = body;
  int events = 0;
  bool done = false;
  finish[0] = '\0';
  while ((p = strstr(p, "data: "))) {
    assert_false(done);
    p += 6;
    const char *eol = strchr(p, '\n');
    assert_non_null(eol);
    assert_int_equal(eol[1], '\n'); /* one line per event, blank after */
    char *data = strndup(p, (size_t)(eol - p));
    events++;
    if (strcmp(data, "[DONE]") == 0) {
      done = true;
      free(data);
      p = eol;
      continue;
    }
    cJSON *j = hc_json(data);
    assert_non_null(j);
    assert_string_equal(hc_at(j, "object")->valuestring, object);
    assert_non_null(hc_at(j, "id"));
    assert_non_null(hc_at(j, "created"));
    assert_string_equal(hc_at(j, "model")->valuestring, MODEL);
    const cJSON *c = hc_at(j, "choices.0");
    if (c) {
      const cJSON *t = hc_at(c, chat ? "delta.content" : "text");
      if (cJSON_IsString(t)) {
        size_t n = strlen(t->valuestring);
        assert_true(len + n < cap);
        memcpy(text + len, t->valuestring, n);
        len += n;
      }
      const cJSON *fr = hc_at(c, "finish_reason");
      if (cJSON_IsString(fr))
        snprintf(finish, finish_len, "%s", fr->valuestring);
    }
    cJSON_Delete(j);
    free(data);
    p = eol;
  }
  assert_true(done);
  assert_true(events >= 3);
  return text;
}

static void test_completions_and_chat(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL, NULL);
  hc_response_t r;
  char buf[128], finish[32];

  /* Completions, whole. */
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"" MODEL "\",\"prompt\":\"def add(a, b):\","
          "\"max_tokens\":7}",
          NULL, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(hc_header(&r, "content-type", buf, sizeof buf),
                      "application/json");
  assert_string_equal(hc_header(&r, "x-infsched-worker", buf, sizeof buf),
                      "sram-0");
  cJSON *j = hc_json(r.body);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "object")->valuestring, "text_completion");
  assert_int_equal(strncmp(hc_at(j, "id")->valuestring, "cmpl-", 5), 0);
  assert_string_equal(hc_at(j, "choices.0.text")->valuestring,
                      " tok tok tok tok tok tok tok");
  assert_string_equal(hc_at(j, "choices.0.finish_reason")->valuestring,
                      "length");
  assert_int_equal(hc_at(j, "choices.0.index")->valueint, 0);
  assert_int_equal(hc_at(j, "usage.completion_tokens")->valueint, 7);
  assert_true(hc_at(j, "usage.prompt_tokens")->valueint >= 1);
  assert_int_equal(hc_at(j, "usage.total_tokens")->valueint,
                   hc_at(j, "usage.prompt_tokens")->valueint + 7);
  cJSON_Delete(j);
  hc_response_free(&r);

  /* Completions, streamed. */
  const char *stream[] = {"-N", NULL};
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"" MODEL "\",\"prompt\":\"x\",\"max_tokens\":5,"
          "\"stream\":true}",
          stream, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(hc_header(&r, "content-type", buf, sizeof buf),
                         "text/event-stream"));
  char *text =
      check_stream(r.body, "text_completion", false, finish, sizeof finish);
  assert_string_equal(text, " tok tok tok tok tok");
  assert_string_equal(finish, "length");
  free(text);
  hc_response_free(&r);

  /* Chat, whole. */
  hc_post(f->dir, f->url_chat,
          "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"system\","
          "\"content\":\"be brief\"},{\"role\":\"user\",\"content\":"
          "[{\"type\":\"text\",\"text\":\"hi\"}]}],\"max_tokens\":3}",
          NULL, &r);
  assert_int_equal(r.status, 200);
  j = hc_json(r.body);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "object")->valuestring, "chat.completion");
  assert_string_equal(hc_at(j, "choices.0.message.role")->valuestring,
                      "assistant");
  assert_string_equal(hc_at(j, "choices.0.message.content")->valuestring,
                      " tok tok tok");
  assert_int_equal(hc_at(j, "usage.completion_tokens")->valueint, 3);
  cJSON_Delete(j);
  hc_response_free(&r);

  /* Chat, streamed, with usage. */
  hc_post(f->dir, f->url_chat,
          "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"hi\"}],\"max_tokens\":4,\"stream\":true,"
          "\"stream_options\":{\"include_usage\":true}}",
          stream, &r);
  assert_int_equal(r.status, 200);
  text = check_stream(r.body, "chat.completion.chunk", true, finish,
                      sizeof finish);
  assert_string_equal(text, " tok tok tok tok");
  assert_non_null(strstr(r.body, "\"delta\":{\"role\":\"assistant\""));
  assert_non_null(strstr(r.body, "\"choices\":[],\"usage\":{"));
  free(text);
  hc_response_free(&r);

  /* Models and health. */
  char url[160];
  snprintf(url, sizeof url, "%s/v1/models", f->s.base);
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 200);
  j = hc_json(r.body);
  assert_string_equal(hc_at(j, "object")->valuestring, "list");
  assert_string_equal(hc_at(j, "data.0.id")->valuestring, MODEL);
  assert_string_equal(hc_at(j, "data.0.object")->valuestring, "model");
  assert_null(hc_at(j, "data.1"));
  cJSON_Delete(j);
  hc_response_free(&r);
  snprintf(url, sizeof url, "%s/healthz", f->s.base);
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 200);
  j = hc_json(r.body);
  assert_string_equal(hc_at(j, "status")->valuestring, "ok");
  assert_int_equal(hc_at(j, "workers")->valueint, 1);
  cJSON_Delete(j);
  hc_response_free(&r);
}

/* The same long prompt twice: the front door's text block hashes reach the
 * worker's prefix cache, so the second prefill is served from it. */
static void test_prompt_blocks_reach_the_cache(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL, NULL);
  char prompt[4200];
  for (int i = 0; i < 4096; i++)
    prompt[i] = (char)('a' + i % 23);
  prompt[4096] = '\0';
  char *json = malloc(5000);
  snprintf(json, 5000,
           "{\"model\":\"" MODEL "\",\"prompt\":\"%s\",\"max_tokens\":2}",
           prompt);
  hc_response_t r;
  hc_post(f->dir, f->url_cmpl, json, NULL, &r);
  assert_int_equal(r.status, 200);
  cJSON *j = hc_json(r.body);
  assert_int_equal(hc_at(j, "usage.prompt_tokens")->valueint, 1024);
  assert_int_equal(
      hc_at(j, "usage.prompt_tokens_details.cached_tokens")->valueint, 0);
  cJSON_Delete(j);
  hc_response_free(&r);
  hc_post(f->dir, f->url_cmpl, json, NULL, &r);
  assert_int_equal(r.status, 200);
  j = hc_json(r.body);
  assert_true(hc_at(j, "usage.prompt_tokens_details.cached_tokens")->valueint >=
              512);
  cJSON_Delete(j);
  hc_response_free(&r);
  free(json);
}

static void assert_error(const hc_response_t *r, int status, const char *type,
                         const char *code) {
  assert_int_equal(r->status, status);
  cJSON *j = hc_json(r->body);
  assert_non_null(j);
  assert_true(cJSON_IsString(hc_at(j, "error.message")));
  assert_true(strlen(hc_at(j, "error.message")->valuestring) > 0);
  assert_string_equal(hc_at(j, "error.type")->valuestring, type);
  if (code)
    assert_string_equal(hc_at(j, "error.code")->valuestring, code);
  cJSON_Delete(j);
}

/* Opens a connection streaming a long completion and returns it once its
 * first token has arrived: the stream holds a slot until it is closed. */
static int hold_stream(fixture_t *f, int events) {
  int fd = hc_post_completion(
      f->s.http_port, "{\"model\":\"" MODEL "\",\"prompt\":\"x\","
                      "\"max_tokens\":30000,\"stream\":true}");
  char *in = NULL;
  size_t in_len = 0;
  for (int i = 0; i < events; i++) {
    assert_int_equal(hc_read_until(fd, &in, &in_len, "data: ", 10000), 0);
    /* Consume this event so that the next wait needs a new one. */
    size_t used = (size_t)(strstr(in, "data: ") + 6 - in);
    memmove(in, in + used, in_len - used + 1);
    in_len -= used;
  }
  free(in);
  return fd;
}

static void test_error_statuses(void **state) {
  fixture_t *f = *state;
  const char *sched_extra[] = {"--http-max-body", "2048", "--queue-limit", "0",
                               NULL};
  start_scheduler(f, sched_extra);
  hc_response_t r;
  const char *ok = "{\"model\":\"" MODEL "\",\"prompt\":\"hi\","
                   "\"max_tokens\":2}";

  char buf[64];
  const char *one[] = {"--capacity", "1", NULL};
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, one);
  hc_wait_registered(&f->s, 1);

  /* 400: not JSON, not an object, missing or wrong fields, bad headers. */
  hc_post(f->dir, f->url_cmpl, "{\"model\":", NULL, &r);
  assert_error(&r, 400, "invalid_request_error", NULL);
  hc_response_free(&r);
  hc_post(f->dir, f->url_cmpl, "[1,2]", NULL, &r);
  assert_error(&r, 400, "invalid_request_error", NULL);
  hc_response_free(&r);
  hc_post(f->dir, f->url_cmpl, "{\"model\":\"" MODEL "\",\"max_tokens\":2}",
          NULL, &r);
  assert_error(&r, 400, "invalid_request_error", NULL);
  assert_non_null(strstr(r.body, "\"param\":\"prompt\""));
  hc_response_free(&r);
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"" MODEL "\",\"prompt\":\"x\",\"max_tokens\":0}", NULL,
          &r);
  assert_error(&r, 400, "invalid_request_error", NULL);
  assert_non_null(strstr(r.body, "\"param\":\"max_tokens\""));
  hc_response_free(&r);
  hc_post(f->dir, f->url_chat, "{\"model\":\"" MODEL "\",\"messages\":[]}",
          NULL, &r);
  assert_error(&r, 400, "invalid_request_error", NULL);
  hc_response_free(&r);
  const char *bad_class[] = {"x-infsched-class: urgent", NULL};
  hc_post(f->dir, f->url_cmpl, ok, bad_class, &r);
  assert_error(&r, 400, "invalid_request_error", NULL);
  hc_response_free(&r);
  /* 400 from the core: longer than any worker's context. */
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"" MODEL "\",\"prompt\":\"x\",\"max_tokens\":900000}",
          NULL, &r);
  assert_error(&r, 400, "invalid_request_error", "context_length_exceeded");
  hc_response_free(&r);

  /* 404: unknown route, and a model no worker serves. */
  char url[160];
  snprintf(url, sizeof url, "%s/v1/embeddings", f->s.base);
  hc_post(f->dir, url, ok, NULL, &r);
  assert_error(&r, 404, "invalid_request_error", "not_found");
  hc_response_free(&r);
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"no-such-model\",\"prompt\":\"x\",\"max_tokens\":1}",
          NULL, &r);
  assert_error(&r, 404, "invalid_request_error", "model_not_found");
  hc_response_free(&r);

  /* 405, with Allow. */
  hc_get(f->dir, f->url_cmpl, &r);
  assert_error(&r, 405, "invalid_request_error", "method_not_allowed");
  assert_string_equal(hc_header(&r, "allow", buf, sizeof buf), "POST");
  hc_response_free(&r);
  snprintf(url, sizeof url, "%s/metrics", f->s.base);
  hc_post(f->dir, url, ok, NULL, &r);
  assert_int_equal(r.status, 405);
  assert_string_equal(hc_header(&r, "allow", buf, sizeof buf), "GET, HEAD");
  hc_response_free(&r);

  /* 413: by Content-Length (refused before the body is read) and by a
   * chunked body that grows past the limit. */
  char big[4096];
  snprintf(big, sizeof big, "{\"model\":\"" MODEL "\",\"prompt\":\"%0*d\"}",
           3000, 0);
  hc_post(f->dir, f->url_cmpl, big, NULL, &r);
  assert_error(&r, 413, "invalid_request_error", NULL);
  hc_response_free(&r);
  const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
  hc_post(f->dir, f->url_cmpl, big, chunked, &r);
  assert_error(&r, 413, "invalid_request_error", NULL);
  hc_response_free(&r);

  /* 429: the only slot is taken and the queue holds nothing. */
  int fd = hold_stream(f, 1);
  hc_post(f->dir, f->url_cmpl, ok, NULL, &r);
  assert_error(&r, 429, "rate_limit_error", "queue_full");
  assert_string_equal(hc_header(&r, "retry-after", buf, sizeof buf), "1");
  hc_response_free(&r);
  close(fd);

  /* Every status is counted. */
  double v = hc_wait_metric(
      f->dir, f->s.base,
      "infsched_http_responses_total{route=\"/v1/completions\",code=\"429\"}",
      1);
  assert_true(v == 1);
}

/* A stream that fails before its first token is answered with the
 * failure's own status, not 200 and an error event: its headers wait for
 * the first token. */
static void test_stream_failing_before_a_token_gets_its_status(void **state) {
  fixture_t *f = *state;
  const char *sched_extra[] = {"--queue-timeout-ms", "300", NULL};
  const char *one[] = {"--capacity", "1", NULL};
  start_pool(f, sched_extra, one);
  int fd = hold_stream(f, 1);

  /* Queued behind the held slot until the queue timeout refuses it. */
  const char *stream[] = {"-N", NULL};
  hc_response_t r;
  char buf[64];
  hc_post(f->dir, f->url_chat,
          "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"hi\"}],\"max_tokens\":4,\"stream\":true}",
          stream, &r);
  assert_error(&r, 503, "server_error", "queue_timeout");
  assert_string_equal(hc_header(&r, "content-type", buf, sizeof buf),
                      "application/json");
  assert_string_equal(hc_header(&r, "retry-after", buf, sizeof buf), "1");
  assert_null(strstr(r.body, "data: "));
  hc_response_free(&r);
  close(fd);
}

/* Two requests one after the other, then two pipelined in one write, on
 * one connection; the answers come back in order. */
static void test_keep_alive_and_pipelining(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL, NULL);
  int fd = hc_connect(f->s.http_port);
  assert_true(fd >= 0);
  char req[512], two[1024];
  const char *body = "{\"model\":\"" MODEL "\",\"prompt\":\"x\","
                     "\"max_tokens\":3}";
  snprintf(req, sizeof req,
           "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
           "%zu\r\n\r\n%s",
           strlen(body), body);
  char *rest = NULL, *resp = NULL;
  size_t rest_len = 0;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(hc_send(fd, req), 0);
    assert_int_equal(hc_read_response(fd, &rest, &rest_len, &resp, 10000), 200);
    assert_non_null(strstr(resp, "\" tok tok tok\""));
    free(resp);
  }
  snprintf(two, sizeof two, "%sGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", req);
  assert_int_equal(hc_send(fd, two), 0);
  assert_int_equal(hc_read_response(fd, &rest, &rest_len, &resp, 10000), 200);
  assert_non_null(strstr(resp, "text_completion"));
  free(resp);
  assert_int_equal(hc_read_response(fd, &rest, &rest_len, &resp, 10000), 200);
  assert_non_null(strstr(resp, "\"status\":\"ok\""));
  free(resp);
  /* Still one connection. */
  hc_response_t r;
  char url[160];
  snprintf(url, sizeof url, "%s/metrics", f->s.base);
  hc_get(f->dir, url, &r);
  assert_true(hc_metric(r.body, "infsched_http_connections") >= 2);
  hc_response_free(&r);
  free(rest);
  close(fd);
}

/* A client that disconnects mid-stream: its request is cancelled on the
 * worker (the worker stops running it), and nothing else is affected. */
static void test_disconnect_cancels_on_worker(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL, NULL);
  int fd = hc_connect(f->s.http_port);
  assert_true(fd >= 0);
  const char *body = "{\"model\":\"" MODEL "\",\"prompt\":\"x\","
                     "\"max_tokens\":30000,\"stream\":true}";
  char req[512];
  snprintf(req, sizeof req,
           "POST /v1/completions HTTP/1.1\r\nHost: x\r\nx-infsched-class: "
           "batch\r\nContent-Length: %zu\r\n\r\n%s",
           strlen(body), body);
  assert_int_equal(hc_send(fd, req), 0);
  char *in = NULL;
  size_t in_len = 0;
  assert_int_equal(hc_read_until(fd, &in, &in_len, "data: ", 10000), 0);
  /* Running on the worker, as its heartbeat says. */
  assert_true(hc_wait_metric(f->dir, f->s.base,
                             "infsched_worker_running{worker=\"sram-0\","
                             "class=\"sram\",profile=\"sram-wse3\",model=\""
                             "codex-70b\"}",
                             1) == 1);
  close(fd);
  free(in);
  assert_true(hc_wait_metric(f->dir, f->s.base,
                             "infsched_requests_total{class=\"batch\","
                             "outcome=\"cancelled\"}",
                             1) == 1);
  assert_true(hc_wait_metric(f->dir, f->s.base,
                             "infsched_scheduler_cancelled_total", 1) == 1);
  /* The worker's own report: nothing running any more, long before the
   * 30,000 tokens would have ended on their own (about 14 s). */
  assert_true(hc_wait_metric_within(f->dir, f->s.base,
                                    "infsched_worker_running{worker=\"sram-"
                                    "0\",class=\"sram\",profile=\"sram-"
                                    "wse3\",model=\"codex-70b\"}",
                                    0, CANCEL_WITHIN_MS) == 0);
  hc_response_t r;
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"" MODEL "\",\"prompt\":\"x\",\"max_tokens\":1}", NULL,
          &r);
  assert_int_equal(r.status, 200);
  hc_response_free(&r);
}

/* A client that sends half a request and one that never reads its stream
 * do not hold anyone else up. */
static void test_slow_clients_stall_nothing(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL, NULL);
  int half = hc_connect(f->s.http_port);
  assert_true(half >= 0);
  assert_int_equal(hc_send(half, "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: 500\r\n\r\n{\"mod"),
                   0);
  int deaf = hc_connect(f->s.http_port);
  assert_true(deaf >= 0);
  int small = 4096;
  setsockopt(deaf, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const char *body = "{\"model\":\"" MODEL "\",\"prompt\":\"x\","
                     "\"max_tokens\":30000,\"stream\":true}";
  char req[512];
  snprintf(req, sizeof req,
           "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
           "%zu\r\n\r\n%s",
           strlen(body), body);
  assert_int_equal(hc_send(deaf, req), 0);
  for (int i = 0; i < 5; i++) {
    hc_response_t r;
    hc_post(f->dir, f->url_cmpl,
            "{\"model\":\"" MODEL "\",\"prompt\":\"x\",\"max_tokens\":20,"
            "\"stream\":true}",
            (const char *[]){"-N", NULL}, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "data: [DONE]"));
    hc_response_free(&r);
  }
  close(half);
  close(deaf);
  /* Both went away without answers: counted as aborts. */
  assert_true(hc_wait_metric(f->dir, f->s.base,
                             "infsched_http_client_aborts_total", 1) >= 1);
}

static void test_metrics_pass_promtool(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL, NULL);
  hc_response_t r;
  const char *interactive[] = {"x-infsched-class: interactive",
                               "x-infsched-session: s-1", NULL};
  for (int i = 0; i < 3; i++) {
    hc_post(f->dir, f->url_cmpl,
            "{\"model\":\"" MODEL "\",\"prompt\":\"x\",\"max_tokens\":2}",
            interactive, &r);
    assert_int_equal(r.status, 200);
    hc_response_free(&r);
  }
  hc_post(f->dir, f->url_chat,
          "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"x\"}],\"max_tokens\":2,\"infsched_class\":\"batch\"}",
          NULL, &r);
  assert_int_equal(r.status, 200);
  hc_response_free(&r);
  /* Scraped loaded: a stream open on the worker, past its second event so
   * that an inter-token gap has been counted. */
  int fd = hold_stream(f, 2);
  char url[160], path[600];
  snprintf(url, sizeof url, "%s/metrics", f->s.base);
#define SRAM_0 "{worker=\"sram-0\",class=\"sram\",profile=\"sram-wse3\"," \
               "model=\"" MODEL "\"}"
  /* The worker is healthy while it was heard within two heartbeats, which
   * a loaded machine may not keep to for a moment: the scrape checked is
   * one that finds it so. */
  for (long long until = clock_ms() + 15000;;) {
    hc_get(f->dir, url, &r);
    assert_int_equal(r.status, 200);
    if (hc_metric(r.body, "infsched_worker_healthy" SRAM_0) == 1 ||
        clock_ms() > until)
      break;
    hc_response_free(&r);
  }
  char buf[96];
  assert_non_null(strstr(hc_header(&r, "content-type", buf, sizeof buf),
                         "text/plain; version=0.0.4"));
  assert_true(hc_metric(r.body, "infsched_requests_total{class=\"interactive"
                                "\",outcome=\"completed\"}") == 3);
  assert_true(hc_metric(r.body, "infsched_requests_total{class=\"batch\","
                                "outcome=\"completed\"}") == 1);
  assert_true(hc_metric(r.body, "infsched_ttft_seconds_count{class="
                                "\"interactive\"}") == 3);
  assert_true(hc_metric(r.body, "infsched_e2e_seconds_bucket{class="
                                "\"interactive\",le=\"+Inf\"}") == 3);
  assert_true(hc_metric(r.body, "infsched_workers") == 1);
  assert_true(hc_metric(r.body, "infsched_queue_depth") == 0);
  assert_true(hc_metric(r.body, "infsched_tokens_total{class=\"interactive\","
                                "kind=\"generated\"}") == 6);
  assert_true(hc_metric(r.body, "infsched_request_cost_usd_total{class="
                                "\"interactive\"}") > 0);
  assert_true(hc_metric(r.body, "infsched_open_requests") == 1);
  /* Two tokens each: three TPOTs, three SLO verdicts. */
  assert_true(hc_metric(r.body, "infsched_tpot_seconds_count{class="
                                "\"interactive\"}") == 3);
  double met =
      hc_metric(r.body, "infsched_slo_met_total{class=\"interactive\"}");
  double missed = 0;
  static const char *const parts[] = {"ttft", "tpot", "both"};
  for (int i = 0; i < 3; i++) {
    char series[96];
    snprintf(series, sizeof series,
             "infsched_slo_missed_total{class=\"interactive\",part=\"%s\"}",
             parts[i]);
    double v = hc_metric(r.body, series);
    assert_true(v >= 0);
    missed += v;
  }
  assert_true(met >= 0 && met + missed == 3);
  /* The held stream's tokens arrive in chunks after its first. */
  assert_true(hc_metric(r.body, "infsched_inter_token_seconds_count{class="
                                "\"agent\"}") > 0);
  double age = hc_metric(r.body, "infsched_worker_heartbeat_age_seconds" SRAM_0);
  assert_true(age >= 0 && age < 5);
  assert_true(hc_metric(r.body, "infsched_worker_healthy" SRAM_0) == 1);
#undef SRAM_0
  close(fd);
  snprintf(path, sizeof path, "%s/metrics.txt", f->dir);
  assert_int_equal(harness_write_file(path, r.body, 0644), 0);
  hc_response_free(&r);

  char cmd[700], log[600];
  snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", path);
  snprintf(log, sizeof log, "%s/promtool.log", f->dir);
  char *argv[] = {"sh", "-c", cmd, NULL};
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  int status;
  assert_int_equal(harness_wait(p, 30000, &status), 0);
  char *out = harness_read_file(log);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fprintf(stderr, "promtool: %s\n", out ? out : "");
  free(out);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  harness_stop(&p);
}

/* Every series dashboards/infsched.json queries exists in /metrics of a
 * running scheduler with a worker: each "infsched_..." name in a panel's
 * expression is a sample name there. */
static void test_dashboard_queries_exist(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL, NULL);
  hc_response_t r;
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"" MODEL "\",\"prompt\":\"x\",\"max_tokens\":2}",
          NULL, &r);
  assert_int_equal(r.status, 200);
  hc_response_free(&r);
  char url[160];
  snprintf(url, sizeof url, "%s/metrics", f->s.base);
  hc_get(f->dir, url, &r);
  assert_int_equal(r.status, 200);

  cJSON *dash = harness_read_json(harness_source("dashboards/infsched.json"));
  assert_non_null(dash);
  int queries = 0, names = 0;
  const cJSON *panel;
  cJSON_ArrayForEach(panel, cJSON_GetObjectItemCaseSensitive(dash, "panels")) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(panel, "type");
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(panel, "targets");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "row") == 0)
      continue;
    assert_true(cJSON_GetArraySize(targets) > 0);
    const cJSON *t;
    cJSON_ArrayForEach(t, targets) {
      const cJSON *expr = cJSON_GetObjectItemCaseSensitive(t, "expr");
      assert_true(cJSON_IsString(expr));
      queries++;
      for (const char *p = strstr(expr->valuestring, "infsched_"); p;
           p = strstr(p, "infsched_")) {
        char name[128], sample[132];
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_:");
        assert_true(n < sizeof name);
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
        names++;
        /* A sample line starts with the name, then labels or the value. */
        bool found = false;
        for (const char *end = " {"; *end && !found; end++) {
          snprintf(sample, sizeof sample, "\n%s%c", name, *end);
          found = strstr(r.body, sample) != NULL;
        }
        if (!found)
          fail_msg("the dashboard queries %s, which /metrics does not have",
                   name);
      }
    }
  }
  assert_true(queries >= 20 && names >= queries);
  cJSON_Delete(dash);
  hc_response_free(&r);
}

/* A taken port makes the scheduler exit 3 with a clear message; --http off
 * starts no listener. */
static void test_bind_failure_and_off(void **state) {
  fixture_t *f = *state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 1), 0);
  socklen_t sl = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &sl);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
  char *argv[] = {(char *)harness_bin("infsched-scheduler"),
                  "--clients",
                  f->s.clients,
                  "--workers",
                  f->s.workers,
                  "--http",
                  addr,
                  NULL};
  harness_proc_t *p = harness_spawn(f->s.log, argv);
  int status;
  assert_int_equal(harness_wait(p, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 3);
  assert_int_equal(harness_wait_log(f->s.log, "cannot listen for HTTP on", 0),
                   0);
  assert_int_equal(harness_wait_log(f->s.log, "Address already in use", 0), 0);
  harness_stop(&p);
  close(fd);

  char *bad[] = {(char *)harness_bin("infsched-scheduler"), "--http", "", NULL};
  p = harness_spawn(f->s.log, bad);
  assert_int_equal(harness_wait(p, 10000, &status), 0);
  assert_int_equal(WEXITSTATUS(status), 2);
  harness_stop(&p);

  const char *off[] = {"--http", "off", NULL};
  char *argv2[] = {(char *)harness_bin("infsched-scheduler"),
                   "--clients",
                   f->s.clients,
                   "--workers",
                   f->s.workers,
                   (char *)off[0],
                   (char *)off[1],
                   NULL};
  p = harness_spawn(f->s.log, argv2);
  assert_int_equal(harness_wait_log(f->s.log, "listening: clients", 10000), 0);
  assert_int_equal(harness_count_log(f->s.log, "http: listening"), 0);
  harness_kill(p, SIGTERM);
  assert_int_equal(harness_wait(p, 10000, &status), 0);
  assert_int_equal(WEXITSTATUS(status), 0);
  harness_stop(&p);
}

/* SIGTERM with HTTP requests open: each gets its final answer and the
 * scheduler exits cleanly. */
static void test_shutdown_answers_http_clients(void **state) {
  fixture_t *f = *state;
  start_pool(f, NULL, NULL);
  int fd = hc_connect(f->s.http_port);
  const char *body = "{\"model\":\"" MODEL "\",\"prompt\":\"x\","
                     "\"max_tokens\":30000,\"stream\":true}";
  char req[512];
  snprintf(req, sizeof req,
           "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
           "%zu\r\n\r\n%s",
           strlen(body), body);
  assert_int_equal(hc_send(fd, req), 0);
  char *in = NULL;
  size_t in_len = 0;
  assert_int_equal(hc_read_until(fd, &in, &in_len, "data: ", 10000), 0);
  harness_kill(f->s.proc, SIGTERM);
  assert_int_equal(hc_read_until(fd, &in, &in_len, "shutting down", 10000), 0);
  assert_non_null(strstr(in, "data: {\"error\":"));
  int status;
  assert_int_equal(harness_wait(f->s.proc, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  free(in);
  close(fd);
}

/* Submits one request over ZeroMQ; the client is the caller's. */
static zclient_t *zmq_submit(const fixture_t *f, uint64_t id) {
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Submit sub = INFSCHED__SUBMIT__INIT;
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = id;
  q.model = MODEL;
  q.prompt_tokens = 16;
  q.max_tokens = 2;
  sub.request = &q;
  env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  env.submit = &sub;
  zclient_t *c = zclient_new(f->s.clients);
  assert_non_null(c);
  assert_int_equal(zclient_send(c, &env, 0), 0);
  return c;
}

/* The ZeroMQ client's terminal answer after its Accepted: the Error's code,
 * or 0 for a Done. */
static int zmq_outcome(zclient_t *c) {
  Infsched__Envelope *m = zclient_recv(c, 15000);
  assert_non_null(m);
  assert_int_equal(m->body_case, INFSCHED__ENVELOPE__BODY_ACCEPTED);
  infsched__envelope__free_unpacked(m, NULL);
  for (;;) {
    m = zclient_recv(c, 15000);
    assert_non_null(m);
    int code = -1;
    if (m->body_case == INFSCHED__ENVELOPE__BODY_DONE)
      code = 0;
    else if (m->body_case == INFSCHED__ENVELOPE__BODY_ERROR)
      code = m->error->code;
    infsched__envelope__free_unpacked(m, NULL);
    if (code >= 0)
      return code;
  }
}

/* Starts a completion on a connection of its own; the caller reads it. */
static int http_submit(const fixture_t *f) {
  const char *body = "{\"model\":\"" MODEL "\",\"prompt\":\"hi\","
                     "\"max_tokens\":2}";
  char req[512];
  snprintf(req, sizeof req,
           "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
           "%zu\r\n\r\n%s",
           strlen(body), body);
  int fd = hc_connect(f->s.http_port);
  assert_true(fd >= 0);
  assert_int_equal(hc_send(fd, req), 0);
  return fd;
}

/* Admission is the core's, one rule for both front doors: with no worker
 * registered, a ZeroMQ and an HTTP request both wait in the queue, and
 * both run when a worker registers. */
static void test_no_worker_both_doors_wait(void **state) {
  fixture_t *f = *state;
  start_scheduler(f, NULL);
  zclient_t *c = zmq_submit(f, 1);
  int fd = http_submit(f);
  assert_int_equal(
      hc_wait_metric(f->dir, f->s.base, "infsched_queue_depth", 2), 2);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  assert_int_equal(zmq_outcome(c), 0);
  char *rest = NULL, *resp = NULL;
  size_t rest_len = 0;
  assert_int_equal(hc_read_response(fd, &rest, &rest_len, &resp, 15000), 200);
  assert_non_null(strstr(resp, "text_completion"));
  free(resp);
  free(rest);
  close(fd);
  zclient_destroy(&c);
}

/* And when none registers within the queue timeout, both are rejected the
 * same way: ERROR_REJECTED_QUEUE_TIMEOUT, which HTTP says as 503. */
static void test_no_worker_both_doors_time_out(void **state) {
  fixture_t *f = *state;
  const char *extra[] = {"--queue-timeout-ms", "300", NULL};
  start_scheduler(f, extra);
  zclient_t *c = zmq_submit(f, 1);
  hc_response_t r;
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"" MODEL "\",\"prompt\":\"hi\",\"max_tokens\":2}",
          NULL, &r);
  assert_error(&r, 503, "server_error", "queue_timeout");
  char buf[64];
  assert_string_equal(hc_header(&r, "retry-after", buf, sizeof buf), "1");
  hc_response_free(&r);
  assert_int_equal(zmq_outcome(c),
                   INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_TIMEOUT);
  zclient_destroy(&c);
}

/* GET /v1/models/ID of a model whose name has a '/': percent-encoded, as
 * "meta-llama%2FLlama-3.1-8B", or raw; a bad escape is a 400. */
static void test_model_ids_percent_decoded(void **state) {
  fixture_t *f = *state;
  const char *model[] = {"--model", "meta-llama/Llama-3.1-8B", NULL};
  start_pool(f, NULL, model);
  static const struct {
    const char *path;
    int status;
  } table[] = {
      {"/v1/models/meta-llama%2FLlama-3.1-8B", 200},
      {"/v1/models/meta-llama%2fLlama-3.1-8B", 200},
      {"/v1/models/meta-llama/Llama-3.1-8B", 200},
      {"/v1/models/meta-llama%2FLlama-3.1-70B", 404},
      {"/v1/models/meta-llama%2", 400},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->s.base, table[i].path);
    hc_response_t r;
    hc_get(f->dir, url, &r);
    if (r.status != table[i].status)
      fail_msg("%s: %d, wanted %d: %s", table[i].path, r.status,
               table[i].status, r.body ? r.body : "");
    cJSON *j = hc_json(r.body);
    assert_non_null(j);
    if (r.status == 200)
      assert_string_equal(hc_at(j, "id")->valuestring,
                          "meta-llama/Llama-3.1-8B");
    else
      assert_string_equal(hc_at(j, "error.param")->valuestring, "model");
    cJSON_Delete(j);
    hc_response_free(&r);
  }
}

/* With the only worker of the model registered but unhealthy (its
 * upstream is down), requests do not wait out the queue timeout: after
 * the grace (heartbeat interval x heartbeat misses) both doors reject
 * them, ERROR_REJECTED_UNAVAILABLE, which HTTP says as 503 with
 * Retry-After. */
static void test_no_serving_worker_both_doors_rejected(void **state) {
  fixture_t *f = *state;
  start_scheduler(f, NULL); /* queue timeout 30 s */
  char spec[128];
  snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,health_ms=100",
           harness_free_port());
  hc_worker_start(&f->s, f->dir, "oa-0", "gpu-h100", spec, NULL);
  hc_wait_registered(&f->s, 1);
  assert_true(
      zclient_wait_status(f->s.clients, zclient_says_unhealthy, "oa-0", 15000));
  zclient_t *c = zmq_submit(f, 1);
  hc_response_t r;
  hc_post(f->dir, f->url_cmpl,
          "{\"model\":\"" MODEL "\",\"prompt\":\"hi\",\"max_tokens\":2}",
          NULL, &r);
  assert_error(&r, 503, "server_error", "no_healthy_worker");
  assert_non_null(strstr(r.body, "1 unhealthy, 0 draining"));
  char buf[64];
  assert_string_equal(hc_header(&r, "retry-after", buf, sizeof buf), "1");
  hc_response_free(&r);
  assert_int_equal(zmq_outcome(c),
                   INFSCHED__ERROR_CODE__ERROR_REJECTED_UNAVAILABLE);
  zclient_destroy(&c);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  /* ctest runs the promtool check apart (tests/CMakeLists.txt). */
  if (argc == 3 && strcmp(argv[1], "--only") == 0)
    cmocka_set_test_filter(argv[2]);
  else if (argc == 3 && strcmp(argv[1], "--skip") == 0)
    cmocka_set_skip_filter(argv[2]);
  else if (argc != 1)
    return fprintf(stderr, "usage: test_http [--only|--skip TEST]\n"), 2;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_completions_and_chat, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_prompt_blocks_reach_the_cache, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_error_statuses, setup, hc_teardown),
      cmocka_unit_test_setup_teardown(test_no_worker_both_doors_wait, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(
          test_no_serving_worker_both_doors_rejected, setup, hc_teardown),
      cmocka_unit_test_setup_teardown(test_model_ids_percent_decoded, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_no_worker_both_doors_time_out,
                                      setup, hc_teardown),
      cmocka_unit_test_setup_teardown(
          test_stream_failing_before_a_token_gets_its_status, setup,
          hc_teardown),
      cmocka_unit_test_setup_teardown(test_keep_alive_and_pipelining, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_disconnect_cancels_on_worker, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_slow_clients_stall_nothing, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_metrics_pass_promtool, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_dashboard_queries_exist, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_bind_failure_and_off, setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_answers_http_clients, setup,
                                      hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
