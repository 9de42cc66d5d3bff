/* tools/sim: the event loop's timing and cost against hand-computed figures,
 * determinism (one seed, one report, byte for byte), the drivers (compare,
 * sweep, capacity) and pool mixes. */
#include "policy.h"
#include "capacity.h"
#include "compare.h"
#include "drive.h"
#include "matrix.h"
#include "pool.h"
#include "sim.h"
#include "sweep.h"
#include "cost.h"
#include "transfer.h"
#include "profile_fixture.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef INFSCHED_SOURCE_DIR
#error "INFSCHED_SOURCE_DIR must name the source tree"
#endif

static const char *profiles_path = INFSCHED_SOURCE_DIR "/configs/profiles.yaml";

/* A worker whose figures are easy to add up: 10,000 prompt tokens/s, a
 * 10 ms decode step whatever the batch, prompts prefilled in one step. */
static infs_profile_t simple_profile(void) {
  infs_profile_t p = {
      .name = "simple",
      .cls = INFS_WORKER_GPU,
      .price_per_hour = 36.0,
      .power_idle_w = 1000,
      .power_busy_w = 3000,
      .max_batch = 8,
      .kv_tokens = 100000,
      .max_context = 8192,
      .block_size = 64,
      .max_num_batched_tokens = 4096,
  };
  /* 10 ms for the weights, 0.1 ms per prompt token: a decode step of up to
   * 100 sequences takes 10 ms, a prompt of P >= 100 tokens P / 10 ms. */
  fixture_roofline(&p, 10, 0.1, 0, 0);
  return p;
}

/* The defaults on one worker of simple_profile (wk is borrowed by cfg). */
static void one_simple_worker(sim_worker_spec_t *wk, sim_config_t *cfg) {
  *wk = (sim_worker_spec_t){.id = "w-0", .profile = simple_profile()};
  sim_config_defaults(cfg);
  cfg->workers = wk;
  cfg->n_workers = 1;
}

static workload_dist_t fixed(uint32_t n) {
  workload_dist_t d = {
      .kind = WORKLOAD_DIST_FIXED, .median = n, .min = n, .max = n};
  return d;
}

static double json_num(const cJSON *o, const char *path) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  const cJSON *cur = o;
  char *save = NULL;
  for (char *k = strtok_r(buf, ".", &save); k && cur;
       k = strtok_r(NULL, ".", &save))
    cur = cJSON_GetObjectItemCaseSensitive(cur, k);
  assert_non_null(cur);
  assert_true(cJSON_IsNumber(cur));
  return cur->valuedouble;
}

/* --- a poisson source for the drivers --- */

static int make_poisson(void *ctx, double scale, unsigned seed,
                        workload_t **out, char *err, size_t errlen) {
  workload_opts_t o = *(const workload_opts_t *)ctx;
  o.rate *= scale;
  o.seed += seed;
  return workload_poisson_new(&o, out, err, errlen);
}

static void describe_poisson(void *ctx, double scale, char *buf, size_t len) {
  snprintf(buf, len, "%.3g req/s",
           ((const workload_opts_t *)ctx)->rate * scale);
}

static char *run_json(const sim_config_t *cfg, const workload_opts_t *wo,
                      sim_stats_t *st) {
  char err[256] = "";
  workload_t *w = NULL;
  report_t *r = report_new();
  assert_int_equal(workload_poisson_new(wo, &w, err, sizeof err), 0);
  int rc = sim_run(cfg, w, r, st, err, sizeof err);
  if (rc)
    fail_msg("sim_run: %s", err);
  cJSON *j = report_to_json(r);
  char *text = cJSON_Print(j);
  assert_non_null(text);
  cJSON_Delete(j);
  report_destroy(&r);
  workload_destroy(&w);
  return text;
}

/* --- one request, every microsecond accounted for --- */

