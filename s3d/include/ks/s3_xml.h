/*
 * s3_xml.h — S3's error vocabulary and the XML bodies of S3 requests and
 * responses, on libxml2.
 *
 * Errors.  Every S3 failure is answered with an HTTP status and an XML body
 * naming one of AWS's error codes (NoSuchKey, SignatureDoesNotMatch, ...).
 * KS_S3_ERRORS is the one table of those codes: the enum ks_s3_code_t, the
 * code text, the HTTP status and a default message all come from it, so the
 * protocol layer (s3_sigv4.h, s3_req.h) returns a ks_s3_code_t and the
 * server turns it into a response with ks_s3_xml_error().  KS_S3_OK (0) means
 * "no error"; KS_S3_NOT_MODIFIED is in the table because conditional GETs
 * answer 304 through the same path (with no body).
 *
 * Writers.  Each ks_s3_xml_write_* takes a plain struct describing the
 * answer and appends a complete document (XML declaration included) to a
 * ks_buf_t.  They return 0, -ENOMEM, or KS_EPARSE when a string is not
 * UTF-8 text that XML 1.0 can carry (C0 controls other than tab, CR and LF
 * cannot be: list such keys with encoding-type=url).  On failure the buffer's
 * length is restored (nothing partial stays appended).  Times are seconds
 * (int64) since the epoch, printed as AWS does ("2013-05-24T00:00:00.000Z").
 * ETags are given as the caller stores them (quoted, "\"abc\"") and
 * written unchanged.  When `encoding_url` is set in a listing, keys,
 * prefixes, delimiter and markers are URL-encoded (ks_s3_url_encode) and
 * <EncodingType>url</EncodingType> is written, as AWS does for
 * encoding-type=url.
 *
 * Parsers.  Request bodies are parsed with XML_PARSE_NONET and without
 * entity substitution or DTD loading; any document with a DOCTYPE is
 * refused before libxml2 sees it (no entity expansion, no external
 * fetches); a body above KS_S3_XML_MAX_BODY is refused with
 * KS_S3_MAX_MESSAGE_LENGTH_EXCEEDED.  Parsers return
 * KS_S3_OK or the S3 error to answer (KS_S3_MALFORMED_XML for anything
 * that is not the expected shape, KS_S3_INTERNAL_ERROR when memory runs
 * out).  Parsed results are owned by the caller and freed with the matching
 * *_free function, which is safe on a zeroed struct and after a failed
 * parse.
 *
 * Threads: all functions are reentrant; ks_s3_xml_init() must run once
 * before threads are started (libxml2's xmlInitParser()), and the server
 * calls it at start-up.  It is idempotent.
 */
#ifndef KS_S3_XML_H
#define KS_S3_XML_H

