#include "cluster_file.h"

#include "infsched/errors.h"
#include "infsched/profile.h"
#include "ydoc.h"
#include "slo_check.h"
#include "transfer.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Instance names get "-N" (up to 4 digits) appended and must still fit the
 * scheduler's worker id limit. */
#define NAME_BASE_MAX (INFS_NAME_MAX - 1 - 5)

static int valid_name(const char *s) {
  for (; *s; s++)
    if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
        !(*s >= '0' && *s <= '9') && *s != '-' && *s != '_' && *s != '.')
      return 0;
  return 1;
}

/* Keys a mapping allows: its own (fixed, a NULL-terminated list) and the
 * settings given at `where` in a cluster file (see setting_t.cluster). */
typedef struct keys {
  const char *const *own;
  unsigned settings;
} keys_t;

static bool key_allowed(const keys_t *k, const char *key) {
  for (size_t i = 0; k->own[i]; i++)
    if (strcmp(k->own[i], key) == 0)
      return true;
  const setting_t *s = settings_find(key);
  return s && (s->cluster & k->settings);
}

/* A mapping's keys must be plain strings from the allowed set, each once;
 * this catches typos such as "heartbeat-ms" that would otherwise be
 * silently ignored. */
static int check_keys(ydoc_t *d, yaml_node_t *map, const char *where,
                      const keys_t *allowed) {
  yaml_node_pair_t *a, *b;
  for (a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
       a++) {
    yaml_node_t *k = ydoc_node(d, a->key);
    if (k->type != YAML_SCALAR_NODE)
      return ydoc_fail(d, ydoc_line(k), "%s: keys must be names, not %s", where,
                       ydoc_kind(k));
    if (!key_allowed(allowed, ydoc_scalar(k))) {
      char list[1024] = "";
      size_t len = 0;
      for (size_t i = 0; allowed->own[i]; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                len ? ", " : "", allowed->own[i]);
      for (setting_id_t id = 0; id < SET_COUNT && len < sizeof list; id++)
        if (settings_get(id)->cluster & allowed->settings)
          len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                  len ? ", " : "", settings_get(id)->name);
      return ydoc_fail(d, ydoc_line(k), "%s: unknown key '%s' (expected %s)",
                       where, ydoc_scalar(k), list);
    }
    for (b = map->data.mapping.pairs.start; b < a; b++) {
      yaml_node_t *prev = ydoc_node(d, b->key);
      if (prev->type == YAML_SCALAR_NODE &&
          strcmp(ydoc_scalar(prev), ydoc_scalar(k)) == 0)
        return ydoc_fail(d, ydoc_line(k),
                         "%s: key '%s' given twice (also on line %d)", where,
                         ydoc_scalar(k), ydoc_line(prev));
    }
  }
  return 0;
}

/* Copies a string field into buf. A missing field keeps buf (its default)
 * unless required. */
static int get_string(ydoc_t *d, yaml_node_t *map, const char *where,
                      const char *key, int required, char *buf, size_t len,
                      int *line) {
  yaml_node_t *v = ydoc_get(d, map, key);
  if (!v) {
    if (required)
      return ydoc_fail(d, ydoc_line(map), "%s: '%s' is missing", where, key);
    return 0;
  }
  if (v->type != YAML_SCALAR_NODE)
    return ydoc_fail(d, ydoc_line(v), "%s.%s: expected a string, got %s", where,
                     key, ydoc_kind(v));
  if (v->data.scalar.length == 0)
    return ydoc_fail(d, ydoc_line(v), "%s.%s: must not be empty", where, key);
  if (v->data.scalar.length >= len)
    return ydoc_fail(d, ydoc_line(v), "%s.%s: longer than %zu characters",
                     where, key, len - 1);
  memcpy(buf, ydoc_scalar(v), v->data.scalar.length + 1);
  if (line)
    *line = ydoc_line(v);
  return 0;
}

