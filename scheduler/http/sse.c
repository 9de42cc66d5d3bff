#include "sse.h"

#include <string.h>

void sse_append_event(buf_t *out, const char *data) {
  const char *p = data;
  for (;;) {
    size_t n = strcspn(p, "\r\n");
    buf_puts(out, "data: ");
    buf_append(out, p, n);
    buf_puts(out, "\n");
    p += n;
    if (!*p)
      break;
    p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
  }
  buf_puts(out, "\n");
}

void sse_append_done(buf_t *out) {
  buf_puts(out, "data: [DONE]\n\n");
}
