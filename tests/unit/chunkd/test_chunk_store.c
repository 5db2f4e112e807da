/*
 * test_chunk_store.c — the on-device fragment store on real directories:
 * put/get/stat/delete and ranges, idempotent re-put, corruption of payload,
 * header and length (KS_ECORRUPT, never the bytes), repair by re-put,
 * removal of temporary files at open, device ids that follow the directory
 * when the configuration reorders devices, and failed devices (-EIO for
 * their operations while the others keep working).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/chunk_store.h"
#include "ks/crc32c.h"
#include "ks/err.h"
#include "ks/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NDEV 3

typedef struct fx {
  char root[64];
  char dev[NDEV][128];
  ks_chunk_dev_conf_t conf[NDEV];
  ks_chunk_store_t *st;
} fx_t;

static int fx_setup(void **state)
{
  fx_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->root, sizeof(f->root), "/tmp/ks-chunk-store-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  char root[sizeof(f->root)];
  memcpy(root, f->root, sizeof(root));
  for (int i = 0; i < NDEV; i++) {
    char path[sizeof(f->dev[i])];
    snprintf(path, sizeof(path), "%s/d%d", root, i);
    memcpy(f->dev[i], path, sizeof(path));
    assert_int_equal(mkdir(f->dev[i], 0750), 0);
    f->conf[i].path = f->dev[i];
    f->conf[i].cls = (ks_dev_class_t)(i % KS_DEV_CLASS_COUNT);
  }
  assert_int_equal(ks_chunk_store_open(f->conf, NDEV, &f->st), 0);
  *state = f;
  return 0;
}

static int fx_teardown(void **state)
{
  fx_t *f = *state;
  char cmd[128];
  ks_chunk_store_close(f->st);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void fx_reopen(fx_t *f)
{
  ks_chunk_store_close(f->st);
  f->st = NULL;
  assert_int_equal(ks_chunk_store_open(f->conf, NDEV, &f->st), 0);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 131 + seed + (i >> 9));
  return p;
}

static ks_frag_key_t key_make(uint8_t seed, uint8_t index)
{
  ks_frag_key_t k;
  for (int i = 0; i < KS_CHUNK_ID_LEN; i++)
    k.chunk_id[i] = (uint8_t)(seed * 7 + i);
  k.index = index;
  return k;
}

static int put(fx_t *f, size_t dev, const ks_frag_key_t *k, const uint8_t *p,
               size_t n)
{
  ks_frag_info_t info = {.len = n, .crc = ks_crc32c(0, p, n), .k = 4, .m = 2};
  struct iovec v = {(void *)p, n};
  return ks_chunk_store_put(f->st, dev, k, &info, &v, 1);
}

/* Get the whole fragment and compare; returns the get's status. */
static int get_check(fx_t *f, size_t dev, const ks_frag_key_t *k,
                     const uint8_t *want, size_t n)
{
  ks_frag_info_t info;
  ks_frag_buf_t b;
  int rc = ks_chunk_store_get(f->st, dev, k, 0, 0, &info, &b);
  if (rc != 0) {
    assert_null(b._mem);
    return rc;
  }
  assert_int_equal(b.len, n);
  assert_int_equal(info.len, n);
  assert_int_equal(info.k, 4);
  assert_int_equal(info.m, 2);
  assert_memory_equal(b.data, want, n);
  assert_int_equal((uintptr_t)b._mem % 64, 0);
  ks_frag_buf_free(&b);
  return 0;
}

static void file_path(const fx_t *f, size_t dev, const ks_frag_key_t *k,
                      char *out, size_t size)
{
  char rel[96];
  ks_frag_key_path(k, rel, sizeof(rel));
  snprintf(out, size, "%s/%s", f->dev[dev], rel);
}

