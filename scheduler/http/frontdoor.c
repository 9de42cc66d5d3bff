#include "frontdoor.h"

#include "infsched.pb-c.h"
#include "clock.h"
#include "log.h"
#include "slots.h"
#include "xalloc.h"
#include "buf.h"
#include "oai.h"
#include "prompt_hash.h"
#include "server.h"
#include "sse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PEER_LEN 8
#define JSON "application/json"
#define SLO_MS_MAX 3600000u
/* Seconds a refused client is told to wait (429, 503): a full queue drains
 * and a restarted worker registers within about that; OpenAI's clients
 * back off further on their own after repeated refusals. */
#define RETRY_AFTER_S 1

/* One HTTP inference request between its submission and its answer. */
typedef struct fd_req {
  http_exchange_t *x;
  uint64_t id;
  oai_kind_t kind;
  bool stream;
  bool include_usage;
  bool started; /* stream headers sent: after the first token or the end */
  int tenant;   /* the API key's, or -1 */
  uint32_t max_tokens;
  uint32_t tokens; /* generated so far */
  int64_t created;
  char *model;
  char name[40]; /* "cmpl-..." */
  buf_t text;   /* non-streamed answer so far */
  oai_pieces_t pieces; /* a non-streamed answer's tool calls, logprobs */
  bool called;            /* tool calls came: finish_reason tool_calls */
} fd_req_t;

struct frontdoor {
  const core_t *core;
  metrics_t *metrics;
  frontdoor_hooks_t hooks;
  http_server_t *server;
  uint64_t salt;    /* makes response ids differ across restarts */
  fd_req_t **slots; /* by slot; NULL when free */
  uint32_t *generation;
  slots_t table;
  uint64_t *blocks; /* scratch for prompt block hashes */
  size_t blocks_cap;
  buf_t out;        /* scratch for bodies and events */
  size_t max_prompt; /* bytes of prompt a dispatch can carry; 0: any */
  const apikeys_t *keys; /* NULL: no key needed */
  bool stopping;
};

/* --- peers and the request table --- */

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void peer_of(uint64_t id, core_peer_t *peer) {
  peer->door = CORE_DOOR_HTTP;
  peer->len = PEER_LEN;
  put_le32(peer->id, (uint32_t)id);
  put_le32(peer->id + 4, (uint32_t)(id >> 32));
}

bool frontdoor_owns_peer(const core_peer_t *peer) {
  return peer->door == CORE_DOOR_HTTP;
}

static fd_req_t *req_add(frontdoor_t *f) {
  uint32_t slot;
  size_t had = slots_take(&f->table, 64, &slot);
  if (had < f->table.cap) {
    f->slots = xrecallocarray(f->slots, had, f->table.cap, sizeof *f->slots);
    f->generation = xrecallocarray(f->generation, had, f->table.cap,
                                   sizeof *f->generation);
  }
  fd_req_t *r = xcalloc(1, sizeof *r);
  r->id = (uint64_t)++f->generation[slot] << 32 | slot;
  f->slots[slot] = r;
  return r;
}

static fd_req_t *req_get(const frontdoor_t *f, uint64_t id) {
  uint32_t slot = (uint32_t)id;
  if (slot >= f->table.cap || !f->slots[slot] || f->slots[slot]->id != id)
    return NULL;
  return f->slots[slot];
}

static void req_free(frontdoor_t *f, fd_req_t *r) {
  f->slots[(uint32_t)r->id] = NULL;
  slots_put(&f->table, (uint32_t)r->id);
  free(r->model);
  buf_free(&r->text);
  oai_pieces_free(&r->pieces);
  free(r);
}

/* --- answers --- */

static void respond_json(http_exchange_t *x, int status, const char *extra,
                         const char *body) {
  http_respond(x, status, JSON, extra, body, strlen(body));
}

/* Allow on 405; Retry-After on the refusals a client may retry. */
static const char *error_headers(int status, const char *allow, char *buf,
                                 size_t len) {
  if (status == 405)
    snprintf(buf, len, "Allow: %s\r\n", allow);
  else if (status == 429 || status == 503)
    snprintf(buf, len, "Retry-After: %d\r\n", RETRY_AFTER_S);
  else
    return NULL;
  return buf;
}

