#include "tools/cluster/cluster_file.h"

#include "infsched/errors.h"
#include "infsched/profile.h"
#include "model/slo_check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Instance names get "-N" (up to 4 digits) appended and must still fit the
 * scheduler's worker id limit. */
#define NAME_BASE_MAX (INFS_NAME_MAX - 1 - 5)

typedef struct parse {
  yaml_document_t *doc;
  const char *path;
  char *err;
  size_t errlen;
} parse_t;

static int fail(parse_t *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(parse_t *ps, int line, const char *fmt, ...) {
  int n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->path, line);
  if (n >= 0 && (size_t)n < ps->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return INFS_ECONFIG;
}

static int line_of(const yaml_node_t *n) {
  return (int)n->start_mark.line + 1;
}

static const char *node_kind(const yaml_node_t *n) {
  switch (n->type) {
  case YAML_SCALAR_NODE:
    return "a scalar";
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "nothing";
  }
}

static const char *scalar(const yaml_node_t *n) {
  return (const char *)n->data.scalar.value;
}

/* A mapping's keys must be plain strings from an allowed set, each once;
 * this catches typos such as "heartbeat-ms" that would otherwise be
 * silently ignored. */
static int check_keys(parse_t *ps, yaml_node_t *map, const char *where,
                      const char *const *allowed) {
  yaml_node_pair_t *a, *b;
  for (a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
       a++) {
    yaml_node_t *k = yaml_document_get_node(ps->doc, a->key);
    if (k->type != YAML_SCALAR_NODE)
      return fail(ps, line_of(k), "%s: keys must be names, not %s", where,
                  node_kind(k));
    size_t i;
    for (i = 0; allowed[i]; i++)
      if (strcmp(allowed[i], scalar(k)) == 0)
        break;
    if (!allowed[i]) {
      char list[256] = "";
      for (i = 0; allowed[i]; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                 allowed[i]);
      }
      return fail(ps, line_of(k), "%s: unknown key '%s' (expected %s)", where,
                  scalar(k), list);
    }
    for (b = map->data.mapping.pairs.start; b < a; b++) {
      yaml_node_t *prev = yaml_document_get_node(ps->doc, b->key);
      if (prev->type == YAML_SCALAR_NODE &&
          strcmp(scalar(prev), scalar(k)) == 0)
        return fail(ps, line_of(k),
                    "%s: key '%s' given twice (also on line %d)", where,
                    scalar(k), line_of(prev));
    }
  }
  return 0;
}

static yaml_node_t *get(parse_t *ps, yaml_node_t *map, const char *key) {
  yaml_node_pair_t *p;
  for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
       p++) {
    yaml_node_t *k = yaml_document_get_node(ps->doc, p->key);
    if (k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0)
      return yaml_document_get_node(ps->doc, p->value);
  }
  return NULL;
}

/* Copies a string field into buf. A missing field keeps buf (its default)
 * unless required. */
static int get_string(parse_t *ps, yaml_node_t *map, const char *where,
                      const char *key, int required, char *buf, size_t len,
                      int *line) {
  yaml_node_t *v = get(ps, map, key);
  if (!v) {
    if (required)
      return fail(ps, line_of(map), "%s: '%s' is missing", where, key);
    return 0;
  }
  if (v->type != YAML_SCALAR_NODE)
    return fail(ps, line_of(v), "%s.%s: expected a string, got %s", where, key,
                node_kind(v));
  if (v->data.scalar.length == 0)
    return fail(ps, line_of(v), "%s.%s: must not be empty", where, key);
  if (v->data.scalar.length >= len)
    return fail(ps, line_of(v), "%s.%s: longer than %zu characters", where, key,
                len - 1);
  memcpy(buf, scalar(v), v->data.scalar.length + 1);
  if (line)
    *line = line_of(v);
  return 0;
}

static int get_u32(parse_t *ps, yaml_node_t *map, const char *where,
                   const char *key, uint32_t min, uint32_t max, uint32_t *out) {
  yaml_node_t *v = get(ps, map, key);
  if (!v)
    return 0;
  if (v->type != YAML_SCALAR_NODE)
    return fail(ps, line_of(v), "%s.%s: expected a whole number, got %s", where,
                key, node_kind(v));
  const char *s = scalar(v);
  char *end;
  errno = 0;
  unsigned long long n = strtoull(s, &end, 10);
  if (!*s || *s == '-' || *s == '+' || *end || errno)
    return fail(ps, line_of(v), "%s.%s: expected a whole number, got '%s'",
                where, key, s);
  if (n < min || n > max)
    return fail(ps, line_of(v), "%s.%s: %llu is out of range [%u, %u]", where,
                key, n, min, max);
  *out = (uint32_t)n;
  return 0;
}

