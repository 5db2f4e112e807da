/*
 * s3_ops.c — one function per S3 operation: take its arguments from the
 * request (query, headers, XML body), call the backend (ks/s3_backend.h),
 * and write the answer AWS gives (status, headers, XML).
 *
 * The request has passed intake (s3_server.c) when s3_op_start runs:
 * target, operation, signature and body are verified, and the backend has
 * an entry for the operation.  Every path answers exactly once: either here
 * (argument errors) or in the completion callback.  Completion callbacks
 * run only while h2o's request is alive (ks_s3_bop_done checks).
 */
#include "s3_server_int.h"

#include "ks/codec.h"
#include "ks/err.h"
#include "ks/time.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S3_META_PREFIX "x-amz-meta-"
#define S3_LIST_MAX 1000

/* ---- arguments -------------------------------------------------------- */

/* Decoded query parameter in pool memory, or NULL when absent. */
static char *s3_query_dup(s3_req_t *r, const char *name)
{
  size_t size = r->http.query_len + 1;
  char *dst = h2o_mem_alloc_pool(&r->req->pool, size);
  int n = ks_s3_query_get(r->http.query, r->http.query_len, name, dst, size);
  return n < 0 ? NULL : dst;
}

/* A query integer in [lo, hi], def when absent: OK or InvalidArgument. */
static ks_s3_code_t s3_query_int(s3_req_t *r, const char *name, int def, int lo,
                                 int hi, int *out)
{
  const char *v = s3_query_dup(r, name);
  *out = def;
  if (v == NULL)
    return KS_S3_OK;
  char *end;
  long x = strtol(v, &end, 10);
  if (v[0] == '\0' || *end != '\0' || x < lo)
    return KS_S3_INVALID_ARGUMENT;
  *out = x > hi ? hi : (int)x;
  return KS_S3_OK;
}

static const char *s3_hdr_dup(s3_req_t *r, const char *name)
{
  size_t n;
  const char *v = s3_header_get(r, name, &n);
  return v ? s3_pool_strdup(r, v, n) : NULL;
}

/* Content-Encoding without the aws-chunked token (it describes the
 * transfer, not the object). */
static const char *s3_content_encoding(s3_req_t *r)
{
  const char *v = s3_hdr_dup(r, "content-encoding");
  if (v == NULL)
    return NULL;
  char *copy = s3_pool_strdup(r, v, strlen(v)), *save = NULL;
  char *out = h2o_mem_alloc_pool(&r->req->pool, strlen(v) + 1);
  size_t len = 0;
  out[0] = '\0';
  for (char *t = strtok_r(copy, ",", &save); t;
       t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ')
      t++;
    if (strcasecmp(t, "aws-chunked") == 0 || *t == '\0')
      continue;
    len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", t);
  }
  return len ? out : NULL;
}

static ks_s3_code_t s3_attrs_parse(s3_req_t *r)
{
  ks_s3_obj_attrs_t *a = &r->attrs;
  a->content_type = s3_hdr_dup(r, "content-type");
  a->content_encoding = s3_content_encoding(r);
  a->content_disposition = s3_hdr_dup(r, "content-disposition");
  a->content_language = s3_hdr_dup(r, "content-language");
  a->cache_control = s3_hdr_dup(r, "cache-control");
  a->expires = s3_hdr_dup(r, "expires");
  size_t plen = strlen(S3_META_PREFIX), total = 0, n = 0;
  r->meta = calloc(r->http.nheaders ? r->http.nheaders : 1, sizeof(*r->meta));
  if (r->meta == NULL)
    return KS_S3_INTERNAL_ERROR;
  for (size_t i = 0; i < r->http.nheaders; i++) {
    const ks_s3_header_t *h = &r->http.headers[i];
    if (h->name_len <= plen || strncasecmp(h->name, S3_META_PREFIX, plen) != 0)
      continue;
    total += h->name_len - plen + h->value_len;
    r->meta[n].name = s3_pool_strdup(r, h->name + plen, h->name_len - plen);
    r->meta[n++].value = s3_pool_strdup(r, h->value, h->value_len);
  }
  if (total > KS_S3_USER_META_MAX)
    return KS_S3_METADATA_TOO_LARGE;
  a->meta = r->meta;
  a->nmeta = n;
  r->bop.attrs = a;
  return KS_S3_OK;
}

