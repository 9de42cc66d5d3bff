/* A continuous-batching engine over the step-time model of model/step.h
 * (vLLM's V1 scheduler and KV cache manager, in outline), stepped by the
 * caller's clock. The rules:
 *
 * Steps. The engine runs one step at a time. A step's members and duration
 * are fixed when it starts; what it produces is reported at its end, and
 * requests that arrive meanwhile join at the next step boundary. An idle
 * engine starts a step when engine_advance reaches the first new arrival, so
 * requests submitted at the same instant start together.
 *
 * Token budget. A step computes at most max_num_batched_tokens tokens:
 * first one for every running sequence past its prefill (decode), then
 * prefill chunks of the running sequences still prefilling, in admission
 * order, then chunks of waiting requests admitted into the batch. The step
 * is one forward pass over all of them, timed by the roofline of
 * model/step.h (step_ms), rounded to microseconds and at least 1.
 *
 * SLO-aware prefill (profile slo_aware_prefill, after Sarathi-Serve). The
 * step's prefill chunks are cut to what keeps it within the tightest
 * tpot_target_ms of the sequences decoding in it (step_prefill_room); the
 * first chunk of a step still gets one block, so prefills always progress.
 *
 * Admission. Waiting requests join the running batch strictly in FIFO order
 * at step boundaries, while the batch has fewer than max_batch sequences,
 * budget is left and KV has the blocks for the head's first chunk;
 * otherwise nobody behind it is admitted either, so a long prompt cannot be
 * starved by short ones. Nobody is admitted in a step that preempted.
 *
 * KV (paged). The pool holds kv_tokens / block_size blocks of block_size
 * tokens. A sequence holds the blocks its computed tokens fill, allocated as
 * the tokens are scheduled: a chunk's at the start of its step, a decode's
 * token when it starts a new block. (A token is in KV once a step has fed
 * it: the prompt, then each generated token but the last.) A block that
 * fills is cached under its hash: the client's hash of that prompt block
 * (each covers the whole prefix up to it), or, past the client's hashes and
 * for generated tokens, a hash chained from the previous block's and the
 * request's id, which only this request can hit again (after a
 * preemption). Cached blocks are reference-counted: a prefix shared by many
 * sequences is stored once. A block nobody uses goes to the free list,
 * keeping its contents and hash, least recently freed first; a sequence's
 * blocks are freed deepest first, so eviction trims prefixes from their
 * tails. Taking a block from the free list evicts whatever it cached.
 *
 * Prefix hits. At admission the longest run of leading full blocks found in
 * the cache is used as is (the free ones leave the free list), limited to
 * the blocks before the last token, which is always computed to produce
 * logits.
 *
 * Preemption (vLLM's recompute mode). When a running sequence needs a block
 * and the free list is empty, the most recently admitted running sequence
 * is sent back to the head of the queue and its blocks freed, repeatedly,
 * until the block is there (or the one that needed it is itself sent
 * back). On readmission it prefills its prompt and the tokens it already
 * generated again, as far as the cache does not hold them; the step that
 * completes that prefill produces its next token, reported as TOKENS since
 * the client has its first one. Tokens are never reported twice. The
 * oldest sequence always fits alone (prompt + max_tokens <= max_context,
 * which fits in the pool's whole blocks), so every admitted request
 * finishes.
 *
 * The step that completes a prefill produces that sequence's first token
 * (FIRST_TOKEN); it decodes from the next step on.
 *
 * Phases (prefill/decode disaggregation, docs/serving-model.md). A PREFILL
 * request runs as any other up to its first token, then reports PREFILLED
 * and leaves the batch, holding its blocks (they stay cached) until
 * engine_cancel releases them; held blocks are never preempted. A DECODE
 * request's prompt KV, all but the last token, is computed elsewhere and
 * arrives at kv_ready: until then it is not in the queue; then it joins
 * the queue's tail at the next step boundary, and is admitted in FIFO
 * order as any request is, when the blocks of its whole prompt fit (its
 * own prefix hits used as usual, the rest taken and filled with the
 * arrived KV). Its last prompt token is a one-token chunk in its first
 * step, which gives its first token. A preempted DECODE sequence recomputes
 * what it lost, as any other. Held blocks can leave no room for the oldest
 * sequence, which alone would always fit: when the queue's head cannot be
 * admitted into an empty batch, or the last running sequence has to
 * preempt itself, the engine stays idle until a cancel frees blocks.
 *
 * Events: FIRST_TOKEN or TOKENS with tokens = 1 for each sequence in each
 * step that produced a token (no coalescing), then DONE for a finished
 * sequence. A DONE's busy_share_s sums, over the steps the request took part
 * in, the step's duration divided by its number of members (decoding and
 * prefilling sequences). queued_us runs from submit to the first admission;
 * cached_tokens counts the cache hits of the admission whose prefill gave the
 * first token. A cancelled sequence leaves at once and frees its blocks, but
 * the running step keeps its planned length (the hardware is busy with it).
 */
