/*
 * test_s3_server.c — the S3 HTTP server (ks/s3_server.h) as a client sees
 * it: the real h2o server runs on its own libuv loop in a thread, on a free
 * loopback port, and the tests talk raw HTTP/1.1 to it over sockets,
 * signing requests themselves with the SigV4 building blocks of
 * ks/s3_sigv4.h (no libcurl needed).
 *
 * THE BACKEND HERE IS THE TEST'S OWN: an in-memory bucket/object map that
 * stands in for libkiseki's object layer, which does not exist yet.  It
 * implements buckets, put/get/head/delete of objects and nothing else, so
 * the other operations show the server's NotImplemented path.  It also
 * counts what the server asks of it (read() calls, body pieces) so tests
 * can see that big GETs are pulled incrementally and that bad bodies never
 * reach a put.  One object, "big/virtual", is generated on the fly (byte i
 * = i * 7 mod 251) so a 64 MiB GET needs no 64 MiB buffer anywhere.
 *
 * Covered: auth success and every auth failure the server can produce
 * (wrong secret, unknown key, anonymous, clock skew, malformed header,
 * missing content hash, presigned valid/expired, aws-chunked with a good
 * and a tampered chunk), body digests (x-amz-content-sha256, Content-MD5,
 * x-amz-checksum-crc32/-crc32c/-sha1/-sha256), NotImplemented, the error XML,
 * ranges and 416, 304/412, HEAD, a 64 MiB PUT, a 64 MiB streamed GET, malformed
 * HTTP, oversized headers, a slow client, and graceful close (the loop closes
 * with no handle left).
 */
#include "ks/codec.h"
#include "ks/crc32c.h"
#include "ks/crypto.h"
#include "ks/s3_server.h"
#include "ks/s3_sigv4.h"
#include "ks/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#define AK "AKIDKISEKITEST"
#define SK "kiseki/test/secret+key"
#define REGION "us-east-1"
#define BIG_SIZE (64u << 20)
#define MAX_OBJS 16

/* ==== the test's backend (stands in for libkiseki) ======================== */

typedef struct tobj {
  char bucket[64];
  char key[256];
  uint8_t *data; /* NULL for bodies above 1 MiB (only md5/size kept) */
  uint64_t size;
  char etag[KS_S3_ETAG_MAX];
  char ctype[64];
  char meta[64];
  ks_s3_meta_pair_t pair;
  bool used;
  bool virt;
} tobj_t;

typedef struct tbe {
  char buckets[4][64];
  int nbuckets;
  tobj_t objs[MAX_OBJS];
  uint8_t scratch[1 << 20];
  ks_s3_bucket_entry_t list[4];
  atomic_uint_fast64_t reads;      /* read() calls */
  atomic_uint_fast64_t read_bytes; /* bytes handed out */
  atomic_int puts;                 /* put_object calls */
  atomic_int last_nbody;
  atomic_int releases;
} tbe_t;

static int tb_key_lookup(void *impl, const char *akid, size_t n, char *secret,
                         size_t size, size_t *len, ks_s3_principal_t *who)
{
  (void)impl;
  if (n != strlen(AK) || memcmp(akid, AK, n) != 0)
    return -ENOENT;
  *len = strlen(SK);
  assert_true(*len <= size);
  memcpy(secret, SK, *len);
  snprintf(who->tenant, sizeof(who->tenant), "tenant-1");
  return 0;
}

static bool tb_has_bucket(tbe_t *b, const char *name)
{
  for (int i = 0; i < b->nbuckets; i++)
    if (strcmp(b->buckets[i], name) == 0)
      return true;
  return false;
}

static tobj_t *tb_find(tbe_t *b, const ks_s3_bop_t *op)
{
  for (int i = 0; i < MAX_OBJS; i++)
    if (b->objs[i].used && strcmp(b->objs[i].bucket, op->bucket) == 0 &&
        strcmp(b->objs[i].key, op->key) == 0)
      return &b->objs[i];
  return NULL;
}

static void tb_list_buckets(void *impl, ks_s3_bop_t *op)
{
  tbe_t *b = impl;
  for (int i = 0; i < b->nbuckets; i++)
    b->list[i] = (ks_s3_bucket_entry_t){b->buckets[i], 1700000000};
  op->buckets = b->list;
  op->nbuckets = (size_t)b->nbuckets;
  ks_s3_bop_done(op, KS_S3_OK, NULL);
}

static void tb_create_bucket(void *impl, ks_s3_bop_t *op)
{
  tbe_t *b = impl;
  if (tb_has_bucket(b, op->bucket)) {
    ks_s3_bop_done(op, KS_S3_BUCKET_ALREADY_OWNED_BY_YOU, NULL);
    return;
  }
  snprintf(b->buckets[b->nbuckets++], 64, "%s", op->bucket);
  ks_s3_bop_done(op, KS_S3_OK, NULL);
}

static void tb_head_bucket(void *impl, ks_s3_bop_t *op)
{
  ks_s3_bop_done(
      op, tb_has_bucket(impl, op->bucket) ? KS_S3_OK : KS_S3_NO_SUCH_BUCKET,
      NULL);
}

static void tb_head_object(void *impl, ks_s3_bop_t *op)
{
  tbe_t *b = impl;
  tobj_t *o = tb_find(b, op);
  if (!tb_has_bucket(b, op->bucket) || o == NULL) {
    ks_s3_bop_done(op,
                   tb_has_bucket(b, op->bucket) ? KS_S3_NO_SUCH_KEY
                                                : KS_S3_NO_SUCH_BUCKET,
                   NULL);
    return;
  }
  memcpy(op->info.etag, o->etag, sizeof(o->etag));
  op->info.size = o->size;
  op->info.mtime_s = 1700000000;
  op->info.attrs.content_type = o->ctype[0] ? o->ctype : NULL;
  if (o->meta[0]) {
    o->pair = (ks_s3_meta_pair_t){"color", o->meta};
    op->info.attrs.meta = &o->pair;
    op->info.attrs.nmeta = 1;
  }
  op->be_data = o;
  ks_s3_bop_done(op, KS_S3_OK, NULL);
}

