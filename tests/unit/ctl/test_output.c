/*
 * test_output.c — the admin CLI's output module (ks/ctl_output.h): display
 * width of UTF-8 text, table alignment with wide and combining characters,
 * records, JSON escaping and refusal of invalid UTF-8 (parsed back with
 * yajl_tree), and the progress bar in both modes.  Output goes to memory
 * streams (open_memstream) and is compared byte for byte.
 */
#include "ks/ctl_output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

typedef struct mem {
  FILE *f;
  char *buf;
  size_t len;
} mem_t;

static void mem_open(mem_t *m)
{
  m->buf = NULL;
  m->len = 0;
  m->f = open_memstream(&m->buf, &m->len);
  assert_non_null(m->f);
}

/* Close the stream; the text stays in m->buf (caller frees). */
static const char *mem_text(mem_t *m)
{
  assert_int_equal(fclose(m->f), 0);
  return m->buf;
}

static void table_make(ks_table_t *t, size_t ncols, const char *const *h,
                       const char *const *cells, size_t nrows)
{
  assert_int_equal(ks_table_init(t, ncols, h), 0);
  for (size_t r = 0; r < nrows; r++)
    assert_int_equal(ks_table_add(t, cells + r * ncols), 0);
}

static void test_width(void **state)
{
  (void)state;
  assert_int_equal(ks_text_width("", 0), 0);
  assert_int_equal(ks_text_width("abc", 3), 3);
  assert_int_equal(ks_text_width("caf\xc3\xa9", 5), 4);  /* café */
  assert_int_equal(ks_text_width("cafe\xcc\x81", 6), 4); /* e + ́ */
  assert_int_equal(ks_text_width("\xe6\x97\xa5\xe6\x9c\xac", 6), 4); /* 日本 */
  assert_int_equal(ks_text_width("\xf0\x9f\x98\x80", 4), 2);         /* emoji */
  assert_int_equal(ks_text_width("\xff\xfe", 2), 2);     /* invalid */
  assert_int_equal(ks_text_width("\xc0\xaf", 2), 2);     /* overlong */
  assert_int_equal(ks_text_width("\xed\xa0\x80", 3), 3); /* surrogate */
  assert_int_equal(ks_text_width("\xe6\x97", 2), 2);     /* truncated */
}

static void test_table_aligned_utf8(void **state)
{
  (void)state;
  static const char *const h[] = {"name", "id", "note"};
  static const char *const cells[] = {
      "\xe6\x97\xa5\xe6\x9c\xac",
      "1",
      "wide", /* 日本: width 4 */
      "caf\xc3\xa9",
      "22",
      "", /* café: width 4 */
      "abcdef",
      "3",
      "x",
  };
  ks_table_t t;
  table_make(&t, 3, h, cells, 3);
  mem_t m;
  mem_open(&m);
  assert_int_equal(ks_table_write(&t, KS_OUT_HUMAN, m.f), 0);
  assert_string_equal(mem_text(&m), "NAME    ID  NOTE\n"
                                    "\xe6\x97\xa5\xe6\x9c\xac    1   wide\n"
                                    "caf\xc3\xa9    22  \n"
                                    "abcdef  3   x\n");
  free(m.buf);
  ks_table_free(&t);
}

static void test_table_empty_and_record(void **state)
{
  (void)state;
  static const char *const h[] = {"access_key_id", "tenant"};
  static const char *const cells[] = {"KS123", NULL};
  ks_table_t t;
  table_make(&t, 2, h, cells, 0);
  mem_t m;
  mem_open(&m);
  assert_int_equal(ks_table_write(&t, KS_OUT_HUMAN, m.f), 0);
  assert_int_equal(ks_table_write_record(&t, KS_OUT_HUMAN, m.f), -EINVAL);
  assert_string_equal(mem_text(&m), "ACCESS_KEY_ID  TENANT\n");
  free(m.buf);
  assert_int_equal(ks_table_add(&t, cells), 0);
  mem_open(&m);
  assert_int_equal(ks_table_write_record(&t, KS_OUT_HUMAN, m.f), 0);
  assert_string_equal(mem_text(&m), "access_key_id  KS123\n"
                                    "tenant         \n");
  free(m.buf);
  ks_table_free(&t);
  ks_table_free(&t); /* idempotent */
}

static void test_table_grows(void **state)
{
  (void)state;
  static const char *const h[] = {"n"};
  ks_table_t t;
  assert_int_equal(ks_table_init(&t, 1, h), 0);
  char buf[16];
  for (int i = 0; i < 100; i++) {
    snprintf(buf, sizeof(buf), "%d", i);
    const char *row[] = {buf};
    assert_int_equal(ks_table_add(&t, row), 0);
  }
  assert_int_equal(t.nrows, 100);
  mem_t m;
  mem_open(&m);
  assert_int_equal(ks_table_write(&t, KS_OUT_JSON, m.f), 0);
  const char *s = mem_text(&m);
  assert_non_null(strstr(s, "{\"n\":\"99\"}]\n"));
  free(m.buf);
  ks_table_free(&t);
}

