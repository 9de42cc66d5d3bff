/* The scheduler core's wire glue: client and worker messages as core
 * events, and core actions as messages. The one mapping that the
 * scheduler's shell (scheduler/shell.c) and infsched-sim both use, so that
 * the simulated scheduler hears and says what the daemon would. Pure: it
 * neither decodes frames nor sends; the caller does both. */
#ifndef INFSCHED_CORE_WIRE_H
#define INFSCHED_CORE_WIRE_H

#include "infsched.pb-c.h"
#include "core.h"

/* What a feed made of a message. */
enum {
  CORE_WIRE_FED = 0,    /* handed to the core */
  CORE_WIRE_STATUS = 1, /* a StatusQuery: the caller answers it */
  CORE_WIRE_BAD = -1    /* not for this socket, or incomplete: answer
                           ERROR_BAD_REQUEST with the reason in why */
};

/* A client's message (Submit, Cancel) to the core. */
int core_wire_feed_client(core_t *c, infs_time_t now, const core_peer_t *peer,
                          const Infsched__Envelope *env, char *why,
                          size_t len);
/* A worker's message to the core. key: the public key its connection
 * authenticated with, or NULL (see core_worker_info_t.key). A Chunk's or
 * Done's body comes back as the passthrough of the action that forwards
 * it, so env must outlive the flush of this event. */
int core_wire_feed_worker(core_t *c, infs_time_t now, const core_peer_t *peer,
                          const char *key, const Infsched__Envelope *env,
                          char *why, size_t len);

/* Room for one message to a peer. */
typedef struct core_wire_msg {
  Infsched__Envelope env;
  union {
    Infsched__Accepted accepted;
    Infsched__Error error;
    Infsched__Dispatch dispatch;
    Infsched__Cancel cancel;
    Infsched__Registered registered;
    Infsched__Chunk chunk;
    Infsched__Done done;
  } u;
  Infsched__Request request;
  Infsched__Usage usage;
  Infsched__KvHandle kv; /* a decode Dispatch's */
  uint8_t client[1 + CORE_PEER_MAX]; /* a Dispatch's client: door, id */
} core_wire_msg_t;

/* Fills m with the message of action a and returns its envelope; strings
 * and hashes are borrowed from a. A CHUNK's or DONE's body is the worker's
 * message (a->passthrough), its request_id set to the client's, or one made
 * from a when the core made it.
 * heartbeat_ms goes in Registered. */
Infsched__Envelope *core_wire_message(const core_action_t *a,
                                      uint32_t heartbeat_ms,
                                      core_wire_msg_t *m);

/* True for the actions that go to workers. A flush sends those first: a
 * Dispatch is on its request's critical path, its Accepted is not. Each
 * peer still hears the core's order. */
bool core_wire_to_worker(core_action_kind_t kind);

/* Calls send with each action of the outbox in that order, then clears
 * it. */
void core_wire_flush(core_t *c, void (*send)(void *ctx, const core_action_t *a),
                     void *ctx);

#endif