#include "engine.h"

#include "infsched/errors.h"
#include "list.h"
#include "u64map.h"
#include "xalloc.h"
#include "step.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum seq_state {
  SEQ_ARRIVING, /* DECODE: in engine.arriving until its KV is there */
  SEQ_WAITING,
  SEQ_PREFILL,
  SEQ_DECODE,
  SEQ_HELD /* PREFILL done: out of the batch, holding its blocks */
} seq_state_t;

typedef struct seq {
  uint64_t id;
  uint32_t slot; /* index in engine.seqs */
  uint32_t prompt;
  uint32_t max_tokens;
  uint32_t tpot_target_ms; /* 0: none */
  infs_phase_t phase;
  bool kv_pending; /* DECODE: its arrived KV is not in blocks yet */
  /* Hashes of the sequence's full blocks: the client's first, then chained
   * ones, extended as blocks fill (or are looked up). */
  uint64_t *hashes;
  uint32_t n_hashes, hashes_cap;
  uint32_t *table; /* KV blocks held, in token order */
  uint32_t n_table, table_cap;
  uint32_t n_sealed; /* leading blocks whose fill has been handled */
  uint32_t tokens;   /* tokens in KV */
  seq_state_t state;
  uint32_t generated;
  uint32_t target; /* tokens to prefill: prompt, + generated after preemption */
  uint32_t filled; /* of target, in KV (cache hits included) */
  uint32_t cached; /* cache hits of the prefill that gave the first token */
  uint32_t step_fill; /* prompt tokens prefilled in the running step */
  bool step_decode;   /* decodes in the running step */
  bool admitted;      /* has been admitted at least once */
  bool first_sent;
  infs_time_t submitted_at;
  infs_time_t ready_at; /* may join a step: submit, or the KV's arrival */
  infs_time_t admitted_at;
  infs_time_t first_token_at;
  double busy_share_s;
  list_node_t queue; /* in engine.waiting while SEQ_WAITING, in
                        engine.arriving while SEQ_ARRIVING */
} seq_t;

typedef struct kv_block {
  uint64_t hash;
  uint32_t ref;     /* sequences holding it */
  uint32_t depth;   /* its place in the table that cached it */
  bool cached;      /* its hash is in engine.cache, pointing at it */
  list_node_t free; /* in engine.free_list while ref == 0 */
} kv_block_t;

/* One net change since the last clear, in the order it happened. Per hash
 * the cache's ops alternate (insert only when absent, evict only when
 * present), so a second op on a hash with a pending change undoes it: the
 * pending op is marked dead and the new one is not logged. */
typedef struct delta_op {
  uint64_t hash;
  bool add;
  bool dead;
} delta_op_t;

/* Growable arrays, kept across clears so that steady state allocates
 * nothing. */
#define VEC(T)                                                                 \
  struct {                                                                     \
    T *v;                                                                      \
    size_t n, cap;                                                             \
  }
#define VEC_RESERVE(a, need)                                                   \
  do {                                                                         \
    if ((a).cap < (need))                                                      \
      (a).v = xgrow((a).v, &(a).cap, (need), sizeof *(a).v);                    \
  } while (0)
#define VEC_PUSH(a, x)                                                         \
  do {                                                                         \
    VEC_RESERVE(a, (a).n + 1);                                                 \
    (a).v[(a).n++] = (x);                                                      \
  } while (0)

struct engine {
  infs_profile_t p;
  infs_time_t now; /* latest time seen */

  VEC(seq_t *) seqs;   /* open requests by slot; NULL: free slot */
  VEC(uint32_t) free;  /* free slots in seqs */
  u64map_t by_id;      /* id -> slot */
  list_node_t waiting; /* FIFO; preempted sequences go back to its head */
  uint32_t n_waiting;
  list_node_t arriving; /* DECODE requests by kv_ready */
  uint32_t n_arriving;
  seq_t **run; /* running batch in admission order, max_batch slots */
  uint32_t n_run;
  uint32_t n_held;
  /* Idle with a queue whose head does not fit beside the held blocks:
   * nothing starts until a cancel frees some, at wake_at. */
  bool stalled;
  infs_time_t wake_at;
  uint64_t backlog; /* prompt tokens still to prefill, queue included */

  kv_block_t *blocks; /* the KV pool */
  uint32_t n_blocks;
  uint32_t n_free;       /* blocks with ref == 0 */
  list_node_t free_list; /* those, least recently freed first */
  u64map_t cache;        /* block hash -> index in blocks */

  bool stepping;
  infs_time_t step_start;
  infs_time_t step_end;
  uint32_t step_members;

  infs_time_t busy_us; /* completed steps */
  uint64_t generated;
  uint64_t preemptions;

