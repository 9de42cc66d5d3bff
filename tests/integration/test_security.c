/* Attacks on a running scheduler with the project's own protocol, by real
 * processes on loopback ports: a ZeroMQ client forging the routing id of
 * an HTTP caller to cancel its stream; a worker that takes requests and
 * never answers; idle HTTP connections past the descriptor limit; a second
 * submit of an open id; an impostor taking a live worker's id. */
#include "infsched/client.h"
#include "clock.h"
#include "test_http_common.h"
#include "zclient.h"
#include "curve.h"
#include "keys.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#define MODEL "codex-70b"

typedef hc_fixture_t fixture_t;

static uint64_t counter(const Infsched__Status *s, const char *name) {
  for (size_t i = 0; i < s->n_counters; i++)
    if (strcmp(s->counters[i]->name, name) == 0)
      return s->counters[i]->value;
  return UINT64_MAX;
}

typedef struct counts {
  uint64_t completed;
  uint64_t cancelled;
} counts_t;

static bool got_counts(const Infsched__Status *s, void *arg) {
  counts_t *c = arg;
  c->cancelled = counter(s, "cancelled");
  c->completed = s->completed;
  return true;
}

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* A worker played by the test: its requests end when the test says. */
static Infsched__Envelope *recv_dispatch(zclient_t *w) {
  for (;;) {
    Infsched__Envelope *m = zclient_recv(w, 10000);
    assert_non_null(m);
    if (m->body_case == INFSCHED__ENVELOPE__BODY_DISPATCH)
      return m;
    infsched__envelope__free_unpacked(m, NULL);
  }
}

static void send_token(zclient_t *w, const Infsched__Dispatch *d) {
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Chunk c = INFSCHED__CHUNK__INIT;
  c.request_id = d->client_request_id;
  c.dispatch_id = d->request->request_id;
  c.tokens = 1;
  c.text = " tok";
  env.body_case = INFSCHED__ENVELOPE__BODY_CHUNK;
  env.chunk = &c;
  assert_int_equal(zclient_send(w, &env, 0), 0);
}

static void send_done(zclient_t *w, const Infsched__Dispatch *d,
                      uint32_t tokens) {
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Done done = INFSCHED__DONE__INIT;
  Infsched__Usage u = INFSCHED__USAGE__INIT;
  u.prompt_tokens = 1;
  u.generated_tokens = tokens;
  done.request_id = d->client_request_id;
  done.dispatch_id = d->request->request_id;
  done.worker_id = "fake-0";
  done.usage = &u;
  env.body_case = INFSCHED__ENVELOPE__BODY_DONE;
  env.done = &done;
  assert_int_equal(zclient_send(w, &env, 0), 0);
}

/* An HTTP caller streams a completion; ZeroMQ clients take routing ids
 * shaped as the front door's peers (its first slots and generations, in
 * the current form and the former 0 'H' one) and cancel the request ids
 * those peers would have. The stream, from a worker the test plays, goes
 * on a token after each forgery and ends when the forgeries are done: to
 * its end, every token there. */