static void respond_error(http_exchange_t *x, int status, const char *type,
                          const char *code, const char *param,
                          const char *message) {
  char *body = oai_render_error(message, type, param, code);
  char extra[64];
  respond_json(x, status, error_headers(status, "POST", extra, sizeof extra),
               body);
  free(body);
}

typedef struct error_map {
  int status;
  const char *type;
  const char *code;
} error_map_t;

/* The HTTP status of a core error code, as OpenAI's clients read them. */
static error_map_t map_error(int code) {
  switch (code) {
  case INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_FULL:
    return (error_map_t){429, "rate_limit_error", "queue_full"};
  case INFSCHED__ERROR_CODE__ERROR_REJECTED_NO_WORKER:
    return (error_map_t){404, "invalid_request_error", "model_not_found"};
  case INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_TIMEOUT:
    return (error_map_t){503, "server_error", "queue_timeout"};
  case INFSCHED__ERROR_CODE__ERROR_REJECTED_CONTEXT:
    return (error_map_t){400, "invalid_request_error",
                         "context_length_exceeded"};
  case INFSCHED__ERROR_CODE__ERROR_REJECTED_UNAVAILABLE:
    return (error_map_t){503, "server_error", "no_healthy_worker"};
  case INFSCHED__ERROR_CODE__ERROR_REJECTED_SHUTDOWN:
  case INFSCHED__ERROR_CODE__ERROR_CANCELLED:
    return (error_map_t){503, "server_error", "unavailable"};
  case INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST:
    return (error_map_t){400, "invalid_request_error", NULL};
  case INFSCHED__ERROR_CODE__ERROR_WORKER_LOST:
    return (error_map_t){502, "server_error", "worker_lost"};
  case INFSCHED__ERROR_CODE__ERROR_BACKEND:
    return (error_map_t){502, "server_error", "backend_error"};
  case INFSCHED__ERROR_CODE__ERROR_UPSTREAM_TIMEOUT:
    return (error_map_t){504, "server_error", "upstream_timeout"};
  default:
    return (error_map_t){500, "server_error", NULL};
  }
}

static oai_meta_t meta_of(const fd_req_t *r) {
  return (oai_meta_t){
      .kind = r->kind, .id = r->name, .model = r->model, .created = r->created};
}

static void send_event(frontdoor_t *f, fd_req_t *r, char *json) {
  buf_reset(&f->out);
  sse_append_event(&f->out, json);
  free(json);
  http_stream_write(r->x, f->out.data, f->out.len);
}

/* Sends a stream's headers once there is something to stream: until then
 * a failure can still be answered with its own status. */
static void start_stream(frontdoor_t *f, fd_req_t *r) {
  if (r->started)
    return;
  r->started = true;
  http_stream_begin(r->x, 200, "text/event-stream", NULL);
  if (r->kind == OAI_CHAT) {
    oai_meta_t m = meta_of(r);
    send_event(f, r, oai_render_chunk(&m, "", true, NULL));
  }
}

/* Tool calls, chat's alone: relayed piece by piece to a stream, merged
 * into whole calls for an answer. */
static void on_tool_calls(frontdoor_t *f, fd_req_t *r, const char *deltas) {
  size_t len = strlen(deltas);
  if (r->kind != OAI_CHAT)
    return;
  if (!r->stream) {
    if (oai_tool_calls_merge(&r->pieces, deltas, len) == 0)
      r->called = true;
    return;
  }
  oai_meta_t m = meta_of(r);
  char *event = oai_render_tool_chunk(&m, deltas, len);
  if (!event)
    return;
  r->called = true;
  start_stream(f, r);
  send_event(f, r, event);
}

/* Log probabilities of the text sent before: a stream gets them in an
 * event of their own, an answer all of them together. */
static void on_logprobs(frontdoor_t *f, fd_req_t *r, const char *json) {
  size_t len = strlen(json);
  if (!r->stream) {
    oai_logprobs_merge(&r->pieces, json, len);
    return;
  }
  oai_meta_t m = meta_of(r);
  char *event = oai_render_logprobs_chunk(&m, json, len);
  if (!event)
    return;
  start_stream(f, r);
  send_event(f, r, event);
}

