#include "cost.h"

static double energy_usd(double watts, double seconds, double kwh_usd) {
  return watts * seconds / 3.6e6 * kwh_usd;
}

double cost_worker_usd(const infs_profile_t *p, double up_s, double busy_s,
                       double kwh_usd) {
  if (busy_s > up_s)
    busy_s = up_s;
  return p->price_per_hour * up_s / 3600.0 +
         energy_usd(p->power_idle_w, up_s - busy_s, kwh_usd) +
         energy_usd(p->power_busy_w, busy_s, kwh_usd);
}

double cost_request_usd(const infs_profile_t *p, double busy_s,
                        uint32_t prompt_tokens, uint32_t generated_tokens,
                        double kwh_usd) {
  return p->price_per_hour * busy_s / 3600.0 +
         energy_usd(p->power_busy_w, busy_s, kwh_usd) +
         p->usd_per_mtok_in * prompt_tokens / 1e6 +
         p->usd_per_mtok_out * generated_tokens / 1e6;
}
