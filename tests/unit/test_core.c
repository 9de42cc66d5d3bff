/* Unit tests of the scheduling core: pure, no sockets, explicit time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "core.h"
#include "core_fixture.h"
#include "profile_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS INFS_US_PER_MS

typedef struct fixture {
  core_t *core;
  infs_profile_t gpu;
  infs_profile_t sram;
  core_peer_t client;
  core_peer_t w[4];
} fixture_t;

static infs_profile_t profile(const char *name, infs_worker_class_t cls,
                              uint32_t max_context) {
  infs_profile_t p;
  memset(&p, 0, sizeof p);
  snprintf(p.name, sizeof p.name, "%s", name);
  p.cls = cls;
  p.max_batch = 8;
  p.max_context = max_context;
  p.kv_tokens = max_context * 4;
  fixture_roofline(&p, 17, 0.1, 0, 0);
  p.block_size = 16;
  return p;
}

static core_t *new_core(const char *policy, uint32_t queue_limit) {
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.policy = policy;
  cfg.heartbeat_interval = 100 * MS;
  cfg.heartbeat_miss = 3;
  cfg.queue_timeout = 1000 * MS;
  cfg.max_attempts = 2;
  for (int i = 0; i < INFS_CLASS_COUNT; i++)
    cfg.queue_limit[i] = queue_limit;
  int err;
  core_t *c = core_new(&cfg, 0, &err);
  assert_non_null(c);
  return c;
}

static void add_worker(fixture_t *f, int i, const char *id,
                       const infs_profile_t *p, uint32_t capacity,
                       infs_time_t now) {
  core_worker_info_t info = {
      .worker_id = id, .model = "m", .backend = "sim", .profile = p,
      .capacity = capacity};
  core_on_register(f->core, now, &f->w[i], &info);
}

static int setup_policy(void **state, const char *policy, uint32_t capacity) {
  static fixture_t f;
  memset(&f, 0, sizeof f);
  f.core = new_core(policy, 2);
  f.gpu = profile("gpu", INFS_WORKER_GPU, 131072);
  f.sram = profile("sram", INFS_WORKER_SRAM, 32768);
  f.client = fixture_peer("client-a");
  f.w[0] = fixture_peer("w0");
  f.w[1] = fixture_peer("w1");
  f.w[2] = fixture_peer("w2");
  f.w[3] = fixture_peer("w3");
  add_worker(&f, 0, "gpu-0", &f.gpu, capacity, 0);
  add_worker(&f, 1, "gpu-1", &f.gpu, capacity, 0);
  add_worker(&f, 2, "sram-0", &f.sram, capacity, 0);
  core_actions_clear(f.core);
  *state = &f;
  return 0;
}

static int setup_ll(void **state) { return setup_policy(state, "least_loaded", 4); }
static int setup_rr(void **state) { return setup_policy(state, "round_robin", 4); }
static int setup_cap1(void **state) { return setup_policy(state, "least_loaded", 1); }
static int setup_roomy(void **state) { return setup_policy(state, "least_loaded", 64); }

static int teardown(void **state) {
  fixture_t *f = *state;
  core_destroy(&f->core);
  return 0;
}

static void submit(fixture_t *f, infs_time_t now, uint64_t id,
                   uint32_t prompt, const char *model) {
  core_request_t r = {.id = id, .model = model, .prompt_tokens = prompt,
                      .max_tokens = 10, .cls = INFS_CLASS_AGENT};
  core_on_submit(f->core, now, &f->client, &r);
}

/* The n-th action of a kind in the outbox, or NULL. */
static const core_action_t *find(const core_t *c, core_action_kind_t kind,
                                 int nth) {
  size_t n;
  const core_action_t *a = core_actions(c, &n);
  for (size_t i = 0; i < n; i++)
    if (a[i].kind == kind && nth-- == 0)
      return &a[i];
  return NULL;
}

static size_t count(const core_t *c, core_action_kind_t kind) {
  size_t n, k = 0;
  const core_action_t *a = core_actions(c, &n);
  for (size_t i = 0; i < n; i++)
    k += a[i].kind == kind;
  return k;
}

static int worker_index(const fixture_t *f, const core_action_t *a) {
  for (int i = 0; i < 4; i++)
    if (a->peer.len == f->w[i].len &&
        memcmp(a->peer.id, f->w[i].id, a->peer.len) == 0)
      return i;
  return -1;
}

/* A backend failure before the first token sends the request to another
 * worker, not to the client; three in a row open the worker's breaker for
 * a second, an unhealthy heartbeat keeps work away until a healthy one. */
static void test_backend_failures(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 100, "m");
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  int first = worker_index(f, d);
  uint64_t id = d->request_id;
  core_actions_clear(f->core);
  core_on_worker_error(f->core, 1 * MS, &f->w[first], id, INFS_WIRE_BACKEND,
                       "upstream down");
  assert_null(find(f->core, CORE_ACT_ERROR, 0));
  d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  assert_int_not_equal(worker_index(f, d), first);
  core_actions_clear(f->core);

  /* Three failures in a row on t, another worker (a bad request is the
   * client's and does not count): its breaker opens, nothing goes there. */
  int t = first == 0 ? 1 : 0;
  static const struct {
    int code;
    bool opens;
  } table[] = {{INFS_WIRE_BACKEND, false},
               {INFS_WIRE_BADREQUEST, false},
               {INFS_WIRE_UPSTREAMTIMEOUT, false},
               {INFS_WIRE_BACKEND, true}};
  uint64_t next = 10;
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    /* Fill the others so the request lands on gpu-0. */
    core_load_t load = {0};
    core_on_heartbeat(f->core, 2 * MS, &f->w[t], &load);
    core_actions_clear(f->core);
    for (;;) {
      submit(f, 2 * MS, next++, 100, "m");
      d = find(f->core, CORE_ACT_DISPATCH, 0);
      assert_non_null(d);
      if (worker_index(f, d) == t)
        break;
      core_actions_clear(f->core);
    }
    id = d->request_id;
    core_actions_clear(f->core);
    core_on_worker_error(f->core, 3 * MS, &f->w[t], id, table[i].code, "x");
    assert_int_equal(core_stats(f->core)->breaker_opened, table[i].opens);
    core_actions_clear(f->core);
  }
  assert_int_equal(core_stats(f->core)->breaker_opened, 1);
  /* t takes nothing for a second, then takes work again. */
  for (int i = 0; i < 6; i++) {
    submit(f, 500 * MS, 100 + i, 100, "m");
    d = find(f->core, CORE_ACT_DISPATCH, 0);
    assert_true(!d || worker_index(f, d) != t);
    core_actions_clear(f->core);
  }
  core_load_t sick = {.unhealthy = true}, well = {0};
  for (int i = 0; i < 3; i++)
    core_on_heartbeat(f->core, 1100 * MS, &f->w[i], i == t ? &well : &sick);
  core_actions_clear(f->core);
  submit(f, 1100 * MS, 200, 100, "m");
  d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  assert_int_equal(worker_index(f, d), t);
  core_actions_clear(f->core);
  /* Everyone unhealthy: it waits; a healthy heartbeat places it. */
  core_on_heartbeat(f->core, 1100 * MS, &f->w[t], &sick);
  core_actions_clear(f->core);
  submit(f, 1100 * MS, 201, 100, "m");
  assert_null(find(f->core, CORE_ACT_DISPATCH, 0));
  core_on_heartbeat(f->core, 1200 * MS, &f->w[t], &well);
  d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  assert_int_equal(worker_index(f, d), t);
}

/* A worker that registers saying its backend is unhealthy takes nothing
 * until a heartbeat says it is well: a scheduler that lost a worker and
 * takes it back does not count it healthy in between. */
static void test_register_unhealthy(void **state) {
  fixture_t *f = *state;
  const core_load_t sick = {.unhealthy = true}, well = {0};
  for (int i = 0; i < 3; i++)
    core_on_heartbeat(f->core, 1 * MS, &f->w[i], &sick);
  core_worker_info_t info = {.worker_id = "gpu-3", .model = "m",
                             .backend = "sim", .profile = &f->gpu,
                             .capacity = 4, .unhealthy = true};
  core_on_register(f->core, 1 * MS, &f->w[3], &info);
  assert_non_null(find(f->core, CORE_ACT_REGISTERED, 0));
  core_actions_clear(f->core);
  submit(f, 2 * MS, 1, 100, "m");
  assert_null(find(f->core, CORE_ACT_DISPATCH, 0));
  core_on_heartbeat(f->core, 3 * MS, &f->w[3], &well);
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  assert_int_equal(worker_index(f, d), 3);
}

