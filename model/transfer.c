/* Links and KV transfer time.
 *
 * A transfer of B bytes over a link of G GB/s takes X = B / G, plus the
 * link's latency. Without overlap D pulls once P's prefill has ended, so
 * all of it lands in the first token gap. With overlap P streams each of
 * the model's L layers' share of the KV as soon as its prefill has passed
 * that layer: over a prefill of T, layer i is ready at T * i / L, and the
 * link sends the shares one after another, each taking X / L. The last
 * share then arrives at max(T + X / L, T / L + X) (the latest of
 * T * k / L + (L - k + 1) * X / L over k, a line in k, so an end point):
 * what is visible after the prefill ends is
 *
 *   latency + max(X / L, X - T * (L - 1) / L)
 *
 * one layer's share when the link keeps up with the prefill, and the
 * transfer less what ran beside the prefill when it does not. Tokens P
 * had cached are counted as if they streamed with the prefill too, which
 * errs towards the slow side. */
#include "transfer.h"

#include "infsched/errors.h"
#include "xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct link_rule {
  char from[INFS_NAME_MAX];
  char to[INFS_NAME_MAX];
  infs_link_t link;
} link_rule_t;

struct link_table {
  link_rule_t *rules;
  size_t n;
};

/* Characters that end a name in a rule. */
static const char separators[] = ",>=: \t";

/* Copies the name at *s up to one of stop into out; returns its length,
 * 0 for none or one too long (the caller says which). */
static size_t take_name(const char **s, const char *stop, char *out) {
  size_t n = strcspn(*s, stop);
  if (n == 0 || n >= INFS_NAME_MAX || strcspn(*s, separators) < n)
    return 0;
  memcpy(out, *s, n);
  out[n] = '\0';
  *s += n;
  return n;
}

/* Parses one rule from text[0..len) into r; 0, or a reason. */
static const char *parse_rule(const char *text, size_t len, link_rule_t *r) {
  char buf[3 * INFS_NAME_MAX + 64];
  if (len >= sizeof buf)
    return "rule too long";
  memcpy(buf, text, len);
  buf[len] = '\0';
  const char *s = buf;
  if (!take_name(&s, ">", r->from) || *s != '>')
    return "expected FROM>TO=GBPS: a worker id, profile, class or '*' "
           "before '>'";
  s++;
  if (!take_name(&s, "=", r->to) || *s != '=')
    return "expected a worker id, profile, class or '*' between '>' and '='";
  s++;
  char *end;
  r->link = (infs_link_t){0, LINK_DEFAULT_LATENCY_US, false};
  r->link.gbps = *s ? strtod(s, &end) : NAN;
  if (!*s || end == s || !isfinite(r->link.gbps) || r->link.gbps <= 0 ||
      r->link.gbps > LINK_GBPS_MAX || (*end && *end != ':'))
    return "bandwidth must be a number of GB/s above 0 and at most 1e6";
  s = end;
  if (*s == ':') {
    s++;
    r->link.latency_us = *s ? strtod(s, &end) : NAN;
    if (!*s || end == s || !isfinite(r->link.latency_us) ||
        r->link.latency_us < 0 || r->link.latency_us > LINK_LATENCY_US_MAX ||
        (*end && *end != ':'))
      return "latency must be a number of microseconds from 0 to 6e7";
    s = end;
  }
  if (*s == ':') {
    s++;
    if (strcmp(s, "overlap") != 0)
      return "the third field can only be 'overlap'";
    r->link.overlap = true;
  }
  return NULL;
}

int link_table_parse(const char *spec, link_table_t **out, char *err,
                     size_t errlen) {
  *out = NULL;
  if (!spec || !*spec) {
    snprintf(err, errlen, "links: no rules (e.g. 'tpu>gpu=50:20:overlap')");
    return INFS_ECONFIG;
  }
  link_table_t *t = xcalloc(1, sizeof *t);
  size_t cap = 0;
  for (const char *s = spec;; s++) {
    size_t len = strcspn(s, ",");
    link_rule_t r;
    const char *why = parse_rule(s, len, &r);
    for (size_t i = 0; !why && i < t->n; i++)
      if (!strcmp(t->rules[i].from, r.from) && !strcmp(t->rules[i].to, r.to))
        why = "a second rule for the same FROM>TO";
    if (why) {
      snprintf(err, errlen, "links: rule %zu '%.*s': %s", t->n + 1,
               (int)(len < 80 ? len : 80), s, why);
      link_table_free(&t);
      return INFS_ECONFIG;
    }
    t->rules = xgrow(t->rules, &cap, t->n + 1, sizeof *t->rules);
    t->rules[t->n++] = r;
    s += len;
    if (!*s)
      break;
  }
  *out = t;
  return 0;
}

void link_table_free(link_table_t **t) {
  if (*t) {
    free((*t)->rules);
    free(*t);
    *t = NULL;
  }
}

size_t link_table_count(const link_table_t *t) {
  return t ? t->n : 0;
}

/* How specifically name picks the worker: -1 when it does not. */
static int side_weight(const char *name, const char *id,
                       const infs_profile_t *p) {
  if (id && !strcmp(name, id))
    return 9;
  if (p && !strcmp(name, p->name))
    return 3;
  if (p && !strcmp(name, infs_worker_class_name(p->cls)))
    return 1;
  return strcmp(name, "*") ? -1 : 0;
}

infs_link_t link_find(const link_table_t *t, const char *from_id,
                      const infs_profile_t *from, const char *to_id,
                      const infs_profile_t *to) {
  infs_link_t best = {LINK_DEFAULT_GBPS, LINK_DEFAULT_LATENCY_US,
                      LINK_DEFAULT_OVERLAP};
  int best_weight = -1;
  for (size_t i = 0; t && i < t->n; i++) {
    int a = side_weight(t->rules[i].from, from_id, from);
    int b = side_weight(t->rules[i].to, to_id, to);
    if (a >= 0 && b >= 0 && a + b > best_weight) {
      best = t->rules[i].link;
      best_weight = a + b;
    }
  }
  return best;
}

uint64_t kv_transfer_bytes(const infs_profile_t *p, uint32_t tokens) {
  return (uint64_t)llround((double)tokens * p->kv_kb_per_token * 1024.0);
}

double kv_transfer_visible_us(const infs_link_t *l, uint64_t bytes,
                              double prefill_us) {
  if (bytes == 0)
    return 0;
  if (!(l->gbps > 0))
    return INFINITY;
  /* 1 GB/s moves 1,000 bytes a microsecond. */
  double x = (double)bytes / (l->gbps * 1e3);
  if (!l->overlap)
    return l->latency_us + x;
  double share = x / TRANSFER_LAYERS;
  double t = prefill_us > 0 ? prefill_us : 0;
  double behind = x - t * (TRANSFER_LAYERS - 1) / TRANSFER_LAYERS;
  return l->latency_us + (behind > share ? behind : share);
}

infs_time_t kv_transfer_ready(const infs_kv_handle_t *kv, infs_time_t now) {
  infs_link_t l = {kv->link_gbps, kv->link_latency_us, kv->overlap};
  if (!(l.gbps > 0))
    l = (infs_link_t){LINK_DEFAULT_GBPS, LINK_DEFAULT_LATENCY_US,
                      LINK_DEFAULT_OVERLAP};
  double us = kv_transfer_visible_us(&l, kv->bytes, (double)kv->prefill_us);
  return now + (infs_time_t)llround(us < 864e8 ? us : 864e8);
}