/* The settings of map allowed at `who`, each checked as the daemon checks
 * its flag and kept as written in set[]. */
static int get_settings(ydoc_t *d, yaml_node_t *map, const char *where,
                        unsigned who, char **set, int *lines) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
    const setting_t *s = settings_find(ydoc_scalar(k));
    if (!s || !(s->cluster & who))
      continue;
    if (v->type != YAML_SCALAR_NODE)
      return ydoc_fail(d, ydoc_line(v), "%s.%s: expected %s, got %s", where,
                       s->name,
                       s->type == SETTING_TEXT   ? "a string"
                       : s->type == SETTING_UINT ? "a whole number"
                                                 : "a number",
                       ydoc_kind(v));
    setting_value_t val;
    char why[512];
    if (settings_parse(s, ydoc_scalar(v), &val, why, sizeof why))
      return ydoc_fail(d, ydoc_line(v), "%s.%s: %s", where, s->name, why);
    if (!(set[s->id] = strdup(ydoc_scalar(v))))
      return -ENOMEM;
    lines[s->id] = ydoc_line(v);
  }
  return 0;
}

/* The profiles and API keys paths are relative to the cluster file, so a
 * cluster file and the files it names can move together. */
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

/* The value in effect of a scheduler setting: given, or the default. */
static const char *sched_value(const cluster_spec_t *s, setting_id_t id) {
  return s->set[id] ? s->set[id] : settings_get(id)->def;
}

static int parse_scheduler(ydoc_t *d, yaml_node_t *n, cluster_spec_t *s) {
  static const char *const own[] = {NULL};
  const keys_t keys = {own, SETTING_SCHEDULER};
  int rc;
  if (n->type != YAML_MAPPING_NODE)
    return ydoc_fail(d, ydoc_line(n), "scheduler: expected a mapping, got %s",
                     ydoc_kind(n));
  if ((rc = check_keys(d, n, "scheduler", &keys)) ||
      (rc = get_settings(d, n, "scheduler", SETTING_SCHEDULER, s->set,
                         s->set_line)))
    return rc;
  if (s->set[SET_API_KEYS]) {
    char *path = resolve(d->path, s->set[SET_API_KEYS]);
    if (!path)
      return -ENOMEM;
    free(s->set[SET_API_KEYS]);
    s->set[SET_API_KEYS] = path;
  }
  setting_value_t v;
  char why[256];
  snprintf(s->clients, sizeof s->clients, "%s", sched_value(s, SET_CLIENTS));
  snprintf(s->workers_addr, sizeof s->workers_addr, "%s",
           sched_value(s, SET_WORKERS));
  snprintf(s->http, sizeof s->http, "%s", sched_value(s, SET_HTTP));
  snprintf(s->policy, sizeof s->policy, "%s", sched_value(s, SET_POLICY));
  settings_parse(settings_get(SET_HEARTBEAT_MS),
                 sched_value(s, SET_HEARTBEAT_MS), &v, why, sizeof why);
  s->heartbeat_ms = (uint32_t)v.u;
  settings_parse(settings_get(SET_HEARTBEAT_MISS),
                 sched_value(s, SET_HEARTBEAT_MISS), &v, why, sizeof why);
  s->heartbeat_miss = (uint32_t)v.u;
  if (strcmp(s->clients, s->workers_addr) == 0)
    return ydoc_fail(
        d, s->set_line[SET_WORKERS] ? s->set_line[SET_WORKERS] : ydoc_line(n),
        "scheduler.workers: same endpoint as clients (%s)", s->clients);
  return 0;
}

/* Item i of the list `list` (workers, links) must be a mapping with the
 * allowed keys; where gets its name for messages ("workers[2]"). */
static int list_item(ydoc_t *d, yaml_node_t *n, const char *list, size_t i,
                     const keys_t *keys, char *where, size_t len) {
  snprintf(where, len, "%s[%zu]", list, i);
  if (n->type != YAML_MAPPING_NODE)
    return ydoc_fail(d, ydoc_line(n), "%s: expected a mapping, got %s", where,
                     ydoc_kind(n));
  return check_keys(d, n, where, keys);
}

