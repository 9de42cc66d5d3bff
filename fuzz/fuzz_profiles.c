/* The profiles file loader (YAML). */
#include "fuzz.h"
#include "infsched/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  profile_set_t *set = NULL;
  char err[512];
  if (profile_set_load(fuzz_file(data, size), &set, err, sizeof err) == 0)
    profile_set_destroy(&set);
  return 0;
}
