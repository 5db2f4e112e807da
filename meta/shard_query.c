/*
 * shard_query.c — the read side of a metadata shard: get a bucket, an
 * object's composition, an upload or an access key; list buckets, objects
 * (prefix, delimiter, start-after, max-keys), uploads and parts.  Each
 * answer is written straight into a response body (ks/proto_meta.h).
 *
 * Every query runs in one LMDB read transaction, after the pending applies
 * are flushed (ks__state_read_begin), so it sees every applied delta;
 * linearizability across replicas is the service's job (a Raft barrier
 * before the read).  Records are returned verbatim where the response is
 * the record (GET_OBJECT answers with the stored composition bytes).
 *
 * LISTING.  A bucket's objects are one key range in byte order (see
 * shard_int.h), so a listing is a cursor walk:
 *   - it starts at prefix, or just after start_after when that is later;
 *   - with a delimiter, a key whose remainder after the prefix contains it
 *     rolls up into the common prefix that ends with its first occurrence;
 *     the prefix is reported once and the cursor jumps past every key that
 *     starts with it (seek to the prefix's successor), so a directory of a
 *     million keys costs one seek;
 *   - start_after inside an already returned common prefix (the "next"
 *     of a page that ended on a prefix) skips that whole prefix, as S3's
 *     NextMarker/continuation token do;
 *   - keys and common prefixes both count against max (capped at
 *     KS_META_LIST_MAX); `truncated` is true only if another entry exists,
 *     and `next` is the last key or prefix returned.  max 0 returns nothing
 *     and truncated false.
 * Only the head of each composition (size, mtime, etag) is decoded.
 */
#include "shard_int.h"

#include "ks/err.h"

#include <stdlib.h>
#include <string.h>

typedef struct span {
  const uint8_t *p;
  size_t n;
} span_t;

typedef struct qctx {
  ks_meta_shard_t *sh;
  MDB_txn *txn;
  MDB_cursor *cur;
  const ks_meta_query_t *q;
  ks_enc_t *out;
} qctx_t;

static void key_init(qctx_t *c, mkey_t *k, uint8_t table)
{
  ks__mkey_init(k, c->sh->st, c->sh->id, table);
}

/* Get k; 0 (v into the map), -ENOENT or a storage error. */
static int q_get(qctx_t *c, const mkey_t *k, MDB_val *v)
{
  if (k->over)
    return -ENOENT;
  MDB_val key = ks__mkey_val(k);
  return ks__mdb_err(mdb_get(c->txn, c->sh->st->dbi, &key, v), "get");
}

/* Answer with the record at k verbatim, or `missing`. */
static int q_record(qctx_t *c, const mkey_t *k, int missing)
{
  MDB_val v;
  int rc = q_get(c, k, &v);
  if (rc == -ENOENT)
    return missing;
  if (rc != 0)
    return rc;
  ks_enc_bytes(c->out, v.mv_data, v.mv_size);
  return ks_enc_finish(c->out);
}

static int q_bucket_exists(qctx_t *c)
{
  mkey_t k;
  MDB_val v;
  key_init(c, &k, T_BUCKET);
  ks__mkey_str(&k, c->q->bucket);
  int rc = q_get(c, &k, &v);
  return rc == -ENOENT ? KS_META_ENOBUCKET : rc;
}

static void key_object(qctx_t *c, mkey_t *k, uint8_t table, const char *key)
{
  key_init(c, k, table);
  ks__mkey_str(k, c->q->bucket);
  ks__mkey_sep(k);
  ks__mkey_str(k, key);
}

/* Seek to the first record >= k; 0, MDB_NOTFOUND or an LMDB error. */
static int q_seek(qctx_t *c, const uint8_t *p, size_t n, MDB_val *k, MDB_val *v)
{
  k->mv_data = (void *)p;
  k->mv_size = n;
  return mdb_cursor_get(c->cur, k, v, MDB_SET_RANGE);
}

/* The head of a stored composition: size, mtime, etag. */
static int comp_head(const MDB_val *v, size_t skip, uint64_t *size,
                     int64_t *mtime, span_t *etag)
{
  ks_dec_t d;
  ks_dec_init(&d, (const uint8_t *)v->mv_data + skip,
              v->mv_size > skip ? v->mv_size - skip : 0);
  if (v->mv_size <= skip || ks_dec_u8(&d) != 1)
    return KS_ECORRUPT;
  (void)ks_dec_u64(&d); /* ino */
  *size = ks_dec_u64(&d);
  *mtime = ks_dec_i64(&d);
  (void)ks_dec_bytes(&d, 8 + 12); /* ctime, mode, uid, gid */
  etag->p = ks_dec_blob(&d, KS_META_ETAG_MAX, &etag->n);
  return d.err != 0 ? KS_ECORRUPT : 0;
}

