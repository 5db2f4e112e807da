/*
 * s3_server.c — the h2o side of the S3 gateway: listening and accepting on
 * a libuv loop, the one handler on "/", request intake (headers, target,
 * operation, SigV4, body verification), the answer helpers, streaming GET
 * through an h2o generator, and graceful close.
 *
 * Order of checks, and why:
 *   1. header section size (before anything parses them);
 *   2. target and operation (ks_s3_target_parse, ks_s3_op_dispatch): their
 *      errors (InvalidURI, InvalidBucketName, MethodNotAllowed, and
 *      NotImplemented for subresources this gateway has no code for) say
 *      nothing about any account, so they come before authentication;
 *   3. SigV4 (header, presigned or anonymous -> AccessDenied);
 *   4. a backend without the operation -> NotImplemented;
 *   5. the body: x-amz-content-sha256 (signed payloads), aws-chunked
 *      decoding with every chunk signature checked, Content-MD5,
 *      x-amz-checksum-crc32 / -crc32c / -sha1 / -sha256.  All of it
 *      completes before the backend is called, so nothing is committed on
 *      a bad body;
 *   6. the operation (s3_ops.c).
 *
 * h2o 2.2.5 facts this relies on (DESIGN §13): a handler runs once the
 * whole body is in req->entity; HTTP/1 stops reading the socket while a
 * request is being handled, so the h2o_req_t stays alive until we answer;
 * once a response has started, h2o may abort it (write error) and calls
 * the generator's stop, then disposes the request (our pool-linked marker
 * tells us).  A backend call may still be outstanding then, so request
 * state is malloc'd and freed only when both sides are done.
 */
#include "s3_server_int.h"

#include "ks/codec.h"
#include "ks/crc32c.h"
#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/rand.h"
#include "ks/time.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define S3_DEF_MAX_BODY (UINT64_C(5) << 30)
#define S3_DEF_MAX_HEADER (16u * 1024)
#define S3_DEF_TIMEOUT_MS 30000u
#define S3_DEF_GRACE_MS 30000u
#define S3_DEF_READ_CHUNK (1u << 20)
/* Bodies above this spill from memory into a file-backed mmap (h2o's own
 * default, kept; the directory is ours). */
#define S3_MMAP_THRESHOLD (32u * 1024 * 1024)

static void s3_req_maybe_free(s3_req_t *r);

/* ---- request state lifetime ---------------------------------------------- */

typedef struct s3_req_link {
  s3_req_t *r;
} s3_req_link_t;

/* h2o disposed the request's pool: the h2o_req_t is gone. */
static void s3_req_on_dispose(void *p)
{
  s3_req_link_t *l = p;
  s3_req_t *r = l->r;
  if (h2o_timeout_is_linked(&r->wtimer))
    h2o_timeout_unlink(&r->wtimer);
  r->req = NULL;
  s3_req_maybe_free(r);
}

static void s3_req_free(s3_req_t *r)
{
  ks_s3_server_t *s = r->srv;
  if (r->be_called && s->be->ops->release)
    s->be->ops->release(s->be->impl, &r->bop);
  ks_s3_auth_clear(&r->auth);
  ks_s3_complete_req_free(&r->complete);
  ks_s3_delete_req_free(&r->del);
  free(r->region_in);
  free(r->flat);
  if (r->iov != &r->one)
    free(r->iov);
  free(r->meta);
  free(r);
  assert(s->st.inflight > 0);
  s->st.inflight--;
}

static void s3_req_maybe_free(s3_req_t *r)
{
  if (r->req == NULL && !r->be_busy)
    s3_req_free(r);
}

static s3_req_t *s3_req_new(ks_s3_server_t *s, h2o_req_t *req)
{
  s3_req_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  s3_req_link_t *l =
      h2o_mem_alloc_shared(&req->pool, sizeof(*l), s3_req_on_dispose);
  l->r = r;
  r->srv = s;
  r->req = req;
  r->iov = &r->one;
  r->bop._srv = r;
  uint64_t id = s->rid_prefix ^ ++s->rid_seq;
  snprintf(r->rid, sizeof(r->rid), "%016" PRIX64, id);
  s->st.inflight++;
  s->st.requests++;
  return r;
}

/* ---- small helpers --------------------------------------------------------
 */

