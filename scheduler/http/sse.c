#include "scheduler/http/sse.h"

#include <string.h>

void sse_append_event(hbuf_t *out, const char *data) {
  const char *p = data;
  for (;;) {
    size_t n = strcspn(p, "\r\n");
    hbuf_puts(out, "data: ");
    hbuf_append(out, p, n);
    hbuf_puts(out, "\n");
    p += n;
    if (!*p)
      break;
    p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
  }
  hbuf_puts(out, "\n");
}

void sse_append_done(hbuf_t *out) {
  hbuf_puts(out, "data: [DONE]\n\n");
}
