/*
 * shard.h — a metadata shard's state machine (DESIGN.md §3, §5): the
 * libraft FSM that applies typed deltas (ks/proto_meta.h) to LMDB, takes and
 * restores snapshots as LMDB reads and writes, and answers queries.
 *
 * OBJECTS.  A ks_meta_state_t is the node's one LMDB environment holding
 * every shard's state (DESIGN §5); a ks_meta_shard_t is one shard in it,
 * with the struct raft_fsm to hand to raft_init().  The state environment is
 * a *view* rebuilt from Raft: ks_meta_state_open() discards what a previous
 * process left and libraft rebuilds every shard from its last snapshot and
 * log (see shard.c for why that makes an unsynced environment safe).
 *
 * APPLY.  ks_meta_shard_apply() applies one encoded delta (what libraft's
 * fsm->apply does) and reports the outcome in a ks_meta_result_t: the
 * delta's own error (KS_META_E*: the bucket does not exist, ...) is a
 * normal outcome of a deterministic apply and is returned in *err, with
 * nothing changed.  The function's return value is reserved for the
 * storage failing (-ENOSPC: map full, -EIO): the state is then poisoned and
 * every later apply fails, because a replica that skipped a delta must not
 * serve (the daemon stops; a restart rebuilds from Raft).
 *
 * BATCHING.  Applies share one LMDB write transaction (each delta in a
 * nested one, so a failed delta leaves no trace) until ks_meta_state_flush()
 * commits it; every read (query, snapshot) flushes first, so reads always
 * see every applied delta.  The service flushes once per loop turn.
 *
 * QUERIES (shard_query.c) write their answer as a response body
 * (ks/proto_meta.h) into an encoder, ready to reply with: 0, or
 * KS_META_ENOBUCKET / ENOKEY / ENOUPLOAD / ENOACCESSKEY, KS_META_EINVAL,
 * -ENOMEM, or a storage error.
 *
 * THREADS.  One thread (the node's loop thread) uses a state and its
 * shards.  Ownership: the caller owns both and must free every shard before
 * its state.
 */
#ifndef KS_SHARD_H
#define KS_SHARD_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#include "ks/buf.h"
#include "ks/enc.h"
#include "ks/proto_meta.h"

/* The state map grows to at most this; LMDB maps it sparsely. */
#define KS_META_STATE_DEFAULT_MAP_SIZE (16ULL << 30)
/* Applies per write transaction before it is committed anyway (bounds the
 * dirty pages LMDB keeps in memory). */
#define KS_META_STATE_BATCH_MAX 4096
/* The first inode number a shard hands out (1 is the bucket's root). */
#define KS_META_FIRST_INO 2

typedef struct ks_meta_state ks_meta_state_t;
typedef struct ks_meta_shard ks_meta_shard_t;

/* Open the state environment in directory dir (created if missing),
 * discarding any previous contents.  map_size 0: the default.  Errors: a
 * negated errno, -ENOMEM. */
int ks_meta_state_open(const char *dir, uint64_t map_size,
                       ks_meta_state_t **out);
/* Commit the pending applies; NULL is a no-op.  Then close. */
void ks_meta_state_close(ks_meta_state_t *st);
/* Commit the applies since the last flush (no fsync: see shard.c).  0 or a
 * storage error (the state is then poisoned). */
int ks_meta_state_flush(ks_meta_state_t *st);
/* Write transactions committed so far (for tests: batching). */
uint64_t ks_meta_state_commits(const ks_meta_state_t *st);

/* A shard with id `id` in st.  The shard keeps no state of its own outside
 * LMDB except its last apply result. */
int ks_meta_shard_new(ks_meta_state_t *st, uint64_t id, ks_meta_shard_t **out);
void ks_meta_shard_free(ks_meta_shard_t *sh);
uint64_t ks_meta_shard_id(const ks_meta_shard_t *sh);

/* The libraft FSM of this shard (version 1; valid as long as the shard).
 * Its apply stores the outcome in the shard and hands libraft a pointer to
 * a ks_meta_apply_t that stays valid until the next apply: raft_apply's
 * callback, which runs right after, reads it. */
struct raft_fsm *ks_meta_shard_fsm(ks_meta_shard_t *sh);

typedef struct ks_meta_apply {
  int err; /* 0 or the delta's KS_META_E* outcome */
  ks_meta_result_t res;
} ks_meta_apply_t;

/* Apply one encoded delta.  Returns 0 (outcome in *out, which may carry
 * an error) or a storage failure (poisoned).  An undecodable delta is an
 * outcome (KS_EPROTO), not a failure: every replica rejects it alike. */
int ks_meta_shard_apply(ks_meta_shard_t *sh, const void *delta, size_t len,
                        ks_meta_apply_t *out);

/* Append every record of the shard to out (the snapshot), and replace the
 * shard's records by those of a snapshot.  Restore errors: KS_EPROTO (not a
 * snapshot), storage errors. */
int ks_meta_shard_snapshot(ks_meta_shard_t *sh, ks_buf_t *out);
int ks_meta_shard_restore(ks_meta_shard_t *sh, const void *p, size_t n);

/* How many records the shard held at its last snapshot or restore (0
 * before either): what the next snapshot will cost, give or take the
 * entries since.  The service scales the snapshot threshold by it. */
uint64_t ks_meta_shard_records(const ks_meta_shard_t *sh);
/* Mean size in bytes of the entries applied through the FSM since start;
 * before any, the mean record size of the last snapshot or restore (an
 * entry mostly writes one record); 0: neither yet. */
uint64_t ks_meta_shard_entry_size(const ks_meta_shard_t *sh);
/* Have cb(arg, records) called after each snapshot and restore, with the
 * new ks_meta_shard_records(): inside libraft's fsm call, so that what it
 * sets (the snapshot threshold) holds for the entries applied right after
 * it, such as the log replayed at start after the restore.  NULL: none. */
typedef void (*ks_meta_shard_records_cb)(void *arg, uint64_t records);
void ks_meta_shard_on_records(ks_meta_shard_t *sh, ks_meta_shard_records_cb cb,
                              void *arg);

/* ---- Queries (shard_query.c) -------------------------------------------- */

/* Answer read request q for opcode op (KS_OP_META_GET_BUCKET ..
 * GET_ACCESS_KEY) into out as that opcode's response body. */
int ks_meta_shard_query(ks_meta_shard_t *sh, uint16_t op,
                        const ks_meta_query_t *q, ks_enc_t *out);

#endif /* KS_SHARD_H */
