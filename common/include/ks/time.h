/*
 * time.h — clocks and the three textual timestamp forms Kiseki speaks.
 *
 * Clocks: the monotonic clock measures durations and deadlines (never goes
 * back, stops counting across suspend on Linux); the real-time clock is only
 * for timestamps shown to people or stored in metadata (mtime, LastModified),
 * never for timeouts, since NTP may step it.
 *
 * Text forms, all UTC:
 *   RFC 3339   "2026-11-24T05:00:00.123456Z"    logs, JSON, S3 XML
 *   HTTP date  "Tue, 24 Nov 2026 05:00:00 GMT"  RFC 7231 IMF-fixdate:
 *                                               Date, Last-Modified, Expires
 *   AMZ        "20261124T050000Z"               ISO 8601 basic: X-Amz-Date and
 *                                               the SigV4 string to sign
 * Formatters follow ks/codec.h's convention: the caller's buffer `out` of
 * `size` bytes gets the text and a NUL; they return the text length, or
 * -ENOSPC (size < length + 1) or -EINVAL (the year is outside 0000..9999,
 * which the fixed-width forms cannot show).
 * Parsers take text with an explicit length (no NUL needed), accept exactly
 * the form shown (no surrounding whitespace, no trailing characters, upper
 * case 'T'/'Z', fields in range: month 1-12, a day that exists in that month,
 * hour 0-23, minute and second 0-59, no leap second), and return 0 or -EINVAL.
 * Outputs are written only on success.
 *
 * Thread-safe; no state (gmtime_r/timegm, no locale: day and month names
 * come from tables here, so setlocale() cannot change them).
 */
#ifndef KS_TIME_H
#define KS_TIME_H

#include <stddef.h>
#include <stdint.h>

#define KS_TIME_RFC3339_LEN 27 /* characters, without the NUL */
#define KS_TIME_HTTP_LEN 29
#define KS_TIME_AMZ_LEN 16

#define KS_NSEC_PER_SEC INT64_C(1000000000)

/* CLOCK_MONOTONIC in nanoseconds / milliseconds since an arbitrary origin. */
uint64_t ks_time_mono_ns(void);
uint64_t ks_time_mono_ms(void);
/* CLOCK_REALTIME in nanoseconds since the Unix epoch (negative before it). */
int64_t ks_time_real_ns(void);

/* real_ns (nanoseconds since the epoch) as RFC 3339 with microseconds,
 * truncated toward the past. */
int ks_time_format_rfc3339(char *out, size_t size, int64_t real_ns);
/* sec (seconds since the epoch) as an RFC 7231 HTTP date. */
int ks_time_format_http(char *out, size_t size, int64_t sec);
/* sec as the AWS SigV4 basic form. */
int ks_time_format_amz(char *out, size_t size, int64_t sec);

/* "YYYY-MM-DDTHH:MM:SS[.f]Z" with 1 to 9 fraction digits -> *sec and, when
 * nsec is not NULL, the fraction in nanoseconds.  Only 'Z' is accepted as
 * the offset: every Kiseki and S3 timestamp is UTC. */
int ks_time_parse_rfc3339(const char *s, size_t n, int64_t *sec,
                          uint32_t *nsec);
/* IMF-fixdate only; the obsolete RFC 850 and asctime forms are rejected.
 * Names are case-sensitive; the weekday must be a valid name but, as in
 * most HTTP stacks, is not checked against the date. */
int ks_time_parse_http(const char *s, size_t n, int64_t *sec);
/* "YYYYMMDDTHHMMSSZ" -> *sec. */
int ks_time_parse_amz(const char *s, size_t n, int64_t *sec);

#endif /* KS_TIME_H */
