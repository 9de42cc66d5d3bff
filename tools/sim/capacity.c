#include "tools/sim/capacity.h"

#include "tools/sim/drive.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void capacity_opts_default(capacity_opts_t *o) {
  o->target = 0.99;
  o->tolerance = 0.02;
  /* Below 1/64 of the workload's load a pool that still misses the target
   * misses it on the requests themselves (too long for any worker, say),
   * and such runs are long in virtual time. */
  o->min_scale = 1.0 / 64;
  o->max_scale = 1024;
}

typedef struct search {
  const sim_config_t *cfg;
  const sim_source_t *src;
  const capacity_opts_t *o;
  capacity_point_t *out;
  cJSON **json;
  char *err;
  size_t errlen;
} search_t;

/* Runs one scale; *met says whether it sustained the target. Keeps the run
 * as the answer when it is the highest scale met so far. */
static int probe(search_t *s, double scale, bool *met) {
  summary_t sum;
  cJSON *json = NULL;
  int rc = drive_once(s->cfg, s->src, scale, &sum, s->json ? &json : NULL,
                      s->err, s->errlen);
  if (rc)
    return rc;
  s->out->runs++;
  *met = sum.sent > 0 && sum.slo >= s->o->target;
  if (*met && (!s->out->found || scale > s->out->scale)) {
    s->out->found = true;
    s->out->scale = scale;
    s->out->sum = sum;
    if (s->json) {
      cJSON_Delete(*s->json);
      *s->json = json;
      json = NULL;
    }
  }
  cJSON_Delete(json);
  return 0;
}

int capacity_search(const sim_config_t *base, const sim_source_t *src,
                    const capacity_opts_t *o, capacity_point_t *out,
                    cJSON **json, char *err, size_t errlen) {
  search_t s = {base, src, o, out, json, err, errlen};
  bool met;
  double lo, hi;
  memset(out, 0, sizeof *out);
  snprintf(out->policy, sizeof out->policy, "%s", base->core.policy);
  if (json)
    *json = NULL;
  int rc = probe(&s, 1.0, &met);
  if (rc)
    return rc;
  if (met) {
    for (lo = 1.0, hi = 2.0;; lo = hi, hi *= 2) {
      if (hi > o->max_scale) {
        out->capped = true;
        goto done;
      }
      if ((rc = probe(&s, hi, &met)))
        return rc;
      if (!met)
        break;
    }
  } else {
    for (hi = 1.0, lo = 0.5;; hi = lo, lo /= 2) {
      if (lo < o->min_scale)
        goto done;
      if ((rc = probe(&s, lo, &met)))
        return rc;
      if (met)
        break;
    }
  }
  while (hi / lo > 1.0 + o->tolerance) {
    double mid = sqrt(lo * hi);
    if ((rc = probe(&s, mid, &met)))
      return rc;
    if (met)
      lo = mid;
    else
      hi = mid;
  }
done:
  if (out->found)
    src->describe(src->ctx, out->scale, out->rate, sizeof out->rate);
  return 0;
}

void capacity_print(const capacity_point_t *v, size_t n, double target,
                    FILE *out) {
  fprintf(out, "capacity: highest load with %.2f%% of requests within SLO\n\n",
          100.0 * target);
  fprintf(out, "%-16s %-22s %8s %12s %9s %9s %10s %5s\n", "policy", "load",
          "SLO met", "$/M SLO tok", "$/M tok", "TTFT p99", "tok/s", "runs");
  for (size_t i = 0; i < n; i++) {
    const capacity_point_t *p = &v[i];
    if (!p->found) {
      fprintf(out, "%-16s %-22s %56s %5u\n", p->policy, "none met the target",
              "", p->runs);
      continue;
    }
    char load[64];
    snprintf(load, sizeof load, "%s%s", p->capped ? ">= " : "", p->rate);
    fprintf(out, "%-16s %-22s %7.2f%% %12.4f %9.4f %9.1f %10.1f %5u\n",
            p->policy, load, 100.0 * p->sum.slo, p->sum.usd_per_mtok_slo,
            p->sum.usd_per_mtok, p->sum.ttft_p99_ms, p->sum.tok_per_s, p->runs);
  }
}
