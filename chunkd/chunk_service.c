/*
 * chunk_service.c — chunkd's RPC handlers (contract in ks/chunk_service.h).
 *
 * A request's life:
 *   handler (loop)   decode the body, find the device, make a job, queue it
 *                    on its device (or answer at once: KS_EPROTO, -ENODEV for
 *                    an unknown device, KS_EBUSY when the queue is full);
 *   job_work (pool)  the blocking store call;
 *   job_after (loop) start the device's next job, encode the answer, reply
 *                    (bulk = the store's buffer);
 *   job_replied      free the job, and with it the buffer.
 * So a job owns its request from handler to reply, and its read buffer until
 * the reply is written.  Failures other than "not found" / "exists" are
 * logged with the operation and key (corruption is logged by the store).
 */
#include "ks/chunk_service.h"

#include "ks/codec.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/proto_chunk.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define COMP "chunkd"

typedef struct chunk_job chunk_job_t;

struct chunk_job {
  uv_work_t cj_work;
  ks_chunk_service_t *cj_svc;
  ks_rpc_sreq_t *cj_req;
  const ks_rpc_msg_t *cj_msg;
  chunk_job_t *cj_next; /* device FIFO */
  size_t cj_queue;      /* index into sv_q: a device, or sv_ndev for DEV_LIST */
  uint16_t cj_op;
  int cj_status;
  ks_frag_put_req_t cj_put;
  ks_frag_req_t cj_frag;
  ks_frag_info_t cj_info;
  ks_frag_buf_t cj_buf;
  ks_dev_info_t *cj_devs;
  size_t cj_ndevs;
  ks_enc_t cj_body; /* reply body */
};

typedef struct job_queue {
  chunk_job_t *jq_head, *jq_tail;
  uint32_t jq_running, jq_waiting;
} job_queue_t;

struct ks_chunk_service {
  uv_loop_t *sv_loop;
  ks_chunk_store_t *sv_store;
  uint32_t sv_dev_jobs, sv_dev_queue;
  uint32_t sv_jobs;
  size_t sv_ndev;
  ks_chunk_service_stats_t sv_stats;
  job_queue_t sv_q[]; /* one per device, then DEV_LIST's */
};

static ks_chunk_op_stat_t op_stat(uint16_t op)
{
  switch (op) {
  case KS_OP_FRAG_PUT:
    return KS_CHUNK_STAT_PUT;
  case KS_OP_FRAG_GET:
    return KS_CHUNK_STAT_GET;
  case KS_OP_FRAG_DELETE:
    return KS_CHUNK_STAT_DELETE;
  case KS_OP_FRAG_STAT:
    return KS_CHUNK_STAT_STAT;
  default:
    return KS_CHUNK_STAT_DEV_LIST;
  }
}

const char *ks_chunk_op_stat_name(ks_chunk_op_stat_t op)
{
  static const char *const names[KS_CHUNK_STAT_OPS] = {"put", "get", "delete",
                                                       "stat", "dev_list"};
  return op < KS_CHUNK_STAT_OPS ? names[op] : "unknown";
}

static const char *op_name(uint16_t op)
{
  return ks_chunk_op_stat_name(op_stat(op));
}

static void job_free(chunk_job_t *j)
{
  assert(j->cj_svc->sv_jobs > 0);
  j->cj_svc->sv_jobs--;
  ks_frag_buf_free(&j->cj_buf);
  free(j->cj_devs);
  ks_enc_free(&j->cj_body);
  free(j);
}

static void job_replied(ks_rpc_sreq_t *req, int status, void *arg)
{
  (void)req;
  (void)status;
  job_free(arg);
}

/* Answer with a status only and free the job. */
static void job_fail(chunk_job_t *j, int status)
{
  j->cj_svc->sv_stats.errors[op_stat(j->cj_op)]++;
  if (ks_rpc_reply(j->cj_req, status, NULL, 0, NULL, 0, job_replied, j) != 0)
    job_free(j); /* cannot happen with an empty reply; keep no leak if so */
}

/* ---- the disk side (threadpool) ----------------------------------------- */

static void job_put(chunk_job_t *j)
{
  const ks_frag_put_req_t *p = &j->cj_put;
  ks_frag_info_t info = {
      .len = j->cj_msg->bulk_len, .crc = p->crc, .k = p->k, .m = p->m};
  struct iovec v = {j->cj_msg->bulk, (size_t)j->cj_msg->bulk_len};
  j->cj_status = ks_chunk_store_put(j->cj_svc->sv_store, j->cj_queue, &p->key,
                                    &info, &v, v.iov_len ? 1 : 0);
}

