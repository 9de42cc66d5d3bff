/* lib/workload_cli: the workload flags shared by loadgen and the simulator,
 * parsed from argv tables, checked against the workload kind, and built
 * into identical (or scaled) generators. */
#include "workload_cli.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef INFSCHED_DATA_DIR
#error "INFSCHED_DATA_DIR must name tests/data"
#endif

/* Parses argv (NULL-terminated, program name first) with the workload
 * options only; returns 0, or -1 on the first rejected flag. */
static int parse(workload_cli_t *c, const char *const *args) {
  char *argv[32];
  int argc = 0;
  for (; args[argc]; argc++)
    argv[argc] = (char *)args[argc];
  argv[argc] = NULL;
  workload_cli_init(c);
  optind = 0;
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, ":", workload_cli_options, NULL)) !=
         -1) {
    if (opt == '?' || opt == ':')
      return -1;
    if (workload_cli_parse(c, opt, optarg) != 0)
      return -1;
  }
  return workload_cli_check(c);
}

/* The arrival times and sizes of the first n requests. */
static void first_requests(const workload_cli_t *c, double scale, size_t n,
                           workload_req_t *out) {
  char err[256] = "";
  workload_t *w = NULL;
  if (workload_cli_build(c, scale, &w, err, sizeof err))
    fail_msg("build: %s", err);
  for (size_t i = 0; i < n; i++) {
    infs_time_t t = workload_next_time(w);
    assert_int_not_equal(t, INFS_TIME_NEVER);
    assert_int_equal(workload_pop(w, t, &out[i]), 0);
    out[i].blocks = NULL;
  }
  workload_destroy(&w);
}

static void test_poisson_flags_and_scale(void **state) {
  (void)state;
  workload_cli_t c;
  const char *args[] = {"p",      "--rate", "20",
                        "--seed", "5",      "--prompt-tokens",
                        "100",    "--slo",  "interactive=300:30",
                        NULL};
  assert_int_equal(parse(&c, args), 0);
  assert_int_equal(workload_cli_kind(&c), WORKLOAD_CLI_POISSON);
  assert_float_equal(c.opts.rate, 20, 0);
  assert_int_equal(c.opts.seed, 5);
  assert_float_equal(c.opts.duration_s, 60, 0); /* the default duration */
  assert_int_equal(c.opts.slo[INFS_CLASS_INTERACTIVE].ttft_ms, 300);

  workload_req_t a[20], b[20], twice[20];
  first_requests(&c, 1.0, 20, a);
  first_requests(&c, 1.0, 20, b);
  first_requests(&c, 2.0, 20, twice);
  for (size_t i = 0; i < 20; i++) {
    assert_int_equal(a[i].arrival, b[i].arrival);
    assert_int_equal(a[i].prompt_tokens, 100);
    /* Twice the rate: the same draws, half the gaps. */
    assert_true(
        llabs((long long)twice[i].arrival * 2 - (long long)a[i].arrival) <= 2);
    assert_int_equal(twice[i].cls, a[i].cls);
  }
  char buf[64];
  workload_cli_describe(&c, 1.5, buf, sizeof buf);
  assert_string_equal(buf, "30 req/s");
}

/* A trace scales by overlaid copies unless told to compress it. */
static void test_trace_scale(void **state) {
  (void)state;
  workload_cli_t c;
  const char *args[] = {"p",
                        "--workload",
                        "trace:" INFSCHED_DATA_DIR
                        "/azure_llm_code_2023_excerpt.csv",
                        "--speedup",
                        "2",
                        NULL};
  assert_int_equal(parse(&c, args), 0);
  assert_int_equal(workload_cli_kind(&c), WORKLOAD_CLI_TRACE);
  assert_float_equal(c.opts.duration_s, 0, 0); /* the whole file */
  workload_req_t a[10], b[10];
  char buf[64];
  c.scale_by = WORKLOAD_SCALE_COMPRESS;
  first_requests(&c, 1.0, 10, a);
  first_requests(&c, 4.0, 10, b);
  for (size_t i = 0; i < 10; i++) {
    assert_int_equal(a[i].prompt_tokens, b[i].prompt_tokens);
    assert_true(llabs((long long)b[i].arrival * 4 - (long long)a[i].arrival) <=
                4);
  }
  workload_cli_describe(&c, 4.0, buf, sizeof buf);
  assert_string_equal(buf, "speed-up 8x");

  c.scale_by = WORKLOAD_SCALE_OVERLAY;
  workload_t *w = NULL;
  char err[256];
  assert_int_equal(workload_cli_build(&c, 3.0, &w, err, sizeof err), 0);
  size_t n = 0;
  workload_req_t r;
  while (workload_pop(w, INFS_TIME_NEVER - 1, &r) == 0)
    n++;
  workload_destroy(&w);
  assert_int_equal(n, 3 * 600); /* the excerpt three times over */
  workload_cli_describe(&c, 3.0, buf, sizeof buf);
  assert_string_equal(buf, "3 copies sped up");
  workload_cli_describe(&c, 1.0, buf, sizeof buf);
  assert_string_equal(buf, "1 copy sped up");
}

/* A Mooncake trace is a trace: a speed-up or overlaid copies scale it, and
 * --record names the file a run is written to. */
