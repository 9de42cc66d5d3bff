#include "server.h"

#include "list.h"
#include "log.h"
#include "xalloc.h"
#include "buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define STOP_LINGER_MS 1000
#define LISTEN_BACKLOG 511
#define READ_BUF_SIZE (64u << 10)
/* Bytes read ahead (pipelined requests) while a response is pending; past
 * this the connection stops reading until the response ends. */
#define READ_AHEAD_MAX (256u << 10)
/* Buffers of a finished exchange larger than this are released rather
 * than kept for the next request on the connection. */
#define KEEP_BUF_MAX (64u << 10)
/* After the last answer on a connection that closes, how long its unread
 * input is drained so that closing does not reset the answer away. */
#define LINGER_MS 2000
/* Connections past the cap that are being answered 503 and closed at once.
 * Further ones wait in the listen backlog until one of these has closed:
 * a flood accepted in one go (libuv accepts until the backlog is empty,
 * and closes only after) would otherwise take the descriptors kept for
 * workers and clients, and the next accept would fail with EMFILE. */
#define OVER_CAP_MAX 16

typedef enum xstate {
  X_IDLE,      /* waiting for a request */
  X_READING,   /* request being parsed */
  X_HANDLING,  /* request complete, no answer yet */
  X_STREAMING, /* streamed response begun */
  X_ENDED      /* response complete (maybe still being written) */
} xstate_t;

typedef struct conn conn_t;

struct http_exchange {
  conn_t *conn;
  void *user;
  xstate_t state;
  buf_t url;
  buf_t path;
  buf_t headers; /* "name\0value\0" pairs, names lower-cased */
  buf_t body;
  bool keep_alive;
  bool chunked; /* streamed with chunked transfer encoding */
  bool http10;
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer; /* request timeout while idle or reading */
  uv_shutdown_t shutdown;
  http_server_t *srv;
  list_node_t link;
  http_parser parser;
  http_exchange_t x;
  buf_t pending;  /* read but not parsed: the next pipelined requests */
  int hdr_phase;   /* 0: none yet, 1: in a name, 2: in a value */
  int reject;      /* status to answer when a callback stopped parsing */
  unsigned writes; /* uv_write requests in flight */
  int handles;     /* open handles; freed when both have closed */
  bool closing;
  bool reading;
  bool draining; /* answered and shut down: discarding input */
};

struct http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t stop_timer;
  http_server_config_t cfg;
  http_handler_t h;
  http_parser_settings settings;
  list_node_t conns;
  size_t n_conns;
  bool stopping;
  bool stop_timer_closed;
  bool accept_waiting; /* a connection waits for one past the cap to close */
  int open_handles; /* only while failing to start */
  char addr[INET6_ADDRSTRLEN + 16];
  char readbuf[READ_BUF_SIZE];
};

typedef struct wreq {
  uv_write_t req;
  conn_t *conn;
  char data[];
} wreq_t;

const char *http_status_text(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Payload Too Large";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

/* --- connection life --- */

static void on_conn_closed(uv_handle_t *h);
static void on_connection(uv_stream_t *listener, int status);

static void conn_close(conn_t *c) {
  if (c->closing)
    return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void close_stop_timer(http_server_t *s) {
  if (s->stop_timer_closed)
    return;
  s->stop_timer_closed = true;
  uv_close((uv_handle_t *)&s->stop_timer, NULL);
}

static void exchange_free(http_exchange_t *x) {
  buf_free(&x->url);
  buf_free(&x->path);
  buf_free(&x->headers);
  buf_free(&x->body);
}

static void on_conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles > 0)
    return;
  http_server_t *s = c->srv;
  if ((c->x.state == X_HANDLING || c->x.state == X_STREAMING) && s->h.on_abort)
    s->h.on_abort(s->h.arg, &c->x);
  list_remove(&c->link);
  s->n_conns--;
  exchange_free(&c->x);
  buf_free(&c->pending);
  free(c);
  if (s->stopping && s->n_conns == 0)
    close_stop_timer(s);
  if (s->accept_waiting && !s->stopping) {
    s->accept_waiting = false;
    on_connection((uv_stream_t *)&s->listener, 0);
  }
}

