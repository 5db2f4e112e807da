/*
 * ks-echod — a daemon that serves only the RPC layer's own PING/SINK/SOURCE
 * service.  The end-to-end tests drive it to prove the RPC layer, the config
 * loader, logging and the daemon life cycle as a real process (config file,
 * flags, --help, TLS, SIGTERM), and bench/rpc compares against it.  It is
 * built exactly like a product daemon so that its tests say something true
 * about them.
 */
#include "ks/config.h"
#include "ks/daemon.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/net.h"
#include "ks/rpc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct echod_settings {
  char *listen;
  bool tls;
  char *tls_ca;
  char *tls_cert;
  char *tls_key;
  int64_t max_inflight;
  int64_t max_bulk;
  int log_level;
  char *log_file;
} echod_settings_t;

static const char *const log_levels[] = {"debug", "info", "warn", "error",
                                         NULL};

static const ks_opt_t echod_opts[] = {
    {"rpc.listen", KS_OPT_STRING, "127.0.0.1:7250", 0, 0, NULL,
     "address:port to serve RPC on", offsetof(echod_settings_t, listen)},
    {"rpc.tls.enabled", KS_OPT_BOOL, "false", 0, 0, NULL,
     "require TLS 1.3 with client certificates",
     offsetof(echod_settings_t, tls)},
    {"rpc.tls.ca", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of the CA that signs peers", offsetof(echod_settings_t, tls_ca)},
    {"rpc.tls.cert", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of this node's certificate",
     offsetof(echod_settings_t, tls_cert)},
    {"rpc.tls.key", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of this node's private key",
     offsetof(echod_settings_t, tls_key)},
    {"rpc.max_inflight", KS_OPT_INT, "256", 1, 65536, NULL,
     "unanswered requests per connection before reading pauses",
     offsetof(echod_settings_t, max_inflight)},
    {"rpc.max_bulk", KS_OPT_SIZE, "64MiB", 4096, 1 << 30, NULL,
     "largest bulk payload accepted", offsetof(echod_settings_t, max_bulk)},
    {"log.level", KS_OPT_ENUM, "info", 0, 0, log_levels,
     "least severe level logged", offsetof(echod_settings_t, log_level)},
    {"log.file", KS_OPT_STRING, NULL, 0, 0, NULL,
     "log file (default: stderr); reopened on SIGHUP",
     offsetof(echod_settings_t, log_file)},
};

typedef struct echod {
  char host[64];
  ks_rpc_server_t *srv;
  ks_rpc_tls_t *tls;
} echod_t;

static void echod_stop(ks_daemon_t *d, void *arg)
{
  echod_t *e = arg;
  (void)d;
  ks_rpc_server_close(e->srv, NULL, NULL);
  e->srv = NULL;
}

static int echod_serve(echod_t *e, const echod_settings_t *s, uv_loop_t *loop)
{
  uint16_t port;
  int rc = ks_hostport_parse(s->listen, e->host, sizeof(e->host), &port);
  if (rc != 0) {
    ks_log_error("ks-echod", "bad_listen", "value=%s", s->listen);
    return rc;
  }
  rc = ks_daemon_rpc_tls("ks-echod", s->tls, s->tls_ca, s->tls_cert, s->tls_key,
                         &e->tls);
  if (rc != 0)
    return rc;
  ks_rpc_opts_t o = {.tls = e->tls,
                     .max_inflight = (uint32_t)s->max_inflight,
                     .max_bulk = (uint64_t)s->max_bulk};
  rc = ks_rpc_server_new(loop, e->host, port, &o, &e->srv);
  if (rc != 0) {
    ks_log_error("ks-echod", "listen_failed", "addr=%s err=%s", s->listen,
                 ks_errname(rc));
    return rc;
  }
  return ks_rpc_ping_register(e->srv);
}

int main(int argc, char **argv)
{
  echod_settings_t s;
  int exit_status;
  if (!ks_daemon_settings("ks-echod", NULL, echod_opts, KS_NELEM(echod_opts),
                          argc, argv, &s, &exit_status))
    return exit_status;
  uv_loop_t loop;
  ks_daemon_t d;
  echod_t e = {0};
  uv_loop_init(&loop);
  int status = 1;
  if (ks_daemon_init(&d, &loop, "ks-echod", echod_stop, &e) != 0 ||
      ks_daemon_log_open(&d, s.log_file, log_levels[s.log_level]) != 0) {
    fprintf(stderr, "ks-echod: cannot set up signals or log\n");
    goto out;
  }
  int rc = echod_serve(&e, &s, &loop);
  if (rc == 0) {
    ks_daemon_ready(&d, "listen=%s:%u tls=%s", e.host,
                    (unsigned)ks_rpc_server_port(e.srv), s.tls ? "yes" : "no");
    uv_run(&loop, UV_RUN_DEFAULT);
    status = 0;
  } else if (e.srv) {
    ks_rpc_server_close(e.srv, NULL, NULL);
  }
  ks_daemon_close(&d);
  uv_run(&loop, UV_RUN_DEFAULT);
out:
  ks_rpc_tls_free(e.tls);
  if (uv_loop_close(&loop) != 0)
    ks_log_error("ks-echod", "handles_left_open", NULL);
  ks_cfg_free(echod_opts, KS_NELEM(echod_opts), &s);
  ks_log_close();
  return status;
}
