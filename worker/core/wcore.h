/* The worker's core: every decision a worker makes about its scheduler and
 * its requests, and nothing else. It does no I/O and reads no clock, like
 * the scheduler's core (scheduler/core/core.h). The worker daemon
 * (worker/worker.c) and infsched-sim feed it events stamped with `now` and
 * send the actions it appends to its outbox; worker/core/wcore_wire.h turns
 * them into wire messages for both.
 *
 * It owns the table of requests in flight (the scheduler's id, the client's
 * id, when it started, tokens streamed), registration and its retry, the
 * heartbeat timer, cost accounting (accounting.h) and the reset when the
 * scheduler has forgotten the worker. The caller owns the backend: the core
 * tells it, by return values, which requests to run or stop. */
#ifndef INFSCHED_WCORE_H
#define INFSCHED_WCORE_H

#include "infsched.pb-c.h"
#include "infsched/profile.h"
#include "infsched/types.h"
#include "accounting.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A worker that is not registered asks again this often (at its timer). */
#define WCORE_REGISTER_RETRY_US (1000 * INFS_US_PER_MS)
#define WCORE_MESSAGE_MAX 192
/* How long a prefill worker keeps a split request's KV for its decode
 * worker when the scheduler never releases it (docs/disaggregation.md). */
#define WCORE_KV_HOLD_US (30 * INFS_US_PER_S)

typedef struct wcore_config {
  const char *worker_id; /* borrowed for the core's life, as are the next */
  const char *model;
  const char *backend; /* the backend's name, for Register */
  const infs_profile_t *profile;
  infs_role_t role;               /* registered with the scheduler */
  uint32_t capacity;              /* requests accepted at once */
  infs_time_t heartbeat_interval; /* until the scheduler says otherwise */
  double kwh_usd;
} wcore_config_t;

/* The backend's load at a timer tick, and what a finished request used
 * (a prompt_tokens of 0: the dispatched prompt's). */
typedef infs_backend_load_t wcore_load_t;
typedef infs_backend_usage_t wcore_usage_t;

typedef enum wcore_action_kind {
  WCORE_ACT_REGISTER,  /* scheduler: register this worker */
  WCORE_ACT_HEARTBEAT, /* scheduler: load, cost, and the prefix cache:
                          all of it with cache_reset, else its changes */
  WCORE_ACT_CHUNK,     /* scheduler: tokens of a request */
  WCORE_ACT_DONE,      /* scheduler: a request finished */
  WCORE_ACT_PREFILLED, /* scheduler: a prefill ran; its KV is held */
  WCORE_ACT_ERROR      /* scheduler: a request failed or was refused */
} wcore_action_kind_t;

typedef struct wcore_heartbeat {
  wcore_load_t load;
  accounting_beat_t beat;
  uint64_t seq;
  bool cache_reset; /* first beat since (re)registering */
  bool draining;    /* wcore_drain was called */
} wcore_heartbeat_t;

typedef struct wcore_done {
  uint32_t prompt_tokens;
  uint32_t cached_tokens;
  uint32_t generated_tokens;
  infs_time_t queue_us;
  infs_time_t ttft_us;
  infs_time_t e2e_us; /* dispatch to done, on this worker */
  infs_time_t transfer_us; /* a decode's pull of the prefilled KV */
  double cost_usd;    /* marginal cost (accounting_done) */
} wcore_done_t;

/* What a prefill's KV handle says of it (the scheduler names the worker
 * and fills in what moving it costs). */
typedef struct wcore_prefilled {
  uint32_t tokens;     /* prompt tokens whose KV is held */
  uint64_t prefill_us; /* the prefill's time, for overlap */
  const char *params;  /* the backend's handle, NUL-terminated, held by
                          the core with the KV; NULL: none */
  size_t params_len;
} wcore_prefilled_t;

