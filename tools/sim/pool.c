#include "pool.h"

#include "infsched/errors.h"
#include "xalloc.h"
#include "sim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Instance names get "-N" (up to 4 digits) and must fit a worker id, as in
 * cluster files. */
#define NAME_BASE_MAX (INFS_NAME_MAX - 1 - 5)

/* A kind of worker named name, from cluster entry w when there is one: its
 * model and capacity settings, as the worker daemon would take them. */
static void entry_set(pool_entry_t *e, const char *name,
                      const cluster_worker_t *w, const infs_profile_t *p,
                      uint32_t count) {
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  snprintf(e->key, sizeof e->key, "%s", name);
  snprintf(e->model, sizeof e->model, "%s",
           w && w->model[0] ? w->model : POOL_DEFAULT_MODEL);
  setting_value_t v;
  char why[128];
  if (w && w->set[SET_CAPACITY] &&
      settings_parse(settings_get(SET_CAPACITY), w->set[SET_CAPACITY], &v,
                     why, sizeof why) == 0)
    e->capacity = (uint32_t)v.u;
  /* The file was checked as it loaded, so a role given parses. */
  if (w && w->set[SET_ROLE])
    (void)infs_role_parse(w->set[SET_ROLE], &e->role);
  e->profile = *p;
  e->count = count;
  e->max = 2 * count;
}

int pool_from_cluster(const cluster_spec_t *spec, const profile_set_t *set,
                      pool_t *out, char *err, size_t errlen) {
  out->v = xcalloc(spec->nworkers + 1, sizeof *out->v);
  out->n = 0;
  for (size_t i = 0; i < spec->nworkers; i++) {
    const cluster_worker_t *w = &spec->workers[i];
    const infs_profile_t *p = profile_set_find(set, w->profile);
    if (!p) {
      snprintf(err, errlen, "%s:%d: profile '%s' is not in %s", spec->path,
               w->profile_line, w->profile, spec->profiles_path);
      pool_free(out);
      return INFS_ECONFIG;
    }
    entry_set(&out->v[out->n++], w->name, w, p, w->count);
  }
  return 0;
}

void pool_free(pool_t *p) {
  free(p->v);
  p->v = NULL;
  p->n = 0;
}

/* A mix key as a kind of worker: a cluster entry's name, a worker class or
 * a profile name, in that order. Returns 0, or -1 when it names nothing. */
static int resolve(const cluster_spec_t *spec, const profile_set_t *set,
                   const char *key, pool_entry_t *e) {
  for (size_t i = 0; i < spec->nworkers; i++) {
    const cluster_worker_t *w = &spec->workers[i];
    const infs_profile_t *p = profile_set_find(set, w->profile);
    if (p && strcmp(w->name, key) == 0) {
      entry_set(e, w->name, w, p, 0);
      return 0;
    }
  }
  infs_worker_class_t cls;
  if (infs_worker_class_parse(key, &cls) == 0) {
    for (size_t i = 0; i < spec->nworkers; i++) {
      const cluster_worker_t *w = &spec->workers[i];
      const infs_profile_t *p = profile_set_find(set, w->profile);
      if (p && p->cls == cls) {
        entry_set(e, w->name, w, p, 0);
        return 0;
      }
    }
    for (size_t i = 0; i < profile_set_count(set); i++) {
      const infs_profile_t *p = profile_set_at(set, i);
      if (p->cls == cls) {
        entry_set(e, key, NULL, p, 0);
        return 0;
      }
    }
    return -1;
  }
  const infs_profile_t *p = profile_set_find(set, key);
  if (!p)
    return -1;
  for (size_t i = 0; i < spec->nworkers; i++) {
    const cluster_worker_t *w = &spec->workers[i];
    if (strcmp(w->profile, key) == 0) {
      entry_set(e, w->name, w, p, 0);
      return 0;
    }
  }
  entry_set(e, key, NULL, p, 0);
  return 0;
}

