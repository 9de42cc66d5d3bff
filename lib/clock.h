/* The one clock the shells, tools, benchmarks and tests read: monotonic,
 * the clock of libuv's uv_hrtime. The pure cores never read it; their
 * callers pass `now` in. */
#ifndef INFSCHED_CLOCK_H
#define INFSCHED_CLOCK_H

#include <stdint.h>

/* Nanoseconds since an arbitrary fixed point. */
uint64_t clock_ns(void);

/* The same instant in microseconds (infs_time_t), milliseconds and
 * seconds. */
static inline int64_t clock_us(void) {
  return (int64_t)(clock_ns() / 1000u);
}
static inline int64_t clock_ms(void) {
  return (int64_t)(clock_ns() / 1000000u);
}
static inline double clock_s(void) {
  return (double)clock_ns() / 1e9;
}

#endif
