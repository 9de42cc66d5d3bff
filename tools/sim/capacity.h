/* --capacity: for each policy, the highest arrival rate (a multiple of the
 * workload's own: poisson's rate, a trace's copies or speed-up, codex's
 * sessions) at which at least a target share of requests meets its SLO,
 * and the USD per million SLO-meeting tokens there (docs/architecture.md,
 * "Cost").
 *
 * The search doubles (or halves) the scale from 1 until attainment crosses
 * the target, then bisects geometrically until the bracket is within the
 * tolerance. It assumes attainment falls as the rate rises, which holds
 * for a fixed pool up to the noise of one seeded workload; that noise is
 * why the search runs once per seed and reports the spread. A probe with
 * fewer than min_requests requests cannot tell the target from a point
 * below it, so the search stops there and says so rather than concluding
 * from it. */
#ifndef INFSCHED_SIM_CAPACITY_H
#define INFSCHED_SIM_CAPACITY_H

#include "summary.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

/* The fewest requests a probe needs: at 99% attainment the 95% confidence
 * interval of a share measured over 1,000 requests is +-0.62 points
 * (1.96 * sqrt(0.99 * 0.01 / 1000)), about the gap between 99% and 98.5%;
 * with 100 requests, one miss is a whole point. */
#define CAPACITY_MIN_REQUESTS 1000

struct capacity_probe;

typedef struct capacity_opts {
  double target;         /* SLO attainment to sustain, e.g. 0.99 */
  double tolerance;      /* stop when hi / lo <= 1 + tolerance */
  double min_scale;      /* give up below this */
  double max_scale;      /* stop doubling above this */
  unsigned seeds;        /* searches, on the source's seed plus 0..seeds-1 */
  uint64_t min_requests; /* a probe with fewer decides nothing */
  /* When set, called after each probe of policy, since a search on a long
   * workload runs for minutes. */
  void (*progress)(const char *policy, const struct capacity_probe *pr);
} capacity_opts_t;

/* target 0.99, tolerance 0.02, scales from 1/64 to 1024, 3 seeds,
 * CAPACITY_MIN_REQUESTS. */
void capacity_opts_default(capacity_opts_t *o);

/* One simulation of the search. */
typedef struct capacity_probe {
  unsigned seed;
  double scale;
  uint64_t requests; /* sent */
  double slo;        /* attainment */
  bool met;
  bool too_few; /* fewer than min_requests: not used to conclude */
} capacity_probe_t;

typedef struct capacity_point {
  char policy[64];
  bool found;        /* every seed's search found a scale */
  bool capped;       /* max_scale still met it on some seed */
  bool too_few;      /* some search stopped at a probe with too few requests */
  unsigned seeds;    /* searches run */
  double scale;      /* the median over seeds of the highest scale met */
  double scale_min;  /* the spread of that scale over seeds */
  double scale_max;
  char rate[64];     /* what scale means, from the source */
  summary_t sum;     /* the run at scale, on the median seed */
  unsigned runs;     /* simulations the searches took */
  capacity_probe_t *probes; /* every run, in order; capacity_point_free */
  size_t n_probes;
} capacity_point_t;

/* Searches one policy (base's) on every seed. When json is not NULL,
 * *json gets the report of the run at the median seed's found scale (NULL
 * when none was found). Returns 0, or a negative code with a reason in
 * err. */
int capacity_search(const sim_config_t *base, const sim_source_t *src,
                    const capacity_opts_t *o, capacity_point_t *out,
                    cJSON **json, char *err, size_t errlen);
void capacity_point_free(capacity_point_t *p);

/* The table, then every probe with its request count. */
void capacity_print(const capacity_point_t *v, size_t n,
                    const capacity_opts_t *o, const sim_source_t *src,
                    FILE *out);

/* The probes as a JSON array; NULL when out of memory. */
cJSON *capacity_probes_json(const capacity_point_t *p);

#endif
