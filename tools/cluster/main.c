/* infsched-cluster: starts a scheduler and its workers from a cluster file,
 * keeps them running, and stops them all on SIGINT or SIGTERM. */
#include "infsched/errors.h"
#include "cli.h"
#include "cli_loop.h"
#include "log.h"
#include "settings.h"
#include "cluster_file.h"
#include "endpoint.h"
#include "backoff.h"
#include "probe.h"
#include "supervisor.h"
#include "curve.h"
#include "wire.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define PROGRAM "infsched-cluster"
#define SCHEDULER_NAME "scheduler"
/* Children that stay up this long count as started for "cluster up". */
#define STARTUP_GRACE_MS 500
#define PROBE_EVERY_MS 200
#define WAIT_REPORT_MS 5000
#define DEFAULT_GRACE_MS 5000
#define UPTIME_SLACK_MS 50
_Static_assert(UPTIME_SLACK_MS < BACKOFF_INITIAL_MS,
               "a registration older than a restart must not pass");
/* How long "status" waits for the scheduler's answer. */
#define STATUS_TIMEOUT_MS 5000

typedef struct options {
  const char *command;
  const char *file;
  const char *bin_dir;
  const char *clients;
  const char *workers;
  const char *http;
  const char *log_level;
  uint64_t grace_ms;
} options_t;

/* A worker instance as the readiness check sees it. */
typedef struct instance {
  char name[CLUSTER_NAME_MAX];
  uint64_t started_ms; /* uv_now() at its last spawn */
  int running;         /* its process is up */
} instance_t;

typedef struct app {
  uv_loop_t loop;
  cli_signals_t signals;
  uv_timer_t startup; /* "cluster up" once all have run STARTUP_GRACE_MS;
                         for "status", its deadline */
  int status_code;    /* "status": the exit code once answered */
  supervisor_t *sup;
  probe_t *probe;
  cluster_spec_t *spec;
  instance_t *inst;
  size_t ninst;
  int ready;
  int stopping;
  int announced_up;
  size_t running; /* children whose process is up */
  uint64_t last_wait_report;
  char clients_connect[CLUSTER_ADDR_MAX];
  infs_auth_t auth;    /* the launcher's own, as a client (its probe) */
  char keys[PATH_MAX]; /* the keys directory, with authentication on */
} app_t;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: " PROGRAM " up FILE [options]\n"
          "       " PROGRAM " check FILE [options]\n"
          "       " PROGRAM " status FILE [options]\n"
          "       " PROGRAM " settings\n"
          "\n"
          "up     starts the scheduler and the workers of cluster file FILE,\n"
          "       prefixes their output with their names, restarts any that\n"
          "       exit, and stops them all on SIGINT or SIGTERM: the workers\n"
          "       first (they drain, their streams finishing), then the\n"
          "       scheduler. Prints\n"
          "       \"cluster ready: N/N workers registered\" on stdout once\n"
          "       the scheduler reports every worker registered.\n"
          "check  validates FILE and its profiles as the scheduler and the\n"
          "       workers would, and exits: what they would refuse, check\n"
          "       refuses first.\n"
          "status prints what the scheduler of FILE reports, asked at the\n"
          "       address of option --clients when given: its workers\n"
          "       with their class, profile, role and load,\n"
          "       and its counters; exits 1 when it does not answer\n"
          "       within 5 s.\n"
          "settings  prints the settings a cluster file may give, with\n"
          "       their ranges and defaults, as a Markdown table.\n"
          "\n"
          "Every process up starts dies with the launcher, however the\n"
          "launcher dies: the scheduler by SIGTERM (it answers its open\n"
          "requests), a worker by SIGKILL. They are started through\n"
          "\"" PROGRAM " " SUPERVISOR_EXEC_COMMAND " PID SIGNAL PROGRAM [ARG...]\",\n"
          "which is not meant to be run by hand.\n"
          "\n"
          "Options:\n"
          "  --bin-dir DIR     where infsched-scheduler and infsched-worker\n"
          "                    are (default: the directory of " PROGRAM ")\n"
          "  --clients ADDR    scheduler endpoint for clients, overriding\n"
          "                    scheduler.clients\n"
          "  --workers ADDR    scheduler endpoint for workers, overriding\n"
          "                    scheduler.workers\n"
          "  --http ADDR       scheduler's HTTP API HOST:PORT or off,\n"
          "                    overriding scheduler.http\n"
          "  --log-level L     debug, info, warn or error (default info);\n"
          "                    passed on to every process\n"
          "  --grace-ms N      time between SIGTERM and SIGKILL when\n"
          "                    stopping, beyond the longest drain_timeout_ms\n"
          "                    of the workers (default 5000)\n"
          "  -h, --help        this text\n"
          "  --version         print the version and exit\n"
          "\n"
          "Exit status: 0 after a clean stop, 1 when a process failed,\n"
          "2 on usage errors (bad flags or cluster file, or a process that\n"
          "exits 2), 3 when the cluster cannot start (a port is taken, a\n"
          "program is missing, a process that exits 3).\n");
}

