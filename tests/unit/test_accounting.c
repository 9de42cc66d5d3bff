/* model/accounting: the heartbeat figures and per-request costs that the
 * worker daemon and the simulator both report. */
#include "accounting.h"
#include "cost.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static infs_profile_t profile(double in, double out) {
  infs_profile_t p = {
      .name = "p",
      .price_per_hour = 3.6, /* a dollar per 1,000 s */
      .power_idle_w = 1000,
      .power_busy_w = 2000,
      .usd_per_mtok_in = in,
      .usd_per_mtok_out = out,
  };
  return p;
}

static void test_beats(void **state) {
  (void)state;
  infs_profile_t p = profile(0, 0);
  accounting_t a;
  accounting_init(&a, &p, 0.36, 5000000); /* up at t = 5 s */
  accounting_beat_t b;
  /* t = 7 s: up 2 s, 1 s busy, 300 tokens since start. */
  accounting_beat(&a, 7000000, 1.0, 300, &b);
  assert_float_equal(b.up_s, 2.0, 1e-12);
  assert_float_equal(b.busy_s, 1.0, 1e-12);
  assert_float_equal(b.tokens_per_s, 150.0, 1e-9);
  /* $0.002 of time; 1 kW idle for 1 s and 2 kW busy for 1 s at $0.36/kWh
   * is 3 kJ = 1/1200 kWh = $0.0003. */
  assert_float_equal(b.cost_usd, 0.002 + 0.0003, 1e-12);
  assert_float_equal(b.cost_usd, cost_worker_usd(&p, 2.0, 1.0, 0.36), 1e-15);
  /* The next interval counts from the previous beat. */
  accounting_beat(&a, 7500000, 1.2, 400, &b);
  assert_float_equal(b.tokens_per_s, 200.0, 1e-9);
  assert_float_equal(accounting_cost_usd(&a, 7500000, 1.2), b.cost_usd, 1e-15);
  /* No time passed: no rate rather than a division by zero. */
  accounting_beat(&a, 7500000, 1.2, 400, &b);
  assert_float_equal(b.tokens_per_s, 0.0, 0);
}

static void test_done_bills_tokens(void **state) {
  (void)state;
  infs_profile_t p = profile(2.0, 10.0); /* $/M tokens in, out */
  accounting_t a;
  accounting_init(&a, &p, 0.0, 0);
  /* 0.5 s of busy time: $0.0005; 1M prompt tokens $2, 100k out $1; $0.25
   * billed by the upstream. */
  double c = accounting_done(&a, 1000000, 100000, 0.5, 0.25);
  assert_float_equal(c, 0.0005 + 2.0 + 1.0 + 0.25, 1e-12);
  /* The per-token charges join the pool's cost; time is already in it. */
  assert_float_equal(accounting_cost_usd(&a, 1000000, 0.5),
                     cost_worker_usd(&p, 1.0, 0.5, 0.0) + 3.25, 1e-12);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_beats),
      cmocka_unit_test(test_done_bills_tokens),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
