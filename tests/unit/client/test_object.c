/*
 * test_object.c — libkiseki's object layer against a real meta node and a
 * real chunk daemon (6 device directories), in one process on one loop
 * over loopback RPC: round trips of 0 B, 1 B, 4 KiB (inline), 4 KiB + 1
 * and 10 MiB + odd bytes; ranges across chunk boundaries; degraded reads
 * with 2 of 6 devices' fragments deleted or corrupted (byte-identical) and
 * with 3 lost (error); multipart; metadata-only copy; delete; tenancy; and
 * no plaintext in any file the daemons wrote.  Degraded writes: with one
 * of 6 devices gone a write stores 5 fragments and marks the 6th absent,
 * placement skips devices listed failed, with two gone a write fails with
 * KS_EBUSY and leaves no object, a lower write quorum is honoured; and a
 * device replaced under a running client (new id: chunkd answers -ENODEV)
 * is learnt from the failure.  Read-ahead: sequential reads byte-identical
 * with every chunk fetched once, ranges fetching nothing past their end
 * (chunkd's FRAG_GET count), release with fetches ahead in flight, and
 * degraded chunks fetched ahead.  Part copy by reading: ranges inside a chunk,
 * across boundaries, cut and aligned (whole extents reused), inline and
 * multipart sources, each part's ETag the MD5 of its bytes and the
 * completed object byte-identical.  Tenant keys are not made up front: the
 * first write creates them.  Ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/chunk_service.h"
#include "ks/chunk_store.h"
#include "ks/codec.h"
#include "ks/config.h"
#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/kms.h"
#include "ks/meta_service.h"
#include "ks/object.h"
#include "ks/raft_io_ks.h"
#include "ks/raft_store.h"
#include "ks/shard.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NDEV 6
#define MIB (1024 * 1024)
#define MARKER "KISEKI-PLAINTEXT-MARKER:"

typedef struct sync {
  bool done;
  int status;
} sync_t;

typedef struct fx {
  char root[64], dev[NDEV][96], addr_meta[64], addr_chunk[64];
  uv_loop_t loop;
  /* meta */
  ks_raft_store_t *rstore;
  ks_meta_state_t *st;
  ks_rpc_server_t *msrv;
  ks_raft_node_t *rn;
  ks_meta_service_t *msvc;
  /* chunkd */
  ks_chunk_dev_conf_t conf[NDEV];
  ks_chunk_store_t *cst;
  ks_chunk_service_t *csvc;
  ks_rpc_server_t *csrv;
  /* client */
  ks_kms_t *kms;
  ks_client_t *cl;
  sync_t sync; /* run_op's */
} fx_t;

static const ks_id_t tenant = {{0x11, 0x22}};
static const ks_id_t other = {{0x33}};

static void flag_cb(void *arg)
{
  *(bool *)arg = true;
}

static void run_until(uv_loop_t *loop, const bool *flag)
{
  while (!*flag)
    uv_run(loop, UV_RUN_ONCE);
}

/* Run `what path` in a shell: what is a fixed command prefix. */
static void sh(const char *what, const char *path)
{
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "%s %s", what, path);
  assert_int_equal(system(cmd), 0);
}

static void meta_open(fx_t *f)
{
  char d[128];
  snprintf(d, sizeof(d), "%s/raft", f->root);
  assert_int_equal(mkdir(d, 0700), 0);
  assert_int_equal(ks_raft_store_open(d, NULL, &f->rstore), 0);
  snprintf(d, sizeof(d), "%s/state", f->root);
  assert_int_equal(ks_meta_state_open(d, 1ULL << 30, &f->st), 0);
  assert_int_equal(ks_rpc_server_new(&f->loop, "127.0.0.1", 0, NULL, &f->msrv),
                   0);
  snprintf(f->addr_meta, sizeof(f->addr_meta), "127.0.0.1:%u",
           ks_rpc_server_port(f->msrv));
  assert_int_equal(ks_raft_node_new(&f->loop, f->rstore, f->msrv, NULL, &f->rn),
                   0);
  assert_int_equal(
      ks_meta_service_new(&f->loop, f->msrv, f->rn, f->st, NULL, &f->msvc), 0);
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  assert_int_equal(raft_configuration_add(&conf, 1, f->addr_meta, RAFT_VOTER),
                   0);
  assert_int_equal(ks_meta_service_shard_start(f->msvc, KS_META_SYSTEM_SHARD, 1,
                                               f->addr_meta, &conf),
                   0);
  raft_configuration_close(&conf);
}

static void chunkd_open(fx_t *f)
{
  char root[sizeof(f->root)];
  memcpy(root, f->root, sizeof(root)); /* snprintf must not read f */
  for (int i = 0; i < NDEV; i++) {
    snprintf(f->dev[i], sizeof(f->dev[i]), "%s/d%d", root, i);
    assert_int_equal(mkdir(f->dev[i], 0750), 0);
    f->conf[i] =
        (ks_chunk_dev_conf_t){.path = f->dev[i], .cls = KS_DEV_BULK_NVME};
  }
  assert_int_equal(ks_chunk_store_open(f->conf, NDEV, &f->cst), 0);
  assert_int_equal(ks_chunk_service_new(&f->loop, f->cst, NULL, &f->csvc), 0);
  assert_int_equal(ks_rpc_server_new(&f->loop, "127.0.0.1", 0, NULL, &f->csrv),
                   0);
  assert_int_equal(ks_chunk_service_register(f->csvc, f->csrv), 0);
  snprintf(f->addr_chunk, sizeof(f->addr_chunk), "127.0.0.1:%u",
           ks_rpc_server_port(f->csrv));
}

static void started_cb(void *arg, int status)
{
  int *st = arg;
  *st = status;
}

