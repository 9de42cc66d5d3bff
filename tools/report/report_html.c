#include "report_html.h"

#include "plot_svg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One color per request class and per worker class, the same on every
 * chart. */
static const char *const class_color[INFS_CLASS_COUNT] = {"#1f77b4", "#ff7f0e",
                                                          "#2ca02c"};
#define ALL_COLOR "#222222"
static const char *const worker_color[INFS_WORKER_CLASS_COUNT] = {
    "#9467bd", "#d62728", "#17becf"};

/* Points per CDF and bins per rate chart: enough to read, small enough to
 * keep an hour-long simulation's page light. */
#define CDF_POINTS 240
#define MAX_BINS 300
#define MAX_SAMPLES 1200

static const char *const style =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "margin:24px auto;max-width:1360px;padding:0 12px;color:#222;"
    "background:#fafafa}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}"
    ".sub{color:#555;margin:0 0 16px}"
    ".cards{display:flex;flex-wrap:wrap;gap:10px;margin:0;padding:0}"
    ".card{background:#fff;border:1px solid #ddd;border-radius:6px;"
    "padding:8px 14px;min-width:120px}"
    ".card dt{font-size:12px;color:#666}.card dd{margin:2px 0 0;"
    "font-size:20px;font-weight:600}.card dd.bad{color:#c62828}"
    ".plots{display:grid;grid-template-columns:repeat(auto-fill,660px);"
    "gap:16px}"
    "figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;"
    "padding:8px}figcaption{font-size:13px;color:#444;padding:4px 6px 2px;"
    "max-width:630px}"
    ".settings{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(300px,1fr));gap:6px 16px;background:#fff;border:1px solid #ddd;"
    "border-radius:6px;padding:10px 14px;margin:0}"
    ".settings dt{font-size:12px;color:#666}.settings dd{margin:0;"
    "font-family:ui-monospace,monospace;font-size:13px;overflow-wrap:anywhere}"
    "pre{background:#fff;border:1px solid #ddd;border-radius:6px;"
    "padding:12px;overflow-x:auto;font-size:13px}";

/* --- reading the JSON --- */

static double jnum(const cJSON *o, const char *path) {
  char key[64];
  const char *p = path;
  while (o && *p) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (len >= sizeof key)
      return NAN;
    memcpy(key, p, len);
    key[len] = '\0';
    o = cJSON_GetObjectItemCaseSensitive(o, key);
    p += len + (dot ? 1 : 0);
  }
  return cJSON_IsNumber(o) ? o->valuedouble : NAN;
}

/* --- the header --- */

static void card(FILE *out, const char *name, const char *value, bool bad) {
  fprintf(out, "<div class=\"card\"><dt>%s</dt><dd%s>%s</dd></div>\n", name,
          bad ? " class=\"bad\"" : "", value);
}

static void cards(FILE *out, const cJSON *j) {
  char v[64];
  fputs("<dl class=\"cards\">\n", out);
  snprintf(v, sizeof v, "%.0f", jnum(j, "requests.sent"));
  card(out, "sent", v, false);
  snprintf(v, sizeof v, "%.0f", jnum(j, "requests.completed"));
  card(out, "completed", v, false);
  double errors = jnum(j, "requests.failed") + jnum(j, "requests.rejected");
  snprintf(v, sizeof v, "%.0f", errors);
  card(out, "failed + rejected", v, errors > 0);
  double lost = jnum(j, "requests.lost");
  snprintf(v, sizeof v, "%.0f", lost);
  card(out, "lost", v, lost > 0);
  snprintf(v, sizeof v, "%.1f%%", 100 * jnum(j, "slo_attainment"));
  card(out, "SLO met", v, false);
  snprintf(v, sizeof v, "%.0f / %.0f ms", jnum(j, "latency_ms.ttft.p50"),
           jnum(j, "latency_ms.ttft.p99"));
  card(out, "TTFT p50 / p99", v, false);
  snprintf(v, sizeof v, "%.0f / %.0f ms", jnum(j, "latency_ms.e2e.p50"),
           jnum(j, "latency_ms.e2e.p99"));
  card(out, "end to end p50 / p99", v, false);
  snprintf(v, sizeof v, "%.2f req/s", jnum(j, "throughput.req_per_s"));
  card(out, "throughput", v, false);
  /* Prompt tokens dwarf generated ones in agent traffic: each is its own
   * figure, and cached prompt tokens are not work done. */
  double secs = jnum(j, "window_s");
  double prompt = jnum(j, "tokens.prompt"), cached = jnum(j, "tokens.cached");
  snprintf(v, sizeof v, "%.0f tok/s", secs > 0 ? prompt / secs : 0.0);
  card(out, "prompt", v, false);
  snprintf(v, sizeof v, "%.0f tok/s (%.1f%%)", secs > 0 ? cached / secs : 0.0,
           prompt > 0 ? 100 * cached / prompt : 0.0);
  card(out, "of which cached", v, false);
  snprintf(v, sizeof v, "%.0f tok/s",
           jnum(j, "throughput.generated_tok_per_s"));
  card(out, "generated", v, false);
  snprintf(v, sizeof v, "$%.4f", jnum(j, "cost.usd_total"));
  card(out, "cost", v, false);
  snprintf(v, sizeof v, "$%.4f", jnum(j, "cost.usd_per_mtok"));
  card(out, "per M tokens", v, false);
  fputs("</dl>\n", out);
}