/* ---- objects ------------------------------------------------------------- */

typedef struct lobj {
  span_t key;
  uint64_t size;
  int64_t mtime;
  span_t etag;
  bool is_prefix;
} lobj_t;

typedef struct lstate {
  lobj_t *items;
  uint32_t n, max;
  bool truncated;
  size_t base; /* bytes of the record key before the object key */
} lstate_t;

/* The common prefix key[0..*cp) rolls up to, if any. */
static bool roll_up(const ks_meta_query_t *q, const uint8_t *key, size_t n,
                    size_t *cp)
{
  size_t pl = strlen(q->prefix), dl = strlen(q->delimiter);
  if (dl == 0 || n < pl + dl)
    return false;
  for (size_t i = pl; i + dl <= n; i++)
    if (memcmp(key + i, q->delimiter, dl) == 0) {
      *cp = i + dl;
      return true;
    }
  return false;
}

/* The smallest record key after every key that starts with k[0..n): drop
 * trailing 0xFF bytes and increment the last byte.  False if none. */
static bool successor(uint8_t *k, size_t *n, size_t min)
{
  while (*n > min && k[*n - 1] == 0xFF)
    (*n)--;
  if (*n <= min)
    return false;
  k[*n - 1]++;
  return true;
}

/* Position the cursor for the first page entry. */
static int list_start(qctx_t *c, mkey_t *k, MDB_val *mk, MDB_val *mv)
{
  const ks_meta_query_t *q = c->q;
  size_t base = k->len;
  const char *from = q->prefix;
  if (strcmp(q->start_after, q->prefix) >= 0)
    from = q->start_after;
  ks__mkey_str(k, from);
  size_t cp;
  if (from == q->start_after &&
      strncmp(from, q->prefix, strlen(q->prefix)) == 0 &&
      roll_up(q, (const uint8_t *)from, strlen(from), &cp)) {
    k->len = base + cp;
    if (!successor(k->b, &k->len, base))
      return MDB_NOTFOUND;
  }
  if (k->over)
    return MDB_NOTFOUND;
  return q_seek(c, k->b, k->len, mk, mv);
}

static int list_add(lstate_t *ls, const lobj_t *o)
{
  if (ls->n == ls->max) {
    ls->truncated = true;
    return 1;
  }
  ls->items[ls->n++] = *o;
  return 0;
}

static int list_walk(qctx_t *c, mkey_t *k, lstate_t *ls)
{
  const ks_meta_query_t *q = c->q;
  size_t pl = strlen(q->prefix);
  uint8_t pfx[MKEY_MAX];
  memcpy(pfx, k->b, ls->base);
  memcpy(pfx + ls->base, q->prefix, pl); /* k did not overflow: fits */
  MDB_val mk, mv;
  int rc = list_start(c, k, &mk, &mv);
  while (rc == 0 && ks__has_prefix(&mk, pfx, ls->base + pl)) {
    lobj_t o = {
        .key = {(const uint8_t *)mk.mv_data + ls->base, mk.mv_size - ls->base}};
    size_t cp;
    if (o.key.n == strlen(q->start_after) &&
        memcmp(o.key.p, q->start_after, o.key.n) == 0) {
      rc = mdb_cursor_get(c->cur, &mk, &mv, MDB_NEXT);
      continue;
    }
    if (roll_up(q, o.key.p, o.key.n, &cp)) {
      o.key.n = cp;
      o.is_prefix = true;
      if (list_add(ls, &o) != 0)
        return 0;
      uint8_t *sk = k->b; /* reuse the key buffer for the jump */
      memcpy(sk, mk.mv_data, ls->base + cp);
      size_t sn = ls->base + cp;
      if (!successor(sk, &sn, ls->base))
        return 0;
      rc = q_seek(c, sk, sn, &mk, &mv);
      continue;
    }
    rc = comp_head(&mv, 0, &o.size, &o.mtime, &o.etag);
    if (rc != 0)
      return rc;
    if (list_add(ls, &o) != 0)
      return 0;
    rc = mdb_cursor_get(c->cur, &mk, &mv, MDB_NEXT);
  }
  return rc == MDB_NOTFOUND ? 0 : ks__mdb_err(rc, "list");
}

