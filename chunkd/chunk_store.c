/*
 * chunk_store.c — fragments as files in device directories (contract and
 * on-disk format in ks/chunk_store.h).
 *
 * DESIGN.
 *   1. One file per fragment, header + payload, so a fragment is written
 *      with one writev, read with two preads, and removed with one unlink;
 *      the file system does allocation and free-space accounting.  (A
 *      preallocated-file layout for raw devices can replace this behind the
 *      same header.)
 *   2. Durability is ordered: temporary file written in full, fsync(file),
 *      rename over the final name, fsync(directory), return.  A crash at any
 *      point leaves either no fragment (plus a temporary file removed at the
 *      next open) or the whole fragment.  The 256 sub-directories are made
 *      (and their parent fsync'd) once at open, so a put never creates one.
 *   3. Nothing read from disk is trusted: the header has its own crc and
 *      names its key (a file copied or renamed into the wrong place is
 *      corrupt), the file size must match the header, and the payload crc is
 *      checked on every read before any byte leaves the store.
 *   4. Per-device state touched by worker threads is two atomics (failed,
 *      fragment count); everything else is fixed at open.  Only fds are
 *      kept open: the device directory (holding the flock) and its frags/.
 *   5. Read buffers of large payloads are reused (READ BUFFERS below):
 *      a fresh 1 MiB allocation per get cost more CPU (page faults, zeroed
 *      pages, the arena trimmed again on free) than the crc check.
 *
 * Untested here: real EIO from a disk (a device that returns EIO is marked
 * failed by the same path that the vanished-directory test exercises).
 */
#include "ks/chunk_store.h"

#include "ks/codec.h"
#include "ks/crc32c.h"
#include "ks/endian.h"
#include "ks/err.h"
#include "ks/log.h"

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define COMP "chunkd"
#define ID_FILE "device-id"
#define ID_TAG "kiseki-device-id 1 "
#define FRAGS_DIR "frags"
#define SUBDIRS 256
/* Payload pieces a put accepts: an RPC bulk has at most 8 (KS_RPC_IOV_MAX). */
#define PUT_IOV_MAX 16
#define NAME_MAX_LEN 80 /* "ab/" + 64 hex + "." + 3 digits + NUL = 72 */

_Static_assert(KS_FRAG_HDR_SIZE == 64, "header layout is 64 bytes");

typedef struct chunk_dev {
  char *cd_path;
  ks_dev_class_t cd_cls;
  ks_id_t cd_id; /* zero until read or created */
  int cd_dirfd;  /* the device directory; holds the flock */
  int cd_fragsfd;
  atomic_int cd_failed;
  atomic_uint_fast64_t cd_frags;
} chunk_dev_t;

struct ks_chunk_store {
  size_t cs_ndev;
  atomic_uint_fast64_t cs_tmpseq; /* unique temporary names */
  chunk_dev_t cs_dev[];
};

static int neg_errno(void)
{
  return errno > 0 ? -errno : -EIO;
}

/* ---- names -------------------------------------------------------------- */

/* "ab/<hex>.<index>", relative to frags/. */
static void key_relpath(const ks_frag_key_t *key, char *out, size_t size)
{
  char hex[KS_HEX_LEN(KS_CHUNK_ID_LEN) + 1];
  ks_hex_encode(hex, sizeof(hex), key->chunk_id, KS_CHUNK_ID_LEN);
  snprintf(out, size, "%.2s/%s.%u", hex, hex, (unsigned)key->index);
}

void ks_frag_key_path(const ks_frag_key_t *key, char *out, size_t size)
{
  char rel[NAME_MAX_LEN];
  key_relpath(key, rel, sizeof(rel));
  snprintf(out, size, FRAGS_DIR "/%s", rel);
}

