/*
 * rpc_client.c — the calling side: one connection to one peer, pipelined
 * and multiplexed by request id.
 *
 * States of the client:
 *
 *   IDLE --call--> CONNECTING --ready--> READY --conn lost--> IDLE (reconnect
 *                      |                                     at once if calls
 *                      +--connect failed--> BACKOFF --timer--> IDLE  wait)
 *
 * A call is in exactly one place: the waiting queue (FIFO, bounded by
 * max_queued), the in-flight table (on the wire; hashed by id, bounded by
 * max_inflight), or "done, write pending" (see below).
 *
 * Completion waits for the write.  The caller's iovec data must stay valid
 * until its callback, and libuv may still be writing a call's bulk when the
 * response, a timeout or a close arrives.  So a result that comes while the
 * call's write is pending is stored in the call and delivered from the write
 * callback.  uv_close() cancels pending writes before the close callback, so
 * a closed connection never leaves a call waiting.
 *
 * Timeouts come from one repeating timer per client (KS__TICK_MS) that
 * scans the queue and the in-flight list, rather than one uv_timer per call:
 * a per-call handle would need uv_close() and a callback before the caller
 * could free its call.  The timer runs only while there is something to
 * watch, so an idle client costs nothing.  A call that times out with its
 * write still pending means the peer stopped reading; the connection is then
 * closed.
 *
 * Failure semantics for callers: KS_ECLOSED means the request may or may not
 * have executed (it was on the wire); a connect failure (-ECONNREFUSED,
 * KS_ETIMEDOUT while connecting, KS_ETLS) means it was never sent.
 */
#include "rpc_int.h"

#include "ks/buf.h"
#include "ks/err.h"
#include "ks/log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS__TICK_MS 20
#define KS__BACKOFF_MIN_MS 50
#define KS__BACKOFF_MAX_MS 2000

enum { CL_IDLE, CL_CONNECTING, CL_READY, CL_BACKOFF };
enum { CALL_FREE = 0, CALL_QUEUED, CALL_INFLIGHT, CALL_DONE };

struct ks_rpc_client {
  uv_loop_t *loop;
  ks_rpc_opts_t o;
  SSL_CTX *tls_ctx;
  const char *server_name;
  struct sockaddr_storage addr;
  char name[64];
  ks__conn_t *conn;
  int state;
  bool closing;
  ks_rpc_close_cb close_cb;
  void *close_arg;
  uint64_t next_id;
  ks_rpc_call_t *q_head, *q_tail;
  uint32_t nqueued;
  ks_rpc_call_t *f_head; /* in-flight, doubly linked */
  uint32_t ninflight;
  uint32_t nwriting; /* calls whose write callback is pending */
  ks_rpc_call_t **buckets;
  uint32_t mask;
  uv_timer_t tick;
  bool tick_on;
  uint64_t connect_started_ms;
  uint64_t backoff_ms;
  uint64_t backoff_until_ms;
};

static void client_tick_cb(uv_timer_t *t);
static void client_connect(ks_rpc_client_t *cl);

#define CALL_OF(out) \
  ((ks_rpc_call_t *)((char *)(out)-offsetof(ks_rpc_call_t, _out)))

/* ---- queue and in-flight bookkeeping ------------------------------------ */

static void queue_push(ks_rpc_client_t *cl, ks_rpc_call_t *c)
{
  c->_next = NULL;
  c->_prev = cl->q_tail;
  if (cl->q_tail)
    cl->q_tail->_next = c;
  else
    cl->q_head = c;
  cl->q_tail = c;
  cl->nqueued++;
  c->_state = CALL_QUEUED;
}

static void queue_push_front(ks_rpc_client_t *cl, ks_rpc_call_t *c)
{
  c->_prev = NULL;
  c->_next = cl->q_head;
  if (cl->q_head)
    cl->q_head->_prev = c;
  else
    cl->q_tail = c;
  cl->q_head = c;
  cl->nqueued++;
  c->_state = CALL_QUEUED;
}

