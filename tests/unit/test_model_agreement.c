/* One model, used twice: the core's predictor and the engine call the same
 * step-time functions, so what the predictor says a request will see on a
 * worker is what the engine then does. A sweep of prompt length, batch and
 * context on each shipped profile: a worker is loaded with B requests of C
 * context tokens that are all decoding, then a new request arrives halfway
 * through a step; the predictor, given the engine's load as a heartbeat
 * reports it, is held against the engine's TTFT and TPOT for it.
 *
 * Tolerance: 5% of the engine's figure, plus, for TTFT, half a decode step.
 * The predictor knows neither where in a step the request arrives (it
 * takes half a step, and the test arrives at half a step: the rest is
 * rounding) nor the other sequences' exact contexts (it takes the KV in use,
 * whole blocks, for the context every step reads, and for the request's own
 * decode its mean context, prompt + max_tokens / 2), and the decoding
 * sequences' contexts grow while the request runs. Those errors are below
 * 1% at these sizes; 5% leaves room for them without letting a second
 * weight read or a missing chunk through (either is 10% or more of a step
 * here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "engine.h"
#include "step.h"
#include "predictor.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#ifndef INFSCHED_SOURCE_DIR
#error "INFSCHED_SOURCE_DIR must name the source tree"
#endif

#define TOLERANCE 0.05
#define OTHERS_OUTPUT 600 /* the loaded batch's outputs: it outlasts the
                             new request */
#define NEW_ID 1000000

typedef struct outcome {
  double ttft_ms;
  double tpot_ms;
} outcome_t;

/* Runs e until id's first token (and, with done, until its last). */
static void run_for(engine_t *e, uint64_t id, infs_time_t submitted,
                    uint32_t max_tokens, outcome_t *o) {
  infs_time_t first = 0, last = 0, t;
  while ((t = engine_next_event(e)) != INFS_TIME_NEVER && !last) {
    engine_advance(e, t);
    size_t n;
    const engine_event_t *ev = engine_events(e, &n);
    for (size_t i = 0; i < n; i++) {
      if (ev[i].id != id)
        continue;
      if (ev[i].kind == ENGINE_EV_FIRST_TOKEN)
        first = ev[i].at;
      if (ev[i].kind == ENGINE_EV_DONE)
        last = ev[i].at;
      assert_true(ev[i].kind != ENGINE_EV_FAILED);
    }
    engine_events_clear(e);
  }
  assert_true(first && last);
  o->ttft_ms = (double)(first - submitted) / 1e3;
  o->tpot_ms = (double)(last - first) / 1e3 / (max_tokens - 1);
}

/* Loads an engine with b requests of ctx prompt tokens (TPOT target
 * tpot_ms, 0 for none) until all decode; returns the time halfway through
 * the next step. */
static infs_time_t load_engine(engine_t *e, uint32_t b, uint32_t ctx,
                               uint32_t tpot_ms) {
  for (uint32_t i = 0; i < b; i++) {
    engine_request_t r = {.id = i,
                          .prompt_tokens = ctx,
                          .max_tokens = OTHERS_OUTPUT,
                          .tpot_target_ms = tpot_ms};
    assert_int_equal(engine_submit(e, 0, &r), 0);
  }
  infs_time_t t = 0;
  engine_load_t l;
  for (;;) {
    engine_load(e, t, &l);
    if (l.queued == 0 && l.prefill_backlog_tokens == 0)
      break;
    t = engine_next_event(e);
    assert_true(t != INFS_TIME_NEVER);
    engine_advance(e, t);
    engine_events_clear(e);
  }
  infs_time_t next = engine_next_event(e);
  if (next == INFS_TIME_NEVER)
    return t + 1000000; /* idle: arrive any time */
  /* Step boundaries so far: t starts the step ending at next. */
  return t + (next - t) / 2;
}

/* With slo, the profile caps prefill chunks (slo_aware_prefill) and the
 * loaded batch's TPOT target is twice its decode-only step, rounded up to
 * whole ms: tight enough to cut most chunks. */
