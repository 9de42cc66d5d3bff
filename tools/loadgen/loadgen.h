/* One load-generation run: waits for the pool, sends a workload on its
 * schedule (open loop; closed-loop generators such as codex sessions get
 * every answer back), drains the answers, accounts for every request and
 * reports. */
#ifndef INFSCHED_LOADGEN_H
#define INFSCHED_LOADGEN_H

#include "infsched/auth.h"
#include "workload.h"
#include "workload_cli.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct loadgen_config {
  const char *scheduler;    /* client endpoint */
  infs_auth_t auth;         /* its CURVE keys (see client_new) */
  const char *model;        /* NULL: any */
  double drain_s;           /* wait for answers after the last send */
  const char *report_json;  /* NULL: no JSON */
  const char *report_html;  /* NULL: no HTML page */
  const char *title;        /* heads the HTML page, e.g. the workload */
  const char *policy_label; /* NULL: the scheduler's policy from Status */
  const workload_cli_t *flags; /* NULL, or the workload flags, recorded in
                                  the report's settings */
  uint32_t wait_workers;    /* start once this many workers registered */
  double wait_timeout_s;
  double status_timeout_s; /* wait for the start and end pool snapshots */
  bool progress;           /* a progress line on stderr every second */
  workload_recorder_t *record; /* NULL, or gets every request sent */
  /* Prompt text sent with each request (prompt_text.h): characters per
   * token, 0 for none (a sim pool needs only the counts), and the tokens
   * per block hash of the workload. */
  double chars_per_token;
  uint32_t block_size;
} loadgen_config_t;

/* Runs the workload (borrowed) against the scheduler and prints the report
 * on stdout. Returns the exit status (lib/cli.h): 0; 1 when requests were
 * lost or the report could not be written; 2 for a malformed endpoint; 3
 * when the scheduler does not answer a status query in time, or too few
 * workers register, before anything is sent. */
int loadgen_run(const loadgen_config_t *cfg, workload_t *w);

#endif
