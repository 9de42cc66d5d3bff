/* Event handlers of the scheduling core. Every accepted request leaves the
 * core through exactly one terminal action to its client: DONE, or ERROR
 * (failure, or rejection with a code >= 100). */
#include "core.h"

#include "infsched/errors.h"
#include "xalloc.h"
#include "policy.h"
#include "prefix.h"
#include "transfer.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct core {
  core_config_t cfg;
  const policy_ops_t *policy;
  void *policy_state;
  req_table_t reqs;
  registry_t reg;
  list_node_t queue[INFS_CLASS_COUNT]; /* admission queues, FIFO per class */
  /* Adopted requests whose Done came before their client claimed them. */
  list_node_t parked;
  uint64_t *adopted_from; /* the last REGISTERED's adoptions */
  uint64_t *adopted_as;
  size_t n_adopted;
  size_t adopted_cap;
  size_t queued[INFS_CLASS_COUNT];
  uint32_t *cands;   /* scratch for policy picks: registry indices */
  uint64_t *scratch; /* and for the picks themselves */
  size_t cands_cap;
  prefix_index_t prefix; /* who caches which prompt blocks */
  session_table_t sessions;
  core_action_t *acts;
  size_t n_acts;
  size_t acts_cap;
  core_decision_t *decisions; /* with cfg.explain */
  size_t n_decisions;
  size_t decisions_cap;
  core_stats_t stats;
  infs_time_t next_check; /* next loss check */
  bool put_off;           /* the last one came late and judged nothing */
  /* A queue's head that found no worker with room finds none again until
   * a request ends or a worker registers: retrying it is skipped until
   * room_events moves past what no_room_events noted for that head. */
  uint64_t room_events;
  uint64_t no_room_head[INFS_CLASS_COUNT]; /* request id; 0: none */
  uint64_t no_room_events[INFS_CLASS_COUNT];
  /* A head the policy deferred is retried on messages (heartbeats, ends of
   * requests, submits) at most RETRIES times per heartbeat interval: a pool
   * of thousands of workers must not weigh it against all of them on
   * every message. */
  uint64_t deferred_head[INFS_CLASS_COUNT];
  infs_time_t retry_credit;
  infs_time_t retry_credit_at;
  bool place_found_no_room;     /* why the last place() failed */
  /* Since when every registered worker serving a model has been unhealthy
   * or draining, by interned model id (0 while one serves, or none is
   * registered); for a model no worker names, served by workers of any
   * model, apart. */
  infs_time_t *stranded_since;
  size_t stranded_cap;
  infs_time_t stranded_unnamed;
  predictor_decay_t beat_decay; /* prefill rates' decay between heartbeats */
};

core_t *core_new(const core_config_t *cfg, infs_time_t now, int *err) {
  const policy_ops_t *policy =
      cfg->policy_ops ? cfg->policy_ops : policy_find(cfg->policy);
  if (!policy) {
    *err = INFS_EUNKNOWN;
    return NULL;
  }
  core_t *c = xcalloc(1, sizeof *c);
  c->cfg = *cfg;
  c->policy = policy;
  if (policy->create && policy->create(&c->policy_state) != 0) {
    free(c);
    *err = -ENOMEM;
    return NULL;
  }
  c->cfg.policy = policy->name;
  requests_init(&c->reqs);
  registry_init(&c->reg);
  prefix_init(&c->prefix);
  for (int i = 0; i < INFS_CLASS_COUNT; i++)
    list_init(&c->queue[i]);
  list_init(&c->parked);
  c->next_check = now + c->cfg.heartbeat_interval;
  c->retry_credit = c->cfg.heartbeat_interval;
  c->retry_credit_at = now;
  *err = 0;
  return c;
}

void core_destroy(core_t **pc) {
  core_t *c = *pc;
  if (!c)
    return;
  if (c->policy->destroy)
    c->policy->destroy(c->policy_state);
  requests_free(&c->reqs);
  registry_free(&c->reg);
  prefix_free(&c->prefix);
  sessions_free(&c->sessions);
  free(c->cands);
  free(c->scratch);
  free(c->acts);
  free(c->decisions);
  free(c->adopted_from);
  free(c->adopted_as);
  free(c->stranded_since);
  free(c);
  *pc = NULL;
}

/* --- outbox --- */

static core_action_t *emit(core_t *c, core_action_kind_t kind,
                           const core_peer_t *to, uint64_t request_id) {
  if (c->n_acts == c->acts_cap) {
    size_t cap = c->acts_cap ? c->acts_cap * 2 : 64;
    core_action_t *a = xrealloc(c->acts, cap * sizeof *a);
    c->acts = a;
    c->acts_cap = cap;
  }
  core_action_t *a = &c->acts[c->n_acts++];
  a->kind = kind;
  a->request_id = request_id;
  a->code = 0;
  a->message[0] = '\0';
  a->request = NULL;
  a->client_request_id = 0;
  a->resume_tokens = 0;
  a->resume_text = NULL;
  a->resume_len = 0;
  a->client = NULL;
  a->phase = INFS_PHASE_FULL;
  a->kv = NULL;
  a->done = NULL;
  a->worker_id = NULL;
  a->worker_class = NULL;
  a->prefill_worker_id = NULL;
  a->prefill_worker_class = NULL;
  a->adopted_from = NULL;
  a->adopted_as = NULL;
  a->n_adopted = 0;
  a->passthrough = NULL;
  a->cls = INFS_CLASS_COUNT;
  a->arrived = 0;
  a->streamed = false;
  a->first_token = a->last_token = 0;
  a->tokens = 0;
  a->slo = (slo_t){0};
  a->uncached = 0;
  a->peer.door = to->door;
  a->peer.len = to->len;
  memcpy(a->peer.id, to->id, to->len);
  return a;
}

static core_action_t *emit_error(core_t *c, core_action_kind_t kind,
                                 const core_peer_t *to, uint64_t request_id,
                                 int code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static core_action_t *emit_error(core_t *c, core_action_kind_t kind,
                                 const core_peer_t *to, uint64_t request_id,
                                 int code, const char *fmt, ...) {
  core_action_t *a = emit(c, kind, to, request_id);
  a->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->message, sizeof a->message, fmt, ap);
  va_end(ap);
  return a;
}

const core_action_t *core_actions(const core_t *c, size_t *n) {
  *n = c->n_acts;
  return c->acts;
}

void core_actions_clear(core_t *c) {
  c->n_acts = 0;
  c->n_decisions = 0;
}

const core_decision_t *core_decisions(const core_t *c, size_t *n) {
  *n = c->n_decisions;
  return c->decisions;
}

/* --- request lifecycle --- */

static core_worker_t *worker_of(const core_t *c, const req_t *r) {
  return r->worker >= 0 ? c->reg.workers[r->worker] : NULL;
}

/* Output tokens r still owes its worker's load: a prefill makes only the
 * first. */
static uint32_t owed(const req_t *r) {
  uint32_t end = r->phase == INFS_PHASE_PREFILL ? 1 : r->spec.max_tokens;
  return end > r->tokens_out ? end - r->tokens_out : 0;
}

/* Takes r's share out of its worker's load. */
static void unassign(core_t *c, core_worker_t *w, const req_t *r) {
  const core_request_t *s = &r->spec;
  uint64_t left = owed(r);
  registry_hot(&c->reg, w)->outstanding--;
  c->room_events++;
  w->n_cls[s->cls]--;
  w->remaining_tokens -=
      left < w->remaining_tokens ? left : w->remaining_tokens;
  if (r->state == REQ_DISPATCHED)
    w->since.prefill_tokens -= r->uncached;
  w->since.requests--;
  w->since.kv_tokens -= (int64_t)s->prompt_tokens + r->tokens_out + 1;
}

/* Lets the worker that holds r's prefilled KV free it: a cancel of the
 * prefill's dispatch, when that worker is still the same registration. */
static void release_kv(core_t *c, req_t *r) {
  if (r->kv_worker < 0)
    return;
  const core_worker_t *p = c->reg.workers[r->kv_worker];
  if (p->live && p->epoch == r->kv_epoch)
    emit(c, CORE_ACT_CANCEL, &p->peer, r->id);
  r->kv_worker = -1;
}

/* Releases a request after its terminal answer has been emitted. */
static void finish(core_t *c, req_t *r) {
  release_kv(c, r);
  core_worker_t *w = worker_of(c, r);
  if (w)
    unassign(c, w, r);
  else if (r->state == REQ_QUEUED && !list_empty(&r->link))
    c->queued[r->spec.cls]--;
  requests_remove(&c->reqs, r);
}

/* Stamps a client action with what metrics need of its request. */
static void about(core_action_t *a, const req_t *r) {
  a->cls = r->spec.cls;
  a->arrived = r->arrived;
  a->streamed = r->state == REQ_STREAMING || r->tokens_out > 0;
  a->first_token = r->first_token_at;
  a->last_token = r->last_token_at;
  a->tokens = r->tokens_out;
  a->slo = slo_of_request(&r->spec);
  a->uncached = r->uncached;
}

static void fail(core_t *c, req_t *r, int code, const char *why) {
  about(emit_error(c, CORE_ACT_ERROR, &r->client, r->client_id, code, "%s",
                   why),
        r);
  if (code >= INFS_WIRE_QUEUEFULL)
    c->stats.rejected++;
  else
    c->stats.failed++;
  if (code == INFS_WIRE_QUEUEFULL)
    c->stats.rejected_queue_full++;
  else if (code == INFS_WIRE_QUEUETIMEOUT)
    c->stats.rejected_queue_timeout++;
  else if (code == INFS_WIRE_UNAVAILABLE)
    c->stats.rejected_unavailable++;
  finish(c, r);
}

