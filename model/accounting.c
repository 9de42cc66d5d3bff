#include "accounting.h"

#include "cost.h"

void accounting_init(accounting_t *a, const infs_profile_t *p, double kwh_usd,
                     infs_time_t now) {
  *a = (accounting_t){
      .profile = p,
      .kwh_usd = kwh_usd,
      .started = now,
      .last_beat = now,
  };
}

double accounting_cost_usd(const accounting_t *a, infs_time_t now,
                           double busy_s) {
  double up_s = (double)(now - a->started) / 1e6;
  return cost_worker_usd(a->profile, up_s, busy_s, a->kwh_usd) + a->token_usd;
}

void accounting_beat(accounting_t *a, infs_time_t now, double busy_s,
                     uint64_t generated_tokens, accounting_beat_t *out) {
  double dt = (double)(now - a->last_beat) / 1e6;
  out->up_s = (double)(now - a->started) / 1e6;
  out->busy_s = busy_s;
  out->tokens_per_s =
      dt > 0 ? (double)(generated_tokens - a->last_generated) / dt : 0;
  out->cost_usd = accounting_cost_usd(a, now, busy_s);
  a->last_generated = generated_tokens;
  a->last_beat = now;
}

double accounting_done(accounting_t *a, uint32_t prompt_tokens,
                       uint32_t generated_tokens, double busy_s,
                       double billed_usd) {
  const infs_profile_t *p = a->profile;
  a->token_usd += p->usd_per_mtok_in * prompt_tokens / 1e6 +
                  p->usd_per_mtok_out * generated_tokens / 1e6 + billed_usd;
  return cost_request_usd(p, busy_s, prompt_tokens, generated_tokens,
                          a->kwh_usd) +
         billed_usd;
}
