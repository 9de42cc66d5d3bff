#include "loadgen.h"

#include "infsched/client.h"
#include "infsched/errors.h"
#include "cli.h"
#include "clock.h"
#include "log.h"
#include "report.h"
#include "report_html.h"
#include "wire.h"
#include "xalloc.h"
#include "prompt_text.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

/* WAIT: polling Status until the pool is there. RUN: sending on schedule.
 * DRAIN: all sent, waiting for answers. SNAPSHOT: waiting for the final
 * Status. DONE: closing. Each phase only moves forward. */
enum phase { PHASE_WAIT, PHASE_RUN, PHASE_DRAIN, PHASE_SNAPSHOT, PHASE_DONE };

enum track_state { TRACK_SENT, TRACK_ACCEPTED, TRACK_ENDED };

/* One sent request. Its wire id is its index + 1, so answers need no map. */
typedef struct track {
  uint64_t workload_id;
  uint64_t intended_ns; /* clock_ns() when it was due, not when it left */
  uint64_t first_ns;    /* first token; 0 before */
  uint32_t prompt_tokens;
  uint32_t chunk_tokens; /* tokens counted from chunks */
  slo_t slo;
  uint8_t cls;
  uint8_t state;
} track_t;

enum { POOL_COST, POOL_BUSY, POOL_UP, POOL_N };

/* A worker's heartbeat figures (cost, busy and up seconds since it started)
 * at the start of the run and as last seen; acc keeps what it had reached
 * before a restart reset them. */
typedef struct pool_worker {
  char *id;
  char *cls;
  infs_role_t role; /* as its last Status said */
  double base[POOL_N];
  double last[POOL_N];
  double acc[POOL_N];
} pool_worker_t;

typedef struct loadgen {
  const loadgen_config_t *cfg;
  prompt_text_t text; /* the prompt of the request being sent */
  workload_t *w;
  uv_loop_t loop;
  void *zctx;
  client_t *client;
  uv_timer_t arrivals;
  uv_timer_t status;   /* Status polls */
  uv_timer_t deadline; /* the current phase's time limit; in RUN, the
                          workload's end time */
  uv_timer_t finish;   /* runs finish() outside the socket's callbacks */
  uv_timer_t progress;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  enum phase phase;
  uint64_t start_ns;
  uint64_t last_event_ns; /* last send or terminal answer */
  track_t *tracks;
  size_t n_tracks;
  size_t cap_tracks;
  uint64_t outstanding;
  uint64_t completed;
  uint64_t failed;
  uint64_t rejected;
  uint64_t unexpected; /* answers for unknown or finished requests */
  uint64_t progress_sent;
  uint64_t max_lag_ns; /* worst lateness of a send against its schedule */
  uint32_t pool_size;  /* workers in the last Status */
  bool answered;       /* a Status came back: the scheduler is there */
  char *policy;
  pool_worker_t *pool;
  size_t n_pool;
  report_t *report;
  log_limit_t answer_log;
  int exit_code;
} loadgen_t;

static void begin_run(loadgen_t *g);
static void begin_drain(loadgen_t *g);
static void begin_snapshot(loadgen_t *g);
static void schedule_finish(loadgen_t *g);
static void arm_arrivals(loadgen_t *g);

/* --- the pool --- */

static pool_worker_t *pool_get(loadgen_t *g, const char *id, const char *cls,
                               bool *fresh) {
  for (size_t i = 0; i < g->n_pool; i++) {
    if (strcmp(g->pool[i].id, id) == 0) {
      *fresh = false;
      return &g->pool[i];
    }
  }
  g->pool = xrealloc(g->pool, (g->n_pool + 1) * sizeof *g->pool);
  pool_worker_t *p = &g->pool[g->n_pool++];
  memset(p, 0, sizeof *p);
  p->id = xstrdup(id);
  p->cls = xstrdup(cls ? cls : "");
  *fresh = true;
  return p;
}

