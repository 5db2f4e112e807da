/*
 * ks-frag — a command-line client of kiseki-chunkd (libkiseki's
 * frag_client): put a file as a fragment, get one back into a file, stat,
 * delete, list the devices, or put a numbered batch of fragments printing
 * each acknowledged one.  The end-to-end tests drive the daemon with it
 * (including the kill -9 test, which trusts exactly the lines put-batch
 * printed); an operator can use it to poke at a node.
 *
 *   ks-frag --addr=H:P --op=put --dev=0 --chunk=<64 hex> --index=0 --file=F
 *   ks-frag --addr=H:P --op=get --dev=<32 hex id> --chunk=... --file=OUT
 *   ks-frag --addr=H:P --op=put-batch --count=1000 --size=64KiB --seed=7
 *
 * --dev is a device id (32 hex digits) or an index into the daemon's device
 * list.  put-batch writes fragment n (chunk id = le32(n) le32(seed) 0...,
 * index 0, payload byte i = (31 i + 7 n + seed) mod 256) to device
 * n mod devices and prints `ack n=N dev=ID chunk=HEX len=L` once chunkd
 * has answered, flushed line by line.
 *
 * Output: one logfmt line per result on stdout.  Exit status: 0 success,
 * 1 other failure, 2 bad arguments, 3 not found (-ENOENT), 4 corrupt
 * (KS_ECORRUPT), 5 exists (-EEXIST), 6 failed device (-EIO).
 */
#include "ks/codec.h"
#include "ks/config.h"
#include "ks/crc32c.h"
#include "ks/endian.h"
#include "ks/err.h"
#include "ks/frag_client.h"
#include "ks/log.h"
#include "ks/net.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct frag_settings {
  char *addr;
  int op;
  char *dev;
  char *chunk;
  int64_t index, k, m;
  char *file;
  int64_t offset, length;
  int64_t count, size, seed;
  int64_t timeout_ms;
  char *tls_ca;
  char *tls_cert;
  char *tls_key;
} frag_settings_t;

enum { OP_PUT, OP_GET, OP_STAT, OP_DELETE, OP_LIST, OP_PUT_BATCH };
static const char *const ops[] = {"put",  "get",       "stat", "delete",
                                  "list", "put-batch", NULL};

static const ks_opt_t frag_opts[] = {
    {"addr", KS_OPT_STRING, "127.0.0.1:7200", 0, 0, NULL, "chunkd address:port",
     offsetof(frag_settings_t, addr)},
    {"op", KS_OPT_ENUM, "list", 0, 0, ops, "what to do",
     offsetof(frag_settings_t, op)},
    {"dev", KS_OPT_STRING, "0", 0, 0, NULL,
     "device id (32 hex) or index in the device list",
     offsetof(frag_settings_t, dev)},
    {"chunk", KS_OPT_STRING, NULL, 0, 0, NULL, "chunk id, 64 hex digits",
     offsetof(frag_settings_t, chunk)},
    {"index", KS_OPT_INT, "0", 0, 255, NULL, "fragment index",
     offsetof(frag_settings_t, index)},
    {"k", KS_OPT_INT, "4", 1, 255, NULL, "data fragments of the chunk",
     offsetof(frag_settings_t, k)},
    {"m", KS_OPT_INT, "2", 0, 255, NULL, "parity fragments of the chunk",
     offsetof(frag_settings_t, m)},
    {"file", KS_OPT_STRING, "-", 0, 0, NULL,
     "put: payload file; get: output file (- = stdin/stdout)",
     offsetof(frag_settings_t, file)},
    {"offset", KS_OPT_SIZE, "0", 0, 0, NULL, "get: first byte",
     offsetof(frag_settings_t, offset)},
    {"length", KS_OPT_SIZE, "0", 0, 0, NULL, "get: bytes (0: to the end)",
     offsetof(frag_settings_t, length)},
    {"count", KS_OPT_INT, "100", 1, 100000000, NULL, "put-batch: fragments",
     offsetof(frag_settings_t, count)},
    {"size", KS_OPT_SIZE, "64KiB", 0, 64 << 20, NULL,
     "put-batch: bytes per fragment", offsetof(frag_settings_t, size)},
    {"seed", KS_OPT_INT, "1", 0, 1 << 30, NULL, "put-batch: content seed",
     offsetof(frag_settings_t, seed)},
    {"timeout", KS_OPT_DURATION_MS, "30s", 1, 3600000, NULL, "per-call timeout",
     offsetof(frag_settings_t, timeout_ms)},
    {"tls.ca", KS_OPT_STRING, NULL, 0, 0, NULL, "CA PEM (enables TLS)",
     offsetof(frag_settings_t, tls_ca)},
    {"tls.cert", KS_OPT_STRING, NULL, 0, 0, NULL, "client certificate PEM",
     offsetof(frag_settings_t, tls_cert)},
    {"tls.key", KS_OPT_STRING, NULL, 0, 0, NULL, "client key PEM",
     offsetof(frag_settings_t, tls_key)},
};