static void list_encode(ks_enc_t *e, const lstate_t *ls)
{
  uint32_t nk = 0;
  for (uint32_t i = 0; i < ls->n; i++)
    nk += ls->items[i].is_prefix ? 0 : 1;
  ks_enc_u32(e, nk);
  for (uint32_t i = 0; i < ls->n; i++) {
    const lobj_t *o = &ls->items[i];
    if (o->is_prefix)
      continue;
    ks_enc_blob(e, o->key.p, o->key.n);
    ks_enc_u64(e, o->size);
    ks_enc_i64(e, o->mtime);
    ks_enc_blob(e, o->etag.p, o->etag.n);
  }
  ks_enc_u32(e, ls->n - nk);
  for (uint32_t i = 0; i < ls->n; i++)
    if (ls->items[i].is_prefix)
      ks_enc_blob(e, ls->items[i].key.p, ls->items[i].key.n);
  ks_enc_u8(e, ls->truncated ? 1 : 0);
  if (ls->n > 0)
    ks_enc_blob(e, ls->items[ls->n - 1].key.p, ls->items[ls->n - 1].key.n);
  else
    ks_enc_str(e, "");
}

static int q_list_objects(qctx_t *c)
{
  int rc = q_bucket_exists(c);
  if (rc != 0)
    return rc;
  lstate_t ls = {.max = c->q->max < KS_META_LIST_MAX ? c->q->max
                                                     : KS_META_LIST_MAX};
  mkey_t k;
  key_object(c, &k, T_OBJECT, "");
  ls.base = k.len;
  ks__mkey_str(&k, c->q->prefix);
  if (k.over || ls.max == 0) {
    list_encode(c->out, &ls);
    return ks_enc_finish(c->out);
  }
  k.len = ls.base;
  ls.items = calloc(ls.max, sizeof(*ls.items));
  if (ls.items == NULL)
    return -ENOMEM;
  rc = list_walk(c, &k, &ls);
  if (rc == 0) {
    list_encode(c->out, &ls);
    rc = ks_enc_finish(c->out);
  }
  free(ls.items);
  return rc;
}

/* ---- uploads ----------------------------------------------------------------
 */

/* Upload record head: key, upload id, initiated. */
static int upload_head(const MDB_val *v, span_t *key, span_t *id,
                       int64_t *initiated)
{
  ks_dec_t d;
  ks_dec_init(&d, v->mv_data, v->mv_size);
  if (ks_dec_u8(&d) != 1)
    return KS_ECORRUPT;
  key->p = ks_dec_blob(&d, KS_META_KEY_MAX, &key->n);
  id->p = ks_dec_blob(&d, KS_META_UPLOAD_ID_MAX, &id->n);
  *initiated = ks_dec_i64(&d);
  return d.err != 0 ? KS_ECORRUPT : 0;
}

static int uploads_seek(qctx_t *c, mkey_t *k, MDB_val *mk, MDB_val *mv)
{
  const ks_meta_query_t *q = c->q;
  if (strcmp(q->start_after, q->prefix) < 0 || q->start_after[0] == '\0') {
    ks__mkey_str(k, q->prefix);
  } else {
    ks__mkey_str(k, q->start_after);
    if (q->upload_id_marker[0] != '\0') {
      ks__mkey_sep(k);
      ks__mkey_str(k, q->upload_id_marker);
      ks__mkey_sep(k); /* just after the marker's own record */
    } else {
      ks__mkey_add(k, "\x01", 1); /* after every upload of that key */
    }
  }
  return k->over ? MDB_NOTFOUND : q_seek(c, k->b, k->len, mk, mv);
}