/* --- charts --- */

/* Series of a class, or of all of them for cls < 0. */
static const char *series_name(int cls) {
  return cls < 0 ? "all" : infs_class_name((infs_class_t)cls);
}

static const char *series_color(int cls) {
  return cls < 0 ? ALL_COLOR : class_color[cls];
}

static void figure_open(FILE *out) {
  fputs("<figure>\n", out);
}

static void figure_close(FILE *out, const char *caption) {
  fprintf(out, "<figcaption>%s</figcaption>\n</figure>\n", caption);
}

typedef struct buf {
  double *x;
  double *y;
} buf_t;

static int buf_alloc(buf_t *b, size_t n) {
  b->x = calloc(n ? n : 1, sizeof *b->x);
  b->y = calloc(n ? n : 1, sizeof *b->y);
  return b->x && b->y ? 0 : -ENOMEM;
}

static void buf_free(buf_t *b) {
  free(b->x);
  free(b->y);
}

/* A latency CDF per class and for all, from the histograms' quantiles;
 * TTFT and TPOT carry each class's target as a marker (TTFT's for a prompt
 * with nothing to prefill: a request's own grows with its uncached
 * tokens). */
static int cdf_chart(FILE *out, const report_t *r, report_metric_t m,
                     const char *id, const char *title) {
  buf_t b[INFS_CLASS_COUNT + 1] = {{0}};
  plot_series_t s[INFS_CLASS_COUNT + 1];
  plot_marker_t marks[INFS_CLASS_COUNT];
  char labels[INFS_CLASS_COUNT][48];
  size_t n_marks = 0;
  int rc = 0;
  for (int c = 0; c < INFS_CLASS_COUNT && m != REPORT_E2E; c++) {
    slo_t slo;
    if (!report_class_slo(r, c, &slo))
      continue;
    slo_targets_t t = slo_targets(&slo, 0);
    double target = m == REPORT_TTFT ? t.ttft_ms : t.tpot_ms;
    if (!(target > 0))
      continue;
    snprintf(labels[n_marks], sizeof labels[n_marks], "%s SLO %g ms",
             infs_class_name((infs_class_t)c), target);
    marks[n_marks] = (plot_marker_t){target, class_color[c], labels[n_marks]};
    n_marks++;
  }
  /* The classes first, the total last and dashed so that it shows over the
   * class that makes most of it. */
  for (int c = 0; c <= INFS_CLASS_COUNT; c++) {
    int cls = c < INFS_CLASS_COUNT ? c : -1;
    buf_t *bb = &b[c];
    if ((rc = buf_alloc(bb, CDF_POINTS + 1)))
      goto out;
    const hist_t *h = report_latency(r, cls, m);
    size_t n = 0;
    if (hist_count(h)) {
      for (int i = 0; i <= CDF_POINTS; i++) {
        double q = (double)i / CDF_POINTS;
        uint64_t us = i == 0 ? hist_min(h) : hist_quantile(h, q);
        bb->x[n] = fmax((double)us / 1000.0, 0.001);
        bb->y[n++] = q;
      }
    }
    s[c] = (plot_series_t){.name = series_name(cls),
                           .color = series_color(cls),
                           .x = bb->x,
                           .y = bb->y,
                           .n = n,
                           .dashed = cls < 0};
  }
  plot_lines_t p = {.id = id,
                    .title = title,
                    .x_label = "latency (log scale)",
                    .y_label = "fraction of completed requests",
                    .x_unit = PLOT_UNIT_MS,
                    .log_x = true,
                    .y_from_0 = true,
                    .y_fixed_max = 1,
                    .markers = marks,
                    .n_markers = n_marks};
  plot_svg_lines(out, &p, s, INFS_CLASS_COUNT + 1);
out:
  for (int i = 0; i <= INFS_CLASS_COUNT; i++)
    buf_free(&b[i]);
  return rc;
}

