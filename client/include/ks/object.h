/*
 * object.h — libkiseki's object layer (DESIGN §3, §4, §6): objects as
 * compositions on the metadata service (ks/meta_client.h) whose bytes are
 * sealed chunks (ks/chunk.h) erasure-coded over chunk daemons
 * (ks/frag_client.h).  The S3 gateway's backend is a thin map onto it; the
 * NFS and FUSE gateways will use it the same way.
 *
 * A ks_client_t holds one meta client, one RPC client per chunk daemon with
 * the devices that daemon listed (DEVICE LISTS below), the tenant key
 * provider and the EC profile.  Tenants are per operation: one client
 * serves every tenant of a gateway.
 *
 * WRITE (put, upload_part).  The body is cut into chunks (4 MiB default).
 * Each chunk is sealed on the libuv threadpool (chunk id, fresh DEK,
 * AES-256-GCM, DEK wrapped by the tenant KEK, k+m fragments), placed by
 * rendezvous hashing of (chunk id, device) over the devices of every chunk
 * daemon (k+m distinct devices, distinct nodes first), and its fragments
 * are written in parallel (a write quorum of them must succeed: DEGRADED
 * WRITES); at most `window` chunks of one operation are in
 * flight, so a 5 GiB body costs window * (k+m)/k * chunk bytes of memory.
 * Then one delta (PUT_OBJECT / PUT_PART) records the composition.  Objects
 * of at most inline_max bytes (4 KiB default) are stored in the
 * composition instead, sealed the same way as a chunk with profile 1+1 of
 * which only fragment 0 is kept: no plaintext ever reaches meta or chunkd,
 * and the DEK is wrapped by the tenant KEK as for any chunk.  An empty
 * object has neither extents nor inline data.
 *
 * FRAGMENT ADDRESSES.  A fragment is stored under SHA-256(chunk id || IV),
 * not the chunk id itself: every seal draws a fresh DEK and IV, so two
 * seals of equal plaintext give different ciphertext under one chunk id,
 * and chunkd refuses a different fragment under an existing key.  The
 * address is a function of the descriptor (kept in the extent), so nothing
 * new is stored.  Dedup of equal chunks needs a chunk index (chunk id ->
 * descriptor) and is not done; copies are still metadata-only because
 * they reuse the source's extents.
 *
 * READ (get + read).  get queries the composition (linearizable); read()
 * pulls bytes in order like the S3 backend's read(op, off, max): it
 * answers from the chunk it opened last or fetches the chunk holding off:
 * the k data fragments in parallel, each failure (error, RPC timeout,
 * corrupt fragment) replaced by the next parity fragment, then decode and
 * open (decrypt + verify) on the threadpool.  Only chunks a range touches
 * are read; with ks_obj_read_ahead, the next chunks of a sequential read
 * are fetched while the caller consumes one.  One answer is at most the
 * rest of one chunk.
 *
 * DEGRADED WRITES.  A chunk's write succeeds when at least write_quorum of
 * its k+m fragments are stored (default k+1: 5 of 6 for 4+2, as Ceph's
 * min_size for EC pools), so one lost device does not stop writes.  With
 * fewer usable devices than k+m the chunk is placed on the usable ones
 * (still one fragment per device) and the rest are not written.  Every
 * fragment not stored (not placed, or its write failed) is recorded in the
 * extent as absent: location node "" and device id all zero, a value no
 * real location has, so meta and the extent encoding are unchanged; reads
 * skip absent fragments without a call, and a repair service can find
 * under-replicated chunks by them.  DURABILITY: an acknowledged chunk with
 * w fragments stored (write_quorum <= w <= k+m) survives the loss of any
 * w - k more of their holders; at the default quorum, at least one.  Fewer
 * than write_quorum stored (or placeable): the write fails with KS_EBUSY
 * (retryable: the storage is short of devices, not the request wrong), no
 * delta is proposed, so nothing of it becomes visible.
 *
 * DEVICE LISTS.  start lists every daemon's devices (DEV_LIST); after
 * that a daemon's list is renewed in the background when a fragment write
 * to it fails (chunkd answers -ENODEV for a device id it does not have,
 * e.g. one replaced by an empty device with a new id, -EIO for a failed
 * one), at most once a second per daemon, and when a write starts and the
 * list is older than refresh_ms.  Placement uses only devices listed "ok".
 *
 * TENANT KEYS.  A write whose tenant has no keys in the provider yet
 * (-ENOKEY) creates them (ks_kms_tenant_create) and seals again: meta, not
 * the provider, is where tenants are made, and the bucket check has shown
 * that meta knows this one.  Reads never create keys.
 *
 * TENANCY.  Every object, listing and multipart operation first reads the
 * bucket (GET_BUCKET) and fails with KS_META_EACCESS when another tenant
 * owns it: the meta protocol's object deltas and queries carry no tenant.
 * The check and the operation are two steps; a bucket deleted and
 * re-created by another tenant between them is not detected (its data
 * would still be unreadable: the AAD binds the tenant).
 *
 * NOT DONE.  Fragments of deleted or overwritten objects, of aborted
 * uploads and of writes that failed before their delta are not collected
 * (garbage collection comes later).  A failed fragment write is not
 * retried on another device (the chunk is stored degraded, or the write
 * fails); absent fragments are not rebuilt (repair comes later).  A
 * fragment slower than the RPC timeout is replaced by parity only when it
 * times out (no hedging).
 *
 * LIFECYCLE.  new -> start (lists the devices; the callback says when
 * puts may run) -> operations -> close (after every operation finished).
 * An operation is a caller-owned ks_obj_op_t: fill the "in" fields, call
 * ks_obj_*; if that returns an error the callback never runs; otherwise it
 * runs exactly once, on the loop thread, with 0 or an error; results are
 * valid until ks_obj_op_release(), which the caller calls once after the
 * callback (and after the last read of a get).
 *
 * ERRORS: 0, KS_META_E* (ks/proto_meta.h), RPC errors (KS_ETIMEDOUT,
 * KS_ECLOSED, -ECONNREFUSED, ...), chunk errors (KS_EAUTH, -ENODATA when
 * fewer than k fragments can be read), kms errors, -EINVAL, -ENOMEM,
 * KS_EBUSY (a write could not store write_quorum fragments of a chunk:
 * too few usable devices, or their writes failed).  A fragment write's own
 * error (chunkd's -ENOENT, -EEXIST, ... or the RPC layer's) never reaches
 * the caller: those numbers are also KS_META_E* codes ("no such key").
 *
 * THREADS: the loop thread of the client only.
 */
