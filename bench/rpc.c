/*
 * rpc.c — ks-bench-rpc: what the RPC layer costs next to the loopback
 * socket it runs on (DESIGN.md §12).
 *
 * Every Kiseki figure is printed with its ratio to a limit measured in this
 * same run, with plain sockets and no Kiseki code, on the same machine:
 *
 *   plain copy    two threads, one writing 4 MiB buffers into a loopback TCP
 *                 socket, the other reading into a 4 MiB buffer and
 *                 discarding it: the most bytes one TCP stream moves here.
 *                 Default socket buffers, as the RPC layer uses.
 *   plain rtt     48-byte ping-pong (one RPC header's size) over blocking
 *                 sockets with TCP_NODELAY: the least a round trip costs.
 *   plain batch   64 messages of 48 bytes written at once, echoed, read
 *                 back: the small-message rate a pipelined peer reaches with
 *                 one read and one write per 64 messages.
 *
 * Then, over plain TCP and over mutual TLS 1.3 (the test certificates that
 * tests/tools/gen-test-certs.sh makes), a ks_rpc server on its own thread and
 * loop and a ks_rpc client on the main thread and loop:
 *
 *   rtt_empty        PING with no body, one call at a time: p50/p99
 *   ops_c64_empty    PING with no body, 64 calls in flight: calls/s
 *   bulk_write_4MiB  SINK carrying 4 MiB of bulk, 4 in flight: GB/s
 *   bulk_read_4MiB   SOURCE asking for 4 MiB back, 4 in flight: GB/s
 *
 * Before anything is timed, one PING with a 4 MiB patterned bulk must come
 * back identical, SOURCE must return 4 MiB of zeros and SINK must succeed;
 * otherwise the program exits 1, as it does when any timed call fails.
 * Throughput targets (the RPC issue: TCP bulk >= 70% of the plain copy, TLS
 * >= 40%) are reported as PASS or BELOW but never change the exit status:
 * timings are not assertions.
 *
 * Nothing is pinned.  With two threads per measurement on a small machine,
 * the scheduler sometimes keeps both on one core (a ping-pong hands over
 * without a cross-core wake-up, which is slow on a VM, but throughput halves)
 * and sometimes spreads them.  Every figure therefore carries same_cpu: the
 * fraction of its samples in which both threads last ran on the same core.
 * A ratio means most when both sides of it have the same same_cpu.  Other
 * processes disturb the figures too, so each section ends with a `load` line
 * (CPU the rest of the machine used meanwhile), and each throughput figure
 * also gives its CPU cost (process CPU time per GB or per call) and that
 * cost's ratio to the plain one: a cost moves much less than a rate when
 * cores are taken away.
 *
 * The benchmark's own hot path does not allocate: calls live in a
 * preallocated slot array, latency samples in a preallocated array, and the
 * bulk buffers are made once.  The RPC layer allocates each received message
 * itself; that is part of what is measured.  GB/s is 1e9 bytes per second.
 */
#include "ks/rpc.h"
#include "ks/config.h"
#include "ks/endian.h"
#include "ks/err.h"

#include "bench_util.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BULK_SIZE ((size_t)4 << 20) /* 4 MiB: one chunk-sized payload */
#define MSG_SIZE 48                 /* KS_RPC_HDR_SIZE: an empty frame */
#define OPS_CONC 64
#define BULK_CONC 4
#define MAX_CONC OPS_CONC
#define CALL_TIMEOUT_MS 30000
#define WARMUP_CALLS 1000
#define LAT_CALLS 20000
#define QUICK_LAT_CALLS 2000
#define QUICK_RUN_NS 250000000ULL /* --quick: 0.25 s per figure */
#define MAX_WARM_NS 300000000ULL
#define TARGET_TCP_BULK 0.70
#define TARGET_TLS_BULK 0.40

_Static_assert(MSG_SIZE == KS_RPC_HDR_SIZE, "plain rtt mirrors an empty frame");
_Static_assert(BULK_CONC <= MAX_CONC && OPS_CONC <= MAX_CONC, "slot array");
_Static_assert(BULK_SIZE <= KS_RPC_DEFAULT_MAX_BULK, "bulk fits the default");

/* ---- settings ------------------------------------------------------------ */

typedef struct bench_settings {
  int64_t seconds_ms;
  char *certs;
  bool quick;
} bench_settings_t;

static const ks_opt_t bench_opts[] = {
    {"seconds", KS_OPT_DURATION_MS, "2s", 100, 600000, NULL,
     "duration of each timed throughput measurement",
     offsetof(bench_settings_t, seconds_ms)},
    {"certs", KS_OPT_STRING, NULL, 0, 0, NULL,
     "directory with ca.pem, server.pem/key, client.pem/key; unset: "
     "<exe dir>/../tests/certs; TLS is skipped if they are missing",
     offsetof(bench_settings_t, certs)},
    {"quick", KS_OPT_BOOL, "false", 0, 0, NULL,
     "short runs (at most 0.25 s each, 2000 round trips): a smoke test; "
     "also KS_BENCH_QUICK=1",
     offsetof(bench_settings_t, quick)},
};

/* What one run measures, derived from the settings. */
typedef struct plan {
  uint64_t run_ns;   /* each timed throughput measurement */
  uint64_t warm_ns;  /* warm-up before it */
  int64_t lat_calls; /* timed round trips (plain and RPC) */
} plan_t;

