/* Unit tests of the scheduler core's wire glue (scheduler/core/core_wire.h),
 * which the scheduler's shell and infsched-sim share: messages in, actions
 * out, the flush order. Pure: envelopes are built and read, never sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire.h"
#include "core_fixture.h"
#include "core_wire.h"
#include "profile_fixture.h"

#include <stdio.h>
#include <string.h>

#define MS INFS_US_PER_MS

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
  core_peer_t w = fixture_peer("w0"), client = fixture_peer("c");
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
  core_peer_t client = fixture_peer("c"), w = fixture_peer("w0");
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

/* A split request's messages (docs/disaggregation.md): a decode Dispatch
 * carries its phase and KV handle, a Done the core makes carries the phase
 * split, a Prefilled reaches the core (one nobody waits for is cancelled
 * back) and needs its handle, and a Register's role must be one this
 * build knows. */
static void test_split_messages(void **state) {
  (void)state;
  infs_kv_handle_t kv = {.handle_id = 9, .tokens = 500, .bytes = 1234,
                         .link_gbps = 50, .link_latency_us = 20,
                         .prefill_us = 77, .params_json = "{}",
                         .params_len = 2};
  strcpy(kv.source, "tpu-0");
  core_request_t q = {.id = 9, .model = "m", .prompt = "", .prompt_tokens = 500,
                      .max_tokens = 8};
  core_action_t a = {.kind = CORE_ACT_DISPATCH, .request = &q,
                     .phase = INFS_PHASE_DECODE, .kv = &kv,
                     .resume_tokens = 1, .resume_text = "x"};
  core_wire_msg_t m;
  Infsched__Envelope *env = core_wire_message(&a, 100, &m);
  assert_int_equal(env->dispatch->phase, INFSCHED__PHASE__PHASE_DECODE);
  assert_non_null(env->dispatch->kv);
  assert_string_equal(env->dispatch->kv->source_worker, "tpu-0");
  assert_int_equal(env->dispatch->kv->bytes, 1234);
  assert_string_equal(env->dispatch->kv->params_json, "{}");

  core_done_t d = {.generated_tokens = 8, .queue_us = 1, .ttft_us = 2,
                   .e2e_us = 10, .prefill_us = 3, .transfer_us = 4,
                   .decode_us = 2, .cost_usd = 0.3, .prefill_cost_usd = 0.1};
  a = (core_action_t){.kind = CORE_ACT_DONE, .request_id = 5, .done = &d,
                      .worker_id = "gpu-0", .worker_class = "gpu",
                      .prefill_worker_id = "tpu-0",
                      .prefill_worker_class = "tpu"};
  env = core_wire_message(&a, 100, &m);
  assert_int_equal(env->done->prefill_us, 3);
  assert_int_equal(env->done->transfer_us, 4);
  assert_int_equal(env->done->decode_us, 2);
  assert_true(env->done->prefill_cost_usd == 0.1);
  assert_string_equal(env->done->prefill_worker_id, "tpu-0");
  assert_string_equal(env->done->prefill_worker_class, "tpu");

  core_t *c = new_core();
  core_peer_t w = fixture_peer("w0");
  register_worker(c, &w);
  core_actions_clear(c);
  char why[96];
  Infsched__Prefilled p = INFSCHED__PREFILLED__INIT;
  p.dispatch_id = 77;
  Infsched__Envelope in = INFSCHED__ENVELOPE__INIT;
  in.body_case = INFSCHED__ENVELOPE__BODY_PREFILLED;
  in.prefilled = &p;
  assert_int_equal(core_wire_feed_worker(c, 0, &w, NULL, &in, why, sizeof why),
                   CORE_WIRE_BAD);
  assert_string_equal(why, "prefilled without its KV handle");
  Infsched__KvHandle km;
  wire_kv_to_msg(&kv, &km);
  p.kv = &km;
  assert_int_equal(core_wire_feed_worker(c, 0, &w, NULL, &in, why, sizeof why),
                   CORE_WIRE_FED);
  size_t n;
  const core_action_t *out = core_actions(c, &n);
  assert_int_equal(n, 1);
  assert_int_equal(out->kind, CORE_ACT_CANCEL);
  assert_int_equal(out->request_id, 77);
  core_actions_clear(c);

  Infsched__Register r = INFSCHED__REGISTER__INIT;
  Infsched__Profile pm = INFSCHED__PROFILE__INIT;
  r.worker_id = "w1";
  r.profile = &pm;
  r.role = (Infsched__Role)5;
  in.body_case = INFSCHED__ENVELOPE__BODY_REGISTER;
  in.register_ = &r;
  core_peer_t w1 = fixture_peer("w1");
  assert_int_equal(core_wire_feed_worker(c, 0, &w1, NULL, &in, why, sizeof why),
                   CORE_WIRE_BAD);
  assert_string_equal(why, "register with an unknown role 5");
  core_destroy(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_and_dispatch),
      cmocka_unit_test(test_what_the_shell_answers),
      cmocka_unit_test(test_split_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
