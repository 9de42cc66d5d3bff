/* The settings table (lib/settings.c): its defaults are the daemons'
 * defaults and its values parse as documented. (docs/cluster.md shows the
 * table as "infsched-cluster settings" prints it: the docs_options test.) */
#include "settings_core.h"
#include "policy.h"

#include "infsched/errors.h"
#include "wire.h"
#include "frontdoor.h"
#include "cost.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static setting_value_t parsed(setting_id_t id, const char *text) {
  setting_value_t v;
  char err[256];
  if (settings_parse(settings_get(id), text, &v, err, sizeof err))
    fail_msg("%s '%s': %s", settings_get(id)->name, text, err);
  return v;
}

static void test_table_is_whole(void **state) {
  (void)state;
  for (setting_id_t id = 0; id < SET_COUNT; id++) {
    const setting_t *s = settings_get(id);
    assert_non_null(s);
    assert_int_equal(s->id, id);
    assert_ptr_equal(settings_find(s->name), s);
    /* The flag is the key with '-' for '_'. */
    char flag[64];
    snprintf(flag, sizeof flag, "%s", s->name);
    for (char *c = flag; *c; c++)
      if (*c == '_')
        *c = '-';
    assert_string_equal(s->flag, flag);
    assert_true(s->who != 0);
    assert_true((s->cluster & ~s->who) == 0);
    assert_true(s->min <= s->max);
    assert_non_null(s->help);
    if (s->def)
      parsed(id, s->def);
  }
  assert_null(settings_get(SET_COUNT));
  assert_null(settings_find("heartbeat-ms"));
}

/* The daemons take their defaults from the table; the constants the rest of
 * the tree uses must agree with it. */
static void test_defaults_agree(void **state) {
  (void)state;
  core_config_t want, got;
  core_config_defaults(&want);
  memset(&got, 0, sizeof got);
  for (setting_id_t id = 0; id < SET_COUNT; id++) {
    const setting_t *s = settings_get(id);
    if (s->def) {
      setting_value_t v = parsed(id, s->def);
      settings_apply_core(&got, s, &v);
    }
  }
  assert_string_equal(got.policy, want.policy);
  got.policy = want.policy;
  /* Not settings: a limit kept out of the flags, and a debugging switch
   * the scheduler derives from --log-level. A field added to core_config_t
   * fails here until it is one or the other. */
  got.max_open_bytes = want.max_open_bytes;
  got.explain = want.explain;
  assert_memory_equal(&got, &want, sizeof got);

  assert_int_equal(
      parsed(SET_MAX_MSG_BYTES, settings_get(SET_MAX_MSG_BYTES)->def).u,
      WIRE_DEFAULT_MAX_MSG);
  assert_int_equal(
      parsed(SET_HTTP_MAX_BODY, settings_get(SET_HTTP_MAX_BODY)->def).u,
      FRONTDOOR_DEFAULT_MAX_BODY);
  assert_string_equal(settings_get(SET_HTTP)->def, FRONTDOOR_DEFAULT_ADDR);
  assert_true(parsed(SET_KWH_PRICE, settings_get(SET_KWH_PRICE)->def).d ==
              COST_DEFAULT_KWH_USD);
}

/* --policy is checked against lib/policy_names.h without the core; the
 * core's registry, built from the same list, must find every name it
 * accepts, and the names a refusal lists must be the core's. */
static void test_policy_names(void **state) {
  (void)state;
  char want[512], err[512];
  setting_value_t v;
  int n = snprintf(want, sizeof want, "unknown policy 'fastest' (");
  for (const policy_ops_t *const *p = policy_all(); *p; p++) {
    assert_ptr_equal(policy_find(parsed(SET_POLICY, (*p)->name).s), *p);
    n += snprintf(want + n, sizeof want - (size_t)n, "%s%s", (*p)->name,
                  p[1] ? ", " : ")");
  }
  assert_int_equal(settings_parse(settings_get(SET_POLICY), "fastest", &v, err,
                                  sizeof err),
                   INFS_ECONFIG);
  assert_string_equal(err, want);
}

typedef struct parse_case {
  setting_id_t id;
  const char *text;
  const char *err; /* NULL: accepted */
} parse_case_t;

