/* The continuous-batching engine in virtual time, against closed-form
 * answers from the rules at the top of model/engine.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "infsched/errors.h"
#include "engine.h"
#include "step.h"
#include "profile_fixture.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Round numbers: the weights take 10 ms to read, each token 0.1 ms to
 * compute, 1 ms per sequence; so a decode step of b is 10 + b ms (memory
 * bound below 100 tokens), a step carrying a 512-token chunk and b decodes
 * 0.1 * (512 + b) + (b + 1) ms (compute bound); 16-token blocks. */
static infs_profile_t test_profile(void) {
  infs_profile_t p = {
      .name = "test",
      .cls = INFS_WORKER_GPU,
      .price_per_hour = 1,
      .power_idle_w = 100,
      .power_busy_w = 200,
      .max_batch = 8,
      .kv_tokens = 100000, /* 6,250 blocks of 16 */
      .max_context = 50000,
      .block_size = 16,
      .max_num_batched_tokens = 512,
  };
  fixture_roofline(&p, 10, 0.1, 0, 1);
  return p;
}

/* The roofline written out for the test profile with a KV term of kctx ms
 * per 1,000 tokens read and attention of attn ms per 1,000 token pairs: a
 * step of b decodes holding ctx and one chunk of n behind c, in ms. */
static double hand_step_ms(double kctx, double attn, uint32_t b, double ctx,
                           double n, double c) {
  double mem = 10 + kctx * (ctx + (n ? c : 0)) / 1000;
  double pairs = ctx + n * (c + n / 2);
  double compute = 0.1 * (b + n) + attn * pairs / 1000;
  return (mem > compute ? mem : compute) + (b + (n > 0));
}

/* Prefill of a prompt of P tokens, c of them cached, alone on the test
 * profile: 512-token chunks, in us. */
static infs_time_t hand_prefill_us(uint32_t P, uint32_t c) {
  double ms = 0;
  for (; c < P; c += 512)
    ms += hand_step_ms(0, 0, 0, 0, P - c < 512 ? P - c : 512, c);
  return (infs_time_t)llround(ms * 1000);
}

/* Every event an engine produced, in order. */
typedef struct evlog {
  engine_event_t *ev;
  size_t n;
  size_t cap;
} evlog_t;

static void evlog_free(evlog_t *l) {
  free(l->ev);
  memset(l, 0, sizeof *l);
}

static void collect(engine_t *e, evlog_t *l) {
  size_t n;
  const engine_event_t *ev = engine_events(e, &n);
  if (l->n + n > l->cap) {
    l->cap = (l->n + n) * 2;
    l->ev = realloc(l->ev, l->cap * sizeof *l->ev);
    assert_non_null(l->ev);
  }
  if (n)
    memcpy(l->ev + l->n, ev, n * sizeof *ev);
  l->n += n;
  engine_events_clear(e);
}

/* Steps through every step completion up to `until` (INFS_TIME_NEVER: until
 * idle), checking that KV never overflows. Returns the last step's end. */
static infs_time_t run_until(engine_t *e, evlog_t *l, infs_time_t until) {
  infs_time_t last = 0, next;
  while ((next = engine_next_event(e)) != INFS_TIME_NEVER && next <= until) {
    engine_advance(e, next);
    collect(e, l);
    engine_load_t load;
    engine_load(e, next, &load);
    assert_true(load.kv_used <= load.kv_total);
    last = next;
  }
  return last;
}

static const engine_event_t *find_event(const evlog_t *l, uint64_t id,
                                        engine_event_kind_t kind) {
  for (size_t i = 0; i < l->n; i++)
    if (l->ev[i].id == id && l->ev[i].kind == kind)
      return &l->ev[i];
  return NULL;
}

/* Output tokens reported for id, by FIRST_TOKEN and TOKENS events. */
static uint32_t tokens_of(const evlog_t *l, uint64_t id) {
  uint32_t n = 0;
  for (size_t i = 0; i < l->n; i++)
    if (l->ev[i].id == id && (l->ev[i].kind == ENGINE_EV_FIRST_TOKEN ||
                              l->ev[i].kind == ENGINE_EV_TOKENS))
      n += l->ev[i].tokens;
  return n;
}

static size_t count_kind(const evlog_t *l, uint64_t id,
                         engine_event_kind_t kind) {
  size_t n = 0;
  for (size_t i = 0; i < l->n; i++)
    n += l->ev[i].id == id && l->ev[i].kind == kind;
  return n;
}

static void submit_phase(engine_t *e, infs_time_t now, uint64_t id,
                         uint32_t prompt, uint32_t max_tokens,
                         infs_phase_t phase, infs_time_t kv_ready,
                         const uint64_t *blocks, size_t n_blocks) {
  engine_request_t r = {.id = id,
                        .prompt_tokens = prompt,
                        .max_tokens = max_tokens,
                        .blocks = blocks,
                        .n_blocks = n_blocks,
                        .phase = phase,
                        .kv_ready = kv_ready};
  assert_int_equal(engine_submit(e, now, &r), 0);
}

static void submit(engine_t *e, infs_time_t now, uint64_t id, uint32_t prompt,
                   uint32_t max_tokens, const uint64_t *blocks,
                   size_t n_blocks) {
  submit_phase(e, now, id, prompt, max_tokens, INFS_PHASE_FULL, 0, blocks,
               n_blocks);
}

/* ---- one request on an idle engine ------------------------------------- */

