/*
 * rpc_int.h — what only the RPC layer's own files see (SQLite's btreeInt.h
 * pattern): the frame reassembler, the connection object and the transport
 * table that TCP and TLS implement.
 *
 * Layering, bottom up:
 *   rpc_frame.c   header codec, message allocation, the framer (bytes ->
 *                 frames), pure and fuzzable
 *   rpc_conn.c    one libuv TCP connection: reads into the framer, writes
 *                 frames, closes; the transport decides how bytes move
 *   rpc_tls.c     the TLS transport (OpenSSL over our own read/write BIOs)
 *   rpc_client.c  calls: ids, in-flight table, queue, timeouts, reconnect
 *   rpc_server.c  listener, dispatch by opcode, replies, backpressure
 *   rpc_ping.c    PING/SINK/SOURCE handlers for tests and benchmarks
 *
 * A transport here is a byte stream.  A message-based transport (libfabric
 * RDM) will plug in one level up, at ks__conn_*: it delivers whole messages
 * with their bulk placed by RMA, so it needs no framer.
 */
#ifndef KS_RPC_INT_H
#define KS_RPC_INT_H

#include "ks/rpc.h"

#include <openssl/ssl.h>

/* ---- framer ---------------------------------------------------------- */

/* The GCM tag after a sealed bulk (ks/crypto.h KS_GCM_TAG_LEN). */
#define KS_RPC_TAG_SIZE 16

/* Reassembles frames from a byte stream.  Bytes go either straight into the
 * destination (ks__framer_window + ks__framer_commit: the kernel or SSL_read
 * writes bulk data where it will stay) or are copied in from a staging buffer
 * (ks__framer_feed).  After an error the framer is poisoned: the connection
 * must close.
 *
 * Sealed mode (TLS connections, see rpc_tls.c): a frame's bulk travels
 * outside the TLS records as AES-256-GCM ciphertext followed by its 16-byte
 * tag, and `open` authenticates and decrypts it in place when the frame is
 * whole; the bulk crc32c is then neither sent nor checked (GCM's tag is the
 * stronger check). */
typedef int (*ks__framer_open_fn)(void *arg, const uint8_t *hdr, uint8_t *bulk,
                                  uint64_t len, const uint8_t *tag);

typedef struct ks__framer {
  uint32_t max_body;
  uint64_t max_bulk;
  uint8_t hdr[KS_RPC_HDR_SIZE];
  size_t hdr_got;
  ks_rpc_hdr_t h;
  ks_rpc_msg_t *msg;       /* being filled; owned by the framer */
  uint64_t got;            /* payload bytes filled (body, bulk, sealed: tag) */
  int err;                 /* sticky */
  ks__framer_open_fn open; /* non-NULL: sealed mode */
  void *open_arg;
  uint8_t tag[KS_RPC_TAG_SIZE];
} ks__framer_t;

void ks__framer_init(ks__framer_t *f, uint32_t max_body, uint64_t max_bulk);
/* Switch to sealed mode (between frames only). */
void ks__framer_seal(ks__framer_t *f, ks__framer_open_fn open, void *arg);
/* Sealed mode: the next bytes are raw sealed bulk or tag, not TLS records. */
bool ks__framer_raw(const ks__framer_t *f);
/* Free a partly received message. */
void ks__framer_reset(ks__framer_t *f);
/* Where the next bytes of the stream belong (never empty). */
void ks__framer_window(ks__framer_t *f, uint8_t **p, size_t *n);
/* n bytes were written into the window.  When that completes a frame, *out
 * receives it (owned by the caller), else NULL.  Returns 0 or an error. */
int ks__framer_commit(ks__framer_t *f, size_t n, ks_rpc_msg_t **out);

/* Allocate a message with room for body and bulk (bulk 64-byte aligned). */
ks_rpc_msg_t *ks__msg_alloc(uint32_t body_len, uint64_t bulk_len);

/* Fill out->_hdr and out->_iov from the arguments; sealed: the bulk will be
 * sealed by the TLS transport, so no bulk crc is computed (0 in the header).
 * Returns KS_ETOOBIG or -EINVAL for bad counts. */
int ks__out_prepare(ks_rpc_out_t *out, const ks_rpc_hdr_t *h,
                    const struct iovec *body, int nbody,
                    const struct iovec *bulk, int nbulk, bool sealed);

/* ---- connection -------------------------------------------------------- */

typedef struct ks__conn ks__conn_t;

typedef struct ks__conn_cbs {
  /* Connected (and, with TLS, handshake verified): frames may flow. */
  void (*ready)(ks__conn_t *c);
  /* A whole frame arrived; the callee owns msg.  It may close c. */
  void (*msg)(ks__conn_t *c, ks_rpc_msg_t *msg);
  /* The handle is closed; every write has had its callback.  The owner may
   * free the memory of c now.  reason: why (0 for a requested close). */
  void (*closed)(ks__conn_t *c, int reason);
} ks__conn_cbs_t;

