/* weighted_score: the highest weighted sum of scores in 0..1, after llm-d's
 * inference scheduler (llm-d/llm-d-inference-scheduler, the default
 * scheduling profile of config/charts/epplib/templates/_config.yaml, its
 * scorers under pkg/epp/framework/plugins/scheduling/scorer/ and the
 * max-score picker):
 *   queue  = (max waiting - waiting) / (max waiting - min waiting) over the
 *            candidates, 1 when all wait alike (queuedepth/queue.go);
 *   kv     = 1 - KV cache utilisation (kvcacheutilization);
 *   prefix = the request's leading blocks the worker holds / its blocks
 *            (prefix/plugin.go);
 *   score  = score_queue_weight * queue + score_kv_weight * kv
 *            + score_prefix_weight * prefix     (defaults 2, 2, 3).
 * The highest score wins, ties drawn at random as the max-score picker
 * shuffles them. llm-d reads the waiting queue and the KV utilisation from
 * the model servers' metrics; here they are the last heartbeat's plus what
 * the core dispatched since: requests beyond the batch wait. */
#include "policy.h"

#include "predictor.h"

#include <stdlib.h>

typedef struct ws_state {
  uint64_t rng;
} ws_state_t;

static int ws_create(void **state) {
  ws_state_t *s = calloc(1, sizeof *s);
  if (!s)
    return -1;
  s->rng = 0x11d5c0e5eedull;
  *state = s;
  return 0;
}

static void ws_destroy(void *state) {
  free(state);
}

static int ws_pick(void *state, policy_ctx_t *x) {
  ws_state_t *st = state;
  const core_config_t *c = x->cfg;
  /* Pass 1 packs each candidate's waiting count and KV use (in 1/2^20) for
   * pass 2, which needs the spread of the waiting counts. */
  uint64_t *packed = x->scratch;
  uint32_t lo = UINT32_MAX, hi = 0;
  for (size_t i = 0; i < x->n; i++) {
    const core_worker_t *w = x->workers[x->cands[i]];
    predictor_now_t now;
    predictor_now(&w->profile, &w->load, &w->since, &now);
    uint32_t waiting = now.requests - now.running;
    uint32_t util =
        now.kv_total ? (uint32_t)((now.kv << 20) / now.kv_total) : 0;
    packed[i] = (uint64_t)waiting << 32 | util;
    lo = waiting < lo ? waiting : lo;
    hi = waiting > hi ? waiting : hi;
  }
  size_t n_blocks = x->r->spec.n_blocks;
  long best = -1;
  double best_score = 0;
  uint32_t ties = 0;
  for (size_t i = 0; i < x->n; i++) {
    uint32_t waiting = (uint32_t)(packed[i] >> 32);
    double util = (double)(uint32_t)packed[i] / (1 << 20);
    double queue = hi == lo ? 1.0 : (double)(hi - waiting) / (hi - lo);
    /* A session's blocks may outrun the request's own hashes. */
    size_t cached = policy_cached_blocks(x, i);
    double prefix = n_blocks ? (double)(cached < n_blocks ? cached : n_blocks) /
                                   (double)n_blocks
                             : 0;
    double score = c->score_queue_weight * queue +
                   c->score_kv_weight * (1 - util) +
                   c->score_prefix_weight * prefix;
    policy_offer(x, i, -score, true);
    if (best < 0 || score > best_score) {
      best = (long)i;
      best_score = score;
      ties = 1;
    } else if (score == best_score && policy_draw(&st->rng, ++ties) == 0) {
      best = (long)i; /* each of k ties kept with probability 1/k */
    }
  }
  x->outcome = CORE_OUTCOME_BEST_SCORE;
  return (int)best;
}

const policy_ops_t policy_weighted_score = {
    .name = "weighted_score",
    .summary = "best weighted queue, KV use and prefix scores (llm-d)",
    .create = ws_create,
    .destroy = ws_destroy,
    .pick = ws_pick,
};
