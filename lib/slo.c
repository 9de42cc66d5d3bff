#include "slo.h"

#include "infsched/errors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void slo_defaults(slo_t slo[INFS_CLASS_COUNT]) {
  /* Every class gets 250 ms more per 1,000 uncached prompt tokens [E]: more
   * than the slowest idle prefill per token of any profile in
   * configs/profiles.yaml at its longest prompt (gpu-h100: ~26.8 s for
   * 128K tokens, 204 ms per 1,000), so a prompt of any length a worker
   * takes can meet its target on an idle worker. MLPerf grows its TTFT
   * with the prompts too: 2 s for llama2-70b on OpenOrca's short prompts,
   * 6 s for llama3_1-405b on prompts of up to ~20K tokens [S: MLPerf
   * Inference loadgen/mlperf.conf]. */
  enum { PER_KTOK = 250 };
  /* Interactive: MLPerf's llama2-70b-interactive targets, TTFT 450 ms and
   * TPOT 40 ms [S: MLPerf Inference v5.0, loadgen/mlperf.conf]. */
  slo[INFS_CLASS_INTERACTIVE] = (slo_t){450, PER_KTOK, 40};
  /* Agent: TTFT 2 s, MLPerf's server-scenario TTFT for llama2-70b,
   * llama3_1-8b and deepseek-r1 [S: mlperf.conf]; TPOT 40 ms, the
   * interactive figure [S: as above], since an agent's loop waits on every
   * token of a step as a reader does. (A tighter 25 ms is below an idle
   * tpu-v6e's decode step at full context.) */
  slo[INFS_CLASS_AGENT] = (slo_t){2000, PER_KTOK, 40};
  /* Batch: TPOT 200 ms, MLPerf's llama2-70b server scenario [S:
   * mlperf.conf]; TTFT 30 s [E]: a batch job only has to finish. */
  slo[INFS_CLASS_BATCH] = (slo_t){30000, PER_KTOK, 200};
}

slo_targets_t slo_targets(const slo_t *s, uint32_t uncached_tokens) {
  slo_targets_t t = {0, (double)s->tpot_ms};
  if (s->ttft_ms)
    t.ttft_ms = (double)s->ttft_ms +
                (double)s->ttft_ms_per_ktok * (double)uncached_tokens / 1000.0;
  return t;
}

slo_t slo_of_request(const infs_request_t *r) {
  return (slo_t){r->ttft_ms, r->ttft_ms_per_ktok, r->tpot_ms};
}

slo_miss_t slo_judge(const slo_t *s, uint32_t uncached_tokens, double ttft_ms,
                     double tpot_ms) {
  slo_targets_t t = slo_targets(s, uncached_tokens);
  unsigned m = SLO_MISS_NONE;
  if (t.ttft_ms > 0 && ttft_ms > t.ttft_ms)
    m |= SLO_MISS_TTFT;
  if (t.tpot_ms > 0 && tpot_ms >= 0 && tpot_ms > t.tpot_ms)
    m |= SLO_MISS_TPOT;
  return (slo_miss_t)m;
}

const char *slo_miss_name(slo_miss_t m) {
  static const char *const names[] = {"met", "ttft", "tpot", "both"};
  return (unsigned)m <= SLO_MISS_BOTH ? names[m] : "unknown";
}

/* A decimal number of ms at p, at least min; *end after it. */
static int ms_at(const char *p, const char **end, uint32_t min, uint32_t *out) {
  if (*p < '0' || *p > '9')
    return -1;
  errno = 0;
  char *e;
  unsigned long v = strtoul(p, &e, 10);
  if (errno || v > UINT32_MAX || v < min)
    return -1;
  *end = e;
  *out = (uint32_t)v;
  return 0;
}

