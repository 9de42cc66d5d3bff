/* A small HTTP/1.1 server on a libuv loop, with http-parser: keep-alive,
 * pipelined requests answered in order, bodies up to a limit (413 beyond,
 * checked against Content-Length before the body is read, and answering
 * "Expect: 100-continue"), plain and chunked streaming responses. A slow
 * client cannot stall the loop: writes are queued, and a client whose queue
 * passes max_output, or whose request is not complete within the request
 * timeout, is disconnected. */
#ifndef INFSCHED_HTTP_SERVER_H
#define INFSCHED_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server_t;
/* One request and its response on a connection. */
typedef struct http_exchange http_exchange_t;

typedef struct http_handler {
  void *arg;
  /* A complete request arrived. Answer now or later through x, which stays
   * valid until the response ends or on_abort is called for it. */
  void (*on_request)(void *arg, http_exchange_t *x);
  /* The connection of an unanswered exchange closed (client gone or too
   * slow, or the server stopping); x is invalid afterwards. Called from a
   * libuv close callback, never from inside an http_* call. */
  void (*on_abort)(void *arg, http_exchange_t *x);
  /* A response was sent with status (for counters); may be NULL. */
  void (*on_status)(void *arg, const http_exchange_t *x, int status);
} http_handler_t;

typedef struct http_server_config {
  const char *addr;            /* HOST:PORT, [V6]:PORT; port 0 picks one */
  size_t max_body;             /* bytes; larger request bodies get 413 */
  uint32_t request_timeout_ms; /* idle or incomplete request: disconnect */
  size_t max_output;           /* bytes queued for one client */
  /* Connections open at once; past them a new one is answered 503 and
   * closed. 0: the descriptor limit less HTTP_FD_RESERVE_SHARE of it, kept
   * for the process's other sockets (workers and ZeroMQ clients). */
  size_t max_conns;
} http_server_config_t;

#define HTTP_FD_RESERVE_SHARE 4 /* a quarter */
#define HTTP_FD_RESERVE_MIN 64

#define HTTP_DEFAULT_REQUEST_TIMEOUT_MS 60000
#define HTTP_DEFAULT_MAX_OUTPUT (16u << 20)

/* Binds and listens. Returns 0, or a negative errno with a reason in err
 * (nothing is left open then). */
int http_server_start(uv_loop_t *loop, const http_server_config_t *cfg,
                      const http_handler_t *handler, http_server_t **out,
                      char *err, size_t errlen);
/* The bound address as HOST:PORT. */
const char *http_server_address(const http_server_t *s);
size_t http_server_connections(const http_server_t *s);
/* The connection cap in force (max_conns, or the one derived). */
size_t http_server_max_connections(const http_server_t *s);
/* Stops accepting, lets responses being written finish for up to a second,
 * then closes every connection (aborting unanswered exchanges). */
void http_server_stop(http_server_t *s);
/* Frees the server once its loop has finished. */
void http_server_destroy(http_server_t **s);

/* --- the request of an exchange --- */
const char *http_exchange_method(const http_exchange_t *x); /* "GET" */
const char *http_exchange_path(const http_exchange_t *x);   /* no query */
/* Value of a request header (name is case-insensitive), or NULL. */
const char *http_exchange_header(const http_exchange_t *x, const char *name);
const char *http_exchange_body(const http_exchange_t *x, size_t *len);
void http_exchange_set_user(http_exchange_t *x, void *user);
void *http_exchange_user(const http_exchange_t *x);

/* --- responding; extra_headers is NULL or lines each ending in CRLF --- */
/* Sends a whole response and ends the exchange. */
void http_respond(http_exchange_t *x, int status, const char *content_type,
                  const char *extra_headers, const char *body, size_t len);
/* Starts a streamed response (chunked, or close-delimited for HTTP/1.0). */
void http_stream_begin(http_exchange_t *x, int status, const char *content_type,
                       const char *extra_headers);
void http_stream_write(http_exchange_t *x, const char *data, size_t len);
/* Ends a streamed response and the exchange. */
void http_stream_end(http_exchange_t *x);

const char *http_status_text(int status);

#endif
