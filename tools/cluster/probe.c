#include "probe.h"

#include "infsched/errors.h"
#include "log.h"
#include "wire.h"
#include "zwatch.h"
#include "curve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

struct probe {
  uv_timer_t timer;
  void *ctx;
  void *sock;
  zwatch_t *watch;
  probe_cb cb;
  void *arg;
  wire_buf_t buf; /* the packed query, sent as is every time */
  log_limit_t bad_limit;
};

static void on_tick(uv_timer_t *t) {
  probe_t *p = t->data;
  /* EAGAIN means no connection yet (ZMQ_IMMEDIATE): try on the next tick. */
  zmq_send(p->sock, p->buf.data, p->buf.len, ZMQ_DONTWAIT);
}

static void on_readable(void *zsock, void *arg) {
  probe_t *p = arg;
  zmq_msg_t msg;
  for (;;) {
    /* The body is the last frame; a scheduler answering REQ-style puts an
     * empty delimiter before it. */
    int more = 1, got = 0;
    Infsched__Envelope *env = NULL;
    int rc = 0;
    while (more) {
      zmq_msg_init(&msg);
      if (zmq_msg_recv(&msg, zsock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return;
      }
      more = zmq_msg_more(&msg);
      if (!more && zmq_msg_size(&msg) > 0) {
        rc = wire_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), &env);
        got = 1;
      }
      zmq_msg_close(&msg);
    }
    if (!got)
      continue;
    if (rc == 0 && env->body_case == INFSCHED__ENVELOPE__BODY_STATUS &&
        env->status) {
      p->cb(p->arg, env->status);
    } else {
      uint64_t n = log_limit_pass(&p->bad_limit, uv_now(p->timer.loop) * 1000,
                                  10 * 1000000ull);
      if (n)
        log_warn("status probe: unexpected reply from the scheduler (%s; "
                 "%llu since the last report)",
                 rc ? infs_strerror(rc) : wire_body_name(env->body_case),
                 (unsigned long long)n);
    }
    wire_free(env);
  }
}

int probe_start(uv_loop_t *loop, const char *addr, const infs_auth_t *auth,
                uint64_t every_ms, probe_cb cb, void *arg, probe_t **out,
                char *err, size_t errlen) {
  int rc, zero = 0, one = 1;
  int64_t maxmsg = WIRE_DEFAULT_MAX_MSG;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__StatusQuery q = INFSCHED__STATUS_QUERY__INIT;

  *out = NULL;
  probe_t *p = calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  p->cb = cb;
  p->arg = arg;
  env.body_case = INFSCHED__ENVELOPE__BODY_STATUS_QUERY;
  env.status_query = &q;
  wire_pack(&env, &p->buf);

  p->ctx = zmq_ctx_new();
  if (!p->ctx) {
    rc = -errno;
    goto fail;
  }
  p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
  if (!p->sock) {
    rc = -errno;
    goto fail;
  }
  zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(p->sock, ZMQ_IMMEDIATE, &one, sizeof one);
  zmq_setsockopt(p->sock, ZMQ_SNDHWM, &one, sizeof one);
  zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
  if ((rc = curve_client(p->sock, auth, KEYS_CLIENT, err, errlen)))
    goto fail;
  if (zmq_connect(p->sock, addr) != 0) {
    rc = -errno;
    snprintf(err, errlen, "%s", zmq_strerror(errno));
    goto fail;
  }
  if ((rc = zwatch_start(loop, p->sock, on_readable, p, &p->watch)))
    goto fail;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, on_tick, 0, every_ms);
  *out = p;
  return 0;

fail:
  if (p->sock)
    zmq_close(p->sock);
  if (p->ctx)
    zmq_ctx_term(p->ctx);
  wire_buf_free(&p->buf);
  free(p);
  return rc;
}

static void on_closed(uv_handle_t *h) {
  probe_t *p = h->data;
  wire_buf_free(&p->buf);
  free(p);
}

void probe_close(probe_t **pp) {
  probe_t *p = *pp;
  if (!p)
    return;
  *pp = NULL;
  /* Closing the poll handle stops it watching ZMQ_FD at once, so the socket
   * can go now; the structs follow in the close callbacks. */
  zwatch_close(p->watch);
  p->watch = NULL;
  zmq_close(p->sock);
  zmq_ctx_term(p->ctx);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_closed);
}