/* ---- helpers ------------------------------------------------------------- */

/* Whether this thread runs on the core another thread last noted. */
static bool on_core_of(atomic_int *peer_cpu)
{
  return sched_getcpu() == atomic_load_explicit(peer_cpu, memory_order_relaxed);
}

static void note_core(atomic_int *cpu)
{
  atomic_store_explicit(cpu, sched_getcpu(), memory_order_relaxed);
}

/* <dir of this executable>/../tests/certs, or "" if it cannot be found. */
static void default_certs(char *out, size_t size)
{
  char exe[PATH_MAX];
  out[0] = '\0';
  if (ks_bench_exe_dir(exe, sizeof(exe)) != 0)
    return;
  if (snprintf(out, size, "%s/../tests/certs", exe) >= (int)size)
    out[0] = '\0';
}

/* ---- plain sockets: the limits ------------------------------------------- */

/* A connected loopback TCP pair.  0, or -1 with nothing left open. */
static int plain_pair(int *a, int *b)
{
  *a = *b = -1;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0)
    return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(sa);
  if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &len) != 0)
    goto err;
  *a = socket(AF_INET, SOCK_STREAM, 0);
  if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    goto err;
  *b = accept(ls, NULL, NULL);
  if (*b < 0)
    goto err;
  close(ls);
  return 0;
err:
  if (*a >= 0)
    close(*a);
  *a = -1;
  close(ls);
  return -1;
}

