/* Recording a run as a Mooncake trace (see workload.h). The lines are kept
 * in memory, so that adding a request does no I/O and a simulated run stays
 * pure; the driver writes the file once the run is over. */
#include "workload.h"
#include "workload_impl.h"

#include "infsched/errors.h"
#include "buf.h"
#include "u64map.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct workload_recorder {
  uint32_t block_size;
  u64map_t ids;     /* hash of a 512-token block's last whole block -> id */
  uint32_t next_id; /* ids are numbered in order of first use */
  uint64_t count;
  buf_t out; /* the trace so far, one JSON object a line */
};

int workload_recorder_new(uint32_t block_size, workload_recorder_t **out,
                          char *err, size_t errlen) {
  *out = NULL;
  if (block_size == 0 || WORKLOAD_MOONCAKE_BLOCK % block_size)
    return workload_errf(INFS_ECONFIG, err, errlen,
                         "recording a Mooncake trace needs a block size "
                         "that divides %d, not %u",
                         WORKLOAD_MOONCAKE_BLOCK, block_size);
  workload_recorder_t *r = calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  r->block_size = block_size;
  u64map_init(&r->ids);
  *out = r;
  return 0;
}

static uint32_t id_of(workload_recorder_t *r, uint64_t key) {
  uint32_t id;
  if (!u64map_get(&r->ids, key, &id)) {
    id = r->next_id++;
    u64map_put(&r->ids, key, id);
  }
  return id;
}

static void append(workload_recorder_t *r, const char *s) {
  buf_puts(&r->out, s);
  buf_append(&r->out, "\n", 1);
}

void workload_recorder_add(workload_recorder_t *r, const workload_req_t *req) {
  size_t per = WORKLOAD_MOONCAKE_BLOCK / r->block_size;
  size_t groups = (req->prompt_tokens + WORKLOAD_MOONCAKE_BLOCK - 1) /
                  WORKLOAD_MOONCAKE_BLOCK;
  cJSON *j = cJSON_CreateObject();
  if (!j)
    abort();
  /* Whole milliseconds: aiperf reads the timestamp as an integer. */
  double ms = round((double)req->arrival / INFS_US_PER_MS);
  cJSON_AddNumberToObject(j, "timestamp", ms);
  cJSON_AddNumberToObject(j, "input_length", req->prompt_tokens);
  cJSON_AddNumberToObject(j, "output_length", req->max_tokens);
  cJSON *ids = cJSON_AddArrayToObject(j, "hash_ids");
  for (size_t g = 0; g < groups; g++) {
    size_t end = (g + 1) * per;
    if (end > req->n_blocks)
      end = req->n_blocks;
    uint32_t id = end > g * per ? id_of(r, req->blocks[end - 1]) : r->next_id++;
    cJSON_AddItemToArray(ids, cJSON_CreateNumber(id));
  }
  cJSON_AddStringToObject(j, "class", infs_class_name(req->cls));
  if (req->session[0])
    cJSON_AddStringToObject(j, "session_id", req->session);
  char *line = cJSON_PrintUnformatted(j);
  if (!line)
    abort();
  append(r, line);
  cJSON_free(line);
  cJSON_Delete(j);
  r->count++;
}

uint64_t workload_recorder_count(const workload_recorder_t *r) {
  return r->count;
}

int workload_recorder_write(const workload_recorder_t *r, const char *path,
                            char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f)
    return workload_errf(-errno, err, errlen, "%s: %s", path, strerror(errno));
  size_t n = r->out.len ? fwrite(r->out.data, 1, r->out.len, f) : 0;
  int bad = n != r->out.len || ferror(f);
  int e = errno;
  if (fclose(f) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  if (bad)
    return workload_errf(-(e ? e : EIO), err, errlen, "%s: %s", path,
                         strerror(e ? e : EIO));
  return 0;
}

void workload_recorder_destroy(workload_recorder_t **p) {
  if (p && *p) {
    workload_recorder_t *r = *p;
    u64map_free(&r->ids);
    buf_free(&r->out);
    free(r);
    *p = NULL;
  }
}
