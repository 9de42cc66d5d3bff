#include "plot_svg.h"

#include <math.h>
#include <string.h>

/* Every chart has the same frame: the plot area inside fixed margins, the
 * title above it, tick labels, the x title and the legend below it. */
enum {
  WIDTH = 640,
  HEIGHT = 360,
  LEFT = 72,
  RIGHT = WIDTH - 20,
  TOP = 40,
  BOTTOM = HEIGHT - 84,
  TICKS = 5
};

void plot_html_escape(FILE *out, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&':
      fputs("&amp;", out);
      break;
    case '<':
      fputs("&lt;", out);
      break;
    case '>':
      fputs("&gt;", out);
      break;
    case '"':
      fputs("&quot;", out);
      break;
    case '\'':
      fputs("&#39;", out);
      break;
    default:
      fputc(*s, out);
    }
  }
}

/* --- numbers --- */

/* 1, 2 or 5 times a power of ten, at least x. */
static double nice_step(double x) {
  if (!(x > 0))
    return 1;
  double p = pow(10, floor(log10(x)));
  double m = x / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void fmt_num(char *buf, size_t len, double v) {
  double a = fabs(v);
  if (a >= 1e9)
    snprintf(buf, len, "%gG", v / 1e9);
  else if (a >= 1e6)
    snprintf(buf, len, "%gM", v / 1e6);
  else if (a >= 1e4)
    snprintf(buf, len, "%gk", v / 1e3);
  else
    snprintf(buf, len, "%.4g", v);
}

static void fmt_unit(char *buf, size_t len, double v, plot_unit_t unit) {
  switch (unit) {
  case PLOT_UNIT_MS:
    if (fabs(v) >= 1000)
      snprintf(buf, len, "%g s", v / 1000);
    else
      snprintf(buf, len, "%g ms", v);
    break;
  case PLOT_UNIT_USD:
    if (fabs(v) >= 100)
      snprintf(buf, len, "$%.0f", v);
    else if (fabs(v) >= 1 || v == 0)
      snprintf(buf, len, "$%.2f", v);
    else
      snprintf(buf, len, "$%.4f", v);
    break;
  default:
    fmt_num(buf, len, v);
  }
}

/* --- the frame --- */

typedef struct axis {
  double lo; /* data value at the start; log10 of it on a log axis */
  double hi;
  bool log;
  double px0; /* pixels of lo and hi */
  double px1;
} axis_t;

static double to_px(const axis_t *a, double v) {
  if (a->log)
    v = log10(v);
  return a->px0 + (v - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
}

static void svg_open(FILE *out, const char *id, const char *title) {
  fprintf(out,
          "<svg class=\"plot\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
          "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">\n"
          "<title>",
          id, WIDTH, HEIGHT, WIDTH, HEIGHT);
  plot_html_escape(out, title);
  fprintf(out,
          "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
          "fill=\"#fff\"/>\n<text class=\"title\" x=\"%d\" y=\"22\" "
          "font-size=\"15\" font-weight=\"bold\">",
          WIDTH, HEIGHT, LEFT);
  plot_html_escape(out, title);
  fputs("</text>\n", out);
}

/* Tick labels in dollars show as many decimals as the step needs. */
static void fmt_tick(char *buf, size_t len, double v, double step,
                     plot_unit_t unit) {
  if (unit != PLOT_UNIT_USD) {
    fmt_unit(buf, len, v, unit);
    return;
  }
  int decimals = step >= 1 ? 0 : (int)fmax(2, ceil(-log10(step) - 1e-9));
  snprintf(buf, len, "$%.*f", decimals, v);
}

static void grid_y(FILE *out, const axis_t *y, double step, plot_unit_t unit) {
  char buf[32];
  for (double v = y->lo; v <= y->hi + step / 1000; v += step) {
    double py = to_px(y, v);
    fprintf(out,
            "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
            "stroke=\"#e3e3e3\"/>\n",
            LEFT, py, RIGHT, py);
    fmt_tick(buf, sizeof buf, fabs(v) < step / 1e6 ? 0 : v, step, unit);
    fprintf(out,
            "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">"
            "%s</text>\n",
            LEFT - 6, py + 4, buf);
  }
}

static void x_tick(FILE *out, double px, const char *label, bool major) {
  fprintf(out,
          "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
          "stroke=\"%s\"/>\n",
          px, TOP, px, BOTTOM, major ? "#e3e3e3" : "#f3f3f3");
  if (label)
    fprintf(out,
            "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" "
            "text-anchor=\"middle\">%s</text>\n",
            px, BOTTOM + 16, label);
}

static void axis_titles(FILE *out, const char *x_label, const char *y_label) {
  fprintf(out,
          "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
          "stroke=\"#555\"/>\n"
          "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
          "stroke=\"#555\"/>\n",
          LEFT, BOTTOM, RIGHT, BOTTOM, LEFT, TOP, LEFT, BOTTOM);
  if (x_label) {
    fprintf(out,
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
            "fill=\"#333\">",
            (LEFT + RIGHT) / 2, BOTTOM + 36);
    plot_html_escape(out, x_label);
    fputs("</text>\n", out);
  }
  if (y_label) {
    fprintf(out,
            "<text x=\"16\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
            "fill=\"#333\" transform=\"rotate(-90 16 %d)\">",
            (TOP + BOTTOM) / 2, (TOP + BOTTOM) / 2);
    plot_html_escape(out, y_label);
    fputs("</text>\n", out);
  }
}

static void no_data(FILE *out) {
  fprintf(out,
          "<text class=\"no-data\" x=\"%d\" y=\"%d\" font-size=\"14\" "
          "text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
          (LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2);
}

/* --- line charts --- */

static bool usable(const plot_lines_t *p, double x, double y) {
  return isfinite(x) && isfinite(y) && (!p->log_x || x > 0);
}

static void x_axis(FILE *out, const plot_lines_t *p, axis_t *x, double xmin,
                   double xmax) {
  char buf[32];
  x->px0 = LEFT;
  x->px1 = RIGHT;
  x->log = p->log_x;
  if (p->log_x) {
    x->lo = floor(log10(xmin));
    x->hi = ceil(log10(xmax));
    if (x->hi <= x->lo)
      x->hi = x->lo + 1;
    bool minors_labelled = x->hi - x->lo <= 2;
    for (double d = x->lo; d <= x->hi; d++) {
      for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) { /* 1, 2, 5 */
        if (d == x->hi && m > 1)
          break;
        double v = m * pow(10, d);
        fmt_unit(buf, sizeof buf, v, p->x_unit);
        x_tick(out, to_px(x, v), m == 1 || minors_labelled ? buf : NULL,
               m == 1);
      }
    }
    return;
  }
  double step = nice_step((xmax - xmin) / TICKS);
  x->lo = floor(xmin / step) * step;
  x->hi = ceil(xmax / step) * step;
  if (x->hi <= x->lo)
    x->hi = x->lo + step;
  for (double v = x->lo; v <= x->hi + step / 1000; v += step) {
    fmt_unit(buf, sizeof buf, fabs(v) < step / 1e6 ? 0 : v, p->x_unit);
    x_tick(out, to_px(x, v), buf, true);
  }
}

static void legend(FILE *out, const plot_series_t *s, size_t n) {
  double px = LEFT, py = BOTTOM + 58;
  for (size_t i = 0; i < n; i++) {
    if (s[i].n == 0)
      continue;
    double w = 30 + 7.0 * (double)strlen(s[i].name);
    if (px + w > RIGHT && px > LEFT) {
      px = LEFT;
      py += 18;
    }
    fprintf(out,
            "<g class=\"legend-item\"><line x1=\"%.1f\" y1=\"%.1f\" "
            "x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"%s/>"
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">",
            px, py - 4, px + 18, py - 4, s[i].color,
            s[i].dashed ? " stroke-dasharray=\"6 4\"" : "", px + 23, py);
    plot_html_escape(out, s[i].name);
    fputs("</text></g>\n", out);
    px += w + 12;
  }
}

/* Dashed vertical lines, each labelled at its top; labels of markers close
 * together step down so they do not overlap. */
static void markers(FILE *out, const plot_lines_t *p, const axis_t *x) {
  double last_px = -1e9;
  int row = 0;
  for (size_t i = 0; i < p->n_markers; i++) {
    const plot_marker_t *m = &p->markers[i];
    if (!usable(p, m->x, 0))
      continue;
    double px = to_px(x, m->x);
    row = fabs(px - last_px) < 90 ? row + 1 : 0;
    last_px = px;
    fputs("<line class=\"marker\" data-label=\"", out);
    plot_html_escape(out, m->label);
    fprintf(out,
            "\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
            "stroke-width=\"1.5\" stroke-dasharray=\"3 3\"/>\n"
            "<text class=\"marker-label\" x=\"%.1f\" y=\"%d\" "
            "font-size=\"10\" fill=\"%s\">",
            px, TOP, px, BOTTOM, m->color, px + 3, TOP + 10 + 11 * row,
            m->color);
    plot_html_escape(out, m->label);
    fputs("</text>\n", out);
  }
}

void plot_svg_lines(FILE *out, const plot_lines_t *p, const plot_series_t *s,
                    size_t n) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < s[i].n; j++) {
      if (!usable(p, s[i].x[j], s[i].y[j]))
        continue;
      xmin = fmin(xmin, s[i].x[j]);
      xmax = fmax(xmax, s[i].x[j]);
      ymin = fmin(ymin, s[i].y[j]);
      ymax = fmax(ymax, s[i].y[j]);
    }
  }
  svg_open(out, p->id, p->title);
  axis_titles(out, p->x_label, p->y_label);
  if (!(xmax >= xmin)) {
    no_data(out);
    fputs("</svg>\n", out);
    return;
  }
  for (size_t i = 0; i < p->n_markers; i++) {
    if (!usable(p, p->markers[i].x, 0))
      continue;
    xmin = fmin(xmin, p->markers[i].x);
    xmax = fmax(xmax, p->markers[i].x);
  }

  axis_t x, y = {.px0 = BOTTOM, .px1 = TOP};
  x_axis(out, p, &x, xmin, xmax);
  if (p->y_from_0 || ymin > 0)
    ymin = fmin(0, ymin);
  if (p->y_fixed_max > 0)
    ymax = p->y_fixed_max;
  if (!(ymax > ymin))
    ymax = ymin + 1;
  double ystep = nice_step((ymax - ymin) / TICKS);
  y.lo = floor(ymin / ystep) * ystep;
  y.hi = ceil(ymax / ystep) * ystep;
  grid_y(out, &y, ystep, PLOT_UNIT_NONE);

  for (size_t i = 0; i < n; i++) {
    if (s[i].n == 0)
      continue;
    fputs("<path class=\"series\" data-series=\"", out);
    plot_html_escape(out, s[i].name);
    fputs("\" d=\"", out);
    bool first = true;
    double prev_py = 0;
    for (size_t j = 0; j < s[i].n; j++) {
      if (!usable(p, s[i].x[j], s[i].y[j]))
        continue;
      double px = to_px(&x, s[i].x[j]), py = to_px(&y, s[i].y[j]);
      if (first)
        fprintf(out, "M%.1f %.1f", px, py);
      else if (p->step)
        fprintf(out, "L%.1f %.1fL%.1f %.1f", px, prev_py, px, py);
      else
        fprintf(out, "L%.1f %.1f", px, py);
      first = false;
      prev_py = py;
    }
    fprintf(out,
            "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
            "stroke-linejoin=\"round\"%s/>\n",
            s[i].color, s[i].dashed ? " stroke-dasharray=\"6 4\"" : "");
  }
  markers(out, p, &x);
  legend(out, s, n);
  fputs("</svg>\n", out);
}