static void s3_cond_parse(s3_req_t *r, ks_s3_cond_t *c, const char *prefix)
{
  static const char *const names[] = {
      "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"};
  const char **v[] = {&c->if_match, &c->if_none_match, &c->if_modified_since,
                      &c->if_unmodified_since};
  size_t *n[] = {&c->if_match_len, &c->if_none_match_len,
                 &c->if_modified_since_len, &c->if_unmodified_since_len};
  for (size_t i = 0; i < 4; i++) {
    char name[64];
    snprintf(name, sizeof(name), "%s%s", prefix, names[i]);
    *v[i] = s3_header_get(r, name, n[i]);
  }
}

/* The body as one contiguous buffer (XML ops). */
static const void *s3_body_flat(s3_req_t *r)
{
  if (r->niov <= 1)
    return r->niov ? r->iov[0].iov_base : "";
  r->flat = malloc(r->body_len ? r->body_len : 1);
  if (r->flat != NULL)
    ks_iov_gather(r->flat, r->iov, r->niov);
  return r->flat;
}

static bool s3_code_reply(s3_req_t *r, ks_s3_code_t c)
{
  if (c != KS_S3_OK)
    s3_reply_error(r, c, NULL);
  return c != KS_S3_OK;
}

static bool s3_op_failed(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (op->_code != KS_S3_OK)
    s3_reply_error(r, op->_code, op->message);
  return op->_code != KS_S3_OK;
}

static void s3_reply_buf(s3_req_t *r, int rc, ks_buf_t *b)
{
  if (rc != 0) {
    ks_buf_free(b);
    s3_reply_error(r, KS_S3_INTERNAL_ERROR, NULL);
    return;
  }
  s3_reply_xml(r, 200, b);
}

static void s3_etag_header(s3_req_t *r, const char *etag)
{
  s3_header_add(r, "etag", etag, strlen(etag));
}

/* ---- object answers ----------------------------------------------------- */

static void s3_hdr_opt(s3_req_t *r, const char *name, const char *v,
                       const char *override_param)
{
  const char *o =
      r->op == KS_S3_OP_GET_OBJECT ? s3_query_dup(r, override_param) : NULL;
  if (o != NULL)
    v = o;
  if (v != NULL)
    s3_header_add(r, name, v, strlen(v));
}

static void s3_obj_headers(s3_req_t *r, const ks_s3_obj_info_t *in)
{
  char date[KS_TIME_HTTP_LEN + 1];
  const ks_s3_obj_attrs_t *a = &in->attrs;
  s3_etag_header(r, in->etag);
  if (ks_time_format_http(date, sizeof(date), in->mtime_s) >= 0)
    s3_header_add(r, "last-modified", date, strlen(date));
  s3_header_add(r, "accept-ranges", "bytes", 5);
  s3_hdr_opt(r, "content-type",
             a->content_type ? a->content_type : "binary/octet-stream",
             "response-content-type");
  s3_hdr_opt(r, "content-encoding", a->content_encoding,
             "response-content-encoding");
  s3_hdr_opt(r, "content-disposition", a->content_disposition,
             "response-content-disposition");
  s3_hdr_opt(r, "content-language", a->content_language,
             "response-content-language");
  s3_hdr_opt(r, "cache-control", a->cache_control, "response-cache-control");
  s3_hdr_opt(r, "expires", a->expires, "response-expires");
  for (size_t i = 0; i < a->nmeta; i++) {
    char name[KS_S3_USER_META_MAX + 16];
    snprintf(name, sizeof(name), S3_META_PREFIX "%s", a->meta[i].name);
    s3_header_add(r, name, a->meta[i].value, strlen(a->meta[i].value));
  }
}

