/* Decoding into a bump arena: a process that decodes a message on every
 * request (the scheduler, a worker) pays for protobuf-c's allocations once,
 * not per message. Everything decoded into the arena stays valid until the
 * next wire_arena_reset, which frees it all at once. */
#ifndef INFSCHED_WIRE_ARENA_H
#define INFSCHED_WIRE_ARENA_H

#include "infsched.pb-c.h"

#include <stddef.h>

typedef struct wire_arena wire_arena_t;

wire_arena_t *wire_arena_new(void);
void wire_arena_destroy(wire_arena_t **a);

/* As wire_unpack, but the envelope lives in the arena: do not wire_free
 * it. A frame whose decoding would allocate more than 8 times its size
 * (plus 64 KiB) fails with INFS_EBADMSG: only a frame that repeats a
 * submessage to make protobuf-c merge the copies comes near. */
int wire_unpack_in(wire_arena_t *a, const uint8_t *data, size_t len,
                   Infsched__Envelope **out);

/* Frees every envelope decoded since the last reset. A reset after a
 * message that did not fit sizes the arena for it, so that a steady
 * stream of such messages stops allocating. */
void wire_arena_reset(wire_arena_t *a);

#endif
