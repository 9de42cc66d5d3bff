#include "cli.h"

#include "infsched/errors.h"
#include "infsched/version.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <unistd.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *s_program = "infsched";

void cli_init(const char *program) { s_program = program; }

int cli_start_status(int rc) {
  switch (rc) {
  case INFS_ECONFIG:
  case INFS_EUNKNOWN:
  case -EINVAL:
  case -EPROTONOSUPPORT:
    return CLI_EXIT_USAGE;
  default:
    return CLI_EXIT_STARTUP;
  }
}

void cli_version(void) { printf("%s %s\n", s_program, INFSCHED_VERSION); }

int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", s_program);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry '%s --help'.\n", s_program);
  return -1;
}

int cli_parse_options(int argc, char **argv, const struct option *options,
                      void (*usage)(FILE *f), cli_option_cb each, void *ctx) {
  int c, rc = 0;
  opterr = 0;
  /* The leading ':' tells a missing value (':') from an unknown option. */
  while (rc == 0 && (c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    const char *name = argv[optind - 1];
    switch (c) {
    case 'h':
      usage(stdout);
      exit(0);
    case 'V':
      cli_version();
      exit(0);
    case ':':
      rc = cli_usage_error("%s: needs a value", name);
      break;
    case '?':
      rc = cli_usage_error("unknown option '%s'", name);
      break;
    default:
      rc = each ? each(ctx, c, optarg) : CLI_NOT_MINE;
      if (rc == CLI_NOT_MINE)
        rc = cli_usage_error("unknown option '%s'", name);
      break;
    }
  }
  return rc ? -1 : optind;
}

int cli_parse_args(int argc, char **argv, const struct option *options,
                   void (*usage)(FILE *f), cli_option_cb each, void *ctx) {
  int i = cli_parse_options(argc, argv, options, usage, each, ctx);
  if (i < 0)
    return -1;
  if (i < argc)
    return cli_usage_error("unexpected argument '%s'", argv[i]);
  return 0;
}

int cli_u64(const char *flag, const char *val, uint64_t min, uint64_t max,
            uint64_t *out) {
  char *end;
  errno = 0;
  if (!val || *val == '\0' || *val == '-')
    return cli_usage_error("%s: expected a whole number, got '%s'", flag,
                           val ? val : "");
  unsigned long long v = strtoull(val, &end, 10);
  if (errno || *end != '\0')
    return cli_usage_error("%s: expected a whole number, got '%s'", flag, val);
  if (v < min || v > max)
    return cli_usage_error("%s: %llu is out of range [%llu, %llu]", flag, v,
                           (unsigned long long)min, (unsigned long long)max);
  *out = v;
  return 0;
}

int cli_u32(const char *flag, const char *val, uint32_t min, uint32_t max,
            uint32_t *out) {
  uint64_t v = 0;
  if (cli_u64(flag, val, min, max, &v))
    return -1;
  *out = (uint32_t)v;
  return 0;
}

int cli_double(const char *flag, const char *val, double min, double max,
               double *out) {
  char *end;
  errno = 0;
  if (!val || *val == '\0')
    return cli_usage_error("%s: expected a number, got ''", flag);
  double v = strtod(val, &end);
  if (errno || *end != '\0' || !isfinite(v))
    return cli_usage_error("%s: expected a number, got '%s'", flag, val);
  if (v < min || v > max)
    return cli_usage_error("%s: %g is out of range [%g, %g]", flag, v, min,
                           max);
  *out = v;
  return 0;
}

const char *cli_default_profiles(char *buf, size_t len) {
  static const char *const beside[] = {"../" INFSCHED_INSTALL_DATADIR
                                       "/profiles.yaml",
                                       "../../configs/profiles.yaml"};
  if (access("configs/profiles.yaml", R_OK) == 0)
    return "configs/profiles.yaml";
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *dir = dirname(exe);
    for (size_t i = 0; i < sizeof beside / sizeof beside[0]; i++) {
      int w = snprintf(buf, len, "%s/%s", dir, beside[i]);
      if (w > 0 && (size_t)w < len && access(buf, R_OK) == 0)
        return buf;
    }
  }
  return "configs/profiles.yaml";
}

profile_set_t *cli_load_profiles(const char **path, char *buf, size_t len) {
  char err[512];
  profile_set_t *set = NULL;
  if (!*path)
    *path = cli_default_profiles(buf, len);
  if (profile_set_load(*path, &set, err, sizeof err)) {
    log_error("%s", err);
    return NULL;
  }
  return set;
}
