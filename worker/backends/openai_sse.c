#include "worker/backends/openai_sse.h"

#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

void openai_sse_init(openai_sse_t *p) {
  memset(p, 0, sizeof *p);
}

void openai_sse_free(openai_sse_t *p) {
  free(p->line);
  free(p->data);
  memset(p, 0, sizeof *p);
}

/* Appends n bytes to a buffer kept NUL-terminated; -1 past the limit. */
static int append(char **buf, size_t *len, size_t *cap, const char *s,
                  size_t n) {
  if (*len + n + 1 > OPENAI_SSE_MAX)
    return -1;
  if (*len + n + 1 > *cap) {
    size_t c = *cap ? *cap : 256;
    while (c < *len + n + 1)
      c *= 2;
    char *q = xrealloc(*buf, c);
    *buf = q;
    *cap = c;
  }
  memcpy(*buf + *len, s, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

static int end_line(openai_sse_t *p, openai_sse_event_cb cb, void *arg) {
  const char *line = p->line ? p->line : "";
  size_t n = p->line_len;
  p->line_len = 0;
  if (n == 0) {
    if (!p->has_data)
      return 0;
    p->has_data = false;
    /* The last data line's break is not part of the data. */
    if (p->data_len)
      p->data[--p->data_len] = '\0';
    size_t len = p->data_len;
    p->data_len = 0;
    return cb(arg, p->data ? p->data : "", len);
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
  if (append(&p->data, &p->data_len, &p->data_cap, v, vn) ||
      append(&p->data, &p->data_len, &p->data_cap, "\n", 1))
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
    if (append(&p->line, &p->line_len, &p->line_cap, buf + i, run))
      return -1;
    i += run - 1;
  }
  return 0;
}
