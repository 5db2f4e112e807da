/*
 * test_shard.c — the metadata state machine (ks/shard.h) without Raft:
 * every delta and each of its errors, listings (delimiter with nested
 * prefixes, pagination across common prefixes, start-after, keys with
 * spaces, '%' and non-ASCII UTF-8, max-keys 0/1/1000), multipart
 * validations and the composed ETag, batching of applies into few
 * transactions, snapshot/restore round trip, and the codecs' refusal of
 * truncated input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/codec.h"
#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/proto_meta.h"
#include "ks/shard.h"
#include "shard_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1ULL << 20)

static const ks_id_t tenant_a = {{1}};
static const ks_id_t tenant_b = {{2}};

static int tenant(fx_t *f, const ks_id_t *t)
{
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_TENANT, .tenant = *t};
  d.name = "acme";
  return apply(f, &d, NULL);
}

static int bucket(fx_t *f, const char *name, const ks_id_t *t, uint8_t type)
{
  ks_meta_delta_t d = {.type = type, .bucket = name, .tenant = *t};
  return apply(f, &d, NULL);
}

static int put_inline(fx_t *f, const char *b, const char *key, const char *data,
                      ks_meta_apply_t *out)
{
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_OBJECT, .bucket = b, .key = key};
  d.comp.size = strlen(data);
  d.comp.is_inline = true;
  d.comp.inline_data = (const uint8_t *)data;
  d.comp.inline_len = (uint32_t)strlen(data);
  d.comp.etag = "e";
  return apply(f, &d, out);
}

static int obj_op(fx_t *f, uint8_t type, const char *b, const char *key,
                  const char *new_key)
{
  ks_meta_delta_t d = {.type = type, .bucket = b, .key = key};
  d.new_key = new_key;
  return apply(f, &d, NULL);
}

static int query(fx_t *f, uint16_t op, const ks_meta_query_t *q, ks_enc_t *out)
{
  ks_enc_free(out);
  return ks_meta_shard_query(f->sh, op, q, out);
}

static int get_comp(fx_t *f, const char *b, const char *key, ks_meta_arena_t *a,
                    ks_meta_comp_t *c)
{
  ks_meta_query_t q = {.shard = 1, .bucket = b, .key = key};
  ks_enc_t e = KS_ENC_INIT;
  int rc = query(f, KS_OP_META_GET_OBJECT, &q, &e);
  if (rc == 0)
    assert_int_equal(ks_meta_comp_decode(e.buf.data, e.buf.len, a, c), 0);
  ks_enc_free(&e);
  return rc;
}

static void setup_bucket(fx_t *f, const char *b)
{
  assert_int_equal(tenant(f, &tenant_a), 0);
  assert_int_equal(bucket(f, b, &tenant_a, KS_DELTA_CREATE_BUCKET), 0);
}

/* ---- tenants, access keys, buckets ------------------------------------------
 */

static void test_tenants_and_keys(void **state)
{
  (void)state;
  fx_t f;
  fx_open(&f);
  assert_int_equal(tenant(&f, &tenant_a), 0);
  assert_int_equal(tenant(&f, &tenant_a), KS_META_EBUCKETEXISTS);
  ks_id_t zero = KS_ID_ZERO;
  assert_int_equal(tenant(&f, &zero), KS_META_EINVAL);
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_ACCESS_KEY, .name = "AKID1"};
  d.tenant = tenant_b;
  d.secret = (const uint8_t *)"s3cr3t";
  d.secret_len = 6;
  assert_int_equal(apply(&f, &d, NULL), KS_META_ENOTENANT);
  d.tenant = tenant_a;
  assert_int_equal(apply(&f, &d, NULL), 0);
  ks_meta_query_t q = {.shard = 1, .akey = "AKID1"};
  ks_enc_t e = KS_ENC_INIT;
  assert_int_equal(query(&f, KS_OP_META_GET_ACCESS_KEY, &q, &e), 0);
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_akey_t ak;
  assert_int_equal(ks_meta_akey_decode(e.buf.data, e.buf.len, &a, &ak), 0);
  assert_string_equal(ak.id, "AKID1");
  assert_int_equal(ak.secret_len, 6);
  assert_memory_equal(ak.secret, "s3cr3t", 6);
  assert_int_equal(ks_id_cmp(&ak.tenant, &tenant_a), 0);
  ks_meta_arena_free(&a);
  d = (ks_meta_delta_t){.type = KS_DELTA_DELETE_ACCESS_KEY, .name = "AKID1"};
  assert_int_equal(apply(&f, &d, NULL), 0);
  assert_int_equal(apply(&f, &d, NULL), KS_META_ENOACCESSKEY);
  assert_int_equal(query(&f, KS_OP_META_GET_ACCESS_KEY, &q, &e),
                   KS_META_ENOACCESSKEY);
  ks_enc_free(&e);
  fx_close(&f);
}