/* How long w may take to show progress on r: CORE_PROGRESS_FACTOR times
 * the predicted TTFT, at least the configured floor and at most
 * CORE_PROGRESS_WINDOW_MAX (a prediction past it does not fit a time, and
 * now plus it must not wrap). */
static infs_time_t progress_window(const core_t *c, double ttft_ms) {
  double us = ttft_ms * CORE_PROGRESS_FACTOR * (double)INFS_US_PER_MS;
  infs_time_t floor = c->cfg.progress_timeout;
  if (!isfinite(us) || us <= (double)floor)
    return floor;
  return us < (double)CORE_PROGRESS_WINDOW_MAX ? (infs_time_t)us
                                               : CORE_PROGRESS_WINDOW_MAX;
}

/* Puts r on w and counts it in w's load. */
static void assign(core_t *c, req_t *r, core_worker_t *w, infs_time_t now,
                   uint64_t cached, double ttft_ms) {
  const core_request_t *s = &r->spec;
  r->state = REQ_DISPATCHED;
  r->worker = (int32_t)w->index;
  /* A decode is the second half of its prefill's attempt. */
  if (r->phase != INFS_PHASE_DECODE)
    r->attempts++;
  r->dispatched_at = now;
  r->dispatch_tokens = r->tokens_out;
  r->progress_window = progress_window(c, ttft_ms);
  r->progress_deadline = now + r->progress_window;
  /* A migrated request prefills what it already streamed, too; a decode
   * only that, its prompt's KV comes over the link. */
  if (r->phase == INFS_PHASE_DECODE)
    cached = s->prompt_tokens;
  r->uncached = s->prompt_tokens + r->tokens_out - (uint32_t)cached;
  list_push_back(&w->reqs, &r->link);
  registry_hot(&c->reg, w)->outstanding++;
  w->n_cls[s->cls]++;
  w->requests++;
  w->remaining_tokens += owed(r);
  w->since.requests++;
  w->since.prefill_tokens += r->uncached;
  predictor_rate_add(NULL, &w->prefill_rate, &w->prefill_rate_at, now,
                     r->uncached);
  w->since.kv_tokens += (int64_t)s->prompt_tokens + r->tokens_out + 1;
}

/* cached_blocks: of r's prompt, predicted to be in w's prefix cache;
 * ttft_ms: r's predicted TTFT there. */
static void dispatch(core_t *c, req_t *r, core_worker_t *w, infs_time_t now,
                     uint32_t cached_blocks, double ttft_ms) {
  if (r->state == REQ_QUEUED && !list_empty(&r->link)) {
    list_remove(&r->link);
    c->queued[r->spec.cls]--;
  }
  const core_request_t *s = &r->spec;
  uint64_t cached = (uint64_t)cached_blocks * w->profile.block_size;
  if (cached >= s->prompt_tokens)
    cached = s->prompt_tokens - 1;
  assign(c, r, w, now, cached, ttft_ms);
  c->stats.dispatched++;
  c->stats.blocks_routed += s->n_blocks;
  c->stats.cached_blocks_routed += cached_blocks;
  core_action_t *a = emit(c, CORE_ACT_DISPATCH, &w->peer, r->id);
  a->request = &r->spec;
  a->client_request_id = r->client_id;
  a->resume_tokens = r->tokens_out;
  a->resume_text = r->said.data;
  a->resume_len = r->said.len;
  a->client = &r->client;
  a->phase = r->phase;
  a->kv = r->phase == INFS_PHASE_DECODE ? &r->kv : NULL;
}

/* Dispatches the decode of r, whose prefilled KV r->kv_worker holds, to w
 * (cached_blocks of r's prompt in its prefix cache, ttft_ms its predicted
 * TTFT there): the handle gets the bytes w lacks and the link they cross.
 * When w is the holder itself, or the holder is gone, r runs whole on w
 * from its first token instead. */
static void dispatch_decode(core_t *c, req_t *r, core_worker_t *w,
                            infs_time_t now, uint32_t cached_blocks,
                            double ttft_ms) {
  const core_worker_t *p = c->reg.workers[r->kv_worker];
  if (w == p || !p->live || p->epoch != r->kv_epoch) {
    release_kv(c, r);
    r->phase = INFS_PHASE_FULL;
    dispatch(c, r, w, now, cached_blocks, ttft_ms);
    return;
  }
  const core_request_t *s = &r->spec;
  uint64_t cached = (uint64_t)cached_blocks * w->profile.block_size;
  uint32_t held = r->kv.tokens && r->kv.tokens < s->prompt_tokens
                      ? r->kv.tokens
                      : s->prompt_tokens;
  uint32_t lacks = cached < held ? held - (uint32_t)cached : 0;
  infs_link_t l = link_find(c->cfg.links, p->id, &p->profile, w->id,
                            &w->profile);
  r->kv.bytes = kv_transfer_bytes(&p->profile, lacks);
  r->kv.link_gbps = l.gbps;
  r->kv.link_latency_us = l.latency_us;
  r->kv.overlap = l.overlap;
  double transfer_ms =
      kv_transfer_visible_us(&l, r->kv.bytes, (double)r->kv.prefill_us) /
      (double)INFS_US_PER_MS;
  r->phase = INFS_PHASE_DECODE;
  dispatch(c, r, w, now, cached_blocks, ttft_ms + transfer_ms);
}

/* The worker that served r's session, when it is still the same
 * registration, and how many of r's leading blocks that session sent it;
 * *known tells whether the session has an entry at all. */
static core_worker_t *session_worker(const core_t *c, const req_t *r,
                                     policy_ctx_t *x, bool *known) {
  const session_entry_t *e = sessions_find(&c->sessions, r->session_key);
  *known = e != NULL;
  if (!e || e->worker >= c->reg.len)
    return NULL;
  core_worker_t *w = c->reg.workers[e->worker];
  if (!w->live || w->epoch != e->epoch)
    return NULL;
  const core_request_t *s = &r->spec;
  if (e->n_blocks && e->n_blocks <= s->n_blocks &&
      s->blocks[e->n_blocks - 1] == e->last_block)
    x->session_blocks = e->n_blocks;
  /* What its last request added to the worker's rate, decayed since. */
  if (w->prefill_rate_at >= e->at)
    x->session_rate =
        e->uncached / PREDICTOR_RATE_TAU_S *
        exp(-(double)(w->prefill_rate_at - e->at) / 1e6 / PREDICTOR_RATE_TAU_S);
  return w;
}

/* Appends the explanation of a decision; chosen is a candidate index or -1. */
static void record(core_t *c, policy_ctx_t *x, long chosen) {
  if (c->n_decisions == c->decisions_cap) {
    size_t cap = c->decisions_cap ? c->decisions_cap * 2 : 16;
    core_decision_t *d = xrealloc(c->decisions, cap * sizeof *d);
    c->decisions = d;
    c->decisions_cap = cap;
  }
  core_decision_t *d = &c->decisions[c->n_decisions++];
  const core_request_t *s = &x->r->spec;
  d->request_id = x->r->client_id;
  d->cls = s->cls;
  d->outcome = x->outcome;
  d->placed = chosen >= 0;
  d->slo = slo_of_request(s);
  d->blocks = (uint32_t)s->n_blocks;
  d->candidates = x->n;
  /* The chosen worker first, then the policy's best offers. */
  policy_offer_t list[CORE_EXPLAIN_TOP];
  size_t n = 0;
  if (chosen >= 0) {
    /* NAN: the policy kept better offers than the one it chose. */
    list[n++] = (policy_offer_t){(uint32_t)chosen, NAN, true};
    for (size_t i = 0; i < x->n_offers; i++)
      if (x->offers[i].cand == (uint32_t)chosen)
        list[0] = x->offers[i];
  }
  for (size_t i = 0; i < x->n_offers && n < CORE_EXPLAIN_TOP; i++)
    if (chosen < 0 || x->offers[i].cand != (uint32_t)chosen)
      list[n++] = x->offers[i];
  d->n_scores = n;
  for (size_t i = 0; i < n; i++) {
    const core_worker_t *w = c->reg.workers[x->cands[list[i].cand]];
    core_score_t *sc = &d->scores[i];
    prediction_t p;
    policy_predict(x, list[i].cand, &p);
    snprintf(sc->worker_id, sizeof sc->worker_id, "%s", w->id);
    sc->score = list[i].score;
    sc->ok = list[i].ok;
    sc->cached_blocks = policy_cached_blocks(x, list[i].cand);
    sc->outstanding = registry_hot(&c->reg, w)->outstanding;
    sc->ttft_ms = p.ttft_ms;
    sc->tpot_ms = p.tpot_ms;
    sc->ttft_target_ms = policy_targets(x, &p).ttft_ms;
    sc->cost_usd = p.cost_usd;
  }
}

/* Counts (once per request) and explains why r stays queued. */
static void note_waiting(core_t *c, req_t *r, policy_ctx_t *x) {
  if (r->counted_waiting)
    return;
  r->counted_waiting = true;
  c->stats.outcomes[x->outcome]++;
  if (c->cfg.explain)
    record(c, x, -1);
}

