/* Which workers hold which prefix-cache blocks, as their heartbeats report
 * them: one hash map from block hash to the workers holding it, plus a set
 * per worker (bounded by its profile's prefix_cache_blocks) to apply
 * removals and to forget a worker at once.
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

#include "lib/u64map.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct prefix_entry {
  uint64_t hash;
  uint32_t n;   /* holders; 0: an empty slot */
  uint32_t cap; /* <= 2: holders are inline */
  union {
    uint32_t inline_[2];
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
  size_t workers_cap;
  uint32_t cur;
} prefix_index_t;

void prefix_init(prefix_index_t *x);
void prefix_free(prefix_index_t *x);
/* Makes room for worker indices below n (call when the registry grows). */
void prefix_reserve_workers(prefix_index_t *x, size_t n);

/* set is the worker's own (a u64map used as a set). Returns 1 when added,
 * 0 when already there, -1 when the set holds limit blocks already. */
int prefix_add(prefix_index_t *x, u64map_t *set, uint32_t worker, uint64_t hash,
               uint32_t limit);
void prefix_remove(prefix_index_t *x, u64map_t *set, uint32_t worker,
                   uint64_t hash);
/* Forgets every block of the worker; the set stays usable. */
void prefix_clear(prefix_index_t *x, u64map_t *set, uint32_t worker);

/* Matches a request's blocks against every worker; returns the deepest
 * match. Read each worker's with prefix_depth until the next match. */
uint32_t prefix_match(prefix_index_t *x, const uint64_t *blocks, size_t n);

static inline uint32_t prefix_depth(const prefix_index_t *x, uint32_t worker) {
  return worker < x->workers_cap && x->stamp[worker] == x->cur
             ? x->depth[worker]
             : 0;
}

/* Holders of one block, for tests. */
uint32_t prefix_holders(const prefix_index_t *x, uint64_t hash);

#endif
