/* The codex workload: coding-agent sessions whose prompts grow turn by turn
 * and repeat their earlier blocks (see workload.h for the model and
 * configs/workloads/codex.yaml for the defaults and their sources).
 *
 * Every session draws from its own random stream, keyed by its slot and
 * generation (or its arrival number for one-off sessions), so what a session
 * sends depends only on its own history and not on how answers to other
 * sessions interleave with it. A session's context is three segments of
 * synthetic tokens (system prefix, repository, conversation) and its block
 * hashes are kept from call to call: a new call hashes only its new blocks,
 * since block i chains on block i - 1. */
#include "workload_impl.h"

#include "infsched/errors.h"
#include "u64map.h"
#include "xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { STREAM_OPEN = 0xc0de0001, STREAM_SESSION = 0xc0de0002 };
/* Token streams: the system prefix, and per session its repository, each
 * epoch of its conversation and each batch job's instruction. */
enum { PART_REPO = 1, PART_HISTORY = 2, PART_JOB = 3 };
#define SYSTEM_KEY 0xc0de5157e30ull

#define NOT_QUEUED UINT32_MAX

typedef enum act { ACT_NONE, ACT_START, ACT_TURN, ACT_STEP } act_t;

typedef struct session {
  workload_rng_t rng;
  uint64_t key; /* names the session's random and token streams */
  uint64_t repo_stream;
  uint64_t hist_stream;
  char id[WORKLOAD_SESSION_MAX];
  infs_time_t at; /* when act happens */
  uint32_t heap_pos;
  uint8_t act;  /* act_t */
  uint8_t kind; /* infs_class_t of the current turn */
  bool fixed;   /* a slot of the fixed population */
  uint32_t gen; /* sessions this slot has run before this one */
  uint32_t turns_left;
  uint32_t steps_left;
  uint32_t repo;    /* tokens of repository context */
  uint32_t hist;    /* tokens of conversation since the last compaction */
  uint32_t epoch;   /* compactions so far */
  uint32_t jobs;    /* batch jobs so far */
  uint64_t waiting; /* request id awaited; 0: none */
  uint64_t *hashes; /* the context's block hashes, then scratch for a job */
  size_t n_hashed;  /* context blocks hashed so far */
  size_t cap;
} session_t;

typedef struct codex {
  workload_t base; /* first: the driver sees a workload_t */
  workload_codex_config_t cfg;
  double mix_cum[INFS_CLASS_COUNT];
  uint64_t system_stream;
  infs_time_t end; /* no arrivals from here */
  session_t *s;
  size_t n;
  size_t cap;
  uint32_t *heap; /* scheduled sessions, by (at, index) */
  size_t heap_n;
  uint32_t *free_slots; /* slots of ended one-off sessions */
  size_t n_free;
  u64map_t waiting; /* awaited request id (mixed) -> session index */
  workload_rng_t rng_open;
  double next_open_s; /* arrival of the next one-off session */
  uint64_t opened;    /* one-off sessions so far */
} codex_t;

static uint64_t part_stream(const codex_t *c, uint64_t key, uint64_t part,
                            uint64_t n) {
  return workload_stream_id(c->base.opts.seed,
                            key * 0xff51afd7ed558ccdull + (part << 40) + n);
}

static infs_time_t ms_to_us(uint32_t ms) {
  return (infs_time_t)ms * INFS_US_PER_MS;
}

/* --- the schedule: a binary heap of session indexes --- */

static bool before(const codex_t *c, uint32_t a, uint32_t b) {
  return c->s[a].at < c->s[b].at || (c->s[a].at == c->s[b].at && a < b);
}

static void heap_set(codex_t *c, size_t pos, uint32_t idx) {
  c->heap[pos] = idx;
  c->s[idx].heap_pos = (uint32_t)pos;
}

static void heap_push(codex_t *c, uint32_t idx) {
  size_t pos = c->heap_n++;
  while (pos > 0) {
    size_t parent = (pos - 1) / 2;
    if (!before(c, idx, c->heap[parent]))
      break;
    heap_set(c, pos, c->heap[parent]);
    pos = parent;
  }
  heap_set(c, pos, idx);
}