static int parse_worker(ydoc_t *d, yaml_node_t *n, size_t i,
                        cluster_worker_t *w) {
  static const char *const own[] = {"name", "count", NULL};
  const keys_t keys = {own, SETTING_WORKER};
  char where[48];
  int rc;
  if ((rc = list_item(d, n, "workers", i, &keys, where, sizeof where)))
    return rc;
  w->line = ydoc_line(n);
  w->count = 1;
  int name_line = w->line;
  if ((rc = get_string(d, n, where, "name", 1, w->name, NAME_BASE_MAX + 1,
                       &name_line)) ||
      (rc = get_settings(d, n, where, SETTING_WORKER, w->set, w->set_line)))
    return rc;
  if (!w->set[SET_PROFILE])
    return ydoc_fail(d, w->line, "%s: 'profile' is missing", where);
  w->profile_line = ydoc_line(ydoc_get(d, n, "profile"));
  yaml_node_t *count = ydoc_get(d, n, "count");
  if (count) {
    uint64_t c = 0;
    const char *t = count->type == YAML_SCALAR_NODE ? ydoc_scalar(count) : "";
    char *end;
    errno = 0;
    if (t[0] >= '0' && t[0] <= '9')
      c = strtoull(t, &end, 10);
    if (!(t[0] >= '0' && t[0] <= '9') || errno || *end)
      return ydoc_fail(d, ydoc_line(count),
                       "%s.count: expected a whole number, got '%s'", where, t);
    if (c < 1 || c > CLUSTER_MAX_COUNT)
      return ydoc_fail(d, ydoc_line(count),
                       "%s.count: %llu is out of range [1, %d]", where,
                       (unsigned long long)c, CLUSTER_MAX_COUNT);
    w->count = (uint32_t)c;
  }
  snprintf(w->profile, sizeof w->profile, "%s", w->set[SET_PROFILE]);
  snprintf(w->backend, sizeof w->backend, "%s",
           w->set[SET_BACKEND] ? w->set[SET_BACKEND]
                               : settings_get(SET_BACKEND)->def);
  if (w->set[SET_MODEL])
    snprintf(w->model, sizeof w->model, "%s", w->set[SET_MODEL]);
  if (!valid_name(w->name))
    return ydoc_fail(d, name_line,
                     "%s.name: '%s' may only hold letters, digits, '-', '_' "
                     "and '.'",
                     where, w->name);
  return 0;
}

/* Instance names are NAME-i and i holds no '-', so they are unique exactly
 * when the entries' names are. */
static int check_unique(ydoc_t *d, cluster_spec_t *s) {
  for (size_t i = 0; i < s->nworkers; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->workers[i].name, s->workers[j].name) == 0)
        return ydoc_fail(
            d, s->workers[i].line,
            "workers[%zu].name: '%s' is also the name of the entry "
            "on line %d",
            i, s->workers[i].name, s->workers[j].line);
  return 0;
}

/* A number of a links entry: finite, and above 0 (bandwidth) or at least 0
 * (latency), at most max. A missing key keeps *out. */
static int get_number(ydoc_t *d, yaml_node_t *map, const char *where,
                      const char *key, bool positive, double max, bool *given,
                      double *out) {
  yaml_node_t *v = ydoc_get(d, map, key);
  *given = v != NULL;
  if (!v)
    return 0;
  const char *t = v->type == YAML_SCALAR_NODE ? ydoc_scalar(v) : "";
  char *end;
  errno = 0;
  double x = *t ? strtod(t, &end) : NAN;
  if (!*t || *end || errno || !isfinite(x))
    return ydoc_fail(d, ydoc_line(v), "%s.%s: expected a number, got %s", where,
                     key, *t ? t : ydoc_kind(v));
  if (positive ? !(x > 0) : x < 0)
    return ydoc_fail(d, ydoc_line(v), "%s.%s: %s is not %s", where, key, t,
                     positive ? "a bandwidth (GB/s above 0)"
                              : "a latency (0 or more microseconds)");
  if (x > max)
    return ydoc_fail(d, ydoc_line(v), "%s.%s: %s is above %g", where, key, t,
                     max);
  *out = x;
  return 0;
}

