/*
 * raft_io_ks.h — libraft's `struct raft_io` for Kiseki: every Raft group of
 * a node stores its state in one ks_raft_store (LMDB) and talks to its peers
 * over the node's one RPC server (DESIGN.md §5).
 *
 * OBJECTS.  A ks_raft_node_t is per node: it owns the group-commit queue,
 * the map from group id to io instance, and one ks_rpc_client_t per peer
 * address (one connection per peer pair, shared by all groups).  Each Raft
 * group gets a `struct raft_io` filled by ks_raft_io_init(), passed to
 * raft_init(), and released by raft_close() (the io's close frees what
 * ks_raft_io_init allocated).  Everything runs on the node's loop thread.
 *
 * GROUP COMMIT.  io->append does not write: it queues the entries and arms a
 * zero-delay timer.  When the timer fires (next loop turn), the appends of
 * every group queued since the last flush are written in ONE LMDB write
 * transaction; its commit is the fsync.  Only then do their callbacks run,
 * in queue order, with status 0 (or RAFT_IOERR for all if the commit
 * failed).  set_term, set_vote, truncate, bootstrap, recover and
 * snapshot_put are synchronous in libraft's contract: each writes the
 * appends still queued plus its own change in one transaction and commits
 * before returning, so order on disk is the order of the calls.
 *
 * POISONING.  A failed write transaction (disk full, I/O error) leaves the
 * node's idea of each group's next index untrustworthy, so the node stops:
 * every later write fails with RAFT_IOERR until the process restarts and
 * reloads from the store.
 *
 * NETWORK.  A message is one RPC (opcode KS_OP_RAFT_MSG) to the peer's
 * address ("host:port" of its meta RPC server), tagged with the group id;
 * entry payloads and snapshot data travel as RPC bulk.  The receiving node
 * decodes it (defensively: corrupt input is an error status, never a crash),
 * answers at once, and hands it to the group's recv callback.  A send
 * completes (its raft callback runs) when the peer's answer arrives or the
 * call fails; status is 0 or RAFT_NOCONNECTION.
 *
 * IDLE COST.  A group costs its io struct, its libraft tick timer (a libuv
 * timer in the loop's heap: O(log n) per tick, no thread, no fd) and nothing
 * else: no per-group connection, file or flush timer.
 *
 * CLOSING.  io->close (from raft_close) stops the tick, unregisters the
 * group, waits for its queued appends, snapshot loads, async work and
 * in-flight sends (bounded by send_timeout_ms), then runs raft's close
 * callback.  Close every group's raft, then the RPC server (its handler
 * points at the node), then the node, then the store.
 *
 * ERRORS.  ks_raft_* functions return 0 or a negative ks/err.h code; the
 * raft_io methods return 0 or a RAFT_* code as libraft expects, with text in
 * io->errmsg.
 */
#ifndef KS_RAFT_IO_KS_H
#define KS_RAFT_IO_KS_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "ks/enc.h"
#include "ks/metrics.h"
#include "ks/raft_store.h"
#include "ks/rpc.h"

/* Raft messages of every group (meta's opcode range starts at 0x100). */
#define KS_OP_RAFT_MSG 0x101
/* Longest server address ("host:port"), including the NUL. */
#define KS_RAFT_ADDR_MAX 128
#define KS_RAFT_DEFAULT_SEND_TIMEOUT_MS 5000

typedef struct ks_raft_node ks_raft_node_t;

typedef struct ks_raft_node_opts {
  const ks_rpc_opts_t *rpc; /* options of the peer clients; NULL: defaults */
  uint32_t send_timeout_ms; /* 0: KS_RAFT_DEFAULT_SEND_TIMEOUT_MS */
  /* Unlabelled histograms (ks/metrics.h) the node observes at every
   * committed write transaction: its commit (fsync) time in seconds and the
   * entries it wrote.  NULL: not observed.  Borrowed: the registry must
   * outlive the node. */
  ks_metric_t *commit_seconds;
  ks_metric_t *commit_entries;
} ks_raft_node_opts_t;

