/* The calibration fit (tools/calibrate/fit.c) against timings made from
 * known profiles: it must give their figures back, hold what the ladder
 * cannot tell apart, and refuse what the base cannot describe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "fit.h"
#include "infsched/errors.h"
#include "profile_fixture.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef INFSCHED_SOURCE_DIR
#error "INFSCHED_SOURCE_DIR must name the source tree"
#endif

#define REL(a, b, tol)                                                         \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(fabs(a_ - b_) <= (tol)*fabs(b_)))                                    \
      fail_msg("%s = %.6g, expected %.6g within %g%%", #a, a_, b_, (tol)*100); \
  } while (0)

/* Weights read in 10 ms, 0.05 ms a computed token (the knee at 200
 * tokens), 0.5 ms per 1,000 KV tokens, 1 ms a step and 0.2 ms a sequence;
 * the peaks twice what is achieved, so the shares are 0.5. */
static infs_profile_t truth(void) {
  infs_profile_t p = {0};
  fixture_roofline(&p, 10, 0.05, 0.5, 0.2);
  p.mem_bw_gbs *= 2;
  p.mem_eff = 0.5;
  p.peak_tflops *= 2;
  p.mfu = 0.5;
  p.step_overhead_ms = 1;
  p.max_num_batched_tokens = 2048;
  p.max_batch = 64;
  p.block_size = 16;
  p.kv_tokens = 100000;
  p.max_context = 32768;
  snprintf(p.name, sizeof p.name, "truth");
  return p;
}

/* The same hardware with other shares and overheads, as a user's base. */
static infs_profile_t base(void) {
  infs_profile_t p = truth();
  p.mem_eff = 0.8;
  p.mfu = 0.3;
  p.step_overhead_ms = 0;
  p.per_seq_ms = 0.05;
  return p;
}

static const double lengths[] = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
static const double concurrency[] = {1, 2, 4, 8, 16, 32};

/* Points as p and a client latency of client_ms give them, each scaled by
 * 1 + noise * (a fixed pattern of signs). */
static size_t make_points(const infs_profile_t *p, double client_ms,
                          double noise, const double *len, size_t n_len,
                          calib_ttft_t *ttft, calib_tpot_t *tpot,
                          size_t *n_tpot) {
  static const double sign[] = {1, -1, -1, 1, 1, -1, 1, -1, -1, 1, -1, 1};
  size_t n = 0;
  for (size_t i = 0; i < n_len; i++, n++) {
    ttft[n] = (calib_ttft_t){len[i], 0, 0};
    ttft[n].ms = (client_ms + calib_ttft_model_ms(p, &ttft[n])) *
                 (1 + noise * sign[n % 12]);
  }
  /* A shared prefix of 1,024 tokens, cached, behind short suffixes. */
  for (size_t i = 0; i < 3; i++, n++) {
    ttft[n] = (calib_ttft_t){1024 + 64.0 * (double)(i + 1), 1024, 0};
    ttft[n].ms = (client_ms + calib_ttft_model_ms(p, &ttft[n])) *
                 (1 + noise * sign[n % 12]);
  }
  size_t k = sizeof concurrency / sizeof *concurrency;
  for (size_t i = 0; i < k; i++) {
    tpot[i] = (calib_tpot_t){concurrency[i], 32 + 64, 0};
    tpot[i].ms = calib_tpot_model_ms(p, &tpot[i]) * (1 - noise * sign[i]);
  }
  *n_tpot = k;
  return n;
}

/* Fits base b to points of truth t (3 ms of client latency, noise as in
 * make_points), keeping the first keep TTFT points (0: all of them);
 * fails the test if the fit does. */
static calib_result_t fit_points(const infs_profile_t *t,
                                 const infs_profile_t *b, double noise,
                                 const double *len, size_t n_len, size_t keep) {
  calib_ttft_t ttft[32];
  calib_tpot_t tpot[16];
  size_t n_tpot;
  size_t n_ttft = make_points(t, 3.0, noise, len, n_len, ttft, tpot, &n_tpot);
  calib_result_t r;
  char why[256] = "";
  int rc = calib_fit(b, ttft, keep ? keep : n_ttft, tpot, n_tpot, &r, why,
                     sizeof why);
  if (rc)
    fail_msg("%s", why);
  return r;
}

static void test_model_by_hand(void **state) {
  (void)state;
  infs_profile_t p = truth();
  /* Memory bound: the weight read, a step and a sequence. */
  calib_ttft_t short_prompt = {64, 0, 0};
  REL(calib_ttft_model_ms(&p, &short_prompt), 10 + 1 + 0.2, 1e-9);
  /* Compute bound: 1,000 tokens at 0.05 ms. */
  calib_ttft_t long_prompt = {1000, 0, 0};
  REL(calib_ttft_model_ms(&p, &long_prompt), 50 + 1 + 0.2, 1e-9);
  /* Two steps of 2,048 and 952 tokens. */
  calib_ttft_t two_steps = {3000, 0, 0};
  REL(calib_ttft_model_ms(&p, &two_steps), 2048 * 0.05 + 952 * 0.05 + 2 * 1.2,
      1e-9);
  /* Eight streams of 1,000 tokens of context: the weights, 8,000 KV
   * tokens, a step and eight sequences. */
  calib_tpot_t decode = {8, 1000, 0};
  REL(calib_tpot_model_ms(&p, &decode), 10 + 4 + 1 + 8 * 0.2, 1e-9);
}

