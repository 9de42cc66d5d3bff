#include "wcore_wire.h"

#include "wire.h"

#include <string.h>

static void heartbeat(const wcore_t *w, const wcore_heartbeat_t *h,
                      const wcore_cache_t *cache, wcore_msg_t *m) {
  Infsched__Heartbeat *hb = &m->u.hb;
  infsched__heartbeat__init(hb);
  hb->worker_id = (char *)wcore_config(w)->worker_id;
  hb->queued = h->load.queued;
  hb->running = h->load.running;
  hb->batch_size = h->load.running;
  hb->kv_used = h->load.kv_used;
  hb->kv_total = h->load.kv_total;
  hb->prefill_backlog_tokens = h->load.prefill_backlog_tokens;
  hb->tokens_per_s = h->beat.tokens_per_s;
  hb->busy_s = h->beat.busy_s;
  hb->up_s = h->beat.up_s;
  hb->cost_usd = h->beat.cost_usd;
  hb->seq = h->seq;
  hb->unhealthy = h->load.unhealthy != 0;
  hb->cache_reset = h->cache_reset;
  hb->draining = h->draining;
  if (cache) {
    hb->cache_added = (uint64_t *)cache->added;
    hb->n_cache_added = cache->n_added;
    hb->cache_removed = (uint64_t *)cache->removed;
    hb->n_cache_removed = cache->n_removed;
  }
  m->env.body_case = INFSCHED__ENVELOPE__BODY_HEARTBEAT;
  m->env.heartbeat = hb;
}

static void done(const wcore_t *w, const wcore_action_t *a, wcore_msg_t *m) {
  const wcore_config_t *cfg = wcore_config(w);
  Infsched__Done *d = &m->u.done;
  infsched__done__init(d);
  infsched__usage__init(&m->usage);
  m->usage.prompt_tokens = a->done.prompt_tokens;
  m->usage.cached_tokens = a->done.cached_tokens;
  m->usage.generated_tokens = a->done.generated_tokens;
  d->request_id = a->client_request_id;
  d->dispatch_id = a->request_id;
  d->usage = &m->usage;
  d->queue_us = a->done.queue_us;
  d->ttft_us = a->done.ttft_us;
  d->e2e_us = a->done.e2e_us;
  d->worker_id = (char *)cfg->worker_id;
  d->worker_class = (char *)infs_worker_class_name(cfg->profile->cls);
  d->cost_usd = a->done.cost_usd;
  d->transfer_us = a->done.transfer_us;
  m->env.body_case = INFSCHED__ENVELOPE__BODY_DONE;
  m->env.done = d;
}

static void prefilled(const wcore_t *w, const wcore_action_t *a,
                      wcore_msg_t *m) {
  Infsched__Prefilled *p = &m->u.prefilled;
  infsched__prefilled__init(p);
  infsched__usage__init(&m->usage);
  infsched__kv_handle__init(&m->kv);
  m->usage.prompt_tokens = a->done.prompt_tokens;
  m->usage.cached_tokens = a->done.cached_tokens;
  m->usage.generated_tokens = a->done.generated_tokens;
  m->kv.source_worker = (char *)wcore_config(w)->worker_id;
  m->kv.handle_id = a->request_id;
  m->kv.tokens = a->prefilled.tokens;
  m->kv.prefill_us = a->prefilled.prefill_us;
  m->kv.params_json = (char *)(a->prefilled.params ? a->prefilled.params : "");
  p->request_id = a->client_request_id;
  p->dispatch_id = a->request_id;
  p->usage = &m->usage;
  p->kv = &m->kv;
  p->queue_us = a->done.queue_us;
  p->ttft_us = a->done.ttft_us;
  p->cost_usd = a->done.cost_usd;
  m->env.body_case = INFSCHED__ENVELOPE__BODY_PREFILLED;
  m->env.prefilled = p;
}

Infsched__Envelope *wcore_wire_message(wcore_t *w,
                                       const wcore_action_t *a,
                                       const wcore_cache_t *cache,
                                       wcore_msg_t *m) {
  const wcore_config_t *cfg = wcore_config(w);
  infsched__envelope__init(&m->env);
  switch (a->kind) {
  case WCORE_ACT_REGISTER:
    infsched__register__init(&m->u.reg);
    wire_profile_to_msg(cfg->profile, &m->profile);
    m->u.reg.worker_id = (char *)cfg->worker_id;
    m->u.reg.model = (char *)cfg->model;
    m->u.reg.profile = &m->profile;
    m->u.reg.capacity = cfg->capacity;
    m->u.reg.backend = (char *)cfg->backend;
    m->u.reg.role = (Infsched__Role)cfg->role;
    m->u.reg.n_held = wcore_held(w, &m->u.reg.held);
    m->u.reg.unhealthy = a->heartbeat.load.unhealthy != 0;
    m->u.reg.draining = a->heartbeat.draining;
    m->env.body_case = INFSCHED__ENVELOPE__BODY_REGISTER;
    m->env.register_ = &m->u.reg;
    break;
  case WCORE_ACT_HEARTBEAT:
    heartbeat(w, &a->heartbeat, cache, m);
    break;
  case WCORE_ACT_CHUNK:
    infsched__chunk__init(&m->u.chunk);
    m->u.chunk.request_id = a->client_request_id;
    m->u.chunk.dispatch_id = a->request_id;
    m->u.chunk.tokens = a->tokens;
    m->u.chunk.text = (char *)(a->text ? a->text : "");
    m->u.chunk.tool_calls = (char *)(a->tool_calls ? a->tool_calls : "");
    m->u.chunk.logprobs = (char *)(a->logprobs ? a->logprobs : "");
    m->env.body_case = INFSCHED__ENVELOPE__BODY_CHUNK;
    m->env.chunk = &m->u.chunk;
    break;
  case WCORE_ACT_DONE:
    done(w, a, m);
    break;
  case WCORE_ACT_PREFILLED:
    prefilled(w, a, m);
    break;
  case WCORE_ACT_ERROR:
    wire_error_msg(&m->env, &m->u.error, a->request_id, a->code, a->message);
    break;
  }
  return &m->env;
}

