#include "report.h"

#include "infsched.pb-c.h"
#include "hist.h"
#include "xalloc.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct class_stats {
  report_requests_t req;
  uint64_t slo_met;
  uint64_t missed[SLO_MISS_BOTH + 1]; /* completed, by the part missed */
  uint64_t prompt;
  uint64_t cached;
  uint64_t generated;
  double cost_usd; /* sum of per-request marginal costs */
  bool has_slo;
  slo_t slo; /* of its first completed request */
  hist_t *ttft;
  hist_t *tpot;
  hist_t *e2e;
} class_stats_t;

typedef struct worker_stats {
  char *id;
  char *cls;
  char *role;        /* as registered; NULL: not known */
  uint64_t requests; /* completed here */
  uint64_t prompt;
  uint64_t cached;
  double request_usd; /* sum of its requests' marginal costs */
  bool pool;          /* pool-side figures were given */
  double cost_usd;
  double busy_s;
  double up_s;
} worker_stats_t;

/* Completed requests by the worker class that served them. */
typedef struct wclass_stats {
  char *name;
  report_slo_counts_t all;
  report_slo_counts_t by[INFS_CLASS_COUNT];
} wclass_stats_t;

/* Where completed requests spent their time on the workers, for those run
 * whole on one worker and for those split between two. */
typedef enum phase {
  PHASE_QUEUE,
  PHASE_PREFILL,
  PHASE_TRANSFER,
  PHASE_DECODE,
  PHASE_COUNT
} phase_t;

static const char *const phase_names[PHASE_COUNT] = {"queue", "prefill",
                                                     "transfer", "decode"};

typedef struct phase_stats {
  uint64_t requests;
  hist_t *h[PHASE_COUNT];
} phase_stats_t;

/* Marginal cost by worker class and by the part a worker of it played:
 * the prefill or the decode side of a split request, or a whole one. */
typedef enum cost_part {
  PART_PREFILL,
  PART_DECODE,
  PART_WHOLE,
  PART_COUNT
} cost_part_t;

static const char *const part_names[PART_COUNT] = {"prefill", "decode",
                                                   "whole"};

typedef struct part_cost {
  char *cls;
  double usd[PART_COUNT];
  uint64_t requests[PART_COUNT];
} part_cost_t;

/* Failures and rejections counted by error name, so a report says why. */
typedef struct error_count {
  char *name;
  uint64_t count;
} error_count_t;

struct report {
  error_count_t *errors;
  size_t n_errors;
  char *policy;
  infs_time_t window;
  class_stats_t all;
  class_stats_t by[INFS_CLASS_COUNT];
  worker_stats_t *workers;
  size_t n_workers;
  wclass_stats_t *wclasses;
  size_t n_wclasses;
  size_t cap_workers;
  report_sample_t *samples;
  size_t n_samples;
  size_t cap_samples;
  report_second_t *timeline;
  size_t n_seconds;
  size_t cap_seconds;
  report_wsample_t *wsamples;
  size_t n_wsamples;
  size_t cap_wsamples;
  size_t wsample_hint; /* index of the worker expected next */
  char **setting_names;
  char **setting_values;
  size_t n_settings;
  phase_stats_t whole;
  phase_stats_t split;
  part_cost_t *part_costs;
  size_t n_part_costs;
};

/* A done_at beyond this (115 days) is taken for garbage rather than grown
 * into. */
#define TIMELINE_MAX_S 10000000

static const char *const status_names[] = {"completed", "failed", "rejected",
                                           "lost"};

static void stats_init(class_stats_t *s) {
  memset(s, 0, sizeof *s);
  s->ttft = xcheck(hist_new());
  s->tpot = xcheck(hist_new());
  s->e2e = xcheck(hist_new());
}

static void stats_free(class_stats_t *s) {
  hist_destroy(&s->ttft);
  hist_destroy(&s->tpot);
  hist_destroy(&s->e2e);
}

static void phases_init(phase_stats_t *p) {
  for (int k = 0; k < PHASE_COUNT; k++)
    p->h[k] = xcheck(hist_new());
}

static void phases_free(phase_stats_t *p) {
  for (int k = 0; k < PHASE_COUNT; k++)
    hist_destroy(&p->h[k]);
}

report_t *report_new(void) {
  report_t *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  stats_init(&r->all);
  for (int c = 0; c < INFS_CLASS_COUNT; c++)
    stats_init(&r->by[c]);
  phases_init(&r->whole);
  phases_init(&r->split);
  return r;
}

void report_destroy(report_t **rp) {
  if (!rp || !*rp)
    return;
  report_t *r = *rp;
  stats_free(&r->all);
  for (int c = 0; c < INFS_CLASS_COUNT; c++)
    stats_free(&r->by[c]);
  for (size_t i = 0; i < r->n_workers; i++) {
    free(r->workers[i].id);
    free(r->workers[i].cls);
    free(r->workers[i].role);
  }
  free(r->workers);
  for (size_t i = 0; i < r->n_wclasses; i++)
    free(r->wclasses[i].name);
  free(r->wclasses);
  for (size_t i = 0; i < r->n_errors; i++)
    free(r->errors[i].name);
  free(r->errors);
  free(r->samples);
  free(r->timeline);
  free(r->wsamples);
  for (size_t i = 0; i < r->n_settings; i++) {
    free(r->setting_names[i]);
    free(r->setting_values[i]);
  }
  free(r->setting_names);
  free(r->setting_values);
  phases_free(&r->whole);
  phases_free(&r->split);
  for (size_t i = 0; i < r->n_part_costs; i++)
    free(r->part_costs[i].cls);
  free(r->part_costs);
  free(r->policy);
  free(r);
  *rp = NULL;
}

