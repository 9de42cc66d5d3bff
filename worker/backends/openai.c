/* The openai backend: forwards each request to an OpenAI-compatible server
 * (vLLM, SGLang, llama.cpp's server, Ollama, another infsched scheduler)
 * as a streamed completion, through libcurl's multi interface driven by
 * the worker's libuv loop (curl's multi-uv.c pattern: curl says which
 * sockets to watch and when to wake it, uv_poll and uv_timer do so).
 * Tokens go back as they arrive; the load is what is in flight. The two
 * phases of a split request speak vLLM's NIXL disaggregation protocol
 * (openai_body.h, docs/backends.md). */
#include "builtin.h"

#include "clock.h"
#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "list.h"
#include "log.h"
#include "openai_body.h"
#include "openai_chunk.h"
#include "openai_opts.h"
#include "openai_sse.h"
#include "slots.h"
#include "u64map.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of an error or non-streamed body kept for parsing. */
#define RAW_MAX (1u << 20)

typedef struct openai openai_t;

/* A socket curl asked us to watch. */
typedef struct watched {
  uv_poll_t poll;
  curl_socket_t fd;
  openai_t *b;
  list_node_t link;
} watched_t;

/* One request in flight. */
typedef struct xfer {
  openai_t *b;
  uint64_t id;
  uint32_t slot;
  CURL *easy;
  struct curl_slist *headers;
  char *body;
  openai_sse_t sse;
  char *raw; /* error or non-streamed body */
  size_t raw_len;
  long status;
  bool checked; /* status and content type read */
  bool is_sse;
  bool terminal; /* done or failed already reported (or cancelled) */
  bool saw_done;
  bool saw_finish;
  uint32_t tokens;
  openai_usage_t usage;
  infs_time_t started;
  infs_time_t first_token;
  infs_phase_t phase;
  /* The tokens and text the client already has (from the prefill, or a
   * lost worker) when the upstream makes them again first: dropped. */
  uint32_t resumed;
  char *said;
  size_t said_len;
  size_t said_seen;
  char errbuf[CURL_ERROR_SIZE];
  const char *url; /* one of its backend's endpoints */
} xfer_t;

struct openai {
  infs_backend_host_t host;
  openai_opts_t opts;
  char endpoint[2][OPENAI_URL_MAX + 32]; /* completions, chat */
  char *auth; /* "Authorization: Bearer ..." or NULL */
  CURLM *multi;
  uv_timer_t timer;
  list_node_t watched;
  xfer_t **slots; /* transfers in flight, by slot (NULL: free) */
  slots_t table;
  u64map_t by_id;
  size_t inflight;
  uint64_t generated;
  double busy_s;
  infs_time_t busy_since;
  bool destroying;
  /* The health probe: GET URL/models every opts.health_ms. */
  uv_timer_t probe_timer;
  CURL *probe;
  struct curl_slist *probe_headers;
  char probe_url[OPENAI_URL_MAX + 16];
  bool unhealthy;
  int open_handles; /* uv handles not yet closed; freed at 0 */
};

static int curl_users;

/* --- in-flight table and busy time --- */

static void table_add(openai_t *b, xfer_t *x) {
  size_t had = slots_take(&b->table, 32, &x->slot);
  if (had < b->table.cap)
    b->slots = xrecallocarray(b->slots, had, b->table.cap, sizeof *b->slots);
  b->slots[x->slot] = x;
  u64map_put(&b->by_id, x->id, x->slot);
  if (b->inflight++ == 0)
    b->busy_since = clock_us();
}

static xfer_t *table_get(openai_t *b, uint64_t id) {
  uint32_t slot;
  if (!u64map_get(&b->by_id, id, &slot) || b->slots[slot]->id != id)
    return NULL;
  return b->slots[slot];
}

static void table_remove(openai_t *b, xfer_t *x) {
  u64map_del(&b->by_id, x->id);
  b->slots[x->slot] = NULL;
  slots_put(&b->table, x->slot);
  if (--b->inflight == 0)
    b->busy_s += (double)(clock_us() - b->busy_since) / 1e6;
}

/* Ends a transfer: no callbacks follow. */
static void xfer_free(xfer_t *x) {
  openai_t *b = x->b;
  table_remove(b, x);
  curl_multi_remove_handle(b->multi, x->easy);
  curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->headers);
  openai_sse_free(&x->sse);
  free(x->body);
  free(x->raw);
  free(x->said);
  free(x);
}

