/* The worker's backend interface: how an inference engine plugs into an
 * infsched worker. The worker owns the connection to the scheduler
 * (registration, heartbeats, cost accounting, cancellation on its behalf);
 * a backend only runs requests and reports their progress.
 *
 * Built in: sim (the timing model), null, openai (any OpenAI-compatible
 * server). A shared-library backend (--backend plugin:PATH.so[:ARGS])
 * exports
 *   const infs_backend_ops_t *infsched_backend_entry(void);
 * returning a table whose abi equals INFS_BACKEND_ABI; ARGS reach create.
 *
 * The contract:
 * - create() gets the host: the worker's libuv loop, its profile, and the
 *   callbacks below. The host outlives the backend.
 * - submit() takes a request (copy what you keep); afterwards the backend
 *   calls host->tokens() any number of times, then exactly one of
 *   host->done() or host->failed(). Returning non-zero from submit refuses
 *   the request at once, with no callback.
 * - cancel() ends a request early: no callback for it follows.
 * - Phases (docs/disaggregation.md). A request of phase
 *   INFS_PHASE_PREFILL runs its prompt, streams its first token with
 *   tokens(), then ends with host->prefilled() instead of done(); it stays
 *   open, holding its KV, until the worker calls cancel(id) (the release),
 *   and no callback follows that. A request of phase INFS_PHASE_DECODE
 *   carries req->kv: the backend pulls that KV, then streams the rest with
 *   tokens() and ends with done() or failed() as usual (failed with code
 *   11, ERROR_KV_TRANSFER, when the pull fails). A backend that does not
 *   run a phase refuses it at submit with INFS_EBADREQUEST.
 * - load() is read for every heartbeat: what is queued and running, KV
 *   use, busy time and tokens generated so far.
 * - destroy() drops every open request without callbacks and closes the
 *   backend's handles; memory may be freed from their close callbacks.
 *
 * Threading: every function here is called on the worker's libuv loop
 * thread, and the host callbacks must be called on that thread too. A
 * backend that computes on other threads hands results back with a
 * uv_async_t on host->loop.
 *
 * A minimal backend that answers every request with max_tokens " hi"s:
 *
 *   typedef struct { infs_backend_host_t host; uint64_t made; } hi_t;
 *
 *   static int hi_create(const infs_backend_host_t *host, const char *args,
 *                        void **state, char *err, size_t errlen) {
 *     hi_t *b = calloc(1, sizeof *b);
 *     if (!b) return -1;
 *     b->host = *host;
 *     *state = b;
 *     return 0;
 *   }
 *   static int hi_submit(void *state, const infs_backend_request_t *req) {
 *     hi_t *b = state;
 *     for (uint32_t i = 0; i < req->max_tokens; i++)
 *       b->host.tokens(b->host.ctx, req->id, 1, " hi", 3);
 *     b->made += req->max_tokens;
 *     infs_backend_usage_t u = {.prompt_tokens = req->prompt_tokens,
 *                               .generated_tokens = req->max_tokens};
 *     b->host.done(b->host.ctx, req->id, &u);
 *     return 0;
 *   }
 *   static void hi_cancel(void *state, uint64_t id) {}
 *   static void hi_load(void *state, infs_backend_load_t *out) {
 *     *out = (infs_backend_load_t){.generated_tokens = ((hi_t *)state)->made};
 *   }
 *   static void hi_destroy(void *state) { free(state); }
 *
 *   static const infs_backend_ops_t ops = {
 *       .abi = INFS_BACKEND_ABI, .name = "hi", .create = hi_create,
 *       .submit = hi_submit, .cancel = hi_cancel, .load = hi_load,
 *       .destroy = hi_destroy};
 *   const infs_backend_ops_t *infsched_backend_entry(void) { return &ops; }
 *
 * Build it with cc -shared -fPIC -I include $(pkg-config --cflags libuv).
 * tests/plugins/echo_backend.c streams from a timer and cancels. */
#ifndef INFSCHED_BACKEND_H
#define INFSCHED_BACKEND_H

#include "infsched/profile.h"
#include "infsched/types.h"

