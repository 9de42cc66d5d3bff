/* Structures shared by the core's modules (requests, registry, admission,
 * policies). Not for use outside scheduler/core. */
#ifndef INFSCHED_CORE_INTERNAL_H
#define INFSCHED_CORE_INTERNAL_H

#include "buf.h"
#include "list.h"
#include "slots.h"
#include "u64map.h"
#include "core.h"
#include "predictor.h"

typedef enum req_state {
  REQ_FREE,
  REQ_QUEUED,     /* waiting in an admission queue */
  REQ_DISPATCHED, /* sent to a worker, no token yet */
  REQ_STREAMING   /* at least one token came back */
} req_state_t;

typedef struct req {
  req_state_t state;
  uint64_t id;         /* the core's id: generation << 32 | slot */
  uint64_t client_key; /* hash of (client peer, client id) */
  uint64_t client_id;
  uint64_t session_key; /* sessions_key(spec.session), 0 outside sessions */
  core_peer_t client;
  core_request_t spec; /* pointers into store; spec.id = id */
  char *store;         /* owned copies of strings and block hashes */
  size_t store_cap;
  size_t bytes; /* of store in use, counted in req_table_t.bytes */
  int32_t worker; /* registry index while dispatched, else -1 */
  uint32_t attempts;
  uint32_t tokens_out;
  /* The text of those tokens, for a migration (see core_on_chunk). */
  buf_t said;
  /* Bytes of tool calls and log probabilities its chunks carried, which
   * the front door keeps for an answer (see core_on_chunk_parts). */
  uint64_t extra_bytes;
  /* Adopted from a re-registering worker and not yet claimed by its
   * client: nothing is sent to the client until then. */
  bool unclaimed;
  infs_time_t claim_deadline;
  bool done_kept; /* its Done came first: kept, on the parked list */
  core_done_t done;
  char done_worker[INFS_NAME_MAX];
  char done_class[16];
  uint32_t uncached;    /* prompt tokens predicted to prefill there */
  bool counted_waiting; /* NO_ROOM or DEFERRED already counted */
  infs_time_t arrived;
  infs_time_t dispatched_at;
  infs_time_t first_token_at; /* 0 until a token has gone out */
  infs_time_t last_token_at;  /* of the latest chunk */
  /* Its worker has until then to send a token (see progress_timeout). */
  infs_time_t progress_deadline;
  infs_time_t progress_window; /* the deadline's distance from progress */
  /* A worker that let it time out, not to be given it again: registry
   * index and registration, or -1. */
  int32_t shunned;
  uint64_t shunned_epoch;
  /* A split request (docs/disaggregation.md). phase: of its dispatch now.
   * While its prefill runs, the decode worker the policy paired with the
   * prefill worker (registry index and registration, or -1); from the
   * prefill's handoff until the release, the worker that holds its KV
   * and the handle to it (params in kv_params). whole: never split again
   * (its KV could not be pulled). */
  infs_phase_t phase;
  int32_t decode_worker;
  uint64_t decode_epoch;
  int32_t kv_worker;
  uint64_t kv_epoch;
  infs_kv_handle_t kv;
  buf_t kv_params;
  bool whole;
  uint32_t dispatch_tokens; /* tokens_out when it was last dispatched */
  /* The prefill's figures and worker, for the Done's phase split. */
  core_done_t prefill;
  infs_time_t prefilled_at;
  char prefill_worker[INFS_NAME_MAX];
  char prefill_class[16];
  list_node_t link; /* admission queue or its worker's list */
} req_t;

typedef struct req_table {
  req_t **slots; /* stable pointers; slots are reused */
  uint32_t *generation;
  slots_t table;
  size_t open;
  size_t bytes;       /* strings and hashes held by open requests */
  u64map_t by_client; /* client_key -> slot */
} req_table_t;

/* What every placement reads of every worker, packed in one array by
 * registry index so that scanning a pool of thousands stays in cache. */
typedef struct worker_hot {
  uint32_t outstanding; /* requests dispatched there and not finished */
  uint32_t capacity;    /* 0: the slot is dead */
  uint32_t max_context;
  uint16_t model; /* interned model name; 0: serves any model */
  uint8_t group;  /* interned profile, the strata of sampling */
  uint8_t role;   /* infs_role_t, for policy_pick's partition */
} worker_hot_t;

#define REGISTRY_GROUPS 32           /* distinct profiles told apart */
#define REGISTRY_NO_MODEL UINT16_MAX /* a model no worker names */

typedef struct core_worker {
  /* What predictions read comes first, to share cache lines. */
  bool live;
  uint32_t index;
  uint32_t n_cls[INFS_CLASS_COUNT]; /* outstanding by request class */
  uint64_t remaining_tokens;        /* output tokens its requests still owe */
  predictor_since_t since;          /* changes since its last heartbeat */
  double prefill_rate;              /* see predictor_rate_add */
  infs_time_t prefill_rate_at;
  core_load_t load; /* last heartbeat, cache arrays NULL */
  char model[INFS_NAME_MAX];
  infs_profile_t profile;
  /* The rest is read on events only. */
  uint64_t epoch; /* registration number, for session entries */
  uint64_t requests;
  infs_time_t last_seen;
  infs_time_t registered_at;
  list_node_t reqs; /* requests dispatched to it */
  uint64_t peer_key;
  char id[INFS_NAME_MAX];
  char backend[32];
  infs_role_t role;
  core_peer_t peer;
  /* Circuit breaker: after CORE_BREAKER_ERRORS backend failures in a row
   * nothing is placed on it until breaker_until; each opening doubles the
   * back-off (CORE_BREAKER_BASE to CORE_BREAKER_MAX), a Done resets it. */
  uint32_t errors_in_row;
  infs_time_t breaker_until;
  infs_time_t breaker_backoff;
} core_worker_t;

