/* The settings of infsched-scheduler and infsched-worker, in one table:
 * name, type, range, default and help. The daemons' flags and --help, the
 * cluster file's keys, infsched-cluster check and the simulator all read
 * and check settings through it, so that a value one of them accepts the
 * others accept too. */
#ifndef INFSCHED_SETTINGS_H
#define INFSCHED_SETTINGS_H

#include "infsched/auth.h"
#include "infsched/types.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

typedef enum setting_id {
  SET_CLIENTS,
  SET_WORKERS,
  SET_SCHEDULER,
  SET_ID,
  SET_PROFILE,
  SET_PROFILES,
  SET_BACKEND,
  SET_MODEL,
  SET_CAPACITY,
  SET_DRAIN_TIMEOUT_MS,
  SET_POLICY,
  SET_HEARTBEAT_MS,
  SET_HEARTBEAT_MISS,
  SET_QUEUE_LIMIT,
  SET_QUEUE_TIMEOUT_MS,
  SET_MAX_ATTEMPTS,
  SET_PROGRESS_TIMEOUT_MS,
  SET_SLO,
  SET_LATENCY_WEIGHT,
  SET_CACHE_MATCH_THRESHOLD,
  SET_CACHE_BALANCE_ABS,
  SET_CACHE_BALANCE_REL,
  SET_KV_PREFILL_SCALE,
  SET_KV_OVERLAP_CREDIT,
  SET_KV_REQUEST_WEIGHT,
  SET_KV_TEMPERATURE,
  SET_SCORE_QUEUE_WEIGHT,
  SET_SCORE_KV_WEIGHT,
  SET_SCORE_PREFIX_WEIGHT,
  SET_KWH_PRICE,
  SET_HTTP,
  SET_HTTP_MAX_BODY,
  SET_HTTP_MAX_CONNS,
  SET_API_KEYS,
  SET_MAX_MSG_BYTES,
  SET_AUTH,
  SET_KEYS,
  SET_KEY,
  SET_SERVER_KEY,
  SET_LOG_LEVEL,
  SET_ROLE,
  SET_LINKS,
  SET_COUNT
} setting_id_t;

typedef enum setting_type {
  SETTING_UINT, /* a whole number in [min, max] */
  SETTING_REAL, /* a finite number in [min, max] */
  SETTING_TEXT, /* [min, max] characters that check() accepts */
} setting_type_t;

/* Programs that read a setting (setting_t.who), and places of a cluster
 * file that may give it (setting_t.cluster: "scheduler:" or a worker
 * entry; 0 when the launcher sets it itself). */
#define SETTING_SCHEDULER 1u
#define SETTING_WORKER 2u

typedef struct setting {
  setting_id_t id;
  const char *name; /* cluster file key */
  const char *flag; /* the flag, without "--" */
  unsigned who;
  unsigned cluster;
  setting_type_t type;
  double min, max;
  const char *def;     /* default as written, or NULL when derived */
  const char *metavar; /* in --help: "--flag METAVAR" */
  const char *help;    /* one sentence; --help adds the default */
  /* For text: refuses what the daemons refuse as they read their flags
   * (exit status 2), with why in err. */
  int (*check)(const char *text, char *err, size_t errlen);
  /* Refuses what the daemons refuse only as they start (exit status 3),
   * in this environment: a plugin that does not load. NULL: nothing. */
  int (*ready)(const char *text, char *err, size_t errlen);
} setting_t;

typedef struct setting_value {
  uint64_t u;    /* SETTING_UINT */
  double d;      /* SETTING_REAL */
  const char *s; /* SETTING_TEXT: the text parsed, borrowed */
} setting_value_t;

/* The setting with this id; every id below SET_COUNT has one. */
const setting_t *settings_get(setting_id_t id);

/* The setting with this cluster file key, or NULL. */
const setting_t *settings_find(const char *name);

/* Parses text as s's value. Returns 0, or INFS_ECONFIG with the reason
 * (without the setting's name) in err. */
int settings_parse(const setting_t *s, const char *text, setting_value_t *v,
                   char *err, size_t errlen);

/* What s's daemon would refuse of text as it starts (see setting_t.ready).
 * Returns 0, or INFS_ECONFIG with the reason in err. */
int settings_ready(const setting_t *s, const char *text, char *err,
                   size_t errlen);

/* Parses a flag's value; on a bad one prints "PROGRAM: --flag: why" (see
 * lib/cli.h) and returns -1. */
int settings_parse_flag(const setting_t *s, const char *text,
                        setting_value_t *v);

/* Fills opts with a getopt_long entry for every setting of who, each with
 * SETTING_OPT_BASE + id as its value, and returns how many. opts needs
 * room for SET_COUNT entries. */
#define SETTING_OPT_BASE 0x1000
size_t settings_options(unsigned who, struct option *opts);

/* The setting a getopt_long value stands for, or NULL. */
const setting_t *settings_from_opt(int val);

/* Applies one parsed value to a program's configuration (ctx). */
typedef void (*settings_apply_cb)(void *ctx, const setting_t *s,
                                  const setting_value_t *v);

/* A daemon's command line: who's defaults from the table, then argv's
 * flags, each applied through apply. -h/--help prints usage and exits 0,
 * --version the version. Returns 0, or -1 after printing why (lib/cli.h). */
int settings_parse_args(int argc, char **argv, unsigned who,
                        void (*usage)(FILE *f), settings_apply_cb apply,
                        void *ctx);

/* Prints the --help lines of who's settings, with defaults. */
void settings_usage(FILE *f, unsigned who);
/* Prints one setting's --help line. */
void settings_usage_one(FILE *f, const setting_t *s);

/* Prints the table as Markdown, for docs/cluster.md. */
void settings_markdown(FILE *f);

/* Applies a parsed value to the keys a program authenticates with. Returns
 * 0, or 1 when the setting is not one of them (auth, keys, key,
 * server_key). */
int settings_apply_auth(infs_auth_t *a, const setting_t *s,
                        const setting_value_t *v);

#endif
