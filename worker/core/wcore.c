#include "wcore.h"

#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "slots.h"
#include "u64map.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct inflight {
  uint64_t id;            /* the scheduler's */
  uint64_t client_id;     /* goes back in Chunk and Done */
  uint32_t prompt_tokens; /* as the backend runs it: resumed ones too */
  uint32_t resumed;       /* of those, tokens a lost worker streamed */
  uint32_t streamed;      /* tokens sent in chunks */
  infs_time_t started;
  infs_phase_t phase;
  /* A prefill that answered: its KV is held for the decode worker until
   * the scheduler's cancel, or until hold_until. */
  bool holding;
  infs_time_t hold_until;
  char *params; /* the backend's handle to it, NUL-terminated */
  /* What a new scheduler needs to adopt it (wcore_keep). */
  Infsched__Request *spec; /* a copy of the dispatched request */
  uint8_t client[1 + 255];  /* its client's door and routing id */
  size_t client_len;
  char *said; /* every token's text, resumed ones first */
  size_t said_len;
  size_t said_cap;
  bool orphan;     /* its scheduler was lost; not adopted yet */
  bool finished;   /* done while unregistered: its Done waits in done */
  wcore_done_t done;
  Infsched__Held held; /* its entry in a Register */
} inflight_t;

struct wcore {
  wcore_config_t cfg;
  accounting_t acct;
  bool registered;
  bool cache_reset; /* the next heartbeat sends the whole cache */
  bool draining;
  bool unhealthy; /* the backend's load said so at the last timer */
  infs_time_t interval;
  infs_time_t next_tick;
  infs_time_t last_register;
  uint64_t beat_seq;
  inflight_t *inflight; /* by slot; by_id maps an id to its slot */
  slots_t table;
  u64map_t by_id;
  uint64_t *dropped; /* wcore_on_unknown's answer */
  size_t dropped_cap;
  size_t n_holding;  /* entries holding a prefill's KV */
  uint64_t *expired; /* wcore_expired's answer */
  size_t expired_cap;
  char *joined; /* wcore_resumed_prompt's answer */
  size_t joined_cap;
  Infsched__Held **held; /* wcore_held's answer */
  size_t held_cap;
  wcore_action_t *acts;
  size_t n_acts;
  size_t acts_cap;
};

/* --- the in-flight table --- */

static inflight_t *inflight_get(const wcore_t *w, uint64_t id) {
  uint32_t slot;
  return u64map_get(&w->by_id, id, &slot) ? &w->inflight[slot] : NULL;
}

static inflight_t *inflight_add(wcore_t *w, uint64_t id) {
  uint32_t slot;
  size_t had = slots_take(&w->table, 64, &slot);
  if (had < w->table.cap)
    w->inflight = xrecallocarray(w->inflight, had, w->table.cap,
                                 sizeof *w->inflight);
  u64map_put(&w->by_id, id, slot);
  w->inflight[slot] = (inflight_t){.id = id};
  return &w->inflight[slot];
}

static void inflight_remove(wcore_t *w, uint64_t id) {
  uint32_t slot;
  if (!u64map_get(&w->by_id, id, &slot))
    return;
  u64map_del(&w->by_id, id);
  inflight_t *f = &w->inflight[slot];
  if (f->holding)
    w->n_holding--;
  f->holding = false;
  free(f->params);
  f->params = NULL;
  if (f->spec)
    infsched__request__free_unpacked(f->spec, NULL);
  free(f->said);
  f->spec = NULL;
  f->said = NULL;
  slots_put(&w->table, slot);
}

/* Calls fn on every request in flight, in slot order (so that a run is a
 * function of its inputs alone); fn may remove the one it is given. */
static void inflight_each(wcore_t *w, void (*fn)(wcore_t *, inflight_t *, void *),
                          void *arg) {
  for (size_t i = 0; i < w->table.cap && w->by_id.len; i++) {
    uint32_t slot;
    if (u64map_get(&w->by_id, w->inflight[i].id, &slot) && slot == i)
      fn(w, &w->inflight[i], arg);
  }
}

static void said_append(inflight_t *f, const char *text, size_t len) {
  if (!text || !len)
    return;
  if (f->said_len + len + 1 > f->said_cap) {
    size_t cap = f->said_cap ? f->said_cap : 256;
    while (cap < f->said_len + len + 1)
      cap *= 2;
    f->said = xreallocarray(f->said, cap, 1);
    f->said_cap = cap;
  }
  memcpy(f->said + f->said_len, text, len);
  f->said_len += len;
  f->said[f->said_len] = '\0';
}