static const parse_case_t k_cases[] = {
    {SET_HEARTBEAT_MS, "10", NULL},
    {SET_HEARTBEAT_MS, "60000", NULL},
    {SET_HEARTBEAT_MS, "600000", "600000 is out of range [10, 60000]"},
    {SET_HEARTBEAT_MS, "-5", "expected a whole number, got '-5'"},
    {SET_HEARTBEAT_MS, "", "expected a whole number, got ''"},
    {SET_HEARTBEAT_MISS, "1", "1 is out of range [2, 1000]"},
    {SET_CACHE_BALANCE_REL, "0.5", NULL},
    {SET_CACHE_BALANCE_REL, "inf", "expected a number, got 'inf'"},
    {SET_CACHE_MATCH_THRESHOLD, "1.5", "1.5 is out of range [0, 1]"},
    {SET_KV_OVERLAP_CREDIT, "2", "2 is out of range [0, 1]"},
    {SET_KV_TEMPERATURE, "0.5", NULL},
    {SET_KWH_PRICE, "101", "101 is out of range [0, 100]"},
    {SET_POLICY, "balanced", NULL},
    {SET_POLICY, "fastest", "unknown policy 'fastest' (round_robin, "},
    {SET_BACKEND, "simm", "unknown backend 'simm'"},
    {SET_BACKEND, "null:x", "null backend takes no arguments (got 'x')"},
    {SET_BACKEND, "openai:http://h:1/v1,model=m", NULL},
    {SET_BACKEND, "openai:ftp://h", "openai: 'ftp://h' is not an http://"},
    /* Whether a plugin loads is known only as the worker starts. */
    {SET_BACKEND, "plugin:/nonexistent.so", NULL},
    {SET_HTTP, "off", NULL},
    {SET_HTTP, "[::1]:8080", NULL},
    {SET_HTTP, "*:0", NULL},
    {SET_HTTP, "127.0.0.1:99999", "'127.0.0.1:99999' is not HOST:PORT"},
    {SET_HTTP, "127.0.0.1", "'127.0.0.1' is not HOST:PORT"},
    {SET_CLIENTS, "tcp://*:5555", NULL},
    {SET_CLIENTS, "ipc:///tmp/s", NULL},
    {SET_CLIENTS, "tcp://127.0.0.1:*", "'tcp://127.0.0.1:*': expected"},
    {SET_CLIENTS, "udp://h:1", "'udp://h:1': expected a tcp:// or ipc://"},
    {SET_SCHEDULER, "tcp://*:5556", "'tcp://*:5556': a worker connects"},
    {SET_SLO, "agent=1:1", NULL},
    {SET_SLO, "agent=0:1",
     "SLO of agent: expected TTFT_MS[+MS_PER_1K_UNCACHED]:TPOT_MS with "
     "targets of at least 1 ms"},
    {SET_LATENCY_WEIGHT, "batch=-1", "weight of batch: expected a number"},
    {SET_LOG_LEVEL, "loud", "unknown level 'loud'"},
    {SET_ID, "", "must not be empty"},
    {SET_MODEL,
     "0123456789012345678901234567890123456789012345678901234567890123",
     "longer than 63 characters"},
};

static void test_parse(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const parse_case_t *c = &k_cases[i];
    setting_value_t v;
    char err[512] = "";
    int rc = settings_parse(settings_get(c->id), c->text, &v, err, sizeof err);
    if (!c->err && rc)
      fail_msg("case %zu: %s '%s' refused: %s", i, settings_get(c->id)->name,
               c->text, err);
    if (c->err &&
        (rc != INFS_ECONFIG || strncmp(err, c->err, strlen(c->err)) != 0))
      fail_msg("case %zu: %s '%s': got \"%s\", want \"%s...\"", i,
               settings_get(c->id)->name, c->text, err, c->err);
  }
}

static void test_ready(void **state) {
  (void)state;
  char err[512];
  const setting_t *b = settings_get(SET_BACKEND);
  assert_int_equal(settings_ready(b, "sim", err, sizeof err), 0);
  assert_int_equal(settings_ready(b, "plugin:/nonexistent.so", err, sizeof err),
                   INFS_ECONFIG);
  assert_non_null(strstr(err, "cannot load plugin"));
  unsetenv("INFSCHED_TEST_UNSET");
  assert_int_equal(
      settings_ready(b, "openai:http://h:1/v1,api_key_env=INFSCHED_TEST_UNSET",
                     err, sizeof err),
      INFS_ECONFIG);
  assert_string_equal(err,
                      "openai: environment variable INFSCHED_TEST_UNSET is "
                      "not set");
  assert_int_equal(
      settings_ready(settings_get(SET_POLICY), "x", err, sizeof err), 0);
}

/* --help comes from the table: every flag of who, and no other. */
static void test_usage(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  settings_usage(f, SETTING_WORKER);
  fclose(f);
  assert_non_null(strstr(text, "  --backend SPEC "));
  assert_non_null(strstr(text, "(default sim)\n"));
  assert_null(strstr(text, "--policy"));
  for (char *line = text; *line;) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    assert_true(nl - line < 80);
    line = nl + 1;
  }
  free(text);

  struct option opts[SET_COUNT];
  size_t n = settings_options(SETTING_SCHEDULER, opts);
  int policy = 0, backend = 0;
  for (size_t i = 0; i < n; i++) {
    const setting_t *s = settings_from_opt(opts[i].val);
    assert_string_equal(s->flag, opts[i].name);
    policy |= s->id == SET_POLICY;
    backend |= s->id == SET_BACKEND;
  }
  assert_true(policy && !backend);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table_is_whole),
      cmocka_unit_test(test_defaults_agree),
      cmocka_unit_test(test_policy_names),
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_ready),
      cmocka_unit_test(test_usage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