static int parse_count(const char *s, uint32_t *out) {
  char *end;
  if (*s < '0' || *s > '9')
    return -1;
  unsigned long v = strtoul(s, &end, 10);
  if (*end || v > CLUSTER_MAX_COUNT)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static int parse_item(pool_entry_t *e, const char *item, const char *value,
                      int ranges, char *err, size_t errlen) {
  char buf[32];
  const char *colon = ranges ? strchr(value, ':') : NULL;
  uint32_t lo = 0, hi;
  if (colon) {
    snprintf(buf, sizeof buf, "%.*s", (int)(colon - value), value);
    if ((size_t)(colon - value) >= sizeof buf || parse_count(buf, &lo) ||
        parse_count(colon + 1, &hi) || lo > hi)
      goto bad;
  } else if (parse_count(value, &hi)) {
    goto bad;
  }
  e->count = hi;
  e->min = ranges ? lo : 0;
  e->max = ranges ? hi : 2 * hi;
  return 0;
bad:
  snprintf(err, errlen, "'%s': expected KEY=N%s with N from 0 to %d", item,
           ranges ? " or KEY=MIN:MAX" : "", CLUSTER_MAX_COUNT);
  return INFS_ECONFIG;
}

int pool_apply_mix(pool_t *p, const cluster_spec_t *spec,
                   const profile_set_t *set, const char *mix, int ranges,
                   char *err, size_t errlen) {
  pool_t out = {xcalloc(strlen(mix) / 2 + 2, sizeof *out.v), 0};
  char *copy = xstrdup(mix);
  char *save = NULL;
  int rc = 0;
  for (char *item = strtok_r(copy, ",", &save); item;
       item = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(item, '=');
    if (!eq || eq == item) {
      snprintf(err, errlen,
               "'%s': expected KEY[:ROLE]=N (KEY: a class such as "
               "gpu, or a profile name)",
               item);
      rc = INFS_ECONFIG;
      goto out;
    }
    *eq = '\0';
    char *colon = strchr(item, ':');
    infs_role_t role = INFS_ROLE_BOTH;
    if (colon) {
      *colon = '\0';
      if (infs_role_parse(colon + 1, &role)) {
        snprintf(err, errlen,
                 "'%s:%s': unknown role '%s' (prefill, decode or both)", item,
                 colon + 1, colon + 1);
        rc = INFS_ECONFIG;
        goto out;
      }
    }
    pool_entry_t e;
    if (resolve(spec, set, item, &e)) {
      snprintf(err, errlen,
               "'%s' is neither a worker entry of %s, a worker "
               "class (gpu, sram, tpu) with a profile, nor a profile",
               item, spec->path);
      rc = INFS_ECONFIG;
      goto out;
    }
    if (colon) {
      /* Workers of one kind in two roles need names of their own. */
      size_t len = strlen(e.name);
      snprintf(e.name + len, sizeof e.name - len, "-%s",
               infs_role_name(role));
      e.role = role;
      e.role_named = true;
      *colon = ':';
    }
    if (strlen(e.name) > NAME_BASE_MAX) {
      snprintf(err, errlen, "'%s': worker names are at most %d bytes", item,
               NAME_BASE_MAX);
      rc = INFS_ECONFIG;
      goto out;
    }
    for (size_t i = 0; i < out.n; i++)
      if (strcmp(out.v[i].name, e.name) == 0) {
        snprintf(err, errlen, "'%s' names the workers '%s' again", item,
                 e.name);
        rc = INFS_ECONFIG;
        goto out;
      }
    *eq = '=';
    rc = parse_item(&e, item, eq + 1, ranges, err, errlen);
    if (rc)
      goto out;
    out.v[out.n++] = e;
  }
  if (out.n == 0) {
    snprintf(err, errlen, "empty pool mix");
    rc = INFS_ECONFIG;
    goto out;
  }
  pool_free(p);
  *p = out;
  out.v = NULL;
out:
  free(out.v);
  free(copy);
  return rc;
}

uint32_t pool_instances(const pool_t *p) {
  uint32_t n = 0;
  for (size_t i = 0; i < p->n; i++)
    n += p->v[i].count;
  return n;
}

sim_worker_spec_t *pool_expand(const pool_t *p, size_t *n) {
  size_t total = pool_instances(p);
  sim_worker_spec_t *v = xcalloc(total + 1, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < p->n; i++) {
    const pool_entry_t *e = &p->v[i];
    for (uint32_t j = 0; j < e->count; j++, k++) {
      /* pool_apply_mix keeps names short enough for "-N". */
      if (snprintf(v[k].id, sizeof v[k].id, "%s-%u", e->name, j) >=
          (int)sizeof v[k].id)
        abort();
      snprintf(v[k].model, sizeof v[k].model, "%s", e->model);
      v[k].capacity = e->capacity;
      v[k].profile = e->profile;
      v[k].role = e->role;
    }
  }
  *n = total;
  return v;
}

void pool_describe(const pool_t *p, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < p->n && used < len; i++) {
    const pool_entry_t *e = &p->v[i];
    int w = snprintf(buf + used, len - used, "%s%s%s%s=%u", i ? "," : "",
                     e->key, e->role_named ? ":" : "",
                     e->role_named ? infs_role_name(e->role) : "", e->count);
    if (w < 0)
      break;
    used += (size_t)w;
  }
}

void pool_grid_first(pool_t *p) {
  for (size_t i = 0; i < p->n; i++)
    p->v[i].count = p->v[i].min;
}

int pool_grid_next(pool_t *p) {
  for (size_t i = p->n; i-- > 0;) {
    if (p->v[i].count < p->v[i].max) {
      p->v[i].count++;
      return 1;
    }
    p->v[i].count = p->v[i].min;
  }
  return 0;
}
