/* The codex workload's knobs: defaults, setting one by name from text (the
 * flags and the workload file share this), cross-checks, and the YAML
 * workload file (libyaml's document API, so every complaint names a line).
 * configs/workloads/codex.yaml repeats the defaults with their sources. */
#include "workload_impl.h"

#include "infsched/errors.h"
#include "ydoc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum knob_type { K_U32, K_DOUBLE, K_DIST, K_MIX } knob_type_t;

typedef struct knob {
  const char *name;
  knob_type_t type;
  size_t off;
  double min; /* numbers only */
  double max;
} knob_t;

#define KN(n, t, lo, hi)                                                       \
  { #n, t, offsetof(workload_codex_config_t, n), lo, hi }
static const knob_t knobs[] = {
    KN(sessions, K_U32, 0, 1000000),
    KN(session_rate, K_DOUBLE, 0, 1e6),
    KN(start_spread_s, K_DOUBLE, 0, 86400),
    KN(mix, K_MIX, 0, 0),
    KN(turns, K_DIST, 0, 0),
    KN(steps, K_DIST, 0, 0),
    KN(system_tokens, K_U32, 0, 1u << 24),
    KN(repo_tokens, K_DIST, 0, 0),
    KN(user_tokens, K_DIST, 0, 0),
    KN(tool_tokens, K_DIST, 0, 0),
    KN(answer_tokens, K_DIST, 0, 0),
    KN(question_tokens, K_DIST, 0, 0),
    KN(completion_tokens, K_DIST, 0, 0),
    KN(job_tokens, K_DIST, 0, 0),
    KN(job_output_tokens, K_DIST, 0, 0),
    KN(tool_ms, K_DIST, 0, 0),
    KN(think_ms, K_DIST, 0, 0),
    KN(max_context, K_U32, 1024, 1u << 24),
    KN(summary_tokens, K_U32, 0, 1u << 24),
};
#undef KN
#define N_KNOBS (sizeof knobs / sizeof knobs[0])

static workload_dist_t lognormal(double median, double sigma, uint32_t min,
                                 uint32_t max) {
  return (workload_dist_t){WORKLOAD_DIST_LOGNORMAL, median, sigma, min, max};
}

/* Sources are in configs/workloads/codex.yaml; [S] and [E] as in
 * docs/reference-numbers.md. */
void workload_codex_config_default(workload_codex_config_t *c) {
  memset(c, 0, sizeof *c);
  c->sessions = 8;
  c->session_rate = 0;
  c->start_spread_s = 5;
  c->mix[INFS_CLASS_INTERACTIVE] = 0.3;
  c->mix[INFS_CLASS_AGENT] = 0.6;
  c->mix[INFS_CLASS_BATCH] = 0.1;
  /* Means 3.95 turns per session and 7.8 calls per turn (Copilot agent). */
  c->turns = lognormal(3.3, 0.6, 1, 20);
  c->steps = lognormal(6.1, 0.7, 1, 60);
  c->system_tokens = 4096;
  c->repo_tokens = lognormal(12288, 0.6, 2048, 49152);
  c->user_tokens = lognormal(128, 1.0, 8, 4096);
  /* TraceLab, Codex per step: appended median 886 (p90 8,310), output
   * median 184 (p90 939); tool call median 0.3 s (p90 13.6 s). */
  c->tool_tokens = lognormal(700, 1.75, 16, 32768);
  c->answer_tokens = lognormal(184, 1.27, 8, 4096);
  c->question_tokens = lognormal(48, 1.0, 4, 1024);
  c->completion_tokens = lognormal(13, 1.239, 1, 256);
  c->job_tokens = lognormal(256, 0.8, 16, 4096);
  c->job_output_tokens = lognormal(1024, 0.7, 64, 8192);
  c->tool_ms = lognormal(300, 2.98, 10, 120000);
  c->think_ms = lognormal(120000, 1.0, 5000, 1800000);
  c->max_context = 131072;
  c->summary_tokens = 4096;
}

static const knob_t *knob_find(const char *name) {
  for (size_t i = 0; i < N_KNOBS; i++)
    if (strcmp(knobs[i].name, name) == 0)
      return &knobs[i];
  return NULL;
}

static void list_knobs(char *buf, size_t len) {
  size_t w = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < N_KNOBS && w < len; i++) {
    int n = snprintf(buf + w, len - w, "%s%s", i ? ", " : "", knobs[i].name);
    if (n < 0)
      break;
    w += (size_t)n;
  }
}

