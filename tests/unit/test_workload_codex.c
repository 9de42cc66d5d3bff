/* lib/workload_codex: reproducibility, growing prompts that repeat their
 * earlier blocks, the fraction of prompt blocks already seen, the closed loop
 * inside a session, batch jobs, one-off sessions, the context cap, and the
 * workload file. A small virtual-time driver answers every awaited call
 * after a latency that depends on its prompt. */
#include "workload.h"
#include "workload_fixture.h"

#include "infsched/errors.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef INFSCHED_SOURCE_DIR
#error "INFSCHED_SOURCE_DIR must point at the source tree"
#endif
#define CODEX_YAML INFSCHED_SOURCE_DIR "/configs/workloads/codex.yaml"

#define MS 1000ull
#define SEC 1000000ull

static workload_t *codex(const workload_opts_t *o,
                         const workload_codex_config_t *cfg) {
  char err[512] = "";
  workload_t *w = NULL;
  int rc = workload_codex_new(o, cfg, &w, err, sizeof err);
  if (rc)
    fail_msg("codex: %s", err);
  return w;
}

/* --- a virtual-time driver --- */

typedef struct pending {
  infs_time_t at;
  uint64_t id;
  uint32_t generated;
} pending_t;

typedef struct driver {
  pending_t *heap;
  size_t n;
  size_t cap;
  double latency_scale; /* changes how answers interleave across sessions */
  uint64_t done;
} driver_t;

static void pend_push(driver_t *d, pending_t p) {
  if (d->n == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 64;
    d->heap = realloc(d->heap, d->cap * sizeof *d->heap);
    assert_non_null(d->heap);
  }
  size_t i = d->n++;
  while (i > 0 &&
         (d->heap[(i - 1) / 2].at > p.at || (d->heap[(i - 1) / 2].at == p.at &&
                                             d->heap[(i - 1) / 2].id > p.id))) {
    d->heap[i] = d->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  d->heap[i] = p;
}

static pending_t pend_pop(driver_t *d) {
  pending_t top = d->heap[0], last = d->heap[--d->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= d->n)
      break;
    if (c + 1 < d->n && (d->heap[c + 1].at < d->heap[c].at ||
                         (d->heap[c + 1].at == d->heap[c].at &&
                          d->heap[c + 1].id < d->heap[c].id)))
      c++;
    if (last.at < d->heap[c].at ||
        (last.at == d->heap[c].at && last.id <= d->heap[c].id))
      break;
    d->heap[i] = d->heap[c];
    i = c;
  }
  if (d->n)
    d->heap[i] = last;
  return top;
}

typedef void (*req_fn)(const workload_req_t *r, void *arg);

/* Runs the workload to its end: every request is answered with all its
 * tokens after 50 ms + 20 us per prompt token + 10 ms per output token,
 * times the scale. Returns the number of requests. */
static uint64_t drive(workload_t *w, double scale, req_fn fn, void *arg) {
  driver_t d = {.latency_scale = scale};
  uint64_t n = 0;
  for (;;) {
    infs_time_t next = workload_next_time(w);
    if (d.n && d.heap[0].at <= next) {
      pending_t p = pend_pop(&d);
      workload_on_done(w, p.id, p.at, true, p.generated);
      continue;
    }
    if (next == INFS_TIME_NEVER)
      break;
    workload_req_t r;
    assert_int_equal(workload_pop(w, next, &r), 0);
    assert_int_equal(r.arrival, next);
    n++;
    if (fn)
      fn(&r, arg);
    double lat =
        (50.0 * MS + 20.0 * r.prompt_tokens + 10.0 * MS * r.max_tokens) * scale;
    pend_push(&d,
              (pending_t){r.arrival + (infs_time_t)lat, r.id, r.max_tokens});
  }
  assert_true(workload_finished(w));
  free(d.heap);
  return n;
}

/* --- per-session records --- */

#define MAX_SESSIONS 4096

typedef struct sreq {
  uint32_t prompt;
  uint32_t max_tokens;
  uint8_t cls;
  size_t n_blocks;
  uint64_t *blocks;
} sreq_t;

