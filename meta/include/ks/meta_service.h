/*
 * meta_service.h — the metadata RPC service of a meta node: it hosts shard
 * replicas (one libraft group per shard, ks/raft_io_ks.h, with the state
 * machine of ks/shard.h) and answers ks/proto_meta.h requests.
 *
 * WRITES.  A WRITE request's delta is checked to decode, then proposed with
 * raft_apply on the shard's group; the reply is sent after the delta is
 * committed and applied, with the apply's outcome as the RPC status and the
 * result (inode, size, ETag) as the body.  A replica that is not the
 * shard's leader answers KS_META_ENOTLEADER at once (nothing proposed).
 *
 * READS are linearizable.  In a group of several voters a read is answered
 * from LMDB only after a Raft barrier that was started after the read
 * arrived has completed on the leader.  Reads are batched: the reads that
 * arrive in one loop turn share one barrier (one log entry), and up to a
 * few barriers are in flight at once.  A leader that is its group's only
 * voter answers at once, with no log entry, once it has committed an entry
 * of its term and applied every committed entry (service.c, READ PATH).
 *
 * LIFE CYCLE.  new → shard_start (per hosted shard) → serving → close (closes
 * every raft group; requests still queued fail with KS_ECLOSED; later
 * requests are answered KS_ECLOSED) → close the RPC server → close the raft
 * node → free.  The service must stay allocated until the server is
 * closed, since the server's handlers point at it.
 *
 * METRICS.  ks_meta_service_metrics registers the service's families
 * (requests by operation and outcome, their latency, the Raft state of each
 * hosted shard, the node's Raft I/O counters) in a ks/metrics.h registry.
 * Counters are plain integers on the loop thread, read at scrape time (the
 * admin listener renders on the same loop); only the latency histogram is
 * an owned cell.  Label values are fixed at registration, so a shard
 * started afterwards has no series until the registry is rebuilt.
 *
 * THREADS.  Everything on the loop's thread.  ERRORS: 0 or a negative
 * ks/err.h code.
 */
#ifndef KS_META_SERVICE_H
#define KS_META_SERVICE_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ks/metrics.h"
#include "ks/raft_io_ks.h"
#include "ks/rpc.h"
#include "ks/shard.h"

typedef struct ks_meta_service ks_meta_service_t;

typedef struct ks_meta_service_opts {
  unsigned snapshot_threshold; /* entries between snapshots; 0: 1024 */
  unsigned snapshot_trailing;  /* entries kept after one; 0: 128 */
  /* The threshold grows to this many entries per record of the shard at
   * its last snapshot, so that snapshots cost O(1) per entry; 0: 2. */
  unsigned snapshot_per_record;
  /* ... but no further than this many bytes of entries (at the mean entry
   * size seen), since libraft holds them in memory until the snapshot and
   * restart replays them; 0: KS_META_SNAPSHOT_LOG_MAX. */
  uint64_t snapshot_log_max;
} ks_meta_service_opts_t;

#define KS_META_SNAPSHOT_LOG_MAX (1ULL << 30)

typedef struct ks_meta_service_stats {
  uint64_t writes;      /* deltas proposed */
  uint64_t reads;       /* reads answered */
  uint64_t barriers;    /* barriers run for them */
  uint64_t local_reads; /* reads answered without a barrier */
} ks_meta_service_stats_t;

/* Register the meta opcodes on srv and flush the state once per loop turn.
 * loop, srv, node and st must outlive the service.  opts may be NULL. */
int ks_meta_service_new(uv_loop_t *loop, ks_rpc_server_t *srv,
                        ks_raft_node_t *node, ks_meta_state_t *st,
                        const ks_meta_service_opts_t *opts,
                        ks_meta_service_t **out);

/* Host shard `shard` as Raft server `id` at `address` (the node's RPC
 * address) and start its group.  When bootstrap is non-NULL and the group
 * has no log yet, it is bootstrapped with that configuration first (a log
 * that exists is left alone: restart).  Errors: -EEXIST, -ENOMEM, KS_EIO
 * style codes from libraft as -EIO. */
int ks_meta_service_shard_start(ks_meta_service_t *svc, uint64_t shard,
                                uint64_t id, const char *address,
                                const struct raft_configuration *bootstrap);

/* Is this node the shard's leader right now? */
bool ks_meta_service_is_leader(ks_meta_service_t *svc, uint64_t shard);
/* The snapshot threshold in force for a hosted shard (0: not hosted). */
unsigned ks_meta_service_snapshot_threshold(ks_meta_service_t *svc,
                                            uint64_t shard);
void ks_meta_service_stats(const ks_meta_service_t *svc,
                           ks_meta_service_stats_t *st);

/* Register the metrics described above in m, with one `shard` label value
 * per shard hosted now.  Call after the shards are started; m and its
 * scrapes must not outlive the service (close the admin listener before
 * closing the service).  Errors: those of ks/metrics.h (-EINVAL with more
 * than KS_METRIC_VALUES_MAX shards), -ENOMEM. */
int ks_meta_service_metrics(ks_meta_service_t *svc, ks_metrics_t *m);

/* Close every raft group; cb(arg) once all are closed. */
void ks_meta_service_close(ks_meta_service_t *svc, ks_rpc_close_cb cb,
                           void *arg);
/* Free a closed service (after the RPC server is closed).  NULL: no-op. */
void ks_meta_service_free(ks_meta_service_t *svc);

#endif /* KS_META_SERVICE_H */
