/*
 * kiseki-chunkd — the chunk daemon: serves the fragments on this node's
 * devices over RPC (ks/chunk_service.h over ks/chunk_store.h), plus the RPC
 * layer's PING service for liveness checks.
 *
 * This file only wires configuration to the library: settings, devices
 * (`chunkd.devices` = "path[=class],..." or, when that is empty,
 * `chunkd.device_count` directories dev0.. under `chunkd.data_dir`, created
 * on first start), the threadpool size, TLS, the server and the daemon life
 * cycle.  Devices are opened (and their leftover temporary files removed)
 * before the loop starts and before event=ready, so that blocking scan is
 * the only disk I/O outside the threadpool.  SIGTERM closes the server
 * (which waits for every request in flight to be answered, i.e. every disk
 * job to finish), then the service and the store, and exits 0.
 *
 * Metrics (ks/metrics.h) are served on `admin.listen` (ks/admin_http.h);
 * a port that cannot be bound fails the start.  RPC and service counters
 * are read from the server and the service at scrape time; per-device
 * numbers (state, free and total bytes, fragments) need statvfs, which may
 * block, so a threadpool job refreshes a copy every DEV_REFRESH_MS and the
 * scrape reads the copy.  On SIGTERM the admin listener closes first, so
 * no scrape can read a server or service being freed.
 */
#include "ks/admin_http.h"
#include "ks/chunk_service.h"
#include "ks/chunk_store.h"
#include "ks/config.h"
#include "ks/daemon.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/metrics.h"
#include "ks/net.h"
#include "ks/rpc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COMP "chunkd"
/* libuv's threadpool cannot grow past this. */
#define IO_THREADS_MAX 1024
/* Device numbers in /metrics are at most this old. */
#define DEV_REFRESH_MS 10000

typedef struct chunkd_settings {
  char *listen;
  char *admin_listen;
  bool tls;
  char *tls_ca;
  char *tls_cert;
  char *tls_key;
  int64_t max_inflight;
  int64_t max_bulk;
  char *devices;
  char *data_dir;
  int64_t device_count;
  int device_class;
  int64_t device_jobs;
  int64_t device_queue;
  int64_t io_threads;
  int log_level;
  char *log_file;
} chunkd_settings_t;

static const char *const log_levels[] = {"debug", "info", "warn", "error",
                                         NULL};
static const char *const dev_classes[] = {"fast-nvme", "bulk-nvme", "hdd",
                                          NULL};
_Static_assert(KS_DEV_FAST_NVME == 0 && KS_DEV_BULK_NVME == 1 &&
                   KS_DEV_HDD == 2,
               "dev_classes follows ks_dev_class_t");

