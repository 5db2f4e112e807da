/*
 * test_s3_sigv4.c — SigV4 for S3 (ks/s3_sigv4.h) against AWS's published
 * vectors: the four "Signature Calculations for the Authorization Header"
 * examples of the S3 API reference (GET object with Range, PUT object, GET
 * bucket lifecycle, GET bucket list objects), the query-string (presigned)
 * GET example, the chunked upload example (seed and every chunk signature),
 * and cases of the generic aws-sig-v4-test-suite whose canonical request
 * S3 shares.  Then every rejection: wrong secret, unknown key, tampered
 * header, path, query and body chunk, expired and over-long presigned URLs,
 * clock skew, anonymous and malformed requests, wrong region, and broken
 * aws-chunked framing.
 */
#include "ks/s3_sigv4.h"

#include "ks/time.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define DATE "20130524T000000Z"
#define EMPTY KS_S3_EMPTY_SHA256
#define CRED AK "/20130524/us-east-1/s3/aws4_request"

/* ---- fixtures ----------------------------------------------------------- */

typedef struct t_keys {
  const char *secret; /* for AK; NULL: unknown */
  int fail;           /* lookup's return for AK when non-zero */
} t_keys_t;

static int t_lookup(void *ctx, const char *akid, size_t n, char *secret,
                    size_t size, size_t *len)
{
  const t_keys_t *k = ctx;
  if (n != strlen(AK) || memcmp(akid, AK, n) != 0 || k->secret == NULL)
    return -ENOENT;
  if (k->fail)
    return k->fail;
  *len = strlen(k->secret);
  assert_true(*len <= size);
  memcpy(secret, k->secret, *len);
  return 0;
}

#define T_MAX_HDRS 12
typedef struct t_req {
  ks_s3_header_t h[T_MAX_HDRS];
  ks_s3_http_req_t r;
} t_req_t;

/* lines: "Name: value" (the value keeps everything after ": "). */
static void t_build(t_req_t *t, const char *method, const char *path,
                    const char *query, const char *const *lines)
{
  memset(t, 0, sizeof(*t));
  size_t n = 0;
  for (; lines[n]; n++) {
    assert_true(n < T_MAX_HDRS);
    const char *colon = strchr(lines[n], ':');
    assert_non_null(colon);
    t->h[n].name = lines[n];
    t->h[n].name_len = (size_t)(colon - lines[n]);
    t->h[n].value = colon[1] == ' ' ? colon + 2 : colon + 1;
    t->h[n].value_len = strlen(t->h[n].value);
  }
  t->r = (ks_s3_http_req_t){method,         path,         query,         t->h,
                            strlen(method), strlen(path), strlen(query), n};
}

static int64_t t_time(const char *amz)
{
  int64_t s;
  assert_int_equal(ks_time_parse_amz(amz, strlen(amz), &s), 0);
  return s;
}

static ks_s3_code_t t_verify(const t_req_t *t, const t_keys_t *k,
                             const char *region, int64_t now, ks_s3_auth_t *out)
{
  ks_s3_auth_cfg_t cfg = {t_lookup, (void *)k, region, NULL, NULL};
  return ks_s3_auth_verify(&cfg, &t->r, now, out);
}

static ks_s3_code_t t_verify_lines(const char *method, const char *path,
                                   const char *query, const char *const *lines,
                                   const char *sk, int64_t now)
{
  t_req_t t;
  ks_s3_auth_t a;
  t_keys_t k = {sk, 0};
  t_build(&t, method, path, query, lines);
  ks_s3_code_t c = t_verify(&t, &k, "us-east-1", now, &a);
  ks_s3_auth_clear(&a);
  return c;
}

/* ---- AWS S3 examples: Authorization header ----------------------------- */

static const char *const get_object[] = {
    "Host: " HOST,
    "Range: bytes=0-9",
    "x-amz-content-sha256: " EMPTY,
    "x-amz-date: " DATE,
    "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
    ",SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature="
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    NULL};

static const char *const put_object[] = {
    "Host: " HOST,
    "Date: Fri, 24 May 2013 00:00:00 GMT",
    "x-amz-date: " DATE,
    "x-amz-storage-class: REDUCED_REDUNDANCY",
    "x-amz-content-sha256: "
    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
    "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
    ",SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-"
    "class,Signature="
    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    NULL};