  VEC(engine_event_t) events;
  VEC(delta_op_t) delta_log;
  u64map_t delta_live; /* hash -> index in delta_log of its pending change */
  VEC(uint64_t) added;
  VEC(uint64_t) removed;
  size_t delta_compact_at;
};

/* Dead ops are squeezed out when the log reaches twice its size after the
 * last squeeze (and at least this many ops), so an unread log stays within
 * about twice the net change. */
#define DELTA_COMPACT_MIN 4096

/* xgrow() for a uint32_t-counted array. */
static void *grow32(void *v, uint32_t *cap, size_t need, size_t size) {
  size_t c = *cap;
  v = xgrow(v, &c, need, size);
  *cap = (uint32_t)c;
  return v;
}

static seq_t *seq_find(const engine_t *e, uint64_t id) {
  uint32_t slot;
  return u64map_get(&e->by_id, id, &slot) ? e->seqs.v[slot] : NULL;
}

static seq_t *queue_head(const engine_t *e) {
  return list_empty(&e->waiting) ? NULL
                                 : list_entry(e->waiting.next, seq_t, queue);
}

/* ---- cache delta ------------------------------------------------------- */

/* Drops dead ops from the log, keeping the order, and re-points the map. */
static void delta_compact(engine_t *e) {
  size_t w = 0;
  for (size_t i = 0; i < e->delta_log.n; i++) {
    delta_op_t op = e->delta_log.v[i];
    if (op.dead)
      continue;
    if (w != i)
      u64map_put(&e->delta_live, op.hash, (uint32_t)w);
    e->delta_log.v[w++] = op;
  }
  e->delta_log.n = w;
}

static void delta_push(engine_t *e, uint64_t hash, bool add) {
  uint32_t i;
  if (u64map_get(&e->delta_live, hash, &i)) {
    /* The opposite of the pending change: together they change nothing. */
    e->delta_log.v[i].dead = true;
    u64map_del(&e->delta_live, hash);
    return;
  }
  if (e->delta_log.n >= e->delta_compact_at) {
    delta_compact(e);
    size_t twice = 2 * e->delta_log.n;
    e->delta_compact_at = twice > DELTA_COMPACT_MIN ? twice : DELTA_COMPACT_MIN;
  }
  u64map_put(&e->delta_live, hash, (uint32_t)e->delta_log.n);
  delta_op_t op = {hash, add, false};
  VEC_PUSH(e->delta_log, op);
}

/* ---- KV blocks ----------------------------------------------------------- */

static uint32_t blocks_for(const engine_t *e, uint64_t tokens) {
  return (uint32_t)((tokens + e->p.block_size - 1) / e->p.block_size);
}

/* splitmix64's finaliser: well mixed, for the hashes no client gave. */
static uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* The hash of s's block j. Past the client's hashes each chains the
 * previous one with the request's id and the block's place, so that only
 * this request can hit it again. */
static uint64_t seq_hash(seq_t *s, uint32_t j) {
  while (s->n_hashes <= j) {
    uint32_t k = s->n_hashes;
    uint64_t prev = k ? s->hashes[k - 1] : 0;
    if (k == s->hashes_cap)
      s->hashes = grow32(s->hashes, &s->hashes_cap, k + 1, sizeof *s->hashes);
    s->hashes[k] = mix(prev ^ mix(s->id ^ mix(k + 1)));
    s->n_hashes++;
  }
  return s->hashes[j];
}

/* Takes the block at the head of the free list, evicting what it cached. */
static uint32_t block_take(engine_t *e) {
  assert(e->n_free > 0);
  kv_block_t *b = list_entry(e->free_list.next, kv_block_t, free);
  list_remove(&b->free);
  e->n_free--;
  if (b->cached) {
    u64map_del(&e->cache, b->hash);
    delta_push(e, b->hash, false);
    b->cached = false;
  }
  b->ref = 1;
  return (uint32_t)(b - e->blocks);
}

/* One more holder of a cached block, which leaves the free list if it was
 * there. */
static void block_hold(engine_t *e, uint32_t i) {
  kv_block_t *b = &e->blocks[i];
  if (b->ref++ == 0) {
    list_remove(&b->free);
    e->n_free--;
  }
}

/* One holder less. A block nobody holds goes to the free list: behind the
 * others when it caches something (least recently freed is evicted first),
 * in front when it does not, since reusing it loses nothing. */
static void block_release(engine_t *e, uint32_t i) {
  kv_block_t *b = &e->blocks[i];
  assert(b->ref > 0);
  if (--b->ref)
    return;
  if (b->cached)
    list_push_back(&e->free_list, &b->free);
  else
    list_push_front(&e->free_list, &b->free);
  e->n_free++;
}

/* Frees s's blocks, deepest first, so that eviction trims its prefix from
 * the tail. */
