/*
 * kms_file.c — the internal key provider of ks/kms.h: tenant keys in one
 * 0600 file, held in locked memory.
 *
 * Memory.  Each tenant's key material — its derivation secret and KEK
 * versions 1..n, 32 bytes each — lives in one region of its own from
 * secret_alloc: anonymous pages, mlock'ed (a failed mlock is logged once and
 * tolerated: RLIMIT_MEMLOCK is small on many hosts), MADV_DONTDUMP so a core
 * file never carries keys, and zeroed before munmap.  The file image is
 * built and read in such a region too, so no key byte passes through
 * malloc'd memory that could be freed without being wiped.  Tenant ids and
 * states are ordinary memory.
 *
 * File.  `tenant-keys`, little-endian:
 *     u32 magic "KSKF"  u32 format (1)  u32 tenant count
 *     per tenant: id[16]  u8 state (1 live, 2 destroyed)  u32 versions
 *                 live only: derive[32]  kek[32] x versions
 *     u32 crc32c of all the bytes before it
 * Writes go to `tenant-keys.tmp` (created 0600 with O_EXCL after removing a
 * stale one), fsync, rename over the file, fsync of the directory.  A
 * destroyed tenant stays as a tombstone without keys so its id cannot be
 * reused and answers -EKEYREVOKED.
 *
 * Changes.  A mutation changes memory, then persists; if persisting fails
 * before the rename the change is undone and memory matches the file again.
 * If it fails after the rename (the directory fsync) nobody knows whether the
 * new file survives a crash, so the provider poisons itself: every later op
 * returns -EIO until it is reopened (LMDB's failed-transaction rule).
 *
 * Locking.  A rwlock: wrap, unwrap and derive share it; create, rotate and
 * destroy (which fsync) hold it exclusively.  Tenants are found by linear
 * search: a development node has a handful.  The keyserver replaces this
 * provider for clusters.
 *
 * Wrapped DEK format: iv[12] ct[32] tag[16] under AES-256-GCM with the KEK
 * version the record names, AAD = "KSW1" || tenant id || u32 version ||
 * caller aad, so a record moved to another tenant, version or chunk fails.
 */
#include "ks/kms.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ks/crc32c.h"
#include "ks/crypto.h"
#include "ks/enc.h"
#include "ks/endian.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/rand.h"

#define KF_FILE "tenant-keys"
#define KF_TMP "tenant-keys.tmp"
#define KF_MAGIC 0x464b534bu /* "KSKF" little-endian */
#define KF_FORMAT 1u
#define KF_LIVE 1u
#define KF_DESTROYED 2u
#define KF_HDR_LEN 12u
#define KF_REC_HDR_LEN (KS_ID_LEN + 1 + 4)
/* 64 MiB of keys is ~2 million key versions: far past a dev node. */
#define KF_FILE_MAX ((size_t)64 << 20)
#define KF_VERSIONS_MAX 100000u
#define KF_WRAP_LEN (KS_GCM_IV_LEN + KS_KMS_KEY_LEN + KS_GCM_TAG_LEN)
#define KF_AAD_PREFIX "KSW1"
#define KF_AAD_FIXED (4 + KS_ID_LEN + 4)
#define KF_HKDF_SALT "kiseki-kms-file-v1"

_Static_assert(KF_WRAP_LEN <= KS_KMS_WRAPPED_MAX, "wrapped DEK fits");

typedef struct kf_tenant {
  ks_id_t id;
  unsigned state;     /* KF_LIVE or KF_DESTROYED */
  uint32_t nversions; /* KEK versions 1..nversions; current = nversions */
  uint8_t *keys;      /* secret region: derive[32], kek v1[32], ... */
  size_t keys_cap;    /* mapped bytes */
} kf_tenant_t;

typedef struct kf {
  ks_kms_t base; /* first: a ks_kms_t * is a kf_t * */
  pthread_rwlock_t lock;
  int dir_fd; /* flock'ed for the life of the handle */
  bool poisoned;
  bool mlock_warned;
  kf_tenant_t *tenants;
  size_t ntenants, cap;
  ks_kms_file_free_cb free_cb;
  void *free_arg;
} kf_t;

static const ks_kms_ops_t kf_ops;

