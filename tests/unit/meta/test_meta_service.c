/*
 * test_meta_service.c — a meta node in-process (raft store, raft node, RPC
 * server, shard state, service with the system shard as a one-voter group)
 * driven by libkiseki's meta client over real loopback RPC: buckets,
 * put/get/list/delete, multipart, errors as statuses, batched linearizable
 * reads (many reads, few barriers), and a restart that rebuilds the state
 * from the Raft snapshot + log after the state files were discarded; reads
 * without a log entry in a one-voter group, barrier reads in a two-voter
 * group (both nodes on one loop), the snapshot threshold's scaling.
 * Ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/err.h"
#include "ks/meta_client.h"
#include "ks/meta_service.h"
#include "ks/proto_meta.h"
#include "ks/raft_io_ks.h"
#include "ks/raft_store.h"
#include "ks/rpc.h"
#include "ks/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1ULL << 20)

typedef struct node {
  uv_loop_t *loop; /* own_loop, or one shared by a group's nodes */
  uv_loop_t own_loop;
  char dir[64], raft_dir[96], state_dir[96], addr[64];
  ks_raft_store_t *store;
  ks_meta_state_t *st;
  ks_rpc_server_t *srv;
  ks_raft_node_t *rn;
  ks_meta_service_t *svc;
  ks_meta_client_t *cl;
  int64_t now;
} node_t;

static void flag_cb(void *arg)
{
  *(bool *)arg = true;
}

static void run_until(uv_loop_t *loop, bool *flag)
{
  while (!*flag)
    uv_run(loop, UV_RUN_ONCE);
}

/* Open n's store, state, RPC server, raft node and service on loop. */
static void node_parts_open(node_t *n, uv_loop_t *loop,
                            const ks_meta_service_opts_t *o)
{
  n->loop = loop;
  assert_int_equal(ks_raft_store_open(n->raft_dir, NULL, &n->store), 0);
  assert_int_equal(ks_meta_state_open(n->state_dir, 1ULL << 30, &n->st), 0);
  assert_int_equal(ks_rpc_server_new(n->loop, "127.0.0.1", 0, NULL, &n->srv),
                   0);
  snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%u",
           ks_rpc_server_port(n->srv));
  assert_int_equal(ks_raft_node_new(n->loop, n->store, n->srv, NULL, &n->rn),
                   0);
  assert_int_equal(
      ks_meta_service_new(n->loop, n->srv, n->rn, n->st, o, &n->svc), 0);
}

static void node_client_open(node_t *n)
{
  assert_int_equal(ks_meta_client_new(n->loop, "127.0.0.1",
                                      ks_rpc_server_port(n->srv), NULL, &n->cl),
                   0);
}

/* One node hosting the system shard as the only voter of its group. */
static void node_open_opts(node_t *n, const ks_meta_service_opts_t *o)
{
  uv_loop_init(&n->own_loop);
  node_parts_open(n, &n->own_loop, o);
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  assert_int_equal(raft_configuration_add(&conf, 1, n->addr, RAFT_VOTER), 0);
  assert_int_equal(ks_meta_service_shard_start(n->svc, KS_META_SYSTEM_SHARD, 1,
                                               n->addr, &conf),
                   0);
  raft_configuration_close(&conf);
  assert_true(ks_meta_service_is_leader(n->svc, KS_META_SYSTEM_SHARD));
  node_client_open(n);
}

static void node_open(node_t *n, unsigned snapshot_threshold)
{
  ks_meta_service_opts_t o = {.snapshot_threshold = snapshot_threshold,
                              .snapshot_trailing = 4};
  node_open_opts(n, &o);
}

static void node_close_service(node_t *n)
{
  bool done = false;
  if (n->cl != NULL) {
    ks_meta_client_close(n->cl, flag_cb, &done);
    run_until(n->loop, &done);
    n->cl = NULL;
  }
  done = false;
  ks_meta_service_close(n->svc, flag_cb, &done);
  run_until(n->loop, &done);
}

static void node_close_rest(node_t *n)
{
  bool done = false;
  ks_rpc_server_close(n->srv, flag_cb, &done);
  run_until(n->loop, &done);
  done = false;
  ks_raft_node_close(n->rn, flag_cb, &done);
  run_until(n->loop, &done);
  ks_meta_service_free(n->svc);
  ks_meta_state_close(n->st);
  ks_raft_store_close(n->store);
}

