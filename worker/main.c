/* infsched-worker: serves requests from the scheduler on one backend. */
#include "infsched/errors.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/wire.h"
#include "worker/backends/builtin.h"
#include "model/cost.h"
#include "worker/worker.h"

#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_STARTUP 3

typedef struct options {
  worker_config_t cfg;
  const char *profile_name;
  const char *profiles_path;
  const char *backend_spec;
  log_level_t level;
} options_t;

typedef struct app {
  uv_loop_t loop;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  worker_t *worker;
} app_t;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: infsched-worker [OPTIONS]\n"
          "Registers with a scheduler and serves its requests on a backend.\n\n"
          "  --scheduler ADDR      scheduler endpoint "
          "(default tcp://127.0.0.1:5556)\n"
          "  --id NAME             worker id (default HOSTNAME-PID)\n"
          "  --profile NAME        accelerator profile (default gpu-h100)\n"
          "  --profiles FILE       profiles file (default configs/profiles.yaml,\n"
          "                        then the one beside the installed binary)\n"
          "  --backend SPEC        sim, null, openai:URL[,OPTIONS] or\n"
          "                        plugin:PATH.so[:ARGS] (default sim)\n"
          "  --model NAME          model served (default codex-70b)\n"
          "  --capacity N          requests accepted at once "
          "(default 2 x max_batch)\n"
          "  --heartbeat-ms N      interval until the scheduler sets one "
          "(default 200)\n"
          "  --kwh-price USD       energy price per kWh (default %.2f)\n"
          "  --max-msg-bytes N     largest accepted message (default %u)\n"
          "  --log-level LEVEL     debug, info, warn or error (default info)\n"
          "  -h, --help            show this help\n\n"
          "Exit status: 0 after SIGINT/SIGTERM, 2 on bad usage, 3 when it "
          "cannot start.\n",
          COST_DEFAULT_KWH_USD, WIRE_DEFAULT_MAX_MSG);
}

static int parse_args(int argc, char **argv, options_t *o) {
  enum {
    OPT_SCHED = 256,
    OPT_ID,
    OPT_PROFILE,
    OPT_PROFILES,
    OPT_BACKEND,
    OPT_MODEL,
    OPT_CAPACITY,
    OPT_HB,
    OPT_KWH,
    OPT_MAXMSG,
    OPT_LOG
  };
  static const struct option opts[] = {
      {"scheduler", required_argument, NULL, OPT_SCHED},
      {"id", required_argument, NULL, OPT_ID},
      {"profile", required_argument, NULL, OPT_PROFILE},
      {"profiles", required_argument, NULL, OPT_PROFILES},
      {"backend", required_argument, NULL, OPT_BACKEND},
      {"model", required_argument, NULL, OPT_MODEL},
      {"capacity", required_argument, NULL, OPT_CAPACITY},
      {"heartbeat-ms", required_argument, NULL, OPT_HB},
      {"kwh-price", required_argument, NULL, OPT_KWH},
      {"max-msg-bytes", required_argument, NULL, OPT_MAXMSG},
      {"log-level", required_argument, NULL, OPT_LOG},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  uint64_t v;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      usage(stdout);
      exit(0);
    case OPT_SCHED:
      o->cfg.scheduler_addr = optarg;
      break;
    case OPT_ID:
      if (!*optarg || strlen(optarg) >= INFS_NAME_MAX)
        return cli_usage_error("--id: must be 1 to %d bytes",
                               INFS_NAME_MAX - 1);
      o->cfg.worker_id = optarg;
      break;
    case OPT_PROFILE:
      o->profile_name = optarg;
      break;
    case OPT_PROFILES:
      o->profiles_path = optarg;
      break;
    case OPT_BACKEND:
      o->backend_spec = optarg;
      break;
    case OPT_MODEL:
      if (strlen(optarg) >= INFS_NAME_MAX)
        return cli_usage_error("--model: longer than %d bytes",
                               INFS_NAME_MAX - 1);
      o->cfg.model = optarg;
      break;
    case OPT_CAPACITY:
      if (cli_u32("--capacity", optarg, 1, 1000000, &o->cfg.capacity))
        return -1;
      break;
    case OPT_HB:
      if (cli_u32("--heartbeat-ms", optarg, 10, 60000, &o->cfg.heartbeat_ms))
        return -1;
      break;
    case OPT_KWH:
      if (cli_double("--kwh-price", optarg, 0, 100, &o->cfg.kwh_usd))
        return -1;
      break;
    case OPT_MAXMSG:
      if (cli_u64("--max-msg-bytes", optarg, 1024, 1u << 30, &v))
        return -1;
      o->cfg.max_msg_bytes = (int64_t)v;
      break;
    case OPT_LOG:
      if (log_level_parse(optarg, &o->level))
        return cli_usage_error("--log-level: unknown level '%s'", optarg);
      break;
    default:
      return cli_usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return cli_usage_error("unexpected argument '%s'", argv[optind]);
  return 0;
}

/* The default profiles file: ./configs/profiles.yaml, else the repository's
 * configs/ seen from build/bin/. */
static const char *default_profiles(char *buf, size_t len) {
  if (access("configs/profiles.yaml", R_OK) == 0)
    return "configs/profiles.yaml";
  size_t n = len;
  if (uv_exepath(buf, &n) == 0) {
    char *dir = dirname(buf);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/../../configs/profiles.yaml", dir);
    if (access(path, R_OK) == 0) {
      snprintf(buf, len, "%s", path);
      return buf;
    }
  }
  return "configs/profiles.yaml";
}

static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  log_info("signal %d: stopping", signum);
  worker_stop(app->worker);
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
}

