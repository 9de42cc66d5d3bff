/* Line-oriented logging to stderr: "LEVEL name: message", with control
 * bytes in the message escaped (\x0a), so one call is one line. */
#ifndef INFSCHED_LOG_H
#define INFSCHED_LOG_H

#include "infsched/types.h"

typedef enum log_level {
  LOG_LEVEL_DEBUG,
  LOG_LEVEL_INFO,
  LOG_LEVEL_WARN,
  LOG_LEVEL_ERROR
} log_level_t;

/* Names the program in every line and sets the level. Also ignores SIGPIPE
 * for the whole process: a daemon whose stderr reader has gone (its
 * supervisor died) loses its log lines, not its life, and a write to a
 * peer that has gone (an HTTP client) fails with EPIPE. */
void log_init(const char *program, log_level_t level);
int log_level_parse(const char *name, log_level_t *out);
int log_enabled(log_level_t level);
void log_write(log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                       \
  do {                                                                       \
    if (log_enabled(LOG_LEVEL_DEBUG))                                        \
      log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);                               \
  } while (0)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

/* A limiter that lets one line through per interval and counts the rest, so
 * a misbehaving peer cannot flood the log. Returns how many were suppressed
 * since the last line let through plus one, or 0 when this one is held. */
typedef struct log_limit {
  infs_time_t next; /* end of the current interval */
  uint64_t held;
  uint32_t sent; /* lines let through in this interval */
} log_limit_t;
uint64_t log_limit_pass(log_limit_t *l, infs_time_t now, infs_time_t every);
/* The same with up to burst lines per interval, for events that come in
 * bursts when all is well (a pool's workers registering at start). */
uint64_t log_limit_burst(log_limit_t *l, infs_time_t now, infs_time_t every,
                         uint32_t burst);

#endif
