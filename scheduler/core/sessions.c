#include "core_internal.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* 16k sessions active at once keep their affinity; 512 KiB. */
#define SESSION_SLOTS 16384u

void sessions_free(session_table_t *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = 0;
}

uint64_t sessions_key(const char *session) {
  if (!session || !session[0])
    return 0;
  uint64_t k = XXH3_64bits(session, strlen(session));
  return k ? k : 1;
}

const session_entry_t *sessions_find(const session_table_t *t, uint64_t key) {
  if (!key || !t->cap)
    return NULL;
  const session_entry_t *e = &t->slots[key & (t->cap - 1)];
  return e->key == key ? e : NULL;
}

void sessions_note(session_table_t *t, uint64_t key, const core_worker_t *w,
                   const req_t *r, infs_time_t now) {
  const core_request_t *spec = &r->spec;
  if (!key)
    return;
  if (!t->cap) {
    t->slots = xcalloc(SESSION_SLOTS, sizeof *t->slots);
    t->cap = SESSION_SLOTS;
  }
  session_entry_t *e = &t->slots[key & (t->cap - 1)];
  e->key = key;
  e->epoch = w->epoch;
  e->worker = w->index;
  e->n_blocks = (uint32_t)spec->n_blocks;
  e->last_block = spec->n_blocks ? spec->blocks[spec->n_blocks - 1] : 0;
  e->uncached = r->uncached;
  e->at = now;
}
