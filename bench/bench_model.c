/* The serving model against the public measurements its profiles rest on
 * (REFERENCE-NUMBERS.md), each with the ratio model / measured, and the
 * shape of Sarathi-Serve's trade-off: time per output token against the
 * step's token budget, with and without the SLO-aware cap. Everything runs
 * the step-time model and the engine (model/) in virtual time. */
#include "infsched/profile.h"
#include "cli.h"
#include "xalloc.h"
#include "engine.h"
#include "step.h"
#include "transfer.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef INFSCHED_SOURCE_DIR
#define INFSCHED_SOURCE_DIR "."
#endif

static void usage(FILE *f) {
  fprintf(f,
          "Usage: bench_model [OPTION]...\n"
          "Holds the serving model (model/step.h, model/engine.h) against "
          "the public\n"
          "measurements the profiles cite, with the ratio model / "
          "measured, and prints\n"
          "TPOT, TTFT and throughput of a loaded GPU worker against its "
          "token budget\n"
          "(Sarathi-Serve's trade-off), with and without SLO-aware "
          "prefill. Virtual time.\n"
          "\n"
          "  --profiles FILE   profiles file (default %s/configs/"
          "profiles.yaml)\n"
          "  --help            this text\n",
          INFSCHED_SOURCE_DIR);
}

/* What a closed loop of requests saw after its warm-up. */
typedef struct loop_result {
  double ttft_ms;      /* mean */
  double tpot_ms;      /* mean over requests of (last - first) / (n - 1) */
  double gap_p99_ms;   /* 99th percentile of the gaps between tokens */
  double out_tok_s;    /* output tokens per second */
  double stream_tok_s; /* 1000 / tpot_ms */
} loop_result_t;

typedef struct req_times {
  infs_time_t submitted, first, last;
} req_times_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* `streams` requests of `prompt` tokens and `output` tokens kept open at
 * once (each replaced when it ends), tpot_ms their TPOT target (0: none);
 * measured over `seconds` after as long again of warm-up. */
static void closed_loop(const infs_profile_t *p, uint32_t streams,
                        uint32_t prompt, uint32_t output, uint32_t tpot_ms,
                        double seconds, loop_result_t *out) {
  engine_t *e = engine_new(p, 0);
  if (!e) {
    fprintf(stderr, "bench_model: profile %s does not validate\n", p->name);
    exit(1);
  }
  req_times_t *t = NULL;
  size_t n_req = 0;
  double *gaps = NULL;
  size_t n_gaps = 0, gaps_cap = 0;
  infs_time_t start = (infs_time_t)(seconds * 1e6);
  infs_time_t stop = 2 * start;
  for (uint32_t i = 0; i < streams; i++) {
    t = xrealloc(t, (n_req + 1) * sizeof *t);
    t[n_req] = (req_times_t){0, 0, 0};
    engine_request_t r = {.id = n_req++,
                          .prompt_tokens = prompt,
                          .max_tokens = output,
                          .tpot_target_ms = tpot_ms};
    engine_submit(e, 0, &r);
  }
  double ttft_sum = 0, tpot_sum = 0;
  size_t n_done = 0;
  uint64_t tokens = 0;
  infs_time_t now;
  while ((now = engine_next_event(e)) != INFS_TIME_NEVER && now <= stop) {
    engine_advance(e, now);
    size_t n;
    const engine_event_t *ev = engine_events(e, &n);
    size_t more = 0;
    for (size_t i = 0; i < n; i++) {
      req_times_t *q = &t[ev[i].id];
      bool measured = q->submitted >= start;
      switch (ev[i].kind) {
      case ENGINE_EV_FIRST_TOKEN:
        q->first = q->last = ev[i].at;
        break;
      case ENGINE_EV_TOKENS:
        if (measured) {
          if (n_gaps == gaps_cap) {
            gaps_cap = gaps_cap ? 2 * gaps_cap : 4096;
            gaps = xrealloc(gaps, gaps_cap * sizeof *gaps);
          }
          gaps[n_gaps++] = (double)(ev[i].at - q->last) / 1e3;
        }
        q->last = ev[i].at;
        break;
      case ENGINE_EV_DONE:
        if (ev[i].at > start)
          tokens += ev[i].generated;
        if (measured) {
          ttft_sum += (double)(q->first - q->submitted) / 1e3;
          tpot_sum += (double)(q->last - q->first) / 1e3 / (output - 1);
          n_done++;
        }
        more++;
        break;
      case ENGINE_EV_FAILED:
      case ENGINE_EV_PREFILLED:
        break;
      }
    }
    engine_events_clear(e);
    for (size_t i = 0; i < more; i++) {
      t = xrealloc(t, (n_req + 1) * sizeof *t);
      t[n_req] = (req_times_t){now, 0, 0};
      engine_request_t r = {.id = n_req++,
                            .prompt_tokens = prompt,
                            .max_tokens = output,
                            .tpot_target_ms = tpot_ms};
      engine_submit(e, now, &r);
    }
  }
  qsort(gaps, n_gaps, sizeof *gaps, cmp_double);
  out->ttft_ms = n_done ? ttft_sum / n_done : NAN;
  out->tpot_ms = n_done ? tpot_sum / n_done : NAN;
  out->gap_p99_ms = n_gaps ? gaps[(size_t)(0.99 * (n_gaps - 1))] : NAN;
  out->out_tok_s = (double)tokens / seconds;
  out->stream_tok_s = 1000 / out->tpot_ms;
  free(gaps);
  free(t);
  engine_destroy(&e);
}

