/*
 * test_raft_io.c — libraft on Kiseki's raft_io (ks/raft_io_ks.h) with a tiny
 * counter FSM: a single-voter group applies 1,000 entries and restarts from
 * the same LMDB directory; many groups' appends of one loop turn share one
 * commit; snapshots compact the log and a restart restores snapshot + tail;
 * three nodes in one process elect a leader over real RPC sockets,
 * replicate, survive the leader's stop, and a follower that missed a
 * compacted stretch of log catches up through InstallSnapshot.  Every test
 * ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/err.h"
#include "ks/raft_io_ks.h"
#include "ks/raft_store.h"
#include "ks/rpc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- counter FSM ------------------------------------------------------------
 * apply adds an 8-byte value; the snapshot is count, sum and `pad` bytes of
 * a pattern, in two buffers (so the io's multi-buffer and chunked paths
 * run), and restore checks the pattern. */
typedef struct counter {
  uint64_t count;
  uint64_t sum;
  size_t pad;
  unsigned restores;
} counter_t;

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result)
{
  counter_t *c = fsm->data;
  if (buf->len != 8)
    return RAFT_MALFORMED;
  uint64_t v;
  memcpy(&v, buf->base, 8);
  c->count++;
  c->sum += v;
  *result = NULL;
  return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
  counter_t *c = fsm->data;
  struct raft_buffer *b = raft_calloc(2, sizeof(*b));
  assert_non_null(b);
  b[0].len = 16;
  b[0].base = raft_malloc(16);
  memcpy(b[0].base, &c->count, 8);
  memcpy((uint8_t *)b[0].base + 8, &c->sum, 8);
  b[1].len = c->pad;
  b[1].base = raft_malloc(c->pad + 1);
  for (size_t i = 0; i < c->pad; i++)
    ((uint8_t *)b[1].base)[i] = (uint8_t)(i % 251);
  *bufs = b;
  *n_bufs = 2;
  return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
  counter_t *c = fsm->data;
  assert_int_equal(buf->len, 16 + c->pad);
  memcpy(&c->count, buf->base, 8);
  memcpy(&c->sum, (uint8_t *)buf->base + 8, 8);
  for (size_t i = 0; i < c->pad; i++)
    assert_int_equal(((uint8_t *)buf->base)[16 + i], (uint8_t)(i % 251));
  c->restores++;
  raft_free(buf->base);
  return 0;
}

/* ---- one node: store, raft node (io layer), RPC server --------------------
 */
typedef struct member {
  uv_loop_t *loop;
  char dir[64];
  char address[64];
  ks_raft_store_t *store;
  ks_rpc_server_t *srv;
  ks_raft_node_t *node;
} member_t;

/* One Raft group on a member. */
typedef struct group {
  member_t *m;
  struct raft raft;
  struct raft_io io;
  struct raft_fsm fsm;
  counter_t counter;
  bool running;
  bool closed;
} group_t;

static void member_open(member_t *m, uv_loop_t *loop, const char *dir,
                        bool network)
{
  memset(m, 0, sizeof(*m));
  m->loop = loop;
  snprintf(m->dir, sizeof(m->dir), "%s", dir);
  assert_int_equal(ks_raft_store_open(dir, NULL, &m->store), 0);
  if (network) {
    assert_int_equal(ks_rpc_server_new(loop, "127.0.0.1", 0, NULL, &m->srv), 0);
    snprintf(m->address, sizeof(m->address), "127.0.0.1:%u",
             ks_rpc_server_port(m->srv));
  } else {
    snprintf(m->address, sizeof(m->address), "127.0.0.1:1");
  }
  ks_raft_node_opts_t o = {.send_timeout_ms = 1000};
  assert_int_equal(ks_raft_node_new(loop, m->store, m->srv, &o, &m->node), 0);
}

static void flag_cb(void *arg)
{
  *(bool *)arg = true;
}

static void run_until_flag(uv_loop_t *loop, bool *flag)
{
  while (!*flag)
    uv_run(loop, UV_RUN_ONCE);
}

static void member_close(member_t *m)
{
  bool done = false;
  if (m->srv != NULL) {
    ks_rpc_server_close(m->srv, flag_cb, &done);
    run_until_flag(m->loop, &done);
  }
  done = false;
  ks_raft_node_close(m->node, flag_cb, &done);
  run_until_flag(m->loop, &done);
  ks_raft_store_close(m->store);
}

