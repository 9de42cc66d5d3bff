/* The wire decoder: any frame, into the reused arena the scheduler decodes
 * into, and what the core reads of a Submit or a Register. */
#include "fuzz.h"
#include "wire.h"
#include "wire_arena.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static wire_arena_t *arena;
  if (!arena && !(arena = wire_arena_new()))
    abort();
  Infsched__Envelope *env;
  if (wire_unpack_in(arena, data, size, &env) == 0) {
    infs_request_t q;
    infs_profile_t p;
    if (env->body_case == INFSCHED__ENVELOPE__BODY_SUBMIT &&
        env->submit->request)
      wire_request_from_msg(env->submit->request, &q);
    if (env->body_case == INFSCHED__ENVELOPE__BODY_REGISTER &&
        env->register_->profile)
      wire_profile_from_msg(env->register_->profile, &p);
    /* What decodes must encode again. */
    wire_buf_t out = {0};
    wire_pack(env, &out);
    wire_buf_free(&out);
  }
  wire_arena_reset(arena);
  return 0;
}