/* --- reporting --- */

/* Fails x with a message for the caller, which names no address: the
 * endpoint and libcurl's detail (hosts, ports) go to this worker's log. */
static void fail(xfer_t *x, int code, const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(xfer_t *x, int code, const char *detail, const char *fmt,
                 ...) {
  if (x->terminal)
    return;
  x->terminal = true;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log_warn("openai: request %016llx to %s: %s%s%s", (unsigned long long)x->id,
           x->url, msg, detail && *detail ? ": " : "", detail ? detail : "");
  x->b->host.failed(x->b->host.ctx, x->id, code, msg);
}

/* What x used as the worker counts it: an upstream that made the resumed
 * tokens again counts them as generated, the worker as prompt. */
static infs_backend_usage_t usage_of(const xfer_t *x) {
  uint32_t completion = x->usage.completion;
  uint32_t resumed = x->resumed < completion ? x->resumed : completion;
  return (infs_backend_usage_t){
      .prompt_tokens = x->usage.have ? x->usage.prompt + resumed : 0,
      .cached_tokens = x->usage.cached,
      .generated_tokens =
          x->usage.have && completion ? completion - resumed : x->tokens,
      .ttft_us = (x->first_token ? x->first_token : (infs_time_t)clock_us()) -
                 x->started,
  };
}

static void succeed(xfer_t *x) {
  if (x->terminal)
    return;
  x->terminal = true;
  infs_backend_usage_t u = usage_of(x);
  x->b->generated += u.generated_tokens;
  x->b->host.done(x->b->host.ctx, x->id, &u);
}

/* The code of an answer that refuses x: a decode instance that refuses
 * before its first new token could not take the prefill's KV, and the
 * scheduler then runs the request on one worker. */
static int refusal_code(const xfer_t *x) {
  return x->phase == INFS_PHASE_DECODE && x->tokens == 0
             ? INFSCHED__ERROR_CODE__ERROR_KV_TRANSFER
             : INFSCHED__ERROR_CODE__ERROR_BACKEND;
}

static void emit_text(xfer_t *x, const char *text) {
  if (!text || !*text)
    return;
  size_t len = strlen(text);
  if (x->said_seen < x->said_len) {
    size_t n =
        x->said_len - x->said_seen < len ? x->said_len - x->said_seen : len;
    /* Sampling may make the answer made again differ from what the client
     * has; it keeps what it has, and the stream goes on. */
    if (memcmp(text, x->said + x->said_seen, n) != 0)
      log_warn("openai: request %016llx: the upstream's answer begins "
               "otherwise than the text the client already has",
               (unsigned long long)x->id);
    x->said_seen += n;
    text += n;
    len -= n;
    if (!len)
      return;
  }
  if (!x->first_token)
    x->first_token = clock_us();
  x->tokens++;
  x->b->host.tokens(x->b->host.ctx, x->id, 1, text, len);
}

/* --- reading answers --- */

/* Relays tool calls as they came, as one token: the front door merges a
 * stream's pieces by index, so a whole call (not streamed) gets the index
 * of its place when it has none. */
static void emit_tool_calls(xfer_t *x, const cJSON *calls) {
  if (!calls)
    return;
  cJSON *copy = xcheck(cJSON_Duplicate(calls, true));
  int i = 0;
  cJSON *item;
  cJSON_ArrayForEach(item, copy) {
    if (cJSON_IsObject(item) &&
        !cJSON_GetObjectItemCaseSensitive(item, "index"))
      cJSON_AddNumberToObject(item, "index", i);
    i++;
  }
  char *json = xcheck(cJSON_PrintUnformatted(copy));
  cJSON_Delete(copy);
  if (!x->first_token)
    x->first_token = clock_us();
  x->tokens++;
  x->b->host.tool_calls(x->b->host.ctx, x->id, 1, json, strlen(json));
  free(json);
}

/* Relays choices[0].logprobs (an object; null when none was asked) for
 * the text just emitted; never ahead of the first token, which is when
 * the request's first token counts. */
static void emit_logprobs(xfer_t *x, const cJSON *choice) {
  const cJSON *lp = cJSON_GetObjectItemCaseSensitive(choice, "logprobs");
  if (!cJSON_IsObject(lp) || !x->tokens)
    return;
  char *json = xcheck(cJSON_PrintUnformatted(lp));
  x->b->host.logprobs(x->b->host.ctx, x->id, json, strlen(json));
  free(json);
}

static int on_event(void *arg, const char *data, size_t len) {
  xfer_t *x = arg;
  if (strcmp(data, "[DONE]") == 0) {
    x->saw_done = true;
    return 0;
  }
  cJSON *root = cJSON_ParseWithLength(data, len);
  if (!root) {
    fail(x, INFSCHED__ERROR_CODE__ERROR_BACKEND, NULL,
         "the upstream sent an event that is not JSON");
    return 1;
  }
  const char *err = openai_chunk_error(root);
  if (err) {
    fail(x, refusal_code(x), NULL, "upstream error: %s", err);
    cJSON_Delete(root);
    return 1;
  }
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  const cJSON *choice = cJSON_GetArrayItem(choices, 0);
  if (choice) {
    emit_text(x, openai_chunk_text(choice));
    emit_logprobs(x, choice);
    emit_tool_calls(x, openai_chunk_tool_calls(choice));
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    if (cJSON_IsString(fr))
      x->saw_finish = true;
  }
  openai_chunk_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"),
                     &x->usage);
  cJSON_Delete(root);
  return 0;
}

