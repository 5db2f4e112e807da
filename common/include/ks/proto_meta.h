/*
 * proto_meta.h — the metadata shard's RPC protocol and its records
 * (DESIGN.md §3–§5): opcodes in meta's range (0x110..0x1ff; 0x101 is the
 * Raft transport's), the typed deltas that travel through the Raft log, the
 * composition record, and every request and response body.
 *
 * ONE ENCODING, THREE USES.  A delta is encoded once by the client, carried
 * in a WRITE request, appended verbatim to the shard's Raft log and decoded
 * by the state machine on every replica.  A composition is encoded once and
 * stored verbatim in LMDB and returned verbatim by GET_OBJECT.  So a layout
 * here is a disk format: change it only by bumping its version byte.
 *
 * BODIES (ks/enc.h: little-endian integers, u32-length-prefixed strings;
 * "str?" is a string that may be empty):
 *
 *   WRITE          req:  u64 shard | delta                resp: result
 *   GET_BUCKET     req:  u64 shard | str bucket           resp: bucket
 *   LIST_BUCKETS   req:  u64 shard | id[16] tenant        resp: u32 n | n x
 * bucket GET_OBJECT     req:  u64 shard | str bucket | str key resp:
 * composition LIST_OBJECTS   req:  u64 shard | str bucket | str? prefix | str?
 * delimiter | str? start_after | u32 max_keys resp: u32 n | n x (str key | u64
 * size | i64 mtime_ns | str? etag) | u32 np | np x str prefix | u8 truncated |
 * str? next LIST_UPLOADS   req:  u64 shard | str bucket | str? prefix | str?
 * key_marker | str? upload_id_marker | u32 max resp: u32 n | n x (str key | str
 * upload_id | i64 initiated_ns) | u8 truncated | str? next_key | str?
 * next_upload_id LIST_PARTS     req:  u64 shard | str bucket | str key | str
 * upload_id | u32 part_marker | u32 max resp: u32 n | n x (u32 number | str?
 * etag | u64 size | i64 mtime_ns) | u8 truncated | u32 next_marker GET_UPLOAD
 * req:  u64 shard | str bucket | str key | str upload_id resp: upload
 *   GET_ACCESS_KEY req:  u64 shard | str access key id    resp: access key
 *
 *   result       u64 ino | u64 size | str? etag   (status 0 only)
 *   bucket       u8 version(1) | str name | id tenant | i64 created_ns |
 *                u64 shard
 *   access key   u8 version(1) | str id | id tenant | blob secret |
 *                i64 created_ns
 *   upload       u8 version(1) | str key | str upload_id | i64 initiated_ns
 *                | composition (the object's metadata; no data)
 *   composition  u8 version(2) | u64 ino | u64 size | i64 mtime_ns |
 *                i64 ctime_ns | u32 mode | u32 uid | u32 gid | str? etag |
 *                str? content_type | str? content_encoding |
 *                str? content_disposition | str? cache_control | str? expires
 *                | str? content_language
 *                | u32 n | n x (str name | str? value) | u8 kind
 *                kind 0: u32 n | n x extent;  kind 1: blob inline data
 *   extent       u64 offset | u64 length | blob chunk descriptor |
 *                u32 n | n x (str node | id[16] device)
 *   delta        u8 version(1) | u8 type | i64 now_ns | then per type:
 *     CREATE_TENANT      id tenant | str name
 *     PUT_ACCESS_KEY     str access key id | id tenant | blob secret
 *     DELETE_ACCESS_KEY  str access key id
 *     CREATE_BUCKET      str bucket | id tenant | u64 shard
 *     DELETE_BUCKET      str bucket | id tenant
 *     PUT_OBJECT         str bucket | str key | composition
 *     DELETE_OBJECT      str bucket | str key
 *     CREATE_MPU         str bucket | str key | str upload_id | composition
 *     PUT_PART           str bucket | str key | str upload_id | u32 part |
 *                        composition (size, etag, extents)
 *     COMPLETE_MPU       str bucket | str key | str upload_id | u32 n |
 *                        n x (u32 part | str etag)
 *     ABORT_MPU          str bucket | str key | str upload_id
 *     RENAME             str bucket | str key | str new key
 *     MKDIR              str bucket | str key (ends in '/') | composition
 *
 * DETERMINISM.  Applying a delta must give the same state on every replica,
 * so a delta carries everything that is not a function of the state:
 * now_ns (the time every timestamp it writes takes, chosen by the caller),
 * upload ids, secrets.  Inode numbers are allocated by the shard from its
 * own counter (deterministic in log order).
 *
 * ERRORS.  A write's outcome is its RPC status: 0, or one of the codes
 * below (negated errno values, so they pass through ks/err.h untouched).
 * The S3 gateway turns them into S3 error codes:
 *
 *   KS_META_ENOBUCKET   -ENXIO       NoSuchBucket
 *   KS_META_ENOKEY      -ENOENT      NoSuchKey
 *   KS_META_ENOUPLOAD   -ESRCH       NoSuchUpload
 *   KS_META_EBUCKETEXISTS -EEXIST    BucketAlreadyExists (another tenant);
 *                                    also tenant/marker already exists
 *   KS_META_EOWNED      -EALREADY    BucketAlreadyOwnedByYou
 *   KS_META_ENOTEMPTY   -ENOTEMPTY   BucketNotEmpty (objects, or uploads in
 *                                    progress, as AWS)
 *   KS_META_ETOOSMALL   -EMSGSIZE    EntityTooSmall (a part but the last
 *                                    under KS_META_PART_MIN)
 *   KS_META_EBADPART    -EBADMSG     InvalidPart (missing, etag mismatch)
 *   KS_META_EPARTORDER  -EDOM        InvalidPartOrder
 *   KS_META_ENOTENANT   -ENOLINK     the tenant does not exist
 *   KS_META_ENOACCESSKEY -ENOKEY     InvalidAccessKeyId
 *   KS_META_EACCESS     -EACCES      AccessDenied (bucket of another tenant)
 *   KS_META_EINVAL      -EINVAL      InvalidArgument (empty or overlong
 *                                    name, NUL in a key, bad part number)
 *   KS_META_ENOTLEADER  -EREMCHG     this replica is not the shard's leader:
 *                                    nothing was applied, retry at the
 *                                    leader
 *   KS_META_ENOSHARD    -EHOSTUNREACH  no replica of that shard here
 *   KS_ECLOSED          leadership was lost with the delta in flight: it may
 *                       or may not have been applied
 *   KS_EPROTO / KS_ETOOBIG  the request body does not decode
 *
 * MEMORY.  Decoders fill caller-owned structs whose strings and arrays
 * point into a ks_meta_arena_t the caller passes and frees (one free for
 * the whole message, however many strings it holds).  Decoded strings are
 * NUL-terminated, never NULL (absent is ""); blobs may contain anything.
 * Encoders only read the structs; a NULL string encodes as "".
 *
 * THREADS.  Pure functions, thread-safe; an arena belongs to one thread.
 */
