/* The predictor, over the engine's rules (model/engine.c) and its step-time
 * model (model/step.h: the same functions the engine times its steps with,
 * so that tests/unit/test_model_agreement.c can hold one against the
 * other): FIFO admission up to max_batch sequences and the KV capacity, one
 * token per running sequence per step, prefill chunks riding along in the
 * same forward pass with what the step's token budget leaves them (and, on a
 * profile with slo_aware_prefill, no more than keeps the tightest TPOT
 * target there). From the heartbeat and the changes since:
 *
 *   n        = heartbeat running + queued + dispatched since - finished
 *   kv       = heartbeat kv_used + KV dispatched since - KV freed since
 *   backlog  = heartbeat prefill backlog + uncached prompt tokens
 *              dispatched since - those of requests that have started
 *   running  = min(n, max_batch)
 *   step     = step_decode_ms(running, kv), or 0 when idle
 *   slot     = when n >= max_batch or the prompt does not fit in KV:
 *              ahead * (remaining / n) * step_decode_ms(b, kv) / b, the time
 *              for `ahead` sequences to finish when b run and each has the
 *              average remaining output of the core's requests there left;
 *              else 0
 *   fill(x, c) = step_prefill_ms(x behind c, with the running decodes and
 *              the worker's TPOT cap): x in chunks, each one pass with them
 *   queue    = slot + step / 2 (the next step boundary) + fill(backlog, 0)
 *   ttft     = queue + fill(fresh, cached)
 *   extra    = fill(fresh, cached) - (its chunks' steps) * step: what its
 *              chunks add to the steps they ride along with
 *   step'    = step_decode_ms(b' = min(n + 1, max_batch),
 *              kv + prompt + max / 2)
 *   tpot     = step' / (1 - min(prefill_load, 0.9)): prompts arriving after
 *              it are prefilled in chunks riding along with its steps
 *   extra'   = extra when others run there, else 0: what the steps of
 *              those decoding gain (policy_harms spreads it over their
 *              outputs)
 *   busy     = extra + (max_tokens - 1) * step' / b'
 *   cost     = cost_request_usd(busy, prompt, max_tokens)
 *   util     = max(running / max_batch, (kv + prompt) / kv_total,
 *              prefill_load), within [PREDICTOR_UTIL_FLOOR, 1]: the share
 *              of the worker in use, its own prompt's KV included (a 30k
 *              prompt holds a third of an SRAM worker's KV all its life)
 *   opportunity = cost * util
 *
 * A request whose KV arrives (kv_arrives, the decode half of a split)
 * prefills only its last prompt token: cached = prompt - 1, fresh = 1.
 *
 * A split request (predictor_estimate_pair) is the two halves, each
 * predicted on its worker as above, and the transfer between them:
 *
 *   P        = prompt, max_tokens 1, P's cache
 *   moved    = prompt - D's cached tokens; bytes = kv_transfer_bytes(P)
 *   transfer = kv_transfer_visible_us(link, bytes, P's prefill)
 *   D        = prompt + 1 (the first token, which D computes), max_tokens
 *              - 1, kv_arrives
 *   ttft     = P's ttft (the first token comes from P)
 *   handoff  = transfer + D's ttft (its queue and first step)
 *   tpot     = (handoff + (max_tokens - 2) * D's tpot) / (max_tokens - 1)
 *   cost     = P's + D's (busy time, cost, opportunity)
 *
 * where prefill_load is the uncached prompt tokens per second sent to the
 * worker lately over its compute-bound prefill rate (step_prefill_tps),
 * cached = engine_hit_tokens(prompt, cached_blocks) (whole blocks before the
 * last token, which is always computed) and fresh = prompt - cached. It errs towards the
 * pessimistic: it ignores the prefill progress made since the heartbeat
 * until a first token shows it. */
#include "predictor.h"

#include "cost.h"
#include "engine.h"
#include "step.h"

#include <math.h>

static uint64_t clamp_i64(int64_t v, uint64_t hi) {
  if (v < 0)
    return 0;
  return (uint64_t)v > hi ? hi : (uint64_t)v;
}

