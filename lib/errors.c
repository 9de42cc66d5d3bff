#include "infsched/errors.h"

#include <string.h>

const char *infs_strerror(int code) {
  switch (code) {
#define XX(c, msg)                                                           \
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
#define XX(c, _)                                                             \
  case INFS_E##c:                                                            \
    return "E" #c;
    INFS_ERRNO_MAP(XX)
#undef XX
  default:
    return code < 0 ? "ESYSTEM" : "OK";
  }
}
