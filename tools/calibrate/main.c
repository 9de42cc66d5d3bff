/* infsched-calibrate: measures a live OpenAI-compatible server (TTFT
 * against prompt length, with and without a shared prefix, and the time
 * per output token against concurrency), fits the serving model's figures
 * to it (tools/calibrate/fit.h) and writes a profile entry for
 * infsched-sim, the sim backend and the balanced policy. */
#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "fit.h"
#include "infsched/errors.h"
#include "infsched/profile.h"
#include "measure.h"
#include "profile_fields.h"
#include "prompt_text.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PROGRAM "infsched-calibrate"
#define LIST_MAX 32
#define SETS_MAX 32

static void usage(FILE *out) {
  fprintf(
      out,
      "Usage: " PROGRAM " --url URL --model NAME --base PROFILE [OPTION]...\n"
      "Measures a live OpenAI-compatible server (vLLM, llama.cpp's server, "
      "SGLang,\nan infsched scheduler's HTTP API) and writes a profile entry "
      "fitted to it,\nfor infsched-sim, the sim backend and the balanced "
      "policy.\n"
      "\n"
      "Server:\n"
      "  --url URL             the server's API base, e.g. "
      "http://127.0.0.1:8000/v1\n"
      "  --model NAME          model to ask for\n"
      "  --api-key-env VAR     send the API key held in environment "
      "variable VAR\n"
      "  --api KIND            completions or chat (completions)\n"
      "  --ignore-eos          ask the server to generate max_tokens whatever "
      "the\n"
      "                        model says (vLLM and llama.cpp take "
      "ignore_eos)\n"
      "  --timeout S           give up on a request after S seconds (600)\n"
      "\n"
      "Measurements:\n"
      "  --prompts LIST        prompt lengths of the TTFT ladder, in tokens\n"
      "                        (32,64,128,192,256,384,512,768,1024,2048,4096,"
      "8192)\n"
      "  --prefix N            shared prefix of the prefix-cache runs, in "
      "tokens;\n"
      "                        0 for none (2048)\n"
      "  --suffixes LIST       new tokens behind the shared prefix "
      "(64,256,1024)\n"
      "  --max-concurrency N   decode at 1, 2, 4, ... streams up to N (32)\n"
      "  --output-tokens N     tokens each decode stream generates (128)\n"
      "  --decode-prompt N     prompt tokens of each decode stream (32)\n"
      "  --repeats N           runs of each TTFT point; the fit takes their "
      "lower\n"
      "                        quartile (5)\n"
      "  --decode-repeats N    runs of each concurrency; the fit takes the "
      "median of\n"
      "                        each run's median over its streams (3)\n"
      "  --chars-per-token X   characters of prompt text per token (4)\n"
      "\n"
      "Profile:\n"
      "  --base NAME           profile whose other figures the entry keeps\n"
      "  --profiles FILE       profiles file holding it (default "
      "configs/profiles.yaml)\n"
      "  --set FIELD=VALUE     change a figure of the base first, e.g.\n"
      "                        weights_gb=16.1 (repeatable)\n"
      "  --name NAME           name of the written profile (calibrated)\n"
      "  --date DATE           date the entry says it was measured (today, "
      "UTC)\n"
      "  --out FILE            write the profiles file there (standard "
      "output)\n"
      "  -h, --help            show this help\n"
      "  --version             print the version and exit\n"
      "\n"
      "Progress goes to standard error. Exit status: 0 when the profile was "
      "written,\n1 when requests failed during the run or the measurements "
      "do not fit, 2 on\na usage error, 3 when the server does not answer "
      "the first request.\n");
}

typedef struct config {
  const char *url;
  const char *model;
  const char *api_key_env;
  bool chat;
  bool ignore_eos;
  uint32_t timeout_s;
  uint32_t prompts[LIST_MAX];
  size_t n_prompts;
  uint32_t prefix;
  uint32_t suffixes[LIST_MAX];
  size_t n_suffixes;
  uint32_t max_concurrency;
  uint32_t output_tokens;
  uint32_t decode_prompt;
  uint32_t repeats;
  uint32_t decode_repeats;
  double chars_per_token;
  const char *base;
  const char *profiles;
  const char *sets[SETS_MAX];
  size_t n_sets;
  const char *name;
  const char *date;
  const char *out;
} config_t;

