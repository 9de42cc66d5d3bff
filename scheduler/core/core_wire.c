#include "core_wire.h"

#include "wire.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void unexpected(const Infsched__Envelope *env, const char *socket,
                       char *why, size_t len) {
  snprintf(why, len, "unexpected %s on the %s socket",
           wire_body_name(env->body_case), socket);
}

int core_wire_feed_client(core_t *c, infs_time_t now, const core_peer_t *peer,
                          const Infsched__Envelope *env, char *why,
                          size_t len) {
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_SUBMIT: {
    if (!env->submit->request) {
      snprintf(why, len, "submit without a request");
      return CORE_WIRE_BAD;
    }
    const Infsched__Submit *s = env->submit;
    core_request_t q;
    wire_request_from_msg(s->request, &q);
    if (s->resubmit)
      core_on_resubmit(c, now, peer, &q, s->resume_tokens, s->resume_text,
                       s->resume_text ? strlen(s->resume_text) : 0);
    else
      core_on_submit(c, now, peer, &q);
    return CORE_WIRE_FED;
  }
  case INFSCHED__ENVELOPE__BODY_CANCEL:
    core_on_cancel(c, now, peer, env->cancel->request_id);
    return CORE_WIRE_FED;
  case INFSCHED__ENVELOPE__BODY_STATUS_QUERY:
    return CORE_WIRE_STATUS;
  default:
    unexpected(env, "client", why, len);
    return CORE_WIRE_BAD;
  }
}

static int feed_register(core_t *c, infs_time_t now, const core_peer_t *peer,
                         const char *key, const Infsched__Register *m,
                         char *why, size_t len) {
  if (!m->profile) {
    snprintf(why, len, "register without a profile");
    return CORE_WIRE_BAD;
  }
  infs_profile_t profile;
  wire_profile_from_msg(m->profile, &profile);
  core_held_t *held = NULL;
  size_t n = 0;
  if (m->n_held) {
    held = xcalloc(m->n_held, sizeof *held);
  }
  for (size_t i = 0; i < m->n_held; i++) {
    const Infsched__Held *h = m->held[i];
    core_held_t *o = &held[n];
    /* The client's routing id is its door, then its bytes. */
    if (!h->request || h->client.len < 1 || h->client.len > 1 + CORE_PEER_MAX)
      continue;
    wire_request_from_msg(h->request, &o->spec);
    o->id = h->request->request_id;
    o->spec.id = h->client_request_id;
    o->client.door = h->client.data[0];
    o->client.len = (uint8_t)(h->client.len - 1);
    memcpy(o->client.id, h->client.data + 1, o->client.len);
    o->tokens = h->tokens;
    o->text = h->text ? h->text : "";
    o->text_len = strlen(o->text);
    o->done = h->done;
    n++;
  }
  core_worker_info_t info = {
      .key = key,
      .worker_id = m->worker_id,
      .model = m->model,
      .backend = m->backend,
      .profile = &profile,
      .capacity = m->capacity,
      .held = held,
      .n_held = n,
      .unhealthy = m->unhealthy,
      .draining = m->draining,
  };
  if (wire_role_from_msg(m->role, &info.role)) {
    free(held);
    snprintf(why, len, "register with an unknown role %d", (int)m->role);
    return CORE_WIRE_BAD;
  }
  core_on_register(c, now, peer, &info);
  free(held);
  return CORE_WIRE_FED;
}

/* The figures of a worker's Done or Prefilled. */
static core_done_t figures_of(const Infsched__Usage *u, uint64_t queue_us,
                              uint64_t ttft_us, double cost_usd) {
  return (core_done_t){
      .prompt_tokens = u ? u->prompt_tokens : 0,
      .cached_tokens = u ? u->cached_tokens : 0,
      .generated_tokens = u ? u->generated_tokens : 0,
      .queue_us = queue_us,
      .ttft_us = ttft_us,
      .cost_usd = cost_usd,
  };
}

