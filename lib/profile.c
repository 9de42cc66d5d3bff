/* Validation of accelerator profiles (docs/architecture.md, "Worker profiles
 * and the timing model"); the step-time model itself is model/step.c. */
#include "infsched/profile.h"

#include "infsched/errors.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool profile_equal(const infs_profile_t *a, const infs_profile_t *b) {
  return strcmp(a->name, b->name) == 0 && a->cls == b->cls &&
         a->price_per_hour == b->price_per_hour &&
         a->power_idle_w == b->power_idle_w &&
         a->power_busy_w == b->power_busy_w && a->weights_gb == b->weights_gb &&
         a->params_b == b->params_b && a->kv_kb_per_token == b->kv_kb_per_token &&
         a->attn_mflop_per_ctx == b->attn_mflop_per_ctx &&
         a->mem_bw_gbs == b->mem_bw_gbs && a->mem_eff == b->mem_eff &&
         a->peak_tflops == b->peak_tflops && a->mfu == b->mfu &&
         a->step_overhead_ms == b->step_overhead_ms &&
         a->per_seq_ms == b->per_seq_ms && a->max_batch == b->max_batch &&
         a->kv_tokens == b->kv_tokens && a->max_context == b->max_context &&
         a->block_size == b->block_size &&
         a->max_num_batched_tokens == b->max_num_batched_tokens &&
         a->slo_aware_prefill == b->slo_aware_prefill &&
         a->usd_per_mtok_in == b->usd_per_mtok_in &&
         a->usd_per_mtok_out == b->usd_per_mtok_out;
}

static int bad(const char **field, const char *name, char *why, size_t whylen,
               const char *fmt, double v) {
  *field = name;
  snprintf(why, whylen, fmt, v);
  return INFS_ECONFIG;
}

/* isfinite rules out NaN and infinities, which strtod accepts. */
#define CHECK_POS(f)                                                           \
  if (!(isfinite(p->f) && p->f > 0))                                           \
  return bad(field, #f, why, whylen,                                           \
             "must be a number greater than 0, got %g", p->f)
#define CHECK_NONNEG(f)                                                        \
  if (!(isfinite(p->f) && p->f >= 0))                                          \
  return bad(field, #f, why, whylen, "must be a number >= 0, got %g", p->f)
/* Shares of a peak: above 0, at most 1. */
#define CHECK_SHARE(f)                                                         \
  if (!(isfinite(p->f) && p->f > 0 && p->f <= 1))                              \
  return bad(field, #f, why, whylen,                                           \
             "must be a share of the peak, above 0 and at most 1, got %g",     \
             p->f)
#define CHECK_NONZERO(f)                                                       \
  if (p->f == 0)                                                               \
  return bad(field, #f, why, whylen, "must be at least 1, got %g", 0.0)
/* Far beyond any accelerator, and low enough that no product of two
 * figures overflows a prediction. */
#define CHECK_MAX(f, max)                                                      \
  if (p->f > (max))                                                            \
  return bad(field, #f, why, whylen, "must be at most %g", (double)(max))
/* Rates so low that a step would take longer than any run. */
#define CHECK_MIN(f, min)                                                      \
  if (p->f < (min))                                                            \
  return bad(field, #f, why, whylen, "must be at least %g", (double)(min))

int profile_validate(const infs_profile_t *p, const char **field, char *why,
                     size_t whylen) {
  if (p->name[0] == '\0') {
    *field = "name";
    snprintf(why, whylen, "must not be empty");
    return INFS_ECONFIG;
  }
  if ((unsigned)p->cls >= INFS_WORKER_CLASS_COUNT)
    return bad(field, "class", why, whylen, "unknown class %g", (double)p->cls);
  CHECK_NONNEG(price_per_hour);
  CHECK_NONNEG(power_idle_w);
  CHECK_NONNEG(power_busy_w);
  if (p->power_busy_w < p->power_idle_w)
    return bad(field, "power_busy_w", why, whylen,
               "must not be below power_idle_w (%g)", p->power_idle_w);
  CHECK_POS(weights_gb);
  CHECK_POS(params_b);
  CHECK_NONNEG(kv_kb_per_token);
  CHECK_NONNEG(attn_mflop_per_ctx);
  CHECK_POS(mem_bw_gbs);
  CHECK_SHARE(mem_eff);
  CHECK_POS(peak_tflops);
  CHECK_SHARE(mfu);
  CHECK_NONNEG(step_overhead_ms);
  CHECK_NONNEG(per_seq_ms);
  CHECK_NONZERO(max_batch);
  CHECK_NONZERO(kv_tokens);
  CHECK_NONZERO(max_context);
  if (p->max_context > p->kv_tokens)
    return bad(field, "max_context", why, whylen,
               "must not exceed kv_tokens (%g): a sequence that long could "
               "never run",
               (double)p->kv_tokens);
  CHECK_NONZERO(block_size);
  if ((uint64_t)profile_kv_blocks(p) * p->block_size < p->max_context)
    return bad(field, "max_context", why, whylen,
               "must fit in the KV pool's whole blocks (%g tokens): a "
               "sequence that long could never run",
               (double)profile_kv_blocks(p) * p->block_size);
  if (profile_kv_blocks(p) > (1u << 26))
    return bad(field, "kv_tokens", why, whylen,
               "must be at most 2^26 blocks of block_size (%g tokens)",
               (double)(1u << 26) * p->block_size);
  CHECK_NONZERO(max_num_batched_tokens);
  if (p->max_num_batched_tokens < p->max_batch)
    return bad(field, "max_num_batched_tokens", why, whylen,
               "must be at least max_batch (%g): every running sequence "
               "decodes a token in each step",
               (double)p->max_batch);
  CHECK_NONNEG(usd_per_mtok_in);
  CHECK_NONNEG(usd_per_mtok_out);
  CHECK_MAX(price_per_hour, 1e6);
  CHECK_MAX(power_busy_w, 1e8);
  CHECK_MAX(weights_gb, 1e6);
  CHECK_MAX(params_b, 1e6);
  CHECK_MAX(kv_kb_per_token, 1e6);
  CHECK_MAX(attn_mflop_per_ctx, 1e6);
  CHECK_MAX(mem_bw_gbs, 1e12);
  CHECK_MAX(peak_tflops, 1e9);
  CHECK_MIN(mem_bw_gbs, 1e-3);
  CHECK_MIN(peak_tflops, 1e-6);
  CHECK_MIN(mem_eff, 1e-6);
  CHECK_MIN(mfu, 1e-6);
  CHECK_MAX(step_overhead_ms, 1e6);
  CHECK_MAX(per_seq_ms, 1e6);
  CHECK_MAX(max_batch, 1u << 20);
  CHECK_MAX(block_size, 1u << 20);
  CHECK_MAX(usd_per_mtok_in, 1e6);
  CHECK_MAX(usd_per_mtok_out, 1e6);
  return 0;
}
