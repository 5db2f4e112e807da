/*
 * rpc.h — Kiseki's RPC layer: framed, pipelined, multiplexed request/response
 * between daemons and native clients (DESIGN.md §10).
 *
 * WIRE FORMAT.  Every message is one frame:
 *
 *   header (KS_RPC_HDR_SIZE = 48 bytes, little-endian)
 *     0  u32 magic       KS_RPC_MAGIC ("KSRP")
 *     4  u8  version     KS_RPC_VERSION
 *     5  u8  kind        KS_RPC_REQUEST or KS_RPC_RESPONSE
 *     6  u16 opcode
 *     8  u64 request id  chosen by the caller, echoed by the response
 *    16  i32 status      responses: 0 or a KS_E* / negated errno code
 *    20  u32 body length
 *    24  u64 bulk length
 *    32  u32 body crc32c
 *    36  u32 bulk crc32c
 *    40  u32 timeout_ms  requests: the caller's budget (0 = none), a hint
 *    44  u32 header crc32c over bytes 0..43
 *   body  (encoded request/response arguments, small)
 *   bulk  (data: fragments, object bytes; never copied into the body)
 *
 * Over TLS, header and body travel in TLS records, but a non-empty bulk does
 * not: it follows the records on the TCP stream as AES-256-GCM ciphertext
 * plus a 16-byte tag, under a per-direction key exported from the TLS session
 * (RFC 8446 §7.5), the frame counter as nonce and the header as AAD; its
 * crc32c field is 0 and not checked.  This is kernel TLS's shape in user
 * space: the sender encrypts in one pass from the caller's buffers, the
 * receiver reads ciphertext straight into the message and decrypts in place
 * (rpc_tls.c has the why and the measurements).
 *
 * The header crc is checked before any length is trusted, so a corrupt
 * length can never make us allocate.  A frame with a wrong magic, version,
 * crc, kind or a length over the endpoint's limit closes its connection with
 * a logged reason; the endpoint keeps serving its other connections.
 *
 * OBJECTS.  All objects live on one libuv loop and are used from that loop's
 * thread only.  A ks_rpc_client_t is one connection to one peer (the caller
 * keeps one client per peer: one connection per peer pair), pipelined and
 * multiplexed by request id, reconnecting on demand.  A ks_rpc_server_t
 * listens on one address and dispatches requests to handlers by opcode.
 *
 * CALL LIFECYCLE (libuv rules).  The caller owns a ks_rpc_call_t and keeps
 * it, the iovec data it names, alive until the callback runs.  If
 * ks_rpc_call_start() fails the callback never runs.  Otherwise the callback
 * runs exactly once, on the loop thread, never from inside
 * ks_rpc_call_start() itself.
 *
 * BACKPRESSURE.  A client has at most max_inflight calls on the wire; further
 * calls wait in a FIFO of at most max_queued, and beyond that
 * ks_rpc_call_start() fails with KS_EBUSY at once.  A server stops reading a
 * connection while max_inflight of its requests are unanswered, which pushes
 * back through TCP.
 *
 * ERRORS.  Functions return 0 or a negative code from ks/err.h.
 *
 * SIGPIPE.  libuv writes with write(2), which raises SIGPIPE when the peer
 * has gone.  Creating a client or server sets SIGPIPE to ignored if it is
 * still at its default (process-wide): a vanished peer must fail a call,
 * never kill the process.  A program that installed its own handler keeps
 * it.
 */
#ifndef KS_RPC_H
#define KS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#define KS_RPC_MAGIC 0x5052534BU /* "KSRP" little-endian */
#define KS_RPC_VERSION 1
#define KS_RPC_HDR_SIZE 48
#define KS_RPC_REQUEST 1
#define KS_RPC_RESPONSE 2

/* Most iovec pieces a call or reply may pass, body and bulk each. */
#define KS_RPC_IOV_MAX 8

