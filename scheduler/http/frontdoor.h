/* The OpenAI-compatible HTTP front door: another client of the core.
 * Each HTTP request is submitted to the core under a peer of its own, in
 * the core's HTTP namespace (CORE_DOOR_HTTP), which no ZeroMQ routing id
 * can reach whatever its bytes; the shell hands the core's actions for
 * such peers to frontdoor_on_action instead of the client socket.
 *
 * Routes: POST /v1/completions, POST /v1/chat/completions (streamed as
 * server-sent events with "stream": true), GET /v1/models, GET /healthz,
 * GET /metrics. With API keys, a request's key names its tenant and the
 * class it gets when it names none. */
#ifndef INFSCHED_HTTP_FRONTDOOR_H
#define INFSCHED_HTTP_FRONTDOOR_H

#include "apikeys.h"
#include "core.h"
#include "metrics.h"

#include <stdbool.h>
#include <uv.h>

#define FRONTDOOR_DEFAULT_ADDR "127.0.0.1:8080"
#define FRONTDOOR_DEFAULT_MAX_BODY (8u << 20)
/* Tokens per prompt block hash, as the profiles' block size. */
#define FRONTDOOR_BLOCK_TOKENS 64

typedef struct frontdoor frontdoor_t;

/* How the front door reaches the core: the shell runs the event, flushes
 * the actions and re-arms its timer. Both may call frontdoor_on_action
 * before they return. */
typedef struct frontdoor_hooks {
  void *ctx;
  void (*submit)(void *ctx, const core_peer_t *peer, const core_request_t *req);
  void (*cancel)(void *ctx, const core_peer_t *peer, uint64_t request_id);
} frontdoor_hooks_t;

typedef struct frontdoor_config {
  const char *addr; /* HOST:PORT, or NULL for no HTTP listener */
  size_t max_body;  /* request body limit in bytes (413 beyond) */
  /* The largest message to a worker: a prompt that would not fit in a
   * dispatch is refused with 413 too. 0: no limit. */
  size_t max_msg_bytes;
  size_t max_conns; /* HTTP connections at once; 0: http_server's default */
  /* API keys (borrowed for the front door's life), or NULL: the API is
   * open. With keys, every route but /healthz and /metrics answers 401
   * without one, and requests are counted by tenant. */
  const apikeys_t *keys;
} frontdoor_config_t;

/* Starts listening. core and metrics are borrowed for the front door's
 * life. Returns 0, or a negative code with a reason in err. */
int frontdoor_start(uv_loop_t *loop, const frontdoor_config_t *cfg,
                    const core_t *core, metrics_t *metrics,
                    const frontdoor_hooks_t *hooks, frontdoor_t **out,
                    char *err, size_t errlen);
/* The bound address as HOST:PORT. */
const char *frontdoor_address(const frontdoor_t *f);
/* Whether peer is one of the front door's. */
bool frontdoor_owns_peer(const core_peer_t *peer);
/* Delivers an ACCEPTED, CHUNK, DONE or ERROR action for one of its peers. */
void frontdoor_on_action(frontdoor_t *f, const core_action_t *a);
/* Stops accepting; answers already given are written for up to a second.
 * Call after the core has answered every open request. */
void frontdoor_stop(frontdoor_t *f);
/* Frees it once the loop has finished. */
void frontdoor_destroy(frontdoor_t **f);

#endif
