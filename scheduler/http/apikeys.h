/* API keys of the HTTP API: a YAML file that maps each key to a tenant and
 * the request class its requests get when they name none. The format is
 * documented in docs/http-api.md. Pure: reads the file it is given, keeps
 * no clock. */
#ifndef INFSCHED_HTTP_APIKEYS_H
#define INFSCHED_HTTP_APIKEYS_H

#include "infsched/types.h"

#include <stddef.h>

#define APIKEYS_KEY_MIN 16  /* characters of a key, at least */
#define APIKEYS_KEY_MAX 256 /* and at most */
#define APIKEYS_TENANT_MAX 63
#define APIKEYS_MAX 10000 /* keys in one file */

typedef struct apikeys apikeys_t;

/* Loads the keys file at path. Returns 0 and a set the caller destroys, or
 * a negative code (-errno when the file cannot be read, INFS_ECONFIG when
 * it is not a valid keys file: a duplicate key, a short key, an unknown
 * class or field) with "PATH[:LINE]: why" in err. */
int apikeys_load(const char *path, apikeys_t **out, char *err, size_t errlen);
void apikeys_destroy(apikeys_t **k);

/* The tenant (an index below apikeys_tenants) whose key is the len bytes
 * at key, with in *cls the class the key gives requests that name none;
 * -1 when no key matches. Every key is compared, each in time that depends
 * on len alone, so the answer's timing tells nothing of the keys. */
int apikeys_lookup(const apikeys_t *k, const char *key, size_t len,
                   infs_class_t *cls);

/* Tenants, numbered from 0 in the order the file first names them. */
size_t apikeys_tenants(const apikeys_t *k);
const char *apikeys_tenant_name(const apikeys_t *k, size_t tenant);

#endif