static void test_one_request_timeline(void **state) {
  (void)state;
  sim_worker_spec_t wk;
  sim_config_t cfg;
  one_simple_worker(&wk, &cfg);
  cfg.delay_us = 250;
  workload_opts_t wo;
  workload_opts_default(&wo);
  wo.max_requests = 1;
  wo.prompt = fixed(1000);
  wo.output = fixed(5);

  sim_stats_t st;
  char *text = run_json(&cfg, &wo, &st);
  cJSON *j = cJSON_Parse(text);
  assert_non_null(j);
  assert_int_equal(json_num(j, "requests.completed"), 1);
  assert_int_equal(json_num(j, "requests.lost"), 0);
  /* Client -> scheduler -> worker, 100 ms of prefill, worker -> scheduler
   * -> client: four delays. Four more tokens at one 10 ms step each. */
  assert_float_equal(json_num(j, "latency_ms.ttft.mean"), 100.0 + 4 * 0.25,
                     1e-9);
  assert_float_equal(json_num(j, "latency_ms.e2e.mean"), 140.0 + 4 * 0.25,
                     1e-9);
  assert_float_equal(json_num(j, "latency_ms.tpot.mean"), 10.0, 1e-9);
  /* The pool paid the whole window: 140 ms busy, the rest idle. */
  double window = json_num(j, "window_s");
  double expect = cost_worker_usd(&wk.profile, window, 0.140, cfg.kwh_usd);
  assert_float_equal(json_num(j, "cost.usd_total"), expect, 1e-12);
  assert_float_equal(st.pool_usd, expect, 1e-12);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.slo_tokens, 1005);
  cJSON_Delete(j);
  free(text);
}

/* --- determinism: one seed, one report, byte for byte --- */

static sim_worker_spec_t *shipped_pool(size_t *n) {
  char err[256];
  profile_set_t *set = NULL;
  assert_int_equal(profile_set_load(profiles_path, &set, err, sizeof err), 0);
  static const char *const names[] = {"gpu-h100", "gpu-h100", "sram-wse3",
                                      "tpu-v6e"};
  *n = sizeof names / sizeof *names;
  sim_worker_spec_t *v = calloc(*n, sizeof *v);
  for (size_t i = 0; i < *n; i++) {
    const infs_profile_t *p = profile_set_find(set, names[i]);
    assert_non_null(p);
    v[i].profile = *p;
    snprintf(v[i].id, sizeof v[i].id, "w-%zu", i);
  }
  profile_set_destroy(&set);
  return v;
}

/* Defaults on the shipped pool; the caller frees the workers returned. */
static sim_worker_spec_t *shipped_setup(sim_config_t *cfg,
                                        workload_opts_t *wo) {
  size_t n;
  sim_worker_spec_t *ws = shipped_pool(&n);
  sim_config_defaults(cfg);
  cfg->workers = ws;
  cfg->n_workers = n;
  workload_opts_default(wo);
  return ws;
}

static void test_same_seed_same_report(void **state) {
  (void)state;
  sim_config_t cfg;
  workload_opts_t wo;
  sim_worker_spec_t *ws = shipped_setup(&cfg, &wo);
  wo.rate = 40;
  wo.duration_s = 20;
  wo.shared_prefix = 0.5;
  wo.seed = 42;

  /* Every policy of the core: none may bring in a clock or an order that
   * depends on addresses. */
  for (const policy_ops_t *const *p = policy_all(); *p; p++) {
    cfg.core.policy = (*p)->name;
    sim_stats_t a, b;
    char *one = run_json(&cfg, &wo, &a);
    char *two = run_json(&cfg, &wo, &b);
    if (strcmp(one, two) != 0)
      fail_msg("policy %s: two runs, two reports", (*p)->name);
    assert_int_equal(a.events, b.events);
    assert_true(a.requests > 600);
    /* The check can fail: another seed gives another report. */
    wo.seed = 43;
    char *three = run_json(&cfg, &wo, &b);
    wo.seed = 42;
    assert_string_not_equal(one, three);
    free(one);
    free(two);
    free(three);
  }
  free(ws);
}

/* --- Mooncake traces: shared block ids are cache hits --- */

/* tests/data/mooncake_shared.jsonl on one worker, requests a second apart
 * (none overlaps another, nothing is evicted from a 100-block cache): each
 * hits exactly the 64-token blocks its leading ids share with an earlier
 * row, 8 per 512-token id. Row 2 shares 2
 * ids (16 blocks), row 3 one (8), row 4 repeats row 1 (2 ids and the one
 * whole block of its 76-token last id: 17), row 5 shares nothing as its
 * first id differs, row 6 extends row 1 (17). */
