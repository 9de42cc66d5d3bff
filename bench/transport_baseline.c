#include "transport_baseline.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define HANDSHAKE_TIMEOUT_MS 10000
#define MONITOR_ADDR "inproc://echo-handshake"

static void set_queues(void *sock) {
  int hwm = BASELINE_HWM, linger = 0;
  zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
}

int baseline_run_broker(const char *front_addr, const char *back_addr) {
  int status = 1;
  void *ctx = zmq_ctx_new();
  void *front = zmq_socket(ctx, ZMQ_ROUTER);
  void *back = zmq_socket(ctx, ZMQ_DEALER);
  set_queues(front);
  set_queues(back);
  if (zmq_bind(front, front_addr) != 0) {
    fprintf(stderr, "broker: cannot bind %s: %s\n", front_addr,
            zmq_strerror(errno));
    goto out;
  }
  if (zmq_bind(back, back_addr) != 0) {
    fprintf(stderr, "broker: cannot bind %s: %s\n", back_addr,
            zmq_strerror(errno));
    goto out;
  }
  printf("broker ready: clients %s, workers %s\n", front_addr, back_addr);
  fflush(stdout);
  /* Returns only when interrupted; the bench stops it with SIGTERM. */
  zmq_proxy(front, back, NULL);
  status = 0;
out:
  zmq_close(front);
  zmq_close(back);
  zmq_ctx_term(ctx);
  return status;
}

/* Waits for the monitor to report a completed handshake: only then does
 * the broker's DEALER count this worker in its round robin. */
static int wait_handshake(void *mon) {
  zmq_pollitem_t item = {mon, 0, ZMQ_POLLIN, 0};
  for (;;) {
    if (zmq_poll(&item, 1, HANDSHAKE_TIMEOUT_MS) <= 0)
      return -1;
    zmq_msg_t ev, addr;
    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    int rc = zmq_msg_recv(&ev, mon, 0) < 0 || zmq_msg_recv(&addr, mon, 0) < 0;
    uint16_t event = 0;
    if (!rc && zmq_msg_size(&ev) >= sizeof event)
      memcpy(&event, zmq_msg_data(&ev), sizeof event);
    zmq_msg_close(&ev);
    zmq_msg_close(&addr);
    if (rc)
      return -1;
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
      return 0;
  }
}

int baseline_run_echo(const char *back_addr) {
  int status = 1;
  void *ctx = zmq_ctx_new();
  void *sock = zmq_socket(ctx, ZMQ_DEALER);
  void *mon = NULL;
  set_queues(sock);
  if (zmq_socket_monitor(sock, MONITOR_ADDR, ZMQ_EVENT_HANDSHAKE_SUCCEEDED)) {
    fprintf(stderr, "echo: cannot monitor: %s\n", zmq_strerror(errno));
    goto out;
  }
  mon = zmq_socket(ctx, ZMQ_PAIR);
  if (zmq_connect(mon, MONITOR_ADDR) != 0 ||
      zmq_connect(sock, back_addr) != 0) {
    fprintf(stderr, "echo: cannot connect %s: %s\n", back_addr,
            zmq_strerror(errno));
    goto out;
  }
  if (wait_handshake(mon) != 0) {
    fprintf(stderr, "echo: no handshake with %s within %d ms\n", back_addr,
            HANDSHAKE_TIMEOUT_MS);
    goto out;
  }
  zmq_socket_monitor(sock, NULL, 0);
  printf("echo ready: %s\n", back_addr);
  fflush(stdout);
  /* [client routing id][payload] goes back as it came; the broker's ROUTER
   * routes it by the first frame. */
  for (;;) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, 0) < 0) {
      zmq_msg_close(&m);
      if (errno == EINTR)
        continue;
      break;
    }
    int more = zmq_msg_more(&m);
    if (zmq_msg_send(&m, sock, more ? ZMQ_SNDMORE : 0) < 0)
      zmq_msg_close(&m);
  }
  status = 0;
out:
  if (mon)
    zmq_close(mon);
  zmq_close(sock);
  zmq_ctx_term(ctx);
  return status;
}
