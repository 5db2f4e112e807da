/*
 * s3_req.c — interpreting S3 requests (ks/s3_req.h): addressing, operation
 * dispatch, Range, conditionals, copy headers, ETags.
 *
 * Dispatch is a decision on (method, has bucket, has key, subresource):
 * the subresources this gateway serves are tested first, then a table of
 * the ones AWS defines and we do not implement answers NotImplemented, and
 * anything else in the query is an ordinary parameter and ignored, since
 * SDKs add their own (botocore's x-id=GetObject).
 *
 * Range and conditionals follow what AWS does rather than the letter of
 * RFC 7233: a header that does not parse is ignored (whole object), a
 * multi-range request is served whole, and only a first byte past the end
 * (or a zero suffix, or any range of an empty object) is a 416.
 */
#include "ks/s3_req.h"

#include "ks/codec.h"
#include "ks/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Bytes and text -------------------------------------------------- */

/* Percent-decode s[0..n) into dst (size bytes, NUL added); plus_space:
 * '+' means ' ' (query strings).  Returns the length or -ENOSPC; a stray
 * '%' is kept literally. */
static int rq_decode(char *dst, size_t size, const char *s, size_t n,
                     bool plus_space)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int hi = i + 2 < n ? ks_hex_value(s[i + 1]) : -1;
    int lo = i + 2 < n ? ks_hex_value(s[i + 2]) : -1;
    if (c == '%' && hi >= 0 && lo >= 0) {
      c = (char)(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_space) {
      c = ' ';
    }
    if (o + 1 >= size)
      return -ENOSPC;
    dst[o++] = c;
  }
  dst[o] = '\0';
  return (int)o;
}

/* Length of the UTF-8 sequence starting at p (n bytes left), 0 if bad. */
static size_t rq_utf8_seq(const unsigned char *p, size_t n)
{
  unsigned c = p[0];
  size_t len = c < 0x80   ? 1
               : c < 0xC2 ? 0
               : c < 0xE0 ? 2
               : c < 0xF0 ? 3
               : c < 0xF5 ? 4
                          : 0;
  if (len == 0 || len > n)
    return 0;
  for (size_t i = 1; i < len; i++)
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  if (len == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)))
    return 0; /* overlong, or a UTF-16 surrogate */
  if (len == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)))
    return 0; /* overlong, or above U+10FFFF */
  return len;
}

bool ks_s3_utf8_valid(const void *p, size_t n)
{
  const unsigned char *s = p;
  for (size_t i = 0; i < n;) {
    size_t l = rq_utf8_seq(s + i, n - i);
    if (l == 0)
      return false;
    i += l;
  }
  return true;
}

/* ---- Addressing ------------------------------------------------------- */

static bool rq_is_ipv4(const char *s, size_t n)
{
  int dots = 0, digits = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '.') {
      if (digits == 0)
        return false;
      dots++;
      digits = 0;
    } else if (s[i] >= '0' && s[i] <= '9' && digits < 3) {
      digits++;
    } else {
      return false;
    }
  }
  return dots == 3 && digits > 0;
}

static bool rq_ends_with(const char *s, size_t n, const char *suffix)
{
  size_t l = strlen(suffix);
  return n >= l && memcmp(s + n - l, suffix, l) == 0;
}

bool ks_s3_bucket_name_valid(const char *name, size_t n)
{
  if (n < 3 || n > KS_S3_BUCKET_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '.' && c != '-')
      return false;
    /* each dot-separated label starts and ends with a letter or digit */
    if (!alnum && (i == 0 || i == n - 1))
      return false;
    if (c == '.' && (name[i - 1] == '.' || name[i - 1] == '-' ||
                     name[i + 1] == '.' || name[i + 1] == '-'))
      return false;
  }
  return !rq_is_ipv4(name, n) && strncmp(name, "xn--", 4) != 0 &&
         strncmp(name, "sthree-", 7) != 0 &&
         !rq_ends_with(name, n, "-s3alias") &&
         !rq_ends_with(name, n, "--ol-s3");
}

