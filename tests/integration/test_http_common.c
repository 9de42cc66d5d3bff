#include "test_http_common.h"

#include "clock.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define CURL_TIMEOUT_MS 30000

static int distinct_port(const int *taken, int n) {
  for (;;) {
    int p = harness_free_port();
    assert_true(p > 0);
    int clash = 0;
    for (int i = 0; i < n; i++)
      clash |= taken[i] == p;
    if (!clash)
      return p;
  }
}

void hc_sched_init(hc_sched_t *s, const char *dir, const char *name) {
  int ports[3] = {0, 0, 0};
  ports[0] = distinct_port(ports, 0);
  ports[1] = distinct_port(ports, 1);
  ports[2] = distinct_port(ports, 2);
  snprintf(s->name, sizeof s->name, "%s", name);
  snprintf(s->clients, sizeof s->clients, "tcp://127.0.0.1:%d", ports[0]);
  snprintf(s->workers, sizeof s->workers, "tcp://127.0.0.1:%d", ports[1]);
  s->http_port = ports[2];
  snprintf(s->http, sizeof s->http, "127.0.0.1:%d", ports[2]);
  snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", ports[2]);
  snprintf(s->log, sizeof s->log, "%s/%s.log", dir, name);
  s->proc = NULL;
}

/* Starts the scheduler once; 1 when it listens, 0 when it exited (its
 * ports were taken by someone else since they were picked). */
static int try_start(hc_sched_t *s, const char *const *extra) {
  const char *argv[40] = {harness_bin("infsched-scheduler"),
                          "--clients",
                          s->clients,
                          "--workers",
                          s->workers,
                          "--http",
                          s->http,
                          "--heartbeat-ms",
                          "100"};
  int n = 9;
  for (int i = 0; extra && extra[i] && n < 39; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  /* A scheduler started again appends to the log of the one before. */
  int before = harness_count_log(s->log, "http: listening on");
  s->proc = harness_spawn(s->log, (char *const *)argv);
  assert_non_null(s->proc);
  long long end = clock_ms() + HC_START_MS;
  while (clock_ms() < end) {
    if (harness_wait_log_count(s->log, "http: listening on", before + 1,
                               20) == 0)
      return 1;
    if (harness_wait(s->proc, 0, NULL) == 0) {
      harness_stop(&s->proc);
      return 0;
    }
  }
  fail_msg("scheduler %s did not start; see %s", s->name, s->log);
  return 0;
}

void hc_sched_start(hc_sched_t *s, const char *const *extra) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s", s->log);
  *strrchr(dir, '/') = '\0';
  for (int attempt = 0; attempt < 3; attempt++) {
    if (try_start(s, extra))
      return;
    hc_sched_init(s, dir, s->name);
  }
  fail_msg("scheduler %s could not bind free ports; see %s", s->name, s->log);
}

