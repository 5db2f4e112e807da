/*
 * rand.c — ks/rand.h on OpenSSL's RAND_bytes.
 *
 * RAND_bytes takes an int length, so requests are fed in slices.
 * ks_rand_range() uses rejection sampling: a draw below 2^64 mod n is
 * discarded so each residue is hit by the same number of 64-bit values; the
 * rejected share is < n / 2^64, so the loop almost never runs twice.
 */
#include "ks/rand.h"

#include <assert.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "ks/err.h"
#include "ks/log.h"

/* Largest slice handed to RAND_bytes in one call. */
#define KS_RAND_SLICE ((size_t)1 << 30)

int ks_rand_bytes(void *p, size_t n)
{
  unsigned char *q = p;
  while (n > 0) {
    size_t k = n < KS_RAND_SLICE ? n : KS_RAND_SLICE;
    if (RAND_bytes(q, (int)k) != 1)
      return KS_ECRYPTO;
    q += k;
    n -= k;
  }
  return 0;
}

uint64_t ks_rand_u64(void)
{
  uint64_t v;
  if (ks_rand_bytes(&v, sizeof(v)) != 0) {
    ks_log_error("rand", "rand_failed", "openssl_err=%lu", ERR_get_error());
    abort();
  }
  return v;
}

uint64_t ks_rand_range(uint64_t n)
{
  assert(n > 0);
  uint64_t lim = -n % n; /* == 2^64 mod n */
  uint64_t v;
  do
    v = ks_rand_u64();
  while (v < lim);
  return v % n;
}