/* The bucket part of a virtual-hosted Host, or 0 if host is not one. */
static size_t rq_vhost_bucket(const char *host, size_t host_len,
                              const char *domain)
{
  if (host == NULL || domain == NULL || domain[0] == '\0')
    return 0;
  const char *colon = memchr(host, ':', host_len);
  size_t hl = colon ? (size_t)(colon - host) : host_len;
  size_t dl = strlen(domain);
  if (hl <= dl + 1 || host[hl - dl - 1] != '.' ||
      strncasecmp(host + hl - dl, domain, dl) != 0)
    return 0;
  return hl - dl - 1;
}

static ks_s3_code_t rq_set_bucket(ks_s3_target_t *out, const char *b, size_t n,
                                  bool decode)
{
  char tmp[KS_S3_BUCKET_MAX + 2];
  int len = decode ? rq_decode(tmp, sizeof tmp, b, n, false) : -ENOSPC;
  if (!decode && n < sizeof tmp) {
    for (size_t i = 0; i < n; i++) /* DNS names are case-insensitive */
      tmp[i] = (b[i] >= 'A' && b[i] <= 'Z') ? (char)(b[i] | 0x20) : b[i];
    tmp[n] = '\0';
    len = (int)n;
  }
  if (len < 0 || !ks_s3_bucket_name_valid(tmp, (size_t)len))
    return KS_S3_INVALID_BUCKET_NAME;
  memcpy(out->bucket, tmp, (size_t)len + 1);
  return KS_S3_OK;
}

static ks_s3_code_t rq_set_key(ks_s3_target_t *out, const char *k, size_t n)
{
  int len = rq_decode(out->key, sizeof out->key, k, n, false);
  if (len < 0) {
    out->key[0] = '\0';
    return KS_S3_KEY_TOO_LONG;
  }
  out->key_len = (size_t)len;
  if (memchr(out->key, '\0', out->key_len) != NULL ||
      !ks_s3_utf8_valid(out->key, out->key_len)) {
    out->key[0] = '\0';
    out->key_len = 0;
    return KS_S3_INVALID_URI;
  }
  return KS_S3_OK;
}

ks_s3_code_t ks_s3_target_parse(const char *host, size_t host_len,
                                const char *domain, const char *path,
                                size_t path_len, ks_s3_target_t *out)
{
  memset(out, 0, sizeof(*out));
  if (path_len == 0 || path[0] != '/')
    return KS_S3_INVALID_URI;
  size_t bl = rq_vhost_bucket(host, host_len, domain);
  if (bl > 0) {
    out->virtual_host = true;
    ks_s3_code_t code = rq_set_bucket(out, host, bl, false);
    return code ? code : rq_set_key(out, path + 1, path_len - 1);
  }
  const char *b = path + 1, *end = path + path_len;
  const char *slash = memchr(b, '/', (size_t)(end - b));
  size_t n = slash ? (size_t)(slash - b) : (size_t)(end - b);
  if (n == 0)
    return slash ? KS_S3_INVALID_URI : KS_S3_OK; /* "/" lists buckets */
  ks_s3_code_t code = rq_set_bucket(out, b, n, true);
  if (code != KS_S3_OK || slash == NULL)
    return code;
  return rq_set_key(out, slash + 1, (size_t)(end - slash - 1));
}

/* ---- Query ------------------------------------------------------------ */

/* Find parameter `name`; sets the raw value span.  false if absent. */
static bool rq_query_find(const char *q, size_t qn, const char *name,
                          const char **val, size_t *vlen)
{
  size_t nl = strlen(name);
  const char *s = q, *end = q + qn;
  while (s < end) {
    const char *amp = memchr(s, '&', (size_t)(end - s));
    size_t len = amp ? (size_t)(amp - s) : (size_t)(end - s);
    const char *eq = memchr(s, '=', len);
    size_t kl = eq ? (size_t)(eq - s) : len;
    if (kl == nl && memcmp(s, name, nl) == 0) {
      *val = eq ? eq + 1 : s + len;
      *vlen = eq ? len - kl - 1 : 0;
      return true;
    }
    s += len + 1;
  }
  return false;
}

