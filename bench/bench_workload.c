/* How fast the workload generators produce requests, as infsched-sim drives
 * them: virtual time, every awaited call answered after a latency that
 * grows with its prompt and output. Prints requests per second of CPU and
 * the work behind them.
 *
 *   build/bin/bench_workload [N [SESSIONS]]   (default 1000000 and 1000) */
#include "workload.h"

#include "cli.h"
#include "clock.h"
#include "xalloc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct pending {
  infs_time_t at;
  uint64_t id;
  uint32_t generated;
} pending_t;

typedef struct heap {
  pending_t *v;
  size_t n;
  size_t cap;
} heap_t;

static void push(heap_t *h, pending_t p) {
  if (h->n == h->cap) {
    h->cap = h->cap ? 2 * h->cap : 1024;
    h->v = xrealloc(h->v, h->cap * sizeof *h->v);
  }
  size_t i = h->n++;
  while (i > 0 && h->v[(i - 1) / 2].at > p.at) {
    h->v[i] = h->v[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->v[i] = p;
}

static pending_t pop(heap_t *h) {
  pending_t top = h->v[0], last = h->v[--h->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n)
      break;
    if (c + 1 < h->n && h->v[c + 1].at < h->v[c].at)
      c++;
    if (last.at <= h->v[c].at)
      break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (h->n)
    h->v[i] = last;
  return top;
}

static void usage(FILE *f) {
  fprintf(f, "usage: bench_workload [N [SESSIONS]]\n"
             "Generates N codex requests from SESSIONS sessions at once, "
             "answering each\nafter a latency like the sim cluster's, and "
             "prints requests per second of CPU.\n"
             "  N            requests, at least 1 (default 1000000)\n"
             "  SESSIONS     sessions at once, 1 to 1000000 (default 1000)\n"
             "  -h, --help   this text\n");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  cli_init("bench_workload");
  int i = cli_parse_options(argc, argv, opts, usage, NULL, NULL);
  if (i < 0)
    return CLI_EXIT_USAGE;
  uint64_t n = 1000000;
  uint32_t sessions = 1000;
  if (argc - i > 2) {
    cli_usage_error("expected N [SESSIONS]");
    return CLI_EXIT_USAGE;
  }
  if ((i < argc && cli_u64("N", argv[i], 1, UINT64_MAX, &n)) ||
      (i + 1 < argc &&
       cli_u32("SESSIONS", argv[i + 1], 1, 1000000, &sessions)))
    return CLI_EXIT_USAGE;
  workload_opts_t o;
  workload_codex_config_t cfg;
  workload_opts_default(&o);
  workload_codex_config_default(&cfg);
  o.max_requests = n;
  cfg.sessions = sessions;
  char err[512];
  workload_t *w = NULL;
  if (workload_codex_new(&o, &cfg, &w, err, sizeof err)) {
    fprintf(stderr, "bench_workload: %s\n", err);
    return 1;
  }
  heap_t h = {0};
  uint64_t got = 0, prompt = 0, blocks = 0;
  infs_time_t last = 0;
  double t0 = clock_s();
  for (;;) {
    infs_time_t next = workload_next_time(w);
    if (h.n && h.v[0].at <= next) {
      pending_t p = pop(&h);
      workload_on_done(w, p.id, p.at, true, p.generated);
      continue;
    }
    if (next == INFS_TIME_NEVER)
      break;
    workload_req_t r;
    if (workload_pop(w, next, &r))
      break;
    got++;
    last = r.arrival;
    prompt += r.prompt_tokens;
    blocks += r.n_blocks;
    /* 0.2 s + prefill of a tenth of the prompt at 10K tok/s + 20 ms per
     * output token: the order of the sim cluster's answers. */
    infs_time_t lat = 200000 + (infs_time_t)r.prompt_tokens * 10 +
                      (infs_time_t)r.max_tokens * 20000;
    push(&h, (pending_t){r.arrival + lat, r.id, r.max_tokens});
  }
  double secs = clock_s() - t0;
  printf("codex, %u sessions: %llu requests in %.2f s (%.0f requests/s)\n",
         sessions, (unsigned long long)got, secs, (double)got / secs);
  printf("  mean prompt %.0f tokens, %.0f block hashes per request, %.1f h "
         "of virtual time\n",
         got ? (double)prompt / (double)got : 0.0,
         got ? (double)blocks / (double)got : 0.0, (double)last / 3.6e9);
  free(h.v);
  workload_destroy(&w);
  return 0;
}
