#include "worker.h"

#include "infsched/errors.h"
#include "clock.h"
#include "log.h"
#include "wire.h"
#include "wire_arena.h"
#include "zwatch.h"
#include "wcore_wire.h"
#include "curve.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define QUEUE_HWM 100000
#define LINGER_MS 500

struct worker {
  worker_config_t cfg;
  infs_profile_t profile;
  uv_loop_t *loop;
  void *zctx;
  void *sock;
  zwatch_t *watch;
  curve_watch_t *handshakes; /* NULL with authentication off */
  uv_timer_t timer;
  infs_backend_host_t host;
  void *backend;
  wcore_t *core;
  bool stopping;
  bool refused; /* the scheduler refused the handshake: stop */
  bool draining;               /* worker_drain was called */
  infs_time_t drain_deadline;
  wire_arena_t *arena; /* what on_readable decodes, one message at a time */
  wcore_msg_t msg;     /* what flush sends, one action at a time */
  wire_buf_t out;
  log_limit_t send_log;
  log_limit_t bad_log;
};

/* --- sending --- */

/* The prefix-cache part of a heartbeat, read from the backend. The delta
 * is read even when the whole cache goes, so that the next one starts
 * from now. */
static void read_cache(worker_t *w, bool all, wcore_cache_t *c) {
  const infs_backend_ops_t *b = w->cfg.backend;
  *c = (wcore_cache_t){0};
  if (b->cache_delta)
    b->cache_delta(w->backend, &c->added, &c->n_added, &c->removed,
                   &c->n_removed);
  if (all && b->cache_snapshot) {
    b->cache_snapshot(w->backend, &c->added, &c->n_added);
    c->n_removed = 0;
  }
}

/* Sends the core's actions. Called after every call into the core, while
 * what the actions borrow (a chunk's text) is still there; never calls the
 * core or the backend's request functions, so it is never re-entered. */
static void flush(worker_t *w) {
  size_t n;
  const wcore_action_t *acts = wcore_actions(w->core, &n);
  for (size_t i = 0; i < n; i++) {
    wcore_cache_t cache, *pc = NULL;
    if (acts[i].kind == WCORE_ACT_HEARTBEAT) {
      read_cache(w, acts[i].heartbeat.cache_reset, &cache);
      pc = &cache;
    }
    Infsched__Envelope *env = wcore_wire_message(w->core, &acts[i], pc, &w->msg);
    wire_pack(env, &w->out);
    if (zmq_send(w->sock, w->out.data, w->out.len, ZMQ_DONTWAIT) < 0) {
      uint64_t k = log_limit_pass(&w->send_log, clock_us(), INFS_US_PER_S);
      if (k)
        log_warn("send %s failed: %s (%llu such failures)",
                 wire_body_name(env->body_case), zmq_strerror(errno),
                 (unsigned long long)k);
    }
  }
  wcore_actions_clear(w->core);
}

/* --- backend callbacks --- */

static void on_tokens(void *ctx, uint64_t id, uint32_t n, const char *text,
                      size_t len) {
  worker_t *w = ctx;
  wcore_on_tokens(w->core, clock_us(), id, n, text, len);
  flush(w);
}

static void on_tool_calls(void *ctx, uint64_t id, uint32_t n, const char *json,
                          size_t len) {
  worker_t *w = ctx;
  (void)len;
  wcore_on_tool_calls(w->core, clock_us(), id, n, json);
  flush(w);
}

static void on_logprobs(void *ctx, uint64_t id, const char *json, size_t len) {
  worker_t *w = ctx;
  (void)len;
  wcore_on_logprobs(w->core, clock_us(), id, json);
  flush(w);
}

static void on_timer(uv_timer_t *t);

/* A draining worker that has finished its last request stops from the
 * timer, not from inside the backend's callback. */
static void leave_when_drained(worker_t *w) {
  if (w->draining && !w->stopping && wcore_inflight(w->core) == 0)
    uv_timer_start(&w->timer, on_timer, 0, 0);
}

static void on_done(void *ctx, uint64_t id, const infs_backend_usage_t *u) {
  worker_t *w = ctx;
  wcore_on_done(w->core, clock_us(), id, u);
  flush(w);
  leave_when_drained(w);
}

