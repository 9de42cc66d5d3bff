#include "openai_body.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* What the worker sets itself wins over a client's option of that name. A
 * client's own kv_transfer_params never reach the upstream: they would let
 * it point a decode instance at any host. */
static const char *const own[] = {
    "model",         "prompt",         "messages",
    "temperature",   "top_p",          "seed",
    "max_tokens",    "max_completion_tokens", "stream",
    "stream_options", "kv_transfer_params"};

/* vLLM's proxy drops these from the prefill request: a prefill makes one
 * token. */
static const char *const not_for_prefill[] = {"min_tokens",
                                              "min_completion_tokens"};

static void drop(cJSON *o, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    cJSON_DeleteItemFromObjectCaseSensitive(o, names[i]);
}

/* The kv_transfer_params of vLLM's proxy for its prefill request: the
 * prefill instance keeps the KV for a decode instance to read. */
static cJSON *remote_decode_params(void) {
  cJSON *kv = cJSON_CreateObject();
  cJSON_AddTrueToObject(kv, "do_remote_decode");
  cJSON_AddFalseToObject(kv, "do_remote_prefill");
  cJSON_AddNullToObject(kv, "remote_engine_id");
  cJSON_AddNullToObject(kv, "remote_block_ids");
  cJSON_AddNullToObject(kv, "remote_host");
  cJSON_AddNullToObject(kv, "remote_port");
  return kv;
}

bool openai_body_regenerates(const infs_request_t *r, bool chat) {
  return r->resumed && (chat || r->phase == INFS_PHASE_DECODE);
}

static cJSON *prompt_text(const infs_request_t *r, bool chat) {
  const char *p = r->prompt ? r->prompt : "";
  if (!openai_body_regenerates(r, chat) || !r->resumed_len)
    return cJSON_CreateString(p);
  size_t len = r->prompt ? r->prompt_len : 0;
  /* The prompt the prefill instance ran: the client's, less the text it
   * streamed, which the wcore appended as for a migration. */
  size_t keep = r->resumed_len < len ? len - r->resumed_len : 0;
  char *s = malloc(keep + 1);
  if (!s)
    return NULL;
  memcpy(s, p, keep);
  s[keep] = '\0';
  cJSON *out = cJSON_CreateString(s);
  free(s);
  return out;
}

int openai_body(const infs_request_t *r, const char *model, bool chat,
                char **out, const char **why) {
  *out = NULL;
  cJSON *o = r->options && r->options[0] ? cJSON_Parse(r->options)
                                         : cJSON_CreateObject();
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    *why = "the request's options are not a JSON object";
    return OPENAI_BODY_BAD_OPTIONS;
  }
  drop(o, own, sizeof own / sizeof *own);
  cJSON *kv = NULL;
  if (r->phase == INFS_PHASE_PREFILL) {
    drop(o, not_for_prefill, sizeof not_for_prefill / sizeof *not_for_prefill);
    kv = remote_decode_params();
  } else if (r->phase == INFS_PHASE_DECODE) {
    kv = r->kv && r->kv->params_json
             ? cJSON_ParseWithLength(r->kv->params_json, r->kv->params_len)
             : NULL;
    if (!cJSON_IsObject(kv)) {
      cJSON_Delete(kv);
      cJSON_Delete(o);
      *why = "the prefill left no vLLM kv_transfer_params to decode from";
      return OPENAI_BODY_BAD_KV;
    }
  }
  cJSON_AddStringToObject(o, "model", model ? model : "");
  cJSON *messages =
      chat && r->messages && r->messages[0] ? cJSON_Parse(r->messages) : NULL;
  if (chat && !messages) {
    messages = cJSON_CreateArray();
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddItemToObject(m, "content", prompt_text(r, chat));
    cJSON_AddItemToArray(messages, m);
  }
  if (messages)
    cJSON_AddItemToObject(o, "messages", messages);
  else
    cJSON_AddItemToObject(o, "prompt", prompt_text(r, chat));
  if (r->has_temperature)
    cJSON_AddNumberToObject(o, "temperature", r->temperature);
  if (r->has_top_p)
    cJSON_AddNumberToObject(o, "top_p", r->top_p);
  if (r->has_seed)
    cJSON_AddNumberToObject(o, "seed", (double)r->seed);
  uint32_t max_tokens = r->max_tokens;
  if (r->phase == INFS_PHASE_PREFILL)
    max_tokens = 1;
  else if (openai_body_regenerates(r, chat))
    max_tokens += r->resumed;
  cJSON_AddNumberToObject(o, "max_tokens", max_tokens);
  if (r->phase == INFS_PHASE_PREFILL) {
    cJSON_AddFalseToObject(o, "stream");
  } else {
    cJSON_AddTrueToObject(o, "stream");
    cJSON *so = cJSON_AddObjectToObject(o, "stream_options");
    cJSON_AddTrueToObject(so, "include_usage");
  }
  if (kv)
    cJSON_AddItemToObject(o, "kv_transfer_params", kv);
  *out = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return 0;
}
