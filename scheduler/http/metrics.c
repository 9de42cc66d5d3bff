#include "scheduler/http/metrics.h"

#include "infsched.pb-c.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request classes plus one label for invalid ones (rejected by the core). */
#define CLASSES (INFS_CLASS_COUNT + 1)

static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                2.5,   5,    10,    30,   60,  120,  300};
#define BUCKETS (sizeof bounds / sizeof bounds[0])

typedef struct histogram {
  uint64_t counts[BUCKETS + 1]; /* per bucket; the last is +Inf */
  uint64_t count;
  double sum;
} histogram_t;

typedef enum outcome {
  OUT_COMPLETED,
  OUT_FAILED,
  OUT_REJECTED,
  OUT_CANCELLED,
  OUT_COUNT
} outcome_t;

static const char *const outcome_names[OUT_COUNT] = {"completed", "failed",
                                                     "rejected", "cancelled"};

static const char *const route_names[METRICS_ROUTE_COUNT] = {
    "/v1/completions", "/v1/chat/completions",
    "/v1/models",      "/healthz",
    "/metrics",        "other"};

static const int statuses[] = {200, 400, 404, 405, 408, 413,
                               429, 431, 500, 502, 503, 504};
#define STATUSES (sizeof statuses / sizeof statuses[0])

struct metrics {
  infs_time_t started;
  uint64_t requests[CLASSES][OUT_COUNT];
  histogram_t ttft[CLASSES];
  histogram_t e2e[CLASSES];
  uint64_t prompt_tokens[CLASSES];
  uint64_t cached_tokens[CLASSES];
  uint64_t generated_tokens[CLASSES];
  double cost_usd[CLASSES];
  uint64_t http[METRICS_ROUTE_COUNT][STATUSES + 1]; /* last: other codes */
  uint64_t http_aborts;
};

static const char *class_label(size_t c) {
  return c < INFS_CLASS_COUNT ? infs_class_name((infs_class_t)c) : "unknown";
}

metrics_t *metrics_new(infs_time_t now) {
  metrics_t *m = calloc(1, sizeof *m);
  if (!m)
    abort();
  m->started = now;
  return m;
}

void metrics_destroy(metrics_t **pm) {
  metrics_t *m = *pm;
  if (!m)
    return;
  free(m);
  *pm = NULL;
}

static void observe(histogram_t *h, infs_time_t us) {
  double s = (double)us / 1e6;
  size_t i = 0;
  while (i < BUCKETS && s > bounds[i])
    i++;
  h->counts[i]++;
  h->count++;
  h->sum += s;
}

static outcome_t outcome_of(int code) {
  if (code >= INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_FULL)
    return OUT_REJECTED;
  if (code == INFSCHED__ERROR_CODE__ERROR_CANCELLED)
    return OUT_CANCELLED;
  return OUT_FAILED;
}

/* The core stamps every answer to a client with its request's class, its
 * arrival and whether tokens went out before, so that nothing here has to
 * remember open requests. */
void metrics_on_action(metrics_t *m, infs_time_t now, const core_action_t *a) {
  if (a->kind != CORE_ACT_CHUNK && a->kind != CORE_ACT_DONE &&
      a->kind != CORE_ACT_ERROR)
    return;
  /* Refused as a duplicate: the open request with that id is counted. */
  if (a->kind == CORE_ACT_ERROR &&
      a->code == INFSCHED__ERROR_CODE__ERROR_DUPLICATE)
    return;
  size_t cls = (unsigned)a->cls < INFS_CLASS_COUNT ? a->cls : INFS_CLASS_COUNT;
  infs_time_t elapsed = now > a->arrived ? now - a->arrived : 0;
  switch (a->kind) {
  case CORE_ACT_CHUNK:
    if (!a->streamed)
      observe(&m->ttft[cls], elapsed);
    break;
  case CORE_ACT_DONE: {
    const Infsched__Done *d = a->passthrough;
    if (!a->streamed)
      observe(&m->ttft[cls], elapsed);
    observe(&m->e2e[cls], elapsed);
    if (d) {
      if (d->usage) {
        m->prompt_tokens[cls] += d->usage->prompt_tokens;
        m->cached_tokens[cls] += d->usage->cached_tokens;
        m->generated_tokens[cls] += d->usage->generated_tokens;
      }
      m->cost_usd[cls] += d->cost_usd;
    }
    m->requests[cls][OUT_COMPLETED]++;
    break;
  }
  default:
    m->requests[cls][outcome_of(a->code)]++;
  }
}

