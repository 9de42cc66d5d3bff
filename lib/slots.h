/* Slot numbers for the tables whose entries are found by index (requests,
 * HTTP exchanges, transfers in flight): the free ones on a stack, the
 * lowest handed out first so that ids made from them stay small in logs,
 * and a capacity that doubles when none is free. The entries live in the
 * caller's arrays, which it grows to cap when slots_take says so. */
#ifndef INFSCHED_SLOTS_H
#define INFSCHED_SLOTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct slots {
  uint32_t *free; /* the free slots, the lowest on top */
  size_t n_free;
  size_t cap; /* the length of the caller's arrays */
} slots_t;

/* Takes a free slot into *slot, doubling the capacity (from first) when
 * none is free. Returns the capacity before: when it is less than s->cap,
 * the caller grows its arrays to s->cap before it uses the slot. */
size_t slots_take(slots_t *s, size_t first, uint32_t *slot);
/* Gives back a slot that slots_take handed out. */
void slots_put(slots_t *s, uint32_t slot);
void slots_free(slots_t *s);

#endif
