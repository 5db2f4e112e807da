/*
 * s3_sigv4.c — AWS Signature Version 4 verification for S3 (ks/s3_sigv4.h).
 *
 * Layout, bottom up:
 *   1. percent-decoding and RFC 3986 re-encoding (the canonical forms);
 *   2. the canonical request: URI, sorted query, headers, payload hash;
 *   3. signing key derivation (with a per-thread cache) and signing;
 *   4. the two ways a request carries a signature: the Authorization
 *      header and presigned query parameters, each parsed into one
 *      sv_sig_t, then verified by one common path (sv_verify_sig);
 *   5. the aws-chunked body decoder, a byte-at-a-time framing state machine
 *      with a data fast path that hands out spans of the caller's buffer.
 *
 * Canonicalisation decodes what the client sent and re-encodes it the one
 * way SigV4 defines, rather than trusting the client's encoding: AWS's own
 * PUT example sends "test$file.text" and signs "/test%24file.text".  In the
 * path an encoded slash (%2F) stays encoded so that "a%2Fb" and "a/b" stay
 * different keys with different signatures.
 *
 * Every failure leaves a static message in the result for the error body;
 * the S3 code decides the HTTP status.  Secrets live on the stack of
 * sv_verify_sig and are wiped on every path out of it.
 */
#include "ks/s3_sigv4.h"

#include "ks/codec.h"
#include "ks/err.h"
#include "ks/time.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SV_ALGORITHM "AWS4-HMAC-SHA256"
#define SV_SIGNED_HEADERS_MAX 2048
#define SV_CREDENTIAL_MAX (KS_S3_ACCESS_KEY_MAX + 64)

/* ---- 1. Encoding ------------------------------------------------------- */

static bool sv_unreserved(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
}

/* The byte encoded by a %XX at s[i], or -1 if there is no valid escape
 * there (a stray '%' is then taken literally). */
