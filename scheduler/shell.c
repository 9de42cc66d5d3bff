#include "shell.h"

#include "infsched/errors.h"
#include "clock.h"
#include "log.h"
#include "wire.h"
#include "wire_arena.h"
#include "zwatch.h"
#include "slo_check.h"
#include "core_wire.h"
#include "metrics.h"
#include "status.h"
#include "curve.h"
#include "zap.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Longest the final answers may take to leave on shutdown. */
#define SHUTDOWN_LINGER_MS 1000
#define SEND_HWM 100000

struct shell {
  uv_loop_t *loop;
  void *zctx;
  void *clients;
  void *workers;
  zwatch_t *clients_watch;
  zwatch_t *workers_watch;
  uv_timer_t timer;
  core_t *core;
  /* The keys admitted on each port; both NULL with authentication off. */
  keyring_t *admitted_workers;
  keyring_t *admitted_clients;
  zap_t *zap;
  char secret_key[PATH_MAX]; /* the scheduler's own key file */
  frontdoor_t *http;         /* NULL without an HTTP listener */
  metrics_t *metrics;
  wire_buf_t out;
  core_wire_msg_t msg; /* what a flush sends, one action at a time */
  infs_time_t flush_now;
  wire_arena_t *arena; /* what on_readable decodes, until its flush */
  /* The worker's Chunk or Done being handled, and its frame, which goes to
   * the client as it came when the core forwards that very message. */
  const void *in_body;
  const uint8_t *in_frame;
  size_t in_frame_len;
  infs_time_t started;
  uint32_t heartbeat_ms;
  slo_t slo[INFS_CLASS_COUNT];   /* class defaults, checked on registration */
  const profile_set_t *profiles; /* the core's, borrowed; NULL: none */
  uint64_t bad_messages;
  uint64_t send_failures;
  log_limit_t bad_log;
  log_limit_t send_log;
  log_limit_t register_log;
  bool stopping;
};

/* --- sending --- */

