/*
 * s3_sigv4.h — AWS Signature Version 4 as S3 speaks it: verification of
 * the Authorization header, of presigned URLs, and of aws-chunked
 * streaming bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
 *
 * Transport-independent: a request is a ks_s3_http_req_t (method, raw path,
 * raw query, header list) that the HTTP server fills from its own request
 * object, so the code is tested with AWS's published vectors and fuzzed
 * without a socket.
 *
 * S3's SigV4 differs from the generic one in three ways kept here: the
 * canonical URI is the path encoded once (never double-encoded, no dot
 * segment removal), the payload hash is the x-amz-content-sha256 header
 * (a hex SHA-256, UNSIGNED-PAYLOAD, or STREAMING-AWS4-HMAC-SHA256-PAYLOAD),
 * and presigned URLs sign UNSIGNED-PAYLOAD.
 *
 * Results.  Verification functions return KS_S3_OK or the S3 error to
 * answer (ks/s3_xml.h): SignatureDoesNotMatch, InvalidAccessKeyId (the
 * lookup callback does not know the key), AccessDenied (anonymous request,
 * expired or not-yet-valid presigned URL), RequestTimeTooSkewed (more than
 * KS_S3_SKEW_MAX_S between the request date and now),
 * AuthorizationHeaderMalformed, AuthorizationQueryParametersError,
 * MissingSecurityHeader / InvalidRequest (no x-amz-content-sha256),
 * InternalError (memory, crypto, or the lookup callback failing).  The
 * result struct then carries a message for the error body.
 *
 * Secrets.  Secret keys come from the caller's lookup callback into a
 * stack buffer that is wiped before returning; the derived signing key
 * kept in ks_s3_auth_t for a streaming body is wiped by
 * ks_s3_auth_clear(), which callers must run on every ks_s3_auth_t they
 * passed to a verify function.  Signatures are compared in constant time.
 *
 * Threads: no global state.  A ks_s3_key_cache_t and a ks_s3_chunked_t
 * belong to one thread at a time (one h2o worker thread each).
 */
#ifndef KS_S3_SIGV4_H
#define KS_S3_SIGV4_H

#include "ks/buf.h"
#include "ks/crypto.h"
#include "ks/s3_xml.h"
#include "ks/time.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KS_S3_SIG_HEX_LEN 64
/* AWS: a request is refused when its date is more than 15 minutes away
 * from the server's clock. */
#define KS_S3_SKEW_MAX_S 900
/* AWS: a presigned URL lives at most seven days. */
#define KS_S3_PRESIGN_MAX_S 604800
#define KS_S3_ACCESS_KEY_MAX 128
#define KS_S3_SECRET_MAX 128
#define KS_S3_REGION_MAX 64
/* Canonical requests above this are refused (AuthorizationHeaderMalformed
 * or InvalidRequest): the server's header and URI limits are far below. */
#define KS_S3_CANONICAL_MAX (256u * 1024)

#define KS_S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define KS_S3_STREAMING_PAYLOAD "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define KS_S3_EMPTY_SHA256 \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* One header as received; names compare case-insensitively, values are
 * raw (the canonical form trims and collapses spaces).  Pointers are
 * borrowed from the caller for the duration of a call. */
typedef struct ks_s3_header {
  const char *name;
  const char *value;
  size_t name_len;
  size_t value_len;
} ks_s3_header_t;

/* A request as the signature sees it.  path: the request target up to '?',
 * still percent-encoded; query: after '?', raw (may be empty). */
typedef struct ks_s3_http_req {
  const char *method;
  const char *path;
  const char *query;
  const ks_s3_header_t *headers;
  size_t method_len;
  size_t path_len;
  size_t query_len;
  size_t nheaders;
} ks_s3_http_req_t;

/* First header named `name` (ASCII case-insensitive), or NULL. */
const ks_s3_header_t *ks_s3_header_find(const ks_s3_http_req_t *req,
                                        const char *name);

/* ---- Building blocks (exposed for tests and for signing clients) ------ */

/* Append the canonical request: method, canonical URI, canonical query
 * (skip_signature: leave X-Amz-Signature out, for presigned URLs),
 * canonical headers for `signed_headers` (";"-separated, lower case, in
 * the order given), the signed header list, and payload_hash.  0, -ENOMEM,
 * or KS_ETOOBIG above KS_S3_CANONICAL_MAX. */
int ks_s3_sigv4_canonical(ks_buf_t *out, const ks_s3_http_req_t *req,
                          bool skip_signature, const char *signed_headers,
                          size_t signed_len, const char *payload_hash);

