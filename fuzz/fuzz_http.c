/* The HTTP server's request parsing, over a real loopback connection: the
 * input is what a client sends, then it half-closes and reads until the
 * server closes. Every request is answered with what the handler read of
 * it, streamed when its path says so. */
#include "fuzz.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uv_loop_t loop;
static http_server_t *server;
static struct sockaddr_in addr;

static void on_request(void *arg, http_exchange_t *x) {
  (void)arg;
  size_t len;
  const char *body = http_exchange_body(x, &len);
  const char *type = http_exchange_header(x, "content-type");
  char out[256];
  int n = snprintf(out, sizeof out, "%s %s %zu %s %.16s",
                   http_exchange_method(x), http_exchange_path(x), len,
                   type ? type : "-", body);
  if (strstr(http_exchange_path(x), "stream")) {
    http_stream_begin(x, 200, "text/plain", NULL);
    http_stream_write(x, out, (size_t)n);
    http_stream_end(x);
  } else {
    http_respond(x, 200, "text/plain", NULL, out, (size_t)n);
  }
}

static void on_abort(void *arg, http_exchange_t *x) {
  (void)arg;
  (void)x;
}

static void start(void) {
  uv_loop_init(&loop);
  http_server_config_t cfg = {.addr = "127.0.0.1:0",
                              .max_body = 4096,
                              .request_timeout_ms = 1000};
  http_handler_t h = {.on_request = on_request, .on_abort = on_abort};
  char err[256];
  if (http_server_start(&loop, &cfg, &h, &server, err, sizeof err) != 0) {
    fprintf(stderr, "fuzz_http: %s\n", err);
    abort();
  }
  const char *a = http_server_address(server);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(strrchr(a, ':') + 1));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!server)
    start();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
    abort();
  fcntl(fd, F_SETFL, O_NONBLOCK);
  size_t sent = 0;
  bool closed = false;
  char buf[4096];
  /* Bounded: a server that never closes is a hang libFuzzer reports. */
  for (int round = 0; round < 100000 && !closed; round++) {
    if (sent < size) {
      ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n > 0)
        sent += (size_t)n;
      if (sent == size)
        shutdown(fd, SHUT_WR);
    } else if (round == 0) {
      shutdown(fd, SHUT_WR);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 1) > 0) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      closed = n == 0 || (n < 0 && errno != EAGAIN);
    }
  }
  close(fd);
  uv_run(&loop, UV_RUN_NOWAIT);
  return 0;
}
