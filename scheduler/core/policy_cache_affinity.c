/* cache_affinity: the worker holding most of the request's prefix blocks
 * (from heartbeats, or left there by the request's session), so that the
 * prefix is not prefilled again. A match is held back when its worker is
 * too loaded next to the least loaded one (cache_balance_abs/_rel, the
 * SGLang router's balance thresholds); the request then takes the best
 * match among the others, or the least loaded worker when none has a hit,
 * as the SGLang and Dynamo KV routers do. One pass over the pool reading
 * packed loads and prefix depths; no prediction. */
#include "scheduler/core/policy.h"

static int ca_pick(void *state, policy_ctx_t *x) {
  (void)state;
  /* Pass 1 finds the least loaded and the best match, and packs each
   * candidate's (blocks, outstanding) so that pass 2, which needs the
   * least loaded's count, reads one sequential array. */
  uint64_t *packed = x->scratch;
  size_t least = 0;
  uint32_t top = 0; /* the best match whatever the load */
  for (size_t i = 0; i < x->n; i++) {
    if (i > 0 && policy_less_loaded(x, i, least))
      least = i;
    uint32_t b = policy_cached_blocks(x, i);
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
