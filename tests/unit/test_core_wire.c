/* Unit tests of the scheduler core's wire glue (scheduler/core/core_wire.h),
 * which the scheduler's shell and infsched-sim share: messages in, actions
 * out, the flush order. Pure: envelopes are built and read, never sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire.h"
#include "core_wire.h"
#include "profile_fixture.h"

#include <stdio.h>
#include <string.h>

#define MS INFS_US_PER_MS

static core_peer_t peer(const char *name) {
  core_peer_t p = {.door = CORE_DOOR_ZMQ};
  p.len = (uint8_t)strlen(name);
  memcpy(p.id, name, p.len);
  return p;
}

static core_t *new_core(void) {
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.policy = "least_loaded";
  cfg.heartbeat_interval = 100 * MS;
  int err;
  core_t *c = core_new(&cfg, 0, &err);
  assert_non_null(c);
  return c;
}

/* Registers worker w0, which takes one request at a time, through its
 * Register message. */
static void register_worker(core_t *c, const core_peer_t *w) {
  infs_profile_t p;
  memset(&p, 0, sizeof p);
  strcpy(p.name, "gpu");
  p.max_batch = 8;
  p.max_context = 8192;
  p.kv_tokens = 32768;
  p.block_size = 16;
  fixture_roofline(&p, 17, 0.1, 0, 0);
  Infsched__Profile pm;
  wire_profile_to_msg(&p, &pm);
  Infsched__Register r = INFSCHED__REGISTER__INIT;
  r.worker_id = "w0";
  r.model = "m";
  r.backend = "sim";
  r.profile = &pm;
  r.capacity = 1;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_REGISTER;
  env.register_ = &r;
  char why[96];
  assert_int_equal(core_wire_feed_worker(c, 0, w, NULL, &env, why, sizeof why),
                   CORE_WIRE_FED);
}

typedef struct sent {
  core_action_kind_t kinds[16];
  size_t n;
} sent_t;

static void record(void *ctx, const core_action_t *a) {
  sent_t *s = ctx;
  assert_true(s->n < 16);
  s->kinds[s->n++] = a->kind;
}

