/*
 * test_chunk_service.c — chunkd's RPC service and libkiseki's frag_client
 * together, in one process on one loop over real sockets: 4 MiB fragments
 * round trip, ranges, many concurrent puts and gets through small device
 * queues, device listing, and every error travelling as the RPC status
 * (unknown device, missing fragment, different content, corruption on disk,
 * failed device, full queue, undecodable body).  Every test ends with
 * uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/chunk_service.h"
#include "ks/chunk_store.h"
#include "ks/err.h"
#include "ks/frag_client.h"
#include "ks/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NDEV 3
#define MiB (1024 * 1024)

typedef struct fx {
  char root[64];
  char dev[NDEV][128];
  ks_chunk_dev_conf_t conf[NDEV];
  ks_id_t ids[NDEV];
  uv_loop_t loop;
  ks_chunk_store_t *st;
  ks_chunk_service_t *svc;
  ks_rpc_server_t *srv;
  ks_rpc_client_t *cl;
} fx_t;

static void fx_start(fx_t *f, uint32_t dev_jobs, uint32_t dev_queue)
{
  memset(f, 0, sizeof(*f));
  snprintf(f->root, sizeof(f->root), "/tmp/ks-chunk-svc-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  char root[sizeof(f->root)];
  memcpy(root, f->root, sizeof(root));
  for (int i = 0; i < NDEV; i++) {
    char path[sizeof(f->dev[i])];
    snprintf(path, sizeof(path), "%s/d%d", root, i);
    memcpy(f->dev[i], path, sizeof(path));
    assert_int_equal(mkdir(f->dev[i], 0750), 0);
    f->conf[i].path = f->dev[i];
    f->conf[i].cls = KS_DEV_BULK_NVME;
  }
  assert_int_equal(ks_chunk_store_open(f->conf, NDEV, &f->st), 0);
  for (size_t i = 0; i < NDEV; i++) {
    ks_dev_info_t info;
    ks_chunk_store_dev_info(f->st, i, &info);
    f->ids[i] = info.id;
  }
  assert_int_equal(uv_loop_init(&f->loop), 0);
  ks_chunk_service_opts_t so = {dev_jobs, dev_queue};
  assert_int_equal(ks_chunk_service_new(&f->loop, f->st, &so, &f->svc), 0);
  assert_int_equal(ks_rpc_server_new(&f->loop, "127.0.0.1", 0, NULL, &f->srv),
                   0);
  assert_int_equal(ks_chunk_service_register(f->svc, f->srv), 0);
  assert_int_equal(ks_chunk_service_register(f->svc, f->srv), -EEXIST);
  ks_rpc_opts_t co = {.max_queued = 8192};
  assert_int_equal(ks_rpc_client_new(&f->loop, "127.0.0.1",
                                     ks_rpc_server_port(f->srv), &co, &f->cl),
                   0);
}

static void noop_timer_cb(uv_timer_t *t)
{
  (void)t;
}

static bool run_until(uv_loop_t *loop, const bool *flag, uint64_t timeout_ms)
{
  uint64_t end = uv_now(loop) + timeout_ms;
  uv_timer_t guard;
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

static void fx_stop(fx_t *f)
{
  bool c_done = false, s_done = false;
  ks_rpc_client_close(f->cl, flag_cb, &c_done);
  ks_rpc_server_close(f->srv, flag_cb, &s_done);
  assert_true(run_until(&f->loop, &c_done, 5000));
  assert_true(run_until(&f->loop, &s_done, 5000));
  assert_int_equal(ks_chunk_service_jobs(f->svc), 0);
  ks_chunk_service_free(f->svc);
  ks_chunk_store_close(f->st);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
  assert_int_equal(system(cmd), 0);
}

/* ---- one call at a time ------------------------------------------------- */

typedef struct res {
  bool done;
  int status;
} res_t;

static void res_cb(ks_frag_call_t *c, int status)
{
  res_t *r = c->data;
  r->done = true;
  r->status = status;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 131 + seed + (i >> 11));
  return p;
}

static ks_frag_req_t req_make(const fx_t *f, size_t dev, unsigned seed,
                              uint8_t index)
{
  ks_frag_req_t r = {.dev = f->ids[dev]};
  for (int i = 0; i < KS_CHUNK_ID_LEN; i++)
    r.key.chunk_id[i] = (uint8_t)(seed * 13 + i);
  r.key.index = index;
  return r;
}

