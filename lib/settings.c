#include "settings.h"

#include "infsched/errors.h"
#include "apikeys.h"
#include "cli.h"
#include "log.h"
#include "policy_names.h"
#include "slo.h"
#include "spec.h"
#include "transfer.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* --- checks of text settings --- */

/* "PORT" of HOST:PORT: digits only, in [min, 65535]. */
static bool port_ok(const char *p, unsigned min) {
  if (!*p || strlen(p) > 5)
    return false;
  for (const char *d = p; *d; d++)
    if (*d < '0' || *d > '9')
      return false;
  unsigned long n = strtoul(p, NULL, 10);
  return n >= min && n <= 65535;
}

/* ZeroMQ endpoints the daemons bind (wildcard host allowed) or connect to:
 * tcp://HOST:PORT or ipc://PATH. A port of '*' is refused: the workers
 * could not know where to connect. */
static int check_endpoint(const char *t, bool bind, char *err, size_t errlen) {
  const char *sep = strstr(t, "://");
  if (!sep || sep == t || !sep[3]) {
    snprintf(err, errlen,
             "'%s' is not an endpoint (expected e.g. tcp://127.0.0.1:5555)", t);
    return INFS_ECONFIG;
  }
  if (strncmp(t, "ipc://", 6) == 0)
    return 0;
  if (strncmp(t, "tcp://", 6) != 0) {
    snprintf(err, errlen, "'%s': expected a tcp:// or ipc:// endpoint", t);
    return INFS_ECONFIG;
  }
  const char *host = t + 6, *colon = strrchr(host, ':');
  if (!colon || colon == host || !port_ok(colon + 1, 1)) {
    snprintf(err, errlen, "'%s': expected tcp://HOST:PORT, PORT 1 to 65535", t);
    return INFS_ECONFIG;
  }
  if (!bind && (colon - host == 1 && host[0] == '*')) {
    snprintf(err, errlen, "'%s': a worker connects to a host, not '*'", t);
    return INFS_ECONFIG;
  }
  return 0;
}

static int check_bind(const char *t, char *err, size_t errlen) {
  return check_endpoint(t, true, err, errlen);
}

static int check_connect(const char *t, char *err, size_t errlen) {
  return check_endpoint(t, false, err, errlen);
}

/* HOST:PORT or [HOST]:PORT (an empty host or '*' is any), PORT 0 to 65535
 * (0: any free port), or off. */
static int check_http(const char *t, char *err, size_t errlen) {
  if (strcmp(t, "off") == 0)
    return 0;
  const char *colon = NULL;
  if (t[0] == '[') {
    const char *end = strchr(t, ']');
    if (end && end[1] == ':')
      colon = end + 1;
  } else {
    colon = strrchr(t, ':');
  }
  if (!colon || !port_ok(colon + 1, 0)) {
    snprintf(err, errlen,
             "'%s' is not HOST:PORT with PORT 0 to 65535 (e.g. "
             "127.0.0.1:8080), or off",
             t);
    return INFS_ECONFIG;
  }
  return 0;
}

static int check_policy(const char *t, char *err, size_t errlen) {
#define POLICY_NAME(name) #name,
  static const char *const names[] = {POLICY_NAMES(POLICY_NAME) NULL};
#undef POLICY_NAME
  for (const char *const *p = names; *p; p++)
    if (strcmp(*p, t) == 0)
      return 0;
  int n = snprintf(err, errlen, "unknown policy '%s' (", t);
  for (const char *const *p = names; *p && n >= 0; p++) {
    if ((size_t)n >= errlen)
      break;
    n += snprintf(err + n, errlen - (size_t)n, "%s%s", *p, p[1] ? ", " : ")");
  }
  return INFS_ECONFIG;
}

static int check_slo(const char *t, char *err, size_t errlen) {
  slo_t slo[INFS_CLASS_COUNT];
  slo_defaults(slo);
  return slo_parse(t, slo, err, errlen);
}

static int check_latency_weight(const char *t, char *err, size_t errlen) {
  double w[INFS_CLASS_COUNT] = {0};
  return slo_parse_weights(t, w, err, errlen);
}