static int parse_one(void *ctx, int opt, const char *arg) {
  options_t *o = ctx;
  setting_value_t v;
  switch (opt) {
  case 'b':
    o->bin_dir = arg;
    break;
  case 'c':
  case 'w':
  case 'H': {
    const setting_t *st = settings_get(
        opt == 'c' ? SET_CLIENTS : opt == 'w' ? SET_WORKERS : SET_HTTP);
    if (settings_parse_flag(st, arg, &v))
      return -1;
    if (strlen(arg) >= CLUSTER_ADDR_MAX)
      return cli_usage_error("--%s: longer than %d characters", st->flag,
                             CLUSTER_ADDR_MAX - 1);
    *(opt == 'c' ? &o->clients : opt == 'w' ? &o->workers : &o->http) =
        arg;
    break;
  }
  case 'l':
    if (settings_parse_flag(settings_get(SET_LOG_LEVEL), arg, &v))
      return -1;
    o->log_level = arg;
    break;
  case 'g':
    if (cli_u64("--grace-ms", arg, 0, 3600000, &o->grace_ms))
      return -1;
    break;
  default:
    return CLI_NOT_MINE;
  }
  return 0;
}

static int parse_args(int argc, char **argv, options_t *o) {
  static const struct option longopts[] = {
      {"bin-dir", required_argument, NULL, 'b'},
      {"clients", required_argument, NULL, 'c'},
      {"workers", required_argument, NULL, 'w'},
      {"http", required_argument, NULL, 'H'},
      {"log-level", required_argument, NULL, 'l'},
      {"grace-ms", required_argument, NULL, 'g'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  o->log_level = "info";
  o->grace_ms = DEFAULT_GRACE_MS;
  int i = cli_parse_options(argc, argv, longopts, usage, parse_one, o);
  if (i < 0)
    return -1;
  if (i >= argc)
    return cli_usage_error("missing command (up, check, status or settings)");
  o->command = argv[i++];
  if (strcmp(o->command, "settings") == 0) {
    if (i < argc)
      return cli_usage_error("unexpected argument '%s'", argv[i]);
    return 0;
  }
  if (strcmp(o->command, "up") != 0 && strcmp(o->command, "check") != 0 &&
      strcmp(o->command, "status") != 0)
    return cli_usage_error("unknown command '%s' (expected up, check, "
                           "status or settings)",
                           o->command);
  if (i >= argc)
    return cli_usage_error("%s: missing cluster FILE", o->command);
  o->file = argv[i++];
  if (i < argc)
    return cli_usage_error("unexpected argument '%s'", argv[i]);
  if (o->bin_dir && !*o->bin_dir)
    return cli_usage_error("--bin-dir: must not be empty");
  return 0;
}

/* Prints a line scripts wait on: stdout, whole, at once. */
static void announce(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void announce(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}

static instance_t *find_instance(app_t *a, const char *name) {
  for (size_t i = 0; i < a->ninst; i++)
    if (strcmp(a->inst[i].name, name) == 0)
      return &a->inst[i];
  return NULL;
}

/* A restarted worker re-registers under the same id, and until then (or
 * until its heartbeats are missed) the scheduler still lists the old
 * registration. A registration older than the current process belongs to
 * the old one: it was made before the restart's back-off, at least
 * BACKOFF_INITIAL_MS earlier. The slack covers uv_now()'s caching. */
static int is_current(const instance_t *in, const Infsched__WorkerStatus *ws,
                      uint64_t now) {
  if (!in->running)
    return 0;
  return ws->registered_ms_ago <= now - in->started_ms + UPTIME_SLACK_MS;
}

static void on_startup(uv_timer_t *t) {
  app_t *a = t->data;
  a->announced_up = 1;
  announce("cluster up: scheduler at %s, %zu workers", a->spec->clients,
           a->ninst);
}

static void on_status(void *arg, const Infsched__Status *st) {
  app_t *a = arg;
  uint64_t now = uv_now(&a->loop);
  size_t n = 0;
  if (a->stopping)
    return;
  for (size_t i = 0; i < st->n_workers; i++) {
    const Infsched__WorkerStatus *ws = st->workers[i];
    instance_t *in = ws->worker_id ? find_instance(a, ws->worker_id) : NULL;
    if (in && is_current(in, ws, now))
      n++;
  }
  if (n == a->ninst) {
    /* Every worker registered has been started: up comes first. */
    if (!a->announced_up) {
      uv_timer_stop(&a->startup);
      on_startup(&a->startup);
    }
    if (!a->ready) {
      a->ready = 1;
      announce("cluster ready: %zu/%zu workers registered", n, a->ninst);
    }
    return;
  }
  if (a->ready) {
    a->ready = 0;
    a->last_wait_report = now;
    log_warn("cluster degraded: %zu/%zu workers registered", n, a->ninst);
  } else if (now - a->last_wait_report >= WAIT_REPORT_MS) {
    a->last_wait_report = now;
    log_info("waiting for workers: %zu/%zu registered", n, a->ninst);
  }
}

static void on_closed_quietly(uv_handle_t *h) {
  (void)h;
}


static void on_supervisor(void *arg, supervisor_event_t ev, const char *name) {
  app_t *a = arg;
  instance_t *in;
  switch (ev) {
  case SUPERVISOR_STARTED:
    if ((in = find_instance(a, name))) {
      in->started_ms = uv_now(&a->loop);
      in->running = 1;
    }
    /* The scheduler and every worker, each up for the whole grace. */
    if (++a->running == a->ninst + 1 && !a->announced_up && !a->stopping)
      uv_timer_start(&a->startup, on_startup, STARTUP_GRACE_MS, 0);
    break;
  case SUPERVISOR_EXITED:
    if ((in = find_instance(a, name)))
      in->running = 0;
    a->running--;
    uv_timer_stop(&a->startup);
    if (a->ready && !a->stopping) {
      a->ready = 0;
      a->last_wait_report = uv_now(&a->loop);
      log_warn("cluster degraded: %s exited", name);
    }
    break;
  case SUPERVISOR_STOPPED:
    /* Everything is down: close the remaining handles so uv_run returns. */
    a->stopping = 1;
    probe_close(&a->probe);
    cli_signals_close(&a->signals);
    uv_close((uv_handle_t *)&a->startup, on_closed_quietly);
    break;
  }
}

static void on_signal(uv_signal_t *h, int sig) {
  app_t *a = h->data;
  log_info("%s received, stopping the cluster%s", strsignal(sig),
           a->stopping ? " now" : "");
  a->stopping = 1;
  uv_timer_stop(&a->startup);
  supervisor_stop(a->sup, 0);
}

/* argv holder: a fixed array of strings built with push(). */
typedef struct args {
  char *v[2 * SET_COUNT + 16];
  char buf[2 * SET_COUNT + 16][PATH_MAX];
  int n;
} args_t;

static void push(args_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void push(args_t *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->buf[a->n], sizeof a->buf[a->n], fmt, ap);
  va_end(ap);
  a->v[a->n] = a->buf[a->n];
  a->v[++a->n] = NULL;
}

/* The settings a cluster file gave, as the program's flags; the
 * endpoints, the HTTP address and the worker's own are pushed apart, since
 * the launcher's flags or instance may override them. */
static void push_settings(args_t *args, char *const *set) {
  for (setting_id_t id = 0; id < SET_COUNT; id++) {
    if (!set[id] || id == SET_CLIENTS || id == SET_WORKERS || id == SET_HTTP)
      continue;
    push(args, "--%s", settings_get(id)->flag);
    push(args, "%s", set[id]);
  }
}

/* A worker's keys: a pair of its own, which its id is bound to, in the
 * cluster's keys directory (made unless there), or the cluster's --auth
 * off. */
static int push_auth(app_t *a, args_t *args, const char *name) {
  if (a->auth.off) {
    push(args, "--auth");
    push(args, "off");
    return 0;
  }
  char secret[PATH_MAX], err[PATH_MAX + 256];
  int rc =
      curve_instance_key(a->keys, name, secret, sizeof secret, err, sizeof err);
  if (rc) {
    log_error("%s", err);
    return rc;
  }
  push(args, "--keys");
  push(args, "%s", a->keys);
  push(args, "--key");
  push(args, "%s", secret);
  return 0;
}

/* The cluster's authentication (docs/security.md): its scheduler's
 * settings auth and keys, for every process it starts. With it on, the
 * local keys are made before anything starts, so that no worker starts
 * before the keys it reads. */
static int prepare_auth(app_t *a) {
  char err[PATH_MAX + 256];
  const char *auth = a->spec->set[SET_AUTH];
  a->auth.off = auth && strcmp(auth, "off") == 0;
  if (a->auth.off) {
    log_info("authentication off (auth: off in %s)", a->spec->path);
    return 0;
  }
  infs_auth_t given = {.dir = a->spec->set[SET_KEYS]};
  int rc = curve_check(err, sizeof err);
  if (!rc)
    rc = curve_dir(&given, a->keys, sizeof a->keys, err, sizeof err);
  if (!rc)
    rc = curve_local_keys(a->keys, err, sizeof err);
  if (rc) {
    log_error("%s", err);
    return rc;
  }
  a->auth.dir = a->keys;
  log_info("authentication: CURVE, keys in %s", a->keys);
  return 0;
}

/* "status": the scheduler's answer, printed once. */
static void print_status(void *arg, const Infsched__Status *st) {
  app_t *a = arg;
  if (!a->probe)
    return;
  printf("scheduler at %s: policy %s, up %.1f s, %u queued; requests "
         "submitted %llu, completed %llu, failed %llu, rejected %llu\n",
         a->clients_connect, st->policy ? st->policy : "",
         (double)st->uptime_ms / 1000, st->queued,
         (unsigned long long)st->submitted, (unsigned long long)st->completed,
         (unsigned long long)st->failed, (unsigned long long)st->rejected);
  printf("%-24s %-6s %-16s %-8s %11s %9s\n", "worker", "class", "profile",
         "role", "outstanding", "requests");
  for (size_t i = 0; i < st->n_workers; i++) {
    const Infsched__WorkerStatus *w = st->workers[i];
    char load[32];
    snprintf(load, sizeof load, "%u/%u", w->outstanding, w->capacity);
    infs_role_t role;
    printf("%-24s %-6s %-16s %-8s %11s %9llu\n", w->worker_id,
           w->worker_class, w->profile,
           wire_role_from_msg(w->role, &role) ? "unknown"
                                              : infs_role_name(role),
           load, (unsigned long long)w->requests);
  }
  for (size_t i = 0; i < st->n_counters; i++)
    if (st->counters[i]->value)
      printf("%s %llu\n", st->counters[i]->name,
             (unsigned long long)st->counters[i]->value);
  fflush(stdout);
  a->status_code = 0;
  probe_close(&a->probe);
  uv_close((uv_handle_t *)&a->startup, on_closed_quietly);
}

static void on_status_timeout(uv_timer_t *t) {
  app_t *a = t->data;
  log_error("no status from the scheduler at %s within %d s",
            a->clients_connect, STATUS_TIMEOUT_MS / 1000);
  probe_close(&a->probe);
  uv_close((uv_handle_t *)&a->startup, on_closed_quietly);
}

/* Asks the scheduler of the file (at --clients when given) for its status,
 * prints it and returns 0; 1 when it does not answer in time. */
static int status(app_t *a) {
  char err[PATH_MAX + 256];
  int rc = uv_loop_init(&a->loop);
  if (rc) {
    log_error("uv_loop_init: %s", uv_strerror(rc));
    return CLI_EXIT_STARTUP;
  }
  a->status_code = 1;
  if ((rc = prepare_auth(a)) ||
      (rc = endpoint_connect_addr(a->spec->clients, a->clients_connect,
                                  sizeof a->clients_connect))) {
    uv_loop_close(&a->loop);
    return CLI_EXIT_STARTUP;
  }
  if ((rc = probe_start(&a->loop, a->clients_connect, &a->auth, PROBE_EVERY_MS,
                        print_status, a, &a->probe, err, sizeof err))) {
    log_error("cannot ask %s for status: %s", a->clients_connect, err);
    uv_loop_close(&a->loop);
    return CLI_EXIT_STARTUP;
  }
  uv_timer_init(&a->loop, &a->startup);
  a->startup.data = a;
  uv_timer_start(&a->startup, on_status_timeout, STATUS_TIMEOUT_MS, 0);
  if ((rc = cli_loop_close(&a->loop)))
    return rc;
  return a->status_code;
}

static int add_children(app_t *a, const options_t *o, const char *bin_dir) {
  const cluster_spec_t *s = a->spec;
  char workers_connect[CLUSTER_ADDR_MAX], profiles[PATH_MAX];
  args_t *args = malloc(sizeof *args);
  int rc = -ENOMEM;
  if (!args)
    return rc;
  if ((rc = endpoint_connect_addr(s->workers_addr, workers_connect,
                                  sizeof workers_connect)))
    goto out;
  /* Children share our working directory, but an absolute path reads
   * better in their logs and survives a chdir. */
  if (!realpath(s->profiles_path, profiles))
    snprintf(profiles, sizeof profiles, "%s", s->profiles_path);

  args->n = 0;
  push(args, "%s/infsched-scheduler", bin_dir);
  push(args, "--clients");
  push(args, "%s", s->clients);
  push(args, "--workers");
  push(args, "%s", s->workers_addr);
  push(args, "--http");
  push(args, "%s", s->http);
  push(args, "--profiles");
  push(args, "%s", profiles);
  push_settings(args, s->set);
  if (s->links && *s->links) {
    push(args, "--links");
    push(args, "%s", s->links);
  }
  if (!a->auth.off && !s->set[SET_KEYS]) {
    push(args, "--keys");
    push(args, "%s", a->keys);
  }
  push(args, "--log-level");
  push(args, "%s", o->log_level);
  /* When the launcher dies the scheduler answers its open requests and
   * exits (its SIGTERM); a worker has nothing to finish without it. */
  if ((rc = supervisor_add(a->sup, SCHEDULER_NAME, args->v, SIGTERM)) ||
      (rc = supervisor_stop_last(a->sup, SCHEDULER_NAME)))
    goto out;

  size_t k = 0;
  for (size_t i = 0; i < s->nworkers; i++) {
    const cluster_worker_t *w = &s->workers[i];
    for (uint32_t j = 0; j < w->count; j++, k++) {
      instance_t *in = &a->inst[k];
      cluster_instance_name(w, j, in->name, sizeof in->name);
      args->n = 0;
      push(args, "%s/infsched-worker", bin_dir);
      push(args, "--scheduler");
      push(args, "%s", workers_connect);
      push(args, "--id");
      push(args, "%s", in->name);
      push(args, "--profiles");
      push(args, "%s", profiles);
      push_settings(args, w->set);
      push(args, "--heartbeat-ms");
      push(args, "%u", s->heartbeat_ms);
      if ((rc = push_auth(a, args, in->name)))
        goto out;
      push(args, "--log-level");
      push(args, "%s", o->log_level);
      if ((rc = supervisor_add(a->sup, in->name, args->v, SIGKILL)))
        goto out;
    }
  }
  rc = 0;
out:
  free(args);
  return rc;
}

/* Everything that can be checked before a process is started, so that a
 * bad file or a busy port starts nothing. Returns 0 or prints why not. */
static int preflight(app_t *a, const options_t *o, const char *bin_dir) {
  char err[1024];
  static const char *const progs[] = {"infsched-scheduler", "infsched-worker"};
  for (size_t i = 0; i < 2; i++) {
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", bin_dir, progs[i]);
    if (n < 0 || (size_t)n >= sizeof path) {
      log_error("--bin-dir: path too long");
      return -1;
    }
    if (access(path, X_OK) != 0) {
      log_error("cannot start %s: %s: %s%s", progs[i], path, strerror(errno),
                o->bin_dir ? "" : " (use --bin-dir)");
      return -1;
    }
  }
  char http[CLUSTER_ADDR_MAX + 8] = "";
  if (strcmp(a->spec->http, "off") != 0)
    snprintf(http, sizeof http, "tcp://%s", a->spec->http);
  const char *addrs[3] = {a->spec->clients, a->spec->workers_addr, http};
  for (size_t i = 0; i < 3; i++) {
    if (addrs[i][0] && endpoint_check_bindable(addrs[i], err, sizeof err)) {
      log_error("cannot start the scheduler: %s%s (is another cluster "
                "running?%s)",
                i == 2 ? "HTTP API " : "", err,
                i == 2 ? " choose another with --http ADDR, or --http off"
                       : "");
      return -1;
    }
  }
  return 0;
}

static int load(app_t *a, const options_t *o) {
  char err[1024];
  if (cluster_file_load(o->file, &a->spec, err, sizeof err)) {
    log_error("%s", err);
    return -1;
  }
  if (o->clients)
    snprintf(a->spec->clients, sizeof a->spec->clients, "%s", o->clients);
  if (o->workers)
    snprintf(a->spec->workers_addr, sizeof a->spec->workers_addr, "%s",
             o->workers);
  if (o->http)
    snprintf(a->spec->http, sizeof a->spec->http, "%s", o->http);
  if (strcmp(a->spec->clients, a->spec->workers_addr) == 0) {
    log_error("the scheduler's clients and workers endpoints are the same "
              "(%s)",
              a->spec->clients);
    return -1;
  }
  const char *auth = a->spec->set[SET_AUTH];
  if (cluster_spec_check_profiles(a->spec, err, sizeof err) ||
      cluster_spec_check_ready(a->spec, err, sizeof err) ||
      ((!auth || strcmp(auth, "off") != 0) && curve_check(err, sizeof err))) {
    log_error("%s", err);
    return -1;
  }
  a->ninst = cluster_spec_instances(a->spec);
  a->inst = calloc(a->ninst ? a->ninst : 1, sizeof *a->inst);
  if (!a->inst) {
    log_error("out of memory");
    return -1;
  }
  return 0;
}

/* The longest drain of the file's workers, given or default: a worker
 * stopping is not killed before its drain deadline, at which it answers
 * what it still runs. */
static uint64_t longest_drain_ms(const cluster_spec_t *s) {
  const setting_t *st = settings_get(SET_DRAIN_TIMEOUT_MS);
  uint64_t longest = 0;
  char why[256];
  for (size_t i = 0; i < s->nworkers; i++) {
    const char *text = s->workers[i].set[SET_DRAIN_TIMEOUT_MS];
    setting_value_t v;
    /* Checked as the file loaded. */
    if (settings_parse(st, text ? text : st->def, &v, why, sizeof why) == 0 &&
        v.u > longest)
      longest = v.u;
  }
  return longest;
}

static int run(app_t *a, const options_t *o, const char *bin_dir) {
  int rc;
  if (preflight(a, o, bin_dir))
    return CLI_EXIT_STARTUP;
  if ((rc = uv_loop_init(&a->loop))) {
    log_error("uv_loop_init: %s", uv_strerror(rc));
    return CLI_EXIT_STARTUP;
  }
  a->sup = supervisor_new(&a->loop, longest_drain_ms(a->spec) + o->grace_ms,
                          on_supervisor, a);
  rc = a->sup ? prepare_auth(a) : -ENOMEM;
  if (!rc)
    rc = add_children(a, o, bin_dir);
  if (rc) {
    /* Nothing runs yet; only the supervisor's handles need closing. */
    log_error("cannot prepare the cluster: %s", infs_strerror(rc));
    supervisor_close(&a->sup);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_loop_close(&a->loop);
    return CLI_EXIT_STARTUP;
  }
  cli_signals_start(&a->signals, &a->loop, on_signal, a);
  uv_timer_init(&a->loop, &a->startup);
  a->startup.data = a;

  char err[PATH_MAX + 256];
  if (endpoint_connect_addr(a->spec->clients, a->clients_connect,
                            sizeof a->clients_connect) == 0 &&
      (rc = probe_start(&a->loop, a->clients_connect, &a->auth, PROBE_EVERY_MS,
                        on_status, a, &a->probe, err, sizeof err)))
    log_warn("cannot ask %s for status (%s); \"cluster ready\" will not be "
             "reported",
             a->clients_connect, err);

  a->last_wait_report = uv_now(&a->loop);
  if (supervisor_start(a->sup) == 0) {
    char wc[CLUSTER_ADDR_MAX];
    endpoint_connect_addr(a->spec->workers_addr, wc, sizeof wc);
    log_info("%zu workers, scheduler at %s (workers connect to %s)", a->ninst,
             a->spec->clients, wc);
  } else {
    supervisor_stop(a->sup, CLI_EXIT_STARTUP);
  }

  uv_run(&a->loop, UV_RUN_DEFAULT);
  int code = supervisor_exit_code(a->sup);
  const char *why = supervisor_failure(a->sup);
  if (why)
    log_error("%s", why);
  supervisor_close(&a->sup);
  if ((rc = cli_loop_close(&a->loop)))
    return rc;
  if (code == 0)
    log_info("cluster stopped");
  return code;
}

static void default_bin_dir(char *buf, size_t len) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    snprintf(buf, len, ".");
    return;
  }
  self[n] = '\0';
  snprintf(buf, len, "%s", dirname(self));
}

int main(int argc, char **argv) {
  options_t o;
  app_t a;
  char bin_dir[PATH_MAX];
  log_level_t level = LOG_LEVEL_INFO;
  int code = 1;

  if (argc > 1 && strcmp(argv[1], SUPERVISOR_EXEC_COMMAND) == 0)
    return supervisor_exec(argc - 2, argv + 2);
  memset(&o, 0, sizeof o);
  memset(&a, 0, sizeof a);
  cli_init(PROGRAM);
  if (parse_args(argc, argv, &o))
    return CLI_EXIT_USAGE;
  if (strcmp(o.command, "settings") == 0) {
    settings_markdown(stdout);
    return 0;
  }
  log_level_parse(o.log_level, &level);
  log_init(PROGRAM, level);

  if (o.bin_dir)
    snprintf(bin_dir, sizeof bin_dir, "%s", o.bin_dir);
  else
    default_bin_dir(bin_dir, sizeof bin_dir);

  if (load(&a, &o)) {
    code = CLI_EXIT_USAGE;
    goto out;
  }
  if (strcmp(o.command, "check") == 0) {
    printf("%s: ok: scheduler at %s, %zu workers\n", o.file, a.spec->clients,
           a.ninst);
    code = 0;
    goto out;
  }
  if (strcmp(o.command, "status") == 0) {
    code = status(&a);
    goto out;
  }
  code = run(&a, &o, bin_dir);
out:
  free(a.inst);
  cluster_spec_destroy(&a.spec);
  return code;
}