static int q_list_uploads(qctx_t *c)
{
  int rc = q_bucket_exists(c);
  if (rc != 0)
    return rc;
  uint32_t max = c->q->max < KS_META_LIST_MAX ? c->q->max : KS_META_LIST_MAX;
  mkey_t k;
  key_object(c, &k, T_UPLOAD, c->q->prefix);
  uint8_t pfx[MKEY_MAX];
  size_t pn = k.len;
  memcpy(pfx, k.b, pn);
  k.len -= strlen(c->q->prefix);
  MDB_val mk, mv;
  rc = (max == 0 || k.over) ? MDB_NOTFOUND : uploads_seek(c, &k, &mk, &mv);
  ks_enc_t body = KS_ENC_INIT;
  uint32_t n = 0;
  bool truncated = false;
  span_t last_key = {NULL, 0}, last_id = {NULL, 0};
  while (rc == 0 && ks__has_prefix(&mk, pfx, pn)) {
    if (n == max) {
      truncated = true;
      break;
    }
    int64_t initiated;
    rc = upload_head(&mv, &last_key, &last_id, &initiated);
    if (rc != 0)
      break;
    ks_enc_blob(&body, last_key.p, last_key.n);
    ks_enc_blob(&body, last_id.p, last_id.n);
    ks_enc_i64(&body, initiated);
    n++;
    rc = mdb_cursor_get(c->cur, &mk, &mv, MDB_NEXT);
  }
  if (rc == MDB_NOTFOUND || rc == 0) {
    ks_enc_u32(c->out, n);
    ks_enc_bytes(c->out, body.buf.data, body.buf.len);
    ks_enc_u8(c->out, truncated ? 1 : 0);
    ks_enc_blob(c->out, last_key.p, last_key.n);
    ks_enc_blob(c->out, last_id.p, last_id.n);
    rc = ks_enc_finish(&body) ? ks_enc_finish(&body) : ks_enc_finish(c->out);
  } else if (rc > 0) {
    rc = ks__mdb_err(rc, "list_uploads");
  }
  ks_enc_free(&body);
  return rc;
}

/* ---- parts ------------------------------------------------------------------
 */

static int q_upload_key(qctx_t *c, mkey_t *k, uint8_t table)
{
  key_object(c, k, table, c->q->key);
  ks__mkey_sep(k);
  ks__mkey_str(k, c->q->upload_id);
  return k->over ? KS_META_ENOUPLOAD : 0;
}

static int q_upload_exists(qctx_t *c)
{
  int rc = q_bucket_exists(c);
  if (rc != 0)
    return rc;
  mkey_t k;
  MDB_val v;
  rc = q_upload_key(c, &k, T_UPLOAD);
  if (rc == 0)
    rc = q_get(c, &k, &v);
  return rc == -ENOENT ? KS_META_ENOUPLOAD : rc;
}

static int q_list_parts(qctx_t *c)
{
  int rc = q_upload_exists(c);
  if (rc != 0)
    return rc;
  uint32_t max = c->q->max < KS_META_LIST_MAX ? c->q->max : KS_META_LIST_MAX;
  mkey_t k;
  (void)q_upload_key(c, &k, T_PART);
  ks__mkey_sep(&k);
  size_t pn = k.len;
  ks__mkey_be32(&k, c->q->marker < UINT32_MAX ? c->q->marker + 1 : UINT32_MAX);
  if (k.over)
    return KS_META_ENOUPLOAD;
  MDB_val mk, mv;
  rc = max == 0 ? MDB_NOTFOUND : q_seek(c, k.b, k.len, &mk, &mv);
  ks_enc_t body = KS_ENC_INIT;
  uint32_t n = 0, last = 0;
  bool truncated = false;
  while (rc == 0 && ks__has_prefix(&mk, k.b, pn) && mk.mv_size == pn + 4) {
    if (n == max) {
      truncated = true;
      break;
    }
    uint64_t size;
    int64_t mtime;
    span_t etag;
    rc = comp_head(&mv, 1, &size, &mtime, &etag);
    if (rc != 0)
      break;
    last = ks__get_be32((const uint8_t *)mk.mv_data + pn);
    ks_enc_u32(&body, last);
    ks_enc_blob(&body, etag.p, etag.n);
    ks_enc_u64(&body, size);
    ks_enc_i64(&body, mtime);
    n++;
    rc = mdb_cursor_get(c->cur, &mk, &mv, MDB_NEXT);
  }
  if (rc == MDB_NOTFOUND || rc == 0) {
    ks_enc_u32(c->out, n);
    ks_enc_bytes(c->out, body.buf.data, body.buf.len);
    ks_enc_u8(c->out, truncated ? 1 : 0);
    ks_enc_u32(c->out, last);
    rc = ks_enc_finish(&body) ? ks_enc_finish(&body) : ks_enc_finish(c->out);
  } else if (rc > 0) {
    rc = ks__mdb_err(rc, "list_parts");
  }
  ks_enc_free(&body);
  return rc;
}