static void test_buckets(void **state)
{
  (void)state;
  fx_t f;
  fx_open(&f);
  assert_int_equal(bucket(&f, "b1", &tenant_a, KS_DELTA_CREATE_BUCKET),
                   KS_META_ENOTENANT);
  assert_int_equal(tenant(&f, &tenant_a), 0);
  assert_int_equal(tenant(&f, &tenant_b), 0);
  assert_int_equal(bucket(&f, "b1", &tenant_a, KS_DELTA_CREATE_BUCKET), 0);
  assert_int_equal(bucket(&f, "b1", &tenant_a, KS_DELTA_CREATE_BUCKET),
                   KS_META_EOWNED);
  assert_int_equal(bucket(&f, "b1", &tenant_b, KS_DELTA_CREATE_BUCKET),
                   KS_META_EBUCKETEXISTS);
  assert_int_equal(bucket(&f, "", &tenant_a, KS_DELTA_CREATE_BUCKET),
                   KS_META_EINVAL);
  assert_int_equal(bucket(&f, "a/b", &tenant_a, KS_DELTA_CREATE_BUCKET),
                   KS_META_EINVAL);
  assert_int_equal(bucket(&f, "b2", &tenant_a, KS_DELTA_CREATE_BUCKET), 0);
  assert_int_equal(bucket(&f, "c1", &tenant_b, KS_DELTA_CREATE_BUCKET), 0);

  ks_meta_query_t q = {.shard = 1, .tenant = tenant_a};
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_buckets_t bl;
  assert_int_equal(query(&f, KS_OP_META_LIST_BUCKETS, &q, &e), 0);
  assert_int_equal(ks_meta_buckets_decode(e.buf.data, e.buf.len, &a, &bl), 0);
  assert_int_equal(bl.n, 2);
  assert_string_equal(bl.buckets[0].name, "b1");
  assert_string_equal(bl.buckets[1].name, "b2");
  assert_int_equal(bl.buckets[0].shard, 1);
  q.bucket = "b1";
  assert_int_equal(query(&f, KS_OP_META_GET_BUCKET, &q, &e), 0);
  ks_meta_bucket_t b;
  assert_int_equal(ks_meta_bucket_decode(e.buf.data, e.buf.len, &a, &b), 0);
  assert_true(b.created_ns > 1000);

  /* Not empty: an object, then an upload in progress (as AWS). */
  assert_int_equal(bucket(&f, "b1", &tenant_b, KS_DELTA_DELETE_BUCKET),
                   KS_META_EACCESS);
  assert_int_equal(put_inline(&f, "b1", "k", "x", NULL), 0);
  assert_int_equal(bucket(&f, "b1", &tenant_a, KS_DELTA_DELETE_BUCKET),
                   KS_META_ENOTEMPTY);
  assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, "b1", "k", NULL), 0);
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_MPU, .bucket = "b1", .key = "m"};
  d.upload_id = "u1";
  assert_int_equal(apply(&f, &d, NULL), 0);
  assert_int_equal(bucket(&f, "b1", &tenant_a, KS_DELTA_DELETE_BUCKET),
                   KS_META_ENOTEMPTY);
  d.type = KS_DELTA_ABORT_MPU;
  assert_int_equal(apply(&f, &d, NULL), 0);
  /* An object in bucket "b10" does not make "b1" non-empty. */
  assert_int_equal(bucket(&f, "b10", &tenant_a, KS_DELTA_CREATE_BUCKET), 0);
  assert_int_equal(put_inline(&f, "b10", "k", "x", NULL), 0);
  assert_int_equal(bucket(&f, "b1", &tenant_a, KS_DELTA_DELETE_BUCKET), 0);
  assert_int_equal(bucket(&f, "b1", &tenant_a, KS_DELTA_DELETE_BUCKET),
                   KS_META_ENOBUCKET);
  assert_int_equal(query(&f, KS_OP_META_GET_BUCKET, &q, &e), KS_META_ENOBUCKET);
  ks_meta_arena_free(&a);
  ks_enc_free(&e);
  fx_close(&f);
}

/* ---- objects ----------------------------------------------------------------
 */

