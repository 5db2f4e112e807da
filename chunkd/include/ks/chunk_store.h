/*
 * chunk_store.h — the on-device fragment store of a chunk daemon (DESIGN.md
 * §5): fragments as files in device directories, each with a checksummed
 * header, written durably before anyone is told they exist.
 *
 * DEVICES.  A device is a directory with a class (fast-nvme, bulk-nvme, hdd)
 * from the configuration and a stable 128-bit id that the store creates on
 * first use and keeps in `<dev>/device-id`, so the devices may be listed in
 * any order across restarts.  While a store has a device open it holds an
 * exclusive flock on the directory: a second daemon (or the same directory
 * listed twice) finds it busy.  A device that cannot be opened (missing or
 * not a directory, unreadable, bad id file, busy, duplicate id) is FAILED,
 * not fatal: the store opens with the others and logs the reason.  A device
 * also fails at run time on EIO or when its directory disappears.  Every
 * operation on a failed device returns -EIO.
 *
 * LAYOUT.  `<dev>/frags/<first 2 hex of chunk id>/<chunk id hex>.<index>`,
 * the 256 sub-directories made at open.  A fragment file is a 64-byte header
 * followed by the payload (little-endian):
 *     0 u32 magic "KSFG"     4 u8 format version (1)   5 u8 fragment index
 *     6 u8 k   7 u8 m        8 [32] chunk id          40 u64 payload length
 *    48 u32 payload crc32c  52 [8] zero (reserved)    60 u32 header crc32c
 *                                                         over bytes 0..59
 * A file whose header fails its crc, names another key, or whose size is not
 * 64 + length, or whose payload fails its crc, is corrupt: reads report
 * KS_ECORRUPT (logged as event=fragment_corrupt) and never return its bytes.
 *
 * DURABILITY.  put writes a temporary file in the fragment's directory,
 * fsyncs it, renames it over the final name and fsyncs the directory; only
 * then does it return 0.  delete unlinks and fsyncs the directory.  Temporary
 * files left by a crash are removed when the device is opened.
 *
 * THREADS.  After open, every function may be called from any thread, for
 * any keys, concurrently (the service calls them from the libuv threadpool);
 * two concurrent puts of one key leave one of them.  All of them block on
 * disk I/O: never call them on an event-loop thread.  open and close are not
 * concurrent with anything.
 *
 * ERRORS.  0 or a negative code: -ENOENT (no such fragment), -EEXIST (put: a
 * valid, different fragment has the key), KS_ECORRUPT, KS_EBADCRC (put: the
 * payload does not match info->crc), -EINVAL, -EIO (failed device), -ENOMEM,
 * other negated errno values from the file system (-ENOSPC, ...).
 */
#ifndef KS_CHUNK_STORE_H
#define KS_CHUNK_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ks/id.h"
#include "ks/proto_chunk.h"

#define KS_FRAG_HDR_SIZE 64
#define KS_FRAG_MAGIC 0x4746534BU /* "KSFG" little-endian */
#define KS_FRAG_VERSION 1

typedef struct ks_chunk_store ks_chunk_store_t;

typedef struct ks_chunk_dev_conf {
  const char *path; /* copied */
  ks_dev_class_t cls;
} ks_chunk_dev_conf_t;

/* Open n devices (1..KS_DEV_MAX): create the layout and the id where missing,
 * remove temporary files, count fragments.  Devices that cannot be opened
 * are marked failed (see above), which is not an error.  Errors: -EINVAL
 * (n out of range, empty or too long path), -ENOMEM. */
int ks_chunk_store_open(const ks_chunk_dev_conf_t *devs, size_t n,
                        ks_chunk_store_t **out);
/* Close the device directories and free the store; NULL is a no-op.  No
 * operation may be running. */
void ks_chunk_store_close(ks_chunk_store_t *st);

/* Devices in configuration order (their index is the `dev` argument below). */
size_t ks_chunk_store_dev_count(const ks_chunk_store_t *st);
/* Index of the device with this id, or -ENOENT.  A device that failed before
 * its id could be read has no id. */
int ks_chunk_store_dev_find(const ks_chunk_store_t *st, const ks_id_t *id);
/* Id, class, path, state and fragment count, plus capacity and free bytes
 * from statvfs (zero for a failed device).  Blocks on the file system. */
void ks_chunk_store_dev_info(const ks_chunk_store_t *st, size_t dev,
                             ks_dev_info_t *out);
/* Mark a device failed (after an operator's decision or a health check);
 * logs event=device_failed once.  Thread-safe. */
void ks_chunk_store_dev_fail(ks_chunk_store_t *st, size_t dev,
                             const char *reason);

/* Store a fragment durably.  info->len must equal the payload's total length
 * (at most KS_FRAG_MAX_LEN), info->k >= 1 and key->index < k + m, info->crc
 * the payload's crc32c.  Putting the same content again succeeds (and
 * re-syncs it); a corrupt existing file is replaced. */
int ks_chunk_store_put(ks_chunk_store_t *st, size_t dev,
                       const ks_frag_key_t *key, const ks_frag_info_t *info,
                       const struct iovec *payload, int iovcnt);

/* Payload bytes read by get: `data` points `len` bytes into the allocation
 * `_mem` (64-byte aligned), which ks_frag_buf_free releases. */
typedef struct ks_frag_buf {
  const uint8_t *data;
  size_t len;
  void *_mem;
} ks_frag_buf_t;

void ks_frag_buf_free(ks_frag_buf_t *b);

/* Read payload[offset .. offset + length) (length 0: to the end) after
 * verifying the header and the whole payload's crc.  *info gets the header's
 * fields.  On success *out owns the bytes; on error it holds nothing.
 * -EINVAL when the range lies outside the payload. */
int ks_chunk_store_get(ks_chunk_store_t *st, size_t dev,
                       const ks_frag_key_t *key, uint64_t offset,
                       uint64_t length, ks_frag_info_t *info,
                       ks_frag_buf_t *out);

/* The header's fields, after checking the header crc and the file's size
 * (the payload's crc is checked only by get). */
int ks_chunk_store_stat(ks_chunk_store_t *st, size_t dev,
                        const ks_frag_key_t *key, ks_frag_info_t *info);

/* Remove a fragment durably; -ENOENT when it does not exist. */
int ks_chunk_store_delete(ks_chunk_store_t *st, size_t dev,
                          const ks_frag_key_t *key);

/* The fragment's path relative to the device directory (for logs and
 * tests): "frags/ab/<64 hex>.<index>".  size >= 80. */
void ks_frag_key_path(const ks_frag_key_t *key, char *out, size_t size);

#endif /* KS_CHUNK_STORE_H */