#ifndef KS_PROTO_META_H
#define KS_PROTO_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ks/enc.h"
#include "ks/id.h"

enum ks_meta_opcode {
  KS_OP_META_WRITE = 0x110,
  KS_OP_META_GET_BUCKET = 0x120,
  KS_OP_META_LIST_BUCKETS = 0x121,
  KS_OP_META_GET_OBJECT = 0x122,
  KS_OP_META_LIST_OBJECTS = 0x123,
  KS_OP_META_LIST_UPLOADS = 0x124,
  KS_OP_META_LIST_PARTS = 0x125,
  KS_OP_META_GET_UPLOAD = 0x126,
  KS_OP_META_GET_ACCESS_KEY = 0x127,
};

#define KS_META_ENOBUCKET (-ENXIO)
#define KS_META_ENOKEY (-ENOENT)
#define KS_META_ENOUPLOAD (-ESRCH)
#define KS_META_EBUCKETEXISTS (-EEXIST)
#define KS_META_EOWNED (-EALREADY)
#define KS_META_ENOTEMPTY (-ENOTEMPTY)
#define KS_META_ETOOSMALL (-EMSGSIZE)
#define KS_META_EBADPART (-EBADMSG)
#define KS_META_EPARTORDER (-EDOM)
#define KS_META_ENOTENANT (-ENOLINK)
#define KS_META_ENOACCESSKEY (-ENOKEY)
#define KS_META_EACCESS (-EACCES)
#define KS_META_EINVAL (-EINVAL)
#define KS_META_ENOTLEADER (-EREMCHG)
#define KS_META_ENOSHARD (-EHOSTUNREACH)

