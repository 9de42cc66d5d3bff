/* The scheduling core's side of a split request (docs/disaggregation.md):
 * prefill on one worker, decode on another, the release of the prefill
 * worker's KV, and every failure ending in exactly one answer. Pure, with
 * pretended time. The decisions come from a scripted policy, so that these
 * tests pin the protocol whatever the real policies choose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "infsched/errors.h"
#include "transfer.h"
#include "core.h"
#include "core_fixture.h"
#include "policy.h"
#include "profile_fixture.h"

#include <stdio.h>
#include <string.h>

#define MS INFS_US_PER_MS

enum { P, D, B, N_WORKERS }; /* prefill-role, decode-role, both */

static const char *const ids[N_WORKERS] = {"tpu-p", "gpu-d", "gpu-b"};
static const infs_role_t roles[N_WORKERS] = {
    INFS_ROLE_PREFILL, INFS_ROLE_DECODE, INFS_ROLE_BOTH};

/* Splits when it may: prefill on the prefill-role worker, decode on the
 * decode-role one, else whole on the first other candidate. policy_pick
 * puts the prefill-role candidates after the x->n others. */
static int scripted_pick(void *state, policy_ctx_t *x) {
  (void)state;
  int p = -1, d = -1;
  for (size_t i = 0; i < x->n + x->n_prefill; i++) {
    const core_worker_t *w = x->workers[x->cands[i]];
    if (w->role == INFS_ROLE_PREFILL)
      p = p < 0 ? (int)i : p;
    else if (d < 0 || w->role == INFS_ROLE_DECODE)
      d = (int)i;
  }
  x->outcome = CORE_OUTCOME_LEAST_LOADED;
  x->prefill = d >= 0 ? p : -1;
  return d;
}

static const policy_ops_t scripted = {.name = "scripted",
                                      .summary = "test decisions",
                                      .pick = scripted_pick,
                                      .pairs = true};

typedef struct fixture {
  core_t *core;
  link_table_t *links;
  infs_profile_t tpu, gpu;
  core_peer_t client;
  core_peer_t w[N_WORKERS];
} fixture_t;

static infs_profile_t profile(const char *name, infs_worker_class_t cls) {
  infs_profile_t p;
  memset(&p, 0, sizeof p);
  snprintf(p.name, sizeof p.name, "%s", name);
  p.cls = cls;
  p.max_batch = 8;
  p.max_context = 32768;
  p.kv_tokens = 131072;
  fixture_roofline(&p, 17, 0.1, 0, 0);
  p.kv_kb_per_token = 100;
  p.block_size = 16;
  return p;
}

static void add_worker(fixture_t *f, int i, infs_time_t now) {
  const infs_profile_t *p = i == P ? &f->tpu : &f->gpu;
  core_worker_info_t info = {.worker_id = ids[i], .model = "m",
                             .backend = "sim", .profile = p, .capacity = 4,
                             .role = roles[i]};
  core_on_register(f->core, now, &f->w[i], &info);
}

static int setup(void **state) {
  static fixture_t f;
  memset(&f, 0, sizeof f);
  char err[128];
  assert_int_equal(
      link_table_parse("tpu>gpu=10:100", &f.links, err, sizeof err), 0);
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.policy_ops = &scripted;
  cfg.links = f.links;
  cfg.heartbeat_interval = 100 * MS;
  cfg.heartbeat_miss = 3;
  cfg.queue_timeout = 10000 * MS;
  cfg.progress_timeout = 1000 * MS;
  cfg.max_attempts = 3;
  int rc;
  f.core = core_new(&cfg, 0, &rc);
  assert_non_null(f.core);
  f.tpu = profile("tpu", INFS_WORKER_TPU);
  f.gpu = profile("gpu", INFS_WORKER_GPU);
  f.client = fixture_peer("client");
  for (int i = 0; i < N_WORKERS; i++) {
    f.w[i] = fixture_peer(ids[i]);
    add_worker(&f, i, 0);
  }
  core_actions_clear(f.core);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  core_destroy(&f->core);
  link_table_free(&f->links);
  return 0;
}

static void submit(fixture_t *f, infs_time_t now, uint64_t id,
                   uint32_t max_tokens) {
  core_request_t r = {.id = id, .model = "m", .prompt_tokens = 1000,
                      .max_tokens = max_tokens, .cls = INFS_CLASS_AGENT};
  core_on_submit(f->core, now, &f->client, &r);
}

