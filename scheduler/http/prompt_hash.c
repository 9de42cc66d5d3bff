#include "prompt_hash.h"

#include <xxhash.h>

size_t prompt_hash_chunk_bytes(uint32_t block_size) {
  return (size_t)(block_size ? block_size : 1) * PROMPT_HASH_BYTES_PER_TOKEN;
}

size_t prompt_hash_blocks(const char *text, size_t len, size_t chunk,
                          uint64_t *out, size_t cap) {
  if (chunk == 0)
    return 0;
  size_t blocks = len / chunk;
  uint64_t prev = 0;
  for (size_t b = 0; b < blocks && b < cap; b++) {
    prev = XXH3_64bits_withSeed(text + b * chunk, chunk, prev);
    out[b] = prev;
  }
  return blocks;
}

uint32_t prompt_hash_estimate_tokens(size_t len) {
  size_t t = len / PROMPT_HASH_BYTES_PER_TOKEN;
  if (t == 0)
    return 1;
  return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}
