/* The scheduler's Prometheus metrics: requests by class and outcome, TTFT
 * and end-to-end latency histograms, tokens and cost (from every client,
 * ZeroMQ and HTTP alike, measured in the shell as actions leave the core),
 * HTTP responses by route and status, and gauges read from the core's
 * views at scrape time (per-worker load, queue depth). Work per request
 * event is O(1). */
#ifndef INFSCHED_HTTP_METRICS_H
#define INFSCHED_HTTP_METRICS_H

#include "apikeys.h"
#include "buf.h"
#include "core.h"

typedef struct metrics metrics_t;

typedef enum metrics_route {
  METRICS_ROUTE_COMPLETIONS,
  METRICS_ROUTE_CHAT,
  METRICS_ROUTE_MODELS,
  METRICS_ROUTE_HEALTHZ,
  METRICS_ROUTE_METRICS,
  METRICS_ROUTE_OTHER,
  METRICS_ROUTE_COUNT
} metrics_route_t;

metrics_t *metrics_new(infs_time_t now);
void metrics_destroy(metrics_t **m);

/* An action leaving the core; only those to clients are counted. */
void metrics_on_action(metrics_t *m, infs_time_t now, const core_action_t *a);

/* An HTTP response was sent with status. */
void metrics_on_http_status(metrics_t *m, metrics_route_t route, int status);
/* An HTTP client went away before its answer was complete. */
void metrics_on_http_abort(metrics_t *m);

/* Counts requests by tenant too, for the tenants of keys (borrowed for the
 * metrics' life): every tenant's series start at zero. Call once. */
void metrics_set_tenants(metrics_t *m, const apikeys_t *keys);
/* How a tenant's request ended: completed; failed (worker or backend);
 * rejected (refused by the front door or the core before it ran);
 * cancelled (its client went away). */
typedef enum metrics_end {
  METRICS_END_COMPLETED,
  METRICS_END_FAILED,
  METRICS_END_REJECTED,
  METRICS_END_CANCELLED,
  METRICS_END_COUNT
} metrics_end_t;
/* The outcome of a request answered with an error code (the wire's). */
metrics_end_t metrics_end_of(int code);
/* An inference request of tenant arrived, and how it ended (with its
 * tokens when it completed). Tenants out of range are not counted. */
void metrics_on_tenant_request(metrics_t *m, int tenant);
void metrics_on_tenant_end(metrics_t *m, int tenant, metrics_end_t end,
                           uint64_t prompt_tokens, uint64_t generated_tokens);

/* Appends the exposition (Prometheus text format 0.0.4) to out. */
void metrics_render(const metrics_t *m, const core_t *core, infs_time_t now,
                    size_t http_connections, buf_t *out);

#endif