enum {
  OPT_URL = 256,
  OPT_MODEL,
  OPT_API_KEY_ENV,
  OPT_API,
  OPT_IGNORE_EOS,
  OPT_TIMEOUT,
  OPT_PROMPTS,
  OPT_PREFIX,
  OPT_SUFFIXES,
  OPT_MAX_CONCURRENCY,
  OPT_OUTPUT_TOKENS,
  OPT_DECODE_PROMPT,
  OPT_REPEATS,
  OPT_DECODE_REPEATS,
  OPT_CHARS_PER_TOKEN,
  OPT_BASE,
  OPT_PROFILES,
  OPT_SET,
  OPT_NAME,
  OPT_DATE,
  OPT_OUT,
};

static const struct option options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"model", required_argument, NULL, OPT_MODEL},
    {"api-key-env", required_argument, NULL, OPT_API_KEY_ENV},
    {"api", required_argument, NULL, OPT_API},
    {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"prompts", required_argument, NULL, OPT_PROMPTS},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"suffixes", required_argument, NULL, OPT_SUFFIXES},
    {"max-concurrency", required_argument, NULL, OPT_MAX_CONCURRENCY},
    {"output-tokens", required_argument, NULL, OPT_OUTPUT_TOKENS},
    {"decode-prompt", required_argument, NULL, OPT_DECODE_PROMPT},
    {"repeats", required_argument, NULL, OPT_REPEATS},
    {"decode-repeats", required_argument, NULL, OPT_DECODE_REPEATS},
    {"chars-per-token", required_argument, NULL, OPT_CHARS_PER_TOKEN},
    {"base", required_argument, NULL, OPT_BASE},
    {"profiles", required_argument, NULL, OPT_PROFILES},
    {"set", required_argument, NULL, OPT_SET},
    {"name", required_argument, NULL, OPT_NAME},
    {"date", required_argument, NULL, OPT_DATE},
    {"out", required_argument, NULL, OPT_OUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* A comma-separated list of token counts into out[0..*n). */
static int parse_list(const char *flag, const char *val, uint32_t min,
                      uint32_t *out, size_t *n) {
  char *copy = xstrdup(val), *rest = copy, *item;
  int rc = 0;
  *n = 0;
  while (!rc && (item = strsep(&rest, ","))) {
    if (!*item)
      rc = cli_usage_error("%s: expected numbers separated by commas, got '%s'",
                           flag, val);
    else if (*n == LIST_MAX)
      rc = cli_usage_error("%s: at most %d values", flag, LIST_MAX);
    else
      rc = cli_u32(flag, item, min, 1u << 24, &out[(*n)++]);
  }
  free(copy);
  return rc;
}

static int parse_one(void *ctx, int opt, const char *arg) {
  config_t *c = ctx;
  switch (opt) {
  case OPT_URL:
    c->url = arg;
    return 0;
  case OPT_MODEL:
    c->model = arg;
    return 0;
  case OPT_API_KEY_ENV:
    c->api_key_env = arg;
    return 0;
  case OPT_API:
    if (strcmp(arg, "completions") != 0 && strcmp(arg, "chat") != 0)
      return cli_usage_error("--api: expected completions or chat, got '%s'",
                             arg);
    c->chat = strcmp(arg, "chat") == 0;
    return 0;
  case OPT_IGNORE_EOS:
    c->ignore_eos = true;
    return 0;
  case OPT_TIMEOUT:
    return cli_u32("--timeout", arg, 1, 86400, &c->timeout_s);
  case OPT_PROMPTS:
    return parse_list("--prompts", arg, 1, c->prompts, &c->n_prompts);
  case OPT_PREFIX:
    return cli_u32("--prefix", arg, 0, 1u << 24, &c->prefix);
  case OPT_SUFFIXES:
    return parse_list("--suffixes", arg, 1, c->suffixes, &c->n_suffixes);
  case OPT_MAX_CONCURRENCY:
    return cli_u32("--max-concurrency", arg, 2, 4096, &c->max_concurrency);
  case OPT_OUTPUT_TOKENS:
    return cli_u32("--output-tokens", arg, 8, 1u << 20, &c->output_tokens);
  case OPT_DECODE_PROMPT:
    return cli_u32("--decode-prompt", arg, 1, 1u << 24, &c->decode_prompt);
  case OPT_REPEATS:
    return cli_u32("--repeats", arg, 1, 1000, &c->repeats);
  case OPT_DECODE_REPEATS:
    return cli_u32("--decode-repeats", arg, 1, 1000, &c->decode_repeats);
  case OPT_CHARS_PER_TOKEN:
    return cli_double("--chars-per-token", arg, 0.5, 64, &c->chars_per_token);
  case OPT_BASE:
    c->base = arg;
    return 0;
  case OPT_PROFILES:
    c->profiles = arg;
    return 0;
  case OPT_SET:
    if (c->n_sets == SETS_MAX)
      return cli_usage_error("--set: at most %d", SETS_MAX);
    if (!strchr(arg, '='))
      return cli_usage_error("--set: expected FIELD=VALUE, got '%s'", arg);
    c->sets[c->n_sets++] = arg;
    return 0;
  case OPT_NAME:
    if (!*arg || strlen(arg) >= INFS_NAME_MAX ||
        strpbrk(arg, " :#\t\n'\"{}[],&*!|>%@`"))
      return cli_usage_error("--name: '%s' is not a profile name (letters, "
                             "digits, '-', '_' and '.', at most %d)",
                             arg, INFS_NAME_MAX - 1);
    c->name = arg;
    return 0;
  case OPT_DATE:
    if (!*arg || strpbrk(arg, "\n\r"))
      return cli_usage_error("--date: expected a date such as 2026-01-31");
    c->date = arg;
    return 0;
  case OPT_OUT:
    c->out = arg;
    return 0;
  default:
    return CLI_NOT_MINE;
  }
}

static int parse_args(int argc, char **argv, config_t *c) {
  if (cli_parse_args(argc, argv, options, usage, parse_one, c))
    return -1;
  if (!c->url)
    return cli_usage_error("--url is required");
  if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8))
    return cli_usage_error("--url: expected http:// or https://, got '%s'",
                           c->url);
  if (!c->model)
    return cli_usage_error("--model is required");
  if (!c->base)
    return cli_usage_error("--base is required (a profile of the same "
                           "hardware and model size, e.g. gpu-h100)");
  if (c->api_key_env && !getenv(c->api_key_env))
    return cli_usage_error("--api-key-env: %s is not set", c->api_key_env);
  return 0;
}

