/*
 * kiseki-s3d — the S3 gateway: configuration wired to the S3 server
 * (ks/s3_server.h), the server wired to libkiseki's object layer
 * (ks/s3_backend_kiseki.h over ks/object.h) and the daemon life cycle.
 *
 * Backend.  With s3.backend=kiseki (the default) the daemon opens the
 * internal key provider in s3.kms_dir (ks_kms_file_open: it locks the
 * directory, so one s3d per key directory), creates one ks_client_t over
 * s3.meta and the chunk daemons in s3.chunkd, and serves with the kiseki
 * backend.  It listens at once; the client's device list (DEV_LIST) is
 * retried every second until every chunk daemon answered (event=
 * chunkd_unavailable on the first failure and every 30th, event=
 * devices_listed when done): until then writes answer an S3 error that
 * clients retry, reads and listings already work.  s3.backend=none keeps
 * ks_s3_backend_none() (no keys, no operations) and says so in its log
 * (event=backend_missing).
 *
 * SIGTERM: the admin listener closes, then the server stops accepting,
 * lets requests in flight finish, closes idle connections; then the
 * backend, the client and the key provider close in that order, and the
 * daemon exits 0 with no handle left (1 if s3.grace ran out).
 *
 * Metrics: the S3 server's counters (ks_s3_server_stats), read at scrape
 * time, on `admin.listen` (ks/admin_http.h); a port that cannot be bound
 * fails the start.
 */
#include "ks/admin_http.h"
#include "ks/config.h"
#include "ks/daemon.h"
#include "ks/err.h"
#include "ks/kms.h"
#include "ks/log.h"
#include "ks/metrics.h"
#include "ks/net.h"
#include "ks/object.h"
#include "ks/s3_backend_kiseki.h"
#include "ks/s3_server.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "s3d"
#define RETRY_MS 1000
#define RETRY_LOG_EVERY 30

typedef struct s3d_settings {
  char *listen;
  char *admin_listen;
  char *domain;
  char *region;
  char *mmap_dir;
  int64_t max_body;
  int64_t max_header;
  int64_t req_timeout_ms;
  int64_t grace_ms;
  char *meta;
  char *chunkd;
  int backend;
  char *kms_dir;
  int64_t ec_k;
  int64_t ec_m;
  int log_level;
  char *log_file;
} s3d_settings_t;

static const char *const log_levels[] = {"debug", "info", "warn", "error",
                                         NULL};

enum { BACKEND_KISEKI, BACKEND_NONE };
static const char *const backends[] = {"kiseki", "none", NULL};

static const ks_opt_t s3d_opts[] = {
    {"s3.listen", KS_OPT_STRING, "127.0.0.1:9000", 0, 0, NULL,
     "address:port to serve S3 on", offsetof(s3d_settings_t, listen)},
    {"admin.listen", KS_OPT_STRING, "127.0.0.1:9001", 0, 0, NULL,
     "address:port of the admin HTTP listener (/metrics, /healthz)",
     offsetof(s3d_settings_t, admin_listen)},
    {"s3.domain", KS_OPT_STRING, NULL, 0, 0, NULL,
     "endpoint domain for virtual-hosted-style buckets (bucket.DOMAIN)",
     offsetof(s3d_settings_t, domain)},
    {"s3.region", KS_OPT_STRING, "us-east-1", 0, 0, NULL,
     "region clients sign for", offsetof(s3d_settings_t, region)},
    {"s3.mmap_dir", KS_OPT_STRING, "/tmp", 0, 0, NULL,
     "directory for request bodies above 32 MiB (put it on a data device)",
     offsetof(s3d_settings_t, mmap_dir)},
    {"s3.max_body", KS_OPT_SIZE, "5GiB", 1 << 20, INT64_C(5) << 30, NULL,
     "largest request body (S3: 5 GiB)", offsetof(s3d_settings_t, max_body)},
    {"s3.max_header", KS_OPT_SIZE, "16KiB", 4096, 256 << 10, NULL,
     "largest request header section", offsetof(s3d_settings_t, max_header)},
    {"s3.request_timeout", KS_OPT_DURATION_MS, "30s", 100, 3600000, NULL,
     "time a client may take to send a request, or to take a response part",
     offsetof(s3d_settings_t, req_timeout_ms)},
    {"s3.grace", KS_OPT_DURATION_MS, "8s", 100, 3600000, NULL,
     "on SIGTERM: how long requests in flight may take to finish",
     offsetof(s3d_settings_t, grace_ms)},
    {"s3.backend", KS_OPT_ENUM, "kiseki", 0, 0, backends,
     "object store: kiseki (meta + chunkd), or none (every operation "
     "answers an S3 error)",
     offsetof(s3d_settings_t, backend)},
    {"s3.meta", KS_OPT_STRING, "127.0.0.1:7100", 0, 0, NULL,
     "meta address host:port", offsetof(s3d_settings_t, meta)},
    {"s3.chunkd", KS_OPT_STRING, "127.0.0.1:7200", 0, 0, NULL,
     "chunk daemon addresses host:port, comma-separated",
     offsetof(s3d_settings_t, chunkd)},
    {"s3.kms_dir", KS_OPT_STRING, "var/dev/keys", 0, 0, NULL,
     "directory of the internal key provider (tenant keys; locked while "
     "s3d runs)",
     offsetof(s3d_settings_t, kms_dir)},
    {"s3.ec_k", KS_OPT_INT, "4", 1, 16, NULL,
     "erasure coding: data fragments per chunk",
     offsetof(s3d_settings_t, ec_k)},
    {"s3.ec_m", KS_OPT_INT, "2", 1, 16, NULL,
     "erasure coding: parity fragments per chunk",
     offsetof(s3d_settings_t, ec_m)},
    {"log.level", KS_OPT_ENUM, "info", 0, 0, log_levels,
     "least severe level logged", offsetof(s3d_settings_t, log_level)},
    {"log.file", KS_OPT_STRING, NULL, 0, 0, NULL,
     "log file (default: stderr); reopened on SIGHUP",
     offsetof(s3d_settings_t, log_file)},
};

