/*
 * test_codec.c — hex and base64 (ks/codec.h): the RFC 4648 section 10
 * vectors, the URL-safe alphabet, exact-size buffers (the heap copies let
 * ASan catch any write past the decoded length, e.g. OpenSSL's padding
 * bytes), and every rejection: odd or ragged length, foreign characters,
 * misplaced padding, non-canonical trailing bits, whitespace, small buffers.
 */
#include "ks/codec.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

static const struct {
  const char *plain, *b64, *b16;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "66"},
    {"fo", "Zm8=", "666F"},
    {"foo", "Zm9v", "666F6F"},
    {"foob", "Zm9vYg==", "666F6F62"},
    {"fooba", "Zm9vYmE=", "666F6F6261"},
    {"foobar", "Zm9vYmFy", "666F6F626172"},
};
#define NVEC (sizeof rfc4648 / sizeof rfc4648[0])

/* Decode s into a heap buffer of exactly `expect_len` bytes. */
static void check_decode(int (*dec)(void *, size_t, const char *, size_t),
                         const char *s, const void *expect, size_t expect_len)
{
  uint8_t *out = malloc(expect_len ? expect_len : 1);
  assert_non_null(out);
  assert_int_equal(dec(out, expect_len, s, strlen(s)), (int)expect_len);
  assert_memory_equal(out, expect, expect_len);
  free(out);
}

static void test_hex_vectors(void **state)
{
  (void)state;
  for (size_t i = 0; i < NVEC; i++) {
    size_t n = strlen(rfc4648[i].plain);
    char out[16], lower[16];
    assert_int_equal(ks_hex_encode(out, KS_HEX_LEN(n) + 1, rfc4648[i].plain, n),
                     (int)KS_HEX_LEN(n));
    for (size_t k = 0; k <= 2 * n; k++) /* expect lower case, and the NUL */
      lower[k] = (char)(rfc4648[i].b16[k] | (rfc4648[i].b16[k] ? 0x20 : 0));
    assert_string_equal(out, lower);
    check_decode(ks_hex_decode, rfc4648[i].b16, rfc4648[i].plain, n);
    check_decode(ks_hex_decode, lower, rfc4648[i].plain, n);
  }
  uint8_t all[256];
  char text[513];
  uint8_t back[256];
  for (int i = 0; i < 256; i++)
    all[i] = (uint8_t)i;
  assert_int_equal(ks_hex_encode(text, sizeof text, all, 256), 512);
  assert_memory_equal(text, "000102", 6);
  assert_string_equal(text + 500, "fafbfcfdfeff");
  assert_int_equal(ks_hex_decode(back, sizeof back, text, 512), 256);
  assert_memory_equal(back, all, 256);
}

static void test_hex_rejects(void **state)
{
  (void)state;
  uint8_t out[8];
  char txt[8];
  assert_int_equal(ks_hex_decode(out, sizeof out, "abc", 3), -EINVAL);
  assert_int_equal(ks_hex_decode(out, sizeof out, "0g", 2), -EINVAL);
  assert_int_equal(ks_hex_decode(out, sizeof out, "g0", 2), -EINVAL);
  assert_int_equal(ks_hex_decode(out, sizeof out, " 0", 2), -EINVAL);
  assert_int_equal(ks_hex_decode(out, sizeof out, "0x12", 4), -EINVAL);
  assert_int_equal(ks_hex_decode(out, sizeof out,
                                 "12\0"
                                 "3",
                                 4),
                   -EINVAL);
  assert_int_equal(ks_hex_decode(out, 1, "1234", 4), -ENOSPC);
  assert_int_equal(ks_hex_encode(txt, 4, "ab", 2), -ENOSPC); /* no NUL room */
  assert_int_equal(ks_hex_encode(txt, 5, "ab", 2), 4);
  assert_string_equal(txt, "6162");
}

static void test_b64_vectors(void **state)
{
  (void)state;
  for (size_t i = 0; i < NVEC; i++) {
    size_t n = strlen(rfc4648[i].plain);
    size_t len = strlen(rfc4648[i].b64);
    char out[16];
    assert_int_equal(KS_B64_LEN(n), len);
    assert_int_equal(ks_b64_encode(out, len + 1, rfc4648[i].plain, n),
                     (int)len);
    assert_string_equal(out, rfc4648[i].b64);
    assert_int_equal(ks_b64_encode(out, len, rfc4648[i].plain, n), -ENOSPC);
    check_decode(ks_b64_decode, rfc4648[i].b64, rfc4648[i].plain, n);
  }
}

