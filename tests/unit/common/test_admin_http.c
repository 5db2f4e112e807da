/*
 * test_admin_http.c — the admin HTTP listener over real sockets: the loop
 * (and the listener) runs in a thread of its own while the test speaks
 * HTTP/1.1 through blocking sockets, so every byte goes through h2o as a
 * scraper's would.  Checked: /metrics (status, content type, values read
 * at scrape time), /healthz, 404, 405 with Allow, HEAD, a port already
 * taken, a bad host, and graceful close with an idle keep-alive connection
 * and with a half-sent request.  Every test ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/admin_http.h"
#include "ks/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- a listener on a loop in its own thread ------------------------------ */

typedef struct fixture {
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
  sem_t done;
  int loop_close_rc;
  ks_metrics_t *metrics;
  ks_metric_t *hits;
  ks_admin_http_t *admin;
  uint64_t scraped; /* read by a callback: proves scrape-time reads */
  uint16_t port;
  bool closed;
} fixture_t;

static double read_scraped(void *arg, size_t idx)
{
  (void)idx;
  return (double)++((fixture_t *)arg)->scraped;
}

static void admin_closed(void *arg)
{
  ((fixture_t *)arg)->closed = true;
}

static void stop_cb(uv_async_t *a)
{
  fixture_t *f = a->data;
  ks_admin_http_close(f->admin, admin_closed, f);
  uv_close((uv_handle_t *)a, NULL);
}

/* Fixtures stay reachable from here: their threads are parked, not gone. */
static fixture_t *fixtures[8];
static size_t nfixtures;

/* Run the loop until the listener has closed, check that the loop closes
 * with no handle left, then park for good: h2o keeps per-thread caches of
 * pools and buffers (thread-local, no API to drain them), which
 * LeakSanitizer would report if the thread exited (as in
 * tests/unit/s3d/test_s3_server.c). */
static void *loop_main(void *arg)
{
  fixture_t *f = arg;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  f->loop_close_rc = uv_loop_close(&f->loop);
  sem_post(&f->done);
  for (;;)
    pause();
  return NULL;
}

static fixture_t *fixture_start(uint32_t grace_ms)
{
  fixture_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_true(nfixtures < sizeof(fixtures) / sizeof(fixtures[0]));
  fixtures[nfixtures++] = f;
  assert_int_equal(sem_init(&f->done, 0, 0), 0);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(ks_metrics_new(&f->metrics), 0);
  assert_int_equal(ks_metric_counter_new(f->metrics, "test_hits_total", "Hits.",
                                         NULL, &f->hits),
                   0);
  assert_int_equal(ks_metric_counter_fn(f->metrics, "test_scrapes_total",
                                        "Scrapes.", NULL, read_scraped, f,
                                        NULL),
                   0);
  ks_admin_http_opts_t o = {.host = "127.0.0.1",
                            .port = 0,
                            .metrics = f->metrics,
                            .grace_ms = grace_ms};
  assert_int_equal(ks_admin_http_new(&f->loop, &o, &f->admin), 0);
  f->port = ks_admin_http_port(f->admin);
  assert_true(f->port != 0);
  assert_int_equal(uv_async_init(&f->loop, &f->stop, stop_cb), 0);
  f->stop.data = f;
  assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
  assert_int_equal(pthread_detach(f->thread), 0);
  return f;
}

/* Close the listener from its thread, wait for the loop to drain. */
static void fixture_stop(fixture_t *f)
{
  assert_int_equal(uv_async_send(&f->stop), 0);
  while (sem_wait(&f->done) != 0)
    ;
  assert_true(f->closed);
  assert_int_equal(f->loop_close_rc, 0);
  ks_metrics_free(f->metrics);
  f->metrics = NULL; /* f stays: its parked thread still points at it */
}

/* ---- a blocking HTTP client -----------------------------------------------
 */