static void queue_remove(ks_rpc_client_t *cl, ks_rpc_call_t *c)
{
  if (c->_prev)
    c->_prev->_next = c->_next;
  else
    cl->q_head = c->_next;
  if (c->_next)
    c->_next->_prev = c->_prev;
  else
    cl->q_tail = c->_prev;
  cl->nqueued--;
  c->_state = CALL_FREE;
}

static void inflight_add(ks_rpc_client_t *cl, ks_rpc_call_t *c)
{
  ks_rpc_call_t **b = &cl->buckets[c->_id & cl->mask];
  c->_hnext = *b;
  *b = c;
  c->_prev = NULL;
  c->_next = cl->f_head;
  if (cl->f_head)
    cl->f_head->_prev = c;
  cl->f_head = c;
  cl->ninflight++;
  c->_state = CALL_INFLIGHT;
}

static void inflight_remove(ks_rpc_client_t *cl, ks_rpc_call_t *c)
{
  ks_rpc_call_t **b = &cl->buckets[c->_id & cl->mask];
  while (*b != c)
    b = &(*b)->_hnext;
  *b = c->_hnext;
  if (c->_prev)
    c->_prev->_next = c->_next;
  else
    cl->f_head = c->_next;
  if (c->_next)
    c->_next->_prev = c->_prev;
  cl->ninflight--;
  c->_state = CALL_FREE;
}

static ks_rpc_call_t *inflight_find(ks_rpc_client_t *cl, uint64_t id)
{
  ks_rpc_call_t *c = cl->buckets[id & cl->mask];
  while (c && c->_id != id)
    c = c->_hnext;
  return c;
}

/* ---- completion ------------------------------------------------------- */

static void client_maybe_finish_close(ks_rpc_client_t *cl);
static void client_pump(ks_rpc_client_t *cl);

static void call_complete(ks_rpc_client_t *cl, ks_rpc_call_t *c)
{
  int status = c->_status;
  ks_rpc_msg_t *resp = c->_resp;
  c->_resp = NULL;
  c->_state = CALL_FREE;
  c->_cb(c, status, resp); /* may free c or start new calls */
  client_pump(cl);
  client_maybe_finish_close(cl);
}

/* The call left the queue or the in-flight table with a result. */
static void call_result(ks_rpc_client_t *cl, ks_rpc_call_t *c, int status,
                        ks_rpc_msg_t *resp)
{
  c->_status = status;
  c->_resp = resp;
  c->_state = CALL_DONE;
  if (!c->_writing)
    call_complete(cl, c);
}

static void call_write_done(ks_rpc_out_t *out, int status)
{
  ks_rpc_call_t *c = CALL_OF(out);
  ks_rpc_client_t *cl = c->_client;
  (void)status; /* a failed write is followed by the connection's close */
  c->_writing = 0;
  cl->nwriting--;
  if (c->_state == CALL_DONE)
    call_complete(cl, c);
  else
    client_maybe_finish_close(cl);
}

static void fail_queued(ks_rpc_client_t *cl, int status)
{
  while (cl->q_head) {
    ks_rpc_call_t *c = cl->q_head;
    queue_remove(cl, c);
    call_result(cl, c, status, NULL);
  }
}

static void fail_inflight(ks_rpc_client_t *cl, int status)
{
  while (cl->f_head) {
    ks_rpc_call_t *c = cl->f_head;
    inflight_remove(cl, c);
    call_result(cl, c, status, NULL);
  }
}

/* ---- sending ------------------------------------------------------------ */

static int call_send(ks_rpc_client_t *cl, ks_rpc_call_t *c)
{
  inflight_add(cl, c);
  int rc = ks__conn_write(cl->conn, &c->_out);
  if (rc != 0) {
    inflight_remove(cl, c);
    return rc;
  }
  c->_writing = 1;
  cl->nwriting++;
  return 0;
}

/* Send waiting calls while the connection has room.  A failed send puts the
 * call back at the head of the queue and closes the connection; the close
 * path then reconnects or fails the queue, so a send failure never runs a
 * callback from here. */