static void on_chunk(frontdoor_t *f, fd_req_t *r, const Infsched__Chunk *c) {
  r->tokens += c->tokens;
  if (c->tool_calls && *c->tool_calls)
    on_tool_calls(f, r, c->tool_calls);
  if (c->logprobs && *c->logprobs)
    on_logprobs(f, r, c->logprobs);
  const char *text = c->text ? c->text : "";
  if (!r->stream) {
    buf_puts(&r->text, text);
    return;
  }
  if (!*text)
    return;
  start_stream(f, r);
  oai_meta_t m = meta_of(r);
  send_event(f, r, oai_render_chunk(&m, text, false, NULL));
}

/* A header line for a value that is safe to echo, or nothing. */
static void worker_header(char *buf, size_t len, const char *worker) {
  buf[0] = '\0';
  if (!worker || !*worker)
    return;
  for (const char *p = worker; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return;
  snprintf(buf, len, "x-infsched-worker: %s\r\n", worker);
}

/* a: the DONE action, with the worker's Done as its passthrough, or the
 * figures the core made it from (a split request's) in a->done. */
static void on_done(frontdoor_t *f, fd_req_t *r, const core_action_t *a) {
  const Infsched__Done *d = a->passthrough;
  oai_usage_t u = {.completion_tokens = r->tokens};
  if (a->done) {
    u.prompt_tokens = a->done->prompt_tokens;
    u.cached_tokens = a->done->cached_tokens;
    if (a->done->generated_tokens)
      u.completion_tokens = a->done->generated_tokens;
  } else if (d && d->usage) {
    u.prompt_tokens = d->usage->prompt_tokens;
    u.cached_tokens = d->usage->cached_tokens;
    if (d->usage->generated_tokens)
      u.completion_tokens = d->usage->generated_tokens;
  }
  metrics_on_tenant_end(f->metrics, r->tenant, METRICS_END_COMPLETED,
                        u.prompt_tokens, u.completion_tokens);
  const char *finish = r->called ? "tool_calls"
                       : u.completion_tokens >= r->max_tokens ? "length"
                                                              : "stop";
  oai_meta_t m = meta_of(r);
  if (r->stream) {
    start_stream(f, r);
    send_event(
        f, r,
        oai_render_chunk(&m, r->kind == OAI_CHAT ? NULL : "", false, finish));
    if (r->include_usage)
      send_event(f, r, oai_render_usage_chunk(&m, &u));
    buf_reset(&f->out);
    sse_append_done(&f->out);
    http_stream_write(r->x, f->out.data, f->out.len);
    http_stream_end(r->x);
    return;
  }
  oai_extra_t extra = {
      .worker = a->done ? a->worker_id : d ? d->worker_id : NULL,
      .worker_class = a->done ? a->worker_class : d ? d->worker_class : NULL,
      .cost_usd = a->done ? a->done->cost_usd : d ? d->cost_usd : 0,
  };
  char header[INFS_NAME_MAX + 32];
  worker_header(header, sizeof header, extra.worker);
  char *body = oai_render_response(&m, r->text.data ? r->text.data : "", finish,
                                   &u, &extra, &r->pieces);
  respond_json(r->x, 200, header, body);
  free(body);
}

static void on_error(frontdoor_t *f, fd_req_t *r, int code,
                     const char *message) {
  error_map_t e = map_error(code);
  metrics_on_tenant_end(f->metrics, r->tenant, metrics_end_of(code), 0, 0);
  if (!r->started) {
    respond_error(r->x, e.status, e.type, e.code, NULL, message);
    return;
  }
  /* Headers are gone: the error becomes the last event, as OpenAI's
   * clients expect, and the stream ends without [DONE]. */
  send_event(f, r, oai_render_error(message, e.type, NULL, e.code));
  http_stream_end(r->x);
}

void frontdoor_on_action(frontdoor_t *f, const core_action_t *a) {
  if (!f)
    return;
  fd_req_t *r = req_get(f, a->request_id);
  if (!r || !r->x)
    return;
  switch (a->kind) {
  case CORE_ACT_CHUNK:
    /* Chunks the core makes answer ZeroMQ resubmits only. */
    if (a->passthrough)
      on_chunk(f, r, a->passthrough);
    return;
  case CORE_ACT_DONE:
    on_done(f, r, a);
    break;
  case CORE_ACT_ERROR:
    on_error(f, r, a->code, a->message);
    break;
  default:
    return;
  }
  http_exchange_set_user(r->x, NULL);
  req_free(f, r);
}

/* --- requests --- */

static int parse_slo(http_exchange_t *x, const char *name, uint32_t *out) {
  const char *v = http_exchange_header(x, name);
  *out = 0;
  if (!v)
    return 0;
  char *end;
  errno = 0;
  unsigned long n = strtoul(v, &end, 10);
  if (errno || end == v || *end || n < 1 || n > SLO_MS_MAX || v[0] == '-')
    return -1;
  *out = (uint32_t)n;
  return 0;
}

static void submit(frontdoor_t *f, http_exchange_t *x, oai_request_t *q,
                   int tenant, infs_class_t cls, const char *session,
                   uint32_t ttft_ms, uint32_t tpot_ms) {
  fd_req_t *r = req_add(f);
  r->x = x;
  r->tenant = tenant;
  r->kind = q->kind;
  r->stream = q->stream;
  r->include_usage = q->include_usage;
  r->max_tokens = q->max_tokens;
  r->created = (int64_t)time(NULL);
  r->model = q->model;
  q->model = NULL;
  snprintf(r->name, sizeof r->name, "%s-%016llx",
           q->kind == OAI_CHAT ? "chatcmpl" : "cmpl",
           (unsigned long long)(r->id ^ f->salt));
  http_exchange_set_user(x, r);

  size_t chunk = prompt_hash_chunk_bytes(FRONTDOOR_BLOCK_TOKENS);
  size_t need = q->prompt_len / chunk;
  if (need > f->blocks_cap) {
    f->blocks = xrealloc(f->blocks, need * sizeof *f->blocks);
    f->blocks_cap = need;
  }
  size_t n_blocks =
      prompt_hash_blocks(q->prompt, q->prompt_len, chunk, f->blocks, need);
  core_request_t req = {
      .id = r->id,
      .model = r->model,
      .prompt = q->prompt,
      .prompt_len = q->prompt_len,
      .prompt_tokens = prompt_hash_estimate_tokens(q->prompt_len),
      .max_tokens = q->max_tokens,
      .cls = cls,
      .ttft_ms = ttft_ms,
      .tpot_ms = tpot_ms,
      .session = session,
      .blocks = f->blocks,
      .n_blocks = n_blocks,
      .messages = q->messages,
      .options = q->options,
      .has_temperature = q->has_temperature,
      .has_top_p = q->has_top_p,
      .has_seed = q->has_seed,
      .temperature = q->temperature,
      .top_p = q->top_p,
      .seed = q->seed,
  };
  core_peer_t peer;
  peer_of(r->id, &peer);
  /* May answer (and free r) before it returns. */
  f->hooks.submit(f->hooks.ctx, &peer, &req);
}

/* Bytes of text a dispatch carries for q: the prompt, and a chat's
 * messages and the options beside it. */
static size_t carried(const oai_request_t *q) {
  return q->prompt_len + (q->messages ? strlen(q->messages) : 0) +
         (q->options ? strlen(q->options) : 0);
}

/* The tenant's class applies where neither the body nor the header names
 * one; without keys, agent. */
static void handle_inference(frontdoor_t *f, http_exchange_t *x,
                             oai_kind_t kind, int tenant,
                             infs_class_t tenant_cls) {
  size_t len;
  const char *body = http_exchange_body(x, &len);
  oai_request_t q;
  char msg[256];
  const char *param;
  metrics_on_tenant_request(f->metrics, tenant);
  if (oai_parse_request(kind, body, len, &q, msg, sizeof msg, &param)) {
    metrics_on_tenant_end(f->metrics, tenant, METRICS_END_REJECTED, 0, 0);
    respond_error(x, 400, "invalid_request_error", NULL, param, msg);
    return;
  }
  infs_class_t cls = q.has_class ? q.cls : tenant_cls;
  const char *hcls = http_exchange_header(x, "x-infsched-class");
  const char *session = http_exchange_header(x, "x-infsched-session");
  uint32_t ttft_ms, tpot_ms;
  if (hcls && infs_class_parse(hcls, &cls)) {
    respond_error(x, 400, "invalid_request_error", NULL, "x-infsched-class",
                  "x-infsched-class must be interactive, agent or batch");
  } else if (parse_slo(x, "x-infsched-ttft-ms", &ttft_ms) ||
             parse_slo(x, "x-infsched-tpot-ms", &tpot_ms)) {
    respond_error(x, 400, "invalid_request_error", NULL, NULL,
                  "x-infsched-ttft-ms and x-infsched-tpot-ms must be "
                  "integers from 1 to 3600000");
  } else if (f->max_prompt && carried(&q) > f->max_prompt) {
    snprintf(msg, sizeof msg,
             "the prompt of %zu bytes is larger than a dispatch can carry "
             "(%zu bytes; see --max-msg-bytes)",
             carried(&q), f->max_prompt);
    respond_error(x, 413, "invalid_request_error", NULL, NULL, msg);
  } else if (f->stopping) {
    respond_error(x, 503, "server_error", "unavailable", NULL,
                  "the scheduler is shutting down");
  } else {
    submit(f, x, &q, tenant, cls, session ? session : q.session, ttft_ms,
           tpot_ms);
    oai_request_free(&q);
    return;
  }
  metrics_on_tenant_end(f->metrics, tenant, METRICS_END_REJECTED, 0, 0);
  oai_request_free(&q);
}

/* The model object of id: OpenAI's fields, and under "infsched" the
 * classes of the workers serving it and how many there are; NULL when no
 * live worker serves it. */
static cJSON *model_object(const frontdoor_t *f, const char *id) {
  bool classes[INFS_WORKER_CLASS_COUNT] = {false};
  int workers = 0;
  core_worker_view_t v;
  for (size_t i = 0; core_worker_next(f->core, &i, &v) == 0;) {
    if (!v.model || strcmp(v.model, id) != 0)
      continue;
    workers++;
    if ((unsigned)v.profile->cls < INFS_WORKER_CLASS_COUNT)
      classes[v.profile->cls] = true;
  }
  if (!workers)
    return NULL;
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "id", id);
  cJSON_AddStringToObject(m, "object", "model");
  cJSON_AddNumberToObject(m, "created", 0);
  cJSON_AddStringToObject(m, "owned_by", "infsched");
  cJSON *x = cJSON_AddObjectToObject(m, "infsched");
  cJSON_AddNumberToObject(x, "workers", workers);
  cJSON *cls = cJSON_AddArrayToObject(x, "worker_classes");
  for (int c = 0; c < INFS_WORKER_CLASS_COUNT; c++)
    if (classes[c])
      cJSON_AddItemToArray(
          cls, cJSON_CreateString(infs_worker_class_name((infs_worker_class_t)c)));
  return m;
}