/* The only action of a kind bound for peer to (NULL: any), or NULL. */
static const core_action_t *only(const fixture_t *f, core_action_kind_t kind,
                                 const core_peer_t *to) {
  size_t n;
  const core_action_t *a = core_actions(f->core, &n), *found = NULL;
  for (size_t i = 0; i < n; i++) {
    if (a[i].kind != kind || (to && (a[i].peer.len != to->len ||
                                     memcmp(a[i].peer.id, to->id, to->len))))
      continue;
    assert_null(found);
    found = &a[i];
  }
  return found;
}

static size_t count(const fixture_t *f, core_action_kind_t kind) {
  size_t n, k = 0;
  const core_action_t *a = core_actions(f->core, &n);
  for (size_t i = 0; i < n; i++)
    k += a[i].kind == kind;
  return k;
}

/* Terminal answers to the client in the outbox. */
static size_t answers(const fixture_t *f) {
  return count(f, CORE_ACT_DONE) + count(f, CORE_ACT_ERROR);
}

static void beat(fixture_t *f, infs_time_t now) {
  core_load_t load = {0};
  for (int i = 0; i < N_WORKERS; i++)
    core_on_heartbeat(f->core, now, &f->w[i], &load);
}

/* Heartbeats from every worker but the silent one, and ticks, from 100 to
 * 600 ms: the silent one is lost at 400 ms. The outbox keeps it all. */
static void silence(fixture_t *f, int silent) {
  core_load_t load = {0};
  for (infs_time_t t = 100 * MS; t <= 600 * MS; t += 100 * MS) {
    for (int i = 0; i < N_WORKERS; i++)
      if (i != silent)
        core_on_heartbeat(f->core, t, &f->w[i], &load);
    core_on_tick(f->core, t);
  }
}

/* Heartbeats from all and ticks every 100 ms from 100 ms until a request
 * is taken back for want of progress; the outbox holds that tick's
 * actions. Returns when. */
static infs_time_t until_taken_back(fixture_t *f) {
  infs_time_t t = 100 * MS;
  for (;; t += 100 * MS) {
    assert_true(t < 3000 * MS);
    beat(f, t);
    core_actions_clear(f->core);
    core_on_tick(f->core, t);
    if (core_stats(f->core)->progress_timeouts)
      return t;
  }
}

/* Submits request 1 (max_tokens 10) at 0 and runs its prefill on P up to
 * the handoff at 60 ms: P streamed token "a", then Prefilled. Returns the
 * core's id of it; the outbox holds the handoff's actions. */
static uint64_t run_prefill(fixture_t *f) {
  submit(f, 0, 1, 10);
  const core_action_t *a = only(f, CORE_ACT_DISPATCH, &f->w[P]);
  assert_non_null(a);
  assert_int_equal(a->phase, INFS_PHASE_PREFILL);
  assert_null(a->kv);
  assert_int_equal(core_stats(f->core)->split, 1);
  uint64_t id = a->request_id;
  core_actions_clear(f->core);
  core_on_chunk(f->core, 50 * MS, &f->w[P], id, 1, "a", 1, NULL);
  assert_non_null(only(f, CORE_ACT_CHUNK, &f->client));
  core_actions_clear(f->core);
  core_done_t pf = {.prompt_tokens = 1000, .cached_tokens = 200,
                    .generated_tokens = 1, .queue_us = 2 * MS,
                    .ttft_us = 48 * MS, .cost_usd = 0.001};
  infs_kv_handle_t kv = {.tokens = 1000, .prefill_us = 46 * MS,
                         .params_json = "{\"k\":1}", .params_len = 7};
  strcpy(kv.source, "what the worker says");
  core_on_prefilled(f->core, 60 * MS, &f->w[P], id, &pf, &kv);
  return id;
}

/* The happy path: the first token from P reaches the client at once, the
 * decode goes to D with the handle and resumes after that token, P is
 * released at D's first chunk, and the Done carries the phase split. */