static void test_objects(void **state)
{
  (void)state;
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, "b");
  assert_int_equal(put_inline(&f, "nob", "k", "x", NULL), KS_META_ENOBUCKET);
  ks_meta_kv_t meta[2] = {{"color", "blue"}, {"empty", ""}};
  ks_meta_loc_t locs[2] = {{"127.0.0.1:7200", {{9}}}, {"10.0.0.2:7200", {{8}}}};
  ks_meta_extent_t ext[2] = {{0, 4, (const uint8_t *)"desc", 4, 2, locs},
                             {4, 6, (const uint8_t *)"d2", 2, 1, locs + 1}};
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_OBJECT, .bucket = "b", .key = "k"};
  d.comp = (ks_meta_comp_t){.size = 10,
                            .mode = 0100644,
                            .uid = 7,
                            .gid = 8,
                            .etag = "abc",
                            .content_type = "text/plain",
                            .content_encoding = "gzip",
                            .content_disposition = "inline",
                            .cache_control = "no-cache",
                            .expires = "Thu, 01 Dec 1994 16:00:00 GMT",
                            .nmeta = 2,
                            .meta = meta,
                            .nextents = 2,
                            .extents = ext};
  ks_meta_apply_t out;
  assert_int_equal(apply(&f, &d, &out), 0);
  uint64_t ino = out.res.ino;
  assert_int_equal(ino, KS_META_FIRST_INO);
  assert_int_equal(out.res.size, 10);
  assert_string_equal(out.res.etag, "abc");
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_comp_t c;
  assert_int_equal(get_comp(&f, "b", "k", &a, &c), 0);
  assert_int_equal(c.ino, ino);
  assert_int_equal(c.size, 10);
  assert_int_equal(c.mtime_ns, f.now);
  assert_int_equal(c.ctime_ns, f.now);
  assert_int_equal(c.mode, 0100644);
  assert_int_equal(c.gid, 8);
  assert_string_equal(c.content_type, "text/plain");
  assert_string_equal(c.expires, "Thu, 01 Dec 1994 16:00:00 GMT");
  assert_int_equal(c.nmeta, 2);
  assert_string_equal(c.meta[0].value, "blue");
  assert_string_equal(c.meta[1].value, "");
  assert_false(c.is_inline);
  assert_int_equal(c.nextents, 2);
  assert_int_equal(c.extents[1].offset, 4);
  assert_memory_equal(c.extents[0].desc, "desc", 4);
  assert_int_equal(c.extents[0].nlocs, 2);
  assert_string_equal(c.extents[0].locs[1].node, "10.0.0.2:7200");
  assert_int_equal(c.extents[0].locs[0].dev.b[0], 9);

  /* Replace keeps the inode; a new key gets a new one. */
  assert_int_equal(put_inline(&f, "b", "k", "hello", &out), 0);
  assert_int_equal(out.res.ino, ino);
  assert_int_equal(put_inline(&f, "b", "k2", "x", &out), 0);
  assert_int_equal(out.res.ino, ino + 1);
  assert_int_equal(get_comp(&f, "b", "k", &a, &c), 0);
  assert_true(c.is_inline);
  assert_int_equal(c.inline_len, 5);
  assert_memory_equal(c.inline_data, "hello", 5);

  /* Extents must tile the object. */
  ext[1].offset = 5;
  assert_int_equal(apply(&f, &d, NULL), KS_META_EINVAL);
  ext[1].offset = 4;
  d.comp.size = 11;
  assert_int_equal(apply(&f, &d, NULL), KS_META_EINVAL);

  /* Rename: atomic, keeps the inode, replaces the target. */
  assert_int_equal(obj_op(&f, KS_DELTA_RENAME, "b", "k", "k2"), 0);
  assert_int_equal(get_comp(&f, "b", "k", &a, &c), KS_META_ENOKEY);
  assert_int_equal(get_comp(&f, "b", "k2", &a, &c), 0);
  assert_int_equal(c.ino, ino);
  assert_int_equal(c.ctime_ns, f.now);
  assert_int_equal(obj_op(&f, KS_DELTA_RENAME, "b", "k", "k3"), KS_META_ENOKEY);
  assert_int_equal(obj_op(&f, KS_DELTA_RENAME, "b", "k2", "k2"), 0);

  /* Delete is idempotent. */
  assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, "b", "k2", NULL), 0);
  assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, "b", "k2", NULL), 0);
  assert_int_equal(get_comp(&f, "b", "k2", &a, &c), KS_META_ENOKEY);
  assert_int_equal(get_comp(&f, "nob", "k2", &a, &c), KS_META_ENOBUCKET);
  assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, "nob", "k", NULL),
                   KS_META_ENOBUCKET);

  /* Directory markers. */
  assert_int_equal(obj_op(&f, KS_DELTA_MKDIR, "b", "dir/", NULL), 0);
  assert_int_equal(obj_op(&f, KS_DELTA_MKDIR, "b", "dir/", NULL),
                   KS_META_EBUCKETEXISTS);
  assert_int_equal(obj_op(&f, KS_DELTA_MKDIR, "b", "dir", NULL),
                   KS_META_EINVAL);
  assert_int_equal(get_comp(&f, "b", "dir/", &a, &c), 0);
  assert_int_equal(c.mode, 040755);
  assert_int_equal(c.size, 0);

  /* Names: empty, and longer than S3's 1,024 bytes (which the delta's
   * decoder refuses already; long keys are test_shard_long.c's). */
  assert_int_equal(put_inline(&f, "b", "", "x", NULL), KS_META_EINVAL);
  char longkey[KS_META_KEY_MAX + 2];
  memset(longkey, 'x', sizeof(longkey) - 1);
  longkey[sizeof(longkey) - 1] = '\0';
  assert_int_equal(put_inline(&f, "b", longkey, "x", NULL), KS_EPROTO);
  longkey[KS_META_KEY_MAX] = '\0';
  assert_int_equal(put_inline(&f, "b", longkey, "x", NULL), 0);

  /* An undecodable delta is an outcome, not a failure. */
  ks_meta_apply_t o2;
  assert_int_equal(ks_meta_shard_apply(f.sh, "\x01\x06", 2, &o2), 0);
  assert_int_equal(o2.err, KS_EPROTO);
  ks_meta_arena_free(&a);
  fx_close(&f);
}