static void respond_object(http_exchange_t *x, cJSON *o) {
  char *body = xcheck(cJSON_PrintUnformatted(o));
  cJSON_Delete(o);
  respond_json(x, 200, NULL, body);
  free(body);
}

/* GET /v1/models, or /v1/models/ID. */
static void handle_models(frontdoor_t *f, http_exchange_t *x) {
  char buf[INFS_NAME_MAX * 4], msg[160];
  int rc = oai_model_id(http_exchange_path(x), buf, sizeof buf, msg,
                        sizeof msg);
  const char *id = rc > 0 ? buf : NULL;
  if (rc < 0) {
    respond_error(x, 400, "invalid_request_error", NULL, "model", msg);
    return;
  }
  if (id) {
    cJSON *m = model_object(f, id);
    if (m) {
      respond_object(x, m);
      return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "no registered worker serves model '%.120s'", id);
    respond_error(x, 404, "invalid_request_error", "model_not_found", "model",
                  msg);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "object", "list");
  cJSON *data = cJSON_AddArrayToObject(o, "data");
  core_worker_view_t v, w;
  for (size_t i = 0; core_worker_next(f->core, &i, &v) == 0;) {
    if (!v.model || !v.model[0])
      continue;
    /* Listed once, at its first worker: j stops short of v's cursor. */
    bool seen = false;
    for (size_t j = 0;
         !seen && core_worker_next(f->core, &j, &w) == 0 && j < i;)
      seen = strcmp(w.model, v.model) == 0;
    if (!seen)
      cJSON_AddItemToArray(data, model_object(f, v.model));
  }
  respond_object(x, o);
}

