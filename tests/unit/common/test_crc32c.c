/*
 * test_crc32c.c — CRC-32C (ks/crc32c.h): the standard check value, the
 * RFC 3720 (iSCSI) appendix B.4 vectors, chaining across every split point,
 * iovecs, and agreement with a bitwise reference over odd lengths and
 * alignments (isa-l switches code paths on both).
 */
#include "ks/crc32c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

/* Bit-at-a-time CRC-32C, reflected polynomial 0x82F63B78: slow and obvious. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
  crc = ~crc;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static void test_check_value(void **state)
{
  (void)state;
  assert_int_equal(ks_crc32c(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(ks_crc32c(0, NULL, 0), 0);
  assert_int_equal(ks_crc32c(0x12345678u, NULL, 0), 0x12345678u);
}

/* The IEEE CRC-32 (S3's x-amz-checksum-crc32): check value and chaining. */
static void test_crc32_ieee(void **state)
{
  (void)state;
  struct iovec one = {(void *)"123456789", 9};
  assert_int_equal(ks_crc32_iov(0, &one, 1), 0xCBF43926u);
  struct iovec two[2] = {{(void *)"1234", 4}, {(void *)"56789", 5}};
  assert_int_equal(ks_crc32_iov(0, two, 2), 0xCBF43926u);
  assert_int_equal(ks_crc32_iov(ks_crc32_iov(0, two, 1), two + 1, 1),
                   0xCBF43926u);
  assert_int_equal(ks_crc32_iov(0, NULL, 0), 0);
}

static void test_rfc3720_vectors(void **state)
{
  (void)state;
  uint8_t b[32];
  memset(b, 0, sizeof b);
  assert_int_equal(ks_crc32c(0, b, 32), 0x8A9136AAu);
  memset(b, 0xff, sizeof b);
  assert_int_equal(ks_crc32c(0, b, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; i++)
    b[i] = (uint8_t)i;
  assert_int_equal(ks_crc32c(0, b, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; i++)
    b[i] = (uint8_t)(31 - i);
  assert_int_equal(ks_crc32c(0, b, 32), 0x113FDB5Cu);
}

static void test_chaining(void **state)
{
  (void)state;
  const char *s = "123456789";
  for (size_t cut = 0; cut <= 9; cut++) {
    uint32_t c = ks_crc32c(ks_crc32c(0, s, cut), s + cut, 9 - cut);
    assert_int_equal(c, 0xE3069283u);
  }
}

static void test_matches_reference(void **state)
{
  (void)state;
  static uint8_t big[4096 + 64];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)(i * 131 + 7);
  static const size_t lens[] = {1,  7,  8,   15,  16,   63,
                                64, 65, 255, 256, 1000, 4096};
  for (size_t off = 0; off < 8; off++)
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
      assert_int_equal(ks_crc32c(0, big + off, lens[i]),
                       crc_ref(0, big + off, lens[i]));
  uint32_t c = ks_crc32c(0, big, 1000);
  c = ks_crc32c(c, big + 1000, sizeof big - 1000);
  assert_int_equal(c, crc_ref(0, big, sizeof big));
}

static void test_iov(void **state)
{
  (void)state;
  char a[] = "1234", b[] = "56789";
  struct iovec iov[3] = {
      {.iov_base = a, .iov_len = 4},
      {.iov_base = NULL, .iov_len = 0},
      {.iov_base = b, .iov_len = 5},
  };
  assert_int_equal(ks_crc32c_iov(0, iov, 3), 0xE3069283u);
  assert_int_equal(ks_crc32c_iov(0, iov, 0), 0);
  /* iov continues a running crc like the flat call */
  assert_int_equal(ks_crc32c_iov(ks_crc32c(0, "1234", 4), iov + 1, 2),
                   0xE3069283u);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check_value),
      cmocka_unit_test(test_crc32_ieee),
      cmocka_unit_test(test_rfc3720_vectors),
      cmocka_unit_test(test_chaining),
      cmocka_unit_test(test_matches_reference),
      cmocka_unit_test(test_iov),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