static void keep_raw(xfer_t *x, const char *data, size_t n) {
  if (x->raw_len + n > RAW_MAX)
    n = RAW_MAX - x->raw_len;
  if (!n)
    return;
  char *p = xrealloc(x->raw, x->raw_len + n + 1);
  memcpy(p + x->raw_len, data, n);
  x->raw = p;
  x->raw_len += n;
  x->raw[x->raw_len] = '\0';
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg) {
  xfer_t *x = arg;
  size_t n = size * nmemb;
  if (x->terminal)
    return 0; /* aborts the transfer */
  if (!x->checked) {
    char *ctype = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
    x->is_sse = ctype && strncmp(ctype, "text/event-stream", 17) == 0;
    x->checked = true;
  }
  if (x->status >= 400 || !x->is_sse) {
    keep_raw(x, data, n);
    return n;
  }
  int rc = openai_sse_feed(&x->sse, data, n, on_event, x);
  if (rc < 0)
    fail(x, INFSCHED__ERROR_CODE__ERROR_BACKEND, NULL,
         "the upstream sent an event larger than %u bytes", OPENAI_SSE_MAX);
  return rc ? 0 : n;
}

/* A prefill instance's answer: its first token, then the
 * kv_transfer_params a decode instance needs, which the worker relays as
 * the KV handle. vLLM holds the KV until a decode instance has read it or
 * its own timeout passes: there is nothing to release here. */
static void prefilled(xfer_t *x, const cJSON *root, const char *text) {
  openai_chunk_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"),
                     &x->usage);
  const cJSON *kv =
      cJSON_GetObjectItemCaseSensitive(root, "kv_transfer_params");
  if (!cJSON_IsObject(kv)) {
    fail(x, INFSCHED__ERROR_CODE__ERROR_KV_TRANSFER, NULL,
         "the upstream returned no kv_transfer_params for the prefill (a "
         "vLLM server needs --kv-transfer-config with the NixlConnector)");
    return;
  }
  emit_text(x, text);
  char *params = cJSON_PrintUnformatted(kv);
  x->terminal = true;
  infs_backend_usage_t u = usage_of(x);
  x->b->generated += u.generated_tokens;
  x->b->host.prefilled(x->b->host.ctx, x->id, &u, params, strlen(params));
  free(params);
}

/* An answer that was not streamed: a prefill's, or a server's that
 * ignores "stream". */
static void finish_plain(xfer_t *x) {
  cJSON *root = x->raw ? cJSON_Parse(x->raw) : NULL;
  const cJSON *choice =
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
  const char *text = choice ? openai_chunk_text(choice) : NULL;
  const cJSON *calls = choice ? openai_chunk_tool_calls(choice) : NULL;
  if (!text && !calls) {
    fail(x, INFSCHED__ERROR_CODE__ERROR_BACKEND, NULL,
         "the upstream answered HTTP %ld without a completion", x->status);
  } else if (x->phase == INFS_PHASE_PREFILL) {
    prefilled(x, root, text);
  } else {
    openai_chunk_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"),
                       &x->usage);
    emit_text(x, text);
    emit_logprobs(x, choice);
    emit_tool_calls(x, calls);
    succeed(x);
  }
  cJSON_Delete(root);
}