static void test_forged_routing_id_cannot_cancel(void **state) {
  fixture_t *f = *state;
  /* The played worker sends no heartbeats: it is not lost for 10 s. */
  const char *extra[] = {"--heartbeat-miss", "100", NULL};
  hc_sched_start(&f->s, extra);
  /* On loopback, no warning that the ports are open to others. */
  assert_int_equal(harness_count_log(f->s.log, "reachable from other hosts"),
                   0);
  zclient_t *w = zclient_new_worker(f->s.workers);
  assert_non_null(w);
  assert_int_equal(zclient_register(w, "fake-0", 8), 0);

  enum { FORGED = 24, TOKENS = FORGED + 1 };
  char body[160];
  snprintf(body, sizeof body,
           "{\"model\":\"" MODEL "\",\"prompt\":\"x\","
           "\"max_tokens\":%d,\"stream\":true}",
           TOKENS);
  int fd = hc_post_completion(f->s.http_port, body);
  Infsched__Envelope *d = recv_dispatch(w);
  send_token(w, d->dispatch);
  char *in = NULL;
  size_t in_len = 0;
  assert_int_equal(hc_read_until(fd, &in, &in_len, "data: ", 10000), 0);

  int forged = 0;
  for (uint32_t slot = 0; slot < 4; slot++)
    for (uint32_t gen = 1; gen <= 3; gen++)
      for (int shape = 0; shape < 2; shape++) {
        uint64_t id = (uint64_t)gen << 32 | slot;
        uint8_t rid[10] = {0, 'H'};
        uint8_t *p = shape ? rid + 2 : rid;
        put_le32(p, (uint32_t)id);
        put_le32(p + 4, gen);
        zclient_t *z = zclient_new_as(f->s.clients, rid, shape ? 10 : 8);
        assert_non_null(z);
        Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
        Infsched__Cancel c = INFSCHED__CANCEL__INIT;
        c.request_id = id;
        env.body_case = INFSCHED__ENVELOPE__BODY_CANCEL;
        env.cancel = &c;
        assert_int_equal(zclient_send(z, &env, 0), 0);
        /* A status round trip: the cancel before it has been handled. */
        Infsched__Envelope q = INFSCHED__ENVELOPE__INIT;
        Infsched__StatusQuery sq = INFSCHED__STATUS_QUERY__INIT;
        q.body_case = INFSCHED__ENVELOPE__BODY_STATUS_QUERY;
        q.status_query = &sq;
        assert_int_equal(zclient_send(z, &q, 0), 0);
        Infsched__Envelope *a = zclient_recv(z, 5000);
        assert_non_null(a);
        assert_int_equal(a->body_case, INFSCHED__ENVELOPE__BODY_STATUS);
        infsched__envelope__free_unpacked(a, NULL);
        zclient_destroy(&z);
        forged++;
        send_token(w, d->dispatch);
      }
  counts_t mid = {0};
  assert_true(zclient_wait_status(f->s.clients, got_counts, &mid, 5000));
  assert_int_equal(mid.cancelled, 0);
  assert_int_equal(mid.completed, 0);

  send_done(w, d->dispatch, TOKENS);
  infsched__envelope__free_unpacked(d, NULL);
  assert_int_equal(hc_read_until(fd, &in, &in_len, "data: [DONE]", 10000), 0);
  assert_null(strstr(in, "\"error\""));
  assert_non_null(strstr(in, "\"finish_reason\":\"length\""));
  int tokens = 0;
  for (const char *t = in; (t = strstr(t, "\"text\":\" tok\"")); t++)
    tokens++;
  assert_int_equal(tokens, TOKENS);
  free(in);
  close(fd);
  counts_t end = {0};
  assert_true(zclient_wait_status(f->s.clients, got_counts, &end, 5000));
  assert_int_equal(end.cancelled, 0);
  assert_int_equal(end.completed, 1);
  assert_int_equal(forged, FORGED);
  zclient_destroy(&w);
}

static double report_num(const cJSON *j, const char *path) {
  const cJSON *v = hc_at(j, path);
  assert_non_null(v);
  return v->valuedouble;
}

#define SILENT_MAX 256

/* A worker that registers, heartbeats and accepts, and never answers. */
typedef struct silent {
  zclient_t *z;
  uint64_t ids[SILENT_MAX];
  long long at[SILENT_MAX]; /* when each dispatch came */
  size_t n;
  size_t cancelled;
  long long slowest_cancel; /* ms from a dispatch to its cancel */
} silent_t;

static void silent_register(silent_t *w, const char *endpoint) {
  w->z = zclient_new_worker(endpoint);
  assert_non_null(w->z);
  assert_int_equal(zclient_register(w->z, "silent-0", 64), 0);
  Infsched__Envelope *a = zclient_recv(w->z, 10000);
  assert_non_null(a);
  assert_int_equal(a->body_case, INFSCHED__ENVELOPE__BODY_REGISTERED);
  infsched__envelope__free_unpacked(a, NULL);
}

