/*
 * test_kms_file.c — the internal key provider (ks_kms_file_open, ks/kms.h).
 *
 * Each test works in a fresh directory under TMPDIR: persistence across
 * close/reopen, the key file's mode (0600 kept, 0644 and symlinks refused),
 * the directory lock (second open -> -EBUSY), a corrupted file refused,
 * wrap/unwrap binding (aad, tenant, version, tampering -> KS_EAUTH),
 * rotation (old records still unwrap, new ones use the new version, across a
 * reopen), crypto-shredding (unwrap and derive fail with -EKEYREVOKED, also
 * after reopen; the id cannot be reused), derivation (stable, purpose- and
 * tenant-separated), and memory hygiene: every key region the provider
 * releases is all zero when released, secret outputs are zeroed on
 * failure.  Leaks are LeakSanitizer's job in the Asan build.
 */
#include "ks/kms.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/rand.h"

typedef struct fx {
  char dir[256];
  char file[300];
  ks_kms_t *kms;
  ks_id_t a, b;
} fx_t;

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
  snprintf(f->dir, sizeof(f->dir), "%s/ks-kms-XXXXXX", tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->file, sizeof(f->file), "%s/tenant-keys", f->dir);
  assert_int_equal(ks_id_generate(&f->a), 0);
  assert_int_equal(ks_id_generate(&f->b), 0);
  assert_int_equal(ks_kms_file_open(f->dir, &f->kms), 0);
  *state = f;
  return 0;
}

static int fx_teardown(void **state)
{
  fx_t *f = *state;
  ks_kms_close(f->kms);
  assert_int_equal(nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
  free(f);
  return 0;
}

static void reopen(fx_t *f)
{
  ks_kms_close(f->kms);
  f->kms = NULL;
  assert_int_equal(ks_kms_file_open(f->dir, &f->kms), 0);
}

static void assert_zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    assert_int_equal(p[i], 0);
}

static void wrap(fx_t *f, const ks_id_t *t, const uint8_t *dek,
                 ks_kms_wrapped_t *w)
{
  assert_int_equal(ks_kms_dek_wrap(f->kms, t, dek, "ctx", 3, w), 0);
}

static void assert_unwraps(fx_t *f, const ks_id_t *t, const ks_kms_wrapped_t *w,
                           const uint8_t *dek)
{
  uint8_t out[KS_KMS_KEY_LEN];
  assert_int_equal(ks_kms_dek_unwrap(f->kms, t, w, "ctx", 3, out), 0);
  assert_memory_equal(out, dek, KS_KMS_KEY_LEN);
  ks_secure_zero(out, sizeof(out));
}

/* An unwrap that must fail with rc and leave the output zeroed. */
static void assert_unwrap_fails(fx_t *f, const ks_id_t *t,
                                const ks_kms_wrapped_t *w, const char *aad,
                                int rc)
{
  uint8_t out[KS_KMS_KEY_LEN];
  memset(out, 0xAA, sizeof(out));
  assert_int_equal(ks_kms_dek_unwrap(f->kms, t, w, aad, strlen(aad), out), rc);
  assert_zero(out, sizeof(out));
}

static void test_persist(void **state)
{
  fx_t *f = *state;
  uint8_t dek[KS_KMS_KEY_LEN], k1[KS_KMS_KEY_LEN], k2[KS_KMS_KEY_LEN];
  ks_kms_wrapped_t w;
  assert_int_equal(ks_rand_bytes(dek, sizeof(dek)), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), -EEXIST);
  wrap(f, &f->a, dek, &w);
  assert_int_equal(w.key_version, 1);
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "p", k1), 0);
  reopen(f);
  assert_unwraps(f, &f->a, &w, dek);
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "p", k2), 0);
  assert_memory_equal(k1, k2, sizeof(k1));
  struct stat st;
  assert_int_equal(stat(f->file, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(access(f->file, F_OK), 0);
  char tmp[320];
  snprintf(tmp, sizeof(tmp), "%s.tmp", f->file);
  assert_int_equal(access(tmp, F_OK), -1); /* no temporary left behind */
}

static void test_unknown_tenant(void **state)
{
  fx_t *f = *state;
  uint8_t dek[KS_KMS_KEY_LEN] = {1};
  ks_kms_wrapped_t w;
  uint32_t v;
  assert_int_equal(ks_kms_dek_wrap(f->kms, &f->a, dek, NULL, 0, &w), -ENOKEY);
  assert_int_equal(ks_kms_tenant_rotate(f->kms, &f->a, &v), -ENOKEY);
  assert_int_equal(ks_kms_tenant_destroy(f->kms, &f->a), -ENOKEY);
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "p", dek), -ENOKEY);
  assert_zero(dek, sizeof(dek));
}