static void send_frame(shell_t *s, void *sock, const core_peer_t *peer,
                       const uint8_t *data, size_t len,
                       Infsched__Envelope__BodyCase what) {
  if (zmq_send(sock, peer->id, peer->len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
      zmq_send(sock, data, len, ZMQ_DONTWAIT) < 0) {
    /* EHOSTUNREACH: the peer went away (ROUTER_MANDATORY tells us instead
     * of dropping silently); EAGAIN: it stopped reading. */
    s->send_failures++;
    uint64_t n = log_limit_pass(&s->send_log, clock_us(), INFS_US_PER_S);
    if (n)
      log_warn("send %s failed: %s (%llu such failures)", wire_body_name(what),
               zmq_strerror(errno), (unsigned long long)n);
  }
}

static void send_to(shell_t *s, void *sock, const core_peer_t *peer,
                    Infsched__Envelope *env) {
  wire_pack(env, &s->out);
  send_frame(s, sock, peer, s->out.data, s->out.len, env->body_case);
}

/* Whether a worker's Chunk or Done can go on to the client as the frame it
 * came in: when it is the message being handled and already names the
 * client's id, unless that id is 0 (a frame repeating its chunk or done is
 * read by protobuf-c as the last copy and by other protobuf libraries as
 * the copies merged, and a merge keeps the last copy's id only when it is
 * not the default). Otherwise it is encoded again with that id. */
static bool forward_raw(const shell_t *s, const core_action_t *a) {
  if (!a->passthrough)
    return false; /* made by the core: what a resubmitting client missed */
  uint64_t id = a->kind == CORE_ACT_CHUNK
                    ? ((const Infsched__Chunk *)a->passthrough)->request_id
                    : ((const Infsched__Done *)a->passthrough)->request_id;
  return a->passthrough == s->in_body && id == a->request_id &&
         a->request_id != 0;
}

static void send_error(shell_t *s, void *sock, const core_peer_t *peer,
                       uint64_t request_id, int code, const char *message) {
  Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
  Infsched__Error err;
  send_to(s, sock, peer, wire_error_msg(&env, &err, request_id, code, message));
}

/* One debug line per placement decision, with the scores compared. */
static void log_decisions(shell_t *s) {
  size_t n;
  const core_decision_t *d = core_decisions(s->core, &n);
  char line[1024];
  for (size_t i = 0; i < n; i++) {
    core_decision_format(&d[i], line, sizeof line);
    log_debug("decision %s", line);
  }
}

/* Counts an action to a client, and hands those for HTTP peers to the
 * front door. Returns true when the action has been dealt with. */
static bool to_front_door(shell_t *s, infs_time_t now, const core_action_t *a) {
  if (a->kind != CORE_ACT_ACCEPTED && a->kind != CORE_ACT_CHUNK &&
      a->kind != CORE_ACT_DONE && a->kind != CORE_ACT_ERROR)
    return false;
  metrics_on_action(s->metrics, now, a);
  if (!frontdoor_owns_peer(&a->peer))
    return false;
  frontdoor_on_action(s->http, a);
  return true;
}

static void send_action(void *ctx, const core_action_t *a) {
  shell_t *s = ctx;
  if (a->kind == CORE_ACT_WORKER_ERROR && a->code == INFS_WIRE_WORKERLOST)
    log_warn("%s", a->message);
  if (to_front_door(s, s->flush_now, a))
    return;
  void *sock = core_wire_to_worker(a->kind) ? s->workers : s->clients;
  if ((a->kind == CORE_ACT_CHUNK || a->kind == CORE_ACT_DONE) &&
      forward_raw(s, a)) {
    send_frame(s, sock, &a->peer, s->in_frame, s->in_frame_len,
               a->kind == CORE_ACT_CHUNK ? INFSCHED__ENVELOPE__BODY_CHUNK
                                         : INFSCHED__ENVELOPE__BODY_DONE);
    return;
  }
  send_to(s, sock, &a->peer, core_wire_message(a, s->heartbeat_ms, &s->msg));
}

/* Sends the core's actions (workers' first, core_wire_flush); now is the
 * time the core was called with, so one wake-up sees one time. */
static void flush(shell_t *s, infs_time_t now) {
  log_decisions(s);
  s->flush_now = now;
  core_wire_flush(s->core, send_action, s);
}

/* --- timer --- */

static void on_timer(uv_timer_t *t);

static void arm_timer(shell_t *s, infs_time_t now) {
  infs_time_t at = core_next_deadline(s->core);
  if (at == INFS_TIME_NEVER) {
    uv_timer_stop(&s->timer);
    return;
  }
  uint64_t ms = at > now ? (at - now + INFS_US_PER_MS - 1) / INFS_US_PER_MS : 0;
  uv_timer_start(&s->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t) {
  shell_t *s = t->data;
  infs_time_t now = clock_us();
  core_on_tick(s->core, now);
  flush(s, now);
  arm_timer(s, now);
}

/* --- receiving --- */

/* Receives one routed message: [routing id][payload]. Returns 1 with both
 * filled, 0 when the socket has nothing, -1 for a malformed frame set. */
static int recv_routed(void *sock, core_peer_t *peer, zmq_msg_t *payload) {
  zmq_msg_t id;
  zmq_msg_init(&id);
  if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&id);
    return 0;
  }
  peer->door = CORE_DOOR_ZMQ;
  peer->len = (uint8_t)zmq_msg_size(&id);
  memcpy(peer->id, zmq_msg_data(&id), peer->len);
  zmq_msg_close(&id);
  int frames = 0;
  /* Keep the last frame; a well-formed message has exactly one. */
  while (zmq_msg_more(payload) || frames == 0) {
    if (frames > 0)
      zmq_msg_close(payload);
    zmq_msg_init(payload);
    if (zmq_msg_recv(payload, sock, 0) < 0)
      return -1;
    frames++;
    if (!zmq_msg_more(payload))
      break;
  }
  return frames == 1 ? 1 : -1;
}

static void bad_input(shell_t *s, void *sock, const core_peer_t *peer, int code,
                      const char *what) {
  s->bad_messages++;
  uint64_t n = log_limit_pass(&s->bad_log, clock_us(), INFS_US_PER_S);
  if (n)
    log_warn("bad message on %s socket: %s (%llu in this interval)",
             sock == s->clients ? "client" : "worker", what,
             (unsigned long long)n);
  send_error(s, sock, peer, 0, code, what);
}