/* ---- listings
 * ------------------------------------------------------------------ */

typedef struct page {
  ks_meta_arena_t a;
  ks_meta_objects_t o;
} page_t;

static int list(fx_t *f, const char *prefix, const char *delim,
                const char *after, uint32_t max, page_t *p)
{
  ks_meta_query_t q = {.shard = 1,
                       .bucket = "b",
                       .prefix = prefix,
                       .delimiter = delim,
                       .start_after = after,
                       .max = max};
  ks_enc_t e = KS_ENC_INIT;
  int rc = ks_meta_shard_query(f->sh, KS_OP_META_LIST_OBJECTS, &q, &e);
  if (rc == 0)
    assert_int_equal(
        ks_meta_objects_decode(e.buf.data, e.buf.len, &p->a, &p->o), 0);
  ks_enc_free(&e);
  return rc;
}

/* One line "k1,k2,|p1/,p2/|T" for easy comparison. */
static void page_str(const page_t *p, char *out, size_t n)
{
  size_t w = 0;
  for (uint32_t i = 0; i < p->o.n; i++)
    w += (size_t)snprintf(out + w, n - w, "%s,", p->o.entries[i].key);
  w += (size_t)snprintf(out + w, n - w, "|");
  for (uint32_t i = 0; i < p->o.nprefixes; i++)
    w += (size_t)snprintf(out + w, n - w, "%s,", p->o.prefixes[i]);
  snprintf(out + w, n - w, "|%s", p->o.truncated ? "T" : "F");
}

static void expect(fx_t *f, const char *prefix, const char *delim,
                   const char *after, uint32_t max, const char *want)
{
  page_t p = {KS_META_ARENA_INIT, {0}};
  char got[4096];
  assert_int_equal(list(f, prefix, delim, after, max, &p), 0);
  page_str(&p, got, sizeof(got));
  assert_string_equal(got, want);
  ks_meta_arena_free(&p.a);
}

static const char *const list_keys[] = {"a",   "a/b",   "a/c/d", "a/c/e", "a/d",
                                        "b/x", "c",     "d e%2", "d/",    "d/f",
                                        "é/1", "a b/1", "a!",    "z"};

