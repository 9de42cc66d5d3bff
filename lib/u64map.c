#include "lib/u64map.h"

#include <stdlib.h>

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (!p)
    abort();
  return p;
}

void u64map_init(u64map_t *m) {
  m->cap = 64;
  m->len = 0;
  m->keys = xcalloc(m->cap, sizeof *m->keys);
  m->vals = xcalloc(m->cap, sizeof *m->vals);
  m->used = xcalloc(m->cap, 1);
}

void u64map_free(u64map_t *m) {
  free(m->keys);
  free(m->vals);
  free(m->used);
  m->keys = NULL;
  m->vals = NULL;
  m->used = NULL;
  m->cap = m->len = 0;
}

static size_t slot_of(const u64map_t *m, uint64_t key) {
  return (size_t)(key ^ (key >> 32)) & (m->cap - 1);
}

static void grow(u64map_t *m) {
  u64map_t old = *m;
  m->cap = old.cap * 2;
  m->len = 0;
  m->keys = xcalloc(m->cap, sizeof *m->keys);
  m->vals = xcalloc(m->cap, sizeof *m->vals);
  m->used = xcalloc(m->cap, 1);
  for (size_t i = 0; i < old.cap; i++)
    if (old.used[i])
      u64map_put(m, old.keys[i], old.vals[i]);
  u64map_free(&old);
}

void u64map_put(u64map_t *m, uint64_t key, uint32_t val) {
  if ((m->len + 1) * 4 > m->cap * 3)
    grow(m);
  size_t i = slot_of(m, key);
  while (m->used[i] && m->keys[i] != key)
    i = (i + 1) & (m->cap - 1);
  if (!m->used[i]) {
    m->used[i] = 1;
    m->keys[i] = key;
    m->len++;
  }
  m->vals[i] = val;
}

int u64map_get(const u64map_t *m, uint64_t key, uint32_t *val) {
  size_t i = slot_of(m, key);
  while (m->used[i]) {
    if (m->keys[i] == key) {
      *val = m->vals[i];
      return 1;
    }
    i = (i + 1) & (m->cap - 1);
  }
  return 0;
}

int u64map_del(u64map_t *m, uint64_t key) {
  size_t mask = m->cap - 1;
  size_t i = slot_of(m, key);
  while (m->used[i] && m->keys[i] != key)
    i = (i + 1) & mask;
  if (!m->used[i])
    return 0;
  /* Shift later members of the probe run back so no lookup stops early. */
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (!m->used[j])
      break;
    size_t home = slot_of(m, m->keys[j]);
    int movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->used[i] = 0;
  m->len--;
  return 1;
}
