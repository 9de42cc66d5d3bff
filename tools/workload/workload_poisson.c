/* Open-loop Poisson arrivals at a flat rate, or along a linear ramp from
 * opts.rate to opts.rate_end over opts.duration_s, times the factors of the
 * bursts under way (both drawn by thinning), with sizes from opts.prompt and
 * opts.output. */
#include "workload_impl.h"

#include "infsched/errors.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

typedef struct poisson {
  workload_t base; /* first: the driver sees a workload_t */
  double next_s;   /* time of the next arrival */
  double end_s;    /* arrivals stop here; INFINITY without a duration */
  double rate0;
  double rate1;
  bool ramp;
  double peak; /* an upper bound of the rate, for thinning */
} poisson_t;

static double rate_at(const poisson_t *p, double t) {
  double rate = p->rate0;
  if (p->ramp)
    rate += (p->rate1 - p->rate0) * (t / p->end_s);
  const workload_opts_t *o = &p->base.opts;
  for (size_t i = 0; i < o->n_bursts; i++) {
    const workload_burst_t *b = &o->bursts[i];
    if (t >= b->at_s && t < b->at_s + b->duration_s)
      rate *= b->factor;
  }
  return rate;
}

static void advance(poisson_t *p) {
  workload_rng_t *r = &p->base.rng_arrival;
  if (!p->ramp && p->base.opts.n_bursts == 0) {
    p->next_s += workload_rng_exp(r, 1.0 / p->rate0);
    return;
  }
  /* Thinning (Lewis and Shedler): candidates at the peak rate, each kept
   * with probability rate(t) / peak. */
  double peak = p->peak;
  for (;;) {
    p->next_s += workload_rng_exp(r, 1.0 / peak);
    if (p->next_s >= p->end_s)
      return;
    if (workload_rng_uniform(r) * peak < rate_at(p, p->next_s))
      return;
  }
}

static infs_time_t poisson_next_time(const workload_t *w) {
  const poisson_t *p = (const poisson_t *)w;
  if (p->next_s >= p->end_s)
    return INFS_TIME_NEVER;
  return (infs_time_t)llround(p->next_s * 1e6);
}

static int poisson_pop(workload_t *w, infs_time_t now, workload_req_t *req) {
  (void)now;
  poisson_t *p = (poisson_t *)w;
  infs_time_t arrival = poisson_next_time(w);
  if (arrival == INFS_TIME_NEVER)
    return -EAGAIN;
  infs_class_t cls = workload_draw_class(w);
  uint32_t prompt = workload_dist_sample(&w->opts.prompt, &w->rng_size);
  uint32_t output = workload_dist_sample(&w->opts.output, &w->rng_size);
  workload_fill_request(w, req, arrival, cls, prompt, output);
  advance(p);
  return 0;
}

static bool poisson_finished(const workload_t *w) {
  return poisson_next_time(w) == INFS_TIME_NEVER;
}

static void poisson_destroy(workload_t *w) {
  free(w);
}

static const workload_ops_t poisson_ops = {
    .name = "poisson",
    .next_time = poisson_next_time,
    .pop = poisson_pop,
    .on_done = NULL,
    .finished = poisson_finished,
    .destroy = poisson_destroy,
};

int workload_poisson_new(const workload_opts_t *opts, workload_t **out,
                         char *err, size_t errlen) {
  *out = NULL;
  if (!(opts->rate > 0.0) || !isfinite(opts->rate))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "poisson: rate must be > 0 requests/s");
  if (!(opts->rate_end >= 0.0) || !isfinite(opts->rate_end))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "poisson: end rate must be >= 0 requests/s");
  if (opts->duration_s <= 0.0 && opts->max_requests == 0)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "poisson: needs a duration or a request limit");
  bool ramp = opts->rate_end > 0.0 && opts->rate_end != opts->rate;
  if (ramp && opts->duration_s <= 0.0)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "poisson: a ramp needs a duration");
  if (opts->n_bursts > WORKLOAD_BURST_MAX)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "poisson: at most %d bursts", WORKLOAD_BURST_MAX);
  double boost = 1.0;
  for (size_t i = 0; i < opts->n_bursts; i++) {
    const workload_burst_t *b = &opts->bursts[i];
    if (!(b->at_s >= 0.0) || !(b->duration_s > 0.0) || !(b->factor > 0.0) ||
        !isfinite(b->at_s + b->duration_s + b->factor))
      return workload_errf(INFS_ECONFIG, err, errlen,
                           "poisson: burst %zu needs AT >= 0, DURATION > 0 "
                           "and FACTOR > 0",
                           i + 1);
    boost *= fmax(1.0, b->factor);
  }
  poisson_t *p = calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  int rc = workload_base_init(&p->base, &poisson_ops, opts, err, errlen);
  if (rc) {
    free(p);
    return rc;
  }
  p->rate0 = opts->rate;
  p->rate1 = ramp ? opts->rate_end : opts->rate;
  p->ramp = ramp;
  p->end_s = opts->duration_s > 0.0 ? opts->duration_s : INFINITY;
  p->peak = fmax(p->rate0, p->rate1) * boost;
  p->next_s = 0.0;
  advance(p);
  *out = &p->base;
  return 0;
}