static void tb_read(void *impl, ks_s3_bop_t *op, uint64_t off, size_t max)
{
  tbe_t *b = impl;
  tobj_t *o = op->be_data;
  assert_non_null(o);
  assert_true(off + max <= o->size);
  atomic_fetch_add(&b->reads, 1);
  atomic_fetch_add(&b->read_bytes, max);
  if (!o->virt) {
    ks_s3_bop_read_done(op, KS_S3_OK, o->data + off, max);
    return;
  }
  assert_true(max <= sizeof(b->scratch));
  for (size_t i = 0; i < max; i++)
    b->scratch[i] = (uint8_t)((off + i) * 7 % 251);
  ks_s3_bop_read_done(op, KS_S3_OK, b->scratch, max);
}

static void tb_put_object(void *impl, ks_s3_bop_t *op)
{
  tbe_t *b = impl;
  if (!tb_has_bucket(b, op->bucket)) {
    ks_s3_bop_done(op, KS_S3_NO_SUCH_BUCKET, NULL);
    return;
  }
  tobj_t *o = tb_find(b, op);
  for (int i = 0; o == NULL && i < MAX_OBJS; i++)
    if (!b->objs[i].used)
      o = &b->objs[i];
  assert_non_null(o);
  free(o->data);
  memset(o, 0, sizeof(*o));
  o->used = true;
  snprintf(o->bucket, sizeof(o->bucket), "%s", op->bucket);
  snprintf(o->key, sizeof(o->key), "%s", op->key);
  o->size = op->body_len;
  if (op->body_len <= (1u << 20)) {
    o->data = malloc(op->body_len + 1);
    ks_iov_gather(o->data, op->body, op->nbody);
  }
  if (op->attrs->content_type)
    snprintf(o->ctype, sizeof(o->ctype), "%s", op->attrs->content_type);
  for (size_t i = 0; i < op->attrs->nmeta; i++)
    if (strcmp(op->attrs->meta[i].name, "color") == 0)
      snprintf(o->meta, sizeof(o->meta), "%s", op->attrs->meta[i].value);
  ks_s3_etag_format(o->etag, sizeof(o->etag), op->body_md5, 0);
  memcpy(op->info.etag, o->etag, sizeof(o->etag));
  atomic_fetch_add(&b->puts, 1);
  atomic_store(&b->last_nbody, op->nbody);
  ks_s3_bop_done(op, KS_S3_OK, NULL);
}

static void tb_delete_object(void *impl, ks_s3_bop_t *op)
{
  tobj_t *o = tb_find(impl, op);
  if (o != NULL && !o->virt) {
    free(o->data);
    memset(o, 0, sizeof(*o));
  }
  ks_s3_bop_done(op, KS_S3_OK, NULL);
}

static void tb_release(void *impl, ks_s3_bop_t *op)
{
  tbe_t *b = impl;
  (void)op;
  atomic_fetch_add(&b->releases, 1);
}

static const ks_s3_backend_ops_t tb_ops = {
    .key_lookup = tb_key_lookup,
    .list_buckets = tb_list_buckets,
    .create_bucket = tb_create_bucket,
    .head_bucket = tb_head_bucket,
    .head_object = tb_head_object,
    .get_object = tb_head_object,
    .read = tb_read,
    .put_object = tb_put_object,
    .delete_object = tb_delete_object,
    .release = tb_release,
};

/* ==== the server on its own thread ======================================== */

typedef struct tsrv {
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
  ks_s3_server_t *srv;
  tbe_t be_state;
  ks_s3_backend_t be;
  uint16_t port;
  sem_t done;
  int close_status;
  int loop_close_rc;
  bool closed;
} tsrv_t;

static tsrv_t *T; /* static storage: reachable while the thread is parked */

static void ts_closed(void *arg, int status)
{
  tsrv_t *t = arg;
  t->close_status = status;
  t->closed = true;
}

static void ts_stop_cb(uv_async_t *a)
{
  tsrv_t *t = a->data;
  ks_s3_server_close(t->srv, ts_closed, t);
  uv_close((uv_handle_t *)a, NULL);
}

/* The loop thread runs the server until close, checks that the loop closes
 * with no handle left, then parks for good: h2o keeps bounded per-thread
 * caches of request pools and buffers (thread-local, no API to drain
 * them), which LeakSanitizer would report if the thread exited. */
static void *ts_main(void *arg)
{
  tsrv_t *t = arg;
  uv_run(&t->loop, UV_RUN_DEFAULT);
  t->loop_close_rc = uv_loop_close(&t->loop);
  sem_post(&t->done);
  for (;;)
    pause();
  return NULL;
}

static int group_setup(void **state)
{
  (void)state;
  T = calloc(1, sizeof(*T));
  assert_non_null(T);
  assert_int_equal(uv_loop_init(&T->loop), 0);
  T->be = (ks_s3_backend_t){&tb_ops, &T->be_state};
  snprintf(T->be_state.buckets[0], 64, "bkt");
  T->be_state.nbuckets = 1;
  tobj_t *big = &T->be_state.objs[0];
  *big = (tobj_t){.bucket = "bkt",
                  .key = "big/virtual",
                  .size = BIG_SIZE,
                  .etag = "\"big\"",
                  .used = true,
                  .virt = true};
  ks_s3_server_opts_t o = {.host = "127.0.0.1",
                           .region = REGION,
                           .mmap_dir = "/tmp",
                           .req_timeout_ms = 1000,
                           .grace_ms = 5000};
  assert_int_equal(ks_s3_server_new(&T->loop, &o, &T->be, &T->srv), 0);
  T->port = ks_s3_server_port(T->srv);
  assert_true(T->port > 0);
  assert_int_equal(uv_async_init(&T->loop, &T->stop, ts_stop_cb), 0);
  T->stop.data = T;
  assert_int_equal(sem_init(&T->done, 0, 0), 0);
  assert_int_equal(pthread_create(&T->thread, NULL, ts_main, T), 0);
  pthread_detach(T->thread);
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  uv_async_send(&T->stop);
  while (sem_wait(&T->done) != 0)
    ;
  assert_true(T->closed);
  assert_int_equal(T->close_status, 0);
  assert_int_equal(T->loop_close_rc, 0);
  for (int i = 0; i < MAX_OBJS; i++)
    free(T->be_state.objs[i].data);
  /* T stays: the parked thread still points at it */
  return 0;
}

