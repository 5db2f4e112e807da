/*
 * buf.c — the growable byte buffer and iovec helpers of ks/buf.h.
 *
 * Growth doubles the capacity (starting at KS_BUF_MIN_CAP) so a run of n
 * appends costs O(n) copies in total, as h2o_buffer and sds do.  Every size
 * computation is checked for size_t overflow before it is used: a length
 * that arrives from the network must turn into -ENOMEM, never into a short
 * allocation followed by a long memcpy.  On any failure the buffer is left
 * exactly as it was, which is what lets callers simply return the error.
 */
#include "ks/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Small enough not to waste memory on the many tiny buffers (log fields,
 * headers), large enough that they rarely grow twice. */
#define KS_BUF_MIN_CAP 64

/* Smallest power-of-two multiple of the current capacity that holds need,
 * or 0 when doubling would overflow (then `need` itself is used). */
static size_t buf_next_cap(size_t cap, size_t need)
{
  size_t c = cap ? cap : KS_BUF_MIN_CAP;
  while (c < need) {
    if (c > SIZE_MAX / 2)
      return need;
    c *= 2;
  }
  return c;
}

int ks_buf_reserve(ks_buf_t *b, size_t extra)
{
  if (extra > SIZE_MAX - b->len)
    return -ENOMEM;
  size_t need = b->len + extra;
  if (need <= b->cap && b->data != NULL)
    return 0;
  size_t cap = buf_next_cap(b->cap, need);
  uint8_t *p = realloc(b->data, cap);
  if (p == NULL)
    return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int ks_buf_append(ks_buf_t *b, const void *p, size_t n)
{
  if (n == 0)
    return 0;
  int rc = ks_buf_reserve(b, n);
  if (rc != 0)
    return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int ks_buf_append_str(ks_buf_t *b, const char *s)
{
  return ks_buf_append(b, s, strlen(s));
}

int ks_buf_printf(ks_buf_t *b, const char *fmt, ...)
{
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  size_t avail = b->data ? b->cap - b->len : 0;
  int n = vsnprintf(b->data ? (char *)b->data + b->len : NULL, avail, fmt, ap);
  int rc = 0;
  if (n < 0) {
    rc = -EINVAL; /* encoding error; nothing counted into len */
    goto out;
  }
  if ((size_t)n >= avail) { /* did not fit with its NUL: grow and redo */
    rc = ks_buf_reserve(b, (size_t)n + 1);
    if (rc != 0)
      goto out;
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
  }
  b->len += (size_t)n;
out:
  va_end(ap2);
  va_end(ap);
  return rc;
}

void ks_buf_reset(ks_buf_t *b)
{
  b->len = 0;
}

void ks_buf_free(ks_buf_t *b)
{
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

uint8_t *ks_buf_steal(ks_buf_t *b, size_t *len)
{
  uint8_t *p = b->data;
  if (len != NULL)
    *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}

size_t ks_iov_total(const struct iovec *iov, int iovcnt)
{
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++)
    total += iov[i].iov_len;
  return total;
}

void ks_iov_gather(void *dst, const struct iovec *iov, int iovcnt)
{
  uint8_t *d = dst;
  for (int i = 0; i < iovcnt; i++) {
    if (iov[i].iov_len == 0) /* base may be NULL; memcpy(NULL) is UB */
      continue;
    memcpy(d, iov[i].iov_base, iov[i].iov_len);
    d += iov[i].iov_len;
  }
}
