/* Unit tests of the predictor: hand-built worker states on a profile with
 * round numbers, so every expected figure can be worked out on paper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "predictor.h"
#include "profile_fixture.h"

#include <string.h>

#define EPS 1e-9

/* Weights read in 10 ms, 1 ms of compute per token (1,000 prompt tokens/s),
 * 1 ms per sequence: a decode step of b is 10 + b ms, a step carrying a
 * k-token chunk and b decodes max(10, k + b) + (b + 1) ms. A budget of 100
 * tokens a step, decode tokens first; $36/h = $0.01 per busy second, no
 * energy, no attention term. */
static infs_profile_t round_profile(void) {
  infs_profile_t p;
  memset(&p, 0, sizeof p);
  strcpy(p.name, "round");
  p.price_per_hour = 36;
  fixture_roofline(&p, 10, 1, 0, 1);
  p.max_batch = 4;
  p.kv_tokens = 10000;
  p.max_context = 8000;
  p.block_size = 10;
  p.max_num_batched_tokens = 100;
  return p;
}

typedef struct state {
  infs_profile_t p;
  core_load_t load;
  predictor_worker_t w;
} state_t;

static void init(state_t *s) {
  memset(s, 0, sizeof *s);
  s->p = round_profile();
  s->w.profile = &s->p;
  s->w.load = &s->load;
}

static prediction_t predict(const state_t *s, uint32_t prompt,
                            uint32_t max_tokens, uint32_t cached_blocks) {
  predictor_request_t r = {.prompt_tokens = prompt,
                           .max_tokens = max_tokens,
                           .cached_blocks = cached_blocks};
  prediction_t out;
  predictor_estimate(&s->w, &r, 0, &out);
  return out;
}

static void test_idle_worker(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  prediction_t p = predict(&s, 250, 11, 0);
  /* No queue: 250 tokens in chunks of 100, 100 and 50, each a pass of its
   * compute plus 1 ms, nothing decoding alongside. */
  assert_float_equal(p.queue_ms, 0, EPS);
  assert_float_equal(p.ttft_ms, 101 + 101 + 51, EPS);
  /* Alone in the batch: 10 + 1 ms. */
  assert_float_equal(p.tpot_ms, 11, EPS);
  assert_int_equal(p.batch, 1);
  /* 0.253 s of prefill + 10 decode steps of 11 ms, at $0.01/s. */
  assert_float_equal(p.busy_s, 0.363, EPS);
  assert_float_equal(p.cost_usd, 0.00363, EPS);
}

static void test_cached_prefix(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  /* 10 blocks of 10 tokens cached: 150 tokens left to prefill. */
  prediction_t p = predict(&s, 250, 11, 10);
  assert_int_equal(p.cached_tokens, 100);
  assert_float_equal(p.ttft_ms, 101 + 51, EPS);
  assert_float_equal(p.cost_usd, 0.00262, EPS);
  /* A fully cached prompt still computes its last token. */
  p = predict(&s, 250, 11, 100);
  assert_int_equal(p.cached_tokens, 240);
  assert_float_equal(p.ttft_ms, 10 + 1, EPS);
}

static void test_heartbeat_backlog(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  s.load.running = 1;
  s.load.prefill_backlog_tokens = 200;
  s.load.kv_used = 1000;
  s.w.outstanding = 1;
  s.w.remaining_tokens = 50;
  prediction_t p = predict(&s, 250, 11, 0);
  /* One sequence decoding: steps of 11 ms. Half a step to the boundary,
   * then 200 backlog tokens in chunks of 99, 99 and 2 (the decode takes a
   * token of the budget), each one pass with the decode: 100 + 2, 100 + 2,
   * 10 + 2 ms. */
  assert_float_equal(p.queue_ms, 5.5 + 102 + 102 + 12, EPS);
  /* Then its own 250 tokens in chunks of 99, 99, 52. */
  assert_float_equal(p.ttft_ms, 221.5 + 102 + 102 + 55, EPS);
  assert_float_equal(p.tpot_ms, 12, EPS);
  assert_int_equal(p.batch, 2);
  /* Its chunks add 259 - 3 * 11 ms to the steps they ride on; decode steps
   * shared by two: 10 * 12 / 2 ms. */
  assert_float_equal(p.busy_s, 0.226 + 0.06, EPS);
}

