#include "curve.h"

#include "infsched/errors.h"
#include "clock.h"
#include "log.h"
#include "zwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int curve_check(char *err, size_t errlen) {
  if (zmq_has("curve"))
    return 0;
  snprintf(err, errlen,
           "this libzmq has no CURVE (it was built without libsodium or "
           "tweetnacl): install one that has (Debian's libzmq5 does), or "
           "run without authentication (--auth off)");
  return INFS_ECONFIG;
}

/* Writes text whole, with mode, to a hidden temporary file beside path
 * (".NAME.tmp.PID", which keyring_load skips); its name goes to tmp. */
static int write_tmp(const char *path, const char *text, mode_t mode,
                     char *tmp, size_t len) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  int n = snprintf(tmp, len, "%.*s.%s.tmp.%ld", (int)(base - path), path,
                   base, (long)getpid());
  if (n < 0 || (size_t)n >= len)
    return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0)
    return -errno;
  size_t want = strlen(text);
  int rc = write(fd, text, want) == (ssize_t)want ? 0 : -EIO;
  if (close(fd) && !rc)
    rc = -errno;
  if (rc)
    unlink(tmp);
  return rc;
}

/* Writes text to path, which must not exist: linked into place whole, so
 * that a reader never sees half a key and of two writers at once one
 * wins. Returns 0, -EEXIST, or -errno. */
static int write_new(const char *path, const char *text, mode_t mode) {
  char tmp[PATH_MAX];
  int rc = write_tmp(path, text, mode, tmp, sizeof tmp);
  if (rc)
    return rc;
  if (link(tmp, path))
    rc = -errno;
  unlink(tmp);
  return rc;
}

/* Writes text to path, replacing what is there (rename: never half). */
static int write_over(const char *path, const char *text, mode_t mode) {
  char tmp[PATH_MAX];
  int rc = write_tmp(path, text, mode, tmp, sizeof tmp);
  if (rc)
    return rc;
  if (rename(tmp, path)) {
    rc = -errno;
    unlink(tmp);
  }
  return rc;
}

/* Makes path the public key file of pub unless it is already. */
static int write_public(const char *path, const char *pub, char *err,
                        size_t errlen) {
  char have[KEYS_Z85_LEN + 1], why[PATH_MAX + 128], text[1024];
  if (keys_load(path, have, NULL, why, sizeof why) == 0 &&
      strcmp(have, pub) == 0)
    return 0;
  keys_format(text, sizeof text, pub, NULL);
  int rc = write_over(path, text, 0644);
  if (rc)
    snprintf(err, errlen, "%s: %s", path, strerror(-rc));
  return rc;
}

/* keys_load of a pair's secret file, refused when group or others may
 * read it: a secret others can read is theirs too (OpenSSH refuses such
 * a private key the same way). */
static int load_secret(const char *path, char pub[KEYS_Z85_LEN + 1],
                       char secret[KEYS_Z85_LEN + 1], char *err,
                       size_t errlen) {
  struct stat st;
  if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO))) {
    snprintf(err, errlen,
             "%s: group or others can read this secret key (mode %03o): "
             "chmod 600 it",
             path, (unsigned)(st.st_mode & 0777));
    return INFS_ECONFIG;
  }
  return keys_load(path, pub, secret, err, errlen);
}

static int keypair(char pub[KEYS_Z85_LEN + 1], char secret[KEYS_Z85_LEN + 1],
                   char *err, size_t errlen) {
  int rc = curve_check(err, errlen);
  if (rc)
    return rc;
  if (zmq_curve_keypair(pub, secret)) {
    snprintf(err, errlen, "zmq_curve_keypair: %s", zmq_strerror(errno));
    return -errno;
  }
  return 0;
}

