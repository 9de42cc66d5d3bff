/* infsched-sim: command line, files and output around the pure simulator. */
#include "infsched/errors.h"
#include "cli.h"
#include "clock.h"
#include "log.h"
#include "report.h"
#include "report_html.h"
#include "settings_core.h"
#include "workload.h"
#include "workload_cli.h"
#include "xalloc.h"
#include "slo_check.h"
#include "policy.h"
#include "cluster_file.h"
#include "capacity.h"
#include "compare.h"
#include "drive.h"
#include "matrix.h"
#include "pool.h"
#include "sim.h"
#include "sweep.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROGRAM "infsched-sim"

/* The policies' own settings, read as the scheduler reads them; their
 * getopt values are OPT_POLICY_SETTING + the setting's id. */
static const setting_id_t policy_settings[] = {
    SET_CACHE_MATCH_THRESHOLD, SET_CACHE_BALANCE_ABS,  SET_CACHE_BALANCE_REL,
    SET_KV_PREFILL_SCALE,      SET_KV_OVERLAP_CREDIT,  SET_KV_REQUEST_WEIGHT,
    SET_KV_TEMPERATURE,        SET_SCORE_QUEUE_WEIGHT, SET_SCORE_KV_WEIGHT,
    SET_SCORE_PREFIX_WEIGHT,
};
#define N_POLICY_SETTINGS (sizeof policy_settings / sizeof *policy_settings)
#define OPT_POLICY_SETTING 0x3000

static void usage(FILE *out) {
  fprintf(
      out,
      "Usage: " PROGRAM " --cluster FILE [OPTION]...\n"
      "Runs the scheduler's core and the workers' engines in virtual time on\n"
      "a workload, and prints the same report as infsched-loadgen.\n"
      "\n"
      "Pool and scheduler:\n"
      "  --cluster FILE        cluster file: profiles, policy, heartbeats, "
      "workers\n"
      "  --pool LIST           replace the cluster's workers, e.g. "
      "gpu=4,sram=1,tpu=2\n"
      "                        or tpu:prefill=2,gpu:decode=4 (keys: a worker "
      "entry,\n"
      "                        a class or a profile, each with an optional "
      "role)\n"
      "  --links SPEC          the links a split request's KV moves over, "
      "e.g.\n"
      "                        tpu>gpu=50:20:overlap,*>*=12.5 (default: the "
      "cluster\n"
      "                        file's links:; else 50 GB/s, 20 us, no "
      "overlap)\n"
      "  --policy NAME         routing policy (default: the cluster file's)\n"
      "  --heartbeat-ms N      heartbeat interval (default: the cluster "
      "file's)\n"
      "  --queue-limit N       admission queue bound per class (10000)\n"
      "  --queue-timeout-ms N  longest wait for capacity (30000)\n"
      "  --max-attempts N      dispatches of one request (3)\n"
      "  --latency-weight LIST balanced: latency against cost by class, e.g.\n"
      "                        interactive=2,agent=1,batch=0\n");
  for (size_t i = 0; i < N_POLICY_SETTINGS; i++)
    settings_usage_one(out, settings_get(policy_settings[i]));
  fprintf(
      out,
      "  --delay-us N          one-way delay of every message (100)\n"
      "  --kwh-price USD       energy price per kWh (0.10)\n"
      "  --model NAME          model to ask for (default: any)\n"
      "  --drain S             wait S seconds for answers after the last "
      "arrival (30)\n"
      "\n");
  workload_cli_usage(out);
  fprintf(
      out,
      "\n"
      "What to run (default: one run with --policy):\n"
      "  --compare LIST        each policy (comma list, or all) on the same "
      "workload\n"
      "  --sweep               a grid of pool mixes: Pareto front of cost "
      "against SLO\n"
      "  --sweep-grid LIST     the grid, e.g. gpu=0:4,sram=0:2,tpu=4 (N is "
      "0:N;\n"
      "                        default: each worker entry from 0 to twice its "
      "count)\n"
      "  --capacity            highest load meeting --target, per policy\n"
      "  --target F            SLO attainment to meet (0.99)\n"
      "  --seeds N             --sweep and --capacity: run on N seeds (--seed "
      "and\n"
      "                        the ones after it) and report the spread (3)\n"
      "  --min-requests N      --sweep and --capacity: a run with fewer "
      "requests\n"
      "                        decides nothing (1000)\n"
      "  --scale-by HOW        --capacity on a trace: overlay (more "
      "time-shifted\n"
      "                        copies, bursts keep their shape) or compress "
      "(a\n"
      "                        speed-up, bursts grow as dense) (overlay)\n"
      "  --matrix              policies x workloads x pools: SLO met, capacity\n"
      "                        at 99%% and 95%%, $ per million SLO-meeting\n"
      "                        tokens and cache hits, as Markdown (stdout) and\n"
      "                        JSON (--report-json); policies from --compare\n"
      "                        (all)\n"
      "  --matrix-workload [NAME=]SPEC  a workload of the matrix (repeatable;\n"
      "                        default: --workload's); each takes the\n"
      "                        workload flags that apply to it\n"
      "  --matrix-pool NAME=MIX  a pool of the matrix, e.g. gpu-only=gpu=6\n"
      "                        (repeatable; NAME= alone: the cluster's pool;\n"
      "                        default: the cluster's pool as \"cluster\")\n"
      "  --matrix-md FILE      also write the matrix's Markdown to FILE\n"
      "\n"
      "Output:\n"
      "  --report-json FILE    write the report(s) as JSON\n"
      "  --report-html FILE    one run: also write the report as an HTML "
      "page\n"
      "  --log-level LEVEL     debug, info, warn, error (info)\n"
      "  -h, --help            show this help\n"
      "  --version             print the version and exit\n"
      "\n"
      "Policies:\n");
  for (const policy_ops_t *const *p = policy_all(); *p; p++)
    fprintf(out, "  %-20s %s\n", (*p)->name, (*p)->summary);
  fprintf(out, "\nExit status: 0 on success, 1 when a run (with --compare, "
               "any policy's) lost\nrequests or output failed, 2 on a usage "
               "error (bad flag, unreadable or\ninvalid file).\n");
}

