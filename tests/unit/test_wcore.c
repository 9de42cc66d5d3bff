/* Unit tests of the worker core: pure, no sockets, pretended times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "wcore.h"
#include "wcore_wire.h"
#include "cost.h"

#include <string.h>

#define MS INFS_US_PER_MS
#define S INFS_US_PER_S

static infs_profile_t profile(void) {
  infs_profile_t p;
  memset(&p, 0, sizeof p);
  strcpy(p.name, "gpu-test");
  p.cls = INFS_WORKER_GPU;
  p.price_per_hour = 3.6; /* a dollar per 1,000 s */
  p.power_idle_w = 1000;
  p.power_busy_w = 2000;
  p.usd_per_mtok_in = 2.0;
  p.usd_per_mtok_out = 10.0;
  p.max_batch = 8;
  return p;
}

static infs_profile_t prof;

/* A worker up at t = 0 with 200 ms heartbeats. */
static wcore_t *new_worker(void) {
  prof = profile();
  wcore_config_t cfg = {
      .worker_id = "w0",
      .model = "m",
      .backend = "sim",
      .profile = &prof,
      .capacity = 16,
      .heartbeat_interval = 200 * MS,
      .kwh_usd = 0.36,
  };
  return wcore_new(&cfg, 0);
}

/* The one action in the outbox, which is then cleared. */
static wcore_action_t take_one(wcore_t *w) {
  size_t n;
  const wcore_action_t *a = wcore_actions(w, &n);
  assert_int_equal(n, 1);
  wcore_action_t copy = *a;
  wcore_actions_clear(w);
  return copy;
}

static void assert_no_action(wcore_t *w) {
  size_t n;
  wcore_actions(w, &n);
  assert_int_equal(n, 0);
}

static const wcore_load_t idle = {0};

static wcore_t *registered_worker(void) {
  wcore_t *w = new_worker();
  assert_int_equal(take_one(w).kind, WCORE_ACT_REGISTER);
  wcore_on_registered(w, 1 * MS, 0);
  return w;
}

/* Unregistered, the worker asks again at the first tick a retry interval
 * after its last Register, and only then. */
static void test_registration_retry(void **state) {
  (void)state;
  static const struct {
    infs_time_t now;
    bool registers;
  } ticks[] = {
      {200 * MS, false}, {400 * MS, false},  {600 * MS, false},
      {800 * MS, false}, {1000 * MS, true},  {1200 * MS, false},
      {1900 * MS, false}, {2100 * MS, true}, {2300 * MS, false},
  };
  wcore_t *w = new_worker();
  wcore_action_t a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_REGISTER);
  assert_int_equal(wcore_next_deadline(w), 200 * MS);
  for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++) {
    wcore_on_timer(w, ticks[i].now, &idle);
    size_t n;
    const wcore_action_t *acts = wcore_actions(w, &n);
    assert_int_equal(n, ticks[i].registers ? 1 : 0);
    if (n)
      assert_int_equal(acts[0].kind, WCORE_ACT_REGISTER);
    wcore_actions_clear(w);
    assert_int_equal(wcore_next_deadline(w), ticks[i].now + 200 * MS);
  }
  /* A tick before the deadline does nothing. */
  wcore_on_timer(w, 2400 * MS, &idle);
  assert_no_action(w);
  assert_false(wcore_registered(w));
  wcore_destroy(&w);
  assert_null(w);
}

/* Registered: a heartbeat per tick, numbered, the first with the whole
 * cache; the scheduler's interval applies from the next tick on. */
static void test_heartbeats(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  wcore_on_registered(w, 1 * MS, 500 * MS);
  wcore_load_t load = {.queued = 2, .running = 3, .kv_used = 100,
                       .kv_total = 1000, .prefill_backlog_tokens = 50,
                       .busy_s = 0.1, .generated_tokens = 40};
  static const struct {
    infs_time_t now;
    uint64_t generated;
    uint64_t seq;
    bool cache_reset;
    double tokens_per_s;
    infs_time_t next;
  } ticks[] = {
      {200 * MS, 40, 1, true, 200.0, 700 * MS},
      {700 * MS, 140, 2, false, 200.0, 1200 * MS},
      {1200 * MS, 140, 3, false, 0.0, 1700 * MS},
  };
  for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++) {
    load.generated_tokens = ticks[i].generated;
    wcore_on_timer(w, ticks[i].now, &load);
    wcore_action_t a = take_one(w);
    assert_int_equal(a.kind, WCORE_ACT_HEARTBEAT);
    assert_int_equal(a.heartbeat.seq, ticks[i].seq);
    assert_int_equal(a.heartbeat.cache_reset, ticks[i].cache_reset);
    assert_int_equal(a.heartbeat.load.running, 3);
    assert_float_equal(a.heartbeat.beat.tokens_per_s, ticks[i].tokens_per_s,
                       1e-9);
    assert_float_equal(a.heartbeat.beat.up_s, (double)ticks[i].now / S, 1e-12);
    assert_int_equal(wcore_next_deadline(w), ticks[i].next);
  }
  /* Registering again (after a reset) sends the whole cache again. */
  wcore_on_registered(w, 1300 * MS, 0);
  wcore_on_timer(w, 1700 * MS, &load);
  assert_true(take_one(w).heartbeat.cache_reset);
  wcore_destroy(&w);
}

