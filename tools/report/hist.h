/* Latency histogram with log-linear buckets (HdrHistogram's layout): values
 * below 128 are kept exactly, larger ones in buckets 1/128 of their power of
 * two wide, so a reported quantile is within 0.4% of a recorded value. Count,
 * sum, min and max are exact. Values are unsigned integers (microseconds
 * throughout infsched). Memory is fixed (about 60 KB) whatever the count. */
#ifndef INFSCHED_HIST_H
#define INFSCHED_HIST_H

#include <stdint.h>

typedef struct hist hist_t;

/* Returns an empty histogram, or NULL when out of memory. */
hist_t *hist_new(void);
void hist_destroy(hist_t **h);

void hist_record(hist_t *h, uint64_t value);
/* Adds every sample of src to dst. */
void hist_merge(hist_t *dst, const hist_t *src);
void hist_reset(hist_t *h);

uint64_t hist_count(const hist_t *h);
/* Exact mean, min and max; 0 when empty. */
double hist_mean(const hist_t *h);
uint64_t hist_min(const hist_t *h);
uint64_t hist_max(const hist_t *h);

/* Nearest-rank quantile, q in [0, 1]: the smallest recorded value v such that
 * at least q of the samples are <= v, reported as the middle of v's bucket
 * clamped to [min, max]. Returns 0 when empty. */
uint64_t hist_quantile(const hist_t *h, double q);

#endif
