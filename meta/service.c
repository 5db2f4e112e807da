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
 * READ PATH.  Single-voter group (read_local_ok): when this node is the
 * leader and the only voter of a committed configuration, has seen an
 * entry of its current term commit (`read_term`: a barrier or a write
 * proposed here) and has applied every committed entry, the read is
 * answered from LMDB at once.  That is linearizable: no other node can win
 * an election without this node's vote, every write acknowledged before
 * the read arrived is committed and so applied, and a barrier would commit
 * on this node's fsync alone, proving nothing more.  It spares a log entry
 * and an fsync per read batch, and the snapshots those entries caused.
 *
 * Otherwise reads wait in the shard's `waiting` list and go through a
 * raft_barrier: it proves this node was leader after the reads arrived and
 * that every entry committed before them is applied.  The first read of a
 * shard with no barrier in flight issues one at once (latency when idle);
 * later reads wait for the end of the loop turn (flush_cb), where the
 * turn's reads share one barrier, or for one to complete; at most
 * BARRIERS_MAX are in flight.  Each barrier carries its own batch, taken
 * when it is issued, so a read is never served by a barrier issued before
 * it arrived (that one proves nothing about it).  Barriers pipeline in the
 * log: a later one commits with or after an earlier one.
 *
 * FLUSH.  A uv_check handle commits the shard state's batched applies once
 * per loop turn (ks_meta_state_flush), so LMDB never holds a long write
 * transaction; reads flush on their own as well.  The same handle issues
 * the turn's barrier (READ PATH).
 *
 * SNAPSHOT THRESHOLD.  After each snapshot and restore (the shard's records
 * callback, run inside libraft's fsm call) the threshold becomes
 * max(configured, snapshot_per_record x records in the shard).  A snapshot
 * copies and writes the whole shard, so a fixed threshold made the cost
 * per entry grow with the shard (at 1,024 entries and ~10^4-10^5 objects,
 * snapshots were most of meta's CPU and its p99); scaled, a snapshot costs
 * about 1/snapshot_per_record record per entry whatever the size.  The
 * price, paid for the default of 2: restart replays up to 2 entries per
 * record (plus the trailing ones) after restoring the snapshot, libraft
 * holds as many entries in memory, and the raft store as many on disk.
 * Those are bounded by snapshot_log_max (1 GiB of entries at their mean
 * size): past it, i.e. for shards of more than ~half that, the threshold
 * stops growing and the snapshot cost per entry grows with the shard
 * again (a 4 GiB shard copies ~4 bytes per byte logged), the price of
 * bounded memory while snapshots copy the whole state.
 * Setting it inside the restore matters: at start libraft replays the log
 * right after restoring, and would snapshot again at the configured value.
 *
 * FAILURES.  raft_apply/raft_barrier refused: RAFT_NOTLEADER →
 * KS_META_ENOTLEADER (nothing happened); a callback with
 * RAFT_LEADERSHIPLOST or RAFT_SHUTDOWN → KS_ECLOSED (the delta may or may
 * not be applied; the client must read to know).  A storage failure of the
 * state (poisoned) makes fsm->apply fail; libraft then stops applying and
 * this replica answers nothing more for that shard: the daemon logs it and
 * must be restarted (TODO: stop the daemon from here).
 *
 * METRICS.  Every answered request passes through req_done, which counts
 * it by operation and outcome in plain integers (loop thread only; the
 * scrape runs on the same loop and reads them through callbacks) and
 * observes its latency from arrival to reply in the one owned histogram.
 * Raft numbers (term, commit and applied index, leadership) are read from
 * libraft's struct at scrape time, so they cost nothing between scrapes.
 */
#include "ks/meta_service.h"

#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/proto_meta.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "meta"
#define DEFAULT_SNAPSHOT_THRESHOLD 1024
#define DEFAULT_SNAPSHOT_TRAILING 128
#define DEFAULT_SNAPSHOT_PER_RECORD 2
/* Barriers in flight per shard (multi-voter groups): each one serves the
 * reads that arrived before it was issued. */
#define BARRIERS_MAX 4

/* Metric series index of an operation: WRITE, then the reads by opcode. */
enum { OPI_WRITE, OPI_READ0, OPI_N = OPI_READ0 + 8 };
_Static_assert(KS_OP_META_GET_ACCESS_KEY - KS_OP_META_GET_BUCKET + 1 ==
                   OPI_N - OPI_READ0,
               "one series per read opcode");
static const char *const op_names[OPI_N] = {
    "write",      "get_bucket",   "list_buckets",
    "get_object", "list_objects", "list_uploads",
    "list_parts", "get_upload",   "get_access_key"};

/* Outcome classes of a request (the `result` label). */
enum {
  RES_OK,
  RES_REJECTED, /* a KS_META_E* answer: NoSuchKey, exists, denied... */
  RES_NOT_LEADER,
  RES_NO_SHARD,
  RES_CLOSED,
  RES_MALFORMED,
  RES_FAILED, /* anything else: I/O, memory, too big */
  RES_N
};
static const char *const res_names[RES_N] = {
    "ok",     "rejected",  "not_leader", "no_shard",
    "closed", "malformed", "failed"};

/* Latency bounds in seconds: a write costs at least one fsync (~0.1-10 ms
 * on flash), a read one barrier (a log entry, so an fsync too) or, in a
 * one-voter group, no more than an LMDB lookup. */
static const double latency_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

typedef struct rreq rreq_t;
struct rreq {
  rreq_t *next;
  ks_rpc_sreq_t *sreq;
  uint64_t t0; /* arrival, uv_hrtime */
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
  unsigned barriers; /* in flight */
  rreq_t *waiting, **waiting_tail;
  /* A term in which an entry proposed here committed (0: none yet): while
   * it is the current term, every entry committed before the term is in
   * this node's log (the local read path's condition). */
  raft_term read_term;
  unsigned threshold; /* the snapshot threshold set on raft */
} vshard_t;

/* A barrier and the reads it serves: all arrived before it was issued. */
typedef struct rbarrier {
  struct raft_barrier req;
  vshard_t *s;
  rreq_t *batch;
  raft_term term; /* of its entry */
} rbarrier_t;

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
  /* metrics: counters by series index, read at scrape time */
  uint64_t n_req[OPI_N];
  uint64_t n_err[OPI_N];
  uint64_t n_res[RES_N];
  ks_metric_t *latency;   /* NULL until ks_meta_service_metrics */
  struct mshard *mshards; /* the `shard` label's shards, by series index */
  const char **mshard_labels;
  size_t nmshards;
};

/* A shard's series index in the `shard` label, and its label value. */
struct mshard {
  vshard_t *s;
  char name[24];
};

typedef struct wreq {
  struct raft_apply req;
  ks_meta_service_t *svc;
  vshard_t *s;
  raft_term term; /* of its entry */
  ks_rpc_sreq_t *sreq;
  uint64_t t0; /* arrival, uv_hrtime */
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

static unsigned res_class(int status)
{
  switch (status) {
  case 0:
    return RES_OK;
  case KS_META_ENOTLEADER:
    return RES_NOT_LEADER;
  case KS_META_ENOSHARD:
    return RES_NO_SHARD;
  case KS_ECLOSED:
    return RES_CLOSED;
  case KS_EPROTO:
    return RES_MALFORMED;
  case KS_META_ENOBUCKET:
  case KS_META_ENOKEY:
  case KS_META_ENOUPLOAD:
  case KS_META_EBUCKETEXISTS:
  case KS_META_EOWNED:
  case KS_META_ENOTEMPTY:
  case KS_META_ETOOSMALL:
  case KS_META_EBADPART:
  case KS_META_EPARTORDER:
  case KS_META_ENOTENANT:
  case KS_META_ENOACCESSKEY:
  case KS_META_EACCESS:
  case KS_META_EINVAL:
    return RES_REJECTED;
  default:
    return RES_FAILED;
  }
}

static unsigned op_index(uint16_t opcode)
{
  if (opcode == KS_OP_META_WRITE)
    return OPI_WRITE;
  assert(opcode >= KS_OP_META_GET_BUCKET &&
         opcode <= KS_OP_META_GET_ACCESS_KEY);
  return OPI_READ0 + (unsigned)(opcode - KS_OP_META_GET_BUCKET);
}

/* Account one answered request (status: what the client was told). */
static void req_done(ks_meta_service_t *svc, unsigned op, uint64_t t0,
                     int status)
{
  svc->n_req[op]++;
  svc->n_err[op] += status != 0;
  svc->n_res[res_class(status)]++;
  if (svc->latency != NULL)
    ks_histogram_observe(svc->latency, op, (double)(uv_hrtime() - t0) / 1e9);
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
  if (status == 0 && w->term > w->s->read_term)
    w->s->read_term = w->term;
  if (err == 0 && res != NULL)
    err = res->err;
  if (err == 0 && res == NULL)
    err = -EIO;
  if (err != 0) {
    req_done(w->svc, OPI_WRITE, w->t0, err);
    reply_status(w->sreq, err);
    wreq_free(w);
    return;
  }
  ks_meta_result_encode(&w->body, &res->res);
  struct iovec iov = {w->body.buf.data, w->body.buf.len};
  int rc = ks_enc_finish(&w->body);
  ks_meta_service_t *svc = w->svc;
  uint64_t t0 = w->t0; /* w may be freed by the time ks_rpc_reply returns */
  if (rc == 0)
    rc = ks_rpc_reply(w->sreq, 0, &iov, 1, NULL, 0, write_replied, w);
  req_done(svc, OPI_WRITE, t0, rc);
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

static int write_start(ks_meta_service_t *svc, ks_rpc_sreq_t *sreq, uint64_t t0)
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
  w->svc = svc;
  w->s = s;
  w->term = s->raft.current_term;
  w->sreq = sreq;
  w->t0 = t0;
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
  uint64_t t0 = uv_hrtime();
  int rc = svc->closing ? KS_ECLOSED : write_start(svc, sreq, t0);
  if (rc != 0) {
    req_done(svc, OPI_WRITE, t0, rc);
    reply_status(sreq, rc);
  }
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
  unsigned op = op_index(r->op);
  if (rc == 0) {
    struct iovec iov = {r->body.buf.data, r->body.buf.len};
    uint64_t t0 = r->t0; /* r may be freed by the time ks_rpc_reply returns */
    rc = ks_rpc_reply(r->sreq, 0, &iov, 1, NULL, 0, read_replied, r);
    if (rc == 0) {
      s->svc->stats.reads++;
      req_done(s->svc, op, t0, 0);
      return;
    }
  }
  req_done(s->svc, op, r->t0, rc);
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

/* May a read be answered from LMDB now, without a barrier?  Yes when this
 * node is the leader and the only voter of a committed configuration, it
 * has committed an entry of the current term, and every committed entry is
 * applied.  Then no other node can be leader (a vote needs this node's log,
 * which is ahead), every entry committed before the read arrived is in the
 * state, and a barrier would add nothing: it would commit on this node's
 * own fsync alone, proving only what this check reads from libraft. */
static bool read_local_ok(vshard_t *s)
{
  struct raft *r = &s->raft;
  if (s->read_term != r->current_term || raft_state(r) != RAFT_LEADER ||
      r->configuration_uncommitted_index != 0 ||
      raft_last_applied(r) != r->commit_index)
    return false;
  unsigned voters = 0;
  bool self = false;
  for (unsigned i = 0; i < r->configuration.n; i++) {
    const struct raft_server *sv = &r->configuration.servers[i];
    if (sv->role == RAFT_VOTER) {
      voters++;
      self = self || sv->id == r->id;
    }
  }
  return voters == 1 && self;
}

static void barrier_done(struct raft_barrier *req, int status);

/* Issue a barrier for every waiting read. */
static void barrier_start(vshard_t *s)
{
  rreq_t *batch = s->waiting;
  s->waiting = NULL;
  s->waiting_tail = &s->waiting;
  rbarrier_t *b = calloc(1, sizeof(*b));
  if (b == NULL) {
    batch_answer(s, batch, -ENOMEM);
    return;
  }
  b->s = s;
  b->batch = batch;
  b->term = s->raft.current_term;
  b->req.data = b;
  int rc = raft_barrier(&s->raft, &b->req, barrier_done);
  if (rc != 0) {
    free(b);
    batch_answer(s, batch, raft_to_err(rc));
    return;
  }
  s->barriers++;
  s->svc->stats.barriers++;
}

static void barrier_done(struct raft_barrier *req, int status)
{
  rbarrier_t *b = req->data;
  vshard_t *s = b->s;
  rreq_t *batch = b->batch;
  s->barriers--;
  if (status == 0 && b->term > s->read_term)
    s->read_term = b->term;
  free(b);
  batch_answer(s, batch, raft_to_err(status));
  if (s->waiting != NULL && !s->svc->closing && s->barriers < BARRIERS_MAX)
    barrier_start(s);
}

static int read_start(ks_meta_service_t *svc, ks_rpc_sreq_t *sreq, uint64_t t0)
{
  const ks_rpc_msg_t *m = ks_rpc_sreq_msg(sreq);
  rreq_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return -ENOMEM;
  r->sreq = sreq;
  r->t0 = t0;
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
  if (read_local_ok(s)) {
    svc->stats.local_reads++;
    read_answer(s, r, 0);
    return 0;
  }
  /* Pipelined: the first read of an idle shard issues a barrier at once;
   * later ones wait for the end of the loop turn (flush_cb), which issues
   * one barrier for all of them, or for a barrier to complete. */
  *s->waiting_tail = r;
  s->waiting_tail = &r->next;
  if (s->barriers == 0)
    barrier_start(s);
  return 0;
}

static void on_read(ks_rpc_sreq_t *sreq, void *ctx)
{
  ks_meta_service_t *svc = ctx;
  uint64_t t0 = uv_hrtime();
  int rc = svc->closing ? KS_ECLOSED : read_start(svc, sreq, t0);
  if (rc != 0) {
    req_done(svc, op_index(ks_rpc_sreq_msg(sreq)->opcode), t0, rc);
    reply_status(sreq, rc);
  }
}

/* ---- shards ----------------------------------------------------------------
 */

/* The snapshot threshold for a shard of `records` records.  A snapshot
 * copies and writes the whole shard, so a fixed threshold makes the cost
 * per entry grow with the shard; max(configured, k x records) keeps it
 * bounded (about 1/k record per entry).  The price: restart replays up to
 * that many entries, and libraft keeps them in memory until the next
 * snapshot (meta/shard.c, DURABILITY). */
static unsigned snapshot_threshold(const vshard_t *s, uint64_t records)
{
  const ks_meta_service_t *svc = s->svc;
  uint64_t t = records * svc->opts.snapshot_per_record;
  uint64_t esz = ks_meta_shard_entry_size(s->sh);
  if (esz > 0 && t > svc->opts.snapshot_log_max / esz)
    t = svc->opts.snapshot_log_max / esz;
  if (t < svc->opts.snapshot_threshold)
    t = svc->opts.snapshot_threshold;
  return t > UINT_MAX / 2 ? UINT_MAX / 2 : (unsigned)t;
}

/* The shard took a snapshot or restored one (inside libraft's call). */
static void shard_records_cb(void *arg, uint64_t records)
{
  vshard_t *s = arg;
  unsigned t = snapshot_threshold(s, records);
  if (t != s->threshold) {
    s->threshold = t;
    raft_set_snapshot_threshold(&s->raft, t);
  }
}

static void flush_cb(uv_check_t *h)
{
  ks_meta_service_t *svc = h->data;
  (void)ks_meta_state_flush(svc->st);
  if (svc->closing)
    return;
  for (vshard_t *s = svc->shards; s != NULL; s = s->next) {
    /* Reads that arrived this turn share one barrier. */
    if (s->waiting != NULL && s->barriers < BARRIERS_MAX)
      barrier_start(s);
  }
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
  s->threshold = svc->opts.snapshot_threshold;
  raft_set_snapshot_threshold(&s->raft, s->threshold);
  ks_meta_shard_on_records(s->sh, shard_records_cb, s);
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

unsigned ks_meta_service_snapshot_threshold(ks_meta_service_t *svc,
                                            uint64_t shard)
{
  vshard_t *s = shard_find(svc, shard);
  return s == NULL ? 0 : s->threshold;
}

void ks_meta_service_stats(const ks_meta_service_t *svc,
                           ks_meta_service_stats_t *st)
{
  *st = svc->stats;
}

/* ---- metrics ---------------------------------------------------------------
 */

static double m_requests(void *svc, size_t op)
{
  return (double)((ks_meta_service_t *)svc)->n_req[op];
}

static double m_errors(void *svc, size_t op)
{
  return (double)((ks_meta_service_t *)svc)->n_err[op];
}

static double m_results(void *svc, size_t res)
{
  return (double)((ks_meta_service_t *)svc)->n_res[res];
}

static double m_barriers(void *svc, size_t i)
{
  (void)i;
  return (double)((ks_meta_service_t *)svc)->stats.barriers;
}

static double m_local_reads(void *svc, size_t i)
{
  (void)i;
  return (double)((ks_meta_service_t *)svc)->stats.local_reads;
}

static struct raft *mshard_raft(void *svc, size_t i)
{
  return &((ks_meta_service_t *)svc)->mshards[i].s->raft;
}

static double m_leader(void *svc, size_t i)
{
  return raft_state(mshard_raft(svc, i)) == RAFT_LEADER;
}

static double m_term(void *svc, size_t i)
{
  return (double)mshard_raft(svc, i)->current_term;
}

static double m_commit_index(void *svc, size_t i)
{
  return (double)mshard_raft(svc, i)->commit_index;
}

static double m_applied_index(void *svc, size_t i)
{
  return (double)raft_last_applied(mshard_raft(svc, i));
}

static double m_last_index(void *svc, size_t i)
{
  return (double)raft_last_index(mshard_raft(svc, i));
}

static ks_raft_node_stats_t node_stats(const ks_meta_service_t *svc)
{
  ks_raft_node_stats_t st;
  ks_raft_node_stats(svc->node, &st);
  return st;
}

static double m_appends(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).appends;
}

static double m_flushes(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).flushes;
}

static double m_commits(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).commits;
}

static double m_entries(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).entries;
}

