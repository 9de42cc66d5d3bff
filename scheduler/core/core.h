/* The scheduling core: every decision the scheduler makes, and nothing else.
 * It does no I/O and reads no clock. The shell (or the simulator) feeds it
 * events stamped with `now`; the core appends actions to an outbox that the
 * caller sends and then clears. Pointers inside actions stay valid until
 * core_actions_clear or the next event. */
#ifndef INFSCHED_CORE_H
#define INFSCHED_CORE_H

#include "infsched/profile.h"
#include "infsched/types.h"
#include "slo.h"
#include "transfer.h"

#include <stdbool.h>

#define CORE_PEER_MAX 255

/* Which front door a client came in by. Each door is its own namespace:
 * a peer of one never equals a peer of another, whatever their bytes, so
 * a ZeroMQ client cannot name an HTTP caller's requests. */
typedef enum core_door {
  CORE_DOOR_ZMQ = 0, /* also workers, and the simulator's peers */
  CORE_DOOR_HTTP = 1
} core_door_t;

/* A ZeroMQ routing id (or any opaque address the caller uses). */
typedef struct core_peer {
  uint8_t door; /* core_door_t */
  uint8_t len;
  uint8_t id[CORE_PEER_MAX];
} core_peer_t;

struct policy_ops;

typedef struct core_config {
  const char *policy;             /* policy name, see policy.h */
  /* A policy given as its table instead of by name (NULL: by name), for
   * the simulator's and tests' own decisions; borrowed. */
  const struct policy_ops *policy_ops;
  /* The links between workers for moving a split request's KV (borrowed;
   * NULL: the defaults of model/transfer.h). */
  const link_table_t *links;
  infs_time_t heartbeat_interval; /* what workers are told to use */
  uint32_t heartbeat_miss;        /* intervals of silence before loss */
  uint32_t queue_limit[INFS_CLASS_COUNT];
  infs_time_t queue_timeout;          /* longest wait for capacity */
  uint32_t max_attempts;              /* dispatches of one request */
  /* A dispatched request that brings no token for PROGRESS_FACTOR times
   * its predicted TTFT, and at least progress_timeout, is taken back:
   * dispatched elsewhere before its first token, failed after. */
  infs_time_t progress_timeout;
  slo_t slo[INFS_CLASS_COUNT]; /* for requests that carry none */
  /* balanced: how much latency weighs against cost, per class. A worker's
   * score is its marginal cost times (1 + weight * the share of the SLO its
   * predicted latency uses); 0 takes the cheapest worker meeting the SLO. */
  double latency_weight[INFS_CLASS_COUNT];
  /* cache_affinity: a worker's match counts when it holds more than
   * cache_match_threshold of the request's blocks; the worker with the best
   * match is too loaded, and the request spills to the least loaded one,
   * when it has more than cache_balance_abs outstanding requests beyond the
   * least loaded and more than cache_balance_rel times as many. Defaults:
   * SGLang's cache-aware router (0.3, 64, 1.5). */
  double cache_match_threshold;
  uint32_t cache_balance_abs;
  double cache_balance_rel;
  /* kv_cost, after Dynamo's KV router (policy_kv_cost.c): weight of the
   * prefill load, credit per cached block, weight of each outstanding
   * request, and the softmax temperature (0: the lowest cost). */
  double kv_prefill_scale;
  double kv_overlap_credit;
  double kv_request_weight;
  double kv_temperature;
  /* weighted_score, after llm-d's scheduler (policy_weighted_score.c):
   * weights of the queue, KV-utilisation and prefix-match scores. */
  double score_queue_weight;
  double score_kv_weight;
  double score_prefix_weight;
  double kwh_usd; /* energy price in predicted marginal costs */
  /* The scheduler's own profiles (borrowed, or NULL to believe workers):
   * a worker names its profile and is refused when the name is not here;
   * when its figures differ, these are used and the REGISTERED action
   * says so in its message. */
  const profile_set_t *profiles;
  /* Prompts, session ids and block hashes all open requests may hold;
   * past it a submit is rejected as if its queue were full. */
  size_t max_open_bytes;
  bool explain;   /* record every decision for core_decisions() */
} core_config_t;

void core_config_defaults(core_config_t *c);

