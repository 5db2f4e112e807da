/*
 * rpc_server.c — the serving side: a listener, its connections, and dispatch
 * of requests to handlers by opcode.
 *
 * Lifetimes.  A server connection (srv_conn_t) is reference counted: one
 * reference while its handle is open, one per request not yet completed.
 * A handler may still hold a request after the connection has gone (the
 * peer crashed); its reply then completes with KS_ECLOSED instead of being
 * written, and the connection's memory is freed with the last reference.
 *
 * Backpressure.  A connection with max_inflight requests unanswered stops
 * reading; TCP's window then pushes back on the peer.  Reading resumes as
 * replies complete.
 *
 * Bad input.  A frame the framer rejects, or a response sent to a server,
 * closes that one connection with a logged reason (rpc_conn.c) and counts
 * in conns_rejected; other connections are untouched.  An unknown opcode is
 * answered with KS_ENOHANDLER, not a close: the frame itself was valid.
 *
 * Graceful close.  Stop accepting, stop reading, let every handler reply and
 * every reply flush, shut each connection down, then free the server.
 * Completions that cannot be written (connection gone) are deferred to a
 * zero-delay timer so that a reply callback never runs inside
 * ks_rpc_reply().
 */
#include "rpc_int.h"

#include "ks/err.h"
#include "ks/log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define KS__MAX_HANDLERS 128

typedef struct srv_conn srv_conn_t;

struct srv_conn {
  ks__conn_t c;
  ks_rpc_server_t *srv;
  srv_conn_t *prev, *next;
  uint32_t inflight;
  uint32_t refs;
  bool throttled;
};

struct ks_rpc_sreq {
  ks_rpc_out_t out;
  srv_conn_t *sc;
  ks_rpc_msg_t *msg;
  ks_rpc_reply_cb cb;
  void *arg;
  int status;
  bool replied;
  ks_rpc_sreq_t *dnext;
};

typedef struct srv_handler {
  uint16_t opcode;
  ks_rpc_handler_fn fn;
  void *ctx;
} srv_handler_t;

struct ks_rpc_server {
  uv_loop_t *loop;
  ks_rpc_opts_t o;
  SSL_CTX *tls_ctx;
  uv_tcp_t listener;
  uint16_t port;
  srv_conn_t *conns;
  uint32_t nreqs; /* requests not yet finished, on any connection */
  srv_handler_t handlers[KS__MAX_HANDLERS];
  int nhandlers;
  ks_rpc_server_stats_t st;
  uv_timer_t defer;
  ks_rpc_sreq_t *defer_head;
  bool closing;
  int open_handles;
  ks_rpc_close_cb close_cb;
  void *close_arg;
};

static void srv_maybe_finish_close(ks_rpc_server_t *srv);

static void sc_unref(srv_conn_t *sc)
{
  if (--sc->refs == 0)
    free(sc);
}

/* ---- request completion ----------------------------------------------- */

static void sreq_finish(ks_rpc_sreq_t *req, int status)
{
  srv_conn_t *sc = req->sc;
  ks_rpc_server_t *srv = sc->srv;
  sc->inflight--;
  srv->nreqs--;
  if (req->cb)
    req->cb(req, status, req->arg);
  ks_rpc_msg_free(req->msg);
  free(req);
  if (!sc->c.closing) {
    if (srv->closing && sc->inflight == 0) {
      ks__conn_shutdown(&sc->c);
    } else if (sc->throttled && sc->inflight < srv->o.max_inflight &&
               !srv->closing) {
      sc->throttled = false;
      ks__conn_read_start(&sc->c);
    }
  }
  sc_unref(sc);
  srv_maybe_finish_close(srv);
}

static void sreq_write_done(ks_rpc_out_t *out, int status)
{
  sreq_finish((ks_rpc_sreq_t *)((char *)out - offsetof(ks_rpc_sreq_t, out)),
              status);
}

static void srv_defer_cb(uv_timer_t *t)
{
  ks_rpc_server_t *srv = t->data;
  while (srv->defer_head) {
    ks_rpc_sreq_t *req = srv->defer_head;
    srv->defer_head = req->dnext;
    sreq_finish(req, req->status);
  }
}

