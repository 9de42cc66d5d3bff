#include "supervisor.h"

#include "cli.h"
#include "log.h"
#include "backoff.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

/* Longest line passed through whole; longer ones are split. */
#define LINE_MAX_BYTES 8192
/* After the last child exits, how long its pipes may stay open (held by a
 * grandchild) before they are closed anyway. */
#define DRAIN_MS 1000
#define LAST_LINE_MAX 512

typedef struct run run_t;
typedef struct child child_t;

/* One output pipe of a run and the partial line it holds. */
typedef struct stream {
  uv_pipe_t pipe;
  run_t *run;
  int fd;     /* where its lines go: 1 or 2 */
  int open;   /* the pipe handle has not been closed yet */
  size_t len; /* bytes of a partial line in buf */
  char buf[LINE_MAX_BYTES];
} stream_t;

/* One spawn of a child. A run outlives the process until its pipes are
 * drained, so a restart never waits for the previous run's output. */
struct run {
  child_t *child;
  run_t *next; /* in the supervisor's list of runs */
  uv_process_t proc;
  stream_t out;
  stream_t err;
  int handles; /* handles not yet closed */
  int alive;   /* the process has not exited yet */
  int proc_open;
};

struct child {
  supervisor_t *sup;
  child_t *next;
  char *name;
  char **argv; /* the program's own */
  char **run_argv; /* through the launcher: SUPERVISOR_EXEC_COMMAND, argv */
  int death_sig;
  int stop_last; /* SIGTERM only once the others have exited */
  uv_timer_t restart;
  run_t *run; /* the run whose process is alive, or NULL */
  backoff_t backoff;
  uint64_t started_ms; /* uv_now() at the last spawn */
  int refs;            /* restart timer + runs not yet freed */
  char last_line[LAST_LINE_MAX];
};

typedef enum phase {
  PHASE_RUNNING,
  PHASE_TERM,  /* SIGTERM sent, waiting for the grace period */
  PHASE_KILL,  /* SIGKILL sent */
  PHASE_DRAIN, /* every process gone, output pipes closing */
  PHASE_DONE
} phase_t;

struct supervisor {
  uv_loop_t *loop;
  char launcher[4096]; /* this program's path, which runs the exec step */
  uv_timer_t timer; /* grace and drain deadlines while stopping */
  child_t *children;
  child_t **tail;
  run_t *runs;
  int alive; /* processes not yet exited */
  int refs;  /* timer + children not yet freed */
  int closing;
  phase_t phase;
  uint64_t grace_ms;
  int exit_code;
  supervisor_event_cb cb;
  void *arg;
  int last_signalled; /* the stop_last children have had their SIGTERM */
  child_t *failed; /* child whose exit stopped everything */
  int failed_status;
  char failure[LAST_LINE_MAX + 128];
};

static void stop_processes(supervisor_t *s, int sig);
static void check_done(supervisor_t *s);
static void stop_in_order(supervisor_t *s);
static void on_stop_timer(uv_timer_t *t);

/* Writes all of buf to fd. A blocked terminal or pipe holds the loop up
 * rather than losing log lines. */
static void write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN) {
        struct pollfd p = {fd, POLLOUT, 0};
        poll(&p, 1, 100);
        continue;
      }
      return;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
}

static void emit_line(stream_t *st, const char *line, size_t len) {
  child_t *c = st->run->child;
  if (len > 0 && line[len - 1] == '\r')
    len--;
  char prefix[96];
  int plen = snprintf(prefix, sizeof prefix, "[%s] ", c->name);
  if (plen < 0 || (size_t)plen >= sizeof prefix)
    plen = (int)sizeof prefix - 1;
  struct iovec iov[3] = {
      {prefix, (size_t)plen}, {(void *)line, len}, {(void *)"\n", 1}};
  write_all(st->fd, iov, 3);
  if (len > 0) {
    size_t keep = len < LAST_LINE_MAX - 1 ? len : LAST_LINE_MAX - 1;
    memcpy(c->last_line, line, keep);
    c->last_line[keep] = '\0';
  }
}

