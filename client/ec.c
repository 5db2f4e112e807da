/*
 * ec.c — ks/ec.h: Reed-Solomon over GF(2^8) with isa-l.
 *
 * Encoding.  gf_gen_cauchy1_matrix gives A, a (k+m) x k matrix whose top k
 * rows are the identity and whose bottom m rows are a Cauchy matrix;
 * ec_init_tables expands the bottom rows once into the 32-byte-per-
 * coefficient tables that ec_encode_data (AVX2/AVX-512/GFNI, chosen by isa-l
 * at run time) multiplies with.
 *
 * Decoding.  With sources s_0..s_{k-1} (the first k present fragments),
 * B = the rows of A for those indices is invertible (any k rows of a Cauchy
 * system are), and data = B^-1 * sources.  A missing data fragment t is row
 * t of B^-1; a missing parity fragment t is A[t] * B^-1.  Those rows, expanded
 * by ec_init_tables, turn reconstruction into one more ec_encode_data call.
 *
 * Cache.  Building decode rows costs a k x k inversion plus the table
 * expansion, a few microseconds; cheap next to a 4 MiB decode, but a
 * degraded pool decodes the same pattern for every chunk, so the tables are
 * kept per (source mask, target mask) in an open-addressed table of
 * EC_CACHE_SLOTS entries that are built once and freed only with the
 * profile.  The table never evicts: when it is full (a profile wide enough
 * to have more than EC_CACHE_SLOTS live patterns) the tables are built for
 * the call and freed after it.  One mutex guards the table; it is held
 * while an entry is built so two threads never build the same one.
 */
#include "ks/ec.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>

/* 4+2 has 21 patterns of <= 2 losses and 8+3 has 231 of <= 3 losses; 512
 * slots hold every pattern of the profiles pools use today at under half
 * load, at 8 bytes per empty slot. */
#define EC_CACHE_SLOTS 512
#define EC_GFTBL_BYTES 32 /* isa-l: 32 bytes of tables per coefficient */

_Static_assert(KS_EC_MAX_FRAGS <= 64, "fragment masks are 64-bit");
_Static_assert((EC_CACHE_SLOTS & (EC_CACHE_SLOTS - 1)) == 0,
               "cache slots must be a power of two");

typedef struct ec_decode {
  uint64_t src_mask; /* which fragments are read */
  uint64_t dst_mask; /* which fragments are written */
  unsigned ndst;
  uint8_t gftbls[]; /* EC_GFTBL_BYTES * k * ndst */
} ec_decode_t;

struct ks_ec {
  unsigned k, m;
  uint8_t matrix[KS_EC_MAX_FRAGS * KS_EC_MAX_FRAGS]; /* A, (k+m) x k */
  uint8_t *enc_tbls;                                 /* parity rows */
  pthread_mutex_t lock;                              /* guards cache */
  ec_decode_t *cache[EC_CACHE_SLOTS];
};

static unsigned mask_count(uint64_t mask)
{
  return (unsigned)__builtin_popcountll(mask);
}

int ks_ec_create(ks_ec_t **out, unsigned k, unsigned m)
{
  *out = NULL;
  if (k < 1 || m < 1 || k + m > KS_EC_MAX_FRAGS)
    return -EINVAL;
  ks_ec_t *ec = calloc(1, sizeof(*ec));
  if (ec == NULL)
    return -ENOMEM;
  ec->k = k;
  ec->m = m;
  ec->enc_tbls = malloc((size_t)EC_GFTBL_BYTES * k * m);
  if (ec->enc_tbls == NULL) {
    free(ec);
    return -ENOMEM;
  }
  if (pthread_mutex_init(&ec->lock, NULL) != 0) {
    free(ec->enc_tbls);
    free(ec);
    return -ENOMEM;
  }
  gf_gen_cauchy1_matrix(ec->matrix, (int)(k + m), (int)k);
  ec_init_tables((int)k, (int)m, &ec->matrix[k * k], ec->enc_tbls);
  *out = ec;
  return 0;
}

void ks_ec_destroy(ks_ec_t *ec)
{
  if (ec == NULL)
    return;
  for (size_t i = 0; i < EC_CACHE_SLOTS; i++)
    free(ec->cache[i]);
  pthread_mutex_destroy(&ec->lock);
  free(ec->enc_tbls);
  free(ec);
}

unsigned ks_ec_k(const ks_ec_t *ec)
{
  return ec->k;
}

unsigned ks_ec_m(const ks_ec_t *ec)
{
  return ec->m;
}

size_t ks_ec_frag_len(unsigned k, size_t data_len)
{
  assert(k >= 1);
  size_t per = data_len / k + (data_len % k != 0);
  if (per > KS_EC_MAX_FRAG_LEN)
    return 0;
  per = (per + KS_EC_ALIGN - 1) & ~(size_t)(KS_EC_ALIGN - 1);
  return per == 0 ? KS_EC_ALIGN : per;
}

int ks_ec_encode(const ks_ec_t *ec, size_t frag_len,
                 const uint8_t *const data[], uint8_t *const parity[])
{
  if (frag_len == 0 || frag_len > KS_EC_MAX_FRAG_LEN)
    return -EINVAL;
  unsigned char *src[KS_EC_MAX_FRAGS];
  unsigned char *dst[KS_EC_MAX_FRAGS];
  for (unsigned i = 0; i < ec->k; i++)
    src[i] = (unsigned char *)data[i]; /* isa-l only reads its sources */
  for (unsigned i = 0; i < ec->m; i++)
    dst[i] = parity[i];
  ec_encode_data((int)frag_len, (int)ec->k, (int)ec->m, ec->enc_tbls, src, dst);
  return 0;
}

