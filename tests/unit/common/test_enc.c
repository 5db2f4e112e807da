/*
 * test_enc.c — the body encoding: round trip, sticky errors, bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/enc.h"
#include "ks/err.h"

#include <string.h>

static void test_roundtrip(void **state)
{
  (void)state;
  ks_enc_t e = KS_ENC_INIT;
  uint8_t id[32];
  memset(id, 0xAB, sizeof(id));
  ks_enc_u8(&e, 7);
  ks_enc_u16(&e, 0xBEEF);
  ks_enc_u32(&e, 0xDEADBEEF);
  ks_enc_u64(&e, 0x0102030405060708ULL);
  ks_enc_i64(&e, -42);
  ks_enc_bytes(&e, id, sizeof(id));
  ks_enc_blob(&e, "hello", 5);
  ks_enc_str(&e, "key/with space");
  ks_enc_str(&e, NULL);
  assert_int_equal(ks_enc_finish(&e), 0);

  ks_dec_t d;
  char s[64];
  size_t n;
  ks_dec_init(&d, e.buf.data, e.buf.len);
  assert_int_equal(ks_dec_u8(&d), 7);
  assert_int_equal(ks_dec_u16(&d), 0xBEEF);
  assert_int_equal(ks_dec_u32(&d), 0xDEADBEEF);
  assert_int_equal(ks_dec_u64(&d), 0x0102030405060708ULL);
  assert_int_equal(ks_dec_i64(&d), -42);
  assert_memory_equal(ks_dec_bytes(&d, 32), id, 32);
  const uint8_t *b = ks_dec_blob(&d, 100, &n);
  assert_int_equal(n, 5);
  assert_memory_equal(b, "hello", 5);
  ks_dec_str(&d, s, sizeof(s));
  assert_string_equal(s, "key/with space");
  ks_dec_str(&d, s, sizeof(s));
  assert_string_equal(s, "");
  assert_int_equal(ks_dec_finish(&d), 0);
  ks_enc_free(&e);
}

static void test_short_and_trailing(void **state)
{
  (void)state;
  uint8_t buf[5] = {1, 2, 3, 4, 5};
  ks_dec_t d;
  ks_dec_init(&d, buf, sizeof(buf));
  assert_int_equal(ks_dec_u32(&d), 0x04030201);
  assert_int_equal(ks_dec_finish(&d), KS_EPROTO); /* 1 byte left over */
  assert_int_equal(ks_dec_u32(&d), 0);            /* short read */
  assert_int_equal(ks_dec_finish(&d), KS_EPROTO);
  assert_null(ks_dec_bytes(&d, 1)); /* sticky */
  assert_int_equal(ks_dec_u8(&d), 0);
}

static void test_blob_limits(void **state)
{
  (void)state;
  ks_enc_t e = KS_ENC_INIT;
  char s[4];
  size_t n;
  ks_enc_blob(&e, "toolong", 7);
  ks_dec_t d;
  ks_dec_init(&d, e.buf.data, e.buf.len);
  assert_null(ks_dec_blob(&d, 6, &n));
  assert_int_equal(ks_dec_finish(&d), KS_ETOOBIG);
  ks_dec_init(&d, e.buf.data, e.buf.len);
  ks_dec_str(&d, s, sizeof(s));
  assert_int_equal(ks_dec_finish(&d), KS_ETOOBIG);
  assert_string_equal(s, "");
  ks_enc_free(&e);
  /* embedded NUL in a string */
  ks_enc_blob(&e, "a\0b", 3);
  ks_dec_init(&d, e.buf.data, e.buf.len);
  ks_dec_str(&d, s, sizeof(s));
  assert_int_equal(ks_dec_finish(&d), KS_EPROTO);
  ks_enc_free(&e);
  /* a length prefix that claims more than there is */
  uint8_t lie[6] = {0xff, 0xff, 0, 0, 'a', 'b'};
  ks_dec_init(&d, lie, sizeof(lie));
  assert_null(ks_dec_blob(&d, 1 << 20, &n));
  assert_int_equal(ks_dec_finish(&d), KS_EPROTO);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_short_and_trailing),
      cmocka_unit_test(test_blob_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
