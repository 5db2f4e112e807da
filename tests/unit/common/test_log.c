/*
 * test_log.c — the logfmt sink (ks/log.h): line format, level filter,
 * quoting, truncation, reopen for rotation, and whole lines under threads.
 *
 * Each test logs to a file in a fresh temporary directory and reads it back;
 * the sink is process-wide, so every test reopens it and the teardown puts
 * it back on stderr.
 */
#include "ks/log.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

typedef struct fixture {
  char dir[64];
  char path[256];
} fixture_t;

static fixture_t fixture; /* one test at a time: the sink is global too */

static int setup(void **state)
{
  fixture_t *f = &fixture;
  snprintf(f->dir, sizeof f->dir, "/tmp/ks_test_log_XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->path, sizeof f->path, "%.63s/log", f->dir);
  ks_log_set_level(KS_LOG_DEBUG);
  if (ks_log_open(f->path) != 0)
    return -1;
  *state = f;
  return 0;
}

/* Remove the test's directory and the log files in it. */
static int teardown(void **state)
{
  fixture_t *f = *state;
  ks_log_close();
  ks_log_set_level(KS_LOG_INFO);
  DIR *d = opendir(f->dir);
  if (d == NULL)
    return -1;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    char p[sizeof f->dir + 2 + sizeof e->d_name];
    snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
    if (e->d_type == DT_REG)
      unlink(p);
  }
  closedir(d);
  return rmdir(f->dir);
}

/* The whole file, NUL-terminated; the caller frees it. */
static char *slurp(const char *path, size_t *len)
{
  struct stat st;
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  assert_int_equal(fstat(fileno(fp), &st), 0);
  char *buf = malloc((size_t)st.st_size + 1);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (size_t)st.st_size, fp);
  assert_int_equal(n, st.st_size);
  fclose(fp);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

