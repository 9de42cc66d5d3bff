/* Runs a fuzz target over files and directories of inputs (the seed corpus
 * and the crash regressions), so that ctest checks every input that once
 * mattered without libFuzzer. */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return -1;
  }
  size_t cap = 4096, len = 0, n;
  uint8_t *buf = malloc(cap);
  while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap)
      buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (!buf)
    abort();
  /* An exact-size copy, so that ASan sees a read past the input. */
  uint8_t *in = malloc(len ? len : 1);
  memcpy(in, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(in, len);
  free(in);
  return 0;
}

static int run_path(const char *path, int *files) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "replay: no such input: %s\n", path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    ++*files;
    return run_file(path);
  }
  DIR *d = opendir(path);
  if (!d)
    return -1;
  int rc = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.')
      continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    if (run_path(sub, files))
      rc = -1;
  }
  closedir(d);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0) {
    fprintf(stderr, "usage: %s FILE|DIR...\n"
                    "Runs the fuzz target once per input file.\n", argv[0]);
    return argc < 2 ? 2 : 0;
  }
  int files = 0, rc = 0;
  for (int i = 1; i < argc; i++)
    if (run_path(argv[i], &files))
      rc = 1;
  printf("replayed %d inputs\n", files);
  return rc;
}