static void file_flip(const char *path, off_t off)
{
  int fd = open(path, O_RDWR);
  uint8_t b;
  assert_true(fd >= 0);
  assert_int_equal(pread(fd, &b, 1, off), 1);
  b ^= 0x10;
  assert_int_equal(pwrite(fd, &b, 1, off), 1);
  close(fd);
}

static uint64_t dev_frags(fx_t *f, size_t dev)
{
  ks_dev_info_t info;
  ks_chunk_store_dev_info(f->st, dev, &info);
  return info.frags;
}

/* ---- tests -------------------------------------------------------------- */

static void test_put_get_stat_delete(void **state)
{
  fx_t *f = *state;
  size_t n = 300 * 1000 + 7;
  uint8_t *p = pattern(n, 1);
  ks_frag_key_t k = key_make(1, 3);
  char path[256];
  struct stat sb;

  assert_int_equal(get_check(f, 0, &k, p, n), -ENOENT);
  assert_int_equal(put(f, 0, &k, p, n), 0);
  assert_int_equal(get_check(f, 0, &k, p, n), 0);
  assert_int_equal(dev_frags(f, 0), 1);
  file_path(f, 0, &k, path, sizeof(path));
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_size, KS_FRAG_HDR_SIZE + n);
  /* the fragment lives on device 0 only */
  assert_int_equal(get_check(f, 1, &k, p, n), -ENOENT);

  ks_frag_info_t info;
  assert_int_equal(ks_chunk_store_stat(f->st, 0, &k, &info), 0);
  assert_int_equal(info.len, n);
  assert_int_equal(info.crc, ks_crc32c(0, p, n));

  /* ranges */
  ks_frag_buf_t b;
  assert_int_equal(ks_chunk_store_get(f->st, 0, &k, 1000, 4096, &info, &b), 0);
  assert_int_equal(b.len, 4096);
  assert_memory_equal(b.data, p + 1000, 4096);
  ks_frag_buf_free(&b);
  assert_int_equal(ks_chunk_store_get(f->st, 0, &k, n - 5, 0, &info, &b), 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, p + n - 5, 5);
  ks_frag_buf_free(&b);
  assert_int_equal(ks_chunk_store_get(f->st, 0, &k, n, 0, &info, &b), 0);
  assert_int_equal(b.len, 0);
  ks_frag_buf_free(&b);
  assert_int_equal(ks_chunk_store_get(f->st, 0, &k, n - 5, 6, &info, &b),
                   -EINVAL);
  assert_int_equal(ks_chunk_store_get(f->st, 0, &k, n + 1, 0, &info, &b),
                   -EINVAL);

  assert_int_equal(ks_chunk_store_delete(f->st, 0, &k), 0);
  assert_int_equal(dev_frags(f, 0), 0);
  assert_int_equal(ks_chunk_store_delete(f->st, 0, &k), -ENOENT);
  assert_int_equal(ks_chunk_store_stat(f->st, 0, &k, &info), -ENOENT);
  assert_int_equal(get_check(f, 0, &k, p, n), -ENOENT);
  assert_int_not_equal(stat(path, &sb), 0);

  /* an empty fragment is a fragment */
  assert_int_equal(put(f, 2, &k, p, 0), 0);
  assert_int_equal(get_check(f, 2, &k, p, 0), 0);
  free(p);
}

