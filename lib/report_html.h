/* The report as one self-contained HTML page, for infsched-loadgen and
 * infsched-sim: the key figures, latency CDFs (TTFT and end to end, by
 * class), completed requests and generated tokens per second, queue depth
 * over time, cost by request class and by worker class, the text table and
 * the JSON. Charts are inline SVG drawn here; the page loads nothing and runs
 * no script.
 *
 * It uses what the report collects: outcomes (with done_at for the rates
 * over time), report_add_worker figures, and report_add_sample samples for
 * the queue depth; a chart without its data says "no data". */
#ifndef INFSCHED_REPORT_HTML_H
#define INFSCHED_REPORT_HTML_H

#include "lib/report.h"

#include <stdio.h>

/* Writes the page to out. title (may be NULL) heads it, e.g. the workload.
 * Returns 0, or -ENOMEM. */
int report_html_print(const report_t *r, const char *title, FILE *out);

/* Writes the page to path. Returns 0 or -errno. */
int report_html_write(const report_t *r, const char *title, const char *path);

#endif