static int check_auth(const char *t, char *err, size_t errlen) {
  if (strcmp(t, "on") == 0 || strcmp(t, "off") == 0)
    return 0;
  snprintf(err, errlen, "expected on or off, got '%s'", t);
  return INFS_ECONFIG;
}

static int check_log_level(const char *t, char *err, size_t errlen) {
  log_level_t l;
  if (log_level_parse(t, &l) == 0)
    return 0;
  snprintf(err, errlen, "unknown level '%s' (debug, info, warn or error)", t);
  return INFS_ECONFIG;
}

static int check_role(const char *t, char *err, size_t errlen) {
  infs_role_t r;
  if (infs_role_parse(t, &r) == 0)
    return 0;
  snprintf(err, errlen, "unknown role '%s' (both, prefill or decode)", t);
  return INFS_ECONFIG;
}

static int check_links(const char *t, char *err, size_t errlen) {
  link_table_t *l = NULL;
  int rc = link_table_parse(t, &l, err, errlen);
  link_table_free(&l);
  return rc ? INFS_ECONFIG : 0;
}

/* The keys file loads: checked where the scheduler would load it. */
static int ready_api_keys(const char *t, char *err, size_t errlen) {
  apikeys_t *k = NULL;
  int rc = apikeys_load(t, &k, err, errlen);
  apikeys_destroy(&k);
  return rc ? INFS_ECONFIG : 0;
}

/* --- the table --- */

#define S SETTING_SCHEDULER
#define W SETTING_WORKER
#define NAME_LEN 1, INFS_NAME_MAX - 1
#define TEXT_LEN 1, 4095