enum {
  OPT_CLUSTER = 256,
  OPT_POOL,
  OPT_POLICY,
  OPT_HEARTBEAT_MS,
  OPT_QUEUE_LIMIT,
  OPT_QUEUE_TIMEOUT,
  OPT_MAX_ATTEMPTS,
  OPT_LATENCY_WEIGHT,
  OPT_LINKS,
  OPT_DELAY_US,
  OPT_KWH,
  OPT_MODEL,
  OPT_DRAIN,
  OPT_COMPARE,
  OPT_SWEEP,
  OPT_SWEEP_GRID,
  OPT_CAPACITY,
  OPT_TARGET,
  OPT_SEEDS,
  OPT_MIN_REQUESTS,
  OPT_SCALE_BY,
  OPT_MATRIX,
  OPT_MATRIX_WORKLOAD,
  OPT_MATRIX_POOL,
  OPT_MATRIX_MD,
  OPT_REPORT_JSON,
  OPT_REPORT_HTML,
  OPT_LOG_LEVEL,
};

static const struct option own_options[] = {
    {"cluster", required_argument, NULL, OPT_CLUSTER},
    {"pool", required_argument, NULL, OPT_POOL},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT_MS},
    {"queue-limit", required_argument, NULL, OPT_QUEUE_LIMIT},
    {"queue-timeout-ms", required_argument, NULL, OPT_QUEUE_TIMEOUT},
    {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
    {"latency-weight", required_argument, NULL, OPT_LATENCY_WEIGHT},
    {"links", required_argument, NULL, OPT_LINKS},
    {"delay-us", required_argument, NULL, OPT_DELAY_US},
    {"kwh-price", required_argument, NULL, OPT_KWH},
    {"model", required_argument, NULL, OPT_MODEL},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"compare", required_argument, NULL, OPT_COMPARE},
    {"sweep", no_argument, NULL, OPT_SWEEP},
    {"sweep-grid", required_argument, NULL, OPT_SWEEP_GRID},
    {"capacity", no_argument, NULL, OPT_CAPACITY},
    {"target", required_argument, NULL, OPT_TARGET},
    {"seeds", required_argument, NULL, OPT_SEEDS},
    {"min-requests", required_argument, NULL, OPT_MIN_REQUESTS},
    {"scale-by", required_argument, NULL, OPT_SCALE_BY},
    {"matrix", no_argument, NULL, OPT_MATRIX},
    {"matrix-workload", required_argument, NULL, OPT_MATRIX_WORKLOAD},
    {"matrix-pool", required_argument, NULL, OPT_MATRIX_POOL},
    {"matrix-md", required_argument, NULL, OPT_MATRIX_MD},
    {"report-json", required_argument, NULL, OPT_REPORT_JSON},
    {"report-html", required_argument, NULL, OPT_REPORT_HTML},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
};

#define MATRIX_MAX 16

typedef struct opts {
  const char *cluster;
  bool matrix;
  const char *matrix_workloads[MATRIX_MAX];
  size_t n_matrix_workloads;
  const char *matrix_pools[MATRIX_MAX];
  size_t n_matrix_pools;
  const char *matrix_md;
  const char *pool;
  const char *compare;
  const char *sweep_grid;
  const char *report_json;
  const char *report_html;
  bool sweep;
  bool capacity;
  bool seen_seeds; /* --seeds, --min-requests or --scale-by */
  double target;
  uint32_t seeds;
  uint64_t min_requests;
  /* Scheduler settings given as flags, over the cluster file's. */
  const char *set[SET_COUNT];
  const char *links; /* the links in effect, as a spec; NULL: defaults */
  sim_config_t sim;
  workload_cli_t wl;
  workload_cli_t wl_flags; /* wl before workload_cli_check: the matrix's
                              workloads start from it */
  log_level_t level;
} opts_t;

