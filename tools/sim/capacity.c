#include "capacity.h"

#include "xalloc.h"
#include "drive.h"
#include "sim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void capacity_opts_default(capacity_opts_t *o) {
  o->target = 0.99;
  o->tolerance = 0.02;
  /* Below 1/64 of the workload's load a pool that still misses the target
   * misses it on the requests themselves (too long for any worker, say),
   * and such runs are long in virtual time. */
  o->min_scale = 1.0 / 64;
  o->max_scale = 1024;
  o->seeds = 3;
  o->min_requests = CAPACITY_MIN_REQUESTS;
  o->progress = NULL;
}

/* One seed's search. */
typedef struct search {
  const sim_config_t *cfg;
  const sim_source_t *src;
  const capacity_opts_t *o;
  capacity_point_t *out;
  unsigned seed;
  bool found, capped, too_few;
  double scale;  /* highest met */
  summary_t sum; /* the run there */
  cJSON *json;   /* its report, when asked for */
  bool want_json;
  char *err;
  size_t errlen;
} search_t;

/* Runs one scale; *met says whether it sustained the target on enough
 * requests, *stop that it had too few to say. Keeps the run when it is the
 * highest scale met so far. */
static int probe(search_t *s, double scale, bool *met, bool *stop) {
  summary_t sum;
  cJSON *json = NULL;
  int rc = drive_once(s->cfg, s->src, scale, s->seed, &sum,
                      s->want_json ? &json : NULL, s->err, s->errlen);
  if (rc)
    return rc;
  capacity_point_t *p = s->out;
  p->runs++;
  p->probes =
      xrealloc(p->probes, (p->n_probes + 1) * sizeof *p->probes);
  capacity_probe_t *pr = &p->probes[p->n_probes++];
  *pr = (capacity_probe_t){s->seed, scale, sum.sent, sum.slo, false,
                           sum.sent < s->o->min_requests};
  *stop = pr->too_few;
  *met = !pr->too_few && sum.slo >= s->o->target;
  pr->met = *met;
  if (s->o->progress)
    s->o->progress(s->cfg->core.policy, pr);
  if (*stop)
    s->too_few = true;
  if (*met && (!s->found || scale > s->scale)) {
    s->found = true;
    s->scale = scale;
    s->sum = sum;
    cJSON_Delete(s->json);
    s->json = json;
    json = NULL;
  }
  cJSON_Delete(json);
  return 0;
}

static int search_seed(search_t *s) {
  const capacity_opts_t *o = s->o;
  bool met, stop;
  double lo, hi;
  int rc = probe(s, 1.0, &met, &stop);
  if (rc || stop)
    return rc;
  if (met) {
    for (lo = 1.0, hi = 2.0;; lo = hi, hi *= 2) {
      if (hi > o->max_scale) {
        s->capped = true;
        return 0;
      }
      if ((rc = probe(s, hi, &met, &stop)) || stop)
        return rc;
      if (!met)
        break;
    }
  } else {
    for (hi = 1.0, lo = 0.5;; hi = lo, lo /= 2) {
      if (lo < o->min_scale)
        return 0;
      if ((rc = probe(s, lo, &met, &stop)) || stop)
        return rc;
      if (met)
        break;
    }
  }
  while (hi / lo > 1.0 + o->tolerance) {
    double mid = sqrt(lo * hi);
    if ((rc = probe(s, mid, &met, &stop)) || stop)
      return rc;
    if (met)
      lo = mid;
    else
      hi = mid;
  }
  return 0;
}

static int by_scale(const void *a, const void *b) {
  const search_t *x = a, *y = b;
  return x->scale < y->scale ? -1 : x->scale > y->scale;
}

