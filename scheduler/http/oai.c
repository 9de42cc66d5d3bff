#include "oai.h"

#include "xalloc.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *msg, size_t msglen, const char **param, const char *field,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int bad(char *msg, size_t msglen, const char **param, const char *field,
               const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, msglen, fmt, ap);
  va_end(ap);
  *param = field;
  return -1;
}

/* A JSON number that is a whole number in [lo, hi]. */
static bool whole_in(const cJSON *v, double lo, double hi) {
  if (!cJSON_IsNumber(v))
    return false;
  double d = v->valuedouble;
  return d >= lo && d <= hi && floor(d) == d;
}

/* Appends one message's content: a string, null, or a list of parts, of
 * which the text parts make the rendered prompt (the others go to the
 * backend with the messages, for it to honour or refuse). */
static int append_content(buf_t *out, const cJSON *content, char *msg,
                          size_t msglen, const char **param) {
  if (!content || cJSON_IsNull(content))
    return 0;
  if (cJSON_IsString(content)) {
    buf_puts(out, content->valuestring);
    return 0;
  }
  if (!cJSON_IsArray(content))
    return bad(msg, msglen, param, "messages",
               "message content must be a string or a list of parts");
  const cJSON *part;
  cJSON_ArrayForEach(part, content) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
    if (!cJSON_IsString(type))
      return bad(msg, msglen, param, "messages",
                 "each content part needs a string 'type'");
    if (strcmp(type->valuestring, "text") != 0)
      continue;
    if (!cJSON_IsString(text))
      return bad(msg, msglen, param, "messages",
                 "a text content part needs a string 'text'");
    buf_puts(out, text->valuestring);
  }
  return 0;
}

static int render_messages(const cJSON *messages, buf_t *out, char *msg,
                           size_t msglen, const char **param) {
  if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0)
    return bad(msg, msglen, param, "messages",
               "'messages' must be a non-empty array");
  const cJSON *m;
  cJSON_ArrayForEach(m, messages) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsObject(m) || !cJSON_IsString(role) || !role->valuestring[0])
      return bad(msg, msglen, param, "messages",
                 "each message needs a string 'role'");
    buf_puts(out, role->valuestring);
    buf_puts(out, ": ");
    if (append_content(out, cJSON_GetObjectItemCaseSensitive(m, "content"), msg,
                       msglen, param))
      return -1;
    buf_puts(out, "\n");
  }
  return 0;
}

static int parse_prompt(const cJSON *prompt, buf_t *out, char *msg,
                        size_t msglen, const char **param) {
  if (cJSON_IsArray(prompt) && cJSON_GetArraySize(prompt) == 1 &&
      cJSON_IsString(cJSON_GetArrayItem(prompt, 0)))
    prompt = cJSON_GetArrayItem(prompt, 0);
  else if (cJSON_IsArray(prompt))
    return bad(msg, msglen, param, "prompt",
               "'prompt' must be a string or a list of one string (batched "
               "and token prompts are not supported)");
  if (!cJSON_IsString(prompt))
    return bad(msg, msglen, param, "prompt",
               prompt ? "'prompt' must be a string"
                      : "you must provide a 'prompt'");
  buf_puts(out, prompt->valuestring);
  return 0;
}

/* stop: a string or a list of up to four strings, as OpenAI takes it. */
static bool valid_stop(const cJSON *v) {
  if (cJSON_IsString(v))
    return true;
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > OAI_STOP_MAX)
    return false;
  const cJSON *s;
  cJSON_ArrayForEach(s, v) if (!cJSON_IsString(s)) return false;
  return true;
}

/* A number in [lo, hi] into *out; absent or null leaves *has false. */
static int number_in(const cJSON *root, const char *name, double lo, double hi,
                     bool *has, double *out, char *msg, size_t msglen,
                     const char **param) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
  if (!v || cJSON_IsNull(v))
    return 0;
  if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi)
    return bad(msg, msglen, param, name, "'%s' must be a number from %g to %g",
               name, lo, hi);
  *has = true;
  *out = v->valuedouble;
  return 0;
}

/* The fields the scheduler acts on; every other one goes to the backend
 * in options as the client sent it. */
static const char *const consumed[] = {
    "model",       "prompt",         "messages",       "max_tokens",
    "max_completion_tokens", "n",    "stream",         "stream_options",
    "infsched_class", "infsched_session", "temperature", "top_p", "seed"};

