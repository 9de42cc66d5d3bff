/* The calibration fit (tools/calibrate/fit.h).
 *
 * Given the weight read M and the FLOP rate F, every point is linear in
 * the three figures left: the client's latency (in each TTFT), the step
 * overhead (once a step) and the per-sequence cost (once a sequence a
 * step). So the search is over (M, F) on a logarithmic grid that narrows
 * around its best cell, and at each cell the three come from weighted
 * least squares, kept >= 0 by trying each subset of them at zero. The
 * residuals are relative: a 5 ms error matters on a 20 ms step, not on a
 * 2 s prefill. */
#include "fit.h"

#include "infsched/errors.h"
#include "step.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The linear figures: client latency, step overhead, per-sequence cost. */
enum { X_CLIENT, X_OVERHEAD, X_PER_SEQ, N_X };

/* Huber's loss: residuals past K robust standard deviations (1.4826 x
 * the median absolute residual, at least FLOOR) count linearly. */
#define HUBER_ROUNDS 3
#define HUBER_K 1.5
#define HUBER_FLOOR 0.003

/* Grid points per axis, rounds of the (M, F) search, and the cells kept
 * either side of a round's best point for the next. */
#define GRID 48
#define ROUNDS 16
#define KEEP 4

typedef struct problem {
  const infs_profile_t *base;
  const calib_ttft_t *ttft;
  size_t n_ttft;
  const calib_tpot_t *tpot;
  size_t n_tpot;
  bool fit_overhead;
  bool fit_mfu;
  const double *robust; /* each row's weight from its residual; NULL: 1 */
} problem_t;

/* One point as y = roof + a . x. */
typedef struct row {
  double y, roof, a[N_X];
} row_t;

static uint64_t whole(double v) {
  return v <= 0 ? 0 : (uint64_t)llround(v);
}

static uint64_t new_tokens(const calib_ttft_t *t) {
  uint64_t n = whole(t->prompt - t->cached);
  return n ? n : 1; /* the last prompt token is always computed */
}

double calib_ttft_model_ms(const infs_profile_t *p, const calib_ttft_t *t) {
  return step_prefill_ms(p, new_tokens(t), whole(t->cached), 0, 0, 0, NULL);
}

double calib_tpot_model_ms(const infs_profile_t *p, const calib_tpot_t *d) {
  uint32_t b = (uint32_t)whole(d->streams);
  return step_decode_ms(p, b, whole(d->ctx * b));
}

/* The base with weight read m_ms, FLOP rate tflops and no overheads. */
static infs_profile_t shape(const infs_profile_t *base, double m_ms,
                            double tflops) {
  infs_profile_t p = *base;
  p.mem_eff = base->weights_gb * 1e3 / (base->mem_bw_gbs * m_ms);
  p.mfu = tflops / base->peak_tflops;
  p.step_overhead_ms = 0;
  p.per_seq_ms = 0;
  return p;
}

static size_t build_rows(const problem_t *pb, const infs_profile_t *p,
                         row_t *rows) {
  size_t n = 0;
  for (size_t i = 0; i < pb->n_ttft; i++) {
    const calib_ttft_t *t = &pb->ttft[i];
    uint64_t steps;
    double roof =
        step_prefill_ms(p, new_tokens(t), whole(t->cached), 0, 0, 0, &steps);
    rows[n++] = (row_t){t->ms, roof, {1, (double)steps, (double)steps}};
  }
  for (size_t i = 0; i < pb->n_tpot; i++) {
    const calib_tpot_t *d = &pb->tpot[i];
    rows[n++] = (row_t){
        d->ms, calib_tpot_model_ms(p, d), {0, 1, (double)whole(d->streams)}};
  }
  return n;
}

/* Solves the k x k system m x = v in place (Gaussian elimination with
 * partial pivoting). Returns 0, or -1 when it is singular. */
static int solve(double m[N_X][N_X], double v[N_X], int k, double x[N_X]) {
  for (int c = 0; c < k; c++) {
    int piv = c;
    for (int r = c + 1; r < k; r++)
      if (fabs(m[r][c]) > fabs(m[piv][c]))
        piv = r;
    if (fabs(m[piv][c]) < 1e-12)
      return -1;
    if (piv != c) {
      for (int j = 0; j < k; j++) {
        double t = m[c][j];
        m[c][j] = m[piv][j];
        m[piv][j] = t;
      }
      double t = v[c];
      v[c] = v[piv];
      v[piv] = t;
    }
    for (int r = c + 1; r < k; r++) {
      double f = m[r][c] / m[c][c];
      for (int j = c; j < k; j++)
        m[r][j] -= f * m[c][j];
      v[r] -= f * v[c];
    }
  }
  for (int r = k - 1; r >= 0; r--) {
    double s = v[r];
    for (int j = r + 1; j < k; j++)
      s -= m[r][j] * x[j];
    x[r] = s / m[r][r];
  }
  return 0;
}

