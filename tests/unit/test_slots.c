/* lib/slots: the lowest free slot first, a freed slot taken again before
 * any new one, and the capacity doubling (from first) only when none is
 * free, saying so through the capacity it returns. */
#include "slots.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_lowest_first_and_growth(void **state) {
  (void)state;
  slots_t s = {0};
  uint32_t slot;
  assert_int_equal(slots_take(&s, 4, &slot), 0);
  assert_int_equal(s.cap, 4);
  assert_int_equal(slot, 0);
  for (uint32_t want = 1; want < 4; want++) {
    assert_int_equal(slots_take(&s, 4, &slot), 4);
    assert_int_equal(slot, want);
  }
  /* Full: the next take doubles, and says it did. */
  assert_int_equal(slots_take(&s, 4, &slot), 4);
  assert_int_equal(s.cap, 8);
  assert_int_equal(slot, 4);
  slots_free(&s);
  assert_null(s.free);
  assert_int_equal(s.cap, 0);
}

static void test_freed_slots_come_back(void **state) {
  (void)state;
  slots_t s = {0};
  uint32_t slot;
  for (int i = 0; i < 4; i++)
    slots_take(&s, 4, &slot);
  slots_put(&s, 2);
  slots_put(&s, 1);
  assert_int_equal(slots_take(&s, 4, &slot), 4);
  assert_int_equal(slot, 1);
  assert_int_equal(slots_take(&s, 4, &slot), 4);
  assert_int_equal(slot, 2);
  assert_int_equal(s.cap, 4);
  slots_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lowest_first_and_growth),
      cmocka_unit_test(test_freed_slots_come_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