/* What was dispatched since the heartbeat counts like what it reported, so
 * a burst between two heartbeats sees its own load. */
static void test_dispatched_since_counts(void **unused) {
  (void)unused;
  state_t a, b;
  init(&a);
  a.load.running = 1;
  a.load.prefill_backlog_tokens = 200;
  a.load.kv_used = 1000;
  a.w.outstanding = 1;
  a.w.remaining_tokens = 50;
  init(&b);
  b.w.since.requests = 1;
  b.w.since.prefill_tokens = 200;
  b.w.since.kv_tokens = 1000;
  b.w.outstanding = 1;
  b.w.remaining_tokens = 50;
  prediction_t pa = predict(&a, 250, 11, 0);
  prediction_t pb = predict(&b, 250, 11, 0);
  assert_float_equal(pa.ttft_ms, pb.ttft_ms, EPS);
  assert_float_equal(pa.tpot_ms, pb.tpot_ms, EPS);
  assert_float_equal(pa.cost_usd, pb.cost_usd, EPS);
  /* And finishing since takes load away again, never below zero. */
  b.w.since.requests = -3;
  b.w.since.prefill_tokens = -500;
  b.w.since.kv_tokens = -5000;
  prediction_t idle = predict(&b, 250, 11, 0);
  assert_float_equal(idle.ttft_ms, 253, EPS);
  assert_float_equal(idle.tpot_ms, 11, EPS);
}

static void test_full_batch_waits_for_a_slot(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  s.load.running = 4;
  s.load.queued = 2;
  s.w.outstanding = 6;
  s.w.remaining_tokens = 600; /* 100 tokens left each, on average */
  prediction_t p = predict(&s, 250, 11, 0);
  /* Three sequences must finish first (two queued ahead, then one slot):
   * 3 * 100 steps of 14 ms shared by 4 running. */
  double slot = 3 * 100 * 14.0 / 4;
  assert_float_equal(p.queue_ms, slot + 7, EPS);
  /* Chunks of 96, 96, 58 with 4 decodes: 100 + 5, 100 + 5, 62 + 5. */
  assert_float_equal(p.ttft_ms, slot + 7 + 105 + 105 + 67, EPS);
  assert_float_equal(p.tpot_ms, 14, EPS);
  assert_int_equal(p.batch, 4);
}

static void test_kv_full_waits_for_a_slot(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  s.load.running = 1;
  s.load.kv_used = 9900;
  s.w.outstanding = 1;
  s.w.remaining_tokens = 100;
  prediction_t p = predict(&s, 250, 11, 0);
  /* 250 tokens do not fit in the 100 left: wait for the running one. */
  assert_float_equal(p.queue_ms, 100 * 11.0 + 5.5, EPS);
}

static void test_tpot_grows_with_batch_and_context(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  s.p.kv_kb_per_token = 2000; /* 2 ms per 1,000 tokens read */
  double last = 0;
  for (uint32_t running = 0; running < 4; running++) {
    s.load.running = running;
    s.load.kv_used = running * 1000;
    prediction_t p = predict(&s, 1000, 100, 0);
    /* 10 + 2 * (kv + 1000 + 50) / 1000 (memory bound) + (running + 1) */
    double expect = 10 + (running + 1) + 2 * (running * 1000 + 1050) / 1000.0;
    assert_float_equal(p.tpot_ms, expect, EPS);
    assert_true(p.tpot_ms > last);
    last = p.tpot_ms;
  }
}

/* A busy worker shares its decode steps among more sequences: each pays
 * less of them (docs/architecture.md, "Cost"). */
