/*
 * admin_http.h — every daemon's admin HTTP listener (DESIGN §11): h2o's
 * libuv flavour on the daemon's own loop, serving
 *
 *   GET /metrics   200, the registry in the Prometheus text format 0.0.4
 *                  (Content-Type: text/plain; version=0.0.4)
 *   GET /healthz   200 "ok\n" (the process is up and its loop turns)
 *   other paths    404
 *   other methods  405 with Allow: GET, HEAD   (HEAD is GET without a body)
 *
 * Plain HTTP/1.1 only (no TLS, no h2c): bind it to a management address.
 * Each daemon has one setting, `admin.listen` (host:port); the defaults are
 * the daemon's RPC port + 1 (meta 7101, chunkd 7201, keyserver 7301) and
 * 9001 for s3d (S3 on 9000).  Port 0 takes any free port
 * (ks_admin_http_port says which).
 *
 * Ownership and threads: the listener belongs to the loop's thread; the
 * registry is borrowed and must outlive it (its read callbacks run on the
 * loop thread during a scrape).  ks_admin_http_close() is asynchronous and
 * graceful: it stops accepting, lets each connection finish the answer it
 * is writing (after grace_ms, connections still open are shut down), then
 * frees everything and calls cb; after cb the loop holds no handle of it.
 */
#ifndef KS_ADMIN_HTTP_H
#define KS_ADMIN_HTTP_H

#include "ks/metrics.h"

#include <stdint.h>
#include <uv.h>

typedef struct ks_admin_http ks_admin_http_t;

typedef struct ks_admin_http_opts {
  const char *host;      /* numeric IPv4 or IPv6 address to listen on */
  uint16_t port;         /* 0: any free port */
  ks_metrics_t *metrics; /* served on /metrics; borrowed */
  uint32_t timeout_ms;   /* reading a request; 0: 10 s */
  uint32_t grace_ms;     /* close: 0: 2 s */
} ks_admin_http_opts_t;

/* Bind and listen.  Errors: KS_ECONFIG (host not a numeric address),
 * -EADDRINUSE and other -errno from the socket, -ENOMEM; on failure nothing
 * is left open on the loop (a handle being closed is gone after the next
 * loop run). */
int ks_admin_http_new(uv_loop_t *loop, const ks_admin_http_opts_t *opts,
                      ks_admin_http_t **out);

/* The port actually bound. */
uint16_t ks_admin_http_port(const ks_admin_http_t *a);

/* Requests answered so far (any status). */
uint64_t ks_admin_http_requests(const ks_admin_http_t *a);

typedef void (*ks_admin_http_close_cb)(void *arg);
/* Graceful close (see above); cb may be NULL.  a is freed before cb runs. */
void ks_admin_http_close(ks_admin_http_t *a, ks_admin_http_close_cb cb,
                         void *arg);

#endif /* KS_ADMIN_HTTP_H */