static void node_close(node_t *n)
{
  node_close_service(n);
  node_close_rest(n);
  assert_int_equal(uv_loop_close(n->loop), 0);
}

static void dirs_make(node_t *n)
{
  memset(n, 0, sizeof(*n));
  snprintf(n->dir, sizeof(n->dir), "/tmp/ks-metasvc-XXXXXX");
  assert_non_null(mkdtemp(n->dir));
  snprintf(n->raft_dir, sizeof(n->raft_dir), "%s/raft", n->dir);
  snprintf(n->state_dir, sizeof(n->state_dir), "%s/state", n->dir);
  assert_int_equal(mkdir(n->raft_dir, 0700), 0);
}

static void dirs_remove(node_t *n)
{
  char cmd[160];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", n->dir);
  assert_int_equal(system(cmd), 0);
}

/* ---- synchronous wrappers over the async client ----------------------------
 */

typedef struct sync {
  ks_meta_call_t call;
  bool done;
  int status;
} sync_t;

static void sync_cb(ks_meta_call_t *c, int status)
{
  sync_t *s = c->data;
  s->done = true;
  s->status = status;
}

static int write_d(node_t *n, ks_meta_delta_t *d, ks_meta_result_t *res)
{
  sync_t s = {.call = {.data = &s}};
  d->now_ns = ++n->now;
  assert_int_equal(
      ks_meta_write(n->cl, &s.call, KS_META_SYSTEM_SHARD, d, 0, sync_cb), 0);
  run_until(n->loop, &s.done);
  if (res != NULL)
    *res = s.call.result;
  ks_meta_call_release(&s.call);
  return s.status;
}

/* Start a query; the caller runs the loop and releases. */
static void query_start(node_t *n, sync_t *s, uint16_t op,
                        const ks_meta_query_t *q)
{
  memset(s, 0, sizeof(*s));
  s->call.data = s;
  assert_int_equal(ks_meta_query(n->cl, &s->call, op, q, 0, sync_cb), 0);
}

static int query(node_t *n, sync_t *s, uint16_t op, const ks_meta_query_t *q)
{
  query_start(n, s, op, q);
  run_until(n->loop, &s->done);
  return s->status;
}

static const ks_id_t tenant = {{7}};

static int put(node_t *n, const char *key, const char *data,
               ks_meta_result_t *res)
{
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_OBJECT, .bucket = "bk", .key = key};
  d.comp = (ks_meta_comp_t){.size = strlen(data),
                            .etag = "tag",
                            .content_type = "text/plain",
                            .is_inline = true,
                            .inline_data = (const uint8_t *)data,
                            .inline_len = (uint32_t)strlen(data)};
  return write_d(n, &d, res);
}

static void setup_bucket(node_t *n)
{
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_TENANT, .tenant = tenant};
  d.name = "t";
  assert_int_equal(write_d(n, &d, NULL), 0);
  d = (ks_meta_delta_t){
      .type = KS_DELTA_CREATE_BUCKET, .bucket = "bk", .tenant = tenant};
  assert_int_equal(write_d(n, &d, NULL), 0);
  assert_int_equal(write_d(n, &d, NULL), KS_META_EOWNED);
}

static void check_object(node_t *n, const char *key, const char *data)
{
  sync_t s;
  ks_meta_query_t q = {.shard = 1, .bucket = "bk", .key = key};
  assert_int_equal(query(n, &s, KS_OP_META_GET_OBJECT, &q), 0);
  assert_true(s.call.r.comp.is_inline);
  assert_int_equal(s.call.r.comp.inline_len, strlen(data));
  assert_memory_equal(s.call.r.comp.inline_data, data, strlen(data));
  assert_string_equal(s.call.r.comp.content_type, "text/plain");
  ks_meta_call_release(&s.call);
}

/* ---- tests -----------------------------------------------------------------
 */

