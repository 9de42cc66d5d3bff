/* lib/report: counts, percentiles, SLO attainment, cost definitions and the
 * JSON layout of docs/architecture.md ("Reports"), from hand-built outcomes.
 */
#include "report.h"

#include "infsched.pb-c.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define MS 1000ull

enum { I = INFS_CLASS_INTERACTIVE, A = INFS_CLASS_AGENT, B = INFS_CLASS_BATCH };

/* One row per request. SLOs: interactive 450/40, agent 2000/25, batch
 * 30000/200 ms. */
static const struct {
  int cls;
  report_status_t status;
  uint32_t prompt, cached, generated;
  infs_time_t ttft, e2e;
  double cost;
  const char *worker;
  const char *worker_class;
  bool met; /* expected SLO verdict, for reading the table */
} outcomes[] = {
    /* TPOT (500-100)/4 = 100 ms > 40: missed on decode. */
    {I, REPORT_COMPLETED, 1000, 0, 5, 100 * MS, 500 * MS, 0.001, "gpu-0", "gpu",
     false},
    /* TPOT (296-200)/4 = 24 ms: met. */
    {I, REPORT_COMPLETED, 2000, 1000, 5, 200 * MS, 296 * MS, 0.002, "gpu-0",
     "gpu", true},
    /* TTFT 1.5 s, TPOT 20 ms: met. */
    {A, REPORT_COMPLETED, 3000, 1500, 10, 1500 * MS, 1680 * MS, 0.003, "sram-0",
     "sram", true},
    /* One token: no TPOT, TTFT within 30 s: met. */
    {B, REPORT_COMPLETED, 4000, 0, 1, 20000 * MS, 20000 * MS, 0.004, "gpu-0",
     "gpu", true},
    /* TTFT 31 s > 30 s: missed. */
    {B, REPORT_COMPLETED, 100, 0, 2, 31000 * MS, 31100 * MS, 0.0005, "sram-0",
     "sram", false},
    {B, REPORT_REJECTED, 0, 0, 0, 0, 0, 0, NULL, NULL, false},
    {I, REPORT_FAILED, 0, 0, 0, 0, 0, 0, NULL, NULL, false},
    {A, REPORT_LOST, 0, 0, 0, 0, 0, 0, NULL, NULL, false},
};
#define N_OUTCOMES (sizeof outcomes / sizeof *outcomes)

static const slo_t slo[] = {{450, 0, 40}, {2000, 0, 25}, {30000, 0, 200}};

static report_t *build(void) {
  report_t *r = report_new();
  assert_non_null(r);
  for (size_t i = 0; i < N_OUTCOMES; i++) {
    report_outcome_t o = {
        .cls = (infs_class_t)outcomes[i].cls,
        .status = outcomes[i].status,
        .prompt_tokens = outcomes[i].prompt,
        .cached_tokens = outcomes[i].cached,
        .generated_tokens = outcomes[i].generated,
        .ttft = outcomes[i].ttft,
        .e2e = outcomes[i].e2e,
        .slo = slo[outcomes[i].cls],
        .cost_usd = outcomes[i].cost,
        .worker_id = outcomes[i].worker,
        .worker_class = outcomes[i].worker_class,
    };
    report_add(r, &o);
  }
  report_set_window(r, 10 * 1000 * MS);
  report_set_policy(r, "balanced");
  return r;
}

static void test_counts_and_slo(void **state) {
  (void)state;
  report_t *r = build();
  report_requests_t q;
  report_requests(r, -1, &q);
  assert_int_equal(q.sent, 8);
  assert_int_equal(q.completed, 5);
  assert_int_equal(q.failed, 1);
  assert_int_equal(q.rejected, 1);
  assert_int_equal(q.lost, 1);
  size_t met = 0;
  for (size_t i = 0; i < N_OUTCOMES; i++)
    met += outcomes[i].met;
  assert_true(report_slo_attainment(r, -1) == (double)met / N_OUTCOMES);
  assert_true(report_slo_attainment(r, I) == 1.0 / 3);
  assert_true(report_slo_attainment(r, A) == 1.0 / 2);
  assert_true(report_slo_attainment(r, B) == 1.0 / 3);
  report_requests(r, B, &q);
  assert_int_equal(q.sent, 3);
  assert_int_equal(q.completed, 2);
  assert_int_equal(q.rejected, 1);
  assert_string_equal(report_status_name(REPORT_LOST), "lost");
  report_destroy(&r);
  assert_null(r);
}