static void test_dispatch_stream_done(void **state) {
  fixture_t *f = *state;
  submit(f, 10 * MS, 7, 100, "");
  const core_action_t *acc = find(f->core, CORE_ACT_ACCEPTED, 0);
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(acc);
  assert_int_equal(acc->request_id, 7);
  assert_non_null(d);
  assert_int_equal(d->request->prompt_tokens, 100);
  assert_int_equal(d->request->ttft_ms, 2000); /* agent default */
  uint64_t core_id = d->request_id;
  int w = worker_index(f, d);
  assert_true(w >= 0);
  core_actions_clear(f->core);

  int token = 1;
  core_on_chunk(f->core, 20 * MS, &f->w[w], core_id, 3, NULL, 0, &token);
  const core_action_t *ch = find(f->core, CORE_ACT_CHUNK, 0);
  assert_non_null(ch);
  assert_int_equal(ch->request_id, 7);
  assert_ptr_equal(ch->passthrough, &token);
  assert_memory_equal(ch->peer.id, f->client.id, f->client.len);
  core_actions_clear(f->core);

  core_on_done(f->core, 30 * MS, &f->w[w], core_id, NULL, &token);
  const core_action_t *done = find(f->core, CORE_ACT_DONE, 0);
  assert_non_null(done);
  assert_int_equal(done->request_id, 7);
  assert_int_equal(core_open_requests(f->core), 0);
  assert_int_equal(core_stats(f->core)->completed, 1);
  core_actions_clear(f->core);

  /* A late chunk for the finished request is dropped, not forwarded. */
  core_on_chunk(f->core, 40 * MS, &f->w[w], core_id, 1, NULL, 0, &token);
  assert_null(find(f->core, CORE_ACT_CHUNK, 0));
  assert_int_equal(core_stats(f->core)->stale_messages, 1);
}

/* A worker that sends more text than a request's max_tokens can be (10
 * tokens, 2560 bytes) fails it with one answer and is told to cancel it,
 * rather than have the core keep its text without end. */
static void test_endless_text_bounded(void **state) {
  fixture_t *f = *state;
  submit(f, 10 * MS, 7, 100, "");
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  uint64_t core_id = d->request_id;
  int w = worker_index(f, d);
  core_actions_clear(f->core);
  char text[2048];
  memset(text, 'a', sizeof text);
  int token = 1;
  core_on_chunk(f->core, 20 * MS, &f->w[w], core_id, 1, text, sizeof text,
                &token);
  assert_non_null(find(f->core, CORE_ACT_CHUNK, 0));
  core_actions_clear(f->core);

  core_on_chunk(f->core, 30 * MS, &f->w[w], core_id, 0, text, 513, &token);
  assert_null(find(f->core, CORE_ACT_CHUNK, 0));
  const core_action_t *e = find(f->core, CORE_ACT_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->request_id, 7);
  assert_int_equal(e->code, INFS_WIRE_BACKEND);
  assert_non_null(strstr(e->message, "more than 2560 bytes of text"));
  const core_action_t *cancel = find(f->core, CORE_ACT_CANCEL, 0);
  assert_non_null(cancel);
  assert_int_equal(cancel->request_id, core_id);
  assert_int_equal(count(f->core, CORE_ACT_ERROR), 1);
  assert_int_equal(core_open_requests(f->core), 0);
  core_actions_clear(f->core);

  /* The worker's Done after the cancel is no second answer. */
  core_on_done(f->core, 40 * MS, &f->w[w], core_id, NULL, &token);
  assert_null(find(f->core, CORE_ACT_DONE, 0));
  assert_null(find(f->core, CORE_ACT_ERROR, 0));
}

/* Tool calls and log probabilities are bounded the same way, apart from
 * the text: 4,096 bytes a token of max_tokens. */
static void test_endless_extras_bounded(void **state) {
  fixture_t *f = *state;
  submit(f, 10 * MS, 8, 100, "");
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  uint64_t core_id = d->request_id;
  int w = worker_index(f, d);
  core_actions_clear(f->core);
  int token = 1;
  core_on_chunk_parts(f->core, 20 * MS, &f->w[w], core_id, 1, "a", 1,
                      10 * CORE_TOKEN_EXTRA_BYTES_MAX, &token);
  assert_non_null(find(f->core, CORE_ACT_CHUNK, 0));
  core_actions_clear(f->core);

  core_on_chunk_parts(f->core, 30 * MS, &f->w[w], core_id, 0, NULL, 0, 1,
                      &token);
  assert_null(find(f->core, CORE_ACT_CHUNK, 0));
  const core_action_t *e = find(f->core, CORE_ACT_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->request_id, 8);
  assert_int_equal(e->code, INFS_WIRE_BACKEND);
  assert_non_null(
      strstr(e->message, "more than 40960 bytes of tool calls and log"));
  assert_non_null(find(f->core, CORE_ACT_CANCEL, 0));
  assert_int_equal(core_open_requests(f->core), 0);
}

static void test_round_robin_order(void **state) {
  fixture_t *f = *state;
  int expect[] = {0, 1, 2, 0, 1, 2};
  for (int i = 0; i < 6; i++) {
    submit(f, (infs_time_t)i * MS, (uint64_t)i + 1, 10, "");
    const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
    assert_non_null(d);
    assert_int_equal(worker_index(f, d), expect[i]);
    core_actions_clear(f->core);
  }
}

static void test_least_loaded_spreads_burst(void **state) {
  fixture_t *f = *state;
  int per_worker[3] = {0};
  /* Six requests in the same instant, no heartbeat in between. */
  for (int i = 0; i < 6; i++) {
    submit(f, 5 * MS, (uint64_t)i + 1, 10, "");
    const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
    assert_non_null(d);
    per_worker[worker_index(f, d)]++;
    core_actions_clear(f->core);
  }
  for (int i = 0; i < 3; i++)
    assert_int_equal(per_worker[i], 2);
}

static void test_least_loaded_picks_idle(void **state) {
  fixture_t *f = *state;
  /* One request on each worker, then the one on gpu-1 finishes. */
  uint64_t on[3] = {0};
  for (uint64_t id = 1; id <= 3; id++) {
    submit(f, 0, id, 10, "");
    const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
    on[worker_index(f, d)] = d->request_id;
    core_actions_clear(f->core);
  }
  for (int w = 0; w < 3; w++)
    assert_int_not_equal(on[w], 0);
  core_on_done(f->core, 1 * MS, &f->w[1], on[1], NULL, NULL);
  core_actions_clear(f->core);
  submit(f, 2 * MS, 4, 10, "");
  assert_int_equal(worker_index(f, find(f->core, CORE_ACT_DISPATCH, 0)), 1);
}

static void test_context_never_exceeded(void **state) {
  fixture_t *f = *state;
  /* 80k prompt: only the GPUs (128k) may take it, never the 32k SRAM. */
  for (int i = 0; i < 6; i++) {
    submit(f, 0, (uint64_t)i + 1, 80000, "");
    const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
    assert_non_null(d);
    assert_int_not_equal(worker_index(f, d), 2);
    core_actions_clear(f->core);
  }
  /* Past every worker's context: rejected with a reason, never queued. */
  submit(f, 0, 99, 200000, "");
  const core_action_t *e = find(f->core, CORE_ACT_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_REJECTED_CONTEXT);
  assert_non_null(strstr(e->message, "max context"));
  assert_null(find(f->core, CORE_ACT_ACCEPTED, 0));
}

static void test_unknown_model_rejected(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 10, "other-model");
  const core_action_t *e = find(f->core, CORE_ACT_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_REJECTED_NO_WORKER);
  assert_int_equal(core_stats(f->core)->rejected, 1);
}

