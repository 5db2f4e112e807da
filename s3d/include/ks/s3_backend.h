/*
 * s3_backend.h — what the S3 server (ks/s3_server.h) asks of the object
 * store behind it.
 *
 * The server owns HTTP, SigV4, payload verification, limits and the XML of
 * answers; a backend owns buckets, objects and uploads.  The production
 * backend is libkiseki's object layer over meta and chunkd; unit tests plug
 * in their own in-memory one.  The contract is a table of functions
 * (ks_s3_backend_ops_t) like libraft's raft_io: every entry may be NULL,
 * and the server answers an S3 NotImplemented error (501) for an operation
 * whose entry is NULL.  A backend never fakes a success.
 *
 * One operation = one ks_s3_bop_t.  The server fills the "in" part, calls
 * the table entry, and the backend finishes the operation by calling
 * ks_s3_bop_done(op, code, message) exactly once, with KS_S3_OK or the S3
 * error to answer (ks/s3_xml.h: NoSuchBucket, NoSuchKey, BucketNotEmpty,
 * InvalidPart, InternalError, ...).  Before that call the backend writes
 * the "out" part that its operation documents.
 *
 * Threads.  Everything runs on the server's loop thread: the table entries
 * are called there, and ks_s3_bop_done()/ks_s3_bop_read_done() must be
 * called there (a backend that works on other threads hands results back
 * with uv_async or uv_queue_work's after-callback).  Done may be called
 * from inside the table entry (synchronous completion) or later.
 *
 * Lifetimes (libuv style).
 *  - The op struct and everything its "in" fields point to are owned by the
 *    server and stay valid until the server calls release() (or, when the
 *    backend provides no release(), until ks_s3_bop_done() has returned).
 *  - Memory the backend hangs on "out" fields (listing arrays, strings,
 *    object attributes) stays the backend's; the server reads it after
 *    done and then calls release(impl, op) exactly once per op that
 *    reached the backend, done or not, so the backend frees it there.
 *  - A GET keeps its op open for reading: after get() succeeded the server
 *    calls read() any number of times, one at a time, each finished with
 *    ks_s3_bop_read_done(); the data handed back stays valid until the next
 *    read() or release().  The server pulls only as fast as the client
 *    drains (h2o generator proceed callbacks), so a backend never has more
 *    than one read in flight per GET and nothing buffers a whole object.
 *  - If the client goes away the server still waits for the outstanding
 *    call to finish, then calls release(); a backend never needs to cancel.
 *
 * Bodies.  h2o 2.2.5 hands the server a request only after its whole body
 * has arrived (DESIGN §13), in memory or in a file-backed mmap, so a PUT or
 * UploadPart carries its payload as an iovec list (one piece for a plain
 * body; the decoded data pieces of an aws-chunked body).  The server has
 * already verified everything the client sent about the body (the SigV4
 * payload hash, every aws-chunked chunk signature, Content-MD5,
 * x-amz-checksum-*) before it calls the backend, so a backend may commit
 * as soon as it has stored the bytes; it gets the body's MD5 for the ETag.
 * The pointers stay valid until release().
 *
 * Access keys.  key_lookup() is synchronous (SigV4 verification needs the
 * secret inline): a backend serves it from memory (a cache of the key
 * table) and must not block.
 */
#ifndef KS_S3_BACKEND_H
#define KS_S3_BACKEND_H

#include "ks/s3_req.h"
#include "ks/s3_xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define KS_S3_TENANT_MAX 64
#define KS_S3_UPLOAD_ID_MAX 128
/* AWS: user metadata (names and values of x-amz-meta-*) at most 2 KiB. */
#define KS_S3_USER_META_MAX 2048

typedef struct ks_s3_bop ks_s3_bop_t;

/* ---- Access keys ------------------------------------------------------- */
/* Who signed a request, as the backend knows the key. */
typedef struct ks_s3_principal {
  char tenant[KS_S3_TENANT_MAX + 1]; /* the key's tenant (owner of buckets) */
  char display_name[KS_S3_TENANT_MAX + 1];
} ks_s3_principal_t;

/* ---- Object attributes ------------------------------------------------- */
typedef struct ks_s3_meta_pair {
  const char *name; /* without the "x-amz-meta-" prefix, lower case */
  const char *value;
} ks_s3_meta_pair_t;

