/* fake-vllm: a stand-in for a vLLM OpenAI-compatible server started with
 * --kv-transfer-config '{"kv_connector":"NixlConnector",...}', for the
 * openai backend's disaggregated tests. It checks each request the way
 * vLLM's NIXL proxy (tests/v1/kv_connector/nixl_integration/
 * toy_proxy_server.py) shapes it, and answers as vLLM's prefill and decode
 * instances do:
 *
 * - a prefill request carries kv_transfer_params {"do_remote_decode": true,
 *   "do_remote_prefill": false, "remote_engine_id": null, "remote_block_ids":
 *   null, "remote_host": null, "remote_port": null}, "stream": false and
 *   "max_tokens": 1; any other shape is refused with HTTP 400 naming the
 *   field. The answer is one token and the kv_transfer_params a decode
 *   instance needs (do_remote_prefill, remote_engine_id, remote_request_id,
 *   remote_block_ids, remote_host, remote_port, tp_size); the blocks are
 *   held until a decode instance reads them.
 * - a decode request carries those params back. It reads the blocks from
 *   remote_host:remote_port (GET /nixl/blocks/ID, this program's stand-in
 *   for the NIXL side channel and transfer), which frees them there, and
 *   checks that the engine, the block ids and the prompt are the prefill's.
 *   Then it streams the whole completion from its first token, as vLLM's
 *   decode instance does.
 * - any other request is a plain completion.
 *
 * Token i of a completion is " w<i>", counted on from a prompt that ends
 * in " w<k>", so that a resumed stream reads as one. GET /stats answers
 * the counters. */
#include "cli.h"
#include "log.h"
#include "server.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_TOKENS 16
#define PULL_MAX (1u << 20)

typedef struct fake {
  uv_loop_t loop;
  uv_signal_t sigterm;
  uv_signal_t sigint;
  http_server_t *server;
  const char *engine_id;
  const char *model;
  char host[64];
  int port;
  bool connector;  /* false: behaves as vLLM without a KV connector */
  bool fail_pulls; /* every read of held blocks fails, as after expiry */
  cJSON *held;     /* remote_request_id -> what a decode instance reads */
  uint64_t next_request;
  uint64_t next_block;
  uint64_t prefills, decodes, plain, rejected, pulls, failed_pulls;
} fake_t;

static void respond_json(http_exchange_t *x, int status, const cJSON *body) {
  char *s = cJSON_PrintUnformatted(body);
  http_respond(x, status, "application/json", NULL, s, strlen(s));
  free(s);
}

static void respond_error(http_exchange_t *x, int status, const char *type,
                          const char *msg) {
  cJSON *o = cJSON_CreateObject();
  cJSON *e = cJSON_AddObjectToObject(o, "error");
  cJSON_AddStringToObject(e, "object", "error");
  cJSON_AddStringToObject(e, "message", msg);
  cJSON_AddStringToObject(e, "type", type);
  cJSON_AddNumberToObject(e, "code", status);
  respond_json(x, status, o);
  cJSON_Delete(o);
}

/* Refuses a request whose shape is not the proxy's, saying why. */
static void reject(fake_t *f, http_exchange_t *x, const char *why) {
  f->rejected++;
  log_warn("rejected: %s", why);
  respond_error(x, 400, "BadRequestError", why);
}

