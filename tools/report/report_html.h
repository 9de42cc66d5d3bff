/* The report as one self-contained HTML page, for infsched-loadgen and
 * infsched-sim: the key figures (prompt, cached and generated tokens apart),
 * latency CDFs (TTFT, TPOT and end to end, by class; TTFT and TPOT with each
 * class's SLO target), completed requests per second and generated tokens
 * per second by when they were made, queue depth, each worker's utilisation
 * and requests in flight, cost over time by worker class, cost by request
 * class and by worker class, the run's settings, the text table and the
 * JSON. Charts are inline SVG drawn here; the page loads nothing and runs
 * no script.
 *
 * It uses what the report collects: outcomes (with done_at for the rates
 * over time), report_add_worker figures, report_add_sample and
 * report_add_worker_sample samples, and report_set_setting settings; a
 * chart without its data says "no data". */
#ifndef INFSCHED_REPORT_HTML_H
#define INFSCHED_REPORT_HTML_H

#include "report.h"

#include <stdio.h>

/* Writes the page to out. title (may be NULL) heads it, e.g. the workload.
 * Returns 0, or -ENOMEM. */
int report_html_print(const report_t *r, const char *title, FILE *out);

/* Writes the page to path. Returns 0 or -errno. */
int report_html_write(const report_t *r, const char *title, const char *path);

#endif
