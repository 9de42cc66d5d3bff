/* Prompt text for load tests against real servers: a prompt of the
 * requested token count at a given number of characters per token, made so
 * that prompts sharing their leading block hashes share the same leading
 * text, and a real server's prefix cache sees what the workload means. */
#ifndef INFSCHED_LOADGEN_PROMPT_TEXT_H
#define INFSCHED_LOADGEN_PROMPT_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct prompt_text {
  char *data;
  size_t len;
  size_t cap;
} prompt_text_t;

/* Writes into t the text of a prompt of tokens tokens whose whole blocks
 * of block_size tokens have the hashes blocks[0..n_blocks): each block is
 * round(block_size * chars_per_token) characters of words drawn from its
 * hash alone, and the tokens after the last whole block are words drawn
 * from salt (give each request its own). Returns t->data. */
const char *prompt_text_build(prompt_text_t *t, const uint64_t *blocks,
                              size_t n_blocks, uint32_t block_size,
                              uint32_t tokens, double chars_per_token,
                              uint64_t salt);
void prompt_text_free(prompt_text_t *t);

#endif