/* The system shard: cluster map, tenants, access keys and (for now) every
 * bucket's objects.  Its Raft group id is its shard id. */
#define KS_META_SYSTEM_SHARD 1

/* Limits: what a decoder accepts; the state machine enforces the same. */
#define KS_META_BUCKET_MAX 255 /* bytes of a bucket name */
#define KS_META_KEY_MAX 1024   /* bytes of an object key (S3's limit) */
#define KS_META_STR_MAX 8192   /* any other string (headers, etag) */
#define KS_META_UPLOAD_ID_MAX 128
#define KS_META_NODE_MAX 128 /* "host:port" of a chunk daemon */
#define KS_META_SECRET_MAX 256
#define KS_META_DESC_MAX 1024 /* an encoded chunk descriptor */
#define KS_META_INLINE_MAX (64U << 10)
#define KS_META_USER_META_MAX 256 /* name/value pairs */
#define KS_META_LOCS_MAX 64       /* fragments per chunk */
#define KS_META_EXTENTS_MAX 100000
#define KS_META_PARTS_MAX 10000       /* part numbers 1..10000, as S3 */
#define KS_META_LIST_MAX 1000         /* entries per listing page, as S3 */
#define KS_META_PART_MIN (5ULL << 20) /* smallest part but the last */
#define KS_META_ETAG_MAX 80

/* ---- Arena -------------------------------------------------------------- */

typedef struct ks__meta_blk ks__meta_blk_t;
typedef struct ks_meta_arena {
  ks__meta_blk_t *_head;
} ks_meta_arena_t;
#define KS_META_ARENA_INIT \
  {                        \
    NULL                   \
  }

/* n bytes, 8-byte aligned, owned by the arena; NULL on -ENOMEM. */
void *ks_meta_arena_alloc(ks_meta_arena_t *a, size_t n);
/* Free everything the arena handed out; the arena is empty and reusable. */
void ks_meta_arena_free(ks_meta_arena_t *a);

/* ---- Records ------------------------------------------------------------ */

/* Where fragment i of a chunk lives: the chunk daemon's RPC address and
 * the device's stable id (ks/proto_chunk.h names devices by 128-bit id). */
typedef struct ks_meta_loc {
  const char *node;
  ks_id_t dev;
} ks_meta_loc_t;

typedef struct ks_meta_extent {
  uint64_t offset;     /* in the object */
  uint64_t length;     /* plaintext bytes */
  const uint8_t *desc; /* ks_chunk_desc_encode() output, opaque here */
  uint32_t desc_len;
  uint32_t nlocs;
  const ks_meta_loc_t *locs;
} ks_meta_extent_t;

typedef struct ks_meta_kv {
  const char *name;
  const char *value;
} ks_meta_kv_t;

/* The metadata of one object (a file, or a directory marker). */
typedef struct ks_meta_comp {
  uint64_t ino; /* allocated by the shard; ignored on input */
  uint64_t size;
  int64_t mtime_ns, ctime_ns;
  uint32_t mode, uid, gid;
  const char *etag; /* as the gateway will print it, without quotes */
  const char *content_type, *content_encoding, *content_disposition;
  const char *cache_control, *expires, *content_language;
  uint32_t nmeta;
  const ks_meta_kv_t *meta;
  bool is_inline;             /* data below instead of extents */
  const uint8_t *inline_data; /* already encrypted by the client */
  uint32_t inline_len;
  uint32_t nextents;
  const ks_meta_extent_t *extents;
} ks_meta_comp_t;

typedef struct ks_meta_bucket {
  const char *name;
  ks_id_t tenant;
  int64_t created_ns;
  uint64_t shard; /* the shard that holds its objects */
} ks_meta_bucket_t;

/* The secret is kept as the S3 gateway needs it to compute SigV4 HMACs.
 * TODO(system key): it must be wrapped by the system key before it is
 * stored (DESIGN §7); today it is stored as given. */
