/* The sim backend: the continuous-batching engine stepped in real time on
 * the worker's loop, streaming tokens as the engine produces them. The
 * phases of a split request are the engine's: a PREFILL one ends with
 * prefilled() and holds its KV until cancel(); a DECODE one's KV arrives
 * when the modelled transfer over the link its handle names is over
 * (model/transfer.h). */
#include "builtin.h"

#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "clock.h"
#include "u64map.h"
#include "xalloc.h"
#include "engine.h"
#include "honour.h"
#include "transfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct pending {
  uint64_t id;
  uint32_t tokens;
} pending_t;

typedef struct sim {
  infs_backend_host_t host;
  engine_t *engine;
  uv_poll_t tick; /* on tfd: the engine's next event is due */
  int tfd;
  /* Tokens of one advance, coalesced per request into one chunk. */
  pending_t *pending;
  size_t n_pending;
  size_t pending_cap;
  u64map_t pending_index;
  char *text;
  size_t text_cap;
  uint64_t *added;
  size_t added_cap;
  uint64_t *removed;
  size_t removed_cap;
  uint64_t *snapshot;
  size_t snapshot_cap;
} sim_t;

/* Generated text: the sim has no model, so each token is a filler word. */
static const char *filler(sim_t *s, uint32_t n, size_t *len) {
  static const char word[] = " tok";
  size_t need = (size_t)n * (sizeof word - 1) + 1;
  if (need > s->text_cap) {
    s->text = xrealloc(s->text, need);
    s->text_cap = need;
  }
  for (uint32_t i = 0; i < n; i++)
    memcpy(s->text + (size_t)i * (sizeof word - 1), word, sizeof word - 1);
  *len = need - 1;
  s->text[*len] = '\0';
  return s->text;
}

static void add_pending(sim_t *s, uint64_t id, uint32_t tokens) {
  uint32_t idx;
  if (u64map_get(&s->pending_index, id, &idx)) {
    s->pending[idx].tokens += tokens;
    return;
  }
  if (s->n_pending == s->pending_cap) {
    s->pending_cap = s->pending_cap ? s->pending_cap * 2 : 64;
    s->pending = xrealloc(s->pending, s->pending_cap * sizeof *s->pending);
  }
  u64map_put(&s->pending_index, id, (uint32_t)s->n_pending);
  s->pending[s->n_pending++] = (pending_t){id, tokens};
}

static void flush_one(sim_t *s, uint64_t id) {
  uint32_t idx;
  if (!u64map_get(&s->pending_index, id, &idx) || !s->pending[idx].tokens)
    return;
  size_t len;
  const char *text = filler(s, s->pending[idx].tokens, &len);
  s->host.tokens(s->host.ctx, id, s->pending[idx].tokens, text, len);
  s->pending[idx].tokens = 0;
}

static void flush_all(sim_t *s) {
  for (size_t i = 0; i < s->n_pending; i++)
    if (s->pending[i].tokens)
      flush_one(s, s->pending[i].id);
  for (size_t i = 0; i < s->n_pending; i++)
    u64map_del(&s->pending_index, s->pending[i].id);
  s->n_pending = 0;
}

/* Wakes the loop at the engine's next event. Steps end at microsecond
 * times, and a libuv timer wakes in whole milliseconds: it would deliver
 * each step's tokens up to a millisecond late, by an amount fixed by the
 * step's length, and sub-millisecond steps in bunches. A timerfd set to
 * the absolute time (clock_us() is CLOCK_MONOTONIC, lib/clock.c) wakes at
 * the step's end; one in the past wakes at once. */
static void arm(sim_t *s) {
  infs_time_t next = engine_next_event(s->engine);
  struct itimerspec when = {{0, 0}, {0, 0}}; /* zero: disarmed */
  if (next != INFS_TIME_NEVER) {
    uint64_t ns = next > 0 ? (uint64_t)next * 1000u : 1;
    when.it_value.tv_sec = (time_t)(ns / 1000000000u);
    when.it_value.tv_nsec = (long)(ns % 1000000000u);
  }
  timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &when, NULL);
}

static void deliver(sim_t *s) {
  size_t n;
  const engine_event_t *ev = engine_events(s->engine, &n);
  for (size_t i = 0; i < n; i++) {
    const engine_event_t *e = &ev[i];
    switch (e->kind) {
    case ENGINE_EV_FIRST_TOKEN: {
      /* The first token goes out at once: it is what TTFT measures. */
      size_t len;
      const char *text = filler(s, e->tokens, &len);
      s->host.tokens(s->host.ctx, e->id, e->tokens, text, len);
      break;
    }
    case ENGINE_EV_TOKENS:
      add_pending(s, e->id, e->tokens);
      break;
    case ENGINE_EV_DONE:
    case ENGINE_EV_PREFILLED: {
      flush_one(s, e->id);
      infs_backend_usage_t u = engine_event_usage(e);
      if (e->kind == ENGINE_EV_DONE)
        s->host.done(s->host.ctx, e->id, &u);
      else
        s->host.prefilled(s->host.ctx, e->id, &u, NULL, 0);
      break;
    }
    case ENGINE_EV_FAILED:
      flush_one(s, e->id);
      s->host.failed(s->host.ctx, e->id, INFSCHED__ERROR_CODE__ERROR_BACKEND,
                     infs_strerror(e->code));
      break;
    }
  }
  engine_events_clear(s->engine);
  flush_all(s);
}