static void set_nodelay(int fd)
{
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Read or write exactly n bytes (blocking).  0, or -1 on error or EOF. */
static int read_full(int fd, uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Besides rates, each throughput figure has its CPU cost: CPU seconds both
 * threads used per GB, or microseconds per message.  Unlike a rate, the cost
 * barely moves when other processes take cores away, so its ratio to the
 * plain one is the steadier comparison on a busy machine. */
typedef struct limits {
  double copy_gbps, copy_same, copy_cpu_s_gb;
  int sndbuf, rcvbuf; /* at connect; Linux autotunes them from there */
  double rtt_p50_us, rtt_p99_us, rtt_same;
  double batch_msgs_s, batch_same, batch_cpu_us;
  double other_cores; /* CPU other processes used meanwhile */
} limits_t;

/* The far end of a plain measurement: a copy writer or an echo. */
typedef struct peer {
  int fd;
  uint64_t run_ns; /* copy writer: how long to write */
  const uint8_t *buf;
  atomic_int cpu; /* where it last ran */
  int err;
} peer_t;

static void copy_writer_main(void *arg)
{
  peer_t *w = arg;
  uint64_t end = uv_hrtime() + w->run_ns;
  while (uv_hrtime() < end) {
    note_core(&w->cpu);
    if (write_full(w->fd, w->buf, BULK_SIZE) != 0) {
      w->err = -1;
      break;
    }
  }
  shutdown(w->fd, SHUT_WR); /* the reader sees EOF and stops its clock */
}

/* (a) plain loopback socket copy.  The clock runs from the writer's start
 * to EOF on the reader, so everything written is counted and waited for. */
static int limit_copy(const plan_t *pl, const uint8_t *wbuf, uint8_t *rbuf,
                      limits_t *out)
{
  int a, b;
  if (plain_pair(&a, &b) != 0)
    return -1;
  socklen_t len = sizeof(int);
  getsockopt(a, SOL_SOCKET, SO_SNDBUF, &out->sndbuf, &len);
  len = sizeof(int);
  getsockopt(b, SOL_SOCKET, SO_RCVBUF, &out->rcvbuf, &len);
  peer_t w = {.fd = a, .run_ns = pl->run_ns, .buf = wbuf, .cpu = -1};
  uv_thread_t tid;
  double cpu0 = ks_bench_self_cpu_s();
  uint64_t t0 = uv_hrtime();
  if (uv_thread_create(&tid, copy_writer_main, &w) != 0) {
    close(a);
    close(b);
    return -1;
  }
  uint64_t bytes = 0;
  int64_t reads = 0, same = 0;
  int rc = 0;
  for (;;) {
    ssize_t r = recv(b, rbuf, BULK_SIZE, 0);
    if (r == 0)
      break;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      rc = -1;
      break;
    }
    bytes += (uint64_t)r;
    reads++;
    same += on_core_of(&w.cpu);
  }
  uint64_t t1 = uv_hrtime();
  uv_thread_join(&tid);
  double cpu = ks_bench_self_cpu_s() - cpu0;
  close(a);
  close(b);
  if (w.err != 0 || rc != 0)
    return -1;
  out->copy_gbps = (double)bytes / (double)(t1 - t0);
  out->copy_same = ks_bench_frac(same, reads);
  out->copy_cpu_s_gb = cpu / ((double)bytes / 1e9);
  return 0;
}

/* The other end of (b) and (c): echo whatever arrives until EOF. */
static void echo_main(void *arg)
{
  peer_t *e = arg;
  uint8_t buf[OPS_CONC * MSG_SIZE];
  for (;;) {
    ssize_t r = recv(e->fd, buf, sizeof(buf), 0);
    if (r < 0 && errno == EINTR)
      continue;
    note_core(&e->cpu);
    if (r <= 0 || write_full(e->fd, buf, (size_t)r) != 0)
      break;
  }
}

/* (b) plain round trip, then (c) plain batch, against one echo thread. */
static int limit_rtt(const plan_t *pl, uint64_t *samples, limits_t *out)
{
  int a, b;
  if (plain_pair(&a, &b) != 0)
    return -1;
  set_nodelay(a);
  set_nodelay(b);
  uv_thread_t tid;
  peer_t e = {.fd = b, .cpu = -1};
  if (uv_thread_create(&tid, echo_main, &e) != 0) {
    close(a);
    close(b);
    return -1;
  }
  uint8_t msg[OPS_CONC * MSG_SIZE];
  memset(msg, 0x5a, sizeof(msg));
  int rc = 0;
  int64_t n = WARMUP_CALLS + pl->lat_calls, same = 0;
  for (int64_t i = 0; i < n && rc == 0; i++) {
    uint64_t t = uv_hrtime();
    rc = write_full(a, msg, MSG_SIZE);
    if (rc == 0)
      rc = read_full(a, msg, MSG_SIZE);
    if (i < WARMUP_CALLS)
      continue;
    samples[i - WARMUP_CALLS] = uv_hrtime() - t;
    same += on_core_of(&e.cpu);
  }
  int64_t batches = 0, bsame = 0;
  double cpu0 = ks_bench_self_cpu_s();
  uint64_t t0 = uv_hrtime(), t1 = t0;
  while (rc == 0 && t1 - t0 < pl->run_ns) {
    rc = write_full(a, msg, sizeof(msg));
    if (rc == 0)
      rc = read_full(a, msg, sizeof(msg));
    batches++;
    bsame += on_core_of(&e.cpu);
    t1 = uv_hrtime();
  }
  double cpu = ks_bench_self_cpu_s() - cpu0;
  close(a); /* the echo thread sees EOF */
  uv_thread_join(&tid);
  close(b);
  if (rc != 0)
    return -1;
  qsort(samples, (size_t)pl->lat_calls, sizeof(*samples), ks_bench_cmp_u64);
  out->rtt_p50_us = ks_bench_pct_us(samples, (size_t)pl->lat_calls, 50);
  out->rtt_p99_us = ks_bench_pct_us(samples, (size_t)pl->lat_calls, 99);
  out->rtt_same = ks_bench_frac(same, pl->lat_calls);
  out->batch_msgs_s = (double)(batches * OPS_CONC) / ks_bench_secs_of(t1 - t0);
  out->batch_same = ks_bench_frac(bsame, batches);
  out->batch_cpu_us = cpu * 1e6 / (double)(batches * OPS_CONC);
  return 0;
}

/* ---- the Kiseki server thread -------------------------------------------- */

typedef struct srv_thread {
  uv_thread_t tid;
  uv_loop_t loop;
  uv_async_t stop;
  uv_check_t check; /* after each poll phase: note the core that served */
  atomic_int cpu;
  uv_sem_t ready;
  ks_rpc_server_t *srv;
  ks_rpc_tls_t *tls;
  uint16_t port;
  int rc;       /* start-up result */
  int close_rc; /* uv_loop_close() */
} srv_thread_t;

static void srv_stop_cb(uv_async_t *a)
{
  srv_thread_t *st = a->data;
  ks_rpc_server_close(st->srv, NULL, NULL);
  uv_close((uv_handle_t *)&st->check, NULL);
  uv_close((uv_handle_t *)&st->stop, NULL);
}

static void srv_check_cb(uv_check_t *c)
{
  srv_thread_t *st = c->data;
  note_core(&st->cpu);
}

static void srv_main(void *arg)
{
  srv_thread_t *st = arg;
  ks_rpc_opts_t o = {.tls = st->tls};
  st->rc = uv_loop_init(&st->loop);
  if (st->rc != 0) {
    uv_sem_post(&st->ready);
    return;
  }
  st->rc = ks_rpc_server_new(&st->loop, "127.0.0.1", 0, &o, &st->srv);
  if (st->rc == 0)
    st->rc = ks_rpc_ping_register(st->srv);
  if (st->rc == 0) {
    st->stop.data = st;
    st->rc = uv_async_init(&st->loop, &st->stop, srv_stop_cb);
  }
  if (st->rc == 0) {
    st->check.data = st;
    uv_check_init(&st->loop, &st->check);
    uv_check_start(&st->check, srv_check_cb);
    uv_unref((uv_handle_t *)&st->check); /* only `stop` keeps the loop */
    st->port = ks_rpc_server_port(st->srv);
  } else if (st->srv != NULL) {
    ks_rpc_server_close(st->srv, NULL, NULL);
  }
  uv_sem_post(&st->ready);
  uv_run(&st->loop, UV_RUN_DEFAULT); /* until srv_stop_cb closed it all */
  st->close_rc = uv_loop_close(&st->loop);
}

static int srv_start(srv_thread_t *st, ks_rpc_tls_t *tls)
{
  memset(st, 0, sizeof(*st));
  st->tls = tls;
  atomic_init(&st->cpu, -1);
  if (uv_sem_init(&st->ready, 0) != 0)
    return -1;
  if (uv_thread_create(&st->tid, srv_main, st) != 0) {
    uv_sem_destroy(&st->ready);
    return -1;
  }
  uv_sem_wait(&st->ready);
  uv_sem_destroy(&st->ready);
  if (st->rc != 0) {
    uv_thread_join(&st->tid);
    fprintf(stderr, "ks-bench-rpc: server: %s\n", ks_strerror(st->rc));
    return -1;
  }
  return 0;
}

/* Returns 0 if the server's loop closed with no handle left open. */
static int srv_stop(srv_thread_t *st)
{
  uv_async_send(&st->stop);
  uv_thread_join(&st->tid);
  return st->close_rc;
}

/* ---- the Kiseki client: a closed loop of calls --------------------------- */

typedef struct driver driver_t;

typedef struct slot {
  ks_rpc_call_t call;
  uint64_t t0;
  driver_t *d;
} slot_t;

/* One measurement: which call, how many at once, until when. */
struct driver {
  uv_loop_t *loop;
  ks_rpc_client_t *cl;
  atomic_int *peer_cpu; /* the server thread's core */
  uint16_t op;
  struct iovec body, bulk;
  uint64_t expect_bulk; /* response bulk length every reply must have */
  int conc;
  int64_t limit;     /* calls to start */
  uint64_t deadline; /* no call starts after this (uv_hrtime) */
  uint64_t *samples; /* per-call round trip, or NULL */
  int64_t started, done, inflight, same_cpu;
  uint64_t t_start, t_last;
  double cpu_s; /* process CPU time of the timed run */
  int first_err;
  slot_t slots[MAX_CONC];
};

static void driver_start(driver_t *d, slot_t *s);

static void driver_fail(driver_t *d, int err)
{
  if (d->first_err == 0)
    d->first_err = err;
}

static void driver_call_cb(ks_rpc_call_t *call, int status, ks_rpc_msg_t *resp)
{
  slot_t *s = call->data;
  driver_t *d = s->d;
  uint64_t now = uv_hrtime();
  if (d->samples != NULL)
    d->samples[d->done] = now - s->t0;
  d->same_cpu += on_core_of(d->peer_cpu);
  if (status != 0)
    driver_fail(d, status);
  else if (resp->bulk_len != d->expect_bulk)
    driver_fail(d, KS_EPROTO);
  ks_rpc_msg_free(resp);
  d->done++;
  d->inflight--;
  d->t_last = now;
  if (d->first_err == 0 && d->started < d->limit && now < d->deadline)
    driver_start(d, s);
  /* The open connection keeps the loop alive: stop it when all are done. */
  if (d->inflight == 0)
    uv_stop(d->loop);
}

static void driver_start(driver_t *d, slot_t *s)
{
  s->d = d;
  s->call.data = s;
  s->t0 = uv_hrtime();
  d->started++;
  d->inflight++;
  int rc = ks_rpc_call_start(
      d->cl, &s->call, d->op, &d->body, d->body.iov_len ? 1 : 0, &d->bulk,
      d->bulk.iov_len ? 1 : 0, CALL_TIMEOUT_MS, driver_call_cb);
  if (rc != 0) {
    d->started--;
    d->inflight--;
    driver_fail(d, rc);
  }
}

/* Point d at a new measurement, keeping its loop, client and peer core. */
static void driver_setup(driver_t *d, uint16_t op, int conc)
{
  *d = (driver_t){.loop = d->loop,
                  .cl = d->cl,
                  .peer_cpu = d->peer_cpu,
                  .op = op,
                  .conc = conc};
}

/* Run d to completion: up to `limit` calls, none started after `run_ns`
 * (0: no time limit).  Returns the first failed call's status, or 0. */
static int driver_run(driver_t *d, int64_t limit, uint64_t run_ns)
{
  d->started = d->done = d->inflight = d->same_cpu = 0;
  d->first_err = 0;
  d->limit = limit;
  d->t_start = d->t_last = uv_hrtime();
  d->deadline = run_ns ? d->t_start + run_ns : UINT64_MAX;
  for (int i = 0; i < d->conc && d->started < d->limit; i++)
    driver_start(d, &d->slots[i]);
  if (d->inflight > 0)
    uv_run(d->loop, UV_RUN_DEFAULT);
  return d->first_err;
}

/* Warm up, then time: `calls` round trips, or (calls == 0) for run_ns. */
static int driver_measure(driver_t *d, const plan_t *pl, int64_t calls)
{
  uint64_t *samples = d->samples;
  d->samples = NULL;
  int rc =
      driver_run(d, calls ? WARMUP_CALLS : INT64_MAX, calls ? 0 : pl->warm_ns);
  d->samples = samples;
  double cpu0 = ks_bench_self_cpu_s();
  if (rc == 0)
    rc = driver_run(d, calls ? calls : INT64_MAX, calls ? 0 : pl->run_ns);
  d->cpu_s = ks_bench_self_cpu_s() - cpu0;
  return rc;
}

static double driver_secs(const driver_t *d)
{
  return ks_bench_secs_of(d->t_last - d->t_start);
}

static double driver_same(const driver_t *d)
{
  return ks_bench_frac(d->same_cpu, d->done);
}

/* ---- one transport: check, then measure ---------------------------------- */

typedef struct rpc_figs {
  bool ran;
  double rtt_p50_us, rtt_p99_us, rtt_same;
  double ops_s, ops_same, ops_cpu_us;
  double write_gbps, write_same, write_cpu_s_gb;
  double read_gbps, read_same, read_cpu_s_gb;
  double other_cores; /* CPU other processes used meanwhile */
} rpc_figs_t;

typedef struct once {
  bool done;
  int status;
  ks_rpc_msg_t *resp;
  uv_loop_t *loop;
} once_t;

static void once_cb(ks_rpc_call_t *call, int status, ks_rpc_msg_t *resp)
{
  once_t *o = call->data;
  o->done = true;
  o->status = status;
  o->resp = resp;
  uv_stop(o->loop);
}

/* One call, waited for.  Returns its status; *resp as the callback got it. */
static int call_once(uv_loop_t *loop, ks_rpc_client_t *cl, uint16_t op,
                     const struct iovec *body, const struct iovec *bulk,
                     ks_rpc_msg_t **resp)
{
  once_t o = {.loop = loop};
  ks_rpc_call_t c;
  c.data = &o;
  *resp = NULL;
  int rc = ks_rpc_call_start(cl, &c, op, body, body && body->iov_len ? 1 : 0,
                             bulk, bulk && bulk->iov_len ? 1 : 0,
                             CALL_TIMEOUT_MS, once_cb);
  if (rc != 0)
    return rc;
  while (!o.done)
    uv_run(loop, UV_RUN_DEFAULT);
  *resp = o.resp;
  return o.status;
}

static bool all_zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return false;
  return true;
}

