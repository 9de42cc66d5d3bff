/* Unit tests of the routing policies, admission and session affinity, on
 * hand-built pools: workers registered with the profiles of
 * configs/profiles.yaml, loads and prefix caches set by heartbeats, and
 * requests whose right worker can be worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "infsched.pb-c.h"
#include "infsched/errors.h"
#include "core.h"
#include "core_fixture.h"
#include "prefix.h"
#include "profile_fixture.h"

#include <stdio.h>
#include <string.h>

#define MS INFS_US_PER_MS
#define MAX_WORKERS 8

/* --- profiles: the figures of configs/profiles.yaml --- */

static infs_profile_t gpu_h100(void) {
  infs_profile_t p = {.cls = INFS_WORKER_GPU,
                      .price_per_hour = 10.68,
                      .power_idle_w = 800,
                      .power_busy_w = 3200,
                      .weights_gb = 141.2,
                      .params_b = 70.6,
                      .kv_kb_per_token = 320,
                      .attn_mflop_per_ctx = 2.62,
                      .mem_bw_gbs = 13400,
                      .mem_eff = 0.63,
                      .peak_tflops = 3956,
                      .mfu = 0.40,
                      .per_seq_ms = 0.16,
                      .max_batch = 256,
                      .kv_tokens = 450000,
                      .max_context = 131072,
                      .block_size = 64,
                      .max_num_batched_tokens = 512};
  strcpy(p.name, "gpu-h100");
  return p;
}

static infs_profile_t sram_wse3(void) {
  infs_profile_t p = {.cls = INFS_WORKER_SRAM,
                      .price_per_hour = 381,
                      .power_idle_w = 48000,
                      .power_busy_w = 92000,
                      .weights_gb = 141.2,
                      .params_b = 70.6,
                      .kv_kb_per_token = 320,
                      .attn_mflop_per_ctx = 2.62,
                      .mem_bw_gbs = 84000000,
                      .mem_eff = 0.5,
                      .peak_tflops = 500000,
                      .mfu = 0.04,
                      .step_overhead_ms = 0.44,
                      .per_seq_ms = 0.01,
                      .max_batch = 48,
                      .kv_tokens = 94000,
                      .max_context = 32768,
                      .block_size = 64,
                      .max_num_batched_tokens = 512};
  strcpy(p.name, "sram-wse3");
  return p;
}

static infs_profile_t tpu_v6e(void) {
  infs_profile_t p = {.cls = INFS_WORKER_TPU,
                      .price_per_hour = 9.76,
                      .power_idle_w = 1100,
                      .power_busy_w = 3000,
                      .weights_gb = 141.2,
                      .params_b = 70.6,
                      .kv_kb_per_token = 160,
                      .attn_mflop_per_ctx = 2.62,
                      .mem_bw_gbs = 13104,
                      .mem_eff = 0.45,
                      .peak_tflops = 7344,
                      .mfu = 0.40,
                      .per_seq_ms = 0.06,
                      .max_batch = 320,
                      .kv_tokens = 580000,
                      .max_context = 65536,
                      .block_size = 64,
                      .max_num_batched_tokens = 512};
  strcpy(p.name, "tpu-v6e");
  return p;
}

/* --- a pool driven through core.h --- */

typedef struct pool {
  core_t *core;
  core_config_t cfg;
  core_peer_t client;
  core_peer_t peer[MAX_WORKERS];
  infs_profile_t prof[MAX_WORKERS];
  int n;
  uint64_t next_id;
  link_table_t *links;
} pool_t;

static void pool_config(pool_t *p, const char *policy) {
  memset(p, 0, sizeof *p);
  core_config_defaults(&p->cfg);
  p->cfg.policy = policy;
  p->cfg.heartbeat_interval = 100 * MS;
  p->cfg.heartbeat_miss = 1000;
  p->cfg.queue_timeout = 60 * INFS_US_PER_S;
  p->client = fixture_peer("client");
  p->next_id = 1;
}

static void pool_start(pool_t *p) {
  int err;
  p->core = core_new(&p->cfg, 0, &err);
  assert_non_null(p->core);
}

static void pool_init(pool_t *p, const char *policy) {
  pool_config(p, policy);
  pool_start(p);
}

static int pool_add_as(pool_t *p, const char *id, infs_profile_t prof,
                       uint32_t capacity, const char *model, infs_role_t role) {
  int i = p->n++;
  char name[32];
  snprintf(name, sizeof name, "peer-%s", id);
  p->peer[i] = fixture_peer(name);
  p->prof[i] = prof;
  core_worker_info_t info = {.worker_id = id,
                             .model = model,
                             .backend = "sim",
                             .profile = &p->prof[i],
                             .capacity = capacity,
                             .role = role};
  core_on_register(p->core, 0, &p->peer[i], &info);
  core_actions_clear(p->core);
  return i;
}

static int pool_add_model(pool_t *p, const char *id, infs_profile_t prof,
                          uint32_t capacity, const char *model) {
  return pool_add_as(p, id, prof, capacity, model, INFS_ROLE_BOTH);
}

static int pool_add(pool_t *p, const char *id, infs_profile_t prof,
                    uint32_t capacity) {
  return pool_add_model(p, id, prof, capacity, "m");
}

/* The standard pool: gpu-0, sram-0, tpu-0. */
static void pool_three(pool_t *p) {
  pool_add(p, "gpu-0", gpu_h100(), 512);
  pool_add(p, "sram-0", sram_wse3(), 96);
  pool_add(p, "tpu-0", tpu_v6e(), 640);
}

/* Workers gpu-0 .. gpu-(n-1), all H100s. */
static void pool_gpus(pool_t *p, int n) {
  for (int i = 0; i < n; i++) {
    char id[16];
    snprintf(id, sizeof id, "gpu-%d", i);
    pool_add(p, id, gpu_h100(), 512);
  }
}

/* cache_affinity with these balance thresholds over three H100s. */
static void pool_cache_affinity(pool_t *p, uint32_t abs, double rel) {
  pool_config(p, "cache_affinity");
  p->cfg.cache_balance_abs = abs;
  p->cfg.cache_balance_rel = rel;
  pool_start(p);
  pool_gpus(p, 3);
}

static void pool_free(pool_t *p) {
  core_destroy(&p->core);
  link_table_free(&p->links);
}

static void beat(pool_t *p, int w, infs_time_t now, const core_load_t *load) {
  core_on_heartbeat(p->core, now, &p->peer[w], load);
}

/* Reports blocks[0..n) as w's whole prefix cache. */
static void beat_cache(pool_t *p, int w, infs_time_t now,
                       const uint64_t *blocks, size_t n) {
  core_load_t l = {
      .cache_reset = true, .cache_added = blocks, .n_cache_added = n};
  beat(p, w, now, &l);
}

typedef struct req_spec {
  infs_class_t cls;
  uint32_t prompt;
  uint32_t max_tokens;
  uint32_t ttft_ms;
  uint32_t tpot_ms;
  const uint64_t *blocks;
  size_t n_blocks;
  const char *session;
} req_spec_t;

static int worker_of_action(const pool_t *p, const core_action_t *a) {
  for (int i = 0; i < p->n; i++)
    if (a->peer.len == p->peer[i].len &&
        memcmp(a->peer.id, p->peer[i].id, a->peer.len) == 0)
      return i;
  return -1;
}

/* The worker the last DISPATCH in the outbox went to, or -1, and the
 * phase it runs there unless phase is NULL. */
static int dispatched_to(const pool_t *p, uint64_t *core_id,
                         infs_phase_t *phase) {
  size_t n;
  const core_action_t *a = core_actions(p->core, &n);
  for (size_t i = n; i-- > 0;)
    if (a[i].kind == CORE_ACT_DISPATCH) {
      if (core_id)
        *core_id = a[i].request_id;
      if (phase)
        *phase = a[i].phase;
      return worker_of_action(p, &a[i]);
    }
  return -1;
}

static const core_action_t *find_error(const pool_t *p) {
  size_t n;
  const core_action_t *a = core_actions(p->core, &n);
  for (size_t i = 0; i < n; i++)
    if (a[i].kind == CORE_ACT_ERROR)
      return &a[i];
  return NULL;
}

/* Submits and returns the worker index it went to (-1: not dispatched),
 * and the phase it runs there unless phase is NULL; the outbox is cleared
 * afterwards. */
