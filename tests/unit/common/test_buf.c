/*
 * test_buf.c — the growable buffer and iovec helpers (ks/buf.h): growth by
 * doubling, printf's NUL, overflow refusal leaving contents intact, steal
 * and free handing the allocation over exactly once.
 */
#include "ks/buf.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

static void test_append_grows_by_doubling(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  uint8_t chunk[48];
  memset(chunk, 0xab, sizeof chunk);
  assert_int_equal(ks_buf_append(&b, chunk, sizeof chunk), 0);
  size_t first = b.cap;
  assert_true(first >= sizeof chunk);
  for (int i = 0; i < 100; i++)
    assert_int_equal(ks_buf_append(&b, chunk, sizeof chunk), 0);
  assert_int_equal(b.len, 101 * sizeof chunk);
  assert_true(b.cap >= b.len);
  /* every capacity is the first one times a power of two */
  assert_int_equal(b.cap % first, 0);
  size_t ratio = b.cap / first;
  assert_int_equal(ratio & (ratio - 1), 0);
  for (size_t i = 0; i < b.len; i++)
    assert_int_equal(b.data[i], 0xab);
  ks_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
}

static void test_append_empty_and_str(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_buf_append(&b, NULL, 0), 0);
  assert_int_equal(b.len, 0);
  assert_int_equal(ks_buf_append_str(&b, "key="), 0);
  assert_int_equal(ks_buf_append_str(&b, "value"), 0);
  assert_int_equal(b.len, 9);
  assert_memory_equal(b.data, "key=value", 9);
  ks_buf_free(&b);
}

static void test_printf_keeps_nul(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_buf_printf(&b, "%s=%d", "n", 42), 0);
  assert_int_equal(b.len, 4);
  assert_string_equal((char *)b.data, "n=42");
  assert_int_equal(ks_buf_printf(&b, "%s", ""), 0);
  assert_int_equal(b.len, 4);
  assert_string_equal((char *)b.data, "n=42");
  /* a long one forces a grow-and-redo */
  char big[1000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(ks_buf_printf(&b, " %s!", big), 0);
  assert_int_equal(b.len, 4 + 1 + 999 + 1);
  assert_int_equal(strlen((char *)b.data), b.len);
  assert_int_equal(b.data[b.len - 1], '!');
  ks_buf_free(&b);
}

static void test_reserve_overflow_leaves_contents(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_buf_append_str(&b, "abc"), 0);
  uint8_t *data = b.data;
  size_t cap = b.cap;
  assert_int_equal(ks_buf_reserve(&b, SIZE_MAX), -ENOMEM);
  assert_int_equal(ks_buf_reserve(&b, SIZE_MAX - 2), -ENOMEM);
  assert_int_equal(ks_buf_append(&b, "x", SIZE_MAX), -ENOMEM);
  assert_ptr_equal(b.data, data);
  assert_int_equal(b.cap, cap);
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.data, "abc", 3);
  ks_buf_free(&b);
}

static void test_reset_keeps_allocation(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_buf_reserve(&b, 100), 0);
  assert_true(b.cap >= 100);
  size_t cap = b.cap;
  assert_int_equal(ks_buf_append_str(&b, "hello"), 0);
  ks_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, cap);
  assert_non_null(b.data);
  ks_buf_free(&b);
  ks_buf_free(&b); /* free is idempotent */
}

static void test_steal(void **state)
{
  (void)state;
  ks_buf_t b = KS_BUF_INIT;
  size_t len = 99;
  assert_null(ks_buf_steal(&b, &len));
  assert_int_equal(len, 0);
  assert_int_equal(ks_buf_append_str(&b, "owned"), 0);
  uint8_t *p = ks_buf_steal(&b, &len);
  assert_non_null(p);
  assert_int_equal(len, 5);
  assert_memory_equal(p, "owned", 5);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
  free(p);
  /* the buffer is reusable afterwards */
  assert_int_equal(ks_buf_append_str(&b, "again"), 0);
  ks_buf_free(&b);
}

static void test_iov(void **state)
{
  (void)state;
  char a[] = "hello, ", c[] = "world";
  struct iovec iov[3] = {
      {.iov_base = a, .iov_len = 7},
      {.iov_base = NULL, .iov_len = 0},
      {.iov_base = c, .iov_len = 5},
  };
  assert_int_equal(ks_iov_total(iov, 3), 12);
  assert_int_equal(ks_iov_total(iov, 0), 0);
  char dst[12];
  ks_iov_gather(dst, iov, 3);
  assert_memory_equal(dst, "hello, world", 12);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_grows_by_doubling),
      cmocka_unit_test(test_append_empty_and_str),
      cmocka_unit_test(test_printf_keeps_nul),
      cmocka_unit_test(test_reserve_overflow_leaves_contents),
      cmocka_unit_test(test_reset_keeps_allocation),
      cmocka_unit_test(test_steal),
      cmocka_unit_test(test_iov),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
