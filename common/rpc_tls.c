/*
 * rpc_tls.c — the TLS 1.3 transport: OpenSSL driven through memory BIOs on
 * top of a libuv TCP connection.
 *
 * Why BIOs of our own: libuv owns the socket and the event loop, so OpenSSL
 * must never touch the fd.  Ciphertext read by libuv is pushed into a memory
 * read BIO and SSL_read() copies the plaintext into the framer's window.  On
 * the way out, a custom write BIO appends each TLS record straight into the
 * connection's pending output buffer (from the large-buffer cache,
 * ks/bigbuf.h), which is handed whole to uv_write: one copy of the
 * ciphertext, no per-frame mmap.  (A memory write BIO costs a second copy to
 * drain it; bench/rpc measured that and the page faults of a fresh buffer per
 * frame as over half of a TLS sender's CPU.)
 *
 * Sealed bulk.  OpenSSL's record layer costs four user-space copies per
 * byte of bulk (into its write buffer, into ours; out of the staging buffer,
 * out of its read buffer) on top of the cipher, and the frame's crc32c adds
 * a pass on each side: bench/rpc measured AES-GCM at about 40% of a TLS
 * bulk transfer's CPU, the copies at 20% and crc32c at 6%, which capped TLS
 * bulk at 0.32 of a plain socket copy (1.26 CPU-s/GB).  Kernel TLS would
 * remove the copies but is not available everywhere (no `tls` ULP on our
 * test machines).  So, after the handshake, both sides export two AES-256
 * keys from the session (RFC 8446 §7.5; label "EXPORTER-kiseki-rpc-sealed-
 * bulk": first half client-to-server, second half server-to-client), and a
 * frame's bulk leaves the TLS records: header and body are SSL_write()n as
 * before, then the bulk follows on the stream as GCM ciphertext and tag,
 * sealed in one pass from the caller's iovecs with nonce = the direction's
 * frame counter (little-endian, 4 zero bytes first) and the 48-byte header
 * as AAD.  The receiver's framer sees the header, then reads the ciphertext
 * straight into the message (libuv, no staging) and opens it in place.
 * Confidentiality and integrity are TLS's own construction (AEAD, a key per
 * direction, a sequence-number nonce: replay, reordering, truncation or
 * splicing fail the tag), and the keys exist only in this session.  Result:
 * 0.83 CPU-s/GB.  The peer must frame the same way: plaintext left in a
 * record where the bulk should start closes the connection.
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

#include "ks/bigbuf.h"
#include "ks/crypto.h"
#include "ks/endian.h"
#include "ks/err.h"
#include "ks/log.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct ks_rpc_tls {
  SSL_CTX *client;
  SSL_CTX *server;
  char *server_name;
};

struct ks__tls_conn {
  SSL *ssl;
  BIO *rbio;         /* ciphertext in (tls_rbio_*); owned by ssl */
  const uint8_t *in; /* ciphertext read by libuv, not yet taken by OpenSSL */
  size_t in_len;
  size_t in_off;
  BIO *wbio;    /* ciphertext out (tls_wbio_*); owned by ssl */
  uint8_t *out; /* ciphertext not yet handed to uv_write */
  size_t out_len;
  size_t out_cap;
  bool out_failed; /* a record could not be buffered (out of memory) */
  bool server;
  bool handshake_done;
  /* Sealed bulk (see the top of this file): a key and a frame counter per
   * direction, derived from the session when the handshake completes. */
  uint8_t key_tx[KS_AES256_KEY_LEN];
  uint8_t key_rx[KS_AES256_KEY_LEN];
  uint64_t seq_tx;
  uint64_t seq_rx;
};

/* ---- the read BIO -------------------------------------------------------
 * Serves OpenSSL straight from the connection's staging buffer, so the
 * ciphertext is not first copied into a memory BIO.  tls_pump() reads until
 * OpenSSL wants more, and OpenSSL keeps partial records in its own buffer,
 * so the staging buffer is always drained before libuv refills it. */