int ks_s3_query_get(const char *query, size_t query_len, const char *name,
                    char *dst, size_t size)
{
  const char *v;
  size_t vl;
  if (query == NULL || !rq_query_find(query, query_len, name, &v, &vl))
    return -ENOENT;
  return rq_decode(dst, size, v, vl, true);
}

bool ks_s3_query_has(const char *query, size_t query_len, const char *name)
{
  const char *v;
  size_t vl;
  return query != NULL && rq_query_find(query, query_len, name, &v, &vl);
}

/* ---- Dispatch -------------------------------------------------------------
 */

const char *ks_s3_op_name(ks_s3_op_t op)
{
  switch (op) {
#define KS__S3_OP_NAME(name, text) \
  case KS_S3_OP_##name:            \
    return text;
    KS_S3_OPS(KS__S3_OP_NAME)
#undef KS__S3_OP_NAME
  default:
    return "None";
  }
}

/* Subresources AWS defines that this gateway does not implement. */
static const char *const rq_unsupported[] = {"accelerate",
                                             "acl",
                                             "analytics",
                                             "attributes",
                                             "cors",
                                             "encryption",
                                             "intelligent-tiering",
                                             "inventory",
                                             "legal-hold",
                                             "lifecycle",
                                             "logging",
                                             "metadataConfiguration",
                                             "metrics",
                                             "notification",
                                             "object-lock",
                                             "ownershipControls",
                                             "policy",
                                             "policyStatus",
                                             "publicAccessBlock",
                                             "renameObject",
                                             "replication",
                                             "requestPayment",
                                             "restore",
                                             "retention",
                                             "select",
                                             "session",
                                             "tagging",
                                             "torrent",
                                             "versioning",
                                             "versions",
                                             "website"};

static bool rq_unsupported_sub(const char *q, size_t qn)
{
  for (size_t i = 0; i < sizeof rq_unsupported / sizeof *rq_unsupported; i++)
    if (ks_s3_query_has(q, qn, rq_unsupported[i]))
      return true;
  return false;
}

typedef struct rq_ctx {
  const char *q;
  size_t qn;
  bool copy;
} rq_ctx_t;

static bool rq_has(const rq_ctx_t *c, const char *name)
{
  return ks_s3_query_has(c->q, c->qn, name);
}

static ks_s3_code_t rq_bucket_op(const char *m, const rq_ctx_t *c,
                                 ks_s3_op_t *op)
{
  char lt[8];
  if (strcmp(m, "HEAD") == 0)
    *op = KS_S3_OP_HEAD_BUCKET;
  else if (strcmp(m, "GET") == 0 && rq_has(c, "location"))
    *op = KS_S3_OP_GET_BUCKET_LOCATION;
  else if (strcmp(m, "GET") == 0 && rq_has(c, "uploads"))
    *op = KS_S3_OP_LIST_MULTIPART_UPLOADS;
  else if (strcmp(m, "POST") == 0 && rq_has(c, "delete"))
    *op = KS_S3_OP_DELETE_OBJECTS;
  else if (rq_unsupported_sub(c->q, c->qn) || strcmp(m, "POST") == 0)
    return KS_S3_NOT_IMPLEMENTED;
  else if (strcmp(m, "GET") == 0)
    *op = ks_s3_query_get(c->q, c->qn, "list-type", lt, sizeof lt) == 1 &&
                  lt[0] == '2'
              ? KS_S3_OP_LIST_OBJECTS_V2
              : KS_S3_OP_LIST_OBJECTS;
  else if (strcmp(m, "PUT") == 0)
    *op = KS_S3_OP_CREATE_BUCKET;
  else if (strcmp(m, "DELETE") == 0)
    *op = KS_S3_OP_DELETE_BUCKET;
  else
    return KS_S3_METHOD_NOT_ALLOWED;
  return KS_S3_OK;
}

