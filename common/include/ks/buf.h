/*
 * buf.h — a growable byte buffer and iovec helpers.
 *
 * Ownership: a ks_buf_t owns `data` (malloc'd) from the first successful
 * reserve until ks_buf_free() or ks_buf_steal().  A zeroed struct
 * (KS_BUF_INIT) is a valid empty buffer.  Not thread-safe; a buffer belongs
 * to one thread at a time.  Functions that grow the buffer return 0 or
 * -ENOMEM; on failure the contents are unchanged.  `data` may move on any
 * growth, so never keep a pointer into it across an append.
 */
#ifndef KS_BUF_H
#define KS_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct ks_buf {
  uint8_t *data;
  size_t len; /* bytes in use */
  size_t cap; /* bytes allocated */
} ks_buf_t;

#define KS_BUF_INIT \
  {                 \
    NULL, 0, 0      \
  }

/* Make room for at least `extra` more bytes past len. */
int ks_buf_reserve(ks_buf_t *b, size_t extra);
int ks_buf_append(ks_buf_t *b, const void *p, size_t n);
int ks_buf_append_str(ks_buf_t *b, const char *s);
/* printf-style append; the buffer stays NUL-terminated past len. */
int ks_buf_printf(ks_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Keep the allocation, forget the contents. */
void ks_buf_reset(ks_buf_t *b);
/* Release the allocation; the buffer is empty and reusable afterwards. */
void ks_buf_free(ks_buf_t *b);
/* Hand the allocation to the caller (who must free() it) and empty b.
 * Returns NULL for an empty buffer that never allocated. */
uint8_t *ks_buf_steal(ks_buf_t *b, size_t *len);

/* Total bytes described by iov[0..iovcnt). */
size_t ks_iov_total(const struct iovec *iov, int iovcnt);
/* Copy the bytes of iov into dst (which must hold ks_iov_total bytes). */
void ks_iov_gather(void *dst, const struct iovec *iov, int iovcnt);

#endif /* KS_BUF_H */
