/* lib/wire and lib/wire_arena: round trips, the failures decoding reports,
 * and an arena that takes messages larger than itself, keeps their size
 * for the next one up to its limit, and frees everything at reset. */
#include "infsched/errors.h"
#include "wire.h"
#include "wire_arena.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A Submit with a prompt of n bytes, packed. */
static void pack_submit(size_t n, uint64_t id, wire_buf_t *out) {
  char *prompt = malloc(n + 1);
  assert_non_null(prompt);
  memset(prompt, 'p', n);
  prompt[n] = '\0';
  uint64_t blocks[3] = {1, 2, 3};
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Submit s = INFSCHED__SUBMIT__INIT;
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = id;
  q.prompt = prompt;
  q.prompt_tokens = (uint32_t)n / 4 + 1;
  q.max_tokens = 8;
  q.block_hashes = blocks;
  q.n_block_hashes = 3;
  s.request = &q;
  env.body_case = INFSCHED__ENVELOPE__BODY_SUBMIT;
  env.submit = &s;
  wire_pack(&env, out);
  free(prompt);
}

static void assert_submit(const Infsched__Envelope *env, size_t n,
                          uint64_t id) {
  assert_int_equal(env->body_case, INFSCHED__ENVELOPE__BODY_SUBMIT);
  const Infsched__Request *q = env->submit->request;
  assert_int_equal(q->request_id, id);
  assert_int_equal(strlen(q->prompt), n);
  assert_int_equal(q->n_block_hashes, 3);
  assert_int_equal(q->block_hashes[2], 3);
}

static void test_round_trip_and_failures(void **state) {
  (void)state;
  wire_buf_t buf = {0};
  pack_submit(100, 7, &buf);
  Infsched__Envelope *env;
  assert_int_equal(wire_unpack(buf.data, buf.len, &env), 0);
  assert_int_equal(env->version, WIRE_VERSION);
  assert_submit(env, 100, 7);
  wire_free(env);

  assert_int_equal(wire_unpack((const uint8_t *)"\xff\xff", 2, &env),
                   INFS_EBADMSG);
  assert_null(env);

  Infsched__Envelope old = INFSCHED__ENVELOPE__INIT;
  Infsched__Cancel cancel = INFSCHED__CANCEL__INIT;
  old.body_case = INFSCHED__ENVELOPE__BODY_CANCEL;
  old.cancel = &cancel;
  old.version = WIRE_VERSION - 1;
  uint8_t raw[64];
  size_t n = infsched__envelope__pack(&old, raw);
  assert_int_equal(wire_unpack(raw, n, &env), INFS_EVERSION);
  assert_null(env);

  Infsched__Envelope empty = INFSCHED__ENVELOPE__INIT;
  empty.version = WIRE_VERSION;
  n = infsched__envelope__pack(&empty, raw);
  assert_int_equal(wire_unpack(raw, n, &env), INFS_EBADMSG);
  wire_buf_free(&buf);
}

static void test_arena_sizes(void **state) {
  (void)state;
  wire_arena_t *a = wire_arena_new();
  assert_non_null(a);
  wire_buf_t buf = {0};
  /* Small, larger than the arena's first block, larger than it keeps:
   * each decodes whole, twice, and a reset in between frees the last. */
  size_t sizes[] = {100, 100 << 10, 3 << 20, 10};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    for (uint64_t round = 0; round < 2; round++) {
      pack_submit(sizes[i], i * 10 + round, &buf);
      Infsched__Envelope *env;
      assert_int_equal(wire_unpack_in(a, buf.data, buf.len, &env), 0);
      assert_submit(env, sizes[i], i * 10 + round);
      wire_arena_reset(a);
    }
  }
  /* Several envelopes live at once until the reset. */
  Infsched__Envelope *live[20];
  for (uint64_t i = 0; i < 20; i++) {
    pack_submit(1000, i, &buf);
    assert_int_equal(wire_unpack_in(a, buf.data, buf.len, &live[i]), 0);
  }
  for (uint64_t i = 0; i < 20; i++)
    assert_submit(live[i], 1000, i);
  wire_arena_reset(a);

  Infsched__Envelope *env;
  assert_int_equal(wire_unpack_in(a, (const uint8_t *)"\x0a\xff", 2, &env),
                   INFS_EBADMSG);
  assert_null(env);
  wire_arena_reset(a);
  wire_buf_free(&buf);
  wire_arena_destroy(&a);
  assert_null(a);
  wire_arena_destroy(&a);
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return n;
}

/* A frame whose Submit repeats its request n times: protobuf-c merges the
 * copies, so the request ends with n x 100 block hashes, each merge
 * allocating them all again. */
