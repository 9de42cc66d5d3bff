/* lib/report_html and lib/plot_svg: the page has every chart with drawn
 * series and bars, loads nothing from outside, escapes what it quotes,
 * carries the JSON, stays light on long runs and copes with an empty
 * report. (tests/integration/test_report_html renders it in a browser.) */
#include "report_html.h"

#include "plot_svg.h"
#include "report_fixture.h"

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

/* Not inlined: GCC 12 otherwise takes the page for a pointer into the
 * local that open_memstream wrote through (-Wdangling-pointer). */
__attribute__((noinline)) static char *render(const report_t *r,
                                              const char *title) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  assert_non_null(mem);
  assert_int_equal(report_html_print(r, title, mem), 0);
  fclose(mem);
  return text;
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

/* The <svg> element with this id, copied out. */
static char *chart(const char *page, const char *id) {
  char key[64];
  snprintf(key, sizeof key, "id=\"%s\"", id);
  const char *start = strstr(page, key);
  if (!start)
    fail_msg("no chart %s", id);
  const char *end = strstr(start, "</svg>");
  assert_non_null(end);
  return strndup(start, (size_t)(end - start));
}

/* Points in the path of the series with this name. */
static int series_points(const char *svg, const char *name) {
  char key[96];
  snprintf(key, sizeof key, "data-series=\"%s\" d=\"", name);
  const char *d = strstr(svg, key);
  if (!d)
    return 0;
  d += strlen(key);
  int n = 0;
  for (; *d && *d != '"'; d++)
    n += *d == 'M' || *d == 'L';
  return n;
}

/* No "nan" or "inf" printed from a number ("infsched" is fine). */
static void assert_finite_numbers(const char *text) {
  assert_null(strstr(text, "nan"));
  for (const char *p = strstr(text, "inf"); p; p = strstr(p + 1, "inf"))
    if (strncmp(p, "infsched", 8) != 0)
      fail_msg("non-finite number near '%.40s'", p > text + 10 ? p - 10 : p);
}