static const cJSON *get(const cJSON *o, const char *name) {
  return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* The prompt as this server compares it: the completion's prompt or the
 * chat's messages, as JSON text the caller frees. */
static char *prompt_of(const cJSON *root, bool chat) {
  const cJSON *p = get(root, chat ? "messages" : "prompt");
  return p ? cJSON_PrintUnformatted(p) : strdup("null");
}

static uint32_t prompt_tokens(const char *prompt) {
  size_t n = strlen(prompt);
  return n < 4 ? 1 : (uint32_t)((n + 3) / 4);
}

/* The number of the first token: one past a trailing " w<k>". */
static uint32_t first_token(const cJSON *root, bool chat) {
  const cJSON *p = get(root, "prompt");
  if (chat || !cJSON_IsString(p))
    return 1;
  const char *s = p->valuestring;
  const char *w = strrchr(s, 'w');
  if (!w || w == s || w[-1] != ' ' || !w[1])
    return 1;
  char *end;
  unsigned long k = strtoul(w + 1, &end, 10);
  return *end || k >= 1000000 ? 1 : (uint32_t)k + 1;
}

static cJSON *choice(bool chat, bool stream, const char *text,
                     const char *finish) {
  cJSON *c = cJSON_CreateObject();
  cJSON_AddNumberToObject(c, "index", 0);
  if (chat) {
    cJSON *m = cJSON_AddObjectToObject(c, stream ? "delta" : "message");
    if (!stream)
      cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "content", text);
  } else {
    cJSON_AddStringToObject(c, "text", text);
  }
  if (finish)
    cJSON_AddStringToObject(c, "finish_reason", finish);
  else
    cJSON_AddNullToObject(c, "finish_reason");
  return c;
}

static cJSON *usage_of(uint32_t prompt, uint32_t completion) {
  cJSON *u = cJSON_CreateObject();
  cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
  cJSON_AddNumberToObject(u, "completion_tokens", completion);
  cJSON_AddNumberToObject(u, "total_tokens", prompt + completion);
  return u;
}

static cJSON *response(const char *id, bool chat) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddStringToObject(o, "object",
                          chat ? "chat.completion" : "text_completion");
  return o;
}

/* A completion of max tokens from token number first, streamed or not;
 * kv is the kv_transfer_params to return (NULL: null). */
static void complete(http_exchange_t *x, const cJSON *root, bool chat,
                     const char *id, uint32_t first, uint32_t max,
                     uint32_t prompt, cJSON *kv) {
  const cJSON *stream = get(root, "stream");
  if (cJSON_IsTrue(stream)) {
    http_stream_begin(x, 200, "text/event-stream", NULL);
    for (uint32_t i = 0; i < max; i++) {
      char tok[32];
      snprintf(tok, sizeof tok, " w%u", first + i);
      cJSON *o = response(id, chat);
      cJSON *cs = cJSON_AddArrayToObject(o, "choices");
      cJSON_AddItemToArray(cs, choice(chat, true, tok,
                                      i + 1 == max ? "length" : NULL));
      char *s = cJSON_PrintUnformatted(o);
      http_stream_write(x, "data: ", 6);
      http_stream_write(x, s, strlen(s));
      http_stream_write(x, "\n\n", 2);
      free(s);
      cJSON_Delete(o);
    }
    if (cJSON_IsTrue(get(get(root, "stream_options"), "include_usage"))) {
      cJSON *o = response(id, chat);
      cJSON_AddArrayToObject(o, "choices");
      cJSON_AddItemToObject(o, "usage", usage_of(prompt, max));
      char *s = cJSON_PrintUnformatted(o);
      http_stream_write(x, "data: ", 6);
      http_stream_write(x, s, strlen(s));
      http_stream_write(x, "\n\n", 2);
      free(s);
      cJSON_Delete(o);
    }
    http_stream_write(x, "data: [DONE]\n\n", 14);
    http_stream_end(x);
    cJSON_Delete(kv);
    return;
  }
  char text[4096] = "";
  size_t len = 0;
  for (uint32_t i = 0; i < max && len + 16 < sizeof text; i++)
    len += (size_t)snprintf(text + len, sizeof text - len, " w%u", first + i);
  cJSON *o = response(id, chat);
  cJSON *cs = cJSON_AddArrayToObject(o, "choices");
  cJSON_AddItemToArray(cs, choice(chat, false, text, "length"));
  cJSON_AddItemToObject(o, "usage", usage_of(prompt, max));
  /* vLLM's CompletionResponse and ChatCompletionResponse both carry it. */
  if (kv)
    cJSON_AddItemToObject(o, "kv_transfer_params", kv);
  else
    cJSON_AddNullToObject(o, "kv_transfer_params");
  respond_json(x, 200, o);
  cJSON_Delete(o);
}

