#include "harness.h"

#include "clock.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define POLL_MS 10
#define STOP_GRACE_MS 5000
#define MAX_LIVE 128

struct harness_proc {
  pid_t pid;
  int reaped;
  int status; /* raw wait status, valid once reaped */
  int slot;   /* index in the live registry */
};

/* The registry is a fixed array so the signal handler can walk it without
 * taking locks or touching the heap. */
static harness_proc_t *s_live[MAX_LIVE];
static volatile pid_t s_live_pid[MAX_LIVE];
static int s_installed;

/* Strings handed out by harness_bin/harness_source, freed at exit. */
typedef struct path_node {
  struct path_node *next;
  char path[];
} path_node_t;
static path_node_t *s_paths;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

static void kill_groups(void) {
  for (int i = 0; i < MAX_LIVE; i++) {
    pid_t pid = s_live_pid[i];
    if (pid > 0)
      kill(-pid, SIGKILL);
  }
}

static void on_fatal_signal(int sig) {
  int saved = errno;
  kill_groups();
  signal(sig, SIG_DFL);
  raise(sig);
  errno = saved;
}

static void at_exit(void) {
  kill_groups();
  for (int i = 0; i < MAX_LIVE; i++) {
    harness_proc_t *p = s_live[i];
    if (p) {
      while (waitpid(p->pid, NULL, 0) == -1 && errno == EINTR)
        ;
      s_live_pid[i] = 0;
      s_live[i] = NULL;
      free(p);
    }
  }
  while (s_paths) {
    path_node_t *n = s_paths;
    s_paths = n->next;
    free(n);
  }
}

static void install_once(void) {
  if (s_installed)
    return;
  s_installed = 1;
  atexit(at_exit);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction(sigs[i], &sa, NULL);
}

static const char *keep_path(const char *dir, const char *rel) {
  size_t n = strlen(dir) + 1 + strlen(rel) + 1;
  path_node_t *node = xmalloc(sizeof *node + n);
  snprintf(node->path, n, "%s/%s", dir, rel);
  install_once();
  node->next = s_paths;
  s_paths = node;
  return node->path;
}

int harness_free_port(void) {
  int port = -1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  socklen_t len = sizeof sa;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    goto out;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    goto out;
  port = ntohs(sa.sin_port);
out:
  close(fd);
  return port;
}

int harness_free_ports(int *ports, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t j;
    do {
      if ((ports[i] = harness_free_port()) < 0)
        return -1;
      for (j = 0; j < i && ports[j] != ports[i]; j++)
        ;
    } while (j < i);
  }
  return 0;
}

const char *harness_bin(const char *name) {
  const char *dir = getenv("INFSCHED_BIN_DIR");
  char self[PATH_MAX];
  if (!dir || !*dir) {
    /* Tests are built into the same bin/ directory as the programs. */
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
      return keep_path(".", name);
    self[n] = '\0';
    dir = dirname(self);
  }
  return keep_path(dir, name);
}

const char *harness_source(const char *rel) {
  const char *dir = getenv("INFSCHED_SOURCE_DIR");
  char here[PATH_MAX];
  if (!dir || !*dir) {
    /* This file sits at tests/support/ under the source root. */
    snprintf(here, sizeof here, "%s", __FILE__);
    dir = dirname(dirname(dirname(here)));
  }
  return keep_path(dir, rel);
}

harness_proc_t *harness_spawn(const char *log_path, char *const argv[]) {
  harness_proc_t *p = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, defaults;
  int slot = -1, rc;

  install_once();
  for (int i = 0; i < MAX_LIVE; i++) {
    if (!s_live[i]) {
      slot = i;
      break;
    }
  }
  if (slot < 0) {
    errno = EAGAIN;
    return NULL;
  }
  p = calloc(1, sizeof *p);
  if (!p)
    return NULL;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path,
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  /* A socket the test holds open must not stay bound in the child. */
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif

  /* The child starts with a clean signal state: our fatal-signal handlers
   * and any mask the test set must not leak into the program under test. */
  posix_spawnattr_init(&attr);
  sigemptyset(&none);
  sigfillset(&defaults);
  sigdelset(&defaults, SIGKILL);
  sigdelset(&defaults, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);

  rc = posix_spawnp(&p->pid, argv[0], &fa, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    free(p);
    errno = rc;
    return NULL;
  }
  p->slot = slot;
  s_live[slot] = p;
  s_live_pid[slot] = p->pid;
  return p;
}

pid_t harness_pid(const harness_proc_t *p) {
  return p ? p->pid : -1;
}

static void mark_reaped(harness_proc_t *p, int status) {
  p->reaped = 1;
  p->status = status;
  s_live_pid[p->slot] = 0;
}

