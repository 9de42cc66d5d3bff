/* The cluster file loader (YAML), with the profiles it names. */
#include "fuzz.h"
#include "cluster_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cluster_spec_t *spec = NULL;
  char err[512];
  if (cluster_file_load(fuzz_file(data, size), &spec, err, sizeof err) == 0)
    cluster_spec_destroy(&spec);
  return 0;
}
