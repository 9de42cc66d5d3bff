/* The processes of one bench_transport path, a hub (the raw broker or the
 * scheduler) and its workers: started on free loopback ports, awaited until
 * they can serve, measured (CPU time, resident memory) and stopped. Built on
 * the integration tests' harness, whose registry stops every process left
 * at exit or on a fatal signal. */
#ifndef INFSCHED_BENCH_TRANSPORT_PROCS_H
#define INFSCHED_BENCH_TRANSPORT_PROCS_H

#include "harness.h"

#include <stdint.h>

#define TPROCS_MAX_WORKERS 64
#define TPROCS_ADDR_MAX 64

typedef struct tprocs_config {
  const char *self;     /* this program, run again for the broker and echo */
  const char *log_dir;  /* each process logs to LOG_DIR/NAME.log */
  const char *bin_dir;  /* daemons' directory; NULL: beside this program */
  const char *profiles; /* the workers' profiles file */
  const char *policy;   /* NULL: the scheduler's default */
  uint32_t workers;     /* 1 to TPROCS_MAX_WORKERS */
} tprocs_config_t;

typedef struct tprocs {
  harness_proc_t *hub;
  harness_proc_t *workers[TPROCS_MAX_WORKERS];
  uint32_t n_workers;
  char client_addr[TPROCS_ADDR_MAX]; /* where clients connect */
  char worker_addr[TPROCS_ADDR_MAX];
} tprocs_t;

/* Starts "SELF --role broker" and the echo workers, and waits until each
 * echo worker has finished its handshake with the broker. Returns 0, or -1
 * with the reason on stderr (what was started stays in p for tprocs_stop). */
int tprocs_start_baseline(const tprocs_config_t *cfg, tprocs_t *p);

/* Starts infsched-scheduler and null-backend workers and waits until every
 * worker has registered. tag prefixes the log names. Returns 0 or -1 as
 * tprocs_start_baseline does. */
int tprocs_start_scheduler(const tprocs_config_t *cfg, const char *tag,
                           tprocs_t *p);

/* Stops every process of p (SIGTERM, then SIGKILL); idempotent. */
void tprocs_stop(tprocs_t *p);

/* CPU time (user + system, all threads) in microseconds of the hub, of all
 * workers together, and of this process; -1 when it cannot be read. */
double tprocs_hub_cpu_us(const tprocs_t *p);
double tprocs_workers_cpu_us(const tprocs_t *p);
double tprocs_self_cpu_us(void);

/* The hub's VmRSS in KiB, or -1. */
long tprocs_hub_rss_kib(const tprocs_t *p);

#endif
