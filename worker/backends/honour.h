/* What a backend without a model (sim, null) can do with the fields a
 * client sent beyond its prompt: it honours max_tokens, seed and stop, and
 * refuses the rest, which would change the form of the answer. */
#ifndef INFSCHED_BACKENDS_HONOUR_H
#define INFSCHED_BACKENDS_HONOUR_H

#include "infsched/backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns the tokens r is to produce, or 0 with the reason in msg when r
 * asks for what backend (its name, for the message) cannot give. With a
 * stop sequence the answer ends where the sequence would have been met:
 * after a number of tokens in [1, max_tokens] drawn from r's seed (from its
 * id without one), so the same seed ends at the same count. */
uint32_t honour_tokens(const infs_backend_request_t *r, const char *backend,
                       char *msg, size_t msglen);

/* honour_tokens, failing r through host with ERROR_BAD_REQUEST when it
 * returns 0. */
uint32_t honour_or_refuse(const infs_backend_host_t *host,
                          const infs_backend_request_t *r, const char *backend);

/* Fails r through host with ERROR_BAD_REQUEST when it is one phase of a
 * split request (prefill-only or decode-only), which backend (its name)
 * runs only whole; returns whether it did. */
bool honour_whole_or_refuse(const infs_backend_host_t *host,
                            const infs_backend_request_t *r,
                            const char *backend);

#endif
