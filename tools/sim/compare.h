/* --compare: every policy on the same seeded workload and pool, one table
 * and one report per policy. */
#ifndef INFSCHED_SIM_COMPARE_H
#define INFSCHED_SIM_COMPARE_H

#include "summary.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* Runs base with each policy (NULL-terminated names). Fills sums[i] (room
 * for every policy) and appends each report's JSON to reports when it is
 * not NULL. Returns 0, or a negative code with a reason in err. */
int compare_run(const sim_config_t *base, const char *const *policies,
                const sim_source_t *src, summary_t *sums, cJSON *reports,
                char *err, size_t errlen);

/* The comparison table: SLO attainment overall and by class, TTFT p50 and
 * p99, USD per million tokens, throughput. */
void compare_print(const summary_t *sums, size_t n, FILE *out);

#endif