int harness_wait(harness_proc_t *p, int timeout_ms, int *status) {
  long long deadline = clock_ms() + timeout_ms;
  while (!p->reaped) {
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
      mark_reaped(p, st);
      break;
    }
    if (r == -1 && errno != EINTR) {
      /* Reaped elsewhere (it should not be); report it as gone. */
      mark_reaped(p, 0);
      break;
    }
    if (clock_ms() >= deadline)
      return -ETIMEDOUT;
    sleep_ms(POLL_MS);
  }
  if (status)
    *status = p->status;
  return 0;
}

void harness_kill(harness_proc_t *p, int sig) {
  if (p && !p->reaped)
    kill(p->pid, sig);
}

void harness_stop(harness_proc_t **pp) {
  harness_proc_t *p = *pp;
  if (!p)
    return;
  if (!p->reaped) {
    kill(p->pid, SIGTERM);
    if (harness_wait(p, STOP_GRACE_MS, NULL) != 0) {
      kill(-p->pid, SIGKILL);
      harness_wait(p, 60000, NULL);
    }
  }
  /* Whatever the process left behind in its group goes too. */
  kill(-p->pid, SIGKILL);
  s_live_pid[p->slot] = 0;
  s_live[p->slot] = NULL;
  free(p);
  *pp = NULL;
}

void harness_stop_all(void) {
  for (int i = 0; i < MAX_LIVE; i++) {
    harness_proc_t *p = s_live[i];
    if (p)
      harness_stop(&p);
  }
}

int harness_count_log(const char *path, const char *needle) {
  char *text = harness_read_file(path);
  int n = 0;
  if (!text)
    return 0;
  size_t len = strlen(needle);
  for (const char *s = text; len && (s = strstr(s, needle)); s += len)
    n++;
  free(text);
  return n;
}

int harness_wait_log_count(const char *log_path, const char *needle, int count,
                           int timeout_ms) {
  long long deadline = clock_ms() + timeout_ms;
  for (;;) {
    if (harness_count_log(log_path, needle) >= count)
      return 0;
    if (clock_ms() >= deadline)
      return -ETIMEDOUT;
    sleep_ms(POLL_MS);
  }
}

int harness_wait_log(const char *log_path, const char *needle, int timeout_ms) {
  return harness_wait_log_count(log_path, needle, 1, timeout_ms);
}

int harness_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms) {
  long long deadline = clock_ms() + timeout_ms;
  for (;;) {
    if (cond(arg))
      return 0;
    if (clock_ms() >= deadline)
      return -ETIMEDOUT;
    sleep_ms(POLL_MS);
  }
}

int harness_pid_gone(pid_t pid) {
  char path[64], buf[256];
  errno = 0;
  if (kill(pid, 0) != 0 && errno == ESRCH)
    return 1;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* "pid (comm) S ...": comm may hold spaces and parentheses. */
  const char *state = strrchr(buf, ')');
  return state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X');
}

int harness_port_free(int port) {
  int one = 1, ok;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)port);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

char *harness_read_file(const char *path) {
  char *buf = NULL;
  size_t len = 0, cap = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  for (;;) {
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 8192;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        buf = NULL;
        goto out;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0)
      break;
  }
  buf[len] = '\0';
out:
  fclose(f);
  return buf;
}

int harness_write_file(const char *path, const char *text, int mode) {
  int rc = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0)
    return -errno;
  size_t len = strlen(text);
  while (len > 0) {
    ssize_t n = write(fd, text, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = -errno;
      break;
    }
    text += n;
    len -= (size_t)n;
  }
  /* open() applies the umask; scripts need their execute bits as asked. */
  if (rc == 0 && fchmod(fd, (mode_t)mode) != 0)
    rc = -errno;
  close(fd);
  return rc;
}

cJSON *harness_read_json(const char *path) {
  char *text = harness_read_file(path);
  if (!text)
    return NULL;
  cJSON *json = cJSON_Parse(text);
  free(text);
  return json;
}

char *harness_tmpdir(void) {
  char tmpl[] = "/tmp/infsched-test-XXXXXX";
  if (!mkdtemp(tmpl))
    return NULL;
  return strdup(tmpl);
}

static int rm_entry(const char *path, const struct stat *st, int type,
                    struct FTW *ftw) {
  (void)st;
  (void)ftw;
  int rc = type == FTW_DP ? rmdir(path) : unlink(path);
  return rc == 0 ? 0 : -errno;
}

int harness_rmtree(const char *path) {
  return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void *harness_fixture_new(size_t size) {
  char **dir = calloc(1, size); /* the fixture's first member */
  if (dir && !(*dir = harness_tmpdir())) {
    free(dir);
    dir = NULL;
  }
  return dir;
}

int harness_fixture_end(void **state) {
  char **dir = *state; /* the fixture's first member */
  harness_stop_all();
  if (getenv("INFSCHED_KEEP_TEST_DIR"))
    fprintf(stderr, "kept %s\n", *dir);
  else
    harness_rmtree(*dir);
  free(*dir);
  free(*state);
  return 0;
}