static void test_bad_and_duplicate_requests(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 0, "");
  assert_int_equal(find(f->core, CORE_ACT_ERROR, 0)->code,
                   INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST);
  core_actions_clear(f->core);
  submit(f, 0, 2, 10, "");
  submit(f, 0, 2, 10, "");
  assert_int_equal(count(f->core, CORE_ACT_DISPATCH), 1);
  assert_int_equal(find(f->core, CORE_ACT_ERROR, 0)->code,
                   INFSCHED__ERROR_CODE__ERROR_DUPLICATE);
}

static void test_queue_then_dispatch_on_done(void **state) {
  fixture_t *f = *state; /* capacity 1 per worker, queue limit 2 */
  for (uint64_t id = 1; id <= 3; id++)
    submit(f, 0, id, 10, "");
  assert_int_equal(count(f->core, CORE_ACT_DISPATCH), 3);
  const core_action_t *first = find(f->core, CORE_ACT_DISPATCH, 0);
  uint64_t first_id = first->request_id;
  int w = worker_index(f, first);
  core_actions_clear(f->core);

  submit(f, 1 * MS, 4, 10, "");
  submit(f, 1 * MS, 5, 10, "");
  assert_int_equal(count(f->core, CORE_ACT_ACCEPTED), 2);
  assert_int_equal(count(f->core, CORE_ACT_DISPATCH), 0);
  assert_int_equal(core_queued(f->core), 2);
  core_actions_clear(f->core);

  /* The queue holds two: the third waiting request is rejected. */
  submit(f, 1 * MS, 6, 10, "");
  const core_action_t *e = find(f->core, CORE_ACT_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_FULL);
  assert_null(find(f->core, CORE_ACT_ACCEPTED, 0));
  core_actions_clear(f->core);

  /* Capacity frees up: the oldest queued request goes out. */
  core_on_done(f->core, 2 * MS, &f->w[w], first_id, NULL, NULL);
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  assert_int_equal(worker_index(f, d), w);
  assert_int_equal(core_queued(f->core), 1);
}

static void test_queue_timeout(void **state) {
  fixture_t *f = *state; /* capacity 1 */
  for (uint64_t id = 1; id <= 4; id++)
    submit(f, 0, id, 10, "");
  core_actions_clear(f->core);
  assert_int_equal(core_queued(f->core), 1);
  assert_int_equal(core_next_deadline(f->core) <= 1000 * MS, 1);
  /* Workers stay alive; the queued request times out at 1000 ms. */
  static const struct {
    infs_time_t now;
    size_t errors;
  } table[] = {{50 * MS, 0}, {999 * MS, 0}, {1000 * MS, 1}};
  core_load_t load = {0};
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    for (int w = 0; w < 3; w++)
      core_on_heartbeat(f->core, table[i].now, &f->w[w], &load);
    core_on_tick(f->core, table[i].now);
    assert_int_equal(count(f->core, CORE_ACT_ERROR), table[i].errors);
  }
  assert_int_equal(find(f->core, CORE_ACT_ERROR, 0)->code,
                   INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_TIMEOUT);
}

/* Registered workers that serve a model but none serving it (unhealthy or
 * draining): its queued requests are rejected with
 * ERROR_REJECTED_UNAVAILABLE once none has served for the grace
 * (heartbeat_interval x heartbeat_miss = 300 ms here), counted from the
 * request's arrival when it came later; a worker that recovers within it
 * takes them, and a model still served is not touched. The table is the
 * pretended time of each step. */
static void test_stranded_requests_rejected_after_grace(void **state) {
  fixture_t *f = *state;
  core_worker_info_t other = {.worker_id = "other-0",
                              .model = "other",
                              .backend = "sim",
                              .profile = &f->gpu,
                              .capacity = 4};
  core_on_register(f->core, 0, &f->w[3], &other);
  const core_load_t sick = {.unhealthy = true}, leaving = {.draining = true},
                    well = {0};
  /* What each worker's heartbeats say; w3 serves another model. */
  const core_load_t *says[4] = {&sick, &leaving, &sick, &well};
  enum { W0_WELL, W0_SICK, SUBMIT, TICK };
  static const struct {
    infs_time_t now;
    int step;
    uint64_t request; /* SUBMIT: its id; else the one answered, or 0 */
    const char *model;
    core_action_kind_t kind; /* what it gets now: ERROR (rejected) or
                                DISPATCH, or 0 for nothing */
  } table[] = {
      {0, TICK, 0, NULL, 0},  /* the first heartbeats */
      {0, SUBMIT, 9, "other", CORE_ACT_DISPATCH}, /* other is served */
      {0, SUBMIT, 1, "m", 0}, /* queued: nobody serves m */
      {100, TICK, 0, NULL, 0},                    /* none serving m since */
      {300, TICK, 0, NULL, 0},                    /* for 200 ms */
      {350, SUBMIT, 2, "m", 0},                   /* 2 arrives into it */
      {400, TICK, 1, NULL, CORE_ACT_ERROR},       /* 1: 300 ms since 100 */
      {600, TICK, 0, NULL, 0},                    /* 2: 250 ms since 350 */
      {620, W0_WELL, 2, NULL, CORE_ACT_DISPATCH}, /* recovered: 2 runs */
      {650, TICK, 0, NULL, 0},
      {700, W0_SICK, 0, NULL, 0},
      {700, SUBMIT, 3, "m", 0},
      {750, TICK, 0, NULL, 0}, /* none serving since 750 */
      {1000, TICK, 0, NULL, 0},
      {1050, TICK, 3, NULL, CORE_ACT_ERROR},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    infs_time_t now = table[i].now * MS;
    core_actions_clear(f->core);
    switch (table[i].step) {
    case W0_WELL:
    case W0_SICK:
      says[0] = table[i].step == W0_WELL ? &well : &sick;
      core_on_heartbeat(f->core, now, &f->w[0], says[0]);
      break;
    case SUBMIT:
      submit(f, now, table[i].request, 100, table[i].model);
      break;
    default:
      /* Heartbeats on time: every worker stays registered. */
      for (int w = 0; w < 4; w++)
        core_on_heartbeat(f->core, now, &f->w[w], says[w]);
      core_actions_clear(f->core);
      core_on_tick(f->core, now);
    }
    const core_action_t *e = find(f->core, CORE_ACT_ERROR, 0);
    const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
    if (table[i].kind == CORE_ACT_ERROR) {
      if (count(f->core, CORE_ACT_ERROR) != 1 ||
          e->request_id != table[i].request)
        fail_msg("%lld ms: wanted the rejection of %llu alone",
                 (long long)table[i].now, (unsigned long long)table[i].request);
      assert_int_equal(e->code,
                       INFSCHED__ERROR_CODE__ERROR_REJECTED_UNAVAILABLE);
      assert_non_null(strstr(e->message, "model 'm'"));
      assert_non_null(strstr(e->message, "2 unhealthy, 1 draining"));
    } else if (e) {
      fail_msg("%lld ms: unexpected error '%s'", (long long)table[i].now,
               e->message);
    }
    if (table[i].kind == CORE_ACT_DISPATCH) {
      assert_non_null(d);
      assert_int_equal(worker_index(f, d), table[i].request == 9 ? 3 : 0);
    } else if (d) {
      fail_msg("%lld ms: unexpected dispatch", (long long)table[i].now);
    }
  }
  assert_int_equal(core_stats(f->core)->rejected_unavailable, 2);
  assert_int_equal(core_queued(f->core), 0);
}

/* A request waiting for room is put to the policy once on its submit and
 * not again on heartbeats, which cannot make room; a finished request
 * can. */