/* ---- locked memory ------------------------------------------------------ */

static int secret_alloc(kf_t *kf, size_t n, uint8_t **out, size_t *cap)
{
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t len = (n + page - 1) / page * page;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED)
    return -ENOMEM;
  (void)madvise(p, len, MADV_DONTDUMP); /* best effort: old kernels */
  if (mlock(p, len) != 0 && !kf->mlock_warned) {
    kf->mlock_warned = true;
    ks_log_warn("kms", "kms_mlock_failed", "err=%s bytes=%zu",
                ks_errname(-errno), len);
  }
  *out = p;
  *cap = len;
  return 0;
}

static void secret_free(kf_t *kf, uint8_t *p, size_t cap)
{
  if (p == NULL)
    return;
  ks_secure_zero(p, cap);
  if (kf->free_cb != NULL)
    kf->free_cb(p, cap, kf->free_arg);
  (void)munlock(p, cap);
  (void)munmap(p, cap);
}

static uint8_t *tenant_derive_secret(const kf_tenant_t *t)
{
  return t->keys;
}

static uint8_t *tenant_kek(const kf_tenant_t *t, uint32_t version)
{
  return t->keys + (size_t)KS_KMS_KEY_LEN * version;
}

static void tenant_keys_drop(kf_t *kf, kf_tenant_t *t)
{
  secret_free(kf, t->keys, t->keys_cap);
  t->keys = NULL;
  t->keys_cap = 0;
}

/* ---- the file image ----------------------------------------------------- */

static size_t image_len(const kf_t *kf)
{
  size_t n = KF_HDR_LEN + 4;
  for (size_t i = 0; i < kf->ntenants; i++) {
    const kf_tenant_t *t = &kf->tenants[i];
    n += KF_REC_HDR_LEN;
    if (t->state == KF_LIVE)
      n += (size_t)KS_KMS_KEY_LEN * (1 + t->nversions);
  }
  return n;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
  ks_put_le32(p, v);
  return p + 4;
}

/* Serialise every tenant into img (image_len bytes). */
static void image_build(const kf_t *kf, uint8_t *img, size_t len)
{
  uint8_t *p = put32(img, KF_MAGIC);
  p = put32(p, KF_FORMAT);
  p = put32(p, (uint32_t)kf->ntenants);
  for (size_t i = 0; i < kf->ntenants; i++) {
    const kf_tenant_t *t = &kf->tenants[i];
    memcpy(p, t->id.b, KS_ID_LEN);
    p += KS_ID_LEN;
    *p++ = (uint8_t)t->state;
    p = put32(p, t->nversions);
    if (t->state == KF_LIVE) {
      size_t n = (size_t)KS_KMS_KEY_LEN * (1 + t->nversions);
      memcpy(p, t->keys, n);
      p += n;
    }
  }
  put32(p, ks_crc32c(0, img, (size_t)(p - img)));
  assert((size_t)(p + 4 - img) == len);
  (void)len;
}

/* Append one tenant record from d; its keys go into a fresh secret region. */
static int image_parse_tenant(kf_t *kf, ks_dec_t *d)
{
  kf_tenant_t t = {0};
  const uint8_t *id = ks_dec_bytes(d, KS_ID_LEN);
  t.state = ks_dec_u8(d);
  t.nversions = ks_dec_u32(d);
  if (d->err != 0)
    return KS_ECORRUPT;
  memcpy(t.id.b, id, KS_ID_LEN);
  if (t.state == KF_DESTROYED) {
    kf->tenants[kf->ntenants++] = t;
    return 0;
  }
  if (t.state != KF_LIVE || t.nversions < 1 || t.nversions > KF_VERSIONS_MAX)
    return KS_ECORRUPT;
  size_t n = (size_t)KS_KMS_KEY_LEN * (1 + t.nversions);
  const uint8_t *keys = ks_dec_bytes(d, n);
  if (keys == NULL)
    return KS_ECORRUPT;
  int rc = secret_alloc(kf, n, &t.keys, &t.keys_cap);
  if (rc != 0)
    return rc;
  memcpy(t.keys, keys, n);
  kf->tenants[kf->ntenants++] = t;
  return 0;
}