/* The functional check before any timing (it also connects and, with TLS,
 * handshakes).  Returns 0, or -1 after printing what went wrong. */
static int rpc_verify(uv_loop_t *loop, ks_rpc_client_t *cl, const char *tr,
                      const uint8_t *pattern)
{
  static const char body_text[] = "ks-bench-rpc";
  struct iovec body = {(void *)body_text, sizeof(body_text)};
  struct iovec bulk = {(void *)pattern, BULK_SIZE};
  ks_rpc_msg_t *r;
  int rc = call_once(loop, cl, KS_OP_PING, &body, &bulk, &r);
  bool ok = rc == 0 && r->body_len == sizeof(body_text) &&
            memcmp(r->body, body_text, sizeof(body_text)) == 0 &&
            r->bulk_len == BULK_SIZE &&
            memcmp(r->bulk, pattern, BULK_SIZE) == 0;
  ks_rpc_msg_free(r);
  if (!ok) {
    fprintf(stderr, "ks-bench-rpc: %s: PING 4 MiB echo %s (%s)\n", tr,
            rc ? "failed" : "differs", ks_strerror(rc));
    return -1;
  }
  uint8_t n[8];
  ks_put_le64(n, BULK_SIZE);
  struct iovec nb = {n, sizeof(n)};
  rc = call_once(loop, cl, KS_OP_SOURCE, &nb, NULL, &r);
  ok = rc == 0 && r->bulk_len == BULK_SIZE && all_zero(r->bulk, BULK_SIZE);
  ks_rpc_msg_free(r);
  if (!ok) {
    fprintf(stderr, "ks-bench-rpc: %s: SOURCE 4 MiB %s (%s)\n", tr,
            rc ? "failed" : "wrong", ks_strerror(rc));
    return -1;
  }
  rc = call_once(loop, cl, KS_OP_SINK, NULL, &bulk, &r);
  ok = rc == 0 && r->bulk_len == 0;
  ks_rpc_msg_free(r);
  if (!ok) {
    fprintf(stderr, "ks-bench-rpc: %s: SINK 4 MiB failed (%s)\n", tr,
            ks_strerror(rc));
    return -1;
  }
  return 0;
}

