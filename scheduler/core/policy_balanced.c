/* balanced: the cheapest worker predicted to meet the request's SLO, with a
 * per-class weight of latency against cost (docs/architecture.md,
 * "Policies"; docs/scheduling.md, "The policies").
 *
 * For each candidate the predictor gives TTFT, TPOT and opportunity cost
 * (the worker time it takes at the worker's price, scaled by the share of
 * the worker in use, see predictor.h: on a fixed pool idle capacity is paid
 * for whatever the policy, so only time that other requests could have
 * used costs anything), and
 *   use   = max(ttft / ttft_slo, tpot / tpot_slo)   (<= 1: SLO met)
 * where ttft_slo is the request's target for the prompt tokens not cached
 * on that candidate (slo_targets), so a cache hit also buys a tighter one.
 *   score = opportunity cost * (1 + latency_weight[class] * use)
 * A candidate is ok when it meets the SLO and no request there that is as
 * urgent as this one or more is pushed past its TPOT target (a request
 * never waits for the sake of less urgent ones): each sees the decode step
 * with this request in the batch plus what this request's prefill chunks
 * add to its steps, spread over its own output (policy_harms; a short
 * answer sharing a step with a long prefill is hurt most). Then:
 *   1. the ok candidate with the lowest score among those that harm no
 *      request at all, and only when there is none, among the ok ones
 *      (SLO_MET);
 *   2. else, when some candidate would meet the SLO only by slowing the
 *      others down, and less than half the request's TTFT budget has gone
 *      on waiting and that candidate's TTFT, the request stays queued and is
 *      tried again as capacity frees (DEFERRED);
 *   3. else the fastest, lowest use, among the candidates that meet the
 *      TPOT target without slowing the others, and the fastest of all when
 *      none does (SLO_MISSED, or SLO_MET when it meets the SLO at the
 *      others' expense). A TTFT missed for want of a cached prefix is missed
 *      once, a TPOT missed on a worker too slow to decode at that rate is
 *      missed again by every later turn of the session that follows it.
 * Large pools are sampled (policy_sample): the best prefix matches, the
 * session's worker, the least loaded and a few of each profile. */
#include "policy.h"

#include <stdlib.h>

typedef struct bal_state {
  uint64_t rng;
} bal_state_t;

static int bal_create(void **state) {
  bal_state_t *s = calloc(1, sizeof *s);
  if (!s)
    return -1;
  s->rng = 0xba1a9ced5eedull;
  *state = s;
  return 0;
}

static void bal_destroy(void *state) {
  free(state);
}

static int bal_pick(void *state, policy_ctx_t *x) {
  bal_state_t *st = state;
  uint32_t pool[POLICY_SAMPLE_MAX];
  size_t n = policy_sample(x, &st->rng, pool);
  const core_request_t *s = &x->r->spec;
  double weight = x->cfg->latency_weight[s->cls];
  long best = -1, fastest = -1, patient = -1, steady = -1, bold = -1;
  double best_score = 0, fastest_use = 0, patient_ttft = 0, steady_use = 0;
  double bold_score = 0;
  double patient_target = 0;
  for (size_t k = 0; k < n; k++) {
    size_t i = pool[k];
    const core_worker_t *w = x->workers[x->cands[i]];
    prediction_t p;
    policy_predict(x, i, &p);
    slo_targets_t t = policy_targets(x, &p);
    double use = predictor_slo_use(&p, &t);
    double score = p.opportunity_usd * (1 + weight * use);
    bool meets = (!t.ttft_ms || p.ttft_ms <= t.ttft_ms) &&
                 (!t.tpot_ms || p.tpot_ms <= t.tpot_ms);
    bool harms = policy_harms(w, &p, s->cls);
    bool harms_any = harms || policy_harms(w, &p, INFS_CLASS_BATCH);
    policy_offer(x, i, score, meets && !harms);
    if (meets && !harms_any && (best < 0 || score < best_score)) {
      best = (long)i;
      best_score = score;
    }
    if (meets && !harms && (bold < 0 || score < bold_score)) {
      bold = (long)i;
      bold_score = score;
    }
    if (meets && harms && (patient < 0 || p.ttft_ms < patient_ttft)) {
      patient = (long)i;
      patient_ttft = p.ttft_ms;
      patient_target = t.ttft_ms;
    }
    if ((!t.tpot_ms || p.tpot_ms <= t.tpot_ms) && !harms && (steady < 0 || use < steady_use)) {
      steady = (long)i;
      steady_use = use;
    }
    if (fastest < 0 || use < fastest_use) {
      fastest = (long)i;
      fastest_use = use;
    }
  }
  if (best < 0)
    best = bold;
  if (best >= 0) {
    x->outcome = CORE_OUTCOME_SLO_MET;
    return (int)best;
  }
  if (patient >= 0) {
    double waited_ms = (double)(x->now - x->r->arrived) / INFS_US_PER_MS;
    if (waited_ms + patient_ttft < patient_target / 2.0) {
      x->outcome = CORE_OUTCOME_DEFERRED;
      return -1;
    }
  }
  long pick = steady >= 0 ? steady : fastest;
  double pick_use = steady >= 0 ? steady_use : fastest_use;
  x->outcome = pick_use <= 1 ? CORE_OUTCOME_SLO_MET : CORE_OUTCOME_SLO_MISSED;
  return (int)pick;
}

const policy_ops_t policy_balanced = {
    .name = "balanced",
    .summary = "cheapest predicted to meet the SLO, latency weighed",
    .create = bal_create,
    .destroy = bal_destroy,
    .pick = bal_pick,
};