/* 200 while some worker can take work (registered, healthy, not
 * draining), else 503: what a load balancer in front asks. */
static void handle_healthz(frontdoor_t *f, http_exchange_t *x) {
  size_t serving = 0;
  core_worker_view_t v;
  for (size_t i = 0; core_worker_next(f->core, &i, &v) == 0;)
    serving += !v.load->unhealthy && !v.load->draining;
  char body[256];
  snprintf(body, sizeof body,
           "{\"status\":\"%s\",\"workers\":%zu,\"serving\":%zu,"
           "\"queued\":%zu,\"open_requests\":%zu}",
           serving ? "ok" : "unavailable", core_worker_count(f->core), serving,
           core_queued(f->core), core_open_requests(f->core));
  respond_json(x, serving ? 200 : 503, NULL, body);
}

static void handle_metrics(frontdoor_t *f, http_exchange_t *x) {
  buf_reset(&f->out);
  metrics_render(f->metrics, f->core, clock_us(),
                 http_server_connections(f->server), &f->out);
  http_respond(x, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
               f->out.data, f->out.len);
}

static metrics_route_t route_of(const char *path) {
  static const char *const paths[METRICS_ROUTE_COUNT - 1] = {
      "/v1/completions", "/v1/chat/completions", "/v1/models", "/healthz",
      "/metrics"};
  for (int i = 0; i < METRICS_ROUTE_COUNT - 1; i++)
    if (strcmp(path, paths[i]) == 0)
      return (metrics_route_t)i;
  if (strncmp(path, "/v1/models/", 11) == 0 && path[11])
    return METRICS_ROUTE_MODELS;
  return METRICS_ROUTE_OTHER;
}