static void pool_update(loadgen_t *g, const Infsched__Status *st) {
  bool before_run = g->phase == PHASE_WAIT;
  for (size_t i = 0; i < st->n_workers; i++) {
    const Infsched__WorkerStatus *ws = st->workers[i];
    const Infsched__Heartbeat *hb = ws->last_heartbeat;
    double v[POOL_N] = {hb ? hb->cost_usd : 0, hb ? hb->busy_s : 0,
                        hb ? hb->up_s : 0};
    bool fresh;
    pool_worker_t *p = pool_get(g, ws->worker_id, ws->worker_class, &fresh);
    if (wire_role_from_msg(ws->role, &p->role))
      p->role = INFS_ROLE_BOTH;
    if (before_run) {
      memcpy(p->base, v, sizeof v);
    } else if (fresh) {
      /* Joined during the run: everything it cost falls inside it. */
      memset(p->base, 0, sizeof p->base);
    } else if (v[POOL_UP] < p->last[POOL_UP]) {
      /* Restarted: its counters began again from zero. */
      for (int k = 0; k < POOL_N; k++)
        p->acc[k] += p->last[k] - p->base[k];
      memset(p->base, 0, sizeof p->base);
    }
    memcpy(p->last, v, sizeof v);
  }
}

/* --- answers --- */

static track_t *track_of(loadgen_t *g, uint64_t id, const char *what) {
  if (id >= 1 && id <= g->n_tracks && g->tracks[id - 1].state != TRACK_ENDED)
    return &g->tracks[id - 1];
  g->unexpected++;
  if (log_limit_pass(&g->answer_log, clock_us(), 5 * INFS_US_PER_S))
    log_warn("%s for %s request %llu", what,
             id >= 1 && id <= g->n_tracks ? "finished" : "unknown",
             (unsigned long long)id);
  return NULL;
}

/* Common end of every request that got a terminal answer. */
static void track_end(loadgen_t *g, track_t *t, const report_outcome_t *o,
                      uint64_t now_ns) {
  t->state = TRACK_ENDED;
  g->outstanding--;
  g->last_event_ns = now_ns;
  report_add(g->report, o);
  workload_on_done(g->w, t->workload_id, (now_ns - g->start_ns) / 1000,
                   o->status == REPORT_COMPLETED, o->generated_tokens);
  if (g->phase == PHASE_RUN)
    arm_arrivals(g); /* a closed loop may have a turn due now */
  if (g->phase == PHASE_DRAIN && g->outstanding == 0)
    begin_snapshot(g);
}

static void on_accepted(void *arg, uint64_t id) {
  loadgen_t *g = arg;
  track_t *t = track_of(g, id, "Accepted");
  if (t)
    t->state = TRACK_ACCEPTED;
}

static void on_chunk(void *arg, const Infsched__Chunk *c) {
  loadgen_t *g = arg;
  track_t *t = track_of(g, c->request_id, "Chunk");
  if (!t)
    return;
  if (c->tokens > 0 && t->first_ns == 0)
    t->first_ns = clock_ns();
  t->chunk_tokens += c->tokens;
}

static void on_done(void *arg, const Infsched__Done *d) {
  loadgen_t *g = arg;
  track_t *t = track_of(g, d->request_id, "Done");
  if (!t)
    return;
  uint64_t now = clock_ns();
  const Infsched__Usage *u = d->usage;
  report_outcome_t o = {
      .cls = (infs_class_t)t->cls,
      .status = REPORT_COMPLETED,
      .prompt_tokens =
          u && u->prompt_tokens ? u->prompt_tokens : t->prompt_tokens,
      .cached_tokens = u ? u->cached_tokens : 0,
      .generated_tokens =
          u && u->generated_tokens ? u->generated_tokens : t->chunk_tokens,
      .ttft = ((t->first_ns ? t->first_ns : now) - t->intended_ns) / 1000,
      .e2e = (now - t->intended_ns) / 1000,
      .slo = t->slo,
      .cost_usd = d->cost_usd,
      .worker_id = d->worker_id,
      .worker_class = d->worker_class,
      .done_at = (now - g->start_ns) / 1000,
  };
  report_phases_from_done(d, &o.phases);
  g->completed++;
  track_end(g, t, &o, now);
}

static void on_error(void *arg, const Infsched__Error *e) {
  loadgen_t *g = arg;
  track_t *t = track_of(g, e->request_id, wire_error_name(e->code));
  if (!t)
    return;
  uint64_t now = clock_ns();
  bool rejected = wire_error_is_rejection(e->code);
  report_outcome_t o = {
      .cls = (infs_class_t)t->cls,
      .status = rejected ? REPORT_REJECTED : REPORT_FAILED,
      .slo = t->slo,
      .error = wire_error_name(e->code),
      .done_at = (now - g->start_ns) / 1000,
  };
  if (rejected)
    g->rejected++;
  else
    g->failed++;
  /* Rejections are an answer the report counts; failures deserve a look. */
  if (rejected)
    log_debug("request %llu: %s: %s", (unsigned long long)e->request_id,
              wire_error_name(e->code), e->message);
  else if (log_limit_pass(&g->answer_log, clock_us(), 5 * INFS_US_PER_S))
    log_warn("request %llu failed: %s: %s", (unsigned long long)e->request_id,
             wire_error_name(e->code), e->message);
  track_end(g, t, &o, now);
}

