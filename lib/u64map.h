/* Open-addressing hash map from 64-bit keys to 32-bit values, with linear
 * probing and backward-shift deletion (no tombstones), so lookups stay short
 * under constant churn of request ids. Keys must already be well mixed. */
#ifndef INFSCHED_U64MAP_H
#define INFSCHED_U64MAP_H

#include <stdint.h>
#include <stddef.h>

typedef struct u64map {
  uint64_t *keys;
  uint32_t *vals;
  uint8_t *used;
  size_t cap; /* power of two */
  size_t len;
} u64map_t;

void u64map_init(u64map_t *m);
void u64map_free(u64map_t *m);
/* Inserts or replaces. */
void u64map_put(u64map_t *m, uint64_t key, uint32_t val);
/* Returns 1 and the value when present, else 0. */
int u64map_get(const u64map_t *m, uint64_t key, uint32_t *val);
/* Returns 1 when a key was removed. */
int u64map_del(u64map_t *m, uint64_t key);

#endif
