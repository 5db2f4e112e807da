/*
 * fuzz_s3_req.c — libFuzzer target for request interpretation
 * (ks/s3_req.h): addressing, dispatch, Range, conditionals, copy source and
 * copy range, metadata directive, URL encoding.
 *
 * The input is '\n'-separated fields: host, path, query, method, Range,
 * If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
 * x-amz-copy-source, x-amz-copy-source-range; the object size is the FNV
 * hash of the input modulo 2^20.  Properties: a resolved range lies inside
 * the object and is non-empty; a parsed key is valid UTF-8 of at most 1024
 * bytes without NUL; a parsed bucket name is valid; dispatch gives an
 * operation exactly when it succeeds.
 */
#include "ks/s3_req.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_FIELDS 11

typedef struct fz_field {
  const char *p;
  size_t n;
} fz_field_t;

static void fz_check_target(ks_s3_code_t c, const ks_s3_target_t *t)
{
  if (c != KS_S3_OK)
    return;
  if (t->key_len > KS_S3_MAX_KEY_LEN || strlen(t->key) != t->key_len ||
      !ks_s3_utf8_valid(t->key, t->key_len))
    abort();
  if (t->bucket[0] && !ks_s3_bucket_name_valid(t->bucket, strlen(t->bucket)))
    abort();
}

static void fz_check_range(ks_s3_code_t c, const ks_s3_range_t *r,
                           uint64_t size)
{
  if (c == KS_S3_OK && r->partial &&
      (r->len == 0 || r->first >= size || r->len > size - r->first))
    abort();
}

static void fz_addressing(const fz_field_t *f)
{
  ks_s3_target_t t;
  ks_s3_op_t op;
  ks_s3_code_t c =
      ks_s3_target_parse(f[0].p, f[0].n, "s3.local", f[1].p, f[1].n, &t);
  fz_check_target(c, &t);
  if (c != KS_S3_OK)
    return;
  c = ks_s3_op_dispatch(f[3].p, f[3].n, &t, f[2].p, f[2].n, f[9].n > 0, &op);
  if ((c == KS_S3_OK) != (op != KS_S3_OP_NONE))
    abort();
  char v[64];
  (void)ks_s3_query_get(f[2].p, f[2].n, "prefix", v, sizeof v);
}

static void fz_headers(const fz_field_t *f, uint64_t size)
{
  ks_s3_range_t r;
  ks_s3_target_t t;
  ks_s3_directive_t d;
  fz_check_range(ks_s3_range_resolve(f[4].p, f[4].n, size, &r), &r, size);
  fz_check_range(ks_s3_copy_range_parse(f[10].p, f[10].n, size, &r), &r, size);
  ks_s3_cond_t c = {f[5].n ? f[5].p : NULL,
                    f[6].n ? f[6].p : NULL,
                    f[7].n ? f[7].p : NULL,
                    f[8].n ? f[8].p : NULL,
                    f[5].n,
                    f[6].n,
                    f[7].n,
                    f[8].n};
  ks_s3_code_t e = ks_s3_cond_eval(&c, "\"abc\"", (int64_t)size, size & 1);
  if (e != KS_S3_OK && e != KS_S3_NOT_MODIFIED &&
      e != KS_S3_PRECONDITION_FAILED)
    abort();
  fz_check_target(ks_s3_copy_source_parse(f[9].p, f[9].n, &t), &t);
  (void)ks_s3_directive_parse(f[3].p, f[3].n, &d);
  ks_buf_t b = KS_BUF_INIT;
  if (ks_s3_url_encode(&b, f[1].p, f[1].n) != 0)
    abort();
  ks_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz_field_t f[FZ_FIELDS];
  const char *p = (const char *)data, *end = p + size;
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 1099511628211u;
  for (int i = 0; i < FZ_FIELDS; i++) {
    const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    f[i].p = p < end ? p : "";
    f[i].n = p < end ? (nl ? (size_t)(nl - p) : (size_t)(end - p)) : 0;
    p = nl ? nl + 1 : end;
  }
  fz_addressing(f);
  fz_headers(f, h % (1u << 20));
  return 0;
}
