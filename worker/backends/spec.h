/* The worker's --backend SPEC: "sim", "null", "openai:URL[,OPTIONS]" or
 * "plugin:PATH.so[:ARGS]". Split and checked here, so that the worker and
 * the configuration check (infsched-cluster check) read it alike. */
#ifndef INFSCHED_BACKENDS_SPEC_H
#define INFSCHED_BACKENDS_SPEC_H

#include "infsched/backend.h"

#include <stddef.h>

#define BACKEND_PATH_MAX 4096

/* Splits spec into its name ("sim", "openai", "plugin") or plugin path,
 * and the backend's own arguments (NULL when none). For a plugin, name
 * is "plugin" and path the shared object; otherwise path is empty.
 * Returns 0, or INFS_ECONFIG with the reason in err. */
int backend_spec_split(const char *spec, char *name, size_t namelen, char *path,
                       size_t pathlen, const char **args, char *err,
                       size_t errlen);

/* Loads a plugin and checks its table (entry point, ABI, callbacks). The
 * object stays loaded for the life of the process: its code may still be
 * referenced by handles closing at exit. Returns the table, or NULL with
 * the reason in err. */
const infs_backend_ops_t *backend_plugin_load(const char *path, char *err,
                                              size_t errlen);

/* What the worker refuses when it reads its flags: an unknown name,
 * arguments to a backend that takes none, bad openai options. Returns 0,
 * or INFS_ECONFIG with the reason in err. */
int backend_spec_check(const char *spec, char *err, size_t errlen);

/* What the worker refuses as it starts, in this environment: a plugin that
 * does not load or lacks its table, an openai key variable that is not set.
 * Loads the plugin to see (see backend_plugin_load). Returns 0, or
 * INFS_ECONFIG with the reason in err. */
int backend_spec_ready(const char *spec, char *err, size_t errlen);

#endif