/* The relative error of row r with the linear figures x. */
static double residual(const row_t *r, const double x[N_X]) {
  double pred = r->roof;
  for (int j = 0; j < N_X; j++)
    pred += r->a[j] * x[j];
  return (pred - r->y) / r->y;
}

static double weight(const problem_t *pb, size_t i) {
  return pb->robust ? pb->robust[i] : 1.0;
}

/* Weighted squared relative error of rows with the linear figures x. */
static double cost(const problem_t *pb, const row_t *rows, size_t n,
                   const double x[N_X]) {
  double sse = 0;
  for (size_t i = 0; i < n; i++) {
    double r = residual(&rows[i], x);
    sse += weight(pb, i) * r * r;
  }
  return sse;
}

/* The best x >= 0 for rows: least squares over each subset of the free
 * figures, the others at zero (or, for a held overhead, at its value). */
static double best_linear(const problem_t *pb, const row_t *rows, size_t n,
                          double x_out[N_X]) {
  bool free_x[N_X] = {true, pb->fit_overhead, true};
  double best = INFINITY;
  for (unsigned mask = 0; mask < (1u << N_X); mask++) {
    int idx[N_X], k = 0;
    bool skip = false;
    for (int j = 0; j < N_X; j++)
      if (mask & (1u << j)) {
        if (!free_x[j])
          skip = true;
        idx[k++] = j;
      }
    if (skip)
      continue;
    double x[N_X] = {0, pb->fit_overhead ? 0 : pb->base->step_overhead_ms, 0};
    double m[N_X][N_X] = {{0}}, v[N_X] = {0}, sol[N_X] = {0};
    for (size_t i = 0; i < n; i++) {
      double w = weight(pb, i) / (rows[i].y * rows[i].y);
      double rest = rows[i].y - rows[i].roof;
      for (int j = 0; j < N_X; j++)
        if (!(mask & (1u << j)))
          rest -= rows[i].a[j] * x[j];
      for (int r = 0; r < k; r++) {
        v[r] += w * rows[i].a[idx[r]] * rest;
        for (int c = 0; c < k; c++)
          m[r][c] += w * rows[i].a[idx[r]] * rows[i].a[idx[c]];
      }
    }
    if (k && solve(m, v, k, sol))
      continue;
    bool feasible = true;
    for (int r = 0; r < k; r++) {
      x[idx[r]] = sol[r];
      feasible &= sol[r] >= 0;
    }
    if (!feasible)
      continue;
    double c = cost(pb, rows, n, x);
    if (c < best) {
      best = c;
      memcpy(x_out, x, sizeof x);
    }
  }
  return best;
}

static double evaluate(const problem_t *pb, row_t *rows, double m_ms,
                       double tflops, double x[N_X]) {
  infs_profile_t p = shape(pb->base, m_ms, tflops);
  size_t n = build_rows(pb, &p, rows);
  return best_linear(pb, rows, n, x);
}

/* The log-spaced grid point i of GRID between lo and hi. */
static double grid_at(double lo, double hi, int i) {
  return lo * pow(hi / lo, (double)i / (GRID - 1));
}

static void search(const problem_t *pb, row_t *rows, double m_lo, double m_hi,
                   double f_lo, double f_hi, double *m_best, double *f_best,
                   double x[N_X]) {
  double best = INFINITY;
  int fi_n = pb->fit_mfu ? GRID : 1;
  for (int round = 0; round < ROUNDS; round++) {
    int bi = 0, bj = 0;
    for (int i = 0; i < GRID; i++)
      for (int j = 0; j < fi_n; j++) {
        double m = grid_at(m_lo, m_hi, i);
        double f = pb->fit_mfu ? grid_at(f_lo, f_hi, j) : f_lo;
        double xx[N_X] = {0};
        double c = evaluate(pb, rows, m, f, xx);
        if (c < best) {
          best = c;
          *m_best = m;
          *f_best = f;
          memcpy(x, xx, sizeof xx);
          bi = i;
          bj = j;
        }
      }
    /* Narrow to the cells around the best point (it stays in range). */
    double m_step = pow(m_hi / m_lo, (double)KEEP / (GRID - 1));
    double f_step = pow(f_hi / f_lo, (double)KEEP / (GRID - 1));
    m_lo = grid_at(m_lo, m_hi, bi) / m_step;
    m_hi = m_lo * m_step * m_step;
    if (pb->fit_mfu) {
      f_lo = grid_at(f_lo, f_hi, bj) / f_step;
      f_hi = f_lo * f_step * f_step;
    }
  }
}

