/* Generated from the settings table (lib/settings.c): every value of every
 * setting a cluster file may give is put to "infsched-cluster check" and,
 * depending on its verdict, either started for real or given to the daemon
 * as its flag. What check accepts must start (infsched-cluster up reports
 * the cluster ready); what check refuses, the daemon must refuse too. So
 * check refuses exactly what the daemons would. */
#include "settings.h"
#include "policy.h"
#include "harness.h"

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#define EXIT_TIMEOUT_MS 20000
#define READY_TIMEOUT_MS 30000
#define MAX_VALUES 16
#define VALUE_MAX 160

typedef struct values {
  int n;
  char v[MAX_VALUES][VALUE_MAX];
} values_t;

static void add(values_t *vs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add(values_t *vs, const char *fmt, ...) {
  assert_true(vs->n < MAX_VALUES);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(vs->v[vs->n++], VALUE_MAX, fmt, ap);
  va_end(ap);
}

static int free_port(void) {
  int p = harness_free_port();
  assert_true(p > 0);
  return p;
}

/* Text settings have no range to take values from: these are theirs. A
 * text setting a cluster file may give and that is missing here fails the
 * test, so that a new setting comes with its cases. */
static int text_values(const setting_t *s, const char *dir, values_t *good,
                       values_t *bad) {
  switch (s->id) {
  case SET_CLIENTS:
  case SET_WORKERS:
    add(good, "tcp://127.0.0.1:%d", free_port());
    add(good, "tcp://*:%d", free_port());
    add(good, "ipc://%s/%s.sock", dir, s->name);
    add(bad, "localhost");
    add(bad, "tcp://127.0.0.1:99999");
    add(bad, "tcp://127.0.0.1");
    add(bad, "udp://127.0.0.1:5000");
    return 0;
  case SET_HTTP:
    add(good, "off");
    add(good, "127.0.0.1:%d", free_port());
    add(good, "127.0.0.1:0");
    add(bad, "127.0.0.1:99999");
    add(bad, "127.0.0.1:http");
    add(bad, "nohost");
    return 0;
  case SET_POLICY:
    for (const policy_ops_t *const *p = policy_all(); *p; p++)
      add(good, "%s", (*p)->name);
    add(bad, "fastest");
    return 0;
  case SET_SLO:
    add(good, "interactive=300+250:30");
    add(good, "%s", s->def);
    add(bad, "interactive=0:10");
    add(bad, "gold=1:1");
    add(bad, "interactive=abc");
    return 0;
  case SET_LATENCY_WEIGHT:
    add(good, "batch=5");
    add(good, "%s", s->def);
    add(bad, "batch=-1");
    add(bad, "gold=1");
    add(bad, "batch");
    return 0;
  case SET_PROFILE:
    add(good, "gpu-h100");
    add(good, "sram-wse3");
    add(good, "tpu-v6e");
    add(bad, "gpu-h200");
    return 0;
  case SET_BACKEND:
    add(good, "sim");
    add(good, "null");
    add(good, "openai:http://127.0.0.1:1/v1");
    add(good, "plugin:%s", ECHO_PLUGIN);
    add(bad, "simm");
    add(bad, "sim:fast");
    add(bad, "openai:");
    add(bad, "openai:ftp://127.0.0.1/v1");
    add(bad, "plugin:%s/missing.so", dir);
    add(bad, "openai:http://127.0.0.1:1/v1,api_key_env=INFSCHED_TEST_UNSET");
    return 0;
  case SET_AUTH:
    add(good, "on");
    add(good, "off");
    add(bad, "maybe");
    add(bad, "ON");
    return 0;
  case SET_KEYS:
    /* A directory of its own: the cluster makes the local keys there. */
    add(good, "%s/keys", dir);
    return 0;
  case SET_API_KEYS: {
    /* Absolute, and relative to the cluster file (which is in dir). */
    char path[VALUE_MAX];
    snprintf(path, sizeof path, "%s/api-keys.yaml", dir);
    assert_int_equal(harness_write_file(path,
                                        "keys:\n  - {key: "
                                        "sk-0123456789abcdef, tenant: t}\n",
                                        0600),
                     0);
    add(good, "%s", path);
    add(good, "api-keys.yaml");
    snprintf(path, sizeof path, "%s/dup-keys.yaml", dir);
    assert_int_equal(harness_write_file(path,
                                        "keys:\n"
                                        "  - {key: sk-0123456789abcdef, "
                                        "tenant: t}\n"
                                        "  - {key: sk-0123456789abcdef, "
                                        "tenant: u}\n",
                                        0600),
                     0);
    add(bad, "%s", path);
    add(bad, "%s/missing-keys.yaml", dir);
    return 0;
  }
  case SET_ROLE:
    add(good, "both");
    add(good, "prefill");
    add(good, "decode");
    add(bad, "Prefill");
    add(bad, "all");
    return 0;
  case SET_MODEL:
    add(good, "m");
    add(good, "%0*d", INFS_NAME_MAX - 1, 0);
    add(bad, "%0*d", INFS_NAME_MAX, 0);
    return 0;
  default:
    return -1;
  }
}

/* Good values (each end of the range and the default) and bad ones (just
 * outside, not a number) of a setting; text settings from text_values. */
static void values_of(const setting_t *s, const char *dir, values_t *good,
                      values_t *bad) {
  memset(good, 0, sizeof *good);
  memset(bad, 0, sizeof *bad);
  add(bad, "%s", "");
  switch (s->type) {
  case SETTING_UINT:
    add(good, "%.0f", s->min);
    add(good, "%.0f", s->max);
    if (s->def)
      add(good, "%s", s->def);
    if (s->min > 0)
      add(bad, "%.0f", s->min - 1);
    add(bad, "%.0f", s->max + 1);
    add(bad, "-1");
    add(bad, "1.5");
    add(bad, "many");
    break;
  case SETTING_REAL:
    add(good, "%g", s->min);
    add(good, "%g", s->max);
    if (s->def)
      add(good, "%s", s->def);
    if (s->min > -1)
      add(bad, "%g", s->min - 1);
    add(bad, "%g", s->max * 2 + 1);
    add(bad, "nan");
    add(bad, "cheap");
    break;
  case SETTING_TEXT:
    if (text_values(s, dir, good, bad))
      fail_msg("setting '%s' has no cases in test_settings_cluster.c", s->name);
    break;
  }
}

/* A setting and a value for it, where a cluster file gives it. */
typedef struct entry {
  const setting_t *s;
  const char *value;
  unsigned where; /* SETTING_SCHEDULER or SETTING_WORKER */
} entry_t;

typedef struct fixture {
  char *dir;
  char file[600];
  char log[600];
  int runs;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  snprintf(f->file, sizeof f->file, "%s/cluster.yaml", f->dir);
  *state = f;
  return 0;
}

/* A YAML single-quoted scalar: quotes are doubled. */
static void quote(char *out, size_t len, const char *v) {
  size_t w = 0;
  out[w++] = '\'';
  for (; *v && w + 3 < len; v++) {
    if (*v == '\'')
      out[w++] = '\'';
    out[w++] = *v;
  }
  out[w++] = '\'';
  out[w] = '\0';
}

/* Writes a cluster of one scheduler and one worker on free ports, with
 * the entries' settings on top. */
static void write_cluster(fixture_t *f, const entry_t *e, size_t n) {
  char text[8192], q[VALUE_MAX + 8];
  int w = 0, given[SET_COUNT] = {0};
  for (size_t i = 0; i < n; i++)
    if (e[i].where == SETTING_SCHEDULER)
      given[e[i].s->id] = 1;
  w += snprintf(text + w, sizeof text - (size_t)w, "profiles: %s\nscheduler:\n",
                harness_source("configs/profiles.yaml"));
  if (!given[SET_CLIENTS])
    w += snprintf(text + w, sizeof text - (size_t)w,
                  "  clients: tcp://127.0.0.1:%d\n", free_port());
  if (!given[SET_WORKERS])
    w += snprintf(text + w, sizeof text - (size_t)w,
                  "  workers: tcp://127.0.0.1:%d\n", free_port());
  if (!given[SET_HTTP])
    w += snprintf(text + w, sizeof text - (size_t)w, "  http: 'off'\n");
  for (size_t i = 0; i < n; i++)
    if (e[i].where == SETTING_SCHEDULER) {
      quote(q, sizeof q, e[i].value);
      w += snprintf(text + w, sizeof text - (size_t)w, "  %s: %s\n",
                    e[i].s->name, q);
    }
  w += snprintf(text + w, sizeof text - (size_t)w, "workers:\n  - name: w\n");
  int has_profile = 0;
  for (size_t i = 0; i < n; i++)
    if (e[i].where == SETTING_WORKER) {
      quote(q, sizeof q, e[i].value);
      w += snprintf(text + w, sizeof text - (size_t)w, "    %s: %s\n",
                    e[i].s->name, q);
      has_profile |= e[i].s->id == SET_PROFILE;
    }
  if (!has_profile)
    w += snprintf(text + w, sizeof text - (size_t)w, "    profile: gpu-h100\n");
  assert_true(w > 0 && (size_t)w < sizeof text);
  assert_int_equal(harness_write_file(f->file, text, 0644), 0);
}

/* Runs argv to its end; returns its exit status, or -1 when it was still
 * running after EXIT_TIMEOUT_MS (then it is stopped). */
static int run(fixture_t *f, char *const argv[]) {
  snprintf(f->log, sizeof f->log, "%s/run-%d.log", f->dir, f->runs++);
  harness_proc_t *p = harness_spawn(f->log, argv);
  assert_non_null(p);
  int status = 0;
  int rc = harness_wait(p, EXIT_TIMEOUT_MS, &status);
  harness_stop(&p);
  if (rc)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int check(fixture_t *f) {
  char *argv[] = {(char *)harness_bin("infsched-cluster"), "check", f->file,
                  NULL};
  return run(f, argv);
}

static char *log_text(const fixture_t *f) {
  char *t = harness_read_file(f->log);
  return t ? t : strdup("");
}

/* Gives the daemon that reads e's setting the value as its flag, on free
 * ports; returns its exit status, or -1 when it did not exit. */
static int daemon_with(fixture_t *f, const entry_t *e) {
  char flag[64], a[64], b[64];
  snprintf(flag, sizeof flag, "--%s", e->s->flag);
  if (e->where == SETTING_SCHEDULER) {
    snprintf(a, sizeof a, "tcp://127.0.0.1:%d", free_port());
    snprintf(b, sizeof b, "tcp://127.0.0.1:%d", free_port());
    char *argv[] = {(char *)harness_bin("infsched-scheduler"),
                    "--clients",
                    a,
                    "--workers",
                    b,
                    "--http",
                    "off",
                    flag,
                    (char *)e->value,
                    NULL};
    return run(f, argv);
  }
  snprintf(a, sizeof a, "tcp://127.0.0.1:%d", free_port());
  char *argv[] = {(char *)harness_bin("infsched-worker"),
                  "--scheduler",
                  a,
                  "--profiles",
                  (char *)harness_source("configs/profiles.yaml"),
                  flag,
                  (char *)e->value,
                  NULL};
  return run(f, argv);
}

/* Every refused value: check says no, and so does the daemon. */
static void test_refused_by_check_and_daemon(void **state) {
  fixture_t *f = *state;
  int cases = 0;
  unsetenv("INFSCHED_TEST_UNSET");
  for (setting_id_t id = 0; id < SET_COUNT; id++) {
    const setting_t *s = settings_get(id);
    values_t good, bad;
    if (!s->cluster)
      continue;
    values_of(s, f->dir, &good, &bad);
    for (unsigned where = SETTING_SCHEDULER; where <= SETTING_WORKER;
         where <<= 1) {
      if (!(s->cluster & where))
        continue;
      for (int i = 0; i < bad.n; i++) {
        entry_t e = {s, bad.v[i], where};
        write_cluster(f, &e, 1);
        int rc = check(f);
        if (rc != 2) { /* a bad cluster file is a usage error */
          char *t = log_text(f);
          fail_msg("check accepted %s '%s' (status %d): %s", s->name, bad.v[i],
                   rc, t);
        }
        rc = daemon_with(f, &e);
        if (rc <= 0) {
          char *t = log_text(f);
          fail_msg("check refuses %s '%s', but the %s %s (status %d): %s",
                   s->name, bad.v[i],
                   where == SETTING_SCHEDULER ? "scheduler" : "worker",
                   rc < 0 ? "keeps running" : "exits 0", rc, t);
        }
        cases++;
      }
    }
  }
  print_message("%d refused values\n", cases);
  assert_true(cases > 50);
}

/* Every accepted value starts: the k-th good value of every setting goes
 * into cluster file k, which check must accept and "up" must bring to
 * "cluster ready" with the scheduler and its worker. */
static void test_accepted_by_check_start(void **state) {
  fixture_t *f = *state;
  static values_t good[SET_COUNT], bad;
  int rounds = 0, values = 0;
  for (setting_id_t id = 0; id < SET_COUNT; id++) {
    if (!settings_get(id)->cluster)
      continue;
    values_of(settings_get(id), f->dir, &good[id], &bad);
    if (good[id].n > rounds)
      rounds = good[id].n;
  }
  for (int k = 0; k < rounds; k++) {
    entry_t e[2 * SET_COUNT];
    size_t n = 0;
    for (setting_id_t id = 0; id < SET_COUNT; id++) {
      const setting_t *s = settings_get(id);
      for (unsigned where = SETTING_SCHEDULER; where <= SETTING_WORKER;
           where <<= 1)
        if ((s->cluster & where) && k < good[id].n)
          e[n++] = (entry_t){s, good[id].v[k], where};
    }
    values += (int)n;
    write_cluster(f, e, n);
    int rc = check(f);
    if (rc != 0) {
      char *t = log_text(f);
      fail_msg("round %d: check refused: %s", k, t);
    }
    snprintf(f->log, sizeof f->log, "%s/up-%d.log", f->dir, k);
    char *argv[] = {(char *)harness_bin("infsched-cluster"), "up", f->file,
                    NULL};
    harness_proc_t *p = harness_spawn(f->log, argv);
    assert_non_null(p);
    if (harness_wait_log(f->log, "cluster ready: 1/1 workers registered",
                         READY_TIMEOUT_MS) != 0) {
      char *t = log_text(f), *file = harness_read_file(f->file);
      fail_msg("round %d: the cluster did not come up.\n%s\n%s", k,
               file ? file : "", t);
    }
    harness_kill(p, SIGTERM);
    int status = 0;
    assert_int_equal(harness_wait(p, EXIT_TIMEOUT_MS, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    harness_stop(&p);
  }
  print_message("%d accepted values in %d clusters\n", values, rounds);
  assert_true(rounds >= 3);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refused_by_check_and_daemon, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_accepted_by_check_start, setup,
                                      harness_fixture_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
