/*
 * test_chunk.c — the chunk codec (ks/chunk.h) over the file key provider
 * and isa-l 4+2.
 *
 * Round trips of 0, 1, 17, 4 KiB, 65,537, 1,000,003 bytes and 4 MiB; every
 * one- and two-loss degraded open of an odd-sized chunk, and one of a 4 MiB
 * chunk; three losses -> -ENODATA.  Tampering: a flipped bit at the start,
 * middle and end (padding included) of every data fragment, and in a
 * parity fragment a degraded open rebuilds from, fails with KS_EAUTH and a
 * zeroed output.  Ids: deterministic per tenant, different across tenants,
 * equal to ks_chunk_id.  Keys: another tenant, or the same tenant id under
 * another provider's keys -> KS_EAUTH; a shredded tenant -> -EKEYREVOKED;
 * chunks sealed before a rotation still open.  The descriptor round-trips
 * through ks/enc.h and malformed ones are refused.  Four threads seal and
 * open (degraded, every pattern) at once through one provider and one
 * profile, for the sanitizers to watch the shared locks and decode cache.
 */
#include "ks/chunk.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/err.h"
#include "ks/kms.h"
#include "ks/rand.h"

typedef struct fx {
  char dir[256];
  ks_kms_t *kms;
  ks_ec_t *ec;
  ks_id_t a, b;
} fx_t;

/* One sealed chunk and its plaintext. */
typedef struct sealed {
  uint8_t *pt;
  size_t len;
  uint8_t *frags;
  ks_chunk_desc_t desc;
  const uint8_t *f[6];
} sealed_t;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int fx_setup(void **state)
{
  fx_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  const char *tmp = getenv("TMPDIR");
  snprintf(f->dir, sizeof(f->dir), "%s/ks-chunk-XXXXXX", tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(ks_kms_file_open(f->dir, &f->kms), 0);
  assert_int_equal(ks_ec_create(&f->ec, 4, 2), 0);
  assert_int_equal(ks_id_generate(&f->a), 0);
  assert_int_equal(ks_id_generate(&f->b), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->b), 0);
  *state = f;
  return 0;
}

static int fx_teardown(void **state)
{
  fx_t *f = *state;
  ks_ec_destroy(f->ec);
  ks_kms_close(f->kms);
  assert_int_equal(nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
  free(f);
  return 0;
}

static void seal_data(fx_t *f, const ks_id_t *t, sealed_t *s, const void *pt,
                      size_t len)
{
  size_t flen = ks_chunk_frag_len(4, len);
  s->len = len;
  s->pt = malloc(len ? len : 1);
  s->frags = aligned_alloc(64, 6 * flen);
  assert_non_null(s->pt);
  assert_non_null(s->frags);
  if (len > 0)
    memcpy(s->pt, pt, len);
  assert_int_equal(ks_chunk_seal(f->kms, f->ec, t, len ? s->pt : NULL, len,
                                 s->frags, 6 * flen, &s->desc),
                   0);
  assert_int_equal(s->desc.frag_len, flen);
  assert_int_equal(s->desc.pt_len, len);
  for (int i = 0; i < 6; i++)
    s->f[i] = s->frags + (size_t)i * flen;
}

static void seal_random(fx_t *f, const ks_id_t *t, sealed_t *s, size_t len)
{
  uint8_t *pt = malloc(len ? len : 1);
  assert_non_null(pt);
  assert_int_equal(ks_rand_bytes(pt, len), 0);
  seal_data(f, t, s, pt, len);
  free(pt);
}

static void sealed_free(sealed_t *s)
{
  free(s->pt);
  free(s->frags);
}

/* Open with the given fragment set; on success compare with the original,
 * on failure check the output was wiped. */
static int open_with(fx_t *f, const ks_id_t *t, const sealed_t *s,
                     const uint8_t *const frags[6])
{
  uint8_t *out = malloc(s->len + 1);
  assert_non_null(out);
  memset(out, 0xAA, s->len + 1);
  int rc = ks_chunk_open(f->kms, f->ec, t, &s->desc, frags, out, s->len);
  if (rc == 0) {
    assert_memory_equal(out, s->pt, s->len);
  } else {
    for (size_t i = 0; i < s->len; i++)
      assert_int_equal(out[i], 0);
  }
  assert_int_equal(out[s->len], 0xAA); /* nothing past pt_len */
  free(out);
  return rc;
}

static int open_losing(fx_t *f, const sealed_t *s, unsigned lost)
{
  const uint8_t *in[6];
  for (unsigned i = 0; i < 6; i++)
    in[i] = (lost >> i) & 1 ? NULL : s->f[i];
  return open_with(f, &f->a, s, in);
}

static void test_round_trip(void **state)
{
  fx_t *f = *state;
  static const size_t lens[] = {0, 1, 17, 4096, 65537, 1000003, 4u << 20};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    sealed_t s;
    seal_random(f, &f->a, &s, lens[i]);
    assert_int_equal(s.desc.ct_len, lens[i] + 16);
    assert_int_equal(open_losing(f, &s, 0), 0);
    sealed_free(&s);
  }
}

