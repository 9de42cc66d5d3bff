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
 * session's worker, the least loaded and a few of each profile.
 *
 * Splits (docs/scheduling.md, "Disaggregation"). When the request may be
 * split and the pool declares roles, the options are the singles above
 * and pairs: each sampled decode candidate D whose split is worth it
 * (policy_split_worth: at least POLICY_SPLIT_MIN_TOKENS to prefill there,
 * at most POLICY_SPLIT_MAX_HIT of the prompt cached there) with each of
 * the prefill candidates fastest to a first token, and the cheapest
 * (POLICY_PAIR_PREFILLS in all, chosen among the sample and the
 * prefill-role workers). A pair is judged as a single is, from
 * predictor_estimate_pair: P's TTFT against the target for the tokens P
 * prefills, the mean TPOT with the handoff gap in it, the opportunity cost
 * of both workers, and the harm to what runs on either; the rules above
 * then choose among all options alike. */
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

/* One way to run the request: whole on d (p < 0), or prefilled on p and
 * decoded on d, as judged against its SLO. */
typedef struct option {
  long d, p;
  double score, use, ttft, ttft_target;
  bool meets, harms, harms_any, tpot_ok;
} option_t;

/* The best option by each of the rules in the header. */
typedef struct choice {
  option_t best, bold, patient, steady, fastest;
} choice_t;

static void consider(choice_t *c, const option_t *o) {
  if (o->meets && !o->harms_any && (c->best.d < 0 || o->score < c->best.score))
    c->best = *o;
  if (o->meets && !o->harms && (c->bold.d < 0 || o->score < c->bold.score))
    c->bold = *o;
  if (o->meets && o->harms && (c->patient.d < 0 || o->ttft < c->patient.ttft))
    c->patient = *o;
  if (o->tpot_ok && !o->harms && (c->steady.d < 0 || o->use < c->steady.use))
    c->steady = *o;
  if (c->fastest.d < 0 || o->use < c->fastest.use)
    c->fastest = *o;
}

/* Fills o's judgement from its latency, cost and harm, and offers it. */
static void judge(policy_ctx_t *x, option_t *o, const slo_targets_t *t,
                  double ttft, double tpot, double opportunity, bool harms,
                  bool harms_any) {
  prediction_t lat = {.ttft_ms = ttft, .tpot_ms = tpot};
  o->use = predictor_slo_use(&lat, t);
  o->score = opportunity * (1 + x->cfg->latency_weight[x->r->spec.cls] * o->use);
  o->tpot_ok = !t->tpot_ms || tpot <= t->tpot_ms;
  o->meets = (!t->ttft_ms || ttft <= t->ttft_ms) && o->tpot_ok;
  o->harms = harms;
  o->harms_any = harms_any;
  o->ttft = ttft;
  o->ttft_target = t->ttft_ms;
  policy_offer(x, (size_t)o->d, o->score, o->meets && !o->harms);
}

static void single(policy_ctx_t *x, size_t i, choice_t *c) {
  const core_worker_t *w = x->workers[x->cands[i]];
  infs_class_t cls = x->r->spec.cls;
  prediction_t p;
  policy_predict(x, i, &p);
  slo_targets_t t = policy_targets(x, &p);
  bool harms = policy_harms(w, &p, cls);
  option_t o = {.d = (long)i, .p = -1};
  judge(x, &o, &t, p.ttft_ms, p.tpot_ms, p.opportunity_usd, harms,
        harms || policy_harms(w, &p, INFS_CLASS_BATCH));
  consider(c, &o);
}

/* A prefill candidate and its half's prediction. */
typedef struct prefill_cand {
  size_t cand;
  prediction_t on_p;
} prefill_cand_t;

/* The prefill candidates a split is tried with: the POLICY_PAIR_PREFILLS
 * - 1 fastest to a first token, and the cheapest when it is not one of
 * them. */
typedef struct prefill_set {
  prefill_cand_t fast[POLICY_PAIR_PREFILLS - 1];
  size_t n_fast;
  prefill_cand_t cheap;
  bool any;
} prefill_set_t;

static void keep_prefill(prefill_set_t *s, const prefill_cand_t *pc) {
  enum { K = POLICY_PAIR_PREFILLS - 1 };
  if (!s->any || pc->on_p.opportunity_usd < s->cheap.on_p.opportunity_usd)
    s->cheap = *pc;
  s->any = true;
  size_t i = s->n_fast;
  if (i == K) {
    if (pc->on_p.ttft_ms >= s->fast[K - 1].on_p.ttft_ms)
      return;
    i--;
  } else {
    s->n_fast++;
  }
  for (; i > 0 && pc->on_p.ttft_ms < s->fast[i - 1].on_p.ttft_ms; i--)
    s->fast[i] = s->fast[i - 1];
  s->fast[i] = *pc;
}

