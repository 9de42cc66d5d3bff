/* lib/workload_mooncake and lib/workload_record: Mooncake trace replay
 * (block mapping, its stability, bad lines) and recording a run as a trace
 * that replays to the same requests. */
#include "workload.h"

#include "infsched/errors.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef INFSCHED_SOURCE_DIR
#error "INFSCHED_SOURCE_DIR must name the source tree"
#endif
/* The first 60 lines of the FAST'25 synthetic trace. */
#define EXCERPT                                                                \
  INFSCHED_SOURCE_DIR "/tests/data/mooncake_synthetic_head60.jsonl"
/* Six rows with known shared ids (test_sim replays it on one worker). */
#define SHARED INFSCHED_SOURCE_DIR "/tests/data/mooncake_shared.jsonl"

static char *write_tmp(const char *text) {
  char *path = strdup("/tmp/test_mooncake_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t n = strlen(text);
  assert_int_equal(write(fd, text, n), (ssize_t)n);
  close(fd);
  return path;
}

static void drop_tmp(char *path) {
  unlink(path);
  free(path);
}

/* A request as popped, with its blocks copied out. */
typedef struct got {
  workload_req_t r;
  uint64_t blocks[4096];
} got_t;

/* Copies r, blocks and all, into g. */
static void keep(got_t *g, const workload_req_t *r) {
  assert_true(r->n_blocks <= 4096);
  g->r = *r;
  if (r->n_blocks)
    memcpy(g->blocks, r->blocks, r->n_blocks * sizeof *r->blocks);
  g->r.blocks = g->blocks;
}

/* Loads spec and pops every request into out (at most cap); returns how
 * many. */
static size_t load_all(const char *spec, const workload_opts_t *o, got_t *out,
                       size_t cap) {
  char err[256] = "";
  workload_t *w = NULL;
  if (workload_new(spec, o, &w, err, sizeof err))
    fail_msg("%s: %s", spec, err);
  size_t n = 0;
  workload_req_t r;
  while (workload_pop(w, INFS_TIME_NEVER - 1, &r) == 0) {
    assert_true(n < cap);
    keep(&out[n++], &r);
  }
  assert_true(workload_finished(w));
  workload_destroy(&w);
  return n;
}

static size_t common_blocks(const got_t *a, const got_t *b) {
  size_t k = 0;
  while (k < a->r.n_blocks && k < b->r.n_blocks && a->blocks[k] == b->blocks[k])
    k++;
  return k;
}

static bool any_block_shared_after(const got_t *a, const got_t *b, size_t k) {
  for (size_t i = k; i < a->r.n_blocks; i++)
    for (size_t j = 0; j < b->r.n_blocks; j++)
      if (a->blocks[i] == b->blocks[j])
        return true;
  return false;
}

/* --- block mapping --- */

/* Rows sharing the first N ids share exactly N * 8 blocks of 64 tokens and
 * no other block, even where later ids are equal again; the last id stands
 * for the tokens left (1100 = 2 * 512 + 76: one whole block), which are the
 * first tokens of that id's full block. */
static void test_shared_ids_share_whole_blocks(void **state) {
  (void)state;
  const char *spec = "mooncake:" SHARED;
  workload_opts_t o;
  workload_opts_default(&o);
  got_t *g = calloc(8, sizeof *g);
  assert_int_equal(load_all(spec, &o, g, 8), 6);
  static const uint32_t blocks[] = {17, 24, 10, 17, 23, 31};
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(g[i].r.n_blocks, blocks[i]);
    assert_int_equal(g[i].r.arrival, (infs_time_t)i * 1000000);
    assert_int_equal(g[i].r.max_tokens, 4);
  }
  assert_int_equal(common_blocks(&g[0], &g[1]), 16);
  assert_false(any_block_shared_after(&g[1], &g[0], 16));
  assert_int_equal(common_blocks(&g[0], &g[2]), 8);
  assert_false(any_block_shared_after(&g[2], &g[0], 8));
  assert_int_equal(common_blocks(&g[0], &g[3]), 17);
  /* Ids 2 and 3 again, after a different first id: nothing shared. */
  assert_int_equal(common_blocks(&g[0], &g[4]), 0);
  assert_false(any_block_shared_after(&g[4], &g[0], 0));
  /* The 76 tokens id 3 stood for in row 1 begin its full block in row 6. */
  assert_int_equal(common_blocks(&g[0], &g[5]), 17);
  assert_int_equal(common_blocks(&g[3], &g[5]), 17);
  free(g);
}

