/*
 * time.c — clocks and timestamp text (ks/time.h).
 *
 * Parsing does not use strptime(3): it skips whitespace, accepts partial
 * fields and reads day and month names through the locale, all of which a
 * signature check (SigV4 compares X-Amz-Date with the credential scope)
 * must not do.  Each form is instead matched against a fixed pattern
 * ('9' = a digit, 'A' = a letter, anything else literal), its numbers read
 * from fixed offsets, range-checked (timegm(3) would silently normalise
 * "Feb 30" into March) and only then converted with timegm.
 */
#include "ks/time.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char ks_wday_names[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                         "Thu", "Fri", "Sat"};
static const char ks_month_names[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                           "May", "Jun", "Jul", "Aug",
                                           "Sep", "Oct", "Nov", "Dec"};

static uint64_t clock_ns(clockid_t id)
{
  struct timespec ts;
  int rc = clock_gettime(id, &ts);
  assert(rc == 0); /* only fails for an invalid clock id */
  (void)rc;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ks_time_mono_ns(void)
{
  return clock_ns(CLOCK_MONOTONIC);
}

uint64_t ks_time_mono_ms(void)
{
  return ks_time_mono_ns() / 1000000u;
}

int64_t ks_time_real_ns(void)
{
  return (int64_t)clock_ns(CLOCK_REALTIME); /* two's complement wrap */
}

/* Broken-down UTC time of sec, limited to the years 0000..9999. */
static int tm_from_sec(int64_t sec, struct tm *tm)
{
  time_t t = (time_t)sec;
  if (gmtime_r(&t, tm) == NULL)
    return -EINVAL;
  if (tm->tm_year < -1900 || tm->tm_year > 9999 - 1900)
    return -EINVAL;
  return 0;
}

int ks_time_format_rfc3339(char *out, size_t size, int64_t real_ns)
{
  struct tm tm;
  int64_t sec = real_ns / KS_NSEC_PER_SEC, ns = real_ns % KS_NSEC_PER_SEC;
  if (ns < 0) { /* C division truncates toward zero; we want the floor */
    ns += KS_NSEC_PER_SEC;
    sec--;
  }
  if (tm_from_sec(sec, &tm) != 0)
    return -EINVAL;
  if (size < KS_TIME_RFC3339_LEN + 1)
    return -ENOSPC;
  return snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, (int)(ns / 1000));
}

int ks_time_format_http(char *out, size_t size, int64_t sec)
{
  struct tm tm;
  if (tm_from_sec(sec, &tm) != 0)
    return -EINVAL;
  if (size < KS_TIME_HTTP_LEN + 1)
    return -ENOSPC;
  return snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                  ks_wday_names[tm.tm_wday], tm.tm_mday,
                  ks_month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                  tm.tm_min, tm.tm_sec);
}

int ks_time_format_amz(char *out, size_t size, int64_t sec)
{
  struct tm tm;
  if (tm_from_sec(sec, &tm) != 0)
    return -EINVAL;
  if (size < KS_TIME_AMZ_LEN + 1)
    return -ENOSPC;
  return snprintf(out, size, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Does s[0..n) have exactly the shape of pat? */
static bool tm_match(const char *s, size_t n, const char *pat)
{
  if (n != strlen(pat))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool ok = pat[i] == '9' ? (c >= '0' && c <= '9')
              : pat[i] == 'A'
                  ? ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
                  : c == pat[i];
    if (!ok)
      return false;
  }
  return true;
}

/* The decimal number in s[0..len), already known to be digits. */
static int tm_num(const char *s, size_t len)
{
  int v = 0;
  for (size_t i = 0; i < len; i++)
    v = v * 10 + (s[i] - '0');
  return v;
}

/* Index of the 3-letter name at s in names[0..count), or -1. */
static int tm_name(const char *s, const char (*names)[4], int count)
{
  for (int i = 0; i < count; i++)
    if (memcmp(s, names[i], 3) == 0)
      return i;
  return -1;
}

static bool tm_leap(int y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Range-check a civil UTC date and time and convert it to epoch seconds. */
static int tm_to_sec(int y, int mon, int d, int h, int mi, int s, int64_t *out)
{
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mon < 1 || mon > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
    return -EINVAL;
  if (d > mdays[mon - 1] + (mon == 2 && tm_leap(y)))
    return -EINVAL;
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = mon - 1,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi,
                  .tm_sec = s};
  *out = (int64_t)timegm(&tm); /* fields are valid, so -1 means 1969-12-31
                                  23:59:59, not an error */
  return 0;
}

/* The optional ".f" (1 to 9 digits) then "Z" after an RFC 3339 time, or
 * -EINVAL. */
static int rfc3339_frac(const char *s, size_t n, uint32_t *nsec)
{
  size_t i = 0;
  uint32_t v = 0;
  if (n > 0 && s[0] == '.') {
    for (i = 1; i < n && i <= 9 && s[i] >= '0' && s[i] <= '9'; i++)
      v = v * 10 + (uint32_t)(s[i] - '0');
    if (i == 1)
      return -EINVAL; /* a '.' needs at least one digit */
    for (size_t k = i; k <= 9; k++)
      v *= 10;
  }
  if (i + 1 != n || s[i] != 'Z')
    return -EINVAL;
  *nsec = v;
  return 0;
}

int ks_time_parse_rfc3339(const char *s, size_t n, int64_t *sec, uint32_t *nsec)
{
  static const char pat[] = "9999-99-99T99:99:99";
  const size_t plen = sizeof(pat) - 1;
  uint32_t frac;
  int64_t t;
  if (n < plen || !tm_match(s, plen, pat))
    return -EINVAL;
  if (rfc3339_frac(s + plen, n - plen, &frac) != 0)
    return -EINVAL;
  if (tm_to_sec(tm_num(s, 4), tm_num(s + 5, 2), tm_num(s + 8, 2),
                tm_num(s + 11, 2), tm_num(s + 14, 2), tm_num(s + 17, 2),
                &t) != 0)
    return -EINVAL;
  *sec = t;
  if (nsec != NULL)
    *nsec = frac;
  return 0;
}

int ks_time_parse_http(const char *s, size_t n, int64_t *sec)
{
  int64_t t;
  if (!tm_match(s, n, "AAA, 99 AAA 9999 99:99:99 GMT"))
    return -EINVAL;
  int mon = tm_name(s + 8, ks_month_names, 12);
  if (tm_name(s, ks_wday_names, 7) < 0 || mon < 0)
    return -EINVAL;
  if (tm_to_sec(tm_num(s + 12, 4), mon + 1, tm_num(s + 5, 2), tm_num(s + 17, 2),
                tm_num(s + 20, 2), tm_num(s + 23, 2), &t) != 0)
    return -EINVAL;
  *sec = t;
  return 0;
}

int ks_time_parse_amz(const char *s, size_t n, int64_t *sec)
{
  int64_t t;
  if (!tm_match(s, n, "99999999T999999Z"))
    return -EINVAL;
  if (tm_to_sec(tm_num(s, 4), tm_num(s + 4, 2), tm_num(s + 6, 2),
                tm_num(s + 9, 2), tm_num(s + 11, 2), tm_num(s + 13, 2),
                &t) != 0)
    return -EINVAL;
  *sec = t;
  return 0;
}