static const char *const get_lifecycle[] = {
    "Host: " HOST, "x-amz-date: " DATE, "x-amz-content-sha256: " EMPTY,
    "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
    ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="
    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    NULL};

static const char *const list_objects[] = {
    "Host: " HOST, "x-amz-date: " DATE, "x-amz-content-sha256: " EMPTY,
    "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
    ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="
    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    NULL};

static void test_aws_header_examples(void **state)
{
  (void)state;
  int64_t now = t_time(DATE);
  assert_int_equal(t_verify_lines("GET", "/test.txt", "", get_object, SK, now),
                   KS_S3_OK);
  /* The raw path "test$file.text" is signed as "/test%24file.text". */
  assert_int_equal(
      t_verify_lines("PUT", "/test$file.text", "", put_object, SK, now),
      KS_S3_OK);
  assert_int_equal(
      t_verify_lines("PUT", "/test%24file.text", "", put_object, SK, now),
      KS_S3_OK);
  assert_int_equal(
      t_verify_lines("GET", "/", "lifecycle", get_lifecycle, SK, now),
      KS_S3_OK);
  /* Sent in the "wrong" order: the canonical query sorts it. */
  assert_int_equal(
      t_verify_lines("GET", "/", "prefix=J&max-keys=2", list_objects, SK, now),
      KS_S3_OK);
  assert_int_equal(t_verify_lines("GET", "/", "max-keys=2&prefix=J",
                                  list_objects, SK, now + 899),
                   KS_S3_OK);
}

static void test_aws_header_results(void **state)
{
  (void)state;
  t_req_t t;
  ks_s3_auth_t a;
  t_keys_t k = {SK, 0};
  t_build(&t, "PUT", "/test$file.text", "", put_object);
  assert_int_equal(t_verify(&t, &k, NULL, t_time(DATE), &a), KS_S3_OK);
  assert_int_equal(a.payload, KS_S3_PAYLOAD_SIGNED);
  assert_false(a.presigned);
  assert_string_equal(a.access_key, AK);
  assert_string_equal(a.scope, "20130524/us-east-1/s3/aws4_request");
  uint8_t want[KS_SHA256_LEN];
  assert_int_equal(ks_sha256("Welcome to Amazon S3.", 21, want), 0);
  assert_memory_equal(a.payload_sha256, want, sizeof want);
  ks_s3_auth_clear(&a);
  uint8_t zero[KS_HMAC_SHA256_LEN] = {0};
  assert_memory_equal(a._signing_key, zero, sizeof zero);
}

static void test_tampering_rejected(void **state)
{
  (void)state;
  int64_t now = t_time(DATE);
  const ks_s3_code_t sdnm = KS_S3_SIGNATURE_DOES_NOT_MATCH;
  assert_int_equal(t_verify_lines("GET", "/test.txt", "", get_object,
                                  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ",
                                  now),
                   sdnm);
  assert_int_equal(
      t_verify_lines("GET", "/test.txt", "", get_object, NULL, now),
      KS_S3_INVALID_ACCESS_KEY_ID);
  assert_int_equal(t_verify_lines("GET", "/test.txu", "", get_object, SK, now),
                   sdnm);
  assert_int_equal(t_verify_lines("HEAD", "/test.txt", "", get_object, SK, now),
                   sdnm);
  assert_int_equal(
      t_verify_lines("GET", "/test.txt", "acl", get_object, SK, now), sdnm);
  assert_int_equal(
      t_verify_lines("GET", "/", "max-keys=3&prefix=J", list_objects, SK, now),
      sdnm);
  /* a signed header changed */
  t_req_t t;
  ks_s3_auth_t a;
  t_keys_t k = {SK, 0};
  t_build(&t, "GET", "/test.txt", "", get_object);
  t.h[1].value = "bytes=0-10";
  t.h[1].value_len = strlen(t.h[1].value);
  assert_int_equal(t_verify(&t, &k, NULL, now, &a), sdnm);
  assert_string_not_equal(a.message, "OK");
  ks_s3_auth_clear(&a);
  /* a signature digit changed (upper case is the same signature) */
  char auth[512];
  snprintf(auth, sizeof auth, "%s", get_object[4]);
  auth[strlen(auth) - 1] = '0';
  const char *lines[] = {get_object[0], get_object[1], get_object[2],
                         get_object[3], auth,          NULL};
  assert_int_equal(t_verify_lines("GET", "/test.txt", "", lines, SK, now),
                   sdnm);
  auth[strlen(auth) - 1] = '1';
  for (char *p = strstr(auth, "Signature=") + 10; *p; p++)
    *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
  assert_int_equal(t_verify_lines("GET", "/test.txt", "", lines, SK, now),
                   KS_S3_OK);
}

