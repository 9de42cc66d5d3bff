/* The core's configuration: defaults and the class-list setters shared by
 * the scheduler's flags, cluster files and the simulator. */
#include "core.h"

#include "infsched/errors.h"
#include "cost.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void core_config_defaults(core_config_t *c) {
  static const double weight[INFS_CLASS_COUNT] = {2.0, 1.0, 0.0};
  memset(c, 0, sizeof *c);
  c->policy = "least_loaded";
  c->heartbeat_interval = 200 * INFS_US_PER_MS;
  c->heartbeat_miss = 5;
  c->queue_timeout = 30 * INFS_US_PER_S;
  c->max_attempts = 3;
  c->progress_timeout = 10 * INFS_US_PER_S;
  for (int i = 0; i < INFS_CLASS_COUNT; i++) {
    c->queue_limit[i] = 10000;
    c->latency_weight[i] = weight[i];
  }
  slo_defaults(c->slo);
  /* SGLang's cache-aware router (sgl-model-gateway's cache_threshold,
   * balance_abs_threshold, balance_rel_threshold). */
  c->cache_match_threshold = 0.3;
  c->cache_balance_abs = 64;
  c->cache_balance_rel = 1.5;
  /* Dynamo's KvRouterConfig defaults (prefill_load_scale,
   * overlap_score_credit, decode_active_request_weight,
   * router_temperature). */
  c->kv_prefill_scale = 1.0;
  c->kv_overlap_credit = 1.0;
  c->kv_request_weight = 0.0;
  c->kv_temperature = 0.0;
  /* llm-d's default scheduling profile: queue-scorer 2,
   * kv-cache-utilization-scorer 2, prefix-cache-scorer 3. */
  c->score_queue_weight = 2.0;
  c->score_kv_weight = 2.0;
  c->score_prefix_weight = 3.0;
  c->kwh_usd = COST_DEFAULT_KWH_USD;
  c->max_open_bytes = (size_t)1 << 30;
}

int core_config_set_latency_weight(core_config_t *c, const char *list,
                                   char *err, size_t errlen) {
  double w[INFS_CLASS_COUNT];
  memcpy(w, c->latency_weight, sizeof w);
  const char *p = list;
  if (!*p) {
    snprintf(err, errlen, "empty list");
    return INFS_ECONFIG;
  }
  while (*p) {
    size_t len = strcspn(p, ",");
    char item[64];
    if (len == 0 || len >= sizeof item) {
      snprintf(err, errlen, "expected CLASS=WEIGHT in '%.*s'", (int)len, p);
      return INFS_ECONFIG;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    char *eq = strchr(item, '=');
    infs_class_t cls;
    if (!eq) {
      snprintf(err, errlen, "expected CLASS=WEIGHT in '%s'", item);
      return INFS_ECONFIG;
    }
    *eq = '\0';
    if (infs_class_parse(item, &cls)) {
      snprintf(err, errlen, "unknown class '%s' (interactive, agent or batch)",
               item);
      return INFS_ECONFIG;
    }
    char *end;
    double v = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !isfinite(v) || v < 0) {
      snprintf(err, errlen, "weight of %s: expected a number >= 0, got '%s'",
               item, eq + 1);
      return INFS_ECONFIG;
    }
    w[cls] = v;
    p += len;
    if (*p == ',')
      p++;
  }
  memcpy(c->latency_weight, w, sizeof w);
  return 0;
}

const char *core_outcome_name(core_outcome_t o) {
  static const char *const names[CORE_OUTCOME_COUNT] = {
      "turn",     "least_loaded", "cache_hit",  "cache_miss", "cache_spill",
      "cheapest", "slo_met",      "slo_missed", "deferred",   "lowest_cost",
      "best_score", "no_room",
  };
  return (unsigned)o < CORE_OUTCOME_COUNT ? names[o] : "unknown";
}