typedef struct srec {
  char id[WORKLOAD_SESSION_MAX];
  sreq_t *v;
  size_t n;
  size_t cap;
} srec_t;

typedef struct sessions {
  srec_t s[MAX_SESSIONS];
  size_t n;
  bool keep_blocks;
} sessions_t;

static srec_t *session_of(sessions_t *ss, const char *id) {
  for (size_t i = 0; i < ss->n; i++)
    if (strcmp(ss->s[i].id, id) == 0)
      return &ss->s[i];
  assert_true(ss->n < MAX_SESSIONS);
  srec_t *s = &ss->s[ss->n++];
  memset(s, 0, sizeof *s);
  snprintf(s->id, sizeof s->id, "%s", id);
  return s;
}

static void record(const workload_req_t *r, void *arg) {
  sessions_t *ss = arg;
  assert_true(r->session[0] != '\0');
  srec_t *s = session_of(ss, r->session);
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 16;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
  }
  sreq_t *q = &s->v[s->n++];
  *q = (sreq_t){r->prompt_tokens, r->max_tokens, (uint8_t)r->cls, r->n_blocks,
                NULL};
  if (ss->keep_blocks) {
    q->blocks = malloc(r->n_blocks * sizeof *q->blocks + 1);
    memcpy(q->blocks, r->blocks, r->n_blocks * sizeof *q->blocks);
  }
}

static void sessions_free(sessions_t *ss) {
  for (size_t i = 0; i < ss->n; i++) {
    for (size_t j = 0; j < ss->s[i].n; j++)
      free(ss->s[i].v[j].blocks);
    free(ss->s[i].v);
  }
  free(ss);
}

static sessions_t *sessions_new(bool keep_blocks) {
  sessions_t *ss = calloc(1, sizeof *ss);
  assert_non_null(ss);
  ss->keep_blocks = keep_blocks;
  return ss;
}

/* --- reproducibility --- */

static uint64_t run_digest(const workload_opts_t *o,
                           const workload_codex_config_t *cfg) {
  workload_t *w = codex(o, cfg);
  digest_t d = {1469};
  assert_true(drive(w, 1.0, digest_req, &d) > 0);
  workload_destroy(&w);
  return d.h;
}

static void defaults(workload_opts_t *o, workload_codex_config_t *cfg) {
  workload_opts_default(o);
  workload_codex_config_default(cfg);
}

static void test_reproducible(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  defaults(&o, &cfg);
  o.duration_s = 1800;
  o.seed = 7;
  cfg.session_rate = 0.02;
  uint64_t a = run_digest(&o, &cfg);
  assert_true(a == run_digest(&o, &cfg));
  o.seed = 8;
  assert_true(run_digest(&o, &cfg) != a);
}

/* A session's calls depend on its own history only: answering faster or
 * slower changes how sessions interleave, not what each one sends (up to
 * where the duration cuts it). */
static void test_sessions_independent_of_timing(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  defaults(&o, &cfg);
  o.duration_s = 3600;
  cfg.sessions = 16;
  cfg.think_ms =
      (workload_dist_t){WORKLOAD_DIST_LOGNORMAL, 5000, 1, 100, 60000};
  sessions_t *a = sessions_new(false), *b = sessions_new(false);
  workload_t *w = codex(&o, &cfg);
  drive(w, 1.0, record, a);
  workload_destroy(&w);
  w = codex(&o, &cfg);
  drive(w, 3.0, record, b);
  workload_destroy(&w);
  size_t compared = 0;
  for (size_t i = 0; i < a->n; i++) {
    srec_t *sa = &a->s[i], *sb = session_of(b, sa->id);
    size_t n = sa->n < sb->n ? sa->n : sb->n;
    for (size_t j = 0; j < n; j++) {
      assert_int_equal(sa->v[j].prompt, sb->v[j].prompt);
      assert_int_equal(sa->v[j].max_tokens, sb->v[j].max_tokens);
      assert_int_equal(sa->v[j].cls, sb->v[j].cls);
    }
    compared += n;
  }
  assert_true(compared > 500);
  sessions_free(a);
  sessions_free(b);
}