static void test_single_request(void **state) {
  (void)state;
  static const struct {
    uint32_t prompt, gen;
    double kctx_ms, attn_ms; /* per 1,000 tokens read, per 1,000 pairs */
  } rows[] = {
      {100, 1, 0, 0},          {512, 10, 0, 0},         {1500, 20, 0, 0},
      {4000, 64, 0, 0},        {1500, 20, 0.5, 0.001},  {8000, 100, 0.04, 0},
      {49000, 3, 0.04, 0.0002},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    infs_profile_t p = test_profile();
    p.kv_kb_per_token = rows[i].kctx_ms * 1000;
    /* attn ms per 1,000 pairs at 10 TFLOP/s: 10 * attn MFLOP per pair */
    p.attn_mflop_per_ctx = rows[i].attn_ms * 10;
    uint32_t P = rows[i].prompt, G = rows[i].gen;

    /* ceil(P / 512) prefill steps, each one pass over its chunk, then
     * G - 1 decode steps at batch 1 over a growing context. */
    double ttft = 0;
    double chunks = ceil((double)P / p.max_num_batched_tokens);
    for (uint32_t c = 0; c < P; c += p.max_num_batched_tokens) {
      uint32_t n = P - c < p.max_num_batched_tokens ? P - c : p.max_num_batched_tokens;
      ttft += hand_step_ms(rows[i].kctx_ms, rows[i].attn_ms, 0, 0, n, c) / 1e3;
    }
    double done = ttft;
    for (uint32_t k = 1; k < G; k++)
      done += hand_step_ms(rows[i].kctx_ms, rows[i].attn_ms, 1, P + k, 0, 0) /
              1e3;

    engine_t *e = engine_new(&p, 0);
    assert_non_null(e);
    evlog_t l = {0};
    submit(e, 0, 7, P, G, NULL, 0);
    infs_time_t end = run_until(e, &l, INFS_TIME_NEVER);

    const engine_event_t *first = find_event(&l, 7, ENGINE_EV_FIRST_TOKEN);
    const engine_event_t *fin = find_event(&l, 7, ENGINE_EV_DONE);
    assert_non_null(first);
    assert_non_null(fin);
    /* Rounding to whole microseconds, once per step. */
    assert_true(fabs((double)first->at - ttft * 1e6) <= chunks);
    assert_true(fabs((double)fin->at - done * 1e6) <= chunks + G);
    /* Without context terms, chunks of 512 take 52.2 ms each and a decode
     * step 11 ms. */
    if (rows[i].kctx_ms == 0 && rows[i].attn_ms == 0 && P % 512 == 0) {
      infs_time_t want = (infs_time_t)(P / 512) * 52200 + (G - 1) * 11000;
      assert_int_equal(fin->at, want);
    }
    assert_int_equal(fin->at, end);
    assert_int_equal(fin->ttft_us, first->at);
    assert_int_equal(fin->transfer_us, 0); /* a whole request moves no KV */
    assert_int_equal(fin->queued_us, 0);
    assert_int_equal(fin->generated, G);
    assert_int_equal(fin->cached_tokens, 0);
    assert_int_equal(fin->tokens, 0);
    assert_int_equal(tokens_of(&l, 7), G);
    assert_int_equal(count_kind(&l, 7, ENGINE_EV_FIRST_TOKEN), 1);
    /* Alone in every step: its share is all the busy time. */
    assert_true(fabs(fin->busy_share_s - (double)end / 1e6) < 1e-9);

    engine_load_t load;
    engine_load(e, end + 5000000, &load);
    assert_int_equal(load.kv_used, 0);
    assert_int_equal(load.running, 0);
    assert_int_equal(load.queued, 0);
    assert_int_equal(load.prefill_backlog_tokens, 0);
    assert_int_equal(load.generated_tokens, G);
    assert_true(fabs(load.busy_s - (double)end / 1e6) < 1e-9);
    assert_int_equal(engine_next_event(e), INFS_TIME_NEVER);
    evlog_free(&l);
    engine_destroy(&e);
    assert_null(e);
  }
}

/* ---- B identical requests decode together at step_ms(B) --------------- */

static void test_batch_decodes_together(void **state) {
  (void)state;
  static const uint32_t batch[] = {1, 2, 4, 8};
  const uint32_t P = 64, G = 6;
  for (size_t i = 0; i < sizeof batch / sizeof batch[0]; i++) {
    uint32_t B = batch[i];
    infs_profile_t p = test_profile();
    engine_t *e = engine_new(&p, 0);
    evlog_t l = {0};
    for (uint32_t id = 0; id < B; id++)
      submit(e, 0, id, P, G, NULL, 0);
    infs_time_t end = run_until(e, &l, INFS_TIME_NEVER);

    /* B * 64 <= 512: one prefill step for all, B chunks of 64 in one pass:
     * max(10, 0.1 * 64B) + B ms; then G - 1 decode steps of 10 + B ms. */
    double compute = 0.1 * 64 * B;
    infs_time_t prefill = (infs_time_t)llround(
        ((compute > 10 ? compute : 10) + B) * 1000);
    infs_time_t step = (10 + B) * 1000;
    assert_int_equal(end, prefill + (G - 1) * step);
    for (uint32_t id = 0; id < B; id++) {
      infs_time_t prev = 0;
      uint32_t seen = 0;
      for (size_t k = 0; k < l.n; k++) {
        const engine_event_t *ev = &l.ev[k];
        if (ev->id != id || ev->kind == ENGINE_EV_DONE)
          continue;
        if (seen++ == 0)
          assert_int_equal(ev->at, prefill);
        else
          assert_int_equal(ev->at - prev, step);
        prev = ev->at;
      }
      assert_int_equal(seen, G);
      const engine_event_t *fin = find_event(&l, id, ENGINE_EV_DONE);
      assert_true(fabs(fin->busy_share_s - (double)end / 1e6 / B) < 1e-9);
    }
    evlog_free(&l);
    engine_destroy(&e);
  }
}

/* ---- chunked prefill rides along with decode --------------------------- */

static void test_chunked_prefill_mixes_with_decode(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  engine_load_t load;

  /* A: 100-token prompt, first token at max(10, 0.1 * 100) + 1 = 11 ms,
   * then a 10 + 1 ms step each. */
  submit(e, 0, 1, 100, 50, NULL, 0);
  run_until(e, &l, 25000);
  /* B arrives mid-step and joins at the boundary at 33 ms. */
  submit(e, 25000, 2, 1024, 4, NULL, 0);
  engine_load(e, 25000, &load);
  assert_int_equal(load.queued, 1);
  assert_int_equal(load.running, 1);
  assert_int_equal(load.prefill_backlog_tokens, 1024);
  assert_true(fabs(load.busy_s - 0.025) < 1e-9);
  run_until(e, &l, 33000);
  engine_load(e, 33000, &load);
  assert_int_equal(load.queued, 0);
  assert_int_equal(load.running, 2);
  assert_int_equal(load.prefill_backlog_tokens, 1024);
  /* A holds 103 tokens once this step feeds its third: 7 blocks of 16; B
   * the 32 blocks of its first chunk of 511 (below). */
  assert_int_equal(load.kv_used, (7 + 32) * 16);
  run_until(e, &l, INFS_TIME_NEVER);

  /* A's decode token and B's chunk share the budget of 512 tokens, so the
   * chunk is 511; the step is one pass: max(10, 0.1 * 512) + 2 = 53.2 ms,
   * not 11 + 52.1. Two such steps, then B's last 2 tokens with A's decode:
   * max(10, 0.3) + 2 = 12 ms. */
  static const struct {
    uint64_t id;
    engine_event_kind_t kind;
    infs_time_t at;
  } want[] = {
      {1, ENGINE_EV_FIRST_TOKEN, 11000}, {1, ENGINE_EV_TOKENS, 22000},
      {1, ENGINE_EV_TOKENS, 33000},      {1, ENGINE_EV_TOKENS, 86200},
      {1, ENGINE_EV_TOKENS, 139400},     {1, ENGINE_EV_TOKENS, 151400},
      {2, ENGINE_EV_FIRST_TOKEN, 151400}, {1, ENGINE_EV_TOKENS, 163400},
      {2, ENGINE_EV_TOKENS, 163400},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    assert_int_equal(l.ev[i].id, want[i].id);
    assert_int_equal(l.ev[i].kind, want[i].kind);
    assert_int_equal(l.ev[i].at, want[i].at);
  }
  const engine_event_t *fin = find_event(&l, 2, ENGINE_EV_DONE);
  assert_int_equal(fin->queued_us, 33000 - 25000);
  assert_int_equal(fin->ttft_us, 151400 - 25000);
  evlog_free(&l);
  engine_destroy(&e);
}

