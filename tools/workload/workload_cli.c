#include "workload_cli.h"

#include "report.h"

#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
  OPT_WORKLOAD = WORKLOAD_CLI_OPT_BASE,
  OPT_RATE,
  OPT_RATE_END,
  OPT_BURST,
  OPT_DURATION,
  OPT_SPEEDUP,
  OPT_COPIES,
  OPT_MAX_REQUESTS,
  OPT_SEED,
  OPT_CLASS_MIX,
  OPT_PROMPT_TOKENS,
  OPT_OUTPUT_TOKENS,
  OPT_BLOCK_SIZE,
  OPT_SHARED_PREFIX,
  OPT_SLO,
  OPT_SESSIONS,
  OPT_SESSION_RATE,
  OPT_TURNS,
  OPT_STEPS,
  OPT_THINK_TIME,
  OPT_TOOL_TIME,
  OPT_MAX_CONTEXT,
  OPT_SET,
  OPT_RECORD,
};

const struct option workload_cli_options[] = {
    {"workload", required_argument, NULL, OPT_WORKLOAD},
    {"rate", required_argument, NULL, OPT_RATE},
    {"rate-end", required_argument, NULL, OPT_RATE_END},
    {"burst", required_argument, NULL, OPT_BURST},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"speedup", required_argument, NULL, OPT_SPEEDUP},
    {"copies", required_argument, NULL, OPT_COPIES},
    {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"class-mix", required_argument, NULL, OPT_CLASS_MIX},
    {"prompt-tokens", required_argument, NULL, OPT_PROMPT_TOKENS},
    {"output-tokens", required_argument, NULL, OPT_OUTPUT_TOKENS},
    {"block-size", required_argument, NULL, OPT_BLOCK_SIZE},
    {"shared-prefix", required_argument, NULL, OPT_SHARED_PREFIX},
    {"slo", required_argument, NULL, OPT_SLO},
    {"sessions", required_argument, NULL, OPT_SESSIONS},
    {"session-rate", required_argument, NULL, OPT_SESSION_RATE},
    {"turns", required_argument, NULL, OPT_TURNS},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"think-time", required_argument, NULL, OPT_THINK_TIME},
    {"tool-time", required_argument, NULL, OPT_TOOL_TIME},
    {"max-context", required_argument, NULL, OPT_MAX_CONTEXT},
    {"set", required_argument, NULL, OPT_SET},
    {"record", required_argument, NULL, OPT_RECORD},
    {NULL, 0, NULL, 0},
};

size_t workload_cli_option_count(void) {
  return sizeof workload_cli_options / sizeof *workload_cli_options - 1;
}

