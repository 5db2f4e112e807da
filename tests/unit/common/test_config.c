/*
 * test_config.c — the schema-driven settings loader (ks/config.h).
 *
 * One representative schema (every option kind, nested and flat keys) is
 * loaded from text, from files and from argv.  Error cases compare the whole
 * message, so a change of line number, key or wording is a test failure:
 * the messages are the user interface of this module.  Run under ASan the
 * suite also proves that every path, failing ones included, frees what it
 * allocated.
 */
#include "ks/config.h"
#include "ks/err.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

typedef struct test_settings {
  char *listen;
  int64_t max_inflight;
  int64_t timeout_ms;
  int64_t cache_size;
  bool tls;
  double ratio;
  int level;
  char *name;
  char *data_dir;
} ts_t;

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const ks_opt_t schema[] = {
    {"rpc.listen", KS_OPT_STRING, "0.0.0.0:7200", 0, 0, NULL,
     "address to serve RPC on", offsetof(ts_t, listen)},
    {"rpc.max_inflight", KS_OPT_INT, "256", 1, 65536, NULL,
     "requests in flight per connection", offsetof(ts_t, max_inflight)},
    {"rpc.timeout", KS_OPT_DURATION_MS, "2s", 1, 3600000, NULL,
     "request timeout", offsetof(ts_t, timeout_ms)},
    {"cache.size", KS_OPT_SIZE, "64MiB", 0, 0, NULL, "cache size",
     offsetof(ts_t, cache_size)},
    {"tls.enabled", KS_OPT_BOOL, NULL, 0, 0, NULL, "serve TLS",
     offsetof(ts_t, tls)},
    {"repair.ratio", KS_OPT_DOUBLE, "0.5", 0, 1, NULL, "share of bandwidth",
     offsetof(ts_t, ratio)},
    {"log.level", KS_OPT_ENUM, "info", 0, 0, levels, "least severe level",
     offsetof(ts_t, level)},
    {"node.name", KS_OPT_STRING, NULL, 0, 0, NULL, "node name",
     offsetof(ts_t, name)},
    {"data_dir", KS_OPT_STRING, "/var/lib/kiseki", 0, 0, NULL, "data root",
     offsetof(ts_t, data_dir)},
};
#define N KS_NELEM(schema)

static const ks_cfg_loader_t loader = {.schema = schema, .n = N};

/* Load text as "t.json"; the result code, with s and err filled. */
static int load_text(const char *json, ts_t *s, char *err, size_t size)
{
  memset(s, 0xA5, sizeof *s); /* garbage: the loader must not free it */
  return ks_cfg_load_buffer(&loader, "t.json", json, strlen(json), s, err,
                            size);
}

/* After a failed load nothing is owned and the error is `want`. */
static void expect_error(const char *json, const char *want)
{
  ts_t s;
  char err[512];
  int rc = load_text(json, &s, err, sizeof err);
  if (rc != KS_ECONFIG)
    fail_msg("rc %d for %s", rc, json);
  assert_string_equal(err, want);
  assert_null(s.listen);
  assert_null(s.name);
  assert_null(s.data_dir);
  ks_cfg_free(schema, N, &s); /* harmless after failure */
}

static void assert_defaults(const ts_t *s)
{
  assert_string_equal(s->listen, "0.0.0.0:7200");
  assert_int_equal(s->max_inflight, 256);
  assert_int_equal(s->timeout_ms, 2000);
  assert_int_equal(s->cache_size, 64 << 20);
  assert_false(s->tls);
  assert_true(s->ratio == 0.5);
  assert_int_equal(s->level, 1);
  assert_null(s->name);
  assert_string_equal(s->data_dir, "/var/lib/kiseki");
}

/* ---- files -------------------------------------------------------------- */

typedef struct tmp {
  char dir[64];
  char path[256];
} tmp_t;

static tmp_t tmp;

