/*
 * service.c — the meta node's RPC handlers over its shard replicas (see
 * ks/meta_service.h for the contract).
 *
 * WRITE PATH.  decode check → raft_apply(delta copy) → [libraft: append,
 * group commit fsync, commit, fsm->apply into LMDB] → apply_cb with the
 * shard's ks_meta_apply_t → reply (status = the delta's outcome).  The
 * delta is validated before it is proposed so that garbage never enters
 * the log; the state machine still decodes defensively (a log written by
 * another version).
 *
 * READ PATH.  Reads wait in the shard's `waiting` list.  When no barrier is
 * in flight, the whole list becomes the `batch` and one raft_barrier is
 * started; when it completes, every read of the batch is answered from
 * LMDB (the barrier proves this node was leader after the reads arrived and
 * that every entry committed before them is applied).  Reads that arrived
 * meanwhile wait for the next barrier: a barrier started before a read
 * arrived proves nothing about it.
 *
 * FLUSH.  A uv_check handle commits the shard state's batched applies once
 * per loop turn (ks_meta_state_flush), so LMDB never holds a long write
 * transaction; reads flush on their own as well.
 *
 * FAILURES.  raft_apply/raft_barrier refused: RAFT_NOTLEADER →
 * KS_META_ENOTLEADER (nothing happened); a callback with
 * RAFT_LEADERSHIPLOST or RAFT_SHUTDOWN → KS_ECLOSED (the delta may or may
 * not be applied; the client must read to know).  A storage failure of the
 * state (poisoned) makes fsm->apply fail; libraft then stops applying and
 * this replica answers nothing more for that shard: the daemon logs it and
 * must be restarted (TODO: stop the daemon from here).
 */
#include "ks/meta_service.h"

#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/proto_meta.h"

#include <stdlib.h>
#include <string.h>

#define COMP "meta"
#define DEFAULT_SNAPSHOT_THRESHOLD 1024
#define DEFAULT_SNAPSHOT_TRAILING 128

typedef struct rreq rreq_t;
struct rreq {
  rreq_t *next;
  ks_rpc_sreq_t *sreq;
  uint16_t op;
  ks_meta_query_t q;
  ks_meta_arena_t a;
  ks_enc_t body;
};

typedef struct vshard {
  struct vshard *next;
  ks_meta_service_t *svc;
  uint64_t id;
  ks_meta_shard_t *sh;
  struct raft raft;
  struct raft_io io;
  bool closed;
  struct raft_barrier barrier;
  bool barrier_busy;
  rreq_t *waiting, **waiting_tail;
  rreq_t *batch;
} vshard_t;

struct ks_meta_service {
  uv_loop_t *loop;
  ks_rpc_server_t *srv;
  ks_raft_node_t *node;
  ks_meta_state_t *st;
  ks_meta_service_opts_t opts;
  vshard_t *shards;
  uv_check_t flush;
  bool closing;
  unsigned closing_left;
  ks_rpc_close_cb close_cb;
  void *close_arg;
  ks_meta_service_stats_t stats;
};

typedef struct wreq {
  struct raft_apply req;
  ks_rpc_sreq_t *sreq;
  ks_enc_t body;
} wreq_t;

static vshard_t *shard_find(ks_meta_service_t *svc, uint64_t id)
{
  for (vshard_t *s = svc->shards; s != NULL; s = s->next)
    if (s->id == id)
      return s;
  return NULL;
}

static int raft_to_err(int rv)
{
  switch (rv) {
  case 0:
    return 0;
  case RAFT_NOTLEADER:
    return KS_META_ENOTLEADER;
  case RAFT_LEADERSHIPLOST:
  case RAFT_SHUTDOWN:
  case RAFT_CANCELED:
    return KS_ECLOSED;
  case RAFT_NOMEM:
    return -ENOMEM;
  case RAFT_TOOBIG:
    return KS_ETOOBIG;
  default:
    return -EIO;
  }
}

/* Reply with a status, logging the (rare) failure to reply at all. */
static void reply_status(ks_rpc_sreq_t *sreq, int status)
{
  int rc = ks_rpc_reply_status(sreq, status);
  if (rc != 0)
    ks_log_error(COMP, "reply_failed", "err=%s", ks_errname(rc));
}

/* ---- writes ----------------------------------------------------------------
 */

static void wreq_free(wreq_t *w)
{
  ks_enc_free(&w->body);
  free(w);
}

