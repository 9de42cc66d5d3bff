#include "zclient.h"

#include "clock.h"
#include "wire.h"
#include "curve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

infs_auth_t zclient_auth;

struct zclient {
  void *ctx;
  void *sock;
};

static zclient_t *open_as(const char *endpoint, const void *id, size_t len,
                          const char *role);

zclient_t *zclient_new(const char *endpoint) {
  return open_as(endpoint, NULL, 0, KEYS_CLIENT);
}

zclient_t *zclient_new_worker(const char *endpoint) {
  return open_as(endpoint, NULL, 0, KEYS_WORKER);
}

zclient_t *zclient_new_as(const char *endpoint, const void *id, size_t len) {
  return open_as(endpoint, id, len, KEYS_CLIENT);
}

static zclient_t *open_as(const char *endpoint, const void *id, size_t len,
                          const char *role) {
  zclient_t *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->ctx = zmq_ctx_new();
  c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
  int linger = 0;
  zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
  if (len)
    zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, id, len);
  char err[512];
  if (curve_client(c->sock, &zclient_auth, role, err, sizeof err)) {
    fprintf(stderr, "zclient: %s\n", err);
    zclient_destroy(&c);
    return NULL;
  }
  if (zmq_connect(c->sock, endpoint) != 0) {
    zclient_destroy(&c);
    return NULL;
  }
  return c;
}

void zclient_destroy(zclient_t **pc) {
  zclient_t *c = *pc;
  if (!c)
    return;
  zmq_close(c->sock);
  zmq_ctx_term(c->ctx);
  free(c);
  *pc = NULL;
}

int zclient_send_raw(zclient_t *c, const void *data, size_t len) {
  return zmq_send(c->sock, data, len, 0) < 0 ? -1 : 0;
}

int zclient_send(zclient_t *c, Infsched__Envelope *env, unsigned version) {
  wire_buf_t buf = {0};
  wire_pack(env, &buf);
  if (version) {
    /* Re-pack with a foreign version to test refusal. */
    env->version = version;
    buf.len = infsched__envelope__pack(env, buf.data);
  }
  int rc = zclient_send_raw(c, buf.data, buf.len);
  wire_buf_free(&buf);
  return rc;
}

int zclient_register(zclient_t *c, const char *worker_id, uint32_t capacity) {
  Infsched__Envelope reg = INFSCHED__ENVELOPE__INIT;
  Infsched__Register r = INFSCHED__REGISTER__INIT;
  Infsched__Profile prof = INFSCHED__PROFILE__INIT;
  prof.name = "gpu-h100"; /* the scheduler predicts with its own figures */
  prof.worker_class = INFSCHED__WORKER_CLASS__WORKER_CLASS_GPU;
  prof.price_per_hour = 1;
  prof.weights_gb = 10; /* 10 ms at 1 TB/s */
  prof.mem_bw_gbs = 1000;
  prof.mem_eff = 1;
  prof.params_b = 0.5; /* 0.1 ms per token at 10 TFLOP/s */
  prof.peak_tflops = 10;
  prof.mfu = 1;
  prof.max_batch = capacity;
  prof.kv_tokens = 100000;
  prof.max_context = 4096;
  prof.block_size = 16;
  r.worker_id = (char *)worker_id;
  r.profile = &prof;
  r.capacity = capacity;
  reg.body_case = INFSCHED__ENVELOPE__BODY_REGISTER;
  reg.register_ = &r;
  return zclient_send(c, &reg, 0);
}

Infsched__Envelope *zclient_recv(zclient_t *c, int timeout_ms) {
  zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&item, 1, timeout_ms) <= 0)
    return NULL;
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
    zmq_msg_close(&msg);
    return NULL;
  }
  Infsched__Envelope *env =
      infsched__envelope__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
  zmq_msg_close(&msg);
  return env;
}

bool zclient_wait_status(const char *endpoint,
                         bool (*pred)(const Infsched__Status *, void *),
                         void *arg, int timeout_ms) {
  zclient_t *c = zclient_new(endpoint);
  if (!c)
    return false;
  long long deadline = clock_ms() + timeout_ms;
  bool held = false;
  while (!held && clock_ms() < deadline) {
    Infsched__Envelope q = INFSCHED__ENVELOPE__INIT;
    Infsched__StatusQuery sq = INFSCHED__STATUS_QUERY__INIT;
    q.body_case = INFSCHED__ENVELOPE__BODY_STATUS_QUERY;
    q.status_query = &sq;
    zclient_send(c, &q, 0);
    /* The reply (or its absence within 50 ms) paces the polling. */
    Infsched__Envelope *env = zclient_recv(c, 50);
    while (env) {
      if (env->body_case == INFSCHED__ENVELOPE__BODY_STATUS)
        held = pred(env->status, arg);
      infsched__envelope__free_unpacked(env, NULL);
      env = held ? NULL : zclient_recv(c, 0);
    }
    if (!held) {
      zmq_pollitem_t none = {NULL, -1, 0, 0};
      zmq_poll(&none, 0, 50);
    }
  }
  zclient_destroy(&c);
  return held;
}

uint64_t zclient_counter(const Infsched__Status *s, const char *name) {
  for (size_t i = 0; i < s->n_counters; i++)
    if (strcmp(s->counters[i]->name, name) == 0)
      return s->counters[i]->value;
  return 0;
}

bool zclient_has_n_workers(const Infsched__Status *s, void *arg) {
  return s->n_workers == *(size_t *)arg;
}

static const Infsched__WorkerStatus *listed(const Infsched__Status *s,
                                           const char *worker_id) {
  for (size_t i = 0; i < s->n_workers; i++)
    if (strcmp(s->workers[i]->worker_id, worker_id) == 0)
      return s->workers[i];
  return NULL;
}

bool zclient_says_unhealthy(const Infsched__Status *s, void *arg) {
  const Infsched__WorkerStatus *w = listed(s, arg);
  return w && w->last_heartbeat && w->last_heartbeat->unhealthy;
}

bool zclient_says_draining(const Infsched__Status *s, void *arg) {
  const Infsched__WorkerStatus *w = listed(s, arg);
  return !w || (w->last_heartbeat && w->last_heartbeat->draining);
}
