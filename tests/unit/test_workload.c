/* lib/workload: reproducibility, Poisson statistics, trace replay, bad rows,
 * block hashes and flag values. */
#include "workload.h"
#include "workload_impl.h"
#include "workload_fixture.h"

#include "infsched/errors.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef INFSCHED_DATA_DIR
#error "INFSCHED_DATA_DIR must point at tests/data"
#endif
#define AZURE_CSV INFSCHED_DATA_DIR "/azure_llm_code_2023_excerpt.csv"

/* Pops every request regardless of time; returns how many. */
typedef void (*req_fn)(const workload_req_t *r, void *arg);
static uint64_t drain_all(workload_t *w, req_fn fn, void *arg) {
  workload_req_t r;
  uint64_t n = 0;
  while (workload_pop(w, INFS_TIME_NEVER - 1, &r) == 0) {
    if (fn)
      fn(&r, arg);
    n++;
  }
  assert_true(workload_finished(w));
  assert_int_equal(workload_next_time(w), INFS_TIME_NEVER);
  return n;
}

static workload_t *poisson(const workload_opts_t *o) {
  char err[256] = "";
  workload_t *w = NULL;
  int rc = workload_poisson_new(o, &w, err, sizeof err);
  if (rc)
    fail_msg("poisson: %s", err);
  return w;
}

/* --- reproducibility --- */

static uint64_t run_digest(const workload_opts_t *o) {
  workload_t *w = poisson(o);
  digest_t d = {1469};
  drain_all(w, digest_req, &d);
  workload_destroy(&w);
  return d.h;
}

static void test_seed_reproducible(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.rate = 20;
  o.duration_s = 30;
  o.seed = 42;
  uint64_t a = run_digest(&o), b = run_digest(&o);
  assert_true(a == b);
  o.seed = 43;
  assert_true(run_digest(&o) != a);
}

/* Sizes come from their own stream: a different rate gives the same
 * sequence of sizes, so policies can be compared across loads. */
typedef struct sizes {
  uint32_t v[64];
  size_t n;
} sizes_t;

static void keep_sizes(const workload_req_t *r, void *arg) {
  sizes_t *s = arg;
  if (s->n < 64)
    s->v[s->n++] = r->prompt_tokens;
}

static void test_sizes_independent_of_rate(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.max_requests = 64;
  sizes_t a = {0}, b = {0};
  o.rate = 5;
  workload_t *w = poisson(&o);
  drain_all(w, keep_sizes, &a);
  workload_destroy(&w);
  o.rate = 500;
  w = poisson(&o);
  drain_all(w, keep_sizes, &b);
  workload_destroy(&w);
  assert_int_equal(a.n, 64);
  assert_memory_equal(a.v, b.v, sizeof a.v);
}

/* --- Poisson statistics --- */

typedef struct pstats {
  uint64_t n;
  uint64_t last;
  uint64_t by_class[INFS_CLASS_COUNT];
  uint64_t first_half; /* for ramps */
  uint64_t half_us;
  uint32_t *prompt;
  uint32_t *output;
  bool monotonic;
} pstats_t;

