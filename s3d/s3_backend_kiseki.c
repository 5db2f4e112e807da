/*
 * s3_backend_kiseki.c — ks/s3_backend.h over libkiseki's object layer
 * (ks/s3_backend_kiseki.h has the contract).
 *
 * Each S3 operation allocates one kop_t (op->be_data): the object-layer
 * operation(s) it runs and the arrays its answer hangs on the bop (listing
 * entries, quoted ETags, metadata pairs), all freed in release().  The
 * object layer's answers (strings in meta call arenas) stay valid until
 * release too, so listings point straight into them.
 *
 * Access keys: a fixed table (ks/s3_backend_kiseki.h explains the miss and
 * staleness rules), scanned linearly: lookups are per request, the table
 * is small, and a strcmp per entry is cheap next to SigV4's HMACs.
 */
#include "ks/s3_backend_kiseki.h"

#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/s3_sigv4.h"
#include "ks/time.h"

#include <stdlib.h>
#include <string.h>

#define COMP "s3d"
#define AKID_MAX 128
#define REFRESH_DEFAULT_MS 30000
#define NSEC 1000000000LL

typedef struct akey {
  char id[AKID_MAX + 1];
  uint8_t secret[KS_S3_SECRET_MAX];
  size_t slen;
  ks_id_t tenant;
  uint64_t at_ms; /* when it was last fetched (loop time) */
  bool used, negative, fetching;
} akey_t;

struct ks_s3_kiseki {
  uv_loop_t *loop;
  ks_client_t *cl;
  ks_s3_backend_t be;
  akey_t *keys;
  size_t nkeys;
  uv_timer_t timer;
  uint32_t refresh_ms;
  size_t fetches; /* key queries in flight */
  bool closing;
  ks_rpc_close_cb close_cb;
  void *close_arg;
};

typedef struct kop {
  ks_s3_kiseki_t *be;
  ks_s3_bop_t *op;
  ks_obj_op_t o;   /* the main operation */
  ks_obj_op_t src; /* copy: the source */
  bool o_used, src_used;
  ks_meta_comp_t attrs;
  ks_meta_kv_t *kv;
  ks_s3_meta_pair_t *pairs;
  void *arr; /* listing entries */
  char (*etags)[KS_S3_ETAG_MAX];
  ks_meta_part_ref_t *refs;
  ks_s3_delete_entry_t *del;
  size_t del_i;
  ks_meta_query_t q;
  char msg[80]; /* an error's message, when it names a value */
} kop_t;

/* ---- errors ----------------------------------------------------------------
 */

ks_s3_code_t ks_s3_kiseki_code(int status)
{
  switch (status) {
  case 0:
    return KS_S3_OK;
  case KS_META_ENOBUCKET:
    return KS_S3_NO_SUCH_BUCKET;
  case KS_META_ENOKEY:
    return KS_S3_NO_SUCH_KEY;
  case KS_META_ENOUPLOAD:
    return KS_S3_NO_SUCH_UPLOAD;
  case KS_META_EBUCKETEXISTS:
    return KS_S3_BUCKET_ALREADY_EXISTS;
  case KS_META_EOWNED:
    return KS_S3_BUCKET_ALREADY_OWNED_BY_YOU;
  case KS_META_ENOTEMPTY:
    return KS_S3_BUCKET_NOT_EMPTY;
  case KS_META_ETOOSMALL:
    return KS_S3_ENTITY_TOO_SMALL;
  case KS_META_EBADPART:
    return KS_S3_INVALID_PART;
  case KS_META_EPARTORDER:
    return KS_S3_INVALID_PART_ORDER;
  case KS_META_EACCESS:
  case KS_META_ENOTENANT:
    return KS_S3_ACCESS_DENIED;
  case KS_META_EINVAL:
    return KS_S3_INVALID_ARGUMENT;
  case KS_ENOTIMPL:
    return KS_S3_NOT_IMPLEMENTED;
  case KS_EBUSY:
  case KS_ETIMEDOUT:
  case KS_META_ENOTLEADER:
  case -ECONNREFUSED:
  case KS_ECLOSED:
    return KS_S3_SERVICE_UNAVAILABLE;
  default:
    return KS_S3_INTERNAL_ERROR;
  }
}

