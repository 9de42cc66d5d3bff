/* What a worker reports about itself, from its backend's counters: the
 * figures of its heartbeats (up and busy time, tokens/s, pool cost so far)
 * and the marginal cost carried by each Done. Pure, so that the worker
 * daemon and infsched-sim account the same way. */
#ifndef INFSCHED_ACCOUNTING_H
#define INFSCHED_ACCOUNTING_H

#include "infsched/profile.h"
#include "infsched/types.h"

typedef struct accounting {
  const infs_profile_t *profile; /* borrowed for the accounting's life */
  double kwh_usd;
  infs_time_t started;
  infs_time_t last_beat;
  uint64_t last_generated;
  double token_usd; /* per-token charges billed so far */
} accounting_t;

/* Heartbeat figures at one instant. */
typedef struct accounting_beat {
  double up_s;
  double busy_s;
  double tokens_per_s; /* generated since the previous beat, per second */
  double cost_usd;     /* pool cost since start, per-token charges included */
} accounting_beat_t;

/* Starts accounting for a worker that came up at now. */
void accounting_init(accounting_t *a, const infs_profile_t *p, double kwh_usd,
                     infs_time_t now);

/* The figures of a heartbeat sent at now, from the backend's total busy
 * seconds and generated tokens; starts the next tokens/s interval. */
void accounting_beat(accounting_t *a, infs_time_t now, double busy_s,
                     uint64_t generated_tokens, accounting_beat_t *out);

/* Pool cost since start at now, without starting a new interval. */
double accounting_cost_usd(const accounting_t *a, infs_time_t now,
                           double busy_s);

/* A request finished after busy_s of worker time; billed_usd is what an
 * upstream charged for it (0 for owned hardware). Adds its per-token
 * charges to the pool cost and returns its marginal cost for Done. */
double accounting_done(accounting_t *a, uint32_t prompt_tokens,
                       uint32_t generated_tokens, double busy_s,
                       double billed_usd);

#endif