/* The tenant of the request's "Authorization: Bearer KEY" (its scheme
 * case-insensitive, as RFC 7235 has it), with its class in *cls; -1 after
 * answering 401 when there is none or the key is not one of the file's. */
static int authenticate(frontdoor_t *f, http_exchange_t *x, infs_class_t *cls) {
  const char *h = http_exchange_header(x, "authorization");
  const char *key = NULL;
  if (h && strncasecmp(h, "Bearer ", 7) == 0) {
    key = h + 7;
    while (*key == ' ')
      key++;
  }
  size_t len = key ? strlen(key) : 0;
  while (len && key[len - 1] == ' ')
    len--;
  int tenant = len ? apikeys_lookup(f->keys, key, len, cls) : -1;
  if (tenant >= 0)
    return tenant;
  /* RFC 6750's challenge; OpenAI's body and codes. */
  const char *msg, *code, *challenge;
  if (!len) {
    msg = "no API key: send it in an Authorization header, as "
          "'Authorization: Bearer YOUR_KEY'";
    code = "missing_api_key";
    challenge = "WWW-Authenticate: Bearer realm=\"infsched\"\r\n";
  } else {
    msg = "incorrect API key provided";
    code = "invalid_api_key";
    challenge = "WWW-Authenticate: Bearer realm=\"infsched\", "
                "error=\"invalid_token\"\r\n";
  }
  char *body = oai_render_error(msg, "invalid_request_error", NULL, code);
  respond_json(x, 401, challenge, body);
  free(body);
  return -1;
}

static void on_request(void *arg, http_exchange_t *x) {
  frontdoor_t *f = arg;
  metrics_route_t route = route_of(http_exchange_path(x));
  /* Load balancers and scrapers carry no key. */
  int tenant = -1;
  infs_class_t tenant_cls = INFS_CLASS_AGENT;
  if (f->keys && route != METRICS_ROUTE_HEALTHZ &&
      route != METRICS_ROUTE_METRICS &&
      (tenant = authenticate(f, x, &tenant_cls)) < 0)
    return;
  bool post = strcmp(http_exchange_method(x), "POST") == 0;
  bool get = strcmp(http_exchange_method(x), "GET") == 0 ||
             strcmp(http_exchange_method(x), "HEAD") == 0;
  char msg[160];
  switch (route) {
  case METRICS_ROUTE_COMPLETIONS:
  case METRICS_ROUTE_CHAT:
    if (!post) {
      snprintf(msg, sizeof msg, "%s takes POST, not %s", http_exchange_path(x),
               http_exchange_method(x));
      respond_error(x, 405, "invalid_request_error", "method_not_allowed", NULL,
                    msg);
      return;
    }
    handle_inference(f, x,
                     route == METRICS_ROUTE_CHAT ? OAI_CHAT : OAI_COMPLETIONS,
                     tenant, tenant_cls);
    return;
  case METRICS_ROUTE_OTHER:
    snprintf(msg, sizeof msg, "no route for %.120s", http_exchange_path(x));
    respond_error(x, 404, "invalid_request_error", "not_found", NULL, msg);
    return;
  default:
    break;
  }
  if (!get) {
    snprintf(msg, sizeof msg, "%s takes GET, not %s", http_exchange_path(x),
             http_exchange_method(x));
    char *body = oai_render_error(msg, "invalid_request_error", NULL,
                                  "method_not_allowed");
    char extra[64];
    respond_json(x, 405, error_headers(405, "GET, HEAD", extra, sizeof extra),
                 body);
    free(body);
    return;
  }
  if (route == METRICS_ROUTE_MODELS)
    handle_models(f, x);
  else if (route == METRICS_ROUTE_HEALTHZ)
    handle_healthz(f, x);
  else
    handle_metrics(f, x);
}

