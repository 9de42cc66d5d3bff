#include "u64map.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

void u64map_init(u64map_t *m) {
  m->cap = 64;
  m->len = 0;
  m->slots = xcalloc(m->cap, sizeof *m->slots);
}

void u64map_free(u64map_t *m) {
  free(m->slots);
  m->slots = NULL;
  m->cap = m->len = 0;
}

static size_t slot_of(const u64map_t *m, uint64_t key) {
  return u64map_home(m, key);
}

static void grow(u64map_t *m) {
  u64map_t old = *m;
  m->cap = old.cap * 2;
  m->slots = xcalloc(m->cap, sizeof *m->slots);
  size_t mask = m->cap - 1;
  for (size_t k = 0; k < old.cap; k++) {
    if (!old.slots[k].used)
      continue;
    size_t i = slot_of(m, old.slots[k].key);
    while (m->slots[i].used)
      i = (i + 1) & mask;
    m->slots[i] = old.slots[k];
  }
  free(old.slots);
}

void u64map_put(u64map_t *m, uint64_t key, uint32_t val) {
  if ((m->len + 1) * 4 > m->cap * 3)
    grow(m);
  size_t mask = m->cap - 1, i = slot_of(m, key);
  u64map_slot_t *s = m->slots;
  while (s[i].used && s[i].key != key)
    i = (i + 1) & mask;
  if (!s[i].used) {
    s[i].used = 1;
    s[i].key = key;
    m->len++;
  }
  s[i].val = val;
}

int u64map_del(u64map_t *m, uint64_t key) {
  size_t mask = m->cap - 1, i = slot_of(m, key);
  u64map_slot_t *s = m->slots;
  while (s[i].used && s[i].key != key)
    i = (i + 1) & mask;
  if (!s[i].used)
    return 0;
  /* Shift later members of the probe run back so no lookup stops early. */
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (!s[j].used)
      break;
    size_t home = slot_of(m, s[j].key);
    int movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      s[i] = s[j];
      i = j;
    }
  }
  s[i].used = 0;
  m->len--;
  return 1;
}

void u64map_clear(u64map_t *m) {
  memset(m->slots, 0, m->cap * sizeof *m->slots);
  m->len = 0;
}