void report_set_policy(report_t *r, const char *policy) {
  free(r->policy);
  r->policy = policy && *policy ? xstrdup(policy) : NULL;
}

void report_set_window(report_t *r, infs_time_t us) {
  r->window = us;
}

static worker_stats_t *worker_get(report_t *r, const char *id,
                                  const char *cls) {
  for (size_t i = 0; i < r->n_workers; i++) {
    if (strcmp(r->workers[i].id, id) == 0) {
      worker_stats_t *w = &r->workers[i];
      if (!*w->cls && cls && *cls) {
        free(w->cls);
        w->cls = xstrdup(cls);
      }
      return w;
    }
  }
  if (r->n_workers == r->cap_workers) {
    r->cap_workers = r->cap_workers ? r->cap_workers * 2 : 8;
    r->workers =
        xrealloc(r->workers, r->cap_workers * sizeof *r->workers);
  }
  worker_stats_t *w = &r->workers[r->n_workers++];
  memset(w, 0, sizeof *w);
  w->id = xstrdup(id);
  w->cls = xstrdup(cls ? cls : "");
  return w;
}

/* TPOT in us; -1 when undefined: fewer than two tokens have no gap. */
static double tpot_us_of(const report_outcome_t *o) {
  if (o->status != REPORT_COMPLETED || o->generated_tokens < 2)
    return -1.0;
  infs_time_t decode = o->e2e > o->ttft ? o->e2e - o->ttft : 0;
  return (double)decode / (double)(o->generated_tokens - 1);
}

/* The part of its SLO a completed request missed. */
static slo_miss_t miss_of(const report_outcome_t *o, double tpot_us) {
  uint32_t uncached = o->prompt_tokens > o->cached_tokens
                          ? o->prompt_tokens - o->cached_tokens
                          : 0;
  return slo_judge(&o->slo, uncached, (double)o->ttft / 1000.0,
                   tpot_us < 0 ? -1.0 : tpot_us / 1000.0);
}

bool report_outcome_met(const report_outcome_t *o) {
  return o->status == REPORT_COMPLETED &&
         miss_of(o, tpot_us_of(o)) == SLO_MISS_NONE;
}

static void counts_add(report_slo_counts_t *c, slo_miss_t miss) {
  c->completed++;
  if (miss == SLO_MISS_NONE)
    c->met++;
  else
    c->missed[miss]++;
}

static void wclass_add(report_t *r, const char *name, infs_class_t cls,
                       slo_miss_t miss) {
  wclass_stats_t *w = NULL;
  for (size_t i = 0; i < r->n_wclasses && !w; i++)
    if (strcmp(r->wclasses[i].name, name) == 0)
      w = &r->wclasses[i];
  if (!w) {
    r->wclasses = xrealloc(r->wclasses, (r->n_wclasses + 1) * sizeof *r->wclasses);
    w = &r->wclasses[r->n_wclasses++];
    memset(w, 0, sizeof *w);
    w->name = xstrdup(name);
  }
  counts_add(&w->all, miss);
  counts_add(&w->by[cls], miss);
}

static void stats_add(class_stats_t *s, const report_outcome_t *o,
                      double tpot_us, slo_miss_t miss) {
  bool met = o->status == REPORT_COMPLETED && miss == SLO_MISS_NONE;
  s->req.sent++;
  switch (o->status) {
  case REPORT_COMPLETED:
    s->req.completed++;
    break;
  case REPORT_FAILED:
    s->req.failed++;
    break;
  case REPORT_REJECTED:
    s->req.rejected++;
    break;
  case REPORT_LOST:
    s->req.lost++;
    break;
  }
  s->slo_met += met;
  if (o->status != REPORT_COMPLETED)
    return;
  if (!met)
    s->missed[miss]++;
  s->prompt += o->prompt_tokens;
  s->cached += o->cached_tokens;
  s->generated += o->generated_tokens;
  s->cost_usd += o->cost_usd;
  hist_record(s->ttft, o->ttft);
  hist_record(s->e2e, o->e2e);
  if (tpot_us >= 0)
    hist_record(s->tpot, (uint64_t)(tpot_us + 0.5));
}

static void count_error(report_t *r, const char *name) {
  for (size_t i = 0; i < r->n_errors; i++)
    if (strcmp(r->errors[i].name, name) == 0) {
      r->errors[i].count++;
      return;
    }
  r->errors = xrealloc(r->errors, (r->n_errors + 1) * sizeof *r->errors);
  r->errors[r->n_errors++] = (error_count_t){xstrdup(name), 1};
}

/* Makes second sec of the timeline exist. */
static void timeline_reach(report_t *r, uint64_t sec) {
  if (sec >= r->cap_seconds) {
    size_t cap = r->cap_seconds ? r->cap_seconds : 64;
    while (cap <= sec)
      cap *= 2;
    r->timeline = xrealloc(r->timeline, cap * sizeof *r->timeline);
    memset(r->timeline + r->cap_seconds, 0,
           (cap - r->cap_seconds) * sizeof *r->timeline);
    r->cap_seconds = cap;
  }
  if (sec >= r->n_seconds)
    r->n_seconds = sec + 1;
}

