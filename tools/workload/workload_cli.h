/* The workload flags every program that generates traffic takes (--workload,
 * --rate, --seed, the codex knobs, ...), so that one scenario is written the
 * same way for infsched-loadgen and infsched-sim. A program adds
 * workload_cli_options to its getopt_long table, passes each result to
 * workload_cli_parse, calls workload_cli_check after the loop and builds as
 * many identical generators as it needs with workload_cli_build. Messages
 * go through lib/cli.h (usage errors, exit status 2). */
#ifndef INFSCHED_WORKLOAD_CLI_H
#define INFSCHED_WORKLOAD_CLI_H

#include "workload.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* getopt_long values of the workload flags start here. */
#define WORKLOAD_CLI_OPT_BASE 0x1000

#define WORKLOAD_CLI_KNOBS_MAX 64

/* Codex knobs from flags, applied over the workload file: the flag it came
 * from (for messages), the knob and its value (argv strings). */
typedef struct workload_cli_knob {
  const char *flag;
  char key[48];
  const char *value;
} workload_cli_knob_t;

typedef enum workload_cli_kind {
  WORKLOAD_CLI_POISSON,
  WORKLOAD_CLI_TRACE,
  WORKLOAD_CLI_CODEX
} workload_cli_kind_t;

/* How workload_cli_build scales a trace: more time-shifted copies of it
 * (its bursts keep their shape) or its gaps divided (its bursts grow as
 * dense as the scale). Poisson and codex scale their rate and sessions. */
typedef enum workload_scale_by {
  WORKLOAD_SCALE_OVERLAY,
  WORKLOAD_SCALE_COMPRESS
} workload_scale_by_t;

typedef struct workload_cli {
  const char *spec; /* --workload; "poisson" by default */
  workload_opts_t opts;
  const char *mix; /* --class-mix as given: codex's turn mix */
  const char *record; /* --record: write the requests sent as a trace */
  bool seen_rate, seen_speedup, seen_sizes, seen_duration, seen_prefix;
  bool seen_slo;
  workload_scale_by_t scale_by; /* set by the program, not a flag */
  workload_cli_knob_t knobs[WORKLOAD_CLI_KNOBS_MAX];
  size_t n_knobs;
} workload_cli_t;

/* The options, ending with an all-zero entry; count excludes it. */
extern const struct option workload_cli_options[];
size_t workload_cli_option_count(void);
/* A getopt_long table of own (n_own entries, no terminator) followed by the
 * workload options and the terminator, in storage that lives until exit. */
const struct option *workload_cli_merge(const struct option *own,
                                        size_t n_own);

/* The flags' --help text. */
void workload_cli_usage(FILE *out);

/* Defaults: poisson with workload_opts_default. */
void workload_cli_init(workload_cli_t *c);

/* Handles one getopt_long result. Returns 0 when it was a workload flag and
 * its value is good, 1 when opt is not a workload flag, -1 after printing a
 * usage error. arg must outlive c (an argv string). */
int workload_cli_parse(workload_cli_t *c, int opt, const char *arg);

/* After parsing: refuses flags the chosen workload does not read (almost
 * always a mistake) and gives poisson and codex a 60 s duration when neither
 * --duration nor --max-requests was given. Returns 0, or -1 after a usage
 * error. */
int workload_cli_check(workload_cli_t *c);

workload_cli_kind_t workload_cli_kind(const workload_cli_t *c);

/* Forgets the flags c's workload does not read, those workload_cli_check
 * would refuse, so that one command line can serve several workloads (the
 * simulator's --matrix). Call before workload_cli_check. */
void workload_cli_drop_others(workload_cli_t *c);

/* A fresh generator for the flags, its arrival rate multiplied by scale:
 * poisson's rate (and ramp end), a trace's copies or speed-up (scale_by),
 * codex's sessions and session rate. The same flags and scale always give the same requests.
 * Returns 0, or a negative code with a reason (FILE:LINE for files) in
 * err. */
int workload_cli_build(const workload_cli_t *c, double scale, workload_t **out,
                       char *err, size_t errlen);

/* What scale means for these flags, e.g. "12.5 req/s", "speed-up 4x" or
 * "32 sessions". */
void workload_cli_describe(const workload_cli_t *c, double scale, char *buf,
                           size_t len);

/* Records the workload and its seed as settings of report r: the spec, what
 * scale 1 means, the duration or request cap, and the class mix when
 * given. */
struct report;
void workload_cli_report_settings(const workload_cli_t *c,
                                  struct report *r);

#endif