typedef struct s3d {
  ks_s3_server_t *srv;
  ks_kms_t *kms;
  ks_client_t *cl;
  ks_s3_kiseki_t *be;
  uv_timer_t retry;
  bool retry_open;
  bool stopping;
  uint32_t attempts;
  char *chunkd_buf;
  const char *chunkd[KS_OBJ_CHUNKD_MAX];
  size_t nchunkd;
  ks_metrics_t *metrics;
  ks_admin_http_t *admin;
  uv_loop_t *loop;
  char host[64];
  char admin_host[64];
  int status;
} s3d_t;

/* ---- shutdown: server, backend, client, key provider -------------------- */

static void s3d_client_closed(void *arg)
{
  s3d_t *g = arg;
  g->cl = NULL;
  ks_kms_close(g->kms); /* zeroes the keys it held */
  g->kms = NULL;
}

static void s3d_client_close(s3d_t *g)
{
  if (g->cl != NULL)
    ks_client_close(g->cl, s3d_client_closed, g);
  else
    s3d_client_closed(g);
}

static void s3d_retry_closed(uv_handle_t *h)
{
  s3d_client_close(h->data);
}

static void s3d_backend_closed(void *arg)
{
  s3d_t *g = arg;
  g->be = NULL;
  if (!g->retry_open) {
    s3d_client_close(g);
    return;
  }
  g->retry_open = false;
  uv_close((uv_handle_t *)&g->retry, s3d_retry_closed);
}

static void s3d_closed(void *arg, int status)
{
  s3d_t *g = arg;
  g->srv = NULL;
  g->status = status == 0 ? 0 : 1;
  if (status != 0) {
    /* connections still open, holding the backend, and sealing work may
     * still use the keys: leave all of it to process exit */
    ks_log_warn(COMP, "stop_forced", "err=%s", ks_errname(status));
    g->kms = NULL;
    uv_stop(g->loop);
    return;
  }
  if (g->be != NULL)
    ks_s3_kiseki_close(g->be, s3d_backend_closed, g);
  else
    s3d_backend_closed(g);
}

static void s3d_admin_closed(void *arg)
{
  s3d_t *g = arg;
  g->admin = NULL;
  ks_s3_server_close(g->srv, s3d_closed, g);
}

/* The admin listener first: no scrape may read a server being freed. */
static void s3d_stop(ks_daemon_t *d, void *arg)
{
  s3d_t *g = arg;
  (void)d;
  g->stopping = true;
  ks_admin_http_close(g->admin, s3d_admin_closed, g);
}

/* ---- metrics ------------------------------------------------------------ */

static ks_s3_server_stats_t s3d_stats(const s3d_t *g)
{
  ks_s3_server_stats_t st = {0};
  if (g->srv)
    ks_s3_server_stats(g->srv, &st);
  return st;
}

static double m_requests(void *g, size_t i)
{
  (void)i;
  return (double)s3d_stats(g).requests;
}