static int conn_open(uint16_t port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct timeval tv = {.tv_sec = 10};
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

static void conn_send(int fd, const char *s)
{
  size_t n = strlen(s);
  assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read until EOF (or until `until` appears); returns bytes read. */
static size_t conn_read(int fd, char *buf, size_t size, const char *until)
{
  size_t len = 0;
  buf[0] = '\0';
  while (len + 1 < size) {
    ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
    buf[len] = '\0';
    if (until && strstr(buf, until))
      break;
  }
  return len;
}

/* One request with Connection: close; the whole answer into buf. */
static void http_do(uint16_t port, const char *method, const char *path,
                    char *buf, size_t size)
{
  char req[256];
  snprintf(req, sizeof(req),
           "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method,
           path);
  int fd = conn_open(port);
  conn_send(fd, req);
  (void)conn_read(fd, buf, size, NULL);
  close(fd);
}

/* ---- tests ------------------------------------------------------------------
 */

static void test_metrics_and_healthz(void **state)
{
  (void)state;
  fixture_t *f = fixture_start(0);
  char buf[8192];
  ks_counter_add(f->hits, 0, 41);
  ks_counter_inc(f->hits, 0); /* from this thread: updates are atomic */
  http_do(f->port, "GET", "/metrics", buf, sizeof(buf));
  assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(
      strstr(buf, "content-type: text/plain; version=0.0.4; charset=utf-8"));
  assert_non_null(strstr(buf, "\r\n\r\n# HELP test_hits_total Hits.\n"
                              "# TYPE test_hits_total counter\n"
                              "test_hits_total 42\n"));
  assert_non_null(strstr(buf, "test_scrapes_total 1\n"));
  http_do(f->port, "GET", "/metrics?x=1", buf, sizeof(buf));
  assert_non_null(strstr(buf, "test_scrapes_total 2\n"));

  http_do(f->port, "GET", "/healthz", buf, sizeof(buf));
  assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(buf, "\r\n\r\nok\n"));
  fixture_stop(f);
}

static void test_not_found_and_methods(void **state)
{
  (void)state;
  fixture_t *f = fixture_start(0);
  char buf[8192];
  http_do(f->port, "GET", "/metricsx", buf, sizeof(buf));
  assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found\r\n"));
  http_do(f->port, "GET", "/", buf, sizeof(buf));
  assert_non_null(strstr(buf, "HTTP/1.1 404"));
  http_do(f->port, "DELETE", "/metrics", buf, sizeof(buf));
  assert_non_null(strstr(buf, "HTTP/1.1 405 Method Not Allowed\r\n"));
  assert_non_null(strstr(buf, "allow: GET, HEAD\r\n"));
  http_do(f->port, "HEAD", "/metrics", buf, sizeof(buf));
  assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
  assert_null(strstr(buf, "# HELP")); /* no body for HEAD */
  /* what was answered, not what a scrape callback was asked */
  assert_int_equal(f->scraped, 1);
  assert_int_equal(ks_admin_http_requests(f->admin), 4);
  fixture_stop(f);
}

static void test_port_taken_and_bad_host(void **state)
{
  (void)state;
  fixture_t *f = fixture_start(0);
  uv_loop_t loop;
  ks_admin_http_t *a = NULL;
  assert_int_equal(uv_loop_init(&loop), 0);
  ks_admin_http_opts_t o = {.host = "127.0.0.1", .port = f->port};
  assert_int_equal(ks_admin_http_new(&loop, &o, &a), -EADDRINUSE);
  assert_null(a);
  o.host = "localhost"; /* not numeric */
  assert_int_equal(ks_admin_http_new(&loop, &o, &a), KS_ECONFIG);
  o.host = NULL;
  assert_int_equal(ks_admin_http_new(&loop, &o, &a), KS_ECONFIG);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  fixture_stop(f);
}

static void test_close_with_open_connections(void **state)
{
  (void)state;
  fixture_t *f = fixture_start(300);
  char buf[8192];
  /* an idle keep-alive connection after one answer */
  int idle = conn_open(f->port);
  conn_send(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  (void)conn_read(idle, buf, sizeof(buf), "\r\n\r\nok\n");
  assert_non_null(strstr(buf, "200 OK"));
  /* a request that never finishes its headers */
  int half = conn_open(f->port);
  conn_send(half, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
  usleep(50 * 1000);
  fixture_stop(f); /* returns only once both are closed and all is freed */
  assert_int_equal(conn_read(idle, buf, sizeof(buf), NULL), 0);
  close(idle);
  close(half);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_and_healthz),
      cmocka_unit_test(test_not_found_and_methods),
      cmocka_unit_test(test_port_taken_and_bad_host),
      cmocka_unit_test(test_close_with_open_connections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