static void write_replied(ks_rpc_sreq_t *sreq, int status, void *arg)
{
  (void)sreq;
  (void)status;
  wreq_free(arg);
}

static void write_applied(struct raft_apply *req, int status, void *result)
{
  wreq_t *w = req->data;
  const ks_meta_apply_t *res = result;
  int err = raft_to_err(status);
  if (err == 0 && res != NULL)
    err = res->err;
  if (err != 0 || res == NULL) {
    reply_status(w->sreq, err != 0 ? err : -EIO);
    wreq_free(w);
    return;
  }
  ks_meta_result_encode(&w->body, &res->res);
  struct iovec iov = {w->body.buf.data, w->body.buf.len};
  int rc = ks_enc_finish(&w->body);
  if (rc == 0)
    rc = ks_rpc_reply(w->sreq, 0, &iov, 1, NULL, 0, write_replied, w);
  if (rc != 0) {
    reply_status(w->sreq, rc);
    wreq_free(w);
  }
}

/* Check the delta decodes (a malformed one never enters the log). */
static int delta_check(const uint8_t *p, size_t n)
{
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_delta_t d;
  int rc = ks_meta_delta_decode(p, n, &a, &d);
  if (rc == 0 && d.type == KS_DELTA_PUT_ACCESS_KEY)
    ks_secure_zero((void *)d.secret, d.secret_len);
  ks_meta_arena_free(&a);
  return rc;
}

static int write_start(ks_meta_service_t *svc, ks_rpc_sreq_t *sreq)
{
  const ks_rpc_msg_t *m = ks_rpc_sreq_msg(sreq);
  uint64_t shard;
  const uint8_t *delta;
  size_t len;
  int rc = ks_meta_write_decode(m->body, m->body_len, &shard, &delta, &len);
  if (rc == 0)
    rc = delta_check(delta, len);
  if (rc != 0)
    return rc;
  vshard_t *s = shard_find(svc, shard);
  if (s == NULL)
    return KS_META_ENOSHARD;
  wreq_t *w = calloc(1, sizeof(*w));
  struct raft_buffer buf = {.base = raft_malloc(len), .len = len};
  if (w == NULL || buf.base == NULL) {
    free(w);
    raft_free(buf.base);
    return -ENOMEM;
  }
  memcpy(buf.base, delta, len);
  w->sreq = sreq;
  w->req.data = w;
  rc = raft_apply(&s->raft, &w->req, &buf, 1, write_applied);
  if (rc != 0) {
    raft_free(buf.base);
    free(w);
    return raft_to_err(rc);
  }
  svc->stats.writes++;
  return 0;
}

static void on_write(ks_rpc_sreq_t *sreq, void *ctx)
{
  ks_meta_service_t *svc = ctx;
  int rc = svc->closing ? KS_ECLOSED : write_start(svc, sreq);
  if (rc != 0)
    reply_status(sreq, rc);
}

/* ---- reads -----------------------------------------------------------------
 */

static void rreq_free(rreq_t *r)
{
  if (r->op == KS_OP_META_GET_ACCESS_KEY)
    ks_secure_zero(r->body.buf.data, r->body.buf.len);
  ks_enc_free(&r->body);
  ks_meta_arena_free(&r->a);
  free(r);
}

static void read_replied(ks_rpc_sreq_t *sreq, int status, void *arg)
{
  (void)sreq;
  (void)status;
  rreq_free(arg);
}

static void read_answer(vshard_t *s, rreq_t *r, int status)
{
  int rc = status;
  if (rc == 0)
    rc = ks_meta_shard_query(s->sh, r->op, &r->q, &r->body);
  if (rc == 0) {
    struct iovec iov = {r->body.buf.data, r->body.buf.len};
    rc = ks_rpc_reply(r->sreq, 0, &iov, 1, NULL, 0, read_replied, r);
    if (rc == 0) {
      s->svc->stats.reads++;
      return;
    }
  }
  reply_status(r->sreq, rc);
  rreq_free(r);
}

/* Answer every read of a batch: from LMDB, or with err. */
static void batch_answer(vshard_t *s, rreq_t *batch, int err)
{
  while (batch != NULL) {
    rreq_t *r = batch;
    batch = r->next;
    read_answer(s, r, err);
  }
}

static void barrier_done(struct raft_barrier *req, int status);