static void test_exact_points_give_the_truth_back(void **state) {
  (void)state;
  infs_profile_t t = truth(), b = base();
  calib_result_t r =
      fit_points(&t, &b, 0, lengths, sizeof lengths / sizeof *lengths, 0);
  assert_true(r.fitted_overhead);
  assert_true(r.fitted_mfu);
  REL(r.profile.mem_eff, 0.5, 1e-3);
  REL(r.profile.mfu, 0.5, 1e-3);
  REL(r.profile.step_overhead_ms, 1, 1e-3);
  REL(r.profile.per_seq_ms, 0.2, 1e-3);
  REL(r.client_ms, 3, 1e-3);
  REL(r.weight_read_ms, 10, 1e-3);
  assert_true(r.rms_rel < 1e-4);
  /* Held figures stay the base's. */
  assert_true(r.profile.weights_gb == b.weights_gb);
  assert_true(r.profile.peak_tflops == b.peak_tflops);
  assert_int_equal(r.profile.max_num_batched_tokens, 2048);
  /* 16 to 128 tokens are below the knee at 200; the prefix points are
   * 64 to 192 tokens behind the cache, also below it. */
  assert_int_equal(r.mem_bound, 4 + 3);
  assert_int_equal(r.compute_bound, 5);
}

/* Two percent of error either way moves no figure by more than the
 * noise can explain. */
static void test_noisy_points_stay_close(void **state) {
  (void)state;
  infs_profile_t t = truth(), b = base();
  calib_result_t r =
      fit_points(&t, &b, 0.02, lengths, sizeof lengths / sizeof *lengths, 0);
  REL(r.profile.mem_eff, 0.5, 0.05);
  REL(r.profile.mfu, 0.5, 0.05);
  REL(r.profile.per_seq_ms, 0.2, 0.10);
  assert_true(fabs(r.profile.step_overhead_ms - 1) < 0.5);
  assert_true(r.max_rel < 0.05);
}

/* One point 30% off (a median a slow spell still caught) moves the
 * figures by little: the robust fit damps it. */
static void test_an_outlier_is_damped(void **state) {
  (void)state;
  infs_profile_t t = truth(), b = base();
  calib_ttft_t ttft[32];
  calib_tpot_t tpot[16];
  size_t n_tpot;
  size_t n_ttft =
      make_points(&t, 3.0, 0, lengths, sizeof lengths / sizeof *lengths, ttft,
                  tpot, &n_tpot);
  ttft[5].ms *= 1.3; /* 512 tokens */
  calib_result_t r;
  char why[256] = "";
  if (calib_fit(&b, ttft, n_ttft, tpot, n_tpot, &r, why, sizeof why))
    fail_msg("%s", why);
  REL(r.profile.mem_eff, 0.5, 0.01);
  REL(r.profile.mfu, 0.5, 0.01);
  REL(r.profile.per_seq_ms, 0.2, 0.01);
  assert_true(fabs(r.profile.step_overhead_ms - 1) < 0.1);
  assert_true(r.downweighted >= 1);
}

/* Prompts all past the knee: nothing separates the step overhead from
 * the weight read, so the overhead is the base's. */
static void test_no_short_prompts_hold_the_overhead(void **state) {
  (void)state;
  infs_profile_t t = truth(), b = base();
  b.step_overhead_ms = 1; /* the user's base knows it */
  static const double long_only[] = {512, 1024, 2048, 4096};
  /* Leave out the prefix points, which are short. */
  calib_result_t r = fit_points(&t, &b, 0, long_only, 4, 4);
  assert_false(r.fitted_overhead);
  assert_true(r.fitted_mfu);
  assert_true(r.profile.step_overhead_ms == 1);
  REL(r.profile.mem_eff, 0.5, 1e-3);
  REL(r.profile.mfu, 0.5, 1e-3);
  REL(r.profile.per_seq_ms, 0.2, 1e-3);
}

/* Prompts all below the knee: the FLOP rate cannot be seen, so mfu is
 * the base's (which puts the knee at 120 tokens, above these prompts
 * too), and without the compute line's intercept the weight read and the
 * overhead are one figure, so the overhead is the base's too. */
static void test_no_long_prompts_hold_mfu(void **state) {
  (void)state;
  infs_profile_t t = truth(), b = base();
  static const double short_only[] = {16, 32, 48, 64};
  b.step_overhead_ms = 1;
  /* Leave out the prefix points: 128 and 192 tokens behind the cache are
   * past the knee of the base's (wrong) mfu. */
  calib_result_t r = fit_points(&t, &b, 0, short_only, 4, 4);
  assert_false(r.fitted_mfu);
  assert_false(r.fitted_overhead);
  assert_true(r.profile.mfu == b.mfu);
  REL(r.profile.mem_eff, 0.5, 1e-3);
  REL(r.profile.per_seq_ms, 0.2, 1e-3);
  REL(r.client_ms, 3, 1e-3);
}

