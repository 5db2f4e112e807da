/*
 * kms.h — the tenant key provider interface (DESIGN §7, envelope
 * encryption) and the internal file-backed provider.
 *
 * Layer 1 of envelope encryption is a fresh DEK per chunk; layer 2 is the
 * tenant's KEK, which wraps each DEK.  A KEK never leaves its provider:
 * Vault transit, KMIP 2.1, AWS KMS and PKCS#11 tokens all wrap and unwrap
 * on the caller's behalf and do not export keys, so this interface offers
 * wrap/unwrap and purpose-bound key derivation, never "give me the KEK".
 * Every backend is one ks_kms_ops_t function table (libraft's raft_io
 * model) behind a ks_kms_t handle; callers use the ks_kms_* inline wrappers
 * and never look inside.
 *
 * Tenant keys:
 *   - Each tenant has KEK versions 1, 2, ...; the highest is current.
 *     dek_wrap uses the current version and records it in the wrapped
 *     record; dek_unwrap uses the version the record names, so rotation
 *     (tenant_rotate) never makes existing data unreadable and never needs
 *     a rewrite (rewrapping is unwrap + wrap, done lazily by callers).
 *   - key_derive gives a 32-byte key for a purpose label (HKDF with the
 *     label and tenant id as info) from a per-tenant derivation secret that
 *     is NOT rotated: chunk ids are HMACs under a derived key, and they
 *     must stay stable for content addressing (dedup) across rotations.
 *   - tenant_destroy is crypto-shredding: every KEK version and the
 *     derivation secret are erased, so every DEK the tenant ever wrapped,
 *     and with it all of its data, becomes unreadable.  Afterwards the
 *     tenant id answers -EKEYREVOKED and cannot be created again.
 *
 * Wrapping binds context: the caller's aad (the chunk codec passes
 * chunk id || tenant id) is authenticated with the DEK, so a wrapped DEK
 * copied onto another chunk or tenant fails to unwrap (KS_EAUTH).
 *
 * Errors (every op): 0, or
 *   -ENOKEY        no such tenant
 *   -EKEYREVOKED   the tenant was destroyed (crypto-shredded)
 *   -EEXIST        tenant_create: the tenant exists
 *   KS_EAUTH       unwrap: wrong tenant, key version, aad, or tampered record
 *   -EINVAL        bad arguments (aad too long, unknown version, ...)
 *   -ENOMEM, negated errno from storage, KS_ECRYPTO, KS_ETIMEDOUT or
 *   KS_EREMOTE from remote backends, KS_ENOTIMPL for an op a backend lacks.
 * Secret outputs (dek, derived key) are zeroed on every failure.
 *
 * Ownership: whoever opened a provider owns the handle and must call
 * ks_kms_close exactly once; close erases every cached key.  Keys passed in
 * are borrowed for the call only; keys passed out belong to the caller, who
 * must ks_secure_zero them when done.
 *
 * Threads: every op of every backend is thread-safe (the backend locks
 * internally) and may block — on fsync for the file provider, on the network
 * for remote ones — so event-loop code calls them from a worker thread
 * (uv_queue_work), never on the loop.  close must not race with other ops.
 */
#ifndef KS_KMS_H
#define KS_KMS_H

#include <stddef.h>
#include <stdint.h>

#include "ks/id.h"

#define KS_KMS_KEY_LEN 32      /* DEKs, KEKs and derived keys: AES-256 */
#define KS_KMS_WRAPPED_MAX 128 /* room for any backend's wrapped DEK */
#define KS_KMS_AAD_MAX 128     /* caller context bound into a wrap */
#define KS_KMS_PURPOSE_MAX 64  /* key_derive label length */
#define KS_KMS_OPS_VERSION 1

/* A wrapped DEK as stored in metadata.  data[0..len) is opaque to callers
 * and its format belongs to the backend that made it. */
typedef struct ks_kms_wrapped {
  uint32_t key_version; /* KEK version that wrapped it, >= 1 */
  uint32_t len;         /* bytes used in data */
  uint8_t data[KS_KMS_WRAPPED_MAX];
} ks_kms_wrapped_t;

typedef struct ks_kms ks_kms_t;

/* A backend's function table.  Fields are appended, never reordered; a
 * caller checks version before using an op added after version 1.  Every
 * op is required (a backend without one returns KS_ENOTIMPL). */