int curve_keygen(const char *path, char *err, size_t errlen) {
  char pub[KEYS_Z85_LEN + 1], secret[KEYS_Z85_LEN + 1], text[1024];
  char secret_path[PATH_MAX];
  int rc = keypair(pub, secret, err, errlen);
  if (rc)
    return rc;
  int n =
      snprintf(secret_path, sizeof secret_path, "%s" KEYS_SECRET_SUFFIX, path);
  if (n < 0 || (size_t)n >= sizeof secret_path) {
    snprintf(err, errlen, "%s: path too long", path);
    return -ENAMETOOLONG;
  }
  if (access(path, F_OK) == 0) {
    snprintf(err, errlen, "%s exists: not overwritten", path);
    return -EEXIST;
  }
  keys_format(text, sizeof text, pub, secret);
  if ((rc = write_new(secret_path, text, 0600))) {
    snprintf(err, errlen, "%s: %s%s", secret_path, strerror(-rc),
             rc == -EEXIST ? ": not overwritten" : "");
    return rc;
  }
  keys_format(text, sizeof text, pub, NULL);
  if ((rc = write_new(path, text, 0644))) {
    snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    unlink(secret_path);
    return rc;
  }
  return 0;
}

int curve_dir(const infs_auth_t *auth, char *buf, size_t len, char *err,
              size_t errlen) {
  if (auth && auth->dir) {
    int n = snprintf(buf, len, "%s", auth->dir);
    if (n >= 0 && (size_t)n < len)
      return 0;
  } else if (keys_default_dir(buf, len) == 0) {
    return 0;
  }
  snprintf(err, errlen,
           "no keys directory: HOME is not set (give --keys "
           "DIR)");
  return INFS_ECONFIG;
}

/* mkdir -p, each new level private to its user. */
static int make_dirs(const char *path) {
  char p[PATH_MAX];
  int n = snprintf(p, sizeof p, "%s", path);
  if (n < 0 || (size_t)n >= sizeof p)
    return -ENAMETOOLONG;
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s)
      continue;
    char c = *s;
    *s = '\0';
    if (mkdir(p, 0700) && errno != EEXIST)
      return -errno;
    *s = c;
    if (!c)
      return 0;
  }
}

/* path = dir/name, or an error in err. */
static int join(char *path, size_t len, const char *dir, const char *name,
                char *err, size_t errlen) {
  int n = snprintf(path, len, "%s/%s", dir, name);
  if (n >= 0 && (size_t)n < len)
    return 0;
  snprintf(err, errlen, "%s/%s: path too long", dir, name);
  return -ENAMETOOLONG;
}

/* Makes the pair dir[/sub]/name unless it is there, and writes its public
 * key to dir/admit/name too when admit (a KEYS_ALLOWED_*) is not NULL. */
static int ensure_pair(const char *dir, const char *sub, const char *name,
                       const char *admit, char *err, size_t errlen) {
  char at[PATH_MAX], path[PATH_MAX], secret_path[PATH_MAX];
  char pub[KEYS_Z85_LEN + 1], text[1024];
  int rc;
  int n = sub ? snprintf(at, sizeof at, "%s/%s", dir, sub)
              : snprintf(at, sizeof at, "%s", dir);
  if (n < 0 || (size_t)n >= sizeof at) {
    snprintf(err, errlen, "%s: path too long", dir);
    return -ENAMETOOLONG;
  }
  if ((rc = join(path, sizeof path, at, name, err, errlen)) ||
      (rc = join(secret_path, sizeof secret_path, at, name, err, errlen)))
    return rc;
  strncat(secret_path, KEYS_SECRET_SUFFIX,
          sizeof secret_path - strlen(secret_path) - 1);
  if ((rc = make_dirs(at))) {
    snprintf(err, errlen, "%s: %s", at, strerror(-rc));
    return rc;
  }
  /* The secret file decides: another process may have made it first. */
  rc = keys_load(secret_path, pub, NULL, err, errlen);
  /* A public file without its secret is a pair kept elsewhere (a remote
   * scheduler's key copied here, say; a pair is written secret first):
   * a new pair would replace it, and with it whom it names. */
  if (rc == -ENOENT && access(path, F_OK) == 0)
    return 0;
  if (rc == -ENOENT) {
    char secret[KEYS_Z85_LEN + 1];
    if ((rc = keypair(pub, secret, err, errlen)))
      return rc;
    keys_format(text, sizeof text, pub, secret);
    rc = write_new(secret_path, text, 0600);
    if (rc == -EEXIST)
      rc = keys_load(secret_path, pub, NULL, err, errlen);
    else if (rc)
      snprintf(err, errlen, "%s: %s", secret_path, strerror(-rc));
  }
  if (rc || (rc = write_public(path, pub, err, errlen)) || !admit)
    return rc;
  char apath[PATH_MAX], adir[PATH_MAX];
  if ((rc = join(adir, sizeof adir, dir, admit, err, errlen)) ||
      (rc = join(apath, sizeof apath, adir, name, err, errlen)))
    return rc;
  if ((rc = make_dirs(adir))) {
    snprintf(err, errlen, "%s: %s", adir, strerror(-rc));
    return rc;
  }
  return write_public(apath, pub, err, errlen);
}

