/* infsched-scheduler: routes inference requests from clients to workers. */
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/wire.h"
#include "scheduler/core/policy.h"
#include "scheduler/shell.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_STARTUP 3

typedef struct app {
  uv_loop_t loop;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  shell_t *shell;
} app_t;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: infsched-scheduler [OPTIONS]\n"
          "Routes inference requests from clients to a pool of workers.\n\n"
          "  --clients ADDR        client endpoint (default tcp://127.0.0.1:5555)\n"
          "  --workers ADDR        worker endpoint (default tcp://127.0.0.1:5556)\n"
          "  --policy NAME         routing policy (default least_loaded)\n"
          "  --heartbeat-ms N      heartbeat interval told to workers (default 200)\n"
          "  --heartbeat-miss N    silent intervals before a worker is lost (default 5)\n"
          "  --queue-limit N       admission queue bound per class (default 10000)\n"
          "  --queue-timeout-ms N  longest wait for capacity (default 30000)\n"
          "  --max-attempts N      dispatches of one request on worker loss (default 3)\n"
          "  --slo LIST            default SLOs by class, TTFT_MS:TPOT_MS (default\n"
          "                        interactive=450:40,agent=2000:25,batch=30000:200)\n"
          "  --latency-weight LIST balanced: weight of latency against cost by class\n"
          "                        (default interactive=2,agent=1,batch=0)\n"
          "  --cache-balance-abs N cache_affinity: a match is too loaded with more than\n"
          "                        N outstanding requests beyond the least loaded\n"
          "                        (default 64) ...\n"
          "  --cache-balance-rel X ... and more than X times as many (default 1.5)\n"
          "  --kwh-price USD       energy price in predicted costs (default 0.10)\n"
          "  --http ADDR           HOST:PORT of the OpenAI-compatible HTTP API,\n"
          "                        /metrics and /healthz, or off\n"
          "                        (default " FRONTDOOR_DEFAULT_ADDR ")\n"
          "  --http-max-body N     largest HTTP request body, bytes (default %u)\n"
          "  --max-msg-bytes N     largest accepted message (default %u)\n"
          "  --log-level LEVEL     debug, info, warn or error (default info)\n"
          "  -h, --help            show this help\n\n"
          "Policies:\n",
          FRONTDOOR_DEFAULT_MAX_BODY, WIRE_DEFAULT_MAX_MSG);
  for (const policy_ops_t *const *p = policy_all(); *p; p++)
    fprintf(f, "  %-20s  %s\n", (*p)->name, (*p)->summary);
  fprintf(f, "\nExit status: 0 after SIGINT/SIGTERM, 2 on bad usage, 3 when "
             "it cannot start.\n");
}

