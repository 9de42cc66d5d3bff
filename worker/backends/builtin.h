/* Backends compiled into the worker, and loading of plugin backends. */
#ifndef INFSCHED_BACKENDS_BUILTIN_H
#define INFSCHED_BACKENDS_BUILTIN_H

#include "infsched/backend.h"

extern const infs_backend_ops_t backend_sim;
extern const infs_backend_ops_t backend_null;
extern const infs_backend_ops_t backend_openai;

/* Resolves "sim", "null", "openai:URL[,OPTIONS]" or "plugin:PATH.so[:ARGS]".
 * On success *args points at the backend's own arguments (the text after
 * the first ':' for built-ins, after "PATH.so:" for plugins), or NULL.
 * Returns NULL with a reason in err. */
const infs_backend_ops_t *backend_resolve(const char *spec, const char **args,
                                          char *err, size_t errlen);

#endif
