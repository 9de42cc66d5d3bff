/* What the HTTP front door costs: starts a scheduler and a null-backend
 * worker on free ports, then keeps C keep-alive connections busy with
 * non-streamed completions (closed loop, one request in flight per
 * connection) for a few seconds, and prints requests per second and the
 * latency percentiles seen by the client.
 *
 *   build/bin/bench_http [--connections C] [--seconds S] [--max-tokens N]
 *                        [--stream] */
#include "cli.h"
#include "clock.h"
#include "hist.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256

typedef struct client {
  int fd;
  char buf[65536];
  size_t len;
  uint64_t sent_at;
} client_t;

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Length of a complete response at the start of buf, or 0. Streams end
 * with the last chunk, others after Content-Length bytes. */
static size_t complete(const char *buf, size_t len) {
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  if (!end)
    return 0;
  size_t head = (size_t)(end - buf) + 4;
  const char *cl = memmem(buf, head, "Content-Length: ", 16);
  if (cl) {
    size_t n = strtoul(cl + 16, NULL, 10);
    return len >= head + n ? head + n : 0;
  }
  const char *last = memmem(buf + head, len - head, "\r\n0\r\n\r\n", 7);
  return last ? (size_t)(last - buf) + 7 : 0;
}

static void usage(FILE *f) {
  fprintf(f, "Usage: bench_http [--connections C] [--seconds S] "
             "[--max-tokens N] [--stream]\n"
             "Drives a scheduler's HTTP API with a null-backend worker and "
             "prints requests/s\nand client-side latency.\n"
             "  --connections C   keep-alive connections, each with one "
             "request in flight\n"
             "                    (1 to %d, default 8)\n"
             "  --seconds S       how long to drive them (1 to 600, default "
             "5)\n"
             "  --max-tokens N    tokens each completion asks for (default "
             "16)\n"
             "  --stream          streamed completions instead of whole "
             "ones\n"
             "  -h, --help        this text\n",
          MAX_CONNS);
}

typedef struct options {
  uint32_t conns, seconds, max_tokens;
  bool stream;
} options_t;

