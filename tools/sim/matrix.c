#include "matrix.h"

#include "drive.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void matrix_free(matrix_t *m) {
  for (size_t k = 0; m->cells && k < m->n_cells; k++) {
    capacity_point_free(&m->cells[k].cap99);
    capacity_point_free(&m->cells[k].cap95);
  }
  free(m->cells);
  m->cells = NULL;
  m->n_cells = 0;
}

static int search(const matrix_t *m, const sim_config_t *cfg,
                  const sim_source_t *src, double target,
                  capacity_point_t *out, char *err, size_t errlen) {
  capacity_opts_t o = m->cap;
  o.target = target;
  return capacity_search(cfg, src, &o, out, NULL, err, errlen);
}

int matrix_run(matrix_t *m, const sim_config_t *base,
               void (*progress)(const matrix_t *m, size_t cell), char *err,
               size_t errlen) {
  m->n_policies = 0;
  while (m->policies[m->n_policies])
    m->n_policies++;
  m->n_cells = m->n_workloads * m->n_pools * m->n_policies;
  m->cells = calloc(m->n_cells ? m->n_cells : 1, sizeof *m->cells);
  if (!m->cells) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  size_t k = 0;
  for (size_t w = 0; w < m->n_workloads; w++)
    for (size_t p = 0; p < m->n_pools; p++)
      for (size_t i = 0; i < m->n_policies; i++, k++) {
        matrix_cell_t *c = &m->cells[k];
        c->workload = w;
        c->pool = p;
        c->policy = m->policies[i];
        if (progress)
          progress(m, k);
        sim_config_t cfg = *base;
        cfg.core.policy = c->policy;
        cfg.workers = m->pools[p].workers;
        cfg.n_workers = m->pools[p].n_workers;
        const sim_source_t *src = &m->workloads[w].src;
        int rc =
            drive_once(&cfg, src, 1.0, 0, &c->at_load, NULL, err, errlen);
        if (!rc)
          rc = search(m, &cfg, src, 0.99, &c->cap99, err, errlen);
        if (!rc)
          rc = search(m, &cfg, src, 0.95, &c->cap95, err, errlen);
        if (rc) {
          matrix_free(m);
          return rc;
        }
      }
  return 0;
}

/* The load found (the median over seeds, with their spread when they
 * differ), "> " before it when the largest load tried still met the
 * target, "-" when some seed's search found none; "*" after it when a
 * search stopped at a probe with too few requests. */
static void capacity_text(const capacity_point_t *c, char *buf, size_t len) {
  if (!c->found)
    snprintf(buf, len, "-%s", c->too_few ? "*" : "");
  else if (c->scale_max > c->scale_min * 1.001)
    snprintf(buf, len, "%s%s (x%.3g to x%.3g)%s", c->capped ? "> " : "",
             c->rate, c->scale_min, c->scale_max, c->too_few ? "*" : "");
  else
    snprintf(buf, len, "%s%s%s", c->capped ? "> " : "", c->rate,
             c->too_few ? "*" : "");
}

void matrix_markdown(const matrix_t *m, const char *command, FILE *out) {
  fprintf(out, "```sh\n%s\n```\n", command);
  for (size_t w = 0; w < m->n_workloads; w++)
    for (size_t p = 0; p < m->n_pools; p++) {
      fprintf(out, "\n**%s** on **%s** (%s)\n\n", m->workloads[w].label,
              m->pools[p].label, m->pools[p].mix);
      fprintf(out, "| policy | SLO met | capacity at 99%% | capacity at 95%% "
                   "| $/M SLO tokens | cache hit |\n");
      fprintf(out, "|---|---:|---:|---:|---:|---:|\n");
      for (size_t k = 0; k < m->n_cells; k++) {
        const matrix_cell_t *c = &m->cells[k];
        if (c->workload != w || c->pool != p)
          continue;
        char c99[96], c95[96], usd[32];
        capacity_text(&c->cap99, c99, sizeof c99);
        capacity_text(&c->cap95, c95, sizeof c95);
        if (c->at_load.usd_per_mtok_slo > 0)
          snprintf(usd, sizeof usd, "%.3f", c->at_load.usd_per_mtok_slo);
        else
          snprintf(usd, sizeof usd, "-");
        fprintf(out, "| `%s` | %.2f%% | %s | %s | %s | %.1f%% |\n", c->policy,
                100.0 * c->at_load.slo, c99, c95, usd,
                100.0 * c->at_load.cache_hit);
      }
    }
  fprintf(out, "\nSLO met, $ per million SLO-meeting tokens (pool cost over "
               "the run) and cache hit (cached share of prompt tokens) at "
               "the workload's own load; capacity: the highest load meeting "
               "the target, the median over %u seeds (\"-\": not even 1/64 "
               "of the load on some seed; \"*\": a search stopped at a run "
               "of fewer than %llu requests).\n",
          m->cap.seeds, (unsigned long long)m->cap.min_requests);
}

static cJSON *capacity_json(const capacity_point_t *c) {
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  bool ok =
      cJSON_AddBoolToObject(o, "found", c->found) &&
      cJSON_AddBoolToObject(o, "capped", c->capped) &&
      cJSON_AddNumberToObject(o, "scale", c->found ? c->scale : 0) &&
      cJSON_AddStringToObject(o, "load", c->found ? c->rate : "") &&
      cJSON_AddNumberToObject(o, "slo_attainment", c->sum.slo) &&
      cJSON_AddNumberToObject(o, "usd_per_mtok_slo", c->sum.usd_per_mtok_slo) &&
      cJSON_AddNumberToObject(o, "runs", c->runs);
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static bool add_cell(cJSON *arr, const matrix_t *m, const matrix_cell_t *c) {
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(arr, o)) {
    cJSON_Delete(o);
    return false;
  }
  const summary_t *s = &c->at_load;
  bool ok =
      cJSON_AddStringToObject(o, "workload", m->workloads[c->workload].label) &&
      cJSON_AddStringToObject(o, "pool", m->pools[c->pool].label) &&
      cJSON_AddStringToObject(o, "pool_mix", m->pools[c->pool].mix) &&
      cJSON_AddStringToObject(o, "policy", c->policy) &&
      cJSON_AddNumberToObject(o, "sent", (double)s->sent) &&
      cJSON_AddNumberToObject(o, "slo_attainment", s->slo) &&
      cJSON_AddNumberToObject(o, "usd_per_mtok_slo", s->usd_per_mtok_slo) &&
      cJSON_AddNumberToObject(o, "cache_hit", s->cache_hit) &&
      cJSON_AddNumberToObject(o, "ttft_p99_ms", s->ttft_p99_ms);
  cJSON *c99 = ok ? capacity_json(&c->cap99) : NULL;
  if (!c99 || !cJSON_AddItemToObject(o, "capacity_99", c99)) {
    cJSON_Delete(c99);
    return false;
  }
  cJSON *c95 = capacity_json(&c->cap95);
  if (!c95 || !cJSON_AddItemToObject(o, "capacity_95", c95)) {
    cJSON_Delete(c95);
    return false;
  }
  return true;
}

cJSON *matrix_to_json(const matrix_t *m, const char *command) {
  cJSON *root = cJSON_CreateObject();
  cJSON *cells = root ? cJSON_AddArrayToObject(root, "cells") : NULL;
  if (!cells || !cJSON_AddStringToObject(root, "command", command))
    goto fail;
  for (size_t k = 0; k < m->n_cells; k++)
    if (!add_cell(cells, m, &m->cells[k]))
      goto fail;
  return root;
fail:
  cJSON_Delete(root);
  return NULL;
}