void predictor_now(const infs_profile_t *p, const core_load_t *l,
                   const predictor_since_t *since, predictor_now_t *out) {
  out->kv_total = l->kv_total ? l->kv_total : p->kv_tokens;
  out->kv = clamp_i64((int64_t)l->kv_used + since->kv_tokens, out->kv_total);
  out->backlog = clamp_i64(
      (int64_t)l->prefill_backlog_tokens + since->prefill_tokens, UINT32_MAX);
  out->requests = (uint32_t)clamp_i64(
      (int64_t)l->running + l->queued + since->requests, UINT32_MAX);
  out->running = out->requests < p->max_batch ? out->requests : p->max_batch;
}

void predictor_estimate(const predictor_worker_t *w,
                        const predictor_request_t *r, double kwh_usd,
                        prediction_t *out) {
  const infs_profile_t *p = w->profile;
  predictor_now_t now;
  predictor_now(p, w->load, &w->since, &now);
  uint64_t kv_total = now.kv_total, kv = now.kv, backlog = now.backlog;
  uint32_t n = now.requests, running = now.running;

  uint64_t prompt = r->prompt_tokens;
  uint64_t cached =
      r->kv_arrives && prompt
          ? prompt - 1
          : engine_hit_tokens(r->prompt_tokens, r->cached_blocks,
                              p->block_size);
  uint64_t fresh = prompt - cached;

  double step = running ? step_decode_ms(p, running, kv) : 0;
  double slot = 0;
  if (n >= p->max_batch || kv + prompt + 1 > kv_total) {
    uint32_t ahead = n >= p->max_batch ? n - p->max_batch + 1 : 1;
    uint32_t b = running ? running : 1;
    double left = w->outstanding ? (double)w->remaining_tokens / w->outstanding
                                 : r->max_tokens;
    slot = ahead * left * step_decode_ms(p, b, kv) / b;
  }
  /* Prefills run in chunks, each one pass with the running decodes. */
  double cap = w->tpot_cap_ms;
  uint64_t own_steps;
  double own_prefill_ms =
      step_prefill_ms(p, fresh, cached, running, kv, cap, &own_steps);
  out->queue_ms =
      slot + step / 2 + step_prefill_ms(p, backlog, 0, running, kv, cap, NULL);
  out->ttft_ms = out->queue_ms + own_prefill_ms;
  /* What its chunks add to the steps they ride along with: its own worker
   * time for the prefill. */
  double extra = own_prefill_ms - (double)own_steps * step;
  if (extra < 0)
    extra = 0;

  uint32_t b1 = n + 1 < p->max_batch ? n + 1 : p->max_batch;
  double step1 = step_decode_ms(p, b1, kv + prompt + r->max_tokens / 2);
  double load = w->prefill_load < 0.9 ? w->prefill_load : 0.9;
  out->tpot_ms = step1 / (1 - (load > 0 ? load : 0));
  out->extra_ms = running ? extra : 0;
  uint32_t decode_steps = r->max_tokens ? r->max_tokens - 1 : 0;
  out->busy_s = extra / 1e3 + decode_steps * step1 / b1 / 1e3;
  out->cost_usd = cost_request_usd(p, out->busy_s, r->prompt_tokens,
                                   r->max_tokens, kwh_usd);
  /* Its own decode share is in busy_s; the KV its prompt holds is not. */
  double u = (double)running / p->max_batch;
  double u_kv = (double)(kv + prompt) / (double)kv_total;
  if (u_kv > u)
    u = u_kv;
  if (load > u)
    u = load;
  out->util = u < PREDICTOR_UTIL_FLOOR ? PREDICTOR_UTIL_FLOOR : u < 1 ? u : 1;
  out->opportunity_usd = out->cost_usd * out->util;
  out->cached_tokens = (uint32_t)cached;
  out->batch = b1;
}

