/* What a request would see on a worker: its time to first token, its time
 * per output token and its marginal cost there, from the worker's profile
 * (the timing model of lib/profile.c), its last heartbeat, and what the core
 * dispatched to it and saw finish since, so that a burst between two
 * heartbeats sees the load it adds. Pure arithmetic, no clock. The formulas
 * are in predictor.c and docs/scheduling.md ("The predictor"). */
#ifndef INFSCHED_PREDICTOR_H
#define INFSCHED_PREDICTOR_H

#include "core.h"
#include "transfer.h"

/* Net changes since the heartbeat, as the core saw them. */
typedef struct predictor_since {
  int64_t requests;       /* dispatched, less those that finished */
  int64_t prefill_tokens; /* uncached prompt tokens dispatched, less those of
                             requests whose first token came back */
  int64_t kv_tokens;      /* KV tokens dispatched (prompts, tokens made),
                             less those of requests that finished */
} predictor_since_t;

typedef struct predictor_worker {
  const infs_profile_t *profile;
  const core_load_t *load; /* last heartbeat; all zero before the first */
  predictor_since_t since;
  uint32_t outstanding;      /* requests the core has there (for the
                                average of remaining_tokens) */
  uint64_t remaining_tokens; /* output tokens those still have to make */
  /* Share of its time the worker spends prefilling prompts that keep
   * arriving (0..1): their chunks ride along with decode steps and stretch
   * them. predictor_prefill_load estimates it. */
  double prefill_load;
  /* The TPOT target the worker's steps keep when its profile caps prefill
   * chunks to the running streams' targets (slo_aware_prefill): the
   * tightest among the classes it runs; 0 for none. */
  double tpot_cap_ms;
} predictor_worker_t;

/* What a worker holds now, from its last heartbeat and what the core sent
 * it and heard back since. */
typedef struct predictor_now {
  uint64_t kv;       /* KV tokens in use, at most kv_total */
  uint64_t kv_total; /* the heartbeat's, else the profile's */
  uint64_t backlog;  /* prompt tokens waiting for prefill */
  uint32_t requests; /* running or queued */
  uint32_t running;  /* of those, in the batch (at most max_batch) */
} predictor_now_t;

void predictor_now(const infs_profile_t *p, const core_load_t *l,
                   const predictor_since_t *since, predictor_now_t *out);

typedef struct predictor_request {
  uint32_t prompt_tokens;
  uint32_t max_tokens;
  uint32_t cached_blocks; /* leading prompt blocks in the worker's cache */
  /* The decode half of a split request: the KV of every prompt token but
   * the last comes from elsewhere, so only that token is prefilled here
   * (the engine's DECODE phase). */
  bool kv_arrives;
} predictor_request_t;

typedef struct prediction {
  double ttft_ms;        /* queue_ms + prefill of the uncached tokens */
  double queue_ms;       /* waiting for a batch slot and for earlier prefills */
  double tpot_ms;        /* decode step with the request in the batch: what it
                            and every request already running there will see */
  double extra_ms; /* what its prefill chunks add to the steps of the
                      sequences running there (0 when none): a stream of
                      n output tokens sees its mean TPOT grow by
                      extra_ms / (n - 1) */
  double busy_s;   /* worker time it takes: prefill + its share of steps */
  double cost_usd; /* busy_s valued at the worker's price (and energy) */
  double util;     /* share of the worker in use: the largest of batch
                      slots taken by others, KV with its own prompt and
                      prefill time, at least PREDICTOR_UTIL_FLOOR */
  double opportunity_usd; /* cost_usd * util: on a fixed pool idle capacity
                             is paid for anyway, so only worker time others
                             could have used is a real cost */
  uint32_t cached_tokens;
  uint32_t batch; /* running sequences once it has joined */
} prediction_t;

/* The least utilisation an opportunity cost is scaled by, so that among
 * idle workers the list price still decides. */
#define PREDICTOR_UTIL_FLOOR 0.02

void predictor_estimate(const predictor_worker_t *w,
                        const predictor_request_t *r, double kwh_usd,
                        prediction_t *out);

/* A request split: prefilled on P, its KV moved over the link P -> D, then
 * decoded on D (docs/scheduling.md, "Disaggregation"). The client's first
 * token comes from P; the transfer, D's wait for a step and D's first step
 * lie between it and the second token. */
typedef struct pair_prediction {
  prediction_t p;  /* on P: the prompt with max_tokens 1 */
  prediction_t d;  /* on D: kv_arrives, prompt + 1 tokens, max_tokens - 1 */
  infs_link_t link;
  uint32_t moved_tokens; /* prompt tokens D lacks */
  uint64_t bytes;        /* their KV, in P's layout */
  double prefill_ms;     /* P's prefill, without its queue */
  double transfer_ms;    /* what of the transfer is not hidden by it */
  double handoff_ms;     /* first token to second: transfer_ms + D's
                            queue and first step */
  double ttft_ms;        /* P's: queue + prefill of what P lacks */
  double tpot_ms;        /* mean over the output: (handoff_ms + (n - 2) *
                            D's TPOT) / (n - 1) */
  double busy_s, cost_usd, opportunity_usd; /* both workers' */
} pair_prediction_t;

/* Predicts r split between p and d: r->cached_blocks are P's,
 * d_cached_blocks D's; r->max_tokens >= 2 (a split of one token is just a
 * prefill). */
void predictor_estimate_pair(const predictor_worker_t *p,
                             const predictor_worker_t *d,
                             const predictor_request_t *r,
                             uint32_t d_cached_blocks, const infs_link_t *link,
                             double kwh_usd, pair_prediction_t *out);

/* The two halves of r to predict on P and on D, for callers that predict
 * each worker once and pair them many times. */
void predictor_pair_halves(const predictor_request_t *r,
                           uint32_t d_cached_blocks, predictor_request_t *on_p,
                           predictor_request_t *on_d);
/* Joins the halves' predictions p (on a worker of profile pp) and d into
 * out, moving moved_tokens over link, for r of max_tokens. */
void predictor_pair_join(const prediction_t *p, const prediction_t *d,
                         const infs_profile_t *pp, uint32_t moved_tokens,
                         const infs_link_t *link, uint32_t max_tokens,
                         pair_prediction_t *out);

/* Prompt tokens whose KV a decode worker holding cached_blocks of the
 * prompt lacks. */
uint32_t predictor_kv_lacks(uint32_t prompt_tokens, uint32_t cached_blocks,
                            uint32_t block_size);

/* The largest share of its targets a prediction uses: max(ttft / ttft_ms,
 * tpot / tpot_ms), a 0 target left out; at most 1 when both are met. */
double predictor_slo_use(const prediction_t *p, const slo_targets_t *t);

/* Uncached prompt tokens per second sent to a worker, as a decaying
 * average with this time constant. */
#define PREDICTOR_RATE_TAU_S 5.0

/* The decay factor of the latest interval. Heartbeats come one interval
 * apart, so most decays repeat it and skip the exponential. */
typedef struct predictor_decay {
  bool set;
  infs_time_t dt;
  double factor;
} predictor_decay_t;

/* Decays a rate last updated at *at to now and adds tokens sent at now.
 * The core calls it on every dispatch and heartbeat, so that reading the
 * rate costs no exponential. memo (NULL for none) keeps the last factor;
 * the result is the same with or without it. */
void predictor_rate_add(predictor_decay_t *memo, double *rate, infs_time_t *at,
                        infs_time_t now, double tokens);
/* A rate as a share of the profile's prefill speed: prefill_load. */
double predictor_prefill_load(const infs_profile_t *p, double rate);

#endif