/* ---- access keys ------------------------------------------------------------
 */

static akey_t *akey_find(ks_s3_kiseki_t *be, const char *id, size_t n)
{
  for (size_t i = 0; i < be->nkeys; i++)
    if (be->keys[i].used && strlen(be->keys[i].id) == n &&
        memcmp(be->keys[i].id, id, n) == 0)
      return &be->keys[i];
  return NULL;
}

/* A free slot, or the one fetched longest ago (wiped). */
static akey_t *akey_slot(ks_s3_kiseki_t *be)
{
  akey_t *old = NULL;
  for (size_t i = 0; i < be->nkeys; i++) {
    akey_t *k = &be->keys[i];
    if (!k->used)
      return k;
    if (!k->fetching && (old == NULL || k->at_ms < old->at_ms))
      old = k;
  }
  if (old != NULL)
    ks_secure_zero(old, sizeof(*old));
  return old;
}

typedef struct fetch {
  ks_s3_kiseki_t *be;
  ks_obj_op_t op;
  char id[AKID_MAX + 1];
} fetch_t;

static void close_maybe(ks_s3_kiseki_t *be);

static void akey_fetched(ks_obj_op_t *op, int status)
{
  fetch_t *f = op->data;
  ks_s3_kiseki_t *be = f->be;
  akey_t *k = akey_find(be, f->id, strlen(f->id));
  const ks_meta_akey_t *a = &op->reply.r.akey;
  if (k != NULL) {
    k->fetching = false;
    k->at_ms = uv_now(be->loop);
    if (status == 0 && a->secret_len <= sizeof(k->secret)) {
      memcpy(k->secret, a->secret, a->secret_len);
      k->slen = a->secret_len;
      k->tenant = a->tenant;
      k->negative = false;
    } else if (status == KS_META_ENOACCESSKEY || status == KS_META_ENOKEY) {
      ks_secure_zero(k->secret, sizeof(k->secret));
      k->negative = true;
    } else {
      ks_log_warn(COMP, "access_key_fetch_failed", "err=%s",
                  ks_errname(status));
      if (!k->negative && k->slen == 0)
        k->used = false; /* nothing known: ask again next time */
    }
  }
  ks_obj_op_release(op);
  free(f);
  be->fetches--;
  close_maybe(be);
}

static int akey_fetch(ks_s3_kiseki_t *be, akey_t *k)
{
  fetch_t *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -ENOMEM;
  f->be = be;
  memcpy(f->id, k->id, sizeof(f->id));
  f->op.data = f;
  int rc = ks_obj_akey_get(be->cl, &f->op, f->id, akey_fetched);
  if (rc != 0) {
    free(f);
    return rc;
  }
  k->fetching = true;
  be->fetches++;
  return 0;
}

static int akey_add(ks_s3_kiseki_t *be, const char *id, size_t n)
{
  if (n == 0 || n > AKID_MAX)
    return -ENOENT;
  akey_t *k = akey_slot(be);
  if (k == NULL)
    return -EAGAIN; /* every slot is being fetched */
  memset(k, 0, sizeof(*k));
  memcpy(k->id, id, n);
  k->used = true;
  int rc = akey_fetch(be, k);
  if (rc != 0)
    k->used = false;
  return rc;
}

