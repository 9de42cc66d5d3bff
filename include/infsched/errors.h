/* Status codes: 0 is success, failures are negative. System errors are
 * -errno; infsched's own codes count up from INFS_E_BASE, far below any
 * -errno, so they never collide.
 *
 * One vocabulary for the API and the wire: each code of INFS_WIRE_ERRNO_MAP
 * is also an ErrorCode of proto/infsched.proto (the third column names it),
 * the reason an Error message carries, numbered as there. The pure cores
 * fill Error messages with INFS_WIRE_* numbers, without the generated
 * protocol header; tests/unit/test_errors.c keeps this table and the proto
 * in step. Wire numbers from 100 are rejections: the request never ran. */
#ifndef INFSCHED_ERRORS_H
#define INFSCHED_ERRORS_H

#define INFS_E_BASE (-10000)

/* XX(NAME, WIRE, PROTO_NAME, message) */
#define INFS_WIRE_ERRNO_MAP(XX)                                              \
  XX(INTERNAL, 1, ERROR_INTERNAL, "internal error")                          \
  XX(BADMSG, 2, ERROR_BAD_MESSAGE, "message does not decode")                \
  XX(VERSION, 3, ERROR_BAD_VERSION, "unsupported protocol version")          \
  XX(BADREQUEST, 4, ERROR_BAD_REQUEST, "request fields are invalid")         \
  XX(UNKNOWNWORKER, 5, ERROR_UNKNOWN_WORKER, "worker must register again")   \
  XX(WORKERLOST, 6, ERROR_WORKER_LOST, "worker lost mid-request")            \
  XX(CANCELLED, 7, ERROR_CANCELLED, "request cancelled")                     \
  XX(BACKEND, 8, ERROR_BACKEND, "the worker's backend failed the request")   \
  XX(UPSTREAMTIMEOUT, 9, ERROR_UPSTREAM_TIMEOUT, "upstream server timed out") \
  XX(DUPLICATE, 10, ERROR_DUPLICATE, "request id already in flight")         \
  XX(KVTRANSFER, 11, ERROR_KV_TRANSFER,                                      \
     "the decode worker could not pull the prefilled KV")                    \
  XX(QUEUEFULL, 100, ERROR_REJECTED_QUEUE_FULL, "admission queue is full")   \
  XX(NOWORKER, 101, ERROR_REJECTED_NO_WORKER,                                \
     "no registered worker can serve this request")                          \
  XX(QUEUETIMEOUT, 102, ERROR_REJECTED_QUEUE_TIMEOUT,                        \
     "waited too long for capacity")                                         \
  XX(CONTEXT, 103, ERROR_REJECTED_CONTEXT,                                   \
     "prompt and output exceed the maximum context")                         \
  XX(SHUTDOWN, 104, ERROR_REJECTED_SHUTDOWN, "the scheduler is stopping")    \
  XX(UNAVAILABLE, 105, ERROR_REJECTED_UNAVAILABLE,                           \
     "every worker that serves this request is unhealthy or draining")

/* Codes that never travel: an Error carries ERROR_INTERNAL for them. */
#define INFS_LOCAL_ERRNO_MAP(XX)                                             \
  XX(BUSY, 0, ERROR_NONE, "no worker can take this request now")             \
  XX(CONFIG, 0, ERROR_NONE, "invalid configuration")                         \
  XX(UNKNOWN, 0, ERROR_NONE, "unknown name")                                 \
  XX(TOOBIG, 0, ERROR_NONE, "message too large")

#define INFS_ERRNO_MAP(XX) INFS_WIRE_ERRNO_MAP(XX) INFS_LOCAL_ERRNO_MAP(XX)

enum {
  INFS_E_FIRST_ = INFS_E_BASE,
#define XX(code, wire, proto, msg) INFS_E##code,
  INFS_ERRNO_MAP(XX)
#undef XX
};

/* The wire's numbers (proto ErrorCode). */
enum {
  INFS_WIRE_NONE = 0,
#define XX(code, wire, proto, msg) INFS_WIRE_##code = wire,
  INFS_WIRE_ERRNO_MAP(XX)
#undef XX
};

/* Message for a status code: infsched's own, or strerror for -errno. */
const char *infs_strerror(int code);
/* Short symbolic name ("EBUSY", "ENOWORKER", ...). */
const char *infs_err_name(int code);
/* The wire number an Error carries for a status code: its own, 0 for 0,
 * INFS_WIRE_INTERNAL for codes that never travel and for -errno. */
int infs_err_to_wire(int code);
/* The status code of a wire number (INFS_EINTERNAL for one not known). */
int infs_err_from_wire(int wire);

#endif