/* Spreads n tokens evenly over [from, to) us of the run. */
static void spread_tokens(report_t *r, infs_time_t from, infs_time_t to,
                          double n) {
  if (to <= from) {
    r->timeline[to / INFS_US_PER_S].produced_tokens += n;
    return;
  }
  double per_us = n / (double)(to - from);
  for (infs_time_t t = from; t < to;) {
    infs_time_t next = (t / INFS_US_PER_S + 1) * INFS_US_PER_S;
    if (next > to)
      next = to;
    r->timeline[t / INFS_US_PER_S].produced_tokens +=
        per_us * (double)(next - t);
    t = next;
  }
}

static void timeline_add(report_t *r, const report_outcome_t *o) {
  uint64_t sec = o->done_at / INFS_US_PER_S;
  if (sec >= TIMELINE_MAX_S)
    return;
  timeline_reach(r, sec);
  report_second_t *s = &r->timeline[sec];
  if (o->status == REPORT_COMPLETED) {
    s->completed[o->cls]++;
    s->prompt_tokens += o->prompt_tokens;
    s->generated_tokens += o->generated_tokens;
    /* Tokens flow from the first token to Done, not all at the end. */
    infs_time_t decode = o->e2e > o->ttft ? o->e2e - o->ttft : 0;
    infs_time_t first = o->done_at > decode ? o->done_at - decode : 0;
    spread_tokens(r, first, o->done_at, o->generated_tokens);
  } else {
    s->errors++;
  }
}

static void part_add(report_t *r, const char *cls, cost_part_t part,
                     double usd) {
  if (!cls || !*cls)
    cls = "unknown";
  part_cost_t *c = NULL;
  for (size_t i = 0; i < r->n_part_costs && !c; i++)
    if (strcmp(r->part_costs[i].cls, cls) == 0)
      c = &r->part_costs[i];
  if (!c) {
    r->part_costs =
        xrealloc(r->part_costs, (r->n_part_costs + 1) * sizeof *r->part_costs);
    c = &r->part_costs[r->n_part_costs++];
    memset(c, 0, sizeof *c);
    c->cls = xstrdup(cls);
  }
  c->usd[part] += usd;
  c->requests[part]++;
}

static void phases_add(report_t *r, const report_outcome_t *o) {
  const report_phases_t *p = &o->phases;
  phase_stats_t *s = p->split ? &r->split : &r->whole;
  s->requests++;
  hist_record(s->h[PHASE_QUEUE], p->queue);
  hist_record(s->h[PHASE_PREFILL], p->prefill);
  if (p->split)
    hist_record(s->h[PHASE_TRANSFER], p->transfer);
  hist_record(s->h[PHASE_DECODE], p->decode);
  if (p->split) {
    part_add(r, p->prefill_worker_class, PART_PREFILL, p->prefill_cost_usd);
    part_add(r, o->worker_class, PART_DECODE,
             o->cost_usd - p->prefill_cost_usd);
  } else {
    part_add(r, o->worker_class, PART_WHOLE, o->cost_usd);
  }
}

void report_phases_from_done(const Infsched__Done *d, report_phases_t *out) {
  *out = (report_phases_t){.known = true, .queue = d->queue_us};
  if (d->prefill_worker_id && *d->prefill_worker_id) {
    out->split = true;
    out->prefill = d->prefill_us;
    out->transfer = d->transfer_us;
    out->decode = d->decode_us;
    out->prefill_cost_usd = d->prefill_cost_usd;
    out->prefill_worker_id = d->prefill_worker_id;
    out->prefill_worker_class = d->prefill_worker_class;
    return;
  }
  out->prefill = d->ttft_us > d->queue_us ? d->ttft_us - d->queue_us : 0;
  out->decode = d->e2e_us > d->ttft_us ? d->e2e_us - d->ttft_us : 0;
}

void report_add(report_t *r, const report_outcome_t *o) {
  assert((unsigned)o->cls < INFS_CLASS_COUNT);
  assert((unsigned)o->status <= REPORT_LOST);
  double tpot_us = tpot_us_of(o);
  slo_miss_t miss =
      o->status == REPORT_COMPLETED ? miss_of(o, tpot_us) : SLO_MISS_NONE;
  if (o->status == REPORT_FAILED || o->status == REPORT_REJECTED)
    count_error(r, o->error && *o->error ? o->error : "unspecified");
  stats_add(&r->all, o, tpot_us, miss);
  stats_add(&r->by[o->cls], o, tpot_us, miss);
  if (o->status == REPORT_COMPLETED && !r->by[o->cls].has_slo) {
    r->by[o->cls].has_slo = true;
    r->by[o->cls].slo = o->slo;
  }
  if (o->status == REPORT_COMPLETED)
    wclass_add(r,
               o->worker_class && *o->worker_class ? o->worker_class
                                                   : "unknown",
               o->cls, miss);
  if (o->status == REPORT_COMPLETED && o->worker_id && *o->worker_id) {
    worker_stats_t *w = worker_get(r, o->worker_id, o->worker_class);
    w->requests++;
    w->prompt += o->prompt_tokens;
    w->cached += o->cached_tokens;
    w->request_usd += o->cost_usd;
  }
  if (o->status == REPORT_COMPLETED && o->phases.known)
    phases_add(r, o);
  if (o->done_at && o->status != REPORT_LOST)
    timeline_add(r, o);
}