/* --- prompts and requests --- */

typedef struct run {
  const config_t *cfg;
  const infs_profile_t *base;
  measure_t *m;
  prompt_text_t text;
  uint64_t *blocks;
  size_t blocks_cap;
  uint64_t nonce;   /* this run's, in every prompt: a server that cached an
                       earlier run's prompts must not serve them again */
  uint64_t counter; /* requests made, so that each prompt is its own */
  unsigned jitter;  /* rand_r state of the pauses between TTFT requests */
  char why[600];    /* the failure that stopped the run */
} run_t;

/* Block hashes that tag the prompt text: the shared prefix's are the same
 * in every request, the others new each time. The text of a block is drawn
 * from its hash alone (prompt_text.h), so equal tags give equal text. */
#define PREFIX_TAG (0xfffffull << 20)

static const char *prompt(run_t *r, uint32_t prefix, uint32_t tokens) {
  uint32_t bs = r->base->block_size;
  size_t n = tokens / bs;
  uint64_t own = ++r->counter;
  if (n > r->blocks_cap) {
    r->blocks = xreallocarray(r->blocks, n, sizeof *r->blocks);
    r->blocks_cap = n;
  }
  for (size_t i = 0; i < n; i++)
    r->blocks[i] = r->nonce ^ ((i < prefix / bs ? PREFIX_TAG : own << 20) + i);
  return prompt_text_build(&r->text, r->blocks, n, bs, tokens,
                           r->cfg->chars_per_token, r->nonce ^ (own << 20));
}

