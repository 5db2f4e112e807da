/*
 * test_metrics.c — the metrics registry and its text exposition (0.0.4):
 * exact output for counters, gauges and histograms (cumulative buckets,
 * le="+Inf", _sum, _count), escaping of help texts and label values, number
 * formatting, read callbacks, name validation and clashes, and counters
 * updated from several threads at once losing nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

static char *render(const ks_metrics_t *m, ks_buf_t *b)
{
  ks_buf_reset(b);
  assert_int_equal(ks_metrics_render(m, b), 0);
  assert_int_equal(ks_buf_append(b, "", 1), 0); /* NUL for string compares */
  return (char *)b->data;
}

static void test_counter_gauge_text(void **state)
{
  (void)state;
  ks_metrics_t *m;
  ks_metric_t *c, *g;
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_metrics_new(&m), 0);
  assert_int_equal(ks_metric_counter_new(m, "ks_puts_total", "Puts.", NULL, &c),
                   0);
  static const char *const devs[] = {"0", "1"};
  ks_metric_label_t l = {"dev", devs, 2};
  assert_int_equal(ks_metric_gauge_new(m, "ks_free_bytes", "Free.", &l, &g), 0);
  assert_string_equal(render(m, &b), "# HELP ks_puts_total Puts.\n"
                                     "# TYPE ks_puts_total counter\n"
                                     "ks_puts_total 0\n"
                                     "# HELP ks_free_bytes Free.\n"
                                     "# TYPE ks_free_bytes gauge\n"
                                     "ks_free_bytes{dev=\"0\"} 0\n"
                                     "ks_free_bytes{dev=\"1\"} 0\n");
  ks_counter_inc(c, 0);
  ks_counter_add(c, 0, UINT64_C(18446744073709551614));
  ks_gauge_set(g, 0, 42);
  ks_gauge_add(g, 1, -7);
  ks_gauge_add(g, 1, 2);
  assert_int_equal(ks_gauge_get(g, 1), -5);
  char *t = render(m, &b);
  assert_non_null(strstr(t, "ks_puts_total 18446744073709551615\n"));
  assert_non_null(strstr(t, "ks_free_bytes{dev=\"0\"} 42\n"));
  assert_non_null(strstr(t, "ks_free_bytes{dev=\"1\"} -5\n"));
  ks_buf_free(&b);
  ks_metrics_free(m);
}

static void test_histogram_text(void **state)
{
  (void)state;
  ks_metrics_t *m;
  ks_metric_t *h;
  ks_buf_t b = KS_BUF_INIT;
  static const double bounds[] = {0.005, 0.1, 1};
  static const char *const ops[] = {"put", "get"};
  ks_metric_label_t l = {"op", ops, 2};
  assert_int_equal(ks_metrics_new(&m), 0);
  assert_int_equal(ks_metric_histogram_new(m, "ks_lat_seconds", "Latency.", &l,
                                           bounds, 3, &h),
                   0);
  ks_histogram_observe(h, 0, 0.005); /* on the bound: counted in it */
  ks_histogram_observe(h, 0, 0.05);
  ks_histogram_observe(h, 0, 7.5);
  ks_histogram_observe(h, 1, 0.25);
  assert_string_equal(render(m, &b),
                      "# HELP ks_lat_seconds Latency.\n"
                      "# TYPE ks_lat_seconds histogram\n"
                      "ks_lat_seconds_bucket{op=\"put\",le=\"0.005\"} 1\n"
                      "ks_lat_seconds_bucket{op=\"put\",le=\"0.1\"} 2\n"
                      "ks_lat_seconds_bucket{op=\"put\",le=\"1\"} 2\n"
                      "ks_lat_seconds_bucket{op=\"put\",le=\"+Inf\"} 3\n"
                      "ks_lat_seconds_sum{op=\"put\"} 7.555\n"
                      "ks_lat_seconds_count{op=\"put\"} 3\n"
                      "ks_lat_seconds_bucket{op=\"get\",le=\"0.005\"} 0\n"
                      "ks_lat_seconds_bucket{op=\"get\",le=\"0.1\"} 0\n"
                      "ks_lat_seconds_bucket{op=\"get\",le=\"1\"} 1\n"
                      "ks_lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 1\n"
                      "ks_lat_seconds_sum{op=\"get\"} 0.25\n"
                      "ks_lat_seconds_count{op=\"get\"} 1\n");
  ks_buf_free(&b);
  ks_metrics_free(m);
}