/* Decodes payload; answers and returns NULL when it cannot. */
static Infsched__Envelope *decode(shell_t *s, void *sock,
                                  const core_peer_t *peer, zmq_msg_t *msg) {
  Infsched__Envelope *env;
  int rc = wire_unpack_in(s->arena, zmq_msg_data(msg), zmq_msg_size(msg), &env);
  if (rc == INFS_EVERSION) {
    char what[64];
    snprintf(what, sizeof what,
             "unsupported protocol version (this scheduler speaks %d)",
             WIRE_VERSION);
    bad_input(s, sock, peer, INFSCHED__ERROR_CODE__ERROR_BAD_VERSION, what);
  } else if (rc) {
    bad_input(s, sock, peer, INFSCHED__ERROR_CODE__ERROR_BAD_MESSAGE,
              "frame is not an infsched Envelope");
  }
  return env;
}

static void on_client_message(shell_t *s, infs_time_t now,
                              const core_peer_t *peer,
                              Infsched__Envelope *env) {
  char why[96];
  int rc = core_wire_feed_client(s->core, now, peer, env, why, sizeof why);
  if (rc == CORE_WIRE_STATUS) {
    Infsched__Envelope *reply =
        status_build(s->core, now, now - s->started, s->bad_messages,
                     zap_refused(s->zap));
    send_to(s, s->clients, peer, reply);
    status_free(reply);
  } else if (rc == CORE_WIRE_BAD) {
    bad_input(s, s->clients, peer, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST,
              why);
  }
}

/* A flood of registrations must not flood the log: a pool's start passes,
 * the rest is counted. A repeated Register (registrations did not move from
 * before) is answered and not news. */
static void log_register(shell_t *s, infs_time_t now,
                         const Infsched__Register *m, uint64_t before) {
  size_t n_acts;
  const core_action_t *a = core_actions(s->core, &n_acts);
  bool refused = n_acts && a[n_acts - 1].kind == CORE_ACT_WORKER_ERROR;
  if (!refused && core_stats(s->core)->registrations == before)
    return;
  uint64_t n = log_limit_burst(&s->register_log, now, INFS_US_PER_S, 64);
  if (!n)
    return;
  const char *held = n > 1 ? " after more registrations not logged" : "";
  if (refused) {
    log_warn("worker %s refused: %s%s", m->worker_id ? m->worker_id : "",
             a[n_acts - 1].message, held);
    return;
  }
  /* The figures the core predicts with: its profiles file's for the name
   * the worker gave (core_on_register), not what the worker said. */
  infs_profile_t said;
  wire_profile_from_msg(m->profile, &said);
  const infs_profile_t *profile =
      s->profiles ? profile_set_find(s->profiles, said.name) : NULL;
  if (!profile)
    profile = &said;
  log_info("worker %s registered (%s, %s, capacity %u)%s", m->worker_id,
           profile->name, infs_worker_class_name(profile->cls), m->capacity,
           held);
  for (size_t i = 0; i < n_acts; i++)
    if (a[i].kind == CORE_ACT_REGISTERED && a[i].message[0])
      log_warn("worker %s: %s", m->worker_id, a[i].message);
  /* The worker still serves; its requests of that class will miss. */
  char why[400];
  if (slo_check_profile(s->slo, profile, why, sizeof why))
    log_warn("worker %s: --slo: %s", m->worker_id ? m->worker_id : "", why);
}

static void on_worker_message(shell_t *s, infs_time_t now,
                              const core_peer_t *peer, const char *key,
                              Infsched__Envelope *env) {
  if (env->body_case == INFSCHED__ENVELOPE__BODY_CHUNK)
    s->in_body = env->chunk;
  else if (env->body_case == INFSCHED__ENVELOPE__BODY_DONE)
    s->in_body = env->done;
  char why[96];
  uint64_t registrations = core_stats(s->core)->registrations;
  int rc = core_wire_feed_worker(s->core, now, peer, key, env, why, sizeof why);
  if (rc == CORE_WIRE_BAD)
    bad_input(s, s->workers, peer, INFSCHED__ERROR_CODE__ERROR_BAD_REQUEST,
              why);
  else if (env->body_case == INFSCHED__ENVELOPE__BODY_REGISTER)
    log_register(s, now, env->register_, registrations);
}

