/* Server-sent events as OpenAI streams them: one "data:" event per JSON
 * chunk, and "data: [DONE]" at the end. */
#ifndef INFSCHED_HTTP_SSE_H
#define INFSCHED_HTTP_SSE_H

#include "buf.h"

/* Appends one event carrying data; a line break in data starts another
 * "data:" field of the same event, as the format requires. */
void sse_append_event(buf_t *out, const char *data);
/* Appends the terminating "data: [DONE]" event. */
void sse_append_done(buf_t *out);

#endif