/* ---- SLO-aware prefill (Sarathi-Serve) --------------------------------- */

/* A decodes with a TPOT target of 30 ms; B's prompt arrives. Each step
 * then carries the largest chunk that keeps it within 30 ms: max(10, 0.1 *
 * (1 + k)) + 2 <= 30 gives k = 279, so B's 1,024 tokens take chunks of 279,
 * 279, 279 (30 ms steps) and 187 (0.1 * 188 + 2 = 20.8 ms). */
static void test_slo_aware_prefill_keeps_tpot(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  p.slo_aware_prefill = true;
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  engine_request_t a = {
      .id = 1, .prompt_tokens = 100, .max_tokens = 50, .tpot_target_ms = 30};
  assert_int_equal(engine_submit(e, 0, &a), 0);
  run_until(e, &l, 25000);
  submit(e, 25000, 2, 1024, 4, NULL, 0);
  run_until(e, &l, INFS_TIME_NEVER);

  static const infs_time_t a_at[] = {11000,  22000,  33000, 63000,
                                     93000,  123000, 143800, 155800};
  size_t k = 0;
  for (size_t i = 0; i < l.n && k < sizeof a_at / sizeof a_at[0]; i++)
    if (l.ev[i].id == 1 && l.ev[i].kind != ENGINE_EV_DONE)
      assert_int_equal(l.ev[i].at, a_at[k++]);
  assert_int_equal(k, sizeof a_at / sizeof a_at[0]);
  const engine_event_t *first = find_event(&l, 2, ENGINE_EV_FIRST_TOKEN);
  assert_int_equal(first->at, 143800);
  evlog_free(&l);
  engine_destroy(&e);

  /* A target no step can meet (below the 11 ms decode step) still lets a
   * block of 16 through per step: max(10, 1.7) + 2 = 12 ms each. */
  e = engine_new(&p, 0);
  l = (evlog_t){0};
  a.tpot_target_ms = 5;
  assert_int_equal(engine_submit(e, 0, &a), 0);
  run_until(e, &l, 25000);
  submit(e, 25000, 2, 64, 1, NULL, 0);
  run_until(e, &l, INFS_TIME_NEVER);
  first = find_event(&l, 2, ENGINE_EV_FIRST_TOKEN);
  assert_int_equal(first->at, 33000 + 4 * 12000);
  evlog_free(&l);
  engine_destroy(&e);
}

/* ---- prefix cache ------------------------------------------------------ */

static void make_blocks(uint64_t *b, size_t n, size_t shared, uint64_t salt) {
  for (size_t i = 0; i < n; i++)
    b[i] = i < shared ? 1000 + i : salt * 100000 + i;
}

static void test_prefix_cache_hits(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  uint64_t a[64], b[64];
  const uint32_t P = 1024; /* 64 blocks of 16 */

  make_blocks(a, 64, 64, 0);
  submit(e, 0, 1, P, 2, a, 64);
  infs_time_t t = run_until(e, &l, INFS_TIME_NEVER);

  const uint64_t *added, *removed;
  size_t n_added, n_removed;
  engine_cache_delta(e, &added, &n_added, &removed, &n_removed);
  assert_int_equal(n_added, 64);
  assert_int_equal(n_removed, 0);
  engine_cache_delta_clear(e);

  /* Only the longest cached prefix counts, in whole blocks before the last
   * token, which is always computed. A partial tail block's hash is
   * ignored. */
  static const struct {
    size_t shared; /* leading blocks equal to A's */
    size_t n_blocks;
    uint32_t prompt;
    uint32_t cached;
  } rows[] = {
      {48, 64, 1024, 768}, {64, 64, 1024, 1008}, {0, 64, 1024, 0},
      {1, 64, 1024, 16},   {64, 64, 1030, 1024}, {64, 64, 1020, 1008},
      {10, 10, 160, 144},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    uint64_t id = 100 + i;
    make_blocks(b, rows[i].n_blocks, rows[i].shared, 1 + i);
    if (i == 2)
      b[10] = a[10]; /* a match after a miss does not count */
    infs_time_t at = t + 1000000;
    submit(e, at, id, rows[i].prompt, 2, b, rows[i].n_blocks);
    t = run_until(e, &l, INFS_TIME_NEVER);
    const engine_event_t *fin = find_event(&l, id, ENGINE_EV_DONE);
    assert_non_null(fin);
    assert_int_equal(fin->cached_tokens, rows[i].cached);
    assert_int_equal(fin->ttft_us,
                     hand_prefill_us(rows[i].prompt, rows[i].cached));
  }
  evlog_free(&l);
  engine_destroy(&e);
}

/* Runs one request to completion on an idle engine at *t. */
static const engine_event_t *run_one(engine_t *e, evlog_t *l, infs_time_t *t,
                                     uint64_t id, const uint64_t *blocks,
                                     size_t n) {
  *t += 1000000;
  submit(e, *t, id, (uint32_t)n * 16, 1, blocks, n);
  *t = run_until(e, l, INFS_TIME_NEVER);
  return find_event(l, id, ENGINE_EV_DONE);
}

static void assert_u64s(const uint64_t *got, size_t n_got, const uint64_t *want,
                        size_t n_want) {
  assert_int_equal(n_got, n_want);
  for (size_t i = 0; i < n_want; i++)
    assert_int_equal(got[i], want[i]);
}

static void assert_snapshot(engine_t *e, const uint64_t *want, size_t n) {
  uint64_t got[16];
  size_t k = engine_cache_snapshot(e, got, 16);
  assert_u64s(got, k, want, n);
}

static void assert_delta(engine_t *e, const uint64_t *add, size_t n_add,
                         const uint64_t *rm, size_t n_rm) {
  const uint64_t *added, *removed;
  size_t n_added, n_removed;
  engine_cache_delta(e, &added, &n_added, &removed, &n_removed);
  assert_u64s(added, n_added, add, n_add);
  assert_u64s(removed, n_removed, rm, n_rm);
  engine_cache_delta_clear(e);
}

enum { A1 = 11, A2, B1 = 21, B2, C1 = 31, C2, D1 = 41, D2 };

/* A pool of 4 blocks; each request a 2-block prompt and one token. */
static infs_profile_t four_block_profile(void) {
  infs_profile_t p = test_profile();
  p.kv_tokens = 4 * 16;
  p.max_context = 4 * 16;
  return p;
}

