/* infsched-loadgen: command line. The workload flags are lib/workload_cli's,
 * the same as infsched-sim's, so one scenario reads the same in both. */
#include "loadgen.h"

#include "cli.h"
#include "log.h"
#include "workload.h"
#include "workload_cli.h"
#include "settings.h"

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
      "Sends synthetic or recorded traffic to an infsched scheduler and "
      "reports\nlatency, SLO attainment, throughput and cost.\n"
      "\n"
      "Target:\n"
      "  --scheduler ADDR      client endpoint (tcp://127.0.0.1:5555)\n"
      "  --model NAME          model to ask for (default: any)\n"
      "  --wait-workers N      wait until N workers are registered (0)\n"
      "  --wait-timeout S      give up waiting after S seconds (60)\n"
      "  --auth MODE           on: CURVE to the scheduler (default); off\n"
      "                        for a scheduler without authentication\n"
      "  --keys DIR            keys directory (default: the local one, as\n"
      "                        the scheduler and infsched-cluster make it)\n"
      "  --key FILE            own secret key file (default\n"
      "                        KEYS/client.key_secret)\n"
      "  --server-key FILE     the scheduler's public key file (default\n"
      "                        KEYS/scheduler.key)\n"
      "\n");
  workload_cli_usage(out);
  fprintf(out,
          "\n"
          "Run and report:\n"
          "  --drain S             wait S seconds for answers after the last "
          "send (30)\n"
          "  --report-json FILE    also write the report as JSON\n"
          "  --report-html FILE    also write it as a self-contained HTML "
          "page with plots\n"
          "  --policy-label NAME   policy name for the report (default: from "
          "Status)\n"
          "  --chars-per-token X   send prompt text of about X characters a\n"
          "                        token, prompts sharing block hashes sharing\n"
          "                        their text; 0 sends sizes only (4)\n"
          "  --log-level LEVEL     debug, info, warn, error (info)\n"
          "  -h, --help            show this help\n"
          "  --version             print the version and exit\n"
          "\n"
          "Exit status: 0 when every request got an answer, 1 when some were "
          "lost\nor the report failed, 2 on a usage error, 3 when the "
          "scheduler does not\nanswer (or too few workers register) before "
          "anything is sent.\n");
}

enum {
  OPT_SCHEDULER = 256,
  OPT_MODEL,
  OPT_WAIT_WORKERS,
  OPT_WAIT_TIMEOUT,
  OPT_DRAIN,
  OPT_REPORT_JSON,
  OPT_REPORT_HTML,
  OPT_POLICY_LABEL,
  OPT_LOG_LEVEL,
  OPT_CHARS_PER_TOKEN,
  OPT_AUTH,
  OPT_KEYS,
  OPT_KEY,
  OPT_SERVER_KEY,
};

static const struct option own_options[] = {
    {"scheduler", required_argument, NULL, OPT_SCHEDULER},
    {"model", required_argument, NULL, OPT_MODEL},
    {"wait-workers", required_argument, NULL, OPT_WAIT_WORKERS},
    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"report-json", required_argument, NULL, OPT_REPORT_JSON},
    {"report-html", required_argument, NULL, OPT_REPORT_HTML},
    {"policy-label", required_argument, NULL, OPT_POLICY_LABEL},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"chars-per-token", required_argument, NULL, OPT_CHARS_PER_TOKEN},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"key", required_argument, NULL, OPT_KEY},
    {"server-key", required_argument, NULL, OPT_SERVER_KEY},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
};

/* What parse_one fills in. */
typedef struct args {
  loadgen_config_t *cfg;
  workload_cli_t *wl;
  log_level_t *level;
} args_t;