static void test_objects_over_rpc(void **state)
{
  (void)state;
  node_t n;
  dirs_make(&n);
  node_open(&n, 0);
  setup_bucket(&n);
  ks_meta_result_t res;
  assert_int_equal(put(&n, "dir/a", "alpha", &res), 0);
  assert_int_equal(res.ino, KS_META_FIRST_INO);
  assert_string_equal(res.etag, "tag");
  assert_int_equal(put(&n, "dir/b", "beta", NULL), 0);
  assert_int_equal(put(&n, "top", "t", NULL), 0);
  check_object(&n, "dir/a", "alpha");

  sync_t s;
  ks_meta_query_t q = {
      .shard = 1, .bucket = "bk", .delimiter = "/", .max = 1000};
  assert_int_equal(query(&n, &s, KS_OP_META_LIST_OBJECTS, &q), 0);
  assert_int_equal(s.call.r.objects.n, 1);
  assert_string_equal(s.call.r.objects.entries[0].key, "top");
  assert_int_equal(s.call.r.objects.nprefixes, 1);
  assert_string_equal(s.call.r.objects.prefixes[0], "dir/");
  ks_meta_call_release(&s.call);

  q = (ks_meta_query_t){.shard = 1, .tenant = tenant};
  assert_int_equal(query(&n, &s, KS_OP_META_LIST_BUCKETS, &q), 0);
  assert_int_equal(s.call.r.buckets.n, 1);
  assert_string_equal(s.call.r.buckets.buckets[0].name, "bk");
  ks_meta_call_release(&s.call);

  /* Errors travel as statuses. */
  ks_meta_delta_t d = {.type = KS_DELTA_DELETE_OBJECT, .bucket = "bk"};
  d.key = "dir/a";
  assert_int_equal(write_d(&n, &d, NULL), 0);
  q = (ks_meta_query_t){.shard = 1, .bucket = "bk", .key = "dir/a"};
  assert_int_equal(query(&n, &s, KS_OP_META_GET_OBJECT, &q), KS_META_ENOKEY);
  ks_meta_call_release(&s.call);
  q.bucket = "nope";
  assert_int_equal(query(&n, &s, KS_OP_META_GET_OBJECT, &q), KS_META_ENOBUCKET);
  ks_meta_call_release(&s.call);
  q.shard = 99;
  assert_int_equal(query(&n, &s, KS_OP_META_GET_OBJECT, &q), KS_META_ENOSHARD);
  ks_meta_call_release(&s.call);
  d = (ks_meta_delta_t){
      .type = KS_DELTA_DELETE_BUCKET, .bucket = "bk", .tenant = tenant};
  assert_int_equal(write_d(&n, &d, NULL), KS_META_ENOTEMPTY);
  /* A delta of no known type is refused before it is proposed. */
  d.type = 0;
  sync_t w = {.call = {.data = &w}};
  assert_int_equal(ks_meta_write(n.cl, &w.call, 1, &d, 0, sync_cb), -EINVAL);

  /* Access keys round trip (secret as stored for SigV4). */
  d = (ks_meta_delta_t){
      .type = KS_DELTA_PUT_ACCESS_KEY, .name = "AK", .tenant = tenant};
  d.secret = (const uint8_t *)"secret!";
  d.secret_len = 7;
  assert_int_equal(write_d(&n, &d, NULL), 0);
  q = (ks_meta_query_t){.shard = 1, .akey = "AK"};
  assert_int_equal(query(&n, &s, KS_OP_META_GET_ACCESS_KEY, &q), 0);
  assert_memory_equal(s.call.r.akey.secret, "secret!", 7);
  ks_meta_call_release(&s.call);
  node_close(&n);
  dirs_remove(&n);
}

static int put_part(node_t *n, uint32_t part, uint64_t size, const char *etag)
{
  ks_meta_extent_t x = {0, size, (const uint8_t *)"desc", 4, 0, NULL};
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_PART, .bucket = "bk", .key = "mp"};
  d.upload_id = "U1";
  d.part = part;
  d.comp = (ks_meta_comp_t){
      .size = size, .etag = etag, .nextents = 1, .extents = &x};
  return write_d(n, &d, NULL);
}