/* The hashes depend on the ids alone: not on the seed, the file or the
 * line, and the values are fixed (XXH3 over little-endian words), so a trace
 * replays to the same blocks on any machine. */
static void test_block_mapping_is_stable(void **state) {
  (void)state;
  char *a = write_tmp("{\"timestamp\": 5, \"input_length\": 1024, "
                      "\"output_length\": 1, \"hash_ids\": [46, 47]}\n");
  char *b = write_tmp("{\"timestamp\": 0, \"input_length\": 9, "
                      "\"output_length\": 1, \"hash_ids\": [0]}\n"
                      "{\"timestamp\": 7, \"input_length\": 600, "
                      "\"output_length\": 3, \"hash_ids\": [46, 99]}\n");
  char sa[256], sb[256];
  snprintf(sa, sizeof sa, "mooncake:%s", a);
  snprintf(sb, sizeof sb, "trace:%s", b); /* told apart by content */
  workload_opts_t o;
  workload_opts_default(&o);
  got_t *g = calloc(4, sizeof *g);
  assert_int_equal(load_all(sa, &o, g, 1), 1);
  o.seed = 12345;
  assert_int_equal(load_all(sb, &o, g + 1, 2), 2);
  assert_int_equal(g[0].r.n_blocks, 16);
  assert_int_equal(g[1].r.n_blocks, 0);
  assert_int_equal(g[2].r.n_blocks, 9);
  assert_int_equal(common_blocks(&g[0], &g[2]), 8);
  assert_true(g[0].blocks[0] == 0x724e52d7dbc2933bull);
  assert_true(g[0].blocks[15] == 0xd152a036a4c2c48aull);
  free(g);
  drop_tmp(a);
  drop_tmp(b);
}

/* The excerpt replays in time order with the file's sizes; its rows 50 and
 * 59 continue earlier conversations (57 and 5 shared ids). */
static void test_excerpt(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.speedup = 2;
  got_t *g = calloc(64, sizeof *g);
  assert_int_equal(load_all("trace:" EXCERPT, &o, g, 64), 60);
  assert_int_equal(g[0].r.prompt_tokens, 40160);
  assert_int_equal(g[0].r.max_tokens, 6);
  assert_int_equal(g[0].r.n_blocks, 40160 / 64);
  for (size_t i = 1; i < 60; i++)
    assert_true(g[i].r.arrival >= g[i - 1].r.arrival);
  size_t best50 = 0, best59 = 0;
  for (size_t i = 0; i < 49; i++) {
    size_t c = common_blocks(&g[49], &g[i]);
    best50 = c > best50 ? c : best50;
  }
  for (size_t i = 0; i < 58; i++) {
    size_t c = common_blocks(&g[58], &g[i]);
    best59 = c > best59 ? c : best59;
  }
  assert_int_equal(best50, 57 * 8);
  assert_int_equal(best59, 5 * 8);
  free(g);
}

/* More load from the same trace (--copies, as capacity searches scale a
 * trace): each overlaid copy's ids are its own, so the copies share
 * prefixes among their own rows exactly as the file does and never with
 * each other. */
static size_t rows_sharing(const got_t *g, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      if (i != j && common_blocks(&g[i], &g[j]) > 0) {
        k++;
        break;
      }
  return k;
}

static void test_copies_share_within_themselves(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  got_t *one = calloc(64, sizeof *one), *two = calloc(128, sizeof *two);
  assert_int_equal(load_all("mooncake:" EXCERPT, &o, one, 64), 60);
  o.copies = 2;
  assert_int_equal(load_all("mooncake:" EXCERPT, &o, two, 128), 120);
  size_t shared = rows_sharing(one, 60);
  assert_true(shared >= 4); /* rows 50 and 59 and what they continue */
  assert_int_equal(rows_sharing(two, 120), 2 * shared);
  free(one);
  free(two);
}

/* --- bad lines --- */

static void expect_error(const char *text, const char *want) {
  char *path = write_tmp(text);
  char spec[256], err[512] = "", expect[512];
  snprintf(spec, sizeof spec, "mooncake:%s", path);
  snprintf(expect, sizeof expect, "%s:%s", path, want);
  workload_opts_t o;
  workload_opts_default(&o);
  workload_t *w = NULL;
  assert_int_equal(workload_new(spec, &o, &w, err, sizeof err), INFS_ECONFIG);
  assert_null(w);
  if (strncmp(err, expect, strlen(expect)) != 0)
    fail_msg("got '%s', want '%s...'", err, expect);
  drop_tmp(path);
}