/* kSigning = HMAC chain over "AWS4"+secret, date (YYYYMMDD), region,
 * service, "aws4_request".  0 or KS_ECRYPTO (key zeroed). */
int ks_s3_sigv4_signing_key(const char *secret, size_t secret_len,
                            const char *date8, const char *region,
                            const char *service,
                            uint8_t key[KS_HMAC_SHA256_LEN]);

/* Hex signature of the request: string to sign = "AWS4-HMAC-SHA256\n" +
 * amz_date + "\n" + scope + "\n" + hex(SHA-256(canonical)).
 * sig_hex gets 64 characters and a NUL.  0 or KS_ECRYPTO. */
int ks_s3_sigv4_sign(const uint8_t key[KS_HMAC_SHA256_LEN],
                     const char *amz_date, const char *scope,
                     const void *canonical, size_t canonical_len,
                     char sig_hex[KS_S3_SIG_HEX_LEN + 1]);

/* ---- Verification ----------------------------------------------------- */

/* Look up the secret of access key `akid` (akid_len bytes, not
 * NUL-terminated).  Copy it into secret[0..size) and set *len.  Return 0,
 * -ENOENT for an unknown key, or another negative code (answered as
 * InternalError).  Runs on the verifying thread, synchronously. */
typedef int (*ks_s3_secret_cb)(void *ctx, const char *akid, size_t akid_len,
                               char *secret, size_t size, size_t *len);

/* A small cache of derived signing keys, keyed by access key, secret, date
 * and region, so a client's requests cost one HMAC for the signature
 * instead of five.  Caller-owned (embed it), zeroed with
 * KS_S3_KEY_CACHE_INIT, wiped by ks_s3_key_cache_clear(). */
#define KS_S3_KEY_CACHE_SLOTS 16
typedef struct ks_s3_key_cache_slot {
  uint8_t key[KS_HMAC_SHA256_LEN];
  uint8_t secret_hash[KS_SHA256_LEN];
  char akid[KS_S3_ACCESS_KEY_MAX + 1];
  char region[KS_S3_REGION_MAX + 1];
  char date8[9];
  bool used;
} ks_s3_key_cache_slot_t;

typedef struct ks_s3_key_cache {
  ks_s3_key_cache_slot_t _slot[KS_S3_KEY_CACHE_SLOTS];
  unsigned _next; /* round-robin victim */
} ks_s3_key_cache_t;

void ks_s3_key_cache_clear(ks_s3_key_cache_t *c);

typedef struct ks_s3_auth_cfg {
  ks_s3_secret_cb lookup;
  void *lookup_ctx;
  const char *region;       /* NULL: accept the region the client signed for */
  const char *service;      /* NULL: "s3" */
  ks_s3_key_cache_t *cache; /* NULL: derive every time */
} ks_s3_auth_cfg_t;

typedef enum ks_s3_payload {
  KS_S3_PAYLOAD_SIGNED = 1, /* body must hash to payload_sha256 */
  KS_S3_PAYLOAD_UNSIGNED,   /* UNSIGNED-PAYLOAD or presigned */
  KS_S3_PAYLOAD_STREAMING,  /* aws-chunked: decode with ks_s3_chunked_t */
} ks_s3_payload_t;

typedef struct ks_s3_auth {
  /* Filled on success (and as far as known on failure). */
  uint8_t payload_sha256[KS_SHA256_LEN];    /* KS_S3_PAYLOAD_SIGNED */
  uint8_t _signing_key[KS_HMAC_SHA256_LEN]; /* streaming: chunk chain */
  char access_key[KS_S3_ACCESS_KEY_MAX + 1];
  char amz_date[KS_TIME_AMZ_LEN + 1];
  char scope[KS_S3_ACCESS_KEY_MAX + 64];
  char seed_signature[KS_S3_SIG_HEX_LEN + 1];
  const char *message; /* static text for the error body; never NULL */
  ks_s3_payload_t payload;
  bool presigned;
} ks_s3_auth_t;

/* Verify req as of `now_s` (seconds since the epoch): an Authorization
 * header (AWS4-HMAC-SHA256), or presigned query parameters, or neither
 * (anonymous: KS_S3_ACCESS_DENIED, the gateway allows no anonymous
 * access).  Both at once: KS_S3_INVALID_ARGUMENT.  *out is always written;
 * run ks_s3_auth_clear(out) afterwards either way. */