bool report_class_slo(const report_t *r, int cls, slo_t *out) {
  if ((unsigned)cls >= INFS_CLASS_COUNT || !r->by[cls].has_slo)
    return false;
  *out = r->by[cls].slo;
  return true;
}

void report_set_setting(report_t *r, const char *name, const char *value) {
  for (size_t i = 0; i < r->n_settings; i++) {
    if (strcmp(r->setting_names[i], name) == 0) {
      free(r->setting_values[i]);
      r->setting_values[i] = xstrdup(value ? value : "");
      return;
    }
  }
  size_t n = r->n_settings + 1;
  r->setting_names = xrealloc(r->setting_names, n * sizeof(char *));
  r->setting_values = xrealloc(r->setting_values, n * sizeof(char *));
  r->setting_names[r->n_settings] = xstrdup(name);
  r->setting_values[r->n_settings] = xstrdup(value ? value : "");
  r->n_settings = n;
}

void report_set_count_setting(report_t *r, const char *name,
                              const char *const *items, size_t n) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = xcheck(open_memstream(&text, &len));
  for (size_t i = 0; i < n; i++) {
    bool seen = false;
    for (size_t k = 0; k < i && !seen; k++)
      seen = strcmp(items[k], items[i]) == 0;
    if (seen)
      continue;
    size_t count = 0;
    for (size_t k = i; k < n; k++)
      count += strcmp(items[k], items[i]) == 0;
    fprintf(f, "%s%zu %s", ftell(f) ? ", " : "", count, items[i]);
  }
  if (fclose(f) != 0)
    abort();
  report_set_setting(r, name, text);
  free(text);
}

size_t report_settings(const report_t *r, const char *const **names,
                       const char *const **values) {
  *names = (const char *const *)r->setting_names;
  *values = (const char *const *)r->setting_values;
  return r->n_settings;
}

void report_add_worker_sample(report_t *r, const report_worker_sample_t *s) {
  /* A poll lists the workers in the same order each time: try the one
   * after the last first, so a large pool is not searched per sample. */
  size_t h = r->wsample_hint;
  worker_stats_t *w = h < r->n_workers && strcmp(r->workers[h].id, s->id) == 0
                          ? &r->workers[h]
                          : worker_get(r, s->id, s->cls);
  r->wsample_hint = (size_t)(w - r->workers) + 1;
  if (r->n_wsamples == r->cap_wsamples) {
    r->cap_wsamples = r->cap_wsamples ? 2 * r->cap_wsamples : 256;
    r->wsamples = xrealloc(r->wsamples, r->cap_wsamples * sizeof *r->wsamples);
  }
  r->wsamples[r->n_wsamples++] = (report_wsample_t){
      .t = s->t,
      .worker = (uint32_t)(w - r->workers),
      .outstanding = s->outstanding,
      .busy_s = s->busy_s,
      .cost_usd = s->cost_usd,
  };
}

size_t report_worker_samples(const report_t *r, const report_wsample_t **out) {
  *out = r->wsamples;
  return r->n_wsamples;
}

size_t report_worker_count(const report_t *r) {
  return r->n_workers;
}

void report_worker_name(const report_t *r, size_t i, const char **id,
                        const char **cls) {
  *id = r->workers[i].id;
  *cls = *r->workers[i].cls ? r->workers[i].cls : "unknown";
}

void report_add_worker(report_t *r, const char *id, const char *cls,
                       double cost_usd, double busy_s, double up_s) {
  worker_stats_t *w = worker_get(r, id, cls);
  w->pool = true;
  w->cost_usd += cost_usd;
  w->busy_s += busy_s;
  w->up_s += up_s;
}

void report_set_worker_role(report_t *r, const char *id, const char *role) {
  worker_stats_t *w = worker_get(r, id, NULL);
  free(w->role);
  w->role = xstrdup(role);
}

void report_add_sample(report_t *r, const report_sample_t *s) {
  if (r->n_samples == r->cap_samples) {
    r->cap_samples = r->cap_samples ? 2 * r->cap_samples : 256;
    r->samples =
        xrealloc(r->samples, r->cap_samples * sizeof *r->samples);
  }
  r->samples[r->n_samples++] = *s;
}

size_t report_samples(const report_t *r, const report_sample_t **out) {
  *out = r->samples;
  return r->n_samples;
}

size_t report_timeline(const report_t *r, const report_second_t **out) {
  *out = r->timeline;
  return r->n_seconds;
}

static const class_stats_t *stats_of(const report_t *r, int cls) {
  assert(cls < INFS_CLASS_COUNT);
  return cls < 0 ? &r->all : &r->by[cls];
}

const hist_t *report_latency(const report_t *r, int cls, report_metric_t m) {
  const class_stats_t *s = stats_of(r, cls);
  return m == REPORT_TTFT ? s->ttft : m == REPORT_TPOT ? s->tpot : s->e2e;
}

void report_requests(const report_t *r, int cls, report_requests_t *out) {
  *out = stats_of(r, cls)->req;
}

