#include "metrics.h"

#include "infsched.pb-c.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request classes plus one label for invalid ones (rejected by the core). */
#define CLASSES (INFS_CLASS_COUNT + 1)

/* Seconds: time to first token and end to end. */
static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,  1,     2.5,  5,
                                        10,    30,   60,    120,  300};
/* Seconds per token, with the class SLO targets (25, 40, 200 ms) among the
 * bounds so attainment reads off a bucket. */
static const double token_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.015,
                                      0.02,  0.025,  0.03,  0.04, 0.05,
                                      0.075, 0.1,    0.15,  0.2,  0.3,
                                      0.5,   1,      2.5};
#define MAX_BUCKETS 18

typedef struct buckets {
  const double *bounds;
  size_t n;
} buckets_t;

static const buckets_t latency_buckets = {
    latency_bounds, sizeof latency_bounds / sizeof latency_bounds[0]};
static const buckets_t token_buckets = {
    token_bounds, sizeof token_bounds / sizeof token_bounds[0]};

typedef struct histogram {
  uint64_t counts[MAX_BUCKETS + 1]; /* per bucket; the last is +Inf */
  uint64_t count;
  double sum;
} histogram_t;



static const char *const outcome_names[METRICS_END_COUNT] = {"completed", "failed",
                                                     "rejected", "cancelled"};

/* One tenant's counters. */
typedef struct tenant_stats {
  uint64_t received;
  uint64_t ended[METRICS_END_COUNT];
  uint64_t prompt_tokens;
  uint64_t generated_tokens;
} tenant_stats_t;

static const char *const route_names[METRICS_ROUTE_COUNT] = {
    "/v1/completions", "/v1/chat/completions",
    "/v1/models",      "/healthz",
    "/metrics",        "other"};

static const int statuses[] = {200, 400, 401, 404, 405, 408, 413,
                               429, 431, 500, 502, 503, 504};
#define STATUSES (sizeof statuses / sizeof statuses[0])

struct metrics {
  infs_time_t started;
  uint64_t requests[CLASSES][METRICS_END_COUNT];
  histogram_t ttft[CLASSES];
  histogram_t e2e[CLASSES];
  histogram_t tpot[CLASSES];
  histogram_t itl[CLASSES]; /* inter-token */
  uint64_t slo[CLASSES][SLO_MISS_BOTH + 1]; /* by slo_miss_t */
  uint64_t prompt_tokens[CLASSES];
  uint64_t cached_tokens[CLASSES];
  uint64_t generated_tokens[CLASSES];
  double cost_usd[CLASSES];
  uint64_t http[METRICS_ROUTE_COUNT][STATUSES + 1]; /* last: other codes */
  uint64_t http_aborts;
  const apikeys_t *keys; /* NULL: no tenants */
  tenant_stats_t *tenants;
};

static const char *class_label(size_t c) {
  return c < INFS_CLASS_COUNT ? infs_class_name((infs_class_t)c) : "unknown";
}

metrics_t *metrics_new(infs_time_t now) {
  metrics_t *m = xcalloc(1, sizeof *m);
  m->started = now;
  return m;
}

void metrics_destroy(metrics_t **pm) {
  metrics_t *m = *pm;
  if (!m)
    return;
  free(m->tenants);
  free(m);
  *pm = NULL;
}

/* n observations of s seconds each. */
static void observe_n(histogram_t *h, const buckets_t *b, double s,
                      uint64_t n) {
  size_t i = 0;
  while (i < b->n && s > b->bounds[i])
    i++;
  h->counts[i] += n;
  h->count += n;
  h->sum += s * (double)n;
}

static void observe(histogram_t *h, infs_time_t us) {
  observe_n(h, &latency_buckets, (double)us / 1e6, 1);
}

/* A completed request's TPOT and SLO verdict (slo_judge's, as the reports
 * judge). TPOT is (end - first token) / (tokens - 1), vLLM's and the
 * reports' definition; a request of fewer than two tokens has none, and is
 * judged on TTFT alone. */
static void judge(metrics_t *m, size_t cls, infs_time_t now,
                  const core_action_t *a, uint32_t generated) {
  infs_time_t first = a->first_token ? a->first_token : now;
  double ttft_ms = (double)(first - a->arrived) / 1e3;
  double tpot_ms = -1;
  if (generated >= 2 && a->first_token) {
    tpot_ms = (double)(now - a->first_token) / 1e3 / (generated - 1);
    observe_n(&m->tpot[cls], &token_buckets, tpot_ms / 1e3, 1);
  }
  m->slo[cls][slo_judge(&a->slo, a->uncached, ttft_ms, tpot_ms)]++;
}

