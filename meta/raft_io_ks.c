/*
 * raft_io_ks.c — libraft's raft_io on the node's LMDB store and RPC layer
 * (contract in ks/raft_io_ks.h; wire codec in raft_msg.c).
 *
 * STATE PER GROUP (struct io).  A cache of what the store holds — term,
 * vote, snapshot index/term — and next_index, the index the next appended
 * entry gets (libraft's append does not say; like libraft's uv backend we
 * count: load/bootstrap set it, append advances it at queue time, truncate
 * and snapshot installation reset it).  `pending` counts everything whose
 * callback has not run yet (queued appends, completions, sends, async
 * work); close waits for it to reach zero.
 *
 * THE NODE'S TWO QUEUES.  `pend`: appends accepted but not yet written.
 * `done`: operations written (or failed) whose raft callbacks have not run.
 * Both drain in the flush timer's callback (a zero-delay uv_timer, armed by
 * the first operation of a turn): write every `pend` append in one
 * transaction, commit, move them to `done`, then run `done` in order.
 * Callbacks therefore never run inside the raft_io call that queued them,
 * and a callback that queues more work re-arms the timer for the next turn.
 *
 * WHY THE LOOP THREAD COMMITS.  The commit (fsync) runs on the loop thread,
 * so a slow disk stalls this node's network too; but every group's appends
 * of a turn share that one fsync.  Moving the commit to a writer thread is
 * the next step when measurements ask for it (noted in ARCHITECTURE).
 */
#include "ks/raft_io_ks.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks/err.h"
#include "ks/log.h"
#include "ks/net.h"
#include "ks/rand.h"

typedef struct io io_t;
typedef struct op op_t;
typedef struct peer peer_t;

enum op_kind { OP_APPEND = 1, OP_SNAP_PUT, OP_SNAP_GET };

/* A queued append or a completion waiting for its callback. */
struct op {
  op_t *next;
  enum op_kind kind;
  io_t *io;
  int status;
  union {
    struct {
      struct raft_io_append *req;
      const struct raft_entry *entries;
      unsigned n;
      raft_index first;
    } append;
    struct raft_io_snapshot_put *put;
    struct {
      struct raft_io_snapshot_get *req;
      struct raft_snapshot *snap;
    } get;
  };
};

typedef struct op_queue {
  op_t *head;
  op_t **tail;
} op_queue_t;

struct peer {
  peer_t *next;
  ks_rpc_client_t *client;
  char address[KS_RAFT_ADDR_MAX];
};

struct io {
  ks_raft_node_t *node;
  struct raft_io *raft_io;
  uint64_t group;
  raft_id id;
  char address[KS_RAFT_ADDR_MAX];
  uv_timer_t tick;
  raft_io_tick_cb tick_cb;
  raft_io_recv_cb recv_cb;
  raft_io_close_cb close_cb;
  raft_term term;
  raft_id vote;
  raft_index snap_index;
  raft_term snap_term;
  raft_index next_index;
  unsigned pending;
  bool registered;
  bool closing;
  bool tick_closed;
};

struct ks_raft_node {
  uv_loop_t *loop;
  ks_raft_store_t *store;
  uv_timer_t flush;
  bool flush_armed;
  op_queue_t pend;
  op_queue_t done;
  int err;       /* poisoned: the first failed write */
  io_t **groups; /* sorted by group id */
  size_t ngroups;
  size_t cap;
  peer_t *peers;
  uint32_t send_timeout_ms;
  ks_rpc_opts_t rpc_opts;
  bool has_rpc_opts;
  ks_raft_node_stats_t stats;
  ks_metric_t *commit_seconds; /* borrowed, may be NULL */
  ks_metric_t *commit_entries;
  unsigned closing_parts;
  ks_rpc_close_cb close_cb;
  void *close_arg;
};

/* ---- errors ---------------------------------------------------------------
 */

static int io_fail(io_t *io, int raft_err, const char *what, int err)
{
  snprintf(io->raft_io->errmsg, RAFT_ERRMSG_BUF_SIZE, "%s: %s", what,
           ks_strerror(err));
  return raft_err;
}

static int raft_code(int err)
{
  if (err == -ENOMEM)
    return RAFT_NOMEM;
  if (err == -ENOSPC)
    return RAFT_NOSPACE;
  if (err == KS_ECORRUPT || err == KS_EPROTO)
    return RAFT_CORRUPT;
  return RAFT_IOERR;
}

/* ---- op queues ------------------------------------------------------------
 */

static void queue_init(op_queue_t *q)
{
  q->head = NULL;
  q->tail = &q->head;
}

