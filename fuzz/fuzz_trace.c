/* The trace readers, as loadgen and the simulator pick them ("trace:FILE":
 * Azure's CSV, or a Mooncake JSONL trace when the file starts with '{'),
 * and the requests they make. */
#include "fuzz.h"
#include "workload.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  workload_opts_t o;
  workload_opts_default(&o);
  workload_t *w = NULL;
  char spec[96], err[512];
  snprintf(spec, sizeof spec, "trace:%s", fuzz_file(data, size));
  if (workload_new(spec, &o, &w, err, sizeof err))
    return 0;
  workload_req_t req;
  for (int i = 0; i < 1000 && workload_pop(w, INFS_TIME_NEVER - 1, &req) == 0;
       i++)
    ;
  workload_destroy(&w);
  return 0;
}
