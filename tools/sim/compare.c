#include "compare.h"

#include "drive.h"

#include <errno.h>

int compare_run(const sim_config_t *base, const char *const *policies,
                const sim_source_t *src, summary_t *sums, cJSON *reports,
                char *err, size_t errlen) {
  for (size_t i = 0; policies[i]; i++) {
    sim_config_t cfg = *base;
    cfg.core.policy = policies[i];
    cJSON *json = NULL;
    int rc = drive_once(&cfg, src, 1.0, 0, &sums[i], reports ? &json : NULL,
                        err, errlen);
    if (rc)
      return rc;
    if (json && !cJSON_AddItemToArray(reports, json)) {
      cJSON_Delete(json);
      snprintf(err, errlen, "out of memory");
      return -ENOMEM;
    }
  }
  return 0;
}

static void pct(FILE *out, double v, int width) {
  if (v < 0)
    fprintf(out, " %*s", width, "-");
  else
    fprintf(out, " %*.2f%%", width - 1, 100.0 * v);
}

void compare_print(const summary_t *sums, size_t n, FILE *out) {
  fprintf(out, "%-16s %8s %8s %8s %8s %9s %9s %9s %10s %8s\n", "policy",
          "SLO met", "interact", "agent", "batch", "TTFT p50", "TTFT p99",
          "$/M tok", "tok/s", "req/s");
  for (size_t i = 0; i < n; i++) {
    const summary_t *s = &sums[i];
    fprintf(out, "%-16s", s->policy);
    pct(out, s->slo, 8);
    for (int c = 0; c < INFS_CLASS_COUNT; c++)
      pct(out, s->slo_class[c], 8);
    fprintf(out, " %9.1f %9.1f %9.4f %10.1f %8.2f\n", s->ttft_p50_ms,
            s->ttft_p99_ms, s->usd_per_mtok, s->tok_per_s, s->req_per_s);
  }
  fprintf(out, "(TTFT in ms; SLO met over requests sent; $ per million "
               "prompt + generated tokens, pool cost)\n");
}
