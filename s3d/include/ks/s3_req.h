/*
 * s3_req.h — what an S3 request means, independent of the HTTP server:
 * which bucket and key it addresses, which operation it is, and the
 * semantics of the headers that shape a GET or a copy (Range, the four
 * conditionals, x-amz-copy-source, x-amz-copy-source-range,
 * x-amz-metadata-directive), plus ETag and URL-encoding helpers.
 *
 * Everything here is a pure function of its arguments: no allocation
 * except into caller-provided buffers (ks_s3_target_t holds its bucket and
 * key inline), no global state, thread-safe.  Inputs are raw header and URI
 * bytes with explicit lengths (no NUL needed); every parser is fuzzed.
 *
 * Results are KS_S3_OK or the S3 error to answer (ks/s3_xml.h), following
 * AWS's behaviour where AWS and RFC 7233/7232 differ; each function says
 * which cases it refuses and which it ignores.
 */
#ifndef KS_S3_REQ_H
#define KS_S3_REQ_H

#include "ks/buf.h"
#include "ks/s3_xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KS_S3_BUCKET_MAX 63

/* ---- Addressing --------------------------------------------------------- */
typedef struct ks_s3_target {
  char bucket[KS_S3_BUCKET_MAX + 1]; /* "" when none */
  char key[KS_S3_MAX_KEY_LEN + 1];   /* decoded, NUL-terminated; "" if none */
  size_t key_len;
  bool virtual_host; /* the bucket came from the Host header */
} ks_s3_target_t;

/* AWS's bucket naming rules: 3-63 characters of a-z 0-9 . -, starting and
 * ending with a letter or digit, no "..", ".-" or "-.", not an IPv4
 * address, none of the reserved prefixes (xn--, sthree-) or suffixes
 * (-s3alias, --ol-s3). */
bool ks_s3_bucket_name_valid(const char *name, size_t n);

/* Valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). */
bool ks_s3_utf8_valid(const void *p, size_t n);

/* Find bucket and key.  host: the Host header (port ignored; may be NULL);
 * domain: the configured endpoint domain for virtual-hosted style
 * ("s3.example.com": "photos.s3.example.com" addresses bucket "photos"),
 * NULL or "" for path style only.  path: the raw request path
 * (percent-encoded, without the query).  In path style the first segment
 * is the bucket and the rest, decoded, the key ("/b/a%2Fb c" -> key
 * "a/b c"; '+' is a plus).  Errors: KS_S3_INVALID_URI (path not starting
 * with '/', a key that is not UTF-8 or holds NUL), KS_S3_INVALID_BUCKET_NAME,
 * KS_S3_KEY_TOO_LONG (above KS_S3_MAX_KEY_LEN bytes decoded). */
ks_s3_code_t ks_s3_target_parse(const char *host, size_t host_len,
                                const char *domain, const char *path,
                                size_t path_len, ks_s3_target_t *out);

/* ---- Query strings --------------------------------------------------------
 */
/* Decoded value of the first parameter called `name` (exact match) into
 * dst (size bytes, NUL added); '+' decodes to a space.  Returns the value
 * length, -ENOENT if absent, -ENOSPC if dst is too small. */
int ks_s3_query_get(const char *query, size_t query_len, const char *name,
                    char *dst, size_t size);
bool ks_s3_query_has(const char *query, size_t query_len, const char *name);

/* ---- Operations -----------------------------------------------------------
 */
// clang-format off
#define KS_S3_OPS(X)                                  \
  X(LIST_BUCKETS, "ListBuckets")                      \
  X(CREATE_BUCKET, "CreateBucket")                    \
  X(HEAD_BUCKET, "HeadBucket")                        \
  X(DELETE_BUCKET, "DeleteBucket")                    \
  X(GET_BUCKET_LOCATION, "GetBucketLocation")         \
  X(LIST_OBJECTS, "ListObjects")                      \
  X(LIST_OBJECTS_V2, "ListObjectsV2")                 \
  X(LIST_MULTIPART_UPLOADS, "ListMultipartUploads")   \
  X(DELETE_OBJECTS, "DeleteObjects")                  \
  X(PUT_OBJECT, "PutObject")                          \
  X(COPY_OBJECT, "CopyObject")                        \
  X(GET_OBJECT, "GetObject")                          \
  X(HEAD_OBJECT, "HeadObject")                        \
  X(DELETE_OBJECT, "DeleteObject")                    \
  X(CREATE_MULTIPART_UPLOAD, "CreateMultipartUpload") \
  X(UPLOAD_PART, "UploadPart")                        \
  X(UPLOAD_PART_COPY, "UploadPartCopy")               \
  X(COMPLETE_MULTIPART_UPLOAD, "CompleteMultipartUpload") \
  X(ABORT_MULTIPART_UPLOAD, "AbortMultipartUpload")   \
  X(LIST_PARTS, "ListParts")
// clang-format on

typedef enum ks_s3_op {
  KS_S3_OP_NONE = 0,
#define KS__S3_OP_ENUM(name, text) KS_S3_OP_##name,
  KS_S3_OPS(KS__S3_OP_ENUM)
#undef KS__S3_OP_ENUM
      KS_S3_OP_COUNT
} ks_s3_op_t;

/* "GetObject"; "None" for KS_S3_OP_NONE or an unknown value. */
const char *ks_s3_op_name(ks_s3_op_t op);