/* PUT with ?partNumber and ?uploadId: UploadPart or UploadPartCopy. */
static ks_s3_code_t rq_part_op(const rq_ctx_t *c, ks_s3_op_t *op)
{
  char pn[8];
  bool has_pn = rq_has(c, "partNumber"), has_id = rq_has(c, "uploadId");
  if (has_pn != has_id)
    return KS_S3_INVALID_ARGUMENT;
  int l = ks_s3_query_get(c->q, c->qn, "partNumber", pn, sizeof pn);
  if (l <= 0 || l > 5 || strspn(pn, "0123456789") != (size_t)l ||
      pn[0] == '0' || strtol(pn, NULL, 10) > KS_S3_MAX_PARTS)
    return KS_S3_INVALID_ARGUMENT;
  *op = c->copy ? KS_S3_OP_UPLOAD_PART_COPY : KS_S3_OP_UPLOAD_PART;
  return KS_S3_OK;
}

/* POST on an object: multipart creation and completion only. */
static ks_s3_code_t rq_post_object_op(const rq_ctx_t *c, ks_s3_op_t *op)
{
  if (rq_has(c, "uploads"))
    *op = KS_S3_OP_CREATE_MULTIPART_UPLOAD;
  else if (rq_has(c, "uploadId"))
    *op = KS_S3_OP_COMPLETE_MULTIPART_UPLOAD;
  else
    return KS_S3_NOT_IMPLEMENTED; /* restore, select, POST forms */
  return KS_S3_OK;
}

static ks_s3_code_t rq_object_op(const char *m, const rq_ctx_t *c,
                                 ks_s3_op_t *op)
{
  bool upload = rq_has(c, "uploadId");
  if (strcmp(m, "HEAD") == 0)
    *op = KS_S3_OP_HEAD_OBJECT;
  else if (rq_unsupported_sub(c->q, c->qn))
    return KS_S3_NOT_IMPLEMENTED;
  else if (strcmp(m, "GET") == 0)
    *op = upload ? KS_S3_OP_LIST_PARTS : KS_S3_OP_GET_OBJECT;
  else if (strcmp(m, "PUT") == 0 && (upload || rq_has(c, "partNumber")))
    return rq_part_op(c, op);
  else if (strcmp(m, "PUT") == 0)
    *op = c->copy ? KS_S3_OP_COPY_OBJECT : KS_S3_OP_PUT_OBJECT;
  else if (strcmp(m, "POST") == 0)
    return rq_post_object_op(c, op);
  else if (strcmp(m, "DELETE") == 0)
    *op = upload ? KS_S3_OP_ABORT_MULTIPART_UPLOAD : KS_S3_OP_DELETE_OBJECT;
  else
    return KS_S3_METHOD_NOT_ALLOWED;
  return KS_S3_OK;
}

ks_s3_code_t ks_s3_op_dispatch(const char *method, size_t method_len,
                               const ks_s3_target_t *t, const char *query,
                               size_t query_len, bool copy_source,
                               ks_s3_op_t *op)
{
  char m[8];
  rq_ctx_t c = {query ? query : "", query ? query_len : 0, copy_source};
  *op = KS_S3_OP_NONE;
  if (method_len == 0 || method_len >= sizeof m)
    return KS_S3_METHOD_NOT_ALLOWED;
  memcpy(m, method, method_len);
  m[method_len] = '\0';
  if (strcmp(m, "OPTIONS") == 0)
    return KS_S3_NOT_IMPLEMENTED; /* CORS preflight */
  if (t->bucket[0] == '\0') {
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)
      return KS_S3_METHOD_NOT_ALLOWED;
    *op = KS_S3_OP_LIST_BUCKETS;
    return KS_S3_OK;
  }
  if (t->key_len == 0)
    return rq_bucket_op(m, &c, op);
  return rq_object_op(m, &c, op);
}

