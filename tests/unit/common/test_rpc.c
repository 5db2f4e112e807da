/*
 * test_rpc.c — the RPC layer end to end on real sockets: frame codec,
 * pipelined echo with bulk, unknown opcode, timeout, backpressure, connect
 * refused, peer crash (kill -9 of a forked server) and reconnect, malformed
 * frames from raw sockets, TLS success and refusal of wrong certificates,
 * TLS sealed bulk (sizes, and a byte altered on the wire), graceful close.
 * Every test ends with uv_loop_close() == 0: no handle may be left open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/endian.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/rpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define OP_HOLD 0x7001 /* handler keeps the request until the test replies */

/* ---- helpers ------------------------------------------------------------- */

typedef struct result {
  bool done;
  int status;
  ks_rpc_msg_t *resp;
} result_t;

static void result_cb(ks_rpc_call_t *call, int status, ks_rpc_msg_t *resp)
{
  result_t *r = call->data;
  r->done = true;
  r->status = status;
  r->resp = resp;
}

static void result_clear(result_t *r)
{
  ks_rpc_msg_free(r->resp);
  memset(r, 0, sizeof(*r));
}

static void noop_timer_cb(uv_timer_t *t)
{
  (void)t;
}

/* Run the loop until *flag or timeout; returns whether the flag was set. */
static bool run_until(uv_loop_t *loop, const bool *flag, uint64_t timeout_ms)
{
  uint64_t end = uv_now(loop) + timeout_ms;
  uv_timer_t guard; /* keeps uv_run(ONCE) from blocking forever */
  uv_timer_init(loop, &guard);
  uv_timer_start(&guard, noop_timer_cb, 10, 10);
  while (!*flag && uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  uv_timer_stop(&guard);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *flag;
}

static void flag_cb(void *arg)
{
  *(bool *)arg = true;
}

typedef struct held {
  ks_rpc_sreq_t *reqs[64];
  int n;
} held_t;

static void hold_handler(ks_rpc_sreq_t *req, void *ctx)
{
  held_t *h = ctx;
  assert_true(h->n < 64);
  h->reqs[h->n++] = req;
}

static void release_all(held_t *h)
{
  for (int i = 0; i < h->n; i++)
    assert_int_equal(ks_rpc_reply_status(h->reqs[i], 0), 0);
  h->n = 0;
}

static void close_both(uv_loop_t *loop, ks_rpc_client_t *cl,
                       ks_rpc_server_t *srv)
{
  bool c_done = cl == NULL, s_done = srv == NULL;
  if (cl)
    ks_rpc_client_close(cl, flag_cb, &c_done);
  if (srv)
    ks_rpc_server_close(srv, flag_cb, &s_done);
  assert_true(run_until(loop, &c_done, 5000));
  assert_true(run_until(loop, &s_done, 5000));
  uv_run(loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(loop), 0);
}

static int call(ks_rpc_client_t *cl, ks_rpc_call_t *c, result_t *r, uint16_t op,
                const void *body, size_t nbody, const void *bulk, size_t nbulk,
                uint32_t timeout_ms)
{
  struct iovec b = {(void *)body, nbody}, k = {(void *)bulk, nbulk};
  c->data = r;
  return ks_rpc_call_start(cl, c, op, &b, nbody ? 1 : 0, &k, nbulk ? 1 : 0,
                           timeout_ms, result_cb);
}

/* ---- codec --------------------------------------------------------------- */

static void test_hdr_codec(void **state)
{
  (void)state;
  ks_rpc_hdr_t h = {.version = KS_RPC_VERSION,
                    .kind = KS_RPC_REQUEST,
                    .opcode = 7,
                    .id = 0x1122334455667788ULL,
                    .status = -5,
                    .body_len = 10,
                    .bulk_len = 1 << 20,
                    .body_crc = 1,
                    .bulk_crc = 2,
                    .timeout_ms = 300};
  uint8_t buf[KS_RPC_HDR_SIZE];
  ks_rpc_hdr_t d;
  ks_rpc_hdr_encode(&h, buf);
  assert_int_equal(ks_rpc_hdr_decode(buf, 100, 1 << 20, &d), 0);
  assert_int_equal(d.id, h.id);
  assert_int_equal(d.status, -5);
  assert_int_equal(d.bulk_len, 1 << 20);
  assert_int_equal(d.timeout_ms, 300);
  /* limits */
  assert_int_equal(ks_rpc_hdr_decode(buf, 9, 1 << 20, &d), KS_ETOOBIG);
  assert_int_equal(ks_rpc_hdr_decode(buf, 100, (1 << 20) - 1, &d), KS_ETOOBIG);
  /* corruption anywhere in the header is caught */
  for (int i = 0; i < KS_RPC_HDR_SIZE; i++) {
    uint8_t bad[KS_RPC_HDR_SIZE];
    memcpy(bad, buf, sizeof(bad));
    bad[i] ^= 0x40;
    assert_int_not_equal(ks_rpc_hdr_decode(bad, 100, 1 << 20, &d), 0);
  }
  buf[0] ^= 1;
  assert_int_equal(ks_rpc_hdr_decode(buf, 100, 1 << 20, &d), KS_EBADMAGIC);
  buf[0] ^= 1;
  buf[4] = 9;
  assert_int_equal(ks_rpc_hdr_decode(buf, 100, 1 << 20, &d), KS_EBADVERSION);
}

/* ---- echo over TCP ----------------------------------------------------------
 */

typedef struct fixture {
  uv_loop_t loop;
  ks_rpc_server_t *srv;
  ks_rpc_client_t *cl;
  held_t held;
} fixture_t;

static void fixture_start(fixture_t *f, const ks_rpc_opts_t *so,
                          const ks_rpc_opts_t *co)
{
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(ks_rpc_server_new(&f->loop, "127.0.0.1", 0, so, &f->srv), 0);
  assert_int_equal(ks_rpc_ping_register(f->srv), 0);
  assert_int_equal(
      ks_rpc_server_handle(f->srv, OP_HOLD, hold_handler, &f->held), 0);
  assert_int_equal(ks_rpc_server_handle(f->srv, OP_HOLD, hold_handler, NULL),
                   -EEXIST);
  assert_int_equal(ks_rpc_client_new(&f->loop, "127.0.0.1",
                                     ks_rpc_server_port(f->srv), co, &f->cl),
                   0);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 31 + seed);
  return p;
}