typedef struct tool {
  uv_loop_t loop;
  ks_rpc_client_t *cl;
  const frag_settings_t *s;
  ks_frag_call_t call;
  bool done;
  int status;
} tool_t;

static int exit_code(int err)
{
  switch (err) {
  case 0:
    return 0;
  case -ENOENT:
    return 3;
  case KS_ECORRUPT:
    return 4;
  case -EEXIST:
    return 5;
  case -EIO:
    return 6;
  default:
    return 1;
  }
}

static void call_done(ks_frag_call_t *c, int status)
{
  tool_t *t = c->data;
  t->done = true;
  t->status = status;
  uv_stop(&t->loop);
}

/* Run a started call to completion; returns its status.  The caller
 * releases t->call. */
static int call_wait(tool_t *t, int start_rc)
{
  if (start_rc != 0)
    return start_rc;
  t->done = false;
  while (!t->done) {
    if (uv_run(&t->loop, UV_RUN_DEFAULT) == 0 && !t->done)
      return KS_ECLOSED; /* nothing left to wait on: cannot happen */
  }
  return t->status;
}

static int dev_list(tool_t *t)
{
  t->call.data = t;
  return call_wait(t, ks_frag_dev_list(t->cl, &t->call,
                                       (uint32_t)t->s->timeout_ms, call_done));
}

/* --dev as an id, or as an index into the device list. */
static int dev_resolve(tool_t *t, ks_id_t *id)
{
  const char *d = t->s->dev;
  if (strlen(d) == KS_ID_HEX_LEN)
    return ks_id_from_hex(id, d, KS_ID_HEX_LEN);
  char *end;
  long idx = strtol(d, &end, 10);
  if (*d == '\0' || *end != '\0' || idx < 0)
    return -EINVAL;
  int rc = dev_list(t);
  if (rc == 0 && (size_t)idx >= t->call.ndevs)
    rc = -ENOENT;
  if (rc == 0)
    *id = t->call.devs[idx].id;
  ks_frag_call_release(&t->call);
  return rc;
}

static int key_parse(const frag_settings_t *s, ks_frag_key_t *key)
{
  if (!s->chunk || strlen(s->chunk) != KS_HEX_LEN(KS_CHUNK_ID_LEN) ||
      ks_hex_decode(key->chunk_id, KS_CHUNK_ID_LEN, s->chunk,
                    strlen(s->chunk)) != KS_CHUNK_ID_LEN)
    return -EINVAL;
  key->index = (uint8_t)s->index;
  return 0;
}

/* ---- file I/O ----------------------------------------------------------- */