static void queue_push(op_queue_t *q, op_t *op)
{
  op->next = NULL;
  *q->tail = op;
  q->tail = &op->next;
}

/* Move all of src to the end of dst, setting each op's status. */
static void queue_move(op_queue_t *dst, op_queue_t *src, int status)
{
  for (op_t *op = src->head; op != NULL; op = op->next)
    op->status = status;
  if (src->head != NULL) {
    *dst->tail = src->head;
    dst->tail = src->tail;
  }
  queue_init(src);
}

static void flush_cb(uv_timer_t *t);

static void node_arm(ks_raft_node_t *node)
{
  if (node->flush_armed)
    return;
  node->flush_armed = true;
  int rc = uv_timer_start(&node->flush, flush_cb, 0, 0);
  assert(rc == 0); /* only fails for a closing handle */
  (void)rc;
}

static void node_complete(ks_raft_node_t *node, op_t *op, int status)
{
  op->status = status;
  queue_push(&node->done, op);
  node_arm(node);
}

/* ---- group commit -------------------------------------------------------- */

/* Write every queued append; *n counts the entries written. */
static int pend_write(ks_raft_node_t *node, uint64_t *n)
{
  for (op_t *op = node->pend.head; op != NULL; op = op->next) {
    *n += op->append.n;
    for (unsigned i = 0; i < op->append.n; i++) {
      const struct raft_entry *e = &op->append.entries[i];
      int err = ks_raft_store_entry_put(node->store, op->io->group,
                                        op->append.first + i, e->term, e->type,
                                        e->buf.base, e->buf.len);
      if (err != 0)
        return err;
    }
  }
  return 0;
}

static void node_poison(ks_raft_node_t *node, int err)
{
  if (node->err == 0) {
    node->err = err;
    ks_log_error("raft_io", "store_poisoned", "err=%s", ks_errname(err));
  }
}

/* Commit the open transaction; its time is the fsync's (the writes before
 * it only touch LMDB's dirty pages in memory). */
static int node_commit(ks_raft_node_t *node, uint64_t entries)
{
  uint64_t t0 = uv_hrtime();
  int err = ks_raft_store_commit(node->store);
  if (err != 0)
    return err;
  node->stats.commits++;
  node->stats.entries += entries;
  if (node->commit_seconds != NULL)
    ks_histogram_observe(node->commit_seconds, 0,
                         (double)(uv_hrtime() - t0) / 1e9);
  if (node->commit_entries != NULL)
    ks_histogram_observe(node->commit_entries, 0, (double)entries);
  return 0;
}

/* Run fn (may be NULL) inside one transaction with every queued append;
 * on success the appends move to `done` with status 0. */
typedef int (*txn_fn)(io_t *io, void *arg);

static int node_txn(ks_raft_node_t *node, txn_fn fn, io_t *io, void *arg)
{
  int err = node->err;
  uint64_t entries = 0;
  if (err == 0)
    err = ks_raft_store_begin(node->store);
  if (err == 0)
    err = pend_write(node, &entries);
  if (err == 0 && fn != NULL)
    err = fn(io, arg);
  if (err == 0)
    err = node_commit(node, entries);
  else if (node->err == 0)
    ks_raft_store_abort(node->store);
  if (err != 0)
    node_poison(node, err);
  if (node->pend.head != NULL) {
    queue_move(&node->done, &node->pend, err == 0 ? 0 : RAFT_IOERR);
    node_arm(node);
  }
  return err;
}

static void io_maybe_closed(io_t *io);

static void op_run(op_t *op)
{
  io_t *io = op->io;
  switch (op->kind) {
  case OP_APPEND:
    op->append.req->cb(op->append.req, op->status);
    break;
  case OP_SNAP_PUT:
    op->put->cb(op->put, op->status);
    break;
  case OP_SNAP_GET:
    op->get.req->cb(op->get.req, op->get.snap, op->status);
    break;
  }
  free(op);
  io->pending--;
  io_maybe_closed(io);
}

static void flush_cb(uv_timer_t *t)
{
  ks_raft_node_t *node = t->data;
  node->flush_armed = false;
  if (node->pend.head != NULL) {
    node->stats.flushes++;
    (void)node_txn(node, NULL, NULL, NULL);
  }
  op_queue_t run = node->done;
  queue_init(&node->done);
  while (run.head != NULL) {
    op_t *op = run.head;
    run.head = op->next;
    op_run(op);
  }
}

/* ---- group map ------------------------------------------------------------
 */