static char *body(run_t *r, uint32_t prefix, uint32_t tokens,
                  uint32_t max_tokens) {
  const config_t *c = r->cfg;
  const char *text = prompt(r, prefix, tokens);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "model", c->model);
  if (c->chat) {
    cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(msgs, m);
  } else {
    cJSON_AddStringToObject(o, "prompt", text);
  }
  cJSON_AddNumberToObject(o, "max_tokens", max_tokens);
  cJSON_AddTrueToObject(o, "stream");
  cJSON *so = cJSON_AddObjectToObject(o, "stream_options");
  cJSON_AddTrueToObject(so, "include_usage");
  if (c->ignore_eos)
    cJSON_AddTrueToObject(o, "ignore_eos");
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s)
    abort();
  return s;
}

/* Runs n calls at once; returns the first failure's message (in r->why)
 * or NULL. */
static const char *run_calls(run_t *r, measure_call_t *calls, size_t n) {
  measure_run(r->m, calls, n);
  for (size_t i = 0; i < n; i++)
    if (calls[i].error[0]) {
      snprintf(r->why, sizeof r->why, "%s", calls[i].error);
      return r->why;
    }
  return NULL;
}

/* The median of v[0..n), v left as it is. */
static double median_of(const double *v, size_t n) {
  double *copy = xcalloc(n ? n : 1, sizeof *copy);
  if (n)
    memcpy(copy, v, n * sizeof *v);
  double m = calib_median(copy, n);
  free(copy);
  return m;
}

static double ms_between(infs_time_t a, infs_time_t b) {
  return (double)(b - a) / 1e3;
}

/* --- the three measurements --- */

/* The samples of one point of a ladder. */
typedef struct samples {
  double *ms, *prompt, *cached;
  size_t n;
  bool cached_reported; /* by every answer */
} samples_t;

static void samples_init(samples_t *s, size_t cap) {
  s->ms = xcalloc(cap, sizeof *s->ms);
  s->prompt = xcalloc(cap, sizeof *s->prompt);
  s->cached = xcalloc(cap, sizeof *s->cached);
  s->n = 0;
  s->cached_reported = true;
}

static void samples_free(samples_t *s) {
  free(s->ms);
  free(s->prompt);
  free(s->cached);
}

/* One TTFT: a request of max_tokens 1, after a random pause of up to
 * PAUSE_US. Sent right after the last answer, a request would arrive at the
 * same phase of any tick the server steps or delivers on, and each prompt
 * length would carry its own fixed share of that tick's lag; the pause
 * spreads it evenly. Returns the request's failure or NULL. */
#define PAUSE_US 2000
static const char *ttft_once(run_t *r, uint32_t prefix, uint32_t tokens,
                             samples_t *s) {
  char *b = body(r, prefix, tokens, 1);
  long pause = rand_r(&r->jitter) % PAUSE_US;
  nanosleep(&(struct timespec){0, pause * 1000}, NULL);
  measure_call_t call = {.body = b};
  const char *err = run_calls(r, &call, 1);
  free(b);
  if (err)
    return err;
  s->ms[s->n] = ms_between(call.sent, call.first);
  s->prompt[s->n] = call.usage.prompt ? call.usage.prompt : tokens;
  s->cached[s->n] = call.usage.cached;
  s->cached_reported &= call.usage.have_cached;
  s->n++;
  return NULL;
}

/* Time per output token of each of b streams decoding together. */
static const char *decode_once(run_t *r, uint32_t b, samples_t *s,
                               double *tokens_sum) {
  const config_t *c = r->cfg;
  measure_call_t *calls = xcalloc(b, sizeof *calls);
  for (uint32_t i = 0; i < b; i++)
    calls[i].body = body(r, 0, c->decode_prompt, c->output_tokens);
  const char *err = run_calls(r, calls, b);
  for (uint32_t i = 0; !err && i < b; i++) {
    /* Without usage, one event a token, as servers stream them. */
    uint32_t n =
        calls[i].usage.completion ? calls[i].usage.completion : calls[i].events;
    if (n < 8) {
      snprintf(r->why, sizeof r->why,
               "a stream ended after %u tokens, too few to time (pass "
               "--ignore-eos if the model stops early)",
               n);
      err = r->why;
      break;
    }
    s->ms[s->n] = ms_between(calls[i].first, calls[i].last) / (n - 1);
    s->prompt[s->n] =
        calls[i].usage.prompt ? calls[i].usage.prompt : c->decode_prompt;
    s->cached[s->n] = 0;
    *tokens_sum += n;
    s->n++;
  }
  for (uint32_t i = 0; i < b; i++)
    free((char *)calls[i].body);
  free(calls);
  return err;
}

