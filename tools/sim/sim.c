/* The event loop of infsched-sim. Three parties exchange messages through
 * the timeline, each delivered delay_us after it was sent:
 *
 * - the client sends each request at its arrival time and measures it as
 *   infsched-loadgen does: TTFT when the first token reaches it, e2e when
 *   Done does, both from the intended send time;
 * - the scheduler is the core itself, fed the messages that reach it and
 *   flushed after every event through scheduler/core/core_wire.h, as
 *   scheduler/shell.c is;
 * - each worker is the worker daemon's core (worker/core/wcore.h) around
 *   an engine: it registers, heartbeats every heartbeat interval (load,
 *   cost, prefix-cache changes), steps the engine at its next boundary and
 *   answers with chunks, Done (costed by model/accounting.h) or errors.
 *
 * Messages are the wire envelopes the daemons would send, built by the
 * same functions (core_wire.h, wcore_wire.h) and handed over unpacked.
 *
 * Streaming. A worker sends a request's first token at once, as the sim
 * backend does, then a chunk every SIM_CHUNK_TOKENS tokens and the rest
 * just before Done. The client measures only the first token and the Done;
 * the core counts tokens and needs to see progress before a request's
 * progress deadline (10 s at least), which a long answer would pass
 * otherwise. A chunk per decode step would multiply the events by the
 * output length and change no figure.
 *
 * Cost. The pool's cost is every worker's cost_worker_usd (through
 * accounting_cost_usd) between the start of the workload and the end of the
 * run: the last answer, or the end of the drain when requests were lost, as
 * loadgen's start and final Status snapshots. Idle time is included. */
#include "sim_internal.h"

#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "wire.h"
#include "xalloc.h"
#include "cost.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* loadgen polls the scheduler's Status once a second. */
#define SAMPLE_US INFS_US_PER_S

void sim_vec_push(u32vec_t *a, uint32_t x) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->v = xrealloc(a->v, a->cap * sizeof *a->v);
  }
  a->v[a->n++] = x;
}

void sim_u64vec_push(u64vec_t *a, uint64_t x) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 16;
    a->v = xrealloc(a->v, a->cap * sizeof *a->v);
  }
  a->v[a->n++] = x;
}

void sim_config_defaults(sim_config_t *c) {
  memset(c, 0, sizeof *c);
  core_config_defaults(&c->core);
  c->delay_us = 100;
  c->kwh_usd = COST_DEFAULT_KWH_USD;
  c->drain_s = 30.0;
}

/* --- messages --- */

msg_t *sim_msg_new(sim_t *s, msg_dest_t dest, uint32_t *slot) {
  size_t had = slots_take(&s->msg_slots, 256, slot);
  if (had < s->msg_slots.cap) {
    s->msgs = xreallocarray(s->msgs, s->msg_slots.cap, sizeof *s->msgs);
    for (size_t i = had; i < s->msg_slots.cap; i++)
      s->msgs[i] = xcalloc(1, sizeof **s->msgs);
  }
  msg_t *m = s->msgs[*slot];
  m->dest = dest;
  return m;
}

void sim_msg_send(sim_t *s, infs_time_t now, uint32_t slot) {
  timeline_push(&s->tl, now + s->cfg->delay_us, EV_DELIVER, slot);
}

void sim_msg_free(sim_t *s, uint32_t slot) {
  slots_put(&s->msg_slots, slot);
}

uint64_t *sim_copy_hashes(uint64_t **dst, size_t *cap, const uint64_t *src,
                          size_t n) {
  if (n > *cap) {
    *dst = xrealloc(*dst, n * sizeof **dst);
    *cap = n;
  }
  if (n)
    memcpy(*dst, src, n * sizeof *src);
  return *dst;
}

/* --- peers: "W" + worker index, "C" for the client --- */

static void peer_of_worker(uint32_t i, core_peer_t *p) {
  p->door = CORE_DOOR_ZMQ;
  p->len = 5;
  p->id[0] = 'W';
  memcpy(&p->id[1], &i, sizeof i);
}

static uint32_t worker_of_peer(const core_peer_t *p) {
  uint32_t i;
  memcpy(&i, &p->id[1], sizeof i);
  return i;
}

/* --- the scheduler --- */

static void arm_core(sim_t *s) {
  infs_time_t at = core_next_deadline(s->core);
  if (at != s->core_armed && at != INFS_TIME_NEVER)
    timeline_push(&s->tl, at, EV_TICK, 0);
  s->core_armed = at;
}

/* Makes m own what the envelope core_wire_message filled borrows from the
 * core's action and from the message being handled. */