uint32_t predictor_kv_lacks(uint32_t prompt_tokens, uint32_t cached_blocks,
                            uint32_t block_size) {
  uint64_t cached = (uint64_t)cached_blocks * block_size;
  return cached < prompt_tokens ? prompt_tokens - (uint32_t)cached : 0;
}

void predictor_pair_halves(const predictor_request_t *r,
                           uint32_t d_cached_blocks, predictor_request_t *on_p,
                           predictor_request_t *on_d) {
  uint32_t n = r->max_tokens > 2 ? r->max_tokens : 2;
  *on_p = (predictor_request_t){
      .prompt_tokens = r->prompt_tokens,
      .max_tokens = 1,
      .cached_blocks = r->cached_blocks,
  };
  *on_d = (predictor_request_t){
      .prompt_tokens = r->prompt_tokens + 1,
      .max_tokens = n - 1,
      .cached_blocks = d_cached_blocks,
      .kv_arrives = true,
  };
}

void predictor_pair_join(const prediction_t *p, const prediction_t *d,
                         const infs_profile_t *pp, uint32_t moved_tokens,
                         const infs_link_t *link, uint32_t max_tokens,
                         pair_prediction_t *out) {
  uint32_t n = max_tokens > 2 ? max_tokens : 2;
  out->p = *p;
  out->d = *d;
  out->link = *link;
  out->moved_tokens = moved_tokens;
  out->bytes = kv_transfer_bytes(pp, moved_tokens);
  out->prefill_ms = p->ttft_ms - p->queue_ms;
  out->transfer_ms =
      kv_transfer_visible_us(link, out->bytes, out->prefill_ms * 1e3) / 1e3;
  out->handoff_ms = out->transfer_ms + d->ttft_ms;
  out->ttft_ms = p->ttft_ms;
  out->tpot_ms = (out->handoff_ms + (n - 2) * d->tpot_ms) / (n - 1);
  out->busy_s = p->busy_s + d->busy_s;
  out->cost_usd = p->cost_usd + d->cost_usd;
  out->opportunity_usd = p->opportunity_usd + d->opportunity_usd;
}

void predictor_estimate_pair(const predictor_worker_t *p,
                             const predictor_worker_t *d,
                             const predictor_request_t *r,
                             uint32_t d_cached_blocks, const infs_link_t *link,
                             double kwh_usd, pair_prediction_t *out) {
  predictor_request_t rp, rd;
  prediction_t on_p, on_d;
  predictor_pair_halves(r, d_cached_blocks, &rp, &rd);
  predictor_estimate(p, &rp, kwh_usd, &on_p);
  predictor_estimate(d, &rd, kwh_usd, &on_d);
  uint32_t moved = predictor_kv_lacks(r->prompt_tokens, d_cached_blocks,
                                      d->profile->block_size);
  predictor_pair_join(&on_p, &on_d, p->profile, moved, link, r->max_tokens,
                      out);
}

static double decay(infs_time_t dt_us) {
  double dt = (double)dt_us / 1e6;
  return exp(-dt / PREDICTOR_RATE_TAU_S);
}

void predictor_rate_add(predictor_decay_t *memo, double *rate, infs_time_t *at,
                        infs_time_t now, double tokens) {
  infs_time_t dt = now > *at ? now - *at : 0;
  double factor;
  if (!memo) {
    factor = decay(dt);
  } else {
    if (!memo->set || memo->dt != dt)
      *memo = (predictor_decay_t){true, dt, decay(dt)};
    factor = memo->factor;
  }
  *rate = *rate * factor + tokens / PREDICTOR_RATE_TAU_S;
  if (now > *at)
    *at = now;
}

double predictor_prefill_load(const infs_profile_t *p, double rate) {
  return rate > 0 ? rate / step_prefill_tps(p) : 0;
}

double predictor_slo_use(const prediction_t *p, const slo_targets_t *t) {
  double a = t->ttft_ms > 0 ? p->ttft_ms / t->ttft_ms : 0;
  double b = t->tpot_ms > 0 ? p->tpot_ms / t->tpot_ms : 0;
  return a > b ? a : b;
}