char *s3_pool_strdup(s3_req_t *r, const char *s, size_t n)
{
  char *p = h2o_mem_alloc_pool(&r->req->pool, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

const char *s3_header_get(const s3_req_t *r, const char *name, size_t *n)
{
  const ks_s3_header_t *h = ks_s3_header_find(&r->http, name);
  if (h == NULL)
    return NULL;
  *n = h->value_len;
  return h->value;
}

void s3_header_add(s3_req_t *r, const char *name, const char *v, size_t n)
{
  h2o_req_t *req = r->req;
  char *val = s3_pool_strdup(r, v, n);
  char *nm = s3_pool_strdup(r, name, strlen(name));
  h2o_add_header_by_str(&req->pool, &req->res.headers, nm, strlen(nm), 1, NULL,
                        val, n);
}

static bool s3_is_head(const s3_req_t *r)
{
  return h2o_memis(r->req->method.base, r->req->method.len, H2O_STRLIT("HEAD"));
}

static void s3_reply(s3_req_t *r, int status, const char *ctype,
                     const void *body, size_t len)
{
  h2o_req_t *req = r->req;
  req->res.status = status;
  req->res.reason = status == 200 ? "OK" : "";
  s3_header_add(r, "x-amz-request-id", r->rid, S3_RID_LEN);
  if (ctype)
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   ctype, strlen(ctype));
  /* HEAD and 304 carry no body; h2o_send_inline leaves it out for HEAD. */
  req->res.content_length = status == 304 ? SIZE_MAX : len;
  h2o_send_inline(req, body, status == 304 ? 0 : len);
}

void s3_reply_empty(s3_req_t *r, int status)
{
  s3_reply(r, status, NULL, "", 0);
}

void s3_reply_xml(s3_req_t *r, int status, ks_buf_t *b)
{
  s3_reply(r, status, "application/xml", b->data ? (char *)b->data : "",
           b->len);
  ks_buf_free(b);
}

void s3_reply_error(s3_req_t *r, ks_s3_code_t code, const char *message)
{
  int status = ks_s3_code_status(code);
  if (code != KS_S3_NOT_MODIFIED)
    r->srv->st.errors++;
  ks_log_debug(S3_COMP, "s3_error", "rid=%s op=%s code=%s status=%d", r->rid,
               ks_s3_op_name(r->op), ks_s3_code_name(code), status);
  if (code == KS_S3_NOT_MODIFIED || s3_is_head(r)) {
    s3_reply(r, status, NULL, "", 0);
    return;
  }
  ks_buf_t b = KS_BUF_INIT;
  char res[512];
  snprintf(res, sizeof(res), "%.*s", (int)r->http.path_len, r->http.path);
  if (ks_s3_xml_error(&b, code, message, res, r->rid) != 0) {
    ks_buf_free(&b);
    h2o_send_error_500(r->req, "Internal Server Error", "out of memory", 0);
    return;
  }
  s3_reply_xml(r, status, &b);
}

/* ---- backend calls --------------------------------------------------------
 */

void ks_s3_bop_done(ks_s3_bop_t *op, ks_s3_code_t code, const char *message)
{
  s3_req_t *r = op->_srv;
  assert(r->be_busy);
  op->_code = code;
  op->message = message;
  r->be_busy = false;
  ks_s3_bop_cb cb = op->_cb;
  if (r->req != NULL)
    cb(op);
  s3_req_maybe_free(r);
}

void s3_backend_call(s3_req_t *r, ks_s3_bop_fn fn, ks_s3_bop_cb cb)
{
  assert(!r->be_busy);
  r->bop._cb = cb;
  r->be_called = true;
  r->be_busy = true;
  fn(r->srv->be->impl, &r->bop);
}

/* The backend of a gateway with no object store: no keys, no operations. */
static const ks_s3_backend_ops_t s3_none_ops = {0};
static const ks_s3_backend_t s3_none = {&s3_none_ops, NULL};

const ks_s3_backend_t *ks_s3_backend_none(void)
{
  return &s3_none;
}

/* ---- streaming GET --------------------------------------------------------
 */

static void s3_stream_pull(s3_req_t *r);

static void s3_stream_read_cb(ks_s3_bop_t *op, ks_s3_code_t code, const void *p,
                              size_t n)
{
  s3_req_t *r = op->_srv;
  if (r->req == NULL || r->stopped)
    return;
  uint64_t want = r->end - r->off;
  if (!r->streaming) {
    if (code != KS_S3_OK || n == 0 || n > want) {
      /* Nothing sent yet: a real error answer instead of a cut body. */
      ks_log_warn(
          S3_COMP, "get_failed", "rid=%s code=%s", r->rid,
          ks_s3_code_name(code != KS_S3_OK ? code : KS_S3_INTERNAL_ERROR));
      r->req->res.headers = (h2o_headers_t){NULL, 0, 0};
      s3_reply_error(r, code != KS_S3_OK ? code : KS_S3_INTERNAL_ERROR, NULL);
      return;
    }
    r->streaming = true;
    h2o_start_response(r->req, &r->gen);
  }
  if (code != KS_S3_OK || n == 0 || n > want) {
    ks_log_warn(S3_COMP, "get_aborted", "rid=%s code=%s off=%" PRIu64, r->rid,
                ks_s3_code_name(code), r->off);
    h2o_send(r->req, NULL, 0, H2O_SEND_STATE_ERROR);
    return;
  }
  r->off += n;
  /* h2o writes from p itself (no copy): p is the backend's buffer, valid
   * until the next read(), which only s3_gen_proceed pulls, once h2o is
   * done with this one (or release, after h2o let go of the request) */
  h2o_iovec_t buf = h2o_iovec_init(p, n);
  bool last = r->off == r->end;
  if (!last)
    h2o_timeout_link(r->srv->loop, &r->srv->write_timeout, &r->wtimer);
  h2o_send(r->req, &buf, 1,
           last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

void ks_s3_bop_read_done(ks_s3_bop_t *op, ks_s3_code_t code, const void *p,
                         size_t n)
{
  s3_req_t *r = op->_srv;
  assert(r->be_busy);
  r->be_busy = false;
  s3_stream_read_cb(op, code, p, n);
  s3_req_maybe_free(r);
}

static void s3_stream_pull(s3_req_t *r)
{
  uint64_t left = r->end - r->off;
  size_t max =
      left < r->srv->o.read_chunk ? (size_t)left : r->srv->o.read_chunk;
  r->be_busy = true;
  r->srv->be->ops->read(r->srv->be->impl, &r->bop, r->off, max);
}

static void s3_gen_proceed(h2o_generator_t *g, h2o_req_t *req)
{
  s3_req_t *r = H2O_STRUCT_FROM_MEMBER(s3_req_t, gen, g);
  (void)req;
  if (h2o_timeout_is_linked(&r->wtimer))
    h2o_timeout_unlink(&r->wtimer);
  if (r->off < r->end && !r->be_busy)
    s3_stream_pull(r);
}

static void s3_gen_stop(h2o_generator_t *g, h2o_req_t *req)
{
  s3_req_t *r = H2O_STRUCT_FROM_MEMBER(s3_req_t, gen, g);
  (void)req;
  r->stopped = true;
  if (h2o_timeout_is_linked(&r->wtimer))
    h2o_timeout_unlink(&r->wtimer);
}

/* The client has not taken data for req_timeout_ms: shut the socket down,
 * so the pending write fails and h2o closes the connection its own way. */
static void s3_write_timeout_cb(h2o_timeout_entry_t *e)
{
  s3_req_t *r = H2O_STRUCT_FROM_MEMBER(s3_req_t, wtimer, e);
  if (r->req == NULL)
    return;
  ks_log_info(S3_COMP, "slow_reader", "rid=%s sent=%" PRIu64, r->rid, r->off);
  h2o_socket_t *sock = r->req->conn->callbacks->get_socket(r->req->conn);
  if (sock != NULL)
    (void)shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
}

void s3_stream_start(s3_req_t *r)
{
  r->gen.proceed = s3_gen_proceed;
  r->gen.stop = s3_gen_stop;
  r->wtimer.cb = s3_write_timeout_cb;
  r->bop._read_cb = NULL;
  r->bop.read_end = r->end; /* the backend fetches ahead up to it */
  if (r->off == r->end || s3_is_head(r)) {
    r->streaming = true;
    h2o_start_response(r->req, &r->gen);
    h2o_send(r->req, NULL, 0, H2O_SEND_STATE_FINAL);
    return;
  }
  /* The response starts with the first piece read (s3_stream_read_cb). */
  s3_stream_pull(r);
}

/* ---- intake: headers -------------------------------------------------------
 */

/* A bodiless PUT or POST still carried "Content-Length: 0". */
static bool s3_method_has_body(const h2o_req_t *req)
{
  return h2o_memis(req->input.method.base, req->input.method.len,
                   H2O_STRLIT("PUT")) ||
         h2o_memis(req->input.method.base, req->input.method.len,
                   H2O_STRLIT("POST"));
}

static ks_s3_code_t s3_intake_headers(s3_req_t *r)
{
  h2o_req_t *req = r->req;
  size_t n = req->headers.size, total = 0;
  /* h2o keeps Host (req->input.authority) and Content-Length (the body is
   * whole in req->entity) out of the list; SigV4 clients sign both (s3cmd
   * and aws-sdk-go sign content-length), so both are put back. */
  r->hdrs = h2o_mem_alloc_pool(&req->pool, (n + 2) * sizeof(*r->hdrs));
  for (size_t i = 0; i < n; i++) {
    const h2o_header_t *h = req->headers.entries + i;
    r->hdrs[i] = (ks_s3_header_t){h->name->base, h->value.base, h->name->len,
                                  h->value.len};
    total += h->name->len + h->value.len + 4;
  }
  if (req->input.authority.base != NULL &&
      h2o_find_header(&req->headers, H2O_TOKEN_HOST, -1) == -1)
    r->hdrs[n++] = (ks_s3_header_t){"host", req->input.authority.base, 4,
                                    req->input.authority.len};
  if (h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_LENGTH, -1) == -1 &&
      (req->entity.base != NULL || s3_method_has_body(req))) {
    char *cl = h2o_mem_alloc_pool(&req->pool, 24);
    int len = snprintf(cl, 24, "%zu", req->entity.len);
    r->hdrs[n++] = (ks_s3_header_t){"content-length", cl, 14, (size_t)len};
  }
  total += req->input.path.len + req->input.method.len + 12;
  if (total > r->srv->o.max_header_bytes)
    return KS_S3_REQUEST_HEADER_TOO_LARGE;
  r->http.method = req->input.method.base;
  r->http.method_len = req->input.method.len;
  r->http.path = req->input.path.base;
  r->http.path_len = req->input.path.len;
  r->http.query = "";
  if (req->input.query_at != SIZE_MAX) {
    r->http.path_len = req->input.query_at;
    r->http.query = req->input.path.base + req->input.query_at + 1;
    r->http.query_len = req->input.path.len - req->input.query_at - 1;
  }
  r->http.headers = r->hdrs;
  r->http.nheaders = n;
  return KS_S3_OK;
}

static ks_s3_code_t s3_intake_target(s3_req_t *r)
{
  h2o_req_t *req = r->req;
  ks_s3_code_t c = ks_s3_target_parse(
      req->input.authority.base, req->input.authority.len, r->srv->domain,
      r->http.path, r->http.path_len, &r->target);
  if (c != KS_S3_OK)
    return c;
  return ks_s3_op_dispatch(r->http.method, r->http.method_len, &r->target,
                           r->http.query, r->http.query_len,
                           ks_s3_header_find(&r->http, "x-amz-copy-source"),
                           &r->op);
}

/* ---- intake: authentication -------------------------------------------------
 */

static int s3_secret_cb(void *ctx, const char *akid, size_t akid_len,
                        char *secret, size_t size, size_t *len)
{
  s3_req_t *r = ctx;
  const ks_s3_backend_ops_t *ops = r->srv->be->ops;
  if (ops->key_lookup == NULL)
    return -ENOENT;
  return ops->key_lookup(r->srv->be->impl, akid, akid_len, secret, size, len,
                         &r->who);
}

static ks_s3_code_t s3_intake_auth(s3_req_t *r)
{
  ks_s3_auth_cfg_t cfg = {.lookup = s3_secret_cb,
                          .lookup_ctx = r,
                          .region = r->srv->region,
                          .service = "s3",
                          .cache = &r->srv->keys};
  int64_t now = ks_time_real_ns() / KS_NSEC_PER_SEC;
  ks_s3_code_t c = ks_s3_auth_verify(&cfg, &r->http, now, &r->auth);
  if (c == KS_S3_OK)
    r->bop.who = &r->who;
  return c;
}

/* ---- intake: body -----------------------------------------------------------
 */

static int s3_iov_push(void *ctx, const void *p, size_t n)
{
  s3_req_t *r = ctx;
  if (n == 0)
    return 0;
  struct iovec *last = r->niov > 0 && r->iov ? &r->iov[r->niov - 1] : NULL;
  if (last && (const uint8_t *)last->iov_base + last->iov_len == p) {
    last->iov_len += n; /* adjacent pieces (never across chunk framing) */
    return 0;
  }
  if (r->niov == r->iov_cap) {
    int cap = r->iov_cap ? r->iov_cap * 2 : 64;
    struct iovec *v =
        realloc(r->iov == &r->one ? NULL : r->iov, (size_t)cap * sizeof(*v));
    if (v == NULL)
      return -ENOMEM;
    r->iov = v;
    r->iov_cap = cap;
  }
  if (r->iov == NULL)
    return -ENOMEM; /* not reached: the array grew above */
  r->iov[r->niov++] = (struct iovec){(void *)p, n};
  return 0;
}

static ks_s3_code_t s3_body_chunked(s3_req_t *r, const h2o_iovec_t *e)
{
  uint64_t expected = UINT64_MAX;
  size_t n;
  const char *v = s3_header_get(r, "x-amz-decoded-content-length", &n);
  if (v != NULL) {
    char tmp[24];
    char *endp;
    if (n == 0 || n >= sizeof(tmp))
      return KS_S3_INVALID_ARGUMENT;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    expected = strtoull(tmp, &endp, 10);
    if (*endp != '\0' || tmp[0] == '-')
      return KS_S3_INVALID_ARGUMENT;
  }
  ks_s3_chunked_t d;
  r->iov = NULL;
  if (ks_s3_chunked_init(&d, &r->auth, expected, 0, s3_iov_push, r) != 0)
    return KS_S3_INTERNAL_ERROR;
  ks_s3_code_t c = ks_s3_chunked_feed(&d, e->base, e->len);
  if (c == KS_S3_OK)
    c = ks_s3_chunked_finish(&d);
  if (c != KS_S3_OK)
    r->auth.message = d.message;
  ks_s3_chunked_free(&d);
  if (r->iov == NULL)
    r->iov = &r->one;
  return c;
}

static int s3_body_hash(const s3_req_t *r, ks_hash_alg_t alg, uint8_t *out)
{
  ks_hash_ctx_t h = KS_HASH_CTX_INIT;
  int rc = ks_hash_init(&h, alg);
  for (int i = 0; rc == 0 && i < r->niov; i++)
    rc = ks_hash_update(&h, r->iov[i].iov_base, r->iov[i].iov_len);
  if (rc == 0)
    rc = ks_hash_final(&h, out);
  ks_hash_free(&h);
  return rc;
}

/* A base64 header value of exactly want bytes into out: OK, or bad. */
static ks_s3_code_t s3_b64_header(const s3_req_t *r, const char *name,
                                  uint8_t *out, size_t want, bool *present,
                                  ks_s3_code_t bad)
{
  size_t n;
  const char *v = s3_header_get(r, name, &n);
  *present = v != NULL;
  if (v == NULL)
    return KS_S3_OK;
  uint8_t tmp[64];
  int len = n % 4 == 0 && KS_B64_DECODED_MAX(n) <= sizeof(tmp)
                ? ks_b64_decode(tmp, sizeof(tmp), v, n)
                : -EINVAL;
  if (len != (int)want)
    return bad;
  memcpy(out, tmp, want);
  return KS_S3_OK;
}

static ks_s3_code_t s3_body_digests(s3_req_t *r)
{
  uint8_t want[KS_SHA256_LEN], got[KS_SHA256_LEN];
  bool has;
  if (s3_body_hash(r, KS_HASH_MD5, r->bop.body_md5) != 0)
    return KS_S3_INTERNAL_ERROR;
  ks_s3_code_t c = s3_b64_header(r, "content-md5", want, KS_MD5_LEN, &has,
                                 KS_S3_INVALID_DIGEST);
  if (c != KS_S3_OK)
    return c;
  if (has && memcmp(want, r->bop.body_md5, KS_MD5_LEN) != 0)
    return KS_S3_BAD_DIGEST;
  c = s3_b64_header(r, "x-amz-checksum-sha256", want, KS_SHA256_LEN, &has,
                    KS_S3_INVALID_REQUEST);
  if (c != KS_S3_OK)
    return c;
  if (has && (s3_body_hash(r, KS_HASH_SHA256, got) != 0 ||
              memcmp(want, got, KS_SHA256_LEN) != 0))
    return KS_S3_BAD_DIGEST;
  c = s3_b64_header(r, "x-amz-checksum-sha1", want, KS_SHA1_LEN, &has,
                    KS_S3_INVALID_REQUEST);
  if (c != KS_S3_OK)
    return c;
  if (has && (s3_body_hash(r, KS_HASH_SHA1, got) != 0 ||
              memcmp(want, got, KS_SHA1_LEN) != 0))
    return KS_S3_BAD_DIGEST;
  for (int castagnoli = 0; castagnoli < 2; castagnoli++) {
    c = s3_b64_header(
        r, castagnoli ? "x-amz-checksum-crc32c" : "x-amz-checksum-crc32", want,
        4, &has, KS_S3_INVALID_REQUEST);
    if (c != KS_S3_OK)
      return c;
    if (!has)
      continue;
    uint32_t crc = castagnoli ? ks_crc32c_iov(0, r->iov, r->niov)
                              : ks_crc32_iov(0, r->iov, r->niov);
    uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
                     (uint8_t)(crc >> 8), (uint8_t)crc};
    if (memcmp(want, be, 4) != 0)
      return KS_S3_BAD_DIGEST;
  }
  return KS_S3_OK;
}

/* Checksums of other algorithms would go unverified: refuse them (CRC-64/
 * NVME needs a CRC the packaged isa-l does not have). */
static ks_s3_code_t s3_body_unsupported_checksum(const s3_req_t *r)
{
  static const char *const other[] = {"x-amz-checksum-crc64nvme"};
  for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
    if (ks_s3_header_find(&r->http, other[i]) != NULL)
      return KS_S3_NOT_IMPLEMENTED;
  return KS_S3_OK;
}

static ks_s3_code_t s3_intake_body(s3_req_t *r)
{
  h2o_iovec_t e = r->req->entity;
  if (e.base == NULL)
    e = h2o_iovec_init("", 0);
  ks_s3_code_t c = s3_body_unsupported_checksum(r);
  if (c != KS_S3_OK)
    return c;
  if (r->auth.payload == KS_S3_PAYLOAD_STREAMING) {
    c = s3_body_chunked(r, &e);
    if (c != KS_S3_OK)
      return c;
  } else {
    r->one = (struct iovec){e.base, e.len};
    r->niov = 1;
  }
  r->body_len = ks_iov_total(r->iov, r->niov);
  if (r->auth.payload == KS_S3_PAYLOAD_SIGNED) {
    uint8_t got[KS_SHA256_LEN];
    if (ks_sha256(e.base, e.len, got) != 0)
      return KS_S3_INTERNAL_ERROR;
    if (memcmp(got, r->auth.payload_sha256, KS_SHA256_LEN) != 0)
      return KS_S3_CONTENT_SHA256_MISMATCH;
  }
  c = s3_body_digests(r);
  if (c != KS_S3_OK)
    return c;
  r->bop.body = r->iov;
  r->bop.nbody = r->niov;
  r->bop.body_len = r->body_len;
  return KS_S3_OK;
}

/* ---- the handler ------------------------------------------------------------
 */

static ks_s3_code_t s3_intake(s3_req_t *r, const char **msg)
{
  ks_s3_code_t c = s3_intake_headers(r);
  if (c == KS_S3_OK)
    c = s3_intake_target(r);
  if (c != KS_S3_OK)
    return c;
  c = s3_intake_auth(r);
  if (c != KS_S3_OK) {
    *msg = r->auth.message;
    return c;
  }
  r->presigned_ok = true;
  if (s3_op_backend_fn(r->srv->be, r->op) == NULL)
    return KS_S3_NOT_IMPLEMENTED;
  c = s3_intake_body(r);
  if (c != KS_S3_OK && r->auth.payload == KS_S3_PAYLOAD_STREAMING)
    *msg = r->auth.message;
  return c;
}

static int s3_on_req(h2o_handler_t *self, h2o_req_t *req)
{
  ks_s3_server_t *s = ((s3_handler_t *)self)->srv;
  s3_req_t *r = s3_req_new(s, req);
  if (r == NULL) {
    h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
    return 0;
  }
  const char *msg = NULL;
  ks_s3_code_t c = s3_intake(r, &msg);
  if (c != KS_S3_OK) {
    s3_reply_error(r, c, msg);
    return 0;
  }
  r->bop.op = r->op;
  s3_op_start(r);
  return 0;
}

/* ---- connections -------------------------------------------------------- */

static void s3_server_try_finish(ks_s3_server_t *s);

static void s3_conn_closed(uv_handle_t *h)
{
  s3_conn_t *c = H2O_STRUCT_FROM_MEMBER(s3_conn_t, tcp, (uv_tcp_t *)h);
  ks_s3_server_t *s = c->srv;
  h2o_linklist_unlink(&c->link);
  free(c);
  assert(s->st.conns > 0);
  s->st.conns--;
  if (s->closing)
    s3_server_try_finish(s);
}

static void s3_on_accept(uv_stream_t *listener, int status)
{
  ks_s3_server_t *s = listener->data;
  if (status != 0 || s->closing)
    return;
  s3_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL || uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  c->srv = s;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    return;
  }
  (void)uv_tcp_nodelay(&c->tcp, 1);
  h2o_linklist_insert(&s->conns, &c->link);
  s->st.conns++;
  h2o_socket_t *sock =
      h2o_uv_socket_create((uv_stream_t *)&c->tcp, s3_conn_closed);
  h2o_accept(&s->actx, sock);
}

