/* The worker core's wire glue: the scheduler's messages as core events, and
 * the core's actions as messages. The one mapping the worker daemon and
 * infsched-sim both use, so that the simulator's workers hear and say what
 * the daemon's would. Pure: it neither decodes, packs nor sends. */
#ifndef INFSCHED_WCORE_WIRE_H
#define INFSCHED_WCORE_WIRE_H

#include "infsched.pb-c.h"
#include "wcore.h"

/* What the caller does with its backend after a scheduler's message. */
typedef enum wcore_order_kind {
  WCORE_ORDER_NONE,
  WCORE_ORDER_RUN,      /* submit request; report a refusal with
                           wcore_on_refused */
  WCORE_ORDER_STOP,     /* cancel id */
  WCORE_ORDER_STOP_ALL, /* cancel ids: held requests a new scheduler
                           did not adopt */
  WCORE_ORDER_REJOIN,   /* the scheduler forgot this worker: it registers
                           again, holding its n_ids requests */
  WCORE_ORDER_NOTE,     /* the scheduler reports error code (message) */
  WCORE_ORDER_UNEXPECTED /* not a message for a worker */
} wcore_order_kind_t;

typedef struct wcore_order {
  wcore_order_kind_t kind;
  infs_request_t request; /* RUN: borrows the message's strings */
  infs_kv_handle_t kv;    /* RUN of a DECODE phase: request.kv points here */
  uint64_t id;            /* STOP */
  const uint64_t *ids;    /* STOP_ALL: valid until the next call */
  size_t n_ids;
  int code;            /* NOTE */
  const char *message; /* NOTE: borrowed from the message */
} wcore_order_t;

/* Feeds one message from the scheduler to w and says what the backend is
 * to do in *out. */
void wcore_wire_feed(wcore_t *w, infs_time_t now,
                     const Infsched__Envelope *env, wcore_order_t *out);

/* Room for one message: the envelope and whichever body it carries. */
typedef struct wcore_msg {
  Infsched__Envelope env;
  union {
    Infsched__Register reg;
    Infsched__Heartbeat hb;
    Infsched__Chunk chunk;
    Infsched__Done done;
    Infsched__Prefilled prefilled;
    Infsched__Error error;
  } u;
  Infsched__Profile profile;
  Infsched__Usage usage;
  Infsched__KvHandle kv;
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
Infsched__Envelope *wcore_wire_message(wcore_t *w,
                                       const wcore_action_t *a,
                                       const wcore_cache_t *cache,
                                       wcore_msg_t *m);

#endif
