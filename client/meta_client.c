/*
 * meta_client.c — encode a metadata request, send it as one RPC, decode
 * the answer into the call's arena (ks/meta_client.h).
 *
 * The request body is owned by the call until the RPC completes (ks/rpc.h
 * requires the iovec data to stay valid until then); the response message
 * is freed as soon as it is decoded, since the decoders copy into the
 * arena.
 */
#include "ks/meta_client.h"

#include "ks/crypto.h"
#include "ks/err.h"

#include <stdlib.h>
#include <string.h>

struct ks_meta_client {
  ks_rpc_client_t *rpc;
};

int ks_meta_client_new(uv_loop_t *loop, const char *host, uint16_t port,
                       const ks_rpc_opts_t *opts, ks_meta_client_t **out)
{
  ks_meta_client_t *cl = calloc(1, sizeof(*cl));
  if (cl == NULL)
    return -ENOMEM;
  int rc = ks_rpc_client_new(loop, host, port, opts, &cl->rpc);
  if (rc != 0) {
    free(cl);
    return rc;
  }
  *out = cl;
  return 0;
}

void ks_meta_client_close(ks_meta_client_t *cl, ks_rpc_close_cb cb, void *arg)
{
  ks_rpc_client_close(cl->rpc, cb, arg);
  free(cl);
}

static int answer_decode(ks_meta_call_t *c, const uint8_t *p, size_t n)
{
  ks_meta_arena_t *a = &c->arena;
  switch (c->_op) {
  case KS_OP_META_WRITE:
    return ks_meta_result_decode(p, n, &c->result);
  case KS_OP_META_GET_BUCKET:
    return ks_meta_bucket_decode(p, n, a, &c->r.bucket);
  case KS_OP_META_LIST_BUCKETS:
    return ks_meta_buckets_decode(p, n, a, &c->r.buckets);
  case KS_OP_META_GET_OBJECT:
    return ks_meta_comp_decode(p, n, a, &c->r.comp);
  case KS_OP_META_LIST_OBJECTS:
    return ks_meta_objects_decode(p, n, a, &c->r.objects);
  case KS_OP_META_LIST_UPLOADS:
    return ks_meta_uploads_decode(p, n, a, &c->r.uploads);
  case KS_OP_META_LIST_PARTS:
    return ks_meta_parts_decode(p, n, a, &c->r.parts);
  case KS_OP_META_GET_UPLOAD:
    return ks_meta_upload_decode(p, n, a, &c->r.upload);
  case KS_OP_META_GET_ACCESS_KEY:
    return ks_meta_akey_decode(p, n, a, &c->r.akey);
  default:
    return KS_EPROTO;
  }
}

static void body_wipe(ks_meta_call_t *c)
{
  if (c->_secret)
    ks_secure_zero(c->_body.buf.data, c->_body.buf.len);
  ks_enc_free(&c->_body);
}

static void call_done(ks_rpc_call_t *rpc, int status, ks_rpc_msg_t *resp)
{
  ks_meta_call_t *c = rpc->data;
  body_wipe(c);
  if (status == 0 && resp != NULL) {
    status = answer_decode(c, resp->body, resp->body_len);
    if (status != 0)
      status = status == -ENOMEM ? -ENOMEM : KS_EPROTO;
  }
  if (resp != NULL) {
    if (c->_secret && resp->body != NULL)
      ks_secure_zero(resp->body, resp->body_len);
    ks_rpc_msg_free(resp);
  }
  c->_cb(c, status);
}

static int call_start(ks_meta_client_t *cl, ks_meta_call_t *c, uint16_t op,
                      uint32_t timeout_ms, ks_meta_cb cb)
{
  int rc = ks_enc_finish(&c->_body);
  if (rc == 0) {
    struct iovec iov = {c->_body.buf.data, c->_body.buf.len};
    c->_rpc.data = c;
    c->_cb = cb;
    c->_op = op;
    rc = ks_rpc_call_start(cl->rpc, &c->_rpc, op, &iov, 1, NULL, 0, timeout_ms,
                           call_done);
  }
  if (rc != 0)
    body_wipe(c);
  return rc;
}

static void call_init(ks_meta_call_t *c)
{
  void *data = c->data;
  memset(c, 0, sizeof(*c));
  c->data = data;
}

int ks_meta_write(ks_meta_client_t *cl, ks_meta_call_t *call, uint64_t shard,
                  const ks_meta_delta_t *d, uint32_t timeout_ms, ks_meta_cb cb)
{
  call_init(call);
  call->_secret = d->type == KS_DELTA_PUT_ACCESS_KEY;
  ks_meta_write_encode(&call->_body, shard, d);
  return call_start(cl, call, KS_OP_META_WRITE, timeout_ms, cb);
}

int ks_meta_query(ks_meta_client_t *cl, ks_meta_call_t *call, uint16_t op,
                  const ks_meta_query_t *q, uint32_t timeout_ms, ks_meta_cb cb)
{
  call_init(call);
  call->_secret = op == KS_OP_META_GET_ACCESS_KEY;
  int rc = ks_meta_query_encode(&call->_body, op, q);
  if (rc != 0) {
    ks_enc_free(&call->_body);
    return rc;
  }
  return call_start(cl, call, op, timeout_ms, cb);
}

void ks_meta_call_release(ks_meta_call_t *call)
{
  if (call->_op == KS_OP_META_GET_ACCESS_KEY && call->r.akey.secret != NULL)
    ks_secure_zero((void *)call->r.akey.secret, call->r.akey.secret_len);
  ks_meta_arena_free(&call->arena);
  memset(&call->r, 0, sizeof(call->r));
}
