/* Event handlers of the scheduling core. Every accepted request leaves the
 * core through exactly one terminal action to its client: DONE, or ERROR
 * (failure, or rejection with a code >= 100). */
#include "scheduler/core/core.h"

#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "scheduler/core/policy.h"

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
  size_t queued[INFS_CLASS_COUNT];
  core_worker_t **cands;               /* scratch for policy picks */
  size_t cands_cap;
  core_action_t *acts;
  size_t n_acts;
  size_t acts_cap;
  core_stats_t stats;
  infs_time_t next_check;              /* next loss check */
};

void core_config_defaults(core_config_t *c) {
  static const uint32_t ttft[INFS_CLASS_COUNT] = {450, 2000, 30000};
  static const uint32_t tpot[INFS_CLASS_COUNT] = {40, 25, 200};
  memset(c, 0, sizeof *c);
  c->policy = "least_loaded";
  c->heartbeat_interval = 200 * INFS_US_PER_MS;
  c->heartbeat_miss = 5;
  c->queue_timeout = 30 * INFS_US_PER_S;
  c->max_attempts = 3;
  for (int i = 0; i < INFS_CLASS_COUNT; i++) {
    c->queue_limit[i] = 10000;
    c->ttft_ms[i] = ttft[i];
    c->tpot_ms[i] = tpot[i];
  }
}

core_t *core_new(const core_config_t *cfg, infs_time_t now, int *err) {
  const policy_ops_t *policy = policy_find(cfg->policy);
  if (!policy) {
    *err = INFS_EUNKNOWN;
    return NULL;
  }
  core_t *c = calloc(1, sizeof *c);
  if (!c)
    abort();
  c->cfg = *cfg;
  c->policy = policy;
  if (policy->create && policy->create(&c->policy_state) != 0) {
    free(c);
    *err = -12; /* -ENOMEM */
    return NULL;
  }
  c->cfg.policy = policy->name;
  requests_init(&c->reqs);
  registry_init(&c->reg);
  for (int i = 0; i < INFS_CLASS_COUNT; i++)
    list_init(&c->queue[i]);
  c->next_check = now + c->cfg.heartbeat_interval;
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
  free(c->cands);
  free(c->acts);
  free(c);
  *pc = NULL;
}

/* --- outbox --- */

static core_action_t *emit(core_t *c, core_action_kind_t kind,
                           const core_peer_t *to, uint64_t request_id) {
  if (c->n_acts == c->acts_cap) {
    size_t cap = c->acts_cap ? c->acts_cap * 2 : 64;
    core_action_t *a = realloc(c->acts, cap * sizeof *a);
    if (!a)
      abort();
    c->acts = a;
    c->acts_cap = cap;
  }
  core_action_t *a = &c->acts[c->n_acts++];
  a->kind = kind;
  a->request_id = request_id;
  a->code = 0;
  a->message[0] = '\0';
  a->request = NULL;
  a->passthrough = NULL;
  a->peer.len = to->len;
  memcpy(a->peer.id, to->id, to->len);
  return a;
}

static void emit_error(core_t *c, core_action_kind_t kind,
                       const core_peer_t *to, uint64_t request_id, int code,
                       const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void emit_error(core_t *c, core_action_kind_t kind,
                       const core_peer_t *to, uint64_t request_id, int code,
                       const char *fmt, ...) {
  core_action_t *a = emit(c, kind, to, request_id);
  a->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->message, sizeof a->message, fmt, ap);
  va_end(ap);
}

const core_action_t *core_actions(const core_t *c, size_t *n) {
  *n = c->n_acts;
  return c->acts;
}

void core_actions_clear(core_t *c) { c->n_acts = 0; }

/* --- request lifecycle --- */

static core_worker_t *worker_of(const core_t *c, const req_t *r) {
  return r->worker >= 0 ? c->reg.workers[r->worker] : NULL;
}

/* Releases a request after its terminal answer has been emitted. */
static void finish(core_t *c, req_t *r) {
  core_worker_t *w = worker_of(c, r);
  if (w)
    w->outstanding--;
  else if (r->state == REQ_QUEUED && !list_empty(&r->link))
    c->queued[r->spec.cls]--;
  requests_remove(&c->reqs, r);
}