static void flush_partial(stream_t *st) {
  if (st->len > 0)
    emit_line(st, st->buf, st->len);
  st->len = 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  stream_t *st = h->data;
  (void)hint;
  if (st->len == sizeof st->buf)
    flush_partial(st); /* a line longer than the buffer is split */
  buf->base = st->buf + st->len;
  buf->len = sizeof st->buf - st->len;
}

/* Frees c once nothing refers to it, and the supervisor after its last
 * child and its own timer. */
static void free_child(child_t *c) {
  supervisor_t *s = c->sup;
  free(c->name);
  for (char **a = c->argv; *a; a++)
    free(*a);
  free(c->argv);
  for (int i = 0; i < 4 && c->run_argv[i]; i++)
    free(c->run_argv[i]);
  free(c->run_argv);
  free(c);
  if (--s->refs == 0)
    free(s);
}

static void free_run(run_t *r) {
  child_t *c = r->child;
  supervisor_t *s = c->sup;
  for (run_t **p = &s->runs; *p; p = &(*p)->next) {
    if (*p == r) {
      *p = r->next;
      break;
    }
  }
  free(r);
  if (--c->refs == 0) {
    /* Only reached while closing: the restart timer went first. */
    free_child(c);
    return;
  }
  check_done(s);
}

static void on_run_handle_closed(uv_handle_t *h) {
  run_t *r = h->type == UV_PROCESS ? h->data : ((stream_t *)h->data)->run;
  if (--r->handles == 0)
    free_run(r);
}

static void close_stream(stream_t *st) {
  if (!st->open)
    return;
  st->open = 0;
  flush_partial(st);
  uv_close((uv_handle_t *)&st->pipe, on_run_handle_closed);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  stream_t *st = h->data;
  (void)buf;
  if (nread < 0) {
    close_stream(st);
    return;
  }
  size_t end = st->len + (size_t)nread;
  size_t start = 0;
  for (size_t i = st->len; i < end; i++) {
    if (st->buf[i] == '\n') {
      emit_line(st, st->buf + start, i - start);
      start = i + 1;
    }
  }
  /* Hold the partial line until its newline arrives. */
  memmove(st->buf, st->buf + start, end - start);
  st->len = end - start;
}

static void describe_exit(char *buf, size_t len, int64_t status, int sig) {
  if (sig)
    snprintf(buf, len, "killed by signal %d (%s)", sig, strsignal(sig));
  else
    snprintf(buf, len, "exited with status %lld", (long long)status);
}

static void on_restart(uv_timer_t *t);

static void on_process_exit(uv_process_t *p, int64_t status, int sig) {
  run_t *r = p->data;
  child_t *c = r->child;
  supervisor_t *s = c->sup;
  char how[96];

  r->alive = 0;
  r->proc_open = 0;
  s->alive--;
  if (c->run == r)
    c->run = NULL;
  uv_close((uv_handle_t *)p, on_run_handle_closed);
  describe_exit(how, sizeof how, status, sig);

  if (s->phase != PHASE_RUNNING) {
    log_info("%s %s", c->name, how);
    if (s->phase == PHASE_TERM && !s->last_signalled) {
      /* Is it the last of the first to stop? */
      int first = 0;
      for (run_t *o = s->runs; o; o = o->next)
        first += o->alive && !o->child->stop_last;
      if (!first)
        stop_in_order(s);
    }
    if (s->cb)
      s->cb(s->arg, SUPERVISOR_EXITED, c->name);
    if (s->alive == 0 && s->phase < PHASE_DRAIN) {
      s->phase = PHASE_DRAIN;
      uv_timer_start(&s->timer, on_stop_timer, DRAIN_MS, 0);
    }
    check_done(s);
    return;
  }
  if (s->cb)
    s->cb(s->arg, SUPERVISOR_EXITED, c->name);
  /* A usage error or "cannot start" (lib/cli.h's rule): restarting would
   * only fail again, so the cluster cannot come up, and says why alike. */
  if (!sig && (status == CLI_EXIT_USAGE || status == CLI_EXIT_STARTUP)) {
    log_error("%s %s: it cannot start, stopping the cluster", c->name, how);
    s->failed = c;
    s->failed_status = (int)status;
    supervisor_stop(s, (int)status);
    return;
  }
  uint64_t ran = uv_now(s->loop) - c->started_ms;
  uint64_t delay = backoff_next(&c->backoff, ran);
  log_warn("%s %s after %llu ms; restarting %s in %llu ms", c->name, how,
           (unsigned long long)ran, c->name, (unsigned long long)delay);
  uv_timer_start(&c->restart, on_restart, delay, 0);
}

