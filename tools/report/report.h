/* The run report shared by infsched-loadgen and infsched-sim: per-request
 * outcomes in, a table on stdout and the JSON of docs/architecture.md
 * ("Reports") out.
 * Pure: the caller measures, this module only counts and summarises.
 *
 * Definitions (also in the loadgen documentation):
 * - Latencies are over completed requests, from the intended send time.
 *   TPOT = (e2e - ttft) / (generated - 1), for requests with 2+ tokens.
 * - A request meets its SLO when it completed, TTFT <= its TTFT target and
 *   (with 2+ tokens) TPOT <= its TPOT target; a 0 target is not checked.
 *   The TTFT target is slo_targets' for the request's uncached prompt tokens
 *   (prompt - cached, as served). slo_attainment = requests meeting their
 *   SLO / requests sent, so failed, rejected and lost requests count against
 *   it. slo_missed counts the completed requests that missed, by the part
 *   they broke (ttft, tpot or both), by class and by worker class.
 * - Tokens are those of completed requests (prompt and generated).
 * - cost.usd_total is the pool's cost over the run (report_add_worker); when
 *   no pool figures were given, the sum of per-request costs. usd_per_mtok =
 *   usd_total / (prompt + generated tokens) * 1e6. By class, cost is the sum
 *   of the requests' marginal costs. */
#ifndef INFSCHED_REPORT_H
#define INFSCHED_REPORT_H

#include "infsched/types.h"
#include "hist.h"
#include "slo.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum report_status {
  REPORT_COMPLETED, /* Done */
  REPORT_FAILED,    /* Error below 100, or a local send failure */
  REPORT_REJECTED,  /* Error from 100: never run */
  REPORT_LOST       /* no terminal answer */
} report_status_t;

/* A completed request's time on the workers, by phase, and its cost by
 * phase (report_phases_from_done fills it from a Done). A request run whole
 * has no transfer and its cost is one worker's; a split one was prefilled
 * on one worker and decoded on another after its KV moved between them. */
typedef struct report_phases {
  bool known;           /* false: the answer carried no timings */
  bool split;           /* prefilled on prefill_worker_id, decoded elsewhere */
  infs_time_t queue;    /* us waiting on the (prefill) worker */
  infs_time_t prefill;  /* us of prefill, to the first token */
  infs_time_t transfer; /* split: us the KV move added before decoding */
  infs_time_t decode;   /* us from the first token (split: from the KV's
                           arrival) to the last */
  double prefill_cost_usd; /* split: the prefill worker's share of the
                              outcome's cost_usd (both halves' cost) */
  const char *prefill_worker_id; /* split: borrowed */
  const char *prefill_worker_class;
} report_phases_t;

/* One sent request's fate; borrowed for the call. */
typedef struct report_outcome {
  infs_class_t cls;
  report_status_t status;
  uint32_t prompt_tokens; /* completed: as served (Done usage) */
  uint32_t cached_tokens; /* of those, from the prefix cache */
  uint32_t generated_tokens;
  infs_time_t ttft;     /* us from intended send to first token */
  infs_time_t e2e;      /* us from intended send to Done */
  slo_t slo;            /* targets the request carried (lib/slo.h) */
  double cost_usd;       /* marginal cost reported with Done */
  const char *worker_id; /* NULL or "" when it never ran */
  const char *worker_class;
  const char *error;   /* failed/rejected: the error's code name */
  infs_time_t done_at; /* us from the start of the run to the terminal
                          answer, for throughput over time; 0: not known */
  report_phases_t phases; /* completed: where the worker time went */
} report_outcome_t;

/* The phases of a completed request from its Done (borrowing its
 * strings): a split request's from the fields the scheduler adds, a whole
 * one's from the worker's queue, TTFT and end-to-end times. */
struct Infsched__Done;
void report_phases_from_done(const struct Infsched__Done *d,
                             report_phases_t *out);

/* "completed", "failed", "rejected", "lost". */
const char *report_status_name(report_status_t s);

typedef struct report_requests {
  uint64_t sent;
  uint64_t completed;
  uint64_t failed;
  uint64_t rejected;
  uint64_t lost;
} report_requests_t;

typedef struct report report_t;

report_t *report_new(void);
void report_destroy(report_t **r);

/* Copies the label; NULL or "" reports "unknown". */
void report_set_policy(report_t *r, const char *policy);
/* Records one setting of the run ("seed", "workload", "pool", ...), shown
 * with the report and in its JSON's "settings"; both strings are copied and
 * a name set again is replaced. */
void report_set_setting(report_t *r, const char *name, const char *value);
/* Sets name to a count of each distinct item, in order of first
 * appearance: "2 gpu-h100, 1 sram-wse3". */
void report_set_count_setting(report_t *r, const char *name,
                              const char *const *items, size_t n);
/* The settings in the order first set; *names and *values are valid until
 * the next report_set_setting. */
size_t report_settings(const report_t *r, const char *const **names,
                       const char *const **values);