/* One heartbeat, then what came within 100 ms. */
static void silent_step(silent_t *w) {
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Heartbeat hb = INFSCHED__HEARTBEAT__INIT;
  hb.worker_id = "silent-0";
  hb.queued = (uint32_t)(w->n - w->cancelled);
  env.body_case = INFSCHED__ENVELOPE__BODY_HEARTBEAT;
  env.heartbeat = &hb;
  assert_int_equal(zclient_send(w->z, &env, 0), 0);
  long long until = clock_ms() + 100;
  for (long long left; (left = until - clock_ms()) > 0;) {
    Infsched__Envelope *m = zclient_recv(w->z, (int)left);
    if (!m)
      break;
    if (m->body_case == INFSCHED__ENVELOPE__BODY_DISPATCH) {
      assert_true(w->n < SILENT_MAX);
      w->ids[w->n] = m->dispatch->request->request_id;
      w->at[w->n++] = clock_ms();
      Infsched__Envelope acc = INFSCHED__ENVELOPE__INIT;
      Infsched__Accepted a = INFSCHED__ACCEPTED__INIT;
      a.request_id = m->dispatch->request->request_id;
      acc.body_case = INFSCHED__ENVELOPE__BODY_ACCEPTED;
      acc.accepted = &a;
      assert_int_equal(zclient_send(w->z, &acc, 0), 0);
    } else if (m->body_case == INFSCHED__ENVELOPE__BODY_CANCEL) {
      for (size_t i = 0; i < w->n; i++)
        if (w->ids[i] == m->cancel->request_id) {
          long long took = clock_ms() - w->at[i];
          if (took > w->slowest_cancel)
            w->slowest_cancel = took;
          w->cancelled++;
        }
    }
    infsched__envelope__free_unpacked(m, NULL);
  }
}

/* Half the pool takes requests and never answers: every request it got is
 * taken back within its deadline (at most 4x its predicted TTFT, here
 * well under a second, or the 500 ms floor) and served by the other
 * worker, and the run loses none and fails none. */
static void test_silent_worker_requests_served_elsewhere(void **state) {
  fixture_t *f = *state;
  const char *extra[] = {"--policy", "round_robin",           "--heartbeat-ms",
                         "100",      "--progress-timeout-ms", "500",
                         NULL};
  hc_sched_start(&f->s, extra);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 1);
  silent_t w = {0};
  silent_register(&w, f->s.workers);

  char report[600], log[600];
  snprintf(report, sizeof report, "%s/report.json", f->dir);
  snprintf(log, sizeof log, "%s/loadgen.log", f->dir);
  char *argv[] = {(char *)harness_bin("infsched-loadgen"),
                  "--scheduler",
                  f->s.clients,
                  "--rate",
                  "20",
                  "--duration",
                  "2",
                  "--seed",
                  "3",
                  "--prompt-tokens",
                  "lognormal:500:0.5:16:2000",
                  "--output-tokens",
                  "lognormal:8:0.5:2:32",
                  "--drain",
                  "20",
                  "--report-json",
                  report,
                  NULL};
  harness_proc_t *loadgen = harness_spawn(log, argv);
  assert_non_null(loadgen);
  int status;
  long long deadline = clock_ms() + 60000;
  while (harness_wait(loadgen, 0, &status) != 0) {
    assert_true(clock_ms() < deadline);
    silent_step(&w);
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* The Cancel of a request taken back leaves before its second dispatch,
   * but may still be on its way when the load generator has every answer
   * and exits. */
  deadline = clock_ms() + 10000;
  while (w.cancelled < w.n && clock_ms() < deadline)
    silent_step(&w);

  cJSON *j = harness_read_json(report);
  assert_non_null(j);
  double sent = report_num(j, "requests.sent");
  assert_true(sent >= 20);
  assert_int_equal((int)report_num(j, "requests.lost"), 0);
  assert_int_equal((int)report_num(j, "requests.completed"), (int)sent);
  cJSON_Delete(j);
  print_message("silent worker: %zu dispatched, %zu taken back, the "
                "slowest after %lld ms\n",
                w.n, w.cancelled, w.slowest_cancel);
  assert_true(w.n >= 5);
  assert_int_equal(w.cancelled, w.n);
  assert_true(w.slowest_cancel < 2000);
  zclient_destroy(&w.z);
}

