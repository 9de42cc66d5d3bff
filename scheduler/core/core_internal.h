/* Structures shared by the core's modules (requests, registry, admission,
 * policies). Not for use outside scheduler/core. */
#ifndef INFSCHED_CORE_INTERNAL_H
#define INFSCHED_CORE_INTERNAL_H

#include "scheduler/core/core.h"
#include "lib/list.h"
#include "lib/u64map.h"

typedef enum req_state {
  REQ_FREE,
  REQ_QUEUED,     /* waiting in an admission queue */
  REQ_DISPATCHED, /* sent to a worker, no token yet */
  REQ_STREAMING   /* at least one token came back */
} req_state_t;

typedef struct req {
  req_state_t state;
  uint64_t id;             /* the core's id: generation << 32 | slot */
  uint64_t client_key;     /* hash of (client peer, client id) */
  uint64_t client_id;
  core_peer_t client;
  core_request_t spec;     /* pointers into store; spec.id = id */
  char *store;             /* owned copies of strings and block hashes */
  size_t store_cap;
  int32_t worker;          /* registry index while dispatched, else -1 */
  uint32_t attempts;
  uint32_t tokens_out;
  infs_time_t arrived;
  infs_time_t dispatched_at;
  list_node_t link;        /* admission queue or its worker's list */
} req_t;

typedef struct req_table {
  req_t **slots;           /* stable pointers; slots are reused */
  uint32_t *generation;
  uint32_t *free_slots;
  size_t n_free;
  size_t cap;
  size_t open;
  u64map_t by_client;      /* client_key -> slot */
} req_table_t;

typedef struct core_worker {
  bool live;
  uint32_t index;
  core_peer_t peer;
  uint64_t peer_key;
  char id[INFS_NAME_MAX];
  char model[INFS_NAME_MAX];
  char backend[32];
  infs_profile_t profile;
  uint32_t capacity;
  uint32_t outstanding;
  uint64_t requests;
  core_load_t load;
  infs_time_t last_seen;
  list_node_t reqs;        /* requests dispatched to it */
} core_worker_t;

typedef struct registry {
  core_worker_t **workers; /* by index; dead slots are reused */
  size_t len;
  size_t cap;
  size_t live;
  u64map_t by_peer;        /* peer_key -> index */
} registry_t;

/* --- request table (requests.c) --- */
void requests_init(req_table_t *t);
void requests_free(req_table_t *t);
/* Copies spec into a fresh request; returns NULL (and writes nothing) when
 * the (client, id) pair is already open. */
req_t *requests_add(req_table_t *t, const core_peer_t *client,
                    const core_request_t *spec, infs_time_t now);
req_t *requests_get(const req_table_t *t, uint64_t id);
req_t *requests_by_client(const req_table_t *t, const core_peer_t *client,
                          uint64_t client_id);
void requests_remove(req_table_t *t, req_t *r);

/* --- worker registry (registry.c) --- */
void registry_init(registry_t *g);
void registry_free(registry_t *g);
core_worker_t *registry_find_peer(const registry_t *g, const core_peer_t *p);
core_worker_t *registry_find_id(const registry_t *g, const char *id);
core_worker_t *registry_add(registry_t *g, const core_peer_t *p,
                            const core_worker_info_t *info, infs_time_t now);
/* Marks the worker dead; the caller has already moved its requests. */
void registry_remove(registry_t *g, core_worker_t *w);

uint64_t peer_hash(const core_peer_t *p);
bool peer_equal(const core_peer_t *a, const core_peer_t *b);

#endif
