/* Key files (lib/keys.c), as a scheduler reads those of its allowed/
 * directory and a worker its own. */
#include "fuzz.h"
#include "keys.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char pub[KEYS_Z85_LEN + 1], secret[KEYS_Z85_LEN + 1], err[512];
  const char *path = fuzz_file(data, size);
  if (keys_load(path, pub, secret, err, sizeof err) == 0 &&
      (!keys_valid(pub) || !keys_valid(secret)))
    abort();
  if (keys_load(path, pub, NULL, err, sizeof err) == 0) {
    keyring_t *k = keyring_new();
    if (keyring_add(k, pub) || !keyring_allows(k, pub))
      abort();
    keyring_destroy(&k);
  }
  return 0;
}