metrics_end_t metrics_end_of(int code) {
  if (code >= INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_FULL)
    return METRICS_END_REJECTED;
  if (code == INFSCHED__ERROR_CODE__ERROR_CANCELLED)
    return METRICS_END_CANCELLED;
  return METRICS_END_FAILED;
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
    /* A chunk of n tokens counts n gaps of its delay / n: the tokens of
     * one chunk reached the scheduler together. */
    else if (a->last_token && a->tokens && now >= a->last_token)
      observe_n(&m->itl[cls], &token_buckets,
                (double)(now - a->last_token) / 1e6 / a->tokens, a->tokens);
    break;
  case CORE_ACT_DONE: {
    /* The core's figures when it made the Done (a split request's, or
     * one it kept), else the worker's. */
    const Infsched__Done *d = a->passthrough;
    const Infsched__Usage *u = d ? d->usage : NULL;
    Infsched__Usage made = INFSCHED__USAGE__INIT;
    double cost = d ? d->cost_usd : 0;
    if (a->done) {
      made.prompt_tokens = a->done->prompt_tokens;
      made.cached_tokens = a->done->cached_tokens;
      made.generated_tokens = a->done->generated_tokens;
      u = &made;
      cost = a->done->cost_usd;
    }
    if (!a->streamed)
      observe(&m->ttft[cls], elapsed);
    observe(&m->e2e[cls], elapsed);
    uint32_t generated = a->tokens;
    if (u && u->generated_tokens)
      generated = u->generated_tokens;
    if (cls < INFS_CLASS_COUNT)
      judge(m, cls, now, a, generated);
    if (u) {
      m->prompt_tokens[cls] += u->prompt_tokens;
      m->cached_tokens[cls] += u->cached_tokens;
      m->generated_tokens[cls] += u->generated_tokens;
    }
    m->cost_usd[cls] += cost;
    m->requests[cls][METRICS_END_COMPLETED]++;
    break;
  }
  default:
    m->requests[cls][metrics_end_of(a->code)]++;
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

void metrics_set_tenants(metrics_t *m, const apikeys_t *keys) {
  free(m->tenants);
  m->keys = keys;
  m->tenants = xcalloc(apikeys_tenants(keys), sizeof *m->tenants);
}

static tenant_stats_t *tenant_of(metrics_t *m, int tenant) {
  if (!m->keys || tenant < 0 || (size_t)tenant >= apikeys_tenants(m->keys))
    return NULL;
  return &m->tenants[tenant];
}

void metrics_on_tenant_request(metrics_t *m, int tenant) {
  tenant_stats_t *t = tenant_of(m, tenant);
  if (t)
    t->received++;
}

void metrics_on_tenant_end(metrics_t *m, int tenant, metrics_end_t end,
                           uint64_t prompt_tokens, uint64_t generated_tokens) {
  tenant_stats_t *t = tenant_of(m, tenant);
  if (!t || (unsigned)end >= METRICS_END_COUNT)
    return;
  t->ended[end]++;
  t->prompt_tokens += prompt_tokens;
  t->generated_tokens += generated_tokens;
}

/* --- rendering --- */

static void family(buf_t *o, const char *name, const char *type,
                   const char *help) {
  buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escaped as the text format requires. */
static void put_label(buf_t *o, const char *name, const char *value) {
  buf_printf(o, "%s=\"", name);
  for (const char *p = value ? value : ""; *p; p++) {
    if (*p == '\\')
      buf_puts(o, "\\\\");
    else if (*p == '"')
      buf_puts(o, "\\\"");
    else if (*p == '\n')
      buf_puts(o, "\\n");
    else
      buf_append(o, p, 1);
  }
  buf_puts(o, "\"");
}

static void put_histogram(buf_t *o, const char *name, const histogram_t *h,
                          const buckets_t *b, const char *cls) {
  uint64_t cum = 0;
  for (size_t i = 0; i <= b->n; i++) {
    cum += h->counts[i];
    if (i < b->n)
      buf_printf(o, "%s_bucket{class=\"%s\",le=\"%g\"} %llu\n", name, cls,
                  b->bounds[i], (unsigned long long)cum);
    else
      buf_printf(o, "%s_bucket{class=\"%s\",le=\"+Inf\"} %llu\n", name, cls,
                  (unsigned long long)cum);
  }
  buf_printf(o, "%s_sum{class=\"%s\"} %.9g\n", name, cls, h->sum);
  buf_printf(o, "%s_count{class=\"%s\"} %llu\n", name, cls,
              (unsigned long long)h->count);
}

/* A histogram family with one histogram per valid class. */
static void put_family(buf_t *o, const char *name, const char *help,
                       const histogram_t h[CLASSES], const buckets_t *b) {
  family(o, name, "histogram", help);
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++)
    put_histogram(o, name, &h[c], b, class_label(c));
}

static void render_requests(const metrics_t *m, buf_t *o) {
  family(o, "infsched_requests_total", "counter",
         "Requests from every client that ended, by class and outcome.");
  for (size_t c = 0; c < CLASSES; c++)
    for (int k = 0; k < METRICS_END_COUNT; k++)
      buf_printf(o,
                  "infsched_requests_total{class=\"%s\",outcome=\"%s\"} "
                  "%llu\n",
                  class_label(c), outcome_names[k],
                  (unsigned long long)m->requests[c][k]);
  put_family(o, "infsched_ttft_seconds",
             "Time from submission to the first token, as the scheduler "
             "sees it.",
             m->ttft, &latency_buckets);
  put_family(o, "infsched_e2e_seconds",
             "Time from submission to the terminal Done of completed "
             "requests.",
             m->e2e, &latency_buckets);
  put_family(o, "infsched_tpot_seconds",
             "Time per output token of completed requests of two or more "
             "tokens: (end - first token) / (tokens - 1).",
             m->tpot, &token_buckets);
  put_family(o, "infsched_inter_token_seconds",
             "Time between consecutive tokens as they reach the scheduler (a "
             "chunk of n tokens counts n gaps of its delay / n).",
             m->itl, &token_buckets);
  family(o, "infsched_slo_met_total", "counter",
         "Completed requests that met their TTFT and TPOT targets, by "
         "class.");
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++)
    buf_printf(o, "infsched_slo_met_total{class=\"%s\"} %llu\n",
                class_label(c),
                (unsigned long long)m->slo[c][SLO_MISS_NONE]);
  family(o, "infsched_slo_missed_total", "counter",
         "Completed requests that missed their SLO, by class and by the part "
         "missed (ttft, tpot or both).");
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++)
    for (int k = SLO_MISS_TTFT; k <= SLO_MISS_BOTH; k++)
      buf_printf(o,
                  "infsched_slo_missed_total{class=\"%s\",part=\"%s\"} "
                  "%llu\n",
                  class_label(c), slo_miss_name((slo_miss_t)k),
                  (unsigned long long)m->slo[c][k]);
  family(o, "infsched_tokens_total", "counter",
         "Tokens of completed requests, by class and kind.");
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++) {
    buf_printf(o, "infsched_tokens_total{class=\"%s\",kind=\"prompt\"} %llu\n",
                class_label(c), (unsigned long long)m->prompt_tokens[c]);
    buf_printf(o, "infsched_tokens_total{class=\"%s\",kind=\"cached\"} %llu\n",
                class_label(c), (unsigned long long)m->cached_tokens[c]);
    buf_printf(o,
                "infsched_tokens_total{class=\"%s\",kind=\"generated\"} "
                "%llu\n",
                class_label(c), (unsigned long long)m->generated_tokens[c]);
  }
  family(o, "infsched_request_cost_usd_total", "counter",
         "Marginal cost of completed requests on their workers, by class.");
  for (size_t c = 0; c < INFS_CLASS_COUNT; c++)
    buf_printf(o, "infsched_request_cost_usd_total{class=\"%s\"} %.9g\n",
                class_label(c), m->cost_usd[c]);
}

