/*
 * meta_client.h — libkiseki's asynchronous client of the metadata service
 * (ks/proto_meta.h) over one ks_rpc_client_t, for the gateways.
 *
 * A ks_meta_client_t talks to one meta node (today: the node that leads
 * the shards; routing by shard map and following KS_META_ENOTLEADER to the
 * leader come with the cluster work).  Calls are caller-owned structs, as
 * in ks/rpc.h: keep a ks_meta_call_t alive from ks_meta_write/ks_meta_query
 * until its callback has run; if the start function fails the callback
 * never runs.
 *
 * RESULTS.  In the callback, status is 0, a KS_META_E* outcome (see
 * ks/proto_meta.h for the S3 mapping) or a transport error (ks/rpc.h).  On
 * status 0 the decoded answer is in the call: `result` for writes, the
 * member of `r` that matches the opcode for reads (comp for GET_OBJECT,
 * objects for LIST_OBJECTS, ...).  Its strings and arrays live in the
 * call's arena and stay valid until ks_meta_call_release(), which the
 * caller must call once after the callback (also on failure).  An answer
 * that does not decode is reported as KS_EPROTO.
 *
 * SECRETS.  Request and response bodies that carry an access-key secret
 * are wiped before they are freed; ks_meta_call_release wipes a returned
 * secret.
 *
 * THREADS.  The client and its calls belong to the loop's thread.
 */
#ifndef KS_META_CLIENT_H
#define KS_META_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "ks/enc.h"
#include "ks/proto_meta.h"
#include "ks/rpc.h"

typedef struct ks_meta_client ks_meta_client_t;
typedef struct ks_meta_call ks_meta_call_t;
typedef void (*ks_meta_cb)(ks_meta_call_t *call, int status);

struct ks_meta_call {
  void *data; /* for the caller */
  ks_meta_result_t result;
  union {
    ks_meta_comp_t comp;
    ks_meta_bucket_t bucket;
    ks_meta_buckets_t buckets;
    ks_meta_objects_t objects;
    ks_meta_uploads_t uploads;
    ks_meta_parts_t parts;
    ks_meta_upload_t upload;
    ks_meta_akey_t akey;
  } r;
  ks_meta_arena_t arena;
  /* private */
  ks_rpc_call_t _rpc;
  ks_enc_t _body;
  ks_meta_cb _cb;
  uint16_t _op;
  uint8_t _secret; /* bodies carry a secret: wipe them */
};

/* A client for the meta node at host:port.  opts as ks_rpc_client_new. */
int ks_meta_client_new(uv_loop_t *loop, const char *host, uint16_t port,
                       const ks_rpc_opts_t *opts, ks_meta_client_t **out);
/* Close (calls on the wire complete, waiting ones fail), then cb(arg). */
void ks_meta_client_close(ks_meta_client_t *cl, ks_rpc_close_cb cb, void *arg);

/* Propose delta d on shard `shard`.  d is encoded at once (it need not
 * outlive this call).  Errors: as ks_rpc_call_start, -ENOMEM, -EINVAL. */
int ks_meta_write(ks_meta_client_t *cl, ks_meta_call_t *call, uint64_t shard,
                  const ks_meta_delta_t *d, uint32_t timeout_ms, ks_meta_cb cb);
/* Run read op (KS_OP_META_GET_BUCKET .. GET_ACCESS_KEY) with q (encoded at
 * once). */
int ks_meta_query(ks_meta_client_t *cl, ks_meta_call_t *call, uint16_t op,
                  const ks_meta_query_t *q, uint32_t timeout_ms, ks_meta_cb cb);
/* Free the answer's memory; the call may then be reused. */
void ks_meta_call_release(ks_meta_call_t *call);

#endif /* KS_META_CLIENT_H */
