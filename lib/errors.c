#include "infsched/errors.h"

#include <string.h>

const char *infs_strerror(int code) {
  switch (code) {
#define XX(c, wire, proto, msg)                                              \
  case INFS_E##c:                                                            \
    return msg;
    INFS_ERRNO_MAP(XX)
#undef XX
  default:
    return code < 0 ? strerror(-code) : "success";
  }
}

const char *infs_err_name(int code) {
  switch (code) {
#define XX(c, wire, proto, msg)                                              \
  case INFS_E##c:                                                            \
    return "E" #c;
    INFS_ERRNO_MAP(XX)
#undef XX
  default:
    return code < 0 ? "ESYSTEM" : "OK";
  }
}

int infs_err_to_wire(int code) {
  switch (code) {
  case 0:
    return INFS_WIRE_NONE;
#define XX(c, wire, proto, msg)                                              \
  case INFS_E##c:                                                            \
    return wire;
    INFS_WIRE_ERRNO_MAP(XX)
#undef XX
  default:
    return INFS_WIRE_INTERNAL;
  }
}

int infs_err_from_wire(int wire) {
  switch (wire) {
  case INFS_WIRE_NONE:
    return 0;
#define XX(c, w, proto, msg)                                                 \
  case w:                                                                    \
    return INFS_E##c;
    INFS_WIRE_ERRNO_MAP(XX)
#undef XX
  default:
    return INFS_EINTERNAL;
  }
}
