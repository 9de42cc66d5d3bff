#include "workload_impl.h"

#include "infsched/errors.h"
#include "xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Stream keys for the base's random streams; generators use their own. */
enum { STREAM_CLASS = 1, STREAM_SIZE = 2, STREAM_ARRIVAL = 3 };

/* Synthetic-token stream key of the prefix shared by all requests; each
 * request's own stream is keyed by its id, which starts at 1. */
#define SHARED_PREFIX_KEY 0

int workload_errf(int code, char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

int workload_read_lines(const char *path, workload_line_fn fn, void *arg,
                        char *err, size_t errlen) {
  int rc = 0;
  char *line = NULL;
  size_t cap = 0;
  unsigned lineno = 0;
  FILE *f = fopen(path, "r");
  if (!f) {
    rc = -errno;
    return workload_errf(rc, err, errlen, "%s: %s", path, strerror(errno));
  }
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if ((size_t)len != strlen(line)) {
      rc = workload_errf(INFS_ECONFIG, err, errlen, "%s:%u: NUL byte in line",
                         path, lineno);
      goto out;
    }
    if (strspn(line, " \t\r\n") == (size_t)len)
      continue;
    if ((rc = fn(arg, lineno, line, (size_t)len, err, errlen)))
      goto out;
  }
  if (ferror(f))
    rc = workload_errf(-EIO, err, errlen, "%s: read error", path);
out:
  free(line);
  fclose(f);
  return rc;
}

/* Keeps a row with probability keep (1: every row). */
static bool kept(workload_rng_t *rng, double keep) {
  return keep >= 1.0 || workload_rng_uniform(rng) < keep;
}

static int64_t time_at(const uint8_t *row, size_t t_off) {
  int64_t t;
  memcpy(&t, row + t_off, sizeof t);
  return t;
}

int workload_check_replay(const workload_opts_t *opts, char *err,
                          size_t errlen) {
  if (!(opts->speedup > 0.0) || !isfinite(opts->speedup))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "trace: speed-up must be > 0");
  if (!(opts->copies > 0.0) || !(opts->copies <= WORKLOAD_COPIES_MAX))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "trace: copies must be > 0 and at most %d",
                         WORKLOAD_COPIES_MAX);
  return 0;
}

int workload_overlay(const workload_opts_t *o, void **rows, size_t *n,
                     size_t size, size_t t_off, size_t copy_off,
                     int (*cmp)(const void *, const void *)) {
  if (o->copies == 1.0)
    return 0;
  const uint8_t *in = *rows;
  size_t rows_n = *n;
  size_t whole = (size_t)floor(o->copies);
  double part = o->copies - (double)whole;
  int64_t t0 = time_at(in, t_off);
  int64_t span = time_at(in + (rows_n - 1) * size, t_off) - t0;
  int64_t period = span + (rows_n > 1 ? span / (int64_t)(rows_n - 1) : 1);
  if (period <= 0)
    period = 1;
  size_t copies = whole + (part > 0 ? 1 : 0);
  uint8_t *v = calloc(copies * rows_n + 1, size);
  if (!v)
    return -ENOMEM;
  workload_rng_t rng;
  workload_rng_seed(&rng, o->seed, 0x6f7665726c6179ull /* "overlay" */);
  size_t out = 0;
  for (size_t k = 0; k < copies; k++) {
    int64_t shift =
        k == 0 ? 0 : (int64_t)(workload_rng_uniform(&rng) * (double)period);
    double keep = k < whole ? 1.0 : part;
    for (size_t i = 0; i < rows_n; i++) {
      if (!kept(&rng, keep))
        continue;
      uint8_t *r = v + out++ * size;
      memcpy(r, in + i * size, size);
      int64_t t = t0 + (time_at(r, t_off) - t0 + shift) % period;
      memcpy(r + t_off, &t, sizeof t);
      if (copy_off != SIZE_MAX) {
        uint32_t c = (uint32_t)k;
        memcpy(r + copy_off, &c, sizeof c);
      }
    }
  }
  free(*rows);
  *rows = v;
  *n = out;
  qsort(v, out, size, cmp);
  return 0;
}

