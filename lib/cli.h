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

#include <stddef.h>
#include <stdint.h>

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
/* Prints "PROGRAM: msg" plus a pointer to --help and returns -1. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The exit status for a start that failed with status code rc: a value the
 * system refused as malformed (INFS_ECONFIG, INFS_EUNKNOWN, -EINVAL, an
 * unknown transport) is a usage error, anything else cannot start. */
int cli_start_status(int rc);

#endif
