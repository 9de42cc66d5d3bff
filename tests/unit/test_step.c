/* The step-time model (model/step.h) against numbers worked by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "step.h"
#include "profile_fixture.h"

#include <math.h>

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

/* A step of b decodes holding ctx tokens and a chunk of n behind c. */
static double mixed_ms(const infs_profile_t *p, uint32_t b, uint64_t ctx,
                       uint64_t n, uint64_t c) {
  step_work_t w = {0};
  for (uint32_t i = 0; i < b; i++)
    step_add_decode(&w, ctx / b);
  step_add_prefill(&w, n, c);
  return step_ms(p, &w);
}

/* Weights read in 10 ms, 0.1 ms per computed token, 0.5 ms per 1,000 KV
 * tokens read, 1 ms per sequence. */
static infs_profile_t round_profile(void) {
  infs_profile_t p = {0};
  fixture_roofline(&p, 10, 0.1, 0.5, 1);
  p.max_num_batched_tokens = 516;
  p.block_size = 64;
  return p;
}

static void test_decode_steps(void **state) {
  (void)state;
  infs_profile_t p = round_profile();
  static const struct {
    uint32_t b;
    uint64_t ctx;
    double ms;
  } rows[] = {
      {0, 0, 0},          /* nothing to run */
      {1, 0, 10 + 1},     /* the weights, one sequence */
      {8, 8000, 14 + 8},  /* 10 + 0.5 * 8: memory bound */
      {90, 0, 10 + 90},   /* 9 ms of compute, still memory bound */
      {200, 0, 20 + 200}, /* 0.1 * 200 = 20 ms: compute bound */
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    NEAR(step_decode_ms(&p, rows[i].b, rows[i].ctx), rows[i].ms);
}

/* B decodes and a C-token chunk run as one pass: the weights are read once,
 * and the chunk costs its compute, not a second weight read. */
static void test_mixed_step(void **state) {
  (void)state;
  infs_profile_t p = round_profile();
  /* 8 decodes holding 8,000 tokens, a 300-token chunk behind 200:
   * memory 10 + 0.5 * 8.2 = 14.1, compute 0.1 * 308 = 30.8, plus 9
   * sequences. */
  NEAR(mixed_ms(&p, 8, 8000, 300, 200), 30.8 + 9);
  /* The same built piece by piece. */
  step_work_t w = {0};
  for (int i = 0; i < 8; i++)
    step_add_decode(&w, 1000);
  step_add_prefill(&w, 300, 200);
  NEAR(step_mem_ms(&p, &w), 14.1);
  NEAR(step_compute_ms(&p, &w), 30.8);
  NEAR(step_ms(&p, &w), 39.8);
  /* A 50-token chunk fits under the weight read: it adds only its
   * sequence's overhead to the decode-only step (14 + 8). */
  NEAR(mixed_ms(&p, 8, 8000, 50, 0), 14 + 9);
  NEAR(step_decode_ms(&p, 8, 8000), 14 + 8);

  /* Attention: 10 MFLOP per pair at 10 TFLOP/s is 1 us per pair. A chunk
   * of 100 behind 900 attends to 100 * (900 + 50) pairs: 95 ms. */
  p.attn_mflop_per_ctx = 10;
  NEAR(mixed_ms(&p, 0, 0, 100, 900), 10 * 0 + 0.1 * 100 + 95 + 1);
}

/* A prompt prefilled in chunks alongside decodes: one pass per chunk. */
static void test_prefill_in_chunks(void **state) {
  (void)state;
  infs_profile_t p = round_profile();
  /* 1,100 tokens with 4 decodes holding 2,000 tokens: the budget of 516
   * leaves chunks of 512, 512, 76; compute 0.1 * 516 = 51.6, 51.6, then
   * memory 10 + 0.5 * (2 + 1.024) = 11.512 over compute 8.0; 5 sequences
   * each. */
  uint64_t steps = 0;
  NEAR(step_prefill_ms(&p, 1100, 0, 4, 2000, 0, &steps),
       (51.6 + 5) + (51.6 + 5) + (11.512 + 5));
  assert_int_equal(steps, 3);
  NEAR(step_prefill_ms(&p, 0, 0, 4, 2000, 0, &steps), 0);
  assert_int_equal(steps, 0);
  /* Alone with a budget of 2,000: one piece. */
  p.max_num_batched_tokens = 2000;
  NEAR(step_prefill_ms(&p, 1100, 0, 0, 0, 0, NULL), 110 + 1);
  /* Compute bound rate: 1 GFLOP per token at 10 TFLOP/s. */
  NEAR(step_prefill_tps(&p), 10000);
}

/* The SLO-aware cap: the largest chunk that keeps the step within a
 * target, at least the floor. */
static void test_prefill_room_under_a_cap(void **state) {
  (void)state;
  infs_profile_t p = round_profile();
  step_work_t w = {0};
  for (int i = 0; i < 8; i++)
    step_add_decode(&w, 1000); /* 22 ms alone */
  /* No cap: the budget or what is left. */
  assert_int_equal(step_prefill_room(&p, &w, 1000, 0, 508, 0, 64), 508);
  assert_int_equal(step_prefill_room(&p, &w, 100, 0, 508, 0, 64), 100);
  /* 40 ms: 31 ms left after 9 sequences, 0.8 of it the decodes' compute,
   * 30.2 / 0.1 = 302 tokens. */
  uint64_t k = step_prefill_room(&p, &w, 1000, 0, 508, 40, 64);
  assert_int_equal(k, 302);
  step_work_t with = w;
  step_add_prefill(&with, k, 0);
  assert_true(step_ms(&p, &with) <= 40 + 1e-9);
  with = w;
  step_add_prefill(&with, k + 1, 0);
  assert_true(step_ms(&p, &with) > 40);
  /* Below the decode-only step: the floor, within n and the budget. */
  assert_int_equal(step_prefill_room(&p, &w, 1000, 0, 508, 20, 64), 64);
  assert_int_equal(step_prefill_room(&p, &w, 10, 0, 508, 20, 64), 10);
  assert_int_equal(step_prefill_room(&p, &w, 1000, 0, 508, 20, 0), 0);

  /* With attention (1 us per pair), alone, a cap of 50 ms: 49 ms for
   * 0.1 k + 0.001 k^2 / 2, so k = 228 (49.79 ms; 229 would take 50.12). */
  p.attn_mflop_per_ctx = 10;
  step_work_t none = {0};
  assert_int_equal(step_prefill_room(&p, &none, 1000, 0, 508, 50, 0), 228);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_steps),
      cmocka_unit_test(test_mixed_step),
      cmocka_unit_test(test_prefill_in_chunks),
      cmocka_unit_test(test_prefill_room_under_a_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
