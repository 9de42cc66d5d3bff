/* Decision time of every policy: core_on_submit on pools of 256 and 4,096
 * workers (GPU, SRAM and TPU profiles in turn), each worker's prefix cache
 * holding a system prefix every request shares plus its own sessions'
 * contexts, and agent-like requests of 200-400 blocks whose sessions are
 * cached on one worker. A window of twice the pool's size stays
 * outstanding; heartbeats arrive as a real pool's would.
 *
 *   bench_policies [REQUESTS [POLICY WORKERS]]
 *
 * prints, per pool size and policy, the median and 99th percentile of the
 * time one submit takes (decision and dispatch), in microseconds. */
#include "core.h"

#include "cli.h"
#include "clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SYSTEM_BLOCKS 32
#define SESSIONS_PER_WORKER 4
#define SESSION_BLOCKS 300

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return (x ^ (x >> 33)) | 1;
}

/* Chained hashes: the system prefix, then session s's own blocks. */
static void session_blocks(uint64_t s, uint64_t *out, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = i < SYSTEM_BLOCKS ? mix(i + 1) : mix((s << 20) + i);
}

static infs_profile_t profile(int k) {
  infs_profile_t p;
  memset(&p, 0, sizeof p);
  static const char *names[] = {"gpu-h100", "sram-wse3", "tpu-v6e"};
  snprintf(p.name, sizeof p.name, "%s", names[k]);
  p.cls = (infs_worker_class_t)k;
  double price[] = {10.68, 381, 9.76}, seq[] = {0.16, 0.01, 0.06};
  double kv_kb[] = {320, 320, 160}, bw[] = {13400, 84e6, 13104};
  double eff[] = {0.63, 0.5, 0.45}, tflops[] = {3956, 500000, 7344};
  double mfu[] = {0.40, 0.04, 0.40}, overhead[] = {0, 0.44, 0};
  uint32_t batch[] = {256, 48, 320}, kv[] = {450000, 94000, 580000};
  uint32_t ctx[] = {131072, 32768, 65536};
  p.price_per_hour = price[k];
  p.weights_gb = 141.2;
  p.params_b = 70.6;
  p.attn_mflop_per_ctx = 2.62;
  p.kv_kb_per_token = kv_kb[k];
  p.mem_bw_gbs = bw[k];
  p.mem_eff = eff[k];
  p.peak_tflops = tflops[k];
  p.mfu = mfu[k];
  p.step_overhead_ms = overhead[k];
  p.per_seq_ms = seq[k];
  p.max_batch = batch[k];
  p.kv_tokens = kv[k];
  p.max_context = ctx[k];
  p.block_size = 64;
  p.max_num_batched_tokens = 512;
  return p;
}