/* One point of the queue-depth series, while requests are in play. */
static void sample_pool(loadgen_t *g, const Infsched__Status *st) {
  report_sample_t s = {
      .t = (clock_ns() - g->start_ns) / 1000,
      .queued = st->queued,
      .open = (uint32_t)g->outstanding,
  };
  for (size_t i = 0; i < st->n_workers; i++) {
    const Infsched__Heartbeat *hb = st->workers[i]->last_heartbeat;
    if (hb) {
      s.worker_queued += hb->queued;
      s.running += hb->running;
    }
  }
  report_add_sample(g->report, &s);
  for (size_t i = 0; i < st->n_workers; i++) {
    const Infsched__WorkerStatus *ws = st->workers[i];
    const Infsched__Heartbeat *hb = ws->last_heartbeat;
    report_worker_sample_t w = {
        .t = s.t,
        .id = ws->worker_id,
        .cls = ws->worker_class,
        .outstanding = ws->outstanding,
        .busy_s = hb ? hb->busy_s : 0,
        .cost_usd = hb ? hb->cost_usd : 0,
    };
    report_add_worker_sample(g->report, &w);
  }
}

/* The pool the run starts on, by profile, for the report's settings. */
static void record_pool(loadgen_t *g, const Infsched__Status *st) {
  const char **profiles = xcalloc(st->n_workers + 1, sizeof *profiles);
  for (size_t i = 0; i < st->n_workers; i++)
    profiles[i] = st->workers[i]->profile ? st->workers[i]->profile : "?";
  report_set_count_setting(g->report, "pool", profiles, st->n_workers);
  free(profiles);
}

static void on_status(void *arg, const Infsched__Status *st) {
  loadgen_t *g = arg;
  if (g->phase == PHASE_DONE)
    return;
  if (g->phase != PHASE_WAIT)
    sample_pool(g, st);
  g->pool_size = (uint32_t)st->n_workers;
  g->answered = true;
  if (!g->policy && st->policy && *st->policy)
    g->policy = xstrdup(st->policy);
  pool_update(g, st);
  if (g->phase == PHASE_WAIT && g->pool_size >= g->cfg->wait_workers) {
    record_pool(g, st);
    begin_run(g);
  }
  else if (g->phase == PHASE_SNAPSHOT)
    schedule_finish(g);
}

/* --- sending --- */

static void send_one(loadgen_t *g, const workload_req_t *r, uint64_t now_ns) {
  if (g->n_tracks == g->cap_tracks) {
    g->cap_tracks = g->cap_tracks ? g->cap_tracks * 2 : 1024;
    g->tracks = xrealloc(g->tracks, g->cap_tracks * sizeof *g->tracks);
  }
  track_t *t = &g->tracks[g->n_tracks++];
  *t = (track_t){
      .workload_id = r->id,
      .intended_ns = g->start_ns + r->arrival * 1000,
      .prompt_tokens = r->prompt_tokens,
      .slo = r->slo,
      .cls = (uint8_t)r->cls,
      .state = TRACK_SENT,
  };
  if (now_ns > t->intended_ns && now_ns - t->intended_ns > g->max_lag_ns)
    g->max_lag_ns = now_ns - t->intended_ns;
  client_request_t req = {
      .id = g->n_tracks,
      .model = g->cfg->model,
      .prompt_tokens = r->prompt_tokens,
      .max_tokens = r->max_tokens,
      .cls = r->cls,
      .ttft_ms = r->slo.ttft_ms,
      .ttft_ms_per_ktok = r->slo.ttft_ms_per_ktok,
      .tpot_ms = r->slo.tpot_ms,
      .session = r->session,
      .blocks = r->blocks,
      .n_blocks = r->n_blocks,
  };
  if (g->cfg->chars_per_token > 0) {
    req.prompt = prompt_text_build(&g->text, r->blocks, r->n_blocks,
                                   g->cfg->block_size, r->prompt_tokens,
                                   g->cfg->chars_per_token, r->id);
  }
  g->outstanding++;
  g->last_event_ns = now_ns;
  if (g->cfg->record)
    workload_recorder_add(g->cfg->record, r);
  int rc = client_submit(g->client, &req);
  if (rc) {
    /* Counted as a failure so the books still balance. */
    log_error("request %llu not sent: %s", (unsigned long long)req.id,
              infs_strerror(rc));
    report_outcome_t o = {.cls = r->cls,
                          .status = REPORT_FAILED,
                          .slo = r->slo,
                          .error = "send_failed",
                          .done_at = (now_ns - g->start_ns) / 1000};
    g->failed++;
    track_end(g, t, &o, now_ns);
  }
}

