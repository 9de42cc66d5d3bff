/* The Azure LLM inference trace reader (CSV), and the requests it makes. */
#include "fuzz/fuzz.h"
#include "lib/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  workload_opts_t o;
  workload_opts_default(&o);
  workload_t *w = NULL;
  char err[512];
  if (workload_trace_new(fuzz_file(data, size), &o, &w, err, sizeof err))
    return 0;
  workload_req_t req;
  for (int i = 0; i < 1000 && workload_pop(w, INFS_TIME_NEVER - 1, &req) == 0;
       i++)
    ;
  workload_destroy(&w);
  return 0;
}
