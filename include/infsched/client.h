/* A client of the scheduler's client endpoint: one ZeroMQ DEALER socket joined
 * to a libuv loop, sending one packed Envelope per message and turning the
 * answers into callbacks; matching answers to requests is the caller's
 * business.
 *
 * It survives a scheduler's restart: the socket has a routing id of its own
 * (random, kept across reconnections), and the client keeps each open
 * request with what it has received of it. When the connection comes back
 * after a loss, it submits every open request again (a resubmit, with the
 * tokens it has), and the new scheduler continues each from there
 * (docs/fault-tolerance.md): the caller sees one stream. */
#ifndef INFSCHED_CLIENT_H
#define INFSCHED_CLIENT_H

#include "infsched.pb-c.h"
#include "infsched/auth.h"
#include "infsched/types.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A request to submit; every pointer is borrowed for the call. */
typedef struct client_request {
  uint64_t id;        /* unique among the caller's open requests */
  const char *model;  /* NULL or "": any model */
  const char *prompt; /* NULL or "": sizes only */
  uint32_t prompt_tokens;
  uint32_t max_tokens;
  infs_class_t cls;
  uint32_t ttft_ms; /* 0: the scheduler's class default (lib/slo.h) */
  uint32_t ttft_ms_per_ktok;
  uint32_t tpot_ms;
  const char *session;    /* NULL or "" outside sessions */
  const uint64_t *blocks; /* prompt block hashes */
  size_t n_blocks;
} client_request_t;

/* Answers from the scheduler. The messages are borrowed for the call and
 * freed after it returns; any callback may be NULL. */
typedef struct client_events {
  void (*on_accepted)(void *arg, uint64_t request_id);
  void (*on_chunk)(void *arg, const Infsched__Chunk *chunk);
  void (*on_done)(void *arg, const Infsched__Done *done);
  /* A failure or rejection: the request's one terminal answer. */
  void (*on_error)(void *arg, const Infsched__Error *error);
  /* A Submit refused because its id was already open (ERROR_DUPLICATE).
   * Not an answer about the open request of that id, which goes on: it
   * never reaches on_error. NULL: such refusals are logged. */
  void (*on_refused)(void *arg, const Infsched__Error *error);
  void (*on_status)(void *arg, const Infsched__Status *status);
} client_events_t;

typedef struct client client_t;

/* Connects a DEALER socket on zctx (borrowed, must outlive the client) to
 * endpoint and watches it on loop. Messages sent before the scheduler is up
 * wait in the socket. auth (borrowed for the call) gives its CURVE keys;
 * NULL: the local keys, as a scheduler on this host has them, made when
 * missing (see docs/security.md). ev is copied; arg is passed to every callback.
 * Returns 0, or a negative code, logged with why (a key file missing). */
int client_new(uv_loop_t *loop, void *zctx, const char *endpoint,
               const infs_auth_t *auth, const client_events_t *ev, void *arg,
               client_t **out);
/* Closes the socket, dropping unsent messages after linger_ms. Not from
 * inside a callback: the receive loop still holds the socket. */
void client_destroy(client_t **c, int linger_ms);

/* Each returns 0 once the message is queued on the socket, or -errno. */
int client_submit(client_t *c, const client_request_t *req);
int client_cancel(client_t *c, uint64_t request_id);
/* The answer arrives through on_status. */
int client_query_status(client_t *c);

/* Requests submitted again after the connection came back. */
uint64_t client_resubmits(const client_t *c);

/* Frames that did not decode or carried a body a client does not expect. */
uint64_t client_bad_messages(const client_t *c);

#endif