/* A scheduler allowed 128 descriptors keeps a quarter of them, at least
 * 64, for its ZeroMQ peers: of 200 idle HTTP connections, opened all at
 * once before any is read, it holds 64 and answers the rest 503; a worker
 * still registers, a ZeroMQ client still gets answers, and a held
 * connection is still served. */
static void test_http_connection_cap(void **state) {
  fixture_t *f = *state;
  struct rlimit saved, low;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  low = saved;
  low.rlim_cur = 128;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  hc_sched_start(&f->s, NULL); /* inherits the limit */
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 1);

  enum { HELD = 64, OPENED = 200 };
  int fds[OPENED];
  for (int i = 0; i < OPENED; i++) {
    fds[i] = hc_connect(f->s.http_port);
    assert_true(fds[i] >= 0);
  }
  for (int i = HELD; i < OPENED; i++) {
    char *in = NULL;
    size_t len = 0;
    assert_int_equal(hc_read_until(fds[i], &in, &len, "\r\n\r\n", 5000), 0);
    assert_non_null(strstr(in, "HTTP/1.1 503 "));
    assert_non_null(strstr(in, "Retry-After: 1"));
    free(in);
    close(fds[i]);
  }

  hc_worker_start(&f->s, f->dir, "sram-1", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 2);
  size_t two = 2;
  assert_true(zclient_wait_status(f->s.clients, zclient_has_n_workers, &two, 10000));

  char *rest = NULL, *body = NULL;
  size_t rest_len = 0;
  assert_int_equal(hc_send(fds[0], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
                   0);
  assert_int_equal(hc_read_response(fds[0], &rest, &rest_len, &body, 5000),
                   200);
  free(rest);
  free(body);
  for (int i = 0; i < HELD; i++)
    close(fds[i]);
}

/* What the client library told of request 5, submitted twice. */
typedef struct dup_seen {
  uv_loop_t *loop;
  client_t *client;
  int refused;
  int errors;
  int done;
} dup_seen_t;

static void dup_on_refused(void *arg, const Infsched__Error *e) {
  dup_seen_t *d = arg;
  assert_int_equal(e->request_id, 5);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_DUPLICATE);
  d->refused++;
}

static void dup_on_error(void *arg, const Infsched__Error *e) {
  (void)e;
  ((dup_seen_t *)arg)->errors++;
}

static void dup_on_done(void *arg, const Infsched__Done *done) {
  dup_seen_t *d = arg;
  assert_int_equal(done->request_id, 5);
  d->done++;
  uv_stop(d->loop);
}

static void dup_on_timeout(uv_timer_t *t) {
  uv_stop(t->loop);
}

/* A second Submit of an open id is refused in a way the client library
 * tells apart: on_refused, not on_error; the first request still ends in
 * exactly one answer, its Done. */