static int stream_init(supervisor_t *s, run_t *r, stream_t *st, int fd) {
  st->run = r;
  st->fd = fd;
  int rc = uv_pipe_init(s->loop, &st->pipe, 0);
  if (rc)
    return rc;
  st->pipe.data = st;
  st->open = 1;
  r->handles++;
  return 0;
}

static int spawn(child_t *c) {
  supervisor_t *s = c->sup;
  uv_process_options_t opts;
  uv_stdio_container_t stdio[3];
  int rc;

  /* The exec step would only report a missing program as an exit status;
   * this keeps it a spawn failure, which is retried (a rebuild). */
  if (access(c->argv[0], X_OK) != 0)
    return -errno;
  run_t *r = calloc(1, sizeof *r);
  if (!r)
    return UV_ENOMEM;
  r->child = c;
  r->next = s->runs;
  s->runs = r;
  c->refs++;
  if ((rc = stream_init(s, r, &r->out, 1)) ||
      (rc = stream_init(s, r, &r->err, 2)))
    goto out;

  memset(&opts, 0, sizeof opts);
  memset(stdio, 0, sizeof stdio);
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&r->out.pipe;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&r->err.pipe;
  opts.file = s->launcher;
  opts.args = c->run_argv;
  opts.exit_cb = on_process_exit;
  opts.stdio = stdio;
  opts.stdio_count = 3;
  r->proc.data = r;
  rc = uv_spawn(s->loop, &r->proc, &opts);
  /* The process handle is initialised even when spawning fails and must
   * then be closed like the pipes. */
  r->handles++;
  r->proc_open = 1;
  if (rc)
    goto out;

  r->alive = 1;
  s->alive++;
  c->run = r;
  c->started_ms = uv_now(s->loop);
  uv_read_start((uv_stream_t *)&r->out.pipe, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&r->err.pipe, on_alloc, on_read);
  log_info("started %s pid %d", c->name, r->proc.pid);
  if (s->cb)
    s->cb(s->arg, SUPERVISOR_STARTED, c->name);
  return 0;

out:
  if (r->proc_open) {
    r->proc_open = 0;
    uv_close((uv_handle_t *)&r->proc, on_run_handle_closed);
  }
  if (r->out.open) {
    r->out.open = 0;
    uv_close((uv_handle_t *)&r->out.pipe, on_run_handle_closed);
  }
  if (r->err.open) {
    r->err.open = 0;
    uv_close((uv_handle_t *)&r->err.pipe, on_run_handle_closed);
  }
  if (r->handles == 0)
    free_run(r);
  return rc;
}

static void on_restart(uv_timer_t *t) {
  child_t *c = t->data;
  supervisor_t *s = c->sup;
  if (s->phase != PHASE_RUNNING)
    return;
  int rc = spawn(c);
  if (rc) {
    /* The binary may be mid-rebuild: keep trying, further apart. */
    uint64_t delay = backoff_next(&c->backoff, 0);
    log_error("cannot restart %s (%s: %s); retrying in %llu ms", c->name,
              c->argv[0], uv_strerror(rc), (unsigned long long)delay);
    uv_timer_start(&c->restart, on_restart, delay, 0);
  }
}

static void check_done(supervisor_t *s) {
  if (s->closing || s->phase == PHASE_RUNNING || s->phase == PHASE_DONE)
    return;
  if (s->alive > 0 || s->runs)
    return;
  s->phase = PHASE_DONE;
  uv_timer_stop(&s->timer);
  if (s->cb)
    s->cb(s->arg, SUPERVISOR_STOPPED, NULL);
}