static void barrier_start(vshard_t *s)
{
  s->batch = s->waiting;
  s->waiting = NULL;
  s->waiting_tail = &s->waiting;
  s->barrier_busy = true;
  s->barrier.data = s;
  int rc = raft_barrier(&s->raft, &s->barrier, barrier_done);
  if (rc != 0) {
    rreq_t *batch = s->batch;
    s->batch = NULL;
    s->barrier_busy = false;
    batch_answer(s, batch, raft_to_err(rc));
    return;
  }
  s->svc->stats.barriers++;
}

static void barrier_done(struct raft_barrier *req, int status)
{
  vshard_t *s = req->data;
  rreq_t *batch = s->batch;
  s->batch = NULL;
  s->barrier_busy = false;
  batch_answer(s, batch, raft_to_err(status));
  if (s->waiting != NULL && !s->svc->closing)
    barrier_start(s);
}

static int read_start(ks_meta_service_t *svc, ks_rpc_sreq_t *sreq)
{
  const ks_rpc_msg_t *m = ks_rpc_sreq_msg(sreq);
  rreq_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return -ENOMEM;
  r->sreq = sreq;
  r->op = m->opcode;
  int rc = ks_meta_query_decode(m->body, m->body_len, m->opcode, &r->a, &r->q);
  vshard_t *s = rc == 0 ? shard_find(svc, r->q.shard) : NULL;
  if (rc == 0 && s == NULL)
    rc = KS_META_ENOSHARD;
  if (rc == 0 && raft_state(&s->raft) != RAFT_LEADER)
    rc = KS_META_ENOTLEADER;
  if (rc != 0) {
    rreq_free(r);
    return rc;
  }
  *s->waiting_tail = r;
  s->waiting_tail = &r->next;
  if (!s->barrier_busy)
    barrier_start(s);
  return 0;
}

static void on_read(ks_rpc_sreq_t *sreq, void *ctx)
{
  ks_meta_service_t *svc = ctx;
  int rc = svc->closing ? KS_ECLOSED : read_start(svc, sreq);
  if (rc != 0)
    reply_status(sreq, rc);
}

/* ---- shards ----------------------------------------------------------------
 */

static void flush_cb(uv_check_t *h)
{
  ks_meta_service_t *svc = h->data;
  (void)ks_meta_state_flush(svc->st);
}

static int shard_raft_init(vshard_t *s, uint64_t id, const char *address)
{
  ks_meta_service_t *svc = s->svc;
  int rc = ks_raft_io_init(&s->io, svc->node, s->id);
  if (rc != 0)
    return rc;
  rc = raft_init(&s->raft, &s->io, ks_meta_shard_fsm(s->sh), id, address);
  if (rc != 0) {
    ks_log_error(COMP, "raft_init_failed", "shard=%llu err=\"%s\"",
                 (unsigned long long)s->id, raft_strerror(rc));
    ks_raft_io_fini(&s->io);
    return rc == RAFT_NOMEM ? -ENOMEM : -EIO;
  }
  s->raft.data = s;
  raft_set_snapshot_threshold(&s->raft, svc->opts.snapshot_threshold);
  raft_set_snapshot_trailing(&s->raft, svc->opts.snapshot_trailing);
  return 0;
}

static int shard_boot(vshard_t *s, const struct raft_configuration *conf)
{
  int rc = conf ? raft_bootstrap(&s->raft, conf) : 0;
  if (rc == RAFT_CANTBOOTSTRAP)
    rc = 0; /* a log exists: this is a restart */
  if (rc == 0)
    rc = raft_start(&s->raft);
  if (rc != 0)
    ks_log_error(COMP, "raft_start_failed", "shard=%llu err=\"%s\"",
                 (unsigned long long)s->id, raft_errmsg(&s->raft));
  return rc == 0 ? 0 : -EIO;
}

static void shard_closed_cb(struct raft *r);

int ks_meta_service_shard_start(ks_meta_service_t *svc, uint64_t shard,
                                uint64_t id, const char *address,
                                const struct raft_configuration *bootstrap)
{
  if (shard_find(svc, shard) != NULL)
    return -EEXIST;
  vshard_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  s->svc = svc;
  s->id = shard;
  s->waiting_tail = &s->waiting;
  int rc = ks_meta_shard_new(svc->st, shard, &s->sh);
  if (rc == 0)
    rc = shard_raft_init(s, id, address);
  if (rc != 0) {
    ks_meta_shard_free(s->sh);
    free(s);
    return rc;
  }
  s->next = svc->shards;
  svc->shards = s;
  rc = shard_boot(s, bootstrap);
  if (rc != 0)
    return rc; /* closed with the others by ks_meta_service_close */
  ks_log_info(COMP, "shard_started", "shard=%llu id=%llu leader=%s",
              (unsigned long long)shard, (unsigned long long)id,
              raft_state(&s->raft) == RAFT_LEADER ? "yes" : "no");
  return 0;
}