static void sreq_defer(ks_rpc_sreq_t *req, int status)
{
  ks_rpc_server_t *srv = req->sc->srv;
  req->status = status;
  req->dnext = srv->defer_head;
  srv->defer_head = req;
  uv_timer_start(&srv->defer, srv_defer_cb, 0, 0);
}

const ks_rpc_msg_t *ks_rpc_sreq_msg(const ks_rpc_sreq_t *req)
{
  return req->msg;
}

const char *ks_rpc_sreq_peer(const ks_rpc_sreq_t *req)
{
  return req->sc->c.peer;
}

int ks_rpc_reply(ks_rpc_sreq_t *req, int status, const struct iovec *body,
                 int nbody, const struct iovec *bulk, int nbulk,
                 ks_rpc_reply_cb cb, void *arg)
{
  if (req->replied)
    return -EINVAL;
  ks_rpc_hdr_t h = {.kind = KS_RPC_RESPONSE,
                    .opcode = req->msg->opcode,
                    .id = req->msg->id,
                    .status = status};
  int rc = ks__out_prepare(&req->out, &h, body, nbody, bulk, nbulk,
                           req->sc->c.tls != NULL);
  if (rc != 0)
    return rc;
  req->replied = true;
  req->cb = cb;
  req->arg = arg;
  req->out._done = sreq_write_done;
  if (ks__conn_write(&req->sc->c, &req->out) != 0)
    sreq_defer(req, KS_ECLOSED);
  return 0;
}

int ks_rpc_reply_status(ks_rpc_sreq_t *req, int status)
{
  return ks_rpc_reply(req, status, NULL, 0, NULL, 0, NULL, NULL);
}

/* ---- connections --------------------------------------------------------- */

static const srv_handler_t *srv_find(const ks_rpc_server_t *srv, uint16_t op)
{
  for (int i = 0; i < srv->nhandlers; i++)
    if (srv->handlers[i].opcode == op)
      return &srv->handlers[i];
  return NULL;
}

static void srv_conn_msg(ks__conn_t *c, ks_rpc_msg_t *msg)
{
  srv_conn_t *sc = (srv_conn_t *)c;
  ks_rpc_server_t *srv = sc->srv;
  if (msg->kind != KS_RPC_REQUEST) {
    ks_rpc_msg_free(msg);
    ks__conn_close(c, KS_EPROTO);
    return;
  }
  ks_rpc_sreq_t *req = calloc(1, sizeof(*req));
  if (req == NULL) {
    ks_rpc_msg_free(msg);
    ks__conn_close(c, -ENOMEM);
    return;
  }
  req->sc = sc;
  req->msg = msg;
  sc->refs++;
  sc->inflight++;
  srv->nreqs++;
  srv->st.requests++;
  if (sc->inflight >= srv->o.max_inflight) {
    sc->throttled = true;
    ks__conn_read_stop(c);
  }
  const srv_handler_t *h = srv_find(srv, msg->opcode);
  if (h == NULL) {
    ks_rpc_reply_status(req, KS_ENOHANDLER);
    return;
  }
  h->fn(req, h->ctx);
}

static void srv_conn_closed(ks__conn_t *c, int reason)
{
  srv_conn_t *sc = (srv_conn_t *)c;
  ks_rpc_server_t *srv = sc->srv;
  ks__conn_log_close(c, "server", reason);
  if (reason != 0 && reason != KS_ECLOSED && reason != UV_ECONNRESET)
    srv->st.conns_rejected++;
  if (sc->prev)
    sc->prev->next = sc->next;
  else
    srv->conns = sc->next;
  if (sc->next)
    sc->next->prev = sc->prev;
  srv->st.conns_open--;
  sc_unref(sc);
  srv_maybe_finish_close(srv);
}

static const ks__conn_cbs_t srv_conn_cbs = {
    .ready = NULL,
    .msg = srv_conn_msg,
    .closed = srv_conn_closed,
};