/* What a side of a link names: '*', a worker class, the profile of one of
 * the file's entries, or one of its instances (NAME-i), as the scheduler
 * matches them (model/transfer.h). */
static bool link_side_known(const cluster_spec_t *s, const char *name) {
  infs_worker_class_t cls;
  if (strcmp(name, "*") == 0 || infs_worker_class_parse(name, &cls) == 0)
    return true;
  for (size_t i = 0; i < s->nworkers; i++) {
    const cluster_worker_t *w = &s->workers[i];
    size_t len = strlen(w->name);
    if (strcmp(w->profile, name) == 0)
      return true;
    if (strncmp(name, w->name, len) != 0 || name[len] != '-' ||
        !(name[len + 1] >= '0' && name[len + 1] <= '9'))
      continue;
    /* i as cluster_instance_name writes it: no sign, no leading 0. */
    char *end;
    unsigned long k = strtoul(name + len + 1, &end, 10);
    if (!*end && k < w->count && (name[len + 1] != '0' || !name[len + 2]))
      return true;
  }
  return false;
}

/* One entry of links:, appended to the scheduler's --links spec as
 * FROM>TO=GBPS[:LATENCY_US[:overlap]]. */
static int parse_link(ydoc_t *d, yaml_node_t *n, size_t i, cluster_spec_t *s,
                      char *spec, size_t speclen, char (*pairs)[2][64],
                      int *lines) {
  static const char *const own[] = {"from",       "to",      "gbps",
                                    "latency_us", "overlap", NULL};
  const keys_t keys = {own, 0};
  char where[48];
  int rc;
  if ((rc = list_item(d, n, "links", i, &keys, where, sizeof where)))
    return rc;
  lines[i] = ydoc_line(n);
  char *from = pairs[i][0], *to = pairs[i][1];
  double gbps = 0, latency = LINK_DEFAULT_LATENCY_US;
  bool has_gbps, has_latency;
  if ((rc = get_string(d, n, where, "from", 1, from, 64, NULL)) ||
      (rc = get_string(d, n, where, "to", 1, to, 64, NULL)) ||
      (rc = get_number(d, n, where, "gbps", true, LINK_GBPS_MAX, &has_gbps,
                       &gbps)) ||
      (rc = get_number(d, n, where, "latency_us", false, LINK_LATENCY_US_MAX,
                       &has_latency, &latency)))
    return rc;
  if (!has_gbps)
    return ydoc_fail(d, lines[i], "%s: 'gbps' is missing", where);
  bool overlap = false;
  yaml_node_t *o = ydoc_get(d, n, "overlap");
  if (o) {
    const char *t = o->type == YAML_SCALAR_NODE ? ydoc_scalar(o) : "";
    if (strcmp(t, "true") != 0 && strcmp(t, "false") != 0)
      return ydoc_fail(d, ydoc_line(o),
                       "%s.overlap: expected true or false, got %s", where,
                       *t ? t : ydoc_kind(o));
    overlap = strcmp(t, "true") == 0;
  }
  const char *sides[2] = {from, to};
  for (int k = 0; k < 2; k++)
    if (!link_side_known(s, sides[k]))
      return ydoc_fail(
          d, ydoc_line(ydoc_get(d, n, k ? "to" : "from")),
          "%s.%s: '%s' is neither '*', a worker class (gpu, sram, tpu), the "
          "profile of a worker entry nor a worker of this file (NAME-i)",
          where, k ? "to" : "from", sides[k]);
  for (size_t j = 0; j < i; j++)
    if (strcmp(pairs[j][0], from) == 0 && strcmp(pairs[j][1], to) == 0)
      return ydoc_fail(d, lines[i],
                       "%s: the link %s>%s is also given on line %d", where,
                       from, to, lines[j]);
  size_t len = strlen(spec);
  int w = snprintf(spec + len, speclen - len, "%s%s>%s=%.15g", len ? "," : "",
                   from, to, gbps);
  if (w > 0 && (has_latency || overlap))
    w += snprintf(spec + len + w, speclen - len - (size_t)w, ":%.15g%s",
                  latency, overlap ? ":overlap" : "");
  return 0;
}

