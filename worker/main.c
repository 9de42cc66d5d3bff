/* infsched-worker: serves requests from the scheduler on one backend. */
#include "infsched/errors.h"
#include "cli.h"
#include "cli_loop.h"
#include "log.h"
#include "settings.h"
#include "backends/builtin.h"
#include "worker.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct options {
  worker_config_t cfg;
  const char *profile_name;
  const char *profiles_path;
  const char *backend_spec;
  log_level_t level;
} options_t;

typedef struct app {
  uv_loop_t loop;
  cli_signals_t signals;
  worker_t *worker;
} app_t;

static void usage(FILE *f) {
  fprintf(f, "Usage: infsched-worker [OPTIONS]\n"
             "Registers with a scheduler and serves its requests on a "
             "backend.\n\n");
  settings_usage(f, SETTING_WORKER);
  fprintf(f, "  -h, --help            show this help\n"
             "  --version             print the version and exit\n\n"
             "SIGTERM or SIGINT drains: the scheduler is told, no new request is\n"
             "taken, running ones finish (within --drain-timeout-ms; those still\n"
             "running then end with an error), then it exits; a second signal\n"
             "stops at once.\n"
             "Exit status: 0 after SIGINT/SIGTERM, 2 on bad usage, 3 when it "
             "cannot start\nor the scheduler refuses its key.\n");
}

static void apply(void *ctx, const setting_t *s, const setting_value_t *v) {
  options_t *o = ctx;
  if (settings_apply_auth(&o->cfg.auth, s, v) == 0)
    return;
  switch (s->id) {
  case SET_SCHEDULER:
    o->cfg.scheduler_addr = v->s;
    break;
  case SET_ID:
    o->cfg.worker_id = v->s;
    break;
  case SET_PROFILE:
    o->profile_name = v->s;
    break;
  case SET_PROFILES:
    o->profiles_path = v->s;
    break;
  case SET_BACKEND:
    o->backend_spec = v->s;
    break;
  case SET_MODEL:
    o->cfg.model = v->s;
    break;
  case SET_CAPACITY:
    o->cfg.capacity = (uint32_t)v->u;
    break;
  case SET_HEARTBEAT_MS:
    o->cfg.heartbeat_ms = (uint32_t)v->u;
    break;
  case SET_KWH_PRICE:
    o->cfg.kwh_usd = v->d;
    break;
  case SET_MAX_MSG_BYTES:
    o->cfg.max_msg_bytes = (int64_t)v->u;
    break;
  case SET_DRAIN_TIMEOUT_MS:
    o->cfg.drain_timeout_ms = (uint32_t)v->u;
    break;
  case SET_LOG_LEVEL:
    log_level_parse(v->s, &o->level);
    break;
  case SET_ROLE:
    (void)infs_role_parse(v->s, &o->cfg.role); /* checked by its setting */
    break;
  default:
    break;
  }
}

/* The first signal drains, the second stops at once. While draining the
 * handlers keep listening but do not keep the loop alive: it ends when the
 * worker stops. */
static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  log_info("signal %d", signum);
  if (worker_drain(app->worker)) {
    cli_signals_close(&app->signals);
    return;
  }
  cli_signals_unref(&app->signals);
}

int main(int argc, char **argv) {
  char default_id[INFS_NAME_MAX], exe[PATH_MAX], err[512];
  options_t o = {.level = LOG_LEVEL_INFO};
  cli_init("infsched-worker");
  if (settings_parse_args(argc, argv, SETTING_WORKER, usage, apply, &o))
    return CLI_EXIT_USAGE;
  if (!o.cfg.worker_id) {
    char host[32] = "worker";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(default_id, sizeof default_id, "%s-%d", host, (int)getpid());
    o.cfg.worker_id = default_id;
  }
  log_init(o.cfg.worker_id, o.level);
  profile_set_t *profiles =
      cli_load_profiles(&o.profiles_path, exe, sizeof exe);
  if (!profiles)
    return CLI_EXIT_USAGE;
  const infs_profile_t *profile = profile_set_find(profiles, o.profile_name);
  if (!profile) {
    log_error("unknown profile '%s' in %s", o.profile_name, o.profiles_path);
    profile_set_destroy(&profiles);
    return CLI_EXIT_USAGE;
  }
  o.cfg.profile = profile;
  if (!o.cfg.capacity)
    o.cfg.capacity = 2 * profile->max_batch;
  o.cfg.backend =
      backend_resolve(o.backend_spec, &o.cfg.backend_args, err, sizeof err);
  if (!o.cfg.backend) {
    log_error("%s", err);
    profile_set_destroy(&profiles);
    return CLI_EXIT_USAGE;
  }
  o.cfg.backend_name = o.cfg.backend->name;

  app_t app;
  uv_loop_init(&app.loop);
  int rc = worker_start(&app.loop, &o.cfg, &app.worker, err, sizeof err);
  if (rc) {
    log_error("%s", err);
    cli_loop_close(&app.loop);
    profile_set_destroy(&profiles);
    return cli_start_status(rc);
  }
  cli_signals_start(&app.signals, &app.loop, on_signal, &app);
  log_info("worker %s: profile %s (%s) from %s, backend %s, role %s, "
           "scheduler %s",
           o.cfg.worker_id, profile->name, infs_worker_class_name(profile->cls),
           o.profiles_path, o.cfg.backend->name, infs_role_name(o.cfg.role),
           o.cfg.scheduler_addr);

  uv_run(&app.loop, UV_RUN_DEFAULT);
  cli_signals_close(&app.signals);
  bool refused = worker_refused(app.worker);
  worker_destroy(&app.worker);
  profile_set_destroy(&profiles);
  if ((rc = cli_loop_close(&app.loop)))
    return rc;
  log_info("stopped");
  /* The scheduler is there, and refuses this worker's key. */
  return refused ? CLI_EXIT_STARTUP : 0;
}
