#include "slots.h"

#include "xalloc.h"

#include <stdlib.h>

size_t slots_take(slots_t *s, size_t first, uint32_t *slot) {
  size_t had = s->cap;
  if (s->n_free == 0) {
    size_t cap = had ? had * 2 : first;
    s->free = xreallocarray(s->free, cap, sizeof *s->free);
    for (size_t i = cap; i > had; i--)
      s->free[s->n_free++] = (uint32_t)(i - 1);
    s->cap = cap;
  }
  *slot = s->free[--s->n_free];
  return had;
}

void slots_put(slots_t *s, uint32_t slot) {
  s->free[s->n_free++] = slot;
}

void slots_free(slots_t *s) {
  free(s->free);
  *s = (slots_t){0};
}