static void test_reput_and_arguments(void **state)
{
  fx_t *f = *state;
  size_t n = 5000;
  uint8_t *p = pattern(n, 2), *q = pattern(n, 3);
  ks_frag_key_t k = key_make(2, 0);
  assert_int_equal(put(f, 1, &k, p, n), 0);
  assert_int_equal(put(f, 1, &k, p, n), 0); /* idempotent */
  assert_int_equal(dev_frags(f, 1), 1);
  assert_int_equal(put(f, 1, &k, q, n), -EEXIST);
  assert_int_equal(get_check(f, 1, &k, p, n), 0);

  /* crc that does not match the payload, bad profile, length mismatch */
  ks_frag_info_t info = {
      .len = n, .crc = ks_crc32c(0, p, n) ^ 1, .k = 4, .m = 2};
  struct iovec v = {p, n};
  ks_frag_key_t k2 = key_make(9, 1);
  assert_int_equal(ks_chunk_store_put(f->st, 1, &k2, &info, &v, 1), KS_EBADCRC);
  info.crc ^= 1;
  info.k = 0;
  assert_int_equal(ks_chunk_store_put(f->st, 1, &k2, &info, &v, 1), -EINVAL);
  info.k = 1;
  info.m = 0; /* index 1 outside a 1+0 profile */
  assert_int_equal(ks_chunk_store_put(f->st, 1, &k2, &info, &v, 1), -EINVAL);
  info.m = 1;
  info.len = n - 1;
  assert_int_equal(ks_chunk_store_put(f->st, 1, &k2, &info, &v, 1), -EINVAL);
  /* several pieces make one payload */
  info.len = n;
  struct iovec two[2] = {{p, 100}, {p + 100, n - 100}};
  assert_int_equal(ks_chunk_store_put(f->st, 1, &k2, &info, two, 2), 0);
  ks_frag_buf_t b;
  assert_int_equal(ks_chunk_store_get(f->st, 1, &k2, 0, 0, &info, &b), 0);
  assert_memory_equal(b.data, p, n);
  ks_frag_buf_free(&b);
  free(p);
  free(q);
}

static void test_corrupt_payload_and_repair(void **state)
{
  fx_t *f = *state;
  size_t n = 70000;
  uint8_t *p = pattern(n, 4);
  ks_frag_key_t k = key_make(4, 5);
  char path[256];
  assert_int_equal(put(f, 0, &k, p, n), 0);
  file_path(f, 0, &k, path, sizeof(path));
  file_flip(path, KS_FRAG_HDR_SIZE + 12345);
  assert_int_equal(get_check(f, 0, &k, p, n), KS_ECORRUPT);
  /* a range far from the flipped byte is refused too: whole-payload crc */
  ks_frag_info_t info;
  ks_frag_buf_t b;
  assert_int_equal(ks_chunk_store_get(f->st, 0, &k, 60000, 10, &info, &b),
                   KS_ECORRUPT);
  /* stat checks the header only */
  assert_int_equal(ks_chunk_store_stat(f->st, 0, &k, &info), 0);
  /* re-putting the content repairs it */
  assert_int_equal(put(f, 0, &k, p, n), 0);
  assert_int_equal(get_check(f, 0, &k, p, n), 0);
  assert_int_equal(dev_frags(f, 0), 1);
  free(p);
}

static void test_corrupt_header(void **state)
{
  fx_t *f = *state;
  size_t n = 1000;
  uint8_t *p = pattern(n, 5);
  char path[256];
  /* every header byte matters: crc, magic, key, lengths, reserved */
  for (int off = 0; off < KS_FRAG_HDR_SIZE; off += 5) {
    ks_frag_key_t k = key_make((uint8_t)(50 + off), 1);
    assert_int_equal(put(f, 2, &k, p, n), 0);
    file_path(f, 2, &k, path, sizeof(path));
    file_flip(path, off);
    ks_frag_info_t info;
    assert_int_equal(ks_chunk_store_stat(f->st, 2, &k, &info), KS_ECORRUPT);
    assert_int_equal(get_check(f, 2, &k, p, n), KS_ECORRUPT);
  }
  /* a valid fragment renamed to another key is corrupt there */
  ks_frag_key_t a = key_make(7, 0), b = key_make(7, 1);
  char pa[256], pb[256];
  assert_int_equal(put(f, 2, &a, p, n), 0);
  file_path(f, 2, &a, pa, sizeof(pa));
  file_path(f, 2, &b, pb, sizeof(pb));
  assert_int_equal(rename(pa, pb), 0);
  assert_int_equal(get_check(f, 2, &b, p, n), KS_ECORRUPT);
  free(p);
}