/* Defaults; every one can be changed in ks_rpc_opts_t. */
#define KS_RPC_DEFAULT_MAX_BODY (1U << 20)    /* 1 MiB */
#define KS_RPC_DEFAULT_MAX_BULK (64ULL << 20) /* 64 MiB: 16 chunks */
#define KS_RPC_DEFAULT_MAX_INFLIGHT 256
#define KS_RPC_DEFAULT_MAX_QUEUED 4096
#define KS_RPC_DEFAULT_TIMEOUT_MS 30000
#define KS_RPC_DEFAULT_CONNECT_TIMEOUT_MS 5000

/* Opcodes.  0..255 belong to the RPC layer itself; components take ranges:
 * meta 0x100.., chunkd 0x200.., keyserver 0x300.., control 0x400.. */
enum ks_rpc_opcode {
  KS_OP_PING = 1,   /* echo: replies with the request's body and bulk */
  KS_OP_SINK = 2,   /* consumes the request bulk, replies empty */
  KS_OP_SOURCE = 3, /* body: u64 n; replies with n bytes of bulk */
};

/* A received frame.  One allocation owns the struct, body and bulk; whoever
 * is handed a msg owns it and frees it with ks_rpc_msg_free().  bulk is
 * 64-byte aligned.  body and bulk are NULL when their length is 0. */
typedef struct ks_rpc_msg {
  uint16_t opcode;
  uint8_t kind;
  int32_t status;
  uint64_t id;
  uint32_t timeout_ms;
  uint8_t *body;
  uint32_t body_len;
  uint8_t *bulk;
  uint64_t bulk_len;
  size_t _alloc; /* private: size of the allocation (ks/bigbuf.h) */
} ks_rpc_msg_t;

void ks_rpc_msg_free(ks_rpc_msg_t *msg);

/* ---- TLS ----------------------------------------------------------------
 * TLS 1.3 only, with mutual authentication: both sides present a certificate
 * and both verify the peer's against the cluster CA.  A ks_rpc_tls_t holds the
 * two OpenSSL contexts (client and server role); it may be shared by many
 * clients and servers on any threads, and must outlive all of them. */
typedef struct ks_rpc_tls ks_rpc_tls_t;

typedef struct ks_rpc_tls_opts {
  const char *ca_file;   /* PEM: CA(s) that sign peers' certificates */
  const char *cert_file; /* PEM: our certificate (chain) */
  const char *key_file;  /* PEM: our private key */
  /* Client role: if set, the server's certificate must name this host (SAN
   * DNS or IP).  NULL accepts any certificate the CA signed. */
  const char *server_name;
  /* TLS 1.3 cipher suites in order of preference (OpenSSL syntax); NULL:
   * "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384", AES-128 first because
   * it is the faster of the two on the bulk path and is TLS 1.3's
   * mandatory suite.  Data at rest is AES-256-GCM regardless. */
  const char *ciphersuites;
} ks_rpc_tls_opts_t;

/* Errors: KS_ETLS with a logged OpenSSL reason (unreadable file, key does not
 * match certificate, ...). */
int ks_rpc_tls_new(const ks_rpc_tls_opts_t *opts, ks_rpc_tls_t **out);
void ks_rpc_tls_free(ks_rpc_tls_t *tls);

/* ---- Options shared by clients and servers --------------------------- */
typedef struct ks_rpc_opts {
  ks_rpc_tls_t *tls;           /* NULL: plain TCP */
  uint32_t max_body;           /* 0: default */
  uint64_t max_bulk;           /* 0: default */
  uint32_t max_inflight;       /* 0: default */
  uint32_t max_queued;         /* client only; 0: default */
  uint32_t connect_timeout_ms; /* client only; 0: default */
} ks_rpc_opts_t;

/* ---- Client ----------------------------------------------------------- */
typedef struct ks_rpc_client ks_rpc_client_t;
typedef struct ks_rpc_call ks_rpc_call_t;

/* status: 0 when a response arrived with status 0; otherwise the remote
 * status or a local failure (KS_ETIMEDOUT, KS_ECLOSED when the connection
 * broke with the call on the wire, KS_ECANCELED on client close,
 * -ECONNREFUSED, KS_ETLS...).  resp is non-NULL whenever a response frame
 * arrived, including one with a non-zero status; the callback owns it. */
