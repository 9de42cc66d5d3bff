#include "apikeys.h"

#include "infsched/errors.h"
#include "xalloc.h"
#include "ydoc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct apikey {
  char *key;
  size_t len;
  int tenant;
  infs_class_t cls;
  int line; /* for the message about a duplicate */
} apikey_t;

struct apikeys {
  apikey_t *keys;
  size_t n;
  char **tenants;
  size_t n_tenants;
};

void apikeys_destroy(apikeys_t **pk) {
  apikeys_t *k = *pk;
  if (!k)
    return;
  for (size_t i = 0; i < k->n; i++)
    free(k->keys[i].key);
  for (size_t i = 0; i < k->n_tenants; i++)
    free(k->tenants[i]);
  free(k->keys);
  free(k->tenants);
  free(k);
  *pk = NULL;
}

/* A key travels in a header: visible ASCII, no spaces. */
static bool key_chars_ok(const char *s) {
  for (; *s; s++)
    if (*s < 0x21 || *s > 0x7e)
      return false;
  return true;
}

/* A tenant becomes a label value and a log word: a plain name. */
static bool tenant_chars_ok(const char *s) {
  for (; *s; s++)
    if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
        !(*s >= '0' && *s <= '9') && *s != '-' && *s != '_' && *s != '.')
      return false;
  return true;
}

static int tenant_index(apikeys_t *k, const char *name) {
  for (size_t i = 0; i < k->n_tenants; i++)
    if (strcmp(k->tenants[i], name) == 0)
      return (int)i;
  k->tenants = xreallocarray(k->tenants, k->n_tenants + 1, sizeof *k->tenants);
  k->tenants[k->n_tenants] = xstrdup(name);
  return (int)k->n_tenants++;
}

/* The scalar under key in map, or NULL after failing with why. */
static const char *scalar(ydoc_t *d, yaml_node_t *map, size_t i,
                          const char *key, bool required, int *rc) {
  yaml_node_t *v = ydoc_get(d, map, key);
  if (!v) {
    if (required)
      *rc = ydoc_fail(d, ydoc_line(map), "keys[%zu]: no '%s'", i, key);
    return NULL;
  }
  if (v->type != YAML_SCALAR_NODE) {
    *rc = ydoc_fail(d, ydoc_line(v), "keys[%zu].%s: expected a string, got %s",
                    i, key, ydoc_kind(v));
    return NULL;
  }
  return ydoc_scalar(v);
}

static int parse_entry(ydoc_t *d, apikeys_t *k, yaml_node_t *e, size_t i) {
  static const char *const fields[] = {"key", "tenant", "class", NULL};
  int rc = 0;
  if (e->type != YAML_MAPPING_NODE)
    return ydoc_fail(d, ydoc_line(e),
                     "keys[%zu]: expected a mapping with key, tenant and "
                     "class, got %s",
                     i, ydoc_kind(e));
  for (yaml_node_pair_t *p = e->data.mapping.pairs.start;
       p < e->data.mapping.pairs.top; p++) {
    yaml_node_t *f = ydoc_node(d, p->key);
    bool known = false;
    for (size_t j = 0; fields[j] && f->type == YAML_SCALAR_NODE; j++)
      known = known || strcmp(ydoc_scalar(f), fields[j]) == 0;
    if (!known)
      return ydoc_fail(d, ydoc_line(f),
                       "keys[%zu]: unknown field '%s' (key, tenant, class)", i,
                       f->type == YAML_SCALAR_NODE ? ydoc_scalar(f) : "?");
  }
  const char *key = scalar(d, e, i, "key", true, &rc);
  const char *tenant = key ? scalar(d, e, i, "tenant", true, &rc) : NULL;
  const char *cls_name = tenant ? scalar(d, e, i, "class", false, &rc) : NULL;
  if (rc)
    return rc;
  int line = ydoc_line(ydoc_get(d, e, "key"));
  size_t len = strlen(key);
  if (len < APIKEYS_KEY_MIN || len > APIKEYS_KEY_MAX || !key_chars_ok(key))
    return ydoc_fail(d, line,
                     "keys[%zu].key: a key is %d to %d visible ASCII "
                     "characters without spaces (this one has %zu)",
                     i, APIKEYS_KEY_MIN, APIKEYS_KEY_MAX, len);
  if (!*tenant || strlen(tenant) > APIKEYS_TENANT_MAX ||
      !tenant_chars_ok(tenant))
    return ydoc_fail(d, line,
                     "keys[%zu].tenant: '%s' is not a name of 1 to %d "
                     "letters, digits, '-', '_' or '.'",
                     i, tenant, APIKEYS_TENANT_MAX);
  infs_class_t cls = INFS_CLASS_AGENT;
  if (cls_name && infs_class_parse(cls_name, &cls))
    return ydoc_fail(d, line,
                     "keys[%zu].class: '%s' is not interactive, agent or "
                     "batch",
                     i, cls_name);
  for (size_t j = 0; j < k->n; j++)
    if (k->keys[j].len == len && memcmp(k->keys[j].key, key, len) == 0)
      return ydoc_fail(d, line,
                       "keys[%zu].key: the same key as on line %d (each key "
                       "belongs to one tenant)",
                       i, k->keys[j].line);
  k->keys[k->n++] = (apikey_t){.key = xstrdup(key),
                               .len = len,
                               .tenant = tenant_index(k, tenant),
                               .cls = cls,
                               .line = line};
  return 0;
}