/* Whether w may be given work: it is not draining, its backend is healthy
 * and its circuit breaker closed. */
static bool routable(const core_worker_t *w, infs_time_t now) {
  return !w->load.unhealthy && !w->load.draining && now >= w->breaker_until;
}

/* Takes out of the n candidates the worker r timed out on, while it is
 * the same registration. */
static void drop_shunned(const core_t *c, const req_t *r, size_t *n) {
  const core_worker_t *w = c->reg.workers[r->shunned];
  if (!w->live || w->epoch != r->shunned_epoch)
    return;
  for (size_t i = 0; i < *n; i++)
    if (c->cands[i] == (uint32_t)r->shunned) {
      c->cands[i] = c->cands[--*n];
      return;
    }
}

/* Asks the policy for a worker with room; false leaves r where it is. */
static bool place(core_t *c, req_t *r, infs_time_t now) {
  c->stats.placement_attempts++;
  if (c->cands_cap < c->reg.len) {
    c->cands_cap = c->reg.cap;
    c->cands = xrealloc(c->cands, c->cands_cap * sizeof *c->cands);
    c->scratch = xrealloc(c->scratch, c->cands_cap * sizeof *c->scratch);
  }
  policy_ctx_t x = {
      .cfg = &c->cfg,
      .r = r,
      .workers = c->reg.workers,
      .hot = c->reg.hot,
      .group_live = c->reg.group_live,
      .n_groups = c->reg.n_groups,
      .cands = c->cands,
      .scratch = c->scratch,
      .now = now,
      .prefix = &c->prefix,
      .session_worker = -1,
      .outcome = CORE_OUTCOME_NO_ROOM,
      .prefill = -1,
      .explain = c->cfg.explain,
  };
  uint16_t model = registry_model_id(&c->reg, r->spec.model);
  uint64_t context = (uint64_t)r->spec.prompt_tokens + r->spec.max_tokens;
  const worker_hot_t *hot = c->reg.hot;
  /* Prefill-role workers are candidates only to prefill a split. */
  bool split = req_may_split(r);
  for (size_t i = 0; i < c->reg.len; i++)
    if (hot[i].outstanding < hot[i].capacity &&
        hot_serves(&hot[i], model, context) &&
        routable(c->reg.workers[i], now) &&
        (split || c->reg.workers[i]->role != INFS_ROLE_PREFILL))
      c->cands[x.n++] = (uint32_t)i;
  if (r->shunned >= 0)
    drop_shunned(c, r, &x.n);
  c->place_found_no_room = x.n == 0;
  if (x.n == 0) {
    note_waiting(c, r, &x);
    return false;
  }
  prefix_match(&c->prefix, r->spec.blocks, r->spec.n_blocks);
  bool known;
  core_worker_t *sw = session_worker(c, r, &x, &known);
  if (sw)
    x.session_worker = sw->index;
  int pick = policy_pick(c->policy, c->policy_state, &x);
  if (pick < 0 || (size_t)pick >= x.n) {
    note_waiting(c, r, &x);
    return false;
  }
  core_worker_t *w = c->reg.workers[c->cands[pick]];
  c->stats.outcomes[x.outcome]++;
  if (known) {
    if (w == sw)
      c->stats.session_kept++;
    else
      c->stats.session_moved++;
  }
  if (c->cfg.explain)
    record(c, &x, pick);
  /* Roles are the policy's to respect (policy.h). */
  assert(w->role != INFS_ROLE_PREFILL);
  uint32_t cached = policy_cached_blocks(&x, (size_t)pick);
  prediction_t p;
  policy_predict(&x, (size_t)pick, &p);
  if (r->kv_worker >= 0) {
    /* Its prefill is done: this is its decode worker. */
    dispatch_decode(c, r, w, now, cached, p.ttft_ms);
  } else if (split && x.prefill >= 0 && x.prefill != pick &&
             (size_t)x.prefill < x.n) {
    core_worker_t *pw = c->reg.workers[c->cands[x.prefill]];
    assert(pw->role != INFS_ROLE_DECODE);
    prediction_t pp;
    policy_predict(&x, (size_t)x.prefill, &pp);
    r->phase = INFS_PHASE_PREFILL;
    r->decode_worker = (int32_t)w->index;
    r->decode_epoch = w->epoch;
    c->stats.split++;
    dispatch(c, r, pw, now, policy_cached_blocks(&x, (size_t)x.prefill),
             pp.ttft_ms);
  } else {
    r->phase = INFS_PHASE_FULL;
    dispatch(c, r, w, now, cached, p.ttft_ms);
  }
  sessions_note(&c->sessions, r->session_key, w, r, now);
  return true;
}

static void enqueue(core_t *c, req_t *r, bool front) {
  r->state = REQ_QUEUED;
  r->worker = -1;
  if (front)
    list_push_front(&c->queue[r->spec.cls], &r->link);
  else
    list_push_back(&c->queue[r->spec.cls], &r->link);
  c->queued[r->spec.cls]++;
}

#define RETRIES 64

/* Spends one of the rationed retries, if one is left. */
static bool retry_ration(core_t *c, infs_time_t now) {
  infs_time_t cost = c->cfg.heartbeat_interval / RETRIES;
  if (now > c->retry_credit_at)
    c->retry_credit += now - c->retry_credit_at;
  c->retry_credit_at = now;
  if (c->retry_credit > c->cfg.heartbeat_interval)
    c->retry_credit = c->cfg.heartbeat_interval;
  if (c->retry_credit < cost)
    return false;
  c->retry_credit -= cost;
  return true;
}

/* Remembers why the head r of queue cls could not be placed just now. */
static void note_head_failed(core_t *c, int cls, const req_t *r) {
  bool no_room = c->place_found_no_room;
  c->no_room_head[cls] = no_room ? r->id : 0;
  c->no_room_events[cls] = c->room_events;
  c->deferred_head[cls] = no_room ? 0 : r->id;
}

/* Dispatches queued requests while workers have room, interactive first.
 * rationed: a message's opportunistic retry, which spends the ration on
 * deferred heads (the loss-check tick and registrations do not). */
static void drain_queues(core_t *c, infs_time_t now, bool rationed) {
  for (int cls = 0; cls < INFS_CLASS_COUNT; cls++) {
    while (!list_empty(&c->queue[cls])) {
      req_t *r = list_entry(c->queue[cls].next, req_t, link);
      if (c->no_room_head[cls] == r->id &&
          c->no_room_events[cls] == c->room_events)
        break;
      if (rationed && c->deferred_head[cls] == r->id && !retry_ration(c, now))
        break;
      if (place(c, r, now))
        continue;
      note_head_failed(c, cls, r);
      break;
    }
  }
}

static bool queued_ahead(const core_t *c, infs_class_t cls) {
  for (int i = 0; i <= (int)cls; i++)
    if (c->queued[i])
      return true;
  return false;
}

/* A rejection reason when no registered worker could ever serve s, or 0.
 * With no worker registered at all the request waits for one. */
static int unservable(const core_t *c, const core_request_t *s, char *why,
                      size_t len) {
  if (c->reg.live == 0)
    return 0;
  bool model_seen = false, prefill_only = false;
  uint32_t largest = 0;
  uint16_t model = registry_model_id(&c->reg, s->model);
  uint64_t context = (uint64_t)s->prompt_tokens + s->max_tokens;
  for (size_t i = 0; i < c->reg.len; i++) {
    const worker_hot_t *h = &c->reg.hot[i];
    if (!h->capacity || !hot_serves(h, model, 0))
      continue;
    /* A prefill worker never finishes a request. */
    if (c->reg.workers[i]->role == INFS_ROLE_PREFILL) {
      prefill_only = true;
      continue;
    }
    if (context <= h->max_context)
      return 0;
    model_seen = true;
    if (h->max_context > largest)
      largest = h->max_context;
  }
  if (!model_seen) {
    snprintf(why, len, "%s model '%s'",
             prefill_only ? "only prefill-role workers serve"
                          : "no registered worker serves",
             s->model);
    return INFS_WIRE_NOWORKER;
  }
  snprintf(why, len,
           "prompt of %u tokens plus %u output tokens exceeds every "
           "worker's max context (largest %u)",
           s->prompt_tokens, s->max_tokens, largest);
  return INFS_WIRE_CONTEXT;
}

/* --- client events --- */

/* Whether s is well formed and within the core's bounds; the reason in why
 * when it is not. Clients hash blocks of their own size, which the core
 * does not know: it takes CORE_BLOCK_TOKENS_MIN, or the smallest block size
 * registered when smaller (one token before any worker), so a prompt of T
 * tokens needs at most T / that + 1 hashes. */
static bool valid_request(const core_t *c, const core_request_t *s, char *why,
                          size_t len) {
  uint32_t block = c->reg.min_block_size ? c->reg.min_block_size : 1;
  if (block > CORE_BLOCK_TOKENS_MIN)
    block = CORE_BLOCK_TOKENS_MIN;
  uint64_t blocks = s->prompt_tokens / block + 1;
  if (blocks > CORE_BLOCKS_MAX)
    blocks = CORE_BLOCKS_MAX;
  if (s->prompt_tokens == 0 || s->max_tokens == 0 ||
      (unsigned)s->cls >= INFS_CLASS_COUNT)
    snprintf(why, len,
             "request needs a prompt, max_tokens >= 1 and a valid class");
  else if (s->n_blocks > blocks)
    snprintf(why, len,
             "%zu block hashes for a prompt of %u tokens (at most %llu)",
             s->n_blocks, s->prompt_tokens, (unsigned long long)blocks);
  else if (s->prompt_len > CORE_PROMPT_BYTES_MAX)
    snprintf(why, len, "prompt of %zu bytes (at most %u)", s->prompt_len,
             CORE_PROMPT_BYTES_MAX);
  else if (strlen(s->model) >= INFS_NAME_MAX)
    snprintf(why, len, "model name longer than %d bytes", INFS_NAME_MAX - 1);
  else if (s->session && strlen(s->session) > CORE_SESSION_MAX)
    snprintf(why, len, "session id longer than %d bytes", CORE_SESSION_MAX);
  else
    return true;
  return false;
}

