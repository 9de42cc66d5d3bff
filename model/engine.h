/* A continuous-batching inference engine over the step-time model of
 * model/step.h, with paged KV and a prefix cache in its free blocks.
 * Pure: no I/O and no clock; every call takes the current time. The sim
 * backend steps it in real time, the simulator in virtual time. The rules
 * (token budget, admission, KV blocks, preemption, prefix cache) are at the
 * top of engine.c. */
#ifndef INFSCHED_ENGINE_H
#define INFSCHED_ENGINE_H

#include "infsched/profile.h"
#include "infsched/types.h"

typedef struct engine engine_t;

typedef struct engine_request {
  uint64_t id; /* caller's id, unique among open requests */
  uint32_t prompt_tokens;
  uint32_t max_tokens;    /* output tokens to generate, >= 1 */
  const uint64_t *blocks; /* hashes of the prompt's full blocks of
                             block_size tokens, each covering the whole
                             prefix up to it; borrowed for the call */
  size_t n_blocks;
  /* Its time-per-output-token target (0: none): with the profile's
   * slo_aware_prefill, steps it decodes in carry no more prefill than keep
   * them within it. */
  uint32_t tpot_target_ms;
  /* FULL: prefill, then decode to the end. PREFILL: prefill only; the
   * first token, then PREFILLED, and the request keeps its KV blocks until
   * engine_cancel releases them. DECODE: the KV of every prompt token but
   * the last (which is computed, as always, to give logits) comes from
   * elsewhere and has arrived at kv_ready; its blocks are taken then, when
   * the request joins the queue, and it decodes from there. */
  infs_phase_t phase;
  infs_time_t kv_ready; /* DECODE only */
} engine_request_t;

/* Every output token is reported once, by a FIRST_TOKEN or a TOKENS event;
 * DONE follows the event that carried the last token and has tokens = 0.
 * A PREFILL request ends with FIRST_TOKEN then PREFILLED instead. */
typedef enum engine_event_kind {
  ENGINE_EV_FIRST_TOKEN, /* prefill finished; tokens = 1 */
  ENGINE_EV_TOKENS,      /* decode produced tokens */
  ENGINE_EV_DONE,        /* last token produced; request leaves the engine */
  ENGINE_EV_FAILED,      /* for backends; the engine refuses by return code */
  ENGINE_EV_PREFILLED    /* a PREFILL request's prefill is done; it holds
                            its KV until engine_cancel. Figures as DONE's */
} engine_event_kind_t;

typedef struct engine_event {
  engine_event_kind_t kind;
  uint64_t id;
  infs_time_t at; /* when it happened (<= the advance's now) */
  uint32_t tokens;
  uint32_t cached_tokens; /* DONE: prompt tokens served from prefix cache */
  uint32_t generated;     /* output tokens so far (DONE: in all) */
  infs_time_t queued_us;  /* DONE: time waiting before prefill started (for
                             DECODE: from its KV's arrival) */
  infs_time_t ttft_us;    /* DONE: submit to first token */
  infs_time_t transfer_us; /* DONE of a DECODE request: submit to its KV's
                              arrival (kv_ready); else 0 */
  double busy_share_s;    /* DONE: this request's share of busy time */
  int code;               /* FAILED: negative INFS_E* code */
} engine_event_t;

/* What a DONE or PREFILLED event says the request used, as a backend
 * reports it (tokens, queue, TTFT, transfer, busy share). */
infs_backend_usage_t engine_event_usage(const engine_event_t *e);

typedef struct engine_load {
  uint32_t queued; /* DECODE requests waiting for their KV included */
  uint32_t running;
  uint32_t held; /* PREFILL requests holding their KV */
  uint64_t kv_used;  /* tokens in the blocks sequences hold (a shared
                        prefix once) */
  uint64_t kv_total; /* tokens in the pool's whole blocks */
  uint64_t prefill_backlog_tokens;
  double busy_s; /* total time with work, since creation */
  uint64_t generated_tokens;
  uint64_t preemptions; /* sequences sent back to the queue, since creation */
} engine_load_t;

/* Prompt tokens a prefix hit of `blocks` leading blocks serves: the whole
 * blocks before the prompt's last token, which is always computed to give
 * logits. The engine and the core's predictor both count hits so. */
static inline uint32_t engine_hit_tokens(uint32_t prompt, uint32_t blocks,
                                         uint32_t block_size) {
  uint32_t most = prompt ? (prompt - 1) / block_size : 0;
  return (blocks < most ? blocks : most) * block_size;
}

/* Returns an engine over a copy of the profile, or NULL on bad profile. */
engine_t *engine_new(const infs_profile_t *p, infs_time_t now);
void engine_destroy(engine_t **e);

/* Queues a request, after running the step boundaries before now; it joins
 * the step that starts at now or later (a DECODE one at kv_ready or later),
 * so call engine_advance(now) after submitting (engine_next_event says
 * when). Returns 0, INFS_ECONTEXT when its prompt plus output (for
 * PREFILL, the first token) exceed max context, INFS_EDUPLICATE when the id
 * is open, -EINVAL for zero prompt or output tokens or an unknown phase. */
int engine_submit(engine_t *e, infs_time_t now, const engine_request_t *r);

/* Drops a request wherever it is (after running the step boundaries before
 * now) and frees its KV; no event follows. This is also how a PREFILL
 * request's held KV is released. Returns 0 or -ENOENT. */
int engine_cancel(engine_t *e, infs_time_t now, uint64_t id);

/* Runs every step boundary at or before now (steps completing, and starting
 * for queued requests) and appends events. */
void engine_advance(engine_t *e, infs_time_t now);

/* Time of the next step boundary (a step completes, or an idle engine
 * starts one for a new request), or INFS_TIME_NEVER with nothing to do. */
infs_time_t engine_next_event(const engine_t *e);

/* Events appended since the last clear; valid until the next call. */
const engine_event_t *engine_events(const engine_t *e, size_t *n);
void engine_events_clear(engine_t *e);

/* Current load; busy_s counts the running step up to now. */
void engine_load(const engine_t *e, infs_time_t now, engine_load_t *out);

/* Prefix-cache changes since the last clear (hashes of blocks cached as
 * they filled, and of cached blocks evicted for reuse),
 * net: a hash inserted and evicted again in between is in neither list.
 * Arrays are borrowed until the next call into the engine. Clear after each
 * read, or the changes pile up (bounded by the net change). */
void engine_cache_delta(engine_t *e, const uint64_t **added, size_t *n_added,
                        const uint64_t **removed, size_t *n_removed);
void engine_cache_delta_clear(engine_t *e);

/* Copies up to cap cached hashes into out (a full summary, e.g. after
 * registering again): the free blocks' in eviction order, then those in use.
 * Returns how many are cached. */
size_t engine_cache_snapshot(const engine_t *e, uint64_t *out, size_t cap);

#endif