/* A target of 0 is not checked. */
static void test_zero_targets(void **state) {
  (void)state;
  report_t *r = report_new();
  report_outcome_t o = {.cls = INFS_CLASS_AGENT,
                        .status = REPORT_COMPLETED,
                        .generated_tokens = 3,
                        .ttft = 99999 * MS,
                        .e2e = 199999 * MS};
  report_add(r, &o);
  assert_true(report_slo_attainment(r, -1) == 1.0);
  report_destroy(&r);
}

static double num_at(const cJSON *root, const char *path) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  const cJSON *node = root;
  for (char *save, *tok = strtok_r(buf, ".", &save); tok;
       tok = strtok_r(NULL, ".", &save)) {
    node = cJSON_GetObjectItemCaseSensitive(node, tok);
    if (!node)
      fail_msg("no key %s in %s", tok, path);
  }
  if (!cJSON_IsNumber(node))
    fail_msg("%s is not a number", path);
  return node->valuedouble;
}

static bool near(double a, double b) {
  return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

static void test_percentiles(void **state) {
  (void)state;
  report_t *r = report_new();
  /* TTFT i ms, 2 tokens, decode i/10 ms: p50 50, p90 90, p99 99 ms within
   * the histogram's 0.4%. */
  for (int i = 1; i <= 100; i++) {
    report_outcome_t o = {.cls = INFS_CLASS_INTERACTIVE,
                          .status = REPORT_COMPLETED,
                          .prompt_tokens = 10,
                          .generated_tokens = 2,
                          .ttft = (infs_time_t)i * MS,
                          .e2e = (infs_time_t)i * MS + (infs_time_t)i * 100};
    report_add(r, &o);
  }
  cJSON *j = report_to_json(r);
  assert_non_null(j);
  static const struct {
    const char *path;
    double want;
  } table[] = {
      {"latency_ms.ttft.p50", 50},
      {"latency_ms.ttft.p90", 90},
      {"latency_ms.ttft.p99", 99},
      {"latency_ms.tpot.p50", 5},
      {"latency_ms.tpot.p99", 9.9},
      {"latency_ms.e2e.p90", 99},
      {"latency_ms.ttft.mean", 50.5},
      {"by_class.interactive.latency_ms.ttft.p90", 90},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    double got = num_at(j, table[i].path);
    if (fabs(got - table[i].want) > 0.004 * table[i].want)
      fail_msg("%s: %g, want %g", table[i].path, got, table[i].want);
  }
  /* Empty classes report zeros, not garbage. */
  assert_true(num_at(j, "by_class.batch.latency_ms.e2e.p99") == 0);
  assert_true(num_at(j, "by_class.batch.slo_attainment") == 0);
  cJSON_Delete(j);
  report_destroy(&r);
}

static void test_json_layout(void **state) {
  (void)state;
  report_t *r = build();
  /* Pool figures over the run: 0.5 + 0.25 USD; gpu-0 busy half its time. */
  report_add_worker(r, "gpu-0", "gpu", 0.5, 30, 60);
  report_add_worker(r, "sram-0", "sram", 0.25, 6, 60);
  report_set_worker_role(r, "gpu-0", "decode");
  cJSON *j = report_to_json(r);
  assert_non_null(j);

  const cJSON *policy = cJSON_GetObjectItemCaseSensitive(j, "policy");
  assert_true(cJSON_IsString(policy));
  assert_string_equal(policy->valuestring, "balanced");

  uint64_t prompt = 1000 + 2000 + 3000 + 4000 + 100;
  uint64_t generated = 5 + 5 + 10 + 1 + 2;
  double usd = 0.75;
  static const char *const shape[] = {
      "requests.sent",       "requests.completed",   "requests.failed",
      "requests.rejected",   "requests.lost",        "latency_ms.ttft.p50",
      "latency_ms.ttft.p90", "latency_ms.ttft.p99",  "latency_ms.tpot.p50",
      "latency_ms.tpot.p90", "latency_ms.tpot.p99",  "latency_ms.e2e.p50",
      "latency_ms.e2e.p90",  "latency_ms.e2e.p99",   "slo_attainment",
      "tokens.prompt",       "tokens.generated",     "cost.usd_total",
      "cost.usd_per_mtok",   "throughput.req_per_s", "throughput.tok_per_s",
  };
  for (size_t i = 0; i < sizeof shape / sizeof *shape; i++)
    (void)num_at(j, shape[i]);
  static const char *const class_shape[] = {
      "requests.sent",       "requests.completed", "requests.failed",
      "requests.rejected",   "requests.lost",      "latency_ms.ttft.p50",
      "latency_ms.tpot.p90", "latency_ms.e2e.p99", "slo_attainment",
      "tokens.prompt",       "tokens.generated",   "cost.usd_total",
      "cost.usd_per_mtok",
  };
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    for (size_t i = 0; i < sizeof class_shape / sizeof *class_shape; i++) {
      char path[128];
      snprintf(path, sizeof path, "by_class.%s.%s",
               infs_class_name((infs_class_t)c), class_shape[i]);
      (void)num_at(j, path);
    }
  }

  const struct {
    const char *path;
    double want;
  } table[] = {
      {"requests.sent", 8},
      {"requests.completed", 5},
      {"requests.failed", 1},
      {"requests.rejected", 1},
      {"requests.lost", 1},
      {"slo_attainment", 3.0 / 8},
      {"tokens.prompt", (double)prompt},
      {"tokens.generated", (double)generated},
      {"cost.usd_total", usd},
      {"cost.usd_per_mtok", usd / (double)(prompt + generated) * 1e6},
      {"throughput.req_per_s", 0.5},
      {"throughput.tok_per_s", (double)(prompt + generated) / 10},
      {"by_class.interactive.requests.sent", 3},
      {"by_class.interactive.requests.failed", 1},
      {"by_class.interactive.slo_attainment", 1.0 / 3},
      {"by_class.interactive.tokens.prompt", 3000},
      {"by_class.interactive.cost.usd_total", 0.003},
      {"by_class.interactive.cost.usd_per_mtok", 0.003 / 3010 * 1e6},
      {"by_class.agent.requests.lost", 1},
      {"by_class.agent.slo_attainment", 0.5},
      {"by_class.agent.tokens.generated", 10},
      {"by_class.batch.requests.rejected", 1},
      {"by_class.batch.cost.usd_total", 0.0045},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    double got = num_at(j, table[i].path);
    if (!near(got, table[i].want))
      fail_msg("%s: %.12g, want %.12g", table[i].path, got, table[i].want);
  }
  /* Agent TTFT is exact to the bucket: a single value is clamped to it. */
  assert_true(num_at(j, "by_class.agent.latency_ms.ttft.p50") == 1500.0);
  assert_true(num_at(j, "by_class.agent.latency_ms.tpot.p99") == 20.0);

  const cJSON *workers = cJSON_GetObjectItemCaseSensitive(j, "workers");
  assert_true(cJSON_IsArray(workers));
  assert_int_equal(cJSON_GetArraySize(workers), 2);
  const cJSON *w0 = cJSON_GetArrayItem(workers, 0);
  const cJSON *w1 = cJSON_GetArrayItem(workers, 1);
  assert_string_equal(cJSON_GetObjectItem(w0, "id")->valuestring, "gpu-0");
  assert_string_equal(cJSON_GetObjectItem(w0, "class")->valuestring, "gpu");
  assert_string_equal(cJSON_GetObjectItem(w0, "role")->valuestring, "decode");
  assert_true(num_at(w0, "requests") == 3);
  assert_true(near(num_at(w0, "utilization"), 0.5));
  assert_true(near(num_at(w0, "prefix_hit_rate"), 1000.0 / 7000));
  assert_string_equal(cJSON_GetObjectItem(w1, "id")->valuestring, "sram-0");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(w1, "role")));
  assert_true(num_at(w1, "requests") == 2);
  assert_true(near(num_at(w1, "utilization"), 0.1));
  assert_true(near(num_at(w1, "prefix_hit_rate"), 1500.0 / 3100));
  cJSON_Delete(j);
  report_destroy(&r);
}