#include "ks/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- The S3 error table --------------------------------------------- */
/* name, code text, HTTP status, default message */
// clang-format off
#define KS_S3_ERRORS(X)                                                        \
  X(ACCESS_DENIED, "AccessDenied", 403, "Access Denied")                       \
  X(AUTH_HEADER_MALFORMED, "AuthorizationHeaderMalformed", 400,                \
    "The authorization header is malformed.")                                  \
  X(AUTH_QUERY_ERROR, "AuthorizationQueryParametersError", 400,                \
    "Error parsing the X-Amz-Credential parameter.")                           \
  X(BAD_DIGEST, "BadDigest", 400,                                              \
    "The Content-MD5 or checksum you specified did not match what we received.") \
  X(BUCKET_ALREADY_EXISTS, "BucketAlreadyExists", 409,                         \
    "The requested bucket name is not available.")                             \
  X(BUCKET_ALREADY_OWNED_BY_YOU, "BucketAlreadyOwnedByYou", 409,               \
    "Your previous request to create the named bucket succeeded and you already own it.") \
  X(BUCKET_NOT_EMPTY, "BucketNotEmpty", 409,                                   \
    "The bucket you tried to delete is not empty.")                            \
  X(ENTITY_TOO_LARGE, "EntityTooLarge", 400,                                   \
    "Your proposed upload exceeds the maximum allowed object size.")           \
  X(ENTITY_TOO_SMALL, "EntityTooSmall", 400,                                   \
    "Your proposed upload is smaller than the minimum allowed object size.")   \
  X(INCOMPLETE_BODY, "IncompleteBody", 400,                                    \
    "You did not provide the number of bytes specified by the Content-Length HTTP header.") \
  X(INTERNAL_ERROR, "InternalError", 500,                                      \
    "We encountered an internal error. Please try again.")                     \
  X(INVALID_ACCESS_KEY_ID, "InvalidAccessKeyId", 403,                          \
    "The AWS access key Id you provided does not exist in our records.")       \
  X(INVALID_ARGUMENT, "InvalidArgument", 400, "Invalid Argument")              \
  X(INVALID_BUCKET_NAME, "InvalidBucketName", 400,                             \
    "The specified bucket is not valid.")                                      \
  X(INVALID_DIGEST, "InvalidDigest", 400,                                      \
    "The Content-MD5 you specified is not valid.")                             \
  X(INVALID_LOCATION_CONSTRAINT, "InvalidLocationConstraint", 400,             \
    "The specified location constraint is not valid.")                         \
  X(INVALID_PART, "InvalidPart", 400,                                          \
    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.") \
  X(INVALID_PART_ORDER, "InvalidPartOrder", 400,                               \
    "The list of parts was not in ascending order. Parts must be ordered by part number.") \
  X(INVALID_RANGE, "InvalidRange", 416,                                        \
    "The requested range is not satisfiable")                                  \
  X(INVALID_REQUEST, "InvalidRequest", 400, "Invalid Request")                 \
  X(INVALID_STORAGE_CLASS, "InvalidStorageClass", 400,                         \
    "The storage class you specified is not valid.")                           \
  X(INVALID_URI, "InvalidURI", 400, "Couldn't parse the specified URI.")       \
  X(KEY_TOO_LONG, "KeyTooLongError", 400, "Your key is too long.")             \
  X(MALFORMED_XML, "MalformedXML", 400,                                        \
    "The XML you provided was not well-formed or did not validate against our published schema.") \
  X(MAX_MESSAGE_LENGTH_EXCEEDED, "MaxMessageLengthExceeded", 400,              \
    "Your request was too big.")                                               \
  X(METADATA_TOO_LARGE, "MetadataTooLarge", 400,                               \
    "Your metadata headers exceed the maximum allowed metadata size.")         \
  X(METHOD_NOT_ALLOWED, "MethodNotAllowed", 405,                               \
    "The specified method is not allowed against this resource.")              \
  X(MISSING_CONTENT_LENGTH, "MissingContentLength", 411,                       \
    "You must provide the Content-Length HTTP header.")                        \
  X(MISSING_REQUEST_BODY, "MissingRequestBodyError", 400,                      \
    "Request Body is empty.")                                                  \
  X(MISSING_SECURITY_HEADER, "MissingSecurityHeader", 400,                     \
    "Your request is missing a required header.")                              \
  X(NO_SUCH_BUCKET, "NoSuchBucket", 404, "The specified bucket does not exist.") \
  X(NO_SUCH_KEY, "NoSuchKey", 404, "The specified key does not exist.")        \
  X(NO_SUCH_UPLOAD, "NoSuchUpload", 404,                                       \
    "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.") \
  X(NOT_IMPLEMENTED, "NotImplemented", 501,                                    \
    "A header or query you provided implies functionality that is not implemented.") \
  X(NOT_MODIFIED, "NotModified", 304, "Not Modified")                          \
  X(PRECONDITION_FAILED, "PreconditionFailed", 412,                            \
    "At least one of the pre-conditions you specified did not hold")           \
  X(REQUEST_HEADER_TOO_LARGE, "RequestHeaderSectionTooLarge", 400,             \
    "Your request header section exceeds the maximum allowed size.")           \
  X(REQUEST_TIMEOUT, "RequestTimeout", 400,                                    \
    "Your socket connection to the server was not read from or written to within the timeout period.") \
  X(REQUEST_TIME_TOO_SKEWED, "RequestTimeTooSkewed", 403,                      \
    "The difference between the request time and the current time is too large.") \
  X(SERVICE_UNAVAILABLE, "ServiceUnavailable", 503,                            \
    "Please reduce your request rate.")                                        \
  X(SIGNATURE_DOES_NOT_MATCH, "SignatureDoesNotMatch", 403,                    \
    "The request signature we calculated does not match the signature you provided. Check your key and signing method.") \
  X(SLOW_DOWN, "SlowDown", 503, "Please reduce your request rate.")           \
  X(UNEXPECTED_CONTENT, "UnexpectedContent", 400,                              \
    "This request does not support content.")                                  \
  X(USER_KEY_MUST_BE_SPECIFIED, "UserKeyMustBeSpecified", 400,                 \
    "The bucket POST must contain the specified field name. If it is specified, check the order of the fields.") \
  X(CONTENT_SHA256_MISMATCH, "XAmzContentSHA256Mismatch", 400,                 \
    "The provided 'x-amz-content-sha256' header does not match what was computed.")
// clang-format on

typedef enum ks_s3_code {
  KS_S3_OK = 0,
#define KS__S3_ENUM(name, text, status, msg) KS_S3_##name,
  KS_S3_ERRORS(KS__S3_ENUM)
#undef KS__S3_ENUM
      KS_S3_CODE_COUNT
} ks_s3_code_t;

/* "NoSuchKey"; "OK" for KS_S3_OK; "InternalError" for an unknown value.
 * Static strings, never NULL. */
const char *ks_s3_code_name(ks_s3_code_t code);
/* HTTP status: 200 for KS_S3_OK, 500 for an unknown value. */
int ks_s3_code_status(ks_s3_code_t code);
/* AWS's default message for the code. */
const char *ks_s3_code_message(ks_s3_code_t code);

/* ---- Set-up ---------------------------------------------------------- */
void ks_s3_xml_init(void);

/* ---- Error body ------------------------------------------------------ */
/* <Error><Code/><Message/><Resource/><RequestId/></Error>.  message NULL
 * means the table's default; resource and request_id may be NULL (the
 * element is then left out). */
int ks_s3_xml_error(ks_buf_t *out, ks_s3_code_t code, const char *message,
                    const char *resource, const char *request_id);

/* ---- Response writers ------------------------------------------------ */
typedef struct ks_s3_owner {
  const char *id;           /* NULL: no <Owner> element */
  const char *display_name; /* NULL: no <DisplayName> */
} ks_s3_owner_t;

typedef struct ks_s3_bucket_entry {
  const char *name;
  int64_t created_s;
} ks_s3_bucket_entry_t;

int ks_s3_xml_write_buckets(ks_buf_t *out, const ks_s3_owner_t *owner,
                            const ks_s3_bucket_entry_t *buckets, size_t n);

typedef struct ks_s3_object_entry {
  const char *key;
  const char *etag;          /* quoted */
  const char *storage_class; /* NULL: "STANDARD" */
  uint64_t size;
  int64_t modified_s;
} ks_s3_object_entry_t;

typedef struct ks_s3_list_result {
  const char *bucket;
  const char *prefix;                  /* NULL written as empty */
  const char *delimiter;               /* NULL: element left out */
  const char *marker;                  /* v1 */
  const char *next_marker;             /* v1, NULL: left out */
  const char *continuation_token;      /* v2, NULL: left out */
  const char *next_continuation_token; /* v2, NULL: left out */
  const char *start_after;             /* v2, NULL: left out */
  const ks_s3_object_entry_t *contents;
  const char *const *common_prefixes;
  const ks_s3_owner_t *owner; /* v1 always, v2 with fetch-owner; may be NULL */
  size_t ncontents;
  size_t nprefixes;
  int max_keys;
  bool v2;
  bool is_truncated;
  bool encoding_url;
} ks_s3_list_result_t;

int ks_s3_xml_write_list(ks_buf_t *out, const ks_s3_list_result_t *r);

int ks_s3_xml_write_initiate(ks_buf_t *out, const char *bucket, const char *key,
                             const char *upload_id);
int ks_s3_xml_write_complete(ks_buf_t *out, const char *location,
                             const char *bucket, const char *key,
                             const char *etag);

typedef struct ks_s3_part_entry {
  const char *etag;
  uint64_t size;
  int64_t modified_s;
  int number;
} ks_s3_part_entry_t;

typedef struct ks_s3_parts_result {
  const char *bucket;
  const char *key;
  const char *upload_id;
  const ks_s3_owner_t *owner; /* Initiator and Owner; may be NULL */
  const ks_s3_part_entry_t *parts;
  size_t nparts;
  int part_number_marker;
  int next_part_number_marker;
  int max_parts;
  bool is_truncated;
} ks_s3_parts_result_t;

int ks_s3_xml_write_parts(ks_buf_t *out, const ks_s3_parts_result_t *r);

typedef struct ks_s3_upload_entry {
  const char *key;
  const char *upload_id;
  int64_t initiated_s;
} ks_s3_upload_entry_t;

typedef struct ks_s3_uploads_result {
  const char *bucket;
  const char *key_marker;
  const char *upload_id_marker;
  const char *next_key_marker;       /* NULL: left out */
  const char *next_upload_id_marker; /* NULL: left out */
  const char *prefix;
  const char *delimiter; /* NULL: left out */
  const ks_s3_upload_entry_t *uploads;
  const char *const *common_prefixes;
  const ks_s3_owner_t *owner;
  size_t nuploads;
  size_t nprefixes;
  int max_uploads;
  bool is_truncated;
  bool encoding_url;
} ks_s3_uploads_result_t;

int ks_s3_xml_write_uploads(ks_buf_t *out, const ks_s3_uploads_result_t *r);

/* CopyObjectResult (part == false) or CopyPartResult (part == true). */
int ks_s3_xml_write_copy(ks_buf_t *out, bool part, const char *etag,
                         int64_t modified_s);

typedef struct ks_s3_delete_entry {
  const char *key;
  ks_s3_code_t code;   /* KS_S3_OK: <Deleted>, else <Error> */
  const char *message; /* NULL: the table's message */
} ks_s3_delete_entry_t;

/* quiet: leave the <Deleted> entries out (errors are always written). */
int ks_s3_xml_write_delete(ks_buf_t *out, bool quiet,
                           const ks_s3_delete_entry_t *e, size_t n);

/* <LocationConstraint>: empty for us-east-1 (or NULL), as AWS answers. */
int ks_s3_xml_write_location(ks_buf_t *out, const char *region);

/* ---- Request parsers -------------------------------------------------- */
/* Bodies above this are refused before parsing.  The largest legitimate
 * one is a CompleteMultipartUpload of 10,000 parts, each about 100 bytes of
 * XML (AWS itself caps request XML near 1 MiB). */
#define KS_S3_XML_MAX_BODY (2u * 1024 * 1024)
#define KS_S3_MAX_PARTS 10000
#define KS_S3_MAX_DELETE 1000
#define KS_S3_MAX_KEY_LEN 1024

typedef struct ks_s3_complete_part {
  char *etag; /* as sent (quotes kept); NUL-terminated */
  int number;
} ks_s3_complete_part_t;

typedef struct ks_s3_complete_req {
  ks_s3_complete_part_t *parts;
  size_t nparts;
} ks_s3_complete_req_t;

/* Parts in document order.  Malformed XML, no parts, more than
 * KS_S3_MAX_PARTS, a number outside 1..10000, a missing ETag:
 * KS_S3_MALFORMED_XML.  Order and duplicates are not judged here (the
 * caller answers InvalidPartOrder with the stored parts at hand). */
ks_s3_code_t ks_s3_xml_parse_complete(const void *body, size_t len,
                                      ks_s3_complete_req_t *out);
void ks_s3_complete_req_free(ks_s3_complete_req_t *r);

typedef struct ks_s3_delete_req {
  char **keys; /* NUL-terminated; may contain any UTF-8 */
  size_t nkeys;
  bool quiet;
} ks_s3_delete_req_t;

/* <Delete><Quiet/>?<Object><Key/><VersionId/>?</Object>+</Delete>.
 * More than KS_S3_MAX_DELETE objects or none: KS_S3_MALFORMED_XML; an
 * empty key: KS_S3_USER_KEY_MUST_BE_SPECIFIED; a key above
 * KS_S3_MAX_KEY_LEN: KS_S3_KEY_TOO_LONG; a VersionId: KS_S3_NOT_IMPLEMENTED
 * (no versioning). */
ks_s3_code_t ks_s3_xml_parse_delete(const void *body, size_t len,
                                    ks_s3_delete_req_t *out);
void ks_s3_delete_req_free(ks_s3_delete_req_t *r);

/* CreateBucketConfiguration: *region gets the LocationConstraint (malloc'd,
 * caller frees) or NULL when the body is empty or names none.  Other child
 * elements are refused with KS_S3_MALFORMED_XML. */
ks_s3_code_t ks_s3_xml_parse_create_bucket(const void *body, size_t len,
                                           char **region);

#endif /* KS_S3_XML_H */