/* ==== a raw HTTP client that signs ======================================== */

typedef enum tmode {
  M_SIGNED,   /* payload hash in x-amz-content-sha256 */
  M_UNSIGNED, /* UNSIGNED-PAYLOAD */
  M_ANON,
  M_BAD_SECRET,
  M_UNKNOWN_KEY,
  M_SKEWED,
  M_NO_HASH,   /* signed, without x-amz-content-sha256 */
  M_WRONG_HASH /* signed with the hash of other bytes */
} tmode_t;

typedef struct tresp {
  int status;
  char *raw; /* headers and body, NUL-terminated */
  size_t len;
  const char *body;
  size_t body_len;
} tresp_t;

static void tresp_free(tresp_t *r)
{
  free(r->raw);
  memset(r, 0, sizeof(*r));
}

static int t_connect(int rcvbuf)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  if (rcvbuf)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  struct timeval tv = {20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(T->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

static void t_send_all(int fd, const void *p, size_t n)
{
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    assert_true(w > 0);
    b += w;
    n -= (size_t)w;
  }
}

/* Read to EOF (every request says Connection: close). */
static void t_read_resp(int fd, tresp_t *out)
{
  size_t cap = 1 << 16;
  memset(out, 0, sizeof(*out));
  out->raw = malloc(cap);
  for (;;) {
    if (cap - out->len < 65536) {
      cap *= 2;
      out->raw = realloc(out->raw, cap);
    }
    ssize_t n = recv(fd, out->raw + out->len, cap - out->len - 1, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    out->len += (size_t)n;
  }
  out->raw[out->len] = '\0';
  sscanf(out->raw, "HTTP/1.%*d %d", &out->status);
  char *e = strstr(out->raw, "\r\n\r\n");
  out->body = e ? e + 4 : out->raw + out->len;
  out->body_len = (size_t)(out->raw + out->len - out->body);
}

/* A response header's value (first match, case-insensitive), or NULL. */
static char *t_hdr(const tresp_t *r, const char *name, char *buf, size_t size)
{
  size_t nl = strlen(name);
  for (const char *p = strstr(r->raw, "\r\n"); p && p < r->body;
       p = strstr(p + 2, "\r\n")) {
    if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
      const char *v = p + 3 + nl;
      while (*v == ' ')
        v++;
      size_t n = strcspn(v, "\r");
      snprintf(buf, size, "%.*s", (int)n, v);
      return buf;
    }
  }
  return NULL;
}

static void t_amz_now(char date[KS_TIME_AMZ_LEN + 1], int64_t shift)
{
  ks_time_format_amz(date, KS_TIME_AMZ_LEN + 1, time(NULL) + shift);
}

/* The Authorization header value for method/path/query with the three
 * signed headers (plus extra signed ones, "name:value" lines). */
static void t_sign(const char *method, const char *path, const char *query,
                   const char *date, const char *hash, const char *secret,
                   const char *akid, const char *extra_name,
                   const char *extra_val, char *auth, size_t size,
                   char seed[KS_S3_SIG_HEX_LEN + 1])
{
  char host[32];
  snprintf(host, sizeof(host), "127.0.0.1:%u", T->port);
  ks_s3_header_t h[4] = {
      {"host", host, 4, strlen(host)},
      {"x-amz-content-sha256", hash, 20, strlen(hash)},
      {"x-amz-date", date, 10, strlen(date)},
  };
  size_t nh = 3;
  if (extra_name)
    h[nh++] = (ks_s3_header_t){extra_name, extra_val, strlen(extra_name),
                               strlen(extra_val)};
  ks_s3_http_req_t r = {method,         path,         query,         h,
                        strlen(method), strlen(path), strlen(query), nh};
  const char *sh = extra_name ? "host;x-amz-content-sha256;x-amz-date;"
                                "x-amz-decoded-content-length"
                              : "host;x-amz-content-sha256;x-amz-date";
  char date8[9], scope[128], sig[KS_S3_SIG_HEX_LEN + 1];
  uint8_t key[KS_HMAC_SHA256_LEN];
  snprintf(date8, sizeof(date8), "%.8s", date);
  snprintf(scope, sizeof(scope), "%s/" REGION "/s3/aws4_request", date8);
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(ks_s3_sigv4_canonical(&b, &r, false, sh, strlen(sh), hash),
                   0);
  assert_int_equal(
      ks_s3_sigv4_signing_key(secret, strlen(secret), date8, REGION, "s3", key),
      0);
  assert_int_equal(ks_s3_sigv4_sign(key, date, scope, b.data, b.len, sig), 0);
  ks_buf_free(&b);
  snprintf(auth, size,
           "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
           akid, scope, sh, sig);
  if (seed)
    memcpy(seed, sig, sizeof(sig));
}

typedef struct treq {
  const char *method;
  const char *path;
  const char *query; /* "" when none */
  const void *body;
  size_t blen;
  const char *extra; /* more header lines, each ending in \r\n */
  tmode_t mode;
} treq_t;

static void t_do(const treq_t *q, tresp_t *out)
{
  char date[KS_TIME_AMZ_LEN + 1], hash[KS_S3_SIG_HEX_LEN + 1];
  char auth[512] = "";
  t_amz_now(date, q->mode == M_SKEWED ? -3600 : 0);
  uint8_t d[KS_SHA256_LEN];
  ks_sha256(q->mode == M_WRONG_HASH ? "x"
            : q->body               ? q->body
                                    : "",
            q->mode == M_WRONG_HASH ? 1 : q->blen, d);
  ks_hex_encode(hash, sizeof(hash), d, sizeof(d));
  if (q->mode == M_UNSIGNED)
    snprintf(hash, sizeof(hash), KS_S3_UNSIGNED_PAYLOAD);
  if (q->mode != M_ANON)
    t_sign(q->method, q->path, q->query, date, hash,
           q->mode == M_BAD_SECRET ? "wrong" : SK,
           q->mode == M_UNKNOWN_KEY ? "AKIDUNKNOWN" : AK, NULL, NULL, auth,
           sizeof(auth), NULL);
  size_t cap = 4096 + strlen(q->path) + strlen(q->query) +
               (q->extra ? strlen(q->extra) : 0);
  char *head = malloc(cap);
  int n = snprintf(
      head, cap,
      "%s %s%s%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
      "Content-Length: %zu\r\nx-amz-date: %s\r\n%s%s%s%s%s%s%s",
      q->method, q->path, q->query[0] ? "?" : "", q->query, T->port, q->blen,
      date, q->mode == M_NO_HASH ? "" : "x-amz-content-sha256: ",
      q->mode == M_NO_HASH ? "" : hash, q->mode == M_NO_HASH ? "" : "\r\n",
      auth[0] ? "Authorization: " : "", auth, auth[0] ? "\r\n" : "",
      q->extra ? q->extra : "");
  n += snprintf(head + n, cap - (size_t)n, "\r\n");
  int fd = t_connect(0);
  t_send_all(fd, head, (size_t)n);
  if (q->blen)
    t_send_all(fd, q->body, q->blen);
  t_read_resp(fd, out);
  close(fd);
  free(head);
}

static void t_simple(const char *method, const char *path, const char *query,
                     tmode_t mode, tresp_t *out)
{
  treq_t q = {method, path, query, NULL, 0, NULL, mode};
  t_do(&q, out);
}

/* The <Code> of an error body, and that RequestId equals the header. */
static void t_assert_error(const tresp_t *r, int status, const char *code)
{
  char want[128], rid[64], xml_rid[128];
  assert_int_equal(r->status, status);
  snprintf(want, sizeof(want), "<Code>%s</Code>", code);
  if (strstr(r->body, want) == NULL)
    fail_msg("want %s, got %s", code, r->raw);
  assert_non_null(t_hdr(r, "x-amz-request-id", rid, sizeof(rid)));
  snprintf(xml_rid, sizeof(xml_rid), "<RequestId>%s</RequestId>", rid);
  assert_non_null(strstr(r->body, xml_rid));
  assert_non_null(strstr(r->body, "<Message>"));
  assert_non_null(strstr(r->body, "<Resource>"));
  char ct[64];
  assert_non_null(t_hdr(r, "content-type", ct, sizeof(ct)));
  assert_string_equal(ct, "application/xml");
}

static void t_put_small(const char *path, const char *body, const char *extra)
{
  treq_t q = {"PUT", path, "", body, strlen(body), extra, M_SIGNED};
  tresp_t r;
  t_do(&q, &r);
  if (r.status != 200)
    fail_msg("PUT %s: %s", path, r.raw);
  tresp_free(&r);
}

/* ==== tests ================================================================
 */

static void test_auth_ok_and_roundtrip(void **state)
{
  (void)state;
  tresp_t r;
  t_put_small("/bkt/hello.txt", "hello, world",
              "Content-Type: text/plain\r\nx-amz-meta-color: blue\r\n");
  t_simple("GET", "/bkt/hello.txt", "", M_SIGNED, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 12);
  assert_memory_equal(r.body, "hello, world", 12);
  char v[128];
  assert_string_equal(t_hdr(&r, "etag", v, sizeof(v)),
                      "\"e4d7f1b4ed2e42d15898f4b27b019da4\"");
  assert_string_equal(t_hdr(&r, "content-type", v, sizeof(v)), "text/plain");
  assert_string_equal(t_hdr(&r, "x-amz-meta-color", v, sizeof(v)), "blue");
  assert_string_equal(t_hdr(&r, "last-modified", v, sizeof(v)),
                      "Tue, 14 Nov 2023 22:13:20 GMT");
  assert_string_equal(t_hdr(&r, "accept-ranges", v, sizeof(v)), "bytes");
  assert_non_null(t_hdr(&r, "x-amz-request-id", v, sizeof(v)));
  tresp_free(&r);
  /* response-* overrides on a signed GET */
  t_simple("GET", "/bkt/hello.txt", "response-content-type=application%2Fjson",
           M_UNSIGNED, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(t_hdr(&r, "content-type", v, sizeof(v)),
                      "application/json");
  tresp_free(&r);
  t_simple("GET", "/", "", M_SIGNED, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "<Name>bkt</Name>"));
  assert_non_null(strstr(r.body, "<ID>tenant-1</ID>"));
  tresp_free(&r);
  t_simple("DELETE", "/bkt/hello.txt", "", M_SIGNED, &r);
  assert_int_equal(r.status, 204);
  tresp_free(&r);
  t_simple("GET", "/bkt/hello.txt", "", M_SIGNED, &r);
  t_assert_error(&r, 404, "NoSuchKey");
  tresp_free(&r);
}

static void test_auth_failures(void **state)
{
  (void)state;
  static const struct {
    tmode_t mode;
    int status;
    const char *code;
  } cases[] = {
      {M_ANON, 403, "AccessDenied"},
      {M_BAD_SECRET, 403, "SignatureDoesNotMatch"},
      {M_UNKNOWN_KEY, 403, "InvalidAccessKeyId"},
      {M_SKEWED, 403, "RequestTimeTooSkewed"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    tresp_t r;
    t_simple("GET", "/bkt/x", "", cases[i].mode, &r);
    t_assert_error(&r, cases[i].status, cases[i].code);
    tresp_free(&r);
  }
  /* a malformed Authorization header */
  treq_t q = {"GET", "/bkt/x",
              "",    NULL,
              0,     "Authorization: AWS4-HMAC-SHA256 Credential=nonsense\r\n",
              M_ANON};
  tresp_t r;
  t_do(&q, &r);
  t_assert_error(&r, 400, "AuthorizationHeaderMalformed");
  tresp_free(&r);
  /* signed without x-amz-content-sha256 */
  t_simple("GET", "/bkt/x", "", M_NO_HASH, &r);
  assert_int_equal(r.status, 400);
  assert_true(strstr(r.body, "<Code>MissingSecurityHeader</Code>") ||
              strstr(r.body, "<Code>InvalidRequest</Code>") ||
              strstr(r.body, "<Code>SignatureDoesNotMatch</Code>"));
  tresp_free(&r);
}

static void test_payload_digests(void **state)
{
  (void)state;
  atomic_int *puts = &T->be_state.puts;
  int before = atomic_load(puts);
  tresp_t r;
  const char *body = "some bytes";
  treq_t q = {"PUT", "/bkt/d", "", body, strlen(body), NULL, M_WRONG_HASH};
  t_do(&q, &r);
  t_assert_error(&r, 400, "XAmzContentSHA256Mismatch");
  tresp_free(&r);
  q.mode = M_SIGNED;
  q.extra = "Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 400, "BadDigest");
  tresp_free(&r);
  q.extra = "Content-MD5: not-base64\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 400, "InvalidDigest");
  tresp_free(&r);
  q.extra = "x-amz-checksum-crc32c: AAAAAA==\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 400, "BadDigest");
  tresp_free(&r);
  q.extra = "x-amz-checksum-sha256: "
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 400, "BadDigest");
  tresp_free(&r);
  q.extra = "x-amz-checksum-crc32: AAAAAA==\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 400, "BadDigest");
  tresp_free(&r);
  q.extra = "x-amz-checksum-sha1: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 400, "BadDigest");
  tresp_free(&r);
  q.extra = "x-amz-checksum-crc64nvme: AAAAAAAAAAA=\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 501, "NotImplemented");
  tresp_free(&r);
  assert_int_equal(atomic_load(puts), before); /* nothing reached the store */
  /* the right digests pass */
  uint8_t md5[16], sha[32];
  char m64[32], s64[64], c64[16], extra[512];
  ks_md5(body, strlen(body), md5);
  ks_sha256(body, strlen(body), sha);
  uint32_t crc = ks_crc32c(0, body, strlen(body));
  uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
                   (uint8_t)(crc >> 8), (uint8_t)crc};
  struct iovec biov = {(void *)body, strlen(body)};
  uint32_t ieee = ks_crc32_iov(0, &biov, 1);
  uint8_t be2[4] = {(uint8_t)(ieee >> 24), (uint8_t)(ieee >> 16),
                    (uint8_t)(ieee >> 8), (uint8_t)ieee};
  uint8_t sha1[KS_SHA1_LEN];
  assert_int_equal(ks_hash(KS_HASH_SHA1, body, strlen(body), sha1), 0);
  char i64[16], h64[32];
  ks_b64_encode(m64, sizeof(m64), md5, 16);
  ks_b64_encode(s64, sizeof(s64), sha, 32);
  ks_b64_encode(c64, sizeof(c64), be, 4);
  ks_b64_encode(i64, sizeof(i64), be2, 4);
  ks_b64_encode(h64, sizeof(h64), sha1, KS_SHA1_LEN);
  snprintf(extra, sizeof(extra),
           "Content-MD5: %s\r\nx-amz-checksum-sha256: %s\r\n"
           "x-amz-checksum-crc32c: %s\r\nx-amz-checksum-crc32: %s\r\n"
           "x-amz-checksum-sha1: %s\r\n",
           m64, s64, c64, i64, h64);
  q.extra = extra;
  t_do(&q, &r);
  assert_int_equal(r.status, 200);
  tresp_free(&r);
  assert_int_equal(atomic_load(puts), before + 1);
}