/* GET and HEAD once the backend described the object. */
static void s3_get_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  const ks_s3_obj_info_t *in = &op->info;
  ks_s3_code_t c = ks_s3_cond_eval(&r->cond, in->etag, in->mtime_s, true);
  if (c == KS_S3_NOT_MODIFIED) {
    char date[KS_TIME_HTTP_LEN + 1];
    s3_etag_header(r, in->etag);
    if (ks_time_format_http(date, sizeof(date), in->mtime_s) >= 0)
      s3_header_add(r, "last-modified", date, strlen(date));
  }
  size_t n = 0;
  const char *range = s3_header_get(r, "range", &n);
  ks_s3_range_t rg;
  if (c == KS_S3_OK)
    c = ks_s3_range_resolve(range, n, in->size, &rg);
  if (s3_code_reply(r, c))
    return;
  s3_obj_headers(r, in);
  r->req->res.status = rg.partial ? 206 : 200;
  r->req->res.reason = rg.partial ? "Partial Content" : "OK";
  if (rg.partial) {
    char cr[96];
    int len = snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
                       (unsigned long long)rg.first,
                       (unsigned long long)(rg.first + rg.len - 1),
                       (unsigned long long)in->size);
    s3_header_add(r, "content-range", cr, (size_t)len);
  }
  s3_header_add(r, "x-amz-request-id", r->rid, S3_RID_LEN);
  r->req->res.content_length = rg.len;
  r->off = rg.first;
  r->end = rg.first + rg.len;
  if (r->op == KS_S3_OP_HEAD_OBJECT || r->srv->be->ops->read == NULL)
    r->end = r->off; /* HEAD: headers only */
  s3_stream_start(r);
}

static void s3_put_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  s3_etag_header(r, op->info.etag);
  s3_reply_empty(r, 200);
}

static void s3_empty_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  bool del = r->op == KS_S3_OP_DELETE_OBJECT ||
             r->op == KS_S3_OP_DELETE_BUCKET ||
             r->op == KS_S3_OP_ABORT_MULTIPART_UPLOAD;
  if (r->op == KS_S3_OP_CREATE_BUCKET) {
    char loc[KS_S3_BUCKET_MAX + 2];
    int n = snprintf(loc, sizeof(loc), "/%s", r->target.bucket);
    s3_header_add(r, "location", loc, (size_t)n);
  }
  if (r->op == KS_S3_OP_HEAD_BUCKET)
    s3_header_add(r, "x-amz-bucket-region", r->srv->region,
                  strlen(r->srv->region));
  s3_reply_empty(r, del ? 204 : 200);
}

static void s3_copy_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_buf_t b = KS_BUF_INIT;
  bool part = r->op == KS_S3_OP_UPLOAD_PART_COPY;
  s3_reply_buf(
      r, ks_s3_xml_write_copy(&b, part, op->info.etag, op->info.mtime_s), &b);
}

/* ListObjectsV2 continuation tokens are opaque to clients, as AWS's are:
 * base64url of the key to continue after.  The key itself would not do:
 * a key may hold characters XML 1.0 cannot carry (U+0001), and
 * NextContinuationToken is never url-encoded. */
static ks_s3_code_t s3_token_decode(s3_req_t *r)
{
  const char *t = r->list.token;
  size_t n = strlen(t);
  char *key = h2o_mem_alloc_pool(&r->req->pool, n + 1);
  int len = ks_b64url_decode(key, n + 1, t, n);
  if (len <= 0 || memchr(key, '\0', (size_t)len) != NULL ||
      !ks_s3_utf8_valid(key, (size_t)len))
    return KS_S3_INVALID_ARGUMENT;
  key[len] = '\0';
  r->token_in = t;
  r->list.token = key;
  return KS_S3_OK;
}