static size_t group_pos(const ks_raft_node_t *node, uint64_t group)
{
  size_t lo = 0, hi = node->ngroups;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (node->groups[mid]->group < group)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static io_t *group_find(const ks_raft_node_t *node, uint64_t group)
{
  size_t i = group_pos(node, group);
  return i < node->ngroups && node->groups[i]->group == group ? node->groups[i]
                                                              : NULL;
}

static int group_add(ks_raft_node_t *node, io_t *io)
{
  size_t i = group_pos(node, io->group);
  if (i < node->ngroups && node->groups[i]->group == io->group)
    return -EEXIST;
  if (node->ngroups == node->cap) {
    size_t cap = node->cap ? node->cap * 2 : 16;
    io_t **g = realloc(node->groups, cap * sizeof(io_t *));
    if (g == NULL)
      return -ENOMEM;
    node->groups = g;
    node->cap = cap;
  }
  memmove(&node->groups[i + 1], &node->groups[i],
          (node->ngroups - i) * sizeof(io_t *));
  node->groups[i] = io;
  node->ngroups++;
  io->registered = true;
  return 0;
}

static void group_remove(ks_raft_node_t *node, io_t *io)
{
  if (!io->registered)
    return;
  size_t i = group_pos(node, io->group);
  assert(i < node->ngroups && node->groups[i] == io);
  memmove(&node->groups[i], &node->groups[i + 1],
          (node->ngroups - i - 1) * sizeof(io_t *));
  node->ngroups--;
  io->registered = false;
}

/* ---- state loading ------------------------------------------------------- */

static int io_state_read(io_t *io)
{
  ks_raft_store_t *st = io->node->store;
  uint64_t term, vote, first, last;
  int err = ks_raft_store_state_get(st, io->group, &term, &vote);
  if (err != 0)
    return err;
  io->term = term;
  io->vote = vote;
  ks_raft_snap_hdr_t hdr;
  ks_buf_t conf = KS_BUF_INIT;
  err = ks_raft_store_snapshot_get(st, io->group, &hdr, &conf);
  ks_buf_free(&conf);
  if (err == 0) {
    io->snap_index = hdr.index;
    io->snap_term = hdr.term;
  } else if (err != -ENOENT) {
    return err;
  }
  err = ks_raft_store_log_bounds(st, io->group, &first, &last);
  if (err == 0)
    io->next_index = last + 1;
  else if (err == -ENOENT)
    io->next_index = io->snap_index + 1;
  else
    return err;
  return 0;
}

/* Entries gathered by a log scan into one growing batch; buf.base holds
 * the offset into the batch until the scan ends. */
typedef struct load_ctx {
  struct raft_entry *entries;
  size_t n;
  size_t cap;
  uint8_t *batch;
  size_t len;
  size_t bcap;
  raft_index first;
} load_ctx_t;

static int load_grow(load_ctx_t *c, size_t payload)
{
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct raft_entry *e = raft_realloc(c->entries, cap * sizeof(*e));
    if (e == NULL)
      return -ENOMEM;
    c->entries = e;
    c->cap = cap;
  }
  if (c->len + payload > c->bcap || c->batch == NULL) {
    size_t cap = c->bcap ? c->bcap : 4096;
    while (cap < c->len + payload)
      cap *= 2;
    uint8_t *b = raft_realloc(c->batch, cap);
    if (b == NULL)
      return -ENOMEM;
    c->batch = b;
    c->bcap = cap;
  }
  return 0;
}

static int load_entry(void *arg, uint64_t index, uint64_t term, uint16_t type,
                      const uint8_t *payload, size_t len)
{
  load_ctx_t *c = arg;
  if (c->n == 0)
    c->first = index;
  else if (index != c->first + c->n)
    return KS_ECORRUPT; /* a hole in the log */
  if (type != RAFT_COMMAND && type != RAFT_BARRIER && type != RAFT_CHANGE)
    return KS_ECORRUPT;
  int err = load_grow(c, len);
  if (err != 0)
    return err;
  memcpy(c->batch + c->len, payload, len);
  c->entries[c->n] = (struct raft_entry){
      .term = term,
      .type = type,
      .buf = {.base = (void *)(uintptr_t)c->len, .len = len},
  };
  c->len += len;
  c->n++;
  return 0;
}

static void load_finish(load_ctx_t *c)
{
  for (size_t i = 0; i < c->n; i++) {
    c->entries[i].buf.base = c->batch + (uintptr_t)c->entries[i].buf.base;
    c->entries[i].batch = c->batch;
  }
}

static void load_free(load_ctx_t *c)
{
  raft_free(c->entries);
  raft_free(c->batch);
}

static void snapshot_destroy(struct raft_snapshot *s)
{
  if (s == NULL)
    return;
  for (unsigned i = 0; i < s->n_bufs; i++)
    raft_free(s->bufs[i].base);
  raft_free(s->bufs);
  raft_configuration_close(&s->configuration);
  raft_free(s);
}

