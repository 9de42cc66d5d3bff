#include "ydoc.h"

#include "infsched/errors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ydoc_vfail(ydoc_t *d, int line, const char *fmt, va_list ap) {
  int n = snprintf(d->err, d->errlen, "%s:%d: ", d->path, line);
  if (n >= 0 && (size_t)n < d->errlen)
    vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
  return INFS_ECONFIG;
}

int ydoc_fail(ydoc_t *d, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = ydoc_vfail(d, line, fmt, ap);
  va_end(ap);
  return rc;
}

static int syntax_error(ydoc_t *d, const yaml_parser_t *p) {
  return ydoc_fail(d, (int)p->problem_mark.line + 1, "not valid YAML: %s%s%s",
                   p->problem ? p->problem : "unknown error",
                   p->context ? " " : "", p->context ? p->context : "");
}

int ydoc_load(ydoc_t *d, const char *path, char *err, size_t errlen) {
  yaml_parser_t parser;
  yaml_document_t extra;
  int rc = 0;

  memset(d, 0, sizeof *d);
  d->path = path;
  d->err = err;
  d->errlen = errlen;
  if (errlen)
    err[0] = '\0';
  FILE *f = fopen(path, "rb");
  if (!f) {
    rc = -errno;
    snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    return rc;
  }
  if (!yaml_parser_initialize(&parser)) {
    fclose(f);
    snprintf(err, errlen, "%s: out of memory", path);
    return -ENOMEM;
  }
  yaml_parser_set_input_file(&parser, f);
  if (!yaml_parser_load(&parser, &d->doc)) {
    rc = syntax_error(d, &parser);
    goto out;
  }
  d->loaded = true;
  if (!yaml_parser_load(&parser, &extra)) {
    rc = syntax_error(d, &parser);
    goto out;
  }
  const yaml_node_t *more = yaml_document_get_root_node(&extra);
  int more_line = more ? ydoc_line(more) : 0;
  yaml_document_delete(&extra);
  if (more)
    rc = ydoc_fail(d, more_line,
                   "a second YAML document (a file holds one; remove the "
                   "'---' and merge the two)");
out:
  yaml_parser_delete(&parser);
  fclose(f);
  if (rc)
    ydoc_free(d);
  return rc;
}

void ydoc_free(ydoc_t *d) {
  if (d->loaded)
    yaml_document_delete(&d->doc);
  d->loaded = false;
}

yaml_node_t *ydoc_root(ydoc_t *d) {
  return yaml_document_get_root_node(&d->doc);
}

yaml_node_t *ydoc_node(ydoc_t *d, int id) {
  return yaml_document_get_node(&d->doc, id);
}

yaml_node_t *ydoc_get(ydoc_t *d, const yaml_node_t *map, const char *key) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = ydoc_node(d, p->key);
    if (k->type == YAML_SCALAR_NODE && strcmp(ydoc_scalar(k), key) == 0)
      return ydoc_node(d, p->value);
  }
  return NULL;
}

int ydoc_line(const yaml_node_t *n) {
  return (int)n->start_mark.line + 1;
}

const char *ydoc_scalar(const yaml_node_t *n) {
  return (const char *)n->data.scalar.value;
}

const char *ydoc_kind(const yaml_node_t *n) {
  switch (n->type) {
  case YAML_SCALAR_NODE:
    return "a scalar";
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "nothing";
  }
}