/* links: the KV transfer links between workers, as the scheduler's --links
 * spec, which is checked as the scheduler parses it. */
static int parse_links(ydoc_t *d, yaml_node_t *n, cluster_spec_t *s) {
  if (n->type != YAML_SEQUENCE_NODE)
    return ydoc_fail(d, ydoc_line(n), "links: expected a list, got %s",
                     ydoc_kind(n));
  size_t count =
      (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  s->links_line = ydoc_line(n);
  if (count == 0)
    return 0;
  /* Each rule is at most two names, two numbers and ":overlap". */
  size_t speclen = count * (2 * 64 + 2 * 24 + 16);
  char(*pairs)[2][64] = calloc(count, sizeof *pairs);
  int *lines = calloc(count, sizeof *lines);
  s->links = calloc(1, speclen);
  int rc = 0;
  if (!pairs || !lines || !s->links)
    rc = -ENOMEM;
  for (size_t i = 0; rc == 0 && i < count; i++)
    rc = parse_link(d, ydoc_node(d, n->data.sequence.items.start[i]), i, s,
                    s->links, speclen, pairs, lines);
  /* The launcher passes it as one argument of at most PATH_MAX bytes; the
   * scheduler's text settings are as long at most. */
  if (rc == 0 && strlen(s->links) > CLUSTER_LINKS_MAX)
    rc = ydoc_fail(d, s->links_line,
                   "links: %zu entries make a spec of more than %d "
                   "characters; name classes or profiles instead of workers",
                   count, CLUSTER_LINKS_MAX);
  if (rc == 0) {
    link_table_t *t = NULL;
    char why[256];
    if (link_table_parse(s->links, &t, why, sizeof why))
      rc = ydoc_fail(d, s->links_line, "links: %s", why);
    link_table_free(&t);
  }
  free(pairs);
  free(lines);
  return rc;
}

static int parse_root(ydoc_t *d, yaml_node_t *root, cluster_spec_t *s) {
  static const char *const own[] = {"profiles", "scheduler", "workers", "links",
                                    NULL};
  const keys_t keys = {own, 0};
  char profiles[4096];
  int rc;
  if (!root)
    return ydoc_fail(d, 1, "empty cluster file");
  if (root->type != YAML_MAPPING_NODE)
    return ydoc_fail(d, ydoc_line(root),
                     "expected a mapping with profiles, scheduler and workers, "
                     "got %s",
                     ydoc_kind(root));
  if ((rc = check_keys(d, root, "cluster", &keys)) ||
      (rc = get_string(d, root, "cluster", "profiles", 1, profiles,
                       sizeof profiles, &s->profiles_line)))
    return rc;
  s->profiles_path = resolve(d->path, profiles);
  if (!s->profiles_path)
    return -ENOMEM;

  yaml_node_t *sched = ydoc_get(d, root, "scheduler");
  if (!sched)
    return ydoc_fail(d, ydoc_line(root), "cluster: 'scheduler' is missing");
  if ((rc = parse_scheduler(d, sched, s)))
    return rc;

  yaml_node_t *workers = ydoc_get(d, root, "workers");
  if (!workers)
    return ydoc_fail(d, ydoc_line(root), "cluster: 'workers' is missing");
  if (workers->type != YAML_SEQUENCE_NODE)
    return ydoc_fail(d, ydoc_line(workers), "workers: expected a list, got %s",
                     ydoc_kind(workers));
  size_t n = (size_t)(workers->data.sequence.items.top -
                      workers->data.sequence.items.start);
  s->workers = calloc(n ? n : 1, sizeof *s->workers);
  if (!s->workers)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *item = ydoc_node(d, workers->data.sequence.items.start[i]);
    /* Counted first, so that a failed entry's settings are freed too. */
    s->nworkers++;
    if ((rc = parse_worker(d, item, i, &s->workers[i])))
      return rc;
  }
  if ((rc = check_unique(d, s)))
    return rc;
  yaml_node_t *links = ydoc_get(d, root, "links");
  return links ? parse_links(d, links, s) : 0;
}