/* --- growth and shared prefixes --- */

static workload_dist_t fixed(uint32_t v) {
  return (workload_dist_t){WORKLOAD_DIST_FIXED, v, 0, v, v};
}

/* Agent turns only, fixed sizes, no compaction. */
static void fixed_config(workload_codex_config_t *cfg) {
  workload_codex_config_default(cfg);
  cfg->mix[INFS_CLASS_INTERACTIVE] = 0;
  cfg->mix[INFS_CLASS_AGENT] = 1;
  cfg->mix[INFS_CLASS_BATCH] = 0;
  cfg->system_tokens = 1000;
  cfg->repo_tokens = fixed(1100);
  cfg->turns = fixed(2);
  cfg->steps = fixed(4);
  cfg->user_tokens = fixed(50);
  cfg->tool_tokens = fixed(100);
  cfg->answer_tokens = fixed(70);
  cfg->tool_ms = fixed(100);
  cfg->think_ms = fixed(1000);
  cfg->start_spread_s = 1;
}

/* Prompt sizes of a session of fixed_config: 2 turns of 4 steps; user 50
 * opens a turn, then answer 70 + tool 100 come before each further step;
 * the next turn adds the last answer and a new user message. */
static uint32_t fixed_prompt(size_t j) {
  uint32_t p = 1000 + 1100 + 50;
  for (size_t k = 0; k < j; k++)
    p += k == 3 ? 70 + 50 : 70 + 100;
  return p;
}

static void test_prompts_grow_and_repeat(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  workload_opts_default(&o);
  fixed_config(&cfg);
  cfg.sessions = 5;
  o.duration_s = 120;
  sessions_t *ss = sessions_new(true);
  workload_t *w = codex(&o, &cfg);
  drive(w, 1.0, record, ss);
  workload_destroy(&w);
  uint32_t bs = o.block_size;
  const sreq_t *first = &ss->s[0].v[0];
  size_t complete = 0;
  for (size_t i = 0; i < ss->n; i++) {
    const srec_t *s = &ss->s[i];
    assert_true(s->n <= 8);
    complete += s->n == 8;
    for (size_t j = 0; j < s->n; j++) {
      const sreq_t *q = &s->v[j];
      assert_int_equal(q->cls, INFS_CLASS_AGENT);
      assert_int_equal(q->max_tokens, 70);
      assert_int_equal(q->prompt, fixed_prompt(j));
      assert_int_equal(q->n_blocks, fixed_prompt(j) / bs);
      if (j == 0)
        continue;
      /* The previous prompt's whole blocks open this one. */
      const sreq_t *p = &s->v[j - 1];
      assert_true(p->n_blocks < q->n_blocks);
      assert_memory_equal(p->blocks, q->blocks,
                          p->n_blocks * sizeof *p->blocks);
      assert_true(q->blocks[p->n_blocks] != p->blocks[p->n_blocks - 1]);
    }
    /* The system prefix's 15 whole blocks are the same in every session;
     * the repository after it is the session's own. */
    assert_memory_equal(s->v[0].blocks, first->blocks, 15 * sizeof(uint64_t));
    if (i > 0)
      assert_true(s->v[0].blocks[16] != first->blocks[16]);
  }
  /* Slots start new sessions as theirs end: about 8 s per session. */
  assert_true(complete >= 5 * 10);
  sessions_free(ss);
}

/* Counts, over all prompts, the blocks some earlier prompt already had. */
typedef struct seen {
  uint64_t *set; /* open addressing; 0 is empty (hashes of 0 are skipped) */
  size_t cap;
  size_t len;
  uint64_t blocks;
  uint64_t seen;
  uint64_t by_class_n[INFS_CLASS_COUNT];
  uint32_t *prompts; /* agent prompts */
  uint32_t *outputs; /* agent outputs */
  size_t n_agent;
  size_t cap_agent;
  uint32_t max_prompt;
} seen_t;

