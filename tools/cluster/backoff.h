/* Restart back-off for supervised processes: the delay doubles after each
 * failure up to a cap, and starts over once a process has stayed up long
 * enough to count as healthy. Pure: times are passed in. */
#ifndef INFSCHED_CLUSTER_BACKOFF_H
#define INFSCHED_CLUSTER_BACKOFF_H

#include <stdint.h>

#define BACKOFF_INITIAL_MS 250
#define BACKOFF_MAX_MS 10000
#define BACKOFF_RESET_MS 30000

typedef struct backoff {
  uint64_t next_ms; /* delay the next restart gets; 0 before the first */
} backoff_t;

/* Delay before restarting a process that ran for ran_ms, and advances the
 * back-off for the restart after it. */
uint64_t backoff_next(backoff_t *b, uint64_t ran_ms);

#endif