static int wait_call(fx_t *f, ks_frag_call_t *c, res_t *r, int start_rc)
{
  assert_int_equal(start_rc, 0);
  assert_true(run_until(&f->loop, &r->done, 20000));
  (void)c;
  return r->status;
}

static int do_put(fx_t *f, const ks_frag_req_t *r, const uint8_t *p, size_t n)
{
  ks_frag_call_t c = {0};
  res_t res = {0};
  ks_frag_put_req_t pr = {.dev = r->dev, .key = r->key, .k = 4, .m = 2};
  struct iovec v = {(void *)p, n};
  c.data = &res;
  int rc = wait_call(f, &c, &res,
                     ks_frag_put(f->cl, &c, &pr, &v, n ? 1 : 0, 0, res_cb));
  ks_frag_call_release(&c);
  return rc;
}

/* Get r's range and compare with want (NULL: don't compare). */
static int do_get(fx_t *f, const ks_frag_req_t *r, const uint8_t *want,
                  size_t n)
{
  ks_frag_call_t c = {0};
  res_t res = {0};
  c.data = &res;
  int rc = wait_call(f, &c, &res, ks_frag_get(f->cl, &c, r, 0, res_cb));
  if (rc == 0 && want) {
    assert_int_equal(c.len, n);
    assert_int_equal(c.offset, r->offset);
    assert_memory_equal(c.bytes, want, n);
  }
  if (rc != 0)
    assert_null(c.bytes);
  ks_frag_call_release(&c);
  return rc;
}

static void test_round_trip_4mib(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0, 0);
  size_t n = 4 * MiB;
  uint8_t *p = pattern(n, 1);
  ks_frag_req_t r = req_make(&f, 1, 1, 5);

  assert_int_equal(do_get(&f, &r, NULL, 0), -ENOENT);
  assert_int_equal(do_put(&f, &r, p, n), 0);
  assert_int_equal(do_put(&f, &r, p, n), 0); /* idempotent */
  assert_int_equal(do_get(&f, &r, p, n), 0);

  ks_frag_call_t c = {0};
  res_t res = {0};
  c.data = &res;
  assert_int_equal(
      wait_call(&f, &c, &res, ks_frag_stat(f.cl, &c, &r, 0, res_cb)), 0);
  assert_int_equal(c.info.len, n);
  assert_int_equal(c.info.k, 4);
  assert_int_equal(c.info.m, 2);
  ks_frag_call_release(&c);

  r.offset = 3 * MiB + 17;
  r.length = 100000;
  assert_int_equal(do_get(&f, &r, p + r.offset, r.length), 0);
  r.length = 0;
  assert_int_equal(do_get(&f, &r, p + r.offset, n - r.offset), 0);
  r.offset = n;
  r.length = 1;
  assert_int_equal(do_get(&f, &r, NULL, 0), -EINVAL);
  r.offset = 0;
  r.length = 0;

  memset(&res, 0, sizeof(res));
  assert_int_equal(
      wait_call(&f, &c, &res, ks_frag_delete(f.cl, &c, &r, 0, res_cb)), 0);
  ks_frag_call_release(&c);
  memset(&res, 0, sizeof(res));
  assert_int_equal(
      wait_call(&f, &c, &res, ks_frag_delete(f.cl, &c, &r, 0, res_cb)),
      -ENOENT);
  ks_frag_call_release(&c);
  assert_int_equal(do_get(&f, &r, NULL, 0), -ENOENT);
  free(p);
  fx_stop(&f);
}

/* ---- many at once ------------------------------------------------------- */

#define MANY 96

typedef struct many {
  int done, failed;
  int first_err;
} many_t;

static void many_cb(ks_frag_call_t *c, int status)
{
  many_t *m = c->data;
  m->done++;
  if (status != 0) {
    m->failed++;
    if (m->first_err == 0)
      m->first_err = status;
  }
}

static bool many_finished(uv_loop_t *loop, const many_t *m, int n)
{
  bool flag = false;
  uint64_t end = uv_now(loop) + 60000;
  while (m->done < n && uv_now(loop) < end) {
    flag = false;
    run_until(loop, &flag, 20);
  }
  return m->done == n;
}

