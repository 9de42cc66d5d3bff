/* Runs named child processes on a libuv loop and keeps them running: every
 * line they print is prefixed with "[name] ", a process that exits or
 * crashes is restarted with back-off (backoff.h), and a process that exits
 * with status 2 or 3 (usage error, cannot start) stops the whole set.
 *
 * The children stay in the launcher's process group, so a terminal's Ctrl-C
 * or a test harness that kills the group reaches them too. They never
 * outlive the launcher: each is started through the launcher's own
 * program (supervisor_exec), which asks the kernel for a signal when the
 * launcher dies, however it dies. */
#ifndef INFSCHED_CLUSTER_SUPERVISOR_H
#define INFSCHED_CLUSTER_SUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct supervisor supervisor_t;

typedef enum supervisor_event {
  SUPERVISOR_STARTED, /* a child was spawned (again) */
  SUPERVISOR_EXITED,  /* a child exited; it may be restarted */
  SUPERVISOR_STOPPED  /* after supervisor_stop: every child is gone */
} supervisor_event_t;

/* name is the child's, or NULL for SUPERVISOR_STOPPED. */
typedef void (*supervisor_event_cb)(void *arg, supervisor_event_t ev,
                                    const char *name);

/* The first argument with which this program runs supervisor_exec. */
#define SUPERVISOR_EXEC_COMMAND "exec-child"

/* A supervisor on loop (borrowed) that waits grace_ms between SIGTERM and
 * SIGKILL when stopping. Returns NULL when out of memory or when this
 * program's own path cannot be read. */
supervisor_t *supervisor_new(uv_loop_t *loop, uint64_t grace_ms,
                             supervisor_event_cb cb, void *arg);

/* Adds a child; name and argv (argv[0] a path) are copied. death_sig is
 * what the child gets when this process dies. Returns 0 or a negative
 * code. */
/* Marks the child named name to be stopped after all the others have
 * exited (a scheduler, whose workers drain into it); call after adding it.
 * Returns 0, or -ENOENT when there is no such child. */
int supervisor_stop_last(supervisor_t *s, const char *name);
int supervisor_add(supervisor_t *s, const char *name, char *const argv[],
                   int death_sig);

/* Spawns every child. On the first spawn failure, logs it and returns its
 * libuv code; the caller then stops the supervisor. */
int supervisor_start(supervisor_t *s);

/* Stops every child: SIGTERM, then SIGKILL after the grace period, and
 * reports SUPERVISOR_STOPPED once all are gone. exit_code is what
 * supervisor_exit_code returns unless a failure came first. Calling it again
 * while stopping sends SIGKILL at once. */
void supervisor_stop(supervisor_t *s, int exit_code);

/* 0 after a clean stop; 1 after a failure (see supervisor_failure). */
int supervisor_exit_code(const supervisor_t *s);

/* Why the supervisor stopped on its own ("gpu-0 could not start (exit
 * status 3); last line: ..."), or NULL. Valid until supervisor_close. */
const char *supervisor_failure(supervisor_t *s);

/* Closes every handle; memory is released from the close callbacks, so the
 * loop must run afterwards. Sets *s to NULL. */
void supervisor_close(supervisor_t **s);

/* The exec step, in a freshly spawned child, with the arguments after
 * SUPERVISOR_EXEC_COMMAND: PID SIGNAL PROGRAM [ARG...]. Asks for SIGNAL
 * when the parent dies, checks that the parent is still PID, and runs
 * PROGRAM. Returns only when it cannot: the exit status (1 when the
 * parent is already gone). */
int supervisor_exec(int argc, char **argv);

#endif