/* Seconds per bin so that a long run still has at most MAX_BINS bins. */
static size_t bin_width(size_t seconds) {
  return seconds <= MAX_BINS ? 1 : (seconds + MAX_BINS - 1) / MAX_BINS;
}

static int rate_chart(FILE *out, const report_t *r) {
  const report_second_t *tl;
  size_t secs = report_timeline(r, &tl);
  size_t w = bin_width(secs), bins = (secs + w - 1) / w;
  buf_t b[INFS_CLASS_COUNT + 1] = {{0}};
  plot_series_t s[INFS_CLASS_COUNT + 1];
  int rc = 0;
  for (int k = 0; k <= INFS_CLASS_COUNT; k++) {
    int c = k < INFS_CLASS_COUNT ? k : -1; /* the total last, as above */
    buf_t *bb = &b[k];
    if ((rc = buf_alloc(bb, bins)))
      goto out;
    uint64_t any = 0;
    for (size_t i = 0; i < bins; i++) {
      uint64_t n = 0;
      for (size_t k = i * w; k < (i + 1) * w && k < secs; k++)
        for (int cc = 0; cc < INFS_CLASS_COUNT; cc++)
          if (c < 0 || c == cc)
            n += tl[k].completed[cc];
      bb->x[i] = (double)(i * w);
      bb->y[i] = (double)n / (double)w;
      any += n;
    }
    s[k] = (plot_series_t){.name = series_name(c),
                           .color = series_color(c),
                           .x = bb->x,
                           .y = bb->y,
                           .n = c >= 0 && any == 0 ? 0 : bins,
                           .dashed = c < 0};
  }
  plot_lines_t p = {.id = "plot-throughput",
                    .title = "Completed requests per second",
                    .x_label = "time since the start (s)",
                    .y_label = "requests/s",
                    .y_from_0 = true,
                    .step = true};
  plot_svg_lines(out, &p, s, INFS_CLASS_COUNT + 1);
out:
  for (int i = 0; i <= INFS_CLASS_COUNT; i++)
    buf_free(&b[i]);
  return rc;
}

static int token_chart(FILE *out, const report_t *r) {
  const report_second_t *tl;
  size_t secs = report_timeline(r, &tl);
  size_t w = bin_width(secs), bins = (secs + w - 1) / w;
  buf_t b;
  int rc = buf_alloc(&b, bins);
  if (rc == 0) {
    for (size_t i = 0; i < bins; i++) {
      double n = 0;
      for (size_t k = i * w; k < (i + 1) * w && k < secs; k++)
        n += tl[k].produced_tokens;
      b.x[i] = (double)(i * w);
      b.y[i] = n / (double)w;
    }
    plot_series_t s = {"generated", ALL_COLOR, b.x, b.y, bins, false};
    plot_lines_t p = {.id = "plot-tokens",
                      .title = "Generated tokens per second",
                      .x_label = "time since the start (s)",
                      .y_label = "tokens/s",
                      .y_from_0 = true,
                      .step = true};
    plot_svg_lines(out, &p, &s, 1);
  }
  buf_free(&b);
  return rc;
}

static int queue_chart(FILE *out, const report_t *r) {
  const report_sample_t *sm;
  size_t n = report_samples(r, &sm);
  size_t stride = n <= MAX_SAMPLES ? 1 : (n + MAX_SAMPLES - 1) / MAX_SAMPLES;
  size_t m = (n + stride - 1) / stride;
  static const char *const names[] = {"scheduler queue", "worker queues",
                                      "running", "open (client)"};
  static const char *const colors[] = {"#d62728", "#9467bd", "#2ca02c",
                                       "#1f77b4"};
  buf_t b[4] = {{0}};
  plot_series_t s[4];
  int rc = 0;
  for (int k = 0; k < 4; k++) {
    if ((rc = buf_alloc(&b[k], m)))
      goto out;
    for (size_t i = 0; i < m; i++) {
      const report_sample_t *x = &sm[i * stride];
      uint32_t v = k == 0   ? x->queued
                   : k == 1 ? x->worker_queued
                   : k == 2 ? x->running
                            : x->open;
      b[k].x[i] = (double)x->t / 1e6;
      b[k].y[i] = v;
    }
    s[k] = (plot_series_t){names[k], colors[k], b[k].x, b[k].y, m, false};
  }
  plot_lines_t p = {.id = "plot-queue",
                    .title = "Queue depth and requests in flight",
                    .x_label = "time since the start (s)",
                    .y_label = "requests",
                    .y_from_0 = true,
                    .step = true};
  plot_svg_lines(out, &p, s, 4);
out:
  for (int k = 0; k < 4; k++)
    buf_free(&b[k]);
  return rc;
}