static uint32_t heap_pop(codex_t *c) {
  uint32_t top = c->heap[0];
  uint32_t last = c->heap[--c->heap_n];
  size_t pos = 0, n = c->heap_n;
  while (n) {
    size_t child = 2 * pos + 1;
    if (child >= n)
      break;
    if (child + 1 < n && before(c, c->heap[child + 1], c->heap[child]))
      child++;
    if (!before(c, c->heap[child], last))
      break;
    heap_set(c, pos, c->heap[child]);
    pos = child;
  }
  if (n)
    heap_set(c, pos, last);
  c->s[top].heap_pos = NOT_QUEUED;
  return top;
}

/* --- sessions --- */

static uint32_t draw(session_t *s, const workload_dist_t *d) {
  return workload_dist_sample(d, &s->rng);
}

/* Outputs are held to a quarter of the context so that a compacted
 * conversation always leaves room for the prompt's new part. */
static uint32_t draw_output(const codex_t *c, session_t *s,
                            const workload_dist_t *d) {
  uint32_t v = draw(s, d);
  return v < c->cfg.max_context / 4 ? v : c->cfg.max_context / 4;
}

static uint64_t context_len(const codex_t *c, const session_t *s) {
  return (uint64_t)c->cfg.system_tokens + s->repo + s->hist;
}

static size_t context_segments(const codex_t *c, const session_t *s,
                               workload_segment_t segs[3]) {
  segs[0] = (workload_segment_t){c->system_stream, 0, c->cfg.system_tokens};
  segs[1] = (workload_segment_t){s->repo_stream, 0, s->repo};
  segs[2] = (workload_segment_t){s->hist_stream, 0, s->hist};
  return 3;
}

static void reserve_blocks(session_t *s, size_t blocks) {
  if (blocks <= s->cap)
    return;
  size_t cap = s->cap ? s->cap : 256;
  while (cap < blocks)
    cap *= 2;
  s->hashes = xrealloc(s->hashes, cap * sizeof *s->hashes);
  s->cap = cap;
}

/* Extends the context's hashes to its current length. */
static void hash_context(const codex_t *c, session_t *s) {
  uint32_t bs = c->base.opts.block_size;
  size_t to = (size_t)(context_len(c, s) / bs);
  if (to <= s->n_hashed)
    return;
  workload_segment_t segs[3];
  size_t n = context_segments(c, s, segs);
  reserve_blocks(s, to);
  workload_hash_range(segs, n, bs, s->hashes, s->n_hashed, to);
  s->n_hashed = to;
}

/* Replaces the conversation by a summary in a fresh stream: the system
 * prefix and the repository stay, so their blocks stay cached. */
static void compact(const codex_t *c, session_t *s) {
  uint32_t bs = c->base.opts.block_size;
  s->epoch++;
  s->hist_stream = part_stream(c, s->key, PART_HISTORY, s->epoch);
  s->hist = c->cfg.summary_tokens < c->cfg.max_context / 8
                ? c->cfg.summary_tokens
                : c->cfg.max_context / 8;
  size_t keep = (size_t)(((uint64_t)c->cfg.system_tokens + s->repo) / bs);
  if (s->n_hashed > keep)
    s->n_hashed = keep;
}

/* Returns how much of `add` new tokens the context takes with room for
 * `out` output tokens after them, compacting first when they do not fit. */
static uint32_t fit(const codex_t *c, session_t *s, uint32_t add,
                    uint32_t out) {
  uint64_t max = c->cfg.max_context;
  if (context_len(c, s) + add + out > max)
    compact(c, s);
  uint64_t len = context_len(c, s);
  if (len + add + out > max)
    add = len + out < max ? (uint32_t)(max - out - len) : 0;
  return add;
}

static void retire(codex_t *c, uint32_t idx) {
  session_t *s = &c->s[idx];
  s->act = ACT_NONE;
  if (!s->fixed)
    c->free_slots[c->n_free++] = idx;
}

