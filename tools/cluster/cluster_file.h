/* Cluster files: which scheduler and which workers infsched-cluster starts.
 * The format is documented at the top of configs/local.yaml. */
#ifndef INFSCHED_CLUSTER_FILE_H
#define INFSCHED_CLUSTER_FILE_H

#include "settings.h"

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_NAME_MAX 64 /* instance names, profile, backend, model */
#define CLUSTER_ADDR_MAX 256
#define CLUSTER_MAX_COUNT 1024 /* instances of one worker entry */
#define CLUSTER_LINKS_MAX 4095 /* length of the links: spec */

/* One entry under workers:, started as count instances NAME-0 ... */
typedef struct cluster_worker {
  char name[CLUSTER_NAME_MAX];
  char profile[CLUSTER_NAME_MAX];
  char backend[CLUSTER_NAME_MAX];
  char model[CLUSTER_NAME_MAX]; /* empty: the worker's default */
  uint32_t count;
  int line;         /* line of the entry, for messages */
  int profile_line; /* line of its profile: value */
  /* Worker settings given in the entry (lib/settings.h), as written, each
   * passed on as its flag; NULL where not given. */
  char *set[SET_COUNT];
  int set_line[SET_COUNT];
} cluster_worker_t;

typedef struct cluster_spec {
  char *path;          /* the cluster file, as given */
  char *profiles_path; /* resolved against the cluster file's directory */
  int profiles_line;
  char clients[CLUSTER_ADDR_MAX];      /* scheduler's client endpoint (bind) */
  char workers_addr[CLUSTER_ADDR_MAX]; /* scheduler's worker endpoint */
  char http[CLUSTER_ADDR_MAX];         /* HTTP listener HOST:PORT, or off */
  char policy[CLUSTER_NAME_MAX];
  uint32_t heartbeat_ms;
  uint32_t heartbeat_miss;
  /* Scheduler settings given under scheduler:, as written, each passed on
   * as its flag; NULL where not given. The fields above hold the values in
   * effect, given or default. */
  char *set[SET_COUNT];
  int set_line[SET_COUNT];
  cluster_worker_t *workers;
  size_t nworkers;
  /* The links: section as the scheduler's --links spec (model/transfer.h's
   * link_table_parse); NULL when the file has none. */
  char *links;
  int links_line;
} cluster_spec_t;

/* Parses and validates the cluster file at path: every setting as the
 * daemons check their flags (lib/settings.h). Returns 0 and a spec the
 * caller destroys, or a negative code with "FILE:LINE: what is wrong" in
 * err. Profiles are not checked here: see cluster_spec_check_profiles. */
int cluster_file_load(const char *path, cluster_spec_t **out, char *err,
                      size_t errlen);
void cluster_spec_destroy(cluster_spec_t **spec);

/* Loads spec->profiles_path and checks that every worker's profile exists
 * and that no class's SLO is out of reach of an idle worker of it
 * (slo_check_profile). Returns 0, or a negative code with "FILE:LINE: what
 * is wrong" in err. */
int cluster_spec_check_profiles(const cluster_spec_t *spec, char *err,
                                size_t errlen);

/* Checks what the daemons would refuse only as they start, here and now
 * (lib/settings.h's ready checks: a backend plugin that does not load).
 * Returns 0, or INFS_ECONFIG with "FILE:LINE: what is wrong" in err. */
int cluster_spec_check_ready(const cluster_spec_t *spec, char *err,
                             size_t errlen);

/* Total worker instances. */
size_t cluster_spec_instances(const cluster_spec_t *spec);

/* Name of instance i of w ("gpu-0"), written into buf. */
void cluster_instance_name(const cluster_worker_t *w, uint32_t i, char *buf,
                           size_t len);

#endif
