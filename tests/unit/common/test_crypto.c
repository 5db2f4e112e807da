/*
 * test_crypto.c — the OpenSSL wrappers (ks/crypto.h) against published
 * vectors, plus the failure contract.
 *
 * Vectors: AES-256-GCM test cases 13, 14 and 16 of McGrew & Viega, "The
 * Galois/Counter Mode of Operation" (16 carries AAD and a partial block);
 * RFC 4231 HMAC-SHA256 cases 1, 2 and 6; RFC 5869 HKDF cases 1 and 3;
 * FIPS 180-2 SHA-256 "abc" and the 448-bit message; the RFC 1321 MD5 suite.
 * Negative paths: tampered tag, ciphertext, AAD or IV -> KS_EAUTH with the
 * plaintext zeroed; bad arguments -> -EINVAL; contexts used before init.
 */
#include "ks/crypto.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/codec.h"
#include "ks/err.h"

/* Decode hex vector text into out (at most cap bytes); returns the length. */
static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
  int n = ks_hex_decode(out, cap, hex, strlen(hex));
  assert_true(n >= 0);
  return (size_t)n;
}

static void assert_all_zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    assert_int_equal(p[i], 0);
}

/* McGrew-Viega test case 16 (AES-256, 60-byte plaintext, 20-byte AAD). */
typedef struct gcm_vec {
  uint8_t key[32], iv[12], aad[20], pt[60], ct[60], tag[16];
  size_t aad_len, pt_len;
} gcm_vec_t;

