#include "spec.h"

#include "infsched/errors.h"
#include "openai_opts.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The built-in backends' names; worker/backends/builtin.c holds their
 * tables, which link libcurl and libuv. */
static const char *const builtin_names[] = {"sim", "null", "openai", NULL};

int backend_spec_split(const char *spec, char *name, size_t namelen, char *path,
                       size_t pathlen, const char **args, char *err,
                       size_t errlen) {
  *args = NULL;
  path[0] = '\0';
  if (strncmp(spec, "plugin:", 7) == 0) {
    /* The path ends at ".so"; what follows a ':' there is the plugin's. */
    const char *rest = spec + 7, *so = strstr(rest, ".so:");
    size_t len = so ? (size_t)(so - rest) + 3 : strlen(rest);
    if (len == 0 || len >= pathlen) {
      snprintf(err, errlen, "plugin: expected plugin:PATH.so[:ARGS]");
      return INFS_ECONFIG;
    }
    memcpy(path, rest, len);
    path[len] = '\0';
    if (so)
      *args = so + 4;
    snprintf(name, namelen, "plugin");
    return 0;
  }
  const char *colon = strchr(spec, ':');
  size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
  for (size_t i = 0; builtin_names[i]; i++) {
    if (strlen(builtin_names[i]) == len &&
        strncmp(builtin_names[i], spec, len) == 0) {
      *args = colon ? colon + 1 : NULL;
      snprintf(name, namelen, "%s", builtin_names[i]);
      return 0;
    }
  }
  snprintf(err, errlen,
           "unknown backend '%s' (sim, null, openai:URL or plugin:PATH.so)",
           spec);
  return INFS_ECONFIG;
}

const infs_backend_ops_t *backend_plugin_load(const char *path, char *err,
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
  if (!ops || ops->abi < INFS_BACKEND_ABI_MIN || ops->abi > INFS_BACKEND_ABI || !ops->create || !ops->submit ||
      !ops->cancel || !ops->load || !ops->destroy) {
    snprintf(err, errlen, "%s: backend table is incomplete or not ABI %d", path,
             INFS_BACKEND_ABI);
    dlclose(so);
    return NULL;
  }
  return ops;
}

int backend_spec_check(const char *spec, char *err, size_t errlen) {
  char name[16], path[BACKEND_PATH_MAX];
  const char *args;
  if (backend_spec_split(spec, name, sizeof name, path, sizeof path, &args, err,
                         errlen))
    return INFS_ECONFIG;
  if (strcmp(name, "plugin") == 0)
    return 0;
  if (strcmp(name, "openai") != 0) {
    if (args && *args) {
      snprintf(err, errlen, "%s backend takes no arguments (got '%s')", name,
               args);
      return INFS_ECONFIG;
    }
    return 0;
  }
  openai_opts_t o;
  return openai_opts_parse(args, &o, err, errlen) ? INFS_ECONFIG : 0;
}

int backend_spec_ready(const char *spec, char *err, size_t errlen) {
  char name[16], path[BACKEND_PATH_MAX];
  const char *args;
  openai_opts_t o;
  if (backend_spec_check(spec, err, errlen))
    return INFS_ECONFIG;
  backend_spec_split(spec, name, sizeof name, path, sizeof path, &args, err,
                     errlen);
  if (strcmp(name, "plugin") == 0)
    return backend_plugin_load(path, err, errlen) ? 0 : INFS_ECONFIG;
  if (strcmp(name, "openai") == 0 &&
      openai_opts_parse(args, &o, err, errlen) == 0 && o.api_key_env[0]) {
    const char *key = getenv(o.api_key_env);
    if (!key || !*key) {
      snprintf(err, errlen, "openai: environment variable %s is not set",
               o.api_key_env);
      return INFS_ECONFIG;
    }
  }
  return 0;
}
