#include "summary.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static double num_at(const cJSON *o, const char *a, const char *b,
                     const char *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
  if (b)
    v = cJSON_GetObjectItemCaseSensitive(v, b);
  if (c)
    v = cJSON_GetObjectItemCaseSensitive(v, c);
  return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

int summary_from_report(const report_t *r, const sim_stats_t *st,
                        summary_t *out) {
  cJSON *j = report_to_json(r);
  if (!j)
    return -ENOMEM;
  memset(out, 0, sizeof *out);
  const cJSON *policy = cJSON_GetObjectItemCaseSensitive(j, "policy");
  snprintf(out->policy, sizeof out->policy, "%s",
           cJSON_IsString(policy) ? policy->valuestring : "unknown");
  out->sent = (uint64_t)num_at(j, "requests", "sent", NULL);
  out->completed = (uint64_t)num_at(j, "requests", "completed", NULL);
  out->failed = (uint64_t)num_at(j, "requests", "failed", NULL);
  out->rejected = (uint64_t)num_at(j, "requests", "rejected", NULL);
  out->lost = (uint64_t)num_at(j, "requests", "lost", NULL);
  out->slo = num_at(j, "slo_attainment", NULL, NULL);
  const cJSON *by = cJSON_GetObjectItemCaseSensitive(j, "by_class");
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    const cJSON *k =
        cJSON_GetObjectItemCaseSensitive(by, infs_class_name((infs_class_t)c));
    out->slo_class[c] = num_at(k, "requests", "sent", NULL) > 0
                            ? num_at(k, "slo_attainment", NULL, NULL)
                            : -1.0;
  }
  out->ttft_p50_ms = num_at(j, "latency_ms", "ttft", "p50");
  out->ttft_p99_ms = num_at(j, "latency_ms", "ttft", "p99");
  out->usd_total = num_at(j, "cost", "usd_total", NULL);
  out->usd_per_mtok = num_at(j, "cost", "usd_per_mtok", NULL);
  out->usd_per_mtok_slo = st && st->slo_tokens
                              ? out->usd_total / (double)st->slo_tokens * 1e6
                              : 0.0;
  out->req_per_s = num_at(j, "throughput", "req_per_s", NULL);
  out->tok_per_s = num_at(j, "throughput", "tok_per_s", NULL);
  out->window_s = num_at(j, "window_s", NULL, NULL);
  double prompt = num_at(j, "tokens", "prompt", NULL);
  out->cache_hit = prompt > 0 ? num_at(j, "tokens", "cached", NULL) / prompt : 0;
  out->usd_per_hour = st ? st->pool_usd_per_hour : 0.0;
  cJSON_Delete(j);
  return 0;
}
