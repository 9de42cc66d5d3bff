#include "transport_client.h"

#include "clock.h"
#include "hist.h"
#include "wire.h"
#include "wire_arena.h"
#include "xalloc.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <zmq.h>

/* Send times by request id modulo the ring size. Outstanding requests are
 * held below half of it, so a live slot is never overwritten. */
#define RING_BITS 18
#define RING_SIZE (1u << RING_BITS)
#define RING_MASK (RING_SIZE - 1)
#define MAX_OUTSTANDING (RING_SIZE / 2)
#define DRAIN_NS 5000000000LL
#define NS_PER_S 1000000000LL
#define CLIENT_HWM 1000000
/* Longest sleep in one wait, so the end of a phase is noticed in time. */
#define MAX_WAIT_NS 100000000LL

typedef struct slot {
  uint64_t id; /* 0: free */
  int64_t sent_ns;
} slot_t;

struct tclient {
  tclient_peer_t peer;
  void *ctx;
  void *sock;
  int fd;
  char *prompt;
  Infsched__Envelope env;
  Infsched__Submit submit;
  Infsched__Request req;
  wire_buf_t buf;
  wire_arena_t *arena; /* answers are decoded as the scheduler does */
  slot_t *ring;
  hist_t *rtt; /* nanoseconds */
  uint64_t next_id;
  uint64_t sent_total;
  uint64_t completed_total;
  uint64_t outstanding;
  /* The counted interval of the current run and what fell in it. */
  int64_t count_from;
  int64_t count_until;
  uint64_t counted;
  uint64_t counted_errors;
  uint64_t answers; /* any answer in this run, to tell "no peer" apart */
  uint64_t max_outstanding; /* while counting */
};

/* One Submit of an agent-class request for one output token; the request
 * id is set per send. Token count: about four bytes of text per token. */
static void fill_submit(Infsched__Envelope *env, Infsched__Submit *submit,
                        Infsched__Request *req, char *prompt, uint32_t size) {
  infsched__request__init(req);
  req->prompt = prompt;
  req->prompt_tokens = size / 4 > 0 ? size / 4 : 1;
  req->max_tokens = 1;
  req->req_class = INFSCHED__REQUEST_CLASS__CLASS_AGENT;
  infsched__submit__init(submit);
  submit->request = req;
  infsched__envelope__init(env);
  env->body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  env->submit = submit;
  env->version = WIRE_VERSION;
}

size_t tclient_request_bytes(uint32_t size) {
  Infsched__Envelope env;
  Infsched__Submit submit;
  Infsched__Request req;
  char *prompt = xmalloc((size_t)size + 1);
  memset(prompt, 'x', size);
  prompt[size] = '\0';
  fill_submit(&env, &submit, &req, prompt, size);
  /* Ids of the measured range take the same varint bytes as this one. */
  req.request_id = 100000;
  size_t n = infsched__envelope__get_packed_size(&env);
  free(prompt);
  return n;
}

tclient_t *tclient_new(const char *endpoint, tclient_peer_t peer, uint32_t size,
                       char *err, size_t errlen) {
  tclient_t *c = xcalloc(1, sizeof *c);
  c->peer = peer;
  c->prompt = malloc((size_t)size + 1);
  c->ring = calloc(RING_SIZE, sizeof *c->ring);
  c->rtt = hist_new();
  c->arena = wire_arena_new();
  if (!c->prompt || !c->ring || !c->rtt || !c->arena)
    abort();
  memset(c->prompt, 'x', size);
  c->prompt[size] = '\0';

  fill_submit(&c->env, &c->submit, &c->req, c->prompt, size);

  c->ctx = zmq_ctx_new();
  c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
  int hwm = CLIENT_HWM, linger = 0;
  zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
  size_t len = sizeof c->fd;
  if (zmq_getsockopt(c->sock, ZMQ_FD, &c->fd, &len) != 0 ||
      zmq_connect(c->sock, endpoint) != 0) {
    snprintf(err, errlen, "cannot connect to %s: %s", endpoint,
             zmq_strerror(errno));
    tclient_destroy(&c);
    return NULL;
  }
  return c;
}