double report_slo_attainment(const report_t *r, int cls) {
  const class_stats_t *s = stats_of(r, cls);
  return s->req.sent ? (double)s->slo_met / (double)s->req.sent : 0.0;
}

void report_slo_counts(const report_t *r, int cls, const char *worker_class,
                       report_slo_counts_t *out) {
  memset(out, 0, sizeof *out);
  if (!worker_class) {
    const class_stats_t *s = stats_of(r, cls);
    out->completed = s->req.completed;
    out->met = s->slo_met;
    memcpy(out->missed, s->missed, sizeof out->missed);
    return;
  }
  for (size_t i = 0; i < r->n_wclasses; i++)
    if (strcmp(r->wclasses[i].name, worker_class) == 0)
      *out = cls < 0 ? r->wclasses[i].all : r->wclasses[i].by[cls];
}

/* Pool cost when any worker reported one, else the per-request sum. */
static double total_cost(const report_t *r, bool *from_pool) {
  double pool = 0;
  *from_pool = false;
  for (size_t i = 0; i < r->n_workers; i++) {
    if (r->workers[i].pool) {
      *from_pool = true;
      pool += r->workers[i].cost_usd;
    }
  }
  return *from_pool ? pool : r->all.cost_usd;
}

static double per_mtok(double usd, uint64_t tokens) {
  return tokens ? usd / (double)tokens * 1e6 : 0.0;
}

static double ms(uint64_t us) {
  return (double)us / 1000.0;
}

static int by_id(const void *a, const void *b) {
  const worker_stats_t *const *x = a, *const *y = b;
  return strcmp((*x)->id, (*y)->id);
}

/* Workers in id order, for output that does not depend on arrival order. */
static const worker_stats_t **sorted_workers(const report_t *r) {
  const worker_stats_t **v = xcalloc(r->n_workers + 1, sizeof *v);
  for (size_t i = 0; i < r->n_workers; i++)
    v[i] = &r->workers[i];
  qsort(v, r->n_workers, sizeof *v, by_id);
  return v;
}

/* --- JSON --- */

/* cJSON's add functions tolerate a NULL parent, so one check per object is
 * enough to notice running out of memory. */
static cJSON *obj(cJSON *parent, const char *key, bool *ok) {
  cJSON *o = cJSON_AddObjectToObject(parent, key);
  if (!o)
    *ok = false;
  return o;
}

static void num(cJSON *o, const char *key, double v, bool *ok) {
  if (!cJSON_AddNumberToObject(o, key, v))
    *ok = false;
}

static void add_requests(cJSON *parent, const report_requests_t *q, bool *ok) {
  cJSON *o = obj(parent, "requests", ok);
  num(o, "sent", (double)q->sent, ok);
  num(o, "completed", (double)q->completed, ok);
  num(o, "failed", (double)q->failed, ok);
  num(o, "rejected", (double)q->rejected, ok);
  num(o, "lost", (double)q->lost, ok);
}

static void add_quantiles(cJSON *parent, const char *key, const hist_t *h,
                          bool *ok) {
  cJSON *o = obj(parent, key, ok);
  num(o, "p50", ms(hist_quantile(h, 0.50)), ok);
  num(o, "p90", ms(hist_quantile(h, 0.90)), ok);
  num(o, "p99", ms(hist_quantile(h, 0.99)), ok);
  num(o, "mean", hist_mean(h) / 1000.0, ok);
  num(o, "count", (double)hist_count(h), ok);
}

static void add_missed(cJSON *parent, const uint64_t *missed, bool *ok) {
  cJSON *o = obj(parent, "slo_missed", ok);
  for (int m = SLO_MISS_TTFT; m <= SLO_MISS_BOTH; m++)
    num(o, slo_miss_name((slo_miss_t)m), (double)missed[m], ok);
}

static void add_counts(cJSON *o, const report_slo_counts_t *c, bool *ok) {
  num(o, "completed", (double)c->completed, ok);
  num(o, "slo_met", (double)c->met, ok);
  add_missed(o, c->missed, ok);
}

static int by_name(const void *a, const void *b) {
  const wclass_stats_t *x = a, *y = b;
  return strcmp(x->name, y->name);
}

/* Worker classes in name order (shallow copies). */
static wclass_stats_t *sorted_wclasses(const report_t *r) {
  wclass_stats_t *v = xcalloc(r->n_wclasses + 1, sizeof *v);
  if (r->n_wclasses) { /* an empty report has no array to copy */
    memcpy(v, r->wclasses, r->n_wclasses * sizeof *v);
    qsort(v, r->n_wclasses, sizeof *v, by_name);
  }
  return v;
}

/* {"gpu": {"completed", "slo_met", "slo_missed", "by_class": {...}}}. */
static void add_worker_classes(cJSON *root, const report_t *r, bool *ok) {
  cJSON *all = obj(root, "by_worker_class", ok);
  wclass_stats_t *v = sorted_wclasses(r);
  for (size_t i = 0; i < r->n_wclasses; i++) {
    cJSON *o = obj(all, v[i].name, ok);
    add_counts(o, &v[i].all, ok);
    cJSON *by = obj(o, "by_class", ok);
    for (int c = 0; c < INFS_CLASS_COUNT; c++)
      if (v[i].by[c].completed)
        add_counts(obj(by, infs_class_name((infs_class_t)c), ok), &v[i].by[c],
                   ok);
  }
  free(v);
}