typedef struct ks_meta_akey {
  const char *id;
  ks_id_t tenant;
  const uint8_t *secret;
  uint32_t secret_len;
  int64_t created_ns;
} ks_meta_akey_t;

typedef struct ks_meta_upload {
  const char *key;
  const char *upload_id;
  int64_t initiated_ns;
  ks_meta_comp_t meta; /* metadata to give the completed object */
} ks_meta_upload_t;

typedef struct ks_meta_part_ref {
  uint32_t part;
  const char *etag;
} ks_meta_part_ref_t;

typedef enum ks_meta_delta_type {
  KS_DELTA_CREATE_TENANT = 1,
  KS_DELTA_PUT_ACCESS_KEY = 2,
  KS_DELTA_DELETE_ACCESS_KEY = 3,
  KS_DELTA_CREATE_BUCKET = 4,
  KS_DELTA_DELETE_BUCKET = 5,
  KS_DELTA_PUT_OBJECT = 6,
  KS_DELTA_DELETE_OBJECT = 7,
  KS_DELTA_CREATE_MPU = 8,
  KS_DELTA_PUT_PART = 9,
  KS_DELTA_COMPLETE_MPU = 10,
  KS_DELTA_ABORT_MPU = 11,
  KS_DELTA_RENAME = 12,
  KS_DELTA_MKDIR = 13,
} ks_meta_delta_type_t;
#define KS_DELTA_TYPE_MAX 13

/* One delta; which fields count depends on type (see the layout above). */
typedef struct ks_meta_delta {
  uint8_t type;
  int64_t now_ns;
  ks_id_t tenant;
  const char *name; /* tenant name; access key id */
  const char *bucket;
  const char *key;
  const char *new_key;   /* RENAME */
  const char *upload_id; /* multipart */
  const uint8_t *secret; /* PUT_ACCESS_KEY */
  uint32_t secret_len;
  uint32_t part;       /* PUT_PART */
  uint64_t shard;      /* CREATE_BUCKET */
  ks_meta_comp_t comp; /* PUT_OBJECT, CREATE_MPU, PUT_PART, MKDIR */
  uint32_t nparts;     /* COMPLETE_MPU */
  const ks_meta_part_ref_t *parts;
} ks_meta_delta_t;

/* A write's answer. */
typedef struct ks_meta_result {
  uint64_t ino;
  uint64_t size;
  char etag[KS_META_ETAG_MAX];
} ks_meta_result_t;

/* ---- Requests ----------------------------------------------------------- */

/* Every read request: which fields count depends on the opcode. */
typedef struct ks_meta_query {
  uint64_t shard;
  const char *bucket;
  const char *key;       /* GET_OBJECT, LIST_PARTS, GET_UPLOAD */
  const char *upload_id; /* LIST_PARTS, GET_UPLOAD */
  const char *prefix;
  const char *delimiter;
  const char *start_after;      /* LIST_OBJECTS; LIST_UPLOADS: key marker */
  const char *upload_id_marker; /* LIST_UPLOADS */
  const char *akey;             /* GET_ACCESS_KEY */
  ks_id_t tenant;               /* LIST_BUCKETS */
  uint32_t marker;              /* LIST_PARTS: part number marker */
  uint32_t max;                 /* max keys / uploads / parts */
} ks_meta_query_t;

/* ---- Responses ---------------------------------------------------------- */

typedef struct ks_meta_entry {
  const char *key;
  uint64_t size;
  int64_t mtime_ns;
  const char *etag;
} ks_meta_entry_t;

typedef struct ks_meta_objects {
  uint32_t n;
  const ks_meta_entry_t *entries;
  uint32_t nprefixes;
  const char *const *prefixes;
  bool truncated;
  const char *next; /* last key or prefix returned: start_after of the next
                       page */
} ks_meta_objects_t;

typedef struct ks_meta_upload_entry {
  const char *key;
  const char *upload_id;
  int64_t initiated_ns;
} ks_meta_upload_entry_t;

typedef struct ks_meta_uploads {
  uint32_t n;
  const ks_meta_upload_entry_t *uploads;
  bool truncated;
  const char *next_key;
  const char *next_upload_id;
} ks_meta_uploads_t;