static void try_prefill(policy_ctx_t *x, prefill_set_t *s, size_t cand) {
  prefill_cand_t pc = {.cand = cand};
  policy_predict_half(x, cand, false, &pc.on_p);
  keep_prefill(s, &pc);
}

/* Splits of the request with each sampled decode candidate worth it,
 * paired with the prefill set. */
static void pairs(policy_ctx_t *x, uint64_t *rng, const uint32_t *pool,
                  size_t n, choice_t *c) {
  prefill_set_t s = {.n_fast = 0};
  for (size_t k = 0; k < n; k++)
    if (policy_role(x, pool[k]) != INFS_ROLE_DECODE)
      try_prefill(x, &s, pool[k]);
  /* The prefill-role workers are out of the sample: all of a few, or as
   * many drawn as the sample takes of a profile. */
  if (x->n_prefill <= POLICY_SAMPLE_MIN)
    for (size_t k = 0; k < x->n_prefill; k++)
      try_prefill(x, &s, x->n + k);
  else
    for (size_t k = 0; k < POLICY_SAMPLE_PER_GROUP; k++)
      try_prefill(x, &s, x->n + policy_draw(rng, (uint32_t)x->n_prefill));
  if (!s.any)
    return;
  const prefill_cand_t *set[POLICY_PAIR_PREFILLS];
  size_t n_set = 0;
  bool cheap_in = false;
  for (size_t j = 0; j < s.n_fast; j++) {
    set[n_set++] = &s.fast[j];
    cheap_in |= s.fast[j].cand == s.cheap.cand;
  }
  if (!cheap_in)
    set[n_set++] = &s.cheap;

  infs_class_t cls = x->r->spec.cls;
  for (size_t k = 0; k < n; k++) {
    size_t d = pool[k];
    if (!policy_split_worth(x, d))
      continue;
    const core_worker_t *wd = x->workers[x->cands[d]];
    prediction_t on_d;
    policy_predict_half(x, d, true, &on_d);
    bool d_harms = policy_harms(wd, &on_d, cls);
    bool d_harms_any = d_harms || policy_harms(wd, &on_d, INFS_CLASS_BATCH);
    for (size_t j = 0; j < n_set; j++) {
      const prefill_cand_t *p = set[j];
      if (p->cand == d)
        continue;
      const core_worker_t *wp = x->workers[x->cands[p->cand]];
      pair_prediction_t pp;
      policy_pair(x, p->cand, &p->on_p, d, &on_d, &pp);
      slo_targets_t t = policy_targets(x, &pp.p);
      bool harms = d_harms || policy_harms(wp, &pp.p, cls);
      option_t o = {.d = (long)d, .p = (long)p->cand};
      judge(x, &o, &t, pp.ttft_ms, pp.tpot_ms, pp.opportunity_usd, harms,
            harms || d_harms_any || policy_harms(wp, &pp.p, INFS_CLASS_BATCH));
      consider(c, &o);
    }
  }
}

static int take(policy_ctx_t *x, const option_t *o, core_outcome_t outcome) {
  x->outcome = outcome;
  x->prefill = (int)o->p;
  return (int)o->d;
}

static int bal_pick(void *state, policy_ctx_t *x) {
  bal_state_t *st = state;
  uint32_t pool[POLICY_SAMPLE_MAX];
  size_t n = policy_sample(x, &st->rng, pool);
  choice_t c;
  c.best.d = c.bold.d = c.patient.d = c.steady.d = c.fastest.d = -1;
  for (size_t k = 0; k < n; k++)
    single(x, pool[k], &c);
  if (x->may_split && x->roles)
    pairs(x, &st->rng, pool, n, &c);

  if (c.best.d >= 0)
    return take(x, &c.best, CORE_OUTCOME_SLO_MET);
  if (c.bold.d >= 0)
    return take(x, &c.bold, CORE_OUTCOME_SLO_MET);
  if (c.patient.d >= 0) {
    double waited_ms = (double)(x->now - x->r->arrived) / INFS_US_PER_MS;
    if (waited_ms + c.patient.ttft < c.patient.ttft_target / 2.0) {
      x->outcome = CORE_OUTCOME_DEFERRED;
      return -1;
    }
  }
  const option_t *o = c.steady.d >= 0 ? &c.steady : &c.fastest;
  return take(x, o,
              o->use <= 1 ? CORE_OUTCOME_SLO_MET : CORE_OUTCOME_SLO_MISSED);
}

const policy_ops_t policy_balanced = {
    .name = "balanced",
    .summary = "cheapest predicted to meet the SLO, latency weighed",
    .create = bal_create,
    .destroy = bal_destroy,
    .pick = bal_pick,
    .pairs = true,
};