static void test_too_few_points_are_refused(void **state) {
  (void)state;
  infs_profile_t b = base();
  calib_ttft_t ttft[2] = {{64, 0, 20}, {64, 0, 21}};
  calib_tpot_t tpot[2] = {{1, 100, 12}, {4, 100, 13}};
  calib_result_t r;
  char why[256] = "";
  assert_int_equal(calib_fit(&b, ttft, 2, tpot, 2, &r, why, sizeof why),
                   -EINVAL);
  assert_non_null(strstr(why, "two prompt lengths"));
  ttft[1].prompt = 1024;
  tpot[1].streams = 1;
  assert_int_equal(calib_fit(&b, ttft, 2, tpot, 2, &r, why, sizeof why),
                   -EINVAL);
  assert_non_null(strstr(why, "two concurrencies"));
  tpot[1].streams = 4;
  ttft[0].ms = 0;
  assert_int_equal(calib_fit(&b, ttft, 2, tpot, 2, &r, why, sizeof why),
                   -EINVAL);
  ttft[0].ms = 20;
  ttft[0].cached = 64;
  assert_int_equal(calib_fit(&b, ttft, 2, tpot, 2, &r, why, sizeof why),
                   -EINVAL);
  assert_int_equal(calib_fit(&b, ttft, 0, tpot, 2, &r, why, sizeof why),
                   -EINVAL);
}

/* A server that reads its weights faster than the base's bandwidth
 * allows: the base is wrong, and the fit says which figures. */
static void test_faster_than_the_peak_is_refused(void **state) {
  (void)state;
  infs_profile_t t = truth(), b = base();
  t.mem_bw_gbs *= 4; /* the weights in 2.5 ms at the same share */
  calib_ttft_t ttft[32];
  calib_tpot_t tpot[16];
  size_t n_tpot;
  size_t n_ttft =
      make_points(&t, 3.0, 0, lengths, sizeof lengths / sizeof *lengths, ttft,
                  tpot, &n_tpot);
  calib_result_t r;
  char why[256] = "";
  assert_int_equal(
      calib_fit(&b, ttft, n_ttft, tpot, n_tpot, &r, why, sizeof why),
      INFS_ECONFIG);
  assert_non_null(strstr(why, "mem_bw_gbs"));
  REL(r.weight_read_ms, 2.5, 1e-3);
}

/* The shipped gpu-h100 with attention and KV reads, prompts past the
 * step's budget (two and three steps), and other shares and overheads
 * than it ships with. */
static void test_shipped_profile_with_attention(void **state) {
  (void)state;
  profile_set_t *set = NULL;
  char err[512];
  if (profile_set_load(INFSCHED_SOURCE_DIR "/configs/profiles.yaml", &set, err,
                       sizeof err))
    fail_msg("%s", err);
  infs_profile_t b = *profile_set_find(set, "gpu-h100"), t = b;
  profile_set_destroy(&set);
  t.mem_eff = 0.55;
  t.mfu = 0.35;
  t.step_overhead_ms = 1.5;
  t.per_seq_ms = 0.3;
  static const double ladder[] = {32,   64,   128,  256,   512,
                                  1024, 4096, 8192, 12000, 20000};
  calib_result_t r =
      fit_points(&t, &b, 0, ladder, sizeof ladder / sizeof *ladder, 0);
  REL(r.profile.mem_eff, 0.55, 1e-3);
  REL(r.profile.mfu, 0.35, 1e-3);
  REL(r.profile.step_overhead_ms, 1.5, 1e-3);
  REL(r.profile.per_seq_ms, 0.3, 1e-3);
  REL(r.client_ms, 3, 1e-3);
}

static void test_median_and_quantiles(void **state) {
  (void)state;
  double odd[] = {5, 1, 3};
  double even[] = {4, 1, 3, 2};
  double five[] = {50, 10, 40, 20, 30};
  assert_true(calib_median(odd, 3) == 3);
  assert_true(calib_median(even, 4) == 2.5);
  assert_true(calib_median(NULL, 0) == 0);
  assert_true(calib_quantile(five, 5, 0.25) == 20);
  assert_true(calib_quantile(five, 5, 0) == 10);
  assert_true(calib_quantile(five, 5, 1) == 50);
  assert_true(calib_quantile(even, 4, 0.25) == 1.75);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_model_by_hand),
      cmocka_unit_test(test_exact_points_give_the_truth_back),
      cmocka_unit_test(test_noisy_points_stay_close),
      cmocka_unit_test(test_an_outlier_is_damped),
      cmocka_unit_test(test_no_short_prompts_hold_the_overhead),
      cmocka_unit_test(test_no_long_prompts_hold_mfu),
      cmocka_unit_test(test_too_few_points_are_refused),
      cmocka_unit_test(test_faster_than_the_peak_is_refused),
      cmocka_unit_test(test_shipped_profile_with_attention),
      cmocka_unit_test(test_median_and_quantiles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
