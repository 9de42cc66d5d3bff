/* Links and KV transfer time (model/transfer.h) against answers worked by
 * hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "infsched/errors.h"
#include "transfer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-6)

static infs_profile_t profile(const char *name, infs_worker_class_t cls) {
  infs_profile_t p = {.cls = cls, .kv_kb_per_token = 320};
  snprintf(p.name, sizeof p.name, "%s", name);
  return p;
}

static link_table_t *parse_ok(const char *spec) {
  link_table_t *t = NULL;
  char err[256] = "";
  int rc = link_table_parse(spec, &t, err, sizeof err);
  if (rc)
    fail_msg("'%s': %s", spec, err);
  assert_non_null(t);
  return t;
}

static void test_parse_and_find(void **state) {
  (void)state;
  link_table_t *t = parse_ok("tpu>gpu=50:20:overlap,*>*=12.5");
  assert_int_equal(link_table_count(t), 2);
  infs_profile_t tpu = profile("tpu-v6e", INFS_WORKER_TPU);
  infs_profile_t gpu = profile("gpu-h100", INFS_WORKER_GPU);

  infs_link_t l = link_find(t, "tpu-0", &tpu, "gpu-0", &gpu);
  NEAR(l.gbps, 50);
  NEAR(l.latency_us, 20);
  assert_true(l.overlap);
  /* The other direction has only the catch-all, with the default
   * latency and no overlap. */
  l = link_find(t, "gpu-0", &gpu, "tpu-0", &tpu);
  NEAR(l.gbps, 12.5);
  NEAR(l.latency_us, LINK_DEFAULT_LATENCY_US);
  assert_false(l.overlap);
  link_table_free(&t);
  assert_null(t);
  link_table_free(&t); /* idempotent */
}

static void test_most_specific_rule_wins(void **state) {
  (void)state;
  link_table_t *t =
      parse_ok("*>*=1,gpu>*=2,*>gpu-7=3,gpu-h100>gpu=4,gpu>gpu=5");
  infs_profile_t h100 = profile("gpu-h100", INFS_WORKER_GPU);
  infs_profile_t tpu = profile("tpu-v6e", INFS_WORKER_TPU);
  /* A worker id (9) beats a profile and a class on both sides (3 + 1). */
  NEAR(link_find(t, "gpu-0", &h100, "gpu-7", &h100).gbps, 3);
  /* Profile and class (4) beat class and class (2). */
  NEAR(link_find(t, "gpu-0", &h100, "gpu-8", &h100).gbps, 4);
  /* Class on one side (1) beats the catch-all. */
  NEAR(link_find(t, "gpu-0", &h100, "tpu-0", &tpu).gbps, 2);
  NEAR(link_find(t, "tpu-0", &tpu, "tpu-1", &tpu).gbps, 1);
  /* Unknown ids and profiles match '*' only. */
  NEAR(link_find(t, NULL, NULL, NULL, NULL).gbps, 1);
  link_table_free(&t);

  /* At equal weight the earlier rule wins. */
  t = parse_ok("gpu>*=1,*>gpu=2");
  NEAR(link_find(t, "a", &h100, "b", &h100).gbps, 1);
  link_table_free(&t);

  /* A table with no matching rule, and no table, give the defaults. */
  t = parse_ok("sram>tpu=7");
  infs_link_t l = link_find(t, "a", &h100, "b", &h100);
  NEAR(l.gbps, LINK_DEFAULT_GBPS);
  NEAR(l.latency_us, LINK_DEFAULT_LATENCY_US);
  assert_int_equal(l.overlap, LINK_DEFAULT_OVERLAP);
  link_table_free(&t);
  l = link_find(NULL, "a", &h100, "b", &h100);
  NEAR(l.gbps, LINK_DEFAULT_GBPS);
}