static int submit_phase(pool_t *p, infs_time_t now, const req_spec_t *s,
                        uint64_t *core_id, infs_phase_t *phase) {
  core_request_t r = {.id = p->next_id++,
                      .model = "m",
                      .prompt_tokens = s->prompt,
                      .max_tokens = s->max_tokens ? s->max_tokens : 16,
                      .cls = s->cls,
                      .ttft_ms = s->ttft_ms,
                      .tpot_ms = s->tpot_ms,
                      .session = s->session,
                      .blocks = s->blocks,
                      .n_blocks = s->n_blocks};
  core_on_submit(p->core, now, &p->client, &r);
  int w = dispatched_to(p, core_id, phase);
  core_actions_clear(p->core);
  return w;
}

static int submit_at(pool_t *p, infs_time_t now, const req_spec_t *s,
                     uint64_t *core_id) {
  return submit_phase(p, now, s, core_id, NULL);
}

static int submit(pool_t *p, const req_spec_t *s) {
  return submit_at(p, 0, s, NULL);
}

/* Chained block hashes of a prompt: block i depends on every block before
 * it, as clients hash them. */
static void chain(uint64_t seed, uint64_t *out, size_t n) {
  uint64_t h = seed;
  for (size_t i = 0; i < n; i++) {
    h = h * 0x9e3779b97f4a7c15ull + i + 1;
    h ^= h >> 29;
    out[i] = h | 1;
  }
}

/* An agent request whose prompt is the n blocks (of 64 tokens) at blocks. */
static req_spec_t agent_prompt(const uint64_t *blocks, size_t n) {
  return (req_spec_t){.cls = INFS_CLASS_AGENT,
                      .prompt = (uint32_t)n * 64,
                      .blocks = blocks,
                      .n_blocks = n};
}

static uint64_t outcome(const pool_t *p, core_outcome_t o) {
  return core_stats(p->core)->outcomes[o];
}

/* --- balanced: latency where it is needed, cost where it is not --- */

/* 4,000 tokens within 200 ms: the GPU needs 370 ms and the TPU 208 ms to
 * prefill them; only the SRAM-class worker (29 ms) meets the target. */
static void test_tight_ttft_goes_to_sram(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_three(&p);
  req_spec_t r = {.cls = INFS_CLASS_INTERACTIVE,
                  .prompt = 4000,
                  .max_tokens = 50,
                  .ttft_ms = 200};
  for (int i = 0; i < 3; i++)
    assert_int_equal(submit(&p, &r), 1);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MET), 3);
  pool_free(&p);
}

/* A busy TPU shares its decode steps among 200 sequences, which makes it
 * by far the cheapest place for a batch job: about $4e-4 against $7.6e-4
 * on the GPU and $2.1e-3 on the SRAM worker, which are as busy, so that
 * balanced's opportunity cost (that times the share of the worker in use:
 * 0.69, 0.89, 0.87) ranks them the same way; batch's SLO is loose enough
 * for all three. */
static void test_batch_goes_to_cheapest(void **unused) {
  (void)unused;
  const char *policies[] = {"balanced", "cheapest"};
  for (int k = 0; k < 2; k++) {
    pool_t p;
    pool_init(&p, policies[k]);
    pool_three(&p);
    core_load_t gpu = {.running = 200, .kv_used = 400000};
    core_load_t sram = {.running = 40, .kv_used = 80000};
    core_load_t tpu = {.running = 200, .kv_used = 400000};
    beat(&p, 0, 0, &gpu);
    beat(&p, 1, 0, &sram);
    beat(&p, 2, 0, &tpu);
    req_spec_t r = {.cls = INFS_CLASS_BATCH, .prompt = 2000, .max_tokens = 200};
    assert_int_equal(submit(&p, &r), 2);
    assert_int_equal(
        outcome(&p, k ? CORE_OUTCOME_CHEAPEST : CORE_OUTCOME_SLO_MET), 1);
    pool_free(&p);
  }
}

/* A stream is harmed by what a newcomer's prefill adds to the steps it
 * shares, spread over its own output, not over the average left there: a
 * 2,000-token prompt adds about 166 ms (a compute-bound step of ~183 ms in
 * place of a 17 ms one) to the steps of a 4-token agent answer, 55 ms per
 * token over its 3, past the agent's 25. Sharing that worker would cost the
 * interactive request about half as much (it shares the decode steps), but
 * while a worker it harms nobody on is free, balanced takes that one, even
 * though the agent is less urgent. */
static void test_spares_short_streams(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_gpus(&p, 2);
  req_spec_t agent = {.cls = INFS_CLASS_AGENT, .prompt = 500, .max_tokens = 4};
  int w = submit(&p, &agent);
  core_load_t l = {.running = 1, .kv_used = 512};
  beat(&p, w, 0, &l);
  req_spec_t inter = {
      .cls = INFS_CLASS_INTERACTIVE, .prompt = 2000, .max_tokens = 100};
  assert_int_equal(submit(&p, &inter), 1 - w);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MET), 2);
  pool_free(&p);
}

/* On idle workers an interactive completion costs about the same on the
 * TPU and the GPU ($1.0e-3) and 1.8 times that on SRAM, which answers 10
 * times faster and uses 3% of the SLO against the GPU's 42% (its 17 ms per
 * token against 40). Weight 4 pays for that (1.8 * 1.1 < 1 + 4 * 0.42);
 * weight 0 does not. */
static void test_latency_weight(void **unused) {
  (void)unused;
  req_spec_t r = {
      .cls = INFS_CLASS_INTERACTIVE, .prompt = 1469, .max_tokens = 13};
  pool_t p;
  char err[128];
  pool_config(&p, "balanced");
  assert_int_equal(
      slo_parse_weights("interactive=4", p.cfg.latency_weight, err, sizeof err),
      0);
  pool_start(&p);
  pool_three(&p);
  assert_int_equal(submit(&p, &r), 1);
  pool_free(&p);

  pool_config(&p, "balanced");
  assert_int_equal(
      slo_parse_weights("interactive=0", p.cfg.latency_weight, err, sizeof err),
      0);
  pool_start(&p);
  pool_three(&p);
  assert_int_not_equal(submit(&p, &r), 1);
  pool_free(&p);
}

/* On a fixed pool idle capacity is paid for anyway: an agent turn goes to
 * the idle SRAM worker, although its worker time at list price ($3.0e-3)
 * is 4.5 times what a share of the steps of a GPU decoding 20 streams
 * costs ($6.5e-4), where 22 ms per token leaves little margin under the
 * turn's 25 ms target.
 * Once the SRAM worker is busier than the GPU, its price counts again and
 * the GPU gets the next turn. */
static void test_idle_capacity_is_cheap(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_add(&p, "gpu-0", gpu_h100(), 512);
  pool_add(&p, "sram-0", sram_wse3(), 96);
  core_load_t gpu = {.running = 20, .kv_used = 40000};
  beat(&p, 0, 0, &gpu);
  req_spec_t r = {.cls = INFS_CLASS_AGENT,
                  .prompt = 2000,
                  .max_tokens = 30,
                  .ttft_ms = 2000,
                  .tpot_ms = 25};
  assert_int_equal(submit(&p, &r), 1);
  core_load_t sram = {.running = 44, .kv_used = 88000};
  beat(&p, 1, 0, &sram);
  assert_int_equal(submit(&p, &r), 0);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MET), 2);
  pool_free(&p);
}

/* A request's own SLO replaces its class default. */
static void test_request_slo_override(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_three(&p);
  req_spec_t r = {.cls = INFS_CLASS_BATCH, .prompt = 2000, .max_tokens = 20};
  assert_int_not_equal(submit(&p, &r), 1); /* cheap: GPU or TPU */
  r.ttft_ms = 50;                          /* only SRAM prefills in time */
  assert_int_equal(submit(&p, &r), 1);
  pool_free(&p);
}

/* Nobody can answer 8,000 tokens within 10 ms: the fastest gets it. */
static void test_none_meets_slo_takes_fastest(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_three(&p);
  req_spec_t r = {.cls = INFS_CLASS_INTERACTIVE, .prompt = 8000, .ttft_ms = 10};
  assert_int_equal(submit(&p, &r), 1);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MISSED), 1);
  pool_free(&p);
}

