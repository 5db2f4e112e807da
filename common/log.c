/*
 * log.c — the process-wide logfmt sink behind ks/log.h.
 *
 * Design, and why:
 *
 *  1. One line, one write(2).  A line is formatted completely into a stack
 *     buffer of KS_LOG_LINE_MAX bytes and handed to the kernel in a single
 *     write on an O_APPEND descriptor, so lines from threads (and from other
 *     processes appending to the same file) never interleave and the hot
 *     path never allocates.  KS_LOG_LINE_MAX (4096) is also Linux's
 *     PIPE_BUF, so a line is atomic on a pipe (stderr to a collector) too.
 *     A line that does not fit is cut at a UTF-8 character boundary and
 *     ends in "...\n"; the written line, newline included, is never longer
 *     than KS_LOG_LINE_MAX.
 *
 *  2. One event, one line.  Any '\n' or '\r' that reaches the formatted text
 *     (an unquoted value a caller forgot to pass through ks_log_quote) is
 *     replaced by a space, so a hostile value cannot forge a second event.
 *
 *  3. Reopen without losing or misdirecting lines.  The descriptor lives
 *     behind a read-write lock: writers hold it shared for the duration of
 *     their write(2), ks_log_open() holds it exclusively only to swap the
 *     number.  The old descriptor is closed after the swap, when no writer
 *     can still be using it, so a concurrent write can never land in a file
 *     that reused the closed descriptor's number.  The new file is opened
 *     before anything is swapped, so a failed reopen keeps the old sink.
 *     A writer blocked on a full pipe (stderr into a stuck collector) holds
 *     up a reopen too; that is the price of never writing to a stale fd.
 *
 *  4. The level filter is an atomic int read without the lock, so a
 *     filtered-out debug call costs one relaxed load.
 *
 *  5. Timestamps are UTC with microseconds from CLOCK_REALTIME, formatted
 *     here with gmtime_r (no locale, no time zone lookup, thread-safe).
 *
 *  errno is preserved across ks_log() because callers routinely log a
 *  failure and then return -errno.
 */
#include "ks/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Leaves room for the prefix plus "..." and the newline in any line. */
_Static_assert(KS_LOG_LINE_MAX >= 256, "log lines need room for the prefix");

/* Writer-preferring (a GNU extension): with glibc's default, reader
 * preference, a steady stream of log lines could starve a reopen forever. */
static pthread_rwlock_t log__lock =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static int log__fd = -1; /* -1: stderr; guarded by log__lock */
static atomic_int log__level = KS_LOG_INFO;

static const char *const log__names[] = {"debug", "info", "warn", "error"};

/* ---- sink ---------------------------------------------------------------- */

/* Install fd (or -1 for stderr) and close the one it replaces. */
static void log__swap_fd(int fd)
{
  pthread_rwlock_wrlock(&log__lock);
  int old = log__fd;
  log__fd = fd;
  pthread_rwlock_unlock(&log__lock);
  if (old >= 0)
    close(old);
}

int ks_log_open(const char *path)
{
  if (path == NULL || strcmp(path, "-") == 0) {
    log__swap_fd(-1);
    return 0;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return -errno;
  log__swap_fd(fd);
  return 0;
}

void ks_log_close(void)
{
  log__swap_fd(-1);
}

/* Write all of p; retries on EINTR and on the short writes a pipe or a
 * terminal may return.  Errors are dropped: there is nowhere to report them. */
static void log__write_all(const char *p, size_t n)
{
  pthread_rwlock_rdlock(&log__lock);
  int fd = log__fd >= 0 ? log__fd : STDERR_FILENO;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break;
    p += w;
    n -= (size_t)w;
  }
  pthread_rwlock_unlock(&log__lock);
}

/* ---- levels -------------------------------------------------------------- */

void ks_log_set_level(ks_log_level_t min)
{
  atomic_store_explicit(&log__level, (int)min, memory_order_relaxed);
}

ks_log_level_t ks_log_get_level(void)
{
  int lvl = atomic_load_explicit(&log__level, memory_order_relaxed);
  return (ks_log_level_t)lvl;
}

bool ks_log_enabled(ks_log_level_t lvl)
{
  return (int)lvl >= atomic_load_explicit(&log__level, memory_order_relaxed);
}

int ks_log_level_parse(const char *s, ks_log_level_t *out)
{
  if (s == NULL)
    return -EINVAL;
  for (int i = KS_LOG_DEBUG; i <= KS_LOG_ERROR; i++) {
    if (strcasecmp(s, log__names[i]) == 0) {
      *out = (ks_log_level_t)i;
      return 0;
    }
  }
  if (strcasecmp(s, "warning") == 0) {
    *out = KS_LOG_WARN;
    return 0;
  }
  return -EINVAL;
}