/* Read the group's snapshot as a raft_snapshot with one buffer, every part
 * raft_malloc'd (libraft frees it). */
static int snapshot_load(io_t *io, struct raft_snapshot **out)
{
  ks_raft_snap_hdr_t hdr;
  ks_buf_t conf = KS_BUF_INIT;
  struct raft_snapshot *s = NULL;
  int err = ks_raft_store_snapshot_get(io->node->store, io->group, &hdr, &conf);
  if (err != 0)
    goto err_after_conf;
  err = -ENOMEM;
  s = raft_calloc(1, sizeof(*s));
  if (s == NULL)
    goto err_after_conf;
  raft_configuration_init(&s->configuration);
  struct raft_buffer *buf = raft_calloc(1, sizeof(*buf));
  if (buf == NULL)
    goto err_after_snapshot;
  s->bufs = buf;
  s->n_bufs = 1;
  buf->len = hdr.size;
  buf->base = raft_malloc(hdr.size > 0 ? hdr.size : 1);
  if (buf->base == NULL)
    goto err_after_snapshot;
  ks_dec_t d;
  ks_dec_init(&d, conf.data, conf.len);
  err = ks_raft_conf_decode(&d, &s->configuration);
  if (err == 0 && ks_dec_finish(&d) != 0)
    err = KS_ECORRUPT;
  if (err == 0)
    err = ks_raft_store_snapshot_read(io->node->store, io->group, &hdr,
                                      buf->base);
  if (err != 0)
    goto err_after_snapshot;
  s->index = hdr.index;
  s->term = hdr.term;
  s->configuration_index = hdr.conf_index;
  ks_buf_free(&conf);
  *out = s;
  return 0;

err_after_snapshot:
  snapshot_destroy(s);
err_after_conf:
  ks_buf_free(&conf);
  return err == KS_EPROTO ? KS_ECORRUPT : err;
}

/* ---- raft_io methods ----------------------------------------------------- */

static io_t *io_of(struct raft_io *raft_io)
{
  return raft_io->impl;
}

static int io_init(struct raft_io *raft_io, raft_id id, const char *address)
{
  io_t *io = io_of(raft_io);
  if (strlen(address) >= sizeof(io->address))
    return io_fail(io, RAFT_NAMETOOLONG, "init", -ENAMETOOLONG);
  io->id = id;
  memcpy(io->address, address, strlen(address) + 1);
  int err = io_state_read(io);
  return err == 0 ? 0 : io_fail(io, raft_code(err), "load state", err);
}

static int io_load(struct raft_io *raft_io, raft_term *term, raft_id *voted_for,
                   struct raft_snapshot **snapshot, raft_index *start_index,
                   struct raft_entry *entries[], size_t *n_entries)
{
  io_t *io = io_of(raft_io);
  struct raft_snapshot *snap = NULL;
  load_ctx_t c = {0};
  int err = 0;
  if (io->snap_index > 0)
    err = snapshot_load(io, &snap);
  if (err == 0)
    err = ks_raft_store_log_scan(io->node->store, io->group, 1, load_entry, &c);
  raft_index start = c.n > 0 ? c.first : io->snap_index + 1;
  if (err == 0 && c.n > 0 && (snap ? start > io->snap_index + 1 : start != 1))
    err = KS_ECORRUPT; /* a gap between snapshot and log */
  if (err != 0) {
    load_free(&c);
    snapshot_destroy(snap);
    return io_fail(io, raft_code(err), "load", err);
  }
  load_finish(&c);
  if (c.n == 0) {
    raft_free(c.batch);
    raft_free(c.entries);
    c.entries = NULL;
  }
  io->next_index = start + c.n;
  *term = io->term;
  *voted_for = io->vote;
  *snapshot = snap;
  *start_index = start;
  *entries = c.entries;
  *n_entries = c.n;
  return 0;
}

static void tick_cb(uv_timer_t *t)
{
  io_t *io = t->data;
  if (io->tick_cb != NULL && !io->closing)
    io->tick_cb(io->raft_io);
}

static int io_start(struct raft_io *raft_io, unsigned msecs,
                    raft_io_tick_cb tick, raft_io_recv_cb recv)
{
  io_t *io = io_of(raft_io);
  io->tick_cb = tick;
  io->recv_cb = recv;
  int rc = uv_timer_start(&io->tick, tick_cb, msecs, msecs);
  return rc == 0 ? 0 : io_fail(io, RAFT_IOERR, "start", rc);
}