typedef void (*ks_rpc_call_cb)(ks_rpc_call_t *call, int status,
                               ks_rpc_msg_t *resp);

/* An outgoing frame: header, body and bulk pieces, and the write request
 * that carries them.  Private to the RPC layer; embedded in calls and server
 * requests so that sending needs no allocation. */
typedef struct ks_rpc_out ks_rpc_out_t;
struct ks_rpc_out {
  uv_write_t _uv;
  void *_wbuf;  /* TLS: the encrypted bytes being written */
  size_t _wcap; /* its allocation size (ks/bigbuf.h) */
  void (*_done)(ks_rpc_out_t *out, int status);
  uint8_t _hdr[KS_RPC_HDR_SIZE];
  struct iovec _iov[1 + 2 * KS_RPC_IOV_MAX];
  int _iovcnt;
  int _bulk_iov; /* index of the first bulk piece in _iov (_iovcnt: none) */
  ks_rpc_out_t *_next; /* plain TCP: the frames written together with this */
};

/* Caller-owned; contents are private except `data`. */
struct ks_rpc_call {
  void *data; /* for the caller */
  /* private */
  ks_rpc_client_t *_client;
  ks_rpc_call_cb _cb;
  ks_rpc_call_t *_next; /* waiting queue or in-flight list */
  ks_rpc_call_t *_prev;
  ks_rpc_call_t *_hnext; /* in-flight hash chain */
  uint64_t _id;
  uint64_t _deadline_ms; /* uv_now() time after which it times out */
  int _status;           /* result held while the write is still pending */
  ks_rpc_msg_t *_resp;
  uint8_t _state;
  uint8_t _writing; /* the frame's write callback is pending */
  ks_rpc_out_t _out;
};

typedef void (*ks_rpc_close_cb)(void *arg);

/* Create a client for host:port (numeric IPv4/IPv6 address).  It connects
 * lazily, on the first call, and reconnects after a failure with backoff. */
int ks_rpc_client_new(uv_loop_t *loop, const char *host, uint16_t port,
                      const ks_rpc_opts_t *opts, ks_rpc_client_t **out);

/* Start a call.  body/bulk: up to KS_RPC_IOV_MAX pieces each (may be NULL
 * with count 0); the data must stay valid until cb, the iovec arrays need not.
 * timeout_ms 0 means KS_RPC_DEFAULT_TIMEOUT_MS.  Errors: KS_EBUSY (queue
 * full), KS_ECLOSED (client closing), KS_ETOOBIG, -EINVAL. */
int ks_rpc_call_start(ks_rpc_client_t *cl, ks_rpc_call_t *call, uint16_t opcode,
                      const struct iovec *body, int nbody,
                      const struct iovec *bulk, int nbulk, uint32_t timeout_ms,
                      ks_rpc_call_cb cb);

/* Calls on the wire and waiting, for metrics and tests. */
uint32_t ks_rpc_client_inflight(const ks_rpc_client_t *cl);
uint32_t ks_rpc_client_queued(const ks_rpc_client_t *cl);
bool ks_rpc_client_connected(const ks_rpc_client_t *cl);

/* Graceful close: waiting calls fail with KS_ECANCELED, calls on the wire
 * complete (or time out), then the connection closes and the client is freed;
 * cb(arg) runs after that.  The client must not be used after this call. */
void ks_rpc_client_close(ks_rpc_client_t *cl, ks_rpc_close_cb cb, void *arg);

/* ---- Server ----------------------------------------------------------- */
typedef struct ks_rpc_server ks_rpc_server_t;
typedef struct ks_rpc_sreq ks_rpc_sreq_t;

/* A handler owns the request from this call until it calls ks_rpc_reply();
 * it may reply at once or later from the loop thread. */
typedef void (*ks_rpc_handler_fn)(ks_rpc_sreq_t *req, void *ctx);
/* Runs once the reply is written (status 0) or could not be (KS_ECLOSED);
 * after it returns the request and its message are freed. */
