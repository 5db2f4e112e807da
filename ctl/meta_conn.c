/*
 * meta_conn.c — how every `kiseki` command reaches kiseki-meta (ctl.h): the
 * --meta address, a client opened for one call on the system shard, and
 * messages that say what a meta failure means to an operator rather than an
 * errno name.
 *
 * Each command makes one call and exits, so a client lives for one call:
 * ctl_meta_system_write opens, writes and closes, and the command only
 * decides what the call's own errors (an existing tenant, a missing key)
 * mean for it.  Set-up failures are reported here, once, in one shape.
 */
#include "ctl.h"

#include "ks/err.h"
#include "ks/proto_meta.h"

#include <errno.h>
#include <stdlib.h>

const char *ctl_meta_addr(const char *flag)
{
  if (flag != NULL)
    return flag;
  const char *env = getenv("KISEKI_META");
  return env != NULL && *env != '\0' ? env : CTL_META_DEFAULT;
}

static const char *meta_reason(int rc)
{
  switch (rc) {
  case -ECONNREFUSED:
    return "the metadata service is not reachable (connection refused); is "
           "kiseki-meta running there?";
  case KS_ETIMEDOUT:
    return "the metadata service did not answer in time";
  case KS_META_ENOTLEADER:
    return "this meta node does not lead the system shard; retry at the "
           "leader";
  case KS_META_ENOSHARD:
    return "this meta node holds no replica of the system shard";
  case KS_ECLOSED:
    return "the connection closed with the request in flight; it may or "
           "may not have been applied";
  default:
    return NULL;
  }
}

int ctl_meta_fail(int rc, const char *addr, const char *what)
{
  const char *why = meta_reason(rc);
  if (why != NULL)
    return ctl_fail("cannot %s at %s: %s", what, addr, why);
  return ctl_fail("cannot %s at %s: %s (%s)", what, addr, ks_strerror(rc),
                  ks_errname(rc));
}

int ctl_meta_open(ks_meta_sync_t *s, const char *addr)
{
  int rc = ks_meta_sync_open(s, addr, 0);
  if (rc == 0)
    return CTL_OK;
  ks_meta_sync_close(s);
  if (rc == -EINVAL)
    return ctl_fail("bad meta address '%s' (expected host:port, numeric "
                    "host)",
                    addr);
  return ctl_fail("cannot set up a meta client: %s", ks_strerror(rc));
}

int ctl_meta_system_write(const char *addr, ks_meta_delta_t *d, int *status)
{
  ks_meta_sync_t s;
  if (ctl_meta_open(&s, addr) != CTL_OK)
    return CTL_FAIL;
  *status = ks_meta_sync_write(&s, KS_META_SYSTEM_SHARD, d);
  ks_meta_sync_close(&s);
  return CTL_OK;
}