static void seq_release(engine_t *e, seq_t *s) {
  for (uint32_t j = s->n_table; j-- > 0;)
    block_release(e, s->table[j]);
  s->n_table = 0;
  s->n_sealed = 0;
  s->tokens = 0;
}

static void table_push(seq_t *s, uint32_t block) {
  if (s->n_table == s->table_cap)
    s->table = grow32(s->table, &s->table_cap, s->n_table + 1, sizeof *s->table);
  s->table[s->n_table++] = block;
}

/* Blocks s lacks to hold `tokens` tokens. */
static uint32_t blocks_short(const engine_t *e, const seq_t *s,
                             uint64_t tokens) {
  uint32_t need = blocks_for(e, tokens);
  return need > s->n_table ? need - s->n_table : 0;
}

static void seq_grow(engine_t *e, seq_t *s, uint64_t tokens) {
  for (uint32_t k = blocks_short(e, s, tokens); k > 0; k--)
    table_push(s, block_take(e));
}

/* Caches the blocks that s's tokens have filled since the last call. A
 * hash another block already caches leaves this one uncached. */
static void seq_seal(engine_t *e, seq_t *s) {
  uint32_t full = s->tokens / e->p.block_size, other;
  for (; s->n_sealed < full; s->n_sealed++) {
    uint32_t i = s->table[s->n_sealed];
    kv_block_t *b = &e->blocks[i];
    if (b->cached)
      continue; /* a prefix hit */
    uint64_t h = seq_hash(s, s->n_sealed);
    if (u64map_get(&e->cache, h, &other))
      continue;
    b->hash = h;
    b->depth = s->n_sealed;
    b->cached = true;
    u64map_put(&e->cache, h, i);
    delta_push(e, h, true);
  }
}

/* Leading blocks of s's target in the cache, at most those before its
 * last token (engine_hit_tokens); *free_hits counts the ones nobody
 * holds. A hash hits only at the place it was cached at: a prefix's hash
 * covers every block up to it, so one a client repeats within a prompt
 * would otherwise give the same block twice. */
static uint32_t cache_hits(engine_t *e, seq_t *s, uint32_t *free_hits) {
  uint32_t bs = e->p.block_size, k = 0, i;
  uint32_t most = engine_hit_tokens(s->target, UINT32_MAX, bs) / bs;
  *free_hits = 0;
  while (k < most && u64map_get(&e->cache, seq_hash(s, k), &i) &&
         e->blocks[i].depth == k) {
    *free_hits += e->blocks[i].ref == 0;
    k++;
  }
  return k;
}

/* ---- sequences --------------------------------------------------------- */

static void seq_free(engine_t *e, seq_t *s) {
  u64map_del(&e->by_id, s->id);
  e->seqs.v[s->slot] = NULL;
  VEC_PUSH(e->free, s->slot);
  free(s->hashes);
  free(s->table);
  free(s);
}

/* Sends the most recently admitted sequence back to the head of the queue,
 * its blocks freed (what they cache stays until evicted). */
static void preempt_last(engine_t *e) {
  seq_t *s = e->run[--e->n_run];
  if (s->state == SEQ_PREFILL)
    e->backlog -= s->target - s->filled;
  seq_release(e, s);
  s->target = s->prompt + s->generated;
  s->filled = 0;
  e->backlog += s->target;
  s->state = SEQ_WAITING;
  list_push_front(&e->waiting, &s->queue);
  e->n_waiting++;
  e->preemptions++;
}

/* Gives s the blocks to hold `tokens`, preempting from the tail of the
 * batch while the free list is short. Returns false when s itself was
 * preempted. */
static bool grow_or_preempt(engine_t *e, seq_t *s, uint64_t tokens,
                            bool *preempted) {
  uint32_t short_of = blocks_short(e, s, tokens);
  while (e->n_free < short_of) {
    seq_t *victim = e->run[e->n_run - 1];
    preempt_last(e);
    *preempted = true;
    if (victim == s)
      return false;
  }
  seq_grow(e, s, tokens);
  return true;
}

/* Adds one token to s; returns true when that was its last. */
static inline bool produce(engine_t *e, seq_t *s, infs_time_t t,
                           engine_event_kind_t kind) {
  s->generated++;
  e->generated++;
  engine_event_t ev = {.kind = kind,
                       .id = s->id,
                       .at = t,
                       .tokens = 1,
                       .generated = s->generated};
  VEC_PUSH(e->events, ev);
  return s->generated == s->max_tokens;
}

/* DONE or PREFILLED: what the request took. */
static void summary(engine_t *e, seq_t *s, infs_time_t t,
                    engine_event_kind_t kind) {
  engine_event_t ev = {
      .kind = kind,
      .id = s->id,
      .at = t,
      .cached_tokens = s->cached,
      .generated = s->generated,
      .queued_us = s->admitted_at - s->ready_at,
      .ttft_us = s->first_token_at - s->submitted_at,
      .transfer_us = s->ready_at - s->submitted_at,
      .busy_share_s = s->busy_share_s,
  };
  VEC_PUSH(e->events, ev);
}