/* Shutting the read side makes h2o see end of input: an idle keep-alive
 * connection closes at once, a busy one right after its answer. */
static void s3_conns_shut_read(ks_s3_server_t *s)
{
  for (h2o_linklist_t *l = s->conns.next; l != &s->conns; l = l->next) {
    s3_conn_t *c = H2O_STRUCT_FROM_MEMBER(s3_conn_t, link, l);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
      (void)shutdown(fd, SHUT_RD);
  }
}

/* ---- life cycle -------------------------------------------------------------
 */

static void s3_opts_defaults(ks_s3_server_opts_t *o)
{
  if (o->max_body == 0)
    o->max_body = S3_DEF_MAX_BODY;
  if (o->max_header_bytes == 0)
    o->max_header_bytes = S3_DEF_MAX_HEADER;
  if (o->req_timeout_ms == 0)
    o->req_timeout_ms = S3_DEF_TIMEOUT_MS;
  if (o->grace_ms == 0)
    o->grace_ms = S3_DEF_GRACE_MS;
  if (o->read_chunk == 0)
    o->read_chunk = S3_DEF_READ_CHUNK;
}

static int s3_h2o_setup(ks_s3_server_t *s, const char *mmap_dir)
{
  h2o_config_init(&s->gconf);
  s->gconf.server_name = h2o_iovec_init(H2O_STRLIT("kiseki"));
  s->gconf.max_request_entity_size = (size_t)s->o.max_body;
  s->gconf.http1.req_timeout = s->o.req_timeout_ms;
  s->gconf.http1.upgrade_to_http2 = 0;
  h2o_hostconf_t *host = h2o_config_register_host(
      &s->gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
  s3_handler_t *h = (s3_handler_t *)h2o_create_handler(path, sizeof(*h));
  h->super.on_req = s3_on_req;
  h->srv = s;
  h2o_buffer_mmap_settings_t *m = &h2o_socket_buffer_mmap_settings;
  int n = snprintf(m->fn_template, sizeof(m->fn_template),
                   "%s/kiseki-s3-body.XXXXXX", mmap_dir ? mmap_dir : "/tmp");
  if (n < 0 || (size_t)n >= sizeof(m->fn_template))
    return KS_ECONFIG;
  m->threshold = S3_MMAP_THRESHOLD;
  h2o_context_init(&s->ctx, s->loop, &s->gconf);
  s->ctx_live = true;
  h2o_timeout_init(s->loop, &s->write_timeout, s->o.req_timeout_ms);
  s->actx.ctx = &s->ctx;
  s->actx.hosts = s->gconf.hosts;
  return 0;
}

static int s3_listen(ks_s3_server_t *s, const char *host)
{
  struct sockaddr_storage ss;
  if (host == NULL)
    return KS_ECONFIG;
  int rc = uv_ip4_addr(host, s->o.port, (struct sockaddr_in *)&ss);
  if (rc != 0)
    rc = uv_ip6_addr(host, s->o.port, (struct sockaddr_in6 *)&ss);
  if (rc != 0)
    return KS_ECONFIG;
  rc = uv_tcp_init(s->loop, &s->listener);
  if (rc != 0)
    return rc;
  s->listener.data = s;
  s->handles_open++;
  rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, 1024, s3_on_accept);
  return rc;
}