static void test_multipart_over_rpc(void **state)
{
  (void)state;
  node_t n;
  dirs_make(&n);
  node_open(&n, 0);
  setup_bucket(&n);
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_MPU, .bucket = "bk"};
  d.key = "mp";
  d.upload_id = "U1";
  assert_int_equal(write_d(&n, &d, NULL), 0);
  const char *t1 = "0cc175b9c0f1b6a831c399e269772661";
  const char *t2 = "92eb5ffee6ae2fec3ad71c777531578f";
  assert_int_equal(put_part(&n, 1, 5 * MIB, t1), 0);
  assert_int_equal(put_part(&n, 2, 3, t2), 0);
  sync_t s;
  ks_meta_query_t q = {
      .shard = 1, .bucket = "bk", .key = "mp", .upload_id = "U1", .max = 1000};
  assert_int_equal(query(&n, &s, KS_OP_META_LIST_PARTS, &q), 0);
  assert_int_equal(s.call.r.parts.n, 2);
  ks_meta_call_release(&s.call);
  q.max = 10;
  assert_int_equal(query(&n, &s, KS_OP_META_LIST_UPLOADS, &q), 0);
  assert_int_equal(s.call.r.uploads.n, 1);
  assert_string_equal(s.call.r.uploads.uploads[0].upload_id, "U1");
  ks_meta_call_release(&s.call);
  ks_meta_part_ref_t refs[2] = {{2, t2}, {1, t1}};
  d.type = KS_DELTA_COMPLETE_MPU;
  d.parts = refs;
  d.nparts = 2;
  assert_int_equal(write_d(&n, &d, NULL), KS_META_EPARTORDER);
  refs[0] = (ks_meta_part_ref_t){1, t1};
  refs[1] = (ks_meta_part_ref_t){2, t2};
  ks_meta_result_t res;
  assert_int_equal(write_d(&n, &d, &res), 0);
  assert_int_equal(res.size, 5 * MIB + 3);
  assert_non_null(strstr(res.etag, "-2"));
  q = (ks_meta_query_t){.shard = 1, .bucket = "bk", .key = "mp"};
  assert_int_equal(query(&n, &s, KS_OP_META_GET_OBJECT, &q), 0);
  assert_int_equal(s.call.r.comp.nextents, 2);
  assert_int_equal(s.call.r.comp.extents[1].offset, 5 * MIB);
  ks_meta_call_release(&s.call);
  node_close(&n);
  dirs_remove(&n);
}

#define N_READS 50

static void test_batched_reads(void **state)
{
  (void)state;
  node_t n;
  dirs_make(&n);
  node_open(&n, 0);
  setup_bucket(&n);
  assert_int_equal(put(&n, "k", "v", NULL), 0);
  ks_meta_service_stats_t before, after;
  ks_meta_service_stats(n.svc, &before);
  static sync_t s[N_READS];
  ks_meta_query_t q = {.shard = 1, .bucket = "bk", .key = "k"};
  for (int i = 0; i < N_READS; i++)
    query_start(&n, &s[i], KS_OP_META_GET_OBJECT, &q);
  for (int i = 0; i < N_READS; i++) {
    run_until(n.loop, &s[i].done);
    assert_int_equal(s[i].status, 0);
    assert_memory_equal(s[i].call.r.comp.inline_data, "v", 1);
    ks_meta_call_release(&s[i].call);
  }
  ks_meta_service_stats(n.svc, &after);
  assert_int_equal(after.reads - before.reads, N_READS);
  /* Batched: far fewer barriers than reads. */
  assert_true(after.barriers - before.barriers < N_READS / 5);
  node_close(&n);
  dirs_remove(&n);
}

static void test_restart_rebuilds_state(void **state)
{
  (void)state;
  node_t n;
  dirs_make(&n);
  node_open(&n, 16); /* snapshots every 16 entries: restore + tail replay */
  setup_bucket(&n);
  char key[32], val[32];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "obj%03d", i);
    snprintf(val, sizeof(val), "value-%d", i);
    assert_int_equal(put(&n, key, val, NULL), 0);
  }
  int64_t now = n.now;
  node_close(&n);
  /* The state files are discarded on open; everything comes back from
   * the Raft snapshot and log. */
  node_open(&n, 16);
  n.now = now;
  ks_raft_snap_hdr_t hdr;
  ks_buf_t conf = KS_BUF_INIT;
  assert_int_equal(ks_raft_store_snapshot_get(n.store, 1, &hdr, &conf), 0);
  ks_buf_free(&conf);
  assert_true(hdr.index > 16);
  for (int i = 0; i < 100; i++) {
    /* The first read of the new term: one barrier; the others: none. */
    if (i == 1) {
      ks_meta_service_stats_t st;
      ks_meta_service_stats(n.svc, &st);
      assert_int_equal(st.barriers, 1);
    }
    snprintf(key, sizeof(key), "obj%03d", i);
    snprintf(val, sizeof(val), "value-%d", i);
    check_object(&n, key, val);
  }
  ks_meta_result_t res;
  assert_int_equal(put(&n, "after", "x", &res), 0);
  assert_int_equal(res.ino, KS_META_FIRST_INO + 100);
  node_close(&n);
  dirs_remove(&n);
}