/* --- the outbox --- */

static wcore_action_t *push(wcore_t *w, wcore_action_kind_t kind,
                            uint64_t id) {
  if (w->n_acts == w->acts_cap) {
    w->acts_cap = w->acts_cap ? w->acts_cap * 2 : 16;
    w->acts = xreallocarray(w->acts, w->acts_cap, sizeof *w->acts);
  }
  wcore_action_t *a = &w->acts[w->n_acts++];
  *a = (wcore_action_t){.kind = kind, .request_id = id};
  return a;
}

static void push_error(wcore_t *w, uint64_t id, int code,
                       const char *message) {
  wcore_action_t *a = push(w, WCORE_ACT_ERROR, id);
  a->code = code;
  snprintf(a->message, sizeof a->message, "%s", message ? message : "");
}

static void push_register(wcore_t *w, infs_time_t now) {
  wcore_action_t *a = push(w, WCORE_ACT_REGISTER, 0);
  a->heartbeat.load.unhealthy = w->unhealthy;
  a->heartbeat.draining = w->draining;
  w->last_register = now;
}

/* --- life cycle --- */

wcore_t *wcore_new(const wcore_config_t *cfg, infs_time_t now) {
  wcore_t *w = xcalloc(1, sizeof *w);
  w->cfg = *cfg;
  w->interval = cfg->heartbeat_interval;
  w->next_tick = now + w->interval;
  accounting_init(&w->acct, cfg->profile, cfg->kwh_usd, now);
  u64map_init(&w->by_id);
  push_register(w, now);
  return w;
}

void wcore_destroy(wcore_t **pw) {
  wcore_t *w = *pw;
  if (!w)
    return;
  for (size_t i = 0; i < w->table.cap; i++) {
    if (w->inflight[i].spec)
      infsched__request__free_unpacked(w->inflight[i].spec, NULL);
    free(w->inflight[i].said);
    free(w->inflight[i].params);
  }
  u64map_free(&w->by_id);
  free(w->inflight);
  free(w->held);
  slots_free(&w->table);
  free(w->dropped);
  free(w->expired);
  free(w->joined);
  free(w->acts);
  free(w);
  *pw = NULL;
}

/* --- the scheduler's messages --- */

void wcore_on_registered(wcore_t *w, infs_time_t now,
                         infs_time_t heartbeat_interval) {
  (void)now;
  w->registered = true;
  w->cache_reset = true;
  if (heartbeat_interval)
    w->interval = heartbeat_interval;
}

static void mark_orphan(wcore_t *w, inflight_t *f, void *arg) {
  (void)w;
  (void)arg;
  f->orphan = true;
}

size_t wcore_on_unknown(wcore_t *w, infs_time_t now) {
  if (!w->registered)
    return 0;
  inflight_each(w, mark_orphan, NULL);
  w->registered = false;
  push_register(w, now);
  return w->by_id.len;
}

typedef struct adoption {
  const uint64_t *from;
  const uint64_t *as;
  size_t n;
  size_t n_dropped;
} adoption_t;

static void drop_orphan(wcore_t *w, inflight_t *f, void *arg) {
  adoption_t *ad = arg;
  if (!f->orphan)
    return;
  if (!f->finished)
    w->dropped[ad->n_dropped++] = f->id;
  inflight_remove(w, f->id);
}

size_t wcore_on_adopted(wcore_t *w, infs_time_t now, const uint64_t *from,
                        const uint64_t *as, size_t n,
                        const uint64_t **dropped) {
  (void)now;
  adoption_t ad = {from, as, n, 0};
  uint32_t *slots = n ? xreallocarray(NULL, n, sizeof *slots) : NULL;
  size_t k = 0;
  /* Old ids out first: a new id may equal an old one of another request. */
  for (size_t i = 0; i < n; i++) {
    uint32_t slot;
    if (!u64map_get(&w->by_id, from[i], &slot) ||
        !w->inflight[slot].orphan)
      continue;
    u64map_del(&w->by_id, from[i]);
    w->inflight[slot].orphan = false;
    w->inflight[slot].id = as[i];
    slots[k++] = slot;
  }
  if (w->by_id.len > w->dropped_cap) {
    w->dropped_cap = w->by_id.len;
    w->dropped = xreallocarray(w->dropped, w->dropped_cap, sizeof *w->dropped);
  }
  inflight_each(w, drop_orphan, &ad);
  for (size_t i = 0; i < k; i++) {
    inflight_t *f = &w->inflight[slots[i]];
    u64map_put(&w->by_id, f->id, slots[i]);
    if (f->finished) {
      wcore_action_t *a = push(w, WCORE_ACT_DONE, f->id);
      a->client_request_id = f->client_id;
      a->done = f->done;
      inflight_remove(w, f->id);
    }
  }
  free(slots);
  *dropped = w->dropped;
  return ad.n_dropped;
}