static void class_cost_chart(FILE *out, const cJSON *j) {
  plot_bar_t bars[INFS_CLASS_COUNT];
  char notes[INFS_CLASS_COUNT][48];
  size_t n = 0;
  const cJSON *by = cJSON_GetObjectItemCaseSensitive(j, "by_class");
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    const char *name = infs_class_name((infs_class_t)c);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(by, name);
    if (!(jnum(o, "requests.completed") > 0))
      continue;
    snprintf(notes[n], sizeof notes[n], "$%.4f per M tokens",
             jnum(o, "cost.usd_per_mtok"));
    bars[n] =
        (plot_bar_t){name, class_color[c], jnum(o, "cost.usd_total"), notes[n]};
    n++;
  }
  plot_svg_bars(out, "plot-cost-class",
                "Cost by request class (marginal, from Done)", "USD",
                PLOT_UNIT_USD, bars, n);
}

/* SLO attainment by class, with the JSON's miss breakdown (slo_missed) in
 * each bar's note. */
static void slo_chart(FILE *out, const cJSON *j) {
  plot_bar_t bars[INFS_CLASS_COUNT];
  char notes[INFS_CLASS_COUNT][64];
  size_t n = 0;
  const cJSON *by = cJSON_GetObjectItemCaseSensitive(j, "by_class");
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    const char *name = infs_class_name((infs_class_t)c);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(by, name);
    if (!(jnum(o, "requests.sent") > 0))
      continue;
    snprintf(notes[n], sizeof notes[n],
             "missed: %.0f TTFT, %.0f TPOT, %.0f both",
             jnum(o, "slo_missed.ttft"), jnum(o, "slo_missed.tpot"),
             jnum(o, "slo_missed.both"));
    bars[n] = (plot_bar_t){name, class_color[c],
                           100 * jnum(o, "slo_attainment"), notes[n]};
    n++;
  }
  plot_svg_bars(out, "plot-slo-class", "SLO attainment by request class",
                "% of requests sent", PLOT_UNIT_NONE, bars, n);
}

static void worker_cost_chart(FILE *out, const cJSON *j) {
  double pool[INFS_WORKER_CLASS_COUNT] = {0},
         req[INFS_WORKER_CLASS_COUNT] = {0};
  double busy[INFS_WORKER_CLASS_COUNT] = {0};
  int count[INFS_WORKER_CLASS_COUNT] = {0},
      util_n[INFS_WORKER_CLASS_COUNT] = {0};
  bool any_pool = false;
  const cJSON *w;
  cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(j, "workers")) {
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(w, "class");
    infs_worker_class_t c;
    if (!cJSON_IsString(cls) || infs_worker_class_parse(cls->valuestring, &c))
      continue;
    count[c]++;
    double cost = jnum(w, "cost_usd");
    if (isfinite(cost)) {
      pool[c] += cost;
      any_pool = true;
    }
    double rc = jnum(w, "request_cost_usd");
    if (isfinite(rc))
      req[c] += rc;
    double u = jnum(w, "utilization");
    if (isfinite(u)) {
      busy[c] += u;
      util_n[c]++;
    }
  }
  plot_bar_t bars[INFS_WORKER_CLASS_COUNT];
  char notes[INFS_WORKER_CLASS_COUNT][48];
  size_t n = 0;
  for (int c = 0; c < INFS_WORKER_CLASS_COUNT; c++) {
    if (!count[c])
      continue;
    if (util_n[c])
      snprintf(notes[n], sizeof notes[n], "%d worker%s, %.0f%% busy", count[c],
               count[c] == 1 ? "" : "s", 100 * busy[c] / util_n[c]);
    else
      snprintf(notes[n], sizeof notes[n], "%d worker%s", count[c],
               count[c] == 1 ? "" : "s");
    bars[n] =
        (plot_bar_t){infs_worker_class_name((infs_worker_class_t)c),
                     worker_color[c], any_pool ? pool[c] : req[c], notes[n]};
    n++;
  }
  plot_svg_bars(out, "plot-cost-worker",
                any_pool ? "Cost by worker class (pool, from heartbeats)"
                         : "Cost by worker class (sum of request costs)",
                "USD", PLOT_UNIT_USD, bars, n);
}

/* Mean time of each phase on the workers, for requests run whole and for
 * those split between a prefill and a decode worker. */
