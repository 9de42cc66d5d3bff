/* Cost accounting of one worker (docs/architecture.md, "Cost"): its price
 * per hour for the time it is up, energy at a price per kWh from idle and
 * busy power, and per-token charges of upstreams billed that way. */
#ifndef INFSCHED_COST_H
#define INFSCHED_COST_H

#include "infsched/profile.h"

#define COST_DEFAULT_KWH_USD 0.10

/* Pool cost of a worker up for up_s seconds, busy_s of them, in USD
 * (excluding per-token charges, which the caller adds as they are billed). */
double cost_worker_usd(const infs_profile_t *p, double up_s, double busy_s,
                       double kwh_usd);

/* Marginal cost of one request that used busy_s of worker time. */
double cost_request_usd(const infs_profile_t *p, double busy_s,
                        uint32_t prompt_tokens, uint32_t generated_tokens,
                        double kwh_usd);

#endif