/* A scheduler setting's flag, checked by the settings table and applied
 * over the cluster file's value once that is loaded. */
static int flag_setting(opts_t *o, setting_id_t id, const char *text) {
  setting_value_t v;
  if (settings_parse_flag(settings_get(id), text, &v))
    return -1;
  o->set[id] = text;
  return 0;
}

static int parse_one(void *ctx, int c, const char *arg) {
  opts_t *o = ctx;
  int rc = 0;
  switch (c) {
  case OPT_CLUSTER:
    o->cluster = arg;
    break;
  case OPT_POOL:
    o->pool = arg;
    break;
  case OPT_POLICY:
    rc = flag_setting(o, SET_POLICY, arg);
    break;
  case OPT_HEARTBEAT_MS:
    rc = flag_setting(o, SET_HEARTBEAT_MS, arg);
    break;
  case OPT_QUEUE_LIMIT:
    rc = flag_setting(o, SET_QUEUE_LIMIT, arg);
    break;
  case OPT_QUEUE_TIMEOUT:
    rc = flag_setting(o, SET_QUEUE_TIMEOUT_MS, arg);
    break;
  case OPT_MAX_ATTEMPTS:
    rc = flag_setting(o, SET_MAX_ATTEMPTS, arg);
    break;
  case OPT_LATENCY_WEIGHT:
    rc = flag_setting(o, SET_LATENCY_WEIGHT, arg);
    break;
  case OPT_LINKS:
    rc = flag_setting(o, SET_LINKS, arg);
    break;
  case OPT_DELAY_US:
    rc = cli_u64("--delay-us", arg, 0, 60 * INFS_US_PER_S, &o->sim.delay_us);
    break;
  case OPT_KWH:
    /* The workers' price as well as the scheduler's. */
    rc = flag_setting(o, SET_KWH_PRICE, arg);
    if (rc == 0)
      o->sim.kwh_usd = strtod(arg, NULL);
    break;
  case OPT_MODEL:
    o->sim.model = arg;
    break;
  case OPT_DRAIN:
    rc = cli_double("--drain", arg, 0, 86400, &o->sim.drain_s);
    break;
  case OPT_COMPARE:
    o->compare = arg;
    break;
  case OPT_SWEEP:
    o->sweep = true;
    break;
  case OPT_SWEEP_GRID:
    o->sweep_grid = arg;
    o->sweep = true;
    break;
  case OPT_CAPACITY:
    o->capacity = true;
    break;
  case OPT_SEEDS:
    rc = cli_u32("--seeds", arg, 1, 1000, &o->seeds);
    o->seen_seeds = true;
    break;
  case OPT_MIN_REQUESTS:
    rc = cli_u64("--min-requests", arg, 1, UINT64_MAX, &o->min_requests);
    o->seen_seeds = true;
    break;
  case OPT_SCALE_BY:
    if (strcmp(arg, "overlay") == 0)
      o->wl.scale_by = WORKLOAD_SCALE_OVERLAY;
    else if (strcmp(arg, "compress") == 0)
      o->wl.scale_by = WORKLOAD_SCALE_COMPRESS;
    else
      rc = cli_usage_error("--scale-by: expected overlay or compress, got "
                           "'%s'",
                           arg);
    o->seen_seeds = true;
    break;
  case OPT_TARGET:
    rc = cli_double("--target", arg, 0.0, 1.0, &o->target);
    break;
  case OPT_MATRIX:
    o->matrix = true;
    break;
  case OPT_MATRIX_WORKLOAD:
    if (o->n_matrix_workloads == MATRIX_MAX)
      rc = cli_usage_error("--matrix-workload: at most %d", MATRIX_MAX);
    else
      o->matrix_workloads[o->n_matrix_workloads++] = arg;
    o->matrix = true;
    break;
  case OPT_MATRIX_POOL:
    if (o->n_matrix_pools == MATRIX_MAX)
      rc = cli_usage_error("--matrix-pool: at most %d", MATRIX_MAX);
    else if (!strchr(arg, '=') || arg[0] == '=')
      rc = cli_usage_error("--matrix-pool: expected NAME=MIX (NAME= for the "
                           "cluster's pool), got '%s'",
                           arg);
    else
      o->matrix_pools[o->n_matrix_pools++] = arg;
    o->matrix = true;
    break;
  case OPT_MATRIX_MD:
    o->matrix_md = arg;
    o->matrix = true;
    break;
  case OPT_REPORT_JSON:
    o->report_json = arg;
    break;
  case OPT_REPORT_HTML:
    o->report_html = arg;
    break;
  case OPT_LOG_LEVEL:
    if (log_level_parse(arg, &o->level))
      rc = cli_usage_error("--log-level: unknown level '%s'", arg);
    break;
  default:
    if (c >= OPT_POLICY_SETTING && c < OPT_POLICY_SETTING + SET_COUNT)
      return flag_setting(o, (setting_id_t)(c - OPT_POLICY_SETTING), arg);
    return workload_cli_parse(&o->wl, c, arg);
  }
  return rc;
}