static void test_mode_refused(void **state)
{
  fx_t *f = *state;
  ks_kms_t *k2 = NULL;
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  ks_kms_close(f->kms);
  f->kms = NULL;
  assert_int_equal(chmod(f->file, 0644), 0);
  assert_int_equal(ks_kms_file_open(f->dir, &k2), -EPERM);
  assert_null(k2);
  assert_int_equal(chmod(f->file, 0640), 0);
  assert_int_equal(ks_kms_file_open(f->dir, &k2), -EPERM);
  assert_int_equal(chmod(f->file, 0600), 0);
  assert_int_equal(ks_kms_file_open(f->dir, &f->kms), 0);
  /* a second opener of the same directory is turned away */
  assert_int_equal(ks_kms_file_open(f->dir, &k2), -EBUSY);
  assert_null(k2);
}

static void test_symlink_refused(void **state)
{
  fx_t *f = *state;
  char real[320];
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  ks_kms_close(f->kms);
  f->kms = NULL;
  snprintf(real, sizeof(real), "%s/real", f->dir);
  assert_int_equal(rename(f->file, real), 0);
  assert_int_equal(symlink(real, f->file), 0);
  assert_int_equal(ks_kms_file_open(f->dir, &f->kms), -EPERM);
  assert_null(f->kms);
}

static void test_corrupt_refused(void **state)
{
  fx_t *f = *state;
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  ks_kms_close(f->kms);
  f->kms = NULL;
  int fd = open(f->file, O_RDWR);
  assert_true(fd >= 0);
  uint8_t c;
  assert_int_equal(pread(fd, &c, 1, 20), 1);
  c ^= 0x10;
  assert_int_equal(pwrite(fd, &c, 1, 20), 1);
  assert_int_equal(close(fd), 0);
  assert_int_equal(ks_kms_file_open(f->dir, &f->kms), KS_ECORRUPT);
  /* truncated */
  assert_int_equal(truncate(f->file, 5), 0);
  assert_int_equal(ks_kms_file_open(f->dir, &f->kms), KS_ECORRUPT);
}

static void test_binding(void **state)
{
  fx_t *f = *state;
  uint8_t dek[KS_KMS_KEY_LEN];
  ks_kms_wrapped_t w, bad;
  assert_int_equal(ks_rand_bytes(dek, sizeof(dek)), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->b), 0);
  wrap(f, &f->a, dek, &w);
  assert_unwrap_fails(f, &f->a, &w, "ctX", KS_EAUTH);
  assert_unwrap_fails(f, &f->b, &w, "ctx", KS_EAUTH);
  for (uint32_t i = 0; i < w.len; i++) {
    bad = w;
    bad.data[i] ^= 0x01;
    assert_unwrap_fails(f, &f->a, &bad, "ctx", KS_EAUTH);
  }
  bad = w;
  bad.key_version = 2;
  assert_unwrap_fails(f, &f->a, &bad, "ctx", KS_EAUTH);
  bad.key_version = 0;
  assert_unwrap_fails(f, &f->a, &bad, "ctx", KS_EAUTH);
  bad = w;
  bad.len = 59;
  assert_unwrap_fails(f, &f->a, &bad, "ctx", KS_EAUTH);
  /* two wraps of one DEK differ (fresh IV) */
  wrap(f, &f->a, dek, &bad);
  assert_memory_not_equal(bad.data, w.data, w.len);
  uint8_t big[KS_KMS_AAD_MAX + 1] = {0};
  assert_int_equal(ks_kms_dek_wrap(f->kms, &f->a, dek, big, sizeof(big), &w),
                   -EINVAL);
}

static void test_rotate(void **state)
{
  fx_t *f = *state;
  uint8_t d1[KS_KMS_KEY_LEN], d2[KS_KMS_KEY_LEN], k1[KS_KMS_KEY_LEN],
      k2[KS_KMS_KEY_LEN];
  ks_kms_wrapped_t w1, w2;
  uint32_t v = 0;
  assert_int_equal(ks_rand_bytes(d1, sizeof(d1)), 0);
  assert_int_equal(ks_rand_bytes(d2, sizeof(d2)), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "id", k1), 0);
  wrap(f, &f->a, d1, &w1);
  assert_int_equal(ks_kms_tenant_rotate(f->kms, &f->a, &v), 0);
  assert_int_equal(v, 2);
  wrap(f, &f->a, d2, &w2);
  assert_int_equal(w1.key_version, 1);
  assert_int_equal(w2.key_version, 2);
  assert_unwraps(f, &f->a, &w1, d1);
  assert_unwraps(f, &f->a, &w2, d2);
  /* a v2 record relabelled v1 does not open */
  ks_kms_wrapped_t bad = w2;
  bad.key_version = 1;
  assert_unwrap_fails(f, &f->a, &bad, "ctx", KS_EAUTH);
  /* derivation does not rotate: ids stay stable */
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "id", k2), 0);
  assert_memory_equal(k1, k2, sizeof(k1));
  reopen(f);
  assert_unwraps(f, &f->a, &w1, d1);
  assert_unwraps(f, &f->a, &w2, d2);
  assert_int_equal(ks_kms_tenant_rotate(f->kms, &f->a, &v), 0);
  assert_int_equal(v, 3);
  wrap(f, &f->a, d1, &w1);
  assert_int_equal(w1.key_version, 3);
}