static bool set_add(seen_t *s, uint64_t h) {
  if (h == 0)
    return false;
  if (2 * (s->len + 1) > s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 1 << 16;
    uint64_t *set = calloc(cap, sizeof *set);
    assert_non_null(set);
    for (size_t i = 0; i < s->cap; i++) {
      if (!s->set[i])
        continue;
      size_t j = (s->set[i] * 0x9e3779b97f4a7c15ull) >> 20 & (cap - 1);
      while (set[j])
        j = (j + 1) & (cap - 1);
      set[j] = s->set[i];
    }
    free(s->set);
    s->set = set;
    s->cap = cap;
  }
  size_t j = (h * 0x9e3779b97f4a7c15ull) >> 20 & (s->cap - 1);
  while (s->set[j]) {
    if (s->set[j] == h)
      return false;
    j = (j + 1) & (s->cap - 1);
  }
  s->set[j] = h;
  s->len++;
  return true;
}

static void count_seen(const workload_req_t *r, void *arg) {
  seen_t *s = arg;
  s->blocks += r->n_blocks;
  for (size_t i = 0; i < r->n_blocks; i++)
    s->seen += !set_add(s, r->blocks[i]);
  s->by_class_n[r->cls]++;
  if (r->prompt_tokens > s->max_prompt)
    s->max_prompt = r->prompt_tokens;
  if (r->cls == INFS_CLASS_AGENT) {
    if (s->n_agent == s->cap_agent) {
      s->cap_agent = s->cap_agent ? 2 * s->cap_agent : 1024;
      s->prompts = realloc(s->prompts, s->cap_agent * sizeof *s->prompts);
      s->outputs = realloc(s->outputs, s->cap_agent * sizeof *s->outputs);
    }
    s->prompts[s->n_agent] = r->prompt_tokens;
    s->outputs[s->n_agent++] = r->max_tokens;
  }
}

