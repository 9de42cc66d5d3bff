/* The simulated client: sends each request at its arrival time and
 * measures it as infsched-loadgen does (TTFT when the first token reaches
 * it, e2e when Done does, both from the intended send time). */
#include "sim_internal.h"

#include "wire.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

static track_t *track_of(sim_t *s, uint64_t id) {
  if (id == 0 || id > s->track_slots.cap || !s->tracks[id - 1].open)
    return NULL;
  return &s->tracks[id - 1];
}

static void track_end(sim_t *s, track_t *t, infs_time_t now,
                      const report_outcome_t *o) {
  report_add(s->report, o);
  if (report_outcome_met(o))
    s->st.slo_tokens += (uint64_t)o->prompt_tokens + o->generated_tokens;
  t->open = false;
  slots_put(&s->track_slots, (uint32_t)(t - s->tracks));
  s->open--;
  s->last_event = now;
  s->arrivals_changed = true;
  workload_on_done(s->w, t->workload_id, now - s->t0,
                   o->status == REPORT_COMPLETED, o->generated_tokens);
}

void sim_client_receive(sim_t *s, infs_time_t now, const msg_t *m) {
  const Infsched__Envelope *env = m->env;
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_CHUNK: {
    track_t *t = track_of(s, env->chunk->request_id);
    if (t && env->chunk->tokens > 0 && t->first == 0)
      t->first = now;
    break;
  }
  case INFSCHED__ENVELOPE__BODY_DONE: {
    const Infsched__Done *d = env->done;
    track_t *t = track_of(s, d->request_id);
    if (!t)
      break;
    const Infsched__Usage *u = d->usage;
    uint32_t prompt = u ? u->prompt_tokens : 0;
    report_outcome_t o = {
        .cls = t->cls,
        .status = REPORT_COMPLETED,
        .prompt_tokens = prompt ? prompt : t->prompt_tokens,
        .cached_tokens = u ? u->cached_tokens : 0,
        .generated_tokens = u ? u->generated_tokens : 0,
        .ttft = (t->first ? t->first : now) - t->arrival,
        .e2e = now - t->arrival,
        .slo = t->slo,
        .cost_usd = d->cost_usd,
        .worker_id = d->worker_id,
        .worker_class = d->worker_class,
        .done_at = now - s->t0,
    };
    report_phases_from_done(d, &o.phases);
    track_end(s, t, now, &o);
    break;
  }
  case INFSCHED__ENVELOPE__BODY_ERROR: {
    const Infsched__Error *e = env->error;
    track_t *t = track_of(s, e->request_id);
    if (!t)
      break;
    report_outcome_t o = {
        .cls = t->cls,
        .status =
            wire_error_is_rejection(e->code) ? REPORT_REJECTED : REPORT_FAILED,
        .slo = t->slo,
        .error = wire_error_name(e->code),
        .done_at = now - s->t0,
    };
    track_end(s, t, now, &o);
    break;
  }
  default:
    break;
  }
}

void sim_client_send(sim_t *s, infs_time_t now, const workload_req_t *r) {
  uint32_t ti;
  size_t had = slots_take(&s->track_slots, 1024, &ti);
  if (had < s->track_slots.cap)
    s->tracks = xrecallocarray(s->tracks, had, s->track_slots.cap,
                               sizeof *s->tracks);
  if (s->cfg->record)
    workload_recorder_add(s->cfg->record, r);
  s->tracks[ti] = (track_t){
      .workload_id = r->id,
      .arrival = now,
      .prompt_tokens = r->prompt_tokens,
      .slo = r->slo,
      .cls = r->cls,
      .open = true,
  };
  uint32_t slot;
  msg_t *m = sim_msg_new(s, TO_SCHED_FROM_CLIENT, &slot);
  memcpy(m->session, r->session, sizeof m->session);
  infs_request_t q = {
      .id = (uint64_t)ti + 1,
      .model = s->cfg->model ? s->cfg->model : "",
      .prompt = "",
      .prompt_tokens = r->prompt_tokens,
      .max_tokens = r->max_tokens,
      .cls = r->cls,
      .ttft_ms = r->slo.ttft_ms,
      .ttft_ms_per_ktok = r->slo.ttft_ms_per_ktok,
      .tpot_ms = r->slo.tpot_ms,
      .session = m->session,
      .blocks = sim_copy_hashes(&m->blocks, &m->blocks_cap, r->blocks,
                                r->n_blocks),
      .n_blocks = r->n_blocks,
  };
  infsched__envelope__init(&m->u.client.env);
  infsched__submit__init(&m->u.client.submit);
  wire_request_to_msg(&q, &m->u.client.request);
  m->u.client.submit.request = &m->u.client.request;
  m->u.client.env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  m->u.client.env.submit = &m->u.client.submit;
  m->env = &m->u.client.env;
  sim_msg_send(s, now, slot);
  s->open++;
  s->st.requests++;
  s->last_event = now;
}