static void test_list_delimiter(void **state)
{
  (void)state;
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, "b");
  for (size_t i = 0; i < sizeof(list_keys) / sizeof(*list_keys); i++)
    assert_int_equal(put_inline(&f, "b", list_keys[i], "x", NULL), 0);
  /* Byte order; "a!" < "a/" < "a b" is wrong: ' ' (0x20) < '!' < '/'. */
  expect(&f, "", "", "", 1000,
         "a,a b/1,a!,a/b,a/c/d,a/c/e,a/d,b/x,c,d e%2,d/,d/f,z,é/1,||F");
  expect(&f, "", "/", "", 1000, "a,a!,c,d e%2,z,|a b/,a/,b/,d/,é/,|F");
  expect(&f, "a/", "/", "", 1000, "a/b,a/d,|a/c/,|F");
  expect(&f, "a/c/", "/", "", 1000, "a/c/d,a/c/e,||F");
  expect(&f, "a", "/", "", 1000, "a,a!,|a b/,a/,|F");
  expect(&f, "nothing", "/", "", 1000, "||F");
  expect(&f, "é", "/", "", 1000, "|é/,|F");
  /* A multi-byte delimiter. */
  expect(&f, "", "c/", "", 1000,
         "a,a b/1,a!,a/b,a/d,b/x,c,d e%2,d/,d/f,z,é/1,|a/c/,|F");
  /* start-after: inside a returned common prefix skips the prefix. */
  expect(&f, "", "/", "a/", 1000, "c,d e%2,z,|b/,d/,é/,|F");
  expect(&f, "", "/", "a/c", 1000, "c,d e%2,z,|b/,d/,é/,|F");
  expect(&f, "", "", "a/c/d", 3, "a/c/e,a/d,b/x,||T");
  expect(&f, "a/", "", "0", 1000, "a/b,a/c/d,a/c/e,a/d,||F");
  expect(&f, "a/", "", "zz", 1000, "||F");
  /* max-keys 0 and 1. */
  expect(&f, "", "/", "", 0, "||F");
  expect(&f, "", "/", "", 1, "a,||T");
  expect(&f, "", "/", "a!", 1, "|a/,|T");
  /* Pagination one entry at a time crosses common prefixes and equals
   * the one-shot listing. */
  char all[4200] = "", keys[2048] = "", pfx[2048] = "";
  const char *after = "";
  page_t p = {KS_META_ARENA_INIT, {0}};
  char next[1100] = "";
  for (int i = 0; i < 20; i++) {
    assert_int_equal(list(&f, "", "/", after, 1, &p), 0);
    if (p.o.n)
      strcat(strcat(keys, p.o.entries[0].key), ",");
    if (p.o.nprefixes)
      strcat(strcat(pfx, p.o.prefixes[0]), ",");
    snprintf(next, sizeof(next), "%s", p.o.next);
    after = next;
    bool more = p.o.truncated;
    ks_meta_arena_free(&p.a);
    if (!more)
      break;
  }
  snprintf(all, sizeof(all), "%s|%s|F", keys, pfx);
  assert_string_equal(all, "a,a!,c,d e%2,z,|a b/,a/,b/,d/,é/,|F");
  fx_close(&f);
}

static void test_list_max_keys(void **state)
{
  (void)state;
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, "b");
  char key[32];
  for (int i = 0; i < 1500; i++) {
    snprintf(key, sizeof(key), "k%05d", i);
    assert_int_equal(put_inline(&f, "b", key, "x", NULL), 0);
  }
  /* Applies were batched: far fewer commits than deltas. */
  assert_true(ks_meta_state_commits(f.st) < 100);
  page_t p = {KS_META_ARENA_INIT, {0}};
  assert_int_equal(list(&f, "", "", "", 5000, &p), 0);
  assert_int_equal(p.o.n, 1000);
  assert_true(p.o.truncated);
  assert_string_equal(p.o.next, "k00999");
  assert_int_equal(p.o.entries[0].size, 1);
  assert_string_equal(p.o.entries[0].etag, "e");
  ks_meta_arena_free(&p.a);
  assert_int_equal(list(&f, "", "", "k00999", 1000, &p), 0);
  assert_int_equal(p.o.n, 500);
  assert_false(p.o.truncated);
  assert_string_equal(p.o.entries[0].key, "k01000");
  ks_meta_arena_free(&p.a);
  /* Exactly max left: not truncated. */
  assert_int_equal(list(&f, "", "", "k00499", 1000, &p), 0);
  assert_int_equal(p.o.n, 1000);
  assert_false(p.o.truncated);
  ks_meta_arena_free(&p.a);
  ks_meta_query_t q = {.shard = 1, .bucket = "nob"};
  ks_enc_t e = KS_ENC_INIT;
  assert_int_equal(query(&f, KS_OP_META_LIST_OBJECTS, &q, &e),
                   KS_META_ENOBUCKET);
  ks_enc_free(&e);
  fx_close(&f);
}

/* ---- multipart
 * ------------------------------------------------------------------ */

static void md5_hex(const char *s, char out[33])
{
  uint8_t m[KS_MD5_LEN];
  assert_int_equal(ks_md5(s, strlen(s), m), 0);
  assert_int_equal(ks_hex_encode(out, 33, m, sizeof(m)), 32);
}

static int put_part(fx_t *f, const char *upload, uint32_t part, uint64_t size,
                    const char *etag)
{
  ks_meta_extent_t x = {0, size, (const uint8_t *)"d", 1, 0, NULL};
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_PART, .bucket = "b", .key = "big"};
  d.upload_id = upload;
  d.part = part;
  d.comp = (ks_meta_comp_t){
      .size = size, .etag = etag, .nextents = 1, .extents = &x};
  return apply(f, &d, NULL);
}

