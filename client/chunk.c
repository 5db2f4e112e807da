/*
 * chunk.c — the chunk codec of ks/chunk.h.
 *
 * Seal makes no copy of the data: AES-GCM writes the ciphertext straight
 * into the caller's fragment buffer, whose first k fragments are contiguous,
 * and the tag lands right after it; isa-l then reads those fragments to
 * write the parity.  Open makes one copy: the ciphertext is gathered from
 * the (separately received) data fragments into the caller's plaintext
 * buffer and decrypted there in place, the tag into a local array.  A
 * degraded open first rebuilds the missing data fragments into one scratch
 * allocation.
 *
 * Integrity.  The GCM tag covers the ciphertext, and its AAD (chunk id ||
 * tenant id) binds the chunk to its id and tenant; the DEK's wrap binds the
 * same AAD, so a descriptor or fragments moved between chunks or tenants do
 * not open.  The zero padding after the tag is outside GCM, so open checks
 * it explicitly: a flipped bit anywhere in a data fragment that is read (or
 * in a fragment used to rebuild one) fails open with KS_EAUTH.  Open does
 * not recompute the HMAC chunk id over the plaintext: the id is authenticated
 * as AAD already, and a second pass over 4 MiB would cost as much as the
 * decryption.
 *
 * The DEK lives on the stack for the duration of one call and is wiped on
 * every path; the id-key likewise.
 */
#include "ks/chunk.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ks-client is not linked to ks-kms yet (CMakeLists.txt), so the KMS
 * interface header is reached by path; it is header-only for this file. */
#include "ks/err.h"
#include "ks/kms.h"
#include "ks/rand.h"

#define CHUNK_AAD_LEN (KS_CHUNK_ID_LEN + KS_ID_LEN)

_Static_assert(KS_CHUNK_ID_LEN == KS_HMAC_SHA256_LEN, "a chunk id is an HMAC");
_Static_assert(KS_CHUNK_WRAPPED_MAX == KS_KMS_WRAPPED_MAX,
               "a descriptor holds any backend's wrapped DEK");
_Static_assert(CHUNK_AAD_LEN <= KS_KMS_AAD_MAX, "chunk AAD fits a wrap");
_Static_assert(KS_CHUNK_MAX_LEN + KS_GCM_TAG_LEN <= KS_EC_MAX_FRAG_LEN,
               "one fragment of a k=1 chunk fits isa-l's length");

size_t ks_chunk_frag_len(unsigned k, size_t pt_len)
{
  if (k < 1 || pt_len > KS_CHUNK_MAX_LEN)
    return 0;
  return ks_ec_frag_len(k, pt_len + KS_GCM_TAG_LEN);
}

static void chunk_aad(uint8_t aad[CHUNK_AAD_LEN],
                      const uint8_t id[KS_CHUNK_ID_LEN], const ks_id_t *tenant)
{
  memcpy(aad, id, KS_CHUNK_ID_LEN);
  memcpy(aad + KS_CHUNK_ID_LEN, tenant->b, KS_ID_LEN);
}

int ks_chunk_id(struct ks_kms *kms, const ks_id_t *tenant, const void *pt,
                size_t n, uint8_t id[KS_CHUNK_ID_LEN])
{
  uint8_t key[KS_KMS_KEY_LEN];
  int rc = ks_kms_key_derive(kms, tenant, KS_CHUNK_ID_PURPOSE, key);
  if (rc == 0)
    rc = ks_hmac_sha256(key, sizeof(key), n ? pt : "", n, id);
  ks_secure_zero(key, sizeof(key));
  if (rc != 0)
    memset(id, 0, KS_CHUNK_ID_LEN);
  return rc;
}

/* ---- seal --------------------------------------------------------------- */

/* Encrypt into the data fragments, wrap the DEK into desc. */
static int seal_encrypt(struct ks_kms *kms, const ks_id_t *tenant,
                        const void *pt, size_t pt_len, uint8_t *ct,
                        ks_chunk_desc_t *desc)
{
  uint8_t dek[KS_KMS_KEY_LEN];
  uint8_t aad[CHUNK_AAD_LEN];
  ks_kms_wrapped_t w;
  chunk_aad(aad, desc->id, tenant);
  int rc = ks_rand_bytes(dek, sizeof(dek));
  if (rc == 0)
    rc = ks_rand_bytes(desc->iv, sizeof(desc->iv));
  if (rc == 0)
    rc = ks_kms_dek_wrap(kms, tenant, dek, aad, sizeof(aad), &w);
  if (rc == 0)
    rc = ks_gcm_seal(dek, desc->iv, aad, sizeof(aad), pt, pt_len, ct,
                     ct + pt_len);
  ks_secure_zero(dek, sizeof(dek));
  if (rc == 0) {
    assert(w.len <= sizeof(desc->wrapped));
    desc->key_version = w.key_version;
    desc->wrapped_len = w.len;
    memcpy(desc->wrapped, w.data, w.len);
  }
  return rc;
}