/* Pipelined PINGs of every bulk size class, over TCP or (opts) TLS. */
static void echo_pipelined(const ks_rpc_opts_t *so, const ks_rpc_opts_t *co)
{
  fixture_t f;
  fixture_start(&f, so, co);
  enum { N = 40 };
  static const size_t sizes[] = {0,     1,     100,    4096,
                                 65535, 65536, 300000, 4 << 20};
  enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
  ks_rpc_call_t calls[N];
  result_t res[N];
  uint8_t *bulk[N];
  char body[N][32];
  memset(res, 0, sizeof(res));
  for (int i = 0; i < N; i++) {
    size_t n = sizes[i % NS];
    bulk[i] = pattern(n, (unsigned)i);
    snprintf(body[i], sizeof(body[i]), "request-%d", i);
    assert_int_equal(call(f.cl, &calls[i], &res[i], KS_OP_PING, body[i],
                          strlen(body[i]), bulk[i], n, 10000),
                     0);
  }
  for (int i = 0; i < N; i++) {
    assert_true(run_until(&f.loop, &res[i].done, 10000));
    assert_int_equal(res[i].status, 0);
    ks_rpc_msg_t *m = res[i].resp;
    assert_non_null(m);
    assert_int_equal(m->body_len, strlen(body[i]));
    assert_memory_equal(m->body, body[i], m->body_len);
    assert_int_equal(m->bulk_len, sizes[i % NS]);
    if (m->bulk_len) {
      assert_memory_equal(m->bulk, bulk[i], m->bulk_len);
      assert_int_equal((uintptr_t)m->bulk % 64, 0);
    }
    result_clear(&res[i]);
    free(bulk[i]);
  }
  /* SOURCE and SINK */
  ks_rpc_call_t c;
  result_t r = {0};
  uint8_t n8[8];
  ks_put_le64(n8, 5 << 20);
  assert_int_equal(call(f.cl, &c, &r, KS_OP_SOURCE, n8, 8, NULL, 0, 5000), 0);
  assert_true(run_until(&f.loop, &r.done, 5000));
  assert_int_equal(r.status, 0);
  assert_int_equal(r.resp->bulk_len, 5 << 20);
  result_clear(&r);
  ks_rpc_server_stats_t st;
  ks_rpc_server_stats(f.srv, &st);
  assert_int_equal(st.conns_accepted, 1);
  assert_int_equal(st.requests, N + 1);
  close_both(&f.loop, f.cl, f.srv);
}

