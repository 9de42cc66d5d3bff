/* What the accelerator profiles add up to: runs the engine in virtual time
 * on each profile and prints TTFT, single-stream speed, saturated throughput
 * and cost per million output tokens. */
#include "bench.h"
#include "infsched/errors.h"
#include "infsched/profile.h"
#include "cli.h"
#include "engine.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef INFSCHED_SOURCE_DIR
#define INFSCHED_SOURCE_DIR "."
#endif

typedef struct options {
  const char *profiles;
  const char *only; /* one profile's name, or NULL for all */
  double kwh_price;
  uint32_t prompt;
  uint32_t output;
  double duration_s;
  double warmup_s;
} options_t;

typedef struct result {
  double ttft_short_ms; /* < 0: prompt exceeds the context */
  double ttft_long_ms;
  double stream_tps;
  double batch;
  double sat_tps;
  double preempt_per_s; /* sequences sent back to the queue for KV */
  double usd_per_hour;  /* at the saturated duty cycle, energy included */
  double usd_per_mtok;
} result_t;

#define TTFT_SHORT 1500
#define TTFT_LONG 8000
#define STREAM_OUTPUT 256

static void usage(FILE *f) {
  fprintf(f,
          "Usage: bench_profiles [OPTION]...\n"
          "Runs the continuous-batching engine in virtual time on each "
          "profile and prints:\n"
          "  TTFT of one %d- and one %d-token prompt on an idle worker,\n"
          "  single-stream decode tokens/s (%d output tokens),\n"
          "  saturated throughput: a closed loop of 2 x max_batch requests "
          "(fresh\n"
          "  prompts, no cache hits) under the KV limit, in output "
          "tokens/s,\n"
          "  and USD per million output tokens at saturation (price per "
          "hour,\n"
          "  energy and per-token fees; prompt processing included).\n"
          "\n"
          "  --profiles FILE   profiles file (default %s/configs/"
          "profiles.yaml)\n"
          "  --profile NAME    only this profile\n"
          "  --kwh-price USD   energy price per kWh (default 0.10)\n"
          "  --prompt N        saturation prompt tokens (default 1500, the "
          "code trace's median)\n"
          "  --output N        saturation output tokens (default 256)\n"
          "  --duration S      measured virtual seconds (default 300)\n"
          "  --warmup S        virtual seconds before measuring (default "
          "30)\n"
          "  --help            this text\n",
          TTFT_SHORT, TTFT_LONG, STREAM_OUTPUT, INFSCHED_SOURCE_DIR);
}

/* Runs until the engine is idle; returns the time of the first token of id
 * and, through done_at, of its last. */
static infs_time_t run_alone(engine_t *e, uint64_t id, infs_time_t *done_at) {
  infs_time_t first = 0, t;
  while ((t = engine_next_event(e)) != INFS_TIME_NEVER) {
    engine_advance(e, t);
    size_t n;
    const engine_event_t *ev = engine_events(e, &n);
    for (size_t i = 0; i < n; i++) {
      if (ev[i].id != id)
        continue;
      if (ev[i].kind == ENGINE_EV_FIRST_TOKEN)
        first = ev[i].at;
      if (ev[i].kind == ENGINE_EV_DONE && done_at)
        *done_at = ev[i].at;
    }
    engine_events_clear(e);
  }
  return first;
}

static double ttft_ms(const infs_profile_t *p, uint32_t prompt) {
  if ((uint64_t)prompt + 1 > p->max_context)
    return -1;
  engine_t *e = engine_new(p, 0);
  engine_request_t r = {.id = 1, .prompt_tokens = prompt, .max_tokens = 1};
  engine_submit(e, 0, &r);
  double ms = (double)run_alone(e, 1, NULL) / 1e3;
  engine_destroy(&e);
  return ms;
}