static void finish(xfer_t *x, CURLcode res) {
  if (x->terminal)
    return;
  if (res == CURLE_OPERATION_TIMEDOUT) {
    fail(x, INFSCHED__ERROR_CODE__ERROR_UPSTREAM_TIMEOUT, x->errbuf,
         "the upstream timed out (%s)", curl_easy_strerror(res));
    return;
  }
  if (res != CURLE_OK) {
    fail(x, INFSCHED__ERROR_CODE__ERROR_BACKEND, x->errbuf, "upstream: %s",
         curl_easy_strerror(res));
    return;
  }
  if (!x->checked)
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->status >= 400 || x->status < 200) {
    cJSON *root = x->raw ? cJSON_Parse(x->raw) : NULL;
    const char *msg = root ? openai_chunk_error(root) : NULL;
    fail(x, refusal_code(x), NULL, "upstream HTTP %ld: %.300s", x->status,
         msg ? msg : (x->raw ? x->raw : "(no body)"));
    cJSON_Delete(root);
    return;
  }
  if (!x->is_sse) {
    finish_plain(x);
    return;
  }
  if (x->phase == INFS_PHASE_PREFILL) {
    fail(x, INFSCHED__ERROR_CODE__ERROR_KV_TRANSFER, NULL,
         "the upstream streamed the prefill, without kv_transfer_params");
    return;
  }
  if (x->saw_done || x->saw_finish)
    succeed(x);
  else
    fail(x, INFSCHED__ERROR_CODE__ERROR_BACKEND, NULL,
         "the upstream ended the stream before it finished");
}

/* --- libcurl on libuv --- */

static size_t discard(char *data, size_t size, size_t n, void *arg) {
  (void)data;
  (void)arg;
  return size * n;
}

/* The upstream is healthy while URL/models answers 2xx: both vLLM and
 * llama-server serve it, and it needs no model time. */
static void probe_done(openai_t *b, CURLcode res) {
  long status = 0;
  curl_easy_getinfo(b->probe, CURLINFO_RESPONSE_CODE, &status);
  bool unhealthy = res != CURLE_OK || status < 200 || status > 299;
  if (unhealthy && !b->unhealthy)
    log_warn("openai: upstream %s unhealthy (%s): taking no requests",
             b->probe_url,
             res != CURLE_OK ? curl_easy_strerror(res) : "HTTP error");
  else if (!unhealthy && b->unhealthy)
    log_info("openai: upstream %s healthy again", b->probe_url);
  b->unhealthy = unhealthy;
  curl_multi_remove_handle(b->multi, b->probe);
  curl_easy_cleanup(b->probe);
  b->probe = NULL;
}

static void on_probe_timer(uv_timer_t *t) {
  openai_t *b = t->data;
  if (b->probe || b->destroying)
    return;
  CURL *e = b->probe = curl_easy_init();
  if (!e)
    return;
  curl_easy_setopt(e, CURLOPT_URL, b->probe_url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)b->opts.health_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)b->opts.connect_timeout_ms);
  if (b->probe_headers)
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, b->probe_headers);
  if (curl_multi_add_handle(b->multi, e) != CURLM_OK) {
    curl_easy_cleanup(e);
    b->probe = NULL;
  }
}

static void check_done(openai_t *b) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(b->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    if (msg->easy_handle == b->probe) {
      probe_done(b, msg->data.result);
      continue;
    }
    xfer_t *x = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    CURLcode res = msg->data.result;
    finish(x, res);
    xfer_free(x);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  watched_t *w = h->data;
  openai_t *b = w->b;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(b->multi, w->fd, flags, &running);
  check_done(b);
}