static void test_echo_pipelined(void **state)
{
  (void)state;
  echo_pipelined(NULL, NULL);
}

static void test_unknown_opcode_and_limits(void **state)
{
  (void)state;
  fixture_t f;
  ks_rpc_opts_t co = {.max_body = 16};
  fixture_start(&f, NULL, &co);
  ks_rpc_call_t c;
  result_t r = {0};
  assert_int_equal(call(f.cl, &c, &r, 0x6666, NULL, 0, NULL, 0, 5000), 0);
  assert_true(run_until(&f.loop, &r.done, 5000));
  assert_int_equal(r.status, KS_ENOHANDLER);
  assert_non_null(r.resp);
  result_clear(&r);
  char big[17] = {0};
  assert_int_equal(call(f.cl, &c, &r, KS_OP_PING, big, 17, NULL, 0, 5000),
                   KS_ETOOBIG);
  close_both(&f.loop, f.cl, f.srv);
}

static void test_timeout(void **state)
{
  (void)state;
  fixture_t f;
  fixture_start(&f, NULL, NULL);
  ks_rpc_call_t c;
  result_t r = {0};
  uint64_t t0 = uv_now(&f.loop);
  assert_int_equal(call(f.cl, &c, &r, OP_HOLD, "x", 1, NULL, 0, 150), 0);
  assert_true(run_until(&f.loop, &r.done, 5000));
  assert_int_equal(r.status, KS_ETIMEDOUT);
  assert_null(r.resp);
  assert_true(uv_now(&f.loop) - t0 >= 150);
  result_clear(&r);
  /* The late reply is dropped; the connection still works. */
  assert_int_equal(f.held.n, 1);
  release_all(&f.held);
  assert_int_equal(call(f.cl, &c, &r, KS_OP_PING, "y", 1, NULL, 0, 5000), 0);
  assert_true(run_until(&f.loop, &r.done, 5000));
  assert_int_equal(r.status, 0);
  result_clear(&r);
  close_both(&f.loop, f.cl, f.srv);
}

static void test_backpressure(void **state)
{
  (void)state;
  fixture_t f;
  ks_rpc_opts_t co = {.max_inflight = 2, .max_queued = 3};
  fixture_start(&f, NULL, &co);
  ks_rpc_call_t c[6];
  result_t r[6];
  memset(r, 0, sizeof(r));
  /* Connect first: while connecting, every call waits in the queue. */
  assert_int_equal(call(f.cl, &c[0], &r[0], KS_OP_PING, NULL, 0, NULL, 0, 5000),
                   0);
  assert_true(run_until(&f.loop, &r[0].done, 5000));
  result_clear(&r[0]);
  for (int i = 0; i < 5; i++)
    assert_int_equal(call(f.cl, &c[i], &r[i], OP_HOLD, NULL, 0, NULL, 0, 10000),
                     0);
  assert_int_equal(call(f.cl, &c[5], &r[5], OP_HOLD, NULL, 0, NULL, 0, 10000),
                   KS_EBUSY);
  bool never = false;
  run_until(&f.loop, &never, 200);
  assert_int_equal(ks_rpc_client_inflight(f.cl), 2);
  assert_int_equal(ks_rpc_client_queued(f.cl), 3);
  assert_int_equal(f.held.n, 2);
  for (int round = 0; round < 3 && f.held.n; round++) {
    release_all(&f.held);
    run_until(&f.loop, &never, 100);
  }
  for (int i = 0; i < 5; i++) {
    assert_true(run_until(&f.loop, &r[i].done, 5000));
    assert_int_equal(r[i].status, 0);
    result_clear(&r[i]);
  }
  close_both(&f.loop, f.cl, f.srv);
}

