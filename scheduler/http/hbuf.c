#include "scheduler/http/hbuf.h"

#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hbuf_free(hbuf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void hbuf_reset(hbuf_t *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

static void reserve(hbuf_t *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  char *p = xrealloc(b->data, cap);
  b->data = p;
  b->cap = cap;
}

void hbuf_append(hbuf_t *b, const void *data, size_t len) {
  reserve(b, len);
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void hbuf_puts(hbuf_t *b, const char *s) {
  hbuf_append(b, s, strlen(s));
}

void hbuf_printf(hbuf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n <= 0)
    return;
  reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

