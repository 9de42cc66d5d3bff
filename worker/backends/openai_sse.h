/* An incremental reader of server-sent events (the WHATWG event-stream
 * format that OpenAI-compatible servers stream): bytes in, the data of
 * each complete event out. Fields other than data are ignored. */
#ifndef INFSCHED_BACKENDS_OPENAI_SSE_H
#define INFSCHED_BACKENDS_OPENAI_SSE_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest line or event accepted; a longer one is an upstream error. */
#define OPENAI_SSE_MAX (4u << 20)

typedef struct openai_sse {
  buf_t line; /* the line being read */
  buf_t data; /* data fields of the event being read */
  bool has_data;
  bool after_cr; /* the previous byte ended a line with '\r' */
} openai_sse_t;

/* Called with each event's data (NUL-terminated, without the final line
 * break). A nonzero return stops the reader and is returned by feed. */
typedef int (*openai_sse_event_cb)(void *arg, const char *data, size_t len);

void openai_sse_init(openai_sse_t *p);
void openai_sse_free(openai_sse_t *p);
/* Reads len bytes. Returns 0, the callback's nonzero value, or -1 when a
 * line or an event passes OPENAI_SSE_MAX. */
int openai_sse_feed(openai_sse_t *p, const char *buf, size_t len,
                    openai_sse_event_cb cb, void *arg);

#endif
