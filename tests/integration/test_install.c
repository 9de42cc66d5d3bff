/* cmake --install into a temporary prefix: the programs report the project
 * version; a backend plugin (tests/plugins/echo_backend.c) builds against
 * the installed headers with nothing but pkg-config's flags, and the
 * installed worker, finding the installed profiles by itself, loads it and
 * serves a request through the installed scheduler. */
#include "infsched/version.h"
#include "harness.h"
#include "test_http_common.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define RUN_TIMEOUT_MS 120000

typedef struct fixture {
  char *dir;
  char prefix[512];
  int runs;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  snprintf(f->prefix, sizeof f->prefix, "%s/prefix", f->dir);
  *state = f;
  return 0;
}

/* Runs argv to its end with its output in *log (the caller frees it);
 * returns the exit status. */
static int run(fixture_t *f, char *const argv[], char **log) {
  char path[600];
  snprintf(path, sizeof path, "%s/run-%d.log", f->dir, f->runs++);
  harness_proc_t *p = harness_spawn(path, argv);
  assert_non_null(p);
  int status = 0;
  assert_int_equal(harness_wait(p, RUN_TIMEOUT_MS, &status), 0);
  harness_stop(&p);
  *log = harness_read_file(path);
  assert_non_null(*log);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void expect_ok(fixture_t *f, char *const argv[]) {
  char *log;
  if (run(f, argv, &log) != 0)
    fail_msg("%s failed:\n%s", argv[0], log);
  free(log);
}

static void expect_file(const fixture_t *f, const char *rel) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", f->prefix, rel);
  if (access(path, R_OK) != 0)
    fail_msg("not installed: %s", rel);
}

static void test_install_and_plugin(void **state) {
  fixture_t *f = *state;
  char *log;
  char *install[] = {CMAKE_COMMAND, "--install", BUILD_DIR,
                     "--prefix",    f->prefix,   NULL};
  expect_ok(f, install);

  expect_file(f, "include/infsched/backend.h");
  expect_file(f, "include/infsched/version.h");
  expect_file(f, "share/pkgconfig/infsched-backend.pc");
  expect_file(f, "share/infsched/profiles.yaml");
  expect_file(f, "share/infsched/local.yaml");
  expect_file(f, "share/doc/infsched/LICENSE");

  static const char *const programs[] = {
      "infsched-scheduler", "infsched-worker",  "infsched-cluster",
      "infsched-sim",       "infsched-loadgen", "infsched-keygen"};
  for (size_t i = 0; i < sizeof programs / sizeof *programs; i++) {
    char path[600], want[128];
    snprintf(path, sizeof path, "%s/bin/%s", f->prefix, programs[i]);
    snprintf(want, sizeof want, "%s %s\n", programs[i], INFSCHED_VERSION);
    char *argv[] = {path, "--version", NULL};
    assert_int_equal(run(f, argv, &log), 0);
    assert_string_equal(log, want);
    free(log);
  }

  /* The plugin sees the installed tree only: pkg-config's flags and no
   * path into the sources or the build. */
  char pc_path[600], plugin[600], cmd[2048];
  snprintf(pc_path, sizeof pc_path, "PKG_CONFIG_PATH=%s/share/pkgconfig",
           f->prefix);
  char *version[] = {
      "env", pc_path, "pkg-config", "--modversion", "infsched-backend", NULL};
  assert_int_equal(run(f, version, &log), 0);
  assert_int_equal(
      strncmp(log, INFSCHED_VERSION "\n", strlen(INFSCHED_VERSION) + 1), 0);
  free(log);
  snprintf(plugin, sizeof plugin, "%s/libecho.so", f->dir);
  snprintf(cmd, sizeof cmd,
           "cc -Wall -Werror -shared -fPIC -o '%s' '%s' "
           "$(pkg-config --cflags --libs infsched-backend)",
           plugin, harness_source("tests/plugins/echo_backend.c"));
  char *build[] = {"env", pc_path, "sh", "-c", cmd, NULL};
  expect_ok(f, build);

  /* The installed daemons; the worker is given no --profiles. */
  char bin[600];
  snprintf(bin, sizeof bin, "%s/bin", f->prefix);
  setenv("INFSCHED_BIN_DIR", bin, 1);
  hc_sched_t s;
  hc_sched_init(&s, f->dir, "scheduler");
  hc_sched_start(&s, NULL);
  char spec[700], wlog[600];
  snprintf(spec, sizeof spec, "plugin:%s:delay_ms=1", plugin);
  snprintf(wlog, sizeof wlog, "%s/echo-0.log", f->dir);
  char *worker[] = {(char *)harness_bin("infsched-worker"),
                    "--scheduler",
                    s.workers,
                    "--id",
                    "echo-0",
                    "--model",
                    "echo",
                    "--backend",
                    spec,
                    NULL};
  assert_non_null(harness_spawn(wlog, worker));
  hc_wait_registered(&s, 1);

  char url[160];
  snprintf(url, sizeof url, "%s/v1/completions", s.base);
  hc_response_t r;
  hc_post(f->dir, url,
          "{\"model\":\"echo\",\"prompt\":\"from the installed tree\","
          "\"max_tokens\":3}",
          NULL, &r);
  assert_int_equal(r.status, 200);
  cJSON *j = hc_json(r.body);
  assert_non_null(j);
  assert_string_equal(hc_at(j, "choices.0.text")->valuestring,
                      " from the installed");
  cJSON_Delete(j);
  hc_response_free(&r);
  char *wtext = harness_read_file(wlog);
  assert_non_null(wtext);
  assert_non_null(strstr(wtext, "share/infsched/profiles.yaml") ? wtext : NULL);
  free(wtext);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_install_and_plugin, setup,
                                      harness_fixture_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