static int kb_key_lookup(void *impl, const char *akid, size_t akid_len,
                         char *secret, size_t size, size_t *secret_len,
                         ks_s3_principal_t *who)
{
  ks_s3_kiseki_t *be = impl;
  akey_t *k = akey_find(be, akid, akid_len);
  if (k == NULL) {
    int rc = akey_add(be, akid, akid_len);
    return rc == -ENOENT ? rc : -EAGAIN;
  }
  if (k->negative) {
    if (!k->fetching && uv_now(be->loop) - k->at_ms > KS_S3K_NEGATIVE_MS)
      (void)akey_fetch(be, k); /* it may exist by now */
    return -ENOENT;
  }
  if (k->slen == 0)
    return -EAGAIN; /* first fetch still running */
  if (k->slen > size)
    return -EINVAL;
  memcpy(secret, k->secret, k->slen);
  *secret_len = k->slen;
  char hex[KS_ID_HEX_LEN + 1];
  ks_id_to_hex(&k->tenant, hex);
  snprintf(who->tenant, sizeof(who->tenant), "%s", hex);
  snprintf(who->display_name, sizeof(who->display_name), "%s", hex);
  return 0;
}

static void refresh_cb(uv_timer_t *t)
{
  ks_s3_kiseki_t *be = t->data;
  uint64_t now = uv_now(be->loop);
  for (size_t i = 0; i < be->nkeys; i++) {
    akey_t *k = &be->keys[i];
    if (k->used && !k->fetching && !k->negative &&
        now - k->at_ms >= be->refresh_ms)
      (void)akey_fetch(be, k);
  }
}

/* ---- per-op state
 * -------------------------------------------------------------
 */

static kop_t *kop_new(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = calloc(1, sizeof(*k));
  if (k == NULL) {
    ks_s3_bop_done(op, KS_S3_INTERNAL_ERROR, NULL);
    return NULL;
  }
  k->be = impl;
  k->op = op;
  op->be_data = k;
  k->o.data = k->src.data = k;
  if (op->who == NULL || ks_id_from_hex(&k->o.tenant, op->who->tenant,
                                        strlen(op->who->tenant)) != 0) {
    ks_s3_bop_done(op, KS_S3_ACCESS_DENIED, NULL);
    return NULL;
  }
  k->src.tenant = k->o.tenant;
  k->o.bucket = op->bucket;
  k->o.key = op->key;
  return k;
}

static void kb_release(void *impl, ks_s3_bop_t *op)
{
  (void)impl;
  kop_t *k = op->be_data;
  if (k == NULL)
    return;
  if (k->o_used)
    ks_obj_op_release(&k->o);
  if (k->src_used)
    ks_obj_op_release(&k->src);
  free(k->kv);
  free(k->pairs);
  free(k->arr);
  free(k->etags);
  free(k->refs);
  free(k->del);
  free(k);
  op->be_data = NULL;
}

/* Start fn on k->o; on a start error finish the bop. */
typedef int (*obj_fn)(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);

static void kop_start(kop_t *k, obj_fn fn, ks_obj_cb cb)
{
  int rc = fn(k->be->cl, &k->o, cb);
  if (rc != 0) {
    ks_s3_bop_done(k->op, ks_s3_kiseki_code(rc), NULL);
    return;
  }
  k->o_used = true;
}

/* Done with the status's S3 code. */
static void obj_done_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

/* "\"" etag "\"" into out; an etag too long for an S3 ETag (never
 * produced by the object layer) becomes the empty "". */
static void quote(char out[KS_S3_ETAG_MAX], const char *etag)
{
  size_t n = etag ? strlen(etag) : 0;
  if (n + 3 > KS_S3_ETAG_MAX)
    n = 0;
  out[0] = '"';
  if (n)
    memcpy(out + 1, etag, n);
  out[n + 1] = '"';
  out[n + 2] = '\0';
}

static int64_t secs(int64_t ns)
{
  return ns / NSEC;
}

/* S3 attributes -> composition fields (copied pointers into the bop). */
static int attrs_in(kop_t *k, const ks_s3_obj_attrs_t *a)
{
  ks_meta_comp_t *m = &k->attrs;
  if (a == NULL)
    return 0;
  m->content_type = a->content_type;
  m->content_encoding = a->content_encoding;
  m->content_disposition = a->content_disposition;
  m->cache_control = a->cache_control;
  m->expires = a->expires;
  m->content_language = a->content_language;
  k->kv = calloc(a->nmeta ? a->nmeta : 1, sizeof(*k->kv));
  if (k->kv == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < a->nmeta; i++)
    k->kv[i] = (ks_meta_kv_t){a->meta[i].name, a->meta[i].value};
  m->nmeta = (uint32_t)a->nmeta;
  m->meta = k->kv;
  k->o.attrs = m;
  return 0;
}