static void test_mooncake_shared_ids_hit(void **state) {
  (void)state;
  const char *spec =
      "mooncake:" INFSCHED_SOURCE_DIR "/tests/data/mooncake_shared.jsonl";
  sim_worker_spec_t wk;
  sim_config_t cfg;
  one_simple_worker(&wk, &cfg);
  workload_opts_t wo;
  workload_opts_default(&wo);
  char err[256] = "";
  workload_t *w = NULL;
  if (workload_new(spec, &wo, &w, err, sizeof err))
    fail_msg("%s", err);
  report_t *r = report_new();
  if (sim_run(&cfg, w, r, NULL, err, sizeof err))
    fail_msg("sim_run: %s", err);
  cJSON *j = report_to_json(r);
  assert_int_equal(json_num(j, "requests.completed"), 6);
  assert_int_equal(json_num(j, "tokens.prompt"),
                   1100 + 1536 + 700 + 1100 + 1500 + 2000);
  assert_int_equal(json_num(j, "tokens.cached"), (16 + 8 + 17 + 0 + 17) * 64);
  cJSON_Delete(j);
  report_destroy(&r);
  workload_destroy(&w);
}

/* --- drain: what is still open when it ends is lost --- */

static void test_drain_loses_open_requests(void **state) {
  (void)state;
  sim_worker_spec_t wk;
  sim_config_t cfg;
  one_simple_worker(&wk, &cfg);
  cfg.drain_s = 0;
  workload_opts_t wo;
  workload_opts_default(&wo);
  wo.rate = 50; /* 5 s of work per second for one worker */
  wo.duration_s = 2;
  wo.prompt = fixed(1000);
  wo.output = fixed(20);
  sim_stats_t st;
  char *text = run_json(&cfg, &wo, &st);
  cJSON *j = cJSON_Parse(text);
  double sent = json_num(j, "requests.sent");
  double lost = json_num(j, "requests.lost");
  assert_true(lost > 0);
  assert_float_equal(sent,
                     json_num(j, "requests.completed") +
                         json_num(j, "requests.failed") +
                         json_num(j, "requests.rejected") + lost,
                     0);
  assert_int_equal(sent, st.requests);
  cJSON_Delete(j);
  free(text);
}

/* --- compare --- */

static void test_compare_runs_each_policy(void **state) {
  (void)state;
  sim_config_t cfg;
  workload_opts_t wo;
  sim_worker_spec_t *ws = shipped_setup(&cfg, &wo);
  wo.rate = 20;
  wo.duration_s = 10;
  sim_source_t src = {make_poisson, describe_poisson, &wo};
  char err[256] = "";
  const char **policies =
      drive_policies("round_robin,least_loaded", err, sizeof err);
  assert_non_null(policies);
  summary_t sums[2];
  cJSON *reports = cJSON_CreateArray();
  assert_int_equal(
      compare_run(&cfg, policies, &src, sums, reports, err, sizeof err), 0);
  assert_int_equal(cJSON_GetArraySize(reports), 2);
  assert_string_equal(sums[0].policy, "round_robin");
  assert_string_equal(sums[1].policy, "least_loaded");
  /* Load for load: the same requests went to both. */
  assert_int_equal(sums[0].sent, sums[1].sent);
  assert_true(sums[0].sent > 100);
  assert_float_equal(json_num(cJSON_GetArrayItem(reports, 1), "requests.sent"),
                     (double)sums[1].sent, 0);
  for (int i = 0; i < 2; i++) {
    assert_true(sums[i].usd_per_mtok > 0);
    assert_true(sums[i].ttft_p99_ms >= sums[i].ttft_p50_ms);
  }
  cJSON_Delete(reports);
  free(policies);

  assert_null(drive_policies("round_robin,nope", err, sizeof err));
  assert_non_null(strstr(err, "nope"));
  policies = drive_policies("all", err, sizeof err);
  assert_non_null(policies);
  assert_non_null(policies[0]);
  free(policies);
  free(ws);
}

/* --- pools --- */

typedef struct pool_fixture {
  cluster_spec_t spec;
  cluster_worker_t workers[2];
  profile_set_t *set;
} pool_fixture_t;

static void pool_fixture_init(pool_fixture_t *f) {
  char err[256];
  memset(f, 0, sizeof *f);
  assert_int_equal(profile_set_load(profiles_path, &f->set, err, sizeof err),
                   0);
  f->spec.path = "test.yaml";
  f->spec.profiles_path = (char *)profiles_path;
  f->spec.workers = f->workers;
  f->spec.nworkers = 2;
  f->workers[0] = (cluster_worker_t){.name = "big",
                                     .profile = "gpu-h100",
                                     .backend = "sim",
                                     .model = "m",
                                     .count = 2};
  f->workers[1] = (cluster_worker_t){
      .name = "fast", .profile = "sram-wse3", .backend = "sim", .count = 1};
  /* As a cluster file's "capacity: 3" leaves it. */
  f->workers[1].set[SET_CAPACITY] = "3";
}

