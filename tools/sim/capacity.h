/* --capacity: for each policy, the highest arrival rate (a multiple of the
 * workload's own: poisson's rate, a trace's speed-up) at which at least a
 * target share of requests meets its SLO, and the USD per million
 * SLO-meeting tokens there (docs/architecture.md, "Cost").
 *
 * The search doubles (or halves) the scale from 1 until attainment crosses
 * the target, then bisects geometrically until the bracket is within the
 * tolerance. It assumes attainment falls as the rate rises, which holds
 * for a fixed pool up to the noise of one seeded workload. */
#ifndef INFSCHED_SIM_CAPACITY_H
#define INFSCHED_SIM_CAPACITY_H

#include "tools/sim/summary.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct capacity_opts {
  double target;    /* SLO attainment to sustain, e.g. 0.99 */
  double tolerance; /* stop when hi / lo <= 1 + tolerance */
  double min_scale; /* give up below this */
  double max_scale; /* stop doubling above this */
} capacity_opts_t;

/* target 0.99, tolerance 0.02, scales from 1/64 to 1024. */
void capacity_opts_default(capacity_opts_t *o);

typedef struct capacity_point {
  char policy[64];
  bool found;    /* some scale met the target */
  bool capped;   /* max_scale still met it: capacity is higher */
  double scale;  /* highest scale that met the target */
  char rate[64]; /* what scale means, from the source */
  summary_t sum; /* the run at that scale */
  unsigned runs; /* simulations the search took */
} capacity_point_t;

/* Searches one policy (base's). When json is not NULL, *json gets the
 * report of the run at the found scale (NULL when none was found). Returns
 * 0, or a negative code with a reason in err. */
int capacity_search(const sim_config_t *base, const sim_source_t *src,
                    const capacity_opts_t *o, capacity_point_t *out,
                    cJSON **json, char *err, size_t errlen);

void capacity_print(const capacity_point_t *v, size_t n, double target,
                    FILE *out);

#endif