static void test_no_room_not_retried_on_heartbeats(void **state) {
  fixture_t *f = *state; /* capacity 1 */
  for (uint64_t id = 1; id <= 3; id++)
    submit(f, 0, id, 10, "");
  /* The fourth is put to the policy once, not again as its queue's head. */
  uint64_t filled = core_stats(f->core)->placement_attempts;
  submit(f, 0, 4, 10, "");
  assert_int_equal(core_stats(f->core)->placement_attempts, filled + 1);
  const core_action_t *first = find(f->core, CORE_ACT_DISPATCH, 0);
  uint64_t first_id = first->request_id;
  int w = worker_index(f, first);
  core_actions_clear(f->core);
  assert_int_equal(core_queued(f->core), 1);
  uint64_t before = core_stats(f->core)->placement_attempts;
  core_load_t load = {.running = 1};
  for (int i = 1; i <= 30; i++)
    for (int k = 0; k < 3; k++)
      core_on_heartbeat(f->core, (infs_time_t)i * 10 * MS, &f->w[k], &load);
  assert_int_equal(core_stats(f->core)->placement_attempts, before);
  core_on_done(f->core, 400 * MS, &f->w[w], first_id, NULL, NULL);
  assert_int_equal(core_stats(f->core)->placement_attempts, before + 1);
  assert_int_equal(count(f->core, CORE_ACT_DISPATCH), 1);
  assert_int_equal(core_queued(f->core), 0);
}

/* The action of a kind whose request id (the client's, to clients; the
 * core's, to workers) is id, or NULL. */
static const core_action_t *find_id(const core_t *c, core_action_kind_t kind,
                                    uint64_t id) {
  size_t n;
  const core_action_t *a = core_actions(c, &n);
  for (size_t i = 0; i < n; i++)
    if (a[i].kind == kind && a[i].request_id == id)
      return &a[i];
  return NULL;
}

static void test_worker_loss_redispatch_or_migrate(void **state) {
  fixture_t *f = *state;
  /* Two requests on one worker (round robin from worker 0, every third). */
  uint64_t ids[2];
  int n = 0;
  for (uint64_t id = 1; n < 2; id++) {
    submit(f, 0, id, 10, "");
    const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
    if (worker_index(f, d) == 0)
      ids[n++] = d->request_id;
    else
      core_on_done(f->core, 0, &f->w[worker_index(f, d)], d->request_id,
                   NULL, NULL);
    core_actions_clear(f->core);
  }
  /* The second has streamed two tokens; the first has not. */
  core_on_chunk(f->core, 10 * MS, &f->w[0], ids[1], 2, "ab cd ", 6, NULL);
  core_actions_clear(f->core);

  /* Workers 1 and 2 keep beating; worker 0 falls silent after 10 ms. */
  core_load_t load = {0};
  static const struct {
    infs_time_t now;
    int lost;
  } table[] = {{100 * MS, 0}, {200 * MS, 0}, {300 * MS, 0}, {350 * MS, 1}};
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    core_on_heartbeat(f->core, table[i].now, &f->w[1], &load);
    core_on_heartbeat(f->core, table[i].now, &f->w[2], &load);
    core_on_tick(f->core, table[i].now);
    assert_int_equal(core_stats(f->core)->workers_lost, table[i].lost);
  }
  assert_int_equal(core_worker_count(f->core), 2);
  /* Both run again elsewhere, the streamed one from where it stopped. */
  assert_int_equal(count(f->core, CORE_ACT_DISPATCH), 2);
  assert_int_equal(count(f->core, CORE_ACT_ERROR), 0);
  const core_action_t *d = find_id(f->core, CORE_ACT_DISPATCH, ids[0]);
  assert_non_null(d);
  assert_int_not_equal(worker_index(f, d), 0);
  assert_int_equal(d->resume_tokens, 0);
  d = find_id(f->core, CORE_ACT_DISPATCH, ids[1]);
  assert_non_null(d);
  int k = worker_index(f, d);
  assert_int_not_equal(k, 0);
  assert_int_equal(d->resume_tokens, 2);
  assert_int_equal(d->resume_len, 6);
  assert_memory_equal(d->resume_text, "ab cd ", 6);
  uint64_t client_id = d->client_request_id;
  assert_int_equal(core_stats(f->core)->redispatched, 2);
  assert_int_equal(core_stats(f->core)->migrated, 1);
  core_actions_clear(f->core);

  /* The stream goes on: a token from the new worker is not a first. */
  core_on_chunk(f->core, 400 * MS, &f->w[k], ids[1], 1, "ef ", 3, NULL);
  const core_action_t *ch = find(f->core, CORE_ACT_CHUNK, 0);
  assert_non_null(ch);
  assert_int_equal(ch->request_id, client_id);
  assert_true(ch->streamed);
  core_actions_clear(f->core);

  /* Its second worker falls silent too: attempts (2) are used up, and
   * the request fails with what went out. */
  int other = k == 1 ? 2 : 1;
  for (infs_time_t now = 500 * MS; now <= 800 * MS; now += 100 * MS) {
    core_on_heartbeat(f->core, now, &f->w[other], &load);
    core_on_tick(f->core, now);
  }
  const core_action_t *e = find_id(f->core, CORE_ACT_ERROR, client_id);
  assert_non_null(e);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_WORKER_LOST);
  assert_non_null(strstr(e->message, "after 3 tokens"));
  assert_true(e->streamed);
}

/* A worker that kept two requests through a scheduler's restart registers
 * holding them; a third it holds is open already (its client resubmitted
 * first). */
static void register_holding(fixture_t *f, infs_time_t now) {
  core_request_t spec = {.prompt_tokens = 10, .max_tokens = 10,
                         .cls = INFS_CLASS_AGENT, .model = "m"};
  core_held_t held[3] = {
      {.id = 901, .client = f->client, .spec = spec, .tokens = 3,
       .text = "a b c", .text_len = 5},
      {.id = 902, .client = f->client, .spec = spec, .tokens = 4,
       .text = "wxyz", .text_len = 4, .done = true},
      {.id = 903, .client = f->client, .spec = spec, .tokens = 1,
       .text = "q", .text_len = 1},
  };
  held[0].spec.id = 5;
  held[1].spec.id = 6;
  held[2].spec.id = 7;
  core_worker_info_t info = {.worker_id = "gpu-9", .model = "m",
                             .backend = "sim", .profile = &f->gpu,
                             .capacity = 4, .held = held, .n_held = 3};
  core_on_register(f->core, now, &f->w[3], &info);
}

static void resubmit(fixture_t *f, infs_time_t now, uint64_t id,
                     uint32_t have, const char *text) {
  core_request_t r = {.id = id, .model = "m", .prompt_tokens = 10,
                      .max_tokens = 10, .cls = INFS_CLASS_AGENT};
  core_on_resubmit(f->core, now, &f->client, &r, have, text, strlen(text));
}

static void test_adoption_after_scheduler_restart(void **state) {
  fixture_t *f = *state;
  /* Request 7's client came back first: it runs again from its 1 token. */
  resubmit(f, 0, 7, 1, "q");
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  assert_int_equal(d->resume_tokens, 1);
  assert_int_equal(core_stats(f->core)->resubmitted, 1);
  core_actions_clear(f->core);

  register_holding(f, 1 * MS);
  const core_action_t *reg = find(f->core, CORE_ACT_REGISTERED, 0);
  assert_non_null(reg);
  assert_int_equal(reg->n_adopted, 2);
  assert_int_equal(reg->adopted_from[0], 901);
  assert_int_equal(reg->adopted_from[1], 902);
  uint64_t as5 = reg->adopted_as[0], as6 = reg->adopted_as[1];
  const core_action_t *cancel = find(f->core, CORE_ACT_CANCEL, 0);
  assert_non_null(cancel);
  assert_int_equal(cancel->request_id, 903);
  assert_int_equal(core_stats(f->core)->adopted, 2);
  core_actions_clear(f->core);

  /* Unclaimed: its tokens and its Done are kept, not sent. */
  core_on_chunk(f->core, 2 * MS, &f->w[3], as5, 1, " d", 2, NULL);
  core_done_t figures = {.prompt_tokens = 10, .generated_tokens = 4};
  int token = 1;
  core_on_done(f->core, 2 * MS, &f->w[3], as6, &figures, &token);
  assert_int_equal(count(f->core, CORE_ACT_CHUNK), 0);
  assert_int_equal(count(f->core, CORE_ACT_DONE), 0);
  core_actions_clear(f->core);

  /* The client claims 5 with 2 tokens: it gets the 2 it missed. */
  resubmit(f, 3 * MS, 5, 2, "a b");
  const core_action_t *ch = find(f->core, CORE_ACT_CHUNK, 0);
  assert_non_null(ch);
  assert_null(ch->passthrough);
  assert_int_equal(ch->request_id, 5);
  assert_int_equal(ch->resume_tokens, 2);
  assert_int_equal(ch->resume_len, 4);
  assert_memory_equal(ch->resume_text, " c d", 4);
  core_actions_clear(f->core);
  /* From then on its stream is forwarded; a second resubmit with all of
   * it sends nothing. */
  core_on_chunk(f->core, 4 * MS, &f->w[3], as5, 1, " e", 2, &token);
  assert_non_null(find(f->core, CORE_ACT_CHUNK, 0));
  core_actions_clear(f->core);
  resubmit(f, 5 * MS, 5, 5, "a b c d e");
  assert_int_equal(count(f->core, CORE_ACT_CHUNK), 0);
  assert_int_equal(count(f->core, CORE_ACT_ERROR), 0);

  /* 6 finished before its client came: the rest and the kept Done. */
  resubmit(f, 6 * MS, 6, 0, "");
  ch = find(f->core, CORE_ACT_CHUNK, 0);
  assert_non_null(ch);
  assert_int_equal(ch->resume_tokens, 4);
  const core_action_t *done = find(f->core, CORE_ACT_DONE, 0);
  assert_non_null(done);
  assert_null(done->passthrough);
  assert_int_equal(done->request_id, 6);
  assert_int_equal(done->done->generated_tokens, 4);
  assert_string_equal(done->worker_id, "gpu-9");
  assert_int_equal(count(f->core, CORE_ACT_ERROR), 0);
}