/* Bounds on what a message may ask of the core; past them it is refused
 * with ERROR_BAD_REQUEST (docs/security.md). Message sizes are bounded
 * before decoding, by the shell. */
#define CORE_CAPACITY_MAX (1u << 20) /* requests one worker holds at once */
/* Prompt block hashes of one request: a prompt of 4M tokens at 64 tokens a
 * block. A request may also carry no more than its prompt's tokens fill at
 * CORE_BLOCK_TOKENS_MIN tokens a block, or at the smallest block size
 * registered when smaller (see core_on_submit). */
#define CORE_BLOCKS_MAX 65536u
#define CORE_BLOCK_TOKENS_MIN 16u
#define CORE_PROMPT_BYTES_MAX (8u << 20)
/* Text a worker may send for a request: this much a token it may make,
 * more than any tokenizer's longest token. */
#define CORE_TOKEN_BYTES_MAX 256u
#define CORE_SESSION_MAX 256 /* bytes of a session id */
/* Heartbeat figures: counts of requests, and tokens. */
#define CORE_LOAD_COUNT_MAX (1u << 24)
#define CORE_LOAD_TOKENS_MAX (1ull << 40)

/* Heartbeat intervals of silence after which a worker id may be
 * registered from another connection (see core_on_register). */
#define CORE_ID_HOLD_INTERVALS 2

/* See core_config_t.progress_timeout. */
#define CORE_PROGRESS_FACTOR 4
/* The longest progress window, in microseconds (some 146,000 years): a
 * TTFT predicted from the most load a heartbeat may report can pass what
 * a time holds, and now plus the window must not wrap. */
#define CORE_PROGRESS_WINDOW_MAX (1ull << 62)

/* A request as submitted; borrowed for the call, the core copies it. */
typedef infs_request_t core_request_t;

/* A Done's figures, which the core keeps when it cannot forward the Done
 * yet (see core_on_register). */
typedef struct core_done {
  uint32_t prompt_tokens;
  uint32_t cached_tokens;
  uint32_t generated_tokens;
  uint64_t queue_us;
  uint64_t ttft_us;
  uint64_t e2e_us;
  double cost_usd; /* the whole request's, both workers of a split one */
  /* A split request (docs/disaggregation.md): its prefill on the prefill
   * worker, the KV transfer as the decode worker reports it, and the rest
   * of its time there; the prefill worker's share of cost_usd. Zero for a
   * request run whole. */
  uint64_t prefill_us;
  uint64_t transfer_us;
  uint64_t decode_us;
  double prefill_cost_usd;
} core_done_t;

/* A request a worker kept running while it had no scheduler; borrowed. */
typedef struct core_held {
  uint64_t id;          /* the id the worker knows it by */
  core_peer_t client;   /* its client's routing id */
  core_request_t spec;  /* as the client sent it; spec.id is the client's */
  uint32_t tokens;      /* generated so far, resumed ones included */
  const char *text;     /* their text */
  size_t text_len;
  bool done;            /* the worker holds its Done */
} core_held_t;

/* A CURVE public key in Z85 (40 characters), with its NUL. */
#define CORE_KEY_MAX 41
/* Worker ids bound to keys at once (see core_on_register). */
#define CORE_KEY_BINDINGS_MAX 65536u

/* What a worker says about itself when it registers; borrowed. */
typedef struct core_worker_info {
  /* The public key its connection authenticated with (Z85, from the
   * shell's ZAP handler, not from the message), or NULL when nothing
   * authenticates workers. */
  const char *key;
  const char *worker_id;
  const char *model;
  const char *backend;
  const infs_profile_t *profile;
  uint32_t capacity;
  infs_role_t role;
  const core_held_t *held; /* requests it kept running, see core_on_register */
  size_t n_held;
  bool unhealthy; /* as its heartbeats say, until the first one */
  bool draining;
} core_worker_info_t;

/* Backend failures in a row that open a worker's circuit breaker, and its
 * first and longest back-off. */
#define CORE_BREAKER_ERRORS 3
#define CORE_BREAKER_BASE (1 * INFS_US_PER_S)
#define CORE_BREAKER_MAX (30 * INFS_US_PER_S)