/* Without pool figures the total falls back to the per-request sum, and a
 * worker seen only in answers has no utilization. */
static void test_cost_without_pool(void **state) {
  (void)state;
  report_t *r = build();
  cJSON *j = report_to_json(r);
  assert_true(near(num_at(j, "cost.usd_total"), 0.0105));
  const cJSON *src =
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "cost"), "source");
  assert_string_equal(src->valuestring, "requests");
  const cJSON *w0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "workers"), 0);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(w0, "utilization")));
  cJSON_Delete(j);
  report_destroy(&r);
}

static void test_write_and_print(void **state) {
  (void)state;
  report_t *r = build();
  report_add_worker(r, "gpu-0", "gpu", 0.5, 30, 60);
  char path[] = "/tmp/test_report_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(report_write_json(r, path), 0);
  FILE *f = fopen(path, "r");
  char buf[16384];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  unlink(path);
  cJSON *j = cJSON_Parse(buf);
  assert_non_null(j);
  assert_true(num_at(j, "requests.lost") == 1);
  cJSON_Delete(j);
  assert_true(report_write_json(r, "/nonexistent/dir/r.json") < 0);

  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  report_print(r, mem);
  fclose(mem);
  assert_non_null(strstr(text, "policy balanced"));
  assert_non_null(strstr(text, "interactive"));
  assert_non_null(strstr(text, "gpu-0"));
  assert_non_null(strstr(text, "50.0%")); /* gpu-0 utilization */
  free(text);

  /* An empty report prints and serialises without dividing by zero. */
  report_t *empty = report_new();
  mem = open_memstream(&text, &len);
  report_print(empty, mem);
  fclose(mem);
  assert_non_null(strstr(text, "policy unknown"));
  free(text);
  j = report_to_json(empty);
  assert_true(num_at(j, "slo_attainment") == 0);
  assert_true(num_at(j, "cost.usd_per_mtok") == 0);
  assert_true(num_at(j, "throughput.req_per_s") == 0);
  cJSON_Delete(j);
  report_destroy(&empty);
  report_destroy(&r);
}

