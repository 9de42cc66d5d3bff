#include "openai_sse.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

void openai_sse_init(openai_sse_t *p) {
  memset(p, 0, sizeof *p);
  /* Lines and events shorter than OPENAI_SSE_MAX, with their NUL. */
  p->line.max = p->data.max = OPENAI_SSE_MAX - 1;
}

void openai_sse_free(openai_sse_t *p) {
  buf_free(&p->line);
  buf_free(&p->data);
  openai_sse_init(p);
}

static int end_line(openai_sse_t *p, openai_sse_event_cb cb, void *arg) {
  const char *line = p->line.data ? p->line.data : "";
  size_t n = p->line.len;
  p->line.len = 0;
  if (n == 0) {
    if (!p->has_data)
      return 0;
    p->has_data = false;
    /* The last data line's break is not part of the data. */
    if (p->data.len)
      p->data.data[--p->data.len] = '\0';
    size_t len = p->data.len;
    p->data.len = 0;
    return cb(arg, p->data.data ? p->data.data : "", len);
  }
  if (n < 5 || memcmp(line, "data:", 5) != 0)
    return 0; /* comments and other fields */
  const char *v = line + 5;
  size_t vn = n - 5;
  if (vn && *v == ' ') {
    v++;
    vn--;
  }
  p->has_data = true;
  if (buf_append(&p->data, v, vn) || buf_append(&p->data, "\n", 1))
    return -1;
  return 0;
}

int openai_sse_feed(openai_sse_t *p, const char *buf, size_t len,
                    openai_sse_event_cb cb, void *arg) {
  for (size_t i = 0; i < len; i++) {
    char ch = buf[i];
    if (ch == '\n' && p->after_cr) {
      p->after_cr = false;
      continue;
    }
    p->after_cr = ch == '\r';
    if (ch == '\r' || ch == '\n') {
      int rc = end_line(p, cb, arg);
      if (rc)
        return rc;
      continue;
    }
    size_t run = 1;
    while (i + run < len && buf[i + run] != '\r' && buf[i + run] != '\n')
      run++;
    if (buf_append(&p->line, buf + i, run))
      return -1;
    i += run - 1;
  }
  return 0;
}
