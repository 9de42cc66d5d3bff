#include "scheduler/core/policy.h"

#include <string.h>

static const policy_ops_t *const all[] = {
    &policy_round_robin,
    &policy_least_loaded,
    NULL,
};

const policy_ops_t *policy_find(const char *name) {
  for (size_t i = 0; all[i]; i++)
    if (strcmp(all[i]->name, name) == 0)
      return all[i];
  return NULL;
}

const policy_ops_t *const *policy_all(void) { return all; }