static void test_connect_refused(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  /* Find a port with nothing listening: bind, note it, close. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
  close(fd);
  ks_rpc_client_t *cl;
  assert_int_equal(
      ks_rpc_client_new(&loop, "127.0.0.1", ntohs(a.sin_port), NULL, &cl), 0);
  ks_rpc_call_t c;
  result_t r = {0};
  assert_int_equal(call(cl, &c, &r, KS_OP_PING, NULL, 0, NULL, 0, 5000), 0);
  assert_true(run_until(&loop, &r.done, 5000));
  assert_int_equal(r.status, -ECONNREFUSED);
  assert_false(ks_rpc_client_connected(cl));
  close_both(&loop, cl, NULL);
}

/* ---- a server in a child process, for crashes and raw-socket abuse --------
 */

static void child_serve(int port, int ready_fd)
{
  uv_loop_t loop;
  uv_loop_init(&loop);
  ks_rpc_server_t *srv;
  held_t held = {0};
  if (ks_rpc_server_new(&loop, "127.0.0.1", (uint16_t)port, NULL, &srv) != 0)
    _exit(3);
  ks_rpc_ping_register(srv);
  ks_rpc_server_handle(srv, OP_HOLD, hold_handler, &held);
  uint16_t p = ks_rpc_server_port(srv);
  if (write(ready_fd, &p, sizeof(p)) != sizeof(p))
    _exit(4);
  close(ready_fd);
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(0);
}

static pid_t spawn_server(uint16_t port, uint16_t *bound)
{
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(pfd[0]);
    child_serve(port, pfd[1]);
  }
  close(pfd[1]);
  assert_int_equal(read(pfd[0], bound, sizeof(*bound)), sizeof(*bound));
  close(pfd[0]);
  return pid;
}

static void kill9(pid_t pid)
{
  int st;
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
}

static void test_peer_crash_and_reconnect(void **state)
{
  (void)state;
  uint16_t port;
  pid_t pid = spawn_server(0, &port);
  uv_loop_t loop;
  uv_loop_init(&loop);
  ks_rpc_client_t *cl;
  assert_int_equal(ks_rpc_client_new(&loop, "127.0.0.1", port, NULL, &cl), 0);
  ks_rpc_call_t c1, c2;
  result_t r1 = {0}, r2 = {0};
  assert_int_equal(call(cl, &c1, &r1, KS_OP_PING, "a", 1, NULL, 0, 5000), 0);
  assert_true(run_until(&loop, &r1.done, 5000));
  assert_int_equal(r1.status, 0);
  result_clear(&r1);
  /* A call the server will never answer, then the server dies. */
  assert_int_equal(call(cl, &c2, &r2, OP_HOLD, NULL, 0, NULL, 0, 20000), 0);
  bool never = false;
  run_until(&loop, &never, 200);
  uint64_t t0 = uv_now(&loop);
  kill9(pid);
  assert_true(run_until(&loop, &r2.done, 5000));
  assert_int_equal(r2.status, KS_ECLOSED); /* promptly, not a timeout */
  assert_true(uv_now(&loop) - t0 < 2000);
  result_clear(&r2);
  /* While it is down: refused. */
  assert_int_equal(call(cl, &c1, &r1, KS_OP_PING, NULL, 0, NULL, 0, 5000), 0);
  assert_true(run_until(&loop, &r1.done, 5000));
  assert_int_equal(r1.status, -ECONNREFUSED);
  result_clear(&r1);
  /* Restarted on the same port: the client reconnects by itself. */
  uint16_t port2;
  pid = spawn_server(port, &port2);
  assert_int_equal(port2, port);
  int status = -1;
  for (int i = 0; i < 50 && status != 0; i++) { /* rides out the backoff */
    assert_int_equal(call(cl, &c1, &r1, KS_OP_PING, "b", 1, NULL, 0, 5000), 0);
    assert_true(run_until(&loop, &r1.done, 5000));
    status = r1.status;
    result_clear(&r1);
  }
  assert_int_equal(status, 0);
  kill9(pid);
  close_both(&loop, cl, NULL);
}

