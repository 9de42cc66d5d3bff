/* One YAML file as a libyaml document, for every loader (profiles, codex
 * workloads, cluster files): the same reading of the file, the same rule for
 * a second document, and the same "FILE:LINE: why" messages. */
#ifndef INFSCHED_YDOC_H
#define INFSCHED_YDOC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

typedef struct ydoc {
  yaml_document_t doc;
  const char *path; /* borrowed, for messages */
  char *err;        /* borrowed message buffer */
  size_t errlen;
  bool loaded; /* doc holds something to delete */
} ydoc_t;

/* Loads the single document of the file at path; path and err are borrowed
 * until ydoc_free. A second document is refused, since it would otherwise
 * be ignored without a word. Returns 0, -errno when the file cannot be read,
 * -ENOMEM, or INFS_ECONFIG; on failure err holds "PATH[:LINE]: why" and
 * ydoc_free has nothing to do (calling it is harmless). */
int ydoc_load(ydoc_t *d, const char *path, char *err, size_t errlen);

/* Releases the document. Idempotent. */
void ydoc_free(ydoc_t *d);

/* The top node, or NULL when the file holds no document (empty). */
yaml_node_t *ydoc_root(ydoc_t *d);

/* The node with libyaml's id (a pair's key or value, a list item). */
yaml_node_t *ydoc_node(ydoc_t *d, int id);

/* The value under the scalar key in map, or NULL. */
yaml_node_t *ydoc_get(ydoc_t *d, const yaml_node_t *map, const char *key);

/* 1-based line where n starts. */
int ydoc_line(const yaml_node_t *n);

/* A scalar node's text (NUL-terminated by libyaml). */
const char *ydoc_scalar(const yaml_node_t *n);

/* "a scalar", "a list" or "a mapping", for "expected X, got Y". */
const char *ydoc_kind(const yaml_node_t *n);

/* Writes "PATH:LINE: " and the message into the loader's err. Returns
 * INFS_ECONFIG, so that loaders can return it directly. */
int ydoc_fail(ydoc_t *d, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ydoc_vfail(ydoc_t *d, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