typedef struct wcore_action {
  wcore_action_kind_t kind;
  uint64_t request_id;        /* the scheduler's (dispatch) id */
  uint64_t client_request_id; /* CHUNK/DONE: the client's */
  uint32_t tokens;            /* CHUNK */
  const char *text;           /* CHUNK: borrowed from the event; NULL: none */
  size_t text_len;
  const char *tool_calls; /* CHUNK: JSON, borrowed likewise; NULL: none */
  const char *logprobs;   /* CHUNK: JSON, borrowed likewise; NULL: none */
  int code; /* ERROR: an INFS_WIRE_* reason (infsched/errors.h) */
  char message[WCORE_MESSAGE_MAX];
  /* HEARTBEAT; REGISTER: only load.unhealthy (as of the last timer) and
   * draining, so that a registration says what heartbeats would */
  wcore_heartbeat_t heartbeat;
  wcore_done_t done;           /* DONE, PREFILLED */
  wcore_prefilled_t prefilled; /* PREFILLED */
} wcore_action_t;

typedef struct wcore wcore_t;

/* A worker that came up at now; its first action is a REGISTER. The
 * config's strings and profile are borrowed for the core's life. */
wcore_t *wcore_new(const wcore_config_t *cfg, infs_time_t now);
void wcore_destroy(wcore_t **w);

/* --- the scheduler's messages --- */

/* Registration accepted; heartbeats every heartbeat_interval from the next
 * tick on (0 keeps the current one). The next heartbeat carries the whole
 * prefix cache: the scheduler knows none of it. */
void wcore_on_registered(wcore_t *w, infs_time_t now,
                         infs_time_t heartbeat_interval);
/* The scheduler does not know this worker (it restarted or gave it up). A
 * registered worker registers again, listing every request it runs as
 * held (wcore_held): they go on, their text and a Done kept for the next
 * scheduler, which adopts them or cancels them. Returns how many it holds;
 * 0 when unregistered, since then the error answers a heartbeat sent
 * before a Register. */
size_t wcore_on_unknown(wcore_t *w, infs_time_t now);
/* The new scheduler's answer about the held requests (with Registered):
 * from[i] goes on as as[i]; a kept Done goes out now. Held requests it did
 * not adopt (nor cancel) are dropped: *dropped (valid until the next call)
 * lists those still running, for the caller to stop. Returns how many. */
size_t wcore_on_adopted(wcore_t *w, infs_time_t now, const uint64_t *from,
                        const uint64_t *as, size_t n,
                        const uint64_t **dropped);
/* Keeps what a new scheduler would need to adopt dispatched request id: a
 * copy of spec (as the client sent it), its client's routing id and the
 * text its client already has from a lost worker. */
void wcore_keep(wcore_t *w, uint64_t id, const Infsched__Request *spec,
                const void *client, size_t client_len, const char *resumed,
                size_t resumed_len);
/* The held requests, for a Register: *out (owned by w, valid until the
 * next call) points at n entries. */
size_t wcore_held(wcore_t *w, Infsched__Held ***out);

/* A dispatched request of prompt_tokens as the backend runs it; resumed of
 * them are tokens its client already has from a lost worker (a migration)
 * or from the worker that prefilled it (a decode phase), which its Done
 * counts as generated. phase: the part of it to run. Returns 0 when the
 * caller is to submit it to the backend (and report a refusal with
 * wcore_on_refused), or -1 when the core answered it with an error (its id
 * is already running here). */
int wcore_on_dispatch(wcore_t *w, infs_time_t now, uint64_t id,
                      uint64_t client_request_id, uint32_t prompt_tokens,
                      uint32_t resumed, infs_phase_t phase);
/* The prompt of a migrated request: prompt followed by what its client
 * already has. Owned by w, valid until the next call. */
const char *wcore_resumed_prompt(wcore_t *w, const char *prompt,
                                 size_t prompt_len, const char *said,
                                 size_t said_len);
/* A dispatch this worker cannot read (no request, an unknown phase, a
 * decode without its KV handle): answered with an error about id (0 when
 * it has no request) saying why. */
void wcore_on_bad_dispatch(wcore_t *w, infs_time_t now, uint64_t id,
                           const char *why);
