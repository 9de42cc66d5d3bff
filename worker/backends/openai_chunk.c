#include "openai_chunk.h"

/* A count that fits: negative, fractional or huge values are not counts. */
static bool count(const cJSON *v, uint32_t *out) {
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) ||
      v->valuedouble > (double)UINT32_MAX)
    return false;
  *out = (uint32_t)v->valuedouble;
  return true;
}

void openai_chunk_usage(const cJSON *usage, openai_usage_t *u) {
  if (!cJSON_IsObject(usage))
    return;
  const cJSON *d =
      cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details");
  u->have = true;
  count(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens"), &u->prompt);
  count(cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens"),
        &u->completion);
  if (count(cJSON_GetObjectItemCaseSensitive(d, "cached_tokens"), &u->cached))
    u->have_cached = true;
}

const char *openai_chunk_error(const cJSON *root) {
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (cJSON_IsString(e))
    return e->valuestring;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
  return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* delta of a streamed choice, message of one that was not. */
static const cJSON *message_of(const cJSON *choice) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(choice, "delta");
  return m ? m : cJSON_GetObjectItemCaseSensitive(choice, "message");
}

const char *openai_chunk_text(const cJSON *choice) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(choice, "text");
  if (cJSON_IsString(t))
    return t->valuestring;
  t = cJSON_GetObjectItemCaseSensitive(message_of(choice), "content");
  return cJSON_IsString(t) ? t->valuestring : NULL;
}

const cJSON *openai_chunk_tool_calls(const cJSON *choice) {
  const cJSON *calls =
      cJSON_GetObjectItemCaseSensitive(message_of(choice), "tool_calls");
  return cJSON_GetArraySize(calls) > 0 ? calls : NULL;
}