/* --- the written profile --- */

typedef struct notes {
  const config_t *cfg;
  const calib_result_t *fit;
  char text[256];
} notes_t;

static bool was_set(const config_t *c, const char *field) {
  size_t n = strlen(field);
  for (size_t i = 0; i < c->n_sets; i++)
    if (strncmp(c->sets[i], field, n) == 0 && c->sets[i][n] == '=')
      return true;
  return false;
}

static const char *note(void *arg, const char *field) {
  notes_t *nt = arg;
  const calib_result_t *f = nt->fit;
  const char *date = nt->cfg->date;
  if (strcmp(field, "mem_eff") == 0)
    snprintf(nt->text, sizeof nt->text,
             "[M] %s: the weights read in %.3g ms (TTFT's flat part less "
             "its slope's intercept)",
             date, f->weight_read_ms);
  else if (strcmp(field, "mfu") == 0 && f->fitted_mfu)
    snprintf(nt->text, sizeof nt->text,
             "[M] %s: prefill at %.4g TFLOP/s (TTFT's slope)", date, f->tflops);
  else if (strcmp(field, "step_overhead_ms") == 0 && f->fitted_overhead)
    snprintf(nt->text, sizeof nt->text,
             "[M] %s: the decode line's intercept less the weight read", date);
  else if (strcmp(field, "per_seq_ms") == 0)
    snprintf(nt->text, sizeof nt->text,
             "[M] %s: the decode line's slope less each stream's KV read",
             date);
  else if (was_set(nt->cfg, field))
    snprintf(nt->text, sizeof nt->text, "set with --set");
  else if (strcmp(field, "mfu") == 0 || strcmp(field, "step_overhead_ms") == 0)
    snprintf(nt->text, sizeof nt->text,
             "held from %s: the ladder had too few prompts %s the knee",
             nt->cfg->base,
             strcmp(field, "mfu") == 0 ? "above" : "on each side of");
  else
    snprintf(nt->text, sizeof nt->text, "held from %s", nt->cfg->base);
  return nt->text;
}

/* argv as a shell would take it back. */
static void command_line(buf_t *out, int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool plain =
        *a && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                        "OPQRSTUVWXYZ0123456789-_./:=,@%+") == strlen(a);
    buf_puts(out, i ? " " : "");
    if (plain) {
      buf_puts(out, a);
      continue;
    }
    buf_puts(out, "'");
    for (; *a; a++)
      buf_puts(out, *a == '\'' ? "'\\''" : (char[]){*a, 0});
    buf_puts(out, "'");
  }
}

/* Shortens a fitted figure to the digits the measurement supports. */
static double digits4(double v) {
  if (v == 0 || !isfinite(v))
    return v;
  char s[32];
  snprintf(s, sizeof s, "%.4g", v);
  return strtod(s, NULL);
}

/* --- main --- */

typedef struct ladder_point {
  uint32_t prefix, tokens;
  samples_t s;
} ladder_point_t;

/* A TTFT point: the lower quartile of its times, since the delays of a
 * busy client or host only ever add to a time; the median of its token
 * counts. */
static void point_to_fit(const ladder_point_t *p, calib_ttft_t *t) {
  double *ms = xcalloc(p->s.n ? p->s.n : 1, sizeof *ms);
  if (p->s.n)
    memcpy(ms, p->s.ms, p->s.n * sizeof *ms);
  t->ms = calib_quantile(ms, p->s.n, 0.25);
  free(ms);
  t->prompt = median_of(p->s.prompt, p->s.n);
  t->cached = median_of(p->s.cached, p->s.n);
}

