/* The step-time model (model/step.h) against numbers worked by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "model/step.h"
#include "tests/unit/profile_fixture.h"

#include <math.h>

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

/* Weights read in 10 ms, 0.1 ms per computed token, 0.5 ms per 1,000 KV
 * tokens read, 1 ms per sequence. */
static infs_profile_t round_profile(void) {
  infs_profile_t p = {0};
  fixture_roofline(&p, 10, 0.1, 0.5, 1);
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
  NEAR(step_mixed_ms(&p, 8, 8000, 300, 200), 30.8 + 9);
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
  NEAR(step_mixed_ms(&p, 8, 8000, 50, 0), 14 + 9);
  NEAR(step_decode_ms(&p, 8, 8000), 14 + 8);

  /* Attention: 10 MFLOP per pair at 10 TFLOP/s is 1 us per pair. A chunk
   * of 100 behind 900 attends to 100 * (900 + 50) pairs: 95 ms. */
  p.attn_mflop_per_ctx = 10;
  NEAR(step_mixed_ms(&p, 0, 0, 100, 900), 10 * 0 + 0.1 * 100 + 95 + 1);
}

/* A prompt prefilled in chunks alongside decodes: one pass per chunk. */
static void test_prefill_in_chunks(void **state) {
  (void)state;
  infs_profile_t p = round_profile();
  /* 1,100 tokens in chunks of 512, 512, 76, with 4 decodes holding 2,000
   * tokens: compute 0.1 * 516 = 51.6, 51.6, memory 10 + 0.5 * (2 + 1.024)
   * = 11.512 over compute 8.0; 5 sequences each. */
  NEAR(step_prefill_ms(&p, 1100, 0, 512, 4, 2000),
       (51.6 + 5) + (51.6 + 5) + (11.512 + 5));
  /* Alone, in one piece. */
  NEAR(step_prefill_ms(&p, 1100, 0, 0, 0, 0), 110 + 1);
  NEAR(step_prefill_ms(&p, 0, 0, 512, 4, 2000), 0);
  /* Compute bound rate: 1 GFLOP per token at 10 TFLOP/s. */
  NEAR(step_prefill_tps(&p), 10000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_steps),
      cmocka_unit_test(test_mixed_step),
      cmocka_unit_test(test_prefill_in_chunks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