static void test_split_end_to_end(void **state) {
  fixture_t *f = *state;
  uint64_t id = run_prefill(f);
  const core_action_t *a = only(f, CORE_ACT_DISPATCH, &f->w[D]);
  assert_non_null(a);
  assert_int_equal(a->request_id, id);
  assert_int_equal(a->phase, INFS_PHASE_DECODE);
  assert_int_equal(a->resume_tokens, 1);
  assert_memory_equal(a->resume_text, "a", 1);
  assert_non_null(a->kv);
  assert_string_equal(a->kv->source, "tpu-p");
  assert_int_equal(a->kv->handle_id, id);
  assert_int_equal(a->kv->tokens, 1000);
  /* D holds none of the prompt: all 1,000 tokens cross the tpu>gpu link. */
  assert_int_equal(a->kv->bytes, kv_transfer_bytes(&f->tpu, 1000));
  assert_true(a->kv->link_gbps == 10 && a->kv->link_latency_us == 100);
  assert_int_equal(a->kv->params_len, 7);
  assert_memory_equal(a->kv->params_json, "{\"k\":1}", 7);
  assert_null(only(f, CORE_ACT_CANCEL, NULL));
  assert_int_equal(core_stats(f->core)->prefilled, 1);
  core_actions_clear(f->core);

  core_on_chunk(f->core, 80 * MS, &f->w[D], id, 3, "bcd", 3, NULL);
  assert_non_null(only(f, CORE_ACT_CHUNK, &f->client));
  a = only(f, CORE_ACT_CANCEL, &f->w[P]);
  assert_non_null(a);
  assert_int_equal(a->request_id, id);
  assert_int_equal(core_stats(f->core)->split_decoded, 1);
  core_actions_clear(f->core);

  core_done_t df = {.prompt_tokens = 1001, .generated_tokens = 10,
                    .queue_us = 1 * MS, .ttft_us = 15 * MS,
                    .e2e_us = 100 * MS, .transfer_us = 12 * MS,
                    .cost_usd = 0.002};
  core_on_done(f->core, 170 * MS, &f->w[D], id, &df, NULL);
  assert_null(only(f, CORE_ACT_CANCEL, NULL));
  a = only(f, CORE_ACT_DONE, &f->client);
  assert_non_null(a);
  assert_int_equal(answers(f), 1);
  assert_null(a->passthrough);
  assert_string_equal(a->worker_id, "gpu-d");
  assert_string_equal(a->prefill_worker_id, "tpu-p");
  assert_string_equal(a->prefill_worker_class, "tpu");
  const core_done_t *d = a->done;
  assert_int_equal(d->prompt_tokens, 1000);
  assert_int_equal(d->cached_tokens, 200);
  assert_int_equal(d->generated_tokens, 10);
  assert_int_equal(d->queue_us, 2 * MS);
  assert_int_equal(d->ttft_us, 48 * MS);
  assert_int_equal(d->prefill_us, 46 * MS);
  assert_int_equal(d->transfer_us, 12 * MS);
  /* From the first token (50 ms) to D's dispatch (60 ms), then D's own
   * time less the transfer. */
  assert_int_equal(d->decode_us, 10 * MS + 88 * MS);
  assert_int_equal(d->e2e_us, d->queue_us + d->prefill_us + d->transfer_us +
                                  d->decode_us);
  assert_true(d->cost_usd > 0.00299 && d->cost_usd < 0.00301);
  assert_true(d->prefill_cost_usd == 0.001);
  assert_int_equal(core_open_requests(f->core), 0);
  assert_int_equal(core_stats(f->core)->completed, 1);
}

/* P lost before its handoff: the request is dispatched again, whole on D
 * as nothing else prefills, and from the first token when P had sent it. */
static void test_prefill_worker_lost(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 10);
  const core_action_t *a = only(f, CORE_ACT_DISPATCH, &f->w[P]);
  assert_non_null(a);
  uint64_t id = a->request_id;
  core_on_chunk(f->core, 50 * MS, &f->w[P], id, 1, "a", 1, NULL);
  core_actions_clear(f->core);
  silence(f, P);
  assert_int_equal(core_stats(f->core)->workers_lost, 1);
  a = only(f, CORE_ACT_DISPATCH, NULL);
  assert_non_null(a);
  assert_int_equal(a->phase, INFS_PHASE_FULL);
  assert_int_equal(a->resume_tokens, 1);
  assert_int_equal(answers(f), 0);
  uint64_t again = a->request_id;
  int to = a->peer.id[4] == 'd' ? D : B;
  core_actions_clear(f->core);
  core_on_done(f->core, 700 * MS, &f->w[to], again, NULL, "worker's done");
  a = only(f, CORE_ACT_DONE, &f->client);
  assert_non_null(a);
  assert_int_equal(answers(f), 1);
  assert_ptr_equal(a->passthrough, "worker's done");
  assert_int_equal(core_open_requests(f->core), 0);
}

/* D lost after the handoff: P is released and the request runs whole
 * elsewhere, from the first token; one answer. */