/* Sends r's client the tokens it is missing: it has `have` tokens, have_len
 * bytes of their text. */
static void send_missed(core_t *c, req_t *r, uint32_t have, size_t have_len) {
  if (r->tokens_out <= have)
    return;
  core_action_t *a = emit(c, CORE_ACT_CHUNK, &r->client, r->client_id);
  about(a, r);
  a->streamed = have > 0;
  a->resume_tokens = r->tokens_out - have;
  if (have_len < r->said.len) {
    a->resume_text = r->said.data + have_len;
    a->resume_len = r->said.len - have_len;
  } else {
    a->resume_text = "";
  }
}

/* Answers r with the Done the core kept, and releases it. */
static void send_kept_done(core_t *c, req_t *r) {
  core_action_t *a = emit(c, CORE_ACT_DONE, &r->client, r->client_id);
  about(a, r);
  a->done = &r->done;
  a->worker_id = r->done_worker;
  a->worker_class = r->done_class;
  c->stats.completed++;
  finish(c, r);
}

/* A resubmit of a request the core holds. */
static void resume(core_t *c, req_t *r, uint32_t have, size_t have_len) {
  r->unclaimed = false;
  send_missed(c, r, have, have_len);
  if (r->done_kept)
    send_kept_done(c, r);
}

/* Admission of a submit, or of a resubmit the core did not know, whose
 * client has resume tokens (resume_text) of it. */
static void admit(core_t *c, infs_time_t now, const core_peer_t *client,
                  const core_request_t *in, uint32_t resume,
                  const char *resume_text, size_t resume_len) {
  core_request_t s = *in;
  char why[CORE_MESSAGE_MAX];
  if (!s.model)
    s.model = "";
  if (s.prompt_tokens == 0 && s.prompt_len > 0)
    s.prompt_tokens = (uint32_t)(s.prompt_len / 4 + 1);
  if (!valid_request(c, &s, why, sizeof why)) {
    core_action_t *a =
        emit_error(c, CORE_ACT_ERROR, client, s.id,
                   INFS_WIRE_BADREQUEST, "%s", why);
    a->cls = (unsigned)s.cls < INFS_CLASS_COUNT ? s.cls : INFS_CLASS_COUNT;
    a->arrived = now;
    c->stats.rejected++;
    return;
  }
  int code = unservable(c, &s, why, sizeof why);
  if (code) {
    core_action_t *a =
        emit_error(c, CORE_ACT_ERROR, client, s.id, code, "%s", why);
    a->cls = s.cls;
    a->arrived = now;
    c->stats.rejected++;
    if (code == INFS_WIRE_NOWORKER)
      c->stats.rejected_no_worker++;
    else
      c->stats.rejected_context++;
    return;
  }
  /* A TTFT target of the request's own is absolute unless it brings an
   * allowance too. */
  if (!s.ttft_ms) {
    s.ttft_ms = c->cfg.slo[s.cls].ttft_ms;
    s.ttft_ms_per_ktok = c->cfg.slo[s.cls].ttft_ms_per_ktok;
  }
  if (!s.tpot_ms)
    s.tpot_ms = c->cfg.slo[s.cls].tpot_ms;
  if (c->reqs.bytes + requests_size(&s) > c->cfg.max_open_bytes) {
    core_action_t *a = emit_error(
        c, CORE_ACT_ERROR, client, s.id,
        INFS_WIRE_QUEUEFULL,
        "open requests hold %zu MiB of prompts (at most %zu MiB)",
        c->reqs.bytes >> 20, c->cfg.max_open_bytes >> 20);
    a->cls = s.cls;
    a->arrived = now;
    c->stats.rejected++;
    c->stats.rejected_queue_full++;
    return;
  }
  req_t *r = requests_add(&c->reqs, client, &s, now);
  if (!r) {
    emit_error(c, CORE_ACT_ERROR, client, s.id,
               INFS_WIRE_DUPLICATE,
               "request id %llu is already open", (unsigned long long)s.id);
    return;
  }
  c->stats.submitted++;
  if (resume) {
    r->tokens_out = resume;
    requests_said(&c->reqs, r, resume_text, resume_len);
    c->stats.resubmitted++;
    if (resume >= s.max_tokens) {
      /* It has every token; only the Done was lost with the scheduler. */
      r->done = (core_done_t){.prompt_tokens = s.prompt_tokens,
                              .generated_tokens = resume};
      send_kept_done(c, r);
      return;
    }
  }
  /* With nothing queued ahead, r is tried now and, failing, heads its
   * queue with the reason noted; nothing else has changed, so the other
   * queues need no retry. */
  bool tried = !queued_ahead(c, s.cls);
  if (tried && place(c, r, now)) {
    /* The client hears Accepted before any chunk: chunks come from the
     * worker, after this outbox is flushed. */
    emit(c, CORE_ACT_ACCEPTED, client, s.id);
    return;
  }
  if (c->queued[s.cls] >= c->cfg.queue_limit[s.cls]) {
    snprintf(why, sizeof why, "%s queue is full (%u requests)",
             infs_class_name(s.cls), c->cfg.queue_limit[s.cls]);
    fail(c, r, INFS_WIRE_QUEUEFULL, why);
    return;
  }
  emit(c, CORE_ACT_ACCEPTED, client, s.id);
  enqueue(c, r, false);
  if (tried)
    note_head_failed(c, s.cls, r);
  else
    drain_queues(c, now, true);
}

void core_on_submit(core_t *c, infs_time_t now, const core_peer_t *client,
                    const core_request_t *in) {
  admit(c, now, client, in, 0, NULL, 0);
}

void core_on_resubmit(core_t *c, infs_time_t now, const core_peer_t *client,
                      const core_request_t *in, uint32_t resume_tokens,
                      const char *resume_text, size_t resume_len) {
  req_t *r = requests_by_client(&c->reqs, client, in->id);
  if (r) {
    resume(c, r, resume_tokens, resume_len);
    return;
  }
  admit(c, now, client, in, resume_tokens, resume_text, resume_len);
}

void core_on_cancel(core_t *c, infs_time_t now, const core_peer_t *client,
                    uint64_t request_id) {
  req_t *r = requests_by_client(&c->reqs, client, request_id);
  /* Unknown ids are ignored: the request may have just ended, and its
   * client must not get a second terminal answer. */
  if (!r)
    return;
  core_worker_t *w = worker_of(c, r);
  if (w)
    emit(c, CORE_ACT_CANCEL, &w->peer, r->id);
  about(emit_error(c, CORE_ACT_ERROR, client, request_id,
                   INFS_WIRE_CANCELLED,
                   "cancelled by client"),
        r);
  c->stats.cancelled++;
  finish(c, r);
  if (w)
    drain_queues(c, now, true);
}

/* --- worker events --- */

/* Whether r, taken from its worker, may run again: attempts are left and
 * a token is still owed (with every token out only the Done was missing,
 * and no worker makes one without generating). */
static bool may_run_again(const core_t *c, const req_t *r) {
  return r->attempts < c->cfg.max_attempts &&
         r->tokens_out < r->spec.max_tokens;
}

/* Queues r at the front to run again: before its first token as a new
 * dispatch, after it as a migration that continues its stream. */
static void requeue(core_t *c, req_t *r) {
  /* A split that broke off runs whole from where its stream is: a prefill
   * worker's KV is no use to the next one. */
  release_kv(c, r);
  r->phase = INFS_PHASE_FULL;
  r->decode_worker = -1;
  if (r->tokens_out > 0)
    c->stats.migrated++;
  enqueue(c, r, true);
  c->stats.redispatched++;
}

static void lose_worker(core_t *c, core_worker_t *w, const char *why) {
  char msg[CORE_MESSAGE_MAX];
  /* Walk backwards so re-queued requests keep their order at the front. */
  while (!list_empty(&w->reqs)) {
    req_t *r = list_entry(w->reqs.prev, req_t, link);
    list_remove(&r->link);
    registry_hot(&c->reg, w)->outstanding--;
    r->worker = -1;
    if (may_run_again(c, r)) {
      requeue(c, r);
      continue;
    }
    snprintf(msg, sizeof msg, "worker %s lost (%s) after %u tokens", w->id, why,
             r->tokens_out);
    r->state = REQ_STREAMING;
    fail(c, r, INFS_WIRE_WORKERLOST, msg);
  }
  prefix_clear(&c->prefix, w->index);
  registry_remove(&c->reg, w);
  c->stats.workers_lost++;
}

/* Names go into logs and answers: printable ASCII only, so that none can
 * forge a log line or a header. */
static bool printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
      return false;
  return true;
}