/* Unknown worker: a registered worker keeps what it runs, holding its
 * output, and registers again listing it (in slot order); the new
 * scheduler's adoptions rename what it takes, a kept Done goes out, the
 * rest is dropped. An unregistered worker ignores the error, since it
 * answers a heartbeat sent before its Register. */
static void test_reset_on_unknown_worker(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  static const uint8_t client[] = {0, 'c', '1'};
  Infsched__Request spec = INFSCHED__REQUEST__INIT;
  spec.prompt = "p";
  spec.prompt_tokens = 10;
  spec.max_tokens = 50;
  for (uint64_t id = 1; id <= 3; id++) {
    assert_int_equal(
        wcore_on_dispatch(w, 10 * MS, id << 32 | id, 100 + id, 10, 0,
                          INFS_PHASE_FULL), 0);
    wcore_keep(w, id << 32 | id, &spec, client, sizeof client, NULL, 0);
  }
  wcore_on_tokens(w, 15 * MS, 1ull << 32 | 1, 2, "ab", 2);
  assert_int_equal(take_one(w).kind, WCORE_ACT_CHUNK);
  assert_int_equal(wcore_inflight(w), 3);
  assert_int_equal(wcore_on_unknown(w, 20 * MS), 3);
  assert_int_equal(take_one(w).kind, WCORE_ACT_REGISTER);
  assert_false(wcore_registered(w));
  assert_int_equal(wcore_inflight(w), 3);
  /* Without a scheduler the output is kept, not sent. */
  wcore_on_tokens(w, 21 * MS, 1ull << 32 | 1, 1, "c", 1);
  wcore_usage_t u = {.generated_tokens = 5};
  wcore_on_done(w, 21 * MS, 2ull << 32 | 2, &u);
  assert_no_action(w);
  Infsched__Held **held;
  assert_int_equal(wcore_held(w, &held), 3);
  assert_int_equal(held[0]->request->request_id, 1ull << 32 | 1);
  assert_int_equal(held[0]->client_request_id, 101);
  assert_int_equal(held[0]->tokens, 3);
  assert_string_equal(held[0]->text, "abc");
  assert_int_equal(held[0]->client.len, sizeof client);
  assert_int_equal(held[0]->request->max_tokens, 50);
  assert_false(held[0]->done);
  assert_true(held[1]->done);
  /* Unregistered: ignored, no second Register. */
  assert_int_equal(wcore_on_unknown(w, 30 * MS), 0);
  assert_no_action(w);
  /* The retry counts from the reset's Register. */
  wcore_on_timer(w, 1000 * MS, &idle);
  assert_no_action(w);
  wcore_on_timer(w, 1200 * MS, &idle);
  assert_int_equal(take_one(w).kind, WCORE_ACT_REGISTER);

  /* The new scheduler takes the first two, as 7 and 8. */
  wcore_on_registered(w, 1300 * MS, 0);
  const uint64_t from[] = {1ull << 32 | 1, 2ull << 32 | 2}, as[] = {7, 8};
  const uint64_t *dropped;
  assert_int_equal(wcore_on_adopted(w, 1300 * MS, from, as, 2, &dropped), 1);
  assert_int_equal(dropped[0], 3ull << 32 | 3);
  wcore_action_t a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_DONE);
  assert_int_equal(a.request_id, 8);
  assert_int_equal(a.client_request_id, 102);
  assert_int_equal(a.done.generated_tokens, 5);
  assert_int_equal(wcore_inflight(w), 1);
  wcore_on_tokens(w, 1310 * MS, 7, 1, "d", 1);
  a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_CHUNK);
  assert_int_equal(a.request_id, 7);
  assert_int_equal(a.client_request_id, 101);
  wcore_destroy(&w);
}

