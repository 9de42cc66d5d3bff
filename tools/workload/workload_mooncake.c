/* Replay of a trace in the Mooncake format (kvcache-ai/Mooncake,
 * FAST25-release/README.md): JSON lines of `timestamp` (ms since the start),
 * `input_length`, `output_length` and `hash_ids`, the ids of the prompt's
 * 512-token blocks, equal ids for equal (reusable) prefix blocks. As in
 * Dynamo's aiperf, which replays the format, the last id stands for the
 * tokens left after the others' whole blocks, so a line with n ids has an
 * input_length in (512 (n - 1), 512 n]. Optional `session_id` (aiperf's
 * multi-turn field) and `class` are read when present; other fields are
 * ignored. The file is read whole at construction so that a bad line fails
 * before any traffic is sent. */
#include "workload_impl.h"

#include "infsched/errors.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mc_row {
  int64_t t_us;
  uint32_t input;
  uint32_t output;
  uint32_t line;   /* keeps the sort stable and errors precise */
  int cls;         /* -1: drawn from the class mix */
  size_t first_id; /* into ids */
  uint32_t n_ids;
  size_t session; /* into sessions; SIZE_MAX: none */
  uint32_t copy;  /* overlaid copy (workload_overlay); 0: the file's */
} mc_row_t;

typedef struct mooncake {
  workload_t base; /* first: the driver sees a workload_t */
  mc_row_t *rows;
  size_t n, cap;
  uint64_t *ids;
  size_t n_ids, ids_cap;
  char *sessions; /* NUL-terminated names, back to back */
  size_t sessions_len, sessions_cap;
  workload_segment_t *segs; /* the request being popped */
  size_t segs_cap;
  size_t next;
  double end_s; /* replayed time at which arrivals stop; INFINITY: none */
} mooncake_t;

/* Namespaces of the synthetic token streams: one per block id, so that the
 * same id gives the same hashes whatever the seed, the run or the machine;
 * and one per line for a prompt without ids, which shares nothing. */
#define MC_ID_NS 0x6d6f6f6e63616b65ull       /* "mooncake" */
#define MC_UNSHARED_NS 0x756e736861726564ull /* "unshared" */

/* A whole number in [min, max] (JSON has only doubles; ids and timestamps
 * stay exact below 2^53). */
static bool whole(const cJSON *v, double min, double max, double *out) {
  if (!cJSON_IsNumber(v))
    return false;
  double d = v->valuedouble;
  if (!isfinite(d) || d != floor(d) || d < min || d > max)
    return false;
  *out = d;
  return true;
}

static int bad(const char *path, unsigned line, char *err, size_t errlen,
               const char *why) {
  return workload_errf(INFS_ECONFIG, err, errlen, "%s:%u: %s", path, line, why);
}