static void test_many_concurrent(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 2, 4096); /* few jobs per device: most calls wait in queues */
  ks_frag_call_t *calls = calloc(MANY, sizeof(*calls));
  uint8_t **data = calloc(MANY, sizeof(*data));
  size_t *len = calloc(MANY, sizeof(*len));
  ks_frag_req_t *reqs = calloc(MANY, sizeof(*reqs));
  assert_non_null(calls);
  assert_non_null(data);
  assert_non_null(len);
  assert_non_null(reqs);
  many_t m = {0};
  for (int i = 0; i < MANY; i++) {
    len[i] = (size_t)(i % 7 == 0 ? 4 * MiB : 37 * 1024 * (i + 1));
    data[i] = pattern(len[i], (unsigned)i);
    reqs[i] = req_make(&f, (size_t)i % NDEV, (unsigned)i, (uint8_t)(i % 6));
    ks_frag_put_req_t pr = {
        .dev = reqs[i].dev, .key = reqs[i].key, .k = 4, .m = 2};
    struct iovec v = {data[i], len[i]};
    calls[i].data = &m;
    assert_int_equal(ks_frag_put(f.cl, &calls[i], &pr, &v, 1, 0, many_cb), 0);
  }
  assert_true(many_finished(&f.loop, &m, MANY));
  assert_int_equal(m.failed, 0);
  memset(&m, 0, sizeof(m));
  for (int i = 0; i < MANY; i++) {
    ks_frag_call_release(&calls[i]);
    calls[i].data = &m;
    assert_int_equal(ks_frag_get(f.cl, &calls[i], &reqs[i], 0, many_cb), 0);
  }
  assert_true(many_finished(&f.loop, &m, MANY));
  assert_int_equal(m.failed, 0);
  for (int i = 0; i < MANY; i++) {
    assert_int_equal(calls[i].len, len[i]);
    assert_memory_equal(calls[i].bytes, data[i], len[i]);
    ks_frag_call_release(&calls[i]);
    free(data[i]);
  }
  /* the device list counts them */
  ks_frag_call_t c = {0};
  res_t res = {0};
  c.data = &res;
  assert_int_equal(
      wait_call(&f, &c, &res, ks_frag_dev_list(f.cl, &c, 0, res_cb)), 0);
  assert_int_equal(c.ndevs, NDEV);
  uint64_t total = 0;
  for (size_t i = 0; i < NDEV; i++) {
    assert_int_equal(ks_id_cmp(&c.devs[i].id, &f.ids[i]), 0);
    assert_string_equal(c.devs[i].path, f.dev[i]);
    assert_int_equal(c.devs[i].state, KS_DEV_OK);
    assert_int_equal(c.devs[i].cls, KS_DEV_BULK_NVME);
    assert_true(c.devs[i].capacity >= c.devs[i].free);
    assert_true(c.devs[i].capacity > 0);
    total += c.devs[i].frags;
  }
  assert_int_equal(total, MANY);
  ks_frag_call_release(&c);
  free(calls);
  free(data);
  free(len);
  free(reqs);
  fx_stop(&f);
}

/* ---- errors ------------------------------------------------------------- */

typedef struct raw {
  ks_rpc_call_t call;
  bool done;
  int status;
} raw_t;

static void raw_cb(ks_rpc_call_t *call, int status, ks_rpc_msg_t *resp)
{
  raw_t *r = call->data;
  r->done = true;
  r->status = status;
  ks_rpc_msg_free(resp);
}

