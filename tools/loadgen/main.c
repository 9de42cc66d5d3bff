/* infsched-loadgen: command line. */
#include "tools/loadgen/loadgen.h"

#include "lib/cli.h"
#include "lib/log.h"
#include "lib/workload.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRAM "infsched-loadgen"

static void usage(FILE *out) {
  fprintf(
      out,
      "Usage: " PROGRAM " [OPTION]...\n"
      "Sends synthetic or recorded traffic to an infsched scheduler, open "
      "loop,\nand reports latency, SLO attainment, throughput and cost.\n"
      "\n"
      "Target:\n"
      "  --scheduler ADDR      client endpoint (tcp://127.0.0.1:5555)\n"
      "  --model NAME          model to ask for (default: any)\n"
      "  --wait-workers N      wait until N workers are registered (0)\n"
      "  --wait-timeout S      give up waiting after S seconds (60)\n"
      "\n"
      "Workload:\n"
      "  --workload SPEC       poisson, or trace:FILE (Azure CSV) (poisson)\n"
      "  --rate R              poisson: requests per second (10)\n"
      "  --rate-end R          poisson: ramp linearly to R over the "
      "duration\n"
      "  --duration S          stop sending after S seconds (poisson: 60;\n"
      "                        trace: the whole file)\n"
      "  --speedup X           trace: replay X times faster (1)\n"
      "  --max-requests N      stop after N requests\n"
      "  --seed N              random seed; same seed, same requests (1)\n"
      "  --class-mix LIST      e.g. interactive=0.6,agent=0.3,batch=0.1\n"
      "  --prompt-tokens DIST  poisson prompt sizes: N, or\n"
      "                        lognormal:MEDIAN:SIGMA[:MIN:MAX]\n"
      "                        (lognormal:1469:0.815:1:32768)\n"
      "  --output-tokens DIST  poisson output sizes "
      "(lognormal:13:1.239:1:4096)\n"
      "  --block-size N        tokens per prompt block hash (64)\n"
      "  --shared-prefix F     fraction of each prompt shared by all "
      "requests (0)\n"
      "  --slo LIST            TTFT:TPOT ms targets by class, e.g.\n"
      "                        interactive=450:40,agent=2000:25,"
      "batch=30000:200\n"
      "\n"
      "Run and report:\n"
      "  --drain S             wait S seconds for answers after the last "
      "send (30)\n"
      "  --report-json FILE    also write the report as JSON\n"
      "  --policy-label NAME   policy name for the report (default: from "
      "Status)\n"
      "  --log-level LEVEL     debug, info, warn, error (info)\n"
      "  -h, --help            show this help\n"
      "\n"
      "Exit status: 0 when every request got an answer, 1 when some were "
      "lost\nor the run failed, 2 on a usage error.\n");
}

enum {
  OPT_SCHEDULER = 256,
  OPT_MODEL,
  OPT_WAIT_WORKERS,
  OPT_WAIT_TIMEOUT,
  OPT_WORKLOAD,
  OPT_RATE,
  OPT_RATE_END,
  OPT_DURATION,
  OPT_SPEEDUP,
  OPT_MAX_REQUESTS,
  OPT_SEED,
  OPT_CLASS_MIX,
  OPT_PROMPT_TOKENS,
  OPT_OUTPUT_TOKENS,
  OPT_BLOCK_SIZE,
  OPT_SHARED_PREFIX,
  OPT_SLO,
  OPT_DRAIN,
  OPT_REPORT_JSON,
  OPT_POLICY_LABEL,
  OPT_LOG_LEVEL,
};

static const struct option options[] = {
    {"scheduler", required_argument, NULL, OPT_SCHEDULER},
    {"model", required_argument, NULL, OPT_MODEL},
    {"wait-workers", required_argument, NULL, OPT_WAIT_WORKERS},
    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
    {"workload", required_argument, NULL, OPT_WORKLOAD},
    {"rate", required_argument, NULL, OPT_RATE},
    {"rate-end", required_argument, NULL, OPT_RATE_END},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"speedup", required_argument, NULL, OPT_SPEEDUP},
    {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"class-mix", required_argument, NULL, OPT_CLASS_MIX},
    {"prompt-tokens", required_argument, NULL, OPT_PROMPT_TOKENS},
    {"output-tokens", required_argument, NULL, OPT_OUTPUT_TOKENS},
    {"block-size", required_argument, NULL, OPT_BLOCK_SIZE},
    {"shared-prefix", required_argument, NULL, OPT_SHARED_PREFIX},
    {"slo", required_argument, NULL, OPT_SLO},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"report-json", required_argument, NULL, OPT_REPORT_JSON},
    {"policy-label", required_argument, NULL, OPT_POLICY_LABEL},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Flags that only one kind of workload reads; giving one to the other is
 * almost always a mistake worth stopping for. */
typedef struct seen {
  bool rate;
  bool speedup;
  bool sizes;
  bool duration;
} seen_t;