static bool is_consumed(const char *key) {
  for (size_t i = 0; i < sizeof consumed / sizeof *consumed; i++)
    if (strcmp(key, consumed[i]) == 0)
      return true;
  return false;
}

static int parse_backend_fields(const cJSON *root, oai_request_t *r, char *msg,
                                size_t msglen, const char **param) {
  if (number_in(root, "temperature", 0, 2, &r->has_temperature,
                &r->temperature, msg, msglen, param) ||
      number_in(root, "top_p", 0, 1, &r->has_top_p, &r->top_p, msg, msglen,
                param))
    return -1;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "seed");
  if (v && !cJSON_IsNull(v)) {
    /* Whole and exact in a double, which is how JSON numbers are read. */
    if (!whole_in(v, -OAI_SEED_LIMIT, OAI_SEED_LIMIT))
      return bad(msg, msglen, param, "seed",
                 "'seed' must be an integer of at most 2^53 in magnitude");
    r->has_seed = true;
    r->seed = (int64_t)v->valuedouble;
  }
  v = cJSON_GetObjectItemCaseSensitive(root, "stop");
  if (v && !cJSON_IsNull(v) && !valid_stop(v))
    return bad(msg, msglen, param, "stop",
               "'stop' must be a string or a list of up to %d strings",
               OAI_STOP_MAX);
  cJSON *options = cJSON_CreateObject();
  const cJSON *item;
  cJSON_ArrayForEach(item, root) {
    if (is_consumed(item->string) || cJSON_IsNull(item))
      continue;
    cJSON_AddItemToObject(options, item->string,
                          cJSON_Duplicate(item, true));
  }
  if (options->child)
    r->options = xcheck(cJSON_PrintUnformatted(options));
  cJSON_Delete(options);
  return 0;
}

static int parse_fields(oai_kind_t kind, const cJSON *root, oai_request_t *r,
                        buf_t *prompt, char *msg, size_t msglen,
                        const char **param) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return bad(msg, msglen, param, "model",
               "you must provide a 'model' (a non-empty string)");
  r->model = xstrdup(v->valuestring);

  if (kind == OAI_CHAT) {
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (render_messages(messages, prompt, msg, msglen, param))
      return -1;
    r->messages = xcheck(cJSON_PrintUnformatted(messages));
  } else if (parse_prompt(cJSON_GetObjectItemCaseSensitive(root, "prompt"),
                          prompt, msg, msglen, param)) {
    return -1;
  }

  const char *mt_name = "max_tokens";
  v = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
  if (kind == OAI_CHAT && (!v || cJSON_IsNull(v))) {
    mt_name = "max_completion_tokens";
    v = cJSON_GetObjectItemCaseSensitive(root, mt_name);
  }
  r->max_tokens = kind == OAI_CHAT ? OAI_DEFAULT_MAX_TOKENS_CHAT
                                   : OAI_DEFAULT_MAX_TOKENS_COMPLETIONS;
  if (v && !cJSON_IsNull(v)) {
    if (!whole_in(v, 1, OAI_MAX_TOKENS_LIMIT))
      return bad(msg, msglen, param, mt_name,
                 "'%s' must be an integer from 1 to %u", mt_name,
                 OAI_MAX_TOKENS_LIMIT);
    r->max_tokens = (uint32_t)v->valuedouble;
  }

  v = cJSON_GetObjectItemCaseSensitive(root, "n");
  if (v && !cJSON_IsNull(v) && !whole_in(v, 1, 1))
    return bad(msg, msglen, param, "n", "only n = 1 is supported");

  v = cJSON_GetObjectItemCaseSensitive(root, "stream");
  if (v && !cJSON_IsNull(v) && !cJSON_IsBool(v))
    return bad(msg, msglen, param, "stream", "'stream' must be a boolean");
  r->stream = cJSON_IsTrue(v);
  v = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
  if (v && !cJSON_IsNull(v)) {
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(v, "include_usage");
    if (!cJSON_IsObject(v) || (iu && !cJSON_IsBool(iu)))
      return bad(msg, msglen, param, "stream_options",
                 "'stream_options' must be an object with a boolean "
                 "'include_usage'");
    r->include_usage = cJSON_IsTrue(iu);
  }

  v = cJSON_GetObjectItemCaseSensitive(root, "infsched_class");
  if (v && !cJSON_IsNull(v)) {
    if (!cJSON_IsString(v) || infs_class_parse(v->valuestring, &r->cls))
      return bad(msg, msglen, param, "infsched_class",
                 "'infsched_class' must be interactive, agent or batch");
    r->has_class = true;
  }
  v = cJSON_GetObjectItemCaseSensitive(root, "infsched_session");
  if (v && !cJSON_IsNull(v)) {
    if (!cJSON_IsString(v))
      return bad(msg, msglen, param, "infsched_session",
                 "'infsched_session' must be a string");
    r->session = xstrdup(v->valuestring);
  }
  return parse_backend_fields(root, r, msg, msglen, param);
}

