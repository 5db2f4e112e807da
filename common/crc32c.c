/*
 * crc32c.c — CRC-32C (ks/crc32c.h) on isa-l's crc32_iscsi.
 *
 * isa-l computes the raw register update without the customary pre- and
 * post-inversion, so the standard value is ~crc32_iscsi(p, n, ~crc); keeping
 * the inversion here is what makes ks_crc32c(0, ...) start a CRC and makes a
 * finished value usable as the `crc` of the next call (chaining).
 *
 * isa-l takes an `int` length and a non-const pointer (it never writes), so
 * lengths beyond INT_MAX are fed in slices and the const is cast away.
 *
 * Also the IEEE CRC-32 (crc32_gzip_refl, which inverts internally), which
 * only S3 clients ask for (x-amz-checksum-crc32).
 */
#include "ks/crc32c.h"

#include <isa-l/crc.h>

/* A slice well inside int's range, a multiple of the 64-byte folding
 * width so the fast path is not disturbed at slice boundaries. */
#define KS_CRC_SLICE ((size_t)1 << 30)

uint32_t ks_crc32c(uint32_t crc, const void *p, size_t n)
{
  unsigned char *q = (unsigned char *)p;
  uint32_t c = ~crc;
  while (n > 0) {
    size_t k = n < KS_CRC_SLICE ? n : KS_CRC_SLICE;
    c = crc32_iscsi(q, (int)k, c);
    q += k;
    n -= k;
  }
  return ~c;
}

uint32_t ks_crc32c_iov(uint32_t crc, const struct iovec *iov, int iovcnt)
{
  for (int i = 0; i < iovcnt; i++)
    crc = ks_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
  return crc;
}

uint32_t ks_crc32_iov(uint32_t crc, const struct iovec *iov, int iovcnt)
{
  for (int i = 0; i < iovcnt; i++)
    crc = crc32_gzip_refl(crc, iov[i].iov_base, (uint64_t)iov[i].iov_len);
  return crc;
}
