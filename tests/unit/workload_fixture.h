/* A digest of every field of the requests a workload generates, for the
 * tests that a seed reproduces a workload and another seed does not. */
#ifndef INFSCHED_TESTS_WORKLOAD_FIXTURE_H
#define INFSCHED_TESTS_WORKLOAD_FIXTURE_H

#include "workload.h"

#include <stdint.h>

typedef struct digest {
  uint64_t h;
} digest_t;

static inline void mix_in(digest_t *d, uint64_t v) {
  d->h = (d->h ^ v) * 0x100000001b3ull;
}

/* Adds request r to the digest at arg (a digest_t). */
static inline void digest_req(const workload_req_t *r, void *arg) {
  digest_t *d = arg;
  mix_in(d, r->id);
  mix_in(d, r->arrival);
  mix_in(d, (uint64_t)r->cls);
  mix_in(d, r->prompt_tokens);
  mix_in(d, r->max_tokens);
  mix_in(d, r->slo.ttft_ms);
  mix_in(d, r->slo.ttft_ms_per_ktok);
  mix_in(d, r->slo.tpot_ms);
  for (const char *p = r->session; *p; p++)
    mix_in(d, (uint8_t)*p);
  mix_in(d, r->n_blocks);
  for (size_t i = 0; i < r->n_blocks; i++)
    mix_in(d, r->blocks[i]);
}

#endif
