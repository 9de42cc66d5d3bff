/* The step-time model (model/step.h). */
#include "step.h"

#include <math.h>

double step_mem_ms(const infs_profile_t *p, const step_work_t *w) {
  double bytes = p->weights_gb * 1e9 + (double)w->kv_read *
                                           p->kv_kb_per_token * 1e3;
  return bytes / (p->mem_bw_gbs * 1e9 * p->mem_eff) * 1e3;
}

double step_compute_ms(const infs_profile_t *p, const step_work_t *w) {
  double flop = 2.0 * p->params_b * 1e9 * (double)w->tokens +
                p->attn_mflop_per_ctx * 1e6 * w->attn_pairs;
  return flop / (p->peak_tflops * 1e12 * p->mfu) * 1e3;
}

double step_ms(const infs_profile_t *p, const step_work_t *w) {
  if (w->seqs == 0)
    return 0;
  double mem = step_mem_ms(p, w), compute = step_compute_ms(p, w);
  return (mem > compute ? mem : compute) + p->step_overhead_ms +
         p->per_seq_ms * w->seqs;
}

/* b decodes holding ctx tokens in all: the same sums as b step_add_decode
 * calls, without the loop. */
static step_work_t decodes(uint32_t b, uint64_t ctx) {
  return (step_work_t){
      .seqs = b, .tokens = b, .kv_read = ctx, .attn_pairs = (double)ctx};
}

double step_decode_ms(const infs_profile_t *p, uint32_t b,
                      uint64_t ctx_tokens) {
  step_work_t w = decodes(b, ctx_tokens);
  return step_ms(p, &w);
}

uint32_t step_budget(const infs_profile_t *p) {
  return p->max_num_batched_tokens ? p->max_num_batched_tokens
                                   : INFS_PROFILE_DEFAULT_BATCHED_TOKENS;
}

/* The largest k with step_ms(w + a chunk of k behind c) <= cap_ms, solving
 * the compute side's quadratic (attention grows with k * (c + k / 2)). */
static uint64_t room_under(const infs_profile_t *p, const step_work_t *w,
                           uint64_t c, double cap_ms) {
  step_work_t with = *w;
  with.seqs++;
  with.kv_read += c;
  double left = cap_ms - p->step_overhead_ms - p->per_seq_ms * with.seqs;
  if (step_mem_ms(p, &with) > left)
    return 0;
  double flops_ms = p->peak_tflops * 1e9 * p->mfu; /* FLOP per ms */
  double tok = 2.0 * p->params_b * 1e9 / flops_ms;
  double attn = p->attn_mflop_per_ctx * 1e6 / flops_ms;
  double slack = left - step_compute_ms(p, w);
  if (slack <= 0)
    return 0;
  /* attn / 2 * k^2 + (tok + attn * c) * k <= slack */
  double lin = tok + attn * (double)c, k;
  if (attn > 0)
    k = (-lin + sqrt(lin * lin + 2 * attn * slack)) / attn;
  else
    k = slack / lin;
  /* A hair over, so that a bound met exactly is not lost to rounding. */
  k += 1e-9;
  return k >= 1.8e19 ? UINT64_MAX : (uint64_t)k;
}

uint64_t step_prefill_room(const infs_profile_t *p, const step_work_t *w,
                           uint64_t n, uint64_t c, uint64_t budget,
                           double cap_ms, uint64_t floor) {
  uint64_t k = n < budget ? n : budget;
  if (cap_ms > 0) {
    uint64_t under = room_under(p, w, c, cap_ms);
    uint64_t least = floor < k ? floor : k;
    k = under < k ? under : k;
    k = k > least ? k : least;
  }
  return k;
}

double step_prefill_ms(const infs_profile_t *p, uint64_t n, uint64_t c,
                       uint32_t b, uint64_t ctx_tokens, double cap_ms,
                       uint64_t *steps) {
  uint64_t count = 0;
  uint32_t budget = step_budget(p);
  uint64_t left = budget > b ? budget - b : 0;
  step_work_t d = decodes(b, ctx_tokens);
  double ms = 0;
  /* A batch as large as the budget leaves prefills waiting for a decode to
   * end; count them a token a step rather than never. */
  if (left == 0)
    left = 1;
  while (n > 0) {
    uint64_t k = step_prefill_room(p, &d, n, c, left, cap_ms,
                                   p->block_size ? p->block_size : 1);
    step_work_t w = d;
    step_add_prefill(&w, k, c);
    ms += step_ms(p, &w);
    c += k;
    n -= k;
    count++;
  }
  if (steps)
    *steps = count;
  return ms;
}

double step_prefill_tps(const infs_profile_t *p) {
  return p->peak_tflops * 1e12 * p->mfu / (2.0 * p->params_b * 1e9);
}