/* A worker's load as of its last heartbeat. The cache arrays are borrowed
 * for the call: the hashes of prefix-cache blocks the worker inserted and
 * evicted since its previous heartbeat, or with cache_reset its whole cache
 * in cache_added. */
typedef struct core_load {
  uint32_t queued;
  uint32_t running;
  uint64_t kv_used;
  uint64_t kv_total;
  uint64_t prefill_backlog_tokens;
  double tokens_per_s;
  double cost_usd;
  double busy_s;
  double up_s;
  bool cache_reset;
  /* The worker's backend says it cannot serve (its upstream failed its
   * health check): no request is placed there until it says otherwise. */
  bool unhealthy;
  bool draining; /* it is stopping: nothing new is placed there */
  const uint64_t *cache_added;
  size_t n_cache_added;
  const uint64_t *cache_removed;
  size_t n_cache_removed;
} core_load_t;

typedef enum core_action_kind {
  CORE_ACT_ACCEPTED,    /* client: request accepted */
  CORE_ACT_CHUNK,       /* client: forward the chunk being handled */
  CORE_ACT_DONE,        /* client: forward the Done being handled */
  CORE_ACT_ERROR,       /* client: failure or rejection (code >= 100) */
  CORE_ACT_DISPATCH,    /* worker: run `request` */
  CORE_ACT_CANCEL,      /* worker: stop request_id */
  CORE_ACT_REGISTERED,  /* worker: registration accepted */
  CORE_ACT_WORKER_ERROR /* worker: code and message (e.g. unknown worker) */
} core_action_kind_t;

#define CORE_MESSAGE_MAX 192

typedef struct core_action {
  core_action_kind_t kind;
  uint64_t request_id; /* client's id to clients, the core's to workers */
  int code;            /* INFS_WIRE_* reason (infsched/errors.h) */
  char message[CORE_MESSAGE_MAX]; /* errors: human-readable reason */
  const core_request_t *request;  /* DISPATCH: id is the core's id */
  uint64_t client_request_id;     /* DISPATCH: the client's id, which the
                                     worker puts in its Chunk and Done */
  /* DISPATCH of a migrated request: the tokens its client already has and
   * their text, which the worker continues from (borrowed like request).
   * CHUNK without passthrough, made by the core: its tokens and text. */
  uint32_t resume_tokens;
  const char *resume_text;
  size_t resume_len;
  const core_peer_t *client; /* DISPATCH: the request's client (borrowed) */
  /* DISPATCH: the part of the request to run, and for DECODE the KV to
   * pull (borrowed like request). */
  infs_phase_t phase;
  const infs_kv_handle_t *kv;
  /* DONE without passthrough, made by the core from what it kept: the
   * figures and the worker's id and class (borrowed). */
  const core_done_t *done;
  const char *worker_id;
  const char *worker_class;
  /* DONE of a split request: the worker that prefilled it (borrowed). */
  const char *prefill_worker_id;
  const char *prefill_worker_class;
  /* REGISTERED: the held requests adopted, by the worker's id and the
   * core's (borrowed; see core_on_register). */
  const uint64_t *adopted_from;
  const uint64_t *adopted_as;
  size_t n_adopted;
  const void *passthrough; /* CHUNK/DONE: the caller's message */
  /* CHUNK/DONE/ERROR to a client, for per-class metrics: the request's
   * class (INFS_CLASS_COUNT when it had no valid one), when the core got
   * it, and whether a token had gone out before this action (CHUNK: not
   * this one). */
  infs_class_t cls;
  infs_time_t arrived;
  bool streamed;
  /* CHUNK/DONE to a client, for latency metrics: when its first token and
   * the chunk before this one went out (0: none yet), the tokens out so
   * far (CHUNK: this chunk's), and what slo_judge needs: its SLO and the
   * prompt tokens its worker was predicted to prefill. */
  infs_time_t first_token;
  infs_time_t last_token;
  uint32_t tokens;
  slo_t slo;
  uint32_t uncached;
  core_peer_t peer;               /* destination; last, so that only its used
                                     bytes are written */
} core_action_t;