static void test_cancel(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  assert_int_equal(wcore_on_dispatch(w, 10 * MS, 7, 70, 100, 0,
                                     INFS_PHASE_FULL), 0);
  wcore_on_tokens(w, 15 * MS, 7, 1, "a", 1);
  wcore_action_t a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_CHUNK);
  assert_int_equal(a.request_id, 7);
  assert_int_equal(a.client_request_id, 70);
  uint32_t sent;
  assert_int_equal(wcore_streamed(w, 7, &sent), 0);
  assert_int_equal(sent, 1);
  /* Cancelled: the caller stops it, and nothing more goes out for it. */
  assert_true(wcore_on_cancel(w, 20 * MS, 7));
  assert_no_action(w);
  assert_int_equal(wcore_streamed(w, 7, &sent), -1);
  wcore_on_tokens(w, 21 * MS, 7, 3, "bcd", 3);
  wcore_on_failed(w, 21 * MS, 7, INFSCHED__ERROR_CODE__ERROR_BACKEND, "x");
  assert_no_action(w);
  assert_false(wcore_on_cancel(w, 22 * MS, 7));
  assert_false(wcore_on_cancel(w, 22 * MS, 8));
  /* The id may come back in a new dispatch. */
  assert_int_equal(wcore_on_dispatch(w, 30 * MS, 7, 71, 100, 0,
                                     INFS_PHASE_FULL), 0);
  assert_int_equal(wcore_inflight(w), 1);
  wcore_destroy(&w);
}

/* Tool calls go out as a chunk of their own, counted as tokens, their JSON
 * in the Chunk's tool_calls; unknown ids send nothing. Log probabilities
 * go the same way, as no tokens. */
static void test_tool_calls(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  assert_int_equal(wcore_on_dispatch(w, 10 * MS, 4, 40, 10, 0,
                                     INFS_PHASE_FULL),
                   0);
  static const char json[] = "[{\"index\":0,\"id\":\"call_1\"}]";
  wcore_on_tool_calls(w, 12 * MS, 4, 1, json);
  size_t n;
  const wcore_action_t *a = wcore_actions(w, &n);
  assert_int_equal(n, 1);
  assert_int_equal(a->kind, WCORE_ACT_CHUNK);
  assert_int_equal(a->tokens, 1);
  assert_null(a->text);
  wcore_msg_t m;
  Infsched__Envelope *env = wcore_wire_message(w, a, NULL, &m);
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_CHUNK);
  assert_int_equal(env->chunk->request_id, 40);
  assert_string_equal(env->chunk->tool_calls, json);
  assert_string_equal(env->chunk->text, "");
  wcore_actions_clear(w);
  uint32_t sent;
  assert_int_equal(wcore_streamed(w, 4, &sent), 0);
  assert_int_equal(sent, 1);
  wcore_on_tool_calls(w, 13 * MS, 5, 1, json);
  assert_no_action(w);
  /* Log probabilities: a chunk of no tokens. */
  static const char lp[] = "{\"content\":[]}";
  wcore_on_logprobs(w, 14 * MS, 4, lp);
  a = wcore_actions(w, &n);
  assert_int_equal(n, 1);
  assert_int_equal(a->tokens, 0);
  env = wcore_wire_message(w, a, NULL, &m);
  assert_string_equal(env->chunk->logprobs, lp);
  assert_string_equal(env->chunk->tool_calls, "");
  wcore_actions_clear(w);
  assert_int_equal(wcore_streamed(w, 4, &sent), 0);
  assert_int_equal(sent, 1);
  wcore_destroy(&w);
}

/* A Register says what the worker's heartbeats would: the backend's health
 * at the last timer and whether it drains, so that a worker a scheduler
 * lost and takes back is not counted healthy until its next heartbeat. */
static void test_register_says_health(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  const wcore_load_t sick = {.unhealthy = 1};
  const struct {
    const wcore_load_t *load;
    bool drain;
  } table[] = {{&idle, false}, {&sick, false}, {&idle, true}, {&sick, true}};
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    infs_time_t now = (infs_time_t)(i + 1) * 1000 * MS;
    wcore_on_timer(w, now, table[i].load);
    if (table[i].drain)
      wcore_drain(w, now);
    wcore_actions_clear(w);
    assert_int_equal(wcore_on_unknown(w, now), 0);
    wcore_action_t a = take_one(w);
    assert_int_equal(a.kind, WCORE_ACT_REGISTER);
    wcore_msg_t m;
    Infsched__Envelope *env = wcore_wire_message(w, &a, NULL, &m);
    assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_REGISTER);
    assert_int_equal(env->register_->unhealthy, table[i].load == &sick);
    assert_int_equal(env->register_->draining, table[i].drain);
    wcore_on_registered(w, now, 0);
  }
  wcore_destroy(&w);
}

/* Past the drain deadline, every request in flight is answered with the
 * error given, once, and forgotten: its later progress sends nothing. */