static void own_sched_message(msg_t *m) {
  Infsched__Envelope *env = m->env;
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_CHUNK:
    m->chunk = *env->chunk;
    env->chunk = &m->chunk;
    break;
  case INFSCHED__ENVELOPE__BODY_DONE:
    m->done = *env->done;
    env->done = &m->done;
    if (m->done.usage) {
      m->usage = *m->done.usage;
      m->done.usage = &m->usage;
    }
    /* A split request's record, which names its P, goes with the Done. */
    if (m->done.prefill_worker_id) {
      snprintf(m->prefill_worker, sizeof m->prefill_worker, "%s",
               m->done.prefill_worker_id);
      m->done.prefill_worker_id = m->prefill_worker;
    }
    if (m->done.prefill_worker_class) {
      snprintf(m->prefill_class, sizeof m->prefill_class, "%s",
               m->done.prefill_worker_class);
      m->done.prefill_worker_class = m->prefill_class;
    }
    break;
  case INFSCHED__ENVELOPE__BODY_ERROR:
    snprintf(m->text, sizeof m->text, "%s", env->error->message);
    env->error->message = m->text;
    break;
  case INFSCHED__ENVELOPE__BODY_DISPATCH: {
    Infsched__Request *q = env->dispatch->request;
    snprintf(m->model, sizeof m->model, "%s", q->model ? q->model : "");
    snprintf(m->session, sizeof m->session, "%s",
             q->session_id ? q->session_id : "");
    q->model = m->model;
    q->session_id = m->session;
    q->prompt = (char *)"";
    /* The simulated engine reads sizes only; the text stays behind. */
    env->dispatch->resume_text = (char *)"";
    q->block_hashes = sim_copy_hashes(&m->blocks, &m->blocks_cap,
                                      q->block_hashes, q->n_block_hashes);
    if (env->dispatch->kv) {
      m->kv = *env->dispatch->kv;
      snprintf(m->kv_source, sizeof m->kv_source, "%s",
               m->kv.source_worker ? m->kv.source_worker : "");
      m->kv.source_worker = m->kv_source;
      m->kv.params_json = (char *)""; /* the sim engine has none */
      env->dispatch->kv = &m->kv;
    }
    break;
  }
  default:
    break;
  }
}

/* Sends one action as scheduler/shell.c does, through the same mapping. */
static void send_action(void *ctx, const core_action_t *a) {
  sim_t *s = ctx;
  /* Nothing the client measures depends on Accepted. */
  if (a->kind == CORE_ACT_ACCEPTED)
    return;
  uint32_t slot;
  bool to_worker = core_wire_to_worker(a->kind);
  msg_t *m = sim_msg_new(s, to_worker ? TO_WORKER : TO_CLIENT, &slot);
  m->env = core_wire_message(a, s->heartbeat_ms, &m->u.sched);
  own_sched_message(m);
  if (to_worker)
    m->worker = worker_of_peer(&a->peer);
  sim_msg_send(s, s->flush_now, slot);
}

/* Sends the core's actions, in scheduler/shell.c's order. */
void sim_sched_flush(sim_t *s, infs_time_t now) {
  s->flush_now = now;
  core_wire_flush(s->core, send_action, s);
  arm_core(s);
}

/* Hands one message to the core, without sending its actions yet. The
 * simulator's parties send nothing a feed refuses. */
void sim_sched_feed(sim_t *s, infs_time_t now, const msg_t *m) {
  char why[96];
  if (m->dest == TO_SCHED_FROM_CLIENT) {
    core_wire_feed_client(s->core, now, &s->client, m->env, why, sizeof why);
  } else {
    core_peer_t peer;
    peer_of_worker(m->worker, &peer);
    core_wire_feed_worker(s->core, now, &peer, NULL, m->env, why, sizeof why);
  }
}

void sim_sched_receive(sim_t *s, infs_time_t now, const msg_t *m) {
  sim_sched_feed(s, now, m);
  sim_sched_flush(s, now);
}

/* --- the loop --- */

/* The pool as loadgen sees it in a Status: the scheduler's queues and the
 * workers' last heartbeats. */
static void sample(sim_t *s, infs_time_t now) {
  report_sample_t r = {
      .t = now - s->t0,
      .queued = (uint32_t)core_queued(s->core),
      .open = (uint32_t)s->open,
  };
  core_worker_view_t v;
  for (size_t i = 0; core_worker_next(s->core, &i, &v) == 0;) {
    r.worker_queued += v.load->queued;
    r.running += v.load->running;
    report_worker_sample_t w = {
        .t = r.t,
        .id = v.worker_id,
        .cls = infs_worker_class_name(v.profile->cls),
        .outstanding = v.outstanding,
        .busy_s = v.load->busy_s,
        .cost_usd = v.load->cost_usd,
    };
    report_add_worker_sample(s->report, &w);
  }
  report_add_sample(s->report, &r);
}