/* The SLO the first completed request of class cls carried (requests of a
 * class carry their class's unless a client set its own). Returns false
 * when none of the class completed. */
bool report_class_slo(const report_t *r, int cls, slo_t *out);
/* Length of the measured run, for throughput. */
void report_set_window(report_t *r, infs_time_t us);
void report_add(report_t *r, const report_outcome_t *o);
/* Pool-side figures for one worker over the run (deltas between the start
 * and the end); cost feeds usd_total, busy_s / up_s is its utilization.
 * Calling it again for the same id adds. */
void report_add_worker(report_t *r, const char *id, const char *cls,
                       double cost_usd, double busy_s, double up_s);
/* The role a worker registered with (infs_role_name: "both", "prefill",
 * "decode"), shown beside it; copied. */
void report_set_worker_role(report_t *r, const char *id, const char *role);

/* Request counts; cls < 0 for all classes. */
void report_requests(const report_t *r, int cls, report_requests_t *out);
/* SLO attainment as defined above; cls < 0 for all classes. */
double report_slo_attainment(const report_t *r, int cls);
/* Whether o met its SLO, as defined above. */
bool report_outcome_met(const report_outcome_t *o);

/* Completed requests and how they fared against their SLO. */
typedef struct report_slo_counts {
  uint64_t completed;
  uint64_t met;
  uint64_t missed[SLO_MISS_BOTH + 1]; /* by slo_miss_t; [SLO_MISS_NONE] 0 */
} report_slo_counts_t;

/* SLO counts of completed requests: cls < 0 for all classes; worker_class
 * NULL for every worker class, else one by name (zeros when none ran
 * there). */
void report_slo_counts(const report_t *r, int cls, const char *worker_class,
                       report_slo_counts_t *out);

/* --- over time (for the HTML page) --- */

/* The pool's state at one moment, e.g. from a Status poll. */
typedef struct report_sample {
  infs_time_t t;          /* us from the start of the run */
  uint32_t queued;        /* waiting in the scheduler's admission queues */
  uint32_t worker_queued; /* waiting in the workers' own queues */
  uint32_t running;       /* running on the workers */
  uint32_t open;          /* sent and not answered yet, as the client sees */
} report_sample_t;

/* Appends a sample; samples are kept in the order given. */
void report_add_sample(report_t *r, const report_sample_t *s);
/* The samples so far; *out is valid until the next report_add_sample. */
size_t report_samples(const report_t *r, const report_sample_t **out);

/* One worker at one moment, e.g. from a Status poll's heartbeat figures. */
typedef struct report_worker_sample {
  infs_time_t t;        /* us from the start of the run */
  const char *id;       /* borrowed for the call */
  const char *cls;      /* worker class name; borrowed */
  uint32_t outstanding; /* requests dispatched to it and not finished */
  double busy_s;        /* its busy-time counter */
  double cost_usd;      /* its cost counter */
} report_worker_sample_t;

/* The stored form: worker is an index for report_worker_name. */
typedef struct report_wsample {
  infs_time_t t;
  uint32_t worker;
  uint32_t outstanding;
  double busy_s;
  double cost_usd;
} report_wsample_t;

void report_add_worker_sample(report_t *r, const report_worker_sample_t *s);
/* The worker samples in the order given; valid until the next add. */
size_t report_worker_samples(const report_t *r, const report_wsample_t **out);
/* Workers known to the report (from outcomes, pool figures or samples), and
 * the id and class of the i-th. */
size_t report_worker_count(const report_t *r);
void report_worker_name(const report_t *r, size_t i, const char **id,
                        const char **cls);

/* Terminal answers in one second of the run, by their done_at. */
typedef struct report_second {
  uint32_t completed[INFS_CLASS_COUNT];
  uint32_t errors; /* failed and rejected */
  uint64_t prompt_tokens;
  uint64_t generated_tokens; /* of the requests completed in that second */
  /* Generated tokens by when they were made: each completed request's
   * spread evenly from its first token to its Done. */
  double produced_tokens;
} report_second_t;

/* Second i of the run is (*out)[i], up to the last second with an answer;
 * outcomes without done_at are not in it. *out is valid until the next
 * report_add. */
size_t report_timeline(const report_t *r, const report_second_t **out);

typedef enum report_metric {
  REPORT_TTFT,
  REPORT_TPOT,
  REPORT_E2E
} report_metric_t;

/* The latency histogram (us) behind the percentiles; cls < 0 for all
 * classes. Borrowed from the report. */
const hist_t *report_latency(const report_t *r, int cls, report_metric_t m);

/* The JSON of docs/architecture.md ("Reports"); the caller deletes it with
 * cJSON_Delete. NULL when out of memory. */
cJSON *report_to_json(const report_t *r);
/* Writes the JSON to path. Returns 0 or -errno. */
int report_write_json(const report_t *r, const char *path);
/* Writes any JSON document to path, indented, with a final newline.
 * Returns 0 or -errno. */
int report_write_json_file(const cJSON *root, const char *path);
/* The readable table. */
void report_print(const report_t *r, FILE *out);

#endif