static int tmp_setup(void **state)
{
  tmp_t *t = &tmp;
  snprintf(t->dir, sizeof t->dir, "/tmp/ks_test_config_XXXXXX");
  if (mkdtemp(t->dir) == NULL)
    return -1;
  snprintf(t->path, sizeof t->path, "%.63s/node.json", t->dir);
  *state = t;
  return 0;
}

static int tmp_teardown(void **state)
{
  tmp_t *t = *state;
  unlink(t->path);
  return rmdir(t->dir);
}

static void write_file(const char *path, const char *text)
{
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  assert_int_equal(fputs(text, fp) >= 0, 1);
  assert_int_equal(fclose(fp), 0);
}

/* ---- success paths ------------------------------------------------------ */

static void test_defaults_only(void **state)
{
  (void)state;
  ts_t s;
  char err[256];
  char *argv[] = {"prog", NULL};
  assert_int_equal(ks_cfg_load(schema, N, NULL, 1, argv, &s, err, sizeof err),
                   0);
  assert_string_equal(err, "");
  assert_defaults(&s);
  ks_cfg_free(schema, N, &s);
  assert_null(s.listen);
  ks_cfg_free(schema, N, &s); /* idempotent */
}

static const char *const full_file =
    "// node configuration\n"
    "{\n"
    "  /* the RPC section,\n"
    "     nested */\n"
    "  \"rpc\": {\n"
    "    \"listen\": \"10.0.0.1:7200\", // trailing comment\n"
    "    \"max_inflight\": 65536,\n"
    "    \"timeout\": \"1m\"\n"
    "  },\n"
    "  \"cache.size\": \"4 GiB\",\n" /* flat dotted key */
    "  \"tls\": {\"enabled\": true},\n"
    "  \"repair\": {\"ratio\": 1},\n" /* integer for a double */
    "  \"log\": {\"level\": \"warn\"},\n"
    "  \"node\": {\"name\": \"n\\u00e9-1\"},\n"
    "  \"data_dir\": \"/data\"\n"
    "}\n";

static void assert_full_file(const ts_t *s)
{
  assert_string_equal(s->listen, "10.0.0.1:7200");
  assert_int_equal(s->max_inflight, 65536);
  assert_int_equal(s->timeout_ms, 60000);
  assert_int_equal(s->cache_size, 4LL << 30);
  assert_true(s->tls);
  assert_true(s->ratio == 1.0);
  assert_int_equal(s->level, 2);
  assert_string_equal(s->name, "n\xc3\xa9-1");
  assert_string_equal(s->data_dir, "/data");
}

static void test_file_comments_nesting(void **state)
{
  (void)state;
  ts_t s;
  char err[256];
  assert_int_equal(load_text(full_file, &s, err, sizeof err), 0);
  assert_full_file(&s);
  ks_cfg_free(schema, N, &s);
}

static void test_null_unsets_string(void **state)
{
  (void)state;
  ts_t s;
  char err[256];
  assert_int_equal(
      load_text("{\"rpc\": {\"listen\": null}}", &s, err, sizeof err), 0);
  assert_null(s.listen);
  assert_string_equal(s.data_dir, "/var/lib/kiseki");
  ks_cfg_free(schema, N, &s);
}

static void test_empty_object_keeps_defaults(void **state)
{
  (void)state;
  ts_t s;
  char err[256];
  assert_int_equal(load_text("{ \"rpc\": {} } // nothing", &s, err, sizeof err),
                   0);
  assert_defaults(&s);
  ks_cfg_free(schema, N, &s);
}