static void fx_start(fx_t *f)
{
  memset(f, 0, sizeof(*f));
  snprintf(f->root, sizeof(f->root), "/tmp/ks-object-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  meta_open(f);
  chunkd_open(f);
  char d[128];
  snprintf(d, sizeof(d), "%s/kms", f->root);
  assert_int_equal(ks_kms_file_open(d, &f->kms), 0);
  /* no tenant keys yet: the first write makes them (object.h) */
  const char *chunkd[] = {f->addr_chunk};
  ks_client_opts_t o = {.meta = f->addr_meta,
                        .chunkd = chunkd,
                        .nchunkd = 1,
                        .kms = f->kms,
                        .timeout_ms = 10000};
  assert_int_equal(ks_client_new(&f->loop, &o, &f->cl), 0);
  int st = 1;
  assert_int_equal(ks_client_start(f->cl, started_cb, &st), 0);
  while (st == 1)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(st, 0);
  assert_int_equal(ks_client_devices(f->cl), NDEV);
}

static void fx_stop(fx_t *f)
{
  bool done = false;
  ks_client_close(f->cl, flag_cb, &done);
  run_until(&f->loop, &done);
  done = false;
  ks_meta_service_close(f->msvc, flag_cb, &done);
  run_until(&f->loop, &done);
  bool m = false, c = false;
  ks_rpc_server_close(f->msrv, flag_cb, &m);
  ks_rpc_server_close(f->csrv, flag_cb, &c);
  run_until(&f->loop, &m);
  run_until(&f->loop, &c);
  done = false;
  ks_raft_node_close(f->rn, flag_cb, &done);
  run_until(&f->loop, &done);
  ks_meta_service_free(f->msvc);
  ks_meta_state_close(f->st);
  ks_raft_store_close(f->rstore);
  ks_chunk_service_free(f->csvc);
  ks_chunk_store_close(f->cst);
  ks_kms_close(f->kms);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  sh("rm -rf", f->root);
}

/* ---- synchronous wrappers ---------------------------------------------- */

static void op_cb(ks_obj_op_t *op, int status)
{
  sync_t *s = op->data;
  s->done = true;
  s->status = status;
}

typedef int (*op_fn)(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);

/* Run fn on op; the caller releases op. */
static int run_op(fx_t *f, op_fn fn, ks_obj_op_t *op)
{
  f->sync = (sync_t){0};
  op->data = &f->sync;
  int rc = fn(f->cl, op, op_cb);
  if (rc != 0)
    return rc;
  run_until(&f->loop, &f->sync.done);
  return f->sync.status;
}

static int run_release(fx_t *f, op_fn fn, ks_obj_op_t *op)
{
  int rc = run_op(f, fn, op);
  ks_obj_op_release(op);
  return rc;
}

static void bucket_make(fx_t *f, const ks_id_t *t, const char *name)
{
  ks_obj_op_t op = {.tenant = *t, .bucket = name};
  assert_int_equal(run_release(f, ks_obj_bucket_create, &op), 0);
}

static void meta_cb(ks_meta_call_t *call, int status)
{
  sync_t *s = call->data;
  s->done = true;
  s->status = status;
}

/* Tenants are made by admin tools, not the object layer: write the delta
 * with a meta client of our own. */
static void tenant_make(fx_t *f, const ks_id_t *t)
{
  ks_meta_client_t *mc;
  const char *colon = strrchr(f->addr_meta, ':');
  assert_int_equal(ks_meta_client_new(&f->loop, "127.0.0.1",
                                      (uint16_t)atoi(colon + 1), NULL, &mc),
                   0);
  sync_t s = {0};
  ks_meta_call_t call = {.data = &s};
  ks_meta_delta_t d = {
      .type = KS_DELTA_CREATE_TENANT, .tenant = *t, .name = "t", .now_ns = 1};
  assert_int_equal(
      ks_meta_write(mc, &call, KS_META_SYSTEM_SHARD, &d, 0, meta_cb), 0);
  run_until(&f->loop, &s.done);
  assert_int_equal(s.status, 0);
  ks_meta_call_release(&call);
  bool done = false;
  ks_meta_client_close(mc, flag_cb, &done);
  run_until(&f->loop, &done);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  size_t ml = strlen(MARKER);
  for (size_t i = 0; i < n; i++)
    p[i] = (i % 64) < ml ? (uint8_t)MARKER[i % 64]
                         : (uint8_t)(i * 131 + seed + i / 4093);
  return p;
}

static int put_bytes(fx_t *f, const char *bucket, const char *key,
                     const uint8_t *p, size_t n, ks_meta_result_t *res)
{
  struct iovec iov[3];
  /* Split into uneven pieces so chunks span them. */
  size_t a = n / 3, b = n / 2;
  iov[0] = (struct iovec){(void *)p, a};
  iov[1] = (struct iovec){(void *)(p + a), b - a};
  iov[2] = (struct iovec){(void *)(p + b), n - b};
  ks_meta_kv_t meta[] = {{"color", "blue"}};
  ks_meta_comp_t attrs = {
      .content_type = "application/x-test", .nmeta = 1, .meta = meta};
  ks_obj_op_t op = {.tenant = tenant,
                    .bucket = bucket,
                    .key = key,
                    .body = iov,
                    .nbody = 3,
                    .body_len = n,
                    .attrs = &attrs};
  int rc = run_op(f, ks_obj_put, &op);
  if (res != NULL)
    *res = op.result;
  ks_obj_op_release(&op);
  return rc;
}

typedef struct rd {
  bool done;
  int status;
  const uint8_t *p;
  size_t n;
} rd_t;

static void read_cb(ks_obj_op_t *op, int status, const void *p, size_t n)
{
  rd_t *r = op->data;
  r->done = true;
  r->status = status;
  r->p = p;
  r->n = n;
}

/* Read [off, off + len) of a got object into out, in pulls of max. */
static int read_range(fx_t *f, ks_obj_op_t *op, uint64_t off, size_t len,
                      size_t max, uint8_t *out)
{
  size_t got = 0;
  while (got < len) {
    rd_t r = {0};
    void *saved = op->data;
    op->data = &r;
    size_t want = len - got < max ? len - got : max;
    int rc = ks_obj_read(op, off + got, want, read_cb);
    if (rc == 0)
      run_until(&f->loop, &r.done);
    op->data = saved;
    if (rc != 0)
      return rc;
    if (r.status != 0)
      return r.status;
    assert_true(r.n >= 1 && r.n <= want);
    memcpy(out + got, r.p, r.n);
    got += r.n;
  }
  return 0;
}

/* GET bucket/key and compare [off, off + len) with want. */
static int get_check(fx_t *f, const char *key, const uint8_t *want,
                     uint64_t off, size_t len, size_t max)
{
  ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = key};
  int rc = run_op(f, ks_obj_get, &op);
  uint8_t *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  if (rc == 0)
    rc = read_range(f, &op, off, len, max, buf);
  if (rc == 0)
    assert_memory_equal(buf, want + off, len);
  free(buf);
  ks_obj_op_release(&op);
  return rc;
}