static void test_mooncake_trace_and_record(void **state) {
  (void)state;
  workload_cli_t c;
  const char *args[] = {"p",
                        "--workload",
                        "mooncake:" INFSCHED_DATA_DIR
                        "/mooncake_synthetic_head60.jsonl",
                        "--record",
                        "run.jsonl",
                        NULL};
  assert_int_equal(parse(&c, args), 0);
  assert_int_equal(workload_cli_kind(&c), WORKLOAD_CLI_TRACE);
  assert_string_equal(c.record, "run.jsonl");
  workload_req_t a[10], b[10];
  c.scale_by = WORKLOAD_SCALE_COMPRESS;
  first_requests(&c, 1.0, 10, a);
  first_requests(&c, 2.0, 10, b);
  assert_int_equal(a[0].prompt_tokens, 40160);
  for (size_t i = 0; i < 10; i++) {
    assert_int_equal(a[i].prompt_tokens, b[i].prompt_tokens);
    assert_true(llabs((long long)b[i].arrival * 2 - (long long)a[i].arrival) <=
                2);
  }
  c.scale_by = WORKLOAD_SCALE_OVERLAY;
  char err[256];
  uint64_t count[2];
  for (int k = 0; k < 2; k++) {
    workload_t *w = NULL;
    assert_int_equal(workload_cli_build(&c, k + 1.0, &w, err, sizeof err), 0);
    workload_req_t r;
    count[k] = 0;
    while (workload_pop(w, INFS_TIME_NEVER - 1, &r) == 0)
      count[k]++;
    workload_destroy(&w);
  }
  assert_int_equal(count[0], 60);
  assert_int_equal(count[1], 2 * 60);
}

static void test_codex_knobs_and_scale(void **state) {
  (void)state;
  workload_cli_t c;
  const char *args[] = {"p",  "--workload", "codex",         "--sessions",
                        "4",  "--set",      "think_ms=5000", "--max-requests",
                        "50", NULL};
  assert_int_equal(parse(&c, args), 0);
  assert_int_equal(workload_cli_kind(&c), WORKLOAD_CLI_CODEX);
  assert_int_equal(c.n_knobs, 2);
  char buf[64];
  workload_cli_describe(&c, 2.0, buf, sizeof buf);
  assert_string_equal(buf, "8 sessions");
  workload_cli_describe(&c, 0.01, buf, sizeof buf);
  assert_string_equal(buf, "1 session");
  /* Each session's first call (later ones wait for answers). */
  workload_req_t a[4];
  first_requests(&c, 1.0, 4, a);
  assert_true(a[0].prompt_tokens > 1000);

  /* A bad knob value is reported when the generator is built. */
  const char *bad[] = {"p", "--workload", "codex", "--set", "turns=x", NULL};
  assert_int_equal(parse(&c, bad), 0);
  char err[256] = "";
  workload_t *w = NULL;
  assert_int_not_equal(workload_cli_build(&c, 1.0, &w, err, sizeof err), 0);
  assert_non_null(strstr(err, "--set turns"));
  assert_null(w);
}

/* Flags the chosen workload does not read are refused. */
static void test_flags_that_do_not_apply(void **state) {
  (void)state;
  const char *const *cases[] = {
      (const char *[]){"p", "--speedup", "2", NULL},
      (const char *[]){"p", "--workload", "trace:x.csv", "--rate", "3", NULL},
      (const char *[]){"p", "--workload", "trace:x.csv", "--prompt-tokens", "5",
                       NULL},
      (const char *[]){"p", "--workload", "codex", "--burst", "1:1:2", NULL},
      (const char *[]){"p", "--workload", "codex", "--shared-prefix", "0.5",
                       NULL},
      (const char *[]){"p", "--sessions", "4", NULL},
      (const char *[]){"p", "--rate", "-1", NULL},
      (const char *[]){"p", "--set", "novalue", NULL},
      (const char *[]){"p", "--workload", "mooncake:x.jsonl", "--rate", "3",
                       NULL},
      (const char *[]){"p", "--record", "r.jsonl", "--block-size", "48", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    workload_cli_t c;
    assert_int_equal(parse(&c, cases[i]), -1);
  }
  /* Not a workload flag: left to the program. */
  workload_cli_t c;
  workload_cli_init(&c);
  assert_int_equal(workload_cli_parse(&c, 'h', NULL), 1);
}

/* One command line for several workloads (the simulator's --matrix): each
 * keeps the flags that apply to it and passes the check. */
static void test_drop_others(void **state) {
  (void)state;
  workload_cli_t all;
  const char *args[] = {"p",      "--sessions", "32",         "--copies", "2",
                        "--rate", "5",          "--duration", "100",      NULL};
  char *argv[16];
  int argc = 0;
  for (; args[argc]; argc++)
    argv[argc] = (char *)args[argc];
  argv[argc] = NULL;
  workload_cli_init(&all);
  optind = 0;
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, ":", workload_cli_options, NULL)) != -1)
    assert_int_equal(workload_cli_parse(&all, opt, optarg), 0);
  static const char *const specs[] = {"poisson", "codex",
                                      "mooncake:" INFSCHED_DATA_DIR
                                      "/mooncake_synthetic_head60.jsonl"};
  for (size_t i = 0; i < 3; i++) {
    workload_cli_t c = all;
    c.spec = specs[i];
    assert_int_equal(workload_cli_check(&c), -1);
    c = all;
    c.spec = specs[i];
    workload_cli_drop_others(&c);
    assert_int_equal(workload_cli_check(&c), 0);
    assert_float_equal(c.opts.duration_s, 100, 0);
    assert_float_equal(c.opts.copies, i == 2 ? 2 : 1, 0);
    assert_float_equal(c.opts.rate, i == 0 ? 5 : 10, 0);
    assert_int_equal(c.n_knobs, i == 1 ? 1 : 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_poisson_flags_and_scale),
      cmocka_unit_test(test_trace_scale),
      cmocka_unit_test(test_mooncake_trace_and_record),
      cmocka_unit_test(test_drop_others),
      cmocka_unit_test(test_codex_knobs_and_scale),
      cmocka_unit_test(test_flags_that_do_not_apply),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
