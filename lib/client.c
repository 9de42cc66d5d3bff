#include "infsched/client.h"

#include "infsched/errors.h"
#include "log.h"
#include "slots.h"
#include "wire.h"
#include "xalloc.h"
#include "zwatch.h"
#include "curve.h"

#include "u64map.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ROUTING_ID_BYTES 16

/* An open request: what a resubmit needs. */
typedef struct open_req {
  uint64_t id;
  uint8_t *packed; /* the Request as first sent */
  size_t packed_len;
  uint32_t tokens; /* received in chunks */
  char *text;      /* their text */
  size_t text_len;
  size_t text_cap;
  /* Submitted while the connection was down: the socket keeps the Submit
   * and sends it on the next connection, so a resubmit there would only
   * follow it, and run the request a second time had it ended already. */
  bool held;
} open_req_t;

struct client {
  void *sock;
  zwatch_t *watch;
  void *monitor; /* PAIR receiving the socket's connection events */
  zwatch_t *monitor_watch;
  bool lost;     /* the connection went down since the last resubmit */
  open_req_t *open; /* by slot; by_id maps a request id to its slot */
  slots_t table;
  u64map_t by_id;
  uint64_t resubmits;
  uv_loop_t *loop;
  client_events_t ev;
  void *arg;
  wire_buf_t buf; /* reused for every message sent */
  uint64_t bad;
  log_limit_t bad_log;
  log_limit_t handshake_log;
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

static open_req_t *open_get(client_t *c, uint64_t id) {
  uint32_t slot;
  return u64map_get(&c->by_id, id, &slot) ? &c->open[slot] : NULL;
}

static void open_remove(client_t *c, uint64_t id) {
  uint32_t slot;
  if (!u64map_get(&c->by_id, id, &slot))
    return;
  u64map_del(&c->by_id, id);
  free(c->open[slot].packed);
  free(c->open[slot].text);
  memset(&c->open[slot], 0, sizeof c->open[slot]);
  slots_put(&c->table, slot);
}

/* Keeps a submitted request until its terminal answer. A second submit of
 * an open id keeps the first's record (the scheduler refuses the second as
 * a duplicate), so what the first has received survives a reconnect. */
static void open_add(client_t *c, const Infsched__Request *req) {
  if (open_get(c, req->request_id))
    return;
  uint32_t slot;
  size_t had = slots_take(&c->table, 64, &slot);
  if (had < c->table.cap)
    c->open = xrecallocarray(c->open, had, c->table.cap, sizeof *c->open);
  open_req_t *o = &c->open[slot];
  o->id = req->request_id;
  o->packed_len = infsched__request__get_packed_size(req);
  o->packed = xmalloc(o->packed_len ? o->packed_len : 1);
  infsched__request__pack(req, o->packed);
  o->held = c->lost;
  u64map_put(&c->by_id, o->id, slot);
}

static void note_chunk(client_t *c, const Infsched__Chunk *ch) {
  open_req_t *o = open_get(c, ch->request_id);
  size_t len = ch->text ? strlen(ch->text) : 0;
  if (!o)
    return;
  o->tokens += ch->tokens;
  if (o->text_len + len + 1 > o->text_cap) {
    size_t cap = o->text_cap ? o->text_cap : 256;
    while (cap < o->text_len + len + 1)
      cap *= 2;
    o->text = xrealloc(o->text, cap);
    o->text_cap = cap;
  }
  memcpy(o->text + o->text_len, ch->text ? ch->text : "", len);
  o->text_len += len;
  o->text[o->text_len] = '\0';
}

static void dispatch(client_t *c, const Infsched__Envelope *env) {
  const client_events_t *ev = &c->ev;
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_ACCEPTED:
    if (ev->on_accepted)
      ev->on_accepted(c->arg, env->accepted->request_id);
    break;
  case INFSCHED__ENVELOPE__BODY_CHUNK:
    note_chunk(c, env->chunk);
    if (ev->on_chunk)
      ev->on_chunk(c->arg, env->chunk);
    break;
  case INFSCHED__ENVELOPE__BODY_DONE:
    open_remove(c, env->done->request_id);
    if (ev->on_done)
      ev->on_done(c->arg, env->done);
    break;
  case INFSCHED__ENVELOPE__BODY_ERROR:
    if (env->error->code != INFSCHED__ERROR_CODE__ERROR_DUPLICATE)
      open_remove(c, env->error->request_id);
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

static int send_env(client_t *c, Infsched__Envelope *env);

/* Submits every open request again, with what has been received of it. */
static void resubmit_all(client_t *c) {
  size_t n = 0;
  for (size_t i = 0; i < c->table.cap; i++) {
    open_req_t *o = &c->open[i];
    uint32_t slot;
    if (!o->packed || !u64map_get(&c->by_id, o->id, &slot) ||
        slot != i)
      continue;
    if (o->held) {
      o->held = false; /* sent now, on this connection */
      continue;
    }
    Infsched__Request *req =
        infsched__request__unpack(NULL, o->packed_len, o->packed);
    if (!req)
      continue;
    Infsched__Submit submit = INFSCHED__SUBMIT__INIT;
    submit.request = req;
    submit.resubmit = true;
    submit.resume_tokens = o->tokens;
    submit.resume_text = o->text ? o->text : (char *)"";
    Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
    env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
    env.submit = &submit;
    if (send_env(c, &env) == 0)
      n++;
    infsched__request__free_unpacked(req, NULL);
  }
  c->resubmits += n;
  if (n)
    log_warn("scheduler connection back: %zu open requests submitted again",
             n);
}

/* The socket's connection events: a connection after a loss is a new
 * scheduler, or the same one after a cut, and either way it may not know
 * (all of) what is open. */
static void on_monitor(void *zsock, void *arg) {
  client_t *c = arg;
  uint16_t event;
  while (zwatch_monitor_event(zsock, &event, NULL, 0) == 0) {
    const char *why = curve_handshake_failure(event);
    if (why && log_limit_pass(&c->handshake_log,
                              uv_now(c->loop) * INFS_US_PER_MS, INFS_US_PER_S))
      log_warn("scheduler: %s", why);
    if (event == ZMQ_EVENT_DISCONNECTED) {
      c->lost = true;
    } else if (event == ZMQ_EVENT_CONNECTED && c->lost) {
      c->lost = false;
      resubmit_all(c);
    }
  }
}

/* A routing id of the client's own, so that a restarted scheduler knows it
 * as the last one did. */
static int set_routing_id(void *sock) {
  uint8_t id[ROUTING_ID_BYTES];
  int rc = uv_random(NULL, NULL, id, sizeof id, 0, NULL);
  if (rc)
    return rc;
  id[0] |= 1; /* ids starting with a zero byte are ZeroMQ's own */
  return zmq_setsockopt(sock, ZMQ_ROUTING_ID, id, sizeof id) ? -errno : 0;
}

static int start_monitor(client_t *c, void *zctx) {
  char addr[64];
  snprintf(addr, sizeof addr, "inproc://infsched-client-%p", (void *)c);
  if (zmq_socket_monitor(c->sock, addr,
                         ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                             CURVE_HANDSHAKE_FAILURES))
    return -errno;
  c->monitor = zmq_socket(zctx, ZMQ_PAIR);
  if (!c->monitor || zmq_connect(c->monitor, addr))
    return -errno;
  return zwatch_start(c->loop, c->monitor, on_monitor, c, &c->monitor_watch);
}

int client_new(uv_loop_t *loop, void *zctx, const char *endpoint,
               const infs_auth_t *auth, const client_events_t *ev, void *arg,
               client_t **out) {
  int rc = 0, zero = 0;
  *out = NULL;
  client_t *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->loop = loop;
  c->ev = *ev;
  c->arg = arg;
  u64map_init(&c->by_id);
  c->sock = zmq_socket(zctx, ZMQ_DEALER);
  if (!c->sock) {
    rc = -errno;
    goto fail;
  }
  char err[PATH_MAX + 512];
  if ((rc = curve_client(c->sock, auth, KEYS_CLIENT, err, sizeof err))) {
    log_error("%s", err);
    goto fail;
  }
  if ((rc = set_routing_id(c->sock)) || (rc = start_monitor(c, zctx)))
    goto fail;
  /* An open-loop client must never block or drop: requests leave on
   * schedule, and its accounting assumes every submit was queued. */
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
  if (c->monitor_watch)
    zwatch_close(c->monitor_watch);
  if (c->monitor) {
    zmq_setsockopt(c->monitor, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(c->monitor);
  }
  if (c->sock) {
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(c->sock);
  }
  u64map_free(&c->by_id);
  free(c);
  return rc;
}

void client_destroy(client_t **cp, int linger_ms) {
  if (!cp || !*cp)
    return;
  client_t *c = *cp;
  assert(!c->in_callback);
  zwatch_close(c->watch);
  zwatch_close(c->monitor_watch);
  zmq_socket_monitor(c->sock, NULL, 0);
  int zero = 0;
  zmq_setsockopt(c->monitor, ZMQ_LINGER, &zero, sizeof zero);
  zmq_close(c->monitor);
  zmq_setsockopt(c->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
  zmq_close(c->sock);
  wire_buf_free(&c->buf);
  for (size_t i = 0; i < c->table.cap; i++) {
    free(c->open[i].packed);
    free(c->open[i].text);
  }
  free(c->open);
  slots_free(&c->table);
  u64map_free(&c->by_id);
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
  int rc = send_env(c, &env);
  if (rc == 0)
    open_add(c, &req);
  return rc;
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

uint64_t client_resubmits(const client_t *c) {
  return c->resubmits;
}

uint64_t client_bad_messages(const client_t *c) {
  return c->bad;
}