static void test_decode_worker_lost(void **state) {
  fixture_t *f = *state;
  uint64_t id = run_prefill(f);
  assert_non_null(only(f, CORE_ACT_DISPATCH, &f->w[D]));
  core_actions_clear(f->core);
  silence(f, D);
  assert_int_equal(core_stats(f->core)->workers_lost, 1);
  assert_non_null(only(f, CORE_ACT_CANCEL, &f->w[P]));
  const core_action_t *a = only(f, CORE_ACT_DISPATCH, &f->w[B]);
  assert_non_null(a);
  assert_int_equal(a->request_id, id);
  assert_int_equal(a->phase, INFS_PHASE_FULL);
  assert_int_equal(a->resume_tokens, 1);
  assert_int_equal(answers(f), 0);
  core_actions_clear(f->core);
  core_on_done(f->core, 700 * MS, &f->w[B], id, NULL, "done");
  assert_int_equal(answers(f), 1);
  assert_null(only(f, CORE_ACT_CANCEL, NULL));
}

/* D cannot pull the KV: P is released, and the request runs whole (never
 * split again) from its first token, on a worker that is not prefill-only;
 * a second failure of the same kind is an ordinary one. */
static void test_kv_transfer_fallback(void **state) {
  fixture_t *f = *state;
  uint64_t id = run_prefill(f);
  core_actions_clear(f->core);
  core_on_worker_error(f->core, 70 * MS, &f->w[D], id, INFS_WIRE_KVTRANSFER,
                       "pull timed out");
  assert_int_equal(core_stats(f->core)->kv_fallbacks, 1);
  assert_int_equal(core_stats(f->core)->breaker_opened, 0);
  assert_non_null(only(f, CORE_ACT_CANCEL, &f->w[P]));
  const core_action_t *a = only(f, CORE_ACT_DISPATCH, NULL);
  assert_non_null(a);
  assert_int_equal(a->phase, INFS_PHASE_FULL);
  assert_null(a->kv);
  assert_int_equal(a->resume_tokens, 1);
  assert_int_not_equal(a->peer.id[4], 'p');
  assert_int_equal(answers(f), 0);
  int to = a->peer.id[4] == 'd' ? D : B;
  core_actions_clear(f->core);
  core_on_chunk(f->core, 90 * MS, &f->w[to], id, 9, "bcdefghij", 9, NULL);
  core_on_done(f->core, 100 * MS, &f->w[to], id, NULL, "done");
  assert_int_equal(answers(f), 1);
  assert_int_equal(core_stats(f->core)->split, 1);
}

/* A worker whose backend does not run phases refuses the prefill (bad
 * request): the client never hears of it, the request runs whole. */
static void test_prefill_refused(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 10);
  const core_action_t *a = only(f, CORE_ACT_DISPATCH, &f->w[P]);
  uint64_t id = a->request_id;
  core_actions_clear(f->core);
  core_on_worker_error(f->core, 1 * MS, &f->w[P], id, INFS_WIRE_BADREQUEST,
                       "the null backend runs whole requests only");
  assert_int_equal(answers(f), 0);
  a = only(f, CORE_ACT_DISPATCH, NULL);
  assert_non_null(a);
  assert_int_equal(a->phase, INFS_PHASE_FULL);
  assert_int_equal(a->resume_tokens, 0);
}

/* Progress deadlines cover both phases: a prefill worker that streams its
 * first token and then never hands off is taken back, and so is a decode
 * worker that never streams, releasing P. */
static void test_split_progress_deadlines(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 10);
  uint64_t id = only(f, CORE_ACT_DISPATCH, &f->w[P])->request_id;
  core_on_chunk(f->core, 50 * MS, &f->w[P], id, 1, "a", 1, NULL);
  core_actions_clear(f->core);
  infs_time_t t = until_taken_back(f);
  /* Past 1,050 ms and no handoff: cancelled on P, whole from token 1. */
  assert_true(t > 1050 * MS);
  assert_non_null(only(f, CORE_ACT_CANCEL, &f->w[P]));
  const core_action_t *a = only(f, CORE_ACT_DISPATCH, NULL);
  assert_non_null(a);
  assert_int_equal(a->phase, INFS_PHASE_FULL);
  assert_int_equal(a->resume_tokens, 1);
  assert_int_equal(answers(f), 0);
  core_shutdown(f->core, t);
  assert_int_equal(answers(f), 1);
}

static void test_decode_progress_deadline(void **state) {
  fixture_t *f = *state;
  uint64_t id = run_prefill(f);
  core_actions_clear(f->core);
  until_taken_back(f);
  const core_action_t *a = only(f, CORE_ACT_CANCEL, &f->w[D]);
  assert_non_null(a);
  assert_int_equal(a->request_id, id);
  assert_non_null(only(f, CORE_ACT_CANCEL, &f->w[P]));
  a = only(f, CORE_ACT_DISPATCH, &f->w[B]);
  assert_non_null(a);
  assert_int_equal(a->phase, INFS_PHASE_FULL);
  assert_int_equal(answers(f), 0);
}

