#include "prompt_text.h"

#include "xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Words of code and prose, so a tokenizer sees ordinary text (about 4
 * characters a token with the spaces, as the default assumes). */
static const char *const words[] = {
    "the",    "int",    "return", "value",  "if",     "else",   "for",
    "while",  "struct", "size",   "count",  "buffer", "const",  "char",
    "static", "void",   "index",  "length", "result", "error",  "node",
    "list",   "next",   "data",   "file",   "read",   "write",  "open",
    "close",  "table",  "key",    "map",    "cache",  "block",  "token",
    "model",  "worker", "queue",  "time",   "limit",  "of",     "and",
    "to",     "in",     "is",     "a",      "with",   "from"};

/* splitmix64: the next word choice from a state. */
static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Appends exactly n characters of words drawn from seed. */
static void fill(prompt_text_t *t, size_t n, uint64_t seed) {
  char *p = t->data + t->len;
  size_t left = n;
  while (left > 0) {
    const char *w = words[next(&seed) % (sizeof words / sizeof *words)];
    size_t wl = strlen(w);
    if (wl > left - 1 || left == 1) {
      /* The last few characters: spaces keep the length exact. */
      memset(p, ' ', left);
      p += left;
      break;
    }
    *p++ = ' ';
    memcpy(p, w, wl);
    p += wl;
    left -= wl + 1;
  }
  t->len += n;
}

const char *prompt_text_build(prompt_text_t *t, const uint64_t *blocks,
                              size_t n_blocks, uint32_t block_size,
                              uint32_t tokens, double chars_per_token,
                              uint64_t salt) {
  size_t per_block = (size_t)lround(block_size * chars_per_token);
  uint64_t whole = (uint64_t)n_blocks * block_size;
  size_t tail = tokens > whole
                    ? (size_t)lround((double)(tokens - whole) * chars_per_token)
                    : 0;
  size_t need = n_blocks * per_block + tail + 1;
  if (need > t->cap) {
    t->data = xrealloc(t->data, need);
    t->cap = need;
  }
  t->len = 0;
  for (size_t i = 0; i < n_blocks; i++)
    fill(t, per_block, blocks[i]);
  fill(t, tail, salt ^ 0x5bd1e9955bd1e995ull);
  t->data[t->len] = '\0';
  return t->data;
}

void prompt_text_free(prompt_text_t *t) {
  free(t->data);
  *t = (prompt_text_t){0};
}