static void phase_chart(FILE *out, const cJSON *j) {
  static const char *const kinds[] = {"whole", "split"};
  static const char *const phases[] = {"queue", "prefill", "transfer",
                                       "decode"};
  /* Apart from the class and worker-class colors. */
  static const char *const colors[] = {"#7f7f7f", "#8c564b", "#e377c2",
                                       "#bcbd22"};
  plot_bar_t bars[8];
  char labels[8][32], notes[8][48];
  size_t n = 0;
  const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "phases");
  for (int k = 0; k < 2; k++) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(ph, kinds[k]);
    double requests = jnum(o, "requests");
    if (!(requests > 0))
      continue;
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(o, "latency_ms");
    for (int p = 0; p < 4; p++) {
      const cJSON *q = cJSON_GetObjectItemCaseSensitive(lat, phases[p]);
      if (!q)
        continue;
      snprintf(labels[n], sizeof labels[n], "%s %s", kinds[k], phases[p]);
      snprintf(notes[n], sizeof notes[n], "p99 %.1f ms, %.0f requests",
               jnum(q, "p99"), requests);
      bars[n] = (plot_bar_t){labels[n], colors[p], jnum(q, "mean"), notes[n]};
      n++;
    }
  }
  plot_svg_bars(out, "plot-phases", "Where requests' time went (mean)", "ms",
                PLOT_UNIT_MS, bars, n);
}

/* Marginal cost by worker class and the part its workers played: the
 * prefill or decode side of split requests, or whole ones. */
static void phase_cost_chart(FILE *out, const cJSON *j) {
  static const char *const parts[] = {"prefill", "decode", "whole"};
  plot_bar_t bars[3 * INFS_WORKER_CLASS_COUNT];
  char labels[3 * INFS_WORKER_CLASS_COUNT][32],
      notes[3 * INFS_WORKER_CLASS_COUNT][32];
  size_t n = 0;
  const cJSON *by = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(j, "phases"), "cost_by_worker_class");
  const cJSON *c;
  cJSON_ArrayForEach(c, by) {
    infs_worker_class_t wc;
    if (infs_worker_class_parse(c->string, &wc))
      continue;
    for (int p = 0; p < 3; p++) {
      const cJSON *o = cJSON_GetObjectItemCaseSensitive(c, parts[p]);
      double requests = jnum(o, "requests");
      if (!(requests > 0) || n == sizeof bars / sizeof *bars)
        continue;
      snprintf(labels[n], sizeof labels[n], "%s %s", c->string, parts[p]);
      snprintf(notes[n], sizeof notes[n], "%.0f requests", requests);
      bars[n] =
          (plot_bar_t){labels[n], worker_color[wc], jnum(o, "usd"), notes[n]};
      n++;
    }
  }
  plot_svg_bars(out, "plot-cost-phase",
                "Cost by worker class and part (marginal, from Done)", "USD",
                PLOT_UNIT_USD, bars, n);
}

/* --- per worker, over time --- */

/* Each worker's samples, in order: idx[i][k] is the k-th sample of worker
 * i in report_worker_samples. */
typedef struct by_worker {
  size_t workers;
  size_t *n;
  size_t **idx;
} by_worker_t;

static int by_worker_split(const report_t *r, by_worker_t *bw) {
  const report_wsample_t *ws;
  size_t n = report_worker_samples(r, &ws);
  bw->workers = report_worker_count(r);
  bw->n = calloc(bw->workers ? bw->workers : 1, sizeof *bw->n);
  bw->idx = calloc(bw->workers ? bw->workers : 1, sizeof *bw->idx);
  if (!bw->n || !bw->idx)
    return -ENOMEM;
  for (size_t k = 0; k < n; k++)
    bw->n[ws[k].worker]++;
  for (size_t i = 0; i < bw->workers; i++) {
    if (!(bw->idx[i] = calloc(bw->n[i] ? bw->n[i] : 1, sizeof **bw->idx)))
      return -ENOMEM;
    bw->n[i] = 0;
  }
  for (size_t k = 0; k < n; k++)
    bw->idx[ws[k].worker][bw->n[ws[k].worker]++] = k;
  return 0;
}

static void by_worker_free(by_worker_t *bw) {
  for (size_t i = 0; bw->idx && i < bw->workers; i++)
    free(bw->idx[i]);
  free(bw->idx);
  free(bw->n);
}

static const char *wclass_color(const char *cls) {
  infs_worker_class_t c;
  return infs_worker_class_parse(cls, &c) ? ALL_COLOR : worker_color[c];
}

typedef enum wchart { WCHART_BUSY, WCHART_OUTSTANDING } wchart_t;

/* One line per worker in its class's color: its busy share between
 * consecutive samples, or its requests in flight. */
