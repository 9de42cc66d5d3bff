/* A continuous-batching engine over the profile timing model (vLLM-style),
 * stepped by the caller's clock. The rules:
 *
 * Steps. The engine runs one step at a time. A step's members and duration
 * are fixed when it starts; what it produces is reported at its end, and
 * requests that arrive meanwhile join at the next step boundary. An idle
 * engine starts a step when engine_advance reaches the first new arrival, so
 * requests submitted at the same instant start together.
 *
 * Admission. Waiting requests join the running batch strictly in FIFO order
 * at step boundaries. The head is admitted when the batch has fewer than
 * max_batch sequences and KV has room for everything it must prefill plus
 * the token that prefill produces; otherwise nobody behind it is admitted
 * either, so a long prompt cannot be starved by short ones.
 *
 * KV. A running sequence holds KV for its context, prompt + tokens generated
 * so far. Room for the token a step will produce is taken when the step
 * starts (at admission for the prefill's token) and freed on completion.
 *
 * A step (chunked prefill riding along with decode, as in vLLM and Sarathi):
 * every running sequence past its prefill decodes one token; sequences still
 * prefilling share a budget of max_num_batched_tokens prompt tokens, taken in admission
 * order. The step is one forward pass over all of them, timed by the
 * roofline of model/step.h: each decode adds one token behind its context,
 * each prefill piece n_i tokens behind the c_i already in KV, and
 *
 *   step_us = 1000 * step_ms(decodes + pieces)
 *
 * rounded to microseconds and at least 1. The step that completes a prefill
 * produces that sequence's first token (FIRST_TOKEN); it decodes from the
 * next step on. So one request of P uncached prompt tokens and G output
 * tokens on an idle engine takes ceil(P / max_num_batched_tokens) prefill steps plus
 * G - 1 decode steps at batch 1.
 *
 * Preemption (vLLM's recompute mode). When a step's decode tokens do not fit
 * in KV, the most recently admitted sequence is sent back to the head of the
 * queue and its KV freed, repeatedly, until they fit. On readmission it
 * prefills its prompt and the tokens it already generated again (the prefix
 * cache may cover part of the prompt); the step that completes that prefill
 * produces its next token, reported as TOKENS since the client has its first
 * one. Tokens are never reported twice. The oldest sequence always fits
 * alone (prompt + max_tokens <= max_context <= kv_tokens), so every admitted
 * request finishes.
 *
 * Prefix cache. An LRU set of prompt block hashes, prefix_cache_blocks large.
 * At admission the longest run of the prompt's leading blocks found in the
 * cache is served from it (at most prompt - 1 tokens: the last one is always
 * computed to produce logits). A request's blocks are inserted when its
 * prefill completes. A prompt's blocks are touched deepest first, so its
 * first block becomes the most recently used and eviction trims prefixes
 * from their tails, as a radix-tree cache does. The cache models blocks kept
 * after their requests leave; it is separate from the KV accounting above.
 *
 * Events: FIRST_TOKEN or TOKENS with tokens = 1 for each sequence in each
 * step that produced a token (no coalescing), then DONE for a finished
 * sequence. A DONE's busy_share_s sums, over the steps the request took part
 * in, the step's duration divided by its number of members (decoding and
 * prefilling sequences). queued_us runs from submit to the first admission;
 * cached_tokens counts the cache hits of the admission whose prefill gave the
 * first token. A cancelled sequence leaves at once and frees its KV, but the
 * running step keeps its planned length (the hardware is busy with it).
 */
#include "model/engine.h"

#include "infsched/errors.h"
#include "lib/list.h"
#include "lib/u64map.h"
#include "model/step.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum seq_state { SEQ_WAITING, SEQ_PREFILL, SEQ_DECODE } seq_state_t;