static const char *s3_token_encode(s3_req_t *r, const char *key)
{
  size_t n = strlen(key), size = KS_B64URL_LEN(n) + 1;
  char *t = h2o_mem_alloc_pool(&r->req->pool, size);
  return ks_b64url_encode(t, size, key, n) < 0 ? NULL : t;
}

/* ---- bucket and service answers --------------------------------------- */

static ks_s3_owner_t s3_owner(const s3_req_t *r)
{
  return (ks_s3_owner_t){r->who.tenant, r->who.display_name[0]
                                            ? r->who.display_name
                                            : r->who.tenant};
}

static void s3_buckets_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_buf_t b = KS_BUF_INIT;
  ks_s3_owner_t ow = s3_owner(r);
  s3_reply_buf(r, ks_s3_xml_write_buckets(&b, &ow, op->buckets, op->nbuckets),
               &b);
}

static void s3_location_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_buf_t b = KS_BUF_INIT;
  s3_reply_buf(r, ks_s3_xml_write_location(&b, op->location), &b);
}

static void s3_list_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_s3_list_result_t *o = &op->objects;
  const ks_s3_list_args_t *a = &r->list;
  ks_s3_owner_t ow = s3_owner(r);
  o->bucket = r->target.bucket;
  o->prefix = a->prefix;
  o->delimiter = a->delimiter;
  o->max_keys = a->max_keys;
  o->v2 = a->v2;
  o->encoding_url = s3_query_dup(r, "encoding-type") != NULL;
  if (a->v2) {
    o->continuation_token = r->token_in;
    if (o->next_continuation_token != NULL) {
      o->next_continuation_token =
          s3_token_encode(r, o->next_continuation_token);
      if (o->next_continuation_token == NULL) {
        s3_reply_error(r, KS_S3_INTERNAL_ERROR, NULL);
        return;
      }
    }
    o->start_after = a->marker;
    o->owner = s3_query_dup(r, "fetch-owner") &&
                       strcmp(s3_query_dup(r, "fetch-owner"), "true") == 0
                   ? &ow
                   : NULL;
  } else {
    o->marker = a->marker ? a->marker : "";
    o->owner = &ow;
  }
  ks_buf_t b = KS_BUF_INIT;
  s3_reply_buf(r, ks_s3_xml_write_list(&b, o), &b);
}

static void s3_delete_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_buf_t b = KS_BUF_INIT;
  s3_reply_buf(
      r, ks_s3_xml_write_delete(&b, r->del.quiet, op->deleted, op->ndeleted),
      &b);
}

/* ---- multipart answers ----------------------------------------------------
 */

static void s3_initiate_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_buf_t b = KS_BUF_INIT;
  s3_reply_buf(r,
               ks_s3_xml_write_initiate(&b, r->target.bucket, r->target.key,
                                        op->upload_id_out),
               &b);
}

static void s3_complete_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_buf_t b = KS_BUF_INIT;
  char loc[KS_S3_BUCKET_MAX + 2];
  snprintf(loc, sizeof(loc), "/%s", r->target.bucket);
  s3_reply_buf(r,
               ks_s3_xml_write_complete(&b, loc, r->target.bucket,
                                        r->target.key, op->info.etag),
               &b);
}

static void s3_parts_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_s3_owner_t ow = s3_owner(r);
  ks_s3_parts_result_t *p = &op->parts;
  p->bucket = r->target.bucket;
  p->key = r->target.key;
  p->upload_id = r->upload_id;
  p->owner = &ow;
  p->max_parts = r->list.max_keys;
  p->part_number_marker =
      r->list.marker ? (int)strtol(r->list.marker, NULL, 10) : 0;
  ks_buf_t b = KS_BUF_INIT;
  s3_reply_buf(r, ks_s3_xml_write_parts(&b, p), &b);
}