static void io_maybe_closed(io_t *io)
{
  if (!io->closing || !io->tick_closed || io->pending > 0)
    return;
  raft_io_close_cb cb = io->close_cb;
  struct raft_io *raft_io = io->raft_io;
  raft_io->impl = NULL;
  free(io);
  if (cb != NULL)
    cb(raft_io);
}

static void tick_closed_cb(uv_handle_t *h)
{
  io_t *io = h->data;
  io->tick_closed = true;
  io_maybe_closed(io);
}

static void io_close(struct raft_io *raft_io, raft_io_close_cb cb)
{
  io_t *io = io_of(raft_io);
  assert(!io->closing);
  io->closing = true;
  io->close_cb = cb;
  group_remove(io->node, io);
  uv_close((uv_handle_t *)&io->tick, tick_closed_cb);
}

/* ---- synchronous writes -------------------------------------------------- */

static int txn_state(io_t *io, void *arg)
{
  const raft_id *vote = arg;
  return ks_raft_store_state_put(io->node->store, io->group, io->term, *vote);
}

static int io_set_term(struct raft_io *raft_io, raft_term term)
{
  io_t *io = io_of(raft_io);
  raft_term old = io->term;
  raft_id vote = 0; /* a new term has no vote yet */
  io->term = term;
  int err = node_txn(io->node, txn_state, io, &vote);
  if (err != 0) {
    io->term = old;
    return io_fail(io, raft_code(err), "set_term", err);
  }
  io->vote = 0;
  return 0;
}

static int io_set_vote(struct raft_io *raft_io, raft_id server_id)
{
  io_t *io = io_of(raft_io);
  int err = node_txn(io->node, txn_state, io, &server_id);
  if (err != 0)
    return io_fail(io, raft_code(err), "set_vote", err);
  io->vote = server_id;
  return 0;
}

typedef struct conf_entry {
  raft_index index;
  raft_term term;
  struct raft_buffer buf;
} conf_entry_t;

static int txn_conf_entry(io_t *io, void *arg)
{
  const conf_entry_t *ce = arg;
  int err =
      ks_raft_store_entry_put(io->node->store, io->group, ce->index, ce->term,
                              RAFT_CHANGE, ce->buf.base, ce->buf.len);
  if (err == 0 && ce->index == 1)
    err = ks_raft_store_state_put(io->node->store, io->group, ce->term, 0);
  return err;
}

/* Write a configuration entry at next_index (term 1 and state for a
 * bootstrap, the current term for a recovery). */
static int io_conf_append(io_t *io, const struct raft_configuration *conf,
                          raft_term term, const char *what)
{
  conf_entry_t ce = {.index = io->next_index, .term = term};
  int rv = raft_configuration_encode(conf, &ce.buf);
  if (rv != 0)
    return rv;
  int err = node_txn(io->node, txn_conf_entry, io, &ce);
  raft_free(ce.buf.base);
  if (err != 0)
    return io_fail(io, raft_code(err), what, err);
  io->next_index++;
  return 0;
}

static int io_bootstrap(struct raft_io *raft_io,
                        const struct raft_configuration *conf)
{
  io_t *io = io_of(raft_io);
  if (io->term != 0 || io->next_index != 1 || io->snap_index != 0)
    return RAFT_CANTBOOTSTRAP;
  int rv = io_conf_append(io, conf, 1, "bootstrap");
  if (rv == 0)
    io->term = 1;
  return rv;
}

static int io_recover(struct raft_io *raft_io,
                      const struct raft_configuration *conf)
{
  io_t *io = io_of(raft_io);
  return io_conf_append(io, conf, io->term, "recover");
}

static int txn_truncate(io_t *io, void *arg)
{
  const raft_index *index = arg;
  return ks_raft_store_entries_delete(io->node->store, io->group, *index,
                                      UINT64_MAX);
}

static int io_truncate(struct raft_io *raft_io, raft_index index)
{
  io_t *io = io_of(raft_io);
  if (index == 0 || index > io->next_index)
    return io_fail(io, RAFT_INVALID, "truncate", -EINVAL);
  int err = node_txn(io->node, txn_truncate, io, &index);
  if (err != 0)
    return io_fail(io, raft_code(err), "truncate", err);
  io->next_index = index;
  return 0;
}

/* ---- append (group commit) ---------------------------------------------- */

static int io_append(struct raft_io *raft_io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n,
                     raft_io_append_cb cb)
{
  io_t *io = io_of(raft_io);
  ks_raft_node_t *node = io->node;
  if (node->err != 0)
    return io_fail(io, RAFT_IOERR, "append", node->err);
  op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return RAFT_NOMEM;
  req->cb = cb;
  op->kind = OP_APPEND;
  op->io = io;
  op->append.req = req;
  op->append.entries = entries;
  op->append.n = n;
  op->append.first = io->next_index;
  io->next_index += n;
  io->pending++;
  node->stats.appends++;
  queue_push(&node->pend, op);
  node_arm(node);
  return 0;
}

