/*
 * crypto.h — the few primitives Kiseki uses, as narrow wrappers over
 * OpenSSL 3 EVP.
 *
 *   AES-256-GCM   per-chunk data encryption and DEK wrapping (DESIGN §7)
 *   HMAC-SHA256   S3 SigV4 signatures, audit-log chaining
 *   SHA-256, MD5  content hashes; MD5 only because S3 ETags and Content-MD5
 *                 require it, never for security
 *   HKDF-SHA256   deriving purpose-specific keys from one secret
 *
 * Keeping the surface this small means the rest of the tree never touches
 * OpenSSL's API directly, so a provider (FIPS) or library change is local.
 *
 * Errors: 0 on success, else KS_ECRYPTO (OpenSSL failed), KS_EAUTH (a GCM
 * tag did not verify), -EINVAL (bad arguments) or -ENOMEM.  On failure the
 * digest, MAC, derived key, tag and decrypted-plaintext outputs are zeroed
 * (or, for -EINVAL, never written), so a caller that ignores an error never
 * uses a half-computed value or unauthenticated plaintext.  The ciphertext
 * output of a failed seal is unspecified.
 *
 * Keys: functions take key material by pointer and keep no copy of their
 * own (OpenSSL's internal copies are cleansed when its objects are freed).
 * Callers own their key buffers and MUST ks_secure_zero() them when done;
 * plain memset may be optimised away.
 *
 * Threads: one-shot functions are thread-safe.  A context (ks_hash_ctx_t,
 * ks_hmac_ctx_t) belongs to one thread at a time.
 */
#ifndef KS_CRYPTO_H
#define KS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define KS_AES256_KEY_LEN 32
#define KS_GCM_IV_LEN 12
#define KS_GCM_TAG_LEN 16
/* NIST SP 800-38D: at most 2^39 - 256 bits of plaintext per (key, IV). */
#define KS_GCM_MAX_LEN ((UINT64_C(1) << 36) - 32)
#define KS_SHA256_LEN 32
#define KS_MD5_LEN 16
#define KS_SHA1_LEN 20
#define KS_HMAC_SHA256_LEN 32
#define KS_HASH_MAX_LEN 32
/* RFC 5869: HKDF output is at most 255 hash blocks. */
#define KS_HKDF_SHA256_MAX_LEN (255 * KS_SHA256_LEN)

/* ---- AES-256-GCM ------------------------------------------------------ */
/* Never reuse an IV with the same key: use a fresh random key per chunk, or
 * a random IV (ks_rand_bytes) for keys that encrypt many messages.
 * ct receives pt_len bytes; ct == pt (exactly, not partly overlapping) is
 * allowed.  aad may be NULL when aad_len is 0; so may pt/ct when pt_len is 0.
 * -EINVAL if pt_len > KS_GCM_MAX_LEN. */
int ks_gcm_seal(const uint8_t key[KS_AES256_KEY_LEN],
                const uint8_t iv[KS_GCM_IV_LEN], const void *aad,
                size_t aad_len, const void *pt, size_t pt_len, void *ct,
                uint8_t tag[KS_GCM_TAG_LEN]);
/* As ks_gcm_seal over the concatenation of iov[0..iovcnt), written to ct
 * contiguously (ks_iov_total bytes); ct must not overlap the iovecs. */
int ks_gcm_sealv(const uint8_t key[KS_AES256_KEY_LEN],
                 const uint8_t iv[KS_GCM_IV_LEN], const void *aad,
                 size_t aad_len, const struct iovec *iov, int iovcnt, void *ct,
                 uint8_t tag[KS_GCM_TAG_LEN]);
/* Decrypt and verify.  Returns 0, or KS_EAUTH when the tag does not match
 * (wrong key, IV, AAD, or tampered data): pt is then zeroed, never left
 * holding unauthenticated plaintext.  pt == ct is allowed (the ciphertext is
 * then lost on failure). */
int ks_gcm_open(const uint8_t key[KS_AES256_KEY_LEN],
                const uint8_t iv[KS_GCM_IV_LEN], const void *aad,
                size_t aad_len, const void *ct, size_t ct_len,
                const uint8_t tag[KS_GCM_TAG_LEN], void *pt);

/* As ks_gcm_open over the concatenation of ct[0..ctcnt) (the ciphertext in
 * pieces, e.g. erasure-coded fragments), written to pt contiguously; pt
 * must not overlap the pieces.  On failure pt is zeroed. */
