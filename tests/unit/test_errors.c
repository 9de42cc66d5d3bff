/* One error vocabulary (include/infsched/errors.h) for the API and the
 * wire: every ErrorCode of proto/infsched.proto is a status code of the
 * table with the same number and name, and back. */
#include "infsched.pb-c.h"
#include "infsched/errors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* The table's numbers are the generated header's, name for name. */
#define XX(c, wire, proto, msg)                                              \
  _Static_assert((int)INFS_WIRE_##c == (int)INFSCHED__ERROR_CODE__##proto, #c);
INFS_WIRE_ERRNO_MAP(XX)
#undef XX

static void test_every_wire_code_has_a_status(void **state) {
  (void)state;
  const ProtobufCEnumDescriptor *d = &infsched__error_code__descriptor;
  size_t in_table = 0;
#define XX(c, wire, proto, msg) in_table++;
  INFS_WIRE_ERRNO_MAP(XX)
#undef XX
  /* ERROR_NONE is success, 0, not a failure. */
  assert_int_equal(d->n_values, in_table + 1);
  for (unsigned i = 0; i < d->n_values; i++) {
    int wire = d->values[i].value;
    int code = infs_err_from_wire(wire);
    if (wire == INFS_WIRE_NONE) {
      assert_int_equal(code, 0);
      continue;
    }
    assert_string_not_equal(infs_err_name(code), "ESYSTEM");
    assert_int_equal(infs_err_to_wire(code), wire);
    const char *name = NULL;
#define XX(c, w, proto, msg)                                                 \
  if (w == wire)                                                             \
    name = #proto;
    INFS_WIRE_ERRNO_MAP(XX)
#undef XX
    assert_non_null(name);
    assert_string_equal(d->values[i].name, name);
  }
}

static void test_local_codes_travel_as_internal(void **state) {
  (void)state;
  assert_int_equal(infs_err_to_wire(0), INFS_WIRE_NONE);
  assert_int_equal(infs_err_to_wire(INFS_ECONFIG), INFS_WIRE_INTERNAL);
  assert_int_equal(infs_err_to_wire(-12), INFS_WIRE_INTERNAL);
  assert_int_equal(infs_err_from_wire(99), INFS_EINTERNAL);
  assert_string_equal(infs_err_name(INFS_EQUEUEFULL), "EQUEUEFULL");
  assert_string_equal(infs_strerror(INFS_EQUEUEFULL),
                      "admission queue is full");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_wire_code_has_a_status),
      cmocka_unit_test(test_local_codes_travel_as_internal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