static void s3_uploads_cb(ks_s3_bop_t *op)
{
  s3_req_t *r = op->_srv;
  if (s3_op_failed(op))
    return;
  ks_s3_owner_t ow = s3_owner(r);
  ks_s3_uploads_result_t *u = &op->uploads;
  u->bucket = r->target.bucket;
  u->prefix = r->list.prefix;
  u->delimiter = r->list.delimiter;
  u->key_marker = r->list.marker ? r->list.marker : "";
  u->upload_id_marker = r->list.token ? r->list.token : "";
  u->owner = &ow;
  u->max_uploads = r->list.max_keys;
  u->encoding_url = s3_query_dup(r, "encoding-type") != NULL;
  ks_buf_t b = KS_BUF_INIT;
  s3_reply_buf(r, ks_s3_xml_write_uploads(&b, u), &b);
}

/* ---- argument preparation per operation --------------------------------- */

static ks_s3_code_t s3_prep_list(s3_req_t *r)
{
  ks_s3_list_args_t *a = &r->list;
  const char *enc = s3_query_dup(r, "encoding-type");
  if (enc != NULL && strcmp(enc, "url") != 0)
    return KS_S3_INVALID_ARGUMENT;
  a->v2 = r->op == KS_S3_OP_LIST_OBJECTS_V2;
  a->prefix = s3_query_dup(r, "prefix");
  if (a->prefix == NULL)
    a->prefix = "";
  a->delimiter = s3_query_dup(r, "delimiter");
  if (r->op == KS_S3_OP_LIST_MULTIPART_UPLOADS) {
    a->marker = s3_query_dup(r, "key-marker");
    a->token = s3_query_dup(r, "upload-id-marker");
    return s3_query_int(r, "max-uploads", S3_LIST_MAX, 0, S3_LIST_MAX,
                        &a->max_keys);
  }
  a->marker = s3_query_dup(r, a->v2 ? "start-after" : "marker");
  a->token = a->v2 ? s3_query_dup(r, "continuation-token") : NULL;
  if (a->token != NULL && s3_token_decode(r) != KS_S3_OK)
    return KS_S3_INVALID_ARGUMENT;
  return s3_query_int(r, "max-keys", S3_LIST_MAX, 0, S3_LIST_MAX, &a->max_keys);
}

static ks_s3_code_t s3_prep_upload(s3_req_t *r)
{
  r->upload_id = s3_query_dup(r, "uploadId");
  r->bop.upload_id = r->upload_id;
  if (r->upload_id == NULL || r->upload_id[0] == '\0')
    return KS_S3_INVALID_ARGUMENT;
  if (r->op == KS_S3_OP_LIST_PARTS) {
    r->list.marker = s3_query_dup(r, "part-number-marker");
    return s3_query_int(r, "max-parts", S3_LIST_MAX, 0, S3_LIST_MAX,
                        &r->list.max_keys);
  }
  return s3_query_int(r, "partNumber", 0, 1, KS_S3_MAX_PARTS,
                      &r->bop.part_number);
}

static ks_s3_code_t s3_prep_copy(s3_req_t *r)
{
  size_t n;
  const char *v = s3_header_get(r, "x-amz-copy-source", &n);
  ks_s3_code_t c = ks_s3_copy_source_parse(v, n, &r->src);
  if (c != KS_S3_OK)
    return c;
  r->bop.src = &r->src;
  s3_cond_parse(r, &r->src_cond, "x-amz-copy-source-");
  r->bop.src_cond = &r->src_cond;
  if (r->op == KS_S3_OP_UPLOAD_PART_COPY) {
    const char *rg = s3_header_get(r, "x-amz-copy-source-range", &n);
    /* the source's size is the backend's to check */
    if (rg != NULL)
      c = ks_s3_copy_range_parse(rg, n, UINT64_MAX, &r->bop.src_range);
    return c == KS_S3_OK ? s3_prep_upload(r) : c;
  }
  v = s3_header_get(r, "x-amz-metadata-directive", &n);
  c = ks_s3_directive_parse(v, n, &r->bop.directive);
  if (c != KS_S3_OK)
    return c;
  if (r->bop.directive == KS_S3_DIRECTIVE_REPLACE)
    return s3_attrs_parse(r);
  bool same = strcmp(r->src.bucket, r->target.bucket) == 0 &&
              r->src.key_len == r->target.key_len &&
              memcmp(r->src.key, r->target.key, r->src.key_len) == 0;
  return same ? KS_S3_INVALID_REQUEST : KS_S3_OK;
}

