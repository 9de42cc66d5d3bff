/* Helpers shared by the HTTP front door's integration tests: a scheduler
 * and its workers on free ports, curl runs, raw HTTP over sockets (for
 * keep-alive, half-sent requests and clients that vanish), and reading
 * Prometheus samples. */
#ifndef INFSCHED_TESTS_HTTP_COMMON_H
#define INFSCHED_TESTS_HTTP_COMMON_H

#include "harness.h"

#include <stddef.h>

#define HC_START_MS 15000

/* One scheduler: its endpoints, log and process. */
typedef struct hc_sched {
  char name[32];
  char clients[64];
  char workers[64];
  char http[64]; /* 127.0.0.1:PORT */
  char base[96]; /* http://127.0.0.1:PORT */
  int http_port;
  char log[512];
  harness_proc_t *proc;
} hc_sched_t;

/* The fixture of tests needing one scheduler and a scratch directory:
 * hc_setup names the scheduler "scheduler"; hc_teardown stops every
 * process and fails on sanitizer reports in the logs. hc_teardown ends any
 * fixture whose first member is its directory (harness_fixture_end). */
typedef struct hc_fixture {
  char *dir;
  hc_sched_t s;
} hc_fixture_t;
int hc_setup(void **state);
int hc_teardown(void **state);

/* Picks free ports for a scheduler named name whose files go in dir. */
void hc_sched_init(hc_sched_t *s, const char *dir, const char *name);
/* Starts it with extra arguments (a NULL-terminated list, or NULL) and
 * waits until its HTTP listener is up. */
void hc_sched_start(hc_sched_t *s, const char *const *extra);
/* Starts worker id on s with a profile and backend (NULL: sim), plus extra
 * arguments; its log is DIR/ID.log. */
harness_proc_t *hc_worker_start(const hc_sched_t *s, const char *dir,
                                const char *id, const char *profile,
                                const char *backend, const char *const *extra);
/* Waits until s's log reports n worker registrations in all. */
void hc_wait_registered(const hc_sched_t *s, int n);
/* Starts a worker of s with --backend spec and checks that it refuses it:
 * exit status `status` (2: refused with the flags, 3: cannot start) and
 * needle in its log (written under dir). */
void hc_expect_worker_start_failure(const hc_sched_t *s, const char *dir,
                                    const char *spec, int status,
                                    const char *needle);

typedef struct hc_response {
  int status;    /* HTTP status, 0 when curl got no answer */
  int exit_code; /* curl's */
  char *headers; /* as received */
  char *body;
} hc_response_t;

/* Runs curl with args (NULL-terminated) and collects the answer; files go
 * in dir. Fails the test if curl cannot be run. */
void hc_curl(const char *dir, const char *const *args, hc_response_t *r);
/* POSTs json to url with headers ("Name: value", NULL-terminated, may be
 * NULL); -N streams. */
void hc_post(const char *dir, const char *url, const char *json,
             const char *const *headers, hc_response_t *r);
void hc_get(const char *dir, const char *url, hc_response_t *r);
void hc_response_free(hc_response_t *r);
/* Header value of r (case-insensitive name), copied into buf; NULL when
 * absent. */
const char *hc_header(const hc_response_t *r, const char *name, char *buf,
                      size_t len);

/* --- raw sockets --- */
/* A blocking TCP connection to 127.0.0.1:port, or -1. */
int hc_connect(int port);
/* Sends all of s; 0 or -1. */
int hc_send(int fd, const char *s);
/* Connects to 127.0.0.1:port and POSTs json to /v1/completions, failing
 * the test if it cannot. Returns the connection, for hc_read_until. */
int hc_post_completion(int port, const char *json);
/* Reads into a growing buffer until needle is in it, the peer closes or
 * timeout_ms pass. Returns 0 when needle was seen. *buf is the caller's. */
int hc_read_until(int fd, char **buf, size_t *len, const char *needle,
                  int timeout_ms);
/* Reads one response with a Content-Length body from fd (keeping any bytes
 * after it in *rest for the next call). Returns the status, or -1. */
int hc_read_response(int fd, char **rest, size_t *rest_len, char **body,
                     int timeout_ms);

/* --- metrics --- */
/* The value of the sample whose name and labels are exactly series (e.g.
 * "infsched_workers" or "x_total{a=\"b\"}") in a /metrics text; -1 when
 * absent. */
double hc_metric(const char *text, const char *series);
/* Scrapes base/metrics until series has value want (within 15 s). Returns
 * the last value seen. */
double hc_wait_metric(const char *dir, const char *base, const char *series,
                      double want);
/* The same within timeout_ms: for a change that must come from an event
 * sooner than it would come on its own. */
/* A cancelled 30,000-token stream stops within this; run to its end, it
 * takes some 14 s. */
#define CANCEL_WITHIN_MS 5000
double hc_wait_metric_within(const char *dir, const char *base,
                             const char *series, double want, int timeout_ms);

/* Scans the *.log files in dir for sanitizer reports (ASan, LSan, UBSan)
 * and prints any. Returns 0 when there is none, -1 otherwise; call after
 * the processes have stopped, from a teardown. */
int hc_check_logs(const char *dir);

/* Parses body as JSON (NULL if it does not parse); free with cJSON_Delete. */
cJSON *hc_json(const char *body);
/* The number or string at a dotted path ("choices.0.text"), or NULL. */
const cJSON *hc_at(const cJSON *root, const char *path);

#endif