static size_t count_lines(const char *s)
{
  size_t n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static void assert_matches(const char *s, const char *pattern)
{
  regex_t re;
  assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
  int rc = regexec(&re, s, 0, NULL, 0);
  regfree(&re);
  if (rc != 0)
    fail_msg("\"%s\" does not match /%s/", s, pattern);
}

static void test_line_format(void **state)
{
  fixture_t *f = *state;
  char q[64];
  time_t before = time(NULL);
  ks_log_info("rpc", "conn_closed", "peer=%s reason=%s", "127.0.0.1:7200",
              ks_log_quote(q, sizeof q, "bad crc"));
  char *s = slurp(f->path, NULL);
  assert_matches(s, "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                    "\\.[0-9]{6}Z level=info comp=rpc event=conn_closed "
                    "peer=127\\.0\\.0\\.1:7200 reason=\"bad crc\"\n$");
  struct tm tm = {0};
  assert_non_null(strptime(s + 3, "%Y-%m-%dT%H:%M:%S", &tm));
  time_t logged = timegm(&tm);
  assert_true(logged >= before - 1 && logged <= time(NULL) + 1); /* UTC */
  free(s);
}

static void test_no_fields(void **state)
{
  fixture_t *f = *state;
  ks_log_warn("meta", "started", NULL);
  ks_log_error("meta", "stopped", "%s", "");
  ks_log(KS_LOG_DEBUG, NULL, NULL, NULL);
  char *s = slurp(f->path, NULL);
  assert_matches(s, "^ts=[^ ]+ level=warn comp=meta event=started\n"
                    "ts=[^ ]+ level=error comp=meta event=stopped\n"
                    "ts=[^ ]+ level=debug comp=- event=-\n$");
  free(s);
}

static void test_level_filter(void **state)
{
  fixture_t *f = *state;
  ks_log_set_level(KS_LOG_WARN);
  assert_int_equal(ks_log_get_level(), KS_LOG_WARN);
  assert_false(ks_log_enabled(KS_LOG_INFO));
  assert_true(ks_log_enabled(KS_LOG_ERROR));
  ks_log_debug("t", "d", "n=%d", 1);
  ks_log_info("t", "i", "n=%d", 2);
  ks_log_warn("t", "w", "n=%d", 3);
  ks_log_error("t", "e", "n=%d", 4);
  char *s = slurp(f->path, NULL);
  assert_int_equal(count_lines(s), 2);
  assert_null(strstr(s, "event=d"));
  assert_null(strstr(s, "event=i"));
  assert_non_null(strstr(s, "level=warn comp=t event=w n=3\n"));
  assert_non_null(strstr(s, "level=error comp=t event=e n=4\n"));
  free(s);
}

static void test_level_names(void **state)
{
  (void)state;
  ks_log_level_t l = KS_LOG_ERROR;
  assert_int_equal(ks_log_level_parse("debug", &l), 0);
  assert_int_equal(l, KS_LOG_DEBUG);
  assert_int_equal(ks_log_level_parse("INFO", &l), 0);
  assert_int_equal(l, KS_LOG_INFO);
  assert_int_equal(ks_log_level_parse("warning", &l), 0);
  assert_int_equal(l, KS_LOG_WARN);
  assert_int_equal(ks_log_level_parse("warn", &l), 0);
  assert_int_equal(ks_log_level_parse("error", &l), 0);
  assert_int_equal(l, KS_LOG_ERROR);
  assert_int_equal(ks_log_level_parse("loud", &l), -EINVAL);
  assert_int_equal(ks_log_level_parse(NULL, &l), -EINVAL);
  assert_int_equal(l, KS_LOG_ERROR);
  assert_string_equal(ks_log_level_name(KS_LOG_WARN), "warn");
  assert_string_equal(ks_log_level_name((ks_log_level_t)42), "unknown");
}

static void check_quote(size_t size, const char *in, const char *want)
{
  char buf[128];
  memset(buf, 'X', sizeof buf);
  assert_true(size <= sizeof buf);
  assert_ptr_equal(ks_log_quote(buf, size, in), buf);
  assert_string_equal(buf, want);
}

static void test_quote(void **state)
{
  (void)state;
  check_quote(64, "plain", "plain");
  check_quote(64, "127.0.0.1:7200", "127.0.0.1:7200");
  check_quote(64, "", "");
  check_quote(64, NULL, "");
  check_quote(64, "bad crc", "\"bad crc\"");
  check_quote(64, "a=b", "\"a=b\"");
  check_quote(64, "say \"hi\"", "\"say \\\"hi\\\"\"");
  check_quote(64, "c:\\dir", "\"c:\\\\dir\"");
  check_quote(64, "l1\nl2\tx", "\"l1\\nl2\\tx\"");
  check_quote(64, "\x01\x7f\r", "\"\\x01\\x7f\\x0d\"");
  check_quote(64, "caf\xc3\xa9", "caf\xc3\xa9"); /* UTF-8 passes through */
}

static void test_quote_truncates(void **state)
{
  (void)state;
  check_quote(4, "abcdef", "abc");      /* unquoted: cut to fit */
  check_quote(6, "a bcdef", "\"a b\""); /* quoted: closing quote kept */
  check_quote(5, "a\nb", "\"a\"");      /* "\n" would not fit whole */
  check_quote(6, "a\nb", "\"a\\n\"");
  check_quote(2, "a b", ""); /* no room for "" */
  check_quote(1, "abc", "");
  char buf[1] = {'Z'};
  ks_log_quote(buf, 0, "abc"); /* size 0: untouched */
  assert_int_equal(buf[0], 'Z');
}

static void test_truncation(void **state)
{
  fixture_t *f = *state;
  char *big = malloc(3 * KS_LOG_LINE_MAX);
  memset(big, 'v', 3 * KS_LOG_LINE_MAX - 1);
  big[3 * KS_LOG_LINE_MAX - 1] = '\0';
  ks_log_info("t", "big", "v=%s", big);
  ks_log_info("t", "after", NULL);
  size_t len;
  char *s = slurp(f->path, &len);
  char *nl = strchr(s, '\n');
  assert_int_equal(nl - s + 1, KS_LOG_LINE_MAX);
  assert_memory_equal(nl - 3, "...", 3);
  assert_non_null(strstr(nl + 1, "event=after\n"));
  free(s);
  free(big);
}

/* A cut never leaves half of a UTF-8 character before the "...". */
static void test_truncation_utf8(void **state)
{
  fixture_t *f = *state;
  size_t n = KS_LOG_LINE_MAX; /* 2-byte characters, twice too many */
  char *big = malloc(2 * n + 1);
  for (size_t i = 0; i < n; i++)
    memcpy(big + 2 * i, "\xc3\xa9", 2);
  big[2 * n] = '\0';
  for (int shift = 0; shift < 2; shift++)
    ks_log_info("t", "utf8", "%.*sv=%s", shift, "x", big);
  char *s = slurp(f->path, NULL);
  for (char *line = s; *line; line = strchr(line, '\n') + 1) {
    char *end = strstr(line, "...\n");
    assert_non_null(end);
    assert_true(end - line + 4 <= KS_LOG_LINE_MAX);
    assert_int_equal((unsigned char)end[-2], 0xc3);
    assert_int_equal((unsigned char)end[-1], 0xa9);
  }
  assert_int_equal(count_lines(s), 2);
  free(s);
  free(big);
}

static void test_newlines_stay_one_line(void **state)
{
  fixture_t *f = *state;
  ks_log_info("t", "inject", "v=%s", "x\nts=forged level=error\r");
  char *s = slurp(f->path, NULL);
  assert_int_equal(count_lines(s), 1);
  assert_non_null(strstr(s, "v=x ts=forged level=error \n"));
  free(s);
}

static void test_errno_preserved(void **state)
{
  (void)state;
  errno = EXDEV;
  ks_log_info("t", "keep_errno", NULL);
  assert_int_equal(errno, EXDEV);
}

static void test_reopen(void **state)
{
  fixture_t *f = *state;
  char rotated[300], bad[300];
  snprintf(rotated, sizeof rotated, "%s.1", f->path);
  ks_log_info("t", "first", NULL);
  assert_int_equal(rename(f->path, rotated), 0);
  ks_log_info("t", "second", NULL); /* still the old (renamed) file */
  assert_int_equal(ks_log_open(f->path), 0);
  ks_log_info("t", "third", NULL);
  snprintf(bad, sizeof bad, "%s/missing/log", f->dir);
  assert_int_equal(ks_log_open(bad), -ENOENT);
  ks_log_info("t", "fourth", NULL); /* a failed reopen keeps the sink */
  char *old = slurp(rotated, NULL), *cur = slurp(f->path, NULL);
  assert_int_equal(count_lines(old), 2);
  assert_non_null(strstr(old, "event=second\n"));
  assert_int_equal(count_lines(cur), 2);
  assert_non_null(strstr(cur, "event=third\n"));
  assert_non_null(strstr(cur, "event=fourth\n"));
  struct stat st;
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 0777 & ~0640, 0);
  free(old);
  free(cur);
}

