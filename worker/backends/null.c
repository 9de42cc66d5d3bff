/* The null backend answers every request at once with one chunk of
 * max_tokens tokens and Done: it measures the scheduler and transport with
 * no model time at all (bench/). */
#include "builtin.h"

#include "infsched/errors.h"
#include "xalloc.h"
#include "honour.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct null_backend {
  infs_backend_host_t host;
  uint64_t generated;
} null_backend_t;

static int null_create(const infs_backend_host_t *host, const char *args,
                       void **state, char *err, size_t errlen) {
  if (args && *args) {
    snprintf(err, errlen, "null backend takes no arguments (got '%s')", args);
    return INFS_ECONFIG;
  }
  null_backend_t *b = xcalloc(1, sizeof *b);
  b->host = *host;
  *state = b;
  return 0;
}

static int null_submit(void *state, const infs_backend_request_t *r) {
  null_backend_t *b = state;
  if (honour_whole_or_refuse(&b->host, r, "null"))
    return 0;
  uint32_t n = honour_or_refuse(&b->host, r, "null");
  if (!n)
    return 0;
  infs_backend_usage_t u = {.generated_tokens = n};
  b->generated += n;
  b->host.tokens(b->host.ctx, r->id, n, "", 0);
  b->host.done(b->host.ctx, r->id, &u);
  return 0;
}

static void null_cancel(void *state, uint64_t id) {
  (void)state;
  (void)id;
}

static void null_load(void *state, infs_backend_load_t *out) {
  null_backend_t *b = state;
  *out = (infs_backend_load_t){.generated_tokens = b->generated};
}

static void null_destroy(void *state) { free(state); }

const infs_backend_ops_t backend_null = {
    .abi = INFS_BACKEND_ABI,
    .name = "null",
    .create = null_create,
    .submit = null_submit,
    .cancel = null_cancel,
    .load = null_load,
    .destroy = null_destroy,
};