const char *ks_log_level_name(ks_log_level_t lvl)
{
  if ((int)lvl < KS_LOG_DEBUG || (int)lvl > KS_LOG_ERROR)
    return "unknown";
  return log__names[lvl];
}

/* ---- formatting ---------------------------------------------------------- */

/* 2026-11-24T05:00:00.123456Z into buf (at least 32 bytes). */
static void log__timestamp(char *buf, size_t size)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           ts.tv_nsec / 1000);
}

/* Cut a line that overflowed `cap` content bytes: back up to a UTF-8
 * character boundary and end it in "...".  Returns the new length. */
static size_t log__truncate(char *line, size_t cap)
{
  size_t len = cap - 3;
  while (len > 0 && ((unsigned char)line[len] & 0xC0) == 0x80)
    len--;
  memcpy(line + len, "...", 3);
  return len + 3;
}

/* Format one event into line[0..KS_LOG_LINE_MAX) with its newline; returns
 * the number of bytes to write. */
static size_t log__format(char *line, ks_log_level_t lvl, const char *comp,
                          const char *event, const char *kvfmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static size_t log__format(char *line, ks_log_level_t lvl, const char *comp,
                          const char *event, const char *kvfmt, va_list ap)
{
  const size_t cap = KS_LOG_LINE_MAX - 1; /* content bytes; +1 for '\n' */
  char ts[64];
  log__timestamp(ts, sizeof ts);
  int n =
      snprintf(line, cap + 1, "ts=%s level=%s comp=%s event=%s", ts,
               ks_log_level_name(lvl), comp ? comp : "-", event ? event : "-");
  size_t len = n < 0 ? 0 : (size_t)n;
  if (len < cap && kvfmt != NULL && kvfmt[0] != '\0') {
    line[len++] = ' ';
    n = vsnprintf(line + len, cap + 1 - len, kvfmt, ap);
    len += n < 0 ? 0 : (size_t)n;
    if (n <= 0)
      len--; /* the fields came out empty: no trailing space */
  }
  if (len > cap)
    len = log__truncate(line, cap);
  for (size_t i = 0; i < len; i++) {
    if (line[i] == '\n' || line[i] == '\r')
      line[i] = ' ';
  }
  line[len++] = '\n';
  assert(len <= KS_LOG_LINE_MAX);
  return len;
}

void ks_logv(ks_log_level_t lvl, const char *comp, const char *event,
             const char *kvfmt, va_list ap)
{
  if (!ks_log_enabled(lvl))
    return;
  int saved = errno;
  char line[KS_LOG_LINE_MAX];
  size_t len = log__format(line, lvl, comp, event, kvfmt, ap);
  log__write_all(line, len);
  errno = saved;
}

void ks_log(ks_log_level_t lvl, const char *comp, const char *event,
            const char *kvfmt, ...)
{
  va_list ap;
  va_start(ap, kvfmt);
  ks_logv(lvl, comp, event, kvfmt, ap);
  va_end(ap);
}

/* ---- quoting ------------------------------------------------------------- */

static bool log__needs_quote(const char *s)
{
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '=' || *p == '\\')
      return true;
  }
  return false;
}

/* The escape for c, written into esc (at least 5 bytes); returns its length. */
static size_t log__escape(unsigned char c, char *esc)
{
  switch (c) {
  case '"':
    memcpy(esc, "\\\"", 2);
    return 2;
  case '\\':
    memcpy(esc, "\\\\", 2);
    return 2;
  case '\n':
    memcpy(esc, "\\n", 2);
    return 2;
  case '\t':
    memcpy(esc, "\\t", 2);
    return 2;
  default:
    break;
  }
  if (c < 0x20 || c == 0x7f) {
    static const char hex[] = "0123456789abcdef";
    esc[0] = '\\';
    esc[1] = 'x';
    esc[2] = hex[c >> 4];
    esc[3] = hex[c & 0xf];
    return 4;
  }
  esc[0] = (char)c;
  return 1;
}

/* Quoted form.  An escape is written whole or not at all, and the closing
 * quote always fits, so a truncated value is still well-formed logfmt. */
static void log__quote_into(char *buf, size_t size, const char *s)
{
  if (size < 3) { /* no room for "" */
    buf[0] = '\0';
    return;
  }
  size_t o = 0;
  buf[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[4];
    size_t n = log__escape(*p, esc);
    if (o + n + 2 > size) /* keep room for the closing quote and NUL */
      break;
    memcpy(buf + o, esc, n);
    o += n;
  }
  buf[o++] = '"';
  buf[o] = '\0';
}

const char *ks_log_quote(char *buf, size_t size, const char *s)
{
  if (buf == NULL || size == 0)
    return buf;
  if (s == NULL)
    s = "";
  if (log__needs_quote(s)) {
    log__quote_into(buf, size, s);
    return buf;
  }
  size_t n = strlen(s);
  if (n >= size)
    n = size - 1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return buf;
}