/* The shard's node-wide Raft counters and the service's read counters. */
typedef struct counts {
  ks_raft_node_stats_t raft;
  ks_meta_service_stats_t svc;
} counts_t;

static counts_t counts(node_t *n)
{
  counts_t c;
  ks_raft_node_stats(n->rn, &c.raft);
  ks_meta_service_stats(n->svc, &c.svc);
  return c;
}

/* A one-voter group answers reads without a log entry: the first read of a
 * term that has committed nothing yet takes a barrier, later ones none; a
 * read after an acknowledged write sees it. */
static void test_local_reads(void **state)
{
  (void)state;
  node_t n;
  dirs_make(&n);
  node_open(&n, 0);
  sync_t s;
  ks_meta_query_t q = {.shard = 1, .bucket = "bk"};
  counts_t c0 = counts(&n);
  assert_int_equal(query(&n, &s, KS_OP_META_GET_BUCKET, &q), KS_META_ENOBUCKET);
  ks_meta_call_release(&s.call);
  counts_t c1 = counts(&n);
  assert_int_equal(c1.svc.barriers - c0.svc.barriers, 1);
  assert_int_equal(c1.svc.local_reads, 0);
  assert_int_equal(query(&n, &s, KS_OP_META_GET_BUCKET, &q), KS_META_ENOBUCKET);
  ks_meta_call_release(&s.call);
  c1 = counts(&n);
  assert_int_equal(c1.svc.barriers - c0.svc.barriers, 1);
  assert_int_equal(c1.svc.local_reads, 1);

  setup_bucket(&n);
  assert_int_equal(put(&n, "k", "v", NULL), 0);
  c0 = counts(&n);
  for (int i = 0; i < 50; i++)
    check_object(&n, "k", "v");
  static sync_t ss[N_READS];
  q.key = "k";
  for (int i = 0; i < N_READS; i++)
    query_start(&n, &ss[i], KS_OP_META_GET_OBJECT, &q);
  for (int i = 0; i < N_READS; i++) {
    run_until(n.loop, &ss[i].done);
    assert_int_equal(ss[i].status, 0);
    ks_meta_call_release(&ss[i].call);
  }
  c1 = counts(&n);
  /* No log entry, no barrier, no fsync for any of them. */
  assert_int_equal(c1.raft.entries, c0.raft.entries);
  assert_int_equal(c1.raft.commits, c0.raft.commits);
  assert_int_equal(c1.svc.barriers, c0.svc.barriers);
  assert_int_equal(c1.svc.local_reads - c0.svc.local_reads, 50 + N_READS);
  assert_int_equal(c1.svc.reads - c0.svc.reads, 50 + N_READS);

  char val[32];
  for (int i = 0; i < 20; i++) {
    snprintf(val, sizeof(val), "v%d", i);
    assert_int_equal(put(&n, "k", val, NULL), 0);
    check_object(&n, "k", val);
  }
  counts_t c2 = counts(&n);
  assert_int_equal(c2.svc.barriers, c0.svc.barriers);
  assert_int_equal(c2.raft.entries - c1.raft.entries, 20);
  node_close(&n);
  dirs_remove(&n);
}

/* The snapshot threshold grows with the shard (2 entries per record by
 * default), so snapshots get rarer as the state grows; a restart starts
 * with the threshold of the restored snapshot. */