/* What a placement decided, counted in core_stats_t.outcomes. */
typedef enum core_outcome {
  CORE_OUTCOME_TURN,         /* round_robin: the next worker in turn */
  CORE_OUTCOME_LEAST_LOADED, /* least_loaded: fewest outstanding */
  CORE_OUTCOME_CACHE_HIT,    /* cache_affinity: most cached prefix blocks */
  CORE_OUTCOME_CACHE_MISS,   /* cache_affinity: no hit, least loaded */
  CORE_OUTCOME_CACHE_SPILL,  /* cache_affinity: best match too loaded */
  CORE_OUTCOME_CHEAPEST,     /* cheapest: lowest predicted cost */
  CORE_OUTCOME_SLO_MET,      /* balanced: best score among those meeting
                                the SLO */
  CORE_OUTCOME_SLO_MISSED,   /* balanced: none meets it, the fastest */
  CORE_OUTCOME_DEFERRED,     /* balanced: queued rather than slow down
                                requests of its class or a more urgent one */
  CORE_OUTCOME_LOWEST_COST,  /* kv_cost: lowest KV cost */
  CORE_OUTCOME_BEST_SCORE,   /* weighted_score: highest weighted score */
  CORE_OUTCOME_NO_ROOM,      /* no worker had room: queued */
  CORE_OUTCOME_COUNT
} core_outcome_t;

const char *core_outcome_name(core_outcome_t o);

typedef struct core_stats {
  uint64_t submitted;
  uint64_t dispatched;
  uint64_t redispatched;
  uint64_t migrated; /* of those, dispatched again after tokens went out */
  uint64_t adopted;  /* held requests taken over from re-registering workers */
  uint64_t resubmitted; /* resubmits of requests the core did not know */
  uint64_t abandoned;   /* adopted requests no client claimed in time */
  uint64_t completed;
  uint64_t failed;
  uint64_t rejected;
  uint64_t cancelled;
  uint64_t workers_lost;
  uint64_t registrations;     /* accepted, not counting repeats */
  uint64_t progress_timeouts; /* requests taken back for want of progress */
  uint64_t breaker_opened;    /* workers' circuit breakers opened */
  uint64_t profile_mismatches; /* registrations whose figures were not the
                                  scheduler's */
  uint64_t id_takeovers_refused; /* Registers for an id a live connection
                                    holds */
  uint64_t id_key_refused;       /* Registers for an id bound to another key */
  uint64_t stale_messages; /* chunks/dones for requests no longer open */
  uint64_t unknown_worker_messages;
  /* Placements by outcome; DEFERRED and NO_ROOM count requests, once. */
  uint64_t outcomes[CORE_OUTCOME_COUNT];
  uint64_t rejected_queue_full;
  uint64_t rejected_no_worker; /* no worker serves the model */
  uint64_t rejected_context;   /* longer than every worker's context */
  uint64_t rejected_queue_timeout;
  uint64_t rejected_unavailable; /* its workers unhealthy or draining */
  uint64_t blocks_routed;        /* prompt blocks of dispatched requests */
  uint64_t cached_blocks_routed; /* of which predicted cached there */
  uint64_t session_kept;         /* went to the worker holding the session */
  uint64_t session_moved;        /* went elsewhere (load, SLO or lost) */
  uint64_t cache_adds_dropped;   /* reported blocks beyond a worker's
                                    KV pool (kv_tokens / block_size) */
  /* Requests put to the placement step, placed or not: a queued request
   * is tried again when a request ends or a worker registers, and one the
   * policy deferred also on other messages, at most 64 times per
   * heartbeat interval. */
  uint64_t placement_attempts;
  /* Split requests (docs/disaggregation.md): prefill dispatches, their
   * handoffs to a decode worker, the decode dispatches that began
   * streaming (the split path taken end to end), and requests run whole
   * after their KV could not be pulled. */
  uint64_t split;
  uint64_t prefilled;
  uint64_t split_decoded;
  uint64_t kv_fallbacks;
} core_stats_t;

typedef struct core core_t;

/* Returns a core, or NULL with *err set (e.g. INFS_EUNKNOWN policy). */
core_t *core_new(const core_config_t *cfg, infs_time_t now, int *err);
void core_destroy(core_t **core);

