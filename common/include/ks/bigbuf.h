/*
 * bigbuf.h — large, 64-byte-aligned buffers recycled through a small
 * process-wide cache.
 *
 * Why: every RPC frame with bulk data needs a fresh multi-MiB buffer (the
 * received message; the TLS ciphertext of a sent frame).  glibc serves such
 * sizes with mmap and returns them on free, so each frame paid for page
 * faults on every page and for munmap: bench/rpc measured more than half of
 * a TLS sender's and a TCP receiver's CPU there.  Reusing a few blocks keeps
 * them mapped.
 *
 * Policy: blocks below KS_BIGBUF_MIN are plain posix_memalign/free.  Larger
 * ones are rounded up to 64 KiB and, when freed, kept in a cache of at most
 * KS_BIGBUF_SLOTS blocks and KS_BIGBUF_CACHE_MAX bytes; a request takes the
 * smallest cached block that fits and is at most 4x too big.  The cache is
 * guarded by a mutex (one lock per multi-MiB buffer is noise), so blocks may
 * be freed on another thread than they were allocated on.
 */
#ifndef KS_BIGBUF_H
#define KS_BIGBUF_H

#include <stddef.h>

#define KS_BIGBUF_MIN (256 * 1024)
#define KS_BIGBUF_SLOTS 16
#define KS_BIGBUF_CACHE_MAX (256u << 20)

/* A block of at least n bytes, 64-byte aligned; *cap receives its real size,
 * which must be passed back to ks_bigbuf_free.  NULL when out of memory. */
void *ks_bigbuf_alloc(size_t n, size_t *cap);
/* Return a block from ks_bigbuf_alloc (NULL is fine). */
void ks_bigbuf_free(void *p, size_t cap);
/* Free every cached block (tests, memory pressure). */
void ks_bigbuf_trim(void);

#endif /* KS_BIGBUF_H */
