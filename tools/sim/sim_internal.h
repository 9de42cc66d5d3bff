/* Shared by the simulator's event loop and scheduler (sim.c), its workers
 * (sim_worker.c) and its client (sim_client.c). Not for use outside
 * tools/sim. */
#ifndef INFSCHED_SIM_INTERNAL_H
#define INFSCHED_SIM_INTERNAL_H

#include "engine.h"
#include "core_wire.h"
#include "sim.h"
#include "slots.h"
#include "timeline.h"
#include "wcore_wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A worker streams a request's tokens after the first in chunks of this
 * many: 64 decode steps are a few seconds on the slowest profile at full
 * batch, well within the core's progress deadline (10 s at least). */
#define SIM_CHUNK_TOKENS 64

enum ev_kind {
  EV_START,   /* the workload starts: pool figures are taken from here */
  EV_DELIVER, /* arg: message slot */
  EV_ENGINE,  /* arg: worker; its engine's next step boundary */
  EV_BEAT,    /* every worker's heartbeat timer (they tick together) */
  EV_BEATS,   /* the heartbeats sent at one EV_BEAT reach the scheduler */
  EV_TICK,    /* the core's deadline */
  EV_SAMPLE   /* once a second: queue depths for the report */
};

/* Where a message goes. */
typedef enum msg_dest {
  TO_SCHED_FROM_CLIENT,
  TO_SCHED_FROM_WORKER,
  TO_WORKER,
  TO_CLIENT
} msg_dest_t;

/* One wire message in flight: the envelope each side would send, built by
 * the same functions as the daemons' (core_wire.h, wcore_wire.h), with
 * copies of what it borrowed so that it outlives its sender's next step.
 * It is never packed: the simulator hands the envelope over as decoded. */
typedef struct msg {
  msg_dest_t dest;
  uint32_t worker; /* sender or destination */
  Infsched__Envelope *env;
  union {
    wcore_msg_t worker; /* a worker's */
    core_wire_msg_t sched; /* the scheduler's */
    struct {
      Infsched__Envelope env;
      Infsched__Submit submit;
      Infsched__Request request;
    } client;
  } u;
  Infsched__Chunk chunk; /* a worker's Chunk or Done forwarded to the client */
  Infsched__Done done;
  Infsched__Usage usage;
  char text[CORE_MESSAGE_MAX]; /* errors' messages */
  Infsched__KvHandle kv;       /* a decode Dispatch's handle, and its P */
  char kv_source[INFS_NAME_MAX];
  char prefill_worker[INFS_NAME_MAX]; /* a split request's Done's P ... */
  char prefill_class[INFS_NAME_MAX];  /* ... and its class */
  char model[INFS_NAME_MAX];
  char session[WORKLOAD_SESSION_MAX];
  uint64_t *blocks; /* owned, kept when the slot is reused: a request's
                       block hashes, or a heartbeat's cache blocks added */
  size_t blocks_cap;
  uint64_t *removed; /* heartbeats: prefix-cache blocks evicted */
  size_t removed_cap;
} msg_t;

/* A request the client is waiting on; its client id is its slot + 1. */
typedef struct track {
  uint64_t workload_id;
  infs_time_t arrival; /* intended send time, virtual */
  infs_time_t first;   /* first token reached the client; 0: not yet */
  uint32_t prompt_tokens;
  slo_t slo;
  infs_class_t cls;
  bool open;
} track_t;

typedef struct sworker {
  const sim_worker_spec_t *spec;
  engine_t *engine;
  wcore_t *core;
  core_peer_t peer;
  infs_time_t armed; /* time of the EV_ENGINE that counts; NEVER: none */
  double start_busy_s;
  double start_cost_usd;
} sworker_t;

typedef struct u32vec {
  uint32_t *v;
  size_t n;
  size_t cap;
} u32vec_t;

typedef struct u64vec {
  uint64_t *v;
  size_t n;
  size_t cap;
} u64vec_t;

typedef struct sim {
  const sim_config_t *cfg;
  workload_t *w;
  report_t *report;
  sim_stats_t st;
  core_t *core;
  timeline_t tl;
  infs_time_t core_armed;
  infs_time_t t0; /* virtual time of the workload's time 0 */
  sworker_t *workers;
  size_t n_workers;
  core_peer_t client;
  uint32_t heartbeat_ms;  /* what Registered tells workers */
  infs_time_t flush_now;  /* the time of the flush under way */
  msg_t **msgs; /* stable addresses: core actions point into them */
  slots_t msg_slots;
  track_t *tracks;
  slots_t track_slots;
  uint64_t open;
  u32vec_t beats;         /* heartbeats in flight: [n, slot x n] per EV_BEAT */
  size_t beats_head;      /* the next batch to arrive */
  size_t beats_at;        /* the batch being collected */
  u64vec_t release;       /* prefills whose KV a worker lets go at once */
  bool arrivals_changed;  /* a pop or an answer may have moved the next
                             arrival */
  infs_time_t last_event; /* last send or answer */
} sim_t;

/* --- helpers and messages (sim.c) --- */

void sim_vec_push(u32vec_t *a, uint32_t x);
void sim_u64vec_push(u64vec_t *a, uint64_t x);
/* A message from the pool (reused; its buffers kept); *slot names it. */
msg_t *sim_msg_new(sim_t *s, msg_dest_t dest, uint32_t *slot);
/* Delivers the message delay_us after now; it is freed after delivery. */
void sim_msg_send(sim_t *s, infs_time_t now, uint32_t slot);
void sim_msg_free(sim_t *s, uint32_t slot);
/* Copies n hashes into *dst (growing it to *cap) and returns *dst. */
uint64_t *sim_copy_hashes(uint64_t **dst, size_t *cap, const uint64_t *src,
                          size_t n);

/* --- the scheduler (sim.c) --- */

/* Hands one message to the core, without sending its actions yet. */
void sim_sched_feed(sim_t *s, infs_time_t now, const msg_t *m);
/* Sends the core's actions and re-arms its deadline. */
void sim_sched_flush(sim_t *s, infs_time_t now);
void sim_sched_receive(sim_t *s, infs_time_t now, const msg_t *m);

/* --- the workers (sim_worker.c) --- */

/* Starts worker wi's core at now; its Register goes out. */
void sim_worker_start(sim_t *s, uint32_t wi, const wcore_config_t *cfg,
                      infs_time_t now);
void sim_worker_receive(sim_t *s, infs_time_t now, const msg_t *m);
/* The worker's engine reached its step boundary at now. */
void sim_worker_step(sim_t *s, uint32_t wi, infs_time_t now);
void sim_workers_timer(sim_t *s, infs_time_t now);
void sim_beats_arrive(sim_t *s, infs_time_t now);

/* --- the client (sim_client.c) --- */

void sim_client_receive(sim_t *s, infs_time_t now, const msg_t *m);
void sim_client_send(sim_t *s, infs_time_t now, const workload_req_t *r);

#endif