static int image_parse(kf_t *kf, const uint8_t *img, size_t len)
{
  if (len < KF_HDR_LEN + 4 ||
      ks_crc32c(0, img, len - 4) != ks_get_le32(img + len - 4))
    return KS_ECORRUPT;
  ks_dec_t d;
  ks_dec_init(&d, img, len - 4);
  uint32_t magic = ks_dec_u32(&d);
  uint32_t format = ks_dec_u32(&d);
  uint32_t count = ks_dec_u32(&d);
  if (magic != KF_MAGIC || format != KF_FORMAT ||
      count > (len - KF_HDR_LEN) / KF_REC_HDR_LEN)
    return KS_ECORRUPT;
  kf->tenants = calloc(count ? count : 1, sizeof(*kf->tenants));
  if (kf->tenants == NULL)
    return -ENOMEM;
  kf->cap = count ? count : 1;
  for (uint32_t i = 0; i < count; i++) {
    int rc = image_parse_tenant(kf, &d);
    if (rc != 0)
      return rc;
  }
  return ks_dec_finish(&d) == 0 ? 0 : KS_ECORRUPT;
}

/* ---- file I/O ----------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (r == 0)
      return KS_ECORRUPT; /* shrank under us */
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Write img to the temporary file and fsync it. */
static int tmp_write(const kf_t *kf, const uint8_t *img, size_t len)
{
  if (unlinkat(kf->dir_fd, KF_TMP, 0) != 0 && errno != ENOENT)
    return -errno;
  int fd = openat(kf->dir_fd, KF_TMP,
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  int rc = write_all(fd, img, len);
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc != 0)
    (void)unlinkat(kf->dir_fd, KF_TMP, 0);
  return rc;
}

/* Make the file match memory.  Returns 0, an error with the old file intact,
 * or (after the rename) an error that poisons the provider. */
static int kf_persist(kf_t *kf)
{
  size_t len = image_len(kf), cap;
  uint8_t *img;
  if (len > KF_FILE_MAX)
    return KS_ETOOBIG;
  int rc = secret_alloc(kf, len, &img, &cap);
  if (rc != 0)
    return rc;
  image_build(kf, img, len);
  rc = tmp_write(kf, img, len);
  secret_free(kf, img, cap);
  if (rc != 0)
    return rc;
  if (renameat(kf->dir_fd, KF_TMP, kf->dir_fd, KF_FILE) != 0) {
    rc = -errno;
    (void)unlinkat(kf->dir_fd, KF_TMP, 0);
    return rc;
  }
  if (fsync(kf->dir_fd) != 0) {
    rc = -errno;
    kf->poisoned = true;
    ks_log_error("kms", "kms_poisoned", "err=%s", ks_errname(rc));
  }
  return rc;
}

/* A key file we may trust: regular, ours, no group/other access. */
static int file_check(int fd)
{
  struct stat st;
  if (fstat(fd, &st) != 0)
    return -errno;
  if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 077) != 0) {
    ks_log_error("kms", "kms_key_file_insecure", "file=%s mode=%04o uid=%u",
                 KF_FILE, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
    return -EPERM;
  }
  if ((size_t)st.st_size > KF_FILE_MAX)
    return KS_ETOOBIG;
  return (int)st.st_size;
}

static int kf_load_fd(kf_t *kf, int fd)
{
  int size = file_check(fd);
  if (size < 0)
    return size;
  uint8_t *img;
  size_t cap;
  int rc = secret_alloc(kf, size ? (size_t)size : 1, &img, &cap);
  if (rc != 0)
    return rc;
  rc = read_all(fd, img, (size_t)size);
  if (rc == 0)
    rc = image_parse(kf, img, (size_t)size);
  secret_free(kf, img, cap);
  return rc;
}