static int by_part_cls(const void *a, const void *b) {
  const part_cost_t *x = a, *y = b;
  return strcmp(x->cls, y->cls);
}

/* Phase costs in worker class order (shallow copies). */
static part_cost_t *sorted_part_costs(const report_t *r) {
  part_cost_t *v = xcalloc(r->n_part_costs + 1, sizeof *v);
  if (r->n_part_costs) {
    memcpy(v, r->part_costs, r->n_part_costs * sizeof *v);
    qsort(v, r->n_part_costs, sizeof *v, by_part_cls);
  }
  return v;
}

/* {"whole": {"requests", "latency_ms": {"queue", "prefill", "decode"}},
 * "split": {... "transfer" ...}, "cost_by_worker_class": {"gpu":
 * {"prefill": {"usd", "requests"}, "decode": ..., "whole": ...}}}. */
static void add_phases(cJSON *root, const report_t *r, bool *ok) {
  cJSON *ph = obj(root, "phases", ok);
  for (int k = 0; k < 2; k++) {
    const phase_stats_t *s = k ? &r->split : &r->whole;
    cJSON *o = obj(ph, k ? "split" : "whole", ok);
    num(o, "requests", (double)s->requests, ok);
    cJSON *lat = obj(o, "latency_ms", ok);
    for (int p = 0; p < PHASE_COUNT; p++)
      if (k || p != PHASE_TRANSFER)
        add_quantiles(lat, phase_names[p], s->h[p], ok);
  }
  cJSON *costs = obj(ph, "cost_by_worker_class", ok);
  part_cost_t *v = sorted_part_costs(r);
  for (size_t i = 0; i < r->n_part_costs; i++) {
    cJSON *c = obj(costs, v[i].cls, ok);
    for (int p = 0; p < PART_COUNT; p++) {
      cJSON *o = obj(c, part_names[p], ok);
      num(o, "usd", v[i].usd[p], ok);
      num(o, "requests", (double)v[i].requests[p], ok);
    }
  }
  free(v);
}

/* The fields every class shares with the whole run. */
static void add_class_fields(cJSON *o, const class_stats_t *s, double usd,
                             bool *ok) {
  add_requests(o, &s->req, ok);
  cJSON *lat = obj(o, "latency_ms", ok);
  add_quantiles(lat, "ttft", s->ttft, ok);
  add_quantiles(lat, "tpot", s->tpot, ok);
  add_quantiles(lat, "e2e", s->e2e, ok);
  num(o, "slo_attainment",
      s->req.sent ? (double)s->slo_met / (double)s->req.sent : 0.0, ok);
  add_missed(o, s->missed, ok);
  cJSON *tok = obj(o, "tokens", ok);
  num(tok, "prompt", (double)s->prompt, ok);
  num(tok, "generated", (double)s->generated, ok);
  num(tok, "cached", (double)s->cached, ok);
  cJSON *cost = obj(o, "cost", ok);
  num(cost, "usd_total", usd, ok);
  num(cost, "usd_per_mtok", per_mtok(usd, s->prompt + s->generated), ok);
}

cJSON *report_to_json(const report_t *r) {
  bool ok = true, from_pool;
  cJSON *root = cJSON_CreateObject();
  if (!root)
    return NULL;
  if (!cJSON_AddStringToObject(root, "policy",
                               r->policy ? r->policy : "unknown"))
    ok = false;
  double usd = total_cost(r, &from_pool);
  add_class_fields(root, &r->all, usd, &ok);
  if (!cJSON_AddStringToObject(cJSON_GetObjectItem(root, "cost"), "source",
                               from_pool ? "pool" : "requests"))
    ok = false;

  double secs = (double)r->window / 1e6;
  uint64_t tokens = r->all.prompt + r->all.generated;
  num(root, "window_s", secs, &ok);
  cJSON *tp = obj(root, "throughput", &ok);
  num(tp, "req_per_s", secs > 0 ? (double)r->all.req.completed / secs : 0.0,
      &ok);
  num(tp, "tok_per_s", secs > 0 ? (double)tokens / secs : 0.0, &ok);
  num(tp, "generated_tok_per_s",
      secs > 0 ? (double)r->all.generated / secs : 0.0, &ok);

  cJSON *settings = obj(root, "settings", &ok);
  for (size_t i = 0; settings && i < r->n_settings; i++)
    if (!cJSON_AddStringToObject(settings, r->setting_names[i],
                                 r->setting_values[i]))
      ok = false;
  cJSON *slo = obj(root, "slo", &ok);
  for (int c = 0; slo && c < INFS_CLASS_COUNT; c++) {
    char text[64];
    if (!r->by[c].has_slo)
      continue;
    slo_format(&r->by[c].slo, text, sizeof text);
    if (!cJSON_AddStringToObject(slo, infs_class_name((infs_class_t)c), text))
      ok = false;
  }

  cJSON *errors = obj(root, "errors", &ok);
  for (size_t i = 0; errors && i < r->n_errors; i++)
    num(errors, r->errors[i].name, (double)r->errors[i].count, &ok);

  cJSON *by = obj(root, "by_class", &ok);
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    cJSON *o = obj(by, infs_class_name((infs_class_t)c), &ok);
    add_class_fields(o, &r->by[c], r->by[c].cost_usd, &ok);
  }

  add_worker_classes(root, r, &ok);
  add_phases(root, r, &ok);

  cJSON *arr = cJSON_AddArrayToObject(root, "workers");
  if (!arr)
    ok = false;
  const worker_stats_t **ws = sorted_workers(r);
  for (size_t i = 0; arr && i < r->n_workers; i++) {
    const worker_stats_t *w = ws[i];
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      ok = false;
      break;
    }
    if (!cJSON_AddStringToObject(o, "id", w->id) ||
        !cJSON_AddStringToObject(o, "class", w->cls) ||
        !(w->role ? cJSON_AddStringToObject(o, "role", w->role)
                  : cJSON_AddNullToObject(o, "role")))
      ok = false;
    num(o, "requests", (double)w->requests, &ok);
    if (w->pool && w->up_s > 0)
      num(o, "utilization", w->busy_s / w->up_s, &ok);
    else if (!cJSON_AddNullToObject(o, "utilization"))
      ok = false;
    num(o, "prefix_hit_rate",
        w->prompt ? (double)w->cached / (double)w->prompt : 0.0, &ok);
    if (w->pool)
      num(o, "cost_usd", w->cost_usd, &ok);
    num(o, "request_cost_usd", w->request_usd, &ok);
  }
  free(ws);
  if (!ok) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