#ifndef KS_OBJECT_H
#define KS_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "ks/id.h"
#include "ks/kms.h"
#include "ks/meta_client.h"
#include "ks/proto_meta.h"
#include "ks/rpc.h"

#define KS_OBJ_INLINE_DEFAULT 4096
#define KS_OBJ_WINDOW_DEFAULT 4
#define KS_OBJ_CHUNKD_MAX 64
#define KS_OBJ_REFRESH_DEFAULT_MS 10000
/* ks_client_place: a fragment that has no device. */
#define KS_OBJ_UNPLACED UINT32_MAX

typedef struct ks_client ks_client_t;

typedef struct ks_client_opts {
  const char *meta;          /* "host:port" of the meta node */
  const char *const *chunkd; /* "host:port" of each chunk daemon */
  size_t nchunkd;            /* 1..KS_OBJ_CHUNKD_MAX */
  ks_kms_t *kms;             /* borrowed: must outlive the client */
  unsigned k, m;             /* EC profile; 0, 0: 4 + 2 */
  unsigned write_quorum;     /* fragments a chunk write needs, k..k+m;
                                0: k + 1 (k when m is 0) */
  uint32_t refresh_ms;       /* renew device lists older than this on a
                                write; 0: KS_OBJ_REFRESH_DEFAULT_MS */
  size_t chunk_size;         /* 0: KS_CHUNK_SIZE_DEFAULT */
  size_t inline_max;         /* 0: KS_OBJ_INLINE_DEFAULT; < chunk_size */
  unsigned window;           /* chunks in flight per write; 0: 4 */
  uint32_t timeout_ms;       /* per RPC; 0: the RPC default */
  const ks_rpc_opts_t *rpc;  /* options of every connection; may be NULL */
} ks_client_opts_t;

typedef void (*ks_client_cb)(void *arg, int status);

/* Create a client (no I/O yet).  0, -EINVAL, -ENOMEM or an RPC error. */
int ks_client_new(uv_loop_t *loop, const ks_client_opts_t *opts,
                  ks_client_t **out);
/* List every chunk daemon's devices; cb(arg, 0) when all answered, or the
 * first error.  May be called again to refresh (KS_EBUSY while a start
 * runs).  Writes fail with KS_EBUSY while fewer than write_quorum usable
 * devices are known. */
int ks_client_start(ks_client_t *c, ks_client_cb cb, void *arg);
/* Usable devices known now. */
size_t ks_client_devices(const ks_client_t *c);
/* Close every connection, free the client, then cb(arg).  No operation may
 * be in flight. */
void ks_client_close(ks_client_t *c, ks_rpc_close_cb cb, void *arg);

/* Which fragment indexes of a chunk go where: out[i] = index into the
 * client's device table for fragment i, i < n, or KS_OBJ_UNPLACED when
 * fewer than n devices are usable (the last indexes, so parity goes
 * before data).  Returns how many were placed.  Exposed for tests. */
int ks_client_place(const ks_client_t *c, const uint8_t chunk_id[32],
                    unsigned n, unsigned out[]);

/* ---- Operations ---------------------------------------------------------- */

typedef struct ks_obj_op ks_obj_op_t;
typedef void (*ks_obj_cb)(ks_obj_op_t *op, int status);
typedef void (*ks_obj_read_cb)(ks_obj_op_t *op, int status, const void *p,
                               size_t n);