typedef void (*ks_rpc_reply_cb)(ks_rpc_sreq_t *req, int status, void *arg);

/* The incoming request; owned by the sreq until the reply completes. */
const ks_rpc_msg_t *ks_rpc_sreq_msg(const ks_rpc_sreq_t *req);
/* "ip:port" of the peer, for logs. */
const char *ks_rpc_sreq_peer(const ks_rpc_sreq_t *req);

/* Reply to a request.  The iovec data must stay valid until cb (may be
 * NULL).  A non-zero status travels to the caller; body may then carry a
 * message.  Returns 0 or KS_ETOOBIG/-EINVAL (then the sreq is still owned by
 * the handler, which must reply again, e.g. with an error status). */
int ks_rpc_reply(ks_rpc_sreq_t *req, int status, const struct iovec *body,
                 int nbody, const struct iovec *bulk, int nbulk,
                 ks_rpc_reply_cb cb, void *arg);
/* Reply with a status and nothing else. */
int ks_rpc_reply_status(ks_rpc_sreq_t *req, int status);

/* Create a server bound to host:port (port 0 picks a free one; see
 * ks_rpc_server_port).  Listening starts at once. */
int ks_rpc_server_new(uv_loop_t *loop, const char *host, uint16_t port,
                      const ks_rpc_opts_t *opts, ks_rpc_server_t **out);
uint16_t ks_rpc_server_port(const ks_rpc_server_t *srv);
/* Register a handler for an opcode (before or while serving).
 * Errors: -EEXIST, -ENOSPC (too many handlers). */
int ks_rpc_server_handle(ks_rpc_server_t *srv, uint16_t opcode,
                         ks_rpc_handler_fn fn, void *ctx);
/* Register the PING, SINK and SOURCE handlers. */
int ks_rpc_ping_register(ks_rpc_server_t *srv);

/* Counters for metrics and tests. */
typedef struct ks_rpc_server_stats {
  uint64_t conns_accepted;
  uint64_t conns_open;
  uint64_t conns_rejected; /* malformed frames, TLS failures */
  uint64_t requests;
} ks_rpc_server_stats_t;
void ks_rpc_server_stats(const ks_rpc_server_t *srv, ks_rpc_server_stats_t *st);

/* Export the server's stats as kiseki_rpc_* families in m (read at scrape
 * time from *srv, zeros while it is NULL: register before the server exists,
 * set it to NULL before freeing it).  Returns 0 or ks_metric_* errors. */
typedef struct ks_metrics ks_metrics_t;
int ks_rpc_server_metrics(ks_metrics_t *m, ks_rpc_server_t *const *srv);

/* Graceful close: stop accepting, stop reading, let handlers reply and
 * replies flush, close every connection, free the server, then cb(arg). */
void ks_rpc_server_close(ks_rpc_server_t *srv, ks_rpc_close_cb cb, void *arg);

/* ---- Frame codec (pure; exposed for tests and fuzzing) ----------------- */
typedef struct ks_rpc_hdr {
  uint8_t version;
  uint8_t kind;
  uint16_t opcode;
  uint64_t id;
  int32_t status;
  uint32_t body_len;
  uint64_t bulk_len;
  uint32_t body_crc;
  uint32_t bulk_crc;
  uint32_t timeout_ms;
} ks_rpc_hdr_t;

void ks_rpc_hdr_encode(const ks_rpc_hdr_t *h, uint8_t out[KS_RPC_HDR_SIZE]);
/* Validate and decode: KS_EBADMAGIC, KS_EBADVERSION, KS_EBADCRC, KS_EPROTO
 * (bad kind), KS_ETOOBIG (body > max_body or bulk > max_bulk). */
int ks_rpc_hdr_decode(const uint8_t in[KS_RPC_HDR_SIZE], uint32_t max_body,
                      uint64_t max_bulk, ks_rpc_hdr_t *h);

#endif /* KS_RPC_H */
