/* The load client of bench_transport: one DEALER socket that sends packed
 * Submit envelopes to a broker (which echoes them) or to a scheduler (which
 * answers Accepted, Chunk, Done), either keeping a fixed number of requests
 * outstanding (closed loop, for the highest rate) or sending at a fixed rate
 * (open loop, for latency at a given load). A round trip runs from just
 * before zmq_send to the receipt of the echo or of Done. */
#ifndef INFSCHED_BENCH_TRANSPORT_CLIENT_H
#define INFSCHED_BENCH_TRANSPORT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef enum tclient_peer {
  TCLIENT_ECHO,     /* the reply is the request itself */
  TCLIENT_SCHEDULER /* Accepted, Chunk, then Done or Error */
} tclient_peer_t;

typedef struct tclient tclient_t;

typedef struct tclient_run {
  uint32_t window;   /* closed loop: requests outstanding; 0: open loop */
  double rate;       /* open loop: requests per second, evenly spaced */
  double warmup_s;   /* sent and answered, not counted */
  double duration_s; /* counted interval after the warm-up */
  /* Closed loop only: with a non-zero value, sends until the client has
   * sent this many requests in its life, then waits for the answers; the
   * counted interval is then the whole run and duration_s is ignored. */
  uint64_t until_sent;
} tclient_run_t;

typedef struct tclient_result {
  uint64_t completed; /* Done (or echo) received in the counted interval */
  uint64_t errors;    /* Error answers in the counted interval */
  uint64_t lost;      /* unanswered when the run gave up waiting */
  uint64_t held;      /* open loop: sends skipped, too many outstanding */
  uint64_t max_outstanding; /* most requests unanswered at once while
                               counting: a backlog shows here */
  double seconds;           /* length of the counted interval */
  double rate;              /* completed / seconds */
  double p50_us;            /* round trips completed in the counted interval */
  double p90_us;
  double p99_us;
  double max_us;
} tclient_result_t;

/* Connects to endpoint. Prompts are size bytes. Returns NULL with a reason
 * in err when the socket cannot be set up. */
tclient_t *tclient_new(const char *endpoint, tclient_peer_t peer, uint32_t size,
                       char *err, size_t errlen);
void tclient_destroy(tclient_t **c);

/* Runs one load phase and waits (up to 5 s) for every answer before it
 * returns, so phases never overlap. Returns 0, or -1 when no request at
 * all completed (the peer is not there, or answers only with errors). */
int tclient_run(tclient_t *c, const tclient_run_t *run, tclient_result_t *out);

/* Requests answered with Done (or echoed) since the client was created. */
uint64_t tclient_completed_total(const tclient_t *c);
/* Size on the wire of one Submit envelope with a size-byte prompt. */
size_t tclient_request_bytes(uint32_t size);

#endif