typedef struct ks_meta_part_entry {
  uint32_t part;
  const char *etag;
  uint64_t size;
  int64_t mtime_ns;
} ks_meta_part_entry_t;

typedef struct ks_meta_parts {
  uint32_t n;
  const ks_meta_part_entry_t *parts;
  bool truncated;
  uint32_t next_marker;
} ks_meta_parts_t;

typedef struct ks_meta_buckets {
  uint32_t n;
  const ks_meta_bucket_t *buckets;
} ks_meta_buckets_t;

/* ---- Codecs ------------------------------------------------------------- *
 * Encoders append to e (errors sticky: check ks_enc_finish).  Decoders take
 * a whole body (or record) and return 0, KS_EPROTO (short, trailing bytes,
 * bad version or value), KS_ETOOBIG (a length over its limit) or -ENOMEM. */

void ks_meta_comp_encode(ks_enc_t *e, const ks_meta_comp_t *c);
int ks_meta_comp_decode(const void *p, size_t n, ks_meta_arena_t *a,
                        ks_meta_comp_t *c);

void ks_meta_delta_encode(ks_enc_t *e, const ks_meta_delta_t *d);
int ks_meta_delta_decode(const void *p, size_t n, ks_meta_arena_t *a,
                         ks_meta_delta_t *d);

void ks_meta_bucket_encode(ks_enc_t *e, const ks_meta_bucket_t *b);
int ks_meta_bucket_decode(const void *p, size_t n, ks_meta_arena_t *a,
                          ks_meta_bucket_t *b);
void ks_meta_akey_encode(ks_enc_t *e, const ks_meta_akey_t *k);
int ks_meta_akey_decode(const void *p, size_t n, ks_meta_arena_t *a,
                        ks_meta_akey_t *k);
void ks_meta_upload_encode(ks_enc_t *e, const ks_meta_upload_t *u);
int ks_meta_upload_decode(const void *p, size_t n, ks_meta_arena_t *a,
                          ks_meta_upload_t *u);

void ks_meta_result_encode(ks_enc_t *e, const ks_meta_result_t *r);
int ks_meta_result_decode(const void *p, size_t n, ks_meta_result_t *r);

/* WRITE request: shard then the encoded delta.  The decoder hands back the
 * delta's bytes (pointing into p) without decoding them. */
void ks_meta_write_encode(ks_enc_t *e, uint64_t shard,
                          const ks_meta_delta_t *d);
int ks_meta_write_decode(const void *p, size_t n, uint64_t *shard,
                         const uint8_t **delta, size_t *delta_len);

/* Read requests, for opcode op (KS_OP_META_GET_BUCKET..GET_ACCESS_KEY).
 * -EINVAL for another opcode. */
int ks_meta_query_encode(ks_enc_t *e, uint16_t op, const ks_meta_query_t *q);
int ks_meta_query_decode(const void *p, size_t n, uint16_t op,
                         ks_meta_arena_t *a, ks_meta_query_t *q);

/* Response bodies (the bucket, composition, upload and access key answers
 * are the records above). */
void ks_meta_objects_encode(ks_enc_t *e, const ks_meta_objects_t *o);
int ks_meta_objects_decode(const void *p, size_t n, ks_meta_arena_t *a,
                           ks_meta_objects_t *o);
void ks_meta_uploads_encode(ks_enc_t *e, const ks_meta_uploads_t *u);
int ks_meta_uploads_decode(const void *p, size_t n, ks_meta_arena_t *a,
                           ks_meta_uploads_t *u);
void ks_meta_parts_encode(ks_enc_t *e, const ks_meta_parts_t *pp);
int ks_meta_parts_decode(const void *p, size_t n, ks_meta_arena_t *a,
                         ks_meta_parts_t *pp);
void ks_meta_buckets_encode(ks_enc_t *e, const ks_meta_buckets_t *b);
int ks_meta_buckets_decode(const void *p, size_t n, ks_meta_arena_t *a,
                           ks_meta_buckets_t *b);

/* "PUT_OBJECT", ...; "?" when unknown. */
const char *ks_meta_delta_name(int type);

#endif /* KS_PROTO_META_H */