static void test_precedence(void **state)
{
  tmp_t *t = *state;
  write_file(t->path, "{\"rpc\": {\"listen\": \"file:1\", \"max_inflight\": 7},"
                      " \"log\": {\"level\": \"error\"}}");
  char *argv[] = {"prog",  "--rpc.listen=flag:2", "--log.level",
                  "debug", "--tls.enabled",       "--cache.size",
                  "1G",    "--node.name=",        "--repair.ratio=0.25",
                  NULL};
  ts_t s;
  char err[256];
  int argc = (int)KS_NELEM(argv) - 1;
  assert_int_equal(
      ks_cfg_load(schema, N, t->path, argc, argv, &s, err, sizeof err), 0);
  assert_string_equal(s.listen, "flag:2"); /* flag over file */
  assert_int_equal(s.max_inflight, 7);     /* file over default */
  assert_int_equal(s.timeout_ms, 2000);    /* default */
  assert_int_equal(s.level, 0);            /* "--key value" form */
  assert_true(s.tls);                      /* bare bool flag */
  assert_int_equal(s.cache_size, 1LL << 30);
  assert_string_equal(s.name, ""); /* empty value */
  assert_true(s.ratio == 0.25);
  ks_cfg_free(schema, N, &s);
}

static void test_config_flag_overrides_path(void **state)
{
  tmp_t *t = *state;
  write_file(t->path, "{\"rpc\": {\"max_inflight\": 9}}");
  char cfg[300];
  snprintf(cfg, sizeof cfg, "--config=%s", t->path);
  char *argv1[] = {"prog", "--config", t->path, "--tls.enabled=no", NULL};
  char *argv2[] = {"prog", cfg, NULL};
  ts_t s;
  char err[256];
  assert_int_equal(ks_cfg_load(schema, N, "/nonexistent/node.json", 4, argv1,
                               &s, err, sizeof err),
                   0);
  assert_int_equal(s.max_inflight, 9);
  assert_false(s.tls);
  ks_cfg_free(schema, N, &s);
  assert_int_equal(ks_cfg_load(schema, N, NULL, 2, argv2, &s, err, sizeof err),
                   0);
  assert_int_equal(s.max_inflight, 9);
  ks_cfg_free(schema, N, &s);
}

static void test_parse_duration(void **state)
{
  (void)state;
  static const struct {
    const char *in;
    int64_t ms;
  } ok[] = {{"0", 0},        {"500", 500},     {"500ms", 500},
            {"2s", 2000},    {"1m", 60000},    {"3 min", 180000},
            {"1h", 3600000}, {"2d", 172800000}};
  static const char *const bad[] = {"",
                                    "s",
                                    "-1s",
                                    "1.5s",
                                    "2S",
                                    "1x",
                                    " 1s",
                                    "1s ",
                                    "1m30s",
                                    "9223372036854775807s",
                                    "99999999999999999999"};
  int64_t v;
  for (size_t i = 0; i < KS_NELEM(ok); i++) {
    assert_int_equal(ks_cfg_parse_duration_ms(ok[i].in, &v), 0);
    assert_int_equal(v, ok[i].ms);
  }
  for (size_t i = 0; i < KS_NELEM(bad); i++) {
    v = 42;
    if (ks_cfg_parse_duration_ms(bad[i], &v) != KS_ECONFIG)
      fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(v, 42);
  }
  assert_int_equal(ks_cfg_parse_duration_ms(NULL, &v), KS_ECONFIG);
}

static void test_parse_size(void **state)
{
  (void)state;
  static const struct {
    const char *in;
    int64_t bytes;
  } ok[] = {{"0", 0},
            {"4096", 4096},
            {"100B", 100},
            {"4K", 4096},
            {"4KiB", 4096},
            {"4kb", 4000},
            {"4 MiB", 4 << 20},
            {"1G", 1LL << 30},
            {"1gib", 1LL << 30},
            {"1GB", 1000000000},
            {"2TiB", 2LL << 40},
            {"1T", 1LL << 40},
            {"1TB", 1000000000000LL},
            {"3PiB", 3LL << 50},
            {"9223372036854775807", INT64_MAX}};
  static const char *const bad[] = {"",        "G",   "-1",
                                    "1.5G",    "1Gi", "1 G B",
                                    "8192PiB", "4XB", "9223372036854775808"};
  int64_t v;
  for (size_t i = 0; i < KS_NELEM(ok); i++) {
    assert_int_equal(ks_cfg_parse_size(ok[i].in, &v), 0);
    assert_int_equal(v, ok[i].bytes);
  }
  for (size_t i = 0; i < KS_NELEM(bad); i++) {
    if (ks_cfg_parse_size(bad[i], &v) != KS_ECONFIG)
      fail_msg("accepted \"%s\"", bad[i]);
  }
}

