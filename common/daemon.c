/*
 * daemon.c — shared start/stop behaviour of the daemons (see ks/daemon.h).
 */
#include "ks/daemon.h"

#include "ks/err.h"
#include "ks/net.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void daemon_on_stop_signal(uv_signal_t *h, int signum)
{
  ks_daemon_t *d = h->data;
  if (d->stopping) {
    ks_log_warn(d->name, "forced_exit", "signal=%d", signum);
    _exit(1);
  }
  d->stopping = true;
  ks_log_info(d->name, "stopping", "signal=%s", strsignal(signum));
  if (d->on_stop)
    d->on_stop(d, d->arg);
}

static void daemon_on_hup(uv_signal_t *h, int signum)
{
  ks_daemon_t *d = h->data;
  (void)signum;
  if (d->log_path == NULL)
    return;
  int rc = ks_log_open(d->log_path);
  ks_log_info(d->name, "log_reopened", "ok=%s err=%s", rc == 0 ? "yes" : "no",
              ks_errname(rc));
}

static int daemon_signal(ks_daemon_t *d, uv_signal_t *h, uv_signal_cb cb,
                         int signum)
{
  int rc = uv_signal_init(d->loop, h);
  if (rc != 0)
    return rc;
  h->data = d;
  rc = uv_signal_start(h, cb, signum);
  uv_unref((uv_handle_t *)h);
  return rc;
}

int ks_daemon_init(ks_daemon_t *d, uv_loop_t *loop, const char *name,
                   ks_daemon_stop_cb on_stop, void *arg)
{
  memset(d, 0, sizeof(*d));
  d->name = name;
  d->loop = loop;
  d->on_stop = on_stop;
  d->arg = arg;
  signal(SIGPIPE, SIG_IGN);
  int rc = daemon_signal(d, &d->_sigterm, daemon_on_stop_signal, SIGTERM);
  if (rc == 0)
    rc = daemon_signal(d, &d->_sigint, daemon_on_stop_signal, SIGINT);
  if (rc == 0)
    rc = daemon_signal(d, &d->_sighup, daemon_on_hup, SIGHUP);
  return rc;
}

int ks_daemon_log_open(ks_daemon_t *d, const char *path, const char *level)
{
  ks_log_level_t lvl = KS_LOG_INFO;
  if (level && ks_log_level_parse(level, &lvl) != 0)
    return -EINVAL;
  ks_log_set_level(lvl);
  free(d->log_path);
  d->log_path = NULL;
  if (path && *path && strcmp(path, "-") != 0) {
    d->log_path = strdup(path);
    if (d->log_path == NULL)
      return -ENOMEM;
  }
  int rc = ks_log_open(d->log_path);
  if (rc == 0)
    ks_log_info(d->name, "started", "pid=%d", (int)getpid());
  return rc;
}

void ks_daemon_ready(ks_daemon_t *d, const char *kvfmt, ...)
{
  char line[512];
  va_list ap;
  va_start(ap, kvfmt);
  vsnprintf(line, sizeof(line), kvfmt, ap);
  va_end(ap);
  ks_log_info(d->name, "ready", "%s", line);
}

void ks_daemon_close(ks_daemon_t *d)
{
  uv_close((uv_handle_t *)&d->_sigterm, NULL);
  uv_close((uv_handle_t *)&d->_sigint, NULL);
  uv_close((uv_handle_t *)&d->_sighup, NULL);
  ks_log_info(d->name, "stopped", NULL);
  free(d->log_path);
  d->log_path = NULL;
}

const char *const ks_node_sections[] = {"meta", "chunkd",    "s3d", "nfsd",
                                        "fuse", "keyserver", "ctl", NULL};

bool ks_daemon_settings(const char *name, const char *section,
                        const ks_opt_t *schema, size_t n, int argc, char **argv,
                        void *settings, int *status)
{
  char err[512];
  ks_cfg_loader_t ld = {.schema = schema,
                        .n = n,
                        .section = section,
                        .sections = section ? ks_node_sections : NULL};
  int rc = ks_cfg_load_ex(&ld, argc, argv, settings, err, sizeof(err));
  if (rc == 0)
    return true;
  if (rc < 0)
    fprintf(stderr, "%s: %s\n", name, err);
  *status = rc > 0 ? 0 : 2;
  return false;
}

int ks_daemon_rpc_tls(const char *name, bool enabled, const char *ca,
                      const char *cert, const char *key, ks_rpc_tls_t **out)
{
  *out = NULL;
  if (!enabled)
    return 0;
  if (!ca || !cert || !key) {
    ks_log_error(name, "bad_tls",
                 "reason=\"rpc.tls.ca, .cert and .key are all required\"");
    return KS_ECONFIG;
  }
  ks_rpc_tls_opts_t to = {.ca_file = ca, .cert_file = cert, .key_file = key};
  return ks_rpc_tls_new(&to, out);
}

int ks_daemon_admin_listen(const char *comp, uv_loop_t *loop,
                           const char *listen, ks_metrics_t *m, char *host,
                           size_t host_size, ks_admin_http_t **out)
{
  uint16_t port;
  int rc = ks_hostport_parse(listen, host, host_size, &port);
  if (rc != 0) {
    ks_log_error(comp, "bad_listen", "key=admin.listen value=%s", listen);
    return rc;
  }
  ks_admin_http_opts_t o = {.host = host, .port = port, .metrics = m};
  rc = ks_admin_http_new(loop, &o, out);
  if (rc != 0)
    ks_log_error(comp, "admin_listen_failed",
                 "addr=%s err=%s reason=\"cannot serve /metrics\"", listen,
                 ks_errname(rc));
  return rc;
}
