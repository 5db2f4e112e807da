/*
 * test_time.c — clocks and timestamp text (ks/time.h).
 *
 * Reference instants: RFC 7231's own example date (784111777), AWS's SigV4
 * documentation date 20130524T000000Z (1369353600), the leap day 2024-02-29
 * and the ends of the four-digit years.  Each form is formatted, parsed back,
 * and then fed every kind of near miss the strict parsers must refuse.
 */
#include "ks/time.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#define S(lit) lit, (sizeof(lit) - 1)

static void test_clocks(void **state)
{
  (void)state;
  uint64_t a = ks_time_mono_ns(), b = ks_time_mono_ns();
  assert_true(b >= a);
  struct timespec ts = {.tv_sec = 0, .tv_nsec = 2000000};
  nanosleep(&ts, NULL);
  uint64_t c = ks_time_mono_ns();
  assert_true(c - b >= 2000000u);
  uint64_t ms = ks_time_mono_ms();
  assert_true(ms >= c / 1000000u && ms - c / 1000000u < 1000);
  int64_t real = ks_time_real_ns();
  int64_t now = (int64_t)time(NULL);
  assert_true(real / KS_NSEC_PER_SEC >= now - 2 &&
              real / KS_NSEC_PER_SEC <= now + 2);
}

static void test_format_rfc3339(void **state)
{
  (void)state;
  char buf[KS_TIME_RFC3339_LEN + 1];
  assert_int_equal(
      ks_time_format_rfc3339(buf, sizeof buf, INT64_C(1795496400123456789)),
      KS_TIME_RFC3339_LEN);
  assert_string_equal(buf, "2026-11-24T05:00:00.123456Z");
  assert_int_equal(ks_time_format_rfc3339(buf, sizeof buf, 0), 27);
  assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
  /* before the epoch the fraction still counts forward within the second */
  assert_int_equal(ks_time_format_rfc3339(buf, sizeof buf, -1), 27);
  assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
  assert_int_equal(ks_time_format_rfc3339(buf, sizeof buf - 1, 0), -ENOSPC);
}

static void test_format_http_amz(void **state)
{
  (void)state;
  char buf[64];
  assert_int_equal(ks_time_format_http(buf, sizeof buf, 784111777),
                   KS_TIME_HTTP_LEN);
  assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
  assert_int_equal(ks_time_format_http(buf, sizeof buf, 1795496400), 29);
  assert_string_equal(buf, "Tue, 24 Nov 2026 05:00:00 GMT");
  assert_int_equal(ks_time_format_amz(buf, sizeof buf, 1369353600),
                   KS_TIME_AMZ_LEN);
  assert_string_equal(buf, "20130524T000000Z");
  assert_int_equal(ks_time_format_amz(buf, sizeof buf, 1795496400), 16);
  assert_string_equal(buf, "20261124T050000Z");
  assert_int_equal(ks_time_format_http(buf, KS_TIME_HTTP_LEN, 0), -ENOSPC);
  assert_int_equal(ks_time_format_amz(buf, KS_TIME_AMZ_LEN, 0), -ENOSPC);
  /* year 10000 does not fit the fixed-width forms */
  assert_int_equal(ks_time_format_amz(buf, sizeof buf, INT64_C(253402300800)),
                   -EINVAL);
  assert_int_equal(ks_time_format_amz(buf, sizeof buf, INT64_C(253402300799)),
                   16);
  assert_string_equal(buf, "99991231T235959Z");
}

static void test_parse_roundtrip(void **state)
{
  (void)state;
  static const int64_t secs[] = {
      0,          784111777, 1369353600,           1709251199,
      1795496400, -1,        INT64_C(253402300799)};
  char buf[64];
  int64_t t;
  uint32_t ns;
  for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
    int n = ks_time_format_http(buf, sizeof buf, secs[i]);
    assert_int_equal(ks_time_parse_http(buf, (size_t)n, &t), 0);
    assert_true(t == secs[i]);
    n = ks_time_format_amz(buf, sizeof buf, secs[i]);
    assert_int_equal(ks_time_parse_amz(buf, (size_t)n, &t), 0);
    assert_true(t == secs[i]);
    if (secs[i] > INT64_MAX / KS_NSEC_PER_SEC - 1)
      continue; /* int64 nanoseconds end in the year 2262 */
    n = ks_time_format_rfc3339(buf, sizeof buf,
                               secs[i] * KS_NSEC_PER_SEC + 654321000);
    assert_int_equal(ks_time_parse_rfc3339(buf, (size_t)n, &t, &ns), 0);
    assert_true(t == secs[i]);
    assert_int_equal(ns, 654321000);
  }
}