/* Stored with an object and returned on GET/HEAD.  NULL strings: absent. */
typedef struct ks_s3_obj_attrs {
  const char *content_type;
  const char *content_encoding;
  const char *content_disposition;
  const char *content_language;
  const char *cache_control;
  const char *expires;
  const ks_s3_meta_pair_t *meta;
  size_t nmeta;
} ks_s3_obj_attrs_t;

/* What HEAD/GET/PUT/COPY answer about an object. */
typedef struct ks_s3_obj_info {
  char etag[KS_S3_ETAG_MAX]; /* quoted */
  uint64_t size;
  int64_t mtime_s;
  ks_s3_obj_attrs_t attrs; /* HEAD/GET; strings owned by the backend */
} ks_s3_obj_info_t;

/* ---- Listing arguments (v1 and v2) -------------------------------------- */
typedef struct ks_s3_list_args {
  const char *prefix;    /* "" when absent */
  const char *delimiter; /* NULL when absent */
  const char *marker;    /* v1 marker, v2 start-after; NULL when absent */
  const char *token;     /* v2 continuation-token; NULL when absent */
  int max_keys;          /* 0..1000 */
  bool v2;
} ks_s3_list_args_t;

/* ---- One operation ------------------------------------------------------ */
typedef void (*ks_s3_bop_cb)(ks_s3_bop_t *op);

struct ks_s3_bop {
  /* ---- in: written by the server, read-only for the backend ---- */
  ks_s3_op_t op;
  const ks_s3_principal_t *who;
  const char *bucket;       /* "" for ListBuckets */
  const char *key;          /* NUL-terminated; "" when none */
  size_t key_len;           /* keys may hold any UTF-8 except NUL */
  const char *region;       /* CreateBucket: LocationConstraint or NULL */
  const struct iovec *body; /* PutObject, UploadPart: the payload */
  int nbody;                /* pieces in body */
  uint64_t body_len;        /* bytes in body */
  uint8_t body_md5[16];     /* MD5 of the payload (ETag of a single part) */
  const ks_s3_obj_attrs_t *attrs; /* PutObject, CreateMultipartUpload,
                                     CopyObject with REPLACE */
  const ks_s3_target_t *src;      /* CopyObject, UploadPartCopy */
  ks_s3_range_t src_range; /* UploadPartCopy: len 0 means the whole source */
  const ks_s3_cond_t *src_cond; /* x-amz-copy-source-if-*; backend evaluates */
  ks_s3_directive_t directive;
  const char *upload_id;                /* multipart ops */
  int part_number;                      /* UploadPart(Copy) */
  const ks_s3_complete_req_t *complete; /* CompleteMultipartUpload */
  const ks_s3_delete_req_t *del;        /* DeleteObjects */
  const ks_s3_list_args_t *list;        /* ListObjects(V2), ListParts... */

  /* ---- out: written by the backend before ks_s3_bop_done() ---- */
  /* HeadObject, GetObject, PutObject (etag, mtime), CopyObject,
   * UploadPart (etag), UploadPartCopy, CompleteMultipartUpload (etag). */
  ks_s3_obj_info_t info;
  /* ListBuckets */
  const ks_s3_bucket_entry_t *buckets;
  size_t nbuckets;
  /* GetBucketLocation: NULL means us-east-1 */
  const char *location;
  /* ListObjects(V2), ListMultipartUploads, ListParts: a filled result
   * whose request fields the server overwrites (bucket, prefix, ...). */
  ks_s3_list_result_t objects;
  ks_s3_uploads_result_t uploads;
  ks_s3_parts_result_t parts;
  /* CreateMultipartUpload */
  char upload_id_out[KS_S3_UPLOAD_ID_MAX + 1];
  /* DeleteObjects: one entry per requested key, in order */
  const ks_s3_delete_entry_t *deleted;
  size_t ndeleted;
  const char *message; /* detail for an error body; NULL: the default */

  /* ---- the backend's own per-op state ---- */
  void *be_data;

  /* ---- private to the server ---- */
  ks_s3_code_t _code;
  ks_s3_bop_cb _cb;
  void (*_read_cb)(ks_s3_bop_t *op, ks_s3_code_t code, const void *p, size_t n);
  void *_srv;