static void on_abort(void *arg, http_exchange_t *x) {
  frontdoor_t *f = arg;
  fd_req_t *r = http_exchange_user(x);
  metrics_on_http_abort(f->metrics);
  if (!r)
    return;
  uint64_t id = r->id;
  metrics_on_tenant_end(f->metrics, r->tenant, METRICS_END_CANCELLED, 0, 0);
  /* Forget it first: the core answers the cancel with an ERROR that must
   * find nobody to write to. */
  req_free(f, r);
  if (f->stopping)
    return;
  log_debug("http: client of request %016llx went away; cancelling it",
            (unsigned long long)id);
  core_peer_t peer;
  peer_of(id, &peer);
  f->hooks.cancel(f->hooks.ctx, &peer, id);
}

static void on_status(void *arg, const http_exchange_t *x, int status) {
  frontdoor_t *f = arg;
  metrics_on_http_status(f->metrics, route_of(http_exchange_path(x)), status);
}

/* --- life cycle --- */

int frontdoor_start(uv_loop_t *loop, const frontdoor_config_t *cfg,
                    const core_t *core, metrics_t *metrics,
                    const frontdoor_hooks_t *hooks, frontdoor_t **out,
                    char *err, size_t errlen) {
  frontdoor_t *f = calloc(1, sizeof *f);
  if (!f)
    return -ENOMEM;
  f->core = core;
  f->metrics = metrics;
  f->hooks = *hooks;
  f->keys = cfg->keys;
  if (f->keys)
    metrics_set_tenants(metrics, f->keys);
  f->salt = uv_hrtime() * 0x9e3779b97f4a7c15ull;
  /* Its block hashes (8 bytes per 256) and the other fields ride along. */
  if (cfg->max_msg_bytes > 64 * 1024)
    f->max_prompt = (cfg->max_msg_bytes - 16 * 1024) / 33 * 32;
  http_server_config_t scfg = {
      .addr = cfg->addr,
      .max_body = cfg->max_body ? cfg->max_body : FRONTDOOR_DEFAULT_MAX_BODY,
      .max_conns = cfg->max_conns,
  };
  http_handler_t h = {
      .arg = f,
      .on_request = on_request,
      .on_abort = on_abort,
      .on_status = on_status,
  };
  int rc = http_server_start(loop, &scfg, &h, &f->server, err, errlen);
  if (rc) {
    free(f);
    return rc;
  }
  *out = f;
  return 0;
}

const char *frontdoor_address(const frontdoor_t *f) {
  return http_server_address(f->server);
}

void frontdoor_stop(frontdoor_t *f) {
  if (!f || f->stopping)
    return;
  f->stopping = true;
  http_server_stop(f->server);
}

void frontdoor_destroy(frontdoor_t **pf) {
  frontdoor_t *f = *pf;
  if (!f)
    return;
  http_server_destroy(&f->server);
  for (size_t i = 0; i < f->table.cap; i++)
    if (f->slots[i])
      req_free(f, f->slots[i]);
  free(f->slots);
  free(f->generation);
  slots_free(&f->table);
  free(f->blocks);
  buf_free(&f->out);
  free(f);
  *pf = NULL;
}
