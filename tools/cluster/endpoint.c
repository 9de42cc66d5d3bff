#include "endpoint.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Splits "tcp://HOST:PORT" into host (brackets removed) and port. Returns 0,
 * or -1 when addr is not a tcp endpoint of that shape. */
static int split_tcp(const char *addr, char *host, size_t hlen, char *port,
                     size_t plen) {
  static const char prefix[] = "tcp://";
  if (strncmp(addr, prefix, sizeof prefix - 1) != 0)
    return -1;
  const char *h = addr + sizeof prefix - 1;
  /* tcp://source;dest names a source address; only dest is bound. */
  const char *semi = strchr(h, ';');
  if (semi)
    return -1;
  const char *colon = strrchr(h, ':');
  if (!colon || colon == h || !colon[1])
    return -1;
  size_t n = (size_t)(colon - h);
  if (h[0] == '[' && colon[-1] == ']') {
    h++;
    n -= 2;
  }
  if (n >= hlen || strlen(colon + 1) >= plen)
    return -1;
  memcpy(host, h, n);
  host[n] = '\0';
  snprintf(port, plen, "%s", colon + 1);
  return 0;
}

int endpoint_check_bindable(const char *addr, char *err, size_t errlen) {
  char host[256], port[16];
  struct addrinfo hints, *res = NULL;
  int rc = 0, fd = -1, one = 1;

  if (split_tcp(addr, host, sizeof host, port, sizeof port) != 0)
    return 0;
  if (strcmp(port, "*") == 0 || strcmp(port, "0") == 0)
    return 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST;
  /* ZeroMQ binds "*" on IPv4 unless ZMQ_IPV6 is set. */
  hints.ai_family = strcmp(host, "*") == 0 ? AF_INET : AF_UNSPEC;
  if (getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res))
    return 0; /* an interface name: leave it to the daemon */
  fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd < 0)
    goto out;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1) != 0) {
    rc = -errno;
    snprintf(err, errlen, "%s: %s", addr, strerror(errno));
  }
out:
  if (fd >= 0)
    close(fd);
  freeaddrinfo(res);
  return rc;
}

int endpoint_connect_addr(const char *bind_addr, char *out, size_t len) {
  char host[256], port[16];
  const char *loop = NULL;
  if (split_tcp(bind_addr, host, sizeof host, port, sizeof port) == 0) {
    if (strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
      loop = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
      loop = "[::1]";
  }
  int n = loop ? snprintf(out, len, "tcp://%s:%s", loop, port)
               : snprintf(out, len, "%s", bind_addr);
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