static void job_dev_list(chunk_job_t *j)
{
  ks_chunk_store_t *st = j->cj_svc->sv_store;
  size_t n = ks_chunk_store_dev_count(st);
  j->cj_devs = calloc(n, sizeof(*j->cj_devs));
  if (j->cj_devs == NULL) {
    j->cj_status = -ENOMEM;
    return;
  }
  for (size_t i = 0; i < n; i++)
    ks_chunk_store_dev_info(st, i, &j->cj_devs[i]);
  j->cj_ndevs = n;
  j->cj_status = 0;
}

static void job_work(uv_work_t *w)
{
  chunk_job_t *j = w->data;
  ks_chunk_store_t *st = j->cj_svc->sv_store;
  const ks_frag_req_t *r = &j->cj_frag;
  switch (j->cj_op) {
  case KS_OP_FRAG_PUT:
    job_put(j);
    break;
  case KS_OP_FRAG_GET:
    j->cj_status = ks_chunk_store_get(st, j->cj_queue, &r->key, r->offset,
                                      r->length, &j->cj_info, &j->cj_buf);
    break;
  case KS_OP_FRAG_STAT:
    j->cj_status = ks_chunk_store_stat(st, j->cj_queue, &r->key, &j->cj_info);
    break;
  case KS_OP_FRAG_DELETE:
    j->cj_status = ks_chunk_store_delete(st, j->cj_queue, &r->key);
    break;
  default:
    job_dev_list(j);
    break;
  }
}

/* ---- the loop side ------------------------------------------------------ */

static void job_after(uv_work_t *w, int status);

static void queue_pump(ks_chunk_service_t *svc, job_queue_t *q)
{
  uint32_t limit = q == &svc->sv_q[svc->sv_ndev] ? 1 : svc->sv_dev_jobs;
  while (q->jq_head && q->jq_running < limit) {
    chunk_job_t *j = q->jq_head;
    q->jq_head = j->cj_next;
    if (q->jq_head == NULL)
      q->jq_tail = NULL;
    q->jq_waiting--;
    q->jq_running++;
    j->cj_work.data = j;
    int rc = uv_queue_work(svc->sv_loop, &j->cj_work, job_work, job_after);
    if (rc != 0) {
      q->jq_running--;
      job_fail(j, rc);
    }
  }
}

static void log_failure(const chunk_job_t *j)
{
  int rc = j->cj_status;
  if (rc == 0 || rc == -ENOENT || rc == -EEXIST || rc == KS_ECORRUPT)
    return;
  char hex[KS_HEX_LEN(KS_CHUNK_ID_LEN) + 1];
  const ks_frag_key_t *k =
      j->cj_op == KS_OP_FRAG_PUT ? &j->cj_put.key : &j->cj_frag.key;
  ks_hex_encode(hex, sizeof(hex), k->chunk_id, KS_CHUNK_ID_LEN);
  ks_log_warn(COMP, "fragment_op_failed", "op=%s chunk=%s index=%u err=%s",
              op_name(j->cj_op), hex, (unsigned)k->index, ks_errname(rc));
}

/* Encode the answer's body; returns the bulk to send (GET) in *bulk. */
static void job_answer(chunk_job_t *j, struct iovec *bulk)
{
  bulk->iov_base = NULL;
  bulk->iov_len = 0;
  if (j->cj_op == KS_OP_FRAG_GET) {
    ks_frag_get_resp_t r = {.info = j->cj_info, .offset = j->cj_frag.offset};
    ks_frag_get_resp_encode(&j->cj_body, &r);
    bulk->iov_base = (void *)j->cj_buf.data;
    bulk->iov_len = j->cj_buf.len;
  } else if (j->cj_op == KS_OP_FRAG_STAT) {
    ks_frag_info_encode(&j->cj_body, &j->cj_info);
  } else if (j->cj_op == KS_OP_DEV_LIST) {
    ks_dev_list_resp_encode(&j->cj_body, j->cj_devs, j->cj_ndevs);
  }
}

static void job_after(uv_work_t *w, int status)
{
  chunk_job_t *j = w->data;
  ks_chunk_service_t *svc = j->cj_svc;
  job_queue_t *q = &svc->sv_q[j->cj_queue];
  q->jq_running--;
  queue_pump(svc, q);
  if (status != 0) /* UV_ECANCELED: never started */
    j->cj_status = status;
  log_failure(j);
  if (j->cj_status != 0) {
    job_fail(j, j->cj_status);
    return;
  }
  struct iovec bulk;
  job_answer(j, &bulk);
  int rc = ks_enc_finish(&j->cj_body);
  if (rc != 0) {
    job_fail(j, rc);
    return;
  }
  struct iovec body = {j->cj_body.buf.data, j->cj_body.buf.len};
  if (j->cj_op == KS_OP_FRAG_PUT)
    svc->sv_stats.bytes_put += j->cj_msg->bulk_len;
  svc->sv_stats.bytes_got += bulk.iov_len;
  rc = ks_rpc_reply(j->cj_req, 0, &body, body.iov_len ? 1 : 0, &bulk,
                    bulk.iov_len ? 1 : 0, job_replied, j);
  if (rc != 0)
    job_fail(j, rc);
}

