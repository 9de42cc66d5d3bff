/* cache_affinity: the worker holding most of the request's prefix blocks
 * (from heartbeats, or left there by the request's session), so that the
 * prefix is not prefilled again, after SGLang's cache-aware router
 * (sgl-model-gateway, policies/cache_aware.rs). A match counts when it
 * holds more than cache_match_threshold of the request's blocks (SGLang's
 * cache_threshold, 0.3). A match is held back when its worker is too loaded
 * next to the least loaded one: more than cache_balance_abs outstanding
 * requests beyond it and more than cache_balance_rel times as many
 * (SGLang's balance_abs_threshold 64 and balance_rel_threshold 1.5); the
 * request then takes the best match among the others, or the least loaded
 * worker when none has a hit. SGLang tests the imbalance of the whole pool
 * (its busiest worker against its idlest) and, below the threshold, sends
 * the request to the worker with the smallest cache tree; here only the
 * matched worker's own load holds it back, and a request with no match
 * goes to the least loaded, as Dynamo's and llm-d's load terms would have
 * it. One pass over the pool reading packed loads and prefix depths; no
 * prediction. */
#include "policy.h"

static int ca_pick(void *state, policy_ctx_t *x) {
  (void)state;
  /* Pass 1 finds the least loaded and the best match, and packs each
   * candidate's (blocks, outstanding) so that pass 2, which needs the
   * least loaded's count, reads one sequential array. */
  uint64_t *packed = x->scratch;
  size_t least = 0;
  uint32_t top = 0; /* the best match whatever the load */
  /* Blocks a match must hold more than; none without hashes. */
  double need = x->cfg->cache_match_threshold * (double)x->r->spec.n_blocks;
  for (size_t i = 0; i < x->n; i++) {
    if (i > 0 && policy_less_loaded(x, i, least))
      least = i;
    uint32_t b = policy_cached_blocks(x, i);
    if (!((double)b > need))
      b = 0;
    if (b > top)
      top = b;
    packed[i] = (uint64_t)b << 32 | policy_hot(x, i)->outstanding;
  }
  long best = -1;
  uint64_t best_packed = 0;
  if (top) {
    uint32_t l = policy_hot(x, least)->outstanding;
    double rel = x->cfg->cache_balance_rel * l;
    uint64_t abs = (uint64_t)l + x->cfg->cache_balance_abs;
    for (size_t i = 0; i < x->n; i++) {
      uint64_t p = packed[i];
      uint32_t b = (uint32_t)(p >> 32), out = (uint32_t)p;
      if (b == 0)
        continue;
      bool ok = !(out > abs && out > rel);
      policy_offer(x, i, -(double)b, ok);
      if (!ok)
        continue;
      /* More blocks, then fewer outstanding, then capacity share. */
      uint32_t bb = (uint32_t)(best_packed >> 32);
      if (best < 0 || b > bb ||
          (b == bb && policy_less_loaded(x, i, (size_t)best))) {
        best = (long)i;
        best_packed = p;
      }
    }
  }
  if (best < 0) {
    x->outcome = top ? CORE_OUTCOME_CACHE_SPILL : CORE_OUTCOME_CACHE_MISS;
    policy_offer(x, least, 0, true);
    return (int)least;
  }
  x->outcome = (uint32_t)(best_packed >> 32) == top ? CORE_OUTCOME_CACHE_HIT
                                                    : CORE_OUTCOME_CACHE_SPILL;
  return (int)best;
}

const policy_ops_t policy_cache_affinity = {
    .name = "cache_affinity",
    .summary = "most cached prefix blocks; spills off overloaded workers",
    .pick = ca_pick,
};
