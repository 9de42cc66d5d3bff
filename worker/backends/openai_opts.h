/* Options of the openai backend, from the text after "openai:" on the
 * worker's command line:
 *   URL[,model=NAME][,api_key_env=VAR][,api=auto|completions|chat]
 *      [,timeout_ms=N][,connect_timeout_ms=N][,health_ms=N]
 * URL is the server's API base, e.g. http://127.0.0.1:8000/v1. */
#ifndef INFSCHED_BACKENDS_OPENAI_OPTS_H
#define INFSCHED_BACKENDS_OPENAI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPENAI_URL_MAX 1024
#define OPENAI_NAME_MAX 128
#define OPENAI_DEFAULT_TIMEOUT_MS 600000u
#define OPENAI_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define OPENAI_DEFAULT_HEALTH_MS 5000u

/* Which endpoint a request goes to: auto sends chat requests (those with
 * messages) to /chat/completions and the others to /completions. */
typedef enum openai_api {
  OPENAI_API_AUTO,
  OPENAI_API_COMPLETIONS,
  OPENAI_API_CHAT
} openai_api_t;

typedef struct openai_opts {
  char base[OPENAI_URL_MAX];   /* without a trailing '/' */
  char model[OPENAI_NAME_MAX]; /* empty: the request's own model */
  char api_key_env[OPENAI_NAME_MAX];
  openai_api_t api;
  uint32_t timeout_ms; /* whole request; 0: none */
  uint32_t connect_timeout_ms;
  uint32_t health_ms;  /* probe URL/models this often; 0: never */
} openai_opts_t;

/* Parses args into o (defaults first). Returns 0, or -1 with the reason
 * in err. */
int openai_opts_parse(const char *args, openai_opts_t *o, char *err,
                      size_t errlen);

/* Whether a request, chat (it has messages) or not, goes to
 * /chat/completions. */
bool openai_opts_chat(const openai_opts_t *o, bool has_messages);

/* The endpoint, chat or completions, written into buf. */
void openai_opts_endpoint(const openai_opts_t *o, bool chat, char *buf,
                          size_t len);

#endif