/* An adopted request nobody claims is dropped after queue_timeout, with a
 * cancel to its worker and no answer to anyone. */
static void test_unclaimed_adoption_abandoned(void **state) {
  fixture_t *f = *state;
  register_holding(f, 0);
  core_actions_clear(f->core);
  core_load_t load = {0};
  for (infs_time_t now = 100 * MS; now <= 1200 * MS; now += 100 * MS) {
    for (int k = 0; k < 4; k++)
      core_on_heartbeat(f->core, now, &f->w[k], &load);
    core_on_tick(f->core, now);
  }
  assert_int_equal(core_stats(f->core)->abandoned, 3);
  assert_int_equal(count(f->core, CORE_ACT_CANCEL), 3);
  assert_int_equal(count(f->core, CORE_ACT_ERROR), 0);
  assert_int_equal(count(f->core, CORE_ACT_CHUNK), 0);
  assert_int_equal(count(f->core, CORE_ACT_DONE), 0);
  assert_int_equal(core_open_requests(f->core), 0);
}

static void test_reregistration_replaces_worker(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 10, "");
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  int w = worker_index(f, d);
  core_actions_clear(f->core);
  /* The same worker id from a new connection while the old one is heard
   * from: refused, the worker and its request stay. */
  const char *ids[] = {"gpu-0", "gpu-1", "sram-0"};
  add_worker(f, 3, ids[w], w == 2 ? &f->sram : &f->gpu, 4, 150 * MS);
  const core_action_t *e = find(f->core, CORE_ACT_WORKER_ERROR, 0);
  assert_non_null(e);
  assert_non_null(strstr(e->message, "held by a live connection"));
  assert_null(find(f->core, CORE_ACT_DISPATCH, 0));
  assert_int_equal(core_stats(f->core)->id_takeovers_refused, 1);
  core_actions_clear(f->core);
  /* After two heartbeat intervals of its silence it comes back from a
   * new connection (a restart) and replaces the old one. */
  add_worker(f, 3, ids[w], w == 2 ? &f->sram : &f->gpu, 4, 250 * MS);
  assert_int_equal(core_worker_count(f->core), 3);
  assert_non_null(find(f->core, CORE_ACT_REGISTERED, 0));
  const core_action_t *again = find(f->core, CORE_ACT_DISPATCH, 0);
  assert_non_null(again);
  assert_int_not_equal(worker_index(f, again), w);
}

static void test_cancel(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 10, "");
  const core_action_t *d = find(f->core, CORE_ACT_DISPATCH, 0);
  int w = worker_index(f, d);
  core_actions_clear(f->core);
  core_on_cancel(f->core, 1 * MS, &f->client, 1);
  const core_action_t *c = find(f->core, CORE_ACT_CANCEL, 0);
  assert_non_null(c);
  assert_int_equal(worker_index(f, c), w);
  assert_int_equal(find(f->core, CORE_ACT_ERROR, 0)->code,
                   INFSCHED__ERROR_CODE__ERROR_CANCELLED);
  assert_int_equal(core_open_requests(f->core), 0);
  core_actions_clear(f->core);
  /* A second cancel gets no second terminal answer. */
  core_on_cancel(f->core, 2 * MS, &f->client, 1);
  size_t n;
  core_actions(f->core, &n);
  assert_int_equal(n, 0);
}

/* Peers of the two doors live apart: a ZeroMQ client with the very bytes
 * of an HTTP caller's peer neither cancels its request nor collides with
 * its id. */
static void test_doors_are_namespaces(void **state) {
  fixture_t *f = *state;
  core_peer_t http = {.door = CORE_DOOR_HTTP, .len = 8, .id = {1}};
  core_peer_t forged = http;
  forged.door = CORE_DOOR_ZMQ;
  core_request_t r = {.id = 1, .prompt_tokens = 10, .max_tokens = 10,
                      .cls = INFS_CLASS_AGENT};
  core_on_submit(f->core, 0, &http, &r);
  assert_non_null(find(f->core, CORE_ACT_DISPATCH, 0));
  core_actions_clear(f->core);
  core_on_cancel(f->core, 1 * MS, &forged, 1);
  size_t n;
  core_actions(f->core, &n);
  assert_int_equal(n, 0);
  core_on_submit(f->core, 1 * MS, &forged, &r);
  assert_non_null(find(f->core, CORE_ACT_DISPATCH, 0));
  assert_null(find(f->core, CORE_ACT_ERROR, 0));
  assert_int_equal(core_open_requests(f->core), 2);
  core_actions_clear(f->core);
  core_on_cancel(f->core, 2 * MS, &http, 1);
  const core_action_t *e = find(f->core, CORE_ACT_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->peer.door, CORE_DOOR_HTTP);
  assert_int_equal(core_open_requests(f->core), 1);
}

static void test_unknown_worker_told_to_register(void **state) {
  fixture_t *f = *state;
  core_peer_t stranger = fixture_peer("nobody");
  core_load_t load = {0};
  core_on_heartbeat(f->core, 0, &stranger, &load);
  const core_action_t *e = find(f->core, CORE_ACT_WORKER_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_UNKNOWN_WORKER);
}

static void test_no_workers_yet_waits(void **state) {
  (void)state;
  core_t *c = new_core("least_loaded", 10);
  core_peer_t client = fixture_peer("c"), w = fixture_peer("w");
  core_request_t r = {.id = 1, .prompt_tokens = 5, .max_tokens = 5,
                      .cls = INFS_CLASS_INTERACTIVE};
  core_on_submit(c, 0, &client, &r);
  assert_int_equal(core_queued(c), 1);
  core_actions_clear(c);
  infs_profile_t p = profile("gpu", INFS_WORKER_GPU, 1000);
  core_worker_info_t info = {.worker_id = "late", .profile = &p,
                             .capacity = 1};
  core_on_register(c, 5 * MS, &w, &info);
  assert_non_null(find(c, CORE_ACT_DISPATCH, 0));
  core_destroy(&c);
}

/* Registers repeated by a worker started before its scheduler arrive at
 * once: each is answered, the worker is registered once and loses
 * nothing. Another registration from the same peer replaces it. */