static void test_pool_mixes(void **state) {
  (void)state;
  pool_fixture_t f;
  pool_fixture_init(&f);
  char err[256], desc[128];
  pool_t p;
  assert_int_equal(pool_from_cluster(&f.spec, f.set, &p, err, sizeof err), 0);
  assert_int_equal(pool_instances(&p), 3);
  size_t n;
  sim_worker_spec_t *ws = pool_expand(&p, &n);
  assert_int_equal(n, 3);
  assert_string_equal(ws[1].id, "big-1");
  assert_string_equal(ws[1].model, "m");
  assert_string_equal(ws[2].id, "fast-0");
  assert_string_equal(ws[2].model, POOL_DEFAULT_MODEL);
  assert_string_equal(ws[2].model, "codex-70b");
  /* Each simulated worker takes its entry's capacity setting, as the
   * daemon takes --capacity; 0 is the daemon's default, 2 x max_batch. */
  assert_int_equal(ws[1].capacity, 0);
  assert_int_equal(ws[2].capacity, 3);
  free(ws);

  /* A class finds the cluster's entry; a class the cluster lacks finds a
   * profile of the file; a profile name works too. */
  assert_int_equal(pool_apply_mix(&p, &f.spec, f.set, "gpu=4,tpu=1,sram=0", 0,
                                  err, sizeof err),
                   0);
  pool_describe(&p, desc, sizeof desc);
  assert_string_equal(desc, "big=4,tpu=1,fast=0");
  assert_int_equal(p.v[1].profile.cls, INFS_WORKER_TPU);
  assert_int_equal(
      pool_apply_mix(&p, &f.spec, f.set, "sram-wse3=2", 0, err, sizeof err), 0);
  pool_describe(&p, desc, sizeof desc);
  assert_string_equal(desc, "fast=2");

  static const char *const bad[] = {"xpu=1", "gpu=abc",  "gpu=1,big=2", "gpu",
                                    "",      "gpu=5000", "gpu=2:1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = '\0';
    assert_int_not_equal(
        pool_apply_mix(&p, &f.spec, f.set, bad[i], 0, err, sizeof err), 0);
    assert_true(strlen(err) > 0);
  }
  pool_describe(&p, desc, sizeof desc);
  assert_string_equal(desc, "fast=2"); /* unchanged by the failures */

  /* A role per kind: workers of one entry in two roles are apart. */
  assert_int_equal(pool_apply_mix(&p, &f.spec, f.set,
                                  "tpu:prefill=2,gpu:decode=1,big=1", 0, err,
                                  sizeof err),
                   0);
  pool_describe(&p, desc, sizeof desc);
  assert_string_equal(desc, "tpu:prefill=2,big:decode=1,big=1");
  ws = pool_expand(&p, &n);
  assert_int_equal(n, 4);
  assert_string_equal(ws[1].id, "tpu-prefill-1");
  assert_int_equal(ws[1].role, INFS_ROLE_PREFILL);
  assert_string_equal(ws[2].id, "big-decode-0");
  assert_int_equal(ws[2].role, INFS_ROLE_DECODE);
  assert_string_equal(ws[3].id, "big-0");
  assert_int_equal(ws[3].role, INFS_ROLE_BOTH);
  free(ws);
  static const char *const bad_roles[] = {"gpu:fast=1", "gpu:=1",
                                          "gpu:decode=1,big:decode=2"};
  for (size_t i = 0; i < sizeof bad_roles / sizeof *bad_roles; i++)
    assert_int_not_equal(pool_apply_mix(&p, &f.spec, f.set, bad_roles[i], 0,
                                        err, sizeof err),
                         0);
  assert_non_null(strstr(err, "names the workers 'big-decode' again"));

  /* A grid: big 0..2 (N is 0:N), tpu 1..2: 3 x 2 mixes. */
  assert_int_equal(
      pool_apply_mix(&p, &f.spec, f.set, "gpu=2,tpu=1:2", 1, err, sizeof err),
      0);
  size_t mixes = 0;
  pool_grid_first(&p);
  do
    mixes++;
  while (pool_grid_next(&p));
  assert_int_equal(mixes, 6);
  pool_free(&p);
  profile_set_destroy(&f.set);
}

/* --- sweep and capacity --- */

/* What the progress callbacks were told, in order. */
static size_t progress_calls, progress_done, progress_total;
static const char *progress_pool;
static const capacity_probe_t *progress_probe;
static const char *progress_policy;

