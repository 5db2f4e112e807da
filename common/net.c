/*
 * net.c — address helpers (see ks/net.h).
 */
#include "ks/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *port)
{
  char *end = NULL;
  if (*s < '0' || *s > '9')
    return -EINVAL;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > 65535)
    return -EINVAL;
  *port = (uint16_t)v;
  return 0;
}

int ks_hostport_parse(const char *s, char *host, size_t host_size,
                      uint16_t *port)
{
  const char *h = s;
  size_t hlen;
  const char *colon;
  if (s == NULL)
    return -EINVAL;
  if (*s == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':')
      return -EINVAL;
    h = s + 1;
    hlen = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
      return -EINVAL; /* bare IPv6 must be bracketed */
    hlen = (size_t)(colon - s);
  }
  if (hlen == 0) {
    h = "0.0.0.0";
    hlen = 7;
  }
  if (hlen + 1 > host_size)
    return -ENOSPC;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  unsigned char addr[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, host, addr) != 1 &&
      inet_pton(AF_INET6, host, addr) != 1)
    return -EINVAL;
  return parse_port(colon + 1, port);
}