static void test_repeated_register_is_one_registration(void **state) {
  (void)state;
  core_t *c = new_core("least_loaded", 10);
  core_peer_t client = fixture_peer("c"), w = fixture_peer("w");
  infs_profile_t p = profile("gpu", INFS_WORKER_GPU, 1000);
  core_worker_info_t info = {
      .worker_id = "early", .model = "m", .profile = &p, .capacity = 2};
  core_on_register(c, 0, &w, &info);
  core_request_t r = {.id = 1,
                      .model = "m",
                      .prompt_tokens = 5,
                      .max_tokens = 5,
                      .cls = INFS_CLASS_AGENT};
  core_on_submit(c, 1 * MS, &client, &r);
  assert_non_null(find(c, CORE_ACT_DISPATCH, 0));
  core_actions_clear(c);
  for (int i = 0; i < 3; i++)
    core_on_register(c, 2 * MS, &w, &info);
  assert_int_equal(count(c, CORE_ACT_REGISTERED), 3);
  assert_int_equal(count(c, CORE_ACT_ERROR), 0);
  assert_int_equal(core_stats(c)->registrations, 1);
  assert_int_equal(core_stats(c)->workers_lost, 0);
  assert_int_equal(core_open_requests(c), 1);
  /* Status tells registrations apart by their time (infsched-cluster:
   * a restarted worker's from its former process's). */
  core_worker_view_t v;
  size_t cursor = 0;
  assert_int_equal(core_worker_next(c, &cursor, &v), 0);
  assert_int_equal(v.registered_at, 0);

  info.capacity = 4;
  core_on_register(c, 3 * MS, &w, &info);
  assert_int_equal(core_stats(c)->registrations, 2);
  assert_int_equal(core_stats(c)->workers_lost, 1);
  cursor = 0;
  assert_int_equal(core_worker_next(c, &cursor, &v), 0);
  assert_int_equal(v.registered_at, 3 * MS);
  core_destroy(&c);
}

static void test_shutdown_answers_everything(void **state) {
  fixture_t *f = *state; /* capacity 1: three run, two wait */
  for (uint64_t id = 1; id <= 5; id++)
    submit(f, 0, id, 10, "");
  core_actions_clear(f->core);
  core_shutdown(f->core, 1 * MS);
  assert_int_equal(count(f->core, CORE_ACT_ERROR), 5);
  assert_int_equal(count(f->core, CORE_ACT_CANCEL), 3);
  assert_int_equal(core_open_requests(f->core), 0);
}

/* Figures from the wire that no worker has: each row spoils one field of a
 * valid registration, which must be refused with nothing registered. */
typedef struct bad_register {
  const char *what;
  void (*spoil)(infs_profile_t *p, core_worker_info_t *info);
} bad_register_t;

static void nan_compute(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->peak_tflops = NAN;
}
static void inf_price(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->price_per_hour = INFINITY;
}
static void neg_step(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->per_seq_ms = -1;
}
static void neg_inf_weights(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->weights_gb = -INFINITY;
}
static void absurd_compute(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->peak_tflops = 1e12;
}
static void tiny_bandwidth(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->mem_bw_gbs = 1e-300;
}
static void absurd_capacity(infs_profile_t *p, core_worker_info_t *i) {
  (void)p;
  i->capacity = 4000000000u;
}
static void zero_capacity(infs_profile_t *p, core_worker_info_t *i) {
  (void)p;
  i->capacity = 0;
}
static void context_beyond_kv(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->max_context = p->kv_tokens + 1;
}
static void absurd_cache(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->kv_tokens = UINT32_MAX;
  p->block_size = 1;
}
static void newline_id(infs_profile_t *p, core_worker_info_t *i) {
  (void)p;
  i->worker_id = "w\ninfo scheduler: forged";
}
static void control_profile_name(infs_profile_t *p, core_worker_info_t *i) {
  (void)i;
  p->name[0] = '\x1b';
}

static void test_register_refuses_absurd_figures(void **state) {
  (void)state;
  static const bad_register_t rows[] = {
      {"NaN peak_tflops", nan_compute},
      {"infinite price", inf_price},
      {"negative per_seq_ms", neg_step},
      {"-inf weights_gb", neg_inf_weights},
      {"1e12 peak TFLOP/s", absurd_compute},
      {"1e-300 GB/s", tiny_bandwidth},
      {"capacity 4e9", absurd_capacity},
      {"capacity 0", zero_capacity},
      {"max_context beyond kv_tokens", context_beyond_kv},
      {"2^32-1 KV blocks", absurd_cache},
      {"newline in worker_id", newline_id},
      {"control byte in profile name", control_profile_name},
  };
  core_peer_t w = fixture_peer("w");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    core_t *c = new_core("balanced", 10);
    infs_profile_t p = profile("gpu", INFS_WORKER_GPU, 1000);
    core_worker_info_t info = {.worker_id = "w", .profile = &p,
                               .capacity = 4};
    core_on_register(c, 0, &w, &info);
    assert_int_equal(core_worker_count(c), 1); /* the row's base is valid */
    core_destroy(&c);
    c = new_core("balanced", 10);
    rows[i].spoil(&p, &info);
    core_on_register(c, 0, &w, &info);
    const core_action_t *e = find(c, CORE_ACT_WORKER_ERROR, 0);
    if (!e || core_worker_count(c) != 0)
      fail_msg("%s was accepted", rows[i].what);
    assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST);
    core_destroy(&c);
  }
}

static void test_heartbeat_refuses_absurd_figures(void **state) {
  fixture_t *f = *state;
  core_load_t loads[] = {
      {.kv_used = UINT64_MAX, .kv_total = UINT64_MAX},
      {.tokens_per_s = NAN},
      {.cost_usd = -1},
      {.up_s = INFINITY},
      {.queued = UINT32_MAX},
      {.prefill_backlog_tokens = UINT64_MAX},
  };
  for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
    core_on_heartbeat(f->core, 1 * MS, &f->w[0], &loads[i]);
    const core_action_t *e = find(f->core, CORE_ACT_WORKER_ERROR, 0);
    if (!e)
      fail_msg("heartbeat %zu was accepted", i);
    assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST);
    core_actions_clear(f->core);
  }
  core_load_t fine = {.running = 3, .kv_used = 1000, .kv_total = 4000};
  core_on_heartbeat(f->core, 1 * MS, &f->w[0], &fine);
  assert_null(find(f->core, CORE_ACT_WORKER_ERROR, 0));
}

/* Block hashes cost the scheduler memory per queued request: no more than
 * the prompt's tokens fill (16-token blocks here) are taken. */
static void test_block_hashes_bounded(void **state) {
  fixture_t *f = *state;
  size_t million = 1000000;
  uint64_t *hashes = calloc(million, sizeof *hashes);
  assert_non_null(hashes);
  for (size_t i = 0; i < million; i++)
    hashes[i] = i + 1;
  core_request_t r = {.id = 1, .prompt_tokens = 1000, .max_tokens = 10,
                      .cls = INFS_CLASS_AGENT, .blocks = hashes,
                      .n_blocks = million};
  core_on_submit(f->core, 0, &f->client, &r);
  const core_action_t *e = find(f->core, CORE_ACT_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST);
  assert_int_equal(core_open_requests(f->core), 0);
  core_actions_clear(f->core);
  r.prompt_tokens = 100000; /* within the gpu's context, 6251 blocks */
  core_on_submit(f->core, 0, &f->client, &r);
  assert_non_null(find(f->core, CORE_ACT_ERROR, 0));
  core_actions_clear(f->core);
  r.prompt_tokens = 1000;
  r.n_blocks = 1000 / 16;
  core_on_submit(f->core, 0, &f->client, &r);
  assert_non_null(find(f->core, CORE_ACT_DISPATCH, 0));
  free(hashes);
}

/* Workers with large blocks do not make a client's smaller ones look too
 * many: the bound counts 16 tokens a block at most. */
static void test_block_bound_independent_of_large_blocks(void **state) {
  (void)state;
  core_t *c = new_core("least_loaded", 10);
  fixture_t f = {.core = c, .client = fixture_peer("c")};
  f.w[0] = fixture_peer("w");
  f.gpu = profile("gpu", INFS_WORKER_GPU, 4096);
  f.gpu.block_size = 256;
  add_worker(&f, 0, "w", &f.gpu, 8, 0);
  uint64_t hashes[64] = {0};
  core_request_t r = {.id = 1, .prompt_tokens = 1000, .max_tokens = 10,
                      .cls = INFS_CLASS_AGENT, .blocks = hashes,
                      .n_blocks = 63};
  core_actions_clear(c);
  core_on_submit(c, 0, &f.client, &r);
  assert_non_null(find(c, CORE_ACT_DISPATCH, 0));
  core_actions_clear(c);
  r.id = 2;
  r.n_blocks = 64;
  core_on_submit(c, 0, &f.client, &r);
  assert_non_null(find(c, CORE_ACT_ERROR, 0));
  core_destroy(&c);
}