static int parse_args(int argc, char **argv, opts_t *o) {
  enum { N_OWN = sizeof own_options / sizeof *own_options };
  struct option own[N_OWN + N_POLICY_SETTINGS];
  memcpy(own, own_options, sizeof own_options);
  for (size_t i = 0; i < N_POLICY_SETTINGS; i++)
    own[N_OWN + i] = (struct option){
        settings_get(policy_settings[i])->flag, required_argument, NULL,
        OPT_POLICY_SETTING + (int)policy_settings[i]};
  const struct option *options =
      workload_cli_merge(own, N_OWN + N_POLICY_SETTINGS);
  if (cli_parse_args(argc, argv, options, usage, parse_one, o))
    return -1;
  if (!o->cluster)
    return cli_usage_error("--cluster FILE is required");
  if (o->sweep + o->capacity + o->matrix > 1)
    return cli_usage_error("--sweep, --capacity and --matrix are separate "
                           "runs; give one of them");
  if (o->wl.record && (o->sweep || o->capacity || o->compare || o->matrix))
    return cli_usage_error("--record writes one run's requests; give it "
                           "without --compare, --sweep, --capacity or "
                           "--matrix");
  if (o->seen_seeds && !o->sweep && !o->capacity && !o->matrix)
    return cli_usage_error("--seeds, --min-requests and --scale-by apply to "
                           "--sweep, --capacity and --matrix");
  if (o->report_html && (o->sweep || o->capacity || o->compare || o->matrix))
    return cli_usage_error("--report-html writes one run's report; use "
                           "--report-json with --compare, --sweep or "
                           "--capacity");
  o->wl_flags = o->wl;
  /* The matrix gives each workload the flags that apply to it. */
  if (o->matrix)
    workload_cli_drop_others(&o->wl);
  return workload_cli_check(&o->wl);
}

/* --- the workload source: a fresh, seeded workload per run --- */

static int make_workload(void *arg, double scale, unsigned seed,
                         workload_t **out, char *err, size_t errlen) {
  workload_cli_t c = *(const workload_cli_t *)arg;
  c.opts.seed += seed;
  return workload_cli_build(&c, scale, out, err, errlen);
}

static void describe_load(void *arg, double scale, char *buf, size_t len) {
  workload_cli_describe(arg, scale, buf, len);
}

/* --- output --- */

static int write_json(const char *path, cJSON *root) {
  int rc = report_write_json_file(root, path);
  if (rc)
    log_error("%s: %s", path, infs_strerror(rc));
  return rc;
}

/* --- modes --- */

static int run_single(const opts_t *o, const sim_config_t *cfg,
                      const sim_source_t *src) {
  char err[512];
  workload_t *w = NULL;
  report_t *r = report_new();
  sim_stats_t st;
  int status = 1;
  if (!r)
    return 1;
  sim_config_t c = *cfg;
  if (src->make(src->ctx, 1.0, 0, &w, err, sizeof err)) {
    log_error("%s", err);
    goto out;
  }
  workload_cli_report_settings(&o->wl, r);
  report_set_setting(r, "cluster", o->cluster);
  const char **profiles = calloc(cfg->n_workers + 1, sizeof *profiles);
  if (!profiles)
    goto out;
  char(*names)[2 * INFS_NAME_MAX] = calloc(cfg->n_workers + 1, sizeof *names);
  if (!names) {
    free(profiles);
    goto out;
  }
  for (size_t i = 0; i < cfg->n_workers; i++) {
    const sim_worker_spec_t *w = &cfg->workers[i];
    snprintf(names[i], sizeof names[i], "%s%s%s", w->profile.name,
             w->role == INFS_ROLE_BOTH ? "" : " ",
             w->role == INFS_ROLE_BOTH ? "" : infs_role_name(w->role));
    profiles[i] = names[i];
  }
  report_set_count_setting(r, "pool", profiles, cfg->n_workers);
  free(profiles);
  free(names);
  if (o->links)
    report_set_setting(r, "links", o->links);
  if (o->wl.record && workload_recorder_new(o->wl.opts.block_size, &c.record,
                                            err, sizeof err)) {
    log_error("--record: %s", err);
    goto out;
  }
  double t = clock_s();
  if (sim_run(&c, w, r, &st, err, sizeof err)) {
    log_error("%s", err);
    goto out;
  }
  t = clock_s() - t;
  report_print(r, stdout);
  fflush(stdout);
  log_info("simulated %llu requests, %.1f s of virtual time, %llu events, "
           "in %.3f s (%.0f requests/s)",
           (unsigned long long)st.requests, (double)st.end_us / 1e6,
           (unsigned long long)st.events, t,
           t > 0 ? (double)st.requests / t : 0.0);
  status = 0;
  if (o->report_json) {
    int rc = report_write_json(r, o->report_json);
    if (rc) {
      log_error("%s: %s", o->report_json, infs_strerror(rc));
      status = 1;
    }
  }
  if (o->report_html) {
    int rc = report_html_write(r, o->wl.spec, o->report_html);
    if (rc) {
      log_error("%s: %s", o->report_html, infs_strerror(rc));
      status = 1;
    }
  }
  if (c.record &&
      workload_recorder_write(c.record, o->wl.record, err, sizeof err)) {
    log_error("--record: %s", err);
    status = 1;
  }
  report_requests_t q;
  report_requests(r, -1, &q);
  if (q.lost) {
    log_error("%llu of %llu requests lost (no answer within --drain)",
              (unsigned long long)q.lost, (unsigned long long)q.sent);
    status = 1;
  }
out:
  workload_recorder_destroy(&c.record);
  workload_destroy(&w);
  report_destroy(&r);
  return status;
}