typedef struct ks_raft_node_stats {
  uint64_t appends;       /* io->append calls */
  uint64_t flushes;       /* group-commit transactions */
  uint64_t commits;       /* write transactions committed (one fsync each) */
  uint64_t entries;       /* log entries written by those commits */
  uint64_t snapshots;     /* snapshots taken by this node's groups */
  uint64_t installs;      /* snapshots installed from a leader */
  uint64_t msgs_sent;     /* messages handed to the RPC layer */
  uint64_t msgs_recv;     /* messages delivered to a group */
  uint64_t msgs_rejected; /* undecodable, or for an unknown group */
} ks_raft_node_stats_t;

/* Create a node on loop over store (which must outlive it).  srv: the
 * node's RPC server, on which the node registers KS_OP_RAFT_MSG; NULL for a
 * node without network (single-voter groups).  Errors: -ENOMEM, and
 * ks_rpc_server_handle's (-EEXIST: the opcode is already taken). */
int ks_raft_node_new(uv_loop_t *loop, ks_raft_store_t *store,
                     ks_rpc_server_t *srv, const ks_raft_node_opts_t *opts,
                     ks_raft_node_t **out);
/* Close the peer connections and the flush timer, free the node, then
 * cb(arg).  Every group's io must have been closed (asserted). */
void ks_raft_node_close(ks_raft_node_t *node, ks_rpc_close_cb cb, void *arg);
void ks_raft_node_stats(const ks_raft_node_t *node, ks_raft_node_stats_t *st);

/* Fill io (caller-owned, must stay valid until raft's close callback) with
 * this implementation for group `group` of node, and register the group.
 * Pass io to raft_init() afterwards.  Errors: -EEXIST (group already has an
 * io on this node), -ENOMEM. */
int ks_raft_io_init(struct raft_io *io, ks_raft_node_t *node, uint64_t group);
/* Release an io that was never closed through libraft (raft_init failed or
 * was never called).  An io that raft started must be closed by
 * raft_close() instead. */
void ks_raft_io_fini(struct raft_io *io);

/* ---- Message codec (pure; exposed for tests and fuzzing) -------------- */

/* Encode m (as sent by server from_id at from_addr, for group) into body;
 * bulk receives up to KS_RPC_IOV_MAX pieces pointing into m's entries or
 * snapshot data (copied into *copy when there are more entries than pieces;
 * the caller frees copy).  Errors: -ENOMEM, -EINVAL (unknown type, address
 * too long). */
int ks_raft_msg_encode(uint64_t group, raft_id from_id, const char *from_addr,
                       const struct raft_message *m, ks_enc_t *body,
                       struct iovec bulk[KS_RPC_IOV_MAX], int *nbulk,
                       ks_buf_t *copy);

/* Decode a message.  On success *out holds raft_malloc'd entries (one batch)
 * or snapshot data and configuration, owned by the caller until handed to
 * libraft's recv callback (or released with ks_raft_msg_release), and
 * out->server_address points at addr.  On failure nothing is allocated.
 * Errors: KS_EPROTO (malformed), KS_ETOOBIG, -ENOMEM. */
int ks_raft_msg_decode(const uint8_t *body, size_t body_len,
                       const uint8_t *bulk, size_t bulk_len, uint64_t *group,
                       char addr[KS_RAFT_ADDR_MAX], struct raft_message *out);
void ks_raft_msg_release(struct raft_message *m);

/* The configuration encoding used in snapshot records and messages:
 * u32 n, then n × (u64 id, u8 role, str address). */
void ks_raft_conf_encode(ks_enc_t *e, const struct raft_configuration *c);
/* Decode into c (initialised here; raft_configuration_close frees it, also
 * on failure).  Errors: KS_EPROTO. */
int ks_raft_conf_decode(ks_dec_t *d, struct raft_configuration *c);

#endif /* KS_RAFT_IO_KS_H */
