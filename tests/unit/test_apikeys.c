/* The API keys file (scheduler/http/apikeys): what it maps each key to,
 * and each bad file refused with its line and why. */
#include "apikeys.h"

#include "infsched/errors.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define KEY_A "sk-acme-0123456789abcdef"
#define KEY_A2 "sk-acme-fedcba9876543210"
#define KEY_B "sk-batchco-0123456789ab"

static int load_text(const char *text, apikeys_t **k, char *err,
                     size_t errlen) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/infsched-apikeys-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t n = strlen(text);
  assert_int_equal(write(fd, text, n), (ssize_t)n);
  close(fd);
  int rc = apikeys_load(path, k, err, errlen);
  unlink(path);
  return rc;
}

static int lookup(const apikeys_t *k, const char *key, infs_class_t *cls) {
  return apikeys_lookup(k, key, strlen(key), cls);
}

static void test_keys_map_to_tenants_and_classes(void **state) {
  (void)state;
  char err[256];
  apikeys_t *k = NULL;
  assert_int_equal(load_text("# tenants' keys\n"
                             "keys:\n"
                             "  - key: " KEY_A "\n"
                             "    tenant: acme\n"
                             "    class: interactive\n"
                             "  - {key: " KEY_B ", tenant: batchco, "
                             "class: batch}\n"
                             "  - key: " KEY_A2 "\n"
                             "    tenant: acme\n",
                             &k, err, sizeof err),
                   0);
  assert_int_equal(apikeys_tenants(k), 2);
  assert_string_equal(apikeys_tenant_name(k, 0), "acme");
  assert_string_equal(apikeys_tenant_name(k, 1), "batchco");
  assert_null(apikeys_tenant_name(k, 2));

  infs_class_t cls = INFS_CLASS_COUNT;
  assert_int_equal(lookup(k, KEY_A, &cls), 0);
  assert_int_equal(cls, INFS_CLASS_INTERACTIVE);
  assert_int_equal(lookup(k, KEY_B, &cls), 1);
  assert_int_equal(cls, INFS_CLASS_BATCH);
  /* A key without a class gives the front door's default, agent. */
  assert_int_equal(lookup(k, KEY_A2, &cls), 0);
  assert_int_equal(cls, INFS_CLASS_AGENT);

  /* Near misses: a prefix, one more byte, one byte changed, nothing. */
  cls = INFS_CLASS_COUNT;
  assert_int_equal(apikeys_lookup(k, KEY_A, strlen(KEY_A) - 1, &cls), -1);
  assert_int_equal(lookup(k, KEY_A "x", &cls), -1);
  assert_int_equal(lookup(k, "sk-acme-0123456789abcdeF", &cls), -1);
  assert_int_equal(apikeys_lookup(k, "", 0, &cls), -1);
  assert_int_equal(cls, INFS_CLASS_COUNT); /* untouched on a miss */
  char huge[APIKEYS_KEY_MAX + 2];
  memset(huge, 'k', sizeof huge);
  assert_int_equal(apikeys_lookup(k, huge, sizeof huge, &cls), -1);
  apikeys_destroy(&k);
  apikeys_destroy(&k); /* idempotent */
  assert_null(k);
}

typedef struct bad_case {
  const char *text;
  const char *why; /* in the message, after "PATH:LINE: " */
  int line;
} bad_case_t;

static void test_bad_files_are_refused_clearly(void **state) {
  (void)state;
  static const bad_case_t cases[] = {
      {"keys:\n  - key: " KEY_A "\n    tenant: a\n  - key: " KEY_A
       "\n    tenant: b\n",
       "the same key as on line 2", 4},
      {"keys:\n  - key: short\n    tenant: a\n", "a key is 16 to 256", 2},
      {"keys:\n  - key: \""
       "sk with spaces 0123456"
       "\"\n    tenant: a\n",
       "without spaces", 2},
      {"keys:\n  - key: " KEY_A "\n", "keys[0]: no 'tenant'", 2},
      {"keys:\n  - tenant: a\n", "keys[0]: no 'key'", 2},
      {"keys:\n  - key: " KEY_A "\n    tenant: a\n    class: urgent\n",
       "'urgent' is not interactive, agent or batch", 2},
      {"keys:\n  - key: " KEY_A "\n    tenant: \"a b\"\n",
       "keys[0].tenant: 'a b' is not a name", 2},
      {"keys:\n  - key: " KEY_A "\n    tenant: a\n    owner: b\n",
       "unknown field 'owner'", 4},
      {"keys:\n  - key: [" KEY_A "]\n    tenant: a\n",
       "keys[0].key: expected a string, got a list", 2},
      {"keys: []\n", "0 keys", 1},
      {"keys: {a: b}\n", "keys: expected a list, got a mapping", 1},
      {"- " KEY_A "\n", "expected a mapping with one field, keys", 1},
      {"keys:\n  - key: " KEY_A "\n    tenant: a\nextra: 1\n",
       "expected a mapping with one field, keys", 1},
      {"", "expected a mapping with one field, keys", 1},
      {"keys: [\n", "not valid YAML", 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[512], want[32];
    apikeys_t *k = (apikeys_t *)&err; /* must come back NULL */
    int rc = load_text(cases[i].text, &k, err, sizeof err);
    if (rc != INFS_ECONFIG || !strstr(err, cases[i].why))
      fail_msg("case %zu: rc %d, message '%s', wanted '%s'", i, rc, err,
               cases[i].why);
    snprintf(want, sizeof want, ":%d: ", cases[i].line);
    if (!strstr(err, want))
      fail_msg("case %zu: '%s' does not name line %d", i, err, cases[i].line);
    assert_null(k);
  }
  char err[256];
  apikeys_t *k = NULL;
  assert_int_equal(apikeys_load("/nonexistent/keys.yaml", &k, err, sizeof err),
                   -ENOENT);
  assert_non_null(strstr(err, "/nonexistent/keys.yaml: "));
  assert_null(k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_map_to_tenants_and_classes),
      cmocka_unit_test(test_bad_files_are_refused_clearly),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