int ks_gcm_openv(const uint8_t key[KS_AES256_KEY_LEN],
                 const uint8_t iv[KS_GCM_IV_LEN], const void *aad,
                 size_t aad_len, const struct iovec *ct, int ctcnt,
                 const uint8_t tag[KS_GCM_TAG_LEN], void *pt);

/* ---- Hashes: SHA-256 and MD5 ------------------------------------------- */
typedef enum ks_hash_alg {
  KS_HASH_SHA256 = 1,
  KS_HASH_MD5 = 2,
  KS_HASH_SHA1 = 3, /* S3's x-amz-checksum-sha1 only; not for security */
} ks_hash_alg_t;

/* Digest length of alg (32 or 16), or 0 for an unknown value. */
size_t ks_hash_len(ks_hash_alg_t alg);

/* One-shot digest of p[0..n) into out (ks_hash_len(alg) bytes).
 * -EINVAL for an unknown alg. */
int ks_hash(ks_hash_alg_t alg, const void *p, size_t n, uint8_t *out);
int ks_sha256(const void *p, size_t n, uint8_t out[KS_SHA256_LEN]);
int ks_md5(const void *p, size_t n, uint8_t out[KS_MD5_LEN]);

/* Incremental digest.  Lifecycle: a zeroed (KS_HASH_CTX_INIT) context ->
 * ks_hash_init -> ks_hash_update* -> ks_hash_final -> ks_hash_free.
 * After a successful init the caller must call ks_hash_free exactly once,
 * whether or not final ran or anything failed; free on a zeroed or freed
 * context is a no-op.  final may be called once; to hash again, free and
 * init.  The _fields are private. */
typedef struct ks_hash_ctx {
  struct evp_md_ctx_st *_md;
  ks_hash_alg_t _alg;
} ks_hash_ctx_t;

#define KS_HASH_CTX_INIT \
  {                      \
    NULL, 0              \
  }

/* 0, -EINVAL (unknown alg), -ENOMEM or KS_ECRYPTO; c stays zeroed on error. */
int ks_hash_init(ks_hash_ctx_t *c, ks_hash_alg_t alg);
int ks_hash_update(ks_hash_ctx_t *c, const void *p, size_t n);
/* out receives ks_hash_len(alg) bytes. */
int ks_hash_final(ks_hash_ctx_t *c, uint8_t *out);
void ks_hash_free(ks_hash_ctx_t *c);

/* ---- HMAC-SHA256 ------------------------------------------------------- */
/* One-shot MAC of msg[0..n) under key[0..key_len) (any length, 0 included). */
int ks_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t n,
                   uint8_t out[KS_HMAC_SHA256_LEN]);

/* Incremental HMAC-SHA256, with ks_hash_ctx_t's lifecycle: KS_HMAC_CTX_INIT
 * -> ks_hmac_init -> ks_hmac_update* -> ks_hmac_final -> ks_hmac_free.
 * The key is copied into OpenSSL's context by init (and cleansed by free),
 * so the caller may zero its own copy right after init. */
typedef struct ks_hmac_ctx {
  struct evp_mac_ctx_st *_mac;
} ks_hmac_ctx_t;

#define KS_HMAC_CTX_INIT \
  {                      \
    NULL                 \
  }

int ks_hmac_init(ks_hmac_ctx_t *c, const void *key, size_t key_len);
int ks_hmac_update(ks_hmac_ctx_t *c, const void *p, size_t n);
int ks_hmac_final(ks_hmac_ctx_t *c, uint8_t out[KS_HMAC_SHA256_LEN]);
void ks_hmac_free(ks_hmac_ctx_t *c);

/* ---- HKDF-SHA256 (RFC 5869) -------------------------------------------- */
/* Extract-then-expand: out[0..out_len) = HKDF(salt, ikm, info).  salt and
 * info may be empty (NULL, 0); ikm must not be.  -EINVAL if out_len is 0 or
 * above KS_HKDF_SHA256_MAX_LEN, or ikm is empty. */
int ks_hkdf_sha256(void *out, size_t out_len, const void *salt, size_t salt_len,
                   const void *ikm, size_t ikm_len, const void *info,
                   size_t info_len);

/* ---- Memory hygiene ----------------------------------------------------- */
/* Zero p[0..n) in a way the compiler cannot elide (OPENSSL_cleanse). */
void ks_secure_zero(void *p, size_t n);
/* a[0..n) == b[0..n) in time that depends only on n (CRYPTO_memcmp): use it
 * for every comparison of a MAC, tag or signature. */
bool ks_ct_equal(const void *a, const void *b, size_t n);

#endif /* KS_CRYPTO_H */