/* Client events, the same for every front door (ZeroMQ and HTTP).
 *
 * Admission: a request is rejected at once when it is malformed, when
 * registered workers exist and none could ever serve it (its model, or
 * prompt plus output beyond every one's context), or when it finds no
 * worker with room and its class's queue is full. Otherwise it is placed,
 * or waits in its class's queue until a worker has room or queue_timeout
 * passes. With no worker registered at all, it waits too: workers that are
 * starting (or rejoining a restarted scheduler) take it when they come.
 * When workers that serve it are registered but every one is unhealthy or
 * draining, it waits no longer than the grace, heartbeat_interval times
 * heartbeat_miss, from its arrival or from when the last of them stopped
 * serving, whichever is later (a worker may recover within it); then it
 * is rejected with ERROR_REJECTED_UNAVAILABLE. */
void core_on_submit(core_t *c, infs_time_t now, const core_peer_t *client,
                    const core_request_t *req);
void core_on_cancel(core_t *c, infs_time_t now, const core_peer_t *client,
                    uint64_t request_id);
/* A client that lost its scheduler submits an open request again, with
 * the resume_tokens tokens (resume_text) it has received. A request the
 * core holds goes on: the client is sent what it missed, and an adopted
 * one is claimed (its chunks reach the client from now on). A request the
 * core does not know is admitted as a migration from there. Never a
 * duplicate. */
void core_on_resubmit(core_t *c, infs_time_t now, const core_peer_t *client,
                      const core_request_t *req, uint32_t resume_tokens,
                      const char *resume_text, size_t resume_len);

/* Worker events; request ids are the core's. passthrough is returned in the
 * CHUNK/DONE action so the caller can forward its own message.
 *
 * A chunk's text (borrowed, may be NULL) is kept with its request: when its
 * worker is lost, or lets its progress deadline pass, after tokens went out,
 * the request is dispatched again (within max_attempts) to another worker,
 * which continues the same stream from that text (a migration). */
/* A worker that kept requests running while it had no scheduler (this
 * one restarted) lists them in info->held. Each the core does not know is
 * adopted: open again, on that worker, under a new id that the REGISTERED
 * action tells the worker; it streams on, but its chunks are kept rather
 * than sent until its client resubmits it (core_on_resubmit), which proves
 * the client is connected and says what it has; a Done before then is kept
 * too. One no client claims within queue_timeout is cancelled. Each the
 * core already knows (its client resubmitted first) is cancelled on the
 * worker. */
/*
 * With info->key, the worker id is bound to the key that first registered
 * it, for the core's life: a Register of that id with another key is
 * refused, whether or not its holder is alive; the same key may register
 * it again (a restart). With or without keys, an id held by a connection
 * heard from within CORE_ID_HOLD_INTERVALS heartbeats is refused to any
 * other connection. */
void core_on_register(core_t *c, infs_time_t now, const core_peer_t *worker,
                      const core_worker_info_t *info);
void core_on_heartbeat(core_t *c, infs_time_t now, const core_peer_t *worker,
                       const core_load_t *load);
/* More text than CORE_TOKEN_BYTES_MAX a token of the request's max_tokens
 * in all fails the request (ERROR_BACKEND) and cancels it on the worker. */
void core_on_chunk(core_t *c, infs_time_t now, const core_peer_t *worker,
                   uint64_t request_id, uint32_t tokens, const char *text,
                   size_t text_len, const void *passthrough);
/* Tool calls and log probabilities a worker may send for a request, in
 * bytes a token of its max_tokens: twenty top log probabilities a token,
 * each with its token's text, fit. */
#define CORE_TOKEN_EXTRA_BYTES_MAX 4096u
/* core_on_chunk of a chunk that also carries extra_len bytes of tool calls
 * and log probabilities, which the front door keeps for an answer: past
 * CORE_TOKEN_EXTRA_BYTES_MAX a token of max_tokens in all, it fails the
 * same way. */
void core_on_chunk_parts(core_t *c, infs_time_t now, const core_peer_t *worker,
                         uint64_t request_id, uint32_t tokens,
                         const char *text, size_t text_len, size_t extra_len,
                         const void *passthrough);
/* figures: the Done's, kept when the Done cannot be forwarded yet, and
 * needed for the phase split of a split request (NULL: zeros). */
void core_on_done(core_t *c, infs_time_t now, const core_peer_t *worker,
                  uint64_t request_id, const core_done_t *figures,
                  const void *passthrough);
