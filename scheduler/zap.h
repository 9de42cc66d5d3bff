/* The scheduler's ZAP handler (ZeroMQ RFC 27): admits a CURVE peer whose
 * public key is in the keyring of its socket's ZAP domain (ZAP_WORKERS or
 * ZAP_CLIENTS), and names it by that key (its User-Id, which zmq_msg_gets
 * returns on each of its messages). Serviced on the shell's loop. */
#ifndef INFSCHED_SCHEDULER_ZAP_H
#define INFSCHED_SCHEDULER_ZAP_H

#include "keys.h"

#include <stdint.h>
#include <uv.h>

typedef struct zap zap_t;

/* The ZMQ_ZAP_DOMAIN of each port's socket. */
#define ZAP_WORKERS "workers"
#define ZAP_CLIENTS "clients"

/* Binds inproc://zeromq.zap.01 on zctx, before any CURVE server socket of
 * zctx binds (libzmq admits everyone while no handler is bound). The
 * keyrings are borrowed and must outlive the handler. Returns 0, or a
 * negative code with why in err. */
int zap_start(uv_loop_t *loop, void *zctx, const keyring_t *workers,
              const keyring_t *clients, zap_t **out, char *err,
              size_t errlen);
/* Stops watching; the socket stays open until zap_destroy. */
void zap_stop(zap_t *z);
/* Closes the socket; before zmq_ctx_term. */
void zap_destroy(zap_t **z);
/* Handshakes refused so far. */
uint64_t zap_refused(const zap_t *z);

#endif
