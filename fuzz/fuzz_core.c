/* Frame sequences driving the core through its wire glue, as the shell
 * does: records of [flags][peer][length, 2 bytes][Envelope]. flags bit 0:
 * from the worker socket; bit 1: a client of the HTTP door; bit 2: a timer
 * tick first; the rest: milliseconds to advance, times 10. At the end the
 * core shuts down, and every request must have had its answer. */
#include "fuzz.h"
#include "wire.h"
#include "wire_arena.h"
#include "core_wire.h"

#include <stdlib.h>

static void send(void *ctx, const core_action_t *a) {
  (void)ctx;
  core_wire_msg_t m;
  wire_buf_t out = {0};
  /* Chunks and Dones carry the worker's message, which is alive. */
  wire_pack(core_wire_message(a, 100, &m), &out);
  wire_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static wire_arena_t *arena;
  if (!arena && !(arena = wire_arena_new()))
    abort();
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.policy = "balanced";
  cfg.heartbeat_interval = 100 * INFS_US_PER_MS;
  cfg.progress_timeout = 500 * INFS_US_PER_MS;
  cfg.explain = size % 2; /* the explanations too, half the time */
  int err;
  core_t *c = core_new(&cfg, 0, &err);
  if (!c)
    abort();
  infs_time_t now = 0;
  char why[256];
  while (size >= 4) {
    uint8_t flags = data[0];
    core_peer_t peer = {.len = 1, .id = {data[1]}};
    size_t len = (size_t)data[2] | (size_t)data[3] << 8;
    data += 4;
    size -= 4;
    if (len > size)
      len = size;
    now += (infs_time_t)(flags >> 3) * 10 * INFS_US_PER_MS;
    if (flags & 4) {
      core_on_tick(c, now);
      core_wire_flush(c, send, NULL);
    }
    Infsched__Envelope *env;
    if (wire_unpack_in(arena, data, len, &env) == 0) {
      if (flags & 1) {
        core_wire_feed_worker(c, now, &peer, NULL, env, why, sizeof why);
      } else {
        peer.door = flags & 2 ? CORE_DOOR_HTTP : CORE_DOOR_ZMQ;
        core_wire_feed_client(c, now, &peer, env, why, sizeof why);
      }
      core_wire_flush(c, send, NULL);
    }
    wire_arena_reset(arena);
    data += len;
    size -= len;
  }
  core_shutdown(c, now);
  core_wire_flush(c, send, NULL);
  if (core_open_requests(c) != 0)
    abort();
  core_destroy(&c);
  return 0;
}
