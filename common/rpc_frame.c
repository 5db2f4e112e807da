/*
 * rpc_frame.c — the RPC frame: header codec, message memory, and the framer
 * that turns a byte stream back into frames.
 *
 * Pure code (no I/O, no loop) so it can be fuzzed whole: tests/fuzz/
 * fuzz_rpc_frame.c pushes arbitrary bytes through ks__framer_* exactly as a
 * connection does.
 *
 * Invariants of the framer:
 *  1. No length from the wire is used before the header crc and the limits
 *     have been checked (ks_rpc_hdr_decode), so a corrupt or hostile header
 *     cannot make us allocate more than max_body + max_bulk.
 *  2. A message is allocated once, at its final size, and the stream's bytes
 *     are written into it in place; the body and bulk crcs are checked when
 *     the last byte arrives, before the message is handed out.
 *  3. After any error the framer stays failed (f->err); the connection is
 *     closed, because the stream position can no longer be trusted.
 */
#include "rpc_int.h"

#include "ks/bigbuf.h"
#include "ks/crc32c.h"
#include "ks/endian.h"
#include "ks/err.h"

#include <stdlib.h>
#include <string.h>

#define KS__ALIGN64(x) (((x) + 63U) & ~(size_t)63U)

void ks_rpc_hdr_encode(const ks_rpc_hdr_t *h, uint8_t out[KS_RPC_HDR_SIZE])
{
  ks_put_le32(out + 0, KS_RPC_MAGIC);
  out[4] = h->version;
  out[5] = h->kind;
  ks_put_le16(out + 6, h->opcode);
  ks_put_le64(out + 8, h->id);
  ks_put_le32(out + 16, (uint32_t)h->status);
  ks_put_le32(out + 20, h->body_len);
  ks_put_le64(out + 24, h->bulk_len);
  ks_put_le32(out + 32, h->body_crc);
  ks_put_le32(out + 36, h->bulk_crc);
  ks_put_le32(out + 40, h->timeout_ms);
  ks_put_le32(out + 44, ks_crc32c(0, out, 44));
}

int ks_rpc_hdr_decode(const uint8_t in[KS_RPC_HDR_SIZE], uint32_t max_body,
                      uint64_t max_bulk, ks_rpc_hdr_t *h)
{
  if (ks_get_le32(in) != KS_RPC_MAGIC)
    return KS_EBADMAGIC;
  if (in[4] != KS_RPC_VERSION)
    return KS_EBADVERSION;
  if (ks_get_le32(in + 44) != ks_crc32c(0, in, 44))
    return KS_EBADCRC;
  h->version = in[4];
  h->kind = in[5];
  h->opcode = ks_get_le16(in + 6);
  h->id = ks_get_le64(in + 8);
  h->status = (int32_t)ks_get_le32(in + 16);
  h->body_len = ks_get_le32(in + 20);
  h->bulk_len = ks_get_le64(in + 24);
  h->body_crc = ks_get_le32(in + 32);
  h->bulk_crc = ks_get_le32(in + 36);
  h->timeout_ms = ks_get_le32(in + 40);
  if (h->kind != KS_RPC_REQUEST && h->kind != KS_RPC_RESPONSE)
    return KS_EPROTO;
  if (h->body_len > max_body || h->bulk_len > max_bulk)
    return KS_ETOOBIG;
  return 0;
}

ks_rpc_msg_t *ks__msg_alloc(uint32_t body_len, uint64_t bulk_len)
{
  size_t off_body = KS__ALIGN64(sizeof(ks_rpc_msg_t));
  size_t off_bulk = KS__ALIGN64(off_body + body_len);
  size_t cap = 0;
  if (bulk_len > SIZE_MAX - off_bulk)
    return NULL;
  /* Bulk-sized messages come from the large-buffer cache: a fresh mmap per
   * frame costs a page fault per page (see ks/bigbuf.h). */
  void *p = ks_bigbuf_alloc(off_bulk + (size_t)bulk_len, &cap);
  if (p == NULL)
    return NULL;
  ks_rpc_msg_t *m = p;
  memset(m, 0, sizeof(*m));
  m->body = body_len ? (uint8_t *)p + off_body : NULL;
  m->body_len = body_len;
  m->bulk = bulk_len ? (uint8_t *)p + off_bulk : NULL;
  m->bulk_len = bulk_len;
  m->_alloc = cap;
  return m;
}

void ks_rpc_msg_free(ks_rpc_msg_t *msg)
{
  if (msg)
    ks_bigbuf_free(msg, msg->_alloc);
}

void ks__framer_init(ks__framer_t *f, uint32_t max_body, uint64_t max_bulk)
{
  memset(f, 0, sizeof(*f));
  f->max_body = max_body;
  f->max_bulk = max_bulk;
}

void ks__framer_seal(ks__framer_t *f, ks__framer_open_fn open, void *arg)
{
  f->open = open;
  f->open_arg = arg;
}

/* Payload bytes a frame carries on the wire: body, bulk, sealed: tag. */
static uint64_t framer_payload(const ks__framer_t *f, const ks_rpc_msg_t *m)
{
  uint64_t n = m->body_len + m->bulk_len;
  if (f->open != NULL && m->bulk_len > 0)
    n += KS_RPC_TAG_SIZE;
  return n;
}