typedef struct seq {
  uint64_t id;
  uint32_t slot; /* index in engine.seqs */
  uint32_t prompt;
  uint32_t max_tokens;
  uint32_t tpot_target_ms; /* 0: none */
  uint64_t *blocks; /* owned copy of the full blocks' hashes */
  uint32_t n_blocks;
  seq_state_t state;
  uint32_t generated;
  uint32_t target; /* tokens to prefill: prompt, + generated after preemption */
  uint32_t filled; /* of target, in KV (cache hits included) */
  uint32_t cached; /* cache hits of the prefill that gave the first token */
  uint32_t kv;     /* KV tokens held, including the current step's token */
  uint32_t step_fill; /* prompt tokens prefilled in the running step */
  bool step_decode;   /* decodes in the running step */
  bool admitted;      /* has been admitted at least once */
  bool first_sent;
  infs_time_t submitted_at;
  infs_time_t admitted_at;
  infs_time_t first_token_at;
  double busy_share_s;
  /* The cache's LRU generation right after this sequence's lookup, and the
   * block its run of hits starts with (NULL without hits): while the
   * generation is unchanged that run is the LRU's tail, in touch order. */
  uint64_t lru_gen;
  struct cache_block *run_head;
  uint32_t run_len;
  list_node_t queue; /* in engine.waiting while SEQ_WAITING */
} seq_t;

typedef struct cache_block {
  uint64_t hash;
  uint64_t touched; /* engine.lru_gen its latest cache_touch gave it */
  list_node_t lru;  /* in engine.lru, or in engine.free_blocks when unused */
} cache_block_t;

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
      (a).v = grow((a).v, &(a).cap, (need), sizeof *(a).v);                    \
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
  u64map_t by_id;      /* id_key(id) -> slot */
  list_node_t waiting; /* FIFO; preempted sequences go back to its head */
  uint32_t n_waiting;
  seq_t **run; /* running batch in admission order, max_batch slots */
  uint32_t n_run;
  uint64_t kv_used;
  uint64_t backlog; /* prompt tokens still to prefill, queue included */

  bool stepping;
  infs_time_t step_start;
  infs_time_t step_end;
  uint32_t step_members;

  infs_time_t busy_us; /* completed steps */
  uint64_t generated;
  uint64_t preemptions;

  cache_block_t *pool;     /* prefix_cache_blocks nodes, allocated once */
  u64map_t cache;          /* block hash -> index in pool */
  list_node_t lru;         /* cached blocks, least recently used first */
  list_node_t free_blocks; /* pool nodes not in use */
  uint64_t lru_gen;        /* bumped by every change to the LRU order */

  VEC(cache_block_t *) hits; /* scratch for cache_lookup */

  VEC(engine_event_t) events;
  VEC(delta_op_t) delta_log;
  u64map_t delta_live; /* hash -> index in delta_log of its pending change */
  VEC(uint64_t) added;
  VEC(uint64_t) removed;
  size_t delta_compact_at;
};

/* How many blocks ahead the cache's loops fetch their table slots and
 * nodes: a prompt's blocks are hundreds of cache misses otherwise. */
#define CACHE_AHEAD 8

/* Dead ops are squeezed out when the log reaches twice its size after the
 * last squeeze (and at least this many ops), so an unread log stays within
 * about twice the net change. */
#define DELTA_COMPACT_MIN 4096

/* Running out of memory is not an expected state: abort (STYLE.md). */
static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p)
    abort();
  return p;
}

static void *grow(void *v, size_t *cap, size_t need, size_t size) {
  size_t c = *cap ? *cap : 16;
  while (c < need)
    c *= 2;
  v = realloc(v, c * size);
  if (!v)
    abort();
  *cap = c;
  return v;
}

/* u64map wants well-mixed keys and callers' ids are often sequential.
 * Multiplying by an odd constant is a bijection: distinct ids stay
 * distinct. */
static uint64_t id_key(uint64_t id) {
  return id * 0x9e3779b97f4a7c15ull;
}

static seq_t *seq_find(const engine_t *e, uint64_t id) {
  uint32_t slot;
  return u64map_get(&e->by_id, id_key(id), &slot) ? e->seqs.v[slot] : NULL;
}

static seq_t *queue_head(const engine_t *e) {
  return list_empty(&e->waiting) ? NULL
                                 : list_entry(e->waiting.next, seq_t, queue);
}

/* ---- prefix cache ---------------------------------------------------- */

static cache_block_t *cache_find(const engine_t *e, uint64_t hash) {
  uint32_t i;
  return u64map_get(&e->cache, hash, &i) ? &e->pool[i] : NULL;
}

static void cache_touch(engine_t *e, cache_block_t *b) {
  list_remove(&b->lru);
  list_push_back(&e->lru, &b->lru);
  b->touched = ++e->lru_gen;
}

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