static void schedule(codex_t *c, uint32_t idx, act_t act, infs_time_t at) {
  session_t *s = &c->s[idx];
  if (at >= c->end) {
    retire(c, idx);
    return;
  }
  s->act = (uint8_t)act;
  s->at = at;
  heap_push(c, idx);
}

static uint64_t fixed_key(uint32_t slot, uint32_t gen) {
  return (1ull << 63) | ((uint64_t)slot << 32) | gen;
}

static void session_begin(codex_t *c, uint32_t idx) {
  session_t *s = &c->s[idx];
  const workload_codex_config_t *cfg = &c->cfg;
  workload_rng_seed(&s->rng, c->base.opts.seed, s->key ^ STREAM_SESSION);
  s->repo_stream = part_stream(c, s->key, PART_REPO, 0);
  s->epoch = 0;
  s->hist_stream = part_stream(c, s->key, PART_HISTORY, 0);
  s->hist = 0;
  s->jobs = 0;
  s->n_hashed = 0;
  uint32_t repo_max = cfg->max_context / 2 - cfg->system_tokens;
  s->repo = draw(s, &cfg->repo_tokens);
  if (s->repo > repo_max)
    s->repo = repo_max;
  s->turns_left = draw(s, &cfg->turns);
  if (s->fixed)
    snprintf(s->id, sizeof s->id, "codex-%u.%u", idx, s->gen);
  else
    snprintf(s->id, sizeof s->id, "codex-o%llu",
             (unsigned long long)(s->key + 1));
}

static void session_end(codex_t *c, uint32_t idx, infs_time_t now) {
  session_t *s = &c->s[idx];
  infs_time_t next = now + ms_to_us(draw(s, &c->cfg.think_ms));
  if (!s->fixed) {
    retire(c, idx);
    return;
  }
  s->gen++;
  s->key = fixed_key(idx, s->gen);
  schedule(c, idx, ACT_START, next);
}

static void end_turn(codex_t *c, uint32_t idx, infs_time_t now) {
  session_t *s = &c->s[idx];
  if (s->turns_left > 1) {
    s->turns_left--;
    schedule(c, idx, ACT_TURN, now + ms_to_us(draw(s, &c->cfg.think_ms)));
    return;
  }
  s->turns_left = 0;
  session_end(c, idx, now);
}

/* Fills req with the context plus `job` tokens of a batch instruction
 * (0 otherwise) as its prompt. */
static void emit(codex_t *c, uint32_t idx, workload_req_t *req, infs_time_t at,
                 infs_class_t cls, uint32_t job, uint32_t out) {
  session_t *s = &c->s[idx];
  uint32_t bs = c->base.opts.block_size;
  uint64_t len = context_len(c, s);
  workload_begin_request(&c->base, req, at, cls, (uint32_t)(len + job), out);
  memcpy(req->session, s->id, sizeof req->session);
  hash_context(c, s);
  size_t blocks = (size_t)((len + job) / bs);
  if (job && blocks > s->n_hashed) {
    /* The instruction branches off the conversation: its blocks go after
     * the context's in scratch space and are not kept as context. */
    workload_segment_t segs[4];
    context_segments(c, s, segs);
    segs[3] =
        (workload_segment_t){part_stream(c, s->key, PART_JOB, s->jobs), 0, job};
    reserve_blocks(s, blocks);
    workload_hash_range(segs, 4, bs, s->hashes, s->n_hashed, blocks);
  }
  req->blocks = s->hashes;
  req->n_blocks = blocks;
}

static void wait_for(codex_t *c, uint32_t idx, uint64_t id) {
  c->s[idx].waiting = id;
  u64map_put(&c->waiting, id, idx);
}

static infs_class_t draw_kind(const codex_t *c, session_t *s) {
  double u = workload_rng_uniform(&s->rng);
  for (int k = 0; k < INFS_CLASS_COUNT; k++)
    if (u < c->mix_cum[k] && c->cfg.mix[k] > 0)
      return (infs_class_t)k;
  for (int k = INFS_CLASS_COUNT - 1; k > 0; k--)
    if (c->cfg.mix[k] > 0)
      return (infs_class_t)k;
  return (infs_class_t)0;
}

