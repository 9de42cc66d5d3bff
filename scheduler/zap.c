#include "zap.h"

#include "clock.h"
#include "log.h"
#include "zwatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* version, request id, domain, address, routing id, mechanism, then the
 * mechanism's credentials (CURVE: one, the 32-byte public key). */
#define ZAP_FRAMES 7
#define ZAP_FRAME_MAX 256

struct zap {
  void *sock;
  zwatch_t *watch;
  const keyring_t *workers;
  const keyring_t *clients;
  uint64_t refused;
  log_limit_t refused_log;
};

typedef struct frame {
  uint8_t data[ZAP_FRAME_MAX];
  size_t len;
} frame_t;

/* Receives one request's frames (at most ZAP_FRAMES kept). Returns how
 * many it had, or 0 when there was none. */
static int recv_request(void *sock, frame_t *f) {
  int n = 0, more = 1;
  size_t more_len = sizeof more;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
      zmq_msg_close(&m);
      return n;
    }
    if (n < ZAP_FRAMES) {
      size_t len = zmq_msg_size(&m);
      f[n].len = len < ZAP_FRAME_MAX ? len : ZAP_FRAME_MAX;
      memcpy(f[n].data, zmq_msg_data(&m), f[n].len);
    }
    n++;
    zmq_msg_close(&m);
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_len);
  }
  return n;
}

static bool frame_is(const frame_t *f, const char *s) {
  return f->len == strlen(s) && memcmp(f->data, s, f->len) == 0;
}

static void reply(void *sock, const frame_t *request_id, const char *status,
                  const char *text, const char *user) {
  zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
  zmq_send(sock, request_id->data, request_id->len, ZMQ_SNDMORE);
  zmq_send(sock, status, strlen(status), ZMQ_SNDMORE);
  zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
  zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
  zmq_send(sock, "", 0, 0);
}

static void on_request(void *sock, void *arg) {
  zap_t *z = arg;
  frame_t f[ZAP_FRAMES];
  int n;
  while ((n = recv_request(sock, f)) > 0) {
    if (n < 2)
      f[1].len = 0; /* answered all the same: a REP socket must answer */
    char key[KEYS_Z85_LEN + 1] = "";
    bool curve = n == ZAP_FRAMES && frame_is(&f[0], "1.0") &&
                 frame_is(&f[5], "CURVE") && f[6].len == 32 &&
                 zmq_z85_encode(key, f[6].data, 32);
    const keyring_t *ring = NULL;
    if (n > 2 && frame_is(&f[2], ZAP_WORKERS))
      ring = z->workers;
    else if (n > 2 && frame_is(&f[2], ZAP_CLIENTS))
      ring = z->clients;
    if (curve && ring && keyring_allows(ring, key)) {
      reply(sock, &f[1], "200", "OK", key);
      continue;
    }
    z->refused++;
    reply(sock, &f[1], "400", curve ? "key not admitted" : "not CURVE", "");
    uint64_t held = log_limit_pass(&z->refused_log, clock_us(), INFS_US_PER_S);
    if (held) {
      char addr[64] = "?";
      if (n > 3)
        snprintf(addr, sizeof addr, "%.*s", (int)f[3].len, (char *)f[3].data);
      log_warn("handshake from %s on the %.*s port refused: %s%s (%llu "
               "refusals in this second)",
               addr, n > 2 ? (int)f[2].len : 1,
               n > 2 ? (const char *)f[2].data : "?",
               curve ? "key not admitted: " : "not CURVE", curve ? key : "",
               (unsigned long long)held);
    }
  }
}

int zap_start(uv_loop_t *loop, void *zctx, const keyring_t *workers,
              const keyring_t *clients, zap_t **out, char *err,
              size_t errlen) {
  zap_t *z = calloc(1, sizeof *z);
  if (!z)
    return -ENOMEM;
  z->workers = workers;
  z->clients = clients;
  int linger = 0, rc;
  z->sock = zmq_socket(zctx, ZMQ_REP);
  if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) ||
      zmq_bind(z->sock, ZAP_ENDPOINT)) {
    rc = -errno;
    snprintf(err, errlen, "cannot bind the ZAP handler %s: %s", ZAP_ENDPOINT,
             zmq_strerror(errno));
    goto fail;
  }
  if ((rc = zwatch_start(loop, z->sock, on_request, z, &z->watch))) {
    snprintf(err, errlen, "cannot watch the ZAP handler: %s", uv_strerror(rc));
    goto fail;
  }
  *out = z;
  return 0;
fail:
  if (z->sock)
    zmq_close(z->sock);
  free(z);
  return rc;
}

void zap_stop(zap_t *z) {
  if (z && z->watch) {
    zwatch_close(z->watch);
    z->watch = NULL;
  }
}

void zap_destroy(zap_t **pz) {
  zap_t *z = *pz;
  if (!z)
    return;
  zap_stop(z);
  zmq_close(z->sock);
  free(z);
  *pz = NULL;
}

uint64_t zap_refused(const zap_t *z) {
  return z ? z->refused : 0;
}