/* ---- Range ----------------------------------------------------------------
 */

/* Digits at s[*i..n) as a saturating uint64; false if there are none. */
static bool rq_number(const char *s, size_t n, size_t *i, uint64_t *v)
{
  size_t start = *i;
  *v = 0;
  for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
    uint64_t d = (uint64_t)(s[*i] - '0');
    *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
  }
  return *i > start;
}

typedef struct rq_spec {
  uint64_t a, b;
  bool has_a, has_b;
} rq_spec_t;

/* "bytes=a-b" | "bytes=a-" | "bytes=-n", one range only. */
static bool rq_range_syntax(const char *s, size_t n, rq_spec_t *r)
{
  size_t i = 6;
  if (n < 7 || memcmp(s, "bytes=", 6) != 0)
    return false;
  r->has_a = rq_number(s, n, &i, &r->a);
  if (i >= n || s[i++] != '-')
    return false;
  r->has_b = rq_number(s, n, &i, &r->b);
  if (i != n || (!r->has_a && !r->has_b))
    return false;
  return !(r->has_a && r->has_b && r->b < r->a);
}

ks_s3_code_t ks_s3_range_resolve(const char *hdr, size_t n, uint64_t size,
                                 ks_s3_range_t *out)
{
  rq_spec_t r = {0};
  *out = (ks_s3_range_t){0, size, false};
  if (hdr == NULL || !rq_range_syntax(hdr, n, &r))
    return KS_S3_OK;
  if (size == 0)
    return KS_S3_INVALID_RANGE;
  if (!r.has_a) { /* suffix: the last b bytes */
    if (r.b == 0)
      return KS_S3_INVALID_RANGE;
    uint64_t len = r.b < size ? r.b : size;
    *out = (ks_s3_range_t){size - len, len, true};
    return KS_S3_OK;
  }
  if (r.a >= size)
    return KS_S3_INVALID_RANGE;
  uint64_t last = r.has_b && r.b < size ? r.b : size - 1;
  *out = (ks_s3_range_t){r.a, last - r.a + 1, true};
  return KS_S3_OK;
}

ks_s3_code_t ks_s3_copy_range_parse(const char *hdr, size_t n, uint64_t size,
                                    ks_s3_range_t *out)
{
  rq_spec_t r = {0};
  if (!rq_range_syntax(hdr, n, &r) || !r.has_a || !r.has_b || r.b >= size)
    return KS_S3_INVALID_ARGUMENT;
  *out = (ks_s3_range_t){r.a, r.b - r.a + 1, true};
  return KS_S3_OK;
}

/* ---- Conditionals ---------------------------------------------------------
 */

void ks_s3_etag_core(const char *s, size_t n, const char **core,
                     size_t *core_len)
{
  if (n >= 2 && s[0] == 'W' && s[1] == '/') {
    s += 2;
    n -= 2;
  }
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
    s++;
    n -= 2;
  }
  *core = s;
  *core_len = n;
}

bool ks_s3_etag_equal(const char *a, size_t an, const char *b, size_t bn)
{
  const char *ca, *cb;
  size_t la, lb;
  ks_s3_etag_core(a, an, &ca, &la);
  ks_s3_etag_core(b, bn, &cb, &lb);
  return la == lb && memcmp(ca, cb, la) == 0;
}

/* Does the list "a", W/"b", * name etag? */
static bool rq_etag_list_match(const char *list, size_t n, const char *etag)
{
  for (size_t i = 0; i < n;) {
    while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
      i++;
    size_t j = i;
    while (j < n && list[j] != ',')
      j++;
    size_t e = j;
    while (e > i && (list[e - 1] == ' ' || list[e - 1] == '\t'))
      e--;
    if (e > i && ((e - i == 1 && list[i] == '*') ||
                  ks_s3_etag_equal(list + i, e - i, etag, strlen(etag))))
      return true;
    i = j;
  }
  return false;
}