static void on_sweep_progress(const sweep_point_t *pt, size_t done,
                              size_t total) {
  progress_calls++;
  assert_int_equal(done, progress_done + 1);
  progress_done = done;
  progress_total = total;
  progress_pool = pt->pool;
}

static void on_capacity_progress(const char *policy,
                                 const capacity_probe_t *pr) {
  progress_policy = policy;
  progress_calls++;
  progress_probe = pr;
}

static void test_sweep_pareto_front(void **state) {
  (void)state;
  pool_fixture_t f;
  pool_fixture_init(&f);
  char err[256] = "";
  pool_t grid;
  assert_int_equal(pool_from_cluster(&f.spec, f.set, &grid, err, sizeof err),
                   0);
  assert_int_equal(pool_apply_mix(&grid, &f.spec, f.set, "gpu=0:2,tpu=0:2", 1,
                                  err, sizeof err),
                   0);
  sim_config_t cfg;
  sim_config_defaults(&cfg);
  workload_opts_t wo;
  workload_opts_default(&wo);
  wo.rate = 8;
  wo.duration_s = 10;
  sim_source_t src = {make_poisson, describe_poisson, &wo};
  sweep_result_t r;
  sweep_opts_t so = {.target = 0.5,
                     .seeds = 2,
                     .min_requests = 50,
                     .progress = on_sweep_progress};
  progress_calls = progress_done = 0;
  assert_int_equal(sweep_run(&cfg, &grid, &src, &so, &r, err, sizeof err), 0);
  assert_int_equal(r.n, 8); /* 3 x 3 less the empty pool */
  /* Told of every mix as it ran, the last one as the grid's last. */
  assert_int_equal(progress_calls, 8);
  assert_int_equal(progress_total, 8);
  assert_ptr_equal(progress_pool, r.v[7].pool);
  size_t front = 0;
  for (size_t i = 0; i < r.n; i++) {
    const sweep_point_t *a = &r.v[i];
    front += a->pareto;
    bool dominated = false;
    for (size_t k = 0; k < r.n; k++) {
      const sweep_point_t *b = &r.v[k];
      if (k != i && b->sum.usd_per_hour <= a->sum.usd_per_hour &&
          b->slo_mean >= a->slo_mean &&
          (b->sum.usd_per_hour < a->sum.usd_per_hour ||
           b->slo_mean > a->slo_mean))
        dominated = true;
    }
    assert_int_equal(a->pareto, !dominated);
  }
  assert_true(front >= 1);
  /* The cheapest meeting the target meets it on every seed, and nothing
   * cheaper does; the same among single-class mixes. */
  assert_true(r.cheapest >= 0);
  assert_true(r.cheapest_single >= 0);
  const sweep_point_t *c = &r.v[r.cheapest];
  const sweep_point_t *one = &r.v[r.cheapest_single];
  assert_true(c->slo_min >= 0.5 && c->meets);
  assert_true(one->slo_min >= 0.5 && one->kinds == 1);
  assert_true(one->sum.usd_per_hour >= c->sum.usd_per_hour);
  for (size_t i = 0; i < r.n; i++) {
    const sweep_point_t *p = &r.v[i];
    assert_true(p->slo_min <= p->slo_mean && p->slo_mean <= p->slo_max);
    assert_true(p->requests >= 50);
    assert_int_equal(p->kinds, strchr(p->pool, '0') ? 1 : 2);
    if (p->sum.usd_per_hour < c->sum.usd_per_hour)
      assert_true(p->slo_min < 0.5);
    if (p->kinds == 1 && p->sum.usd_per_hour < one->sum.usd_per_hour)
      assert_true(p->slo_min < 0.5);
  }
  cJSON *j = sweep_to_json(&r);
  assert_non_null(j);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "runs")), 8);
  assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "cheapest_single_class")));
  cJSON_Delete(j);
  sweep_result_free(&r);

  /* Runs of ~80 requests cannot show a target met when 1,000 are needed. */
  so.min_requests = 1000;
  so.progress = NULL;
  assert_int_equal(sweep_run(&cfg, &grid, &src, &so, &r, err, sizeof err), 0);
  assert_int_equal(r.cheapest, -1);
  assert_int_equal(r.cheapest_single, -1);
  sweep_result_free(&r);
  pool_free(&grid);
  profile_set_destroy(&f.set);
}

