/* Replay of a CSV in the Azure LLM inference trace format
 * (TIMESTAMP,ContextTokens,GeneratedTokens). The file is read whole at
 * construction so that a bad row fails before any traffic is sent.
 *
 * More load from the same trace (opts.copies = c): floor(c) copies of it,
 * the first as written and each other shifted by its own random offset
 * within the trace's period (its span plus one mean gap) and wrapped
 * around, plus a copy keeping each row with probability c - floor(c); below
 * 1, the trace thinned alike. Each copy keeps the trace's gaps, so its
 * bursts keep their shape and height where a speed-up would compress them;
 * the rate is c times the trace's, over the trace's own length. */
#include "workload_impl.h"

#include "infsched/errors.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 32

enum { COL_TIME, COL_CONTEXT, COL_GENERATED, COL_COUNT };
static const char *const col_names[COL_COUNT] = {"TIMESTAMP", "ContextTokens",
                                                 "GeneratedTokens"};

typedef struct trace_row {
  int64_t t_us; /* as written in the file: since the epoch, or plain seconds */
  uint32_t context;
  uint32_t generated;
  uint32_t line; /* keeps the sort stable and errors precise */
} trace_row_t;

typedef struct trace {
  workload_t base; /* first: the driver sees a workload_t */
  trace_row_t *rows;
  size_t n;
  size_t next;
  int64_t t0;   /* the trace's first arrival, replayed at 0 */
  double end_s; /* replayed time at which arrivals stop; INFINITY: none */
} trace_t;

/* --- parsing --- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so that parsing needs no time zone. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned mp = m > 2 ? m - 3 : m + 9; /* months from March */
  unsigned doy = (153 * mp + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int n, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i]))
      return -1;
    v = v * 10 + (unsigned)((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

/* "YYYY-MM-DD HH:MM:SS[.fraction][Z]" (or a 'T' between date and time), or
 * a plain number of seconds. Fractions beyond microseconds are cut. */
static int parse_time(const char *s, int64_t *out) {
  const char *p = s;
  unsigned y, mo, d, h, mi, sec;
  if (digits(&p, 4, &y) == 0 && *p == '-') {
    p++;
    if (digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d) ||
        (*p != ' ' && *p != 'T'))
      return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec))
      return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
      return -1;
    int64_t us = 0;
    if (*p == '.') {
      p++;
      if (!isdigit((unsigned char)*p))
        return -1;
      int64_t scale = 100000;
      for (; isdigit((unsigned char)*p); p++) {
        us += (*p - '0') * scale;
        scale /= 10;
      }
    }
    if (*p == 'Z')
      p++;
    if (*p)
      return -1;
    int64_t days = days_from_civil(y, mo, d);
    *out = ((days * 24 + h) * 60 + mi) * 60 * 1000000ll + sec * 1000000ll + us;
    return 0;
  }
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v) || fabs(v) > 1e12)
    return -1;
  *out = llround(v * 1e6);
  return 0;
}

static int parse_count(const char *s, uint32_t *out) {
  if (!isdigit((unsigned char)*s))
    return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end || errno || v > UINT32_MAX)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
    s[n - 1] = '\0';
    s++;
  }
  return s;
}

static size_t split(char *line, char **fields) {
  size_t n = 0;
  char *p = line;
  for (;;) {
    char *comma = strchr(p, ',');
    if (comma)
      *comma = '\0';
    if (n < MAX_FIELDS)
      fields[n] = trim(p);
    n++;
    if (!comma)
      return n;
    p = comma + 1;
  }
}

/* A header is a first line none of whose fields reads as a value; a first
 * row with one bad field is then reported as a bad row, not a bad header. */
static bool looks_like_header(char **fields, size_t n) {
  for (size_t i = 0; i < n && i < MAX_FIELDS; i++) {
    int64_t t;
    if (parse_time(fields[i], &t) == 0)
      return false;
  }
  return true;
}

static int map_header(const char *path, unsigned line, char **fields, size_t n,
                      size_t col[COL_COUNT], char *err, size_t errlen) {
  for (int c = 0; c < COL_COUNT; c++) {
    col[c] = SIZE_MAX;
    for (size_t i = 0; i < n && i < MAX_FIELDS; i++)
      if (strcasecmp(fields[i], col_names[c]) == 0)
        col[c] = i;
    if (col[c] == SIZE_MAX)
      return workload_errf(INFS_ECONFIG, err, errlen,
                           "%s:%u: header has no %s column", path, line,
                           col_names[c]);
  }
  return 0;
}

