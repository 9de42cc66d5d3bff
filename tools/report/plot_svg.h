/* Small static SVG charts for self-contained HTML pages: line charts (linear
 * or logarithmic x) and bar charts, written as inline <svg> elements with
 * their axes, grid, legend and a <title>. No scripts, no external files.
 *
 * Elements carry classes a reader or a test can find: the chart is
 * svg.plot, each line path.series (data-series = its name), each bar
 * rect.bar (data-label = its label), each marker line.marker (data-label =
 * its label); a chart without data says so in text.no-data. */
#ifndef INFSCHED_PLOT_SVG_H
#define INFSCHED_PLOT_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct plot_series {
  const char *name;  /* legend text */
  const char *color; /* CSS color */
  const double *x;   /* borrowed, n points */
  const double *y;
  size_t n;
  bool dashed; /* e.g. a total drawn over its parts */
} plot_series_t;

/* A vertical reference line across a line chart, e.g. an SLO target. */
typedef struct plot_marker {
  double x;
  const char *color;
  const char *label; /* drawn at its top and in data-label */
} plot_marker_t;

typedef enum plot_unit {
  PLOT_UNIT_NONE, /* plain numbers */
  PLOT_UNIT_MS,   /* milliseconds, labelled "ms" below 1 s, else "s" */
  PLOT_UNIT_USD   /* dollars */
} plot_unit_t;

typedef struct plot_lines {
  const char *id;      /* the svg's id attribute */
  const char *title;   /* drawn above the chart and in <title> */
  const char *x_label; /* axis titles */
  const char *y_label;
  plot_unit_t x_unit;
  bool log_x;         /* decades; points with x <= 0 are left out */
  bool y_from_0;      /* the y axis starts at 0 */
  double y_fixed_max; /* > 0: the y axis ends there (e.g. 1 for a CDF) */
  bool step;          /* draw as steps (counts over time) */
  const plot_marker_t *markers; /* borrowed; the x range takes them in */
  size_t n_markers;
} plot_lines_t;

/* Writes a line chart of n series to out. Series without points are left
 * out; when none has one the chart says "no data". */
void plot_svg_lines(FILE *out, const plot_lines_t *p, const plot_series_t *s,
                    size_t n);

typedef struct plot_bar {
  const char *label; /* under the bar */
  const char *color;
  double value;
  const char *note; /* NULL, or a second line under the label */
} plot_bar_t;

/* Writes a bar chart of n bars with values formatted by unit. */
void plot_svg_bars(FILE *out, const char *id, const char *title,
                   const char *y_label, plot_unit_t unit, const plot_bar_t *b,
                   size_t n);

/* Writes s with &, <, >, " and ' escaped for HTML text and attributes. */
void plot_html_escape(FILE *out, const char *s);

#endif