void metrics_on_http_status(metrics_t *m, metrics_route_t route, int status) {
  if ((unsigned)route >= METRICS_ROUTE_COUNT)
    route = METRICS_ROUTE_OTHER;
  size_t i = 0;
  while (i < STATUSES && statuses[i] != status)
    i++;
  m->http[route][i]++;
}

void metrics_on_http_abort(metrics_t *m) {
  m->http_aborts++;
}

/* --- rendering --- */

static void family(hbuf_t *o, const char *name, const char *type,
                   const char *help) {
  hbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escaped as the text format requires. */
static void put_label(hbuf_t *o, const char *name, const char *value) {
  hbuf_printf(o, "%s=\"", name);
  for (const char *p = value ? value : ""; *p; p++) {
    if (*p == '\\')
      hbuf_puts(o, "\\\\");
    else if (*p == '"')
      hbuf_puts(o, "\\\"");
    else if (*p == '\n')
      hbuf_puts(o, "\\n");
    else
      hbuf_append(o, p, 1);
  }
  hbuf_puts(o, "\"");
}

static void put_histogram(hbuf_t *o, const char *name, const histogram_t *h,
                          const char *cls) {
  uint64_t cum = 0;
  for (size_t i = 0; i <= BUCKETS; i++) {
    cum += h->counts[i];
    if (i < BUCKETS)
      hbuf_printf(o, "%s_bucket{class=\"%s\",le=\"%g\"} %llu\n", name, cls,
                  bounds[i], (unsigned long long)cum);
    else
      hbuf_printf(o, "%s_bucket{class=\"%s\",le=\"+Inf\"} %llu\n", name, cls,
                  (unsigned long long)cum);
  }
  hbuf_printf(o, "%s_sum{class=\"%s\"} %.9g\n", name, cls, h->sum);
  hbuf_printf(o, "%s_count{class=\"%s\"} %llu\n", name, cls,
              (unsigned long long)h->count);
}

static void render_requests(const metrics_t *m, hbuf_t *o) {
  family(o, "infsched_requests_total", "counter",
         "Requests from every client that ended, by class and outcome.");
  for (size_t c = 0; c < CLASSES; c++)
    for (int k = 0; k < OUT_COUNT; k++)
      hbuf_printf(o,
                  "infsched_requests_total{class=\"%s\",outcome=\"%s\"} "
                  "%llu\n",
                  class_label(c), outcome_names[k],
                  (unsigned long long)m->requests[c][k]);
  family(o, "infsched_ttft_seconds", "histogram",
         "Time from submission to the first token, as the scheduler sees "
         "it.");
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++)
    put_histogram(o, "infsched_ttft_seconds", &m->ttft[c], class_label(c));
  family(o, "infsched_e2e_seconds", "histogram",
         "Time from submission to the terminal Done of completed requests.");
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++)
    put_histogram(o, "infsched_e2e_seconds", &m->e2e[c], class_label(c));
  family(o, "infsched_tokens_total", "counter",
         "Tokens of completed requests, by class and kind.");
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++) {
    hbuf_printf(o, "infsched_tokens_total{class=\"%s\",kind=\"prompt\"} %llu\n",
                class_label(c), (unsigned long long)m->prompt_tokens[c]);
    hbuf_printf(o, "infsched_tokens_total{class=\"%s\",kind=\"cached\"} %llu\n",
                class_label(c), (unsigned long long)m->cached_tokens[c]);
    hbuf_printf(o,
                "infsched_tokens_total{class=\"%s\",kind=\"generated\"} "
                "%llu\n",
                class_label(c), (unsigned long long)m->generated_tokens[c]);
  }
  family(o, "infsched_request_cost_usd_total", "counter",
         "Marginal cost of completed requests on their workers, by class.");
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++)
    hbuf_printf(o, "infsched_request_cost_usd_total{class=\"%s\"} %.9g\n",
                class_label(c), m->cost_usd[c]);
}

