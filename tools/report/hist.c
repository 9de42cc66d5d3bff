#include "hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sub-buckets per power of two, as a bit count: 7 gives 128, so a bucket is
 * at most 1/128 of its lower bound wide. */
#define SUB_BITS 7
#define SUB_COUNT (1u << SUB_BITS)
/* Values below SUB_COUNT map one to one; every power of two from 2^7 to 2^63
 * adds SUB_COUNT buckets. */
#define BUCKETS ((64 - SUB_BITS + 1) * SUB_COUNT)

struct hist {
  uint64_t count;
  uint64_t min;
  uint64_t max;
  long double sum; /* exact for any realistic run of 64-bit samples */
  uint64_t buckets[BUCKETS];
};

static unsigned bucket_of(uint64_t v) {
  if (v < SUB_COUNT)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - SUB_BITS;
  return (shift + 1) * SUB_COUNT + (unsigned)((v >> shift) - SUB_COUNT);
}

/* The middle of bucket i, the value reported for every sample in it. */
static uint64_t bucket_mid(unsigned i) {
  if (i < SUB_COUNT)
    return i;
  unsigned shift = i / SUB_COUNT - 1;
  uint64_t lower = (uint64_t)(SUB_COUNT + i % SUB_COUNT) << shift;
  uint64_t width = 1ull << shift;
  return lower + (width - 1) / 2;
}

hist_t *hist_new(void) {
  hist_t *h = calloc(1, sizeof *h);
  if (h)
    h->min = UINT64_MAX;
  return h;
}

void hist_destroy(hist_t **h) {
  if (h && *h) {
    free(*h);
    *h = NULL;
  }
}

void hist_reset(hist_t *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

void hist_record(hist_t *h, uint64_t value) {
  h->buckets[bucket_of(value)]++;
  h->count++;
  h->sum += (long double)value;
  if (value < h->min)
    h->min = value;
  if (value > h->max)
    h->max = value;
}

void hist_merge(hist_t *dst, const hist_t *src) {
  if (src->count == 0)
    return;
  for (unsigned i = 0; i < BUCKETS; i++)
    dst->buckets[i] += src->buckets[i];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->min < dst->min)
    dst->min = src->min;
  if (src->max > dst->max)
    dst->max = src->max;
}

uint64_t hist_count(const hist_t *h) {
  return h->count;
}

double hist_mean(const hist_t *h) {
  return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}

uint64_t hist_min(const hist_t *h) {
  return h->count ? h->min : 0;
}

uint64_t hist_max(const hist_t *h) {
  return h->max;
}

uint64_t hist_quantile(const hist_t *h, double q) {
  if (h->count == 0)
    return 0;
  if (!(q > 0.0))
    return h->min;
  if (q >= 1.0)
    return h->max;
  /* Nearest rank; the epsilon keeps q*n = 99.0000001 from becoming 100. */
  uint64_t rank = (uint64_t)ceil(q * (double)h->count - 1e-9);
  if (rank == 0)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      uint64_t v = bucket_mid(i);
      if (v < h->min)
        v = h->min;
      if (v > h->max)
        v = h->max;
      return v;
    }
  }
  return h->max;
}