/* Which part of the SLO each completed request missed, with TTFT targets
 * that grow by 250 ms per 1,000 uncached prompt tokens. */
static void test_slo_misses(void **state) {
  (void)state;
  static const slo_t grow[] = {{450, 250, 40}, {2000, 250, 40}, {0, 0, 0}};
  static const struct {
    int cls;
    report_status_t status;
    uint32_t prompt, cached, generated;
    infs_time_t ttft, e2e;
    const char *worker_class;
  } rows[] = {
      /* 2,000 uncached: 950 ms. TTFT 900, TPOT (1260-900)/9 = 40: met. */
      {I, REPORT_COMPLETED, 2000, 0, 10, 900 * MS, 1260 * MS, "gpu"},
      /* 1,000 uncached: 700 ms. TTFT 900: TTFT missed. */
      {I, REPORT_COMPLETED, 2000, 1000, 10, 900 * MS, 1260 * MS, "gpu"},
      /* TTFT 1 s > 950 ms and TPOT 100 ms: both. */
      {I, REPORT_COMPLETED, 2000, 0, 2, 1000 * MS, 1100 * MS, "tpu"},
      /* 40,000 uncached: 12 s. TTFT 11 s met, TPOT 50 ms missed. */
      {A, REPORT_COMPLETED, 40000, 0, 3, 11000 * MS, 11100 * MS, "tpu"},
      /* Not completed: counted as failed, not as a miss of either part. */
      {A, REPORT_FAILED, 0, 0, 0, 0, 0, NULL},
  };
  report_t *r = report_new();
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    report_outcome_t o = {.cls = (infs_class_t)rows[i].cls,
                          .status = rows[i].status,
                          .prompt_tokens = rows[i].prompt,
                          .cached_tokens = rows[i].cached,
                          .generated_tokens = rows[i].generated,
                          .ttft = rows[i].ttft,
                          .e2e = rows[i].e2e,
                          .slo = grow[rows[i].cls],
                          .worker_id = rows[i].worker_class,
                          .worker_class = rows[i].worker_class,
                          .error = "worker_lost"};
    report_add(r, &o);
  }
  report_slo_counts_t c;
  report_slo_counts(r, -1, NULL, &c);
  assert_int_equal(c.completed, 4);
  assert_int_equal(c.met, 1);
  assert_int_equal(c.missed[SLO_MISS_TTFT], 1);
  assert_int_equal(c.missed[SLO_MISS_TPOT], 1);
  assert_int_equal(c.missed[SLO_MISS_BOTH], 1);
  report_slo_counts(r, I, "gpu", &c);
  assert_int_equal(c.completed, 2);
  assert_int_equal(c.met, 1);
  assert_int_equal(c.missed[SLO_MISS_TTFT], 1);
  report_slo_counts(r, -1, "tpu", &c);
  assert_int_equal(c.completed, 2);
  assert_int_equal(c.missed[SLO_MISS_BOTH], 1);
  assert_int_equal(c.missed[SLO_MISS_TPOT], 1);
  report_slo_counts(r, A, "gpu", &c);
  assert_int_equal(c.completed, 0);
  assert_true(near(report_slo_attainment(r, -1), 1.0 / 5));

  cJSON *j = report_to_json(r);
  assert_non_null(j);
  assert_true(num_at(j, "slo_missed.ttft") == 1);
  assert_true(num_at(j, "slo_missed.tpot") == 1);
  assert_true(num_at(j, "slo_missed.both") == 1);
  assert_true(num_at(j, "by_class.interactive.slo_missed.ttft") == 1);
  assert_true(num_at(j, "by_class.interactive.slo_missed.both") == 1);
  assert_true(num_at(j, "by_class.agent.slo_missed.tpot") == 1);
  assert_true(num_at(j, "by_class.agent.requests.failed") == 1);
  assert_true(num_at(j, "by_worker_class.gpu.completed") == 2);
  assert_true(num_at(j, "by_worker_class.gpu.slo_met") == 1);
  assert_true(num_at(j, "by_worker_class.gpu.slo_missed.ttft") == 1);
  assert_true(num_at(j, "by_worker_class.tpu.slo_missed.both") == 1);
  assert_true(
      num_at(j, "by_worker_class.tpu.by_class.agent.slo_missed.tpot") == 1);
  assert_true(
      num_at(j, "by_worker_class.tpu.by_class.interactive.slo_missed.both") ==
      1);
  cJSON_Delete(j);

  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  report_print(r, mem);
  fclose(mem);
  /* name, completed, met, TTFT, TPOT, both */
  assert_non_null(strstr(text, "SLO of completed"));
  assert_non_null(strstr(text, "\nall                          4        1"
                               "        1        1        1\n"));
  assert_non_null(strstr(text, "\non tpu                       2        0"
                               "        0        1        1\n"));
  assert_non_null(strstr(text, "\n  agent                      1        0"
                               "        0        1        0\n"));
  free(text);
  report_destroy(&r);
}