/* An agent turn of 50,000 tokens that brings its own targets, TTFT 2 s
 * (absolute: no allowance) and TPOT 25 ms: the TPU holds its prefix and
 * would answer at once, but decodes that context at 25.06 ms per token,
 * past 25, as it would every later turn of the session; the GPU must
 * prefill it all (4.5 s, past 2 s) but then decodes at 19 ms.
 * Nobody meets the SLO: the one that misses it only this once wins over the
 * fastest. */
static void test_none_meets_slo_keeps_tpot(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_add(&p, "gpu-0", gpu_h100(), 512);
  pool_add(&p, "tpu-0", tpu_v6e(), 640);
  static uint64_t blocks[782];
  chain(11, blocks, 782);
  beat_cache(&p, 1, 0, blocks, 780);
  req_spec_t r = {.cls = INFS_CLASS_AGENT,
                  .prompt = 50000,
                  .max_tokens = 200,
                  .ttft_ms = 2000,
                  .tpot_ms = 25,
                  .blocks = blocks,
                  .n_blocks = 782};
  assert_int_equal(submit(&p, &r), 0);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MISSED), 1);
  /* With a TPOT target the TPU meets, its cached prefix wins. */
  r.tpot_ms = 30;
  assert_int_equal(submit(&p, &r), 1);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MET), 1);
  pool_free(&p);
}

/* --- hard constraints --- */

/* An 80k-token prompt fits only the GPU's 128k context (SRAM 32k, TPU 64k),
 * whatever the policy and however attractive the others look. */
static void test_context_limit_every_policy(void **unused) {
  (void)unused;
  const char *policies[] = {"round_robin", "least_loaded", "cache_affinity",
                            "cheapest", "balanced"};
  uint64_t blocks[1250];
  chain(7, blocks, 1250);
  for (size_t k = 0; k < sizeof policies / sizeof *policies; k++) {
    pool_t p;
    pool_init(&p, policies[k]);
    pool_three(&p);
    /* The SRAM worker even holds the prompt's first blocks. */
    beat_cache(&p, 1, 0, blocks, 400);
    req_spec_t r = {.cls = INFS_CLASS_INTERACTIVE,
                    .prompt = 80000,
                    .max_tokens = 100,
                    .ttft_ms = 100,
                    .blocks = blocks,
                    .n_blocks = 1250};
    for (int i = 0; i < 5; i++)
      assert_int_equal(submit(&p, &r), 0);
    /* 40k tokens: GPU or TPU, never SRAM. */
    r.prompt = 40000;
    r.n_blocks = 625;
    for (int i = 0; i < 5; i++)
      assert_int_not_equal(submit(&p, &r), 1);
    pool_free(&p);
  }
}

static void test_model_is_a_hard_constraint(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_three(&p);
  pool_add_model(&p, "sram-other", sram_wse3(), 96, "other");
  /* Model "m" is served by the first three only, even when the SRAM worker
   * of model "other" is the only one fast enough. */
  core_load_t busy = {.running = 48, .queued = 40, .kv_used = 90000};
  beat(&p, 1, 0, &busy);
  req_spec_t r = {
      .cls = INFS_CLASS_INTERACTIVE, .prompt = 4000, .ttft_ms = 200};
  for (int i = 0; i < 3; i++) {
    int w = submit(&p, &r);
    assert_true(w >= 0 && w < 3);
  }
  pool_free(&p);
}

/* --- cache_affinity --- */

/* gpu-1 holds the prompt's 10 blocks. With cache_balance 2 / 1.5 it keeps
 * winning while it has at most 2 requests more than the least loaded (or at
 * most 1.5 times as many); past that the request spills to the least
 * loaded, and comes back once the others have caught up. */
static void test_cache_hit_until_overloaded(void **unused) {
  (void)unused;
  pool_t p;
  pool_cache_affinity(&p, 2, 1.5);
  uint64_t blocks[12];
  chain(1, blocks, 12);
  beat_cache(&p, 1, 0, blocks, 10);
  req_spec_t r = agent_prompt(blocks, 12);
  /* Loads of gpu-0/1/2 before each: 0/0/0 hit, 0/1/0 hit, 0/2/0 hit,
   * 0/3/0 spill (3 > 0 + 2), 1/3/0 spill, 1/3/1 hit (3 = 1 + 2). */
  int expect[] = {1, 1, 1, 0, 2, 1};
  for (int i = 0; i < 6; i++)
    assert_int_equal(submit(&p, &r), expect[i]);
  assert_int_equal(outcome(&p, CORE_OUTCOME_CACHE_HIT), 4);
  assert_int_equal(outcome(&p, CORE_OUTCOME_CACHE_SPILL), 2);
  /* 10 of 12 blocks cached on each hit. */
  assert_int_equal(core_stats(p.core)->cached_blocks_routed, 40);
  assert_int_equal(core_stats(p.core)->blocks_routed, 72);
  /* Without blocks: the least loaded (1/4/1, the first of equals). */
  req_spec_t plain = {.cls = INFS_CLASS_AGENT, .prompt = 100};
  assert_int_equal(submit(&p, &plain), 0);
  assert_int_equal(outcome(&p, CORE_OUTCOME_CACHE_MISS), 1);
  pool_free(&p);
}

/* When the best match is too loaded, the next best match beats a worker
 * with nothing cached. */
static void test_cache_spill_to_next_best_match(void **unused) {
  (void)unused;
  pool_t p;
  pool_cache_affinity(&p, 0, 1);
  uint64_t blocks[10];
  chain(2, blocks, 10);
  beat_cache(&p, 0, 0, blocks, 10); /* the whole prompt */
  beat_cache(&p, 1, 0, blocks, 4);  /* its first 4 blocks */
  req_spec_t r = agent_prompt(blocks, 10);
  assert_int_equal(submit(&p, &r), 0);
  /* gpu-0 has 1 more than gpu-2: too loaded at threshold 0. */
  assert_int_equal(submit(&p, &r), 1);
  assert_int_equal(outcome(&p, CORE_OUTCOME_CACHE_SPILL), 1);
  pool_free(&p);
}

/* SGLang's cache_threshold (0.3 by default): a worker holding 3 of the
 * prompt's 10 blocks has no match and the request goes to the least loaded
 * (gpu-0, the first of equals); 4 of 10 is a match. */
static void test_cache_match_threshold(void **unused) {
  (void)unused;
  core_config_t d;
  core_config_defaults(&d);
  assert_float_equal(d.cache_match_threshold, 0.3, 0);
  assert_int_equal(d.cache_balance_abs, 64);
  assert_float_equal(d.cache_balance_rel, 1.5, 0);
  uint64_t blocks[10];
  chain(3, blocks, 10);
  req_spec_t r = agent_prompt(blocks, 10);
  static const struct {
    double threshold;
    size_t cached;
    int expect;
    core_outcome_t outcome;
  } cases[] = {
      {0.3, 3, 0, CORE_OUTCOME_CACHE_MISS},
      {0.3, 4, 1, CORE_OUTCOME_CACHE_HIT},
      {0.0, 3, 1, CORE_OUTCOME_CACHE_HIT},
      {0.5, 5, 0, CORE_OUTCOME_CACHE_MISS},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    pool_t p;
    pool_config(&p, "cache_affinity");
    p.cfg.cache_match_threshold = cases[k].threshold;
    pool_start(&p);
    pool_gpus(&p, 3);
    beat_cache(&p, 1, 0, blocks, cases[k].cached);
    assert_int_equal(submit(&p, &r), cases[k].expect);
    assert_int_equal(outcome(&p, cases[k].outcome), 1);
    pool_free(&p);
  }
}

/* One heartbeat: KV tokens in use, prompt tokens waiting for prefill, and
 * the first `cached` of blocks as the whole prefix cache. */
static void beat_kv(pool_t *p, int w, uint64_t kv, uint64_t backlog,
                    const uint64_t *blocks, size_t cached) {
  core_load_t l = {.kv_used = kv,
                   .prefill_backlog_tokens = backlog,
                   .cache_reset = true,
                   .cache_added = blocks,
                   .n_cache_added = cached};
  beat(p, w, 0, &l);
}