/* --- writing --- */

static void on_exchange_done(conn_t *c);
static void on_timeout(uv_timer_t *t);

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = w->conn;
  free(w);
  c->writes--;
  if (c->closing)
    return;
  if (status < 0) {
    log_debug("http: write failed: %s", uv_strerror(status));
    conn_close(c);
    return;
  }
  if (c->x.state == X_ENDED && c->writes == 0)
    on_exchange_done(c);
}

/* Queues the concatenation of n parts as one write. */
static void send_parts(conn_t *c, const uv_buf_t *parts, int n) {
  if (c->closing)
    return;
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += parts[i].len;
  if (total == 0)
    return;
  wreq_t *w = xmalloc(sizeof *w + total);
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    memcpy(w->data + off, parts[i].base, parts[i].len);
    off += parts[i].len;
  }
  w->conn = c;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)total);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc) {
    free(w);
    conn_close(c);
    return;
  }
  c->writes++;
  if (c->tcp.write_queue_size > c->srv->cfg.max_output) {
    log_warn("http: client is not reading (%zu bytes queued); "
             "disconnecting it",
             c->tcp.write_queue_size);
    conn_close(c);
  }
}

static void send_str(conn_t *c, const char *s, size_t len) {
  uv_buf_t b = uv_buf_init((char *)s, (unsigned)len);
  send_parts(c, &b, 1);
}

static void status_seen(conn_t *c, int status) {
  if (c->srv->h.on_status)
    c->srv->h.on_status(c->srv->h.arg, &c->x, status);
}

static void format_head(buf_t *head, const http_exchange_t *x, int status,
                        const char *content_type, const char *extra) {
  buf_printf(head, "HTTP/1.1 %d %s\r\nServer: infsched\r\n", status,
              http_status_text(status));
  if (content_type)
    buf_printf(head, "Content-Type: %s\r\n", content_type);
  buf_printf(head, "Connection: %s\r\n",
              x->keep_alive ? "keep-alive" : "close");
  if (extra)
    buf_puts(head, extra);
}

void http_respond(http_exchange_t *x, int status, const char *content_type,
                  const char *extra_headers, const char *body, size_t len) {
  conn_t *c = x->conn;
  if (x->state != X_HANDLING && x->state != X_READING)
    return;
  if (c->srv->stopping)
    x->keep_alive = false;
  buf_t head = {0};
  format_head(&head, x, status, content_type, extra_headers);
  buf_printf(&head, "Content-Length: %zu\r\n\r\n", len);
  x->state = X_ENDED;
  uv_timer_start(&c->timer, on_timeout, c->srv->cfg.request_timeout_ms, 0);
  status_seen(c, status);
  uv_buf_t parts[2] = {uv_buf_init(head.data, (unsigned)head.len),
                       uv_buf_init((char *)body, (unsigned)len)};
  /* HEAD: the headers a GET would get, Content-Length too, no body. */
  send_parts(c, parts, strcmp(http_exchange_method(x), "HEAD") == 0 ? 1 : 2);
  buf_free(&head);
}

void http_stream_begin(http_exchange_t *x, int status, const char *content_type,
                       const char *extra_headers) {
  conn_t *c = x->conn;
  if (x->state != X_HANDLING)
    return;
  /* HTTP/1.0 has no chunked encoding: the end of the body is the end of
   * the connection. */
  x->chunked = !x->http10;
  if (!x->chunked)
    x->keep_alive = false;
  buf_t head = {0};
  format_head(&head, x, status, content_type, extra_headers);
  buf_puts(&head, "Cache-Control: no-cache\r\n");
  if (x->chunked)
    buf_puts(&head, "Transfer-Encoding: chunked\r\n");
  buf_puts(&head, "\r\n");
  x->state = X_STREAMING;
  status_seen(c, status);
  send_str(c, head.data, head.len);
  buf_free(&head);
}

