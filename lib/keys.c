#include "keys.h"

#include "infsched/errors.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

int keys_default_dir(char *buf, size_t len) {
  const char *state = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  int n;
  /* XDG: a relative XDG_STATE_HOME is invalid and ignored. */
  if (state && state[0] == '/')
    n = snprintf(buf, len, "%s/infsched/keys", state);
  else if (home && home[0])
    n = snprintf(buf, len, "%s/.local/state/infsched/keys", home);
  else
    return -1;
  return n < 0 || (size_t)n >= len ? -1 : 0;
}

bool keys_valid(const char *text) {
  size_t n = strlen(text);
  return n == KEYS_Z85_LEN && strspn(text, z85_chars) == n;
}

/* The value of `name = "VALUE"` (quotes optional) when line is that
 * setting: 1 with it in out, 0 when line is another, -1 when malformed. */
static int setting(const char *line, const char *name,
                   char out[KEYS_Z85_LEN + 1]) {
  size_t n = strlen(name);
  line += strspn(line, " \t");
  if (strncmp(line, name, n) != 0 ||
      (line[n] != ' ' && line[n] != '\t' && line[n] != '='))
    return 0;
  line += n;
  line += strspn(line, " \t");
  if (*line++ != '=')
    return -1;
  line += strspn(line, " \t");
  bool quoted = *line == '"';
  line += quoted;
  size_t len = strcspn(line, quoted ? "\"\r\n" : " \t\r\n");
  if (len != KEYS_Z85_LEN || (quoted && line[len] != '"'))
    return -1;
  memcpy(out, line, len);
  out[len] = '\0';
  return keys_valid(out) ? 1 : -1;
}

int keys_parse(const char *text, char pub[KEYS_Z85_LEN + 1],
               char secret[KEYS_Z85_LEN + 1], char *err, size_t errlen) {
  static const char *const names[2] = {"public-key", "secret-key"};
  char *outs[2] = {pub, secret};
  bool seen[2] = {false, false};
  int line_no = 0;
  for (const char *line = text; *line;) {
    line_no++;
    size_t len = strcspn(line, "\n");
    char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 255 ? len : 255), line);
    for (int i = 0; i < 2; i++) {
      char value[KEYS_Z85_LEN + 1];
      int rc = setting(buf, names[i], value);
      if (rc < 0 || (rc > 0 && seen[i])) {
        snprintf(err, errlen,
                 rc < 0 ? "line %d: %s is not a key (40 characters of Z85)"
                        : "line %d: a second %s",
                 line_no, names[i]);
        return -1;
      }
      if (rc > 0) {
        seen[i] = true;
        if (outs[i])
          memcpy(outs[i], value, sizeof value);
      }
    }
    line += len + (line[len] == '\n');
  }
  if (!seen[0] || (secret && !seen[1])) {
    snprintf(err, errlen, "no %s (not a key file%s)",
             !seen[0] ? "public-key" : "secret-key",
             !seen[0] ? "" : ", or the public half only");
    return -1;
  }
  return 0;
}

/* Key files are small; anything past this is not one. */
#define KEY_FILE_MAX 4096

int keys_load(const char *path, char pub[KEYS_Z85_LEN + 1],
              char secret[KEYS_Z85_LEN + 1], char *err, size_t errlen) {
  char text[KEY_FILE_MAX + 1], why[128];
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  size_t n = fread(text, 1, sizeof text - 1, f);
  bool big = n == sizeof text - 1 && fgetc(f) != EOF;
  fclose(f);
  text[n] = '\0';
  if (big || memchr(text, '\0', n)) {
    snprintf(err, errlen, "%s: not a key file", path);
    return INFS_ECONFIG;
  }
  if (keys_parse(text, pub, secret, why, sizeof why)) {
    snprintf(err, errlen, "%s: %s", path, why);
    return INFS_ECONFIG;
  }
  return 0;
}

int keys_format(char *buf, size_t len, const char *pub, const char *secret) {
  return snprintf(buf, len,
                  "#   ZeroMQ CURVE %s Certificate (infsched-keygen)\n"
                  "#   %s\n\n"
                  "metadata\n"
                  "curve\n"
                  "    public-key = \"%s\"\n"
                  "%s%s%s",
                  secret ? "**Secret**" : "Public",
                  secret ? "DO NOT PROVIDE THIS FILE TO OTHER USERS nor "
                           "change its permissions."
                         : "Give it to the scheduler that is to admit this "
                           "key (its allowed/workers/ or allowed/clients/).",
                  pub, secret ? "    secret-key = \"" : "",
                  secret ? secret : "", secret ? "\"\n" : "");
}