static int parse_one(void *ctx, int c, const char *arg) {
  args_t *a = ctx;
  loadgen_config_t *cfg = a->cfg;
  int rc = 0;
  switch (c) {
  case OPT_SCHEDULER:
    cfg->scheduler = arg;
    break;
  case OPT_MODEL:
    cfg->model = arg;
    break;
  case OPT_WAIT_WORKERS:
    rc = cli_u32("--wait-workers", arg, 0, 100000, &cfg->wait_workers);
    break;
  case OPT_WAIT_TIMEOUT:
    rc = cli_double("--wait-timeout", arg, 0.001, 86400,
                    &cfg->wait_timeout_s);
    break;
  case OPT_DRAIN:
    rc = cli_double("--drain", arg, 0, 86400, &cfg->drain_s);
    break;
  case OPT_REPORT_JSON:
    cfg->report_json = arg;
    break;
  case OPT_REPORT_HTML:
    cfg->report_html = arg;
    break;
  case OPT_POLICY_LABEL:
    cfg->policy_label = arg;
    break;
  case OPT_CHARS_PER_TOKEN:
    rc = cli_double("--chars-per-token", arg, 0, 64, &cfg->chars_per_token);
    break;
  case OPT_AUTH:
  case OPT_KEYS:
  case OPT_KEY:
  case OPT_SERVER_KEY: {
    /* Checked as the daemons check theirs. */
    setting_id_t id = c == OPT_AUTH   ? SET_AUTH
                      : c == OPT_KEYS ? SET_KEYS
                      : c == OPT_KEY  ? SET_KEY
                                      : SET_SERVER_KEY;
    setting_value_t v;
    if ((rc = settings_parse_flag(settings_get(id), optarg, &v)) == 0)
      settings_apply_auth(&cfg->auth, settings_get(id), &v);
    break;
  }
  case OPT_LOG_LEVEL:
    if (log_level_parse(arg, a->level))
      rc = cli_usage_error("--log-level: unknown level '%s'", arg);
    break;
  default:
    return workload_cli_parse(a->wl, c, arg);
  }
  return rc;
}

static int parse_args(int argc, char **argv, loadgen_config_t *cfg,
                      workload_cli_t *wl, log_level_t *level) {
  const struct option *options = workload_cli_merge(
      own_options, sizeof own_options / sizeof *own_options);
  args_t a = {cfg, wl, level};
  if (cli_parse_args(argc, argv, options, usage, parse_one, &a))
    return -1;
  return workload_cli_check(wl);
}

int main(int argc, char **argv) {
  loadgen_config_t cfg = {
      .scheduler = "tcp://127.0.0.1:5555",
      .drain_s = 30.0,
      .wait_timeout_s = 60.0,
      .status_timeout_s = 2.0,
      .chars_per_token = 4.0,
  };
  static workload_cli_t wl;
  log_level_t level = LOG_LEVEL_INFO;

  cli_init(PROGRAM);
  workload_cli_init(&wl);
  if (parse_args(argc, argv, &cfg, &wl, &level))
    return CLI_EXIT_USAGE;
  log_init(PROGRAM, level);
  cfg.progress = isatty(STDERR_FILENO);
  cfg.title = wl.spec;
  cfg.flags = &wl;
  cfg.block_size = wl.opts.block_size;

  char err[512];
  workload_t *w = NULL;
  if (workload_cli_build(&wl, 1.0, &w, err, sizeof err)) {
    cli_usage_error("--workload: %s", err);
    return CLI_EXIT_USAGE;
  }
  if (wl.record &&
      workload_recorder_new(wl.opts.block_size, &cfg.record, err,
                            sizeof err)) {
    workload_destroy(&w);
    cli_usage_error("--record: %s", err);
    return CLI_EXIT_USAGE;
  }
  int status = loadgen_run(&cfg, w);
  if (cfg.record &&
      workload_recorder_write(cfg.record, wl.record, err, sizeof err)) {
    log_error("--record: %s", err);
    status = 1;
  }
  workload_recorder_destroy(&cfg.record);
  workload_destroy(&w);
  return status;
}