static int parse_args(int argc, char **argv, shell_config_t *cfg,
                      log_level_t *level) {
  enum {
    OPT_CLIENTS = 256,
    OPT_WORKERS,
    OPT_POLICY,
    OPT_HB_MS,
    OPT_HB_MISS,
    OPT_QLIMIT,
    OPT_QTIMEOUT,
    OPT_ATTEMPTS,
    OPT_MAXMSG,
    OPT_LOG,
    OPT_HTTP,
    OPT_HTTP_MAX_BODY,
    OPT_SLO,
    OPT_LATENCY_WEIGHT,
    OPT_BALANCE_ABS,
    OPT_BALANCE_REL,
    OPT_KWH
  };
  static const struct option opts[] = {
      {"clients", required_argument, NULL, OPT_CLIENTS},
      {"workers", required_argument, NULL, OPT_WORKERS},
      {"policy", required_argument, NULL, OPT_POLICY},
      {"heartbeat-ms", required_argument, NULL, OPT_HB_MS},
      {"heartbeat-miss", required_argument, NULL, OPT_HB_MISS},
      {"queue-limit", required_argument, NULL, OPT_QLIMIT},
      {"queue-timeout-ms", required_argument, NULL, OPT_QTIMEOUT},
      {"max-attempts", required_argument, NULL, OPT_ATTEMPTS},
      {"max-msg-bytes", required_argument, NULL, OPT_MAXMSG},
      {"log-level", required_argument, NULL, OPT_LOG},
      {"http", required_argument, NULL, OPT_HTTP},
      {"http-max-body", required_argument, NULL, OPT_HTTP_MAX_BODY},
      {"slo", required_argument, NULL, OPT_SLO},
      {"latency-weight", required_argument, NULL, OPT_LATENCY_WEIGHT},
      {"cache-balance-abs", required_argument, NULL, OPT_BALANCE_ABS},
      {"cache-balance-rel", required_argument, NULL, OPT_BALANCE_REL},
      {"kwh-price", required_argument, NULL, OPT_KWH},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  uint64_t v;
  uint32_t u;
  int c;
  char err[160];
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      usage(stdout);
      exit(0);
    case OPT_CLIENTS:
      cfg->clients_addr = optarg;
      break;
    case OPT_WORKERS:
      cfg->workers_addr = optarg;
      break;
    case OPT_POLICY:
      if (!policy_find(optarg))
        return cli_usage_error("--policy: unknown policy '%s'", optarg);
      cfg->core.policy = optarg;
      break;
    case OPT_HB_MS:
      if (cli_u64("--heartbeat-ms", optarg, 10, 60000, &v))
        return -1;
      cfg->core.heartbeat_interval = v * INFS_US_PER_MS;
      break;
    case OPT_HB_MISS:
      if (cli_u32("--heartbeat-miss", optarg, 2, 1000,
                  &cfg->core.heartbeat_miss))
        return -1;
      break;
    case OPT_QLIMIT:
      if (cli_u32("--queue-limit", optarg, 0, 10000000, &u))
        return -1;
      for (int i = 0; i < INFS_CLASS_COUNT; i++)
        cfg->core.queue_limit[i] = u;
      break;
    case OPT_QTIMEOUT:
      if (cli_u64("--queue-timeout-ms", optarg, 1, 86400000, &v))
        return -1;
      cfg->core.queue_timeout = v * INFS_US_PER_MS;
      break;
    case OPT_ATTEMPTS:
      if (cli_u32("--max-attempts", optarg, 1, 100, &cfg->core.max_attempts))
        return -1;
      break;
    case OPT_MAXMSG:
      if (cli_u64("--max-msg-bytes", optarg, 1024, 1u << 30, &v))
        return -1;
      cfg->max_msg_bytes = (int64_t)v;
      break;
    case OPT_LOG:
      if (log_level_parse(optarg, level))
        return cli_usage_error("--log-level: unknown level '%s'", optarg);
      break;
    case OPT_SLO:
      if (core_config_set_slo(&cfg->core, optarg, err, sizeof err))
        return cli_usage_error("--slo: %s", err);
      break;
    case OPT_LATENCY_WEIGHT:
      if (core_config_set_latency_weight(&cfg->core, optarg, err, sizeof err))
        return cli_usage_error("--latency-weight: %s", err);
      break;
    case OPT_BALANCE_ABS:
      if (cli_u32("--cache-balance-abs", optarg, 0, 1000000,
                  &cfg->core.cache_balance_abs))
        return -1;
      break;
    case OPT_BALANCE_REL:
      if (cli_double("--cache-balance-rel", optarg, 0, 1000,
                     &cfg->core.cache_balance_rel))
        return -1;
      break;
    case OPT_KWH:
      if (cli_double("--kwh-price", optarg, 0, 100, &cfg->core.kwh_usd))
        return -1;
      break;
    case OPT_HTTP:
      if (!*optarg)
        return cli_usage_error("--http: expected HOST:PORT or off");
      cfg->http.addr = strcmp(optarg, "off") == 0 ? NULL : optarg;
      break;
    case OPT_HTTP_MAX_BODY:
      if (cli_u64("--http-max-body", optarg, 1024, 1u << 30, &v))
        return -1;
      cfg->http.max_body = (size_t)v;
      break;
    default:
      return cli_usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);
  return 0;
}

static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  log_info("signal %d: shutting down", signum);
  shell_stop(app->shell);
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
}

int main(int argc, char **argv) {
  shell_config_t cfg = {
      .clients_addr = "tcp://127.0.0.1:5555",
      .workers_addr = "tcp://127.0.0.1:5556",
      .max_msg_bytes = WIRE_DEFAULT_MAX_MSG,
      .http = {.addr = FRONTDOOR_DEFAULT_ADDR,
               .max_body = FRONTDOOR_DEFAULT_MAX_BODY},
  };
  log_level_t level = LOG_LEVEL_INFO;
  core_config_defaults(&cfg.core);
  cli_init("infsched-scheduler");
  if (parse_args(argc, argv, &cfg, &level))
    return CLI_EXIT_USAGE;
  log_init("scheduler", level);
  /* A write to an HTTP client that has gone must fail with EPIPE, not end
   * the process. */
  signal(SIGPIPE, SIG_IGN);
  /* Decisions explain themselves only where someone reads them. */
  cfg.core.explain = level == LOG_LEVEL_DEBUG;

  app_t app;
  char err[256];
  uv_loop_init(&app.loop);
  int rc = shell_start(&app.loop, &cfg, &app.shell, err, sizeof err);
  if (rc) {
    log_error("%s", err);
    uv_run(&app.loop, UV_RUN_DEFAULT); /* let closed handles finish */
    uv_loop_close(&app.loop);
    return EXIT_STARTUP;
  }
  uv_signal_init(&app.loop, &app.sigint);
  uv_signal_init(&app.loop, &app.sigterm);
  app.sigint.data = app.sigterm.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  log_info("listening: clients %s, workers %s, policy %s", cfg.clients_addr,
           cfg.workers_addr, cfg.core.policy);
  if (shell_http_address(app.shell))
    log_info("http: listening on %s", shell_http_address(app.shell));

  uv_run(&app.loop, UV_RUN_DEFAULT);
  shell_destroy(&app.shell);
  rc = uv_loop_close(&app.loop);
  if (rc) {
    log_error("loop closed with open handles: %s", uv_strerror(rc));
    return 1;
  }
  log_info("stopped");
  return 0;
}