void http_stream_write(http_exchange_t *x, const char *data, size_t len) {
  if (x->state != X_STREAMING || len == 0)
    return;
  if (!x->chunked) {
    send_str(x->conn, data, len);
    return;
  }
  char size[24];
  int n = snprintf(size, sizeof size, "%zx\r\n", len);
  uv_buf_t parts[3] = {uv_buf_init(size, (unsigned)n),
                       uv_buf_init((char *)data, (unsigned)len),
                       uv_buf_init("\r\n", 2)};
  send_parts(x->conn, parts, 3);
}

void http_stream_end(http_exchange_t *x) {
  conn_t *c = x->conn;
  if (x->state != X_STREAMING)
    return;
  x->state = X_ENDED;
  uv_timer_start(&c->timer, on_timeout, c->srv->cfg.request_timeout_ms, 0);
  if (x->chunked)
    send_str(c, "0\r\n\r\n", 5);
  else if (c->writes == 0)
    conn_close(c);
}

/* --- reading --- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn_t *c = h->data;
  (void)suggested;
  /* The loop is single-threaded and on_read consumes the buffer before
   * the next allocation, so one buffer serves every connection. */
  *buf = uv_buf_init(c->srv->readbuf, sizeof c->srv->readbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void start_reading(conn_t *c) {
  if (c->reading || c->closing)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = true;
  else
    conn_close(c);
}

/* Answers a request that could not be parsed and closes the connection. */
static void reject(conn_t *c, int status, const char *message) {
  char body[256];
  int n = snprintf(body, sizeof body,
                   "{\"error\":{\"message\":\"%s\",\"type\":"
                   "\"invalid_request_error\",\"param\":null,\"code\":null}}",
                   message);
  c->x.keep_alive = false;
  c->x.state = X_HANDLING;
  http_respond(&c->x, status, "application/json", NULL, body, (size_t)n);
}

static void feed(conn_t *c, const char *data, size_t len) {
  size_t n = http_parser_execute(&c->parser, &c->srv->settings, data, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (e == HPE_PAUSED) {
    /* Paused after a complete request: keep the rest for later. */
    if (n < len)
      buf_append(&c->pending, data + n, len - n);
    return;
  }
  if (e == HPE_OK)
    return;
  if (c->closing)
    return;
  if (c->reject == 413)
    reject(c, 413, "request body too large");
  else if (e == HPE_HEADER_OVERFLOW)
    reject(c, 431, "request headers too large");
  else
    reject(c, 400, "malformed HTTP request");
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (nread < 0) {
    /* EOF or error: a client that leaves before its answer has it
     * cancelled (on_abort, from the close callback). */
    conn_close(c);
    return;
  }
  if (nread == 0 || c->closing || c->draining)
    return;
  if (c->x.state == X_IDLE || c->x.state == X_READING) {
    feed(c, buf->base, (size_t)nread);
    return;
  }
  if (!c->x.keep_alive)
    return; /* closes after this answer: nothing more will be parsed */
  /* A response is pending: read ahead (and notice EOF) but parse later. */
  buf_append(&c->pending, buf->base, (size_t)nread);
  if (c->pending.len > READ_AHEAD_MAX) {
    uv_read_stop(stream);
    c->reading = false;
  }
}

static void on_timeout(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->draining) {
    conn_close(c);
    return;
  }
  if (c->x.state != X_HANDLING && c->x.state != X_STREAMING) {
    log_debug("http: connection idle, request incomplete or answer unread "
              "for %u ms; closing it",
              c->srv->cfg.request_timeout_ms);
    conn_close(c);
  }
}

static void shrink(buf_t *b) {
  if (b->cap > KEEP_BUF_MAX)
    buf_free(b);
  else
    buf_reset(b);
}

static void exchange_reset(http_exchange_t *x) {
  shrink(&x->url);
  shrink(&x->path);
  shrink(&x->headers);
  shrink(&x->body);
  x->user = NULL;
  x->state = X_IDLE;
  x->chunked = false;
}

/* Sends FIN after the last answer and discards input until the client
 * closes too (or LINGER_MS pass): closing a socket with unread input would
 * reset the connection and could destroy the answer at the client. */
static void linger(conn_t *c) {
  c->draining = true;
  buf_free(&c->pending);
  uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, NULL) != 0) {
    conn_close(c);
    return;
  }
  start_reading(c);
}

