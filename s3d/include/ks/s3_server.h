/*
 * s3_server.h — the S3 HTTP server of kiseki-s3d: h2o 2.2.5 (its libuv
 * flavour) on a caller's uv_loop_t, one handler on "/" that turns each
 * request into an S3 operation on a backend (ks/s3_backend.h).
 *
 * Per request: addressing and operation (ks/s3_req.h), SigV4 (ks/s3_sigv4.h:
 * header, presigned, aws-chunked with every chunk verified, clock skew),
 * body checks (x-amz-content-sha256, Content-MD5, x-amz-checksum-crc32c and
 * -sha256), limits, then the backend; answers carry x-amz-request-id, and
 * errors are S3 XML with the same RequestId.  GETs stream through an h2o
 * generator that pulls from the backend's read() as the client drains.
 *
 * Limits and what enforces them:
 *  - body: max_body (S3's 5 GiB), checked by h2o against Content-Length
 *    before reading (h2o answers 413 itself); bodies past 32 MiB are kept
 *    in a file-backed mmap in mmap_dir (h2o_socket_buffer_mmap_settings,
 *    process-wide: the last server created sets it);
 *  - header section: max_header_bytes (RequestHeaderSectionTooLarge), and
 *    h2o's own compile-time caps (100 headers, ~400 KiB: 400 from h2o);
 *  - time: req_timeout_ms, h2o's HTTP/1 timeout for reading a request
 *    (headers and body); a client that stalls is disconnected.
 *    The same limit bounds a GET whose client stops reading (no proceed
 *    for that long: the connection is closed).
 *
 * Ownership and threads: the server and the backend it was given belong to
 * the loop's thread.  ks_s3_server_close() is graceful and asynchronous:
 * it stops accepting, lets requests in flight finish (idle keep-alive
 * connections are closed), then frees everything and runs the callback;
 * after grace_ms it stops waiting and reports KS_ETIMEDOUT (connections
 * still open are then abandoned to process exit).
 */
#ifndef KS_S3_SERVER_H
#define KS_S3_SERVER_H

#include "ks/s3_backend.h"

#include <stdint.h>
#include <uv.h>

typedef struct ks_s3_server ks_s3_server_t;

typedef struct ks_s3_server_opts {
  const char *host;          /* numeric address to listen on */
  uint16_t port;             /* 0: any free port (see ks_s3_server_port) */
  const char *domain;        /* virtual-hosted style suffix; NULL: path only */
  const char *region;        /* signing region required; NULL: us-east-1 */
  const char *mmap_dir;      /* large bodies; NULL: /tmp */
  uint64_t max_body;         /* 0: 5 GiB */
  uint32_t max_header_bytes; /* 0: 16 KiB */
  uint32_t req_timeout_ms;   /* 0: 30 s */
  uint32_t grace_ms;         /* close: 0: 30 s */
  uint32_t read_chunk;       /* GET pull size; 0: 1 MiB */
} ks_s3_server_opts_t;

/* Bind and listen.  be must outlive the server.  0, -errno from the
 * socket, -ENOMEM or KS_ECONFIG; on failure nothing is left open. */
int ks_s3_server_new(uv_loop_t *loop, const ks_s3_server_opts_t *opts,
                     const ks_s3_backend_t *be, ks_s3_server_t **out);

/* The port actually bound. */
uint16_t ks_s3_server_port(const ks_s3_server_t *s);

typedef void (*ks_s3_server_close_cb)(void *arg, int status);
/* Graceful close (see above).  cb may be NULL.  status: 0, or KS_ETIMEDOUT
 * when grace_ms ran out with connections open (the server's memory is then
 * left for process exit, the loop keeps those handles). */
void ks_s3_server_close(ks_s3_server_t *s, ks_s3_server_close_cb cb, void *arg);

/* Counters for tests and metrics. */
typedef struct ks_s3_server_stats {
  uint64_t requests; /* handled by the S3 handler */
  uint64_t errors;   /* answered with an S3 error (4xx/5xx, not 304) */
  uint64_t conns;    /* open connections */
  uint64_t inflight; /* requests not finished */
} ks_s3_server_stats_t;
void ks_s3_server_stats(const ks_s3_server_t *s, ks_s3_server_stats_t *out);

#endif /* KS_S3_SERVER_H */