static void test_degraded(void **state)
{
  fx_t *f = *state;
  sealed_t s;
  unsigned patterns = 0;
  seal_random(f, &f->a, &s, 100001);
  for (unsigned lost = 1; lost < 64; lost++) {
    int n = __builtin_popcount(lost);
    if (n <= 2) {
      assert_int_equal(open_losing(f, &s, lost), 0);
      patterns++;
    } else {
      assert_int_equal(open_losing(f, &s, lost), -ENODATA);
    }
  }
  assert_int_equal(patterns, 21);
  sealed_free(&s);
  seal_random(f, &f->a, &s, 4u << 20);
  assert_int_equal(open_losing(f, &s, 0x3), 0); /* two data fragments */
  assert_int_equal(open_losing(f, &s, 0x24), 0);
  sealed_free(&s);
}

/* Flip bit `bit` of byte off of fragment i, open with `lost` missing. */
static int open_flipped(fx_t *f, sealed_t *s, unsigned i, size_t off,
                        unsigned lost)
{
  uint8_t *p = (uint8_t *)s->f[i] + off;
  *p ^= 0x04;
  int rc = open_losing(f, s, lost);
  *p ^= 0x04;
  return rc;
}

static void test_tamper(void **state)
{
  fx_t *f = *state;
  sealed_t s;
  seal_random(f, &f->a, &s, 10001); /* last data fragment has padding */
  size_t flen = s.desc.frag_len;
  assert_true(4 * flen > s.desc.ct_len);
  for (unsigned i = 0; i < 4; i++) {
    assert_int_equal(open_flipped(f, &s, i, 0, 0), KS_EAUTH);
    assert_int_equal(open_flipped(f, &s, i, flen / 2, 0), KS_EAUTH);
    assert_int_equal(open_flipped(f, &s, i, flen - 1, 0), KS_EAUTH);
  }
  /* a parity fragment used to rebuild a data fragment */
  assert_int_equal(open_flipped(f, &s, 4, 7, 0x1), KS_EAUTH);
  assert_int_equal(open_flipped(f, &s, 5, flen - 1, 0x9), KS_EAUTH);
  /* a source fragment whose padding feeds the rebuilt one */
  assert_int_equal(open_flipped(f, &s, 3, flen - 1, 0x1), KS_EAUTH);
  /* an unused parity fragment is not read */
  assert_int_equal(open_flipped(f, &s, 5, 0, 0), 0);
  assert_int_equal(open_losing(f, &s, 0), 0);
  /* descriptor fields the tag covers */
  ks_chunk_desc_t orig = s.desc;
  s.desc.iv[0] ^= 1;
  assert_int_equal(open_losing(f, &s, 0), KS_EAUTH);
  s.desc = orig;
  s.desc.id[31] ^= 1;
  assert_int_equal(open_losing(f, &s, 0), KS_EAUTH);
  s.desc = orig;
  s.desc.wrapped[20] ^= 1;
  assert_int_equal(open_losing(f, &s, 0), KS_EAUTH);
  s.desc = orig;
  sealed_free(&s);
}