static const setting_t table[SET_COUNT] = {
    {SET_CLIENTS, "clients", "clients", S, S, SETTING_TEXT, TEXT_LEN,
     "tcp://127.0.0.1:5555", "ADDR",
     "ZeroMQ endpoint the scheduler binds for clients", check_bind, NULL},
    {SET_WORKERS, "workers", "workers", S, S, SETTING_TEXT, TEXT_LEN,
     "tcp://127.0.0.1:5556", "ADDR",
     "ZeroMQ endpoint the scheduler binds for workers", check_bind, NULL},
    {SET_SCHEDULER, "scheduler", "scheduler", W, 0, SETTING_TEXT, TEXT_LEN,
     "tcp://127.0.0.1:5556", "ADDR",
     "the scheduler's worker endpoint, which the worker connects to",
     check_connect, NULL},
    {SET_ID, "id", "id", W, 0, SETTING_TEXT, NAME_LEN, NULL, "NAME",
     "worker id (default HOSTNAME-PID)", NULL, NULL},
    {SET_PROFILE, "profile", "profile", W, W, SETTING_TEXT, NAME_LEN,
     "gpu-h100", "NAME", "accelerator profile, from the profiles file", NULL,
     NULL},
    {SET_PROFILES, "profiles", "profiles", S | W, 0, SETTING_TEXT, TEXT_LEN,
     NULL, "FILE",
     "profiles file; the scheduler's is the model it predicts with (default "
     "configs/profiles.yaml, else the one installed with the program)",
     NULL, NULL},
    {SET_BACKEND, "backend", "backend", W, W, SETTING_TEXT, TEXT_LEN, "sim",
     "SPEC", "sim, null, openai:URL[,OPTIONS] or plugin:PATH.so[:ARGS]",
     backend_spec_check, backend_spec_ready},
    {SET_MODEL, "model", "model", W, W, SETTING_TEXT, NAME_LEN, "codex-70b",
     "NAME", "model served", NULL, NULL},
    {SET_CAPACITY, "capacity", "capacity", W, W, SETTING_UINT, 1, 1000000, NULL,
     "N", "requests accepted at once (default 2 x the profile's max_batch)",
     NULL, NULL},
    {SET_DRAIN_TIMEOUT_MS, "drain_timeout_ms", "drain-timeout-ms", W, W,
     SETTING_UINT, 0, 86400000, "30000", "N",
     "after SIGTERM, longest wait in ms for running requests to finish; "
     "those still running then end with an error, and the worker exits",
     NULL, NULL},
    {SET_POLICY, "policy", "policy", S, S, SETTING_TEXT, NAME_LEN,
     "least_loaded", "NAME", "routing policy", check_policy, NULL},
    {SET_HEARTBEAT_MS, "heartbeat_ms", "heartbeat-ms", S | W, S, SETTING_UINT,
     10, 60000, "200", "N",
     "heartbeat interval in ms; the scheduler tells its workers its own", NULL,
     NULL},
    {SET_HEARTBEAT_MISS, "heartbeat_miss", "heartbeat-miss", S, S, SETTING_UINT,
     2, 1000, "5", "N",
     "silent heartbeat intervals before a worker counts as lost", NULL, NULL},
    {SET_QUEUE_LIMIT, "queue_limit", "queue-limit", S, S, SETTING_UINT, 0,
     10000000, "10000", "N", "admission queue bound per class", NULL, NULL},
    {SET_QUEUE_TIMEOUT_MS, "queue_timeout_ms", "queue-timeout-ms", S, S,
     SETTING_UINT, 1, 86400000, "30000", "N",
     "longest wait for capacity, in ms", NULL, NULL},
    {SET_MAX_ATTEMPTS, "max_attempts", "max-attempts", S, S, SETTING_UINT, 1,
     100, "3", "N", "dispatches of one request when workers are lost", NULL,
     NULL},
    {SET_PROGRESS_TIMEOUT_MS, "progress_timeout_ms", "progress-timeout-ms", S,
     S, SETTING_UINT, 1, 86400000, "10000", "N",
     "shortest wait in ms for a dispatched request's next token before it "
     "is taken back; 4x its predicted TTFT when longer",
     NULL, NULL},
    {SET_SLO, "slo", "slo", S, S, SETTING_TEXT, TEXT_LEN,
     "interactive=450+250:40,agent=2000+250:40,batch=30000+250:200", "LIST",
     "default SLOs by class, TTFT_MS[+MS_PER_1K]:TPOT_MS, the TTFT target "
     "growing by MS_PER_1K per 1,000 uncached prompt tokens; classes not "
     "named keep theirs",
     check_slo, NULL},
    {SET_LATENCY_WEIGHT, "latency_weight", "latency-weight", S, S, SETTING_TEXT,
     TEXT_LEN, "interactive=2,agent=1,batch=0", "LIST",
     "balanced: weight of latency against cost, by class", check_latency_weight,
     NULL},
    /* cache_affinity's defaults are SGLang's cache-aware router's. */
    {SET_CACHE_MATCH_THRESHOLD, "cache_match_threshold",
     "cache-match-threshold", S, S, SETTING_REAL, 0, 1, "0.3", "F",
     "cache_affinity: a match counts when it holds more than F of the "
     "request's blocks",
     NULL, NULL},
    {SET_CACHE_BALANCE_ABS, "cache_balance_abs", "cache-balance-abs", S, S,
     SETTING_UINT, 0, 1000000, "64", "N",
     "cache_affinity: a match is too loaded with more than N outstanding "
     "requests beyond the least loaded worker ...",
     NULL, NULL},
    {SET_CACHE_BALANCE_REL, "cache_balance_rel", "cache-balance-rel", S, S,
     SETTING_REAL, 0, 1000, "1.5", "X", "... and more than X times as many",
     NULL, NULL},
    /* kv_cost's defaults are Dynamo's KvRouterConfig's. */
    {SET_KV_PREFILL_SCALE, "kv_prefill_scale", "kv-prefill-scale", S, S,
     SETTING_REAL, 0, 1000, "1", "X",
     "kv_cost: weight of the prefill blocks (Dynamo's prefill_load_scale)",
     NULL, NULL},
    {SET_KV_OVERLAP_CREDIT, "kv_overlap_credit", "kv-overlap-credit", S, S,
     SETTING_REAL, 0, 1, "1", "X",
     "kv_cost: prefill blocks saved per cached block "
     "(overlap_score_credit)",
     NULL, NULL},
    {SET_KV_REQUEST_WEIGHT, "kv_request_weight", "kv-request-weight", S, S,
     SETTING_REAL, 0, 1000000, "0", "X",
     "kv_cost: cost of each outstanding request, in blocks "
     "(decode_active_request_weight)",
     NULL, NULL},
    {SET_KV_TEMPERATURE, "kv_temperature", "kv-temperature", S, S, SETTING_REAL,
     0, 1000, "0", "T",
     "kv_cost: softmax temperature; 0 takes the lowest cost "
     "(router_temperature)",
     NULL, NULL},
    /* weighted_score's defaults are llm-d's default scheduling profile's. */
    {SET_SCORE_QUEUE_WEIGHT, "score_queue_weight", "score-queue-weight", S, S,
     SETTING_REAL, 0, 1000, "2", "W",
     "weighted_score: weight of the queue score", NULL, NULL},
    {SET_SCORE_KV_WEIGHT, "score_kv_weight", "score-kv-weight", S, S,
     SETTING_REAL, 0, 1000, "2", "W",
     "weighted_score: weight of the KV-utilisation score", NULL, NULL},
    {SET_SCORE_PREFIX_WEIGHT, "score_prefix_weight", "score-prefix-weight", S,
     S, SETTING_REAL, 0, 1000, "3", "W",
     "weighted_score: weight of the prefix-match score", NULL, NULL},
    {SET_KWH_PRICE, "kwh_price", "kwh-price", S | W, S | W, SETTING_REAL, 0,
     100, "0.10", "USD", "energy price per kWh in costs", NULL, NULL},
    {SET_HTTP, "http", "http", S, S, SETTING_TEXT, TEXT_LEN, "127.0.0.1:8080",
     "ADDR",
     "HOST:PORT of the OpenAI-compatible HTTP API, /metrics and /healthz, "
     "or off",
     check_http, NULL},
    {SET_HTTP_MAX_BODY, "http_max_body", "http-max-body", S, S, SETTING_UINT,
     1024, 1 << 30, "8388608", "N", "largest HTTP request body, in bytes", NULL,
     NULL},
    {SET_HTTP_MAX_CONNS, "http_max_conns", "http-max-conns", S, S, SETTING_UINT,
     0, 1 << 20, "0", "N",
     "HTTP connections at once, 503 beyond; 0: the descriptor limit less a "
     "quarter, kept for workers and clients",
     NULL, NULL},
    {SET_API_KEYS, "api_keys", "api-keys", S, S, SETTING_TEXT, TEXT_LEN, NULL,
     "FILE",
     "API keys of the HTTP API, each with its tenant and default class "
     "(docs/http-api.md); requests without one get 401, /healthz and "
     "/metrics stay open (default: no keys, the API is open)",
     NULL, ready_api_keys},
    {SET_MAX_MSG_BYTES, "max_msg_bytes", "max-msg-bytes", S | W, S | W,
     SETTING_UINT, 1024, 1 << 30, "16777216", "N",
     "largest accepted message, in bytes", NULL, NULL},
    {SET_AUTH, "auth", "auth", S | W, S, SETTING_TEXT, 2, 3, "on", "MODE",
     "on: CURVE on the ZeroMQ ports, the scheduler admitting only the keys "
     "in KEYS/allowed/workers and KEYS/allowed/clients, workers and clients "
     "presenting theirs; off: none, for an open scheduler "
     "(docs/security.md)",
     check_auth, NULL},
    {SET_KEYS, "keys", "keys", S | W, S, SETTING_TEXT, TEXT_LEN, NULL, "DIR",
     "keys directory (default $XDG_STATE_HOME/infsched/keys, else "
     "~/.local/state/infsched/keys); the local keys are made "
     "there when missing",
     NULL, NULL},
    {SET_KEY, "key", "key", S | W, 0, SETTING_TEXT, TEXT_LEN, NULL, "FILE",
     "own secret key file, from infsched-keygen (default "
     "KEYS/scheduler.key_secret or KEYS/worker.key_secret)",
     NULL, NULL},
    {SET_SERVER_KEY, "server_key", "server-key", W, 0, SETTING_TEXT, TEXT_LEN,
     NULL, "FILE",
     "the scheduler's public key file (default KEYS/scheduler.key)", NULL,
     NULL},
    {SET_LOG_LEVEL, "log_level", "log-level", S | W, 0, SETTING_TEXT, 1, 16,
     "info", "LEVEL", "debug, info, warn or error", check_log_level, NULL},
    {SET_ROLE, "role", "role", W, W, SETTING_TEXT, 1, 16, "both", "ROLE",
     "what the worker runs of split requests (docs/disaggregation.md): "
     "both (whole requests and either half), prefill (only prefills) or "
     "decode (decodes and whole requests, never a prefill for another)",
     check_role, NULL},
    {SET_LINKS, "links", "links", S, 0, SETTING_TEXT, TEXT_LEN, NULL, "SPEC",
     "links that move a split request's KV, "
     "FROM>TO=GBPS[:LATENCY_US[:overlap]],... each side a worker id, profile, "
     "class or *; the most specific rule wins (default: every link 50 GB/s, "
     "20 us, no overlap)",
     check_links, NULL},
};