static void test_close_and_stderr(void **state)
{
  fixture_t *f = *state;
  ks_log_info("t", "to_file", NULL);
  ks_log_close();
  ks_log_debug("t", "to_stderr", NULL); /* shows in the test output */
  assert_int_equal(ks_log_open("-"), 0);
  assert_int_equal(ks_log_open(NULL), 0);
  char *s = slurp(f->path, NULL);
  assert_int_equal(count_lines(s), 1);
  free(s);
}

/* ---- threads: whole lines while the file is being reopened --------------- */

#define THREADS 4
#define LINES_PER_THREAD 2000

static void *log_thread(void *arg)
{
  int id = (int)(intptr_t)arg;
  char pad[600];
  for (int i = 0; i < LINES_PER_THREAD; i++) {
    int n = (i * 37 + id) % (int)sizeof pad;
    memset(pad, 'a' + id, (size_t)n);
    pad[n] = '\0';
    ks_log_info("t", "spam", "thread=%d i=%d pad=%s end=1", id, i, pad);
  }
  return NULL;
}

static void *rotate_thread(void *arg)
{
  fixture_t *f = arg;
  char rotated[300];
  for (int i = 0; i < 20; i++) {
    snprintf(rotated, sizeof rotated, "%s.%d", f->path, i);
    rename(f->path, rotated);
    ks_log_open(f->path);
    usleep(200);
  }
  return NULL;
}

static size_t check_spam_file(const char *path)
{
  char *s = slurp(path, NULL);
  size_t lines = 0;
  for (char *line = s; *line; line = strchr(line, '\n') + 1) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_matches(line, "^ts=[^ ]+ level=info comp=t event=spam thread=[0-3] "
                         "i=[0-9]+ pad=[a-d]* end=1$");
    *nl = '\n';
    lines++;
  }
  free(s);
  return lines;
}

static void test_threads_whole_lines(void **state)
{
  fixture_t *f = *state;
  pthread_t t[THREADS], rot;
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(
        pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i), 0);
  assert_int_equal(pthread_create(&rot, NULL, rotate_thread, f), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  pthread_join(rot, NULL);
  size_t total = check_spam_file(f->path);
  char rotated[300];
  for (int i = 0; i < 20; i++) {
    snprintf(rotated, sizeof rotated, "%s.%d", f->path, i);
    if (access(rotated, F_OK) == 0)
      total += check_spam_file(rotated);
  }
  assert_int_equal(total, THREADS * LINES_PER_THREAD);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
      cmocka_unit_test(test_level_names),
      cmocka_unit_test(test_quote),
      cmocka_unit_test(test_quote_truncates),
      cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncation_utf8, setup, teardown),
      cmocka_unit_test_setup_teardown(test_newlines_stay_one_line, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_and_stderr, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads_whole_lines, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