typedef struct ks_kms_ops {
  uint32_t version; /* KS_KMS_OPS_VERSION the table was written for */
  const char *name; /* "file", "vault", "kmip", "aws", "pkcs11" */
  /* Create a tenant with KEK version 1 and a derivation secret. */
  int (*tenant_create)(ks_kms_t *kms, const ks_id_t *tenant);
  /* out = a key for purpose (1..KS_KMS_PURPOSE_MAX bytes, no NUL needed),
   * the same for the life of the tenant. */
  int (*key_derive)(ks_kms_t *kms, const ks_id_t *tenant, const char *purpose,
                    uint8_t out[KS_KMS_KEY_LEN]);
  /* Wrap dek under the current KEK, binding aad[0..aad_len). */
  int (*dek_wrap)(ks_kms_t *kms, const ks_id_t *tenant,
                  const uint8_t dek[KS_KMS_KEY_LEN], const void *aad,
                  size_t aad_len, ks_kms_wrapped_t *out);
  /* Unwrap w (the same aad as at wrap time) into dek. */
  int (*dek_unwrap)(ks_kms_t *kms, const ks_id_t *tenant,
                    const ks_kms_wrapped_t *w, const void *aad, size_t aad_len,
                    uint8_t dek[KS_KMS_KEY_LEN]);
  /* Add a KEK version and make it current; *version receives it. */
  int (*tenant_rotate)(ks_kms_t *kms, const ks_id_t *tenant, uint32_t *version);
  /* Crypto-shred the tenant (see above); durable when it returns 0. */
  int (*tenant_destroy)(ks_kms_t *kms, const ks_id_t *tenant);
  /* Erase cached keys and free the handle. */
  void (*close)(ks_kms_t *kms);
} ks_kms_ops_t;

/* The handle every backend embeds as its first member. */
struct ks_kms {
  const ks_kms_ops_t *ops;
};

static inline int ks_kms_tenant_create(ks_kms_t *kms, const ks_id_t *tenant)
{
  return kms->ops->tenant_create(kms, tenant);
}

static inline int ks_kms_key_derive(ks_kms_t *kms, const ks_id_t *tenant,
                                    const char *purpose,
                                    uint8_t out[KS_KMS_KEY_LEN])
{
  return kms->ops->key_derive(kms, tenant, purpose, out);
}

static inline int ks_kms_dek_wrap(ks_kms_t *kms, const ks_id_t *tenant,
                                  const uint8_t dek[KS_KMS_KEY_LEN],
                                  const void *aad, size_t aad_len,
                                  ks_kms_wrapped_t *out)
{
  return kms->ops->dek_wrap(kms, tenant, dek, aad, aad_len, out);
}

static inline int ks_kms_dek_unwrap(ks_kms_t *kms, const ks_id_t *tenant,
                                    const ks_kms_wrapped_t *w, const void *aad,
                                    size_t aad_len, uint8_t dek[KS_KMS_KEY_LEN])
{
  return kms->ops->dek_unwrap(kms, tenant, w, aad, aad_len, dek);
}

static inline int ks_kms_tenant_rotate(ks_kms_t *kms, const ks_id_t *tenant,
                                       uint32_t *version)
{
  return kms->ops->tenant_rotate(kms, tenant, version);
}

static inline int ks_kms_tenant_destroy(ks_kms_t *kms, const ks_id_t *tenant)
{
  return kms->ops->tenant_destroy(kms, tenant);
}

/* Close and free; NULL is a no-op. */
static inline void ks_kms_close(ks_kms_t *kms)
{
  if (kms != NULL)
    kms->ops->close(kms);
}

/* ---- The internal provider: keys in a file ------------------------------
 *
 * For single-node and development clusters (the replicated keyserver and
 * the external backends come later).  dir holds one file, `tenant-keys`,
 * mode 0600, with every tenant's key versions and derivation secret in the
 * clear: its protection is the file mode and the disk, nothing more.
 * Every change is written to a temporary file, fsync'd, renamed over the
 * old one and the directory fsync'd, so a crash leaves the old or the new
 * file, never a torn one; a file whose checksum fails is refused
 * (KS_ECORRUPT).  Crypto-shredding rewrites the file without the tenant's
 * keys, but a file system may keep the old blocks: on real deployments use
 * a remote backend, or an encrypted device, when shredding must be
 * physical.
 *
 * Open refuses a key file that is not a regular file owned by this user or
 * that group or others may access in any way (-EPERM, logged as
 * kms_key_file_insecure), and takes an exclusive flock on dir so only one
 * process uses it (-EBUSY otherwise).  dir is created (0700) if missing.
 * Keys are held in memory locked with mlock where the RLIMIT_MEMLOCK
 * allows (logged once otherwise), excluded from core dumps, and zeroed
 * before that memory is released.
 *
 * Returns 0 and a handle in *out, or a negative code (then *out is NULL). */
int ks_kms_file_open(const char *dir, ks_kms_t **out);

/* Test seam: fn(p, n, arg) is called for every region of key memory the
 * provider releases, after it was zeroed and before it is unmapped, so a
 * test can check that no key byte survives.  Not for production use; set
 * it before other ops (not thread-safe against them).  kms must come from
 * ks_kms_file_open. */
typedef void (*ks_kms_file_free_cb)(const void *p, size_t n, void *arg);
void ks_kms_file_set_free_cb(ks_kms_t *kms, ks_kms_file_free_cb fn, void *arg);

#endif /* KS_KMS_H */
