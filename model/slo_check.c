#include "slo_check.h"

#include "infsched/errors.h"
#include "step.h"

#include <stdio.h>

double slo_check_idle_ttft_ms(const infs_profile_t *p, uint32_t n) {
  return step_prefill_ms(p, n, 0, 0, 0, 0, NULL);
}

double slo_check_idle_tpot_ms(const infs_profile_t *p, uint32_t ctx) {
  return step_decode_ms(p, 1, ctx);
}

int slo_check_profile(const slo_t slo[INFS_CLASS_COUNT],
                      const infs_profile_t *p, char *err, size_t errlen) {
  /* The longest prompt still leaves room for one output token. */
  uint32_t longest = p->max_context > 1 ? p->max_context - 1 : 1;
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    const slo_t *s = &slo[c];
    const char *cls = infs_class_name((infs_class_t)c);
    const char *wcls = infs_worker_class_name(p->cls);
    /* A step's time grows with the KV it reads, so the longest context is
     * the slowest. */
    double tpot = slo_check_idle_tpot_ms(p, p->max_context);
    if (s->tpot_ms && tpot > s->tpot_ms) {
      snprintf(err, errlen,
               "SLO of %s: TPOT target %u ms is below what an idle %s worker "
               "(profile %s) takes per output token at %u tokens of "
               "context, %.1f ms",
               cls, s->tpot_ms, wcls, p->name, p->max_context, tpot);
      return INFS_ECONFIG;
    }
    if (!s->ttft_ms)
      continue;
    /* Prefill grows faster than linearly with the prompt (attention), the
     * target linearly: the worst prompt is at one end of the range, but
     * chunking makes the curve uneven, so a ladder of lengths is tried. */
    for (uint64_t n = 1;; n = n * 2 < longest ? n * 2 : longest) {
      double ttft = slo_check_idle_ttft_ms(p, (uint32_t)n);
      double target = slo_targets(s, (uint32_t)n).ttft_ms;
      if (ttft > target) {
        snprintf(err, errlen,
                 "SLO of %s: TTFT target %u ms + %u ms per 1K uncached "
                 "tokens (%.0f ms for a %llu-token prompt) is below what an "
                 "idle %s worker (profile %s) takes to its first token, "
                 "%.0f ms",
                 cls, s->ttft_ms, s->ttft_ms_per_ktok, target,
                 (unsigned long long)n, wcls, p->name, ttft);
        return INFS_ECONFIG;
      }
      if (n == longest)
        break;
    }
  }
  return 0;
}