static double m_snapshots(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).snapshots;
}

static double m_installs(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).installs;
}

static double m_msgs_sent(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).msgs_sent;
}

static double m_msgs_recv(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).msgs_recv;
}

static double m_msgs_rejected(void *svc, size_t i)
{
  (void)i;
  return (double)node_stats(svc).msgs_rejected;
}

typedef enum { L_NONE, L_OP, L_RESULT, L_SHARD } label_kind_t;

static const struct meta_metric {
  bool counter;
  label_kind_t label;
  const char *name;
  const char *help;
  ks_metric_read_cb cb;
} meta_metrics[] = {
    {true, L_OP, "kiseki_meta_requests_total",
     "Metadata requests answered, by operation.", m_requests},
    {true, L_OP, "kiseki_meta_request_errors_total",
     "Metadata requests answered with an error status, by operation.",
     m_errors},
    {true, L_RESULT, "kiseki_meta_request_results_total",
     "Metadata requests answered, by outcome (rejected: a metadata error "
     "such as NoSuchKey; failed: I/O, memory or size).",
     m_results},
    {true, L_NONE, "kiseki_meta_read_barriers_total",
     "Raft barriers run for linearizable reads (one serves a batch).",
     m_barriers},
    {true, L_NONE, "kiseki_meta_local_reads_total",
     "Reads answered without a barrier: the leader is its group's only "
     "voter.",
     m_local_reads},
    {false, L_SHARD, "kiseki_meta_raft_leader",
     "1 when this node is the shard's Raft leader.", m_leader},
    {false, L_SHARD, "kiseki_meta_raft_term", "Current Raft term of the shard.",
     m_term},
    {false, L_SHARD, "kiseki_meta_raft_commit_index",
     "Highest log index known committed in the shard.", m_commit_index},
    {false, L_SHARD, "kiseki_meta_raft_applied_index",
     "Highest log index applied to the shard's state.", m_applied_index},
    {false, L_SHARD, "kiseki_meta_raft_last_index",
     "Last log index of the shard on this node.", m_last_index},
    {true, L_NONE, "kiseki_meta_raft_appends_total",
     "Raft append requests (batches of entries) from every shard.", m_appends},
    {true, L_NONE, "kiseki_meta_raft_group_commits_total",
     "Group commits: one transaction for the appends of a loop turn.",
     m_flushes},
    {true, L_NONE, "kiseki_meta_raft_fsyncs_total",
     "Raft store write transactions committed (one fsync each): group "
     "commits plus term, vote, truncate and snapshot writes.",
     m_commits},
    {true, L_NONE, "kiseki_meta_raft_entries_written_total",
     "Raft log entries written to the store.", m_entries},
    {true, L_NONE, "kiseki_meta_raft_snapshots_total",
     "Snapshots taken by this node's shards.", m_snapshots},
    {true, L_NONE, "kiseki_meta_raft_snapshots_installed_total",
     "Snapshots installed from a leader.", m_installs},
    {true, L_NONE, "kiseki_meta_raft_messages_sent_total",
     "Raft messages sent to peers.", m_msgs_sent},
    {true, L_NONE, "kiseki_meta_raft_messages_received_total",
     "Raft messages received and delivered to a shard.", m_msgs_recv},
    {true, L_NONE, "kiseki_meta_raft_messages_rejected_total",
     "Raft messages dropped: undecodable or for a shard not hosted here.",
     m_msgs_rejected},
};