static void test_cost_share_falls_with_batch(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  prediction_t alone = predict(&s, 100, 101, 0);
  s.load.running = 3;
  s.w.outstanding = 3;
  s.w.remaining_tokens = 300;
  prediction_t shared = predict(&s, 100, 101, 0);
  /* alone: a 101 ms prefill + 100 * 11 ms; shared: its chunks of 97 and 3
   * turn two 13 ms steps into 100 + 4 and 10 + 4, then 100 * 14 / 4 ms. */
  assert_float_equal(alone.busy_s, 0.101 + 1.1, EPS);
  assert_float_equal(shared.busy_s, 0.092 + 0.35, EPS);
  assert_true(shared.cost_usd < alone.cost_usd);
}

/* The opportunity cost scales the cost by the share of the worker in use:
 * batch slots taken by others, KV with its own prompt, or prefill time,
 * whichever is the largest, and never less than the floor, so that idle
 * workers compare at list price. */
static void test_opportunity_cost_follows_utilisation(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  prediction_t p = predict(&s, 100, 11, 0); /* 1% of the KV */
  assert_float_equal(p.util, PREDICTOR_UTIL_FLOOR, EPS);
  assert_float_equal(p.opportunity_usd, p.cost_usd * PREDICTOR_UTIL_FLOOR, EPS);
  p = predict(&s, 2500, 11, 0); /* its prompt takes a quarter of the KV */
  assert_float_equal(p.util, 0.25, EPS);
  s.load.running = 1; /* one of 4 slots */
  s.load.kv_used = 1000;
  p = predict(&s, 250, 11, 0);
  assert_float_equal(p.util, 0.25, EPS);
  s.load.kv_used = 5000; /* half the KV, and its prompt */
  p = predict(&s, 250, 11, 0);
  assert_float_equal(p.util, 0.525, EPS);
  s.w.prefill_load = 0.75;
  p = predict(&s, 250, 11, 0);
  assert_float_equal(p.util, 0.75, EPS);
  assert_float_equal(p.opportunity_usd, p.cost_usd * 0.75, EPS);
  s.load.running = 9; /* full batch and a queue: all of it */
  p = predict(&s, 250, 11, 0);
  assert_float_equal(p.util, 1, EPS);
  assert_float_equal(p.opportunity_usd, p.cost_usd, EPS);
}

/* Its prefill chunks ride along with the steps of those decoding: what they
 * add to those steps (policy_harms spreads it over each one's output). */
static void test_prefill_slows_the_others(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  prediction_t p = predict(&s, 250, 11, 0);
  assert_float_equal(p.extra_ms, 0, EPS); /* nobody to slow down */
  s.load.running = 1;
  s.w.outstanding = 1;
  s.w.remaining_tokens = 50;
  p = predict(&s, 250, 11, 0);
  assert_float_equal(p.tpot_ms, 12, EPS);
  /* Chunks of 99, 99, 52 with the decode: 102 + 102 + 55 ms, where 3
   * decode-only steps would take 33. */
  assert_float_equal(p.extra_ms, 226, EPS);
  /* 120 tokens cached: chunks of 99 and 31 (max(10, 32) + 2), where 2
   * decode-only steps would take 22. */
  p = predict(&s, 250, 11, 12);
  assert_float_equal(p.extra_ms, 102 + 34 - 22, EPS);
}

/* A worker that caps prefill chunks to the running streams' TPOT target
 * (slo_aware_prefill) prefills more slowly while others decode: with a
 * 30 ms cap and one decode, max(10, 1 + k) + 2 <= 30 leaves chunks of 27,
 * so 250 tokens take nine 30 ms steps and one of 7 (10 + 2 ms). */
static void test_tpot_cap_slows_prefill(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  s.load.running = 1;
  s.w.outstanding = 1;
  s.w.remaining_tokens = 50;
  s.w.tpot_cap_ms = 30;
  prediction_t p = predict(&s, 250, 11, 0);
  assert_float_equal(p.ttft_ms, 5.5 + 9 * 30 + 12, EPS);
  /* Its chunks keep the others' steps at 30 ms: 282 - 10 * 11 added. */
  assert_float_equal(p.extra_ms, 172, EPS);
}