static int valid_info(const core_worker_info_t *in, char *why, size_t len) {
  const infs_profile_t *p = in->profile;
  const char *field;
  char bad[96];
  /* A Profile from the wire may leave max_num_batched_tokens 0: the
   * default, as the predictor takes it. */
  infs_profile_t checked = p ? *p : (infs_profile_t){0};
  if (!checked.max_num_batched_tokens)
    checked.max_num_batched_tokens = INFS_PROFILE_DEFAULT_BATCHED_TOKENS;
  if (!in->worker_id || !in->worker_id[0])
    snprintf(why, len, "register: worker_id is empty");
  else if (strlen(in->worker_id) >= INFS_NAME_MAX)
    snprintf(why, len, "register: worker_id longer than %d bytes",
             INFS_NAME_MAX - 1);
  else if (!printable(in->worker_id) || (in->model && !printable(in->model)) ||
           (in->backend && !printable(in->backend)))
    snprintf(why, len,
             "register: worker_id, model and backend must be printable ASCII");
  else if (in->model && strlen(in->model) >= INFS_NAME_MAX)
    snprintf(why, len, "register: model longer than %d bytes",
             INFS_NAME_MAX - 1);
  else if ((unsigned)in->role >= INFS_ROLE_COUNT)
    snprintf(why, len, "register: unknown role %d", (int)in->role);
  else if (in->capacity == 0 || in->capacity > CORE_CAPACITY_MAX)
    snprintf(why, len, "register: capacity must be 1 to %u, got %u",
             CORE_CAPACITY_MAX, in->capacity);
  else if (in->key && (!in->key[0] || strlen(in->key) >= CORE_KEY_MAX))
    snprintf(why, len, "register: a key must be 1 to %d characters",
             CORE_KEY_MAX - 1);
  else if (!p)
    snprintf(why, len, "register: no profile");
  else if (!printable(p->name))
    snprintf(why, len, "register: profile name must be printable ASCII");
  else if (profile_validate(&checked, &field, bad, sizeof bad))
    snprintf(why, len, "register: profile '%s': %s %s", p->name, field, bad);
  else
    return 0;
  return -1;
}

/* Takes over the requests w kept running without a scheduler (see
 * core_on_register), noting the adoptions for the REGISTERED action and
 * cancelling on w those the core knows already or cannot take. */
static void adopt(core_t *c, infs_time_t now, core_worker_t *w,
                  const core_held_t *held, size_t n) {
  char why[CORE_MESSAGE_MAX];
  c->n_adopted = 0;
  if (n > c->adopted_cap) {
    c->adopted_from = xrealloc(c->adopted_from, n * sizeof *c->adopted_from);
    c->adopted_as = xrealloc(c->adopted_as, n * sizeof *c->adopted_as);
    c->adopted_cap = n;
  }
  for (size_t i = 0; i < n; i++) {
    const core_held_t *h = &held[i];
    core_request_t s = h->spec;
    req_t *r = NULL;
    if (!s.model)
      s.model = "";
    if (!requests_by_client(&c->reqs, &h->client, s.id) &&
        valid_request(c, &s, why, sizeof why) &&
        h->tokens <= s.max_tokens &&
        registry_hot(&c->reg, w)->outstanding <
            registry_hot(&c->reg, w)->capacity)
      r = requests_add(&c->reqs, &h->client, &s, now);
    if (!r) {
      emit(c, CORE_ACT_CANCEL, &w->peer, h->id);
      continue;
    }
    r->tokens_out = h->tokens;
    requests_said(&c->reqs, r, h->text, h->text_len);
    r->unclaimed = true;
    r->claim_deadline = now + c->cfg.queue_timeout;
    assign(c, r, w, now, (uint64_t)s.prompt_tokens + h->tokens, NAN);
    if (h->tokens > 0)
      r->state = REQ_STREAMING;
    c->adopted_from[c->n_adopted] = h->id;
    c->adopted_as[c->n_adopted++] = r->id;
    c->stats.submitted++;
    c->stats.adopted++;
  }
}

/* Whether info describes w as it registered. */
static bool same_registration(const core_t *c, const core_worker_t *w,
                              const core_worker_info_t *info) {
  return strcmp(w->id, info->worker_id) == 0 &&
         strcmp(w->model, info->model ? info->model : "") == 0 &&
         strcmp(w->profile.name, info->profile->name) == 0 &&
         registry_hot(&c->reg, w)->capacity == info->capacity &&
         w->role == info->role;
}

void core_on_register(core_t *c, infs_time_t now, const core_peer_t *peer,
                      const core_worker_info_t *info) {
  char why[CORE_MESSAGE_MAX];
  if (valid_info(info, why, sizeof why)) {
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0,
               INFS_WIRE_BADREQUEST, "%s", why);
    return;
  }
  core_worker_info_t trusted = *info;
  bool differs = false;
  if (c->cfg.profiles) {
    trusted.profile = profile_set_find(c->cfg.profiles, info->profile->name);
    if (!trusted.profile) {
      emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0,
                 INFS_WIRE_BADREQUEST,
                 "register: profile '%s' is not in the scheduler's profiles "
                 "file",
                 info->profile->name);
      return;
    }
    differs = !profile_equal(trusted.profile, info->profile);
  }
  info = &trusted;
  /* An authenticated id belongs to the key that first registered it: an
   * impostor with a key of the pool still cannot take a worker's id, even
   * a dead worker's. */
  const char *bound =
      info->key ? registry_bound_key(&c->reg, info->worker_id) : NULL;
  if (bound && strcmp(bound, info->key) != 0) {
    c->stats.id_key_refused++;
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0, INFS_WIRE_BADREQUEST,
               "register: worker id '%s' is bound to another key",
               info->worker_id);
    return;
  }
  if (info->key && !bound && c->reg.n_bindings == CORE_KEY_BINDINGS_MAX) {
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0, INFS_WIRE_BADREQUEST,
               "register: %u worker ids are bound to keys already",
               CORE_KEY_BINDINGS_MAX);
    return;
  }
  /* The id is also held by the connection that registered it while that
   * one is heard from, so that another cannot take it over; a restarted
   * worker gets it once the old connection has been silent for
   * CORE_ID_HOLD_INTERVALS heartbeats. */
  core_worker_t *holder = registry_find_id(&c->reg, info->worker_id);
  if (holder && !peer_equal(&holder->peer, peer) &&
      now < holder->last_seen +
                CORE_ID_HOLD_INTERVALS * c->cfg.heartbeat_interval) {
    c->stats.id_takeovers_refused++;
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0,
               INFS_WIRE_BADREQUEST,
               "register: worker id '%s' is held by a live connection",
               info->worker_id);
    return;
  }
  core_worker_t *old = registry_find_peer(&c->reg, peer);
  if (old && same_registration(c, old, info)) {
    /* A Register repeated before the first was answered: a worker started
     * before its scheduler has queued one a second, and they all arrive
     * at once. Answer it again; the worker and its requests stay. */
    emit(c, CORE_ACT_REGISTERED, &old->peer, 0);
    return;
  }
  if (old)
    lose_worker(c, old, "registered again");
  old = registry_find_id(&c->reg, info->worker_id);
  if (old)
    lose_worker(c, old, "replaced by a new registration");
  core_worker_t *w = registry_add(&c->reg, peer, info, now);
  if (!w) {
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0,
               INFS_WIRE_BADREQUEST,
               "register: too many distinct model names");
    return;
  }
  w->load.unhealthy = info->unhealthy;
  w->load.draining = info->draining;
  if (info->key && !bound)
    (void)registry_bind(&c->reg, info->worker_id, info->key);
  prefix_reserve_workers(&c->prefix, c->reg.cap);
  c->room_events++;
  c->stats.registrations++;
  c->stats.profile_mismatches += differs;
  adopt(c, now, w, info->held, info->n_held);
  core_action_t *a = emit(c, CORE_ACT_REGISTERED, &w->peer, 0);
  a->adopted_from = c->adopted_from;
  a->adopted_as = c->adopted_as;
  a->n_adopted = c->n_adopted;
  if (differs)
    snprintf(a->message, sizeof a->message,
             "its figures of profile '%s' differ from the scheduler's, "
             "which are used",
             info->profile->name);
  drain_queues(c, now, false);
}

static core_worker_t *known_worker(core_t *c, infs_time_t now,
                                   const core_peer_t *peer) {
  core_worker_t *w = registry_find_peer(&c->reg, peer);
  if (!w) {
    c->stats.unknown_worker_messages++;
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0,
               INFS_WIRE_UNKNOWNWORKER,
               "unknown worker: register first");
    return NULL;
  }
  w->last_seen = now;
  return w;
}

/* How many hashes ahead update_cache fetches their index slots. */
#define CACHE_AHEAD 8

/* Applies the worker's prefix-cache changes to the index. */
static void update_cache(core_t *c, core_worker_t *w, const core_load_t *l) {
  if (l->cache_reset)
    prefix_clear(&c->prefix, w->index);
  const uint64_t *rm = l->cache_removed, *add = l->cache_added;
  size_t n_rm = l->n_cache_removed, n_add = l->n_cache_added;
  for (size_t i = 0; i < n_rm + n_add && i < CACHE_AHEAD; i++)
    prefix_prefetch(&c->prefix, i < n_rm ? rm[i] : add[i - n_rm]);
  for (size_t i = 0; i < n_rm; i++) {
    size_t ahead = i + CACHE_AHEAD;
    if (ahead < n_rm + n_add)
      prefix_prefetch(&c->prefix, ahead < n_rm ? rm[ahead] : add[ahead - n_rm]);
    prefix_remove(&c->prefix, w->index, rm[i]);
  }
  for (size_t i = 0; i < n_add; i++) {
    if (i + CACHE_AHEAD < n_add)
      prefix_prefetch(&c->prefix, add[i + CACHE_AHEAD]);
    if (prefix_add(&c->prefix, w->index, add[i],
                   profile_kv_blocks(&w->profile)) < 0)
      c->stats.cache_adds_dropped++;
  }
}

