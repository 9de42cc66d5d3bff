/* The worker's I/O shell: a DEALER connection to the scheduler that
 * registers, heartbeats, and runs dispatched requests on a backend. */
#ifndef INFSCHED_WORKER_H
#define INFSCHED_WORKER_H

#include "infsched/auth.h"
#include "infsched/backend.h"

#include <stdbool.h>

typedef struct worker_config {
  const char *scheduler_addr;
  const char *worker_id;
  const char *model;
  const char *backend_name;          /* for Register */
  const infs_backend_ops_t *backend;
  const char *backend_args;
  const infs_profile_t *profile;
  uint32_t capacity;                 /* requests accepted at once */
  infs_role_t role;
  uint32_t heartbeat_ms;             /* until the scheduler says otherwise */
  double kwh_usd;
  int64_t max_msg_bytes;
  uint32_t drain_timeout_ms; /* longest drain; then open requests fail */
  infs_auth_t auth; /* CURVE keys, default the local ones (lib/curve.h) */
} worker_config_t;

typedef struct worker worker_t;

/* Connects and starts the backend. Returns 0, or a negative code with a
 * reason in err. */
int worker_start(uv_loop_t *loop, const worker_config_t *cfg, worker_t **out,
                 char *err, size_t errlen);
/* Stops the backend and closes handles; the loop then runs out. */
void worker_stop(worker_t *w);
/* Drains: tells the scheduler, takes no new requests, and stops once
 * those it runs have finished or drain_timeout_ms have passed (then each
 * one still open is answered with an error first); called again, stops at
 * once. Returns whether it has stopped. */
bool worker_drain(worker_t *w);
/* Whether it stopped because the scheduler refused its handshake (its
 * key, or CURVE on one side only); the loop was stopped (uv_stop). */
bool worker_refused(const worker_t *w);
/* Frees the worker after its loop has finished. */
void worker_destroy(worker_t **w);

#endif
