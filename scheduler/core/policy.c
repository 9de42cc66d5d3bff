#include "policy.h"

#include <string.h>

#define POLICY_REF(name) &policy_##name,
static const policy_ops_t *const all[] = {POLICY_NAMES(POLICY_REF) NULL};
#undef POLICY_REF

const policy_ops_t *policy_find(const char *name) {
  for (size_t i = 0; all[i]; i++)
    if (strcmp(all[i]->name, name) == 0)
      return all[i];
  return NULL;
}

const policy_ops_t *const *policy_all(void) {
  return all;
}

bool policy_harms(const core_worker_t *w, const prediction_t *p,
                  infs_class_t cls) {
  for (const list_node_t *n = w->reqs.next; n != &w->reqs; n = n->next) {
    const req_t *r = list_entry(n, const req_t, link);
    const core_request_t *s = &r->spec;
    /* A prefill there makes no tokens for the worker's steps to slow. */
    if (s->cls > cls || s->max_tokens < 2 || !s->tpot_ms ||
        r->phase == INFS_PHASE_PREFILL)
      continue;
    if (p->tpot_ms + p->extra_ms / (s->max_tokens - 1) > s->tpot_ms)
      return true;
  }
  return false;
}

uint32_t policy_tightest_tpot(const core_config_t *cfg, const core_worker_t *w,
                              infs_class_t cls) {
  uint32_t t = UINT32_MAX;
  for (int k = 0; k <= (int)cls; k++)
    if (w->n_cls[k] && cfg->slo[k].tpot_ms < t)
      t = cfg->slo[k].tpot_ms;
  return t;
}

static void predict(const policy_ctx_t *x, size_t cand,
                    const predictor_request_t *pr, prediction_t *out) {
  uint32_t idx = x->cands[cand];
  const core_worker_t *w = x->workers[idx];
  double rate = w->prefill_rate;
  if (x->session_worker == (int64_t)idx)
    rate = rate > x->session_rate ? rate - x->session_rate : 0;
  predictor_worker_t pw = {
      .profile = &w->profile,
      .load = &w->load,
      .since = w->since,
      .outstanding = policy_hot(x, cand)->outstanding,
      .remaining_tokens = w->remaining_tokens,
      .prefill_load = predictor_prefill_load(&w->profile, rate),
  };
  if (w->profile.slo_aware_prefill) {
    uint32_t cap = policy_tightest_tpot(x->cfg, w, INFS_CLASS_COUNT - 1);
    pw.tpot_cap_ms = cap == UINT32_MAX ? 0 : cap;
  }
  predictor_estimate(&pw, pr, x->cfg->kwh_usd, out);
}

void policy_predict(const policy_ctx_t *x, size_t cand, prediction_t *out) {
  /* A request whose prefill is done elsewhere only decodes here. */
  if (x->r->kv_worker >= 0) {
    policy_predict_half(x, cand, true, out);
    return;
  }
  predictor_request_t pr = {
      .prompt_tokens = x->r->spec.prompt_tokens,
      .max_tokens = x->r->spec.max_tokens,
      .cached_blocks = policy_cached_blocks(x, cand),
  };
  predict(x, cand, &pr, out);
}

void policy_predict_half(const policy_ctx_t *x, size_t cand, bool decode,
                         prediction_t *out) {
  predictor_request_t whole = {
      .prompt_tokens = x->r->spec.prompt_tokens,
      .max_tokens = x->r->spec.max_tokens,
      .cached_blocks = policy_cached_blocks(x, cand),
  };
  predictor_request_t on_p, on_d;
  predictor_pair_halves(&whole, whole.cached_blocks, &on_p, &on_d);
  predict(x, cand, decode ? &on_d : &on_p, out);
}

void policy_pair(const policy_ctx_t *x, size_t p, const prediction_t *on_p,
                 size_t d, const prediction_t *on_d, pair_prediction_t *out) {
  const core_worker_t *wp = x->workers[x->cands[p]];
  const core_worker_t *wd = x->workers[x->cands[d]];
  infs_link_t link =
      link_find(x->cfg->links, wp->id, &wp->profile, wd->id, &wd->profile);
  uint32_t moved = predictor_kv_lacks(x->r->spec.prompt_tokens,
                                      policy_cached_blocks(x, d),
                                      wd->profile.block_size);
  predictor_pair_join(on_p, on_d, &wp->profile, moved, &link,
                      x->r->spec.max_tokens, out);
}

bool policy_split_worth(const policy_ctx_t *x, size_t cand) {
  uint32_t prompt = x->r->spec.prompt_tokens;
  uint32_t lacks = predictor_kv_lacks(prompt, policy_cached_blocks(x, cand),
                                      x->workers[x->cands[cand]]
                                          ->profile.block_size);
  return lacks >= POLICY_SPLIT_MIN_TOKENS &&
         prompt - lacks <= POLICY_SPLIT_MAX_HIT * prompt;
}

void policy_split(policy_ctx_t *x, size_t d) {
  if (!x->may_split || !x->roles || !policy_split_worth(x, d))
    return;
  long best = -1;
  for (size_t i = 0; i < x->n + x->n_prefill; i++)
    if (i != d && policy_role(x, i) != INFS_ROLE_DECODE &&
        (best < 0 || policy_less_loaded(x, i, (size_t)best)))
      best = (long)i;
  x->prefill = (int)best;
}