static const ks_opt_t chunkd_opts[] = {
    {"rpc.listen", KS_OPT_STRING, "127.0.0.1:7200", 0, 0, NULL,
     "address:port to serve RPC on", offsetof(chunkd_settings_t, listen)},
    {"admin.listen", KS_OPT_STRING, "127.0.0.1:7201", 0, 0, NULL,
     "address:port of the admin HTTP listener (/metrics, /healthz)",
     offsetof(chunkd_settings_t, admin_listen)},
    {"rpc.tls.enabled", KS_OPT_BOOL, "false", 0, 0, NULL,
     "require TLS 1.3 with client certificates",
     offsetof(chunkd_settings_t, tls)},
    {"rpc.tls.ca", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of the CA that signs peers",
     offsetof(chunkd_settings_t, tls_ca)},
    {"rpc.tls.cert", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of this node's certificate",
     offsetof(chunkd_settings_t, tls_cert)},
    {"rpc.tls.key", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of this node's private key",
     offsetof(chunkd_settings_t, tls_key)},
    {"rpc.max_inflight", KS_OPT_INT, "256", 1, 65536, NULL,
     "unanswered requests per connection before reading pauses",
     offsetof(chunkd_settings_t, max_inflight)},
    {"rpc.max_bulk", KS_OPT_SIZE, "64MiB", 4096, 64 << 20, NULL,
     "largest bulk payload (fragment) accepted",
     offsetof(chunkd_settings_t, max_bulk)},
    {"chunkd.devices", KS_OPT_STRING, NULL, 0, 0, NULL,
     "device directories, comma-separated path[=class] (class: fast-nvme, "
     "bulk-nvme, hdd; default chunkd.device_class)",
     offsetof(chunkd_settings_t, devices)},
    {"chunkd.data_dir", KS_OPT_STRING, "var/dev/chunkd", 0, 0, NULL,
     "when chunkd.devices is empty: the parent of dev0..devN-1 (created)",
     offsetof(chunkd_settings_t, data_dir)},
    {"chunkd.device_count", KS_OPT_INT, "6", 1, KS_DEV_MAX, NULL,
     "when chunkd.devices is empty: how many devices under data_dir",
     offsetof(chunkd_settings_t, device_count)},
    {"chunkd.device_class", KS_OPT_ENUM, "bulk-nvme", 0, 0, dev_classes,
     "class of devices that do not name one",
     offsetof(chunkd_settings_t, device_class)},
    {"chunkd.device_jobs", KS_OPT_INT, "4", 1, 256, NULL,
     "disk jobs running at once per device",
     offsetof(chunkd_settings_t, device_jobs)},
    {"chunkd.device_queue", KS_OPT_INT, "1024", 1, 1 << 20, NULL,
     "jobs waiting per device before requests are refused (KS_EBUSY)",
     offsetof(chunkd_settings_t, device_queue)},
    {"chunkd.io_threads", KS_OPT_INT, "0", 0, IO_THREADS_MAX, NULL,
     "threadpool size (0: devices x device_jobs; UV_THREADPOOL_SIZE wins)",
     offsetof(chunkd_settings_t, io_threads)},
    {"log.level", KS_OPT_ENUM, "info", 0, 0, log_levels,
     "least severe level logged", offsetof(chunkd_settings_t, log_level)},
    {"log.file", KS_OPT_STRING, NULL, 0, 0, NULL,
     "log file (default: stderr); reopened on SIGHUP",
     offsetof(chunkd_settings_t, log_file)},
};

typedef struct chunkd {
  char host[64];
  ks_chunk_dev_conf_t devs[KS_DEV_MAX];
  char *dev_paths[KS_DEV_MAX]; /* owned strings the dev confs point to */
  size_t ndev;
  ks_chunk_store_t *store;
  ks_chunk_service_t *svc;
  ks_rpc_server_t *srv;
  ks_rpc_tls_t *tls;
  /* metrics */
  char admin_host[64];
  ks_metrics_t *metrics;
  ks_admin_http_t *admin;
  uv_timer_t dev_timer;
  uv_work_t dev_work;
  bool dev_timer_live;
  bool dev_busy;
  const char *dev_labels[KS_DEV_MAX];
  ks_dev_info_t dev_scratch; /* the refresh job's, one device at a time */
  uint64_t dev_num[2][KS_DEV_MAX][4]; /* [job, scrape][dev][DEV_*] */
} chunkd_t;

enum { DEV_UP, DEV_FREE, DEV_CAPACITY, DEV_FRAGS };

/* ---- devices from the settings ------------------------------------------ */

static int dev_add(chunkd_t *c, const char *path, ks_dev_class_t cls)
{
  if (c->ndev >= KS_DEV_MAX)
    return KS_ECONFIG;
  char *p = strdup(path);
  if (p == NULL)
    return -ENOMEM;
  c->dev_paths[c->ndev] = p;
  c->devs[c->ndev].path = p;
  c->devs[c->ndev].cls = cls;
  c->ndev++;
  return 0;
}