/* The `shard` label: one value per shard hosted now (decimal id). */
static int mshards_init(ks_meta_service_t *svc)
{
  size_t n = 0;
  for (vshard_t *s = svc->shards; s != NULL; s = s->next)
    n++;
  if (n == 0 || n > KS_METRIC_VALUES_MAX)
    return -EINVAL;
  svc->mshards = calloc(n, sizeof(struct mshard));
  svc->mshard_labels = calloc(n, sizeof(const char *));
  if (svc->mshards == NULL || svc->mshard_labels == NULL)
    return -ENOMEM; /* freed by ks_meta_service_free */
  size_t i = n;
  for (vshard_t *s = svc->shards; s != NULL; s = s->next) {
    struct mshard *ms = &svc->mshards[--i]; /* the list is newest first */
    ms->s = s;
    snprintf(ms->name, sizeof(ms->name), "%llu", (unsigned long long)s->id);
    svc->mshard_labels[i] = ms->name;
  }
  svc->nmshards = n;
  return 0;
}

int ks_meta_service_metrics(ks_meta_service_t *svc, ks_metrics_t *m)
{
  assert(svc->mshards == NULL); /* once per service */
  int rc = mshards_init(svc);
  if (rc != 0)
    return rc;
  ks_metric_label_t lop = {"op", op_names, OPI_N};
  ks_metric_label_t lres = {"result", res_names, RES_N};
  ks_metric_label_t lshard = {"shard", svc->mshard_labels, svc->nmshards};
  rc = ks_metric_histogram_new(
      m, "kiseki_meta_request_seconds",
      "Time from a request's arrival to its answer, by operation.", &lop,
      latency_bounds, sizeof(latency_bounds) / sizeof(*latency_bounds),
      &svc->latency);
  for (size_t i = 0;
       rc == 0 && i < sizeof(meta_metrics) / sizeof(*meta_metrics); i++) {
    const struct meta_metric *d = &meta_metrics[i];
    const ks_metric_label_t *l = d->label == L_OP       ? &lop
                                 : d->label == L_RESULT ? &lres
                                 : d->label == L_SHARD  ? &lshard
                                                        : NULL;
    rc = d->counter
             ? ks_metric_counter_fn(m, d->name, d->help, l, d->cb, svc, NULL)
             : ks_metric_gauge_fn(m, d->name, d->help, l, d->cb, svc, NULL);
  }
  return rc;
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
  if (svc->opts.snapshot_per_record == 0)
    svc->opts.snapshot_per_record = DEFAULT_SNAPSHOT_PER_RECORD;
  if (svc->opts.snapshot_log_max == 0)
    svc->opts.snapshot_log_max = KS_META_SNAPSHOT_LOG_MAX;
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
    req_done(s->svc, op_index(r->op), r->t0, KS_ECLOSED);
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
  free(svc->mshards);
  free(svc->mshard_labels);
  free(svc);
}