/* ZeroMQ endpoints: a transport, "://", and something after it. */
static int check_endpoint(parse_t *ps, int line, const char *what,
                          const char *addr) {
  const char *sep = strstr(addr, "://");
  if (!sep || sep == addr || !sep[3])
    return fail(ps, line,
                "%s: '%s' is not an endpoint (expected e.g. "
                "tcp://127.0.0.1:5555)",
                what, addr);
  return 0;
}

static int valid_name(const char *s) {
  for (; *s; s++)
    if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
        !(*s >= '0' && *s <= '9') && *s != '-' && *s != '_' && *s != '.')
      return 0;
  return 1;
}

/* scheduler.slo: "interactive=450+250:40,..." as the scheduler's --slo. */
static int get_slo(parse_t *ps, yaml_node_t *n, cluster_spec_t *s) {
  int rc;
  if ((rc = get_string(ps, n, "scheduler", "slo", 0, s->slo, sizeof s->slo,
                       &s->slo_line)) ||
      !s->slo[0])
    return rc;
  char why[200];
  if (slo_parse(s->slo, s->slo_targets, why, sizeof why))
    return fail(ps, s->slo_line, "scheduler.slo: %s", why);
  return 0;
}

static int parse_scheduler(parse_t *ps, yaml_node_t *n, cluster_spec_t *s) {
  static const char *const keys[] = {"clients",        "workers",
                                     "policy",         "heartbeat_ms",
                                     "heartbeat_miss", "http",
                                     "slo",            NULL};
  int rc, line = line_of(n);
  if (n->type != YAML_MAPPING_NODE)
    return fail(ps, line_of(n), "scheduler: expected a mapping, got %s",
                node_kind(n));
  if ((rc = check_keys(ps, n, "scheduler", keys)))
    return rc;
  int cl = line, wl = line, hl = line;
  if ((rc = get_string(ps, n, "scheduler", "clients", 0, s->clients,
                       sizeof s->clients, &cl)) ||
      (rc = get_string(ps, n, "scheduler", "workers", 0, s->workers_addr,
                       sizeof s->workers_addr, &wl)) ||
      (rc = get_string(ps, n, "scheduler", "policy", 0, s->policy,
                       sizeof s->policy, NULL)) ||
      (rc = get_u32(ps, n, "scheduler", "heartbeat_ms", 10, 600000,
                    &s->heartbeat_ms)) ||
      (rc = get_u32(ps, n, "scheduler", "heartbeat_miss", 1, 1000,
                    &s->heartbeat_miss)) ||
      (rc = get_string(ps, n, "scheduler", "http", 0, s->http, sizeof s->http,
                       &hl)) ||
      (rc = get_slo(ps, n, s)))
    return rc;
  if (strcmp(s->http, "off") != 0 && !strchr(s->http, ':'))
    return fail(ps, hl,
                "scheduler.http: '%s' is not HOST:PORT (e.g. "
                "127.0.0.1:8080) or off",
                s->http);
  if ((rc = check_endpoint(ps, cl, "scheduler.clients", s->clients)) ||
      (rc = check_endpoint(ps, wl, "scheduler.workers", s->workers_addr)))
    return rc;
  if (strcmp(s->clients, s->workers_addr) == 0)
    return fail(ps, wl, "scheduler.workers: same endpoint as clients (%s)",
                s->clients);
  return 0;
}