int policy_pick(const policy_ops_t *ops, void *state, policy_ctx_t *x) {
  size_t total = x->n, kept = 0, moved = 0;
  x->prefill = -1;
  x->may_split = req_may_split(x->r);
  x->roles = false;
  /* A stable partition, so that the others keep registry order; the
   * pick's scratch is free until it runs. */
  for (size_t i = 0; i < total; i++) {
    infs_role_t role = (infs_role_t)x->hot[x->cands[i]].role;
    x->roles |= role != INFS_ROLE_BOTH;
    if (role == INFS_ROLE_PREFILL)
      x->scratch[moved++] = x->cands[i];
    else
      x->cands[kept++] = x->cands[i];
  }
  for (size_t j = 0; j < moved; j++)
    x->cands[kept + j] = (uint32_t)x->scratch[j];
  x->n = kept;
  x->n_prefill = moved;
  int pick = -1;
  if (kept) {
    pick = ops->pick(state, x);
    if (pick >= 0 && !ops->pairs)
      policy_split(x, (size_t)pick);
  } else {
    x->outcome = CORE_OUTCOME_NO_ROOM;
  }
  if (pick < 0)
    x->prefill = -1;
  x->n = total;
  return pick;
}

slo_targets_t policy_targets(const policy_ctx_t *x, const prediction_t *p) {
  const core_request_t *s = &x->r->spec;
  slo_t slo = slo_of_request(s);
  uint32_t uncached = s->prompt_tokens > p->cached_tokens
                          ? s->prompt_tokens - p->cached_tokens
                          : 0;
  return slo_targets(&slo, uncached);
}

uint64_t policy_random(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545f4914f6cdd1dull;
}

uint32_t policy_draw(uint64_t *s, uint32_t bound) {
  uint32_t r = (uint32_t)(policy_random(s) >> 32);
  return (uint32_t)(((uint64_t)r * bound) >> 32);
}

/* D ordinals of a group of size members, ascending, into t; how many. */
static uint32_t draw_ordinals(uint64_t *rng, uint32_t size, uint32_t *t) {
  enum { D = POLICY_SAMPLE_PER_GROUP };
  if (size <= D) {
    for (uint32_t i = 0; i < size; i++)
      t[i] = i;
    return size;
  }
  for (uint32_t i = 0; i < D; i++) {
    uint32_t v = policy_draw(rng, size), k = i;
    for (; k > 0 && t[k - 1] > v; k--)
      t[k] = t[k - 1];
    t[k] = v;
  }
  return D;
}

size_t policy_sample(policy_ctx_t *x, uint64_t *rng, uint32_t *out) {
  if (x->n <= POLICY_SAMPLE_MIN) {
    for (size_t i = 0; i < x->n; i++)
      out[i] = (uint32_t)i;
    return x->n;
  }
  enum { TOP = 4, D = POLICY_SAMPLE_PER_GROUP };
  /* Each group's sample is drawn as ordinals among its live workers and
   * picked up as the scan passes them: one draw per sampled worker rather
   * than one per candidate. */
  uint32_t ord[REGISTRY_GROUPS][D], n_ord[REGISTRY_GROUPS];
  uint32_t next[REGISTRY_GROUPS], seen[REGISTRY_GROUPS];
  uint32_t first[REGISTRY_GROUPS];
  for (size_t g = 0; g < x->n_groups; g++) {
    n_ord[g] = draw_ordinals(rng, x->group_live[g], ord[g]);
    next[g] = 0;
    seen[g] = 0;
  }
  uint32_t top[TOP], top_depth[TOP] = {0};
  size_t least = 0, n = 0;
  long session = -1;
  for (size_t i = 0; i < x->n; i++) {
    uint32_t idx = x->cands[i];
    const worker_hot_t *h = &x->hot[idx];
    uint32_t g = h->group, k = seen[g]++;
    if (k == 0)
      first[g] = (uint32_t)i;
    if (next[g] < n_ord[g] && ord[g][next[g]] <= k) {
      out[n++] = (uint32_t)i;
      while (next[g] < n_ord[g] && ord[g][next[g]] <= k)
        next[g]++;
    }
    uint32_t d = prefix_depth(x->prefix, idx);
    if (d > top_depth[TOP - 1]) {
      size_t t = TOP - 1;
      for (; t > 0 && d > top_depth[t - 1]; t--) {
        top[t] = top[t - 1];
        top_depth[t] = top_depth[t - 1];
      }
      top[t] = (uint32_t)i;
      top_depth[t] = d;
    }
    if (h->outstanding < x->hot[x->cands[least]].outstanding)
      least = i;
    if (x->session_worker == (int64_t)idx)
      session = (long)i;
  }
  /* A group whose drawn ordinals all fell on workers without room still
   * gets its first candidate. */
  for (size_t g = 0; g < x->n_groups; g++)
    if (seen[g] && next[g] == 0)
      out[n++] = first[g];
  for (size_t t = 0; t < TOP && top_depth[t]; t++)
    out[n++] = top[t];
  if (session >= 0)
    out[n++] = (uint32_t)session;
  out[n++] = (uint32_t)least;
  return n;
}

static bool offer_before(const policy_offer_t *a, const policy_offer_t *b) {
  if (a->ok != b->ok)
    return a->ok;
  return a->score < b->score;
}

void policy_offer(policy_ctx_t *x, size_t cand, double score, bool ok) {
  if (!x->explain)
    return;
  for (size_t i = 0; i < x->n_offers; i++)
    if (x->offers[i].cand == cand)
      return; /* sampled twice */
  policy_offer_t o = {(uint32_t)cand, score, ok};
  size_t i = x->n_offers;
  if (i == CORE_EXPLAIN_TOP) {
    if (!offer_before(&o, &x->offers[i - 1]))
      return;
    i--;
  } else {
    x->n_offers++;
  }
  /* Insertion into a sorted array of at most CORE_EXPLAIN_TOP. */
  while (i > 0 && offer_before(&o, &x->offers[i - 1])) {
    x->offers[i] = x->offers[i - 1];
    i--;
  }
  x->offers[i] = o;
}