static int raw_connect(uint16_t port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

/* Send bytes; expect the server to close the connection on us. */
static void expect_dropped(uint16_t port, const void *p, size_t n)
{
  int fd = raw_connect(port);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  char b[64];
  ssize_t r = read(fd, b, sizeof(b));
  assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
  close(fd);
}

/* A valid PING over a raw socket; returns the status in the response. */
static int raw_ping(int fd, uint64_t id)
{
  ks_rpc_hdr_t h = {
      .version = 1, .kind = KS_RPC_REQUEST, .opcode = KS_OP_PING, .id = id};
  uint8_t hb[KS_RPC_HDR_SIZE], rb[KS_RPC_HDR_SIZE];
  ks_rpc_hdr_encode(&h, hb);
  assert_int_equal(write(fd, hb, sizeof(hb)), sizeof(hb));
  size_t got = 0;
  while (got < sizeof(rb)) {
    ssize_t r = read(fd, rb + got, sizeof(rb) - got);
    if (r <= 0)
      return KS_ECLOSED;
    got += (size_t)r;
  }
  ks_rpc_hdr_t d;
  assert_int_equal(ks_rpc_hdr_decode(rb, 1 << 20, 1 << 30, &d), 0);
  assert_int_equal(d.id, id);
  assert_int_equal(d.kind, KS_RPC_RESPONSE);
  return d.status;
}

static void test_malformed_frames(void **state)
{
  (void)state;
  uint16_t port;
  pid_t pid = spawn_server(0, &port);
  int good = raw_connect(port);
  assert_int_equal(raw_ping(good, 1), 0);

  uint8_t hb[KS_RPC_HDR_SIZE];
  ks_rpc_hdr_t h = {
      .version = 1, .kind = KS_RPC_REQUEST, .opcode = KS_OP_PING, .id = 9};
  /* not our protocol at all */
  expect_dropped(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
  static uint8_t junk[KS_RPC_HDR_SIZE * 2];
  memset(junk, 0xA5, sizeof(junk));
  expect_dropped(port, junk, sizeof(junk));
  /* bad header crc */
  ks_rpc_hdr_encode(&h, hb);
  hb[10] ^= 1;
  expect_dropped(port, hb, sizeof(hb));
  /* unknown version (crc recomputed so only the version is wrong) */
  ks_rpc_hdr_encode(&h, hb);
  hb[4] = 2;
  expect_dropped(port, hb, sizeof(hb));
  /* oversized body and bulk lengths, with a valid crc */
  ks_rpc_hdr_t big = h;
  big.body_len = KS_RPC_DEFAULT_MAX_BODY + 1;
  ks_rpc_hdr_encode(&big, hb);
  expect_dropped(port, hb, sizeof(hb));
  big = h;
  big.bulk_len = 1ULL << 62;
  ks_rpc_hdr_encode(&big, hb);
  expect_dropped(port, hb, sizeof(hb));
  /* body that does not match its crc */
  ks_rpc_hdr_t bad = h;
  bad.body_len = 4;
  bad.body_crc = 0xdeadbeef;
  uint8_t frame[KS_RPC_HDR_SIZE + 4];
  ks_rpc_hdr_encode(&bad, frame);
  memcpy(frame + KS_RPC_HDR_SIZE, "abcd", 4);
  expect_dropped(port, frame, sizeof(frame));
  /* a response sent to a server */
  ks_rpc_hdr_t resp = h;
  resp.kind = KS_RPC_RESPONSE;
  ks_rpc_hdr_encode(&resp, hb);
  expect_dropped(port, hb, sizeof(hb));

  /* The first connection, and new ones, are still served. */
  assert_int_equal(raw_ping(good, 2), 0);
  int again = raw_connect(port);
  assert_int_equal(raw_ping(again, 3), 0);
  close(again);
  close(good);
  kill9(pid);
}

/* ---- TLS ---------------------------------------------------------------- */

static ks_rpc_tls_t *tls_load(const char *name, const char *ca, const char *sn)
{
  char caf[512], cert[512], key[512];
  snprintf(caf, sizeof(caf), "%s/%s.pem", KS_TEST_CERTS, ca);
  snprintf(cert, sizeof(cert), "%s/%s.pem", KS_TEST_CERTS, name);
  snprintf(key, sizeof(key), "%s/%s.key", KS_TEST_CERTS, name);
  ks_rpc_tls_opts_t o = {
      .ca_file = caf, .cert_file = cert, .key_file = key, .server_name = sn};
  ks_rpc_tls_t *t = NULL;
  assert_int_equal(ks_rpc_tls_new(&o, &t), 0);
  return t;
}

/* One PING over TLS with the given identities; returns the call status. */
static int tls_ping(ks_rpc_tls_t *stls, ks_rpc_tls_t *ctls, size_t bulk_len,
                    uint64_t *rejected)
{
  fixture_t f;
  ks_rpc_opts_t so = {.tls = stls}, co = {.tls = ctls};
  fixture_start(&f, &so, &co);
  uint8_t *bulk = pattern(bulk_len, 7);
  ks_rpc_call_t c;
  result_t r = {0};
  assert_int_equal(
      call(f.cl, &c, &r, KS_OP_PING, "tls", 3, bulk, bulk_len, 5000), 0);
  assert_true(run_until(&f.loop, &r.done, 6000));
  int status = r.status;
  if (status == 0) {
    assert_int_equal(r.resp->bulk_len, bulk_len);
    assert_memory_equal(r.resp->bulk, bulk, bulk_len);
  }
  result_clear(&r);
  bool never = false;
  run_until(&f.loop, &never, 50); /* let the server see the close */
  ks_rpc_server_stats_t st;
  ks_rpc_server_stats(f.srv, &st);
  *rejected = st.conns_rejected;
  free(bulk);
  close_both(&f.loop, f.cl, f.srv);
  return status;
}

static void test_tls(void **state)
{
  (void)state;
  ks_rpc_tls_t *server = tls_load("server", "ca", NULL);
  ks_rpc_tls_t *client = tls_load("client", "ca", "127.0.0.1");
  ks_rpc_tls_t *client_wrong_name = tls_load("client", "ca", "other.example");
  ks_rpc_tls_t *rogue = tls_load("rogue", "rogue-ca", NULL);
  /* a rogue that trusts our CA, so only its own certificate is wrong */
  ks_rpc_tls_t *rogue_client = tls_load("rogue", "ca", NULL);
  uint64_t rej;

  assert_int_equal(tls_ping(server, client, 4 << 20, &rej), 0);
  assert_int_equal(rej, 0);
  /* client certificate from another CA: the server refuses it */
  assert_int_equal(tls_ping(server, rogue_client, 10, &rej), KS_ETLS);
  assert_int_equal(rej, 1);
  /* server certificate from another CA: the client refuses it */
  assert_int_equal(tls_ping(rogue, client, 10, &rej), KS_ETLS);
  /* right CA, wrong name */
  assert_int_equal(tls_ping(server, client_wrong_name, 10, &rej), KS_ETLS);
  /* plain TCP client against a TLS server: dropped */
  assert_int_not_equal(tls_ping(server, NULL, 10, &rej), 0);
  assert_int_equal(rej, 1);

  /* unreadable files and mismatched key are configuration errors */
  ks_rpc_tls_opts_t o = {
      .ca_file = "/nonexistent", .cert_file = "/x", .key_file = "/y"};
  ks_rpc_tls_t *t = NULL;
  assert_int_equal(ks_rpc_tls_new(&o, &t), KS_ETLS);
  char caf[512], cert[512], key[512];
  snprintf(caf, sizeof(caf), "%s/ca.pem", KS_TEST_CERTS);
  snprintf(cert, sizeof(cert), "%s/server.pem", KS_TEST_CERTS);
  snprintf(key, sizeof(key), "%s/client.key", KS_TEST_CERTS);
  o = (ks_rpc_tls_opts_t){.ca_file = caf, .cert_file = cert, .key_file = key};
  assert_int_equal(ks_rpc_tls_new(&o, &t), KS_ETLS);

  ks_rpc_tls_free(server);
  ks_rpc_tls_free(client);
  ks_rpc_tls_free(client_wrong_name);
  ks_rpc_tls_free(rogue);
  ks_rpc_tls_free(rogue_client);
}

/* Over TLS every bulk is sealed outside the records (rpc_tls.c): the same
 * pipelined echo, with sizes around the in-place receive threshold. */
static void test_tls_sealed_bulk(void **state)
{
  (void)state;
  ks_rpc_tls_t *server = tls_load("server", "ca", NULL);
  ks_rpc_tls_t *client = tls_load("client", "ca", "127.0.0.1");
  ks_rpc_opts_t so = {.tls = server}, co = {.tls = client};
  echo_pipelined(&so, &co);

  /* Many small frames at once: their records are batched into one write
   * per loop turn on both sides (rpc_conn.c); every reply comes back. */
  fixture_t f;
  co.max_inflight = 512;
  so.max_inflight = 512;
  fixture_start(&f, &so, &co);
  enum { N = 300 };
  static ks_rpc_call_t calls[N];
  static result_t res[N];
  static char body[N][24];
  memset(res, 0, sizeof(res));
  for (int i = 0; i < N; i++) {
    snprintf(body[i], sizeof(body[i]), "small-%d", i);
    assert_int_equal(call(f.cl, &calls[i], &res[i], KS_OP_PING, body[i],
                          strlen(body[i]), NULL, 0, 10000),
                     0);
  }
  for (int i = 0; i < N; i++) {
    assert_true(run_until(&f.loop, &res[i].done, 10000));
    assert_int_equal(res[i].status, 0);
    assert_int_equal(res[i].resp->body_len, strlen(body[i]));
    assert_memory_equal(res[i].resp->body, body[i], strlen(body[i]));
    result_clear(&res[i]);
  }
  close_both(&f.loop, f.cl, f.srv);
  ks_rpc_tls_free(server);
  ks_rpc_tls_free(client);
}

/* A relay that flips one byte of the client-to-server stream at `at`. */
typedef struct flipper {
  int lfd;
  uint16_t port, to;
  uint64_t at;
  pthread_t th;
} flipper_t;

static void *flipper_main(void *arg)
{
  flipper_t *fl = arg;
  int a = accept(fl->lfd, NULL, NULL);
  int b = a < 0 ? -1 : raw_connect(fl->to);
  uint64_t sent = 0;
  static uint8_t buf[65536];
  struct pollfd p[2] = {{.fd = a, .events = POLLIN},
                        {.fd = b, .events = POLLIN}};
  while (a >= 0 && poll(p, 2, 5000) > 0) {
    if (p[0].revents) {
      ssize_t n = read(a, buf, sizeof(buf));
      if (n <= 0)
        break;
      if (fl->at >= sent && fl->at < sent + (uint64_t)n)
        buf[fl->at - sent] ^= 0x01;
      sent += (uint64_t)n;
      if (write(b, buf, (size_t)n) != n)
        break;
    }
    if (p[1].revents) {
      ssize_t n = read(b, buf, sizeof(buf));
      if (n <= 0 || write(a, buf, (size_t)n) != n)
        break;
    }
  }
  if (a >= 0)
    close(a);
  if (b >= 0)
    close(b);
  return NULL;
}

/* A sealed bulk altered on the wire is never delivered: the server drops the
 * connection (GCM tag), the call fails, other connections carry on. */
static void test_tls_sealed_bulk_tampered(void **state)
{
  (void)state;
  ks_rpc_tls_t *server = tls_load("server", "ca", NULL);
  ks_rpc_tls_t *client = tls_load("client", "ca", "127.0.0.1");
  ks_rpc_opts_t so = {.tls = server}, co = {.tls = client};
  fixture_t f;
  fixture_start(&f, &so, &co); /* f.cl talks to the server directly */

  flipper_t fl = {.to = ks_rpc_server_port(f.srv), .at = 2 << 20};
  fl.lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof(sa);
  assert_int_equal(bind(fl.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(fl.lfd, 1), 0);
  assert_int_equal(getsockname(fl.lfd, (struct sockaddr *)&sa, &sl), 0);
  fl.port = ntohs(sa.sin_port);
  assert_int_equal(pthread_create(&fl.th, NULL, flipper_main, &fl), 0);

  ks_rpc_client_t *via = NULL;
  assert_int_equal(ks_rpc_client_new(&f.loop, "127.0.0.1", fl.port, &co, &via),
                   0);
  size_t n = 4 << 20;
  uint8_t *bulk = pattern(n, 3);
  ks_rpc_call_t c1, c2;
  result_t r1 = {0}, r2 = {0};
  assert_int_equal(call(via, &c1, &r1, KS_OP_PING, "x", 1, bulk, n, 5000), 0);
  assert_true(run_until(&f.loop, &r1.done, 6000));
  assert_true(r1.status == KS_ECLOSED || r1.status == KS_EAUTH);
  assert_null(r1.resp);
  /* the server keeps serving */
  assert_int_equal(call(f.cl, &c2, &r2, KS_OP_PING, "y", 1, bulk, n, 5000), 0);
  assert_true(run_until(&f.loop, &r2.done, 6000));
  assert_int_equal(r2.status, 0);
  assert_memory_equal(r2.resp->bulk, bulk, n);
  result_clear(&r1);
  result_clear(&r2);
  ks_rpc_server_stats_t st;
  ks_rpc_server_stats(f.srv, &st);
  assert_int_equal(st.requests, 1); /* the altered one never reached it */
  free(bulk);
  bool via_done = false;
  ks_rpc_client_close(via, flag_cb, &via_done);
  assert_true(run_until(&f.loop, &via_done, 5000));
  close_both(&f.loop, f.cl, f.srv);
  assert_int_equal(pthread_join(fl.th, NULL), 0);
  close(fl.lfd);
  ks_rpc_tls_free(server);
  ks_rpc_tls_free(client);
}

/* ---- graceful close
 * ---------------------------------------------------------- */

static void test_graceful_close(void **state)
{
  (void)state;
  fixture_t f;
  ks_rpc_opts_t co = {.max_inflight = 1};
  fixture_start(&f, NULL, &co);
  ks_rpc_call_t c1, c2;
  result_t r1 = {0}, r2 = {0};
  assert_int_equal(call(f.cl, &c1, &r1, OP_HOLD, NULL, 0, NULL, 0, 10000), 0);
  assert_int_equal(call(f.cl, &c2, &r2, OP_HOLD, NULL, 0, NULL, 0, 10000), 0);
  bool never = false;
  run_until(&f.loop, &never, 100);
  assert_int_equal(f.held.n, 1);
  /* Server close waits for the held request's reply. */
  bool s_done = false, c_done = false;
  ks_rpc_server_close(f.srv, flag_cb, &s_done);
  /* Client close cancels the waiting call at once... */
  ks_rpc_client_close(f.cl, flag_cb, &c_done);
  assert_true(run_until(&f.loop, &r2.done, 2000));
  assert_int_equal(r2.status, KS_ECANCELED);
  run_until(&f.loop, &never, 100);
  assert_false(s_done);
  assert_false(c_done);
  /* ...and the call on the wire still gets its answer. */
  release_all(&f.held);
  assert_true(run_until(&f.loop, &r1.done, 2000));
  assert_int_equal(r1.status, 0);
  result_clear(&r1);
  assert_true(run_until(&f.loop, &c_done, 2000));
  assert_true(run_until(&f.loop, &s_done, 2000));
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  ks_log_set_level(KS_LOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hdr_codec),
      cmocka_unit_test(test_echo_pipelined),
      cmocka_unit_test(test_unknown_opcode_and_limits),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_connect_refused),
      cmocka_unit_test(test_peer_crash_and_reconnect),
      cmocka_unit_test(test_malformed_frames),
      cmocka_unit_test(test_tls),
      cmocka_unit_test(test_tls_sealed_bulk),
      cmocka_unit_test(test_tls_sealed_bulk_tampered),
      cmocka_unit_test(test_graceful_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