int report_write_json_file(const cJSON *root, const char *path) {
  int rc = 0;
  char *text = cJSON_Print(root);
  FILE *f = text ? fopen(path, "w") : NULL;
  if (!text)
    rc = -ENOMEM;
  else if (!f)
    rc = -errno;
  else if (fputs(text, f) == EOF || fputc('\n', f) == EOF)
    rc = -errno;
  if (f && fclose(f) != 0 && rc == 0)
    rc = -errno;
  cJSON_free(text);
  return rc;
}

int report_write_json(const report_t *r, const char *path) {
  cJSON *root = report_to_json(r);
  if (!root)
    return -ENOMEM;
  int rc = report_write_json_file(root, path);
  cJSON_Delete(root);
  return rc;
}

/* --- table --- */

static void print_counts(FILE *out, const char *name, const class_stats_t *s) {
  fprintf(out, "%-12s %8llu %9llu %7llu %8llu %6llu %8.2f%%\n", name,
          (unsigned long long)s->req.sent, (unsigned long long)s->req.completed,
          (unsigned long long)s->req.failed,
          (unsigned long long)s->req.rejected, (unsigned long long)s->req.lost,
          s->req.sent ? 100.0 * (double)s->slo_met / (double)s->req.sent : 0.0);
}

static void print_latency(FILE *out, const char *metric, const char *name,
                          const hist_t *h) {
  if (hist_count(h) == 0) {
    fprintf(out, "%-6s %-12s %10s\n", metric, name, "-");
    return;
  }
  fprintf(out, "%-6s %-12s %10.1f %10.1f %10.1f %10.1f\n", metric, name,
          ms(hist_quantile(h, 0.50)), ms(hist_quantile(h, 0.90)),
          ms(hist_quantile(h, 0.99)), hist_mean(h) / 1000.0);
}

static void print_miss_row(FILE *out, const char *name,
                           const report_slo_counts_t *c) {
  fprintf(out, "%-20s %9llu %8llu %8llu %8llu %8llu\n", name,
          (unsigned long long)c->completed, (unsigned long long)c->met,
          (unsigned long long)c->missed[SLO_MISS_TTFT],
          (unsigned long long)c->missed[SLO_MISS_TPOT],
          (unsigned long long)c->missed[SLO_MISS_BOTH]);
}

/* Which part of the SLO the completed requests missed, by class and by
 * worker class (and class within it). */
static void print_misses(const report_t *r, FILE *out) {
  if (!r->all.req.completed)
    return;
  fprintf(out, "\n%-20s %9s %8s %8s %8s %8s\n", "SLO of completed",
          "completed", "met", "TTFT", "TPOT", "both");
  report_slo_counts_t c;
  for (int k = -1; k < INFS_CLASS_COUNT; k++) {
    report_slo_counts(r, k, NULL, &c);
    if (c.completed)
      print_miss_row(out, k < 0 ? "all" : infs_class_name((infs_class_t)k),
                     &c);
  }
  wclass_stats_t *v = sorted_wclasses(r);
  for (size_t i = 0; i < r->n_wclasses; i++) {
    char name[64];
    snprintf(name, sizeof name, "on %s", v[i].name);
    print_miss_row(out, name, &v[i].all);
    for (int k = 0; k < INFS_CLASS_COUNT; k++) {
      if (!v[i].by[k].completed)
        continue;
      snprintf(name, sizeof name, "  %s", infs_class_name((infs_class_t)k));
      print_miss_row(out, name, &v[i].by[k]);
    }
  }
  free(v);
}

/* Where completed requests' worker time went, whole and split, and what
 * each worker class cost in each part. */