static void test_fail_all(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  wcore_drain(w, 5 * MS);
  wcore_on_timer(w, 5 * MS, &idle);
  assert_true(take_one(w).heartbeat.draining);
  for (uint64_t id = 1; id <= 3; id++)
    assert_int_equal(wcore_on_dispatch(w, 10 * MS, id, 10 * id, 10, 0,
                                       INFS_PHASE_FULL), 0);
  wcore_on_tokens(w, 15 * MS, 2, 1, "a", 1);
  assert_int_equal(take_one(w).kind, WCORE_ACT_CHUNK);
  assert_int_equal(wcore_fail_all(w, 40 * MS, INFS_WIRE_BACKEND, "deadline"),
                   3);
  size_t n;
  const wcore_action_t *a = wcore_actions(w, &n);
  assert_int_equal(n, 3);
  bool seen[4] = {false};
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(a[i].kind, WCORE_ACT_ERROR);
    assert_int_equal(a[i].code, INFS_WIRE_BACKEND);
    assert_string_equal(a[i].message, "deadline");
    assert_true(a[i].request_id >= 1 && a[i].request_id <= 3);
    assert_false(seen[a[i].request_id]);
    seen[a[i].request_id] = true;
  }
  wcore_actions_clear(w);
  assert_int_equal(wcore_inflight(w), 0);
  wcore_on_tokens(w, 41 * MS, 2, 1, "b", 1);
  wcore_on_done(w, 42 * MS, 3, &(wcore_usage_t){.generated_tokens = 1});
  assert_no_action(w);
  assert_int_equal(wcore_fail_all(w, 50 * MS, INFS_WIRE_BACKEND, "again"), 0);
  assert_no_action(w);
  wcore_destroy(&w);
}

/* A migrated request: the backend prefills the prompt and what the client
 * already has, generates the rest, and the Done counts it the client's
 * way. */
static void test_resumed_dispatch(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = 9;
  q.prompt = "fix this:";
  q.prompt_tokens = 100;
  q.max_tokens = 20;
  Infsched__Dispatch d = INFSCHED__DISPATCH__INIT;
  d.request = &q;
  d.client_request_id = 90;
  d.resume_tokens = 5;
  d.resume_text = " a b c d e";
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_DISPATCH;
  env.dispatch = &d;
  wcore_order_t o;
  wcore_wire_feed(w, 10 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_RUN);
  assert_int_equal(o.request.prompt_tokens, 105);
  assert_int_equal(o.request.max_tokens, 15);
  assert_string_equal(o.request.prompt, "fix this: a b c d e");
  assert_int_equal(o.request.prompt_len, strlen("fix this: a b c d e"));
  /* What the backend leaves out when it restarts the stream itself. */
  assert_int_equal(o.request.resumed, 5);
  assert_int_equal(o.request.resumed_len, strlen(" a b c d e"));

  wcore_on_tokens(w, 20 * MS, 9, 15, "x", 1);
  assert_int_equal(take_one(w).kind, WCORE_ACT_CHUNK);
  wcore_usage_t u = {
      .prompt_tokens = 105, .cached_tokens = 104, .generated_tokens = 15};
  wcore_on_done(w, 30 * MS, 9, &u);
  wcore_action_t a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_DONE);
  assert_int_equal(a.client_request_id, 90);
  assert_int_equal(a.done.prompt_tokens, 100);
  assert_int_equal(a.done.cached_tokens, 100);
  assert_int_equal(a.done.generated_tokens, 20);
  wcore_destroy(&w);
}

/* Errors: a duplicate id, a request without body, and the status of a
 * backend's refusal (too long for the context is a rejection). */
static void test_errors(void **state) {
  (void)state;
  static const struct {
    int rc;
    int code;
  } refusals[] = {
      {INFS_ECONTEXT, INFSCHED__ERROR_CODE__ERROR_REJECTED_CONTEXT},
      {INFS_EBUSY, INFSCHED__ERROR_CODE__ERROR_BACKEND},
      {-12, INFSCHED__ERROR_CODE__ERROR_BACKEND},
  };
  wcore_t *w = registered_worker();
  assert_int_equal(wcore_on_dispatch(w, 10 * MS, 5, 50, 10, 0,
                                     INFS_PHASE_FULL), 0);
  assert_int_equal(wcore_on_dispatch(w, 11 * MS, 5, 51, 10, 0,
                                     INFS_PHASE_FULL), -1);
  wcore_action_t a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_ERROR);
  assert_int_equal(a.code, INFSCHED__ERROR_CODE__ERROR_DUPLICATE);
  assert_int_equal(wcore_inflight(w), 1);
  wcore_on_bad_dispatch(w, 12 * MS, 0, "dispatch without a request");
  a = take_one(w);
  assert_int_equal(a.code, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST);
  assert_string_equal(a.message, "dispatch without a request");
  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
    uint64_t id = 100 + i;
    assert_int_equal(wcore_on_dispatch(w, 20 * MS, id, id, 10, 0,
                                       INFS_PHASE_FULL), 0);
    wcore_on_refused(w, 20 * MS, id, refusals[i].rc);
    a = take_one(w);
    assert_int_equal(a.kind, WCORE_ACT_ERROR);
    assert_int_equal(a.request_id, id);
    assert_int_equal(a.code, refusals[i].code);
    assert_string_equal(a.message, infs_strerror(refusals[i].rc));
  }
  assert_int_equal(wcore_inflight(w), 1);
  wcore_destroy(&w);
}