static void check_profile(const infs_profile_t *shipped, bool slo) {
  infs_profile_t copy = *shipped;
  copy.slo_aware_prefill = slo;
  const infs_profile_t *p = &copy;
  static const uint32_t prompts[] = {100, 1000, 4000, 16000};
  static const uint32_t batches[] = {0, 1, 8, 32, 128};
  static const uint32_t contexts[] = {500, 2000};
  const uint32_t G = 64;
  double worst_ttft = 0, worst_tpot = 0;
  for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++)
    for (size_t ci = 0; ci < sizeof contexts / sizeof *contexts; ci++)
      for (size_t pi = 0; pi < sizeof prompts / sizeof *prompts; pi++) {
        uint32_t b = batches[bi], ctx = contexts[ci], P = prompts[pi];
        if (b > p->max_batch - 1 || P + G > p->max_context ||
            (uint64_t)b * (ctx + OTHERS_OUTPUT) + P + G >
                (uint64_t)p->kv_tokens * 9 / 10)
          continue;
        uint32_t cap = 0;
        if (slo && b)
          cap = (uint32_t)ceil(2 * step_decode_ms(p, b, (uint64_t)b * ctx));
        engine_t *e = engine_new(p, 0);
        assert_non_null(e);
        infs_time_t at = load_engine(e, b, ctx, cap);

        engine_load_t l;
        engine_load(e, at, &l);
        core_load_t heartbeat = {
            .queued = l.queued,
            .running = l.running,
            .kv_used = l.kv_used,
            .kv_total = l.kv_total,
            .prefill_backlog_tokens = l.prefill_backlog_tokens,
        };
        predictor_worker_t w = {
            .profile = p,
            .load = &heartbeat,
            .outstanding = b,
            .remaining_tokens =
                (uint64_t)b * OTHERS_OUTPUT - (l.generated_tokens),
            .tpot_cap_ms = cap,
        };
        predictor_request_t r = {.prompt_tokens = P, .max_tokens = G};
        prediction_t want;
        predictor_estimate(&w, &r, 0.1, &want);

        engine_request_t er = {
            .id = NEW_ID, .prompt_tokens = P, .max_tokens = G};
        assert_int_equal(engine_submit(e, at, &er), 0);
        outcome_t got;
        run_for(e, NEW_ID, at, G, &got);
        engine_destroy(&e);

        double step = b ? step_decode_ms(p, b, l.kv_used) : 0;
        double ttft_err = fabs(want.ttft_ms - got.ttft_ms);
        double tpot_err = fabs(want.tpot_ms - got.tpot_ms);
        if (ttft_err > TOLERANCE * got.ttft_ms + step / 2 ||
            tpot_err > TOLERANCE * got.tpot_ms)
          fail_msg("%s: prompt %u, batch %u of %u tokens: predicted TTFT "
                   "%.2f ms, TPOT %.3f ms; the engine %.2f, %.3f",
                   p->name, P, b, ctx, want.ttft_ms, want.tpot_ms,
                   got.ttft_ms, got.tpot_ms);
        double rt = ttft_err / got.ttft_ms, rp = tpot_err / got.tpot_ms;
        worst_ttft = rt > worst_ttft ? rt : worst_ttft;
        worst_tpot = rp > worst_tpot ? rp : worst_tpot;
      }
  printf("# %s%s: worst TTFT error %.2f%%, TPOT %.2f%%\n", p->name,
         slo ? " (SLO-aware prefill)" : "", 100 * worst_ttft,
         100 * worst_tpot);
}

/* The prefill of a PREFILL request on an idle engine, in us. */
static infs_time_t prefill_alone(const infs_profile_t *p, uint32_t prompt) {
  engine_t *e = engine_new(p, 0);
  assert_non_null(e);
  engine_request_t r = {.id = NEW_ID,
                        .prompt_tokens = prompt,
                        .max_tokens = 2,
                        .phase = INFS_PHASE_PREFILL};
  assert_int_equal(engine_submit(e, 0, &r), 0);
  infs_time_t t, held = 0;
  while (!held && (t = engine_next_event(e)) != INFS_TIME_NEVER) {
    engine_advance(e, t);
    size_t n;
    const engine_event_t *ev = engine_events(e, &n);
    for (size_t i = 0; i < n; i++)
      if (ev[i].kind == ENGINE_EV_PREFILLED)
        held = ev[i].at;
    engine_events_clear(e);
  }
  engine_destroy(&e);
  assert_true(held > 0);
  return held;
}

/* A split on a pair of profiles: prefilled on an idle P, the KV moved over
 * link, decoded on a D loaded as above. The handoff (the prefill's end to
 * D's first token) is held to the same tolerance as a TTFT, the mean TPOT
 * over the whole output to 5% plus the handoff's share of half a step: the
 * KV arrives anywhere in one of D's steps, where the predictor takes half a
 * step. */