int oai_parse_request(oai_kind_t kind, const char *body, size_t len,
                      oai_request_t *out, char *msg, size_t msglen,
                      const char **param) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  *param = NULL;
  cJSON *root = cJSON_ParseWithLength(body, len);
  if (!root)
    return bad(msg, msglen, param, NULL, "the request body is not valid JSON");
  buf_t prompt = {0};
  int rc = -1;
  if (!cJSON_IsObject(root))
    bad(msg, msglen, param, NULL, "the request body must be a JSON object");
  else
    rc = parse_fields(kind, root, out, &prompt, msg, msglen, param);
  cJSON_Delete(root);
  if (rc) {
    buf_free(&prompt);
    oai_request_free(out);
    return -1;
  }
  out->prompt_len = prompt.len;
  out->prompt = prompt.data ? prompt.data : xstrdup("");
  return 0;
}

void oai_request_free(oai_request_t *r) {
  free(r->model);
  free(r->prompt);
  free(r->session);
  free(r->messages);
  free(r->options);
  r->model = r->prompt = r->session = r->messages = r->options = NULL;
}

/* --- rendering --- */

static cJSON *new_envelope(const oai_meta_t *m, const char *object) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", m->id);
  cJSON_AddStringToObject(o, "object", object);
  cJSON_AddNumberToObject(o, "created", (double)m->created);
  cJSON_AddStringToObject(o, "model", m->model);
  return o;
}

static cJSON *usage_json(const oai_usage_t *u) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "prompt_tokens", u->prompt_tokens);
  cJSON_AddNumberToObject(o, "completion_tokens", u->completion_tokens);
  cJSON_AddNumberToObject(o, "total_tokens",
                          (double)u->prompt_tokens + u->completion_tokens);
  cJSON *details = cJSON_AddObjectToObject(o, "prompt_tokens_details");
  cJSON_AddNumberToObject(details, "cached_tokens", u->cached_tokens);
  return o;
}

static void add_finish(cJSON *choice, const char *finish_reason) {
  if (finish_reason)
    cJSON_AddStringToObject(choice, "finish_reason", finish_reason);
  else
    cJSON_AddNullToObject(choice, "finish_reason");
}

static char *print(cJSON *o) {
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s)
    abort();
  return s;
}

/* A stream chunk of m with its one choice (index 0) in *choice. */
static cJSON *new_chunk(const oai_meta_t *m, cJSON **choice) {
  cJSON *o = new_envelope(m, m->kind == OAI_CHAT ? "chat.completion.chunk"
                                                 : "text_completion");
  cJSON *choices = cJSON_AddArrayToObject(o, "choices");
  *choice = cJSON_CreateObject();
  cJSON_AddItemToArray(choices, *choice);
  cJSON_AddNumberToObject(*choice, "index", 0);
  return o;
}