/* A completion of the request's max_tokens (16 without), as a decode
 * instance or a server without disaggregation makes it. */
static void generate(fake_t *f, http_exchange_t *x, const cJSON *root,
                     bool chat, uint32_t prompt) {
  const cJSON *mt = get(root, "max_tokens");
  uint32_t max = cJSON_IsNumber(mt) && mt->valuedouble >= 1
                     ? (uint32_t)mt->valuedouble
                     : 16;
  char id[64];
  snprintf(id, sizeof id, "cmpl-%s-%llu", f->engine_id,
           (unsigned long long)++f->next_request);
  complete(x, root, chat, id, first_token(root, chat), max, prompt, NULL);
}

static bool is_exactly(const cJSON *o, const char *name, int type) {
  const cJSON *v = get(o, name);
  switch (type) {
  case cJSON_True:
    return cJSON_IsTrue(v);
  case cJSON_False:
    return cJSON_IsFalse(v);
  default:
    return cJSON_IsNull(v);
  }
}

/* Why a prefill request differs from what vLLM's proxy sends, or NULL. */
static const char *prefill_mismatch(const cJSON *root, const cJSON *kv) {
  static const struct {
    const char *name;
    int type;
  } fields[] = {
      {"do_remote_decode", cJSON_True},  {"do_remote_prefill", cJSON_False},
      {"remote_engine_id", cJSON_NULL},  {"remote_block_ids", cJSON_NULL},
      {"remote_host", cJSON_NULL},       {"remote_port", cJSON_NULL},
  };
  static char why[160];
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
    if (!is_exactly(kv, fields[i].name, fields[i].type)) {
      snprintf(why, sizeof why, "kv_transfer_params.%s must be %s",
               fields[i].name,
               fields[i].type == cJSON_True    ? "true"
               : fields[i].type == cJSON_False ? "false"
                                                : "null");
      return why;
    }
  if (cJSON_GetArraySize(kv) != (int)(sizeof fields / sizeof *fields))
    return "kv_transfer_params has fields beyond the proxy's six";
  if (!cJSON_IsFalse(get(root, "stream")))
    return "a prefill must be sent with \"stream\": false";
  const cJSON *mt = get(root, "max_tokens");
  if (!cJSON_IsNumber(mt) || mt->valuedouble != 1)
    return "a prefill must be sent with \"max_tokens\": 1";
  const cJSON *mct = get(root, "max_completion_tokens");
  if (mct && (!cJSON_IsNumber(mct) || mct->valuedouble != 1))
    return "a prefill's max_completion_tokens must be 1";
  if (get(root, "stream_options"))
    return "a prefill is sent without stream_options";
  if (get(root, "min_tokens") || get(root, "min_completion_tokens"))
    return "a prefill is sent without min_tokens";
  return NULL;
}

static void prefill(fake_t *f, http_exchange_t *x, const cJSON *root,
                    const cJSON *kv, bool chat) {
  const char *why = prefill_mismatch(root, kv);
  if (why) {
    reject(f, x, why);
    return;
  }
  f->prefills++;
  char id[64];
  snprintf(id, sizeof id, "cmpl-%s-%llu", f->engine_id,
           (unsigned long long)++f->next_request);
  char *prompt = prompt_of(root, chat);
  uint32_t tokens = prompt_tokens(prompt);
  cJSON *blocks = cJSON_CreateArray();
  for (uint32_t i = 0; i < (tokens + BLOCK_TOKENS - 1) / BLOCK_TOKENS; i++)
    cJSON_AddItemToArray(blocks, cJSON_CreateNumber((double)f->next_block++));
  cJSON *hold = cJSON_CreateObject();
  cJSON_AddStringToObject(hold, "engine_id", f->engine_id);
  cJSON_AddStringToObject(hold, "prompt", prompt);
  cJSON_AddItemToObject(hold, "block_ids", cJSON_Duplicate(blocks, true));
  cJSON_AddItemToObject(f->held, id, hold);
  free(prompt);
  /* As NixlConnectorScheduler.request_finished returns them. */
  cJSON *out = cJSON_CreateObject();
  cJSON_AddTrueToObject(out, "do_remote_prefill");
  cJSON_AddFalseToObject(out, "do_remote_decode");
  cJSON_AddItemToObject(out, "remote_block_ids", blocks);
  cJSON_AddStringToObject(out, "remote_engine_id", f->engine_id);
  cJSON_AddStringToObject(out, "remote_request_id", id);
  cJSON_AddStringToObject(out, "remote_host", f->host);
  cJSON_AddNumberToObject(out, "remote_port", f->port);
  cJSON_AddNumberToObject(out, "tp_size", 1);
  log_info("prefill %s: %u prompt tokens held in %d blocks", id, tokens,
           cJSON_GetArraySize(blocks));
  complete(x, root, chat, id, first_token(root, chat), 1, tokens, out);
}

