/*
 * kiseki-meta — the metadata daemon: hosts shard replicas (libraft groups
 * on the node's raft store, state machines on the node's state
 * environment) and serves ks/proto_meta.h over RPC (ks/meta_service.h),
 * plus the RPC layer's PING service.
 *
 * This file only wires configuration to the library.  Layout under
 * meta.data_dir: raft/ (the Raft logs, snapshots, terms and votes: the
 * durable record) and state/ (the LMDB view, rebuilt from raft/ at every
 * start; see meta/shard.c).  On first start the system shard is
 * bootstrapped as a one-voter group made of this node (meta.node_id at
 * meta.advertise); later starts find its log and leave the configuration
 * alone, so a group that gained replicas keeps them.  SIGTERM closes the
 * admin listener, the raft groups (pending requests answered KS_ECLOSED),
 * the RPC server, the raft node, the state and the store, then exits 0.
 *
 * Metrics (ks/metrics.h) are served on `admin.listen` (ks/admin_http.h) by
 * the loop thread, so the service's and the node's plain counters are read
 * at scrape time without locks; a port that cannot be bound fails the
 * start.  The registry exists before the raft node (the node observes its
 * commit histograms), the service's families are added once the shards
 * are started (their ids are label values), and the listener closes first
 * on SIGTERM so no scrape reads a service being torn down.
 */
#include "ks/admin_http.h"
#include "ks/config.h"
#include "ks/daemon.h"
#include "ks/err.h"
#include "ks/log.h"
#include "ks/meta_service.h"
#include "ks/metrics.h"
#include "ks/net.h"
#include "ks/proto_meta.h"
#include "ks/raft_io_ks.h"
#include "ks/raft_store.h"
#include "ks/rpc.h"
#include "ks/shard.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COMP "meta"

typedef struct meta_settings {
  char *listen;
  char *admin_listen;
  char *advertise;
  bool tls;
  char *tls_ca;
  char *tls_cert;
  char *tls_key;
  int64_t max_inflight;
  char *data_dir;
  int64_t node_id;
  int64_t snapshot_threshold;
  int64_t snapshot_per_record;
  int64_t snapshot_log_max;
  int64_t state_map_size;
  int64_t raft_map_size;
  int log_level;
  char *log_file;
} meta_settings_t;

static const char *const log_levels[] = {"debug", "info", "warn", "error",
                                         NULL};