static int run_compare(const opts_t *o, const sim_config_t *cfg,
                       const sim_source_t *src, const char **policies) {
  char err[512];
  size_t n = 0;
  while (policies[n])
    n++;
  summary_t *sums = calloc(n + 1, sizeof *sums);
  cJSON *root = cJSON_CreateObject();
  cJSON *reports = cJSON_AddArrayToObject(root, "reports");
  int status = 1;
  if (!sums || !reports)
    goto out;
  if (compare_run(cfg, policies, src, sums, reports, err, sizeof err)) {
    log_error("%s", err);
    goto out;
  }
  compare_print(sums, n, stdout);
  fflush(stdout);
  status = o->report_json && write_json(o->report_json, root) ? 1 : 0;
  /* As a single run: a policy that lost requests is a failed run, even
   * when the others did not. */
  for (size_t i = 0; i < n; i++)
    if (sums[i].lost) {
      log_error("%s: %llu of %llu requests lost (no answer within --drain)",
                sums[i].policy, (unsigned long long)sums[i].lost,
                (unsigned long long)sums[i].sent);
      status = 1;
    }
out:
  cJSON_Delete(root);
  free(sums);
  return status;
}

static void sweep_progress(const sweep_point_t *pt, size_t done,
                           size_t total) {
  log_info("sweep %zu/%zu: %s, %.2f%% SLO met (mean)", done, total, pt->pool,
           100.0 * pt->slo_mean);
}

static int run_sweep(const opts_t *o, const sim_config_t *cfg,
                     const sim_source_t *src, const char **policies,
                     const pool_t *grid) {
  char err[512];
  cJSON *root = cJSON_CreateObject();
  cJSON *sweeps = cJSON_AddArrayToObject(root, "sweeps");
  int status = 1;
  if (!sweeps)
    goto out;
  for (size_t i = 0; policies[i]; i++) {
    sim_config_t c = *cfg;
    sweep_result_t res;
    c.core.policy = policies[i];
    sweep_opts_t so = {o->target, o->seeds, o->min_requests, sweep_progress};
    log_info("sweep: policy %s, %u seeds a mix", policies[i], o->seeds);
    if (sweep_run(&c, grid, src, &so, &res, err, sizeof err)) {
      log_error("%s", err);
      goto out;
    }
    if (i)
      printf("\n");
    sweep_print(&res, stdout);
    cJSON *j = sweep_to_json(&res);
    sweep_result_free(&res);
    if (!j || !cJSON_AddItemToArray(sweeps, j)) {
      cJSON_Delete(j);
      goto out;
    }
  }
  fflush(stdout);
  status = o->report_json && write_json(o->report_json, root) ? 1 : 0;
out:
  cJSON_Delete(root);
  return status;
}

static void capacity_progress(const char *policy,
                              const capacity_probe_t *pr) {
  log_info("capacity %s: seed %u, scale %.4g: %llu requests, %.2f%% SLO met",
           policy, pr->seed, pr->scale, (unsigned long long)pr->requests,
           100.0 * pr->slo);
}