static double stream_tps(const infs_profile_t *p) {
  engine_t *e = engine_new(p, 0);
  engine_request_t r = {.id = 1, .prompt_tokens = TTFT_SHORT, .max_tokens = STREAM_OUTPUT};
  infs_time_t done = 0;
  engine_submit(e, 0, &r);
  infs_time_t first = run_alone(e, 1, &done);
  engine_destroy(&e);
  return (STREAM_OUTPUT - 1) / ((double)(done - first) / 1e6);
}

/* A closed loop: every request that finishes is replaced at once, so the
 * queue never empties and the batch is as large as max_batch and KV allow. */
static void saturate(const infs_profile_t *p, const options_t *o,
                     result_t *res) {
  engine_t *e = engine_new(p, 0);
  uint32_t prompt = o->prompt, output = o->output;
  uint64_t next_id = 0;
  size_t open = 2 * (size_t)p->max_batch;

  if ((uint64_t)prompt + output > p->max_context) {
    prompt = p->max_context / 2;
    output = p->max_context - prompt;
    fprintf(stderr,
            "bench_profiles: %s: --prompt plus --output exceed max_context "
            "%u; saturating with %u + %u\n",
            p->name, p->max_context, prompt, output);
  }
  for (size_t i = 0; i < open; i++) {
    engine_request_t r = {.id = next_id++, .prompt_tokens = prompt, .max_tokens = output};
    engine_submit(e, 0, &r);
  }

  infs_time_t start = (infs_time_t)(o->warmup_s * 1e6);
  infs_time_t stop = start + (infs_time_t)(o->duration_s * 1e6);
  engine_load_t at_start = {0}, load;
  double batch_us = 0; /* integral of running sequences over time */
  infs_time_t t, prev = 0;
  int measuring = 0;

  while ((t = engine_next_event(e)) != INFS_TIME_NEVER && t <= stop) {
    if (!measuring && t >= start) {
      engine_load(e, start, &at_start);
      measuring = 1;
      prev = start;
    }
    if (measuring) {
      engine_load(e, t, &load);
      batch_us += (double)load.running * (double)(t - prev);
      prev = t;
    }
    engine_advance(e, t);
    size_t n;
    const engine_event_t *ev = engine_events(e, &n);
    for (size_t i = 0; i < n; i++) {
      if (ev[i].kind != ENGINE_EV_DONE)
        continue;
      engine_request_t r = {.id = next_id++, .prompt_tokens = prompt, .max_tokens = output};
      engine_submit(e, t, &r);
    }
    engine_events_clear(e);
  }
  engine_load(e, stop, &load);
  if (measuring)
    batch_us += (double)load.running * (double)(stop - prev);

  double secs = o->duration_s;
  double tokens = (double)(load.generated_tokens - at_start.generated_tokens);
  double busy = load.busy_s - at_start.busy_s;
  double kwh =
      (p->power_busy_w * busy + p->power_idle_w * (secs - busy)) / 3.6e6;
  /* Prompt tokens billed: every request admitted is charged its prompt. */
  double prompts = tokens / output * prompt;
  double usd = p->price_per_hour * secs / 3600 + kwh * o->kwh_price +
               p->usd_per_mtok_in * prompts / 1e6 +
               p->usd_per_mtok_out * tokens / 1e6;

  res->batch = batch_us / (secs * 1e6);
  res->sat_tps = tokens / secs;
  res->preempt_per_s = (double)(load.preemptions - at_start.preemptions) / secs;
  res->usd_per_hour = usd / secs * 3600;
  res->usd_per_mtok = tokens > 0 ? usd / (tokens / 1e6) : 0;
  engine_destroy(&e);
}

static void print_ms(double ms) {
  if (ms < 0)
    printf(" %10s", "-");
  else
    printf(" %10.1f", ms);
}

