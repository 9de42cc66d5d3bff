/* Moving a prompt's KV from the worker that prefilled it (P) to the one that
 * decodes it (D): the links between workers, and the time a transfer adds
 * to the first token gap. Pure arithmetic; docs/serving-model.md ("Moving
 * KV between workers") gives the model and the sources of the defaults. */
#ifndef INFSCHED_MODEL_TRANSFER_H
#define INFSCHED_MODEL_TRANSFER_H

#include "infsched/profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One direction of a link. */
typedef struct infs_link {
  double gbps;       /* bytes moved per second, in GB/s (10^9 bytes) */
  double latency_us; /* fixed cost of one transfer */
  /* The sender streams each layer's KV as its prefill finishes that layer
   * (Mooncake, SGLang); without it D pulls once P is done, as vLLM's NIXL
   * connector does. */
  bool overlap;
} infs_link_t;

/* A link with no rule: one 400 Gb/s RDMA NIC per serving unit, pulled
 * after the prefill (docs/serving-model.md gives the sources). */
#define LINK_DEFAULT_GBPS 50.0
#define LINK_DEFAULT_LATENCY_US 20.0
#define LINK_DEFAULT_OVERLAP false

/* Layers whose KV a streaming sender sends one after another: those of the
 * 70B-class model every shipped profile serves (configs/profiles.yaml). */
#define TRANSFER_LAYERS 80

/* Bounds on a rule's figures. */
#define LINK_GBPS_MAX 1e6
#define LINK_LATENCY_US_MAX 60e6

/* Rules FROM>TO, each side a worker id, a profile name, a worker class
 * name (gpu, sram, tpu) or '*'. */
typedef struct link_table link_table_t;

/* Parses "FROM>TO=GBPS[:LATENCY_US[:overlap]]" rules separated by commas,
 * e.g. "tpu>gpu=50:20:overlap,*>*=12.5" (latency defaults to
 * LINK_DEFAULT_LATENCY_US, overlap to off). Returns 0 with a table the
 * caller frees with link_table_free, or INFS_ECONFIG with the offending
 * rule and what is wrong with it in err. */
int link_table_parse(const char *spec, link_table_t **out, char *err,
                     size_t errlen);
void link_table_free(link_table_t **t);
size_t link_table_count(const link_table_t *t);

/* The link from one worker to another: the most specific rule matching
 * both (a side's match weighs 9 by worker id, 3 by profile name, 1 by
 * class, 0 by '*'; the highest sum wins, the earlier rule at a tie). Ids
 * and profiles may be NULL when unknown. No table, or no rule: the
 * defaults above. */
infs_link_t link_find(const link_table_t *t, const char *from_id,
                      const infs_profile_t *from, const char *to_id,
                      const infs_profile_t *to);

/* KV bytes of `tokens` prompt tokens in p's layout: what crosses the link
 * when p is the sender. */
uint64_t kv_transfer_bytes(const infs_profile_t *p, uint32_t tokens);

/* Microseconds a transfer of `bytes` over l adds after a prefill of
 * prefill_us ends: latency + bytes / bandwidth, or with overlap what the
 * layer-wise stream has left when the last layer's prefill finishes, never
 * less than one layer's share. 0 for 0 bytes; INFINITY for a link without
 * bandwidth. */
double kv_transfer_visible_us(const infs_link_t *l, uint64_t bytes,
                              double prefill_us);

/* When the KV a decode-phase dispatch names is in place on D, for a pull
 * that starts at now: over the handle's link (the defaults when it names
 * none), kv_transfer_visible_us after now. Figures from the wire may be
 * absurd: the wait is capped at a day, which the scheduler's progress
 * deadline ends first. */
infs_time_t kv_transfer_ready(const infs_kv_handle_t *kv, infs_time_t now);

#endif