static bool valid_load(const core_load_t *l, char *why, size_t len) {
  if (!(isfinite(l->tokens_per_s) && l->tokens_per_s >= 0 &&
        isfinite(l->cost_usd) && l->cost_usd >= 0 && isfinite(l->busy_s) &&
        l->busy_s >= 0 && isfinite(l->up_s) && l->up_s >= 0))
    snprintf(why, len,
             "heartbeat: tokens_per_s, cost_usd, busy_s and up_s must be "
             "finite and >= 0");
  else if (l->queued > CORE_LOAD_COUNT_MAX || l->running > CORE_LOAD_COUNT_MAX)
    snprintf(why, len, "heartbeat: queued and running must be at most %u",
             CORE_LOAD_COUNT_MAX);
  else if (l->kv_total > CORE_LOAD_TOKENS_MAX ||
           l->kv_used > CORE_LOAD_TOKENS_MAX ||
           l->prefill_backlog_tokens > CORE_LOAD_TOKENS_MAX)
    snprintf(why, len,
             "heartbeat: kv_used, kv_total and prefill_backlog_tokens must "
             "be at most %llu",
             (unsigned long long)CORE_LOAD_TOKENS_MAX);
  else
    return true;
  return false;
}

void core_on_heartbeat(core_t *c, infs_time_t now, const core_peer_t *peer,
                       const core_load_t *load) {
  core_worker_t *w = known_worker(c, now, peer);
  if (!w)
    return;
  char why[CORE_MESSAGE_MAX];
  if (!valid_load(load, why, sizeof why)) {
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0,
               INFS_WIRE_BADREQUEST, "%s", why);
    return;
  }
  update_cache(c, w, load);
  /* Healthy again, or its breaker's back-off over: room for the queues. */
  if ((w->load.unhealthy && !load->unhealthy) ||
      (w->breaker_until && now >= w->breaker_until)) {
    w->breaker_until = 0;
    c->room_events++;
  }
  w->load = *load;
  w->load.cache_added = w->load.cache_removed = NULL;
  w->load.n_cache_added = w->load.n_cache_removed = 0;
  w->load.cache_reset = false;
  /* The heartbeat now covers what was dispatched before it. */
  w->since = (predictor_since_t){0, 0, 0};
  predictor_rate_add(&c->beat_decay, &w->prefill_rate, &w->prefill_rate_at, now,
                     0);
  drain_queues(c, now, true);
}

void core_on_worker_seen(core_t *c, infs_time_t now, const core_peer_t *peer) {
  known_worker(c, now, peer);
}

/* The open request id running on w, or NULL for a stale message. */
static req_t *running_on(core_t *c, const core_worker_t *w, uint64_t id) {
  req_t *r = requests_get(&c->reqs, id);
  if (!r || r->worker != (int32_t)w->index) {
    c->stats.stale_messages++;
    return NULL;
  }
  return r;
}

void core_on_chunk(core_t *c, infs_time_t now, const core_peer_t *peer,
                   uint64_t request_id, uint32_t tokens, const char *text,
                   size_t text_len, const void *passthrough) {
  core_on_chunk_parts(c, now, peer, request_id, tokens, text, text_len, 0,
                      passthrough);
}

/* Whether a chunk would take r past what it may keep: what, and how much
 * a token, for the reason. */
static bool chunk_too_big(const req_t *r, size_t text_len, size_t extra_len,
                          const char **what, uint32_t *per_token) {
  uint64_t tokens = r->spec.max_tokens;
  if (r->said.len + text_len > tokens * CORE_TOKEN_BYTES_MAX) {
    *what = "text";
    *per_token = CORE_TOKEN_BYTES_MAX;
    return true;
  }
  if (r->extra_bytes + extra_len > tokens * CORE_TOKEN_EXTRA_BYTES_MAX) {
    *what = "tool calls and log probabilities";
    *per_token = CORE_TOKEN_EXTRA_BYTES_MAX;
    return true;
  }
  return false;
}

void core_on_chunk_parts(core_t *c, infs_time_t now, const core_peer_t *peer,
                         uint64_t request_id, uint32_t tokens,
                         const char *text, size_t text_len, size_t extra_len,
                         const void *passthrough) {
  core_worker_t *w = known_worker(c, now, peer);
  req_t *r = w ? running_on(c, w, request_id) : NULL;
  if (!r)
    return;
  /* The text is kept (for a resume elsewhere, and by the front door for
   * an answer), and so are tool calls and log probabilities for an
   * answer: a worker that sends them without end would hold ever more of
   * the scheduler's memory, which admission alone does not bound. */
  const char *what;
  uint32_t per_token;
  if (chunk_too_big(r, text ? text_len : 0, extra_len, &what, &per_token)) {
    char why[CORE_MESSAGE_MAX];
    snprintf(why, sizeof why,
             "worker %s sent more than %llu bytes of %s, %u bytes a token "
             "of max_tokens",
             w->id, (unsigned long long)r->spec.max_tokens * per_token, what,
             per_token);
    emit(c, CORE_ACT_CANCEL, &w->peer, r->id);
    fail(c, r, INFS_WIRE_BACKEND, why);
    return;
  }
  r->extra_bytes += extra_len;
  bool first = r->state == REQ_DISPATCHED;
  if (first)
    w->since.prefill_tokens -= r->uncached;
  r->state = REQ_STREAMING;
  r->progress_deadline = now + r->progress_window;
  uint32_t left = owed(r);
  uint32_t paid = tokens < left ? tokens : left;
  w->remaining_tokens -=
      paid < w->remaining_tokens ? paid : w->remaining_tokens;
  /* The decode worker has the KV: the prefill worker may free it. */
  if (r->phase == INFS_PHASE_DECODE && r->kv_worker >= 0) {
    release_kv(c, r);
    c->stats.split_decoded++;
  }
  w->since.kv_tokens += tokens;
  bool streamed = r->tokens_out > 0;
  r->tokens_out += tokens;
  if (text)
    requests_said(&c->reqs, r, text, text_len);
  if (r->unclaimed)
    return; /* kept in said; its client is sent it when it claims r */
  core_action_t *a = emit(c, CORE_ACT_CHUNK, &r->client, r->client_id);
  about(a, r);
  a->streamed = streamed;
  a->tokens = tokens;
  a->passthrough = passthrough;
  if (!r->first_token_at)
    r->first_token_at = now;
  r->last_token_at = now;
}

/* The Done of split request r from its decode worker's figures d: the
 * client's view of the whole request, its phases adding up to e2e_us. */
static void split_done(req_t *r, const core_done_t *d) {
  static const core_done_t none;
  if (!d)
    d = &none;
  const core_done_t *p = &r->prefill;
  /* From the first token to the decode's dispatch, on the scheduler's
   * clock: the handoff, counted with the decode. */
  infs_time_t first = r->first_token_at ? r->first_token_at : r->prefilled_at;
  uint64_t handoff = r->dispatched_at > first ? r->dispatched_at - first : 0;
  uint64_t decode = d->e2e_us > d->transfer_us ? d->e2e_us - d->transfer_us
                                               : 0;
  r->done = (core_done_t){
      .prompt_tokens = r->spec.prompt_tokens,
      .cached_tokens = p->cached_tokens,
      .generated_tokens = d->generated_tokens,
      .queue_us = p->queue_us,
      .ttft_us = p->ttft_us,
      .prefill_us = p->prefill_us,
      .transfer_us = d->transfer_us,
      .decode_us = handoff + decode,
      .cost_usd = p->cost_usd + d->cost_usd,
      .prefill_cost_usd = p->cost_usd,
  };
  r->done.e2e_us = r->done.queue_us + r->done.prefill_us +
                   r->done.transfer_us + r->done.decode_us;
}

void core_on_done(core_t *c, infs_time_t now, const core_peer_t *peer,
                  uint64_t request_id, const core_done_t *figures,
                  const void *passthrough) {
  core_worker_t *w = known_worker(c, now, peer);
  req_t *r = w ? running_on(c, w, request_id) : NULL;
  if (!r)
    return;
  if (r->unclaimed) {
    /* Kept until its client claims it, off the worker. */
    r->done = figures ? *figures : (core_done_t){0};
    snprintf(r->done_worker, sizeof r->done_worker, "%s", w->id);
    snprintf(r->done_class, sizeof r->done_class, "%s",
             infs_worker_class_name(w->profile.cls));
    r->done_kept = true;
    unassign(c, w, r);
    list_remove(&r->link);
    r->worker = -1;
    list_push_back(&c->parked, &r->link);
    drain_queues(c, now, true);
    return;
  }
  w->errors_in_row = 0;
  w->breaker_backoff = 0;
  if (r->phase == INFS_PHASE_DECODE && r->kv_worker >= 0) {
    release_kv(c, r);
    c->stats.split_decoded++;
  }
  core_action_t *a = emit(c, CORE_ACT_DONE, &r->client, r->client_id);
  about(a, r);
  if (r->phase == INFS_PHASE_DECODE) {
    split_done(r, figures);
    a->done = &r->done;
    a->worker_id = w->id;
    a->worker_class = infs_worker_class_name(w->profile.cls);
    a->prefill_worker_id = r->prefill_worker;
    a->prefill_worker_class = r->prefill_class;
  } else {
    a->passthrough = passthrough;
  }
  c->stats.completed++;
  finish(c, r);
  drain_queues(c, now, true);
}