int curve_local_keys(const char *dir, char *err, size_t errlen) {
  int rc = ensure_pair(dir, NULL, KEYS_SCHEDULER, NULL, err, errlen);
  if (!rc)
    rc = ensure_pair(dir, NULL, KEYS_WORKER, KEYS_ALLOWED_WORKERS, err,
                     errlen);
  if (!rc)
    rc = ensure_pair(dir, NULL, KEYS_CLIENT, KEYS_ALLOWED_CLIENTS, err,
                     errlen);
  return rc;
}

int curve_instance_key(const char *dir, const char *name, char *secret_path,
                       size_t len, char *err, size_t errlen) {
  char file[PATH_MAX];
  snprintf(file, sizeof file, "%s.key", name);
  int rc =
      ensure_pair(dir, KEYS_INSTANCES, file, KEYS_ALLOWED_WORKERS, err, errlen);
  if (rc)
    return rc;
  int n = snprintf(secret_path, len,
                   "%s/" KEYS_INSTANCES "/%s" KEYS_SECRET_SUFFIX, dir, file);
  if (n < 0 || (size_t)n >= len) {
    snprintf(err, errlen, "%s: path too long", dir);
    return -ENAMETOOLONG;
  }
  return 0;
}

int curve_client(void *sock, const infs_auth_t *auth, const char *role,
                 char *err, size_t errlen) {
  if (auth && auth->off)
    return 0;
  char dir[PATH_MAX], server[PATH_MAX], own[PATH_MAX], why[PATH_MAX + 128];
  char server_pub[KEYS_Z85_LEN + 1], pub[KEYS_Z85_LEN + 1],
      secret[KEYS_Z85_LEN + 1];
  int rc = curve_check(err, errlen);
  if (rc)
    return rc;
  /* Local keys are made here when missing too, so that a worker started
   * a moment before its scheduler, on a host that never had them, finds
   * the same keys as the scheduler. */
  if ((!auth || !auth->server_key || !auth->key) &&
      ((rc = curve_dir(auth, dir, sizeof dir, err, errlen)) ||
       (rc = curve_local_keys(dir, err, errlen))))
    return rc;
  if (auth && auth->server_key)
    snprintf(server, sizeof server, "%s", auth->server_key);
  else if ((rc = join(server, sizeof server, dir, KEYS_SCHEDULER, err, errlen)))
    return rc;
  if (auth && auth->key)
    snprintf(own, sizeof own, "%s", auth->key);
  else if ((rc = join(own, sizeof own, dir, role, err, errlen)))
    return rc;
  else
    strncat(own, KEYS_SECRET_SUFFIX, sizeof own - strlen(own) - 1);
  bool named = auth && auth->key;
  rc = load_secret(own, pub, secret, why, sizeof why);
  if (!rc) {
    named = auth && auth->server_key;
    rc = keys_load(server, server_pub, NULL, why, sizeof why);
  }
  if (rc) {
    snprintf(err, errlen, "%s", why);
    /* A file named on the command line is a usage error (lib/cli.h). */
    return named ? INFS_ECONFIG : rc;
  }
  if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_pub, KEYS_Z85_LEN + 1) ||
      zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, KEYS_Z85_LEN + 1) ||
      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, KEYS_Z85_LEN + 1)) {
    snprintf(err, errlen, "CURVE keys: %s", zmq_strerror(errno));
    return INFS_ECONFIG;
  }
  return 0;
}