static void test_every_chart_drawn(void **state) {
  (void)state;
  report_t *r = fixture_report();
  assert_non_null(r);
  char *page = render(r, "codex <demo> & co");
  assert_true(strncmp(page, "<!DOCTYPE html>", 15) == 0);
  assert_int_equal(count(page, "<svg class=\"plot\""), 14);
  assert_int_equal(count(page, "class=\"no-data\""), 0);
  assert_finite_numbers(page);

  static const char *const cdfs[] = {"plot-ttft-cdf", "plot-e2e-cdf",
                                     "plot-tpot-cdf"};
  for (int i = 0; i < 3; i++) {
    char *svg = chart(page, cdfs[i]);
    static const char *const names[] = {"all", "interactive", "agent", "batch"};
    for (int k = 0; k < 4; k++)
      assert_true(series_points(svg, names[k]) > 200);
    /* A log axis of milliseconds. */
    assert_non_null(strstr(svg, ">100 ms<"));
    if (i < 2)
      assert_non_null(strstr(svg, ">1 s<"));
    free(svg);
  }
  char *svg = chart(page, "plot-throughput");
  assert_true(series_points(svg, "all") > 60);
  assert_true(series_points(svg, "batch") > 60);
  free(svg);
  svg = chart(page, "plot-tokens");
  assert_true(series_points(svg, "generated") > 60);
  free(svg);
  svg = chart(page, "plot-queue");
  assert_true(series_points(svg, "scheduler queue") >= 61);
  assert_true(series_points(svg, "open (client)") >= 61);
  free(svg);
  /* Each class's SLO target on the TTFT and TPOT CDFs, none on e2e. */
  svg = chart(page, "plot-ttft-cdf");
  assert_int_equal(count(svg, "class=\"marker\""), 3);
  assert_non_null(strstr(svg, "data-label=\"interactive SLO 450 ms\""));
  free(svg);
  svg = chart(page, "plot-tpot-cdf");
  assert_int_equal(count(svg, "class=\"marker\""), 3);
  assert_non_null(strstr(svg, "data-label=\"agent SLO 25 ms\""));
  free(svg);
  svg = chart(page, "plot-e2e-cdf");
  assert_int_equal(count(svg, "class=\"marker\""), 0);
  free(svg);

  /* A line per worker, over the minute. */
  static const char *const per_worker[] = {"plot-worker-busy",
                                           "plot-worker-requests"};
  for (size_t i = 0; i < 2; i++) {
    svg = chart(page, per_worker[i]);
    assert_int_equal(count(svg, "class=\"series\""), 6);
    assert_true(series_points(svg, "sram-1") >= 60);
    free(svg);
  }
  svg = chart(page, "plot-cost-time");
  assert_int_equal(count(svg, "class=\"series\""), 3);
  assert_true(series_points(svg, "sram") == 61);
  free(svg);

  /* The settings, and the headlines that keep token kinds apart. */
  const char *set = strstr(page, "<section id=\"settings\">");
  assert_non_null(set);
  assert_non_null(strstr(set, "<dt>seed</dt><dd>42</dd>"));
  assert_non_null(strstr(set, "<dd>2 gpu-h100, 2 sram-wse3, 2 tpu-v6e</dd>"));
  assert_non_null(strstr(set, "<dd>balanced</dd>"));
  assert_non_null(strstr(set, "<dd>450:40</dd>"));
  assert_non_null(strstr(page, "<dt>prompt</dt>"));
  assert_non_null(strstr(page, "<dt>of which cached</dt>"));
  assert_non_null(strstr(page, "<dt>generated</dt>"));

  svg = chart(page, "plot-slo-class");
  assert_int_equal(count(svg, "class=\"bar\""), 3);
  assert_non_null(strstr(svg, "missed: "));
  free(svg);
  svg = chart(page, "plot-cost-class");
  assert_int_equal(count(svg, "class=\"bar\""), 3);
  assert_non_null(strstr(svg, "data-label=\"batch\""));
  assert_non_null(strstr(svg, "per M tokens"));
  free(svg);
  /* Whole requests' three phases, split ones' four. */
  svg = chart(page, "plot-phases");
  assert_int_equal(count(svg, "class=\"bar\""), 7);
  assert_non_null(strstr(svg, "data-label=\"split transfer\""));
  assert_null(strstr(svg, "data-label=\"whole transfer\""));
  free(svg);
  /* TPUs prefilled for GPUs and ran requests whole; GPUs decoded. */
  svg = chart(page, "plot-cost-phase");
  assert_non_null(strstr(svg, "data-label=\"tpu prefill\""));
  assert_non_null(strstr(svg, "data-label=\"gpu decode\""));
  assert_non_null(strstr(svg, "data-label=\"sram whole\""));
  assert_null(strstr(svg, "data-label=\"sram prefill\""));
  assert_int_equal(count(svg, "class=\"bar\""), 5);
  free(svg);
  svg = chart(page, "plot-cost-worker");
  assert_int_equal(count(svg, "class=\"bar\""), 3);
  assert_non_null(strstr(svg, "data-label=\"sram\""));
  assert_non_null(strstr(svg, "2 workers"));
  free(svg);

  /* Self-contained: no external resource, no script to run. */
  assert_null(strstr(page, "src="));
  assert_null(strstr(page, "href"));
  assert_null(strstr(page, "<link"));
  assert_null(strstr(page, "url("));
  assert_null(strstr(page, "@import"));
  assert_int_equal(count(page, "<script"), 1);
  assert_int_equal(count(page, "<script type=\"application/json\""), 1);
  assert_int_equal(count(page, "http"), count(page, "xmlns=\"http"));
  /* What it quotes is escaped. */
  assert_non_null(strstr(page, "codex &lt;demo&gt; &amp; co"));
  assert_null(strstr(page, "<demo>"));
  /* The table, and the JSON, which parses back to the report's. */
  assert_non_null(strstr(page, "policy balanced"));
  const char *js = strstr(page, "id=\"report-data\">");
  assert_non_null(js);
  js = strchr(js, '>') + 1;
  const char *end = strstr(js, "</script>");
  char *json = strndup(js, (size_t)(end - js));
  assert_null(strchr(json, '<'));
  cJSON *parsed = cJSON_Parse(json), *want = report_to_json(r);
  assert_non_null(parsed);
  assert_true(cJSON_Compare(parsed, want, true));
  cJSON_Delete(parsed);
  cJSON_Delete(want);
  free(json);
  free(page);
  report_destroy(&r);
}

