/* Loads configs/profiles.yaml with libyaml's document API, which keeps each
 * node's position so that every complaint names its line.
 *
 *   profiles:
 *     gpu-h100:
 *       class: gpu
 *       price_per_hour: 10.68
 *       ...
 *
 * Numbers must be plain (unquoted) scalars; every field below is required
 * unless it has a default. */
#include "infsched/profile.h"

#include "infsched/errors.h"
#include "profile_fields.h"
#include "ydoc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct profile_set {
  infs_profile_t *v;
  size_t n;
};

typedef enum field_type { F_DOUBLE, F_U32, F_BOOL, F_CLASS } field_type_t;

typedef struct field {
  const char *name;
  field_type_t type;
  size_t off;
  int required;
} field_t;

#define FD(n, t, req)                                                          \
  { #n, t, offsetof(infs_profile_t, n), req }
static const field_t fields[] = {
    {"class", F_CLASS, offsetof(infs_profile_t, cls), 1},
    FD(price_per_hour, F_DOUBLE, 1),
    FD(power_idle_w, F_DOUBLE, 1),
    FD(power_busy_w, F_DOUBLE, 1),
    FD(weights_gb, F_DOUBLE, 1),
    FD(params_b, F_DOUBLE, 1),
    FD(kv_kb_per_token, F_DOUBLE, 1),
    FD(attn_mflop_per_ctx, F_DOUBLE, 0),
    FD(mem_bw_gbs, F_DOUBLE, 1),
    FD(mem_eff, F_DOUBLE, 1),
    FD(peak_tflops, F_DOUBLE, 1),
    FD(mfu, F_DOUBLE, 1),
    FD(step_overhead_ms, F_DOUBLE, 0),
    FD(per_seq_ms, F_DOUBLE, 1),
    FD(max_batch, F_U32, 1),
    FD(kv_tokens, F_U32, 1),
    FD(max_context, F_U32, 1),
    FD(block_size, F_U32, 1),
    FD(max_num_batched_tokens, F_U32, 0),
    FD(slo_aware_prefill, F_BOOL, 0),
    FD(usd_per_mtok_in, F_DOUBLE, 0),
    FD(usd_per_mtok_out, F_DOUBLE, 0),
};
#undef FD
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* Fields of the first timing model (a fitted line for decode steps and a
 * prefill rate), which the roofline replaced: a file that still has them
 * was written for it, and its figures would be silently dropped. */
static const char *const removed_fields[] = {
    "prefill_tps", "prefill_attn_per_kctx", "base_ms", "per_kctx_ms"};

/* Defaults of the optional fields; every other field is required. */
static void profile_defaults(infs_profile_t *p) {
  memset(p, 0, sizeof *p);
  p->max_num_batched_tokens = INFS_PROFILE_DEFAULT_BATCHED_TOKENS;
  p->attn_mflop_per_ctx = 0;
  p->step_overhead_ms = 0;
  p->usd_per_mtok_in = 0;
  p->usd_per_mtok_out = 0;
}

typedef struct loader {
  ydoc_t *d;
} loader_t;

/* Writes "FILE:LINE: [profile 'P': ][field 'F': ]why" and returns
 * INFS_ECONFIG. */
static int fail(loader_t *l, int line, const char *profile, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(loader_t *l, int line, const char *profile, const char *field,
                const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return ydoc_fail(l->d, line, "%s%s%s%s%s%s%s", profile ? "profile '" : "",
                   profile ? profile : "", profile ? "': " : "",
                   field ? "field '" : "", field ? field : "",
                   field ? "': " : "", why);
}

/* Parses the text s (quoted: it was not a plain YAML scalar) of field f
 * into p. Returns 0, or -1 with what is wrong in why. */
static int parse_text(const field_t *f, const char *s, int quoted,
                      infs_profile_t *p, char *why, size_t whylen) {
  void *dst = (char *)p + f->off;
  if (f->type == F_BOOL) {
    if (!quoted && strcmp(s, "true") == 0)
      *(bool *)dst = true;
    else if (!quoted && strcmp(s, "false") == 0)
      *(bool *)dst = false;
    else
      goto bad;
    return 0;
  }
  if (f->type == F_CLASS) {
    infs_worker_class_t c;
    if (infs_worker_class_parse(s, &c)) {
      snprintf(why, whylen, "unknown class '%s' (expected gpu, sram or tpu)",
               s);
      return -1;
    }
    *(infs_worker_class_t *)dst = c;
    return 0;
  }

  char *end;
  errno = 0;
  if (f->type == F_DOUBLE) {
    double d = quoted || *s == '\0' ? NAN : strtod(s, &end);
    if (quoted || *s == '\0' || errno || *end != '\0' || !isfinite(d))
      goto bad;
    *(double *)dst = d;
    return 0;
  }
  /* strtoull accepts "-1" and wraps it; refuse any sign up front. */
  unsigned long long u = 0;
  int ok = !quoted && *s >= '0' && *s <= '9';
  if (ok) {
    u = strtoull(s, &end, 10);
    ok = !errno && *end == '\0';
  }
  if (!ok)
    goto bad;
  if (u > UINT32_MAX) {
    snprintf(why, whylen, "%llu is too large (at most %u)", u,
             (unsigned)UINT32_MAX);
    return -1;
  }
  *(uint32_t *)dst = (uint32_t)u;
  return 0;
bad:
  snprintf(why, whylen, "expected %s, got %s'%s'",
           f->type == F_BOOL     ? "true or false"
           : f->type == F_DOUBLE ? "a number"
                                 : "a whole number >= 0",
           quoted ? "the string " : "", s);
  return -1;
}

static int parse_value(loader_t *l, const char *pname, const field_t *f,
                       const yaml_node_t *v, infs_profile_t *p) {
  int line = ydoc_line(v);
  if (v->type != YAML_SCALAR_NODE)
    return fail(l, line, pname, f->name, "expected %s, got %s",
                f->type == F_CLASS  ? "gpu, sram or tpu"
                : f->type == F_BOOL ? "true or false"
                                    : "a number",
                ydoc_kind(v));
  char why[256];
  if (parse_text(f, ydoc_scalar(v),
                 v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE, p, why,
                 sizeof why))
    return fail(l, line, pname, f->name, "%s", why);
  return 0;
}

static int load_profile(loader_t *l, const yaml_node_t *key,
                        const yaml_node_t *body, infs_profile_t *p) {
  const char *pname = ydoc_scalar(key);
  int pline = ydoc_line(key);
  const yaml_node_t *seen[N_FIELDS] = {0};

  profile_defaults(p);
  if (*pname == '\0')
    return fail(l, pline, NULL, NULL, "a profile name must not be empty");
  if (strlen(pname) >= sizeof p->name)
    return fail(l, pline, pname, NULL, "name longer than %zu characters",
                sizeof p->name - 1);
  memcpy(p->name, pname, strlen(pname) + 1);
  if (body->type != YAML_MAPPING_NODE)
    return fail(l, ydoc_line(body), pname, NULL,
                "expected a mapping of fields, got %s", ydoc_kind(body));

  for (yaml_node_pair_t *kv = body->data.mapping.pairs.start;
       kv < body->data.mapping.pairs.top; kv++) {
    const yaml_node_t *k = ydoc_node(l->d, kv->key);
    const yaml_node_t *v = ydoc_node(l->d, kv->value);
    if (k->type != YAML_SCALAR_NODE)
      return fail(l, ydoc_line(k), pname, NULL, "expected a field name, got %s",
                  ydoc_kind(k));
    size_t i = 0;
    while (i < N_FIELDS && strcmp(fields[i].name, ydoc_scalar(k)) != 0)
      i++;
    if (i == N_FIELDS) {
      for (size_t j = 0; j < sizeof removed_fields / sizeof removed_fields[0];
           j++)
        if (strcmp(removed_fields[j], ydoc_scalar(k)) == 0)
          return fail(l, ydoc_line(k), pname, ydoc_scalar(k),
                      "no longer used: step times come from the roofline "
                      "fields (weights_gb, mem_bw_gbs, peak_tflops, ...; "
                      "see docs/serving-model.md)");
      if (strcmp(ydoc_scalar(k), "prefix_cache_blocks") == 0)
        return fail(l, ydoc_line(k), pname, ydoc_scalar(k),
                    "no longer used: cached prefixes live in the free "
                    "blocks of the KV pool (kv_tokens / block_size)");
      if (strcmp(ydoc_scalar(k), "prefill_chunk") == 0)
        return fail(l, ydoc_line(k), pname, ydoc_scalar(k),
                    "no longer used: max_num_batched_tokens is the step's "
                    "token budget, shared by decode tokens and prefill "
                    "chunks");
      return fail(l, ydoc_line(k), pname, ydoc_scalar(k), "unknown field");
    }
    if (seen[i])
      return fail(l, ydoc_line(k), pname, fields[i].name,
                  "given twice (first on line %d)", ydoc_line(seen[i]));
    seen[i] = k;
    int rc = parse_value(l, pname, &fields[i], v, p);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < N_FIELDS; i++)
    if (fields[i].required && !seen[i])
      return fail(l, pline, pname, fields[i].name, "missing");

  const char *bad_field = NULL;
  char why[160];
  if (profile_validate(p, &bad_field, why, sizeof why)) {
    int line = pline;
    for (size_t i = 0; i < N_FIELDS; i++)
      if (seen[i] && strcmp(fields[i].name, bad_field) == 0)
        line = ydoc_line(seen[i]);
    return fail(l, line, pname, bad_field, "%s", why);
  }
  return 0;
}

static int load_document(loader_t *l, profile_set_t *set) {
  const yaml_node_t *root = ydoc_root(l->d);
  if (!root)
    return fail(l, 1, NULL, NULL, "empty file (expected 'profiles:')");
  if (root->type != YAML_MAPPING_NODE)
    return fail(l, ydoc_line(root), NULL, NULL,
                "expected a mapping with 'profiles:', got %s", ydoc_kind(root));

  const yaml_node_t *list = NULL;
  for (yaml_node_pair_t *kv = root->data.mapping.pairs.start;
       kv < root->data.mapping.pairs.top; kv++) {
    const yaml_node_t *k = ydoc_node(l->d, kv->key);
    if (k->type != YAML_SCALAR_NODE || strcmp(ydoc_scalar(k), "profiles") != 0)
      return fail(l, ydoc_line(k), NULL, NULL,
                  "unknown top-level key (expected only 'profiles:')");
    if (list)
      return fail(l, ydoc_line(k), NULL, NULL, "'profiles:' given twice");
    list = ydoc_node(l->d, kv->value);
  }
  if (!list)
    return fail(l, ydoc_line(root), NULL, NULL, "no 'profiles:' mapping");
  if (list->type != YAML_MAPPING_NODE)
    return fail(l, ydoc_line(list), NULL, NULL,
                "'profiles:' must map names to profiles, got %s",
                ydoc_kind(list));

  size_t n =
      (size_t)(list->data.mapping.pairs.top - list->data.mapping.pairs.start);
  if (n == 0)
    return fail(l, ydoc_line(list), NULL, NULL, "no profiles defined");
  set->v = calloc(n, sizeof *set->v);
  if (!set->v)
    return -ENOMEM;

  for (size_t i = 0; i < n; i++) {
    yaml_node_pair_t *kv = &list->data.mapping.pairs.start[i];
    const yaml_node_t *k = ydoc_node(l->d, kv->key);
    const yaml_node_t *v = ydoc_node(l->d, kv->value);
    if (k->type != YAML_SCALAR_NODE)
      return fail(l, ydoc_line(k), NULL, NULL,
                  "expected a profile name, got %s", ydoc_kind(k));
    for (size_t j = 0; j < i; j++) {
      yaml_node_pair_t *prev = &list->data.mapping.pairs.start[j];
      const yaml_node_t *pk = ydoc_node(l->d, prev->key);
      if (strcmp(ydoc_scalar(pk), ydoc_scalar(k)) == 0)
        return fail(l, ydoc_line(k), ydoc_scalar(k), NULL,
                    "defined twice (first on line %d)", ydoc_line(pk));
    }
    int rc = load_profile(l, k, v, &set->v[i]);
    if (rc)
      return rc;
    set->n++;
  }
  return 0;
}

int profile_set_load(const char *path, profile_set_t **out, char *err,
                     size_t errlen) {
  ydoc_t d;
  loader_t l = {&d};
  *out = NULL;
  int rc = ydoc_load(&d, path, err, errlen);
  if (rc)
    return rc;
  profile_set_t *set = calloc(1, sizeof *set);
  rc = set ? load_document(&l, set) : -ENOMEM;
  if (rc == 0) {
    *out = set;
    set = NULL;
  }
  ydoc_free(&d);
  profile_set_destroy(&set);
  if (rc == -ENOMEM)
    snprintf(err, errlen, "%s: out of memory", path);
  return rc;
}

void profile_set_destroy(profile_set_t **set) {
  if (*set) {
    free((*set)->v);
    free(*set);
    *set = NULL;
  }
}

const infs_profile_t *profile_set_find(const profile_set_t *set,
                                       const char *name) {
  for (size_t i = 0; i < set->n; i++)
    if (strcmp(set->v[i].name, name) == 0)
      return &set->v[i];
  return NULL;
}

size_t profile_set_count(const profile_set_t *set) {
  return set->n;
}

const infs_profile_t *profile_set_at(const profile_set_t *set, size_t i) {
  return i < set->n ? &set->v[i] : NULL;
}

/* --- fields by name (lib/profile_fields.h) --- */

int profile_set_field(infs_profile_t *p, const char *name, const char *value,
                      char *why, size_t whylen) {
  for (size_t i = 0; i < N_FIELDS; i++)
    if (strcmp(fields[i].name, name) == 0)
      return parse_text(&fields[i], value, 0, p, why, whylen) ? INFS_ECONFIG
                                                              : 0;
  snprintf(why, whylen, "unknown field '%s'", name);
  return INFS_EUNKNOWN;
}

/* The shortest decimal that reads back as v, whole numbers in full. */
static void shortest(char *buf, size_t len, double v) {
  if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(buf, len, "%.0f", v);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, len, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      return;
  }
}

void profile_format(buf_t *out, const infs_profile_t *p, profile_note_cb note,
                    void *arg) {
  buf_printf(out, "  %s:\n", p->name);
  for (size_t i = 0; i < N_FIELDS; i++) {
    const field_t *f = &fields[i];
    const void *src = (const char *)p + f->off;
    char text[64];
    switch (f->type) {
    case F_DOUBLE:
      shortest(text, sizeof text, *(const double *)src);
      break;
    case F_U32:
      snprintf(text, sizeof text, "%u", *(const uint32_t *)src);
      break;
    case F_BOOL:
      snprintf(text, sizeof text, "%s", *(const bool *)src ? "true" : "false");
      break;
    case F_CLASS:
      snprintf(text, sizeof text, "%s",
               infs_worker_class_name(*(const infs_worker_class_t *)src));
      break;
    }
    const char *n = note ? note(arg, f->name) : NULL;
    buf_printf(out, "    %s: %s%s%s\n", f->name, text, n ? "  # " : "",
               n ? n : "");
  }
}
