/*
 * rpc_conn.c — one RPC connection over a libuv TCP handle, plain or TLS.
 *
 * Reading.  Small frames arrive in batches, so reads normally land in a
 * staging buffer (KS__STAGE_SIZE) and are copied into the framer: one
 * syscall, many frames.  When the framer is in the middle of a large payload
 * (at least KS__DIRECT_MIN bytes left), alloc_cb hands libuv the framer's own
 * window instead, so bulk data goes from the kernel straight to its final
 * place: no copy.  TLS always reads ciphertext into the staging buffer and
 * SSL_read() copies the plaintext into the framer window (rpc_tls.c).
 *
 * Writing.  A frame is header + body pieces + bulk pieces; libuv keeps
 * pointers only, so the caller's bulk data is never copied on the plain TCP
 * path.  Frames are not written one by one: a server answering a batch of
 * requests (kiseki-meta completes dozens of reads per barrier) or a client
 * issuing many calls in one callback would make one writev syscall each,
 * which bench/s3 measured at 14-38% of kiseki-meta's CPU.  So plain-TCP
 * frames queue on the connection and an idle handle, active only while the
 * queue is non-empty, writes them with one uv_write at the start of the next
 * loop turn (an active idle handle also keeps that turn's poll from
 * blocking, so nothing waits for unrelated I/O).  Order is kept; each
 * frame's _done runs when the shared write completes.  Over TLS, small
 * frames are encrypted at once and their records accumulate in the TLS
 * output, which the batch write sends as one buffer; a bulk frame flushes
 * the batch and goes on its own (rpc_tls.c).
 *
 * Closing.  ks__conn_close() is idempotent and keeps the first reason.
 * uv_close() cancels pending writes (their callbacks run with UV_ECANCELED)
 * before the close callback, so when cbs->closed runs nothing refers to the
 * connection any more and its owner may free it.
 *
 * Failure modes, each closing the connection with a logged reason: read
 * error or EOF (KS_ECLOSED), malformed frame (the framer's error), TLS
 * failure (KS_ETLS), owner's request.
 */
#include "rpc_int.h"

#include "ks/bigbuf.h"
#include "ks/err.h"
#include "ks/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void conn_set_peer(ks__conn_t *c)
{
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
    return;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    uv_ip4_name(a, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
}

void ks__sigpipe_ignore(void)
{
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
}

int ks__conn_init(ks__conn_t *c, uv_loop_t *loop, SSL_CTX *tls_ctx, bool server,
                  const char *server_name, const ks__conn_cbs_t *cbs,
                  void *owner, uint32_t max_body, uint64_t max_bulk)
{
  memset(c, 0, sizeof(*c));
  c->loop = loop;
  c->cbs = cbs;
  c->owner = owner;
  snprintf(c->peer, sizeof(c->peer), "-");
  ks__framer_init(&c->fr, max_body, max_bulk);
  c->stage = malloc(KS__STAGE_SIZE);
  if (c->stage == NULL)
    return -ENOMEM;
  if (tls_ctx != NULL) {
    int rc = ks__tls_conn_new(c, tls_ctx, server, server_name);
    if (rc != 0) {
      free(c->stage);
      return rc;
    }
  }
  int rc = uv_tcp_init(loop, &c->tcp);
  if (rc != 0) {
    if (c->tls)
      ks__tls_conn_free(c);
    free(c->stage);
    return rc;
  }
  c->tcp.data = c;
  uv_idle_init(loop, &c->flush); /* cannot fail */
  c->flush.data = c;
  return 0;
}

/* Fail the frames that were queued but never handed to libuv. */
static void conn_batch_fail(ks__conn_t *c)
{
  ks_rpc_out_t *out = c->batch_head;
  c->batch_head = c->batch_tail = NULL;
  c->batch_frames = c->batch_iovs = 0;
  while (out != NULL) {
    ks_rpc_out_t *next = out->_next;
    out->_done(out, KS_ECLOSED);
    out = next;
  }
}

static void conn_close_cb(uv_handle_t *h)
{
  ks__conn_t *c = h->data;
  if (--c->closes > 0)
    return;
  conn_batch_fail(c);
  ks__framer_reset(&c->fr);
  if (c->tls)
    ks__tls_conn_free(c);
  free(c->stage);
  c->stage = NULL;
  c->cbs->closed(c, c->reason);
}

static bool conn_flush_now(ks__conn_t *c);

void ks__conn_close(ks__conn_t *c, int reason)
{
  if (c->closing)
    return;
  /* What was answered before the failure still goes out (uv_write tries
   * at once; uv_close cancels only what the socket did not take). */
  conn_flush_now(c);
  c->closing = true;
  c->reason = reason;
  c->reading = false;
  c->closes = 2;
  uv_close((uv_handle_t *)&c->flush, conn_close_cb);
  uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
  ks__conn_t *c = req->data;
  (void)status;
  ks__conn_close(c, 0);
}

void ks__conn_shutdown(ks__conn_t *c)
{
  if (c->closing || c->shutting)
    return;
  c->shutting = true;
  ks__conn_read_stop(c);
  ks__conn_flush(c); /* uv_shutdown waits for what libuv holds */
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_shutdown_cb) !=
      0)
    ks__conn_close(c, 0);
}