static int worker_chart(FILE *out, const report_t *r, wchart_t what) {
  const report_wsample_t *ws;
  report_worker_samples(r, &ws);
  by_worker_t bw = {0};
  int rc = by_worker_split(r, &bw);
  buf_t *b = calloc(bw.workers ? bw.workers : 1, sizeof *b);
  plot_series_t *s = calloc(bw.workers ? bw.workers : 1, sizeof *s);
  if (rc || !b || !s) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < bw.workers; i++) {
    size_t n = bw.n[i];
    size_t stride = n <= MAX_SAMPLES ? 1 : (n + MAX_SAMPLES - 1) / MAX_SAMPLES;
    if ((rc = buf_alloc(&b[i], n / stride + 1)))
      goto out;
    size_t m = 0;
    for (size_t k = what == WCHART_BUSY ? stride : 0; k < n; k += stride) {
      const report_wsample_t *x = &ws[bw.idx[i][k]];
      double y = x->outstanding;
      if (what == WCHART_BUSY) {
        const report_wsample_t *p = &ws[bw.idx[i][k - stride]];
        double dt = (double)(x->t - p->t) / 1e6;
        if (!(dt > 0))
          continue;
        y = fmin(1, fmax(0, (x->busy_s - p->busy_s) / dt));
      }
      b[i].x[m] = (double)x->t / 1e6;
      b[i].y[m++] = y;
    }
    const char *id, *cls;
    report_worker_name(r, i, &id, &cls);
    s[i] = (plot_series_t){id, wclass_color(cls), b[i].x, b[i].y, m, false};
  }
  plot_lines_t p = {
      .id = what == WCHART_BUSY ? "plot-worker-busy" : "plot-worker-requests",
      .title = what == WCHART_BUSY ? "Utilisation per worker"
                                   : "Requests in flight per worker",
      .x_label = "time since the start (s)",
      .y_label = what == WCHART_BUSY ? "busy share" : "requests",
      .y_from_0 = true,
      .y_fixed_max = what == WCHART_BUSY ? 1 : 0,
      .step = what == WCHART_OUTSTANDING};
  plot_svg_lines(out, &p, s, bw.workers);
out:
  for (size_t i = 0; b && i < bw.workers; i++)
    buf_free(&b[i]);
  free(b);
  free(s);
  by_worker_free(&bw);
  return rc;
}

/* Cumulative cost by worker class: at each poll, the sum over its workers
 * of what their cost counters gained since each was first seen. */
static int cost_time_chart(FILE *out, const report_t *r) {
  const report_wsample_t *ws;
  size_t n = report_worker_samples(r, &ws), workers = report_worker_count(r);
  double *base = calloc(workers ? workers : 1, sizeof *base);
  double *last = calloc(workers ? workers : 1, sizeof *last);
  int *wcls = calloc(workers ? workers : 1, sizeof *wcls);
  buf_t b[INFS_WORKER_CLASS_COUNT] = {{0}};
  size_t m[INFS_WORKER_CLASS_COUNT] = {0};
  bool seen_cls[INFS_WORKER_CLASS_COUNT] = {false};
  int rc = base && last && wcls ? 0 : -ENOMEM;
  for (int c = 0; rc == 0 && c < INFS_WORKER_CLASS_COUNT; c++)
    rc = buf_alloc(&b[c], n);
  if (rc)
    goto out;
  for (size_t i = 0; i < workers; i++) {
    const char *id, *cls;
    infs_worker_class_t c;
    report_worker_name(r, i, &id, &cls);
    wcls[i] = infs_worker_class_parse(cls, &c) ? -1 : (int)c;
    base[i] = NAN;
  }
  for (size_t k = 0; k < n; k++) {
    const report_wsample_t *x = &ws[k];
    if (isnan(base[x->worker]))
      base[x->worker] = x->cost_usd;
    last[x->worker] = x->cost_usd;
    if (wcls[x->worker] >= 0)
      seen_cls[wcls[x->worker]] = true;
    /* A poll's samples share their t: sum once it is complete. */
    if (k + 1 < n && ws[k + 1].t == x->t)
      continue;
    double sum[INFS_WORKER_CLASS_COUNT] = {0};
    for (size_t i = 0; i < workers; i++)
      if (wcls[i] >= 0 && !isnan(base[i]))
        sum[wcls[i]] += last[i] - base[i];
    for (int c = 0; c < INFS_WORKER_CLASS_COUNT; c++) {
      if (!seen_cls[c])
        continue;
      b[c].x[m[c]] = (double)x->t / 1e6;
      b[c].y[m[c]++] = sum[c];
    }
  }
  plot_series_t s[INFS_WORKER_CLASS_COUNT];
  for (int c = 0; c < INFS_WORKER_CLASS_COUNT; c++)
    s[c] = (plot_series_t){infs_worker_class_name((infs_worker_class_t)c),
                           worker_color[c],
                           b[c].x,
                           b[c].y,
                           m[c],
                           false};
  plot_lines_t p = {.id = "plot-cost-time",
                    .title = "Cost over time by worker class",
                    .x_label = "time since the start (s)",
                    .y_label = "USD since the start",
                    .y_from_0 = true};
  plot_svg_lines(out, &p, s, INFS_WORKER_CLASS_COUNT);
out:
  for (int c = 0; c < INFS_WORKER_CLASS_COUNT; c++)
    buf_free(&b[c]);
  free(base);
  free(last);
  free(wcls);
  return rc;
}