void wcore_keep(wcore_t *w, uint64_t id, const Infsched__Request *spec,
                const void *client, size_t client_len, const char *resumed,
                size_t resumed_len) {
  inflight_t *f = inflight_get(w, id);
  if (!f || !spec)
    return;
  /* A deep copy through the wire format: the message is freed after the
   * call. */
  size_t len = infsched__request__get_packed_size(spec);
  uint8_t *buf = xreallocarray(NULL, len ? len : 1, 1);
  infsched__request__pack(spec, buf);
  f->spec = infsched__request__unpack(NULL, len, buf);
  free(buf);
  if (client_len > sizeof f->client)
    client_len = 0;
  if (client_len)
    memcpy(f->client, client, client_len);
  f->client_len = client_len;
  said_append(f, resumed, resumed_len);
}

static void list_held(wcore_t *w, inflight_t *f, void *arg) {
  size_t *n = arg;
  /* A prefill is half a request: no other scheduler can go on with it, so
   * it is dropped with the held requests no one adopts. */
  if (!f->orphan || !f->spec || f->phase == INFS_PHASE_PREFILL)
    return;
  Infsched__Held *h = &f->held;
  infsched__held__init(h);
  h->request = f->spec;
  h->request->request_id = f->id;
  h->client_request_id = f->client_id;
  h->client.data = f->client;
  h->client.len = f->client_len;
  h->tokens = f->resumed + f->streamed;
  h->text = f->said ? f->said : (char *)"";
  h->resumed = f->resumed;
  h->done = f->finished;
  w->held[(*n)++] = h;
}

size_t wcore_held(wcore_t *w, Infsched__Held ***out) {
  if (w->by_id.len > w->held_cap) {
    w->held_cap = w->by_id.len;
    w->held = xreallocarray(w->held, w->held_cap, sizeof *w->held);
  }
  size_t n = 0;
  inflight_each(w, list_held, &n);
  *out = w->held;
  return n;
}

int wcore_on_dispatch(wcore_t *w, infs_time_t now, uint64_t id,
                      uint64_t client_request_id, uint32_t prompt_tokens,
                      uint32_t resumed, infs_phase_t phase) {
  if (inflight_get(w, id)) {
    push_error(w, id, INFS_WIRE_DUPLICATE,
               "request id already running here");
    return -1;
  }
  inflight_t *f = inflight_add(w, id);
  f->client_id = client_request_id;
  f->prompt_tokens = prompt_tokens;
  f->resumed = resumed < prompt_tokens ? resumed : prompt_tokens;
  f->started = now;
  f->phase = phase;
  return 0;
}

const char *wcore_resumed_prompt(wcore_t *w, const char *prompt,
                                 size_t prompt_len, const char *said,
                                 size_t said_len) {
  size_t need = prompt_len + said_len + 1;
  if (need > w->joined_cap) {
    w->joined = xreallocarray(w->joined, need, 1);
    w->joined_cap = need;
  }
  if (prompt_len)
    memcpy(w->joined, prompt, prompt_len);
  if (said_len)
    memcpy(w->joined + prompt_len, said, said_len);
  w->joined[prompt_len + said_len] = '\0';
  return w->joined;
}

void wcore_on_bad_dispatch(wcore_t *w, infs_time_t now, uint64_t id,
                           const char *why) {
  (void)now;
  push_error(w, id, INFS_WIRE_BADREQUEST, why);
}

bool wcore_on_cancel(wcore_t *w, infs_time_t now, uint64_t id) {
  (void)now;
  if (!inflight_get(w, id))
    return false;
  inflight_remove(w, id);
  return true;
}

/* --- the backend's progress --- */

/* A request the backend cannot take is the client's fault when it does not
 * fit the context; anything else is the backend's. */
static int status_code_of(int rc) {
  return rc == INFS_ECONTEXT ? INFS_WIRE_CONTEXT
                             : INFS_WIRE_BACKEND;
}

void wcore_on_refused(wcore_t *w, infs_time_t now, uint64_t id, int rc) {
  (void)now;
  if (!inflight_get(w, id))
    return;
  push_error(w, id, status_code_of(rc), infs_strerror(rc));
  inflight_remove(w, id);
}

