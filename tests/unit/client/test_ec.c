/*
 * test_ec.c — Reed-Solomon coding (ks/ec.h) on isa-l.
 *
 * For the profiles 4+2, 2+1 and 8+3 and odd fragment sizes (isa-l's SIMD
 * tail handling), random data is encoded and then every erasure pattern of
 * 1..m lost fragments (data and parity alike) is rebuilt and compared with
 * the originals; 4+2 must see exactly 6 one-loss and 15 two-loss patterns.
 * Every pattern of m+1 losses must fail with -ENODATA and write nothing.
 * A 20+12 profile runs more distinct patterns than the decode cache holds,
 * so the uncached path is checked too.  Bad profiles and lengths -> -EINVAL.
 */
#include "ks/ec.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/rand.h"

typedef struct frags {
  unsigned k, m;
  size_t len;
  uint8_t *f[KS_EC_MAX_FRAGS];   /* originals, data then parity */
  uint8_t *out[KS_EC_MAX_FRAGS]; /* rebuild targets */
} frags_t;

static void frags_make(frags_t *t, ks_ec_t *ec, size_t len)
{
  t->k = ks_ec_k(ec);
  t->m = ks_ec_m(ec);
  t->len = len;
  for (unsigned i = 0; i < t->k + t->m; i++) {
    t->f[i] = malloc(len);
    t->out[i] = malloc(len);
    assert_non_null(t->f[i]);
    assert_non_null(t->out[i]);
    if (i < t->k)
      assert_int_equal(ks_rand_bytes(t->f[i], len), 0);
  }
  assert_int_equal(
      ks_ec_encode(ec, len, (const uint8_t *const *)t->f, &t->f[t->k]), 0);
}

static void frags_free(frags_t *t)
{
  for (unsigned i = 0; i < t->k + t->m; i++) {
    free(t->f[i]);
    free(t->out[i]);
  }
}

/* Lose the fragments in mask, rebuild, compare.  Returns the result of
 * ks_ec_reconstruct. */
static int rebuild(ks_ec_t *ec, frags_t *t, uint64_t lost)
{
  const uint8_t *in[KS_EC_MAX_FRAGS];
  for (unsigned i = 0; i < t->k + t->m; i++) {
    in[i] = (lost >> i) & 1 ? NULL : t->f[i];
    memset(t->out[i], 0xEE, t->len);
  }
  int rc = ks_ec_reconstruct(ec, t->len, in, t->out);
  for (unsigned i = 0; i < t->k + t->m; i++) {
    if (rc == 0 && ((lost >> i) & 1))
      assert_memory_equal(t->out[i], t->f[i], t->len);
    else if ((lost >> i) & 1) /* failed: nothing written */
      assert_int_equal(t->out[i][0], 0xEE);
  }
  return rc;
}

/* Every pattern of 1..m losses; counts[j] receives the j-loss count. */
static void all_patterns(unsigned k, unsigned m, size_t len,
                         unsigned counts[KS_EC_MAX_FRAGS + 1])
{
  ks_ec_t *ec = NULL;
  frags_t t;
  assert_int_equal(ks_ec_create(&ec, k, m), 0);
  frags_make(&t, ec, len);
  for (uint64_t lost = 1; lost < (UINT64_C(1) << (k + m)); lost++) {
    unsigned n = (unsigned)__builtin_popcountll(lost);
    if (n <= m) {
      assert_int_equal(rebuild(ec, &t, lost), 0);
      counts[n]++;
    } else if (n == m + 1) {
      assert_int_equal(rebuild(ec, &t, lost), -ENODATA);
    }
  }
  frags_free(&t);
  ks_ec_destroy(ec);
}

static void test_patterns_4_2(void **state)
{
  (void)state;
  static const size_t lens[] = {1, 63, 64, 1001, 65537};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    unsigned counts[KS_EC_MAX_FRAGS + 1] = {0};
    all_patterns(4, 2, lens[i], counts);
    assert_int_equal(counts[1], 6);
    assert_int_equal(counts[2], 15);
  }
}