struct keyring {
  char (*keys)[KEYS_Z85_LEN + 1];
  size_t n, cap;
};

keyring_t *keyring_new(void) {
  return xcalloc(1, sizeof(keyring_t));
}

void keyring_destroy(keyring_t **pk) {
  if (*pk) {
    free((*pk)->keys);
    free(*pk);
    *pk = NULL;
  }
}

size_t keyring_count(const keyring_t *k) {
  return k->n;
}

int keyring_add(keyring_t *k, const char *z85) {
  if (!keys_valid(z85))
    return -1;
  if (keyring_allows(k, z85))
    return 0;
  if (k->n == k->cap) {
    k->cap = k->cap ? 2 * k->cap : 16;
    k->keys = xreallocarray(k->keys, k->cap, sizeof *k->keys);
  }
  memcpy(k->keys[k->n++], z85, KEYS_Z85_LEN + 1);
  return 0;
}

/* A handshake is rare next to messages, and a pool has few keys. */
bool keyring_allows(const keyring_t *k, const char *z85) {
  for (size_t i = 0; i < k->n; i++)
    if (strcmp(k->keys[i], z85) == 0)
      return true;
  return false;
}

static bool secret_name(const char *name) {
  size_t n = strlen(name), s = strlen(KEYS_SECRET_SUFFIX);
  return n >= s && strcmp(name + n - s, KEYS_SECRET_SUFFIX) == 0;
}

/* Whether only this user (or root) can change what st describes: what
 * another user can write into the admitted keys, that user can admit
 * (OpenSSH's StrictModes holds authorized_keys to the same). */
static int private_to_user(const char *path, const struct stat *st, char *err,
                           size_t errlen) {
  if ((st->st_mode & (S_IWGRP | S_IWOTH)) == 0 &&
      (st->st_uid == geteuid() || st->st_uid == 0))
    return 0;
  snprintf(err, errlen,
           "%s: other users can write it (mode %03o, owner %ld), and so "
           "admit a key of theirs: chmod go-w it, owned by this user",
           path, (unsigned)(st->st_mode & 0777), (long)st->st_uid);
  return -1;
}

int keyring_load(const char *dir, keyring_t **out, char *err, size_t errlen) {
  *out = NULL;
  DIR *d = opendir(dir);
  if (!d && errno == ENOENT) {
    *out = keyring_new();
    return 0;
  }
  if (!d) {
    snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    return -1;
  }
  keyring_t *k = keyring_new();
  struct dirent *e;
  struct stat st;
  int rc = fstat(dirfd(d), &st);
  if (rc)
    snprintf(err, errlen, "%s: %s", dir, strerror(errno));
  else
    rc = private_to_user(dir, &st, err, errlen);
  /* Who can write its parent (allowed/) can put another in its place,
   * unless the parent is sticky (/tmp). */
  char parent[4096];
  const char *slash = strrchr(dir, '/');
  if (!rc && slash && slash > dir) {
    snprintf(parent, sizeof parent, "%.*s", (int)(slash - dir), dir);
    if (stat(parent, &st) == 0 && !(st.st_mode & S_ISVTX))
      rc = private_to_user(parent, &st, err, errlen);
  }
  while (rc == 0 && (e = readdir(d))) {
    if (e->d_name[0] == '.' || secret_name(e->d_name))
      continue;
    char path[4096], pub[KEYS_Z85_LEN + 1];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st)) {
      snprintf(err, errlen, "%s: %s", path, strerror(errno));
      rc = -1;
      break;
    }
    if (S_ISDIR(st.st_mode))
      continue;
    if ((rc = private_to_user(path, &st, err, errlen)))
      break;
    rc = keys_load(path, pub, NULL, err, errlen);
    if (rc == 0)
      keyring_add(k, pub);
  }
  closedir(d);
  if (rc) {
    keyring_destroy(&k);
    return -1;
  }
  *out = k;
  return 0;
}
