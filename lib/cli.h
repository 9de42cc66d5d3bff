/* Command-line value parsing shared by every program. Each parser prints
 * "PROGRAM: --flag: why" on stderr and returns -1 on a bad value, so that
 * main can exit with status 2.
 *
 * Every program exits with one rule: 0 done, 1 the run failed (requests
 * lost, a process died), 2 what was typed is wrong (an unknown flag, a bad
 * value, an unknown name, a named file that is unreadable or invalid), 3
 * what was typed is right but the program cannot start (an address in
 * use, a peer that does not answer, a resource that is missing). */
#ifndef INFSCHED_CLI_H
#define INFSCHED_CLI_H

#include "infsched/profile.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct option;

#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_STARTUP 3

void cli_init(const char *program);
int cli_u64(const char *flag, const char *val, uint64_t min, uint64_t max,
            uint64_t *out);
int cli_u32(const char *flag, const char *val, uint32_t min, uint32_t max,
            uint32_t *out);
int cli_double(const char *flag, const char *val, double min, double max,
               double *out);
/* Prints "PROGRAM VERSION" on stdout, for --version. */
void cli_version(void);
/* The default profiles file: ./configs/profiles.yaml, else the one
 * installed beside the program (PREFIX/bin/../share/infsched), else the
 * repository's configs/ seen from build/bin/. Returns buf or a static
 * string. */
const char *cli_default_profiles(char *buf, size_t len);
/* Loads the profiles file at *path, or the default one (into buf) when
 * *path is NULL, and sets *path to the file read. Returns the set, or NULL
 * after logging why: a usage error (CLI_EXIT_USAGE). */
profile_set_t *cli_load_profiles(const char **path, char *buf, size_t len);
/* Prints "PROGRAM: msg" plus a pointer to --help and returns -1. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What a program's own option does: c is getopt_long's value for it, arg
 * its value (NULL for a flag). Returns 0, -1 after printing why, or
 * CLI_NOT_MINE for a value that is not one of its options. */
#define CLI_NOT_MINE 1
typedef int (*cli_option_cb)(void *ctx, int c, const char *arg);

/* Parses the options of argv with getopt_long over options (ended by a
 * zeroed entry): -h and --help print usage on stdout and exit 0, --version
 * prints the version and exits 0, every other option goes to each (NULL
 * for a program with no options of its own). An option without its value
 * or one that each does not know is a usage error. Returns the index of
 * the first argument that is not an option, or -1 after printing why. */
int cli_parse_options(int argc, char **argv, const struct option *options,
                      void (*usage)(FILE *f), cli_option_cb each, void *ctx);
/* cli_parse_options for a program that takes no arguments beyond its
 * options: one more is a usage error. Returns 0 or -1. */
int cli_parse_args(int argc, char **argv, const struct option *options,
                   void (*usage)(FILE *f), cli_option_cb each, void *ctx);

/* The exit status for a start that failed with status code rc: a value the
 * system refused as malformed (INFS_ECONFIG, INFS_EUNKNOWN, -EINVAL, an
 * unknown transport) is a usage error, anything else cannot start. */
int cli_start_status(int rc);

#endif