static int parse_item(const char *item, slo_t slo[INFS_CLASS_COUNT],
                      char *err, size_t errlen) {
  const char *eq = strchr(item, '=');
  char name[32];
  infs_class_t cls;
  if (!eq || eq == item || (size_t)(eq - item) >= sizeof name) {
    snprintf(err, errlen, "expected CLASS=TTFT[+PER_KTOK]:TPOT in '%s'",
             item);
    return INFS_ECONFIG;
  }
  memcpy(name, item, (size_t)(eq - item));
  name[eq - item] = '\0';
  if (infs_class_parse(name, &cls)) {
    snprintf(err, errlen,
             "unknown class '%s' (interactive, agent or batch)", name);
    return INFS_ECONFIG;
  }
  slo_t s = {0};
  const char *p = eq + 1;
  if (ms_at(p, &p, 1, &s.ttft_ms) ||
      (*p == '+' && ms_at(p + 1, &p, 0, &s.ttft_ms_per_ktok)) || *p != ':' ||
      ms_at(p + 1, &p, 1, &s.tpot_ms) || *p) {
    snprintf(err, errlen,
             "SLO of %s: expected TTFT_MS[+MS_PER_1K_UNCACHED]:TPOT_MS with "
             "targets of at least 1 ms, got '%s'",
             name, eq + 1);
    return INFS_ECONFIG;
  }
  slo[cls] = s;
  return 0;
}

int slo_parse(const char *list, slo_t slo[INFS_CLASS_COUNT], char *err,
              size_t errlen) {
  slo_t t[INFS_CLASS_COUNT];
  memcpy(t, slo, sizeof t);
  if (!*list) {
    snprintf(err, errlen, "empty list");
    return INFS_ECONFIG;
  }
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    char item[96];
    if (len == 0 || len >= sizeof item) {
      snprintf(err, errlen, "expected CLASS=TTFT[+PER_KTOK]:TPOT in '%.*s'",
               (int)len, p);
      return INFS_ECONFIG;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    int rc = parse_item(item, t, err, errlen);
    if (rc)
      return rc;
    p += len;
    if (*p == ',' && *++p == '\0') {
      /* "a=1:1," names a class that is not there: say so rather than
       * quietly taking the list as complete. */
      snprintf(err, errlen, "expected CLASS=TTFT[+PER_KTOK]:TPOT after ','");
      return INFS_ECONFIG;
    }
  }
  memcpy(slo, t, sizeof t);
  return 0;
}

int slo_parse_weights(const char *list, double weights[INFS_CLASS_COUNT],
                      char *err, size_t errlen) {
  double w[INFS_CLASS_COUNT];
  memcpy(w, weights, sizeof w);
  const char *p = list;
  if (!*p) {
    snprintf(err, errlen, "empty list");
    return INFS_ECONFIG;
  }
  while (*p) {
    size_t len = strcspn(p, ",");
    char item[64];
    if (len == 0 || len >= sizeof item) {
      snprintf(err, errlen, "expected CLASS=WEIGHT in '%.*s'", (int)len, p);
      return INFS_ECONFIG;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    char *eq = strchr(item, '=');
    infs_class_t cls;
    if (!eq) {
      snprintf(err, errlen, "expected CLASS=WEIGHT in '%s'", item);
      return INFS_ECONFIG;
    }
    *eq = '\0';
    if (infs_class_parse(item, &cls)) {
      snprintf(err, errlen, "unknown class '%s' (interactive, agent or batch)",
               item);
      return INFS_ECONFIG;
    }
    char *end;
    double v = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !isfinite(v) || v < 0) {
      snprintf(err, errlen, "weight of %s: expected a number >= 0, got '%s'",
               item, eq + 1);
      return INFS_ECONFIG;
    }
    w[cls] = v;
    p += len;
    if (*p == ',')
      p++;
  }
  memcpy(weights, w, sizeof w);
  return 0;
}

void slo_format(const slo_t *s, char *buf, size_t len) {
  if (s->ttft_ms_per_ktok)
    snprintf(buf, len, "%u+%u:%u", s->ttft_ms, s->ttft_ms_per_ktok,
             s->tpot_ms);
  else
    snprintf(buf, len, "%u:%u", s->ttft_ms, s->tpot_ms);
}