/* ---- snapshots ------------------------------------------------------------
 */

typedef struct snap_put {
  const struct raft_snapshot *snap;
  unsigned trailing;
} snap_put_t;

static int txn_snapshot(io_t *io, void *arg)
{
  const snap_put_t *sp = arg;
  const struct raft_snapshot *s = sp->snap;
  struct iovec *iov = calloc(s->n_bufs > 0 ? s->n_bufs : 1, sizeof(*iov));
  if (iov == NULL)
    return -ENOMEM;
  uint64_t size = 0;
  for (unsigned i = 0; i < s->n_bufs; i++) {
    iov[i].iov_base = s->bufs[i].base;
    iov[i].iov_len = s->bufs[i].len;
    size += s->bufs[i].len;
  }
  ks_raft_snap_hdr_t hdr = {.index = s->index,
                            .term = s->term,
                            .conf_index = s->configuration_index,
                            .size = size};
  ks_enc_t conf = KS_ENC_INIT;
  ks_raft_conf_encode(&conf, &s->configuration);
  int err = ks_enc_finish(&conf);
  if (err == 0)
    err = ks_raft_store_snapshot_put(io->node->store, io->group, &hdr,
                                     conf.buf.data, conf.buf.len, iov,
                                     (int)s->n_bufs);
  ks_enc_free(&conf);
  free(iov);
  if (err != 0)
    return err;
  /* trailing 0: a snapshot installed from the leader replaces the whole
   * log; otherwise compact, keeping `trailing` entries before it. */
  if (sp->trailing == 0)
    return ks_raft_store_entries_delete(io->node->store, io->group, 0,
                                        UINT64_MAX);
  if (s->index > sp->trailing)
    return ks_raft_store_entries_delete(io->node->store, io->group, 0,
                                        s->index - sp->trailing);
  return 0;
}

static int io_snapshot_put(struct raft_io *raft_io, unsigned trailing,
                           struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot,
                           raft_io_snapshot_put_cb cb)
{
  io_t *io = io_of(raft_io);
  op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return RAFT_NOMEM;
  snap_put_t sp = {.snap = snapshot, .trailing = trailing};
  int err = node_txn(io->node, txn_snapshot, io, &sp);
  if (err != 0) {
    free(op);
    return io_fail(io, raft_code(err), "snapshot_put", err);
  }
  io->snap_index = snapshot->index;
  io->snap_term = snapshot->term;
  if (trailing == 0) {
    io->next_index = snapshot->index + 1;
    io->node->stats.installs++;
  } else {
    io->node->stats.snapshots++;
  }
  req->cb = cb;
  op->kind = OP_SNAP_PUT;
  op->io = io;
  op->put = req;
  io->pending++;
  node_complete(io->node, op, 0);
  return 0;
}

static int io_snapshot_get(struct raft_io *raft_io,
                           struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb)
{
  io_t *io = io_of(raft_io);
  op_t *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return RAFT_NOMEM;
  int err = snapshot_load(io, &op->get.snap);
  req->cb = cb;
  op->kind = OP_SNAP_GET;
  op->io = io;
  op->get.req = req;
  io->pending++;
  node_complete(io->node, op, err == 0 ? 0 : raft_code(err));
  return 0;
}

/* ---- time, randomness, async work ---------------------------------------- */

static raft_time io_time(struct raft_io *raft_io)
{
  return uv_now(io_of(raft_io)->node->loop);
}

static int io_random(struct raft_io *raft_io, int min, int max)
{
  (void)raft_io;
  if (max <= min)
    return min;
  return min + (int)ks_rand_range((uint64_t)(max - min));
}

typedef struct work {
  uv_work_t uv;
  io_t *io;
  struct raft_io_async_work *req;
  int status;
} work_t;

static void work_run(uv_work_t *w)
{
  work_t *wk = w->data;
  wk->status = wk->req->work(wk->req);
}

static void work_after(uv_work_t *w, int status)
{
  work_t *wk = w->data;
  io_t *io = wk->io;
  struct raft_io_async_work *req = wk->req;
  int rv = status == UV_ECANCELED ? RAFT_CANCELED : wk->status;
  free(wk);
  io->pending--;
  req->cb(req, rv);
  io_maybe_closed(io);
}