static const ks_opt_t meta_opts[] = {
    {"rpc.listen", KS_OPT_STRING, "127.0.0.1:7100", 0, 0, NULL,
     "address:port to serve RPC on", offsetof(meta_settings_t, listen)},
    {"admin.listen", KS_OPT_STRING, "127.0.0.1:7101", 0, 0, NULL,
     "address:port of the admin HTTP listener (/metrics, /healthz)",
     offsetof(meta_settings_t, admin_listen)},
    {"rpc.tls.enabled", KS_OPT_BOOL, "false", 0, 0, NULL,
     "require TLS 1.3 with client certificates",
     offsetof(meta_settings_t, tls)},
    {"rpc.tls.ca", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of the CA that signs peers", offsetof(meta_settings_t, tls_ca)},
    {"rpc.tls.cert", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of this node's certificate",
     offsetof(meta_settings_t, tls_cert)},
    {"rpc.tls.key", KS_OPT_STRING, NULL, 0, 0, NULL,
     "PEM file of this node's private key", offsetof(meta_settings_t, tls_key)},
    {"rpc.max_inflight", KS_OPT_INT, "256", 1, 65536, NULL,
     "unanswered requests per connection before reading pauses",
     offsetof(meta_settings_t, max_inflight)},
    {"meta.data_dir", KS_OPT_STRING, "var/dev/meta", 0, 0, NULL,
     "directory of the raft store and the state (created)",
     offsetof(meta_settings_t, data_dir)},
    {"meta.advertise", KS_OPT_STRING, NULL, 0, 0, NULL,
     "address:port peers reach this node at (default: rpc.listen)",
     offsetof(meta_settings_t, advertise)},
    {"meta.node_id", KS_OPT_INT, "1", 1, INT64_MAX, NULL,
     "this node's Raft server id", offsetof(meta_settings_t, node_id)},
    {"meta.snapshot_threshold", KS_OPT_INT, "1024", 16, 1 << 24, NULL,
     "least log entries between snapshots",
     offsetof(meta_settings_t, snapshot_threshold)},
    {"meta.snapshot_per_record", KS_OPT_INT, "2", 1, 64, NULL,
     "the threshold grows to this many entries per record of the shard "
     "(snapshots cost O(1) per entry; restart replays up to that many)",
     offsetof(meta_settings_t, snapshot_per_record)},
    {"meta.snapshot_log_max", KS_OPT_SIZE, "1GiB", 1 << 20, INT64_MAX, NULL,
     "the threshold grows no further than this many bytes of log entries "
     "(held in memory until a snapshot, replayed at restart)",
     offsetof(meta_settings_t, snapshot_log_max)},
    {"meta.state_map_size", KS_OPT_SIZE, "16GiB", 1 << 24, INT64_MAX, NULL,
     "largest size of the state environment (sparse)",
     offsetof(meta_settings_t, state_map_size)},
    {"meta.raft_map_size", KS_OPT_SIZE, "4GiB", 1 << 24, INT64_MAX, NULL,
     "largest size of the raft store (sparse)",
     offsetof(meta_settings_t, raft_map_size)},
    {"log.level", KS_OPT_ENUM, "info", 0, 0, log_levels,
     "least severe level logged", offsetof(meta_settings_t, log_level)},
    {"log.file", KS_OPT_STRING, NULL, 0, 0, NULL,
     "log file (default: stderr); reopened on SIGHUP",
     offsetof(meta_settings_t, log_file)},
};

typedef struct meta {
  char host[64];
  char path[4096];
  ks_raft_store_t *store;
  ks_meta_state_t *st;
  ks_rpc_tls_t *tls;
  ks_rpc_server_t *srv;
  ks_raft_node_t *node;
  ks_meta_service_t *svc;
  char admin_host[64];
  ks_metrics_t *metrics;
  ks_metric_t *commit_seconds;
  ks_metric_t *commit_entries;
  ks_admin_http_t *admin;
} meta_t;

/* Commit (fsync) time: ~50 us on a fast NVMe to seconds on a sick disk. */
static const double commit_bounds[] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
/* Entries per commit: powers of two up to the 4,096 applies a state batch
 * holds (ks/shard.h). */
static const double batch_bounds[] = {0,  1,   2,   4,   8,    16,   32,
                                      64, 128, 256, 512, 1024, 2048, 4096};

/* mkdir -p */
static int dir_make(const char *dir)
{
  char p[4096];
  int n = snprintf(p, sizeof(p), "%s", dir);
  if (n < 0 || (size_t)n >= sizeof(p))
    return -ENAMETOOLONG;
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
      return -errno;
    *s = '/';
  }
  if (mkdir(p, 0700) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

static int sub_dir(meta_t *m, const char *base, const char *name)
{
  int n = snprintf(m->path, sizeof(m->path), "%s/%s", base, name);
  if (n < 0 || (size_t)n >= sizeof(m->path))
    return -ENAMETOOLONG;
  return dir_make(m->path);
}

static void node_closed(void *arg)
{
  (void)arg;
}

static void srv_closed(void *arg)
{
  meta_t *m = arg;
  ks_raft_node_close(m->node, node_closed, m);
  m->node = NULL;
}

static void svc_closed(void *arg)
{
  meta_t *m = arg;
  ks_rpc_server_close(m->srv, srv_closed, m);
  m->srv = NULL;
}

static void admin_closed(void *arg)
{
  meta_t *m = arg;
  m->admin = NULL;
  ks_meta_service_close(m->svc, svc_closed, m);
}

static void meta_stop(ks_daemon_t *d, void *arg)
{
  meta_t *m = arg;
  (void)d;
  if (m->admin != NULL)
    ks_admin_http_close(m->admin, admin_closed, m);
  else
    admin_closed(m);
}

/* The registry and the node's commit histograms, before the node exists. */
static int meta_metrics_new(meta_t *m)
{
  int rc = ks_metrics_new(&m->metrics);
  if (rc == 0)
    rc = ks_metric_histogram_new(
        m->metrics, "kiseki_meta_raft_commit_seconds",
        "Time to commit (fsync) a Raft store write transaction.", NULL,
        commit_bounds, KS_NELEM(commit_bounds), &m->commit_seconds);
  if (rc == 0)
    rc = ks_metric_histogram_new(
        m->metrics, "kiseki_meta_raft_commit_entries",
        "Log entries written per Raft store commit (0: a term, vote, "
        "truncate or snapshot write alone).",
        NULL, batch_bounds, KS_NELEM(batch_bounds), &m->commit_entries);
  return rc;
}

/* A daemon nobody can watch should not run: a port taken fails the start. */
static int meta_admin_start(meta_t *m, const meta_settings_t *s,
                            uv_loop_t *loop)
{
  int rc = ks_meta_service_metrics(m->svc, m->metrics);
  if (rc == 0)
    rc = ks_rpc_server_metrics(m->metrics, &m->srv);
  if (rc != 0)
    return rc;
  return ks_daemon_admin_listen(COMP, loop, s->admin_listen, m->metrics,
                                m->admin_host, sizeof(m->admin_host),
                                &m->admin);
}

static int meta_storage(meta_t *m, const meta_settings_t *s)
{
  int rc = sub_dir(m, s->data_dir, "raft");
  ks_raft_store_opts_t so = {.map_size = (uint64_t)s->raft_map_size};
  if (rc == 0)
    rc = ks_raft_store_open(m->path, &so, &m->store);
  if (rc == 0)
    rc = sub_dir(m, s->data_dir, "state");
  if (rc == 0)
    rc = ks_meta_state_open(m->path, (uint64_t)s->state_map_size, &m->st);
  if (rc != 0)
    ks_log_error(COMP, "storage_failed", "dir=%s err=%s", m->path,
                 ks_errname(rc));
  return rc;
}

static int meta_tls(meta_t *m, const meta_settings_t *s)
{
  return ks_daemon_rpc_tls(COMP, s->tls, s->tls_ca, s->tls_cert, s->tls_key,
                           &m->tls);
}

static int meta_network(meta_t *m, const meta_settings_t *s, uv_loop_t *loop)
{
  uint16_t port;
  int rc = ks_hostport_parse(s->listen, m->host, sizeof(m->host), &port);
  if (rc != 0) {
    ks_log_error(COMP, "bad_listen", "value=%s", s->listen);
    return rc;
  }
  rc = meta_tls(m, s);
  if (rc != 0)
    return rc;
  ks_rpc_opts_t o = {.tls = m->tls, .max_inflight = (uint32_t)s->max_inflight};
  rc = ks_rpc_server_new(loop, m->host, port, &o, &m->srv);
  if (rc != 0) {
    ks_log_error(COMP, "listen_failed", "addr=%s err=%s", s->listen,
                 ks_errname(rc));
    return rc;
  }
  rc = ks_rpc_ping_register(m->srv);
  ks_rpc_opts_t peer = {.tls = m->tls};
  ks_raft_node_opts_t no = {.rpc = &peer,
                            .commit_seconds = m->commit_seconds,
                            .commit_entries = m->commit_entries};
  if (rc == 0)
    rc = ks_raft_node_new(loop, m->store, m->srv, &no, &m->node);
  return rc;
}

static int meta_shards(meta_t *m, const meta_settings_t *s, uv_loop_t *loop)
{
  ks_meta_service_opts_t so = {
      .snapshot_threshold = (unsigned)s->snapshot_threshold,
      .snapshot_per_record = (unsigned)s->snapshot_per_record,
      .snapshot_log_max = (uint64_t)s->snapshot_log_max};
  int rc = ks_meta_service_new(loop, m->srv, m->node, m->st, &so, &m->svc);
  if (rc != 0)
    return rc;
  const char *addr = s->advertise ? s->advertise : s->listen;
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  rc = raft_configuration_add(&conf, (raft_id)s->node_id, addr, RAFT_VOTER);
  if (rc == 0)
    rc = ks_meta_service_shard_start(m->svc, KS_META_SYSTEM_SHARD,
                                     (uint64_t)s->node_id, addr, &conf);
  else
    rc = -ENOMEM;
  raft_configuration_close(&conf);
  return rc;
}

static int meta_start(meta_t *m, const meta_settings_t *s, uv_loop_t *loop)
{
  int rc = dir_make(s->data_dir);
  if (rc != 0) {
    ks_log_error(COMP, "data_dir_failed", "dir=%s err=%s", s->data_dir,
                 ks_errname(rc));
    return rc;
  }
  rc = meta_metrics_new(m);
  if (rc == 0)
    rc = meta_storage(m, s);
  if (rc == 0)
    rc = meta_network(m, s, loop);
  if (rc == 0)
    rc = meta_shards(m, s, loop);
  if (rc == 0)
    rc = meta_admin_start(m, s, loop);
  return rc;
}

/* Tear down whatever meta_start built when it failed half-way. */
static void flag_cb(void *arg)
{
  *(bool *)arg = true;
}

static void meta_abort(meta_t *m, uv_loop_t *loop)
{
  assert(m->admin == NULL); /* the listener is the last thing started */
  bool done = m->svc == NULL;
  if (m->svc != NULL)
    ks_meta_service_close(m->svc, flag_cb, &done);
  while (!done)
    uv_run(loop, UV_RUN_ONCE);
  if (m->srv != NULL)
    ks_rpc_server_close(m->srv, NULL, NULL);
  if (m->node != NULL)
    ks_raft_node_close(m->node, NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
  meta_settings_t s;
  int exit_status;
  if (!ks_daemon_settings("kiseki-meta", "meta", meta_opts, KS_NELEM(meta_opts),
                          argc, argv, &s, &exit_status))
    return exit_status;
  uv_loop_t loop;
  ks_daemon_t d;
  meta_t m = {0};
  uv_loop_init(&loop);
  int status = 1;
  if (ks_daemon_init(&d, &loop, "kiseki-meta", meta_stop, &m) != 0 ||
      ks_daemon_log_open(&d, s.log_file, log_levels[s.log_level]) != 0) {
    fprintf(stderr, "kiseki-meta: cannot set up signals or log\n");
    goto out;
  }
  int rc = meta_start(&m, &s, &loop);
  if (rc == 0) {
    ks_daemon_ready(&d, "listen=%s:%u admin=%s:%u node_id=%lld data_dir=%s",
                    m.host, (unsigned)ks_rpc_server_port(m.srv), m.admin_host,
                    (unsigned)ks_admin_http_port(m.admin), (long long)s.node_id,
                    s.data_dir);
    uv_run(&loop, UV_RUN_DEFAULT);
    status = 0;
  } else {
    ks_log_error(COMP, "start_failed", "err=%s", ks_errname(rc));
    meta_abort(&m, &loop);
  }
  ks_daemon_close(&d);
  uv_run(&loop, UV_RUN_DEFAULT);
out:
  ks_meta_service_free(m.svc);
  ks_metrics_free(m.metrics); /* after the service: it observes into it */
  ks_meta_state_close(m.st);
  ks_raft_store_close(m.store);
  ks_rpc_tls_free(m.tls);
  if (uv_loop_close(&loop) != 0)
    ks_log_error(COMP, "handles_left_open", NULL);
  ks_cfg_free(meta_opts, KS_NELEM(meta_opts), &s);
  ks_log_close();
  return status;
}