/* One "path[=class]" item of chunkd.devices. */
static int dev_parse_item(chunkd_t *c, char *item, ks_dev_class_t def)
{
  ks_dev_class_t cls = def;
  char *eq = strrchr(item, '=');
  if (eq && ks_dev_class_parse(eq + 1, &cls) == 0)
    *eq = '\0';
  else if (eq) {
    ks_log_error(COMP, "bad_device", "item=%s reason=\"unknown class\"", item);
    return KS_ECONFIG;
  }
  if (item[0] == '\0') {
    ks_log_error(COMP, "bad_device", "reason=\"empty path\"");
    return KS_ECONFIG;
  }
  return dev_add(c, item, cls);
}

static int devs_from_list(chunkd_t *c, const char *list, ks_dev_class_t def)
{
  char *copy = strdup(list);
  if (copy == NULL)
    return -ENOMEM;
  int rc = 0;
  char *save = NULL;
  for (char *it = strtok_r(copy, ",", &save); it && rc == 0;
       it = strtok_r(NULL, ",", &save))
    rc = dev_parse_item(c, it, def);
  free(copy);
  return rc;
}

/* mkdir -p: 0 or a negated errno. */
static int mkdir_p(const char *dir)
{
  char path[KS_DEV_PATH_MAX];
  if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
    return -ENAMETOOLONG;
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  return mkdir(path, 0750) != 0 && errno != EEXIST ? -errno : 0;
}