/* Composition -> S3 object info. */
static int info_out(kop_t *k, const ks_meta_comp_t *m)
{
  ks_s3_obj_info_t *in = &k->op->info;
  quote(in->etag, m->etag);
  in->size = m->size;
  in->mtime_s = secs(m->mtime_ns);
  ks_s3_obj_attrs_t *a = &in->attrs;
  a->content_type = m->content_type[0] ? m->content_type : NULL;
  a->content_encoding = m->content_encoding[0] ? m->content_encoding : NULL;
  a->content_disposition =
      m->content_disposition[0] ? m->content_disposition : NULL;
  a->cache_control = m->cache_control[0] ? m->cache_control : NULL;
  a->expires = m->expires[0] ? m->expires : NULL;
  a->content_language = m->content_language[0] ? m->content_language : NULL;
  k->pairs = calloc(m->nmeta ? m->nmeta : 1, sizeof(*k->pairs));
  if (k->pairs == NULL)
    return -ENOMEM;
  for (uint32_t i = 0; i < m->nmeta; i++)
    k->pairs[i] = (ks_s3_meta_pair_t){m->meta[i].name, m->meta[i].value};
  a->meta = k->pairs;
  a->nmeta = m->nmeta;
  return 0;
}

/* ---- buckets ----------------------------------------------------------------
 */

static void buckets_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  const ks_meta_buckets_t *b = &o->reply.r.buckets;
  ks_s3_bucket_entry_t *e = NULL;
  if (status == 0) {
    e = calloc(b->n ? b->n : 1, sizeof(*e));
    status = e ? 0 : -ENOMEM;
  }
  for (uint32_t i = 0; e != NULL && i < b->n; i++)
    e[i] = (ks_s3_bucket_entry_t){b->buckets[i].name,
                                  secs(b->buckets[i].created_ns)};
  k->arr = e;
  k->op->buckets = e;
  k->op->nbuckets = e ? b->n : 0;
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

static void kb_list_buckets(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k != NULL)
    kop_start(k, ks_obj_bucket_list, buckets_cb);
}

static void kb_create_bucket(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k != NULL)
    kop_start(k, ks_obj_bucket_create, obj_done_cb);
}

static void kb_head_bucket(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k != NULL)
    kop_start(k, ks_obj_bucket_head, obj_done_cb);
}

static void kb_delete_bucket(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k != NULL)
    kop_start(k, ks_obj_bucket_delete, obj_done_cb);
}

static void kb_get_bucket_location(void *impl, ks_s3_bop_t *op)
{
  op->location = NULL; /* the region the server signs for */
  kb_head_bucket(impl, op);
}

/* ---- objects ----------------------------------------------------------------
 */

static void got_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  if (status == 0)
    status = info_out(k, &o->reply.r.comp);
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

static void kb_get_object(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k != NULL)
    kop_start(k, ks_obj_get, got_cb);
}

static void read_cb(ks_obj_op_t *o, int status, const void *p, size_t n)
{
  kop_t *k = o->data;
  ks_s3_bop_read_done(k->op, ks_s3_kiseki_code(status), p, n);
}

static void kb_read(void *impl, ks_s3_bop_t *op, uint64_t off, size_t max)
{
  (void)impl;
  kop_t *k = op->be_data;
  int rc = ks_obj_read_ahead(&k->o, op->read_end);
  if (rc == 0)
    rc = ks_obj_read(&k->o, off, max, read_cb);
  if (rc != 0)
    ks_s3_bop_read_done(op, ks_s3_kiseki_code(rc), NULL, 0);
}