#undef S
#undef W

const setting_t *settings_get(setting_id_t id) {
  return (unsigned)id < SET_COUNT ? &table[id] : NULL;
}

const setting_t *settings_find(const char *name) {
  for (size_t i = 0; i < SET_COUNT; i++)
    if (strcmp(table[i].name, name) == 0)
      return &table[i];
  return NULL;
}

int settings_parse(const setting_t *s, const char *text, setting_value_t *v,
                   char *err, size_t errlen) {
  char *end;
  memset(v, 0, sizeof *v);
  errno = 0;
  switch (s->type) {
  case SETTING_UINT: {
    /* strtoull accepts "-1" and wraps it; refuse any sign up front. */
    if (!(*text >= '0' && *text <= '9')) {
      snprintf(err, errlen, "expected a whole number, got '%s'", text);
      return INFS_ECONFIG;
    }
    unsigned long long n = strtoull(text, &end, 10);
    if (errno || *end) {
      snprintf(err, errlen, "expected a whole number, got '%s'", text);
      return INFS_ECONFIG;
    }
    if ((double)n < s->min || (double)n > s->max) {
      snprintf(err, errlen, "%llu is out of range [%.0f, %.0f]", n, s->min,
               s->max);
      return INFS_ECONFIG;
    }
    v->u = n;
    return 0;
  }
  case SETTING_REAL: {
    double d = *text ? strtod(text, &end) : NAN;
    if (!*text || errno || *end || !isfinite(d)) {
      snprintf(err, errlen, "expected a number, got '%s'", text);
      return INFS_ECONFIG;
    }
    if (d < s->min || d > s->max) {
      snprintf(err, errlen, "%g is out of range [%g, %g]", d, s->min, s->max);
      return INFS_ECONFIG;
    }
    v->d = d;
    return 0;
  }
  case SETTING_TEXT: {
    size_t len = strlen(text);
    if (len < (size_t)s->min) {
      snprintf(err, errlen, "must not be empty");
      return INFS_ECONFIG;
    }
    if (len > (size_t)s->max) {
      snprintf(err, errlen, "longer than %.0f characters", s->max);
      return INFS_ECONFIG;
    }
    if (s->check && s->check(text, err, errlen))
      return INFS_ECONFIG;
    v->s = text;
    return 0;
  }
  }
  snprintf(err, errlen, "unknown type");
  return INFS_ECONFIG;
}