static void test_capacity_brackets_the_target(void **state) {
  (void)state;
  sim_worker_spec_t wk;
  sim_config_t cfg;
  one_simple_worker(&wk, &cfg);
  workload_opts_t wo;
  workload_opts_default(&wo);
  wo.rate = 1;
  wo.duration_s = 30;
  wo.prompt = fixed(1000);
  wo.output = fixed(10);
  wo.class_mix[INFS_CLASS_INTERACTIVE] = 1;
  wo.class_mix[INFS_CLASS_AGENT] = 0;
  wo.class_mix[INFS_CLASS_BATCH] = 0;
  sim_source_t src = {make_poisson, describe_poisson, &wo};
  capacity_opts_t co;
  capacity_opts_default(&co);
  co.target = 0.95;
  co.tolerance = 0.05;
  co.seeds = 1;
  co.min_requests = 10;
  co.progress = on_capacity_progress;
  progress_calls = 0;
  capacity_point_t pt;
  cJSON *report = NULL;
  char err[256] = "";
  assert_int_equal(
      capacity_search(&cfg, &src, &co, &pt, &report, err, sizeof err), 0);
  assert_true(pt.found);
  /* Told of every probe, each as it was recorded. */
  assert_int_equal(progress_calls, pt.n_probes);
  assert_ptr_equal(progress_probe, &pt.probes[pt.n_probes - 1]);
  assert_string_equal(progress_policy, cfg.core.policy);
  assert_false(pt.capped);
  assert_true(pt.sum.slo >= co.target);
  assert_true(pt.sum.usd_per_mtok_slo >= pt.sum.usd_per_mtok);
  assert_non_null(report);
  assert_float_equal(json_num(report, "slo_attainment"), pt.sum.slo, 1e-12);
  /* Just past the answer, the target is missed (the search's bracket). */
  summary_t above;
  assert_int_equal(drive_once(&cfg, &src, pt.scale * (1 + co.tolerance) * 1.5,
                              0, &above, NULL, err, sizeof err),
                   0);
  assert_true(above.slo < co.target);
  assert_true(pt.runs >= 3);
  assert_int_equal(pt.n_probes, pt.runs);
  cJSON_Delete(report);
  capacity_point_free(&pt);

  /* Three seeds: one search each, the median and its spread. */
  co.seeds = 3;
  assert_int_equal(
      capacity_search(&cfg, &src, &co, &pt, NULL, err, sizeof err), 0);
  assert_true(pt.found);
  assert_int_equal(pt.seeds, 3);
  assert_true(pt.scale_min <= pt.scale && pt.scale <= pt.scale_max);
  unsigned seen[3] = {0};
  for (size_t i = 0; i < pt.n_probes; i++) {
    assert_true(pt.probes[i].seed < 3);
    seen[pt.probes[i].seed]++;
  }
  assert_true(seen[0] >= 3 && seen[1] >= 3 && seen[2] >= 3);
  capacity_point_free(&pt);

  /* At scale 1 the workload sends ~30 requests: with 1,000 needed, the
   * search stops at its first probe and concludes nothing. */
  co.seeds = 1;
  co.min_requests = 1000;
  assert_int_equal(
      capacity_search(&cfg, &src, &co, &pt, &report, err, sizeof err), 0);
  assert_false(pt.found);
  assert_true(pt.too_few);
  assert_null(report);
  assert_int_equal(pt.n_probes, 1);
  assert_true(pt.probes[0].too_few);
  assert_false(pt.probes[0].met);
  assert_true(pt.probes[0].requests > 10 && pt.probes[0].requests < 60);
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  capacity_print(&pt, 1, &co, &src, mem);
  fclose(mem);
  assert_non_null(strstr(text, "too few requests to tell"));
  char line[128];
  snprintf(line, sizeof line, "%9llu",
           (unsigned long long)pt.probes[0].requests);
  assert_non_null(strstr(text, line)); /* each probe's request count */
  free(text);
  capacity_point_free(&pt);
}

/* --- the matrix: policies x workloads x pools --- */

/* Two policies, two workloads (the Poisson one at two rates) and two pools
 * (one simple worker, two): eight cells, each with its run at load and its
 * capacity searches, the 95% capacity never below the 99% one, and the
 * table and JSON carrying every cell and the command. */