void tclient_destroy(tclient_t **pc) {
  tclient_t *c = *pc;
  if (!c)
    return;
  if (c->sock)
    zmq_close(c->sock);
  if (c->ctx)
    zmq_ctx_term(c->ctx);
  wire_buf_free(&c->buf);
  wire_arena_destroy(&c->arena);
  hist_destroy(&c->rtt);
  free(c->ring);
  free(c->prompt);
  free(c);
  *pc = NULL;
}

uint64_t tclient_completed_total(const tclient_t *c) {
  return c->completed_total;
}

/* Returns 0, or -1 when the socket would block (the caller retries). */
static int send_one(tclient_t *c) {
  uint64_t id = c->next_id + 1;
  c->req.request_id = id;
  wire_pack(&c->env, &c->buf);
  int64_t t = clock_ns();
  if (zmq_send(c->sock, c->buf.data, c->buf.len, ZMQ_DONTWAIT) < 0)
    return -1;
  c->next_id = id;
  c->ring[id & RING_MASK] = (slot_t){id, t};
  c->sent_total++;
  c->outstanding++;
  if (c->outstanding > c->max_outstanding && t >= c->count_from &&
      t < c->count_until)
    c->max_outstanding = c->outstanding;
  return 0;
}

static void complete(tclient_t *c, uint64_t id, bool ok, int64_t t) {
  slot_t *s = &c->ring[id & RING_MASK];
  if (id == 0 || s->id != id)
    return; /* an answer to a request already given up on */
  s->id = 0;
  c->outstanding--;
  if (ok)
    c->completed_total++;
  if (t < c->count_from || t >= c->count_until)
    return;
  if (!ok) {
    c->counted_errors++;
    return;
  }
  c->counted++;
  hist_record(c->rtt, (uint64_t)(t - s->sent_ns));
}

static void on_answer(tclient_t *c, const uint8_t *data, size_t len,
                      int64_t t) {
  Infsched__Envelope *env;
  if (wire_unpack_in(c->arena, data, len, &env) != 0) {
    wire_arena_reset(c->arena);
    return;
  }
  c->answers++;
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_SUBMIT:
    /* The echo of our own request. */
    if (c->peer == TCLIENT_ECHO && env->submit->request)
      complete(c, env->submit->request->request_id, true, t);
    break;
  case INFSCHED__ENVELOPE__BODY_DONE:
    complete(c, env->done->request_id, true, t);
    break;
  case INFSCHED__ENVELOPE__BODY_ERROR:
    complete(c, env->error->request_id, false, t);
    break;
  default: /* Accepted and Chunk: the round trip ends at Done. */
    break;
  }
  wire_arena_reset(c->arena);
}

/* Receives everything queued; returns how many messages came. */
static int recv_all(tclient_t *c) {
  int n = 0;
  for (;;) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      return n;
    }
    on_answer(c, zmq_msg_data(&m), zmq_msg_size(&m), clock_ns());
    zmq_msg_close(&m);
    n++;
  }
}

/* Sleeps until the socket may be readable or timeout_ns passes. ZMQ_FD is
 * edge-triggered, so ZMQ_EVENTS is asked first: a send may have queued
 * answers without a new edge. ppoll rather than zmq_poll for microsecond
 * timeouts, which the open loop's spacing needs. */
static void wait_readable(tclient_t *c, int64_t timeout_ns) {
  int events = 0;
  size_t len = sizeof events;
  if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) == 0 &&
      (events & ZMQ_POLLIN))
    return;
  if (timeout_ns <= 0)
    return;
  if (timeout_ns > MAX_WAIT_NS)
    timeout_ns = MAX_WAIT_NS;
  struct pollfd p = {c->fd, POLLIN, 0};
  struct timespec ts = {timeout_ns / NS_PER_S, timeout_ns % NS_PER_S};
  ppoll(&p, 1, &ts, NULL);
}

