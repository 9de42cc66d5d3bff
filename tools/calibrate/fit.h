/* The fit behind infsched-calibrate: the figures of a profile that a
 * server's black-box timings identify, found by least squares against the
 * serving model's own step times (model/step.h). Pure: no I/O, no clock.
 *
 * What the timings identify, with the model's terms (docs/backends.md,
 * "Calibrating a server"):
 *   - TTFT of a prompt short enough to be memory bound:
 *       client + weight_read + step_overhead + per_seq
 *   - TTFT of a long prompt (compute bound), one step per budget's worth:
 *       client + 2 * params * n / flops + attention + steps * (overhead +
 *       per_seq)
 *   - time per output token of b streams decoding together:
 *       weight_read + KV read + step_overhead + b * per_seq
 * so the flat part and the slope of TTFT against prompt length give the
 * weight read and the effective FLOP rate, the decode line gives the
 * per-sequence cost, and what is left of its intercept is the step
 * overhead. The byte and FLOP counts (weights_gb, params_b, kv_kb_per_token,
 * attn_mflop_per_ctx) and the peaks (mem_bw_gbs, peak_tflops) are held from
 * the base profile: the fit turns the weight read into mem_eff and the FLOP
 * rate into mfu. */
#ifndef INFSCHED_CALIBRATE_FIT_H
#define INFSCHED_CALIBRATE_FIT_H

#include "infsched/profile.h"

#include <stdbool.h>
#include <stddef.h>

/* TTFT of one prompt length: the median of its repeats. */
typedef struct calib_ttft {
  double prompt; /* prompt tokens */
  double cached; /* of them served from the prefix cache */
  double ms;
} calib_ttft_t;

/* Time per output token of streams decoding together: the median over
 * streams and repeats of (last token - first token) / (tokens - 1). */
typedef struct calib_tpot {
  double streams;
  double ctx; /* mean KV context of one stream over its decode, tokens */
  double ms;
} calib_tpot_t;

typedef struct calib_result {
  infs_profile_t profile; /* the base with mem_eff, mfu, step_overhead_ms
                             and per_seq_ms fitted */
  double client_ms;       /* latency in every TTFT outside the engine:
                             HTTP, tokenisation, the network */
  double weight_read_ms;  /* weights_gb / (mem_bw_gbs * mem_eff) */
  double tflops;          /* peak_tflops * mfu */
  bool fitted_overhead;   /* false: step_overhead_ms held from the base */
  bool fitted_mfu;        /* false: mfu held from the base */
  size_t mem_bound;       /* TTFT points below the roofline's knee */
  size_t compute_bound;   /* and above it */
  size_t downweighted;    /* points whose residual the robust fit damped */
  double rms_rel;         /* root mean square of the relative residuals */
  double max_rel;         /* the largest relative residual */
} calib_result_t;

/* The model's TTFT and time per output token for p, without the client's
 * latency. */
double calib_ttft_model_ms(const infs_profile_t *p, const calib_ttft_t *t);
double calib_tpot_model_ms(const infs_profile_t *p, const calib_tpot_t *d);

/* Fits base's mem_eff, mfu, step_overhead_ms and per_seq_ms to the
 * points. mfu is held from the base when fewer than two TTFT points are
 * compute bound, and the step overhead when fewer than two are on either
 * side of the knee (nothing then tells it from the weight read). Returns
 * 0; -EINVAL
 * when the points are too few (two TTFT lengths and two concurrencies at
 * least) or not positive; INFS_ECONFIG when the best fit needs a share
 * above 1 of a held peak (the base does not describe this server). *why
 * says what is wrong. */
int calib_fit(const infs_profile_t *base, const calib_ttft_t *ttft,
              size_t n_ttft, const calib_tpot_t *tpot, size_t n_tpot,
              calib_result_t *out, char *why, size_t whylen);

/* The median of v[0..n) (sorted in place); 0 when n is 0. */
double calib_median(double *v, size_t n);

/* The q-quantile (0 <= q <= 1) of v[0..n), interpolated between order
 * statistics (sorted in place); 0 when n is 0. */
double calib_quantile(double *v, size_t n, double q);

#endif