int workload_codex_config_set(workload_codex_config_t *c, const char *key,
                              const char *value, char *err, size_t errlen) {
  const knob_t *k = knob_find(key);
  if (!k) {
    char names[512];
    list_knobs(names, sizeof names);
    return workload_errf(INFS_EUNKNOWN, err, errlen,
                         "unknown knob '%s' (known: %s)", key, names);
  }
  void *dst = (char *)c + k->off;
  char why[256];
  char *end;
  errno = 0;
  switch (k->type) {
  case K_U32: {
    unsigned long long v = 0;
    bool ok = *value >= '0' && *value <= '9';
    if (ok) {
      v = strtoull(value, &end, 10);
      ok = !errno && *end == '\0' && v >= k->min && v <= k->max;
    }
    if (!ok)
      return workload_errf(INFS_ECONFIG, err, errlen,
                           "expected a whole number in [%.0f, %.0f], got "
                           "'%s'",
                           k->min, k->max, value);
    *(uint32_t *)dst = (uint32_t)v;
    return 0;
  }
  case K_DOUBLE: {
    double v = strtod(value, &end);
    if (end == value || errno || *end || !isfinite(v) || v < k->min ||
        v > k->max)
      return workload_errf(INFS_ECONFIG, err, errlen,
                           "expected a number in [%g, %g], got '%s'", k->min,
                           k->max, value);
    *(double *)dst = v;
    return 0;
  }
  case K_DIST:
    if (workload_parse_dist(value, dst, why, sizeof why))
      return workload_errf(INFS_ECONFIG, err, errlen, "%s", why);
    return 0;
  case K_MIX:
    if (workload_parse_class_mix(value, dst, why, sizeof why))
      return workload_errf(INFS_ECONFIG, err, errlen, "%s", why);
    return 0;
  }
  return INFS_ECONFIG;
}