void workload_cli_usage(FILE *out) {
  fputs(
      "Workload:\n"
      "  --workload SPEC       poisson, trace:FILE (an Azure CSV, or a Mooncake\n"
      "                        JSONL trace, told apart by content),\n"
      "                        mooncake:FILE, codex (agent sessions) or\n"
      "                        codex:FILE (a workload file, e.g.\n"
      "                        configs/workloads/codex.yaml) (poisson)\n"
      "  --rate R              poisson: requests per second (10)\n"
      "  --rate-end R          poisson: ramp linearly to R over the "
      "duration\n"
      "  --burst AT:DUR:X      poisson: X times the rate from AT for DUR "
      "seconds\n"
      "                        (repeatable; X below 1 for a lull)\n"
      "  --duration S          stop sending after S seconds (poisson and "
      "codex:\n"
      "                        60; trace: the whole file)\n"
      "  --speedup X           trace: replay X times faster (1)\n"
      "  --copies X            trace: overlay X time-shifted copies, each "
      "keeping\n"
      "                        the trace's gaps (X below 1 thins it) (1)\n"
      "  --max-requests N      stop after N requests\n"
      "  --seed N              random seed; same seed, same requests (1)\n"
      "  --class-mix LIST      e.g. interactive=0.6,agent=0.3,batch=0.1\n"
      "  --prompt-tokens DIST  poisson prompt sizes: N, or\n"
      "                        lognormal:MEDIAN:SIGMA[:MIN:MAX]\n"
      "                        (lognormal:1469:0.815:1:32768)\n"
      "  --output-tokens DIST  poisson output sizes "
      "(lognormal:13:1.239:1:4096)\n"
      "  --block-size N        tokens per prompt block hash (64)\n"
      "  --shared-prefix F     fraction of each prompt shared by all "
      "requests (0)\n"
      "  --slo LIST            targets by class, TTFT_MS[+MS_PER_1K]:TPOT_MS,\n"
      "                        the TTFT target growing by MS_PER_1K per 1,000\n"
      "                        uncached prompt tokens\n"
      "                        (interactive=450+250:40,agent=2000+250:40,\n"
      "                        batch=30000+250:200)\n"
      "  --record FILE         write the requests sent as a Mooncake trace,\n"
      "                        replayable with --workload mooncake:FILE\n"
      "\n"
      "Codex sessions (defaults: configs/workloads/codex.yaml; these override\n"
      "a workload file; sizes in tokens, times in ms, DIST as above):\n"
      "  --sessions N          sessions running at once, each replaced when "
      "it ends (8)\n"
      "  --session-rate R      extra one-off sessions arriving per second (0)\n"
      "  --turns DIST          user turns per session "
      "(lognormal:3.3:0.6:1:20)\n"
      "  --steps DIST          model calls per agent turn "
      "(lognormal:6.1:0.7:1:60)\n"
      "  --think-time DIST     ms between turns "
      "(lognormal:120000:1.0:5000:1800000)\n"
      "  --tool-time DIST      ms from an answer to the next step\n"
      "                        (lognormal:300:2.98:10:120000)\n"
      "  --max-context N       prompt + output at most N tokens; longer\n"
      "                        conversations are compacted (131072)\n"
      "  --class-mix LIST      kind of each user turn\n"
      "                        (interactive=0.3,agent=0.6,batch=0.1)\n"
      "  --set KEY=VALUE       any knob of the workload file (repeatable)\n",
      out);
}

void workload_cli_init(workload_cli_t *c) {
  memset(c, 0, sizeof *c);
  c->spec = "poisson";
  workload_opts_default(&c->opts);
}

static int knob_add(workload_cli_t *c, const char *flag, const char *key,
                    size_t key_len, const char *value) {
  if (c->n_knobs == WORKLOAD_CLI_KNOBS_MAX)
    return cli_usage_error("%s: at most %d codex knob flags", flag,
                           WORKLOAD_CLI_KNOBS_MAX);
  if (key_len == 0 || key_len >= sizeof c->knobs[0].key)
    return cli_usage_error("%s: expected KEY=VALUE", flag);
  workload_cli_knob_t *k = &c->knobs[c->n_knobs++];
  k->flag = flag;
  memcpy(k->key, key, key_len);
  k->key[key_len] = '\0';
  k->value = value;
  return 0;
}

static int knob_flag(workload_cli_t *c, const char *flag, const char *key,
                     const char *value) {
  return knob_add(c, flag, key, strlen(key), value);
}

