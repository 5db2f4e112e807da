/*
 * raft_store.h — the persistent state of every Raft group of a node, in one
 * LMDB environment (DESIGN.md §5).
 *
 * WHY ONE ENVIRONMENT.  A node hosts many shards, each a Raft group.  With
 * one environment every group's log lives in the same B-tree, so appends of
 * many groups are one write transaction and one fsync (group commit, driven
 * by raft_io_ks.c), and an idle group costs no file, no handle and no timer.
 *
 * LAYOUT.  Three named databases; keys are big-endian so that memcmp order
 * is (group, index) order; values use ks/enc.h (little-endian):
 *
 *   "log"   key  group u64 BE | index u64 BE
 *           val  u8 version(1) | u64 term | u16 type | payload (rest)
 *   "meta"  key  group u64 BE | u8 kind
 *           kind 1 (state):    u8 version(1) | u64 term | u64 vote
 *           kind 2 (snapshot): u8 version(1) | u64 index | u64 term |
 *                              u64 conf_index | u64 size | u32 chunk |
 *                              blob configuration
 *   "snap"  key  group u64 BE | chunk number u32 BE
 *           val  the snapshot bytes, KS_RAFT_SNAP_CHUNK per chunk (the last
 *                one shorter)
 *
 * The configuration blob is opaque here (raft_io_ks.c encodes it).
 *
 * TRANSACTIONS.  Writes happen inside the store's single write transaction:
 * ks_raft_store_begin(), any number of *_put / *_delete, then
 * ks_raft_store_commit() (durable when it returns 0: LMDB fsyncs the data
 * file on commit) or ks_raft_store_abort().  Reads open their own read-only
 * transaction (MDB_NOTLS) and may run while the write transaction is open;
 * they see the last committed state.
 *
 * THREADS.  A store is used from one thread (the node's loop thread).
 *
 * ERRORS.  0 or a negative code: -ENOENT (absent), -ENOSPC (map full),
 * -EBUSY (a write transaction is already open), -EINVAL (no write
 * transaction open), KS_ECORRUPT (a record that does not decode), -EIO or a
 * negated errno for other LMDB failures (logged with LMDB's text).  After a
 * failed put the write transaction must be aborted.
 */
#ifndef KS_RAFT_STORE_H
#define KS_RAFT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ks/buf.h"

/* Default map size: the largest the environment may grow to.  LMDB maps it
 * sparsely, so a large default costs address space, not disk. */
#define KS_RAFT_STORE_DEFAULT_MAP_SIZE (4ULL << 30)
/* Snapshot chunk size.  Values this large live on LMDB overflow pages;
 * chunking keeps each one far below the map and lets a reader stream. */
#define KS_RAFT_SNAP_CHUNK (256U << 10)

typedef struct ks_raft_store ks_raft_store_t;

typedef struct ks_raft_store_opts {
  uint64_t map_size; /* 0: KS_RAFT_STORE_DEFAULT_MAP_SIZE */
} ks_raft_store_opts_t;

/* The snapshot record of one group. */
typedef struct ks_raft_snap_hdr {
  uint64_t index;
  uint64_t term;
  uint64_t conf_index;
  uint64_t size; /* bytes of snapshot data */
} ks_raft_snap_hdr_t;

/* Open (creating if needed) the environment in directory dir, which must
 * exist.  opts may be NULL.  The store owns the environment until
 * ks_raft_store_close(). */
int ks_raft_store_open(const char *dir, const ks_raft_store_opts_t *opts,
                       ks_raft_store_t **out);
/* Close; an open write transaction is aborted.  NULL is a no-op. */
void ks_raft_store_close(ks_raft_store_t *st);

/* Write transactions committed so far (successful commits), for tests and
 * metrics: group commit shows as fewer commits than appends. */
uint64_t ks_raft_store_commits(const ks_raft_store_t *st);

/* ---- Writing (inside begin .. commit/abort) ------------------------- */
int ks_raft_store_begin(ks_raft_store_t *st);
int ks_raft_store_commit(ks_raft_store_t *st);
void ks_raft_store_abort(ks_raft_store_t *st);

/* Store one log entry (replacing any entry at that index).  The payload is
 * copied into the map. */
int ks_raft_store_entry_put(ks_raft_store_t *st, uint64_t group, uint64_t index,
                            uint64_t term, uint16_t type, const void *payload,
                            size_t len);
/* Delete the group's entries with from <= index <= to (UINT64_MAX: to the
 * end of the log).  Absent entries are not an error. */
int ks_raft_store_entries_delete(ks_raft_store_t *st, uint64_t group,
                                 uint64_t from, uint64_t to);
/* Store the group's current term and vote. */
int ks_raft_store_state_put(ks_raft_store_t *st, uint64_t group, uint64_t term,
                            uint64_t vote);
/* Replace the group's snapshot: header, configuration blob and data given
 * as n pieces whose lengths add up to hdr->size. */
int ks_raft_store_snapshot_put(ks_raft_store_t *st, uint64_t group,
                               const ks_raft_snap_hdr_t *hdr, const void *conf,
                               size_t conf_len, const struct iovec *data,
                               int n);

/* ---- Reading (own read-only transaction) ---------------------------- */

/* Term and vote; both 0 (and return 0) when the group has none yet. */
int ks_raft_store_state_get(ks_raft_store_t *st, uint64_t group, uint64_t *term,
                            uint64_t *vote);
/* The snapshot header and its configuration blob (appended to conf, which
 * the caller owns).  -ENOENT when the group has no snapshot. */
int ks_raft_store_snapshot_get(ks_raft_store_t *st, uint64_t group,
                               ks_raft_snap_hdr_t *hdr, ks_buf_t *conf);
/* Copy the snapshot data, hdr->size bytes, into dst.  KS_ECORRUPT when the
 * chunks do not add up to the header's size. */
int ks_raft_store_snapshot_read(ks_raft_store_t *st, uint64_t group,
                                const ks_raft_snap_hdr_t *hdr, void *dst);

/* First and last index of the group's log; -ENOENT when it is empty. */
int ks_raft_store_log_bounds(ks_raft_store_t *st, uint64_t group,
                             uint64_t *first, uint64_t *last);

/* Called for each entry in index order; payload points into the map and is
 * valid only during the call.  A non-zero return stops the scan and is
 * returned by ks_raft_store_log_scan. */
typedef int (*ks_raft_store_entry_fn)(void *arg, uint64_t index, uint64_t term,
                                      uint16_t type, const uint8_t *payload,
                                      size_t len);
/* Visit the group's entries with index >= from.  KS_ECORRUPT when a value
 * does not decode. */
int ks_raft_store_log_scan(ks_raft_store_t *st, uint64_t group, uint64_t from,
                           ks_raft_store_entry_fn fn, void *arg);

#endif /* KS_RAFT_STORE_H */
