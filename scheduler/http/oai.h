/* OpenAI's completions and chat completions schema: request bodies parsed
 * into what the scheduler needs, and responses, stream chunks and errors
 * rendered as OpenAI's clients expect them. Pure: no I/O. */
#ifndef INFSCHED_HTTP_OAI_H
#define INFSCHED_HTTP_OAI_H

#include "infsched/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* max_tokens when the request has none: OpenAI's documented default for
 * completions; chat has no finite default there, so one is chosen. */
#define OAI_DEFAULT_MAX_TOKENS_COMPLETIONS 16
#define OAI_DEFAULT_MAX_TOKENS_CHAT 256
#define OAI_MAX_TOKENS_LIMIT 1000000u
#define OAI_STOP_MAX 4
#define OAI_SEED_LIMIT 9007199254740992.0 /* 2^53 */

typedef enum oai_kind { OAI_COMPLETIONS, OAI_CHAT } oai_kind_t;

typedef struct oai_request {
  oai_kind_t kind;
  char *model;
  char *prompt; /* chat: messages rendered as "role: content" lines */
  size_t prompt_len;
  uint32_t max_tokens;
  bool stream;
  bool include_usage; /* stream_options.include_usage */
  bool has_class;     /* infsched_class given in the body */
  infs_class_t cls;
  char *session; /* infsched_session, or NULL */
  /* For the backend (infs_request_t says how): chat's messages array and
   * the options the scheduler does not act on, as JSON text (NULL: none),
   * and the typed sampling fields. */
  char *messages;
  char *options;
  bool has_temperature, has_top_p, has_seed;
  double temperature, top_p;
  int64_t seed;
} oai_request_t;

/* Parses a request body. Returns 0 and fills out (free with
 * oai_request_free), or -1 with a message for the client in msg and the
 * offending field in *param (a static string, NULL for the whole body). */
int oai_parse_request(oai_kind_t kind, const char *body, size_t len,
                      oai_request_t *out, char *msg, size_t msglen,
                      const char **param);
void oai_request_free(oai_request_t *r);

typedef struct oai_meta {
  oai_kind_t kind;
  const char *id; /* "cmpl-..." or "chatcmpl-..." */
  const char *model;
  int64_t created; /* Unix seconds */
} oai_meta_t;

typedef struct oai_usage {
  uint32_t prompt_tokens;
  uint32_t completion_tokens;
  uint32_t cached_tokens;
} oai_usage_t;

/* What the scheduler adds to a non-streamed answer under "infsched". */
typedef struct oai_extra {
  const char *worker;
  const char *worker_class;
  double cost_usd;
} oai_extra_t;

/* What a non-streamed answer gathers from the pieces a backend streams
 * besides its text: a chat answer's tool calls, and log probabilities. */
struct cJSON;
typedef struct oai_pieces {
  struct cJSON *calls;    /* NULL until the first; a JSON array */
  struct cJSON *logprobs; /* NULL until the first; a JSON object */
} oai_pieces_t;
/* Merges deltas (a JSON array of delta.tool_calls items; len bytes) into
 * t: a new index starts a call, later pieces of it add to its
 * function.arguments. Returns 0, or -1 when deltas is not such an array
 * (t is unchanged). */
int oai_tool_calls_merge(oai_pieces_t *t, const char *deltas, size_t len);
/* Merges a piece's logprobs object (len bytes) into t: each array under a
 * key (chat's "content", completions' "tokens", "token_logprobs",
 * "top_logprobs", "text_offset") is appended to the one under that key.
 * Returns 0, or -1 when it is not a JSON object (t is unchanged). */
int oai_logprobs_merge(oai_pieces_t *t, const char *json, size_t len);
void oai_pieces_free(oai_pieces_t *t);

/* Each renderer returns a NUL-terminated JSON text the caller frees. An
 * answer's pieces (may be NULL) give its logprobs, and a chat answer's
 * tool calls, carried in its message with content null when it has no
 * text. */
char *oai_render_response(const oai_meta_t *m, const char *text,
                          const char *finish_reason, const oai_usage_t *u,
                          const oai_extra_t *extra, const oai_pieces_t *pieces);
/* A chat stream chunk of tool-call pieces (deltas as merged above, relayed
 * as they are); NULL when deltas is not a JSON array. */
char *oai_render_tool_chunk(const oai_meta_t *m, const char *deltas,
                            size_t len);
/* A stream chunk of no text whose choice carries logprobs (a JSON object,
 * len bytes) for the text sent before it; NULL when it is not an object. */
char *oai_render_logprobs_chunk(const oai_meta_t *m, const char *logprobs,
                                size_t len);
/* One stream chunk: text (may be NULL for none), with the assistant role
 * for chat's first chunk, and a finish reason on the last (or NULL). */
char *oai_render_chunk(const oai_meta_t *m, const char *text, bool role,
                       const char *finish_reason);
/* The extra last chunk of stream_options.include_usage: no choices. */
char *oai_render_usage_chunk(const oai_meta_t *m, const oai_usage_t *u);
/* The model id of a GET /v1/models/ID path, percent-decoded into out (len
 * bytes with its NUL): "meta-llama%2FLlama-3.1-8B" and the raw
 * "meta-llama/Llama-3.1-8B" both name meta-llama/Llama-3.1-8B, as clients
 * send either. Returns 1; 0 when path is not of that form (the list, or
 * another route); -1 with why in msg when an escape is not '%' and two
 * hex digits, decodes to NUL, or the id is longer than len allows. */
int oai_model_id(const char *path, char *out, size_t len, char *msg,
                 size_t msglen);

/* {"error": {"message", "type", "param", "code"}}; param and code may be
 * NULL. */
char *oai_render_error(const char *message, const char *type, const char *param,
                       const char *code);

#endif