static void setup(fx_t *f)
{
  fx_start(f);
  tenant_make(f, &tenant);
  tenant_make(f, &other);
  bucket_make(f, &tenant, "bk");
}

/* ---- tests ----------------------------------------------------------------
 */

static void test_round_trip(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t sizes[] = {0, 1, 4096, 4097, 10 * MIB + 12345};
  for (size_t i = 0; i < KS_NELEM(sizes); i++) {
    size_t n = sizes[i];
    uint8_t *p = pattern(n, (unsigned)i);
    char key[32];
    snprintf(key, sizeof(key), "obj-%zu", n);
    ks_meta_result_t res;
    assert_int_equal(put_bytes(&f, "bk", key, p, n, &res), 0);
    uint8_t md5[KS_MD5_LEN];
    char hex[2 * KS_MD5_LEN + 1];
    assert_int_equal(ks_md5(p, n, md5), 0);
    assert_true(ks_hex_encode(hex, sizeof(hex), md5, sizeof(md5)) > 0);
    assert_string_equal(res.etag, hex);

    ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = key};
    assert_int_equal(run_op(&f, ks_obj_get, &op), 0);
    const ks_meta_comp_t *m = &op.reply.r.comp;
    assert_int_equal(m->size, n);
    assert_string_equal(m->etag, hex);
    assert_string_equal(m->content_type, "application/x-test");
    assert_int_equal(m->nmeta, 1);
    assert_string_equal(m->meta[0].value, "blue");
    assert_int_equal(m->is_inline, n > 0 && n <= 4096);
    assert_int_equal(m->nextents, n > 4096 ? (n + 4 * MIB - 1) / (4 * MIB) : 0);
    if (n > 0) {
      uint8_t *buf = malloc(n);
      assert_non_null(buf);
      assert_int_equal(read_range(&f, &op, 0, n, 64 * 1024, buf), 0);
      assert_memory_equal(buf, p, n);
      free(buf);
    }
    assert_int_equal(ks_obj_read(&op, n, 1, read_cb), -EINVAL);
    ks_obj_op_release(&op);
    free(p);
  }
  fx_stop(&f);
}

static void test_ranges(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t n = 10 * MIB + 777;
  uint8_t *p = pattern(n, 9);
  assert_int_equal(put_bytes(&f, "bk", "big", p, n, NULL), 0);
  /* across the first and second chunk boundary, the tail, one byte */
  assert_int_equal(get_check(&f, "big", p, 4 * MIB - 100, 200, 1 << 20), 0);
  assert_int_equal(get_check(&f, "big", p, 4 * MIB - 1, 4 * MIB + 2, 4096), 0);
  assert_int_equal(get_check(&f, "big", p, n - 10, 10, 100), 0);
  assert_int_equal(get_check(&f, "big", p, 8 * MIB, 1, 1), 0);
  /* an inline object's middle */
  assert_int_equal(put_bytes(&f, "bk", "small", p, 3000, NULL), 0);
  assert_int_equal(get_check(&f, "small", p, 1000, 500, 7), 0);
  free(p);
  fx_stop(&f);
}

/* Delete (or corrupt) every fragment file of device i. */
static void dev_damage(fx_t *f, int i, bool corrupt)
{
  if (!corrupt) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "find %s/frags -type f -delete", f->dev[i]);
    assert_int_equal(system(cmd), 0);
    return;
  }
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "for x in $(find %s/frags -type f); do printf 'X' | dd of=$x bs=1 "
           "seek=100 conv=notrunc status=none; done",
           f->dev[i]);
  assert_int_equal(system(cmd), 0);
}

static void test_degraded(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t n = 10 * MIB + 4321;
  uint8_t *p = pattern(n, 3);
  assert_int_equal(put_bytes(&f, "bk", "deg", p, n, NULL), 0);
  dev_damage(&f, 0, false);
  assert_int_equal(get_check(&f, "deg", p, 0, n, 1 << 20), 0);
  dev_damage(&f, 3, true);
  assert_int_equal(get_check(&f, "deg", p, 0, n, 1 << 20), 0);
  assert_int_equal(get_check(&f, "deg", p, 5 * MIB, 3 * MIB, 1 << 20), 0);
  dev_damage(&f, 5, false);
  assert_int_equal(get_check(&f, "deg", p, 0, n, 1 << 20), -ENODATA);
  free(p);
  fx_stop(&f);
}