/* The response has been written: next request, or close. Called from a
 * write callback, so it may run the handler again. */
static void on_exchange_done(conn_t *c) {
  if (c->srv->stopping) {
    conn_close(c);
    return;
  }
  if (!c->x.keep_alive) {
    linger(c);
    return;
  }
  exchange_reset(&c->x);
  uv_timer_start(&c->timer, on_timeout, c->srv->cfg.request_timeout_ms, 0);
  http_parser_pause(&c->parser, 0);
  if (c->pending.len) {
    buf_t ahead = c->pending;
    c->pending = (buf_t){0};
    feed(c, ahead.data, ahead.len);
    buf_free(&ahead);
  }
  if (c->x.state == X_IDLE || c->x.state == X_READING ||
      c->pending.len <= READ_AHEAD_MAX)
    start_reading(c);
}

/* --- parser callbacks --- */

static conn_t *conn_of(http_parser *p) {
  return p->data;
}

static int on_message_begin(http_parser *p) {
  conn_t *c = conn_of(p);
  exchange_reset(&c->x);
  c->x.state = X_READING;
  c->hdr_phase = 0;
  c->reject = 0;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  buf_append(&conn_of(p)->x.url, at, len);
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  if (c->hdr_phase == 2)
    buf_append(&c->x.headers, "", 1);
  c->hdr_phase = 1;
  size_t start = c->x.headers.len;
  buf_append(&c->x.headers, at, len);
  for (size_t i = start; i < c->x.headers.len; i++)
    if (c->x.headers.data[i] >= 'A' && c->x.headers.data[i] <= 'Z')
      c->x.headers.data[i] = (char)(c->x.headers.data[i] - 'A' + 'a');
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  if (c->hdr_phase == 1)
    buf_append(&c->x.headers, "", 1);
  c->hdr_phase = 2;
  buf_append(&c->x.headers, at, len);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  conn_t *c = conn_of(p);
  http_exchange_t *x = &c->x;
  if (c->hdr_phase == 2)
    buf_append(&x->headers, "", 1);
  else if (c->hdr_phase == 1) /* a name without a value */
    buf_append(&x->headers, "\0", 2);
  c->hdr_phase = 0;
  const char *q = x->url.data ? memchr(x->url.data, '?', x->url.len) : NULL;
  size_t plen = q ? (size_t)(q - x->url.data) : x->url.len;
  buf_append(&x->path, x->url.data ? x->url.data : "", plen);
  x->http10 = p->http_major == 1 && p->http_minor == 0;
  if ((p->flags & F_CONTENTLENGTH) &&
      p->content_length > c->srv->cfg.max_body) {
    c->reject = 413;
    return -1;
  }
  const char *expect = http_exchange_header(x, "expect");
  if (expect && strcasecmp(expect, "100-continue") == 0 && !x->http10)
    send_str(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  if (c->x.body.len + len > c->srv->cfg.max_body) {
    c->reject = 413;
    return -1;
  }
  buf_append(&c->x.body, at, len);
  return 0;
}

static int on_message_complete(http_parser *p) {
  conn_t *c = conn_of(p);
  http_server_t *s = c->srv;
  c->x.state = X_HANDLING;
  c->x.keep_alive = http_should_keep_alive(p) && !p->upgrade && !s->stopping;
  uv_timer_stop(&c->timer);
  /* One exchange at a time: the parser resumes once this one is written. */
  http_parser_pause(p, 1);
  s->h.on_request(s->h.arg, &c->x);
  return 0;
}

/* --- accepting --- */

static void on_connection(uv_stream_t *listener, int status) {
  http_server_t *s = listener->data;
  if (status < 0) {
    log_warn("http: accept failed: %s", uv_strerror(status));
    return;
  }
  if (s->n_conns >= s->cfg.max_conns + OVER_CAP_MAX) {
    /* Not accepted: libuv stops listening until on_conn_closed does. */
    s->accept_waiting = true;
    return;
  }
  conn_t *c = xcalloc(1, sizeof *c);
  c->srv = s;
  c->x.conn = c;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  list_push_back(&s->conns, &c->link);
  s->n_conns++;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || s->stopping) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  uv_timer_start(&c->timer, on_timeout, s->cfg.request_timeout_ms, 0);
  if (s->n_conns > s->cfg.max_conns) {
    /* Answered before reading: idle connections cannot take the
     * descriptors workers and clients need. */
    static const char body[] =
        "{\"error\":{\"message\":\"too many connections\",\"type\":"
        "\"server_error\",\"param\":null,\"code\":\"unavailable\"}}";
    c->x.keep_alive = false;
    c->x.state = X_HANDLING;
    http_respond(&c->x, 503, "application/json", "Retry-After: 1\r\n", body,
                 sizeof body - 1);
    return;
  }
  start_reading(c);
}