static void test_duplicate_id_told_apart(void **state) {
  fixture_t *f = *state;
  hc_sched_start(&f->s, NULL);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 1);
  uv_loop_t loop;
  uv_loop_init(&loop);
  void *zctx = zmq_ctx_new();
  dup_seen_t d = {.loop = &loop};
  client_events_t ev = {.on_done = dup_on_done,
                        .on_error = dup_on_error,
                        .on_refused = dup_on_refused};
  assert_int_equal(
      client_new(&loop, zctx, f->s.clients, NULL, &ev, &d, &d.client), 0);
  client_request_t q = {.id = 5,
                        .prompt_tokens = 100,
                        .max_tokens = 500,
                        .cls = INFS_CLASS_AGENT};
  assert_int_equal(client_submit(d.client, &q), 0);
  assert_int_equal(client_submit(d.client, &q), 0);
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, dup_on_timeout, 20000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(d.refused, 1);
  assert_int_equal(d.errors, 0);
  assert_int_equal(d.done, 1);
  client_destroy(&d.client, 0);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  zmq_ctx_term(zctx);
}

typedef struct pool_state {
  uint64_t lost;
  uint64_t refused;
  size_t workers;
} pool_state_t;

static bool got_pool(const Infsched__Status *s, void *arg) {
  pool_state_t *p = arg;
  p->lost = counter(s, "workers_lost");
  p->refused = counter(s, "id_takeovers_refused");
  p->workers = s->n_workers;
  return true;
}

/* Path of a file of the local keys directory (docs/security.md). */
static const char *local_key(char *buf, size_t len, const char *name) {
  char dir[512];
  assert_int_equal(keys_default_dir(dir, sizeof dir), 0);
  snprintf(buf, len, "%s/%s", dir, name);
  return buf;
}

/* A completion over HTTP is served: the pool's worker still works. */
static void expect_served(fixture_t *f) {
  char url[160];
  snprintf(url, sizeof url, "%s/v1/completions", f->s.base);
  hc_response_t r;
  hc_post(f->dir, url,
          "{\"model\":\"" MODEL "\",\"prompt\":\"hi\",\"max_tokens\":4}", NULL,
          &r);
  assert_int_equal(r.status, 200);
  hc_response_free(&r);
}

/* An impostor registering a live worker's id every 100 ms, with the very
 * key of that worker, is refused each time; the real worker is never
 * evicted and keeps serving. The id is held while its worker was heard
 * within two heartbeats; at 1 s a heartbeat, a loaded machine that stalls
 * the worker or the scheduler for a moment does not make it silent, as
 * 100 ms heartbeats did. */
static void test_worker_id_not_taken_over(void **state) {
  fixture_t *f = *state;
  const char *extra[] = {"--heartbeat-ms", "1000", NULL};
  hc_sched_start(&f->s, extra);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 1);
  zclient_t *z = zclient_new_worker(f->s.workers);
  assert_non_null(z);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(zclient_register(z, "sram-0", 8), 0);
    Infsched__Envelope *a = zclient_recv(z, 5000);
    assert_non_null(a);
    assert_int_equal(a->body_case, INFSCHED__ENVELOPE__BODY_ERROR);
    assert_non_null(strstr(a->error->message, "held by a live connection"));
    infsched__envelope__free_unpacked(a, NULL);
    assert_null(zclient_recv(z, 100)); /* paces the attempts */
  }
  zclient_destroy(&z);
  pool_state_t p = {0};
  zclient_wait_status(f->s.clients, got_pool, &p, 5000);
  assert_int_equal(p.workers, 1);
  assert_int_equal(p.lost, 0);
  assert_int_equal(p.refused, 5);
  expect_served(f);
}

/* The SLOs a registration is checked against are checked with the
 * scheduler's figures of the profile named, not the worker's: a worker
 * claiming 10 ms a token under gpu-h100 is still warned of a 15 ms TPOT
 * target that the scheduler's gpu-h100 (21.9 ms at its 131072-token
 * context) misses. */
