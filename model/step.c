/* The step-time model of docs/architecture.md ("Worker profiles and the
 * timing model"): what one engine step costs on a profile. */
#include "model/step.h"

#include <math.h>

double profile_step_ms(const infs_profile_t *p, uint32_t b,
                       uint64_t ctx_tokens) {
  return p->base_ms + p->per_seq_ms * b +
         p->per_kctx_ms * (double)ctx_tokens / 1000.0;
}

/* Each new token attends to the c cached tokens and, on average, to half of
 * the n new ones, so the stretch uses c + n/2. That makes the time of a
 * prompt prefilled in chunks equal (up to rounding) to the time of the same
 * prompt prefilled at once: the sum over chunks of n_i * (c_i + n_i / 2) is
 * N^2 / 2 whatever the split. */
infs_time_t profile_prefill_us(const infs_profile_t *p, uint64_t n,
                               uint64_t c) {
  if (n == 0)
    return 0;
  double stretch =
      1.0 + p->prefill_attn_per_kctx * ((double)c + (double)n / 2.0) / 1000.0;
  double us = (double)n / p->prefill_tps * stretch * 1e6;
  return (infs_time_t)llround(us);
}
