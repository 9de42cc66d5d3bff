/* infsched-scheduler: routes inference requests from clients to workers. */
#include "cli.h"
#include "cli_loop.h"
#include "log.h"
#include "settings_core.h"
#include "policy.h"
#include "shell.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct app {
  uv_loop_t loop;
  cli_signals_t signals;
  shell_t *shell;
} app_t;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: infsched-scheduler [OPTIONS]\n"
          "Routes inference requests from clients to a pool of workers.\n\n");
  settings_usage(f, SETTING_SCHEDULER);
  fprintf(f, "  -h, --help            show this help\n"
             "  --version             print the version and exit\n\n"
             "Policies:\n");
  for (const policy_ops_t *const *p = policy_all(); *p; p++)
    fprintf(f, "  %-20s  %s\n", (*p)->name, (*p)->summary);
  fprintf(f, "\nExit status: 0 after SIGINT/SIGTERM, 2 on bad usage, 3 when "
             "it cannot start.\n");
}

typedef struct options {
  shell_config_t *cfg;
  log_level_t *level;
  const char *profiles_path;
  const char *api_keys_path; /* NULL: no keys */
  const char *links;         /* NULL: the default link everywhere */
} options_t;

static void apply(void *ctx, const setting_t *s, const setting_value_t *v) {
  options_t *o = ctx;
  shell_config_t *cfg = o->cfg;
  if (settings_apply_core(&cfg->core, s, v) == 0 ||
      settings_apply_auth(&cfg->auth, s, v) == 0)
    return;
  switch (s->id) {
  case SET_CLIENTS:
    cfg->clients_addr = v->s;
    break;
  case SET_PROFILES:
    o->profiles_path = v->s;
    break;
  case SET_API_KEYS:
    o->api_keys_path = v->s;
    break;
  case SET_LINKS:
    o->links = v->s;
    break;
  case SET_WORKERS:
    cfg->workers_addr = v->s;
    break;
  case SET_HTTP:
    cfg->http.addr = strcmp(v->s, "off") == 0 ? NULL : v->s;
    break;
  case SET_HTTP_MAX_BODY:
    cfg->http.max_body = (size_t)v->u;
    break;
  case SET_HTTP_MAX_CONNS:
    cfg->http.max_conns = (size_t)v->u;
    break;
  case SET_MAX_MSG_BYTES:
    cfg->max_msg_bytes = (int64_t)v->u;
    break;
  case SET_LOG_LEVEL:
    log_level_parse(v->s, o->level);
    break;
  default:
    break;
  }
}

/* Whether a bound address can be reached from other hosts: anything but
 * ipc://, inproc:// and loopback hosts (127.0.0.0/8, ::1, localhost). */
static bool open_to_others(const char *addr) {
  if (strncmp(addr, "ipc://", 6) == 0 || strncmp(addr, "inproc://", 9) == 0)
    return false;
  if (strncmp(addr, "tcp://", 6) == 0)
    addr += 6;
  const char *colon = strrchr(addr, ':');
  size_t len = colon ? (size_t)(colon - addr) : strlen(addr);
  if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
    addr++;
    len -= 2;
  }
  return !((len == 9 && strncmp(addr, "localhost", 9) == 0) ||
           (len == 3 && strncmp(addr, "::1", 3) == 0) ||
           (len >= 4 && strncmp(addr, "127.", 4) == 0));
}

/* Without authentication (docs/security.md), say so loudly where other
 * hosts can connect. */
static void warn_if_open(const char *what, const char *addr) {
  if (addr && open_to_others(addr))
    log_warn("%s %s is reachable from other hosts, and nothing "
             "authenticates its peers: any of them can %s (see "
             "docs/security.md)",
             what, addr,
             strcmp(what, "workers") == 0
                 ? "register as a worker and receive prompts"
                 : "submit and read answers");
}

static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  log_info("signal %d: shutting down", signum);
  shell_stop(app->shell);
  cli_signals_close(&app->signals);
}

int main(int argc, char **argv) {
  shell_config_t cfg = {0};
  log_level_t level = LOG_LEVEL_INFO;
  options_t o = {&cfg, &level, NULL, NULL, NULL};
  cli_init("infsched-scheduler");
  core_config_defaults(&cfg.core);
  if (settings_parse_args(argc, argv, SETTING_SCHEDULER, usage, apply, &o))
    return CLI_EXIT_USAGE;
  log_init("scheduler", level);
  /* Workers name their profiles; the figures predicted with are these. */
  char path[PATH_MAX], err[512];
  profile_set_t *profiles =
      cli_load_profiles(&o.profiles_path, path, sizeof path);
  if (!profiles)
    return CLI_EXIT_USAGE;
  cfg.core.profiles = profiles;
  apikeys_t *keys = NULL;
  if (o.api_keys_path &&
      apikeys_load(o.api_keys_path, &keys, err, sizeof err)) {
    log_error("--api-keys: %s", err);
    profile_set_destroy(&profiles);
    return CLI_EXIT_USAGE;
  }
  cfg.http.keys = keys;
  struct stat st;
  /* The keys are secrets: say so when others may read them. */
  if (keys && stat(o.api_keys_path, &st) == 0 && (st.st_mode & 077))
    log_warn("--api-keys: %s is readable by others than its owner (mode "
             "%03o); chmod 600 it",
             o.api_keys_path, (unsigned)(st.st_mode & 0777));
  /* --links was checked as a flag: this parse does not fail. */
  link_table_t *links = NULL;
  if (o.links)
    (void)link_table_parse(o.links, &links, err, sizeof err);
  cfg.core.links = links;
  /* Decisions explain themselves only where someone reads them. */
  cfg.core.explain = level == LOG_LEVEL_DEBUG;

  app_t app;
  uv_loop_init(&app.loop);
  int rc = shell_start(&app.loop, &cfg, &app.shell, err, sizeof err);
  if (rc) {
    log_error("%s", err);
    cli_loop_close(&app.loop);
    profile_set_destroy(&profiles);
    apikeys_destroy(&keys);
    link_table_free(&links);
    return cli_start_status(rc);
  }
  cli_signals_start(&app.signals, &app.loop, on_signal, &app);
  log_info("listening: clients %s, workers %s, policy %s", cfg.clients_addr,
           cfg.workers_addr, cfg.core.policy);
  if (shell_http_address(app.shell))
    log_info("http: listening on %s%s", shell_http_address(app.shell),
             keys ? " (API keys required)" : "");
  if (cfg.auth.off) {
    log_info("authentication off: any process that reaches the ZeroMQ "
             "ports is served");
    warn_if_open("clients", cfg.clients_addr);
    warn_if_open("workers", cfg.workers_addr);
  } else {
    log_info("authentication: CURVE, %zu worker keys and %zu client keys "
             "admitted",
             shell_keys_admitted(app.shell, true),
             shell_keys_admitted(app.shell, false));
  }
  /* With keys, the HTTP API authenticates its callers. */
  if (!keys)
    warn_if_open("http", shell_http_address(app.shell));

  uv_run(&app.loop, UV_RUN_DEFAULT);
  shell_destroy(&app.shell);
  profile_set_destroy(&profiles);
  apikeys_destroy(&keys);
  link_table_free(&links);
  if ((rc = cli_loop_close(&app.loop)))
    return rc;
  log_info("stopped");
  return 0;
}
