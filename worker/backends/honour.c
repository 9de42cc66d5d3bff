#include "honour.h"

#include "infsched.pb-c.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Options that change which tokens a model samples but not the form of
 * the answer: with no model, the filler text is as good an answer. */
static const char *const harmless[] = {
    "user", "frequency_penalty", "presence_penalty", "logit_bias",
    "metadata", "store", "stop"};

static bool is_harmless(const cJSON *item) {
  if (cJSON_IsFalse(item) || cJSON_IsNull(item))
    return true;
  for (size_t i = 0; i < sizeof harmless / sizeof *harmless; i++)
    if (strcmp(item->string, harmless[i]) == 0)
      return true;
  return false;
}

static bool has_stop(const cJSON *stop) {
  if (cJSON_IsString(stop))
    return stop->valuestring[0] != '\0';
  const cJSON *s;
  cJSON_ArrayForEach(s, stop) if (cJSON_IsString(s) && s->valuestring[0])
      return true;
  return false;
}

/* Messages arrive from any client as text: only a list of objects is read
 * (a list's items have no names, which the lookups below would need). */
static bool list_of_objects(const cJSON *messages) {
  if (!cJSON_IsArray(messages))
    return false;
  const cJSON *m;
  cJSON_ArrayForEach(m, messages) if (!cJSON_IsObject(m)) return false;
  return true;
}

/* The first content part that is not text, or NULL. */
static const char *other_part(const cJSON *messages) {
  const cJSON *m, *part;
  cJSON_ArrayForEach(m, messages) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!cJSON_IsArray(content))
      continue;
    cJSON_ArrayForEach(part, content) {
      const cJSON *type = cJSON_IsObject(part)
                              ? cJSON_GetObjectItemCaseSensitive(part, "type")
                              : NULL;
      if (cJSON_IsString(type) && strcmp(type->valuestring, "text") != 0)
        return type->valuestring;
    }
  }
  return NULL;
}

/* splitmix64: a seed spread over all bits, so nearby seeds end apart. */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint32_t honour_tokens(const infs_backend_request_t *r, const char *backend,
                       char *msg, size_t msglen) {
  uint32_t n = r->max_tokens;
  bool stop = false;
  const char *refused = NULL;
  if (r->messages && r->messages[0]) {
    cJSON *messages = cJSON_Parse(r->messages);
    if (!list_of_objects(messages)) {
      snprintf(msg, msglen, "messages: expected a JSON array of objects");
      cJSON_Delete(messages);
      return 0;
    }
    const char *part = other_part(messages);
    if (part)
      snprintf(msg, msglen,
               "the %s backend cannot honour '%s' content parts (it has no "
               "model; only text is read)",
               backend, part);
    cJSON_Delete(messages);
    if (part)
      return 0;
  }
  cJSON *options = r->options && r->options[0] ? cJSON_Parse(r->options) : NULL;
  if (r->options && r->options[0] && !cJSON_IsObject(options)) {
    snprintf(msg, msglen, "options: expected a JSON object");
    cJSON_Delete(options);
    return 0;
  }
  const cJSON *item;
  cJSON_ArrayForEach(item, options) {
    if (!is_harmless(item)) {
      refused = item->string;
      break;
    }
    if (strcmp(item->string, "stop") == 0)
      stop = has_stop(item);
  }
  if (refused)
    snprintf(msg, msglen,
             "the %s backend cannot honour '%s' (it has no model); send it to "
             "a worker with a real backend",
             backend, refused);
  cJSON_Delete(options);
  if (refused)
    return 0;
  if (stop && n > 1)
    n = 1 + (uint32_t)(mix(r->has_seed ? (uint64_t)r->seed : r->id) % n);
  return n;
}

bool honour_whole_or_refuse(const infs_backend_host_t *host,
                            const infs_backend_request_t *r,
                            const char *backend) {
  if (r->phase == INFS_PHASE_FULL)
    return false;
  char why[160];
  snprintf(why, sizeof why,
           "the %s backend runs whole requests only, not the %s phase of a "
           "split one; start this worker with --role both",
           backend, r->phase == INFS_PHASE_PREFILL ? "prefill" : "decode");
  host->failed(host->ctx, r->id, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST, why);
  return true;
}

uint32_t honour_or_refuse(const infs_backend_host_t *host,
                          const infs_backend_request_t *r, const char *backend) {
  char why[256];
  uint32_t n = honour_tokens(r, backend, why, sizeof why);
  if (!n)
    host->failed(host->ctx, r->id, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST, why);
  return n;
}
