/* Peers for tests that drive the scheduling core (scheduler/core/core.h)
 * by hand. */
#ifndef INFSCHED_TESTS_CORE_FIXTURE_H
#define INFSCHED_TESTS_CORE_FIXTURE_H

#include "core.h"

#include <string.h>

/* A ZeroMQ peer whose routing id is the bytes of name. */
static inline core_peer_t fixture_peer(const char *name) {
  core_peer_t p = {.door = CORE_DOOR_ZMQ};
  p.len = (uint8_t)strlen(name);
  memcpy(p.id, name, p.len);
  return p;
}

#endif