/* Parse the JSON text and return the tree (caller frees). */
static yajl_val json_parse(const char *s)
{
  char err[128];
  yajl_val v = yajl_tree_parse(s, err, sizeof(err));
  if (v == NULL)
    fail_msg("JSON does not parse: %s: %s", err, s);
  return v;
}

static void test_json_escaping(void **state)
{
  (void)state;
  static const char *const h[] = {"key", "value"};
  static const char *const cells[] = {
      "quote\"back\\slash",
      "tab\tnl\nctl\x01 /",
      "\xe6\x97\xa5\xe6\x9c\xac",
      "</script>",
  };
  ks_table_t t;
  table_make(&t, 2, h, cells, 2);
  mem_t m;
  mem_open(&m);
  assert_int_equal(ks_table_write(&t, KS_OUT_JSON, m.f), 0);
  const char *s = mem_text(&m);
  assert_non_null(strstr(s, "\"quote\\\"back\\\\slash\""));
  assert_non_null(strstr(s, "\\t"));
  assert_non_null(strstr(s, "\\n"));
  assert_null(strchr(s, '\x01')); /* control characters escaped */
  yajl_val v = json_parse(s);
  assert_true(YAJL_IS_ARRAY(v));
  assert_int_equal(v->u.array.len, 2);
  const char *p0[] = {"key", NULL}, *p1[] = {"value", NULL};
  yajl_val r0 = v->u.array.values[0], r1 = v->u.array.values[1];
  assert_string_equal(YAJL_GET_STRING(yajl_tree_get(r0, p0, yajl_t_string)),
                      cells[0]);
  assert_string_equal(YAJL_GET_STRING(yajl_tree_get(r0, p1, yajl_t_string)),
                      cells[1]);
  assert_string_equal(YAJL_GET_STRING(yajl_tree_get(r1, p0, yajl_t_string)),
                      cells[2]);
  yajl_tree_free(v);
  free(m.buf);

  mem_open(&m); /* a record is one object */
  assert_int_equal(ks_table_write_record(&t, KS_OUT_JSON, m.f), 0);
  v = json_parse(mem_text(&m));
  assert_true(YAJL_IS_OBJECT(v));
  assert_int_equal(v->u.object.len, 2);
  yajl_tree_free(v);
  free(m.buf);
  ks_table_free(&t);
}

static void test_json_invalid_utf8(void **state)
{
  (void)state;
  static const char *const h[] = {"k"};
  static const char *const cells[] = {"bad\xff"};
  ks_table_t t;
  table_make(&t, 1, h, cells, 1);
  mem_t m;
  mem_open(&m);
  assert_int_equal(ks_table_write(&t, KS_OUT_JSON, m.f), -EINVAL);
  assert_int_equal(ks_table_write_record(&t, KS_OUT_JSON, m.f), -EINVAL);
  assert_string_equal(mem_text(&m), ""); /* nothing half-printed */
  free(m.buf);
  ks_table_free(&t);
}

static void test_progress_lines(void **state)
{
  (void)state;
  mem_t m;
  mem_open(&m);
  ks_progress_t p;
  ks_progress_init(&p, m.f, "scan", 200, KS_PROGRESS_LINES);
  for (uint64_t i = 0; i <= 250; i++) /* past the end: clamped */
    ks_progress_update(&p, i);
  ks_progress_finish(&p);
  const char *s = mem_text(&m);
  assert_null(strchr(s, '\r'));
  assert_true(strncmp(s, "scan: 0% (0/200)\nscan: 10% (20/200)\n", 36) == 0);
  const char *last = "scan: 100% (200/200)\n";
  assert_string_equal(s + strlen(s) - strlen(last), last);
  int lines = 0;
  for (const char *c = s; *c; c++)
    lines += *c == '\n';
  assert_int_equal(lines, 11); /* 0%, 10%, ..., 100%: each once */
  free(m.buf);
}

static void test_progress_bar(void **state)
{
  (void)state;
  mem_t m;
  mem_open(&m);
  ks_progress_t p;
  ks_progress_init(&p, m.f, "copy", 4, KS_PROGRESS_BAR);
  ks_progress_update(&p, 1);
  ks_progress_update(&p, 1); /* same figure: not redrawn */
  ks_progress_update(&p, 2);
  ks_progress_finish(&p);
  const char *s = mem_text(&m);
  int draws = 0;
  for (const char *c = s; *c; c++)
    draws += *c == '\r';
  assert_int_equal(draws, 3);
  assert_non_null(
      strstr(s, "\rcopy [#######                       ]  25% 1/4"));
  assert_non_null(strstr(s, "] 100% 4/4\n"));
  free(m.buf);

  mem_open(&m); /* AUTO on a memory stream (not a terminal): lines */
  ks_progress_init(&p, m.f, "x", 0, KS_PROGRESS_AUTO);
  ks_progress_finish(&p);
  assert_string_equal(mem_text(&m), "x: 100% (0/0)\n");
  free(m.buf);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_width),
      cmocka_unit_test(test_table_aligned_utf8),
      cmocka_unit_test(test_table_empty_and_record),
      cmocka_unit_test(test_table_grows),
      cmocka_unit_test(test_json_escaping),
      cmocka_unit_test(test_json_invalid_utf8),
      cmocka_unit_test(test_progress_lines),
      cmocka_unit_test(test_progress_bar),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