harness_proc_t *hc_worker_start(const hc_sched_t *s, const char *dir,
                                const char *id, const char *profile,
                                const char *backend, const char *const *extra) {
  char log[600];
  snprintf(log, sizeof log, "%s/%s.log", dir, id);
  const char *argv[40] = {harness_bin("infsched-worker"),
                          "--scheduler",
                          s->workers,
                          "--id",
                          id,
                          "--profile",
                          profile,
                          "--profiles",
                          harness_source("configs/profiles.yaml"),
                          "--backend",
                          backend ? backend : "sim",
                          "--heartbeat-ms",
                          "100"};
  int n = 13;
  for (int i = 0; extra && extra[i] && n < 39; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  harness_proc_t *p = harness_spawn(log, (char *const *)argv);
  assert_non_null(p);
  return p;
}

void hc_wait_registered(const hc_sched_t *s, int n) {
  assert_int_equal(
      harness_wait_log_count(s->log, "registered (", n, HC_START_MS), 0);
}

/* --- curl --- */

static int counter;

void hc_curl(const char *dir, const char *const *args, hc_response_t *r) {
  char body[600], head[600], log[600];
  int k = ++counter;
  snprintf(body, sizeof body, "%s/curl-%d.body", dir, k);
  snprintf(head, sizeof head, "%s/curl-%d.head", dir, k);
  snprintf(log, sizeof log, "%s/curl-%d.log", dir, k);
  const char *argv[48] = {
      "curl", "-sS", "--max-time", "30", "-o",
      body,   "-D",  head,         "-w", "\nHTTP_STATUS=%{http_code}\n"};
  int n = 10;
  for (int i = 0; args[i] && n < 47; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  harness_proc_t *p = harness_spawn(log, (char *const *)argv);
  assert_non_null(p);
  int status;
  assert_int_equal(harness_wait(p, CURL_TIMEOUT_MS + 5000, &status), 0);
  harness_stop(&p);
  memset(r, 0, sizeof *r);
  r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  char *out = harness_read_file(log);
  const char *st = out ? strstr(out, "HTTP_STATUS=") : NULL;
  r->status = st ? atoi(st + 12) : 0;
  free(out);
  r->body = harness_read_file(body);
  r->headers = harness_read_file(head);
  if (!r->body)
    r->body = calloc(1, 1);
  if (!r->headers)
    r->headers = calloc(1, 1);
}

void hc_post(const char *dir, const char *url, const char *json,
             const char *const *headers, hc_response_t *r) {
  const char *args[32] = {"-H", "Content-Type: application/json",
                          "--data-binary", json};
  int n = 4;
  for (int i = 0; headers && headers[i] && n < 29; i++) {
    if (strcmp(headers[i], "-N") == 0) {
      args[n++] = "-N";
      continue;
    }
    args[n++] = "-H";
    args[n++] = headers[i];
  }
  args[n++] = url;
  args[n] = NULL;
  hc_curl(dir, args, r);
}

void hc_get(const char *dir, const char *url, hc_response_t *r) {
  const char *args[] = {url, NULL};
  hc_curl(dir, args, r);
}

void hc_response_free(hc_response_t *r) {
  free(r->headers);
  free(r->body);
  r->headers = r->body = NULL;
}

const char *hc_header(const hc_response_t *r, const char *name, char *buf,
                      size_t len) {
  size_t nl = strlen(name);
  for (const char *p = r->headers; p && *p;) {
    const char *eol = strstr(p, "\r\n");
    size_t ll = eol ? (size_t)(eol - p) : strlen(p);
    if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ')
        v++;
      size_t vl = (size_t)(p + ll - v);
      snprintf(buf, len, "%.*s", (int)vl, v);
      return buf;
    }
    p = eol ? eol + 2 : p + ll;
  }
  return NULL;
}

/* --- raw sockets --- */

int hc_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int hc_setup(void **state) {
  hc_fixture_t *f = harness_fixture_new(sizeof *f);
  assert_non_null(f);
  hc_sched_init(&f->s, f->dir, "scheduler");
  *state = f;
  return 0;
}

int hc_teardown(void **state) {
  char **dir = *state; /* the fixture's first member */
  harness_stop_all();
  int rc = hc_check_logs(*dir);
  harness_fixture_end(state);
  return rc;
}

int hc_post_completion(int port, const char *json) {
  int fd = hc_connect(port);
  assert_true(fd >= 0);
  char head[256];
  snprintf(head, sizeof head,
           "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
           "application/json\r\nContent-Length: %zu\r\n\r\n",
           strlen(json));
  assert_int_equal(hc_send(fd, head), 0);
  assert_int_equal(hc_send(fd, json), 0);
  return fd;
}

int hc_send(int fd, const char *s) {
  size_t len = strlen(s);
  while (len) {
    ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    s += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads what is there (waiting up to ms); bytes read, 0 on EOF, -1 on
 * timeout or error. */
static ssize_t read_some(int fd, char **buf, size_t *len, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int rc = poll(&p, 1, ms < 0 ? 0 : ms);
  if (rc <= 0)
    return -1;
  char tmp[16384];
  ssize_t n = recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0)
    return n < 0 ? -1 : 0;
  char *b = realloc(*buf, *len + (size_t)n + 1);
  assert_non_null(b);
  memcpy(b + *len, tmp, (size_t)n);
  *len += (size_t)n;
  b[*len] = '\0';
  *buf = b;
  return n;
}

int hc_read_until(int fd, char **buf, size_t *len, const char *needle,
                  int timeout_ms) {
  long long end = clock_ms() + timeout_ms;
  for (;;) {
    if (*buf && strstr(*buf, needle))
      return 0;
    long long left = end - clock_ms();
    if (left <= 0 || read_some(fd, buf, len, (int)left) <= 0)
      return *buf && strstr(*buf, needle) ? 0 : -1;
  }
}

int hc_read_response(int fd, char **rest, size_t *rest_len, char **body,
                     int timeout_ms) {
  if (hc_read_until(fd, rest, rest_len, "\r\n\r\n", timeout_ms))
    return -1;
  char *end = strstr(*rest, "\r\n\r\n");
  size_t head_len = (size_t)(end - *rest) + 4;
  int status = 0;
  if (sscanf(*rest, "HTTP/1.%*d %d", &status) != 1)
    return -1;
  size_t clen = 0;
  for (char *p = *rest; p < end; p = strstr(p, "\r\n") + 2)
    if (strncasecmp(p, "content-length:", 15) == 0)
      clen = strtoul(p + 15, NULL, 10);
  long long deadline = clock_ms() + timeout_ms;
  while (*rest_len < head_len + clen) {
    long long left = deadline - clock_ms();
    if (left <= 0 || read_some(fd, rest, rest_len, (int)left) <= 0)
      return -1;
  }
  *body = strndup(*rest + head_len, clen);
  size_t used = head_len + clen;
  memmove(*rest, *rest + used, *rest_len - used + 1);
  *rest_len -= used;
  return status;
}

/* --- metrics --- */

double hc_metric(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p && *p;) {
    if (strncmp(p, series, n) == 0 && p[n] == ' ')
      return strtod(p + n + 1, NULL);
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  return -1;
}

double hc_wait_metric(const char *dir, const char *base, const char *series,
                      double want) {
  return hc_wait_metric_within(dir, base, series, want, 15000);
}

double hc_wait_metric_within(const char *dir, const char *base,
                             const char *series, double want, int timeout_ms) {
  char url[160];
  snprintf(url, sizeof url, "%s/metrics", base);
  long long end = clock_ms() + timeout_ms;
  double v = -1;
  for (;;) {
    hc_response_t r;
    hc_get(dir, url, &r);
    v = hc_metric(r.body, series);
    hc_response_free(&r);
    if (v == want || clock_ms() > end)
      return v;
    /* A scrape is the only way to see the value: poll it. */
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

cJSON *hc_json(const char *body) {
  return body ? cJSON_Parse(body) : NULL;
}

const cJSON *hc_at(const cJSON *root, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  const cJSON *cur = root;
  char *save;
  for (char *k = strtok_r(buf, ".", &save); k && cur;
       k = strtok_r(NULL, ".", &save)) {
    if (cJSON_IsArray(cur))
      cur = cJSON_GetArrayItem(cur, atoi(k));
    else
      cur = cJSON_GetObjectItemCaseSensitive(cur, k);
  }
  return cur;
}

int hc_check_logs(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int bad = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 4, ".log") != 0)
      continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    char *text = harness_read_file(path);
    if (text && (strstr(text, "Sanitizer") || strstr(text, "runtime error:"))) {
      fprintf(stderr, "sanitizer report in %s:\n%s\n", path, text);
      bad = 1;
    }
    free(text);
  }
  closedir(d);
  return bad ? -1 : 0;
}

void hc_expect_worker_start_failure(const hc_sched_t *s, const char *dir,
                                    const char *spec, int want,
                                    const char *needle) {
  char log[600];
  snprintf(log, sizeof log, "%s/bad.log", dir);
  char *argv[] = {(char *)harness_bin("infsched-worker"),
                  "--scheduler",
                  (char *)s->workers,
                  "--profiles",
                  (char *)harness_source("configs/profiles.yaml"),
                  "--backend",
                  (char *)spec,
                  NULL};
  harness_proc_t *p = harness_spawn(log, argv);
  assert_non_null(p);
  int status;
  assert_int_equal(harness_wait(p, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), want);
  if (harness_wait_log(log, needle, 0) != 0) {
    char *text = harness_read_file(log);
    fail_msg("'%s' not in: %s", needle, text ? text : "");
  }
  harness_stop(&p);
}