static void seen_free(seen_t *s) {
  free(s->set);
  free(s->prompts);
  free(s->outputs);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static uint32_t quantile(uint32_t *v, size_t n, double q) {
  qsort(v, n, sizeof *v, cmp_u32);
  return v[(size_t)(q * (double)(n - 1))];
}

typedef struct both {
  seen_t seen;
  sessions_t *ss;
} both_t;

static void count_and_record(const workload_req_t *r, void *arg) {
  both_t *b = arg;
  count_seen(r, &b->seen);
  record(r, b->ss);
}

/* With fixed sizes the fraction is exact: each prompt has seen the previous
 * one's whole blocks (blocks of 64), and a session's first prompt the system
 * prefix's 15 whole blocks, except in the very first session. */
static void test_seen_fraction_exact(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  workload_opts_default(&o);
  fixed_config(&cfg);
  cfg.sessions = 6;
  o.duration_s = 300;
  both_t b = {.ss = sessions_new(false)};
  workload_t *w = codex(&o, &cfg);
  drive(w, 1.0, count_and_record, &b);
  workload_destroy(&w);
  uint64_t blocks = 0, seen = 0;
  for (size_t i = 0; i < b.ss->n; i++) {
    for (size_t j = 0; j < b.ss->s[i].n; j++) {
      blocks += fixed_prompt(j) / 64;
      seen += j == 0 ? 1000 / 64 : fixed_prompt(j - 1) / 64;
    }
  }
  seen -= 1000 / 64;
  assert_true(b.ss->n > 6 * 10);
  assert_int_equal(b.seen.blocks, blocks);
  assert_int_equal(b.seen.seen, seen);
  print_message("fixed sizes: %.1f%% of prompt blocks seen before\n",
                100.0 * (double)seen / (double)blocks);
  seen_free(&b.seen);
  sessions_free(b.ss);
}

/* The defaults land where real coding-agent traces are: 85-96% of prompt
 * tokens already seen, contexts growing past 100K, a few hundred output
 * tokens per agent step, agent calls the bulk. */
static void test_defaults_match_traces(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  defaults(&o, &cfg);
  cfg.sessions = 32;
  o.duration_s = 4 * 3600;
  seen_t s = {0};
  workload_t *w = codex(&o, &cfg);
  uint64_t n = drive(w, 1.0, count_seen, &s);
  workload_destroy(&w);
  double frac = (double)s.seen / (double)s.blocks;
  print_message("%llu requests, %.1f%% of prompt blocks seen before\n",
                (unsigned long long)n, 100.0 * frac);
  assert_true(n > 5000);
  assert_true(frac >= 0.85 && frac <= 0.96);
  assert_true(s.by_class_n[INFS_CLASS_AGENT] > 0.85 * (double)n);
  assert_true(s.by_class_n[INFS_CLASS_INTERACTIVE] > 0.02 * (double)n);
  assert_true(s.by_class_n[INFS_CLASS_BATCH] > 0.005 * (double)n);
  assert_true(s.max_prompt > 100000 && s.max_prompt <= 131072);
  uint32_t p50 = quantile(s.prompts, s.n_agent, 0.5);
  uint32_t out50 = quantile(s.outputs, s.n_agent, 0.5);
  print_message("agent prompt p50 %u, output p50 %u\n", p50, out50);
  assert_true(p50 > 32768 && p50 < 100000);
  assert_true(out50 >= 150 && out50 <= 220);
  seen_free(&s);
}

/* --- the closed loop --- */

static void test_closed_loop(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  workload_opts_default(&o);
  fixed_config(&cfg);
  cfg.sessions = 3;
  cfg.start_spread_s = 0;
  o.duration_s = 600;
  workload_t *w = codex(&o, &cfg);
  workload_req_t r[3];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(workload_pop(w, 0, &r[i]), 0);
    assert_int_equal(r[i].arrival, 0);
  }
  assert_string_not_equal(r[0].session, r[1].session);
  assert_string_not_equal(r[1].session, r[2].session);
  /* Every session waits for its answer: nothing is due, ever. */
  assert_int_equal(workload_next_time(w), INFS_TIME_NEVER);
  assert_int_equal(workload_pop(w, INFS_TIME_NEVER - 1, &r[0]), -EAGAIN);
  assert_false(workload_finished(w));
  /* An answer for a request it does not know changes nothing. */
  workload_on_done(w, 999, 5 * SEC, true, 10);
  assert_int_equal(workload_next_time(w), INFS_TIME_NEVER);
  /* Session 1's answer at 2 s: its next step follows the tool run. */
  workload_on_done(w, r[1].id, 2 * SEC, true, 70);
  assert_int_equal(workload_next_time(w), 2 * SEC + 100 * MS);
  workload_req_t q;
  assert_int_equal(workload_pop(w, 2 * SEC + 99 * MS, &q), -EAGAIN);
  assert_int_equal(workload_pop(w, 3 * SEC, &q), 0);
  assert_string_equal(q.session, r[1].session);
  assert_int_equal(q.arrival, 2 * SEC + 100 * MS);
  assert_int_equal(q.prompt_tokens, r[1].prompt_tokens + 70 + 100);
  assert_int_equal(workload_next_time(w), INFS_TIME_NEVER);
  /* A failed call ends the turn: the next one follows a think time. */
  workload_on_done(w, r[0].id, 4 * SEC, false, 0);
  assert_int_equal(workload_next_time(w), 5 * SEC);
  assert_int_equal(workload_pop(w, 5 * SEC, &q), 0);
  assert_string_equal(q.session, r[0].session);
  assert_int_equal(q.prompt_tokens, r[0].prompt_tokens + 50);
  workload_destroy(&w);
}

/* Batch jobs are fire and forget; their instruction is not kept. */
static void test_batch_jobs(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  workload_opts_default(&o);
  fixed_config(&cfg);
  cfg.mix[INFS_CLASS_AGENT] = 0;
  cfg.mix[INFS_CLASS_BATCH] = 1;
  cfg.job_tokens = fixed(300);
  cfg.job_output_tokens = fixed(900);
  cfg.sessions = 1;
  cfg.turns = fixed(3);
  cfg.start_spread_s = 0;
  o.duration_s = 600;
  workload_t *w = codex(&o, &cfg);
  workload_req_t q;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(workload_pop(w, INFS_TIME_NEVER - 1, &q), 0);
    assert_int_equal(q.cls, INFS_CLASS_BATCH);
    assert_int_equal(q.arrival, (infs_time_t)i * SEC);
    assert_int_equal(q.prompt_tokens, 1000 + 1100 + 300);
    assert_int_equal(q.max_tokens, 900);
    assert_int_equal(q.n_blocks, 2400 / 64);
    assert_string_equal(q.session, "codex-0.0");
  }
  /* The slot's next session starts a think time after the last job. */
  assert_int_equal(workload_pop(w, INFS_TIME_NEVER - 1, &q), 0);
  assert_string_equal(q.session, "codex-0.1");
  assert_int_equal(q.arrival, 3 * SEC);
  workload_destroy(&w);
}

