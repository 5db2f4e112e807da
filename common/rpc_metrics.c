/*
 * rpc_metrics.c — the kiseki_rpc_* families every daemon with an RPC server
 * exports (ks/rpc.h, ks_rpc_server_metrics).
 *
 * Read callbacks take a pointer to the daemon's server pointer, not the
 * server: a daemon registers its metrics before the server exists and frees
 * the server before the registry, so a scrape in between reads zeros instead
 * of freed memory.  Scrapes run on the loop thread that owns the server
 * (ks/admin_http.h), so reading its stats needs no lock.
 */
#include "ks/metrics.h"
#include "ks/rpc.h"

#include <stddef.h>

static ks_rpc_server_stats_t srv_stats(void *arg)
{
  ks_rpc_server_t *const *srv = arg;
  ks_rpc_server_stats_t st = {0};
  if (*srv != NULL)
    ks_rpc_server_stats(*srv, &st);
  return st;
}

static double m_accepted(void *arg, size_t i)
{
  (void)i;
  return (double)srv_stats(arg).conns_accepted;
}

static double m_open(void *arg, size_t i)
{
  (void)i;
  return (double)srv_stats(arg).conns_open;
}

static double m_rejected(void *arg, size_t i)
{
  (void)i;
  return (double)srv_stats(arg).conns_rejected;
}

static double m_requests(void *arg, size_t i)
{
  (void)i;
  return (double)srv_stats(arg).requests;
}

int ks_rpc_server_metrics(ks_metrics_t *m, ks_rpc_server_t *const *srv)
{
  void *arg = (void *)srv;
  int rc = ks_metric_counter_fn(m, "kiseki_rpc_connections_accepted_total",
                                "RPC connections accepted.", NULL, m_accepted,
                                arg, NULL);
  if (rc == 0)
    rc = ks_metric_gauge_fn(m, "kiseki_rpc_connections_open",
                            "RPC connections open.", NULL, m_open, arg, NULL);
  if (rc == 0)
    rc = ks_metric_counter_fn(
        m, "kiseki_rpc_connections_rejected_total",
        "RPC connections dropped for malformed frames or TLS failures.", NULL,
        m_rejected, arg, NULL);
  if (rc == 0)
    rc = ks_metric_counter_fn(m, "kiseki_rpc_requests_total",
                              "RPC requests received.", NULL, m_requests, arg,
                              NULL);
  return rc;
}