int main(int argc, char **argv) {
  char default_id[INFS_NAME_MAX], exe[PATH_MAX], err[512];
  options_t o = {
      .cfg =
          {
              .scheduler_addr = "tcp://127.0.0.1:5556",
              .model = "codex-70b",
              .heartbeat_ms = 200,
              .kwh_usd = COST_DEFAULT_KWH_USD,
              .max_msg_bytes = WIRE_DEFAULT_MAX_MSG,
          },
      .profile_name = "gpu-h100",
      .backend_spec = "sim",
      .level = LOG_LEVEL_INFO,
  };
  cli_init("infsched-worker");
  if (parse_args(argc, argv, &o))
    return CLI_EXIT_USAGE;
  if (!o.cfg.worker_id) {
    char host[32] = "worker";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(default_id, sizeof default_id, "%s-%d", host, (int)getpid());
    o.cfg.worker_id = default_id;
  }
  log_init(o.cfg.worker_id, o.level);
  if (!o.profiles_path)
    o.profiles_path = default_profiles(exe, sizeof exe);

  profile_set_t *profiles = NULL;
  if (profile_set_load(o.profiles_path, &profiles, err, sizeof err)) {
    log_error("%s", err);
    return EXIT_STARTUP;
  }
  const infs_profile_t *profile = profile_set_find(profiles, o.profile_name);
  if (!profile) {
    log_error("unknown profile '%s' in %s", o.profile_name, o.profiles_path);
    profile_set_destroy(&profiles);
    return EXIT_STARTUP;
  }
  o.cfg.profile = profile;
  if (!o.cfg.capacity)
    o.cfg.capacity = 2 * profile->max_batch;
  o.cfg.backend = backend_resolve(o.backend_spec, &o.cfg.backend_args, err,
                                  sizeof err);
  if (!o.cfg.backend) {
    log_error("%s", err);
    profile_set_destroy(&profiles);
    return EXIT_STARTUP;
  }
  o.cfg.backend_name = o.cfg.backend->name;

  app_t app;
  uv_loop_init(&app.loop);
  int rc = worker_start(&app.loop, &o.cfg, &app.worker, err, sizeof err);
  if (rc) {
    log_error("%s", err);
    uv_run(&app.loop, UV_RUN_DEFAULT); /* let closed handles finish */
    uv_loop_close(&app.loop);
    profile_set_destroy(&profiles);
    return EXIT_STARTUP;
  }
  uv_signal_init(&app.loop, &app.sigint);
  uv_signal_init(&app.loop, &app.sigterm);
  app.sigint.data = app.sigterm.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  log_info("worker %s: profile %s (%s), backend %s, scheduler %s",
           o.cfg.worker_id, profile->name,
           infs_worker_class_name(profile->cls), o.cfg.backend->name,
           o.cfg.scheduler_addr);

  uv_run(&app.loop, UV_RUN_DEFAULT);
  worker_destroy(&app.worker);
  profile_set_destroy(&profiles);
  rc = uv_loop_close(&app.loop);
  if (rc) {
    log_error("loop closed with open handles: %s", uv_strerror(rc));
    return 1;
  }
  log_info("stopped");
  return 0;
}