static int io_async_work(struct raft_io *raft_io,
                         struct raft_io_async_work *req,
                         raft_io_async_work_cb cb)
{
  io_t *io = io_of(raft_io);
  work_t *wk = calloc(1, sizeof(*wk));
  if (wk == NULL)
    return RAFT_NOMEM;
  wk->uv.data = wk;
  wk->io = io;
  wk->req = req;
  req->cb = cb;
  int rc = uv_queue_work(io->node->loop, &wk->uv, work_run, work_after);
  if (rc != 0) {
    free(wk);
    return io_fail(io, RAFT_IOERR, "async_work", rc);
  }
  io->pending++;
  return 0;
}

/* ---- network: sending -----------------------------------------------------
 */

typedef struct send {
  ks_rpc_call_t call;
  io_t *io;
  struct raft_io_send *req;
  ks_enc_t body;
  ks_buf_t copy;
} send_t;

static int peer_get(ks_raft_node_t *node, const char *address,
                    ks_rpc_client_t **out)
{
  for (peer_t *p = node->peers; p != NULL; p = p->next) {
    if (strcmp(p->address, address) == 0) {
      *out = p->client;
      return 0;
    }
  }
  char host[64];
  uint16_t port;
  if (strlen(address) >= KS_RAFT_ADDR_MAX)
    return -EINVAL;
  int err = ks_hostport_parse(address, host, sizeof(host), &port);
  if (err != 0)
    return err;
  peer_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  err = ks_rpc_client_new(node->loop, host, port,
                          node->has_rpc_opts ? &node->rpc_opts : NULL,
                          &p->client);
  if (err != 0) {
    free(p);
    return err;
  }
  memcpy(p->address, address, strlen(address) + 1);
  p->next = node->peers;
  node->peers = p;
  *out = p->client;
  return 0;
}

static void send_free(send_t *s)
{
  ks_enc_free(&s->body);
  ks_buf_free(&s->copy);
  free(s);
}

static void send_done(ks_rpc_call_t *call, int status, ks_rpc_msg_t *resp)
{
  send_t *s = call->data;
  io_t *io = s->io;
  struct raft_io_send *req = s->req;
  ks_rpc_msg_free(resp);
  send_free(s);
  io->pending--;
  req->cb(req, status == 0 ? 0 : RAFT_NOCONNECTION);
  io_maybe_closed(io);
}

static int io_send(struct raft_io *raft_io, struct raft_io_send *req,
                   const struct raft_message *message, raft_io_send_cb cb)
{
  io_t *io = io_of(raft_io);
  ks_raft_node_t *node = io->node;
  ks_rpc_client_t *cl;
  int err = peer_get(node, message->server_address, &cl);
  if (err != 0)
    return io_fail(io, RAFT_NOCONNECTION, "send", err);
  send_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return RAFT_NOMEM;
  struct iovec bulk[KS_RPC_IOV_MAX];
  int nbulk = 0;
  err = ks_raft_msg_encode(io->group, io->id, io->address, message, &s->body,
                           bulk, &nbulk, &s->copy);
  struct iovec body = {.iov_base = s->body.buf.data,
                       .iov_len = s->body.buf.len};
  s->call.data = s;
  s->io = io;
  s->req = req;
  req->cb = cb;
  if (err == 0)
    err = ks_rpc_call_start(cl, &s->call, KS_OP_RAFT_MSG, &body, 1, bulk, nbulk,
                            node->send_timeout_ms, send_done);
  if (err != 0) {
    send_free(s);
    return io_fail(io, err == -ENOMEM ? RAFT_NOMEM : RAFT_NOCONNECTION, "send",
                   err);
  }
  io->pending++;
  node->stats.msgs_sent++;
  return 0;
}

/* ---- network: receiving ---------------------------------------------------
 */

static void node_on_msg(ks_rpc_sreq_t *sreq, void *ctx)
{
  ks_raft_node_t *node = ctx;
  const ks_rpc_msg_t *m = ks_rpc_sreq_msg(sreq);
  uint64_t group;
  char addr[KS_RAFT_ADDR_MAX];
  struct raft_message msg;
  int err = ks_raft_msg_decode(m->body, m->body_len, m->bulk,
                               (size_t)m->bulk_len, &group, addr, &msg);
  if (err != 0) {
    node->stats.msgs_rejected++;
    ks_log_warn("raft_io", "msg_rejected", "peer=%s err=%s",
                ks_rpc_sreq_peer(sreq), ks_errname(err));
    (void)ks_rpc_reply_status(sreq, err);
    return;
  }
  io_t *io = group_find(node, group);
  if (io == NULL || io->recv_cb == NULL) {
    node->stats.msgs_rejected++;
    ks_raft_msg_release(&msg);
    (void)ks_rpc_reply_status(sreq, -ENOENT);
    return;
  }
  /* Answer first: everything raft needs was copied out of the request. */
  (void)ks_rpc_reply_status(sreq, 0);
  node->stats.msgs_recv++;
  io->recv_cb(io->raft_io, &msg);
}