static void turn_begin(codex_t *c, uint32_t idx, infs_time_t at,
                       workload_req_t *req) {
  session_t *s = &c->s[idx];
  const workload_codex_config_t *cfg = &c->cfg;
  s->kind = (uint8_t)draw_kind(c, s);
  uint32_t add, out;
  switch ((infs_class_t)s->kind) {
  case INFS_CLASS_AGENT:
    s->steps_left = draw(s, &cfg->steps);
    add = draw(s, &cfg->user_tokens);
    out = draw_output(c, s, &cfg->answer_tokens);
    s->hist += fit(c, s, add, out);
    emit(c, idx, req, at, INFS_CLASS_AGENT, 0, out);
    wait_for(c, idx, req->id);
    break;
  case INFS_CLASS_INTERACTIVE:
    add = draw(s, &cfg->question_tokens);
    out = draw_output(c, s, &cfg->completion_tokens);
    s->hist += fit(c, s, add, out);
    emit(c, idx, req, at, INFS_CLASS_INTERACTIVE, 0, out);
    wait_for(c, idx, req->id);
    break;
  default:
    /* A background job: the session goes on without its answer. */
    add = draw(s, &cfg->job_tokens);
    out = draw_output(c, s, &cfg->job_output_tokens);
    add = fit(c, s, add, out);
    emit(c, idx, req, at, INFS_CLASS_BATCH, add, out);
    s->jobs++;
    end_turn(c, idx, at);
    break;
  }
}

static void step(codex_t *c, uint32_t idx, infs_time_t at,
                 workload_req_t *req) {
  session_t *s = &c->s[idx];
  uint32_t add = draw(s, &c->cfg.tool_tokens);
  uint32_t out = draw_output(c, s, &c->cfg.answer_tokens);
  s->hist += fit(c, s, add, out);
  emit(c, idx, req, at, INFS_CLASS_AGENT, 0, out);
  wait_for(c, idx, req->id);
}

/* --- one-off sessions --- */

static infs_time_t open_time(const codex_t *c) {
  if (!isfinite(c->next_open_s))
    return INFS_TIME_NEVER;
  infs_time_t t = (infs_time_t)llround(c->next_open_s * 1e6);
  return t < c->end ? t : INFS_TIME_NEVER;
}

static uint32_t slot_new(codex_t *c) {
  if (c->n_free)
    return c->free_slots[--c->n_free];
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 16;
    c->s = xrealloc(c->s, c->cap * sizeof *c->s);
    c->heap = xrealloc(c->heap, c->cap * sizeof *c->heap);
    c->free_slots = xrealloc(c->free_slots, c->cap * sizeof *c->free_slots);
  }
  session_t *s = &c->s[c->n];
  memset(s, 0, sizeof *s);
  s->heap_pos = NOT_QUEUED;
  return (uint32_t)c->n++;
}

/* Starts the one-off sessions that arrive before every scheduled one. */
static void admit_arrivals(codex_t *c) {
  for (;;) {
    infs_time_t t = open_time(c);
    if (t == INFS_TIME_NEVER || (c->heap_n && c->s[c->heap[0]].at < t))
      return;
    uint32_t idx = slot_new(c);
    session_t *s = &c->s[idx];
    s->fixed = false;
    s->key = c->opened++;
    schedule(c, idx, ACT_START, t);
    c->next_open_s += workload_rng_exp(&c->rng_open, 1.0 / c->cfg.session_rate);
  }
}

/* --- the generator interface --- */

static infs_time_t codex_next_time(const workload_t *w) {
  const codex_t *c = (const codex_t *)w;
  infs_time_t t = c->heap_n ? c->s[c->heap[0]].at : INFS_TIME_NEVER;
  infs_time_t o = open_time(c);
  return o < t ? o : t;
}

static int codex_pop(workload_t *w, infs_time_t now, workload_req_t *req) {
  (void)now;
  codex_t *c = (codex_t *)w;
  admit_arrivals(c);
  if (c->heap_n == 0)
    return -EAGAIN;
  uint32_t idx = heap_pop(c);
  session_t *s = &c->s[idx];
  infs_time_t at = s->at;
  switch ((act_t)s->act) {
  case ACT_START:
    session_begin(c, idx);
    turn_begin(c, idx, at, req);
    break;
  case ACT_TURN:
    turn_begin(c, idx, at, req);
    break;
  case ACT_STEP:
    step(c, idx, at, req);
    break;
  default:
    return -EAGAIN; /* not reached: only scheduled sessions are queued */
  }
  return 0;
}

