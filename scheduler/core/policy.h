/* Routing policies. A policy picks one worker among candidates that already
 * meet the hard constraints (live, serves the model, fits the context, has
 * room). Policies plug in as a table of functions, like nginx's
 * peer.get/peer.free: a new policy is a new file plus one line in
 * POLICY_NAMES (lib/policy_names.h).
 * A pick must not allocate: it runs for every request. */
#ifndef INFSCHED_POLICY_H
#define INFSCHED_POLICY_H

#include "core_internal.h"
#include "policy_names.h"
#include "prefix.h"

/* One candidate as a policy scored it, kept for explanations. */
typedef struct policy_offer {
  uint32_t cand;
  double score; /* lower wins */
  bool ok;      /* ok offers sort before the others */
} policy_offer_t;

/* Everything a pick may read, and what it reports back. A candidate is a
 * position in cands, which holds registry indices in registry order. */
typedef struct policy_ctx {
  const core_config_t *cfg;
  const req_t *r;
  core_worker_t *const *workers; /* the registry, by index */
  const worker_hot_t *hot;       /* by index */
  const uint32_t *group_live;    /* live workers per profile group */
  size_t n_groups;
  /* During a pick, cands[0 .. n) may run the request whole or decode it,
   * and the prefill-role workers follow them at cands[n .. n + n_prefill):
   * they may only prefill it (policy_pick puts them there). */
  uint32_t *cands;
  size_t n; /* >= 1 */
  size_t n_prefill;
  uint64_t *scratch; /* n free words for the pick */
  infs_time_t now;
  const prefix_index_t *prefix; /* matched against r's blocks */
  int64_t session_worker;       /* registry index holding r's session, -1 */
  uint32_t session_blocks;      /* r's leading blocks the session put there */
  double session_rate;          /* the session's own share of that worker's
                                   prefill_rate: its turns run one after another, so
                                   their prefills never slow its own decode */
  core_outcome_t outcome;       /* set by pick */
  /* Set by pick: the position in cands of the worker to prefill the
   * request on before the chosen one decodes it (docs/disaggregation.md),
   * or -1 to run it whole there. Never the chosen one; never a
   * decode-role worker; and the chosen one is never a prefill-role
   * worker. */
  int prefill;
  /* Set by policy_pick: the request may be split (req_may_split), and the
   * candidates declare roles (one at least is not `both`): without roles a
   * pool never splits. */
  bool may_split;
  bool roles;
  bool explain;                 /* keep offers */
  size_t n_offers;
  policy_offer_t offers[CORE_EXPLAIN_TOP]; /* best first */
} policy_ctx_t;

typedef struct policy_ops {
  const char *name;
  const char *summary;
  /* Allocates per-core state (may leave *state NULL); 0 or negative. */
  int (*create)(void **state);
  void (*destroy)(void *state);
  /* Returns the index in x->cands of the chosen worker and sets
   * x->outcome, or returns -1 to leave the request queued. */
  int (*pick)(void *state, policy_ctx_t *x);
  /* The pick weighs splits itself and sets x->prefill; otherwise
   * policy_pick applies policy_split to what it chose. */
  bool pairs;
} policy_ops_t;

const policy_ops_t *policy_find(const char *name);

/* Asks ops for a worker among x's candidates, with roles respected:
 * prefill-role workers are moved behind the others and out of x->n for
 * the pick (x->n is whole again after), and a policy without pairs gets
 * the split of policy_split. Returns the pick's answer, with x->prefill
 * set (-1: run whole). */
int policy_pick(const policy_ops_t *ops, void *state, policy_ctx_t *x);
/* NULL-terminated list of every policy, for --help and validation. */
const policy_ops_t *const *policy_all(void);

/* --- helpers for picks (policy.c); a, b, cand are positions --- */

static inline const worker_hot_t *policy_hot(const policy_ctx_t *x,
                                             size_t cand) {
  return &x->hot[x->cands[cand]];
}

/* Leading blocks of the request cached on the candidate: the index's
 * match, or what the request's session left there when that is more. */
static inline uint32_t policy_cached_blocks(const policy_ctx_t *x,
                                            size_t cand) {
  uint32_t idx = x->cands[cand];
  uint32_t b = prefix_depth(x->prefix, idx);
  if (x->session_worker == (int64_t)idx && x->session_blocks > b)
    b = x->session_blocks;
  return b;
}

/* Fewer outstanding requests; at equal counts, the lower share of
 * capacity. */