/* The scheduler cancels id (for a prefill that answered, the release of
 * its KV). Returns true when it was running or held here: the caller stops
 * it on the backend, and nothing more is sent for it. */
bool wcore_on_cancel(wcore_t *w, infs_time_t now, uint64_t id);

/* --- the backend's progress; unknown ids are ignored --- */

/* The backend refused id at submit with status rc (an INFS_E* code). */
void wcore_on_refused(wcore_t *w, infs_time_t now, uint64_t id, int rc);
/* n tokens of id; text (may be NULL) is borrowed until the outbox is
 * cleared. */
void wcore_on_tokens(wcore_t *w, infs_time_t now, uint64_t id, uint32_t n,
                     const char *text, size_t len);
/* Tool calls of id counted as n tokens: json (NUL-terminated) is borrowed
 * like a chunk's text. A migration cannot resume them: they are not kept
 * with the text a new worker would continue from. */
void wcore_on_tool_calls(wcore_t *w, infs_time_t now, uint64_t id, uint32_t n,
                         const char *json);
/* The log probabilities of id's text just streamed, as a chunk of no
 * tokens; json (NUL-terminated) borrowed like a chunk's text. */
void wcore_on_logprobs(wcore_t *w, infs_time_t now, uint64_t id,
                       const char *json);
void wcore_on_done(wcore_t *w, infs_time_t now, uint64_t id,
                   const wcore_usage_t *u);
/* code: an INFS_WIRE_* reason (infsched/errors.h). */
void wcore_on_failed(wcore_t *w, infs_time_t now, uint64_t id, int code,
                     const char *message);
/* A prefill-phase request ran its prompt and its backend holds the KV: a
 * PREFILLED action, and the KV is held until the scheduler cancels id or
 * WCORE_KV_HOLD_US passes (wcore_expired). Returns true when the caller is
 * to cancel id on the backend at once instead: it was not a prefill (the
 * scheduler hears of a failure), or no scheduler is there to release it. */
bool wcore_on_prefilled(wcore_t *w, infs_time_t now, uint64_t id,
                        const wcore_usage_t *u, const char *params,
                        size_t params_len);

/* --- time --- */

/* The timer, at or after wcore_next_deadline: a heartbeat with load when
 * registered, else a Register when the last one is a retry interval old. */
void wcore_on_timer(wcore_t *w, infs_time_t now, const wcore_load_t *load);
infs_time_t wcore_next_deadline(const wcore_t *w);
/* The KV holds that passed WCORE_KV_HOLD_US by now, forgotten here: the
 * caller cancels each of *ids (valid until the next call) on its backend.
 * Returns how many. */
size_t wcore_expired(wcore_t *w, infs_time_t now, const uint64_t **ids);
/* The worker is stopping: from now on every heartbeat says it is
 * draining, the next one at once (the next deadline is now), so the
 * scheduler sends it nothing new while it finishes what it runs. */
void wcore_drain(wcore_t *w, infs_time_t now);
bool wcore_draining(const wcore_t *w);
/* The drain deadline passed: every request still in flight is answered
 * with an error (code, an INFS_WIRE_* reason, and message) and forgotten,
 * so that its client hears at once rather than when the worker is found
 * lost. The caller stops them on the backend. Returns how many. */
size_t wcore_fail_all(wcore_t *w, infs_time_t now, int code,
                      const char *message);

/* The outbox, in order. Pointers stay valid until wcore_actions_clear or
 * the next event. */
const wcore_action_t *wcore_actions(const wcore_t *w, size_t *n);
void wcore_actions_clear(wcore_t *w);

/* --- views --- */

const wcore_config_t *wcore_config(const wcore_t *w);
bool wcore_registered(const wcore_t *w);
size_t wcore_inflight(const wcore_t *w);
/* Tokens sent for id so far; -1 when id is not in flight. */
int wcore_streamed(const wcore_t *w, uint64_t id, uint32_t *tokens);
/* The worker's pool cost from its start to now (accounting_cost_usd). */
double wcore_cost_usd(const wcore_t *w, infs_time_t now, double busy_s);

#endif
