/* A report with something in every chart, for the HTML tests: a minute of
 * traffic in three classes on six workers of three classes, with failures,
 * rejections, pool figures, a queue-depth and a per-worker sample every
 * second, and the run's settings. The same every time (a fixed linear
 * congruential sequence). */
#ifndef INFSCHED_TESTS_REPORT_FIXTURE_H
#define INFSCHED_TESTS_REPORT_FIXTURE_H

#include "report.h"

#include <math.h>
#include <stdio.h>

static double fixture_uniform(uint64_t *x) {
  *x = *x * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(*x >> 11) * 0x1.0p-53;
}

static report_t *fixture_report(void) {
  static const char *const workers[][2] = {
      {"gpu-0", "gpu"},   {"gpu-1", "gpu"}, {"sram-0", "sram"},
      {"sram-1", "sram"}, {"tpu-0", "tpu"}, {"tpu-1", "tpu"}};
  /* Per class: typical TTFT (ms), TPOT (ms), output tokens, prompt tokens,
   * share of requests. */
  static const double shape[INFS_CLASS_COUNT][5] = {
      {120, 8, 20, 2000, 0.5},
      {900, 20, 180, 40000, 0.4},
      {6000, 60, 900, 30000, 0.1}};
  static const uint32_t slo[INFS_CLASS_COUNT][2] = {
      {450, 40}, {2000, 25}, {30000, 200}};
  report_t *r = report_new();
  if (!r)
    return NULL;
  uint64_t x = 42;
  for (int i = 0; i < 900; i++) {
    double u = fixture_uniform(&x);
    int c = u < shape[0][4] ? 0 : u < shape[0][4] + shape[1][4] ? 1 : 2;
    /* Load rises in the middle of the minute, and latency with it. */
    double t_s = 60.0 * i / 900;
    double load = 1 + 2 * exp(-pow((t_s - 30) / 8, 2));
    double ttft = shape[c][0] * load * exp(0.6 * (fixture_uniform(&x) - 0.5));
    uint32_t gen = (uint32_t)(shape[c][2] * (0.5 + fixture_uniform(&x)));
    double e2e = ttft + shape[c][1] * load * gen;
    int w = (int)(fixture_uniform(&x) * 6);
    report_status_t st = REPORT_COMPLETED;
    double v = fixture_uniform(&x);
    if (v < 0.02)
      st = REPORT_FAILED;
    else if (v < 0.05)
      st = REPORT_REJECTED;
    uint32_t prompt = (uint32_t)(shape[c][3] * (0.5 + fixture_uniform(&x)));
    report_outcome_t o = {
        .cls = (infs_class_t)c,
        .status = st,
        .prompt_tokens = prompt,
        .cached_tokens = prompt / 2,
        .generated_tokens = gen,
        .ttft = (infs_time_t)(ttft * 1000),
        .e2e = (infs_time_t)(e2e * 1000),
        .slo = {slo[c][0], 0, slo[c][1]},
        .cost_usd = 1e-6 * (prompt / 100.0 + gen),
        .worker_id = st == REPORT_COMPLETED ? workers[w][0] : NULL,
        .worker_class = st == REPORT_COMPLETED ? workers[w][1] : NULL,
        .error = st == REPORT_FAILED     ? "worker_lost"
                 : st == REPORT_REJECTED ? "queue_full"
                                         : NULL,
        .done_at = (infs_time_t)((t_s + e2e / 1000) * 1e6),
    };
    /* Every third request on a GPU was prefilled on a TPU. */
    bool split = w < 2 && i % 3 == 0;
    o.phases = (report_phases_t){
        .known = st == REPORT_COMPLETED,
        .split = split,
        .queue = (infs_time_t)(ttft * 100),
        .prefill = (infs_time_t)(ttft * (split ? 700 : 900)),
        .transfer = split ? (infs_time_t)(ttft * 200) : 0,
        .decode = (infs_time_t)((e2e - ttft) * 1000),
        .prefill_cost_usd = split ? 1e-6 * prompt / 200.0 : 0,
        .prefill_worker_id = split ? workers[4 + w][0] : NULL,
        .prefill_worker_class = split ? "tpu" : NULL,
    };
    report_add(r, &o);
  }
  for (int s = 0; s <= 60; s++) {
    double load = exp(-pow((s - 30) / 8.0, 2));
    report_sample_t smp = {
        .t = (infs_time_t)s * 1000000,
        .queued = (uint32_t)(12 * load),
        .worker_queued = (uint32_t)(20 * load),
        .running = (uint32_t)(15 + 25 * load),
        .open = (uint32_t)(20 + 50 * load),
    };
    report_add_sample(r, &smp);
  }
  static const double price_per_s[] = {10.68 / 3600, 381.0 / 3600, 9.76 / 3600};
  /* Each worker busier in the middle of the minute, its counters rising. */
  double busy[6] = {0}, cost[6] = {0};
  for (int s = 0; s <= 60; s++) {
    double load = exp(-pow((s - 30) / 8.0, 2));
    for (int w = 0; w < 6; w++) {
      busy[w] += fmin(1, 0.2 + 0.1 * w + 0.5 * load);
      cost[w] += price_per_s[w / 2];
      report_worker_sample_t ws = {
          .t = (infs_time_t)s * 1000000,
          .id = workers[w][0],
          .cls = workers[w][1],
          .outstanding = (uint32_t)(2 + w + 10 * load),
          .busy_s = busy[w],
          .cost_usd = cost[w],
      };
      report_add_worker_sample(r, &ws);
    }
  }
  report_set_setting(r, "workload", "codex, 8 sessions, 60 s");
  report_set_setting(r, "seed", "42");
  static const char *const profiles[] = {"gpu-h100",  "gpu-h100", "sram-wse3",
                                         "sram-wse3", "tpu-v6e",  "tpu-v6e"};
  report_set_count_setting(r, "pool", profiles, 6);
  for (int w = 0; w < 6; w++)
    report_add_worker(r, workers[w][0], workers[w][1], price_per_s[w / 2] * 62,
                      62 * (0.2 + 0.1 * w), 62);
  report_set_policy(r, "balanced");
  report_set_window(r, 62 * 1000000ull);
  return r;
}

#endif