/* kv_cost on three H100s (64-token blocks) and a 20-block prompt, by
 * Dynamo's formula: scale * max(prefill - cached, 0) + decode, where
 * prefill is the backlog plus the prompt and decode the KV in use plus the
 * prompt, in blocks.
 *   defaults:  gpu-0 (16 cached, 100 KV blocks) 4 + 120 = 124,
 *              gpu-1 (nothing) 20 + 20 = 40,
 *              gpu-2 (8 cached, 20 KV blocks) 12 + 40 = 52: gpu-1;
 *   scale 4:   136, 100, 88: gpu-2, the prefill it saves now weighs more;
 *   backlog:   gpu-0 (all 20 cached, 50 blocks waiting) 50 + 20 = 70,
 *              gpu-1 (50 KV blocks) 20 + 70 = 90,
 *              gpu-2 (10 blocks waiting) 30 + 20 = 50: gpu-2. */
static void test_kv_cost_formula(void **unused) {
  (void)unused;
  uint64_t blocks[20];
  chain(4, blocks, 20);
  req_spec_t r = agent_prompt(blocks, 20);
  static const struct {
    double scale;
    uint64_t kv[3], backlog[3];
    size_t cached[3];
    int expect;
  } cases[] = {
      {1, {6400, 0, 1280}, {0, 0, 0}, {16, 0, 8}, 1},
      {4, {6400, 0, 1280}, {0, 0, 0}, {16, 0, 8}, 2},
      {1, {0, 3200, 0}, {3200, 0, 640}, {20, 0, 0}, 2},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    pool_t p;
    pool_config(&p, "kv_cost");
    p.cfg.kv_prefill_scale = cases[k].scale;
    pool_start(&p);
    pool_gpus(&p, 3);
    for (int w = 0; w < 3; w++)
      beat_kv(&p, w, cases[k].kv[w], cases[k].backlog[w], blocks,
              cases[k].cached[w]);
    assert_int_equal(submit(&p, &r), cases[k].expect);
    assert_int_equal(outcome(&p, CORE_OUTCOME_LOWEST_COST), 1);
    pool_free(&p);
  }
}

/* Two H100s, one holding the whole 20-block prompt: costs 20 and 40. At
 * temperature 0 the lower always wins; at 1 Dynamo's softmax over the
 * costs rescaled to their spread gives the other e^-1 / (1 + e^-1) = 0.269
 * of the picks (108 of 400; the bounds are four standard deviations). A
 * heartbeat before each pick keeps the loads as they were. */
static void test_kv_cost_temperature(void **unused) {
  (void)unused;
  uint64_t blocks[20];
  chain(5, blocks, 20);
  req_spec_t r = agent_prompt(blocks, 20);
  for (int t = 0; t < 2; t++) {
    pool_t p;
    pool_config(&p, "kv_cost");
    p.cfg.kv_temperature = t;
    pool_start(&p);
    pool_gpus(&p, 2);
    int other = 0;
    for (int i = 0; i < 400; i++) {
      beat_kv(&p, 0, 0, 0, blocks, 20);
      beat_kv(&p, 1, 0, 0, blocks, 0);
      other += submit(&p, &r) == 1;
    }
    if (t == 0) {
      assert_int_equal(other, 0);
    } else {
      assert_in_range(other, 108 - 36, 108 + 36);
    }
    pool_free(&p);
  }
}

/* Outstanding requests weigh in with kv_request_weight: gpu-0 holds the
 * prompt (cost 20 against 40) but has 25 requests; at weight 1 that is 45
 * against 40 and gpu-1 wins. */
static void test_kv_cost_request_weight(void **unused) {
  (void)unused;
  uint64_t blocks[20];
  chain(6, blocks, 20);
  req_spec_t r = agent_prompt(blocks, 20);
  for (int weight = 0; weight < 2; weight++) {
    pool_t p;
    pool_config(&p, "kv_cost");
    p.cfg.kv_request_weight = weight;
    pool_start(&p);
    pool_gpus(&p, 2);
    /* 25 requests onto gpu-0 while gpu-1 is full of KV; then a heartbeat
     * of each forgets the KV they took: only their count stays. */
    for (int i = 0; i < 25; i++) {
      beat_kv(&p, 0, 0, 0, blocks, 20);
      beat_kv(&p, 1, 400000, 0, blocks, 0);
      assert_int_equal(submit(&p, &r), 0);
    }
    beat_kv(&p, 0, 0, 0, blocks, 20);
    beat_kv(&p, 1, 0, 0, blocks, 0);
    assert_int_equal(submit(&p, &r), weight ? 1 : 0);
    pool_free(&p);
  }
}

/* weighted_score on three H100s (batch 256, 450,000 KV tokens) and a
 * 10-block prompt, by llm-d's scorers:
 *   waiting 10 / 0 / 4     queue score  0 / 1 / 0.6
 *   KV use 0.5 / 0.8 / 0.2 KV score   0.5 / 0.2 / 0.8
 *   cached 10 / 0 / 5      prefix score 1 / 0 / 0.5
 * weights 2, 2, 3: 4.0 / 2.4 / 4.3, gpu-2; prefix weight 6: 7.0 / 2.4 /
 * 5.8, gpu-0. */
static void test_weighted_score_formula(void **unused) {
  (void)unused;
  uint64_t blocks[10];
  chain(7, blocks, 10);
  req_spec_t r = agent_prompt(blocks, 10);
  static const struct {
    uint32_t running, queued;
    uint64_t kv;
    size_t cached;
  } w[3] = {{256, 10, 225000, 10}, {100, 0, 360000, 0}, {256, 4, 90000, 5}};
  for (int k = 0; k < 2; k++) {
    pool_t p;
    pool_config(&p, "weighted_score");
    if (k)
      p.cfg.score_prefix_weight = 6;
    pool_start(&p);
    pool_gpus(&p, 3);
    for (int i = 0; i < 3; i++) {
      core_load_t l = {.running = w[i].running,
                       .queued = w[i].queued,
                       .kv_used = w[i].kv,
                       .cache_reset = true,
                       .cache_added = blocks,
                       .n_cache_added = w[i].cached};
      beat(&p, i, 0, &l);
    }
    assert_int_equal(submit(&p, &r), k ? 0 : 2);
    assert_int_equal(outcome(&p, CORE_OUTCOME_BEST_SCORE), 1);
    pool_free(&p);
  }
}

/* On idle workers every score is 2 + 2 + 0: the max-score picker draws
 * among equals, so each of three workers gets about a third. */
static void test_weighted_score_ties_drawn(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "weighted_score");
  pool_gpus(&p, 3);
  int count[3] = {0};
  req_spec_t r = {.cls = INFS_CLASS_AGENT, .prompt = 500};
  core_load_t idle = {0};
  for (int i = 0; i < 300; i++) {
    for (int w = 0; w < 3; w++)
      beat(&p, w, 0, &idle);
    int w = submit(&p, &r);
    assert_in_range(w, 0, 2);
    count[w]++;
  }
  for (int w = 0; w < 3; w++)
    assert_in_range(count[w], 60, 140);
  pool_free(&p);
}

/* --- the prefix index, as heartbeats update it --- */

static uint32_t cached_on(const pool_t *p, int w) {
  core_worker_view_t v;
  size_t cursor = 0;
  for (int i = 0; core_worker_next(p->core, &cursor, &v) == 0; i++)
    if (i == w)
      return v.cached_blocks;
  return UINT32_MAX;
}

static void test_cache_index_follows_heartbeats(void **unused) {
  (void)unused;
  pool_t p;
  pool_config(&p, "cache_affinity");
  pool_start(&p);
  infs_profile_t small = gpu_h100();
  small.kv_tokens = 16 * 64; /* a pool of 16 blocks: the index's bound */
  small.max_context = 16 * 64;
  pool_add(&p, "gpu-0", gpu_h100(), 512);
  pool_add(&p, "gpu-1", small, 512);
  uint64_t blocks[12], other[6];
  chain(3, blocks, 12);
  chain(9, other, 6);
  req_spec_t r = agent_prompt(blocks, 12);

  /* Deltas: gpu-1 adds 6 blocks of another prompt, then r's 12, of which
   * only 10 fit. */
  core_load_t l = {.cache_added = other, .n_cache_added = 6};
  beat(&p, 1, 0, &l);
  assert_int_equal(cached_on(&p, 1), 6);
  l.cache_added = blocks;
  l.n_cache_added = 12;
  beat(&p, 1, 0, &l);
  assert_int_equal(cached_on(&p, 1), 16);
  assert_int_equal(core_stats(p.core)->cache_adds_dropped, 2);
  assert_int_equal(submit(&p, &r), 1);

  /* gpu-0 reports all 12: it now has the longer match. */
  beat_cache(&p, 0, 0, blocks, 12);
  assert_int_equal(submit(&p, &r), 0);

  /* It evicts the tail from block 3 on: gpu-1's 10 now win. */
  l = (core_load_t){.cache_removed = blocks + 3, .n_cache_removed = 9};
  beat(&p, 0, 0, &l);
  assert_int_equal(cached_on(&p, 0), 3);
  assert_int_equal(submit(&p, &r), 1);

  /* A reset replaces the whole set. */
  beat_cache(&p, 1, 0, blocks, 2);
  assert_int_equal(cached_on(&p, 1), 2);
  assert_int_equal(submit(&p, &r), 0);
  pool_free(&p);
}