/* ---- buckets and keys
 * --------------------------------------------------------- */

static int q_list_buckets(qctx_t *c)
{
  mkey_t k;
  key_init(c, &k, T_BUCKET);
  MDB_val mk, mv;
  int rc = q_seek(c, k.b, k.len, &mk, &mv);
  ks_enc_t body = KS_ENC_INIT;
  uint32_t n = 0;
  bool all = ks_id_is_zero(&c->q->tenant);
  while (rc == 0 && ks__has_prefix(&mk, k.b, k.len)) {
    ks_meta_arena_t a = KS_META_ARENA_INIT;
    ks_meta_bucket_t b;
    rc = ks_meta_bucket_decode(mv.mv_data, mv.mv_size, &a, &b);
    bool mine = rc == 0 && (all || ks_id_cmp(&b.tenant, &c->q->tenant) == 0);
    ks_meta_arena_free(&a);
    if (rc != 0) {
      rc = KS_ECORRUPT;
      break;
    }
    if (mine) {
      ks_enc_bytes(&body, mv.mv_data, mv.mv_size);
      n++;
    }
    rc = mdb_cursor_get(c->cur, &mk, &mv, MDB_NEXT);
  }
  if (rc == MDB_NOTFOUND || rc == 0) {
    ks_enc_u32(c->out, n);
    ks_enc_bytes(c->out, body.buf.data, body.buf.len);
    rc = ks_enc_finish(&body) ? ks_enc_finish(&body) : ks_enc_finish(c->out);
  } else if (rc > 0) {
    rc = ks__mdb_err(rc, "list_buckets");
  }
  ks_enc_free(&body);
  return rc;
}

static int q_dispatch(qctx_t *c, uint16_t op)
{
  mkey_t k;
  int rc;
  switch (op) {
  case KS_OP_META_GET_BUCKET:
    key_init(c, &k, T_BUCKET);
    ks__mkey_str(&k, c->q->bucket);
    return q_record(c, &k, KS_META_ENOBUCKET);
  case KS_OP_META_LIST_BUCKETS:
    return q_list_buckets(c);
  case KS_OP_META_GET_OBJECT:
    rc = q_bucket_exists(c);
    key_object(c, &k, T_OBJECT, c->q->key);
    return rc != 0 ? rc : q_record(c, &k, KS_META_ENOKEY);
  case KS_OP_META_LIST_OBJECTS:
    return q_list_objects(c);
  case KS_OP_META_LIST_UPLOADS:
    return q_list_uploads(c);
  case KS_OP_META_LIST_PARTS:
    return q_list_parts(c);
  case KS_OP_META_GET_UPLOAD:
    rc = q_bucket_exists(c);
    if (rc == 0)
      rc = q_upload_key(c, &k, T_UPLOAD);
    return rc != 0 ? rc : q_record(c, &k, KS_META_ENOUPLOAD);
  case KS_OP_META_GET_ACCESS_KEY:
    key_init(c, &k, T_AKEY);
    ks__mkey_str(&k, c->q->akey);
    return q_record(c, &k, KS_META_ENOACCESSKEY);
  default:
    return KS_META_EINVAL;
  }
}

/* NULL strings (callers in-process) read as "". */
static void query_norm(ks_meta_query_t *q)
{
  const char **s[] = {&q->bucket,           &q->key,       &q->upload_id,
                      &q->prefix,           &q->delimiter, &q->start_after,
                      &q->upload_id_marker, &q->akey};
  for (size_t i = 0; i < sizeof(s) / sizeof(*s); i++)
    if (*s[i] == NULL)
      *s[i] = "";
}

int ks_meta_shard_query(ks_meta_shard_t *sh, uint16_t op,
                        const ks_meta_query_t *q, ks_enc_t *out)
{
  ks_meta_query_t qn = *q;
  query_norm(&qn);
  qctx_t c = {.sh = sh, .q = &qn, .out = out};
  int rc = ks__state_read_begin(sh->st, &c.txn);
  if (rc != 0)
    return rc;
  rc = mdb_cursor_open(c.txn, sh->st->dbi, &c.cur);
  if (rc != 0) {
    mdb_txn_abort(c.txn);
    return ks__mdb_err(rc, "cursor_open");
  }
  rc = q_dispatch(&c, op);
  mdb_cursor_close(c.cur);
  mdb_txn_abort(c.txn);
  return rc;
}