static void render_http(const metrics_t *m, size_t conns, buf_t *o) {
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
      buf_printf(o,
                  "infsched_http_responses_total{route=\"%s\",code=\"%s\"} "
                  "%llu\n",
                  route_names[r], code, (unsigned long long)m->http[r][i]);
    }
  family(o, "infsched_http_client_aborts_total", "counter",
         "HTTP clients that went away before their answer was complete.");
  buf_printf(o, "infsched_http_client_aborts_total %llu\n",
              (unsigned long long)m->http_aborts);
  family(o, "infsched_http_connections", "gauge", "Open HTTP connections.");
  buf_printf(o, "infsched_http_connections %zu\n", conns);
}

/* Series by tenant: as many as the keys file names tenants. */
static void render_tenants(const metrics_t *m, buf_t *o) {
  if (!m->keys)
    return;
  size_t n = apikeys_tenants(m->keys);
  family(o, "infsched_tenant_requests_received_total", "counter",
         "HTTP inference requests that presented a tenant's API key.");
  for (size_t t = 0; t < n; t++) {
    buf_puts(o, "infsched_tenant_requests_received_total{");
    put_label(o, "tenant", apikeys_tenant_name(m->keys, t));
    buf_printf(o, "} %llu\n", (unsigned long long)m->tenants[t].received);
  }
  family(o, "infsched_tenant_requests_total", "counter",
         "A tenant's HTTP inference requests that ended, by outcome.");
  for (size_t t = 0; t < n; t++)
    for (int k = 0; k < METRICS_END_COUNT; k++) {
      buf_puts(o, "infsched_tenant_requests_total{");
      put_label(o, "tenant", apikeys_tenant_name(m->keys, t));
      buf_printf(o, ",outcome=\"%s\"} %llu\n", outcome_names[k],
                 (unsigned long long)m->tenants[t].ended[k]);
    }
  family(o, "infsched_tenant_tokens_total", "counter",
         "Tokens of a tenant's completed HTTP requests, by kind.");
  for (size_t t = 0; t < n; t++) {
    buf_puts(o, "infsched_tenant_tokens_total{");
    put_label(o, "tenant", apikeys_tenant_name(m->keys, t));
    buf_printf(o, ",kind=\"prompt\"} %llu\n",
               (unsigned long long)m->tenants[t].prompt_tokens);
    buf_puts(o, "infsched_tenant_tokens_total{");
    put_label(o, "tenant", apikeys_tenant_name(m->keys, t));
    buf_printf(o, ",kind=\"generated\"} %llu\n",
               (unsigned long long)m->tenants[t].generated_tokens);
  }
}