static void test_prefix_index_match(void **unused) {
  (void)unused;
  prefix_index_t x;
  prefix_init(&x);
  prefix_reserve_workers(&x, 4);
  uint64_t b[40];
  chain(4, b, 40);
  /* Worker w holds the first held[w] blocks. */
  uint32_t held[4] = {0, 40, 7, 20};
  for (uint32_t w = 0; w < 4; w++)
    for (uint32_t i = 0; i < held[w]; i++)
      assert_int_equal(prefix_add(&x, w, b[i], 1000), 1);
  assert_int_equal(prefix_add(&x, 2, b[0], 1000), 0);
  assert_int_equal(prefix_count(&x, 2), 7);
  /* The limit counts the worker's blocks. */
  assert_int_equal(prefix_add(&x, 2, b[7], 7), -1);
  assert_int_equal(prefix_holders(&x, b[7]), 2);
  for (size_t n = 0; n <= 40; n++) {
    uint32_t deepest = prefix_match(&x, b, n);
    uint32_t want_deepest = 0;
    for (uint32_t w = 0; w < 4; w++) {
      uint32_t want = held[w] < n ? held[w] : (uint32_t)n;
      assert_int_equal(prefix_depth(&x, w), want);
      if (want > want_deepest)
        want_deepest = want;
    }
    assert_int_equal(deepest, want_deepest);
  }
  /* Another prompt sharing the first 5 blocks only. */
  uint64_t other[10];
  chain(5, other, 10);
  memcpy(other, b, 5 * sizeof *b);
  prefix_match(&x, other, 10);
  assert_int_equal(prefix_depth(&x, 1), 5);
  assert_int_equal(prefix_depth(&x, 2), 5);
  assert_int_equal(prefix_depth(&x, 0), 0);
  /* Forgetting a worker removes it from every block. */
  assert_int_equal(prefix_holders(&x, b[0]), 3);
  prefix_clear(&x, 1);
  assert_int_equal(prefix_count(&x, 1), 0);
  assert_int_equal(prefix_count(&x, 3), 20);
  assert_int_equal(prefix_holders(&x, b[0]), 2);
  assert_int_equal(prefix_holders(&x, b[30]), 0);
  prefix_match(&x, b, 40);
  assert_int_equal(prefix_depth(&x, 1), 0);
  assert_int_equal(prefix_depth(&x, 3), 20);
  prefix_free(&x);
}

/* Random adds, removes and clears against a plain table of who holds what.
 * The hashes all start their probe runs in the table's last slots, so runs
 * wrap around its end and deletions shift members across it. */
static void test_prefix_index_against_model(void **unused) {
  (void)unused;
  enum { W = 5, H = 300, LIMIT = 120 };
  static bool held[W][H];
  uint64_t hash[H];
  for (uint64_t k = 0; k < H; k++)
    hash[k] = (k + 1) << 42 | (1016 + k % 8);
  memset(held, 0, sizeof held);
  prefix_index_t x;
  prefix_init(&x);
  uint64_t rng = 88172645463325252ull;
  for (int step = 0; step < 40000; step++) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    uint32_t w = (uint32_t)(rng % W), k = (uint32_t)(rng >> 8) % H;
    uint32_t op = (uint32_t)(rng >> 40) % 1000;
    uint32_t n = 0;
    for (int j = 0; j < H; j++)
      n += held[w][j];
    if (op < 3) {
      prefix_clear(&x, w);
      memset(held[w], 0, sizeof held[w]);
    } else if (op < 450) {
      prefix_remove(&x, w, hash[k]);
      held[w][k] = false;
    } else {
      int want = held[w][k] ? 0 : n >= LIMIT ? -1 : 1;
      assert_int_equal(prefix_add(&x, w, hash[k], LIMIT), want);
      if (want == 1)
        held[w][k] = true;
    }
    if (step % 97 && op >= 3)
      continue;
    for (int j = 0; j < H; j++) {
      uint32_t holders = 0;
      for (int v = 0; v < W; v++)
        holders += held[v][j];
      assert_int_equal(prefix_holders(&x, hash[j]), holders);
    }
    for (uint32_t v = 0; v < W; v++) {
      uint32_t count = 0;
      for (int j = 0; j < H; j++)
        count += held[v][j];
      assert_int_equal(prefix_count(&x, v), count);
    }
  }
  prefix_free(&x);
}

static void test_lost_worker_leaves_the_index(void **unused) {
  (void)unused;
  pool_t p;
  pool_config(&p, "cache_affinity");
  p.cfg.heartbeat_miss = 2;
  pool_start(&p);
  pool_add(&p, "gpu-0", gpu_h100(), 512);
  pool_add(&p, "gpu-1", gpu_h100(), 512);
  uint64_t blocks[4];
  chain(6, blocks, 4);
  beat_cache(&p, 1, 0, blocks, 4);
  req_spec_t r = agent_prompt(blocks, 4);
  assert_int_equal(submit(&p, &r), 1);
  /* gpu-1 falls silent and is lost; a new worker takes its slot. The core
   * checks at its own cadence, half a heartbeat interval. */
  core_load_t idle = {0};
  for (infs_time_t t = 50 * MS; t <= 300 * MS; t += 50 * MS) {
    beat(&p, 0, t, &idle);
    core_on_tick(p.core, t);
  }
  core_actions_clear(p.core);
  assert_int_equal(core_stats(p.core)->workers_lost, 1);
  pool_add(&p, "gpu-2", gpu_h100(), 512);
  /* gpu-2 took gpu-1's slot in the registry but none of its blocks. */
  assert_int_equal(cached_on(&p, 1), 0);
  assert_true(submit_at(&p, 300 * MS, &r, NULL) >= 0);
  /* The lost worker's request went out again, and the new one: misses. */
  assert_int_equal(outcome(&p, CORE_OUTCOME_CACHE_HIT), 1);
  assert_int_equal(outcome(&p, CORE_OUTCOME_CACHE_MISS), 2);
  pool_free(&p);
}

/* --- bursts between heartbeats --- */

/* Nine interactive completions in one instant, no heartbeat in between, on
 * three identical GPUs: each dispatch adds its prefill to the worker's
 * predicted queue, so they spread three by three (a fourth on one worker
 * would wait past 450 ms). */
static void test_burst_spreads_balanced(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_gpus(&p, 3);
  int per[3] = {0};
  req_spec_t r = {
      .cls = INFS_CLASS_INTERACTIVE, .prompt = 1000, .max_tokens = 20};
  for (int i = 0; i < 9; i++) {
    int w = submit(&p, &r);
    assert_true(w >= 0);
    per[w]++;
  }
  for (int i = 0; i < 3; i++)
    assert_int_equal(per[i], 3);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MET), 9);
  pool_free(&p);
}

/* The same burst sharing one cached prefix: cache_affinity holds it on the
 * worker with the prefix only up to the balance threshold. */
static void test_burst_spreads_cache_affinity(void **unused) {
  (void)unused;
  pool_t p;
  pool_cache_affinity(&p, 3, 2);
  uint64_t blocks[8];
  chain(8, blocks, 8);
  beat_cache(&p, 0, 0, blocks, 8);
  int per[3] = {0};
  req_spec_t r = {.cls = INFS_CLASS_INTERACTIVE,
                  .prompt = 512,
                  .blocks = blocks,
                  .n_blocks = 8};
  for (int i = 0; i < 30; i++)
    per[submit(&p, &r)]++;
  /* gpu-0 gets more than the others, but never more than 3 beyond the
   * least loaded or twice as many, plus the one that crossed the line. */
  int least = per[1] < per[2] ? per[1] : per[2];
  int bound = least + 3 > 2 * least ? least + 3 : 2 * least;
  assert_true(per[0] > per[1] && per[0] > per[2]);
  assert_true(per[0] <= bound + 1);
  assert_true(per[1] >= 5 && per[2] >= 5);
  pool_free(&p);
}