ks_s3_code_t ks_s3_auth_verify(const ks_s3_auth_cfg_t *cfg,
                               const ks_s3_http_req_t *req, int64_t now_s,
                               ks_s3_auth_t *out);
void ks_s3_auth_clear(ks_s3_auth_t *a);

/* ---- aws-chunked streaming bodies ------------------------------------- */
/* Frames: hex-size ";chunk-signature=" 64-hex CRLF data CRLF, ending with a
 * 0-size frame.  Each chunk's signature is HMAC(signing key,
 * "AWS4-HMAC-SHA256-PAYLOAD\n" date "\n" scope "\n" previous-signature
 * "\n" hex(SHA-256("")) "\n" hex(SHA-256(data))), chained from the seed
 * signature (that of the headers).  Trailers (...-PAYLOAD-TRAILER) are not
 * supported (the verifier answers NotImplemented for them).
 *
 * Data is passed to the callback as soon as it arrives, zero-copy (a
 * pointer into the fed buffer): a chunk's bytes are authenticated only when
 * the chunk ends.  The caller must therefore make nothing visible (commit
 * an object or part) before ks_s3_chunked_feed() has reported
 * ks_s3_chunked_done(); a failure poisons the decoder (every later call
 * returns the same error). */
typedef int (*ks_s3_chunk_data_cb)(void *ctx, const void *p, size_t n);

#define KS_S3_CHUNK_LINE_MAX 128 /* "ffffffff;chunk-signature=<64>\r\n" */
/* AWS asks for chunks of at least 8 KiB except the last, recommends 64 KiB
 * and sets no maximum; SDKs use at most a few MiB.  Larger frames are
 * refused so a bad size cannot tie a connection up indefinitely. */
#define KS_S3_CHUNK_MAX_DEFAULT (16u * 1024 * 1024)

typedef struct ks_s3_chunked {
  ks_hash_ctx_t _sha;
  uint64_t _left;     /* data bytes left in the current chunk */
  uint64_t _total;    /* decoded bytes so far */
  uint64_t _expected; /* x-amz-decoded-content-length; UINT64_MAX: unknown */
  uint64_t _chunk_max;
  ks_s3_chunk_data_cb _cb;
  void *_cb_ctx;
  uint8_t _key[KS_HMAC_SHA256_LEN];
  char _prev[KS_S3_SIG_HEX_LEN + 1];
  char _want[KS_S3_SIG_HEX_LEN + 1];
  char _date[KS_TIME_AMZ_LEN + 1];
  char _scope[KS_S3_ACCESS_KEY_MAX + 64];
  char _line[KS_S3_CHUNK_LINE_MAX];
  const char *message; /* detail of the failure; never NULL */
  size_t _line_len;
  ks_s3_code_t _err;
  int _state;
  bool _last;
} ks_s3_chunked_t;

/* Start decoding the body of a request that auth verified with
 * KS_S3_PAYLOAD_STREAMING.  expected_len: x-amz-decoded-content-length
 * (UINT64_MAX if absent; the decoded total must then equal it).
 * chunk_max: 0 for KS_S3_CHUNK_MAX_DEFAULT.  Returns 0 or -ENOMEM /
 * KS_ECRYPTO; after a 0 return ks_s3_chunked_free() must be called. */
int ks_s3_chunked_init(ks_s3_chunked_t *d, const ks_s3_auth_t *auth,
                       uint64_t expected_len, uint64_t chunk_max,
                       ks_s3_chunk_data_cb cb, void *cb_ctx);
/* Feed body bytes in any split.  KS_S3_OK, or: SignatureDoesNotMatch (a
 * chunk signature is wrong), IncompleteBody (decoded length differs from
 * x-amz-decoded-content-length), InvalidRequest (malformed framing, bytes
 * after the last chunk), EntityTooLarge (a chunk above chunk_max),
 * InternalError (the callback returned non-zero, or crypto failed). */
ks_s3_code_t ks_s3_chunked_feed(ks_s3_chunked_t *d, const void *buf, size_t n);
/* The final chunk and its CRLF have arrived and verified. */
bool ks_s3_chunked_done(const ks_s3_chunked_t *d);
/* At end of body: KS_S3_OK if done, else IncompleteBody (or the error that
 * stopped the decoder). */
ks_s3_code_t ks_s3_chunked_finish(ks_s3_chunked_t *d);
/* Wipe the key and free the hash context. */
void ks_s3_chunked_free(ks_s3_chunked_t *d);

#endif /* KS_S3_SIGV4_H */