/* --- one-off sessions and the request cap --- */

static void test_open_sessions(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  defaults(&o, &cfg);
  cfg.sessions = 0;
  cfg.session_rate = 2;
  o.duration_s = 200;
  sessions_t *ss = sessions_new(false);
  workload_t *w = codex(&o, &cfg);
  drive(w, 1.0, record, ss);
  workload_destroy(&w);
  /* 400 expected; Poisson sd 20. */
  assert_true(ss->n > 320 && ss->n < 480);
  for (size_t i = 0; i < ss->n; i++)
    assert_memory_equal(ss->s[i].id, "codex-o", 7);
  sessions_free(ss);

  /* The cap counts requests, whatever the sessions do. */
  o.duration_s = 0;
  o.max_requests = 123;
  w = codex(&o, &cfg);
  assert_int_equal(drive(w, 1.0, NULL, NULL), 123);
  workload_destroy(&w);
}

/* --- the context cap --- */

typedef struct capped {
  uint32_t max_context;
  uint32_t max_seen;
  uint32_t drops; /* prompts smaller than their session's previous one */
  char last_session[WORKLOAD_SESSION_MAX];
  uint32_t last_prompt;
  size_t prefix_blocks; /* system + repository, kept by a compaction */
  uint64_t *first;      /* the session's first prompt's blocks */
  size_t n_first;
} capped_t;

static void check_cap(const workload_req_t *r, void *arg) {
  capped_t *c = arg;
  assert_true((uint64_t)r->prompt_tokens + r->max_tokens <= c->max_context);
  if (r->prompt_tokens > c->max_seen)
    c->max_seen = r->prompt_tokens;
  if (strcmp(r->session, c->last_session) != 0) {
    snprintf(c->last_session, sizeof c->last_session, "%s", r->session);
    c->n_first = r->n_blocks < 4096 ? r->n_blocks : 4096;
    memcpy(c->first, r->blocks, c->n_first * sizeof *c->first);
  } else if (r->prompt_tokens < c->last_prompt && r->cls == INFS_CLASS_AGENT) {
    /* Compacted: the system prefix and the repository are kept. */
    c->drops++;
    size_t keep = c->prefix_blocks < c->n_first ? c->prefix_blocks : c->n_first;
    assert_memory_equal(r->blocks, c->first, keep * sizeof *c->first);
  }
  if (r->cls != INFS_CLASS_BATCH)
    c->last_prompt = r->prompt_tokens;
}

static void test_max_context(void **state) {
  (void)state;
  workload_opts_t o;
  workload_codex_config_t cfg;
  defaults(&o, &cfg);
  cfg.sessions = 1;
  cfg.max_context = 32768;
  cfg.repo_tokens = fixed(8000);
  cfg.mix[INFS_CLASS_INTERACTIVE] = 0;
  cfg.mix[INFS_CLASS_BATCH] = 0;
  cfg.turns = fixed(20);
  cfg.think_ms = fixed(1000);
  o.duration_s = 3 * 3600;
  capped_t c = {.max_context = 32768, .prefix_blocks = (4096 + 8000) / 64};
  c.first = malloc(4096 * sizeof *c.first);
  workload_t *w = codex(&o, &cfg);
  drive(w, 1.0, check_cap, &c);
  workload_destroy(&w);
  assert_true(c.max_seen > 24000);
  assert_true(c.drops > 0);
  free(c.first);
}

/* --- the workload file --- */