static void on_tick(uv_poll_t *h, int status, int events) {
  sim_t *s = h->data;
  uint64_t expired;
  (void)status;
  (void)events;
  /* Clears the fd's readiness; EAGAIN when a re-arm already did. */
  if (read(s->tfd, &expired, sizeof expired) < 0 && errno != EAGAIN)
    return;
  engine_advance(s->engine, clock_us());
  deliver(s);
  arm(s);
}

static int sim_create(const infs_backend_host_t *host, const char *args,
                      void **state, char *err, size_t errlen) {
  if (args && *args) {
    snprintf(err, errlen, "sim backend takes no arguments (got '%s')", args);
    return INFS_ECONFIG;
  }
  sim_t *s = xcalloc(1, sizeof *s);
  s->host = *host;
  s->engine = engine_new(host->profile, clock_us());
  if (!s->engine) {
    snprintf(err, errlen, "profile '%s' cannot drive the engine",
             host->profile->name);
    free(s);
    return INFS_ECONFIG;
  }
  s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int rc = s->tfd < 0 ? -errno : uv_poll_init(host->loop, &s->tick, s->tfd);
  if (rc) {
    snprintf(err, errlen, "sim backend: no timer: %s", strerror(-rc));
    if (s->tfd >= 0)
      close(s->tfd);
    engine_destroy(&s->engine);
    free(s);
    return rc;
  }
  u64map_init(&s->pending_index);
  s->tick.data = s;
  uv_poll_start(&s->tick, UV_READABLE, on_tick);
  *state = s;
  return 0;
}

static int sim_submit(void *state, const infs_backend_request_t *r) {
  sim_t *s = state;
  if (r->phase == INFS_PHASE_DECODE && !r->kv) {
    s->host.failed(s->host.ctx, r->id, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST,
                   "a decode-phase request without the KV handle to pull");
    return 0;
  }
  uint32_t n = honour_or_refuse(&s->host, r, "sim");
  if (!n)
    return 0;
  infs_time_t now = clock_us();
  /* Catch the engine up first, so the new request joins at the right time. */
  engine_advance(s->engine, now);
  engine_request_t er = {
      .id = r->id,
      .prompt_tokens = r->prompt_tokens,
      .max_tokens = n,
      .blocks = r->blocks,
      .n_blocks = r->n_blocks,
      .tpot_target_ms = r->tpot_ms,
      .phase = r->phase,
  };
  if (r->phase == INFS_PHASE_DECODE)
    er.kv_ready = kv_transfer_ready(r->kv, now);
  int rc = engine_submit(s->engine, now, &er);
  deliver(s);
  arm(s);
  return rc;
}

static void sim_cancel(void *state, uint64_t id) {
  sim_t *s = state;
  infs_time_t now = clock_us();
  engine_advance(s->engine, now);
  deliver(s);
  engine_cancel(s->engine, now, id);
  arm(s);
}

static void sim_load(void *state, infs_backend_load_t *out) {
  sim_t *s = state;
  engine_load_t l;
  engine_load(s->engine, clock_us(), &l);
  out->queued = l.queued;
  out->running = l.running;
  out->kv_used = l.kv_used;
  out->kv_total = l.kv_total;
  out->prefill_backlog_tokens = l.prefill_backlog_tokens;
  out->busy_s = l.busy_s;
  out->generated_tokens = l.generated_tokens;
}

static void copy_hashes(uint64_t **dst, size_t *cap, const uint64_t *src,
                        size_t n) {
  if (n > *cap) {
    *dst = realloc(*dst, n * sizeof **dst);
    if (!*dst)
      abort();
    *cap = n;
  }
  if (n)
    memcpy(*dst, src, n * sizeof *src);
}

static void sim_cache_delta(void *state, const uint64_t **added,
                            size_t *n_added, const uint64_t **removed,
                            size_t *n_removed) {
  sim_t *s = state;
  const uint64_t *a, *r;
  engine_cache_delta(s->engine, &a, n_added, &r, n_removed);
  /* Copied out so the engine can start the next delta right away. */
  copy_hashes(&s->added, &s->added_cap, a, *n_added);
  copy_hashes(&s->removed, &s->removed_cap, r, *n_removed);
  engine_cache_delta_clear(s->engine);
  *added = s->added;
  *removed = s->removed;
}

static void sim_cache_snapshot(void *state, const uint64_t **hashes,
                               size_t *n) {
  sim_t *s = state;
  size_t cached =
      engine_cache_snapshot(s->engine, s->snapshot, s->snapshot_cap);
  if (cached > s->snapshot_cap) {
    s->snapshot = xrealloc(s->snapshot, cached * sizeof *s->snapshot);
    s->snapshot_cap = cached;
    cached = engine_cache_snapshot(s->engine, s->snapshot, s->snapshot_cap);
  }
  *hashes = s->snapshot;
  *n = cached;
}

static void on_closed(uv_handle_t *h) {
  sim_t *s = h->data;
  close(s->tfd);
  free(s->pending);
  free(s->text);
  free(s->added);
  free(s->removed);
  free(s->snapshot);
  u64map_free(&s->pending_index);
  free(s);
}

static void sim_destroy(void *state) {
  sim_t *s = state;
  engine_destroy(&s->engine);
  uv_close((uv_handle_t *)&s->tick, on_closed);
}

const infs_backend_ops_t backend_sim = {
    .abi = INFS_BACKEND_ABI,
    .name = "sim",
    .create = sim_create,
    .submit = sim_submit,
    .cancel = sim_cancel,
    .load = sim_load,
    .cache_delta = sim_cache_delta,
    .cache_snapshot = sim_cache_snapshot,
    .destroy = sim_destroy,
};