/* TTFT points whose (first) prefill step is memory bound, and the others. */
static void regimes(const problem_t *pb, const infs_profile_t *p, size_t *mem,
                    size_t *compute) {
  *mem = *compute = 0;
  for (size_t i = 0; i < pb->n_ttft; i++) {
    const calib_ttft_t *t = &pb->ttft[i];
    uint64_t n = new_tokens(t), budget = step_budget(p);
    step_work_t w = {0};
    step_add_prefill(&w, n < budget ? n : budget, whole(t->cached));
    if (step_mem_ms(p, &w) >= step_compute_ms(p, &w))
      (*mem)++;
    else
      (*compute)++;
  }
}

static int check_points(const calib_ttft_t *ttft, size_t n_ttft,
                        const calib_tpot_t *tpot, size_t n_tpot, char *why,
                        size_t whylen) {
  for (size_t i = 0; i < n_ttft; i++)
    if (!(ttft[i].ms > 0 && ttft[i].prompt >= 1 && ttft[i].cached >= 0 &&
          ttft[i].cached < ttft[i].prompt && isfinite(ttft[i].ms))) {
      snprintf(why, whylen,
               "TTFT point %zu: needs a time > 0 and a prompt of at least one "
               "token more than its cached tokens",
               i);
      return -EINVAL;
    }
  for (size_t i = 0; i < n_tpot; i++)
    if (!(tpot[i].ms > 0 && tpot[i].streams >= 1 && tpot[i].ctx >= 0 &&
          isfinite(tpot[i].ms))) {
      snprintf(why, whylen,
               "decode point %zu: needs a time > 0 and at least one stream", i);
      return -EINVAL;
    }
  bool lengths = false, streams = false;
  for (size_t i = 1; i < n_ttft; i++)
    lengths |= ttft[i].prompt != ttft[0].prompt;
  for (size_t i = 1; i < n_tpot; i++)
    streams |= tpot[i].streams != tpot[0].streams;
  if (!lengths) {
    snprintf(why, whylen, "needs TTFT at two prompt lengths at least");
    return -EINVAL;
  }
  if (!streams) {
    snprintf(why, whylen, "needs decode times at two concurrencies at least");
    return -EINVAL;
  }
  return 0;
}