static int sv_escape_at(const char *s, size_t n, size_t i)
{
  if (s[i] != '%' || i + 2 >= n)
    return -1;
  int hi = ks_hex_value(s[i + 1]), lo = ks_hex_value(s[i + 2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int sv_put_byte(ks_buf_t *b, unsigned char c)
{
  static const char hex[] = "0123456789ABCDEF";
  if (sv_unreserved(c))
    return ks_buf_append(b, &c, 1);
  char e[3] = {'%', hex[c >> 4], hex[c & 15]};
  return ks_buf_append(b, e, 3);
}

/* Append s[0..n) decoded then re-encoded.  in_path: a raw '/' stays, an
 * encoded one stays encoded. */
static int sv_append_canonical(ks_buf_t *b, const char *s, size_t n,
                               bool in_path)
{
  for (size_t i = 0; i < n; i++) {
    int rc, v = sv_escape_at(s, n, i);
    if (v >= 0)
      i += 2;
    if (in_path && v < 0 && s[i] == '/')
      rc = ks_buf_append(b, "/", 1);
    else
      rc = sv_put_byte(b, (unsigned char)(v >= 0 ? v : s[i]));
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Percent-decode s[0..n) into out (size bytes, NUL added).  -ENOSPC. */
static int sv_decode(char *out, size_t size, const char *s, size_t n)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int v = sv_escape_at(s, n, i);
    if (o + 1 >= size)
      return -ENOSPC;
    if (v >= 0) {
      out[o++] = (char)v;
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return (int)o;
}

static bool sv_eq(const char *a, size_t an, const char *b)
{
  return strlen(b) == an && memcmp(a, b, an) == 0;
}

static bool sv_ieq(const char *a, size_t an, const char *b)
{
  return strlen(b) == an && strncasecmp(a, b, an) == 0;
}

static bool sv_is_hex64(const char *s, size_t n)
{
  if (n != KS_S3_SIG_HEX_LEN)
    return false;
  for (size_t i = 0; i < n; i++)
    if (ks_hex_value(s[i]) < 0)
      return false;
  return true;
}

const ks_s3_header_t *ks_s3_header_find(const ks_s3_http_req_t *req,
                                        const char *name)
{
  for (size_t i = 0; i < req->nheaders; i++)
    if (sv_ieq(req->headers[i].name, req->headers[i].name_len, name))
      return &req->headers[i];
  return NULL;
}

/* ---- 2. Canonical request ------------------------------------------------ */

typedef struct sv_param {
  size_t name_off, value_off; /* into the encoded store, NUL-terminated */
} sv_param_t;

/* Sort by encoded name, then encoded value (byte order, as AWS). */
static int sv_param_cmp(const void *a, const void *b, void *base)
{
  const sv_param_t *x = a, *y = b;
  const char *s = base;
  int c = strcmp(s + x->name_off, s + y->name_off);
  return c ? c : strcmp(s + x->value_off, s + y->value_off);
}

/* Encode one "name[=value]" into store; skip it (return 1) when it is the
 * signature of a presigned URL. */
static int sv_param_add(ks_buf_t *store, sv_param_t *p, const char *s, size_t n,
                        bool skip_signature)
{
  const char *eq = memchr(s, '=', n);
  size_t nl = eq ? (size_t)(eq - s) : n;
  if (skip_signature && sv_eq(s, nl, "X-Amz-Signature"))
    return 1;
  p->name_off = store->len;
  int rc = sv_append_canonical(store, s, nl, false);
  rc = rc ? rc : ks_buf_append(store, "", 1);
  p->value_off = store->len;
  if (rc == 0 && eq)
    rc = sv_append_canonical(store, eq + 1, n - nl - 1, false);
  return rc ? rc : ks_buf_append(store, "", 1);
}

static int sv_query_parse(const ks_s3_http_req_t *req, bool skip_signature,
                          ks_buf_t *store, sv_param_t **out, size_t *count)
{
  size_t max = 1, n = 0;
  for (size_t i = 0; i < req->query_len; i++)
    max += req->query[i] == '&';
  sv_param_t *p = calloc(max, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  const char *s = req->query, *end = req->query + req->query_len;
  while (s < end) {
    const char *amp = memchr(s, '&', (size_t)(end - s));
    size_t len = amp ? (size_t)(amp - s) : (size_t)(end - s);
    int rc = len ? sv_param_add(store, &p[n], s, len, skip_signature) : 1;
    if (rc < 0) {
      free(p);
      return rc;
    }
    n += rc == 0;
    s += len + 1;
  }
  *out = p;
  *count = n;
  return 0;
}

static int sv_canonical_query(ks_buf_t *out, const ks_s3_http_req_t *req,
                              bool skip_signature)
{
  ks_buf_t store = KS_BUF_INIT;
  sv_param_t *p = NULL;
  size_t n = 0;
  int rc = sv_query_parse(req, skip_signature, &store, &p, &n);
  if (rc != 0)
    goto out;
  qsort_r(p, n, sizeof(*p), sv_param_cmp, store.data);
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *base = (const char *)store.data;
    rc = ks_buf_printf(out, "%s%s=%s", i ? "&" : "", base + p[i].name_off,
                       base + p[i].value_off);
  }
out:
  free(p);
  ks_buf_free(&store);
  return rc;
}

/* A header value trimmed, with runs of spaces and tabs made one space. */
static int sv_append_trimmed(ks_buf_t *b, const char *v, size_t n)
{
  size_t i = 0;
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  while (i < n && (v[i] == ' ' || v[i] == '\t'))
    i++;
  bool space = false;
  int rc = 0;
  for (; i < n && rc == 0; i++) {
    bool is_space = v[i] == ' ' || v[i] == '\t';
    if (!is_space && space)
      rc = ks_buf_append(b, " ", 1);
    if (!is_space && rc == 0)
      rc = ks_buf_append(b, &v[i], 1);
    space = is_space;
  }
  return rc;
}

/* "name:v1,v2\n" for every header called name (several are joined). */
static int sv_canonical_header(ks_buf_t *b, const ks_s3_http_req_t *req,
                               const char *name, size_t nl)
{
  int rc = ks_buf_append(b, name, nl);
  rc = rc ? rc : ks_buf_append(b, ":", 1);
  bool first = true;
  for (size_t i = 0; i < req->nheaders && rc == 0; i++) {
    const ks_s3_header_t *h = &req->headers[i];
    if (h->name_len != nl || strncasecmp(h->name, name, nl) != 0)
      continue;
    if (!first)
      rc = ks_buf_append(b, ",", 1);
    rc = rc ? rc : sv_append_trimmed(b, h->value, h->value_len);
    first = false;
  }
  return rc ? rc : ks_buf_append(b, "\n", 1);
}

int ks_s3_sigv4_canonical(ks_buf_t *out, const ks_s3_http_req_t *req,
                          bool skip_signature, const char *signed_headers,
                          size_t signed_len, const char *payload_hash)
{
  size_t start = out->len;
  int rc = ks_buf_append(out, req->method, req->method_len);
  rc = rc ? rc : ks_buf_append(out, "\n", 1);
  if (rc == 0 && req->path_len == 0)
    rc = ks_buf_append(out, "/", 1);
  rc = rc ? rc : sv_append_canonical(out, req->path, req->path_len, true);
  rc = rc ? rc : ks_buf_append(out, "\n", 1);
  rc = rc ? rc : sv_canonical_query(out, req, skip_signature);
  rc = rc ? rc : ks_buf_append(out, "\n", 1);
  const char *s = signed_headers, *end = signed_headers + signed_len;
  while (rc == 0 && s < end) {
    const char *semi = memchr(s, ';', (size_t)(end - s));
    size_t nl = semi ? (size_t)(semi - s) : (size_t)(end - s);
    rc = sv_canonical_header(out, req, s, nl);
    s += nl + 1;
  }
  rc = rc ? rc : ks_buf_append(out, "\n", 1);
  rc = rc ? rc : ks_buf_append(out, signed_headers, signed_len);
  rc = rc ? rc : ks_buf_append(out, "\n", 1);
  rc = rc ? rc : ks_buf_append_str(out, payload_hash);
  if (rc == 0 && out->len - start > KS_S3_CANONICAL_MAX)
    rc = KS_ETOOBIG;
  if (rc != 0)
    out->len = start;
  return rc;
}

/* ---- 3. Keys and signatures --------------------------------------------- */

int ks_s3_sigv4_signing_key(const char *secret, size_t secret_len,
                            const char *date8, const char *region,
                            const char *service,
                            uint8_t key[KS_HMAC_SHA256_LEN])
{
  uint8_t k[KS_S3_SECRET_MAX + 4];
  int rc = -EINVAL;
  if (secret_len > KS_S3_SECRET_MAX)
    goto out;
  memcpy(k, "AWS4", 4);
  memcpy(k + 4, secret, secret_len);
  const char *parts[] = {date8, region, service, "aws4_request"};
  rc = ks_hmac_sha256(k, secret_len + 4, parts[0], strlen(parts[0]), key);
  for (size_t i = 1; i < 4 && rc == 0; i++)
    rc = ks_hmac_sha256(key, KS_HMAC_SHA256_LEN, parts[i], strlen(parts[i]),
                        key);
out:
  ks_secure_zero(k, sizeof k);
  if (rc != 0)
    ks_secure_zero(key, KS_HMAC_SHA256_LEN);
  return rc;
}

static int sv_hmac_hex(const uint8_t key[KS_HMAC_SHA256_LEN], const void *msg,
                       size_t n, char hex[KS_S3_SIG_HEX_LEN + 1])
{
  uint8_t mac[KS_HMAC_SHA256_LEN];
  int rc = ks_hmac_sha256(key, KS_HMAC_SHA256_LEN, msg, n, mac);
  if (rc == 0 && ks_hex_encode(hex, KS_S3_SIG_HEX_LEN + 1, mac, sizeof mac) < 0)
    rc = KS_ECRYPTO;
  return rc;
}

static int sv_sha256_hex(const void *p, size_t n,
                         char hex[KS_S3_SIG_HEX_LEN + 1])
{
  uint8_t d[KS_SHA256_LEN];
  int rc = ks_sha256(p, n, d);
  if (rc == 0 && ks_hex_encode(hex, KS_S3_SIG_HEX_LEN + 1, d, sizeof d) < 0)
    rc = KS_ECRYPTO;
  return rc;
}

int ks_s3_sigv4_sign(const uint8_t key[KS_HMAC_SHA256_LEN],
                     const char *amz_date, const char *scope,
                     const void *canonical, size_t canonical_len,
                     char sig_hex[KS_S3_SIG_HEX_LEN + 1])
{
  char hash[KS_S3_SIG_HEX_LEN + 1];
  int rc = sv_sha256_hex(canonical, canonical_len, hash);
  if (rc != 0)
    return rc;
  ks_buf_t sts = KS_BUF_INIT;
  rc = ks_buf_printf(&sts, SV_ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash);
  if (rc == 0)
    rc = sv_hmac_hex(key, sts.data, sts.len, sig_hex);
  ks_buf_free(&sts);
  return rc;
}

void ks_s3_key_cache_clear(ks_s3_key_cache_t *c)
{
  ks_secure_zero(c, sizeof(*c));
}

static ks_s3_key_cache_slot_t *
sv_cache_find(ks_s3_key_cache_t *c, const char *akid,
              const uint8_t *secret_hash, const char *date8, const char *region)
{
  for (size_t i = 0; i < KS_S3_KEY_CACHE_SLOTS; i++) {
    ks_s3_key_cache_slot_t *s = &c->_slot[i];
    if (s->used && strcmp(s->akid, akid) == 0 && strcmp(s->date8, date8) == 0 &&
        strcmp(s->region, region) == 0 &&
        ks_ct_equal(s->secret_hash, secret_hash, KS_SHA256_LEN))
      return s;
  }
  return NULL;
}

/* The signing key, from the cache when the same key, secret, date and
 * region were seen before (a changed secret never matches an old slot). */
static int sv_key_get(ks_s3_key_cache_t *c, const char *akid,
                      const char *secret, size_t slen, const char *date8,
                      const char *region, const char *service,
                      uint8_t key[KS_HMAC_SHA256_LEN])
{
  uint8_t h[KS_SHA256_LEN];
  if (c == NULL || strlen(akid) > KS_S3_ACCESS_KEY_MAX ||
      strlen(region) > KS_S3_REGION_MAX || strcmp(service, "s3") != 0)
    return ks_s3_sigv4_signing_key(secret, slen, date8, region, service, key);
  int rc = ks_sha256(secret, slen, h);
  ks_s3_key_cache_slot_t *s =
      rc == 0 ? sv_cache_find(c, akid, h, date8, region) : NULL;
  if (s != NULL) {
    memcpy(key, s->key, KS_HMAC_SHA256_LEN);
  } else if (rc == 0) {
    rc = ks_s3_sigv4_signing_key(secret, slen, date8, region, service, key);
    s = &c->_slot[c->_next++ % KS_S3_KEY_CACHE_SLOTS];
    if (rc == 0) {
      memcpy(s->key, key, KS_HMAC_SHA256_LEN);
      memcpy(s->secret_hash, h, sizeof h);
      memcpy(s->akid, akid, strlen(akid) + 1);
      memcpy(s->region, region, strlen(region) + 1);
      memcpy(s->date8, date8, 9);
      s->used = true;
    }
  }
  ks_secure_zero(h, sizeof h);
  return rc;
}

/* ---- 4. Verification ---------------------------------------------------- */

/* A signature as carried by a request, whichever way. */
typedef struct sv_sig {
  char credential[SV_CREDENTIAL_MAX + 1];
  char signed_headers[SV_SIGNED_HEADERS_MAX + 1];
  char signature[KS_S3_SIG_HEX_LEN + 1];
  char amz_date[KS_TIME_AMZ_LEN + 1];
  char payload_hash[KS_S3_SIG_HEX_LEN + 1];
  /* parts of credential, split in place */
  const char *akid, *date8, *region, *service;
  int64_t date_s;
  int64_t expires_s; /* presigned only */
} sv_sig_t;

static ks_s3_code_t sv_fail(ks_s3_auth_t *out, ks_s3_code_t code,
                            const char *message)
{
  out->message = message;
  return code;
}

/* Split "AKID/20130524/us-east-1/s3/aws4_request" in place, from the
 * right, so that only the access key id is free-form. */
static bool sv_credential_split(sv_sig_t *s)
{
  char *part[4];
  char *end = s->credential + strlen(s->credential);
  for (int i = 3; i >= 0; i--) {
    char *slash = end;
    while (slash > s->credential && slash[-1] != '/')
      slash--;
    if (slash == s->credential)
      return false;
    part[i] = slash;
    slash[-1] = '\0';
    end = slash - 1;
  }
  s->akid = s->credential;
  s->date8 = part[0];
  s->region = part[1];
  s->service = part[2];
  size_t akid_len = strlen(s->akid);
  return akid_len > 0 && akid_len <= KS_S3_ACCESS_KEY_MAX &&
         strlen(s->date8) == 8 && strspn(s->date8, "0123456789") == 8 &&
         strlen(s->region) > 0 && strlen(s->region) <= KS_S3_REGION_MAX &&
         strcmp(part[3], "aws4_request") == 0;
}

static ks_s3_code_t sv_check_scope(const ks_s3_auth_cfg_t *cfg,
                                   const sv_sig_t *s, ks_s3_code_t malformed,
                                   ks_s3_auth_t *out)
{
  const char *service = cfg->service ? cfg->service : "s3";
  if (strcmp(s->service, service) != 0)
    return sv_fail(out, malformed, "The credential names the wrong service.");
  if (cfg->region && strcmp(s->region, cfg->region) != 0)
    return sv_fail(out, malformed, "The credential names the wrong region.");
  if (strncmp(s->date8, s->amz_date, 8) != 0)
    return sv_fail(out, malformed,
                   "Invalid credential date. Date is not the same as "
                   "X-Amz-Date.");
  return KS_S3_OK;
}

static ks_s3_code_t sv_lookup(const ks_s3_auth_cfg_t *cfg, const sv_sig_t *s,
                              char *secret, size_t *slen, ks_s3_auth_t *out)
{
  int rc = cfg->lookup(cfg->lookup_ctx, s->akid, strlen(s->akid), secret,
                       KS_S3_SECRET_MAX, slen);
  if (rc == -ENOENT)
    return sv_fail(out, KS_S3_INVALID_ACCESS_KEY_ID,
                   "The AWS access key Id you provided does not exist in our "
                   "records.");
  if (rc != 0 || *slen > KS_S3_SECRET_MAX)
    return sv_fail(out, KS_S3_INTERNAL_ERROR, "Credential lookup failed.");
  return KS_S3_OK;
}

/* Compute the expected signature of req under s and compare. */
static ks_s3_code_t sv_verify_sig(const ks_s3_auth_cfg_t *cfg,
                                  const ks_s3_http_req_t *req, sv_sig_t *s,
                                  ks_s3_auth_t *out)
{
  char secret[KS_S3_SECRET_MAX], sig[KS_S3_SIG_HEX_LEN + 1];
  size_t slen = 0;
  ks_buf_t canon = KS_BUF_INIT;
  ks_s3_code_t code = sv_lookup(cfg, s, secret, &slen, out);
  if (code != KS_S3_OK)
    goto out;
  snprintf(out->scope, sizeof out->scope, "%s/%s/%s/aws4_request", s->date8,
           s->region, s->service);
  code = sv_fail(out, KS_S3_INTERNAL_ERROR, "Signature computation failed.");
  if (sv_key_get(cfg->cache, s->akid, secret, slen, s->date8, s->region,
                 s->service, out->_signing_key) != 0)
    goto out;
  int rc = ks_s3_sigv4_canonical(&canon, req, out->presigned, s->signed_headers,
                                 strlen(s->signed_headers), s->payload_hash);
  if (rc == KS_ETOOBIG)
    code = sv_fail(out, KS_S3_INVALID_REQUEST, "The request is too large.");
  if (rc != 0 || ks_s3_sigv4_sign(out->_signing_key, s->amz_date, out->scope,
                                  canon.data, canon.len, sig) != 0)
    goto out;
  /* Clients send lower-case hex; compare that form in constant time. */
  for (size_t i = 0; i < KS_S3_SIG_HEX_LEN; i++)
    s->signature[i] = (char)(s->signature[i] | 0x20);
  if (!ks_ct_equal(sig, s->signature, KS_S3_SIG_HEX_LEN)) {
    code = sv_fail(out, KS_S3_SIGNATURE_DOES_NOT_MATCH,
                   ks_s3_code_message(KS_S3_SIGNATURE_DOES_NOT_MATCH));
    goto out;
  }
  memcpy(out->seed_signature, sig, sizeof sig);
  code = sv_fail(out, KS_S3_OK, "OK");
out:
  ks_secure_zero(secret, sizeof secret);
  ks_buf_free(&canon);
  if (code != KS_S3_OK)
    ks_secure_zero(out->_signing_key, sizeof out->_signing_key);
  return code;
}

/* Copy a header value into a fixed buffer; false if absent or too long. */
static bool sv_header_copy(const ks_s3_http_req_t *req, const char *name,
                           char *dst, size_t size)
{
  const ks_s3_header_t *h = ks_s3_header_find(req, name);
  if (h == NULL || h->value_len >= size)
    return false;
  memcpy(dst, h->value, h->value_len);
  dst[h->value_len] = '\0';
  return true;
}

/* x-amz-content-sha256 -> the payload kind; the value is signed as is. */
static ks_s3_code_t sv_payload(const char *v, bool presigned, ks_s3_auth_t *out)
{
  size_t n = strlen(v);
  if (strcmp(v, KS_S3_UNSIGNED_PAYLOAD) == 0) {
    out->payload = KS_S3_PAYLOAD_UNSIGNED;
  } else if (strcmp(v, KS_S3_STREAMING_PAYLOAD) == 0 && !presigned) {
    out->payload = KS_S3_PAYLOAD_STREAMING;
  } else if (strncmp(v, "STREAMING-", 10) == 0) {
    return sv_fail(out, KS_S3_NOT_IMPLEMENTED,
                   "This x-amz-content-sha256 payload mode is not "
                   "implemented.");
  } else if (sv_is_hex64(v, n) &&
             ks_hex_decode(out->payload_sha256, KS_SHA256_LEN, v, n) ==
                 KS_SHA256_LEN) {
    out->payload = KS_S3_PAYLOAD_SIGNED;
  } else {
    return sv_fail(out, KS_S3_INVALID_ARGUMENT,
                   "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                   "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 "
                   "value.");
  }
  return KS_S3_OK;
}

/* The request date: X-Amz-Date, else the HTTP Date header. */
static ks_s3_code_t sv_header_date(const ks_s3_http_req_t *req, sv_sig_t *s,
                                   ks_s3_auth_t *out)
{
  const ks_s3_header_t *h = ks_s3_header_find(req, "x-amz-date");
  int rc;
  if (h != NULL) {
    rc = ks_time_parse_amz(h->value, h->value_len, &s->date_s);
  } else if ((h = ks_s3_header_find(req, "date")) != NULL) {
    rc = ks_time_parse_http(h->value, h->value_len, &s->date_s);
  } else {
    return sv_fail(out, KS_S3_ACCESS_DENIED,
                   "AWS authentication requires a valid Date or x-amz-date "
                   "header");
  }
  if (rc != 0 || ks_time_format_amz(s->amz_date, sizeof s->amz_date,
                                    s->date_s) != KS_TIME_AMZ_LEN)
    return sv_fail(out, KS_S3_ACCESS_DENIED,
                   "AWS authentication requires a valid Date or x-amz-date "
                   "header");
  return KS_S3_OK;
}

/* Copy "Key=value" (value up to ',' or end) into dst. */
static bool sv_auth_field(const char *p, size_t n, const char *key, char *dst,
                          size_t size)
{
  size_t kl = strlen(key);
  if (n <= kl || memcmp(p, key, kl) != 0 || p[kl] != '=')
    return false;
  if (n - kl - 1 >= size)
    return false;
  memcpy(dst, p + kl + 1, n - kl - 1);
  dst[n - kl - 1] = '\0';
  return true;
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
static bool sv_auth_parse(const char *v, size_t n, sv_sig_t *s)
{
  size_t al = strlen(SV_ALGORITHM), i;
  if (n <= al || memcmp(v, SV_ALGORITHM, al) != 0 || v[al] != ' ')
    return false;
  bool cred = false, sh = false, sig = false;
  for (i = al; i < n;) {
    while (i < n && (v[i] == ' ' || v[i] == ','))
      i++;
    size_t j = i;
    while (j < n && v[j] != ',' && v[j] != ' ')
      j++;
    if (j == i)
      break;
    const char *f = v + i;
    size_t fl = j - i;
    bool ok =
        (!cred && (cred = sv_auth_field(f, fl, "Credential", s->credential,
                                        sizeof s->credential))) ||
        (!sh && (sh = sv_auth_field(f, fl, "SignedHeaders", s->signed_headers,
                                    sizeof s->signed_headers))) ||
        (!sig && (sig = sv_auth_field(f, fl, "Signature", s->signature,
                                      sizeof s->signature)));
    if (!ok)
      return false;
    i = j;
  }
  return cred && sh && sig && sv_is_hex64(s->signature, strlen(s->signature));
}

static bool sv_signed_has(const char *list, const char *name)
{
  size_t nl = strlen(name);
  for (const char *p = list; *p;) {
    size_t l = strcspn(p, ";");
    if (l == nl && memcmp(p, name, nl) == 0)
      return true;
    p += l + (p[l] == ';');
  }
  return false;
}

static ks_s3_code_t sv_check_skew(const sv_sig_t *s, int64_t now_s,
                                  ks_s3_auth_t *out)
{
  int64_t d = s->date_s - now_s;
  if (d > KS_S3_SKEW_MAX_S || d < -KS_S3_SKEW_MAX_S)
    return sv_fail(out, KS_S3_REQUEST_TIME_TOO_SKEWED,
                   ks_s3_code_message(KS_S3_REQUEST_TIME_TOO_SKEWED));
  return KS_S3_OK;
}

static ks_s3_code_t sv_verify_header(const ks_s3_auth_cfg_t *cfg,
                                     const ks_s3_http_req_t *req,
                                     const ks_s3_header_t *auth, int64_t now_s,
                                     ks_s3_auth_t *out)
{
  sv_sig_t s = {0};
  ks_s3_code_t code;
  if (auth->value_len >= 4 && memcmp(auth->value, "AWS ", 4) == 0)
    return sv_fail(out, KS_S3_INVALID_REQUEST,
                   "The authorization mechanism you have provided is not "
                   "supported. Please use AWS4-HMAC-SHA256.");
  if (!sv_auth_parse(auth->value, auth->value_len, &s) ||
      !sv_credential_split(&s))
    return sv_fail(out, KS_S3_AUTH_HEADER_MALFORMED,
                   ks_s3_code_message(KS_S3_AUTH_HEADER_MALFORMED));
  if (!sv_signed_has(s.signed_headers, "host"))
    return sv_fail(out, KS_S3_AUTH_HEADER_MALFORMED,
                   "The host header must be signed.");
  if (!sv_header_copy(req, "x-amz-content-sha256", s.payload_hash,
                      sizeof s.payload_hash))
    return sv_fail(out, KS_S3_INVALID_REQUEST,
                   "Missing required header for this request: "
                   "x-amz-content-sha256");
  if ((code = sv_payload(s.payload_hash, false, out)) != KS_S3_OK ||
      (code = sv_header_date(req, &s, out)) != KS_S3_OK ||
      (code = sv_check_scope(cfg, &s, KS_S3_AUTH_HEADER_MALFORMED, out)) !=
          KS_S3_OK ||
      (code = sv_check_skew(&s, now_s, out)) != KS_S3_OK)
    return code;
  snprintf(out->access_key, sizeof out->access_key, "%s", s.akid);
  memcpy(out->amz_date, s.amz_date, sizeof s.amz_date);
  return sv_verify_sig(cfg, req, &s, out);
}

/* Value of query parameter `name` (exact, case-sensitive), decoded. */
static int sv_query_get(const ks_s3_http_req_t *req, const char *name,
                        char *dst, size_t size)
{
  const char *s = req->query, *end = req->query + req->query_len;
  while (s < end) {
    const char *amp = memchr(s, '&', (size_t)(end - s));
    size_t len = amp ? (size_t)(amp - s) : (size_t)(end - s);
    const char *eq = memchr(s, '=', len);
    size_t nl = eq ? (size_t)(eq - s) : len;
    if (sv_eq(s, nl, name))
      return eq ? sv_decode(dst, size, eq + 1, len - nl - 1)
                : sv_decode(dst, size, "", 0);
    s += len + 1;
  }
  return -ENOENT;
}

static bool sv_is_presigned(const ks_s3_http_req_t *req)
{
  char v[8];
  const char *names[] = {"X-Amz-Algorithm", "X-Amz-Credential",
                         "X-Amz-Signature"};
  for (size_t i = 0; i < 3; i++)
    if (sv_query_get(req, names[i], v, sizeof v) != -ENOENT)
      return true;
  return false;
}

static ks_s3_code_t sv_presign_params(const ks_s3_http_req_t *req, sv_sig_t *s,
                                      ks_s3_auth_t *out)
{
  char alg[32], expires[16];
  ks_s3_code_t bad = KS_S3_AUTH_QUERY_ERROR;
  if (sv_query_get(req, "X-Amz-Algorithm", alg, sizeof alg) < 0 ||
      strcmp(alg, SV_ALGORITHM) != 0)
    return sv_fail(out, bad,
                   "X-Amz-Algorithm only supports "
                   "\"AWS4-HMAC-SHA256\"");
  if (sv_query_get(req, "X-Amz-Credential", s->credential,
                   sizeof s->credential) < 0 ||
      sv_query_get(req, "X-Amz-SignedHeaders", s->signed_headers,
                   sizeof s->signed_headers) < 0 ||
      sv_query_get(req, "X-Amz-Signature", s->signature, sizeof s->signature) !=
          KS_S3_SIG_HEX_LEN ||
      !sv_is_hex64(s->signature, KS_S3_SIG_HEX_LEN) ||
      sv_query_get(req, "X-Amz-Date", s->amz_date, sizeof s->amz_date) < 0 ||
      ks_time_parse_amz(s->amz_date, strlen(s->amz_date), &s->date_s) != 0 ||
      !sv_credential_split(s))
    return sv_fail(out, bad,
                   "Query-string authentication requires the X-Amz-Algorithm, "
                   "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                   "X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
  int el = sv_query_get(req, "X-Amz-Expires", expires, sizeof expires);
  if (el <= 0 || el > 7 || strspn(expires, "0123456789") != (size_t)el)
    return sv_fail(out, bad, "X-Amz-Expires should be a number");
  s->expires_s = strtol(expires, NULL, 10);
  if (s->expires_s > KS_S3_PRESIGN_MAX_S)
    return sv_fail(out, bad,
                   "X-Amz-Expires must be less than a week (in "
                   "seconds) that is; 604800 seconds");
  return KS_S3_OK;
}

static ks_s3_code_t sv_verify_presigned(const ks_s3_auth_cfg_t *cfg,
                                        const ks_s3_http_req_t *req,
                                        int64_t now_s, ks_s3_auth_t *out)
{
  sv_sig_t s = {0};
  ks_s3_code_t code;
  out->presigned = true;
  if ((code = sv_presign_params(req, &s, out)) != KS_S3_OK ||
      (code = sv_check_scope(cfg, &s, KS_S3_AUTH_QUERY_ERROR, out)) != KS_S3_OK)
    return code;
  if (!sv_signed_has(s.signed_headers, "host"))
    return sv_fail(out, KS_S3_AUTH_QUERY_ERROR,
                   "The host header must be signed.");
  if (s.date_s - now_s > KS_S3_SKEW_MAX_S)
    return sv_fail(out, KS_S3_ACCESS_DENIED, "Request is not valid yet");
  if (now_s > s.date_s + s.expires_s)
    return sv_fail(out, KS_S3_ACCESS_DENIED, "Request has expired");
  if (!sv_header_copy(req, "x-amz-content-sha256", s.payload_hash,
                      sizeof s.payload_hash))
    memcpy(s.payload_hash, KS_S3_UNSIGNED_PAYLOAD,
           sizeof KS_S3_UNSIGNED_PAYLOAD);
  if ((code = sv_payload(s.payload_hash, true, out)) != KS_S3_OK)
    return code;
  snprintf(out->access_key, sizeof out->access_key, "%s", s.akid);
  memcpy(out->amz_date, s.amz_date, sizeof s.amz_date);
  return sv_verify_sig(cfg, req, &s, out);
}

ks_s3_code_t ks_s3_auth_verify(const ks_s3_auth_cfg_t *cfg,
                               const ks_s3_http_req_t *req, int64_t now_s,
                               ks_s3_auth_t *out)
{
  assert(cfg->lookup != NULL);
  memset(out, 0, sizeof(*out));
  out->message = "OK";
  const ks_s3_header_t *auth = ks_s3_header_find(req, "authorization");
  bool presigned = sv_is_presigned(req);
  if (auth != NULL && presigned)
    return sv_fail(out, KS_S3_INVALID_ARGUMENT,
                   "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                   "query parameter, Signature query string parameter or the "
                   "Authorization header should be specified");
  if (auth != NULL)
    return sv_verify_header(cfg, req, auth, now_s, out);
  if (presigned)
    return sv_verify_presigned(cfg, req, now_s, out);
  return sv_fail(out, KS_S3_ACCESS_DENIED, "Access Denied");
}

void ks_s3_auth_clear(ks_s3_auth_t *a)
{
  ks_secure_zero(a->_signing_key, sizeof a->_signing_key);
}

/* ---- 5. aws-chunked decoder --------------------------------------------- */

enum {
  SV_ST_LINE = 0, /* reading "size;chunk-signature=...\r\n" */
  SV_ST_DATA,     /* _left bytes of data */
  SV_ST_CR,       /* the CR after the data */
  SV_ST_LF,       /* the LF after the data */
  SV_ST_DONE,
  SV_ST_FAILED,
};

static ks_s3_code_t sv_chunk_fail(ks_s3_chunked_t *d, ks_s3_code_t code,
                                  const char *message)
{
  d->_state = SV_ST_FAILED;
  d->_err = code;
  d->message = message;
  return code;
}

int ks_s3_chunked_init(ks_s3_chunked_t *d, const ks_s3_auth_t *auth,
                       uint64_t expected_len, uint64_t chunk_max,
                       ks_s3_chunk_data_cb cb, void *cb_ctx)
{
  assert(auth->payload == KS_S3_PAYLOAD_STREAMING);
  memset(d, 0, sizeof(*d));
  int rc = ks_hash_init(&d->_sha, KS_HASH_SHA256);
  if (rc != 0)
    return rc;
  memcpy(d->_key, auth->_signing_key, sizeof d->_key);
  memcpy(d->_prev, auth->seed_signature, sizeof d->_prev);
  memcpy(d->_date, auth->amz_date, sizeof d->_date);
  memcpy(d->_scope, auth->scope, sizeof d->_scope);
  d->_expected = expected_len;
  d->_chunk_max = chunk_max ? chunk_max : KS_S3_CHUNK_MAX_DEFAULT;
  d->_cb = cb;
  d->_cb_ctx = cb_ctx;
  d->message = "OK";
  return 0;
}

void ks_s3_chunked_free(ks_s3_chunked_t *d)
{
  ks_hash_free(&d->_sha);
  ks_secure_zero(d->_key, sizeof d->_key);
}

/* The chunk that just ended: check its signature and chain it. */
static ks_s3_code_t sv_chunk_verify(ks_s3_chunked_t *d)
{
  uint8_t digest[KS_SHA256_LEN];
  char hash[KS_S3_SIG_HEX_LEN + 1], sig[KS_S3_SIG_HEX_LEN + 1];
  ks_buf_t sts = KS_BUF_INIT;
  int rc = ks_hash_final(&d->_sha, digest);
  ks_hash_free(&d->_sha);
  rc = rc ? rc : ks_hash_init(&d->_sha, KS_HASH_SHA256);
  if (rc == 0 && ks_hex_encode(hash, sizeof hash, digest, sizeof digest) < 0)
    rc = KS_ECRYPTO;
  rc = rc ? rc
          : ks_buf_printf(&sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s",
                          d->_date, d->_scope, d->_prev, KS_S3_EMPTY_SHA256,
                          hash);
  rc = rc ? rc : sv_hmac_hex(d->_key, sts.data, sts.len, sig);
  ks_buf_free(&sts);
  if (rc != 0)
    return sv_chunk_fail(d, KS_S3_INTERNAL_ERROR, "Chunk hashing failed.");
  if (!ks_ct_equal(sig, d->_want, KS_S3_SIG_HEX_LEN))
    return sv_chunk_fail(d, KS_S3_SIGNATURE_DOES_NOT_MATCH,
                         "The chunk signature does not match.");
  memcpy(d->_prev, sig, sizeof sig);
  return KS_S3_OK;
}

/* A complete header line (without CRLF) is in _line. */
static ks_s3_code_t sv_chunk_header(ks_s3_chunked_t *d)
{
  static const char ext[] = ";chunk-signature=";
  const char *l = d->_line;
  size_t n = d->_line_len, hex = 0;
  uint64_t size = 0;
  while (hex < n && hex < 16 && ks_hex_value(l[hex]) >= 0)
    size = size * 16 + (uint64_t)ks_hex_value(l[hex++]);
  if (hex == 0 || n != hex + sizeof ext - 1 + KS_S3_SIG_HEX_LEN ||
      memcmp(l + hex, ext, sizeof ext - 1) != 0 ||
      !sv_is_hex64(l + n - KS_S3_SIG_HEX_LEN, KS_S3_SIG_HEX_LEN))
    return sv_chunk_fail(d, KS_S3_INVALID_REQUEST,
                         "Malformed aws-chunked frame header.");
  if (size > d->_chunk_max)
    return sv_chunk_fail(d, KS_S3_ENTITY_TOO_LARGE, "The chunk is too large.");
  if (d->_expected != UINT64_MAX && size > d->_expected - d->_total)
    return sv_chunk_fail(d, KS_S3_INCOMPLETE_BODY,
                         "The chunks exceed x-amz-decoded-content-length.");
  for (size_t i = 0; i < KS_S3_SIG_HEX_LEN; i++)
    d->_want[i] = (char)(l[n - KS_S3_SIG_HEX_LEN + i] | 0x20);
  d->_left = size;
  d->_last = size == 0;
  d->_line_len = 0;
  d->_state = size ? SV_ST_DATA : SV_ST_CR;
  return size ? KS_S3_OK : sv_chunk_verify(d);
}

static ks_s3_code_t sv_chunk_line_byte(ks_s3_chunked_t *d, char c)
{
  if (c != '\n') {
    if (d->_line_len + 1 >= sizeof d->_line)
      return sv_chunk_fail(d, KS_S3_INVALID_REQUEST,
                           "aws-chunked frame header too long.");
    d->_line[d->_line_len++] = c;
    return KS_S3_OK;
  }
  if (d->_line_len == 0 || d->_line[d->_line_len - 1] != '\r')
    return sv_chunk_fail(d, KS_S3_INVALID_REQUEST,
                         "aws-chunked frame header must end with CRLF.");
  d->_line_len--;
  return sv_chunk_header(d);
}

static ks_s3_code_t sv_chunk_end_byte(ks_s3_chunked_t *d, char c)
{
  if (c != (d->_state == SV_ST_CR ? '\r' : '\n'))
    return sv_chunk_fail(d, KS_S3_INVALID_REQUEST,
                         "aws-chunked data must be followed by CRLF.");
  if (d->_state == SV_ST_CR) {
    d->_state = SV_ST_LF;
    return KS_S3_OK;
  }
  d->_state = d->_last ? SV_ST_DONE : SV_ST_LINE;
  if (d->_last && d->_expected != UINT64_MAX && d->_total != d->_expected)
    return sv_chunk_fail(d, KS_S3_INCOMPLETE_BODY,
                         "The chunks do not add up to "
                         "x-amz-decoded-content-length.");
  return KS_S3_OK;
}

/* Pass up to n data bytes on; returns how many were taken. */
static size_t sv_chunk_data(ks_s3_chunked_t *d, const char *p, size_t n,
                            ks_s3_code_t *code)
{
  size_t take = n < d->_left ? n : (size_t)d->_left;
  if (ks_hash_update(&d->_sha, p, take) != 0) {
    *code = sv_chunk_fail(d, KS_S3_INTERNAL_ERROR, "Chunk hashing failed.");
    return take;
  }
  if (d->_cb && d->_cb(d->_cb_ctx, p, take) != 0) {
    *code = sv_chunk_fail(d, KS_S3_INTERNAL_ERROR, "Storing the body failed.");
    return take;
  }
  d->_left -= take;
  d->_total += take;
  if (d->_left == 0) {
    d->_state = SV_ST_CR;
    *code = sv_chunk_verify(d);
  }
  return take;
}

ks_s3_code_t ks_s3_chunked_feed(ks_s3_chunked_t *d, const void *buf, size_t n)
{
  const char *p = buf;
  ks_s3_code_t code = KS_S3_OK;
  size_t i = 0;
  while (i < n && code == KS_S3_OK) {
    switch (d->_state) {
    case SV_ST_LINE:
      code = sv_chunk_line_byte(d, p[i++]);
      break;
    case SV_ST_DATA:
      i += sv_chunk_data(d, p + i, n - i, &code);
      break;
    case SV_ST_CR:
    case SV_ST_LF:
      code = sv_chunk_end_byte(d, p[i++]);
      break;
    case SV_ST_DONE:
      return sv_chunk_fail(d, KS_S3_INVALID_REQUEST,
                           "Data after the final aws-chunked frame.");
    default:
      return d->_err;
    }
  }
  return d->_state == SV_ST_FAILED ? d->_err : code;
}

bool ks_s3_chunked_done(const ks_s3_chunked_t *d)
{
  return d->_state == SV_ST_DONE;
}

ks_s3_code_t ks_s3_chunked_finish(ks_s3_chunked_t *d)
{
  if (d->_state == SV_ST_DONE)
    return KS_S3_OK;
  if (d->_state == SV_ST_FAILED)
    return d->_err;
  return sv_chunk_fail(d, KS_S3_INCOMPLETE_BODY,
                       "The body ended before the final aws-chunked frame.");
}
