#include "worker/worker.h"

#include "infsched/errors.h"
#include "lib/log.h"
#include "lib/u64map.h"
#include "lib/wire.h"
#include "lib/wire_arena.h"
#include "lib/zwatch.h"
#include "model/accounting.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define REGISTER_RETRY_US (1000 * INFS_US_PER_MS)
#define QUEUE_HWM 100000
#define LINGER_MS 500

typedef struct inflight {
  uint64_t id;        /* the scheduler's */
  uint64_t client_id; /* goes back in Chunk and Done */
  uint32_t prompt_tokens;
  infs_time_t started;
} inflight_t;

struct worker {
  worker_config_t cfg;
  infs_profile_t profile;
  uv_loop_t *loop;
  void *zctx;
  void *sock;
  zwatch_t *watch;
  uv_timer_t timer;
  infs_backend_host_t host;
  void *backend;
  bool registered;
  bool stopping;
  infs_time_t last_register;
  uint64_t beat_seq;
  bool cache_reset;
  wire_arena_t *arena;  /* what on_readable decodes, one message at a time */
  accounting_t acct;    /* heartbeat figures and per-request costs */
  inflight_t *inflight; /* slots; u64map maps id -> slot */
  uint32_t *free_slots;
  size_t n_free;
  size_t cap;
  u64map_t by_id;
  wire_buf_t out;
  log_limit_t send_log;
  log_limit_t bad_log;
};

static infs_time_t now_us(void) { return uv_hrtime() / 1000; }

/* --- in-flight table --- */

static inflight_t *inflight_get(worker_t *w, uint64_t id) {
  uint32_t slot;
  return u64map_get(&w->by_id, id, &slot) ? &w->inflight[slot] : NULL;
}

static inflight_t *inflight_add(worker_t *w, uint64_t id) {
  if (w->n_free == 0) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    w->inflight = realloc(w->inflight, cap * sizeof *w->inflight);
    w->free_slots = realloc(w->free_slots, cap * sizeof *w->free_slots);
    if (!w->inflight || !w->free_slots)
      abort();
    for (size_t i = cap; i > w->cap; i--)
      w->free_slots[w->n_free++] = (uint32_t)(i - 1);
    w->cap = cap;
  }
  uint32_t slot = w->free_slots[--w->n_free];
  u64map_put(&w->by_id, id, slot);
  w->inflight[slot].id = id;
  return &w->inflight[slot];
}

static void inflight_remove(worker_t *w, uint64_t id) {
  uint32_t slot;
  if (!u64map_get(&w->by_id, id, &slot))
    return;
  u64map_del(&w->by_id, id);
  w->free_slots[w->n_free++] = slot;
}

static size_t inflight_count(const worker_t *w) { return w->by_id.len; }

/* --- sending --- */

static void send_env(worker_t *w, Infsched__Envelope *env) {
  wire_pack(env, &w->out);
  if (zmq_send(w->sock, w->out.data, w->out.len, ZMQ_DONTWAIT) < 0) {
    uint64_t n = log_limit_pass(&w->send_log, now_us(), INFS_US_PER_S);
    if (n)
      log_warn("send %s failed: %s (%llu such failures)",
               wire_body_name(env->body_case), zmq_strerror(errno),
               (unsigned long long)n);
  }
}

static void send_error(worker_t *w, uint64_t id, int code, const char *msg) {
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Error e = INFSCHED__ERROR__INIT;
  e.request_id = id;
  e.code = code;
  e.message = (char *)msg;
  env.body_case = INFSCHED__ENVELOPE__BODY_ERROR;
  env.error = &e;
  send_env(w, &env);
}

static void send_register(worker_t *w, infs_time_t now) {
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Register r = INFSCHED__REGISTER__INIT;
  Infsched__Profile p;
  wire_profile_to_msg(&w->profile, &p);
  r.worker_id = (char *)w->cfg.worker_id;
  r.model = (char *)w->cfg.model;
  r.profile = &p;
  r.capacity = w->cfg.capacity;
  r.backend = (char *)w->cfg.backend_name;
  env.body_case = INFSCHED__ENVELOPE__BODY_REGISTER;
  env.register_ = &r;
  send_env(w, &env);
  w->last_register = now;
}