static void test_ids(void **state)
{
  fx_t *f = *state;
  uint8_t data[5000], id[KS_CHUNK_ID_LEN];
  sealed_t s1, s2, s3;
  assert_int_equal(ks_rand_bytes(data, sizeof(data)), 0);
  seal_data(f, &f->a, &s1, data, sizeof(data));
  seal_data(f, &f->a, &s2, data, sizeof(data));
  seal_data(f, &f->b, &s3, data, sizeof(data));
  assert_memory_equal(s1.desc.id, s2.desc.id, KS_CHUNK_ID_LEN);
  assert_memory_not_equal(s1.desc.id, s3.desc.id, KS_CHUNK_ID_LEN);
  /* same content, fresh DEK and IV: different ciphertext */
  assert_memory_not_equal(s1.desc.iv, s2.desc.iv, KS_GCM_IV_LEN);
  assert_memory_not_equal(s1.frags, s2.frags, 64);
  assert_int_equal(ks_chunk_id(f->kms, &f->a, data, sizeof(data), id), 0);
  assert_memory_equal(id, s1.desc.id, KS_CHUNK_ID_LEN);
  data[0] ^= 1;
  assert_int_equal(ks_chunk_id(f->kms, &f->a, data, sizeof(data), id), 0);
  assert_memory_not_equal(id, s1.desc.id, KS_CHUNK_ID_LEN);
  sealed_free(&s1);
  sealed_free(&s2);
  sealed_free(&s3);
}

static void test_wrong_keys(void **state)
{
  fx_t *f = *state;
  sealed_t s;
  char dir2[300];
  ks_kms_t *other = NULL;
  seal_random(f, &f->a, &s, 3000);
  assert_int_equal(open_with(f, &f->b, &s, s.f), KS_EAUTH);
  /* the same tenant id with different keys (another provider) */
  snprintf(dir2, sizeof(dir2), "%s/other", f->dir);
  assert_int_equal(ks_kms_file_open(dir2, &other), 0);
  assert_int_equal(ks_kms_tenant_create(other, &f->a), 0);
  ks_kms_t *mine = f->kms;
  f->kms = other;
  assert_int_equal(open_with(f, &f->a, &s, s.f), KS_EAUTH);
  f->kms = mine;
  ks_kms_close(other);
  /* rotation keeps old chunks readable; new ones use the new version */
  uint32_t v;
  assert_int_equal(ks_kms_tenant_rotate(f->kms, &f->a, &v), 0);
  sealed_t s2;
  seal_random(f, &f->a, &s2, 3000);
  assert_int_equal(s.desc.key_version, 1);
  assert_int_equal(s2.desc.key_version, 2);
  assert_int_equal(open_with(f, &f->a, &s, s.f), 0);
  assert_int_equal(open_with(f, &f->a, &s2, s2.f), 0);
  /* crypto-shred */
  assert_int_equal(ks_kms_tenant_destroy(f->kms, &f->a), 0);
  assert_int_equal(open_with(f, &f->a, &s, s.f), -EKEYREVOKED);
  assert_int_equal(open_with(f, &f->a, &s2, s2.f), -EKEYREVOKED);
  sealed_t s3;
  memset(&s3.desc, 0xAA, sizeof(s3.desc));
  uint8_t frag[6 * 64];
  assert_int_equal(
      ks_chunk_seal(f->kms, f->ec, &f->a, "x", 1, frag, sizeof(frag), &s3.desc),
      -EKEYREVOKED);
  for (size_t i = 0; i < sizeof(s3.desc); i++)
    assert_int_equal(((uint8_t *)&s3.desc)[i], 0);
  sealed_free(&s);
  sealed_free(&s2);
}