/* Drains one socket; called by zwatch while it is readable. */
static void on_readable(void *sock, void *arg) {
  shell_t *s = arg;
  infs_time_t now = clock_us();
  core_peer_t peer;
  zmq_msg_t payload;
  for (;;) {
    zmq_msg_init(&payload);
    int rc = recv_routed(sock, &peer, &payload);
    if (rc == 0) {
      zmq_msg_close(&payload);
      break;
    }
    if (rc < 0) {
      zmq_msg_close(&payload);
      bad_input(s, sock, &peer, INFSCHED__ERROR_CODE__ERROR_BAD_MESSAGE,
                "expected one frame after the routing id");
      continue;
    }
    Infsched__Envelope *env = decode(s, sock, &peer, &payload);
    if (env) {
      s->in_frame = zmq_msg_data(&payload);
      s->in_frame_len = zmq_msg_size(&payload);
      /* The key the ZAP handler admitted the connection with. */
      const char *key =
          s->zap ? zmq_msg_gets(&payload, "User-Id") : NULL;
      if (sock == s->clients)
        on_client_message(s, now, &peer, env);
      else
        on_worker_message(s, now, &peer, key, env);
      /* Chunks and Dones are forwarded from env and its frame: flush
       * before letting go of them. */
      flush(s, now);
      s->in_body = NULL;
    }
    wire_arena_reset(s->arena);
    zmq_msg_close(&payload);
  }
  arm_timer(s, now);
}

/* --- life cycle --- */

/* domain: the socket's ZAP domain (ZAP_WORKERS, ZAP_CLIENTS), which
 * names the keys it admits. */
static int open_router(shell_t *s, const char *addr, const char *domain,
                       int64_t max_msg, void **out, char *err,
                       size_t errlen) {
  void *sock = zmq_socket(s->zctx, ZMQ_ROUTER);
  int one = 1, hwm = SEND_HWM, linger = SHUTDOWN_LINGER_MS;
  zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
  zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
  if (s->zap) {
    int rc = curve_server(sock, s->secret_key, err, errlen);
    if (!rc && zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)))
      rc = -errno;
    if (rc) {
      zmq_close(sock);
      return rc;
    }
  }
  if (zmq_bind(sock, addr) != 0) {
    int e = errno;
    snprintf(err, errlen, "cannot bind %s: %s", addr, zmq_strerror(e));
    zmq_close(sock);
    return -e;
  }
  *out = sock;
  return 0;
}

/* CURVE: the scheduler's key pair, the keys it admits and the ZAP handler
 * that admits them, all before a socket binds. */
static int start_auth(shell_t *s, const infs_auth_t *auth, char *err,
                      size_t errlen) {
  char dir[PATH_MAX], allowed[PATH_MAX + 32];
  int rc = curve_check(err, errlen);
  if (rc || (rc = curve_dir(auth, dir, sizeof dir, err, errlen)))
    return rc;
  if (auth->key) {
    snprintf(s->secret_key, sizeof s->secret_key, "%s", auth->key);
  } else {
    /* The local keys, so that workers and clients on this host find
     * theirs without being told. */
    if ((rc = curve_local_keys(dir, err, errlen)))
      return rc;
    if (strlen(dir) > sizeof s->secret_key - 32) {
      snprintf(err, errlen, "%s: path too long", dir);
      return -ENAMETOOLONG;
    }
    snprintf(s->secret_key, sizeof s->secret_key,
             "%.*s/" KEYS_SCHEDULER KEYS_SECRET_SUFFIX,
             (int)(sizeof s->secret_key - 32), dir);
  }
  snprintf(allowed, sizeof allowed, "%s/" KEYS_ALLOWED_WORKERS, dir);
  if (keyring_load(allowed, &s->admitted_workers, err, errlen))
    return INFS_ECONFIG;
  snprintf(allowed, sizeof allowed, "%s/" KEYS_ALLOWED_CLIENTS, dir);
  if (keyring_load(allowed, &s->admitted_clients, err, errlen))
    return INFS_ECONFIG;
  return zap_start(s->loop, s->zctx, s->admitted_workers, s->admitted_clients,
                   &s->zap, err, errlen);
}

size_t shell_keys_admitted(const shell_t *s, bool workers) {
  const keyring_t *k = workers ? s->admitted_workers : s->admitted_clients;
  return k ? keyring_count(k) : 0;
}

/* --- the HTTP front door: another client of the core --- */

static void on_http_submit(void *ctx, const core_peer_t *peer,
                           const core_request_t *q) {
  shell_t *s = ctx;
  infs_time_t now = clock_us();
  core_on_submit(s->core, now, peer, q);
  flush(s, now);
  arm_timer(s, now);
}