static void render_core(const core_t *core, buf_t *o) {
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
      {"infsched_scheduler_breaker_opened_total",
       "Workers' circuit breakers opened by backend failures in a row.",
       offsetof(core_stats_t, breaker_opened)},
      {"infsched_scheduler_stale_messages_total",
       "Worker messages about requests no longer open.",
       offsetof(core_stats_t, stale_messages)},
      {"infsched_scheduler_placement_attempts_total",
       "Requests put to the routing policy, placed or not.",
       offsetof(core_stats_t, placement_attempts)},
      {"infsched_scheduler_split_total",
       "Requests sent to a prefill worker, to be decoded on another.",
       offsetof(core_stats_t, split)},
      {"infsched_scheduler_prefilled_total",
       "Prefills handed off to their decode worker.",
       offsetof(core_stats_t, prefilled)},
      {"infsched_scheduler_split_decoded_total",
       "Split requests whose decode worker streamed from the moved KV.",
       offsetof(core_stats_t, split_decoded)},
      {"infsched_scheduler_kv_fallbacks_total",
       "Split requests run whole after their KV could not be pulled.",
       offsetof(core_stats_t, kv_fallbacks)},
  };
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
    family(o, counters[i].name, "counter", counters[i].help);
    buf_printf(o, "%s %llu\n", counters[i].name,
                (unsigned long long)*(const uint64_t *)((const char *)s +
                                                        counters[i].off));
  }
  family(o, "infsched_scheduler_placements_total", "counter",
         "Placement decisions of the routing policy, by outcome.");
  for (int k = 0; k < CORE_OUTCOME_COUNT; k++)
    buf_printf(o, "infsched_scheduler_placements_total{outcome=\"%s\"} %llu\n",
                core_outcome_name((core_outcome_t)k),
                (unsigned long long)s->outcomes[k]);
  family(o, "infsched_scheduler_prefix_blocks_total", "counter",
         "Prompt blocks of dispatched requests, and those predicted cached "
         "on the worker chosen.");
  buf_printf(o,
              "infsched_scheduler_prefix_blocks_total{kind=\"routed\"} "
              "%llu\n",
              (unsigned long long)s->blocks_routed);
  buf_printf(o,
              "infsched_scheduler_prefix_blocks_total{kind=\"cached\"} "
              "%llu\n",
              (unsigned long long)s->cached_blocks_routed);
  family(o, "infsched_slo_ttft_target_seconds", "gauge",
         "A class's TTFT target for a request with no uncached prompt tokens "
         "(requests may carry their own).");
  for (int c = 0; c < INFS_CLASS_COUNT; c++)
    buf_printf(o, "infsched_slo_ttft_target_seconds{class=\"%s\"} %g\n",
                class_label((size_t)c),
                core_class_slo(core, (infs_class_t)c)->ttft_ms / 1e3);
  family(o, "infsched_slo_ttft_target_per_uncached_token_seconds", "gauge",
         "What a class's TTFT target grows by per uncached prompt token.");
  for (int c = 0; c < INFS_CLASS_COUNT; c++)
    buf_printf(o,
                "infsched_slo_ttft_target_per_uncached_token_seconds{class="
                "\"%s\"} %g\n",
                class_label((size_t)c),
                core_class_slo(core, (infs_class_t)c)->ttft_ms_per_ktok / 1e6);
  family(o, "infsched_slo_tpot_target_seconds", "gauge",
         "A class's TPOT target (requests may carry their own).");
  for (int c = 0; c < INFS_CLASS_COUNT; c++)
    buf_printf(o, "infsched_slo_tpot_target_seconds{class=\"%s\"} %g\n",
                class_label((size_t)c),
                core_class_slo(core, (infs_class_t)c)->tpot_ms / 1e3);
  family(o, "infsched_queue_depth", "gauge",
         "Requests waiting in the admission queues.");
  buf_printf(o, "infsched_queue_depth %zu\n", core_queued(core));
  family(o, "infsched_open_requests", "gauge",
         "Requests admitted and not yet answered.");
  buf_printf(o, "infsched_open_requests %zu\n", core_open_requests(core));
  family(o, "infsched_workers", "gauge", "Registered live workers.");
  buf_printf(o, "infsched_workers %zu\n", core_worker_count(core));
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
  W_HEARTBEAT_AGE,
  W_HEALTHY,
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
    {"infsched_worker_heartbeat_age_seconds", "gauge",
     "Time since the worker's last heartbeat (or other message)."},
    {"infsched_worker_healthy", "gauge",
     "1 while the worker's heartbeats arrive on time (age at most two "
     "intervals) and say its backend is healthy; 0 while they are late "
     "(and it is not yet lost) or its backend is unhealthy."},
};