static void gcm_tc16(gcm_vec_t *v)
{
  unhex(v->key, 32,
        "feffe9928665731c6d6a8f9467308308"
        "feffe9928665731c6d6a8f9467308308");
  unhex(v->iv, 12, "cafebabefacedbaddecaf888");
  v->aad_len = unhex(v->aad, 20, "feedfacedeadbeeffeedfacedeadbeefabaddad2");
  v->pt_len = unhex(v->pt, 60,
                    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d"
                    "8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657"
                    "ba637b39");
  unhex(v->ct, 60,
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
  unhex(v->tag, 16, "76fc6ece0f4e1768cddf8853bb2d551b");
}

static void test_gcm_tc16(void **state)
{
  (void)state;
  gcm_vec_t v;
  uint8_t ct[60], pt[60], tag[16];
  gcm_tc16(&v);
  assert_int_equal(
      ks_gcm_seal(v.key, v.iv, v.aad, v.aad_len, v.pt, v.pt_len, ct, tag), 0);
  assert_memory_equal(ct, v.ct, 60);
  assert_memory_equal(tag, v.tag, 16);
  assert_int_equal(
      ks_gcm_open(v.key, v.iv, v.aad, v.aad_len, v.ct, v.pt_len, v.tag, pt), 0);
  assert_memory_equal(pt, v.pt, 60);
}

static void test_gcm_tc13_tc14(void **state)
{
  (void)state;
  uint8_t key[32] = {0}, iv[12] = {0}, zero16[16] = {0};
  uint8_t ct[16], tag[16], expect[16];
  /* 13: empty plaintext and AAD; the tag alone authenticates nothing */
  assert_int_equal(ks_gcm_seal(key, iv, NULL, 0, NULL, 0, NULL, tag), 0);
  unhex(expect, 16, "530f8afbc74536b9a963b4f1c4cb738b");
  assert_memory_equal(tag, expect, 16);
  assert_int_equal(ks_gcm_open(key, iv, NULL, 0, NULL, 0, tag, NULL), 0);
  /* 14: one zero block */
  assert_int_equal(ks_gcm_seal(key, iv, NULL, 0, zero16, 16, ct, tag), 0);
  unhex(expect, 16, "cea7403d4d606b6e074ec5d3baf39d18");
  assert_memory_equal(ct, expect, 16);
  unhex(expect, 16, "d0d1c8a799996bf0265b98b5d48ab919");
  assert_memory_equal(tag, expect, 16);
}

static void test_gcm_sealv_and_in_place(void **state)
{
  (void)state;
  gcm_vec_t v;
  uint8_t ct[60], tag[16], buf[60];
  gcm_tc16(&v);
  struct iovec iov[4] = {
      {.iov_base = v.pt, .iov_len = 17},
      {.iov_base = NULL, .iov_len = 0},
      {.iov_base = v.pt + 17, .iov_len = 1},
      {.iov_base = v.pt + 18, .iov_len = 42},
  };
  assert_int_equal(ks_gcm_sealv(v.key, v.iv, v.aad, v.aad_len, iov, 4, ct, tag),
                   0);
  assert_memory_equal(ct, v.ct, 60);
  assert_memory_equal(tag, v.tag, 16);
  /* in place both ways */
  memcpy(buf, v.pt, 60);
  assert_int_equal(
      ks_gcm_seal(v.key, v.iv, v.aad, v.aad_len, buf, 60, buf, tag), 0);
  assert_memory_equal(buf, v.ct, 60);
  assert_int_equal(
      ks_gcm_open(v.key, v.iv, v.aad, v.aad_len, buf, 60, tag, buf), 0);
  assert_memory_equal(buf, v.pt, 60);
  /* open from pieces (fragments), and a tampered piece fails with pt zeroed */
  uint8_t frag[60];
  memcpy(frag, v.ct, 60);
  struct iovec cv[3] = {{frag, 23}, {NULL, 0}, {frag + 23, 37}};
  assert_int_equal(
      ks_gcm_openv(v.key, v.iv, v.aad, v.aad_len, cv, 3, v.tag, buf), 0);
  assert_memory_equal(buf, v.pt, 60);
  frag[40] ^= 1;
  assert_int_equal(
      ks_gcm_openv(v.key, v.iv, v.aad, v.aad_len, cv, 3, v.tag, buf), KS_EAUTH);
  for (size_t i = 0; i < 60; i++)
    assert_int_equal(buf[i], 0);
}

/* Open with one thing changed must fail and leave pt all zero. */
static void expect_auth_fail(const gcm_vec_t *v, const uint8_t *key,
                             const uint8_t *iv, const uint8_t *aad,
                             const uint8_t *ct, const uint8_t *tag)
{
  uint8_t pt[60];
  memset(pt, 0xa5, sizeof pt);
  assert_int_equal(
      ks_gcm_open(key, iv, aad, v->aad_len, ct, v->pt_len, tag, pt), KS_EAUTH);
  assert_all_zero(pt, sizeof pt);
}

static void test_gcm_tamper(void **state)
{
  (void)state;
  gcm_vec_t v, w;
  gcm_tc16(&v);
  w = v;
  w.tag[15] ^= 0x01;
  expect_auth_fail(&v, v.key, v.iv, v.aad, v.ct, w.tag);
  w = v;
  w.ct[30] ^= 0x80;
  expect_auth_fail(&v, v.key, v.iv, v.aad, w.ct, v.tag);
  w = v;
  w.aad[0] ^= 0x01;
  expect_auth_fail(&v, v.key, v.iv, w.aad, v.ct, v.tag);
  w = v;
  w.iv[11] ^= 0x01;
  expect_auth_fail(&v, v.key, w.iv, v.aad, v.ct, v.tag);
  w = v;
  w.key[0] ^= 0x01;
  expect_auth_fail(&v, w.key, v.iv, v.aad, v.ct, v.tag);
  /* AAD dropped entirely */
  uint8_t pt[60];
  assert_int_equal(ks_gcm_open(v.key, v.iv, NULL, 0, v.ct, 60, v.tag, pt),
                   KS_EAUTH);
  assert_all_zero(pt, sizeof pt);
}

static void test_hmac_rfc4231(void **state)
{
  (void)state;
  static const struct {
    const char *key_hex, *data, *mac_hex;
  } cases[] = {
      {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"4a656665", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {NULL /* 131 x 0xaa */,
       "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
  };
  for (size_t i = 0; i < 3; i++) {
    uint8_t key[131], mac[32], expect[32];
    size_t klen = 131;
    if (cases[i].key_hex)
      klen = unhex(key, sizeof key, cases[i].key_hex);
    else
      memset(key, 0xaa, sizeof key);
    unhex(expect, 32, cases[i].mac_hex);
    const char *d = cases[i].data;
    size_t n = strlen(d);
    assert_int_equal(ks_hmac_sha256(key, klen, d, n, mac), 0);
    assert_memory_equal(mac, expect, 32);
    /* incremental, one byte at a time after an empty update */
    ks_hmac_ctx_t c = KS_HMAC_CTX_INIT;
    assert_int_equal(ks_hmac_init(&c, key, klen), 0);
    ks_secure_zero(key, sizeof key); /* OpenSSL holds its own copy */
    assert_int_equal(ks_hmac_update(&c, NULL, 0), 0);
    for (size_t k = 0; k < n; k++)
      assert_int_equal(ks_hmac_update(&c, d + k, 1), 0);
    assert_int_equal(ks_hmac_final(&c, mac), 0);
    ks_hmac_free(&c);
    ks_hmac_free(&c);
    assert_memory_equal(mac, expect, 32);
  }
}

static void test_hmac_empty_key_and_misuse(void **state)
{
  (void)state;
  uint8_t mac[32], expect[32];
  unhex(expect, 32,
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  assert_int_equal(ks_hmac_sha256(NULL, 0, NULL, 0, mac), 0);
  assert_memory_equal(mac, expect, 32);
  ks_hmac_ctx_t c = KS_HMAC_CTX_INIT;
  assert_int_equal(ks_hmac_update(&c, "x", 1), -EINVAL);
  assert_int_equal(ks_hmac_final(&c, mac), -EINVAL);
  ks_hmac_free(&c); /* no-op on a zeroed context */
}

static void check_hash(ks_hash_alg_t alg, const char *msg, const char *hex)
{
  uint8_t out[KS_HASH_MAX_LEN], expect[KS_HASH_MAX_LEN];
  size_t len = unhex(expect, sizeof expect, hex), n = strlen(msg);
  assert_int_equal(ks_hash_len(alg), len);
  assert_int_equal(ks_hash(alg, msg, n, out), 0);
  assert_memory_equal(out, expect, len);
  ks_hash_ctx_t c = KS_HASH_CTX_INIT;
  assert_int_equal(ks_hash_init(&c, alg), 0);
  size_t half = n / 2;
  assert_int_equal(ks_hash_update(&c, msg, half), 0);
  assert_int_equal(ks_hash_update(&c, msg + half, n - half), 0);
  memset(out, 0, sizeof out);
  assert_int_equal(ks_hash_final(&c, out), 0);
  ks_hash_free(&c);
  assert_memory_equal(out, expect, len);
}

static void test_sha256(void **state)
{
  (void)state;
  check_hash(
      KS_HASH_SHA256, "abc",
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  check_hash(
      KS_HASH_SHA256, "",
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  check_hash(
      KS_HASH_SHA256,
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  uint8_t out[32], expect[32];
  unhex(expect, 32,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_int_equal(ks_sha256("abc", 3, out), 0);
  assert_memory_equal(out, expect, 32);
}

/* FIPS 180 examples (SHA-1 serves only S3's x-amz-checksum-sha1). */
static void test_sha1(void **state)
{
  (void)state;
  check_hash(KS_HASH_SHA1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d");
  check_hash(KS_HASH_SHA1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  assert_int_equal(ks_hash_len(KS_HASH_SHA1), 20);
}

static void test_md5_rfc1321(void **state)
{
  (void)state;
  static const char *v[][2] = {
      {"", "d41d8cd98f00b204e9800998ecf8427e"},
      {"a", "0cc175b9c0f1b6a831c399e269772661"},
      {"abc", "900150983cd24fb0d6963f7d28e17f72"},
      {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
      {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
      {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
       "d174ab98d277d9f5a5611c2c9f419d9f"},
      {"1234567890123456789012345678901234567890"
       "1234567890123456789012345678901234567890",
       "57edf4a22be3c955ac49da2e2107b67a"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    check_hash(KS_HASH_MD5, v[i][0], v[i][1]);
  uint8_t out[16], expect[16];
  unhex(expect, 16, "d41d8cd98f00b204e9800998ecf8427e");
  assert_int_equal(ks_md5(NULL, 0, out), 0);
  assert_memory_equal(out, expect, 16);
}

static void test_hash_misuse(void **state)
{
  (void)state;
  uint8_t out[32];
  ks_hash_ctx_t c = KS_HASH_CTX_INIT;
  assert_int_equal(ks_hash_len((ks_hash_alg_t)99), 0);
  assert_int_equal(ks_hash((ks_hash_alg_t)99, "x", 1, out), -EINVAL);
  assert_int_equal(ks_hash_init(&c, (ks_hash_alg_t)0), -EINVAL);
  assert_null(c._md);
  assert_int_equal(ks_hash_update(&c, "x", 1), -EINVAL);
  assert_int_equal(ks_hash_final(&c, out), -EINVAL);
  ks_hash_free(&c);
  /* init, then free without final: nothing leaks (ASan checks) */
  assert_int_equal(ks_hash_init(&c, KS_HASH_MD5), 0);
  assert_int_equal(ks_hash_update(&c, "abc", 3), 0);
  ks_hash_free(&c);
  assert_null(c._md);
}

static void test_hkdf_rfc5869(void **state)
{
  (void)state;
  uint8_t ikm[22], salt[13], info[10], okm[42], expect[42];
  memset(ikm, 0x0b, sizeof ikm);
  unhex(salt, sizeof salt, "000102030405060708090a0b0c");
  unhex(info, sizeof info, "f0f1f2f3f4f5f6f7f8f9");
  unhex(expect, sizeof expect,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865");
  assert_int_equal(ks_hkdf_sha256(okm, 42, salt, 13, ikm, 22, info, 10), 0);
  assert_memory_equal(okm, expect, 42);
  /* case 3: no salt, no info */
  unhex(expect, sizeof expect,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        "9d201395faa4b61a96c8");
  assert_int_equal(ks_hkdf_sha256(okm, 42, NULL, 0, ikm, 22, NULL, 0), 0);
  assert_memory_equal(okm, expect, 42);
  /* a shorter output is a prefix of the longer one */
  uint8_t short_okm[16];
  assert_int_equal(ks_hkdf_sha256(short_okm, 16, NULL, 0, ikm, 22, NULL, 0), 0);
  assert_memory_equal(short_okm, expect, 16);
}

static void test_hkdf_rejects(void **state)
{
  (void)state;
  uint8_t ikm[22] = {1}, out[32];
  assert_int_equal(ks_hkdf_sha256(out, 0, NULL, 0, ikm, 22, NULL, 0), -EINVAL);
  assert_int_equal(ks_hkdf_sha256(out, 32, NULL, 0, ikm, 0, NULL, 0), -EINVAL);
  uint8_t *big = malloc(KS_HKDF_SHA256_MAX_LEN + 1);
  assert_non_null(big);
  assert_int_equal(ks_hkdf_sha256(big, KS_HKDF_SHA256_MAX_LEN + 1, NULL, 0, ikm,
                                  22, NULL, 0),
                   -EINVAL);
  assert_int_equal(
      ks_hkdf_sha256(big, KS_HKDF_SHA256_MAX_LEN, NULL, 0, ikm, 22, NULL, 0),
      0);
  free(big);
}

static void test_zero_and_ct_equal(void **state)
{
  (void)state;
  uint8_t a[33], b[33];
  memset(a, 0x5c, sizeof a);
  memcpy(b, a, sizeof b);
  assert_true(ks_ct_equal(a, b, sizeof a));
  assert_true(ks_ct_equal(a, b, 0));
  b[32] ^= 1;
  assert_false(ks_ct_equal(a, b, sizeof a));
  assert_true(ks_ct_equal(a, b, 32));
  ks_secure_zero(a, sizeof a);
  assert_all_zero(a, sizeof a);
  ks_secure_zero(NULL, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gcm_tc16),
      cmocka_unit_test(test_gcm_tc13_tc14),
      cmocka_unit_test(test_gcm_sealv_and_in_place),
      cmocka_unit_test(test_gcm_tamper),
      cmocka_unit_test(test_hmac_rfc4231),
      cmocka_unit_test(test_hmac_empty_key_and_misuse),
      cmocka_unit_test(test_sha256),
      cmocka_unit_test(test_md5_rfc1321),
      cmocka_unit_test(test_sha1),
      cmocka_unit_test(test_hash_misuse),
      cmocka_unit_test(test_hkdf_rfc5869),
      cmocka_unit_test(test_hkdf_rejects),
      cmocka_unit_test(test_zero_and_ct_equal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