static void test_prefix_cache_lru(void **state) {
  (void)state;
  infs_profile_t p = four_block_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  infs_time_t t = 0;
  const uint64_t a[] = {A1, A2}, b[] = {B1, B2}, c[] = {C1, C2}, d[] = {D1, D2};

  /* A request's blocks are freed deepest first, behind the free list's
   * unused blocks: eviction trims prefixes from the tail. */
  run_one(e, &l, &t, 1, a, 2);
  assert_snapshot(e, (uint64_t[]){A2, A1}, 2);
  run_one(e, &l, &t, 2, b, 2);
  assert_snapshot(e, (uint64_t[]){A2, A1, B2, B1}, 4);
  assert_delta(e, (uint64_t[]){A1, A2, B1, B2}, 4, NULL, 0);

  /* A again: A1 hits (A2 holds the last token, computed anyway); its
   * second block is the free list's head, A2's own block, evicted and
   * cached again: no net change. */
  const engine_event_t *fin = run_one(e, &l, &t, 3, a, 2);
  assert_int_equal(fin->cached_tokens, 16);
  assert_snapshot(e, (uint64_t[]){B2, B1, A2, A1}, 4);
  assert_delta(e, NULL, 0, NULL, 0);

  run_one(e, &l, &t, 4, c, 2);
  assert_snapshot(e, (uint64_t[]){A2, A1, C2, C1}, 4);
  assert_delta(e, (uint64_t[]){C1, C2}, 2, (uint64_t[]){B2, B1}, 2);

  /* Net changes only: A's blocks leave and come back within one window. */
  run_one(e, &l, &t, 5, d, 2);
  fin = run_one(e, &l, &t, 6, a, 2);
  assert_int_equal(fin->cached_tokens, 0);
  assert_snapshot(e, (uint64_t[]){D2, D1, A2, A1}, 4);
  assert_delta(e, (uint64_t[]){D1, D2}, 2, (uint64_t[]){C2, C1}, 2);
  evlog_free(&l);
  engine_destroy(&e);
}

/* Two sequences sharing a 10-block prefix hold it once: 10 blocks, not
 * 20. Both prompts are those 10 blocks (160 tokens) and 8 tokens of their
 * own. */
static void test_shared_prefix_stored_once(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  uint64_t prefix[10];
  make_blocks(prefix, 10, 10, 0);
  /* A alone: 168 tokens in one step of max(10, 16.8) + 1 ms; it holds 11
   * blocks, the last part full. */
  submit(e, 0, 1, 168, 4, prefix, 10);
  run_until(e, &l, 17799);
  engine_load_t load;
  engine_load(e, 17799, &load);
  assert_int_equal(load.kv_used, 11 * 16);
  /* B joins the step at 17.8 ms: the 10 blocks hit, one block of its own
   * for its 8 tokens; A's decode stays within its 11th block. */
  submit(e, 17800, 2, 168, 4, prefix, 10);
  engine_advance(e, 17800);
  collect(e, &l);
  engine_load(e, 17800, &load);
  assert_int_equal(load.kv_used, (10 + 1 + 1) * 16);
  run_until(e, &l, INFS_TIME_NEVER);
  assert_int_equal(find_event(&l, 2, ENGINE_EV_DONE)->cached_tokens, 160);
  /* Everything freed; the 10 shared blocks still cached, once. */
  engine_load(e, 10000000, &load);
  assert_int_equal(load.kv_used, 0);
  uint64_t snap[32];
  assert_int_equal(engine_cache_snapshot(e, snap, 32), 10);
  evlog_free(&l);
  engine_destroy(&e);
}

/* Cached blocks live in the free part of the pool: a running sequence that
 * needs room takes the unused blocks first, then evicts cached ones, least
 * recently freed first. */
static void test_eviction_under_pressure(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  p.kv_tokens = 8 * 16; /* 8 blocks */
  p.max_context = 8 * 16;
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  infs_time_t t = 0;
  const uint64_t a[] = {A1, A2, B1, B2}; /* a 4-block prompt */
  submit(e, t, 1, 64, 1, a, 4);
  t = run_until(e, &l, INFS_TIME_NEVER);
  /* Freed deepest first behind the 4 unused blocks. */
  assert_snapshot(e, (uint64_t[]){B2, B1, A2, A1}, 4);
  assert_delta(e, (uint64_t[]){A1, A2, B1, B2}, 4, NULL, 0);

  /* A 96-token prompt (6 blocks) takes the 4 unused blocks, then evicts B2
   * and B1; A's first two blocks stay cached. */
  submit(e, t + 1000, 2, 96, 20, NULL, 0);
  run_until(e, &l, t + 1000);
  uint64_t snap[8];
  engine_cache_snapshot(e, snap, 8);
  assert_int_equal(snap[0], A2);
  assert_int_equal(snap[1], A1);
  assert_delta(e, NULL, 0, (uint64_t[]){B2, B1}, 2);
  /* Decoding, it fills a 7th block at token 97 and an 8th at 113: A2 and
   * A1 go too. */
  t = run_until(e, &l, INFS_TIME_NEVER);
  const uint64_t *added, *removed;
  size_t n_added, n_removed;
  engine_cache_delta(e, &added, &n_added, &removed, &n_removed);
  assert_u64s(removed, n_removed, (uint64_t[]){A2, A1}, 2);
  engine_cache_delta_clear(e);
  engine_load_t load;
  engine_load(e, t, &load);
  assert_int_equal(load.preemptions, 0);
  /* So the first prompt finds nothing cached. */
  submit(e, t + 1000, 3, 64, 1, a, 4);
  run_until(e, &l, INFS_TIME_NEVER);
  assert_int_equal(find_event(&l, 3, ENGINE_EV_DONE)->cached_tokens, 0);
  evlog_free(&l);
  engine_destroy(&e);
}

/* A long run without reading the delta: the log is compacted to its net
 * effect, which is what the cache holds now. */
static void test_prefix_cache_delta_unread(void **state) {
  (void)state;
  infs_profile_t p = four_block_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  infs_time_t t = 0;
  for (uint64_t i = 0; i < 3000; i++) {
    uint64_t blk[2] = {2 * i + 1000000, 2 * i + 1000001};
    run_one(e, &l, &t, i, blk, 2);
    l.n = 0;
  }
  uint64_t now[4];
  assert_int_equal(engine_cache_snapshot(e, now, 4), 4);
  const uint64_t *added, *removed;
  size_t n_added, n_removed;
  engine_cache_delta(e, &added, &n_added, &removed, &n_removed);
  assert_int_equal(n_removed, 0);
  assert_int_equal(n_added, 4);
  for (size_t i = 0; i < 4; i++) {
    size_t k = 0;
    while (k < 4 && now[k] != added[i])
      k++;
    assert_true(k < 4);
  }
  evlog_free(&l);
  engine_destroy(&e);
}

