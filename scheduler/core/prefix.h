/* Which workers hold which prefix-cache blocks, as their heartbeats report
 * them: one hash map from block hash to the workers holding it, and a count
 * of blocks per worker (bounded by its KV pool's blocks, which hold the
 * cached prefixes).
 * Membership lives in the holder lists only, so that a heartbeat's changes
 * cost one table probe each; forgetting a worker (rare: it is lost or sends
 * its whole cache again) scans the table instead.
 *
 * Block hashes are chained (hash i names the whole prefix up to block i)
 * and workers evict prefixes from their tails, so a worker holding block i
 * holds every block before it. A request's cached prefix on a worker is
 * then one past the deepest of its blocks the worker holds, and along the
 * request's blocks the number of holders only falls. prefix_match finds the
 * runs of equal holder counts by galloping search and visits the holders of
 * each run's last block once: O(runs * log(blocks) + holders) per request,
 * whatever the pool size, and no allocation. The block table is open
 * addressing with the holder list in the slot, so that a lookup in a table
 * of millions of blocks costs one cache miss. */
#ifndef INFSCHED_PREFIX_H
#define INFSCHED_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Holders kept in the slot itself: with them a slot is 32 bytes, two to a
 * cache line. */
#define PREFIX_INLINE 4

typedef struct prefix_entry {
  uint64_t hash;
  uint32_t n;   /* holders; 0: an empty slot */
  uint32_t cap; /* <= PREFIX_INLINE: holders are inline */
  union {
    uint32_t inline_[PREFIX_INLINE];
    uint32_t *heap;
  } h;
} prefix_entry_t;

typedef struct prefix_index {
  prefix_entry_t *slots; /* linear probing, backward-shift deletion */
  size_t cap;            /* power of two */
  size_t len;
  /* Result of the last match, by worker index; valid where stamp == cur. */
  uint32_t *depth;
  uint32_t *stamp;
  uint32_t *count; /* blocks held, by worker index */
  size_t workers_cap;
  uint32_t cur;
} prefix_index_t;

void prefix_init(prefix_index_t *x);
void prefix_free(prefix_index_t *x);
/* Makes room for worker indices below n (call when the registry grows). */
void prefix_reserve_workers(prefix_index_t *x, size_t n);

/* Returns 1 when added, 0 when the worker holds it already, -1 when the
 * worker holds limit blocks already. */
int prefix_add(prefix_index_t *x, uint32_t worker, uint64_t hash,
               uint32_t limit);
void prefix_remove(prefix_index_t *x, uint32_t worker, uint64_t hash);
/* Forgets every block of the worker: O(table) when it holds any. */
void prefix_clear(prefix_index_t *x, uint32_t worker);

/* Matches a request's blocks against every worker; returns the deepest
 * match. Read each worker's with prefix_depth until the next match. */
uint32_t prefix_match(prefix_index_t *x, const uint64_t *blocks, size_t n);

static inline uint32_t prefix_depth(const prefix_index_t *x, uint32_t worker) {
  return worker < x->workers_cap && x->stamp[worker] == x->cur
             ? x->depth[worker]
             : 0;
}

/* Starts loading the slot where a lookup of hash begins, for loops that know
 * their next hashes ahead. */
static inline void prefix_prefetch(const prefix_index_t *x, uint64_t hash) {
  __builtin_prefetch(&x->slots[(size_t)(hash ^ (hash >> 32)) & (x->cap - 1)]);
}

/* Blocks the worker holds. */
static inline uint32_t prefix_count(const prefix_index_t *x, uint32_t worker) {
  return worker < x->workers_cap ? x->count[worker] : 0;
}

/* Holders of one block, for tests. */
uint32_t prefix_holders(const prefix_index_t *x, uint64_t hash);

#endif