/* aws-chunked body: chunk signatures chained from the seed signature. */
static size_t t_chunked_body(uint8_t *out, const char *date, const char *seed,
                             const uint8_t *data, size_t n, size_t chunk,
                             bool tamper)
{
  char date8[9], scope[128], prev[KS_S3_SIG_HEX_LEN + 1];
  uint8_t key[KS_HMAC_SHA256_LEN];
  snprintf(date8, sizeof(date8), "%.8s", date);
  snprintf(scope, sizeof(scope), "%s/" REGION "/s3/aws4_request", date8);
  ks_s3_sigv4_signing_key(SK, strlen(SK), date8, REGION, "s3", key);
  snprintf(prev, sizeof(prev), "%s", seed);
  size_t len = 0, off = 0;
  for (;;) {
    size_t c = n - off < chunk ? n - off : chunk;
    uint8_t h[32], mac[32];
    char hh[65], sts[512];
    ks_sha256(data + off, c, h);
    ks_hex_encode(hh, sizeof(hh), h, 32);
    int sl = snprintf(sts, sizeof(sts),
                      "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", date,
                      scope, prev, KS_S3_EMPTY_SHA256, hh);
    ks_hmac_sha256(key, sizeof(key), sts, (size_t)sl, mac);
    ks_hex_encode(prev, sizeof(prev), mac, 32);
    len += (size_t)sprintf((char *)out + len, "%zx;chunk-signature=%s\r\n", c,
                           prev);
    memcpy(out + len, data + off, c);
    if (tamper && off == 0 && c > 0)
      out[len] ^= 1;
    len += c;
    memcpy(out + len, "\r\n", 2);
    len += 2;
    off += c;
    if (c == 0)
      return len;
  }
}