static double m_errors(void *g, size_t i)
{
  (void)i;
  return (double)s3d_stats(g).errors;
}

static double m_conns(void *g, size_t i)
{
  (void)i;
  return (double)s3d_stats(g).conns;
}

static double m_inflight(void *g, size_t i)
{
  (void)i;
  return (double)s3d_stats(g).inflight;
}

static int s3d_metrics_register(s3d_t *g)
{
  int rc = ks_metrics_new(&g->metrics);
  if (rc == 0)
    rc = ks_metric_counter_fn(g->metrics, "kiseki_s3_requests_total",
                              "S3 requests received.", NULL, m_requests, g,
                              NULL);
  if (rc == 0)
    rc = ks_metric_counter_fn(g->metrics, "kiseki_s3_errors_total",
                              "S3 requests answered with an S3 error (4xx or "
                              "5xx, not 304).",
                              NULL, m_errors, g, NULL);
  if (rc == 0)
    rc = ks_metric_gauge_fn(g->metrics, "kiseki_s3_connections_open",
                            "HTTP connections open.", NULL, m_conns, g, NULL);
  if (rc == 0)
    rc = ks_metric_gauge_fn(g->metrics, "kiseki_s3_requests_inflight",
                            "S3 requests not finished.", NULL, m_inflight, g,
                            NULL);
  return rc;
}

/* A daemon nobody can watch should not run: a port taken fails the start. */
static int s3d_admin_start(s3d_t *g, const s3d_settings_t *s)
{
  int rc = s3d_metrics_register(g);
  if (rc != 0)
    return rc;
  return ks_daemon_admin_listen(COMP, g->loop, s->admin_listen, g->metrics,
                                g->admin_host, sizeof(g->admin_host),
                                &g->admin);
}

/* ---- the object store ---------------------------------------------------- */

/* s->chunkd split at commas (blanks around an address are dropped). */
static int s3d_chunkd_parse(s3d_t *g, const char *list)
{
  g->chunkd_buf = strdup(list);
  if (g->chunkd_buf == NULL)
    return -ENOMEM;
  char *save = NULL;
  for (char *t = strtok_r(g->chunkd_buf, ",", &save); t != NULL;
       t = strtok_r(NULL, ",", &save)) {
    t += strspn(t, " \t");
    char *end = t + strlen(t);
    while (end > t && (end[-1] == ' ' || end[-1] == '\t'))
      *--end = '\0';
    if (*t == '\0')
      continue;
    if (g->nchunkd == KS_OBJ_CHUNKD_MAX)
      return -E2BIG;
    g->chunkd[g->nchunkd++] = t;
  }
  return g->nchunkd > 0 ? 0 : -EINVAL;
}

static void s3d_client_start(s3d_t *g);

static void s3d_retry_cb(uv_timer_t *t)
{
  s3d_client_start(t->data);
}

static void s3d_client_started(void *arg, int status)
{
  s3d_t *g = arg;
  g->attempts++;
  if (g->stopping)
    return;
  if (status == 0) {
    ks_log_info(COMP, "devices_listed", "devices=%zu attempts=%u",
                ks_client_devices(g->cl), (unsigned)g->attempts);
    return;
  }
  if (g->attempts % RETRY_LOG_EVERY == 1)
    ks_log_warn(COMP, "chunkd_unavailable",
                "err=%s attempts=%u retry_ms=%d reason=\"device list failed; "
                "writes fail until it succeeds\"",
                ks_errname(status), (unsigned)g->attempts, RETRY_MS);
  uv_timer_start(&g->retry, s3d_retry_cb, RETRY_MS, 0);
}

static void s3d_client_start(s3d_t *g)
{
  if (g->stopping)
    return;
  int rc = ks_client_start(g->cl, s3d_client_started, g);
  if (rc != 0)
    s3d_client_started(g, rc);
}

/* Key provider, client (its start runs on), backend.  On failure what was
 * made is left for main to release. */
