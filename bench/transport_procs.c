#include "transport_procs.h"

#include "zclient.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 15000
#define READY_POLL_MS 50

static int program_path(const tprocs_config_t *cfg, const char *name, char *out,
                        size_t len) {
  if (cfg->bin_dir)
    snprintf(out, len, "%s/%s", cfg->bin_dir, name);
  else
    snprintf(out, len, "%s", harness_bin(name));
  if (access(out, X_OK) != 0) {
    fprintf(stderr,
            "bench_transport: %s: %s (build it, or point --bin-dir at it)\n",
            out, strerror(errno));
    return -1;
  }
  return 0;
}

static void log_path(const tprocs_config_t *cfg, const char *name, char *out,
                     size_t len) {
  snprintf(out, len, "%s/%s.log", cfg->log_dir, name);
}

/* Starts argv with its output in name's log. */
static harness_proc_t *spawn(const tprocs_config_t *cfg, const char *name,
                             char *const argv[]) {
  char log[PATH_MAX];
  log_path(cfg, name, log, sizeof log);
  harness_proc_t *p = harness_spawn(log, argv);
  if (!p)
    fprintf(stderr, "bench_transport: cannot start %s: %s\n", argv[0],
            strerror(errno));
  return p;
}

/* Waits for needle in name's log; reports an early exit or a timeout. */
static int wait_ready(const tprocs_config_t *cfg, harness_proc_t *p,
                      const char *name, const char *needle) {
  char log[PATH_MAX];
  log_path(cfg, name, log, sizeof log);
  for (int waited = 0; waited < READY_TIMEOUT_MS; waited += READY_POLL_MS) {
    if (harness_wait_log(log, needle, READY_POLL_MS) == 0)
      return 0;
    int status;
    if (harness_wait(p, 0, &status) == 0) {
      fprintf(stderr, "bench_transport: %s exited (status %d); see %s\n", name,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1, log);
      return -1;
    }
  }
  fprintf(stderr, "bench_transport: %s not ready after %d ms; see %s\n", name,
          READY_TIMEOUT_MS, log);
  return -1;
}

static int pick_addrs(tprocs_t *p) {
  int a = harness_free_port(), b = harness_free_port();
  if (a < 0 || b < 0 || a == b) {
    fprintf(stderr, "bench_transport: no free loopback port\n");
    return -1;
  }
  snprintf(p->client_addr, sizeof p->client_addr, "tcp://127.0.0.1:%d", a);
  snprintf(p->worker_addr, sizeof p->worker_addr, "tcp://127.0.0.1:%d", b);
  return 0;
}

void tprocs_stop(tprocs_t *p) {
  harness_stop(&p->hub);
  for (uint32_t i = 0; i < p->n_workers; i++)
    harness_stop(&p->workers[i]);
  p->n_workers = 0;
}

int tprocs_start_baseline(const tprocs_config_t *cfg, tprocs_t *p) {
  char name[32];
  if (pick_addrs(p))
    return -1;
  char *broker[] = {(char *)cfg->self, "--role",       "broker",
                    p->client_addr,    p->worker_addr, NULL};
  p->hub = spawn(cfg, "broker", broker);
  if (!p->hub || wait_ready(cfg, p->hub, "broker", "broker ready"))
    return -1;
  for (uint32_t i = 0; i < cfg->workers; i++) {
    char *echo[] = {(char *)cfg->self, "--role", "echo", p->worker_addr, NULL};
    snprintf(name, sizeof name, "echo-%u", i);
    p->workers[i] = spawn(cfg, name, echo);
    if (!p->workers[i])
      return -1;
    p->n_workers = i + 1;
  }
  for (uint32_t i = 0; i < cfg->workers; i++) {
    snprintf(name, sizeof name, "echo-%u", i);
    if (wait_ready(cfg, p->workers[i], name, "echo ready"))
      return -1;
  }
  return 0;
}

static bool has_workers(const Infsched__Status *s, void *arg) {
  return s->n_workers >= *(const uint32_t *)arg;
}

int tprocs_start_scheduler(const tprocs_config_t *cfg, const char *tag,
                           tprocs_t *p) {
  char sched[PATH_MAX], worker[PATH_MAX], name[48], id[32];
  if (program_path(cfg, "infsched-scheduler", sched, sizeof sched) ||
      program_path(cfg, "infsched-worker", worker, sizeof worker) ||
      pick_addrs(p))
    return -1;
  /* No HTTP listener: its fixed default port would collide, and the
   * transport path does not use it. No CURVE either: the baseline has
   * none, and the comparison is of the paths, not of the ciphers. */
  zclient_auth.off = 1;
  char *argv[] = {sched,
                  "--clients",
                  p->client_addr,
                  "--workers",
                  p->worker_addr,
                  "--http",
                  "off",
                  "--auth",
                  "off",
                  cfg->policy ? "--policy" : NULL,
                  (char *)cfg->policy,
                  NULL};
  snprintf(name, sizeof name, "%s-scheduler", tag);
  p->hub = spawn(cfg, name, argv);
  if (!p->hub || wait_ready(cfg, p->hub, name, "listening"))
    return -1;
  fprintf(stderr, "bench_transport: %s pid %d\n", name,
          (int)harness_pid(p->hub));
  for (uint32_t i = 0; i < cfg->workers; i++) {
    snprintf(id, sizeof id, "bench-%u", i);
    char *wargv[] = {worker,       "--scheduler", p->worker_addr,
                     "--backend",  "null",        "--profile",
                     "gpu-h100",   "--profiles",  (char *)cfg->profiles,
                     "--capacity", "100000",      "--id",
                     id,           "--auth",      "off",
                     NULL};
    snprintf(name, sizeof name, "%s-worker-%u", tag, i);
    p->workers[i] = spawn(cfg, name, wargv);
    if (!p->workers[i])
      return -1;
    p->n_workers = i + 1;
  }
  uint32_t want = cfg->workers;
  if (!zclient_wait_status(p->client_addr, has_workers, &want,
                           READY_TIMEOUT_MS)) {
    fprintf(stderr,
            "bench_transport: %u workers did not register within %d ms; "
            "see the logs in %s\n",
            want, READY_TIMEOUT_MS, cfg->log_dir);
    return -1;
  }
  return 0;
}

/* CPU time of pid, user and system, every thread, in microseconds; -1
 * when it cannot be read. Clock ticks are 10 ms: phases run seconds. */
static double cpu_us(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields after the command name, which may hold spaces: state is the
   * 3rd field, utime and stime the 14th and 15th. */
  const char *s = strrchr(buf, ')');
  unsigned long long utime, stime;
  if (!s ||
      sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

double tprocs_hub_cpu_us(const tprocs_t *p) {
  return cpu_us(harness_pid(p->hub));
}

double tprocs_workers_cpu_us(const tprocs_t *p) {
  double sum = 0;
  for (uint32_t i = 0; i < p->n_workers; i++) {
    double us = cpu_us(harness_pid(p->workers[i]));
    if (us < 0)
      return -1;
    sum += us;
  }
  return sum;
}

double tprocs_self_cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

long tprocs_hub_rss_kib(const tprocs_t *p) {
  char path[64], line[256];
  long kib = -1;
  snprintf(path, sizeof path, "/proc/%d/status", (int)harness_pid(p->hub));
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}