static void test_cost_energy_and_tokens(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  s.p.power_busy_w = 3600;
  s.p.usd_per_mtok_in = 1;
  s.p.usd_per_mtok_out = 2;
  predictor_request_t r = {.prompt_tokens = 250, .max_tokens = 11};
  prediction_t p;
  predictor_estimate(&s.w, &r, 0.1, &p);
  /* 0.363 busy s: $0.00363 of hardware, 3.6 kW for 0.363 s at $0.1/kWh,
   * 250 input and 11 output tokens billed per million. */
  double energy = 3600 * 0.363 / 3.6e6 * 0.1;
  assert_float_equal(p.cost_usd, 0.00363 + energy + 250e-6 + 22e-6, EPS);
}

/* Prompts keep arriving at half the worker's prefill speed: their chunks
 * take half of its time, so each decode step takes twice as long. */
static void test_prefill_load_stretches_tpot(void **unused) {
  (void)unused;
  state_t s;
  init(&s);
  s.w.prefill_load = 0.5;
  prediction_t p = predict(&s, 250, 11, 0);
  assert_float_equal(p.tpot_ms, 22, EPS);
  /* The request's own worker time is its share of undisturbed steps. */
  assert_float_equal(p.busy_s, 0.363, EPS);
  s.w.prefill_load = 5; /* overloaded: capped at 90% */
  p = predict(&s, 250, 11, 0);
  assert_float_equal(p.tpot_ms, 110, 1e-6);
}

static void test_prefill_rate_decays(void **unused) {
  (void)unused;
  infs_profile_t p = round_profile();
  double rate = 0;
  infs_time_t at = 0;
  /* 5,000 tokens at once: 1,000 tokens/s over the 5 s time constant. */
  predictor_rate_add(NULL, &rate, &at, 1000000, 5000);
  assert_float_equal(predictor_prefill_load(&p, rate), 1.0, EPS);
  /* One time constant later it has fallen to 1/e. */
  predictor_rate_add(NULL, &rate, &at, 6000000, 0);
  assert_float_equal(predictor_prefill_load(&p, rate), 0.36787944117144233,
                     1e-12);
  predictor_rate_add(NULL, &rate, &at, 6000000, 5000);
  assert_float_equal(predictor_prefill_load(&p, rate), 1.36787944117144233,
                     1e-12);
  assert_int_equal(at, 6000000);
  /* A clock that goes backwards does not grow it. */
  predictor_rate_add(NULL, &rate, &at, 5000000, 0);
  assert_float_equal(predictor_prefill_load(&p, rate), 1.36787944117144233,
                     1e-12);
}

/* The memo only saves exponentials: the same rates to the bit. */
static void test_prefill_rate_memo_is_exact(void **unused) {
  (void)unused;
  static const infs_time_t steps[] = {200000, 200000,  0,      137,    200000,
                                      200000, 5000000, 200000, 200000, 1};
  predictor_decay_t memo = {0};
  double a = 0, b = 0;
  infs_time_t at_a = 0, at_b = 0, now = 0;
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
      now += steps[i];
      double tokens = (double)(i % 3) * 1234.5;
      predictor_rate_add(NULL, &a, &at_a, now, tokens);
      predictor_rate_add(&memo, &b, &at_b, now, tokens);
      assert_memory_equal(&a, &b, sizeof a);
      assert_int_equal(at_a, at_b);
    }
  }
  /* A clock that goes backwards decays by nothing either way. */
  predictor_rate_add(NULL, &a, &at_a, now - 10, 0);
  predictor_rate_add(&memo, &b, &at_b, now - 10, 0);
  assert_memory_equal(&a, &b, sizeof a);
}

static void test_slo_use(void **unused) {
  (void)unused;
  prediction_t p = {.ttft_ms = 250, .tpot_ms = 11};
  assert_float_equal(predictor_slo_use(&p, &(slo_targets_t){500, 10}), 1.1,
                     EPS);
  assert_float_equal(predictor_slo_use(&p, &(slo_targets_t){1000, 44}), 0.25,
                     EPS);
  assert_float_equal(predictor_slo_use(&p, &(slo_targets_t){0, 22}), 0.5, EPS);
}

/* A split: 250 tokens prefilled on an idle P (253 ms, as above), their KV
 * (100 KB a token) moved over 1 GB/s with 100 us of latency, decoded on an
 * idle D. */