/* --- session affinity --- */

/* An agent session's second turn arrives before any heartbeat could report
 * the first turn's blocks: the session table still sends it to the worker
 * holding the session's prefix, until that worker is too loaded. */
static void test_session_affinity_cache_affinity(void **unused) {
  (void)unused;
  pool_t p;
  pool_cache_affinity(&p, 1, 1);
  uint64_t turn[40];
  chain(9, turn, 40);
  /* Someone else's request makes gpu-0 the busiest. */
  req_spec_t other = {.cls = INFS_CLASS_AGENT, .prompt = 100};
  assert_int_equal(submit(&p, &other), 0);
  req_spec_t t1 = {.cls = INFS_CLASS_AGENT,
                   .prompt = 20 * 64,
                   .blocks = turn,
                   .n_blocks = 20,
                   .session = "s1"};
  int w = submit(&p, &t1);
  assert_int_equal(w, 1); /* a miss: least loaded */
  /* Turns 2 and 3 grow the prompt: they follow the session. */
  req_spec_t t2 = t1;
  t2.n_blocks = 30;
  t2.prompt = 30 * 64;
  assert_int_equal(submit(&p, &t2), 1);
  assert_int_equal(core_stats(p.core)->session_kept, 1);
  /* gpu-1 now has 2, gpu-2 none: 2 > 0 + 1, too loaded; the turn moves. */
  req_spec_t t3 = t2;
  t3.n_blocks = 40;
  t3.prompt = 40 * 64;
  assert_int_equal(submit(&p, &t3), 2);
  assert_int_equal(core_stats(p.core)->session_moved, 1);
  /* A turn that does not extend the session's last prompt gets no credit
   * from it; another session gets none either. */
  req_spec_t fresh = {.cls = INFS_CLASS_AGENT,
                      .prompt = 640,
                      .blocks = turn + 30,
                      .n_blocks = 10,
                      .session = "s2"};
  assert_int_equal(submit(&p, &fresh), 0);
  assert_int_equal(outcome(&p, CORE_OUTCOME_CACHE_MISS), 3);
  pool_free(&p);
}

/* balanced: the session's 20k-token context is cached on gpu-0, so its next
 * turn prefills 1,300 tokens there instead of 21,300 on the idle gpu-1
 * (about 2 s, past the agent TTFT of 2 s). The first turn's own prefill
 * does not count as load that would slow the second turn's decode: a
 * session's turns run one after another. */
static void test_session_affinity_balanced(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_add(&p, "gpu-0", gpu_h100(), 512);
  pool_add(&p, "gpu-1", gpu_h100(), 512);
  uint64_t turn[333];
  chain(10, turn, 333);
  req_spec_t t1 = {.cls = INFS_CLASS_AGENT,
                   .prompt = 20000,
                   .max_tokens = 200,
                   .blocks = turn,
                   .n_blocks = 312,
                   .session = "agent-7"};
  uint64_t id1;
  assert_int_equal(submit_at(&p, 0, &t1, &id1), 0);
  /* gpu-0 has prefilled turn 1 (first token out), gpu-1 is idle. */
  core_on_chunk(p.core, 2000 * MS, &p.peer[0], id1, 1, NULL, 0, NULL);
  core_actions_clear(p.core);
  req_spec_t t2 = t1;
  t2.prompt = 21300;
  t2.n_blocks = 332;
  assert_int_equal(submit_at(&p, 2100 * MS, &t2, NULL), 0);
  assert_int_equal(core_stats(p.core)->session_kept, 1);
  pool_free(&p);
}

/* --- admission: balanced defers a batch job rather than slow others --- */

/* A small worker whose decode step grows 4 ms per sequence: five
 * interactive streams run at 39 ms per token, a sixth would take all six to
 * 43 ms, past the interactive limit of 40. */
static infs_profile_t tight_profile(void) {
  infs_profile_t p = gpu_h100();
  strcpy(p.name, "tight");
  /* 19 ms for the weights, the GPU's 0.089 ms of compute per token. */
  fixture_roofline(&p, 19, 0.0892, 0, 4);
  p.max_batch = 16;
  return p;
}

static const req_spec_t interactive_100 = {
    .cls = INFS_CLASS_INTERACTIVE, .prompt = 100, .max_tokens = 50};

/* A balanced pool of one tight worker running five interactive streams. */
static void tight_pool(pool_t *p, uint64_t ids[5]) {
  pool_init(p, "balanced");
  pool_add(p, "tight-0", tight_profile(), 32);
  for (int i = 0; i < 5; i++)
    assert_int_equal(submit_at(p, 0, &interactive_100, &ids[i]), 0);
}

static void test_balanced_defers_batch(void **unused) {
  (void)unused;
  pool_t p;
  uint64_t ids[5];
  tight_pool(&p, ids);
  /* A sixth sequence would make the step 43 ms: the batch job waits. */
  req_spec_t job = {.cls = INFS_CLASS_BATCH, .prompt = 100, .max_tokens = 50};
  assert_int_equal(submit_at(&p, 1 * MS, &job, NULL), -1);
  assert_int_equal(core_queued(p.core), 1);
  assert_int_equal(outcome(&p, CORE_OUTCOME_DEFERRED), 1);
  /* Trying again on each event counts it once. */
  core_on_tick(p.core, 2 * MS);
  core_actions_clear(p.core);
  assert_int_equal(outcome(&p, CORE_OUTCOME_DEFERRED), 1);
  /* One stream ends: the job fits without hurting the others. */
  core_on_done(p.core, 3 * MS, &p.peer[0], ids[0], NULL, NULL);
  assert_int_equal(dispatched_to(&p, NULL, NULL), 0);
  core_actions_clear(p.core);
  assert_int_equal(core_queued(p.core), 0);

  /* An interactive request is never held back for a batch job's sake:
   * the interactive streams are what the limit protects. */
  assert_int_equal(submit_at(&p, 4 * MS, &interactive_100, NULL), 0);
  pool_free(&p);
}

/* A thousand heartbeats and submits within one interval retry the deferred
 * job at most 64 times per interval (plus the 64 the core starts with),
 * not on each. */
static void test_heartbeats_retry_deferred_sparingly(void **unused) {
  (void)unused;
  pool_t p;
  uint64_t ids[5];
  tight_pool(&p, ids);
  req_spec_t job = {.cls = INFS_CLASS_BATCH, .prompt = 100, .max_tokens = 50};
  assert_int_equal(submit_at(&p, 1 * MS, &job, NULL), -1);
  uint64_t before = core_stats(p.core)->placement_attempts;
  core_load_t five = {.running = 5};
  for (int i = 1; i <= 1000; i++) {
    infs_time_t now = 1 * MS + (infs_time_t)i * 100;
    beat(&p, 0, now, &five);
    assert_int_equal(submit_at(&p, now, &job, NULL), -1);
  }
  uint64_t retries = core_stats(p.core)->placement_attempts - before;
  assert_true(retries >= 64);
  assert_true(retries <= 64 + 64 + 1);
  assert_int_equal(core_queued(p.core), 1001);
  pool_free(&p);
}

/* A deferred job goes anyway once half its TTFT budget is spent waiting. */
static void test_deferral_runs_out_of_patience(void **unused) {
  (void)unused;
  pool_t p;
  uint64_t ids[5];
  tight_pool(&p, ids);
  req_spec_t job = {.cls = INFS_CLASS_BATCH,
                    .prompt = 100,
                    .max_tokens = 50,
                    .ttft_ms = 10000};
  assert_int_equal(submit_at(&p, 0, &job, NULL), -1);
  static const struct {
    infs_time_t now;
    int dispatched;
  } table[] = {{1000 * MS, 0}, {4000 * MS, 0}, {5000 * MS, 1}};
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    core_on_tick(p.core, table[i].now);
    assert_int_equal(dispatched_to(&p, NULL, NULL) == 0, table[i].dispatched);
    core_actions_clear(p.core);
  }
  pool_free(&p);
}

/* --- admission: bounded queues, rejections with reasons --- */

