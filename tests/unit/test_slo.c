/* lib/slo.c (a request's targets, parsing, judging a request) and
 * model/slo_check.c (targets out of reach of an idle worker). */
#include "infsched/errors.h"
#include "infsched/profile.h"
#include "slo.h"
#include "slo_check.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#ifndef INFSCHED_SOURCE_DIR
#error "INFSCHED_SOURCE_DIR must name the source tree"
#endif

#define EPS 1e-9

static void test_targets_grow_with_uncached_tokens(void **unused) {
  (void)unused;
  static const struct {
    slo_t slo;
    uint32_t uncached;
    double ttft_ms, tpot_ms;
  } cases[] = {
      {{450, 250, 40}, 0, 450, 40},
      {{450, 250, 40}, 1000, 700, 40},
      {{450, 250, 40}, 2048, 962, 40},
      {{450, 250, 40}, 60000, 15450, 40},
      {{2000, 0, 25}, 60000, 2000, 25}, /* no allowance: fixed */
      {{0, 250, 40}, 5000, 0, 40},      /* 0: TTFT not checked */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    slo_targets_t t = slo_targets(&cases[i].slo, cases[i].uncached);
    assert_float_equal(t.ttft_ms, cases[i].ttft_ms, EPS);
    assert_float_equal(t.tpot_ms, cases[i].tpot_ms, EPS);
  }
  infs_request_t r = {.ttft_ms = 450, .ttft_ms_per_ktok = 250, .tpot_ms = 40};
  slo_t s = slo_of_request(&r);
  assert_float_equal(slo_targets(&s, 4000).ttft_ms, 1450, EPS);
}

