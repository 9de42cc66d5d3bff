/* The foundation end to end with real processes on free loopback ports: a
 * scheduler, workers of three classes and loadgen; a worker killed in the
 * middle of a run; a scheduler restarted under its workers; bad input. */
#include "workload.h"
#include "harness.h"
#include "zclient.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#define START_TIMEOUT_MS 15000
/* Requests streaming on a worker when it is killed, and their length. */
#define MIGRANTS 4
#define MIGRANT_TOKENS 400

typedef struct fixture {
  char *dir;
  char clients[64];
  char workers[64];
  char sched_log[512];
  harness_proc_t *scheduler;
} fixture_t;

static int setup(void **state) {
  int port[2];
  if (harness_free_ports(port, 2))
    return -1;
  fixture_t *f = harness_fixture_new(sizeof *f);
  if (!f)
    return -1;
  snprintf(f->clients, sizeof f->clients, "tcp://127.0.0.1:%d", port[0]);
  snprintf(f->workers, sizeof f->workers, "tcp://127.0.0.1:%d", port[1]);
  snprintf(f->sched_log, sizeof f->sched_log, "%s/scheduler.log", f->dir);
  *state = f;
  return 0;
}

/* A worker is lost after a second without heartbeats: quick enough for the
 * tests' 5 s waits, and slow enough that a live worker starved of CPU on a
 * loaded machine (two sanitizer builds testing at once) is not taken for a
 * dead one, which would add losses the tests count. */
static harness_proc_t *start_scheduler(fixture_t *f, const char *extra) {
  char *argv[] = {(char *)harness_bin("infsched-scheduler"),
                  "--clients", f->clients, "--workers", f->workers,
                  "--http", "off",
                  "--heartbeat-ms", "100", "--heartbeat-miss", "10",
                  (char *)extra, NULL};
  harness_proc_t *p = harness_spawn(f->sched_log, argv);
  assert_non_null(p);
  return p;
}

static harness_proc_t *start_worker(fixture_t *f, const char *id,
                                    const char *profile) {
  char log[600];
  snprintf(log, sizeof log, "%s/%s.log", f->dir, id);
  char *argv[] = {(char *)harness_bin("infsched-worker"),
                  "--scheduler", f->workers, "--id", (char *)id,
                  "--profile", (char *)profile, "--profiles",
                  (char *)harness_source("configs/profiles.yaml"), NULL};
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  return p;
}

typedef struct busy_arg {
  const char *id;
} busy_arg_t;

static bool worker_busy(const Infsched__Status *s, void *arg) {
  busy_arg_t *b = arg;
  for (size_t i = 0; i < s->n_workers; i++)
    if (strcmp(s->workers[i]->worker_id, b->id) == 0)
      return s->workers[i]->outstanding >= 2;
  return false;
}

/* One worker lost, and the work it held when it was killed dispatched
 * again or failed. */
static bool lost_one_with_work(const Infsched__Status *s, void *arg) {
  (void)arg;
  return zclient_counter(s, "workers_lost") == 1 &&
         zclient_counter(s, "redispatched") + s->failed >= 1;
}

static bool migrated_all(const Infsched__Status *s, void *arg) {
  (void)arg;
  return zclient_counter(s, "migrated") == MIGRANTS && s->failed == 0;
}

static double num(const cJSON *o, const char *path) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  const cJSON *cur = o;
  for (char *save, *k = strtok_r(buf, ".", &save); k && cur;
       k = strtok_r(NULL, ".", &save))
    cur = cJSON_GetObjectItemCaseSensitive(cur, k);
  assert_non_null(cur);
  return cur->valuedouble;
}