static void feed_heartbeat(core_t *c, infs_time_t now, const core_peer_t *peer,
                           const Infsched__Heartbeat *m) {
  core_load_t load = {
      .queued = m->queued,
      .running = m->running,
      .kv_used = m->kv_used,
      .kv_total = m->kv_total,
      .prefill_backlog_tokens = m->prefill_backlog_tokens,
      .tokens_per_s = m->tokens_per_s,
      .cost_usd = m->cost_usd,
      .busy_s = m->busy_s,
      .up_s = m->up_s,
      .cache_reset = m->cache_reset,
      .cache_added = m->cache_added,
      .n_cache_added = m->n_cache_added,
      .cache_removed = m->cache_removed,
      .n_cache_removed = m->n_cache_removed,
      .unhealthy = m->unhealthy,
      .draining = m->draining,
  };
  core_on_heartbeat(c, now, peer, &load);
}

int core_wire_feed_worker(core_t *c, infs_time_t now, const core_peer_t *peer,
                          const char *key, const Infsched__Envelope *env,
                          char *why, size_t len) {
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_REGISTER:
    return feed_register(c, now, peer, key, env->register_, why, len);
  case INFSCHED__ENVELOPE__BODY_HEARTBEAT:
    feed_heartbeat(c, now, peer, env->heartbeat);
    return CORE_WIRE_FED;
  case INFSCHED__ENVELOPE__BODY_CHUNK:
  {
    const Infsched__Chunk *k = env->chunk;
    size_t extra = (k->tool_calls ? strlen(k->tool_calls) : 0) +
                   (k->logprobs ? strlen(k->logprobs) : 0);
    core_on_chunk_parts(c, now, peer, k->dispatch_id, k->tokens, k->text,
                        k->text ? strlen(k->text) : 0, extra, k);
  }
    return CORE_WIRE_FED;
  case INFSCHED__ENVELOPE__BODY_DONE:
  {
    const Infsched__Done *d = env->done;
    core_done_t figures =
        figures_of(d->usage, d->queue_us, d->ttft_us, d->cost_usd);
    figures.e2e_us = d->e2e_us;
    figures.transfer_us = d->transfer_us;
    core_on_done(c, now, peer, d->dispatch_id, &figures, env->done);
  }
    return CORE_WIRE_FED;
  case INFSCHED__ENVELOPE__BODY_PREFILLED: {
    const Infsched__Prefilled *p = env->prefilled;
    if (!p->kv) {
      snprintf(why, len, "prefilled without its KV handle");
      return CORE_WIRE_BAD;
    }
    core_done_t figures =
        figures_of(p->usage, p->queue_us, p->ttft_us, p->cost_usd);
    infs_kv_handle_t kv;
    wire_kv_from_msg(p->kv, &kv);
    core_on_prefilled(c, now, peer, p->dispatch_id, &figures, &kv);
    return CORE_WIRE_FED;
  }
  case INFSCHED__ENVELOPE__BODY_ERROR:
    core_on_worker_error(c, now, peer, env->error->request_id,
                         env->error->code, env->error->message);
    return CORE_WIRE_FED;
  case INFSCHED__ENVELOPE__BODY_ACCEPTED:
    core_on_worker_seen(c, now, peer);
    return CORE_WIRE_FED;
  default:
    unexpected(env, "worker", why, len);
    return CORE_WIRE_BAD;
  }
}