static void test_pair(void **unused) {
  (void)unused;
  state_t ps, ds;
  init(&ps);
  init(&ds);
  ps.p.kv_kb_per_token = 100; /* 10 MB per 100 tokens: 0.01 ms a read */
  predictor_request_t r = {.prompt_tokens = 250, .max_tokens = 11};
  infs_link_t link = {1, 100, false};
  pair_prediction_t x;
  predictor_estimate_pair(&ps.w, &ds.w, &r, 0, &link, 0, &x);
  assert_float_equal(x.ttft_ms, 253, EPS);
  assert_float_equal(x.prefill_ms, 253, EPS);
  assert_int_equal(x.moved_tokens, 250);
  assert_int_equal(x.bytes, 25600000);
  /* 25.6 MB at 1,000 bytes a microsecond, + 100 us. */
  assert_float_equal(x.transfer_ms, 25.7, 1e-6);
  /* D: its first token's pass alone (10 + 1 ms), then decode steps of
   * 11 ms. */
  assert_float_equal(x.d.ttft_ms, 11, EPS);
  assert_float_equal(x.handoff_ms, 36.7, 1e-6);
  assert_float_equal(x.tpot_ms, (36.7 + 9 * 11) / 10, 1e-6);
  /* P's prefill and D's 1 + 9 steps: the same worker time as whole. */
  assert_float_equal(x.busy_s, 0.253 + 0.011 + 0.099, 1e-9);
  assert_float_equal(x.cost_usd, 0.00363, 1e-9);

  /* D holds 20 of the 25 blocks: 50 tokens move. */
  predictor_estimate_pair(&ps.w, &ds.w, &r, 20, &link, 0, &x);
  assert_int_equal(x.moved_tokens, 50);
  assert_float_equal(x.transfer_ms, 5.22, 1e-6);

  /* Streamed layer by layer beside a 253 ms prefill: the last layer's
   * share, 25.6 / 80 ms, is all that is left. */
  link.overlap = true;
  predictor_estimate_pair(&ps.w, &ds.w, &r, 0, &link, 0, &x);
  assert_float_equal(x.transfer_ms, 0.1 + 25.6 / 80, 1e-6);

  /* A busy D: a full batch makes the KV wait for a slot, in the gap
   * before the second token, not in the first token's time. */
  ds.load.running = 4;
  ds.load.kv_used = 400;
  ds.w.outstanding = 4;
  ds.w.remaining_tokens = 40;
  predictor_estimate_pair(&ps.w, &ds.w, &r, 0, &link, 0, &x);
  assert_float_equal(x.ttft_ms, 253, EPS);
  /* A slot frees after 10 tokens of 14 ms steps shared by 4 (35 ms), the
   * next boundary half a step later, then one pass with the four decodes
   * (10 + 5 ms). */
  assert_float_equal(x.d.ttft_ms, 35 + 7 + 15, 1e-9);
  assert_float_equal(x.handoff_ms, 0.1 + 25.6 / 80 + 57, 1e-6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idle_worker),
      cmocka_unit_test(test_cached_prefix),
      cmocka_unit_test(test_heartbeat_backlog),
      cmocka_unit_test(test_dispatched_since_counts),
      cmocka_unit_test(test_full_batch_waits_for_a_slot),
      cmocka_unit_test(test_kv_full_waits_for_a_slot),
      cmocka_unit_test(test_tpot_grows_with_batch_and_context),
      cmocka_unit_test(test_cost_share_falls_with_batch),
      cmocka_unit_test(test_opportunity_cost_follows_utilisation),
      cmocka_unit_test(test_prefill_slows_the_others),
      cmocka_unit_test(test_tpot_cap_slows_prefill),
      cmocka_unit_test(test_cost_energy_and_tokens),
      cmocka_unit_test(test_prefill_load_stretches_tpot),
      cmocka_unit_test(test_prefill_rate_decays),
      cmocka_unit_test(test_prefill_rate_memo_is_exact),
      cmocka_unit_test(test_slo_use),
      cmocka_unit_test(test_pair),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