static void handle(sim_t *s, const timeline_event_t *e) {
  infs_time_t now = e->at;
  switch (e->kind) {
  case EV_START:
    for (size_t i = 0; i < s->n_workers; i++) {
      sworker_t *w = &s->workers[i];
      engine_load_t l;
      engine_load(w->engine, now, &l);
      w->start_busy_s = l.busy_s;
      w->start_cost_usd = wcore_cost_usd(w->core, now, l.busy_s);
    }
    break;
  case EV_DELIVER: {
    const msg_t *m = s->msgs[e->arg];
    if (m->dest == TO_SCHED_FROM_CLIENT || m->dest == TO_SCHED_FROM_WORKER)
      sim_sched_receive(s, now, m);
    else if (m->dest == TO_WORKER)
      sim_worker_receive(s, now, m);
    else
      sim_client_receive(s, now, m);
    sim_msg_free(s, e->arg);
    break;
  }
  case EV_ENGINE:
    if (s->workers[e->arg].armed == now)
      sim_worker_step(s, e->arg, now);
    break;
  case EV_BEAT:
    sim_workers_timer(s, now);
    break;
  case EV_BEATS:
    sim_beats_arrive(s, now);
    break;
  case EV_TICK:
    if (s->core_armed == now) {
      s->core_armed = INFS_TIME_NEVER;
      core_on_tick(s->core, now);
      sim_sched_flush(s, now);
    }
    break;
  case EV_SAMPLE:
    sample(s, now);
    timeline_push(&s->tl, now + SAMPLE_US, EV_SAMPLE, 0);
    break;
  }
}

/* Sends every request due at now (virtual). */
static void send_due(sim_t *s, infs_time_t now) {
  workload_req_t r;
  while (workload_pop(s->w, now - s->t0, &r) == 0)
    sim_client_send(s, now, &r);
  s->arrivals_changed = true;
}

static void run(sim_t *s) {
  infs_time_t end = workload_end_time(s->w);
  infs_time_t stop = end == INFS_TIME_NEVER ? INFS_TIME_NEVER : s->t0 + end;
  infs_time_t drain = (infs_time_t)(s->cfg->drain_s * 1e6);
  infs_time_t now = s->t0, ta = INFS_TIME_NEVER, drain_end = INFS_TIME_NEVER;
  bool sending = true;
  s->arrivals_changed = true;
  for (;;) {
    if (sending && s->arrivals_changed) {
      s->arrivals_changed = false;
      infs_time_t next = workload_next_time(s->w);
      ta = next == INFS_TIME_NEVER ? next : s->t0 + next;
      /* A closed loop with nothing due and nothing open cannot move. */
      if (workload_finished(s->w) ||
          (next == INFS_TIME_NEVER && s->open == 0)) {
        sending = false;
        ta = INFS_TIME_NEVER;
        drain_end = now + drain;
      }
    }
    if (!sending && s->open == 0)
      break;
    infs_time_t th = timeline_next(&s->tl);
    infs_time_t t = ta < th ? ta : th;
    if (sending && t > stop) {
      /* The workload's time is up; a closed loop may still wait for
       * answers (loadgen's deadline does the same). */
      sending = false;
      ta = INFS_TIME_NEVER;
      drain_end = stop + drain;
      continue;
    }
    if (t == INFS_TIME_NEVER || (!sending && t > drain_end)) {
      s->st.end_us = drain_end;
      return;
    }
    now = t;
    if (ta < th) {
      send_due(s, ta);
      continue;
    }
    timeline_event_t e;
    timeline_pop(&s->tl, &e);
    handle(s, &e);
    s->st.events++;
  }
  s->st.end_us = s->last_event;
}