static int rpc_measure(driver_t *d, const plan_t *pl, const char *tr,
                       const uint8_t *pattern, uint64_t *samples, rpc_figs_t *f)
{
  uint8_t source_n[8]; /* outlives every SOURCE call: all complete here */
  ks_put_le64(source_n, BULK_SIZE);
  /* Latency: PING, empty, one at a time. */
  const char *what = "rtt";
  driver_setup(d, KS_OP_PING, 1);
  d->samples = samples;
  int rc = driver_measure(d, pl, pl->lat_calls);
  if (rc != 0)
    goto err;
  qsort(samples, (size_t)d->done, sizeof(*samples), ks_bench_cmp_u64);
  f->rtt_p50_us = ks_bench_pct_us(samples, (size_t)d->done, 50);
  f->rtt_p99_us = ks_bench_pct_us(samples, (size_t)d->done, 99);
  f->rtt_same = driver_same(d);
  /* Small-call rate: PING, empty, 64 in flight. */
  what = "ops";
  driver_setup(d, KS_OP_PING, OPS_CONC);
  if ((rc = driver_measure(d, pl, 0)) != 0)
    goto err;
  f->ops_s = (double)d->done / driver_secs(d);
  f->ops_same = driver_same(d);
  f->ops_cpu_us = d->cpu_s * 1e6 / (double)d->done;
  /* Client -> server bulk: SINK with 4 MiB, 4 in flight. */
  what = "bulk_write";
  driver_setup(d, KS_OP_SINK, BULK_CONC);
  d->bulk = (struct iovec){(void *)pattern, BULK_SIZE};
  if ((rc = driver_measure(d, pl, 0)) != 0)
    goto err;
  f->write_gbps = (double)d->done * BULK_SIZE / 1e9 / driver_secs(d);
  f->write_same = driver_same(d);
  f->write_cpu_s_gb = d->cpu_s / ((double)d->done * BULK_SIZE / 1e9);
  /* Server -> client bulk: SOURCE n = 4 MiB, 4 in flight. */
  what = "bulk_read";
  driver_setup(d, KS_OP_SOURCE, BULK_CONC);
  d->body = (struct iovec){source_n, sizeof(source_n)};
  d->expect_bulk = BULK_SIZE;
  if ((rc = driver_measure(d, pl, 0)) != 0)
    goto err;
  f->read_gbps = (double)d->done * BULK_SIZE / 1e9 / driver_secs(d);
  f->read_same = driver_same(d);
  f->read_cpu_s_gb = d->cpu_s / ((double)d->done * BULK_SIZE / 1e9);
  f->ran = true;
  return 0;
err:
  fprintf(stderr, "ks-bench-rpc: %s %s: call failed: %s\n", tr, what,
          ks_strerror(rc));
  return -1;
}