static int complete(fx_t *f, const char *upload, const ks_meta_part_ref_t *p,
                    uint32_t n, ks_meta_apply_t *out)
{
  ks_meta_delta_t d = {.type = KS_DELTA_COMPLETE_MPU, .bucket = "b"};
  d.key = "big";
  d.upload_id = upload;
  d.parts = p;
  d.nparts = n;
  return apply(f, &d, out);
}

static void test_multipart(void **state)
{
  (void)state;
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, "b");
  char e1[33], e2[33], e3[33];
  md5_hex("one", e1);
  md5_hex("two", e2);
  md5_hex("three", e3);
  assert_int_equal(put_part(&f, "u1", 1, 5 * MIB, e1), KS_META_ENOUPLOAD);
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_MPU, .bucket = "b"};
  d.key = "big";
  d.upload_id = "u1";
  d.comp.content_type = "application/x-big";
  assert_int_equal(apply(&f, &d, NULL), 0);
  assert_int_equal(apply(&f, &d, NULL), KS_META_EBUCKETEXISTS);
  assert_int_equal(put_part(&f, "u1", 0, 5 * MIB, e1), KS_META_EINVAL);
  assert_int_equal(put_part(&f, "u1", 10001, 5 * MIB, e1), KS_META_EINVAL);
  assert_int_equal(put_part(&f, "u1", 1, MIB, e1), 0);
  assert_int_equal(put_part(&f, "u1", 1, 5 * MIB, e1), 0); /* replaces */
  assert_int_equal(put_part(&f, "u1", 2, 1, e2), 0);
  assert_int_equal(put_part(&f, "u1", 3, 7, e3), 0);

  /* ListParts with a marker and max-parts. */
  ks_meta_query_t q = {.shard = 1, .bucket = "b", .key = "big"};
  q.upload_id = "u1";
  q.max = 2;
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_parts_t pp;
  assert_int_equal(query(&f, KS_OP_META_LIST_PARTS, &q, &e), 0);
  assert_int_equal(ks_meta_parts_decode(e.buf.data, e.buf.len, &a, &pp), 0);
  assert_int_equal(pp.n, 2);
  assert_int_equal(pp.parts[0].size, 5 * MIB);
  assert_string_equal(pp.parts[1].etag, e2);
  assert_true(pp.truncated);
  assert_int_equal(pp.next_marker, 2);
  q.marker = 2;
  assert_int_equal(query(&f, KS_OP_META_LIST_PARTS, &q, &e), 0);
  assert_int_equal(ks_meta_parts_decode(e.buf.data, e.buf.len, &a, &pp), 0);
  assert_int_equal(pp.n, 1);
  assert_int_equal(pp.parts[0].part, 3);
  assert_false(pp.truncated);

  /* Validations, in S3's order. */
  ks_meta_part_ref_t refs[3] = {{1, e1}, {2, e2}, {3, e3}};
  ks_meta_part_ref_t bad_order[2] = {{2, e2}, {1, e1}};
  ks_meta_part_ref_t missing[2] = {{1, e1}, {4, e3}};
  ks_meta_part_ref_t wrong_tag[2] = {{1, e2}, {2, e2}};
  assert_int_equal(complete(&f, "u1", bad_order, 2, NULL), KS_META_EPARTORDER);
  assert_int_equal(complete(&f, "u1", missing, 2, NULL), KS_META_EBADPART);
  assert_int_equal(complete(&f, "u1", wrong_tag, 2, NULL), KS_META_EBADPART);
  assert_int_equal(complete(&f, "u1", refs, 3, NULL), KS_META_ETOOSMALL);
  assert_int_equal(complete(&f, "u1", refs, 0, NULL), KS_META_EINVAL);
  assert_int_equal(complete(&f, "nope", refs, 2, NULL), KS_META_ENOUPLOAD);

  /* Quoted ETags match; the object's ETag is md5(md5s)-N. */
  char q1[40];
  snprintf(q1, sizeof(q1), "\"%s\"", e1);
  ks_meta_part_ref_t ok[2] = {{1, q1}, {2, e2}};
  ks_meta_apply_t out;
  assert_int_equal(complete(&f, "u1", ok, 2, &out), 0);
  uint8_t bin[32], sum[16];
  ks_hex_decode(bin, 16, e1, 32);
  ks_hex_decode(bin + 16, 16, e2, 32);
  ks_md5(bin, 32, sum);
  char want[40];
  ks_hex_encode(want, 33, sum, 16);
  strcat(want, "-2");
  assert_string_equal(out.res.etag, want);
  assert_int_equal(out.res.size, 5 * MIB + 1);
  ks_meta_comp_t c;
  assert_int_equal(get_comp(&f, "b", "big", &a, &c), 0);
  assert_string_equal(c.etag, want);
  assert_string_equal(c.content_type, "application/x-big");
  assert_int_equal(c.nextents, 2);
  assert_int_equal(c.extents[1].offset, 5 * MIB);
  assert_int_equal(c.extents[1].length, 1);
  /* The upload and all its parts (also unlisted part 3) are gone. */
  assert_int_equal(query(&f, KS_OP_META_LIST_PARTS, &q, &e), KS_META_ENOUPLOAD);
  assert_int_equal(complete(&f, "u1", ok, 2, NULL), KS_META_ENOUPLOAD);
  ks_meta_arena_free(&a);
  ks_enc_free(&e);
  fx_close(&f);
}

