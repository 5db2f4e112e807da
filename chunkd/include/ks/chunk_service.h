/*
 * chunk_service.h — chunkd's RPC service: the handlers of FRAG_PUT, FRAG_GET,
 * FRAG_DELETE, FRAG_STAT and DEV_LIST (ks/proto_chunk.h) over a
 * ks_chunk_store_t.
 *
 * Every request becomes one job.  Disk work runs on the libuv threadpool
 * (uv_queue_work), never on the loop thread; the reply is sent from the
 * loop thread when the job is done, with a fragment's bytes as the reply's
 * bulk, pointing into the buffer the store read them into (no copy).
 *
 * BOUNDS.  Each device runs at most `dev_jobs` jobs at once (so one slow or
 * hung disk holds at most that many threadpool threads, and an hdd is not
 * drowned in seeks); further jobs wait in the device's FIFO of at most
 * `dev_queue`, beyond which the request is answered KS_EBUSY.  DEV_LIST
 * jobs have a queue of their own.  Size the threadpool (UV_THREADPOOL_SIZE,
 * set before the loop's first work) to about devices x dev_jobs.
 *
 * THREADS AND LIFETIME.  The service belongs to its loop's thread.  It must
 * outlive every server it is registered on: close the servers first (their
 * close waits for every request to be answered, hence for every job), then
 * ks_chunk_service_free.  The store must outlive the service.
 */
#ifndef KS_CHUNK_SERVICE_H
#define KS_CHUNK_SERVICE_H

#include <stdint.h>
#include <uv.h>

#include "ks/chunk_store.h"
#include "ks/rpc.h"

#define KS_CHUNK_DEFAULT_DEV_JOBS 4
#define KS_CHUNK_DEFAULT_DEV_QUEUE 1024

typedef struct ks_chunk_service ks_chunk_service_t;

typedef struct ks_chunk_service_opts {
  uint32_t dev_jobs;  /* 0: KS_CHUNK_DEFAULT_DEV_JOBS */
  uint32_t dev_queue; /* 0: KS_CHUNK_DEFAULT_DEV_QUEUE */
} ks_chunk_service_opts_t;

/* opts may be NULL.  Errors: -ENOMEM. */
int ks_chunk_service_new(uv_loop_t *loop, ks_chunk_store_t *st,
                         const ks_chunk_service_opts_t *opts,
                         ks_chunk_service_t **out);
/* Register the five handlers on a server.  Errors: -EEXIST, -ENOSPC (from
 * ks_rpc_server_handle). */
int ks_chunk_service_register(ks_chunk_service_t *svc, ks_rpc_server_t *srv);
/* Operations, as counted by ks_chunk_service_stats. */
typedef enum ks_chunk_op_stat {
  KS_CHUNK_STAT_PUT,
  KS_CHUNK_STAT_GET,
  KS_CHUNK_STAT_DELETE,
  KS_CHUNK_STAT_STAT,
  KS_CHUNK_STAT_DEV_LIST,
  KS_CHUNK_STAT_OPS
} ks_chunk_op_stat_t;

/* Counters since the service was made (for metrics).  requests: handled;
 * errors: answered with a non-zero status (including not found, busy and
 * undecodable requests); bytes: fragment payload stored by puts and sent
 * by gets that succeeded. */
typedef struct ks_chunk_service_stats {
  uint64_t requests[KS_CHUNK_STAT_OPS];
  uint64_t errors[KS_CHUNK_STAT_OPS];
  uint64_t bytes_put;
  uint64_t bytes_got;
} ks_chunk_service_stats_t;

/* Name of an operation in stats ("put", "get", "delete", "stat",
 * "dev_list"). */
const char *ks_chunk_op_stat_name(ks_chunk_op_stat_t op);
/* A copy of the counters; loop thread only. */
void ks_chunk_service_stats(const ks_chunk_service_t *svc,
                            ks_chunk_service_stats_t *out);
/* Jobs accepted and not yet answered (queued, running or replying). */
uint32_t ks_chunk_service_jobs(const ks_chunk_service_t *svc);
/* Free the service; every job must be finished (see above).  NULL: no-op. */
void ks_chunk_service_free(ks_chunk_service_t *svc);

#endif /* KS_CHUNK_SERVICE_H */