Infsched__Envelope *core_wire_message(const core_action_t *a,
                                      uint32_t heartbeat_ms,
                                      core_wire_msg_t *m) {
  infsched__envelope__init(&m->env);
  switch (a->kind) {
  case CORE_ACT_ACCEPTED:
    infsched__accepted__init(&m->u.accepted);
    m->u.accepted.request_id = a->request_id;
    m->env.body_case = INFSCHED__ENVELOPE__BODY_ACCEPTED;
    m->env.accepted = &m->u.accepted;
    break;
  case CORE_ACT_CHUNK:
    m->env.body_case = INFSCHED__ENVELOPE__BODY_CHUNK;
    m->env.chunk = (Infsched__Chunk *)a->passthrough;
    if (!m->env.chunk) {
      m->env.chunk = &m->u.chunk;
      infsched__chunk__init(m->env.chunk);
      m->env.chunk->tokens = a->resume_tokens;
      m->env.chunk->text = (char *)(a->resume_text ? a->resume_text : "");
    }
    m->env.chunk->request_id = a->request_id;
    break;
  case CORE_ACT_DONE:
    m->env.body_case = INFSCHED__ENVELOPE__BODY_DONE;
    m->env.done = (Infsched__Done *)a->passthrough;
    if (!m->env.done) {
      Infsched__Done *d = m->env.done = &m->u.done;
      infsched__done__init(d);
      infsched__usage__init(&m->usage);
      m->usage.prompt_tokens = a->done->prompt_tokens;
      m->usage.cached_tokens = a->done->cached_tokens;
      m->usage.generated_tokens = a->done->generated_tokens;
      d->usage = &m->usage;
      d->queue_us = a->done->queue_us;
      d->ttft_us = a->done->ttft_us;
      d->e2e_us = a->done->e2e_us;
      d->cost_usd = a->done->cost_usd;
      d->worker_id = (char *)(a->worker_id ? a->worker_id : "");
      d->worker_class = (char *)(a->worker_class ? a->worker_class : "");
      d->prefill_us = a->done->prefill_us;
      d->transfer_us = a->done->transfer_us;
      d->decode_us = a->done->decode_us;
      d->prefill_cost_usd = a->done->prefill_cost_usd;
      d->prefill_worker_id =
          (char *)(a->prefill_worker_id ? a->prefill_worker_id : "");
      d->prefill_worker_class =
          (char *)(a->prefill_worker_class ? a->prefill_worker_class : "");
    }
    m->env.done->request_id = a->request_id;
    break;
  case CORE_ACT_ERROR:
  case CORE_ACT_WORKER_ERROR:
    wire_error_msg(&m->env, &m->u.error, a->request_id, a->code, a->message);
    break;
  case CORE_ACT_DISPATCH:
    infsched__dispatch__init(&m->u.dispatch);
    wire_request_to_msg(a->request, &m->request);
    m->u.dispatch.request = &m->request;
    m->u.dispatch.client_request_id = a->client_request_id;
    m->u.dispatch.resume_tokens = a->resume_tokens;
    m->u.dispatch.resume_text = (char *)(a->resume_text ? a->resume_text : "");
    if (a->client) {
      m->client[0] = a->client->door;
      memcpy(m->client + 1, a->client->id, a->client->len);
      m->u.dispatch.client.data = m->client;
      m->u.dispatch.client.len = 1 + (size_t)a->client->len;
    }
    m->u.dispatch.phase = (Infsched__Phase)a->phase;
    if (a->kv) {
      wire_kv_to_msg(a->kv, &m->kv);
      m->u.dispatch.kv = &m->kv;
    }
    m->env.body_case = INFSCHED__ENVELOPE__BODY_DISPATCH;
    m->env.dispatch = &m->u.dispatch;
    break;
  case CORE_ACT_CANCEL:
    infsched__cancel__init(&m->u.cancel);
    m->u.cancel.request_id = a->request_id;
    m->env.body_case = INFSCHED__ENVELOPE__BODY_CANCEL;
    m->env.cancel = &m->u.cancel;
    break;
  case CORE_ACT_REGISTERED:
    infsched__registered__init(&m->u.registered);
    m->u.registered.heartbeat_ms = heartbeat_ms;
    m->u.registered.adopted_from = (uint64_t *)a->adopted_from;
    m->u.registered.n_adopted_from = a->n_adopted;
    m->u.registered.adopted_as = (uint64_t *)a->adopted_as;
    m->u.registered.n_adopted_as = a->n_adopted;
    m->env.body_case = INFSCHED__ENVELOPE__BODY_REGISTERED;
    m->env.registered = &m->u.registered;
    break;
  }
  return &m->env;
}

bool core_wire_to_worker(core_action_kind_t kind) {
  return kind == CORE_ACT_DISPATCH || kind == CORE_ACT_CANCEL ||
         kind == CORE_ACT_REGISTERED || kind == CORE_ACT_WORKER_ERROR;
}

void core_wire_flush(core_t *c, void (*send)(void *ctx, const core_action_t *a),
                     void *ctx) {
  size_t n;
  const core_action_t *acts = core_actions(c, &n);
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < n; i++)
      if (core_wire_to_worker(acts[i].kind) == (pass == 0))
        send(ctx, &acts[i]);
  core_actions_clear(c);
}
