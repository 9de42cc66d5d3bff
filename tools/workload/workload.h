/* Workload generators: seeded, reproducible streams of request specs in
 * virtual time, shared by infsched-loadgen (real time) and infsched-sim
 * (virtual time). Pure: no clock, no I/O after construction.
 *
 * A driver asks workload_next_time for the next arrival, calls workload_pop
 * for every request due at `now`, and reports each terminal answer with
 * workload_on_done. Open-loop generators (poisson, trace) ignore the feedback;
 * closed-loop ones (agent sessions) schedule the next turn from it, so their
 * next time may be NEVER while they wait and move after an answer. */
#ifndef INFSCHED_WORKLOAD_H
#define INFSCHED_WORKLOAD_H

#include "infsched/types.h"
#include "slo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORKLOAD_SESSION_MAX 64
#define WORKLOAD_BLOCK_SIZE_MAX 4096
#define WORKLOAD_BURST_MAX 16
#define WORKLOAD_COPIES_MAX 4096
/* Tokens per block id in a Mooncake trace (FAST25-release/README.md). */
#define WORKLOAD_MOONCAKE_BLOCK 512

/* One request as it should be submitted. */
typedef struct workload_req {
  uint64_t id;         /* unique within the workload, from 1 in pop order */
  infs_time_t arrival; /* intended send time, us since the workload start */
  infs_class_t cls;
  uint32_t prompt_tokens;
  uint32_t max_tokens;
  slo_t slo; /* targets sent with the request */
  char session[WORKLOAD_SESSION_MAX]; /* "" outside sessions */
  const uint64_t *blocks; /* chained block hashes; owned by the workload and
                             valid until its next pop */
  size_t n_blocks;
} workload_req_t;

typedef enum workload_dist_kind {
  WORKLOAD_DIST_FIXED,
  WORKLOAD_DIST_LOGNORMAL
} workload_dist_kind_t;

/* A token-count distribution. Lognormal draws are exp(N(ln median, sigma)),
 * rounded and clamped to [min, max]. */
typedef struct workload_dist {
  workload_dist_kind_t kind;
  double median; /* FIXED: the value itself */
  double sigma;  /* LOGNORMAL: standard deviation of ln(x) */
  uint32_t min;
  uint32_t max;
} workload_dist_t;

/* A burst: from at_s for duration_s seconds the Poisson rate is multiplied by
 * factor (below 1 for a lull). Overlapping bursts multiply. */
typedef struct workload_burst {
  double at_s;
  double duration_s;
  double factor;
} workload_burst_t;

typedef struct workload_opts {
  uint64_t seed;
  double rate;       /* poisson: arrivals per second (at the start) */
  double rate_end;   /* poisson: rate at the end of a linear ramp; 0: flat */
  double duration_s; /* no arrivals at or after this time; 0: no limit */
  double speedup;    /* trace: the trace's gaps are divided by this */
  double copies;     /* trace: time-shifted copies overlaid (workload_trace.c;
                        1: the trace as is) */
  uint64_t max_requests;              /* 0: no limit */
  double class_mix[INFS_CLASS_COUNT]; /* relative weights, any scale */
  workload_dist_t prompt;             /* poisson sizes */
  workload_dist_t output;
  uint32_t block_size;  /* tokens per hashed prompt block */
  double shared_prefix; /* fraction of each prompt (whole blocks) taken from
                           one prefix common to every request */
  slo_t slo[INFS_CLASS_COUNT]; /* targets by class */
  workload_burst_t bursts[WORKLOAD_BURST_MAX]; /* poisson only */
  size_t n_bursts;
} workload_opts_t;

/* Defaults: seed 1, rate 10/s, sizes fitted to the Azure 2023 code trace
 * (prompt median 1,469, sigma 0.815; output median 13, sigma 1.239), mix
 * interactive 0.6 / agent 0.3 / batch 0.1, blocks of 16 tokens, no shared
 * prefix, SLOs 450/40 ms, 2000/25 ms and 30000/200 ms (TTFT/TPOT). */
void workload_opts_default(workload_opts_t *o);

typedef struct workload workload_t;

/* Builds a generator from a spec: "poisson", "trace:FILE" (an Azure CSV, or
 * a Mooncake trace when the file starts with '{'), "mooncake:FILE", "codex"
 * (the built-in defaults of workload_codex_config_default) or "codex:FILE"
 * (a workload file, see workload_codex_config_load). On failure returns a
 * negative code and writes a one-line reason (with FILE:LINE for trace rows
 * and workload files) into err. */
int workload_new(const char *spec, const workload_opts_t *opts,
                 workload_t **out, char *err, size_t errlen);
int workload_poisson_new(const workload_opts_t *opts, workload_t **out,
                         char *err, size_t errlen);
/* Loads the whole CSV (TIMESTAMP,ContextTokens,GeneratedTokens; header
 * optional, columns found by name when present). Rows are replayed in time
 * order, relative to the earliest, gaps divided by opts->speedup. */