int ks_chunk_seal(struct ks_kms *kms, const ks_ec_t *ec, const ks_id_t *tenant,
                  const void *pt, size_t pt_len, uint8_t *frags,
                  size_t frags_len, ks_chunk_desc_t *desc)
{
  unsigned k = ks_ec_k(ec), m = ks_ec_m(ec);
  size_t flen = ks_chunk_frag_len(k, pt_len);
  memset(desc, 0, sizeof(*desc));
  if (flen == 0 || frags_len / (k + m) < flen || (pt == NULL && pt_len > 0))
    return -EINVAL;
  int rc = ks_chunk_id(kms, tenant, pt, pt_len, desc->id);
  if (rc == 0)
    rc = seal_encrypt(kms, tenant, pt, pt_len, frags, desc);
  if (rc != 0) {
    memset(desc, 0, sizeof(*desc));
    return rc;
  }
  size_t ct_len = pt_len + KS_GCM_TAG_LEN;
  memset(frags + ct_len, 0, k * flen - ct_len);
  const uint8_t *data[KS_EC_MAX_FRAGS];
  uint8_t *parity[KS_EC_MAX_FRAGS];
  for (unsigned i = 0; i < k + m; i++) {
    if (i < k)
      data[i] = frags + i * flen;
    else
      parity[i - k] = frags + i * flen;
  }
  rc = ks_ec_encode(ec, flen, data, parity);
  assert(rc == 0); /* flen was checked above */
  desc->pt_len = pt_len;
  desc->ct_len = ct_len;
  desc->frag_len = (uint32_t)flen;
  desc->k = (uint8_t)k;
  desc->m = (uint8_t)m;
  return rc;
}

/* ---- open --------------------------------------------------------------- */

/* Point data[0..k) at every data fragment, rebuilding missing ones into
 * *scratch (which the caller frees). */
static int open_fragments(ks_ec_t *ec, const ks_chunk_desc_t *desc,
                          const uint8_t *const frags[], const uint8_t **data,
                          uint8_t **scratch)
{
  unsigned k = desc->k, n = desc->k + desc->m, nmiss = 0;
  uint8_t *out[KS_EC_MAX_FRAGS] = {NULL};
  *scratch = NULL;
  for (unsigned i = 0; i < k; i++)
    nmiss += frags[i] == NULL;
  for (unsigned i = 0; i < k; i++)
    data[i] = frags[i];
  if (nmiss == 0)
    return 0;
  unsigned have = 0;
  for (unsigned i = 0; i < n; i++)
    have += frags[i] != NULL;
  if (have < k)
    return -ENODATA;
  *scratch = aligned_alloc(KS_EC_ALIGN, (size_t)nmiss * desc->frag_len);
  if (*scratch == NULL)
    return -ENOMEM;
  for (unsigned i = 0, j = 0; i < k; i++)
    if (frags[i] == NULL)
      data[i] = out[i] = *scratch + (size_t)j++ * desc->frag_len;
  return ks_ec_reconstruct(ec, desc->frag_len, frags, out);
}

/* Bytes [ct_len, k * frag_len) of the data fragments must be zero. */
static bool open_padding_ok(const ks_chunk_desc_t *desc,
                            const uint8_t *const data[])
{
  size_t flen = desc->frag_len, end = (size_t)desc->k * flen;
  uint8_t acc = 0;
  for (size_t off = desc->ct_len; off < end; off++)
    acc |= data[off / flen][off % flen];
  return acc == 0;
}

/* The ciphertext as pieces of the data fragments (no copy: decryption
 * reads them in place) and the tag, copied out of the fragment(s) holding
 * it.  Returns the number of pieces. */
static int open_pieces(const ks_chunk_desc_t *desc, const uint8_t *const data[],
                       struct iovec *ct, uint8_t tag[KS_GCM_TAG_LEN])
{
  size_t flen = desc->frag_len, pt_len = desc->pt_len;
  int n = 0;
  for (size_t off = 0; off < desc->ct_len;) {
    size_t in = off % flen, len = flen - in;
    const uint8_t *src = data[off / flen] + in;
    size_t lim = off < pt_len ? pt_len - off : desc->ct_len - off;
    len = len < lim ? len : lim;
    if (off < pt_len)
      ct[n++] = (struct iovec){(void *)src, len};
    else
      memcpy(tag + (off - pt_len), src, len);
    off += len;
  }
  return n;
}