static size_t collect(char *data, size_t size, size_t n, void *arg) {
  char **buf = arg;
  size_t have = *buf ? strlen(*buf) : 0;
  if (have + size * n > PULL_MAX)
    return 0;
  char *b = realloc(*buf, have + size * n + 1);
  if (!b)
    return 0;
  memcpy(b + have, data, size * n);
  b[have + size * n] = '\0';
  *buf = b;
  return size * n;
}

/* Reads the held blocks of kv from the prefill instance it names. Returns
 * what it holds (the caller deletes it), or NULL with the reason in why. */
static cJSON *pull(const cJSON *kv, char *why, size_t whylen) {
  const cJSON *host = get(kv, "remote_host");
  const cJSON *port = get(kv, "remote_port");
  const cJSON *rid = get(kv, "remote_request_id");
  char url[256];
  snprintf(url, sizeof url, "http://%s:%d/nixl/blocks/%s", host->valuestring,
           (int)port->valuedouble, rid->valuestring);
  CURL *e = curl_easy_init();
  char *body = NULL;
  long status = 0;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
  CURLcode rc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  cJSON *held = rc == CURLE_OK && status == 200 && body ? cJSON_Parse(body)
                                                        : NULL;
  if (!held)
    snprintf(why, whylen, "KV transfer from engine %s failed: %s",
             cJSON_IsString(get(kv, "remote_engine_id"))
                 ? get(kv, "remote_engine_id")->valuestring
                 : "?",
             rc != CURLE_OK ? curl_easy_strerror(rc)
                            : "the prefill instance holds no such blocks");
  free(body);
  return held;
}

static void decode(fake_t *f, http_exchange_t *x, const cJSON *root,
                   const cJSON *kv, bool chat) {
  static const char *const strings[] = {"remote_engine_id",
                                        "remote_request_id", "remote_host"};
  for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
    if (!cJSON_IsString(get(kv, strings[i]))) {
      char why[96];
      snprintf(why, sizeof why, "kv_transfer_params.%s must be a string",
               strings[i]);
      reject(f, x, why);
      return;
    }
  if (!cJSON_IsNumber(get(kv, "remote_port")) ||
      !cJSON_IsArray(get(kv, "remote_block_ids")) ||
      !cJSON_IsFalse(get(kv, "do_remote_decode"))) {
    reject(f, x, "kv_transfer_params lacks the prefill's remote_port, "
                 "remote_block_ids or do_remote_decode");
    return;
  }
  char why[256];
  cJSON *held = pull(kv, why, sizeof why);
  if (!held) {
    f->failed_pulls++;
    log_warn("decode: %s", why);
    /* kv_load_failure_policy "fail": the request ends in an error. */
    respond_error(x, 500, "InternalServerError", why);
    return;
  }
  char *prompt = prompt_of(root, chat);
  const char *mismatch = NULL;
  if (strcmp(get(held, "engine_id")->valuestring,
             get(kv, "remote_engine_id")->valuestring) != 0)
    mismatch = "remote_engine_id is not the engine that holds the blocks";
  else if (!cJSON_Compare(get(held, "block_ids"), get(kv, "remote_block_ids"),
                          true))
    mismatch = "remote_block_ids are not the blocks the prefill returned";
  else if (strcmp(get(held, "prompt")->valuestring, prompt) != 0)
    mismatch = "the decode request's prompt is not the prefill's";
  uint32_t tokens = prompt_tokens(prompt);
  free(prompt);
  cJSON_Delete(held);
  if (mismatch) {
    reject(f, x, mismatch);
    return;
  }
  f->decodes++;
  log_info("decode: pulled the blocks of %s",
           get(kv, "remote_request_id")->valuestring);
  generate(f, x, root, chat, tokens);
}