static int kf_load(kf_t *kf)
{
  int fd = openat(kf->dir_fd, KF_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return 0; /* a new store */
  if (fd < 0)
    return errno == ELOOP ? -EPERM : -errno;
  int rc = kf_load_fd(kf, fd);
  (void)close(fd);
  return rc;
}

/* A directory just made must survive a crash before a file in it is
 * trusted to: fsync its parent. */
static int parent_sync(const char *dir)
{
  char *copy = strdup(dir);
  if (copy == NULL)
    return -ENOMEM;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = fd < 0 ? -errno : 0;
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  if (fd >= 0)
    (void)close(fd);
  free(copy);
  return rc;
}

static int dir_open(const char *dir, int *out)
{
  if (mkdir(dir, 0700) == 0) {
    int rc = parent_sync(dir);
    if (rc != 0)
      return rc;
  } else if (errno != EEXIST) {
    return -errno;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    (void)close(fd);
    return rc;
  }
  *out = fd;
  return 0;
}

/* ---- tenants ------------------------------------------------------------ */

static kf_tenant_t *tenant_find(kf_t *kf, const ks_id_t *id)
{
  for (size_t i = 0; i < kf->ntenants; i++)
    if (ks_id_cmp(&kf->tenants[i].id, id) == 0)
      return &kf->tenants[i];
  return NULL;
}

/* The live tenant id, or the error the header promises for it. */
static int tenant_live(kf_t *kf, const ks_id_t *id, kf_tenant_t **out)
{
  if (kf->poisoned)
    return -EIO;
  kf_tenant_t *t = tenant_find(kf, id);
  if (t == NULL)
    return -ENOKEY;
  if (t->state != KF_LIVE)
    return -EKEYREVOKED;
  *out = t;
  return 0;
}

static int tenant_append(kf_t *kf, kf_tenant_t *t)
{
  if (kf->ntenants == kf->cap) {
    size_t cap = kf->cap ? kf->cap * 2 : 4;
    kf_tenant_t *n = realloc(kf->tenants, cap * sizeof(*n));
    if (n == NULL)
      return -ENOMEM;
    kf->tenants = n;
    kf->cap = cap;
  }
  kf->tenants[kf->ntenants++] = *t;
  return 0;
}

static int kf_tenant_create(ks_kms_t *kms, const ks_id_t *tenant)
{
  kf_t *kf = (kf_t *)kms;
  kf_tenant_t t = {.id = *tenant, .state = KF_LIVE, .nversions = 1};
  pthread_rwlock_wrlock(&kf->lock);
  const kf_tenant_t *old = tenant_find(kf, tenant);
  int rc = kf->poisoned ? -EIO : 0;
  if (rc == 0 && old != NULL)
    rc = old->state == KF_LIVE ? -EEXIST : -EKEYREVOKED;
  if (rc == 0)
    rc = secret_alloc(kf, 2 * KS_KMS_KEY_LEN, &t.keys, &t.keys_cap);
  if (rc == 0 && ks_rand_bytes(t.keys, 2 * KS_KMS_KEY_LEN) != 0)
    rc = KS_ECRYPTO;
  if (rc == 0)
    rc = tenant_append(kf, &t);
  if (rc == 0) {
    rc = kf_persist(kf);
    if (rc != 0 && !kf->poisoned)
      kf->ntenants--; /* undo: the file does not have it */
  }
  if (rc != 0 && !kf->poisoned)
    secret_free(kf, t.keys, t.keys_cap);
  pthread_rwlock_unlock(&kf->lock);
  return rc;
}

static int kf_tenant_rotate(ks_kms_t *kms, const ks_id_t *tenant,
                            uint32_t *version)
{
  kf_t *kf = (kf_t *)kms;
  kf_tenant_t *t = NULL;
  uint8_t *keys = NULL;
  size_t cap = 0;
  pthread_rwlock_wrlock(&kf->lock);
  int rc = tenant_live(kf, tenant, &t);
  if (rc == 0 && t->nversions >= KF_VERSIONS_MAX)
    rc = KS_ETOOBIG;
  size_t old = (size_t)KS_KMS_KEY_LEN * (1 + (t ? t->nversions : 0));
  if (rc == 0)
    rc = secret_alloc(kf, old + KS_KMS_KEY_LEN, &keys, &cap);
  if (rc == 0 && ks_rand_bytes(keys + old, KS_KMS_KEY_LEN) != 0)
    rc = KS_ECRYPTO;
  if (rc == 0) {
    memcpy(keys, t->keys, old);
    uint8_t *old_keys = t->keys;
    size_t old_cap = t->keys_cap;
    t->keys = keys;
    t->keys_cap = cap;
    t->nversions++;
    rc = kf_persist(kf);
    if (rc != 0 && !kf->poisoned) { /* undo */
      t->keys = old_keys;
      t->keys_cap = old_cap;
      t->nversions--;
    } else {
      keys = old_keys;
      cap = old_cap;
      *version = t->nversions;
    }
  }
  secret_free(kf, keys, cap);
  pthread_rwlock_unlock(&kf->lock);
  return rc;
}

static int kf_tenant_destroy(ks_kms_t *kms, const ks_id_t *tenant)
{
  kf_t *kf = (kf_t *)kms;
  kf_tenant_t *t = NULL;
  pthread_rwlock_wrlock(&kf->lock);
  int rc = tenant_live(kf, tenant, &t);
  if (rc == 0) {
    t->state = KF_DESTROYED;
    rc = kf_persist(kf);
    if (rc != 0 && !kf->poisoned)
      t->state = KF_LIVE; /* the file still has the keys */
    else
      tenant_keys_drop(kf, t);
  }
  pthread_rwlock_unlock(&kf->lock);
  char hex[KS_ID_HEX_LEN + 1];
  if (rc == 0)
    ks_log_info("kms", "kms_tenant_shredded", "provider=file tenant=%s",
                ks_id_to_hex(tenant, hex));
  return rc;
}

/* ---- key use ------------------------------------------------------------ */

static int kf_key_derive(ks_kms_t *kms, const ks_id_t *tenant,
                         const char *purpose, uint8_t out[KS_KMS_KEY_LEN])
{
  kf_t *kf = (kf_t *)kms;
  kf_tenant_t *t = NULL;
  uint8_t info[KS_KMS_PURPOSE_MAX + 1 + KS_ID_LEN];
  size_t plen = purpose ? strnlen(purpose, KS_KMS_PURPOSE_MAX + 1) : 0;
  if (plen == 0 || plen > KS_KMS_PURPOSE_MAX) {
    ks_secure_zero(out, KS_KMS_KEY_LEN);
    return -EINVAL;
  }
  memcpy(info, purpose, plen);
  info[plen] = 0; /* the label cannot run into the tenant id */
  memcpy(info + plen + 1, tenant->b, KS_ID_LEN);
  pthread_rwlock_rdlock(&kf->lock);
  int rc = tenant_live(kf, tenant, &t);
  if (rc == 0)
    rc = ks_hkdf_sha256(out, KS_KMS_KEY_LEN, KF_HKDF_SALT,
                        sizeof(KF_HKDF_SALT) - 1, tenant_derive_secret(t),
                        KS_KMS_KEY_LEN, info, plen + 1 + KS_ID_LEN);
  pthread_rwlock_unlock(&kf->lock);
  if (rc != 0)
    ks_secure_zero(out, KS_KMS_KEY_LEN);
  return rc;
}

/* The GCM AAD of a wrap: prefix, tenant, version, then the caller's. */
static size_t wrap_aad(uint8_t *buf, const ks_id_t *tenant, uint32_t version,
                       const void *aad, size_t aad_len)
{
  memcpy(buf, KF_AAD_PREFIX, 4);
  memcpy(buf + 4, tenant->b, KS_ID_LEN);
  ks_put_le32(buf + 4 + KS_ID_LEN, version);
  if (aad_len > 0)
    memcpy(buf + KF_AAD_FIXED, aad, aad_len);
  return KF_AAD_FIXED + aad_len;
}

static int kf_dek_wrap(ks_kms_t *kms, const ks_id_t *tenant,
                       const uint8_t dek[KS_KMS_KEY_LEN], const void *aad,
                       size_t aad_len, ks_kms_wrapped_t *out)
{
  kf_t *kf = (kf_t *)kms;
  kf_tenant_t *t = NULL;
  uint8_t a[KF_AAD_FIXED + KS_KMS_AAD_MAX];
  memset(out, 0, sizeof(*out));
  if (aad_len > KS_KMS_AAD_MAX || (aad == NULL && aad_len > 0))
    return -EINVAL;
  uint8_t *iv = out->data, *ct = iv + KS_GCM_IV_LEN;
  uint8_t *tag = ct + KS_KMS_KEY_LEN;
  if (ks_rand_bytes(iv, KS_GCM_IV_LEN) != 0)
    return KS_ECRYPTO;
  pthread_rwlock_rdlock(&kf->lock);
  int rc = tenant_live(kf, tenant, &t);
  if (rc == 0) {
    size_t n = wrap_aad(a, tenant, t->nversions, aad, aad_len);
    rc = ks_gcm_seal(tenant_kek(t, t->nversions), iv, a, n, dek, KS_KMS_KEY_LEN,
                     ct, tag);
    out->key_version = t->nversions;
  }
  pthread_rwlock_unlock(&kf->lock);
  if (rc != 0)
    memset(out, 0, sizeof(*out));
  else
    out->len = KF_WRAP_LEN;
  return rc;
}

static int kf_dek_unwrap(ks_kms_t *kms, const ks_id_t *tenant,
                         const ks_kms_wrapped_t *w, const void *aad,
                         size_t aad_len, uint8_t dek[KS_KMS_KEY_LEN])
{
  kf_t *kf = (kf_t *)kms;
  kf_tenant_t *t = NULL;
  uint8_t a[KF_AAD_FIXED + KS_KMS_AAD_MAX];
  ks_secure_zero(dek, KS_KMS_KEY_LEN);
  if (aad_len > KS_KMS_AAD_MAX || (aad == NULL && aad_len > 0))
    return -EINVAL;
  pthread_rwlock_rdlock(&kf->lock);
  int rc = tenant_live(kf, tenant, &t);
  if (rc == 0 && (w->len != KF_WRAP_LEN || w->key_version < 1 ||
                  w->key_version > t->nversions))
    rc = KS_EAUTH; /* not a record this tenant made */
  if (rc == 0) {
    const uint8_t *iv = w->data, *ct = iv + KS_GCM_IV_LEN;
    size_t n = wrap_aad(a, tenant, w->key_version, aad, aad_len);
    rc = ks_gcm_open(tenant_kek(t, w->key_version), iv, a, n, ct,
                     KS_KMS_KEY_LEN, ct + KS_KMS_KEY_LEN, dek);
  }
  pthread_rwlock_unlock(&kf->lock);
  return rc;
}

/* ---- life cycle --------------------------------------------------------- */

static void kf_free(kf_t *kf)
{
  for (size_t i = 0; i < kf->ntenants; i++)
    tenant_keys_drop(kf, &kf->tenants[i]);
  free(kf->tenants);
  if (kf->dir_fd >= 0)
    (void)close(kf->dir_fd); /* releases the flock */
  pthread_rwlock_destroy(&kf->lock);
  free(kf);
}

static void kf_close(ks_kms_t *kms)
{
  kf_free((kf_t *)kms);
}

int ks_kms_file_open(const char *dir, ks_kms_t **out)
{
  *out = NULL;
  kf_t *kf = calloc(1, sizeof(*kf));
  if (kf == NULL)
    return -ENOMEM;
  kf->base.ops = &kf_ops;
  kf->dir_fd = -1;
  if (pthread_rwlock_init(&kf->lock, NULL) != 0) {
    free(kf);
    return -ENOMEM;
  }
  int rc = dir_open(dir, &kf->dir_fd);
  if (rc == 0)
    rc = kf_load(kf);
  if (rc != 0) {
    kf_free(kf);
    return rc;
  }
  *out = &kf->base;
  return 0;
}

void ks_kms_file_set_free_cb(ks_kms_t *kms, ks_kms_file_free_cb fn, void *arg)
{
  assert(kms->ops == &kf_ops);
  kf_t *kf = (kf_t *)kms;
  kf->free_cb = fn;
  kf->free_arg = arg;
}

static const ks_kms_ops_t kf_ops = {
    .version = KS_KMS_OPS_VERSION,
    .name = "file",
    .tenant_create = kf_tenant_create,
    .key_derive = kf_key_derive,
    .dek_wrap = kf_dek_wrap,
    .dek_unwrap = kf_dek_unwrap,
    .tenant_rotate = kf_tenant_rotate,
    .tenant_destroy = kf_tenant_destroy,
    .close = kf_close,
};
