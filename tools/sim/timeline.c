#include "timeline.h"

#include "xalloc.h"

#include <stdlib.h>

void timeline_init(timeline_t *t) {
  *t = (timeline_t){0};
}

void timeline_free(timeline_t *t) {
  free(t->v);
  *t = (timeline_t){0};
}

static bool before(const timeline_event_t *a, const timeline_event_t *b) {
  return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

/* A 4-ary heap: half the depth of a binary one, and the four children of a
 * node share a cache line or two, which suits a pop-heavy queue. */
#define ARITY 4

void timeline_push(timeline_t *t, infs_time_t at, uint32_t kind, uint32_t arg) {
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 256;
    t->v = xrealloc(t->v, t->cap * sizeof *t->v);
  }
  timeline_event_t e = {at, t->pushed++, kind, arg};
  size_t i = t->n++;
  while (i > 0) {
    size_t up = (i - 1) / ARITY;
    if (!before(&e, &t->v[up]))
      break;
    t->v[i] = t->v[up];
    i = up;
  }
  t->v[i] = e;
}

infs_time_t timeline_next(const timeline_t *t) {
  return t->n ? t->v[0].at : INFS_TIME_NEVER;
}

bool timeline_pop(timeline_t *t, timeline_event_t *out) {
  if (t->n == 0)
    return false;
  *out = t->v[0];
  timeline_event_t last = t->v[--t->n];
  size_t i = 0, n = t->n;
  for (;;) {
    size_t first = ARITY * i + 1;
    if (first >= n)
      break;
    size_t end = first + ARITY < n ? first + ARITY : n, best = first;
    for (size_t c = first + 1; c < end; c++)
      if (before(&t->v[c], &t->v[best]))
        best = c;
    if (!before(&t->v[best], &last))
      break;
    t->v[i] = t->v[best];
    i = best;
  }
  if (n)
    t->v[i] = last;
  return true;
}
