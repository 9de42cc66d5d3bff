/* The figures the simulator's comparisons are made of, read from one run's
 * report (its JSON, so they are the report's own numbers) and stats. */
#ifndef INFSCHED_SIM_SUMMARY_H
#define INFSCHED_SIM_SUMMARY_H

#include "report.h"
#include "sim.h"

#include <stdint.h>

typedef struct summary {
  char policy[64];
  uint64_t sent;
  uint64_t completed;
  uint64_t failed;
  uint64_t rejected;
  uint64_t lost;
  double slo;                         /* attainment over every request */
  double slo_class[INFS_CLASS_COUNT]; /* by class; -1: the class sent none */
  double ttft_p50_ms;
  double ttft_p99_ms;
  double usd_total;        /* the pool's cost over the run */
  double usd_per_mtok;     /* per million served tokens */
  double usd_per_mtok_slo; /* per million SLO-meeting tokens; 0: none met */
  double usd_per_hour;     /* the pool's cost per hour of the run */
  double req_per_s;
  double tok_per_s;
  double window_s;
  double cache_hit; /* cached share of prompt tokens served */
} summary_t;

/* Fills out from a finished run. Returns 0, or -ENOMEM. */
int summary_from_report(const report_t *r, const sim_stats_t *st,
                        summary_t *out);

#endif