static void check_split(const infs_profile_t *pp, const infs_profile_t *dp,
                        const infs_link_t *link) {
  static const uint32_t prompts[] = {1000, 4000, 16000};
  static const uint32_t batches[] = {0, 8, 32};
  const uint32_t G = 64, ctx = 500;
  double worst = 0;
  for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++)
    for (size_t pi = 0; pi < sizeof prompts / sizeof *prompts; pi++) {
      uint32_t b = batches[bi], P = prompts[pi];
      if (P + G > pp->max_context || P + G > dp->max_context ||
          b > dp->max_batch - 1 ||
          (uint64_t)b * (ctx + OTHERS_OUTPUT) + P + G >
              (uint64_t)dp->kv_tokens * 9 / 10)
        continue;
      infs_time_t prefill_us = prefill_alone(pp, P);
      engine_t *d = engine_new(dp, 0);
      assert_non_null(d);
      infs_time_t at = load_engine(d, b, ctx, 0);
      engine_load_t l;
      engine_load(d, at, &l);
      core_load_t p_beat = {0}, d_beat = {
          .running = l.running,
          .kv_used = l.kv_used,
          .kv_total = l.kv_total,
      };
      predictor_worker_t wp = {.profile = pp, .load = &p_beat};
      predictor_worker_t wd = {
          .profile = dp,
          .load = &d_beat,
          .outstanding = b,
          .remaining_tokens = (uint64_t)b * OTHERS_OUTPUT - l.generated_tokens,
      };
      predictor_request_t r = {.prompt_tokens = P, .max_tokens = G};
      pair_prediction_t want;
      predictor_estimate_pair(&wp, &wd, &r, 0, link, 0.1, &want);

      double transfer_us = kv_transfer_visible_us(
          link, kv_transfer_bytes(pp, P), (double)prefill_us);
      engine_request_t er = {.id = NEW_ID,
                             .prompt_tokens = P + 1,
                             .max_tokens = G - 1,
                             .phase = INFS_PHASE_DECODE,
                             .kv_ready = at + (infs_time_t)llround(transfer_us)};
      assert_int_equal(engine_submit(d, at, &er), 0);
      outcome_t got;
      run_for(d, NEW_ID, at, G - 1, &got);
      engine_destroy(&d);
      double handoff = got.ttft_ms;
      double tpot = (handoff + (G - 2) * got.tpot_ms) / (G - 1);

      double step = b ? step_decode_ms(dp, b, l.kv_used) : 0;
      double e_ttft = fabs(want.ttft_ms - (double)prefill_us / 1e3);
      double e_hand = fabs(want.handoff_ms - handoff);
      double e_tpot = fabs(want.tpot_ms - tpot);
      if (e_ttft > TOLERANCE * (double)prefill_us / 1e3 ||
          e_hand > TOLERANCE * handoff + step / 2 ||
          e_tpot > TOLERANCE * tpot + step / 2 / (G - 1))
        fail_msg("%s -> %s%s: prompt %u, D batch %u: predicted TTFT %.2f, "
                 "handoff %.2f, TPOT %.3f ms; the engines %.2f, %.2f, %.3f",
                 pp->name, dp->name, link->overlap ? " (overlap)" : "", P, b,
                 want.ttft_ms, want.handoff_ms, want.tpot_ms,
                 (double)prefill_us / 1e3, handoff, tpot);
      double e = e_hand / handoff;
      worst = e > worst ? e : worst;
    }
  printf("# split %s -> %s%s: worst handoff error %.2f%%\n", pp->name,
         dp->name, link->overlap ? " (overlap)" : "", 100 * worst);
}

/* The shipped profiles. */
static profile_set_t *shipped(void) {
  profile_set_t *set = NULL;
  char err[512];
  if (profile_set_load(INFSCHED_SOURCE_DIR "/configs/profiles.yaml", &set,
                       err, sizeof err))
    fail_msg("%s", err);
  return set;
}

static void test_split_matches_engines(void **state) {
  (void)state;
  profile_set_t *set = shipped();
  infs_link_t links[] = {{LINK_DEFAULT_GBPS, LINK_DEFAULT_LATENCY_US, false},
                         {12.5, 20, true}};
  size_t n = profile_set_count(set);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      for (size_t k = 0; k < 2; k++)
        if (i != j)
          check_split(profile_set_at(set, i), profile_set_at(set, j),
                      &links[k]);
  profile_set_destroy(&set);
}

static void test_predictor_matches_engine(void **state) {
  (void)state;
  profile_set_t *set = shipped();
  for (size_t i = 0; i < profile_set_count(set); i++) {
    check_profile(profile_set_at(set, i), false);
    check_profile(profile_set_at(set, i), true);
  }
  profile_set_destroy(&set);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_predictor_matches_engine),
      cmocka_unit_test(test_split_matches_engines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
