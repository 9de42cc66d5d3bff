#include "cli_loop.h"

#include "cli.h"
#include "log.h"

#include <signal.h>

void cli_signals_start(cli_signals_t *s, uv_loop_t *loop, uv_signal_cb cb,
                       void *data) {
  uv_signal_init(loop, &s->sigint);
  uv_signal_init(loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = data;
  uv_signal_start(&s->sigint, cb, SIGINT);
  uv_signal_start(&s->sigterm, cb, SIGTERM);
}

void cli_signals_close(cli_signals_t *s) {
  if (uv_is_closing((uv_handle_t *)&s->sigint))
    return;
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
}

void cli_signals_unref(cli_signals_t *s) {
  uv_unref((uv_handle_t *)&s->sigint);
  uv_unref((uv_handle_t *)&s->sigterm);
}

int cli_loop_close(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop);
  if (rc) {
    log_error("loop closed with open handles: %s", uv_strerror(rc));
    return CLI_EXIT_FAILED;
  }
  return 0;
}
