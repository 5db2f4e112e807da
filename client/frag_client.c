/*
 * frag_client.c — async fragment calls to a chunk daemon (contract in
 * ks/frag_client.h).
 *
 * Each call encodes its small body into the call's own ks_enc_t (freed when
 * the answer arrives), sends a put's payload as the request's bulk straight
 * from the caller's memory, and on the answer decodes the body and points
 * `bytes` into the response message's bulk: no copy on either side.  An
 * answer is checked before the caller sees it: the body must decode
 * exactly, a get's bulk must lie inside the payload and match the length
 * asked for, and a whole-payload get must match its crc.
 */
#include "ks/frag_client.h"

#include "ks/crc32c.h"
#include "ks/endian.h"
#include "ks/err.h"

#include <stdlib.h>
#include <string.h>

static int get_resp_check(ks_frag_call_t *c, const ks_rpc_msg_t *m)
{
  ks_frag_get_resp_t r;
  int rc = ks_frag_get_resp_decode(m->body, m->body_len, &r);
  if (rc != 0)
    return KS_EPROTO;
  if (m->bulk_len > r.info.len - r.offset ||
      (c->_want && m->bulk_len != c->_want))
    return KS_EPROTO;
  c->info = r.info;
  c->offset = r.offset;
  c->bytes = m->bulk;
  c->len = (size_t)m->bulk_len;
  if (r.offset == 0 && c->len == r.info.len &&
      ks_crc32c(0, c->bytes, c->len) != r.info.crc)
    return KS_ECORRUPT;
  return 0;
}

static int dev_list_check(ks_frag_call_t *c, const ks_rpc_msg_t *m)
{
  /* The count leads the body: size the array by it (bounded). */
  if (m->body_len < 4 || ks_get_le32(m->body) > KS_DEV_MAX)
    return KS_EPROTO;
  size_t n = ks_get_le32(m->body);
  c->devs = calloc(n ? n : 1, sizeof(*c->devs));
  if (c->devs == NULL)
    return -ENOMEM;
  int rc = ks_dev_list_resp_decode(m->body, m->body_len, c->devs, n, &c->ndevs);
  return rc == 0 ? 0 : KS_EPROTO;
}

static int resp_check(ks_frag_call_t *c, const ks_rpc_msg_t *m)
{
  switch (c->_op) {
  case KS_OP_FRAG_GET:
    return get_resp_check(c, m);
  case KS_OP_FRAG_STAT:
    return ks_frag_info_decode(m->body, m->body_len, &c->info) == 0 ? 0
                                                                    : KS_EPROTO;
  case KS_OP_DEV_LIST:
    return dev_list_check(c, m);
  default: /* put, delete: nothing to read */
    return m->body_len == 0 && m->bulk_len == 0 ? 0 : KS_EPROTO;
  }
}

static void frag_call_done(ks_rpc_call_t *rpc, int status, ks_rpc_msg_t *resp)
{
  ks_frag_call_t *c = rpc->data;
  ks_enc_free(&c->_body);
  c->_resp = resp;
  if (status == 0)
    status = resp ? resp_check(c, resp) : KS_EPROTO;
  if (status != 0) { /* results are all or nothing */
    c->bytes = NULL;
    c->len = 0;
  }
  c->_cb(c, status);
}

static int frag_call_start(ks_rpc_client_t *cl, ks_frag_call_t *c, uint16_t op,
                           const struct iovec *bulk, int nbulk,
                           uint32_t timeout_ms, ks_frag_cb cb)
{
  int rc = ks_enc_finish(&c->_body);
  if (rc == 0) {
    struct iovec body = {c->_body.buf.data, c->_body.buf.len};
    c->_op = op;
    c->_cb = cb;
    c->_rpc.data = c;
    rc = ks_rpc_call_start(cl, &c->_rpc, op, &body, body.iov_len ? 1 : 0, bulk,
                           nbulk, timeout_ms, frag_call_done);
  }
  if (rc != 0)
    ks_enc_free(&c->_body);
  return rc;
}

static void frag_call_init(ks_frag_call_t *c)
{
  void *data = c->data;
  memset(c, 0, sizeof(*c));
  c->data = data;
}

int ks_frag_put(ks_rpc_client_t *cl, ks_frag_call_t *c,
                const ks_frag_put_req_t *req, const struct iovec *payload,
                int iovcnt, uint32_t timeout_ms, ks_frag_cb cb)
{
  if (iovcnt < 0 || iovcnt > KS_RPC_IOV_MAX ||
      ks_iov_total(payload, iovcnt) > KS_FRAG_MAX_LEN)
    return -EINVAL;
  frag_call_init(c);
  ks_frag_put_req_t r = *req;
  r.crc = ks_crc32c_iov(0, payload, iovcnt);
  ks_frag_put_req_encode(&c->_body, &r);
  return frag_call_start(cl, c, KS_OP_FRAG_PUT, payload, iovcnt, timeout_ms,
                         cb);
}

static int frag_req_start(ks_rpc_client_t *cl, ks_frag_call_t *c, uint16_t op,
                          const ks_frag_req_t *req, uint32_t timeout_ms,
                          ks_frag_cb cb)
{
  frag_call_init(c);
  c->_want = op == KS_OP_FRAG_GET ? req->length : 0;
  ks_frag_req_encode(&c->_body, op, req);
  return frag_call_start(cl, c, op, NULL, 0, timeout_ms, cb);
}

int ks_frag_get(ks_rpc_client_t *cl, ks_frag_call_t *c,
                const ks_frag_req_t *req, uint32_t timeout_ms, ks_frag_cb cb)
{
  return frag_req_start(cl, c, KS_OP_FRAG_GET, req, timeout_ms, cb);
}

int ks_frag_stat(ks_rpc_client_t *cl, ks_frag_call_t *c,
                 const ks_frag_req_t *req, uint32_t timeout_ms, ks_frag_cb cb)
{
  return frag_req_start(cl, c, KS_OP_FRAG_STAT, req, timeout_ms, cb);
}

int ks_frag_delete(ks_rpc_client_t *cl, ks_frag_call_t *c,
                   const ks_frag_req_t *req, uint32_t timeout_ms, ks_frag_cb cb)
{
  return frag_req_start(cl, c, KS_OP_FRAG_DELETE, req, timeout_ms, cb);
}

int ks_frag_dev_list(ks_rpc_client_t *cl, ks_frag_call_t *c,
                     uint32_t timeout_ms, ks_frag_cb cb)
{
  frag_call_init(c);
  return frag_call_start(cl, c, KS_OP_DEV_LIST, NULL, 0, timeout_ms, cb);
}

void ks_frag_call_release(ks_frag_call_t *c)
{
  ks_rpc_msg_free(c->_resp);
  c->_resp = NULL;
  free(c->devs);
  c->devs = NULL;
  c->ndevs = 0;
  c->bytes = NULL;
  c->len = 0;
  memset(&c->info, 0, sizeof(c->info));
}