/* ---- decode tables ------------------------------------------------------ */

/* Row t of the reconstruction matrix, given inv = B^-1 (k x k). */
static void decode_row(const ks_ec_t *ec, const uint8_t *inv, unsigned t,
                       uint8_t *row)
{
  unsigned k = ec->k;
  if (t < k) {
    memcpy(row, &inv[t * k], k);
    return;
  }
  for (unsigned j = 0; j < k; j++) {
    uint8_t acc = 0;
    for (unsigned l = 0; l < k; l++)
      acc ^= gf_mul(ec->matrix[t * k + l], inv[l * k + j]);
    row[j] = acc;
  }
}

/* Build the tables that turn the sources in src into the fragments in dst. */
static int decode_build(const ks_ec_t *ec, uint64_t src, uint64_t dst,
                        ec_decode_t **out)
{
  unsigned k = ec->k;
  unsigned ndst = mask_count(dst);
  uint8_t b[KS_EC_MAX_FRAGS * KS_EC_MAX_FRAGS];
  uint8_t inv[KS_EC_MAX_FRAGS * KS_EC_MAX_FRAGS];
  uint8_t rows[KS_EC_MAX_FRAGS * KS_EC_MAX_FRAGS];
  unsigned r = 0;
  assert(mask_count(src) == k);
  for (unsigned i = 0; i < k + ec->m; i++)
    if (src & (UINT64_C(1) << i))
      memcpy(&b[k * r++], &ec->matrix[i * k], k);
  /* Any k rows of a Cauchy-extended identity are invertible. */
  if (gf_invert_matrix(b, inv, (int)k) != 0)
    return -EIO;
  r = 0;
  for (unsigned t = 0; t < k + ec->m; t++)
    if (dst & (UINT64_C(1) << t))
      decode_row(ec, inv, t, &rows[k * r++]);
  ec_decode_t *d = malloc(sizeof(*d) + (size_t)EC_GFTBL_BYTES * k * ndst);
  if (d == NULL)
    return -ENOMEM;
  d->src_mask = src;
  d->dst_mask = dst;
  d->ndst = ndst;
  ec_init_tables((int)k, (int)ndst, rows, d->gftbls);
  *out = d;
  return 0;
}

static size_t cache_slot(uint64_t src, uint64_t dst)
{
  uint64_t h = (src * UINT64_C(0x9E3779B97F4A7C15)) ^
               (dst * UINT64_C(0xC2B2AE3D27D4EB4F));
  return (size_t)(h >> 40) & (EC_CACHE_SLOTS - 1);
}

/* The tables for (src, dst): a cached entry, or (cache full) a fresh one
 * also stored in *owned, which the caller frees.  NULL on failure, with the
 * error in *rc. */
static const ec_decode_t *decode_get(ks_ec_t *ec, uint64_t src, uint64_t dst,
                                     ec_decode_t **owned, int *rc)
{
  ec_decode_t *d = NULL;
  *owned = NULL;
  *rc = 0;
  pthread_mutex_lock(&ec->lock);
  size_t slot = cache_slot(src, dst);
  for (size_t probe = 0; probe < EC_CACHE_SLOTS; probe++) {
    ec_decode_t **e = &ec->cache[(slot + probe) & (EC_CACHE_SLOTS - 1)];
    if (*e == NULL) {
      *rc = decode_build(ec, src, dst, &d);
      *e = d;
      goto out;
    }
    if ((*e)->src_mask == src && (*e)->dst_mask == dst) {
      d = *e;
      goto out;
    }
  }
  *rc = decode_build(ec, src, dst, &d);
  *owned = d;
out:
  pthread_mutex_unlock(&ec->lock);
  return *rc == 0 ? d : NULL;
}

int ks_ec_reconstruct(ks_ec_t *ec, size_t frag_len,
                      const uint8_t *const frags[], uint8_t *const out[])
{
  unsigned n = ec->k + ec->m;
  uint64_t src = 0, dst = 0;
  unsigned char *in[KS_EC_MAX_FRAGS];
  unsigned char *to[KS_EC_MAX_FRAGS];
  unsigned nin = 0, nto = 0;
  if (frag_len == 0 || frag_len > KS_EC_MAX_FRAG_LEN)
    return -EINVAL;
  for (unsigned i = 0; i < n; i++) {
    if (frags[i] != NULL && nin < ec->k) {
      src |= UINT64_C(1) << i;
      in[nin++] = (unsigned char *)frags[i]; /* isa-l only reads sources */
    } else if (frags[i] == NULL && out[i] != NULL) {
      dst |= UINT64_C(1) << i;
      to[nto++] = out[i];
    }
  }
  if (nin < ec->k)
    return -ENODATA;
  if (nto == 0)
    return 0;
  ec_decode_t *owned = NULL;
  int rc;
  const ec_decode_t *d = decode_get(ec, src, dst, &owned, &rc);
  if (d == NULL)
    return rc;
  assert(d->ndst == nto);
  ec_encode_data((int)frag_len, (int)ec->k, (int)nto,
                 (unsigned char *)d->gftbls, in, to);
  free(owned);
  return 0;
}