static void render_http(const metrics_t *m, size_t conns, hbuf_t *o) {
  family(o, "infsched_http_responses_total", "counter",
         "HTTP responses by route and status code.");
  for (int r = 0; r < METRICS_ROUTE_COUNT; r++)
    for (size_t i = 0; i <= STATUSES; i++) {
      if (!m->http[r][i])
        continue;
      char code[8];
      if (i < STATUSES)
        snprintf(code, sizeof code, "%d", statuses[i]);
      else
        snprintf(code, sizeof code, "other");
      hbuf_printf(o,
                  "infsched_http_responses_total{route=\"%s\",code=\"%s\"} "
                  "%llu\n",
                  route_names[r], code, (unsigned long long)m->http[r][i]);
    }
  family(o, "infsched_http_client_aborts_total", "counter",
         "HTTP clients that went away before their answer was complete.");
  hbuf_printf(o, "infsched_http_client_aborts_total %llu\n",
              (unsigned long long)m->http_aborts);
  family(o, "infsched_http_connections", "gauge", "Open HTTP connections.");
  hbuf_printf(o, "infsched_http_connections %zu\n", conns);
}

static void render_core(const core_t *core, hbuf_t *o) {
  const core_stats_t *s = core_stats(core);
  static const struct {
    const char *name;
    const char *help;
    size_t off;
  } counters[] = {
      {"infsched_scheduler_submitted_total", "Requests admitted by the core.",
       offsetof(core_stats_t, submitted)},
      {"infsched_scheduler_dispatches_total", "Dispatches to workers.",
       offsetof(core_stats_t, dispatched)},
      {"infsched_scheduler_redispatches_total",
       "Requests queued again after their worker was lost.",
       offsetof(core_stats_t, redispatched)},
      {"infsched_scheduler_migrations_total",
       "Requests dispatched again after tokens went out, to continue their "
       "stream.",
       offsetof(core_stats_t, migrated)},
      {"infsched_scheduler_adopted_total",
       "Requests taken over from workers that kept them through a "
       "scheduler restart.",
       offsetof(core_stats_t, adopted)},
      {"infsched_scheduler_resubmits_total",
       "Resubmits of requests this scheduler did not know, admitted from "
       "where their client's stream stopped.",
       offsetof(core_stats_t, resubmitted)},
      {"infsched_scheduler_abandoned_total",
       "Adopted requests no client claimed within the queue timeout.",
       offsetof(core_stats_t, abandoned)},
      {"infsched_scheduler_cancelled_total",
       "Requests cancelled by their clients (and cancelled on their worker).",
       offsetof(core_stats_t, cancelled)},
      {"infsched_scheduler_workers_lost_total", "Workers declared lost.",
       offsetof(core_stats_t, workers_lost)},
      {"infsched_scheduler_stale_messages_total",
       "Worker messages about requests no longer open.",
       offsetof(core_stats_t, stale_messages)},
      {"infsched_scheduler_placement_attempts_total",
       "Requests put to the routing policy, placed or not.",
       offsetof(core_stats_t, placement_attempts)},
  };
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
    family(o, counters[i].name, "counter", counters[i].help);
    hbuf_printf(o, "%s %llu\n", counters[i].name,
                (unsigned long long)*(const uint64_t *)((const char *)s +
                                                        counters[i].off));
  }
  family(o, "infsched_scheduler_placements_total", "counter",
         "Placement decisions of the routing policy, by outcome.");
  for (int k = 0; k < CORE_OUTCOME_COUNT; k++)
    hbuf_printf(o, "infsched_scheduler_placements_total{outcome=\"%s\"} %llu\n",
                core_outcome_name((core_outcome_t)k),
                (unsigned long long)s->outcomes[k]);
  family(o, "infsched_scheduler_prefix_blocks_total", "counter",
         "Prompt blocks of dispatched requests, and those predicted cached "
         "on the worker chosen.");
  hbuf_printf(o,
              "infsched_scheduler_prefix_blocks_total{kind=\"routed\"} "
              "%llu\n",
              (unsigned long long)s->blocks_routed);
  hbuf_printf(o,
              "infsched_scheduler_prefix_blocks_total{kind=\"cached\"} "
              "%llu\n",
              (unsigned long long)s->cached_blocks_routed);
  family(o, "infsched_queue_depth", "gauge",
         "Requests waiting in the admission queues.");
  hbuf_printf(o, "infsched_queue_depth %zu\n", core_queued(core));
  family(o, "infsched_open_requests", "gauge",
         "Requests admitted and not yet answered.");
  hbuf_printf(o, "infsched_open_requests %zu\n", core_open_requests(core));
  family(o, "infsched_workers", "gauge", "Registered live workers.");
  hbuf_printf(o, "infsched_workers %zu\n", core_worker_count(core));
}