/* Sends everything due, then sleeps until the next arrival. A burst is cut
 * into slices so answers keep being read while it goes out. */
static void on_arrivals(uv_timer_t *h) {
  loadgen_t *g = h->data;
  if (g->phase != PHASE_RUN)
    return;
  workload_req_t r;
  uint64_t now_ns = clock_ns();
  infs_time_t now = (now_ns - g->start_ns) / 1000;
  int sent = 0;
  while (sent < 1000 && workload_pop(g->w, now, &r) == 0) {
    send_one(g, &r, now_ns);
    sent++;
  }
  if (g->phase == PHASE_RUN)
    arm_arrivals(g);
}

static void arm_arrivals(loadgen_t *g) {
  if (workload_finished(g->w)) {
    begin_drain(g);
    return;
  }
  infs_time_t next = workload_next_time(g->w);
  if (next == INFS_TIME_NEVER) {
    /* A closed loop waiting for answers: track_end arms again. */
    uv_timer_stop(&g->arrivals);
    return;
  }
  uv_update_time(&g->loop);
  infs_time_t now = (clock_ns() - g->start_ns) / 1000;
  uint64_t delay_ms = next > now ? (next - now + 999) / 1000 : 0;
  uv_timer_start(&g->arrivals, on_arrivals, delay_ms, 0);
}

/* --- phases --- */

static void on_status_poll(uv_timer_t *h) {
  loadgen_t *g = h->data;
  int rc = client_query_status(g->client);
  if (rc)
    log_warn("status query not sent: %s", infs_strerror(rc));
}

static void on_deadline(uv_timer_t *h) {
  loadgen_t *g = h->data;
  switch (g->phase) {
  case PHASE_WAIT:
    /* Nothing has been sent: a run against nobody would only report every
     * request lost. */
    if (!g->answered)
      log_error("the scheduler at %s is unreachable: no answer to a status "
                "query in %.1f s; nothing was sent",
                g->cfg->scheduler,
                g->cfg->wait_workers ? g->cfg->wait_timeout_s
                                     : g->cfg->status_timeout_s);
    else
      log_error("%u of %u workers registered after %.0f s; nothing was sent",
                g->pool_size, g->cfg->wait_workers, g->cfg->wait_timeout_s);
    g->exit_code = CLI_EXIT_STARTUP;
    schedule_finish(g);
    break;
  case PHASE_RUN:
    /* A closed loop may still wait for answers when its time is up. */
    log_debug("workload end time reached; draining");
    begin_drain(g);
    break;
  case PHASE_DRAIN:
    log_warn("drain: %llu requests without an answer after %g s",
             (unsigned long long)g->outstanding, g->cfg->drain_s);
    begin_snapshot(g);
    break;
  case PHASE_SNAPSHOT:
    log_warn("no final Status; pool cost uses the last one seen");
    schedule_finish(g);
    break;
  default:
    break;
  }
}

static uint64_t secs_ms(double s) {
  return (uint64_t)llround(s * 1000.0);
}

static void begin_run(loadgen_t *g) {
  g->phase = PHASE_RUN;
  uv_timer_stop(&g->deadline);
  g->start_ns = g->last_event_ns = clock_ns();
  log_info("sending %s to %s (%u workers, policy %s)", workload_name(g->w),
           g->cfg->scheduler, g->pool_size,
           g->cfg->policy_label ? g->cfg->policy_label
           : g->policy          ? g->policy
                                : "unknown");
  /* Polling through the run keeps the last figures of a worker that leaves
   * before the end. */
  uv_timer_start(&g->status, on_status_poll, 1000, 1000);
  infs_time_t end = workload_end_time(g->w);
  if (end != INFS_TIME_NEVER)
    uv_timer_start(&g->deadline, on_deadline, (end + 999) / 1000 + 2, 0);
  uv_timer_start(&g->arrivals, on_arrivals, 0, 0);
}

