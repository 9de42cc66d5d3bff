/* The simulated workers: what worker/worker.c does around the sim
 * backend (worker/backends/sim.c), in virtual time. A worker registers at
 * start, heartbeats its load, cost and prefix-cache changes, runs
 * dispatched requests on its engine and answers with chunks, Done (costed
 * by model/accounting.h) or errors. */
#include "tools/sim/sim_internal.h"

#include "infsched.pb-c.h"
#include "infsched/errors.h"

#include <stdlib.h>
#include <string.h>

/* worker/worker.c: a worker that is not registered asks again this often. */
#define REGISTER_RETRY_US (1000 * INFS_US_PER_MS)

/* u64map wants well-mixed keys; the core's ids are generation << 32 | slot.
 * Multiplying by an odd constant keeps distinct ids distinct. */
static uint64_t id_key(uint64_t id) {
  return id * 0x9e3779b97f4a7c15ull;
}

static inflight_t *inflight_get(sworker_t *w, uint64_t id) {
  uint32_t slot;
  return u64map_get(&w->by_id, id_key(id), &slot) ? &w->inflight[slot] : NULL;
}

static inflight_t *inflight_add(sworker_t *w, uint64_t id) {
  if (w->n_free == 0) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    w->inflight = sim_xalloc(realloc(w->inflight, cap * sizeof *w->inflight));
    w->free_slots =
        sim_xalloc(realloc(w->free_slots, cap * sizeof *w->free_slots));
    for (size_t i = cap; i > w->cap; i--)
      w->free_slots[w->n_free++] = (uint32_t)(i - 1);
    w->cap = cap;
  }
  uint32_t slot = w->free_slots[--w->n_free];
  u64map_put(&w->by_id, id_key(id), slot);
  w->inflight[slot] = (inflight_t){.id = id};
  return &w->inflight[slot];
}

static void inflight_remove(sworker_t *w, uint64_t id) {
  uint32_t slot;
  if (!u64map_get(&w->by_id, id_key(id), &slot))
    return;
  u64map_del(&w->by_id, id_key(id));
  w->free_slots[w->n_free++] = slot;
}

void sim_worker_register(sim_t *s, uint32_t wi, infs_time_t now) {
  uint32_t slot;
  sim_worker_msg(s, wi, MSG_REGISTER, 0, &slot);
  sim_msg_send(s, now, slot);
  s->workers[wi].last_register = now;
}

/* Builds worker wi's heartbeat at now; returns its message slot. */
static uint32_t send_heartbeat(sim_t *s, uint32_t wi, infs_time_t now) {
  sworker_t *w = &s->workers[wi];
  engine_load_t l;
  accounting_beat_t beat;
  engine_load(w->engine, now, &l);
  accounting_beat(&w->acct, now, l.busy_s, l.generated_tokens, &beat);
  uint32_t slot;
  msg_t *m = sim_worker_msg(s, wi, MSG_HEARTBEAT, 0, &slot);
  m->load = (core_load_t){
      .queued = l.queued,
      .running = l.running,
      .kv_used = l.kv_used,
      .kv_total = l.kv_total,
      .prefill_backlog_tokens = l.prefill_backlog_tokens,
      .tokens_per_s = beat.tokens_per_s,
      .cost_usd = beat.cost_usd,
      .busy_s = beat.busy_s,
      .up_s = beat.up_s,
  };
  m->load.cache_reset = w->cache_reset;
  if (w->cache_reset) {
    /* Registered anew: the scheduler starts from the whole cache. */
    size_t n = engine_cache_snapshot(w->engine, NULL, 0);
    if (n > m->blocks_cap) {
      m->blocks = sim_xalloc(realloc(m->blocks, n * sizeof *m->blocks));
      m->blocks_cap = n;
    }
    m->n_blocks = engine_cache_snapshot(w->engine, m->blocks, n);
  } else {
    const uint64_t *added, *removed;
    size_t n_added, n_removed;
    engine_cache_delta(w->engine, &added, &n_added, &removed, &n_removed);
    sim_msg_set_blocks(m, added, n_added);
    sim_copy_hashes(&m->removed, &m->n_removed, &m->removed_cap, removed,
                    n_removed);
  }
  engine_cache_delta_clear(w->engine);
  w->cache_reset = false;
  return slot;
}