/* The decode worker paired with r's prefill, if it can take r now. */
static core_worker_t *paired_decoder(core_t *c, const req_t *r,
                                     infs_time_t now) {
  if (r->decode_worker < 0)
    return NULL;
  core_worker_t *d = c->reg.workers[r->decode_worker];
  const worker_hot_t *h = registry_hot(&c->reg, d);
  uint64_t context = (uint64_t)r->spec.prompt_tokens + r->spec.max_tokens;
  if (!d->live || d->epoch != r->decode_epoch || !routable(d, now) ||
      h->outstanding >= h->capacity ||
      !hot_serves(h, registry_model_id(&c->reg, r->spec.model), context))
    return NULL;
  return d;
}

void core_on_prefilled(core_t *c, infs_time_t now, const core_peer_t *peer,
                       uint64_t request_id, const core_done_t *figures,
                       const infs_kv_handle_t *kv) {
  core_worker_t *w = known_worker(c, now, peer);
  if (!w)
    return;
  req_t *r = running_on(c, w, request_id);
  if (!r || r->phase != INFS_PHASE_PREFILL) {
    /* Nothing waits for that KV (the request ended or was taken back,
     * and was cancelled there) or the dispatch was not a prefill: let the
     * worker free it, unless the id now runs there whole. */
    if (!r)
      emit(c, CORE_ACT_CANCEL, &w->peer, request_id);
    else
      core_on_worker_error(c, now, peer, request_id, INFS_WIRE_BACKEND,
                           "prefilled a request it was to run whole");
    return;
  }
  static const core_done_t none;
  const core_done_t *f = figures ? figures : &none;
  unassign(c, w, r);
  list_remove(&r->link);
  r->worker = -1;
  c->stats.prefilled++;
  r->prefill = *f;
  r->prefill.prefill_us = f->ttft_us > f->queue_us ? f->ttft_us - f->queue_us
                                                   : 0;
  r->prefilled_at = now;
  snprintf(r->prefill_worker, sizeof r->prefill_worker, "%s", w->id);
  snprintf(r->prefill_class, sizeof r->prefill_class, "%s",
           infs_worker_class_name(w->profile.cls));
  /* The scheduler names the holder; the worker says what it holds. */
  r->kv = *kv;
  snprintf(r->kv.source, sizeof r->kv.source, "%s", w->id);
  r->kv.handle_id = r->id;
  buf_reset(&r->kv_params);
  r->kv.params_json = NULL;
  r->kv.params_len = 0;
  if (kv->params_json && kv->params_len) {
    buf_append(&r->kv_params, kv->params_json, kv->params_len);
    r->kv.params_json = r->kv_params.data;
    r->kv.params_len = r->kv_params.len;
  }
  r->kv_worker = (int32_t)w->index;
  r->kv_epoch = w->epoch;
  if (r->tokens_out >= r->spec.max_tokens) {
    /* The first token was the whole answer. */
    r->done = r->prefill;
    r->done.generated_tokens = r->tokens_out;
    r->done.e2e_us = now - r->dispatched_at + f->queue_us;
    core_action_t *a = emit(c, CORE_ACT_DONE, &r->client, r->client_id);
    about(a, r);
    a->done = &r->done;
    a->worker_id = w->id;
    a->worker_class = infs_worker_class_name(w->profile.cls);
    c->stats.completed++;
    finish(c, r);
  } else {
    core_worker_t *d = paired_decoder(c, r, now);
    r->decode_worker = -1;
    if (d) {
      uint32_t cached = 0;
      if (r->spec.n_blocks) {
        prefix_match(&c->prefix, r->spec.blocks, r->spec.n_blocks);
        cached = prefix_depth(&c->prefix, d->index);
      }
      dispatch_decode(c, r, d, now, cached, 0);
    } else {
      /* Its decode worker is gone or full: the next with room takes it,
       * ahead of new work. */
      enqueue(c, r, true);
    }
  }
  drain_queues(c, now, true);
}

/* Counts a backend failure on w; the CORE_BREAKER_ERRORS-th in a row opens
 * its breaker for a back-off that doubles with each opening. */
static void note_backend_error(core_t *c, core_worker_t *w, infs_time_t now) {
  if (++w->errors_in_row < CORE_BREAKER_ERRORS)
    return;
  w->errors_in_row = 0;
  w->breaker_backoff = w->breaker_backoff
                           ? (w->breaker_backoff * 2 < CORE_BREAKER_MAX
                                  ? w->breaker_backoff * 2
                                  : CORE_BREAKER_MAX)
                           : CORE_BREAKER_BASE;
  w->breaker_until = now + w->breaker_backoff;
  c->stats.breaker_opened++;
}

/* Whether a live worker other than w serves r's model and context. */
static bool another_serves(const core_t *c, const req_t *r,
                           const core_worker_t *w) {
  uint16_t model = registry_model_id(&c->reg, r->spec.model);
  uint64_t context = (uint64_t)r->spec.prompt_tokens + r->spec.max_tokens;
  for (size_t i = 0; i < c->reg.len; i++)
    if (i != w->index && c->reg.hot[i].capacity &&
        c->reg.workers[i]->role != INFS_ROLE_PREFILL &&
        hot_serves(&c->reg.hot[i], model, context))
      return true;
  return false;
}

void core_on_worker_error(core_t *c, infs_time_t now, const core_peer_t *peer,
                          uint64_t request_id, int code, const char *message) {
  core_worker_t *w = known_worker(c, now, peer);
  req_t *r = w ? running_on(c, w, request_id) : NULL;
  if (!r)
    return;
  char why[CORE_MESSAGE_MAX];
  snprintf(why, sizeof why, "worker %s: %s", w->id,
           message && message[0] ? message : "request failed");
  if (code == INFS_WIRE_KVTRANSFER && r->phase == INFS_PHASE_DECODE &&
      r->tokens_out == r->dispatch_tokens && may_run_again(c, r)) {
    /* The decode worker could not pull the KV: the link or the prefill
     * worker failed, not it. It runs whole, on one worker. */
    c->stats.kv_fallbacks++;
    unassign(c, w, r);
    list_remove(&r->link);
    r->whole = true;
    requeue(c, r);
    drain_queues(c, now, true);
    return;
  }
  /* A worker speaks only for its backend: codes that mean something else
   * to the client (a cancel, a duplicate, the scheduler's rejections) are
   * not its to give. A bad request is: its backend cannot honour a field. */
  if (code != INFS_WIRE_UPSTREAMTIMEOUT &&
      code != INFS_WIRE_CONTEXT &&
      code != INFS_WIRE_BADREQUEST)
    code = INFS_WIRE_BACKEND;
  if (code == INFS_WIRE_BACKEND || code == INFS_WIRE_UPSTREAMTIMEOUT)
    note_backend_error(c, w, now);
  /* One half of a split that failed before the handoff, or before the
   * decode worker streamed: whatever the reason (its backend may not run
   * phases at all), the request can run whole without the client
   * knowing. */
  bool half = (r->phase == INFS_PHASE_PREFILL ||
               (r->phase == INFS_PHASE_DECODE &&
                r->tokens_out == r->dispatch_tokens));
  if (half && code == INFS_WIRE_BADREQUEST)
    r->whole = true;
  /* Failed before its first token, by the worker rather than the request:
   * another worker may serve it, and the client never knows. */
  if ((half || (code != INFS_WIRE_BADREQUEST && code != INFS_WIRE_CONTEXT &&
                r->tokens_out == 0)) &&
      may_run_again(c, r) && another_serves(c, r, w)) {
    unassign(c, w, r);
    list_remove(&r->link);
    r->shunned = (int32_t)w->index;
    r->shunned_epoch = w->epoch;
    requeue(c, r);
  } else {
    fail(c, r, code, why);
  }
  drain_queues(c, now, true);
}

/* --- timers --- */

/* Drops an adopted request no client claimed: its client is gone (an HTTP
 * caller, or one that did not come back), and nobody is there to answer. */
static void abandon(core_t *c, req_t *r) {
  core_worker_t *w = worker_of(c, r);
  if (w)
    emit(c, CORE_ACT_CANCEL, &w->peer, r->id);
  c->stats.abandoned++;
  finish(c, r);
}

/* Takes r back from w, which let its progress deadline pass: a cancel to
 * w, then r is dispatched again (never to w) if attempts are left, from
 * where its stream stopped, else failed. */
static void take_back(core_t *c, core_worker_t *w, req_t *r, infs_time_t now) {
  char why[CORE_MESSAGE_MAX];
  c->stats.progress_timeouts++;
  emit(c, CORE_ACT_CANCEL, &w->peer, r->id);
  if (may_run_again(c, r)) {
    unassign(c, w, r);
    list_remove(&r->link);
    r->shunned = (int32_t)w->index;
    r->shunned_epoch = w->epoch;
    requeue(c, r);
    return;
  }
  snprintf(why, sizeof why,
           "worker %s made no progress in %llu ms after %u tokens", w->id,
           (unsigned long long)((now - r->progress_deadline +
                                 r->progress_window) /
                                INFS_US_PER_MS),
           r->tokens_out);
  fail(c, r, INFS_WIRE_WORKERLOST, why);
}