static void put_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  if (status == 0) {
    quote(k->op->info.etag, o->result.etag);
    k->op->info.size = o->result.size;
    k->op->info.mtime_s = secs(o->now_ns);
  }
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

static bool body_in(kop_t *k)
{
  ks_s3_bop_t *op = k->op;
  k->o.body = op->body;
  k->o.nbody = op->nbody;
  k->o.body_len = op->body_len;
  k->o.md5 = op->body_md5;
  k->o.now_ns = ks_time_real_ns();
  if (attrs_in(k, op->attrs) != 0) {
    ks_s3_bop_done(op, KS_S3_INTERNAL_ERROR, NULL);
    return false;
  }
  return true;
}

static void kb_put_object(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k != NULL && body_in(k))
    kop_start(k, ks_obj_put, put_cb);
}

static void delete_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  if (status == KS_META_ENOKEY)
    status = 0; /* AWS: deleting a missing key succeeds */
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

static void kb_delete_object(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k != NULL)
    kop_start(k, ks_obj_delete, delete_cb);
}

/* DeleteObjects: one delete after the other. */
static void delete_next(kop_t *k);

static void delete_one_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  ks_obj_op_release(o);
  k->o_used = false;
  if (status == KS_META_ENOKEY)
    status = 0;
  ks_s3_code_t code = ks_s3_kiseki_code(status);
  if (code == KS_S3_NO_SUCH_BUCKET) {
    /* AWS answers the whole request 404, not one error per key; no key
     * of a missing bucket can have been deleted before this one */
    ks_s3_bop_done(k->op, code, NULL);
    return;
  }
  k->del[k->del_i].code = code;
  k->del_i++;
  delete_next(k);
}

static void delete_next(kop_t *k)
{
  const ks_s3_delete_req_t *d = k->op->del;
  while (k->del_i < d->nkeys) {
    k->del[k->del_i].key = d->keys[k->del_i];
    k->o.key = d->keys[k->del_i];
    int rc = ks_obj_delete(k->be->cl, &k->o, delete_one_cb);
    if (rc == 0) {
      k->o_used = true;
      return;
    }
    k->del[k->del_i++].code = ks_s3_kiseki_code(rc);
  }
  k->op->deleted = k->del;
  k->op->ndeleted = d->nkeys;
  ks_s3_bop_done(k->op, KS_S3_OK, NULL);
}

static void kb_delete_objects(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL)
    return;
  k->del = calloc(op->del->nkeys ? op->del->nkeys : 1, sizeof(*k->del));
  if (k->del == NULL) {
    ks_s3_bop_done(op, KS_S3_INTERNAL_ERROR, NULL);
    return;
  }
  delete_next(k);
}

/* ---- copies -----------------------------------------------------------------
 */

static void copied_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  if (status == 0) {
    quote(k->op->info.etag, o->result.etag);
    k->op->info.mtime_s = secs(o->now_ns);
  }
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