static void begin_drain(loadgen_t *g) {
  g->phase = PHASE_DRAIN;
  uv_timer_stop(&g->arrivals);
  if (g->outstanding == 0) {
    begin_snapshot(g);
    return;
  }
  uv_timer_start(&g->deadline, on_deadline, secs_ms(g->cfg->drain_s), 0);
}

static void begin_snapshot(loadgen_t *g) {
  g->phase = PHASE_SNAPSHOT;
  uv_timer_stop(&g->arrivals);
  uv_timer_stop(&g->status);
  on_status_poll(&g->status);
  uv_timer_start(&g->deadline, on_deadline, secs_ms(g->cfg->status_timeout_s),
                 0);
}

static void on_close(uv_handle_t *h) {
  (void)h;
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_close);
}

static void progress_clear(loadgen_t *g) {
  if (g->cfg->progress)
    fprintf(stderr, "\r%-72s\r", "");
}

/* Accounts for the requests still open, then closes every handle so that
 * uv_run returns. */
static void on_finish(uv_timer_t *h) {
  loadgen_t *g = h->data;
  if (g->phase == PHASE_DONE)
    return;
  g->phase = PHASE_DONE;
  progress_clear(g);
  for (size_t i = 0; i < g->n_tracks; i++) {
    track_t *t = &g->tracks[i];
    if (t->state == TRACK_ENDED)
      continue;
    report_outcome_t o = {.cls = (infs_class_t)t->cls,
                          .status = REPORT_LOST,
                          .slo = t->slo};
    report_add(g->report, &o);
    t->state = TRACK_ENDED;
    /* Best effort: frees the scheduler from work nobody waits for. */
    client_cancel(g->client, i + 1);
  }
  for (size_t i = 0; i < g->n_pool; i++) {
    const pool_worker_t *p = &g->pool[i];
    double d[POOL_N];
    for (int k = 0; k < POOL_N; k++)
      d[k] = p->acc[k] + p->last[k] - p->base[k];
    report_add_worker(g->report, p->id, p->cls, d[POOL_COST], d[POOL_BUSY],
                      d[POOL_UP]);
    report_set_worker_role(g->report, p->id, infs_role_name(p->role));
  }
  if (g->start_ns)
    report_set_window(g->report, (g->last_event_ns - g->start_ns) / 1000);
  report_set_policy(g->report,
                    g->cfg->policy_label ? g->cfg->policy_label : g->policy);
  report_set_setting(g->report, "scheduler", g->cfg->scheduler);
  if (g->cfg->flags)
    workload_cli_report_settings(g->cfg->flags, g->report);

  close_handle((uv_handle_t *)&g->arrivals);
  close_handle((uv_handle_t *)&g->status);
  close_handle((uv_handle_t *)&g->deadline);
  close_handle((uv_handle_t *)&g->finish);
  close_handle((uv_handle_t *)&g->progress);
  close_handle((uv_handle_t *)&g->sigint);
  close_handle((uv_handle_t *)&g->sigterm);
  client_destroy(&g->client, 200);
}

static void schedule_finish(loadgen_t *g) {
  if (g->phase != PHASE_DONE)
    uv_timer_start(&g->finish, on_finish, 0, 0);
}

/* Each signal moves one phase on: stop sending, stop draining, stop. */
static void on_signal(uv_signal_t *h, int signum) {
  loadgen_t *g = h->data;
  log_info("%s: %s", strsignal(signum),
           g->phase == PHASE_RUN     ? "stopping sends, draining"
           : g->phase == PHASE_DRAIN ? "stopping the drain"
                                     : "stopping");
  switch (g->phase) {
  case PHASE_RUN:
    begin_drain(g);
    break;
  case PHASE_DRAIN:
    begin_snapshot(g);
    break;
  default:
    if (g->phase == PHASE_WAIT)
      g->exit_code = 1;
    schedule_finish(g);
    break;
  }
}

static void on_progress(uv_timer_t *h) {
  loadgen_t *g = h->data;
  if (g->phase == PHASE_WAIT) {
    fprintf(stderr, "\rwaiting for workers: %u of %u", g->pool_size,
            g->cfg->wait_workers);
    return;
  }
  uint64_t sent = g->n_tracks;
  fprintf(
      stderr, "\rsent %llu  done %llu  errors %llu  open %llu  %.0f req/s   ",
      (unsigned long long)sent, (unsigned long long)g->completed,
      (unsigned long long)(g->failed + g->rejected),
      (unsigned long long)g->outstanding, (double)(sent - g->progress_sent));
  g->progress_sent = sent;
}

