/* Open-addressing hash map from 64-bit keys to 32-bit values, with linear
 * probing and backward-shift deletion (no tombstones), so lookups stay short
 * under constant churn of request ids. The map mixes keys itself, so ids
 * counting up from 1 spread as well as hashes do. */
#ifndef INFSCHED_U64MAP_H
#define INFSCHED_U64MAP_H

#include <stddef.h>
#include <stdint.h>

/* Key, value and mark share a slot, so that a probe touches one cache
 * line. */
typedef struct u64map_slot {
  uint64_t key;
  uint32_t val;
  uint32_t used;
} u64map_slot_t;

typedef struct u64map {
  u64map_slot_t *slots;
  size_t cap; /* power of two */
  size_t len;
} u64map_t;

void u64map_init(u64map_t *m);
void u64map_free(u64map_t *m);
/* Inserts or replaces. */
void u64map_put(u64map_t *m, uint64_t key, uint32_t val);
/* Returns 1 when a key was removed. */
int u64map_del(u64map_t *m, uint64_t key);
/* Removes every key, keeping the capacity. */
void u64map_clear(u64map_t *m);

/* Fibonacci hashing: the product's high half, where every key bit counts. */
static inline size_t u64map_home(const u64map_t *m, uint64_t key) {
  return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (m->cap - 1);
}

/* Returns 1 and the value when present, else 0. Inline: the hot loops of
 * the engine's cache and the scheduler are lookups. */
static inline int u64map_get(const u64map_t *m, uint64_t key, uint32_t *val) {
  size_t mask = m->cap - 1, i = u64map_home(m, key);
  const u64map_slot_t *s = m->slots;
  for (; s[i].used; i = (i + 1) & mask) {
    if (s[i].key == key) {
      *val = s[i].val;
      return 1;
    }
  }
  return 0;
}

/* Starts loading the slot where a lookup of key begins, for loops that know
 * their next keys ahead. */
static inline void u64map_prefetch(const u64map_t *m, uint64_t key) {
  __builtin_prefetch(&m->slots[u64map_home(m, key)]);
}

#endif
