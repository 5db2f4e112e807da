/*
 * chunk.h — the chunk codec: plaintext chunk <-> k+m encrypted fragments
 * plus a small descriptor (DESIGN §3, §4, §7).
 *
 * Seal, in order:
 *   1. id  = HMAC-SHA256(id-key, plaintext), id-key = the tenant's
 *            ks_kms_key_derive(KS_CHUNK_ID_PURPOSE): equal chunks of one
 *            tenant get equal ids (dedup), other tenants' ids are unlinkable.
 *   2. DEK = 256 random bits, IV = 96 random bits, fresh for every chunk.
 *   3. ct || tag = AES-256-GCM(DEK, IV, AAD = id || tenant id, plaintext),
 *            written straight into the k data fragments, zero-padded.
 *   4. the DEK is wrapped by the tenant KEK through the KMS (same AAD).
 *   5. m parity fragments by Reed-Solomon (ks/ec.h).
 * Open reverses it from any k fragments: rebuild missing data fragments,
 * check the padding is zero, unwrap the DEK, decrypt and verify the tag.
 *
 * Fragment layout: ct_len = pt_len + 16 bytes (ciphertext, then the GCM
 * tag) split over k fragments of frag_len = ks_ec_frag_len(k, ct_len)
 * bytes each, the tail of the last ones zero.  A seal writes all k + m
 * fragments into one caller buffer, fragment i at frags + i * frag_len, so
 * the data fragments are one contiguous ciphertext.
 *
 * Descriptor: what the metadata shard keeps per extent to read the chunk
 * back (ks_chunk_desc_t); ks_chunk_desc_encode/decode give its ks/enc.h
 * form (about 140 bytes).  It holds no secret: the DEK is wrapped.
 *
 * Errors: 0, or
 *   KS_EAUTH      open: the fragments, descriptor or tenant do not verify
 *                 (tampered or corrupt bytes, wrong tenant or KEK)
 *   -ENODATA      open: fewer than k fragments
 *   -EINVAL       bad arguments (profile does not match the descriptor,
 *                 buffer too small, chunk longer than KS_CHUNK_MAX_LEN)
 *   KS_EPROTO / KS_ECORRUPT / KS_ETOOBIG   desc_decode: malformed input
 *   anything ks/kms.h returns (-ENOKEY, -EKEYREVOKED, ...), -ENOMEM,
 *   KS_ECRYPTO.
 * On any failure of open, pt[0..pt_len) is zeroed: plaintext never leaves
 * on error.  On failure of seal, *desc is zeroed and frags is unspecified.
 * Every DEK and id-key is wiped (ks_secure_zero) before these return.
 *
 * Threads: the functions keep no state; they are as thread-safe as the
 * ks_kms_t and ks_ec_t passed in (both are).  They block for as long as a
 * KMS call does (see ks/kms.h): run them on a worker thread.
 */
#ifndef KS_CHUNK_H
#define KS_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "ks/crypto.h"
#include "ks/ec.h"
#include "ks/enc.h"
#include "ks/id.h"
#include "ks/proto_chunk.h"

struct ks_kms;

/* KS_CHUNK_ID_LEN (32: HMAC-SHA256) comes from the chunkd protocol. */
#define KS_CHUNK_SIZE_DEFAULT ((size_t)4 << 20)
/* The RPC layer's default bulk limit: a fragment always fits one message. */
#define KS_CHUNK_MAX_LEN ((size_t)64 << 20)
/* The key_derive label of the chunk-id key; changing it changes every id. */
#define KS_CHUNK_ID_PURPOSE "kiseki/chunk-id/v1"
#define KS_CHUNK_DESC_FORMAT 1
#define KS_CHUNK_WRAPPED_MAX 128 /* == KS_KMS_WRAPPED_MAX */

typedef struct ks_chunk_desc {
  uint8_t id[KS_CHUNK_ID_LEN];
  uint64_t pt_len;   /* plaintext bytes */
  uint64_t ct_len;   /* pt_len + KS_GCM_TAG_LEN */
  uint32_t frag_len; /* bytes per fragment */
  uint8_t k, m;      /* EC profile */
  uint8_t iv[KS_GCM_IV_LEN];
  uint32_t key_version; /* tenant KEK version that wrapped the DEK */
  uint32_t wrapped_len;
  uint8_t wrapped[KS_CHUNK_WRAPPED_MAX]; /* the DEK, wrapped */
} ks_chunk_desc_t;

/* Bytes per fragment for a chunk of pt_len bytes under k data fragments;
 * 0 if pt_len > KS_CHUNK_MAX_LEN.  The seal buffer is (k + m) times this. */
size_t ks_chunk_frag_len(unsigned k, size_t pt_len);

/* The chunk id of pt[0..n) for tenant: HMAC-SHA256 under the tenant's
 * derived id-key.  Deterministic per tenant. */
int ks_chunk_id(struct ks_kms *kms, const ks_id_t *tenant, const void *pt,
                size_t n, uint8_t id[KS_CHUNK_ID_LEN]);

/* Seal pt[0..pt_len) for tenant under profile ec into frags (frags_len >=
 * (k + m) * ks_chunk_frag_len(k, pt_len) bytes, 64-byte alignment best) and
 * fill *desc.  pt may be NULL when pt_len is 0; pt must not overlap frags. */
int ks_chunk_seal(struct ks_kms *kms, const ks_ec_t *ec, const ks_id_t *tenant,
                  const void *pt, size_t pt_len, uint8_t *frags,
                  size_t frags_len, ks_chunk_desc_t *desc);

/* Open the chunk desc describes.  frags[0..k+m) point at the fragments
 * (desc->frag_len bytes each, index order, NULL where missing); they are
 * only read.  pt receives desc->pt_len bytes (pt_cap must be at least
 * that).  ec must be the profile desc names (desc->k, desc->m). */
int ks_chunk_open(struct ks_kms *kms, ks_ec_t *ec, const ks_id_t *tenant,
                  const ks_chunk_desc_t *desc, const uint8_t *const frags[],
                  void *pt, size_t pt_cap);

/* Append desc to e (errors are sticky in e: check ks_enc_finish). */
void ks_chunk_desc_encode(ks_enc_t *e, const ks_chunk_desc_t *desc);
/* Read one descriptor from d into *desc and check that it is consistent
 * (profile limits, lengths, fragment size).  0, the decoder's error, or
 * KS_ECORRUPT for a well-formed but impossible descriptor. */
int ks_chunk_desc_decode(ks_dec_t *d, ks_chunk_desc_t *desc);

#endif /* KS_CHUNK_H */
