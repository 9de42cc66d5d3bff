/* The simulated workers: the worker core (worker/core/wcore.h) around the
 * engine, in virtual time, as worker/worker.c runs it around the sim
 * backend (worker/backends/sim.c). The core registers, heartbeats, keeps
 * the requests in flight and accounts for cost; this file turns the
 * engine's events into the core's, and the core's actions into messages. */
#include "sim_internal.h"

#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "transfer.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* The prefix-cache part of a heartbeat, copied into m from the engine: the
 * whole cache after (re)registering, else its changes. */
static void read_cache(sworker_t *w, bool all, msg_t *m, wcore_cache_t *c) {
  *c = (wcore_cache_t){0};
  if (all) {
    size_t k = engine_cache_snapshot(w->engine, NULL, 0);
    if (k > m->blocks_cap) {
      m->blocks = xrealloc(m->blocks, k * sizeof *m->blocks);
      m->blocks_cap = k;
    }
    c->n_added = engine_cache_snapshot(w->engine, m->blocks, k);
    c->added = m->blocks;
  } else {
    const uint64_t *added, *removed;
    engine_cache_delta(w->engine, &added, &c->n_added, &removed,
                       &c->n_removed);
    c->added = sim_copy_hashes(&m->blocks, &m->blocks_cap, added, c->n_added);
    c->removed =
        sim_copy_hashes(&m->removed, &m->removed_cap, removed, c->n_removed);
  }
  engine_cache_delta_clear(w->engine);
}

/* Sends worker wi's actions, through the daemon's mapping (wcore_wire.h).
 * Heartbeats join the batch sim_workers_timer is collecting. */
static void flush(sim_t *s, uint32_t wi, infs_time_t now) {
  sworker_t *w = &s->workers[wi];
  size_t n;
  const wcore_action_t *acts = wcore_actions(w->core, &n);
  for (size_t i = 0; i < n; i++) {
    const wcore_action_t *a = &acts[i];
    uint32_t slot;
    msg_t *m = sim_msg_new(s, TO_SCHED_FROM_WORKER, &slot);
    m->worker = wi;
    wcore_cache_t cache;
    if (a->kind == WCORE_ACT_HEARTBEAT)
      read_cache(w, a->heartbeat.cache_reset, m, &cache);
    m->env = wcore_wire_message(w->core, a, &cache, &m->u.worker);
    if (a->kind == WCORE_ACT_ERROR) {
      snprintf(m->text, sizeof m->text, "%s", a->message);
      m->env->error->message = m->text;
    }
    if (a->kind == WCORE_ACT_HEARTBEAT) {
      sim_vec_push(&s->beats, slot);
      s->beats.v[s->beats_at]++;
    } else {
      sim_msg_send(s, now, slot);
    }
  }
  wcore_actions_clear(w->core);
}

void sim_worker_start(sim_t *s, uint32_t wi, const wcore_config_t *cfg,
                      infs_time_t now) {
  s->workers[wi].core = wcore_new(cfg, now);
  flush(s, wi, now);
}

/* Turns the engine's events into the core's, as the sim backend's deliver
 * does, except that the tokens after the first go in chunks of
 * SIM_CHUNK_TOKENS and one just before the Done (see the top of sim.c). A
 * prefill's KV is held on the engine until the scheduler releases it,
 * unless the core says to let it go at once. */
static void deliver(sim_t *s, uint32_t wi, infs_time_t now) {
  sworker_t *w = &s->workers[wi];
  size_t n;
  const engine_event_t *ev = engine_events(w->engine, &n);
  s->release.n = 0;
  for (size_t i = 0; i < n; i++) {
    const engine_event_t *e = &ev[i];
    switch (e->kind) {
    case ENGINE_EV_FIRST_TOKEN:
      wcore_on_tokens(w->core, now, e->id, e->tokens, NULL, 0);
      break;
    case ENGINE_EV_TOKENS: {
      /* Every SIM_CHUNK_TOKENS tokens, so that a long answer shows the
       * core progress before its deadline. */
      uint32_t sent;
      if (e->generated % SIM_CHUNK_TOKENS == 0 &&
          wcore_streamed(w->core, e->id, &sent) == 0 && e->generated > sent)
        wcore_on_tokens(w->core, now, e->id, e->generated - sent, NULL, 0);
      break;
    }
    case ENGINE_EV_DONE: {
      uint32_t sent;
      if (wcore_streamed(w->core, e->id, &sent) == 0 && e->generated > sent)
        wcore_on_tokens(w->core, now, e->id, e->generated - sent, NULL, 0);
      wcore_usage_t u = engine_event_usage(e);
      wcore_on_done(w->core, now, e->id, &u);
      break;
    }
    case ENGINE_EV_PREFILLED: {
      wcore_usage_t u = engine_event_usage(e);
      if (wcore_on_prefilled(w->core, now, e->id, &u, NULL, 0))
        sim_u64vec_push(&s->release, e->id);
      break;
    }
    case ENGINE_EV_FAILED:
      wcore_on_failed(w->core, now, e->id, INFSCHED__ERROR_CODE__ERROR_BACKEND,
                      infs_strerror(e->code));
      break;
    }
  }
  engine_events_clear(w->engine);
  for (size_t i = 0; i < s->release.n; i++)
    engine_cancel(w->engine, now, s->release.v[i]);
  flush(s, wi, now);
}

