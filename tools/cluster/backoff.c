#include "backoff.h"

uint64_t backoff_next(backoff_t *b, uint64_t ran_ms) {
  if (b->next_ms == 0 || ran_ms >= BACKOFF_RESET_MS)
    b->next_ms = BACKOFF_INITIAL_MS;
  uint64_t delay = b->next_ms;
  b->next_ms = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
  return delay;
}