/* Whether a directory entry is a fragment: 64 hex digits, '.', 0..255. */
static bool is_frag_name(const char *name)
{
  size_t hexlen = KS_HEX_LEN(KS_CHUNK_ID_LEN);
  uint8_t id[KS_CHUNK_ID_LEN];
  if (strlen(name) < hexlen + 2 || name[hexlen] != '.')
    return false;
  if (ks_hex_decode(id, sizeof(id), name, hexlen) != KS_CHUNK_ID_LEN)
    return false;
  const char *p = name + hexlen + 1;
  size_t n = strspn(p, "0123456789");
  return n >= 1 && n <= 3 && p[n] == '\0' && strtol(p, NULL, 10) <= 255;
}

/* ---- device state ------------------------------------------------------- */

static void dev_mark_failed(chunk_dev_t *d, const char *reason, int err)
{
  if (atomic_exchange(&d->cd_failed, 1) != 0)
    return;
  char idhex[KS_ID_HEX_LEN + 1], qp[KS_DEV_PATH_MAX + 8], qr[256];
  ks_log_error(COMP, "device_failed", "path=%s id=%s reason=%s err=%s",
               ks_log_quote(qp, sizeof(qp), d->cd_path),
               ks_id_to_hex(&d->cd_id, idhex),
               ks_log_quote(qr, sizeof(qr), reason), ks_errname(err));
}

void ks_chunk_store_dev_fail(ks_chunk_store_t *st, size_t dev,
                             const char *reason)
{
  assert(dev < st->cs_ndev);
  dev_mark_failed(&st->cs_dev[dev], reason, -EIO);
}

static chunk_dev_t *dev_get(ks_chunk_store_t *st, size_t dev)
{
  assert(st != NULL);
  if (dev >= st->cs_ndev)
    return NULL;
  chunk_dev_t *d = &st->cs_dev[dev];
  return atomic_load(&d->cd_failed) ? NULL : d;
}

/* Whether the device directory is gone (unlinked under us). */
static bool dev_gone(const chunk_dev_t *d)
{
  struct stat sb;
  return fstat(d->cd_fragsfd, &sb) != 0 || sb.st_nlink == 0;
}

/* Classify an error of an operation: EIO, or ENOENT from a vanished
 * directory, fail the device; every error on a failed device is -EIO. */
static int dev_error(chunk_dev_t *d, int rc, const char *what)
{
  if (rc == -EIO)
    dev_mark_failed(d, what, rc);
  else if (rc == -ENOENT && dev_gone(d))
    dev_mark_failed(d, "directory removed", rc);
  return atomic_load(&d->cd_failed) ? -EIO : rc;
}

static void log_corrupt(const chunk_dev_t *d, const ks_frag_key_t *key,
                        const char *why)
{
  char rel[NAME_MAX_LEN + 8], idhex[KS_ID_HEX_LEN + 1], qp[KS_DEV_PATH_MAX + 8];
  ks_frag_key_path(key, rel, sizeof(rel));
  ks_log_error(COMP, "fragment_corrupt", "dev=%s path=%s file=%s reason=\"%s\"",
               ks_id_to_hex(&d->cd_id, idhex),
               ks_log_quote(qp, sizeof(qp), d->cd_path), rel, why);
}

/* ---- low-level I/O ------------------------------------------------------ */