static int bad(const char **key, const char *name, char *err, size_t errlen,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int bad(const char **key, const char *name, char *err, size_t errlen,
               const char *fmt, ...) {
  if (key)
    *key = name;
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return INFS_ECONFIG;
}

int workload_codex_config_check(const workload_codex_config_t *c,
                                const char **key, char *err, size_t errlen) {
  if (key)
    *key = NULL;
  if (c->sessions == 0 && !(c->session_rate > 0))
    return bad(key, "sessions", err, errlen,
               "no sessions: set sessions or session_rate above 0");
  double mix = 0;
  for (int i = 0; i < INFS_CLASS_COUNT; i++)
    mix += c->mix[i];
  if (!(mix > 0))
    return bad(key, "mix", err, errlen, "the mix needs a positive weight");
  if (c->system_tokens > c->max_context / 4)
    return bad(key, "system_tokens", err, errlen,
               "%u system tokens leave too little of max_context %u (at most "
               "a quarter)",
               c->system_tokens, c->max_context);
  /* The distributions were checked when parsed; these came from code. */
  for (size_t i = 0; i < N_KNOBS; i++) {
    if (knobs[i].type != K_DIST)
      continue;
    const workload_dist_t *d =
        (const workload_dist_t *)((const char *)c + knobs[i].off);
    if (!(d->median >= 1) || d->min < 1 || d->min > d->max ||
        !(d->sigma >= 0 && d->sigma <= 10))
      return bad(key, knobs[i].name, err, errlen,
                 "need median >= 1, sigma in [0, 10] and 1 <= min <= max");
  }
  return 0;
}

/* --- the workload file --- */

typedef struct loader {
  ydoc_t *d;
} loader_t;

/* Writes "FILE:LINE: [key 'K': ]why" and returns INFS_ECONFIG. */
static int fail(loader_t *l, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(loader_t *l, int line, const char *key, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return ydoc_fail(l->d, line, "%s%s%s%s", key ? "key '" : "", key ? key : "",
                   key ? "': " : "", why);
}

/* The mix may also be written as a mapping, {interactive: 0.3, ...}: it is
 * turned into the flag's text form. */
static int mix_text(loader_t *l, const yaml_node_t *v, char *buf, size_t len) {
  size_t w = 0;
  buf[0] = '\0';
  for (yaml_node_pair_t *kv = v->data.mapping.pairs.start;
       kv < v->data.mapping.pairs.top; kv++) {
    const yaml_node_t *k = ydoc_node(l->d, kv->key);
    const yaml_node_t *x = ydoc_node(l->d, kv->value);
    if (k->type != YAML_SCALAR_NODE || x->type != YAML_SCALAR_NODE)
      return fail(l, ydoc_line(k), "mix", "expected CLASS: WEIGHT pairs");
    int n = snprintf(buf + w, len - w, "%s%s=%s", w ? "," : "", ydoc_scalar(k),
                     ydoc_scalar(x));
    if (n < 0 || (size_t)n >= len - w)
      return fail(l, ydoc_line(k), "mix", "too long");
    w += (size_t)n;
  }
  if (w == 0)
    return fail(l, ydoc_line(v), "mix", "empty mapping");
  return 0;
}

static int load_document(loader_t *l, workload_codex_config_t *c) {
  const yaml_node_t *root = ydoc_root(l->d);
  const yaml_node_t *seen[N_KNOBS] = {0};
  char why[512];
  if (!root)
    return fail(l, 1, NULL,
                "empty file (expected a mapping of knobs; {} for "
                "all defaults)");
  if (root->type != YAML_MAPPING_NODE)
    return fail(l, ydoc_line(root), NULL, "expected a mapping of knobs");
  for (yaml_node_pair_t *kv = root->data.mapping.pairs.start;
       kv < root->data.mapping.pairs.top; kv++) {
    const yaml_node_t *k = ydoc_node(l->d, kv->key);
    const yaml_node_t *v = ydoc_node(l->d, kv->value);
    if (k->type != YAML_SCALAR_NODE)
      return fail(l, ydoc_line(k), NULL, "expected a knob name");
    const knob_t *kn = knob_find(ydoc_scalar(k));
    if (!kn) {
      workload_codex_config_set(c, ydoc_scalar(k), "", why, sizeof why);
      return fail(l, ydoc_line(k), NULL, "%s", why);
    }
    size_t i = (size_t)(kn - knobs);
    if (seen[i])
      return fail(l, ydoc_line(k), kn->name, "given twice (first on line %d)",
                  ydoc_line(seen[i]));
    seen[i] = k;
    char text[512];
    const char *value;
    if (v->type == YAML_SCALAR_NODE) {
      value = ydoc_scalar(v);
    } else if (v->type == YAML_MAPPING_NODE && kn->type == K_MIX) {
      int rc = mix_text(l, v, text, sizeof text);
      if (rc)
        return rc;
      value = text;
    } else {
      return fail(l, ydoc_line(v), kn->name, "expected a single value");
    }
    if (workload_codex_config_set(c, kn->name, value, why, sizeof why))
      return fail(l, ydoc_line(v), kn->name, "%s", why);
  }
  const char *key;
  if (workload_codex_config_check(c, &key, why, sizeof why)) {
    int line = ydoc_line(root);
    const knob_t *kn = key ? knob_find(key) : NULL;
    if (kn && seen[kn - knobs])
      line = ydoc_line(seen[kn - knobs]);
    return fail(l, line, key, "%s", why);
  }
  return 0;
}

int workload_codex_config_load(workload_codex_config_t *c, const char *path,
                               char *err, size_t errlen) {
  ydoc_t d;
  loader_t l = {&d};
  workload_codex_config_t work = *c;
  int rc = ydoc_load(&d, path, err, errlen);
  if (rc)
    return rc;
  rc = load_document(&l, &work);
  if (rc == 0)
    *c = work;
  ydoc_free(&d);
  return rc;
}
