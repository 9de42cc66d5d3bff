/* The HTML report in a real browser (headless Chromium): its charts are in
 * the DOM with drawn paths, the SLO targets on the TTFT and TPOT CDFs, the
 * TPOT chart and the settings block are there, and the screenshot shows
 * them in their colors.
 * Then end to end: the local cluster under a short codex load through
 * infsched-loadgen --report-html, every request answered and the page drawn.
 * Skipped only when no chromium is installed (test.sh installs it). */
#include "report_html.h"
#include "harness.h"
#include "report_fixture.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define BROWSER_TIMEOUT_MS 90000
#define EVENT_TIMEOUT_MS 30000
#define LOADGEN_TIMEOUT_MS 120000

typedef struct fixture {
  char *dir;
  char chromium[512];
} fixture_t;

/* chromium or chromium-browser from PATH. */
static bool find_chromium(char *out, size_t len) {
  static const char *const names[] = {"chromium", "chromium-browser"};
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/bin:/bin";
  for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
    for (const char *p = path; *p;) {
      const char *colon = strchr(p, ':');
      size_t dl = colon ? (size_t)(colon - p) : strlen(p);
      snprintf(out, len, "%.*s/%s", (int)dl, p, names[n]);
      if (dl && access(out, X_OK) == 0)
        return true;
      p += dl + (colon ? 1 : 0);
    }
  }
  return false;
}

static int setup(void **state) {
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  if (!find_chromium(f->chromium, sizeof f->chromium))
    f->chromium[0] = '\0';
  *state = f;
  return 0;
}

/* Runs headless Chromium on the page with one more flag (--dump-dom or
 * --screenshot=...); its output goes to log. Returns its exit status. */
static int browse(fixture_t *f, const char *page, const char *what,
                  const char *log) {
  char url[700], profile[600];
  snprintf(url, sizeof url, "file://%s", page);
  snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium-profile",
           f->dir);
  char *argv[] = {f->chromium,
                  "--headless",
                  "--no-sandbox",
                  "--disable-gpu",
                  "--disable-quic",
                  "--no-first-run",
                  "--disable-background-networking",
                  "--disable-component-update",
                  "--disable-sync",
                  "--hide-scrollbars",
                  "--window-size=1400,2400",
                  profile,
                  (char *)what,
                  url,
                  NULL};
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  int status = -1;
  assert_int_equal(harness_wait(p, BROWSER_TIMEOUT_MS, &status), 0);
  harness_stop(&p);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

/* The chart with this id in the dumped DOM: its start, and its end in
 * *end (NULL when unterminated); NULL when it is not there. */
static const char *find_chart(const char *dom, const char *chart_id,
                              const char **end) {
  char key[64];
  snprintf(key, sizeof key, "id=\"%s\"", chart_id);
  const char *start = strstr(dom, key);
  *end = start ? strstr(start, "</svg>") : NULL;
  return start;
}

/* Drawn paths in the dumped DOM: "series" paths whose d has 2+ points. */
static int drawn_paths(const char *dom, const char *chart_id) {
  const char *end, *start = find_chart(dom, chart_id, &end);
  if (!start)
    return -1;
  int n = 0;
  for (const char *p = strstr(start, "class=\"series\"");
       p && (!end || p < end); p = strstr(p + 1, "class=\"series\"")) {
    const char *d = strstr(p, " d=\"M");
    const char *q = d ? strchr(d + 5, '"') : NULL;
    if (d && q && memchr(d, 'L', (size_t)(q - d)))
      n++;
  }
  return n;
}

/* Pixels of a screenshot near each of the given colors. */
typedef struct swatch {
  const char *name;
  uint8_t rgb[3];
  long pixels;
} swatch_t;

static void count_colors(const char *png, swatch_t *s, size_t n,
                         long *non_white, long *total) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  assert_true(png_image_begin_read_from_file(&img, png));
  img.format = PNG_FORMAT_RGB;
  size_t size = PNG_IMAGE_SIZE(img);
  uint8_t *px = malloc(size);
  assert_non_null(px);
  assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
  *total = (long)img.width * img.height;
  *non_white = 0;
  for (long i = 0; i < *total; i++) {
    const uint8_t *p = px + 3 * i;
    if (p[0] < 235 || p[1] < 235 || p[2] < 235)
      (*non_white)++;
    for (size_t k = 0; k < n; k++)
      if (abs(p[0] - s[k].rgb[0]) <= 24 && abs(p[1] - s[k].rgb[1]) <= 24 &&
          abs(p[2] - s[k].rgb[2]) <= 24)
        s[k].pixels++;
  }
  free(px);
  png_image_free(&img);
}

/* Marker lines in a chart of the dumped DOM. */
static int markers_in(const char *dom, const char *chart_id) {
  const char *end, *start = find_chart(dom, chart_id, &end);
  if (!start)
    return -1;
  int n = 0;
  for (const char *p = strstr(start, "class=\"marker\"");
       p && (!end || p < end); p = strstr(p + 1, "class=\"marker\""))
    n++;
  return n;
}

