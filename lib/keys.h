/* CurveZMQ key files and the set of keys a scheduler admits; no libzmq
 * here, so that the checks are testable alone (lib/curve.h makes keys and
 * sets sockets up).
 *
 * A key file is CZMQ's certificate format: a public file NAME holds
 * `public-key = "Z85"` under `curve`, and its secret file NAME_secret
 * holds `secret-key` too. Keys are Z85 text of 40 characters, as
 * zmq_curve_keypair makes them. */
#ifndef INFSCHED_KEYS_H
#define INFSCHED_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define KEYS_Z85_LEN 40
#define KEYS_SECRET_SUFFIX "_secret"
/* Files in a keys directory (docs/security.md). */
#define KEYS_SCHEDULER "scheduler.key"
#define KEYS_WORKER "worker.key"
#define KEYS_CLIENT "client.key"
/* The public keys the scheduler admits, by port: allowed/workers/ on the
 * worker port, allowed/clients/ on the client port. */
#define KEYS_ALLOWED_WORKERS "allowed/workers"
#define KEYS_ALLOWED_CLIENTS "allowed/clients"
#define KEYS_INSTANCES "workers" /* infsched-cluster's, one per worker */

/* The local keys directory: $XDG_STATE_HOME/infsched/keys, else
 * $HOME/.local/state/infsched/keys. Returns 0, or -1 with neither set or
 * the path too long. */
int keys_default_dir(char *buf, size_t len);

/* Whether text is a key: KEYS_Z85_LEN characters of Z85's alphabet. */
bool keys_valid(const char *text);

/* Reads the keys of a key file's text: public into pub, and with secret
 * (may be NULL) the secret key, which must then be there. Returns 0, or -1
 * with why in err. */
int keys_parse(const char *text, char pub[KEYS_Z85_LEN + 1],
               char secret[KEYS_Z85_LEN + 1], char *err, size_t errlen);

/* keys_parse of the file at path; err names the file. Returns 0, -errno
 * when it cannot be read, or INFS_ECONFIG when it is not a key file. */
int keys_load(const char *path, char pub[KEYS_Z85_LEN + 1],
              char secret[KEYS_Z85_LEN + 1], char *err, size_t errlen);

/* A key file's text for pub, with secret when not NULL. Returns the length
 * written (as snprintf). */
int keys_format(char *buf, size_t len, const char *pub, const char *secret);

/* The public keys a scheduler admits. */
typedef struct keyring keyring_t;

/* Reads every public key file of dir (names starting with '.' or ending
 * in KEYS_SECRET_SUFFIX, and directories, are skipped); a dir that does
 * not exist holds none. Returns 0 and a keyring the caller
 * destroys, or -1 with why in err (an unreadable directory, a file that
 * is not a key file; dir, its parent unless sticky, or a file that a
 * user other than this one or root owns or that group or others can
 * write). */
int keyring_load(const char *dir, keyring_t **out, char *err, size_t errlen);
/* Adds a key; returns 0, or -1 when it is not a key. */
int keyring_add(keyring_t *k, const char *z85);
keyring_t *keyring_new(void);
void keyring_destroy(keyring_t **k);
size_t keyring_count(const keyring_t *k);
/* Whether z85 is one of k's keys: the ZAP handler's decision. */
bool keyring_allows(const keyring_t *k, const char *z85);

#endif
