/* Allocation that cannot fail: running out of memory is not an input error
 * any caller could answer, so these abort instead of returning NULL
 * (docs/style.md, "Errors"). The one place for that policy. */
#ifndef INFSCHED_XALLOC_H
#define INFSCHED_XALLOC_H

#include <stddef.h>

/* malloc, calloc and realloc that abort on failure; a size of 0 still
 * returns a pointer that free accepts. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* realloc of n elements of size bytes, aborting on overflow too. */
void *xreallocarray(void *p, size_t n, size_t size);
/* xreallocarray from old_n to n elements, the ones past old_n zeroed. */
void *xrecallocarray(void *p, size_t old_n, size_t n, size_t size);
char *xstrdup(const char *s);
/* Grows array p of size-byte elements to hold at least need, doubling *cap
 * (from 16); returns p unchanged when *cap is already enough. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
/* Returns p, or aborts when it is NULL: for allocations made by others
 * (cJSON, strndup) that report failure as NULL. */
void *xcheck(void *p);

#endif