/* The source was read: check x-amz-copy-source-if-*, then copy. */
static void source_cb(ks_obj_op_t *s, int status)
{
  kop_t *k = s->data;
  ks_s3_bop_t *op = k->op;
  if (status != 0) {
    ks_s3_bop_done(op, ks_s3_kiseki_code(status), NULL);
    return;
  }
  const ks_meta_comp_t *m = &s->reply.r.comp;
  char etag[KS_S3_ETAG_MAX];
  quote(etag, m->etag);
  ks_s3_code_t c = op->src_cond ? ks_s3_cond_eval(op->src_cond, etag,
                                                  secs(m->mtime_ns), false)
                                : KS_S3_OK;
  if (c != KS_S3_OK) {
    ks_s3_bop_done(op, c == KS_S3_NOT_MODIFIED ? KS_S3_PRECONDITION_FAILED : c,
                   NULL);
    return;
  }
  k->o.src = m;
  k->o.now_ns = ks_time_real_ns();
  if (op->op == KS_S3_OP_UPLOAD_PART_COPY) {
    k->o.upload_id = op->upload_id;
    k->o.part = (uint32_t)op->part_number;
    k->o.src_off = op->src_range.first;
    k->o.src_len = op->src_range.len;
    /* AWS answers a range past the source's end with InvalidArgument
     * (400) and this message, not InvalidRange */
    if (op->src_range.len > 0 &&
        (op->src_range.first >= m->size ||
         op->src_range.len > m->size - op->src_range.first)) {
      snprintf(k->msg, sizeof(k->msg),
               "Range specified is not valid for source object of size: %llu",
               (unsigned long long)m->size);
      ks_s3_bop_done(op, KS_S3_INVALID_ARGUMENT, k->msg);
      return;
    }
    kop_start(k, ks_obj_mpu_part_copy, copied_cb);
    return;
  }
  bool replace = op->directive == KS_S3_DIRECTIVE_REPLACE;
  if (replace && attrs_in(k, op->attrs) != 0) {
    ks_s3_bop_done(op, KS_S3_INTERNAL_ERROR, NULL);
    return;
  }
  if (!replace)
    k->o.attrs = NULL;
  kop_start(k, ks_obj_copy, copied_cb);
}

static void kb_copy(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL)
    return;
  k->src.bucket = op->src->bucket;
  k->src.key = op->src->key;
  int rc = ks_obj_get(k->be->cl, &k->src, source_cb);
  if (rc != 0) {
    ks_s3_bop_done(op, ks_s3_kiseki_code(rc), NULL);
    return;
  }
  k->src_used = true;
}

/* ---- listings ---------------------------------------------------------------
 */

static void objects_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  const ks_meta_objects_t *r = &o->reply.r.objects;
  ks_s3_list_result_t *out = &k->op->objects;
  ks_s3_object_entry_t *e = NULL;
  if (status == 0) {
    e = calloc(r->n ? r->n : 1, sizeof(*e));
    k->etags = calloc(r->n ? r->n : 1, sizeof(*k->etags));
    status = e && k->etags ? 0 : -ENOMEM;
  }
  k->arr = e;
  if (status != 0) {
    ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
    return;
  }
  for (uint32_t i = 0; i < r->n; i++) {
    quote(k->etags[i], r->entries[i].etag);
    e[i] = (ks_s3_object_entry_t){.key = r->entries[i].key,
                                  .etag = k->etags[i],
                                  .size = r->entries[i].size,
                                  .modified_s = secs(r->entries[i].mtime_ns)};
  }
  out->contents = e;
  out->ncontents = r->n;
  out->common_prefixes = r->prefixes;
  out->nprefixes = r->nprefixes;
  out->is_truncated = r->truncated;
  if (r->truncated && k->op->list->v2)
    out->next_continuation_token = r->next;
  else if (r->truncated && k->op->list->delimiter != NULL)
    out->next_marker = r->next; /* AWS: v1 has it only with a delimiter */
  ks_s3_bop_done(k->op, KS_S3_OK, NULL);
}

static void kop_query(kop_t *k, uint16_t qop, ks_obj_cb cb)
{
  int rc = ks_obj_query(k->be->cl, &k->o, qop, &k->q, cb);
  if (rc != 0) {
    ks_s3_bop_done(k->op, ks_s3_kiseki_code(rc), NULL);
    return;
  }
  k->o_used = true;
}

static void kb_list_objects(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL)
    return;
  const ks_s3_list_args_t *a = op->list;
  k->q = (ks_meta_query_t){.prefix = a->prefix,
                           .delimiter = a->delimiter,
                           .start_after = a->marker,
                           .max = (uint32_t)a->max_keys};
  if (a->v2 && a->token != NULL)
    k->q.start_after = a->token;
  kop_query(k, KS_OP_META_LIST_OBJECTS, objects_cb);
}