/* The cap when none is configured: the descriptor limit less a reserve. */
static size_t default_max_conns(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur > (1u << 20))
    return 1u << 20;
  size_t limit = (size_t)rl.rlim_cur;
  size_t reserve = limit / HTTP_FD_RESERVE_SHARE;
  if (reserve < HTTP_FD_RESERVE_MIN)
    reserve = HTTP_FD_RESERVE_MIN;
  return limit > 2 * reserve ? limit - reserve : limit / 2;
}

/* Splits HOST:PORT or [HOST]:PORT; an empty host or "*" means any. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port,
                      size_t portlen) {
  const char *colon;
  const char *h = addr;
  size_t hl;
  if (addr[0] == '[') {
    const char *end = strchr(addr, ']');
    if (!end || end[1] != ':')
      return -1;
    h = addr + 1;
    hl = (size_t)(end - h);
    colon = end + 1;
  } else {
    colon = strrchr(addr, ':');
    if (!colon)
      return -1;
    hl = (size_t)(colon - addr);
  }
  if (hl >= hostlen || strlen(colon + 1) >= portlen || !colon[1])
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  strcpy(port, colon + 1);
  long n = 0;
  for (const char *d = port; *d; d++) {
    if (*d < '0' || *d > '9')
      return -1;
    if ((n = n * 10 + (*d - '0')) > 65535)
      return -1;
  }
  if (strcmp(host, "*") == 0)
    host[0] = '\0';
  return 0;
}

/* Binds and listens with plain calls, so a failure leaves no libuv handle
 * that would need the loop to run to close. Returns the fd or -errno. */
static int open_listener(const char *addr, char *bound, size_t boundlen,
                         char *err, size_t errlen) {
  char host[256], port[16];
  if (split_addr(addr, host, sizeof host, port, sizeof port)) {
    snprintf(err, errlen,
             "--http: '%s' is not HOST:PORT with PORT 0 to 65535 (e.g. "
             "127.0.0.1:8080)",
             addr);
    return -EINVAL;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
  if (gai) {
    snprintf(err, errlen, "cannot listen for HTTP on %s: %s", addr,
             gai_strerror(gai));
    return -EINVAL;
  }
  int fd =
      socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1, rc = 0;
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
      listen(fd, LISTEN_BACKLOG) != 0) {
    rc = -errno;
    snprintf(err, errlen,
             "cannot listen for HTTP on %s: %s (choose another address with "
             "--http ADDR, or --http off)",
             addr, strerror(errno));
    if (fd >= 0)
      close(fd);
    freeaddrinfo(res);
    return rc;
  }
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  int p = 0;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
      p = ntohs(a->sin6_port);
      snprintf(bound, boundlen, "[%s]:%d", ip, p);
    } else {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
      p = ntohs(a->sin_port);
      snprintf(bound, boundlen, "%s:%d", ip, p);
    }
  }
  return fd;
}

static void on_failed_closed(uv_handle_t *h) {
  http_server_t *s = h->data;
  if (--s->open_handles == 0)
    free(s);
}

