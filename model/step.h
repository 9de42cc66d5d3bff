/* The step-time model: what one forward pass of a continuous-batching engine
 * costs on a profile. A step reads the weights once and the KV of its
 * sequences, and computes every token in it (one per decoding sequence, n
 * per prefill chunk) together; its time is the larger of the memory and the
 * compute time (a roofline), plus fixed and per-sequence overheads:
 *
 *   mem_ms     = (weights + kv_read * kv_per_token) / (mem_bw * mem_eff)
 *   compute_ms = (2 * params * tokens + attn_flop_per_ctx * attn_pairs)
 *                / (peak_flops * mfu)
 *   step_ms    = max(mem_ms, compute_ms) + step_overhead_ms
 *                + per_seq_ms * seqs
 *
 * The engine (model/engine.c) times its steps with it and the scheduler's
 * predictor calls the same functions, so a routing decision predicts what
 * the worker will then do. docs/serving-model.md has the derivations. */
#ifndef INFSCHED_MODEL_STEP_H
#define INFSCHED_MODEL_STEP_H

#include "infsched/profile.h"

/* What one step does; build it with the step_add_* calls. */
typedef struct step_work {
  uint32_t seqs;     /* sequences in the step */
  uint64_t tokens;   /* tokens computed: 1 per decode, n per prefill chunk */
  uint64_t kv_read;  /* KV tokens read: each member's context before it */
  double attn_pairs; /* sum over computed tokens of the tokens each attends
                        to */
} step_work_t;

/* A sequence decoding one token behind ctx tokens of KV. */
static inline void step_add_decode(step_work_t *w, uint64_t ctx) {
  w->seqs++;
  w->tokens++;
  w->kv_read += ctx;
  w->attn_pairs += (double)ctx;
}

/* A prefill chunk of n tokens behind c tokens already in KV. Each new token
 * attends to the c and, on average, to half of the n, so a prompt split in
 * chunks does the same attention work as the prompt at once. */
static inline void step_add_prefill(step_work_t *w, uint64_t n, uint64_t c) {
  if (n == 0)
    return;
  w->seqs++;
  w->tokens += n;
  w->kv_read += c;
  w->attn_pairs += (double)n * ((double)c + (double)n / 2.0);
}

/* Memory and compute time of a step, in ms, without overheads. */
double step_mem_ms(const infs_profile_t *p, const step_work_t *w);
double step_compute_ms(const infs_profile_t *p, const step_work_t *w);

/* The step's time in ms (0 for an empty step). */
double step_ms(const infs_profile_t *p, const step_work_t *w);

/* A decode-only step of b sequences holding ctx_tokens of KV in all. */
double step_decode_ms(const infs_profile_t *p, uint32_t b,
                      uint64_t ctx_tokens);

/* The step's token budget: max_num_batched_tokens, or the default when a
 * profile from the wire leaves it 0. */
uint32_t step_budget(const infs_profile_t *p);

/* How many of the n prompt tokens left to a sequence (c already in KV) a
 * step already holding w can carry: at most budget and, when cap_ms > 0
 * (the SLO-aware mode), no more than keep the step within cap_ms; but at
 * least min(floor, n, budget), so that prefills always progress. */
uint64_t step_prefill_room(const infs_profile_t *p, const step_work_t *w,
                           uint64_t n, uint64_t c, uint64_t budget,
                           double cap_ms, uint64_t floor);

/* Time in ms to prefill n tokens behind c when each step also decodes b
 * sequences holding ctx_tokens (b = 0: alone): the chunk of each step is
 * what step_prefill_room leaves it after the b decode tokens, with cap_ms
 * as the engine takes it (0 for none) and a floor of one block. The number
 * of steps it takes goes to *steps unless steps is NULL. */
double step_prefill_ms(const infs_profile_t *p, uint64_t n, uint64_t c,
                       uint32_t b, uint64_t ctx_tokens, double cap_ms,
                       uint64_t *steps);

/* Prompt tokens per second when compute bound: the rate that prefills,
 * without attention, run at. */
double step_prefill_tps(const infs_profile_t *p);

#endif
