/* --matrix: policies x workloads x pools in one table. For each cell the
 * run at the workload's own load (SLO attainment, USD per million
 * SLO-meeting tokens, cache hit rate) and the capacity searches at 99% and
 * 95% attainment (tools/sim/capacity.h), written as Markdown and JSON with
 * the command line that made them. */
#ifndef INFSCHED_SIM_MATRIX_H
#define INFSCHED_SIM_MATRIX_H

#include "capacity.h"
#include "sim.h"
#include "summary.h"

#include <cjson/cJSON.h>
#include <stdio.h>

typedef struct matrix_workload {
  const char *label; /* e.g. the --workload spec */
  sim_source_t src;
} matrix_workload_t;

typedef struct matrix_pool {
  const char *label;
  const char *mix;                  /* as described, e.g. "gpu=6" */
  const sim_worker_spec_t *workers; /* borrowed */
  size_t n_workers;
} matrix_pool_t;

typedef struct matrix_cell {
  size_t workload, pool;
  const char *policy;
  summary_t at_load;      /* the run at scale 1 */
  capacity_point_t cap99; /* highest load with 99% attainment */
  capacity_point_t cap95; /* and with 95% */
} matrix_cell_t;

typedef struct matrix {
  const matrix_workload_t *workloads;
  size_t n_workloads;
  const matrix_pool_t *pools;
  size_t n_pools;
  const char *const *policies; /* NULL-terminated */
  capacity_opts_t cap;         /* the searches' seeds and fewest requests;
                                  the targets are 0.99 and 0.95 */
  size_t n_policies;
  matrix_cell_t *cells; /* workload-major, then pool, then policy */
  size_t n_cells;
} matrix_t;

/* Runs every cell with base's other settings. progress, when not NULL, is
 * told of each cell as it starts (the matrix takes minutes). Returns 0, or
 * a negative code with a reason in err; m->cells is then freed. */
int matrix_run(matrix_t *m, const sim_config_t *base,
               void (*progress)(const matrix_t *m, size_t cell), char *err,
               size_t errlen);
void matrix_free(matrix_t *m);

/* The table as Markdown, headed by the command line (argv joined). */
void matrix_markdown(const matrix_t *m, const char *command, FILE *out);
/* The same as JSON: {"command", "cells": [...]}; NULL when out of memory. */
cJSON *matrix_to_json(const matrix_t *m, const char *command);

#endif