/* The settings block as the browser built it, copied out. */
static char *settings_block(const char *dom) {
  const char *start = strstr(dom, "<section id=\"settings\">");
  if (!start)
    return NULL;
  const char *end = strstr(start, "</section>");
  return end ? strndup(start, (size_t)(end - start)) : NULL;
}

static void test_fixture_renders(void **state) {
  fixture_t *f = *state;
  if (!f->chromium[0])
    skip();
  char page[600], dom[600], shot[600], shot_arg[640], log[600];
  snprintf(page, sizeof page, "%s/report.html", f->dir);
  snprintf(dom, sizeof dom, "%s/dom.html", f->dir);
  snprintf(shot, sizeof shot, "%s/report.png", f->dir);
  snprintf(shot_arg, sizeof shot_arg, "--screenshot=%s", shot);
  snprintf(log, sizeof log, "%s/chromium.log", f->dir);
  report_t *r = fixture_report();
  assert_int_equal(report_html_write(r, "fixture", page), 0);
  report_destroy(&r);

  /* The DOM as the browser built it: every chart, every series drawn. */
  assert_int_equal(browse(f, page, "--dump-dom", dom), 0);
  char *text = harness_read_file(dom);
  assert_non_null(text);
  assert_int_equal(count(text, "<svg class=\"plot\""), 14);
  assert_int_equal(drawn_paths(text, "plot-ttft-cdf"), 4);
  assert_int_equal(drawn_paths(text, "plot-tpot-cdf"), 4);
  assert_int_equal(drawn_paths(text, "plot-e2e-cdf"), 4);
  /* Each class's SLO target on the TTFT and TPOT CDFs. */
  assert_int_equal(markers_in(text, "plot-ttft-cdf"), 3);
  assert_int_equal(markers_in(text, "plot-tpot-cdf"), 3);
  assert_non_null(strstr(text, "data-label=\"batch SLO 200 ms\""));
  assert_int_equal(drawn_paths(text, "plot-worker-busy"), 6);
  assert_int_equal(drawn_paths(text, "plot-worker-requests"), 6);
  assert_int_equal(drawn_paths(text, "plot-cost-time"), 3);
  char *set = settings_block(text);
  assert_non_null(set);
  assert_non_null(strstr(set, "seed"));
  assert_non_null(strstr(set, "2 gpu-h100, 2 sram-wse3, 2 tpu-v6e"));
  assert_non_null(strstr(set, "30000:200"));
  free(set);
  assert_int_equal(drawn_paths(text, "plot-throughput"), 4);
  assert_int_equal(drawn_paths(text, "plot-tokens"), 1);
  assert_int_equal(drawn_paths(text, "plot-queue"), 4);
  /* 3 + 3 + 3, 7 phases and 5 parts with a cost. */
  assert_int_equal(count(text, "class=\"bar\""), 21);
  assert_int_equal(count(text, "no-data"), 0);
  free(text);

  /* The pixels: each class's color and the queue's are on the page. */
  assert_int_equal(browse(f, page, shot_arg, log), 0);
  swatch_t s[] = {{"interactive", {0x1f, 0x77, 0xb4}, 0},
                  {"agent", {0xff, 0x7f, 0x0e}, 0},
                  {"batch", {0x2c, 0xa0, 0x2c}, 0},
                  {"scheduler queue / sram", {0xd6, 0x27, 0x28}, 0},
                  {"worker queues / gpu", {0x94, 0x67, 0xbd}, 0}};
  long non_white, total;
  count_colors(shot, s, sizeof s / sizeof *s, &non_white, &total);
  print_message("%ld of %ld pixels not background\n", non_white, total);
  for (size_t k = 0; k < sizeof s / sizeof *s; k++) {
    print_message("%-24s %ld pixels\n", s[k].name, s[k].pixels);
    assert_true(s[k].pixels > 400);
  }
  assert_true(non_white > total / 20);
}

/* --- end to end --- */

static double num(const cJSON *root, const char *path) {
  char key[64];
  const cJSON *o = root;
  const char *p = path;
  while (o && *p) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    snprintf(key, sizeof key, "%.*s", (int)len, p);
    o = cJSON_GetObjectItemCaseSensitive(o, key);
    p += len + (dot ? 1 : 0);
  }
  if (!cJSON_IsNumber(o))
    fail_msg("%s: not a number", path);
  return o->valuedouble;
}

/* Whether this infsched-cluster takes --http (the scheduler's HTTP API). */
static bool cluster_has_http(fixture_t *f) {
  char log[600];
  snprintf(log, sizeof log, "%s/cluster-help.log", f->dir);
  char *argv[] = {(char *)harness_bin("infsched-cluster"), "--help", NULL};
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  assert_int_equal(harness_wait(p, EVENT_TIMEOUT_MS, NULL), 0);
  harness_stop(&p);
  return harness_count_log(log, "--http") > 0;
}

