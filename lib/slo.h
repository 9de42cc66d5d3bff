/* Latency targets (service level objectives) by request class, and the one
 * function that turns a class's targets into a request's: the core's
 * placement, the reports and the simulator all call slo_targets, so that a
 * request is judged by the targets it was routed for.
 *
 * A class's TTFT target grows with the prompt tokens the worker has to
 * prefill (those not in its prefix cache): a product can promise a fast
 * first token for a short question, not for a 60K-token repository. */
#ifndef INFSCHED_SLO_H
#define INFSCHED_SLO_H

#include "infsched/types.h"

#include <stddef.h>
#include <stdint.h>

typedef struct slo {
  uint32_t ttft_ms;          /* TTFT with no uncached prompt tokens; 0: TTFT
                                is not checked */
  uint32_t ttft_ms_per_ktok; /* added per 1,000 uncached prompt tokens */
  uint32_t tpot_ms;          /* time per output token; 0: not checked */
} slo_t;

/* What a request must meet once its uncached prompt tokens are known; 0:
 * not checked. */
typedef struct slo_targets {
  double ttft_ms;
  double tpot_ms;
} slo_targets_t;

/* Which part of its SLO a completed request broke. */
typedef enum slo_miss {
  SLO_MISS_NONE = 0,
  SLO_MISS_TTFT = 1,
  SLO_MISS_TPOT = 2,
  SLO_MISS_BOTH = 3, /* SLO_MISS_TTFT | SLO_MISS_TPOT */
} slo_miss_t;

/* The defaults by class, each with its source in slo.c. */
void slo_defaults(slo_t slo[INFS_CLASS_COUNT]);

/* A request's targets: ttft_ms + ttft_ms_per_ktok * uncached / 1000, and
 * tpot_ms. */
slo_targets_t slo_targets(const slo_t *s, uint32_t uncached_tokens);

/* The targets a request carries. */
slo_t slo_of_request(const infs_request_t *r);

/* Judges a completed request: its TTFT and TPOT (ms) against the targets
 * for its uncached tokens. tpot_ms < 0: the request made fewer than two
 * tokens, so it has no TPOT to break. */
slo_miss_t slo_judge(const slo_t *s, uint32_t uncached_tokens, double ttft_ms,
                     double tpot_ms);

/* "ttft", "tpot", "both" ("met" for SLO_MISS_NONE). */
const char *slo_miss_name(slo_miss_t m);

/* Parses "CLASS=TTFT[+PER_KTOK]:TPOT,..." (ms; e.g.
 * "interactive=450+250:40,batch=30000:200") into slo; classes not named keep
 * their targets, and slo is unchanged on error. TTFT and TPOT must be at
 * least 1 ms. Returns 0 or INFS_ECONFIG with a reason in err. */
int slo_parse(const char *list, slo_t slo[INFS_CLASS_COUNT], char *err,
              size_t errlen);

/* Parses "CLASS=WEIGHT,..." (e.g. "interactive=2,agent=1,batch=0"), the
 * weight of latency against cost by class that balanced trades with, into
 * w; each weight is at least 0, classes not named keep theirs, and w is
 * unchanged on error. Returns 0 or INFS_ECONFIG with a reason in err. */
int slo_parse_weights(const char *list, double w[INFS_CLASS_COUNT],
                      char *err, size_t errlen);

/* Writes "TTFT[+PER_KTOK]:TPOT" ms, the form slo_parse reads. */
void slo_format(const slo_t *s, char *buf, size_t len);

#endif