void ks__conn_set_ready(ks__conn_t *c)
{
  if (c->is_ready || c->closing)
    return;
  c->is_ready = true;
  if (c->cbs->ready)
    c->cbs->ready(c);
}

int ks__conn_deliver(ks__conn_t *c, ks_rpc_msg_t *msg)
{
  c->cbs->msg(c, msg);
  return c->closing ? KS_ECLOSED : 0;
}

/* Copy staged plaintext into the framer, delivering each complete frame. */
static void conn_feed(ks__conn_t *c, const uint8_t *p, size_t n)
{
  while (n > 0 && !c->closing) {
    uint8_t *w;
    size_t wn;
    ks_rpc_msg_t *msg;
    ks__framer_window(&c->fr, &w, &wn);
    if (wn > n)
      wn = n;
    memcpy(w, p, wn);
    p += wn;
    n -= wn;
    int rc = ks__framer_commit(&c->fr, wn, &msg);
    if (rc != 0) {
      ks__conn_close(c, rc);
      return;
    }
    if (msg != NULL)
      ks__conn_deliver(c, msg);
  }
}

static void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  ks__conn_t *c = h->data;
  (void)hint;
  /* TLS: only a sealed bulk is ciphertext that can land in place (tls_pump
   * has always drained the staging buffer before libuv reads again). */
  if (c->tls == NULL || ks__framer_raw(&c->fr)) {
    uint8_t *w;
    size_t wn;
    ks__framer_window(&c->fr, &w, &wn);
    if (wn >= KS__DIRECT_MIN) {
      c->direct = true;
      *buf =
          uv_buf_init((char *)w, (unsigned)(wn > UINT32_MAX ? UINT32_MAX : wn));
      return;
    }
  }
  c->direct = false;
  *buf = uv_buf_init((char *)c->stage, KS__STAGE_SIZE);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  ks__conn_t *c = s->data;
  (void)buf;
  if (nread < 0) {
    ks__conn_close(c, nread == UV_EOF ? KS_ECLOSED : (int)nread);
    return;
  }
  if (nread == 0 || c->closing)
    return;
  if (c->tls && !c->direct) {
    ks__tls_on_read(c, (size_t)nread);
    return;
  }
  if (!c->direct) {
    conn_feed(c, c->stage, (size_t)nread);
    return;
  }
  ks_rpc_msg_t *msg;
  int rc = ks__framer_commit(&c->fr, (size_t)nread, &msg);
  if (rc != 0)
    ks__conn_close(c, rc);
  else if (msg != NULL)
    ks__conn_deliver(c, msg);
}

void ks__conn_read_start(ks__conn_t *c)
{
  if (c->reading || c->closing)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0)
    c->reading = true;
}

void ks__conn_read_stop(ks__conn_t *c)
{
  if (!c->reading || c->closing)
    return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = false;
}

/* Both ends are up: tune the socket, start reading, maybe start TLS. */
static void conn_established(ks__conn_t *c)
{
  conn_set_peer(c);
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 30);
  ks__conn_read_start(c);
  if (c->tls == NULL) {
    ks__conn_set_ready(c);
    return;
  }
  int rc = ks__tls_start(c);
  if (rc != 0)
    ks__conn_close(c, rc);
}

static void conn_connect_cb(uv_connect_t *req, int status)
{
  ks__conn_t *c = req->data;
  if (c->closing)
    return;
  if (status != 0) {
    ks__conn_close(c, status);
    return;
  }
  conn_established(c);
}

