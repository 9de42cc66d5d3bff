/* ZeroMQ endpoint helpers for the launcher: whether a TCP endpoint can be
 * bound before a daemon tries, and where to connect to reach a bound one. */
#ifndef INFSCHED_CLUSTER_ENDPOINT_H
#define INFSCHED_CLUSTER_ENDPOINT_H

#include <stddef.h>

/* Tries to bind the TCP port of a tcp:// endpoint (with SO_REUSEADDR, as
 * ZeroMQ binds). Returns 0 when it is free or cannot be checked here (other
 * transports, interface names, port "*"), or -errno with a message in err. */
int endpoint_check_bindable(const char *addr, char *err, size_t errlen);

/* The endpoint a local process connects to in order to reach a bind
 * endpoint: wildcard hosts become loopback. Returns 0, or -ENAMETOOLONG. */
int endpoint_connect_addr(const char *bind_addr, char *out, size_t len);

#endif