static void test_list_uploads(void **state)
{
  (void)state;
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, "b");
  const char *ups[][2] = {
      {"k1", "u2"}, {"k1", "u1"}, {"k2", "u3"}, {"x/k", "u4"}};
  for (int i = 0; i < 4; i++) {
    ks_meta_delta_t d = {.type = KS_DELTA_CREATE_MPU, .bucket = "b"};
    d.key = ups[i][0];
    d.upload_id = ups[i][1];
    assert_int_equal(apply(&f, &d, NULL), 0);
  }
  ks_meta_query_t q = {.shard = 1, .bucket = "b", .max = 1000};
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_uploads_t u;
  assert_int_equal(query(&f, KS_OP_META_LIST_UPLOADS, &q, &e), 0);
  assert_int_equal(ks_meta_uploads_decode(e.buf.data, e.buf.len, &a, &u), 0);
  assert_int_equal(u.n, 4);
  assert_string_equal(u.uploads[0].upload_id, "u1");
  assert_string_equal(u.uploads[1].upload_id, "u2");
  assert_false(u.truncated);
  q.max = 2;
  assert_int_equal(query(&f, KS_OP_META_LIST_UPLOADS, &q, &e), 0);
  assert_int_equal(ks_meta_uploads_decode(e.buf.data, e.buf.len, &a, &u), 0);
  assert_true(u.truncated);
  assert_string_equal(u.next_key, "k1");
  assert_string_equal(u.next_upload_id, "u2");
  q.start_after = "k1";
  q.upload_id_marker = "u1";
  q.max = 1000;
  assert_int_equal(query(&f, KS_OP_META_LIST_UPLOADS, &q, &e), 0);
  assert_int_equal(ks_meta_uploads_decode(e.buf.data, e.buf.len, &a, &u), 0);
  assert_int_equal(u.n, 3);
  assert_string_equal(u.uploads[0].upload_id, "u2");
  q.upload_id_marker = "";
  assert_int_equal(query(&f, KS_OP_META_LIST_UPLOADS, &q, &e), 0);
  assert_int_equal(ks_meta_uploads_decode(e.buf.data, e.buf.len, &a, &u), 0);
  assert_int_equal(u.n, 2);
  assert_string_equal(u.uploads[0].key, "k2");
  q.start_after = "";
  q.prefix = "x/";
  assert_int_equal(query(&f, KS_OP_META_LIST_UPLOADS, &q, &e), 0);
  assert_int_equal(ks_meta_uploads_decode(e.buf.data, e.buf.len, &a, &u), 0);
  assert_int_equal(u.n, 1);
  assert_string_equal(u.uploads[0].upload_id, "u4");
  ks_meta_query_t g = {.shard = 1, .bucket = "b", .key = "k2"};
  g.upload_id = "u3";
  assert_int_equal(query(&f, KS_OP_META_GET_UPLOAD, &g, &e), 0);
  ks_meta_upload_t up;
  assert_int_equal(ks_meta_upload_decode(e.buf.data, e.buf.len, &a, &up), 0);
  assert_string_equal(up.key, "k2");
  g.upload_id = "nope";
  assert_int_equal(query(&f, KS_OP_META_GET_UPLOAD, &g, &e), KS_META_ENOUPLOAD);
  ks_meta_arena_free(&a);
  ks_enc_free(&e);
  fx_close(&f);
}

/* ---- snapshot
 * ------------------------------------------------------------------- */