static void client_closed_cb(void *arg)
{
  *(bool *)arg = true;
}

/* Server thread + client on a loop of our own: check, measure, then shut
 * both down and require that both loops close with nothing left open.
 * Returns 0, or -1 after a functional failure (already reported). */
static int rpc_run(const plan_t *pl, const char *tr, ks_rpc_tls_t *stls,
                   ks_rpc_tls_t *ctls, const uint8_t *pattern,
                   uint64_t *samples, rpc_figs_t *f)
{
  ks_bench_load_mark_t mark;
  ks_bench_load_mark(&mark);
  srv_thread_t st;
  if (srv_start(&st, stls) != 0)
    return -1;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    srv_stop(&st);
    return -1;
  }
  ks_rpc_opts_t o = {.tls = ctls};
  driver_t *d = calloc(1, sizeof(*d)); /* ~10 KiB of slots: not on the stack */
  ks_rpc_client_t *cl = NULL;
  int rc =
      d ? ks_rpc_client_new(&loop, "127.0.0.1", st.port, &o, &cl) : -ENOMEM;
  if (rc != 0) {
    fprintf(stderr, "ks-bench-rpc: %s client: %s\n", tr, ks_strerror(rc));
  } else {
    d->loop = &loop;
    d->cl = cl;
    d->peer_cpu = &st.cpu;
    rc = rpc_verify(&loop, cl, tr, pattern);
    if (rc == 0)
      rc = rpc_measure(d, pl, tr, pattern, samples, f);
    f->other_cores = ks_bench_load_other(&mark);
  }
  if (cl != NULL) {
    bool closed = false;
    ks_rpc_client_close(cl, client_closed_cb, &closed);
    while (!closed)
      uv_run(&loop, UV_RUN_DEFAULT);
  }
  int lrc = uv_loop_close(&loop);
  int src = srv_stop(&st);
  free(d);
  if (lrc != 0 || src != 0) {
    fprintf(stderr,
            "ks-bench-rpc: %s: a loop closed with handles open "
            "(client %s, server %s)\n",
            tr, uv_err_name(lrc), uv_err_name(src));
    return -1;
  }
  return rc == 0 ? 0 : -1;
}

/* ---- TLS set-up ---------------------------------------------------------- */

/* dir/name into out[PATH_MAX]; false if it does not fit. */
static bool cert_path(char *out, const char *dir, const char *name)
{
  int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
  return n > 0 && n < PATH_MAX;
}

static const char *certs_missing(const char *dir)
{
  static const char *const need[] = {"ca.pem", "server.pem", "server.key",
                                     "client.pem", "client.key"};
  char p[PATH_MAX];
  for (size_t i = 0; i < KS_NELEM(need); i++)
    if (dir[0] == '\0' || !cert_path(p, dir, need[i]) || access(p, R_OK) != 0)
      return need[i];
  return NULL;
}

static int tls_load(const char *dir, const char *who, const char *server_name,
                    ks_rpc_tls_t **out)
{
  char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], pem[32], keyf[32];
  snprintf(pem, sizeof(pem), "%s.pem", who);
  snprintf(keyf, sizeof(keyf), "%s.key", who);
  if (!cert_path(ca, dir, "ca.pem") || !cert_path(cert, dir, pem) ||
      !cert_path(key, dir, keyf))
    return -ENAMETOOLONG;
  ks_rpc_tls_opts_t o = {.ca_file = ca,
                         .cert_file = cert,
                         .key_file = key,
                         .server_name = server_name};
  return ks_rpc_tls_new(&o, out);
}

/* ---- report -------------------------------------------------------------- */

static void print_setup(const plan_t *pl, const char *cpu, long cores,
                        bool quick)
{
  printf("setup cpu=\"%s\" cores=%ld build=\"%s\"\n", cpu, cores,
         ks_bench_build_desc());
  printf("setup payload: bulk %zu B (4 MiB), small messages %d B (empty "
         "frame); in flight: rtt 1, ops %d, bulk %d\n",
         BULK_SIZE, MSG_SIZE, OPS_CONC, BULK_CONC);
  printf("setup durations: %.2f s per throughput figure after %.2f s warm-up; "
         "%lld timed round trips after %d warm-up%s\n",
         ks_bench_secs_of(pl->run_ns), ks_bench_secs_of(pl->warm_ns),
         (long long)pl->lat_calls, WARMUP_CALLS, quick ? " (--quick)" : "");
  printf("setup loopback 127.0.0.1, two threads per figure, nothing pinned; "
         "GB/s = 1e9 B/s\n");
  printf("setup note: same_cpu = share of samples with both threads on one "
         "core; a round trip is much faster then (no cross-core wake-up), "
         "throughput slower; compare ratios whose same_cpu match\n");
  printf("setup note: SOURCE replies from a never-written static buffer (the "
         "kernel's zero page, cache-hot), so bulk_read may beat the plain "
         "copy, which sends a real 4 MiB buffer\n");
}