static void arm_engine(sim_t *s, uint32_t wi) {
  sworker_t *w = &s->workers[wi];
  infs_time_t at = engine_next_event(w->engine);
  if (at != w->armed && at != INFS_TIME_NEVER)
    timeline_push(&s->tl, at, EV_ENGINE, wi);
  w->armed = at;
}

/* Runs a dispatched request on the engine, as the sim backend's submit. */
static void run(sim_t *s, uint32_t wi, infs_time_t now,
                const infs_request_t *q) {
  sworker_t *w = &s->workers[wi];
  /* Catch the engine up first, so the request joins at the right time. */
  engine_advance(w->engine, now);
  engine_request_t er = {
      .id = q->id,
      .prompt_tokens = q->prompt_tokens,
      .max_tokens = q->max_tokens,
      .blocks = q->blocks,
      .n_blocks = q->n_blocks,
      .tpot_target_ms = q->tpot_ms,
      .phase = q->phase,
  };
  if (q->phase == INFS_PHASE_DECODE)
    er.kv_ready = kv_transfer_ready(q->kv, now);
  int rc = engine_submit(w->engine, now, &er);
  deliver(s, wi, now);
  arm_engine(s, wi);
  if (rc)
    wcore_on_refused(w->core, now, q->id, rc);
}

/* Stops a request on the engine, as the sim backend's cancel. */
static void stop(sim_t *s, uint32_t wi, infs_time_t now, uint64_t id) {
  sworker_t *w = &s->workers[wi];
  engine_advance(w->engine, now);
  deliver(s, wi, now);
  engine_cancel(w->engine, now, id);
  arm_engine(s, wi);
}

/* A message from the scheduler, fed to the core as the daemon feeds it. */
void sim_worker_receive(sim_t *s, infs_time_t now, const msg_t *m) {
  uint32_t wi = m->worker;
  wcore_order_t o;
  wcore_wire_feed(s->workers[wi].core, now, m->env, &o);
  switch (o.kind) {
  case WCORE_ORDER_RUN:
    run(s, wi, now, &o.request);
    break;
  case WCORE_ORDER_STOP:
    stop(s, wi, now, o.id);
    break;
  case WCORE_ORDER_STOP_ALL:
    for (size_t i = 0; i < o.n_ids; i++)
      stop(s, wi, now, o.ids[i]);
    break;
  default:
    break;
  }
  flush(s, wi, now);
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
  s->beats_at = s->beats.n;
  sim_vec_push(&s->beats, 0);
  infs_time_t next = INFS_TIME_NEVER;
  for (uint32_t wi = 0; wi < s->n_workers; wi++) {
    sworker_t *w = &s->workers[wi];
    engine_load_t l;
    engine_load(w->engine, now, &l);
    wcore_load_t load = {
        .queued = l.queued,
        .running = l.running,
        .kv_used = l.kv_used,
        .kv_total = l.kv_total,
        .prefill_backlog_tokens = l.prefill_backlog_tokens,
        .busy_s = l.busy_s,
        .generated_tokens = l.generated_tokens,
    };
    wcore_on_timer(w->core, now, &load);
    flush(s, wi, now);
    /* KV the scheduler never released. */
    const uint64_t *ids;
    size_t n = wcore_expired(w->core, now, &ids);
    for (size_t k = 0; k < n; k++)
      stop(s, wi, now, ids[k]);
    infs_time_t at = wcore_next_deadline(w->core);
    next = at < next ? at : next;
  }
  timeline_push(&s->tl, now + s->cfg->delay_us, EV_BEATS, 0);
  timeline_push(&s->tl, next, EV_BEAT, 0);
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