static void test_durations_sizes_in_file(void **state)
{
  (void)state;
  ts_t s;
  char err[256];
  assert_int_equal(load_text("{\"rpc\": {\"timeout\": 1500},"
                             " \"cache\": {\"size\": 123456}}",
                             &s, err, sizeof err),
                   0);
  assert_int_equal(s.timeout_ms, 1500);
  assert_int_equal(s.cache_size, 123456);
  ks_cfg_free(schema, N, &s);
  assert_int_equal(load_text("{\"rpc\": {\"timeout\": \"1h\"},"
                             " \"cache\": {\"size\": \"512KiB\"}}",
                             &s, err, sizeof err),
                   0);
  assert_int_equal(s.timeout_ms, 3600000); /* max is inclusive */
  assert_int_equal(s.cache_size, 512 << 10);
  ks_cfg_free(schema, N, &s);
}

/* ---- every error kind, with its exact line ------------------------------ */

static void test_unknown_keys(void **state)
{
  (void)state;
  expect_error("{\n  \"rpc\": {\n    \"lisen\": \"x\"\n  }\n}",
               "t.json:3: rpc.lisen: unknown key (did you mean rpc.listen?)");
  expect_error("{\n  // a comment\n  \"bogus\": 1\n}",
               "t.json:3: bogus: unknown key");
  expect_error("{\"rpc\": {\"listen\": {\"host\": \"x\"}}}",
               "t.json:1: rpc.listen: expected string, got object");
  expect_error("{\n\n\"rpc\": {\"\": 1}}", "t.json:3: rpc.: unknown key");
  expect_error("{\"rpc.\": 1}", "t.json:1: rpc.: unknown key");
}

static void test_wrong_types(void **state)
{
  (void)state;
  expect_error("{\n\"rpc\": {\n\n  \"max_inflight\": \"lots\"}}",
               "t.json:4: rpc.max_inflight: expected integer in 1..65536, "
               "got string \"lots\"");
  expect_error("{\"rpc\": {\"max_inflight\": 1.5}}",
               "t.json:1: rpc.max_inflight: expected integer in 1..65536, "
               "got number 1.5");
  expect_error("{\"tls\": {\"enabled\": 1}}",
               "t.json:1: tls.enabled: expected true or false, got integer 1");
  expect_error("{\"tls\": {\"enabled\": \"true\"}}",
               "t.json:1: tls.enabled: expected true or false, got string "
               "\"true\"");
  expect_error("{\"rpc\": {\"max_inflight\": null}}",
               "t.json:1: rpc.max_inflight: expected integer in 1..65536, "
               "got null");
  expect_error("{\"rpc\": {\"listen\": [\"a\", \"b\"]}}",
               "t.json:1: rpc.listen: expected string, got array");
  expect_error("{\"rpc\": {\"listen\": 7200}}",
               "t.json:1: rpc.listen: expected string, got integer 7200");
  expect_error("{\"repair\": {\"ratio\": \"half\"}}",
               "t.json:1: repair.ratio: expected number in 0..1, got string "
               "\"half\"");
  expect_error("{\"log\": {\"level\": 2}}",
               "t.json:1: log.level: expected one of \"debug\", \"info\", "
               "\"warn\", \"error\", got integer 2");
  expect_error("{\"rpc\": {\"listen\": \"a\\u0000b\"}}",
               "t.json:1: rpc.listen: expected string, got string holding "
               "\\u0000");
}