static void test_worker_killed_mid_run(void **state) {
  fixture_t *f = *state;
  f->scheduler = start_scheduler(f, NULL);
  start_worker(f, "gpu-0", "gpu-h100");
  start_worker(f, "sram-0", "sram-wse3");
  start_worker(f, "tpu-0", "tpu-v6e");
  harness_proc_t *victim = start_worker(f, "gpu-1", "gpu-h100");
  size_t four = 4;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &four,
                                  START_TIMEOUT_MS));

  char report[600], log[600];
  snprintf(report, sizeof report, "%s/report.json", f->dir);
  snprintf(log, sizeof log, "%s/loadgen.log", f->dir);
  /* Long outputs keep requests streaming on the GPU when it dies. */
  char *argv[] = {(char *)harness_bin("infsched-loadgen"),
                  "--scheduler", f->clients, "--rate", "40", "--duration",
                  "5", "--seed", "7", "--output-tokens", "lognormal:60:0.5:8:400",
                  "--drain", "30", "--report-json", report, NULL};
  harness_proc_t *loadgen = harness_spawn(log, argv);
  assert_non_null(loadgen);

  /* Kill it once it holds work, so some requests are re-dispatched and
   * those already streaming fail with a reason. */
  busy_arg_t busy = {"gpu-1"};
  assert_true(zclient_wait_status(f->clients, worker_busy, &busy,
                                  START_TIMEOUT_MS));
  harness_kill(victim, SIGKILL);

  int status;
  assert_int_equal(harness_wait(loadgen, 90000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);

  cJSON *j = harness_read_json(report);
  assert_non_null(j);
  double sent = num(j, "requests.sent");
  double completed = num(j, "requests.completed");
  double failed = num(j, "requests.failed");
  double rejected = num(j, "requests.rejected");
  assert_true(sent > 50);
  assert_int_equal((int)num(j, "requests.lost"), 0);
  assert_true(completed > 0);
  assert_int_equal((int)(completed + failed + rejected), (int)sent);
  /* Every failure carries its reason: here only a lost worker. */
  const cJSON *errors = cJSON_GetObjectItemCaseSensitive(j, "errors");
  assert_non_null(errors);
  double explained = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, errors) {
    assert_string_equal(e->string, "ERROR_WORKER_LOST");
    explained += e->valuedouble;
  }
  assert_int_equal((int)explained, (int)(failed + rejected));
  cJSON_Delete(j);

  /* The scheduler noticed the loss and kept serving the other three. */
  size_t three = 3;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers,
                                  &three, 5000));
  assert_true(
      zclient_wait_status(f->clients, lost_one_with_work, NULL, 5000));
  /* And logged it, naming the worker. */
  assert_int_equal(harness_count_log(f->sched_log,
                                     "worker gpu-1 lost: no heartbeat"),
                   1);
  harness_kill(f->scheduler, SIGTERM);
  assert_int_equal(harness_wait(f->scheduler, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

typedef struct cached_arg {
  uint32_t at_least;
  uint32_t seen;
} cached_arg_t;

static bool one_worker_caching(const Infsched__Status *s, void *arg) {
  cached_arg_t *c = arg;
  if (s->n_workers != 1)
    return false;
  c->seen = s->workers[0]->cached_blocks;
  return c->seen >= c->at_least;
}

/* Runs one request whose prompt is n_blocks hashed blocks, to its Done. */
static void run_cached_prompt(const char *clients, uint64_t id,
                              uint64_t first_hash, size_t n_blocks) {
  uint64_t hashes[16];
  for (size_t i = 0; i < n_blocks; i++)
    hashes[i] = first_hash + i;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Submit sub = INFSCHED__SUBMIT__INIT;
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = id;
  q.prompt_tokens = (uint32_t)(n_blocks * 64);
  q.max_tokens = 2;
  q.block_hashes = hashes;
  q.n_block_hashes = n_blocks;
  sub.request = &q;
  env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  env.submit = &sub;
  zclient_t *c = zclient_new(clients);
  assert_non_null(c);
  assert_int_equal(zclient_send(c, &env, 0), 0);
  bool done = false;
  for (Infsched__Envelope *m; !done && (m = zclient_recv(c, 10000));) {
    assert_int_not_equal(m->body_case, INFSCHED__ENVELOPE__BODY_ERROR);
    done = m->body_case == INFSCHED__ENVELOPE__BODY_DONE;
    infsched__envelope__free_unpacked(m, NULL);
  }
  assert_true(done);
  zclient_destroy(&c);
}

static void test_scheduler_restart(void **state) {
  fixture_t *f = *state;
  f->scheduler = start_scheduler(f, NULL);
  start_worker(f, "tpu-0", "tpu-v6e");
  size_t one = 1;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &one,
                                  START_TIMEOUT_MS));
  run_cached_prompt(f->clients, 1, 1000, 8);
  run_cached_prompt(f->clients, 2, 5000, 8);
  cached_arg_t before = {16, 0};
  assert_true(zclient_wait_status(f->clients, one_worker_caching, &before,
                                  START_TIMEOUT_MS));

  harness_kill(f->scheduler, SIGKILL);
  int status;
  assert_int_equal(harness_wait(f->scheduler, 5000, &status), 0);
  /* A new scheduler on the same endpoints: the worker rejoins on its own
   * and tells it everything its prefix cache holds. */
  f->scheduler = start_scheduler(f, NULL);
  cached_arg_t after = {before.seen, 0};
  assert_true(zclient_wait_status(f->clients, one_worker_caching, &after,
                                  START_TIMEOUT_MS));
  assert_int_equal(after.seen, before.seen);
}