/* A long run is drawn from at most a few hundred bins per series. */
static void test_long_runs_stay_light(void **state) {
  (void)state;
  report_t *r = report_new();
  for (uint64_t i = 0; i < 20000; i++) {
    report_outcome_t o = {.cls = INFS_CLASS_AGENT,
                          .status = REPORT_COMPLETED,
                          .prompt_tokens = 100,
                          .generated_tokens = 10,
                          .ttft = 1000 + i,
                          .e2e = 5000 + i,
                          .done_at = i * 500000}; /* 10,000 s */
    report_add(r, &o);
    report_sample_t s = {i * 500000, 1, 2, 3, 4};
    report_add_sample(r, &s);
  }
  char *page = render(r, NULL);
  /* Step lines: two segments per point after the first. */
  char *svg = chart(page, "plot-throughput");
  int n = series_points(svg, "agent");
  assert_true(n > 200 && n <= 2 * 300);
  free(svg);
  svg = chart(page, "plot-queue");
  n = series_points(svg, "running");
  assert_true(n > 200 && n <= 2 * 1200);
  free(svg);
  assert_true(strlen(page) < 400000);
  free(page);
  report_destroy(&r);
}

static void test_empty_report(void **state) {
  (void)state;
  report_t *r = report_new();
  char *page = render(r, NULL);
  assert_int_equal(count(page, "<svg class=\"plot\""), 14);
  assert_int_equal(count(page, "class=\"no-data\""), 14);
  assert_int_equal(count(page, "class=\"series\""), 0);
  assert_finite_numbers(page);
  free(page);
  report_destroy(&r);
}

static void test_write_to_path(void **state) {
  (void)state;
  report_t *r = fixture_report();
  char path[] = "/tmp/test_report_html_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(report_html_write(r, "t", path), 0);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  assert_true(ftell(f) > 20000);
  fclose(f);
  unlink(path);
  assert_int_equal(report_html_write(r, "t", "/nonexistent/dir/r.html"),
                   -ENOENT);
  report_destroy(&r);
}

/* The charts' own edge cases: a log axis drops points at or below zero, a
 * flat series still gets a y range, bars take no negative height. */
static void test_plot_edges(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  double x[] = {0, 1, 10, 100}, y[] = {5, 5, 5, 5};
  plot_series_t s = {"flat", "#000", x, y, 4, false};
  plot_lines_t p = {.id = "a", .title = "t", .log_x = true};
  plot_svg_lines(mem, &p, &s, 1);
  plot_bar_t b[] = {{"neg", "#111", -3, NULL}, {"pos", "#222", 2, "n"}};
  plot_svg_bars(mem, "b", "bars", "USD", PLOT_UNIT_USD, b, 2);
  fclose(mem);
  assert_int_equal(series_points(text, "flat"), 3);
  assert_finite_numbers(text);
  assert_null(strstr(text, "height=\"-"));
  assert_non_null(strstr(text, ">$2.00<"));
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_chart_drawn),
      cmocka_unit_test(test_long_runs_stay_light),
      cmocka_unit_test(test_empty_report),
      cmocka_unit_test(test_write_to_path),
      cmocka_unit_test(test_plot_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