static int s3d_store_open(s3d_t *g, const s3d_settings_t *s)
{
  int rc = s3d_chunkd_parse(g, s->chunkd);
  if (rc != 0) {
    ks_log_error(COMP, "bad_chunkd", "value=\"%s\" err=%s", s->chunkd,
                 ks_errname(rc));
    return rc;
  }
  rc = ks_kms_file_open(s->kms_dir, &g->kms);
  if (rc != 0) {
    ks_log_error(COMP, "kms_open_failed", "dir=%s err=%s", s->kms_dir,
                 ks_errname(rc));
    return rc;
  }
  ks_client_opts_t co = {.meta = s->meta,
                         .chunkd = g->chunkd,
                         .nchunkd = g->nchunkd,
                         .kms = g->kms,
                         .k = (unsigned)s->ec_k,
                         .m = (unsigned)s->ec_m};
  rc = ks_client_new(g->loop, &co, &g->cl);
  if (rc != 0) {
    ks_log_error(COMP, "client_failed", "meta=%s chunkd=\"%s\" err=%s", s->meta,
                 s->chunkd, ks_errname(rc));
    return rc;
  }
  rc = ks_s3_kiseki_new(g->loop, g->cl, NULL, &g->be);
  if (rc != 0)
    return rc;
  uv_timer_init(g->loop, &g->retry);
  g->retry.data = g;
  g->retry_open = true;
  s3d_client_start(g);
  ks_log_info(COMP, "backend",
              "name=kiseki meta=%s chunkd=\"%s\" ec=%d+%d "
              "kms_dir=%s",
              s->meta, s->chunkd, (int)s->ec_k, (int)s->ec_m, s->kms_dir);
  return 0;
}

static int s3d_serve(s3d_t *g, const s3d_settings_t *s, uv_loop_t *loop)
{
  char *host = g->host;
  uint16_t port;
  int rc = ks_hostport_parse(s->listen, host, sizeof(g->host), &port);
  if (rc != 0) {
    ks_log_error(COMP, "bad_listen", "value=%s", s->listen);
    return rc;
  }
  ks_s3_server_opts_t o = {.host = host,
                           .port = port,
                           .domain = s->domain,
                           .region = s->region,
                           .mmap_dir = s->mmap_dir,
                           .max_body = (uint64_t)s->max_body,
                           .max_header_bytes = (uint32_t)s->max_header,
                           .req_timeout_ms = (uint32_t)s->req_timeout_ms,
                           .grace_ms = (uint32_t)s->grace_ms};
  const ks_s3_backend_t *be = ks_s3_backend_none();
  if (s->backend == BACKEND_KISEKI) {
    rc = s3d_store_open(g, s);
    if (rc != 0)
      return rc;
    be = ks_s3_kiseki_backend(g->be);
  }
  rc = ks_s3_server_new(loop, &o, be, &g->srv);
  if (rc != 0) {
    ks_log_error(COMP, "listen_failed", "addr=%s err=%s", s->listen,
                 ks_errname(rc));
    return rc;
  }
  rc = s3d_admin_start(g, s);
  if (rc != 0) {
    ks_s3_server_close(g->srv, NULL, NULL); /* the exit finishes it */
    return rc;
  }
  if (s->backend == BACKEND_NONE)
    ks_log_warn(COMP, "backend_missing",
                "reason=\"s3.backend=none: no access keys, every operation "
                "answers an S3 error\"");
  return 0;
}

int main(int argc, char **argv)
{
  s3d_settings_t s;
  int exit_status;
  if (!ks_daemon_settings("kiseki-s3d", "s3d", s3d_opts, KS_NELEM(s3d_opts),
                          argc, argv, &s, &exit_status))
    return exit_status;
  uv_loop_t loop;
  ks_daemon_t d;
  s3d_t g = {.loop = &loop};
  uv_loop_init(&loop);
  int status = 1;
  if (ks_daemon_init(&d, &loop, "kiseki-s3d", s3d_stop, &g) != 0 ||
      ks_daemon_log_open(&d, s.log_file, log_levels[s.log_level]) != 0) {
    fprintf(stderr, "kiseki-s3d: cannot set up signals or log\n");
    goto out;
  }
  if (s3d_serve(&g, &s, &loop) == 0) {
    ks_daemon_ready(&d, "listen=%s:%u admin=%s:%u region=%s", g.host,
                    (unsigned)ks_s3_server_port(g.srv), g.admin_host,
                    (unsigned)ks_admin_http_port(g.admin), s.region);
    uv_run(&loop, UV_RUN_DEFAULT);
    status = g.status;
  }
  ks_daemon_close(&d);
  if (status == 0)
    uv_run(&loop, UV_RUN_DEFAULT);
out:
  if (status == 0 && uv_loop_close(&loop) != 0)
    ks_log_error(COMP, "handles_left_open", NULL);
  ks_kms_close(g.kms); /* a failed or forced exit: zero the keys anyway */
  free(g.chunkd_buf);
  ks_metrics_free(g.metrics);
  ks_cfg_free(s3d_opts, KS_NELEM(s3d_opts), &s);
  ks_log_close();
  return status;
}
