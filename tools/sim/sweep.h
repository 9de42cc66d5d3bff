/* --sweep: one policy on a grid of pool mixes, and the Pareto front of the
 * pool's cost per hour against SLO attainment, so that the cheapest mix
 * meeting a target can be read off. */
#ifndef INFSCHED_SIM_SWEEP_H
#define INFSCHED_SIM_SWEEP_H

#include "tools/sim/pool.h"
#include "tools/sim/summary.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct sweep_point {
  char pool[256]; /* "gpu=2,sram=0,tpu=1" */
  uint32_t workers;
  summary_t sum;
  bool pareto; /* no other mix is as cheap and as good, one of them better */
} sweep_point_t;

typedef struct sweep_result {
  sweep_point_t *v; /* in grid order */
  size_t n;
  double target;
  int cheapest; /* index of the cheapest mix meeting target, or -1 */
} sweep_result_t;

/* Runs base (its policy) on every non-empty mix of grid (each entry from
 * its min to its max count). Returns 0, or a negative code with a reason in
 * err. */
int sweep_run(const sim_config_t *base, const pool_t *grid,
              const sim_source_t *src, double target, sweep_result_t *out,
              char *err, size_t errlen);
void sweep_result_free(sweep_result_t *r);

/* The Pareto front, cheapest first, and the cheapest mix meeting target. */
void sweep_print(const sweep_result_t *r, FILE *out);

/* {"policy", "target", "cheapest", "runs": [{"pool", "workers",
 * "usd_per_hour", "usd_total", "usd_per_mtok", "slo_attainment",
 * "ttft_p99_ms", "pareto"}, ...]}; NULL when out of memory. */
cJSON *sweep_to_json(const sweep_result_t *r);

#endif
