/* --sweep: one policy on a grid of pool mixes, and the Pareto front of the
 * pool's cost per hour against SLO attainment, so that the cheapest mix
 * meeting a target can be read off. Every mix runs on several seeds: a mix
 * meets the target when its worst seed does, on enough requests
 * (capacity.h's CAPACITY_MIN_REQUESTS), and the front is drawn by the
 * mean. */
#ifndef INFSCHED_SIM_SWEEP_H
#define INFSCHED_SIM_SWEEP_H

#include "pool.h"
#include "summary.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

struct sweep_point;

typedef struct sweep_opts {
  double target;         /* SLO attainment to meet */
  unsigned seeds;        /* runs per mix, on the source's seed plus 0.. */
  uint64_t min_requests; /* a run with fewer cannot meet the target */
  /* When set, called after each mix with how many have run of how many,
   * since a grid on a long workload runs for minutes. */
  void (*progress)(const struct sweep_point *pt, size_t done, size_t total);
} sweep_opts_t;

typedef struct sweep_point {
  char pool[256]; /* "gpu=2,sram=0,tpu=1" */
  uint32_t workers;
  uint32_t kinds;    /* pool entries with workers: 1 is a single-class pool */
  summary_t sum;     /* seed 0's run */
  double slo_mean;   /* attainment over the seeds */
  double slo_min;
  double slo_max;
  uint64_t requests; /* the fewest any seed's run sent */
  bool meets;        /* every seed met the target on enough requests */
  bool pareto; /* no other mix is as cheap and as good (by slo_mean), one of
                  them better */
} sweep_point_t;

typedef struct sweep_result {
  sweep_point_t *v; /* in grid order */
  size_t n;
  sweep_opts_t opts;
  int cheapest;        /* index of the cheapest mix that meets, or -1 */
  int cheapest_single; /* the same among single-class mixes */
} sweep_result_t;

/* Runs base (its policy) on every non-empty mix of grid (each entry from
 * its min to its max count). Returns 0, or a negative code with a reason in
 * err. */
int sweep_run(const sim_config_t *base, const pool_t *grid,
              const sim_source_t *src, const sweep_opts_t *o,
              sweep_result_t *out, char *err, size_t errlen);
void sweep_result_free(sweep_result_t *r);

/* The Pareto front, cheapest first, and the cheapest mixes meeting target
 * (any, and single-class). */
void sweep_print(const sweep_result_t *r, FILE *out);

/* {"policy", "target", "seeds", "min_requests", "cheapest",
 * "cheapest_single_class", "runs": [{"pool", "workers", "usd_per_hour",
 * "usd_total", "usd_per_mtok", "slo_attainment" (mean), "slo_min",
 * "slo_max", "requests", "meets", "ttft_p99_ms", "pareto"}, ...]}; NULL when
 * out of memory. */
cJSON *sweep_to_json(const sweep_result_t *r);

#endif
