/* How fast infsched-sim simulates: the whole Azure 2023 code trace on the
 * local cluster's pool, and a large synthetic codex run, each timed on one
 * core and printed as simulated requests per second of wall time. */
#include "bench.h"
#include "infsched/errors.h"
#include "cli.h"
#include "clock.h"
#include "report.h"
#include "workload.h"
#include "cluster_file.h"
#include "pool.h"
#include "sim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef INFSCHED_SOURCE_DIR
#define INFSCHED_SOURCE_DIR "."
#endif

typedef struct options {
  const char *cluster;
  const char *trace;
  const char *policy; /* NULL: the cluster file's */
  uint64_t requests;  /* codex run */
  uint64_t seed;
  const char *sessions; /* codex sessions */
} options_t;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: bench_sim [OPTION]...\n"
          "Times infsched-sim's event loop on one core: the whole Azure code "
          "trace,\nthen a synthetic codex run, on a cluster file's pool; "
          "prints simulated\nrequests and events per second of wall time.\n"
          "\n"
          "  --cluster FILE   pool and policy (default %s/configs/local.yaml)\n"
          "  --trace FILE     Azure trace (default %s/../shared/data/"
          "azure_llm_code_2023.csv)\n"
          "  --policy NAME    override the cluster's policy\n"
          "  --requests N     requests of the codex run (default 1000000; 0 "
          "skips it)\n"
          "  --seed N         codex seed (default 1)\n"
          "  --sessions N     codex sessions at once (default: the codex\n"
          "                   workload's, configs/workloads/codex.yaml)\n"
          "  -h, --help       this text\n",
          INFSCHED_SOURCE_DIR, INFSCHED_SOURCE_DIR);
}

static int parse_one(void *ctx, int c, const char *arg) {
  options_t *o = ctx;
  switch (c) {
  case 'c':
    o->cluster = arg;
    break;
  case 't':
    o->trace = arg;
    break;
  case 'p':
    o->policy = arg;
    break;
  case 'n':
    if (cli_u64("--requests", arg, 0, UINT64_MAX, &o->requests))
      return -1;
    break;
  case 's':
    if (cli_u64("--seed", arg, 0, UINT64_MAX, &o->seed))
      return -1;
    break;
  case 'S':
    o->sessions = arg;
    break;
  default:
    return CLI_NOT_MINE;
  }
  return 0;
}

static int parse(int argc, char **argv, options_t *o) {
  static const struct option opts[] = {
      {"cluster", required_argument, NULL, 'c'},
      {"trace", required_argument, NULL, 't'},
      {"policy", required_argument, NULL, 'p'},
      {"requests", required_argument, NULL, 'n'},
      {"seed", required_argument, NULL, 's'},
      {"sessions", required_argument, NULL, 'S'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  return cli_parse_args(argc, argv, opts, usage, parse_one, o);
}

/* Runs w on cfg and prints one line of figures. */
static int timed(const char *label, const sim_config_t *cfg, workload_t *w) {
  char err[512];
  report_t *r = report_new();
  sim_stats_t st;
  double t = clock_s();
  int rc = sim_run(cfg, w, r, &st, err, sizeof err);
  t = clock_s() - t;
  if (rc) {
    fprintf(stderr, "bench_sim: %s: %s\n", label, err);
    report_destroy(&r);
    return rc;
  }
  report_requests_t q;
  report_requests(r, -1, &q);
  printf("%-22s %9llu requests %9.0f s virtual %8.3f s wall %11.0f req/s "
         "%11.0f events/s  SLO %.2f%%\n",
         label, (unsigned long long)st.requests, (double)st.end_us / 1e6, t,
         t > 0 ? (double)st.requests / t : 0.0,
         t > 0 ? (double)st.events / t : 0.0,
         100.0 * report_slo_attainment(r, -1));
  report_destroy(&r);
  return 0;
}

int main(int argc, char **argv) {
  options_t o = {
      .cluster = INFSCHED_SOURCE_DIR "/configs/local.yaml",
      .trace = INFSCHED_SOURCE_DIR "/../shared/data/azure_llm_code_2023.csv",
      .requests = 1000000,
      .seed = 1,
  };
  char err[512];
  cluster_spec_t *spec = NULL;
  profile_set_t *set = NULL;
  pool_t pool = {0};
  sim_worker_spec_t *ws = NULL;
  workload_t *w = NULL;
  int status = 1;

  cli_init("bench_sim");
  if (parse(argc, argv, &o))
    return CLI_EXIT_USAGE;
  bench_print_command(argc, argv);

  if (cluster_file_load(o.cluster, &spec, err, sizeof err) ||
      profile_set_load(spec->profiles_path, &set, err, sizeof err) ||
      pool_from_cluster(spec, set, &pool, err, sizeof err)) {
    fprintf(stderr, "bench_sim: %s\n", err);
    goto out;
  }
  size_t n;
  ws = pool_expand(&pool, &n);
  sim_config_t cfg;
  sim_config_defaults(&cfg);
  cfg.core.policy = o.policy ? o.policy : spec->policy;
  cfg.core.heartbeat_interval = spec->heartbeat_ms * INFS_US_PER_MS;
  cfg.core.heartbeat_miss = spec->heartbeat_miss;
  cfg.workers = ws;
  cfg.n_workers = n;
  printf("pool: %zu workers from %s, policy %s\n\n", n, o.cluster,
         cfg.core.policy);

  workload_opts_t wo;
  workload_opts_default(&wo);
  char spec_buf[1024];
  snprintf(spec_buf, sizeof spec_buf, "trace:%s", o.trace);
  if (workload_new(spec_buf, &wo, &w, err, sizeof err)) {
    fprintf(stderr, "bench_sim: %s\n", err);
    goto out;
  }
  if (timed("azure code trace", &cfg, w))
    goto out;
  workload_destroy(&w);

  if (o.requests) {
    workload_opts_default(&wo);
    wo.seed = o.seed;
    wo.max_requests = o.requests;
    workload_codex_config_t codex;
    workload_codex_config_default(&codex);
    if ((o.sessions && workload_codex_config_set(&codex, "sessions", o.sessions,
                                                 err, sizeof err)) ||
        workload_codex_new(&wo, &codex, &w, err, sizeof err)) {
      fprintf(stderr, "bench_sim: %s\n", err);
      goto out;
    }
    if (timed("codex (synthetic)", &cfg, w))
      goto out;
  }
  status = 0;
out:
  workload_destroy(&w);
  free(ws);
  pool_free(&pool);
  profile_set_destroy(&set);
  cluster_spec_destroy(&spec);
  return status;
}