static int status_code_of(int rc) {
  return rc == INFS_ECONTEXT ? INFSCHED__ERROR_CODE__ERROR_REJECTED_CONTEXT
                             : INFSCHED__ERROR_CODE__ERROR_BACKEND;
}

static void send_error(sim_t *s, uint32_t wi, infs_time_t now, uint64_t id,
                       int code) {
  uint32_t slot;
  msg_t *m = sim_worker_msg(s, wi, MSG_WORKER_ERROR, id, &slot);
  m->code = code;
  sim_msg_send(s, now, slot);
}

static void send_chunk(sim_t *s, uint32_t wi, infs_time_t now, inflight_t *f,
                       uint32_t tokens) {
  uint32_t slot;
  msg_t *m = sim_worker_msg(s, wi, MSG_CHUNK, f->id, &slot);
  m->tokens = tokens;
  f->sent += tokens;
  sim_msg_send(s, now, slot);
}

/* Turns the engine's events into messages (the sim backend's deliver plus
 * the worker's on_tokens/on_done/on_failed). */
static void deliver(sim_t *s, uint32_t wi, infs_time_t now) {
  sworker_t *w = &s->workers[wi];
  size_t n;
  const engine_event_t *ev = engine_events(w->engine, &n);
  for (size_t i = 0; i < n; i++) {
    const engine_event_t *e = &ev[i];
    if (e->kind == ENGINE_EV_TOKENS)
      continue; /* sent with the Done; see the top of this file */
    inflight_t *f = inflight_get(w, e->id);
    if (!f)
      continue;
    switch (e->kind) {
    case ENGINE_EV_FIRST_TOKEN:
      send_chunk(s, wi, now, f, e->tokens);
      break;
    case ENGINE_EV_DONE: {
      if (e->generated > f->sent)
        send_chunk(s, wi, now, f, e->generated - f->sent);
      uint32_t slot;
      msg_t *m = sim_worker_msg(s, wi, MSG_DONE, e->id, &slot);
      m->done = (done_info_t){
          .prompt = f->prompt_tokens,
          .cached = e->cached_tokens,
          .generated = e->generated,
          .worker = wi,
          .cost_usd = accounting_done(&w->acct, f->prompt_tokens, e->generated,
                                      e->busy_share_s, 0),
      };
      sim_msg_send(s, now, slot);
      inflight_remove(w, e->id);
      break;
    }
    case ENGINE_EV_FAILED:
      send_error(s, wi, now, e->id, INFSCHED__ERROR_CODE__ERROR_BACKEND);
      inflight_remove(w, e->id);
      break;
    default:
      break;
    }
  }
  engine_events_clear(w->engine);
}

static void arm_engine(sim_t *s, uint32_t wi) {
  sworker_t *w = &s->workers[wi];
  infs_time_t at = engine_next_event(w->engine);
  if (at != w->armed && at != INFS_TIME_NEVER)
    timeline_push(&s->tl, at, EV_ENGINE, wi);
  w->armed = at;
}

static void worker_dispatch(sim_t *s, uint32_t wi, infs_time_t now,
                            const msg_t *m) {
  sworker_t *w = &s->workers[wi];
  if (inflight_get(w, m->id)) {
    send_error(s, wi, now, m->id, INFSCHED__ERROR_CODE__ERROR_DUPLICATE);
    return;
  }
  inflight_add(w, m->id)->prompt_tokens = m->prompt_tokens;
  /* Catch the engine up first, so the request joins at the right time. */
  engine_advance(w->engine, now);
  engine_request_t er = {
      .id = m->id,
      .prompt_tokens = m->prompt_tokens,
      .max_tokens = m->max_tokens,
      .blocks = m->blocks,
      .n_blocks = m->n_blocks,
  };
  int rc = engine_submit(w->engine, now, &er);
  deliver(s, wi, now);
  arm_engine(s, wi);
  if (rc && inflight_get(w, m->id)) {
    send_error(s, wi, now, m->id, status_code_of(rc));
    inflight_remove(w, m->id);
  }
}