int workload_trace_new(const char *path, const workload_opts_t *opts,
                       workload_t **out, char *err, size_t errlen);
/* Loads a Mooncake trace (JSON lines of timestamp in ms, input_length,
 * output_length, hash_ids of 512-token blocks; optional session_id and
 * class). Rows are replayed at their timestamps, gaps divided by
 * opts->speedup. Each id stands for 512 tokens of a stream of its own
 * (the last id for what remains of input_length), hashed into the
 * workload's blocks as any synthetic prompt is: two requests whose lists
 * share their first N ids share their first N * 512 / block_size blocks and
 * no more, whatever the seed or machine. Requests without a class take one
 * from opts->class_mix. */
int workload_mooncake_new(const char *path, const workload_opts_t *opts,
                          workload_t **out, char *err, size_t errlen);
/* True when the file's first non-blank byte is '{': a Mooncake trace. */
bool workload_trace_is_mooncake(const char *path);
void workload_destroy(workload_t **w);

const char *workload_name(const workload_t *w);

/* Virtual time (us since start) of the next arrival, or INFS_TIME_NEVER when
 * none is scheduled now. */
infs_time_t workload_next_time(const workload_t *w);

/* Fills req with the next request due at or before now. Returns 0, or
 * -EAGAIN when none is due. req->blocks is valid until the next pop. */
int workload_pop(workload_t *w, infs_time_t now, workload_req_t *req);

/* Feedback: request id got its terminal answer at now; ok is false for
 * failures, rejections and lost requests. */
void workload_on_done(workload_t *w, uint64_t id, infs_time_t now, bool ok,
                      uint32_t generated_tokens);

/* True when the generator will never produce another request, whatever
 * feedback it gets. */
bool workload_finished(const workload_t *w);

/* Requests popped so far. */
uint64_t workload_issued(const workload_t *w);

/* Time (us since start) from which no request arrives, from
 * opts.duration_s; INFS_TIME_NEVER without a duration. A closed-loop
 * generator may still wait for answers then: a driver stops sending there
 * and drains. */
infs_time_t workload_end_time(const workload_t *w);

/* --- codex: agent sessions ---
 * Every session's prompt is a system prefix common to all sessions, then its
 * repository context, then its conversation, which grows by the user's
 * message, each answer and each tool output. Each user turn is one of:
 *   agent        `steps` calls, each waiting for the previous answer plus a
 *                tool run (tool_ms) before it is sent (closed loop);
 *   interactive  one short question on the context, short answer;
 *   batch        a review/refactor job over the context: an instruction
 *                branched off the conversation, long output; the session
 *                does not wait for it.
 * Turns are separated by the human's think time (think_ms). When a prompt
 * would not fit in max_context the conversation is compacted to
 * summary_tokens, as coding agents do. Sizes are token counts, times are
 * milliseconds; every distribution is a workload_dist_t. */
typedef struct workload_codex_config {
  uint32_t sessions;     /* fixed population: a session that ends is replaced
                            by a new one after a think time */
  double session_rate;   /* extra one-off sessions arriving per second, open
                            loop (Poisson); 0: none */
  double start_spread_s; /* the population starts uniformly over this */
  double mix[INFS_CLASS_COUNT];  /* kind of each user turn, by class */
  workload_dist_t turns;         /* user turns per session */
  workload_dist_t steps;         /* model calls per agent turn */
  uint32_t system_tokens;        /* prefix shared by every session */
  workload_dist_t repo_tokens;   /* repository context, per session */
  workload_dist_t user_tokens;   /* the user's message opening an agent turn */
  workload_dist_t tool_tokens;   /* tool output appended before each step */
  workload_dist_t answer_tokens; /* output of an agent step */
  workload_dist_t question_tokens;   /* an interactive question */
  workload_dist_t completion_tokens; /* its answer */
  workload_dist_t job_tokens;        /* a batch job's instruction */
  workload_dist_t job_output_tokens; /* a batch job's output */
  workload_dist_t tool_ms;           /* answer to next step: the tool runs */
  workload_dist_t think_ms;          /* end of a turn to the next: the human */
  uint32_t max_context;              /* prompt + output never exceed this */
  uint32_t summary_tokens;           /* conversation after a compaction */
} workload_codex_config_t;

/* The defaults (configs/workloads/codex.yaml holds the same values, with
 * their sources). */
void workload_codex_config_default(workload_codex_config_t *c);
/* Sets one knob by its workload-file name ("sessions", "tool_ms", ...) from
 * its text form: a number, a distribution as in workload_parse_dist, or for
 * "mix" a class list as in workload_parse_class_mix. Returns 0, or
 * INFS_EUNKNOWN / INFS_ECONFIG with the reason in err. */
int workload_codex_config_set(workload_codex_config_t *c, const char *key,
                              const char *value, char *err, size_t errlen);
