#include "settings_core.h"

#include "slo.h"

int settings_apply_core(core_config_t *c, const setting_t *s,
                        const setting_value_t *v) {
  char err[256];
  switch (s->id) {
  case SET_POLICY:
    /* The table's own strings, or the caller's argv: both outlive c. */
    c->policy = v->s;
    return 0;
  case SET_HEARTBEAT_MS:
    c->heartbeat_interval = (infs_time_t)v->u * INFS_US_PER_MS;
    return 0;
  case SET_HEARTBEAT_MISS:
    c->heartbeat_miss = (uint32_t)v->u;
    return 0;
  case SET_QUEUE_LIMIT:
    for (int i = 0; i < INFS_CLASS_COUNT; i++)
      c->queue_limit[i] = (uint32_t)v->u;
    return 0;
  case SET_QUEUE_TIMEOUT_MS:
    c->queue_timeout = (infs_time_t)v->u * INFS_US_PER_MS;
    return 0;
  case SET_MAX_ATTEMPTS:
    c->max_attempts = (uint32_t)v->u;
    return 0;
  case SET_PROGRESS_TIMEOUT_MS:
    c->progress_timeout = (infs_time_t)v->u * INFS_US_PER_MS;
    return 0;
  /* settings_parse has checked both lists with these very setters. */
  case SET_SLO:
    (void)slo_parse(v->s, c->slo, err, sizeof err);
    return 0;
  case SET_LATENCY_WEIGHT:
    (void)slo_parse_weights(v->s, c->latency_weight, err, sizeof err);
    return 0;
  case SET_CACHE_MATCH_THRESHOLD:
    c->cache_match_threshold = v->d;
    return 0;
  case SET_CACHE_BALANCE_ABS:
    c->cache_balance_abs = (uint32_t)v->u;
    return 0;
  case SET_CACHE_BALANCE_REL:
    c->cache_balance_rel = v->d;
    return 0;
  case SET_KV_PREFILL_SCALE:
    c->kv_prefill_scale = v->d;
    return 0;
  case SET_KV_OVERLAP_CREDIT:
    c->kv_overlap_credit = v->d;
    return 0;
  case SET_KV_REQUEST_WEIGHT:
    c->kv_request_weight = v->d;
    return 0;
  case SET_KV_TEMPERATURE:
    c->kv_temperature = v->d;
    return 0;
  case SET_SCORE_QUEUE_WEIGHT:
    c->score_queue_weight = v->d;
    return 0;
  case SET_SCORE_KV_WEIGHT:
    c->score_kv_weight = v->d;
    return 0;
  case SET_SCORE_PREFIX_WEIGHT:
    c->score_prefix_weight = v->d;
    return 0;
  case SET_KWH_PRICE:
    c->kwh_usd = v->d;
    return 0;
  default:
    return 1;
  }
}