#define OK_LINE                                                                \
  "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 1, "            \
  "\"hash_ids\": [1]}\n"

static void test_bad_lines(void **state) {
  (void)state;
  expect_error(OK_LINE "{\"timestamp\": 1,\n", "2: not a JSON object");
  expect_error(OK_LINE "[1, 2]\n", "2: not a JSON object");
  expect_error("\n" OK_LINE "{\"input_length\": 10, \"output_length\": 1}\n",
               "3: no timestamp");
  expect_error("{\"timestamp\": -1, \"input_length\": 10, "
               "\"output_length\": 1}\n",
               "1: timestamp: expected milliseconds >= 0");
  expect_error("{\"timestamp\": 1, \"input_length\": 10.5, "
               "\"output_length\": 1}\n",
               "1: input_length: expected a whole number");
  expect_error("{\"timestamp\": 1, \"input_length\": 10}\n",
               "1: no output_length");
  expect_error("{\"timestamp\": 1, \"input_length\": 10, "
               "\"output_length\": 1, \"hash_ids\": [1, \"x\"]}\n",
               "1: hash_ids[1]: expected a whole number >= 0");
  expect_error("{\"timestamp\": 1, \"input_length\": 512, "
               "\"output_length\": 1, \"hash_ids\": [1, 2]}\n",
               "1: 2 hash_ids of 512 tokens stand for 513 to 1024 tokens, "
               "but input_length is 512");
  expect_error("{\"timestamp\": 1, \"input_length\": 1025, "
               "\"output_length\": 1, \"hash_ids\": [1, 2]}\n",
               "1: 2 hash_ids of 512 tokens stand for 513 to 1024 tokens, "
               "but input_length is 1025");
  expect_error(OK_LINE "{\"timestamp\": 1, \"input_length\": 10, "
                       "\"output_length\": 1, \"class\": \"urgent\"}\n",
               "2: class: expected interactive, agent or batch");
  expect_error("{\"timestamp\": 1, \"input_length\": 10, "
               "\"output_length\": 1, \"session_id\": 7}\n",
               "1: session_id: expected a string");
}

static void test_shared_prefix_flag_refused(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  o.shared_prefix = 0.5;
  char err[512] = "";
  workload_t *w = NULL;
  assert_int_equal(workload_new("mooncake:" EXCERPT, &o, &w, err, sizeof err),
                   INFS_ECONFIG);
  assert_non_null(strstr(err, "brings its own shared prefixes"));
}

/* --- recording --- */

static void record_all(const got_t *g, size_t n, uint32_t block_size,
                       const char *path) {
  char err[256] = "";
  workload_recorder_t *rec = NULL;
  assert_int_equal(workload_recorder_new(block_size, &rec, err, sizeof err), 0);
  for (size_t i = 0; i < n; i++)
    workload_recorder_add(rec, &g[i].r);
  assert_int_equal(workload_recorder_count(rec), n);
  if (workload_recorder_write(rec, path, err, sizeof err))
    fail_msg("write: %s", err);
  workload_recorder_destroy(&rec);
  assert_null(rec);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strdup(buf);
}

/* A codex run (sessions, classes, prompts that grow turn by turn) recorded,
 * replayed and recorded again: the replay has the same arrivals (to the
 * millisecond), sizes, classes, SLOs and sessions, its prompts share the
 * same 512-token blocks, and the second recording is the first byte for
 * byte. */