/* ---- io instances ----------------------------------------------------------
 */

int ks_raft_io_init(struct raft_io *raft_io, ks_raft_node_t *node,
                    uint64_t group)
{
  io_t *io = calloc(1, sizeof(*io));
  if (io == NULL)
    return -ENOMEM;
  io->node = node;
  io->raft_io = raft_io;
  io->group = group;
  io->next_index = 1;
  int err = group_add(node, io);
  if (err != 0) {
    free(io);
    return err;
  }
  int rc = uv_timer_init(node->loop, &io->tick);
  assert(rc == 0); /* uv_timer_init cannot fail */
  (void)rc;
  io->tick.data = io;
  memset(raft_io, 0, sizeof(*raft_io));
  raft_io->version = 2;
  raft_io->impl = io;
  raft_io->init = io_init;
  raft_io->close = io_close;
  raft_io->load = io_load;
  raft_io->start = io_start;
  raft_io->bootstrap = io_bootstrap;
  raft_io->recover = io_recover;
  raft_io->set_term = io_set_term;
  raft_io->set_vote = io_set_vote;
  raft_io->send = io_send;
  raft_io->append = io_append;
  raft_io->truncate = io_truncate;
  raft_io->snapshot_put = io_snapshot_put;
  raft_io->snapshot_get = io_snapshot_get;
  raft_io->time = io_time;
  raft_io->random = io_random;
  raft_io->async_work = io_async_work;
  return 0;
}

static void fini_closed_cb(uv_handle_t *h)
{
  free(h->data);
}

void ks_raft_io_fini(struct raft_io *raft_io)
{
  io_t *io = io_of(raft_io);
  if (io == NULL)
    return;
  assert(io->pending == 0 && !io->closing);
  group_remove(io->node, io);
  raft_io->impl = NULL;
  uv_close((uv_handle_t *)&io->tick, fini_closed_cb);
}

/* ---- node ------------------------------------------------------------------
 */

int ks_raft_node_new(uv_loop_t *loop, ks_raft_store_t *store,
                     ks_rpc_server_t *srv, const ks_raft_node_opts_t *opts,
                     ks_raft_node_t **out)
{
  ks_raft_node_t *node = calloc(1, sizeof(*node));
  if (node == NULL)
    return -ENOMEM;
  node->loop = loop;
  node->store = store;
  queue_init(&node->pend);
  queue_init(&node->done);
  node->send_timeout_ms = KS_RAFT_DEFAULT_SEND_TIMEOUT_MS;
  if (opts != NULL && opts->send_timeout_ms != 0)
    node->send_timeout_ms = opts->send_timeout_ms;
  if (opts != NULL) {
    node->commit_seconds = opts->commit_seconds;
    node->commit_entries = opts->commit_entries;
  }
  if (opts != NULL && opts->rpc != NULL) {
    node->rpc_opts = *opts->rpc;
    node->has_rpc_opts = true;
  }
  if (srv != NULL) {
    int err = ks_rpc_server_handle(srv, KS_OP_RAFT_MSG, node_on_msg, node);
    if (err != 0) {
      free(node);
      return err;
    }
  }
  int rc = uv_timer_init(loop, &node->flush);
  assert(rc == 0);
  (void)rc;
  node->flush.data = node;
  *out = node;
  return 0;
}

static void node_part_closed(ks_raft_node_t *node)
{
  if (--node->closing_parts > 0)
    return;
  ks_rpc_close_cb cb = node->close_cb;
  void *arg = node->close_arg;
  free(node->groups);
  free(node);
  if (cb != NULL)
    cb(arg);
}

static void node_client_closed(void *arg)
{
  node_part_closed(arg);
}

static void node_flush_closed(uv_handle_t *h)
{
  node_part_closed(h->data);
}

void ks_raft_node_close(ks_raft_node_t *node, ks_rpc_close_cb cb, void *arg)
{
  assert(node->ngroups == 0);
  assert(node->pend.head == NULL && node->done.head == NULL);
  node->close_cb = cb;
  node->close_arg = arg;
  node->closing_parts = 1;
  while (node->peers != NULL) {
    peer_t *p = node->peers;
    node->peers = p->next;
    node->closing_parts++;
    ks_rpc_client_close(p->client, node_client_closed, node);
    free(p);
  }
  uv_close((uv_handle_t *)&node->flush, node_flush_closed);
}

void ks_raft_node_stats(const ks_raft_node_t *node, ks_raft_node_stats_t *st)
{
  *st = node->stats;
}
