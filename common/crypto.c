/*
 * crypto.c — ks/crypto.h on OpenSSL 3 EVP.
 *
 * Every function fetches its algorithm explicitly (EVP_*_fetch) and frees
 * it before returning; contexts hold their own reference.  That costs a few
 * microseconds per call against a chunk of megabytes, and in exchange there
 * is no process-wide cache to initialise, lock or tear down (no hidden
 * global state).  If profiling ever shows the fetch, cache the EVP objects in
 * a context passed in by the caller, not in a static.
 *
 * Each function acquires at most an algorithm and a context and releases
 * them on one `out:` path whatever happened; outputs are zeroed on failure
 * as the header promises.  No key bytes are ever copied here: keys go
 * straight to OpenSSL, whose copies (key schedules, HMAC pads) are cleansed
 * by the matching *_free.
 *
 * OpenSSL's cipher update takes an int length, so long inputs are fed in
 * slices (gcm_update).
 */
#include "ks/crypto.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "ks/buf.h"
#include "ks/err.h"

#define KS_EVP_SLICE ((size_t)1 << 30)

/* OpenSSL's MAC treats a NULL key as "keep the previous key", which a new
 * context does not have; an empty key is passed as a pointer to this. */
static const uint8_t ks_empty_key[1];

/* ---- AES-256-GCM ------------------------------------------------------ */

/* Feed in[0..n) through the cipher (out == NULL: as AAD). */
static int gcm_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in,
                      size_t n)
{
  while (n > 0) {
    size_t k = n < KS_EVP_SLICE ? n : KS_EVP_SLICE;
    int outl;
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)k) != 1)
      return KS_ECRYPTO;
    in += k;
    out = out ? out + k : NULL;
    n -= k;
  }
  return 0;
}

/* A context keyed for enc (1) or dec (0) that has absorbed the AAD. */
static int gcm_begin(EVP_CIPHER_CTX **out, int enc, const uint8_t *key,
                     const uint8_t *iv, const void *aad, size_t aad_len)
{
  EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  EVP_CIPHER_CTX *ctx = NULL;
  int rc = KS_ECRYPTO;
  if (cipher == NULL)
    goto out;
  ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  if (EVP_CipherInit_ex2(ctx, cipher, key, iv, enc, NULL) != 1)
    goto out;
  rc = gcm_update(ctx, NULL, aad, aad_len);
out:
  EVP_CIPHER_free(cipher);
  if (rc != 0)
    EVP_CIPHER_CTX_free(ctx);
  else
    *out = ctx;
  return rc;
}

int ks_gcm_sealv(const uint8_t key[KS_AES256_KEY_LEN],
                 const uint8_t iv[KS_GCM_IV_LEN], const void *aad,
                 size_t aad_len, const struct iovec *iov, int iovcnt, void *ct,
                 uint8_t tag[KS_GCM_TAG_LEN])
{
  EVP_CIPHER_CTX *ctx;
  uint8_t *o = ct, tail[16];
  int outl;
  if (ks_iov_total(iov, iovcnt) > KS_GCM_MAX_LEN)
    return -EINVAL;
  int rc = gcm_begin(&ctx, 1, key, iv, aad, aad_len);
  if (rc != 0)
    goto out;
  for (int i = 0; i < iovcnt && rc == 0; i++) {
    rc = gcm_update(ctx, o, iov[i].iov_base, iov[i].iov_len);
    o = iov[i].iov_len ? o + iov[i].iov_len : o; /* ct may be NULL */
  }
  if (rc == 0 && (EVP_CipherFinal_ex(ctx, tail, &outl) != 1 ||
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG,
                                      KS_GCM_TAG_LEN, tag) != 1))
    rc = KS_ECRYPTO;
  EVP_CIPHER_CTX_free(ctx);
out:
  if (rc != 0)
    ks_secure_zero(tag, KS_GCM_TAG_LEN);
  return rc;
}

int ks_gcm_seal(const uint8_t key[KS_AES256_KEY_LEN],
                const uint8_t iv[KS_GCM_IV_LEN], const void *aad,
                size_t aad_len, const void *pt, size_t pt_len, void *ct,
                uint8_t tag[KS_GCM_TAG_LEN])
{
  struct iovec v = {.iov_base = (void *)pt, .iov_len = pt_len};
  return ks_gcm_sealv(key, iv, aad, aad_len, &v, 1, ct, tag);
}

