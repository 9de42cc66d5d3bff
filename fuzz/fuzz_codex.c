/* The codex workload file loader (YAML). */
#include "fuzz.h"
#include "workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  workload_codex_config_t cfg;
  char err[512];
  workload_codex_config_default(&cfg);
  workload_codex_config_load(&cfg, fuzz_file(data, size), err, sizeof err);
  return 0;
}