int workload_cli_parse(workload_cli_t *c, int opt, const char *arg) {
  workload_opts_t *wo = &c->opts;
  char err[256];
  int rc = 0;
  switch (opt) {
  case OPT_WORKLOAD:
    c->spec = arg;
    break;
  case OPT_RATE:
    rc = cli_double("--rate", arg, 1e-6, 1e7, &wo->rate);
    c->seen_rate = true;
    break;
  case OPT_RATE_END:
    rc = cli_double("--rate-end", arg, 1e-6, 1e7, &wo->rate_end);
    c->seen_rate = true;
    break;
  case OPT_BURST:
    if (wo->n_bursts == WORKLOAD_BURST_MAX)
      rc = cli_usage_error("--burst: at most %d bursts", WORKLOAD_BURST_MAX);
    else if (workload_parse_burst(arg, &wo->bursts[wo->n_bursts], err,
                                  sizeof err))
      rc = cli_usage_error("--burst: %s", err);
    else
      wo->n_bursts++;
    break;
  case OPT_DURATION:
    rc = cli_double("--duration", arg, 0.001, 1e7, &wo->duration_s);
    c->seen_duration = true;
    break;
  case OPT_SPEEDUP:
    rc = cli_double("--speedup", arg, 1e-6, 1e9, &wo->speedup);
    c->seen_speedup = true;
    break;
  case OPT_COPIES:
    rc = cli_double("--copies", arg, 0.001, WORKLOAD_COPIES_MAX, &wo->copies);
    c->seen_speedup = true;
    break;
  case OPT_MAX_REQUESTS:
    rc = cli_u64("--max-requests", arg, 1, UINT64_MAX, &wo->max_requests);
    break;
  case OPT_SEED:
    rc = cli_u64("--seed", arg, 0, UINT64_MAX, &wo->seed);
    break;
  case OPT_CLASS_MIX:
    if (workload_parse_class_mix(arg, wo->class_mix, err, sizeof err))
      rc = cli_usage_error("--class-mix: %s", err);
    c->mix = arg;
    break;
  case OPT_PROMPT_TOKENS:
    if (workload_parse_dist(arg, &wo->prompt, err, sizeof err))
      rc = cli_usage_error("--prompt-tokens: %s", err);
    c->seen_sizes = true;
    break;
  case OPT_OUTPUT_TOKENS:
    if (workload_parse_dist(arg, &wo->output, err, sizeof err))
      rc = cli_usage_error("--output-tokens: %s", err);
    c->seen_sizes = true;
    break;
  case OPT_BLOCK_SIZE:
    rc = cli_u32("--block-size", arg, 1, WORKLOAD_BLOCK_SIZE_MAX,
                 &wo->block_size);
    break;
  case OPT_SHARED_PREFIX:
    rc = cli_double("--shared-prefix", arg, 0, 1, &wo->shared_prefix);
    c->seen_prefix = true;
    break;
  case OPT_SLO:
    if (slo_parse(arg, wo->slo, err, sizeof err))
      rc = cli_usage_error("--slo: %s", err);
    c->seen_slo = true;
    break;
  case OPT_SESSIONS:
    rc = knob_flag(c, "--sessions", "sessions", arg);
    break;
  case OPT_SESSION_RATE:
    rc = knob_flag(c, "--session-rate", "session_rate", arg);
    break;
  case OPT_TURNS:
    rc = knob_flag(c, "--turns", "turns", arg);
    break;
  case OPT_STEPS:
    rc = knob_flag(c, "--steps", "steps", arg);
    break;
  case OPT_THINK_TIME:
    rc = knob_flag(c, "--think-time", "think_ms", arg);
    break;
  case OPT_TOOL_TIME:
    rc = knob_flag(c, "--tool-time", "tool_ms", arg);
    break;
  case OPT_MAX_CONTEXT:
    rc = knob_flag(c, "--max-context", "max_context", arg);
    break;
  case OPT_RECORD:
    c->record = arg;
    break;
  case OPT_SET: {
    const char *eq = strchr(arg, '=');
    if (!eq)
      rc = cli_usage_error("--set: expected KEY=VALUE, got '%s'", arg);
    else
      rc = knob_add(c, "--set", arg, (size_t)(eq - arg), eq + 1);
    break;
  }
  default:
    return 1;
  }
  return rc ? -1 : 0;
}

workload_cli_kind_t workload_cli_kind(const workload_cli_t *c) {
  if (strncmp(c->spec, "trace:", 6) == 0 ||
      strncmp(c->spec, "mooncake:", 9) == 0)
    return WORKLOAD_CLI_TRACE;
  if (strcmp(c->spec, "codex") == 0 || strncmp(c->spec, "codex:", 6) == 0)
    return WORKLOAD_CLI_CODEX;
  return WORKLOAD_CLI_POISSON;
}