/* --- random numbers --- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t mix64(uint64_t x) {
  return splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

void workload_rng_seed(workload_rng_t *r, uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ mix64(stream ^ 0x5ca1ab1e5eedull);
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
}

uint64_t workload_rng_next(workload_rng_t *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double workload_rng_uniform(workload_rng_t *r) {
  return (double)(workload_rng_next(r) >> 11) * 0x1.0p-53;
}

double workload_rng_exp(workload_rng_t *r, double mean) {
  /* 1 - u is in (0, 1], so the log is finite. */
  return -mean * log1p(-workload_rng_uniform(r));
}

double workload_rng_normal(workload_rng_t *r) {
  /* Box-Muller, one value per call: simpler to reproduce than a cached
   * second value whose presence depends on call history. */
  double u1 = 1.0 - workload_rng_uniform(r);
  double u2 = workload_rng_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint32_t workload_dist_sample(const workload_dist_t *d, workload_rng_t *r) {
  double v = d->median;
  if (d->kind == WORKLOAD_DIST_LOGNORMAL)
    v = exp(log(d->median) + d->sigma * workload_rng_normal(r));
  v = nearbyint(v);
  if (v < (double)d->min)
    return d->min;
  if (v > (double)d->max)
    return d->max;
  return (uint32_t)v;
}

/* --- block hashes --- */

static uint64_t hash_block(const uint8_t *bytes, size_t len, uint64_t prev) {
  return XXH3_64bits_withSeed(bytes, len, prev);
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

size_t workload_hash_tokens(const uint32_t *tokens, size_t n,
                            uint32_t block_size, uint64_t *out, size_t cap) {
  uint8_t buf[4 * WORKLOAD_BLOCK_SIZE_MAX];
  if (block_size == 0 || block_size > WORKLOAD_BLOCK_SIZE_MAX)
    return 0;
  size_t blocks = n / block_size;
  uint64_t prev = 0;
  for (size_t b = 0; b < blocks && b < cap; b++) {
    for (uint32_t i = 0; i < block_size; i++)
      put_le32(buf + 4 * i, tokens[b * block_size + i]);
    prev = hash_block(buf, 4u * block_size, prev);
    out[b] = prev;
  }
  return blocks;
}

static void put_le64(uint8_t *p, uint64_t v) {
  put_le32(p, (uint32_t)v);
  put_le32(p + 4, (uint32_t)(v >> 32));
}

/* Chains one run of a synthetic block onto seed: (stream, pos, len). */
static uint64_t hash_run(uint64_t stream, uint64_t pos, uint64_t len,
                         uint64_t seed) {
  uint8_t b[24];
  put_le64(b, stream);
  put_le64(b + 8, pos);
  put_le64(b + 16, len);
  return XXH3_64bits_withSeed(b, sizeof b, seed);
}

/* Synthetic tokens are never materialised: a block is hashed from the
 * maximal runs of one stream it holds, so the cost is per block, not per
 * token, and a long prompt costs no more than its new blocks. */
void workload_hash_range(const workload_segment_t *segs, size_t nsegs,
                         uint32_t block_size, uint64_t *out, size_t from,
                         size_t to) {
  if (from >= to)
    return;
  /* Find the segment and offset of the first token of block `from`. */
  uint64_t skip = (uint64_t)from * block_size;
  size_t seg = 0;
  while (seg < nsegs && skip >= segs[seg].len) {
    skip -= segs[seg].len;
    seg++;
  }
  uint64_t h = from ? out[from - 1] : 0;
  uint64_t in_seg = skip; /* position inside segs[seg] */
  uint32_t fill = 0;      /* tokens of the current block seen */
  uint64_t run_stream = 0, run_pos = 0, run_len = 0;
  size_t b = from;
  while (b < to) {
    while (in_seg == segs[seg].len) {
      seg++;
      in_seg = 0;
    }
    uint64_t take = segs[seg].len - in_seg;
    if (take > block_size - fill)
      take = block_size - fill;
    uint64_t pos = segs[seg].offset + in_seg;
    if (run_len && run_stream == segs[seg].stream && run_pos + run_len == pos) {
      run_len += take; /* the same stream goes on across segments */
    } else {
      if (run_len)
        h = hash_run(run_stream, run_pos, run_len, h);
      run_stream = segs[seg].stream;
      run_pos = pos;
      run_len = take;
    }
    fill += (uint32_t)take;
    in_seg += take;
    if (fill == block_size) {
      h = hash_run(run_stream, run_pos, run_len, h);
      out[b++] = h;
      run_len = 0;
      fill = 0;
    }
  }
}

size_t workload_hash_segments(const workload_segment_t *segs, size_t nsegs,
                              uint32_t block_size, uint64_t *out, size_t cap) {
  if (block_size == 0 || block_size > WORKLOAD_BLOCK_SIZE_MAX)
    return 0;
  uint64_t total = 0;
  for (size_t s = 0; s < nsegs; s++)
    total += segs[s].len;
  size_t blocks = (size_t)(total / block_size);
  workload_hash_range(segs, nsegs, block_size, out, 0,
                      blocks < cap ? blocks : cap);
  return blocks;
}

uint64_t workload_stream_id(uint64_t seed, uint64_t key) {
  return mix64(seed ^ mix64(key + 0x7e57ab1e));
}

/* --- options --- */

void workload_opts_default(workload_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->seed = 1;
  o->rate = 10.0;
  o->speedup = 1.0;
  o->copies = 1.0;
  o->class_mix[INFS_CLASS_INTERACTIVE] = 0.6;
  o->class_mix[INFS_CLASS_AGENT] = 0.3;
  o->class_mix[INFS_CLASS_BATCH] = 0.1;
  /* Lognormals through the Azure 2023 code trace's medians, with sigma from
   * mean/median = exp(sigma^2 / 2): prompt 1,469 and 2,048 give 0.815, output
   * 13 and 28 give 1.239 (docs/reference-numbers.md). */
  o->prompt =
      (workload_dist_t){WORKLOAD_DIST_LOGNORMAL, 1469.0, 0.815, 1, 32768};
  o->output = (workload_dist_t){WORKLOAD_DIST_LOGNORMAL, 13.0, 1.239, 1, 4096};
  o->block_size = 64;
  slo_defaults(o->slo);
}

static int check_dist(const char *what, const workload_dist_t *d, char *err,
                      size_t errlen) {
  if (!(d->median >= 1.0) || !isfinite(d->median))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "%s: median must be at least 1", what);
  if (d->kind == WORKLOAD_DIST_LOGNORMAL &&
      (!(d->sigma >= 0.0) || d->sigma > 10.0))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "%s: sigma must be in [0, 10]", what);
  if (d->min < 1 || d->min > d->max)
    return workload_errf(INFS_ECONFIG, err, errlen, "%s: need 1 <= min <= max",
                         what);
  return 0;
}