static void send_heartbeat(worker_t *w, infs_time_t now) {
  infs_backend_load_t load = {0};
  w->cfg.backend->load(w->backend, &load);
  accounting_beat_t beat;
  accounting_beat(&w->acct, now, load.busy_s, load.generated_tokens, &beat);
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Heartbeat hb = INFSCHED__HEARTBEAT__INIT;
  hb.worker_id = (char *)w->cfg.worker_id;
  hb.queued = load.queued;
  hb.running = load.running;
  hb.batch_size = load.running;
  hb.kv_used = load.kv_used;
  hb.kv_total = load.kv_total;
  hb.prefill_backlog_tokens = load.prefill_backlog_tokens;
  hb.tokens_per_s = beat.tokens_per_s;
  hb.busy_s = beat.busy_s;
  hb.up_s = beat.up_s;
  hb.cost_usd = beat.cost_usd;
  hb.seq = ++w->beat_seq;
  hb.cache_reset = w->cache_reset;
  if (w->cfg.backend->cache_delta) {
    const uint64_t *added, *removed;
    w->cfg.backend->cache_delta(w->backend, &added, &hb.n_cache_added,
                                &removed, &hb.n_cache_removed);
    hb.cache_added = (uint64_t *)added;
    hb.cache_removed = (uint64_t *)removed;
  }
  /* After (re)registering, the whole cache: the scheduler knows none of it,
   * and the delta just read is contained in it. */
  if (w->cache_reset && w->cfg.backend->cache_snapshot) {
    const uint64_t *all;
    w->cfg.backend->cache_snapshot(w->backend, &all, &hb.n_cache_added);
    hb.cache_added = (uint64_t *)all;
    hb.n_cache_removed = 0;
  }
  w->cache_reset = false;
  env.body_case = INFSCHED__ENVELOPE__BODY_HEARTBEAT;
  env.heartbeat = &hb;
  send_env(w, &env);
}

/* --- backend callbacks --- */

static void on_tokens(void *ctx, uint64_t id, uint32_t n, const char *text,
                      size_t len) {
  worker_t *w = ctx;
  (void)len;
  inflight_t *f = inflight_get(w, id);
  if (!f)
    return;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Chunk c = INFSCHED__CHUNK__INIT;
  c.request_id = f->client_id;
  c.dispatch_id = id;
  c.tokens = n;
  c.text = (char *)(text ? text : "");
  env.body_case = INFSCHED__ENVELOPE__BODY_CHUNK;
  env.chunk = &c;
  send_env(w, &env);
}

static void on_done(void *ctx, uint64_t id, const infs_backend_usage_t *u) {
  worker_t *w = ctx;
  inflight_t *f = inflight_get(w, id);
  if (!f)
    return;
  uint32_t prompt = u->prompt_tokens ? u->prompt_tokens : f->prompt_tokens;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Done d = INFSCHED__DONE__INIT;
  Infsched__Usage usage = INFSCHED__USAGE__INIT;
  usage.prompt_tokens = prompt;
  usage.cached_tokens = u->cached_tokens;
  usage.generated_tokens = u->generated_tokens;
  d.request_id = f->client_id;
  d.dispatch_id = id;
  d.usage = &usage;
  d.queue_us = u->queue_us;
  d.ttft_us = u->ttft_us;
  d.e2e_us = now_us() - f->started;
  d.worker_id = (char *)w->cfg.worker_id;
  d.worker_class = (char *)infs_worker_class_name(w->profile.cls);
  d.cost_usd =
      accounting_done(&w->acct, prompt, u->generated_tokens, u->busy_s, u->usd);
  env.body_case = INFSCHED__ENVELOPE__BODY_DONE;
  env.done = &d;
  send_env(w, &env);
  inflight_remove(w, id);
}