static void on_failed(void *ctx, uint64_t id, int code, const char *msg) {
  worker_t *w = ctx;
  wcore_on_failed(w->core, clock_us(), id, code, msg);
  flush(w);
  leave_when_drained(w);
}

static void on_prefilled(void *ctx, uint64_t id, const infs_backend_usage_t *u,
                         const char *params_json, size_t len) {
  worker_t *w = ctx;
  if (wcore_on_prefilled(w->core, clock_us(), id, u, params_json, len))
    w->cfg.backend->cancel(w->backend, id);
  flush(w);
  leave_when_drained(w);
}

/* --- receiving --- */

static void on_message(worker_t *w, infs_time_t now, Infsched__Envelope *env) {
  bool registered = wcore_registered(w->core);
  wcore_order_t o;
  wcore_wire_feed(w->core, now, env, &o);
  switch (o.kind) {
  case WCORE_ORDER_NONE:
    if (!registered && wcore_registered(w->core))
      log_info("registered with %s as %s (%s)", w->cfg.scheduler_addr,
               w->cfg.worker_id, w->profile.name);
    break;
  case WCORE_ORDER_RUN: {
    /* Sent before the scheduler heard it drains: another worker runs it. */
    if (w->draining) {
      wcore_on_refused(w->core, now, o.request.id, INFS_EBUSY);
      break;
    }
    /* A request for any model ("") runs as the model this worker serves. */
    o.request.model = w->cfg.model;
    int rc = w->cfg.backend->submit(w->backend, &o.request);
    if (rc)
      wcore_on_refused(w->core, now, o.request.id, rc);
    break;
  }
  case WCORE_ORDER_STOP:
    w->cfg.backend->cancel(w->backend, o.id);
    break;
  case WCORE_ORDER_STOP_ALL:
    /* Held requests the new scheduler did not take: nobody waits for
     * them. */
    for (size_t i = 0; i < o.n_ids; i++)
      w->cfg.backend->cancel(w->backend, o.ids[i]);
    log_warn("%zu held requests not adopted by the scheduler; stopped",
             o.n_ids);
    break;
  case WCORE_ORDER_REJOIN:
    log_warn("scheduler does not know this worker; registering again, "
             "holding %zu requests",
             o.n_ids);
    break;
  case WCORE_ORDER_NOTE:
    log_warn("scheduler: %s: %s", wire_error_name(o.code), o.message);
    break;
  case WCORE_ORDER_UNEXPECTED:
    if (log_limit_pass(&w->bad_log, now, INFS_US_PER_S))
      log_warn("unexpected %s from the scheduler",
               wire_body_name(env->body_case));
    break;
  }
  flush(w);
}

static void arm_timer(worker_t *w, infs_time_t now) {
  infs_time_t at = wcore_next_deadline(w->core);
  uint64_t ms = at > now ? (at - now + INFS_US_PER_MS - 1) / INFS_US_PER_MS : 0;
  uv_timer_start(&w->timer, on_timer, ms, 0);
}