static void test_matrix_cells(void **state) {
  (void)state;
  sim_worker_spec_t one[1], two[2];
  sim_config_t cfg;
  one_simple_worker(&one[0], &cfg);
  two[0] = one[0];
  two[1] = one[0];
  snprintf(two[1].id, sizeof two[1].id, "w-1");
  workload_opts_t slow, fast;
  workload_opts_default(&slow);
  slow.rate = 2;
  slow.duration_s = 10;
  slow.prompt = fixed(1000);
  slow.output = fixed(10);
  fast = slow;
  fast.rate = 8;
  matrix_workload_t wl[2] = {
      {"slow", {make_poisson, describe_poisson, &slow}},
      {"fast", {make_poisson, describe_poisson, &fast}},
  };
  matrix_pool_t pools[2] = {{"one", "w=1", one, 1}, {"two", "w=2", two, 2}};
  const char *policies[] = {"least_loaded", "kv_cost", NULL};
  matrix_t m = {.workloads = wl,
                .n_workloads = 2,
                .pools = pools,
                .n_pools = 2,
                .policies = policies};
  capacity_opts_default(&m.cap);
  m.cap.seeds = 1;
  m.cap.min_requests = 1; /* runs of tens of requests, for speed */
  char err[256] = "";
  if (matrix_run(&m, &cfg, NULL, err, sizeof err))
    fail_msg("matrix_run: %s", err);
  assert_int_equal(m.n_cells, 8);
  for (size_t k = 0; k < m.n_cells; k++) {
    const matrix_cell_t *c = &m.cells[k];
    assert_int_equal(c->workload, k / 4);
    assert_int_equal(c->pool, k / 2 % 2);
    assert_string_equal(c->policy, policies[k % 2]);
    assert_true(c->at_load.sent > 0);
    assert_true(c->cap99.found && c->cap95.found);
    assert_true(c->cap95.scale >= c->cap99.scale);
  }
  /* Four times the rate on the same pool: a quarter of the scale. */
  assert_float_equal(m.cells[4].cap99.scale * 4, m.cells[0].cap99.scale,
                     m.cells[0].cap99.scale * 0.1);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  matrix_markdown(&m, "infsched-sim --matrix", f);
  fclose(f);
  assert_non_null(strstr(text, "infsched-sim --matrix"));
  assert_non_null(strstr(text, "**fast** on **two** (w=2)"));
  assert_non_null(strstr(text, "| `kv_cost` |"));
  free(text);
  cJSON *j = matrix_to_json(&m, "cmd");
  assert_non_null(j);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "cells")), 8);
  assert_string_equal(cJSON_GetObjectItem(j, "command")->valuestring, "cmd");
  cJSON_Delete(j);
  matrix_free(&m);
}

/* --- disaggregation: prefill on one worker, decode on another --- */

/* Agent requests of 4,000 uncached prompt tokens (400 ms of prefill on
 * simple_profile) and 21 output tokens, 1.5 a second, on the pool given by
 * roles: prefill_role for w-0, decode for w-1 (both: neither splits). w-0
 * keeps its KV at 320 KB a token, so a split moves 4,000 x 320 KB; w-1
 * keeps none, so its decode steps take 10 ms whatever the contexts. */
static cJSON *disagg_run(infs_role_t prefill_role, infs_role_t decode_role,
                         const char *links) {
  sim_worker_spec_t wk[2];
  for (int i = 0; i < 2; i++) {
    wk[i] = (sim_worker_spec_t){.profile = simple_profile()};
    snprintf(wk[i].id, sizeof wk[i].id, "w-%d", i);
  }
  wk[0].profile.kv_kb_per_token = 320;
  wk[0].profile.cls = INFS_WORKER_TPU;
  wk[0].role = prefill_role;
  wk[1].role = decode_role;
  sim_config_t cfg;
  sim_config_defaults(&cfg);
  cfg.workers = wk;
  cfg.n_workers = 2;
  cfg.core.policy = "least_loaded";
  char err[256] = "";
  link_table_t *t = NULL;
  assert_int_equal(link_table_parse(links, &t, err, sizeof err), 0);
  cfg.core.links = t;
  workload_opts_t wo;
  workload_opts_default(&wo);
  wo.rate = 1.5;
  wo.duration_s = 120;
  wo.prompt = fixed(4000);
  wo.output = fixed(21);
  wo.class_mix[INFS_CLASS_INTERACTIVE] = 0;
  wo.class_mix[INFS_CLASS_AGENT] = 1;
  wo.class_mix[INFS_CLASS_BATCH] = 0;
  char *text = run_json(&cfg, &wo, NULL);
  cJSON *j = cJSON_Parse(text);
  assert_non_null(j);
  free(text);
  link_table_free(&t);
  assert_int_equal(json_num(j, "requests.lost"), 0);
  assert_int_equal(json_num(j, "requests.failed"), 0);
  assert_int_equal(json_num(j, "requests.completed"),
                   json_num(j, "requests.sent"));
  return j;
}

