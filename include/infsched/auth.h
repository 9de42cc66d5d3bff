/* How a ZeroMQ peer of the scheduler (a worker or a client) authenticates
 * to it: CurveZMQ with key files (docs/security.md). */
#ifndef INFSCHED_AUTH_H
#define INFSCHED_AUTH_H

typedef struct infs_auth {
  int off;                /* no CURVE: plain ZeroMQ, for an open scheduler */
  const char *dir;        /* keys directory; NULL: the local one */
  const char *server_key; /* the scheduler's public key file; NULL: in dir */
  const char *key;        /* own secret key file; NULL: in dir */
} infs_auth_t;

#endif
