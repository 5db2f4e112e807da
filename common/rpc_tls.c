/*
 * rpc_tls.c — the TLS 1.3 transport: OpenSSL driven through memory BIOs on
 * top of a libuv TCP connection.
 *
 * Why memory BIOs: libuv owns the socket and the event loop, so OpenSSL must
 * never touch the fd.  Ciphertext read by libuv is pushed into the read BIO;
 * SSL_read() decrypts straight into the framer's window (no plaintext
 * staging copy); SSL_write() encrypts into the write BIO, which we drain into
 * one buffer per frame and hand to uv_write.
 *
 * Policy: TLS 1.3 only; both sides present a certificate and both verify the
 * peer's chain against the cluster CA (SSL_VERIFY_FAIL_IF_NO_PEER_CERT), so
 * an unsigned or foreign certificate is refused during the handshake.  No
 * session tickets or caches: connections are long-lived, one per peer pair.
 *
 * Failure modes: any handshake or record error closes the connection with
 * KS_ETLS and logs OpenSSL's reason (and the certificate verification
 * result, when that is what failed).  A TLS 1.3 server checks the client's
 * certificate after the client has already finished its side, so a client
 * with a bad certificate sees the refusal as an alert on its first read: its
 * calls then fail with KS_ETLS, not a timeout.
 */
#include "rpc_int.h"

#include "ks/err.h"
#include "ks/log.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

struct ks_rpc_tls {
  SSL_CTX *client;
  SSL_CTX *server;
  char *server_name;
};

struct ks__tls_conn {
  SSL *ssl;
  BIO *rbio; /* ciphertext in; owned by ssl */
  BIO *wbio; /* ciphertext out; owned by ssl */
  bool server;
  bool handshake_done;
};

/* Log OpenSSL's error queue as one event and empty it. */
static void tls_log_errors(const char *event, const char *what,
                           const char *peer)
{
  char reason[256] = "unknown";
  char q[300];
  unsigned long e = ERR_get_error();
  if (e != 0)
    ERR_error_string_n(e, reason, sizeof(reason));
  ERR_clear_error();
  ks_log_warn("rpc", event, "peer=%s what=%s reason=%s", peer, what,
              ks_log_quote(q, sizeof(q), reason));
}

static SSL_CTX *tls_ctx_new(const ks_rpc_tls_opts_t *o, bool server)
{
  SSL_CTX *ctx =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == NULL)
    return NULL;
  const char *step = "protocol";
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
    goto err;
  step = "ca_file";
  if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
    goto err;
  step = "cert_file";
  if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
    goto err;
  step = "key_file";
  if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
    goto err;
  step = "key_mismatch";
  if (SSL_CTX_check_private_key(ctx) != 1)
    goto err;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (server)
    SSL_CTX_set_num_tickets(ctx, 0);
  return ctx;
err:
  tls_log_errors("tls_config_failed", step, "-");
  SSL_CTX_free(ctx);
  return NULL;
}

int ks_rpc_tls_new(const ks_rpc_tls_opts_t *opts, ks_rpc_tls_t **out)
{
  *out = NULL;
  if (!opts || !opts->ca_file || !opts->cert_file || !opts->key_file)
    return -EINVAL;
  ks_rpc_tls_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return -ENOMEM;
  t->client = tls_ctx_new(opts, false);
  if (t->client == NULL)
    goto err;
  t->server = tls_ctx_new(opts, true);
  if (t->server == NULL)
    goto err;
  if (opts->server_name) {
    t->server_name = strdup(opts->server_name);
    if (t->server_name == NULL)
      goto err;
  }
  *out = t;
  return 0;
err:
  ks_rpc_tls_free(t);
  return KS_ETLS;
}

void ks_rpc_tls_free(ks_rpc_tls_t *tls)
{
  if (tls == NULL)
    return;
  SSL_CTX_free(tls->client);
  SSL_CTX_free(tls->server);
  free(tls->server_name);
  free(tls);
}

SSL_CTX *ks__tls_ctx(ks_rpc_tls_t *tls, bool server)
{
  return server ? tls->server : tls->client;
}

const char *ks__tls_server_name(const ks_rpc_tls_t *tls)
{
  return tls->server_name;
}

/* Client role: pin the name (DNS) or address (IP) the server must carry. */
static int tls_expect_name(SSL *ssl, const char *name)
{
  unsigned char addr[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, name, addr) == 1 ||
      inet_pton(AF_INET6, name, addr) == 1)
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
               ? 0
               : KS_ETLS;
  if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1)
    return KS_ETLS;
  return 0;
}

int ks__tls_conn_new(ks__conn_t *c, SSL_CTX *ctx, bool server,
                     const char *server_name)
{
  ks__tls_conn_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return -ENOMEM;
  t->server = server;
  t->ssl = SSL_new(ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio)
    goto err;
  /* An empty read BIO means "wait for more", not end of stream. */
  BIO_set_mem_eof_return(t->rbio, -1);
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio); /* ssl owns both BIOs now */
  if (server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (server_name && tls_expect_name(t->ssl, server_name) != 0)
      goto err_after_bio;
  }
  c->tls = t;
  return 0;
err:
  BIO_free(t->rbio);
  BIO_free(t->wbio);
err_after_bio:
  SSL_free(t->ssl);
  free(t);
  ERR_clear_error();
  return KS_ETLS;
}

void ks__tls_conn_free(ks__conn_t *c)
{
  SSL_free(c->tls->ssl);
  free(c->tls);
  c->tls = NULL;
}

typedef struct tls_flush_req {
  uv_write_t uv;
  unsigned char data[];
} tls_flush_req_t;

static void tls_flush_cb(uv_write_t *req, int status)
{
  (void)status; /* a failed write also fails the read side, which closes */
  free(req->data);
}