static void completion(fake_t *f, http_exchange_t *x, bool chat) {
  size_t len;
  const char *body = http_exchange_body(x, &len);
  cJSON *root = cJSON_ParseWithLength(body, len);
  if (!cJSON_IsObject(root) || !cJSON_IsString(get(root, "model"))) {
    reject(f, x, "the body must be a JSON object with a model");
    cJSON_Delete(root);
    return;
  }
  const cJSON *kv = get(root, "kv_transfer_params");
  if (f->connector && kv && !cJSON_IsNull(kv)) {
    if (!cJSON_IsObject(kv))
      reject(f, x, "kv_transfer_params must be an object");
    else if (cJSON_IsTrue(get(kv, "do_remote_prefill")))
      decode(f, x, root, kv, chat);
    else
      prefill(f, x, root, kv, chat);
    cJSON_Delete(root);
    return;
  }
  f->plain++;
  char *prompt = prompt_of(root, chat);
  generate(f, x, root, chat, prompt_tokens(prompt));
  free(prompt);
  cJSON_Delete(root);
}

/* The side channel: a decode instance reads the blocks, which frees them
 * here (NIXL's notification to the prefill instance). */
static void blocks(fake_t *f, http_exchange_t *x, const char *id) {
  cJSON *held = cJSON_DetachItemFromObjectCaseSensitive(f->held, id);
  if (!held || f->fail_pulls) {
    cJSON_Delete(held);
    respond_error(x, 404, "NotFoundError", "no blocks held for that request");
    return;
  }
  f->pulls++;
  respond_json(x, 200, held);
  cJSON_Delete(held);
}

static void stats(fake_t *f, http_exchange_t *x) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "prefills", (double)f->prefills);
  cJSON_AddNumberToObject(o, "decodes", (double)f->decodes);
  cJSON_AddNumberToObject(o, "plain", (double)f->plain);
  cJSON_AddNumberToObject(o, "rejected", (double)f->rejected);
  cJSON_AddNumberToObject(o, "pulls", (double)f->pulls);
  cJSON_AddNumberToObject(o, "failed_pulls", (double)f->failed_pulls);
  cJSON_AddNumberToObject(o, "held", cJSON_GetArraySize(f->held));
  respond_json(x, 200, o);
  cJSON_Delete(o);
}

static void on_request(void *arg, http_exchange_t *x) {
  fake_t *f = arg;
  const char *method = http_exchange_method(x);
  const char *path = http_exchange_path(x);
  if (strcmp(method, "POST") == 0 && strcmp(path, "/v1/completions") == 0) {
    completion(f, x, false);
  } else if (strcmp(method, "POST") == 0 &&
             strcmp(path, "/v1/chat/completions") == 0) {
    completion(f, x, true);
  } else if (strcmp(method, "GET") == 0 && strcmp(path, "/v1/models") == 0) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", f->model);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "data"), m);
    respond_json(x, 200, o);
    cJSON_Delete(o);
  } else if (strcmp(method, "GET") == 0 &&
             strncmp(path, "/nixl/blocks/", 13) == 0) {
    blocks(f, x, path + 13);
  } else if (strcmp(method, "GET") == 0 && strcmp(path, "/stats") == 0) {
    stats(f, x);
  } else {
    respond_error(x, 404, "NotFoundError", "no such route");
  }
}

