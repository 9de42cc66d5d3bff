/* What a generator file (workload_<name>.c) builds on: the base struct every
 * generator embeds first, its operations, and the helpers for the parts all
 * generators share (class draws, SLO targets, prompt block hashes). Not for
 * drivers: they use workload.h. */
#ifndef INFSCHED_WORKLOAD_IMPL_H
#define INFSCHED_WORKLOAD_IMPL_H

#include "workload.h"

typedef struct workload_ops {
  const char *name;
  infs_time_t (*next_time)(const workload_t *w);
  /* Called only when next_time <= now; fills req (zeroed by the caller)
   * and returns 0, or -EAGAIN. */
  int (*pop)(workload_t *w, infs_time_t now, workload_req_t *req);
  void (*on_done)(workload_t *w, uint64_t id, infs_time_t now, bool ok,
                  uint32_t generated_tokens); /* may be NULL */
  bool (*finished)(const workload_t *w);
  /* Frees the generator's fields and the struct itself; the base's block
   * buffer is already gone. */
  void (*destroy)(workload_t *w);
} workload_ops_t;

struct workload {
  const workload_ops_t *ops;
  workload_opts_t opts;
  double mix_cum[INFS_CLASS_COUNT]; /* cumulative class weights, last is 1 */
  workload_rng_t rng_class;         /* one stream per purpose, so that */
  workload_rng_t rng_size;          /* changing the rate or the mix does */
  workload_rng_t rng_arrival;       /* not change the sizes drawn */
  uint64_t issued;
  uint64_t *blocks; /* hashes of the request last popped */
  size_t blocks_cap;
};

/* Sets up the base from validated opts. Returns 0 or INFS_ECONFIG with err
 * written. */
int workload_base_init(workload_t *w, const workload_ops_t *ops,
                       const workload_opts_t *opts, char *err, size_t errlen);
/* Draws a class from the mix. */
infs_class_t workload_draw_class(workload_t *w);
/* Fills everything but the block hashes: next id, arrival, class, sizes and
 * the class's SLO targets; no session. */
void workload_begin_request(workload_t *w, workload_req_t *req,
                            infs_time_t arrival, infs_class_t cls,
                            uint32_t prompt_tokens, uint32_t max_tokens);
/* Completes a request: next id, class SLOs, and block hashes for a prompt of
 * prompt_tokens whose first opts.shared_prefix (whole blocks) come from the
 * prefix common to all requests and the rest from a stream of its own. */
void workload_fill_request(workload_t *w, workload_req_t *req,
                           infs_time_t arrival, infs_class_t cls,
                           uint32_t prompt_tokens, uint32_t max_tokens);
/* Hashes segments into the base's block buffer and points req at it. */
void workload_set_blocks(workload_t *w, workload_req_t *req,
                         const workload_segment_t *segs, size_t nsegs);
/* Hashes blocks [from, to) of the concatenation of the segments into
 * out[from..to), chaining on out[from - 1] (0 when from is 0), so a prompt
 * that grows only needs its new blocks hashed. The segments must hold at
 * least to * block_size tokens. */
void workload_hash_range(const workload_segment_t *segs, size_t nsegs,
                         uint32_t block_size, uint64_t *out, size_t from,
                         size_t to);
/* A stream id for synthetic tokens, distinct per (seed, key). */
uint64_t workload_stream_id(uint64_t seed, uint64_t key);

/* Calls line for each line of path that is not blank, with its number
 * (from 1) and its text (NUL-terminated, newline kept), until it returns
 * non-zero. Returns 0, the callback's value, or a negative code with err
 * written ("FILE: why", "FILE:LINE: NUL byte in line"). Trace readers load
 * whole files this way, so that a bad line fails before any traffic. */
typedef int (*workload_line_fn)(void *arg, unsigned lineno, char *line,
                                size_t len, char *err, size_t errlen);
int workload_read_lines(const char *path, workload_line_fn line, void *arg,
                        char *err, size_t errlen);

/* More load from one trace (opts->copies = c, see workload_trace.c):
 * replaces *rows (n rows of size bytes, in time order, each with its
 * arrival as an int64_t of microseconds at byte t_off) by floor(c) copies,
 * the first as it is and each other shifted by its own random offset within
 * the trace's period (its span plus one mean gap) and wrapped around, plus
 * a copy keeping each row with probability c - floor(c). When copy_off is
 * not SIZE_MAX, each row's uint32_t at copy_off gets its copy's number.
 * The rows come out sorted by cmp. One copy (c = 1) leaves them as they
 * are. Returns 0 or -ENOMEM (the rows are then left as they were). */
int workload_overlay(const workload_opts_t *opts, void **rows, size_t *n,
                     size_t size, size_t t_off, size_t copy_off,
                     int (*cmp)(const void *, const void *));

/* Checks the options every trace replay takes (speed-up, copies). Returns 0
 * or INFS_ECONFIG with why in err. */
int workload_check_replay(const workload_opts_t *opts, char *err,
                          size_t errlen);

/* snprintf into err when err is not NULL; returns code. */
int workload_errf(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
