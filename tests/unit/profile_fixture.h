/* Test profiles whose step times can be worked by hand: the roofline's
 * figures chosen so that reading the weights takes weight_ms, each 1,000
 * tokens of KV read add kctx_ms, and each computed token takes token_ms
 * (model/step.h). A step of b decodes and chunks of n tokens then takes
 * max(weight_ms + kctx_ms * kv / 1000, token_ms * (b + n)) + per_seq_ms *
 * sequences, with no attention term unless a test sets one. */
#ifndef INFSCHED_TESTS_PROFILE_FIXTURE_H
#define INFSCHED_TESTS_PROFILE_FIXTURE_H

#include "infsched/profile.h"

static inline void fixture_roofline(infs_profile_t *p, double weight_ms,
                                    double token_ms, double kctx_ms,
                                    double per_seq_ms) {
  p->mem_bw_gbs = 1000; /* 1 GB per ms */
  p->mem_eff = 1;
  p->weights_gb = weight_ms;
  p->kv_kb_per_token = kctx_ms * 1000;
  p->params_b = 0.5; /* 1 GFLOP per token */
  p->mfu = 1;
  p->peak_tflops = 1 / token_ms;
  p->attn_mflop_per_ctx = 0;
  p->step_overhead_ms = 0;
  p->per_seq_ms = per_seq_ms;
}

#endif