static void codex_on_done(workload_t *w, uint64_t id, infs_time_t now, bool ok,
                          uint32_t generated_tokens) {
  codex_t *c = (codex_t *)w;
  uint32_t idx;
  if (!u64map_get(&c->waiting, id, &idx))
    return; /* a batch job, or not ours */
  u64map_del(&c->waiting, id);
  session_t *s = &c->s[idx];
  s->waiting = 0;
  if (ok)
    s->hist += fit(c, s, generated_tokens, 0);
  /* A failed call ends the turn: the user looks at what happened. */
  if (ok && s->kind == INFS_CLASS_AGENT && s->steps_left > 1) {
    s->steps_left--;
    schedule(c, idx, ACT_STEP, now + ms_to_us(draw(s, &c->cfg.tool_ms)));
    return;
  }
  s->steps_left = 0;
  end_turn(c, idx, now);
}

static bool codex_finished(const workload_t *w) {
  const codex_t *c = (const codex_t *)w;
  return c->heap_n == 0 && c->waiting.len == 0 &&
         open_time(c) == INFS_TIME_NEVER;
}

static void codex_destroy(workload_t *w) {
  codex_t *c = (codex_t *)w;
  for (size_t i = 0; i < c->n; i++)
    free(c->s[i].hashes);
  free(c->s);
  free(c->heap);
  free(c->free_slots);
  u64map_free(&c->waiting);
  free(c);
}

static const workload_ops_t codex_ops = {
    .name = "codex",
    .next_time = codex_next_time,
    .pop = codex_pop,
    .on_done = codex_on_done,
    .finished = codex_finished,
    .destroy = codex_destroy,
};

int workload_codex_new(const workload_opts_t *opts,
                       const workload_codex_config_t *cfg, workload_t **out,
                       char *err, size_t errlen) {
  *out = NULL;
  const char *key;
  char why[256];
  if (workload_codex_config_check(cfg, &key, why, sizeof why))
    return workload_errf(INFS_ECONFIG, err, errlen, "codex: %s: %s",
                         key ? key : "config", why);
  if (opts->duration_s <= 0.0 && opts->max_requests == 0)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "codex: needs a duration or a request limit");
  codex_t *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  int rc = workload_base_init(&c->base, &codex_ops, opts, err, errlen);
  if (rc) {
    free(c);
    return rc;
  }
  c->cfg = *cfg;
  double total = 0, cum = 0;
  for (int k = 0; k < INFS_CLASS_COUNT; k++)
    total += cfg->mix[k];
  for (int k = 0; k < INFS_CLASS_COUNT; k++) {
    cum += cfg->mix[k] / total;
    c->mix_cum[k] = cum;
  }
  c->mix_cum[INFS_CLASS_COUNT - 1] = 1.0;
  c->system_stream = workload_stream_id(opts->seed, SYSTEM_KEY);
  c->end = workload_end_time(&c->base);
  u64map_init(&c->waiting);
  workload_rng_seed(&c->rng_open, opts->seed, STREAM_OPEN);
  c->next_open_s = INFINITY;
  if (cfg->session_rate > 0)
    c->next_open_s = workload_rng_exp(&c->rng_open, 1.0 / cfg->session_rate);
  /* The fixed population starts spread out, so the first calls do not all
   * land at once. */
  for (uint32_t i = 0; i < cfg->sessions; i++) {
    uint32_t idx = slot_new(c);
    session_t *s = &c->s[idx];
    s->fixed = true;
    s->key = fixed_key(idx, 0);
    double at_s =
        workload_rng_uniform(&c->base.rng_arrival) * cfg->start_spread_s;
    schedule(c, idx, ACT_START, (infs_time_t)llround(at_s * 1e6));
  }
  *out = &c->base;
  return 0;
}
