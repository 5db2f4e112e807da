/*
 * rand.h — cryptographically secure random numbers.
 *
 * Everything random in Kiseki (DEKs, GCM IVs, ids, Raft election jitter,
 * retry backoff) comes from here, so there is one source to audit and one
 * to replace in deterministic tests.  The source is OpenSSL's default
 * DRBG (RAND_bytes), seeded from the kernel and reseeded by OpenSSL after
 * fork(), so a forked child never repeats its parent's stream.
 *
 * Thread-safe: OpenSSL keeps a DRBG per thread; nothing is stored here.
 */
#ifndef KS_RAND_H
#define KS_RAND_H

#include <stddef.h>
#include <stdint.h>

/* Fill p[0..n) with random bytes.  Returns 0, or KS_ECRYPTO when the DRBG
 * cannot produce output (not seeded, entropy source failed); p's contents
 * are then unspecified and must not be used. */
int ks_rand_bytes(void *p, size_t n);

/* A uniformly random 64-bit value.
 * FATAL: when the DRBG fails this logs a `rand_failed` error event and calls
 * abort(), because its callers (jitter, sampling) have no error path and a
 * process without randomness must not go on choosing "random" values.  Use
 * ks_rand_bytes() where failure must be handled (key material). */
uint64_t ks_rand_u64(void);

/* A uniformly random value in [0, n), without modulo bias (values from the
 * short top range are rejected and redrawn).  n must be > 0 (asserted).
 * Aborts on DRBG failure, like ks_rand_u64(). */
uint64_t ks_rand_range(uint64_t n);

#endif /* KS_RAND_H */
