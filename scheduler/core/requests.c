#include "core_internal.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SLOT_BITS 32

void requests_init(req_table_t *t) {
  memset(t, 0, sizeof *t);
  u64map_init(&t->by_client);
}

void requests_free(req_table_t *t) {
  for (size_t i = 0; i < t->table.cap; i++) {
    if (t->slots[i]) {
      free(t->slots[i]->store);
      buf_free(&t->slots[i]->said);
      buf_free(&t->slots[i]->kv_params);
    }
    free(t->slots[i]);
  }
  free(t->slots);
  free(t->generation);
  slots_free(&t->table);
  u64map_free(&t->by_client);
  memset(t, 0, sizeof *t);
}

static uint64_t client_key(const core_peer_t *client, uint64_t client_id) {
  return XXH3_64bits_withSeed(client->id, client->len,
                              client_id ^ (uint64_t)client->door << 63);
}

/* Takes a slot, growing the table's arrays when it had none free. */
static uint32_t take_slot(req_table_t *t) {
  uint32_t slot;
  size_t had = slots_take(&t->table, 256, &slot);
  if (had < t->table.cap) {
    t->slots = xrecallocarray(t->slots, had, t->table.cap, sizeof *t->slots);
    t->generation = xreallocarray(t->generation, t->table.cap,
                                  sizeof *t->generation);
    for (size_t i = had; i < t->table.cap; i++)
      t->generation[i] = 1;
  }
  return slot;
}

/* Lays the request's variable-size fields out in one buffer that is reused
 * when the slot is, so a steady load does not allocate per request. */
static size_t len_of(const char *s) {
  return s ? strlen(s) : 0;
}

size_t requests_size(const core_request_t *s) {
  return s->n_blocks * sizeof(uint64_t) + len_of(s->model) + 1 +
         len_of(s->session) + 1 + len_of(s->messages) + 1 +
         len_of(s->options) + 1 + s->prompt_len + 1;
}

/* Copies n bytes of src to *p as a string and moves *p past it. */
static const char *put(char **p, const char *src, size_t n) {
  char *at = *p;
  if (n)
    memcpy(at, src, n);
  at[n] = '\0';
  *p += n + 1;
  return at;
}

static void copy_spec(req_t *r, const core_request_t *s) {
  size_t blocks_bytes = s->n_blocks * sizeof(uint64_t);
  size_t need = requests_size(s);
  r->bytes = need;
  if (need > r->store_cap) {
    r->store = xrealloc(r->store, need);
    r->store_cap = need;
  }
  char *p = r->store;
  r->spec = *s;
  /* Blocks first: the buffer comes from malloc, so they are aligned. */
  if (blocks_bytes)
    memcpy(p, s->blocks, blocks_bytes);
  r->spec.blocks = (const uint64_t *)p;
  p += blocks_bytes;
  r->spec.model = put(&p, s->model, len_of(s->model));
  r->spec.session = put(&p, s->session, len_of(s->session));
  r->spec.messages = put(&p, s->messages, len_of(s->messages));
  r->spec.options = put(&p, s->options, len_of(s->options));
  r->spec.prompt = put(&p, s->prompt, s->prompt_len);
}

req_t *requests_add(req_table_t *t, const core_peer_t *client,
                    const core_request_t *spec, infs_time_t now) {
  uint64_t key = client_key(client, spec->id);
  uint32_t existing;
  if (u64map_get(&t->by_client, key, &existing))
    return NULL;
  uint32_t slot = take_slot(t);
  req_t *r = t->slots[slot];
  if (!r) {
    r = xcalloc(1, sizeof *r);
    t->slots[slot] = r;
  }
  r->id = ((uint64_t)t->generation[slot] << SLOT_BITS) | slot;
  r->client_key = key;
  r->client_id = spec->id;
  r->session_key = sessions_key(spec->session);
  r->client.door = client->door;
  r->client.len = client->len;
  memcpy(r->client.id, client->id, client->len);
  copy_spec(r, spec);
  r->spec.id = r->id;
  r->state = REQ_QUEUED;
  r->worker = -1;
  r->attempts = 0;
  r->tokens_out = 0;
  buf_reset(&r->said);
  r->unclaimed = false;
  r->done_kept = false;
  r->uncached = 0;
  r->counted_waiting = false;
  r->arrived = now;
  r->dispatched_at = 0;
  r->first_token_at = r->last_token_at = 0;
  r->shunned = -1;
  r->phase = INFS_PHASE_FULL;
  r->decode_worker = r->kv_worker = -1;
  buf_reset(&r->kv_params);
  r->whole = false;
  r->dispatch_tokens = 0;
  r->prefill = (core_done_t){0};
  r->prefilled_at = 0;
  r->prefill_worker[0] = r->prefill_class[0] = '\0';
  list_init(&r->link);
  u64map_put(&t->by_client, key, slot);
  t->open++;
  t->bytes += r->bytes;
  return r;
}

req_t *requests_get(const req_table_t *t, uint64_t id) {
  uint64_t slot = id & 0xffffffffu;
  if (slot >= t->table.cap)
    return NULL;
  req_t *r = t->slots[slot];
  if (!r || r->state == REQ_FREE || r->id != id)
    return NULL;
  return r;
}

req_t *requests_by_client(const req_table_t *t, const core_peer_t *client,
                          uint64_t client_id) {
  uint32_t slot;
  if (!u64map_get(&t->by_client, client_key(client, client_id), &slot))
    return NULL;
  req_t *r = t->slots[slot];
  if (r->client_id != client_id || !peer_equal(&r->client, client))
    return NULL;
  return r;
}

void requests_remove(req_table_t *t, req_t *r) {
  uint32_t slot = (uint32_t)(r->id & 0xffffffffu);
  u64map_del(&t->by_client, r->client_key);
  list_remove(&r->link);
  r->state = REQ_FREE;
  t->generation[slot]++;
  if (t->generation[slot] == 0)
    t->generation[slot] = 1;
  slots_put(&t->table, slot);
  t->open--;
  t->bytes -= r->bytes;
}

void requests_said(req_table_t *t, req_t *r, const char *text, size_t len) {
  if (!len)
    return;
  buf_append(&r->said, text, len); /* no cap: t->bytes bounds it */
  r->bytes += len;
  t->bytes += len;
}