/* A long answer's tokens over the seconds it took; the run's settings and
 * class SLOs; per-worker samples under the workers' names. */
static void test_tokens_when_made_settings_and_workers(void **state) {
  (void)state;
  report_t *r = report_new();
  report_outcome_t o = {.cls = (infs_class_t)A,
                        .status = REPORT_COMPLETED,
                        .prompt_tokens = 10,
                        .generated_tokens = 400,
                        .ttft = 500 * MS,
                        .e2e = 4500 * MS,
                        .slo = {2000, 250, 25},
                        .done_at = 5000 * MS};
  report_add(r, &o);
  const report_second_t *tl;
  assert_int_equal(report_timeline(r, &tl), 6);
  assert_true(near(tl[0].produced_tokens, 0));
  for (int s = 1; s <= 4; s++)
    assert_true(near(tl[s].produced_tokens, 100));
  assert_int_equal(tl[5].generated_tokens, 400);

  slo_t slo;
  assert_false(report_class_slo(r, I, &slo));
  assert_true(report_class_slo(r, A, &slo));
  assert_int_equal(slo.ttft_ms_per_ktok, 250);

  report_set_setting(r, "seed", "1");
  report_set_setting(r, "workload", "poisson");
  report_set_setting(r, "seed", "7");
  const char *pool[] = {"gpu-h100", "tpu-v6e", "gpu-h100"};
  report_set_count_setting(r, "pool", pool, 3);
  const char *const *names, *const *values;
  assert_int_equal(report_settings(r, &names, &values), 3);
  assert_string_equal(names[0], "seed");
  assert_string_equal(values[0], "7");
  assert_string_equal(values[2], "2 gpu-h100, 1 tpu-v6e");

  for (int t = 0; t < 3; t++)
    for (int w = 0; w < 2; w++) {
      report_worker_sample_t s = {.t = t * 1000 * MS,
                                  .id = w ? "tpu-0" : "gpu-0",
                                  .cls = w ? "tpu" : "gpu",
                                  .outstanding = (uint32_t)(t + w),
                                  .busy_s = 0.5 * t,
                                  .cost_usd = 0.01 * t};
      report_add_worker_sample(r, &s);
    }
  const report_wsample_t *ws;
  assert_int_equal(report_worker_samples(r, &ws), 6);
  assert_int_equal(report_worker_count(r), 2);
  const char *id, *cls;
  report_worker_name(r, ws[5].worker, &id, &cls);
  assert_string_equal(id, "tpu-0");
  assert_string_equal(cls, "tpu");
  assert_int_equal(ws[5].outstanding, 3);

  cJSON *j = report_to_json(r);
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "settings"), "seed")
          ->valuestring,
      "7");
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "slo"), "agent")->valuestring,
      "2000+250:25");
  cJSON_Delete(j);
  report_destroy(&r);
}