static void test_out_of_range(void **state)
{
  (void)state;
  expect_error("{\"rpc\": {\"max_inflight\": 70000}}",
               "t.json:1: rpc.max_inflight: expected integer in 1..65536, "
               "got integer 70000");
  expect_error("{\"rpc\": {\"max_inflight\": 0}}",
               "t.json:1: rpc.max_inflight: expected integer in 1..65536, "
               "got integer 0");
  expect_error("{\"repair\": {\"ratio\": 1.01}}",
               "t.json:1: repair.ratio: expected number in 0..1, got number "
               "1.01");
  expect_error("{\"rpc\": {\"timeout\": \"2h\"}}",
               "t.json:1: rpc.timeout: expected duration in 1..3600000 ms "
               "(integer ms, or \"500ms\", \"2s\", \"1m\"), got string \"2h\"");
  expect_error("{\"rpc\": {\"timeout\": -5}}",
               "t.json:1: rpc.timeout: expected duration in 1..3600000 ms "
               "(integer ms, or \"500ms\", \"2s\", \"1m\"), got integer -5");
}

static void test_bad_values(void **state)
{
  (void)state;
  expect_error("{\n  \"log\": {\"level\": \"loud\"}}",
               "t.json:2: log.level: expected one of \"debug\", \"info\", "
               "\"warn\", \"error\", got string \"loud\"");
  expect_error("{\"rpc\": {\"timeout\": \"2 fortnights\"}}",
               "t.json:1: rpc.timeout: expected duration in 1..3600000 ms "
               "(integer ms, or \"500ms\", \"2s\", \"1m\"), got string \"2 "
               "fortnights\"");
  expect_error("{\"cache\": {\"size\": \"4XB\"}}",
               "t.json:1: cache.size: expected size (integer bytes, or "
               "\"4KiB\", \"1G\"), got string \"4XB\"");
  expect_error("{\"cache\": {\"size\": -1}}",
               "t.json:1: cache.size: expected size (integer bytes, or "
               "\"4KiB\", \"1G\"), got integer -1");
}

static void test_structure_errors(void **state)
{
  (void)state;
  expect_error("{\n  \"rpc.listen\": \"a\",\n  \"rpc\": {\"listen\": \"b\"}\n}",
               "t.json:3: rpc.listen: set twice (first at line 2)");
  expect_error("{\"rpc\": {\"timeout\": 5, \"timeout\": 6}}",
               "t.json:1: rpc.timeout: set twice (first at line 1)");
  expect_error("{\n\"rpc\": 5}",
               "t.json:2: rpc: expected object (keys rpc.*), got integer 5");
  expect_error("[1, 2]", "t.json:1: expected an object at the top, got array");
  expect_error("\n\n\"x\"", "t.json:3: expected an object at the top, got "
                            "string \"x\"");
}

static void test_invalid_json(void **state)
{
  (void)state;
  expect_error("{\n  \"rpc\": {\n    \"listen\": \"a\"\n    \"timeout\": 1}}",
               "t.json:4:7: parse error: after key and value, inside map, "
               "I expect ',' or '}'");
  expect_error("{\n  \"rpc\": {\n    \"listen\": \"a\",\n",
               "t.json:4:1: parse error: premature EOF");
  expect_error("", "t.json:1:1: parse error: premature EOF");
  expect_error("  // only a comment\n",
               "t.json:2:1: parse error: premature EOF");
  expect_error("{\n 'rpc': 1}",
               "t.json:2:3: lexical error: invalid char in json text.");
  expect_error(
      "{\"a\": 1,}",
      "t.json:1:10: parse error: invalid object key (must be a string)");
  expect_error("{\"a\": 1} {}", "t.json:1:11: parse error: trailing garbage");
  expect_error("{\"a\": \"\xff\"}",
               "t.json:1:9: lexical error: invalid bytes in UTF8 string.");
  expect_error("{\n\n  \"x\": 99999999999999999999}",
               "t.json:3:8: parse error: integer overflow");
  expect_error("{/* unterminated", "t.json:1:17: parse error: premature EOF");
}

static void test_nesting_limit(void **state)
{
  (void)state;
  char deep[200];
  memset(deep, '[', 100);
  deep[100] = '\0';
  expect_error(deep, "t.json:1:34: nesting too deep");
}

