/* Pools of simulated workers: read from a cluster file, overridden by a mix
 * such as "gpu=4,sram=1" or "tpu:prefill=2,gpu:decode=4", and enumerated as
 * a grid for sweeps. A mix names each kind of worker by a cluster entry, a
 * class (gpu, sram, tpu: the cluster's first entry of that class, else the
 * profiles file's first profile of it) or a profile name, optionally with
 * a role. Pure: the caller loads the files. */
#ifndef INFSCHED_SIM_POOL_H
#define INFSCHED_SIM_POOL_H

#include "infsched/profile.h"
#include "cluster_file.h"
#include "sim.h"

#include <stddef.h>
#include <stdint.h>

/* One kind of worker, count instances named NAME-0 ... */
typedef struct pool_entry {
  char name[CLUSTER_NAME_MAX];
  char key[CLUSTER_NAME_MAX]; /* name without the role, for pool_describe */
  infs_role_t role;
  bool role_named; /* the mix gave KEY:ROLE */
  char model[INFS_NAME_MAX];
  infs_profile_t profile;
  uint32_t capacity; /* the entry's capacity setting; 0: 2 x max_batch */
  uint32_t count;
  uint32_t max; /* sweeps: largest count tried */
  uint32_t min; /* sweeps: smallest count tried */
} pool_entry_t;

typedef struct pool {
  pool_entry_t *v;
  size_t n;
} pool_t;

/* Model a worker serves when its cluster entry names none (the worker
 * daemon's --model default, from the settings table). */
#define POOL_DEFAULT_MODEL (settings_get(SET_MODEL)->def)

/* The cluster file's workers, with their profiles from profiles. Returns 0,
 * or INFS_ECONFIG with a reason in err (a profile that is not there). */
int pool_from_cluster(const cluster_spec_t *spec, const profile_set_t *set,
                      pool_t *out, char *err, size_t errlen);
void pool_free(pool_t *p);

/* Replaces the pool by the mix "KEY[:ROLE]=N,..." (KEY a cluster entry, a
 * class or a profile name; ROLE prefill, decode or both); kinds not named
 * are left out. Without ROLE a cluster entry keeps its role and a class or
 * profile is both; with it the kind's workers are NAME-ROLE-i. With ranges
 * true, a value may also be MIN:MAX and sets the sweep range (a plain N is
 * 0:N). Returns 0, or INFS_ECONFIG with a reason in err. */
int pool_apply_mix(pool_t *p, const cluster_spec_t *spec,
                   const profile_set_t *set, const char *mix, int ranges,
                   char *err, size_t errlen);

/* Total instances. */
uint32_t pool_instances(const pool_t *p);

/* The instances as simulator workers; the caller frees the array. */
sim_worker_spec_t *pool_expand(const pool_t *p, size_t *n);

/* "big:prefill=2,sram=1" (entry names, the roles a mix named, and the
 * counts) into buf. */
void pool_describe(const pool_t *p, char *buf, size_t len);

/* Sweeps: sets every count to its min and then steps to the next mix of
 * the grid (odometer order, the last entry fastest). pool_grid_next returns
 * 0 past the last mix. */
void pool_grid_first(pool_t *p);
int pool_grid_next(pool_t *p);

#endif