static void on_http_cancel(void *ctx, const core_peer_t *peer, uint64_t id) {
  shell_t *s = ctx;
  infs_time_t now = clock_us();
  if (s->stopping)
    return;
  core_on_cancel(s->core, now, peer, id);
  flush(s, now);
  arm_timer(s, now);
}

static int start_http(shell_t *s, const shell_config_t *cfg, char *err,
                      size_t errlen) {
  s->metrics = metrics_new(s->started);
  if (!cfg->http.addr)
    return 0;
  frontdoor_hooks_t hooks = {s, on_http_submit, on_http_cancel};
  frontdoor_config_t http = cfg->http;
  http.max_msg_bytes = (size_t)cfg->max_msg_bytes;
  return frontdoor_start(s->loop, &http, s->core, s->metrics, &hooks, &s->http,
                         err, errlen);
}

const char *shell_http_address(const shell_t *s) {
  return s->http ? frontdoor_address(s->http) : NULL;
}

int shell_start(uv_loop_t *loop, const shell_config_t *cfg, shell_t **out,
                char *err, size_t errlen) {
  int rc;
  shell_t *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->loop = loop;
  s->started = clock_us();
  s->heartbeat_ms = (uint32_t)(cfg->core.heartbeat_interval / INFS_US_PER_MS);
  memcpy(s->slo, cfg->core.slo, sizeof s->slo);
  s->profiles = cfg->core.profiles;
  s->arena = wire_arena_new();
  if (!s->arena) {
    free(s);
    return -ENOMEM;
  }
  s->core = core_new(&cfg->core, s->started, &rc);
  if (!s->core) {
    snprintf(err, errlen, "unknown policy '%s'", cfg->core.policy);
    wire_arena_destroy(&s->arena);
    free(s);
    return rc;
  }
  s->zctx = zmq_ctx_new();
  if (!cfg->auth.off && (rc = start_auth(s, &cfg->auth, err, errlen)))
    goto fail;
  rc = open_router(s, cfg->clients_addr, ZAP_CLIENTS, cfg->max_msg_bytes,
                   &s->clients, err,
                   errlen);
  if (rc)
    goto fail;
  rc = open_router(s, cfg->workers_addr, ZAP_WORKERS, cfg->max_msg_bytes,
                   &s->workers, err,
                   errlen);
  if (rc)
    goto fail;
  rc = start_http(s, cfg, err, errlen);
  if (rc)
    goto fail;
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  rc = zwatch_start(loop, s->clients, on_readable, s, &s->clients_watch);
  if (!rc)
    rc = zwatch_start(loop, s->workers, on_readable, s, &s->workers_watch);
  if (rc) {
    snprintf(err, errlen, "cannot watch sockets: %s", uv_strerror(rc));
    shell_stop(s);
    *out = s; /* the caller runs the loop to close what was opened */
    return rc;
  }
  *out = s;
  return 0;
fail:
  if (s->clients)
    zmq_close(s->clients);
  if (s->workers)
    zmq_close(s->workers);
  zap_destroy(&s->zap);
  keyring_destroy(&s->admitted_workers);
  keyring_destroy(&s->admitted_clients);
  metrics_destroy(&s->metrics);
  zmq_ctx_term(s->zctx);
  core_destroy(&s->core);
  wire_arena_destroy(&s->arena);
  free(s);
  return rc;
}

void shell_stop(shell_t *s) {
  if (s->stopping)
    return;
  s->stopping = true;
  infs_time_t now = clock_us();
  core_shutdown(s->core, now);
  flush(s, now);
  frontdoor_stop(s->http);
  zap_stop(s->zap);
  zwatch_close(s->clients_watch);
  zwatch_close(s->workers_watch);
  uv_close((uv_handle_t *)&s->timer, NULL);
}

void shell_destroy(shell_t **ps) {
  shell_t *s = *ps;
  if (!s)
    return;
  zmq_close(s->clients);
  zmq_close(s->workers);
  zap_destroy(&s->zap);
  zmq_ctx_term(s->zctx);
  keyring_destroy(&s->admitted_workers);
  keyring_destroy(&s->admitted_clients);
  core_destroy(&s->core);
  frontdoor_destroy(&s->http);
  metrics_destroy(&s->metrics);
  wire_buf_free(&s->out);
  wire_arena_destroy(&s->arena);
  free(s);
  *ps = NULL;
}