int ks_gcm_openv(const uint8_t key[KS_AES256_KEY_LEN],
                 const uint8_t iv[KS_GCM_IV_LEN], const void *aad,
                 size_t aad_len, const struct iovec *ct, int ctcnt,
                 const uint8_t tag[KS_GCM_TAG_LEN], void *pt)
{
  EVP_CIPHER_CTX *ctx;
  uint8_t tail[16], *o = pt;
  int outl;
  size_t ct_len = ks_iov_total(ct, ctcnt);
  if (ct_len > KS_GCM_MAX_LEN)
    return -EINVAL;
  int rc = gcm_begin(&ctx, 0, key, iv, aad, aad_len);
  if (rc != 0)
    goto out;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, KS_GCM_TAG_LEN,
                          (void *)tag) != 1)
    rc = KS_ECRYPTO;
  for (int i = 0; i < ctcnt && rc == 0; i++) {
    rc = gcm_update(ctx, o, ct[i].iov_base, ct[i].iov_len);
    o = ct[i].iov_len ? o + ct[i].iov_len : o; /* pt may be NULL */
  }
  if (rc == 0 && EVP_CipherFinal_ex(ctx, tail, &outl) != 1)
    rc = KS_EAUTH; /* the only way final fails once the data went through */
  EVP_CIPHER_CTX_free(ctx);
out:
  if (rc != 0 && ct_len > 0)
    ks_secure_zero(pt, ct_len);
  return rc;
}

int ks_gcm_open(const uint8_t key[KS_AES256_KEY_LEN],
                const uint8_t iv[KS_GCM_IV_LEN], const void *aad,
                size_t aad_len, const void *ct, size_t ct_len,
                const uint8_t tag[KS_GCM_TAG_LEN], void *pt)
{
  struct iovec v = {.iov_base = (void *)ct, .iov_len = ct_len};
  return ks_gcm_openv(key, iv, aad, aad_len, &v, 1, tag, pt);
}

/* ---- Hashes ----------------------------------------------------------- */

static const char *hash_name(ks_hash_alg_t alg)
{
  switch (alg) {
  case KS_HASH_SHA256:
    return "SHA256";
  case KS_HASH_MD5:
    return "MD5"; /* in the default provider of OpenSSL 3, not in FIPS */
  case KS_HASH_SHA1:
    return "SHA1";
  }
  return NULL;
}

size_t ks_hash_len(ks_hash_alg_t alg)
{
  switch (alg) {
  case KS_HASH_SHA256:
    return KS_SHA256_LEN;
  case KS_HASH_MD5:
    return KS_MD5_LEN;
  case KS_HASH_SHA1:
    return KS_SHA1_LEN;
  }
  return 0;
}

