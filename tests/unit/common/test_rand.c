/*
 * test_rand.c — random numbers (ks/rand.h) and ids (ks/id.h).
 *
 * Randomness cannot be checked for a value, only for shape: successive
 * draws differ, every byte value and every residue of ks_rand_range shows
 * up, the range is respected at its edges.  Ids: UUIDv4 bits, the hex form
 * round-trips in either case, parsing is strict, order matches hex order.
 */
#include "ks/id.h"
#include "ks/rand.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

static void test_rand_bytes(void **state)
{
  (void)state;
  uint8_t a[64] = {0}, b[64] = {0};
  assert_int_equal(ks_rand_bytes(a, sizeof a), 0);
  assert_int_equal(ks_rand_bytes(b, sizeof b), 0);
  assert_memory_not_equal(a, b, sizeof a);
  assert_int_equal(ks_rand_bytes(NULL, 0), 0);
  /* 64 KiB hit all 256 byte values (missing one has odds ~ 256 * e^-256) */
  static uint8_t big[65536];
  bool seen[256] = {false};
  assert_int_equal(ks_rand_bytes(big, sizeof big), 0);
  for (size_t i = 0; i < sizeof big; i++)
    seen[big[i]] = true;
  for (int v = 0; v < 256; v++)
    assert_true(seen[v]);
}

static void test_rand_u64(void **state)
{
  (void)state;
  uint64_t or_all = 0, and_all = UINT64_MAX, prev = ks_rand_u64();
  for (int i = 0; i < 256; i++) {
    uint64_t v = ks_rand_u64();
    assert_true(v != prev);
    or_all |= v;
    and_all &= v;
    prev = v;
  }
  assert_true(or_all == UINT64_MAX); /* every bit was set at least once */
  assert_true(and_all == 0);         /* and cleared at least once */
}

static void test_rand_range(void **state)
{
  (void)state;
  for (int i = 0; i < 100; i++)
    assert_true(ks_rand_range(1) == 0);
  int hits[7] = {0};
  for (int i = 0; i < 7000; i++) {
    uint64_t v = ks_rand_range(7);
    assert_true(v < 7);
    hits[v]++;
  }
  for (int i = 0; i < 7; i++) /* expected 1000; 700 is > 10 sigma away */
    assert_true(hits[i] > 700);
  /* near the top, where the rejection threshold is largest */
  uint64_t n = (UINT64_C(1) << 63) + 1;
  for (int i = 0; i < 100; i++)
    assert_true(ks_rand_range(n) < n);
  for (int i = 0; i < 100; i++)
    assert_true(ks_rand_range(UINT64_MAX) < UINT64_MAX);
}

static void test_id_generate(void **state)
{
  (void)state;
  ks_id_t a, b;
  assert_int_equal(ks_id_generate(&a), 0);
  assert_int_equal(ks_id_generate(&b), 0);
  assert_int_not_equal(ks_id_cmp(&a, &b), 0);
  assert_false(ks_id_is_zero(&a));
  assert_int_equal(a.b[6] >> 4, 4); /* version 4 */
  assert_int_equal(a.b[8] >> 6, 2); /* variant 10 */
  ks_id_t zero = KS_ID_ZERO;
  assert_true(ks_id_is_zero(&zero));
}

static void test_id_hex(void **state)
{
  (void)state;
  ks_id_t a, b;
  char hex[KS_ID_HEX_LEN + 1];
  assert_int_equal(ks_id_generate(&a), 0);
  assert_ptr_equal(ks_id_to_hex(&a, hex), hex);
  assert_int_equal(strlen(hex), KS_ID_HEX_LEN);
  assert_int_equal(ks_id_from_hex(&b, hex, strlen(hex)), 0);
  assert_int_equal(ks_id_cmp(&a, &b), 0);

  const char *s = "00112233445566778899AABBCCDDEEFF";
  assert_int_equal(ks_id_from_hex(&b, s, 32), 0);
  for (int i = 0; i < 16; i++)
    assert_int_equal(b.b[i], (uint8_t)(i * 0x11));
  assert_string_equal(ks_id_to_hex(&b, hex),
                      "00112233445566778899aabbccddeeff");
}

static void test_id_hex_rejects(void **state)
{
  (void)state;
  ks_id_t id, orig;
  memset(&id, 0x5a, sizeof id);
  orig = id;
  const char *good = "00112233445566778899aabbccddeeff";
  assert_int_equal(ks_id_from_hex(&id, good, 31), -EINVAL);
  assert_int_equal(ks_id_from_hex(&id, "00112233445566778899aabbccddeeff0", 33),
                   -EINVAL);
  assert_int_equal(ks_id_from_hex(&id, "0011223344556677-899aabbccddeeff", 32),
                   -EINVAL);
  assert_int_equal(ks_id_from_hex(&id, "00112233445566778899aabbccddeefg", 32),
                   -EINVAL);
  assert_int_equal(ks_id_from_hex(&id, "", 0), -EINVAL);
  assert_int_equal(ks_id_cmp(&id, &orig), 0); /* untouched on error */
}

static void test_id_order(void **state)
{
  (void)state;
  ks_id_t a, b;
  char ha[KS_ID_HEX_LEN + 1], hb[KS_ID_HEX_LEN + 1];
  for (int i = 0; i < 100; i++) {
    assert_int_equal(ks_id_generate(&a), 0);
    assert_int_equal(ks_id_generate(&b), 0);
    int c = ks_id_cmp(&a, &b),
        h = strcmp(ks_id_to_hex(&a, ha), ks_id_to_hex(&b, hb));
    assert_true((c < 0) == (h < 0) && (c > 0) == (h > 0));
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rand_bytes), cmocka_unit_test(test_rand_u64),
      cmocka_unit_test(test_rand_range), cmocka_unit_test(test_id_generate),
      cmocka_unit_test(test_id_hex),     cmocka_unit_test(test_id_hex_rejects),
      cmocka_unit_test(test_id_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