static void test_multipart_copy_delete(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t n1 = 5 * MIB + 3, n2 = 1000, n = n1 + n2;
  uint8_t *p = pattern(n, 5);
  ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = "mp"};
  assert_int_equal(run_op(&f, ks_obj_mpu_create, &op), 0);
  char upload[KS_ID_HEX_LEN + 1];
  memcpy(upload, op.upload_id_out, sizeof(upload));
  ks_obj_op_release(&op);

  char etags[2][KS_META_ETAG_MAX];
  size_t offs[2] = {0, n1}, lens[2] = {n1, n2};
  for (int i = 0; i < 2; i++) {
    struct iovec iov = {p + offs[i], lens[i]};
    op = (ks_obj_op_t){.tenant = tenant,
                       .bucket = "bk",
                       .key = "mp",
                       .upload_id = upload,
                       .part = (uint32_t)i + 1,
                       .body = &iov,
                       .nbody = 1,
                       .body_len = lens[i]};
    assert_int_equal(run_op(&f, ks_obj_mpu_part, &op), 0);
    snprintf(etags[i], sizeof(etags[i]), "%s", op.result.etag);
    ks_obj_op_release(&op);
  }
  ks_meta_query_t q = {.key = "mp", .upload_id = upload, .max = 100};
  op = (ks_obj_op_t){.tenant = tenant, .bucket = "bk", .key = "mp"};
  sync_t s = {0};
  op.data = &s;
  assert_int_equal(ks_obj_query(f.cl, &op, KS_OP_META_LIST_PARTS, &q, op_cb),
                   0);
  run_until(&f.loop, &s.done);
  assert_int_equal(s.status, 0);
  assert_int_equal(op.reply.r.parts.n, 2);
  ks_obj_op_release(&op);

  /* out of order: InvalidPartOrder; then the real completion */
  ks_meta_part_ref_t bad[] = {{2, etags[1]}, {1, etags[0]}};
  ks_meta_part_ref_t refs[] = {{1, etags[0]}, {2, etags[1]}};
  op = (ks_obj_op_t){.tenant = tenant,
                     .bucket = "bk",
                     .key = "mp",
                     .upload_id = upload,
                     .parts = bad,
                     .nparts = 2};
  assert_int_equal(run_release(&f, ks_obj_mpu_complete, &op),
                   KS_META_EPARTORDER);
  op.parts = refs;
  assert_int_equal(run_op(&f, ks_obj_mpu_complete, &op), 0);
  assert_non_null(strstr(op.result.etag, "-2"));
  ks_obj_op_release(&op);
  assert_int_equal(get_check(&f, "mp", p, 0, n, 1 << 20), 0);
  assert_int_equal(get_check(&f, "mp", p, n1 - 5, 10, 1 << 20), 0);

  /* copy: the source's extents reused, new attributes */
  ks_obj_op_t src = {.tenant = tenant, .bucket = "bk", .key = "mp"};
  assert_int_equal(run_op(&f, ks_obj_get, &src), 0);
  ks_meta_comp_t attrs = {.content_type = "text/copied"};
  op = (ks_obj_op_t){.tenant = tenant,
                     .bucket = "bk",
                     .key = "mp-copy",
                     .src = &src.reply.r.comp,
                     .attrs = &attrs};
  assert_int_equal(run_release(&f, ks_obj_copy, &op), 0);
  ks_obj_op_t cp = {.tenant = tenant, .bucket = "bk", .key = "mp-copy"};
  assert_int_equal(run_op(&f, ks_obj_get, &cp), 0);
  assert_string_equal(cp.reply.r.comp.content_type, "text/copied");
  assert_int_equal(cp.reply.r.comp.nextents, src.reply.r.comp.nextents);
  assert_memory_equal(cp.reply.r.comp.extents[0].desc,
                      src.reply.r.comp.extents[0].desc,
                      src.reply.r.comp.extents[0].desc_len);
  ks_obj_op_release(&cp);
  ks_obj_op_release(&src);
  assert_int_equal(get_check(&f, "mp-copy", p, 0, n, 1 << 20), 0);

  /* delete */
  op = (ks_obj_op_t){.tenant = tenant, .bucket = "bk", .key = "mp"};
  assert_int_equal(run_release(&f, ks_obj_delete, &op), 0);
  assert_int_equal(get_check(&f, "mp", p, 0, 1, 1), KS_META_ENOKEY);
  assert_int_equal(get_check(&f, "mp-copy", p, 0, n, 1 << 20), 0);
  free(p);
  fx_stop(&f);
}

static void test_tenancy_and_errors(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  bucket_make(&f, &other, "theirs");
  uint8_t *p = pattern(100, 1);
  assert_int_equal(put_bytes(&f, "theirs", "x", p, 100, NULL), KS_META_EACCESS);
  assert_int_equal(put_bytes(&f, "nobucket", "x", p, 100, NULL),
                   KS_META_ENOBUCKET);
  ks_obj_op_t op = {.tenant = other, .bucket = "bk", .key = "x"};
  assert_int_equal(run_release(&f, ks_obj_get, &op), KS_META_EACCESS);
  op = (ks_obj_op_t){.tenant = tenant, .bucket = "bk"};
  assert_int_equal(run_release(&f, ks_obj_bucket_create, &op), KS_META_EOWNED);
  op = (ks_obj_op_t){.tenant = tenant, .bucket = "bk"};
  assert_int_equal(run_op(&f, ks_obj_bucket_head, &op), 0);
  assert_string_equal(op.reply.r.bucket.name, "bk");
  ks_obj_op_release(&op);
  op = (ks_obj_op_t){.tenant = tenant};
  assert_int_equal(run_op(&f, ks_obj_bucket_list, &op), 0);
  assert_int_equal(op.reply.r.buckets.n, 1);
  ks_obj_op_release(&op);
  free(p);
  fx_stop(&f);
}

static void test_no_plaintext(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t sizes[] = {100, 4096, 6 * MIB};
  for (size_t i = 0; i < KS_NELEM(sizes); i++) {
    uint8_t *p = pattern(sizes[i], 0);
    char key[32];
    snprintf(key, sizeof(key), "secret-%zu", i);
    assert_int_equal(put_bytes(&f, "bk", key, p, sizes[i], NULL), 0);
    assert_int_equal(get_check(&f, key, p, 0, sizes[i], 1 << 20), 0);
    free(p);
  }
  ks_meta_state_flush(f.st);
  /* the pattern is in the bodies only: no file may hold it */
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "grep -r -a -q '%s' %s", MARKER, f.root);
  assert_int_equal(WEXITSTATUS(system(cmd)), 1);
  /* and the check can fail: a file with it is found */
  snprintf(cmd, sizeof(cmd), "echo '%s' > %s/probe && grep -r -a -q '%s' %s",
           MARKER, f.root, MARKER, f.root);
  assert_int_equal(system(cmd), 0);
  fx_stop(&f);
}

/* ---- degraded writes ------------------------------------------------------
 */

static void wake_cb(uv_timer_t *t)
{
  *(bool *)t->data = true;
}