/* Decode the request into the job and pick its queue. */
static int job_decode(ks_chunk_service_t *svc, chunk_job_t *j)
{
  const ks_rpc_msg_t *m = j->cj_msg;
  const ks_id_t *dev = &j->cj_frag.dev;
  int rc;
  if (j->cj_op == KS_OP_DEV_LIST) {
    j->cj_queue = svc->sv_ndev;
    return m->body_len == 0 && m->bulk_len == 0 ? 0 : KS_EPROTO;
  }
  if (j->cj_op == KS_OP_FRAG_PUT) {
    rc = ks_frag_put_req_decode(m->body, m->body_len, &j->cj_put);
    dev = &j->cj_put.dev;
  } else {
    rc = ks_frag_req_decode(m->body, m->body_len, j->cj_op, &j->cj_frag);
    if (rc == 0 && m->bulk_len != 0)
      rc = KS_EPROTO;
  }
  if (rc != 0)
    return rc;
  /* -ENODEV, not the store's -ENOENT: "no such fragment" is an answer
   * about data, while an unknown device means the caller's device list is
   * stale (a device replaced under a new id) and it should list again. */
  int idx = ks_chunk_store_dev_find(svc->sv_store, dev);
  if (idx < 0)
    return -ENODEV;
  j->cj_queue = (size_t)idx;
  return 0;
}

static int job_submit(ks_chunk_service_t *svc, chunk_job_t *j)
{
  job_queue_t *q = &svc->sv_q[j->cj_queue];
  if (q->jq_waiting >= svc->sv_dev_queue)
    return KS_EBUSY;
  if (q->jq_tail)
    q->jq_tail->cj_next = j;
  else
    q->jq_head = j;
  q->jq_tail = j;
  q->jq_waiting++;
  queue_pump(svc, q);
  return 0;
}

static void frag_handler(ks_rpc_sreq_t *req, void *ctx)
{
  ks_chunk_service_t *svc = ctx;
  chunk_job_t *j = calloc(1, sizeof(*j));
  if (j == NULL) {
    ks_rpc_reply_status(req, -ENOMEM);
    return;
  }
  svc->sv_jobs++;
  j->cj_svc = svc;
  j->cj_req = req;
  j->cj_msg = ks_rpc_sreq_msg(req);
  j->cj_op = j->cj_msg->opcode;
  svc->sv_stats.requests[op_stat(j->cj_op)]++;
  int rc = job_decode(svc, j);
  if (rc == 0)
    rc = job_submit(svc, j);
  if (rc != 0)
    job_fail(j, rc);
}

/* ---- life cycle --------------------------------------------------------- */

int ks_chunk_service_new(uv_loop_t *loop, ks_chunk_store_t *st,
                         const ks_chunk_service_opts_t *opts,
                         ks_chunk_service_t **out)
{
  size_t ndev = ks_chunk_store_dev_count(st);
  ks_chunk_service_t *svc =
      calloc(1, sizeof(*svc) + (ndev + 1) * sizeof(job_queue_t));
  *out = NULL;
  if (svc == NULL)
    return -ENOMEM;
  svc->sv_loop = loop;
  svc->sv_store = st;
  svc->sv_ndev = ndev;
  svc->sv_dev_jobs =
      opts && opts->dev_jobs ? opts->dev_jobs : KS_CHUNK_DEFAULT_DEV_JOBS;
  svc->sv_dev_queue =
      opts && opts->dev_queue ? opts->dev_queue : KS_CHUNK_DEFAULT_DEV_QUEUE;
  *out = svc;
  return 0;
}

int ks_chunk_service_register(ks_chunk_service_t *svc, ks_rpc_server_t *srv)
{
  static const uint16_t ops[] = {KS_OP_FRAG_PUT, KS_OP_FRAG_GET,
                                 KS_OP_FRAG_DELETE, KS_OP_FRAG_STAT,
                                 KS_OP_DEV_LIST};
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
    int rc = ks_rpc_server_handle(srv, ops[i], frag_handler, svc);
    if (rc != 0)
      return rc;
  }
  return 0;
}

void ks_chunk_service_stats(const ks_chunk_service_t *svc,
                            ks_chunk_service_stats_t *out)
{
  *out = svc->sv_stats;
}

uint32_t ks_chunk_service_jobs(const ks_chunk_service_t *svc)
{
  return svc->sv_jobs;
}

void ks_chunk_service_free(ks_chunk_service_t *svc)
{
  if (svc == NULL)
    return;
  assert(svc->sv_jobs == 0);
  free(svc);
}
