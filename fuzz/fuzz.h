/* Shared by the libFuzzer targets in fuzz/: each defines
 * LLVMFuzzerTestOneInput, and links either libFuzzer (INFSCHED_FUZZ=ON,
 * clang) or replay.c, which runs it over the seed corpus and the crash
 * regressions as an ordinary test. */
#ifndef INFSCHED_FUZZ_H
#define INFSCHED_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A path whose file holds exactly data, for loaders that take a path: an
 * anonymous in-memory file, rewritten on every call. The string is
 * static. */
const char *fuzz_file(const uint8_t *data, size_t size);

#endif
