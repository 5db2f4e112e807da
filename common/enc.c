/*
 * enc.c — binary body encoding with sticky errors (see ks/enc.h).
 */
#include "ks/enc.h"

#include "ks/endian.h"
#include "ks/err.h"

#include <string.h>

static uint8_t *enc_room(ks_enc_t *e, size_t n)
{
  if (e->err != 0)
    return NULL;
  if (ks_buf_reserve(&e->buf, n) != 0) {
    e->err = -ENOMEM;
    return NULL;
  }
  uint8_t *p = e->buf.data + e->buf.len;
  e->buf.len += n;
  return p;
}

void ks_enc_u8(ks_enc_t *e, uint8_t v)
{
  uint8_t *p = enc_room(e, 1);
  if (p)
    *p = v;
}

void ks_enc_u16(ks_enc_t *e, uint16_t v)
{
  uint8_t *p = enc_room(e, 2);
  if (p)
    ks_put_le16(p, v);
}

void ks_enc_u32(ks_enc_t *e, uint32_t v)
{
  uint8_t *p = enc_room(e, 4);
  if (p)
    ks_put_le32(p, v);
}

void ks_enc_u64(ks_enc_t *e, uint64_t v)
{
  uint8_t *p = enc_room(e, 8);
  if (p)
    ks_put_le64(p, v);
}

void ks_enc_i64(ks_enc_t *e, int64_t v)
{
  ks_enc_u64(e, (uint64_t)v);
}

void ks_enc_bytes(ks_enc_t *e, const void *p, size_t n)
{
  if (n == 0)
    return;
  uint8_t *w = enc_room(e, n);
  if (w)
    memcpy(w, p, n);
}

void ks_enc_blob(ks_enc_t *e, const void *p, size_t n)
{
  if (n > UINT32_MAX) {
    if (e->err == 0)
      e->err = KS_ETOOBIG;
    return;
  }
  ks_enc_u32(e, (uint32_t)n);
  ks_enc_bytes(e, p, n);
}

void ks_enc_str(ks_enc_t *e, const char *s)
{
  ks_enc_blob(e, s, s ? strlen(s) : 0);
}

int ks_enc_finish(const ks_enc_t *e)
{
  return e->err;
}

void ks_enc_free(ks_enc_t *e)
{
  ks_buf_free(&e->buf);
  e->err = 0;
}

void ks_dec_init(ks_dec_t *d, const void *p, size_t n)
{
  d->p = p;
  d->left = p ? n : 0;
  d->err = 0;
}

const uint8_t *ks_dec_bytes(ks_dec_t *d, size_t n)
{
  if (d->err != 0)
    return NULL;
  if (n > d->left) {
    d->err = KS_EPROTO;
    d->left = 0;
    return NULL;
  }
  const uint8_t *p = d->p;
  d->p += n;
  d->left -= n;
  return p;
}

uint8_t ks_dec_u8(ks_dec_t *d)
{
  const uint8_t *p = ks_dec_bytes(d, 1);
  return p ? *p : 0;
}

uint16_t ks_dec_u16(ks_dec_t *d)
{
  const uint8_t *p = ks_dec_bytes(d, 2);
  return p ? ks_get_le16(p) : 0;
}

uint32_t ks_dec_u32(ks_dec_t *d)
{
  const uint8_t *p = ks_dec_bytes(d, 4);
  return p ? ks_get_le32(p) : 0;
}

uint64_t ks_dec_u64(ks_dec_t *d)
{
  const uint8_t *p = ks_dec_bytes(d, 8);
  return p ? ks_get_le64(p) : 0;
}

int64_t ks_dec_i64(ks_dec_t *d)
{
  return (int64_t)ks_dec_u64(d);
}

const uint8_t *ks_dec_blob(ks_dec_t *d, size_t max, size_t *n)
{
  uint32_t len = ks_dec_u32(d);
  *n = 0;
  if (d->err == 0 && len > max) {
    d->err = KS_ETOOBIG;
    return NULL;
  }
  const uint8_t *p = ks_dec_bytes(d, len);
  if (p)
    *n = len;
  return p;
}

void ks_dec_str(ks_dec_t *d, char *buf, size_t size)
{
  size_t n = 0;
  buf[0] = '\0';
  const uint8_t *p = ks_dec_blob(d, size ? size - 1 : 0, &n);
  if (p == NULL)
    return;
  if (memchr(p, '\0', n) != NULL) {
    d->err = KS_EPROTO;
    return;
  }
  memcpy(buf, p, n);
  buf[n] = '\0';
}

int ks_dec_finish(const ks_dec_t *d)
{
  if (d->err != 0)
    return d->err;
  return d->left == 0 ? 0 : KS_EPROTO;
}
