#include "scheduler/core/core_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

uint64_t peer_hash(const core_peer_t *p) { return XXH3_64bits(p->id, p->len); }

bool peer_equal(const core_peer_t *a, const core_peer_t *b) {
  return a->len == b->len && memcmp(a->id, b->id, a->len) == 0;
}

void registry_init(registry_t *g) {
  memset(g, 0, sizeof *g);
  u64map_init(&g->by_peer);
}

void registry_free(registry_t *g) {
  for (size_t i = 0; i < g->len; i++)
    free(g->workers[i]);
  free(g->workers);
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

core_worker_t *registry_add(registry_t *g, const core_peer_t *p,
                            const core_worker_info_t *info, infs_time_t now) {
  core_worker_t *w = NULL;
  for (size_t i = 0; i < g->len && !w; i++)
    if (!g->workers[i]->live)
      w = g->workers[i];
  if (!w) {
    if (g->len == g->cap) {
      size_t cap = g->cap ? g->cap * 2 : 16;
      core_worker_t **ws = realloc(g->workers, cap * sizeof *ws);
      if (!ws)
        abort();
      g->workers = ws;
      g->cap = cap;
    }
    w = calloc(1, sizeof *w);
    if (!w)
      abort();
    w->index = (uint32_t)g->len;
    g->workers[g->len++] = w;
  }
  uint32_t index = w->index;
  memset(w, 0, sizeof *w);
  w->index = index;
  w->live = true;
  w->peer.len = p->len;
  memcpy(w->peer.id, p->id, p->len);
  w->peer_key = peer_hash(p);
  snprintf(w->id, sizeof w->id, "%s", info->worker_id);
  snprintf(w->model, sizeof w->model, "%s", info->model ? info->model : "");
  snprintf(w->backend, sizeof w->backend, "%s",
           info->backend ? info->backend : "");
  w->profile = *info->profile;
  w->capacity = info->capacity;
  w->last_seen = now;
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
  g->live--;
}