static char *dir_make(void)
{
  char tmpl[] = "/tmp/ks-raft-io-XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

static void dir_remove(char *d)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/data.mdb", d);
  unlink(path);
  snprintf(path, sizeof(path), "%s/lock.mdb", d);
  unlink(path);
  rmdir(d);
  free(d);
}

static void group_init(group_t *g, member_t *m, uint64_t gid, raft_id id,
                       size_t pad)
{
  memset(g, 0, sizeof(*g));
  g->m = m;
  g->counter.pad = pad;
  g->fsm = (struct raft_fsm){.version = 1,
                             .data = &g->counter,
                             .apply = fsm_apply,
                             .snapshot = fsm_snapshot,
                             .restore = fsm_restore};
  assert_int_equal(ks_raft_io_init(&g->io, m->node, gid), 0);
  assert_int_equal(raft_init(&g->raft, &g->io, &g->fsm, id, m->address), 0);
  g->raft.data = g;
  raft_set_heartbeat_timeout(&g->raft, 30);
  raft_set_election_timeout(&g->raft, 150);
  raft_set_install_snapshot_timeout(&g->raft, 100);
  raft_set_snapshot_threshold(&g->raft, 100000);
}

static void group_start(group_t *g)
{
  assert_int_equal(raft_start(&g->raft), 0);
  g->running = true;
}

static void group_closed_cb(struct raft *r)
{
  group_t *g = r->data;
  g->closed = true;
}

static void group_stop(group_t *g)
{
  g->closed = false;
  raft_close(&g->raft, group_closed_cb);
  run_until_flag(g->m->loop, &g->closed);
  g->running = false;
}