static void client_pump(ks_rpc_client_t *cl)
{
  while (cl->state == CL_READY && cl->q_head &&
         cl->ninflight < cl->o.max_inflight) {
    ks_rpc_call_t *c = cl->q_head;
    queue_remove(cl, c);
    int rc = call_send(cl, c);
    if (rc != 0) {
      queue_push_front(cl, c);
      ks__conn_close(cl->conn, rc);
      return;
    }
  }
}

static void tick_ensure(ks_rpc_client_t *cl)
{
  if (cl->tick_on)
    return;
  cl->tick_on = true;
  uv_timer_start(&cl->tick, client_tick_cb, KS__TICK_MS, KS__TICK_MS);
}

/* ---- connection callbacks ------------------------------------------------ */

static void client_conn_ready(ks__conn_t *conn)
{
  ks_rpc_client_t *cl = conn->owner;
  cl->state = CL_READY;
  cl->backoff_ms = 0;
  ks_log_debug("rpc", "connected", "peer=%s tls=%s", cl->name,
               conn->tls ? "yes" : "no");
  client_pump(cl);
}

static void client_conn_msg(ks__conn_t *conn, ks_rpc_msg_t *msg)
{
  ks_rpc_client_t *cl = conn->owner;
  if (msg->kind != KS_RPC_RESPONSE) {
    ks_rpc_msg_free(msg);
    ks__conn_close(conn, KS_EPROTO);
    return;
  }
  ks_rpc_call_t *c = inflight_find(cl, msg->id);
  if (c == NULL) { /* it timed out earlier */
    ks_log_debug("rpc", "late_response", "peer=%s id=%llu", cl->name,
                 (unsigned long long)msg->id);
    ks_rpc_msg_free(msg);
    return;
  }
  inflight_remove(cl, c);
  call_result(cl, c, ks_err_from_wire(msg->status), msg);
}

static void client_conn_closed(ks__conn_t *conn, int reason)
{
  ks_rpc_client_t *cl = conn->owner;
  /* A TLS refusal counts as a failed connect (backoff, fail the waiting
   * calls): reconnecting at once would only be refused again. */
  bool was_ready = cl->state == CL_READY && reason != KS_ETLS;
  ks__conn_log_close(conn, "client", reason);
  free(conn);
  cl->conn = NULL;
  /* The state changes before any callback runs: a callback may start calls. */
  if (!was_ready) {
    int err = reason ? reason : KS_ECLOSED;
    cl->backoff_ms = cl->backoff_ms ? cl->backoff_ms * 2 : KS__BACKOFF_MIN_MS;
    if (cl->backoff_ms > KS__BACKOFF_MAX_MS)
      cl->backoff_ms = KS__BACKOFF_MAX_MS;
    cl->backoff_until_ms = uv_now(cl->loop) + cl->backoff_ms;
    cl->state = CL_BACKOFF;
    ks_log_info("rpc", "connect_failed", "peer=%s err=%s retry_ms=%llu",
                cl->name, ks_errname(err), (unsigned long long)cl->backoff_ms);
    tick_ensure(cl);
    fail_inflight(cl, err); /* only after a TLS refusal: sent, not run */
    fail_queued(cl, err);   /* never sent: fail fast rather than time out */
  } else {
    cl->state = CL_IDLE;
    /* On the wire: the peer may or may not have executed them. */
    fail_inflight(cl, reason == KS_ETLS ? KS_ETLS : KS_ECLOSED);
    if (cl->state == CL_IDLE && cl->q_head && !cl->closing)
      client_connect(cl);
  }
  client_maybe_finish_close(cl);
}

static const ks__conn_cbs_t client_conn_cbs = {
    .ready = client_conn_ready,
    .msg = client_conn_msg,
    .closed = client_conn_closed,
};

static void client_connect(ks_rpc_client_t *cl)
{
  ks__conn_t *conn = malloc(sizeof(*conn));
  int rc =
      conn ? ks__conn_init(conn, cl->loop, cl->tls_ctx, false, cl->server_name,
                           &client_conn_cbs, cl, cl->o.max_body, cl->o.max_bulk)
           : -ENOMEM;
  if (rc != 0) {
    free(conn);
    cl->state = CL_BACKOFF;
    cl->backoff_until_ms = uv_now(cl->loop) + KS__BACKOFF_MIN_MS;
    fail_queued(cl, rc);
    tick_ensure(cl);
    return;
  }
  cl->conn = conn;
  cl->state = CL_CONNECTING;
  cl->connect_started_ms = uv_now(cl->loop);
  tick_ensure(cl);
  ks__conn_connect(conn, (const struct sockaddr *)&cl->addr);
}