int workload_base_init(workload_t *w, const workload_ops_t *ops,
                       const workload_opts_t *opts, char *err, size_t errlen) {
  int rc;
  w->ops = ops;
  w->opts = *opts;
  if (opts->block_size < 1 || opts->block_size > WORKLOAD_BLOCK_SIZE_MAX)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "block size must be in [1, %d]",
                         WORKLOAD_BLOCK_SIZE_MAX);
  if (!(opts->shared_prefix >= 0.0 && opts->shared_prefix <= 1.0))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "shared prefix must be a fraction in [0, 1]");
  if (!(opts->duration_s >= 0.0) || !isfinite(opts->duration_s))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "duration must be >= 0 seconds");
  if ((rc = check_dist("prompt", &opts->prompt, err, errlen)) ||
      (rc = check_dist("output", &opts->output, err, errlen)))
    return rc;
  double total = 0;
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    if (!(opts->class_mix[c] >= 0.0) || !isfinite(opts->class_mix[c]))
      return workload_errf(INFS_ECONFIG, err, errlen,
                           "class mix weights must be >= 0");
    total += opts->class_mix[c];
  }
  if (!(total > 0.0))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "class mix needs a positive weight");
  double cum = 0;
  for (int c = 0; c < INFS_CLASS_COUNT; c++) {
    cum += opts->class_mix[c] / total;
    w->mix_cum[c] = cum;
  }
  w->mix_cum[INFS_CLASS_COUNT - 1] = 1.0;
  workload_rng_seed(&w->rng_class, opts->seed, STREAM_CLASS);
  workload_rng_seed(&w->rng_size, opts->seed, STREAM_SIZE);
  workload_rng_seed(&w->rng_arrival, opts->seed, STREAM_ARRIVAL);
  return 0;
}