void wcore_on_tokens(wcore_t *w, infs_time_t now, uint64_t id, uint32_t n,
                     const char *text, size_t len) {
  (void)now;
  inflight_t *f = inflight_get(w, id);
  if (!f)
    return;
  f->streamed += n;
  said_append(f, text, len);
  /* Without a scheduler the text waits in said for the next one. */
  if (!w->registered)
    return;
  wcore_action_t *a = push(w, WCORE_ACT_CHUNK, id);
  a->client_request_id = f->client_id;
  a->tokens = n;
  a->text = text;
  a->text_len = len;
}

/* A chunk of n tokens without text for id, or NULL when there is none to
 * send (unknown, or no scheduler to send it to). */
static wcore_action_t *push_bare_chunk(wcore_t *w, uint64_t id, uint32_t n) {
  inflight_t *f = inflight_get(w, id);
  if (!f || !w->registered)
    return NULL;
  f->streamed += n;
  wcore_action_t *a = push(w, WCORE_ACT_CHUNK, id);
  a->client_request_id = f->client_id;
  a->tokens = n;
  return a;
}

void wcore_on_tool_calls(wcore_t *w, infs_time_t now, uint64_t id, uint32_t n,
                         const char *json) {
  (void)now;
  wcore_action_t *a = push_bare_chunk(w, id, n);
  if (a)
    a->tool_calls = json;
}

void wcore_on_logprobs(wcore_t *w, infs_time_t now, uint64_t id,
                       const char *json) {
  (void)now;
  wcore_action_t *a = push_bare_chunk(w, id, 0);
  if (a)
    a->logprobs = json;
}

void wcore_on_done(wcore_t *w, infs_time_t now, uint64_t id,
                   const wcore_usage_t *u) {
  inflight_t *f = inflight_get(w, id);
  if (!f)
    return;
  uint32_t prompt = u->prompt_tokens ? u->prompt_tokens : f->prompt_tokens;
  /* The client's request: what a lost worker streamed was generated, even
   * though this backend prefilled it. */
  uint32_t resumed = f->resumed < prompt ? f->resumed : prompt;
  uint32_t cached =
      u->cached_tokens < prompt - resumed ? u->cached_tokens : prompt - resumed;
  wcore_done_t done = {
      .prompt_tokens = prompt - resumed,
      .cached_tokens = cached,
      .generated_tokens = u->generated_tokens + resumed,
      .queue_us = u->queue_us,
      .ttft_us = u->ttft_us,
      .e2e_us = now - f->started,
      .transfer_us = f->phase == INFS_PHASE_DECODE ? u->transfer_us : 0,
      .cost_usd = accounting_done(&w->acct, prompt, u->generated_tokens,
                                  u->busy_s, u->usd),
  };
  if (!w->registered) {
    /* Kept for the next scheduler, which adopts it (wcore_on_adopted). */
    f->finished = true;
    f->done = done;
    return;
  }
  wcore_action_t *a = push(w, WCORE_ACT_DONE, id);
  a->client_request_id = f->client_id;
  a->done = done;
  inflight_remove(w, id);
}

void wcore_on_failed(wcore_t *w, infs_time_t now, uint64_t id, int code,
                     const char *message) {
  (void)now;
  if (!inflight_get(w, id))
    return;
  push_error(w, id, code, message);
  inflight_remove(w, id);
}

bool wcore_on_prefilled(wcore_t *w, infs_time_t now, uint64_t id,
                        const wcore_usage_t *u, const char *params,
                        size_t params_len) {
  inflight_t *f = inflight_get(w, id);
  if (!f || f->holding)
    return false;
  if (f->phase != INFS_PHASE_PREFILL) {
    push_error(w, id, INFS_WIRE_BACKEND,
               "the backend answered a whole request as a prefill");
    inflight_remove(w, id);
    return true;
  }
  uint32_t prompt = u->prompt_tokens ? u->prompt_tokens : f->prompt_tokens;
  wcore_done_t done = {
      .prompt_tokens = prompt,
      .cached_tokens = u->cached_tokens < prompt ? u->cached_tokens : prompt,
      .generated_tokens = u->generated_tokens,
      .queue_us = u->queue_us,
      .ttft_us = u->ttft_us,
      .e2e_us = now - f->started,
      .cost_usd = accounting_done(&w->acct, prompt, u->generated_tokens,
                                  u->busy_s, u->usd),
  };
  if (!w->registered) {
    /* No scheduler will hand it to a decode worker, nor release it. */
    inflight_remove(w, id);
    return true;
  }
  if (params && params_len) {
    f->params = xreallocarray(NULL, params_len + 1, 1);
    memcpy(f->params, params, params_len);
    f->params[params_len] = '\0';
  }
  wcore_action_t *a = push(w, WCORE_ACT_PREFILLED, id);
  a->client_request_id = f->client_id;
  a->done = done;
  a->prefilled = (wcore_prefilled_t){
      .tokens = prompt,
      .prefill_us = u->ttft_us > u->queue_us ? u->ttft_us - u->queue_us : 0,
      .params = f->params,
      .params_len = f->params ? params_len : 0,
  };
  f->holding = true;
  f->hold_until = now + WCORE_KV_HOLD_US;
  w->n_holding++;
  return false;
}

