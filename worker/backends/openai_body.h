/* The body the openai backend sends upstream for a request, by phase
 * (docs/backends.md, "Disaggregated prefill with vLLM"):
 * - FULL: the request as the client sent it, streamed;
 * - PREFILL: what vLLM's NIXL proxy sends its prefill instance: max_tokens
 *   1, not streamed, and kv_transfer_params asking for a remote decode;
 * - DECODE: the request as the client sent it, streamed, carrying the
 *   kv_transfer_params the prefill instance returned (req->kv's
 *   params_json). Its prompt is the client's, without the text the prefill
 *   already streamed, and max_tokens counts that text's tokens again: the
 *   decode instance generates from the first token, as it does behind
 *   vLLM's proxy, and the backend drops what the client already has.
 * A request that resumes a stream (a migration) goes on from its prompt
 * with the resumed text appended, or, for the chat API, is answered anew
 * like a decode. */
#ifndef INFSCHED_BACKENDS_OPENAI_BODY_H
#define INFSCHED_BACKENDS_OPENAI_BODY_H

#include "infsched/types.h"

#include <stdbool.h>

/* Whether the upstream makes r's answer again from its start, so that the
 * backend drops the resumed text (r->resumed_len bytes) from its stream:
 * a decode, as above, and a resumed chat request, which the chat API can
 * only answer anew. A resumed completion goes on from prompt + that text
 * instead. */
bool openai_body_regenerates(const infs_request_t *r, bool chat);

#define OPENAI_BODY_BAD_OPTIONS (-1) /* options are not a JSON object */
#define OPENAI_BODY_BAD_KV (-2)      /* no kv_transfer_params to send */

/* The JSON body of r for the completions (chat false) or chat API, under
 * model, in *out (the caller frees it). Returns 0, or one of the codes
 * above with the reason in *why (static text). */
int openai_body(const infs_request_t *r, const char *model, bool chat,
                char **out, const char **why);

#endif