bool ks_meta_service_is_leader(ks_meta_service_t *svc, uint64_t shard)
{
  vshard_t *s = shard_find(svc, shard);
  return s != NULL && raft_state(&s->raft) == RAFT_LEADER;
}

void ks_meta_service_stats(const ks_meta_service_t *svc,
                           ks_meta_service_stats_t *st)
{
  *st = svc->stats;
}

/* ---- life cycle ------------------------------------------------------------
 */

static const uint16_t read_ops[] = {
    KS_OP_META_GET_BUCKET,   KS_OP_META_LIST_BUCKETS,  KS_OP_META_GET_OBJECT,
    KS_OP_META_LIST_OBJECTS, KS_OP_META_LIST_UPLOADS,  KS_OP_META_LIST_PARTS,
    KS_OP_META_GET_UPLOAD,   KS_OP_META_GET_ACCESS_KEY};

static int service_register(ks_meta_service_t *svc)
{
  int rc = ks_rpc_server_handle(svc->srv, KS_OP_META_WRITE, on_write, svc);
  for (size_t i = 0; rc == 0 && i < sizeof(read_ops) / sizeof(*read_ops); i++)
    rc = ks_rpc_server_handle(svc->srv, read_ops[i], on_read, svc);
  return rc;
}

int ks_meta_service_new(uv_loop_t *loop, ks_rpc_server_t *srv,
                        ks_raft_node_t *node, ks_meta_state_t *st,
                        const ks_meta_service_opts_t *opts,
                        ks_meta_service_t **out)
{
  ks_meta_service_t *svc = calloc(1, sizeof(*svc));
  if (svc == NULL)
    return -ENOMEM;
  svc->loop = loop;
  svc->srv = srv;
  svc->node = node;
  svc->st = st;
  if (opts != NULL)
    svc->opts = *opts;
  if (svc->opts.snapshot_threshold == 0)
    svc->opts.snapshot_threshold = DEFAULT_SNAPSHOT_THRESHOLD;
  if (svc->opts.snapshot_trailing == 0)
    svc->opts.snapshot_trailing = DEFAULT_SNAPSHOT_TRAILING;
  int rc = service_register(svc);
  if (rc != 0) {
    free(svc);
    return rc;
  }
  uv_check_init(loop, &svc->flush);
  svc->flush.data = svc;
  uv_check_start(&svc->flush, flush_cb);
  uv_unref((uv_handle_t *)&svc->flush);
  *out = svc;
  return 0;
}

static void service_close_done(uv_handle_t *h)
{
  ks_meta_service_t *svc = h->data;
  (void)ks_meta_state_flush(svc->st);
  if (svc->close_cb != NULL)
    svc->close_cb(svc->close_arg);
}

static void service_closed_one(ks_meta_service_t *svc)
{
  if (--svc->closing_left > 0)
    return;
  uv_close((uv_handle_t *)&svc->flush, service_close_done);
}

static void shard_closed_cb(struct raft *r)
{
  vshard_t *s = r->data;
  s->closed = true;
  service_closed_one(s->svc);
}

/* Reads that never reached a barrier fail now. */
static void shard_fail_waiting(vshard_t *s)
{
  while (s->waiting != NULL) {
    rreq_t *r = s->waiting;
    s->waiting = r->next;
    reply_status(r->sreq, KS_ECLOSED);
    rreq_free(r);
  }
  s->waiting_tail = &s->waiting;
}

void ks_meta_service_close(ks_meta_service_t *svc, ks_rpc_close_cb cb,
                           void *arg)
{
  svc->closing = true;
  svc->close_cb = cb;
  svc->close_arg = arg;
  svc->closing_left = 1;
  for (vshard_t *s = svc->shards; s != NULL; s = s->next) {
    shard_fail_waiting(s);
    svc->closing_left++;
    raft_close(&s->raft, shard_closed_cb);
  }
  service_closed_one(svc);
}

void ks_meta_service_free(ks_meta_service_t *svc)
{
  if (svc == NULL)
    return;
  while (svc->shards != NULL) {
    vshard_t *s = svc->shards;
    svc->shards = s->next;
    ks_meta_shard_free(s->sh);
    free(s);
  }
  free(svc);
}