#include <uv.h>

/* 4 added infs_backend_host_t.tool_calls and .logprobs; a plugin built
 * for 3 still loads. */
#define INFS_BACKEND_ABI 4
#define INFS_BACKEND_ABI_MIN 3

/* One request (infsched/types.h), borrowed for the duration of submit:
 * copy what you keep. Its id is unique among the worker's open requests,
 * and its latency targets are set. */
typedef infs_request_t infs_backend_request_t;

/* What a finished request used (infs_backend_usage_t) and the backend's
 * load (infs_backend_load_t) are in infsched/types.h: the worker's core
 * takes them as they are. */

/* Given by the worker to its backend; valid until destroy returns. */
typedef struct infs_backend_host {
  void *ctx;                /* pass back as the first argument */
  uv_loop_t *loop;
  const infs_profile_t *profile;
  /* Streams n new tokens of request id (text may be NULL). */
  void (*tokens)(void *ctx, uint64_t id, uint32_t n, const char *text,
                 size_t len);
  /* The request finished; no more callbacks for id. */
  void (*done)(void *ctx, uint64_t id, const infs_backend_usage_t *usage);
  /* The request failed (code: an Infsched__ErrorCode, e.g. 8 = backend);
   * no more callbacks for id. */
  void (*failed)(void *ctx, uint64_t id, int code, const char *message);
  /* A PREFILL-phase request ran its prompt and holds its KV until
   * cancel(id); params_json (len bytes, may be NULL) is the backend's own
   * handle for the decode side, copied by the worker. */
  void (*prefilled)(void *ctx, uint64_t id, const infs_backend_usage_t *u,
                    const char *params_json, size_t len);
  /* Streams tool calls of a chat request id, counted as n tokens: json
   * (NUL-terminated, len bytes) is a JSON array of OpenAI's
   * delta.tool_calls items, as an upstream streams them (the pieces of one
   * call share its index). Since ABI 4. */
  void (*tool_calls)(void *ctx, uint64_t id, uint32_t n, const char *json,
                     size_t len);
  /* The log probabilities of the text just streamed for id: json
   * (NUL-terminated, len bytes) is the choice's logprobs object as an
   * OpenAI-style upstream gives it. Since ABI 4. */
  void (*logprobs)(void *ctx, uint64_t id, const char *json, size_t len);
} infs_backend_host_t;

typedef struct infs_backend_ops {
  uint32_t abi;             /* INFS_BACKEND_ABI */
  const char *name;
  /* Starts a backend. args is the text after "NAME:" on the command line
   * (or NULL). Returns 0, or a negative code with a reason in err:
   * INFS_ECONFIG when args are wrong (the worker exits 2, a usage error),
   * any other when it cannot start (exit 3). */
  int (*create)(const infs_backend_host_t *host, const char *args,
                void **state, char *err, size_t errlen);
  /* Takes a request. Returns 0, or a negative code when it refuses it at
   * once (then it makes no callback for it). */
  int (*submit)(void *state, const infs_backend_request_t *req);
  /* Drops a request; no callback for it follows. Unknown ids are ignored. */
  void (*cancel)(void *state, uint64_t id);
  void (*load)(void *state, infs_backend_load_t *out);
  /* Prefix-cache changes since the previous call, or NULL when the backend
   * has no prefix cache it can describe. Arrays are borrowed until the next
   * call into the backend. */
  void (*cache_delta)(void *state, const uint64_t **added, size_t *n_added,
                      const uint64_t **removed, size_t *n_removed);
  /* Every block hash in the prefix cache, so that a scheduler that has just
   * (re)registered the worker learns all of it, not only what changes next;
   * NULL like cache_delta. The array is borrowed until the next call. */
  void (*cache_snapshot)(void *state, const uint64_t **hashes, size_t *n);
  /* Stops: cancels what is open without callbacks and closes its handles
   * (memory may be released from their close callbacks). */
  void (*destroy)(void *state);
} infs_backend_ops_t;

typedef const infs_backend_ops_t *(*infs_backend_entry_fn)(void);

#endif
