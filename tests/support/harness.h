/* Helpers for integration tests that start real processes: free ports, paths
 * to built programs, spawning with logs, waiting on exits and log lines.
 *
 * Every spawned process is recorded in a registry of live processes. Call
 * harness_stop_all() from a cmocka teardown so a failed assertion does not
 * leave children behind; as a last resort the registry's process groups are
 * killed at exit and on SIGINT, SIGTERM, SIGHUP and SIGABRT. */
#ifndef INFSCHED_TESTS_HARNESS_H
#define INFSCHED_TESTS_HARNESS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct harness_proc harness_proc_t;

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read
 * back, closed). Returns the port, or -1 on failure. */
int harness_free_port(void);
/* n ports as harness_free_port gives them, all different. Returns 0, or
 * -1 when one could not be had. */
int harness_free_ports(int *ports, size_t n);

/* Path of a built program in $INFSCHED_BIN_DIR (default: the directory of
 * the running test). The string lives until exit. */
const char *harness_bin(const char *name);

/* Path of rel under $INFSCHED_SOURCE_DIR (default: the tree this file was
 * compiled from). The string lives until exit. */
const char *harness_source(const char *rel);

/* Starts argv (argv[0] is searched in PATH when it has no slash) in its own
 * process group, stdin from /dev/null, stdout and stderr appended to
 * log_path. Returns the process, or NULL with errno set. */
harness_proc_t *harness_spawn(const char *log_path, char *const argv[]);

/* Process id of p (also its process group id). */
pid_t harness_pid(const harness_proc_t *p);

/* Waits up to timeout_ms for p to exit and reaps it. Returns 0 and the raw
 * wait status in *status (may be NULL), or -ETIMEDOUT. Once reaped, returns
 * the same status again. */
int harness_wait(harness_proc_t *p, int timeout_ms, int *status);

/* Sends sig to p's process only (not its group), so a supervisor under test
 * gets to stop its own children. No effect once p has been reaped. */
void harness_kill(harness_proc_t *p, int sig);

/* SIGTERM, waits up to 5 s, then SIGKILL; reaps, kills what is left of the
 * process group, frees p and sets *p to NULL. Idempotent. */
void harness_stop(harness_proc_t **p);

/* harness_stop() on every live process, for cmocka teardowns. */
void harness_stop_all(void);

/* Waits up to timeout_ms until the file at log_path contains needle.
 * Returns 0 when it does, -ETIMEDOUT otherwise. */
int harness_wait_log(const char *log_path, const char *needle, int timeout_ms);

/* Waits up to timeout_ms until the file at log_path contains needle at
 * least count times. Returns 0 when it does, -ETIMEDOUT otherwise. */
int harness_wait_log_count(const char *log_path, const char *needle, int count,
                           int timeout_ms);

/* Counts the occurrences of needle in the file at path (0 if unreadable). */
int harness_count_log(const char *path, const char *needle);

/* Polls cond(arg) every few milliseconds until it returns nonzero or
 * timeout_ms have passed. Returns 0 when it did, -ETIMEDOUT otherwise. */
int harness_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms);

/* Whether process pid has ended: it does not exist, or it is a zombie
 * (an orphan that its new parent has not reaped yet). */
int harness_pid_gone(pid_t pid);

/* Whether a listener could bind 127.0.0.1:port now, with SO_REUSEADDR as
 * ZeroMQ and libuv bind. */
int harness_port_free(int port);

/* Whole file as a NUL-terminated string the caller frees, or NULL. */
char *harness_read_file(const char *path);

/* Writes text to path with the given mode (e.g. 0755 for a script).
 * Returns 0 or -errno. */
int harness_write_file(const char *path, const char *text, int mode);

/* Parses the file at path as JSON; the caller frees it with cJSON_Delete.
 * Returns NULL when the file is missing or does not parse. */
cJSON *harness_read_json(const char *path);

/* A new empty directory under /tmp that the caller frees (the string) and
 * may remove with harness_rmtree. Returns NULL on failure. */
char *harness_tmpdir(void);

/* Removes path and everything below it. Returns 0 or -errno. */
int harness_rmtree(const char *path);

/* A zeroed fixture of size bytes whose first member (char *dir) is a new
 * temporary directory; NULL on failure. harness_fixture_end ends it. */
void *harness_fixture_new(size_t size);

/* A cmocka teardown for the tests' fixtures, whose first member is their
 * temporary directory (char *dir): stops every process the test started,
 * removes the directory (kept, and named on stderr, when
 * INFSCHED_KEEP_TEST_DIR is set) and frees both. */
int harness_fixture_end(void **state);

#endif