supervisor_t *supervisor_new(uv_loop_t *loop, uint64_t grace_ms,
                             supervisor_event_cb cb, void *arg) {
  supervisor_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  size_t n = sizeof s->launcher;
  if (uv_exepath(s->launcher, &n) != 0) {
    free(s);
    return NULL;
  }
  s->loop = loop;
  s->tail = &s->children;
  s->grace_ms = grace_ms;
  s->cb = cb;
  s->arg = arg;
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  s->refs = 1;
  return s;
}

int supervisor_add(supervisor_t *s, const char *name, char *const argv[],
                   int death_sig) {
  size_t n = 0;
  while (argv[n])
    n++;
  child_t *c = calloc(1, sizeof *c);
  if (!c)
    return UV_ENOMEM;
  c->sup = s;
  c->death_sig = death_sig;
  c->name = strdup(name);
  c->argv = calloc(n + 1, sizeof *c->argv);
  c->run_argv = calloc(n + 5, sizeof *c->run_argv);
  if (!c->name || !c->argv || !c->run_argv)
    goto fail;
  for (size_t i = 0; i < n; i++)
    if (!(c->argv[i] = strdup(argv[i])))
      goto fail;
  char pid[24], sig[24];
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  snprintf(sig, sizeof sig, "%d", death_sig);
  const char *head[4] = {s->launcher, SUPERVISOR_EXEC_COMMAND, pid, sig};
  for (size_t i = 0; i < 4; i++)
    if (!(c->run_argv[i] = strdup(head[i])))
      goto fail;
  /* The program's arguments are borrowed from argv: freed once, there. */
  for (size_t i = 0; i < n; i++)
    c->run_argv[4 + i] = c->argv[i];
  uv_timer_init(s->loop, &c->restart);
  c->restart.data = c;
  c->refs = 1;
  s->refs++;
  *s->tail = c;
  s->tail = &c->next;
  return 0;
fail:
  for (size_t i = 0; c->argv && i < n; i++)
    free(c->argv[i]);
  free(c->argv);
  for (size_t i = 0; c->run_argv && i < 4; i++)
    free(c->run_argv[i]);
  free(c->run_argv);
  free(c->name);
  free(c);
  return UV_ENOMEM;
}

int supervisor_start(supervisor_t *s) {
  for (child_t *c = s->children; c; c = c->next) {
    int rc = spawn(c);
    if (rc) {
      log_error("cannot start %s: %s: %s", c->name, c->argv[0],
                uv_strerror(rc));
      snprintf(s->failure, sizeof s->failure, "cannot start %s: %s: %s",
               c->name, c->argv[0], uv_strerror(rc));
      s->exit_code = CLI_EXIT_STARTUP;
      return rc;
    }
  }
  return 0;
}

static void stop_processes(supervisor_t *s, int sig) {
  for (run_t *r = s->runs; r; r = r->next)
    if (r->alive)
      uv_process_kill(&r->proc, sig);
}

/* SIGTERM in order: the children not marked stop_last first (workers,
 * which drain: their streams finish into the scheduler), the others once
 * those have exited. */
static void stop_in_order(supervisor_t *s) {
  int first = 0;
  for (run_t *r = s->runs; r; r = r->next)
    if (r->alive && !r->child->stop_last) {
      uv_process_kill(&r->proc, SIGTERM);
      first++;
    }
  if (first || s->last_signalled)
    return;
  s->last_signalled = 1;
  for (run_t *r = s->runs; r; r = r->next)
    if (r->alive && r->child->stop_last)
      uv_process_kill(&r->proc, SIGTERM);
}

int supervisor_stop_last(supervisor_t *s, const char *name) {
  for (child_t *c = s->children; c; c = c->next)
    if (strcmp(c->name, name) == 0) {
      c->stop_last = 1;
      return 0;
    }
  return -ENOENT;
}