static void test_snapshot_restore(void **state)
{
  (void)state;
  fx_t f, g;
  fx_open(&f);
  fx_open(&g);
  setup_bucket(&f, "b");
  for (size_t i = 0; i < sizeof(list_keys) / sizeof(*list_keys); i++)
    assert_int_equal(put_inline(&f, "b", list_keys[i], list_keys[i], NULL), 0);
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_MPU, .bucket = "b", .key = "m"};
  d.upload_id = "u";
  assert_int_equal(apply(&f, &d, NULL), 0);
  ks_buf_t snap = KS_BUF_INIT;
  assert_int_equal(ks_meta_shard_snapshot(f.sh, &snap), 0);
  /* g holds other data that the restore must replace. */
  setup_bucket(&g, "other");
  assert_int_equal(put_inline(&g, "other", "gone", "x", NULL), 0);
  assert_int_equal(ks_meta_shard_restore(g.sh, snap.data, snap.len), 0);
  expect(&g, "", "/", "", 1000, "a,a!,c,d e%2,z,|a b/,a/,b/,d/,é/,|F");
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_comp_t c;
  assert_int_equal(get_comp(&g, "b", "a/c/d", &a, &c), 0);
  assert_memory_equal(c.inline_data, "a/c/d", 5);
  assert_int_equal(get_comp(&g, "other", "gone", &a, &c), KS_META_ENOBUCKET);
  /* The inode counter came along: the next inode is the same on both. */
  ks_meta_apply_t o1, o2;
  g.now = f.now;
  assert_int_equal(put_inline(&f, "b", "new", "x", &o1), 0);
  assert_int_equal(put_inline(&g, "b", "new", "x", &o2), 0);
  assert_int_equal(o1.res.ino, o2.res.ino);
  /* Snapshots of equal states are equal bytes. */
  ks_buf_t s1 = KS_BUF_INIT, s2 = KS_BUF_INIT;
  assert_int_equal(ks_meta_shard_snapshot(f.sh, &s1), 0);
  assert_int_equal(ks_meta_shard_snapshot(g.sh, &s2), 0);
  assert_int_equal(s1.len, s2.len);
  assert_memory_equal(s1.data, s2.data, s1.len);
  /* A truncated or foreign snapshot is refused and changes nothing. */
  assert_int_equal(ks_meta_shard_restore(g.sh, snap.data, snap.len - 1),
                   KS_EPROTO);
  assert_int_equal(ks_meta_shard_restore(g.sh, "\x07", 1), KS_EPROTO);
  assert_int_equal(get_comp(&g, "b", "new", &a, &c), 0);
  ks_buf_free(&snap);
  ks_buf_free(&s1);
  ks_buf_free(&s2);
  ks_meta_arena_free(&a);
  fx_close(&f);
  fx_close(&g);
}

/* ---- codecs
 * ---------------------------------------------------------------------- */

static void test_codec_truncation(void **state)
{
  (void)state;
  ks_meta_kv_t meta[1] = {{"n", "v"}};
  ks_meta_loc_t locs[1] = {{"h:1", {{3}}}};
  ks_meta_extent_t ext[1] = {{0, 4, (const uint8_t *)"desc", 4, 1, locs}};
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_OBJECT, .bucket = "b", .key = "k"};
  d.comp = (ks_meta_comp_t){.size = 4,
                            .etag = "t",
                            .nmeta = 1,
                            .meta = meta,
                            .nextents = 1,
                            .extents = ext};
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_delta_encode(&e, &d);
  assert_int_equal(ks_enc_finish(&e), 0);
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_delta_t out;
  assert_int_equal(ks_meta_delta_decode(e.buf.data, e.buf.len, &a, &out), 0);
  assert_string_equal(out.comp.extents[0].locs[0].node, "h:1");
  for (size_t i = 0; i < e.buf.len; i++)
    assert_int_not_equal(ks_meta_delta_decode(e.buf.data, i, &a, &out), 0);
  ks_enc_u8(&e, 0);
  assert_int_equal(ks_meta_delta_decode(e.buf.data, e.buf.len, &a, &out),
                   KS_EPROTO);
  /* Unknown type, and a hostile count. */
  e.buf.data[1] = 99;
  assert_int_equal(ks_meta_delta_decode(e.buf.data, e.buf.len, &a, &out),
                   KS_EPROTO);
  ks_enc_free(&e);
  ks_enc_u32(&e, 1000000);
  assert_int_not_equal(ks_meta_objects_decode(e.buf.data, e.buf.len, &a,
                                              &(ks_meta_objects_t){0}),
                       0);
  ks_meta_arena_free(&a);
  ks_enc_free(&e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tenants_and_keys),
      cmocka_unit_test(test_buckets),
      cmocka_unit_test(test_objects),
      cmocka_unit_test(test_list_delimiter),
      cmocka_unit_test(test_list_max_keys),
      cmocka_unit_test(test_multipart),
      cmocka_unit_test(test_list_uploads),
      cmocka_unit_test(test_snapshot_restore),
      cmocka_unit_test(test_codec_truncation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