/* Run the loop until pred holds or ms pass; returns pred's final value. */
typedef bool (*pred_fn)(void *arg);
static bool run_until(uv_loop_t *loop, pred_fn pred, void *arg, uint64_t ms)
{
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + ms;
  while (!pred(arg) && uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  return pred(arg);
}

/* ---- applying -------------------------------------------------------------
 */
typedef struct batch {
  struct raft_apply *reqs;
  unsigned n;
  unsigned done;
  unsigned failed;
} batch_t;

static void apply_cb(struct raft_apply *req, int status, void *result)
{
  batch_t *b = req->data;
  (void)result;
  b->done++;
  if (status != 0)
    b->failed++;
}

static bool batch_done(void *arg)
{
  batch_t *b = arg;
  return b->done == b->n;
}

/* Propose n values (1..n offset by base) on r without running the loop. */
static void batch_start(batch_t *b, struct raft *r, unsigned n, uint64_t base)
{
  memset(b, 0, sizeof(*b));
  b->reqs = calloc(n, sizeof(*b->reqs));
  b->n = n;
  for (unsigned i = 0; i < n; i++) {
    struct raft_buffer buf = {.base = raft_malloc(8), .len = 8};
    uint64_t v = base + i + 1;
    memcpy(buf.base, &v, 8);
    b->reqs[i].data = b;
    assert_int_equal(raft_apply(r, &b->reqs[i], &buf, 1, apply_cb), 0);
  }
}

static void apply_n(group_t *g, unsigned n, uint64_t base)
{
  batch_t b;
  batch_start(&b, &g->raft, n, base);
  assert_true(run_until(g->m->loop, batch_done, &b, 20000));
  assert_int_equal(b.failed, 0);
  free(b.reqs);
}

typedef struct barrier {
  struct raft_barrier req;
  bool done;
  int status;
} barrier_t;

static void barrier_cb(struct raft_barrier *req, int status)
{
  barrier_t *b = req->data;
  b->done = true;
  b->status = status;
}

static void barrier(group_t *g)
{
  barrier_t b = {.req = {.data = &b}};
  assert_int_equal(raft_barrier(&g->raft, &b.req, barrier_cb), 0);
  run_until_flag(g->m->loop, &b.done);
  assert_int_equal(b.status, 0);
}

static void bootstrap_single(group_t *g)
{
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  assert_int_equal(
      raft_configuration_add(&conf, g->raft.id, g->m->address, RAFT_VOTER), 0);
  assert_int_equal(raft_bootstrap(&g->raft, &conf), 0);
  /* A second bootstrap of the same log is refused. */
  assert_int_equal(raft_bootstrap(&g->raft, &conf), RAFT_CANTBOOTSTRAP);
  raft_configuration_close(&conf);
}

static uint64_t sum_1_to(uint64_t n)
{
  return n * (n + 1) / 2;
}

/* ---- single voter: 1,000 entries, durable across restart --------------------
 */

static void test_single_voter_restart(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *d = dir_make();
  member_t m;
  group_t g;
  member_open(&m, &loop, d, false);
  group_init(&g, &m, 1, 1, 0);
  bootstrap_single(&g);
  group_start(&g);
  assert_int_equal(raft_state(&g.raft), RAFT_LEADER);
  apply_n(&g, 1000, 0);
  assert_int_equal(g.counter.count, 1000);
  assert_int_equal(g.counter.sum, sum_1_to(1000));
  raft_term term = g.raft.current_term;
  raft_id vote = g.raft.voted_for;
  raft_index last = raft_last_index(&g.raft);
  assert_true(term >= 1);
  ks_raft_node_stats_t st;
  ks_raft_node_stats(m.node, &st);
  /* Group commit: far fewer transactions than appends. */
  assert_true(st.appends >= 1000);
  assert_true(st.flushes < st.appends / 10);
  group_stop(&g);
  member_close(&m);

  member_open(&m, &loop, d, false);
  uint64_t st_term, st_vote;
  assert_int_equal(ks_raft_store_state_get(m.store, 1, &st_term, &st_vote), 0);
  assert_int_equal(st_term, term);
  assert_int_equal(st_vote, vote);
  group_init(&g, &m, 1, 1, 0);
  group_start(&g);
  assert_int_equal(raft_state(&g.raft), RAFT_LEADER);
  assert_true(g.raft.current_term >= term);
  assert_true(raft_last_index(&g.raft) >= last);
  barrier(&g);
  assert_int_equal(g.counter.count, 1000);
  assert_int_equal(g.counter.sum, sum_1_to(1000));
  assert_int_equal(g.counter.restores, 0);
  group_stop(&g);
  member_close(&m);
  assert_int_equal(uv_loop_close(&loop), 0);
  dir_remove(d);
}

/* ---- group commit across groups --------------------------------------------
 */

#define N_GROUPS 20

static void test_group_commit(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *d = dir_make();
  member_t m;
  member_open(&m, &loop, d, false);
  static group_t g[N_GROUPS];
  for (int i = 0; i < N_GROUPS; i++) {
    group_init(&g[i], &m, 100 + (uint64_t)i, 1, 0);
    bootstrap_single(&g[i]);
    group_start(&g[i]);
    assert_int_equal(raft_state(&g[i].raft), RAFT_LEADER);
  }
  /* Let anything started by the elections settle. */
  for (int i = 0; i < 5; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  uint64_t commits = ks_raft_store_commits(m.store);
  batch_t b[N_GROUPS];
  for (int i = 0; i < N_GROUPS; i++)
    batch_start(&b[i], &g[i].raft, 1, 0);
  for (int i = 0; i < N_GROUPS; i++) {
    assert_true(run_until(&loop, batch_done, &b[i], 5000));
    free(b[i].reqs);
    assert_int_equal(g[i].counter.count, 1);
  }
  /* Twenty groups, twenty appends, one transaction. */
  assert_int_equal(ks_raft_store_commits(m.store) - commits, 1);
  for (int i = 0; i < N_GROUPS; i++)
    group_stop(&g[i]);
  member_close(&m);
  assert_int_equal(uv_loop_close(&loop), 0);
  dir_remove(d);
}

/* ---- snapshots: compaction and restore
 * --------------------------------------- */

static void test_snapshot_restart(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *d = dir_make();
  member_t m;
  group_t g;
  size_t pad = KS_RAFT_SNAP_CHUNK + 1000; /* two chunks on disk */
  member_open(&m, &loop, d, false);
  group_init(&g, &m, 9, 1, pad);
  raft_set_snapshot_threshold(&g.raft, 64);
  raft_set_snapshot_trailing(&g.raft, 8);
  bootstrap_single(&g);
  group_start(&g);
  for (int i = 0; i < 5; i++)
    apply_n(&g, 60, (uint64_t)i * 60);
  assert_int_equal(g.counter.count, 300);
  /* Let the last snapshot's put complete. */
  for (int i = 0; i < 5; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  ks_raft_snap_hdr_t hdr;
  ks_buf_t conf = KS_BUF_INIT;
  assert_int_equal(ks_raft_store_snapshot_get(m.store, 9, &hdr, &conf), 0);
  ks_buf_free(&conf);
  assert_true(hdr.index >= 64);
  assert_int_equal(hdr.size, 16 + pad);
  uint64_t first, last;
  assert_int_equal(ks_raft_store_log_bounds(m.store, 9, &first, &last), 0);
  assert_int_equal(first, hdr.index - 8 + 1); /* compacted to `trailing` */
  assert_int_equal(last, raft_last_index(&g.raft));
  group_stop(&g);
  member_close(&m);

  member_open(&m, &loop, d, false);
  group_init(&g, &m, 9, 1, pad);
  group_start(&g);
  assert_int_equal(g.counter.restores, 1);
  barrier(&g);
  assert_int_equal(g.counter.count, 300);
  assert_int_equal(g.counter.sum, sum_1_to(300));
  group_stop(&g);
  member_close(&m);
  assert_int_equal(uv_loop_close(&loop), 0);
  dir_remove(d);
}

/* ---- three nodes over RPC
 * ------------------------------------------------------ */

typedef struct cluster {
  uv_loop_t loop;
  char *dirs[3];
  member_t m[3];
  group_t g[3];
} cluster_t;

static void cluster_start_group(cluster_t *c, int i, size_t pad)
{
  group_init(&c->g[i], &c->m[i], 77, (raft_id)i + 1, pad);
  raft_set_snapshot_threshold(&c->g[i].raft, 50);
  raft_set_snapshot_trailing(&c->g[i].raft, 5);
  group_start(&c->g[i]);
}

static void cluster_open(cluster_t *c)
{
  uv_loop_init(&c->loop);
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  for (int i = 0; i < 3; i++) {
    c->dirs[i] = dir_make();
    member_open(&c->m[i], &c->loop, c->dirs[i], true);
    assert_int_equal(raft_configuration_add(&conf, (raft_id)i + 1,
                                            c->m[i].address, RAFT_VOTER),
                     0);
  }
  for (int i = 0; i < 3; i++) {
    group_init(&c->g[i], &c->m[i], 77, (raft_id)i + 1, 100);
    assert_int_equal(raft_bootstrap(&c->g[i].raft, &conf), 0);
    raft_set_snapshot_threshold(&c->g[i].raft, 50);
    raft_set_snapshot_trailing(&c->g[i].raft, 5);
    group_start(&c->g[i]);
  }
  raft_configuration_close(&conf);
}

static void cluster_close(cluster_t *c)
{
  for (int i = 0; i < 3; i++)
    if (c->g[i].running)
      group_stop(&c->g[i]);
  for (int i = 0; i < 3; i++) {
    member_close(&c->m[i]);
    dir_remove(c->dirs[i]);
  }
  assert_int_equal(uv_loop_close(&c->loop), 0);
}

static int leader_of(cluster_t *c)
{
  for (int i = 0; i < 3; i++)
    if (c->g[i].running && raft_state(&c->g[i].raft) == RAFT_LEADER)
      return i;
  return -1;
}

static bool has_leader(void *arg)
{
  return leader_of(arg) >= 0;
}

typedef struct want {
  cluster_t *c;
  uint64_t count;
} want_t;

static bool all_running_at(void *arg)
{
  want_t *w = arg;
  for (int i = 0; i < 3; i++)
    if (w->c->g[i].running && w->c->g[i].counter.count != w->count)
      return false;
  return true;
}

static void test_three_nodes(void **state)
{
  (void)state;
  cluster_t *c = calloc(1, sizeof(*c));
  cluster_open(c);
  assert_true(run_until(&c->loop, has_leader, c, 10000));
  int l = leader_of(c);
  apply_n(&c->g[l], 100, 0);
  want_t w = {c, 100};
  assert_true(run_until(&c->loop, all_running_at, &w, 10000));
  for (int i = 0; i < 3; i++)
    assert_int_equal(c->g[i].counter.sum, sum_1_to(100));

  /* Stop the leader: the other two elect one and keep committing. */
  group_stop(&c->g[l]);
  assert_true(run_until(&c->loop, has_leader, c, 10000));
  int l2 = leader_of(c);
  assert_int_not_equal(l2, l);
  apply_n(&c->g[l2], 50, 100);
  w.count = 150;
  assert_true(run_until(&c->loop, all_running_at, &w, 10000));

  /* The stopped node missed 50 entries and the log was compacted past
   * them (threshold 50, trailing 5): it catches up by InstallSnapshot. */
  int back = l;
  int other = 3 - l - l2;
  apply_n(&c->g[l2], 100, 150);
  w.count = 250;
  assert_true(run_until(&c->loop, all_running_at, &w, 10000));
  (void)other;
  cluster_start_group(c, back, 100);
  unsigned restores = c->g[back].counter.restores; /* its own snapshot */
  assert_true(run_until(&c->loop, all_running_at, &w, 10000));
  assert_int_equal(c->g[back].counter.sum, sum_1_to(250));
  assert_true(c->g[back].counter.restores > restores);
  ks_raft_node_stats_t st;
  ks_raft_node_stats(c->m[back].node, &st);
  assert_true(st.msgs_recv > 0);
  cluster_close(c);
  free(c);
}

/* ---- async work (raft_io version 2)
 * ------------------------------------------- */

typedef struct work_res {
  struct raft_io_async_work req;
  bool done;
  int status;
  uv_thread_t thread;
} work_res_t;

static int work_fn(struct raft_io_async_work *req)
{
  work_res_t *w = req->data;
  w->thread = uv_thread_self();
  return 7;
}

static void work_cb(struct raft_io_async_work *req, int status)
{
  work_res_t *w = req->data;
  w->done = true;
  w->status = status;
}

static void test_async_work(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *d = dir_make();
  member_t m;
  group_t g;
  member_open(&m, &loop, d, false);
  group_init(&g, &m, 3, 1, 0);
  assert_int_equal(g.io.version, 2);
  bootstrap_single(&g);
  group_start(&g);
  work_res_t w = {.req = {.data = &w, .work = work_fn}};
  assert_int_equal(g.io.async_work(&g.io, &w.req, work_cb), 0);
  run_until_flag(&loop, &w.done);
  assert_int_equal(w.status, 7);
  uv_thread_t self = uv_thread_self();
  assert_false(uv_thread_equal(&w.thread, &self)); /* off the loop thread */
  group_stop(&g);
  member_close(&m);
  assert_int_equal(uv_loop_close(&loop), 0);
  dir_remove(d);
}

/* ---- message codec ----------------------------------------------------------
 */

typedef struct wire {
  ks_enc_t body;
  ks_buf_t bulk;
} wire_t;

static void wire_encode(wire_t *w, const struct raft_message *m)
{
  struct iovec iov[KS_RPC_IOV_MAX];
  int n = 0;
  ks_buf_t copy = KS_BUF_INIT;
  memset(w, 0, sizeof(*w));
  assert_int_equal(
      ks_raft_msg_encode(42, 7, "10.0.0.1:7000", m, &w->body, iov, &n, &copy),
      0);
  for (int i = 0; i < n; i++)
    assert_int_equal(ks_buf_append(&w->bulk, iov[i].iov_base, iov[i].iov_len),
                     0);
  ks_buf_free(&copy);
}

static void wire_free(wire_t *w)
{
  ks_enc_free(&w->body);
  ks_buf_free(&w->bulk);
}

/* Every prefix of the body and every shorter bulk must fail cleanly. */
static void check_truncations(const wire_t *w)
{
  uint64_t group;
  char addr[KS_RAFT_ADDR_MAX];
  struct raft_message out;
  for (size_t i = 0; i < w->body.buf.len; i++)
    assert_int_not_equal(ks_raft_msg_decode(w->body.buf.data, i, w->bulk.data,
                                            w->bulk.len, &group, addr, &out),
                         0);
  if (w->bulk.len > 0)
    assert_int_not_equal(ks_raft_msg_decode(w->body.buf.data, w->body.buf.len,
                                            w->bulk.data, w->bulk.len - 1,
                                            &group, addr, &out),
                         0);
}

static void decode_ok(const wire_t *w, struct raft_message *out,
                      char addr[KS_RAFT_ADDR_MAX])
{
  uint64_t group = 0;
  assert_int_equal(ks_raft_msg_decode(w->body.buf.data, w->body.buf.len,
                                      w->bulk.data, w->bulk.len, &group, addr,
                                      out),
                   0);
  assert_int_equal(group, 42);
  assert_int_equal(out->server_id, 7);
  assert_string_equal(out->server_address, "10.0.0.1:7000");
}

static void test_codec_small_messages(void **state)
{
  (void)state;
  struct raft_message m[4];
  memset(m, 0, sizeof(m));
  m[0].type = RAFT_IO_REQUEST_VOTE;
  m[0].request_vote = (struct raft_request_vote){5, 2, 100, 4, true, true};
  m[1].type = RAFT_IO_REQUEST_VOTE_RESULT;
  m[1].request_vote_result =
      (struct raft_request_vote_result){5, true, raft_tribool_false};
  m[2].type = RAFT_IO_APPEND_ENTRIES_RESULT;
  m[2].append_entries_result = (struct raft_append_entries_result){5, 9, 8};
  m[3].type = RAFT_IO_TIMEOUT_NOW;
  m[3].timeout_now = (struct raft_timeout_now){6, 10, 5};
  for (int i = 0; i < 4; i++) {
    wire_t w;
    wire_encode(&w, &m[i]);
    struct raft_message out;
    char addr[KS_RAFT_ADDR_MAX];
    decode_ok(&w, &out, addr);
    assert_int_equal(out.type, m[i].type);
    /* The payload union compares field by field as bytes. */
    assert_memory_equal(&out.request_vote, &m[i].request_vote,
                        sizeof(struct raft_timeout_now));
    check_truncations(&w);
    /* Trailing bytes and an unexpected bulk are refused. */
    uint64_t group;
    ks_enc_u8(&w.body, 0);
    assert_int_equal(ks_raft_msg_decode(w.body.buf.data, w.body.buf.len, NULL,
                                        0, &group, addr, &out),
                     KS_EPROTO);
    assert_int_equal(ks_raft_msg_decode(w.body.buf.data, w.body.buf.len - 1,
                                        (const uint8_t *)"x", 1, &group, addr,
                                        &out),
                     KS_EPROTO);
    wire_free(&w);
  }
  assert_true(m[0].request_vote.pre_vote);
}

static void check_entries(unsigned n)
{
  struct raft_entry *e = calloc(n, sizeof(*e));
  uint8_t *data = malloc(n * 3 + 1);
  for (unsigned i = 0; i < n; i++) {
    for (unsigned j = 0; j < i % 4; j++)
      data[i * 3 + j % 3] = (uint8_t)(i + j);
    e[i] = (struct raft_entry){.term = i + 1,
                               .type = RAFT_COMMAND,
                               .buf = {data + i * 3, i % 4 == 0 ? 0 : 3}};
  }
  struct raft_message m = {.type = RAFT_IO_APPEND_ENTRIES};
  m.append_entries = (struct raft_append_entries){3, 10, 2, 9, e, n};
  wire_t w;
  wire_encode(&w, &m);
  struct raft_message out;
  char addr[KS_RAFT_ADDR_MAX];
  decode_ok(&w, &out, addr);
  assert_int_equal(out.append_entries.n_entries, n);
  assert_int_equal(out.append_entries.leader_commit, 9);
  for (unsigned i = 0; i < n; i++) {
    assert_int_equal(out.append_entries.entries[i].term, i + 1);
    assert_int_equal(out.append_entries.entries[i].buf.len, e[i].buf.len);
    assert_memory_equal(out.append_entries.entries[i].buf.base, e[i].buf.base,
                        e[i].buf.len);
  }
  ks_raft_msg_release(&out);
  check_truncations(&w);
  wire_free(&w);
  free(data);
  free(e);
}

static void test_codec_entries_and_snapshot(void **state)
{
  (void)state;
  check_entries(0);
  check_entries(3);  /* bulk pieces point at the entries */
  check_entries(40); /* more entries than iovecs: one copy */

  struct raft_message m = {.type = RAFT_IO_INSTALL_SNAPSHOT};
  raft_configuration_init(&m.install_snapshot.conf);
  assert_int_equal(raft_configuration_add(&m.install_snapshot.conf, 1,
                                          "127.0.0.1:1", RAFT_VOTER),
                   0);
  assert_int_equal(raft_configuration_add(&m.install_snapshot.conf, 2,
                                          "127.0.0.1:2", RAFT_SPARE),
                   0);
  m.install_snapshot.term = 4;
  m.install_snapshot.last_index = 1000;
  m.install_snapshot.data = (struct raft_buffer){"snapshot", 8};
  wire_t w;
  wire_encode(&w, &m);
  struct raft_message out;
  char addr[KS_RAFT_ADDR_MAX];
  decode_ok(&w, &out, addr);
  assert_int_equal(out.install_snapshot.last_index, 1000);
  assert_int_equal(out.install_snapshot.conf.n, 2);
  assert_int_equal(out.install_snapshot.conf.servers[1].role, RAFT_SPARE);
  assert_string_equal(out.install_snapshot.conf.servers[1].address,
                      "127.0.0.1:2");
  assert_int_equal(out.install_snapshot.data.len, 8);
  assert_memory_equal(out.install_snapshot.data.base, "snapshot", 8);
  ks_raft_msg_release(&out);
  check_truncations(&w);
  wire_free(&w);
  raft_configuration_close(&m.install_snapshot.conf);
}

/* Hostile counts and lengths: refused before anything is allocated. */
static void test_codec_hostile(void **state)
{
  (void)state;
  ks_enc_t e = KS_ENC_INIT;
  ks_enc_u8(&e, 1);
  ks_enc_u8(&e, RAFT_IO_APPEND_ENTRIES);
  ks_enc_u64(&e, 1);
  ks_enc_u64(&e, 2);
  ks_enc_str(&e, "a:1");
  for (int i = 0; i < 4; i++)
    ks_enc_u64(&e, 1);
  size_t at = e.buf.len;
  ks_enc_u32(&e, 0xFFFFFFFFu); /* four billion entries */
  assert_int_equal(ks_enc_finish(&e), 0);
  uint64_t group;
  char addr[KS_RAFT_ADDR_MAX];
  struct raft_message out;
  assert_int_equal(
      ks_raft_msg_decode(e.buf.data, e.buf.len, NULL, 0, &group, addr, &out),
      KS_EPROTO);
  /* One entry claiming a huge length against a 4-byte bulk. */
  e.buf.len = at;
  ks_enc_u32(&e, 1);
  ks_enc_u64(&e, 1);
  ks_enc_u16(&e, RAFT_COMMAND);
  ks_enc_u64(&e, UINT64_MAX);
  assert_int_equal(ks_raft_msg_decode(e.buf.data, e.buf.len,
                                      (const uint8_t *)"abcd", 4, &group, addr,
                                      &out),
                   KS_EPROTO);
  /* Unknown entry type. */
  e.buf.len = at;
  ks_enc_u32(&e, 1);
  ks_enc_u64(&e, 1);
  ks_enc_u16(&e, 99);
  ks_enc_u64(&e, 4);
  assert_int_equal(ks_raft_msg_decode(e.buf.data, e.buf.len,
                                      (const uint8_t *)"abcd", 4, &group, addr,
                                      &out),
                   KS_EPROTO);
  /* Unknown message type and version. */
  e.buf.data[1] = 77;
  assert_int_equal(
      ks_raft_msg_decode(e.buf.data, e.buf.len, NULL, 0, &group, addr, &out),
      KS_EPROTO);
  e.buf.data[1] = RAFT_IO_APPEND_ENTRIES;
  e.buf.data[0] = 2;
  assert_int_equal(
      ks_raft_msg_decode(e.buf.data, e.buf.len, NULL, 0, &group, addr, &out),
      KS_EPROTO);
  ks_enc_free(&e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codec_small_messages),
      cmocka_unit_test(test_codec_entries_and_snapshot),
      cmocka_unit_test(test_codec_hostile),
      cmocka_unit_test(test_single_voter_restart),
      cmocka_unit_test(test_group_commit),
      cmocka_unit_test(test_snapshot_restart),
      cmocka_unit_test(test_three_nodes),
      cmocka_unit_test(test_async_work),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
