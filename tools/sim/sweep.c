#include "tools/sim/sweep.h"

#include "tools/sim/drive.h"
#include "tools/sim/sim_internal.h"

#include <stdlib.h>
#include <string.h>

/* Cheaper first; at equal cost the better attainment first. */
static int by_cost(const void *a, const void *b) {
  const sweep_point_t *x = *(sweep_point_t *const *)a;
  const sweep_point_t *y = *(sweep_point_t *const *)b;
  if (x->sum.usd_per_hour != y->sum.usd_per_hour)
    return x->sum.usd_per_hour < y->sum.usd_per_hour ? -1 : 1;
  if (x->sum.slo != y->sum.slo)
    return x->sum.slo > y->sum.slo ? -1 : 1;
  return strcmp(x->pool, y->pool);
}

static sweep_point_t **sorted(const sweep_result_t *r) {
  sweep_point_t **v = sim_xalloc(calloc(r->n + 1, sizeof *v));
  for (size_t i = 0; i < r->n; i++)
    v[i] = &r->v[i];
  qsort(v, r->n, sizeof *v, by_cost);
  return v;
}

static void mark(sweep_result_t *r) {
  sweep_point_t **v = sorted(r);
  double best = -1.0;
  r->cheapest = -1;
  for (size_t i = 0; i < r->n; i++) {
    v[i]->pareto = v[i]->sum.slo > best;
    if (v[i]->pareto)
      best = v[i]->sum.slo;
    if (r->cheapest < 0 && v[i]->sum.slo >= r->target)
      r->cheapest = (int)(v[i] - r->v);
  }
  free(v);
}

int sweep_run(const sim_config_t *base, const pool_t *grid,
              const sim_source_t *src, double target, sweep_result_t *out,
              char *err, size_t errlen) {
  pool_t p = {sim_xalloc(calloc(grid->n + 1, sizeof *p.v)), grid->n};
  memcpy(p.v, grid->v, grid->n * sizeof *p.v);
  size_t cap = 16;
  int rc = 0;
  *out = (sweep_result_t){sim_xalloc(calloc(cap, sizeof *out->v)), 0, target, -1};
  pool_grid_first(&p);
  do {
    size_t n;
    if (pool_instances(&p) == 0)
      continue;
    sim_worker_spec_t *ws = pool_expand(&p, &n);
    sim_config_t cfg = *base;
    cfg.workers = ws;
    cfg.n_workers = n;
    if (out->n == cap) {
      cap *= 2;
      out->v = sim_xalloc(realloc(out->v, cap * sizeof *out->v));
    }
    sweep_point_t *pt = &out->v[out->n];
    memset(pt, 0, sizeof *pt);
    pool_describe(&p, pt->pool, sizeof pt->pool);
    pt->workers = (uint32_t)n;
    rc = drive_once(&cfg, src, 1.0, &pt->sum, NULL, err, errlen);
    free(ws);
    if (rc)
      break;
    out->n++;
  } while (pool_grid_next(&p));
  pool_free(&p);
  if (rc) {
    sweep_result_free(out);
    return rc;
  }
  mark(out);
  return 0;
}

void sweep_result_free(sweep_result_t *r) {
  free(r->v);
  r->v = NULL;
  r->n = 0;
}

static void print_point(const sweep_point_t *p, FILE *out) {
  fprintf(out, "%-28s %7u %10.2f %10.4f %8.2f%% %9.1f %8.2f\n", p->pool,
          p->workers, p->sum.usd_per_hour, p->sum.usd_per_mtok,
          100.0 * p->sum.slo, p->sum.ttft_p99_ms, p->sum.req_per_s);
}

void sweep_print(const sweep_result_t *r, FILE *out) {
  const char *policy = r->n ? r->v[0].sum.policy : "?";
  fprintf(out,
          "%zu pool mixes, policy %s; Pareto front of cost against SLO "
          "attainment:\n\n",
          r->n, policy);
  fprintf(out, "%-28s %7s %10s %10s %9s %9s %8s\n", "pool", "workers", "$/hour",
          "$/M tok", "SLO met", "TTFT p99", "req/s");
  sweep_point_t **v = sorted(r);
  for (size_t i = 0; i < r->n; i++)
    if (v[i]->pareto)
      print_point(v[i], out);
  free(v);
  if (r->cheapest >= 0)
    fprintf(out, "\ncheapest pool meeting %.2f%%: %s at $%.2f/hour\n",
            100.0 * r->target, r->v[r->cheapest].pool,
            r->v[r->cheapest].sum.usd_per_hour);
  else
    fprintf(out, "\nno pool in the grid meets %.2f%% SLO attainment\n",
            100.0 * r->target);
}

cJSON *sweep_to_json(const sweep_result_t *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON *runs = cJSON_AddArrayToObject(root, "runs");
  bool ok = root && runs;
  ok = ok &&
       cJSON_AddStringToObject(root, "policy", r->n ? r->v[0].sum.policy : "");
  ok = ok && cJSON_AddNumberToObject(root, "target", r->target);
  ok = ok && (r->cheapest >= 0
                  ? cJSON_AddStringToObject(root, "cheapest",
                                            r->v[r->cheapest].pool) != NULL
                  : cJSON_AddNullToObject(root, "cheapest") != NULL);
  for (size_t i = 0; ok && i < r->n; i++) {
    const sweep_point_t *p = &r->v[i];
    cJSON *o = cJSON_CreateObject();
    ok = o && cJSON_AddItemToArray(runs, o);
    if (!ok) {
      cJSON_Delete(o);
      break;
    }
    ok = cJSON_AddStringToObject(o, "pool", p->pool) &&
         cJSON_AddNumberToObject(o, "workers", p->workers) &&
         cJSON_AddNumberToObject(o, "usd_per_hour", p->sum.usd_per_hour) &&
         cJSON_AddNumberToObject(o, "usd_total", p->sum.usd_total) &&
         cJSON_AddNumberToObject(o, "usd_per_mtok", p->sum.usd_per_mtok) &&
         cJSON_AddNumberToObject(o, "slo_attainment", p->sum.slo) &&
         cJSON_AddNumberToObject(o, "ttft_p99_ms", p->sum.ttft_p99_ms) &&
         cJSON_AddBoolToObject(o, "pareto", p->pareto);
  }
  if (!ok) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}
