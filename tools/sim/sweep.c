#include "sweep.h"

#include "xalloc.h"
#include "drive.h"
#include "sim_internal.h"

#include <stdlib.h>
#include <string.h>

/* Cheaper first; at equal cost the better attainment first. */
static int by_cost(const void *a, const void *b) {
  const sweep_point_t *x = *(sweep_point_t *const *)a;
  const sweep_point_t *y = *(sweep_point_t *const *)b;
  if (x->sum.usd_per_hour != y->sum.usd_per_hour)
    return x->sum.usd_per_hour < y->sum.usd_per_hour ? -1 : 1;
  if (x->slo_mean != y->slo_mean)
    return x->slo_mean > y->slo_mean ? -1 : 1;
  return strcmp(x->pool, y->pool);
}

static sweep_point_t **sorted(const sweep_result_t *r) {
  sweep_point_t **v = xcalloc(r->n + 1, sizeof *v);
  for (size_t i = 0; i < r->n; i++)
    v[i] = &r->v[i];
  qsort(v, r->n, sizeof *v, by_cost);
  return v;
}

static void mark(sweep_result_t *r) {
  sweep_point_t **v = sorted(r);
  double best = -1.0;
  r->cheapest = r->cheapest_single = -1;
  for (size_t i = 0; i < r->n; i++) {
    v[i]->pareto = v[i]->slo_mean > best;
    if (v[i]->pareto)
      best = v[i]->slo_mean;
    if (!v[i]->meets)
      continue;
    if (r->cheapest < 0)
      r->cheapest = (int)(v[i] - r->v);
    if (r->cheapest_single < 0 && v[i]->kinds == 1)
      r->cheapest_single = (int)(v[i] - r->v);
  }
  free(v);
}

/* Runs one mix on every seed. */
static int run_point(const sim_config_t *cfg, const sim_source_t *src,
                     const sweep_opts_t *o, sweep_point_t *pt, char *err,
                     size_t errlen) {
  unsigned n = o->seeds ? o->seeds : 1;
  double total = 0;
  pt->meets = true;
  for (unsigned seed = 0; seed < n; seed++) {
    summary_t sum;
    int rc = drive_once(cfg, src, 1.0, seed, &sum, NULL, err, errlen);
    if (rc)
      return rc;
    if (seed == 0) {
      pt->sum = sum;
      pt->slo_min = pt->slo_max = sum.slo;
      pt->requests = sum.sent;
    }
    total += sum.slo;
    pt->slo_min = sum.slo < pt->slo_min ? sum.slo : pt->slo_min;
    pt->slo_max = sum.slo > pt->slo_max ? sum.slo : pt->slo_max;
    pt->requests = sum.sent < pt->requests ? sum.sent : pt->requests;
    pt->meets = pt->meets && sum.slo >= o->target &&
                sum.sent >= o->min_requests;
  }
  pt->slo_mean = total / n;
  return 0;
}

int sweep_run(const sim_config_t *base, const pool_t *grid,
              const sim_source_t *src, const sweep_opts_t *o,
              sweep_result_t *out, char *err, size_t errlen) {
  pool_t p = {xcalloc(grid->n + 1, sizeof *p.v), grid->n};
  memcpy(p.v, grid->v, grid->n * sizeof *p.v);
  size_t cap = 16;
  int rc = 0;
  *out = (sweep_result_t){xcalloc(cap, sizeof *out->v), 0, *o,
                          -1, -1};
  size_t total = 1;
  bool empty_mix = true;
  for (size_t i = 0; i < p.n; i++) {
    total *= p.v[i].max - p.v[i].min + 1;
    empty_mix = empty_mix && p.v[i].min == 0;
  }
  total -= empty_mix;
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
      out->v = xrealloc(out->v, cap * sizeof *out->v);
    }
    sweep_point_t *pt = &out->v[out->n];
    memset(pt, 0, sizeof *pt);
    pool_describe(&p, pt->pool, sizeof pt->pool);
    pt->workers = (uint32_t)n;
    for (size_t i = 0; i < p.n; i++)
      pt->kinds += p.v[i].count > 0;
    rc = run_point(&cfg, src, o, pt, err, errlen);
    free(ws);
    if (rc)
      break;
    out->n++;
    if (o->progress)
      o->progress(pt, out->n, total);
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

