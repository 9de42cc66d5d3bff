/* Decision time of the pure scheduling core: every policy choosing among
 * pools of 16, 256 and 4,096 workers. The core is driven as the daemon
 * drives it: workers register with profiles from configs/profiles.yaml
 * (gpu, sram and tpu in turn), report load and prefix-cache contents in a
 * heartbeat, carry a background of running requests, and then each timed
 * decision is a core_on_submit (which dispatches at once) plus the
 * core_on_done that ends it, so the pool's state does not drift. */
#include "bench.h"
#include "infsched/profile.h"
#include "clock.h"
#include "xalloc.h"
#include "step.h"
#include "cli.h"
#include "core.h"
#include "policy.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef INFSCHED_SOURCE_DIR
#define INFSCHED_SOURCE_DIR "."
#endif

#define MAX_SIZES 8
#define MAX_POOL 65536
/* Prompt prefixes shared by many requests (repositories, system prompts),
 * each a chain of block hashes; a worker caches a few of them. */
#define FAMILIES 64
#define FAMILY_BLOCKS 64
#define CACHED_FAMILIES 4
#define SESSIONS 1024
/* Distinct requests cycled through, so their generation is not timed. */
#define REQUESTS 4096
#define BACKGROUND_PER_WORKER 4
#define STEP_US 50

typedef struct options {
  const char *profiles;
  const char *policy; /* NULL: every policy */
  uint32_t sizes[MAX_SIZES];
  size_t n_sizes;
  uint32_t batch;
  double seconds;
  uint64_t seed;
} options_t;

typedef struct spec {
  core_request_t req;
  uint64_t blocks[FAMILY_BLOCKS];
  char session[16];
} spec_t;

typedef struct result {
  double median_us;
  double p99_us;
  double mean_us;
  uint64_t decisions;
  uint64_t not_placed; /* queued or rejected instead of dispatched */
  double cached_share; /* prompt blocks routed to a worker caching them */
  uint64_t background; /* requests left running during the timing */
} result_t;

static void usage(FILE *f) {
  fprintf(f,
          "Usage: bench_decision [OPTION]...\n"
          "Times the scheduling core's decisions: for each policy and pool "
          "size, the\n"
          "median and p99 time of one core_on_submit (dispatching at once) "
          "plus the\n"
          "core_on_done that ends the request, measured over batches with "
          "clock_gettime.\n"
          "\n"
          "  --workers LIST    pool sizes, comma-separated (default "
          "16,256,4096)\n"
          "  --policy NAME     only this policy (default: every policy)\n"
          "  --seconds S       timed seconds per policy and size (default "
          "1)\n"
          "  --batch N         decisions per clock reading (default 32)\n"
          "  --seed N          random seed of loads, caches and requests "
          "(default 1)\n"
          "  --profiles FILE   profiles file (default %s/configs/"
          "profiles.yaml)\n"
          "  --help            this text\n"
          "\n"
          "Policies:",
          INFSCHED_SOURCE_DIR);
  for (const policy_ops_t *const *p = policy_all(); *p; p++)
    fprintf(f, " %s", (*p)->name);
  fprintf(f, "\n");
}

static int parse_sizes(const char *list, options_t *o) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", list);
  o->n_sizes = 0;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    if (o->n_sizes == MAX_SIZES)
      return cli_usage_error("--workers: at most %d sizes", MAX_SIZES);
    if (cli_u32("--workers", tok, 1, MAX_POOL, &o->sizes[o->n_sizes++]))
      return -1;
  }
  if (o->n_sizes == 0)
    return cli_usage_error("--workers: expected sizes, got '%s'", list);
  return 0;
}

static int parse_one(void *ctx, int c, const char *arg) {
  options_t *o = ctx;
  int rc = 0;
  switch (c) {
  case 'w':
    rc = parse_sizes(arg, o);
    break;
  case 'p':
    if (!policy_find(arg))
      rc = cli_usage_error("--policy: unknown policy '%s'", arg);
    o->policy = arg;
    break;
  case 's':
    rc = cli_double("--seconds", arg, 0.01, 3600, &o->seconds);
    break;
  case 'b':
    rc = cli_u32("--batch", arg, 1, 1u << 20, &o->batch);
    break;
  case 'r':
    rc = cli_u64("--seed", arg, 0, UINT64_MAX, &o->seed);
    break;
  case 'f':
    o->profiles = arg;
    break;
  default:
    return CLI_NOT_MINE;
  }
  return rc;
}