/* Done carries the request's marginal cost, and its per-token charges join
 * the pool cost the heartbeats report. */
static void test_accounting(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  assert_int_equal(wcore_on_dispatch(w, 100 * MS, 9, 90, 1000, 0,
                                     INFS_PHASE_FULL), 0);
  wcore_usage_t u = {.cached_tokens = 200,
                     .generated_tokens = 100,
                     .busy_s = 0.5,
                     .usd = 0.25};
  wcore_on_done(w, 1100 * MS, 9, &u);
  wcore_action_t a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_DONE);
  assert_int_equal(a.client_request_id, 90);
  assert_int_equal(a.done.prompt_tokens, 1000); /* the dispatched prompt */
  assert_int_equal(a.done.generated_tokens, 100);
  assert_int_equal(a.done.e2e_us, 1000 * MS);
  double tokens_usd = 2.0 * 1000 / 1e6 + 10.0 * 100 / 1e6;
  assert_float_equal(a.done.cost_usd,
                     cost_request_usd(&prof, 0.5, 1000, 100, 0.36) + 0.25,
                     1e-15);
  assert_int_equal(wcore_inflight(w), 0);
  wcore_load_t load = {.busy_s = 0.5, .generated_tokens = 100};
  wcore_on_timer(w, 2000 * MS, &load);
  a = take_one(w);
  double pool = cost_worker_usd(&prof, 2.0, 0.5, 0.36) + tokens_usd + 0.25;
  assert_float_equal(a.heartbeat.beat.cost_usd, pool, 1e-12);
  assert_float_equal(wcore_cost_usd(w, 2000 * MS, 0.5), pool, 1e-12);
  wcore_destroy(&w);
}

/* The wire messages of the actions. */
static void test_wire_messages(void **state) {
  (void)state;
  wcore_t *w = new_worker();
  wcore_msg_t m;
  wcore_action_t a = take_one(w);
  Infsched__Envelope *env = wcore_wire_message(w, &a, NULL, &m);
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_REGISTER);
  assert_string_equal(env->register_->worker_id, "w0");
  assert_string_equal(env->register_->backend, "sim");
  assert_string_equal(env->register_->profile->name, "gpu-test");
  assert_int_equal(env->register_->capacity, 16);

  wcore_on_registered(w, 1 * MS, 0);
  wcore_load_t load = {.running = 4};
  wcore_on_timer(w, 200 * MS, &load);
  a = take_one(w);
  static const uint64_t added[] = {11, 12}, removed[] = {13};
  wcore_cache_t cache = {added, 2, removed, 1};
  env = wcore_wire_message(w, &a, &cache, &m);
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_HEARTBEAT);
  assert_int_equal(env->heartbeat->seq, 1);
  assert_true(env->heartbeat->cache_reset);
  assert_int_equal(env->heartbeat->batch_size, 4);
  assert_int_equal(env->heartbeat->n_cache_added, 2);
  assert_int_equal(env->heartbeat->cache_removed[0], 13);

  assert_int_equal(wcore_on_dispatch(w, 300 * MS, 3, 30, 10, 0,
                                     INFS_PHASE_FULL), 0);
  wcore_on_tokens(w, 310 * MS, 3, 2, "hi", 2);
  wcore_usage_t u = {.generated_tokens = 2};
  wcore_on_done(w, 320 * MS, 3, &u);
  size_t n;
  const wcore_action_t *acts = wcore_actions(w, &n);
  assert_int_equal(n, 2);
  env = wcore_wire_message(w, &acts[0], NULL, &m);
  assert_int_equal(env->chunk->request_id, 30);
  assert_int_equal(env->chunk->dispatch_id, 3);
  assert_string_equal(env->chunk->text, "hi");
  env = wcore_wire_message(w, &acts[1], NULL, &m);
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_DONE);
  assert_int_equal(env->done->request_id, 30);
  assert_int_equal(env->done->usage->prompt_tokens, 10);
  assert_int_equal(env->done->e2e_us, 20 * MS);
  assert_string_equal(env->done->worker_class, "gpu");
  wcore_destroy(&w);
}