int curve_server(void *sock, const char *path, char *err, size_t errlen) {
  char pub[KEYS_Z85_LEN + 1], secret[KEYS_Z85_LEN + 1];
  int one = 1;
  if (load_secret(path, pub, secret, err, errlen))
    return INFS_ECONFIG;
  if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, KEYS_Z85_LEN + 1)) {
    snprintf(err, errlen, "CURVE server: %s", zmq_strerror(errno));
    return INFS_ECONFIG;
  }
  return 0;
}

const char *curve_handshake_failure(uint16_t event) {
  switch (event) {
  case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
    return "the scheduler did not admit this key on this port (not in its "
           "allowed/workers/ or allowed/clients/)";
  case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
  case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    return "the handshake failed: a wrong --server-key, or one side runs "
           "with --auth off and the other without";
  default:
    return NULL;
  }
}

struct curve_watch {
  void *sock;    /* the one watched, borrowed */
  void *monitor; /* PAIR receiving its events */
  zwatch_t *watch;
  curve_failed_cb failed;
  void *arg;
  log_limit_t log;
};

static void on_event(void *zsock, void *arg) {
  curve_watch_t *w = arg;
  uint16_t event;
  char endpoint[256];
  while (zwatch_monitor_event(zsock, &event, endpoint, sizeof endpoint) == 0) {
    const char *why = curve_handshake_failure(event);
    if (why && w->failed) {
      w->failed(w->arg, why);
      continue;
    }
    uint64_t n = why ? log_limit_pass(&w->log, clock_us(), INFS_US_PER_S) : 0;
    if (n)
      log_warn("%s: %s (%llu failed handshakes in this second)", endpoint, why,
               (unsigned long long)n);
  }
}

int curve_watch_start(uv_loop_t *loop, void *zctx, void *sock,
                      curve_failed_cb failed, void *arg,
                      curve_watch_t **out) {
  char addr[64];
  int rc, zero = 0;
  curve_watch_t *w = calloc(1, sizeof *w);
  if (!w)
    return -ENOMEM;
  w->sock = sock;
  w->failed = failed;
  w->arg = arg;
  snprintf(addr, sizeof addr, "inproc://infsched-handshakes-%p", (void *)w);
  if (zmq_socket_monitor(sock, addr, CURVE_HANDSHAKE_FAILURES) ||
      !(w->monitor = zmq_socket(zctx, ZMQ_PAIR)) ||
      zmq_setsockopt(w->monitor, ZMQ_LINGER, &zero, sizeof zero) ||
      zmq_connect(w->monitor, addr)) {
    rc = -errno;
    goto fail;
  }
  if ((rc = zwatch_start(loop, w->monitor, on_event, w, &w->watch)))
    goto fail;
  *out = w;
  return 0;
fail:
  zmq_socket_monitor(sock, NULL, 0);
  if (w->monitor)
    zmq_close(w->monitor);
  free(w);
  return rc;
}

void curve_watch_close(curve_watch_t **pw) {
  curve_watch_t *w = *pw;
  if (!w)
    return;
  zwatch_close(w->watch);
  zmq_socket_monitor(w->sock, NULL, 0);
  zmq_close(w->monitor);
  free(w);
  *pw = NULL;
}