static int run_capacity(const opts_t *o, const sim_config_t *cfg,
                        const sim_source_t *src, const char **policies) {
  char err[512];
  size_t n = 0;
  while (policies[n])
    n++;
  capacity_point_t *pts = calloc(n + 1, sizeof *pts);
  cJSON *root = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(root, "policies");
  capacity_opts_t co;
  int status = 1;
  capacity_opts_default(&co);
  co.target = o->target;
  co.seeds = o->seeds;
  co.min_requests = o->min_requests;
  co.progress = capacity_progress;
  if (!pts || !arr || !cJSON_AddNumberToObject(root, "target", co.target))
    goto out;
  for (size_t i = 0; i < n; i++) {
    sim_config_t c = *cfg;
    cJSON *report = NULL;
    c.core.policy = policies[i];
    if (capacity_search(&c, src, &co, &pts[i], &report, err, sizeof err)) {
      log_error("%s", err);
      goto out;
    }
    const capacity_point_t *p = &pts[i];
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(arr, e)) {
      cJSON_Delete(e);
      cJSON_Delete(report);
      goto out;
    }
    bool ok = cJSON_AddStringToObject(e, "policy", p->policy) &&
              cJSON_AddBoolToObject(e, "found", p->found) &&
              cJSON_AddBoolToObject(e, "capped", p->capped) &&
              cJSON_AddBoolToObject(e, "too_few_requests", p->too_few) &&
              cJSON_AddNumberToObject(e, "seeds", p->seeds) &&
              cJSON_AddNumberToObject(e, "scale", p->scale) &&
              cJSON_AddNumberToObject(e, "scale_min", p->scale_min) &&
              cJSON_AddNumberToObject(e, "scale_max", p->scale_max) &&
              cJSON_AddStringToObject(e, "load", p->rate) &&
              cJSON_AddNumberToObject(e, "slo_attainment", p->sum.slo) &&
              cJSON_AddNumberToObject(e, "usd_per_mtok_slo",
                                      p->sum.usd_per_mtok_slo) &&
              cJSON_AddNumberToObject(e, "runs", p->runs);
    if (report && !cJSON_AddItemToObject(e, "report", report)) {
      cJSON_Delete(report);
      ok = false;
    }
    cJSON *probes = capacity_probes_json(p);
    if (!probes || !cJSON_AddItemToObject(e, "probes", probes)) {
      cJSON_Delete(probes);
      ok = false;
    }
    if (!ok)
      goto out;
  }
  capacity_print(pts, n, &co, src, stdout);
  fflush(stdout);
  status = o->report_json && write_json(o->report_json, root) ? 1 : 0;
out:
  cJSON_Delete(root);
  for (size_t i = 0; pts && i < n; i++)
    capacity_point_free(&pts[i]);
  free(pts);
  return status;
}

/* --- files --- */

typedef struct setup {
  cluster_spec_t *spec;
  profile_set_t *profiles;
  pool_t pool;
  pool_t grid;
  sim_worker_spec_t *workers;
  link_table_t *links;
} setup_t;

static void setup_free(setup_t *s) {
  cluster_spec_destroy(&s->spec);
  profile_set_destroy(&s->profiles);
  pool_free(&s->pool);
  pool_free(&s->grid);
  free(s->workers);
  link_table_free(&s->links);
}