static void collect(const workload_req_t *r, void *arg) {
  pstats_t *s = arg;
  if (r->arrival < s->last)
    s->monotonic = false;
  assert_int_equal(r->id, s->n + 1);
  s->last = r->arrival;
  s->by_class[r->cls]++;
  if (r->arrival < s->half_us)
    s->first_half++;
  if (s->prompt) {
    s->prompt[s->n] = r->prompt_tokens;
    s->output[s->n] = r->max_tokens;
  }
  s->n++;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void test_poisson_rate_and_sizes(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.rate = 50;
  o.duration_s = 2000; /* about 100,000 arrivals */
  pstats_t s = {.monotonic = true, .half_us = 1000 * INFS_US_PER_S};
  s.prompt = malloc(200000 * sizeof *s.prompt);
  s.output = malloc(200000 * sizeof *s.output);
  workload_t *w = poisson(&o);
  drain_all(w, collect, &s);
  workload_destroy(&w);
  double expect = o.rate * o.duration_s;
  /* One standard deviation is sqrt(100000) ~ 316: 1.5% is ~5 sigma. */
  assert_true(fabs((double)s.n - expect) < 0.015 * expect);
  assert_true(s.monotonic);
  assert_true(s.last < 2000 * INFS_US_PER_S);
  /* Default mix 0.6 / 0.3 / 0.1. */
  assert_true(fabs((double)s.by_class[0] / (double)s.n - 0.6) < 0.01);
  assert_true(fabs((double)s.by_class[1] / (double)s.n - 0.3) < 0.01);
  assert_true(fabs((double)s.by_class[2] / (double)s.n - 0.1) < 0.01);
  /* Medians of the fitted lognormals: 1,469 and 13 tokens. */
  qsort(s.prompt, s.n, sizeof *s.prompt, cmp_u32);
  qsort(s.output, s.n, sizeof *s.output, cmp_u32);
  assert_true(fabs(s.prompt[s.n / 2] - 1469.0) < 0.03 * 1469);
  assert_in_range(s.output[s.n / 2], 12, 14);
  /* Mean prompt near the trace's 2,048 (clamping trims the tail a little). */
  double mean = 0;
  for (uint64_t i = 0; i < s.n; i++)
    mean += s.prompt[i];
  mean /= (double)s.n;
  assert_true(fabs(mean - 2048) < 0.05 * 2048);
  free(s.prompt);
  free(s.output);
}

static void test_poisson_ramp(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.rate = 10;
  o.rate_end = 30;
  o.duration_s = 2000;
  pstats_t s = {.monotonic = true, .half_us = 1000 * INFS_US_PER_S};
  workload_t *w = poisson(&o);
  drain_all(w, collect, &s);
  workload_destroy(&w);
  /* Integral of the rate: 40,000 in all, 15,000 in the first half. */
  assert_true(fabs((double)s.n - 40000) < 0.03 * 40000);
  assert_true(fabs((double)s.first_half - 15000) < 0.04 * 15000);
  assert_true(s.monotonic);
}

/* Counts arrivals per 10 s window. */
typedef struct windows {
  uint64_t n[40];
} windows_t;

static void count_window(const workload_req_t *r, void *arg) {
  windows_t *w = arg;
  w->n[r->arrival / (10 * INFS_US_PER_S)]++;
}

static void test_poisson_bursts(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.rate = 20;
  o.duration_s = 400;
  char err[256];
  /* Five times the rate for 20 s from 100 s; a lull at a fifth of it for
   * 20 s from 300 s. */
  assert_int_equal(
      workload_parse_burst("100:20:5", &o.bursts[0], err, sizeof err), 0);
  assert_int_equal(
      workload_parse_burst("300:20:0.2", &o.bursts[1], err, sizeof err), 0);
  o.n_bursts = 2;
  windows_t win = {0};
  workload_t *w = poisson(&o);
  drain_all(w, count_window, &win);
  workload_destroy(&w);
  /* 200 per window outside (sd 14), 1,000 in the burst (sd 32), 40 in the
   * lull (sd 6). */
  for (int i = 0; i < 40; i++) {
    double want = i == 10 || i == 11 ? 1000 : i == 30 || i == 31 ? 40 : 200;
    if (fabs((double)win.n[i] - want) > 5 * sqrt(want))
      fail_msg("window %d: %llu arrivals, want about %.0f", i,
               (unsigned long long)win.n[i], want);
  }
  /* The same seed, the same arrivals. */
  windows_t again = {0};
  w = poisson(&o);
  drain_all(w, count_window, &again);
  workload_destroy(&w);
  assert_memory_equal(&win, &again, sizeof win);

  static const char *const bad[] = {"10:5",   "a:1:2",  "-1:5:2",
                                    "10:0:2", "10:5:0", "10:5:2:1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (workload_parse_burst(bad[i], &o.bursts[0], err, sizeof err) == 0)
      fail_msg("'%s' accepted", bad[i]);
  o.bursts[0].factor = -1;
  assert_int_equal(workload_poisson_new(&o, &w, err, sizeof err), INFS_ECONFIG);
  assert_non_null(strstr(err, "burst 1"));
}

static void test_poisson_timing_and_caps(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.rate = 10;
  o.max_requests = 5;
  o.prompt = (workload_dist_t){WORKLOAD_DIST_FIXED, 100, 0, 100, 100};
  o.output = (workload_dist_t){WORKLOAD_DIST_FIXED, 7, 0, 7, 7};
  workload_t *w = poisson(&o);
  assert_string_equal(workload_name(w), "poisson");
  workload_req_t r;
  infs_time_t t = workload_next_time(w);
  assert_true(t > 0 && t != INFS_TIME_NEVER);
  /* Not due yet: nothing, and nothing consumed. */
  assert_int_equal(workload_pop(w, t - 1, &r), -EAGAIN);
  assert_int_equal(workload_issued(w), 0);
  assert_int_equal(workload_pop(w, t, &r), 0);
  assert_int_equal(r.arrival, t);
  assert_int_equal(r.prompt_tokens, 100);
  assert_int_equal(r.max_tokens, 7);
  assert_int_equal(r.n_blocks, 100 / 64);
  assert_string_equal(r.session, "");
  assert_false(workload_finished(w));
  assert_int_equal(drain_all(w, NULL, NULL), 4);
  assert_int_equal(workload_issued(w), 5);
  workload_destroy(&w);

  /* Neither a duration nor a cap: refused, with a reason. */
  char err[128] = "";
  o.max_requests = 0;
  assert_int_equal(workload_poisson_new(&o, &w, err, sizeof err), INFS_ECONFIG);
  assert_null(w);
  assert_non_null(strstr(err, "duration"));
}

static void test_class_slo_targets(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.max_requests = 50;
  o.class_mix[0] = 0;
  o.class_mix[1] = 0;
  o.class_mix[2] = 1;
  o.slo[2] = (slo_t){1234, 7, 56};
  workload_t *w = poisson(&o);
  workload_req_t r;
  while (workload_pop(w, INFS_TIME_NEVER - 1, &r) == 0) {
    assert_int_equal(r.cls, INFS_CLASS_BATCH);
    assert_int_equal(r.slo.ttft_ms, 1234);
    assert_int_equal(r.slo.ttft_ms_per_ktok, 7);
    assert_int_equal(r.slo.tpot_ms, 56);
  }
  workload_destroy(&w);
}

/* --- block hashes --- */

static void test_hash_tokens_chained(void **state) {
  (void)state;
  uint32_t a[64], b[64];
  for (int i = 0; i < 64; i++)
    a[i] = b[i] = (uint32_t)(i * 7919);
  b[40] ^= 1; /* differs in block 2 */
  uint64_t ha[4], hb[4];
  assert_int_equal(workload_hash_tokens(a, 64, 16, ha, 4), 4);
  assert_int_equal(workload_hash_tokens(b, 64, 16, hb, 4), 4);
  assert_true(ha[0] == hb[0] && ha[1] == hb[1]);
  assert_true(ha[2] != hb[2] && ha[3] != hb[3]); /* chained past the change */
  /* Only whole blocks; cap limits what is written, not what is counted. */
  uint64_t h1[1];
  assert_int_equal(workload_hash_tokens(a, 47, 16, h1, 1), 2);
  assert_true(h1[0] == ha[0]);
  /* Same tokens in block 1 behind a different block 0: different hash. */
  uint32_t c[32];
  memcpy(c, a, sizeof c);
  c[0] ^= 1;
  uint64_t hc[2];
  workload_hash_tokens(c, 32, 16, hc, 2);
  assert_true(hc[1] != ha[1]);
}

static void test_hash_segments(void **state) {
  (void)state;
  uint64_t one[5], split[5], other[5];
  workload_segment_t whole[] = {{7, 0, 80}};
  workload_segment_t parts[] = {{7, 0, 20}, {7, 20, 0}, {7, 20, 60}};
  assert_int_equal(workload_hash_segments(whole, 1, 16, one, 5), 5);
  assert_int_equal(workload_hash_segments(parts, 3, 16, split, 5), 5);
  assert_memory_equal(one, split, sizeof one);
  /* 40 shared tokens then a different stream: two whole blocks agree. */
  workload_segment_t diverge[] = {{7, 0, 40}, {8, 0, 40}};
  workload_hash_segments(diverge, 2, 16, other, 5);
  assert_true(other[0] == one[0] && other[1] == one[1]);
  assert_true(other[2] != one[2] && other[4] != one[4]);
}

/* A prompt that grows only needs its new blocks hashed: hashing a range at
 * a time, with the segments cut anywhere, gives the hashes of one pass. */
static void test_hash_range_incremental(void **state) {
  (void)state;
  workload_segment_t segs[] = {
      {11, 0, 100}, {12, 5, 37}, {12, 42, 200}, {13, 0, 0}, {11, 100, 90}};
  uint64_t whole[26], parts[26];
  size_t n = workload_hash_segments(segs, 5, 16, whole, 26);
  assert_int_equal(n, 427 / 16);
  static const size_t cuts[] = {0, 1, 6, 7, 15, 26};
  for (size_t i = 0; i + 1 < sizeof cuts / sizeof *cuts; i++)
    workload_hash_range(segs, 5, 16, parts, cuts[i], cuts[i + 1]);
  assert_memory_equal(whole, parts, n * sizeof *whole);
  /* The same content cut differently hashes the same; the second segment of
   * stream 12 continues the first, so they form one run. */
  workload_segment_t recut[] = {
      {11, 0, 60}, {11, 60, 40}, {12, 5, 237}, {11, 100, 90}};
  uint64_t again[26];
  assert_int_equal(workload_hash_segments(recut, 4, 16, again, 26), n);
  assert_memory_equal(whole, again, n * sizeof *whole);
  /* One token of another stream changes its block and every later one. */
  workload_segment_t other[] = {
      {11, 0, 100}, {14, 0, 1}, {12, 6, 236}, {11, 100, 90}};
  workload_hash_segments(other, 4, 16, again, 26);
  assert_memory_equal(whole, again, 6 * sizeof *whole);
  for (size_t i = 6; i < n; i++)
    assert_true(again[i] != whole[i]);
}

typedef struct prefix_check {
  uint64_t first[512];
  size_t n_first;
  size_t min_shared; /* blocks equal to the first request's, at least */
  size_t max_shared;
  uint64_t count;
  uint32_t block_size;
  double frac;
} prefix_check_t;

static void check_prefix(const workload_req_t *r, void *arg) {
  prefix_check_t *p = arg;
  assert_int_equal(r->n_blocks, r->prompt_tokens / p->block_size);
  if (p->count++ == 0) {
    p->n_first = r->n_blocks < 512 ? r->n_blocks : 512;
    memcpy(p->first, r->blocks, p->n_first * sizeof *p->first);
    return;
  }
  size_t same = 0;
  while (same < r->n_blocks && same < p->n_first &&
         r->blocks[same] == p->first[same])
    same++;
  if (same < p->min_shared)
    p->min_shared = same;
  if (same > p->max_shared)
    p->max_shared = same;
}

static void test_shared_prefix(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.max_requests = 200;
  o.block_size = 16;
  o.prompt = (workload_dist_t){WORKLOAD_DIST_FIXED, 1000, 0, 1000, 1000};
  /* Default: every request's prefix is its own. */
  prefix_check_t p = {.min_shared = SIZE_MAX, .block_size = 16};
  workload_t *w = poisson(&o);
  drain_all(w, check_prefix, &p);
  workload_destroy(&w);
  assert_int_equal(p.max_shared, 0);
  /* Half shared: 1000 * 0.5 / 16 = 31 whole blocks in common, no more. */
  o.shared_prefix = 0.5;
  p = (prefix_check_t){.min_shared = SIZE_MAX, .block_size = 16};
  w = poisson(&o);
  drain_all(w, check_prefix, &p);
  workload_destroy(&w);
  assert_int_equal(p.min_shared, 31);
  assert_int_equal(p.max_shared, 31);
  /* A different block size is honoured. */
  o.block_size = 64;
  p = (prefix_check_t){.min_shared = SIZE_MAX, .block_size = 64};
  w = poisson(&o);
  drain_all(w, check_prefix, &p);
  workload_destroy(&w);
  assert_int_equal(p.min_shared, 7);
}

/* --- trace replay --- */

typedef struct csv_row {
  double t; /* seconds since midnight: the trace stays within one day */
  uint32_t ctx;
  uint32_t gen;
} csv_row_t;

/* An independent reading of the Azure CSV to compare against. */
static size_t read_azure(csv_row_t **out) {
  FILE *f = fopen(AZURE_CSV, "r");
  assert_non_null(f);
  char line[256];
  size_t n = 0, cap = 16384;
  csv_row_t *rows = malloc(cap * sizeof *rows);
  assert_non_null(fgets(line, sizeof line, f)); /* header */
  while (fgets(line, sizeof line, f)) {
    int y, mo, d, h, mi;
    double s;
    unsigned c, g;
    if (sscanf(line, "%d-%d-%d %d:%d:%lf,%u,%u", &y, &mo, &d, &h, &mi, &s, &c,
               &g) != 8)
      continue;
    if (n == cap)
      rows = realloc(rows, (cap *= 2) * sizeof *rows);
    rows[n++] = (csv_row_t){h * 3600.0 + mi * 60.0 + s, c, g};
  }
  fclose(f);
  *out = rows;
  return n;
}

static void test_trace_azure_replay(void **state) {
  (void)state;
  csv_row_t *rows;
  size_t n = read_azure(&rows);
  assert_int_equal(n, 600);
  workload_opts_t o;
  workload_opts_default(&o);
  o.speedup = 4.0;
  char err[256] = "";
  workload_t *w = NULL;
  int rc = workload_new("trace:" AZURE_CSV, &o, &w, err, sizeof err);
  if (rc)
    fail_msg("%s", err);
  assert_string_equal(workload_name(w), "trace");
  workload_req_t r;
  size_t i = 0;
  while (workload_pop(w, INFS_TIME_NEVER - 1, &r) == 0) {
    assert_true(i < n);
    assert_int_equal(r.id, i + 1);
    assert_int_equal(r.prompt_tokens, rows[i].ctx);
    assert_int_equal(r.max_tokens, rows[i].gen);
    double want_us = (rows[i].t - rows[0].t) / 4.0 * 1e6;
    assert_true(fabs((double)r.arrival - want_us) <= 2.0);
    i++;
  }
  assert_int_equal(i, n);
  assert_true(workload_finished(w));
  workload_destroy(&w);

  /* A duration cuts the replay in replayed time: the trace's first 60 s at
   * speed-up 2 are the rows before 120 s. */
  o.speedup = 2.0;
  o.duration_s = 60;
  rc = workload_trace_new(AZURE_CSV, &o, &w, err, sizeof err);
  assert_int_equal(rc, 0);
  size_t want = 0;
  while (want < n && rows[want].t - rows[0].t < 120.0)
    want++;
  assert_int_equal(drain_all(w, NULL, NULL), want);
  workload_destroy(&w);
  free(rows);
}

static char *write_temp(const char *content) {
  char *path = strdup("/tmp/test_workload_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t len = strlen(content);
  assert_int_equal(write(fd, content, len), (ssize_t)len);
  close(fd);
  return path;
}

static void test_trace_small_csv(void **state) {
  (void)state;
  /* Columns in another order, CRLF, blank lines, an unsorted row, quotes. */
  char *path = write_temp("\r\n"
                          "GeneratedTokens, ContextTokens ,TIMESTAMP\r\n"
                          "5,100,2024-05-10 23:59:59.5\r\n"
                          "\r\n"
                          "   \n"
                          "7,\"300\",2024-05-11 00:00:01.25\n"
                          "6,200,2024-05-11T00:00:00.5Z\n");
  workload_opts_t o;
  workload_opts_default(&o);
  o.speedup = 0.5; /* twice as slow */
  char err[256] = "";
  workload_t *w = NULL;
  int rc = workload_trace_new(path, &o, &w, err, sizeof err);
  if (rc)
    fail_msg("%s", err);
  static const struct {
    infs_time_t at;
    uint32_t ctx, gen;
  } want[] = {{0, 100, 5}, {2000000, 200, 6}, {3500000, 300, 7}};
  workload_req_t r;
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(workload_next_time(w), want[i].at);
    assert_int_equal(workload_pop(w, want[i].at, &r), 0);
    assert_int_equal(r.prompt_tokens, want[i].ctx);
    assert_int_equal(r.max_tokens, want[i].gen);
  }
  assert_int_equal(workload_pop(w, INFS_TIME_NEVER - 1, &r), -EAGAIN);
  assert_true(workload_finished(w));
  workload_destroy(&w);
  unlink(path);
  free(path);

  /* No header: TIMESTAMP,ContextTokens,GeneratedTokens in seconds; max
   * requests caps the replay. */
  path = write_temp("10.0,1,2\n10.25,3,4\n11,5,6\n");
  o.speedup = 1.0;
  o.max_requests = 2;
  assert_int_equal(workload_trace_new(path, &o, &w, err, sizeof err), 0);
  assert_int_equal(workload_pop(w, 0, &r), 0);
  assert_int_equal(r.prompt_tokens, 1);
  assert_int_equal(workload_next_time(w), 250000);
  assert_int_equal(drain_all(w, NULL, NULL), 1);
  workload_destroy(&w);
  unlink(path);
  free(path);
}

/* Overlaid copies: N times the requests over the trace's own period, each
 * copy keeping the trace's gaps (wrapped around the period); a speed-up
 * instead divides the gaps. Rows 0..4 at 0, 1, 3, 6 and 10 s, told apart
 * by their prompt sizes; the period is the 10 s span plus a 2.5 s mean
 * gap. */
static void test_trace_overlaid_copies(void **state) {
  (void)state;
  enum { ROWS = 5, COPIES = 4 };
  static const int64_t at_us[ROWS] = {0, 1000000, 3000000, 6000000,
                                      10000000};
  const int64_t period = 12500000;
  char *path = write_temp("0,100,1\n1,101,1\n3,102,1\n6,103,1\n10,104,1\n");
  workload_opts_t o;
  workload_opts_default(&o);
  o.copies = COPIES;
  char err[256] = "";
  workload_t *w = NULL;
  assert_int_equal(workload_trace_new(path, &o, &w, err, sizeof err), 0);
  int64_t seen[ROWS][COPIES];
  size_t n[ROWS] = {0}, total = 0;
  workload_req_t r;
  while (workload_next_time(w) != INFS_TIME_NEVER) {
    infs_time_t t = workload_next_time(w);
    assert_int_equal(workload_pop(w, t, &r), 0);
    assert_true((int64_t)t < period);
    size_t row = r.prompt_tokens - 100;
    assert_true(row < ROWS && n[row] < COPIES);
    seen[row][n[row]++] = (int64_t)t;
    total++;
  }
  assert_int_equal(total, ROWS * COPIES);
  /* Each copy is placed by its row 0: its row i comes at_us[i] later,
   * modulo the period, so every gap of the trace is there. */
  for (size_t k = 0; k < COPIES; k++)
    for (size_t i = 1; i < ROWS; i++) {
      int64_t want = (seen[0][k] + at_us[i]) % period;
      bool found = false;
      for (size_t j = 0; j < COPIES; j++)
        found = found || seen[i][j] == want;
      if (!found)
        fail_msg("copy at %lld: no row %zu at %lld", (long long)seen[0][k], i,
                 (long long)want);
    }
  workload_destroy(&w);

  /* A speed-up of 4 gives as many requests per second, but each gap is a
   * quarter: the trace's 10 s of arrivals in 2.5 s. */
  o.copies = 1;
  o.speedup = COPIES;
  assert_int_equal(workload_trace_new(path, &o, &w, err, sizeof err), 0);
  for (size_t i = 0; i < ROWS; i++) {
    assert_int_equal(workload_next_time(w), at_us[i] / COPIES);
    assert_int_equal(workload_pop(w, INFS_TIME_NEVER - 1, &r), 0);
  }
  workload_destroy(&w);

  /* Fractions thin a copy: 2.5 copies of 1,000 rows is ~2,500 requests. */
  FILE *f = fopen(path, "w");
  for (int i = 0; i < 1000; i++)
    fprintf(f, "%d,%d,1\n", i, 100 + i);
  fclose(f);
  o.speedup = 1;
  o.copies = 2.5;
  assert_int_equal(workload_trace_new(path, &o, &w, err, sizeof err), 0);
  size_t got = drain_all(w, NULL, NULL);
  workload_destroy(&w);
  assert_true(got > 2400 && got < 2600); /* +-6 sigma: 1,000 draws at 1/2 */
  o.copies = 0;
  assert_true(workload_trace_new(path, &o, &w, err, sizeof err) < 0);
  unlink(path);
  free(path);
}

static void test_trace_bad_rows(void **state) {
  (void)state;
  static const struct {
    const char *csv;
    const char *want; /* in the message after the path */
  } table[] = {
      {"TIMESTAMP,ContextTokens,GeneratedTokens\n"
       "2023-11-16 18:17:03.9,10,2\n"
       "2023-11-16 18:17:04.0,abc,2\n",
       ":3: ContextTokens 'abc' is not a whole number"},
      {"TIMESTAMP,ContextTokens,GeneratedTokens\n"
       "\n"
       "2023-11-16 18:17:03.9,10\n",
       ":3: expected 3 fields, got 2"},
      {"2023-11-16 18:17:03.9,10,2\n"
       "yesterday,10,2\n",
       ":2: TIMESTAMP 'yesterday'"},
      {"2023-13-16 18:17:03.9,10,2\n", ":1: TIMESTAMP"},
      {"1.0,10,-2\n", ":1: GeneratedTokens '-2'"},
      {"1.0,10,99999999999\n", ":1: GeneratedTokens"},
      {"TIMESTAMP,Context,GeneratedTokens\n1,2,3\n",
       ":1: header has no ContextTokens column"},
      {"TIMESTAMP,ContextTokens,GeneratedTokens\n\n", "no requests"},
      {"", "no requests"},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    char *path = write_temp(table[i].csv);
    workload_opts_t o;
    workload_opts_default(&o);
    char err[512] = "";
    workload_t *w = NULL;
    int rc = workload_trace_new(path, &o, &w, err, sizeof err);
    assert_true(rc < 0);
    assert_null(w);
    if (!strstr(err, table[i].want) || strncmp(err, path, strlen(path)))
      fail_msg("case %zu: '%s' lacks '%s'", i, err, table[i].want);
    unlink(path);
    free(path);
  }
  char err[256] = "";
  workload_opts_t o;
  workload_opts_default(&o);
  workload_t *w = NULL;
  assert_int_equal(
      workload_trace_new("/nonexistent/x.csv", &o, &w, err, sizeof err),
      -ENOENT);
  assert_non_null(strstr(err, "/nonexistent/x.csv"));
  assert_int_equal(workload_new("codex2", &o, &w, err, sizeof err),
                   INFS_EUNKNOWN);
  assert_int_equal(workload_new("trace:", &o, &w, err, sizeof err),
                   INFS_ECONFIG);
}

/* --- flag values --- */

static void test_parse_flags(void **state) {
  (void)state;
  char err[256];
  double mix[INFS_CLASS_COUNT] = {9, 9, 9};
  assert_int_equal(
      workload_parse_class_mix("batch=1,interactive=3", mix, err, sizeof err),
      0);
  assert_true(mix[0] == 3 && mix[1] == 0 && mix[2] == 1);
  assert_true(workload_parse_class_mix("gpu=1", mix, err, sizeof err) < 0);
  assert_non_null(strstr(err, "unknown class 'gpu'"));
  assert_true(workload_parse_class_mix("agent=-1", mix, err, sizeof err) < 0);
  assert_true(workload_parse_class_mix("agent=0", mix, err, sizeof err) < 0);
  assert_true(workload_parse_class_mix("agent", mix, err, sizeof err) < 0);
  assert_true(mix[0] == 3); /* untouched on failure */

  workload_dist_t d;
  assert_int_equal(workload_parse_dist("512", &d, err, sizeof err), 0);
  assert_true(d.kind == WORKLOAD_DIST_FIXED && d.median == 512 &&
              d.min == 512 && d.max == 512);
  assert_int_equal(workload_parse_dist("fixed:8", &d, err, sizeof err), 0);
  assert_true(d.median == 8);
  assert_int_equal(
      workload_parse_dist("lognormal:1469:0.815", &d, err, sizeof err), 0);
  assert_true(d.kind == WORKLOAD_DIST_LOGNORMAL && d.sigma == 0.815 &&
              d.min == 1);
  assert_int_equal(
      workload_parse_dist("lognormal:100:1:10:1000", &d, err, sizeof err), 0);
  assert_true(d.min == 10 && d.max == 1000);
  static const char *const bad[] = {"0",
                                    "-5",
                                    "lognormal:1",
                                    "lognormal:100:1:10",
                                    "lognormal:100:1:50:10",
                                    "12x",
                                    "lognormal:0.5:1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (workload_parse_dist(bad[i], &d, err, sizeof err) == 0)
      fail_msg("'%s' accepted", bad[i]);

}

static void test_rng_streams(void **state) {
  (void)state;
  workload_rng_t a, b, c;
  workload_rng_seed(&a, 7, 1);
  workload_rng_seed(&b, 7, 1);
  workload_rng_seed(&c, 7, 2);
  int differ = 0;
  for (int i = 0; i < 100; i++) {
    uint64_t x = workload_rng_next(&a);
    assert_true(x == workload_rng_next(&b));
    differ += x != workload_rng_next(&c);
  }
  assert_int_equal(differ, 100);
  double sum = 0, sq = 0;
  for (int i = 0; i < 100000; i++) {
    double u = workload_rng_uniform(&a);
    assert_true(u >= 0 && u < 1);
    double z = workload_rng_normal(&a);
    sum += z;
    sq += z * z;
  }
  assert_true(fabs(sum / 100000) < 0.02);
  assert_true(fabs(sq / 100000 - 1) < 0.02);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seed_reproducible),
      cmocka_unit_test(test_sizes_independent_of_rate),
      cmocka_unit_test(test_poisson_rate_and_sizes),
      cmocka_unit_test(test_poisson_ramp),
      cmocka_unit_test(test_poisson_bursts),
      cmocka_unit_test(test_poisson_timing_and_caps),
      cmocka_unit_test(test_class_slo_targets),
      cmocka_unit_test(test_hash_tokens_chained),
      cmocka_unit_test(test_hash_segments),
      cmocka_unit_test(test_hash_range_incremental),
      cmocka_unit_test(test_shared_prefix),
      cmocka_unit_test(test_trace_azure_replay),
      cmocka_unit_test(test_trace_small_csv),
      cmocka_unit_test(test_trace_overlaid_copies),
      cmocka_unit_test(test_trace_bad_rows),
      cmocka_unit_test(test_parse_flags),
      cmocka_unit_test(test_rng_streams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
