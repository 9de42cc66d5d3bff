#include "builtin.h"

#include "spec.h"

#include <stdio.h>
#include <string.h>

static const infs_backend_ops_t *const builtins[] = {
    &backend_sim, &backend_null, &backend_openai, NULL};

const infs_backend_ops_t *backend_resolve(const char *spec, const char **args,
                                          char *err, size_t errlen) {
  char name[16], path[BACKEND_PATH_MAX];
  if (backend_spec_split(spec, name, sizeof name, path, sizeof path, args, err,
                         errlen))
    return NULL;
  if (strcmp(name, "plugin") == 0)
    return backend_plugin_load(path, err, errlen);
  for (size_t i = 0; builtins[i]; i++)
    if (strcmp(builtins[i]->name, name) == 0)
      return builtins[i];
  snprintf(err, errlen, "backend '%s' is not built in", name);
  return NULL;
}