/* Loads what the flags name; every failure is a usage error (status 2). */
static int load(opts_t *o, setup_t *s) {
  char err[512];
  int rc = cluster_file_load(o->cluster, &s->spec, err, sizeof err);
  if (!rc)
    rc = cluster_spec_check_profiles(s->spec, err, sizeof err);
  if (!rc)
    rc =
        profile_set_load(s->spec->profiles_path, &s->profiles, err, sizeof err);
  if (!rc)
    rc = pool_from_cluster(s->spec, s->profiles, &s->pool, err, sizeof err);
  if (rc)
    return cli_usage_error("--cluster: %s", err);
  for (size_t i = 0; i < s->spec->nworkers; i++)
    if (strcmp(s->spec->workers[i].backend, "sim") != 0)
      log_warn("%s: workers '%s' use backend '%s'; the simulator models "
               "every worker with the sim backend's engine",
               o->cluster, s->spec->workers[i].name,
               s->spec->workers[i].backend);
  if (o->pool && pool_apply_mix(&s->pool, s->spec, s->profiles, o->pool, 0, err,
                                sizeof err))
    return cli_usage_error("--pool: %s", err);
  s->grid.v = xcalloc(s->pool.n + 1, sizeof *s->grid.v);
  memcpy(s->grid.v, s->pool.v, s->pool.n * sizeof *s->pool.v);
  s->grid.n = s->pool.n;
  if (o->sweep_grid && pool_apply_mix(&s->grid, s->spec, s->profiles,
                                      o->sweep_grid, 1, err, sizeof err))
    return cli_usage_error("--sweep-grid: %s", err);
  if (!o->sweep && pool_instances(&s->pool) == 0)
    return cli_usage_error("the pool has no workers");

  /* The scheduler's settings as the daemon would take them: the cluster
   * file's, then the flags'. Both were checked when read. */
  for (setting_id_t id = 0; id < SET_COUNT; id++) {
    const char *text = o->set[id] ? o->set[id] : s->spec->set[id];
    setting_value_t v;
    if (text && settings_parse(settings_get(id), text, &v, err, sizeof err) == 0)
      settings_apply_core(&o->sim.core, settings_get(id), &v);
  }
  /* The links as the scheduler takes them: --links, else the launcher's
   * spec from the file's links:. Both were checked when read. */
  const char *links = o->set[SET_LINKS] ? o->set[SET_LINKS] : s->spec->links;
  if (links && link_table_parse(links, &s->links, err, sizeof err))
    return cli_usage_error("--links: %s", err);
  o->sim.core.links = s->links;
  o->links = links;
  /* The requests carry the workload's targets: the cluster's scheduler.slo
   * (now the core's class defaults) unless --slo names others, and the
   * core's defaults, which balanced also reads, are the same. */
  if (o->wl.seen_slo)
    memcpy(o->sim.core.slo, o->wl.opts.slo, sizeof o->sim.core.slo);
  else
    memcpy(o->wl.opts.slo, o->sim.core.slo, sizeof o->wl.opts.slo);
  const pool_t *pool = o->sweep ? &s->grid : &s->pool;
  for (size_t i = 0; i < pool->n; i++)
    if ((o->sweep ? pool->v[i].max : pool->v[i].count) &&
        slo_check_profile(o->wl.opts.slo, &pool->v[i].profile, err,
                          sizeof err))
      return cli_usage_error("%s%s", o->wl.seen_slo ? "--slo: " : "", err);
  size_t n;
  s->workers = pool_expand(&s->pool, &n);
  o->sim.workers = s->workers;
  o->sim.n_workers = n;

  /* Build the workload once now, so that a bad trace or workload file is a
   * usage error before anything runs. */
  workload_t *w = NULL;
  rc = workload_cli_build(&o->wl, 1.0, &w, err, sizeof err);
  workload_destroy(&w);
  if (rc)
    return cli_usage_error("--workload: %s", err);
  return 0;
}

/* --- the matrix --- */

/* argv as one shell line, quoting what the shell would split or expand. */
static char *command_line(int argc, char **argv) {
  size_t len = 1;
  for (int i = 0; i < argc; i++)
    len += 3 + 4 * strlen(argv[i]);
  char *buf = xmalloc(len), *p = buf;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool plain = *a && strspn(a, "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "-_./:=,+@%") == strlen(a);
    if (i)
      *p++ = ' ';
    if (plain) {
      p += sprintf(p, "%s", a);
      continue;
    }
    *p++ = '\'';
    for (; *a; a++)
      p += *a == '\'' ? sprintf(p, "'\\''") : sprintf(p, "%c", *a);
    *p++ = '\'';
  }
  *p = '\0';
  return buf;
}

static void matrix_progress(const matrix_t *m, size_t k) {
  const matrix_cell_t *c = &m->cells[k];
  log_info("matrix %zu/%zu: %s on %s, %s", k + 1, m->n_cells,
           m->workloads[c->workload].label, m->pools[c->pool].label,
           c->policy);
}

typedef struct matrix_setup {
  workload_cli_t wl[MATRIX_MAX];
  matrix_workload_t workloads[MATRIX_MAX];
  matrix_pool_t pools[MATRIX_MAX];
  char labels[MATRIX_MAX][64];
  char wl_labels[MATRIX_MAX][64];
  char mixes[MATRIX_MAX][256];
  sim_worker_spec_t *workers[MATRIX_MAX];
} matrix_setup_t;