int settings_ready(const setting_t *s, const char *text, char *err,
                   size_t errlen) {
  return s->ready ? s->ready(text, err, errlen) : 0;
}

int settings_parse_flag(const setting_t *s, const char *text,
                        setting_value_t *v) {
  char err[512];
  if (settings_parse(s, text, v, err, sizeof err))
    return cli_usage_error("--%s: %s", s->flag, err);
  return 0;
}

size_t settings_options(unsigned who, struct option *opts) {
  size_t n = 0;
  for (size_t i = 0; i < SET_COUNT; i++)
    if (table[i].who & who)
      opts[n++] = (struct option){table[i].flag, required_argument, NULL,
                                  SETTING_OPT_BASE + (int)i};
  return n;
}

const setting_t *settings_from_opt(int val) {
  return settings_get((setting_id_t)(val - SETTING_OPT_BASE));
}

/* A flag's value, parsed by its setting and handed to the program. */
typedef struct apply {
  settings_apply_cb fn;
  void *ctx;
} apply_t;

static int apply_flag(void *ctx, int c, const char *arg) {
  const apply_t *a = ctx;
  const setting_t *s = settings_from_opt(c);
  setting_value_t v;
  if (!s)
    return CLI_NOT_MINE;
  if (settings_parse_flag(s, arg, &v))
    return -1;
  a->fn(a->ctx, s, &v);
  return 0;
}