/* --- settings --- */

static void setting(FILE *out, const char *name, const char *value) {
  fputs("<div><dt>", out);
  plot_html_escape(out, name);
  fputs("</dt><dd>", out);
  plot_html_escape(out, value);
  fputs("</dd></div>\n", out);
}

/* What the run was: its policy, SLOs and the settings its program gave. */
static void settings(FILE *out, const report_t *r, const cJSON *j) {
  const cJSON *policy = cJSON_GetObjectItemCaseSensitive(j, "policy");
  char v[96];
  fputs("<section id=\"settings\">\n<h2>Settings</h2>\n"
        "<dl class=\"settings\">\n",
        out);
  setting(out, "policy",
          cJSON_IsString(policy) ? policy->valuestring : "unknown");
  const char *const *names, *const *values;
  size_t n = report_settings(r, &names, &values);
  for (size_t i = 0; i < n; i++)
    setting(out, names[i], values[i]);
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    slo_t slo;
    char name[48];
    if (!report_class_slo(r, c, &slo))
      continue;
    snprintf(name, sizeof name, "SLO %s (TTFT[+per 1k uncached]:TPOT ms)",
             infs_class_name((infs_class_t)c));
    slo_format(&slo, v, sizeof v);
    setting(out, name, v);
  }
  snprintf(v, sizeof v, "%.1f s", jnum(j, "window_s"));
  setting(out, "measured window", v);
  fputs("</dl>\n</section>\n", out);
}

/* --- the page --- */

/* The JSON inside <script type="application/json">: "</" must not appear. */
static void json_block(FILE *out, const char *text) {
  for (const char *p = text; *p; p++) {
    if (*p == '<')
      fputs("\\u003c", out);
    else
      fputc(*p, out);
  }
}

static int table(FILE *out, const report_t *r) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem)
    return -ENOMEM;
  report_print(r, mem);
  if (fclose(mem) != 0) {
    free(text);
    return -ENOMEM;
  }
  fputs("<pre class=\"table\">", out);
  plot_html_escape(out, text);
  fputs("</pre>\n", out);
  free(text);
  return 0;
}

