/* Profiles: the shipped file loads and has the shapes the scheduler relies
 * on; the timing formulas; bad files fail with "FILE:LINE: ... field 'x'". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "infsched/errors.h"
#include "infsched/profile.h"
#include "profile_fields.h"
#include "step.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef INFSCHED_SOURCE_DIR
#error "INFSCHED_SOURCE_DIR must name the source tree"
#endif

static const char *shipped = INFSCHED_SOURCE_DIR "/configs/profiles.yaml";

/* ---- the shipped profiles ------------------------------------------------ */

static void test_shipped_profiles_load(void **state) {
  (void)state;
  profile_set_t *set = NULL;
  char err[512];
  int rc = profile_set_load(shipped, &set, err, sizeof err);
  if (rc)
    fail_msg("%s", err);
  assert_true(profile_set_count(set) >= 3);
  assert_null(profile_set_at(set, profile_set_count(set)));
  assert_null(profile_set_find(set, "no-such-profile"));

  const infs_profile_t *gpu = profile_set_find(set, "gpu-h100");
  const infs_profile_t *sram = profile_set_find(set, "sram-wse3");
  const infs_profile_t *tpu = profile_set_find(set, "tpu-v6e");
  assert_non_null(gpu);
  assert_non_null(sram);
  assert_non_null(tpu);
  assert_int_equal(gpu->cls, INFS_WORKER_GPU);
  assert_int_equal(sram->cls, INFS_WORKER_SRAM);
  assert_int_equal(tpu->cls, INFS_WORKER_TPU);

  /* The scheduler's tests rely on these context limits. */
  assert_int_equal(sram->max_context, 32768);
  assert_true(gpu->max_context >= 131072);
  assert_true(tpu->max_context >= 65536);

  /* The public measurements the profiles rest on (docs/reference-numbers.md),
   * within 6%: Oracle's Llama 3.3 70B on 4 x H100 at 1/32/128/256 streams
   * of ~600 tokens of context; bench_profiles prints the ratios. */
  static const struct {
    uint32_t streams;
    double tok_s;
  } oracle[] = {{1, 58.6}, {32, 44.3}, {128, 25.6}, {256, 15.3}};
  for (size_t i = 0; i < sizeof oracle / sizeof oracle[0]; i++) {
    uint32_t b = oracle[i].streams;
    double tps = 1000 / step_decode_ms(gpu, b, (uint64_t)b * 600);
    if (fabs(tps / oracle[i].tok_s - 1) > 0.06)
      fail_msg("gpu-h100 at %u streams: %.1f tok/s, measured %.1f", b, tps,
               oracle[i].tok_s);
  }
  /* Cerebras's 2,148 tok/s per stream. */
  double sram_tps = 1000 / step_decode_ms(sram, 1, 1000);
  assert_true(fabs(sram_tps / 2148 - 1) < 0.06);
  /* The TPU's decode is bound by its bandwidth: slower than the GPU. */
  double gpu_tps = 1000 / step_decode_ms(gpu, 1, 2000);
  double tpu_tps = 1000 / step_decode_ms(tpu, 1, 2000);
  assert_true(tpu_tps < gpu_tps);
  /* ... batch sizes and prices ... */
  assert_true(gpu->max_batch >= 128 && tpu->max_batch >= gpu->max_batch);
  assert_true(sram->max_batch < gpu->max_batch);
  assert_true(sram->price_per_hour > 10 * gpu->price_per_hour);
  /* ... and TTFT: 480 tokens in about Oracle's 0.05 s on the GPU, a few
   * thousand well under a second, faster on SRAM. */
  double ttft480 = step_prefill_ms(gpu, 480, 0, 0, 0, 0, NULL);
  assert_true(ttft480 > 35 && ttft480 < 55);
  double gpu3k = step_prefill_ms(gpu, 3000, 0, 0, 0, 0, NULL);
  assert_true(gpu3k < 500);
  assert_true(step_prefill_ms(sram, 3000, 0, 0, 0, 0, NULL) < gpu3k);
  /* vLLM's budgets: 8,192 on the H100, 1,024 on the TPU v6e. */
  assert_int_equal(gpu->max_num_batched_tokens, 8192);
  assert_int_equal(tpu->max_num_batched_tokens, 1024);

  for (size_t i = 0; i < profile_set_count(set); i++) {
    const infs_profile_t *p = profile_set_at(set, i);
    const char *field;
    char why[160];
    assert_int_equal(profile_validate(p, &field, why, sizeof why), 0);
    /* Clients hash prompts once, for every worker. */
    assert_int_equal(p->block_size, gpu->block_size);
  }
  profile_set_destroy(&set);
  assert_null(set);
  profile_set_destroy(&set);
}