static int parse_line(mooncake_t *m, const char *path, unsigned line,
                      const char *text, size_t len, char *err, size_t errlen) {
  char why[160];
  int rc = 0;
  cJSON *j = cJSON_ParseWithLength(text, len);
  if (!j) {
    const char *at = cJSON_GetErrorPtr();
    size_t col = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
    snprintf(why, sizeof why, "not a JSON object (parse error at column %zu)",
             col + 1);
    return bad(path, line, err, errlen, why);
  }
  if (!cJSON_IsObject(j)) {
    rc = bad(path, line, err, errlen, "not a JSON object");
    goto out;
  }
  m->rows = xgrow(m->rows, &m->cap, m->n + 1, sizeof *m->rows);
  mc_row_t *r = &m->rows[m->n];
  *r = (mc_row_t){
      .line = line, .cls = -1, .first_id = m->n_ids, .session = SIZE_MAX};
  double d;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
  /* Milliseconds, whole or not; 1e12 ms is over 30 years. */
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
      v->valuedouble > 1e12) {
    rc = bad(path, line, err, errlen,
             v ? "timestamp: expected milliseconds >= 0"
               : "no timestamp (milliseconds since the start)");
    goto out;
  }
  r->t_us = llround(v->valuedouble * 1000.0);
  v = cJSON_GetObjectItemCaseSensitive(j, "input_length");
  if (!whole(v, 0, UINT32_MAX, &d)) {
    rc = bad(path, line, err, errlen,
             v ? "input_length: expected a whole number of tokens"
               : "no input_length");
    goto out;
  }
  r->input = (uint32_t)d;
  v = cJSON_GetObjectItemCaseSensitive(j, "output_length");
  if (!whole(v, 0, UINT32_MAX, &d)) {
    rc = bad(path, line, err, errlen,
             v ? "output_length: expected a whole number of tokens"
               : "no output_length");
    goto out;
  }
  r->output = (uint32_t)d;
  v = cJSON_GetObjectItemCaseSensitive(j, "hash_ids");
  if (v && !cJSON_IsArray(v)) {
    rc = bad(path, line, err, errlen, "hash_ids: expected an array of ids");
    goto out;
  }
  int n_ids = v ? cJSON_GetArraySize(v) : 0;
  m->ids = xgrow(m->ids, &m->ids_cap, m->n_ids + (size_t)n_ids, sizeof *m->ids);
  const cJSON *id;
  size_t k = 0;
  cJSON_ArrayForEach(id, v) {
    if (!whole(id, 0, 9007199254740992.0, &d)) {
      snprintf(why, sizeof why, "hash_ids[%zu]: expected a whole number >= 0",
               k);
      rc = bad(path, line, err, errlen, why);
      goto out;
    }
    m->ids[m->n_ids + k++] = (uint64_t)d;
  }
  if (n_ids > 0) {
    uint64_t lo = (uint64_t)(n_ids - 1) * WORKLOAD_MOONCAKE_BLOCK;
    uint64_t hi = (uint64_t)n_ids * WORKLOAD_MOONCAKE_BLOCK;
    if (r->input <= lo || r->input > hi) {
      snprintf(why, sizeof why,
               "%d hash_ids of %d tokens stand for %llu to %llu tokens, but "
               "input_length is %u",
               n_ids, WORKLOAD_MOONCAKE_BLOCK, (unsigned long long)lo + 1,
               (unsigned long long)hi, r->input);
      rc = bad(path, line, err, errlen, why);
      goto out;
    }
  }
  r->n_ids = (uint32_t)n_ids;
  v = cJSON_GetObjectItemCaseSensitive(j, "class");
  if (v) {
    infs_class_t c;
    if (!cJSON_IsString(v) || infs_class_parse(v->valuestring, &c)) {
      rc = bad(path, line, err, errlen,
               "class: expected interactive, agent or batch");
      goto out;
    }
    r->cls = (int)c;
  }
  v = cJSON_GetObjectItemCaseSensitive(j, "session_id");
  if (v) {
    size_t sl = cJSON_IsString(v) ? strlen(v->valuestring) : 0;
    if (sl == 0 || sl >= WORKLOAD_SESSION_MAX) {
      snprintf(why, sizeof why,
               "session_id: expected a string of 1 to %d characters",
               WORKLOAD_SESSION_MAX - 1);
      rc = bad(path, line, err, errlen, why);
      goto out;
    }
    m->sessions =
        xgrow(m->sessions, &m->sessions_cap, m->sessions_len + sl + 1, 1);
    memcpy(m->sessions + m->sessions_len, v->valuestring, sl + 1);
    r->session = m->sessions_len;
    m->sessions_len += sl + 1;
  }
  m->n_ids += (size_t)n_ids;
  m->n++;
out:
  cJSON_Delete(j);
  return rc;
}

static int row_cmp(const void *a, const void *b) {
  const mc_row_t *x = a, *y = b;
  if (x->t_us != y->t_us)
    return x->t_us < y->t_us ? -1 : 1;
  return x->line < y->line ? -1 : x->line > y->line;
}

typedef struct mc_load {
  mooncake_t *m;
  const char *path;
} mc_load_t;

static int load_line(void *arg, unsigned lineno, char *line, size_t len,
                     char *err, size_t errlen) {
  mc_load_t *l = arg;
  return parse_line(l->m, l->path, lineno, line, len, err, errlen);
}

static int load(mooncake_t *m, const char *path, char *err, size_t errlen) {
  mc_load_t l = {m, path};
  int rc = workload_read_lines(path, load_line, &l, err, errlen);
  if (rc)
    return rc;
  if (m->n == 0)
    return workload_errf(INFS_ECONFIG, err, errlen, "%s: no requests in trace",
                         path);
  qsort(m->rows, m->n, sizeof *m->rows, row_cmp);
  return 0;
}

/* --- the generator --- */