/* Run the loop for ms milliseconds. */
static void loop_sleep(fx_t *f, uint64_t ms)
{
  bool done = false;
  uv_timer_t t;
  assert_int_equal(uv_timer_init(&f->loop, &t), 0);
  t.data = &done;
  assert_int_equal(uv_timer_start(&t, wake_cb, ms, 0), 0);
  run_until(&f->loop, &done);
  done = false;
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void client_relist(fx_t *f, ks_client_t *cl)
{
  int st = 1;
  assert_int_equal(ks_client_start(cl, started_cb, &st), 0);
  while (st == 1)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(st, 0);
}

/* Fragments of key's chunks marked absent, checking that every extent
 * has k+m locations, absent ones exactly the marker, present ones on a
 * device chunkd has now; absent_at[i] counts absent fragments of index i. */
static unsigned absent_count(fx_t *f, const char *key, unsigned absent_at[6])
{
  ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = key};
  assert_int_equal(run_op(f, ks_obj_get, &op), 0);
  const ks_meta_comp_t *m = &op.reply.r.comp;
  unsigned n = 0;
  memset(absent_at, 0, 6 * sizeof(*absent_at));
  for (uint32_t e = 0; e < m->nextents; e++) {
    assert_int_equal(m->extents[e].nlocs, 6);
    for (uint32_t i = 0; i < 6; i++) {
      const ks_meta_loc_t *l = &m->extents[e].locs[i];
      if (l->node[0] == '\0') {
        assert_true(ks_id_is_zero(&l->dev));
        absent_at[i]++;
        n++;
        continue;
      }
      assert_string_equal(l->node, f->addr_chunk);
      assert_true(ks_chunk_store_dev_find(f->cst, &l->dev) >= 0);
    }
  }
  ks_obj_op_release(&op);
  return n;
}

static void dev_remove(fx_t *f, int i)
{
  sh("rm -rf", f->dev[i]);
}

static void test_degraded_writes(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  unsigned at[6];
  size_t n = 5 * MIB + 7; /* 2 chunks */
  uint8_t *p = pattern(n, 11);
  assert_int_equal(put_bytes(&f, "bk", "a", p, n, NULL), 0);
  assert_int_equal(absent_count(&f, "a", at), 0);

  /* one device lost under the client: its fragment fails, 5 of 6 are
   * stored (the quorum), the 6th marked absent; everything reads */
  dev_remove(&f, 5);
  assert_int_equal(put_bytes(&f, "bk", "b", p, n, NULL), 0);
  assert_int_equal(absent_count(&f, "b", at), 2);
  assert_int_equal(get_check(&f, "b", p, 0, n, 1 << 20), 0);
  assert_int_equal(get_check(&f, "a", p, 0, n, 1 << 20), 0);

  /* listed again: the failed device is not placed on; the last fragment
   * index has no device */
  client_relist(&f, f.cl);
  assert_int_equal(ks_client_devices(f.cl), 5);
  uint8_t id[32] = {7};
  unsigned out[6];
  assert_int_equal(ks_client_place(f.cl, id, 6, out), 5);
  assert_int_equal(out[5], KS_OBJ_UNPLACED);
  for (unsigned i = 0; i < 5; i++) {
    assert_true(out[i] < 5);
    for (unsigned j = 0; j < i; j++)
      assert_int_not_equal(out[i], out[j]);
  }
  assert_int_equal(put_bytes(&f, "bk", "c", p, n, NULL), 0);
  assert_int_equal(absent_count(&f, "c", at), 2);
  assert_int_equal(at[5], 2);
  assert_int_equal(get_check(&f, "c", p, 0, n, 1 << 20), 0);

  /* a second device lost: 4 of 6 is short of the quorum; the write fails
   * with a retryable storage error and leaves no object */
  dev_remove(&f, 4);
  assert_int_equal(put_bytes(&f, "bk", "d", p, n, NULL), KS_EBUSY);
  assert_int_equal(get_check(&f, "d", p, 0, 1, 1), KS_META_ENOKEY);
  client_relist(&f, f.cl);
  assert_int_equal(ks_client_devices(f.cl), 4);
  assert_int_equal(ks_client_place(f.cl, id, 6, out), 4);
  assert_int_equal(put_bytes(&f, "bk", "d", p, n, NULL), KS_EBUSY);
  assert_int_equal(get_check(&f, "d", p, 0, 1, 1), KS_META_ENOKEY);
  /* inline objects need no device; the rest still reads (c: 4 left) */
  assert_int_equal(put_bytes(&f, "bk", "small", p, 100, NULL), 0);
  assert_int_equal(get_check(&f, "small", p, 0, 100, 100), 0);
  assert_int_equal(get_check(&f, "c", p, 0, n, 1 << 20), 0);

  /* a client whose quorum is k writes with 4 devices: 2 fragments absent
   * per chunk; quorums outside k..k+m are refused */
  const char *chunkd[] = {f.addr_chunk};
  ks_client_opts_t o = {.meta = f.addr_meta,
                        .chunkd = chunkd,
                        .nchunkd = 1,
                        .kms = f.kms,
                        .write_quorum = 3};
  ks_client_t *cl;
  assert_int_equal(ks_client_new(&f.loop, &o, &cl), -EINVAL);
  o.write_quorum = 7;
  assert_int_equal(ks_client_new(&f.loop, &o, &cl), -EINVAL);
  o.write_quorum = 4;
  assert_int_equal(ks_client_new(&f.loop, &o, &cl), 0);
  client_relist(&f, cl);
  ks_client_t *main_cl = f.cl;
  f.cl = cl;
  assert_int_equal(put_bytes(&f, "bk", "e", p, n, NULL), 0);
  f.cl = main_cl;
  assert_int_equal(absent_count(&f, "e", at), 4);
  assert_int_equal(at[4] + at[5], 4);
  assert_int_equal(get_check(&f, "e", p, 0, n, 1 << 20), 0);
  bool done = false;
  ks_client_close(cl, flag_cb, &done);
  run_until(&f.loop, &done);
  free(p);
  fx_stop(&f);
}

/* chunkd restarted with device i replaced by an empty one (a new id), on
 * the same port. */
