/* kv_cost: the lowest KV cost, after Dynamo's KV router
 * (ai-dynamo/dynamo, lib/kv-router/src/scheduling/selector.rs,
 * DefaultWorkerSelector::worker_logit; defaults from
 * lib/kv-router/src/scheduling/config.rs, KvRouterConfig::default). For
 * each candidate, in blocks of the worker's block size:
 *   prefill = (prompt tokens waiting for prefill there + the request's
 *              prompt) / block_size
 *   decode  = KV blocks in use there + the request's blocks
 *   cost    = kv_prefill_scale * max(prefill - kv_overlap_credit * cached, 0)
 *             + decode + kv_request_weight * outstanding requests
 * where cached is the request's leading blocks the worker holds. Defaults:
 * scale 1, credit 1, request weight 0, temperature 0. The lowest cost wins
 * (ties go to the first in a scan that starts one further each time); with
 * a temperature T > 0 the worker is drawn with probability proportional to
 * exp(-(cost - min) / ((max - min) * T)), Dynamo's softmax over costs
 * rescaled to their spread. Dynamo counts a block shared with a request
 * already running there once; the core does not know which blocks those
 * are, so every request's blocks count. No prediction: the cost is in
 * blocks, whatever the worker's speed. */
#include "policy.h"

#include "predictor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv_state {
  uint64_t rng;
  uint32_t rotate;
} kv_state_t;

static int kv_create(void **state) {
  kv_state_t *s = calloc(1, sizeof *s);
  if (!s)
    return -1;
  s->rng = 0xd1a3c0575eedull;
  *state = s;
  return 0;
}

static void kv_destroy(void *state) {
  free(state);
}

static double kv_cost(const policy_ctx_t *x, size_t i) {
  const core_worker_t *w = x->workers[x->cands[i]];
  const core_config_t *c = x->cfg;
  predictor_now_t now;
  predictor_now(&w->profile, &w->load, &w->since, &now);
  double bs = w->profile.block_size ? w->profile.block_size : 1;
  uint32_t prompt = x->r->spec.prompt_tokens;
  double prefill = ((double)now.backlog + prompt) / bs -
                   c->kv_overlap_credit * policy_cached_blocks(x, i);
  double decode = floor((double)now.kv / bs) + ceil(prompt / bs);
  return c->kv_prefill_scale * (prefill > 0 ? prefill : 0) + decode +
         c->kv_request_weight * policy_hot(x, i)->outstanding;
}

static int kv_pick(void *state, policy_ctx_t *x) {
  kv_state_t *st = state;
  size_t n = x->n, start = st->rotate++ % n, best = start;
  double *cost = (double *)x->scratch; /* n words, as policy.h gives */
  double lo = INFINITY, hi = -INFINITY;
  for (size_t k = 0; k < n; k++) {
    size_t i = (start + k) % n;
    cost[i] = kv_cost(x, i);
    policy_offer(x, i, cost[i], true);
    if (cost[i] < lo) {
      lo = cost[i];
      best = i;
    }
    if (cost[i] > hi)
      hi = cost[i];
  }
  x->outcome = CORE_OUTCOME_LOWEST_COST;
  double t = x->cfg->kv_temperature;
  if (!(t > 0) || !(hi > lo))
    return (int)best;
  double scale = 1.0 / ((hi - lo) * t), sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += exp(-(cost[i] - lo) * scale);
  double u = (double)(policy_random(&st->rng) >> 11) * 0x1.0p-53 * sum;
  for (size_t i = 0; i < n; i++) {
    u -= exp(-(cost[i] - lo) * scale);
    if (u < 0)
      return (int)i;
  }
  return (int)best;
}

const policy_ops_t policy_kv_cost = {
    .name = "kv_cost",
    .summary = "lowest prefill + decode blocks (Dynamo's KV router)",
    .create = kv_create,
    .destroy = kv_destroy,
    .pick = kv_pick,
};
