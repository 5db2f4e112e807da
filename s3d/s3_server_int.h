/*
 * s3_server_int.h — what s3_server.c (h2o glue: listening, request intake,
 * authentication, body checks, answers) and s3_ops.c (one function per S3
 * operation: its arguments from the request, the backend call, its answer)
 * share.  Not part of the public contract (ks/s3_server.h).
 *
 * Life of a request (s3_req_t):
 *   on_req: s3_req_new (calloc; a pool-linked marker tells us when h2o
 *   disposes the h2o_req_t) -> intake (headers, target, operation, auth,
 *   body) -> s3_op_start (backend call) -> answer, possibly streamed.
 *   The s3_req_t is freed when both h2o has disposed its request (r->req
 *   became NULL) and no backend call is outstanding (!r->be_busy); the
 *   backend's release() runs just before, for ops that reached it.
 */
#ifndef KS_S3_SERVER_INT_H
#define KS_S3_SERVER_INT_H

#include "ks/s3_server.h"
#include "ks/s3_sigv4.h"

#include <h2o.h>
#include <stdbool.h>

#define S3_COMP "s3d"
#define S3_RID_LEN 16

/* One accepted connection: the libuv handle h2o reads and writes, and our
 * link for shutting connections at close. */
typedef struct s3_conn {
  uv_tcp_t tcp;
  h2o_linklist_t link;
  struct ks_s3_server *srv;
} s3_conn_t;

typedef struct s3_handler {
  h2o_handler_t super;
  ks_s3_server_t *srv;
} s3_handler_t;

struct ks_s3_server {
  h2o_globalconf_t gconf;
  h2o_context_t ctx;
  h2o_accept_ctx_t actx;
  h2o_timeout_t write_timeout; /* GET whose client stopped reading */
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t grace;
  uv_idle_t reaper;     /* frees the server one loop turn after disposal */
  h2o_linklist_t conns; /* s3_conn_t */
  const ks_s3_backend_t *be;
  ks_s3_key_cache_t keys;
  char *domain;
  char *region;
  ks_s3_server_opts_t o;
  ks_s3_server_stats_t st;
  uint64_t rid_prefix; /* random, so ids differ across restarts */
  uint64_t rid_seq;
  ks_s3_server_close_cb close_cb;
  void *close_arg;
  int handles_open; /* listener, grace timer */
  bool closing;
  bool finishing; /* nothing left: the grace timer is closing */
  bool forced;    /* grace ran out: memory left for process exit */
  bool ctx_live;
};

typedef struct s3_req {
  ks_s3_server_t *srv;
  h2o_req_t *req; /* NULL once h2o disposed it */
  ks_s3_http_req_t http;
  ks_s3_header_t *hdrs; /* pool memory */
  ks_s3_target_t target;
  ks_s3_target_t src;
  ks_s3_principal_t who;
  ks_s3_auth_t auth;
  ks_s3_bop_t bop;
  /* the decoded payload: pieces of req->entity */
  struct iovec one;
  struct iovec *iov; /* &one, or malloc'd for aws-chunked bodies */
  int niov;
  int iov_cap;
  uint64_t body_len;
  uint8_t *flat; /* malloc'd contiguous copy when an XML body is chunked */
  /* per-op parsed input */
  ks_s3_obj_attrs_t attrs;
  ks_s3_meta_pair_t *meta;
  ks_s3_list_args_t list;
  const char *token_in; /* v2 continuation-token as sent (list.token: the
                           key it stands for) */
  ks_s3_cond_t cond;
  ks_s3_cond_t src_cond;
  ks_s3_complete_req_t complete;
  ks_s3_delete_req_t del;
  char *region_in;
  char *upload_id;
  /* streaming GET */
  h2o_generator_t gen;
  h2o_timeout_entry_t wtimer;
  uint64_t off;
  uint64_t end;
  ks_s3_op_t op;
  char rid[S3_RID_LEN + 1];
  bool be_called;    /* the op reached the backend: release() is due */
  bool be_busy;      /* a backend call is outstanding */
  bool stopped;      /* h2o aborted the response */
  bool streaming;    /* headers sent (after the first piece was read) */
  bool presigned_ok; /* signature valid: response-* overrides allowed */
} s3_req_t;

/* ---- s3_server.c ---- */
/* Answer an S3 error (XML body unless HEAD or 304), with the request id. */
void s3_reply_error(s3_req_t *r, ks_s3_code_t code, const char *message);
/* Answer status with an XML body taken from b (copied; b is reset). */
void s3_reply_xml(s3_req_t *r, int status, ks_buf_t *b);
/* Answer status with no body. */
void s3_reply_empty(s3_req_t *r, int status);
/* Add a response header (value copied into the request pool). */
void s3_header_add(s3_req_t *r, const char *name, const char *v, size_t n);
/* The first request header called name, or NULL (*n set). */
const char *s3_header_get(const s3_req_t *r, const char *name, size_t *n);
/* Pool copy, NUL-terminated; NULL on no memory. */
char *s3_pool_strdup(s3_req_t *r, const char *s, size_t n);
/* Start backend fn on r->bop; completion calls cb (r->req may be NULL). */
void s3_backend_call(s3_req_t *r, ks_s3_bop_fn fn, ks_s3_bop_cb cb);
/* Begin streaming [off, end) of the object opened by a get to the client;
 * the response status and headers are already set. */
void s3_stream_start(s3_req_t *r);

/* ---- s3_ops.c ---- */
/* The backend entry for op, or NULL when the backend lacks it. */
ks_s3_bop_fn s3_op_backend_fn(const ks_s3_backend_t *be, ks_s3_op_t op);
/* Parse op arguments and call the backend; answers on every path. */
void s3_op_start(s3_req_t *r);

#endif /* KS_S3_SERVER_INT_H */