infs_class_t workload_draw_class(workload_t *w) {
  double u = workload_rng_uniform(&w->rng_class);
  for (int c = 0; c < INFS_CLASS_COUNT; c++)
    if (u < w->mix_cum[c] && w->opts.class_mix[c] > 0.0)
      return (infs_class_t)c;
  /* u landed in the rounding gap above the last cumulative weight. */
  for (int c = INFS_CLASS_COUNT - 1; c > 0; c--)
    if (w->opts.class_mix[c] > 0.0)
      return (infs_class_t)c;
  return (infs_class_t)0;
}

void workload_set_blocks(workload_t *w, workload_req_t *req,
                         const workload_segment_t *segs, size_t nsegs) {
  uint64_t total = 0;
  for (size_t s = 0; s < nsegs; s++)
    total += segs[s].len;
  size_t need = (size_t)(total / w->opts.block_size);
  if (need > w->blocks_cap) {
    size_t cap = w->blocks_cap ? w->blocks_cap : 64;
    while (cap < need)
      cap *= 2;
    uint64_t *p = xrealloc(w->blocks, cap * sizeof *p);
    w->blocks = p;
    w->blocks_cap = cap;
  }
  req->n_blocks = workload_hash_segments(segs, nsegs, w->opts.block_size,
                                         w->blocks, w->blocks_cap);
  req->blocks = w->blocks;
}

void workload_begin_request(workload_t *w, workload_req_t *req,
                            infs_time_t arrival, infs_class_t cls,
                            uint32_t prompt_tokens, uint32_t max_tokens) {
  req->id = ++w->issued;
  req->arrival = arrival;
  req->cls = cls;
  req->prompt_tokens = prompt_tokens;
  req->max_tokens = max_tokens;
  req->slo = w->opts.slo[cls];
  req->session[0] = '\0';
}

void workload_fill_request(workload_t *w, workload_req_t *req,
                           infs_time_t arrival, infs_class_t cls,
                           uint32_t prompt_tokens, uint32_t max_tokens) {
  workload_begin_request(w, req, arrival, cls, prompt_tokens, max_tokens);
  uint32_t bs = w->opts.block_size;
  uint32_t shared = (uint32_t)(prompt_tokens * w->opts.shared_prefix / bs) * bs;
  workload_segment_t segs[2] = {
      {workload_stream_id(w->opts.seed, SHARED_PREFIX_KEY), 0, shared},
      {workload_stream_id(w->opts.seed, req->id), 0, prompt_tokens - shared},
  };
  workload_set_blocks(w, req, segs, 2);
}

/* --- the driver interface --- */

static bool capped(const workload_t *w) {
  return w->opts.max_requests && w->issued >= w->opts.max_requests;
}

const char *workload_name(const workload_t *w) {
  return w->ops->name;
}

infs_time_t workload_next_time(const workload_t *w) {
  if (capped(w))
    return INFS_TIME_NEVER;
  return w->ops->next_time(w);
}

int workload_pop(workload_t *w, infs_time_t now, workload_req_t *req) {
  infs_time_t t = workload_next_time(w);
  if (t == INFS_TIME_NEVER || t > now)
    return -EAGAIN;
  memset(req, 0, sizeof *req);
  return w->ops->pop(w, now, req);
}

