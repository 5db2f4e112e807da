/*
 * cmd_tenant.c — `kiseki tenant create NAME`: a CREATE_TENANT delta on the
 * system shard, and optionally the tenant's keys in the internal KMS.
 *
 * Also the tenant id derived from its name (ctl.h), which `key create`
 * shares; how commands reach kiseki-meta is in meta_conn.c.
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
  return ctl_print_record(2, cols, row, a->json);
}

static int meta_create(const char *addr, const char *name, const ks_id_t *id)
{
  ks_meta_delta_t d = {
      .type = KS_DELTA_CREATE_TENANT, .tenant = *id, .name = name};
  int rc;
  if (ctl_meta_system_write(addr, &d, &rc) != CTL_OK)
    return CTL_FAIL;
  if (rc == KS_META_EBUCKETEXISTS)
    return ctl_fail("tenant '%s' already exists", name);
  if (rc == KS_META_EINVAL)
    return ctl_fail("the metadata service refused tenant name '%s'", name);
  if (rc != 0)
    return ctl_meta_fail(rc, addr, "create the tenant");
  return CTL_OK;
}

static int tenant_create(ctl_args_t *a)
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

static int tenant_list(ctl_args_t *a)
{
  (void)a;
  return ctl_fail("tenant list: not supported yet (the metadata protocol "
                  "cannot list tenants)");
}

int ctl_tenant_main(int argc, char **argv)
{
  static const ctl_sub_t subs[] = {{"create", tenant_create},
                                   {"list", tenant_list}};
  static const ctl_subcmds_t tenant = {.cmd = "tenant",
                                       .allowed = "mkj",
                                       .usage = tenant_usage,
                                       .names = "create",
                                       .subs = subs,
                                       .nsubs = sizeof(subs) / sizeof(subs[0])};
  return ctl_subcmds_main(&tenant, argc, argv);
}
