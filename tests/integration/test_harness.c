/* Self-test of the integration harness: spawning, exit status, logs, stop
 * escalation and the small file helpers. */
#include "harness.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fixture {
  char *dir;
  char log[512];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  snprintf(f->log, sizeof f->log, "%s/proc.log", f->dir);
  *state = f;
  return 0;
}

/* A process may linger as a zombie until its new parent reaps it, so wait
 * for it to be gone rather than expecting it at once. */
static int gone_within(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 10) {
    if (kill(pid, 0) == -1 && errno == ESRCH)
      return 1;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return 0;
}

static void test_exit_status_and_log(void **state) {
  fixture_t *f = *state;
  char *argv[] = {"/bin/sh", "-c", "echo hi; echo err >&2; exit 3", NULL};
  harness_proc_t *p = harness_spawn(f->log, argv);
  assert_non_null(p);
  int status = 0;
  assert_int_equal(harness_wait(p, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 3);
  /* A second wait returns the status already reaped. */
  status = 0;
  assert_int_equal(harness_wait(p, 0, &status), 0);
  assert_int_equal(WEXITSTATUS(status), 3);
  assert_int_equal(harness_wait_log(f->log, "hi\n", 1000), 0);
  assert_int_equal(harness_wait_log(f->log, "err\n", 1000), 0);
  assert_int_equal(harness_count_log(f->log, "hi"), 1);
  harness_stop(&p);
  assert_null(p);
  harness_stop(&p);
}

static void test_log_is_appended(void **state) {
  fixture_t *f = *state;
  char *argv[] = {"/bin/sh", "-c", "echo run", NULL};
  for (int i = 0; i < 2; i++) {
    harness_proc_t *p = harness_spawn(f->log, argv);
    assert_non_null(p);
    assert_int_equal(harness_wait(p, 10000, NULL), 0);
    harness_stop(&p);
  }
  assert_int_equal(harness_count_log(f->log, "run\n"), 2);
}

static void test_wait_times_out_and_stop_terminates(void **state) {
  fixture_t *f = *state;
  char *argv[] = {"/bin/sh", "-c", "echo up; exec sleep 60", NULL};
  harness_proc_t *p = harness_spawn(f->log, argv);
  assert_non_null(p);
  pid_t pid = harness_pid(p);
  assert_int_equal(harness_wait_log(f->log, "up", 10000), 0);
  assert_int_equal(harness_wait(p, 50, NULL), -ETIMEDOUT);
  assert_int_equal(harness_wait_log(f->log, "never printed", 50), -ETIMEDOUT);
  harness_stop(&p);
  assert_null(p);
  assert_true(gone_within(pid, 0));
}

static void test_stop_escalates_to_group_kill(void **state) {
  fixture_t *f = *state;
  char pidfile[600], script[1400];
  snprintf(pidfile, sizeof pidfile, "%s/child.pid", f->dir);
  /* Ignores SIGTERM and leaves a grandchild in its group: stop must fall
   * back to SIGKILL and take the grandchild with it. */
  snprintf(script, sizeof script,
           "trap '' TERM; sleep 60 & echo $! > %s; echo ready; wait", pidfile);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  harness_proc_t *p = harness_spawn(f->log, argv);
  assert_non_null(p);
  pid_t pid = harness_pid(p);
  assert_int_equal(harness_wait_log(f->log, "ready", 10000), 0);
  char *text = harness_read_file(pidfile);
  assert_non_null(text);
  pid_t grandchild = (pid_t)atoi(text);
  free(text);
  assert_true(grandchild > 0);
  harness_stop(&p);
  assert_true(gone_within(grandchild, 5000));
  /* The shell itself was killed and reaped, not left a zombie. */
  assert_true(gone_within(pid, 0));
}

static void test_spawn_missing_program(void **state) {
  fixture_t *f = *state;
  char *argv[] = {"/nonexistent/program", NULL};
  errno = 0;
  assert_null(harness_spawn(f->log, argv));
  assert_int_equal(errno, ENOENT);
}

static void test_files_ports_paths(void **state) {
  fixture_t *f = *state;
  char path[600];
  snprintf(path, sizeof path, "%s/x.json", f->dir);
  assert_int_equal(harness_write_file(path, "{\"a\": [1, 2]}", 0644), 0);
  cJSON *json = harness_read_json(path);
  assert_non_null(json);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(json, "a")), 2);
  cJSON_Delete(json);
  assert_null(harness_read_json("/nonexistent/x.json"));
  assert_null(harness_read_file("/nonexistent/x.json"));

  int port = harness_free_port();
  assert_true(port > 0 && port < 65536);
  int ports[8];
  assert_int_equal(harness_free_ports(ports, 8), 0);
  for (int i = 0; i < 8; i++) {
    assert_true(ports[i] > 0 && ports[i] < 65536);
    for (int j = 0; j < i; j++)
      assert_int_not_equal(ports[i], ports[j]);
  }

  assert_non_null(strstr(harness_bin("infsched-cluster"), "/infsched-cluster"));
  assert_int_equal(access(harness_source("CMakeLists.txt"), R_OK), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exit_status_and_log, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_log_is_appended, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_wait_times_out_and_stop_terminates,
                                      setup, harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_stop_escalates_to_group_kill, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_spawn_missing_program, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_files_ports_paths, setup,
                                      harness_fixture_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