static void test_histogram_no_label(void **state)
{
  (void)state;
  ks_metrics_t *m;
  ks_metric_t *h;
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_metrics_new(&m), 0);
  assert_int_equal(ks_metric_histogram_new(m, "h", "", NULL, NULL, 0, &h), 0);
  ks_histogram_observe(h, 0, 2);
  assert_string_equal(render(m, &b), "# HELP h \n"
                                     "# TYPE h histogram\n"
                                     "h_bucket{le=\"+Inf\"} 1\n"
                                     "h_sum 2\n"
                                     "h_count 1\n");
  ks_buf_free(&b);
  ks_metrics_free(m);
}

static void test_escaping(void **state)
{
  (void)state;
  ks_metrics_t *m;
  ks_buf_t b = KS_BUF_INIT;
  static const char *const vals[] = {"a\\b\"c\nd"};
  ks_metric_label_t l = {"path", vals, 1};
  assert_int_equal(ks_metrics_new(&m), 0);
  assert_int_equal(
      ks_metric_counter_new(m, "x_total", "back\\slash \"q\"\nline", &l, NULL),
      0);
  assert_string_equal(render(m, &b),
                      "# HELP x_total back\\\\slash \"q\"\\nline\n"
                      "# TYPE x_total counter\n"
                      "x_total{path=\"a\\\\b\\\"c\\nd\"} 0\n");
  ks_buf_free(&b);
  ks_metrics_free(m);
}

typedef struct src {
  uint64_t requests;
  double ratio;
} src_t;

static double read_requests(void *arg, size_t idx)
{
  assert_int_equal(idx, 0);
  return (double)((src_t *)arg)->requests;
}

static double read_special(void *arg, size_t idx)
{
  static const double v[] = {0.1, 1e21, -3, 0};
  if (idx == 3)
    return ((src_t *)arg)->ratio;
  return v[idx];
}

static void test_callbacks(void **state)
{
  (void)state;
  ks_metrics_t *m;
  ks_buf_t b = KS_BUF_INIT;
  src_t s = {.requests = 5, .ratio = NAN};
  static const char *const k[] = {"a", "b", "c", "d"};
  ks_metric_label_t l = {"k", k, 4};
  assert_int_equal(ks_metrics_new(&m), 0);
  assert_int_equal(
      ks_metric_counter_fn(m, "req_total", "R.", NULL, read_requests, &s, NULL),
      0);
  assert_int_equal(ks_metric_gauge_fn(m, "g", "G.", &l, read_special, &s, NULL),
                   0);
  char *t = render(m, &b);
  assert_non_null(strstr(t, "# TYPE req_total counter\nreq_total 5\n"));
  assert_non_null(strstr(t, "g{k=\"a\"} 0.1\n"));
  assert_non_null(strstr(t, "g{k=\"b\"} 1e+21\n"));
  assert_non_null(strstr(t, "g{k=\"c\"} -3\n"));
  assert_non_null(strstr(t, "g{k=\"d\"} NaN\n"));
  s.requests = 9; /* read at scrape time, not at registration */
  s.ratio = -INFINITY;
  t = render(m, &b);
  assert_non_null(strstr(t, "req_total 9\n"));
  assert_non_null(strstr(t, "g{k=\"d\"} -Inf\n"));
  ks_buf_free(&b);
  ks_metrics_free(m);
}

