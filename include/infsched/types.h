/* Types shared by the scheduler, workers, tools and backends. */
#ifndef INFSCHED_TYPES_H
#define INFSCHED_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* All times inside infsched are microseconds on one monotonic clock. */
typedef uint64_t infs_time_t;
#define INFS_TIME_NEVER UINT64_MAX
#define INFS_US_PER_MS 1000ull
#define INFS_US_PER_S 1000000ull

/* Longest name (profile, worker id) with its NUL. */
#define INFS_NAME_MAX 64

typedef enum infs_class {
  INFS_CLASS_INTERACTIVE = 0,
  INFS_CLASS_AGENT = 1,
  INFS_CLASS_BATCH = 2,
  INFS_CLASS_COUNT = 3
} infs_class_t;

typedef enum infs_worker_class {
  INFS_WORKER_GPU = 0,
  INFS_WORKER_SRAM = 1,
  INFS_WORKER_TPU = 2,
  INFS_WORKER_CLASS_COUNT = 3
} infs_worker_class_t;

/* What a worker runs (docs/disaggregation.md): whole requests and either
 * side of a split; only prefill-phase dispatches; or decode-phase
 * dispatches and whole requests, never the prefill side of a split. */
typedef enum infs_role {
  INFS_ROLE_BOTH = 0,
  INFS_ROLE_PREFILL = 1,
  INFS_ROLE_DECODE = 2,
  INFS_ROLE_COUNT = 3
} infs_role_t;

/* The part of a request one dispatch runs: all of it, only the prompt
 * (streaming the first token, then holding the KV for a decode worker),
 * or the decode after pulling a prefilled KV. */
typedef enum infs_phase {
  INFS_PHASE_FULL = 0,
  INFS_PHASE_PREFILL = 1,
  INFS_PHASE_DECODE = 2
} infs_phase_t;

/* Where a prefilled request's KV is and what moving it costs: the handle
 * a PREFILL-phase dispatch answers with, given to the DECODE-phase one. */
typedef struct infs_kv_handle {
  char source[INFS_NAME_MAX]; /* P's worker id */
  uint64_t handle_id;         /* P's dispatch id of the prefill */
  uint32_t tokens;            /* prompt tokens whose KV P holds */
  uint64_t bytes;             /* KV bytes D must pull */
  double link_gbps;           /* the P->D link */
  double link_latency_us;
  bool overlap;               /* the pull overlaps P's prefill (layer-wise) */
  uint64_t prefill_us;        /* P's prefill time, for overlap */
  const char *params_json;    /* the backend's own handle (vLLM's
                                 kv_transfer_params), borrowed; may be NULL */
  size_t params_len;
} infs_kv_handle_t;

/* One request as the scheduler's core and workers' backends see it, with
 * its strings and block hashes borrowed from whoever decoded it. */
typedef struct infs_request {
  uint64_t id;        /* unique among its sender's open requests */
  const char *model;  /* "" for any model */
  const char *prompt; /* NUL-terminated; may be empty in simulations */
  size_t prompt_len;
  uint32_t prompt_tokens;
  uint32_t max_tokens;
  infs_class_t cls;
  uint32_t ttft_ms; /* latency targets (lib/slo.h); 0 before the scheduler
                       sets them */
  uint32_t ttft_ms_per_ktok; /* TTFT allowance per 1,000 uncached tokens */
  uint32_t tpot_ms;
  const char *session;
  const uint64_t *blocks; /* hashes of the prompt's token blocks */
  size_t n_blocks;
  /* What the client asked of the backend beyond the prompt, NULL or "" for
   * none: a chat request's messages array as JSON text (prompt then holds
   * them rendered as "role: content" lines), and the options the scheduler
   * does not act on (stop, logprobs, response_format, tools, ...) as a
   * JSON object text. A backend that cannot honour one refuses the request
   * with ERROR_BAD_REQUEST. */
  const char *messages;
  const char *options;
  unsigned has_temperature : 1, has_top_p : 1, has_seed : 1;
  double temperature;
  double top_p;
  int64_t seed;
  /* Of prompt_tokens, the tokens the client already has (a migration, or
   * the decode after a remote prefill), whose text ends prompt: a backend
   * that can continue a stream only from its own start (vLLM's decode
   * instance) needs to know what to leave out and skip. */
  uint32_t resumed;
  size_t resumed_len; /* bytes of that text */
  infs_phase_t phase;        /* FULL unless the request is split */
  const infs_kv_handle_t *kv;/* DECODE: the KV to pull; NULL otherwise */
} infs_request_t;

/* What a finished request used, as a backend reports it (backend.h).
 * Fields a backend cannot know stay 0. */
typedef struct infs_backend_usage {
  uint32_t prompt_tokens;
  uint32_t cached_tokens;   /* prompt tokens served from a prefix cache */
  uint32_t generated_tokens;
  infs_time_t queue_us;     /* waiting before its prefill started */
  infs_time_t ttft_us;      /* submit to first token */
  infs_time_t transfer_us;  /* DECODE phase: pulling the prefilled KV */
  double busy_s;            /* its share of accelerator busy time */
  double usd;               /* billed cost, for per-token priced upstreams */
} infs_backend_usage_t;

/* The backend's load, for heartbeats and routing. */
typedef struct infs_backend_load {
  uint32_t queued;
  uint32_t running;
  uint64_t kv_used;
  uint64_t kv_total;
  uint64_t prefill_backlog_tokens;
  double busy_s;            /* total busy time since start */
  uint64_t generated_tokens;/* total since start */
  int unhealthy;            /* nonzero: it cannot serve now (its upstream
                               failed a health check); 0: it can */
} infs_backend_load_t;

/* Names as used in configs, reports and on the command line. */
const char *infs_class_name(infs_class_t c);
int infs_class_parse(const char *name, infs_class_t *out);
const char *infs_worker_class_name(infs_worker_class_t c);
int infs_worker_class_parse(const char *name, infs_worker_class_t *out);
/* "both", "prefill", "decode"; parse returns 0 or INFS_ECONFIG. */
const char *infs_role_name(infs_role_t r);
int infs_role_parse(const char *s, infs_role_t *out);

#endif