static void test_bad_args(void **state)
{
  fx_t *f = *state;
  sealed_t s;
  ks_chunk_desc_t d;
  uint8_t small[6 * 64], out[100] = {0};
  ks_ec_t *ec3 = NULL;
  assert_int_equal(ks_chunk_seal(f->kms, f->ec, &f->a, out, 100, small,
                                 sizeof(small) - 1, &d),
                   -EINVAL);
  assert_int_equal(ks_chunk_frag_len(4, KS_CHUNK_MAX_LEN + 1), 0);
  seal_random(f, &f->a, &s, 100);
  assert_int_equal(ks_chunk_open(f->kms, f->ec, &f->a, &s.desc, s.f, out, 99),
                   -EINVAL);
  assert_int_equal(ks_ec_create(&ec3, 4, 3), 0);
  assert_int_equal(ks_chunk_open(f->kms, ec3, &f->a, &s.desc, s.f, out, 100),
                   -EINVAL);
  ks_ec_destroy(ec3);
  d = s.desc;
  d.frag_len += 64;
  assert_int_equal(ks_chunk_open(f->kms, f->ec, &f->a, &d, s.f, out, 100),
                   KS_ECORRUPT);
  sealed_free(&s);
}

static void test_desc_codec(void **state)
{
  fx_t *f = *state;
  sealed_t s;
  ks_chunk_desc_t d;
  ks_dec_t dec;
  seal_random(f, &f->a, &s, 12345);
  ks_enc_t e = KS_ENC_INIT;
  ks_chunk_desc_encode(&e, &s.desc);
  assert_int_equal(ks_enc_finish(&e), 0);
  ks_dec_init(&dec, e.buf.data, e.buf.len);
  assert_int_equal(ks_chunk_desc_decode(&dec, &d), 0);
  assert_int_equal(ks_dec_finish(&dec), 0);
  assert_memory_equal(&d, &s.desc, sizeof(d));
  /* every truncation is a decode error */
  for (size_t n = 0; n < e.buf.len; n++) {
    ks_dec_init(&dec, e.buf.data, n);
    assert_int_not_equal(ks_chunk_desc_decode(&dec, &d), 0);
  }
  /* impossible values: format, k, lengths */
  static const size_t offs[] = {0, 33, 35, 39, 47};
  for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
    e.buf.data[offs[i]] ^= 0x40;
    ks_dec_init(&dec, e.buf.data, e.buf.len);
    assert_int_equal(ks_chunk_desc_decode(&dec, &d), KS_ECORRUPT);
    e.buf.data[offs[i]] ^= 0x40;
  }
  ks_enc_free(&e);
  sealed_free(&s);
}

/* ---- concurrency -------------------------------------------------------- */

static void *worker(void *arg)
{
  fx_t *f = arg;
  for (unsigned round = 0; round < 40; round++) {
    sealed_t s;
    seal_random(f, round % 2 ? &f->a : &f->b, &s, 1000 + round * 37);
    unsigned lost = (round * 7) % 64;
    const uint8_t *in[6];
    for (unsigned i = 0; i < 6; i++)
      in[i] = (lost >> i) & 1 ? NULL : s.f[i];
    uint8_t *out = malloc(s.len);
    assert_non_null(out);
    int rc = ks_chunk_open(f->kms, f->ec, round % 2 ? &f->a : &f->b, &s.desc,
                           in, out, s.len);
    assert_int_equal(rc, __builtin_popcount(lost) <= 2 ? 0 : -ENODATA);
    if (rc == 0)
      assert_memory_equal(out, s.pt, s.len);
    free(out);
    sealed_free(&s);
  }
  return NULL;
}

static void test_threads(void **state)
{
  fx_t *f = *state;
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, worker, f), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_degraded, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_tamper, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_ids, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_wrong_keys, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_bad_args, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_desc_codec, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_threads, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
