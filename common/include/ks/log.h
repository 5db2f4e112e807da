/*
 * log.h — one line per event, in logfmt, to stderr or a file.
 *
 *   ts=2026-11-24T05:00:00.123456Z level=info comp=rpc event=conn_closed \
 *     peer=127.0.0.1:7200 reason="bad crc"
 *
 * The sink is process-wide (like syslog): a daemon opens it once at start
 * with ks_log_open() and every module writes through ks_log().  Each line is
 * formatted into a stack buffer and written with one write(2) on an O_APPEND
 * descriptor, so lines from different threads never interleave.  Lines longer
 * than KS_LOG_LINE_MAX are truncated and end in "...".  Thread-safe.
 *
 * Callers pass the event as a short snake_case token and the rest as printf
 * key=value pairs; values that may contain spaces, quotes or newlines go
 * through ks_log_quote().
 */
#ifndef KS_LOG_H
#define KS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define KS_LOG_LINE_MAX 4096

typedef enum ks_log_level {
  KS_LOG_DEBUG = 0,
  KS_LOG_INFO = 1,
  KS_LOG_WARN = 2,
  KS_LOG_ERROR = 3,
} ks_log_level_t;

/* Route output to `path` (appending, created 0640) or to stderr when path is
 * NULL or "-".  May be called again (e.g. on SIGHUP for log rotation): the old
 * file is closed after the new one is open.  Returns 0 or a negated errno; on
 * failure the previous sink stays in place. */
int ks_log_open(const char *path);
/* Close a file sink and fall back to stderr. */
void ks_log_close(void);

void ks_log_set_level(ks_log_level_t min);
ks_log_level_t ks_log_get_level(void);
bool ks_log_enabled(ks_log_level_t lvl);
/* "debug", "info", "warn"/"warning", "error" -> level; 0 or -EINVAL. */
int ks_log_level_parse(const char *s, ks_log_level_t *out);
const char *ks_log_level_name(ks_log_level_t lvl);

/* Write one event.  kvfmt may be NULL or "" for no extra fields. */
void ks_log(ks_log_level_t lvl, const char *comp, const char *event,
            const char *kvfmt, ...) __attribute__((format(printf, 4, 5)));
void ks_logv(ks_log_level_t lvl, const char *comp, const char *event,
             const char *kvfmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Render s as a logfmt value into buf: unchanged if it has no space, '"',
 * '=', '\\' or control character, else double-quoted with escapes (\" \\ \n
 * \t \xNN).  Always NUL-terminates; truncates to fit.  Returns buf. */
const char *ks_log_quote(char *buf, size_t size, const char *s);

#define ks_log_debug(comp, event, ...) \
  ks_log(KS_LOG_DEBUG, comp, event, __VA_ARGS__)
#define ks_log_info(comp, event, ...) \
  ks_log(KS_LOG_INFO, comp, event, __VA_ARGS__)
#define ks_log_warn(comp, event, ...) \
  ks_log(KS_LOG_WARN, comp, event, __VA_ARGS__)
#define ks_log_error(comp, event, ...) \
  ks_log(KS_LOG_ERROR, comp, event, __VA_ARGS__)

#endif /* KS_LOG_H */