static void chunkd_replace(fx_t *f, int i)
{
  uint16_t port = ks_rpc_server_port(f->csrv);
  bool done = false;
  ks_rpc_server_close(f->csrv, flag_cb, &done);
  run_until(&f->loop, &done);
  ks_chunk_service_free(f->csvc);
  ks_chunk_store_close(f->cst);
  dev_remove(f, i);
  assert_int_equal(mkdir(f->dev[i], 0750), 0);
  assert_int_equal(ks_chunk_store_open(f->conf, NDEV, &f->cst), 0);
  assert_int_equal(ks_chunk_service_new(&f->loop, f->cst, NULL, &f->csvc), 0);
  assert_int_equal(
      ks_rpc_server_new(&f->loop, "127.0.0.1", port, NULL, &f->csrv), 0);
  assert_int_equal(ks_chunk_service_register(f->csvc, f->csrv), 0);
}

static void test_device_replaced(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  unsigned at[6];
  size_t n = 1 * MIB + 3;
  uint8_t *p = pattern(n, 12);
  assert_int_equal(put_bytes(&f, "bk", "a", p, n, NULL), 0);
  chunkd_replace(&f, 5);
  /* past the relist rate limit, so the first failure lists again */
  loop_sleep(&f, 1100);
  /* the client still names the old id: chunkd answers -ENODEV for that
   * fragment (not -ENOENT, "no such key"); the chunk is stored 5 of 6 and
   * the node is listed again, so the next write uses the new device */
  assert_int_equal(put_bytes(&f, "bk", "b", p, n, NULL), 0);
  assert_int_equal(absent_count(&f, "b", at), 1);
  loop_sleep(&f, 100); /* the listing's answer */
  assert_int_equal(ks_client_devices(f.cl), 6);
  assert_int_equal(put_bytes(&f, "bk", "c", p, n, NULL), 0);
  assert_int_equal(absent_count(&f, "c", at), 0);
  assert_int_equal(get_check(&f, "a", p, 0, n, 1 << 20), 0);
  assert_int_equal(get_check(&f, "b", p, 0, n, 1 << 20), 0);
  assert_int_equal(get_check(&f, "c", p, 0, n, 1 << 20), 0);
  free(p);
  fx_stop(&f);
}

/* ---- read-ahead -----------------------------------------------------------
 */

/* Chunks fetched ahead of the one read (KS__OBJ_READ_AHEAD, object_int.h). */
#define READ_AHEAD 2

static uint64_t frag_gets(fx_t *f)
{
  ks_chunk_service_stats_t s;
  ks_chunk_service_stats(f->csvc, &s);
  return s.requests[KS_CHUNK_STAT_GET];
}

/* get_check with ks_obj_read_ahead(ra_end) before the reads. */
static int get_check_ra(fx_t *f, const char *key, const uint8_t *want,
                        uint64_t off, size_t len, size_t max, uint64_t ra_end)
{
  ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = key};
  int rc = run_op(f, ks_obj_get, &op);
  uint8_t *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  if (rc == 0)
    rc = ks_obj_read_ahead(&op, ra_end);
  if (rc == 0)
    rc = read_range(f, &op, off, len, max, buf);
  if (rc == 0)
    assert_memory_equal(buf, want + off, len);
  free(buf);
  ks_obj_op_release(&op);
  return rc;
}

/* FRAG_GETs a read of [off, off + len) with read-ahead to ra_end made, the
 * loop left to run afterwards so that any fetch started lands. */
static uint64_t gets_of(fx_t *f, const uint8_t *p, uint64_t off, size_t len,
                        uint64_t ra_end)
{
  uint64_t g0 = frag_gets(f);
  assert_int_equal(get_check_ra(f, "ra", p, off, len, MIB, ra_end), 0);
  loop_sleep(f, 300);
  return frag_gets(f) - g0;
}

static void test_read_ahead(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t n = 22 * MIB + 999; /* 6 chunks, the last short */
  uint8_t *p = pattern(n, 21);
  assert_int_equal(put_bytes(&f, "bk", "ra", p, n, NULL), 0);
  /* the whole object, every chunk fetched once (4 data fragments each) */
  assert_int_equal(gets_of(&f, p, 0, n, n), 6 * 4);
  assert_int_equal(gets_of(&f, p, 0, n, UINT64_MAX), 6 * 4);
  /* a range inside chunks 1 and 2: nothing of chunk 3 is fetched, with
   * read-ahead to its end or without read-ahead */
  assert_int_equal(gets_of(&f, p, 5 * MIB, 6 * MIB, 11 * MIB), 2 * 4);
  assert_int_equal(gets_of(&f, p, 5 * MIB, 6 * MIB, 0), 2 * 4);
  /* ends on a chunk boundary: the next chunk is not fetched */
  assert_int_equal(gets_of(&f, p, 0, 8 * MIB, 8 * MIB), 2 * 4);
  /* a different pull size and tiny pulls across a boundary */
  assert_int_equal(get_check_ra(&f, "ra", p, 0, n, 3 * MIB + 5, n), 0);
  assert_int_equal(get_check_ra(&f, "ra", p, 4 * MIB - 300, 600, 7, n), 0);

  /* one read: its chunk and READ_AHEAD more are fetched while the caller
   * holds the answer; a jump (not sequential) fetches only its chunk */
  ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = "ra"};
  assert_int_equal(run_op(&f, ks_obj_get, &op), 0);
  assert_int_equal(ks_obj_read_ahead(&op, n), 0);
  uint8_t *buf = malloc(MIB);
  assert_non_null(buf);
  uint64_t g0 = frag_gets(&f);
  assert_int_equal(read_range(&f, &op, 0, 1000, MIB, buf), 0);
  loop_sleep(&f, 300);
  assert_int_equal(frag_gets(&f) - g0, (1 + READ_AHEAD) * 4);
  /* chunks 1 and 2 are answered from what was fetched ahead */
  assert_int_equal(read_range(&f, &op, 4 * MIB, MIB, MIB, buf), 0);
  assert_memory_equal(buf, p + 4 * MIB, MIB);
  g0 = frag_gets(&f);
  assert_int_equal(read_range(&f, &op, 17 * MIB, MIB, MIB, buf), 0);
  assert_memory_equal(buf, p + 17 * MIB, MIB);
  loop_sleep(&f, 300);
  assert_int_equal(frag_gets(&f) - g0, 4);
  ks_obj_op_release(&op);
  free(buf);
  free(p);
  fx_stop(&f);
}

