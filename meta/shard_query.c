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
 *   - it starts at prefix, or at start_after when that is later, and skips
 *     every entry (key or common prefix) that is not after start_after;
 *   - with a delimiter, a key whose remainder after the prefix contains it
 *     rolls up into the common prefix that ends with its first occurrence;
 *     the prefix is reported once and the cursor jumps past every key that
 *     starts with it (seek to the prefix's successor), so a directory of a
 *     million keys costs one seek;
 *   - start_after inside an already returned common prefix (the "next"
 *     of a page that ended on a prefix) skips that whole prefix, as S3's
 *     NextMarker/continuation token do: the prefix is not after it;
 *   - keys and common prefixes both count against max (capped at
 *     KS_META_LIST_MAX); `truncated` is true only if another entry exists,
 *     and `next` is the last key or prefix returned.  max 0 returns nothing
 *     and truncated false.
 *   - hashed long names (shard_int.h, LONG NAMES) come in groups whose
 *     record order is not name order: the walk reads a whole group and
 *     keeps, in a sorted array, the entries the page can still take plus
 *     one (to know whether it is truncated), at most KS_META_LIST_MAX + 1,
 *     pointing into the map.  Memory is bounded; time is not: a page that
 *     reaches a group of G names reads all G (G log 1000 compares, worst
 *     case G insertions of ~50 KiB memmove), so listing a group of a
 *     million 500-byte names that share their first ~470 bytes page by
 *     page costs a full read of it per page.  Such groups need keys far
 *     longer than usual that differ only past byte ~470; a delimiter inside
 *     the shared bytes rolls the group up without reading it.
 * Uploads list the same way, by (key, upload id).  Only the head of each
 * composition (size, mtime, etag) is decoded.
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

static int span_cmp(span_t a, span_t b)
{
  return ks__name_cmp(a.p, a.n, b.p, b.n);
}

static span_t span_str(const char *s)
{
  return (span_t){(const uint8_t *)s, strlen(s)};
}

static bool span_starts(span_t s, span_t prefix)
{
  return s.n >= prefix.n && memcmp(s.p, prefix.p, prefix.n) == 0;
}

/* Get k; 0 (v into the map: the record, without the full name of a hashed
 * one), -ENOENT (also: a record of another name that hashed alike) or a
 * storage error. */
static int q_get(qctx_t *c, const mkey_t *k, MDB_val *v)
{
  if (k->over)
    return k->err != 0 ? k->err : -ENOENT;
  MDB_val key = ks__mkey_val(k);
  int rc = ks__mdb_err(mdb_get(c->txn, c->sh->st->dbi, &key, v), "get");
  if (rc != 0 || !k->hashed)
    return rc;
  span_t name;
  if (ks__rec_unwrap(v, &name.p, &name.n) != 0)
    return KS_ECORRUPT;
  return ks__name_cmp(name.p, name.n, k->name, k->name_len) == 0 ? 0 : -ENOENT;
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
  ks__mkey_name(k, key, ks__name_fit(table, strlen(c->q->bucket)));
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
  if (v->mv_size <= skip || ks_dec_u8(&d) != 2) /* proto_meta.h */
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
  size_t base; /* bytes of the record key before the object name */
  size_t fit;  /* longer names are hashed (shard_int.h) */
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

/* Seek past every record whose key starts with p[0..n) (p is copied). */
static int seek_past(qctx_t *c, const void *p, size_t n, MDB_val *mk,
                     MDB_val *mv)
{
  uint8_t b[MKEY_MAX];
  memcpy(b, p, n);
  if (!successor(b, &n, MKEY_HDR))
    return MDB_NOTFOUND;
  return q_seek(c, b, n, mk, mv);
}

/* Seek to the first record that can hold a name >= s: s itself, or the
 * group of the names that start with its first fit bytes. */
static int seek_name(qctx_t *c, const uint8_t *head, size_t base, size_t fit,
                     const char *s, MDB_val *mk, MDB_val *mv)
{
  uint8_t b[MKEY_MAX];
  size_t n = strlen(s);
  if (n > fit)
    n = fit;
  memcpy(b, head, base);
  memcpy(b + base, s, n);
  return q_seek(c, b, base + n, mk, mv);
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

/* ---- groups of hashed names ---------------------------------------------- */

/* An entry of a group, ordered by (a, b): a name or common prefix, and for
 * uploads the upload id.  v is the record (without the name). */
typedef struct gent {
  span_t a, b;
  MDB_val v;
  bool is_prefix;
} gent_t;

/* The `cap` smallest distinct entries seen, sorted. */
typedef struct gset {
  gent_t *e;
  uint32_t n, cap;
} gset_t;

static int gent_cmp(const gent_t *x, const gent_t *y)
{
  int r = span_cmp(x->a, y->a);
  return r != 0 ? r : span_cmp(x->b, y->b);
}

static void gset_add(gset_t *s, const gent_t *e)
{
  uint32_t lo = 0, hi = s->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int r = gent_cmp(&s->e[mid], e);
    if (r == 0)
      return; /* a common prefix seen before */
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == s->cap)
    return;
  if (s->n == s->cap)
    s->n--;
  memmove(&s->e[lo + 1], &s->e[lo], (s->n - lo) * sizeof(*s->e));
  s->e[lo] = *e;
  s->n++;
}

/* The record keys of the group that record key mk starts: its first
 * base + fit bytes and the mark. */
static size_t group_key(const MDB_val *mk, size_t base, size_t fit,
                        uint8_t g[MKEY_MAX])
{
  memcpy(g, mk->mv_data, base + fit + 1);
  return base + fit + 1;
}

/* List the group of hashed names the cursor is on (ls->fit bytes shared),
 * leaving the cursor after it: *crc is the cursor's state (0, MDB_NOTFOUND
 * or an LMDB error).  Returns 0 or an error. */
static int list_group(qctx_t *c, lstate_t *ls, MDB_val *mk, MDB_val *mv,
                      int *crc)
{
  const ks_meta_query_t *q = c->q;
  span_t after = span_str(q->start_after), prefix = span_str(q->prefix);
  const uint8_t *shared = (const uint8_t *)mk->mv_data + ls->base;
  size_t cp = 0;
  if (roll_up(q, shared, ls->fit, &cp)) {
    /* The delimiter is in the shared bytes: one common prefix. */
    lobj_t o = {.key = {shared, cp}, .is_prefix = true};
    if (span_cmp(o.key, after) > 0 && list_add(ls, &o) != 0)
      return 0;
    *crc = seek_past(c, mk->mv_data, ls->base + cp, mk, mv);
    return 0;
  }
  uint8_t g[MKEY_MAX];
  size_t gn = group_key(mk, ls->base, ls->fit, g);
  gset_t s = {.cap = ls->max - ls->n + 1};
  s.e = calloc(s.cap, sizeof(*s.e));
  if (s.e == NULL)
    return -ENOMEM;
  int rc = 0;
  *crc = 0;
  while (*crc == 0 && ks__has_prefix(mk, g, gn)) {
    gent_t e = {.v = *mv};
    if (ks__rec_unwrap(&e.v, &e.a.p, &e.a.n) != 0) {
      rc = KS_ECORRUPT;
      break;
    }
    if (span_starts(e.a, prefix)) {
      if (roll_up(q, e.a.p, e.a.n, &cp)) {
        e.a.n = cp;
        e.is_prefix = true;
      }
      if (span_cmp(e.a, after) > 0)
        gset_add(&s, &e);
    }
    *crc = mdb_cursor_get(c->cur, mk, mv, MDB_NEXT);
  }
  for (uint32_t i = 0; rc == 0 && i < s.n; i++) {
    lobj_t o = {.key = s.e[i].a, .is_prefix = s.e[i].is_prefix};
    if (!o.is_prefix)
      rc = comp_head(&s.e[i].v, 0, &o.size, &o.mtime, &o.etag);
    if (rc == 0 && list_add(ls, &o) != 0)
      break;
  }
  free(s.e);
  return rc;
}

static int list_walk(qctx_t *c, mkey_t *k, lstate_t *ls)
{
  const ks_meta_query_t *q = c->q;
  span_t after = span_str(q->start_after), prefix = span_str(q->prefix);
  /* Names that start with prefix are in the records that start with its
   * first fit bytes (a longer prefix is checked name by name). */
  size_t rn = ls->base + (prefix.n < ls->fit ? prefix.n : ls->fit);
  uint8_t pfx[MKEY_MAX];
  memcpy(pfx, k->b, ls->base);
  memcpy(pfx + ls->base, prefix.p, rn - ls->base);
  const char *from =
      strcmp(q->start_after, q->prefix) >= 0 ? q->start_after : q->prefix;
  MDB_val mk, mv;
  int rc = seek_name(c, k->b, ls->base, ls->fit, from, &mk, &mv);
  while (rc == 0 && ks__has_prefix(&mk, pfx, rn)) {
    if (ks__name_hashed(&mk, ls->base, ls->fit)) {
      int err = list_group(c, ls, &mk, &mv, &rc);
      if (err != 0)
        return err;
      if (ls->truncated)
        return 0;
      continue;
    }
    lobj_t o = {
        .key = {(const uint8_t *)mk.mv_data + ls->base, mk.mv_size - ls->base}};
    if (!span_starts(o.key, prefix)) {
      rc = mdb_cursor_get(c->cur, &mk, &mv, MDB_NEXT);
      continue;
    }
    size_t cp = 0;
    if (roll_up(q, o.key.p, o.key.n, &cp)) {
      o.key.n = cp;
      o.is_prefix = true;
    }
    if (span_cmp(o.key, after) > 0) {
      if (!o.is_prefix) {
        int err = comp_head(&mv, 0, &o.size, &o.mtime, &o.etag);
        if (err != 0)
          return err;
      }
      if (list_add(ls, &o) != 0)
        return 0;
    }
    if (o.is_prefix)
      rc = seek_past(c, mk.mv_data, ls->base + cp, &mk, &mv);
    else
      rc = mdb_cursor_get(c->cur, &mk, &mv, MDB_NEXT);
  }
  return rc == MDB_NOTFOUND || rc == 0 ? 0 : ks__mdb_err(rc, "list");
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
  ls.fit = ks__name_fit(T_OBJECT, strlen(c->q->bucket));
  if (ls.max == 0) {
    list_encode(c->out, &ls);
    return ks_enc_finish(c->out);
  }
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

typedef struct ulist {
  ks_enc_t body;
  uint32_t n, max;
  bool truncated;
  span_t last_key, last_id;
} ulist_t;

/* 1 when the page is full (and so truncated). */
static int ulist_add(ulist_t *u, const gent_t *e)
{
  if (u->n == u->max) {
    u->truncated = true;
    return 1;
  }
  span_t key, id;
  int64_t initiated;
  int rc = upload_head(&e->v, &key, &id, &initiated);
  if (rc != 0)
    return rc;
  ks_enc_blob(&u->body, key.p, key.n);
  ks_enc_blob(&u->body, id.p, id.n);
  ks_enc_i64(&u->body, initiated);
  u->last_key = key;
  u->last_id = id;
  u->n++;
  return 0;
}

/* Is upload e (key, id) in the listing: under the prefix, after the key
 * marker, or at it and after the upload id marker? */
static bool upload_wanted(const ks_meta_query_t *q, const gent_t *e)
{
  if (!span_starts(e->a, span_str(q->prefix)))
    return false;
  int r = span_cmp(e->a, span_str(q->start_after));
  return r > 0 || (r == 0 && q->upload_id_marker[0] != '\0' &&
                   span_cmp(e->b, span_str(q->upload_id_marker)) > 0);
}

/* The upload record at the cursor as an entry (value without the name). */
static int upload_entry(const MDB_val *mv, bool hashed, gent_t *e)
{
  *e = (gent_t){.v = *mv};
  span_t name;
  if (hashed && ks__rec_unwrap(&e->v, &name.p, &name.n) != 0)
    return KS_ECORRUPT;
  int64_t initiated;
  return upload_head(&e->v, &e->a, &e->b, &initiated);
}

/* Add the uploads of the group of hashed names at the cursor, in (key, id)
 * order, leaving the cursor after it (*crc: its state). */
static int uploads_group(qctx_t *c, ulist_t *u, size_t base, size_t fit,
                         MDB_val *mk, MDB_val *mv, int *crc)
{
  uint8_t g[MKEY_MAX];
  size_t gn = group_key(mk, base, fit, g);
  gset_t s = {.cap = u->max - u->n + 1};
  s.e = calloc(s.cap, sizeof(*s.e));
  if (s.e == NULL)
    return -ENOMEM;
  int rc = 0;
  *crc = 0;
  while (*crc == 0 && ks__has_prefix(mk, g, gn)) {
    gent_t e;
    rc = upload_entry(mv, true, &e);
    if (rc != 0)
      break;
    if (upload_wanted(c->q, &e))
      gset_add(&s, &e);
    *crc = mdb_cursor_get(c->cur, mk, mv, MDB_NEXT);
  }
  for (uint32_t i = 0; rc == 0 && i < s.n; i++)
    rc = ulist_add(u, &s.e[i]);
  free(s.e);
  return rc < 0 ? rc : 0;
}

static int q_list_uploads(qctx_t *c)
{
  const ks_meta_query_t *q = c->q;
  int rc = q_bucket_exists(c);
  if (rc != 0)
    return rc;
  ulist_t u = {.body = KS_ENC_INIT,
               .max = q->max < KS_META_LIST_MAX ? q->max : KS_META_LIST_MAX};
  mkey_t k;
  key_object(c, &k, T_UPLOAD, "");
  size_t base = k.len, fit = ks__name_fit(T_UPLOAD, strlen(q->bucket));
  size_t pl = strlen(q->prefix);
  ks__mkey_add(&k, q->prefix, pl < fit ? pl : fit);
  const char *from =
      strcmp(q->start_after, q->prefix) >= 0 ? q->start_after : q->prefix;
  MDB_val mk, mv;
  rc = u.max == 0 ? MDB_NOTFOUND : seek_name(c, k.b, base, fit, from, &mk, &mv);
  int err = 0;
  while (rc == 0 && err == 0 && !u.truncated &&
         ks__has_prefix(&mk, k.b, k.len)) {
    if (ks__name_hashed(&mk, base, fit)) {
      err = uploads_group(c, &u, base, fit, &mk, &mv, &rc);
      continue;
    }
    gent_t e;
    err = upload_entry(&mv, false, &e);
    if (err == 0 && upload_wanted(q, &e))
      err = ulist_add(&u, &e);
    if (err == 0)
      rc = mdb_cursor_get(c->cur, &mk, &mv, MDB_NEXT);
  }
  if (err > 0)
    err = 0; /* the page is full */
  if (err == 0 && rc != 0 && rc != MDB_NOTFOUND)
    err = ks__mdb_err(rc, "list_uploads");
  if (err == 0) {
    ks_enc_u32(c->out, u.n);
    ks_enc_bytes(c->out, u.body.buf.data, u.body.buf.len);
    ks_enc_u8(c->out, u.truncated ? 1 : 0);
    ks_enc_blob(c->out, u.last_key.p, u.last_key.n);
    ks_enc_blob(c->out, u.last_id.p, u.last_id.n);
    err =
        ks_enc_finish(&u.body) ? ks_enc_finish(&u.body) : ks_enc_finish(c->out);
  }
  ks_enc_free(&u.body);
  return err;
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
    span_t etag, name;
    if (k.hashed && ks__rec_unwrap(&mv, &name.p, &name.n) != 0) {
      rc = KS_ECORRUPT;
      break;
    }
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
