/* The step-time model: what one engine step costs on a profile. The engine
 * and the core's predictor both call it, so a routing decision predicts what
 * the worker will then do. */
#ifndef INFSCHED_MODEL_STEP_H
#define INFSCHED_MODEL_STEP_H

#include "infsched/profile.h"

/* Decode step time in ms for a batch of b sequences holding ctx_tokens. */
double profile_step_ms(const infs_profile_t *p, uint32_t b,
                       uint64_t ctx_tokens);

/* Prefill time in microseconds of n new tokens behind c cached ones. */
infs_time_t profile_prefill_us(const infs_profile_t *p, uint64_t n, uint64_t c);

#endif
