/*
 * proto_meta.c — encoders and decoders of the metadata shard's deltas,
 * records and RPC bodies (layouts in ks/proto_meta.h).
 *
 * Decoders trust nothing: every read goes through a sticky ks_dec_t, every
 * length and count is bounded before anything is allocated (a count is
 * also checked against the bytes left, so a hostile count cannot make us
 * allocate more than a small multiple of the input), booleans and kinds
 * must be exactly 0 or 1, and trailing bytes are refused.  The encoding is
 * therefore canonical: whatever decodes re-encodes to the same bytes (the
 * fuzz target checks it), so replicas cannot read one delta two ways.
 *
 * Decoded strings and arrays live in a caller-owned arena (chained blocks),
 * so a message of any shape is released with one call.
 */
#include "ks/proto_meta.h"

#include "ks/err.h"

#include <stdlib.h>
#include <string.h>

#define REC_VERSION 1
/* Compositions: 2 added content_language.  Only the current version is
 * read: decoding must stay canonical (what decodes re-encodes to the same
 * bytes, so replicas never read a delta two ways); nothing older was ever
 * deployed. */
#define COMP_VERSION 2
#define ARENA_BLOCK 4096

/* ---- Arena ------------------------------------------------------------- */

struct ks__meta_blk {
  ks__meta_blk_t *next;
  size_t cap, used;
  _Alignas(8) uint8_t data[];
};

void *ks_meta_arena_alloc(ks_meta_arena_t *a, size_t n)
{
  n = (n + 7) & ~(size_t)7;
  ks__meta_blk_t *b = a->_head;
  if (b == NULL || b->cap - b->used < n) {
    size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    b = malloc(sizeof(*b) + cap);
    if (b == NULL)
      return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = a->_head;
    a->_head = b;
  }
  void *p = b->data + b->used;
  b->used += n;
  return p;
}

void ks_meta_arena_free(ks_meta_arena_t *a)
{
  while (a->_head != NULL) {
    ks__meta_blk_t *b = a->_head;
    a->_head = b->next;
    free(b);
  }
}

/* ---- Decoding helpers ---------------------------------------------------- */

typedef struct dctx {
  ks_dec_t d;
  ks_meta_arena_t *a;
} dctx_t;

static void dctx_fail(dctx_t *c, int err)
{
  if (c->d.err == 0)
    c->d.err = err;
  c->d.left = 0;
}

static void *dctx_alloc(dctx_t *c, size_t n)
{
  if (c->d.err != 0)
    return NULL;
  void *p = ks_meta_arena_alloc(c->a, n ? n : 1);
  if (p == NULL)
    dctx_fail(c, -ENOMEM);
  return p;
}