/* A piece's field as a string, or NULL. */
static const char *str_at(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void set_str(cJSON *o, const char *name, const char *value) {
  if (cJSON_GetObjectItemCaseSensitive(o, name))
    cJSON_ReplaceItemInObjectCaseSensitive(o, name, cJSON_CreateString(value));
  else
    cJSON_AddStringToObject(o, name, value);
}

/* Appends piece (may be NULL) to o's string field name. */
static void append_str(cJSON *o, const char *name, const char *piece) {
  if (!piece || !*piece)
    return;
  buf_t b = {0};
  buf_puts(&b, str_at(o, name));
  buf_puts(&b, piece);
  set_str(o, name, b.data);
  buf_free(&b);
}

int oai_tool_calls_merge(oai_pieces_t *t, const char *deltas, size_t len) {
  cJSON *d = cJSON_ParseWithLength(deltas, len);
  if (!cJSON_IsArray(d)) {
    cJSON_Delete(d);
    return -1;
  }
  if (!t->calls)
    t->calls = xcheck(cJSON_CreateArray());
  const cJSON *piece;
  cJSON_ArrayForEach(piece, d) {
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(piece, "index");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(piece, "function");
    int index = cJSON_IsNumber(ix) ? ix->valueint : cJSON_GetArraySize(t->calls);
    cJSON *call = NULL, *c;
    cJSON_ArrayForEach(c, t->calls) {
      const cJSON *ci = cJSON_GetObjectItemCaseSensitive(c, "index");
      if (ci && ci->valueint == index)
        call = c;
    }
    if (!call) {
      call = cJSON_CreateObject();
      cJSON_AddNumberToObject(call, "index", index);
      cJSON_AddStringToObject(call, "id", "");
      cJSON_AddStringToObject(call, "type", "function");
      cJSON *f = cJSON_AddObjectToObject(call, "function");
      cJSON_AddStringToObject(f, "name", "");
      cJSON_AddStringToObject(f, "arguments", "");
      cJSON_AddItemToArray(t->calls, call);
    }
    if (str_at(piece, "id"))
      set_str(call, "id", str_at(piece, "id"));
    if (str_at(piece, "type"))
      set_str(call, "type", str_at(piece, "type"));
    cJSON *f = cJSON_GetObjectItemCaseSensitive(call, "function");
    append_str(f, "name", str_at(fn, "name"));
    append_str(f, "arguments", str_at(fn, "arguments"));
  }
  cJSON_Delete(d);
  return 0;
}

int oai_logprobs_merge(oai_pieces_t *t, const char *json, size_t len) {
  cJSON *lp = cJSON_ParseWithLength(json, len);
  if (!cJSON_IsObject(lp)) {
    cJSON_Delete(lp);
    return -1;
  }
  if (!t->logprobs) {
    t->logprobs = lp;
    return 0;
  }
  cJSON *field;
  cJSON_ArrayForEach(field, lp) {
    if (!cJSON_IsArray(field))
      continue;
    cJSON *into = cJSON_GetObjectItemCaseSensitive(t->logprobs, field->string);
    if (!cJSON_IsArray(into)) {
      cJSON_DeleteItemFromObjectCaseSensitive(t->logprobs, field->string);
      into = cJSON_AddArrayToObject(t->logprobs, field->string);
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, field)
      cJSON_AddItemToArray(into, xcheck(cJSON_Duplicate(item, true)));
  }
  cJSON_Delete(lp);
  return 0;
}

void oai_pieces_free(oai_pieces_t *t) {
  cJSON_Delete(t->calls);
  cJSON_Delete(t->logprobs);
  t->calls = t->logprobs = NULL;
}

char *oai_render_tool_chunk(const oai_meta_t *m, const char *deltas,
                            size_t len) {
  cJSON *d = cJSON_ParseWithLength(deltas, len);
  if (!cJSON_IsArray(d)) {
    cJSON_Delete(d);
    return NULL;
  }
  cJSON *c, *o = new_chunk(m, &c);
  cJSON *delta = cJSON_AddObjectToObject(c, "delta");
  cJSON_AddItemToObject(delta, "tool_calls", d);
  cJSON_AddNullToObject(c, "logprobs");
  add_finish(c, NULL);
  return print(o);
}

char *oai_render_logprobs_chunk(const oai_meta_t *m, const char *logprobs,
                                size_t len) {
  cJSON *lp = cJSON_ParseWithLength(logprobs, len);
  if (!cJSON_IsObject(lp)) {
    cJSON_Delete(lp);
    return NULL;
  }
  cJSON *c, *o = new_chunk(m, &c);
  if (m->kind == OAI_CHAT)
    cJSON_AddObjectToObject(c, "delta");
  else
    cJSON_AddStringToObject(c, "text", "");
  cJSON_AddItemToObject(c, "logprobs", lp);
  add_finish(c, NULL);
  return print(o);
}

char *oai_render_response(const oai_meta_t *m, const char *text,
                          const char *finish_reason, const oai_usage_t *u,
                          const oai_extra_t *extra, const oai_pieces_t *pieces) {
  bool calls = pieces && cJSON_GetArraySize(pieces->calls) > 0;
  bool chat = m->kind == OAI_CHAT;
  cJSON *o = new_envelope(m, chat ? "chat.completion" : "text_completion");
  cJSON *choices = cJSON_AddArrayToObject(o, "choices");
  cJSON *c = cJSON_CreateObject();
  cJSON_AddItemToArray(choices, c);
  cJSON_AddNumberToObject(c, "index", 0);
  if (chat) {
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    if (calls && !*text) {
      cJSON_AddNullToObject(msg, "content");
    } else {
      cJSON_AddStringToObject(msg, "content", text);
    }
    if (calls) {
      /* The merge's index is not part of a message's call. */
      cJSON *list = xcheck(cJSON_Duplicate(pieces->calls, true));
      cJSON *call;
      cJSON_ArrayForEach(call, list)
          cJSON_DeleteItemFromObjectCaseSensitive(call, "index");
      cJSON_AddItemToObject(msg, "tool_calls", list);
    }
  } else {
    cJSON_AddStringToObject(c, "text", text);
  }
  if (pieces && pieces->logprobs)
    cJSON_AddItemToObject(c, "logprobs",
                          xcheck(cJSON_Duplicate(pieces->logprobs, true)));
  else
    cJSON_AddNullToObject(c, "logprobs");
  add_finish(c, finish_reason);
  cJSON_AddItemToObject(o, "usage", usage_json(u));
  if (extra) {
    cJSON *x = cJSON_AddObjectToObject(o, "infsched");
    cJSON_AddStringToObject(x, "worker", extra->worker ? extra->worker : "");
    cJSON_AddStringToObject(x, "worker_class",
                            extra->worker_class ? extra->worker_class : "");
    cJSON_AddNumberToObject(x, "cost_usd", extra->cost_usd);
  }
  return print(o);
}

char *oai_render_chunk(const oai_meta_t *m, const char *text, bool role,
                       const char *finish_reason) {
  bool chat = m->kind == OAI_CHAT;
  cJSON *c, *o = new_chunk(m, &c);
  if (chat) {
    cJSON *delta = cJSON_AddObjectToObject(c, "delta");
    if (role)
      cJSON_AddStringToObject(delta, "role", "assistant");
    if (text)
      cJSON_AddStringToObject(delta, "content", text);
  } else {
    cJSON_AddStringToObject(c, "text", text ? text : "");
  }
  cJSON_AddNullToObject(c, "logprobs");
  add_finish(c, finish_reason);
  return print(o);
}

char *oai_render_usage_chunk(const oai_meta_t *m, const oai_usage_t *u) {
  cJSON *o = new_envelope(m, m->kind == OAI_CHAT ? "chat.completion.chunk"
                                                 : "text_completion");
  cJSON_AddArrayToObject(o, "choices");
  cJSON_AddItemToObject(o, "usage", usage_json(u));
  return print(o);
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int oai_model_id(const char *path, char *out, size_t len, char *msg,
                 size_t msglen) {
  static const char prefix[] = "/v1/models/";
  if (strncmp(path, prefix, sizeof prefix - 1) != 0 ||
      !path[sizeof prefix - 1])
    return 0;
  size_t n = 0;
  for (const char *p = path + sizeof prefix - 1; *p; p++) {
    int c = (unsigned char)*p;
    if (c == '%') {
      int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);
      if (lo < 0 || (hi | lo) == 0) {
        snprintf(msg, msglen,
                 "the model id has a bad escape at '%.3s' (expected %%XX, "
                 "two hex digits, not %%00)",
                 p);
        return -1;
      }
      c = hi << 4 | lo;
      p += 2;
    }
    if (n + 1 >= len) {
      snprintf(msg, msglen, "the model id is longer than %zu bytes", len - 1);
      return -1;
    }
    out[n++] = (char)c;
  }
  out[n] = '\0';
  return 1;
}

char *oai_render_error(const char *message, const char *type, const char *param,
                       const char *code) {
  cJSON *o = cJSON_CreateObject();
  cJSON *e = cJSON_AddObjectToObject(o, "error");
  cJSON_AddStringToObject(e, "message", message);
  cJSON_AddStringToObject(e, "type", type);
  if (param)
    cJSON_AddStringToObject(e, "param", param);
  else
    cJSON_AddNullToObject(e, "param");
  if (code)
    cJSON_AddStringToObject(e, "code", code);
  else
    cJSON_AddNullToObject(e, "code");
  return print(o);
}