/* Release with fetches ahead in flight (fragments on the wire, opens queued
 * or running on the threadpool): ASan sees any use after free, and the
 * client and the loop end clean (fx_stop: uv_loop_close() == 0). */
static void test_read_ahead_release(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t n = 16 * MIB + 3;
  uint8_t *p = pattern(n, 22);
  assert_int_equal(put_bytes(&f, "bk", "ra", p, n, NULL), 0);
  uint8_t *buf = malloc(MIB);
  assert_non_null(buf);
  for (int spins = 0; spins < 24; spins++) {
    ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = "ra"};
    assert_int_equal(run_op(&f, ks_obj_get, &op), 0);
    assert_int_equal(ks_obj_read_ahead(&op, n), 0);
    uint64_t at = (uint64_t)(spins % 3) * 4 * MIB;
    assert_int_equal(read_range(&f, &op, at, 100, MIB, buf), 0);
    assert_memory_equal(buf, p + at, 100);
    for (int i = 0; i < spins; i++)
      uv_run(&f.loop, UV_RUN_NOWAIT);
    ks_obj_op_release(&op);
  }
  /* and an op released before its first read */
  ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = "ra"};
  assert_int_equal(run_op(&f, ks_obj_get, &op), 0);
  assert_int_equal(ks_obj_read_ahead(&op, n), 0);
  ks_obj_op_release(&op);
  loop_sleep(&f, 300);
  assert_int_equal(get_check_ra(&f, "ra", p, 0, n, MIB, n), 0);
  free(buf);
  free(p);
  fx_stop(&f);
}

/* Chunks fetched ahead are rebuilt from parity like any other: two of six
 * devices lost or corrupt, byte-identical; three: -ENODATA. */
static void test_read_ahead_degraded(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t n = 14 * MIB + 77;
  uint8_t *p = pattern(n, 23);
  assert_int_equal(put_bytes(&f, "bk", "ra", p, n, NULL), 0);
  dev_damage(&f, 1, false);
  assert_int_equal(get_check_ra(&f, "ra", p, 0, n, MIB, n), 0);
  dev_damage(&f, 2, true);
  assert_int_equal(get_check_ra(&f, "ra", p, 0, n, MIB, n), 0);
  assert_int_equal(
      get_check_ra(&f, "ra", p, 3 * MIB, 9 * MIB, 700 * 1024, 12 * MIB), 0);
  dev_damage(&f, 4, false);
  assert_int_equal(get_check_ra(&f, "ra", p, 0, n, MIB, n), -ENODATA);
  loop_sleep(&f, 300);
  free(p);
  fx_stop(&f);
}

/* ---- part copy ------------------------------------------------------------
 */

/* Multipart upload of p[0, n) as parts of lens[] (0-terminated) into key. */
static void mp_put(fx_t *f, const char *key, const uint8_t *p,
                   const size_t *lens)
{
  ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = key};
  assert_int_equal(run_op(f, ks_obj_mpu_create, &op), 0);
  char upload[KS_ID_HEX_LEN + 1];
  memcpy(upload, op.upload_id_out, sizeof(upload));
  ks_obj_op_release(&op);
  char etags[4][KS_META_ETAG_MAX];
  ks_meta_part_ref_t refs[4];
  uint32_t i = 0;
  for (size_t off = 0; lens[i] != 0; off += lens[i], i++) {
    assert_true(i < 4);
    struct iovec iov = {(void *)(p + off), lens[i]};
    op = (ks_obj_op_t){.tenant = tenant,
                       .bucket = "bk",
                       .key = key,
                       .upload_id = upload,
                       .part = i + 1,
                       .body = &iov,
                       .nbody = 1,
                       .body_len = lens[i]};
    assert_int_equal(run_op(f, ks_obj_mpu_part, &op), 0);
    snprintf(etags[i], sizeof(etags[i]), "%s", op.result.etag);
    ks_obj_op_release(&op);
    refs[i] = (ks_meta_part_ref_t){i + 1, etags[i]};
  }
  op = (ks_obj_op_t){.tenant = tenant,
                     .bucket = "bk",
                     .key = key,
                     .upload_id = upload,
                     .parts = refs,
                     .nparts = i};
  assert_int_equal(run_release(f, ks_obj_mpu_complete, &op), 0);
}

/* Copy src[off, +len) (len 0: to the end) as part 1 of a new upload of
 * dst, check the part's ETag is the MD5 of want[0, wlen), complete it and
 * read it back byte for byte. */
static void part_copy_check(fx_t *f, const char *src, const char *dst,
                            uint64_t off, uint64_t len, const uint8_t *want,
                            size_t wlen)
{
  ks_obj_op_t s = {.tenant = tenant, .bucket = "bk", .key = src};
  assert_int_equal(run_op(f, ks_obj_get, &s), 0);
  ks_obj_op_t op = {.tenant = tenant, .bucket = "bk", .key = dst};
  assert_int_equal(run_op(f, ks_obj_mpu_create, &op), 0);
  char upload[KS_ID_HEX_LEN + 1];
  memcpy(upload, op.upload_id_out, sizeof(upload));
  ks_obj_op_release(&op);
  op = (ks_obj_op_t){.tenant = tenant,
                     .bucket = "bk",
                     .key = dst,
                     .upload_id = upload,
                     .part = 1,
                     .src = &s.reply.r.comp,
                     .src_off = off,
                     .src_len = len};
  assert_int_equal(run_op(f, ks_obj_mpu_part_copy, &op), 0);
  uint8_t md5[KS_MD5_LEN];
  char hex[2 * KS_MD5_LEN + 1], etag[KS_META_ETAG_MAX];
  assert_int_equal(ks_md5(want, wlen, md5), 0);
  assert_true(ks_hex_encode(hex, sizeof(hex), md5, sizeof(md5)) > 0);
  assert_string_equal(op.result.etag, hex);
  assert_int_equal(op.result.size, wlen);
  snprintf(etag, sizeof(etag), "%s", op.result.etag);
  ks_obj_op_release(&op);
  ks_obj_op_release(&s);
  ks_meta_part_ref_t ref = {1, etag};
  op = (ks_obj_op_t){.tenant = tenant,
                     .bucket = "bk",
                     .key = dst,
                     .upload_id = upload,
                     .parts = &ref,
                     .nparts = 1};
  assert_int_equal(run_release(f, ks_obj_mpu_complete, &op), 0);
  assert_int_equal(get_check(f, dst, want, 0, wlen, 1 << 20), 0);
}