static int parse_worker(parse_t *ps, yaml_node_t *n, size_t i,
                        cluster_worker_t *w) {
  static const char *const keys[] = {"name",    "profile", "count",
                                     "backend", "model",   NULL};
  char where[48];
  int rc;
  snprintf(where, sizeof where, "workers[%zu]", i);
  if (n->type != YAML_MAPPING_NODE)
    return fail(ps, line_of(n), "%s: expected a mapping, got %s", where,
                node_kind(n));
  w->line = line_of(n);
  w->count = 1;
  snprintf(w->backend, sizeof w->backend, "sim");
  int name_line = w->line;
  if ((rc = check_keys(ps, n, where, keys)) ||
      (rc = get_string(ps, n, where, "name", 1, w->name, NAME_BASE_MAX + 1,
                       &name_line)) ||
      (rc = get_string(ps, n, where, "profile", 1, w->profile,
                       sizeof w->profile, &w->profile_line)) ||
      (rc = get_u32(ps, n, where, "count", 1, CLUSTER_MAX_COUNT, &w->count)) ||
      (rc = get_string(ps, n, where, "backend", 0, w->backend,
                       sizeof w->backend, NULL)) ||
      (rc = get_string(ps, n, where, "model", 0, w->model, sizeof w->model,
                       NULL)))
    return rc;
  if (!valid_name(w->name))
    return fail(ps, name_line,
                "%s.name: '%s' may only hold letters, digits, '-', '_' "
                "and '.'",
                where, w->name);
  return 0;
}

/* Instance names are NAME-i and i holds no '-', so they are unique exactly
 * when the entries' names are. */
static int check_unique(parse_t *ps, cluster_spec_t *s) {
  for (size_t i = 0; i < s->nworkers; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->workers[i].name, s->workers[j].name) == 0)
        return fail(ps, s->workers[i].line,
                    "workers[%zu].name: '%s' is also the name of the entry "
                    "on line %d",
                    i, s->workers[i].name, s->workers[j].line);
  return 0;
}

/* The profiles path is relative to the cluster file, so a cluster file and
 * its profiles can move together. */
static char *resolve(const char *base_file, const char *rel) {
  if (rel[0] == '/')
    return strdup(rel);
  const char *slash = strrchr(base_file, '/');
  size_t dirlen = slash ? (size_t)(slash - base_file) + 1 : 0;
  size_t n = dirlen + strlen(rel) + 1;
  char *out = malloc(n);
  if (!out)
    return NULL;
  memcpy(out, base_file, dirlen);
  memcpy(out + dirlen, rel, strlen(rel) + 1);
  return out;
}

static int parse_root(parse_t *ps, yaml_node_t *root, cluster_spec_t *s) {
  static const char *const keys[] = {"profiles", "scheduler", "workers", NULL};
  char profiles[4096];
  int rc;
  if (root->type != YAML_MAPPING_NODE)
    return fail(ps, line_of(root),
                "expected a mapping with profiles, scheduler and workers, "
                "got %s",
                node_kind(root));
  if ((rc = check_keys(ps, root, "cluster", keys)) ||
      (rc = get_string(ps, root, "cluster", "profiles", 1, profiles,
                       sizeof profiles, &s->profiles_line)))
    return rc;
  s->profiles_path = resolve(ps->path, profiles);
  if (!s->profiles_path)
    return -ENOMEM;

  yaml_node_t *sched = get(ps, root, "scheduler");
  if (!sched)
    return fail(ps, line_of(root), "cluster: 'scheduler' is missing");
  if ((rc = parse_scheduler(ps, sched, s)))
    return rc;

  yaml_node_t *workers = get(ps, root, "workers");
  if (!workers)
    return fail(ps, line_of(root), "cluster: 'workers' is missing");
  if (workers->type != YAML_SEQUENCE_NODE)
    return fail(ps, line_of(workers), "workers: expected a list, got %s",
                node_kind(workers));
  size_t n = (size_t)(workers->data.sequence.items.top -
                      workers->data.sequence.items.start);
  s->workers = calloc(n ? n : 1, sizeof *s->workers);
  if (!s->workers)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *item =
        yaml_document_get_node(ps->doc, workers->data.sequence.items.start[i]);
    if ((rc = parse_worker(ps, item, i, &s->workers[i])))
      return rc;
    s->nworkers++;
  }
  return check_unique(ps, s);
}

