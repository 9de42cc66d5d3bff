#include "xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *xcheck(void *p) {
  if (!p)
    abort();
  return p;
}

void *xmalloc(size_t size) {
  return xcheck(malloc(size ? size : 1));
}

void *xcalloc(size_t n, size_t size) {
  return xcheck(calloc(n ? n : 1, size ? size : 1));
}

void *xrealloc(void *p, size_t size) {
  return xcheck(realloc(p, size ? size : 1));
}

void *xreallocarray(void *p, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size)
    abort();
  return xrealloc(p, n * size);
}

void *xrecallocarray(void *p, size_t old_n, size_t n, size_t size) {
  p = xreallocarray(p, n, size);
  if (n > old_n)
    memset((char *)p + old_n * size, 0, (n - old_n) * size);
  return p;
}

char *xstrdup(const char *s) {
  return xcheck(strdup(s));
}

void *xgrow(void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return p;
  size_t c = *cap ? *cap : 16;
  while (c < need)
    c *= 2;
  *cap = c;
  return xreallocarray(p, c, size);
}