static void fail(core_t *c, req_t *r, int code, const char *why) {
  emit_error(c, CORE_ACT_ERROR, &r->client, r->client_id, code, "%s", why);
  if (code >= INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_FULL)
    c->stats.rejected++;
  else
    c->stats.failed++;
  finish(c, r);
}

static bool serves(const core_worker_t *w, const core_request_t *s) {
  if (s->model[0] && w->model[0] && strcmp(s->model, w->model) != 0)
    return false;
  return (uint64_t)s->prompt_tokens + s->max_tokens <= w->profile.max_context;
}

static void dispatch(core_t *c, req_t *r, core_worker_t *w, infs_time_t now) {
  if (r->state == REQ_QUEUED && !list_empty(&r->link)) {
    list_remove(&r->link);
    c->queued[r->spec.cls]--;
  }
  r->state = REQ_DISPATCHED;
  r->worker = (int32_t)w->index;
  r->attempts++;
  r->dispatched_at = now;
  list_push_back(&w->reqs, &r->link);
  w->outstanding++;
  w->requests++;
  c->stats.dispatched++;
  core_action_t *a = emit(c, CORE_ACT_DISPATCH, &w->peer, r->id);
  a->request = &r->spec;
}

/* Asks the policy for a worker with room; false leaves r where it is. */
static bool place(core_t *c, req_t *r, infs_time_t now) {
  if (c->cands_cap < c->reg.len) {
    c->cands_cap = c->reg.cap;
    c->cands = realloc(c->cands, c->cands_cap * sizeof *c->cands);
    if (!c->cands)
      abort();
  }
  size_t n = 0;
  for (size_t i = 0; i < c->reg.len; i++) {
    core_worker_t *w = c->reg.workers[i];
    if (w->live && w->outstanding < w->capacity && serves(w, &r->spec))
      c->cands[n++] = w;
  }
  if (n == 0)
    return false;
  int pick = c->policy->pick(c->policy_state, r, c->cands, n, now);
  if (pick < 0 || (size_t)pick >= n)
    return false;
  dispatch(c, r, c->cands[pick], now);
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

/* Dispatches queued requests while workers have room, interactive first. */
static void drain_queues(core_t *c, infs_time_t now) {
  for (int cls = 0; cls < INFS_CLASS_COUNT; cls++) {
    while (!list_empty(&c->queue[cls])) {
      req_t *r = list_entry(c->queue[cls].next, req_t, link);
      if (!place(c, r, now))
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
  bool model_seen = false;
  uint32_t largest = 0;
  for (size_t i = 0; i < c->reg.len; i++) {
    const core_worker_t *w = c->reg.workers[i];
    if (!w->live)
      continue;
    if (serves(w, s))
      return 0;
    if (!s->model[0] || !w->model[0] || strcmp(s->model, w->model) == 0) {
      model_seen = true;
      if (w->profile.max_context > largest)
        largest = w->profile.max_context;
    }
  }
  if (!model_seen) {
    snprintf(why, len, "no registered worker serves model '%s'", s->model);
    return INFSCHED__ERROR_CODE__ERROR_REJECTED_NO_WORKER;
  }
  snprintf(why, len,
           "prompt of %u tokens plus %u output tokens exceeds every "
           "worker's max context (largest %u)",
           s->prompt_tokens, s->max_tokens, largest);
  return INFSCHED__ERROR_CODE__ERROR_REJECTED_CONTEXT;
}

/* --- client events --- */

void core_on_submit(core_t *c, infs_time_t now, const core_peer_t *client,
                    const core_request_t *in) {
  core_request_t s = *in;
  char why[CORE_MESSAGE_MAX];
  if (!s.model)
    s.model = "";
  if (s.prompt_tokens == 0 && s.prompt_len > 0)
    s.prompt_tokens = (uint32_t)(s.prompt_len / 4 + 1);
  if (s.prompt_tokens == 0 || s.max_tokens == 0 ||
      (unsigned)s.cls >= INFS_CLASS_COUNT) {
    emit_error(c, CORE_ACT_ERROR, client, s.id,
               INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST,
               "request needs a prompt, max_tokens >= 1 and a valid class");
    c->stats.rejected++;
    return;
  }
  if (requests_by_client(&c->reqs, client, s.id)) {
    emit_error(c, CORE_ACT_ERROR, client, s.id,
               INFSCHED__ERROR_CODE__ERROR_DUPLICATE,
               "request id %llu is already open", (unsigned long long)s.id);
    return;
  }
  int code = unservable(c, &s, why, sizeof why);
  if (code) {
    emit_error(c, CORE_ACT_ERROR, client, s.id, code, "%s", why);
    c->stats.rejected++;
    return;
  }
  if (!s.ttft_ms)
    s.ttft_ms = c->cfg.ttft_ms[s.cls];
  if (!s.tpot_ms)
    s.tpot_ms = c->cfg.tpot_ms[s.cls];
  req_t *r = requests_add(&c->reqs, client, &s, now);
  c->stats.submitted++;
  if (!queued_ahead(c, s.cls) && place(c, r, now)) {
    /* The client hears Accepted before any chunk: chunks come from the
     * worker, after this outbox is flushed. */
    emit(c, CORE_ACT_ACCEPTED, client, s.id);
    return;
  }
  if (c->queued[s.cls] >= c->cfg.queue_limit[s.cls]) {
    snprintf(why, sizeof why, "%s queue is full (%u requests)",
             infs_class_name(s.cls), c->cfg.queue_limit[s.cls]);
    fail(c, r, INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_FULL, why);
    return;
  }
  emit(c, CORE_ACT_ACCEPTED, client, s.id);
  enqueue(c, r, false);
  drain_queues(c, now);
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
  emit_error(c, CORE_ACT_ERROR, client, request_id,
             INFSCHED__ERROR_CODE__ERROR_CANCELLED, "cancelled by client");
  c->stats.cancelled++;
  finish(c, r);
  if (w)
    drain_queues(c, now);
}

/* --- worker events --- */

static void lose_worker(core_t *c, core_worker_t *w, const char *why) {
  char msg[CORE_MESSAGE_MAX];
  /* Walk backwards so re-queued requests keep their order at the front. */
  while (!list_empty(&w->reqs)) {
    req_t *r = list_entry(w->reqs.prev, req_t, link);
    list_remove(&r->link);
    w->outstanding--;
    r->worker = -1;
    if (r->state == REQ_DISPATCHED && r->attempts < c->cfg.max_attempts) {
      enqueue(c, r, true);
      c->stats.redispatched++;
      continue;
    }
    snprintf(msg, sizeof msg, "worker %s lost (%s) after %u tokens", w->id,
             why, r->tokens_out);
    r->state = REQ_STREAMING;
    fail(c, r, INFSCHED__ERROR_CODE__ERROR_WORKER_LOST, msg);
  }
  registry_remove(&c->reg, w);
  c->stats.workers_lost++;
}

static int valid_info(const core_worker_info_t *in, char *why, size_t len) {
  const infs_profile_t *p = in->profile;
  if (!in->worker_id || !in->worker_id[0])
    snprintf(why, len, "register: worker_id is empty");
  else if (strlen(in->worker_id) >= INFS_NAME_MAX)
    snprintf(why, len, "register: worker_id longer than %d bytes",
             INFS_NAME_MAX - 1);
  else if (!p || in->capacity == 0 || p->max_batch == 0 ||
           p->max_context == 0)
    snprintf(why, len,
             "register: capacity, max_batch and max_context must be > 0");
  else
    return 0;
  return -1;
}

void core_on_register(core_t *c, infs_time_t now, const core_peer_t *peer,
                      const core_worker_info_t *info) {
  char why[CORE_MESSAGE_MAX];
  if (valid_info(info, why, sizeof why)) {
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0,
               INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST, "%s", why);
    return;
  }
  core_worker_t *old = registry_find_peer(&c->reg, peer);
  if (old)
    lose_worker(c, old, "registered again");
  old = registry_find_id(&c->reg, info->worker_id);
  if (old)
    lose_worker(c, old, "replaced by a new registration");
  core_worker_t *w = registry_add(&c->reg, peer, info, now);
  emit(c, CORE_ACT_REGISTERED, &w->peer, 0);
  drain_queues(c, now);
}

static core_worker_t *known_worker(core_t *c, infs_time_t now,
                                   const core_peer_t *peer) {
  core_worker_t *w = registry_find_peer(&c->reg, peer);
  if (!w) {
    c->stats.unknown_worker_messages++;
    emit_error(c, CORE_ACT_WORKER_ERROR, peer, 0,
               INFSCHED__ERROR_CODE__ERROR_UNKNOWN_WORKER,
               "unknown worker: register first");
    return NULL;
  }
  w->last_seen = now;
  return w;
}

void core_on_heartbeat(core_t *c, infs_time_t now, const core_peer_t *peer,
                       const core_load_t *load) {
  core_worker_t *w = known_worker(c, now, peer);
  if (!w)
    return;
  w->load = *load;
  drain_queues(c, now);
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
                   uint64_t request_id, uint32_t tokens,
                   const void *passthrough) {
  core_worker_t *w = known_worker(c, now, peer);
  req_t *r = w ? running_on(c, w, request_id) : NULL;
  if (!r)
    return;
  r->state = REQ_STREAMING;
  r->tokens_out += tokens;
  core_action_t *a = emit(c, CORE_ACT_CHUNK, &r->client, r->client_id);
  a->passthrough = passthrough;
}

void core_on_done(core_t *c, infs_time_t now, const core_peer_t *peer,
                  uint64_t request_id, const void *passthrough) {
  core_worker_t *w = known_worker(c, now, peer);
  req_t *r = w ? running_on(c, w, request_id) : NULL;
  if (!r)
    return;
  core_action_t *a = emit(c, CORE_ACT_DONE, &r->client, r->client_id);
  a->passthrough = passthrough;
  c->stats.completed++;
  finish(c, r);
  drain_queues(c, now);
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
  fail(c, r, code ? code : INFSCHED__ERROR_CODE__ERROR_BACKEND, why);
  drain_queues(c, now);
}

/* --- timers --- */

void core_on_tick(core_t *c, infs_time_t now) {
  if (now >= c->next_check) {
    infs_time_t silence = c->cfg.heartbeat_interval * c->cfg.heartbeat_miss;
    for (size_t i = 0; i < c->reg.len; i++) {
      core_worker_t *w = c->reg.workers[i];
      if (w->live && now - w->last_seen > silence)
        lose_worker(c, w, "no heartbeat");
    }
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
      fail(c, r, INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_TIMEOUT, why);
    }
  }
  drain_queues(c, now);
}

infs_time_t core_next_deadline(const core_t *c) {
  infs_time_t t = c->reg.live ? c->next_check : INFS_TIME_NEVER;
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
  for (int cls = 0; cls < INFS_CLASS_COUNT; cls++)
    while (!list_empty(&c->queue[cls]))
      fail(c, list_entry(c->queue[cls].next, req_t, link),
           INFSCHED__ERROR_CODE__ERROR_REJECTED_SHUTDOWN,
           "scheduler is shutting down");
  for (size_t i = 0; i < c->reg.len; i++) {
    core_worker_t *w = c->reg.workers[i];
    while (w->live && !list_empty(&w->reqs)) {
      req_t *r = list_entry(w->reqs.next, req_t, link);
      emit(c, CORE_ACT_CANCEL, &w->peer, r->id);
      fail(c, r, INFSCHED__ERROR_CODE__ERROR_CANCELLED,
           "scheduler is shutting down");
    }
  }
}

/* --- views --- */

size_t core_worker_count(const core_t *c) { return c->reg.live; }

int core_worker_at(const core_t *c, size_t i, core_worker_view_t *out) {
  for (size_t k = 0; k < c->reg.len; k++) {
    const core_worker_t *w = c->reg.workers[k];
    if (!w->live || i--)
      continue;
    out->worker_id = w->id;
    out->model = w->model;
    out->profile = &w->profile;
    out->outstanding = w->outstanding;
    out->capacity = w->capacity;
    out->requests = w->requests;
    out->load = &w->load;
    return 0;
  }
  return -1;
}

size_t core_queued(const core_t *c) {
  return c->queued[0] + c->queued[1] + c->queued[2];
}

size_t core_open_requests(const core_t *c) { return c->reqs.open; }
const core_stats_t *core_stats(const core_t *c) { return &c->stats; }
const char *core_policy_name(const core_t *c) { return c->policy->name; }