static Infsched__Envelope *expect_error(zclient_t *c, Infsched__ErrorCode code) {
  Infsched__Envelope *env = zclient_recv(c, 5000);
  assert_non_null(env);
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_ERROR);
  assert_int_equal(env->error->code, code);
  assert_true(strlen(env->error->message) > 0);
  return env;
}

static void test_bad_input_answered(void **state) {
  fixture_t *f = *state;
  f->scheduler = start_scheduler(f, "--max-msg-bytes=4096");
  zclient_t *c = zclient_new(f->clients);
  assert_non_null(c);

  zclient_send_raw(c, "\xff\xff garbage", 10);
  infsched__envelope__free_unpacked(
      expect_error(c, INFSCHED__ERROR_CODE__ERROR_BAD_MESSAGE), NULL);

  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Cancel cancel = INFSCHED__CANCEL__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_CANCEL;
  env.cancel = &cancel;
  zclient_send(c, &env, 99);
  infsched__envelope__free_unpacked(
      expect_error(c, INFSCHED__ERROR_CODE__ERROR_BAD_VERSION), NULL);

  Infsched__Envelope reg = INFSCHED__ENVELOPE__INIT;
  Infsched__Register r = INFSCHED__REGISTER__INIT;
  reg.body_case = INFSCHED__ENVELOPE__BODY_REGISTER;
  reg.register_ = &r;
  zclient_send(c, &reg, 0);
  infsched__envelope__free_unpacked(
      expect_error(c, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST), NULL);

  /* A submit with no worker anywhere is accepted and waits, and a request
   * without max_tokens is refused with a reason. */
  Infsched__Envelope sub = INFSCHED__ENVELOPE__INIT;
  Infsched__Submit s = INFSCHED__SUBMIT__INIT;
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = 5;
  q.prompt_tokens = 10;
  s.request = &q;
  sub.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  sub.submit = &s;
  zclient_send(c, &sub, 0);
  infsched__envelope__free_unpacked(
      expect_error(c, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST), NULL);

  /* Oversize: ZeroMQ drops that connection unread, so no answer comes
   * (without the limit, these zero bytes would be answered as a bad
   * message); the scheduler lives on. */
  char *big = calloc(1, 10000);
  zclient_send_raw(c, big, 10000);
  free(big);
  assert_null(zclient_recv(c, 1000));
  zclient_destroy(&c);

  /* The worker socket: a heartbeat from a stranger is told to register. */
  zclient_t *w = zclient_new_worker(f->workers);
  Infsched__Envelope hb = INFSCHED__ENVELOPE__INIT;
  Infsched__Heartbeat h = INFSCHED__HEARTBEAT__INIT;
  hb.body_case = INFSCHED__ENVELOPE__BODY_HEARTBEAT;
  hb.heartbeat = &h;
  zclient_send(w, &hb, 0);
  infsched__envelope__free_unpacked(
      expect_error(w, INFSCHED__ERROR_CODE__ERROR_UNKNOWN_WORKER), NULL);
  zclient_destroy(&w);

  size_t zero = 0;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers,
                                  &zero, 5000));
  int status;
  harness_kill(f->scheduler, SIGTERM);
  assert_int_equal(harness_wait(f->scheduler, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Options and messages come from any ZeroMQ client as text: a worker
 * without a model answers JSON of the wrong shape as a bad request, and
 * lives on to serve the next one. */
static void test_misshapen_options_refused_by_worker(void **state) {
  fixture_t *f = *state;
  f->scheduler = start_scheduler(f, NULL);
  harness_proc_t *w = start_worker(f, "gpu-0", "gpu-h100");
  size_t one = 1;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &one,
                                  START_TIMEOUT_MS));
  zclient_t *c = zclient_new(f->clients);
  assert_non_null(c);
  static const char *const bad[][2] = {
      {"", "[1]"}, {"", "{\"stop\""}, {"[[{\"type\":\"image\"}]]", ""},
      {"[{\"content\":[[{\"type\":\"image\"}]]}]", "{\"max\":1}"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
    Infsched__Submit sub = INFSCHED__SUBMIT__INIT;
    Infsched__Request q = INFSCHED__REQUEST__INIT;
    q.request_id = 10 + i;
    q.prompt_tokens = 16;
    q.max_tokens = 4;
    q.messages_json = (char *)bad[i][0];
    q.options_json = (char *)bad[i][1];
    sub.request = &q;
    env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
    env.submit = &sub;
    assert_int_equal(zclient_send(c, &env, 0), 0);
    Infsched__Envelope *m;
    while ((m = zclient_recv(c, 10000)) &&
           m->body_case != INFSCHED__ENVELOPE__BODY_ERROR &&
           m->body_case != INFSCHED__ENVELOPE__BODY_DONE)
      infsched__envelope__free_unpacked(m, NULL);
    assert_non_null(m);
    assert_int_equal(m->body_case, INFSCHED__ENVELOPE__BODY_ERROR);
    assert_int_equal(m->error->code, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST);
    infsched__envelope__free_unpacked(m, NULL);
  }
  zclient_destroy(&c);
  run_cached_prompt(f->clients, 20, 7000, 2);
  assert_int_equal(harness_wait(w, 0, NULL), -ETIMEDOUT); /* still running */
}

static Infsched__Envelope *expect(zclient_t *c,
                                  Infsched__Envelope__BodyCase body) {
  Infsched__Envelope *env = zclient_recv(c, 5000);
  assert_non_null(env);
  assert_int_equal(env->body_case, body);
  return env;
}

static void worker_send_chunk(zclient_t *w, uint64_t request_id,
                              uint64_t dispatch_id, const char *text) {
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Chunk m = INFSCHED__CHUNK__INIT;
  m.request_id = request_id;
  m.dispatch_id = dispatch_id;
  m.tokens = 1;
  m.text = (char *)text;
  env.body_case = INFSCHED__ENVELOPE__BODY_CHUNK;
  env.chunk = &m;
  assert_int_equal(zclient_send(w, &env, 0), 0);
}

static void expect_chunk(zclient_t *c, uint64_t request_id, const char *text) {
  Infsched__Envelope *env = expect(c, INFSCHED__ENVELOPE__BODY_CHUNK);
  assert_int_equal(env->chunk->request_id, request_id);
  assert_string_equal(env->chunk->text, text);
  infsched__envelope__free_unpacked(env, NULL);
}

/* A worker answers with the client's request id (from Dispatch) and the
 * scheduler's in dispatch_id, so the scheduler forwards its frames as they
 * came; a worker that gets the client's id wrong is corrected, not
 * believed. */
static void test_worker_answers_forwarded(void **state) {
  fixture_t *f = *state;
  f->scheduler = start_scheduler(f, "--heartbeat-miss=100");
  zclient_t *w = zclient_new_worker(f->workers);
  assert_int_equal(zclient_register(w, "fake-worker", 8), 0);
  infsched__envelope__free_unpacked(
      expect(w, INFSCHED__ENVELOPE__BODY_REGISTERED), NULL);

  zclient_t *c = zclient_new(f->clients);
  Infsched__Envelope sub = INFSCHED__ENVELOPE__INIT;
  Infsched__Submit s = INFSCHED__SUBMIT__INIT;
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = 77;
  q.prompt_tokens = 10;
  q.max_tokens = 3;
  s.request = &q;
  sub.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  sub.submit = &s;
  assert_int_equal(zclient_send(c, &sub, 0), 0);
  Infsched__Envelope *env = expect(c, INFSCHED__ENVELOPE__BODY_ACCEPTED);
  assert_int_equal(env->accepted->request_id, 77);
  infsched__envelope__free_unpacked(env, NULL);

  env = expect(w, INFSCHED__ENVELOPE__BODY_DISPATCH);
  assert_int_equal(env->dispatch->client_request_id, 77);
  uint64_t id = env->dispatch->request->request_id;
  infsched__envelope__free_unpacked(env, NULL);

  worker_send_chunk(w, 77, id, "as sent");
  expect_chunk(c, 77, "as sent");
  worker_send_chunk(w, 12345, id, "wrong id");
  expect_chunk(c, 77, "wrong id");
  /* Addressed by the client's id alone, the chunk is not the worker's to
   * send: dropped. */
  worker_send_chunk(w, 77, 0, "no dispatch id");

  Infsched__Envelope done = INFSCHED__ENVELOPE__INIT;
  Infsched__Done d = INFSCHED__DONE__INIT;
  d.request_id = 77;
  d.dispatch_id = id;
  d.worker_id = "fake-worker";
  done.body_case = INFSCHED__ENVELOPE__BODY_DONE;
  done.done = &d;
  assert_int_equal(zclient_send(w, &done, 0), 0);
  env = expect(c, INFSCHED__ENVELOPE__BODY_DONE);
  assert_int_equal(env->done->request_id, 77);
  assert_string_equal(env->done->worker_id, "fake-worker");
  infsched__envelope__free_unpacked(env, NULL);

  zclient_destroy(&c);
  zclient_destroy(&w);
}

/* What one client saw of one request's stream. */
typedef struct stream_seen {
  uint32_t tokens; /* in chunks */
  size_t text_len;
  uint32_t chunks;
  int done;           /* Dones */
  int error;          /* Errors */
  uint32_t generated; /* the Done's usage */
  char worker[32];    /* the Done's */
} stream_seen_t;

/* Receives one message for requests 1..MIGRANTS and notes it; false on a
 * receive timeout. */
static bool see(zclient_t *c, stream_seen_t *seen) {
  Infsched__Envelope *env = zclient_recv(c, 20000);
  if (!env)
    return false;
  switch (env->body_case) {
  case INFSCHED__ENVELOPE__BODY_CHUNK: {
    stream_seen_t *s = &seen[env->chunk->request_id - 1];
    s->tokens += env->chunk->tokens;
    s->text_len += strlen(env->chunk->text);
    s->chunks++;
    break;
  }
  case INFSCHED__ENVELOPE__BODY_DONE: {
    stream_seen_t *s = &seen[env->done->request_id - 1];
    s->done++;
    s->generated = env->done->usage ? env->done->usage->generated_tokens : 0;
    snprintf(s->worker, sizeof s->worker, "%s", env->done->worker_id);
    break;
  }
  case INFSCHED__ENVELOPE__BODY_ERROR:
    seen[env->error->request_id - 1].error++;
    print_message("request %llu: %s\n",
                  (unsigned long long)env->error->request_id,
                  env->error->message);
    break;
  default:
    break;
  }
  infsched__envelope__free_unpacked(env, NULL);
  return true;
}

/* A worker killed while its requests stream: they go on on another
 * worker, from where they stopped, and each client stream has every token
 * exactly once. */
static void test_streams_migrate_when_worker_killed(void **state) {
  fixture_t *f = *state;
  stream_seen_t seen[MIGRANTS];
  memset(seen, 0, sizeof seen);
  f->scheduler = start_scheduler(f, NULL);
  harness_proc_t *victim = start_worker(f, "tpu-0", "tpu-v6e");
  size_t one = 1, two = 2;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers,
                                  &one, START_TIMEOUT_MS));

  zclient_t *c = zclient_new(f->clients);
  for (uint64_t id = 1; id <= MIGRANTS; id++) {
    Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
    Infsched__Submit s = INFSCHED__SUBMIT__INIT;
    Infsched__Request q = INFSCHED__REQUEST__INIT;
    q.request_id = id;
    q.prompt_tokens = 300;
    q.max_tokens = MIGRANT_TOKENS;
    s.request = &q;
    env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
    env.submit = &s;
    assert_int_equal(zclient_send(c, &env, 0), 0);
  }
  /* Every stream has started, on the only worker. */
  for (;;) {
    int started = 0;
    for (int i = 0; i < MIGRANTS; i++)
      started += seen[i].tokens > 0;
    if (started == MIGRANTS)
      break;
    assert_true(see(c, seen));
  }
  start_worker(f, "gpu-0", "gpu-h100");
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers,
                                  &two, START_TIMEOUT_MS));
  harness_kill(victim, SIGKILL);
  for (int i = 0; i < MIGRANTS; i++)
    assert_int_equal(seen[i].done + seen[i].error, 0);

  for (int ended = 0; ended < MIGRANTS;) {
    assert_true(see(c, seen));
    ended = 0;
    for (int i = 0; i < MIGRANTS; i++)
      ended += seen[i].done + seen[i].error;
  }
  for (int i = 0; i < MIGRANTS; i++) {
    assert_int_equal(seen[i].error, 0);
    assert_int_equal(seen[i].done, 1);
    assert_string_equal(seen[i].worker, "gpu-0");
    assert_int_equal(seen[i].tokens, MIGRANT_TOKENS);
    assert_int_equal(seen[i].generated, MIGRANT_TOKENS);
    /* The sim's text is one word a token: none repeated, none missing. */
    assert_int_equal(seen[i].text_len, MIGRANT_TOKENS * strlen(" tok"));
  }
  /* Nothing more: no late chunk of the dead worker's, no second answer. */
  Infsched__Envelope *late = zclient_recv(c, 300);
  assert_null(late);
  zclient_destroy(&c);
  assert_true(zclient_wait_status(f->clients, migrated_all, NULL, 5000));
}