/* ---- bad files ------------------------------------------------------------
 */

static char tmpdir[64];

static int setup_tmp(void **state) {
  (void)state;
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/test_profiles.XXXXXX",
           base && *base && strlen(base) < 32 ? base : "/tmp");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
  (void)state;
  return rmdir(tmpdir);
}

/* A valid profile, one field per line from line 3 on. */
static const char *const base_lines[] = {
    "profiles:",
    "  p1:",
    "    class: gpu",
    "    price_per_hour: 10",
    "    power_idle_w: 100",
    "    power_busy_w: 500",
    "    weights_gb: 141",
    "    params_b: 70",
    "    kv_kb_per_token: 320",
    "    mem_bw_gbs: 13400",
    "    mem_eff: 0.6",
    "    peak_tflops: 3956",
    "    mfu: 0.4",
    "    per_seq_ms: 0.2",
    "    max_batch: 64",
    "    kv_tokens: 100000",
    "    max_context: 65536",
    "    block_size: 64",
};
#define N_BASE (sizeof base_lines / sizeof base_lines[0])

/* Writes the base profile with field `key` set to `value` (appended when the
 * base has no such field, dropped when value is NULL). Returns the line the
 * field is on (or would be). */
static int write_variant(const char *path, const char *key, const char *value) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  int line = 0, found = 0;
  char prefix[64] = "";
  if (key)
    snprintf(prefix, sizeof prefix, "    %s:", key);
  for (size_t i = 0; i < N_BASE; i++) {
    if (key && strncmp(base_lines[i], prefix, strlen(prefix)) == 0) {
      found = 1;
      line = (int)i + 1;
      if (value)
        fprintf(f, "%s %s\n", prefix, value);
      continue;
    }
    fprintf(f, "%s\n", base_lines[i]);
  }
  if (key && !found) {
    fprintf(f, "    %s: %s\n", key, value);
    line = (int)N_BASE + 1;
  }
  fclose(f);
  return line;
}

static void expect_error(const char *path, int want_rc, const char *prefix,
                         const char *what) {
  profile_set_t *set = NULL;
  char err[512];
  int rc = profile_set_load(path, &set, err, sizeof err);
  assert_null(set);
  assert_int_equal(rc, want_rc);
  if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, what))
    fail_msg("got '%s', want '%s...%s'", err, prefix, what);
}

