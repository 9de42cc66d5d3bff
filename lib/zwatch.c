#include "zwatch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <zmq.h>

struct zwatch {
  uv_poll_t poll;
  uv_prepare_t prepare;
  void *sock;
  zwatch_cb cb;
  void *arg;
  int open_handles;
};

static void drain(zwatch_t *w) {
  for (;;) {
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(w->sock, ZMQ_EVENTS, &events, &len) != 0)
      return;
    if (!(events & ZMQ_POLLIN))
      return;
    w->cb(w->sock, w->arg);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  drain(h->data);
}

static void on_prepare(uv_prepare_t *h) { drain(h->data); }

int zwatch_start(uv_loop_t *loop, void *zsock, zwatch_cb cb, void *arg,
                 zwatch_t **out) {
  int fd;
  size_t len = sizeof fd;
  if (zmq_getsockopt(zsock, ZMQ_FD, &fd, &len) != 0)
    return -errno;
  zwatch_t *w = calloc(1, sizeof *w);
  if (!w)
    return -ENOMEM;
  w->sock = zsock;
  w->cb = cb;
  w->arg = arg;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc) {
    free(w);
    return rc;
  }
  uv_prepare_init(loop, &w->prepare);
  w->poll.data = w->prepare.data = w;
  w->open_handles = 2;
  uv_poll_start(&w->poll, UV_READABLE, on_poll);
  uv_prepare_start(&w->prepare, on_prepare);
  *out = w;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  zwatch_t *w = h->data;
  if (--w->open_handles == 0)
    free(w);
}

void zwatch_close(zwatch_t *w) {
  if (!w)
    return;
  uv_close((uv_handle_t *)&w->poll, on_closed);
  uv_close((uv_handle_t *)&w->prepare, on_closed);
}

int zwatch_monitor_event(void *monitor, uint16_t *event, char *endpoint,
                         size_t len) {
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  if (zmq_msg_recv(&msg, monitor, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&msg);
    return -1;
  }
  *event = 0;
  if (zmq_msg_size(&msg) >= sizeof *event)
    memcpy(event, zmq_msg_data(&msg), sizeof *event);
  if (endpoint && len)
    endpoint[0] = '\0';
  /* The second frame names the endpoint. */
  while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, monitor, 0) >= 0)
    if (endpoint && len)
      snprintf(endpoint, len, "%.*s", (int)zmq_msg_size(&msg),
               (const char *)zmq_msg_data(&msg));
  zmq_msg_close(&msg);
  return 0;
}