void core_on_worker_error(core_t *c, infs_time_t now, const core_peer_t *worker,
                          uint64_t request_id, int code, const char *message);
/* A prefill-phase dispatch ran its prompt: figures are its usage, queue,
 * TTFT and cost on the prefill worker, kv the handle to its KV (borrowed;
 * the core fills in the bytes and link for the decode worker it picks).
 * The request is dispatched to a decode worker, or queued for one; the
 * prefill worker keeps the KV until the core cancels the dispatch there
 * (when the decode worker streams, finishes or fails). */
void core_on_prefilled(core_t *c, infs_time_t now, const core_peer_t *worker,
                       uint64_t request_id, const core_done_t *figures,
                       const infs_kv_handle_t *kv);
/* Any other message from a worker counts as a sign of life. */
void core_on_worker_seen(core_t *c, infs_time_t now, const core_peer_t *worker);

/* Timers: loss detection and queue timeouts. Call at or after the deadline. */
void core_on_tick(core_t *c, infs_time_t now);
infs_time_t core_next_deadline(const core_t *c);

/* Ends every open request with a terminal answer (rejection for queued ones,
 * an error plus a worker cancel for running ones). */
void core_shutdown(core_t *c, infs_time_t now);

const core_action_t *core_actions(const core_t *c, size_t *n);
/* Clears the outbox and the decisions. */
void core_actions_clear(core_t *c);

/* With cfg.explain, every placement decision since the last
 * core_actions_clear, for a debug log: the best-scored candidates, chosen
 * first, with what the predictor said about each. */
#define CORE_EXPLAIN_TOP 4

typedef struct core_score {
  char worker_id[INFS_NAME_MAX];
  double score; /* the policy's own, lower wins; NAN when the policy
                   kept none for the chosen worker */
  bool ok;      /* balanced: meets the SLO without hurting others;
                   cache_affinity: not too loaded */
  uint32_t cached_blocks;
  uint32_t outstanding;
  double ttft_ms; /* predicted */
  double tpot_ms;
  double ttft_target_ms; /* the request's TTFT target there (its uncached
                            tokens depend on the worker's cache) */
  double cost_usd;
} core_score_t;

typedef struct core_decision {
  uint64_t request_id; /* the client's */
  infs_class_t cls;
  core_outcome_t outcome;
  bool placed;      /* scores[0] is the chosen worker */
  slo_t slo;         /* the request's */
  uint32_t blocks;   /* prompt blocks */
  size_t candidates; /* workers that passed the hard constraints */
  size_t n_scores;
  core_score_t scores[CORE_EXPLAIN_TOP];
} core_decision_t;

const core_decision_t *core_decisions(const core_t *c, size_t *n);
/* One line, e.g. "req 7 interactive -> sram-0 slo_met (3 candidates):
 * sram-0 score=... | gpu-0 ...". Returns what snprintf returns. */
int core_decision_format(const core_decision_t *d, char *buf, size_t len);

/* Read-only views for status and metrics. */
typedef struct core_worker_view {
  const char *worker_id;
  const char *model;
  const infs_profile_t *profile;
  infs_role_t role;
  uint32_t outstanding;
  uint32_t capacity;
  uint64_t requests;
  const core_load_t *load; /* cache arrays are NULL here */
  infs_time_t last_seen;   /* its latest message (a heartbeat at least) */
  infs_time_t registered_at;
  uint32_t cached_blocks;  /* prefix-cache blocks the core knows of */
} core_worker_view_t;

size_t core_worker_count(const core_t *c);
/* Fills the view of the first live worker at or after *cursor (start it at
 * 0) and moves the cursor past it; 0, or -1 when there is none. */
int core_worker_next(const core_t *c, size_t *cursor, core_worker_view_t *out);
size_t core_queued(const core_t *c);
/* The heartbeat interval told to workers. */
infs_time_t core_heartbeat_interval(const core_t *c);
/* The SLO of a class's requests that carry none. */
const slo_t *core_class_slo(const core_t *c, infs_class_t cls);
size_t core_open_requests(const core_t *c);
const core_stats_t *core_stats(const core_t *c);
const char *core_policy_name(const core_t *c);

#endif
