/* The routing policies by name, in the order --help and errors list them.
 * The scheduler core implements each as policy_NAME
 * (scheduler/core/policy_NAME.c) and builds its registry from this list;
 * the settings check a --policy or policy: against it without linking the
 * core. */
#ifndef INFSCHED_POLICY_NAMES_H
#define INFSCHED_POLICY_NAMES_H

#define POLICY_NAMES(X)                                                        \
  X(round_robin)                                                               \
  X(least_loaded)                                                              \
  X(cache_affinity)                                                            \
  X(kv_cost)                                                                   \
  X(weighted_score)                                                            \
  X(cheapest)                                                                  \
  X(balanced)

#endif