static void on_abort(void *arg, http_exchange_t *x) {
  (void)arg;
  (void)x;
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  fake_t *f = s->data;
  http_server_stop(f->server);
  uv_close((uv_handle_t *)&f->sigterm, NULL);
  uv_close((uv_handle_t *)&f->sigint, NULL);
}

static void usage(FILE *out) {
  fprintf(out,
          "Usage: fake-vllm --listen HOST:PORT [OPTIONS]\n"
          "Answers as a vLLM server with the NIXL KV connector, checking "
          "each\nrequest's disaggregation fields as vLLM's proxy sends "
          "them.\n\n"
          "  --listen HOST:PORT   address of its HTTP API (and side channel)\n"
          "  --engine-id ID       its engine id (default: engine-PORT)\n"
          "  --model NAME         the model GET /v1/models lists "
          "(default: any)\n"
          "  --no-connector       act as vLLM without --kv-transfer-config:\n"
          "                       kv_transfer_params are ignored, and none "
          "returned\n"
          "  --fail-pulls         every read of held blocks fails\n"
          "  -h, --help           show this help\n"
          "  --version            print the version and exit\n");
}

typedef struct options {
  fake_t *f;
  const char *listen;
} options_t;

static int parse_one(void *ctx, int c, const char *arg) {
  options_t *o = ctx;
  switch (c) {
  case 'l':
    o->listen = arg;
    return 0;
  case 'e':
    o->f->engine_id = arg;
    return 0;
  case 'm':
    o->f->model = arg;
    return 0;
  case 'n':
    o->f->connector = false;
    return 0;
  case 'p':
    o->f->fail_pulls = true;
    return 0;
  default:
    return CLI_NOT_MINE;
  }
}

int main(int argc, char **argv) {
  cli_init("fake-vllm");
  log_init("fake-vllm", LOG_LEVEL_INFO);
  fake_t f = {.model = "any", .connector = true};
  static const struct option options[] = {
      {"listen", required_argument, NULL, 'l'},
      {"engine-id", required_argument, NULL, 'e'},
      {"model", required_argument, NULL, 'm'},
      {"no-connector", no_argument, NULL, 'n'},
      {"fail-pulls", no_argument, NULL, 'p'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {0, 0, 0, 0}};
  options_t o = {.f = &f};
  if (cli_parse_args(argc, argv, options, usage, parse_one, &o))
    return CLI_EXIT_USAGE;
  const char *listen = o.listen;
  char engine[64];
  const char *colon = listen ? strrchr(listen, ':') : NULL;
  if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof f.host) {
    cli_usage_error("--listen HOST:PORT is required");
    return CLI_EXIT_USAGE;
  }
  memcpy(f.host, listen, (size_t)(colon - listen));
  f.port = atoi(colon + 1);
  if (!f.engine_id) {
    snprintf(engine, sizeof engine, "engine-%d", f.port);
    f.engine_id = engine;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  f.held = cJSON_CreateObject();
  uv_loop_init(&f.loop);
  http_server_config_t cfg = {.addr = listen, .max_body = 1u << 20};
  http_handler_t h = {.arg = &f, .on_request = on_request,
                      .on_abort = on_abort};
  char err[256];
  if (http_server_start(&f.loop, &cfg, &h, &f.server, err, sizeof err)) {
    fprintf(stderr, "fake-vllm: %s\n", err);
    return CLI_EXIT_STARTUP;
  }
  uv_signal_init(&f.loop, &f.sigterm);
  uv_signal_init(&f.loop, &f.sigint);
  f.sigterm.data = f.sigint.data = &f;
  uv_signal_start(&f.sigterm, on_signal, SIGTERM);
  uv_signal_start(&f.sigint, on_signal, SIGINT);
  log_info("listening on %s as engine %s%s", http_server_address(f.server),
           f.engine_id, f.connector ? "" : " without a KV connector");
  uv_run(&f.loop, UV_RUN_DEFAULT);
  http_server_destroy(&f.server);
  int rc = uv_loop_close(&f.loop);
  cJSON_Delete(f.held);
  curl_global_cleanup();
  return rc ? CLI_EXIT_FAILED : 0;
}