static void on_failed(void *ctx, uint64_t id, int code, const char *msg) {
  worker_t *w = ctx;
  if (!inflight_get(w, id))
    return;
  send_error(w, id, code, msg);
  inflight_remove(w, id);
}

/* --- receiving --- */

/* The scheduler forgot us (it restarted): what we run has no client now. */
static void reset_session(worker_t *w, infs_time_t now) {
  size_t dropped = inflight_count(w);
  for (size_t i = 0; i < w->cap && inflight_count(w); i++) {
    uint32_t slot;
    uint64_t id = w->inflight[i].id;
    if (u64map_get(&w->by_id, id, &slot) && slot == i) {
      w->cfg.backend->cancel(w->backend, id);
      inflight_remove(w, id);
    }
  }
  w->registered = false;
  log_warn("scheduler does not know this worker; registering again "
           "(%zu requests dropped)",
           dropped);
  send_register(w, now);
}

static int status_code_of(int rc) {
  return rc == INFS_ECONTEXT ? INFSCHED__ERROR_CODE__ERROR_REJECTED_CONTEXT
                             : INFSCHED__ERROR_CODE__ERROR_BACKEND;
}

static void on_dispatch(worker_t *w, const Infsched__Dispatch *d) {
  const Infsched__Request *m = d->request;
  if (!m) {
    send_error(w, 0, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST,
               "dispatch without a request");
    return;
  }
  if (inflight_get(w, m->request_id)) {
    send_error(w, m->request_id, INFSCHED__ERROR_CODE__ERROR_DUPLICATE,
               "request id already running here");
    return;
  }
  inflight_t *f = inflight_add(w, m->request_id);
  f->client_id = d->client_request_id;
  f->prompt_tokens = m->prompt_tokens;
  f->started = now_us();
  infs_backend_request_t r;
  wire_request_from_msg(m, &r);
  int rc = w->cfg.backend->submit(w->backend, &r);
  if (rc && inflight_get(w, m->request_id)) {
    send_error(w, m->request_id, status_code_of(rc), infs_strerror(rc));
    inflight_remove(w, m->request_id);
  }
}

static void on_message(worker_t *w, infs_time_t now, Infsched__Envelope *env) {
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_REGISTERED:
    if (!w->registered)
      log_info("registered with %s as %s (%s)", w->cfg.scheduler_addr,
               w->cfg.worker_id, w->profile.name);
    w->registered = true;
    w->cache_reset = true;
    if (env->registered->heartbeat_ms)
      w->cfg.heartbeat_ms = env->registered->heartbeat_ms;
    break;
  case INFSCHED__ENVELOPE__BODY_DISPATCH:
    on_dispatch(w, env->dispatch);
    break;
  case INFSCHED__ENVELOPE__BODY_CANCEL:
    if (inflight_get(w, env->cancel->request_id)) {
      w->cfg.backend->cancel(w->backend, env->cancel->request_id);
      inflight_remove(w, env->cancel->request_id);
    }
    break;
  case INFSCHED__ENVELOPE__BODY_ERROR:
    /* While a Register is in flight, errors answer heartbeats sent before
     * it; only a registered worker can have been forgotten. */
    if (env->error->code == INFSCHED__ERROR_CODE__ERROR_UNKNOWN_WORKER) {
      if (w->registered)
        reset_session(w, now);
    } else {
      log_warn("scheduler: %s: %s", wire_error_name(env->error->code),
               env->error->message);
    }
    break;
  case INFSCHED__ENVELOPE__BODY_DRAIN:
    break;
  default:
    if (log_limit_pass(&w->bad_log, now, INFS_US_PER_S))
      log_warn("unexpected %s from the scheduler",
               wire_body_name(env->body_case));
  }
}