static void test_destroy(void **state)
{
  fx_t *f = *state;
  uint8_t dek[KS_KMS_KEY_LEN], k[KS_KMS_KEY_LEN];
  ks_kms_wrapped_t wa, wb;
  uint32_t v;
  assert_int_equal(ks_rand_bytes(dek, sizeof(dek)), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->b), 0);
  wrap(f, &f->a, dek, &wa);
  wrap(f, &f->b, dek, &wb);
  assert_int_equal(ks_kms_tenant_destroy(f->kms, &f->a), 0);
  assert_unwrap_fails(f, &f->a, &wa, "ctx", -EKEYREVOKED);
  assert_unwraps(f, &f->b, &wb, dek); /* other tenants untouched */
  memset(k, 0xAA, sizeof(k));
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "id", k), -EKEYREVOKED);
  assert_zero(k, sizeof(k));
  assert_int_equal(ks_kms_tenant_destroy(f->kms, &f->a), -EKEYREVOKED);
  assert_int_equal(ks_kms_tenant_rotate(f->kms, &f->a, &v), -EKEYREVOKED);
  reopen(f);
  assert_unwrap_fails(f, &f->a, &wa, "ctx", -EKEYREVOKED);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), -EKEYREVOKED);
  assert_unwraps(f, &f->b, &wb, dek);
}

static void test_derive(void **state)
{
  fx_t *f = *state;
  uint8_t x[KS_KMS_KEY_LEN], y[KS_KMS_KEY_LEN];
  char long_purpose[KS_KMS_PURPOSE_MAX + 2];
  memset(long_purpose, 'p', sizeof(long_purpose) - 1);
  long_purpose[sizeof(long_purpose) - 1] = 0;
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->b), 0);
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "one", x), 0);
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "two", y), 0);
  assert_memory_not_equal(x, y, sizeof(x));
  assert_int_equal(ks_kms_key_derive(f->kms, &f->b, "one", y), 0);
  assert_memory_not_equal(x, y, sizeof(x));
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, "", y), -EINVAL);
  assert_zero(y, sizeof(y));
  assert_int_equal(ks_kms_key_derive(f->kms, &f->a, long_purpose, y), -EINVAL);
}

/* ---- memory hygiene ----------------------------------------------------- */

typedef struct freed {
  unsigned regions;
  unsigned dirty; /* regions released with a nonzero byte */
} freed_t;

static void on_free(const void *p, size_t n, void *arg)
{
  freed_t *fr = arg;
  const uint8_t *b = p;
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= b[i];
  fr->regions++;
  fr->dirty += acc != 0;
}

static void test_freed_memory_zeroed(void **state)
{
  fx_t *f = *state;
  freed_t fr = {0};
  uint8_t dek[KS_KMS_KEY_LEN];
  ks_kms_wrapped_t w;
  uint32_t v;
  assert_int_equal(ks_rand_bytes(dek, sizeof(dek)), 0);
  ks_kms_file_set_free_cb(f->kms, on_free, &fr);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->a), 0);
  assert_int_equal(ks_kms_tenant_create(f->kms, &f->b), 0);
  unsigned after_create = fr.regions; /* the file images */
  assert_true(after_create >= 2);
  wrap(f, &f->a, dek, &w);
  assert_int_equal(ks_kms_tenant_rotate(f->kms, &f->a, &v), 0);
  unsigned after_rotate = fr.regions; /* old key region + image */
  assert_true(after_rotate >= after_create + 2);
  assert_int_equal(ks_kms_tenant_destroy(f->kms, &f->a), 0);
  assert_true(fr.regions >= after_rotate + 2); /* keys released at once */
  unsigned before_close = fr.regions;
  ks_kms_close(f->kms);
  f->kms = NULL;
  assert_int_equal(fr.regions, before_close + 1); /* tenant b's keys */
  assert_int_equal(fr.dirty, 0);
  /* after a reopen, the shredded tenant has no key region left to free */
  assert_int_equal(ks_kms_file_open(f->dir, &f->kms), 0);
  ks_kms_file_set_free_cb(f->kms, on_free, &fr);
  ks_kms_close(f->kms);
  f->kms = NULL;
  assert_int_equal(fr.regions, before_close + 2);
  assert_int_equal(fr.dirty, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_persist, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_unknown_tenant, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_mode_refused, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_symlink_refused, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_refused, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_binding, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_rotate, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_destroy, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_derive, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_freed_memory_zeroed, fx_setup,
                                      fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