int main(int argc, char **argv) {
  config_t cfg = {
      .prompts = {32, 64, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096, 8192},
      .n_prompts = 12,
      .prefix = 2048,
      .suffixes = {64, 256, 1024},
      .n_suffixes = 3,
      .max_concurrency = 32,
      .output_tokens = 128,
      .decode_prompt = 32,
      .repeats = 5,
      .decode_repeats = 3,
      .chars_per_token = 4,
      .timeout_s = 600,
      .name = "calibrated",
  };
  cli_init(PROGRAM);
  if (parse_args(argc, argv, &cfg))
    return CLI_EXIT_USAGE;
  char today[32];
  if (!cfg.date) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    cfg.date = today;
  }

  /* The base, with what --set changes. */
  char err[600], pbuf[1024];
  const char *path =
      cfg.profiles ? cfg.profiles : cli_default_profiles(pbuf, sizeof pbuf);
  profile_set_t *set = NULL;
  if (profile_set_load(path, &set, err, sizeof err)) {
    cli_usage_error("--profiles: %s", err);
    return CLI_EXIT_USAGE;
  }
  const infs_profile_t *found = profile_set_find(set, cfg.base);
  if (!found) {
    cli_usage_error("--base: no profile '%s' in %s", cfg.base, path);
    profile_set_destroy(&set);
    return CLI_EXIT_USAGE;
  }
  infs_profile_t base = *found;
  profile_set_destroy(&set);
  for (size_t i = 0; i < cfg.n_sets; i++) {
    char field[64];
    const char *eq = strchr(cfg.sets[i], '=');
    snprintf(field, sizeof field, "%.*s", (int)(eq - cfg.sets[i]), cfg.sets[i]);
    if (profile_set_field(&base, field, eq + 1, err, sizeof err)) {
      cli_usage_error("--set %s: %s", cfg.sets[i], err);
      return CLI_EXIT_USAGE;
    }
  }
  const char *bad_field;
  if (profile_validate(&base, &bad_field, err, sizeof err)) {
    cli_usage_error("--set: field '%s' %s", bad_field, err);
    return CLI_EXIT_USAGE;
  }
  snprintf(base.name, sizeof base.name, "%s", cfg.name);
  if (cfg.prefix % base.block_size) {
    cli_usage_error("--prefix: %u is not a whole number of %u-token blocks",
                    cfg.prefix, base.block_size);
    return CLI_EXIT_USAGE;
  }

  char url[2048];
  size_t ul = strlen(cfg.url);
  while (ul && cfg.url[ul - 1] == '/')
    ul--;
  snprintf(url, sizeof url, "%.*s/%s", (int)ul, cfg.url,
           cfg.chat ? "chat/completions" : "completions");
  run_t r = {.cfg = &cfg, .base = &base};
  if (getrandom(&r.nonce, sizeof r.nonce, 0) != sizeof r.nonce)
    r.nonce = (uint64_t)clock_ns();
  r.nonce &= ~((1ull << 40) - 1); /* clear of the tags' bits */
  r.jitter = (unsigned)(r.nonce >> 40);
  r.m = measure_new(url, cfg.api_key_env ? getenv(cfg.api_key_env) : NULL,
                    cfg.timeout_s * 1000u, err, sizeof err);
  if (!r.m) {
    fprintf(stderr, PROGRAM ": %s\n", err);
    return CLI_EXIT_STARTUP;
  }
  int status = 0;
  const char *fail = NULL;
  uint32_t levels[16];
  size_t n_levels = 0;
  for (uint32_t b = 1; b <= cfg.max_concurrency && n_levels < 16; b *= 2)
    levels[n_levels++] = b;
  size_t n_points = cfg.n_prompts + (cfg.prefix ? 2 * cfg.n_suffixes : 0);
  ladder_point_t *pts = xcalloc(n_points, sizeof *pts);
  samples_t *dec = xcalloc(n_levels, sizeof *dec);
  double *dec_tokens = xcalloc(n_levels, sizeof *dec_tokens);
  /* The median over each run's streams, per run: a run whose end the
   * client or host delayed is late for all its streams at once. */
  double *dec_runs = xcalloc(n_levels * cfg.decode_repeats, sizeof *dec_runs);
  for (size_t i = 0; i < cfg.n_prompts; i++)
    pts[i] = (ladder_point_t){0, cfg.prompts[i], {0}};
  for (size_t i = 0; cfg.prefix && i < cfg.n_suffixes; i++) {
    /* The shared prefix and, beside it, a prompt of the same length
     * without one: the difference is the cache's. */
    uint32_t len = cfg.prefix + cfg.suffixes[i];
    pts[cfg.n_prompts + 2 * i] = (ladder_point_t){cfg.prefix, len, {0}};
    pts[cfg.n_prompts + 2 * i + 1] = (ladder_point_t){0, len, {0}};
  }
  for (size_t i = 0; i < n_points; i++)
    samples_init(&pts[i].s, cfg.repeats);
  for (size_t i = 0; i < n_levels; i++)
    samples_init(&dec[i], (size_t)cfg.decode_repeats * levels[i]);

  /* The first request connects and wakes the server up; its time is not
   * kept. With a prefix, it also puts the prefix in the cache. */
  fprintf(stderr, PROGRAM ": %s, model %s: first request\n", url, cfg.model);
  {
    samples_t warm;
    samples_init(&warm, 1);
    fail = ttft_once(&r, cfg.prefix, cfg.prefix + 32, &warm);
    samples_free(&warm);
    if (fail) {
      fprintf(stderr, PROGRAM ": %s does not answer: %s\n", url, fail);
      status = CLI_EXIT_STARTUP;
      goto out;
    }
  }

  /* Every round runs each point once, so that a slow spell of a shared
   * machine spreads over all points instead of biasing one. */
  uint32_t rounds =
      cfg.repeats > cfg.decode_repeats ? cfg.repeats : cfg.decode_repeats;
  for (uint32_t round = 1; round <= rounds && !fail; round++) {
    if (round <= cfg.repeats) {
      fprintf(stderr, PROGRAM ": round %u of %u: TTFT (ms):", round, rounds);
      for (size_t i = 0; i < n_points && !fail; i++) {
        samples_t *s = &pts[i].s;
        fail = ttft_once(&r, pts[i].prefix, pts[i].tokens, s);
        if (!fail && pts[i].prefix)
          fprintf(stderr, " %u(%.0f cached)=%.1f", pts[i].tokens,
                  s->cached[s->n - 1], s->ms[s->n - 1]);
        else if (!fail)
          fprintf(stderr, " %u=%.1f", pts[i].tokens, s->ms[s->n - 1]);
      }
      fprintf(stderr, "\n");
    }
    if (round <= cfg.decode_repeats && !fail) {
      fprintf(stderr, PROGRAM ": round %u of %u: ms per token:", round, rounds);
      for (size_t i = 0; i < n_levels && !fail; i++) {
        size_t before = dec[i].n;
        fail = decode_once(&r, levels[i], &dec[i], &dec_tokens[i]);
        if (fail)
          break;
        double *run = &dec_runs[i * cfg.decode_repeats + round - 1];
        *run = median_of(dec[i].ms + before, dec[i].n - before);
        fprintf(stderr, " %ux=%.2f", levels[i], *run);
      }
      fprintf(stderr, "\n");
    }
  }
  if (fail) {
    fprintf(stderr, PROGRAM ": a request failed: %s\n", fail);
    status = CLI_EXIT_FAILED;
    goto out;
  }

  /* The fit. Prefix points count only when the server says how many
   * tokens its cache served. */
  calib_ttft_t *tt = xcalloc(n_points, sizeof *tt);
  calib_tpot_t *dd = xcalloc(n_levels, sizeof *dd);
  size_t n_tt = 0;
  bool prefix_left_out = false;
  for (size_t i = 0; i < n_points; i++) {
    if (pts[i].prefix && !pts[i].s.cached_reported) {
      prefix_left_out = true;
      continue;
    }
    point_to_fit(&pts[i], &tt[n_tt++]);
  }
  for (size_t i = 0; i < n_levels; i++) {
    double prompt_med = median_of(dec[i].prompt, dec[i].n);
    double out_mean = dec_tokens[i] / (double)dec[i].n;
    dd[i] = (calib_tpot_t){
        levels[i], prompt_med + out_mean / 2,
        median_of(&dec_runs[i * cfg.decode_repeats], cfg.decode_repeats)};
  }
  calib_result_t fit;
  int rc = calib_fit(&base, tt, n_tt, dd, n_levels, &fit, err, sizeof err);
  if (rc) {
    fprintf(stderr, PROGRAM ": the measurements do not fit: %s\n", err);
    status = CLI_EXIT_FAILED;
  } else {
    fit.profile.mem_eff = digits4(fit.profile.mem_eff);
    fit.profile.mfu = digits4(fit.profile.mfu);
    fit.profile.step_overhead_ms = digits4(fit.profile.step_overhead_ms);
    fit.profile.per_seq_ms = digits4(fit.profile.per_seq_ms);

    buf_t doc = {0};
    buf_printf(&doc,
               "# A profile measured by " PROGRAM ": use this file as a "
               "profiles file\n# (--profiles) or paste the entry under "
               "\"profiles:\" of another.\n# source: measured %s against "
               "%s (model %s) with\n#   ",
               cfg.date, cfg.url, cfg.model);
    command_line(&doc, argc, argv);
    buf_printf(&doc,
               "\n# [M] marks a figure fitted to the measurements "
               "(docs/backends.md,\n# \"Calibrating a server\"); the others "
               "are %s's, which they rest on.\n# TTFT: the lower quartile "
               "of %u runs; decode: the median of %u runs'\n# medians over "
               "their streams.\n#   TTFT, prompt tokens: ms:",
               cfg.base, cfg.repeats, cfg.decode_repeats);
    for (size_t i = 0; i < cfg.n_prompts; i++)
      buf_printf(&doc, "%s %u: %.1f", i % 6 == 5 ? "\n#    " : "",
                 pts[i].tokens, tt[i].ms);
    for (size_t i = 0; cfg.prefix && i < cfg.n_suffixes; i++) {
      ladder_point_t *with = &pts[cfg.n_prompts + 2 * i];
      ladder_point_t *without = &pts[cfg.n_prompts + 2 * i + 1];
      calib_ttft_t a, b;
      point_to_fit(with, &a);
      point_to_fit(without, &b);
      buf_printf(&doc,
                 "\n#   %u tokens behind a shared %u-token prefix: %.1f ms "
                 "(%s), %.1f ms without",
                 cfg.suffixes[i], cfg.prefix, a.ms,
                 with->s.cached_reported ? "cached tokens reported"
                                         : "cached tokens not reported",
                 b.ms);
      if (with->s.cached_reported)
        buf_printf(&doc, "; %.0f cached", a.cached);
    }
    buf_printf(&doc, "\n#   ms per output token, streams: ms:");
    for (size_t i = 0; i < n_levels; i++)
      buf_printf(&doc, " %u: %.2f", levels[i], dd[i].ms);
    buf_printf(&doc,
               "\n# Fit: weights read in %.3g ms, prefill at %.4g TFLOP/s, "
               "%.3g ms of latency\n# outside the engine (HTTP, "
               "tokenisation; not in the profile); residuals %.1f%%\n"
               "# RMS, %.1f%% at worst; %zu TTFT points below the knee, %zu "
               "above.%s\nprofiles:\n",
               fit.weight_read_ms, fit.tflops, fit.client_ms, fit.rms_rel * 100,
               fit.max_rel * 100, fit.mem_bound, fit.compute_bound,
               prefix_left_out ? "\n# The prefix points are left out of the "
                                 "fit: the server did not report its "
                                 "cached tokens."
                               : "");
    notes_t nt = {&cfg, &fit, {0}};
    profile_format(&doc, &fit.profile, note, &nt);

    FILE *f = cfg.out ? fopen(cfg.out, "w") : stdout;
    if (!f || fputs(doc.data, f) == EOF || (cfg.out && fclose(f) != 0)) {
      fprintf(stderr, PROGRAM ": --out %s: %s\n", cfg.out, strerror(errno));
      status = CLI_EXIT_FAILED;
    } else {
      fprintf(stderr,
              PROGRAM ": mem_eff %.4g, mfu %.4g%s, step_overhead_ms %.4g%s, "
                      "per_seq_ms %.4g; client %.3g ms; residuals %.1f%% "
                      "RMS\n",
              fit.profile.mem_eff, fit.profile.mfu,
              fit.fitted_mfu ? "" : " (held)", fit.profile.step_overhead_ms,
              fit.fitted_overhead ? "" : " (held)", fit.profile.per_seq_ms,
              fit.client_ms, fit.rms_rel * 100);
    }
    buf_free(&doc);
  }
  free(tt);
  free(dd);

out:
  for (size_t i = 0; i < n_points; i++)
    samples_free(&pts[i].s);
  for (size_t i = 0; i < n_levels; i++)
    samples_free(&dec[i]);
  free(pts);
  free(dec);
  free(dec_tokens);
  free(dec_runs);
  free(r.blocks);
  prompt_text_free(&r.text);
  measure_destroy(&r.m);
  return status;
}