/* --- the run --- */

static void init_handles(loadgen_t *g) {
  uv_timer_t *timers[] = {&g->arrivals, &g->status, &g->deadline, &g->finish,
                          &g->progress};
  for (size_t i = 0; i < sizeof timers / sizeof *timers; i++) {
    uv_timer_init(&g->loop, timers[i]);
    timers[i]->data = g;
  }
  uv_signal_init(&g->loop, &g->sigint);
  uv_signal_init(&g->loop, &g->sigterm);
  g->sigint.data = g->sigterm.data = g;
  uv_signal_start(&g->sigint, on_signal, SIGINT);
  uv_signal_start(&g->sigterm, on_signal, SIGTERM);
}

static int open_client(loadgen_t *g) {
  int rc;
  g->zctx = zmq_ctx_new();
  if (!g->zctx)
    return -errno;
  static const client_events_t events = {
      .on_accepted = on_accepted,
      .on_chunk = on_chunk,
      .on_done = on_done,
      .on_error = on_error,
      .on_status = on_status,
  };
  rc = client_new(&g->loop, g->zctx, g->cfg->scheduler, &g->cfg->auth, &events,
                  g, &g->client);
  if (rc) {
    log_error("%s: %s", g->cfg->scheduler, infs_strerror(rc));
    return rc;
  }
  return 0;
}

static void start(loadgen_t *g) {
  const loadgen_config_t *cfg = g->cfg;
  g->phase = PHASE_WAIT;
  double limit =
      cfg->wait_workers ? cfg->wait_timeout_s : cfg->status_timeout_s;
  if (cfg->wait_workers)
    log_info("waiting for %u worker(s) at %s", cfg->wait_workers,
             cfg->scheduler);
  uv_timer_start(&g->status, on_status_poll, 0, 250);
  uv_timer_start(&g->deadline, on_deadline, secs_ms(limit), 0);
  if (cfg->progress)
    uv_timer_start(&g->progress, on_progress, 1000, 1000);
}

int loadgen_run(const loadgen_config_t *cfg, workload_t *w) {
  loadgen_t g = {.cfg = cfg, .w = w, .exit_code = 0};
  g.report = report_new();
  if (!g.report || uv_loop_init(&g.loop)) {
    report_destroy(&g.report);
    return 1;
  }
  init_handles(&g);
  int rc = open_client(&g);
  if (rc) {
    /* Close the handles so the loop closes cleanly. */
    g.exit_code = cli_start_status(rc);
    on_finish(&g.finish);
  } else {
    start(&g);
  }
  uv_run(&g.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&g.loop))
    log_warn("event loop closed with handles open");
  if (g.zctx)
    zmq_ctx_term(g.zctx);

  if (rc == 0 && g.start_ns) {
    report_print(g.report, stdout);
    fflush(stdout);
    if (cfg->report_json) {
      int wrc = report_write_json(g.report, cfg->report_json);
      if (wrc) {
        log_error("%s: %s", cfg->report_json, infs_strerror(wrc));
        g.exit_code = 1;
      }
    }
    if (cfg->report_html) {
      int wrc = report_html_write(g.report, cfg->title, cfg->report_html);
      if (wrc) {
        log_error("%s: %s", cfg->report_html, infs_strerror(wrc));
        g.exit_code = 1;
      }
    }
    report_requests_t q;
    report_requests(g.report, -1, &q);
    if (q.lost) {
      log_error("%llu of %llu requests lost (no terminal answer)",
                (unsigned long long)q.lost, (unsigned long long)q.sent);
      g.exit_code = 1;
    }
    if (g.unexpected)
      log_warn("%llu answers for unknown or finished requests",
               (unsigned long long)g.unexpected);
    if (g.max_lag_ns > 10 * 1000000ull)
      log_warn("sends fell up to %.1f ms behind schedule; latencies count "
               "from the intended time",
               (double)g.max_lag_ns / 1e6);
  }
  for (size_t i = 0; i < g.n_pool; i++) {
    free(g.pool[i].id);
    free(g.pool[i].cls);
  }
  free(g.pool);
  free(g.tracks);
  prompt_text_free(&g.text);
  free(g.policy);
  report_destroy(&g.report);
  return g.exit_code;
}
