/* Asks a scheduler for its Status at a fixed interval over a ZeroMQ DEALER
 * socket on a libuv loop, and hands each reply to a callback. The launcher
 * uses it to tell when every worker has registered. */
#ifndef INFSCHED_CLUSTER_PROBE_H
#define INFSCHED_CLUSTER_PROBE_H

#include "infsched.pb-c.h"
#include "infsched/auth.h"

#include <stdint.h>
#include <uv.h>

typedef struct probe probe_t;

/* status is borrowed for the duration of the call. */
typedef void (*probe_cb)(void *arg, const Infsched__Status *status);

/* Connects to the scheduler's client endpoint addr, as a client with the
 * keys of auth (lib/curve.h), and sends a StatusQuery every every_ms.
 * Queries are dropped, not queued, while the scheduler is unreachable, so
 * a late scheduler does not get a burst. Returns 0, or a negative code
 * with why in err. */
int probe_start(uv_loop_t *loop, const char *addr, const infs_auth_t *auth,
                uint64_t every_ms, probe_cb cb, void *arg, probe_t **out,
                char *err, size_t errlen);

/* Closes the socket and the handles; memory is released from the close
 * callbacks. Sets *p to NULL. */
void probe_close(probe_t **p);

#endif