static core_peer_t peer_of(size_t i) {
  core_peer_t p = {.door = CORE_DOOR_ZMQ};
  p.len = (uint8_t)snprintf((char *)p.id, sizeof p.id, "w%zu", i);
  return p;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct open_req {
  uint64_t core_id;
  size_t worker;
} open_req_t;

static int run(const char *policy, size_t workers, size_t requests) {
  core_config_t cfg;
  core_config_defaults(&cfg);
  cfg.policy = policy;
  cfg.heartbeat_miss = 1000000;
  int err;
  core_t *c = core_new(&cfg, 0, &err);
  if (!c)
    return cli_usage_error("unknown policy '%s'", policy);
  infs_profile_t prof[3] = {profile(0), profile(1), profile(2)};
  core_peer_t *peers = calloc(workers, sizeof *peers);
  uint64_t *blocks = malloc(SESSION_BLOCKS * 2 * sizeof *blocks);
  for (size_t i = 0; i < workers; i++) {
    char id[32];
    snprintf(id, sizeof id, "w-%zu", i);
    peers[i] = peer_of(i);
    core_worker_info_t info = {.worker_id = id,
                               .model = "m",
                               .profile = &prof[i % 3],
                               .capacity = prof[i % 3].max_batch * 2};
    core_on_register(c, 0, &peers[i], &info);
    /* Its sessions' contexts (the SRAM worker's cache holds fewer). */
    uint32_t n = i % 3 == 1 ? 4 : SESSIONS_PER_WORKER;
    for (uint32_t s = 0; s < n; s++) {
      session_blocks(i * SESSIONS_PER_WORKER + s, blocks, SESSION_BLOCKS);
      core_load_t l = {.cache_reset = s == 0,
                       .cache_added = blocks,
                       .n_cache_added =
                           s ? SESSION_BLOCKS - SYSTEM_BLOCKS : SESSION_BLOCKS};
      if (s)
        l.cache_added = blocks + SYSTEM_BLOCKS;
      core_on_heartbeat(c, 0, &peers[i], &l);
    }
  }
  core_actions_clear(c);

  size_t window = workers * 2, head = 0, n_open = 0;
  uint32_t *at = calloc(workers, sizeof *at); /* outstanding per worker */
  open_req_t *open = calloc(window, sizeof *open);
  uint64_t *ns = malloc(requests * sizeof *ns);
  uint64_t seed = 12345;
  infs_time_t now = 0;
  static const char *sessions_fmt = "s%llu";
  for (size_t k = 0; k < requests; k++) {
    now += 100;
    seed = mix(seed);
    uint64_t s = seed % (workers * SESSIONS_PER_WORKER);
    size_t nb = 200 + (size_t)(seed >> 40) % 100;
    session_blocks(s, blocks, nb);
    char session[32];
    snprintf(session, sizeof session, sessions_fmt, (unsigned long long)s);
    core_request_t r = {.id = k + 1,
                        .model = "m",
                        .prompt_tokens = (uint32_t)nb * 64 + 10,
                        .max_tokens = 200,
                        .cls = (infs_class_t)(seed % 3),
                        .session = session,
                        .blocks = blocks,
                        .n_blocks = nb};
    core_peer_t client = {.len = 1, .id = {'c'}};
    uint64_t t0 = clock_ns();
    core_on_submit(c, now, &client, &r);
    ns[k] = clock_ns() - t0;
    size_t na;
    const core_action_t *a = core_actions(c, &na);
    for (size_t i = 0; i < na; i++) {
      if (a[i].kind != CORE_ACT_DISPATCH)
        continue;
      char name[16];
      snprintf(name, sizeof name, "%.*s", (int)a[i].peer.len,
               (const char *)a[i].peer.id);
      size_t w = (size_t)strtoul(name + 1, NULL, 10);
      open[(head + n_open) % window] = (open_req_t){a[i].request_id, w};
      n_open++;
      at[w]++;
    }
    core_actions_clear(c);
    if (n_open == window) {
      open_req_t *o = &open[head];
      head = (head + 1) % window;
      n_open--;
      core_on_done(c, now, &peers[o->worker], o->core_id, NULL, NULL);
      at[o->worker]--;
      uint32_t b = prof[o->worker % 3].max_batch;
      core_load_t l = {.running = at[o->worker] < b ? at[o->worker] : b,
                       .queued = at[o->worker] > b ? at[o->worker] - b : 0,
                       .kv_used = (uint64_t)at[o->worker] * 15000};
      core_on_heartbeat(c, now, &peers[o->worker], &l);
      core_actions_clear(c);
    }
  }
  qsort(ns, requests, sizeof *ns, cmp_u64);
  printf("%-15s %5zu workers  median %7.2f us  p99 %8.2f us\n", policy, workers,
         ns[requests / 2] / 1e3, ns[requests * 99 / 100] / 1e3);
  free(ns);
  free(at);
  free(open);
  free(blocks);
  free(peers);
  core_destroy(&c);
  return 0;
}

static void usage(FILE *f) {
  fprintf(f, "usage: bench_policies [REQUESTS [POLICY WORKERS]]\n"
             "Times core_on_submit (decision and dispatch) of every policy on "
             "pools of\n256 and 4,096 workers, or of one POLICY on WORKERS "
             "workers, for profiling.\n"
             "  REQUESTS     submits timed per policy and pool, at least 100 "
             "(default 20000)\n"
             "  POLICY       round_robin, least_loaded, cache_affinity, "
             "cheapest, balanced, ...\n"
             "  WORKERS      pool size, 1 to 65536\n"
             "  -h, --help   this text\n");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  cli_init("bench_policies");
  int i = cli_parse_options(argc, argv, opts, usage, NULL, NULL);
  if (i < 0)
    return CLI_EXIT_USAGE;
  int n = argc - i;
  uint64_t requests = 20000, workers = 0;
  if (n == 2 || n > 3) {
    cli_usage_error("expected REQUESTS [POLICY WORKERS]");
    return CLI_EXIT_USAGE;
  }
  if (n >= 1 && cli_u64("REQUESTS", argv[i], 100, 100000000, &requests))
    return CLI_EXIT_USAGE;
  if (n == 3) { /* one policy and pool size, for profiling */
    if (cli_u64("WORKERS", argv[i + 2], 1, 65536, &workers) ||
        run(argv[i + 1], workers, requests))
      return CLI_EXIT_USAGE;
    return 0;
  }
  static const char *policies[] = {"round_robin", "least_loaded",
                                   "cache_affinity", "cheapest", "balanced"};
  size_t sizes[] = {256, 4096};
  for (size_t s = 0; s < 2; s++)
    for (size_t k = 0; k < sizeof policies / sizeof *policies; k++)
      run(policies[k], sizes[s], requests);
  return 0;
}