static void on_stop_timer(uv_timer_t *t) {
  supervisor_t *s = t->data;
  switch (s->phase) {
  case PHASE_TERM:
    log_warn("%d process(es) still running after %llu ms; sending SIGKILL",
             s->alive, (unsigned long long)s->grace_ms);
    s->phase = PHASE_KILL;
    stop_processes(s, SIGKILL);
    break;
  case PHASE_DRAIN:
    /* A grandchild still holds a pipe open; stop reading it. */
    for (run_t *r = s->runs; r; r = r->next) {
      close_stream(&r->out);
      close_stream(&r->err);
    }
    break;
  default:
    break;
  }
}

void supervisor_stop(supervisor_t *s, int exit_code) {
  if (s->phase == PHASE_DONE || s->closing)
    return;
  if (s->phase != PHASE_RUNNING) {
    if (s->phase == PHASE_TERM) {
      log_warn("stopping now: sending SIGKILL");
      s->phase = PHASE_KILL;
      stop_processes(s, SIGKILL);
    }
    return;
  }
  if (!s->exit_code)
    s->exit_code = exit_code;
  for (child_t *c = s->children; c; c = c->next)
    uv_timer_stop(&c->restart);
  if (s->alive > 0) {
    s->phase = PHASE_TERM;
    stop_in_order(s);
    uv_timer_start(&s->timer, on_stop_timer, s->grace_ms, 0);
  } else {
    s->phase = PHASE_DRAIN;
    uv_timer_start(&s->timer, on_stop_timer, DRAIN_MS, 0);
  }
  check_done(s);
}

int supervisor_exit_code(const supervisor_t *s) {
  return s->exit_code;
}

const char *supervisor_failure(supervisor_t *s) {
  if (s->failed)
    snprintf(s->failure, sizeof s->failure,
             "%s could not start (exit status %d); its last line: %s",
             s->failed->name, s->failed_status,
             s->failed->last_line[0] ? s->failed->last_line : "(none)");
  return s->failure[0] ? s->failure : NULL;
}

static void on_child_timer_closed(uv_handle_t *h) {
  child_t *c = h->data;
  if (--c->refs == 0)
    free_child(c);
}

static void on_timer_closed(uv_handle_t *h) {
  supervisor_t *s = h->data;
  if (--s->refs == 0)
    free(s);
}

void supervisor_close(supervisor_t **sp) {
  supervisor_t *s = *sp;
  if (!s)
    return;
  *sp = NULL;
  s->closing = 1;
  /* Normally every run is gone by now; if not, stop watching them (the
   * processes themselves are left to the caller's stop). */
  for (run_t *r = s->runs; r; r = r->next) {
    if (r->proc_open) {
      r->proc_open = 0;
      uv_close((uv_handle_t *)&r->proc, on_run_handle_closed);
    }
    close_stream(&r->out);
    close_stream(&r->err);
  }
  child_t *next;
  for (child_t *c = s->children; c; c = next) {
    next = c->next;
    uv_close((uv_handle_t *)&c->restart, on_child_timer_closed);
  }
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

int supervisor_exec(int argc, char **argv) {
  char *end;
  if (argc < 3) {
    fprintf(stderr, "%s: usage: PID SIGNAL PROGRAM [ARG...]\n",
            SUPERVISOR_EXEC_COMMAND);
    return 2;
  }
  long parent = strtol(argv[0], &end, 10);
  long sig = *end ? -1 : strtol(argv[1], &end, 10);
  if (parent <= 1 || *end || sig <= 0 || sig >= NSIG) {
    fprintf(stderr, "%s: bad PID or SIGNAL\n", SUPERVISOR_EXEC_COMMAND);
    return 2;
  }
  if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig) != 0) {
    fprintf(stderr, "%s: prctl: %s\n", SUPERVISOR_EXEC_COMMAND,
            strerror(errno));
    return 3;
  }
  /* The supervisor may have died between fork and prctl, and then no
   * signal is coming: the program must not start an orphan. */
  if (getppid() != (pid_t)parent)
    return 1;
  execv(argv[2], argv + 2);
  fprintf(stderr, "%s: cannot run %s: %s\n", SUPERVISOR_EXEC_COMMAND, argv[2],
          strerror(errno));
  return 127;
}