static void t_put_chunked(const char *path, const uint8_t *data, size_t n,
                          bool tamper, tresp_t *out)
{
  char date[KS_TIME_AMZ_LEN + 1], auth[512], seed[KS_S3_SIG_HEX_LEN + 1];
  char dlen[24];
  t_amz_now(date, 0);
  snprintf(dlen, sizeof(dlen), "%zu", n);
  t_sign("PUT", path, "", date, KS_S3_STREAMING_PAYLOAD, SK, AK,
         "x-amz-decoded-content-length", dlen, auth, sizeof(auth), seed);
  uint8_t *body = malloc(n + (n / 8192 + 2) * 128);
  size_t blen = t_chunked_body(body, date, seed, data, n, 8192, tamper);
  char head[1024];
  int hl = snprintf(head, sizeof(head),
                    "PUT %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                    "Connection: close\r\nContent-Length: %zu\r\n"
                    "Content-Encoding: aws-chunked\r\n"
                    "x-amz-decoded-content-length: %s\r\nx-amz-date: %s\r\n"
                    "x-amz-content-sha256: " KS_S3_STREAMING_PAYLOAD "\r\n"
                    "Authorization: %s\r\n\r\n",
                    path, T->port, blen, dlen, date, auth);
  int fd = t_connect(0);
  t_send_all(fd, head, (size_t)hl);
  t_send_all(fd, body, blen);
  t_read_resp(fd, out);
  close(fd);
  free(body);
}