static int parse_one(void *ctx, int c, const char *arg) {
  options_t *o = ctx;
  int rc = 0;
  switch (c) {
  case 'f':
    o->profiles = arg;
    break;
  case 'p':
    o->only = arg;
    break;
  case 'k':
    rc = cli_double("--kwh-price", arg, 0, 100, &o->kwh_price);
    break;
  case 'i':
    rc = cli_u32("--prompt", arg, 1, 1u << 24, &o->prompt);
    break;
  case 'o':
    rc = cli_u32("--output", arg, 1, 1u << 24, &o->output);
    break;
  case 'd':
    rc = cli_double("--duration", arg, 1, 1e6, &o->duration_s);
    break;
  case 'w':
    rc = cli_double("--warmup", arg, 0, 1e6, &o->warmup_s);
    break;
  default:
    return CLI_NOT_MINE;
  }
  return rc;
}

static int parse_args(int argc, char **argv, options_t *o) {
  static const struct option longopts[] = {
      {"profiles", required_argument, NULL, 'f'},
      {"profile", required_argument, NULL, 'p'},
      {"kwh-price", required_argument, NULL, 'k'},
      {"prompt", required_argument, NULL, 'i'},
      {"output", required_argument, NULL, 'o'},
      {"duration", required_argument, NULL, 'd'},
      {"warmup", required_argument, NULL, 'w'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  return cli_parse_args(argc, argv, longopts, usage, parse_one, o);
}

int main(int argc, char **argv) {
  options_t o = {
      .profiles = INFSCHED_SOURCE_DIR "/configs/profiles.yaml",
      .kwh_price = 0.10,
      .prompt = 1500,
      .output = 256,
      .duration_s = 300,
      .warmup_s = 30,
  };
  profile_set_t *set = NULL;
  char err[512];

  cli_init("bench_profiles");
  if (parse_args(argc, argv, &o))
    return CLI_EXIT_USAGE;
  if (profile_set_load(o.profiles, &set, err, sizeof err)) {
    fprintf(stderr, "bench_profiles: %s\n", err);
    return 1;
  }
  if (o.only && !profile_set_find(set, o.only)) {
    fprintf(stderr, "bench_profiles: no profile '%s' in %s\n", o.only,
            o.profiles);
    profile_set_destroy(&set);
    return 1;
  }

  bench_print_command(argc, argv);
  printf("# %s; energy at %.2f USD/kWh; saturation: %u-token prompts, %u "
         "output tokens, %.0f s after %.0f s warm-up (virtual time)\n",
         o.profiles, o.kwh_price, o.prompt, o.output, o.duration_s, o.warmup_s);
  printf("%-12s %-5s %10s %10s %10s %8s %10s %8s %9s %9s\n", "profile", "class",
         "ttft_1.5k", "ttft_8k", "stream", "batch", "sat", "preempt", "usd/h",
         "usd/Mtok");
  printf("%-12s %-5s %10s %10s %10s %8s %10s %8s %9s %9s\n", "", "", "ms", "ms",
         "tok/s", "mean", "tok/s", "per s", "busy", "out");
  for (size_t i = 0; i < profile_set_count(set); i++) {
    const infs_profile_t *p = profile_set_at(set, i);
    if (o.only && strcmp(o.only, p->name) != 0)
      continue;
    result_t r = {0};
    r.ttft_short_ms = ttft_ms(p, TTFT_SHORT);
    r.ttft_long_ms = ttft_ms(p, TTFT_LONG);
    r.stream_tps = stream_tps(p);
    saturate(p, &o, &r);
    printf("%-12s %-5s", p->name, infs_worker_class_name(p->cls));
    print_ms(r.ttft_short_ms);
    print_ms(r.ttft_long_ms);
    printf(" %10.1f %8.1f %10.0f %8.2f %9.2f %9.3f\n", r.stream_tps, r.batch,
           r.sat_tps, r.preempt_per_s, r.usd_per_hour, r.usd_per_mtok);
  }
  profile_set_destroy(&set);
  return 0;
}