static int parse_args(int argc, char **argv, options_t *o) {
  static const struct option longopts[] = {
      {"workers", required_argument, NULL, 'w'},
      {"policy", required_argument, NULL, 'p'},
      {"seconds", required_argument, NULL, 's'},
      {"batch", required_argument, NULL, 'b'},
      {"seed", required_argument, NULL, 'r'},
      {"profiles", required_argument, NULL, 'f'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  return cli_parse_args(argc, argv, longopts, usage, parse_one, o);
}

/* --- deterministic randomness --- */

static uint64_t next_random(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint32_t uniform(uint64_t *s, uint32_t lo, uint32_t hi) {
  return lo + (uint32_t)(next_random(s) % ((uint64_t)hi - lo + 1));
}

/* Block i of a family names the whole prefix up to i, as clients hash
 * them: two requests share block i only if they share every block before. */
static uint64_t block_hash(uint32_t family, uint32_t i) {
  uint64_t s = ((uint64_t)family << 32 | i) + 1;
  return next_random(&s);
}

static void set_peer(core_peer_t *p, const char *fmt, uint32_t i) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, fmt, i);
  p->door = CORE_DOOR_ZMQ;
  p->len = (uint8_t)n;
  memcpy(p->id, buf, (size_t)n);
}

/* --- pool --- */

/* Worker i's profile: the classes in turn, the profiles of a class in turn. */
static const infs_profile_t *profile_for(const profile_set_t *set, uint32_t i) {
  const infs_profile_t *by_cls[INFS_WORKER_CLASS_COUNT][8];
  size_t n[INFS_WORKER_CLASS_COUNT] = {0}, classes = 0;
  infs_worker_class_t order[INFS_WORKER_CLASS_COUNT];
  for (size_t k = 0; k < profile_set_count(set); k++) {
    const infs_profile_t *p = profile_set_at(set, k);
    if (n[p->cls] < 8)
      by_cls[p->cls][n[p->cls]++] = p;
  }
  for (int c = 0; c < INFS_WORKER_CLASS_COUNT; c++)
    if (n[c])
      order[classes++] = (infs_worker_class_t)c;
  infs_worker_class_t cls = order[i % classes];
  return by_cls[cls][(i / classes) % n[cls]];
}

/* A heartbeat of a worker part-way busy, with its prefix cache in full. */
static void heartbeat(core_t *c, infs_time_t now, const core_peer_t *peer,
                      const infs_profile_t *p, uint64_t *rng) {
  uint64_t cache[CACHED_FAMILIES * FAMILY_BLOCKS];
  size_t n_cache = 0;
  for (int f = 0; f < CACHED_FAMILIES; f++) {
    uint32_t family = uniform(rng, 0, FAMILIES - 1);
    uint32_t depth = uniform(rng, 8, FAMILY_BLOCKS);
    for (uint32_t i = 0; i < depth && n_cache < profile_kv_blocks(p); i++)
      cache[n_cache++] = block_hash(family, i);
  }
  uint32_t running = uniform(rng, 0, p->max_batch / 2);
  uint64_t kv_used = (uint64_t)running * uniform(rng, 500, 3000);
  if (kv_used > p->kv_tokens)
    kv_used = p->kv_tokens;
  double step_ms = step_decode_ms(p, running, kv_used);
  core_load_t load = {
      .queued = uniform(rng, 0, 4),
      .running = running,
      .kv_used = kv_used,
      .kv_total = p->kv_tokens,
      .prefill_backlog_tokens = uniform(rng, 0, 8000),
      .tokens_per_s = running * 1000.0 / step_ms,
      .busy_s = 1800,
      .up_s = 3600,
      .cost_usd = p->price_per_hour,
      .cache_reset = true,
      .cache_added = cache,
      .n_cache_added = n_cache,
  };
  core_on_heartbeat(c, now, peer, &load);
}

/* Requests of the code trace's shape: prompts of whole prefixes plus a
 * tail, a few to a few hundred output tokens, agent requests in sessions. */
static void make_specs(spec_t *specs, uint64_t *rng) {
  for (size_t k = 0; k < REQUESTS; k++) {
    spec_t *s = &specs[k];
    uint32_t family = uniform(rng, 0, FAMILIES - 1);
    uint32_t depth = uniform(rng, 4, FAMILY_BLOCKS);
    for (uint32_t i = 0; i < depth; i++)
      s->blocks[i] = block_hash(family, i);
    uint32_t roll = uniform(rng, 0, 99);
    infs_class_t cls = roll < 30   ? INFS_CLASS_INTERACTIVE
                       : roll < 80 ? INFS_CLASS_AGENT
                                   : INFS_CLASS_BATCH;
    const char *session = NULL;
    if (cls == INFS_CLASS_AGENT) {
      snprintf(s->session, sizeof s->session, "s-%u",
               uniform(rng, 0, SESSIONS - 1));
      session = s->session;
    }
    s->req = (core_request_t){
        .prompt_tokens = depth * 64 + uniform(rng, 0, 63),
        .max_tokens = uniform(rng, 8, 512),
        .cls = cls,
        .session = session,
        .blocks = s->blocks,
        .n_blocks = depth,
    };
  }
}

/* The dispatch of the last submit: its worker and the core's id. */
static bool find_dispatch(const core_t *c, core_peer_t *peer, uint64_t *id) {
  size_t n;
  const core_action_t *a = core_actions(c, &n);
  for (size_t i = 0; i < n; i++) {
    if (a[i].kind == CORE_ACT_DISPATCH) {
      peer->door = a[i].peer.door;
      peer->len = a[i].peer.len;
      memcpy(peer->id, a[i].peer.id, a[i].peer.len);
      *id = a[i].request_id;
      return true;
    }
  }
  return false;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One submit and, when it dispatched, its done; returns false when the
 * request was not placed (it is cancelled so that the state stays put). */
static bool decide(core_t *c, infs_time_t now, const core_peer_t *client,
                   spec_t *s, uint64_t id) {
  static const int done_msg = 0; /* passed through, never read */
  core_peer_t peer;
  uint64_t core_id;
  s->req.id = id;
  core_on_submit(c, now, client, &s->req);
  bool placed = find_dispatch(c, &peer, &core_id);
  if (placed)
    core_on_done(c, now, &peer, core_id, NULL, &done_msg);
  else
    core_on_cancel(c, now, client, id);
  core_actions_clear(c);
  return placed;
}

static int run_one(const options_t *o, const profile_set_t *set,
                   const char *policy, uint32_t n_workers, spec_t *specs,
                   result_t *res) {
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.policy = policy;
  infs_time_t now = INFS_US_PER_S;
  int err;
  core_t *c = core_new(&cfg, now, &err);
  if (!c) {
    fprintf(stderr, "bench_decision: core_new(%s) failed: %d\n", policy, err);
    return -1;
  }
  uint64_t rng = o->seed;
  core_peer_t peer, client;
  set_peer(&client, "client-%u", 0);
  for (uint32_t i = 0; i < n_workers; i++) {
    const infs_profile_t *p = profile_for(set, i);
    char id[32];
    snprintf(id, sizeof id, "w%u", i);
    core_worker_info_t info = {.worker_id = id,
                               .model = "codex-70b",
                               .backend = "null",
                               .profile = p,
                               .capacity = 2 * p->max_batch};
    set_peer(&peer, "w%u", i);
    core_on_register(c, now, &peer, &info);
    heartbeat(c, now, &peer, p, &rng);
    core_actions_clear(c);
  }

  /* A background the policy places itself and that stays running; what
   * it would rather queue is cancelled, so every timed submit meets an
   * empty admission queue. */
  uint64_t next_id = 1;
  uint32_t background = n_workers * BACKGROUND_PER_WORKER;
  for (uint32_t k = 0; k < background; k++) {
    spec_t *s = &specs[k % REQUESTS];
    s->req.id = next_id++;
    core_on_submit(c, now, &client, &s->req);
    if (!find_dispatch(c, &peer, &(uint64_t){0}))
      core_on_cancel(c, now, &client, s->req.id);
    core_actions_clear(c);
    now += STEP_US;
  }
  res->background = core_open_requests(c);

  /* One untimed pass warms caches and the core's scratch arrays. */
  for (uint32_t k = 0; k < o->batch * 4; k++, now += STEP_US)
    decide(c, now, &client, &specs[k % REQUESTS], next_id++);

  core_stats_t before = *core_stats(c);
  size_t cap = 1024, n = 0, k = 0;
  double *samples = malloc(cap * sizeof *samples);
  double total = 0, end = clock_s() + o->seconds;
  if (!samples)
    abort();
  res->not_placed = 0;
  while (n < 100 || clock_s() < end) {
    uint64_t misses = 0;
    double t0 = clock_s();
    for (uint32_t b = 0; b < o->batch; b++, k++) {
      if (!decide(c, now, &client, &specs[k % REQUESTS], next_id++))
        misses++;
      now += STEP_US;
    }
    double t1 = clock_s();
    if (n == cap) {
      cap *= 2;
      samples = xrealloc(samples, cap * sizeof *samples);
    }
    samples[n++] = (t1 - t0) / o->batch * 1e6;
    total += t1 - t0;
    res->not_placed += misses;
  }
  const core_stats_t *after = core_stats(c);
  uint64_t blocks = after->blocks_routed - before.blocks_routed;
  uint64_t cached = after->cached_blocks_routed - before.cached_blocks_routed;
  res->cached_share = blocks ? (double)cached / (double)blocks : 0;
  res->decisions = (uint64_t)n * o->batch;
  qsort(samples, n, sizeof *samples, cmp_double);
  res->median_us = samples[n / 2];
  res->p99_us = samples[(size_t)((double)(n - 1) * 0.99)];
  res->mean_us = total / (double)res->decisions * 1e6;
  free(samples);
  core_destroy(&c);
  return 0;
}

/* Issue 8's targets: median decision time by pool size, or 0 for none. */
static double target_us(uint32_t workers) {
  return workers == 256 ? 5 : workers == 4096 ? 50 : 0;
}

int main(int argc, char **argv) {
  options_t o = {
      .profiles = INFSCHED_SOURCE_DIR "/configs/profiles.yaml",
      .sizes = {16, 256, 4096},
      .n_sizes = 3,
      .batch = 32,
      .seconds = 1,
      .seed = 1,
  };
  profile_set_t *set = NULL;
  spec_t *specs = NULL;
  char err[512];
  int status = 1;

  cli_init("bench_decision");
  if (parse_args(argc, argv, &o))
    return CLI_EXIT_USAGE;
  if (profile_set_load(o.profiles, &set, err, sizeof err)) {
    fprintf(stderr, "bench_decision: %s\n", err);
    return 1;
  }
  specs = xcalloc(REQUESTS, sizeof *specs);
  uint64_t rng = o.seed ^ 0x5eed;
  make_specs(specs, &rng);

  bench_print_command(argc, argv);
  printf("# %s: workers take the profiles' classes in turn; %d-block "
         "prefixes of %d families, %d cached per worker; %d background "
         "requests per worker; %.2f s per row in batches of %u\n",
         o.profiles, FAMILY_BLOCKS, FAMILIES, CACHED_FAMILIES,
         BACKGROUND_PER_WORKER, o.seconds, o.batch);
  printf("# one decision = core_on_submit (dispatch) + core_on_done\n");
  printf("%-16s %8s %10s %10s %10s %10s %8s %8s %10s %8s\n", "policy",
         "workers", "median_us", "p99_us", "mean_us", "decisions", "placed",
         "cached", "background", "target");
  for (const policy_ops_t *const *p = policy_all(); *p; p++) {
    if (o.policy && strcmp(o.policy, (*p)->name) != 0)
      continue;
    for (size_t i = 0; i < o.n_sizes; i++) {
      result_t r = {0};
      if (run_one(&o, set, (*p)->name, o.sizes[i], specs, &r))
        goto out;
      char target[32] = "-";
      double t = target_us(o.sizes[i]);
      if (t > 0)
        snprintf(target, sizeof target, "<=%g %s", t,
                 r.median_us <= t ? "met" : "MISSED");
      printf("%-16s %8u %10.3f %10.3f %10.3f %10llu %7.1f%% %7.1f%% %10llu "
             "%s\n",
             (*p)->name, o.sizes[i], r.median_us, r.p99_us, r.mean_us,
             (unsigned long long)r.decisions,
             100.0 * (double)(r.decisions - r.not_placed) / (double)r.decisions,
             100.0 * r.cached_share, (unsigned long long)r.background, target);
      fflush(stdout);
    }
  }
  status = 0;
out:
  free(specs);
  profile_set_destroy(&set);
  return status;
}
