/* The step-time model (model/step.h). */
#include "model/step.h"

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

double step_mixed_ms(const infs_profile_t *p, uint32_t b, uint64_t ctx_tokens,
                     uint64_t n, uint64_t c) {
  step_work_t w = decodes(b, ctx_tokens);
  step_add_prefill(&w, n, c);
  return step_ms(p, &w);
}

double step_prefill_ms(const infs_profile_t *p, uint64_t n, uint64_t c,
                       uint64_t chunk, uint32_t b, uint64_t ctx_tokens) {
  double ms = 0;
  if (chunk == 0)
    chunk = n;
  while (n > 0) {
    uint64_t k = n < chunk ? n : chunk;
    ms += step_mixed_ms(p, b, ctx_tokens, k, c);
    c += k;
    n -= k;
  }
  return ms;
}

double step_prefill_tps(const infs_profile_t *p) {
  return p->peak_tflops * 1e12 * p->mfu / (2.0 * p->params_b * 1e9);
}