static uint8_t *repeated_request(size_t n, size_t *len) {
  uint64_t blocks[100];
  for (size_t i = 0; i < 100; i++)
    blocks[i] = i + 1;
  Infsched__Request q = INFSCHED__REQUEST__INIT;
  q.request_id = 1;
  q.block_hashes = blocks;
  q.n_block_hashes = 100;
  uint8_t req[1024];
  size_t req_len = infsched__request__pack(&q, req);
  uint8_t head[16];
  size_t field = 1 + put_varint(head, req_len) + req_len; /* Submit.request */
  uint8_t *frame = malloc(32 + n * field);
  assert_non_null(frame);
  size_t k = 0;
  frame[k++] = 0x08; /* Envelope.version */
  k += put_varint(frame + k, WIRE_VERSION);
  frame[k++] = 0x52; /* Envelope.submit, field 10, length-delimited */
  k += put_varint(frame + k, n * field);
  for (size_t i = 0; i < n; i++) {
    frame[k++] = 0x0a; /* Submit.request, field 1 */
    k += put_varint(frame + k, req_len);
    memcpy(frame + k, req, req_len);
    k += req_len;
  }
  *len = k;
  return frame;
}

/* Merging a few copies is protobuf and decodes; a frame of thousands,
 * which would allocate gigabytes, fails within the arena's budget. */
static void test_arena_budget(void **state) {
  (void)state;
  wire_arena_t *a = wire_arena_new();
  size_t len;
  uint8_t *few = repeated_request(3, &len);
  Infsched__Envelope *env;
  assert_int_equal(wire_unpack_in(a, few, len, &env), 0);
  assert_int_equal(env->submit->request->n_block_hashes, 300);
  wire_arena_reset(a);
  free(few);

  uint8_t *many = repeated_request(2000, &len);
  assert_int_equal(wire_unpack_in(a, many, len, &env), INFS_EBADMSG);
  assert_null(env);
  wire_arena_reset(a);
  free(many);
  wire_arena_destroy(&a);
}

/* A decode dispatch's KV handle survives the wire, and roles and phases
 * this build does not know are refused, not read as the default. */
static void test_kv_handle_roles_phases(void **state) {
  (void)state;
  infs_kv_handle_t k = {.handle_id = 41, .tokens = 900, .bytes = 1u << 30,
                        .link_gbps = 50, .link_latency_us = 20,
                        .overlap = true, .prefill_us = 123456,
                        .params_json = "{\"a\":1}", .params_len = 7};
  strcpy(k.source, "tpu-0");
  Infsched__KvHandle m;
  wire_kv_to_msg(&k, &m);
  Infsched__Dispatch d = INFSCHED__DISPATCH__INIT;
  d.phase = INFSCHED__PHASE__PHASE_DECODE;
  d.kv = &m;
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  env.body_case = INFSCHED__ENVELOPE__BODY_DISPATCH;
  env.dispatch = &d;
  wire_buf_t buf = {0};
  wire_pack(&env, &buf);
  Infsched__Envelope *got;
  assert_int_equal(wire_unpack(buf.data, buf.len, &got), 0);
  infs_kv_handle_t back;
  wire_kv_from_msg(got->dispatch->kv, &back);
  assert_string_equal(back.source, "tpu-0");
  assert_int_equal(back.handle_id, 41);
  assert_int_equal(back.tokens, 900);
  assert_int_equal(back.bytes, 1u << 30);
  assert_true(back.link_gbps == 50 && back.link_latency_us == 20);
  assert_true(back.overlap);
  assert_int_equal(back.prefill_us, 123456);
  assert_int_equal(back.params_len, 7);
  assert_memory_equal(back.params_json, "{\"a\":1}", 7);
  infs_phase_t phase;
  assert_int_equal(wire_phase_from_msg(got->dispatch->phase, &phase), 0);
  assert_int_equal(phase, INFS_PHASE_DECODE);
  assert_int_equal(wire_phase_from_msg((Infsched__Phase)3, &phase),
                   INFS_EBADREQUEST);
  wire_free(got);
  wire_buf_free(&buf);

  infs_role_t role;
  assert_int_equal(wire_role_from_msg(INFSCHED__ROLE__ROLE_PREFILL, &role), 0);
  assert_int_equal(role, INFS_ROLE_PREFILL);
  assert_int_equal(wire_role_from_msg((Infsched__Role)7, &role),
                   INFS_EBADREQUEST);
  static const char *const names[] = {"both", "prefill", "decode"};
  for (int r = 0; r < INFS_ROLE_COUNT; r++) {
    assert_string_equal(infs_role_name((infs_role_t)r), names[r]);
    assert_int_equal(infs_role_parse(names[r], &role), 0);
    assert_int_equal(role, r);
  }
  assert_int_equal(infs_role_parse("Prefill", &role), INFS_ECONFIG);
  assert_string_equal(infs_role_name(INFS_ROLE_COUNT), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_and_failures),
      cmocka_unit_test(test_arena_sizes),
      cmocka_unit_test(test_arena_budget),
      cmocka_unit_test(test_kv_handle_roles_phases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