static void test_register_and_dispatch(void **state) {
  (void)state;
  core_t *c = new_core();
  core_peer_t w = peer("w0"), client = peer("c");
  register_worker(c, &w);
  size_t n;
  const core_action_t *a = core_actions(c, &n);
  assert_int_equal(n, 1);
  core_wire_msg_t m;
  Infsched__Envelope *env = core_wire_message(&a[0], 250, &m);
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_REGISTERED);
  assert_int_equal(env->registered->heartbeat_ms, 250);
  core_actions_clear(c);

  uint64_t hashes[] = {1, 2};
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = 42;
  q.model = "m";
  q.prompt_tokens = 32;
  q.max_tokens = 5;
  q.block_hashes = hashes;
  q.n_block_hashes = 2;
  Infsched__Submit sub = INFSCHED__SUBMIT__INIT;
  sub.request = &q;
  Infsched__Envelope in = INFSCHED__ENVELOPE__INIT;
  in.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  in.submit = &sub;
  char why[96];
  assert_int_equal(core_wire_feed_client(c, MS, &client, &in, why, sizeof why),
                   CORE_WIRE_FED);
  a = core_actions(c, &n);
  assert_int_equal(n, 2);
  const core_action_t *d = a[0].kind == CORE_ACT_DISPATCH ? &a[0] : &a[1];
  assert_int_equal(d->kind, CORE_ACT_DISPATCH);
  env = core_wire_message(d, 250, &m);
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_DISPATCH);
  assert_int_equal(env->dispatch->client_request_id, 42);
  assert_int_equal(env->dispatch->request->prompt_tokens, 32);
  assert_int_equal(env->dispatch->request->n_block_hashes, 2);
  assert_string_equal(env->dispatch->request->model, "m");
  uint64_t dispatch_id = env->dispatch->request->request_id;
  core_actions_clear(c);
  /* A second request waits for the worker's only slot. */
  q.request_id = 43;
  core_wire_feed_client(c, MS, &client, &in, why, sizeof why);
  a = core_actions(c, &n);
  assert_int_equal(n, 1);
  assert_int_equal(a[0].kind, CORE_ACT_ACCEPTED);
  core_actions_clear(c);
  /* The worker's Chunk goes on to the client under the client's id. */
  Infsched__Chunk ch = INFSCHED__CHUNK__INIT;
  ch.request_id = 7; /* what the worker says is not believed */
  ch.dispatch_id = dispatch_id;
  ch.tokens = 5;
  in = (Infsched__Envelope)INFSCHED__ENVELOPE__INIT;
  in.body_case = INFSCHED__ENVELOPE__BODY_CHUNK;
  in.chunk = &ch;
  assert_int_equal(
      core_wire_feed_worker(c, 2 * MS, &w, NULL, &in, why, sizeof why),
      CORE_WIRE_FED);
  a = core_actions(c, &n);
  assert_int_equal(n, 1);
  env = core_wire_message(&a[0], 250, &m);
  assert_ptr_equal(env->chunk, &ch);
  assert_int_equal(env->chunk->request_id, 42);
  core_actions_clear(c);

  /* Its Done ends 42 and frees the slot for 43: the core answers the
   * client first, the flush sends the Dispatch first. */
  Infsched__Done done = INFSCHED__DONE__INIT;
  done.dispatch_id = dispatch_id;
  in.body_case = INFSCHED__ENVELOPE__BODY_DONE;
  in.done = &done;
  core_wire_feed_worker(c, 3 * MS, &w, NULL, &in, why, sizeof why);
  a = core_actions(c, &n);
  assert_int_equal(n, 2);
  assert_int_equal(a[0].kind, CORE_ACT_DONE);
  assert_int_equal(a[1].kind, CORE_ACT_DISPATCH);
  sent_t sent = {0};
  core_wire_flush(c, record, &sent);
  assert_int_equal(sent.n, 2);
  assert_int_equal(sent.kinds[0], CORE_ACT_DISPATCH);
  assert_int_equal(sent.kinds[1], CORE_ACT_DONE);
  core_actions(c, &n);
  assert_int_equal(n, 0);
  core_destroy(&c);
}

/* What a door must answer itself: a status query, and messages that are
 * not for its socket or lack their body. */
static void test_what_the_shell_answers(void **state) {
  (void)state;
  core_t *c = new_core();
  core_peer_t client = peer("c"), w = peer("w0");
  char why[96];
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__StatusQuery sq = INFSCHED__STATUS_QUERY__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_STATUS_QUERY;
  env.status_query = &sq;
  assert_int_equal(core_wire_feed_client(c, 0, &client, &env, why, sizeof why),
                   CORE_WIRE_STATUS);
  assert_int_equal(core_wire_feed_worker(c, 0, &w, NULL, &env, why, sizeof why),
                   CORE_WIRE_BAD);
  assert_non_null(strstr(why, "on the worker socket"));
  Infsched__Submit sub = INFSCHED__SUBMIT__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  env.submit = &sub;
  assert_int_equal(core_wire_feed_client(c, 0, &client, &env, why, sizeof why),
                   CORE_WIRE_BAD);
  assert_string_equal(why, "submit without a request");
  Infsched__Register r = INFSCHED__REGISTER__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_REGISTER;
  env.register_ = &r;
  assert_int_equal(core_wire_feed_worker(c, 0, &w, NULL, &env, why, sizeof why),
                   CORE_WIRE_BAD);
  assert_string_equal(why, "register without a profile");
  size_t n;
  core_actions(c, &n);
  assert_int_equal(n, 0);
  core_destroy(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_and_dispatch),
      cmocka_unit_test(test_what_the_shell_answers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
