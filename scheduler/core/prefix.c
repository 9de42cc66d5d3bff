#include "prefix.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(64 % sizeof(prefix_entry_t) == 0,
               "prefix slots must tile cache lines");

/* A table of cap empty slots, line-aligned so that no slot straddles two
 * cache lines. */
static prefix_entry_t *new_slots(size_t cap) {
  prefix_entry_t *s = aligned_alloc(64, cap * sizeof *s);
  if (!s)
    abort();
  memset(s, 0, cap * sizeof *s);
  return s;
}

void prefix_init(prefix_index_t *x) {
  memset(x, 0, sizeof *x);
  x->cap = 1024;
  x->slots = new_slots(x->cap);
}

static uint32_t *holders(prefix_entry_t *e) {
  return e->cap <= PREFIX_INLINE ? e->h.inline_ : e->h.heap;
}

void prefix_free(prefix_index_t *x) {
  for (size_t i = 0; i < x->cap; i++)
    if (x->slots[i].n && x->slots[i].cap > PREFIX_INLINE)
      free(x->slots[i].h.heap);
  free(x->slots);
  free(x->depth);
  free(x->stamp);
  free(x->count);
  memset(x, 0, sizeof *x);
}

void prefix_reserve_workers(prefix_index_t *x, size_t n) {
  if (n <= x->workers_cap)
    return;
  x->depth = xrealloc(x->depth, n * sizeof *x->depth);
  x->stamp = xrealloc(x->stamp, n * sizeof *x->stamp);
  x->count = xrealloc(x->count, n * sizeof *x->count);
  for (size_t i = x->workers_cap; i < n; i++) {
    x->depth[i] = 0;
    x->stamp[i] = 0;
    x->count[i] = 0;
  }
  x->workers_cap = n;
}

/* Block hashes come from a 64-bit hash already: fold, do not rehash (as
 * prefix_prefetch does). */
static size_t home(const prefix_index_t *x, uint64_t hash) {
  return (size_t)(hash ^ (hash >> 32)) & (x->cap - 1);
}

static prefix_entry_t *find(const prefix_index_t *x, uint64_t hash) {
  size_t mask = x->cap - 1;
  for (size_t i = home(x, hash); x->slots[i].n; i = (i + 1) & mask)
    if (x->slots[i].hash == hash)
      return &x->slots[i];
  return NULL;
}

static void grow(prefix_index_t *x) {
  prefix_entry_t *old = x->slots;
  size_t old_cap = x->cap;
  x->cap *= 2;
  x->slots = new_slots(x->cap);
  size_t mask = x->cap - 1;
  for (size_t k = 0; k < old_cap; k++) {
    if (!old[k].n)
      continue;
    size_t i = home(x, old[k].hash);
    while (x->slots[i].n)
      i = (i + 1) & mask;
    x->slots[i] = old[k];
  }
  free(old);
}

/* Empties slot i and shifts later members of its probe run back, so that
 * no lookup stops early (no tombstones). */
static void delete_slot(prefix_index_t *x, size_t i) {
  size_t mask = x->cap - 1, j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (!x->slots[j].n)
      break;
    size_t h = home(x, x->slots[j].hash);
    bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
    if (movable) {
      x->slots[i] = x->slots[j];
      i = j;
    }
  }
  memset(&x->slots[i], 0, sizeof x->slots[i]);
  x->len--;
}

static void push_holder(prefix_entry_t *e, uint32_t worker) {
  if (e->n == e->cap) {
    uint32_t cap = e->cap * 2;
    uint32_t *h = xmalloc(cap * sizeof *h);
    memcpy(h, holders(e), e->n * sizeof *h);
    if (e->cap > PREFIX_INLINE)
      free(e->h.heap);
    e->h.heap = h;
    e->cap = cap;
  }
  holders(e)[e->n++] = worker;
}

/* Drops worker from e's holders; returns whether it was one. Holder lists
 * are short except for prefixes every worker shares, which are rarely
 * evicted, so a linear search is enough. */
static bool drop_holder(prefix_entry_t *e, uint32_t worker) {
  uint32_t *h = holders(e);
  for (uint32_t i = 0; i < e->n; i++) {
    if (h[i] != worker)
      continue;
    h[i] = h[--e->n];
    return true;
  }
  return false;
}

static bool has_holder(prefix_entry_t *e, uint32_t worker) {
  const uint32_t *h = holders(e);
  for (uint32_t i = 0; i < e->n; i++)
    if (h[i] == worker)
      return true;
  return false;
}

