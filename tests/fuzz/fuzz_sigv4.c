/*
 * fuzz_sigv4.c — libFuzzer target for SigV4 verification and the
 * aws-chunked decoder (ks/s3_sigv4.h).
 *
 * The first byte picks the mode.
 *   even: the rest is a request, one field per line: method, path, query,
 *         then "name:value" headers (Authorization, X-Amz-Date, ...).  It is
 *         verified at a fixed time against one known key, with and without
 *         the key cache.  Property: a success names the known access key.
 *   odd:  the rest is an aws-chunked body for AWS's published streaming
 *         example (its seed signature and key), fed in pieces whose sizes
 *         come from the second byte.  Properties: the decoded length never
 *         exceeds the input, and "done" implies finish() succeeds.
 */
#include "ks/s3_sigv4.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_AK "AKIAIOSFODNN7EXAMPLE"
#define FZ_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define FZ_MAX_HDRS 32

static int fz_lookup(void *ctx, const char *akid, size_t n, char *secret,
                     size_t size, size_t *len)
{
  (void)ctx;
  if (n != strlen(FZ_AK) || memcmp(akid, FZ_AK, n) != 0)
    return -ENOENT;
  *len = strlen(FZ_SK);
  if (*len > size)
    abort();
  memcpy(secret, FZ_SK, *len);
  return 0;
}

/* Next line of p[*i..n), without its '\n'. */
static const char *fz_line(const char *p, size_t n, size_t *i, size_t *len)
{
  const char *s = p + *i;
  const char *nl = memchr(s, '\n', n - *i);
  *len = nl ? (size_t)(nl - s) : n - *i;
  *i += *len + (nl != NULL);
  return s;
}

static void fz_request(const char *p, size_t n)
{
  ks_s3_header_t h[FZ_MAX_HDRS];
  ks_s3_http_req_t r = {0};
  size_t i = 0, nh = 0;
  r.method = fz_line(p, n, &i, &r.method_len);
  r.path = fz_line(p, n, &i, &r.path_len);
  r.query = fz_line(p, n, &i, &r.query_len);
  while (i < n && nh < FZ_MAX_HDRS) {
    size_t len;
    const char *l = fz_line(p, n, &i, &len);
    const char *colon = memchr(l, ':', len);
    if (colon == NULL)
      continue;
    h[nh] = (ks_s3_header_t){l, colon + 1, (size_t)(colon - l),
                             len - (size_t)(colon - l) - 1};
    nh++;
  }
  r.headers = h;
  r.nheaders = nh;
  ks_s3_key_cache_t cache = {0};
  for (int pass = 0; pass < 2; pass++) {
    ks_s3_auth_cfg_t cfg = {fz_lookup, NULL, pass ? "us-east-1" : NULL, NULL,
                            pass ? &cache : NULL};
    ks_s3_auth_t a;
    ks_s3_code_t c = ks_s3_auth_verify(&cfg, &r, INT64_C(1369353600), &a);
    if (a.message == NULL)
      abort();
    if (c == KS_S3_OK && strcmp(a.access_key, FZ_AK) != 0)
      abort();
    ks_s3_auth_clear(&a);
  }
  ks_s3_key_cache_clear(&cache);
}

static int fz_sink(void *ctx, const void *p, size_t n)
{
  (void)p;
  *(size_t *)ctx += n;
  return 0;
}

static void fz_chunked(const uint8_t *p, size_t n)
{
  ks_s3_auth_t a = {0};
  a.payload = KS_S3_PAYLOAD_STREAMING;
  memcpy(a.amz_date, "20130524T000000Z", 17);
  strcpy(a.scope, "20130524/us-east-1/s3/aws4_request");
  strcpy(a.seed_signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea"
                           "153f7db9fa80a0a9");
  if (ks_s3_sigv4_signing_key(FZ_SK, strlen(FZ_SK), "20130524", "us-east-1",
                              "s3", a._signing_key) != 0)
    abort();
  size_t step = n ? (size_t)p[0] + 1 : 1, decoded = 0;
  ks_s3_chunked_t d;
  if (ks_s3_chunked_init(&d, &a, n && p[0] >= 0x80 ? p[0] * 64u : UINT64_MAX,
                         65536, fz_sink, &decoded) != 0)
    abort();
  ks_s3_code_t c = KS_S3_OK;
  for (size_t i = 1; i < n && c == KS_S3_OK; i += step)
    c = ks_s3_chunked_feed(&d, p + i, n - i < step ? n - i : step);
  if (decoded > n)
    abort();
  if (ks_s3_chunked_done(&d) && ks_s3_chunked_finish(&d) != KS_S3_OK)
    abort();
  (void)ks_s3_chunked_finish(&d);
  ks_s3_chunked_free(&d);
  ks_s3_auth_clear(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  if (data[0] % 2 == 0)
    fz_request((const char *)data + 1, size - 1);
  else
    fz_chunked(data + 1, size - 1);
  return 0;
}