static bool rq_date(const char *s, size_t n, int64_t *t)
{
  return s != NULL && ks_time_parse_http(s, n, t) == 0;
}

ks_s3_code_t ks_s3_cond_eval(const ks_s3_cond_t *c, const char *etag,
                             int64_t mtime_s, bool get_or_head)
{
  int64_t t;
  if (c->if_match != NULL) {
    if (!rq_etag_list_match(c->if_match, c->if_match_len, etag))
      return KS_S3_PRECONDITION_FAILED;
  } else if (rq_date(c->if_unmodified_since, c->if_unmodified_since_len, &t) &&
             mtime_s > t) {
    return KS_S3_PRECONDITION_FAILED;
  }
  if (c->if_none_match != NULL) {
    if (rq_etag_list_match(c->if_none_match, c->if_none_match_len, etag))
      return get_or_head ? KS_S3_NOT_MODIFIED : KS_S3_PRECONDITION_FAILED;
  } else if (rq_date(c->if_modified_since, c->if_modified_since_len, &t) &&
             mtime_s <= t) {
    return get_or_head ? KS_S3_NOT_MODIFIED : KS_S3_PRECONDITION_FAILED;
  }
  return KS_S3_OK;
}

/* ---- Copy -----------------------------------------------------------------
 */

ks_s3_code_t ks_s3_copy_source_parse(const char *v, size_t n,
                                     ks_s3_target_t *out)
{
  char path[3 * (KS_S3_MAX_KEY_LEN + KS_S3_BUCKET_MAX) + 8] = {'/'};
  memset(out, 0, sizeof(*out));
  const char *q = memchr(v, '?', n);
  if (q != NULL) {
    /* Only versionId may follow, and there are no versions here. */
    return KS_S3_INVALID_ARGUMENT;
  }
  if (n > 0 && v[0] == '/') {
    v++;
    n--;
  }
  if (n >= 4 && memcmp(v, "arn:", 4) == 0)
    return KS_S3_INVALID_ARGUMENT;
  if (n + 1 > sizeof path)
    return KS_S3_KEY_TOO_LONG;
  memcpy(path + 1, v, n);
  ks_s3_code_t code = ks_s3_target_parse(NULL, 0, NULL, path, n + 1, out);
  if (code == KS_S3_OK && (out->bucket[0] == '\0' || out->key_len == 0))
    return KS_S3_INVALID_ARGUMENT;
  return code;
}

ks_s3_code_t ks_s3_directive_parse(const char *v, size_t n,
                                   ks_s3_directive_t *out)
{
  *out = KS_S3_DIRECTIVE_COPY;
  if (v == NULL || (n == 4 && memcmp(v, "COPY", 4) == 0))
    return KS_S3_OK;
  if (n == 7 && memcmp(v, "REPLACE", 7) == 0) {
    *out = KS_S3_DIRECTIVE_REPLACE;
    return KS_S3_OK;
  }
  return KS_S3_INVALID_ARGUMENT;
}

/* ---- ETags and URL encoding ---------------------------------------------- */

int ks_s3_etag_format(char *out, size_t size, const uint8_t md5[16], int parts)
{
  char hex[33];
  if (ks_hex_encode(hex, sizeof hex, md5, 16) < 0)
    return -ENOSPC;
  int n = parts > 0 ? snprintf(out, size, "\"%s-%d\"", hex, parts)
                    : snprintf(out, size, "\"%s\"", hex);
  return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

int ks_s3_url_encode(ks_buf_t *out, const char *s, size_t n)
{
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                c == '~' || c == '/';
    char e[3] = {'%', hex[c >> 4], hex[c & 15]};
    int rc = keep       ? ks_buf_append(out, &c, 1)
             : c == ' ' ? ks_buf_append(out, "+", 1)
                        : ks_buf_append(out, e, 3);
    if (rc != 0)
      return rc;
  }
  return 0;
}