/* Gives up on every unanswered request: a late answer is then ignored. */
static void forget_outstanding(tclient_t *c) {
  for (size_t i = 0; i < RING_SIZE; i++)
    c->ring[i].id = 0;
  c->outstanding = 0;
}

/* Sends what the run allows now; returns false once it must stop sending. */
static bool send_due(tclient_t *c, const tclient_run_t *run, int64_t now,
                     int64_t *next_send, int64_t interval, uint64_t *held) {
  if (run->window) {
    while (c->outstanding < run->window &&
           (!run->until_sent || c->sent_total < run->until_sent))
      if (send_one(c) != 0)
        break;
    return !run->until_sent || c->sent_total < run->until_sent;
  }
  while (*next_send <= now) {
    if (c->outstanding >= MAX_OUTSTANDING)
      (*held)++;
    else if (send_one(c) != 0)
      break; /* retried at the same slot after the next wait */
    *next_send += interval;
  }
  return true;
}

int tclient_run(tclient_t *c, const tclient_run_t *run, tclient_result_t *out) {
  uint64_t held = 0, lost = 0, completed_before = c->completed_total;
  int64_t start = clock_ns();
  int64_t interval = run->window ? 0 : (int64_t)(NS_PER_S / run->rate);
  int64_t next_send = start, stop_at, drain_until = 0;
  bool sending = true;

  if (interval < 1)
    interval = 1;
  hist_reset(c->rtt);
  c->counted = c->counted_errors = c->answers = c->max_outstanding = 0;
  if (run->window && run->until_sent) {
    c->count_from = start;
    c->count_until = INT64_MAX;
    stop_at = INT64_MAX;
  } else {
    c->count_from = start + (int64_t)(run->warmup_s * NS_PER_S);
    c->count_until = c->count_from + (int64_t)(run->duration_s * NS_PER_S);
    stop_at = c->count_until;
  }
  /* Timer slack would add tens of microseconds to every paced send; the
   * old value comes back before processes are started again. */
  int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);

  for (;;) {
    int64_t now = clock_ns();
    if (sending && now >= stop_at)
      sending = false;
    if (sending)
      sending = send_due(c, run, now, &next_send, interval, &held);
    if (!sending && !drain_until)
      drain_until = now + DRAIN_NS;
    int got = recv_all(c);
    if (!sending && c->outstanding == 0)
      break;
    if (!sending && now >= drain_until) {
      lost = c->outstanding;
      forget_outstanding(c);
      break;
    }
    if (got)
      continue;
    int64_t wake = !sending ? drain_until : run->window ? stop_at : next_send;
    wait_readable(c, wake - clock_ns());
  }
  int64_t end = clock_ns();
  if (slack > 0)
    prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);

  memset(out, 0, sizeof *out);
  out->completed = c->counted;
  out->errors = c->counted_errors;
  out->lost = lost;
  out->held = held;
  out->max_outstanding = c->max_outstanding;
  int64_t until = c->count_until < end ? c->count_until : end;
  out->seconds = (double)(until - c->count_from) / NS_PER_S;
  out->rate = out->seconds > 0 ? (double)out->completed / out->seconds : 0;
  out->p50_us = (double)hist_quantile(c->rtt, 0.50) / 1e3;
  out->p90_us = (double)hist_quantile(c->rtt, 0.90) / 1e3;
  out->p99_us = (double)hist_quantile(c->rtt, 0.99) / 1e3;
  out->max_us = (double)hist_max(c->rtt) / 1e3;
  /* Answers without a single completion (only errors, say) mean the path
   * does not work, and its figures would mean nothing. */
  return c->completed_total > completed_before ? 0 : -1;
}
