/* Reading the JSON an OpenAI-compatible server answers with, streamed or
 * not: a choice's text, the usage counts and an error's message. Shared by
 * the openai backend and infsched-calibrate, which read the same answers. */
#ifndef INFSCHED_BACKENDS_OPENAI_CHUNK_H
#define INFSCHED_BACKENDS_OPENAI_CHUNK_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* The usage object's counts; a field the server left out stays 0 and its
 * flag false. */
typedef struct openai_usage {
  bool have;        /* a usage object was seen */
  bool have_cached; /* prompt_tokens_details.cached_tokens was in it */
  uint32_t prompt;
  uint32_t completion;
  uint32_t cached;
} openai_usage_t;

/* Reads usage (may be NULL or not an object: then nothing changes). */
void openai_chunk_usage(const cJSON *usage, openai_usage_t *u);

/* The message of an OpenAI-style {"error": ...} object, or NULL. */
const char *openai_chunk_error(const cJSON *root);

/* The text of a choice: "text", or delta.content / message.content; NULL
 * when it has none. */
const char *openai_chunk_text(const cJSON *choice);

/* The tool calls of a choice: delta.tool_calls, or message.tool_calls of
 * an answer that was not streamed; NULL when it has none. */
const cJSON *openai_chunk_tool_calls(const cJSON *choice);

#endif