static void s3_server_free(ks_s3_server_t *s)
{
  if (s->ctx_live) {
    h2o_timeout_dispose(s->loop, &s->write_timeout);
    h2o_context_dispose(&s->ctx);
  }
  h2o_config_dispose(&s->gconf);
  ks_s3_key_cache_clear(&s->keys);
  free(s->domain);
  free(s->region);
  free(s);
}

static void s3_reaper_closed(uv_handle_t *h)
{
  ks_s3_server_t *s = h->data;
  ks_s3_server_close_cb cb = s->close_cb;
  void *arg = s->close_arg;
  h2o_config_dispose(&s->gconf);
  ks_s3_key_cache_clear(&s->keys);
  free(s->domain);
  free(s->region);
  free(s);
  if (cb)
    cb(arg, 0);
}

/* One loop turn after h2o_context_dispose: its uv_close()d timers live in
 * this struct, and libuv touches them in the close phase that follows, so
 * the memory may go only after that phase (as admin_http.c does). */
static void s3_reaper_cb(uv_idle_t *h)
{
  uv_idle_stop(h);
  uv_close((uv_handle_t *)h, s3_reaper_closed);
}

static void s3_handle_closed(uv_handle_t *h)
{
  ks_s3_server_t *s = h->data;
  assert(s->handles_open > 0);
  if (--s->handles_open > 0 || s->forced)
    return;
  if (!s->ctx_live || uv_idle_init(s->loop, &s->reaper) != 0) {
    ks_s3_server_close_cb cb = s->close_cb;
    void *arg = s->close_arg;
    s3_server_free(s);
    if (cb)
      cb(arg, 0);
    return;
  }
  h2o_timeout_dispose(s->loop, &s->write_timeout);
  h2o_context_dispose(&s->ctx);
  s->ctx_live = false;
  s->reaper.data = s;
  uv_idle_start(&s->reaper, s3_reaper_cb);
}

