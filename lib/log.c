#include "log.h"

#include "infsched/errors.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *s_program = "infsched";
static log_level_t s_level = LOG_LEVEL_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *program, log_level_t level) {
  s_program = program;
  s_level = level;
  signal(SIGPIPE, SIG_IGN);
}

int log_level_parse(const char *name, log_level_t *out) {
  for (int i = 0; i <= LOG_LEVEL_ERROR; i++) {
    if (strcmp(level_names[i], name) == 0) {
      *out = (log_level_t)i;
      return 0;
    }
  }
  return INFS_EUNKNOWN;
}

int log_enabled(log_level_t level) { return level >= s_level; }

void log_write(log_level_t level, const char *fmt, ...) {
  if (level < s_level)
    return;
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %-5s %s: ",
                   tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                   level_names[level], s_program);
  char msg[sizeof line];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* Messages quote what peers sent (worker ids, reasons): control bytes
   * are escaped so that no peer can end a line and forge the next. */
  size_t len = n > 0 && (size_t)n < sizeof line ? (size_t)n : 0;
  for (const char *p = msg; *p && len + 5 < sizeof line; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch >= 0x20 && ch != 0x7f)
      line[len++] = (char)ch;
    else
      len += (size_t)snprintf(line + len, 5, "\\x%02x", ch);
  }
  line[len] = '\0';
  /* One fputs per line keeps lines whole when several processes share a pipe. */
  if (len + 1 < sizeof line) {
    line[len] = '\n';
    line[len + 1] = '\0';
  }
  fputs(line, stderr);
  fflush(stderr);
}

uint64_t log_limit_pass(log_limit_t *l, infs_time_t now, infs_time_t every) {
  return log_limit_burst(l, now, every, 1);
}

uint64_t log_limit_burst(log_limit_t *l, infs_time_t now, infs_time_t every,
                         uint32_t burst) {
  if (now >= l->next) {
    l->next = now + every;
    l->sent = 0;
  }
  if (l->sent >= burst) {
    l->held++;
    return 0;
  }
  l->sent++;
  uint64_t n = l->held + 1;
  l->held = 0;
  return n;
}
