/* Routing policies. A policy picks one worker among candidates that already
 * meet the hard constraints (live, serves the model, fits the context, has
 * room). Policies plug in as a table of functions, like nginx's
 * peer.get/peer.free: a new policy is a new file plus one line in policy.c. */
#ifndef INFSCHED_POLICY_H
#define INFSCHED_POLICY_H

#include "scheduler/core/core_internal.h"

typedef struct policy_ops {
  const char *name;
  const char *summary;
  /* Allocates per-core state (may leave *state NULL); 0 or negative. */
  int (*create)(void **state);
  void (*destroy)(void *state);
  /* Returns the index in cands of the chosen worker, or -1 to leave the
   * request queued. n >= 1. */
  int (*pick)(void *state, const req_t *r, core_worker_t *const *cands,
              size_t n, infs_time_t now);
} policy_ops_t;

const policy_ops_t *policy_find(const char *name);
/* NULL-terminated list of every policy, for --help and validation. */
const policy_ops_t *const *policy_all(void);

extern const policy_ops_t policy_round_robin;
extern const policy_ops_t policy_least_loaded;

#endif