/* Checks the knobs against each other. Returns 0, or INFS_ECONFIG with the
 * reason in err and the name of the knob at fault in *key (may be NULL). */
int workload_codex_config_check(const workload_codex_config_t *c,
                                const char **key, char *err, size_t errlen);
/* Applies a YAML workload file (a mapping of knob names to values) over c.
 * Errors read "FILE:LINE: key 'K': why". Returns 0 or a negative code. */
int workload_codex_config_load(workload_codex_config_t *c, const char *path,
                               char *err, size_t errlen);
/* Builds the generator; cfg is copied. Needs opts->duration_s or
 * opts->max_requests. Block size, seed, duration, request cap and SLOs come
 * from opts; its class mix and sizes are not used. */
int workload_codex_new(const workload_opts_t *opts,
                       const workload_codex_config_t *cfg, workload_t **out,
                       char *err, size_t errlen);

/* --- block hashes ---
 * Block i's hash is XXH3_64bits over its block_size tokens (as uint32
 * little-endian words) seeded with block i-1's hash (0 for the first), so
 * equal prefixes give equal hashes and a block's hash names its whole
 * prefix. Only whole blocks are hashed. */

/* Hashes real token ids; writes at most cap hashes and returns how many
 * whole blocks the tokens hold. */
size_t workload_hash_tokens(const uint32_t *tokens, size_t n,
                            uint32_t block_size, uint64_t *out, size_t cap);

/* A run of synthetic tokens: tokens [offset, offset+len) of stream `stream`.
 * The same stream and position always stand for the same token. */
typedef struct workload_segment {
  uint64_t stream;
  uint64_t offset;
  uint32_t len;
} workload_segment_t;

/* Block hashes of the concatenation of the segments, chained as above.
 * Synthetic tokens have no ids, so a block is hashed from what it holds: the
 * (stream, offset, length) of each maximal run of one stream in it, in
 * order. Equal contents give equal hashes however they are cut into
 * segments, and the cost is per block, not per token. Writes at most cap
 * hashes and returns how many whole blocks the segments hold. */
size_t workload_hash_segments(const workload_segment_t *segs, size_t nsegs,
                              uint32_t block_size, uint64_t *out, size_t cap);

/* --- recording a run as a Mooncake trace ---
 * A recorder keeps the requests a driver sent, in memory, and writes them
 * as a Mooncake trace that workload_mooncake_new replays to the same
 * arrivals (to the millisecond), sizes, classes, sessions and shared
 * prefixes. Ids are numbered from 0 in order of first use; a 512-token
 * block's id stands for the hash of its last whole block, which names the
 * whole prefix, so equal prefixes get equal ids. A last block holding no
 * whole block of block_size tokens gets an id of its own. */
typedef struct workload_recorder workload_recorder_t;

/* block_size must divide 512. Returns 0, or INFS_ECONFIG with the reason in
 * err. */
int workload_recorder_new(uint32_t block_size, workload_recorder_t **out,
                          char *err, size_t errlen);
void workload_recorder_add(workload_recorder_t *rec,
                           const workload_req_t *req);
/* Requests added so far. */
uint64_t workload_recorder_count(const workload_recorder_t *rec);
/* Writes the trace to path. Returns 0 or a negative code with the reason in
 * err. */
int workload_recorder_write(const workload_recorder_t *rec, const char *path,
                            char *err, size_t errlen);
void workload_recorder_destroy(workload_recorder_t **rec);

/* --- seeded random numbers (xoshiro256**, seeded through splitmix64) --- */
typedef struct workload_rng {
  uint64_t s[4];
} workload_rng_t;

/* Independent streams from one seed: the same (seed, stream) always gives the
 * same sequence. */
void workload_rng_seed(workload_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t workload_rng_next(workload_rng_t *r);
/* Uniform in [0, 1). */
double workload_rng_uniform(workload_rng_t *r);
/* Exponential with the given mean. */
double workload_rng_exp(workload_rng_t *r, double mean);
/* Standard normal. */
double workload_rng_normal(workload_rng_t *r);
uint32_t workload_dist_sample(const workload_dist_t *d, workload_rng_t *r);

/* --- flag values shared by the programs that take workloads --- */

/* "interactive=0.6,agent=0.3,batch=0.1" (missing classes get 0). */
int workload_parse_class_mix(const char *s, double mix[INFS_CLASS_COUNT],
                             char *err, size_t errlen);
/* "N" or "fixed:N", or "lognormal:MEDIAN:SIGMA[:MIN:MAX]". */
int workload_parse_dist(const char *s, workload_dist_t *d, char *err,
                        size_t errlen);
/* "AT:DURATION:FACTOR" in seconds, e.g. "30:10:4": four times the rate from
 * 30 s to 40 s. */
int workload_parse_burst(const char *s, workload_burst_t *b, char *err,
                         size_t errlen);

#endif