static void worker_cancel(sim_t *s, uint32_t wi, infs_time_t now, uint64_t id) {
  sworker_t *w = &s->workers[wi];
  if (!inflight_get(w, id))
    return;
  engine_advance(w->engine, now);
  deliver(s, wi, now);
  engine_cancel(w->engine, now, id);
  arm_engine(s, wi);
  inflight_remove(w, id);
}

/* The scheduler forgot this worker: what it runs has no client now. */
static void worker_reset(sim_t *s, uint32_t wi, infs_time_t now) {
  sworker_t *w = &s->workers[wi];
  for (size_t i = 0; i < w->cap && w->by_id.len; i++) {
    uint32_t slot;
    uint64_t id = w->inflight[i].id;
    if (u64map_get(&w->by_id, id_key(id), &slot) && slot == i) {
      engine_cancel(w->engine, now, id);
      inflight_remove(w, id);
    }
  }
  arm_engine(s, wi);
  w->registered = false;
  sim_worker_register(s, wi, now);
}

void sim_worker_receive(sim_t *s, infs_time_t now, const msg_t *m) {
  sworker_t *w = &s->workers[m->worker];
  switch (m->kind) {
  case MSG_REGISTERED:
    w->registered = true;
    w->cache_reset = true;
    break;
  case MSG_DISPATCH:
    worker_dispatch(s, m->worker, now, m);
    break;
  case MSG_CANCEL:
    worker_cancel(s, m->worker, now, m->id);
    break;
  case MSG_SCHED_ERROR:
    if (m->code == INFSCHED__ERROR_CODE__ERROR_UNKNOWN_WORKER && w->registered)
      worker_reset(s, m->worker, now);
    break;
  default:
    break;
  }
}

void sim_worker_step(sim_t *s, uint32_t wi, infs_time_t now) {
  sworker_t *w = &s->workers[wi];
  w->armed = INFS_TIME_NEVER;
  engine_advance(w->engine, now);
  deliver(s, wi, now);
  arm_engine(s, wi);
}

/* The workers' timers: every worker starts at 0 with the same interval
 * (the scheduler's), so they tick together and one event serves them all,
 * and one more delivers their heartbeats (queued in beats, in order). */
void sim_workers_timer(sim_t *s, infs_time_t now) {
  size_t at = s->beats.n;
  sim_vec_push(&s->beats, 0);
  for (uint32_t wi = 0; wi < s->n_workers; wi++) {
    sworker_t *w = &s->workers[wi];
    if (w->registered) {
      sim_vec_push(&s->beats, send_heartbeat(s, wi, now));
      s->beats.v[at]++;
    } else if (now - w->last_register >= REGISTER_RETRY_US) {
      sim_worker_register(s, wi, now);
    }
  }
  timeline_push(&s->tl, now + s->cfg->delay_us, EV_BEATS, 0);
  timeline_push(&s->tl, now + s->cfg->core.heartbeat_interval, EV_BEAT, 0);
}

/* Heartbeats reach the scheduler in the order the workers sent them. Their
 * actions leave together, as they would one by one: at the same instant and
 * in the same order. */
void sim_beats_arrive(sim_t *s, infs_time_t now) {
  uint32_t n = s->beats.v[s->beats_head++];
  for (uint32_t i = 0; i < n; i++) {
    uint32_t slot = s->beats.v[s->beats_head++];
    sim_sched_feed(s, now, s->msgs[slot]);
    sim_msg_free(s, slot);
  }
  sim_sched_flush(s, now);
  if (s->beats_head == s->beats.n)
    s->beats.n = s->beats_head = 0;
}