static void uploads_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  const ks_meta_uploads_t *r = &o->reply.r.uploads;
  ks_s3_upload_entry_t *e = NULL;
  if (status == 0) {
    e = calloc(r->n ? r->n : 1, sizeof(*e));
    status = e ? 0 : -ENOMEM;
  }
  k->arr = e;
  for (uint32_t i = 0; e != NULL && i < r->n; i++)
    e[i] = (ks_s3_upload_entry_t){r->uploads[i].key, r->uploads[i].upload_id,
                                  secs(r->uploads[i].initiated_ns)};
  ks_s3_uploads_result_t *out = &k->op->uploads;
  out->uploads = e;
  out->nuploads = e ? r->n : 0;
  out->is_truncated = status == 0 && r->truncated;
  if (out->is_truncated) {
    out->next_key_marker = r->next_key;
    out->next_upload_id_marker = r->next_upload_id;
  }
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

static void kb_list_uploads(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL)
    return;
  const ks_s3_list_args_t *a = op->list;
  k->q = (ks_meta_query_t){.prefix = a->prefix,
                           .start_after = a->marker,
                           .upload_id_marker = a->token,
                           .max = (uint32_t)a->max_keys};
  kop_query(k, KS_OP_META_LIST_UPLOADS, uploads_cb);
}

static void parts_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  const ks_meta_parts_t *r = &o->reply.r.parts;
  ks_s3_part_entry_t *e = NULL;
  if (status == 0) {
    e = calloc(r->n ? r->n : 1, sizeof(*e));
    k->etags = calloc(r->n ? r->n : 1, sizeof(*k->etags));
    status = e && k->etags ? 0 : -ENOMEM;
  }
  k->arr = e;
  for (uint32_t i = 0; status == 0 && i < r->n; i++) {
    quote(k->etags[i], r->parts[i].etag);
    e[i] =
        (ks_s3_part_entry_t){k->etags[i], r->parts[i].size,
                             secs(r->parts[i].mtime_ns), (int)r->parts[i].part};
  }
  ks_s3_parts_result_t *out = &k->op->parts;
  out->parts = e;
  out->nparts = status == 0 ? r->n : 0;
  out->is_truncated = status == 0 && r->truncated;
  out->next_part_number_marker = status == 0 ? (int)r->next_marker : 0;
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

static void kb_list_parts(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL)
    return;
  const ks_s3_list_args_t *a = op->list;
  k->q = (ks_meta_query_t){
      .key = op->key,
      .upload_id = op->upload_id,
      .marker = a->marker ? (uint32_t)strtoul(a->marker, NULL, 10) : 0,
      .max = (uint32_t)a->max_keys};
  kop_query(k, KS_OP_META_LIST_PARTS, parts_cb);
}

/* ---- multipart
 * --------------------------------------------------------------- */

static void created_cb(ks_obj_op_t *o, int status)
{
  kop_t *k = o->data;
  snprintf(k->op->upload_id_out, sizeof(k->op->upload_id_out), "%s",
           o->upload_id_out);
  ks_s3_bop_done(k->op, ks_s3_kiseki_code(status), NULL);
}

static void kb_mpu_create(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL)
    return;
  if (attrs_in(k, op->attrs) != 0) {
    ks_s3_bop_done(op, KS_S3_INTERNAL_ERROR, NULL);
    return;
  }
  kop_start(k, ks_obj_mpu_create, created_cb);
}

static void kb_upload_part(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL || !body_in(k))
    return;
  k->o.attrs = NULL;
  k->o.upload_id = op->upload_id;
  k->o.part = (uint32_t)op->part_number;
  kop_start(k, ks_obj_mpu_part, put_cb);
}

static void kb_mpu_complete(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL)
    return;
  const ks_s3_complete_req_t *c = op->complete;
  k->refs = calloc(c->nparts ? c->nparts : 1, sizeof(*k->refs));
  if (k->refs == NULL) {
    ks_s3_bop_done(op, KS_S3_INTERNAL_ERROR, NULL);
    return;
  }
  for (size_t i = 0; i < c->nparts; i++)
    k->refs[i] =
        (ks_meta_part_ref_t){(uint32_t)c->parts[i].number, c->parts[i].etag};
  k->o.upload_id = op->upload_id;
  k->o.parts = k->refs;
  k->o.nparts = (uint32_t)c->nparts;
  k->o.now_ns = ks_time_real_ns();
  kop_start(k, ks_obj_mpu_complete, put_cb);
}