int http_server_start(uv_loop_t *loop, const http_server_config_t *cfg,
                      const http_handler_t *handler, http_server_t **out,
                      char *err, size_t errlen) {
  http_server_t *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  int fd = open_listener(cfg->addr, s->addr, sizeof s->addr, err, errlen);
  if (fd < 0) {
    free(s);
    return fd;
  }
  s->loop = loop;
  s->cfg = *cfg;
  if (!s->cfg.request_timeout_ms)
    s->cfg.request_timeout_ms = HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
  if (!s->cfg.max_output)
    s->cfg.max_output = HTTP_DEFAULT_MAX_OUTPUT;
  if (!s->cfg.max_conns)
    s->cfg.max_conns = default_max_conns();
  s->h = *handler;
  list_init(&s->conns);
  s->settings = (http_parser_settings){
      .on_message_begin = on_message_begin,
      .on_url = on_url,
      .on_header_field = on_header_field,
      .on_header_value = on_header_value,
      .on_headers_complete = on_headers_complete,
      .on_body = on_body,
      .on_message_complete = on_message_complete,
  };
  uv_tcp_init(loop, &s->listener);
  uv_timer_init(loop, &s->stop_timer);
  s->listener.data = s->stop_timer.data = s;
  int rc = uv_tcp_open(&s->listener, fd);
  if (rc)
    close(fd);
  else
    rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
  if (rc) {
    /* Unlikely once listen() has succeeded. The server is freed when its
     * handles have closed, if the loop runs again. */
    snprintf(err, errlen, "cannot listen for HTTP on %s: %s", cfg->addr,
             uv_strerror(rc));
    s->open_handles = 2;
    uv_close((uv_handle_t *)&s->listener, on_failed_closed);
    uv_close((uv_handle_t *)&s->stop_timer, on_failed_closed);
    return rc;
  }
  *out = s;
  return 0;
}

const char *http_server_address(const http_server_t *s) {
  return s->addr;
}

size_t http_server_max_connections(const http_server_t *s) {
  return s->cfg.max_conns;
}

size_t http_server_connections(const http_server_t *s) {
  return s->n_conns;
}

static void on_stop_timeout(uv_timer_t *t) {
  http_server_t *s = t->data;
  for (list_node_t *n = s->conns.next; n != &s->conns; n = n->next)
    conn_close(list_entry(n, conn_t, link));
  close_stop_timer(s);
}

void http_server_stop(http_server_t *s) {
  if (!s || s->stopping)
    return;
  s->stopping = true;
  uv_close((uv_handle_t *)&s->listener, NULL);
  for (list_node_t *n = s->conns.next; n != &s->conns; n = n->next) {
    conn_t *c = list_entry(n, conn_t, link);
    /* Answers being written may finish; everything else closes now. */
    if (c->writes == 0 || c->x.state != X_ENDED)
      conn_close(c);
  }
  if (s->n_conns)
    uv_timer_start(&s->stop_timer, on_stop_timeout, STOP_LINGER_MS, 0);
  else
    close_stop_timer(s);
}

void http_server_destroy(http_server_t **ps) {
  http_server_t *s = *ps;
  if (!s)
    return;
  free(s);
  *ps = NULL;
}

/* --- exchange accessors --- */

const char *http_exchange_method(const http_exchange_t *x) {
  return http_method_str((enum http_method)x->conn->parser.method);
}

const char *http_exchange_path(const http_exchange_t *x) {
  return x->path.data ? x->path.data : "";
}

const char *http_exchange_header(const http_exchange_t *x, const char *name) {
  /* A request without headers has no buffer: NULL + 0 is undefined. */
  if (!x->headers.data)
    return NULL;
  const char *p = x->headers.data, *end = p + x->headers.len;
  while (p < end) {
    const char *value = p + strlen(p) + 1;
    if (value >= end)
      break;
    if (strcasecmp(p, name) == 0)
      return value;
    p = value + strlen(value) + 1;
  }
  return NULL;
}

const char *http_exchange_body(const http_exchange_t *x, size_t *len) {
  *len = x->body.len;
  return x->body.data ? x->body.data : "";
}

void http_exchange_set_user(http_exchange_t *x, void *user) {
  x->user = user;
}

void *http_exchange_user(const http_exchange_t *x) {
  return x->user;
}
