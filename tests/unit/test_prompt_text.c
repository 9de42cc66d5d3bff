/* Load-test prompt text: its length follows the token count, and prompts
 * share text exactly as far as they share block hashes. */
#include "prompt_text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static size_t common_prefix(const char *a, const char *b) {
  size_t n = 0;
  while (a[n] && a[n] == b[n])
    n++;
  return n;
}

static void test_length_and_sharing(void **state) {
  (void)state;
  prompt_text_t a = {0}, b = {0};
  const uint64_t ha[] = {11, 22, 33}, hb[] = {11, 22, 44};
  /* 3 blocks of 16 tokens and 5 more, at 4 characters a token. */
  prompt_text_build(&a, ha, 3, 16, 53, 4.0, 1);
  assert_int_equal(a.len, 53 * 4);
  assert_int_equal(strlen(a.data), a.len);
  prompt_text_build(&b, hb, 3, 16, 53, 4.0, 2);
  /* The first two blocks (128 characters) are the same text; the third
   * differs. */
  size_t shared = common_prefix(a.data, b.data);
  assert_true(shared >= 128 && shared < 192);
  /* The same hashes and salt give the same text; another salt changes
   * only the tail. */
  char first[300];
  strcpy(first, a.data);
  prompt_text_build(&a, ha, 3, 16, 53, 4.0, 1);
  assert_string_equal(a.data, first);
  prompt_text_build(&a, ha, 3, 16, 53, 4.0, 9);
  shared = common_prefix(a.data, first);
  assert_true(shared >= 192 && shared < 212);
  /* Words, not one repeated character. */
  assert_non_null(strchr(a.data, ' '));
  assert_true(strspn(a.data, " ") < 2);
  /* No blocks: all tail; 3.5 characters a token. */
  prompt_text_build(&a, NULL, 0, 16, 10, 3.5, 5);
  assert_int_equal(a.len, 35);
  prompt_text_free(&a);
  prompt_text_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_length_and_sharing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
