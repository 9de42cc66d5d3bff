/* infsched-keygen: makes CurveZMQ key pairs for the scheduler, its workers
 * and its clients. */
#include "infsched/errors.h"
#include "cli.h"
#include "curve.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f,
          "Usage: infsched-keygen FILE...\n"
          "Makes a CurveZMQ key pair for each FILE, in CZMQ's certificate\n"
          "format (zmq_curve_keypair's Z85 keys): FILE holds the public key,\n"
          "FILE_secret (mode 0600) the public and the secret key. Neither\n"
          "may exist. Prints \"FILE: PUBLIC-KEY\" for each.\n"
          "\n"
          "A scheduler admits the public key files in KEYS/allowed/workers/\n"
          "on its worker port, those in KEYS/allowed/clients/ on its client\n"
          "port; a worker or a client is given its FILE_secret (--key) and the\n"
          "scheduler's public file (--server-key); the scheduler its own\n"
          "FILE_secret (--key). See docs/security.md.\n"
          "\n"
          "Options:\n"
          "  -h, --help            show this help\n"
          "  --version             print the version and exit\n"
          "\n"
          "Exit status: 0 when every pair was made, 2 on bad usage or a FILE\n"
          "that exists, 3 when a pair cannot be made (no CURVE in libzmq,\n"
          "a directory that cannot be written).\n");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
  cli_init("infsched-keygen");
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    if (c == 'V') {
      cli_version();
      return 0;
    }
    cli_usage_error("unknown option '%s'", argv[optind - 1]);
    return CLI_EXIT_USAGE;
  }
  if (optind >= argc) {
    cli_usage_error("missing FILE");
    return CLI_EXIT_USAGE;
  }
  for (int i = optind; i < argc; i++) {
    char err[1024], pub[KEYS_Z85_LEN + 1];
    int rc = curve_keygen(argv[i], err, sizeof err);
    if (rc == 0)
      rc = keys_load(argv[i], pub, NULL, err, sizeof err);
    if (rc) {
      fprintf(stderr, "infsched-keygen: %s\n", err);
      return rc == -EEXIST || rc == INFS_ECONFIG ? CLI_EXIT_USAGE
                                                 : CLI_EXIT_STARTUP;
    }
    printf("%s: %s\n", argv[i], pub);
  }
  return 0;
}
