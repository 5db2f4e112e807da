/*
 * ks-rpc-ping — a command-line RPC client: sends PING calls (optionally with
 * a bulk payload, optionally over TLS) to one peer and checks every echo.
 * The end-to-end tests use it as the real client of ks-echod; an operator
 * can use it to check that a node's RPC port answers and its certificates
 * are accepted.
 *
 * Prints one summary line (logfmt) and exits 0 if every call succeeded and
 * echoed its bytes exactly, 1 otherwise, 2 for bad arguments.
 */
#include "ks/config.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/net.h"
#include "ks/rpc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ping_settings {
  char *addr;
  int64_t count;
  int64_t concurrency;
  int64_t size;
  int64_t timeout_ms;
  char *tls_ca;
  char *tls_cert;
  char *tls_key;
  char *tls_server_name;
} ping_settings_t;

static const ks_opt_t ping_opts[] = {
    {"addr", KS_OPT_STRING, "127.0.0.1:7250", 0, 0, NULL, "peer address:port",
     offsetof(ping_settings_t, addr)},
    {"count", KS_OPT_INT, "10", 1, 100000000, NULL, "calls to make",
     offsetof(ping_settings_t, count)},
    {"concurrency", KS_OPT_INT, "1", 1, 4096, NULL, "calls in flight at once",
     offsetof(ping_settings_t, concurrency)},
    {"size", KS_OPT_SIZE, "0", 0, 1 << 30, NULL, "bulk bytes per call",
     offsetof(ping_settings_t, size)},
    {"timeout", KS_OPT_DURATION_MS, "5s", 1, 3600000, NULL, "per-call timeout",
     offsetof(ping_settings_t, timeout_ms)},
    {"tls.ca", KS_OPT_STRING, NULL, 0, 0, NULL, "CA PEM (enables TLS)",
     offsetof(ping_settings_t, tls_ca)},
    {"tls.cert", KS_OPT_STRING, NULL, 0, 0, NULL, "client certificate PEM",
     offsetof(ping_settings_t, tls_cert)},
    {"tls.key", KS_OPT_STRING, NULL, 0, 0, NULL, "client key PEM",
     offsetof(ping_settings_t, tls_key)},
    {"tls.server_name", KS_OPT_STRING, NULL, 0, 0, NULL,
     "name or IP the server certificate must carry",
     offsetof(ping_settings_t, tls_server_name)},
};

typedef struct pinger {
  uv_loop_t *loop;
  ks_rpc_client_t *cl;
  const ping_settings_t *s;
  uint8_t *payload;
  int64_t started, ok, failed, mismatched;
  int first_err;
} pinger_t;

static void ping_start(pinger_t *p, ks_rpc_call_t *c);

static void ping_done(ks_rpc_call_t *c, int status, ks_rpc_msg_t *resp)
{
  pinger_t *p = c->data;
  if (status != 0) {
    p->failed++;
    if (p->first_err == 0)
      p->first_err = status;
  } else if (resp->bulk_len != (uint64_t)p->s->size ||
             (p->s->size &&
              memcmp(resp->bulk, p->payload, (size_t)p->s->size) != 0)) {
    p->mismatched++;
  } else {
    p->ok++;
  }
  ks_rpc_msg_free(resp);
  if (p->started < p->s->count)
    ping_start(p, c);
  else
    free(c);
  /* The open connection keeps the loop alive: stop it when all are done. */
  if (p->ok + p->failed + p->mismatched == p->s->count)
    uv_stop(p->loop);
}

static void ping_start(pinger_t *p, ks_rpc_call_t *c)
{
  struct iovec bulk = {p->payload, (size_t)p->s->size};
  p->started++;
  c->data = p;
  int rc = ks_rpc_call_start(p->cl, c, KS_OP_PING, NULL, 0, &bulk,
                             p->s->size ? 1 : 0, (uint32_t)p->s->timeout_ms,
                             ping_done);
  if (rc != 0) {
    p->failed++;
    if (p->first_err == 0)
      p->first_err = rc;
    free(c);
    if (p->ok + p->failed + p->mismatched == p->s->count)
      uv_stop(p->loop);
  }
}

static int run(const ping_settings_t *s, ks_rpc_tls_t *tls)
{
  char host[64];
  uint16_t port;
  if (ks_hostport_parse(s->addr, host, sizeof(host), &port) != 0) {
    fprintf(stderr, "ks-rpc-ping: bad addr %s\n", s->addr);
    return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  pinger_t p = {.s = s, .loop = &loop};
  p.payload = malloc(s->size ? (size_t)s->size : 1);
  for (int64_t i = 0; p.payload && i < s->size; i++)
    p.payload[i] = (uint8_t)(i * 7 + 3);
  ks_rpc_opts_t o = {.tls = tls, .max_bulk = (uint64_t)s->size + 1};
  if (!p.payload || ks_rpc_client_new(&loop, host, port, &o, &p.cl) != 0) {
    free(p.payload);
    return 2;
  }
  uint64_t t0 = uv_hrtime();
  for (int64_t i = 0; i < s->concurrency && p.started < s->count; i++) {
    ks_rpc_call_t *c = malloc(sizeof(*c));
    if (c)
      ping_start(&p, c);
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* until ping_done stops it */
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  ks_rpc_client_close(p.cl, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  free(p.payload);
  printf("ok=%lld failed=%lld mismatched=%lld first_error=%s seconds=%.3f\n",
         (long long)p.ok, (long long)p.failed, (long long)p.mismatched,
         ks_errname(p.first_err), secs);
  return p.ok == s->count ? 0 : 1;
}

int main(int argc, char **argv)
{
  ping_settings_t s;
  char err[512];
  int rc = ks_cfg_load(ping_opts, KS_NELEM(ping_opts), NULL, argc, argv, &s,
                       err, sizeof(err));
  if (rc > 0)
    return 0;
  if (rc < 0) {
    fprintf(stderr, "ks-rpc-ping: %s\n", err);
    return 2;
  }
  ks_log_set_level(KS_LOG_WARN);
  ks_rpc_tls_t *tls = NULL;
  int status = 0;
  if (s.tls_ca) {
    ks_rpc_tls_opts_t to = {.ca_file = s.tls_ca,
                            .cert_file = s.tls_cert,
                            .key_file = s.tls_key,
                            .server_name = s.tls_server_name};
    if (ks_rpc_tls_new(&to, &tls) != 0)
      status = 2;
  }
  if (status == 0)
    status = run(&s, tls);
  ks_rpc_tls_free(tls);
  ks_cfg_free(ping_opts, KS_NELEM(ping_opts), &s);
  return status;
}