static void test_loadgen_codex_report(void **state) {
  fixture_t *f = *state;
  char clients[64], workers[64], log[600], lg_log[600], json[600], html[600];
  char spec[700];
  int cport = harness_free_port(), wport;
  do
    wport = harness_free_port();
  while (wport == cport && cport > 0);
  assert_true(cport > 0 && wport > 0);
  snprintf(clients, sizeof clients, "tcp://127.0.0.1:%d", cport);
  snprintf(workers, sizeof workers, "tcp://127.0.0.1:%d", wport);
  snprintf(log, sizeof log, "%s/cluster.log", f->dir);
  snprintf(lg_log, sizeof lg_log, "%s/loadgen.log", f->dir);
  snprintf(json, sizeof json, "%s/run.json", f->dir);
  snprintf(html, sizeof html, "%s/run.html", f->dir);
  snprintf(spec, sizeof spec, "codex:%s",
           harness_source("configs/workloads/codex.yaml"));

  /* No HTTP listener: its fixed default port would collide with other
   * tests' schedulers. */
  char *cluster[] = {(char *)harness_bin("infsched-cluster"),
                     "up",
                     (char *)harness_source("configs/local.yaml"),
                     "--clients",
                     clients,
                     "--workers",
                     workers,
                     cluster_has_http(f) ? "--http" : NULL,
                     "off",
                     NULL};
  harness_proc_t *c = harness_spawn(log, cluster);
  assert_non_null(c);
  if (harness_wait_log(log, "cluster ready", EVENT_TIMEOUT_MS) != 0)
    fail_msg("cluster not ready; see %s", log);

  /* Short human gaps and a 32K window: several turns per session in a few
   * seconds, and every call fits every worker. Outputs are capped so that
   * the drain stays short on the slowest (TPU) workers. */
  char *loadgen[] = {(char *)harness_bin("infsched-loadgen"),
                     "--scheduler",
                     clients,
                     "--workload",
                     spec,
                     "--sessions",
                     "6",
                     "--think-time",
                     "lognormal:1500:0.5:200:5000",
                     "--tool-time",
                     "lognormal:200:1:10:2000",
                     "--max-context",
                     "32768",
                     "--set",
                     "answer_tokens=lognormal:184:1.27:8:400",
                     "--set",
                     "job_output_tokens=lognormal:300:0.5:32:400",
                     "--duration",
                     "10",
                     "--drain",
                     "60",
                     "--seed",
                     "3",
                     "--report-json",
                     json,
                     "--report-html",
                     html,
                     NULL};
  harness_proc_t *lg = harness_spawn(lg_log, loadgen);
  assert_non_null(lg);
  int status = -1;
  assert_int_equal(harness_wait(lg, LOADGEN_TIMEOUT_MS, &status), 0);
  harness_stop(&lg);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("loadgen failed (status %d); see %s", status, lg_log);
  harness_stop(&c);

  cJSON *j = harness_read_json(json);
  assert_non_null(j);
  double sent = num(j, "requests.sent");
  print_message("codex: %.0f sent, %.0f completed, %.1f%% of prompt tokens "
                "cached\n",
                sent, num(j, "requests.completed"),
                100 * num(j, "tokens.cached") / num(j, "tokens.prompt"));
  assert_true(sent >= 12); /* 6 sessions, several calls each */
  assert_true(num(j, "requests.lost") == 0);
  assert_true(num(j, "requests.completed") == sent);
  assert_true(num(j, "by_class.agent.requests.completed") > 0);
  /* Cache reuse is real: later calls repeat earlier blocks. */
  assert_true(num(j, "tokens.cached") > 0);
  cJSON_Delete(j);

  char *page = harness_read_file(html);
  assert_non_null(page);
  assert_non_null(strstr(page, "codex:"));
  free(page);
  if (!f->chromium[0])
    skip();
  char dom[600];
  snprintf(dom, sizeof dom, "%s/run-dom.html", f->dir);
  assert_int_equal(browse(f, html, "--dump-dom", dom), 0);
  char *text = harness_read_file(dom);
  assert_non_null(text);
  assert_int_equal(count(text, "<svg class=\"plot\""), 14);
  assert_true(drawn_paths(text, "plot-ttft-cdf") >= 2);
  assert_true(drawn_paths(text, "plot-tpot-cdf") >= 2);
  assert_true(markers_in(text, "plot-ttft-cdf") >= 1);
  assert_true(markers_in(text, "plot-tpot-cdf") >= 1);
  assert_int_equal(drawn_paths(text, "plot-worker-busy"), 6);
  assert_true(drawn_paths(text, "plot-cost-time") >= 3);
  char *set = settings_block(text);
  assert_non_null(set);
  assert_non_null(strstr(set, "<dd>3</dd>")); /* --seed 3 */
  assert_non_null(strstr(set, "2 gpu-h100"));
  assert_non_null(strstr(set, "codex:"));
  free(set);
  assert_true(drawn_paths(text, "plot-throughput") >= 2);
  assert_int_equal(drawn_paths(text, "plot-queue"), 4);
  assert_true(count(text, "class=\"bar\"") >= 4);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fixture_renders, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_loadgen_codex_report, setup,
                                      harness_fixture_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
