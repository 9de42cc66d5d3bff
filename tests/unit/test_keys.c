/* Key files and keyrings (lib/keys.c, pure), and the pairs lib/curve.c
 * makes with libzmq: what infsched-keygen writes, zmq_curve_public
 * agrees with, and the local keys directory. */
#include "infsched/errors.h"
#include "curve.h"
#include "keys.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#define PUB "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define SEC "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"

static void test_parse(void **state) {
  (void)state;
  static const struct {
    const char *text;
    bool want_secret;
    bool ok;
    const char *why; /* in the error */
  } rows[] = {
      {"metadata\ncurve\n    public-key = \"" PUB "\"\n", false, true, NULL},
      {"curve\n    public-key = \"" PUB "\"\n    secret-key = \"" SEC "\"\n",
       true, true, NULL},
      {"# a comment\ncurve\n  public-key=" PUB "\n", false, true, NULL},
      {"curve\n    public-key = \"" PUB "\"\n", true, false, "secret-key"},
      {"curve\n    secret-key = \"" SEC "\"\n", false, false, "public-key"},
      {"curve\n    public-key = \"" PUB "x\"\n", false, false, "not a key"},
      {"curve\n    public-key = \"short\"\n", false, false, "not a key"},
      {"curve\n    public-key = "
       "\"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{h\\\"\"\n",
       false, false, "not a key"},
      {"public-key = \"" PUB "\"\npublic-key = \"" PUB "\"\n", false, false,
       "second"},
      {"", false, false, "public-key"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    char pub[KEYS_Z85_LEN + 1] = "", sec[KEYS_Z85_LEN + 1] = "", err[256] = "";
    int rc = keys_parse(rows[i].text, pub, rows[i].want_secret ? sec : NULL,
                        err, sizeof err);
    if (rows[i].ok) {
      assert_int_equal(rc, 0);
      assert_string_equal(pub, PUB);
      if (rows[i].want_secret)
        assert_string_equal(sec, SEC);
    } else {
      assert_int_not_equal(rc, 0);
      if (!strstr(err, rows[i].why))
        fail_msg("row %zu: '%s' does not say '%s'", i, err, rows[i].why);
    }
  }
  /* What keys_format writes, keys_parse reads back. */
  char text[1024], pub[KEYS_Z85_LEN + 1], sec[KEYS_Z85_LEN + 1], err[256];
  keys_format(text, sizeof text, PUB, SEC);
  assert_int_equal(keys_parse(text, pub, sec, err, sizeof err), 0);
  assert_string_equal(sec, SEC);
  keys_format(text, sizeof text, PUB, NULL);
  assert_int_not_equal(keys_parse(text, pub, sec, err, sizeof err), 0);
  assert_int_equal(keys_parse(text, pub, NULL, err, sizeof err), 0);
  assert_string_equal(pub, PUB);
}

static void test_keyring(void **state) {
  (void)state;
  keyring_t *k = keyring_new();
  assert_false(keyring_allows(k, PUB));
  assert_int_equal(keyring_add(k, PUB), 0);
  assert_int_equal(keyring_add(k, PUB), 0); /* once */
  assert_int_not_equal(keyring_add(k, "short"), 0);
  assert_int_equal(keyring_count(k), 1);
  assert_true(keyring_allows(k, PUB));
  assert_false(keyring_allows(k, SEC));
  assert_false(keyring_allows(k, ""));
  keyring_destroy(&k);
  assert_null(k);
}

static char *tmpdir(void) {
  char tmpl[] = "/tmp/infsched-keys-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  return strdup(tmpl);
}

static void rm(const char *dir, const char *const *names) {
  char path[512];
  for (; *names; names++) {
    snprintf(path, sizeof path, "%s/%s", dir, *names);
    unlink(path);
    rmdir(path);
  }
  rmdir(dir);
}

/* infsched-keygen's pair: the secret file private, both files naming the
 * same public key, which libzmq derives from the secret one; never
 * overwritten. */
static void test_keygen(void **state) {
  (void)state;
  char *dir = tmpdir(), path[512], secret_path[520], err[512];
  snprintf(path, sizeof path, "%s/w.key", dir);
  snprintf(secret_path, sizeof secret_path, "%s_secret", path);
  assert_int_equal(curve_keygen(path, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(secret_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char pub[KEYS_Z85_LEN + 1], pub2[KEYS_Z85_LEN + 1], sec[KEYS_Z85_LEN + 1],
      derived[KEYS_Z85_LEN + 1];
  assert_int_equal(keys_load(path, pub, NULL, err, sizeof err), 0);
  assert_int_not_equal(keys_load(path, pub2, sec, err, sizeof err), 0);
  assert_int_equal(keys_load(secret_path, pub2, sec, err, sizeof err), 0);
  assert_string_equal(pub, pub2);
  assert_int_equal(zmq_curve_public(derived, sec), 0);
  assert_string_equal(derived, pub);
  uint8_t raw[32];
  assert_non_null(zmq_z85_decode(raw, pub));

  assert_int_equal(curve_keygen(path, err, sizeof err), -EEXIST);
  assert_non_null(strstr(err, "not overwritten"));
  assert_int_equal(keys_load(path, pub2, NULL, err, sizeof err), 0);
  assert_string_equal(pub2, pub);

  /* A keyring of the directory reads the public file, skips the secret. */
  keyring_t *k;
  assert_int_equal(keyring_load(dir, &k, err, sizeof err), 0);
  assert_int_equal(keyring_count(k), 1);
  assert_true(keyring_allows(k, pub));
  keyring_destroy(&k);
  char junk[520];
  snprintf(junk, sizeof junk, "%s/junk", dir);
  FILE *f = fopen(junk, "w");
  assert_non_null(f);
  fputs("not a key\n", f);
  fclose(f);
  assert_int_not_equal(keyring_load(dir, &k, err, sizeof err), 0);
  assert_non_null(strstr(err, "junk"));
  assert_int_equal(keys_load("/nonexistent/k", pub, NULL, err, sizeof err),
                   -ENOENT);
  static const char *const names[] = {"w.key", "w.key_secret", "junk", NULL};
  rm(dir, names);
  free(dir);
}

/* The local keys: made once, the same on a second call, the worker's
 * admitted on the worker port and the client's on the client port; an
 * instance's pair admitted beside the worker's. */
static void test_local_keys(void **state) {
  (void)state;
  char *dir = tmpdir(), keys[512], err[512], path[600];
  snprintf(keys, sizeof keys, "%s/a/keys", dir);
  assert_int_equal(curve_local_keys(keys, err, sizeof err), 0);
  char first[KEYS_Z85_LEN + 1], again[KEYS_Z85_LEN + 1];
  snprintf(path, sizeof path, "%s/scheduler.key_secret", keys);
  assert_int_equal(keys_load(path, first, NULL, err, sizeof err), 0);
  assert_int_equal(curve_local_keys(keys, err, sizeof err), 0);
  assert_int_equal(keys_load(path, again, NULL, err, sizeof err), 0);
  assert_string_equal(first, again);

  char secret[600];
  assert_int_equal(
      curve_instance_key(keys, "gpu-0", secret, sizeof secret, err, sizeof err),
      0);
  /* Each port admits its own: the worker pairs, the client pair. */
  keyring_t *workers, *clients;
  snprintf(path, sizeof path, "%s/" KEYS_ALLOWED_WORKERS, keys);
  assert_int_equal(keyring_load(path, &workers, err, sizeof err), 0);
  snprintf(path, sizeof path, "%s/" KEYS_ALLOWED_CLIENTS, keys);
  assert_int_equal(keyring_load(path, &clients, err, sizeof err), 0);
  assert_int_equal(keyring_count(workers), 2);
  assert_int_equal(keyring_count(clients), 1);
  char pub[KEYS_Z85_LEN + 1];
  snprintf(path, sizeof path, "%s/worker.key_secret", keys);
  assert_int_equal(keys_load(path, pub, NULL, err, sizeof err), 0);
  assert_true(keyring_allows(workers, pub));
  assert_false(keyring_allows(clients, pub));
  assert_int_equal(keys_load(secret, pub, NULL, err, sizeof err), 0);
  assert_true(keyring_allows(workers, pub));
  snprintf(path, sizeof path, "%s/client.key_secret", keys);
  assert_int_equal(keys_load(path, pub, NULL, err, sizeof err), 0);
  assert_true(keyring_allows(clients, pub));
  assert_false(keyring_allows(workers, pub));
  /* The scheduler's own is admitted on neither. */
  assert_false(keyring_allows(workers, first));
  assert_false(keyring_allows(clients, first));
  keyring_destroy(&workers);
  keyring_destroy(&clients);
  /* A directory that is not there admits nothing; subdirectories are
   * not keys. */
  snprintf(path, sizeof path, "%s/nowhere", keys);
  assert_int_equal(keyring_load(path, &workers, err, sizeof err), 0);
  assert_int_equal(keyring_count(workers), 0);
  keyring_destroy(&workers);
  snprintf(path, sizeof path, "%s/allowed", keys);
  assert_int_equal(keyring_load(path, &workers, err, sizeof err), 0);
  assert_int_equal(keyring_count(workers), 0);
  keyring_destroy(&workers);

  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  free(dir);
}

/* A scheduler's public key put in the keys directory without its secret
 * (a remote scheduler's, as docs/security.md has it copied) is kept: the
 * local keys made around it name no other scheduler. */
static void test_local_keys_keep_a_public_key(void **state) {
  (void)state;
  char *dir = tmpdir(), path[600], err[512];
  char theirs[KEYS_Z85_LEN + 1], now[KEYS_Z85_LEN + 1];
  snprintf(path, sizeof path, "%s/scheduler.key", dir);
  assert_int_equal(curve_keygen(path, err, sizeof err), 0);
  assert_int_equal(keys_load(path, theirs, NULL, err, sizeof err), 0);
  char secret[620];
  snprintf(secret, sizeof secret, "%s_secret", path);
  assert_int_equal(unlink(secret), 0);

  assert_int_equal(curve_local_keys(dir, err, sizeof err), 0);
  assert_int_equal(keys_load(path, now, NULL, err, sizeof err), 0);
  assert_string_equal(now, theirs);
  assert_int_equal(access(secret, F_OK), -1);
  /* The worker's and the client's pairs are made all the same. */
  snprintf(path, sizeof path, "%s/allowed/clients/client.key", dir);
  assert_int_equal(keys_load(path, now, NULL, err, sizeof err), 0);

  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  free(dir);
}

/* Who may change the admitted keys, or read a secret, is checked before
 * either is used: a directory or key file that group or others can write
 * is refused, as is a secret file they can read. */
static void test_modes(void **state) {
  (void)state;
  char *dir = tmpdir(), path[600], err[700];
  snprintf(path, sizeof path, "%s/w.key", dir);
  assert_int_equal(curve_keygen(path, err, sizeof err), 0);
  keyring_t *k;
  assert_int_equal(keyring_load(dir, &k, err, sizeof err), 0);
  keyring_destroy(&k);

  assert_int_equal(chmod(dir, 0770), 0);
  assert_int_not_equal(keyring_load(dir, &k, err, sizeof err), 0);
  assert_null(k);
  assert_non_null(strstr(err, "other users can write it (mode 770"));
  assert_int_equal(chmod(dir, 0700), 0);
  assert_int_equal(chmod(path, 0646), 0);
  assert_int_not_equal(keyring_load(dir, &k, err, sizeof err), 0);
  assert_non_null(strstr(err, "w.key: other users can write it"));
  assert_int_equal(chmod(path, 0644), 0);
  /* Nor may others replace the directory: its parent is checked too,
   * unless sticky. */
  char sub[620];
  snprintf(sub, sizeof sub, "%s/s", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  assert_int_not_equal(keyring_load(sub, &k, err, sizeof err), 0);
  assert_non_null(strstr(err, "other users can write it (mode 777"));
  assert_int_equal(chmod(dir, 01777), 0);
  assert_int_equal(keyring_load(sub, &k, err, sizeof err), 0);
  keyring_destroy(&k);
  assert_int_equal(chmod(dir, 0700), 0);

  char secret[620];
  snprintf(secret, sizeof secret, "%s_secret", path);
  void *ctx = zmq_ctx_new();
  void *sock = zmq_socket(ctx, ZMQ_ROUTER);
  assert_int_equal(curve_server(sock, secret, err, sizeof err), 0);
  assert_int_equal(chmod(secret, 0640), 0);
  assert_int_equal(curve_server(sock, secret, err, sizeof err), INFS_ECONFIG);
  assert_non_null(strstr(err, "chmod 600"));
  infs_auth_t auth = {.key = secret, .server_key = path};
  assert_int_equal(curve_client(sock, &auth, KEYS_CLIENT, err, sizeof err),
                   INFS_ECONFIG);
  assert_non_null(strstr(err, "can read this secret key (mode 640)"));
  zmq_close(sock);
  zmq_ctx_term(ctx);

  static const char *const names[] = {"w.key", "w.key_secret", "s", NULL};
  rm(dir, names);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_keyring),
      cmocka_unit_test(test_keygen),
      cmocka_unit_test(test_local_keys),
      cmocka_unit_test(test_local_keys_keep_a_public_key),
      cmocka_unit_test(test_modes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
