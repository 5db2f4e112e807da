/*
 * net.h — address helpers shared by daemons, clients and tools.
 */
#ifndef KS_NET_H
#define KS_NET_H

#include <stddef.h>
#include <stdint.h>

/* Split "host:port", "[v6]:port" or ":port" (host "0.0.0.0") into a numeric
 * host and a port.  The host must be a numeric IPv4/IPv6 address: daemons
 * never resolve names on start-up, so a config cannot hang on DNS.
 * Returns 0, -EINVAL (malformed, port not 0..65535) or -ENOSPC (host too long
 * for the buffer). */
int ks_hostport_parse(const char *s, char *host, size_t host_size,
                      uint16_t *port);

#endif /* KS_NET_H */
