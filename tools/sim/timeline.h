/* The simulator's timeline: a min-heap of timed events. Events at the
 * same time come out in the order they were pushed, so a run is a function
 * of its inputs alone. */
#ifndef INFSCHED_SIM_TIMELINE_H
#define INFSCHED_SIM_TIMELINE_H

#include "infsched/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct timeline_event {
  infs_time_t at;
  uint64_t seq;  /* push order, breaks ties */
  uint32_t kind; /* the caller's event kind */
  uint32_t arg;  /* the caller's argument (a worker, a message slot) */
} timeline_event_t;

typedef struct timeline {
  timeline_event_t *v;
  size_t n;
  size_t cap;
  uint64_t pushed;
} timeline_t;

void timeline_init(timeline_t *t);
void timeline_free(timeline_t *t);
void timeline_push(timeline_t *t, infs_time_t at, uint32_t kind, uint32_t arg);
/* Time of the earliest event, or INFS_TIME_NEVER when empty. */
infs_time_t timeline_next(const timeline_t *t);
/* Removes the earliest event into out; false when empty. */
bool timeline_pop(timeline_t *t, timeline_event_t *out);

#endif