static void test_rejections_have_reasons(void **unused) {
  (void)unused;
  pool_t p;
  pool_config(&p, "balanced");
  for (int i = 0; i < INFS_CLASS_COUNT; i++)
    p.cfg.queue_limit[i] = 1;
  /* The running one's worker stays silent past the queue timeout: not
   * this test's matter. */
  p.cfg.progress_timeout = 120 * INFS_US_PER_S;
  pool_start(&p);
  pool_add(&p, "sram-0", sram_wse3(), 1);
  req_spec_t r = {.cls = INFS_CLASS_AGENT, .prompt = 100};
  assert_int_equal(submit(&p, &r), 0);
  assert_int_equal(submit(&p, &r), -1); /* queued: no room */
  assert_int_equal(outcome(&p, CORE_OUTCOME_NO_ROOM), 1);
  core_request_t q = {.id = 77,
                      .model = "m",
                      .prompt_tokens = 100,
                      .max_tokens = 10,
                      .cls = INFS_CLASS_AGENT};
  core_on_submit(p.core, 0, &p.client, &q);
  const core_action_t *e = find_error(&p);
  assert_non_null(e);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_FULL);
  assert_non_null(strstr(e->message, "agent queue is full"));
  core_actions_clear(p.core);
  q.id = 78;
  q.prompt_tokens = 40000;
  core_on_submit(p.core, 0, &p.client, &q);
  e = find_error(&p);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_REJECTED_CONTEXT);
  core_actions_clear(p.core);
  q.id = 79;
  q.prompt_tokens = 10;
  q.model = "unknown";
  core_on_submit(p.core, 0, &p.client, &q);
  e = find_error(&p);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_REJECTED_NO_WORKER);
  core_actions_clear(p.core);
  const core_stats_t *s = core_stats(p.core);
  assert_int_equal(s->rejected_queue_full, 1);
  assert_int_equal(s->rejected_context, 1);
  assert_int_equal(s->rejected_no_worker, 1);
  assert_int_equal(s->rejected, 3);
  /* The queued one times out with a reason of its own. */
  core_on_tick(p.core, 61 * INFS_US_PER_S);
  e = find_error(&p);
  assert_non_null(e);
  assert_int_equal(e->code, INFSCHED__ERROR_CODE__ERROR_REJECTED_QUEUE_TIMEOUT);
  assert_int_equal(core_stats(p.core)->rejected_queue_timeout, 1);
  pool_free(&p);
}

/* Interactive requests leave the queue first. */
static void test_interactive_served_first(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "least_loaded");
  pool_add(&p, "gpu-0", gpu_h100(), 1);
  uint64_t first;
  req_spec_t r = {.cls = INFS_CLASS_BATCH, .prompt = 100};
  assert_int_equal(submit_at(&p, 0, &r, &first), 0);
  r.cls = INFS_CLASS_BATCH;
  assert_int_equal(submit(&p, &r), -1);
  r.cls = INFS_CLASS_AGENT;
  assert_int_equal(submit(&p, &r), -1);
  r.cls = INFS_CLASS_INTERACTIVE;
  assert_int_equal(submit(&p, &r), -1);
  core_on_done(p.core, 1 * MS, &p.peer[0], first, NULL, NULL);
  size_t n;
  const core_action_t *a = core_actions(p.core, &n);
  for (size_t i = 0; i < n; i++)
    if (a[i].kind == CORE_ACT_DISPATCH)
      assert_int_equal(a[i].request->cls, INFS_CLASS_INTERACTIVE);
  assert_int_equal(dispatched_to(&p, NULL, NULL), 0);
  core_actions_clear(p.core);
  pool_free(&p);
}

/* --- explanations and counters --- */

static void test_decisions_explain_themselves(void **unused) {
  (void)unused;
  pool_t p;
  pool_config(&p, "balanced");
  p.cfg.explain = true;
  pool_start(&p);
  pool_three(&p);
  core_request_t q = {.id = 42,
                      .model = "m",
                      .prompt_tokens = 4000,
                      .max_tokens = 50,
                      .cls = INFS_CLASS_INTERACTIVE,
                      .ttft_ms = 200};
  core_on_submit(p.core, 0, &p.client, &q);
  size_t n;
  const core_decision_t *d = core_decisions(p.core, &n);
  assert_int_equal(n, 1);
  assert_int_equal(d->request_id, 42);
  assert_true(d->placed);
  assert_int_equal(d->outcome, CORE_OUTCOME_SLO_MET);
  assert_int_equal(d->candidates, 3);
  assert_int_equal(d->n_scores, 3);
  assert_string_equal(d->scores[0].worker_id, "sram-0");
  assert_true(d->scores[0].ok);
  assert_true(d->scores[0].ttft_ms < 200);
  for (size_t i = 1; i < 3; i++) {
    assert_false(d->scores[i].ok);
    assert_true(d->scores[i].ttft_ms > 200);
  }
  char line[1024];
  core_decision_format(d, line, sizeof line);
  assert_non_null(strstr(line, "req 42 interactive"));
  assert_non_null(strstr(line, "-> sram-0 slo_met"));
  assert_non_null(strstr(line, "gpu-0"));
  assert_non_null(strstr(line, "tpu-0"));
  /* A short buffer still gets a terminated prefix. */
  char tiny[16];
  assert_true(core_decision_format(d, tiny, sizeof tiny) > 16);
  assert_int_equal(strlen(tiny), 15);
  core_actions_clear(p.core);
  core_decisions(p.core, &n);
  assert_int_equal(n, 0);
  pool_free(&p);

  /* Without explain nothing is recorded. */
  pool_init(&p, "balanced");
  pool_three(&p);
  core_on_submit(p.core, 0, &p.client, &q);
  core_decisions(p.core, &n);
  assert_int_equal(n, 0);
  pool_free(&p);
}

static void test_outcome_counters_per_policy(void **unused) {
  (void)unused;
  static const struct {
    const char *policy;
    core_outcome_t outcome;
  } table[] = {
      {"round_robin", CORE_OUTCOME_TURN},
      {"least_loaded", CORE_OUTCOME_LEAST_LOADED},
      {"cache_affinity", CORE_OUTCOME_CACHE_MISS},
      {"kv_cost", CORE_OUTCOME_LOWEST_COST},
      {"weighted_score", CORE_OUTCOME_BEST_SCORE},
      {"cheapest", CORE_OUTCOME_CHEAPEST},
      {"balanced", CORE_OUTCOME_SLO_MET},
  };
  for (size_t k = 0; k < sizeof table / sizeof *table; k++) {
    pool_t p;
    pool_init(&p, table[k].policy);
    pool_three(&p);
    req_spec_t r = {.cls = INFS_CLASS_AGENT, .prompt = 500};
    for (int i = 0; i < 4; i++)
      assert_true(submit(&p, &r) >= 0);
    assert_int_equal(outcome(&p, table[k].outcome), 4);
    assert_string_equal(core_policy_name(p.core), table[k].policy);
    pool_free(&p);
  }
  assert_string_equal(core_outcome_name(CORE_OUTCOME_CACHE_SPILL),
                      "cache_spill");
  assert_string_equal(core_outcome_name(CORE_OUTCOME_COUNT), "unknown");
}

static void test_config_setters(void **unused) {
  (void)unused;
  core_config_t c;
  char err[160];
  core_config_defaults(&c);
  slo_t slo[INFS_CLASS_COUNT];
  slo_defaults(slo);
  assert_memory_equal(c.slo, slo, sizeof slo); /* one set of defaults */
  assert_int_equal(
      slo_parse_weights("batch=0.5,agent=3", c.latency_weight, err, sizeof err),
      0);
  assert_float_equal(c.latency_weight[INFS_CLASS_BATCH], 0.5, 1e-12);
  assert_float_equal(c.latency_weight[INFS_CLASS_AGENT], 3, 1e-12);
  assert_float_equal(c.latency_weight[INFS_CLASS_INTERACTIVE], 2, 1e-12);
  static const char *bad_w[] = {"batch=-1",        "batch=", "x=1",
                                "batch",           "",       "agent=nan",
                                "batch=1,,agent=2"};
  for (size_t i = 0; i < sizeof bad_w / sizeof *bad_w; i++)
    assert_int_equal(
        slo_parse_weights(bad_w[i], c.latency_weight, err, sizeof err),
        INFS_ECONFIG);
  assert_float_equal(c.latency_weight[INFS_CLASS_BATCH], 0.5, 1e-12);
}