infs_backend_usage_t engine_event_usage(const engine_event_t *e) {
  return (infs_backend_usage_t){
      .cached_tokens = e->cached_tokens,
      .generated_tokens = e->generated,
      .queue_us = e->queued_us,
      .ttft_us = e->ttft_us,
      .transfer_us = e->transfer_us,
      .busy_s = e->busy_share_s,
  };
}

static void finish(engine_t *e, seq_t *s, infs_time_t t) {
  summary(e, s, t, ENGINE_EV_DONE);
  seq_release(e, s);
  seq_free(e, s);
}

/* ---- steps ------------------------------------------------------------- */

/* llround(x) for the durations below without the library call: for
 * 0 <= x < 2^52 the fraction x - trunc(x) is exact, so this rounds the
 * same, halves away from zero. */
static infs_time_t round_us(double x) {
  if (!(x >= 0 && x < 4503599627370496.0))
    return (infs_time_t)llround(x);
  int64_t t = (int64_t)x; /* signed: one instruction each way */
  return (infs_time_t)(t + (x - (double)t >= 0.5));
}

/* What a step is being planned with: its work so far, the token budget
 * left for prefill chunks and the SLO cap on them. */
typedef struct plan {
  step_work_t work;
  uint64_t budget;
  double cap_ms;
  bool chunked; /* a chunk is in the step already */
} plan_t;

/* The chunk s could add to the step: the first of a step gets at least a
 * block, so that prefills progress under a target no step could meet. */
static uint64_t chunk_room(const engine_t *e, const plan_t *pl, uint64_t n,
                           uint64_t c) {
  return step_prefill_room(&e->p, &pl->work, n, c, pl->budget, pl->cap_ms,
                           pl->chunked ? 0 : e->p.block_size);
}

static void plan_chunk(plan_t *pl, seq_t *s, uint64_t n) {
  step_add_prefill(&pl->work, n, s->filled);
  s->step_fill = (uint32_t)n;
  pl->budget -= n;
  pl->chunked = true;
}

/* Takes the cached leading blocks of s (hits of them) into its table. */
static void hold_hits(engine_t *e, seq_t *s, uint32_t hits) {
  for (uint32_t j = 0; j < hits; j++) {
    uint32_t i = 0;
    int found = u64map_get(&e->cache, s->hashes[j], &i);
    assert(found);
    (void)found;
    block_hold(e, i);
    table_push(s, i);
  }
  s->n_sealed = hits;
}

static void start_running(engine_t *e, seq_t *s, infs_time_t t) {
  list_remove(&s->queue);
  e->n_waiting--;
  if (!s->admitted) {
    s->admitted = true;
    s->admitted_at = t;
  }
  s->state = SEQ_PREFILL;
  e->run[e->n_run++] = s;
}

/* Admits a DECODE request whose KV has arrived: the blocks of its whole
 * prompt, its own prefix hits used, the rest filled with what arrived, and
 * its last prompt token as a chunk of one. */
static bool admit_arrived(engine_t *e, plan_t *pl, seq_t *s, infs_time_t t) {
  uint32_t free_hits, hits = cache_hits(e, s, &free_hits);
  uint32_t behind = s->target - 1;
  if (chunk_room(e, pl, 1, behind) == 0 ||
      blocks_for(e, s->target) - hits > e->n_free - free_hits)
    return false;
  start_running(e, s, t);
  hold_hits(e, s, hits);
  s->cached = hits * e->p.block_size;
  seq_grow(e, s, s->target);
  s->tokens = s->filled = behind;
  seq_seal(e, s);
  s->kv_pending = false;
  plan_chunk(pl, s, 1);
  return true;
}

/* Admits the queue's head when its first chunk fits the step and KV;
 * returns false when it does not (and nobody behind it may go first). */
static bool admit_head(engine_t *e, plan_t *pl, infs_time_t t) {
  seq_t *s = queue_head(e);
  if (!s || e->n_run == e->p.max_batch || pl->budget == 0)
    return false;
  if (s->kv_pending)
    return admit_arrived(e, pl, s, t);
  uint32_t free_hits, hits = cache_hits(e, s, &free_hits);
  uint32_t hit_tokens = hits * e->p.block_size;
  uint64_t n = chunk_room(e, pl, s->target - hit_tokens, hit_tokens);
  if (n == 0 || blocks_for(e, hit_tokens + n) - hits > e->n_free - free_hits)
    return false;

  start_running(e, s, t);
  hold_hits(e, s, hits);
  s->tokens = s->filled = hit_tokens;
  e->backlog -= hit_tokens;
  if (!s->first_sent)
    s->cached = hit_tokens;
  seq_grow(e, s, hit_tokens + n);
  plan_chunk(pl, s, n);
  return true;
}