static inline bool policy_less_loaded(const policy_ctx_t *x, size_t a,
                                      size_t b) {
  const worker_hot_t *ha = policy_hot(x, a), *hb = policy_hot(x, b);
  if (ha->outstanding != hb->outstanding)
    return ha->outstanding < hb->outstanding;
  return (uint64_t)ha->outstanding * hb->capacity <
         (uint64_t)hb->outstanding * ha->capacity;
}

void policy_predict(const policy_ctx_t *x, size_t cand, prediction_t *out);
/* The request's targets on the candidate p was predicted for: its TTFT
 * target counts only the prompt tokens not cached there. */
slo_targets_t policy_targets(const policy_ctx_t *x, const prediction_t *p);

/* Whether a request predicted as p on w would push a request there that is
 * as urgent as cls or more past its TPOT target: all decode steps there
 * take p->tpot_ms, and its prefill chunks add p->extra_ms to those of the
 * ones running, which a request of n output tokens spreads over n - 1. */
bool policy_harms(const core_worker_t *w, const prediction_t *p,
                  infs_class_t cls);

/* The tightest TPOT target among the classes with requests at w that are
 * as urgent as cls or more; UINT32_MAX when there are none. */
uint32_t policy_tightest_tpot(const core_config_t *cfg, const core_worker_t *w,
                              infs_class_t cls);

/* --- disaggregation (docs/scheduling.md, "Disaggregation") --- */

/* A split is worth considering only when the decode worker would have at
 * least this many prompt tokens to prefill itself, and holds at most this
 * share of the prompt: Dynamo's defaults for prefilling remotely
 * (max_local_prefill_length 1000 and max_remote_prefill_cache_hit_ratio
 * 0.5, ai-dynamo/dynamo lib/llm/src/disagg_router.rs and its Python
 * router). Below them a split saves at most a short prefill, for a second
 * dispatch, a KV hold and a transfer the predictor does not price. */
#define POLICY_SPLIT_MIN_TOKENS 1000u
#define POLICY_SPLIT_MAX_HIT 0.5
/* balanced pairs each decode candidate with this many prefill candidates:
 * the fastest to a first token, and the cheapest besides. */
#define POLICY_PAIR_PREFILLS 4

static inline infs_role_t policy_role(const policy_ctx_t *x, size_t cand) {
  return (infs_role_t)policy_hot(x, cand)->role;
}

/* Whether a split with cand decoding passes the thresholds above. */
bool policy_split_worth(const policy_ctx_t *x, size_t cand);

/* The baselines' rule: when x may split and d's split is worth it, the
 * least loaded candidate other than d that may prefill (not decode-role)
 * prefills it. */
void policy_split(policy_ctx_t *x, size_t d);

/* Predictions of x's request on cand as the prefill half (decode false:
 * its own cache, one token) or the decode half (its KV arriving). */
void policy_predict_half(const policy_ctx_t *x, size_t cand, bool decode,
                         prediction_t *out);
/* The split with p prefilling and d decoding, from their halves'
 * predictions. */
void policy_pair(const policy_ctx_t *x, size_t p, const prediction_t *on_p,
                 size_t d, const prediction_t *on_d, pair_prediction_t *out);

/* Pools up to this many candidates are evaluated whole. */
#define POLICY_SAMPLE_MIN 64
/* Above, per profile group, this many drawn at random. */
#define POLICY_SAMPLE_PER_GROUP 6
#define POLICY_SAMPLE_MAX (6 + POLICY_SAMPLE_PER_GROUP * REGISTRY_GROUPS)

/* The candidates worth a prediction, into out (POLICY_SAMPLE_MAX long):
 * all of them in a small pool; in a large one the four with the longest
 * prefix match, the session's worker, the least loaded, and a uniform
 * sample of each profile group (at least one of each), so that a rare
 * class of worker is never left out. Returns how many; a candidate may
 * appear twice. */
size_t policy_sample(policy_ctx_t *x, uint64_t *rng, uint32_t *out);
/* xorshift64*: deterministic and cheap, for picks that draw; state must
 * not be 0. policy_draw maps it onto [0, bound) by a multiply. */
uint64_t policy_random(uint64_t *state);
uint32_t policy_draw(uint64_t *state, uint32_t bound);

/* Records a scored candidate when explaining; cheap no-op otherwise. */
void policy_offer(policy_ctx_t *x, size_t cand, double score, bool ok);

#define POLICY_DECLARE(name) extern const policy_ops_t policy_##name;
POLICY_NAMES(POLICY_DECLARE)
#undef POLICY_DECLARE

#endif