int apikeys_load(const char *path, apikeys_t **out, char *err, size_t errlen) {
  ydoc_t d;
  *out = NULL;
  int rc = ydoc_load(&d, path, err, errlen);
  if (rc)
    return rc;
  apikeys_t *k = xcalloc(1, sizeof *k);
  yaml_node_t *root = ydoc_root(&d);
  yaml_node_t *list = NULL;
  if (!root || root->type != YAML_MAPPING_NODE ||
      root->data.mapping.pairs.top - root->data.mapping.pairs.start != 1 ||
      !(list = ydoc_get(&d, root, "keys"))) {
    rc = ydoc_fail(&d, root ? ydoc_line(root) : 1,
                   "expected a mapping with one field, keys: a list of "
                   "{key, tenant, class}");
    goto out;
  }
  if (list->type != YAML_SEQUENCE_NODE) {
    rc = ydoc_fail(&d, ydoc_line(list), "keys: expected a list, got %s",
                   ydoc_kind(list));
    goto out;
  }
  size_t n =
      (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
  if (n == 0 || n > APIKEYS_MAX) {
    rc = ydoc_fail(&d, ydoc_line(list),
                   "keys: %zu keys; a keys file holds 1 to %d (without "
                   "keys, leave the file out)",
                   n, APIKEYS_MAX);
    goto out;
  }
  k->keys = xcalloc(n, sizeof *k->keys);
  for (size_t i = 0; i < n && !rc; i++)
    rc = parse_entry(&d, k, ydoc_node(&d, list->data.sequence.items.start[i]),
                     i);
out:
  ydoc_free(&d);
  if (rc)
    apikeys_destroy(&k);
  *out = k;
  return rc;
}

/* Whether the presented bytes a equal the key b, in time that depends on
 * alen alone: every byte of a is compared, against b's bytes in turn, and
 * no branch depends on b. */
static bool ct_equal(const unsigned char *a, size_t alen,
                     const unsigned char *b, size_t blen) {
  volatile unsigned diff = (unsigned)(alen ^ blen);
  for (size_t i = 0; i < alen; i++)
    diff |= (unsigned)(a[i] ^ b[i % blen]);
  return diff == 0;
}

int apikeys_lookup(const apikeys_t *k, const char *key, size_t len,
                   infs_class_t *cls) {
  int found = -1;
  infs_class_t c = INFS_CLASS_AGENT;
  /* Longer than any key: refused without reading it. */
  if (len > APIKEYS_KEY_MAX)
    return -1;
  for (size_t i = 0; i < k->n; i++) {
    /* Selected by mask, so that the match's position takes no branch. */
    unsigned hit =
        ct_equal((const unsigned char *)key, len,
                 (const unsigned char *)k->keys[i].key, k->keys[i].len);
    unsigned mask = 0u - hit;
    found =
        (int)(((unsigned)found & ~mask) | ((unsigned)k->keys[i].tenant & mask));
    c = (infs_class_t)(((unsigned)c & ~mask) |
                       ((unsigned)k->keys[i].cls & mask));
  }
  if (found >= 0)
    *cls = c;
  return found;
}

size_t apikeys_tenants(const apikeys_t *k) {
  return k->n_tenants;
}

const char *apikeys_tenant_name(const apikeys_t *k, size_t tenant) {
  return tenant < k->n_tenants ? k->tenants[tenant] : NULL;
}