int ks_hash_init(ks_hash_ctx_t *c, ks_hash_alg_t alg)
{
  const char *name = hash_name(alg);
  EVP_MD *md = NULL;
  EVP_MD_CTX *ctx = NULL;
  int rc = KS_ECRYPTO;
  if (name == NULL)
    return -EINVAL;
  md = EVP_MD_fetch(NULL, name, NULL);
  if (md == NULL)
    goto out;
  ctx = EVP_MD_CTX_new();
  if (ctx == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  if (EVP_DigestInit_ex2(ctx, md, NULL) != 1)
    goto out;
  c->_md = ctx; /* holds its own reference to md */
  c->_alg = alg;
  ctx = NULL;
  rc = 0;
out:
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  return rc;
}

int ks_hash_update(ks_hash_ctx_t *c, const void *p, size_t n)
{
  if (c->_md == NULL)
    return -EINVAL;
  if (n == 0)
    return 0;
  return EVP_DigestUpdate(c->_md, p, n) == 1 ? 0 : KS_ECRYPTO;
}

int ks_hash_final(ks_hash_ctx_t *c, uint8_t *out)
{
  if (c->_md == NULL)
    return -EINVAL;
  if (EVP_DigestFinal_ex(c->_md, out, NULL) == 1)
    return 0;
  ks_secure_zero(out, ks_hash_len(c->_alg));
  return KS_ECRYPTO;
}

void ks_hash_free(ks_hash_ctx_t *c)
{
  EVP_MD_CTX_free(c->_md);
  c->_md = NULL;
  c->_alg = 0;
}

int ks_hash(ks_hash_alg_t alg, const void *p, size_t n, uint8_t *out)
{
  ks_hash_ctx_t c = KS_HASH_CTX_INIT;
  int rc = ks_hash_init(&c, alg);
  if (rc != 0)
    goto out;
  rc = ks_hash_update(&c, p, n);
  if (rc == 0)
    rc = ks_hash_final(&c, out);
  ks_hash_free(&c);
out:
  if (rc != 0)
    ks_secure_zero(out, ks_hash_len(alg));
  return rc;
}

int ks_sha256(const void *p, size_t n, uint8_t out[KS_SHA256_LEN])
{
  return ks_hash(KS_HASH_SHA256, p, n, out);
}

int ks_md5(const void *p, size_t n, uint8_t out[KS_MD5_LEN])
{
  return ks_hash(KS_HASH_MD5, p, n, out);
}

/* ---- HMAC-SHA256 ------------------------------------------------------ */

int ks_hmac_init(ks_hmac_ctx_t *c, const void *key, size_t key_len)
{
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = NULL;
  int rc = KS_ECRYPTO;
  if (mac == NULL)
    goto out;
  ctx = EVP_MAC_CTX_new(mac);
  if (ctx == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  if (EVP_MAC_init(ctx, key_len ? key : ks_empty_key, key_len, params) != 1)
    goto out;
  c->_mac = ctx; /* holds its own reference to mac */
  ctx = NULL;
  rc = 0;
out:
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return rc;
}

int ks_hmac_update(ks_hmac_ctx_t *c, const void *p, size_t n)
{
  if (c->_mac == NULL)
    return -EINVAL;
  if (n == 0)
    return 0;
  return EVP_MAC_update(c->_mac, p, n) == 1 ? 0 : KS_ECRYPTO;
}

int ks_hmac_final(ks_hmac_ctx_t *c, uint8_t out[KS_HMAC_SHA256_LEN])
{
  size_t outl = 0;
  if (c->_mac == NULL)
    return -EINVAL;
  if (EVP_MAC_final(c->_mac, out, &outl, KS_HMAC_SHA256_LEN) == 1 &&
      outl == KS_HMAC_SHA256_LEN)
    return 0;
  ks_secure_zero(out, KS_HMAC_SHA256_LEN);
  return KS_ECRYPTO;
}

void ks_hmac_free(ks_hmac_ctx_t *c)
{
  EVP_MAC_CTX_free(c->_mac);
  c->_mac = NULL;
}

int ks_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t n,
                   uint8_t out[KS_HMAC_SHA256_LEN])
{
  ks_hmac_ctx_t c = KS_HMAC_CTX_INIT;
  int rc = ks_hmac_init(&c, key, key_len);
  if (rc != 0)
    goto out;
  rc = ks_hmac_update(&c, msg, n);
  if (rc == 0)
    rc = ks_hmac_final(&c, out);
  ks_hmac_free(&c);
out:
  if (rc != 0)
    ks_secure_zero(out, KS_HMAC_SHA256_LEN);
  return rc;
}

/* ---- HKDF-SHA256 ------------------------------------------------------ */

/* HKDF parameters into p (5 slots).  OSSL_PARAM wants non-const pointers;
 * OpenSSL only reads through them. */
static void hkdf_params(OSSL_PARAM *p, char *digest, const void *salt,
                        size_t salt_len, const void *ikm, size_t ikm_len,
                        const void *info, size_t info_len)
{
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm,
                                           ikm_len);
  if (salt_len > 0) /* absent salt: HKDF uses HashLen zero bytes */
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
                                             salt_len);
  if (info_len > 0)
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                             info_len);
  *p = OSSL_PARAM_construct_end();
}

int ks_hkdf_sha256(void *out, size_t out_len, const void *salt, size_t salt_len,
                   const void *ikm, size_t ikm_len, const void *info,
                   size_t info_len)
{
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  EVP_KDF *kdf = NULL;
  EVP_KDF_CTX *kctx = NULL;
  int rc = KS_ECRYPTO;
  if (out_len == 0 || out_len > KS_HKDF_SHA256_MAX_LEN || ikm_len == 0)
    return -EINVAL;
  hkdf_params(params, digest, salt, salt_len, ikm, ikm_len, info, info_len);
  kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  if (kdf == NULL)
    goto out;
  kctx = EVP_KDF_CTX_new(kdf);
  if (kctx == NULL) {
    rc = -ENOMEM;
    goto out;
  }
  if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
    rc = 0;
out:
  EVP_KDF_CTX_free(kctx);
  EVP_KDF_free(kdf);
  if (rc != 0)
    ks_secure_zero(out, out_len);
  return rc;
}

/* ---- Memory hygiene --------------------------------------------------- */

void ks_secure_zero(void *p, size_t n)
{
  if (n > 0)
    OPENSSL_cleanse(p, n);
}

bool ks_ct_equal(const void *a, const void *b, size_t n)
{
  return CRYPTO_memcmp(a, b, n) == 0;
}