static int open_decrypt(struct ks_kms *kms, const ks_id_t *tenant,
                        const ks_chunk_desc_t *desc,
                        const uint8_t *const data[], uint8_t *pt)
{
  uint8_t dek[KS_KMS_KEY_LEN];
  uint8_t aad[CHUNK_AAD_LEN];
  uint8_t tag[KS_GCM_TAG_LEN];
  struct iovec ct[KS_EC_MAX_FRAGS + 1];
  ks_kms_wrapped_t w = {.key_version = desc->key_version,
                        .len = desc->wrapped_len};
  memcpy(w.data, desc->wrapped, desc->wrapped_len);
  chunk_aad(aad, desc->id, tenant);
  int rc = ks_kms_dek_unwrap(kms, tenant, &w, aad, sizeof(aad), dek);
  if (rc == 0) {
    int n = open_pieces(desc, data, ct, tag);
    rc = ks_gcm_openv(dek, desc->iv, aad, sizeof(aad), ct, n, tag, pt);
  }
  ks_secure_zero(dek, sizeof(dek));
  return rc;
}

/* The descriptor is internally consistent (as desc_decode checks). */
static int desc_check(const ks_chunk_desc_t *desc)
{
  if (desc->k < 1 || desc->m < 1 || desc->k + desc->m > KS_EC_MAX_FRAGS)
    return KS_ECORRUPT;
  if (desc->pt_len > KS_CHUNK_MAX_LEN ||
      desc->ct_len != desc->pt_len + KS_GCM_TAG_LEN ||
      desc->frag_len != ks_chunk_frag_len(desc->k, desc->pt_len))
    return KS_ECORRUPT;
  if (desc->key_version < 1 || desc->wrapped_len < 1 ||
      desc->wrapped_len > KS_CHUNK_WRAPPED_MAX)
    return KS_ECORRUPT;
  return 0;
}

int ks_chunk_open(struct ks_kms *kms, ks_ec_t *ec, const ks_id_t *tenant,
                  const ks_chunk_desc_t *desc, const uint8_t *const frags[],
                  void *pt, size_t pt_cap)
{
  const uint8_t *data[KS_EC_MAX_FRAGS];
  uint8_t *scratch = NULL;
  int rc = desc_check(desc);
  if (rc == 0 && (desc->k != ks_ec_k(ec) || desc->m != ks_ec_m(ec) ||
                  pt_cap < desc->pt_len || (pt == NULL && desc->pt_len > 0)))
    rc = -EINVAL;
  if (rc != 0) {
    if (pt != NULL)
      ks_secure_zero(pt, pt_cap);
    return rc;
  }
  rc = open_fragments(ec, desc, frags, data, &scratch);
  if (rc == 0 && !open_padding_ok(desc, data))
    rc = KS_EAUTH;
  if (rc == 0)
    rc = open_decrypt(kms, tenant, desc, data, pt);
  free(scratch);
  if (rc != 0 && desc->pt_len > 0)
    ks_secure_zero(pt, desc->pt_len);
  return rc;
}

/* ---- descriptor --------------------------------------------------------- */

void ks_chunk_desc_encode(ks_enc_t *e, const ks_chunk_desc_t *desc)
{
  ks_enc_u8(e, KS_CHUNK_DESC_FORMAT);
  ks_enc_bytes(e, desc->id, KS_CHUNK_ID_LEN);
  ks_enc_u8(e, desc->k);
  ks_enc_u8(e, desc->m);
  ks_enc_u32(e, desc->frag_len);
  ks_enc_u64(e, desc->pt_len);
  ks_enc_u64(e, desc->ct_len);
  ks_enc_bytes(e, desc->iv, KS_GCM_IV_LEN);
  ks_enc_u32(e, desc->key_version);
  ks_enc_blob(e, desc->wrapped, desc->wrapped_len);
}

int ks_chunk_desc_decode(ks_dec_t *d, ks_chunk_desc_t *desc)
{
  size_t wlen = 0;
  memset(desc, 0, sizeof(*desc));
  uint8_t format = ks_dec_u8(d);
  const uint8_t *id = ks_dec_bytes(d, KS_CHUNK_ID_LEN);
  desc->k = ks_dec_u8(d);
  desc->m = ks_dec_u8(d);
  desc->frag_len = ks_dec_u32(d);
  desc->pt_len = ks_dec_u64(d);
  desc->ct_len = ks_dec_u64(d);
  const uint8_t *iv = ks_dec_bytes(d, KS_GCM_IV_LEN);
  desc->key_version = ks_dec_u32(d);
  const uint8_t *w = ks_dec_blob(d, KS_CHUNK_WRAPPED_MAX, &wlen);
  int rc = d->err;
  if (rc == 0 && format != KS_CHUNK_DESC_FORMAT)
    rc = KS_ECORRUPT;
  if (rc == 0) {
    memcpy(desc->id, id, KS_CHUNK_ID_LEN);
    memcpy(desc->iv, iv, KS_GCM_IV_LEN);
    desc->wrapped_len = (uint32_t)wlen;
    if (wlen > 0)
      memcpy(desc->wrapped, w, wlen);
    rc = desc_check(desc);
  }
  if (rc != 0)
    memset(desc, 0, sizeof(*desc));
  return rc;
}