static void on_timeout(uv_timer_t *t) {
  openai_t *b = t->data;
  int running;
  curl_multi_socket_action(b->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(b);
}

static void on_watched_closed(uv_handle_t *h) {
  free(h->data);
}

static void unwatch(watched_t *w) {
  list_remove(&w->link);
  uv_close((uv_handle_t *)&w->poll, on_watched_closed);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *arg,
                     void *sockp) {
  openai_t *b = arg;
  watched_t *w = sockp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (w) {
      curl_multi_assign(b->multi, fd, NULL);
      unwatch(w);
    }
    return 0;
  }
  if (b->destroying)
    return 0;
  if (!w) {
    w = xcalloc(1, sizeof *w);
    if (uv_poll_init_socket(b->host.loop, &w->poll, fd) != 0) {
      free(w);
      return -1;
    }
    w->fd = fd;
    w->b = b;
    w->poll.data = w;
    list_push_back(&b->watched, &w->link);
    curl_multi_assign(b->multi, fd, w);
  }
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&w->poll, events, on_poll);
  return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg) {
  openai_t *b = arg;
  (void)multi;
  if (b->destroying)
    return 0;
  if (timeout_ms < 0)
    uv_timer_stop(&b->timer);
  else /* 0 runs on the next loop turn: curl must not be re-entered here */
    uv_timer_start(&b->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

/* --- requests --- */

/* Whether s can go in a header line as it is. */
static bool header_safe(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return false;
  return true;
}

static struct curl_slist *request_headers(const openai_t *b,
                                          const infs_backend_request_t *r) {
  char line[INFS_NAME_MAX + 64];
  struct curl_slist *h = NULL;
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, r->phase == INFS_PHASE_PREFILL
                               ? "Accept: application/json"
                               : "Accept: text/event-stream");
  h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
  if (b->auth)
    h = curl_slist_append(h, b->auth);
  /* Another infsched scheduler upstream keeps the class and session. */
  if ((unsigned)r->cls < INFS_CLASS_COUNT) {
    snprintf(line, sizeof line, "x-infsched-class: %s",
             infs_class_name(r->cls));
    h = curl_slist_append(h, line);
  }
  if (r->session && r->session[0] && strlen(r->session) < INFS_NAME_MAX &&
      header_safe(r->session)) {
    snprintf(line, sizeof line, "x-infsched-session: %s", r->session);
    h = curl_slist_append(h, line);
  }
  return h;
}

static int openai_submit(void *state, const infs_backend_request_t *r) {
  openai_t *b = state;
  if (b->destroying || table_get(b, r->id))
    return INFS_EDUPLICATE;
  xfer_t *x = xcalloc(1, sizeof *x);
  x->b = b;
  x->id = r->id;
  x->started = clock_us();
  openai_sse_init(&x->sse);
  bool chat = openai_opts_chat(&b->opts, r->messages && r->messages[0]);
  x->url = b->endpoint[chat];
  const char *why;
  int rc = openai_body(r, b->opts.model[0] ? b->opts.model : r->model, chat,
                       &x->body, &why);
  if (rc) {
    free(x);
    b->host.failed(b->host.ctx, r->id,
                   rc == OPENAI_BODY_BAD_KV
                       ? INFSCHED__ERROR_CODE__ERROR_KV_TRANSFER
                       : INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST,
                   why);
    return 0;
  }
  x->phase = r->phase;
  if (openai_body_regenerates(r, chat)) {
    x->resumed = r->resumed;
    if (r->resumed_len && r->resumed_len <= r->prompt_len) {
      x->said_len = r->resumed_len;
      x->said = xmalloc(x->said_len);
      memcpy(x->said, r->prompt + r->prompt_len - r->resumed_len,
             x->said_len);
    }
  }
  x->headers = request_headers(b, r);
  x->easy = curl_easy_init();
  if (!x->easy || !x->headers) {
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
    return -ENOMEM;
  }
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_URL, x->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)b->opts.timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)b->opts.connect_timeout_ms);
  table_add(b, x);
  CURLMcode mc = curl_multi_add_handle(b->multi, e);
  if (mc != CURLM_OK) {
    x->terminal = true;
    xfer_free(x);
    return INFS_EBUSY;
  }
  return 0;
}

static void openai_cancel(void *state, uint64_t id) {
  openai_t *b = state;
  xfer_t *x = table_get(b, id);
  /* One that has ended (a prefill the worker releases from its prefilled
   * callback) is freed when curl reports it done. */
  if (!x || x->terminal)
    return;
  /* Removing the handle closes the upstream connection, which an infsched
   * upstream takes as a cancellation too. */
  x->terminal = true;
  xfer_free(x);
}