int settings_parse_args(int argc, char **argv, unsigned who,
                        void (*usage)(FILE *f), settings_apply_cb apply,
                        void *ctx) {
  struct option opts[SET_COUNT + 3];
  size_t n = settings_options(who, opts);
  opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
  opts[n++] = (struct option){"version", no_argument, NULL, 'V'};
  opts[n] = (struct option){NULL, 0, NULL, 0};
  setting_value_t v;
  for (size_t i = 0; i < SET_COUNT; i++) {
    if ((table[i].who & who) && table[i].def) {
      if (settings_parse_flag(&table[i], table[i].def, &v))
        return -1;
      apply(ctx, &table[i], &v);
    }
  }
  apply_t a = {apply, ctx};
  return cli_parse_args(argc, argv, opts, usage, apply_flag, &a);
}

/* Prints text from column `col` on, wrapped before column 80 and indented
 * by `indent` on the lines it continues onto. */
static void wrap(FILE *f, const char *text, int col, int indent) {
  const char *p = text;
  while (*p) {
    size_t word = strcspn(p, " ");
    if (col > indent && col + 1 + (int)word > 79) {
      fprintf(f, "\n%*s", indent, "");
      col = indent;
    } else if (col > indent) {
      fputc(' ', f);
      col++;
    }
    fwrite(p, 1, word, f);
    col += (int)word;
    p += word;
    while (*p == ' ')
      p++;
  }
  fputc('\n', f);
}

void settings_usage(FILE *f, unsigned who) {
  for (size_t i = 0; i < SET_COUNT; i++)
    if (table[i].who & who)
      settings_usage_one(f, &table[i]);
}

void settings_usage_one(FILE *f, const setting_t *s) {
  char head[64], text[512];
  int col = snprintf(head, sizeof head, "  --%s %s", s->flag, s->metavar);
  fputs(head, f);
  if (col > 22) {
    fprintf(f, "\n%24s", "");
  } else {
    fprintf(f, "%*s", 24 - col, "");
  }
  if (s->def)
    snprintf(text, sizeof text, "%s (default %s)", s->help, s->def);
  else
    snprintf(text, sizeof text, "%s", s->help);
  wrap(f, text, 24, 24);
}

void settings_markdown(FILE *f) {
  fprintf(f, "| key | flag | read by | in a cluster file | value | default "
             "| meaning |\n"
             "|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < SET_COUNT; i++) {
    const setting_t *s = &table[i];
    const char *who = s->who == (SETTING_SCHEDULER | SETTING_WORKER) ? "both"
                      : s->who == SETTING_SCHEDULER ? "scheduler"
                                                    : "worker";
    const char *where = s->cluster == (SETTING_SCHEDULER | SETTING_WORKER)
                            ? "`scheduler:`, worker entries"
                        : s->cluster == SETTING_SCHEDULER ? "`scheduler:`"
                        : s->cluster == SETTING_WORKER    ? "worker entries"
                                                       : "set by the launcher";
    char value[64];
    if (s->type == SETTING_UINT)
      snprintf(value, sizeof value, "%.0f to %.0f", s->min, s->max);
    else if (s->type == SETTING_REAL)
      snprintf(value, sizeof value, "%g to %g", s->min, s->max);
    else
      snprintf(value, sizeof value, "%s", s->metavar);
    fprintf(f, "| `%s` | `--%s` | %s | %s | %s | %s%s%s | %s |\n", s->name,
            s->flag, who, where, value, s->def ? "`" : "",
            s->def ? s->def : "see meaning", s->def ? "`" : "", s->help);
  }
}

int settings_apply_auth(infs_auth_t *a, const setting_t *s,
                        const setting_value_t *v) {
  switch (s->id) {
  case SET_AUTH:
    a->off = strcmp(v->s, "off") == 0;
    return 0;
  case SET_KEYS:
    a->dir = v->s;
    return 0;
  case SET_KEY:
    a->key = v->s;
    return 0;
  case SET_SERVER_KEY:
    a->server_key = v->s;
    return 0;
  default:
    return 1;
  }
}