/* --- disaggregation: which worker prefills, which decodes --- */

enum { SPLIT_TPU, SPLIT_GPU };

/* A prefill-role TPU and a decode-role GPU, with the links of spec (NULL:
 * the defaults, 50 GB/s without overlap). */
static void pool_split(pool_t *p, const char *policy, const char *links) {
  pool_config(p, policy);
  if (links) {
    char err[128];
    assert_int_equal(link_table_parse(links, &p->links, err, sizeof err), 0);
    p->cfg.links = p->links;
  }
  pool_start(p);
  pool_add_as(p, "tpu-p", tpu_v6e(), 640, "m", INFS_ROLE_PREFILL);
  pool_add_as(p, "gpu-d", gpu_h100(), 512, "m", INFS_ROLE_DECODE);
}

/* An agent turn of 16,000 uncached tokens and 200 output tokens. */
static const req_spec_t long_turn = {
    .cls = INFS_CLASS_AGENT, .prompt = 16000, .max_tokens = 200};

/* The GPU would prefill 16,000 tokens itself in about 1.6 s; the TPU does
 * it in about 0.9 s at a lower price, and the 2.6 GB of its 8-bit KV cross
 * a 50 GB/s link in 52 ms, a gap of 70 ms before the second token that
 * 199 tokens of 17 ms carry well inside the agent's 40 ms TPOT. The split
 * is both faster and cheaper: balanced prefills on the TPU. */
static void test_long_cold_prompt_prefills_on_tpu(void **unused) {
  (void)unused;
  pool_t p;
  pool_split(&p, "balanced", NULL);
  infs_phase_t phase = INFS_PHASE_FULL;
  assert_int_equal(submit_phase(&p, 0, &long_turn, NULL, &phase), SPLIT_TPU);
  assert_int_equal(phase, INFS_PHASE_PREFILL);
  assert_int_equal(core_stats(p.core)->split, 1);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MET), 1);
  pool_free(&p);
}

/* 500 tokens: below the 1,000 worth a second dispatch, so the decode
 * worker prefills them itself, whatever the policy. */
static void test_short_prompt_stays_whole(void **unused) {
  (void)unused;
  const char *policies[] = {"balanced", "least_loaded", "round_robin"};
  for (int k = 0; k < 3; k++) {
    pool_t p;
    pool_split(&p, policies[k], NULL);
    req_spec_t r = long_turn;
    r.prompt = 500;
    for (int i = 0; i < 3; i++) {
      infs_phase_t phase = INFS_PHASE_PREFILL;
      /* Never on the prefill-role TPU, which cannot finish a request. */
      assert_int_equal(submit_phase(&p, 0, &r, NULL, &phase), SPLIT_GPU);
      assert_int_equal(phase, INFS_PHASE_FULL);
    }
    assert_int_equal(core_stats(p.core)->split, 0);
    pool_free(&p);
  }
}

/* The GPU holds 12,000 of the 16,000 tokens (three quarters, past the half
 * that makes a remote prefill worth it): it prefills the other 4,000
 * itself. */
static void test_decode_worker_with_prefix_prefills_locally(void **unused) {
  (void)unused;
  const char *policies[] = {"balanced", "least_loaded"};
  for (int k = 0; k < 2; k++) {
    pool_t p;
    pool_split(&p, policies[k], NULL);
    static uint64_t blocks[250];
    chain(7, blocks, 250);
    beat_cache(&p, SPLIT_GPU, 0, blocks, 187); /* 11,968 tokens */
    req_spec_t r = long_turn;
    r.blocks = blocks;
    r.n_blocks = 250;
    infs_phase_t phase = INFS_PHASE_PREFILL;
    assert_int_equal(submit_phase(&p, 0, &r, NULL, &phase), SPLIT_GPU);
    assert_int_equal(phase, INFS_PHASE_FULL);
    /* Cold again, the same turn splits. */
    beat_cache(&p, SPLIT_GPU, 0, NULL, 0);
    assert_int_equal(submit_phase(&p, 0, &r, NULL, &phase), SPLIT_TPU);
    assert_int_equal(phase, INFS_PHASE_PREFILL);
    pool_free(&p);
  }
}

/* At 0.5 GB/s the 2.6 GB take 5.2 s, all of it between the first token and
 * the second: 199 tokens average 43 ms, past the agent's 40. The GPU alone
 * meets both targets, so balanced runs the turn whole. The baselines do
 * not price the link and split anyway. */
static void test_slow_link_loses_to_one_worker(void **unused) {
  (void)unused;
  pool_t p;
  pool_split(&p, "balanced", "tpu>gpu=0.5");
  infs_phase_t phase = INFS_PHASE_PREFILL;
  assert_int_equal(submit_phase(&p, 0, &long_turn, NULL, &phase), SPLIT_GPU);
  assert_int_equal(phase, INFS_PHASE_FULL);
  assert_int_equal(outcome(&p, CORE_OUTCOME_SLO_MET), 1);
  pool_free(&p);

  pool_split(&p, "least_loaded", "tpu>gpu=0.5");
  assert_int_equal(submit_phase(&p, 0, &long_turn, NULL, &phase), SPLIT_TPU);
  assert_int_equal(phase, INFS_PHASE_PREFILL);
  pool_free(&p);
}

/* Without roles a pool never splits: the same turn on a TPU and a GPU that
 * are both `both` runs whole. */
static void test_no_roles_no_split(void **unused) {
  (void)unused;
  pool_t p;
  pool_init(&p, "balanced");
  pool_add(&p, "tpu-0", tpu_v6e(), 640);
  pool_add(&p, "gpu-0", gpu_h100(), 512);
  infs_phase_t phase = INFS_PHASE_PREFILL;
  assert_true(submit_phase(&p, 0, &long_turn, NULL, &phase) >= 0);
  assert_int_equal(phase, INFS_PHASE_FULL);
  assert_int_equal(core_stats(p.core)->split, 0);
  pool_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tight_ttft_goes_to_sram),
      cmocka_unit_test(test_batch_goes_to_cheapest),
      cmocka_unit_test(test_latency_weight),
      cmocka_unit_test(test_spares_short_streams),
      cmocka_unit_test(test_idle_capacity_is_cheap),
      cmocka_unit_test(test_request_slo_override),
      cmocka_unit_test(test_none_meets_slo_takes_fastest),
      cmocka_unit_test(test_none_meets_slo_keeps_tpot),
      cmocka_unit_test(test_context_limit_every_policy),
      cmocka_unit_test(test_model_is_a_hard_constraint),
      cmocka_unit_test(test_cache_hit_until_overloaded),
      cmocka_unit_test(test_cache_spill_to_next_best_match),
      cmocka_unit_test(test_cache_match_threshold),
      cmocka_unit_test(test_kv_cost_formula),
      cmocka_unit_test(test_kv_cost_temperature),
      cmocka_unit_test(test_kv_cost_request_weight),
      cmocka_unit_test(test_weighted_score_formula),
      cmocka_unit_test(test_weighted_score_ties_drawn),
      cmocka_unit_test(test_cache_index_follows_heartbeats),
      cmocka_unit_test(test_prefix_index_match),
      cmocka_unit_test(test_prefix_index_against_model),
      cmocka_unit_test(test_lost_worker_leaves_the_index),
      cmocka_unit_test(test_burst_spreads_balanced),
      cmocka_unit_test(test_burst_spreads_cache_affinity),
      cmocka_unit_test(test_session_affinity_cache_affinity),
      cmocka_unit_test(test_session_affinity_balanced),
      cmocka_unit_test(test_balanced_defers_batch),
      cmocka_unit_test(test_deferral_runs_out_of_patience),
      cmocka_unit_test(test_heartbeats_retry_deferred_sparingly),
      cmocka_unit_test(test_rejections_have_reasons),
      cmocka_unit_test(test_interactive_served_first),
      cmocka_unit_test(test_decisions_explain_themselves),
      cmocka_unit_test(test_outcome_counters_per_policy),
      cmocka_unit_test(test_config_setters),
      cmocka_unit_test(test_long_cold_prompt_prefills_on_tpu),
      cmocka_unit_test(test_short_prompt_stays_whole),
      cmocka_unit_test(test_decode_worker_with_prefix_prefills_locally),
      cmocka_unit_test(test_slow_link_loses_to_one_worker),
      cmocka_unit_test(test_no_roles_no_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