static void test_slo_checked_with_own_figures(void **state) {
  fixture_t *f = *state;
  const char *extra[] = {"--slo", "interactive=600000:15", NULL};
  hc_sched_start(&f->s, extra);
  zclient_t *z = zclient_new_worker(f->s.workers);
  assert_non_null(z);
  assert_int_equal(zclient_register(z, "fast-0", 8), 0);
  Infsched__Envelope *a = zclient_recv(z, 5000);
  assert_non_null(a);
  assert_int_equal(a->body_case, INFSCHED__ENVELOPE__BODY_REGISTERED);
  infsched__envelope__free_unpacked(a, NULL);
  zclient_destroy(&z);
  assert_int_equal(harness_wait_log(f->s.log,
                                    "worker fast-0: --slo: SLO of interactive: "
                                    "TPOT target 15 ms",
                                    5000),
                   0);
  assert_int_equal(harness_count_log(f->s.log, "at 131072 tokens of context"),
                   1);
}

typedef struct auth_state {
  uint64_t handshakes_refused;
  uint64_t id_key_refused;
  size_t workers;
  bool intruder; /* a worker of that id is listed */
} auth_state_t;

static bool got_auth(const Infsched__Status *s, void *arg) {
  auth_state_t *a = arg;
  a->handshakes_refused = counter(s, "handshakes_refused");
  a->id_key_refused = counter(s, "id_key_refused");
  a->workers = s->n_workers;
  a->intruder = false;
  for (size_t i = 0; i < s->n_workers; i++)
    a->intruder |= strcmp(s->workers[i]->worker_id, "intruder-0") == 0;
  return a->handshakes_refused >= 1;
}

static bool two_refused(const Infsched__Status *s, void *arg) {
  got_auth(s, arg);
  return ((auth_state_t *)arg)->handshakes_refused >= 2;
}

/* CURVE on the worker port, with the local keys of this host: a worker
 * whose key the scheduler does not admit, or admits on the client port
 * only, never completes a handshake, so never registers; one with an
 * admitted worker key cannot take a registered worker's id, which is
 * bound to that worker's key; and the real worker serves throughout. */
static void test_worker_needs_admitted_key(void **state) {
  fixture_t *f = *state;
  /* Another worker key the scheduler admits, as infsched-cluster makes
   * one for each of its workers. */
  char dir[512], other[600], err[600];
  assert_int_equal(keys_default_dir(dir, sizeof dir), 0);
  if (curve_instance_key(dir, "impostor-0", other, sizeof other, err,
                         sizeof err))
    fail_msg("%s", err);
  hc_sched_start(&f->s, NULL);
  assert_int_equal(harness_wait_log(f->s.log, "authentication: CURVE", 5000),
                   0);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 1);

  /* A key of its own, which the scheduler was never given, and the
   * scheduler's public key, which anyone may know. */
  char intruder[600], secret[640], server[600], log[600];
  snprintf(intruder, sizeof intruder, "%s/intruder.key", f->dir);
  snprintf(secret, sizeof secret, "%s_secret", intruder);
  snprintf(log, sizeof log, "%s/keygen.log", f->dir);
  char *keygen[] = {(char *)harness_bin("infsched-keygen"), intruder, NULL};
  harness_proc_t *k = harness_spawn(log, keygen);
  assert_non_null(k);
  int status;
  assert_int_equal(harness_wait(k, 10000, &status), 0);
  harness_stop(&k);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const char *extra[] = {"--key", secret, "--server-key",
                         local_key(server, sizeof server, "scheduler.key"),
                         NULL};
  harness_proc_t *w =
      hc_worker_start(&f->s, f->dir, "intruder-0", "gpu-h100", NULL, extra);
  /* Its refusal is an event on both sides: the scheduler counts it, and
   * the worker, which libzmq would not let try again, says why and exits
   * 3. Nothing of it got through before. */
  assert_int_equal(harness_wait(w, 15000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 3);
  snprintf(log, sizeof log, "%s/intruder-0.log", f->dir);
  assert_int_equal(harness_count_log(log, "did not admit this key"), 1);
  auth_state_t a = {0};
  assert_true(zclient_wait_status(f->s.clients, got_auth, &a, 15000));
  assert_int_equal(a.handshakes_refused, 1);
  assert_false(a.intruder);
  assert_int_equal(a.workers, 1);
  assert_int_equal(harness_count_log(f->s.log, "worker intruder-0"), 0);

  /* A key admitted on the client port only (the local clients'): refused
   * on the worker port. */
  zclient_t *z = zclient_new(f->s.workers);
  assert_non_null(z);
  assert_int_equal(zclient_register(z, "sram-0", 8), 0);
  assert_true(zclient_wait_status(f->s.clients, two_refused, &a, 15000));
  zclient_destroy(&z);

  /* A worker key of the pool, with the real worker's id. */
  zclient_auth.key = other;
  z = zclient_new_worker(f->s.workers);
  zclient_auth.key = NULL;
  assert_non_null(z);
  assert_int_equal(zclient_register(z, "sram-0", 8), 0);
  Infsched__Envelope *e = zclient_recv(z, 5000);
  assert_non_null(e);
  assert_int_equal(e->body_case, INFSCHED__ENVELOPE__BODY_ERROR);
  assert_non_null(strstr(e->error->message, "bound to another key"));
  infsched__envelope__free_unpacked(e, NULL);
  zclient_destroy(&z);
  assert_true(zclient_wait_status(f->s.clients, got_auth, &a, 5000));
  assert_int_equal(a.id_key_refused, 1);
  assert_int_equal(a.handshakes_refused, 2);
  assert_int_equal(a.workers, 1);

  expect_served(f);
}