static void on_readable(void *sock, void *arg) {
  worker_t *w = arg;
  infs_time_t now = now_us();
  zmq_msg_t msg;
  for (;;) {
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      return;
    }
    Infsched__Envelope *env;
    int rc = wire_unpack_in(w->arena, zmq_msg_data(&msg), zmq_msg_size(&msg),
                            &env);
    zmq_msg_close(&msg);
    if (rc) {
      if (log_limit_pass(&w->bad_log, now, INFS_US_PER_S))
        log_warn("undecodable message from the scheduler: %s",
                 infs_strerror(rc));
    } else {
      on_message(w, now, env);
    }
    wire_arena_reset(w->arena);
  }
}

static void on_timer(uv_timer_t *t) {
  worker_t *w = t->data;
  infs_time_t now = now_us();
  if (!w->registered) {
    if (now - w->last_register >= REGISTER_RETRY_US)
      send_register(w, now);
  } else {
    send_heartbeat(w, now);
  }
  uv_timer_set_repeat(&w->timer, w->cfg.heartbeat_ms);
}

/* --- life cycle --- */

int worker_start(uv_loop_t *loop, const worker_config_t *cfg, worker_t **out,
                 char *err, size_t errlen) {
  worker_t *w = calloc(1, sizeof *w);
  if (!w)
    return -ENOMEM;
  w->cfg = *cfg;
  w->profile = *cfg->profile;
  w->loop = loop;
  w->arena = wire_arena_new();
  if (!w->arena) {
    free(w);
    return -ENOMEM;
  }
  accounting_init(&w->acct, &w->profile, cfg->kwh_usd, now_us());
  u64map_init(&w->by_id);
  w->host = (infs_backend_host_t){
      .ctx = w,
      .loop = loop,
      .profile = &w->profile,
      .tokens = on_tokens,
      .done = on_done,
      .failed = on_failed,
  };
  int rc = cfg->backend->create(&w->host, cfg->backend_args, &w->backend, err,
                                errlen);
  if (rc) {
    u64map_free(&w->by_id);
    wire_arena_destroy(&w->arena);
    free(w);
    return rc;
  }
  w->zctx = zmq_ctx_new();
  w->sock = zmq_socket(w->zctx, ZMQ_DEALER);
  int hwm = QUEUE_HWM, linger = LINGER_MS;
  zmq_setsockopt(w->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(w->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(w->sock, ZMQ_MAXMSGSIZE, &cfg->max_msg_bytes,
                 sizeof cfg->max_msg_bytes);
  if (zmq_connect(w->sock, cfg->scheduler_addr) != 0) {
    snprintf(err, errlen, "cannot connect to %s: %s", cfg->scheduler_addr,
             zmq_strerror(errno));
    rc = -EINVAL;
    goto fail;
  }
  rc = zwatch_start(loop, w->sock, on_readable, w, &w->watch);
  if (rc) {
    snprintf(err, errlen, "cannot watch socket: %s", uv_strerror(rc));
    goto fail;
  }
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  send_register(w, w->acct.started);
  uv_timer_start(&w->timer, on_timer, cfg->heartbeat_ms, cfg->heartbeat_ms);
  *out = w;
  return 0;
fail:
  cfg->backend->destroy(w->backend);
  zmq_close(w->sock);
  zmq_ctx_term(w->zctx);
  u64map_free(&w->by_id);
  wire_arena_destroy(&w->arena);
  free(w);
  return rc;
}

void worker_stop(worker_t *w) {
  if (w->stopping)
    return;
  w->stopping = true;
  w->cfg.backend->destroy(w->backend);
  w->backend = NULL;
  zwatch_close(w->watch);
  uv_close((uv_handle_t *)&w->timer, NULL);
}

void worker_destroy(worker_t **pw) {
  worker_t *w = *pw;
  if (!w)
    return;
  zmq_close(w->sock);
  zmq_ctx_term(w->zctx);
  u64map_free(&w->by_id);
  free(w->inflight);
  free(w->free_slots);
  wire_buf_free(&w->out);
  wire_arena_destroy(&w->arena);
  free(w);
  *pw = NULL;
}