/* DECODE requests whose KV has arrived by t join the queue's tail. */
static void take_arrivals(engine_t *e, infs_time_t t) {
  while (!list_empty(&e->arriving)) {
    seq_t *s = list_entry(e->arriving.next, seq_t, queue);
    if (s->ready_at > t)
      break;
    list_remove(&s->queue);
    e->n_arriving--;
    s->state = SEQ_WAITING;
    list_push_back(&e->waiting, &s->queue);
    e->n_waiting++;
  }
}

/* Starts the next step at t, or leaves the engine idle when nothing runs.
 * Decode tokens come first in the budget; then chunks of the running
 * sequences still prefilling, in admission order; then admissions. */
static void step_plan(engine_t *e, infs_time_t t) {
  plan_t pl = {.budget = e->p.max_num_batched_tokens};
  take_arrivals(e, t);
  for (uint32_t i = 0; i < e->n_run; i++) {
    seq_t *s = e->run[i];
    if (s->state != SEQ_DECODE)
      continue;
    pl.budget--;
    if (e->p.slo_aware_prefill && s->tpot_target_ms &&
        (pl.cap_ms == 0 || s->tpot_target_ms < pl.cap_ms))
      pl.cap_ms = s->tpot_target_ms;
  }
  /* In admission order, so that whoever is preempted for room has not been
   * planned yet. */
  bool preempted = false;
  for (uint32_t i = 0; i < e->n_run; i++) {
    seq_t *s = e->run[i];
    if (s->state == SEQ_DECODE) {
      if (!grow_or_preempt(e, s, s->tokens + 1, &preempted))
        break;
      step_add_decode(&pl.work, s->tokens);
      s->step_decode = true;
      continue;
    }
    uint64_t n = pl.budget ? chunk_room(e, &pl, s->target - s->filled,
                                        s->filled)
                           : 0;
    if (n == 0)
      continue;
    if (!grow_or_preempt(e, s, s->filled + n, &preempted))
      break;
    plan_chunk(&pl, s, n);
  }
  while (!preempted && admit_head(e, &pl, t))
    ;

  uint32_t members = pl.work.seqs;
  e->stepping = members > 0;
  /* Idle with a queue: its head does not fit beside the held blocks, or
   * (having preempted everyone) the oldest sequence does not, which alone
   * it always would. Either way only a release can help. */
  e->stalled = !e->stepping && e->n_waiting > 0;
  if (!e->stepping)
    return;
  infs_time_t dur = round_us(1000.0 * step_ms(&e->p, &pl.work));
  e->step_start = t;
  e->step_end = t + (dur ? dur : 1);
  e->step_members = members;
}

static void step_finish(engine_t *e) {
  infs_time_t t = e->step_end;
  infs_time_t dur = t - e->step_start;
  /* Most steps have one member, and x / 1 is x: skip that division. */
  double share = (double)dur / 1e6;
  if (e->step_members != 1)
    share /= e->step_members;
  uint32_t w = 0;

  e->busy_us += dur;
  e->stepping = false;
  for (uint32_t i = 0; i < e->n_run; i++) {
    seq_t *s = e->run[i];
    bool last = false;
    if (s->step_decode) {
      s->step_decode = false;
      s->busy_share_s += share;
      s->tokens++;
      seq_seal(e, s);
      last = produce(e, s, t, ENGINE_EV_TOKENS);
    } else if (s->step_fill) {
      s->busy_share_s += share;
      s->filled += s->step_fill;
      s->tokens = s->filled;
      e->backlog -= s->step_fill;
      s->step_fill = 0;
      seq_seal(e, s);
      if (s->filled == s->target) {
        engine_event_kind_t kind = ENGINE_EV_TOKENS;
        if (!s->first_sent) {
          s->first_sent = true;
          s->first_token_at = t;
          kind = ENGINE_EV_FIRST_TOKEN;
        }
        s->state = SEQ_DECODE;
        last = produce(e, s, t, kind);
        if (s->phase == INFS_PHASE_PREFILL) {
          summary(e, s, t, ENGINE_EV_PREFILLED);
          s->state = SEQ_HELD;
          e->n_held++;
          continue;
        }
      }
    }
    if (last)
      finish(e, s, t);
    else
      e->run[w++] = s;
  }
  e->n_run = w;
}

/* ---- public ------------------------------------------------------------ */