/* What the HTML page plots: answers per second by done_at, samples as
 * given, the latency histograms, and each worker's request costs. */
static void test_timeline_and_samples(void **state) {
  (void)state;
  report_t *r = report_new();
  static const struct {
    int cls;
    report_status_t status;
    infs_time_t done_at;
    uint32_t prompt, generated;
  } rows[] = {
      {I, REPORT_COMPLETED, 500 * MS, 100, 10},
      {A, REPORT_COMPLETED, 999 * MS, 200, 20},
      {A, REPORT_COMPLETED, 1000 * MS, 300, 30},
      {B, REPORT_REJECTED, 2500 * MS, 0, 0},
      {I, REPORT_FAILED, 4100 * MS, 0, 0},
      {A, REPORT_COMPLETED, 0, 400, 40}, /* done_at unknown */
      {A, REPORT_LOST, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    report_outcome_t o = {.cls = (infs_class_t)rows[i].cls,
                          .status = rows[i].status,
                          .prompt_tokens = rows[i].prompt,
                          .generated_tokens = rows[i].generated,
                          .ttft = 10 * MS * (i + 1),
                          .e2e = 20 * MS * (i + 1),
                          .cost_usd = 0.25,
                          .worker_id = "gpu-0",
                          .worker_class = "gpu",
                          .done_at = rows[i].done_at};
    report_add(r, &o);
  }
  const report_second_t *tl;
  assert_int_equal(report_timeline(r, &tl), 5);
  assert_int_equal(tl[0].completed[I], 1);
  assert_int_equal(tl[0].completed[A], 1);
  assert_int_equal(tl[0].generated_tokens, 30);
  assert_int_equal(tl[0].prompt_tokens, 300);
  assert_int_equal(tl[1].completed[A], 1);
  assert_int_equal(tl[1].generated_tokens, 30);
  assert_int_equal(tl[2].errors, 1);
  assert_int_equal(tl[3].errors + tl[3].completed[A], 0);
  assert_int_equal(tl[4].errors, 1);
  /* Made from first token to Done: the request done at 1.000 s made its
   * tokens in second 0. */
  assert_true(near(tl[0].produced_tokens, 60));
  assert_true(near(tl[1].produced_tokens, 0));

  const report_sample_t *sm;
  assert_int_equal(report_samples(r, &sm), 0);
  for (uint32_t i = 0; i < 300; i++) {
    report_sample_t x = {i * 1000 * MS, i, 2 * i, 3 * i, 4 * i};
    report_add_sample(r, &x);
  }
  assert_int_equal(report_samples(r, &sm), 300);
  assert_int_equal(sm[299].t, 299000 * MS);
  assert_int_equal(sm[7].worker_queued, 14);
  assert_int_equal(sm[7].open, 28);

  assert_int_equal(hist_count(report_latency(r, -1, REPORT_TTFT)), 4);
  assert_int_equal(hist_count(report_latency(r, A, REPORT_E2E)), 3);
  assert_int_equal(hist_min(report_latency(r, I, REPORT_TTFT)), 10 * MS);

  cJSON *j = report_to_json(r);
  const cJSON *w0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "workers"), 0);
  assert_true(near(num_at(w0, "request_cost_usd"), 4 * 0.25));
  cJSON_Delete(j);
  report_destroy(&r);
}