static void test_flag_errors(void **state)
{
  (void)state;
  static const struct {
    const char *arg, *arg2, *want;
  } cases[] = {
      {"--rpc.lisen=1", NULL,
       "command line: --rpc.lisen: unknown option (did you mean "
       "--rpc.listen?)"},
      {"--nonsense", NULL, "command line: --nonsense: unknown option"},
      {"--rpc.max_inflight=lots", NULL,
       "command line: --rpc.max_inflight: expected integer in 1..65536, got "
       "\"lots\""},
      {"--rpc.max_inflight", "0",
       "command line: --rpc.max_inflight: expected integer in 1..65536, got "
       "\"0\""},
      {"--rpc.timeout", NULL, "command line: --rpc.timeout: missing value"},
      {"--tls.enabled=maybe", NULL,
       "command line: --tls.enabled: expected true or false, got \"maybe\""},
      {"--repair.ratio=nan", NULL,
       "command line: --repair.ratio: expected number in 0..1, got \"nan\""},
      {"--log.level=LOUD", NULL,
       "command line: --log.level: expected one of \"debug\", \"info\", "
       "\"warn\", \"error\", got \"LOUD\""},
      {"stray", NULL, "command line: unexpected argument \"stray\""},
      {"--", NULL, "command line: unexpected argument \"--\""},
      {"--config", NULL, "command line: --config: missing value (a file path)"},
      {"--config=/nonexistent/x.json", NULL,
       "/nonexistent/x.json: cannot open: No such file or directory"},
  };
  for (size_t i = 0; i < KS_NELEM(cases); i++) {
    char *argv[] = {"prog", (char *)cases[i].arg, (char *)cases[i].arg2, NULL};
    int argc = cases[i].arg2 ? 3 : 2;
    ts_t s;
    char err[256];
    int rc = ks_cfg_load(schema, N, NULL, argc, argv, &s, err, sizeof err);
    assert_int_equal(rc, KS_ECONFIG);
    assert_string_equal(err, cases[i].want);
    assert_null(s.listen);
    assert_null(s.data_dir);
  }
}

static void test_file_errors_name_path(void **state)
{
  tmp_t *t = *state;
  write_file(t->path,
             "{\n  \"rpc\": {\n    \"max_inflight\": \"lots\"\n  }\n}\n");
  char *argv[] = {"prog", NULL};
  char want[400], err[400];
  ts_t s;
  snprintf(want, sizeof want,
           "%s:3: rpc.max_inflight: expected integer in 1..65536, got string "
           "\"lots\"",
           t->path);
  assert_int_equal(
      ks_cfg_load(schema, N, t->path, 1, argv, &s, err, sizeof err),
      KS_ECONFIG);
  assert_string_equal(err, want);
  assert_int_equal(ks_cfg_load(schema, N, t->dir, 1, argv, &s, err, sizeof err),
                   KS_ECONFIG);
  snprintf(want, sizeof want, "%s: cannot read: Is a directory", t->dir);
  assert_string_equal(err, want);
}

static void test_file_too_large(void **state)
{
  tmp_t *t = *state;
  FILE *fp = fopen(t->path, "w");
  assert_non_null(fp);
  fputs("{\"data_dir\": \"", fp);
  for (unsigned i = 0; i < KS_CFG_FILE_MAX; i++)
    fputc('x', fp);
  fputs("\"}", fp);
  fclose(fp);
  char *argv[] = {"prog", NULL};
  char want[400], err[400];
  ts_t s;
  assert_int_equal(
      ks_cfg_load(schema, N, t->path, 1, argv, &s, err, sizeof err),
      KS_ECONFIG);
  snprintf(want, sizeof want, "%s: larger than 1048576 bytes", t->path);
  assert_string_equal(err, want);
}