static int parse_row(const char *path, unsigned line, char **fields, size_t n,
                     const size_t col[COL_COUNT], trace_row_t *row, char *err,
                     size_t errlen) {
  size_t need = 0;
  for (int c = 0; c < COL_COUNT; c++)
    if (col[c] + 1 > need)
      need = col[c] + 1;
  if (n < need)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "%s:%u: expected %zu fields, got %zu", path, line,
                         need, n);
  const char *ts = fields[col[COL_TIME]];
  if (parse_time(ts, &row->t_us))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "%s:%u: TIMESTAMP '%s' is neither "
                         "'YYYY-MM-DD HH:MM:SS[.frac]' nor seconds",
                         path, line, ts);
  const char *ctx = fields[col[COL_CONTEXT]];
  if (parse_count(ctx, &row->context))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "%s:%u: ContextTokens '%s' is not a whole number",
                         path, line, ctx);
  const char *gen = fields[col[COL_GENERATED]];
  if (parse_count(gen, &row->generated))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "%s:%u: GeneratedTokens '%s' is not a whole number",
                         path, line, gen);
  row->line = line;
  return 0;
}

static int row_cmp(const void *a, const void *b) {
  const trace_row_t *x = a, *y = b;
  if (x->t_us != y->t_us)
    return x->t_us < y->t_us ? -1 : 1;
  return x->line < y->line ? -1 : x->line > y->line;
}

/* What load needs across lines. */
typedef struct trace_load {
  trace_t *t;
  const char *path;
  size_t cap;
  bool first;
  size_t col[COL_COUNT];
} trace_load_t;

static int load_line(void *arg, unsigned lineno, char *line, size_t len,
                     char *err, size_t errlen) {
  (void)len;
  trace_load_t *l = arg;
  trace_t *t = l->t;
  char *fields[MAX_FIELDS];
  size_t n = split(line, fields);
  if (l->first) {
    l->first = false;
    if (looks_like_header(fields, n))
      return map_header(l->path, lineno, fields, n, l->col, err, errlen);
  }
  if (t->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1024;
    trace_row_t *p = realloc(t->rows, l->cap * sizeof *p);
    if (!p)
      return -ENOMEM;
    t->rows = p;
  }
  int rc = parse_row(l->path, lineno, fields, n, l->col, &t->rows[t->n], err,
                     errlen);
  if (!rc)
    t->n++;
  return rc;
}

static int load(trace_t *t, const char *path, char *err, size_t errlen) {
  trace_load_t l = {.t = t, .path = path, .first = true, .col = {0, 1, 2}};
  int rc = workload_read_lines(path, load_line, &l, err, errlen);
  if (rc)
    return rc;
  if (t->n == 0)
    return workload_errf(INFS_ECONFIG, err, errlen, "%s: no requests in trace",
                         path);
  qsort(t->rows, t->n, sizeof *t->rows, row_cmp);
  return 0;
}

/* --- the generator --- */

static infs_time_t trace_next_time(const workload_t *w) {
  const trace_t *t = (const trace_t *)w;
  if (t->next >= t->n)
    return INFS_TIME_NEVER;
  double gap_s = (double)(t->rows[t->next].t_us - t->t0) / 1e6;
  double at = gap_s / w->opts.speedup;
  if (at >= t->end_s)
    return INFS_TIME_NEVER;
  return (infs_time_t)llround(at * 1e6);
}

static int trace_pop(workload_t *w, infs_time_t now, workload_req_t *req) {
  (void)now;
  trace_t *t = (trace_t *)w;
  infs_time_t arrival = trace_next_time(w);
  if (arrival == INFS_TIME_NEVER)
    return -EAGAIN;
  const trace_row_t *r = &t->rows[t->next++];
  /* A zero would be an empty request, which no scheduler can serve. */
  uint32_t prompt = r->context ? r->context : 1;
  uint32_t output = r->generated ? r->generated : 1;
  workload_fill_request(w, req, arrival, workload_draw_class(w), prompt,
                        output);
  return 0;
}

static bool trace_finished(const workload_t *w) {
  return trace_next_time(w) == INFS_TIME_NEVER;
}

static void trace_destroy(workload_t *w) {
  trace_t *t = (trace_t *)w;
  free(t->rows);
  free(t);
}

static const workload_ops_t trace_ops = {
    .name = "trace",
    .next_time = trace_next_time,
    .pop = trace_pop,
    .on_done = NULL,
    .finished = trace_finished,
    .destroy = trace_destroy,
};

int workload_trace_new(const char *path, const workload_opts_t *opts,
                       workload_t **out, char *err, size_t errlen) {
  *out = NULL;
  int rc = workload_check_replay(opts, err, errlen);
  if (rc)
    return rc;
  trace_t *t = calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  rc = workload_base_init(&t->base, &trace_ops, opts, err, errlen);
  if (rc)
    goto fail;
  rc = load(t, path, err, errlen);
  if (rc)
    goto fail;
  t->t0 = t->rows[0].t_us;
  void *rows = t->rows;
  rc = workload_overlay(opts, &rows, &t->n, sizeof *t->rows,
                        offsetof(trace_row_t, t_us), SIZE_MAX, row_cmp);
  t->rows = rows;
  if (rc)
    goto fail;
  t->end_s = opts->duration_s > 0.0 ? opts->duration_s : INFINITY;
  *out = &t->base;
  return 0;
fail:
  free(t->rows);
  free(t);
  return rc;
}