/* What open requests hold is bounded in all: past it, a submit is turned
 * away as a full queue would turn it. */
static void test_open_bytes_bounded(void **state) {
  (void)state;
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.max_open_bytes = 10000;
  int err;
  core_t *c = core_new(&cfg, 0, &err);
  assert_non_null(c);
  core_peer_t client = fixture_peer("c");
  char prompt[4001];
  memset(prompt, 'x', sizeof prompt - 1);
  prompt[sizeof prompt - 1] = '\0';
  core_request_t r = {.prompt = prompt, .prompt_len = sizeof prompt - 1,
                      .max_tokens = 10, .cls = INFS_CLASS_AGENT};
  for (r.id = 1; r.id <= 3; r.id++)
    core_on_submit(c, 0, &client, &r);
  assert_int_equal(core_open_requests(c), 2); /* no worker: both wait */
  const core_action_t *e = find(c, CORE_ACT_ERROR, 0);
  assert_non_null(e);
  assert_int_equal(e->request_id, 3);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_FULL);
  core_destroy(&c);
}

/* The progress deadline is some multiple of the predicted TTFT; a worker
 * reporting the most load a heartbeat may carry predicts one past what a
 * deadline can hold, which must not wrap round to a deadline already
 * passed. */
static void test_progress_window_saturates(void **state) {
  (void)state;
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.policy = "round_robin";
  cfg.heartbeat_interval = 100 * MS;
  cfg.heartbeat_miss = 1000;
  int err;
  core_t *c = core_new(&cfg, 0, &err);
  assert_non_null(c);
  fixture_t f = {.core = c, .client = fixture_peer("c")};
  f.w[0] = fixture_peer("busy");
  f.gpu = profile("gpu", INFS_WORKER_GPU, 4096);
  fixture_roofline(&f.gpu, 17, 0.1, 1, 0); /* 1 ms per 1,000 KV tokens */
  add_worker(&f, 0, "busy", &f.gpu, 4, 0);
  core_load_t most = {.queued = CORE_LOAD_COUNT_MAX,
                      .running = CORE_LOAD_COUNT_MAX,
                      .kv_used = CORE_LOAD_TOKENS_MAX,
                      .kv_total = CORE_LOAD_TOKENS_MAX};
  core_on_heartbeat(c, 0, &f.w[0], &most);
  core_actions_clear(c);
  submit(&f, 0, 1, 100, "");
  assert_non_null(find(c, CORE_ACT_DISPATCH, 0));
  core_actions_clear(c);
  core_on_tick(c, 200 * MS);
  assert_null(find(c, CORE_ACT_CANCEL, 0));
  assert_int_equal(core_stats(c)->progress_timeouts, 0);
  core_destroy(&c);
}

/* A core of cfg with two GPU workers of capacity 4, a and b (w[0] and
 * w[1]), registered at 0. */
static fixture_t two_gpus(const core_config_t *cfg, const char *a,
                          const char *b) {
  int err;
  fixture_t f = {.core = core_new(cfg, 0, &err), .client = fixture_peer("c")};
  assert_non_null(f.core);
  f.w[0] = fixture_peer(a);
  f.w[1] = fixture_peer(b);
  f.gpu = profile("gpu", INFS_WORKER_GPU, 4096);
  add_worker(&f, 0, a, &f.gpu, 4, 0);
  add_worker(&f, 1, b, &f.gpu, 4, 0);
  return f;
}

/* Ticks the core at its cadence, half a heartbeat interval of 100 ms,
 * after from and up to to: a running scheduler checks no less often. */
static void tick_until(core_t *c, infs_time_t from, infs_time_t to) {
  for (infs_time_t t = from + 50 * MS; t <= to; t += 50 * MS)
    core_on_tick(c, t);
}

/* The scheduler itself stopped for a second (SIGSTOP, or starved of CPU):
 * its first check after it is more than a heartbeat interval late and
 * judges no worker, since what they sent meanwhile waits unread; the next
 * check, once that has been read, takes only the silent one for lost. */
static void test_stopped_scheduler_loses_no_beating_worker(void **state) {
  (void)state;
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.heartbeat_interval = 100 * MS;
  cfg.heartbeat_miss = 5;
  fixture_t f = two_gpus(&cfg, "beating", "silent");
  core_t *c = f.core;
  core_load_t load = {0};
  for (infs_time_t t = 50 * MS; t <= 200 * MS; t += 50 * MS) {
    if (t % (100 * MS) == 0) {
      core_on_heartbeat(c, t, &f.w[0], &load);
      core_on_heartbeat(c, t, &f.w[1], &load);
    }
    core_on_tick(c, t);
  }
  /* Stopped from 200 ms to 1200 ms: the check due at 250 ms comes then. */
  core_on_tick(c, 1200 * MS);
  assert_int_equal(core_stats(c)->workers_lost, 0);
  assert_int_equal(core_worker_count(c), 2);
  /* What "beating" sent while the scheduler was stopped is read. */
  core_on_heartbeat(c, 1200 * MS, &f.w[0], &load);
  core_on_tick(c, 1250 * MS);
  assert_int_equal(core_stats(c)->workers_lost, 1);
  core_worker_view_t v;
  size_t cursor = 0;
  assert_int_equal(core_worker_next(c, &cursor, &v), 0);
  assert_string_equal(v.worker_id, "beating");
  assert_int_equal(core_worker_next(c, &cursor, &v), -1);
  /* Late at every turn: only one check in a row judges nothing, and the
   * next finds "beating" silent since 1200 ms. */
  core_on_tick(c, 1500 * MS);
  assert_int_equal(core_stats(c)->workers_lost, 1);
  core_on_tick(c, 1800 * MS);
  assert_int_equal(core_stats(c)->workers_lost, 2);
  core_destroy(&c);
}

/* A worker that takes requests and never answers, while it heartbeats: a
 * request with no token by its deadline goes elsewhere, never back to it;
 * one that streamed and then stalls fails with the reason. */