int report_html_print(const report_t *r, const char *title, FILE *out) {
  int rc = 0;
  char *json_text = NULL;
  cJSON *j = report_to_json(r);
  if (!j || !(json_text = cJSON_PrintUnformatted(j))) {
    rc = -ENOMEM;
    goto out;
  }
  const cJSON *policy = cJSON_GetObjectItemCaseSensitive(j, "policy");
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
        "charset=\"utf-8\">\n<title>infsched report",
        out);
  if (title && *title) {
    fputs(": ", out);
    plot_html_escape(out, title);
  }
  fprintf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n", style);
  fputs("<h1>infsched report</h1>\n<p class=\"sub\">", out);
  if (title && *title) {
    plot_html_escape(out, title);
    fputs(" &middot; ", out);
  }
  fputs("policy ", out);
  plot_html_escape(out, cJSON_IsString(policy) ? policy->valuestring : "?");
  fprintf(out, " &middot; %.1f s</p>\n", jnum(j, "window_s"));
  cards(out, j);

  fputs("<h2>Latency</h2>\n<div class=\"plots\">\n", out);
  figure_open(out);
  if ((rc = cdf_chart(out, r, REPORT_TTFT, "plot-ttft-cdf",
                      "Time to first token, CDF")))
    goto out;
  figure_close(out, "For each class, the fraction of completed requests "
                    "whose first token came within the time on the x axis, "
                    "from the intended send time. A curve further left is "
                    "faster; its height at its class's SLO target (dashed, "
                    "for a prompt with nothing to prefill: a request's own "
                    "target grows with its uncached prompt tokens) is about "
                    "the share that met it.");
  figure_open(out);
  if ((rc = cdf_chart(out, r, REPORT_TPOT, "plot-tpot-cdf",
                      "Time per output token, CDF")))
    goto out;
  figure_close(out, "Time per output token of completed requests of two or "
                    "more tokens, (end to end - TTFT) / (tokens - 1), with "
                    "each class's TPOT target dashed: the curve's height "
                    "there is the share that met it.");
  figure_open(out);
  if ((rc = cdf_chart(out, r, REPORT_E2E, "plot-e2e-cdf",
                      "End-to-end latency, CDF")))
    goto out;
  figure_close(out, "The same for the whole request, from the intended send "
                    "time to Done: queueing, prefill and every output "
                    "token.");
  figure_open(out);
  slo_chart(out, j);
  figure_close(out, "The share of each class's requests sent that completed "
                    "within their TTFT and TPOT targets (failed, rejected and "
                    "lost requests count against it), and how many completed "
                    "requests missed by TTFT, by TPOT or by both.");
  fputs("</div>\n<h2>Over time</h2>\n<div class=\"plots\">\n", out);
  figure_open(out);
  if ((rc = rate_chart(out, r)))
    goto out;
  figure_close(out, "Requests completed in each second of the run, by "
                    "class (averaged over wider bins on long runs).");
  figure_open(out);
  if ((rc = token_chart(out, r)))
    goto out;
  figure_close(out, "Output tokens made in each second: each completed "
                    "request's tokens spread evenly from its first token to "
                    "its Done, so a long answer counts where it was "
                    "generated, not in the second it ended.");
  figure_open(out);
  if ((rc = queue_chart(out, r)))
    goto out;
  figure_close(out, "Sampled about once a second: requests waiting in the "
                    "scheduler's admission queues, waiting in the workers' "
                    "own queues, running on workers (from heartbeats), and "
                    "sent by the client but not answered yet.");
  fputs("</div>\n<h2>Workers</h2>\n<div class=\"plots\">\n", out);
  figure_open(out);
  if ((rc = worker_chart(out, r, WCHART_BUSY)))
    goto out;
  figure_close(out, "Each worker's busy share of the time between two "
                    "samples (about a second apart), from its heartbeats' "
                    "busy-time counter; one line per worker in its class's "
                    "color.");
  figure_open(out);
  if ((rc = worker_chart(out, r, WCHART_OUTSTANDING)))
    goto out;
  figure_close(out, "Requests dispatched to each worker and not finished, "
                    "as the scheduler counted them at each sample.");
  fputs("</div>\n<h2>Cost</h2>\n<div class=\"plots\">\n", out);
  figure_open(out);
  if ((rc = cost_time_chart(out, r)))
    goto out;
  figure_close(out, "What each worker class has cost since the start: the "
                    "gain of its workers' cost counters (price per hour for "
                    "the time up, plus energy), idle time included.");
  figure_open(out);
  class_cost_chart(out, j);
  figure_close(out, "What each request class cost: the sum of its requests' "
                    "marginal costs (their share of worker time, from Done), "
                    "and that per million tokens served. Idle time belongs "
                    "to no class.");
  figure_open(out);
  worker_cost_chart(out, j);
  figure_close(out, "What each worker class cost over the run: the change "
                    "of its workers' cost counters (price per hour for the "
                    "time up, plus energy), idle time included, with their "
                    "mean busy share.");
  fputs("</div>\n<h2>Phases</h2>\n<div class=\"plots\">\n", out);
  figure_open(out);
  phase_chart(out, j);
  figure_close(out, "Where completed requests spent their time on the "
                    "workers: waiting in the (prefill) worker's queue, "
                    "prefilling to the first token, moving the KV to the "
                    "decode worker (split requests only: the part the "
                    "decode worker waited for), and decoding the rest. "
                    "Requests run whole on one worker and requests split "
                    "between a prefill and a decode worker are apart.");
  figure_open(out);
  phase_cost_chart(out, j);
  figure_close(out, "Marginal cost (from Done) by worker class and by the "
                    "part its workers played: the prefill or the decode side "
                    "of split requests, or requests run whole.");
  fputs("</div>\n", out);
  settings(out, r, j);
  fputs("<h2>Table</h2>\n", out);
  if ((rc = table(out, r)))
    goto out;
  fputs("<script type=\"application/json\" id=\"report-data\">", out);
  json_block(out, json_text);
  fputs("</script>\n</body>\n</html>\n", out);
out:
  cJSON_free(json_text);
  cJSON_Delete(j);
  return rc;
}

int report_html_write(const report_t *r, const char *title, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f)
    return -errno;
  int rc = report_html_print(r, title, f);
  if (ferror(f) && rc == 0)
    rc = -EIO;
  if (fclose(f) != 0 && rc == 0)
    rc = -errno;
  return rc;
}