static void test_bad_fields(void **state) {
  (void)state;
  static const struct {
    const char *field;
    const char *value; /* NULL: the field is missing */
    const char *what;
  } rows[] = {
      {"max_batch", "0", "at least 1"},
      {"weights_gb", "-5", "greater than 0"},
      {"params_b", "0", "greater than 0"},
      {"kv_kb_per_token", "-1", ">= 0"},
      {"mem_bw_gbs", "0", "greater than 0"},
      {"peak_tflops", "-1", "greater than 0"},
      {"mem_eff", "1.5", "above 0 and at most 1"},
      {"mfu", "0", "above 0 and at most 1"},
      {"attn_mflop_per_ctx", "-1", ">= 0"},
      {"step_overhead_ms", "-1", ">= 0"},
      {"base_ms", "17", "no longer used: step times come from the roofline"},
      {"prefill_tps", "9000", "no longer used"},
      {"per_kctx_ms", "0.04", "no longer used"},
      {"prefill_attn_per_kctx", "0.019", "no longer used"},
      {"per_seq_ms", "-0.1", ">= 0"},
      {"price_per_hour", "-1", ">= 0"},
      {"class", "fpga", "unknown class 'fpga'"},
      {"block_size", "0", "at least 1"},
      {"max_num_batched_tokens", "0", "at least 1"},
      {"max_num_batched_tokens", "32", "must be at least max_batch (64)"},
      {"prefill_chunk", "512", "no longer used: max_num_batched_tokens"},
      {"slo_aware_prefill", "yes", "expected true or false, got 'yes'"},
      {"slo_aware_prefill", "[true]", "expected true or false, got a list"},
      {"max_context", "200000", "must not exceed kv_tokens"},
      {"power_busy_w", "50", "below power_idle_w"},
      {"colour", "red", "unknown field"},
      {"max_batch", "abc", "expected a whole number"},
      {"max_batch", "2.5", "expected a whole number"},
      {"max_batch", "-1", "expected a whole number"},
      {"max_batch", "99999999999", "too large"},
      {"weights_gb", "[1, 2]", "expected a number, got a list"},
      {"weights_gb", "{a: 1}", "expected a number, got a mapping"},
      {"mfu", "nan", "expected a number"},
      {"per_seq_ms", "17ms", "expected a number"},
      {"price_per_hour", "'3'", "the string '3'"},
      {"class", "[gpu]", "got a list"},
      {"kv_tokens", NULL, "missing"},
      {"class", NULL, "missing"},
      {"mfu", NULL, "missing"},
  };
  char path[128];
  snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    int line = write_variant(path, rows[i].field, rows[i].value);
    if (!rows[i].value)
      line = 2; /* a missing field is reported at its profile */
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s:%d: profile 'p1': field '%s': ", path,
             line, rows[i].field);
    expect_error(path, INFS_ECONFIG, prefix, rows[i].what);
  }
  unlink(path);
}

static void test_bad_files(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int line;
    const char *where; /* after "FILE:LINE: " */
  } rows[] = {
      {"", 1, "empty file"},
      {"- gpu\n", 1, "expected a mapping with 'profiles:', got a list"},
      {"workers:\n  a: 1\n", 1, "unknown top-level key"},
      {"profiles: []\n", 1, "'profiles:' must map names to profiles"},
      {"profiles: {}\n", 1, "no profiles defined"},
      {"profiles:\n  p1: [\n", 3, "not valid YAML"},
      {"profiles:\n  p1:\n    class: gpu\n\tmfu: 1\n", 4, "not valid YAML"},
      {"profiles:\n  p1: 3\n", 2, "profile 'p1': expected a mapping"},
      {"profiles:\n  p1:\n    max_batch: 1\n    max_batch: 2\n", 4,
       "profile 'p1': field 'max_batch': given twice (first on line 3)"},
  };
  char path[128];
  snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(rows[i].text, f);
    fclose(f);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s:%d: %s", path, rows[i].line,
             rows[i].where);
    expect_error(path, INFS_ECONFIG, prefix, "");
  }

  /* The same profile twice, and a second document. */
  FILE *f = fopen(path, "w");
  for (size_t i = 0; i < N_BASE; i++)
    fprintf(f, "%s\n", base_lines[i]);
  for (size_t i = 1; i < N_BASE; i++)
    fprintf(f, "%s\n", base_lines[i]);
  fclose(f);
  char prefix[256];
  snprintf(prefix, sizeof prefix,
           "%s:%zu: profile 'p1': defined twice (first on line 2)", path,
           N_BASE + 1);
  expect_error(path, INFS_ECONFIG, prefix, "");

  f = fopen(path, "w");
  for (size_t i = 0; i < N_BASE; i++)
    fprintf(f, "%s\n", base_lines[i]);
  fprintf(f, "---\nprofiles: {}\n");
  fclose(f);
  snprintf(prefix, sizeof prefix, "%s:%zu: a second YAML document", path,
           N_BASE + 2);
  expect_error(path, INFS_ECONFIG, prefix, "");

  /* The base itself loads, with the documented defaults. */
  write_variant(path, NULL, NULL);
  profile_set_t *set = NULL;
  char err[512];
  assert_int_equal(profile_set_load(path, &set, err, sizeof err), 0);
  const infs_profile_t *p = profile_set_find(set, "p1");
  assert_non_null(p);
  assert_int_equal(p->max_num_batched_tokens, INFS_PROFILE_DEFAULT_BATCHED_TOKENS);
  assert_false(p->slo_aware_prefill);
  assert_true(p->attn_mflop_per_ctx == 0 && p->step_overhead_ms == 0);
  assert_true(p->usd_per_mtok_in == 0 && p->usd_per_mtok_out == 0);
  assert_int_equal(p->max_batch, 64);
  assert_true(p->per_seq_ms == 0.2);
  profile_set_destroy(&set);
  unlink(path);

  /* A file that cannot be read is -errno. */
  snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
  snprintf(prefix, sizeof prefix, "%s: ", path);
  expect_error(path, -ENOENT, prefix, strerror(ENOENT));
}