static void test_b64url_vectors(void **state)
{
  (void)state;
  for (size_t i = 0; i < NVEC; i++) {
    size_t n = strlen(rfc4648[i].plain);
    char expect[16], out[16];
    strcpy(expect, rfc4648[i].b64);
    *strchrnul(expect, '=') = '\0';
    size_t len = strlen(expect);
    assert_int_equal(KS_B64URL_LEN(n), len);
    assert_int_equal(ks_b64url_encode(out, len + 1, rfc4648[i].plain, n),
                     (int)len);
    assert_string_equal(out, expect);
    assert_int_equal(ks_b64url_encode(out, len, rfc4648[i].plain, n), -ENOSPC);
    check_decode(ks_b64url_decode, expect, rfc4648[i].plain, n);
  }
  /* the two characters where the alphabets differ */
  static const uint8_t hi[] = {0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff, 0xfb, 0xff};
  char out[16];
  assert_int_equal(ks_b64_encode(out, sizeof out, hi, sizeof hi), 12);
  assert_string_equal(out, "++++////+/8=");
  assert_int_equal(ks_b64url_encode(out, sizeof out, hi, sizeof hi), 11);
  assert_string_equal(out, "----____-_8");
  check_decode(ks_b64_decode, "++++////+/8=", hi, sizeof hi);
  check_decode(ks_b64url_decode, "----____-_8", hi, sizeof hi);
}

static void test_b64_rejects(void **state)
{
  (void)state;
  static const char *bad_std[] = {
      "Zg=",      "Zm9",  "Zm9v-", "Zm9vY",    "Zm=v",   "Z===",
      "====",     "Zh==", "Zm9=",  " Zm9v",    "Zm9v\n", "Zm9v ",
      "Zg==Zg==", "Zm-v", "Zm_v",  "Zm9v====", "=Zm9",   "Zm9\x80",
  };
  static const char *bad_url[] = {"Z",    "Zm9vY", "Zg==", "Zm8=", "Zm+v",
                                  "Zm/v", "Zh",    "Zm9",  " Zm8", "Zm8\n"};
  uint8_t out[32];
  for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++)
    assert_int_equal(
        ks_b64_decode(out, sizeof out, bad_std[i], strlen(bad_std[i])),
        -EINVAL);
  for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++)
    assert_int_equal(
        ks_b64url_decode(out, sizeof out, bad_url[i], strlen(bad_url[i])),
        -EINVAL);
  /* unpadded "Zm8" ("fo") is valid base64url, though not valid std base64 */
  assert_int_equal(ks_b64_decode(out, sizeof out, "Zm8", 3), -EINVAL);
  assert_int_equal(ks_b64url_decode(out, sizeof out, "Zm8", 3), 2);
  /* buffer one byte short of the decoded length */
  assert_int_equal(ks_b64_decode(out, 5, "Zm9vYmFy", 8), -ENOSPC);
  assert_int_equal(ks_b64_decode(out, 4, "Zm9vYmE=", 8), -ENOSPC);
  assert_int_equal(ks_b64url_decode(out, 4, "Zm9vYmE", 7), -ENOSPC);
}

/* Lengths crossing the 512-character validation block and every tail. */
static void test_b64_roundtrip_long(void **state)
{
  (void)state;
  enum { MAX = 1500 };
  uint8_t *in = malloc(MAX);
  char *txt = malloc(KS_B64_LEN(MAX) + 1);
  assert_non_null(in);
  assert_non_null(txt);
  for (size_t i = 0; i < MAX; i++)
    in[i] = (uint8_t)(i * 37 + 11);
  for (size_t n = 0; n <= MAX; n += (n < 20 ? 1 : 97)) {
    int len = ks_b64_encode(txt, KS_B64_LEN(n) + 1, in, n);
    assert_int_equal(len, (int)KS_B64_LEN(n));
    txt[len] = '\0';
    check_decode(ks_b64_decode, txt, in, n);
    len = ks_b64url_encode(txt, KS_B64URL_LEN(n) + 1, in, n);
    assert_int_equal(len, (int)KS_B64URL_LEN(n));
    assert_null(strpbrk(txt, "+/="));
    check_decode(ks_b64url_decode, txt, in, n);
    assert_true(KS_B64_DECODED_MAX((size_t)len) >= n);
  }
  /* a bad character deep inside a long text is still found */
  int len = ks_b64_encode(txt, KS_B64_LEN(MAX) + 1, in, MAX);
  txt[1234] = '*';
  uint8_t *out = malloc(MAX);
  assert_non_null(out);
  assert_int_equal(ks_b64_decode(out, MAX, txt, (size_t)len), -EINVAL);
  free(out);
  free(txt);
  free(in);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hex_vectors),
      cmocka_unit_test(test_hex_rejects),
      cmocka_unit_test(test_b64_vectors),
      cmocka_unit_test(test_b64url_vectors),
      cmocka_unit_test(test_b64_rejects),
      cmocka_unit_test(test_b64_roundtrip_long),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
