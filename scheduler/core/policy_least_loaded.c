/* least_loaded: fewest outstanding requests (HAProxy leastconn, Envoy least
 * request). Above P2C_MIN candidates it samples two at random and keeps the
 * less loaded (power of two choices), which spreads bursts as well as a full
 * scan without every scheduler herding onto the same idle worker. */
#include "scheduler/core/policy.h"

#include <stdlib.h>

#define P2C_MIN 16

typedef struct ll_state {
  uint64_t rng;
  uint32_t rotate; /* start of the scan, so ties do not all go to one worker */
} ll_state_t;

static uint64_t next_random(uint64_t *s) {
  /* splitmix64: deterministic for a given seed, as tests need. */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int ll_create(void **state) {
  ll_state_t *s = calloc(1, sizeof *s);
  if (!s)
    return -1;
  s->rng = 0x1f2e3d4c5b6a7988ull;
  *state = s;
  return 0;
}

static void ll_destroy(void *state) { free(state); }

/* Lower outstanding wins; at equal counts, the lower share of capacity. */
static bool less_loaded(const core_worker_t *a, const core_worker_t *b) {
  if (a->outstanding != b->outstanding)
    return a->outstanding < b->outstanding;
  return (uint64_t)a->outstanding * b->capacity <
         (uint64_t)b->outstanding * a->capacity;
}

static int ll_pick(void *state, const req_t *r, core_worker_t *const *cands,
                   size_t n, infs_time_t now) {
  (void)r;
  (void)now;
  ll_state_t *s = state;
  if (n >= P2C_MIN) {
    size_t a = next_random(&s->rng) % n;
    size_t b = next_random(&s->rng) % (n - 1);
    if (b >= a)
      b++;
    return (int)(less_loaded(cands[b], cands[a]) ? b : a);
  }
  size_t start = s->rotate++ % n;
  size_t best = start;
  for (size_t k = 1; k < n; k++) {
    size_t i = (start + k) % n;
    if (less_loaded(cands[i], cands[best]))
      best = i;
  }
  return (int)best;
}

const policy_ops_t policy_least_loaded = {
    .name = "least_loaded",
    .summary = "fewest outstanding requests (power of two choices when large)",
    .create = ll_create,
    .destroy = ll_destroy,
    .pick = ll_pick,
};