int cluster_file_load(const char *path, cluster_spec_t **out, char *err,
                      size_t errlen) {
  ydoc_t doc;
  *out = NULL;
  int rc = ydoc_load(&doc, path, err, errlen);
  if (rc)
    return rc;
  cluster_spec_t *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path)))
    rc = -ENOMEM;
  else
    rc = parse_root(&doc, ydoc_root(&doc), s);
  if (rc == 0) {
    *out = s;
    s = NULL;
  }
  if (rc == -ENOMEM)
    snprintf(err, errlen, "%s: out of memory", path);
  ydoc_free(&doc);
  cluster_spec_destroy(&s);
  return rc;
}

void cluster_spec_destroy(cluster_spec_t **spec) {
  cluster_spec_t *s = *spec;
  if (!s)
    return;
  for (size_t i = 0; i < SET_COUNT; i++)
    free(s->set[i]);
  for (size_t i = 0; i < s->nworkers; i++)
    for (size_t j = 0; j < SET_COUNT; j++)
      free(s->workers[i].set[j]);
  free(s->path);
  free(s->profiles_path);
  free(s->links);
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
  /* scheduler.slo was checked when the file was read. */
  slo_t slo[INFS_CLASS_COUNT];
  slo_defaults(slo);
  if (spec->set[SET_SLO])
    (void)slo_parse(spec->set[SET_SLO], slo, why, sizeof why);
  for (size_t i = 0; rc == 0 && i < spec->nworkers; i++) {
    const cluster_worker_t *w = &spec->workers[i];
    if (slo_check_profile(slo, profile_set_find(set, w->profile), why,
                          sizeof why) == 0)
      continue;
    if (spec->set[SET_SLO])
      snprintf(err, errlen, "%s:%d: scheduler.slo: %s (workers[%zu])",
               spec->path, spec->set_line[SET_SLO], why, i);
    else
      snprintf(err, errlen, "%s:%d: workers[%zu]: the default %s",
               spec->path, w->profile_line, i, why);
    rc = INFS_ECONFIG;
  }
  profile_set_destroy(&set);
  return rc;
}

int cluster_spec_check_ready(const cluster_spec_t *spec, char *err,
                             size_t errlen) {
  char why[512];
  for (setting_id_t id = 0; id < SET_COUNT; id++) {
    const setting_t *st = settings_get(id);
    if (spec->set[id] && settings_ready(st, spec->set[id], why, sizeof why)) {
      snprintf(err, errlen, "%s:%d: scheduler.%s: %s", spec->path,
               spec->set_line[id], st->name, why);
      return INFS_ECONFIG;
    }
    for (size_t i = 0; i < spec->nworkers; i++) {
      const cluster_worker_t *w = &spec->workers[i];
      if (w->set[id] && settings_ready(st, w->set[id], why, sizeof why)) {
        snprintf(err, errlen, "%s:%d: workers[%zu].%s: %s", spec->path,
                 w->set_line[id], i, st->name, why);
        return INFS_ECONFIG;
      }
    }
  }
  return 0;
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