bool ks__framer_raw(const ks__framer_t *f)
{
  return f->open != NULL && f->msg != NULL && f->msg->bulk_len > 0 &&
         f->got >= f->msg->body_len;
}

void ks__framer_reset(ks__framer_t *f)
{
  ks_rpc_msg_free(f->msg);
  f->msg = NULL;
  f->hdr_got = 0;
  f->got = 0;
}

void ks__framer_window(ks__framer_t *f, uint8_t **p, size_t *n)
{
  if (f->msg == NULL) {
    *p = f->hdr + f->hdr_got;
    *n = KS_RPC_HDR_SIZE - f->hdr_got;
    return;
  }
  const ks_rpc_msg_t *m = f->msg;
  if (f->got < m->body_len) {
    *p = m->body + f->got;
    *n = m->body_len - (size_t)f->got;
    return;
  }
  uint64_t off = f->got - m->body_len;
  if (off >= m->bulk_len) { /* sealed: the tag */
    off -= m->bulk_len;
    *p = f->tag + off;
    *n = KS_RPC_TAG_SIZE - (size_t)off;
    return;
  }
  *p = m->bulk + off;
  *n = (size_t)(m->bulk_len - off);
}

/* The frame is whole: check its payload and hand it out. */
static int framer_finish(ks__framer_t *f, ks_rpc_msg_t **out)
{
  ks_rpc_msg_t *m = f->msg;
  if (ks_crc32c(0, m->body, m->body_len) != f->h.body_crc)
    return f->err = KS_EBADCRC;
  if (f->open != NULL && m->bulk_len > 0) {
    int rc = f->open(f->open_arg, f->hdr, m->bulk, m->bulk_len, f->tag);
    if (rc != 0)
      return f->err = rc;
  } else if (ks_crc32c(0, m->bulk, (size_t)m->bulk_len) != f->h.bulk_crc) {
    return f->err = KS_EBADCRC;
  }
  f->msg = NULL;
  f->hdr_got = 0;
  f->got = 0;
  *out = m;
  return 0;
}

/* The header is whole: validate it and allocate the message. */
static int framer_start(ks__framer_t *f, ks_rpc_msg_t **out)
{
  int rc = ks_rpc_hdr_decode(f->hdr, f->max_body, f->max_bulk, &f->h);
  if (rc != 0)
    return f->err = rc;
  ks_rpc_msg_t *m = ks__msg_alloc(f->h.body_len, f->h.bulk_len);
  if (m == NULL)
    return f->err = -ENOMEM;
  m->opcode = f->h.opcode;
  m->kind = f->h.kind;
  m->status = f->h.status;
  m->id = f->h.id;
  m->timeout_ms = f->h.timeout_ms;
  f->msg = m;
  f->got = 0;
  if (m->body_len == 0 && m->bulk_len == 0)
    return framer_finish(f, out);
  return 0;
}

int ks__framer_commit(ks__framer_t *f, size_t n, ks_rpc_msg_t **out)
{
  *out = NULL;
  if (f->err != 0)
    return f->err;
  if (f->msg == NULL) {
    size_t before = f->hdr_got;
    f->hdr_got += n;
    /* Reject foreign traffic (an HTTP probe, say) as soon as the magic is
     * in, rather than waiting for a whole header that may never come. */
    if (before < 4 && f->hdr_got >= 4 && ks_get_le32(f->hdr) != KS_RPC_MAGIC)
      return f->err = KS_EBADMAGIC;
    if (f->hdr_got < KS_RPC_HDR_SIZE)
      return 0;
    return framer_start(f, out);
  }
  f->got += n;
  if (f->got < framer_payload(f, f->msg))
    return 0;
  return framer_finish(f, out);
}

int ks__out_prepare(ks_rpc_out_t *out, const ks_rpc_hdr_t *h,
                    const struct iovec *body, int nbody,
                    const struct iovec *bulk, int nbulk, bool sealed)
{
  if (nbody < 0 || nbulk < 0 || nbody > KS_RPC_IOV_MAX ||
      nbulk > KS_RPC_IOV_MAX || (nbody && !body) || (nbulk && !bulk))
    return -EINVAL;
  ks_rpc_hdr_t hh = *h;
  uint64_t body_len = 0;
  uint64_t bulk_len = 0;
  int k = 0;
  out->_iov[k].iov_base = out->_hdr;
  out->_iov[k++].iov_len = KS_RPC_HDR_SIZE;
  for (int i = 0; i < nbody; i++) {
    body_len += body[i].iov_len;
    if (body[i].iov_len)
      out->_iov[k++] = body[i];
  }
  out->_bulk_iov = k;
  for (int i = 0; i < nbulk; i++) {
    if (bulk[i].iov_len > UINT32_MAX) /* one uv_buf_t holds 32 bits */
      return KS_ETOOBIG;
    bulk_len += bulk[i].iov_len;
    if (bulk[i].iov_len)
      out->_iov[k++] = bulk[i];
  }
  if (body_len > UINT32_MAX)
    return KS_ETOOBIG;
  out->_iovcnt = k;
  hh.version = KS_RPC_VERSION;
  hh.body_len = (uint32_t)body_len;
  hh.bulk_len = bulk_len;
  hh.body_crc = ks_crc32c_iov(0, body, nbody);
  hh.bulk_crc = sealed ? 0 : ks_crc32c_iov(0, bulk, nbulk);
  ks_rpc_hdr_encode(&hh, out->_hdr);
  return 0;
}
