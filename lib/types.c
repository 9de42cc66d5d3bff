#include "infsched/types.h"

#include "infsched/errors.h"

#include <string.h>

static const char *const class_names[INFS_CLASS_COUNT] = {
    "interactive", "agent", "batch"};
static const char *const worker_class_names[INFS_WORKER_CLASS_COUNT] = {
    "gpu", "sram", "tpu"};

static const char *const role_names[INFS_ROLE_COUNT] = {"both", "prefill",
                                                        "decode"};

static int lookup(const char *const *names, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0)
      return i;
  return INFS_EUNKNOWN;
}

const char *infs_class_name(infs_class_t c) {
  return (unsigned)c < INFS_CLASS_COUNT ? class_names[c] : "unknown";
}

int infs_class_parse(const char *name, infs_class_t *out) {
  int i = lookup(class_names, INFS_CLASS_COUNT, name);
  if (i < 0)
    return i;
  *out = (infs_class_t)i;
  return 0;
}

const char *infs_worker_class_name(infs_worker_class_t c) {
  return (unsigned)c < INFS_WORKER_CLASS_COUNT ? worker_class_names[c]
                                                : "unknown";
}

int infs_worker_class_parse(const char *name, infs_worker_class_t *out) {
  int i = lookup(worker_class_names, INFS_WORKER_CLASS_COUNT, name);
  if (i < 0)
    return i;
  *out = (infs_worker_class_t)i;
  return 0;
}

const char *infs_role_name(infs_role_t r) {
  return (unsigned)r < INFS_ROLE_COUNT ? role_names[r] : "unknown";
}

int infs_role_parse(const char *s, infs_role_t *out) {
  int i = lookup(role_names, INFS_ROLE_COUNT, s);
  if (i < 0)
    return INFS_ECONFIG;
  *out = (infs_role_t)i;
  return 0;
}
