/* Timed streamed completions against an OpenAI-compatible server: a batch
 * of requests sent at once through libcurl's multi interface, each one's
 * first and last text timed and its usage read. One connection pool for
 * the whole run, so that only the first request pays for connecting. */
#ifndef INFSCHED_CALIBRATE_MEASURE_H
#define INFSCHED_CALIBRATE_MEASURE_H

#include "infsched/types.h"
#include "openai_chunk.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct measure measure_t;

/* One request of a batch: the body is the caller's; the rest is filled in
 * by measure_run. Times are clock_us() values. */
typedef struct measure_call {
  const char *body;
  long status;       /* HTTP status; 0 when none came */
  char error[512];   /* why it failed; empty when it did not */
  infs_time_t sent;  /* handed to libcurl */
  infs_time_t first; /* the first event with text; 0 when none */
  infs_time_t last;  /* the last event with text */
  uint32_t events;   /* events with text */
  bool finished;     /* a finish_reason or [DONE] was seen */
  char finish_reason[32];
  openai_usage_t usage;
  void *priv; /* measure_run's */
} measure_call_t;

/* A client of the endpoint url (the full URL of /completions or
 * /chat/completions), with "Authorization: Bearer api_key" when api_key
 * is not NULL and each request limited to timeout_ms. NULL with the
 * reason in err when libcurl cannot start. */
measure_t *measure_new(const char *url, const char *api_key,
                       uint32_t timeout_ms, char *err, size_t errlen);
void measure_destroy(measure_t **m);

/* Sends calls[0..n) at once and returns when every one has ended. A call
 * failed when its error is not empty afterwards. */
void measure_run(measure_t *m, measure_call_t *calls, size_t n);

#endif
