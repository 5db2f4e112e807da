/*
 * cmd_tenant.c — `kiseki tenant create NAME`: a CREATE_TENANT delta on the
 * system shard, and optionally the tenant's keys in the internal KMS.
 *
 * Also the meta helpers every command shares (ctl.h): the tenant id
 * derived from its name, the --meta address, and messages that say what a
 * meta failure means to an operator rather than an errno name.
 *
 * Not here: `tenant list`.  The metadata protocol has no query that lists
 * tenants (ks/proto_meta.h), and a CLI that scans buckets to guess would
 * be wrong for tenants without buckets.
 *
 * --kms-dir: the internal key provider takes an exclusive lock on its
 * directory, so this works when no daemon holds it (before the cluster
 * starts, or with a provider that a daemon opens per use); otherwise the
 * error says the directory is busy.
 */
#include "ctl.h"

#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/kms.h"
#include "ks/meta_sync.h"
#include "ks/proto_meta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT_LABEL "kiseki tenant v1\n"

static const char tenant_usage[] =
    "usage: kiseki tenant create NAME [--meta ADDR] [--kms-dir DIR] "
    "[--json]\n"
    "\n"
    "Create tenant NAME in the metadata service.  Its id is derived from the\n"
    "name, so `kiseki key create --tenant NAME` finds it.\n"
    "\n"
    "  --meta ADDR     metadata node host:port (default $KISEKI_META "
    "or " CTL_META_DEFAULT ")\n"
    "  --kms-dir DIR   also create the tenant's keys in the internal key\n"
    "                  provider kept in DIR (not while a daemon holds it)\n"
    "  --json          print the result as JSON\n"
    "\n"
    "Listing tenants is not possible yet: the metadata protocol has no\n"
    "query for it.\n";

int ctl_tenant_id(const char *name, ks_id_t *out)
{
  size_t n = strlen(name);
  if (n == 0 || n > KS_META_STR_MAX)
    return -EINVAL;
  uint8_t md[KS_SHA256_LEN];
  size_t ln = sizeof(TENANT_LABEL) - 1;
  char *buf = malloc(ln + n);
  if (buf == NULL)
    return -ENOMEM;
  memcpy(buf, TENANT_LABEL, ln);
  memcpy(buf + ln, name, n);
  int rc = ks_sha256(buf, ln + n, md);
  free(buf);
  if (rc != 0)
    return rc;
  memcpy(out->b, md, KS_ID_LEN);
  out->b[6] = (uint8_t)((out->b[6] & 0x0F) | 0x80); /* version 8 */
  out->b[8] = (uint8_t)((out->b[8] & 0x3F) | 0x80); /* RFC 9562 variant */
  return 0;
}

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

static int kms_create(const char *dir, const ks_id_t *id)
{
  ks_kms_t *kms;
  int rc = ks_kms_file_open(dir, &kms);
  if (rc == -EBUSY)
    return ctl_fail("key directory %s is in use by another process", dir);
  if (rc != 0)
    return ctl_fail("cannot open key directory %s: %s", dir, ks_strerror(rc));
  rc = ks_kms_tenant_create(kms, id);
  ks_kms_close(kms);
  if (rc != 0 && rc != -EEXIST)
    return ctl_fail("cannot create the tenant's keys in %s: %s", dir,
                    ks_strerror(rc));
  return CTL_OK;
}

static int tenant_print(const char *name, const ks_id_t *id,
                        const ctl_args_t *a)
{
  char hex[KS_ID_HEX_LEN + 1];
  static const char *const cols[] = {"tenant", "id"};
  const char *row[] = {name, ks_id_to_hex(id, hex)};
  ks_table_t t;
  int rc = ks_table_init(&t, 2, cols);
  if (rc == 0)
    rc = ks_table_add(&t, row);
  if (rc == 0)
    rc =
        ks_table_write_record(&t, a->json ? KS_OUT_JSON : KS_OUT_HUMAN, stdout);
  ks_table_free(&t);
  return rc == 0 ? CTL_OK : ctl_fail("cannot print: %s", ks_strerror(rc));
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

static int meta_create(const char *addr, const char *name, const ks_id_t *id)
{
  ks_meta_sync_t s;
  if (ctl_meta_open(&s, addr) != CTL_OK)
    return CTL_FAIL;
  ks_meta_delta_t d = {
      .type = KS_DELTA_CREATE_TENANT, .tenant = *id, .name = name};
  int rc = ks_meta_sync_write(&s, KS_META_SYSTEM_SHARD, &d);
  ks_meta_sync_close(&s);
  if (rc == KS_META_EBUCKETEXISTS)
    return ctl_fail("tenant '%s' already exists", name);
  if (rc == KS_META_EINVAL)
    return ctl_fail("the metadata service refused tenant name '%s'", name);
  if (rc != 0)
    return ctl_meta_fail(rc, addr, "create the tenant");
  return CTL_OK;
}

static int tenant_create(const ctl_args_t *a)
{
  if (a->npos != 2)
    return ctl_usage("tenant", "create needs exactly one NAME");
  const char *name = a->pos[1];
  ks_id_t id;
  int rc = ctl_tenant_id(name, &id);
  if (rc == -EINVAL)
    return ctl_usage("tenant", "a tenant name is 1..%d bytes", KS_META_STR_MAX);
  if (rc != 0)
    return ctl_fail("cannot derive the tenant id: %s", ks_strerror(rc));
  rc = meta_create(ctl_meta_addr(a->meta), name, &id);
  if (rc == CTL_OK && a->kms_dir != NULL)
    rc = kms_create(a->kms_dir, &id);
  return rc == CTL_OK ? tenant_print(name, &id, a) : rc;
}

int ctl_tenant_main(int argc, char **argv)
{
  ctl_args_t a;
  int rc = ctl_args_parse("tenant", "mkj", 2, argc, argv, &a);
  if (rc != CTL_OK)
    return rc;
  if (a.help) {
    fputs(tenant_usage, stdout);
    return CTL_OK;
  }
  if (a.npos == 0)
    return ctl_usage("tenant", "missing subcommand (create)");
  if (strcmp(a.pos[0], "create") == 0)
    return tenant_create(&a);
  if (strcmp(a.pos[0], "list") == 0)
    return ctl_fail("tenant list: not supported yet (the metadata protocol "
                    "cannot list tenants)");
  return ctl_usage("tenant", "unknown subcommand '%s'", a.pos[0]);
}
