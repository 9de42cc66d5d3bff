#include "drive.h"

#include "infsched/errors.h"
#include "xalloc.h"
#include "policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int drive_once(const sim_config_t *cfg, const sim_source_t *src, double scale,
               unsigned seed, summary_t *sum, cJSON **json, char *err,
               size_t errlen) {
  workload_t *w = NULL;
  report_t *r = report_new();
  sim_stats_t st;
  int rc;
  if (!r)
    return -ENOMEM;
  rc = src->make(src->ctx, scale, seed, &w, err, errlen);
  if (rc)
    goto out;
  rc = sim_run(cfg, w, r, &st, err, errlen);
  if (rc)
    goto out;
  rc = summary_from_report(r, &st, sum);
  if (rc)
    goto out;
  if (json) {
    *json = report_to_json(r);
    if (!*json)
      rc = -ENOMEM;
  }
out:
  if (rc == -ENOMEM)
    snprintf(err, errlen, "out of memory");
  workload_destroy(&w);
  report_destroy(&r);
  return rc;
}

const char **drive_policies(const char *list, char *err, size_t errlen) {
  const policy_ops_t *const *all = policy_all();
  size_t n_all = 0;
  while (all[n_all])
    n_all++;
  if (strcmp(list, "all") == 0) {
    const char **v = xcalloc(n_all + 1, sizeof *v);
    for (size_t i = 0; i < n_all; i++)
      v[i] = all[i]->name;
    return v;
  }
  size_t len = strlen(list), max = len / 2 + 2;
  const char **v = xcalloc(1, (max + 1) * sizeof *v + len + 1);
  char *copy = (char *)(v + max + 1);
  memcpy(copy, list, len + 1);
  size_t n = 0;
  char *save = NULL;
  for (char *name = strtok_r(copy, ",", &save); name;
       name = strtok_r(NULL, ",", &save)) {
    if (!policy_find(name)) {
      size_t used = (size_t)snprintf(err, errlen,
                                     "unknown policy '%s' "
                                     "(policies:",
                                     name);
      for (size_t i = 0; all[i] && used < errlen; i++)
        used +=
            (size_t)snprintf(err + used, errlen - used, " %s", all[i]->name);
      if (used < errlen)
        snprintf(err + used, errlen - used, ")");
      free(v);
      return NULL;
    }
    v[n++] = name;
  }
  if (n == 0) {
    snprintf(err, errlen, "no policy named");
    free(v);
    return NULL;
  }
  return v;
}
