/* Timed streamed completions (tools/calibrate/measure.h). The answers are
 * read as the openai backend reads them (worker/backends/openai_sse.h and
 * openai_chunk.h); the loop is curl_multi_poll, since the program has
 * nothing else to wait on. */
#include "measure.h"

#include "buf.h"
#include "clock.h"
#include "openai_sse.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of an error or non-streamed body kept for its message. */
#define RAW_MAX (64u << 10)

struct measure {
  CURLM *multi;
  char *url;
  struct curl_slist *headers;
  uint32_t timeout_ms;
};

/* One transfer of a batch. */
typedef struct xfer {
  measure_call_t *call;
  CURL *easy;
  openai_sse_t sse;
  buf_t raw; /* a body that is not a stream */
  bool checked;
  bool is_sse;
  bool ended; /* libcurl reported it done */
  char errbuf[CURL_ERROR_SIZE];
} xfer_t;

measure_t *measure_new(const char *url, const char *api_key,
                       uint32_t timeout_ms, char *err, size_t errlen) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "libcurl did not start");
    return NULL;
  }
  measure_t *m = xcalloc(1, sizeof *m);
  m->multi = curl_multi_init();
  if (!m->multi) {
    snprintf(err, errlen, "libcurl did not start");
    free(m);
    curl_global_cleanup();
    return NULL;
  }
  m->url = xstrdup(url);
  m->timeout_ms = timeout_ms;
  m->headers = curl_slist_append(NULL, "Content-Type: application/json");
  m->headers = curl_slist_append(m->headers, "Accept: text/event-stream");
  m->headers = curl_slist_append(m->headers, "Expect:");
  if (api_key) {
    buf_t line = {0};
    buf_printf(&line, "Authorization: Bearer %s", api_key);
    m->headers = curl_slist_append(m->headers, line.data);
    buf_free(&line);
  }
  return m;
}

void measure_destroy(measure_t **mp) {
  measure_t *m = *mp;
  if (!m)
    return;
  curl_multi_cleanup(m->multi);
  curl_slist_free_all(m->headers);
  free(m->url);
  free(m);
  curl_global_cleanup();
  *mp = NULL;
}

static void call_error(measure_call_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void call_error(measure_call_t *c, const char *fmt, ...) {
  if (c->error[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->error, sizeof c->error, fmt, ap);
  va_end(ap);
}

static int on_event(void *arg, const char *data, size_t len) {
  xfer_t *x = arg;
  measure_call_t *c = x->call;
  if (strcmp(data, "[DONE]") == 0) {
    c->finished = true;
    return 0;
  }
  cJSON *root = cJSON_ParseWithLength(data, len);
  if (!root) {
    call_error(c, "the server sent an event that is not JSON: %.200s", data);
    return 1;
  }
  const char *err = openai_chunk_error(root);
  if (err) {
    call_error(c, "the server answered an error: %.400s", err);
    cJSON_Delete(root);
    return 1;
  }
  const cJSON *choice =
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
  const char *text = choice ? openai_chunk_text(choice) : NULL;
  if (text && *text) {
    infs_time_t now = clock_us();
    if (!c->first)
      c->first = now;
    c->last = now;
    c->events++;
  }
  const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
  if (cJSON_IsString(fr)) {
    c->finished = true;
    snprintf(c->finish_reason, sizeof c->finish_reason, "%s", fr->valuestring);
  }
  openai_chunk_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"),
                     &c->usage);
  cJSON_Delete(root);
  return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg) {
  xfer_t *x = arg;
  size_t n = size * nmemb;
  if (!x->checked) {
    char *ctype = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->call->status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
    x->is_sse = ctype && strncmp(ctype, "text/event-stream", 17) == 0;
    x->checked = true;
  }
  if (x->call->status >= 400 || !x->is_sse) {
    /* Past the cap the rest is dropped: the message is at the start. */
    if (x->raw.len < RAW_MAX)
      buf_append(&x->raw, data,
                 n < RAW_MAX - x->raw.len ? n : RAW_MAX - x->raw.len);
    return n;
  }
  return openai_sse_feed(&x->sse, data, n, on_event, x) ? 0 : n;
}

/* What an answer that was not a stream says, for the error. */
static void plain_answer(xfer_t *x) {
  measure_call_t *c = x->call;
  cJSON *root = x->raw.data ? cJSON_Parse(x->raw.data) : NULL;
  const char *msg = root ? openai_chunk_error(root) : NULL;
  if (c->status >= 400)
    call_error(c, "HTTP %ld: %.400s", c->status,
               msg ? msg : (x->raw.data ? x->raw.data : "(no body)"));
  else
    call_error(c,
               "HTTP %ld without a stream: the server does not stream "
               "completions",
               c->status);
  cJSON_Delete(root);
}

static void finish(xfer_t *x, CURLcode res) {
  measure_call_t *c = x->call;
  x->ended = true;
  if (!x->checked)
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &c->status);
  if (c->error[0])
    return; /* an event said why */
  if (res != CURLE_OK) {
    call_error(c, "%s%s%s", curl_easy_strerror(res), x->errbuf[0] ? ": " : "",
               x->errbuf);
    return;
  }
  if (c->status >= 400 || !x->is_sse) {
    plain_answer(x);
    return;
  }
  if (!c->finished)
    call_error(c, "the stream ended before the answer finished");
  else if (!c->first)
    call_error(c, "the answer had no text");
}

static CURL *easy_for(measure_t *m, xfer_t *x) {
  CURL *e = curl_easy_init();
  if (!e)
    return NULL;
  curl_easy_setopt(e, CURLOPT_URL, m->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, m->headers);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->call->body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  if (m->timeout_ms)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)m->timeout_ms);
  return e;
}

void measure_run(measure_t *m, measure_call_t *calls, size_t n) {
  xfer_t *x = xcalloc(n ? n : 1, sizeof *x);
  size_t added = 0;
  for (size_t i = 0; i < n; i++) {
    measure_call_t *c = &calls[i];
    const char *body = c->body;
    memset(c, 0, sizeof *c);
    c->body = body;
    x[i].call = c;
    openai_sse_init(&x[i].sse);
    x[i].easy = easy_for(m, &x[i]);
    if (!x[i].easy || curl_multi_add_handle(m->multi, x[i].easy) != CURLM_OK) {
      call_error(c, "libcurl could not start the request");
      continue;
    }
    c->sent = clock_us();
    added++;
  }
  int running = (int)added;
  while (running > 0) {
    if (curl_multi_perform(m->multi, &running) != CURLM_OK)
      break;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)))
      if (msg->msg == CURLMSG_DONE) {
        xfer_t *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        finish(t, msg->data.result);
      }
    if (running > 0)
      curl_multi_poll(m->multi, NULL, 0, 1000, NULL);
  }
  for (size_t i = 0; i < n; i++) {
    if (x[i].easy && !x[i].ended)
      call_error(x[i].call, "libcurl stopped before the request ended");
    if (x[i].easy) {
      curl_multi_remove_handle(m->multi, x[i].easy);
      curl_easy_cleanup(x[i].easy);
    }
    openai_sse_free(&x[i].sse);
    buf_free(&x[i].raw);
  }
  free(x);
}