static int file_read(const char *path, uint8_t **out, size_t *n)
{
  size_t cap = 1 << 16, len = 0;
  uint8_t *buf = malloc(cap);
  if (buf == NULL)
    return -ENOMEM;
  FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (fp == NULL) {
    free(buf);
    return -errno;
  }
  int rc = 0;
  for (;;) {
    if (len == cap) {
      uint8_t *nb = cap < KS_FRAG_MAX_LEN ? realloc(buf, cap * 2) : NULL;
      if (nb == NULL) {
        rc = cap < KS_FRAG_MAX_LEN ? -ENOMEM : KS_ETOOBIG;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    size_t r = fread(buf + len, 1, cap - len, fp);
    len += r;
    if (r == 0) {
      rc = ferror(fp) ? -EIO : 0;
      break;
    }
  }
  if (fp != stdin)
    fclose(fp);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  *out = buf;
  *n = len;
  return 0;
}

static int file_write(const char *path, const uint8_t *p, size_t n)
{
  FILE *fp = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
  if (fp == NULL)
    return -errno;
  int rc = fwrite(p, 1, n, fp) == n ? 0 : -EIO;
  if (fp != stdout && fclose(fp) != 0 && rc == 0)
    rc = -EIO;
  return rc;
}

/* ---- operations --------------------------------------------------------- */

static int op_put(tool_t *t, const ks_id_t *dev, const ks_frag_key_t *key)
{
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = file_read(t->s->file, &p, &n);
  if (rc != 0)
    return rc;
  ks_frag_put_req_t r = {
      .dev = *dev, .key = *key, .k = (uint8_t)t->s->k, .m = (uint8_t)t->s->m};
  struct iovec v = {p, n};
  t->call.data = t;
  rc = call_wait(t, ks_frag_put(t->cl, &t->call, &r, &v, n ? 1 : 0,
                                (uint32_t)t->s->timeout_ms, call_done));
  ks_frag_call_release(&t->call);
  if (rc == 0)
    printf("put len=%zu crc=%08x\n", n, ks_crc32c(0, p, n));
  free(p);
  return rc;
}

static int op_get_stat_delete(tool_t *t, const ks_id_t *dev,
                              const ks_frag_key_t *key)
{
  ks_frag_req_t r = {.dev = *dev,
                     .key = *key,
                     .offset = (uint64_t)t->s->offset,
                     .length = (uint64_t)t->s->length};
  uint32_t to = (uint32_t)t->s->timeout_ms;
  t->call.data = t;
  int op = t->s->op, rc;
  if (op == OP_GET)
    rc = call_wait(t, ks_frag_get(t->cl, &t->call, &r, to, call_done));
  else if (op == OP_STAT)
    rc = call_wait(t, ks_frag_stat(t->cl, &t->call, &r, to, call_done));
  else
    rc = call_wait(t, ks_frag_delete(t->cl, &t->call, &r, to, call_done));
  if (rc == 0 && op == OP_GET)
    rc = file_write(t->s->file, t->call.bytes, t->call.len);
  if (rc == 0 && op != OP_DELETE)
    fprintf(op == OP_GET && strcmp(t->s->file, "-") == 0 ? stderr : stdout,
            "%s len=%llu crc=%08x k=%u m=%u\n", ops[op],
            (unsigned long long)t->call.info.len, t->call.info.crc,
            (unsigned)t->call.info.k, (unsigned)t->call.info.m);
  ks_frag_call_release(&t->call);
  return rc;
}

static int op_list(tool_t *t)
{
  int rc = dev_list(t);
  for (size_t i = 0; rc == 0 && i < t->call.ndevs; i++) {
    const ks_dev_info_t *d = &t->call.devs[i];
    char hex[KS_ID_HEX_LEN + 1], qp[KS_DEV_PATH_MAX + 8];
    printf("dev index=%zu id=%s class=%s state=%s path=%s capacity=%llu "
           "free=%llu fragments=%llu\n",
           i, ks_id_to_hex(&d->id, hex), ks_dev_class_name(d->cls),
           ks_dev_state_name(d->state), ks_log_quote(qp, sizeof(qp), d->path),
           (unsigned long long)d->capacity, (unsigned long long)d->free,
           (unsigned long long)d->frags);
  }
  ks_frag_call_release(&t->call);
  return rc;
}

static void batch_payload(uint8_t *p, size_t n, int64_t i, int64_t seed)
{
  for (size_t j = 0; j < n; j++)
    p[j] = (uint8_t)(31 * j + 7 * (uint64_t)i + (uint64_t)seed);
}

static int batch_put_one(tool_t *t, const ks_id_t *dev, int64_t i, uint8_t *p,
                         size_t n)
{
  ks_frag_put_req_t r = {.dev = *dev, .k = 1, .m = 0};
  ks_put_le32(r.key.chunk_id, (uint32_t)i);
  ks_put_le32(r.key.chunk_id + 4, (uint32_t)t->s->seed);
  batch_payload(p, n, i, t->s->seed);
  struct iovec v = {p, n};
  t->call.data = t;
  int rc = call_wait(t, ks_frag_put(t->cl, &t->call, &r, &v, n ? 1 : 0,
                                    (uint32_t)t->s->timeout_ms, call_done));
  ks_frag_call_release(&t->call);
  if (rc == 0) {
    char dh[KS_ID_HEX_LEN + 1], ch[KS_HEX_LEN(KS_CHUNK_ID_LEN) + 1];
    ks_hex_encode(ch, sizeof(ch), r.key.chunk_id, KS_CHUNK_ID_LEN);
    printf("ack n=%lld dev=%s chunk=%s len=%zu\n", (long long)i,
           ks_id_to_hex(dev, dh), ch, n);
    fflush(stdout);
  }
  return rc;
}

static int op_put_batch(tool_t *t)
{
  int rc = dev_list(t);
  size_t ndev = t->call.ndevs;
  ks_id_t devs[KS_DEV_MAX];
  for (size_t i = 0; rc == 0 && i < ndev; i++)
    devs[i] = t->call.devs[i].id;
  ks_frag_call_release(&t->call);
  if (rc == 0 && ndev == 0)
    rc = -ENOENT;
  uint8_t *p = rc == 0 ? malloc(t->s->size ? (size_t)t->s->size : 1) : NULL;
  if (rc == 0 && p == NULL)
    rc = -ENOMEM;
  for (int64_t i = 0; rc == 0 && i < t->s->count; i++)
    rc = batch_put_one(t, &devs[(size_t)i % ndev], i, p, (size_t)t->s->size);
  free(p);
  return rc;
}

static int run_op(tool_t *t)
{
  const frag_settings_t *s = t->s;
  if (s->op == OP_LIST)
    return op_list(t);
  if (s->op == OP_PUT_BATCH)
    return op_put_batch(t);
  ks_frag_key_t key;
  ks_id_t dev;
  if (key_parse(s, &key) != 0) {
    fprintf(stderr, "ks-frag: --chunk must be 64 hex digits\n");
    return -EINVAL;
  }
  int rc = dev_resolve(t, &dev);
  if (rc != 0)
    return rc;
  return s->op == OP_PUT ? op_put(t, &dev, &key)
                         : op_get_stat_delete(t, &dev, &key);
}

static int run(const frag_settings_t *s, ks_rpc_tls_t *tls)
{
  char host[64];
  uint16_t port;
  if (ks_hostport_parse(s->addr, host, sizeof(host), &port) != 0) {
    fprintf(stderr, "ks-frag: bad addr %s\n", s->addr);
    return 2;
  }
  tool_t t = {.s = s};
  if (uv_loop_init(&t.loop) != 0)
    return 1;
  ks_rpc_opts_t o = {.tls = tls};
  int rc = ks_rpc_client_new(&t.loop, host, port, &o, &t.cl);
  if (rc == 0) {
    rc = run_op(&t);
    ks_rpc_client_close(t.cl, NULL, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&t.loop);
  if (rc != 0)
    printf("error op=%s err=%s\n", ops[s->op], ks_errname(rc));
  return rc == -EINVAL ? 2 : exit_code(rc);
}

int main(int argc, char **argv)
{
  frag_settings_t s;
  char err[512];
  int rc = ks_cfg_load(frag_opts, KS_NELEM(frag_opts), NULL, argc, argv, &s,
                       err, sizeof(err));
  if (rc > 0)
    return 0;
  if (rc < 0) {
    fprintf(stderr, "ks-frag: %s\n", err);
    return 2;
  }
  ks_log_set_level(KS_LOG_WARN);
  ks_rpc_tls_t *tls = NULL;
  int status = 0;
  if (s.tls_ca) {
    ks_rpc_tls_opts_t to = {
        .ca_file = s.tls_ca, .cert_file = s.tls_cert, .key_file = s.tls_key};
    if (ks_rpc_tls_new(&to, &tls) != 0)
      status = 2;
  }
  if (status == 0)
    status = run(&s, tls);
  ks_rpc_tls_free(tls);
  ks_cfg_free(frag_opts, KS_NELEM(frag_opts), &s);
  return status;
}