static infs_time_t mc_next_time(const workload_t *w) {
  const mooncake_t *m = (const mooncake_t *)w;
  if (m->next >= m->n)
    return INFS_TIME_NEVER;
  double at = (double)m->rows[m->next].t_us / 1e6 / w->opts.speedup;
  if (at >= m->end_s)
    return INFS_TIME_NEVER;
  return (infs_time_t)llround(at * 1e6);
}

/* Each overlaid copy stands for other users: its ids are streams of its
 * own, so that copies share prefixes among their own rows only. */
static uint64_t id_stream(uint64_t id, uint32_t copy) {
  return workload_stream_id(MC_ID_NS + copy, id);
}

static int mc_pop(workload_t *w, infs_time_t now, workload_req_t *req) {
  (void)now;
  mooncake_t *m = (mooncake_t *)w;
  infs_time_t arrival = mc_next_time(w);
  if (arrival == INFS_TIME_NEVER)
    return -EAGAIN;
  const mc_row_t *r = &m->rows[m->next++];
  infs_class_t cls =
      r->cls >= 0 ? (infs_class_t)r->cls : workload_draw_class(w);
  /* A zero would be an empty request, which no scheduler can serve. */
  uint32_t prompt = r->input ? r->input : 1;
  uint32_t output = r->output ? r->output : 1;
  workload_begin_request(w, req, arrival, cls, prompt, output);
  if (r->session != SIZE_MAX && r->copy == 0)
    snprintf(req->session, sizeof req->session, "%s", m->sessions + r->session);
  else if (r->session != SIZE_MAX)
    snprintf(req->session, sizeof req->session, "%.*s/%u",
             WORKLOAD_SESSION_MAX - 12, m->sessions + r->session, r->copy);
  size_t n = r->n_ids ? r->n_ids : 1;
  m->segs = xgrow(m->segs, &m->segs_cap, n, sizeof *m->segs);
  if (r->n_ids == 0) {
    m->segs[0] = (workload_segment_t){
        workload_stream_id(MC_UNSHARED_NS, (uint64_t)r->copy << 32 | r->line),
        0, prompt};
  } else {
    for (size_t i = 0; i < n; i++)
      m->segs[i] =
          (workload_segment_t){id_stream(m->ids[r->first_id + i], r->copy), 0,
                               WORKLOAD_MOONCAKE_BLOCK};
    m->segs[n - 1].len = prompt - (uint32_t)(n - 1) * WORKLOAD_MOONCAKE_BLOCK;
  }
  workload_set_blocks(w, req, m->segs, n);
  return 0;
}

static bool mc_finished(const workload_t *w) {
  return mc_next_time(w) == INFS_TIME_NEVER;
}

static void mc_destroy(workload_t *w) {
  mooncake_t *m = (mooncake_t *)w;
  free(m->rows);
  free(m->ids);
  free(m->sessions);
  free(m->segs);
  free(m);
}

static const workload_ops_t mooncake_ops = {
    .name = "mooncake",
    .next_time = mc_next_time,
    .pop = mc_pop,
    .on_done = NULL,
    .finished = mc_finished,
    .destroy = mc_destroy,
};

int workload_mooncake_new(const char *path, const workload_opts_t *opts,
                          workload_t **out, char *err, size_t errlen) {
  *out = NULL;
  int rc = workload_check_replay(opts, err, errlen);
  if (rc)
    return rc;
  if (opts->shared_prefix > 0.0)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "%s: a Mooncake trace brings its own shared "
                         "prefixes (hash_ids); --shared-prefix applies to "
                         "poisson and CSV traces",
                         path);
  mooncake_t *m = calloc(1, sizeof *m);
  if (!m)
    return -ENOMEM;
  rc = workload_base_init(&m->base, &mooncake_ops, opts, err, errlen);
  if (!rc)
    rc = load(m, path, err, errlen);
  if (!rc) {
    void *rows = m->rows;
    rc = workload_overlay(opts, &rows, &m->n, sizeof *m->rows,
                          offsetof(mc_row_t, t_us), offsetof(mc_row_t, copy),
                          row_cmp);
    m->rows = rows;
  }
  if (rc) {
    mc_destroy(&m->base);
    return rc;
  }
  m->end_s = opts->duration_s > 0.0 ? opts->duration_s : INFINITY;
  *out = &m->base;
  return 0;
}

bool workload_trace_is_mooncake(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  int c;
  while ((c = fgetc(f)) == ' ' || c == '\t' || c == '\r' || c == '\n')
    ;
  fclose(f);
  return c == '{';
}
