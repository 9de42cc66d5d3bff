#include "wire_arena.h"

#include "wire.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_INITIAL (8u << 10)
/* Beyond this the arena does not keep its size for the next message: one
 * huge prompt must not pin megabytes for the life of the process. */
#define ARENA_KEEP_MAX (1u << 20)
/* What one message may allocate in all, as a multiple of its size plus a
 * constant. Our messages need about their size (strings, arrays of hashes)
 * plus their structs; a frame repeating a submessage makes protobuf-c merge
 * the copies, allocating anew for each, which without a bound turns a
 * frame of a few hundred KiB into gigabytes. */
#define BUDGET_PER_BYTE 8
#define BUDGET_BASE (64u << 10)
#define ALIGN alignof(max_align_t)

/* An allocation that did not fit; freed at the next reset. */
typedef struct spill {
  struct spill *next;
  alignas(max_align_t) unsigned char data[];
} spill_t;

struct wire_arena {
  ProtobufCAllocator allocator;
  unsigned char *block;
  size_t used;
  size_t cap;
  spill_t *spills;
  size_t spilled; /* bytes in spills since the last reset */
  size_t charged; /* bytes allocated for the message being decoded */
  size_t budget;  /* and what it may allocate */
};

static void *arena_alloc(void *data, size_t size) {
  wire_arena_t *a = data;
  size_t need = (size + ALIGN - 1) & ~(ALIGN - 1);
  if (need < size || need > a->budget - a->charged)
    return NULL; /* protobuf-c then fails the decode */
  a->charged += need;
  if (need <= a->cap - a->used) {
    void *p = a->block + a->used;
    a->used += need;
    return p;
  }
  spill_t *s = malloc(sizeof *s + need);
  if (!s)
    return NULL;
  s->next = a->spills;
  a->spills = s;
  a->spilled += need;
  return s->data;
}

/* Nothing is freed one piece at a time (protobuf-c frees when it merges
 * repeated copies of a field and when it gives up on a message); the reset
 * frees it all, and the budget bounds what a message can pile up. */
static void arena_free(void *data, void *p) {
  (void)data;
  (void)p;
}

wire_arena_t *wire_arena_new(void) {
  wire_arena_t *a = calloc(1, sizeof *a);
  if (!a)
    return NULL;
  a->block = malloc(ARENA_INITIAL);
  if (!a->block) {
    free(a);
    return NULL;
  }
  a->cap = ARENA_INITIAL;
  a->allocator.alloc = arena_alloc;
  a->allocator.free = arena_free;
  a->allocator.allocator_data = a;
  return a;
}

static void free_spills(wire_arena_t *a) {
  while (a->spills) {
    spill_t *next = a->spills->next;
    free(a->spills);
    a->spills = next;
  }
  a->spilled = 0;
}

void wire_arena_destroy(wire_arena_t **pa) {
  wire_arena_t *a = *pa;
  if (!a)
    return;
  free_spills(a);
  free(a->block);
  free(a);
  *pa = NULL;
}

void wire_arena_reset(wire_arena_t *a) {
  size_t want = a->used + a->spilled;
  free_spills(a);
  a->used = 0;
  if (want <= a->cap || want > ARENA_KEEP_MAX)
    return;
  unsigned char *bigger = malloc(want);
  if (!bigger)
    return; /* spilling still works */
  free(a->block);
  a->block = bigger;
  a->cap = want;
}

int wire_unpack_in(wire_arena_t *a, const uint8_t *data, size_t len,
                   Infsched__Envelope **out) {
  a->charged = 0;
  a->budget = len <= (SIZE_MAX - BUDGET_BASE) / BUDGET_PER_BYTE
                  ? len * BUDGET_PER_BYTE + BUDGET_BASE
                  : SIZE_MAX;
  return wire_unpack_with(&a->allocator, data, len, out);
}