static int tls_rbio_read(BIO *b, char *out, int len)
{
  ks__tls_conn_t *t = BIO_get_data(b);
  size_t avail = t->in_len - t->in_off;
  BIO_clear_retry_flags(b);
  if (avail == 0 || len <= 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = (size_t)len < avail ? (size_t)len : avail;
  memcpy(out, t->in + t->in_off, n);
  t->in_off += n;
  return (int)n;
}

static long tls_rbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
  ks__tls_conn_t *t = BIO_get_data(b);
  (void)num;
  (void)ptr;
  if (cmd == BIO_CTRL_PENDING)
    return (long)(t->in_len - t->in_off);
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/* ---- the write BIO ------------------------------------------------------ */

static int tls_out_reserve(ks__tls_conn_t *t, size_t extra)
{
  if (t->out_len + extra <= t->out_cap)
    return 0;
  size_t want = t->out_cap * 2;
  if (want < t->out_len + extra)
    want = t->out_len + extra;
  if (want < 16384)
    want = 16384;
  size_t cap;
  uint8_t *p = ks_bigbuf_alloc(want, &cap);
  if (p == NULL)
    return -ENOMEM;
  if (t->out_len)
    memcpy(p, t->out, t->out_len);
  ks_bigbuf_free(t->out, t->out_cap);
  t->out = p;
  t->out_cap = cap;
  return 0;
}

/* Take the pending ciphertext; the caller frees it with ks_bigbuf_free. */
static uint8_t *tls_out_take(ks__tls_conn_t *t, size_t *len, size_t *cap)
{
  uint8_t *p = t->out;
  *len = t->out_len;
  *cap = t->out_cap;
  t->out = NULL;
  t->out_len = 0;
  t->out_cap = 0;
  return p;
}

static int tls_wbio_write(BIO *b, const char *data, int len)
{
  ks__tls_conn_t *t = BIO_get_data(b);
  if (len <= 0)
    return 0;
  if (tls_out_reserve(t, (size_t)len) != 0) {
    t->out_failed = true;
    return -1;
  }
  memcpy(t->out + t->out_len, data, (size_t)len);
  t->out_len += (size_t)len;
  return len;
}

static long tls_wbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
  (void)b;
  (void)num;
  (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int tls_wbio_create(BIO *b)
{
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *tls_wbio_method; /* process lifetime */
static BIO_METHOD *tls_rbio_method; /* process lifetime */
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

static void tls_bio_methods_init(void)
{
  BIO_METHOD *w =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ks-uv-write");
  BIO_METHOD *r =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ks-uv-read");
  if (w == NULL || r == NULL || BIO_meth_set_write(w, tls_wbio_write) != 1 ||
      BIO_meth_set_ctrl(w, tls_wbio_ctrl) != 1 ||
      BIO_meth_set_create(w, tls_wbio_create) != 1 ||
      BIO_meth_set_read(r, tls_rbio_read) != 1 ||
      BIO_meth_set_ctrl(r, tls_rbio_ctrl) != 1 ||
      BIO_meth_set_create(r, tls_wbio_create) != 1) {
    BIO_meth_free(w);
    BIO_meth_free(r);
    return;
  }
  tls_wbio_method = w;
  tls_rbio_method = r;
}

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
  step = "ciphersuites";
  if (SSL_CTX_set_ciphersuites(ctx, o->ciphersuites
                                        ? o->ciphersuites
                                        : "TLS_AES_128_GCM_SHA256:"
                                          "TLS_AES_256_GCM_SHA384") != 1)
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
  if (pthread_once(&tls_bio_once, tls_bio_methods_init) != 0 ||
      tls_wbio_method == NULL)
    goto err;
  t->rbio = BIO_new(tls_rbio_method);
  t->wbio = BIO_new(tls_wbio_method);
  if (!t->ssl || !t->rbio || !t->wbio)
    goto err;
  BIO_set_data(t->rbio, t);
  BIO_set_data(t->wbio, t);
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
  ks_secure_zero(c->tls->key_tx, sizeof(c->tls->key_tx));
  ks_secure_zero(c->tls->key_rx, sizeof(c->tls->key_rx));
  ks_bigbuf_free(c->tls->out, c->tls->out_cap);
  SSL_free(c->tls->ssl);
  free(c->tls);
  c->tls = NULL;
}

typedef struct tls_flush_req {
  uv_write_t uv;
  uint8_t *data;
  size_t cap;
} tls_flush_req_t;

static void tls_flush_cb(uv_write_t *req, int status)
{
  tls_flush_req_t *f = req->data;
  (void)status; /* a failed write also fails the read side, which closes */
  ks_bigbuf_free(f->data, f->cap);
  free(f);
}

/* Send whatever ciphertext OpenSSL produced outside a frame write
 * (handshake, alerts, key updates). */
static int tls_flush(ks__conn_t *c)
{
  if (c->tls->out_failed)
    return -ENOMEM;
  if (c->tls->out_len == 0 || c->closing)
    return 0;
  if (c->batch_head != NULL) { /* the batch write takes these bytes too */
    ks__conn_flush(c);
    return 0;
  }
  tls_flush_req_t *f = malloc(sizeof(*f));
  if (f == NULL)
    return -ENOMEM;
  size_t n;
  f->data = tls_out_take(c->tls, &n, &f->cap);
  f->uv.data = f;
  uv_buf_t b = uv_buf_init((char *)f->data, (unsigned)n);
  int rc = uv_write(&f->uv, (uv_stream_t *)&c->tcp, &b, 1, tls_flush_cb);
  if (rc != 0) {
    ks_bigbuf_free(f->data, f->cap);
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

/* The nonce of a direction's n-th sealed bulk: unique per key, and a
 * replayed, dropped or reordered bulk fails its tag. */
static void tls_bulk_iv(uint8_t iv[KS_GCM_IV_LEN], uint64_t seq)
{
  memset(iv, 0, 4);
  ks_put_le64(iv + 4, seq);
}

/* ks__framer_open_fn: authenticate and decrypt a sealed bulk in place; the
 * frame header (checked, and carried inside TLS) is the AAD, which binds
 * the bulk to its request id and lengths. */
static int tls_bulk_open(void *arg, const uint8_t *hdr, uint8_t *bulk,
                         uint64_t len, const uint8_t *tag)
{
  ks__tls_conn_t *t = arg;
  uint8_t iv[KS_GCM_IV_LEN];
  tls_bulk_iv(iv, t->seq_rx++);
  if (len > SIZE_MAX)
    return KS_ETOOBIG;
  return ks_gcm_open(t->key_rx, iv, hdr, KS_RPC_HDR_SIZE, bulk, (size_t)len,
                     tag, bulk);
}

/* RFC 8446 §7.5 exporter: keys bound to this session, one per direction,
 * that nothing else (not even another connection of the same peers) has. */
static int tls_bulk_keys(ks__conn_t *c)
{
  static const char label[] = "EXPORTER-kiseki-rpc-sealed-bulk";
  ks__tls_conn_t *t = c->tls;
  uint8_t km[2 * KS_AES256_KEY_LEN];
  if (SSL_export_keying_material(t->ssl, km, sizeof(km), label,
                                 sizeof(label) - 1, NULL, 0, 0) != 1)
    return KS_ETLS;
  const uint8_t *c2s = km;
  const uint8_t *s2c = km + KS_AES256_KEY_LEN;
  memcpy(t->key_tx, t->server ? s2c : c2s, KS_AES256_KEY_LEN);
  memcpy(t->key_rx, t->server ? c2s : s2c, KS_AES256_KEY_LEN);
  ks_secure_zero(km, sizeof(km));
  ks__framer_seal(&c->fr, tls_bulk_open, t);
  return 0;
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
    if (tls_bulk_keys(c) != 0) {
      tls_fail(c, "export_keying_material");
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
    if (ks__framer_raw(&c->fr)) {
      /* The frame's records ended with its body; the sealed bulk follows
       * on the stream itself.  Plaintext left in a record means a peer
       * that does not frame as we do. */
      if (SSL_has_pending(t->ssl)) {
        ks_log_warn("rpc", "tls_frame_misaligned", "peer=%s", c->peer);
        ks__conn_close(c, KS_EPROTO);
        return;
      }
      size_t avail = t->in_len - t->in_off;
      if (avail == 0)
        return; /* libuv reads the rest, straight into the message */
      size_t n = avail < wn ? avail : wn;
      memcpy(w, t->in + t->in_off, n);
      t->in_off += n;
      ks_rpc_msg_t *msg;
      int rc = ks__framer_commit(&c->fr, n, &msg);
      if (rc != 0)
        ks__conn_close(c, rc);
      else if (msg != NULL)
        ks__conn_deliver(c, msg);
      continue;
    }
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
  ks__tls_conn_t *t = c->tls;
  t->in = c->stage;
  t->in_len = n;
  t->in_off = 0;
  if (!t->handshake_done) {
    tls_handshake(c);
    if (c->closing || !t->handshake_done)
      goto out;
  }
  tls_pump(c);
out:
  /* OpenSSL takes everything before asking for more; anything left would
   * be overwritten by the next read. */
  if (!c->closing && t->in_off < t->in_len) {
    ks_log_error("rpc", "tls_input_left", "peer=%s bytes=%zu", c->peer,
                 t->in_len - t->in_off);
    ks__conn_close(c, KS_EPROTO);
  }
  t->in = NULL;
  t->in_len = 0;
  t->in_off = 0;
}

static void tls_write_cb(uv_write_t *req, int status)
{
  ks_rpc_out_t *out = req->data;
  ks_bigbuf_free(out->_wbuf, out->_wcap);
  out->_wbuf = NULL;
  out->_done(out, status == 0 ? 0 : KS_ECLOSED);
}

void *ks__tls_take_out(ks__conn_t *c, size_t *len, size_t *cap)
{
  return tls_out_take(c->tls, len, cap);
}

int ks__tls_write(ks__conn_t *c, ks_rpc_out_t *out)
{
  ks__tls_conn_t *t = c->tls;
  size_t total = 0;
  size_t bulk = 0;
  for (int i = 0; i < out->_iovcnt; i++) {
    if (i < out->_bulk_iov)
      total += out->_iov[i].iov_len;
    else
      bulk += out->_iov[i].iov_len;
  }
  /* Small frames: their records accumulate in t->out and go out with the
   * connection's batch (rpc_conn.c).  A bulk frame is written on its own,
   * after whatever is batched, so order holds and no multi-MiB buffer is
   * regrown. */
  bool batch = bulk == 0 && t->out_len + total <= KS__TLS_BATCH_MAX;
  if (!batch && c->batch_head != NULL) {
    ks__conn_flush(c);
    if (c->closing)
      return KS_ECLOSED;
  }
  /* Room for the whole frame up front: appends never regrow. */
  size_t sealed = bulk ? bulk + KS_RPC_TAG_SIZE : 0;
  if (tls_out_reserve(t, total + (total / 16384 + 1) * 64 + sealed) != 0)
    return -ENOMEM;
  for (int i = 0; i < out->_bulk_iov; i++) {
    const uint8_t *p = out->_iov[i].iov_base;
    size_t left = out->_iov[i].iov_len;
    while (left > 0) {
      int chunk = left > INT_MAX ? INT_MAX : (int)left;
      int r = SSL_write(t->ssl, p, chunk);
      if (r <= 0) {
        tls_log_errors("tls_failed", "write", c->peer);
        return t->out_failed ? -ENOMEM : KS_ETLS;
      }
      p += r;
      left -= (size_t)r;
    }
  }
  if (batch)
    return KS__TLS_QUEUED;
  if (bulk > 0) {
    /* One pass reads the plaintext and writes the ciphertext: no record
     * copies, and the receiver decrypts where the bytes land. */
    uint8_t iv[KS_GCM_IV_LEN];
    uint8_t *ct = t->out + t->out_len;
    tls_bulk_iv(iv, t->seq_tx++);
    int rc = ks_gcm_sealv(t->key_tx, iv, out->_hdr, KS_RPC_HDR_SIZE,
                          &out->_iov[out->_bulk_iov],
                          out->_iovcnt - out->_bulk_iov, ct, ct + bulk);
    if (rc != 0) {
      t->out_len = 0; /* the counter moved: this connection is done */
      return rc;
    }
    t->out_len += sealed;
  }
  size_t n;
  out->_wbuf = tls_out_take(t, &n, &out->_wcap);
  uv_buf_t b = uv_buf_init(out->_wbuf, (unsigned)n);
  int rc = uv_write(&out->_uv, (uv_stream_t *)&c->tcp, &b, 1, tls_write_cb);
  if (rc != 0) {
    ks_bigbuf_free(out->_wbuf, out->_wcap);
    out->_wbuf = NULL;
    return KS_ECLOSED;
  }
  return 0;
}