int ks_s3_server_new(uv_loop_t *loop, const ks_s3_server_opts_t *opts,
                     const ks_s3_backend_t *be, ks_s3_server_t **out)
{
  ks_s3_server_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  s->loop = loop;
  s->be = be;
  s->o = *opts;
  s3_opts_defaults(&s->o);
  h2o_linklist_init_anchor(&s->conns);
  bool has_domain = opts->domain && opts->domain[0];
  s->domain = has_domain ? strdup(opts->domain) : NULL;
  s->region = strdup(opts->region ? opts->region : "us-east-1");
  /* borrowed strings are valid only during this call */
  s->o.host = s->o.mmap_dir = NULL;
  s->o.domain = s->domain;
  s->o.region = s->region;
  int rc = s->region == NULL || (has_domain && s->domain == NULL) ? -ENOMEM : 0;
  if (rc == 0)
    rc = ks_rand_bytes(&s->rid_prefix, sizeof(s->rid_prefix));
  ks_s3_xml_init();
  if (rc == 0)
    rc = s3_h2o_setup(s, opts->mmap_dir);
  if (rc == 0)
    rc = s3_listen(s, opts->host);
  if (rc == 0) {
    *out = s;
    return 0;
  }
  if (s->handles_open == 0) {
    s3_server_free(s);
    return rc;
  }
  /* the listener handle must be closed before its memory goes */
  s->closing = true;
  uv_close((uv_handle_t *)&s->listener, s3_handle_closed);
  return rc;
}