/* Bound where other hosts can reach it, the scheduler says loudly that
 * nothing authenticates its peers; on loopback it keeps quiet. */
static void test_open_address_warned(void **state) {
  fixture_t *f = *state;
  char http[64], workers[64];
  snprintf(http, sizeof http, "0.0.0.0:%d", f->s.http_port);
  /* The worker port too, which CURVE guards: no word of it. */
  snprintf(workers, sizeof workers, "tcp://0.0.0.0%s",
           strrchr(f->s.workers, ':'));
  const char *extra[] = {"--http", http, "--workers", workers, NULL};
  hc_sched_start(&f->s, extra);
  assert_int_equal(harness_wait_log(f->s.log, "http 0.0.0.0:", 5000), 0);
  assert_int_equal(harness_count_log(f->s.log, "reachable from other hosts"),
                   1);
  assert_int_equal(harness_count_log(f->s.log, "authentication: CURVE"), 1);
}

/* With authentication off, a ZeroMQ port other hosts can reach is
 * warned of, and the scheduler says it runs open. */
static void test_open_without_auth_warned(void **state) {
  fixture_t *f = *state;
  char workers[64];
  snprintf(workers, sizeof workers, "tcp://0.0.0.0%s",
           strrchr(f->s.workers, ':'));
  const char *extra[] = {"--auth", "off", "--workers", workers, NULL};
  hc_sched_start(&f->s, extra);
  assert_int_equal(harness_wait_log(f->s.log, "authentication off", 5000), 0);
  assert_int_equal(harness_wait_log(f->s.log, "reachable from other hosts",
                                    5000),
                   0);
  assert_int_equal(harness_count_log(f->s.log, "reachable from other hosts"),
                   1);
  assert_int_equal(harness_count_log(f->s.log, "register as a worker"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_forged_routing_id_cannot_cancel,
                                      hc_setup, hc_teardown),
      cmocka_unit_test_setup_teardown(
          test_silent_worker_requests_served_elsewhere, hc_setup, hc_teardown),
      cmocka_unit_test_setup_teardown(test_http_connection_cap, hc_setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_id_told_apart, hc_setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_open_address_warned, hc_setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_open_without_auth_warned, hc_setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_worker_id_not_taken_over, hc_setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_worker_needs_admitted_key, hc_setup,
                                      hc_teardown),
      cmocka_unit_test_setup_teardown(test_slo_checked_with_own_figures,
                                      hc_setup, hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