static void kb_mpu_abort(void *impl, ks_s3_bop_t *op)
{
  kop_t *k = kop_new(impl, op);
  if (k == NULL)
    return;
  k->o.upload_id = op->upload_id;
  kop_start(k, ks_obj_mpu_abort, obj_done_cb);
}

/* ---- the table and the life cycle ------------------------------------------
 */

static const ks_s3_backend_ops_t kiseki_ops = {
    .key_lookup = kb_key_lookup,
    .list_buckets = kb_list_buckets,
    .create_bucket = kb_create_bucket,
    .head_bucket = kb_head_bucket,
    .delete_bucket = kb_delete_bucket,
    .get_bucket_location = kb_get_bucket_location,
    .head_object = kb_get_object,
    .get_object = kb_get_object,
    .read = kb_read,
    .put_object = kb_put_object,
    .delete_object = kb_delete_object,
    .delete_objects = kb_delete_objects,
    .copy_object = kb_copy,
    .list_objects = kb_list_objects,
    .list_multipart_uploads = kb_list_uploads,
    .list_parts = kb_list_parts,
    .create_multipart_upload = kb_mpu_create,
    .upload_part = kb_upload_part,
    .upload_part_copy = kb_copy,
    .complete_multipart_upload = kb_mpu_complete,
    .abort_multipart_upload = kb_mpu_abort,
    .release = kb_release,
};

int ks_s3_kiseki_new(uv_loop_t *loop, ks_client_t *cl,
                     const ks_s3_kiseki_opts_t *opts, ks_s3_kiseki_t **out)
{
  ks_s3_kiseki_t *be = calloc(1, sizeof(*be));
  if (be == NULL)
    return -ENOMEM;
  be->keys = calloc(KS_S3K_KEYS_MAX, sizeof(*be->keys));
  if (be->keys == NULL) {
    free(be);
    return -ENOMEM;
  }
  be->nkeys = KS_S3K_KEYS_MAX;
  be->loop = loop;
  be->cl = cl;
  be->be = (ks_s3_backend_t){&kiseki_ops, be};
  be->refresh_ms =
      opts && opts->refresh_ms ? opts->refresh_ms : REFRESH_DEFAULT_MS;
  uv_timer_init(loop, &be->timer);
  be->timer.data = be;
  uv_timer_start(&be->timer, refresh_cb, be->refresh_ms, be->refresh_ms);
  for (size_t i = 0; opts && i < opts->npreload; i++)
    (void)akey_add(be, opts->preload[i], strlen(opts->preload[i]));
  *out = be;
  return 0;
}

const ks_s3_backend_t *ks_s3_kiseki_backend(ks_s3_kiseki_t *be)
{
  return &be->be;
}

static void timer_closed(uv_handle_t *h)
{
  ks_s3_kiseki_t *be = h->data;
  ks_rpc_close_cb cb = be->close_cb;
  void *arg = be->close_arg;
  ks_secure_zero(be->keys, be->nkeys * sizeof(*be->keys));
  free(be->keys);
  free(be);
  if (cb != NULL)
    cb(arg);
}

static void close_maybe(ks_s3_kiseki_t *be)
{
  if (!be->closing || be->fetches > 0 ||
      uv_is_closing((uv_handle_t *)&be->timer))
    return;
  uv_close((uv_handle_t *)&be->timer, timer_closed);
}

void ks_s3_kiseki_close(ks_s3_kiseki_t *be, ks_rpc_close_cb cb, void *arg)
{
  be->closing = true;
  be->close_cb = cb;
  be->close_arg = arg;
  uv_timer_stop(&be->timer);
  close_maybe(be);
}