static ks_s3_code_t s3_prep_xml(s3_req_t *r)
{
  const void *body = s3_body_flat(r);
  if (body == NULL)
    return KS_S3_INTERNAL_ERROR;
  switch (r->op) {
  case KS_S3_OP_CREATE_BUCKET:
    return ks_s3_xml_parse_create_bucket(body, r->body_len, &r->region_in);
  case KS_S3_OP_DELETE_OBJECTS:
    r->bop.del = &r->del;
    return ks_s3_xml_parse_delete(body, r->body_len, &r->del);
  default:
    r->bop.complete = &r->complete;
    if (s3_prep_upload(r) != KS_S3_OK && r->upload_id == NULL)
      return KS_S3_INVALID_ARGUMENT;
    return ks_s3_xml_parse_complete(body, r->body_len, &r->complete);
  }
}

static ks_s3_code_t s3_prep_create_bucket(s3_req_t *r)
{
  ks_s3_code_t c = s3_prep_xml(r);
  if (c != KS_S3_OK)
    return c;
  /* The aws cli sends its pseudo-region "aws-global" when no region is
   * configured: take it to mean this server's region, as a user of a
   * single-region service expects, rather than fail `aws s3 mb`. */
  if (r->region_in && strcmp(r->region_in, "aws-global") == 0)
    r->region_in = NULL;
  r->bop.region = r->region_in;
  if (r->region_in && strcmp(r->region_in, r->srv->region) != 0)
    return KS_S3_INVALID_LOCATION_CONSTRAINT;
  return KS_S3_OK;
}

typedef struct s3_op_desc {
  ks_s3_code_t (*prep)(s3_req_t *r);
  ks_s3_bop_cb cb;
} s3_op_desc_t;

static ks_s3_code_t s3_prep_get(s3_req_t *r)
{
  s3_cond_parse(r, &r->cond, "");
  return KS_S3_OK;
}

static ks_s3_code_t s3_prep_put(s3_req_t *r)
{
  return r->op == KS_S3_OP_UPLOAD_PART ? s3_prep_upload(r) : s3_attrs_parse(r);
}

static ks_s3_code_t s3_prep_multipart_create(s3_req_t *r)
{
  return s3_attrs_parse(r);
}