/* dev0..devN-1 under data_dir, created (with data_dir) when missing. */
static int devs_from_dir(chunkd_t *c, const char *dir, int64_t n,
                         ks_dev_class_t cls)
{
  if (mkdir_p(dir) != 0) {
    ks_log_error(COMP, "bad_data_dir", "path=%s err=%s", dir,
                 ks_errname(-errno));
    return KS_ECONFIG;
  }
  for (int64_t i = 0; i < n; i++) {
    char path[KS_DEV_PATH_MAX];
    snprintf(path, sizeof(path), "%s/dev%lld", dir, (long long)i);
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
      ks_log_warn(COMP, "mkdir_failed", "path=%s err=%s", path,
                  ks_errname(-errno));
    int rc = dev_add(c, path, cls);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int devs_configure(chunkd_t *c, const chunkd_settings_t *s)
{
  ks_dev_class_t def = (ks_dev_class_t)s->device_class;
  int rc = s->devices && s->devices[0]
               ? devs_from_list(c, s->devices, def)
               : devs_from_dir(c, s->data_dir, s->device_count, def);
  if (rc == 0 && c->ndev == 0) {
    ks_log_error(COMP, "bad_device", "reason=\"no devices\"");
    rc = KS_ECONFIG;
  }
  return rc;
}

/* The threadpool: enough threads for every device's jobs at once, unless
 * the environment already says. */
static void io_threads_set(const chunkd_settings_t *s, size_t ndev)
{
  int64_t n = s->io_threads ? s->io_threads : (int64_t)ndev * s->device_jobs;
  if (n > IO_THREADS_MAX)
    n = IO_THREADS_MAX;
  char buf[24];
  snprintf(buf, sizeof(buf), "%lld", (long long)n);
  setenv("UV_THREADPOOL_SIZE", buf, 0);
}

/* ---- metrics ------------------------------------------------------------ */

static ks_chunk_service_stats_t svc_stats(const chunkd_t *c)
{
  ks_chunk_service_stats_t st = {0};
  if (c->svc)
    ks_chunk_service_stats(c->svc, &st);
  return st;
}

static double m_ops(void *c, size_t op)
{
  return (double)svc_stats(c).requests[op];
}

static double m_op_errors(void *c, size_t op)
{
  return (double)svc_stats(c).errors[op];
}

static double m_bytes_put(void *c, size_t i)
{
  (void)i;
  return (double)svc_stats(c).bytes_put;
}

static double m_bytes_got(void *c, size_t i)
{
  (void)i;
  return (double)svc_stats(c).bytes_got;
}

static double m_jobs(void *arg, size_t i)
{
  const chunkd_t *c = arg;
  (void)i;
  return c->svc ? ks_chunk_service_jobs(c->svc) : 0;
}

static double m_dev_up(void *c, size_t dev)
{
  return (double)((chunkd_t *)c)->dev_num[1][dev][DEV_UP];
}

static double m_dev_free(void *c, size_t dev)
{
  return (double)((chunkd_t *)c)->dev_num[1][dev][DEV_FREE];
}

static double m_dev_capacity(void *c, size_t dev)
{
  return (double)((chunkd_t *)c)->dev_num[1][dev][DEV_CAPACITY];
}

static double m_dev_frags(void *c, size_t dev)
{
  return (double)((chunkd_t *)c)->dev_num[1][dev][DEV_FRAGS];
}

typedef enum { L_NONE, L_OP, L_DEV } label_kind_t;

static const struct chunkd_metric {
  bool counter;
  label_kind_t label;
  const char *name;
  const char *help;
  ks_metric_read_cb cb;
} chunkd_metrics[] = {
    {true, L_OP, "kiseki_chunkd_requests_total",
     "Fragment service requests, by operation.", m_ops},
    {true, L_OP, "kiseki_chunkd_errors_total",
     "Fragment service requests answered with an error (including not "
     "found and busy), by operation.",
     m_op_errors},
    {true, L_NONE, "kiseki_chunkd_put_bytes_total",
     "Fragment payload bytes stored.", m_bytes_put},
    {true, L_NONE, "kiseki_chunkd_get_bytes_total",
     "Fragment payload bytes sent.", m_bytes_got},
    {false, L_NONE, "kiseki_chunkd_jobs",
     "Requests queued, running or replying.", m_jobs},
    {false, L_DEV, "kiseki_chunkd_device_up",
     "1 when the device serves, 0 when it failed.", m_dev_up},
    {false, L_DEV, "kiseki_chunkd_device_free_bytes",
     "Bytes available to chunkd on the device's file system.", m_dev_free},
    {false, L_DEV, "kiseki_chunkd_device_capacity_bytes",
     "Size of the device's file system.", m_dev_capacity},
    {false, L_DEV, "kiseki_chunkd_device_fragments",
     "Fragments stored on the device.", m_dev_frags},
};

/* Threadpool side of the device refresh: statvfs and friends may block. */
static void dev_refresh_work(uv_work_t *w)
{
  chunkd_t *c = w->data;
  for (size_t i = 0; i < c->ndev; i++) {
    ks_chunk_store_dev_info(c->store, i, &c->dev_scratch);
    uint64_t *n = c->dev_num[0][i];
    n[DEV_UP] = c->dev_scratch.state == KS_DEV_OK;
    n[DEV_FREE] = c->dev_scratch.free;
    n[DEV_CAPACITY] = c->dev_scratch.capacity;
    n[DEV_FRAGS] = c->dev_scratch.frags;
  }
}

static void dev_refresh_after(uv_work_t *w, int status)
{
  chunkd_t *c = w->data;
  c->dev_busy = false;
  if (status == 0)
    memcpy(c->dev_num[1], c->dev_num[0], sizeof(c->dev_num[1]));
}

static void dev_refresh_cb(uv_timer_t *t)
{
  chunkd_t *c = t->data;
  if (c->dev_busy)
    return; /* a disk that hangs statvfs must not pile up jobs */
  c->dev_work.data = c;
  if (uv_queue_work(t->loop, &c->dev_work, dev_refresh_work,
                    dev_refresh_after) == 0)
    c->dev_busy = true;
}

static int chunkd_metrics_register(chunkd_t *c)
{
  const char *ops[KS_CHUNK_STAT_OPS];
  for (int i = 0; i < KS_CHUNK_STAT_OPS; i++)
    ops[i] = ks_chunk_op_stat_name((ks_chunk_op_stat_t)i);
  for (size_t i = 0; i < c->ndev; i++)
    c->dev_labels[i] = c->dev_paths[i];
  ks_metric_label_t lop = {"op", ops, KS_CHUNK_STAT_OPS};
  ks_metric_label_t ldev = {"device", c->dev_labels, c->ndev};
  int rc = ks_metrics_new(&c->metrics);
  if (rc == 0)
    rc = ks_rpc_server_metrics(c->metrics, &c->srv);
  for (size_t i = 0; rc == 0 && i < KS_NELEM(chunkd_metrics); i++) {
    const struct chunkd_metric *d = &chunkd_metrics[i];
    const ks_metric_label_t *l = d->label == L_OP    ? &lop
                                 : d->label == L_DEV ? &ldev
                                                     : NULL;
    rc = d->counter ? ks_metric_counter_fn(c->metrics, d->name, d->help, l,
                                           d->cb, c, NULL)
                    : ks_metric_gauge_fn(c->metrics, d->name, d->help, l, d->cb,
                                         c, NULL);
  }
  return rc;
}

/* Metrics, the device refresh and the admin listener; a port that cannot
 * be bound fails the start (a daemon nobody can watch should not run). */
static int chunkd_admin_start(chunkd_t *c, const chunkd_settings_t *s,
                              uv_loop_t *loop)
{
  int rc = chunkd_metrics_register(c);
  if (rc != 0)
    return rc;
  dev_refresh_work(&(uv_work_t){.data = c}); /* before the loop runs */
  memcpy(c->dev_num[1], c->dev_num[0], sizeof(c->dev_num[1]));
  rc = ks_daemon_admin_listen(COMP, loop, s->admin_listen, c->metrics,
                              c->admin_host, sizeof(c->admin_host), &c->admin);
  if (rc != 0)
    return rc;
  rc = uv_timer_init(loop, &c->dev_timer);
  if (rc != 0)
    return rc;
  c->dev_timer.data = c;
  c->dev_timer_live = true;
  return uv_timer_start(&c->dev_timer, dev_refresh_cb, DEV_REFRESH_MS,
                        DEV_REFRESH_MS);
}

/* ---- serving ------------------------------------------------------------ */

static void chunkd_server_closed(void *arg)
{
  chunkd_t *c = arg;
  ks_chunk_service_free(c->svc);
  c->svc = NULL;
}

static void chunkd_rpc_close(void *arg)
{
  chunkd_t *c = arg;
  c->admin = NULL;
  if (c->srv)
    ks_rpc_server_close(c->srv, chunkd_server_closed, c);
  c->srv = NULL;
}

/* Stop the refresh timer and the admin listener, then the RPC server. */
static void chunkd_shutdown(chunkd_t *c)
{
  if (c->dev_timer_live)
    uv_close((uv_handle_t *)&c->dev_timer, NULL);
  c->dev_timer_live = false;
  if (c->admin)
    ks_admin_http_close(c->admin, chunkd_rpc_close, c);
  else
    chunkd_rpc_close(c);
}

static void chunkd_stop(ks_daemon_t *d, void *arg)
{
  (void)d;
  chunkd_shutdown(arg);
}

static int chunkd_tls(chunkd_t *c, const chunkd_settings_t *s)
{
  return ks_daemon_rpc_tls(COMP, s->tls, s->tls_ca, s->tls_cert, s->tls_key,
                           &c->tls);
}

static int chunkd_listen(chunkd_t *c, const chunkd_settings_t *s,
                         uv_loop_t *loop, uint16_t port)
{
  ks_rpc_opts_t o = {.tls = c->tls,
                     .max_inflight = (uint32_t)s->max_inflight,
                     .max_bulk = (uint64_t)s->max_bulk};
  int rc = ks_rpc_server_new(loop, c->host, port, &o, &c->srv);
  if (rc != 0) {
    ks_log_error(COMP, "listen_failed", "addr=%s err=%s", s->listen,
                 ks_errname(rc));
    return rc;
  }
  rc = ks_rpc_ping_register(c->srv);
  return rc == 0 ? ks_chunk_service_register(c->svc, c->srv) : rc;
}

static int chunkd_serve(chunkd_t *c, const chunkd_settings_t *s,
                        uv_loop_t *loop)
{
  uint16_t port;
  int rc = ks_hostport_parse(s->listen, c->host, sizeof(c->host), &port);
  if (rc != 0) {
    ks_log_error(COMP, "bad_listen", "value=%s", s->listen);
    return rc;
  }
  rc = devs_configure(c, s);
  if (rc == 0)
    rc = chunkd_tls(c, s);
  if (rc != 0)
    return rc;
  io_threads_set(s, c->ndev);
  rc = ks_chunk_store_open(c->devs, c->ndev, &c->store);
  if (rc != 0)
    return rc;
  ks_chunk_service_opts_t so = {.dev_jobs = (uint32_t)s->device_jobs,
                                .dev_queue = (uint32_t)s->device_queue};
  rc = ks_chunk_service_new(loop, c->store, &so, &c->svc);
  return rc == 0 ? chunkd_listen(c, s, loop, port) : rc;
}

static size_t devs_failed(const chunkd_t *c)
{
  size_t failed = 0;
  for (size_t i = 0; i < c->ndev; i++) {
    ks_dev_info_t info;
    ks_chunk_store_dev_info(c->store, i, &info);
    failed += info.state != KS_DEV_OK;
  }
  return failed;
}

static void chunkd_free(chunkd_t *c)
{
  ks_chunk_service_free(c->svc);
  ks_chunk_store_close(c->store);
  ks_rpc_tls_free(c->tls);
  ks_metrics_free(c->metrics);
  for (size_t i = 0; i < c->ndev; i++)
    free(c->dev_paths[i]);
}

static int chunkd_run(chunkd_t *c, const chunkd_settings_t *s, uv_loop_t *loop,
                      ks_daemon_t *d)
{
  int rc = chunkd_serve(c, s, loop);
  if (rc == 0)
    rc = chunkd_admin_start(c, s, loop);
  if (rc != 0) {
    chunkd_shutdown(c);
    return 1;
  }
  size_t failed = devs_failed(c);
  if (failed == c->ndev)
    ks_log_error(COMP, "no_usable_device", "devices=%zu", c->ndev);
  ks_daemon_ready(d, "listen=%s:%u admin=%s:%u tls=%s devices=%zu failed=%zu",
                  c->host, (unsigned)ks_rpc_server_port(c->srv), c->admin_host,
                  (unsigned)ks_admin_http_port(c->admin), s->tls ? "yes" : "no",
                  c->ndev, failed);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}

int main(int argc, char **argv)
{
  chunkd_settings_t s;
  int exit_status;
  if (!ks_daemon_settings("kiseki-chunkd", "chunkd", chunkd_opts,
                          KS_NELEM(chunkd_opts), argc, argv, &s, &exit_status))
    return exit_status;
  uv_loop_t loop;
  ks_daemon_t d;
  chunkd_t c = {0};
  int status = 1;
  if (uv_loop_init(&loop) != 0) {
    fprintf(stderr, "kiseki-chunkd: cannot create the event loop\n");
    ks_cfg_free(chunkd_opts, KS_NELEM(chunkd_opts), &s);
    return 1;
  }
  if (ks_daemon_init(&d, &loop, "kiseki-chunkd", chunkd_stop, &c) != 0 ||
      ks_daemon_log_open(&d, s.log_file, log_levels[s.log_level]) != 0) {
    fprintf(stderr, "kiseki-chunkd: cannot set up signals or log\n");
    goto out;
  }
  status = chunkd_run(&c, &s, &loop, &d);
  ks_daemon_close(&d);
  uv_run(&loop, UV_RUN_DEFAULT);
out:
  chunkd_free(&c);
  if (uv_loop_close(&loop) != 0)
    ks_log_error(COMP, "handles_left_open", NULL);
  ks_cfg_free(chunkd_opts, KS_NELEM(chunkd_opts), &s);
  ks_log_close();
  return status;
}