static void test_invalid_and_clashes(void **state)
{
  (void)state;
  ks_metrics_t *m;
  ks_metric_t *h;
  static const char *const v[] = {"x"};
  static const double good[] = {1, 2}, dup[] = {1, 1}, inf[] = {1, INFINITY};
  ks_metric_label_t le = {"le", v, 1}, reserved = {"__x", v, 1},
                    none = {"a", v, 0}, badname = {"a-b", v, 1};
  assert_int_equal(ks_metrics_new(&m), 0);
  assert_int_equal(ks_metric_counter_new(m, "", "", NULL, NULL), -EINVAL);
  assert_int_equal(ks_metric_counter_new(m, "1abc", "", NULL, NULL), -EINVAL);
  assert_int_equal(ks_metric_counter_new(m, "a b", "", NULL, NULL), -EINVAL);
  assert_int_equal(ks_metric_gauge_new(m, "ok:name_1", "", NULL, NULL), 0);
  assert_int_equal(ks_metric_gauge_new(m, "g1", "", &reserved, NULL), -EINVAL);
  assert_int_equal(ks_metric_gauge_new(m, "g2", "", &none, NULL), -EINVAL);
  assert_int_equal(ks_metric_gauge_new(m, "g3", "", &badname, NULL), -EINVAL);
  assert_int_equal(ks_metric_gauge_new(m, "g4", "", &le, NULL), 0);
  assert_int_equal(ks_metric_histogram_new(m, "h1", "", &le, good, 2, &h),
                   -EINVAL);
  assert_int_equal(ks_metric_histogram_new(m, "h2", "", NULL, dup, 2, &h),
                   -EINVAL);
  assert_int_equal(ks_metric_histogram_new(m, "h3", "", NULL, inf, 2, &h),
                   -EINVAL);
  assert_int_equal(ks_metric_gauge_fn(m, "g5", "", NULL, NULL, NULL, NULL),
                   -EINVAL);
  /* names, including a histogram's suffixed series, are unique */
  assert_int_equal(ks_metric_histogram_new(m, "lat", "", NULL, good, 2, &h), 0);
  assert_int_equal(ks_metric_counter_new(m, "lat", "", NULL, NULL), -EEXIST);
  assert_int_equal(ks_metric_counter_new(m, "lat_count", "", NULL, NULL),
                   -EEXIST);
  assert_int_equal(ks_metric_gauge_new(m, "lat_sum", "", NULL, NULL), -EEXIST);
  assert_int_equal(ks_metric_gauge_new(m, "lat_max", "", NULL, NULL), 0);
  assert_int_equal(ks_metric_gauge_new(m, "q_bucket", "", NULL, NULL), 0);
  assert_int_equal(ks_metric_histogram_new(m, "q", "", NULL, good, 2, &h),
                   -EEXIST);
  assert_int_equal(ks_metric_gauge_new(m, "g4", "", NULL, NULL), -EEXIST);
  ks_metrics_free(m);
}

#define THREADS 4
#define ADDS 100000

static void *adder(void *arg)
{
  ks_metric_t **mt = arg;
  for (int i = 0; i < ADDS; i++) {
    ks_counter_inc(mt[0], (size_t)i % 2);
    ks_histogram_observe(mt[1], 0, 0.5);
  }
  return NULL;
}

static void test_threads(void **state)
{
  (void)state;
  ks_metrics_t *m;
  ks_metric_t *mt[2];
  static const char *const v[] = {"even", "odd"};
  static const double bounds[] = {1};
  ks_metric_label_t l = {"k", v, 2};
  assert_int_equal(ks_metrics_new(&m), 0);
  assert_int_equal(ks_metric_counter_new(m, "n_total", "", &l, &mt[0]), 0);
  assert_int_equal(ks_metric_histogram_new(m, "h", "", NULL, bounds, 1, &mt[1]),
                   0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, adder, mt), 0);
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_join(t[i], NULL), 0);
  assert_int_equal(ks_counter_get(mt[0], 0), THREADS * ADDS / 2);
  assert_int_equal(ks_counter_get(mt[0], 1), THREADS * ADDS / 2);
  ks_buf_t b = KS_BUF_INIT;
  char *txt = render(m, &b);
  assert_non_null(strstr(txt, "h_count 400000\n"));
  assert_non_null(strstr(txt, "h_sum 200000\n"));
  ks_buf_free(&b);
  ks_metrics_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_gauge_text),
      cmocka_unit_test(test_histogram_text),
      cmocka_unit_test(test_histogram_no_label),
      cmocka_unit_test(test_escaping),
      cmocka_unit_test(test_callbacks),
      cmocka_unit_test(test_invalid_and_clashes),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