uint16_t ks_s3_server_port(const ks_s3_server_t *s)
{
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void ks_s3_server_stats(const ks_s3_server_t *s, ks_s3_server_stats_t *out)
{
  *out = s->st;
}

/* Closing: the listener is already closed; once no connection and no
 * request is left, the grace timer goes and the last close frees. */
static void s3_server_try_finish(ks_s3_server_t *s)
{
  if (s->st.conns > 0 || s->st.inflight > 0 || s->finishing || s->forced)
    return;
  s->finishing = true;
  uv_timer_stop(&s->grace);
  uv_close((uv_handle_t *)&s->grace, s3_handle_closed);
}

static void s3_grace_cb(uv_timer_t *t)
{
  ks_s3_server_t *s = t->data;
  ks_log_warn(S3_COMP, "close_forced", "conns=%" PRIu64 " inflight=%" PRIu64,
              s->st.conns, s->st.inflight);
  s->forced = true;
  uv_close((uv_handle_t *)&s->grace, s3_handle_closed);
  if (s->close_cb)
    s->close_cb(s->close_arg, KS_ETIMEDOUT);
}

void ks_s3_server_close(ks_s3_server_t *s, ks_s3_server_close_cb cb, void *arg)
{
  assert(!s->closing);
  s->closing = true;
  s->close_cb = cb;
  s->close_arg = arg;
  uv_close((uv_handle_t *)&s->listener, s3_handle_closed);
  (void)uv_timer_init(s->loop, &s->grace);
  s->grace.data = s;
  s->handles_open++;
  uv_timer_start(&s->grace, s3_grace_cb, s->o.grace_ms, 0);
  /* HTTP/1 only (no h2c upgrade), so shutting the read sides is all it
   * takes; h2o_context_request_shutdown would arm an HTTP/2 GOAWAY timer
   * that must expire before the context can be disposed. */
  s3_conns_shut_read(s);
  s3_server_try_finish(s);
}
