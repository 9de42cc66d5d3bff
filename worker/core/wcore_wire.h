/* The worker core's actions as wire messages: the one mapping the worker
 * daemon and infsched-sim both use, so that what the simulator's workers
 * say is what the daemon's would. Pure: it fills protobuf-c structs and
 * neither packs nor sends them. */
#ifndef INFSCHED_WCORE_WIRE_H
#define INFSCHED_WCORE_WIRE_H

#include "infsched.pb-c.h"
#include "worker/core/wcore.h"

/* Room for one message: the envelope and whichever body it carries. */
typedef struct wcore_msg {
  Infsched__Envelope env;
  union {
    Infsched__Register reg;
    Infsched__Heartbeat hb;
    Infsched__Chunk chunk;
    Infsched__Done done;
    Infsched__Error error;
  } u;
  Infsched__Profile profile;
  Infsched__Usage usage;
} wcore_msg_t;

/* The prefix-cache hashes a heartbeat carries, from the backend: all of
 * them when the action says cache_reset, else the changes. Borrowed. */
typedef struct wcore_cache {
  const uint64_t *added;
  size_t n_added;
  const uint64_t *removed;
  size_t n_removed;
} wcore_cache_t;

/* Fills m with the message of action a of worker w and returns its
 * envelope. Strings and arrays are borrowed from w's configuration, from a
 * and from cache (heartbeats; NULL: none), so m lives no longer than they
 * do. */
Infsched__Envelope *wcore_wire_message(const wcore_t *w,
                                       const wcore_action_t *a,
                                       const wcore_cache_t *cache,
                                       wcore_msg_t *m);

#endif