static void test_truncated_and_trailing(void **state)
{
  fx_t *f = *state;
  size_t n = 9000;
  uint8_t *p = pattern(n, 6);
  const off_t sizes[] = {0, 10, KS_FRAG_HDR_SIZE, KS_FRAG_HDR_SIZE + 8999,
                         KS_FRAG_HDR_SIZE + 9001};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    ks_frag_key_t k = key_make((uint8_t)(100 + i), 2);
    char path[256];
    ks_frag_info_t info;
    assert_int_equal(put(f, 1, &k, p, n), 0);
    file_path(f, 1, &k, path, sizeof(path));
    assert_int_equal(truncate(path, sizes[i]), 0);
    assert_int_equal(get_check(f, 1, &k, p, n), KS_ECORRUPT);
    assert_int_equal(ks_chunk_store_stat(f->st, 1, &k, &info), KS_ECORRUPT);
  }
  free(p);
}

static void test_temp_cleanup(void **state)
{
  fx_t *f = *state;
  uint8_t *p = pattern(100, 7);
  ks_frag_key_t k = key_make(8, 0);
  char path[256], tmp[300];
  struct stat sb;
  assert_int_equal(put(f, 0, &k, p, 100), 0);
  file_path(f, 0, &k, path, sizeof(path));
  /* what a put killed before its rename leaves behind */
  snprintf(tmp, sizeof(tmp), "%s.tmp.42", path);
  int fd = open(tmp, O_CREAT | O_WRONLY, 0640);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "partial", 7), 7);
  close(fd);
  fx_reopen(f);
  assert_int_not_equal(stat(tmp, &sb), 0);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(dev_frags(f, 0), 1);
  assert_int_equal(get_check(f, 0, &k, p, 100), 0);
  free(p);
}

static void test_device_ids_follow_directories(void **state)
{
  fx_t *f = *state;
  ks_dev_info_t before[NDEV], after;
  uint8_t *p = pattern(4096, 8);
  ks_frag_key_t k = key_make(9, 4);
  for (size_t i = 0; i < NDEV; i++) {
    ks_chunk_store_dev_info(f->st, i, &before[i]);
    assert_false(ks_id_is_zero(&before[i].id));
    assert_int_equal(before[i].state, KS_DEV_OK);
    assert_string_equal(before[i].path, f->dev[i]);
    assert_int_equal(before[i].cls, i % KS_DEV_CLASS_COUNT);
    assert_true(before[i].capacity > 0);
    assert_true(before[i].free <= before[i].capacity);
    assert_int_equal(ks_chunk_store_dev_find(f->st, &before[i].id), (int)i);
  }
  assert_true(ks_id_cmp(&before[0].id, &before[1].id) != 0);
  assert_int_equal(put(f, 2, &k, p, 4096), 0);

  /* reopen with the devices in reverse order */
  ks_chunk_store_close(f->st);
  ks_chunk_dev_conf_t rev[NDEV];
  for (size_t i = 0; i < NDEV; i++)
    rev[i] = f->conf[NDEV - 1 - i];
  assert_int_equal(ks_chunk_store_open(rev, NDEV, &f->st), 0);
  for (size_t i = 0; i < NDEV; i++) {
    ks_chunk_store_dev_info(f->st, NDEV - 1 - i, &after);
    assert_int_equal(ks_id_cmp(&after.id, &before[i].id), 0);
    assert_string_equal(after.path, f->dev[i]);
  }
  int idx = ks_chunk_store_dev_find(f->st, &before[2].id);
  assert_int_equal(idx, 0);
  assert_int_equal(get_check(f, (size_t)idx, &k, p, 4096), 0);
  assert_int_equal(dev_frags(f, (size_t)idx), 1);
  ks_id_t none = KS_ID_ZERO;
  assert_int_equal(ks_chunk_store_dev_find(f->st, &none), -ENOENT);
  ks_chunk_store_close(f->st);
  assert_int_equal(ks_chunk_store_open(f->conf, NDEV, &f->st), 0);
  free(p);
}