static void test_errors_travel(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0, 0);
  size_t n = 100000;
  uint8_t *p = pattern(n, 3), *q = pattern(n, 4);
  ks_frag_req_t r = req_make(&f, 0, 3, 0);

  /* unknown device */
  ks_frag_req_t bad = r;
  memset(bad.dev.b, 0xee, sizeof(bad.dev.b));
  assert_int_equal(do_put(&f, &bad, p, n), -ENODEV);
  assert_int_equal(do_get(&f, &bad, NULL, 0), -ENODEV);

  /* other content under the same key */
  assert_int_equal(do_put(&f, &r, p, n), 0);
  assert_int_equal(do_put(&f, &r, q, n), -EEXIST);

  /* corrupt on disk: the status says so and no byte is returned */
  char rel[96], path[256];
  ks_frag_key_path(&r.key, rel, sizeof(rel));
  snprintf(path, sizeof(path), "%s/%s", f.dev[0], rel);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, "X", 1, KS_FRAG_HDR_SIZE + 500), 1);
  close(fd);
  assert_int_equal(do_get(&f, &r, NULL, 0), KS_ECORRUPT);
  r.offset = 90000;
  r.length = 10;
  assert_int_equal(do_get(&f, &r, NULL, 0), KS_ECORRUPT);
  r.offset = r.length = 0;

  /* bad profile: index outside k+m is refused by the decoder */
  ks_frag_call_t c = {0};
  res_t res = {0};
  ks_frag_put_req_t pr = {.dev = r.dev, .key = r.key, .k = 2, .m = 1};
  pr.key.index = 3;
  struct iovec v = {p, n};
  c.data = &res;
  assert_int_equal(
      wait_call(&f, &c, &res, ks_frag_put(f.cl, &c, &pr, &v, 1, 0, res_cb)),
      KS_EPROTO);
  ks_frag_call_release(&c);

  /* failed device */
  ks_chunk_store_dev_fail(f.st, 2, "test");
  ks_frag_req_t r2 = req_make(&f, 2, 5, 1);
  assert_int_equal(do_put(&f, &r2, p, n), -EIO);
  assert_int_equal(do_get(&f, &r2, NULL, 0), -EIO);
  memset(&res, 0, sizeof(res));
  assert_int_equal(
      wait_call(&f, &c, &res, ks_frag_dev_list(f.cl, &c, 0, res_cb)), 0);
  assert_int_equal(c.devs[2].state, KS_DEV_FAILED);
  assert_int_equal(c.devs[0].state, KS_DEV_OK);
  ks_frag_call_release(&c);

  /* an undecodable body is a protocol error, as is a bulk on a GET */
  raw_t raw = {0};
  struct iovec junk = {(void *)"junk", 4};
  raw.call.data = &raw;
  assert_int_equal(ks_rpc_call_start(f.cl, &raw.call, KS_OP_FRAG_STAT, &junk, 1,
                                     NULL, 0, 0, raw_cb),
                   0);
  assert_true(run_until(&f.loop, &raw.done, 5000));
  assert_int_equal(raw.status, KS_EPROTO);
  ks_enc_t e = KS_ENC_INIT;
  ks_frag_req_encode(&e, KS_OP_FRAG_GET, &r);
  assert_int_equal(ks_enc_finish(&e), 0);
  struct iovec body = {e.buf.data, e.buf.len};
  memset(&raw, 0, sizeof(raw));
  raw.call.data = &raw;
  assert_int_equal(ks_rpc_call_start(f.cl, &raw.call, KS_OP_FRAG_GET, &body, 1,
                                     &junk, 1, 0, raw_cb),
                   0);
  assert_true(run_until(&f.loop, &raw.done, 5000));
  assert_int_equal(raw.status, KS_EPROTO);
  ks_enc_free(&e);
  memset(&raw, 0, sizeof(raw));
  raw.call.data = &raw;
  assert_int_equal(ks_rpc_call_start(f.cl, &raw.call, KS_OP_DEV_LIST, &junk, 1,
                                     NULL, 0, 0, raw_cb),
                   0);
  assert_true(run_until(&f.loop, &raw.done, 5000));
  assert_int_equal(raw.status, KS_EPROTO);
  free(p);
  free(q);
  fx_stop(&f);
}

static void test_queue_full(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 1, 2);
  enum { N = 40 };
  size_t n = 256 * 1024;
  uint8_t *p = pattern(n, 6);
  ks_frag_call_t calls[N];
  many_t m = {0};
  int busy = 0, ok = 0;
  for (int i = 0; i < N; i++) {
    ks_frag_req_t r = req_make(&f, 0, (unsigned)(200 + i), 0);
    ks_frag_put_req_t pr = {.dev = r.dev, .key = r.key, .k = 1, .m = 0};
    struct iovec v = {p, n};
    calls[i].data = &m;
    assert_int_equal(ks_frag_put(f.cl, &calls[i], &pr, &v, 1, 0, many_cb), 0);
  }
  assert_true(many_finished(&f.loop, &m, N));
  for (int i = 0; i < N; i++)
    ks_frag_call_release(&calls[i]);
  busy = m.failed;
  ok = N - m.failed;
  assert_int_equal(m.first_err, KS_EBUSY);
  assert_true(busy > 0);
  assert_true(ok >= 3);
  free(p);
  fx_stop(&f);
}

int main(void)
{
  ks_log_set_level(KS_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_4mib),
      cmocka_unit_test(test_many_concurrent),
      cmocka_unit_test(test_errors_travel),
      cmocka_unit_test(test_queue_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