/* The `load` lines' section names ("limits", "tcp", "tls") are padded to
 * this width. */
#define LOAD_WIDTH 6

static void print_limits(const limits_t *l)
{
  printf("limit plain_copy_4MiB     %8.2f GB/s     cpu %5.2f s/GB    "
         "same_cpu=%3.0f%%  (blocking; default buffers: SO_SNDBUF=%d "
         "SO_RCVBUF=%d at connect, autotuned)\n",
         l->copy_gbps, l->copy_cpu_s_gb, 100 * l->copy_same, l->sndbuf,
         l->rcvbuf);
  printf("limit plain_rtt_48B       p50 %6.1f us  p99 %6.1f us       "
         "same_cpu=%3.0f%%  (blocking, TCP_NODELAY, echo thread)\n",
         l->rtt_p50_us, l->rtt_p99_us, 100 * l->rtt_same);
  printf("limit plain_batch_64x48B  %8.0f msgs/s   cpu %5.2f us/msg  "
         "same_cpu=%3.0f%%  (64 x 48 B written at once, echoed, read back)\n",
         l->batch_msgs_s, l->batch_cpu_us, 100 * l->batch_same);
}

static void print_bulk(const char *tr, const char *name, double gbps,
                       double cpu_s_gb, double same, const limits_t *l,
                       double target)
{
  double r = gbps / l->copy_gbps;
  printf("rpc %s %-17s %8.2f GB/s     cpu %5.2f s/GB    same_cpu=%3.0f%%  "
         "ratio_to_plain_copy=%.2f (target >= %.2f) %-5s  "
         "cpu_ratio_to_plain=%.2f\n",
         tr, name, gbps, cpu_s_gb, 100 * same, r, target,
         ks_bench_verdict(r, target), cpu_s_gb / l->copy_cpu_s_gb);
}

static void print_rpc(const char *tr, const rpc_figs_t *f, const limits_t *l,
                      double target)
{
  printf("rpc %s rtt_empty         p50 %6.1f us  p99 %6.1f us       "
         "same_cpu=%3.0f%%  ratio_p50_to_plain_rtt=%.2f\n",
         tr, f->rtt_p50_us, f->rtt_p99_us, 100 * f->rtt_same,
         f->rtt_p50_us / l->rtt_p50_us);
  printf("rpc %s ops_c64_empty     %8.0f calls/s  cpu %5.2f us/call "
         "same_cpu=%3.0f%%  ratio_to_plain_batch=%.2f  "
         "cpu_ratio_to_plain=%.2f\n",
         tr, f->ops_s, f->ops_cpu_us, 100 * f->ops_same,
         f->ops_s / l->batch_msgs_s, f->ops_cpu_us / l->batch_cpu_us);
  print_bulk(tr, "bulk_write_4MiB", f->write_gbps, f->write_cpu_s_gb,
             f->write_same, l, target);
  print_bulk(tr, "bulk_read_4MiB", f->read_gbps, f->read_cpu_s_gb, f->read_same,
             l, target);
}

static void json_rpc(const char *tr, const rpc_figs_t *f, const limits_t *l,
                     double target)
{
  if (!f->ran) {
    printf(",\"%s\":null", tr);
    return;
  }
  printf(",\"%s\":{\"rtt_p50_us\":%.2f,\"rtt_p99_us\":%.2f,"
         "\"rtt_same_cpu\":%.3f,\"rtt_p50_ratio\":%.3f,"
         "\"ops_per_s\":%.0f,\"ops_cpu_us\":%.3f,\"ops_same_cpu\":%.3f,"
         "\"ops_ratio\":%.3f,",
         tr, f->rtt_p50_us, f->rtt_p99_us, f->rtt_same,
         f->rtt_p50_us / l->rtt_p50_us, f->ops_s, f->ops_cpu_us, f->ops_same,
         f->ops_s / l->batch_msgs_s);
  printf("\"bulk_write_gbps\":%.3f,\"bulk_write_cpu_s_per_gb\":%.3f,"
         "\"bulk_write_same_cpu\":%.3f,\"bulk_write_ratio\":%.3f,"
         "\"bulk_read_gbps\":%.3f,\"bulk_read_cpu_s_per_gb\":%.3f,"
         "\"bulk_read_same_cpu\":%.3f,\"bulk_read_ratio\":%.3f,"
         "\"bulk_target\":%.2f,\"other_cores\":%.2f}",
         f->write_gbps, f->write_cpu_s_gb, f->write_same,
         f->write_gbps / l->copy_gbps, f->read_gbps, f->read_cpu_s_gb,
         f->read_same, f->read_gbps / l->copy_gbps, target, f->other_cores);
}