static void test_clock_and_scope(void **state)
{
  (void)state;
  int64_t now = t_time(DATE);
  assert_int_equal(
      t_verify_lines("GET", "/test.txt", "", get_object, SK, now + 901),
      KS_S3_REQUEST_TIME_TOO_SKEWED);
  assert_int_equal(
      t_verify_lines("GET", "/test.txt", "", get_object, SK, now - 901),
      KS_S3_REQUEST_TIME_TOO_SKEWED);
  assert_int_equal(
      t_verify_lines("GET", "/test.txt", "", get_object, SK, now - 900),
      KS_S3_OK);
  t_req_t t;
  ks_s3_auth_t a;
  t_keys_t k = {SK, 0};
  t_build(&t, "GET", "/test.txt", "", get_object);
  assert_int_equal(t_verify(&t, &k, "eu-west-1", now, &a),
                   KS_S3_AUTH_HEADER_MALFORMED);
  k.fail = -EIO;
  assert_int_equal(t_verify(&t, &k, NULL, now, &a), KS_S3_INTERNAL_ERROR);
  ks_s3_auth_clear(&a);
}

static void test_malformed_requests(void **state)
{
  (void)state;
  int64_t now = t_time(DATE);
  const char *anon[] = {"Host: " HOST, "x-amz-date: " DATE, NULL};
  assert_int_equal(t_verify_lines("GET", "/test.txt", "", anon, SK, now),
                   KS_S3_ACCESS_DENIED);
  static const struct {
    const char *auth;
    ks_s3_code_t code;
  } bad[] = {
      {"AWS " AK ":frJIUN8DYpKDtOLCwo//yllqDzg=", KS_S3_INVALID_REQUEST},
      {"AWS4-HMAC-SHA256", KS_S3_AUTH_HEADER_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" CRED ",SignedHeaders=host",
       KS_S3_AUTH_HEADER_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3,Signed"
       "Headers=host,Signature=" EMPTY,
       KS_S3_AUTH_HEADER_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" CRED ",SignedHeaders=host,Signature=xyz",
       KS_S3_AUTH_HEADER_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" CRED
       ",SignedHeaders=range,Signature=" EMPTY,
       KS_S3_AUTH_HEADER_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130525/us-east-1/s3/aws4_request,"
       "SignedHeaders=host,Signature=" EMPTY,
       KS_S3_AUTH_HEADER_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/sqs/aws4_request,"
       "SignedHeaders=host,Signature=" EMPTY,
       KS_S3_AUTH_HEADER_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" CRED
       ",SignedHeaders=host,Signature=" EMPTY ",Extra=1",
       KS_S3_AUTH_HEADER_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" CRED
       ", SignedHeaders=host, Signature=" EMPTY,
       KS_S3_SIGNATURE_DOES_NOT_MATCH},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char line[512];
    snprintf(line, sizeof line, "Authorization: %s", bad[i].auth);
    const char *lines[] = {"Host: " HOST, "x-amz-date: " DATE,
                           "x-amz-content-sha256: " EMPTY, line, NULL};
    assert_int_equal(t_verify_lines("GET", "/x", "", lines, SK, now),
                     bad[i].code);
  }
  /* no x-amz-content-sha256, a bad one, a trailer mode, no date */
  const char *auth = get_object[4];
  const char *no_sha[] = {"Host: " HOST, "x-amz-date: " DATE, auth, NULL};
  assert_int_equal(t_verify_lines("GET", "/x", "", no_sha, SK, now),
                   KS_S3_INVALID_REQUEST);
  const char *bad_sha[] = {"Host: " HOST, "x-amz-date: " DATE,
                           "x-amz-content-sha256: abc", auth, NULL};
  assert_int_equal(t_verify_lines("GET", "/x", "", bad_sha, SK, now),
                   KS_S3_INVALID_ARGUMENT);
  const char *trailer[] = {
      "Host: " HOST, "x-amz-date: " DATE,
      "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER", auth, NULL};
  assert_int_equal(t_verify_lines("GET", "/x", "", trailer, SK, now),
                   KS_S3_NOT_IMPLEMENTED);
  const char *no_date[] = {"Host: " HOST, "x-amz-content-sha256: " EMPTY, auth,
                           NULL};
  assert_int_equal(t_verify_lines("GET", "/x", "", no_date, SK, now),
                   KS_S3_ACCESS_DENIED);
  /* header and query auth at once */
  assert_int_equal(t_verify_lines("GET", "/test.txt",
                                  "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                                  get_object, SK, now),
                   KS_S3_INVALID_ARGUMENT);
}

/* ---- presigned URLs ------------------------------------------------------ */

#define PRESIGN_Q(expires, sig)                                  \
  "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AK        \
  "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=" DATE \
  "&X-Amz-Expires=" expires "&X-Amz-SignedHeaders=host&X-Amz-Signature=" sig
#define PRESIGN_SIG \
  "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

static void test_aws_presigned_example(void **state)
{
  (void)state;
  const char *host[] = {"Host: " HOST, NULL};
  int64_t now = t_time(DATE);
  t_req_t t;
  ks_s3_auth_t a;
  t_keys_t k = {SK, 0};
  t_build(&t, "GET", "/test.txt", PRESIGN_Q("86400", PRESIGN_SIG), host);
  assert_int_equal(t_verify(&t, &k, "us-east-1", now + 3600, &a), KS_S3_OK);
  assert_true(a.presigned);
  assert_int_equal(a.payload, KS_S3_PAYLOAD_UNSIGNED);
  ks_s3_auth_clear(&a);
  /* the last second of validity, then expiry */
  assert_int_equal(t_verify(&t, &k, NULL, now + 86400, &a), KS_S3_OK);
  assert_int_equal(t_verify(&t, &k, NULL, now + 86401, &a),
                   KS_S3_ACCESS_DENIED);
  assert_string_equal(a.message, "Request has expired");
  /* not valid yet (beyond the skew allowance) */
  assert_int_equal(t_verify(&t, &k, NULL, now - 901, &a), KS_S3_ACCESS_DENIED);
  k.secret = "wrong";
  assert_int_equal(t_verify(&t, &k, NULL, now, &a),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
  k.secret = SK;
  /* tampered: path, added parameter, other expiry */
  t_build(&t, "GET", "/test.txT", PRESIGN_Q("86400", PRESIGN_SIG), host);
  assert_int_equal(t_verify(&t, &k, NULL, now, &a),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
  t_build(&t, "GET", "/test.txt", PRESIGN_Q("86400", PRESIGN_SIG) "&acl", host);
  assert_int_equal(t_verify(&t, &k, NULL, now, &a),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
  t_build(&t, "GET", "/test.txt", PRESIGN_Q("86401", PRESIGN_SIG), host);
  assert_int_equal(t_verify(&t, &k, NULL, now, &a),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
  ks_s3_auth_clear(&a);
}

static void test_presigned_params(void **state)
{
  (void)state;
  const char *host[] = {"Host: " HOST, NULL};
  int64_t now = t_time(DATE);
  static const char *const bad[] = {
      PRESIGN_Q("604801", PRESIGN_SIG),
      PRESIGN_Q("-1", PRESIGN_SIG),
      PRESIGN_Q("1e3", PRESIGN_SIG),
      PRESIGN_Q("", PRESIGN_SIG),
      PRESIGN_Q("86400", "abc"),
      "X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=x",
      "X-Amz-Signature=" PRESIGN_SIG,
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AK
      "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=2013-05-24"
      "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" PRESIGN_SIG,
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AK
      "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=" DATE
      "&X-Amz-Expires=60&X-Amz-SignedHeaders=range&X-Amz-"
      "Signature=" PRESIGN_SIG,
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    t_req_t t;
    ks_s3_auth_t a;
    t_keys_t k = {SK, 0};
    t_build(&t, "GET", "/test.txt", bad[i], host);
    assert_int_equal(t_verify(&t, &k, NULL, now, &a), KS_S3_AUTH_QUERY_ERROR);
    ks_s3_auth_clear(&a);
  }
  /* 604800 is allowed (and then only the signature is wrong) */
  assert_int_equal(t_verify_lines("GET", "/test.txt",
                                  PRESIGN_Q("604800", PRESIGN_SIG), host, SK,
                                  now),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
}

/* ---- generic test suite (service "service", AKIDEXAMPLE) ----------------- */

#define SUITE_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static const struct {
  const char *name, *method, *path, *query;
  const char *headers[6];
  const char *signed_headers, *creq, *sig;
} suite[] = {
    {"get-vanilla",
     "GET",
     "/",
     "",
     {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"},
     "host;x-amz-date",
     "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY,
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-query-order-key-case",
     "GET",
     "/",
     "Param2=value2&Param1=value1",
     {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"},
     "host;x-amz-date",
     "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY,
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-key",
     "GET",
     "/",
     "Param1=value2&Param1=Value1",
     {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"},
     "host;x-amz-date",
     "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY,
     "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {"get-vanilla-query-order-value",
     "GET",
     "/",
     "Param1=value2&Param1=value1",
     {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"},
     "host;x-amz-date",
     "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY,
     "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {"get-vanilla-query-unreserved",
     "GET",
     "/",
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~"
     "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"},
     "host;x-amz-date",
     "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy"
     "z=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
     "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY,
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {"get-vanilla-utf8-query",
     "GET",
     "/",
     "\xe1\x88\xb4=bar",
     {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"},
     "host;x-amz-date",
     "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY,
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-unreserved",
     "GET",
     "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     "",
     {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"},
     "host;x-amz-date",
     "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY,
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"get-header-key-duplicate",
     "GET",
     "/",
     "",
     {"Host:example.amazonaws.com", "My-Header1:value2", "My-Header1:value2",
      "My-Header1:value1", "X-Amz-Date:20150830T123600Z"},
     "host;my-header1;x-amz-date",
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY,
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-header-value-trim",
     "GET",
     "/",
     "",
     {"Host:example.amazonaws.com", "My-Header1: value1",
      "My-Header2: \"a   b   c\"", "X-Amz-Date:20150830T123600Z"},
     "host;my-header1;my-header2;x-amz-date",
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\n"
     "my-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n"
     "host;my-header1;my-header2;x-amz-date\n" EMPTY,
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"post-header-value-case",
     "POST",
     "/",
     "",
     {"Host:example.amazonaws.com", "My-Header1:VALUE1",
      "X-Amz-Date:20150830T123600Z"},
     "host;my-header1;x-amz-date",
     "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY,
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {"post-vanilla-query",
     "POST",
     "/",
     "Param1=value1",
     {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"},
     "host;x-amz-date",
     "POST\n/\nParam1=value1\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY,
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
};

static void test_aws_test_suite(void **state)
{
  (void)state;
  uint8_t key[KS_HMAC_SHA256_LEN];
  assert_int_equal(ks_s3_sigv4_signing_key(SUITE_SK, strlen(SUITE_SK),
                                           "20150830", "us-east-1", "service",
                                           key),
                   0);
  for (size_t i = 0; i < sizeof suite / sizeof suite[0]; i++) {
    t_req_t t;
    ks_buf_t b = KS_BUF_INIT;
    char sig[KS_S3_SIG_HEX_LEN + 1];
    print_message("%s\n", suite[i].name);
    t_build(&t, suite[i].method, suite[i].path, suite[i].query,
            suite[i].headers);
    assert_int_equal(
        ks_s3_sigv4_canonical(&b, &t.r, false, suite[i].signed_headers,
                              strlen(suite[i].signed_headers), EMPTY),
        0);
    assert_int_equal(ks_buf_append(&b, "", 1), 0);
    assert_string_equal((const char *)b.data, suite[i].creq);
    assert_int_equal(ks_s3_sigv4_sign(key, "20150830T123600Z",
                                      "20150830/us-east-1/service/aws4_request",
                                      b.data, b.len - 1, sig),
                     0);
    assert_string_equal(sig, suite[i].sig);
    ks_buf_free(&b);
  }
}

/* The verifier with a non-S3 service name, through the full path. */
static void test_suite_through_verifier(void **state)
{
  (void)state;
  const char *lines[] = {
      "Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z",
      "x-amz-content-sha256:" EMPTY,
      "Authorization: AWS4-HMAC-SHA256 Credential=" AK
      "/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date,"
      " Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763f"
      "bf31",
      NULL};
  t_req_t t;
  ks_s3_auth_t a;
  t_keys_t k = {SUITE_SK, 0};
  t_build(&t, "GET", "/", "", lines);
  ks_s3_auth_cfg_t cfg = {t_lookup, &k, "us-east-1", "service", NULL};
  assert_int_equal(
      ks_s3_auth_verify(&cfg, &t.r, t_time("20150830T123600Z"), &a), KS_S3_OK);
  ks_s3_auth_clear(&a);
}

/* ---- self-signed: UNSIGNED-PAYLOAD, key cache ------------------------------
 */

static void t_sign_auth(const t_req_t *t, const char *secret, char *auth,
                        size_t size)
{
  uint8_t key[KS_HMAC_SHA256_LEN];
  ks_buf_t b = KS_BUF_INIT;
  char sig[KS_S3_SIG_HEX_LEN + 1];
  const char *sh = "host;x-amz-content-sha256;x-amz-date";
  assert_int_equal(ks_s3_sigv4_signing_key(secret, strlen(secret), "20130524",
                                           "us-east-1", "s3", key),
                   0);
  assert_int_equal(ks_s3_sigv4_canonical(&b, &t->r, false, sh, strlen(sh),
                                         KS_S3_UNSIGNED_PAYLOAD),
                   0);
  assert_int_equal(ks_s3_sigv4_sign(key, DATE,
                                    "20130524/us-east-1/s3/aws4_request",
                                    b.data, b.len, sig),
                   0);
  snprintf(auth, size,
           "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
           ",SignedHeaders=%s,Signature=%s",
           sh, sig);
  ks_buf_free(&b);
}

static void test_unsigned_payload_and_cache(void **state)
{
  (void)state;
  char auth[256] = "Authorization: none";
  const char *lines[] = {"Host: " HOST, "x-amz-date: " DATE,
                         "x-amz-content-sha256: " KS_S3_UNSIGNED_PAYLOAD, auth,
                         NULL};
  t_req_t t;
  t_build(&t, "PUT", "/photos/a%2Fb%20c%25d.jpg", "", lines);
  t_sign_auth(&t, SK, auth, sizeof auth);
  t_build(&t, "PUT", "/photos/a%2Fb%20c%25d.jpg", "", lines);
  ks_s3_key_cache_t cache = {0};
  t_keys_t k = {SK, 0};
  ks_s3_auth_cfg_t cfg = {t_lookup, &k, NULL, NULL, &cache};
  ks_s3_auth_t a;
  int64_t now = t_time(DATE);
  for (int i = 0; i < 3; i++) { /* miss, then hits */
    assert_int_equal(ks_s3_auth_verify(&cfg, &t.r, now, &a), KS_S3_OK);
    assert_int_equal(a.payload, KS_S3_PAYLOAD_UNSIGNED);
    ks_s3_auth_clear(&a);
  }
  /* "a%2Fb" and "a/b" are different keys and signatures */
  t_build(&t, "PUT", "/photos/a/b%20c%25d.jpg", "", lines);
  assert_int_equal(ks_s3_auth_verify(&cfg, &t.r, now, &a),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
  /* a rotated secret never uses the cached key */
  t_build(&t, "PUT", "/photos/a%2Fb%20c%25d.jpg", "", lines);
  k.secret = "another-secret";
  assert_int_equal(ks_s3_auth_verify(&cfg, &t.r, now, &a),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
  ks_s3_auth_clear(&a);
  ks_s3_key_cache_clear(&cache);
}

/* ---- aws-chunked streaming ------------------------------------------------
 */

#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SIG1 "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define SIG2 "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define SIG3 "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"

static const char *const stream_hdrs[] = {
    "Host: s3.amazonaws.com",
    "x-amz-date: " DATE,
    "x-amz-storage-class: REDUCED_REDUNDANCY",
    "x-amz-content-sha256: " KS_S3_STREAMING_PAYLOAD,
    "Content-Encoding: aws-chunked",
    "x-amz-decoded-content-length: 66560",
    "Content-Length: 66824",
    "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
    ",SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;"
    "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
    "Signature=" SEED,
    NULL};

typedef struct t_sink {
  uint8_t *data;
  size_t len;
  int fail_at; /* call number that fails, 0: never */
  int calls;
} t_sink_t;

static int t_sink_cb(void *ctx, const void *p, size_t n)
{
  t_sink_t *s = ctx;
  if (++s->calls == s->fail_at)
    return -EIO;
  memcpy(s->data + s->len, p, n);
  s->len += n;
  return 0;
}

/* The example body: 65536 + 1024 + 0 bytes of 'a'. */
static size_t t_stream_body(char *out, const char *sig2)
{
  size_t n = 0;
  n += (size_t)sprintf(out + n, "10000;chunk-signature=" SIG1 "\r\n");
  memset(out + n, 'a', 65536);
  n += 65536;
  n += (size_t)sprintf(out + n, "\r\n400;chunk-signature=%s\r\n", sig2);
  memset(out + n, 'a', 1024);
  n += 1024;
  n += (size_t)sprintf(out + n, "\r\n0;chunk-signature=" SIG3 "\r\n\r\n");
  return n;
}

static void t_stream_auth(ks_s3_auth_t *a)
{
  t_req_t t;
  t_keys_t k = {SK, 0};
  t_build(&t, "PUT", "/examplebucket/chunkObject.txt", "", stream_hdrs);
  assert_int_equal(t_verify(&t, &k, "us-east-1", t_time(DATE), a), KS_S3_OK);
  assert_int_equal(a->payload, KS_S3_PAYLOAD_STREAMING);
  assert_string_equal(a->seed_signature, SEED);
}

/* Decode body fed in pieces of `step` bytes; returns the first error. */
static ks_s3_code_t t_decode(const char *body, size_t n, size_t step,
                             uint64_t expected, t_sink_t *sink)
{
  ks_s3_auth_t a;
  ks_s3_chunked_t d;
  t_stream_auth(&a);
  assert_int_equal(ks_s3_chunked_init(&d, &a, expected, 0, t_sink_cb, sink), 0);
  ks_s3_auth_clear(&a);
  ks_s3_code_t c = KS_S3_OK;
  for (size_t i = 0; i < n && c == KS_S3_OK; i += step)
    c = ks_s3_chunked_feed(&d, body + i, n - i < step ? n - i : step);
  if (c == KS_S3_OK)
    c = ks_s3_chunked_finish(&d);
  ks_s3_chunked_free(&d);
  return c;
}

static void test_aws_streaming_example(void **state)
{
  (void)state;
  char *body = malloc(70000);
  t_sink_t sink = {malloc(70000), 0, 0, 0};
  assert_non_null(body);
  assert_non_null(sink.data);
  size_t n = t_stream_body(body, SIG2);
  assert_int_equal(n, 66824);
  const size_t steps[] = {n, 1, 7, 4096, 65536 + 89};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    sink.len = 0;
    assert_int_equal(t_decode(body, n, steps[i], 66560, &sink), KS_S3_OK);
    assert_int_equal(sink.len, 66560);
    for (size_t j = 0; j < sink.len; j++)
      assert_int_equal(sink.data[j], 'a');
  }
  sink.len = 0;
  assert_int_equal(t_decode(body, n, 1000, UINT64_MAX, &sink), KS_S3_OK);
  free(body);
  free(sink.data);
}

static void test_streaming_rejections(void **state)
{
  (void)state;
  char *body = malloc(70100);
  t_sink_t sink = {malloc(70000), 0, 0, 0};
  assert_non_null(body);
  size_t n = t_stream_body(body, SIG2);
  /* one data byte of the second chunk changed */
  body[n - 200] = 'b';
  assert_int_equal(t_decode(body, n, n, 66560, &sink),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
  /* the second chunk signed with the first one's signature */
  n = t_stream_body(body, SIG1);
  sink.len = 0;
  assert_int_equal(t_decode(body, n, 3, 66560, &sink),
                   KS_S3_SIGNATURE_DOES_NOT_MATCH);
  n = t_stream_body(body, SIG2);
  sink.len = 0;
  assert_int_equal(t_decode(body, n - 10, 100, 66560, &sink),
                   KS_S3_INCOMPLETE_BODY); /* truncated */
  sink.len = 0;
  memcpy(body + n, "x", 1);
  assert_int_equal(t_decode(body, n + 1, n + 1, 66560, &sink),
                   KS_S3_INVALID_REQUEST); /* data after the end */
  sink.len = 0;
  assert_int_equal(t_decode(body, n, n, 66561, &sink),
                   KS_S3_INCOMPLETE_BODY); /* decoded length mismatch */
  sink.len = 0;
  assert_int_equal(t_decode(body, n, n, 1000, &sink), KS_S3_INCOMPLETE_BODY);
  sink.len = 0;
  sink.calls = 0;
  sink.fail_at = 2;
  assert_int_equal(t_decode(body, n, 1000, 66560, &sink),
                   KS_S3_INTERNAL_ERROR); /* the sink failed */
  free(body);
  free(sink.data);
}

static void test_streaming_framing(void **state)
{
  (void)state;
  static const char *const bad[] = {
      "zz;chunk-signature=" SIG1 "\r\n",
      "10000;chunk-signature=" SIG1 "\n",
      "10000;chunk-signatur=" SIG1 "\r\n",
      "10000;chunk-signature=" SIG1 "0\r\n",
      "10000 ;chunk-signature=" SIG1 "\r\n",
      "10000000000000000;chunk-signature=" SIG1 "\r\n",
      "0;chunk-signature=" SIG3 "\r\nxx",
      "1000000000000000000000000000000000000000000000000000000000000000000000"
      "00000000000000000000000000000000000000000000000000000000000000000000",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    t_sink_t sink = {NULL, 0, 0, 0};
    ks_s3_code_t c = t_decode(bad[i], strlen(bad[i]), 1, UINT64_MAX, &sink);
    assert_true(c == KS_S3_INVALID_REQUEST || c == KS_S3_ENTITY_TOO_LARGE ||
                c == KS_S3_SIGNATURE_DOES_NOT_MATCH);
  }
  /* a frame above the limit */
  ks_s3_auth_t a;
  ks_s3_chunked_t d;
  t_stream_auth(&a);
  assert_int_equal(ks_s3_chunked_init(&d, &a, UINT64_MAX, 4096, NULL, NULL), 0);
  const char *big = "10000;chunk-signature=" SIG1 "\r\n";
  assert_int_equal(ks_s3_chunked_feed(&d, big, strlen(big)),
                   KS_S3_ENTITY_TOO_LARGE);
  /* poisoned: every later call gives the same error */
  assert_int_equal(ks_s3_chunked_feed(&d, "a", 1), KS_S3_ENTITY_TOO_LARGE);
  assert_int_equal(ks_s3_chunked_finish(&d), KS_S3_ENTITY_TOO_LARGE);
  assert_false(ks_s3_chunked_done(&d));
  ks_s3_chunked_free(&d);
  ks_s3_auth_clear(&a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_aws_header_examples),
      cmocka_unit_test(test_aws_header_results),
      cmocka_unit_test(test_tampering_rejected),
      cmocka_unit_test(test_clock_and_scope),
      cmocka_unit_test(test_malformed_requests),
      cmocka_unit_test(test_aws_presigned_example),
      cmocka_unit_test(test_presigned_params),
      cmocka_unit_test(test_aws_test_suite),
      cmocka_unit_test(test_suite_through_verifier),
      cmocka_unit_test(test_unsigned_payload_and_cache),
      cmocka_unit_test(test_aws_streaming_example),
      cmocka_unit_test(test_streaming_rejections),
      cmocka_unit_test(test_streaming_framing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