/* Frees slot i once its last holder has gone. */
static void release_slot(prefix_index_t *x, size_t i) {
  if (x->slots[i].cap > PREFIX_INLINE)
    free(x->slots[i].h.heap);
  delete_slot(x, i);
}

int prefix_add(prefix_index_t *x, uint32_t worker, uint64_t hash,
               uint32_t limit) {
  prefix_reserve_workers(x, (size_t)worker + 1);
  /* Grow first, so that the probe below can stop at the slot to fill. */
  if ((x->len + 1) * 4 > x->cap * 3)
    grow(x);
  size_t mask = x->cap - 1, i = home(x, hash);
  for (; x->slots[i].n; i = (i + 1) & mask) {
    prefix_entry_t *e = &x->slots[i];
    if (e->hash != hash)
      continue;
    if (has_holder(e, worker))
      return 0;
    if (x->count[worker] >= limit)
      return -1;
    push_holder(e, worker);
    x->count[worker]++;
    return 1;
  }
  if (x->count[worker] >= limit)
    return -1;
  prefix_entry_t *e = &x->slots[i];
  memset(e, 0, sizeof *e);
  e->hash = hash;
  e->cap = PREFIX_INLINE;
  x->len++;
  push_holder(e, worker);
  x->count[worker]++;
  return 1;
}

void prefix_remove(prefix_index_t *x, uint32_t worker, uint64_t hash) {
  prefix_entry_t *e = find(x, hash);
  if (!e || !drop_holder(e, worker))
    return;
  x->count[worker]--;
  if (e->n == 0)
    release_slot(x, (size_t)(e - x->slots));
}

void prefix_clear(prefix_index_t *x, uint32_t worker) {
  if (worker >= x->workers_cap)
    return;
  /* A deletion shifts later members of the probe run back into slot i, so
   * look at i again; members that wrap around from the table's start have
   * been visited already. */
  size_t i = 0;
  while (i < x->cap && x->count[worker]) {
    prefix_entry_t *e = &x->slots[i];
    if (e->n && drop_holder(e, worker)) {
      x->count[worker]--;
      if (e->n == 0) {
        release_slot(x, i);
        continue;
      }
    }
    i++;
  }
}

static uint32_t count_at(const prefix_index_t *x, uint64_t hash) {
  const prefix_entry_t *e = find(x, hash);
  return e ? e->n : 0;
}

uint32_t prefix_match(prefix_index_t *x, const uint64_t *blocks, size_t n) {
  if (++x->cur == 0) {
    /* The stamp wrapped: old stamps could look current. */
    memset(x->stamp, 0, x->workers_cap * sizeof *x->stamp);
    x->cur = 1;
  }
  size_t i = 0;
  uint32_t deepest = 0;
  while (i < n) {
    uint32_t c = count_at(x, blocks[i]);
    if (c == 0)
      break;
    /* The run of blocks with c holders ends at lo: gallop, then bisect.
     * Each probe is a likely cache miss in a large table; the gallop's
     * probes do not depend on each other, so fetch them all at once, and
     * fetch both possible next probes of the bisection ahead. */
    for (size_t p = i + 1, step = 2; p < n; p += step, step *= 2)
      prefix_prefetch(x, blocks[p]);
    size_t lo = i, step = 1;
    while (lo + step < n && count_at(x, blocks[lo + step]) == c) {
      lo += step;
      step *= 2;
    }
    size_t hi = lo + step < n ? lo + step : n;
    while (hi - lo > 1) {
      size_t mid = lo + (hi - lo) / 2;
      if (mid - lo > 1)
        prefix_prefetch(x, blocks[lo + (mid - lo) / 2]);
      if (hi - mid > 1)
        prefix_prefetch(x, blocks[mid + (hi - mid) / 2]);
      if (count_at(x, blocks[mid]) == c)
        lo = mid;
      else
        hi = mid;
    }
    prefix_entry_t *e = find(x, blocks[lo]);
    const uint32_t *h = holders(e);
    for (uint32_t k = 0; k < e->n; k++) {
      if (h[k] >= x->workers_cap)
        continue;
      x->depth[h[k]] = (uint32_t)lo + 1;
      x->stamp[h[k]] = x->cur;
    }
    deepest = (uint32_t)lo + 1;
    i = lo + 1;
  }
  return deepest;
}

uint32_t prefix_holders(const prefix_index_t *x, uint64_t hash) {
  return count_at(x, hash);
}