static void test_silent_worker_requests_taken_back(void **state) {
  (void)state;
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.heartbeat_interval = 100 * MS;
  cfg.heartbeat_miss = 1000; /* its heartbeats keep it registered */
  cfg.progress_timeout = 1000 * MS;
  fixture_t f = two_gpus(&cfg, "silent", "good");
  core_t *c = f.core;
  core_actions_clear(c);
  submit(&f, 0, 1, 100, "");
  submit(&f, 0, 2, 100, "");
  const core_action_t *d = find(c, CORE_ACT_DISPATCH, 0);
  int first = worker_index(&f, d) == 0 ? 0 : 1;
  uint64_t on_silent = find(c, CORE_ACT_DISPATCH, first)->request_id;
  uint64_t on_good = find(c, CORE_ACT_DISPATCH, 1 - first)->request_id;
  assert_int_equal(worker_index(&f, find(c, CORE_ACT_DISPATCH, first)), 0);
  core_actions_clear(c);
  core_on_chunk(c, 500 * MS, &f.w[1], on_good, 1, NULL, 0, NULL);
  core_actions_clear(c);

  /* A tick before the deadline takes nothing back. */
  tick_until(c, 500 * MS, 900 * MS);
  assert_null(find(c, CORE_ACT_CANCEL, 0));
  tick_until(c, 900 * MS, 1100 * MS);
  const core_action_t *cancel = find(c, CORE_ACT_CANCEL, 0);
  assert_non_null(cancel);
  assert_int_equal(worker_index(&f, cancel), 0);
  assert_int_equal(cancel->request_id, on_silent);
  d = find(c, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  assert_int_equal(worker_index(&f, d), 1);
  assert_int_equal(d->client_request_id, 1);
  assert_null(find(c, CORE_ACT_ERROR, 0));
  assert_int_equal(core_stats(c)->progress_timeouts, 1);
  assert_int_equal(core_stats(c)->redispatched, 1);
  core_actions_clear(c);
  /* The silent worker's late chunk is stale: nothing reaches the client. */
  core_on_chunk(c, 1200 * MS, &f.w[0], on_silent, 1, NULL, 0, NULL);
  assert_null(find(c, CORE_ACT_CHUNK, 0));

  /* The good worker's stream (one token at 500 ms) stalls: past its
   * deadline the request is cancelled there and migrates, from its one
   * token, to the only other worker. */
  tick_until(c, 1200 * MS, 1400 * MS);
  assert_null(find(c, CORE_ACT_CANCEL, 0));
  tick_until(c, 1400 * MS, 1600 * MS);
  assert_null(find(c, CORE_ACT_ERROR, 0));
  cancel = find(c, CORE_ACT_CANCEL, 0);
  assert_non_null(cancel);
  assert_int_equal(worker_index(&f, cancel), 1);
  d = find(c, CORE_ACT_DISPATCH, 0);
  assert_non_null(d);
  assert_int_equal(worker_index(&f, d), 0);
  assert_int_equal(d->client_request_id, 2);
  assert_int_equal(d->resume_tokens, 1);
  assert_int_equal(core_stats(c)->migrated, 1);
  assert_int_equal(core_open_requests(c), 2);
  core_destroy(&c);
}

/* With its profiles file the scheduler believes a worker's profile name,
 * not its figures: an unknown name is refused, made-up figures under a
 * known name are replaced by the file's (and the registration says so). */
static void test_scheduler_trusts_its_profiles(void **state) {
  (void)state;
  profile_set_t *set = NULL;
  char err[512];
  assert_int_equal(profile_set_load(INFSCHED_SOURCE_DIR
                                    "/configs/profiles.yaml",
                                    &set, err, sizeof err),
                   0);
  const infs_profile_t *own = profile_set_find(set, "gpu-h100");
  assert_non_null(own);
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.profiles = set;
  int rc;
  core_t *c = core_new(&cfg, 0, &rc);
  assert_non_null(c);
  core_peer_t w = fixture_peer("w");
  infs_profile_t said = *own;
  core_worker_info_t info = {.worker_id = "w", .profile = &said,
                             .capacity = 4};

  snprintf(said.name, sizeof said.name, "made-up");
  core_on_register(c, 0, &w, &info);
  assert_non_null(find(c, CORE_ACT_WORKER_ERROR, 0));
  assert_int_equal(core_worker_count(c), 0);
  core_actions_clear(c);

  said = *own;
  said.price_per_hour = 0.0001;
  said.peak_tflops = 1e6;
  core_on_register(c, 0, &w, &info);
  const core_action_t *a = find(c, CORE_ACT_REGISTERED, 0);
  assert_non_null(a);
  assert_non_null(strstr(a->message, "differ"));
  size_t cursor = 0;
  core_worker_view_t v;
  assert_int_equal(core_worker_next(c, &cursor, &v), 0);
  assert_true(v.profile->price_per_hour == own->price_per_hour);
  assert_true(v.profile->peak_tflops == own->peak_tflops);
  assert_int_equal(core_stats(c)->profile_mismatches, 1);
  core_actions_clear(c);

  core_peer_t w2 = fixture_peer("w2");
  info.worker_id = "w2";
  said = *own;
  core_on_register(c, 0, &w2, &info);
  a = find(c, CORE_ACT_REGISTERED, 0);
  assert_non_null(a);
  assert_string_equal(a->message, "");
  assert_int_equal(core_stats(c)->profile_mismatches, 1);
  core_destroy(&c);
  profile_set_destroy(&set);
}

/* A worker id belongs to the key that first registered it: another key
 * is refused while its holder lives and after it is gone; the same key
 * gets it back from a new connection (a restart) once the old one is
 * silent. A table of registrations, in time order. */
static void test_worker_id_bound_to_key(void **state) {
  (void)state;
  static const char k1[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
  static const char k2[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  char too_long[CORE_KEY_MAX + 1];
  memset(too_long, 'k', sizeof too_long - 1);
  too_long[sizeof too_long - 1] = '\0';
  const struct {
    infs_time_t now;
    const char *conn, *key, *id;
    bool registered;
    uint64_t key_refused; /* id_key_refused after it */
    const char *says;     /* in the refusal */
  } rows[] = {
      {0, "a", k1, "w", true, 0, NULL},
      {10 * MS, "b", k2, "w", false, 1, "bound to another key"},
      /* a is silent long past the hold: the id is still k1's */
      {10000 * MS, "b", k2, "w", false, 2, "bound to another key"},
      {10000 * MS, "c", k1, "w", true, 2, NULL},
      {10000 * MS, "b", k2, "v", true, 2, NULL},
      {10010 * MS, "d", k1, "v", false, 3, "bound to another key"},
      {10010 * MS, "e", NULL, "x", true, 3, NULL},
      {10010 * MS, "f", "", "y", false, 3, "key must be"},
      {10010 * MS, "f", too_long, "y", false, 3, "key must be"},
  };
  core_config_t cfg;
  core_config_defaults(&cfg);
  int rc;
  core_t *c = core_new(&cfg, 0, &rc);
  assert_non_null(c);
  infs_profile_t p = profile("gpu", INFS_WORKER_GPU, 8192);
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    core_peer_t w = fixture_peer(rows[i].conn);
    core_worker_info_t info = {.key = rows[i].key,
                               .worker_id = rows[i].id,
                               .profile = &p,
                               .capacity = 4};
    core_on_register(c, rows[i].now, &w, &info);
    const core_action_t *e = find(c, CORE_ACT_WORKER_ERROR, 0);
    if (rows[i].registered) {
      assert_null(e);
      assert_non_null(find(c, CORE_ACT_REGISTERED, 0));
    } else {
      assert_non_null(e);
      assert_non_null(strstr(e->message, rows[i].says));
    }
    assert_int_equal(core_stats(c)->id_key_refused, rows[i].key_refused);
    core_actions_clear(c);
  }
  /* w (now c's connection), v (b's) and x: three live workers. */
  assert_int_equal(core_worker_count(c), 3);
  core_destroy(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_unhealthy, setup_roomy,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_backend_failures, setup_roomy,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_dispatch_stream_done, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_endless_text_bounded, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_endless_extras_bounded, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_round_robin_order, setup_rr,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_least_loaded_spreads_burst, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_least_loaded_picks_idle, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_context_never_exceeded, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unknown_model_rejected, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_and_duplicate_requests, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_queue_then_dispatch_on_done,
                                      setup_cap1, teardown),
      cmocka_unit_test_setup_teardown(test_no_room_not_retried_on_heartbeats,
                                      setup_cap1, teardown),
      cmocka_unit_test_setup_teardown(
          test_stranded_requests_rejected_after_grace, setup_ll, teardown),
      cmocka_unit_test_setup_teardown(test_queue_timeout, setup_cap1,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_adoption_after_scheduler_restart,
                                      setup_rr, teardown),
      cmocka_unit_test_setup_teardown(test_unclaimed_adoption_abandoned,
                                      setup_rr, teardown),
      cmocka_unit_test_setup_teardown(test_worker_loss_redispatch_or_migrate,
                                      setup_rr, teardown),
      cmocka_unit_test_setup_teardown(test_reregistration_replaces_worker,
                                      setup_ll, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup_ll, teardown),
      cmocka_unit_test_setup_teardown(test_doors_are_namespaces, setup_ll,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unknown_worker_told_to_register,
                                      setup_ll, teardown),
      cmocka_unit_test(test_no_workers_yet_waits),
      cmocka_unit_test(test_repeated_register_is_one_registration),
      cmocka_unit_test_setup_teardown(test_shutdown_answers_everything,
                                      setup_cap1, teardown),
      cmocka_unit_test(test_register_refuses_absurd_figures),
      cmocka_unit_test_setup_teardown(test_heartbeat_refuses_absurd_figures,
                                      setup_ll, teardown),
      cmocka_unit_test_setup_teardown(test_block_hashes_bounded, setup_ll,
                                      teardown),
      cmocka_unit_test(test_open_bytes_bounded),
      cmocka_unit_test(test_block_bound_independent_of_large_blocks),
      cmocka_unit_test(test_progress_window_saturates),
      cmocka_unit_test(test_silent_worker_requests_taken_back),
      cmocka_unit_test(test_stopped_scheduler_loses_no_beating_worker),
      cmocka_unit_test(test_scheduler_trusts_its_profiles),
      cmocka_unit_test(test_worker_id_bound_to_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
