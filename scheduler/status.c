#include "status.h"

#include "xalloc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* Core counters sent as Status.counters, besides the outcomes. */
static const struct {
  const char *name;
  size_t offset;
} counters[] = {
    {"dispatched", offsetof(core_stats_t, dispatched)},
    {"redispatched", offsetof(core_stats_t, redispatched)},
    {"migrated", offsetof(core_stats_t, migrated)},
    {"adopted", offsetof(core_stats_t, adopted)},
    {"resubmitted", offsetof(core_stats_t, resubmitted)},
    {"abandoned", offsetof(core_stats_t, abandoned)},
    {"cancelled", offsetof(core_stats_t, cancelled)},
    {"workers_lost", offsetof(core_stats_t, workers_lost)},
    {"progress_timeouts", offsetof(core_stats_t, progress_timeouts)},
    {"profile_mismatches", offsetof(core_stats_t, profile_mismatches)},
    {"id_takeovers_refused", offsetof(core_stats_t, id_takeovers_refused)},
    {"id_key_refused", offsetof(core_stats_t, id_key_refused)},
    {"rejected.queue_full", offsetof(core_stats_t, rejected_queue_full)},
    {"rejected.no_worker", offsetof(core_stats_t, rejected_no_worker)},
    {"rejected.context", offsetof(core_stats_t, rejected_context)},
    {"rejected.queue_timeout", offsetof(core_stats_t, rejected_queue_timeout)},
    {"rejected.unavailable", offsetof(core_stats_t, rejected_unavailable)},
    {"prefix.blocks_routed", offsetof(core_stats_t, blocks_routed)},
    {"prefix.cached_blocks_routed",
     offsetof(core_stats_t, cached_blocks_routed)},
    {"prefix.adds_dropped", offsetof(core_stats_t, cache_adds_dropped)},
    {"session.kept", offsetof(core_stats_t, session_kept)},
    {"session.moved", offsetof(core_stats_t, session_moved)},
    {"placement_attempts", offsetof(core_stats_t, placement_attempts)},
    {"split", offsetof(core_stats_t, split)},
    {"split.prefilled", offsetof(core_stats_t, prefilled)},
    {"split.decoded", offsetof(core_stats_t, split_decoded)},
    {"split.kv_fallbacks", offsetof(core_stats_t, kv_fallbacks)},
};
/* The shell's own: handshakes_refused. */
#define N_COUNTERS (sizeof counters / sizeof *counters + CORE_OUTCOME_COUNT + 1)

/* Everything a Status holds, in one allocation freed by status_free. */
typedef struct status_storage {
  Infsched__Envelope env;
  Infsched__Status status;
  size_t n;
  Infsched__WorkerStatus *workers;
  Infsched__WorkerStatus **worker_ptrs;
  Infsched__Heartbeat *beats;
  Infsched__Counter counters[N_COUNTERS];
  Infsched__Counter *counter_ptrs[N_COUNTERS];
  char outcome_names[CORE_OUTCOME_COUNT][40];
} status_storage_t;

Infsched__Envelope *status_build(const core_t *core, infs_time_t now,
                                 infs_time_t uptime,
                                 uint64_t bad_messages,
                                 uint64_t handshakes_refused) {
  status_storage_t *st = xcalloc(1, sizeof *st);
  size_t n = core_worker_count(core);
  st->n = n;
  st->workers = xcalloc(n, sizeof *st->workers);
  st->worker_ptrs = xcalloc(n, sizeof *st->worker_ptrs);
  st->beats = xcalloc(n, sizeof *st->beats);
  size_t cursor = 0;
  for (size_t i = 0; i < n; i++) {
    core_worker_view_t v;
    if (core_worker_next(core, &cursor, &v))
      break;
    Infsched__WorkerStatus *w = &st->workers[i];
    Infsched__Heartbeat *hb = &st->beats[i];
    infsched__worker_status__init(w);
    infsched__heartbeat__init(hb);
    w->worker_id = (char *)v.worker_id;
    w->worker_class = (char *)infs_worker_class_name(v.profile->cls);
    w->profile = (char *)v.profile->name;
    w->model = (char *)v.model;
    w->outstanding = v.outstanding;
    w->capacity = v.capacity;
    w->requests = v.requests;
    w->price_per_hour = v.profile->price_per_hour;
    w->cached_blocks = v.cached_blocks;
    w->role = (Infsched__Role)v.role;
    w->registered_ms_ago =
        now > v.registered_at ? (now - v.registered_at) / INFS_US_PER_MS : 0;
    hb->worker_id = (char *)v.worker_id;
    hb->queued = v.load->queued;
    hb->running = v.load->running;
    hb->kv_used = v.load->kv_used;
    hb->kv_total = v.load->kv_total;
    hb->prefill_backlog_tokens = v.load->prefill_backlog_tokens;
    hb->tokens_per_s = v.load->tokens_per_s;
    hb->cost_usd = v.load->cost_usd;
    hb->busy_s = v.load->busy_s;
    hb->up_s = v.load->up_s;
    hb->unhealthy = v.load->unhealthy;
    hb->draining = v.load->draining;
    w->last_heartbeat = hb;
    st->worker_ptrs[i] = w;
  }
  const core_stats_t *cs = core_stats(core);
  infsched__status__init(&st->status);
  size_t k = 0;
  for (int o = 0; o < CORE_OUTCOME_COUNT; o++, k++) {
    snprintf(st->outcome_names[o], sizeof st->outcome_names[o], "outcome.%s",
             core_outcome_name((core_outcome_t)o));
    infsched__counter__init(&st->counters[k]);
    st->counters[k].name = st->outcome_names[o];
    st->counters[k].value = cs->outcomes[o];
  }
  for (size_t i = 0; i < sizeof counters / sizeof *counters; i++, k++) {
    infsched__counter__init(&st->counters[k]);
    st->counters[k].name = (char *)counters[i].name;
    st->counters[k].value =
        *(const uint64_t *)((const char *)cs + counters[i].offset);
  }
  infsched__counter__init(&st->counters[k]);
  st->counters[k].name = "handshakes_refused";
  st->counters[k++].value = handshakes_refused;
  for (size_t i = 0; i < k; i++)
    st->counter_ptrs[i] = &st->counters[i];
  st->status.n_counters = k;
  st->status.counters = st->counter_ptrs;
  st->status.n_workers = n;
  st->status.workers = st->worker_ptrs;
  st->status.queued = (uint32_t)core_queued(core);
  st->status.submitted = cs->submitted;
  st->status.completed = cs->completed;
  st->status.failed = cs->failed;
  st->status.rejected = cs->rejected;
  st->status.bad_messages = bad_messages;
  st->status.policy = (char *)core_policy_name(core);
  st->status.uptime_ms = uptime / 1000;
  infsched__envelope__init(&st->env);
  st->env.body_case = INFSCHED__ENVELOPE__BODY_STATUS;
  st->env.status = &st->status;
  return &st->env;
}

void status_free(Infsched__Envelope *env) {
  /* env is the first member of its storage. */
  status_storage_t *st = (status_storage_t *)env;
  free(st->workers);
  free(st->worker_ptrs);
  free(st->beats);
  free(st);
}