/* TTFT of one request alone on an idle worker, in ms. */
static double ttft_alone(const infs_profile_t *p, uint32_t prompt) {
  engine_t *e = engine_new(p, 0);
  engine_request_t r = {.id = 1, .prompt_tokens = prompt, .max_tokens = 1};
  engine_submit(e, 0, &r);
  double ms = NAN;
  infs_time_t now;
  while ((now = engine_next_event(e)) != INFS_TIME_NEVER) {
    engine_advance(e, now);
    size_t n;
    const engine_event_t *ev = engine_events(e, &n);
    for (size_t i = 0; i < n; i++)
      if (ev[i].kind == ENGINE_EV_FIRST_TOKEN)
        ms = (double)ev[i].at / 1e3;
    engine_events_clear(e);
  }
  engine_destroy(&e);
  return ms;
}

static void row(const char *what, const char *source, double measured,
                double model, const char *unit) {
  printf("%-52s %-7s %9.1f %9.1f %-6s %6.2f\n", what, source, measured, model,
         unit, model / measured);
}

static const infs_profile_t *need(const profile_set_t *set, const char *name) {
  const infs_profile_t *p = profile_set_find(set, name);
  if (!p) {
    fprintf(stderr, "bench_model: no profile '%s'\n", name);
    exit(1);
  }
  return p;
}

static void validation(const profile_set_t *set) {
  const infs_profile_t *gpu = need(set, "gpu-h100");
  const infs_profile_t *sram = need(set, "sram-wse3");
  const infs_profile_t *tpu = need(set, "tpu-v6e");

  printf("## The model against public measurements (ratio = model / "
         "measured)\n\n");
  printf("%-52s %-7s %9s %9s %-6s %6s\n", "measurement", "source",
         "measured", "model", "unit", "ratio");
  /* Oracle Cloud, Llama 3.3 70B on 4 x H100, 480-token prompts: per-stream
   * decode. The model's decode step at ~600 tokens of context a stream
   * (480 in, ~240 out), and a closed loop of the engine that also
   * prefills each stream's next prompt as it goes. */
  static const struct {
    uint32_t streams;
    double tok_s;
  } oracle[] = {{1, 58.6}, {32, 44.3}, {128, 25.6}, {256, 15.3}};
  char what[96];
  for (size_t i = 0; i < sizeof oracle / sizeof *oracle; i++) {
    uint32_t b = oracle[i].streams;
    snprintf(what, sizeof what, "gpu-h100 decode step, %u stream%s", b,
             b > 1 ? "s" : "");
    row(what, "[S]", oracle[i].tok_s,
        1000 / step_decode_ms(gpu, b, (uint64_t)b * 600), "tok/s");
  }
  for (size_t i = 0; i < sizeof oracle / sizeof *oracle; i++) {
    uint32_t b = oracle[i].streams;
    loop_result_t r;
    closed_loop(gpu, b, 480, 240, 0, 60, &r);
    snprintf(what, sizeof what, "gpu-h100 engine, %u stream%s of 480 in / 240 "
             "out", b, b > 1 ? "s" : "");
    row(what, "[S]", oracle[i].tok_s, r.stream_tok_s, "tok/s");
    if (b == 128) {
      snprintf(what, sizeof what, "gpu-h100 engine, 128 streams: TTFT");
      row(what, "[S]", 1290, r.ttft_ms, "ms");
    }
  }
  row("gpu-h100 TTFT, 480-token prompt, 1 stream", "[S]", 50,
      ttft_alone(gpu, 480), "ms");
  /* Cerebras, Llama 3.1 70B, one stream. */
  row("sram-wse3 decode step, 1 stream", "[S]", 2148,
      1000 / step_decode_ms(sram, 1, 1000), "tok/s");
  /* TPU v6e: no serving measurement in REFERENCE-NUMBERS.md; the chip's
   * own figures bound the model (ratio = achieved share). */
  double bound_ms = tpu->weights_gb / tpu->mem_bw_gbs * 1e3;
  row("tpu-v6e weight read at full HBM bandwidth (bound)", "[S]",
      1000 / bound_ms, 1000 / step_decode_ms(tpu, 1, 1000), "tok/s");
  double peak_tps = tpu->peak_tflops * 1e12 / (2 * tpu->params_b * 1e9);
  row("tpu-v6e prefill at peak bf16 compute (bound)", "[S]", peak_tps,
      1000 * 1024 / step_prefill_ms(tpu, 1024, 0, 0, 0, 0, NULL), "tok/s");
  /* Mooncake's Transfer Engine benchmark moves 40 GB (binary), "the KV of
   * 128K tokens of LLaMA3-70B" (kvcache-ai/Mooncake,
   * doc/en/transfer-engine.md): the bytes a split moves per token. */
  row("gpu-h100 KV of 128K tokens (Mooncake's payload)", "[S]", 40,
      (double)kv_transfer_bytes(gpu, 131072) / (1ull << 30), "GiB");
  printf("\n");
}