/* ---- the timer ------------------------------------------------------------
 */

static void expire_list(ks_rpc_client_t *cl, ks_rpc_call_t *head, bool queued,
                        uint64_t now)
{
  ks_rpc_call_t *c = head;
  while (c) {
    ks_rpc_call_t *next = c->_next;
    if (c->_deadline_ms <= now) {
      bool stuck = !queued && c->_writing;
      if (queued)
        queue_remove(cl, c);
      else
        inflight_remove(cl, c);
      call_result(cl, c, KS_ETIMEDOUT, NULL);
      if (stuck && cl->conn) { /* peer stopped reading our frame */
        ks__conn_close(cl->conn, KS_ETIMEDOUT);
        return;
      }
      next = queued ? cl->q_head : cl->f_head; /* lists may have changed */
    }
    c = next;
  }
}

static void client_tick_cb(uv_timer_t *t)
{
  ks_rpc_client_t *cl = t->data;
  uint64_t now = uv_now(cl->loop);
  if (cl->closing)
    fail_queued(cl, KS_ECANCELED);
  expire_list(cl, cl->f_head, false, now);
  expire_list(cl, cl->q_head, true, now);
  if (cl->state == CL_CONNECTING &&
      now - cl->connect_started_ms >= cl->o.connect_timeout_ms && cl->conn)
    ks__conn_close(cl->conn, KS_ETIMEDOUT);
  if (cl->state == CL_BACKOFF && now >= cl->backoff_until_ms) {
    cl->state = CL_IDLE;
    if (cl->q_head && !cl->closing)
      client_connect(cl);
  }
  bool busy = cl->ninflight || cl->nqueued || cl->state == CL_CONNECTING ||
              cl->state == CL_BACKOFF;
  if (!busy && cl->tick_on && !cl->closing) {
    uv_timer_stop(&cl->tick);
    cl->tick_on = false;
  }
  client_maybe_finish_close(cl);
}

/* ---- public API ------------------------------------------------------------
 */

static uint32_t pow2_at_least(uint32_t n)
{
  uint32_t p = 16;
  while (p < n)
    p <<= 1;
  return p;
}

static void opts_resolve(ks_rpc_opts_t *o, const ks_rpc_opts_t *in)
{
  memset(o, 0, sizeof(*o));
  if (in)
    *o = *in;
  if (!o->max_body)
    o->max_body = KS_RPC_DEFAULT_MAX_BODY;
  if (!o->max_bulk)
    o->max_bulk = KS_RPC_DEFAULT_MAX_BULK;
  if (!o->max_inflight)
    o->max_inflight = KS_RPC_DEFAULT_MAX_INFLIGHT;
  if (!o->max_queued)
    o->max_queued = KS_RPC_DEFAULT_MAX_QUEUED;
  if (!o->connect_timeout_ms)
    o->connect_timeout_ms = KS_RPC_DEFAULT_CONNECT_TIMEOUT_MS;
}

int ks_rpc_client_new(uv_loop_t *loop, const char *host, uint16_t port,
                      const ks_rpc_opts_t *opts, ks_rpc_client_t **out)
{
  *out = NULL;
  ks__sigpipe_ignore();
  ks_rpc_client_t *cl = calloc(1, sizeof(*cl));
  if (cl == NULL)
    return -ENOMEM;
  opts_resolve(&cl->o, opts);
  if (cl->o.max_inflight > (1U << 20)) {
    free(cl);
    return -EINVAL;
  }
  cl->loop = loop;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&cl->addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&cl->addr) != 0) {
    free(cl);
    return -EINVAL;
  }
  snprintf(cl->name, sizeof(cl->name), strchr(host, ':') ? "[%s]:%u" : "%s:%u",
           host, port);
  if (cl->o.tls) {
    cl->tls_ctx = ks__tls_ctx(cl->o.tls, false);
    cl->server_name = ks__tls_server_name(cl->o.tls);
  }
  uint32_t nb = pow2_at_least(2 * cl->o.max_inflight);
  cl->buckets = calloc(nb, sizeof(ks_rpc_call_t *));
  if (cl->buckets == NULL) {
    free(cl);
    return -ENOMEM;
  }
  cl->mask = nb - 1;
  if (uv_timer_init(loop, &cl->tick) != 0) {
    free(cl->buckets);
    free(cl);
    return -ENOMEM;
  }
  cl->tick.data = cl;
  *out = cl;
  return 0;
}

