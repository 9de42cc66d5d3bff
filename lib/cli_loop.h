/* The libuv half of lib/cli.h, for the programs that run a loop (kept out
 * of infsched_base, which links no libuv): SIGINT and SIGTERM handled
 * alike, and closing the loop by the exit rule. */
#ifndef INFSCHED_CLI_LOOP_H
#define INFSCHED_CLI_LOOP_H

#include <uv.h>

typedef struct cli_signals {
  uv_signal_t sigint;
  uv_signal_t sigterm;
} cli_signals_t;

/* Starts calling cb on SIGINT and on SIGTERM, with data in the handle's
 * data. */
void cli_signals_start(cli_signals_t *s, uv_loop_t *loop, uv_signal_cb cb,
                       void *data);
/* Stops listening: closes both handles, once however often it is called. */
void cli_signals_close(cli_signals_t *s);
/* Keeps listening, but no longer keeps the loop alive. */
void cli_signals_unref(cli_signals_t *s);

/* Lets the handles already closed finish, then closes the loop. Returns 0,
 * or CLI_EXIT_FAILED after logging that a handle was left open. */
int cli_loop_close(uv_loop_t *loop);

#endif
