/*
 * proto_chunk.c — encoders and decoders of chunkd's RPC bodies (see
 * ks/proto_chunk.h for the layouts).
 *
 * Decoders trust nothing: every field read goes through a sticky ks_dec_t
 * (a short body can never be read past), enumerations and lengths are
 * range-checked, and a body with bytes left over is rejected, so two
 * implementations cannot silently disagree about a layout.  Lives in common/
 * because both sides link it: chunkd (server) and libkiseki (client).
 */
#include "ks/proto_chunk.h"

#include "ks/err.h"

#include <string.h>

static const char *const dev_class_names[KS_DEV_CLASS_COUNT] = {
    "fast-nvme", "bulk-nvme", "hdd"};
static const char *const dev_state_names[KS_DEV_STATE_COUNT] = {"ok", "failed"};

const char *ks_dev_class_name(int cls)
{
  return cls >= 0 && cls < KS_DEV_CLASS_COUNT ? dev_class_names[cls] : "?";
}

const char *ks_dev_state_name(int state)
{
  return state >= 0 && state < KS_DEV_STATE_COUNT ? dev_state_names[state]
                                                  : "?";
}

int ks_dev_class_parse(const char *s, ks_dev_class_t *out)
{
  for (int i = 0; i < KS_DEV_CLASS_COUNT; i++) {
    if (strcmp(s, dev_class_names[i]) == 0) {
      *out = (ks_dev_class_t)i;
      return 0;
    }
  }
  return -EINVAL;
}

/* ---- shared pieces ------------------------------------------------------ */

static void key_encode(ks_enc_t *e, const ks_id_t *dev, const ks_frag_key_t *k)
{
  ks_enc_bytes(e, dev->b, KS_ID_LEN);
  ks_enc_bytes(e, k->chunk_id, KS_CHUNK_ID_LEN);
  ks_enc_u8(e, k->index);
}

static void key_decode(ks_dec_t *d, ks_id_t *dev, ks_frag_key_t *k)
{
  const uint8_t *p = ks_dec_bytes(d, KS_ID_LEN);
  if (p)
    memcpy(dev->b, p, KS_ID_LEN);
  p = ks_dec_bytes(d, KS_CHUNK_ID_LEN);
  if (p)
    memcpy(k->chunk_id, p, KS_CHUNK_ID_LEN);
  k->index = ks_dec_u8(d);
}

static void info_encode(ks_enc_t *e, const ks_frag_info_t *info)
{
  ks_enc_u8(e, info->k);
  ks_enc_u8(e, info->m);
  ks_enc_u64(e, info->len);
  ks_enc_u32(e, info->crc);
}

static void info_decode(ks_dec_t *d, ks_frag_info_t *info)
{
  info->k = ks_dec_u8(d);
  info->m = ks_dec_u8(d);
  info->len = ks_dec_u64(d);
  info->crc = ks_dec_u32(d);
  if (d->err == 0 && info->len > KS_FRAG_MAX_LEN)
    d->err = KS_ETOOBIG;
}

/* ---- requests ----------------------------------------------------------- */

void ks_frag_put_req_encode(ks_enc_t *e, const ks_frag_put_req_t *r)
{
  key_encode(e, &r->dev, &r->key);
  ks_enc_u8(e, r->k);
  ks_enc_u8(e, r->m);
  ks_enc_u32(e, r->crc);
}

int ks_frag_put_req_decode(const void *p, size_t n, ks_frag_put_req_t *r)
{
  ks_dec_t d;
  ks_dec_init(&d, p, n);
  key_decode(&d, &r->dev, &r->key);
  r->k = ks_dec_u8(&d);
  r->m = ks_dec_u8(&d);
  r->crc = ks_dec_u32(&d);
  int rc = ks_dec_finish(&d);
  if (rc != 0)
    return rc;
  /* A profile needs a data fragment, and the index must lie inside it. */
  if (r->k == 0 || r->key.index >= (unsigned)r->k + r->m)
    return KS_EPROTO;
  return 0;
}