/* The pool column: wide enough for the longest mix (roles make them long). */
static int pool_width(const sweep_result_t *r) {
  int w = 28;
  for (size_t i = 0; i < r->n; i++)
    if ((int)strlen(r->v[i].pool) > w)
      w = (int)strlen(r->v[i].pool);
  return w;
}

static void print_point(const sweep_point_t *p, int width, FILE *out) {
  fprintf(out, "%-*s %7u %10.2f %10.4f %8.2f%% %8.2f%% %8.2f%% %9llu %9.1f\n",
          width, p->pool, p->workers, p->sum.usd_per_hour, p->sum.usd_per_mtok,
          100.0 * p->slo_mean, 100.0 * p->slo_min, 100.0 * p->slo_max,
          (unsigned long long)p->requests, p->sum.ttft_p99_ms);
}

static void print_cheapest(const sweep_result_t *r, int i, const char *what,
                           FILE *out) {
  if (i < 0) {
    fprintf(out, "no %s in the grid meets %.2f%% SLO attainment\n", what,
            100.0 * r->opts.target);
    return;
  }
  const sweep_point_t *p = &r->v[i];
  fprintf(out,
          "cheapest %s meeting %.2f%%: %s at $%.2f/hour (%.2f%% mean, "
          "%.2f-%.2f%% over %u seeds, %llu requests per run)\n",
          what, 100.0 * r->opts.target, p->pool, p->sum.usd_per_hour,
          100.0 * p->slo_mean, 100.0 * p->slo_min, 100.0 * p->slo_max,
          r->opts.seeds ? r->opts.seeds : 1,
          (unsigned long long)p->requests);
}

void sweep_print(const sweep_result_t *r, FILE *out) {
  const char *policy = r->n ? r->v[0].sum.policy : "?";
  fprintf(out,
          "%zu pool mixes, policy %s, %u seeds each; Pareto front of cost "
          "against mean SLO attainment (a mix meets the target when every "
          "seed does, on at least %llu requests):\n\n",
          r->n, policy, r->opts.seeds ? r->opts.seeds : 1,
          (unsigned long long)r->opts.min_requests);
  int width = pool_width(r);
  fprintf(out, "%-*s %7s %10s %10s %9s %9s %9s %9s %9s\n", width, "pool",
          "workers", "$/hour", "$/M tok", "SLO mean", "min", "max",
          "requests", "TTFT p99");
  sweep_point_t **v = sorted(r);
  for (size_t i = 0; i < r->n; i++)
    if (v[i]->pareto)
      print_point(v[i], width, out);
  free(v);
  fprintf(out, "\n");
  print_cheapest(r, r->cheapest, "pool", out);
  print_cheapest(r, r->cheapest_single, "single-class pool", out);
}

/* key: the pool of r->v[i], or null when i < 0. */
static bool add_pool(cJSON *o, const char *key, const sweep_result_t *r,
                     int i) {
  return i >= 0 ? cJSON_AddStringToObject(o, key, r->v[i].pool) != NULL
                : cJSON_AddNullToObject(o, key) != NULL;
}

cJSON *sweep_to_json(const sweep_result_t *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON *runs = cJSON_AddArrayToObject(root, "runs");
  bool ok = root && runs;
  ok = ok &&
       cJSON_AddStringToObject(root, "policy", r->n ? r->v[0].sum.policy : "");
  ok = ok && cJSON_AddNumberToObject(root, "target", r->opts.target);
  ok = ok && cJSON_AddNumberToObject(root, "seeds",
                                     r->opts.seeds ? r->opts.seeds : 1);
  ok = ok && cJSON_AddNumberToObject(root, "min_requests",
                                     (double)r->opts.min_requests);
  ok = ok && add_pool(root, "cheapest", r, r->cheapest);
  ok = ok && add_pool(root, "cheapest_single_class", r, r->cheapest_single);
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
         cJSON_AddNumberToObject(o, "slo_attainment", p->slo_mean) &&
         cJSON_AddNumberToObject(o, "slo_min", p->slo_min) &&
         cJSON_AddNumberToObject(o, "slo_max", p->slo_max) &&
         cJSON_AddNumberToObject(o, "requests", (double)p->requests) &&
         cJSON_AddBoolToObject(o, "meets", p->meets) &&
         cJSON_AddNumberToObject(o, "ttft_p99_ms", p->sum.ttft_p99_ms) &&
         cJSON_AddBoolToObject(o, "pareto", p->pareto);
  }
  if (!ok) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}