static char *write_temp(const char *content) {
  char *path = strdup("/tmp/test_codex_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t len = strlen(content);
  assert_int_equal(write(fd, content, len), (ssize_t)len);
  close(fd);
  return path;
}

static void assert_dist_equal(const workload_dist_t *a,
                              const workload_dist_t *b) {
  assert_int_equal(a->kind, b->kind);
  assert_true(a->median == b->median);
  assert_true(a->sigma == b->sigma || a->kind == WORKLOAD_DIST_FIXED);
  assert_int_equal(a->min, b->min);
  assert_int_equal(a->max, b->max);
}

/* Field by field: structs have padding. */
static void assert_config_equal(const workload_codex_config_t *a,
                                const workload_codex_config_t *b) {
  assert_int_equal(a->sessions, b->sessions);
  assert_true(a->session_rate == b->session_rate);
  assert_true(a->start_spread_s == b->start_spread_s);
  for (int k = 0; k < INFS_CLASS_COUNT; k++)
    assert_true(a->mix[k] == b->mix[k]);
  const workload_dist_t *da[] = {&a->turns,           &a->steps,
                                 &a->repo_tokens,     &a->user_tokens,
                                 &a->tool_tokens,     &a->answer_tokens,
                                 &a->question_tokens, &a->completion_tokens,
                                 &a->job_tokens,      &a->job_output_tokens,
                                 &a->tool_ms,         &a->think_ms};
  const workload_dist_t *db[] = {&b->turns,           &b->steps,
                                 &b->repo_tokens,     &b->user_tokens,
                                 &b->tool_tokens,     &b->answer_tokens,
                                 &b->question_tokens, &b->completion_tokens,
                                 &b->job_tokens,      &b->job_output_tokens,
                                 &b->tool_ms,         &b->think_ms};
  for (size_t i = 0; i < sizeof da / sizeof *da; i++)
    assert_dist_equal(da[i], db[i]);
  assert_int_equal(a->system_tokens, b->system_tokens);
  assert_int_equal(a->max_context, b->max_context);
  assert_int_equal(a->summary_tokens, b->summary_tokens);
}

static void test_file_holds_the_defaults(void **state) {
  (void)state;
  workload_codex_config_t def, file;
  workload_codex_config_default(&def);
  /* Start from something else, so every knob must come from the file. */
  memset(&file, 0, sizeof file);
  char err[512] = "";
  int rc = workload_codex_config_load(&file, CODEX_YAML, err, sizeof err);
  if (rc)
    fail_msg("%s", err);
  assert_config_equal(&def, &file);

  /* And workload_new reads it. */
  workload_opts_t o;
  workload_opts_default(&o);
  o.duration_s = 10;
  workload_t *w = NULL;
  assert_int_equal(workload_new("codex:" CODEX_YAML, &o, &w, err, sizeof err),
                   0);
  assert_string_equal(workload_name(w), "codex");
  workload_destroy(&w);
  assert_int_equal(workload_new("codex", &o, &w, err, sizeof err), 0);
  workload_destroy(&w);
}

static void test_file_values_and_errors(void **state) {
  (void)state;
  workload_codex_config_t c;
  char err[512];
  workload_codex_config_default(&c);
  char *path = write_temp("# a small run\n"
                          "sessions: 3\n"
                          "mix: {interactive: 1, agent: 3}\n"
                          "tool_ms: lognormal:200:1.5:10:5000\n"
                          "max_context: 32768\n"
                          "steps: 4\n");
  int rc = workload_codex_config_load(&c, path, err, sizeof err);
  if (rc)
    fail_msg("%s", err);
  assert_int_equal(c.sessions, 3);
  assert_true(c.mix[INFS_CLASS_INTERACTIVE] == 1.0);
  assert_true(c.mix[INFS_CLASS_AGENT] == 3.0);
  assert_true(c.mix[INFS_CLASS_BATCH] == 0.0);
  assert_int_equal(c.tool_ms.kind, WORKLOAD_DIST_LOGNORMAL);
  assert_true(c.tool_ms.median == 200.0 && c.tool_ms.max == 5000);
  assert_int_equal(c.max_context, 32768);
  assert_int_equal(c.steps.kind, WORKLOAD_DIST_FIXED);
  assert_int_equal(c.steps.min, 4);
  unlink(path);
  free(path);

  static const struct {
    const char *text;
    const char *want; /* substring of the error */
  } bad[] = {
      {"sessions: 3\nsesions: 4\n", ":2: unknown knob 'sesions'"},
      {"sessions: -1\n", ":1: key 'sessions': expected a whole number"},
      {"tool_ms: lognormal:abc\n", ":1: key 'tool_ms': expected N"},
      {"mix: agent=1,robot=2\n", ":1: key 'mix': unknown class 'robot'"},
      {"steps: 4\nsessions: 2\nsteps: 5\n",
       ":3: key 'steps': given twice (first on line 1)"},
      {"\nmax_context: 8192\nsystem_tokens: 4096\n",
       ":3: key 'system_tokens': 4096 system tokens"},
      {"sessions: 0\n", ":1: key 'sessions': no sessions"},
      {"sessions: [1, 2]\n", ":1: key 'sessions': expected a single value"},
      {"- sessions\n", ":1: expected a mapping of knobs"},
      {"sessions: 3\n  bad: [\n", "not valid YAML"},
      {"", ":1: empty file"},
      {"sessions: 3\n---\nsessions: 4\n", ":3: a second YAML document"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    workload_codex_config_t before;
    workload_codex_config_default(&c);
    before = c;
    path = write_temp(bad[i].text);
    err[0] = '\0';
    assert_int_not_equal(workload_codex_config_load(&c, path, err, sizeof err),
                         0);
    if (!strstr(err, bad[i].want))
      fail_msg("case %zu: got '%s', want '%s'", i, err, bad[i].want);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    /* A failed load leaves the config as it was. */
    assert_config_equal(&before, &c);
    unlink(path);
    free(path);
  }
  assert_int_not_equal(
      workload_codex_config_load(&c, "/nonexistent.yaml", err, sizeof err), 0);
  assert_non_null(strstr(err, "/nonexistent.yaml"));
}

static void test_set_and_check(void **state) {
  (void)state;
  workload_codex_config_t c;
  char err[512];
  workload_codex_config_default(&c);
  assert_int_equal(
      workload_codex_config_set(&c, "think_ms", "2000", err, sizeof err), 0);
  assert_int_equal(c.think_ms.kind, WORKLOAD_DIST_FIXED);
  assert_int_equal(
      workload_codex_config_set(&c, "session_rate", "0.5", err, sizeof err), 0);
  assert_true(c.session_rate == 0.5);
  assert_int_equal(workload_codex_config_set(&c, "nope", "1", err, sizeof err),
                   INFS_EUNKNOWN);
  assert_non_null(strstr(err, "sessions"));
  assert_int_equal(
      workload_codex_config_set(&c, "max_context", "100", err, sizeof err),
      INFS_ECONFIG);

  workload_opts_t o;
  workload_opts_default(&o);
  workload_t *w = NULL;
  workload_codex_config_default(&c);
  assert_int_not_equal(workload_codex_new(&o, &c, &w, err, sizeof err), 0);
  assert_non_null(strstr(err, "duration"));
  o.duration_s = 10;
  c.sessions = 0;
  assert_int_not_equal(workload_codex_new(&o, &c, &w, err, sizeof err), 0);
  assert_non_null(strstr(err, "sessions"));
  assert_null(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reproducible),
      cmocka_unit_test(test_sessions_independent_of_timing),
      cmocka_unit_test(test_prompts_grow_and_repeat),
      cmocka_unit_test(test_seen_fraction_exact),
      cmocka_unit_test(test_defaults_match_traces),
      cmocka_unit_test(test_closed_loop),
      cmocka_unit_test(test_batch_jobs),
      cmocka_unit_test(test_open_sessions),
      cmocka_unit_test(test_max_context),
      cmocka_unit_test(test_file_holds_the_defaults),
      cmocka_unit_test(test_file_values_and_errors),
      cmocka_unit_test(test_set_and_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