int ks__conn_connect(ks__conn_t *c, const struct sockaddr *sa)
{
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, host, sizeof(host));
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, ntohs(a->sin_port));
  } else {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, host, sizeof(host));
    snprintf(c->peer, sizeof(c->peer), "[%s]:%d", host, ntohs(a->sin6_port));
  }
  c->connect_req.data = c;
  int rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, conn_connect_cb);
  if (rc != 0)
    ks__conn_close(c, rc);
  return rc;
}

int ks__conn_accept(ks__conn_t *c, uv_stream_t *listener)
{
  int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
  if (rc != 0) {
    ks__conn_close(c, rc);
    return rc;
  }
  conn_established(c);
  return 0;
}

/* The write of a batch (plain TCP) completed: every frame in it is done. */
static void conn_write_cb(uv_write_t *req, int status)
{
  ks_rpc_out_t *out = req->data;
  ks_bigbuf_free(out->_wbuf, out->_wcap); /* TLS: the batch's ciphertext */
  out->_wbuf = NULL;
  while (out != NULL) {
    ks_rpc_out_t *next = out->_next; /* _done may free out */
    out->_next = NULL;
    out->_done(out, status == 0 ? 0 : KS_ECLOSED);
    out = next;
  }
}

/* Write the batch; false if libuv refused it (it is then still queued). */
static bool conn_flush_now(ks__conn_t *c)
{
  ks_rpc_out_t *head = c->batch_head;
  if (head == NULL || c->closing)
    return true;
  uv_buf_t bufs[KS__BATCH_IOVS + 1 + 2 * KS_RPC_IOV_MAX];
  unsigned n = 0;
  if (c->tls != NULL) { /* the batch's records, already encrypted */
    size_t len;
    head->_wbuf = ks__tls_take_out(c, &len, &head->_wcap);
    bufs[n++] = uv_buf_init(head->_wbuf, (unsigned)len);
  } else {
    for (ks_rpc_out_t *o = head; o != NULL; o = o->_next)
      for (int i = 0; i < o->_iovcnt; i++)
        bufs[n++] =
            uv_buf_init(o->_iov[i].iov_base, (unsigned)o->_iov[i].iov_len);
  }
  c->batch_head = c->batch_tail = NULL;
  c->batch_frames = c->batch_iovs = 0;
  uv_idle_stop(&c->flush);
  head->_uv.data = head;
  if (uv_write(&head->_uv, (uv_stream_t *)&c->tcp, bufs, n, conn_write_cb) == 0)
    return true;
  ks_bigbuf_free(head->_wbuf, head->_wcap);
  head->_wbuf = NULL;
  /* Only on a broken handle: the close callback fails the batch, as libuv
   * does with the writes it holds. */
  c->batch_head = head;
  for (c->batch_tail = head; c->batch_tail->_next != NULL;)
    c->batch_tail = c->batch_tail->_next;
  return false;
}

void ks__conn_flush(ks__conn_t *c)
{
  if (!conn_flush_now(c))
    ks__conn_close(c, KS_ECLOSED);
}

static void conn_flush_cb(uv_idle_t *h)
{
  ks__conn_flush(h->data);
}

int ks__conn_write(ks__conn_t *c, ks_rpc_out_t *out)
{
  if (c->closing || !c->is_ready)
    return KS_ECLOSED;
  out->_uv.data = out;
  out->_wbuf = NULL;
  out->_next = NULL;
  if (c->tls) {
    int rc = ks__tls_write(c, out);
    if (rc != KS__TLS_QUEUED)
      return rc;
  } else if (c->batch_iovs + out->_iovcnt > KS__BATCH_IOVS) {
    ks__conn_flush(c);
  }
  if (c->batch_tail != NULL)
    c->batch_tail->_next = out;
  else
    c->batch_head = out;
  c->batch_tail = out;
  c->batch_iovs += out->_iovcnt;
  if (++c->batch_frames >= KS__BATCH_FRAMES)
    ks__conn_flush(c);
  else if (c->batch_frames == 1)
    uv_idle_start(&c->flush, conn_flush_cb);
  return 0;
}

void ks__conn_log_close(const ks__conn_t *c, const char *role, int reason)
{
  if (reason == 0 || reason == KS_ECLOSED || reason == UV_ECONNRESET) {
    ks_log_debug("rpc", "conn_closed", "role=%s peer=%s reason=%s", role,
                 c->peer, ks_errname(reason));
    return;
  }
  char q[128];
  ks_log_warn("rpc", "conn_dropped", "role=%s peer=%s err=%s reason=%s", role,
              c->peer, ks_errname(reason),
              ks_log_quote(q, sizeof(q), ks_strerror(reason)));
}