void workload_on_done(workload_t *w, uint64_t id, infs_time_t now, bool ok,
                      uint32_t generated_tokens) {
  if (w->ops->on_done)
    w->ops->on_done(w, id, now, ok, generated_tokens);
}

bool workload_finished(const workload_t *w) {
  return capped(w) || w->ops->finished(w);
}

uint64_t workload_issued(const workload_t *w) {
  return w->issued;
}

infs_time_t workload_end_time(const workload_t *w) {
  if (!(w->opts.duration_s > 0.0))
    return INFS_TIME_NEVER;
  return (infs_time_t)llround(w->opts.duration_s * 1e6);
}

void workload_destroy(workload_t **w) {
  if (w && *w) {
    workload_t *self = *w;
    free(self->blocks);
    self->ops->destroy(self); /* frees self too */
    *w = NULL;
  }
}

int workload_new(const char *spec, const workload_opts_t *opts,
                 workload_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (strcmp(spec, "poisson") == 0)
    return workload_poisson_new(opts, out, err, errlen);
  if (strncmp(spec, "trace:", 6) == 0) {
    if (spec[6] == '\0')
      return workload_errf(INFS_ECONFIG, err, errlen,
                           "trace: needs a file, as in trace:FILE");
    if (workload_trace_is_mooncake(spec + 6))
      return workload_mooncake_new(spec + 6, opts, out, err, errlen);
    return workload_trace_new(spec + 6, opts, out, err, errlen);
  }
  if (strncmp(spec, "mooncake:", 9) == 0) {
    if (spec[9] == '\0')
      return workload_errf(INFS_ECONFIG, err, errlen,
                           "mooncake: needs a file, as in mooncake:FILE");
    return workload_mooncake_new(spec + 9, opts, out, err, errlen);
  }
  if (strcmp(spec, "codex") == 0 || strncmp(spec, "codex:", 6) == 0) {
    workload_codex_config_t cfg;
    workload_codex_config_default(&cfg);
    if (spec[5] == ':') {
      if (spec[6] == '\0')
        return workload_errf(INFS_ECONFIG, err, errlen,
                             "codex: needs a file, as in codex:FILE");
      int rc = workload_codex_config_load(&cfg, spec + 6, err, errlen);
      if (rc)
        return rc;
    }
    return workload_codex_new(opts, &cfg, out, err, errlen);
  }
  return workload_errf(INFS_EUNKNOWN, err, errlen,
                       "unknown workload '%s' (poisson, trace:FILE, "
                       "mooncake:FILE, codex, codex:FILE)",
                       spec);
}

/* --- flag values --- */

static int parse_double(const char *s, const char **end, double *out) {
  char *e;
  errno = 0;
  double v = strtod(s, &e);
  if (e == s || errno || !isfinite(v))
    return -1;
  *end = e;
  *out = v;
  return 0;
}

static int parse_u32(const char *s, const char **end, uint32_t *out) {
  char *e;
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &e, 10);
  if (e == s || errno || v > UINT32_MAX)
    return -1;
  *end = e;
  *out = (uint32_t)v;
  return 0;
}

/* Splits "name=value" items separated by commas; calls item for each with
 * the name copied out. */
typedef int (*item_cb)(const char *name, const char *value, void *arg,
                       char *err, size_t errlen);