/* A heartbeat older than this many intervals is late. */
#define LATE_INTERVALS 2

static double wvalue(const core_worker_view_t *v, wfield_t f,
                     infs_time_t now, infs_time_t interval) {
  infs_time_t age = now > v->last_seen ? now - v->last_seen : 0;
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
  case W_HEARTBEAT_AGE:
    return (double)age / 1e6;
  case W_HEALTHY:
    return age <= LATE_INTERVALS * interval && !v->load->unhealthy;
  default:
    return 0;
  }
}

static void render_workers(const core_t *core, infs_time_t now, buf_t *o) {
  infs_time_t interval = core_heartbeat_interval(core);
  double pool_cost = 0;
  for (int f = 0; f < W_COUNT; f++) {
    family(o, wfields[f].name, wfields[f].type, wfields[f].help);
    core_worker_view_t v;
    for (size_t i = 0; core_worker_next(core, &i, &v) == 0;) {
      buf_printf(o, "%s{", wfields[f].name);
      put_label(o, "worker", v.worker_id);
      buf_puts(o, ",");
      put_label(o, "class", infs_worker_class_name(v.profile->cls));
      buf_puts(o, ",");
      put_label(o, "profile", v.profile->name);
      buf_puts(o, ",");
      put_label(o, "model", v.model);
      buf_printf(o, "} %.10g\n", wvalue(&v, (wfield_t)f, now, interval));
      if (f == W_COST)
        pool_cost += v.load->cost_usd;
    }
  }
  /* An info series, so that the role joins any worker series by its
   * worker label without changing theirs. */
  family(o, "infsched_worker_role", "gauge",
         "1 for each live worker, labelled with what it runs of split "
         "requests: both, prefill or decode.");
  core_worker_view_t v;
  for (size_t i = 0; core_worker_next(core, &i, &v) == 0;) {
    buf_puts(o, "infsched_worker_role{");
    put_label(o, "worker", v.worker_id);
    buf_printf(o, ",role=\"%s\"} 1\n", infs_role_name(v.role));
  }
  family(o, "infsched_pool_cost_usd", "gauge",
         "Cost of the live workers since they started.");
  buf_printf(o, "infsched_pool_cost_usd %.10g\n", pool_cost);
}

void metrics_render(const metrics_t *m, const core_t *core, infs_time_t now,
                    size_t http_connections, buf_t *out) {
  family(out, "infsched_uptime_seconds", "gauge",
         "Time since the scheduler started.");
  buf_printf(out, "infsched_uptime_seconds %.3f\n",
              (double)(now - m->started) / 1e6);
  render_requests(m, out);
  render_tenants(m, out);
  render_core(core, out);
  render_workers(core, now, out);
  render_http(m, http_connections, out);
}