/* ---- KV capacity --------------------------------------------------------- */

/* A pool of 64 blocks (1,024 tokens). */
static infs_profile_t small_kv_profile(void) {
  infs_profile_t p = test_profile();
  p.kv_tokens = 1024;
  p.max_context = 1024;
  return p;
}

static void run_kv_exhaustion(evlog_t *l, engine_load_t *load) {
  infs_profile_t p = small_kv_profile();
  engine_t *e = engine_new(&p, 0);
  /* Each needs 13 blocks for its prompt (52 of the 64 in all) and 25 to
   * finish (399 tokens in KV). */
  for (uint64_t id = 0; id < 4; id++)
    submit(e, 0, id, 200, 200, NULL, 0);
  infs_time_t end = run_until(e, l, INFS_TIME_NEVER);
  engine_load(e, end, load);
  engine_destroy(&e);
}

static void test_kv_exhaustion_preempts_latest(void **state) {
  (void)state;
  evlog_t l = {0};
  engine_load_t load;
  run_kv_exhaustion(&l, &load);

  assert_true(load.preemptions >= 2);
  assert_int_equal(load.kv_used, 0);
  assert_int_equal(load.generated_tokens, 800);
  double shares = 0;
  size_t done_at[4];
  for (uint64_t id = 0; id < 4; id++) {
    const engine_event_t *fin = find_event(&l, id, ENGINE_EV_DONE);
    assert_non_null(fin);
    assert_int_equal(fin->generated, 200);
    /* Recomputed tokens are not reported again. */
    assert_int_equal(tokens_of(&l, id), 200);
    assert_int_equal(count_kind(&l, id, ENGINE_EV_FIRST_TOKEN), 1);
    assert_int_equal(count_kind(&l, id, ENGINE_EV_DONE), 1);
    /* The first step's budget of 512 takes 200 + 200 + 112 prompt tokens
     * (max(10, 51.2) + 3 = 54.2 ms): the fourth joins the next one. */
    assert_int_equal(fin->queued_us, id < 3 ? 0 : 54200);
    shares += fin->busy_share_s;
    done_at[id] = (size_t)(fin - l.ev);
  }
  /* The most recently admitted go back to the queue: the first two
   * admitted finish first, in order. */
  assert_true(done_at[0] < done_at[2] && done_at[0] < done_at[3]);
  assert_true(done_at[1] < done_at[2] && done_at[1] < done_at[3]);
  assert_true(fabs(shares - load.busy_s) < 1e-9);
  for (size_t i = 1; i < l.n; i++)
    assert_true(l.ev[i].at >= l.ev[i - 1].at);

  /* Same inputs, same events. */
  evlog_t again = {0};
  engine_load_t load2;
  run_kv_exhaustion(&again, &load2);
  assert_int_equal(again.n, l.n);
  for (size_t i = 0; i < l.n; i++) {
    assert_int_equal(again.ev[i].kind, l.ev[i].kind);
    assert_int_equal(again.ev[i].id, l.ev[i].id);
    assert_int_equal(again.ev[i].at, l.ev[i].at);
    assert_int_equal(again.ev[i].tokens, l.ev[i].tokens);
  }
  evlog_free(&again);
  evlog_free(&l);
}

/* Hashes come from clients: one that repeats within a prompt is not a
 * prefix hit at the second place (a prefix's hash covers every block up to
 * it), so a block is never counted, held or tabled twice for one request.
 * A pool of 3 blocks: 1 leaves hash 7 cached; 2 holds the other two
 * blocks; 3 must wait for 2 rather than find two free hits in one block. */
static void test_repeated_hash_is_one_hit(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  p.kv_tokens = 3 * 16;
  p.max_context = 3 * 16;
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  engine_load_t load;
  static const uint64_t twice[] = {7, 7};

  submit(e, 0, 1, 33, 1, twice, 2);
  infs_time_t t = run_until(e, &l, INFS_TIME_NEVER);
  submit(e, t, 2, 20, 10, NULL, 0);
  submit(e, t, 3, 33, 1, twice, 2);
  run_until(e, &l, INFS_TIME_NEVER);
  engine_load(e, t, &load);
  assert_int_equal(load.kv_used, 0);
  for (uint64_t id = 1; id <= 3; id++)
    assert_int_equal(count_kind(&l, id, ENGINE_EV_DONE), 1);
  assert_int_equal(find_event(&l, 3, ENGINE_EV_DONE)->cached_tokens, 16);
  evlog_free(&l);
  engine_destroy(&e);
}

static void test_admission_waits_for_kv(void **state) {
  (void)state;
  infs_profile_t p = small_kv_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  engine_load_t load;

  /* 1 holds 57 to 60 of the 64 blocks once prefilled (900 to 949 tokens);
   * 2 needs 13 for its prompt: it waits for 1 to finish. */
  submit(e, 0, 1, 900, 50, NULL, 0);
  submit(e, 0, 2, 200, 10, NULL, 0);
  engine_load(e, 0, &load);
  assert_int_equal(load.queued, 2); /* nothing starts before advance */
  assert_int_equal(engine_next_event(e), 0);
  engine_advance(e, 0);
  engine_load(e, 0, &load);
  assert_int_equal(load.running, 1);
  assert_int_equal(load.queued, 1);
  assert_int_equal(load.prefill_backlog_tokens, 1100);
  run_until(e, &l, INFS_TIME_NEVER);
  const engine_event_t *a = find_event(&l, 1, ENGINE_EV_DONE);
  const engine_event_t *b = find_event(&l, 2, ENGINE_EV_DONE);
  assert_int_equal(b->queued_us, a->at);
  /* 200 tokens alone: max(10, 0.1 * 200) + 1 = 21 ms. */
  assert_int_equal(b->ttft_us, a->at + 21000);
  evlog_free(&l);
  engine_destroy(&e);
}

/* ---- refusals and cancel -------------------------------------------- */