static void test_streaming_chunked(void **state)
{
  (void)state;
  size_t n = 100000;
  uint8_t *data = malloc(n);
  for (size_t i = 0; i < n; i++)
    data[i] = (uint8_t)(i * 13);
  int before = atomic_load(&T->be_state.puts);
  tresp_t r;
  t_put_chunked("/bkt/chunked", data, n, true, &r);
  t_assert_error(&r, 403, "SignatureDoesNotMatch");
  tresp_free(&r);
  assert_int_equal(atomic_load(&T->be_state.puts), before);
  t_put_chunked("/bkt/chunked", data, n, false, &r);
  assert_int_equal(r.status, 200);
  tresp_free(&r);
  assert_int_equal(atomic_load(&T->be_state.puts), before + 1);
  assert_true(atomic_load(&T->be_state.last_nbody) > 1); /* pieces */
  t_simple("GET", "/bkt/chunked", "", M_SIGNED, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, n);
  assert_memory_equal(r.body, data, n);
  tresp_free(&r);
  free(data);
}

/* Presigned GET: query parameters, UNSIGNED-PAYLOAD, host signed. */
static void t_presign(const char *path, int64_t shift, int expires, char *query,
                      size_t size)
{
  char date[KS_TIME_AMZ_LEN + 1], date8[9], host[32];
  t_amz_now(date, shift);
  snprintf(date8, sizeof(date8), "%.8s", date);
  snprintf(host, sizeof(host), "127.0.0.1:%u", T->port);
  int n = snprintf(query, size,
                   "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AK
                   "%%2F%s%%2F" REGION "%%2Fs3%%2Faws4_request&X-Amz-Date=%s"
                   "&X-Amz-Expires=%d&X-Amz-SignedHeaders=host",
                   date8, date, expires);
  ks_s3_header_t h[1] = {{"host", host, 4, strlen(host)}};
  ks_s3_http_req_t r = {"GET", path, query, h, 3, strlen(path), (size_t)n, 1};
  char scope[128], sig[KS_S3_SIG_HEX_LEN + 1];
  uint8_t key[KS_HMAC_SHA256_LEN];
  snprintf(scope, sizeof(scope), "%s/" REGION "/s3/aws4_request", date8);
  ks_buf_t b = KS_BUF_INIT;
  assert_int_equal(
      ks_s3_sigv4_canonical(&b, &r, true, "host", 4, KS_S3_UNSIGNED_PAYLOAD),
      0);
  ks_s3_sigv4_signing_key(SK, strlen(SK), date8, REGION, "s3", key);
  ks_s3_sigv4_sign(key, date, scope, b.data, b.len, sig);
  ks_buf_free(&b);
  snprintf(query + n, size - (size_t)n, "&X-Amz-Signature=%s", sig);
}

static void t_get_raw(const char *path, const char *query, tresp_t *out)
{
  char head[2048];
  int n = snprintf(head, sizeof(head),
                   "GET %s?%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                   "Connection: close\r\n\r\n",
                   path, query, T->port);
  int fd = t_connect(0);
  t_send_all(fd, head, (size_t)n);
  t_read_resp(fd, out);
  close(fd);
}

static void test_presigned(void **state)
{
  (void)state;
  t_put_small("/bkt/pre", "presigned!", NULL);
  char q[1024];
  tresp_t r;
  t_presign("/bkt/pre", 0, 300, q, sizeof(q));
  t_get_raw("/bkt/pre", q, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 10);
  tresp_free(&r);
  t_presign("/bkt/pre", -7200, 60, q, sizeof(q)); /* expired an hour ago */
  t_get_raw("/bkt/pre", q, &r);
  t_assert_error(&r, 403, "AccessDenied");
  tresp_free(&r);
}

static void test_not_implemented(void **state)
{
  (void)state;
  tresp_t r;
  /* a subresource the gateway has no code for: before auth */
  t_simple("GET", "/bkt", "acl", M_ANON, &r);
  t_assert_error(&r, 501, "NotImplemented");
  tresp_free(&r);
  /* an operation the backend does not provide: after auth */
  t_simple("POST", "/bkt/obj", "uploads", M_SIGNED, &r);
  t_assert_error(&r, 501, "NotImplemented");
  tresp_free(&r);
  t_simple("GET", "/bkt", "list-type=2", M_SIGNED, &r);
  t_assert_error(&r, 501, "NotImplemented");
  tresp_free(&r);
  t_simple("PATCH", "/bkt/obj", "", M_SIGNED, &r);
  t_assert_error(&r, 405, "MethodNotAllowed");
  tresp_free(&r);
  t_simple("GET", "/no_such_Bucket!/x", "", M_SIGNED, &r);
  t_assert_error(&r, 400, "InvalidBucketName");
  tresp_free(&r);
}