static void on_readable(void *sock, void *arg) {
  worker_t *w = arg;
  infs_time_t now = clock_us();
  zmq_msg_t msg;
  for (;;) {
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      break;
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

/* Whether a draining worker is done: nothing open, or its deadline
 * passed; then it stops. */
static bool drained(worker_t *w, infs_time_t now) {
  size_t open = wcore_inflight(w->core);
  if (!w->draining || (open && now < w->drain_deadline))
    return false;
  if (open) {
    char msg[128];
    snprintf(msg, sizeof msg,
             "stopping: the drain deadline of %u ms passed first",
             w->cfg.drain_timeout_ms);
    /* Each client hears now, not when the scheduler finds the worker
     * gone; the backend stops them as it is destroyed. */
    wcore_fail_all(w->core, now, INFS_WIRE_BACKEND, msg);
    flush(w);
    log_warn("drain deadline passed with %zu requests open: failed them, "
             "stopping",
             open);
  } else {
    log_info("drained: every request finished, stopping");
  }
  worker_stop(w);
  return true;
}

/* libzmq does not try a refused handshake again: a worker that would
 * wait forever stops instead, from the timer, outside the monitor's
 * callback. */
static void on_refused(void *arg, const char *why) {
  worker_t *w = arg;
  if (w->refused)
    return;
  w->refused = true;
  log_error("cannot join the scheduler at %s: %s; stopping",
            w->cfg.scheduler_addr, why);
  uv_timer_start(&w->timer, on_timer, 0, 0);
}

static void on_timer(uv_timer_t *t) {
  worker_t *w = t->data;
  if (w->refused) {
    worker_stop(w);
    uv_stop(w->loop);
    return;
  }
  infs_time_t now = clock_us();
  infs_backend_load_t load = {0};
  w->cfg.backend->load(w->backend, &load);
  wcore_on_timer(w->core, now, &load);
  flush(w);
  /* KV no decode worker came for: the scheduler never released it. */
  const uint64_t *ids;
  size_t n = wcore_expired(w->core, now, &ids);
  for (size_t i = 0; i < n; i++)
    w->cfg.backend->cancel(w->backend, ids[i]);
  if (n)
    log_warn("released the KV of %zu prefills after %llu s unclaimed", n,
             (unsigned long long)(WCORE_KV_HOLD_US / INFS_US_PER_S));
  if (!drained(w, now))
    arm_timer(w, now);
}

bool worker_drain(worker_t *w) {
  if (w->stopping)
    return true;
  if (w->draining) {
    log_warn("stopping now, with %zu requests open", wcore_inflight(w->core));
    worker_stop(w);
    return true;
  }
  infs_time_t now = clock_us();
  w->draining = true;
  w->drain_deadline = now + (infs_time_t)w->cfg.drain_timeout_ms *
                                INFS_US_PER_MS;
  log_info("draining: finishing %zu requests, taking no new ones (a second "
           "signal stops at once)",
           wcore_inflight(w->core));
  /* Its next heartbeat, at once, tells the scheduler. */
  wcore_drain(w->core, now);
  on_timer(&w->timer);
  return w->stopping;
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
  wcore_config_t core = {
      .worker_id = cfg->worker_id,
      .model = cfg->model,
      .backend = cfg->backend_name,
      .profile = &w->profile,
      .capacity = cfg->capacity,
      .role = cfg->role,
      .heartbeat_interval = cfg->heartbeat_ms * INFS_US_PER_MS,
      .kwh_usd = cfg->kwh_usd,
  };
  w->core = wcore_new(&core, clock_us());
  w->host = (infs_backend_host_t){
      .ctx = w,
      .loop = loop,
      .profile = &w->profile,
      .tokens = on_tokens,
      .done = on_done,
      .failed = on_failed,
      .tool_calls = on_tool_calls,
      .logprobs = on_logprobs,
      .prefilled = on_prefilled,
  };
  int rc = cfg->backend->create(&w->host, cfg->backend_args, &w->backend, err,
                                errlen);
  if (rc) {
    wcore_destroy(&w->core);
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
  if ((rc = curve_client(w->sock, &cfg->auth, KEYS_WORKER, err, errlen)))
    goto fail;
  if (!cfg->auth.off &&
      (rc = curve_watch_start(loop, w->zctx, w->sock, on_refused, w,
                              &w->handshakes))) {
    snprintf(err, errlen, "cannot watch handshakes: %s", infs_strerror(rc));
    goto fail;
  }
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
  flush(w); /* the Register */
  arm_timer(w, clock_us());
  *out = w;
  return 0;
fail:
  cfg->backend->destroy(w->backend);
  curve_watch_close(&w->handshakes);
  zmq_close(w->sock);
  zmq_ctx_term(w->zctx);
  wcore_destroy(&w->core);
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
  curve_watch_close(&w->handshakes);
  uv_close((uv_handle_t *)&w->timer, NULL);
}

void worker_destroy(worker_t **pw) {
  worker_t *w = *pw;
  if (!w)
    return;
  zmq_close(w->sock);
  zmq_ctx_term(w->zctx);
  wcore_destroy(&w->core);
  wire_buf_free(&w->out);
  wire_arena_destroy(&w->arena);
  free(w);
  *pw = NULL;
}

bool worker_refused(const worker_t *w) { return w->refused; }