int workload_cli_check(workload_cli_t *c) {
  workload_cli_kind_t k = workload_cli_kind(c);
  bool poisson = k == WORKLOAD_CLI_POISSON, trace = k == WORKLOAD_CLI_TRACE;
  bool codex = k == WORKLOAD_CLI_CODEX;
  if (!poisson && c->seen_rate)
    return cli_usage_error("--rate and --rate-end apply to poisson%s",
                           codex ? "; codex load comes from --sessions and "
                                   "--session-rate"
                                 : "");
  if (!trace && c->seen_speedup)
    return cli_usage_error("--speedup and --copies apply to trace workloads");
  if (!poisson && c->seen_sizes)
    return cli_usage_error("--prompt-tokens and --output-tokens apply to "
                           "poisson%s",
                           trace ? "; a trace brings its own sizes"
                                 : "; codex sizes are knobs of its workload "
                                   "file (or --set KEY=VALUE)");
  if (!poisson && c->opts.n_bursts)
    return cli_usage_error("--burst applies to poisson");
  if (codex && c->seen_prefix)
    return cli_usage_error("--shared-prefix applies to poisson and trace; "
                           "codex sessions share their system prefix "
                           "(system_tokens)");
  if (!codex && c->n_knobs)
    return cli_usage_error("%s applies to codex workloads", c->knobs[0].flag);
  if ((poisson || codex) && !c->seen_duration && c->opts.max_requests == 0)
    c->opts.duration_s = 60.0;
  if (c->record && WORKLOAD_MOONCAKE_BLOCK % c->opts.block_size)
    return cli_usage_error("--record: a Mooncake trace has blocks of %d "
                           "tokens; --block-size must divide it",
                           WORKLOAD_MOONCAKE_BLOCK);
  return 0;
}

void workload_cli_drop_others(workload_cli_t *c) {
  workload_cli_kind_t k = workload_cli_kind(c);
  workload_opts_t d;
  workload_opts_default(&d);
  if (k != WORKLOAD_CLI_POISSON) {
    c->opts.rate = d.rate;
    c->opts.rate_end = d.rate_end;
    c->opts.prompt = d.prompt;
    c->opts.output = d.output;
    c->opts.n_bursts = 0;
    c->seen_rate = c->seen_sizes = false;
  }
  if (k != WORKLOAD_CLI_TRACE) {
    c->opts.speedup = d.speedup;
    c->opts.copies = d.copies;
    c->seen_speedup = false;
  }
  if (k == WORKLOAD_CLI_CODEX) {
    c->opts.shared_prefix = d.shared_prefix;
    c->seen_prefix = false;
  } else {
    c->n_knobs = 0;
  }
}

/* Defaults, the workload file when one is named, then the flags. */
static int codex_config(const workload_cli_t *c, workload_codex_config_t *cfg,
                        char *err, size_t errlen) {
  char why[512];
  workload_codex_config_default(cfg);
  int rc;
  if (c->spec[5] == ':' &&
      (rc = workload_codex_config_load(cfg, c->spec + 6, err, errlen)))
    return rc;
  if (c->mix &&
      (rc = workload_codex_config_set(cfg, "mix", c->mix, why, sizeof why))) {
    snprintf(err, errlen, "--class-mix: %s", why);
    return rc;
  }
  for (size_t i = 0; i < c->n_knobs; i++) {
    const workload_cli_knob_t *k = &c->knobs[i];
    rc = workload_codex_config_set(cfg, k->key, k->value, why, sizeof why);
    if (rc) {
      if (strcmp(k->flag, "--set") == 0)
        snprintf(err, errlen, "--set %s: %s", k->key, why);
      else
        snprintf(err, errlen, "%s: %s", k->flag, why);
      return rc;
    }
  }
  return 0;
}

static uint32_t scaled_sessions(uint32_t sessions, double scale) {
  double v = round(sessions * scale);
  return sessions == 0 ? 0 : v < 1 ? 1 : v > 1e6 ? 1000000u : (uint32_t)v;
}

