/* The core's configuration: its defaults, and the names of its outcomes. */
#include "core.h"

#include "cost.h"

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

const char *core_outcome_name(core_outcome_t o) {
  static const char *const names[CORE_OUTCOME_COUNT] = {
      "turn",     "least_loaded", "cache_hit",  "cache_miss", "cache_spill",
      "cheapest", "slo_met",      "slo_missed", "deferred",   "lowest_cost",
      "best_score", "no_room",
  };
  return (unsigned)o < CORE_OUTCOME_COUNT ? names[o] : "unknown";
}