/* --- time --- */

void wcore_on_timer(wcore_t *w, infs_time_t now, const wcore_load_t *load) {
  w->unhealthy = load->unhealthy != 0;
  if (now < w->next_tick)
    return;
  w->next_tick = now + w->interval;
  if (!w->registered) {
    if (now - w->last_register >= WCORE_REGISTER_RETRY_US)
      push_register(w, now);
    return;
  }
  wcore_action_t *a = push(w, WCORE_ACT_HEARTBEAT, 0);
  a->heartbeat.load = *load;
  a->heartbeat.seq = ++w->beat_seq;
  a->heartbeat.cache_reset = w->cache_reset;
  a->heartbeat.draining = w->draining;
  accounting_beat(&w->acct, now, load->busy_s, load->generated_tokens,
                  &a->heartbeat.beat);
  w->cache_reset = false;
}

infs_time_t wcore_next_deadline(const wcore_t *w) {
  infs_time_t t = w->next_tick;
  for (size_t i = 0; i < w->table.cap && w->n_holding; i++) {
    const inflight_t *f = &w->inflight[i];
    uint32_t slot;
    if (f->holding && f->hold_until < t &&
        u64map_get(&w->by_id, f->id, &slot) && slot == i)
      t = f->hold_until;
  }
  return t;
}

typedef struct expiry {
  infs_time_t now;
  size_t n;
} expiry_t;

static void expire(wcore_t *w, inflight_t *f, void *arg) {
  expiry_t *e = arg;
  if (!f->holding || f->hold_until > e->now)
    return;
  w->expired[e->n++] = f->id;
  inflight_remove(w, f->id);
}

size_t wcore_expired(wcore_t *w, infs_time_t now, const uint64_t **ids) {
  expiry_t e = {now, 0};
  if (w->n_holding > w->expired_cap) {
    w->expired_cap = w->n_holding;
    w->expired = xreallocarray(w->expired, w->expired_cap, sizeof *w->expired);
  }
  if (w->n_holding)
    inflight_each(w, expire, &e);
  *ids = w->expired;
  return e.n;
}

void wcore_drain(wcore_t *w, infs_time_t now) {
  w->draining = true;
  w->next_tick = now;
}

bool wcore_draining(const wcore_t *w) {
  return w->draining;
}

typedef struct fail_arg {
  int code;
  const char *message;
  size_t n;
} fail_arg_t;

static void fail_one(wcore_t *w, inflight_t *f, void *arg) {
  fail_arg_t *a = arg;
  push_error(w, f->id, a->code, a->message);
  inflight_remove(w, f->id);
  a->n++;
}

size_t wcore_fail_all(wcore_t *w, infs_time_t now, int code,
                      const char *message) {
  (void)now;
  fail_arg_t a = {code, message, 0};
  inflight_each(w, fail_one, &a);
  return a.n;
}

const wcore_action_t *wcore_actions(const wcore_t *w, size_t *n) {
  *n = w->n_acts;
  return w->acts;
}

void wcore_actions_clear(wcore_t *w) {
  w->n_acts = 0;
}

/* --- views --- */

const wcore_config_t *wcore_config(const wcore_t *w) {
  return &w->cfg;
}

bool wcore_registered(const wcore_t *w) {
  return w->registered;
}

size_t wcore_inflight(const wcore_t *w) {
  return w->by_id.len;
}

int wcore_streamed(const wcore_t *w, uint64_t id, uint32_t *tokens) {
  const inflight_t *f = inflight_get(w, id);
  if (!f)
    return -1;
  *tokens = f->streamed;
  return 0;
}

double wcore_cost_usd(const wcore_t *w, infs_time_t now, double busy_s) {
  return accounting_cost_usd(&w->acct, now, busy_s);
}