struct ks_obj_op {
  void *data; /* for the caller */
  /* ---- in ---- */
  const char *bucket;
  const char *key;
  const char *upload_id;    /* parts, complete, abort, list parts */
  const struct iovec *body; /* put, upload_part: valid until the callback */
  uint64_t body_len;
  const uint8_t *md5;              /* the body's MD5 if known; NULL: computed */
  const ks_meta_comp_t *attrs;     /* put, create_mpu, copy (NULL: keep the
                                      source's): content type & co, meta */
  const ks_meta_comp_t *src;       /* copy, part copy: a composition from get */
  uint64_t src_off, src_len;       /* part copy: the source range */
  const ks_meta_part_ref_t *parts; /* complete */
  int64_t now_ns; /* writes: the delta's time; 0: the real clock */
  ks_id_t tenant;
  int nbody;     /* pieces in body */
  uint32_t part; /* upload_part(_copy) */
  uint32_t nparts;
  /* ---- out ---- */
  ks_meta_result_t result; /* writes: inode, size, etag */
  ks_meta_call_t reply;    /* get: reply.r.comp; query: the answer */
  char upload_id_out[KS_ID_HEX_LEN + 1]; /* mpu_create */
  /* ---- private ---- */
  bool _reply_held;
  uint16_t _qop;
  ks_client_t *_c;
  ks_obj_cb _cb;
  ks_meta_call_t _bc; /* the bucket check, then the write */
  uint64_t _shard;
  ks_meta_query_t _q;
  int (*_next)(ks_obj_op_t *op);
  void *_st; /* put state */
  void *_rd; /* read state */
  void *_cp; /* part copy by reading: its state */
};

/* PUT_OBJECT of body (inline when small).  out: result. */
int ks_obj_put(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
/* GET_OBJECT: the composition in op->reply.r.comp; then ks_obj_read. */
int ks_obj_get(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
/* Up to max bytes at off (< comp size) of a got object: cb(op, 0, p, n),
 * n >= 1 (fewer than max at a chunk's end); p valid until the next read or
 * release.  One read at a time.  The callback may run before this
 * returns (bytes of the chunk already open). */
int ks_obj_read(ks_obj_op_t *op, uint64_t off, size_t max, ks_obj_read_cb cb);
/* Declare that reads will go on up to end (<= size; larger is taken as
 * size): while a read continues where the last one ended, the chunks after
 * the one it reads that start before end are fetched and opened ahead
 * (object_read.c, READ-AHEAD).  Without it (or with 0) nothing is fetched
 * that no read asked for, so a ranged caller passes its range's end.  An op
 * released with fetches ahead in flight frees them when they complete.
 * 0 or -EINVAL (no get held), -ENOMEM. */
int ks_obj_read_ahead(ks_obj_op_t *op, uint64_t end);
int ks_obj_delete(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
/* PUT_OBJECT of key with src's data (extents or inline bytes reused: no
 * data moves) and attrs (NULL: src's).  src must be the same tenant's. */
int ks_obj_copy(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);

/* Multipart.  create: a fresh upload id in op->upload_id_out. */
int ks_obj_mpu_create(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
int ks_obj_mpu_part(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
/* Part from src[src_off, +src_len) (src_len 0: to the end; -EINVAL
 * when the range is not inside src).  src must be the same tenant's and
 * stay valid until the callback.  A whole single-part chunked source is
 * metadata only (its extents, its ETag).  Any other range, an inline
 * source or a multipart source is copied by reading (PART COPY BY
 * READING, object_copy.c): the range is read and decrypted in order for
 * the part's ETag (its MD5); source extents the range covers whole are
 * reused, the bytes of a cut extent (at most the first and the last) and
 * an inline source are sealed again as new chunks through the put path.
 * Memory: the read path's chunks plus at most two cut extents. */
int ks_obj_mpu_part_copy(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
int ks_obj_mpu_complete(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
int ks_obj_mpu_abort(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);

/* Buckets: create / delete (deltas with the op's tenant), head (GET_BUCKET
 * with the ownership check: reply.r.bucket), list (LIST_BUCKETS of the
 * tenant: reply.r.buckets). */
int ks_obj_bucket_create(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
int ks_obj_bucket_delete(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
int ks_obj_bucket_head(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
int ks_obj_bucket_list(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);

/* Any read of the bucket's shard (LIST_OBJECTS, LIST_UPLOADS, LIST_PARTS,
 * GET_UPLOAD) after the ownership check; q's shard and bucket are set
 * here (q is copied; its strings must live until the callback).  The
 * answer is in op->reply.r. */
int ks_obj_query(ks_client_t *c, ks_obj_op_t *op, uint16_t qop,
                 const ks_meta_query_t *q, ks_obj_cb cb);

/* GET_ACCESS_KEY akid (NUL-terminated, valid until the callback): the
 * record in op->reply.r.akey (its secret is wiped by release). */
int ks_obj_akey_get(ks_client_t *c, ks_obj_op_t *op, const char *akid,
                    ks_obj_cb cb);

/* Free what the operation holds; the op may then be reused. */
void ks_obj_op_release(ks_obj_op_t *op);

#endif /* KS_OBJECT_H */