static void test_bad_default(void **state)
{
  (void)state;
  int64_t v;
  const ks_opt_t bad[] = {{"x", KS_OPT_DURATION_MS, "soon", 0, 0, NULL, "", 0}};
  const ks_cfg_loader_t ld = {.schema = bad, .n = 1};
  char err[256];
  assert_int_equal(
      ks_cfg_load_buffer(&ld, "t.json", "{}", 2, &v, err, sizeof err),
      KS_ECONFIG);
  assert_string_equal(err, "default: x: expected duration (integer ms, or "
                           "\"500ms\", \"2s\", \"1m\"), got \"soon\"");
}

static void test_error_buffer_small(void **state)
{
  (void)state;
  ts_t s;
  char err[12];
  assert_int_equal(load_text("{\"bogus\": 1}", &s, err, sizeof err),
                   KS_ECONFIG);
  assert_string_equal(err, "t.json:1: b");
  assert_int_equal(load_text("{\"bogus\": 1}", &s, NULL, 0), KS_ECONFIG);
  assert_int_equal(load_text("{", &s, err, 1), KS_ECONFIG);
  assert_string_equal(err, "");
}

/* ---- help, version, dump, sections -------------------------------------- */

/* --help and --version print to stdout: keep the test output readable. */
static int silence_stdout(void)
{
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  int null = open("/dev/null", O_WRONLY);
  assert_true(saved >= 0 && null >= 0);
  dup2(null, STDOUT_FILENO);
  close(null);
  return saved;
}

static void restore_stdout(int saved)
{
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
}

static void test_help_and_version(void **state)
{
  (void)state;
  int saved = silence_stdout();
  ts_t s;
  char err[256];
  char *help[] = {"/usr/bin/kiseki-test", "--rpc.listen=x", "--help", NULL};
  char *h[] = {"prog", "-h", "--bogus", NULL}; /* help wins over errors */
  char *version[] = {"prog", "--version", NULL};
  assert_int_equal(ks_cfg_load(schema, N, NULL, 3, help, &s, err, sizeof err),
                   KS_CFG_HELP);
  assert_null(s.listen);
  assert_int_equal(ks_cfg_load(schema, N, NULL, 3, h, &s, err, sizeof err),
                   KS_CFG_HELP);
  ks_cfg_loader_t ld = loader;
  ld.version = "1.2.3";
  assert_int_equal(ks_cfg_load_ex(&ld, 2, version, &s, err, sizeof err),
                   KS_CFG_VERSION);
  assert_null(s.data_dir);
  restore_stdout(saved);
}

static void test_usage_text(void **state)
{
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&text, &len);
  assert_non_null(fp);
  ks_cfg_usage(schema, N, "kiseki-test", fp);
  fclose(fp);
  assert_non_null(strstr(text, "usage: kiseki-test [--config PATH]"));
  assert_non_null(strstr(text, "  --rpc.max_inflight=INT  (1..65536)\n"
                               "      requests in flight per connection "
                               "(default: 256)\n"));
  assert_non_null(strstr(text, "  --log.level=debug|info|warn|error\n"));
  assert_non_null(strstr(text, "  --tls.enabled[=BOOL]\n      serve TLS "
                               "(default: false)\n"));
  assert_non_null(strstr(text, "  --rpc.timeout=DURATION  (1..3600000 ms)\n"));
  assert_non_null(strstr(text, "node name (default: none)"));
  free(text);
}

static void test_dump_round_trip(void **state)
{
  (void)state;
  ts_t a, b;
  char err[256], *json = NULL;
  assert_int_equal(load_text(full_file, &a, err, sizeof err), 0);
  assert_int_equal(ks_cfg_dump(schema, N, &a, &json), 0);
  assert_non_null(
      strstr(json, "\"rpc\": {\n    \"listen\": \"10.0.0.1:7200\""));
  assert_non_null(strstr(json, "\"timeout\": \"1m\""));
  assert_non_null(strstr(json, "\"size\": \"4GiB\""));
  assert_non_null(strstr(json, "\"level\": \"warn\""));
  assert_int_equal(load_text(json, &b, err, sizeof err), 0);
  assert_full_file(&b);
  ks_cfg_free(schema, N, &a);
  ks_cfg_free(schema, N, &b);
  free(json);
  /* Defaults, with a NULL string and values with no exact larger unit. */
  assert_int_equal(load_text("{\"rpc\": {\"timeout\": 1500}, "
                             "\"cache\": {\"size\": 1000}}",
                             &a, err, sizeof err),
                   0);
  assert_int_equal(ks_cfg_dump(schema, N, &a, &json), 0);
  assert_non_null(strstr(json, "\"name\": null"));
  assert_non_null(strstr(json, "\"timeout\": \"1500ms\""));
  assert_non_null(strstr(json, "\"size\": 1000"));
  ks_cfg_free(schema, N, &a);
  free(json);
}