/* The scheduler's messages, as the daemon and the simulator feed them. */
static void test_wire_feed(void **state) {
  (void)state;
  wcore_t *w = new_worker();
  wcore_actions_clear(w);
  wcore_order_t o;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Registered reg = INFSCHED__REGISTERED__INIT;
  reg.heartbeat_ms = 500;
  env.body_case = INFSCHED__ENVELOPE__BODY_REGISTERED;
  env.registered = &reg;
  wcore_wire_feed(w, 1 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_NONE);
  assert_true(wcore_registered(w));
  wcore_on_timer(w, 200 * MS, &idle);
  wcore_actions_clear(w);
  assert_int_equal(wcore_next_deadline(w), 700 * MS);

  uint64_t hashes[] = {5, 6, 7};
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = 9;
  q.prompt_tokens = 48;
  q.max_tokens = 3;
  q.block_hashes = hashes;
  q.n_block_hashes = 3;
  Infsched__Dispatch d = INFSCHED__DISPATCH__INIT;
  d.request = &q;
  d.client_request_id = 90;
  env.body_case = INFSCHED__ENVELOPE__BODY_DISPATCH;
  env.dispatch = &d;
  wcore_wire_feed(w, 300 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_RUN);
  assert_int_equal(o.request.id, 9);
  assert_int_equal(o.request.prompt_tokens, 48);
  assert_int_equal(o.request.n_blocks, 3);
  assert_no_action(w);
  /* The same id again is answered here, not run. */
  wcore_wire_feed(w, 301 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_NONE);
  assert_int_equal(take_one(w).code, INFSCHED__ERROR_CODE__ERROR_DUPLICATE);
  d.request = NULL;
  wcore_wire_feed(w, 302 * MS, &env, &o);
  assert_int_equal(take_one(w).code, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST);

  Infsched__Cancel cancel = INFSCHED__CANCEL__INIT;
  cancel.request_id = 9;
  env.body_case = INFSCHED__ENVELOPE__BODY_CANCEL;
  env.cancel = &cancel;
  wcore_wire_feed(w, 310 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_STOP);
  assert_int_equal(o.id, 9);
  wcore_wire_feed(w, 311 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_NONE);

  d.request = &q;
  env.body_case = INFSCHED__ENVELOPE__BODY_DISPATCH;
  env.dispatch = &d;
  wcore_wire_feed(w, 320 * MS, &env, &o);
  Infsched__Error e = INFSCHED__ERROR__INIT;
  e.code = INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST;
  e.message = "nope";
  env.body_case = INFSCHED__ENVELOPE__BODY_ERROR;
  env.error = &e;
  wcore_wire_feed(w, 330 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_NOTE);
  assert_string_equal(o.message, "nope");
  e.code = INFSCHED__ERROR_CODE__ERROR_UNKNOWN_WORKER;
  wcore_wire_feed(w, 340 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_REJOIN);
  assert_int_equal(o.n_ids, 1);
  assert_int_equal(take_one(w).kind, WCORE_ACT_REGISTER);
  wcore_wire_feed(w, 341 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_NONE);
  assert_no_action(w);
  /* The new scheduler adopts nothing: the held request is stopped. */
  Infsched__Registered again = INFSCHED__REGISTERED__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_REGISTERED;
  env.registered = &again;
  wcore_wire_feed(w, 350 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_STOP_ALL);
  assert_int_equal(o.n_ids, 1);
  assert_int_equal(o.ids[0], 9);

  Infsched__Submit sub = INFSCHED__SUBMIT__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  env.submit = &sub;
  wcore_wire_feed(w, 350 * MS, &env, &o);
  assert_int_equal(o.kind, WCORE_ORDER_UNEXPECTED);
  wcore_destroy(&w);
}

/* A prefill (docs/disaggregation.md): its first token goes out as a chunk,
 * then a PREFILLED action with its figures and handle, and the KV stays
 * held until the scheduler cancels the dispatch (the release), after which
 * nothing is held; a second prefill nobody releases is let go at
 * WCORE_KV_HOLD_US, which the deadline shows. */
