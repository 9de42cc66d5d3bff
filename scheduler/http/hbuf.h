/* A growable byte buffer for building HTTP responses and bodies. Allocation
 * failure aborts (out of memory is not an input error). */
#ifndef INFSCHED_HTTP_HBUF_H
#define INFSCHED_HTTP_HBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct hbuf {
  char *data; /* NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
} hbuf_t;

void hbuf_free(hbuf_t *b);
/* Empties b, keeping its memory. */
void hbuf_reset(hbuf_t *b);
void hbuf_append(hbuf_t *b, const void *data, size_t len);
void hbuf_puts(hbuf_t *b, const char *s);
void hbuf_printf(hbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
