/*
 * frag_client.h — libkiseki's calls to a chunk daemon: put, get, stat and
 * delete one fragment, list the daemon's devices (protocol in
 * ks/proto_chunk.h), asynchronously over a ks_rpc_client_t.
 *
 * CALL LIFECYCLE (that of ks/rpc.h).  The caller owns a ks_frag_call_t and
 * keeps it, and a put's payload, alive until the callback.  If a start
 * function fails, the callback never runs and the call holds nothing.
 * Otherwise the callback runs exactly once on the loop thread, with status 0
 * or the error: the daemon's (-ENOENT, -EEXIST, KS_ECORRUPT, KS_EBADCRC,
 * -EIO, KS_EBUSY, ...), the RPC layer's (KS_ETIMEDOUT, KS_ECLOSED,
 * -ECONNREFUSED, ...), or KS_EPROTO / KS_ECORRUPT for an answer that fails
 * this side's checks.  The results (fields below) are valid from the
 * callback until ks_frag_call_release(), which the caller must call (in the
 * callback or later, whatever the status) before reusing or freeing the
 * call.
 *
 * CHECKS.  A put sends the payload's crc32c, computed here, which chunkd
 * verifies and stores: the checksum covers the fragment end to end.  A get
 * of a whole payload checks the bytes against the stored crc on arrival.
 *
 * Threads: the loop thread of the ks_rpc_client_t only.
 */
#ifndef KS_FRAG_CLIENT_H
#define KS_FRAG_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ks/enc.h"
#include "ks/proto_chunk.h"
#include "ks/rpc.h"

typedef struct ks_frag_call ks_frag_call_t;
typedef void (*ks_frag_cb)(ks_frag_call_t *call, int status);

struct ks_frag_call {
  void *data; /* for the caller */
  /* results, valid from the callback until ks_frag_call_release() */
  ks_frag_info_t info;  /* get, stat */
  uint64_t offset;      /* get: where `bytes` start in the payload */
  const uint8_t *bytes; /* get: the payload range (64-byte aligned) */
  size_t len;           /* get: its length */
  ks_dev_info_t *devs;  /* dev_list: ndevs entries */
  size_t ndevs;
  /* private */
  ks_rpc_call_t _rpc;
  ks_frag_cb _cb;
  uint16_t _op;
  uint64_t _want; /* get: the length asked for (0: to the end) */
  ks_enc_t _body;
  ks_rpc_msg_t *_resp;
};

/* Store a fragment: payload is iovcnt <= KS_RPC_IOV_MAX pieces of at most
 * KS_FRAG_MAX_LEN bytes in all; req->crc is ignored (the crc32c of the
 * payload is computed here).
 * timeout_ms 0: the RPC default.  Errors: those of ks_rpc_call_start,
 * -EINVAL, -ENOMEM. */
int ks_frag_put(ks_rpc_client_t *cl, ks_frag_call_t *c,
                const ks_frag_put_req_t *req, const struct iovec *payload,
                int iovcnt, uint32_t timeout_ms, ks_frag_cb cb);
/* Read req->offset .. + req->length (0: to the end). */
int ks_frag_get(ks_rpc_client_t *cl, ks_frag_call_t *c,
                const ks_frag_req_t *req, uint32_t timeout_ms, ks_frag_cb cb);
int ks_frag_stat(ks_rpc_client_t *cl, ks_frag_call_t *c,
                 const ks_frag_req_t *req, uint32_t timeout_ms, ks_frag_cb cb);
int ks_frag_delete(ks_rpc_client_t *cl, ks_frag_call_t *c,
                   const ks_frag_req_t *req, uint32_t timeout_ms,
                   ks_frag_cb cb);
int ks_frag_dev_list(ks_rpc_client_t *cl, ks_frag_call_t *c,
                     uint32_t timeout_ms, ks_frag_cb cb);

/* Free what the answer holds (response message, device array) and clear
 * the results.  Idempotent. */
void ks_frag_call_release(ks_frag_call_t *c);

#endif /* KS_FRAG_CLIENT_H */