engine_t *engine_new(const infs_profile_t *p, infs_time_t now) {
  infs_profile_t copy = *p;
  const char *field;
  char why[160];

  if (copy.max_num_batched_tokens == 0)
    copy.max_num_batched_tokens = INFS_PROFILE_DEFAULT_BATCHED_TOKENS;
  if (profile_validate(&copy, &field, why, sizeof why))
    return NULL;

  engine_t *e = xcalloc(1, sizeof *e);
  e->p = copy;
  e->now = now;
  u64map_init(&e->by_id);
  list_init(&e->waiting);
  list_init(&e->arriving);
  e->run = xcalloc(copy.max_batch, sizeof *e->run);
  u64map_init(&e->cache);
  list_init(&e->free_list);
  e->n_blocks = profile_kv_blocks(&copy);
  e->blocks = xcalloc(e->n_blocks, sizeof *e->blocks);
  for (uint32_t i = 0; i < e->n_blocks; i++)
    list_push_back(&e->free_list, &e->blocks[i].free);
  e->n_free = e->n_blocks;
  u64map_init(&e->delta_live);
  e->delta_compact_at = DELTA_COMPACT_MIN;
  return e;
}

void engine_destroy(engine_t **ep) {
  engine_t *e = *ep;
  if (!e)
    return;
  for (size_t i = 0; i < e->seqs.n; i++)
    if (e->seqs.v[i]) {
      free(e->seqs.v[i]->hashes);
      free(e->seqs.v[i]->table);
      free(e->seqs.v[i]);
    }
  free(e->seqs.v);
  free(e->free.v);
  u64map_free(&e->by_id);
  free(e->run);
  u64map_free(&e->cache);
  free(e->blocks);
  free(e->events.v);
  free(e->delta_log.v);
  u64map_free(&e->delta_live);
  free(e->added.v);
  free(e->removed.v);
  free(e);
  *ep = NULL;
}

/* Time of the next step boundary: the running step's end, or for an idle
 * engine the arrival of the first request it has not started (a stalled
 * queue's head waits for a cancel). */
static infs_time_t next_boundary(const engine_t *e) {
  if (e->stepping)
    return e->step_end;
  infs_time_t t = INFS_TIME_NEVER;
  seq_t *head = queue_head(e);
  if (head && !e->stalled)
    t = head->ready_at > e->wake_at ? head->ready_at : e->wake_at;
  if (!list_empty(&e->arriving)) {
    seq_t *a = list_entry(e->arriving.next, seq_t, queue);
    if (a->ready_at < t)
      t = a->ready_at;
  }
  return t;
}

/* Runs the step boundaries before now, and at now too when `inclusive`.
 * Submit and cancel leave the boundary at now to engine_advance, so that
 * every request submitted at now joins the step that starts then. */
static void run_boundaries(engine_t *e, infs_time_t now, bool inclusive) {
  infs_time_t t;
  while ((t = next_boundary(e)) < now || (inclusive && t == now)) {
    if (e->stepping)
      step_finish(e);
    step_plan(e, t);
  }
  if (now > e->now)
    e->now = now;
}

void engine_advance(engine_t *e, infs_time_t now) {
  run_boundaries(e, now, true);
}

int engine_submit(engine_t *e, infs_time_t now, const engine_request_t *r) {
  seq_t *s;

  run_boundaries(e, now, false);
  if (r->prompt_tokens == 0 || r->max_tokens == 0 ||
      (r->phase != INFS_PHASE_FULL && r->phase != INFS_PHASE_PREFILL &&
       r->phase != INFS_PHASE_DECODE))
    return -EINVAL;
  uint32_t out = r->phase == INFS_PHASE_PREFILL ? 1 : r->max_tokens;
  if ((uint64_t)r->prompt_tokens + out > e->p.max_context)
    return INFS_ECONTEXT;
  if (seq_find(e, r->id))
    return INFS_EDUPLICATE;

  s = xcalloc(1, sizeof *s);
  s->id = r->id;
  s->prompt = r->prompt_tokens;
  s->max_tokens = r->max_tokens;
  s->tpot_target_ms = r->tpot_target_ms;
  s->phase = r->phase;
  /* Only full blocks can be shared; a hash for a partial tail is ignored. */
  size_t full = r->prompt_tokens / e->p.block_size;
  uint32_t given = (uint32_t)(r->n_blocks < full ? r->n_blocks : full);
  if (given) {
    s->hashes = grow32(NULL, &s->hashes_cap, given, sizeof *s->hashes);
    memcpy(s->hashes, r->blocks, given * sizeof *s->hashes);
    s->n_hashes = given;
  }
  s->target = s->prompt;
  s->submitted_at = s->ready_at = e->now;
  if (e->free.n) {
    s->slot = e->free.v[--e->free.n];
    e->seqs.v[s->slot] = s;
  } else {
    s->slot = (uint32_t)e->seqs.n;
    VEC_PUSH(e->seqs, s);
  }
  u64map_put(&e->by_id, s->id, s->slot);
  if (s->phase == INFS_PHASE_DECODE) {
    /* Only its last prompt token is computed here. */
    s->kv_pending = true;
    e->backlog += 1;
    if (r->kv_ready > e->now) {
      s->ready_at = r->kv_ready;
      s->state = SEQ_ARRIVING;
      list_node_t *at = e->arriving.prev;
      while (at != &e->arriving &&
             list_entry(at, seq_t, queue)->ready_at > s->ready_at)
        at = at->prev;
      list_push_front(at, &s->queue); /* i.e. just after `at` */
      e->n_arriving++;
      return 0;
    }
  } else {
    e->backlog += s->target;
  }
  s->state = SEQ_WAITING;
  list_push_back(&e->waiting, &s->queue);
  e->n_waiting++;
  return 0;
}