static void print_phases(const report_t *r, FILE *out) {
  if (!r->whole.requests && !r->split.requests)
    return;
  fprintf(out, "\n%-6s %-9s %8s %10s %10s %10s %10s\n", "phase", "ms",
          "requests", "p50", "p90", "p99", "mean");
  for (int k = 0; k < 2; k++) {
    const phase_stats_t *s = k ? &r->split : &r->whole;
    if (!s->requests)
      continue;
    for (int p = 0; p < PHASE_COUNT; p++) {
      if (!k && p == PHASE_TRANSFER)
        continue;
      const hist_t *h = s->h[p];
      char count[24] = "";
      if (p == PHASE_QUEUE)
        snprintf(count, sizeof count, "%llu", (unsigned long long)s->requests);
      fprintf(out, "%-6s %-9s %8s %10.1f %10.1f %10.1f %10.1f\n",
              p == PHASE_QUEUE ? (k ? "split" : "whole") : "", phase_names[p],
              count, ms(hist_quantile(h, 0.50)), ms(hist_quantile(h, 0.90)),
              ms(hist_quantile(h, 0.99)), hist_mean(h) / 1000.0);
    }
  }
  fprintf(out, "\n%-20s %16s %16s %16s\n", "cost by part, USD", "prefill",
          "decode", "whole");
  part_cost_t *v = sorted_part_costs(r);
  for (size_t i = 0; i < r->n_part_costs; i++) {
    fprintf(out, "  %-18s", v[i].cls);
    for (int p = 0; p < PART_COUNT; p++) {
      char cell[40];
      snprintf(cell, sizeof cell, "%.4f (%llu)", v[i].usd[p],
               (unsigned long long)v[i].requests[p]);
      fprintf(out, " %16s", cell);
    }
    fputc('\n', out);
  }
  free(v);
}

void report_print(const report_t *r, FILE *out) {
  bool from_pool;
  double usd = total_cost(r, &from_pool);
  double secs = (double)r->window / 1e6;
  uint64_t tokens = r->all.prompt + r->all.generated;

  fprintf(out, "policy %s, %.1f s\n\n", r->policy ? r->policy : "unknown",
          secs);
  fprintf(out, "%-12s %8s %9s %7s %8s %6s %9s\n", "class", "sent", "completed",
          "failed", "rejected", "lost", "SLO met");
  print_counts(out, "all", &r->all);
  for (int c = 0; c < INFS_CLASS_COUNT; c++)
    if (r->by[c].req.sent)
      print_counts(out, infs_class_name((infs_class_t)c), &r->by[c]);

  print_misses(r, out);

  fprintf(out, "\n%-6s %-12s %10s %10s %10s %10s\n", "ms", "class", "p50",
          "p90", "p99", "mean");
  static const char *const metrics[] = {"ttft", "tpot", "e2e"};
  for (int m = 0; m < 3; m++) {
    const class_stats_t *s = &r->all;
    const hist_t *h = m == 0 ? s->ttft : m == 1 ? s->tpot : s->e2e;
    print_latency(out, metrics[m], "all", h);
    for (int c = 0; c < INFS_CLASS_COUNT; c++) {
      s = &r->by[c];
      if (!s->req.completed)
        continue;
      h = m == 0 ? s->ttft : m == 1 ? s->tpot : s->e2e;
      print_latency(out, "", infs_class_name((infs_class_t)c), h);
    }
  }

  fprintf(out, "\ntokens      prompt %llu (%.1f%% cached), generated %llu\n",
          (unsigned long long)r->all.prompt,
          r->all.prompt ? 100.0 * (double)r->all.cached / (double)r->all.prompt
                        : 0.0,
          (unsigned long long)r->all.generated);
  fprintf(out, "throughput  %.2f req/s, %.1f tok/s (%.1f generated)\n",
          secs > 0 ? (double)r->all.req.completed / secs : 0.0,
          secs > 0 ? (double)tokens / secs : 0.0,
          secs > 0 ? (double)r->all.generated / secs : 0.0);
  fprintf(out, "cost        $%.4f, $%.4f per M tokens (%s)\n", usd,
          per_mtok(usd, tokens),
          from_pool ? "pool, from worker heartbeats"
                    : "sum of per-request costs");
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    const class_stats_t *s = &r->by[c];
    if (s->req.completed)
      fprintf(out, "  %-12s $%.4f, $%.4f per M tokens (marginal)\n",
              infs_class_name((infs_class_t)c), s->cost_usd,
              per_mtok(s->cost_usd, s->prompt + s->generated));
  }
  print_phases(r, out);

  if (r->n_workers) {
    fprintf(out, "\n%-20s %-6s %-8s %9s %7s %11s\n", "worker", "class",
            "role", "requests", "util", "prefix hit");
    const worker_stats_t **ws = sorted_workers(r);
    for (size_t i = 0; i < r->n_workers; i++) {
      const worker_stats_t *w = ws[i];
      char util[16] = "-";
      if (w->pool && w->up_s > 0)
        snprintf(util, sizeof util, "%.1f%%", 100.0 * w->busy_s / w->up_s);
      fprintf(out, "%-20s %-6s %-8s %9llu %7s %10.1f%%\n", w->id,
              *w->cls ? w->cls : "-", w->role ? w->role : "-",
              (unsigned long long)w->requests, util,
              w->prompt ? 100.0 * (double)w->cached / (double)w->prompt : 0.0);
    }
    free(ws);
  }
}

const char *report_status_name(report_status_t s) {
  return (unsigned)s <= REPORT_LOST ? status_names[s] : "unknown";
}