static void test_judge_names_the_part_missed(void **unused) {
  (void)unused;
  const slo_t s = {450, 250, 40}; /* 2,000 uncached tokens: 950 ms */
  static const struct {
    double ttft, tpot;
    slo_miss_t miss;
  } cases[] = {
      {950, 40, SLO_MISS_NONE},   {950.5, 40, SLO_MISS_TTFT},
      {900, 40.5, SLO_MISS_TPOT}, {2000, 90, SLO_MISS_BOTH},
      {2000, -1, SLO_MISS_TTFT}, /* one token: no TPOT to miss */
      {100, -1, SLO_MISS_NONE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    assert_int_equal(slo_judge(&s, 2000, cases[i].ttft, cases[i].tpot),
                     cases[i].miss);
  /* The same TTFT meets the target of a longer prompt. */
  assert_int_equal(slo_judge(&s, 0, 700, 10), SLO_MISS_TTFT);
  assert_int_equal(slo_judge(&s, 1000, 700, 10), SLO_MISS_NONE);
  assert_string_equal(slo_miss_name(SLO_MISS_TTFT), "ttft");
  assert_string_equal(slo_miss_name(SLO_MISS_TPOT), "tpot");
  assert_string_equal(slo_miss_name(SLO_MISS_BOTH), "both");
}

static void test_parse(void **unused) {
  (void)unused;
  slo_t slo[INFS_CLASS_COUNT];
  char err[200];
  slo_defaults(slo);
  assert_int_equal(slo_parse("agent=1000+120:30,batch=5:6", slo, err,
                             sizeof err),
                   0);
  assert_int_equal(slo[INFS_CLASS_AGENT].ttft_ms, 1000);
  assert_int_equal(slo[INFS_CLASS_AGENT].ttft_ms_per_ktok, 120);
  assert_int_equal(slo[INFS_CLASS_AGENT].tpot_ms, 30);
  /* A class given without an allowance has none. */
  assert_int_equal(slo[INFS_CLASS_BATCH].ttft_ms, 5);
  assert_int_equal(slo[INFS_CLASS_BATCH].ttft_ms_per_ktok, 0);
  assert_int_equal(slo[INFS_CLASS_INTERACTIVE].ttft_ms, 450);
  char buf[48];
  slo_format(&slo[INFS_CLASS_AGENT], buf, sizeof buf);
  assert_string_equal(buf, "1000+120:30");
  slo_format(&slo[INFS_CLASS_BATCH], buf, sizeof buf);
  assert_string_equal(buf, "5:6");

  static const char *const bad[] = {
      "agent=1000",     "nobody=1:2",  "agent=0:5",     "agent=5:0",
      "agent=5:x",      "",            "agent=5+:6",    "agent=5+-1:6",
      "agent=1:2,x=1:2", "agent=1:2:3", "=1:2",          "agent=99999999999:1",
      "agent=1:2,",
  };
  slo_t before[INFS_CLASS_COUNT];
  memcpy(before, slo, sizeof before);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = '\0';
    if (slo_parse(bad[i], slo, err, sizeof err) != INFS_ECONFIG)
      fail_msg("'%s' accepted", bad[i]);
    assert_true(strlen(err) > 0);
    assert_memory_equal(slo, before, sizeof before); /* unchanged */
  }
}

/* A profile with round figures: a step reads 24 GB of weights at 1 TB/s
 * (24 ms) and 20 KB of KV per context token, and computes 0.1 ms per token
 * (1B parameters at 20 TFLOP/s), no attention term and no overheads. A
 * step holds 512 tokens: a full prefill chunk is compute bound, 51.2 ms. */
static infs_profile_t toy(void) {
  infs_profile_t p = {.cls = INFS_WORKER_TPU,
                      .weights_gb = 24,
                      .params_b = 1,
                      .kv_kb_per_token = 20,
                      .mem_bw_gbs = 1000,
                      .mem_eff = 1,
                      .peak_tflops = 20,
                      .mfu = 1,
                      .max_batch = 8,
                      .kv_tokens = 65536,
                      .max_context = 65536,
                      .block_size = 64,
                      .max_num_batched_tokens = 512};
  strcpy(p.name, "toy");
  return p;
}

static void test_idle_figures(void **unused) {
  (void)unused;
  infs_profile_t p = toy();
  assert_float_equal(slo_check_idle_ttft_ms(&p, 1000), 51.2 + 48.8, 1e-9);
  assert_float_equal(slo_check_idle_ttft_ms(&p, 1), 24, 1e-9); /* memory */
  assert_float_equal(slo_check_idle_tpot_ms(&p, 65536), 25.31072, 1e-6);
}

static void test_infeasible_target_is_named(void **unused) {
  (void)unused;
  infs_profile_t p = toy();
  slo_t slo[INFS_CLASS_COUNT] = {
      {450, 100, 40}, {2000, 100, 40}, {30000, 100, 200}};
  char err[400];
  /* At most 0.1 ms per token (24 ms for one) against 450 ms and an
   * allowance of 0.1 ms per token: met. */
  assert_int_equal(slo_check_profile(slo, &p, err, sizeof err), 0);

  /* Agent decode at 25 ms: an idle step at 64K of context takes 25.3. */
  slo[INFS_CLASS_AGENT].tpot_ms = 25;
  assert_int_equal(slo_check_profile(slo, &p, err, sizeof err), INFS_ECONFIG);
  assert_string_equal(err, "SLO of agent: TPOT target 25 ms is below what an "
                           "idle tpu worker (profile toy) takes per output "
                           "token at 65536 tokens of context, 25.3 ms");
  slo[INFS_CLASS_AGENT].tpot_ms = 40;

  /* A fixed 450 ms: prompts of 4,096 tokens take 8 chunks, 410 ms; 8,192
   * take 819 ms. */
  slo[INFS_CLASS_INTERACTIVE].ttft_ms_per_ktok = 0;
  assert_int_equal(slo_check_profile(slo, &p, err, sizeof err), INFS_ECONFIG);
  assert_string_equal(err, "SLO of interactive: TTFT target 450 ms + 0 ms "
                           "per 1K uncached tokens (450 ms for a 8192-token "
                           "prompt) is below what an idle tpu worker "
                           "(profile toy) takes to its first token, 819 ms");
  /* Too small an allowance fails only on the longest prompt: 65,535
   * tokens take 6,554 ms, against 450 + 90 x 65.5 = 6,348. */
  slo[INFS_CLASS_INTERACTIVE].ttft_ms_per_ktok = 90;
  assert_int_equal(slo_check_profile(slo, &p, err, sizeof err), INFS_ECONFIG);
  assert_non_null(strstr(err, "for a 65535-token prompt"));
}

/* The shipped defaults can be met on every shipped profile. */
static void test_defaults_feasible_on_shipped_profiles(void **unused) {
  (void)unused;
  profile_set_t *set = NULL;
  char err[400];
  assert_int_equal(profile_set_load(INFSCHED_SOURCE_DIR
                                    "/configs/profiles.yaml",
                                    &set, err, sizeof err),
                   0);
  slo_t slo[INFS_CLASS_COUNT];
  slo_defaults(slo);
  assert_true(profile_set_count(set) >= 3);
  for (size_t i = 0; i < profile_set_count(set); i++)
    if (slo_check_profile(slo, profile_set_at(set, i), err, sizeof err))
      fail_msg("%s", err);
  profile_set_destroy(&set);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_targets_grow_with_uncached_tokens),
      cmocka_unit_test(test_judge_names_the_part_missed),
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_idle_figures),
      cmocka_unit_test(test_infeasible_target_is_named),
      cmocka_unit_test(test_defaults_feasible_on_shipped_profiles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