static double jpath(const cJSON *o, const char *a, const char *b, const char *c,
                    const char *d) {
  const char *keys[] = {a, b, c, d};
  for (int i = 0; i < 4 && keys[i]; i++)
    o = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
  assert_true(cJSON_IsNumber(o));
  return o->valuedouble;
}

/* A request run whole takes its phases from the worker's queue, TTFT and
 * end-to-end times; a split one from the scheduler's fields. Costs go to
 * the worker class of each side. */
static void test_phases(void **state) {
  (void)state;
  report_t *r = report_new();
  Infsched__Done d = INFSCHED__DONE__INIT;
  d.queue_us = 10 * MS;
  d.ttft_us = 110 * MS;
  d.e2e_us = 410 * MS;
  report_outcome_t whole = {.cls = INFS_CLASS_AGENT,
                            .status = REPORT_COMPLETED,
                            .prompt_tokens = 100,
                            .generated_tokens = 4,
                            .ttft = 120 * MS,
                            .e2e = 420 * MS,
                            .cost_usd = 0.5,
                            .worker_id = "gpu-0",
                            .worker_class = "gpu"};
  report_phases_from_done(&d, &whole.phases);
  assert_true(whole.phases.known);
  assert_false(whole.phases.split);
  assert_int_equal(whole.phases.queue, 10 * MS);
  assert_int_equal(whole.phases.prefill, 100 * MS);
  assert_int_equal(whole.phases.decode, 300 * MS);
  report_add(r, &whole);
  report_outcome_t split = {.cls = INFS_CLASS_AGENT,
                            .status = REPORT_COMPLETED,
                            .prompt_tokens = 4000,
                            .generated_tokens = 10,
                            .ttft = 300 * MS,
                            .e2e = 900 * MS,
                            .cost_usd = 0.375,
                            .worker_id = "gpu-1",
                            .worker_class = "gpu"};
  Infsched__Done sd = INFSCHED__DONE__INIT;
  sd.queue_us = 2 * MS;
  sd.ttft_us = 7 * MS; /* the decode worker's own, not the request's */
  sd.e2e_us = 500 * MS;
  sd.prefill_us = 250 * MS;
  sd.transfer_us = 40 * MS;
  sd.decode_us = 560 * MS;
  sd.prefill_cost_usd = 0.125;
  sd.prefill_worker_id = (char *)"tpu-0";
  sd.prefill_worker_class = (char *)"tpu";
  report_phases_from_done(&sd, &split.phases);
  assert_true(split.phases.split);
  assert_int_equal(split.phases.prefill, 250 * MS);
  assert_int_equal(split.phases.decode, 560 * MS);
  assert_string_equal(split.phases.prefill_worker_id, "tpu-0");
  report_add(r, &split);
  /* Without timings (an old worker's Done), nothing is counted. */
  report_outcome_t unknown = whole;
  unknown.phases = (report_phases_t){0};
  report_add(r, &unknown);

  cJSON *j = report_to_json(r);
  assert_non_null(j);
  const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "phases");
  assert_true(jpath(ph, "whole", "requests", NULL, NULL) == 1);
  assert_true(jpath(ph, "split", "requests", NULL, NULL) == 1);
  const cJSON *wl = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(ph, "whole"), "latency_ms");
  assert_true(fabs(jpath(wl, "queue", "p50", NULL, NULL) - 10) < 0.1);
  assert_true(fabs(jpath(wl, "prefill", "p50", NULL, NULL) - 100) < 0.5);
  assert_true(fabs(jpath(wl, "decode", "mean", NULL, NULL) - 300) < 1e-9);
  /* A request run whole moves no KV: no transfer figure at all. */
  assert_null(cJSON_GetObjectItemCaseSensitive(wl, "transfer"));
  const cJSON *sl = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(ph, "split"), "latency_ms");
  assert_true(fabs(jpath(sl, "transfer", "mean", NULL, NULL) - 40) < 1e-9);
  assert_true(fabs(jpath(sl, "prefill", "mean", NULL, NULL) - 250) < 1e-9);
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(ph, "cost_by_worker_class");
  assert_true(jpath(c, "gpu", "whole", "usd", NULL) == 0.5);
  assert_true(jpath(c, "gpu", "whole", "requests", NULL) == 1);
  assert_true(jpath(c, "gpu", "decode", "usd", NULL) == 0.25);
  assert_true(jpath(c, "gpu", "prefill", "usd", NULL) == 0);
  assert_true(jpath(c, "tpu", "prefill", "usd", NULL) == 0.125);
  assert_true(jpath(c, "tpu", "prefill", "requests", NULL) == 1);
  assert_true(jpath(c, "tpu", "whole", "requests", NULL) == 0);
  cJSON_Delete(j);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  report_print(r, f);
  fclose(f);
  assert_non_null(strstr(text, "split  queue"));
  assert_non_null(strstr(text, "       transfer        "));
  assert_non_null(strstr(text, "  tpu                      0.1250 (1)"));
  free(text);
  report_destroy(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timeline_and_samples),
      cmocka_unit_test(test_tokens_when_made_settings_and_workers),
      cmocka_unit_test(test_counts_and_slo),
      cmocka_unit_test(test_slo_misses),
      cmocka_unit_test(test_zero_targets),
      cmocka_unit_test(test_percentiles),
      cmocka_unit_test(test_json_layout),
      cmocka_unit_test(test_cost_without_pool),
      cmocka_unit_test(test_write_and_print),
      cmocka_unit_test(test_phases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