static void test_failed_devices(void **state)
{
  fx_t *f = *state;
  uint8_t *p = pattern(2048, 9);
  ks_frag_key_t k = key_make(10, 0);
  char notdir[128], badid[128], idfile[160];
  ks_dev_info_t info;
  snprintf(notdir, sizeof(notdir), "%s/plainfile", f->root);
  snprintf(badid, sizeof(badid), "%s/badid", f->root);
  snprintf(idfile, sizeof(idfile), "%s/device-id", badid);
  assert_int_equal(close(open(notdir, O_CREAT | O_WRONLY, 0640)), 0);
  assert_int_equal(mkdir(badid, 0750), 0);
  FILE *fp = fopen(idfile, "w");
  assert_non_null(fp);
  fputs("not an id\n", fp);
  fclose(fp);

  /* a file, a bad id, a directory listed twice (busy), a missing path */
  ks_chunk_dev_conf_t conf[] = {{f->dev[0], KS_DEV_HDD},
                                {notdir, KS_DEV_HDD},
                                {badid, KS_DEV_HDD},
                                {f->dev[0], KS_DEV_HDD},
                                {"/nonexistent/ks-dev", KS_DEV_HDD},
                                {f->dev[1], KS_DEV_HDD}};
  ks_chunk_store_close(f->st);
  assert_int_equal(ks_chunk_store_open(conf, 6, &f->st), 0);
  for (size_t i = 1; i <= 4; i++) {
    ks_frag_info_t fi;
    ks_chunk_store_dev_info(f->st, i, &info);
    assert_int_equal(info.state, KS_DEV_FAILED);
    assert_int_equal(put(f, i, &k, p, 2048), -EIO);
    assert_int_equal(get_check(f, i, &k, p, 2048), -EIO);
    assert_int_equal(ks_chunk_store_stat(f->st, i, &k, &fi), -EIO);
    assert_int_equal(ks_chunk_store_delete(f->st, i, &k), -EIO);
  }
  /* the others keep working */
  assert_int_equal(put(f, 0, &k, p, 2048), 0);
  assert_int_equal(put(f, 5, &k, p, 2048), 0);
  assert_int_equal(get_check(f, 5, &k, p, 2048), 0);

  /* a device whose directory disappears at run time fails */
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dev[1]);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(get_check(f, 5, &k, p, 2048), -EIO);
  ks_chunk_store_dev_info(f->st, 5, &info);
  assert_int_equal(info.state, KS_DEV_FAILED);
  assert_int_equal(put(f, 5, &k, p, 2048), -EIO);
  assert_int_equal(get_check(f, 0, &k, p, 2048), 0);
  /* an operator can fail a device too */
  ks_chunk_store_dev_fail(f->st, 0, "test");
  assert_int_equal(get_check(f, 0, &k, p, 2048), -EIO);

  ks_chunk_store_close(f->st);
  assert_int_equal(mkdir(f->dev[1], 0750), 0);
  assert_int_equal(ks_chunk_store_open(f->conf, NDEV, &f->st), 0);
  free(p);
}

static void test_open_arguments(void **state)
{
  (void)state;
  ks_chunk_store_t *st = NULL;
  ks_chunk_dev_conf_t empty = {"", KS_DEV_HDD};
  assert_int_equal(ks_chunk_store_open(&empty, 0, &st), -EINVAL);
  assert_int_equal(ks_chunk_store_open(&empty, 1, &st), -EINVAL);
  assert_null(st);
}

int main(void)
{
  ks_log_set_level(KS_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_get_stat_delete, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_reput_and_arguments, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_payload_and_repair, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_header, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_truncated_and_trailing, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_temp_cleanup, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_device_ids_follow_directories,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_failed_devices, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_open_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