typedef struct ks__tls_conn ks__tls_conn_t;

struct ks__conn {
  uv_tcp_t tcp; /* first: handle->data is the conn */
  uv_loop_t *loop;
  const ks__conn_cbs_t *cbs;
  void *owner;
  ks__framer_t fr;
  ks__tls_conn_t *tls; /* NULL: plain TCP */
  uint8_t *stage;      /* staging buffer for small reads and ciphertext */
  bool direct;         /* the current read goes straight into the framer */
  bool reading;
  bool is_ready;
  bool closing;
  bool shutting; /* uv_shutdown issued */
  int reason;
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  /* Plain TCP write batching (rpc_conn.c): frames queued during one loop
   * turn go out in one writev when the turn ends. */
  uv_idle_t flush;
  ks_rpc_out_t *batch_head;
  ks_rpc_out_t *batch_tail;
  int batch_frames;
  int batch_iovs;
  int closes; /* handles (tcp, flush) whose close callback is pending */
  char peer[64];
};

/* A batch is written at once when it reaches either bound (writev takes at
 * most IOV_MAX = 1024 pieces per call; libuv loops over larger ones). */
#define KS__BATCH_FRAMES 128
#define KS__BATCH_IOVS 1024

#define KS__STAGE_SIZE (256 * 1024)
/* Reads of at least this much payload bypass the staging buffer. */
#define KS__DIRECT_MIN (64 * 1024)

/* Initialise c on loop.  tls_ctx NULL means plain TCP.  On error nothing is
 * left to close. */
int ks__conn_init(ks__conn_t *c, uv_loop_t *loop, SSL_CTX *tls_ctx, bool server,
                  const char *server_name, const ks__conn_cbs_t *cbs,
                  void *owner, uint32_t max_body, uint64_t max_bulk);
/* Client side: connect; ends in cbs->ready or cbs->closed. */
int ks__conn_connect(ks__conn_t *c, const struct sockaddr *sa);
/* Server side: accept from listener; ends in cbs->ready or cbs->closed. */
int ks__conn_accept(ks__conn_t *c, uv_stream_t *listener);
/* Send a prepared frame; out->_done(out, status) runs when it is written or
 * failed.  Only while ready. */
int ks__conn_write(ks__conn_t *c, ks_rpc_out_t *out);
void ks__conn_read_start(ks__conn_t *c);
void ks__conn_read_stop(ks__conn_t *c);
/* Hand the queued frames to libuv now (plain TCP batching). */
void ks__conn_flush(ks__conn_t *c);
/* Flush what is queued, then close.  Idempotent. */
void ks__conn_shutdown(ks__conn_t *c);
/* Close now; pending writes fail.  Idempotent; keeps the first reason. */
void ks__conn_close(ks__conn_t *c, int reason);

/* Called by transports. */
void ks__conn_set_ready(ks__conn_t *c);
/* Pump the framer from a TLS or other transport's plaintext.  Returns 0, or
 * an error after which c is closing. */
int ks__conn_deliver(ks__conn_t *c, ks_rpc_msg_t *msg);

/* ---- TLS transport (rpc_tls.c) ----------------------------------------- */

SSL_CTX *ks__tls_ctx(ks_rpc_tls_t *tls, bool server);
const char *ks__tls_server_name(const ks_rpc_tls_t *tls);
int ks__tls_conn_new(ks__conn_t *c, SSL_CTX *ctx, bool server,
                     const char *server_name);
void ks__tls_conn_free(ks__conn_t *c);
/* The TCP connection is up: a client starts its handshake. */
int ks__tls_start(ks__conn_t *c);
/* Ciphertext arrived in c->stage[0..n). */
void ks__tls_on_read(ks__conn_t *c, size_t n);
/* Encrypt a frame.  Returns 0 (written on its own), KS__TLS_QUEUED (its
 * records wait in the TLS output for the connection's batch write) or an
 * error. */
#define KS__TLS_QUEUED 1
#define KS__TLS_BATCH_MAX (256 * 1024)
int ks__tls_write(ks__conn_t *c, ks_rpc_out_t *out);
/* Take the ciphertext waiting in the TLS output (ks_bigbuf_free it). */
void *ks__tls_take_out(ks__conn_t *c, size_t *len, size_t *cap);

/* Ignore SIGPIPE unless the program installed its own handler (rpc.h). */
void ks__sigpipe_ignore(void);

/* Log and count the reason a connection is dropped. */
void ks__conn_log_close(const ks__conn_t *c, const char *role, int reason);

#endif /* KS_RPC_INT_H */
