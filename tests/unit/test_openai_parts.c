/* The openai backend's pure parts: its options and its SSE reader. */
#include "openai_opts.h"
#include "openai_sse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_options(void **state) {
  (void)state;
  openai_opts_t o;
  char err[256], url[1100];
  assert_int_equal(openai_opts_parse("http://h:1/v1/", &o, err, sizeof err), 0);
  assert_string_equal(o.base, "http://h:1/v1");
  assert_int_equal(o.api, OPENAI_API_AUTO);
  assert_false(openai_opts_chat(&o, false));
  assert_true(openai_opts_chat(&o, true));
  assert_int_equal(o.timeout_ms, OPENAI_DEFAULT_TIMEOUT_MS);
  openai_opts_endpoint(&o, false, url, sizeof url);
  assert_string_equal(url, "http://h:1/v1/completions");
  assert_int_equal(
      openai_opts_parse("https://h/v1,model=llama,api=chat,timeout_ms=250,"
                        "connect_timeout_ms=50,api_key_env=KEY",
                        &o, err, sizeof err),
      0);
  assert_string_equal(o.model, "llama");
  assert_true(openai_opts_chat(&o, false));
  assert_int_equal(o.timeout_ms, 250);
  assert_int_equal(o.connect_timeout_ms, 50);
  assert_string_equal(o.api_key_env, "KEY");
  openai_opts_endpoint(&o, true, url, sizeof url);
  assert_string_equal(url, "https://h/v1/chat/completions");

  static const char *const bad[] = {
      NULL,
      "",
      "ftp://h",
      "h:80/v1",
      "http://h,x",
      "http://h,colour=red",
      "http://h,api=rpc",
      "http://h,timeout_ms=-1",
      "http://h,timeout_ms=9x",
      "http://h,api_key_env=",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_int_equal(openai_opts_parse(bad[i], &o, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
  }
}

typedef struct seen {
  char data[8][64];
  int n;
  int stop_at;
} seen_t;

static int on_event(void *arg, const char *data, size_t len) {
  seen_t *s = arg;
  assert_int_equal(strlen(data), len);
  snprintf(s->data[s->n], sizeof s->data[0], "%s", data);
  return ++s->n == s->stop_at ? 7 : 0;
}

static void test_sse_reader(void **state) {
  (void)state;
  const char *stream = ": comment\r\n"
                       "data: {\"a\":1}\r\n\r\n"
                       "event: x\nid: 3\ndata:two\ndata: lines\n\n"
                       "data: [DONE]\r\r"
                       "data: unfinished";
  /* Byte by byte and whole must agree. */
  for (int step = 1; step <= 2; step++) {
    openai_sse_t p;
    seen_t s = {.stop_at = -1};
    openai_sse_init(&p);
    size_t len = strlen(stream);
    if (step == 1) {
      for (size_t i = 0; i < len; i++)
        assert_int_equal(openai_sse_feed(&p, stream + i, 1, on_event, &s), 0);
    } else {
      assert_int_equal(openai_sse_feed(&p, stream, len, on_event, &s), 0);
    }
    assert_int_equal(s.n, 3);
    assert_string_equal(s.data[0], "{\"a\":1}");
    assert_string_equal(s.data[1], "two\nlines");
    assert_string_equal(s.data[2], "[DONE]");
    openai_sse_free(&p);
  }
  openai_sse_t p;
  seen_t s = {.stop_at = 1};
  openai_sse_init(&p);
  assert_int_equal(
      openai_sse_feed(&p, "data: a\n\ndata: b\n\n", 18, on_event, &s), 7);
  assert_int_equal(s.n, 1);
  openai_sse_free(&p);
}

/* An upstream cannot grow the reader without bound: a line of
 * OPENAI_SSE_MAX bytes is an error, one byte less is not. */
static void test_sse_reader_caps_a_line(void **state) {
  (void)state;
  char *big = malloc(OPENAI_SSE_MAX + 1);
  assert_non_null(big);
  memset(big, 'x', OPENAI_SSE_MAX);
  big[OPENAI_SSE_MAX] = '\n';
  openai_sse_t p;
  seen_t s = {.stop_at = -1};
  openai_sse_init(&p);
  assert_int_equal(openai_sse_feed(&p, big, OPENAI_SSE_MAX - 1, on_event, &s),
                   0);
  assert_int_equal(openai_sse_feed(&p, big, 1, on_event, &s), -1);
  openai_sse_free(&p);
  openai_sse_init(&p);
  assert_int_equal(openai_sse_feed(&p, big, OPENAI_SSE_MAX - 1, on_event, &s),
                   0);
  assert_int_equal(openai_sse_feed(&p, "\n", 1, on_event, &s), 0);
  openai_sse_free(&p);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_sse_reader),
      cmocka_unit_test(test_sse_reader_caps_a_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