static int write_all(int fd, struct iovec *iov, int cnt)
{
  while (cnt > 0) {
    ssize_t w = writev(fd, iov, cnt);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return neg_errno();
    }
    size_t left = (size_t)w;
    while (cnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      cnt--;
    }
    if (cnt > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

/* 0, a negated errno, or KS_ECORRUPT when the file ends early. */
static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = pread(fd, p, n, (off_t)off);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return neg_errno();
    }
    if (r == 0)
      return KS_ECORRUPT;
    p += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static int fsync_dir_at(int parent, const char *name)
{
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return neg_errno();
  int rc = fsync(fd) == 0 ? 0 : neg_errno();
  close(fd);
  return rc;
}

/* ---- fragment header ---------------------------------------------------- */

static void hdr_encode(const ks_frag_key_t *key, const ks_frag_info_t *info,
                       uint8_t h[KS_FRAG_HDR_SIZE])
{
  memset(h, 0, KS_FRAG_HDR_SIZE);
  ks_put_le32(h, KS_FRAG_MAGIC);
  h[4] = KS_FRAG_VERSION;
  h[5] = key->index;
  h[6] = info->k;
  h[7] = info->m;
  memcpy(h + 8, key->chunk_id, KS_CHUNK_ID_LEN);
  ks_put_le64(h + 40, info->len);
  ks_put_le32(h + 48, info->crc);
  ks_put_le32(h + 60, ks_crc32c(0, h, 60));
}

/* 0, or KS_ECORRUPT with *why set. */
static int hdr_decode(const uint8_t h[KS_FRAG_HDR_SIZE],
                      const ks_frag_key_t *key, ks_frag_info_t *info,
                      const char **why)
{
  if (ks_get_le32(h + 60) != ks_crc32c(0, h, 60))
    *why = "header crc mismatch";
  else if (ks_get_le32(h) != KS_FRAG_MAGIC || h[4] != KS_FRAG_VERSION)
    *why = "bad magic or version";
  else if (h[5] != key->index ||
           memcmp(h + 8, key->chunk_id, KS_CHUNK_ID_LEN) != 0)
    *why = "header names another fragment";
  else if (ks_get_le64(h + 40) > KS_FRAG_MAX_LEN)
    *why = "length over limit";
  else
    *why = NULL;
  if (*why)
    return KS_ECORRUPT;
  info->k = h[6];
  info->m = h[7];
  info->len = ks_get_le64(h + 40);
  info->crc = ks_get_le32(h + 48);
  return 0;
}

/* ---- reading ------------------------------------------------------------ */

/* Open a fragment and check its header against the key and the file size.
 * On success *fd is open (the caller closes it). */
static int frag_open(chunk_dev_t *d, const ks_frag_key_t *key, int *fd,
                     ks_frag_info_t *info)
{
  char rel[NAME_MAX_LEN];
  memset(info, 0, sizeof(*info));
  key_relpath(key, rel, sizeof(rel));
  *fd = openat(d->cd_fragsfd, rel, O_RDONLY | O_CLOEXEC);
  if (*fd < 0)
    return neg_errno();
  struct stat sb;
  uint8_t h[KS_FRAG_HDR_SIZE];
  const char *why = NULL;
  int rc = fstat(*fd, &sb) == 0 ? 0 : neg_errno();
  if (rc == 0 && (uint64_t)sb.st_size < KS_FRAG_HDR_SIZE)
    why = "truncated header";
  if (rc == 0 && why == NULL)
    rc = read_full(*fd, h, sizeof(h), 0);
  if (rc == 0 && why == NULL && hdr_decode(h, key, info, &why) == 0 &&
      (uint64_t)sb.st_size != KS_FRAG_HDR_SIZE + info->len)
    why = (uint64_t)sb.st_size < KS_FRAG_HDR_SIZE + info->len
              ? "truncated payload"
              : "trailing bytes";
  if (why) {
    log_corrupt(d, key, why);
    rc = KS_ECORRUPT;
  }
  if (rc != 0) {
    close(*fd);
    *fd = -1;
  }
  return rc;
}

/* ---- read buffers ---------------------------------------------------------
 * A get's buffer lives from the read on a worker thread until its reply
 * is written on the loop thread.  glibc serves a fresh buffer of a
 * fragment's size (about 1 MiB for a 4 MiB chunk at 4+2) from a thread
 * arena whose top it trims again on free, so every get faulted in and
 * zeroed new pages: a fifth of chunkd's CPU on large GETs.  Buffers of at
 * least BUF_POOL_MIN bytes are kept when freed, process-wide (the frees
 * come from whichever store's service replies) and bounded, for the next
 * read that fits; smaller ones are plain allocations.  Fragments are
 * ciphertext or parity: nothing to wipe.  A buffer starts with BUF_HDR
 * bytes holding its capacity (0: not pooled); the payload follows. */
#define BUF_HDR 64
#define BUF_POOL_MIN (64u * 1024)
#define BUF_ROUND (256u * 1024) /* capacities, so near sizes share */
#define BUF_POOL_N 32
#define BUF_POOL_BYTES (64u << 20)

static pthread_mutex_t buf_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *buf_idle[BUF_POOL_N];
static size_t buf_nidle, buf_idle_bytes;

static size_t buf_cap(const uint8_t *mem)
{
  size_t cap;
  memcpy(&cap, mem, sizeof(cap));
  return cap;
}

/* A buffer whose payload area holds len bytes (base pointer), or NULL. */
static uint8_t *buf_get(size_t len)
{
  if (len < BUF_POOL_MIN) {
    uint8_t *mem = aligned_alloc(64, BUF_HDR + (len + 63) / 64 * 64);
    if (mem != NULL)
      memset(mem, 0, sizeof(size_t));
    return mem;
  }
  uint8_t *mem = NULL;
  pthread_mutex_lock(&buf_mu);
  size_t best = buf_nidle;
  for (size_t i = 0; i < buf_nidle; i++) {
    size_t c = buf_cap(buf_idle[i]);
    if (c >= len && (best == buf_nidle || c < buf_cap(buf_idle[best])))
      best = i;
  }
  if (best < buf_nidle) {
    mem = buf_idle[best];
    buf_idle[best] = buf_idle[--buf_nidle];
    buf_idle_bytes -= buf_cap(mem);
  }
  pthread_mutex_unlock(&buf_mu);
  if (mem != NULL)
    return mem;
  size_t cap = (len + BUF_ROUND - 1) / BUF_ROUND * BUF_ROUND;
  mem = aligned_alloc(64, BUF_HDR + cap);
  if (mem != NULL)
    memcpy(mem, &cap, sizeof(cap));
  return mem;
}

static void buf_put(uint8_t *mem)
{
  if (mem == NULL)
    return;
  size_t cap = buf_cap(mem);
  if (cap > 0) {
    pthread_mutex_lock(&buf_mu);
    if (buf_nidle < BUF_POOL_N && buf_idle_bytes + cap <= BUF_POOL_BYTES) {
      buf_idle[buf_nidle++] = mem;
      buf_idle_bytes += cap;
      mem = NULL;
    }
    pthread_mutex_unlock(&buf_mu);
  }
  free(mem);
}

/* Read and verify the whole payload into a 64-byte aligned buffer. */
static int frag_read(chunk_dev_t *d, const ks_frag_key_t *key,
                     ks_frag_info_t *info, ks_frag_buf_t *out)
{
  int fd;
  int rc = frag_open(d, key, &fd, info);
  if (rc != 0)
    return rc;
  uint8_t *mem = buf_get((size_t)info->len);
  uint8_t *p = mem ? mem + BUF_HDR : NULL;
  rc = mem ? read_full(fd, p, (size_t)info->len, KS_FRAG_HDR_SIZE) : -ENOMEM;
  close(fd);
  if (rc == 0 && ks_crc32c(0, p, (size_t)info->len) != info->crc) {
    log_corrupt(d, key, "payload crc mismatch");
    rc = KS_ECORRUPT;
  }
  if (rc != 0) {
    buf_put(mem);
    return rc;
  }
  out->_mem = mem;
  out->data = p;
  out->len = (size_t)info->len;
  return 0;
}

void ks_frag_buf_free(ks_frag_buf_t *b)
{
  buf_put(b->_mem);
  memset(b, 0, sizeof(*b));
}

int ks_chunk_store_get(ks_chunk_store_t *st, size_t dev,
                       const ks_frag_key_t *key, uint64_t offset,
                       uint64_t length, ks_frag_info_t *info,
                       ks_frag_buf_t *out)
{
  memset(out, 0, sizeof(*out));
  chunk_dev_t *d = dev_get(st, dev);
  if (d == NULL)
    return -EIO;
  int rc = frag_read(d, key, info, out);
  if (rc != 0)
    return dev_error(d, rc, "read failed");
  if (offset > out->len || (length && length > out->len - offset)) {
    ks_frag_buf_free(out);
    return -EINVAL;
  }
  out->data += offset;
  out->len = length ? (size_t)length : out->len - (size_t)offset;
  return 0;
}

int ks_chunk_store_stat(ks_chunk_store_t *st, size_t dev,
                        const ks_frag_key_t *key, ks_frag_info_t *info)
{
  chunk_dev_t *d = dev_get(st, dev);
  if (d == NULL)
    return -EIO;
  int fd;
  int rc = frag_open(d, key, &fd, info);
  if (rc != 0)
    return dev_error(d, rc, "stat failed");
  close(fd);
  return 0;
}

/* ---- writing ------------------------------------------------------------ */

/* What an earlier put left under the key: 0 nothing, 1 this same content,
 * 2 a corrupt file to replace; -EEXIST other content; or an error. */
static int frag_existing(chunk_dev_t *d, const ks_frag_key_t *key,
                         const ks_frag_info_t *info)
{
  ks_frag_info_t old;
  ks_frag_buf_t buf = {0};
  int rc = frag_read(d, key, &old, &buf);
  ks_frag_buf_free(&buf);
  if (rc == -ENOENT)
    return 0;
  if (rc == KS_ECORRUPT)
    return 2;
  if (rc != 0)
    return rc;
  if (old.len == info->len && old.crc == info->crc && old.k == info->k &&
      old.m == info->m)
    return 1;
  return -EEXIST;
}

/* The same content is already there: make sure it is durable too (the put
 * that wrote it may have crashed between rename and directory fsync). */
static int frag_resync(chunk_dev_t *d, const ks_frag_key_t *key)
{
  char rel[NAME_MAX_LEN];
  key_relpath(key, rel, sizeof(rel));
  int fd = openat(d->cd_fragsfd, rel, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return neg_errno();
  int rc = fsync(fd) == 0 ? 0 : neg_errno();
  close(fd);
  rel[2] = '\0';
  return rc == 0 ? fsync_dir_at(d->cd_fragsfd, rel) : rc;
}

/* Write the temporary file in full and fsync it. */
static int tmp_write(int sfd, const char *tmp, const ks_frag_key_t *key,
                     const ks_frag_info_t *info, const struct iovec *payload,
                     int iovcnt)
{
  uint8_t h[KS_FRAG_HDR_SIZE];
  struct iovec v[1 + PUT_IOV_MAX];
  hdr_encode(key, info, h);
  v[0].iov_base = h;
  v[0].iov_len = sizeof(h);
  memcpy(v + 1, payload, sizeof(*payload) * (size_t)iovcnt);
  int fd = openat(sfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0)
    return neg_errno();
  int rc = write_all(fd, v, 1 + iovcnt);
  if (rc == 0 && fsync(fd) != 0)
    rc = neg_errno();
  if (close(fd) != 0 && rc == 0)
    rc = neg_errno();
  return rc;
}

static int frag_write(ks_chunk_store_t *st, chunk_dev_t *d,
                      const ks_frag_key_t *key, const ks_frag_info_t *info,
                      const struct iovec *payload, int iovcnt)
{
  char rel[NAME_MAX_LEN], tmp[NAME_MAX_LEN + 32];
  key_relpath(key, rel, sizeof(rel));
  const char *name = rel + 3;
  snprintf(tmp, sizeof(tmp), "%s.tmp.%llu", name,
           (unsigned long long)atomic_fetch_add(&st->cs_tmpseq, 1));
  rel[2] = '\0';
  int sfd = openat(d->cd_fragsfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0)
    return neg_errno();
  int rc = tmp_write(sfd, tmp, key, info, payload, iovcnt);
  if (rc == 0 && renameat(sfd, tmp, sfd, name) != 0)
    rc = neg_errno();
  if (rc != 0)
    unlinkat(sfd, tmp, 0);
  else if (fsync(sfd) != 0)
    rc = neg_errno();
  close(sfd);
  return rc;
}

static int put_check(const ks_frag_key_t *key, const ks_frag_info_t *info,
                     const struct iovec *payload, int iovcnt)
{
  if (iovcnt < 0 || iovcnt > PUT_IOV_MAX || info->k == 0 ||
      key->index >= (unsigned)info->k + info->m || info->len > KS_FRAG_MAX_LEN)
    return -EINVAL;
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++)
    total += payload[i].iov_len;
  if (total != info->len)
    return -EINVAL;
  if (ks_crc32c_iov(0, payload, iovcnt) != info->crc)
    return KS_EBADCRC;
  return 0;
}

int ks_chunk_store_put(ks_chunk_store_t *st, size_t dev,
                       const ks_frag_key_t *key, const ks_frag_info_t *info,
                       const struct iovec *payload, int iovcnt)
{
  int rc = put_check(key, info, payload, iovcnt);
  if (rc != 0)
    return rc;
  chunk_dev_t *d = dev_get(st, dev);
  if (d == NULL)
    return -EIO;
  int prior = frag_existing(d, key, info);
  if (prior < 0)
    return dev_error(d, prior, "read failed");
  if (prior == 1)
    rc = frag_resync(d, key);
  else
    rc = frag_write(st, d, key, info, payload, iovcnt);
  if (rc != 0)
    return dev_error(d, rc, "write failed");
  if (prior == 0)
    atomic_fetch_add(&d->cd_frags, 1);
  return 0;
}

int ks_chunk_store_delete(ks_chunk_store_t *st, size_t dev,
                          const ks_frag_key_t *key)
{
  chunk_dev_t *d = dev_get(st, dev);
  if (d == NULL)
    return -EIO;
  char rel[NAME_MAX_LEN];
  key_relpath(key, rel, sizeof(rel));
  int rc = unlinkat(d->cd_fragsfd, rel, 0) == 0 ? 0 : neg_errno();
  if (rc == 0) {
    atomic_fetch_sub(&d->cd_frags, 1);
    rel[2] = '\0';
    rc = fsync_dir_at(d->cd_fragsfd, rel);
  }
  return rc == 0 ? 0 : dev_error(d, rc, "delete failed");
}

/* ---- device id ---------------------------------------------------------- */

/* 0, -ENOENT (no id file yet), KS_ECORRUPT (unreadable content). */
static int id_load(int dirfd, ks_id_t *id)
{
  char buf[128];
  int fd = openat(dirfd, ID_FILE, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return neg_errno();
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  int rc = n < 0 ? neg_errno() : 0;
  close(fd);
  if (rc != 0)
    return rc;
  size_t tag = strlen(ID_TAG);
  if ((size_t)n != tag + KS_ID_HEX_LEN + 1 || memcmp(buf, ID_TAG, tag) != 0 ||
      buf[n - 1] != '\n' || ks_id_from_hex(id, buf + tag, KS_ID_HEX_LEN) != 0 ||
      ks_id_is_zero(id))
    return KS_ECORRUPT;
  return 0;
}

/* Create the id file durably (temporary file, fsync, rename, fsync dir). */
static int id_create(int dirfd, ks_id_t *id)
{
  char buf[128], hex[KS_ID_HEX_LEN + 1];
  int rc = ks_id_generate(id);
  if (rc != 0)
    return rc;
  int len = snprintf(buf, sizeof(buf), ID_TAG "%s\n", ks_id_to_hex(id, hex));
  int fd = openat(dirfd, ID_FILE ".tmp",
                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0)
    return neg_errno();
  struct iovec v = {buf, (size_t)len};
  rc = write_all(fd, &v, 1);
  if (rc == 0 && fsync(fd) != 0)
    rc = neg_errno();
  if (close(fd) != 0 && rc == 0)
    rc = neg_errno();
  if (rc == 0 && renameat(dirfd, ID_FILE ".tmp", dirfd, ID_FILE) != 0)
    rc = neg_errno();
  if (rc == 0 && fsync(dirfd) != 0)
    rc = neg_errno();
  return rc;
}

/* ---- opening a device --------------------------------------------------- */

/* frags/ and its 256 sub-directories; fsync each parent that gained one. */
static int layout_make(chunk_dev_t *d)
{
  bool made = mkdirat(d->cd_dirfd, FRAGS_DIR, 0750) == 0;
  if (!made && errno != EEXIST)
    return neg_errno();
  if (made && fsync(d->cd_dirfd) != 0)
    return neg_errno();
  d->cd_fragsfd =
      openat(d->cd_dirfd, FRAGS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d->cd_fragsfd < 0)
    return neg_errno();
  made = false;
  for (int i = 0; i < SUBDIRS; i++) {
    char sub[3];
    snprintf(sub, sizeof(sub), "%02x", i);
    if (mkdirat(d->cd_fragsfd, sub, 0750) == 0)
      made = true;
    else if (errno != EEXIST)
      return neg_errno();
  }
  return made && fsync(d->cd_fragsfd) != 0 ? neg_errno() : 0;
}

/* Count fragments in one sub-directory and remove temporary files. */
static int scan_subdir(chunk_dev_t *d, const char *sub, uint64_t *frags,
                       uint64_t *tmps)
{
  int fd = openat(d->cd_fragsfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return neg_errno();
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    close(fd);
    return neg_errno();
  }
  uint64_t removed = 0;
  const struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (is_frag_name(e->d_name))
      (*frags)++;
    else if (strstr(e->d_name, ".tmp.") && unlinkat(fd, e->d_name, 0) == 0)
      removed++;
  }
  int rc = removed && fsync(fd) != 0 ? neg_errno() : 0;
  closedir(dir);
  *tmps += removed;
  return rc;
}

static int dev_scan(chunk_dev_t *d, uint64_t *tmps)
{
  uint64_t frags = 0;
  for (int i = 0; i < SUBDIRS; i++) {
    char sub[3];
    snprintf(sub, sizeof(sub), "%02x", i);
    int rc = scan_subdir(d, sub, &frags, tmps);
    if (rc != 0)
      return rc;
  }
  atomic_store(&d->cd_frags, frags);
  return 0;
}

/* Open one device; on failure *why says which step failed. */
static int dev_open(chunk_dev_t *d, const char **why, uint64_t *tmps)
{
  *why = "cannot open directory";
  d->cd_dirfd = open(d->cd_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d->cd_dirfd < 0)
    return neg_errno();
  *why = "in use by another process";
  if (flock(d->cd_dirfd, LOCK_EX | LOCK_NB) != 0)
    return neg_errno();
  *why = "bad device id file";
  int rc = id_load(d->cd_dirfd, &d->cd_id);
  if (rc == -ENOENT) {
    *why = "cannot create device id";
    rc = id_create(d->cd_dirfd, &d->cd_id);
  }
  if (rc != 0)
    return rc;
  *why = "cannot create layout";
  rc = layout_make(d);
  if (rc != 0)
    return rc;
  *why = "cannot scan fragments";
  return dev_scan(d, tmps);
}

static void dev_open_logged(chunk_dev_t *d)
{
  const char *why = NULL;
  uint64_t tmps = 0;
  int rc = dev_open(d, &why, &tmps);
  if (rc != 0) {
    dev_mark_failed(d, why, rc);
    return;
  }
  char idhex[KS_ID_HEX_LEN + 1], qp[KS_DEV_PATH_MAX + 8];
  ks_log_info(COMP, "device_opened",
              "path=%s id=%s class=%s fragments=%llu temp_removed=%llu",
              ks_log_quote(qp, sizeof(qp), d->cd_path),
              ks_id_to_hex(&d->cd_id, idhex), ks_dev_class_name(d->cd_cls),
              (unsigned long long)atomic_load(&d->cd_frags),
              (unsigned long long)tmps);
}

/* Two directories with one id (a copied device) cannot both be served:
 * fragments would be found on the wrong one.  The later one fails. */
static void dev_check_duplicate(ks_chunk_store_t *st, size_t i)
{
  chunk_dev_t *d = &st->cs_dev[i];
  for (size_t j = 0; j < i; j++) {
    const chunk_dev_t *o = &st->cs_dev[j];
    if (!atomic_load(&o->cd_failed) && !atomic_load(&d->cd_failed) &&
        ks_id_cmp(&o->cd_id, &d->cd_id) == 0)
      dev_mark_failed(d, "duplicate device id", -EEXIST);
  }
}

int ks_chunk_store_open(const ks_chunk_dev_conf_t *devs, size_t n,
                        ks_chunk_store_t **out)
{
  *out = NULL;
  if (n == 0 || n > KS_DEV_MAX)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    size_t len = devs[i].path ? strlen(devs[i].path) : 0;
    if (len == 0 || len >= KS_DEV_PATH_MAX)
      return -EINVAL;
  }
  ks_chunk_store_t *st = calloc(1, sizeof(*st) + n * sizeof(chunk_dev_t));
  if (st == NULL)
    return -ENOMEM;
  st->cs_ndev = n;
  for (size_t i = 0; i < n; i++) {
    chunk_dev_t *d = &st->cs_dev[i];
    d->cd_dirfd = d->cd_fragsfd = -1;
    d->cd_cls = devs[i].cls;
    d->cd_path = strdup(devs[i].path);
    if (d->cd_path == NULL) {
      ks_chunk_store_close(st);
      return -ENOMEM;
    }
  }
  for (size_t i = 0; i < n; i++) {
    dev_open_logged(&st->cs_dev[i]);
    dev_check_duplicate(st, i);
  }
  *out = st;
  return 0;
}

