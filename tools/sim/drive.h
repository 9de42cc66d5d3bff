/* One simulation run as the drivers (compare, sweep, capacity) need it: a
 * fresh workload from the source, a report, its summary and, on request,
 * its JSON. */
#ifndef INFSCHED_SIM_DRIVE_H
#define INFSCHED_SIM_DRIVE_H

#include "sim.h"
#include "summary.h"

#include <cjson/cJSON.h>

/* Runs cfg on the source's workload at scale, with the source's seed plus
 * seed. Fills sum, and *json (when json is not NULL) with the report's
 * JSON, which the caller deletes. Returns 0, or a negative code with a
 * reason in err. */
int drive_once(const sim_config_t *cfg, const sim_source_t *src, double scale,
               unsigned seed, summary_t *sum, cJSON **json, char *err,
               size_t errlen);

/* The policy names to run: "all" is every policy of the core, otherwise a
 * comma-separated list, each checked against the core's. Returns a
 * NULL-terminated array the caller frees (the names point into a copy kept
 * in the same allocation), or NULL with a reason in err. */
const char **drive_policies(const char *list, char *err, size_t errlen);

#endif
