/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum of every RPC frame and every
 * stored fragment.  Backed by isa-l's crc32_iscsi (SSE4.2/PCLMUL/AVX-512 where
 * the CPU has them), wrapped so the value is the standard one
 * (ks_crc32c(0, "123456789", 9) == 0xE3069283) and so calls chain:
 *   ks_crc32c(ks_crc32c(0, a, na), b, nb) == ks_crc32c(0, a||b, na+nb)
 * Thread-safe, no state.
 */
#ifndef KS_CRC32C_H
#define KS_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Continue a CRC-32C over n bytes at p; start a new one with crc = 0. */
uint32_t ks_crc32c(uint32_t crc, const void *p, size_t n);

/* CRC-32C over the concatenation of iov[0..iovcnt). */
uint32_t ks_crc32c_iov(uint32_t crc, const struct iovec *iov, int iovcnt);

/* CRC-32 (IEEE 802.3, the zlib/gzip one: ks_crc32_iov of "123456789" is
 * 0xCBF43926), chained the same way; isa-l's crc32_gzip_refl.  For S3's
 * x-amz-checksum-crc32, nothing of ours. */
uint32_t ks_crc32_iov(uint32_t crc, const struct iovec *iov, int iovcnt);

#endif /* KS_CRC32C_H */