static void test_parse_rfc3339_fraction(void **state)
{
  (void)state;
  int64_t t;
  uint32_t ns;
  assert_int_equal(ks_time_parse_rfc3339(S("2026-11-24T05:00:00Z"), &t, &ns),
                   0);
  assert_true(t == 1795496400);
  assert_int_equal(ns, 0);
  assert_int_equal(ks_time_parse_rfc3339(S("2026-11-24T05:00:00.5Z"), &t, &ns),
                   0);
  assert_int_equal(ns, 500000000);
  assert_int_equal(
      ks_time_parse_rfc3339(S("2009-10-12T17:50:30.000Z"), &t, NULL), 0);
  assert_true(t == 1255369830);
  assert_int_equal(
      ks_time_parse_rfc3339(S("2026-11-24T05:00:00.123456789Z"), &t, &ns), 0);
  assert_int_equal(ns, 123456789);
  assert_int_equal(ks_time_parse_rfc3339(S("2024-02-29T00:00:00Z"), &t, NULL),
                   0);
  assert_true(t == 1709164800);
}

static void test_parse_rejects(void **state)
{
  (void)state;
  static const char *bad3339[] = {
      "2026-11-24T05:00:00",
      "2026-11-24T05:00:00Z ",
      " 2026-11-24T05:00:00Z",
      "2026-11-24t05:00:00Z",
      "2026-11-24T05:00:00z",
      "2026-11-24 05:00:00Z",
      "2026-11-24T05:00:00+00:00",
      "2026-11-24T05:00:00.Z",
      "2026-11-24T05:00:00.1234567890Z",
      "2026-11-24T05:00:00.12aZ",
      "2026-13-01T00:00:00Z",
      "2026-00-01T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-11-00T00:00:00Z",
      "2026-11-24T24:00:00Z",
      "2026-11-24T05:60:00Z",
      "2026-11-24T05:00:60Z",
      "2026-1-24T05:00:00Z",
      "+026-11-24T05:00:00Z",
      "",
  };
  static const char *badhttp[] = {
      "Tue, 24 Nov 2026 05:00:00 GMT ",  "Tue, 24 Nov 2026 05:00:00 UTC",
      "Tue, 24 Nov 2026 05:00:00",       "tue, 24 Nov 2026 05:00:00 GMT",
      "Tue, 24 nov 2026 05:00:00 GMT",   "Tux, 24 Nov 2026 05:00:00 GMT",
      "Tue, 24 Nox 2026 05:00:00 GMT",   "Tue,  4 Nov 2026 05:00:00 GMT",
      "Tuesday, 24-Nov-26 05:00:00 GMT", "Tue Nov 24 05:00:00 2026",
      "Tue, 31 Nov 2026 05:00:00 GMT",   "Tue, 24 Nov 2026 25:00:00 GMT",
      "Tue, 24 Nov 2026 05:00:00 GMT\n",
  };
  static const char *badamz[] = {
      "20261124T050000",  "20261124T050000Z ",    "20261124t050000Z",
      "20261124T050000z", "2026-11-24T05:00:00Z", "20261324T050000Z",
      "20260229T050000Z", "20261124T056000Z",     "2026112T0500000Z",
  };
  int64_t t = 42;
  uint32_t ns = 7;
  for (size_t i = 0; i < sizeof bad3339 / sizeof bad3339[0]; i++)
    assert_int_equal(
        ks_time_parse_rfc3339(bad3339[i], strlen(bad3339[i]), &t, &ns),
        -EINVAL);
  for (size_t i = 0; i < sizeof badhttp / sizeof badhttp[0]; i++)
    assert_int_equal(ks_time_parse_http(badhttp[i], strlen(badhttp[i]), &t),
                     -EINVAL);
  for (size_t i = 0; i < sizeof badamz / sizeof badamz[0]; i++)
    assert_int_equal(ks_time_parse_amz(badamz[i], strlen(badamz[i]), &t),
                     -EINVAL);
  assert_true(t == 42); /* outputs untouched on error */
  assert_int_equal(ns, 7);
  /* the explicit length is honoured: a valid prefix of a longer string */
  assert_int_equal(ks_time_parse_amz(S("20261124T050000Zjunk") - 4, &t), 0);
  assert_true(t == 1795496400);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clocks),
      cmocka_unit_test(test_format_rfc3339),
      cmocka_unit_test(test_format_http_amz),
      cmocka_unit_test(test_parse_roundtrip),
      cmocka_unit_test(test_parse_rfc3339_fraction),
      cmocka_unit_test(test_parse_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