static bool at_least_open(const Infsched__Status *s, void *arg) {
  uint32_t open = s->queued;
  for (size_t i = 0; i < s->n_workers; i++)
    open += s->workers[i]->outstanding;
  return open >= *(uint32_t *)arg;
}

/* The scheduler killed under a codex load with many requests open and
 * started again: the workers keep running their requests and hand them
 * over, the clients reconnect and resubmit, and every request gets exactly
 * one answer. */
static void test_scheduler_killed_mid_load(void **state) {
  fixture_t *f = *state;
  f->scheduler = start_scheduler(f, NULL);
  start_worker(f, "gpu-0", "gpu-h100");
  start_worker(f, "gpu-1", "gpu-h100");
  start_worker(f, "sram-0", "sram-wse3");
  size_t three = 3;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &three,
                                  START_TIMEOUT_MS));

  char report[600], log[600], spec[700], record[600];
  snprintf(report, sizeof report, "%s/report.json", f->dir);
  snprintf(log, sizeof log, "%s/loadgen.log", f->dir);
  snprintf(record, sizeof record, "%s/run.jsonl", f->dir);
  snprintf(spec, sizeof spec, "codex:%s",
           harness_source("configs/workloads/codex.yaml"));
  char *argv[] = {(char *)harness_bin("infsched-loadgen"),
                  "--scheduler", f->clients,
                  "--workload", spec,
                  "--sessions", "40",
                  "--think-time", "lognormal:300:0.5:50:1000",
                  "--tool-time", "lognormal:100:1:10:500",
                  "--max-context", "32768",
                  "--set", "answer_tokens=lognormal:184:1.27:8:400",
                  "--set", "job_output_tokens=lognormal:300:0.5:32:400",
                  "--duration", "8",
                  "--drain", "60",
                  "--seed", "5",
                  "--report-json", report,
                  "--record", record,
                  NULL};
  harness_proc_t *loadgen = harness_spawn(log, argv);
  assert_non_null(loadgen);

  uint32_t twenty = 20;
  assert_true(zclient_wait_status(f->clients, at_least_open, &twenty,
                                  START_TIMEOUT_MS));
  harness_kill(f->scheduler, SIGKILL);
  int status;
  assert_int_equal(harness_wait(f->scheduler, 5000, &status), 0);
  harness_stop(&f->scheduler);
  f->scheduler = start_scheduler(f, NULL);

  assert_int_equal(harness_wait(loadgen, 120000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  cJSON *j = harness_read_json(report);
  assert_non_null(j);
  double sent = num(j, "requests.sent");
  double completed = num(j, "requests.completed");
  double failed = num(j, "requests.failed");
  double rejected = num(j, "requests.rejected");
  print_message("scheduler killed: %.0f sent, %.0f completed, %.0f failed, "
                "%.0f rejected\n",
                sent, completed, failed, rejected);
  assert_true(sent >= 20);
  assert_int_equal((int)num(j, "requests.lost"), 0);
  assert_int_equal((int)(completed + failed + rejected), (int)sent);
  assert_true(completed >= 0.95 * sent);
  cJSON_Delete(j);
  /* The run as a Mooncake trace: every request sent, sessions and all. */
  char trace[700], err[256] = "";
  snprintf(trace, sizeof trace, "mooncake:%s", record);
  workload_opts_t wo;
  workload_opts_default(&wo);
  workload_t *w = NULL;
  if (workload_new(trace, &wo, &w, err, sizeof err))
    fail_msg("%s", err);
  workload_req_t r;
  size_t replayed = 0, in_sessions = 0;
  while (workload_pop(w, INFS_TIME_NEVER - 1, &r) == 0) {
    replayed++;
    in_sessions += r.session[0] != '\0';
  }
  workload_destroy(&w);
  assert_int_equal(replayed, (size_t)sent);
  assert_int_equal(in_sessions, replayed);
  /* Exactly one answer each: none for a request already ended. */
  assert_int_equal(harness_count_log(log, "answers for unknown or finished"),
                   0);
  assert_true(harness_count_log(log, "open requests submitted again") > 0);
}

/* Runs a program and returns its exit status; its output goes to log. */
static int run(fixture_t *f, char *const argv[]) {
  char log[600];
  snprintf(log, sizeof log, "%s/cli.log", f->dir);
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  int status;
  assert_int_equal(harness_wait(p, 10000, &status), 0);
  harness_stop(&p);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void test_cli_help_and_usage_errors(void **state) {
  fixture_t *f = *state;
  static const char *const programs[] = {"infsched-scheduler",
                                         "infsched-worker", "infsched-loadgen",
                                         "infsched-cluster", "infsched-sim"};
  static const char *const bad_values[][2] = {
      {"--heartbeat-ms", "soon"},
      {"--capacity", "0"},
      {"--rate", "-3"},
      {"up", ""},
      {"--pool", "gpu=x"},
  };
  for (size_t i = 0; i < sizeof programs / sizeof *programs; i++) {
    char *bin = (char *)harness_bin(programs[i]);
    char *help[] = {bin, "--help", NULL};
    assert_int_equal(run(f, help), 0);
    char *unknown[] = {bin, "--no-such-flag", NULL};
    assert_int_equal(run(f, unknown), 2);
    char *bad[] = {bin, (char *)bad_values[i][0],
                   bad_values[i][1][0] ? (char *)bad_values[i][1] : NULL,
                   NULL};
    assert_int_equal(run(f, bad), 2);
  }
  char log[600];
  snprintf(log, sizeof log, "%s/cli.log", f->dir);
  assert_true(harness_count_log(log, "Usage") >= 5);
  assert_true(harness_count_log(log, "--no-such-flag") >= 5);
}

/* A run that loses requests (no drain: what is open at the last arrival
 * is lost) exits 1, alone or as one policy of --compare; with time to
 * drain, the same runs exit 0. */
static void test_sim_lost_requests_exit_1(void **state) {
  fixture_t *f = *state;
  char *cluster = (char *)harness_source("configs/local.yaml");
  for (int drain = 0; drain < 2; drain++) {
    char *secs = drain ? "30" : "0";
    char *single[] = {(char *)harness_bin("infsched-sim"), "--cluster",
                      cluster, "--rate", "20", "--duration", "2", "--drain",
                      secs, NULL};
    char *compare[] = {(char *)harness_bin("infsched-sim"), "--cluster",
                       cluster, "--compare", "least_loaded,round_robin",
                       "--rate", "20", "--duration", "2", "--drain", secs,
                       NULL};
    assert_int_equal(run(f, single), drain ? 0 : 1);
    assert_int_equal(run(f, compare), drain ? 0 : 1);
  }
  char log[600];
  snprintf(log, sizeof log, "%s/cli.log", f->dir);
  assert_int_equal(harness_count_log(log, "least_loaded: "), 1);
  assert_int_equal(harness_count_log(log, "round_robin: "), 1);
}

/* An unknown profile is a bad value (2); a busy endpoint cannot start (3). */
/* A class target that an idle worker of a registering profile cannot meet:
 * the scheduler, which only learns profiles as workers register, warns
 * with the class, the worker and the idle figure, and serves the worker
 * all the same. tpu-v6e's bare decode step at 64K of context is 25.8 ms,
 * gpu-h100's 21.9. */
static void test_scheduler_warns_of_infeasible_slo(void **state) {
  fixture_t *f = *state;
  f->scheduler = start_scheduler(f, "--slo=agent=2000+250:25");
  start_worker(f, "tpu-0", "tpu-v6e");
  start_worker(f, "gpu-0", "gpu-h100");
  size_t two = 2;
  assert_true(zclient_wait_status(f->clients, zclient_has_n_workers, &two,
                                  START_TIMEOUT_MS));
  assert_int_equal(
      harness_wait_log(f->sched_log,
                       "worker tpu-0: --slo: SLO of agent: TPOT target 25 ms "
                       "is below what an idle tpu worker (profile tpu-v6e) "
                       "takes per output token at 65536 tokens of context, "
                       "25.8 ms",
                       START_TIMEOUT_MS),
      0);
  assert_int_equal(harness_count_log(f->sched_log, "worker gpu-0: --slo"), 0);
}

static void test_bad_profile_and_busy_endpoint(void **state) {
  fixture_t *f = *state;
  char *argv[] = {(char *)harness_bin("infsched-worker"), "--profile",
                  "no-such-chip", "--profiles",
                  (char *)harness_source("configs/profiles.yaml"), NULL};
  assert_int_equal(run(f, argv), 2);
  f->scheduler = start_scheduler(f, NULL);
  assert_int_equal(harness_wait_log(f->sched_log, "listening", 5000), 0);
  /* Same endpoints again: the second scheduler cannot bind. */
  char *again[] = {(char *)harness_bin("infsched-scheduler"), "--clients",
                   f->clients, "--workers", f->workers, "--http", "off",
                   NULL};
  assert_int_equal(run(f, again), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cli_help_and_usage_errors, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_sim_lost_requests_exit_1, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_scheduler_warns_of_infeasible_slo,
                                      setup, harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_bad_profile_and_busy_endpoint, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_worker_answers_forwarded, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_bad_input_answered, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_misshapen_options_refused_by_worker,
                                      setup, harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_scheduler_restart, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_streams_migrate_when_worker_killed,
                                      setup, harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_scheduler_killed_mid_load, setup,
                                      harness_fixture_end),
      cmocka_unit_test_setup_teardown(test_worker_killed_mid_run, setup,
                                      harness_fixture_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