void wcore_wire_feed(wcore_t *w, infs_time_t now,
                     const Infsched__Envelope *env, wcore_order_t *out) {
  *out = (wcore_order_t){.kind = WCORE_ORDER_NONE};
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_REGISTERED:
  {
    const Infsched__Registered *r = env->registered;
    wcore_on_registered(w, now, r->heartbeat_ms * INFS_US_PER_MS);
    size_t n = r->n_adopted_from < r->n_adopted_as ? r->n_adopted_from
                                                   : r->n_adopted_as;
    out->n_ids =
        wcore_on_adopted(w, now, r->adopted_from, r->adopted_as, n, &out->ids);
    if (out->n_ids)
      out->kind = WCORE_ORDER_STOP_ALL;
    break;
  }
  case INFSCHED__ENVELOPE__BODY_DISPATCH: {
    const Infsched__Dispatch *d = env->dispatch;
    if (!d->request) {
      wcore_on_bad_dispatch(w, now, 0, "dispatch without a request");
      break;
    }
    infs_phase_t phase;
    if (wire_phase_from_msg(d->phase, &phase)) {
      wcore_on_bad_dispatch(w, now, d->request->request_id,
                            "dispatch of a phase this worker does not know");
      break;
    }
    if (phase == INFS_PHASE_DECODE && !d->kv) {
      wcore_on_bad_dispatch(w, now, d->request->request_id,
                            "decode dispatch without its KV handle");
      break;
    }
    infs_role_t role = wcore_config(w)->role;
    if ((role == INFS_ROLE_PREFILL && phase != INFS_PHASE_PREFILL) ||
        (role == INFS_ROLE_DECODE && phase == INFS_PHASE_PREFILL)) {
      wcore_on_bad_dispatch(w, now, d->request->request_id,
                            role == INFS_ROLE_PREFILL
                                ? "this worker only prefills (--role prefill)"
                                : "this worker never prefills for another "
                                  "(--role decode)");
      break;
    }
    /* A migration: the backend continues the stream, so it prefills what
     * went out too and generates the rest. */
    uint32_t resumed = d->resume_tokens < d->request->max_tokens
                           ? d->resume_tokens
                           : d->request->max_tokens;
    if (wcore_on_dispatch(w, now, d->request->request_id, d->client_request_id,
                          d->request->prompt_tokens + resumed, resumed,
                          phase))
      break;
    wcore_keep(w, d->request->request_id, d->request, d->client.data,
               d->client.len, d->resume_text,
               d->resume_text ? strlen(d->resume_text) : 0);
    out->kind = WCORE_ORDER_RUN;
    wire_request_from_msg(d->request, &out->request);
    out->request.phase = phase;
    if (phase == INFS_PHASE_DECODE) {
      wire_kv_from_msg(d->kv, &out->kv);
      out->request.kv = &out->kv;
    }
    if (resumed) {
      infs_request_t *q = &out->request;
      size_t said = d->resume_text ? strlen(d->resume_text) : 0;
      q->prompt = wcore_resumed_prompt(w, q->prompt, q->prompt_len,
                                       d->resume_text, said);
      q->prompt_len += said;
      q->prompt_tokens += resumed;
      q->max_tokens -= resumed;
      q->resumed = resumed;
      q->resumed_len = said;
    }
    break;
  }
  case INFSCHED__ENVELOPE__BODY_CANCEL:
    if (wcore_on_cancel(w, now, env->cancel->request_id)) {
      out->kind = WCORE_ORDER_STOP;
      out->id = env->cancel->request_id;
    }
    break;
  case INFSCHED__ENVELOPE__BODY_ERROR:
    if (env->error->code == INFSCHED__ERROR_CODE__ERROR_UNKNOWN_WORKER) {
      if (wcore_registered(w)) {
        out->kind = WCORE_ORDER_REJOIN;
        out->n_ids = wcore_on_unknown(w, now);
      }
    } else {
      out->kind = WCORE_ORDER_NOTE;
      out->code = env->error->code;
      out->message = env->error->message;
    }
    break;
  case INFSCHED__ENVELOPE__BODY_DRAIN:
    break;
  default:
    out->kind = WCORE_ORDER_UNEXPECTED;
  }
}