typedef struct registry {
  core_worker_t **workers; /* by index; dead slots are reused */
  worker_hot_t *hot;       /* by index, cap long */
  size_t len;
  size_t cap;
  size_t live;
  uint64_t epochs;               /* registrations so far */
  u64map_t by_peer;              /* peer_key -> index */
  char (*models)[INFS_NAME_MAX]; /* interned model names; [0] is "" */
  size_t n_models;
  infs_profile_t groups[REGISTRY_GROUPS]; /* interned profiles */
  uint32_t group_live[REGISTRY_GROUPS];   /* live workers of each */
  size_t n_groups;
  uint32_t min_block_size; /* smallest of all profiles; 0 before any */
  /* Worker ids and the key that first registered each (see
   * core_on_register); kept after the worker is gone, so that only its
   * key can bring the id back. */
  struct key_binding {
    char id[INFS_NAME_MAX];
    char key[CORE_KEY_MAX];
  } * bindings;
  size_t n_bindings;
  size_t bindings_cap;
} registry_t;

/* Which worker last served each session, and how much of its prompt: a
 * direct-mapped table, so it stays bounded and never allocates after its
 * creation; two sessions sharing a slot only lose their affinity. */
typedef struct session_entry {
  uint64_t key;        /* hash of the session id; 0: empty */
  uint64_t epoch;      /* the worker's registration */
  uint64_t last_block; /* hash of the last prompt block it was sent */
  uint32_t worker;
  uint32_t n_blocks;
  uint32_t uncached; /* prompt tokens it was predicted to prefill */
  infs_time_t at;    /* when it was sent */
} session_entry_t;

typedef struct session_table {
  session_entry_t *slots;
  size_t cap; /* power of two, 0 until the first session */
} session_table_t;

/* Whether r may be split between a prefill and a decode worker: it has
 * streamed nothing (a migration continues whole), owes more than the first
 * token, its KV is not held somewhere already and never failed to move. */
static inline bool req_may_split(const req_t *r) {
  return !r->whole && r->tokens_out == 0 && r->kv_worker < 0 &&
         r->spec.max_tokens > 1;
}

/* --- request table (requests.c) --- */
void requests_init(req_table_t *t);
void requests_free(req_table_t *t);
/* Copies spec into a fresh request; returns NULL (and writes nothing) when
 * the (client, id) pair is already open. */
req_t *requests_add(req_table_t *t, const core_peer_t *client,
                    const core_request_t *spec, infs_time_t now);
/* Bytes of strings and hashes the table holds for spec once added. */
size_t requests_size(const core_request_t *spec);
req_t *requests_get(const req_table_t *t, uint64_t id);
req_t *requests_by_client(const req_table_t *t, const core_peer_t *client,
                          uint64_t client_id);
void requests_remove(req_table_t *t, req_t *r);
/* Appends text to what r has streamed, counted in the table's bytes. */
void requests_said(req_table_t *t, req_t *r, const char *text, size_t len);

/* --- worker registry (registry.c) --- */
void registry_init(registry_t *g);
void registry_free(registry_t *g);
core_worker_t *registry_find_peer(const registry_t *g, const core_peer_t *p);
core_worker_t *registry_find_id(const registry_t *g, const char *id);
core_worker_t *registry_add(registry_t *g, const core_peer_t *p,
                            const core_worker_info_t *info, infs_time_t now);
/* Marks the worker dead; the caller has already moved its requests. */
void registry_remove(registry_t *g, core_worker_t *w);
/* The key worker id is bound to, or NULL when none is. */
const char *registry_bound_key(const registry_t *g, const char *id);
/* Binds id to key (both shorter than their buffers). Returns 0, or -1 when
 * CORE_KEY_BINDINGS_MAX ids are bound already. */
int registry_bind(registry_t *g, const char *id, const char *key);
/* The interned id of a requested model: 0 for any, REGISTRY_NO_MODEL when
 * no worker ever named it. */
uint16_t registry_model_id(const registry_t *g, const char *model);

static inline worker_hot_t *registry_hot(const registry_t *g,
                                         const core_worker_t *w) {
  return &g->hot[w->index];
}

/* Whether a worker with room and these hot fields may take a request of
 * this model id and context: the hard constraints. */
static inline bool hot_serves(const worker_hot_t *h, uint16_t model,
                              uint64_t context) {
  return (model == 0 || h->model == 0 || h->model == model) &&
         context <= h->max_context;
}

/* --- sessions (sessions.c) --- */
void sessions_free(session_table_t *t);
/* 0 for an empty session id. */
uint64_t sessions_key(const char *session);
const session_entry_t *sessions_find(const session_table_t *t, uint64_t key);
void sessions_note(session_table_t *t, uint64_t key, const core_worker_t *w,
                   const req_t *r, infs_time_t now);

uint64_t peer_hash(const core_peer_t *p);

/* Routing ids are a few bytes: a loop beats a call to memcmp. */
static inline bool peer_equal(const core_peer_t *a, const core_peer_t *b) {
  if (a->len != b->len || a->door != b->door)
    return false;
  for (size_t i = 0; i < a->len; i++)
    if (a->id[i] != b->id[i])
      return false;
  return true;
}

#endif