/* The operation for method + target + query.  copy_source: the request has
 * an x-amz-copy-source header (PUT object -> CopyObject, PUT part ->
 * UploadPartCopy).  A subresource this gateway does not implement (?acl,
 * ?tagging, ?versioning, ?policy, ...), POST object forms and OPTIONS give
 * KS_S3_NOT_IMPLEMENTED; other methods KS_S3_METHOD_NOT_ALLOWED; a part
 * upload with only one of uploadId and partNumber, or a partNumber outside
 * 1..10000, KS_S3_INVALID_ARGUMENT.  Query parameters that are not
 * subresources (prefix, x-id, response-*, ...) are ignored, as AWS does. */
ks_s3_code_t ks_s3_op_dispatch(const char *method, size_t method_len,
                               const ks_s3_target_t *t, const char *query,
                               size_t query_len, bool copy_source,
                               ks_s3_op_t *op);

/* ---- Range ----------------------------------------------------------------
 */
typedef struct ks_s3_range {
  uint64_t first;
  uint64_t len;
  bool partial; /* answer 206 with Content-Range */
} ks_s3_range_t;

/* Resolve a Range header against an object of `size` bytes.  hdr NULL:
 * the whole object.  "bytes=a-b", "bytes=a-", "bytes=-n" are honoured (b
 * clamped to size-1, n to size); a syntactically invalid header, another
 * unit, or several ranges are ignored (whole object, as AWS does);
 * KS_S3_INVALID_RANGE (416) when a >= size, n == 0, or the object is
 * empty. */
ks_s3_code_t ks_s3_range_resolve(const char *hdr, size_t n, uint64_t size,
                                 ks_s3_range_t *out);

/* x-amz-copy-source-range "bytes=first-last": strict; anything else, or a
 * range not inside the source's size, is KS_S3_INVALID_ARGUMENT. */
ks_s3_code_t ks_s3_copy_range_parse(const char *hdr, size_t n, uint64_t size,
                                    ks_s3_range_t *out);

/* ---- Conditionals ---------------------------------------------------------
 */
typedef struct ks_s3_cond {
  const char *if_match;
  const char *if_none_match;
  const char *if_modified_since;
  const char *if_unmodified_since;
  size_t if_match_len;
  size_t if_none_match_len;
  size_t if_modified_since_len;
  size_t if_unmodified_since_len;
} ks_s3_cond_t;

/* Evaluate against the object's quoted ETag and mtime, with AWS's
 * precedence (RFC 7232 section 6): If-Match decides over
 * If-Unmodified-Since, If-None-Match over If-Modified-Since.  Returns
 * KS_S3_OK (serve), KS_S3_PRECONDITION_FAILED (412) or KS_S3_NOT_MODIFIED
 * (304).  get_or_head false is for the x-amz-copy-source-if-* headers,
 * where AWS answers 412 for every condition that fails, If-None-Match and
 * If-Modified-Since included (RFC 7232's "ignore If-Modified-Since off
 * GET/HEAD" does not apply: AWS defines these headers for the copy).
 * Dates that do not parse as HTTP dates are ignored, as RFC 7232 says. */
ks_s3_code_t ks_s3_cond_eval(const ks_s3_cond_t *c, const char *etag,
                             int64_t mtime_s, bool get_or_head);

/* ---- Copy -----------------------------------------------------------------
 */
/* x-amz-copy-source: "[/]bucket/key" URL-encoded.  A versionId
 * (?versionId=...) or an access point ARN is refused with
 * KS_S3_INVALID_ARGUMENT (no versioning here), as is a missing key;
 * otherwise the errors of ks_s3_target_parse. */
ks_s3_code_t ks_s3_copy_source_parse(const char *v, size_t n,
                                     ks_s3_target_t *out);

typedef enum ks_s3_directive {
  KS_S3_DIRECTIVE_COPY = 0, /* the default when the header is absent */
  KS_S3_DIRECTIVE_REPLACE,
} ks_s3_directive_t;

/* x-amz-metadata-directive (v NULL: COPY).  Other values:
 * KS_S3_INVALID_ARGUMENT. */
ks_s3_code_t ks_s3_directive_parse(const char *v, size_t n,
                                   ks_s3_directive_t *out);

/* ---- ETags ----------------------------------------------------------------
 */
#define KS_S3_ETAG_MAX 48 /* "\"" 32 hex "-10000\"" and a NUL */

/* "\"<hex md5>\"" or, parts > 0, "\"<hex md5>-<parts>\"" (a multipart
 * object's ETag is the MD5 of its parts' binary MD5s, then -N).  Returns
 * the length or -ENOSPC. */
int ks_s3_etag_format(char *out, size_t size, const uint8_t md5[16], int parts);
/* The ETag without surrounding quotes (and without a W/ prefix). */
void ks_s3_etag_core(const char *s, size_t n, const char **core,
                     size_t *core_len);
/* Two ETags equal, quotes and W/ ignored. */
bool ks_s3_etag_equal(const char *a, size_t an, const char *b, size_t bn);

/* ---- URL encoding (encoding-type=url in listings) --------------------------
 */
/* Append s encoded as AWS does for encoding-type=url: unreserved
 * characters and '/' kept, space as '+', every other byte %XX.  0 or
 * -ENOMEM. */
int ks_s3_url_encode(ks_buf_t *out, const char *s, size_t n);

#endif /* KS_S3_REQ_H */