static void test_patterns_2_1(void **state)
{
  (void)state;
  unsigned counts[KS_EC_MAX_FRAGS + 1] = {0};
  all_patterns(2, 1, 777, counts);
  assert_int_equal(counts[1], 3);
}

static void test_patterns_8_3(void **state)
{
  (void)state;
  unsigned counts[KS_EC_MAX_FRAGS + 1] = {0};
  all_patterns(8, 3, 4099, counts);
  assert_int_equal(counts[1], 11);
  assert_int_equal(counts[2], 55);
  assert_int_equal(counts[3], 165);
}

/* Only the fragments asked for are written. */
static void test_partial_targets(void **state)
{
  (void)state;
  ks_ec_t *ec = NULL;
  frags_t t;
  assert_int_equal(ks_ec_create(&ec, 4, 2), 0);
  frags_make(&t, ec, 333);
  const uint8_t *in[6] = {NULL, t.f[1], t.f[2], NULL, t.f[4], t.f[5]};
  uint8_t *out[6] = {t.out[0], NULL, NULL, NULL, NULL, NULL};
  memset(t.out[0], 0, 333);
  assert_int_equal(ks_ec_reconstruct(ec, 333, in, out), 0);
  assert_memory_equal(t.out[0], t.f[0], 333);
  /* nothing asked: success, nothing done */
  uint8_t *none[6] = {NULL};
  assert_int_equal(ks_ec_reconstruct(ec, 333, in, none), 0);
  frags_free(&t);
  ks_ec_destroy(ec);
}

/* More distinct patterns than the decode cache has slots. */
static void test_wide_profile_uncached(void **state)
{
  (void)state;
  ks_ec_t *ec = NULL;
  frags_t t;
  assert_int_equal(ks_ec_create(&ec, 20, 12), 0);
  frags_make(&t, ec, 129);
  for (int round = 0; round < 700; round++) {
    uint64_t lost = 0;
    while (__builtin_popcountll(lost) < 1 + (int)ks_rand_range(12))
      lost |= UINT64_C(1) << ks_rand_range(32);
    assert_int_equal(rebuild(ec, &t, lost), 0);
  }
  frags_free(&t);
  ks_ec_destroy(ec);
}

static void test_bad_args(void **state)
{
  (void)state;
  ks_ec_t *ec = (ks_ec_t *)&ec;
  assert_int_equal(ks_ec_create(&ec, 0, 2), -EINVAL);
  assert_null(ec);
  assert_int_equal(ks_ec_create(&ec, 4, 0), -EINVAL);
  assert_int_equal(ks_ec_create(&ec, 30, 3), -EINVAL);
  assert_int_equal(ks_ec_create(&ec, 4, 2), 0);
  uint8_t buf[6][64];
  const uint8_t *in[6] = {buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]};
  uint8_t *par[2] = {buf[4], buf[5]};
  uint8_t *out[6] = {NULL};
  assert_int_equal(ks_ec_encode(ec, 0, in, par), -EINVAL);
  assert_int_equal(ks_ec_reconstruct(ec, 0, in, out), -EINVAL);
  ks_ec_destroy(ec);
  ks_ec_destroy(NULL);
}

static void test_frag_len(void **state)
{
  (void)state;
  assert_int_equal(ks_ec_frag_len(4, 0), 64);
  assert_int_equal(ks_ec_frag_len(4, 1), 64);
  assert_int_equal(ks_ec_frag_len(4, 256), 64);
  assert_int_equal(ks_ec_frag_len(4, 257), 128);
  assert_int_equal(ks_ec_frag_len(1, 65), 128);
  assert_int_equal(ks_ec_frag_len(4, (4u << 20) + 16), (1u << 20) + 64);
  assert_int_equal(ks_ec_frag_len(1, SIZE_MAX), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_patterns_4_2),
      cmocka_unit_test(test_patterns_2_1),
      cmocka_unit_test(test_patterns_8_3),
      cmocka_unit_test(test_partial_targets),
      cmocka_unit_test(test_wide_profile_uncached),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_frag_len),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