int calib_fit(const infs_profile_t *base, const calib_ttft_t *ttft,
              size_t n_ttft, const calib_tpot_t *tpot, size_t n_tpot,
              calib_result_t *out, char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  if (n_ttft == 0 || n_tpot == 0) {
    snprintf(why, whylen, "needs TTFT and decode points");
    return -EINVAL;
  }
  int rc = check_points(ttft, n_ttft, tpot, n_tpot, why, whylen);
  if (rc)
    return rc;
  problem_t pb = {base, ttft, n_ttft, tpot, n_tpot, true, true, NULL};
  row_t *rows = calloc(n_ttft + n_tpot, sizeof *rows);
  if (!rows)
    return -ENOMEM;

  /* The weight read is below the fastest decode step; the FLOP rate
   * anywhere from a millionth to ten times the peak, so that a fit beyond
   * the peak is seen and reported rather than clipped. */
  double fastest = INFINITY;
  for (size_t i = 0; i < n_tpot; i++)
    fastest = fmin(fastest, tpot[i].ms);
  double m = 0, f = base->peak_tflops * base->mfu, x[N_X] = {0};
  size_t mem = 0, compute = 0;
  for (int pass = 0; pass < 3; pass++) {
    double f_lo = pb.fit_mfu ? base->peak_tflops * 1e-6 : f;
    double f_hi = pb.fit_mfu ? base->peak_tflops * 10 : f;
    search(&pb, rows, fastest * 1e-4, fastest * 1.5, f_lo, f_hi, &m, &f, x);
    infs_profile_t p = shape(base, m, f);
    regimes(&pb, &p, &mem, &compute);
    bool again = false;
    if (compute < 2 && pb.fit_mfu) {
      pb.fit_mfu = false;
      f = base->peak_tflops * base->mfu;
      again = true;
    }
    /* The overhead is what the decode intercept leaves of the weight
     * read, which is the flat part of TTFT less the intercept of its
     * slope: both sides are needed. */
    if ((mem < 2 || compute < 2) && pb.fit_overhead) {
      pb.fit_overhead = false;
      again = true;
    }
    if (!again)
      break;
  }

  /* Huber's weights, a few times over: a point whose median was still
   * caught by a slow spell moves the fit as little as the noise of the
   * others explains, not with the square of its error. */
  size_t n_rows = n_ttft + n_tpot;
  double *robust = calloc(n_rows, sizeof *robust);
  double *abs_r = calloc(n_rows, sizeof *abs_r);
  if (!robust || !abs_r) {
    free(robust);
    free(abs_r);
    free(rows);
    return -ENOMEM;
  }
  pb.robust = robust;
  for (int round = 0; round < HUBER_ROUNDS; round++) {
    infs_profile_t shaped = shape(base, m, f);
    build_rows(&pb, &shaped, rows);
    for (size_t i = 0; i < n_rows; i++)
      abs_r[i] = fabs(residual(&rows[i], x));
    double scale = fmax(1.4826 * calib_median(abs_r, n_rows), HUBER_FLOOR);
    out->downweighted = 0;
    for (size_t i = 0; i < n_rows; i++) {
      double e = fabs(residual(&rows[i], x));
      robust[i] = e > HUBER_K * scale ? HUBER_K * scale / e : 1.0;
      out->downweighted += robust[i] < 1.0;
    }
    double f_lo = pb.fit_mfu ? f / 4 : f, f_hi = pb.fit_mfu ? f * 4 : f;
    search(&pb, rows, m / 4, m * 4, f_lo, f_hi, &m, &f, x);
  }
  free(abs_r);
  free(robust);
  pb.robust = NULL;
  {
    infs_profile_t shaped = shape(base, m, f);
    regimes(&pb, &shaped, &mem, &compute);
  }

  infs_profile_t p = shape(base, m, f);
  p.step_overhead_ms = x[X_OVERHEAD];
  p.per_seq_ms = x[X_PER_SEQ];
  out->profile = p;
  out->client_ms = x[X_CLIENT];
  out->weight_read_ms = m;
  out->tflops = f;
  out->fitted_overhead = pb.fit_overhead;
  out->fitted_mfu = pb.fit_mfu;
  out->mem_bound = mem;
  out->compute_bound = compute;
  double sse = 0, worst = 0;
  for (size_t i = 0; i < n_ttft; i++) {
    double r = (x[X_CLIENT] + calib_ttft_model_ms(&p, &ttft[i]) - ttft[i].ms) /
               ttft[i].ms;
    sse += r * r;
    worst = fmax(worst, fabs(r));
  }
  for (size_t i = 0; i < n_tpot; i++) {
    double r = (calib_tpot_model_ms(&p, &tpot[i]) - tpot[i].ms) / tpot[i].ms;
    sse += r * r;
    worst = fmax(worst, fabs(r));
  }
  out->rms_rel = sqrt(sse / (double)(n_ttft + n_tpot));
  out->max_rel = worst;
  free(rows);

  if (p.mem_eff > 1) {
    snprintf(why, whylen,
             "the weight read measures %.3g ms, faster than %g GB at the "
             "full %g GB/s (%.3g ms): weights_gb or mem_bw_gbs of the base "
             "do not describe this server",
             m, base->weights_gb, base->mem_bw_gbs,
             base->weights_gb * 1e3 / base->mem_bw_gbs);
    return INFS_ECONFIG;
  }
  if (p.mfu > 1) {
    snprintf(why, whylen,
             "prefill measures %.4g TFLOP/s, above the peak of %g: params_b "
             "or peak_tflops of the base do not describe this server",
             f, base->peak_tflops);
    return INFS_ECONFIG;
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double calib_quantile(double *v, size_t n, double q) {
  if (n == 0)
    return 0;
  qsort(v, n, sizeof *v, cmp_double);
  double at = q * (double)(n - 1);
  size_t lo = (size_t)at;
  return lo + 1 < n ? v[lo] + (at - (double)lo) * (v[lo + 1] - v[lo]) : v[lo];
}

double calib_median(double *v, size_t n) {
  return calib_quantile(v, n, 0.5);
}