static const s3_op_desc_t s3_ops[KS_S3_OP_COUNT] = {
    [KS_S3_OP_LIST_BUCKETS] = {NULL, s3_buckets_cb},
    [KS_S3_OP_CREATE_BUCKET] = {s3_prep_create_bucket, s3_empty_cb},
    [KS_S3_OP_HEAD_BUCKET] = {NULL, s3_empty_cb},
    [KS_S3_OP_DELETE_BUCKET] = {NULL, s3_empty_cb},
    [KS_S3_OP_GET_BUCKET_LOCATION] = {NULL, s3_location_cb},
    [KS_S3_OP_LIST_OBJECTS] = {s3_prep_list, s3_list_cb},
    [KS_S3_OP_LIST_OBJECTS_V2] = {s3_prep_list, s3_list_cb},
    [KS_S3_OP_LIST_MULTIPART_UPLOADS] = {s3_prep_list, s3_uploads_cb},
    [KS_S3_OP_DELETE_OBJECTS] = {s3_prep_xml, s3_delete_cb},
    [KS_S3_OP_PUT_OBJECT] = {s3_prep_put, s3_put_cb},
    [KS_S3_OP_COPY_OBJECT] = {s3_prep_copy, s3_copy_cb},
    [KS_S3_OP_GET_OBJECT] = {s3_prep_get, s3_get_cb},
    [KS_S3_OP_HEAD_OBJECT] = {s3_prep_get, s3_get_cb},
    [KS_S3_OP_DELETE_OBJECT] = {NULL, s3_empty_cb},
    [KS_S3_OP_CREATE_MULTIPART_UPLOAD] = {s3_prep_multipart_create,
                                          s3_initiate_cb},
    [KS_S3_OP_UPLOAD_PART] = {s3_prep_put, s3_put_cb},
    [KS_S3_OP_UPLOAD_PART_COPY] = {s3_prep_copy, s3_copy_cb},
    [KS_S3_OP_COMPLETE_MULTIPART_UPLOAD] = {s3_prep_xml, s3_complete_cb},
    [KS_S3_OP_ABORT_MULTIPART_UPLOAD] = {s3_prep_upload, s3_empty_cb},
    [KS_S3_OP_LIST_PARTS] = {s3_prep_upload, s3_parts_cb},
};

ks_s3_bop_fn s3_op_backend_fn(const ks_s3_backend_t *be, ks_s3_op_t op)
{
  const ks_s3_backend_ops_t *o = be->ops;
  switch (op) {
  case KS_S3_OP_LIST_BUCKETS:
    return o->list_buckets;
  case KS_S3_OP_CREATE_BUCKET:
    return o->create_bucket;
  case KS_S3_OP_HEAD_BUCKET:
    return o->head_bucket;
  case KS_S3_OP_DELETE_BUCKET:
    return o->delete_bucket;
  case KS_S3_OP_GET_BUCKET_LOCATION:
    return o->get_bucket_location;
  case KS_S3_OP_LIST_OBJECTS: /* v1 and v2: one backend entry */
  case KS_S3_OP_LIST_OBJECTS_V2:
    return o->list_objects;
  case KS_S3_OP_LIST_MULTIPART_UPLOADS:
    return o->list_multipart_uploads;
  case KS_S3_OP_DELETE_OBJECTS:
    return o->delete_objects;
  case KS_S3_OP_PUT_OBJECT:
    return o->put_object;
  case KS_S3_OP_COPY_OBJECT:
    return o->copy_object;
  case KS_S3_OP_GET_OBJECT:
    return o->read ? o->get_object : NULL;
  case KS_S3_OP_HEAD_OBJECT:
    return o->head_object;
  case KS_S3_OP_DELETE_OBJECT:
    return o->delete_object;
  case KS_S3_OP_CREATE_MULTIPART_UPLOAD:
    return o->create_multipart_upload;
  case KS_S3_OP_UPLOAD_PART:
    return o->upload_part;
  case KS_S3_OP_UPLOAD_PART_COPY:
    return o->upload_part_copy;
  case KS_S3_OP_COMPLETE_MULTIPART_UPLOAD:
    return o->complete_multipart_upload;
  case KS_S3_OP_ABORT_MULTIPART_UPLOAD:
    return o->abort_multipart_upload;
  case KS_S3_OP_LIST_PARTS:
    return o->list_parts;
  default:
    return NULL;
  }
}

void s3_op_start(s3_req_t *r)
{
  ks_s3_bop_t *op = &r->bop;
  const s3_op_desc_t *d = &s3_ops[r->op];
  op->bucket = r->target.bucket;
  op->key = r->target.key;
  op->key_len = r->target.key_len;
  op->list = &r->list;
  ks_s3_code_t c = d->prep ? d->prep(r) : KS_S3_OK;
  if (c != KS_S3_OK) {
    s3_reply_error(r, c, NULL);
    return;
  }
  s3_backend_call(r, s3_op_backend_fn(r->srv->be, r->op), d->cb);
}
