/* Status codes: 0 is success, failures are negative. System errors are
 * -errno; infsched's own codes sit below INFS_E_BASE so they never collide. */
#ifndef INFSCHED_ERRORS_H
#define INFSCHED_ERRORS_H

#define INFS_E_BASE (-10000)

#define INFS_ERRNO_MAP(XX)                                                   \
  XX(BUSY, "no worker can take this request now")                            \
  XX(NOWORKER, "no registered worker can serve this request")                \
  XX(CONTEXT, "prompt and output exceed the maximum context")                \
  XX(QUEUEFULL, "admission queue is full")                                   \
  XX(DUPLICATE, "request id already in flight")                              \
  XX(BADMSG, "message does not decode")                                      \
  XX(VERSION, "unsupported protocol version")                                \
  XX(CONFIG, "invalid configuration")                                        \
  XX(UNKNOWN, "unknown name")                                                \
  XX(TOOBIG, "message too large")

enum {
  INFS_E_FIRST_ = INFS_E_BASE,
#define XX(code, _) INFS_E##code,
  INFS_ERRNO_MAP(XX)
#undef XX
};

/* Message for a status code: infsched's own, or strerror for -errno. */
const char *infs_strerror(int code);
/* Short symbolic name ("EBUSY", "ENOWORKER", ...). */
const char *infs_err_name(int code);

#endif