int capacity_search(const sim_config_t *base, const sim_source_t *src,
                    const capacity_opts_t *o, capacity_point_t *out,
                    cJSON **json, char *err, size_t errlen) {
  unsigned n = o->seeds ? o->seeds : 1;
  search_t *v = xcalloc(n, sizeof *v);
  int rc = 0;
  memset(out, 0, sizeof *out);
  snprintf(out->policy, sizeof out->policy, "%s", base->core.policy);
  out->seeds = n;
  out->found = true;
  if (json)
    *json = NULL;
  for (unsigned i = 0; i < n && rc == 0; i++) {
    v[i] = (search_t){.cfg = base, .src = src, .o = o, .out = out,
                      .seed = i, .want_json = json != NULL, .err = err,
                      .errlen = errlen};
    rc = search_seed(&v[i]);
    out->found = out->found && v[i].found && !v[i].too_few;
    out->capped = out->capped || v[i].capped;
    out->too_few = out->too_few || v[i].too_few;
  }
  if (rc == 0 && out->found) {
    qsort(v, n, sizeof *v, by_scale);
    const search_t *mid = &v[(n - 1) / 2];
    out->scale = mid->scale;
    out->scale_min = v[0].scale;
    out->scale_max = v[n - 1].scale;
    out->sum = mid->sum;
    src->describe(src->ctx, out->scale, out->rate, sizeof out->rate);
    if (json) {
      *json = mid->json;
      v[(n - 1) / 2].json = NULL;
    }
  }
  for (unsigned i = 0; i < n; i++)
    cJSON_Delete(v[i].json);
  free(v);
  return rc;
}

void capacity_point_free(capacity_point_t *p) {
  free(p->probes);
  p->probes = NULL;
  p->n_probes = 0;
}

void capacity_print(const capacity_point_t *v, size_t n,
                    const capacity_opts_t *o, const sim_source_t *src,
                    FILE *out) {
  fprintf(out,
          "capacity: highest load with %.2f%% of requests within SLO, the "
          "median of %u seeds\n\n",
          100.0 * o->target, o->seeds ? o->seeds : 1);
  fprintf(out, "%-16s %-24s %8s %12s %9s %9s %15s %5s\n", "policy", "load",
          "SLO met", "$/M SLO tok", "$/M tok", "TTFT p99", "scale spread",
          "runs");
  for (size_t i = 0; i < n; i++) {
    const capacity_point_t *p = &v[i];
    if (!p->found) {
      fprintf(out, "%-16s %-24s %62s %5u\n", p->policy,
              p->too_few ? "too few requests to tell"
                         : "none met the target on every seed",
              "", p->runs);
      continue;
    }
    char load[64], spread[32];
    snprintf(load, sizeof load, "%s%s", p->capped ? ">= " : "", p->rate);
    snprintf(spread, sizeof spread, "x%.3g-%.3g", p->scale_min, p->scale_max);
    fprintf(out, "%-16s %-24s %7.2f%% %12.4f %9.4f %9.1f %15s %5u\n",
            p->policy, load, 100.0 * p->sum.slo, p->sum.usd_per_mtok_slo,
            p->sum.usd_per_mtok, p->sum.ttft_p99_ms, spread, p->runs);
  }
  fprintf(out,
          "\nprobes (a probe with fewer than %llu requests decides "
          "nothing):\n%-16s %4s %8s %-24s %9s %8s  %s\n",
          (unsigned long long)o->min_requests, "policy", "seed", "scale",
          "load", "requests", "SLO met", "verdict");
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < v[i].n_probes; k++) {
      const capacity_probe_t *pr = &v[i].probes[k];
      char load[64];
      src->describe(src->ctx, pr->scale, load, sizeof load);
      fprintf(out, "%-16s %4u %8.4g %-24s %9llu %7.2f%%  %s\n", v[i].policy,
              pr->seed, pr->scale, load, (unsigned long long)pr->requests,
              100.0 * pr->slo,
              pr->too_few ? "too few requests" : pr->met ? "met" : "missed");
    }
}

cJSON *capacity_probes_json(const capacity_point_t *p) {
  cJSON *arr = cJSON_CreateArray();
  bool ok = arr != NULL;
  for (size_t k = 0; ok && k < p->n_probes; k++) {
    const capacity_probe_t *pr = &p->probes[k];
    cJSON *e = cJSON_CreateObject();
    ok = e && cJSON_AddItemToArray(arr, e);
    if (!ok) {
      cJSON_Delete(e);
      break;
    }
    ok = cJSON_AddNumberToObject(e, "seed", pr->seed) &&
         cJSON_AddNumberToObject(e, "scale", pr->scale) &&
         cJSON_AddNumberToObject(e, "requests", (double)pr->requests) &&
         cJSON_AddNumberToObject(e, "slo_attainment", pr->slo) &&
         cJSON_AddBoolToObject(e, "met", pr->met) &&
         cJSON_AddBoolToObject(e, "too_few", pr->too_few);
  }
  if (!ok) {
    cJSON_Delete(arr);
    return NULL;
  }
  return arr;
}