/* Whether extent xi of a's composition is extent yi of b's (the same
 * sealed chunk: reused, not written again). */
static bool extent_same(fx_t *f, const char *a, uint32_t xi, const char *b,
                        uint32_t yi)
{
  ks_obj_op_t x = {.tenant = tenant, .bucket = "bk", .key = a};
  ks_obj_op_t y = {.tenant = tenant, .bucket = "bk", .key = b};
  assert_int_equal(run_op(f, ks_obj_get, &x), 0);
  assert_int_equal(run_op(f, ks_obj_get, &y), 0);
  assert_true(xi < x.reply.r.comp.nextents && yi < y.reply.r.comp.nextents);
  const ks_meta_extent_t *ex = &x.reply.r.comp.extents[xi];
  const ks_meta_extent_t *ey = &y.reply.r.comp.extents[yi];
  bool same = ex->desc_len == ey->desc_len &&
              memcmp(ex->desc, ey->desc, ex->desc_len) == 0;
  ks_obj_op_release(&x);
  ks_obj_op_release(&y);
  return same;
}

static void test_part_copy(void **state)
{
  (void)state;
  fx_t f;
  setup(&f);
  size_t n = 10 * MIB + 7, nm = 5 * MIB + 1003;
  uint8_t *p = pattern(n, 7), *q = pattern(nm, 8);
  ks_meta_result_t res;
  assert_int_equal(put_bytes(&f, "bk", "src", p, n, &res), 0);
  assert_int_equal(put_bytes(&f, "bk", "small", p, 3000, NULL), 0);
  size_t lens[] = {5 * MIB + 3, 1000, 0};
  mp_put(&f, "mp", q, lens);

  /* whole single-part source: metadata only, the source's ETag */
  part_copy_check(&f, "src", "d-whole", 0, 0, p, n);
  assert_true(extent_same(&f, "d-whole", 0, "src", 0));
  /* a range inside one chunk; across a chunk boundary */
  part_copy_check(&f, "src", "d-in", 100, 1000, p + 100, 1000);
  part_copy_check(&f, "src", "d-across", 4 * MIB - 10, 30, p + 4 * MIB - 10,
                  30);
  /* cut first and last chunk, the middle one reused */
  part_copy_check(&f, "src", "d-cut", MIB, 8 * MIB, p + MIB, 8 * MIB);
  assert_false(extent_same(&f, "d-cut", 0, "src", 0));
  assert_true(extent_same(&f, "d-cut", 1, "src", 1));
  /* on chunk boundaries: nothing written, the ETag still read */
  part_copy_check(&f, "src", "d-aligned", 4 * MIB, 4 * MIB, p + 4 * MIB,
                  4 * MIB);
  assert_true(extent_same(&f, "d-aligned", 0, "src", 1));
  /* to the end (len 0), the last bytes only */
  part_copy_check(&f, "src", "d-tail", 10 * MIB, 0, p + 10 * MIB, 7);
  /* inline source: whole, and a range */
  part_copy_check(&f, "small", "d-small", 0, 0, p, 3000);
  part_copy_check(&f, "small", "d-small-r", 10, 100, p + 10, 100);
  /* multipart source: whole (its ETag is not an MD5), across its parts */
  part_copy_check(&f, "mp", "d-mp", 0, 0, q, nm);
  part_copy_check(&f, "mp", "d-mp-r", 5 * MIB - 5, 20, q + 5 * MIB - 5, 20);

  /* ranges outside the source: refused before anything runs */
  ks_obj_op_t s = {.tenant = tenant, .bucket = "bk", .key = "small"};
  assert_int_equal(run_op(&f, ks_obj_get, &s), 0);
  ks_obj_op_t op = {.tenant = tenant,
                    .bucket = "bk",
                    .key = "d-bad",
                    .upload_id = "00",
                    .part = 1,
                    .src = &s.reply.r.comp,
                    .src_off = 3001};
  assert_int_equal(ks_obj_mpu_part_copy(f.cl, &op, op_cb), -EINVAL);
  op.src_off = 2000;
  op.src_len = 1001;
  assert_int_equal(ks_obj_mpu_part_copy(f.cl, &op, op_cb), -EINVAL);
  ks_obj_op_release(&s);

  /* an unreadable source (3 of 6 devices lost): the copy fails once
   * nothing of it is in flight, and its release frees everything */
  for (int i = 0; i < 3; i++)
    dev_damage(&f, i, false);
  s = (ks_obj_op_t){.tenant = tenant, .bucket = "bk", .key = "src"};
  assert_int_equal(run_op(&f, ks_obj_get, &s), 0);
  op.src = &s.reply.r.comp;
  op.src_off = MIB;
  op.src_len = 8 * MIB;
  assert_int_equal(run_release(&f, ks_obj_mpu_part_copy, &op), -ENODATA);
  ks_obj_op_release(&s);
  free(p);
  free(q);
  fx_stop(&f);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_degraded),
      cmocka_unit_test(test_multipart_copy_delete),
      cmocka_unit_test(test_tenancy_and_errors),
      cmocka_unit_test(test_no_plaintext),
      cmocka_unit_test(test_degraded_writes),
      cmocka_unit_test(test_device_replaced),
      cmocka_unit_test(test_read_ahead),
      cmocka_unit_test(test_read_ahead_release),
      cmocka_unit_test(test_read_ahead_degraded),
      cmocka_unit_test(test_part_copy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