/* --- workers that do not serve --- */

/* The workers that could ever run a request of model m (prefill-only ones
 * never finish one), and of them those not serving now. */
typedef struct serving {
  uint32_t workers;
  uint32_t unhealthy;
  uint32_t draining; /* and healthy */
} serving_t;

static serving_t serving_of(const core_t *c, uint16_t m) {
  serving_t s = {0, 0, 0};
  for (size_t i = 0; i < c->reg.len; i++) {
    const core_worker_t *w = c->reg.workers[i];
    if (!c->reg.hot[i].capacity || !hot_serves(&c->reg.hot[i], m, 0) ||
        w->role == INFS_ROLE_PREFILL)
      continue;
    s.workers++;
    if (w->load.unhealthy)
      s.unhealthy++;
    else if (w->load.draining)
      s.draining++;
  }
  return s;
}

static bool stranded(const serving_t *s) {
  return s->workers && s->unhealthy + s->draining == s->workers;
}

static infs_time_t *stranded_slot(core_t *c, uint16_t m) {
  return m == REGISTRY_NO_MODEL ? &c->stranded_unnamed
                                : &c->stranded_since[m];
}

/* Notes since when each model has had no serving worker, and rejects the
 * queued requests of those that have had none for the grace, counted from
 * the request's arrival when it came later: a worker that recovers (its
 * upstream back, a replacement registered) within the grace takes them. A
 * breaker's back-off is not counted: it ends on its own. */
static void reject_stranded(core_t *c, infs_time_t now) {
  infs_time_t grace = c->cfg.heartbeat_interval * c->cfg.heartbeat_miss;
  bool any = false;
  if (c->stranded_cap < c->reg.n_models) {
    c->stranded_since = xreallocarray(c->stranded_since, c->reg.n_models,
                                      sizeof *c->stranded_since);
    memset(c->stranded_since + c->stranded_cap, 0,
           (c->reg.n_models - c->stranded_cap) * sizeof *c->stranded_since);
    c->stranded_cap = c->reg.n_models;
  }
  for (size_t m = 0; m <= c->reg.n_models; m++) {
    uint16_t id = m < c->reg.n_models ? (uint16_t)m : REGISTRY_NO_MODEL;
    infs_time_t *since = stranded_slot(c, id);
    serving_t s = serving_of(c, id);
    if (!stranded(&s)) {
      *since = 0;
      continue;
    }
    if (!*since)
      *since = now;
    any = true;
  }
  if (!any)
    return;
  char why[CORE_MESSAGE_MAX];
  for (int cls = 0; cls < INFS_CLASS_COUNT; cls++) {
    for (list_node_t *n = c->queue[cls].next; n != &c->queue[cls];) {
      req_t *r = list_entry(n, req_t, link);
      n = n->next;
      uint16_t id = registry_model_id(&c->reg, r->spec.model);
      infs_time_t since = *stranded_slot(c, id);
      if (!since || now - (r->arrived > since ? r->arrived : since) < grace)
        continue;
      serving_t s = serving_of(c, id);
      snprintf(why, sizeof why,
               "no worker serving model '%s' can take it: %u unhealthy, %u "
               "draining, none serving for %llu ms",
               r->spec.model, s.unhealthy, s.draining,
               (unsigned long long)((now - since) / INFS_US_PER_MS));
      fail(c, r, INFS_WIRE_UNAVAILABLE, why);
    }
  }
}

void core_on_tick(core_t *c, infs_time_t now) {
  /* A check more than a heartbeat interval late: the scheduler itself was
   * not running (stopped, or starved of CPU), and what its workers sent
   * meanwhile waits unread. It is read before the next check, which
   * judges them; this one would take live workers for lost. Only one in a
   * row is put off, so that a scheduler late at every turn still judges. */
  if (now >= c->next_check &&
      now - c->next_check > c->cfg.heartbeat_interval && !c->put_off) {
    c->put_off = true;
    c->next_check = now + c->cfg.heartbeat_interval / 2;
  }
  if (now >= c->next_check) {
    c->put_off = false;
    infs_time_t silence = c->cfg.heartbeat_interval * c->cfg.heartbeat_miss;
    for (size_t i = 0; i < c->reg.len; i++) {
      core_worker_t *w = c->reg.workers[i];
      if (w->live && now - w->last_seen > silence) {
        /* Told to the worker, should it hear, and logged by the shell. */
        emit_error(c, CORE_ACT_WORKER_ERROR, &w->peer, 0, INFS_WIRE_WORKERLOST,
                   "worker %s lost: no heartbeat for %llu ms, %u requests "
                   "open on it",
                   w->id,
                   (unsigned long long)((now - w->last_seen) / INFS_US_PER_MS),
                   registry_hot(&c->reg, w)->outstanding);
        lose_worker(c, w, "no heartbeat");
      }
      /* Requests are checked at this cadence too: a deadline is seconds
       * long, half a heartbeat interval late is close enough. */
      for (list_node_t *n = w->live ? w->reqs.next : NULL; n && n != &w->reqs;) {
        req_t *r = list_entry(n, req_t, link);
        n = n->next;
        if (r->unclaimed && now > r->claim_deadline)
          abandon(c, r);
        else if (now > r->progress_deadline)
          take_back(c, w, r, now);
      }
    }
    for (list_node_t *n = c->parked.next; n != &c->parked;) {
      req_t *r = list_entry(n, req_t, link);
      n = n->next;
      if (now > r->claim_deadline)
        abandon(c, r);
    }
    reject_stranded(c, now);
    c->next_check = now + c->cfg.heartbeat_interval / 2;
  }
  char why[CORE_MESSAGE_MAX];
  for (int cls = 0; cls < INFS_CLASS_COUNT; cls++) {
    while (!list_empty(&c->queue[cls])) {
      req_t *r = list_entry(c->queue[cls].next, req_t, link);
      if (r->arrived + c->cfg.queue_timeout > now)
        break;
      snprintf(why, sizeof why, "no capacity within %llu ms",
               (unsigned long long)(c->cfg.queue_timeout / INFS_US_PER_MS));
      fail(c, r, INFS_WIRE_QUEUETIMEOUT, why);
    }
  }
  drain_queues(c, now, false);
}

infs_time_t core_next_deadline(const core_t *c) {
  infs_time_t t = c->reg.live || !list_empty(&c->parked) ? c->next_check
                                                         : INFS_TIME_NEVER;
  for (int cls = 0; cls < INFS_CLASS_COUNT; cls++) {
    if (list_empty(&c->queue[cls]))
      continue;
    const req_t *r = list_entry(c->queue[cls].next, req_t, link);
    if (r->arrived + c->cfg.queue_timeout < t)
      t = r->arrived + c->cfg.queue_timeout;
  }
  return t;
}

void core_shutdown(core_t *c, infs_time_t now) {
  (void)now;
  while (!list_empty(&c->parked))
    fail(c, list_entry(c->parked.next, req_t, link),
         INFS_WIRE_CANCELLED, "scheduler is shutting down");
  for (int cls = 0; cls < INFS_CLASS_COUNT; cls++)
    while (!list_empty(&c->queue[cls]))
      fail(c, list_entry(c->queue[cls].next, req_t, link),
           INFS_WIRE_SHUTDOWN,
           "scheduler is shutting down");
  for (size_t i = 0; i < c->reg.len; i++) {
    core_worker_t *w = c->reg.workers[i];
    while (w->live && !list_empty(&w->reqs)) {
      req_t *r = list_entry(w->reqs.next, req_t, link);
      emit(c, CORE_ACT_CANCEL, &w->peer, r->id);
      fail(c, r, INFS_WIRE_CANCELLED,
           "scheduler is shutting down");
    }
  }
}

/* --- views --- */

size_t core_worker_count(const core_t *c) {
  return c->reg.live;
}

int core_worker_next(const core_t *c, size_t *cursor, core_worker_view_t *out) {
  for (size_t k = *cursor; k < c->reg.len; k++) {
    const core_worker_t *w = c->reg.workers[k];
    if (!w->live)
      continue;
    *cursor = k + 1;
    out->worker_id = w->id;
    out->model = w->model;
    out->profile = &w->profile;
    out->role = w->role;
    out->outstanding = registry_hot(&c->reg, w)->outstanding;
    out->capacity = registry_hot(&c->reg, w)->capacity;
    out->requests = w->requests;
    out->load = &w->load;
    out->last_seen = w->last_seen;
    out->registered_at = w->registered_at;
    out->cached_blocks = prefix_count(&c->prefix, w->index);
    return 0;
  }
  return -1;
}

size_t core_queued(const core_t *c) {
  return c->queued[0] + c->queued[1] + c->queued[2];
}

infs_time_t core_heartbeat_interval(const core_t *c) {
  return c->cfg.heartbeat_interval;
}

const slo_t *core_class_slo(const core_t *c, infs_class_t cls) {
  return &c->cfg.slo[cls];
}

size_t core_open_requests(const core_t *c) {
  return c->reqs.open;
}
const core_stats_t *core_stats(const core_t *c) {
  return &c->stats;
}
const char *core_policy_name(const core_t *c) {
  return c->policy->name;
}