static int each_item(const char *s, item_cb cb, void *arg, char *err,
                     size_t errlen) {
  char name[32];
  const char *p = s;
  if (*p == '\0')
    return workload_errf(INFS_ECONFIG, err, errlen, "empty list");
  while (*p) {
    const char *eq = strchr(p, '=');
    const char *comma = strchr(p, ',');
    if (!comma)
      comma = p + strlen(p);
    if (!eq || eq > comma || eq == p || (size_t)(eq - p) >= sizeof name)
      return workload_errf(INFS_ECONFIG, err, errlen,
                           "expected NAME=VALUE in '%.*s'", (int)(comma - p),
                           p);
    memcpy(name, p, (size_t)(eq - p));
    name[eq - p] = '\0';
    char value[64];
    size_t vlen = (size_t)(comma - eq - 1);
    if (vlen == 0 || vlen >= sizeof value)
      return workload_errf(INFS_ECONFIG, err, errlen, "bad value for '%s'",
                           name);
    memcpy(value, eq + 1, vlen);
    value[vlen] = '\0';
    int rc = cb(name, value, arg, err, errlen);
    if (rc)
      return rc;
    p = *comma ? comma + 1 : comma;
  }
  return 0;
}

static int class_of(const char *name, infs_class_t *c, char *err,
                    size_t errlen) {
  if (infs_class_parse(name, c))
    return workload_errf(INFS_EUNKNOWN, err, errlen,
                         "unknown class '%s' (interactive, agent, batch)",
                         name);
  return 0;
}

static int mix_item(const char *name, const char *value, void *arg, char *err,
                    size_t errlen) {
  double *mix = arg;
  infs_class_t c;
  int rc = class_of(name, &c, err, errlen);
  if (rc)
    return rc;
  const char *end;
  double v;
  if (parse_double(value, &end, &v) || *end || v < 0)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "weight of %s: expected a number >= 0, got '%s'", name,
                         value);
  mix[c] = v;
  return 0;
}

int workload_parse_class_mix(const char *s, double mix[INFS_CLASS_COUNT],
                             char *err, size_t errlen) {
  double m[INFS_CLASS_COUNT] = {0};
  int rc = each_item(s, mix_item, m, err, errlen);
  if (rc)
    return rc;
  double total = 0;
  for (int c = 0; c < INFS_CLASS_COUNT; c++)
    total += m[c];
  if (!(total > 0))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "class mix needs a positive weight");
  memcpy(mix, m, sizeof m);
  return 0;
}

int workload_parse_dist(const char *s, workload_dist_t *d, char *err,
                        size_t errlen) {
  workload_dist_t r = {WORKLOAD_DIST_FIXED, 0, 0, 1, 1u << 20};
  const char *p = s, *end;
  if (strncmp(p, "fixed:", 6) == 0)
    p += 6;
  if (strncmp(p, "lognormal:", 10) == 0) {
    p += 10;
    r.kind = WORKLOAD_DIST_LOGNORMAL;
    if (parse_double(p, &end, &r.median) || *end != ':' ||
        parse_double(end + 1, &end, &r.sigma))
      goto bad;
    if (*end == ':') {
      if (parse_u32(end + 1, &end, &r.min) || *end != ':' ||
          parse_u32(end + 1, &end, &r.max))
        goto bad;
    }
    if (*end)
      goto bad;
  } else {
    uint32_t v;
    if (parse_u32(p, &end, &v) || *end || v < 1)
      goto bad;
    r.median = v;
    r.min = r.max = v;
  }
  int rc = check_dist(s, &r, err, errlen);
  if (rc)
    return rc;
  *d = r;
  return 0;
bad:
  return workload_errf(INFS_ECONFIG, err, errlen,
                       "expected N, fixed:N or "
                       "lognormal:MEDIAN:SIGMA[:MIN:MAX], got '%s'",
                       s);
}

int workload_parse_burst(const char *s, workload_burst_t *b, char *err,
                         size_t errlen) {
  workload_burst_t r;
  const char *end;
  if (parse_double(s, &end, &r.at_s) || *end != ':' ||
      parse_double(end + 1, &end, &r.duration_s) || *end != ':' ||
      parse_double(end + 1, &end, &r.factor) || *end)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "expected AT:DURATION:FACTOR (seconds, seconds, "
                         "rate multiplier), got '%s'",
                         s);
  if (r.at_s < 0 || !(r.duration_s > 0) || !(r.factor > 0))
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "burst '%s': need AT >= 0, DURATION > 0 and "
                         "FACTOR > 0",
                         s);
  *b = r;
  return 0;
}
