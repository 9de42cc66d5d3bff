/* least_loaded: fewest outstanding requests (HAProxy leastconn, Envoy least
 * request). Above P2C_MIN candidates it samples two at random and keeps the
 * less loaded (power of two choices), which spreads bursts as well as a full
 * scan without every scheduler herding onto the same idle worker. */
#include "policy.h"

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

static void ll_destroy(void *state) {
  free(state);
}

static int ll_pick(void *state, policy_ctx_t *x) {
  ll_state_t *s = state;
  size_t n = x->n;
  x->outcome = CORE_OUTCOME_LEAST_LOADED;
  if (n >= P2C_MIN) {
    size_t a = next_random(&s->rng) % n;
    size_t b = next_random(&s->rng) % (n - 1);
    if (b >= a)
      b++;
    policy_offer(x, a, policy_hot(x, a)->outstanding, true);
    policy_offer(x, b, policy_hot(x, b)->outstanding, true);
    return (int)(policy_less_loaded(x, b, a) ? b : a);
  }
  size_t start = s->rotate++ % n;
  size_t best = start;
  for (size_t k = 0; k < n; k++) {
    size_t i = (start + k) % n;
    policy_offer(x, i, policy_hot(x, i)->outstanding, true);
    if (k > 0 && policy_less_loaded(x, i, best))
      best = i;
  }
  return (int)best;
}

const policy_ops_t policy_least_loaded = {
    .name = "least_loaded",
    .summary = "fewest outstanding (power of two choices when large)",
    .create = ll_create,
    .destroy = ll_destroy,
    .pick = ll_pick,
};