static void test_snapshot_threshold_scales(void **state)
{
  (void)state;
  node_t n;
  dirs_make(&n);
  node_open(&n, 16);
  assert_int_equal(ks_meta_service_snapshot_threshold(n.svc, 1), 16);
  assert_int_equal(ks_meta_service_snapshot_threshold(n.svc, 99), 0);
  setup_bucket(&n);
  char key[32];
  for (int i = 0; i < 300; i++) {
    snprintf(key, sizeof(key), "obj%03d", i);
    assert_int_equal(put(&n, key, "v", NULL), 0);
  }
  counts_t c = counts(&n);
  unsigned t = ks_meta_service_snapshot_threshold(n.svc, 1);
  /* ~305 entries: a fixed threshold of 16 takes 19 snapshots; scaled they
   * come at ~16, ~46, ~136 entries: records 15, 45, 135. */
  assert_in_range(c.raft.snapshots, 2, 5);
  assert_true(t >= 2 * 100);
  assert_true(t % 2 == 0);
  node_close(&n);

  node_open(&n, 16);
  check_object(&n, "obj299", "v");
  assert_int_equal(ks_meta_service_snapshot_threshold(n.svc, 1), t);
  node_close(&n);

  /* Capped by snapshot_log_max: 4 KiB of entries (~100 bytes each). */
  ks_meta_service_opts_t o = {.snapshot_threshold = 16,
                              .snapshot_trailing = 4,
                              .snapshot_log_max = 4096};
  node_open_opts(&n, &o);
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "more%03d", i);
    assert_int_equal(put(&n, key, "v", NULL), 0);
  }
  unsigned t2 = ks_meta_service_snapshot_threshold(n.svc, 1);
  assert_true(t2 >= 16 && t2 <= 4096 / 40);
  check_object(&n, "obj299", "v");
  check_object(&n, "more099", "v");
  node_close(&n);
  dirs_remove(&n);
}

/* A two-voter group: reads go through barriers (a leader alone proves
 * nothing), batched, and see every acknowledged write. */
static void test_two_voter_reads(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  node_t n[2];
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  for (int i = 0; i < 2; i++) {
    dirs_make(&n[i]);
    ks_meta_service_opts_t o = {.snapshot_trailing = 4};
    node_parts_open(&n[i], &loop, &o);
    assert_int_equal(
        raft_configuration_add(&conf, (raft_id)i + 1, n[i].addr, RAFT_VOTER),
        0);
  }
  for (int i = 0; i < 2; i++)
    assert_int_equal(ks_meta_service_shard_start(n[i].svc, KS_META_SYSTEM_SHARD,
                                                 (uint64_t)i + 1, n[i].addr,
                                                 &conf),
                     0);
  raft_configuration_close(&conf);
  node_t *l = NULL;
  while (l == NULL) {
    uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 2; i++)
      if (ks_meta_service_is_leader(n[i].svc, KS_META_SYSTEM_SHARD))
        l = &n[i];
  }
  node_client_open(l);
  setup_bucket(l);
  assert_int_equal(put(l, "k", "v", NULL), 0);
  counts_t c0 = counts(l);
  static sync_t ss[N_READS];
  ks_meta_query_t q = {.shard = 1, .bucket = "bk", .key = "k"};
  for (int i = 0; i < N_READS; i++) {
    query_start(l, &ss[i], KS_OP_META_GET_OBJECT, &q);
    if (i % 16 == 15) /* several loop turns: barriers pipeline */
      uv_run(&loop, UV_RUN_NOWAIT);
  }
  for (int i = 0; i < N_READS; i++) {
    run_until(&loop, &ss[i].done);
    assert_int_equal(ss[i].status, 0);
    assert_memory_equal(ss[i].call.r.comp.inline_data, "v", 1);
    ks_meta_call_release(&ss[i].call);
  }
  counts_t c1 = counts(l);
  assert_int_equal(c1.svc.reads - c0.svc.reads, N_READS);
  assert_int_equal(c1.svc.local_reads, 0);
  assert_true(c1.svc.barriers > c0.svc.barriers);
  assert_true(c1.svc.barriers - c0.svc.barriers < N_READS / 5);
  char val[32];
  for (int i = 0; i < 10; i++) {
    snprintf(val, sizeof(val), "v%d", i);
    assert_int_equal(put(l, "k", val, NULL), 0);
    check_object(l, "k", val);
  }
  for (int i = 0; i < 2; i++)
    node_close_service(&n[i]);
  for (int i = 0; i < 2; i++) {
    node_close_rest(&n[i]);
    dirs_remove(&n[i]);
  }
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_objects_over_rpc),
      cmocka_unit_test(test_multipart_over_rpc),
      cmocka_unit_test(test_batched_reads),
      cmocka_unit_test(test_restart_rebuilds_state),
      cmocka_unit_test(test_local_reads),
      cmocka_unit_test(test_snapshot_threshold_scales),
      cmocka_unit_test(test_two_voter_reads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