static void test_prefill_hold_release(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  assert_int_equal(wcore_on_dispatch(w, 10 * MS, 4, 40, 900, 0,
                                     INFS_PHASE_PREFILL), 0);
  wcore_on_tokens(w, 60 * MS, 4, 1, "a", 1);
  assert_int_equal(take_one(w).kind, WCORE_ACT_CHUNK);
  wcore_usage_t u = {.cached_tokens = 100, .generated_tokens = 1,
                     .queue_us = 5 * MS, .ttft_us = 50 * MS, .busy_s = 0.05};
  assert_false(wcore_on_prefilled(w, 61 * MS, 4, &u, "{\"p\":1}xx", 7));
  wcore_action_t a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_PREFILLED);
  assert_int_equal(a.request_id, 4);
  assert_int_equal(a.client_request_id, 40);
  assert_int_equal(a.done.prompt_tokens, 900);
  assert_int_equal(a.done.cached_tokens, 100);
  assert_int_equal(a.done.ttft_us, 50 * MS);
  assert_true(a.done.cost_usd > 0);
  assert_int_equal(a.prefilled.tokens, 900);
  assert_int_equal(a.prefilled.prefill_us, 45 * MS);
  assert_string_equal(a.prefilled.params, "{\"p\":1}");
  wcore_msg_t m;
  Infsched__Envelope *env = wcore_wire_message(w, &a, NULL, &m);
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_PREFILLED);
  assert_int_equal(env->prefilled->request_id, 40);
  assert_int_equal(env->prefilled->dispatch_id, 4);
  assert_string_equal(env->prefilled->kv->source_worker, "w0");
  assert_int_equal(env->prefilled->kv->handle_id, 4);
  assert_int_equal(env->prefilled->kv->tokens, 900);
  assert_string_equal(env->prefilled->kv->params_json, "{\"p\":1}");
  assert_int_equal(env->prefilled->usage->cached_tokens, 100);
  /* Held: in flight, not answered twice, released by the cancel. */
  assert_int_equal(wcore_inflight(w), 1);
  assert_false(wcore_on_prefilled(w, 62 * MS, 4, &u, NULL, 0));
  assert_no_action(w);
  assert_true(wcore_on_cancel(w, 80 * MS, 4));
  assert_false(wcore_on_cancel(w, 81 * MS, 4));
  assert_int_equal(wcore_inflight(w), 0);

  assert_int_equal(wcore_on_dispatch(w, 100 * MS, 5, 50, 900, 0,
                                     INFS_PHASE_PREFILL), 0);
  assert_false(wcore_on_prefilled(w, 150 * MS, 5, &u, NULL, 0));
  a = take_one(w);
  assert_null(a.prefilled.params);
  env = wcore_wire_message(w, &a, NULL, &m);
  assert_string_equal(env->prefilled->kv->params_json, "");
  const uint64_t *ids;
  static const struct {
    infs_time_t now;
    size_t expired;
  } ticks[] = {{1 * S, 0}, {30 * S + 149 * MS, 0}, {30 * S + 150 * MS, 1}};
  for (size_t i = 0; i < sizeof ticks / sizeof *ticks; i++) {
    wcore_on_timer(w, ticks[i].now, &idle);
    wcore_actions_clear(w);
    assert_int_equal(wcore_expired(w, ticks[i].now, &ids), ticks[i].expired);
  }
  assert_int_equal(ids[0], 5);
  assert_int_equal(wcore_inflight(w), 0);
  assert_false(wcore_on_cancel(w, 31 * S, 5));
  wcore_destroy(&w);
}

/* The hold's end is a deadline of its own when it comes before the next
 * heartbeat. */
static void test_hold_deadline(void **state) {
  (void)state;
  prof = profile();
  wcore_config_t cfg = {.worker_id = "w0", .model = "m", .profile = &prof,
                        .capacity = 4, .heartbeat_interval = 60 * S};
  wcore_t *w = wcore_new(&cfg, 0);
  wcore_on_registered(w, 0, 0);
  wcore_actions_clear(w);
  assert_int_equal(wcore_next_deadline(w), 60 * S);
  wcore_on_dispatch(w, 1 * S, 1, 1, 10, 0, INFS_PHASE_PREFILL);
  wcore_usage_t u = {.generated_tokens = 1};
  wcore_on_prefilled(w, 2 * S, 1, &u, NULL, 0);
  assert_int_equal(wcore_next_deadline(w), 2 * S + WCORE_KV_HOLD_US);
  wcore_on_cancel(w, 3 * S, 1);
  assert_int_equal(wcore_next_deadline(w), 60 * S);
  wcore_destroy(&w);
}

/* What is not a prefill, or has no scheduler to release it, is stopped at
 * once; a decode's Done carries the pull's time; a prefill is never held
 * for a new scheduler, which could not go on with it. */
static void test_prefill_refusals_and_decode(void **state) {
  (void)state;
  wcore_t *w = registered_worker();
  wcore_usage_t u = {.generated_tokens = 1};
  wcore_on_dispatch(w, 10 * MS, 1, 10, 100, 0, INFS_PHASE_FULL);
  assert_true(wcore_on_prefilled(w, 20 * MS, 1, &u, NULL, 0));
  wcore_action_t a = take_one(w);
  assert_int_equal(a.kind, WCORE_ACT_ERROR);
  assert_int_equal(a.code, INFSCHED__ERROR_CODE__ERROR_BACKEND);
  assert_false(wcore_on_prefilled(w, 21 * MS, 99, &u, NULL, 0));
  assert_no_action(w);

  wcore_on_dispatch(w, 30 * MS, 2, 20, 101, 1, INFS_PHASE_DECODE);
  wcore_usage_t du = {.generated_tokens = 9, .transfer_us = 7 * MS};
  wcore_on_done(w, 90 * MS, 2, &du);
  a = take_one(w);
  assert_int_equal(a.done.transfer_us, 7 * MS);
  assert_int_equal(a.done.generated_tokens, 10);
  assert_int_equal(a.done.prompt_tokens, 100);
  wcore_msg_t m;
  assert_int_equal(wcore_wire_message(w, &a, NULL, &m)->done->transfer_us,
                   7 * MS);

  /* The scheduler forgets the worker: its prefill is not held. */
  wcore_on_dispatch(w, 100 * MS, 3, 30, 100, 0, INFS_PHASE_PREFILL);
  Infsched__Request spec = INFSCHED__REQUEST__INIT;
  wcore_keep(w, 3, &spec, "c", 1, NULL, 0);
  assert_int_equal(wcore_on_unknown(w, 110 * MS), 1);
  wcore_actions_clear(w);
  Infsched__Held **held;
  assert_int_equal(wcore_held(w, &held), 0);
  assert_true(wcore_on_prefilled(w, 120 * MS, 3, &u, NULL, 0));
  assert_no_action(w);
  assert_int_equal(wcore_inflight(w), 0);
  wcore_destroy(&w);
}