int ks_rpc_call_start(ks_rpc_client_t *cl, ks_rpc_call_t *call, uint16_t opcode,
                      const struct iovec *body, int nbody,
                      const struct iovec *bulk, int nbulk, uint32_t timeout_ms,
                      ks_rpc_call_cb cb)
{
  if (cl->closing)
    return KS_ECLOSED;
  if (cb == NULL)
    return -EINVAL;
  if (cl->nqueued >= cl->o.max_queued)
    return KS_EBUSY;
  if (timeout_ms == 0)
    timeout_ms = KS_RPC_DEFAULT_TIMEOUT_MS;
  ks_rpc_hdr_t h = {.kind = KS_RPC_REQUEST,
                    .opcode = opcode,
                    .id = ++cl->next_id,
                    .timeout_ms = timeout_ms};
  int rc = ks__out_prepare(&call->_out, &h, body, nbody, bulk, nbulk,
                           cl->tls_ctx != NULL);
  if (rc != 0)
    return rc;
  if (ks_iov_total(body, nbody) > cl->o.max_body ||
      ks_iov_total(bulk, nbulk) > cl->o.max_bulk)
    return KS_ETOOBIG;
  call->_client = cl;
  call->_cb = cb;
  call->_id = h.id;
  call->_deadline_ms = uv_now(cl->loop) + timeout_ms;
  call->_status = 0;
  call->_resp = NULL;
  call->_writing = 0;
  call->_out._done = call_write_done;
  if (cl->state == CL_READY && !cl->q_head &&
      cl->ninflight < cl->o.max_inflight) {
    rc = call_send(cl, call);
    if (rc != 0) {
      ks__conn_close(cl->conn, rc);
      return rc;
    }
  } else {
    queue_push(cl, call);
    if (cl->state == CL_IDLE)
      client_connect(cl);
  }
  tick_ensure(cl);
  return 0;
}

uint32_t ks_rpc_client_inflight(const ks_rpc_client_t *cl)
{
  return cl->ninflight;
}

uint32_t ks_rpc_client_queued(const ks_rpc_client_t *cl)
{
  return cl->nqueued;
}

bool ks_rpc_client_connected(const ks_rpc_client_t *cl)
{
  return cl->state == CL_READY;
}

static void client_tick_closed(uv_handle_t *h)
{
  ks_rpc_client_t *cl = h->data;
  ks_rpc_close_cb cb = cl->close_cb;
  void *arg = cl->close_arg;
  free(cl->buckets);
  free(cl);
  if (cb)
    cb(arg);
}

static void client_maybe_finish_close(ks_rpc_client_t *cl)
{
  if (!cl->closing || cl->ninflight || cl->nqueued || cl->nwriting)
    return;
  if (cl->conn) {
    ks__conn_shutdown(cl->conn); /* ends in client_conn_closed */
    return;
  }
  if (uv_is_closing((uv_handle_t *)&cl->tick))
    return;
  uv_timer_stop(&cl->tick);
  uv_close((uv_handle_t *)&cl->tick, client_tick_closed);
}

void ks_rpc_client_close(ks_rpc_client_t *cl, ks_rpc_close_cb cb, void *arg)
{
  cl->closing = true;
  cl->close_cb = cb;
  cl->close_arg = arg;
  /* Run the rest from the loop, not inside the caller's stack: waiting
   * calls' callbacks must not fire re-entrantly. */
  cl->tick_on = true;
  uv_timer_start(&cl->tick, client_tick_cb, 0, KS__TICK_MS);
}