  /* ---- in (GET), set before the first read(): the end of the range the
   * server will read; a backend may fetch ahead up to it, never beyond */
  uint64_t read_end;
};

/* Finish op with code (KS_S3_OK or an S3 error) and an optional static or
 * backend-owned message (valid until release).  Exactly once per op. */
void ks_s3_bop_done(ks_s3_bop_t *op, ks_s3_code_t code, const char *message);

/* Finish a read(): n bytes at p (valid until the next read() or release()),
 * fewer than asked only at the end of the range.  An error aborts the GET
 * (the connection is closed, the client sees a short body). */
void ks_s3_bop_read_done(ks_s3_bop_t *op, ks_s3_code_t code, const void *p,
                         size_t n);

/* ---- The table ---------------------------------------------------------- */
typedef void (*ks_s3_bop_fn)(void *impl, ks_s3_bop_t *op);

typedef struct ks_s3_backend_ops {
  /* Synchronous.  Copy the secret of access key akid (akid_len bytes, not
   * NUL-terminated) into secret[0..size), set *secret_len and *who.
   * Return 0, -ENOENT (unknown key: InvalidAccessKeyId) or another negative
   * code (InternalError).  NULL: no keys at all. */
  int (*key_lookup)(void *impl, const char *akid, size_t akid_len, char *secret,
                    size_t size, size_t *secret_len, ks_s3_principal_t *who);

  /* Buckets.  in: who, bucket (region for create). */
  ks_s3_bop_fn list_buckets;        /* out: buckets, nbuckets */
  ks_s3_bop_fn create_bucket;       /* BucketAlreadyOwnedByYou, ... */
  ks_s3_bop_fn head_bucket;         /* NoSuchBucket, AccessDenied */
  ks_s3_bop_fn delete_bucket;       /* BucketNotEmpty */
  ks_s3_bop_fn get_bucket_location; /* out: location */

  /* Objects.  head/get: out info (etag, size, mtime, attrs).  After a
   * successful get the server calls read() to stream the bytes it needs
   * (it evaluates conditionals and ranges itself on info). */
  ks_s3_bop_fn head_object;
  ks_s3_bop_fn get_object;
  /* Read up to max bytes at off (inside the object) of a get op; finish
   * with ks_s3_bop_read_done().  One read per op at a time. */
  void (*read)(void *impl, ks_s3_bop_t *op, uint64_t off, size_t max);
  ks_s3_bop_fn put_object;     /* in: body, body_md5, attrs; out: info */
  ks_s3_bop_fn delete_object;  /* a missing key is a success, as in AWS */
  ks_s3_bop_fn delete_objects; /* in: del; out: deleted, ndeleted */
  ks_s3_bop_fn copy_object;    /* in: src, src_cond, directive, attrs */

  /* Listings: in list; out objects / uploads / parts. */
  ks_s3_bop_fn list_objects; /* v1 and v2 (list->v2) */
  ks_s3_bop_fn list_multipart_uploads;
  ks_s3_bop_fn list_parts;

  /* Multipart. */
  ks_s3_bop_fn create_multipart_upload;   /* out: upload_id_out */
  ks_s3_bop_fn upload_part;               /* in: body, part_number; out: etag */
  ks_s3_bop_fn upload_part_copy;          /* in: src, src_range, src_cond */
  ks_s3_bop_fn complete_multipart_upload; /* in: complete; out: info.etag */
  ks_s3_bop_fn abort_multipart_upload;

  /* Free what the backend hung on op (be_data, out fields).  Called once
   * per op that reached a table entry, after done (and after the last
   * read_done of a GET).  NULL: nothing to free. */
  void (*release)(void *impl, ks_s3_bop_t *op);
} ks_s3_backend_ops_t;

/* A backend: its table and its state, both owned by whoever built it and
 * valid until the server using it has closed. */
typedef struct ks_s3_backend {
  const ks_s3_backend_ops_t *ops;
  void *impl;
} ks_s3_backend_t;

/* The backend of a gateway with no object store wired in: no access keys
 * (every signed request is InvalidAccessKeyId, anonymous ones AccessDenied)
 * and no operations (NotImplemented).  Static, never freed. */
const ks_s3_backend_t *ks_s3_backend_none(void);

#endif /* KS_S3_BACKEND_H */