/* Sarathi-Serve's trade-off on a loaded GPU worker: a larger budget
 * prefills faster and stalls the running streams longer. */
static void sarathi(const profile_set_t *set) {
  infs_profile_t p = *need(set, "gpu-h100");
  const uint32_t streams = 64, prompt = 2048, output = 128;
  printf("## TPOT against the token budget: gpu-h100, %u streams of %u in "
         "/ %u out\n\n",
         streams, prompt, output);
  printf("%-8s %-10s %9s %9s %10s %10s\n", "budget", "slo cap", "TPOT ms",
         "p99 gap", "TTFT ms", "out tok/s");
  static const uint32_t budgets[] = {256, 512, 1024, 2048, 4096, 8192};
  for (size_t i = 0; i < sizeof budgets / sizeof *budgets; i++) {
    p.max_num_batched_tokens = budgets[i];
    p.slo_aware_prefill = false;
    loop_result_t r;
    closed_loop(&p, streams, prompt, output, 0, 120, &r);
    printf("%-8u %-10s %9.1f %9.1f %10.1f %10.0f\n", budgets[i], "-",
           r.tpot_ms, r.gap_p99_ms, r.ttft_ms, r.out_tok_s);
  }
  static const uint32_t caps[] = {50, 40, 30};
  for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
    p.max_num_batched_tokens = 8192;
    p.slo_aware_prefill = true;
    loop_result_t r;
    closed_loop(&p, streams, prompt, output, caps[i], 120, &r);
    char cap[16];
    snprintf(cap, sizeof cap, "%u ms", caps[i]);
    printf("%-8u %-10s %9.1f %9.1f %10.1f %10.0f\n", 8192u, cap, r.tpot_ms,
           r.gap_p99_ms, r.ttft_ms, r.out_tok_s);
  }
}

static int parse_one(void *ctx, int c, const char *arg) {
  if (c != 'f')
    return CLI_NOT_MINE;
  *(const char **)ctx = arg;
  return 0;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"profiles", required_argument, NULL, 'f'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *path = INFSCHED_SOURCE_DIR "/configs/profiles.yaml";
  cli_init("bench_model");
  if (cli_parse_args(argc, argv, longopts, usage, parse_one, &path))
    return CLI_EXIT_USAGE;
  profile_set_t *set = NULL;
  char err[512];
  if (profile_set_load(path, &set, err, sizeof err)) {
    fprintf(stderr, "bench_model: %s\n", err);
    return 1;
  }
  validation(set);
  sarathi(set);
  profile_set_destroy(&set);
  return 0;
}