int cluster_file_load(const char *path, cluster_spec_t **out, char *err,
                      size_t errlen) {
  yaml_parser_t parser;
  yaml_document_t doc;
  int have_parser = 0, have_doc = 0, rc;
  parse_t ps = {&doc, path, err, errlen};
  cluster_spec_t *s = NULL;
  FILE *f = NULL;

  *out = NULL;
  if (errlen)
    err[0] = '\0';
  f = fopen(path, "rb");
  if (!f) {
    rc = -errno;
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    goto out;
  }
  s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path))) {
    rc = -ENOMEM;
    goto out;
  }
  snprintf(s->clients, sizeof s->clients, "tcp://127.0.0.1:5555");
  snprintf(s->workers_addr, sizeof s->workers_addr, "tcp://127.0.0.1:5556");
  snprintf(s->policy, sizeof s->policy, "least_loaded");
  snprintf(s->http, sizeof s->http, "127.0.0.1:8080");
  s->heartbeat_ms = 200;
  s->heartbeat_miss = 5;
  slo_defaults(s->slo_targets);

  if (!yaml_parser_initialize(&parser)) {
    rc = -ENOMEM;
    goto out;
  }
  have_parser = 1;
  yaml_parser_set_input_file(&parser, f);
  if (!yaml_parser_load(&parser, &doc)) {
    rc = fail(&ps, (int)parser.problem_mark.line + 1, "%s%s%s",
              parser.problem ? parser.problem : "YAML error",
              parser.context ? " " : "", parser.context ? parser.context : "");
    goto out;
  }
  have_doc = 1;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root) {
    rc = fail(&ps, 1, "empty cluster file");
    goto out;
  }
  rc = parse_root(&ps, root, s);
  if (rc == 0) {
    *out = s;
    s = NULL;
  }
out:
  if (rc == -ENOMEM)
    snprintf(err, errlen, "%s: out of memory", path);
  if (have_doc)
    yaml_document_delete(&doc);
  if (have_parser)
    yaml_parser_delete(&parser);
  if (f)
    fclose(f);
  cluster_spec_destroy(&s);
  return rc;
}

void cluster_spec_destroy(cluster_spec_t **spec) {
  cluster_spec_t *s = *spec;
  if (!s)
    return;
  free(s->path);
  free(s->profiles_path);
  free(s->workers);
  free(s);
  *spec = NULL;
}

int cluster_spec_check_profiles(const cluster_spec_t *spec, char *err,
                                size_t errlen) {
  profile_set_t *set = NULL;
  char why[512];
  int rc = profile_set_load(spec->profiles_path, &set, why, sizeof why);
  if (rc) {
    snprintf(err, errlen, "%s:%d: profiles: cannot load %s: %s", spec->path,
             spec->profiles_line, spec->profiles_path,
             why[0] ? why : infs_strerror(rc));
    return rc;
  }
  for (size_t i = 0; i < spec->nworkers; i++) {
    const cluster_worker_t *w = &spec->workers[i];
    if (profile_set_find(set, w->profile))
      continue;
    char known[256] = "";
    size_t n = profile_set_count(set);
    for (size_t j = 0; j < n; j++) {
      size_t len = strlen(known);
      snprintf(known + len, sizeof known - len, "%s%s", j ? ", " : "",
               profile_set_at(set, j)->name);
    }
    snprintf(err, errlen,
             "%s:%d: workers[%zu].profile: unknown profile '%s' (%s has: %s)",
             spec->path, w->profile_line, i, w->profile, spec->profiles_path,
             n ? known : "none");
    rc = INFS_EUNKNOWN;
    break;
  }
  for (size_t i = 0; rc == 0 && i < spec->nworkers; i++) {
    const cluster_worker_t *w = &spec->workers[i];
    if (slo_check_profile(spec->slo_targets, profile_set_find(set, w->profile),
                          why, sizeof why) == 0)
      continue;
    if (spec->slo[0])
      snprintf(err, errlen, "%s:%d: scheduler.slo: %s (workers[%zu])",
               spec->path, spec->slo_line, why, i);
    else
      snprintf(err, errlen, "%s:%d: workers[%zu]: the default %s",
               spec->path, w->profile_line, i, why);
    rc = INFS_ECONFIG;
  }
  profile_set_destroy(&set);
  return rc;
}

size_t cluster_spec_instances(const cluster_spec_t *spec) {
  size_t n = 0;
  for (size_t i = 0; i < spec->nworkers; i++)
    n += spec->workers[i].count;
  return n;
}

void cluster_instance_name(const cluster_worker_t *w, uint32_t i, char *buf,
                           size_t len) {
  snprintf(buf, len, "%s-%u", w->name, i);
}
