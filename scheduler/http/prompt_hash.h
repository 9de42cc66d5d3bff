/* Block hashes of a prompt given as text, so cache-aware routing works for
 * HTTP clients that send no token ids. As the SGLang router's approximate
 * mode does, the text is cut into fixed-size byte chunks (about block_size
 * tokens at 4 bytes a token); hash i is XXH3 of chunk i seeded with hash
 * i-1, so equal hashes mean equal prefixes, as for token blocks. */
#ifndef INFSCHED_HTTP_PROMPT_HASH_H
#define INFSCHED_HTTP_PROMPT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PROMPT_HASH_BYTES_PER_TOKEN 4

/* Bytes per chunk for a block of block_size tokens. */
size_t prompt_hash_chunk_bytes(uint32_t block_size);

/* Writes the hashes of the first min(cap, len / chunk) whole chunks of text
 * into out and returns how many whole chunks the text has. */
size_t prompt_hash_blocks(const char *text, size_t len, size_t chunk,
                          uint64_t *out, size_t cap);

/* Estimated prompt tokens of len bytes of text (at least 1). */
uint32_t prompt_hash_estimate_tokens(size_t len);

#endif
