/* Accelerator profiles: the timing and cost model of one worker class
 * (docs/architecture.md, "Worker profiles and the timing model"). */
#ifndef INFSCHED_PROFILE_H
#define INFSCHED_PROFILE_H

#include "infsched/types.h"

#include <stdbool.h>

/* max_num_batched_tokens when a profile does not set one: vLLM's own
 * default (SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS), which it keeps
 * for hardware it has no figure for. */
#define INFS_PROFILE_DEFAULT_BATCHED_TOKENS 2048u

typedef struct infs_profile {
  char name[INFS_NAME_MAX];
  infs_worker_class_t cls;
  double price_per_hour; /* USD per hour of the whole serving unit */
  double power_idle_w;
  double power_busy_w;
  /* The roofline of one forward pass (model/step.h): the figures a step's
   * time comes from. */
  double weights_gb;         /* weight bytes read once per step, GB */
  double params_b;           /* parameters, billions: 2 FLOP each per token */
  double kv_kb_per_token;    /* KV bytes of one token, KB */
  double attn_mflop_per_ctx; /* attention FLOP per token per context token,
                                millions (4 x layers x d_model) */
  double mem_bw_gbs;         /* HBM or SRAM bandwidth of the unit, GB/s */
  double mem_eff;            /* share of mem_bw_gbs a step achieves, (0, 1] */
  double peak_tflops;        /* dense peak of the unit at the weights' type */
  double mfu;                /* share of peak_tflops a step achieves, (0, 1] */
  double step_overhead_ms;   /* fixed cost of every step (launch, sync) */
  double per_seq_ms;         /* cost of every sequence in a step (sampling,
                                scheduling, small kernels) */
  uint32_t max_batch;
  uint32_t kv_tokens;   /* KV-cache capacity in tokens; the pool is
                           kv_tokens / block_size whole blocks, which also
                           hold the prefix cache */
  uint32_t max_context; /* prompt + output tokens of one sequence */
  uint32_t block_size;  /* tokens per KV block (and per prompt hash) */
  /* Tokens one step computes, decode tokens and prefill chunks together
   * (vLLM's max_num_batched_tokens); at least max_batch. */
  uint32_t max_num_batched_tokens;
  /* Sarathi-Serve-like: a step carries no more prefill tokens than keep it
   * within the tightest TPOT target of the sequences decoding in it. */
  bool slo_aware_prefill;
  double usd_per_mtok_in; /* per-token billing of hosted APIs, else 0 */
  double usd_per_mtok_out;
} infs_profile_t;

/* Blocks in the KV pool: cached prefixes live in its free part. */
static inline uint32_t profile_kv_blocks(const infs_profile_t *p) {
  return p->block_size ? p->kv_tokens / p->block_size : 0;
}

/* Checks that a profile's values make sense (positive rates and sizes,
 * max_context <= kv_tokens, ...). Returns 0, or INFS_ECONFIG with the
 * offending field's name in *field and what is wrong with it in why. */
int profile_validate(const infs_profile_t *p, const char **field, char *why,
                     size_t whylen);

/* Whether a and b are the same profile: name and every figure. */
bool profile_equal(const infs_profile_t *a, const infs_profile_t *b);

typedef struct profile_set profile_set_t;

/* Loads and validates a profiles file. On failure returns INFS_ECONFIG (or
 * -errno when the file cannot be read) and writes
 * "FILE:LINE: profile 'NAME': field 'x': what is wrong" into err. */
int profile_set_load(const char *path, profile_set_t **out, char *err,
                     size_t errlen);
void profile_set_destroy(profile_set_t **set);
const infs_profile_t *profile_set_find(const profile_set_t *set,
                                       const char *name);
size_t profile_set_count(const profile_set_t *set);
const infs_profile_t *profile_set_at(const profile_set_t *set, size_t i);

#endif