typedef enum wfield {
  W_OUTSTANDING,
  W_CAPACITY,
  W_QUEUED,
  W_RUNNING,
  W_KV_USED,
  W_KV_TOTAL,
  W_BACKLOG,
  W_TPS,
  W_DISPATCHED,
  W_BUSY,
  W_UP,
  W_COST,
  W_PRICE,
  W_COUNT
} wfield_t;

static const struct {
  const char *name;
  const char *type;
  const char *help;
} wfields[W_COUNT] = {
    {"infsched_worker_outstanding", "gauge",
     "Requests dispatched to the worker and not finished."},
    {"infsched_worker_capacity", "gauge", "Requests the worker accepts."},
    {"infsched_worker_queued", "gauge",
     "Requests waiting on the worker (last heartbeat)."},
    {"infsched_worker_running", "gauge",
     "Requests running on the worker (last heartbeat)."},
    {"infsched_worker_kv_used_tokens", "gauge", "KV cache tokens in use."},
    {"infsched_worker_kv_total_tokens", "gauge", "KV cache capacity."},
    {"infsched_worker_prefill_backlog_tokens", "gauge",
     "Prompt tokens waiting for prefill."},
    {"infsched_worker_tokens_per_second", "gauge",
     "Generated tokens per second (last heartbeat)."},
    {"infsched_worker_dispatches_total", "counter",
     "Requests dispatched to the worker since it registered."},
    {"infsched_worker_busy_seconds_total", "counter",
     "Accelerator busy time since the worker started."},
    {"infsched_worker_up_seconds", "gauge", "Time since the worker started."},
    {"infsched_worker_cost_usd_total", "counter",
     "Cost of the worker since it started (hours, energy, tokens)."},
    {"infsched_worker_price_usd_per_hour", "gauge",
     "Price of the worker's accelerator."},
};

static double wvalue(const core_worker_view_t *v, wfield_t f) {
  switch (f) {
  case W_OUTSTANDING:
    return v->outstanding;
  case W_CAPACITY:
    return v->capacity;
  case W_QUEUED:
    return v->load->queued;
  case W_RUNNING:
    return v->load->running;
  case W_KV_USED:
    return (double)v->load->kv_used;
  case W_KV_TOTAL:
    return (double)v->load->kv_total;
  case W_BACKLOG:
    return (double)v->load->prefill_backlog_tokens;
  case W_TPS:
    return v->load->tokens_per_s;
  case W_DISPATCHED:
    return (double)v->requests;
  case W_BUSY:
    return v->load->busy_s;
  case W_UP:
    return v->load->up_s;
  case W_COST:
    return v->load->cost_usd;
  case W_PRICE:
    return v->profile->price_per_hour;
  default:
    return 0;
  }
}

static void render_workers(const core_t *core, hbuf_t *o) {
  double pool_cost = 0;
  for (int f = 0; f < W_COUNT; f++) {
    family(o, wfields[f].name, wfields[f].type, wfields[f].help);
    core_worker_view_t v;
    for (size_t i = 0; core_worker_next(core, &i, &v) == 0;) {
      hbuf_printf(o, "%s{", wfields[f].name);
      put_label(o, "worker", v.worker_id);
      hbuf_puts(o, ",");
      put_label(o, "class", infs_worker_class_name(v.profile->cls));
      hbuf_puts(o, ",");
      put_label(o, "profile", v.profile->name);
      hbuf_puts(o, ",");
      put_label(o, "model", v.model);
      hbuf_printf(o, "} %.10g\n", wvalue(&v, (wfield_t)f));
      if (f == W_COST)
        pool_cost += v.load->cost_usd;
    }
  }
  family(o, "infsched_pool_cost_usd", "gauge",
         "Cost of the live workers since they started.");
  hbuf_printf(o, "infsched_pool_cost_usd %.10g\n", pool_cost);
}

void metrics_render(const metrics_t *m, const core_t *core, infs_time_t now,
                    size_t http_connections, hbuf_t *out) {
  family(out, "infsched_uptime_seconds", "gauge",
         "Time since the scheduler started.");
  hbuf_printf(out, "infsched_uptime_seconds %.3f\n",
              (double)(now - m->started) / 1e6);
  render_requests(m, out);
  render_core(core, out);
  render_workers(core, out);
  render_http(m, http_connections, out);
}
