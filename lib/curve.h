/* CurveZMQ for the scheduler's ports: making key files, the local keys
 * directory, and setting sockets up with them (docs/security.md). The
 * file format and the checks are lib/keys.h's. */
#ifndef INFSCHED_CURVE_H
#define INFSCHED_CURVE_H

#include "infsched/auth.h"
#include "keys.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Returns 0 when libzmq can do CURVE, or INFS_ECONFIG with why in err
 * (libzmq built without libsodium or tweetnacl). */
int curve_check(char *err, size_t errlen);

/* Makes a key pair: path, the public file, and path_secret (mode 0600).
 * Neither may exist. Returns 0, or a negative code with why in err. */
int curve_keygen(const char *path, char *err, size_t errlen);

/* The keys directory of auth: auth->dir, else the local one. Returns 0, or
 * INFS_ECONFIG with why in err. */
int curve_dir(const infs_auth_t *auth, char *buf, size_t len, char *err,
              size_t errlen);

/* Makes the local keys in dir unless it has them: the scheduler's, a
 * worker's and a client's pairs, the worker's admitted on the worker port
 * (allowed/workers/), the client's on the client port (allowed/clients/).
 * A pair whose public file is there without its secret is left as it is.
 * Safe when several processes start at once. Returns 0, or a negative
 * code with why in err. */
int curve_local_keys(const char *dir, char *err, size_t errlen);

/* The key pair of worker name in dir/workers/, admitted by the scheduler
 * (dir/allowed/workers/name.key); made unless there. Writes the secret file's
 * path into secret_path. Returns 0, or a negative code with why in err. */
int curve_instance_key(const char *dir, const char *name, char *secret_path,
                       size_t len, char *err, size_t errlen);

/* Makes sock a CURVE client of the scheduler with auth's keys (see
 * infs_auth_t; role names the own key's default file, KEYS_WORKER or
 * KEYS_CLIENT). A key file not named is one of the local keys, which are
 * made when missing (curve_local_keys). Nothing with auth->off. Returns
 * 0, or with why in err INFS_ECONFIG (a file named in auth missing or not
 * a key file) or another negative code (the local keys cannot be made or
 * read). */
int curve_client(void *sock, const infs_auth_t *auth, const char *role,
                 char *err, size_t errlen);

/* Makes sock a CURVE server with the secret key file at path. Returns 0,
 * or INFS_ECONFIG with why in err (the file missing or not a key file). */
int curve_server(void *sock, const char *path, char *err, size_t errlen);

/* The handshake failures a monitor reports (zmq_socket_monitor events). */
#define CURVE_HANDSHAKE_FAILURES                                               \
  (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                                      \
   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

/* Why a handshake failed, for a monitor event of CURVE_HANDSHAKE_FAILURES,
 * or NULL for another event. */
const char *curve_handshake_failure(uint16_t event);

/* Watches sock's handshakes (a monitor on zctx, on loop): a refused one
 * is otherwise silent, and libzmq does not try that connection again.
 * Each failure goes to failed (not from inside it may sock be closed), or
 * with failed NULL to the log, at most one line a second. */
typedef struct curve_watch curve_watch_t;
typedef void (*curve_failed_cb)(void *arg, const char *why);
int curve_watch_start(uv_loop_t *loop, void *zctx, void *sock,
                      curve_failed_cb failed, void *arg,
                      curve_watch_t **out);
/* Stops it; before sock is closed. */
void curve_watch_close(curve_watch_t **w);

#endif
