/* round_robin: the next worker after the previous pick, in registry order;
 * what a Kubernetes Service or plain nginx upstream does. */
#include "policy.h"

#include <stdlib.h>

typedef struct rr_state {
  uint32_t last; /* registry index of the previous pick */
  bool started;
} rr_state_t;

static int rr_create(void **state) {
  *state = calloc(1, sizeof(rr_state_t));
  return *state ? 0 : -1;
}

static void rr_destroy(void *state) {
  free(state);
}

static int rr_pick(void *state, policy_ctx_t *x) {
  rr_state_t *s = state;
  const uint32_t *cands = x->cands;
  size_t n = x->n;
  size_t pick = 0;
  /* Candidates come in registry order: take the first past the last pick. */
  if (s->started)
    for (size_t i = 0; i < n; i++)
      if (cands[i] > s->last) {
        pick = i;
        break;
      }
  s->last = cands[pick];
  s->started = true;
  x->outcome = CORE_OUTCOME_TURN;
  policy_offer(x, pick, 0, true);
  return (int)pick;
}

const policy_ops_t policy_round_robin = {
    .name = "round_robin",
    .summary = "each worker in turn",
    .create = rr_create,
    .destroy = rr_destroy,
    .pick = rr_pick,
};