static void test_ranges(void **state)
{
  (void)state;
  t_put_small("/bkt/r", "0123456789abcdefghij", NULL);
  static const struct {
    const char *range;
    int status;
    const char *body;
    const char *cr;
  } cases[] = {
      {"bytes=0-4", 206, "01234", "bytes 0-4/20"},
      {"bytes=15-", 206, "fghij", "bytes 15-19/20"},
      {"bytes=-3", 206, "hij", "bytes 17-19/20"},
      {"bytes=18-100", 206, "ij", "bytes 18-19/20"},
      {"bytes=20-", 416, NULL, NULL},
      {"items=0-1", 200, "0123456789abcdefghij", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char extra[64], v[64];
    snprintf(extra, sizeof(extra), "Range: %s\r\n", cases[i].range);
    treq_t q = {"GET", "/bkt/r", "", NULL, 0, extra, M_SIGNED};
    tresp_t r;
    t_do(&q, &r);
    if (cases[i].status == 416) {
      t_assert_error(&r, 416, "InvalidRange");
    } else {
      assert_int_equal(r.status, cases[i].status);
      assert_int_equal(r.body_len, strlen(cases[i].body));
      assert_memory_equal(r.body, cases[i].body, r.body_len);
      if (cases[i].cr)
        assert_string_equal(t_hdr(&r, "content-range", v, sizeof(v)),
                            cases[i].cr);
    }
    tresp_free(&r);
  }
}

static void test_conditionals_and_head(void **state)
{
  (void)state;
  t_put_small("/bkt/c", "conditional", NULL);
  char etag[64], extra[160], v[64];
  tresp_t r;
  t_simple("HEAD", "/bkt/c", "", M_SIGNED, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  assert_string_equal(t_hdr(&r, "content-length", v, sizeof(v)), "11");
  assert_non_null(t_hdr(&r, "etag", etag, sizeof(etag)));
  tresp_free(&r);
  snprintf(extra, sizeof(extra), "If-None-Match: %s\r\n", etag);
  treq_t q = {"GET", "/bkt/c", "", NULL, 0, extra, M_SIGNED};
  t_do(&q, &r);
  assert_int_equal(r.status, 304);
  assert_int_equal(r.body_len, 0);
  assert_string_equal(t_hdr(&r, "etag", v, sizeof(v)), etag);
  tresp_free(&r);
  q.extra = "If-Match: \"0000\"\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 412, "PreconditionFailed");
  tresp_free(&r);
  q.extra = "If-Modified-Since: Wed, 01 Jan 2025 00:00:00 GMT\r\n";
  t_do(&q, &r);
  assert_int_equal(r.status, 304);
  tresp_free(&r);
  q.extra = "If-Unmodified-Since: Sun, 01 Jan 2023 00:00:00 GMT\r\n";
  t_do(&q, &r);
  t_assert_error(&r, 412, "PreconditionFailed");
  tresp_free(&r);
  /* HEAD errors carry no body */
  t_simple("HEAD", "/bkt/none", "", M_SIGNED, &r);
  assert_int_equal(r.status, 404);
  assert_int_equal(r.body_len, 0);
  tresp_free(&r);
  t_simple("HEAD", "/bkt", "", M_SIGNED, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(t_hdr(&r, "x-amz-bucket-region", v, sizeof(v)), REGION);
  tresp_free(&r);
  t_simple("HEAD", "/nobkt", "", M_SIGNED, &r);
  assert_int_equal(r.status, 404);
  tresp_free(&r);
}

static void test_big_put(void **state)
{
  (void)state;
  size_t n = BIG_SIZE;
  uint8_t *data = malloc(n);
  for (size_t i = 0; i < n; i++)
    data[i] = (uint8_t)(i * 31 + (i >> 20));
  treq_t q = {"PUT", "/bkt/big-put", "", data, n, NULL, M_UNSIGNED};
  tresp_t r;
  t_do(&q, &r);
  assert_int_equal(r.status, 200);
  uint8_t md5[16];
  char want[KS_S3_ETAG_MAX], v[64];
  ks_md5(data, n, md5);
  ks_s3_etag_format(want, sizeof(want), md5, 0);
  assert_string_equal(t_hdr(&r, "etag", v, sizeof(v)), want);
  tresp_free(&r);
  t_simple("HEAD", "/bkt/big-put", "", M_SIGNED, &r);
  assert_string_equal(t_hdr(&r, "content-length", v, sizeof(v)), "67108864");
  tresp_free(&r);
  /* above max_body: h2o refuses before reading the body */
  char head[512];
  int hl = snprintf(head, sizeof(head),
                    "PUT /bkt/huge HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: 6000000000\r\n\r\n");
  int fd = t_connect(0);
  t_send_all(fd, head, (size_t)hl);
  t_read_resp(fd, &r);
  close(fd);
  assert_int_equal(r.status, 413);
  tresp_free(&r);
  free(data);
}

static void test_big_get_streams(void **state)
{
  (void)state;
  tbe_t *b = &T->be_state;
  uint64_t reads0 = atomic_load(&b->reads);
  char date[KS_TIME_AMZ_LEN + 1], auth[512], head[1024];
  t_amz_now(date, 0);
  t_sign("GET", "/bkt/big/virtual", "", date, KS_S3_UNSIGNED_PAYLOAD, SK, AK,
         NULL, NULL, auth, sizeof(auth), NULL);
  int hl = snprintf(head, sizeof(head),
                    "GET /bkt/big/virtual HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                    "Connection: close\r\nx-amz-date: %s\r\n"
                    "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
                    "Authorization: %s\r\n\r\n",
                    T->port, date, auth);
  int fd = t_connect(64 * 1024);
  t_send_all(fd, head, (size_t)hl);
  uint8_t *buf = malloc(1 << 20);
  ssize_t n = recv(fd, buf, 4096, 0);
  assert_true(n > 0);
  usleep(300 * 1000);
  /* the client stopped reading: the server pulled only what fits in the
   * socket buffers, not the 64 reads of the whole object */
  uint64_t pulled = atomic_load(&b->reads) - reads0;
  assert_true(pulled >= 1);
  assert_true(pulled < 16);
  /* then read everything and check every byte */
  char *hend = memmem(buf, (size_t)n, "\r\n\r\n", 4);
  assert_non_null(hend);
  assert_non_null(strstr((char *)buf, "200 OK"));
  size_t have = (size_t)n - (size_t)((uint8_t *)hend + 4 - buf);
  uint64_t off = 0;
  bool ok = true;
  for (size_t i = 0; i < have; i++, off++)
    ok &= ((uint8_t *)hend + 4)[i] == (uint8_t)(off * 7 % 251);
  for (;;) {
    n = recv(fd, buf, 1 << 20, 0);
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n; i++, off++)
      ok &= buf[i] == (uint8_t)(off * 7 % 251);
  }
  close(fd);
  free(buf);
  assert_true(ok);
  assert_int_equal(off, BIG_SIZE);
  assert_int_equal(atomic_load(&b->reads) - reads0, BIG_SIZE / (1u << 20));
}

/* One simple request succeeds: the server is still serving. */
static void t_alive(void)
{
  tresp_t r;
  t_simple("GET", "/", "", M_SIGNED, &r);
  assert_int_equal(r.status, 200);
  tresp_free(&r);
}

static void t_raw(const char *req, size_t n, tresp_t *r)
{
  int fd = t_connect(0);
  t_send_all(fd, req, n);
  t_read_resp(fd, r);
  close(fd);
}

static void test_malformed_and_oversized(void **state)
{
  (void)state;
  tresp_t r;
  const char *garbage = "\x01\x02 not http at all\r\n\r\n";
  t_raw(garbage, strlen(garbage), &r);
  assert_int_equal(r.status, 400);
  tresp_free(&r);
  t_alive();
  const char *badlen = "PUT /bkt/x HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: abc\r\n\r\n";
  t_raw(badlen, strlen(badlen), &r);
  assert_true(r.status == 400 || r.status == 0);
  tresp_free(&r);
  t_alive();
  /* a header section above our 16 KiB limit, below h2o's own */
  size_t big = 20 * 1024;
  char *req = malloc(big + 256);
  int n = snprintf(req, big + 256,
                   "GET /bkt/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "x-filler: ");
  memset(req + n, 'a', big);
  n += (int)big;
  n += snprintf(req + n, 256, "\r\n\r\n");
  t_raw(req, (size_t)n, &r);
  t_assert_error(&r, 400, "RequestHeaderSectionTooLarge");
  tresp_free(&r);
  free(req);
  /* far above h2o's compile-time limit: h2o answers (or drops) it */
  big = 600 * 1024;
  req = malloc(big + 256);
  n = snprintf(req, big + 256, "GET /bkt/x HTTP/1.1\r\nHost: x\r\nx-f: ");
  memset(req + n, 'a', big);
  n += (int)big;
  n += snprintf(req + n, 256, "\r\n\r\n");
  int fd = t_connect(0);
  (void)send(fd, req, (size_t)n, MSG_NOSIGNAL); /* may be cut short */
  t_read_resp(fd, &r);
  close(fd);
  assert_true(r.status == 400 || r.status == 413 || r.status == 431 ||
              r.status == 0);
  tresp_free(&r);
  free(req);
  t_alive();
}

static void test_slow_client(void **state)
{
  (void)state;
  /* headers never finish: the 1 s request timeout closes the connection */
  int fd = t_connect(0);
  const char *part = "GET /bkt/x HTTP/1.1\r\nHost: x\r\nx-slow: ";
  t_send_all(fd, part, strlen(part));
  t_alive(); /* others are served meanwhile */
  uint64_t t0 = ks_time_mono_ms();
  tresp_t r;
  t_read_resp(fd, &r); /* returns at close */
  uint64_t waited = ks_time_mono_ms() - t0;
  close(fd);
  assert_true(waited < 5000);
  tresp_free(&r);
  /* a body that never arrives */
  fd = t_connect(0);
  const char *put = "PUT /bkt/x HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: 1000\r\n\r\nonly a few bytes";
  t_send_all(fd, put, strlen(put));
  t0 = ks_time_mono_ms();
  t_read_resp(fd, &r);
  close(fd);
  assert_true(ks_time_mono_ms() - t0 < 5000);
  tresp_free(&r);
  t_alive();
}

static void test_keepalive_requests_ids(void **state)
{
  (void)state;
  /* two requests on one connection get different request ids */
  char date[KS_TIME_AMZ_LEN + 1], auth[512], one[1024];
  t_amz_now(date, 0);
  t_sign("GET", "/nobkt", "", date, KS_S3_EMPTY_SHA256, SK, AK, NULL, NULL,
         auth, sizeof(auth), NULL);
  int n = snprintf(one, sizeof(one),
                   "GET /nobkt HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                   "x-amz-date: %s\r\nx-amz-content-sha256: %s\r\n"
                   "Authorization: %s\r\n\r\n",
                   T->port, date, KS_S3_EMPTY_SHA256, auth);
  char two[2100];
  memcpy(two, one, (size_t)n);
  memcpy(two + n, one, (size_t)n);
  char *close_at = strstr(two + n, "\r\n\r\n");
  memcpy(close_at, "\r\nConnection: close\r\n\r\n", 24);
  tresp_t r;
  t_raw(two, (size_t)(close_at + 24 - two), &r);
  const char *a = strstr(r.raw, "<RequestId>");
  assert_non_null(a);
  const char *b = strstr(a + 1, "<RequestId>");
  assert_non_null(b);
  assert_memory_not_equal(a, b, 11 + 16);
  tresp_free(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_auth_ok_and_roundtrip),
      cmocka_unit_test(test_auth_failures),
      cmocka_unit_test(test_payload_digests),
      cmocka_unit_test(test_streaming_chunked),
      cmocka_unit_test(test_presigned),
      cmocka_unit_test(test_not_implemented),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_conditionals_and_head),
      cmocka_unit_test(test_big_put),
      cmocka_unit_test(test_big_get_streams),
      cmocka_unit_test(test_malformed_and_oversized),
      cmocka_unit_test(test_slow_client),
      cmocka_unit_test(test_keepalive_requests_ids),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