static void test_recorded_run_replays_to_same_requests(void **state) {
  (void)state;
  char err[256] = "";
  workload_opts_t o;
  workload_opts_default(&o);
  o.max_requests = 200;
  workload_codex_config_t cfg;
  workload_codex_config_default(&cfg);
  workload_t *w = NULL;
  assert_int_equal(workload_codex_new(&o, &cfg, &w, err, sizeof err), 0);
  got_t *orig = calloc(200, sizeof *orig);
  got_t *back = calloc(200, sizeof *back);
  size_t n = 0;
  workload_req_t r;
  /* Closed loop: answer every request 2 s after it arrives. */
  infs_time_t now = 0;
  while (!workload_finished(w) && n < 200) {
    infs_time_t t = workload_next_time(w);
    if (t == INFS_TIME_NEVER)
      break;
    now = t > now ? t : now;
    while (workload_pop(w, now, &r) == 0) {
      keep(&orig[n++], &r);
      workload_on_done(w, r.id, now + 2000000, true, r.max_tokens);
      if (n == 200)
        break;
    }
  }
  workload_destroy(&w);
  assert_true(n > 100);
  bool sessions = false;
  for (size_t i = 0; i < n; i++)
    sessions |= orig[i].r.session[0] != '\0';
  assert_true(sessions);

  char *p1 = write_tmp(""), *p2 = write_tmp("");
  record_all(orig, n, o.block_size, p1);
  char spec[256];
  snprintf(spec, sizeof spec, "mooncake:%s", p1);
  workload_opts_t ro;
  workload_opts_default(&ro);
  ro.class_mix[INFS_CLASS_INTERACTIVE] = 1; /* not used: classes recorded */
  ro.class_mix[INFS_CLASS_AGENT] = 0;
  ro.class_mix[INFS_CLASS_BATCH] = 0;
  assert_int_equal(load_all(spec, &ro, back, 200), n);
  for (size_t i = 0; i < n; i++) {
    const workload_req_t *a = &orig[i].r, *b = &back[i].r;
    infs_time_t ms = (a->arrival + 500) / 1000 * 1000;
    assert_int_equal(b->arrival, ms);
    assert_int_equal(b->prompt_tokens, a->prompt_tokens);
    assert_int_equal(b->max_tokens, a->max_tokens);
    assert_int_equal(b->cls, a->cls);
    assert_memory_equal(&b->slo, &a->slo, sizeof a->slo);
    assert_string_equal(b->session, a->session);
    assert_int_equal(b->n_blocks, a->n_blocks);
  }
  /* Prefixes shared in whole 512-token blocks are shared again. */
  for (size_t i = 1; i < n; i++)
    for (size_t j = 0; j < i; j++) {
      size_t c = common_blocks(&orig[i], &orig[j]) / 8 * 8;
      assert_true(common_blocks(&back[i], &back[j]) >= c);
    }
  record_all(back, n, ro.block_size, p2);
  char *t1 = slurp(p1), *t2 = slurp(p2);
  assert_string_equal(t1, t2);
  free(t1);
  free(t2);
  drop_tmp(p1);
  drop_tmp(p2);
  free(orig);
  free(back);
}

/* The excerpt replayed and recorded gives its own lines back: its ids are
 * numbered in order of first use, as the recorder numbers them. */
static void test_excerpt_records_to_itself(void **state) {
  (void)state;
  workload_opts_t o;
  workload_opts_default(&o);
  got_t *g = calloc(64, sizeof *g);
  size_t n = load_all("mooncake:" EXCERPT, &o, g, 64);
  char *p = write_tmp("");
  record_all(g, n, o.block_size, p);
  char *text = slurp(p), *orig = slurp(EXCERPT);
  /* The recorder writes compact JSON plus the drawn class; compare the
   * four fields line by line through a replay of each. */
  got_t *h = calloc(64, sizeof *h);
  char spec[256];
  snprintf(spec, sizeof spec, "mooncake:%s", p);
  assert_int_equal(load_all(spec, &o, h, 64), n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(h[i].r.arrival, g[i].r.arrival);
    assert_int_equal(h[i].r.n_blocks, g[i].r.n_blocks);
    assert_memory_equal(h[i].blocks, g[i].blocks,
                        g[i].r.n_blocks * sizeof *g[i].blocks);
  }
  const char *first = "{\"timestamp\":0,\"input_length\":40160,"
                      "\"output_length\":6,\"hash_ids\":[0,1,2,";
  assert_memory_equal(text, first, strlen(first));
  free(text);
  free(orig);
  free(g);
  free(h);
  drop_tmp(p);
}

static void test_recorder_block_size(void **state) {
  (void)state;
  char err[256] = "";
  workload_recorder_t *rec = NULL;
  assert_int_equal(workload_recorder_new(48, &rec, err, sizeof err),
                   INFS_ECONFIG);
  assert_null(rec);
  assert_non_null(strstr(err, "divides 512"));
  assert_int_equal(workload_recorder_new(512, &rec, err, sizeof err), 0);
  workload_recorder_destroy(&rec);
  workload_recorder_destroy(&rec); /* idempotent */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_ids_share_whole_blocks),
      cmocka_unit_test(test_block_mapping_is_stable),
      cmocka_unit_test(test_excerpt),
      cmocka_unit_test(test_copies_share_within_themselves),
      cmocka_unit_test(test_bad_lines),
      cmocka_unit_test(test_shared_prefix_flag_refused),
      cmocka_unit_test(test_recorded_run_replays_to_same_requests),
      cmocka_unit_test(test_excerpt_records_to_itself),
      cmocka_unit_test(test_recorder_block_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
