/* infsched-sim's event loop: the scheduler's pure core and the workers'
 * engines, driven by one workload in virtual time. Messages between the
 * client, the scheduler and the workers arrive after a fixed one-way delay;
 * workers register, heartbeat and account for cost as the worker daemon
 * does. Pure and deterministic: no clock, no I/O, no randomness beyond the
 * workload's seed, so one (configuration, workload) gives one report. */
#ifndef INFSCHED_SIM_H
#define INFSCHED_SIM_H

#include "report.h"
#include "workload.h"
#include "core.h"

#include <stddef.h>
#include <stdint.h>

/* One simulated worker. */
typedef struct sim_worker_spec {
  char id[INFS_NAME_MAX];
  char model[INFS_NAME_MAX]; /* what it serves; "" serves any model */
  infs_profile_t profile;
  uint32_t capacity; /* requests accepted at once; 0: 2 x max_batch, as the
                        worker daemon's default */
  infs_role_t role;
} sim_worker_spec_t;

typedef struct sim_config {
  core_config_t core; /* the scheduler: policy, heartbeat interval, ... */
  const sim_worker_spec_t *workers; /* borrowed for the run */
  size_t n_workers;
  infs_time_t delay_us; /* one-way latency of every message */
  double kwh_usd;       /* energy price, as the workers' --kwh-price */
  double drain_s;       /* after the last arrival, wait this long for
                           answers; requests still open then are lost
                           (loadgen's --drain) */
  const char *model;    /* model the client asks for; NULL or "": any */
  workload_recorder_t *record; /* NULL, or gets every request sent */
} sim_config_t;

/* Defaults: the scheduler's (least_loaded, 200 ms heartbeats), 100 us
 * delay, 0.10 USD/kWh, 30 s drain, no workers. */
void sim_config_defaults(sim_config_t *c);

/* Figures of one run beyond the report. */
typedef struct sim_stats {
  uint64_t events;     /* timeline events handled (deliveries, steps, ...) */
  uint64_t requests;   /* requests sent */
  uint64_t slo_tokens; /* prompt + generated tokens of the requests that
                          met their SLO (report.h's definition) */
  double pool_usd;     /* pool cost over the run, as in the report */
  double pool_usd_per_hour; /* the same, per hour the pool was up */
  infs_time_t window_us;    /* first arrival slot to the last answer */
  infs_time_t end_us;       /* virtual time when the run stopped */
} sim_stats_t;

/* Runs workload w (borrowed; consumed) on the configured pool and adds every
 * outcome and every worker's pool figures to report, and sets its policy and
 * window. stats may be NULL. Returns 0, or a negative code with a reason in
 * err (unknown policy, a profile the engine refuses, no workers). */
int sim_run(const sim_config_t *cfg, workload_t *w, report_t *report,
            sim_stats_t *stats, char *err, size_t errlen);

/* Makes a fresh workload for one run, its arrival rate multiplied by scale
 * (poisson's rate, a trace's copies or speed-up) and its seed the source's
 * plus seed: the drivers (compare, sweep, capacity) run the same seeded
 * workload many times, and sweep and capacity repeat it on other seeds.
 * Returns 0, or a negative code with a reason in err. */
typedef int (*sim_workload_fn)(void *ctx, double scale, unsigned seed,
                               workload_t **out, char *err, size_t errlen);

typedef struct sim_source {
  sim_workload_fn make;
  /* Writes what scale means into buf, e.g. "12.50 req/s" or "speed-up
   * 4.00x", for tables. */
  void (*describe)(void *ctx, double scale, char *buf, size_t len);
  void *ctx;
} sim_source_t;

#endif