void ks_chunk_store_close(ks_chunk_store_t *st)
{
  if (st == NULL)
    return;
  for (size_t i = 0; i < st->cs_ndev; i++) {
    chunk_dev_t *d = &st->cs_dev[i];
    if (d->cd_fragsfd >= 0)
      close(d->cd_fragsfd);
    if (d->cd_dirfd >= 0)
      close(d->cd_dirfd); /* releases the flock */
    free(d->cd_path);
  }
  free(st);
}

/* ---- devices ------------------------------------------------------------ */

size_t ks_chunk_store_dev_count(const ks_chunk_store_t *st)
{
  return st->cs_ndev;
}

int ks_chunk_store_dev_find(const ks_chunk_store_t *st, const ks_id_t *id)
{
  if (ks_id_is_zero(id))
    return -ENOENT;
  for (size_t i = 0; i < st->cs_ndev; i++) {
    if (ks_id_cmp(&st->cs_dev[i].cd_id, id) == 0)
      return (int)i;
  }
  return -ENOENT;
}

void ks_chunk_store_dev_info(const ks_chunk_store_t *st, size_t dev,
                             ks_dev_info_t *out)
{
  assert(dev < st->cs_ndev);
  const chunk_dev_t *d = &st->cs_dev[dev];
  memset(out, 0, sizeof(*out));
  out->id = d->cd_id;
  out->cls = (uint8_t)d->cd_cls;
  snprintf(out->path, sizeof(out->path), "%s", d->cd_path);
  out->frags = atomic_load(&d->cd_frags);
  struct statvfs sv;
  if (!atomic_load(&d->cd_failed) && fstatvfs(d->cd_dirfd, &sv) == 0) {
    out->capacity = (uint64_t)sv.f_blocks * sv.f_frsize;
    out->free = (uint64_t)sv.f_bavail * sv.f_frsize;
  }
  out->state = atomic_load(&d->cd_failed) ? KS_DEV_FAILED : KS_DEV_OK;
}
