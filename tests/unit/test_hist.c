/* lib/hist: exact small values, bounded relative error for large ones,
 * nearest-rank quantiles, merge. */
#include "hist.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static void test_empty(void **state) {
  (void)state;
  hist_t *h = hist_new();
  assert_non_null(h);
  assert_int_equal(hist_count(h), 0);
  assert_int_equal(hist_quantile(h, 0.5), 0);
  assert_int_equal(hist_min(h), 0);
  assert_int_equal(hist_max(h), 0);
  assert_true(hist_mean(h) == 0.0);
  hist_destroy(&h);
  assert_null(h);
  hist_destroy(&h); /* idempotent */
}

/* Values below 128 are exact, so nearest rank is checked to the unit. */
static void test_small_values_exact(void **state) {
  (void)state;
  static const struct {
    double q;
    uint64_t want;
  } table[] = {
      {0.0, 1},  {0.01, 1},  {0.011, 2},   {0.5, 50},
      {0.9, 90}, {0.99, 99}, {0.995, 100}, {1.0, 100},
  };
  hist_t *h = hist_new();
  for (uint64_t v = 100; v >= 1; v--)
    hist_record(h, v);
  assert_int_equal(hist_count(h), 100);
  assert_int_equal(hist_min(h), 1);
  assert_int_equal(hist_max(h), 100);
  assert_true(hist_mean(h) == 50.5);
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    assert_int_equal(hist_quantile(h, table[i].q), table[i].want);
  hist_destroy(&h);
}

static void test_single_large_value(void **state) {
  (void)state;
  hist_t *h = hist_new();
  hist_record(h, 123456789);
  assert_int_equal(hist_quantile(h, 0.5), 123456789);
  assert_int_equal(hist_quantile(h, 0.99), 123456789);
  hist_record(h, UINT64_MAX);
  assert_int_equal(hist_max(h), UINT64_MAX);
  assert_int_equal(hist_quantile(h, 1.0), UINT64_MAX);
  hist_destroy(&h);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Against exact nearest-rank quantiles of a wide spread of values: within
 * 1/256 of the true value (half a bucket). */
static void test_relative_error_bound(void **state) {
  (void)state;
  enum { N = 20000 };
  uint64_t *v = malloc(N * sizeof *v);
  hist_t *h = hist_new();
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < N; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = x >> (24 + x % 34); /* 6 to 40 bits */
    hist_record(h, v[i]);
  }
  qsort(v, N, sizeof *v, cmp_u64);
  static const double qs[] = {0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999};
  for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
    uint64_t rank = (uint64_t)ceil(qs[i] * N - 1e-9);
    uint64_t exact = v[rank - 1];
    uint64_t got = hist_quantile(h, qs[i]);
    uint64_t diff = got > exact ? got - exact : exact - got;
    assert_true(diff <= exact / 256 + 1);
  }
  long double sum = 0;
  for (int i = 0; i < N; i++)
    sum += v[i];
  assert_true(hist_mean(h) == (double)(sum / N));
  free(v);
  hist_destroy(&h);
}

static void test_merge_and_reset(void **state) {
  (void)state;
  hist_t *a = hist_new(), *b = hist_new(), *all = hist_new();
  for (uint64_t i = 1; i <= 1000; i++) {
    hist_record(i % 2 ? a : b, i * 997);
    hist_record(all, i * 997);
  }
  hist_merge(a, b);
  assert_int_equal(hist_count(a), 1000);
  assert_int_equal(hist_min(a), hist_min(all));
  assert_int_equal(hist_max(a), hist_max(all));
  assert_true(hist_mean(a) == hist_mean(all));
  assert_int_equal(hist_quantile(a, 0.5), hist_quantile(all, 0.5));
  assert_int_equal(hist_quantile(a, 0.99), hist_quantile(all, 0.99));
  hist_reset(a);
  assert_int_equal(hist_count(a), 0);
  assert_int_equal(hist_quantile(a, 0.5), 0);
  hist_destroy(&a);
  hist_destroy(&b);
  hist_destroy(&all);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_small_values_exact),
      cmocka_unit_test(test_single_large_value),
      cmocka_unit_test(test_relative_error_bound),
      cmocka_unit_test(test_merge_and_reset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