/* Requests still open are lost; every worker's pool figures go in. */
static void finish(sim_t *s) {
  for (size_t i = 0; i < s->track_slots.cap; i++) {
    track_t *t = &s->tracks[i];
    if (!t->open)
      continue;
    report_outcome_t o = {.cls = t->cls,
                          .status = REPORT_LOST,
                          .slo = t->slo};
    report_add(s->report, &o);
    t->open = false;
  }
  infs_time_t end = s->st.end_us > s->t0 ? s->st.end_us : s->t0;
  for (size_t i = 0; i < s->n_workers; i++) {
    sworker_t *w = &s->workers[i];
    engine_load_t l;
    engine_load(w->engine, end, &l);
    double usd = wcore_cost_usd(w->core, end, l.busy_s) - w->start_cost_usd;
    s->st.pool_usd += usd;
    report_set_worker_role(s->report, w->spec->id,
                           infs_role_name(w->spec->role));
    report_add_worker(s->report, w->spec->id,
                      infs_worker_class_name(w->spec->profile.cls), usd,
                      l.busy_s - w->start_busy_s, (double)(end - s->t0) / 1e6);
  }
  if (end > s->t0)
    s->st.pool_usd_per_hour = s->st.pool_usd / ((double)(end - s->t0) / 3.6e9);
  s->st.window_us = s->last_event > s->t0 ? s->last_event - s->t0 : 0;
  report_set_window(s->report, s->st.window_us);
  report_set_policy(s->report, core_policy_name(s->core));
}

static int setup(sim_t *s, char *err, size_t errlen) {
  const sim_config_t *cfg = s->cfg;
  int rc;
  if (cfg->n_workers == 0) {
    snprintf(err, errlen, "the pool has no workers");
    return -EINVAL;
  }
  s->core = core_new(&cfg->core, 0, &rc);
  if (!s->core) {
    snprintf(err, errlen, "unknown policy '%s'", cfg->core.policy);
    return rc ? rc : INFS_EUNKNOWN;
  }
  s->core_armed = INFS_TIME_NEVER;
  s->heartbeat_ms = (uint32_t)(cfg->core.heartbeat_interval / INFS_US_PER_MS);
  s->client.len = 1;
  s->client.id[0] = 'C';
  s->n_workers = cfg->n_workers;
  s->workers = xcalloc(cfg->n_workers, sizeof *s->workers);
  for (uint32_t i = 0; i < cfg->n_workers; i++) {
    sworker_t *w = &s->workers[i];
    w->spec = &cfg->workers[i];
    w->armed = INFS_TIME_NEVER;
    w->engine = engine_new(&w->spec->profile, 0);
    if (!w->engine) {
      snprintf(err, errlen, "worker %s: profile '%s' cannot drive the engine",
               w->spec->id, w->spec->profile.name);
      return INFS_ECONFIG;
    }
    peer_of_worker(i, &w->peer);
    wcore_config_t wc = {
        .worker_id = w->spec->id,
        .model = w->spec->model,
        .backend = "sim",
        .profile = &w->spec->profile,
        .capacity =
            w->spec->capacity ? w->spec->capacity : 2 * w->spec->profile.max_batch,
        .role = w->spec->role,
        .heartbeat_interval = cfg->core.heartbeat_interval,
        .kwh_usd = cfg->kwh_usd,
    };
    sim_worker_start(s, i, &wc, 0);
  }
  timeline_push(&s->tl, cfg->core.heartbeat_interval, EV_BEAT, 0);
  /* Workers are registered and have heartbeaten once when traffic starts,
   * as when loadgen waits for the pool. */
  s->t0 = cfg->core.heartbeat_interval + 2 * cfg->delay_us;
  timeline_push(&s->tl, s->t0, EV_START, 0);
  timeline_push(&s->tl, s->t0 + SAMPLE_US, EV_SAMPLE, 0);
  return 0;
}

static void teardown(sim_t *s) {
  for (size_t i = 0; i < s->n_workers; i++) {
    sworker_t *w = &s->workers[i];
    engine_destroy(&w->engine);
    wcore_destroy(&w->core);
  }
  free(s->workers);
  for (size_t i = 0; i < s->msg_slots.cap; i++) {
    free(s->msgs[i]->blocks);
    free(s->msgs[i]->removed);
    free(s->msgs[i]);
  }
  free(s->msgs);
  slots_free(&s->msg_slots);
  free(s->tracks);
  slots_free(&s->track_slots);
  free(s->beats.v);
  free(s->release.v);
  timeline_free(&s->tl);
  core_destroy(&s->core);
}

int sim_run(const sim_config_t *cfg, workload_t *w, report_t *report,
            sim_stats_t *stats, char *err, size_t errlen) {
  sim_t s = {.cfg = cfg, .w = w, .report = report};
  timeline_init(&s.tl);
  int rc = setup(&s, err, errlen);
  if (rc == 0) {
    run(&s);
    finish(&s);
    if (stats)
      *stats = s.st;
  }
  teardown(&s);
  return rc;
}