static void test_bad_specs(void **state) {
  (void)state;
  static const struct {
    const char *spec;
    const char *says; /* in the message */
  } cases[] = {
      {"", "no rules"},
      {"a>b", "rule 1 'a>b'"},
      {"a=1", "rule 1"},
      {">b=1", "before '>'"},
      {"a>=1", "between '>' and '='"},
      {"a>b=0", "bandwidth"},
      {"a>b=-1", "bandwidth"},
      {"a>b=x", "bandwidth"},
      {"a>b=inf", "bandwidth"},
      {"a>b=nan", "bandwidth"},
      {"a>b=2e6", "bandwidth"},
      {"a>b=1x", "bandwidth"},
      {"a>b=1:", "latency"},
      {"a>b=1:-5", "latency"},
      {"a>b=1:5x", "latency"},
      {"a>b=1:5:fast", "'overlap'"},
      {"a>b=1:5:overlap:x", "'overlap'"},
      {"a>b=1,", "rule 2 ''"},
      {"a>b=1,,c>d=2", "rule 2"},
      {"a>b=1,a>b=2", "same FROM>TO"},
      {"a b>c=1", "rule 1"},
      {"a>b>c=1", "rule 1"},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>b=1",
       "rule 1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    link_table_t *t = (link_table_t *)&t; /* must come back NULL */
    char err[256] = "";
    int rc = link_table_parse(cases[i].spec, &t, err, sizeof err);
    if (rc != INFS_ECONFIG || t != NULL || !strstr(err, cases[i].says))
      fail_msg("'%s': rc %d, err '%s', wanted '%s'", cases[i].spec, rc, err,
               cases[i].says);
  }
}

static void test_bytes(void **state) {
  (void)state;
  infs_profile_t gpu = profile("gpu-h100", INFS_WORKER_GPU);
  /* 320 KB of 1,024 bytes a token. */
  assert_int_equal(kv_transfer_bytes(&gpu, 1000), 327680000ull);
  assert_int_equal(kv_transfer_bytes(&gpu, 0), 0);
  gpu.kv_kb_per_token = 160;
  assert_int_equal(kv_transfer_bytes(&gpu, 131072), 21474836480ull);
}

static void test_visible_time(void **state) {
  (void)state;
  /* 1 GB over 50 GB/s is 20,000 us. */
  infs_link_t serial = {50, 20, false};
  NEAR(kv_transfer_visible_us(&serial, 1000000000ull, 0), 20020);
  /* Without overlap the prefill hides nothing. */
  NEAR(kv_transfer_visible_us(&serial, 1000000000ull, 500000), 20020);
  NEAR(kv_transfer_visible_us(&serial, 0, 0), 0);

  infs_link_t stream = {50, 20, true};
  /* The link keeps up with an 80 ms prefill (20 ms of transfer): only the
   * last layer's share, 20,000 / 80 = 250 us, is left. */
  NEAR(kv_transfer_visible_us(&stream, 1000000000ull, 80000), 270);
  /* An 8 ms prefill: the link is behind; what ran beside the prefill is
   * 8,000 * 79 / 80 = 7,900 us of it. */
  NEAR(kv_transfer_visible_us(&stream, 1000000000ull, 8000), 20 + 12100);
  /* Nothing to overlap with: all of it. */
  NEAR(kv_transfer_visible_us(&stream, 1000000000ull, 0), 20020);
  /* Longer prefills never hide more than all but the last layer's share,
   * and never make the transfer look longer. */
  double last = INFINITY;
  for (double t = 0; t <= 200000; t += 1000) {
    double v = kv_transfer_visible_us(&stream, 1000000000ull, t);
    assert_true(v >= 270 - 1e-9);
    assert_true(v <= last + 1e-9);
    last = v;
  }
  infs_link_t dead = {0, 20, false};
  assert_true(isinf(kv_transfer_visible_us(&dead, 1, 0)));
}

/* A decode dispatch's KV is in place after the visible transfer over its
 * handle's link; a handle naming no link gets the defaults; an absurd one
 * a day. */
static void test_ready(void **state) {
  (void)state;
  infs_kv_handle_t kv = {.bytes = 1000000000ull,
                         .link_gbps = 12.5,
                         .link_latency_us = 5};
  assert_int_equal(kv_transfer_ready(&kv, 1000), 1000 + 5 + 80000);
  kv.link_gbps = 0;
  assert_int_equal(kv_transfer_ready(&kv, 1000),
                   1000 + LINK_DEFAULT_LATENCY_US +
                       1e9 / (LINK_DEFAULT_GBPS * 1e3));
  kv.link_gbps = 1e-9;
  assert_int_equal(kv_transfer_ready(&kv, 0), 86400ull * INFS_US_PER_S);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_and_find),
      cmocka_unit_test(test_most_specific_rule_wins),
      cmocka_unit_test(test_bad_specs),
      cmocka_unit_test(test_bytes),
      cmocka_unit_test(test_visible_time),
      cmocka_unit_test(test_ready),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