/* A client's cancel mid-decode stops D and releases P, with one answer;
 * a Prefilled nobody waits for is cancelled back at its worker. */
static void test_cancel_and_stale_prefilled(void **state) {
  fixture_t *f = *state;
  uint64_t id = run_prefill(f);
  core_actions_clear(f->core);
  core_on_cancel(f->core, 70 * MS, &f->client, 1);
  assert_non_null(only(f, CORE_ACT_CANCEL, &f->w[D]));
  assert_non_null(only(f, CORE_ACT_CANCEL, &f->w[P]));
  assert_int_equal(answers(f), 1);
  assert_int_equal(only(f, CORE_ACT_ERROR, &f->client)->code,
                   INFS_WIRE_CANCELLED);
  core_actions_clear(f->core);
  infs_kv_handle_t kv = {.tokens = 1000};
  core_on_prefilled(f->core, 80 * MS, &f->w[P], id, NULL, &kv);
  const core_action_t *a = only(f, CORE_ACT_CANCEL, &f->w[P]);
  assert_non_null(a);
  assert_int_equal(a->request_id, id);
  assert_int_equal(answers(f), 0);
}

/* A request the first token answers whole (max_tokens 1) is never split;
 * one whose prefill streamed all its tokens ends at the handoff. */
static void test_short_answers(void **state) {
  fixture_t *f = *state;
  submit(f, 0, 1, 1);
  const core_action_t *a = only(f, CORE_ACT_DISPATCH, NULL);
  assert_int_equal(a->phase, INFS_PHASE_FULL);
  assert_int_not_equal(a->peer.id[4], 'p');
  core_actions_clear(f->core);

  submit(f, 0, 2, 2);
  a = only(f, CORE_ACT_DISPATCH, &f->w[P]);
  assert_non_null(a);
  uint64_t id = a->request_id;
  core_on_chunk(f->core, 10 * MS, &f->w[P], id, 2, "ab", 2, NULL);
  core_actions_clear(f->core);
  core_done_t pf = {.queue_us = 1 * MS, .ttft_us = 9 * MS, .cost_usd = 0.5};
  infs_kv_handle_t kv = {.tokens = 1000};
  core_on_prefilled(f->core, 12 * MS, &f->w[P], id, &pf, &kv);
  assert_null(only(f, CORE_ACT_DISPATCH, NULL));
  assert_non_null(only(f, CORE_ACT_CANCEL, &f->w[P]));
  a = only(f, CORE_ACT_DONE, &f->client);
  assert_non_null(a);
  assert_int_equal(a->done->generated_tokens, 2);
  assert_string_equal(a->worker_id, "tpu-p");
  assert_int_equal(answers(f), 1);
}

/* Only prefill workers serve the model: nothing can finish a request, so
 * it is refused at once rather than left to time out. */
static void test_prefill_only_pool(void **state) {
  (void)state;
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.policy_ops = &scripted;
  int rc;
  core_t *c = core_new(&cfg, 0, &rc);
  infs_profile_t tpu = profile("tpu", INFS_WORKER_TPU);
  core_peer_t w = fixture_peer("p"), client = fixture_peer("c");
  core_worker_info_t info = {.worker_id = "p", .model = "m",
                             .profile = &tpu, .capacity = 4,
                             .role = INFS_ROLE_PREFILL};
  core_on_register(c, 0, &w, &info);
  core_actions_clear(c);
  core_request_t r = {.id = 1, .model = "m", .prompt_tokens = 100,
                      .max_tokens = 4, .cls = INFS_CLASS_AGENT};
  core_on_submit(c, 0, &client, &r);
  size_t n;
  const core_action_t *a = core_actions(c, &n);
  assert_int_equal(n, 1);
  assert_int_equal(a->kind, CORE_ACT_ERROR);
  assert_int_equal(a->code, INFS_WIRE_NOWORKER);
  assert_string_equal(a->message,
                      "only prefill-role workers serve model 'm'");
  core_destroy(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_split_end_to_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prefill_worker_lost, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_decode_worker_lost, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_kv_transfer_fallback, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_prefill_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_split_progress_deadlines, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_decode_progress_deadline, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel_and_stale_prefilled, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_short_answers, setup, teardown),
      cmocka_unit_test(test_prefill_only_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