/* Cached tokens at the head of s's prompt; touches the blocks it uses. */
static uint32_t cache_lookup(engine_t *e, seq_t *s) {
  uint32_t k = 0, n = s->n_blocks;
  cache_block_t *b;
  e->hits.n = 0;
  for (uint32_t j = 0; j < n && j < CACHE_AHEAD; j++)
    u64map_prefetch(&e->cache, s->blocks[j]);
  while (k < n) {
    if (k + CACHE_AHEAD < n)
      u64map_prefetch(&e->cache, s->blocks[k + CACHE_AHEAD]);
    if (!(b = cache_find(e, s->blocks[k])))
      break;
    VEC_PUSH(e->hits, b);
    k++;
  }
  for (uint32_t j = k; j-- > 0;) {
    if (j >= CACHE_AHEAD)
      __builtin_prefetch(e->hits.v[j - CACHE_AHEAD], 1);
    cache_touch(e, e->hits.v[j]);
  }
  s->lru_gen = e->lru_gen;
  s->run_head = k ? e->hits.v[k - 1] : NULL;
  s->run_len = k;
  uint64_t tokens = (uint64_t)k * e->p.block_size;
  return tokens < s->target ? (uint32_t)tokens : s->target - 1;
}

/* Touches s's blocks deepest first, inserting the missing ones. Usually
 * nothing has touched the cache since s's lookup, so the blocks it hit are
 * still the LRU's tail in the order this would touch them again: then only
 * the blocks behind them need work, each placed in front of that run, which
 * leaves the same order. Evictions cannot reach the run when the prompt fits
 * in the cache, as each eviction takes an older block. */
static void cache_insert(engine_t *e, const seq_t *s) {
  if (!e->pool)
    return;
  list_node_t *at = &e->lru; /* blocks go in front of it */
  uint32_t done = 0;         /* leading blocks already in place */
  if (s->run_head && s->lru_gen == e->lru_gen &&
      s->n_blocks <= e->p.prefix_cache_blocks) {
    at = &s->run_head->lru;
    done = s->run_len;
  }
  for (uint32_t j = s->n_blocks; j-- > done;) {
    if (j >= done + CACHE_AHEAD) {
      u64map_prefetch(&e->cache, s->blocks[j - CACHE_AHEAD]);
      u64map_prefetch(&e->delta_live, s->blocks[j - CACHE_AHEAD]);
    }
    cache_block_t *b = cache_find(e, s->blocks[j]);
    if (b) {
      /* A hash repeated within the prompt can name a block of the run,
       * which its later touch would leave where it is. */
      if (done && b->touched > s->lru_gen - done)
        continue;
      list_remove(&b->lru);
      list_push_back(at, &b->lru);
      continue;
    }
    if (list_empty(&e->free_blocks)) {
      cache_block_t *old = list_entry(e->lru.next, cache_block_t, lru);
      assert(&old->lru != at);
      /* Evictions come in LRU order: fetch the node after the next victim,
       * and the next victim's table slots. */
      list_node_t *next = old->lru.next;
      if (next != &e->lru) {
        const cache_block_t *nb = list_entry(next, cache_block_t, lru);
        __builtin_prefetch(next->next, 1);
        u64map_prefetch(&e->cache, nb->hash);
        u64map_prefetch(&e->delta_live, nb->hash);
      }
      list_remove(&old->lru);
      u64map_del(&e->cache, old->hash);
      delta_push(e, old->hash, false);
      list_push_back(&e->free_blocks, &old->lru);
    }
    b = list_entry(e->free_blocks.next, cache_block_t, lru);
    list_remove(&b->lru);
    b->hash = s->blocks[j];
    u64map_put(&e->cache, b->hash, (uint32_t)(b - e->pool));
    list_push_back(at, &b->lru);
    delta_push(e, b->hash, true);
  }
  e->lru_gen++;
}

/* ---- sequences --------------------------------------------------------- */

static void seq_free(engine_t *e, seq_t *s) {
  u64map_del(&e->by_id, id_key(s->id));
  e->seqs.v[s->slot] = NULL;
  VEC_PUSH(e->free, s->slot);
  free(s->blocks);
  free(s);
}

static void admit(engine_t *e, seq_t *s, infs_time_t t) {
  list_remove(&s->queue);
  e->n_waiting--;
  uint32_t cached = cache_lookup(e, s);
  s->filled = cached;
  e->backlog -= cached;
  if (!s->first_sent)
    s->cached = cached;
  if (!s->admitted) {
    s->admitted = true;
    s->admitted_at = t;
  }
  s->kv = s->target + 1;
  e->kv_used += s->kv;
  s->state = SEQ_PREFILL;
  e->run[e->n_run++] = s;
}