/* The matrix's workloads and pools from the flags; usage errors print. */
static int matrix_setup(const opts_t *o, const setup_t *s, matrix_setup_t *m,
                        size_t *nw, size_t *np) {
  char err[512];
  *nw = o->n_matrix_workloads ? o->n_matrix_workloads : 1;
  for (size_t i = 0; i < *nw; i++) {
    workload_cli_t *c = &m->wl[i];
    *c = o->wl_flags;
    const char *label = c->spec;
    if (o->n_matrix_workloads) {
      /* NAME=SPEC names the workload in the table; a SPEC has a ':' or no
       * '=' before its first '='. */
      const char *arg = o->matrix_workloads[i], *eq = strchr(arg, '=');
      size_t name = eq ? (size_t)(eq - arg) : 0;
      if (name && name < sizeof m->wl_labels[i] && !memchr(arg, ':', name)) {
        snprintf(m->wl_labels[i], sizeof m->wl_labels[i], "%.*s", (int)name,
                 arg);
        label = m->wl_labels[i];
        c->spec = eq + 1;
      } else {
        label = c->spec = arg;
      }
    }
    workload_cli_drop_others(c);
    if (workload_cli_check(c))
      return -1;
    workload_t *w = NULL;
    int rc = workload_cli_build(c, 1.0, &w, err, sizeof err);
    workload_destroy(&w);
    if (rc)
      return cli_usage_error("--matrix-workload %s: %s", c->spec, err);
    m->workloads[i] =
        (matrix_workload_t){label, {make_workload, describe_load, c}};
  }
  *np = o->n_matrix_pools ? o->n_matrix_pools : 1;
  for (size_t i = 0; i < *np; i++) {
    const char *arg = o->n_matrix_pools ? o->matrix_pools[i] : "cluster=";
    const char *eq = strchr(arg, '=');
    snprintf(m->labels[i], sizeof m->labels[i], "%.*s", (int)(eq - arg), arg);
    pool_t pool = {0};
    int rc = pool_from_cluster(s->spec, s->profiles, &pool, err, sizeof err);
    if (!rc && eq[1])
      rc = pool_apply_mix(&pool, s->spec, s->profiles, eq + 1, 0, err,
                          sizeof err);
    if (!rc && pool_instances(&pool) == 0)
      rc = snprintf(err, sizeof err, "no workers") < 0 ? -1 : INFS_ECONFIG;
    if (rc) {
      pool_free(&pool);
      return cli_usage_error("--matrix-pool %s: %s", arg, err);
    }
    pool_describe(&pool, m->mixes[i], sizeof m->mixes[i]);
    size_t n;
    m->workers[i] = pool_expand(&pool, &n);
    pool_free(&pool);
    m->pools[i] = (matrix_pool_t){m->labels[i], m->mixes[i], m->workers[i], n};
  }
  return 0;
}

static int run_matrix(const opts_t *o, const setup_t *s, const char **policies,
                      const char *command) {
  char err[512];
  static matrix_setup_t ms;
  size_t nw = 0, np = 0;
  int status = CLI_EXIT_USAGE;
  memset(&ms, 0, sizeof ms);
  if (matrix_setup(o, s, &ms, &nw, &np))
    goto out;
  status = 1;
  matrix_t m = {.workloads = ms.workloads,
                .n_workloads = nw,
                .pools = ms.pools,
                .n_pools = np,
                .policies = policies};
  capacity_opts_default(&m.cap);
  m.cap.seeds = o->seeds;
  m.cap.min_requests = o->min_requests;
  m.cap.progress = capacity_progress;
  double t = clock_s();
  if (matrix_run(&m, &o->sim, matrix_progress, err, sizeof err)) {
    log_error("%s", err);
    goto out;
  }
  log_info("matrix: %zu cells in %.1f s", m.n_cells, clock_s() - t);
  matrix_markdown(&m, command, stdout);
  fflush(stdout);
  status = 0;
  if (o->matrix_md) {
    FILE *f = fopen(o->matrix_md, "w");
    if (f)
      matrix_markdown(&m, command, f);
    if (!f || fclose(f) != 0) {
      log_error("%s: %s", o->matrix_md, strerror(errno));
      status = 1;
    }
  }
  if (o->report_json) {
    cJSON *j = matrix_to_json(&m, command);
    if (!j || write_json(o->report_json, j))
      status = 1;
    cJSON_Delete(j);
  }
  matrix_free(&m);
out:
  for (size_t i = 0; i < MATRIX_MAX; i++)
    free(ms.workers[i]);
  return status;
}

int main(int argc, char **argv) {
  opts_t o = {.target = 0.99,
              .seeds = 3,
              .min_requests = CAPACITY_MIN_REQUESTS,
              .level = LOG_LEVEL_INFO};
  setup_t s = {0};
  int status = CLI_EXIT_USAGE;
  sim_config_defaults(&o.sim);
  workload_cli_init(&o.wl);
  cli_init(PROGRAM);
  if (parse_args(argc, argv, &o))
    return CLI_EXIT_USAGE;
  log_init(PROGRAM, o.level);
  const char **policies = NULL;
  if (load(&o, &s))
    goto out;
  char err[512];
  const char *list =
      o.compare ? o.compare : o.matrix ? "all" : o.sim.core.policy;
  policies = drive_policies(list, err, sizeof err);
  if (!policies) {
    cli_usage_error("--compare: %s", err);
    goto out;
  }
  sim_source_t src = {make_workload, describe_load, &o.wl};
  if (o.matrix) {
    char *command = command_line(argc, argv);
    status = run_matrix(&o, &s, policies, command);
    free(command);
  } else if (o.sweep)
    status = run_sweep(&o, &o.sim, &src, policies, &s.grid);
  else if (o.capacity)
    status = run_capacity(&o, &o.sim, &src, policies);
  else if (o.compare)
    status = run_compare(&o, &o.sim, &src, policies);
  else
    status = run_single(&o, &o.sim, &src);
out:
  free(policies);
  setup_free(&s);
  return status;
}
