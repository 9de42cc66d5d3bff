/* Envelope encoding shared by every process: versioning, packing into a
 * reused buffer, and decoding with clear failure codes. */
#ifndef INFSCHED_WIRE_H
#define INFSCHED_WIRE_H

#include "infsched.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 3
#define WIRE_DEFAULT_MAX_MSG (16u << 20)

/* A growable byte buffer reused across messages, so packing does not
 * allocate on the hot path once it has grown. */
typedef struct wire_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
} wire_buf_t;

void wire_buf_free(wire_buf_t *b);

/* Sets the version and packs env into buf (replacing its contents). */
void wire_pack(Infsched__Envelope *env, wire_buf_t *buf);

/* Decodes one envelope. Returns 0 and an envelope the caller frees with
 * wire_free, or INFS_EBADMSG / INFS_EVERSION (the envelope is then NULL). */
int wire_unpack(const uint8_t *data, size_t len, Infsched__Envelope **out);
void wire_free(Infsched__Envelope *env);
/* wire_unpack with protobuf-c's allocator (NULL: malloc); see
 * lib/wire_arena.h for the one the hot path uses. */
int wire_unpack_with(ProtobufCAllocator *allocator, const uint8_t *data,
                     size_t len, Infsched__Envelope **out);

/* Makes env (initialised) carry e, an Error about request_id; message is
 * borrowed. Returns env. */
Infsched__Envelope *wire_error_msg(Infsched__Envelope *env, Infsched__Error *e,
                                   uint64_t request_id, int code,
                                   const char *message);

/* Error codes from 100 are rejections: the request was never run. */
int wire_error_is_rejection(Infsched__ErrorCode code);
const char *wire_error_name(Infsched__ErrorCode code);
const char *wire_body_name(Infsched__Envelope__BodyCase c);

/* Conversions between wire messages and infsched's own types. The message
 * filled by *_to_msg borrows strings from its source. */
#include "infsched/profile.h"

void wire_profile_to_msg(const infs_profile_t *p, Infsched__Profile *m);
void wire_profile_from_msg(const Infsched__Profile *m, infs_profile_t *p);
/* The request borrows m's strings and hashes. */
void wire_request_from_msg(const Infsched__Request *m, infs_request_t *q);
void wire_request_to_msg(const infs_request_t *q, Infsched__Request *m);
/* Maps CLASS_UNSPECIFIED to agent; an unknown value to INFS_CLASS_COUNT. */
infs_class_t wire_class_from_msg(Infsched__RequestClass c);
Infsched__RequestClass wire_class_to_msg(infs_class_t c);
/* The handle borrows m's strings (params_json: NULL when empty). */
void wire_kv_from_msg(const Infsched__KvHandle *m, infs_kv_handle_t *k);
void wire_kv_to_msg(const infs_kv_handle_t *k, Infsched__KvHandle *m);
/* Returns 0, or INFS_EBADREQUEST for a value this build does not know. */
int wire_role_from_msg(Infsched__Role r, infs_role_t *out);
int wire_phase_from_msg(Infsched__Phase p, infs_phase_t *out);

#endif
