/* A blocking ZeroMQ client for integration tests: raw frames and envelopes
 * to a scheduler endpoint, and status polling. */
#ifndef INFSCHED_TESTS_ZCLIENT_H
#define INFSCHED_TESTS_ZCLIENT_H

#include "infsched.pb-c.h"
#include "infsched/auth.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct zclient zclient_t;

/* The CURVE keys every new zclient presents: the local ones (those of
 * client.key, or worker.key for zclient_new_worker) unless a test sets
 * others; .off against a scheduler started with --auth off. */
extern infs_auth_t zclient_auth;

zclient_t *zclient_new(const char *endpoint);
/* The same on a scheduler's worker port, with a worker's keys. */
zclient_t *zclient_new_worker(const char *endpoint);
/* The same with a routing id of the caller's choosing (len bytes). */
zclient_t *zclient_new_as(const char *endpoint, const void *id, size_t len);
void zclient_destroy(zclient_t **c);
/* Sends raw bytes as one frame, or an envelope (version set by the caller
 * when version is not 0, else the current one). Returns 0 or -1. */
int zclient_send_raw(zclient_t *c, const void *data, size_t len);
int zclient_send(zclient_t *c, Infsched__Envelope *env, unsigned version);
/* Sends a worker's Register for worker_id with capacity (and max_batch) and
 * figures of its own under the name gpu-h100 (10 ms a step, 0.1 ms a
 * token, contexts up to 4096 tokens in blocks of 16), which a scheduler
 * with its profiles file replaces by its own. Returns 0 or -1. */
int zclient_register(zclient_t *c, const char *worker_id, uint32_t capacity);
/* Waits up to timeout_ms for one envelope; NULL on timeout or bad frame.
 * The caller frees it with infsched__envelope__free_unpacked. */
Infsched__Envelope *zclient_recv(zclient_t *c, int timeout_ms);

/* The value of the Status counter name; 0 when there is none. */
uint64_t zclient_counter(const Infsched__Status *s, const char *name);
/* A zclient_wait_status predicate: exactly *(size_t *)arg workers. */
bool zclient_has_n_workers(const Infsched__Status *s, void *arg);
/* A zclient_wait_status predicate: worker arg (its id) says in its last
 * heartbeat that its backend is unhealthy. The healthy gauge of /metrics
 * is no substitute: it also drops while heartbeats are merely late. */
bool zclient_says_unhealthy(const Infsched__Status *s, void *arg);
/* A zclient_wait_status predicate: worker arg (its id) says in its last
 * heartbeat that it drains, or is no longer listed (a drained worker that
 * has stopped): the scheduler places nothing more there. */
bool zclient_says_draining(const Infsched__Status *s, void *arg);

/* Asks for Status every 50 ms until pred(status, arg) holds or timeout_ms
 * passes. Returns true when it held. */
bool zclient_wait_status(const char *endpoint,
                         bool (*pred)(const Infsched__Status *, void *),
                         void *arg, int timeout_ms);

#endif
