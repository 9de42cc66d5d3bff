/* cheapest: the lowest predicted marginal cost (worker time at the worker's
 * price, see predictor.h), latency ignored; at equal cost, the less loaded.
 * The bound on what a pool can save by routing alone. Large pools are
 * sampled (policy_sample). */
#include "policy.h"

#include <stdlib.h>

typedef struct cheap_state {
  uint64_t rng;
} cheap_state_t;

static int cheap_create(void **state) {
  cheap_state_t *s = calloc(1, sizeof *s);
  if (!s)
    return -1;
  s->rng = 0x5eed5eed5eed5eedull;
  *state = s;
  return 0;
}

static void cheap_destroy(void *state) {
  free(state);
}

static int cheap_pick(void *state, policy_ctx_t *x) {
  cheap_state_t *s = state;
  uint32_t pool[POLICY_SAMPLE_MAX];
  size_t n = policy_sample(x, &s->rng, pool);
  long best = -1;
  double best_cost = 0;
  for (size_t k = 0; k < n; k++) {
    size_t i = pool[k];
    prediction_t p;
    policy_predict(x, i, &p);
    policy_offer(x, i, p.cost_usd, true);
    if (best < 0 || p.cost_usd < best_cost ||
        (p.cost_usd == best_cost && policy_less_loaded(x, i, (size_t)best))) {
      best = (long)i;
      best_cost = p.cost_usd;
    }
  }
  x->outcome = CORE_OUTCOME_CHEAPEST;
  return (int)best;
}

const policy_ops_t policy_cheapest = {
    .name = "cheapest",
    .summary = "lowest predicted marginal cost, latency ignored",
    .create = cheap_create,
    .destroy = cheap_destroy,
    .pick = cheap_pick,
};
