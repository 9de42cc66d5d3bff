/* A growable byte buffer, kept NUL-terminated, with an optional cap: HTTP
 * responses and bodies, streamed lines from an upstream, recorded traces.
 * Growth aborts on out of memory (lib/xalloc.h); passing the cap is an
 * answer, so that input can never grow a buffer without bound. */
#ifndef INFSCHED_BUF_H
#define INFSCHED_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
  char *data; /* NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
  size_t max; /* largest len allowed; 0: no cap */
} buf_t;

/* Frees the memory; the cap stays. */
void buf_free(buf_t *b);
/* Empties b, keeping its memory. */
void buf_reset(buf_t *b);
/* Append; each returns 0, or -1 (b unchanged) when len would pass max. */
int buf_append(buf_t *b, const void *data, size_t len);
int buf_puts(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
