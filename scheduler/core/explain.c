/* Decision explanations, formatted for one debug log line. */
#include "core.h"

#include <math.h>
#include <stdio.h>

int core_decision_format(const core_decision_t *d, char *buf, size_t len) {
  size_t off = 0;
  char slo[48];
  slo_format(&d->slo, slo, sizeof slo);
  int n = snprintf(buf, len,
                   "req %llu %s (slo %s ms, %u blocks) -> %s %s "
                   "(%zu candidates)",
                   (unsigned long long)d->request_id, infs_class_name(d->cls),
                   slo, d->blocks,
                   d->placed ? d->scores[0].worker_id : "queued",
                   core_outcome_name(d->outcome), d->candidates);
  if (n < 0)
    return n;
  off = (size_t)n;
  for (size_t i = 0; i < d->n_scores; i++) {
    const core_score_t *s = &d->scores[i];
    char score[32] = "-";
    if (!isnan(s->score))
      snprintf(score, sizeof score, "%.3g", s->score);
    n = snprintf(off < len ? buf + off : NULL, off < len ? len - off : 0,
                 "%s %s score=%s%s hit=%u load=%u ttft=%.1f/%.0fms "
                 "tpot=%.2fms cost=$%.3g",
                 i ? " |" : ":", s->worker_id, score, s->ok ? "" : " (no)",
                 s->cached_blocks, s->outstanding, s->ttft_ms,
                 s->ttft_target_ms, s->tpot_ms, s->cost_usd);
    if (n < 0)
      return n;
    off += (size_t)n;
  }
  return (int)off;
}