static void openai_load(void *state, infs_backend_load_t *out) {
  openai_t *b = state;
  double busy = b->busy_s;
  if (b->inflight)
    busy += (double)(clock_us() - b->busy_since) / 1e6;
  *out = (infs_backend_load_t){
      .queued = 0,
      .running = (uint32_t)b->inflight,
      .busy_s = busy,
      .generated_tokens = b->generated,
      .unhealthy = b->unhealthy,
  };
}

/* --- life cycle --- */

static int openai_create(const infs_backend_host_t *host, const char *args,
                         void **state, char *err, size_t errlen) {
  openai_t *b = xcalloc(1, sizeof *b);
  if (openai_opts_parse(args, &b->opts, err, errlen)) {
    free(b);
    return INFS_ECONFIG;
  }
  if (b->opts.api_key_env[0]) {
    const char *key = getenv(b->opts.api_key_env);
    if (!key || !*key || !header_safe(key)) {
      snprintf(err, errlen, "openai: environment variable %s is %s",
               b->opts.api_key_env,
               key && *key ? "not a valid key" : "not set");
      free(b);
      /* The environment, not the flags: the worker cannot start. */
      return -ENOKEY;
    }
    size_t n = strlen(key) + 32;
    b->auth = xmalloc(n);
    snprintf(b->auth, n, "Authorization: Bearer %s", key);
  }
  /* A TLS library below curl may write to a socket the server has closed:
   * that must be an error for the transfer, not the end of the worker. */
  signal(SIGPIPE, SIG_IGN);
  if (curl_users++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    curl_users--;
    snprintf(err, errlen, "openai: libcurl failed to initialise");
    free(b->auth);
    free(b);
    return -EIO;
  }
  b->host = *host;
  openai_opts_endpoint(&b->opts, false, b->endpoint[0], sizeof b->endpoint[0]);
  openai_opts_endpoint(&b->opts, true, b->endpoint[1], sizeof b->endpoint[1]);
  list_init(&b->watched);
  u64map_init(&b->by_id);
  b->multi = curl_multi_init();
  curl_multi_setopt(b->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(b->multi, CURLMOPT_SOCKETDATA, b);
  curl_multi_setopt(b->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(b->multi, CURLMOPT_TIMERDATA, b);
  uv_timer_init(host->loop, &b->timer);
  b->timer.data = b;
  uv_timer_init(host->loop, &b->probe_timer);
  b->probe_timer.data = b;
  b->open_handles = 2;
  snprintf(b->probe_url, sizeof b->probe_url, "%s/models", b->opts.base);
  if (b->auth)
    b->probe_headers = curl_slist_append(NULL, b->auth);
  if (b->opts.health_ms)
    uv_timer_start(&b->probe_timer, on_probe_timer, 0, b->opts.health_ms);
  *state = b;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  openai_t *b = h->data;
  if (--b->open_handles > 0)
    return;
  curl_slist_free_all(b->probe_headers);
  u64map_free(&b->by_id);
  free(b->slots);
  slots_free(&b->table);
  free(b->auth);
  free(b);
}

static void openai_destroy(void *state) {
  openai_t *b = state;
  b->destroying = true;
  for (size_t i = 0; i < b->table.cap; i++)
    if (b->slots[i]) {
      b->slots[i]->terminal = true;
      xfer_free(b->slots[i]);
    }
  if (b->probe) {
    curl_multi_remove_handle(b->multi, b->probe);
    curl_easy_cleanup(b->probe);
    b->probe = NULL;
  }
  curl_multi_cleanup(b->multi);
  b->multi = NULL;
  /* Sockets of connections curl kept for reuse. */
  while (!list_empty(&b->watched))
    unwatch(list_entry(b->watched.next, watched_t, link));
  if (--curl_users == 0)
    curl_global_cleanup();
  uv_close((uv_handle_t *)&b->timer, on_timer_closed);
  uv_close((uv_handle_t *)&b->probe_timer, on_timer_closed);
}

const infs_backend_ops_t backend_openai = {
    .abi = INFS_BACKEND_ABI,
    .name = "openai",
    .create = openai_create,
    .submit = openai_submit,
    .cancel = openai_cancel,
    .load = openai_load,
    .cache_delta = NULL,
    .cache_snapshot = NULL,
    .destroy = openai_destroy,
};