static void print_json(const plan_t *pl, const char *cpu, long cores, bool ok,
                       const limits_t *l, const rpc_figs_t *tcp,
                       const rpc_figs_t *tls)
{
  printf("json: {\"bench\":\"rpc\",\"cpu\":\"%s\",\"cores\":%ld,"
         "\"build\":\"%s\",\"seconds\":%.3f,\"lat_calls\":%lld,"
         "\"bulk_bytes\":%zu,\"ok\":%s,",
         cpu, cores, ks_bench_build_desc(), ks_bench_secs_of(pl->run_ns),
         (long long)pl->lat_calls, BULK_SIZE, ok ? "true" : "false");
  printf("\"plain\":{\"copy_gbps\":%.3f,\"copy_cpu_s_per_gb\":%.3f,"
         "\"copy_same_cpu\":%.3f,\"sndbuf\":%d,\"rcvbuf\":%d,"
         "\"rtt_p50_us\":%.2f,\"rtt_p99_us\":%.2f,\"rtt_same_cpu\":%.3f,"
         "\"batch_msgs_per_s\":%.0f,\"batch_cpu_us\":%.3f,"
         "\"batch_same_cpu\":%.3f,\"other_cores\":%.2f}",
         l->copy_gbps, l->copy_cpu_s_gb, l->copy_same, l->sndbuf, l->rcvbuf,
         l->rtt_p50_us, l->rtt_p99_us, l->rtt_same, l->batch_msgs_s,
         l->batch_cpu_us, l->batch_same, l->other_cores);
  json_rpc("tcp", tcp, l, TARGET_TCP_BULK);
  json_rpc("tls", tls, l, TARGET_TLS_BULK);
  printf("}\n");
}

/* ---- main ---------------------------------------------------------------- */

/* TLS part: skipped with a message when the certificates are not there. */
static int bench_tls(const plan_t *pl, const char *certs,
                     const uint8_t *pattern, uint64_t *samples,
                     const limits_t *lim, long cores, rpc_figs_t *f)
{
  const char *missing = certs_missing(certs);
  if (missing) {
    printf("rpc tls SKIPPED: no %s in %s (build the ks-test-certs target or "
           "pass --certs DIR)\n",
           missing, certs[0] ? certs : "(unknown directory)");
    return 0;
  }
  ks_rpc_tls_t *stls = NULL, *ctls = NULL;
  int rc = -1;
  if (tls_load(certs, "server", NULL, &stls) != 0 ||
      tls_load(certs, "client", "127.0.0.1", &ctls) != 0)
    fprintf(stderr, "ks-bench-rpc: cannot load the certificates in %s\n",
            certs);
  else
    rc = rpc_run(pl, "tls", stls, ctls, pattern, samples, f);
  if (rc == 0) {
    print_rpc("tls", f, lim, TARGET_TLS_BULK);
    ks_bench_print_load(LOAD_WIDTH, "tls", f->other_cores, cores);
  }
  ks_rpc_tls_free(ctls);
  ks_rpc_tls_free(stls);
  return rc;
}

static int bench(const bench_settings_t *s)
{
  plan_t pl = {.run_ns = ks_bench_run_ns(s->seconds_ms, s->quick, QUICK_RUN_NS),
               .lat_calls = s->quick ? QUICK_LAT_CALLS : LAT_CALLS};
  pl.warm_ns = pl.run_ns / 5 < MAX_WARM_NS ? pl.run_ns / 5 : MAX_WARM_NS;

  char cpu[256], certs_default[PATH_MAX];
  ks_bench_cpu_model(cpu, sizeof(cpu));
  default_certs(certs_default, sizeof(certs_default));
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  print_setup(&pl, cpu, cores, s->quick);

  uint8_t *pattern = malloc(BULK_SIZE);
  uint8_t *rbuf = malloc(BULK_SIZE);
  uint64_t *samples = malloc((size_t)pl.lat_calls * sizeof(uint64_t));
  limits_t lim = {0};
  rpc_figs_t tcp = {0}, tls = {0};
  int rc = 1;
  if (!pattern || !rbuf || !samples) {
    fprintf(stderr, "ks-bench-rpc: out of memory\n");
    goto out;
  }
  for (size_t i = 0; i < BULK_SIZE; i++)
    pattern[i] = (uint8_t)(i * 31 + (i >> 13) + 7);
  ks_bench_load_mark_t mark;
  ks_bench_load_mark(&mark);
  if (limit_copy(&pl, pattern, rbuf, &lim) != 0 ||
      limit_rtt(&pl, samples, &lim) != 0) {
    fprintf(stderr, "ks-bench-rpc: plain socket limit failed: %s\n",
            strerror(errno));
    goto out;
  }
  lim.other_cores = ks_bench_load_other(&mark);
  print_limits(&lim);
  ks_bench_print_load(LOAD_WIDTH, "limits", lim.other_cores, cores);
  fflush(stdout);
  if (rpc_run(&pl, "tcp", NULL, NULL, pattern, samples, &tcp) == 0) {
    print_rpc("tcp", &tcp, &lim, TARGET_TCP_BULK);
    ks_bench_print_load(LOAD_WIDTH, "tcp", tcp.other_cores, cores);
    fflush(stdout);
    rc = bench_tls(&pl, s->certs ? s->certs : certs_default, pattern, samples,
                   &lim, cores, &tls) != 0;
  }
  print_json(&pl, cpu, cores, rc == 0, &lim, &tcp, &tls);
out:
  free(samples);
  free(rbuf);
  free(pattern);
  return rc;
}

int main(int argc, char **argv)
{
  bench_settings_t s;
  int rc;
  if (!ks_bench_args("ks-bench-rpc", bench_opts, KS_NELEM(bench_opts), argc,
                     argv, &s, &s.quick, &rc))
    return rc;
  signal(SIGPIPE, SIG_IGN); /* a peer's close is an error code, not a signal */
  rc = bench(&s);
  ks_cfg_free(bench_opts, KS_NELEM(bench_opts), &s);
  return rc;
}