/* The decode worker's TPOT stays flat while the prompts are prefilled on
 * another worker, and the transfer over the link lands where the protocol
 * puts it: after the first token, which the prefill worker streams at
 * once, so the client's TTFT is the same over a slow and a fast link and
 * the gap to the second token grows by the transfer. */
static void test_split_decode_flat_transfer_in_first_gap(void **state) {
  (void)state;
  cJSON *slow = disagg_run(INFS_ROLE_PREFILL, INFS_ROLE_DECODE, "*>*=12.5");
  cJSON *fast = disagg_run(INFS_ROLE_PREFILL, INFS_ROLE_DECODE, "*>*=200");
  cJSON *whole = disagg_run(INFS_ROLE_BOTH, INFS_ROLE_BOTH, "*>*=200");
  double n = json_num(slow, "requests.completed");
  assert_true(n > 150);

  /* Every request was split: prefilled on w-0, decoded on w-1. */
  assert_true(json_num(slow, "phases.split.requests") == n);
  assert_true(json_num(fast, "phases.split.requests") == n);
  assert_true(json_num(whole, "phases.split.requests") == 0);

  /* 4,000 tokens of 320 KB: 1,310,720,000 bytes, plus the 20 us default
   * latency; the report's transfer phase is the modelled figure. */
  double bytes = 4000.0 * 320 * 1024;
  double slow_ms = (20 + bytes / 12.5e3) / 1e3, fast_ms = (20 + bytes / 200e3) / 1e3;
  assert_float_equal(json_num(slow, "phases.split.latency_ms.transfer.mean"),
                     slow_ms, 0.002);
  assert_float_equal(json_num(fast, "phases.split.latency_ms.transfer.mean"),
                     fast_ms, 0.002);

  /* Flat: the 20 decode steps after the KV arrives take 10 ms each on
   * w-1, plus at most one step of waiting for a step boundary and the
   * handoff's two hops, however busy w-0 is with prompts and whatever the
   * link. TPOT as the client sees it adds the transfer, spread over the
   * 20 gaps. */
  for (int k = 0; k < 2; k++) {
    cJSON *j = k ? fast : slow;
    double link = k ? fast_ms : slow_ms;
    assert_true(json_num(j, "phases.split.latency_ms.decode.p50") >= 200.0);
    assert_true(json_num(j, "phases.split.latency_ms.decode.p99") <= 211.0);
    assert_true(json_num(j, "latency_ms.tpot.p99") <= (211.0 + link) / 20);
  }
  /* Run whole on the same two workers, a request's decode shares its
   * steps with 400 ms prefills: its TPOT is no longer flat. */
  assert_true(json_num(whole, "latency_ms.tpot.p99") >
              2 * json_num(fast, "latency_ms.tpot.p99"));

  /* The first token comes from w-0 whatever the link ... */
  assert_float_equal(json_num(slow, "latency_ms.ttft.mean"),
                     json_num(fast, "latency_ms.ttft.mean"), 1e-9);
  /* ... and the first token's gap carries the transfer: end to end grows
   * by the difference of the two links (w-1 is idle enough that no
   * request waits for a step boundary longer on one link than the
   * other). */
  double grew = json_num(slow, "latency_ms.e2e.mean") -
                json_num(fast, "latency_ms.e2e.mean");
  assert_float_equal(grew, slow_ms - fast_ms, 0.01);
  /* The prefill worker's part of the cost is the TPU class's. */
  assert_true(
      json_num(slow, "phases.cost_by_worker_class.tpu.prefill.requests") == n);
  assert_true(
      json_num(slow, "phases.cost_by_worker_class.gpu.decode.requests") == n);
  cJSON_Delete(slow);
  cJSON_Delete(fast);
  cJSON_Delete(whole);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_request_timeline),
      cmocka_unit_test(test_same_seed_same_report),
      cmocka_unit_test(test_mooncake_shared_ids_hit),
      cmocka_unit_test(test_drain_loses_open_requests),
      cmocka_unit_test(test_compare_runs_each_policy),
      cmocka_unit_test(test_pool_mixes),
      cmocka_unit_test(test_sweep_pareto_front),
      cmocka_unit_test(test_capacity_brackets_the_target),
      cmocka_unit_test(test_matrix_cells),
      cmocka_unit_test(test_split_decode_flat_transfer_in_first_gap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
