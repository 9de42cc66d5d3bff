/* The scheduler's I/O shell: two ZeroMQ ROUTER sockets on one libuv loop,
 * turning messages into core events and core actions into messages. */
#ifndef INFSCHED_SCHEDULER_SHELL_H
#define INFSCHED_SCHEDULER_SHELL_H

#include "infsched/auth.h"
#include "core.h"
#include "frontdoor.h"

#include <uv.h>

typedef struct shell_config {
  const char *clients_addr;
  const char *workers_addr;
  int64_t max_msg_bytes;
  /* CURVE on both ZeroMQ ports unless auth.off: the key pair auth.key
   * (default DIR/scheduler.key_secret, with the local keys made in DIR
   * when missing), admitting on each port the public keys of
   * DIR/allowed/workers/ or DIR/allowed/clients/. */
  infs_auth_t auth;
  core_config_t core;
  frontdoor_config_t http; /* http.addr NULL: no HTTP listener */
} shell_config_t;

typedef struct shell shell_t;

/* Binds both sockets and joins them to loop. Returns 0, or a negative code
 * with a reason in err (e.g. the address is in use). */
int shell_start(uv_loop_t *loop, const shell_config_t *cfg, shell_t **out,
                char *err, size_t errlen);
/* Answers every open request, stops watching, closes sockets; the loop then
 * runs out of handles. */
void shell_stop(shell_t *s);
/* Frees the shell after its loop has finished. */
void shell_destroy(shell_t **s);
/* How many public keys the shell admits on the worker port (workers) or
 * the client port; 0 with authentication off. */
size_t shell_keys_admitted(const shell_t *s, bool workers);
/* The HTTP listener's bound address, or NULL without one. */
const char *shell_http_address(const shell_t *s);

#endif