static int parse_args(int argc, char **argv, loadgen_config_t *cfg,
                      const char **spec, workload_opts_t *wo, seen_t *seen,
                      log_level_t *level) {
  char err[256];
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    const char *name = optind > 0 ? argv[optind - 1] : "";
    int rc = 0;
    switch (c) {
    case 'h':
      usage(stdout);
      exit(0);
    case OPT_SCHEDULER:
      cfg->scheduler = optarg;
      break;
    case OPT_MODEL:
      cfg->model = optarg;
      break;
    case OPT_WAIT_WORKERS:
      rc = cli_u32("--wait-workers", optarg, 0, 100000, &cfg->wait_workers);
      break;
    case OPT_WAIT_TIMEOUT:
      rc = cli_double("--wait-timeout", optarg, 0.001, 86400,
                      &cfg->wait_timeout_s);
      break;
    case OPT_WORKLOAD:
      *spec = optarg;
      break;
    case OPT_RATE:
      rc = cli_double("--rate", optarg, 1e-6, 1e7, &wo->rate);
      seen->rate = true;
      break;
    case OPT_RATE_END:
      rc = cli_double("--rate-end", optarg, 1e-6, 1e7, &wo->rate_end);
      seen->rate = true;
      break;
    case OPT_DURATION:
      rc = cli_double("--duration", optarg, 0.001, 1e7, &wo->duration_s);
      seen->duration = true;
      break;
    case OPT_SPEEDUP:
      rc = cli_double("--speedup", optarg, 1e-6, 1e9, &wo->speedup);
      seen->speedup = true;
      break;
    case OPT_MAX_REQUESTS:
      rc = cli_u64("--max-requests", optarg, 1, UINT64_MAX, &wo->max_requests);
      break;
    case OPT_SEED:
      rc = cli_u64("--seed", optarg, 0, UINT64_MAX, &wo->seed);
      break;
    case OPT_CLASS_MIX:
      if (workload_parse_class_mix(optarg, wo->class_mix, err, sizeof err))
        rc = cli_usage_error("--class-mix: %s", err);
      break;
    case OPT_PROMPT_TOKENS:
      if (workload_parse_dist(optarg, &wo->prompt, err, sizeof err))
        rc = cli_usage_error("--prompt-tokens: %s", err);
      seen->sizes = true;
      break;
    case OPT_OUTPUT_TOKENS:
      if (workload_parse_dist(optarg, &wo->output, err, sizeof err))
        rc = cli_usage_error("--output-tokens: %s", err);
      seen->sizes = true;
      break;
    case OPT_BLOCK_SIZE:
      rc = cli_u32("--block-size", optarg, 1, WORKLOAD_BLOCK_SIZE_MAX,
                   &wo->block_size);
      break;
    case OPT_SHARED_PREFIX:
      rc = cli_double("--shared-prefix", optarg, 0, 1, &wo->shared_prefix);
      break;
    case OPT_SLO:
      if (workload_parse_slo(optarg, wo, err, sizeof err))
        rc = cli_usage_error("--slo: %s", err);
      break;
    case OPT_DRAIN:
      rc = cli_double("--drain", optarg, 0, 86400, &cfg->drain_s);
      break;
    case OPT_REPORT_JSON:
      cfg->report_json = optarg;
      break;
    case OPT_POLICY_LABEL:
      cfg->policy_label = optarg;
      break;
    case OPT_LOG_LEVEL:
      if (log_level_parse(optarg, level))
        rc = cli_usage_error("--log-level: unknown level '%s'", optarg);
      break;
    case ':':
      rc = cli_usage_error("%s: needs a value", name);
      break;
    default:
      rc = cli_usage_error("unknown option '%s'", name);
      break;
    }
    if (rc)
      return -1;
  }
  if (optind < argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);
  return 0;
}

static int check_workload_flags(const char *spec, workload_opts_t *wo,
                                const seen_t *seen) {
  bool poisson = strcmp(spec, "poisson") == 0;
  bool trace = strncmp(spec, "trace:", 6) == 0;
  if (poisson && seen->speedup)
    return cli_usage_error("--speedup applies to trace workloads");
  if (trace && seen->rate)
    return cli_usage_error("--rate and --rate-end apply to poisson");
  if (trace && seen->sizes)
    return cli_usage_error("a trace brings its own sizes; "
                           "--prompt-tokens and --output-tokens apply to "
                           "poisson");
  if (poisson && !seen->duration && wo->max_requests == 0)
    wo->duration_s = 60.0;
  return 0;
}

int main(int argc, char **argv) {
  loadgen_config_t cfg = {
      .scheduler = "tcp://127.0.0.1:5555",
      .drain_s = 30.0,
      .wait_timeout_s = 60.0,
      .status_timeout_s = 2.0,
  };
  workload_opts_t wo;
  workload_opts_default(&wo);
  const char *spec = "poisson";
  seen_t seen = {0};
  log_level_t level = LOG_LEVEL_INFO;

  cli_init(PROGRAM);
  if (parse_args(argc, argv, &cfg, &spec, &wo, &seen, &level) ||
      check_workload_flags(spec, &wo, &seen))
    return CLI_EXIT_USAGE;
  log_init(PROGRAM, level);
  cfg.progress = isatty(STDERR_FILENO);

  char err[512];
  workload_t *w = NULL;
  if (workload_new(spec, &wo, &w, err, sizeof err)) {
    cli_usage_error("--workload: %s", err);
    return CLI_EXIT_USAGE;
  }
  int status = loadgen_run(&cfg, w);
  workload_destroy(&w);
  return status;
}