/* ---- writing and setting fields (lib/profile_fields.h) ------------------
 */

static const char *note_mfu(void *arg, const char *field) {
  return strcmp(field, "mfu") == 0 ? arg : NULL;
}

/* Every shipped profile, written out and loaded again, is the same
 * profile; the notes land on their fields' lines. */
static void test_format_loads_back(void **state) {
  (void)state;
  profile_set_t *set = NULL, *again = NULL;
  char err[512], path[128];
  if (profile_set_load(shipped, &set, err, sizeof err))
    fail_msg("%s", err);
  buf_t text = {0};
  buf_puts(&text, "profiles:\n");
  for (size_t i = 0; i < profile_set_count(set); i++)
    profile_format(&text, profile_set_at(set, i), note_mfu, "measured");
  assert_non_null(strstr(text.data, "    mfu: 0.4  # measured\n"));
  assert_non_null(strstr(text.data, "    mem_eff: 0.63\n"));
  snprintf(path, sizeof path, "%s/written.yaml", tmpdir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text.data, f);
  fclose(f);
  if (profile_set_load(path, &again, err, sizeof err))
    fail_msg("%s\n%s", err, text.data);
  assert_int_equal(profile_set_count(again), profile_set_count(set));
  for (size_t i = 0; i < profile_set_count(set); i++)
    assert_true(
        profile_equal(profile_set_at(set, i), profile_set_at(again, i)));
  unlink(path);
  buf_free(&text);
  profile_set_destroy(&set);
  profile_set_destroy(&again);
}

static void test_set_field(void **state) {
  (void)state;
  infs_profile_t p = {0};
  char why[256];
  assert_int_equal(profile_set_field(&p, "weights_gb", "16.1", why, sizeof why),
                   0);
  assert_true(p.weights_gb == 16.1);
  assert_int_equal(profile_set_field(&p, "max_batch", "64", why, sizeof why),
                   0);
  assert_int_equal(p.max_batch, 64);
  assert_int_equal(profile_set_field(&p, "class", "tpu", why, sizeof why), 0);
  assert_int_equal(p.cls, INFS_WORKER_TPU);
  assert_int_equal(
      profile_set_field(&p, "slo_aware_prefill", "true", why, sizeof why), 0);
  assert_true(p.slo_aware_prefill);
  assert_int_equal(profile_set_field(&p, "max_batch", "-1", why, sizeof why),
                   INFS_ECONFIG);
  assert_non_null(strstr(why, "whole number"));
  assert_int_equal(profile_set_field(&p, "mfu", "lots", why, sizeof why),
                   INFS_ECONFIG);
  assert_non_null(strstr(why, "expected a number, got 'lots'"));
  assert_int_equal(profile_set_field(&p, "speed", "1", why, sizeof why),
                   INFS_EUNKNOWN);
  assert_non_null(strstr(why, "unknown field 'speed'"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shipped_profiles_load),
      cmocka_unit_test(test_bad_fields),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_format_loads_back),
      cmocka_unit_test(test_set_field),
  };
  return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
