/* lib/buf: growth keeps the text NUL-terminated, and a cap refuses what
 * would pass it, leaving the buffer as it was. */
#include "buf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_grows_without_cap(void **state) {
  (void)state;
  buf_t b = {0};
  char chunk[1000];
  memset(chunk, 'a', sizeof chunk);
  for (int i = 0; i < 100; i++)
    assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
  assert_int_equal(b.len, 100000);
  assert_int_equal(b.data[b.len], '\0');
  buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
  assert_string_equal(b.data, "42-x");
  buf_free(&b);
  assert_null(b.data);
}

static void test_cap_refuses_and_keeps(void **state) {
  (void)state;
  buf_t b = {.max = 8};
  assert_int_equal(buf_puts(&b, "12345"), 0);
  assert_int_equal(buf_puts(&b, "6789"), -1);
  assert_string_equal(b.data, "12345");
  assert_int_equal(buf_printf(&b, "%s", "6789"), -1);
  assert_int_equal(buf_puts(&b, "678"), 0);
  assert_string_equal(b.data, "12345678");
  assert_int_equal(buf_append(&b, "", 0), 0);
  assert_int_equal(buf_append(&b, "9", 1), -1);
  buf_free(&b);
  assert_int_equal(b.max, 8);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grows_without_cap),
      cmocka_unit_test(test_cap_refuses_and_keeps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