/* Sends the most recently admitted sequence back to the head of the queue. */
static void preempt_last(engine_t *e) {
  seq_t *s = e->run[--e->n_run];
  e->kv_used -= s->kv;
  s->kv = 0;
  if (s->state == SEQ_PREFILL)
    e->backlog -= s->target - s->filled;
  s->target = s->prompt + s->generated;
  s->filled = 0;
  e->backlog += s->target;
  s->state = SEQ_WAITING;
  list_push_front(&e->waiting, &s->queue);
  e->n_waiting++;
  e->preemptions++;
}

/* Adds one token to s; returns true when that was its last. */
static inline bool produce(engine_t *e, seq_t *s, infs_time_t t,
                           engine_event_kind_t kind) {
  s->generated++;
  e->generated++;
  engine_event_t ev = {.kind = kind, .id = s->id, .at = t, .tokens = 1};
  VEC_PUSH(e->events, ev);
  return s->generated == s->max_tokens;
}

static void finish(engine_t *e, seq_t *s, infs_time_t t) {
  engine_event_t ev = {
      .kind = ENGINE_EV_DONE,
      .id = s->id,
      .at = t,
      .cached_tokens = s->cached,
      .generated = s->generated,
      .queued_us = s->admitted_at - s->submitted_at,
      .ttft_us = s->first_token_at - s->submitted_at,
      .busy_share_s = s->busy_share_s,
  };
  VEC_PUSH(e->events, ev);
  e->kv_used -= s->kv;
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

/* Starts the next step at t, or leaves the engine idle when nothing runs. */
static void step_plan(engine_t *e, infs_time_t t) {
  uint64_t growth = 0;
  for (uint32_t i = 0; i < e->n_run; i++)
    growth += e->run[i]->state == SEQ_DECODE;
  while (e->kv_used + growth > e->p.kv_tokens) {
    if (e->run[e->n_run - 1]->state == SEQ_DECODE)
      growth--;
    preempt_last(e);
  }
  seq_t *head;
  while ((head = queue_head(e)) && e->n_run < e->p.max_batch &&
         e->kv_used + growth + head->target + 1 <= e->p.kv_tokens)
    admit(e, head, t);

  /* Decode tokens first, then prefill chunks in admission order, all from
   * one budget (vLLM's scheduler). */
  uint32_t budget = e->p.max_num_batched_tokens;
  step_work_t work = {0};
  double cap_ms = 0; /* the tightest TPOT target decoding, in SLO mode */
  for (uint32_t i = 0; i < e->n_run; i++) {
    seq_t *s = e->run[i];
    if (s->state != SEQ_DECODE || budget == 0)
      continue;
    step_add_decode(&work, s->kv);
    s->kv++;
    e->kv_used++;
    s->step_decode = true;
    budget--;
    if (e->p.slo_aware_prefill && s->tpot_target_ms &&
        (cap_ms == 0 || s->tpot_target_ms < cap_ms))
      cap_ms = s->tpot_target_ms;
  }
  bool chunked = false;
  for (uint32_t i = 0; i < e->n_run && budget > 0; i++) {
    seq_t *s = e->run[i];
    if (s->state != SEQ_PREFILL)
      continue;
    /* The first chunk of a step gets at least a block, so that prefills
     * progress even under a target no step could meet. */
    uint64_t n = step_prefill_room(&e->p, &work, s->target - s->filled,
                                   s->filled, budget, cap_ms,
                                   chunked ? 0 : e->p.block_size);
    if (n == 0)
      break;
    chunked = true;
    step_add_prefill(&work, n, s->filled);
    s->step_fill = (uint32_t)n;
    budget -= (uint32_t)n;
  }
  uint32_t members = work.seqs;
  e->stepping = members > 0;
  if (!e->stepping)
    return;
  infs_time_t dur = round_us(1000.0 * step_ms(&e->p, &work));
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
      last = produce(e, s, t, ENGINE_EV_TOKENS);
    } else if (s->step_fill) {
      s->busy_share_s += share;
      s->filled += s->step_fill;
      e->backlog -= s->step_fill;
      s->step_fill = 0;
      if (s->filled == s->target) {
        engine_event_kind_t kind = ENGINE_EV_TOKENS;
        if (!s->first_sent) {
          s->first_sent = true;
          s->first_token_at = t;
          kind = ENGINE_EV_FIRST_TOKEN;
        }
        cache_insert(e, s);
        s->state = SEQ_DECODE;
        last = produce(e, s, t, kind);
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
  e->run = xcalloc(copy.max_batch, sizeof *e->run);
  u64map_init(&e->cache);
  list_init(&e->lru);
  list_init(&e->free_blocks);
  if (copy.prefix_cache_blocks) {
    /* Line-aligned, so that no node straddles two cache lines. */
    size_t size = copy.prefix_cache_blocks * sizeof *e->pool;
    e->pool = aligned_alloc(64, (size + 63) / 64 * 64);
    if (!e->pool)
      abort();
    memset(e->pool, 0, size);
    for (uint32_t i = 0; i < copy.prefix_cache_blocks; i++)
      list_push_back(&e->free_blocks, &e->pool[i].lru);
  }
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
      free(e->seqs.v[i]->blocks);
      free(e->seqs.v[i]);
    }
  free(e->seqs.v);
  free(e->free.v);
  u64map_free(&e->by_id);
  free(e->run);
  u64map_free(&e->cache);
  free(e->pool);
  free(e->events.v);
  free(e->hits.v);
  free(e->delta_log.v);
  u64map_free(&e->delta_live);
  free(e->added.v);
  free(e->removed.v);
  free(e);
  *ep = NULL;
}

/* Time of the next step boundary: the running step's end, or for an idle
 * engine the arrival of the first request it has not started. */
static infs_time_t next_boundary(const engine_t *e) {
  if (e->stepping)
    return e->step_end;
  seq_t *head = queue_head(e);
  return head ? head->submitted_at : INFS_TIME_NEVER;
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
  if (r->prompt_tokens == 0 || r->max_tokens == 0)
    return -EINVAL;
  if ((uint64_t)r->prompt_tokens + r->max_tokens > e->p.max_context)
    return INFS_ECONTEXT;
  if (seq_find(e, r->id))
    return INFS_EDUPLICATE;

  s = xcalloc(1, sizeof *s);
  s->id = r->id;
  s->prompt = r->prompt_tokens;
  s->max_tokens = r->max_tokens;
  s->tpot_target_ms = r->tpot_target_ms;
  /* Only full blocks can be shared; a hash for a partial tail is ignored. */
  size_t full = r->prompt_tokens / e->p.block_size;
  s->n_blocks = (uint32_t)(r->n_blocks < full ? r->n_blocks : full);
  if (s->n_blocks) {
    s->blocks = xcalloc(s->n_blocks, sizeof *s->blocks);
    memcpy(s->blocks, r->blocks, s->n_blocks * sizeof *s->blocks);
  }
  s->state = SEQ_WAITING;
  s->target = s->prompt;
  s->submitted_at = e->now;
  if (e->free.n) {
    s->slot = e->free.v[--e->free.n];
    e->seqs.v[s->slot] = s;
  } else {
    s->slot = (uint32_t)e->seqs.n;
    VEC_PUSH(e->seqs, s);
  }
  u64map_put(&e->by_id, id_key(s->id), s->slot);
  list_push_back(&e->waiting, &s->queue);
  e->n_waiting++;
  e->backlog += s->target;
  return 0;
}

int engine_cancel(engine_t *e, infs_time_t now, uint64_t id) {
  seq_t *s;

  run_boundaries(e, now, false);
  s = seq_find(e, id);
  if (!s)
    return -ENOENT;
  if (s->state == SEQ_WAITING) {
    list_remove(&s->queue);
    e->n_waiting--;
    e->backlog -= s->target;
  } else {
    /* The running step keeps its planned length: the hardware is busy with
     * it either way. Only the sequence leaves. */
    uint32_t i = 0;
    while (e->run[i] != s)
      i++;
    memmove(&e->run[i], &e->run[i + 1], (e->n_run - i - 1) * sizeof *e->run);
    e->n_run--;
    e->kv_used -= s->kv;
    if (s->state == SEQ_PREFILL)
      e->backlog -= s->target - s->filled;
  }
  seq_free(e, s);
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
      .queued = e->n_waiting,
      .running = e->n_run,
      .kv_used = e->kv_used,
      .kv_total = e->p.kv_tokens,
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
  for (const list_node_t *n = e->lru.next; n != &e->lru; n = n->next, i++)
    if (i < cap)
      out[i] = list_entry(n, const cache_block_t, lru)->hash;
  return i;
}
