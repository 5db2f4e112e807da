/*
 * ks-meta-cli — a test client of kiseki-meta over libkiseki's meta client
 * (ks/meta_client.h), for the end-to-end tests:
 *
 *   ks-meta-cli HOST:PORT setup BUCKET       tenant + bucket (idempotent)
 *   ks-meta-cli HOST:PORT put-loop BUCKET N  PUT_OBJECT obj00000.. one at a
 *        time; prints "ack KEY ino=I" (flushed) after each acknowledgement
 *   ks-meta-cli HOST:PORT check BUCKET N     GET each of obj00000..; prints
 *        "KEY ok ino=I size=S etag=E" when the composition is exactly what
 *        put-loop wrote, "KEY missing" or "KEY wrong"
 *   ks-meta-cli HOST:PORT list BUCKET PREFIX DELIMITER
 *        prints "key K" and "prefix P" lines of one listing page
 *
 * Exit status: 0, 1 on a failed call (error name on stderr), 2 on usage.
 */
#include "ks/err.h"
#include "ks/meta_sync.h"
#include "ks/proto_meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef ks_meta_sync_t cli_t;

static const ks_id_t tenant = {{0x6b, 0x73}};

static int write_d(cli_t *x, ks_meta_delta_t *d)
{
  d->now_ns = 0; /* the helper stamps the clock */
  return ks_meta_sync_write(x, KS_META_SYSTEM_SHARD, d);
}

static int query(cli_t *x, uint16_t op, const ks_meta_query_t *q)
{
  return ks_meta_sync_query(x, op, q);
}

static int cmd_setup(cli_t *x, const char *bucket)
{
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_TENANT, .tenant = tenant};
  d.name = "e2e";
  int rc = write_d(x, &d);
  if (rc != 0 && rc != KS_META_EBUCKETEXISTS)
    return rc;
  d = (ks_meta_delta_t){
      .type = KS_DELTA_CREATE_BUCKET, .bucket = bucket, .tenant = tenant};
  rc = write_d(x, &d);
  return rc == KS_META_EOWNED ? 0 : rc;
}

static void obj_value(int i, char *key, char *val, size_t n)
{
  snprintf(key, n, "obj%05d", i);
  snprintf(val, n, "value-%d-%s", i, i % 2 ? "odd" : "even");
}

static int cmd_put_loop(cli_t *x, const char *bucket, int n)
{
  char key[64], val[64];
  ks_meta_kv_t meta = {"n", key};
  for (int i = 0; i < n; i++) {
    obj_value(i, key, val, sizeof(key));
    ks_meta_delta_t d = {.type = KS_DELTA_PUT_OBJECT, .bucket = bucket};
    d.key = key;
    d.comp = (ks_meta_comp_t){.size = strlen(val),
                              .etag = val,
                              .content_type = "text/plain",
                              .nmeta = 1,
                              .meta = &meta,
                              .is_inline = true,
                              .inline_data = (const uint8_t *)val,
                              .inline_len = (uint32_t)strlen(val)};
    int rc = write_d(x, &d);
    if (rc != 0)
      return rc;
    printf("ack %s ino=%llu\n", key, (unsigned long long)x->call.result.ino);
    fflush(stdout);
  }
  return 0;
}

static bool comp_matches(const ks_meta_comp_t *c, const char *key,
                         const char *val)
{
  size_t n = strlen(val);
  return c->is_inline && c->inline_len == n && c->size == n &&
         memcmp(c->inline_data, val, n) == 0 && strcmp(c->etag, val) == 0 &&
         strcmp(c->content_type, "text/plain") == 0 && c->nmeta == 1 &&
         strcmp(c->meta[0].value, key) == 0;
}

static int cmd_check(cli_t *x, const char *bucket, int n)
{
  char key[64], val[64];
  for (int i = 0; i < n; i++) {
    obj_value(i, key, val, sizeof(key));
    ks_meta_query_t q = {.shard = KS_META_SYSTEM_SHARD, .bucket = bucket};
    q.key = key;
    int rc = query(x, KS_OP_META_GET_OBJECT, &q);
    if (rc == KS_META_ENOKEY) {
      printf("%s missing\n", key);
      continue;
    }
    if (rc != 0)
      return rc;
    const ks_meta_comp_t *c = &x->call.r.comp;
    if (comp_matches(c, key, val))
      printf("%s ok ino=%llu size=%llu etag=%s\n", key,
             (unsigned long long)c->ino, (unsigned long long)c->size, c->etag);
    else
      printf("%s wrong\n", key);
  }
  return 0;
}

static int cmd_list(cli_t *x, char **argv)
{
  ks_meta_query_t q = {.shard = KS_META_SYSTEM_SHARD,
                       .bucket = argv[0],
                       .prefix = argv[1],
                       .delimiter = argv[2],
                       .max = KS_META_LIST_MAX};
  int rc = query(x, KS_OP_META_LIST_OBJECTS, &q);
  if (rc != 0)
    return rc;
  const ks_meta_objects_t *o = &x->call.r.objects;
  for (uint32_t i = 0; i < o->n; i++)
    printf("key %s\n", o->entries[i].key);
  for (uint32_t i = 0; i < o->nprefixes; i++)
    printf("prefix %s\n", o->prefixes[i]);
  return 0;
}

/* A count 0..1000000, or -1. */
static int count_parse(const char *s)
{
  char *end;
  long v = strtol(s, &end, 10);
  return *s != '\0' && *end == '\0' && v >= 0 && v <= 1000000 ? (int)v : -1;
}

static int run(cli_t *x, int argc, char **argv)
{
  int n = argc == 5 ? count_parse(argv[4]) : -1;
  const char *cmd = argv[2];
  if (strcmp(cmd, "setup") == 0 && argc == 4)
    return cmd_setup(x, argv[3]);
  if (strcmp(cmd, "put-loop") == 0 && n >= 0)
    return cmd_put_loop(x, argv[3], n);
  if (strcmp(cmd, "check") == 0 && n >= 0)
    return cmd_check(x, argv[3], n);
  if (strcmp(cmd, "list") == 0 && argc == 6)
    return cmd_list(x, argv + 3);
  return -EINVAL;
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: ks-meta-cli HOST:PORT setup|put-loop|check|list "
                    "...\n");
    return 2;
  }
  static cli_t x;
  int rc = ks_meta_sync_open(&x, argv[1], 10000);
  if (rc == 0)
    rc = run(&x, argc, argv);
  ks_meta_sync_close(&x);
  if (rc == -EINVAL) {
    fprintf(stderr, "ks-meta-cli: bad address, command or arguments\n");
    return 2;
  }
  if (rc != 0) {
    fprintf(stderr, "ks-meta-cli: %s (%s)\n", ks_errname(rc), ks_strerror(rc));
    return 1;
  }
  return 0;
}