static void test_submit_refusals(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  engine_t *e = engine_new(&p, 0);
  static const struct {
    uint64_t id;
    uint32_t prompt, max_tokens;
    int rc;
  } rows[] = {
      {1, 49000, 1001, INFS_ECONTEXT},
      {2, 50001, 1, INFS_ECONTEXT},
      {3, 49000, 1000, 0},
      {3, 10, 10, INFS_EDUPLICATE},
      {4, 0, 10, -EINVAL},
      {5, 10, 0, -EINVAL},
      {6, 10, 10, 0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    engine_request_t r = {.id = rows[i].id,
                          .prompt_tokens = rows[i].prompt,
                          .max_tokens = rows[i].max_tokens};
    assert_int_equal(engine_submit(e, 0, &r), rows[i].rc);
  }
  engine_load_t load;
  engine_load(e, 0, &load);
  assert_int_equal(load.running + load.queued, 2);

  infs_profile_t bad = test_profile();
  bad.max_batch = 0;
  assert_null(engine_new(&bad, 0));
  bad = test_profile();
  bad.max_context = bad.kv_tokens + 1;
  assert_null(engine_new(&bad, 0));
  bad = test_profile();
  bad.max_num_batched_tokens = 0; /* the wire's profile has none: default */
  engine_t *d = engine_new(&bad, 0);
  assert_non_null(d);
  engine_destroy(&d);
  engine_destroy(&e);
  engine_destroy(&e); /* idempotent */
}

static void test_cancel_frees_kv(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  p.max_batch = 2;
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  engine_load_t load;

  submit(e, 0, 1, 1000, 100, NULL, 0);
  submit(e, 0, 2, 1000, 100, NULL, 0);
  submit(e, 0, 3, 300, 5, NULL, 0); /* batch full: waits */
  run_until(e, &l, 400000);
  engine_load(e, 400000, &load);
  assert_int_equal(load.running, 2);
  assert_int_equal(load.queued, 1);
  assert_int_equal(load.prefill_backlog_tokens, 300);
  uint64_t kv = load.kv_used;

  /* Cancel mid-step: the sequence's blocks (its prompt and the tokens it
   * has fed, the running step's included: 1000 + gen2) are freed at once. */
  uint32_t gen2 = tokens_of(&l, 2);
  assert_int_equal(engine_cancel(e, 400000, 2), 0);
  engine_load(e, 400000, &load);
  assert_int_equal(load.kv_used, kv - (1000 + gen2 + 15) / 16 * 16);
  assert_int_equal(load.running, 1);
  assert_int_equal(engine_cancel(e, 400000, 2), -ENOENT);
  assert_int_equal(engine_cancel(e, 400000, 99), -ENOENT);

  assert_int_equal(engine_cancel(e, 400000, 3), 0);
  engine_load(e, 400000, &load);
  assert_int_equal(load.queued, 0);
  assert_int_equal(load.prefill_backlog_tokens, 0);

  size_t before = l.n;
  run_until(e, &l, INFS_TIME_NEVER);
  for (size_t i = before; i < l.n; i++)
    assert_int_equal(l.ev[i].id, 1);
  assert_non_null(find_event(&l, 1, ENGINE_EV_DONE));
  infs_time_t later = find_event(&l, 1, ENGINE_EV_DONE)->at + 1000000;
  engine_load(e, later, &load);
  assert_int_equal(load.kv_used, 0);
  /* A cancelled id can be used again; destroy frees what is still open. */
  submit(e, later, 2, 10, 1, NULL, 0);
  evlog_free(&l);
  engine_destroy(&e);
}

/* ---- invariants under a random load ---------------------------------- */

static uint64_t lcg(uint64_t *x) {
  *x = *x * 6364136223846793005ull + 1442695040888963407ull;
  return *x >> 33;
}

/* Random arrivals, sizes, shared prefixes and cancels on a small worker:
 * KV never overflows (run_until checks), every request that is not
 * cancelled finishes with each of its tokens reported once, and the engine
 * ends empty. */
static void test_random_load_invariants(void **state) {
  (void)state;
  enum { N = 400 };
  infs_profile_t p = small_kv_profile();
  p.kv_tokens = 4000; /* 250 blocks */
  p.max_context = 2000;
  p.max_batch = 6;
  p.max_num_batched_tokens = 300;
  p.kv_kb_per_token = 500;   /* 0.5 ms per 1,000 tokens read */
  p.attn_mflop_per_ctx = 0.5; /* 0.05 ms per 1,000 token pairs */
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  static uint32_t max_tokens[N];
  static bool cancelled[N];
  uint64_t seed = 42, blocks[125];
  infs_time_t t = 0;

  for (uint64_t id = 0; id < N; id++) {
    t += lcg(&seed) % 40000;
    run_until(e, &l, t);
    uint32_t prompt = 1 + lcg(&seed) % 1500;
    max_tokens[id] = 1 + lcg(&seed) % (p.max_context - prompt);
    size_t n = prompt / 16, shared = lcg(&seed) % (n + 1);
    for (size_t k = 0; k < n; k++)
      blocks[k] = k < shared ? k + 1 : (id << 20) + k;
    submit(e, t, id, prompt, max_tokens[id], blocks, n);
    engine_advance(e, t);
    collect(e, &l);
    if (id >= 5 && lcg(&seed) % 10 == 0) {
      uint64_t victim = id - lcg(&seed) % 5;
      int rc = engine_cancel(e, t, victim);
      if (rc == 0)
        cancelled[victim] = true;
      else
        assert_int_equal(rc, -ENOENT);
      collect(e, &l);
    }
  }
  run_until(e, &l, INFS_TIME_NEVER);

  size_t hits = 0, n_cancelled = 0;
  for (uint64_t id = 0; id < N; id++) {
    const engine_event_t *fin = find_event(&l, id, ENGINE_EV_DONE);
    if (cancelled[id]) {
      assert_null(fin);
      n_cancelled++;
      continue;
    }
    hits += fin && fin->cached_tokens > 0;
    assert_non_null(fin);
    assert_int_equal(fin->generated, max_tokens[id]);
    assert_int_equal(tokens_of(&l, id), max_tokens[id]);
    assert_int_equal(count_kind(&l, id, ENGINE_EV_FIRST_TOKEN), 1);
  }
  engine_load_t load;
  engine_load(e, t, &load);
  assert_int_equal(load.kv_used, 0);
  assert_int_equal(load.running + load.queued, 0);
  assert_int_equal(load.prefill_backlog_tokens, 0);
  /* The load exercised what it is meant to. */
  assert_true(load.preemptions > 0);
  assert_true(hits > 0 && n_cancelled > 0);
  evlog_free(&l);
  engine_destroy(&e);
}

/* ---- phases: prefill only, decode only -------------------------------- */


/* A PREFILL request gives its first token, then PREFILLED, and holds its
 * blocks until cancelled; it never decodes. */
static void test_prefill_phase_holds_kv(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  submit_phase(e, 0, 1, 1000, 10, INFS_PHASE_PREFILL, 0, NULL, 0);
  run_until(e, &l, INFS_TIME_NEVER);

  infs_time_t prefill = hand_prefill_us(1000, 0); /* 52.2 + 49.8 ms */
  assert_int_equal(prefill, 102000);
  const engine_event_t *first = find_event(&l, 1, ENGINE_EV_FIRST_TOKEN);
  const engine_event_t *held = find_event(&l, 1, ENGINE_EV_PREFILLED);
  assert_non_null(first);
  assert_non_null(held);
  assert_true(first < held);
  assert_int_equal(first->at, prefill);
  assert_int_equal(held->at, prefill);
  assert_int_equal(held->generated, 1);
  assert_int_equal(held->ttft_us, prefill);
  assert_int_equal(held->queued_us, 0);
  assert_true(fabs(held->busy_share_s - 0.102) < 1e-9);
  assert_int_equal(tokens_of(&l, 1), 1);
  assert_null(find_event(&l, 1, ENGINE_EV_DONE));

  engine_load_t load;
  engine_load(e, prefill + 1000000, &load);
  assert_int_equal(load.held, 1);
  assert_int_equal(load.running + load.queued, 0);
  assert_int_equal(load.kv_used, 63 * 16); /* ceil(1000 / 16) blocks */
  assert_int_equal(load.prefill_backlog_tokens, 0);
  assert_int_equal(engine_next_event(e), INFS_TIME_NEVER);

  /* The release frees the blocks; the prompt's 62 full ones stay cached. */
  assert_int_equal(engine_cancel(e, prefill + 1000000, 1), 0);
  engine_load(e, prefill + 1000000, &load);
  assert_int_equal(load.held, 0);
  assert_int_equal(load.kv_used, 0);
  assert_int_equal(engine_cache_snapshot(e, NULL, 0), 62);
  assert_int_equal(engine_cancel(e, prefill + 1000000, 1), -ENOENT);
  evlog_free(&l);
  engine_destroy(&e);
}

/* A DECODE request waits for its KV, computes only its last prompt token
 * and decodes from there. */
static void test_decode_phase_starts_when_kv_arrives(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  submit_phase(e, 0, 1, 1001, 5, INFS_PHASE_DECODE, 50000, NULL, 0);
  assert_int_equal(engine_next_event(e), 50000);
  engine_load_t load;
  engine_load(e, 0, &load);
  assert_int_equal(load.queued, 1);
  assert_int_equal(load.kv_used, 0); /* nothing taken before it arrives */
  assert_int_equal(load.prefill_backlog_tokens, 1);
  run_until(e, &l, 49999);
  assert_int_equal(l.n, 0);

  run_until(e, &l, 50000);
  engine_load(e, 50000, &load);
  assert_int_equal(load.running, 1);
  assert_int_equal(load.kv_used, 63 * 16); /* the whole prompt at once */
  run_until(e, &l, INFS_TIME_NEVER);
  /* The last prompt token alone: 10 ms of weights + 1 ms for the
   * sequence; then four decode steps of the same. */
  const engine_event_t *first = find_event(&l, 1, ENGINE_EV_FIRST_TOKEN);
  const engine_event_t *fin = find_event(&l, 1, ENGINE_EV_DONE);
  assert_non_null(first);
  assert_non_null(fin);
  assert_int_equal(first->at, 61000);
  assert_int_equal(fin->at, 61000 + 4 * 11000);
  assert_int_equal(fin->generated, 5);
  assert_int_equal(tokens_of(&l, 1), 5);
  assert_int_equal(fin->ttft_us, 61000);
  /* The KV's arrival, what the Done reports as the transfer. */
  assert_int_equal(fin->transfer_us, 50000);
  assert_int_equal(fin->queued_us, 0); /* admitted as its KV arrived */
  assert_int_equal(fin->cached_tokens, 0);
  engine_load(e, fin->at, &load);
  assert_int_equal(load.kv_used + load.queued + load.running, 0);
  assert_int_equal(load.prefill_backlog_tokens, 0);
  evlog_free(&l);
  engine_destroy(&e);
}

/* Blocks the decode worker has cached serve a DECODE request's prompt as
 * they would any other's. */
static void test_decode_phase_uses_own_prefix(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  uint64_t blocks[62];
  for (size_t k = 0; k < 62; k++)
    blocks[k] = 100 + k;
  submit(e, 0, 1, 200, 1, blocks, 12); /* caches blocks 100..111 */
  infs_time_t t = run_until(e, &l, INFS_TIME_NEVER);
  submit_phase(e, t, 2, 1001, 3, INFS_PHASE_DECODE, t + 1000, blocks, 62);
  run_until(e, &l, INFS_TIME_NEVER);
  const engine_event_t *fin = find_event(&l, 2, ENGINE_EV_DONE);
  assert_non_null(fin);
  assert_int_equal(fin->cached_tokens, 12 * 16);
  assert_int_equal(fin->generated, 3);
  /* What arrived is cached here now: all 62 full blocks. */
  assert_int_equal(engine_cache_snapshot(e, NULL, 0), 62);
  evlog_free(&l);
  engine_destroy(&e);
}

/* Held blocks can leave no room for the queue's head: the engine waits,
 * idle, and starts it when a release frees the room; those behind it wait
 * too (FIFO). */
static void test_held_kv_stalls_until_released(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  p.kv_tokens = 2048; /* 128 blocks */
  p.max_context = 2000;
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  submit_phase(e, 0, 1, 1500, 1, INFS_PHASE_PREFILL, 0, NULL, 0); /* 94 */
  infs_time_t t = run_until(e, &l, INFS_TIME_NEVER);
  assert_non_null(find_event(&l, 1, ENGINE_EV_PREFILLED));
  /* 63 blocks do not fit in the 34 left. */
  submit_phase(e, t, 2, 1001, 2, INFS_PHASE_DECODE, t, NULL, 0);
  submit(e, t, 3, 16, 2, NULL, 0);
  run_until(e, &l, INFS_TIME_NEVER);
  assert_int_equal(engine_next_event(e), INFS_TIME_NEVER);
  engine_load_t load;
  engine_load(e, t, &load);
  assert_int_equal(load.queued, 2);
  assert_int_equal(load.running, 0);
  assert_null(find_event(&l, 2, ENGINE_EV_FIRST_TOKEN));
  assert_null(find_event(&l, 3, ENGINE_EV_FIRST_TOKEN));

  infs_time_t release = t + 5000000;
  assert_int_equal(engine_cancel(e, release, 1), 0);
  assert_int_equal(engine_next_event(e), release);
  run_until(e, &l, INFS_TIME_NEVER);
  const engine_event_t *first = find_event(&l, 2, ENGINE_EV_FIRST_TOKEN);
  assert_non_null(first);
  /* Its one token and request 3's 16-token prompt in one step: 17 tokens
   * compute in 1.7 ms, under the 10 ms weight read, + 1 ms each. */
  assert_int_equal(first->at, release + 12000);
  assert_int_equal(find_event(&l, 3, ENGINE_EV_FIRST_TOKEN)->at,
                   release + 12000);
  assert_int_equal(find_event(&l, 2, ENGINE_EV_DONE)->queued_us,
                   release - t);
  assert_int_equal(find_event(&l, 2, ENGINE_EV_DONE)->transfer_us, 0);
  assert_non_null(find_event(&l, 3, ENGINE_EV_DONE));
  evlog_free(&l);
  engine_destroy(&e);
}

static void test_phase_refusals_and_cancels(void **state) {
  (void)state;
  infs_profile_t p = test_profile();
  engine_t *e = engine_new(&p, 0);
  engine_request_t r = {.id = 1, .prompt_tokens = 10, .max_tokens = 10,
                        .phase = (infs_phase_t)7};
  assert_int_equal(engine_submit(e, 0, &r), -EINVAL);
  /* A prefill-only request needs room for its first token only. */
  r = (engine_request_t){.id = 2, .prompt_tokens = 49999, .max_tokens = 10};
  assert_int_equal(engine_submit(e, 0, &r), INFS_ECONTEXT);
  r.phase = INFS_PHASE_PREFILL;
  assert_int_equal(engine_submit(e, 0, &r), 0);
  assert_int_equal(engine_cancel(e, 0, 2), 0);

  /* A DECODE request cancelled while its KV is on the way leaves no
   * trace. */
  submit_phase(e, 0, 3, 500, 10, INFS_PHASE_DECODE, 70000, NULL, 0);
  submit_phase(e, 0, 4, 500, 10, INFS_PHASE_DECODE, 60000, NULL, 0);
  assert_int_equal(engine_next_event(e), 60000);
  assert_int_equal(engine_cancel(e, 10, 4), 0);
  assert_int_equal(engine_next_event(e), 70000);
  assert_int_equal(engine_cancel(e, 20, 3), 0);
  assert_int_equal(engine_next_event(e), INFS_TIME_NEVER);
  engine_load_t load;
  engine_load(e, 20, &load);
  assert_int_equal(load.queued + load.running + load.held, 0);
  assert_int_equal(load.kv_used, 0);
  assert_int_equal(load.prefill_backlog_tokens, 0);
  engine_destroy(&e);
}

/* A random mix of whole, prefill-only and decode-only requests, held KV
 * released at random times: nothing overflows or hangs, every request
 * gets exactly what its phase promises, and the engine ends empty. */
static void test_random_phases_invariants(void **state) {
  (void)state;
  enum { N = 300 };
  infs_profile_t p = small_kv_profile();
  p.kv_tokens = 4000;
  p.max_context = 2000;
  p.max_batch = 6;
  p.max_num_batched_tokens = 300;
  engine_t *e = engine_new(&p, 0);
  evlog_t l = {0};
  static uint32_t max_tokens[N];
  static infs_phase_t phase[N];
  static bool released[N];
  uint64_t seed = 7, blocks[125];
  infs_time_t t = 0;
  size_t seen = 0, stalls = 0;

  for (uint64_t id = 0; id < N; id++) {
    t += lcg(&seed) % 40000;
    run_until(e, &l, t);
    engine_load_t now;
    engine_load(e, t, &now);
    stalls += now.queued > 0 && engine_next_event(e) == INFS_TIME_NEVER;
    /* Release held prefills that have waited long enough. */
    for (; seen < l.n; seen++)
      if (l.ev[seen].kind == ENGINE_EV_PREFILLED && lcg(&seed) % 2)
        released[l.ev[seen].id] =
            engine_cancel(e, t, l.ev[seen].id) == 0;
    uint32_t prompt = 1 + lcg(&seed) % 1500;
    max_tokens[id] = 1 + lcg(&seed) % (p.max_context - prompt);
    phase[id] = (infs_phase_t)(lcg(&seed) % 3);
    size_t n = prompt / 16, shared = lcg(&seed) % (n + 1);
    for (size_t k = 0; k < n; k++)
      blocks[k] = k < shared ? k + 1 : (id << 20) + k;
    submit_phase(e, t, id, prompt, max_tokens[id], phase[id],
                 t + lcg(&seed) % 100000, blocks, n);
    engine_advance(e, t);
    collect(e, &l);
  }
  run_until(e, &l, INFS_TIME_NEVER);
  /* Release every prefill still held; the rest then runs to the end. */
  for (bool more = true; more;) {
    more = false;
    engine_load_t now;
    engine_load(e, t, &now);
    stalls += now.queued > 0 && engine_next_event(e) == INFS_TIME_NEVER;
    for (uint64_t id = 0; id < N; id++)
      if (phase[id] == INFS_PHASE_PREFILL && !released[id] &&
          find_event(&l, id, ENGINE_EV_PREFILLED)) {
        released[id] = engine_cancel(e, t, id) == 0;
        assert_true(released[id]);
        more = true;
      }
    infs_time_t last = run_until(e, &l, INFS_TIME_NEVER);
    t = last > t ? last : t;
  }

  for (uint64_t id = 0; id < N; id++) {
    assert_int_equal(count_kind(&l, id, ENGINE_EV_FIRST_TOKEN), 1);
    if (phase[id] == INFS_PHASE_PREFILL) {
      assert_int_equal(count_kind(&l, id, ENGINE_EV_PREFILLED), 1);
      assert_int_equal(tokens_of(&l, id), 1);
      assert_null(find_event(&l, id, ENGINE_EV_DONE));
      assert_true(released[id]);
      continue;
    }
    const engine_event_t *fin = find_event(&l, id, ENGINE_EV_DONE);
    assert_non_null(fin);
    assert_int_equal(fin->generated, max_tokens[id]);
    assert_int_equal(tokens_of(&l, id), max_tokens[id]);
    assert_null(find_event(&l, id, ENGINE_EV_PREFILLED));
  }
  engine_load_t load;
  engine_load(e, t, &load);
  assert_int_equal(load.kv_used, 0);
  assert_int_equal(load.running + load.queued + load.held, 0);
  assert_int_equal(load.prefill_backlog_tokens, 0);
  /* The load exercised what it is meant to. */
  assert_true(stalls > 0 && load.preemptions > 0);
  evlog_free(&l);
  engine_destroy(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_request),
      cmocka_unit_test(test_batch_decodes_together),
      cmocka_unit_test(test_chunked_prefill_mixes_with_decode),
      cmocka_unit_test(test_slo_aware_prefill_keeps_tpot),
      cmocka_unit_test(test_prefix_cache_hits),
      cmocka_unit_test(test_prefix_cache_lru),
      cmocka_unit_test(test_shared_prefix_stored_once),
      cmocka_unit_test(test_eviction_under_pressure),
      cmocka_unit_test(test_prefix_cache_delta_unread),
      cmocka_unit_test(test_kv_exhaustion_preempts_latest),
      cmocka_unit_test(test_admission_waits_for_kv),
      cmocka_unit_test(test_repeated_hash_is_one_hit),
      cmocka_unit_test(test_submit_refusals),
      cmocka_unit_test(test_cancel_frees_kv),
      cmocka_unit_test(test_random_load_invariants),
      cmocka_unit_test(test_prefill_phase_holds_kv),
      cmocka_unit_test(test_decode_phase_starts_when_kv_arrives),
      cmocka_unit_test(test_decode_phase_uses_own_prefix),
      cmocka_unit_test(test_held_kv_stalls_until_released),
      cmocka_unit_test(test_phase_refusals_and_cancels),
      cmocka_unit_test(test_random_phases_invariants),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