int engine_cancel(engine_t *e, infs_time_t now, uint64_t id) {
  seq_t *s;

  run_boundaries(e, now, false);
  s = seq_find(e, id);
  if (!s)
    return -ENOENT;
  if (s->state == SEQ_ARRIVING) {
    list_remove(&s->queue);
    e->n_arriving--;
    e->backlog -= 1;
  } else if (s->state == SEQ_WAITING) {
    list_remove(&s->queue);
    e->n_waiting--;
    e->backlog -= s->kv_pending ? 1 : s->target;
  } else if (s->state == SEQ_HELD) {
    seq_release(e, s);
    e->n_held--;
  } else {
    /* The running step keeps its planned length: the hardware is busy with
     * it either way. Only the sequence leaves. */
    uint32_t i = 0;
    while (e->run[i] != s)
      i++;
    memmove(&e->run[i], &e->run[i + 1], (e->n_run - i - 1) * sizeof *e->run);
    e->n_run--;
    seq_release(e, s);
    if (s->state == SEQ_PREFILL)
      e->backlog -= s->target - s->filled;
  }
  seq_free(e, s);
  /* Freed blocks, or a new head, may let the queue move. */
  if (e->stalled) {
    e->stalled = false;
    e->wake_at = e->now;
  }
  return 0;
}

infs_time_t engine_next_event(const engine_t *e) {
  return next_boundary(e);
}

const engine_event_t *engine_events(const engine_t *e, size_t *n) {
  *n = e->events.n;
  return e->events.v;
}

void engine_events_clear(engine_t *e) {
  e->events.n = 0;
}

void engine_load(const engine_t *e, infs_time_t now, engine_load_t *out) {
  infs_time_t busy = e->busy_us;
  if (e->stepping && now > e->step_start)
    busy += (now < e->step_end ? now : e->step_end) - e->step_start;
  *out = (engine_load_t){
      .queued = e->n_waiting + e->n_arriving,
      .running = e->n_run,
      .held = e->n_held,
      .kv_used = (uint64_t)(e->n_blocks - e->n_free) * e->p.block_size,
      .kv_total = (uint64_t)e->n_blocks * e->p.block_size,
      .prefill_backlog_tokens = e->backlog,
      .busy_s = (double)busy / 1e6,
      .generated_tokens = e->generated,
      .preemptions = e->preemptions,
  };
}

void engine_cache_delta(engine_t *e, const uint64_t **added, size_t *n_added,
                        const uint64_t **removed, size_t *n_removed) {
  e->added.n = 0;
  e->removed.n = 0;
  for (size_t i = 0; i < e->delta_log.n; i++) {
    const delta_op_t *op = &e->delta_log.v[i];
    if (op->dead)
      continue;
    if (op->add)
      VEC_PUSH(e->added, op->hash);
    else
      VEC_PUSH(e->removed, op->hash);
  }
  *added = e->added.v;
  *n_added = e->added.n;
  *removed = e->removed.v;
  *n_removed = e->removed.n;
}

void engine_cache_delta_clear(engine_t *e) {
  /* Every pending change is in the map: empty it at once when that costs
   * less than a deletion each. */
  if (e->delta_live.len * 16 >= e->delta_live.cap)
    u64map_clear(&e->delta_live);
  else
    for (size_t i = 0; i < e->delta_log.n; i++)
      if (!e->delta_log.v[i].dead)
        u64map_del(&e->delta_live, e->delta_log.v[i].hash);
  e->delta_log.n = 0;
  e->added.n = 0;
  e->removed.n = 0;
  e->delta_compact_at = DELTA_COMPACT_MIN;
}

size_t engine_cache_snapshot(const engine_t *e, uint64_t *out, size_t cap) {
  size_t i = 0;
  for (const list_node_t *n = e->free_list.next; n != &e->free_list;
       n = n->next) {
    const kv_block_t *b = list_entry(n, const kv_block_t, free);
    if (!b->cached)
      continue;
    if (i < cap)
      out[i] = b->hash;
    i++;
  }
  for (uint32_t k = 0; k < e->n_blocks; k++) {
    const kv_block_t *b = &e->blocks[k];
    if (!b->cached || b->ref == 0)
      continue;
    if (i < cap)
      out[i] = b->hash;
    i++;
  }
  return i;
}