int workload_cli_build(const workload_cli_t *c, double scale, workload_t **out,
                       char *err, size_t errlen) {
  workload_opts_t wo = c->opts;
  switch (workload_cli_kind(c)) {
  case WORKLOAD_CLI_TRACE:
    if (c->scale_by == WORKLOAD_SCALE_COMPRESS)
      wo.speedup *= scale;
    else
      wo.copies *= scale;
    break;
  case WORKLOAD_CLI_CODEX: {
    workload_codex_config_t cfg;
    int rc = codex_config(c, &cfg, err, errlen);
    if (rc)
      return rc;
    cfg.sessions = scaled_sessions(cfg.sessions, scale);
    cfg.session_rate *= scale;
    return workload_codex_new(&wo, &cfg, out, err, errlen);
  }
  case WORKLOAD_CLI_POISSON:
    wo.rate *= scale;
    wo.rate_end *= scale;
    break;
  }
  return workload_new(c->spec, &wo, out, err, errlen);
}

void workload_cli_report_settings(const workload_cli_t *c, report_t *r) {
  char what[128], text[512], v[64];
  workload_cli_describe(c, 1.0, what, sizeof what);
  int n = snprintf(text, sizeof text, "%s, %s", c->spec, what);
  if (c->opts.duration_s > 0 && n > 0 && (size_t)n < sizeof text)
    n += snprintf(text + n, sizeof text - (size_t)n, ", %g s",
                  c->opts.duration_s);
  if (c->opts.max_requests && n > 0 && (size_t)n < sizeof text)
    n += snprintf(text + n, sizeof text - (size_t)n, ", at most %llu requests",
                  (unsigned long long)c->opts.max_requests);
  if (c->mix && n > 0 && (size_t)n < sizeof text)
    snprintf(text + n, sizeof text - (size_t)n, ", class mix %s", c->mix);
  report_set_setting(r, "workload", text);
  snprintf(v, sizeof v, "%llu", (unsigned long long)c->opts.seed);
  report_set_setting(r, "seed", v);
}

void workload_cli_describe(const workload_cli_t *c, double scale, char *buf,
                           size_t len) {
  switch (workload_cli_kind(c)) {
  case WORKLOAD_CLI_TRACE:
    if (c->scale_by == WORKLOAD_SCALE_COMPRESS)
      snprintf(buf, len, "speed-up %.3gx", c->opts.speedup * scale);
    else
      snprintf(buf, len, "%.3g %s%s", c->opts.copies * scale,
               c->opts.copies * scale == 1 ? "copy" : "copies",
               c->opts.speedup != 1.0 ? " sped up" : "");
    return;
  case WORKLOAD_CLI_CODEX: {
    workload_codex_config_t cfg;
    char err[256];
    if (codex_config(c, &cfg, err, sizeof err)) {
      snprintf(buf, len, "x%.3g", scale);
      return;
    }
    uint32_t n = scaled_sessions(cfg.sessions, scale);
    const char *noun = n == 1 ? "session" : "sessions";
    if (cfg.session_rate > 0)
      snprintf(buf, len, "%u %s + %.3g/s", n, noun, cfg.session_rate * scale);
    else
      snprintf(buf, len, "%u %s", n, noun);
    return;
  }
  case WORKLOAD_CLI_POISSON:
    snprintf(buf, len, "%.3g req/s", c->opts.rate * scale);
    return;
  }
}

const struct option *workload_cli_merge(const struct option *own,
                                        size_t n_own) {
  static struct option merged[128];
  size_t wl = workload_cli_option_count();
  if (n_own + wl + 1 > sizeof merged / sizeof *merged)
    abort();
  memcpy(merged, own, n_own * sizeof *own);
  memcpy(merged + n_own, workload_cli_options, wl * sizeof *merged);
  memset(&merged[n_own + wl], 0, sizeof *merged);
  return merged;
}