/* Dispatches a worker's role refuses, and a decode without its handle. */
static void test_roles_refuse(void **state) {
  (void)state;
  prof = profile();
  static const struct {
    infs_role_t role;
    Infsched__Phase phase;
    bool kv;
    const char *refusal; /* NULL: runs */
  } table[] = {
      {INFS_ROLE_PREFILL, INFSCHED__PHASE__PHASE_FULL, false,
       "this worker only prefills (--role prefill)"},
      {INFS_ROLE_PREFILL, INFSCHED__PHASE__PHASE_PREFILL, false, NULL},
      {INFS_ROLE_PREFILL, INFSCHED__PHASE__PHASE_DECODE, true,
       "this worker only prefills (--role prefill)"},
      {INFS_ROLE_DECODE, INFSCHED__PHASE__PHASE_PREFILL, false,
       "this worker never prefills for another (--role decode)"},
      {INFS_ROLE_DECODE, INFSCHED__PHASE__PHASE_FULL, false, NULL},
      {INFS_ROLE_DECODE, INFSCHED__PHASE__PHASE_DECODE, false,
       "decode dispatch without its KV handle"},
      {INFS_ROLE_BOTH, INFSCHED__PHASE__PHASE_DECODE, true, NULL},
      {INFS_ROLE_BOTH, (Infsched__Phase)9, false,
       "dispatch of a phase this worker does not know"},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    wcore_config_t cfg = {.worker_id = "w0", .model = "m", .profile = &prof,
                          .capacity = 4, .role = table[i].role,
                          .heartbeat_interval = 200 * MS};
    wcore_t *w = wcore_new(&cfg, 0);
    wcore_msg_t m;
    wcore_action_t a = take_one(w);
    assert_int_equal(wcore_wire_message(w, &a, NULL, &m)->register_->role,
                     (Infsched__Role)table[i].role);
    wcore_on_registered(w, 0, 0);
    Infsched__Request q = INFSCHED__REQUEST__INIT;
    q.request_id = 7;
    q.prompt_tokens = 10;
    q.max_tokens = 4;
    Infsched__KvHandle kv = INFSCHED__KV_HANDLE__INIT;
    kv.source_worker = "p";
    kv.bytes = 99;
    Infsched__Dispatch d = INFSCHED__DISPATCH__INIT;
    d.request = &q;
    d.phase = table[i].phase;
    d.kv = table[i].kv ? &kv : NULL;
    d.resume_tokens = 1;
    d.resume_text = "x";
    Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
    env.body_case = INFSCHED__ENVELOPE__BODY_DISPATCH;
    env.dispatch = &d;
    wcore_order_t o;
    wcore_wire_feed(w, 1 * MS, &env, &o);
    if (table[i].refusal) {
      assert_int_equal(o.kind, WCORE_ORDER_NONE);
      a = take_one(w);
      assert_int_equal(a.request_id, 7);
      assert_int_equal(a.code, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST);
      assert_string_equal(a.message, table[i].refusal);
      assert_int_equal(wcore_inflight(w), 0);
    } else {
      assert_int_equal(o.kind, WCORE_ORDER_RUN);
      assert_int_equal(o.request.phase, (infs_phase_t)table[i].phase);
      if (table[i].kv) {
        assert_ptr_equal(o.request.kv, &o.kv);
        assert_string_equal(o.kv.source, "p");
        assert_int_equal(o.kv.bytes, 99);
        /* It resumes after the prefill's first token, as a migration. */
        assert_int_equal(o.request.prompt_tokens, 11);
        assert_int_equal(o.request.max_tokens, 3);
      } else {
        assert_null(o.request.kv);
      }
    }
    wcore_destroy(&w);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registration_retry),
      cmocka_unit_test(test_heartbeats),
      cmocka_unit_test(test_resumed_dispatch),
      cmocka_unit_test(test_reset_on_unknown_worker),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_fail_all),
      cmocka_unit_test(test_tool_calls),
      cmocka_unit_test(test_register_says_health),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_accounting),
      cmocka_unit_test(test_wire_messages),
      cmocka_unit_test(test_wire_feed),
      cmocka_unit_test(test_prefill_hold_release),
      cmocka_unit_test(test_hold_deadline),
      cmocka_unit_test(test_prefill_refusals_and_decode),
      cmocka_unit_test(test_roles_refuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
