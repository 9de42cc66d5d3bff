#include "infsched/client.h"

#include "infsched/errors.h"
#include "lib/log.h"
#include "lib/wire.h"
#include "lib/zwatch.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <zmq.h>

struct client {
  void *sock;
  zwatch_t *watch;
  uv_loop_t *loop;
  client_events_t ev;
  void *arg;
  wire_buf_t buf; /* reused for every message sent */
  uint64_t bad;
  log_limit_t bad_log;
  bool in_callback; /* destroying now would pull the socket from under the
                       receive loop */
};

static void count_bad(client_t *c, const char *why) {
  c->bad++;
  uint64_t n = log_limit_pass(&c->bad_log, uv_now(c->loop) * INFS_US_PER_MS,
                              5 * INFS_US_PER_S);
  if (n)
    log_warn("scheduler sent a bad message (%s); %llu in this interval", why,
             (unsigned long long)n);
}

static void dispatch(client_t *c, const Infsched__Envelope *env) {
  const client_events_t *ev = &c->ev;
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_ACCEPTED:
    if (ev->on_accepted)
      ev->on_accepted(c->arg, env->accepted->request_id);
    break;
  case INFSCHED__ENVELOPE__BODY_CHUNK:
    if (ev->on_chunk)
      ev->on_chunk(c->arg, env->chunk);
    break;
  case INFSCHED__ENVELOPE__BODY_DONE:
    if (ev->on_done)
      ev->on_done(c->arg, env->done);
    break;
  case INFSCHED__ENVELOPE__BODY_ERROR:
    if (env->error->code != INFSCHED__ERROR_CODE__ERROR_DUPLICATE) {
      if (ev->on_error)
        ev->on_error(c->arg, env->error);
    } else if (ev->on_refused) {
      ev->on_refused(c->arg, env->error);
    } else {
      log_warn("submit of request %llu refused: %s",
               (unsigned long long)env->error->request_id,
               env->error->message ? env->error->message : "");
    }
    break;
  case INFSCHED__ENVELOPE__BODY_STATUS:
    if (ev->on_status)
      ev->on_status(c->arg, env->status);
    break;
  default:
    count_bad(c, wire_body_name(env->body_case));
    break;
  }
}

/* Receives until EAGAIN: ZMQ_FD is edge-triggered. */
static void on_readable(void *zsock, void *arg) {
  client_t *c = arg;
  zmq_msg_t msg;
  c->in_callback = true;
  for (;;) {
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, zsock, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      break;
    }
    if (zmq_msg_more(&msg)) {
      /* A scheduler speaks single frames to DEALERs; skip the rest. */
      while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, zsock, 0) >= 0)
        ;
      zmq_msg_close(&msg);
      count_bad(c, "multi-frame message");
      continue;
    }
    Infsched__Envelope *env = NULL;
    int rc = wire_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), &env);
    zmq_msg_close(&msg);
    if (rc) {
      count_bad(c, infs_strerror(rc));
      continue;
    }
    dispatch(c, env);
    wire_free(env);
  }
  c->in_callback = false;
}

int client_new(uv_loop_t *loop, void *zctx, const char *endpoint,
               const client_events_t *ev, void *arg, client_t **out) {
  int rc = 0;
  *out = NULL;
  client_t *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->loop = loop;
  c->ev = *ev;
  c->arg = arg;
  c->sock = zmq_socket(zctx, ZMQ_DEALER);
  if (!c->sock) {
    rc = -errno;
    goto fail;
  }
  /* An open-loop client must never block or drop: requests leave on
   * schedule, and its accounting assumes every submit was queued. */
  int zero = 0;
  int64_t maxmsg = WIRE_DEFAULT_MAX_MSG;
  if (zmq_setsockopt(c->sock, ZMQ_SNDHWM, &zero, sizeof zero) ||
      zmq_setsockopt(c->sock, ZMQ_RCVHWM, &zero, sizeof zero) ||
      zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
      zmq_connect(c->sock, endpoint)) {
    rc = -errno;
    goto fail;
  }
  rc = zwatch_start(loop, c->sock, on_readable, c, &c->watch);
  if (rc)
    goto fail;
  *out = c;
  return 0;
fail:
  if (c->sock) {
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(c->sock);
  }
  free(c);
  return rc;
}

void client_destroy(client_t **cp, int linger_ms) {
  if (!cp || !*cp)
    return;
  client_t *c = *cp;
  assert(!c->in_callback);
  zwatch_close(c->watch);
  zmq_setsockopt(c->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
  zmq_close(c->sock);
  wire_buf_free(&c->buf);
  free(c);
  *cp = NULL;
}

static int send_env(client_t *c, Infsched__Envelope *env) {
  wire_pack(env, &c->buf);
  if (zmq_send(c->sock, c->buf.data, c->buf.len, ZMQ_DONTWAIT) < 0)
    return -errno;
  return 0;
}

int client_submit(client_t *c, const client_request_t *r) {
  Infsched__Request req = INFSCHED__REQUEST__INIT;
  req.request_id = r->id;
  req.model = (char *)(r->model ? r->model : "");
  req.prompt = (char *)(r->prompt ? r->prompt : "");
  req.prompt_tokens = r->prompt_tokens;
  req.max_tokens = r->max_tokens;
  /* The wire enum keeps 0 for "unspecified"; infs_class_t starts at 0. */
  req.req_class = (Infsched__RequestClass)(r->cls + 1);
  req.ttft_ms = r->ttft_ms;
  req.ttft_ms_per_ktok = r->ttft_ms_per_ktok;
  req.tpot_ms = r->tpot_ms;
  req.session_id = (char *)(r->session ? r->session : "");
  req.n_block_hashes = r->n_blocks;
  req.block_hashes = (uint64_t *)r->blocks;
  Infsched__Submit submit = INFSCHED__SUBMIT__INIT;
  submit.request = &req;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  env.submit = &submit;
  return send_env(c, &env);
}

int client_cancel(client_t *c, uint64_t request_id) {
  Infsched__Cancel cancel = INFSCHED__CANCEL__INIT;
  cancel.request_id = request_id;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_CANCEL;
  env.cancel = &cancel;
  return send_env(c, &env);
}

int client_query_status(client_t *c) {
  Infsched__StatusQuery q = INFSCHED__STATUS_QUERY__INIT;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_STATUS_QUERY;
  env.status_query = &q;
  return send_env(c, &env);
}

uint64_t client_bad_messages(const client_t *c) {
  return c->bad;
}