void ks_frag_req_encode(ks_enc_t *e, uint16_t opcode, const ks_frag_req_t *r)
{
  key_encode(e, &r->dev, &r->key);
  if (opcode == KS_OP_FRAG_GET) {
    ks_enc_u64(e, r->offset);
    ks_enc_u64(e, r->length);
  }
}

int ks_frag_req_decode(const void *p, size_t n, uint16_t opcode,
                       ks_frag_req_t *r)
{
  ks_dec_t d;
  ks_dec_init(&d, p, n);
  key_decode(&d, &r->dev, &r->key);
  r->offset = 0;
  r->length = 0;
  if (opcode == KS_OP_FRAG_GET) {
    r->offset = ks_dec_u64(&d);
    r->length = ks_dec_u64(&d);
  }
  int rc = ks_dec_finish(&d);
  if (rc != 0)
    return rc;
  if (r->offset > KS_FRAG_MAX_LEN || r->length > KS_FRAG_MAX_LEN)
    return KS_ETOOBIG;
  return 0;
}

/* ---- responses ---------------------------------------------------------- */

void ks_frag_info_encode(ks_enc_t *e, const ks_frag_info_t *info)
{
  info_encode(e, info);
}

int ks_frag_info_decode(const void *p, size_t n, ks_frag_info_t *info)
{
  ks_dec_t d;
  ks_dec_init(&d, p, n);
  info_decode(&d, info);
  return ks_dec_finish(&d);
}

void ks_frag_get_resp_encode(ks_enc_t *e, const ks_frag_get_resp_t *r)
{
  info_encode(e, &r->info);
  ks_enc_u64(e, r->offset);
}

int ks_frag_get_resp_decode(const void *p, size_t n, ks_frag_get_resp_t *r)
{
  ks_dec_t d;
  ks_dec_init(&d, p, n);
  info_decode(&d, &r->info);
  r->offset = ks_dec_u64(&d);
  int rc = ks_dec_finish(&d);
  if (rc == 0 && r->offset > r->info.len)
    rc = KS_EPROTO;
  return rc;
}

void ks_dev_list_resp_encode(ks_enc_t *e, const ks_dev_info_t *devs,
                             size_t count)
{
  ks_enc_u32(e, (uint32_t)count);
  for (size_t i = 0; i < count; i++) {
    const ks_dev_info_t *v = &devs[i];
    ks_enc_bytes(e, v->id.b, KS_ID_LEN);
    ks_enc_u8(e, v->cls);
    ks_enc_u8(e, v->state);
    ks_enc_str(e, v->path);
    ks_enc_u64(e, v->capacity);
    ks_enc_u64(e, v->free);
    ks_enc_u64(e, v->frags);
  }
}

static void dev_info_decode(ks_dec_t *d, ks_dev_info_t *v)
{
  const uint8_t *p = ks_dec_bytes(d, KS_ID_LEN);
  if (p)
    memcpy(v->id.b, p, KS_ID_LEN);
  v->cls = ks_dec_u8(d);
  v->state = ks_dec_u8(d);
  ks_dec_str(d, v->path, sizeof(v->path));
  v->capacity = ks_dec_u64(d);
  v->free = ks_dec_u64(d);
  v->frags = ks_dec_u64(d);
  if (d->err == 0 &&
      (v->cls >= KS_DEV_CLASS_COUNT || v->state >= KS_DEV_STATE_COUNT))
    d->err = KS_EPROTO;
}

int ks_dev_list_resp_decode(const void *p, size_t n, ks_dev_info_t *out,
                            size_t max, size_t *count)
{
  ks_dec_t d;
  ks_dec_init(&d, p, n);
  uint32_t c = ks_dec_u32(&d);
  *count = 0;
  if (d.err != 0)
    return d.err;
  if (c > max || c > KS_DEV_MAX)
    return KS_ETOOBIG;
  for (uint32_t i = 0; i < c && d.err == 0; i++)
    dev_info_decode(&d, &out[i]);
  int rc = ks_dec_finish(&d);
  if (rc == 0)
    *count = c;
  return rc;
}