/* Send whatever ciphertext OpenSSL produced outside a frame write
 * (handshake, alerts, key updates). */
static int tls_flush(ks__conn_t *c)
{
  size_t n = BIO_ctrl_pending(c->tls->wbio);
  if (n == 0 || c->closing)
    return 0;
  tls_flush_req_t *f = malloc(sizeof(*f) + n);
  if (f == NULL)
    return -ENOMEM;
  if (BIO_read(c->tls->wbio, f->data, (int)n) != (int)n) {
    free(f);
    return KS_ETLS;
  }
  f->uv.data = f;
  uv_buf_t b = uv_buf_init((char *)f->data, (unsigned)n);
  int rc = uv_write(&f->uv, (uv_stream_t *)&c->tcp, &b, 1, tls_flush_cb);
  if (rc != 0) {
    free(f);
    return rc;
  }
  return 0;
}

int ks__tls_start(ks__conn_t *c)
{
  if (c->tls->server)
    return 0; /* wait for the ClientHello */
  int r = SSL_do_handshake(c->tls->ssl);
  if (r <= 0 && SSL_get_error(c->tls->ssl, r) != SSL_ERROR_WANT_READ) {
    tls_log_errors("tls_handshake_failed", "client_hello", c->peer);
    return KS_ETLS;
  }
  return tls_flush(c);
}

static void tls_fail(ks__conn_t *c, const char *what)
{
  long vr = SSL_get_verify_result(c->tls->ssl);
  if (vr != X509_V_OK) {
    char q[160];
    ks_log_warn("rpc", "tls_peer_refused", "peer=%s reason=%s", c->peer,
                ks_log_quote(q, sizeof(q), X509_verify_cert_error_string(vr)));
    ERR_clear_error();
  } else {
    tls_log_errors("tls_failed", what, c->peer);
  }
  ks__conn_close(c, KS_ETLS);
}

static void tls_handshake(ks__conn_t *c)
{
  ks__tls_conn_t *t = c->tls;
  int r = SSL_do_handshake(t->ssl);
  int frc = tls_flush(c);
  if (r == 1) {
    if (SSL_get0_peer_certificate(t->ssl) == NULL ||
        SSL_get_verify_result(t->ssl) != X509_V_OK) {
      tls_fail(c, "peer_certificate");
      return;
    }
    t->handshake_done = true;
    ks_log_debug("rpc", "tls_established", "peer=%s version=%s cipher=%s",
                 c->peer, SSL_get_version(t->ssl), SSL_get_cipher(t->ssl));
    ks__conn_set_ready(c);
  } else if (SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ) {
    tls_fail(c, "handshake");
    return;
  }
  if (frc != 0)
    ks__conn_close(c, frc);
}

/* Decrypt everything buffered straight into the framer. */
static void tls_pump(ks__conn_t *c)
{
  ks__tls_conn_t *t = c->tls;
  while (!c->closing) {
    uint8_t *w;
    size_t wn;
    ks__framer_window(&c->fr, &w, &wn);
    int r = SSL_read(t->ssl, w, wn > INT_MAX ? INT_MAX : (int)wn);
    if (r > 0) {
      ks_rpc_msg_t *msg;
      int rc = ks__framer_commit(&c->fr, (size_t)r, &msg);
      if (rc != 0)
        ks__conn_close(c, rc);
      else if (msg != NULL)
        ks__conn_deliver(c, msg);
      continue;
    }
    int e = SSL_get_error(t->ssl, r);
    int frc = tls_flush(c);
    if (e == SSL_ERROR_WANT_READ) {
      if (frc != 0)
        ks__conn_close(c, frc);
      return;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
      ks__conn_close(c, KS_ECLOSED);
    else
      tls_fail(c, "read");
    return;
  }
}

void ks__tls_on_read(ks__conn_t *c, size_t n)
{
  if (BIO_write(c->tls->rbio, c->stage, (int)n) != (int)n) {
    ks__conn_close(c, -ENOMEM);
    return;
  }
  if (!c->tls->handshake_done) {
    tls_handshake(c);
    if (c->closing || !c->tls->handshake_done)
      return;
  }
  tls_pump(c);
}

static void tls_write_cb(uv_write_t *req, int status)
{
  ks_rpc_out_t *out = req->data;
  free(out->_wbuf);
  out->_wbuf = NULL;
  out->_done(out, status == 0 ? 0 : KS_ECLOSED);
}

int ks__tls_write(ks__conn_t *c, ks_rpc_out_t *out)
{
  ks__tls_conn_t *t = c->tls;
  for (int i = 0; i < out->_iovcnt; i++) {
    const uint8_t *p = out->_iov[i].iov_base;
    size_t left = out->_iov[i].iov_len;
    while (left > 0) {
      int chunk = left > INT_MAX ? INT_MAX : (int)left;
      int r = SSL_write(t->ssl, p, chunk);
      if (r <= 0) {
        tls_log_errors("tls_failed", "write", c->peer);
        return KS_ETLS;
      }
      p += r;
      left -= (size_t)r;
    }
  }
  size_t n = BIO_ctrl_pending(t->wbio);
  out->_wbuf = malloc(n);
  if (out->_wbuf == NULL)
    return -ENOMEM;
  if (BIO_read(t->wbio, out->_wbuf, (int)n) != (int)n) {
    free(out->_wbuf);
    out->_wbuf = NULL;
    return KS_ETLS;
  }
  uv_buf_t b = uv_buf_init(out->_wbuf, (unsigned)n);
  int rc = uv_write(&out->_uv, (uv_stream_t *)&c->tcp, &b, 1, tls_write_cb);
  if (rc != 0) {
    free(out->_wbuf);
    out->_wbuf = NULL;
    return KS_ECLOSED;
  }
  return 0;
}
