#include "openai_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy(char *dst, size_t cap, const char *src, size_t len) {
  if (len >= cap)
    return -1;
  memcpy(dst, src, len);
  dst[len] = '\0';
  return 0;
}

static int parse_ms(const char *v, uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long n = strtoul(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-' || n > 86400000ul)
    return -1;
  *out = (uint32_t)n;
  return 0;
}

/* Applies one key=value option of len bytes at opt. */
static int apply(openai_opts_t *o, const char *opt, size_t len, char *err,
                 size_t errlen) {
  char buf[OPENAI_URL_MAX];
  if (copy(buf, sizeof buf, opt, len)) {
    snprintf(err, errlen, "openai: option too long");
    return -1;
  }
  char *eq = strchr(buf, '=');
  if (!eq) {
    snprintf(err, errlen, "openai: option '%s' is not key=value", buf);
    return -1;
  }
  *eq = '\0';
  const char *key = buf, *val = eq + 1;
  int rc = 0;
  if (strcmp(key, "model") == 0)
    rc = copy(o->model, sizeof o->model, val, strlen(val));
  else if (strcmp(key, "api_key_env") == 0)
    rc = copy(o->api_key_env, sizeof o->api_key_env, val, strlen(val)) || !*val;
  else if (strcmp(key, "api") == 0 && strcmp(val, "auto") == 0)
    o->api = OPENAI_API_AUTO;
  else if (strcmp(key, "api") == 0 && strcmp(val, "chat") == 0)
    o->api = OPENAI_API_CHAT;
  else if (strcmp(key, "api") == 0 && strcmp(val, "completions") == 0)
    o->api = OPENAI_API_COMPLETIONS;
  else if (strcmp(key, "timeout_ms") == 0)
    rc = parse_ms(val, &o->timeout_ms);
  else if (strcmp(key, "connect_timeout_ms") == 0)
    rc = parse_ms(val, &o->connect_timeout_ms);
  else if (strcmp(key, "health_ms") == 0)
    rc = parse_ms(val, &o->health_ms);
  else {
    snprintf(err, errlen,
             "openai: unknown option '%s' (model, api_key_env, api, "
             "timeout_ms, connect_timeout_ms, health_ms)",
             key);
    return -1;
  }
  if (rc) {
    snprintf(err, errlen, "openai: bad value for %s: '%s'", key, val);
    return -1;
  }
  return 0;
}

int openai_opts_parse(const char *args, openai_opts_t *o, char *err,
                      size_t errlen) {
  memset(o, 0, sizeof *o);
  o->timeout_ms = OPENAI_DEFAULT_TIMEOUT_MS;
  o->connect_timeout_ms = OPENAI_DEFAULT_CONNECT_TIMEOUT_MS;
  o->health_ms = OPENAI_DEFAULT_HEALTH_MS;
  if (!args || !*args) {
    snprintf(err, errlen,
             "openai backend needs the server's URL, e.g. "
             "openai:http://127.0.0.1:8000/v1");
    return -1;
  }
  size_t ulen = strcspn(args, ",");
  if ((strncmp(args, "http://", 7) != 0 && strncmp(args, "https://", 8) != 0) ||
      copy(o->base, sizeof o->base, args, ulen)) {
    snprintf(err, errlen, "openai: '%.*s' is not an http:// or https:// URL",
             (int)ulen, args);
    return -1;
  }
  while (ulen > 0 && o->base[ulen - 1] == '/')
    o->base[--ulen] = '\0';
  for (const char *p = args + strcspn(args, ","); *p;) {
    p++;
    size_t n = strcspn(p, ",");
    if (n && apply(o, p, n, err, errlen))
      return -1;
    p += n;
  }
  return 0;
}

bool openai_opts_chat(const openai_opts_t *o, bool has_messages) {
  return o->api == OPENAI_API_CHAT ||
         (o->api == OPENAI_API_AUTO && has_messages);
}

void openai_opts_endpoint(const openai_opts_t *o, bool chat, char *buf,
                          size_t len) {
  snprintf(buf, len, "%s/%s", o->base, chat ? "chat/completions" : "completions");
}
