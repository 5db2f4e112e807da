/*
 * ec.h — Reed-Solomon erasure coding (k data + m parity fragments) on isa-l.
 *
 * A profile (ks_ec_t) is created once per (k, m) pair — a pool's EC profile,
 * DESIGN §6 — and shared by every chunk of that pool.  It holds the encode
 * matrix (isa-l's Cauchy matrix: an identity on top, so the data fragments
 * are the data itself, and every k x k submatrix invertible, which the
 * Vandermonde matrix of gf_gen_rs_matrix does not guarantee for all k, m),
 * the expanded encode tables, and a bounded cache of decode tables keyed by
 * erasure pattern, so a degraded read pays for a matrix inversion once per
 * pattern rather than once per chunk.
 *
 * Fragments are equal-sized byte vectors of frag_len bytes; ks_ec_frag_len()
 * gives the size for a payload (rounded up to KS_EC_ALIGN so every fragment
 * starts on a cache line inside a contiguous k * frag_len buffer and isa-l's
 * SIMD loops run without a ragged tail).  The codec never allocates fragment
 * memory: callers pass pointers to their own buffers.
 *
 * Limits: 1 <= k, 1 <= m, k + m <= KS_EC_MAX_FRAGS; frag_len in
 * [1, KS_EC_MAX_FRAG_LEN] (isa-l takes an int length).
 *
 * Errors: 0, -EINVAL (bad profile or arguments), -ENOMEM, or -ENODATA when
 * fewer than k fragments are present (the data cannot be rebuilt).
 *
 * Threads: a profile is immutable after ks_ec_create except for its decode
 * cache, which a mutex guards; encode and reconstruct may run on any number
 * of threads at once on one profile.  ks_ec_destroy must not race with use.
 */
#ifndef KS_EC_H
#define KS_EC_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Fragment presence travels as a 64-bit mask; 32 leaves room for the widest
 * profile a pool would use (16+4, 20+4) and keeps decode matrices small. */
#define KS_EC_MAX_FRAGS 32
/* Fragment sizes are multiples of a cache line (and of every isa-l SIMD
 * width). */
#define KS_EC_ALIGN 64
#define KS_EC_MAX_FRAG_LEN ((size_t)INT_MAX / KS_EC_ALIGN * KS_EC_ALIGN)

typedef struct ks_ec ks_ec_t;

/* Create the profile k + m into *out.  0, -EINVAL or -ENOMEM (then *out is
 * NULL).  The caller owns the profile and frees it with ks_ec_destroy. */
int ks_ec_create(ks_ec_t **out, unsigned k, unsigned m);
/* Free a profile and its cached tables; NULL is a no-op. */
void ks_ec_destroy(ks_ec_t *ec);

unsigned ks_ec_k(const ks_ec_t *ec);
unsigned ks_ec_m(const ks_ec_t *ec);

/* Fragment size for data_len payload bytes split over k (>= 1) fragments:
 * ceil(data_len / k) rounded up to KS_EC_ALIGN, at least KS_EC_ALIGN.
 * 0 when the result would exceed KS_EC_MAX_FRAG_LEN.  A pure function of
 * its arguments, so a stored descriptor can be checked without a profile. */
size_t ks_ec_frag_len(unsigned k, size_t data_len);

/* Compute the m parity fragments of data[0..k) into parity[0..m), each
 * frag_len bytes.  Inputs and outputs must not overlap.  0 or -EINVAL. */
int ks_ec_encode(const ks_ec_t *ec, size_t frag_len,
                 const uint8_t *const data[], uint8_t *const parity[]);

/* Rebuild missing fragments.  frags[0..k+m) holds every fragment in index
 * order (data 0..k-1, parity k..k+m-1), NULL where missing.  For each i with
 * frags[i] == NULL and out[i] != NULL, fragment i is written to out[i]
 * (frag_len bytes, not overlapping any input); other out[] entries are
 * ignored.  The first k present fragments are the sources.  Returns 0,
 * -ENODATA when fewer than k are present (nothing written), -EINVAL, or
 * -ENOMEM.  A fragment with wrong bytes is not detected here: the chunk
 * codec's AES-GCM tag is the integrity check. */
int ks_ec_reconstruct(ks_ec_t *ec, size_t frag_len,
                      const uint8_t *const frags[], uint8_t *const out[]);

#endif /* KS_EC_H */