static int parse_one(void *ctx, int c, const char *arg) {
  options_t *o = ctx;
  switch (c) {
  case 'c':
    return cli_u32("--connections", arg, 1, MAX_CONNS, &o->conns);
  case 's':
    return cli_u32("--seconds", arg, 1, 600, &o->seconds);
  case 'm':
    return cli_u32("--max-tokens", arg, 1, 100000, &o->max_tokens);
  case 'S':
    o->stream = true;
    return 0;
  default:
    return CLI_NOT_MINE;
  }
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"connections", required_argument, NULL, 'c'},
      {"seconds", required_argument, NULL, 's'},
      {"max-tokens", required_argument, NULL, 'm'},
      {"stream", no_argument, NULL, 'S'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  options_t o = {.conns = 8, .seconds = 5, .max_tokens = 16};
  cli_init("bench_http");
  if (cli_parse_args(argc, argv, opts, usage, parse_one, &o))
    return CLI_EXIT_USAGE;
  uint32_t conns = o.conns, seconds = o.seconds, max_tokens = o.max_tokens;
  bool stream = o.stream;
  signal(SIGPIPE, SIG_IGN);

  char *dir = harness_tmpdir();
  char clients[64], workers[64], http[64], log[600], wlog[600];
  int hp = harness_free_port();
  snprintf(clients, sizeof clients, "tcp://127.0.0.1:%d", harness_free_port());
  snprintf(workers, sizeof workers, "tcp://127.0.0.1:%d", harness_free_port());
  snprintf(http, sizeof http, "127.0.0.1:%d", hp);
  snprintf(log, sizeof log, "%s/scheduler.log", dir);
  snprintf(wlog, sizeof wlog, "%s/worker.log", dir);
  char *sargv[] = {(char *)harness_bin("infsched-scheduler"),
                   "--clients",
                   clients,
                   "--workers",
                   workers,
                   "--http",
                   http,
                   "--log-level",
                   "warn",
                   NULL};
  harness_proc_t *sched = harness_spawn(log, sargv);
  char *wargv[] = {(char *)harness_bin("infsched-worker"),
                   "--scheduler",
                   workers,
                   "--id",
                   "null-0",
                   "--backend",
                   "null",
                   "--capacity",
                   "100000",
                   "--profiles",
                   (char *)harness_source("configs/profiles.yaml"),
                   NULL};
  harness_proc_t *worker = harness_spawn(wlog, wargv);
  if (!sched || !worker) {
    fprintf(stderr, "bench_http: cannot start the daemons\n");
    return 1;
  }

  char body[256], req[512];
  snprintf(body, sizeof body,
           "{\"model\":\"codex-70b\",\"prompt\":\"def f(x):\","
           "\"max_tokens\":%u,\"stream\":%s}",
           max_tokens, stream ? "true" : "false");
  int reqlen = snprintf(req, sizeof req,
                        "POST /v1/completions HTTP/1.1\r\nHost: bench\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n%s",
                        strlen(body), body);

  /* Ready once a request is served. */
  uint64_t give_up = (uint64_t)clock_us() + 15000000u;
  for (;;) {
    int fd = dial(hp);
    char in[8192];
    ssize_t n = -1;
    if (fd >= 0 && send(fd, req, (size_t)reqlen, 0) == reqlen) {
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 2000) == 1)
        n = recv(fd, in, sizeof in - 1, 0);
    }
    if (fd >= 0)
      close(fd);
    if (n > 12 && strncmp(in, "HTTP/1.1 200", 12) == 0)
      break;
    if ((uint64_t)clock_us() > give_up) {
      fprintf(stderr, "bench_http: the scheduler did not serve (logs %s)\n",
              dir);
      return 1;
    }
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
  }

  client_t *cl = calloc(conns, sizeof *cl);
  struct pollfd *pfd = calloc(conns, sizeof *pfd);
  hist_t *lat = hist_new();
  for (uint32_t i = 0; i < conns; i++) {
    cl[i].fd = dial(hp);
    pfd[i] = (struct pollfd){cl[i].fd, POLLIN, 0};
    cl[i].sent_at = (uint64_t)clock_us();
    if (send(cl[i].fd, req, (size_t)reqlen, 0) != reqlen) {
      fprintf(stderr, "bench_http: send failed\n");
      return 1;
    }
  }
  uint64_t start = (uint64_t)clock_us(), end = start + (uint64_t)seconds * 1000000u;
  uint64_t done = 0, errors = 0;
  while ((uint64_t)clock_us() < end) {
    if (poll(pfd, conns, 100) <= 0)
      continue;
    for (uint32_t i = 0; i < conns; i++) {
      if (!(pfd[i].revents & POLLIN))
        continue;
      client_t *k = &cl[i];
      ssize_t n = recv(k->fd, k->buf + k->len, sizeof k->buf - k->len - 1, 0);
      if (n <= 0) {
        fprintf(stderr, "bench_http: connection closed\n");
        return 1;
      }
      k->len += (size_t)n;
      size_t whole;
      while ((whole = complete(k->buf, k->len))) {
        uint64_t t = (uint64_t)clock_us();
        hist_record(lat, t - k->sent_at);
        if (strncmp(k->buf, "HTTP/1.1 200", 12) != 0)
          errors++;
        done++;
        memmove(k->buf, k->buf + whole, k->len - whole);
        k->len -= whole;
        k->sent_at = t;
        if (send(k->fd, req, (size_t)reqlen, 0) != reqlen)
          return 1;
      }
    }
  }
  double secs = (double)((uint64_t)clock_us() - start) / 1e6;
  printf("# bench_http: %u keep-alive connections, %u s, %s completions of "
         "%u tokens, null backend\n",
         conns, seconds, stream ? "streamed" : "whole", max_tokens);
  printf("%-10s %10s %10s %10s %10s %8s\n", "requests", "req/s", "p50_us",
         "p90_us", "p99_us", "errors");
  printf(
      "%-10llu %10.0f %10llu %10llu %10llu %8llu\n", (unsigned long long)done,
      (double)done / secs, (unsigned long long)hist_quantile(lat, 0.5),
      (unsigned long long)hist_quantile(lat, 0.9),
      (unsigned long long)hist_quantile(lat, 0.99), (unsigned long long)errors);
  for (uint32_t i = 0; i < conns; i++)
    close(cl[i].fd);
  free(cl);
  free(pfd);
  hist_destroy(&lat);
  harness_stop(&worker);
  harness_stop(&sched);
  harness_rmtree(dir);
  free(dir);
  return errors ? 1 : 0;
}
