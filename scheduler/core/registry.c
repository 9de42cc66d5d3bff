#include "core_internal.h"

#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Routing ids of up to 7 bytes (ZeroMQ's own are 5) are packed with their
 * length and door into one word, so no two such ids share a key (the map
 * mixes keys itself). Longer ones take XXH3. */
uint64_t peer_hash(const core_peer_t *p) {
  if (p->len >= 8)
    return XXH3_64bits_withSeed(p->id, p->len, p->door);
  uint64_t v = (uint64_t)p->len << 56 | (uint64_t)p->door << 59;
  for (size_t i = 0; i < p->len; i++)
    v |= (uint64_t)p->id[i] << (8 * i);
  return v;
}

void registry_init(registry_t *g) {
  memset(g, 0, sizeof *g);
  u64map_init(&g->by_peer);
}

void registry_free(registry_t *g) {
  for (size_t i = 0; i < g->len; i++)
    free(g->workers[i]);
  free(g->workers);
  free(g->hot);
  free(g->models);
  free(g->bindings);
  u64map_free(&g->by_peer);
  memset(g, 0, sizeof *g);
}

core_worker_t *registry_find_peer(const registry_t *g, const core_peer_t *p) {
  uint32_t idx;
  if (!u64map_get(&g->by_peer, peer_hash(p), &idx))
    return NULL;
  core_worker_t *w = g->workers[idx];
  return w->live && peer_equal(&w->peer, p) ? w : NULL;
}

core_worker_t *registry_find_id(const registry_t *g, const char *id) {
  for (size_t i = 0; i < g->len; i++) {
    core_worker_t *w = g->workers[i];
    if (w->live && strcmp(w->id, id) == 0)
      return w;
  }
  return NULL;
}

uint16_t registry_model_id(const registry_t *g, const char *model) {
  if (!model || !model[0])
    return 0;
  for (size_t i = 1; i < g->n_models; i++)
    if (strcmp(g->models[i], model) == 0)
      return (uint16_t)i;
  return REGISTRY_NO_MODEL;
}

/* Interns a worker's model name; REGISTRY_NO_MODEL when the table is full. */
static uint16_t intern_model(registry_t *g, const char *model) {
  uint16_t id = registry_model_id(g, model);
  if (id != REGISTRY_NO_MODEL)
    return id;
  if (g->n_models == 0) {
    g->models = xcalloc(16, sizeof *g->models);
    g->n_models = 1; /* [0] is "" */
  }
  if (g->n_models >= REGISTRY_NO_MODEL)
    return REGISTRY_NO_MODEL;
  if ((g->n_models & (g->n_models - 1)) == 0 && g->n_models >= 16) {
    g->models = xrealloc(g->models, g->n_models * 2 * sizeof *g->models);
  }
  snprintf(g->models[g->n_models], sizeof g->models[0], "%s", model);
  return (uint16_t)g->n_models++;
}

/* Workers of one profile form a group; past REGISTRY_GROUPS profiles the
 * last group takes the rest. */
static uint8_t intern_group(registry_t *g, const infs_profile_t *p) {
  for (size_t i = 0; i < g->n_groups; i++)
    if (profile_equal(&g->groups[i], p))
      return (uint8_t)i;
  if (g->n_groups == REGISTRY_GROUPS)
    return REGISTRY_GROUPS - 1;
  g->groups[g->n_groups] = *p;
  return (uint8_t)g->n_groups++;
}

core_worker_t *registry_add(registry_t *g, const core_peer_t *p,
                            const core_worker_info_t *info, infs_time_t now) {
  uint16_t model = 0;
  if (info->model && info->model[0]) {
    char name[INFS_NAME_MAX];
    snprintf(name, sizeof name, "%s", info->model);
    model = intern_model(g, name);
    if (model == REGISTRY_NO_MODEL)
      return NULL;
  }
  core_worker_t *w = NULL;
  for (size_t i = 0; i < g->len && !w; i++)
    if (!g->workers[i]->live)
      w = g->workers[i];
  if (!w) {
    if (g->len == g->cap) {
      size_t cap = g->cap ? g->cap * 2 : 16;
      g->workers = xreallocarray(g->workers, cap, sizeof *g->workers);
      g->hot = xreallocarray(g->hot, cap, sizeof *g->hot);
      g->cap = cap;
    }
    w = xcalloc(1, sizeof *w);
    w->index = (uint32_t)g->len;
    g->workers[g->len++] = w;
  }
  uint32_t index = w->index;
  memset(w, 0, sizeof *w);
  w->index = index;
  w->live = true;
  w->epoch = ++g->epochs;
  w->peer.door = p->door;
  w->peer.len = p->len;
  memcpy(w->peer.id, p->id, p->len);
  w->peer_key = peer_hash(p);
  snprintf(w->id, sizeof w->id, "%s", info->worker_id);
  snprintf(w->model, sizeof w->model, "%s", info->model ? info->model : "");
  snprintf(w->backend, sizeof w->backend, "%s",
           info->backend ? info->backend : "");
  w->profile = *info->profile;
  w->role = info->role;
  if (!g->min_block_size || info->profile->block_size < g->min_block_size)
    g->min_block_size = info->profile->block_size;
  w->last_seen = w->registered_at = now;
  g->hot[index] = (worker_hot_t){
      .capacity = info->capacity,
      .max_context = info->profile->max_context,
      .model = model,
      .group = intern_group(g, info->profile),
      .role = (uint8_t)info->role,
  };
  g->group_live[g->hot[index].group]++;
  list_init(&w->reqs);
  u64map_put(&g->by_peer, w->peer_key, w->index);
  g->live++;
  return w;
}

void registry_remove(registry_t *g, core_worker_t *w) {
  uint32_t idx;
  if (u64map_get(&g->by_peer, w->peer_key, &idx) && idx == w->index)
    u64map_del(&g->by_peer, w->peer_key);
  w->live = false;
  g->group_live[g->hot[w->index].group]--;
  g->hot[w->index] = (worker_hot_t){0};
  g->live--;
}

/* A linear search: registrations are rare, and a worker registers once. */
const char *registry_bound_key(const registry_t *g, const char *id) {
  for (size_t i = 0; i < g->n_bindings; i++)
    if (strcmp(g->bindings[i].id, id) == 0)
      return g->bindings[i].key;
  return NULL;
}

int registry_bind(registry_t *g, const char *id, const char *key) {
  if (g->n_bindings == CORE_KEY_BINDINGS_MAX)
    return -1;
  if (g->n_bindings == g->bindings_cap) {
    g->bindings_cap = g->bindings_cap ? 2 * g->bindings_cap : 16;
    g->bindings =
        xreallocarray(g->bindings, g->bindings_cap, sizeof *g->bindings);
  }
  struct key_binding *b = &g->bindings[g->n_bindings++];
  snprintf(b->id, sizeof b->id, "%s", id);
  snprintf(b->key, sizeof b->key, "%s", key);
  return 0;
}
