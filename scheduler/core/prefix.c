#include "scheduler/core/prefix.h"

#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p)
    abort();
  return p;
}

void prefix_init(prefix_index_t *x) {
  memset(x, 0, sizeof *x);
  x->cap = 1024;
  x->slots = calloc(x->cap, sizeof *x->slots);
  if (!x->slots)
    abort();
}

static uint32_t *holders(prefix_entry_t *e) {
  return e->cap <= 2 ? e->h.inline_ : e->h.heap;
}

void prefix_free(prefix_index_t *x) {
  for (size_t i = 0; i < x->cap; i++)
    if (x->slots[i].n && x->slots[i].cap > 2)
      free(x->slots[i].h.heap);
  free(x->slots);
  free(x->depth);
  free(x->stamp);
  memset(x, 0, sizeof *x);
}

void prefix_reserve_workers(prefix_index_t *x, size_t n) {
  if (n <= x->workers_cap)
    return;
  x->depth = xrealloc(x->depth, n * sizeof *x->depth);
  x->stamp = xrealloc(x->stamp, n * sizeof *x->stamp);
  for (size_t i = x->workers_cap; i < n; i++) {
    x->depth[i] = 0;
    x->stamp[i] = 0;
  }
  x->workers_cap = n;
}

/* Block hashes come from a 64-bit hash already: fold, do not rehash. */
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
  x->slots = calloc(x->cap, sizeof *x->slots);
  if (!x->slots)
    abort();
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

/* The entry of hash, created empty-handed (n = 0 until a holder is pushed,
 * which the caller does at once). */
static prefix_entry_t *find_or_add(prefix_index_t *x, uint64_t hash) {
  prefix_entry_t *e = find(x, hash);
  if (e)
    return e;
  if ((x->len + 1) * 4 > x->cap * 3)
    grow(x);
  size_t mask = x->cap - 1, i = home(x, hash);
  while (x->slots[i].n)
    i = (i + 1) & mask;
  e = &x->slots[i];
  memset(e, 0, sizeof *e);
  e->hash = hash;
  e->cap = 2;
  x->len++;
  return e;
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
    uint32_t *h = malloc(cap * sizeof *h);
    if (!h)
      abort();
    memcpy(h, holders(e), e->n * sizeof *h);
    if (e->cap > 2)
      free(e->h.heap);
    e->h.heap = h;
    e->cap = cap;
  }
  holders(e)[e->n++] = worker;
}

/* Drops worker from the holders of hash; frees the entry when it was the
 * last. Holder lists are short except for prefixes every worker shares,
 * which are rarely evicted, so a linear search is enough. */
static void drop_holder(prefix_index_t *x, uint64_t hash, uint32_t worker) {
  prefix_entry_t *e = find(x, hash);
  if (!e)
    return;
  uint32_t *h = holders(e);
  for (uint32_t i = 0; i < e->n; i++) {
    if (h[i] != worker)
      continue;
    h[i] = h[--e->n];
    break;
  }
  if (e->n > 0)
    return;
  if (e->cap > 2)
    free(e->h.heap);
  delete_slot(x, (size_t)(e - x->slots));
}

int prefix_add(prefix_index_t *x, u64map_t *set, uint32_t worker, uint64_t hash,
               uint32_t limit) {
  uint32_t unused;
  if (u64map_get(set, hash, &unused))
    return 0;
  if (set->len >= limit)
    return -1;
  u64map_put(set, hash, 0);
  push_holder(find_or_add(x, hash), worker);
  return 1;
}

void prefix_remove(prefix_index_t *x, u64map_t *set, uint32_t worker,
                   uint64_t hash) {
  if (u64map_del(set, hash))
    drop_holder(x, hash, worker);
}

void prefix_clear(prefix_index_t *x, u64map_t *set, uint32_t worker) {
  for (size_t i = 0; i < set->cap && set->len; i++) {
    if (!set->used[i])
      continue;
    drop_holder(x, set->keys[i], worker);
  }
  u64map_free(set);
  u64map_init(set);
}

static void prefetch(const prefix_index_t *x, uint64_t hash) {
  __builtin_prefetch(&x->slots[home(x, hash)]);
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
      prefetch(x, blocks[p]);
    size_t lo = i, step = 1;
    while (lo + step < n && count_at(x, blocks[lo + step]) == c) {
      lo += step;
      step *= 2;
    }
    size_t hi = lo + step < n ? lo + step : n;
    while (hi - lo > 1) {
      size_t mid = lo + (hi - lo) / 2;
      if (mid - lo > 1)
        prefetch(x, blocks[lo + (mid - lo) / 2]);
      if (hi - mid > 1)
        prefetch(x, blocks[mid + (hi - mid) / 2]);
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
