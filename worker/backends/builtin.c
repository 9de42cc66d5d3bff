#include "worker/backends/builtin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static const infs_backend_ops_t *const builtins[] = {
    &backend_sim, &backend_null, &backend_openai, NULL};

/* Plugins stay loaded for the life of the process: their code may still be
 * referenced by handles closing at exit. */
static const infs_backend_ops_t *load_plugin(const char *path, char *err,
                                             size_t errlen) {
  void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!so) {
    snprintf(err, errlen, "cannot load plugin: %s", dlerror());
    return NULL;
  }
  infs_backend_entry_fn entry;
  *(void **)&entry = dlsym(so, "infsched_backend_entry");
  if (!entry) {
    snprintf(err, errlen, "%s does not export infsched_backend_entry", path);
    dlclose(so);
    return NULL;
  }
  const infs_backend_ops_t *ops = entry();
  if (!ops || ops->abi != INFS_BACKEND_ABI || !ops->create || !ops->submit ||
      !ops->cancel || !ops->load || !ops->destroy) {
    snprintf(err, errlen,
             "%s: backend table is incomplete or not ABI %d", path,
             INFS_BACKEND_ABI);
    dlclose(so);
    return NULL;
  }
  return ops;
}

const infs_backend_ops_t *backend_resolve(const char *spec, const char **args,
                                          char *err, size_t errlen) {
  *args = NULL;
  if (strncmp(spec, "plugin:", 7) == 0) {
    /* The path ends at ".so"; what follows a ':' there is the plugin's. */
    char path[4096];
    const char *rest = spec + 7, *so = strstr(rest, ".so:");
    size_t len = so ? (size_t)(so - rest) + 3 : strlen(rest);
    if (len == 0 || len >= sizeof path) {
      snprintf(err, errlen, "plugin: expected plugin:PATH.so[:ARGS]");
      return NULL;
    }
    memcpy(path, rest, len);
    path[len] = '\0';
    if (so)
      *args = so + 4;
    return load_plugin(path, err, errlen);
  }
  const char *colon = strchr(spec, ':');
  size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
  for (size_t i = 0; builtins[i]; i++) {
    if (strlen(builtins[i]->name) == len &&
        strncmp(builtins[i]->name, spec, len) == 0) {
      *args = colon ? colon + 1 : NULL;
      return builtins[i];
    }
  }
  snprintf(err, errlen,
           "unknown backend '%s' (sim, null, openai:URL or plugin:PATH.so)",
           spec);
  return NULL;
}
