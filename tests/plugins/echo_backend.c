/* An example backend plugin: it "generates" by echoing the prompt back one
 * word per token, a token every delay_ms (default 5), up to max_tokens.
 * It shows the whole contract of include/infsched/backend.h: a table of
 * operations exported by infsched_backend_entry, per-request state with a
 * libuv timer on the worker's loop, cancellation, load for heartbeats,
 * and memory released from close callbacks.
 *
 *   cc -shared -fPIC -o libecho_backend.so echo_backend.c \
 *      $(pkg-config --cflags --libs infsched-backend)
 *   infsched-worker --backend plugin:./libecho_backend.so:delay_ms=20 ...
 */
#include <infsched/backend.h>
#include <infsched/errors.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct echo echo_t;

typedef struct echo_req {
  uv_timer_t timer; /* first: the handle's memory is the request's */
  echo_t *echo;
  struct echo_req *next;
  uint64_t id;
  char *prompt;
  size_t pos;    /* next byte of prompt to echo */
  uint32_t left; /* tokens still to produce */
  uint32_t made;
  uint32_t prompt_tokens;
  infs_time_t started;
  infs_time_t first;
} echo_req_t;

struct echo {
  infs_backend_host_t host;
  uint32_t delay_ms;
  echo_req_t *reqs; /* open requests */
  uint32_t open;
  uint64_t generated;
  double busy_s;
};

static infs_time_t now_us(void) {
  return uv_hrtime() / 1000;
}

static int echo_create(const infs_backend_host_t *host, const char *args,
                       void **state, char *err, size_t errlen) {
  unsigned delay = 5;
  if (args && *args &&
      (sscanf(args, "delay_ms=%u", &delay) != 1 || delay < 1 ||
       delay > 60000)) {
    snprintf(err, errlen, "echo: expected delay_ms=N (1..60000), got '%s'",
             args);
    return INFS_ECONFIG;
  }
  echo_t *e = calloc(1, sizeof *e);
  if (!e)
    return -1;
  e->host = *host;
  e->delay_ms = delay;
  *state = e;
  return 0;
}

static void unlink_req(echo_t *e, echo_req_t *r) {
  for (echo_req_t **p = &e->reqs; *p; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      e->open--;
      return;
    }
}

static void on_closed(uv_handle_t *h) {
  echo_req_t *r = (echo_req_t *)h;
  free(r->prompt);
  free(r);
}

/* Ends a request: no callbacks for it after this. */
static void finish(echo_req_t *r) {
  unlink_req(r->echo, r);
  uv_close((uv_handle_t *)&r->timer, on_closed);
}

static void on_tick(uv_timer_t *t) {
  echo_req_t *r = (echo_req_t *)t;
  echo_t *e = r->echo;
  if (r->left == 0) {
    infs_backend_usage_t u = {
        .prompt_tokens = r->prompt_tokens,
        .generated_tokens = r->made,
        .ttft_us = (r->first ? r->first : now_us()) - r->started,
        .busy_s = (double)(now_us() - r->started) / 1e6,
    };
    e->busy_s += u.busy_s;
    finish(r);
    e->host.done(e->host.ctx, r->id, &u);
    return;
  }
  /* The next word of the prompt, with the space before it. */
  char word[256];
  const char *p = r->prompt + r->pos;
  size_t n = 0;
  if (!*p) {
    p = "echo";
    n = 4;
  } else {
    while (p[0] == ' ')
      p++;
    while (p[n] && p[n] != ' ' && n < sizeof word - 2)
      n++;
    r->pos = (size_t)(p - r->prompt) + n;
  }
  word[0] = ' ';
  memcpy(word + 1, p, n);
  word[n + 1] = '\0';
  if (!r->first)
    r->first = now_us();
  r->left--;
  r->made++;
  e->generated++;
  e->host.tokens(e->host.ctx, r->id, 1, word, n + 1);
}

static int echo_submit(void *state, const infs_backend_request_t *req) {
  echo_t *e = state;
  if (req->phase != INFS_PHASE_FULL) {
    /* ERROR_BAD_REQUEST: it runs whole requests only. */
    e->host.failed(e->host.ctx, req->id, 4,
                   "the echo backend runs whole requests only");
    return 0;
  }
  echo_req_t *r = calloc(1, sizeof *r);
  if (!r)
    return -1;
  r->prompt = strdup(req->prompt ? req->prompt : "");
  if (!r->prompt) {
    free(r);
    return -1;
  }
  r->echo = e;
  r->id = req->id;
  r->left = req->max_tokens;
  r->prompt_tokens = req->prompt_tokens;
  r->started = now_us();
  uv_timer_init(e->host.loop, &r->timer);
  uv_timer_start(&r->timer, on_tick, e->delay_ms, e->delay_ms);
  r->next = e->reqs;
  e->reqs = r;
  e->open++;
  return 0;
}

static void echo_cancel(void *state, uint64_t id) {
  echo_t *e = state;
  for (echo_req_t *r = e->reqs; r; r = r->next)
    if (r->id == id) {
      finish(r);
      return;
    }
}

static void echo_load(void *state, infs_backend_load_t *out) {
  echo_t *e = state;
  *out = (infs_backend_load_t){
      .running = e->open,
      .busy_s = e->busy_s,
      .generated_tokens = e->generated,
  };
}

static void echo_destroy(void *state) {
  echo_t *e = state;
  while (e->reqs)
    finish(e->reqs);
  free(e);
}

static const infs_backend_ops_t echo_ops = {
    .abi = INFS_BACKEND_ABI,
    .name = "echo",
    .create = echo_create,
    .submit = echo_submit,
    .cancel = echo_cancel,
    .load = echo_load,
    .cache_delta = NULL,
    .cache_snapshot = NULL,
    .destroy = echo_destroy,
};

const infs_backend_ops_t *infsched_backend_entry(void) {
  return &echo_ops;
}