/* --- bar charts --- */

void plot_svg_bars(FILE *out, const char *id, const char *title,
                   const char *y_label, plot_unit_t unit, const plot_bar_t *b,
                   size_t n) {
  char buf[32];
  double vmax = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(b[i].value))
      vmax = fmax(vmax, b[i].value);
  svg_open(out, id, title);
  axis_titles(out, NULL, y_label);
  if (n == 0) {
    no_data(out);
    fputs("</svg>\n", out);
    return;
  }
  axis_t y = {.px0 = BOTTOM, .px1 = TOP, .lo = 0};
  double step = nice_step((vmax > 0 ? vmax : 1) / TICKS);
  y.hi = ceil((vmax > 0 ? vmax : 1) / step) * step;
  grid_y(out, &y, step, unit);
  double slot = (double)(RIGHT - LEFT) / (double)n;
  double w = fmin(90, slot * 0.6);
  for (size_t i = 0; i < n; i++) {
    double v = isfinite(b[i].value) && b[i].value > 0 ? b[i].value : 0;
    double cx = LEFT + slot * ((double)i + 0.5);
    double top = to_px(&y, v);
    fputs("<rect class=\"bar\" data-label=\"", out);
    plot_html_escape(out, b[i].label);
    fprintf(out,
            "\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"%s\"/>\n",
            cx - w / 2, top, w, BOTTOM - top, b[i].color);
    fmt_unit(buf, sizeof buf, v, unit);
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
            "text-anchor=\"middle\">%s</text>\n",
            cx, top - 5, buf);
    fprintf(out,
            "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" "
            "text-anchor=\"middle\">",
            cx, BOTTOM + 17);
    plot_html_escape(out, b[i].label);
    fputs("</text>\n", out);
    if (b[i].note) {
      fprintf(out,
              "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" fill=\"#555\" "
              "text-anchor=\"middle\">",
              cx, BOTTOM + 33);
      plot_html_escape(out, b[i].note);
      fputs("</text>\n", out);
    }
  }
  fputs("</svg>\n", out);
}