/* A string of at most max bytes, without NUL, copied NUL-terminated. */
static const char *get_str(dctx_t *c, size_t max)
{
  size_t n;
  const uint8_t *p = ks_dec_blob(&c->d, max, &n);
  if (p == NULL)
    return "";
  if (memchr(p, '\0', n) != NULL) {
    dctx_fail(c, KS_EPROTO);
    return "";
  }
  char *s = dctx_alloc(c, n + 1);
  if (s == NULL)
    return "";
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* A blob, copied (the input may be freed before the arena). */
static const uint8_t *get_blob(dctx_t *c, size_t max, uint32_t *len)
{
  size_t n;
  *len = 0;
  const uint8_t *p = ks_dec_blob(&c->d, max, &n);
  if (p == NULL)
    return NULL;
  uint8_t *q = dctx_alloc(c, n);
  if (q == NULL)
    return NULL;
  memcpy(q, p, n);
  *len = (uint32_t)n;
  return q;
}

/* A count of at most max items each at least min_bytes long on the wire. */
static uint32_t get_count(dctx_t *c, uint32_t max, size_t min_bytes)
{
  uint32_t n = ks_dec_u32(&c->d);
  if (c->d.err != 0)
    return 0;
  if (n > max) {
    dctx_fail(c, KS_ETOOBIG);
    return 0;
  }
  if ((size_t)n * min_bytes > c->d.left) {
    dctx_fail(c, KS_EPROTO);
    return 0;
  }
  return n;
}

static bool get_bool(dctx_t *c)
{
  uint8_t v = ks_dec_u8(&c->d);
  if (v > 1)
    dctx_fail(c, KS_EPROTO);
  return v == 1;
}

static void get_id(dctx_t *c, ks_id_t *id)
{
  const uint8_t *p = ks_dec_bytes(&c->d, KS_ID_LEN);
  if (p)
    memcpy(id->b, p, KS_ID_LEN);
  else
    memset(id->b, 0, KS_ID_LEN);
}

static void get_version(dctx_t *c)
{
  if (ks_dec_u8(&c->d) != REC_VERSION)
    dctx_fail(c, KS_EPROTO);
}

static void dctx_init(dctx_t *c, const void *p, size_t n, ks_meta_arena_t *a)
{
  ks_dec_init(&c->d, p, n);
  c->a = a;
}

/* ---- Composition --------------------------------------------------------- */

static void loc_encode(ks_enc_t *e, const ks_meta_loc_t *l)
{
  ks_enc_str(e, l->node);
  ks_enc_bytes(e, l->dev.b, KS_ID_LEN);
}

static void extent_encode(ks_enc_t *e, const ks_meta_extent_t *x)
{
  ks_enc_u64(e, x->offset);
  ks_enc_u64(e, x->length);
  ks_enc_blob(e, x->desc, x->desc_len);
  ks_enc_u32(e, x->nlocs);
  for (uint32_t i = 0; i < x->nlocs; i++)
    loc_encode(e, &x->locs[i]);
}

static void comp_body_encode(ks_enc_t *e, const ks_meta_comp_t *c)
{
  ks_enc_u8(e, COMP_VERSION);
  ks_enc_u64(e, c->ino);
  ks_enc_u64(e, c->size);
  ks_enc_i64(e, c->mtime_ns);
  ks_enc_i64(e, c->ctime_ns);
  ks_enc_u32(e, c->mode);
  ks_enc_u32(e, c->uid);
  ks_enc_u32(e, c->gid);
  ks_enc_str(e, c->etag);
  ks_enc_str(e, c->content_type);
  ks_enc_str(e, c->content_encoding);
  ks_enc_str(e, c->content_disposition);
  ks_enc_str(e, c->cache_control);
  ks_enc_str(e, c->expires);
  ks_enc_str(e, c->content_language);
  ks_enc_u32(e, c->nmeta);
  for (uint32_t i = 0; i < c->nmeta; i++) {
    ks_enc_str(e, c->meta[i].name);
    ks_enc_str(e, c->meta[i].value);
  }
}

void ks_meta_comp_encode(ks_enc_t *e, const ks_meta_comp_t *c)
{
  comp_body_encode(e, c);
  ks_enc_u8(e, c->is_inline ? 1 : 0);
  if (c->is_inline) {
    ks_enc_blob(e, c->inline_data, c->inline_len);
    return;
  }
  ks_enc_u32(e, c->nextents);
  for (uint32_t i = 0; i < c->nextents; i++)
    extent_encode(e, &c->extents[i]);
}

static void extent_decode(dctx_t *c, ks_meta_extent_t *x)
{
  x->offset = ks_dec_u64(&c->d);
  x->length = ks_dec_u64(&c->d);
  x->desc = get_blob(c, KS_META_DESC_MAX, &x->desc_len);
  x->nlocs = get_count(c, KS_META_LOCS_MAX, 4 + KS_ID_LEN);
  ks_meta_loc_t *l = dctx_alloc(c, sizeof(*l) * x->nlocs);
  x->locs = l;
  for (uint32_t i = 0; l != NULL && i < x->nlocs; i++) {
    l[i].node = get_str(c, KS_META_NODE_MAX);
    get_id(c, &l[i].dev);
  }
}

static void comp_meta_decode(dctx_t *c, ks_meta_comp_t *m)
{
  m->nmeta = get_count(c, KS_META_USER_META_MAX, 8);
  ks_meta_kv_t *kv = dctx_alloc(c, sizeof(*kv) * m->nmeta);
  m->meta = kv;
  for (uint32_t i = 0; kv != NULL && i < m->nmeta; i++) {
    kv[i].name = get_str(c, KS_META_STR_MAX);
    kv[i].value = get_str(c, KS_META_STR_MAX);
  }
}

static void comp_decode(dctx_t *c, ks_meta_comp_t *m)
{
  memset(m, 0, sizeof(*m));
  if (ks_dec_u8(&c->d) != COMP_VERSION)
    dctx_fail(c, KS_EPROTO);
  m->ino = ks_dec_u64(&c->d);
  m->size = ks_dec_u64(&c->d);
  m->mtime_ns = ks_dec_i64(&c->d);
  m->ctime_ns = ks_dec_i64(&c->d);
  m->mode = ks_dec_u32(&c->d);
  m->uid = ks_dec_u32(&c->d);
  m->gid = ks_dec_u32(&c->d);
  m->etag = get_str(c, KS_META_ETAG_MAX - 1);
  m->content_type = get_str(c, KS_META_STR_MAX);
  m->content_encoding = get_str(c, KS_META_STR_MAX);
  m->content_disposition = get_str(c, KS_META_STR_MAX);
  m->cache_control = get_str(c, KS_META_STR_MAX);
  m->expires = get_str(c, KS_META_STR_MAX);
  m->content_language = get_str(c, KS_META_STR_MAX);
  comp_meta_decode(c, m);
  m->is_inline = get_bool(c);
  if (m->is_inline) {
    m->inline_data = get_blob(c, KS_META_INLINE_MAX, &m->inline_len);
    return;
  }
  m->nextents = get_count(c, KS_META_EXTENTS_MAX, 24);
  ks_meta_extent_t *x = dctx_alloc(c, sizeof(*x) * m->nextents);
  m->extents = x;
  for (uint32_t i = 0; x != NULL && i < m->nextents; i++)
    extent_decode(c, &x[i]);
}

int ks_meta_comp_decode(const void *p, size_t n, ks_meta_arena_t *a,
                        ks_meta_comp_t *c)
{
  dctx_t d;
  dctx_init(&d, p, n, a);
  comp_decode(&d, c);
  return ks_dec_finish(&d.d);
}

/* ---- Small records --------------------------------------------------------
 */

static void bucket_encode(ks_enc_t *e, const ks_meta_bucket_t *b)
{
  ks_enc_u8(e, REC_VERSION);
  ks_enc_str(e, b->name);
  ks_enc_bytes(e, b->tenant.b, KS_ID_LEN);
  ks_enc_i64(e, b->created_ns);
  ks_enc_u64(e, b->shard);
}

static void bucket_decode(dctx_t *c, ks_meta_bucket_t *b)
{
  get_version(c);
  b->name = get_str(c, KS_META_BUCKET_MAX);
  get_id(c, &b->tenant);
  b->created_ns = ks_dec_i64(&c->d);
  b->shard = ks_dec_u64(&c->d);
}

void ks_meta_bucket_encode(ks_enc_t *e, const ks_meta_bucket_t *b)
{
  bucket_encode(e, b);
}

int ks_meta_bucket_decode(const void *p, size_t n, ks_meta_arena_t *a,
                          ks_meta_bucket_t *b)
{
  dctx_t d;
  dctx_init(&d, p, n, a);
  bucket_decode(&d, b);
  return ks_dec_finish(&d.d);
}

void ks_meta_akey_encode(ks_enc_t *e, const ks_meta_akey_t *k)
{
  ks_enc_u8(e, REC_VERSION);
  ks_enc_str(e, k->id);
  ks_enc_bytes(e, k->tenant.b, KS_ID_LEN);
  ks_enc_blob(e, k->secret, k->secret_len);
  ks_enc_i64(e, k->created_ns);
}

int ks_meta_akey_decode(const void *p, size_t n, ks_meta_arena_t *a,
                        ks_meta_akey_t *k)
{
  dctx_t d;
  dctx_init(&d, p, n, a);
  get_version(&d);
  k->id = get_str(&d, KS_META_STR_MAX);
  get_id(&d, &k->tenant);
  k->secret = get_blob(&d, KS_META_SECRET_MAX, &k->secret_len);
  k->created_ns = ks_dec_i64(&d.d);
  return ks_dec_finish(&d.d);
}

void ks_meta_upload_encode(ks_enc_t *e, const ks_meta_upload_t *u)
{
  ks_enc_u8(e, REC_VERSION);
  ks_enc_str(e, u->key);
  ks_enc_str(e, u->upload_id);
  ks_enc_i64(e, u->initiated_ns);
  ks_meta_comp_encode(e, &u->meta);
}

int ks_meta_upload_decode(const void *p, size_t n, ks_meta_arena_t *a,
                          ks_meta_upload_t *u)
{
  dctx_t d;
  dctx_init(&d, p, n, a);
  get_version(&d);
  u->key = get_str(&d, KS_META_KEY_MAX);
  u->upload_id = get_str(&d, KS_META_UPLOAD_ID_MAX);
  u->initiated_ns = ks_dec_i64(&d.d);
  comp_decode(&d, &u->meta);
  return ks_dec_finish(&d.d);
}

void ks_meta_result_encode(ks_enc_t *e, const ks_meta_result_t *r)
{
  ks_enc_u64(e, r->ino);
  ks_enc_u64(e, r->size);
  ks_enc_str(e, r->etag);
}

int ks_meta_result_decode(const void *p, size_t n, ks_meta_result_t *r)
{
  ks_dec_t d;
  ks_dec_init(&d, p, n);
  r->ino = ks_dec_u64(&d);
  r->size = ks_dec_u64(&d);
  ks_dec_str(&d, r->etag, sizeof(r->etag));
  return ks_dec_finish(&d);
}

/* ---- Deltas -------------------------------------------------------------- */

static const char *const delta_names[KS_DELTA_TYPE_MAX + 1] = {
    "?",
    "CREATE_TENANT",
    "PUT_ACCESS_KEY",
    "DELETE_ACCESS_KEY",
    "CREATE_BUCKET",
    "DELETE_BUCKET",
    "PUT_OBJECT",
    "DELETE_OBJECT",
    "CREATE_MPU",
    "PUT_PART",
    "COMPLETE_MPU",
    "ABORT_MPU",
    "RENAME",
    "MKDIR"};

const char *ks_meta_delta_name(int type)
{
  return type > 0 && type <= KS_DELTA_TYPE_MAX ? delta_names[type] : "?";
}

static void delta_obj_encode(ks_enc_t *e, const ks_meta_delta_t *d)
{
  ks_enc_str(e, d->bucket);
  ks_enc_str(e, d->key);
}

static void delta_mpu_encode(ks_enc_t *e, const ks_meta_delta_t *d)
{
  delta_obj_encode(e, d);
  ks_enc_str(e, d->upload_id);
}

static void delta_body_encode(ks_enc_t *e, const ks_meta_delta_t *d)
{
  switch (d->type) {
  case KS_DELTA_CREATE_TENANT:
    ks_enc_bytes(e, d->tenant.b, KS_ID_LEN);
    ks_enc_str(e, d->name);
    break;
  case KS_DELTA_PUT_ACCESS_KEY:
    ks_enc_str(e, d->name);
    ks_enc_bytes(e, d->tenant.b, KS_ID_LEN);
    ks_enc_blob(e, d->secret, d->secret_len);
    break;
  case KS_DELTA_DELETE_ACCESS_KEY:
    ks_enc_str(e, d->name);
    break;
  case KS_DELTA_CREATE_BUCKET:
    ks_enc_str(e, d->bucket);
    ks_enc_bytes(e, d->tenant.b, KS_ID_LEN);
    ks_enc_u64(e, d->shard);
    break;
  case KS_DELTA_DELETE_BUCKET:
    ks_enc_str(e, d->bucket);
    ks_enc_bytes(e, d->tenant.b, KS_ID_LEN);
    break;
  case KS_DELTA_PUT_OBJECT:
  case KS_DELTA_MKDIR:
    delta_obj_encode(e, d);
    ks_meta_comp_encode(e, &d->comp);
    break;
  case KS_DELTA_DELETE_OBJECT:
    delta_obj_encode(e, d);
    break;
  case KS_DELTA_CREATE_MPU:
    delta_mpu_encode(e, d);
    ks_meta_comp_encode(e, &d->comp);
    break;
  case KS_DELTA_PUT_PART:
    delta_mpu_encode(e, d);
    ks_enc_u32(e, d->part);
    ks_meta_comp_encode(e, &d->comp);
    break;
  case KS_DELTA_COMPLETE_MPU:
    delta_mpu_encode(e, d);
    ks_enc_u32(e, d->nparts);
    for (uint32_t i = 0; i < d->nparts; i++) {
      ks_enc_u32(e, d->parts[i].part);
      ks_enc_str(e, d->parts[i].etag);
    }
    break;
  case KS_DELTA_ABORT_MPU:
    delta_mpu_encode(e, d);
    break;
  case KS_DELTA_RENAME:
    delta_obj_encode(e, d);
    ks_enc_str(e, d->new_key);
    break;
  default:
    if (e->err == 0)
      e->err = -EINVAL;
  }
}

void ks_meta_delta_encode(ks_enc_t *e, const ks_meta_delta_t *d)
{
  ks_enc_u8(e, REC_VERSION);
  ks_enc_u8(e, d->type);
  ks_enc_i64(e, d->now_ns);
  delta_body_encode(e, d);
}

static void delta_obj_decode(dctx_t *c, ks_meta_delta_t *d)
{
  d->bucket = get_str(c, KS_META_BUCKET_MAX);
  d->key = get_str(c, KS_META_KEY_MAX);
}

static void delta_mpu_decode(dctx_t *c, ks_meta_delta_t *d)
{
  delta_obj_decode(c, d);
  d->upload_id = get_str(c, KS_META_UPLOAD_ID_MAX);
}

static void delta_parts_decode(dctx_t *c, ks_meta_delta_t *d)
{
  d->nparts = get_count(c, KS_META_PARTS_MAX, 8);
  ks_meta_part_ref_t *p = dctx_alloc(c, sizeof(*p) * d->nparts);
  d->parts = p;
  for (uint32_t i = 0; p != NULL && i < d->nparts; i++) {
    p[i].part = ks_dec_u32(&c->d);
    p[i].etag = get_str(c, KS_META_ETAG_MAX - 1);
  }
}

static void delta_body_decode(dctx_t *c, ks_meta_delta_t *d)
{
  switch (d->type) {
  case KS_DELTA_CREATE_TENANT:
    get_id(c, &d->tenant);
    d->name = get_str(c, KS_META_STR_MAX);
    break;
  case KS_DELTA_PUT_ACCESS_KEY:
    d->name = get_str(c, KS_META_STR_MAX);
    get_id(c, &d->tenant);
    d->secret = get_blob(c, KS_META_SECRET_MAX, &d->secret_len);
    break;
  case KS_DELTA_DELETE_ACCESS_KEY:
    d->name = get_str(c, KS_META_STR_MAX);
    break;
  case KS_DELTA_CREATE_BUCKET:
    d->bucket = get_str(c, KS_META_BUCKET_MAX);
    get_id(c, &d->tenant);
    d->shard = ks_dec_u64(&c->d);
    break;
  case KS_DELTA_DELETE_BUCKET:
    d->bucket = get_str(c, KS_META_BUCKET_MAX);
    get_id(c, &d->tenant);
    break;
  case KS_DELTA_PUT_OBJECT:
  case KS_DELTA_MKDIR:
    delta_obj_decode(c, d);
    comp_decode(c, &d->comp);
    break;
  case KS_DELTA_DELETE_OBJECT:
    delta_obj_decode(c, d);
    break;
  case KS_DELTA_CREATE_MPU:
    delta_mpu_decode(c, d);
    comp_decode(c, &d->comp);
    break;
  case KS_DELTA_PUT_PART:
    delta_mpu_decode(c, d);
    d->part = ks_dec_u32(&c->d);
    comp_decode(c, &d->comp);
    break;
  case KS_DELTA_COMPLETE_MPU:
    delta_mpu_decode(c, d);
    delta_parts_decode(c, d);
    break;
  case KS_DELTA_ABORT_MPU:
    delta_mpu_decode(c, d);
    break;
  case KS_DELTA_RENAME:
    delta_obj_decode(c, d);
    d->new_key = get_str(c, KS_META_KEY_MAX);
    break;
  default:
    dctx_fail(c, KS_EPROTO);
  }
}

int ks_meta_delta_decode(const void *p, size_t n, ks_meta_arena_t *a,
                         ks_meta_delta_t *d)
{
  dctx_t c;
  memset(d, 0, sizeof(*d));
  dctx_init(&c, p, n, a);
  get_version(&c);
  d->type = ks_dec_u8(&c.d);
  d->now_ns = ks_dec_i64(&c.d);
  if (c.d.err == 0)
    delta_body_decode(&c, d);
  return ks_dec_finish(&c.d);
}

void ks_meta_write_encode(ks_enc_t *e, uint64_t shard, const ks_meta_delta_t *d)
{
  ks_enc_u64(e, shard);
  ks_meta_delta_encode(e, d);
}

int ks_meta_write_decode(const void *p, size_t n, uint64_t *shard,
                         const uint8_t **delta, size_t *delta_len)
{
  ks_dec_t d;
  ks_dec_init(&d, p, n);
  *shard = ks_dec_u64(&d);
  *delta_len = d.left;
  *delta = ks_dec_bytes(&d, d.left);
  if (d.err != 0 || *delta_len == 0)
    return KS_EPROTO;
  return 0;
}

/* ---- Queries ------------------------------------------------------------- */

static int query_fields_encode(ks_enc_t *e, uint16_t op,
                               const ks_meta_query_t *q)
{
  switch (op) {
  case KS_OP_META_GET_BUCKET:
    ks_enc_str(e, q->bucket);
    return 0;
  case KS_OP_META_LIST_BUCKETS:
    ks_enc_bytes(e, q->tenant.b, KS_ID_LEN);
    return 0;
  case KS_OP_META_GET_OBJECT:
    ks_enc_str(e, q->bucket);
    ks_enc_str(e, q->key);
    return 0;
  case KS_OP_META_LIST_OBJECTS:
    ks_enc_str(e, q->bucket);
    ks_enc_str(e, q->prefix);
    ks_enc_str(e, q->delimiter);
    ks_enc_str(e, q->start_after);
    ks_enc_u32(e, q->max);
    return 0;
  case KS_OP_META_LIST_UPLOADS:
    ks_enc_str(e, q->bucket);
    ks_enc_str(e, q->prefix);
    ks_enc_str(e, q->start_after);
    ks_enc_str(e, q->upload_id_marker);
    ks_enc_u32(e, q->max);
    return 0;
  case KS_OP_META_LIST_PARTS:
  case KS_OP_META_GET_UPLOAD:
    ks_enc_str(e, q->bucket);
    ks_enc_str(e, q->key);
    ks_enc_str(e, q->upload_id);
    if (op == KS_OP_META_LIST_PARTS) {
      ks_enc_u32(e, q->marker);
      ks_enc_u32(e, q->max);
    }
    return 0;
  case KS_OP_META_GET_ACCESS_KEY:
    ks_enc_str(e, q->akey);
    return 0;
  default:
    return -EINVAL;
  }
}

int ks_meta_query_encode(ks_enc_t *e, uint16_t op, const ks_meta_query_t *q)
{
  if (op < KS_OP_META_GET_BUCKET || op > KS_OP_META_GET_ACCESS_KEY)
    return -EINVAL;
  ks_enc_u64(e, q->shard);
  return query_fields_encode(e, op, q);
}

static void query_fields_decode(dctx_t *c, uint16_t op, ks_meta_query_t *q)
{
  switch (op) {
  case KS_OP_META_GET_BUCKET:
    q->bucket = get_str(c, KS_META_BUCKET_MAX);
    break;
  case KS_OP_META_LIST_BUCKETS:
    get_id(c, &q->tenant);
    break;
  case KS_OP_META_GET_OBJECT:
    q->bucket = get_str(c, KS_META_BUCKET_MAX);
    q->key = get_str(c, KS_META_KEY_MAX);
    break;
  case KS_OP_META_LIST_OBJECTS:
    q->bucket = get_str(c, KS_META_BUCKET_MAX);
    q->prefix = get_str(c, KS_META_KEY_MAX);
    q->delimiter = get_str(c, KS_META_KEY_MAX);
    q->start_after = get_str(c, KS_META_KEY_MAX);
    q->max = ks_dec_u32(&c->d);
    break;
  case KS_OP_META_LIST_UPLOADS:
    q->bucket = get_str(c, KS_META_BUCKET_MAX);
    q->prefix = get_str(c, KS_META_KEY_MAX);
    q->start_after = get_str(c, KS_META_KEY_MAX);
    q->upload_id_marker = get_str(c, KS_META_UPLOAD_ID_MAX);
    q->max = ks_dec_u32(&c->d);
    break;
  case KS_OP_META_LIST_PARTS:
  case KS_OP_META_GET_UPLOAD:
    q->bucket = get_str(c, KS_META_BUCKET_MAX);
    q->key = get_str(c, KS_META_KEY_MAX);
    q->upload_id = get_str(c, KS_META_UPLOAD_ID_MAX);
    if (op == KS_OP_META_LIST_PARTS) {
      q->marker = ks_dec_u32(&c->d);
      q->max = ks_dec_u32(&c->d);
    }
    break;
  case KS_OP_META_GET_ACCESS_KEY:
    q->akey = get_str(c, KS_META_STR_MAX);
    break;
  default:
    dctx_fail(c, -EINVAL);
  }
}

int ks_meta_query_decode(const void *p, size_t n, uint16_t op,
                         ks_meta_arena_t *a, ks_meta_query_t *q)
{
  dctx_t c;
  memset(q, 0, sizeof(*q));
  q->bucket = q->key = q->upload_id = q->prefix = q->delimiter = "";
  q->start_after = q->upload_id_marker = q->akey = "";
  dctx_init(&c, p, n, a);
  q->shard = ks_dec_u64(&c.d);
  query_fields_decode(&c, op, q);
  return ks_dec_finish(&c.d);
}

/* ---- Listing responses ----------------------------------------------------
 */

void ks_meta_objects_encode(ks_enc_t *e, const ks_meta_objects_t *o)
{
  ks_enc_u32(e, o->n);
  for (uint32_t i = 0; i < o->n; i++) {
    ks_enc_str(e, o->entries[i].key);
    ks_enc_u64(e, o->entries[i].size);
    ks_enc_i64(e, o->entries[i].mtime_ns);
    ks_enc_str(e, o->entries[i].etag);
  }
  ks_enc_u32(e, o->nprefixes);
  for (uint32_t i = 0; i < o->nprefixes; i++)
    ks_enc_str(e, o->prefixes[i]);
  ks_enc_u8(e, o->truncated ? 1 : 0);
  ks_enc_str(e, o->next);
}

int ks_meta_objects_decode(const void *p, size_t n, ks_meta_arena_t *a,
                           ks_meta_objects_t *o)
{
  dctx_t c;
  dctx_init(&c, p, n, a);
  o->n = get_count(&c, KS_META_LIST_MAX, 24);
  ks_meta_entry_t *en = dctx_alloc(&c, sizeof(*en) * o->n);
  o->entries = en;
  for (uint32_t i = 0; en != NULL && i < o->n; i++) {
    en[i].key = get_str(&c, KS_META_KEY_MAX);
    en[i].size = ks_dec_u64(&c.d);
    en[i].mtime_ns = ks_dec_i64(&c.d);
    en[i].etag = get_str(&c, KS_META_ETAG_MAX - 1);
  }
  o->nprefixes = get_count(&c, KS_META_LIST_MAX, 4);
  const char **pr = dctx_alloc(&c, sizeof(*pr) * o->nprefixes);
  o->prefixes = pr;
  for (uint32_t i = 0; pr != NULL && i < o->nprefixes; i++)
    pr[i] = get_str(&c, KS_META_KEY_MAX);
  o->truncated = get_bool(&c);
  o->next = get_str(&c, KS_META_KEY_MAX);
  return ks_dec_finish(&c.d);
}

void ks_meta_uploads_encode(ks_enc_t *e, const ks_meta_uploads_t *u)
{
  ks_enc_u32(e, u->n);
  for (uint32_t i = 0; i < u->n; i++) {
    ks_enc_str(e, u->uploads[i].key);
    ks_enc_str(e, u->uploads[i].upload_id);
    ks_enc_i64(e, u->uploads[i].initiated_ns);
  }
  ks_enc_u8(e, u->truncated ? 1 : 0);
  ks_enc_str(e, u->next_key);
  ks_enc_str(e, u->next_upload_id);
}

int ks_meta_uploads_decode(const void *p, size_t n, ks_meta_arena_t *a,
                           ks_meta_uploads_t *u)
{
  dctx_t c;
  dctx_init(&c, p, n, a);
  u->n = get_count(&c, KS_META_LIST_MAX, 16);
  ks_meta_upload_entry_t *en = dctx_alloc(&c, sizeof(*en) * u->n);
  u->uploads = en;
  for (uint32_t i = 0; en != NULL && i < u->n; i++) {
    en[i].key = get_str(&c, KS_META_KEY_MAX);
    en[i].upload_id = get_str(&c, KS_META_UPLOAD_ID_MAX);
    en[i].initiated_ns = ks_dec_i64(&c.d);
  }
  u->truncated = get_bool(&c);
  u->next_key = get_str(&c, KS_META_KEY_MAX);
  u->next_upload_id = get_str(&c, KS_META_UPLOAD_ID_MAX);
  return ks_dec_finish(&c.d);
}

void ks_meta_parts_encode(ks_enc_t *e, const ks_meta_parts_t *pp)
{
  ks_enc_u32(e, pp->n);
  for (uint32_t i = 0; i < pp->n; i++) {
    ks_enc_u32(e, pp->parts[i].part);
    ks_enc_str(e, pp->parts[i].etag);
    ks_enc_u64(e, pp->parts[i].size);
    ks_enc_i64(e, pp->parts[i].mtime_ns);
  }
  ks_enc_u8(e, pp->truncated ? 1 : 0);
  ks_enc_u32(e, pp->next_marker);
}

int ks_meta_parts_decode(const void *p, size_t n, ks_meta_arena_t *a,
                         ks_meta_parts_t *pp)
{
  dctx_t c;
  dctx_init(&c, p, n, a);
  pp->n = get_count(&c, KS_META_LIST_MAX, 24);
  ks_meta_part_entry_t *en = dctx_alloc(&c, sizeof(*en) * pp->n);
  pp->parts = en;
  for (uint32_t i = 0; en != NULL && i < pp->n; i++) {
    en[i].part = ks_dec_u32(&c.d);
    en[i].etag = get_str(&c, KS_META_ETAG_MAX - 1);
    en[i].size = ks_dec_u64(&c.d);
    en[i].mtime_ns = ks_dec_i64(&c.d);
  }
  pp->truncated = get_bool(&c);
  pp->next_marker = ks_dec_u32(&c.d);
  return ks_dec_finish(&c.d);
}

void ks_meta_buckets_encode(ks_enc_t *e, const ks_meta_buckets_t *b)
{
  ks_enc_u32(e, b->n);
  for (uint32_t i = 0; i < b->n; i++)
    bucket_encode(e, &b->buckets[i]);
}

int ks_meta_buckets_decode(const void *p, size_t n, ks_meta_arena_t *a,
                           ks_meta_buckets_t *b)
{
  dctx_t c;
  dctx_init(&c, p, n, a);
  b->n = get_count(&c, UINT32_MAX, 1 + 4 + KS_ID_LEN + 16);
  ks_meta_bucket_t *bk = dctx_alloc(&c, sizeof(*bk) * b->n);
  b->buckets = bk;
  for (uint32_t i = 0; bk != NULL && i < b->n; i++)
    bucket_decode(&c, &bk[i]);
  return ks_dec_finish(&c.d);
}