static const char *const node_sections[] = {"chunkd", "meta", "s3d", NULL};

static int load_section(const char *json, const char *const *sections, ts_t *s,
                        char *err, size_t size)
{
  ks_cfg_loader_t ld = loader;
  ld.section = "chunkd";
  ld.sections = sections;
  memset(s, 0xA5, sizeof *s);
  return ks_cfg_load_buffer(&ld, "node.json", json, strlen(json), s, err, size);
}

static void test_node_sections(void **state)
{
  (void)state;
  ts_t s;
  char err[256];
  const char *file = "{\n"
                     "  \"meta\": {\"anything\": [1, 2]},\n"
                     "  \"chunkd\": {\"rpc\": {\"max_inflight\": 12}},\n"
                     "  \"s3d\": {}\n"
                     "}";
  assert_int_equal(load_section(file, node_sections, &s, err, sizeof err), 0);
  assert_int_equal(s.max_inflight, 12);
  assert_string_equal(s.listen, "0.0.0.0:7200");
  ks_cfg_free(schema, N, &s);
  assert_int_equal(load_section("{\"other\": {}}", NULL, &s, err, sizeof err),
                   0); /* no list: any object; our section absent: defaults */
  assert_defaults(&s);
  ks_cfg_free(schema, N, &s);
  assert_int_equal(load_section("{\n\"chunkd\": {\n\"rpc\": {\"bogus\": 1}}}",
                                node_sections, &s, err, sizeof err),
                   KS_ECONFIG);
  assert_string_equal(err, "node.json:3: chunkd.rpc.bogus: unknown key");
  assert_int_equal(
      load_section("{\n\"chunkdd\": {}}", node_sections, &s, err, sizeof err),
      KS_ECONFIG);
  assert_string_equal(err,
                      "node.json:2: chunkdd: unknown section (did you mean "
                      "chunkd?)");
  assert_int_equal(
      load_section("{\"fuse\": {}}", node_sections, &s, err, sizeof err),
      KS_ECONFIG);
  assert_string_equal(err, "node.json:1: fuse: unknown section");
  assert_int_equal(
      load_section("{\"meta\": 3}", node_sections, &s, err, sizeof err),
      KS_ECONFIG);
  assert_string_equal(err, "node.json:1: meta: expected object (a daemon's "
                           "section), got integer 3");
  assert_null(s.listen);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_only),
      cmocka_unit_test(test_file_comments_nesting),
      cmocka_unit_test(test_empty_object_keeps_defaults),
      cmocka_unit_test(test_null_unsets_string),
      cmocka_unit_test_setup_teardown(test_precedence, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_config_flag_overrides_path,
                                      tmp_setup, tmp_teardown),
      cmocka_unit_test(test_parse_duration),
      cmocka_unit_test(test_parse_size),
      cmocka_unit_test(test_durations_sizes_in_file),
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_structure_errors),
      cmocka_unit_test(test_invalid_json),
      cmocka_unit_test(test_nesting_limit),
      cmocka_unit_test(test_flag_errors),
      cmocka_unit_test_setup_teardown(test_file_errors_name_path, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_file_too_large, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test(test_bad_default),
      cmocka_unit_test(test_error_buffer_small),
      cmocka_unit_test(test_help_and_version),
      cmocka_unit_test(test_usage_text),
      cmocka_unit_test(test_dump_round_trip),
      cmocka_unit_test(test_node_sections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