static void srv_on_connection(uv_stream_t *listener, int status)
{
  ks_rpc_server_t *srv = listener->data;
  if (status != 0 || srv->closing) {
    ks_log_warn("rpc", "accept_failed", "err=%s", ks_errname(status));
    return;
  }
  srv_conn_t *sc = calloc(1, sizeof(*sc));
  int rc =
      sc ? ks__conn_init(&sc->c, srv->loop, srv->tls_ctx, true, NULL,
                         &srv_conn_cbs, srv, srv->o.max_body, srv->o.max_bulk)
         : -ENOMEM;
  if (rc != 0) {
    free(sc);
    ks_log_error("rpc", "accept_failed", "err=%s", ks_errname(rc));
    return;
  }
  sc->srv = srv;
  sc->refs = 1;
  sc->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = sc;
  srv->conns = sc;
  srv->st.conns_accepted++;
  srv->st.conns_open++;
  if (ks__conn_accept(&sc->c, listener) == 0)
    ks_log_debug("rpc", "conn_accepted", "peer=%s tls=%s", sc->c.peer,
                 srv->tls_ctx ? "yes" : "no");
}

/* ---- server lifecycle ---------------------------------------------------- */

int ks_rpc_server_new(uv_loop_t *loop, const char *host, uint16_t port,
                      const ks_rpc_opts_t *opts, ks_rpc_server_t **out)
{
  struct sockaddr_storage ss;
  *out = NULL;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return -EINVAL;
  ks__sigpipe_ignore();
  ks_rpc_server_t *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return -ENOMEM;
  srv->loop = loop;
  if (opts)
    srv->o = *opts;
  if (!srv->o.max_body)
    srv->o.max_body = KS_RPC_DEFAULT_MAX_BODY;
  if (!srv->o.max_bulk)
    srv->o.max_bulk = KS_RPC_DEFAULT_MAX_BULK;
  if (!srv->o.max_inflight)
    srv->o.max_inflight = KS_RPC_DEFAULT_MAX_INFLIGHT;
  if (srv->o.tls)
    srv->tls_ctx = ks__tls_ctx(srv->o.tls, true);
  int rc = uv_tcp_init(loop, &srv->listener);
  if (rc != 0) {
    free(srv);
    return rc;
  }
  srv->listener.data = srv;
  srv->open_handles = 1;
  uv_timer_init(loop, &srv->defer); /* cannot fail for timers */
  srv->defer.data = srv;
  srv->open_handles++;
  rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 511, srv_on_connection);
  if (rc == 0) {
    int len = sizeof(ss);
    rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
  }
  if (rc != 0) {
    ks_rpc_server_close(srv, NULL, NULL);
    return rc;
  }
  srv->port =
      ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
  *out = srv;
  return 0;
}

uint16_t ks_rpc_server_port(const ks_rpc_server_t *srv)
{
  return srv->port;
}

int ks_rpc_server_handle(ks_rpc_server_t *srv, uint16_t opcode,
                         ks_rpc_handler_fn fn, void *ctx)
{
  if (fn == NULL)
    return -EINVAL;
  if (srv_find(srv, opcode))
    return -EEXIST;
  if (srv->nhandlers == KS__MAX_HANDLERS)
    return -ENOSPC;
  srv->handlers[srv->nhandlers++] = (srv_handler_t){opcode, fn, ctx};
  return 0;
}

void ks_rpc_server_stats(const ks_rpc_server_t *srv, ks_rpc_server_stats_t *st)
{
  *st = srv->st;
}

static void srv_handle_closed(uv_handle_t *h)
{
  ks_rpc_server_t *srv = h->data;
  if (--srv->open_handles > 0)
    return;
  ks_rpc_close_cb cb = srv->close_cb;
  void *arg = srv->close_arg;
  free(srv);
  if (cb)
    cb(arg);
}

static void srv_maybe_finish_close(ks_rpc_server_t *srv)
{
  if (!srv->closing || srv->conns || srv->nreqs || srv->defer_head ||
      uv_is_closing((uv_handle_t *)&srv->defer))
    return;
  uv_close((uv_handle_t *)&srv->defer, srv_handle_closed);
}

void ks_rpc_server_close(ks_rpc_server_t *srv, ks_rpc_close_cb cb, void *arg)
{
  srv->closing = true;
  srv->close_cb = cb;
  srv->close_arg = arg;
  uv_close((uv_handle_t *)&srv->listener, srv_handle_closed);
  for (srv_conn_t *sc = srv->conns; sc; sc = sc->next) {
    ks__conn_read_stop(&sc->c);
    if (sc->inflight == 0)
      ks__conn_shutdown(&sc->c);
  }
  srv_maybe_finish_close(srv);
}
