/*
 * test_shard_long.c — object keys up to S3's 1,024 bytes in the metadata
 * state machine (meta/shard_int.h, LONG NAMES): names longer than what an
 * LMDB key leaves are stored under their first bytes and a hash.  Checked:
 * put/get/overwrite/rename/delete at and around the split length and at
 * 1,024 bytes, in a short and a 255-byte bucket; listings compared with a
 * brute-force model (sorted names, rolled up by hand) over hundreds of
 * random names that share long prefixes, for many prefixes, delimiters
 * (also ones that straddle or lie beyond the split), start-after markers
 * in the middle of a group and page sizes; a group larger than a page;
 * multipart uploads, parts and upload listings with long keys; snapshot
 * and restore (and a version-1 snapshot still restoring).
 *
 * The split length is computed here as shard_int.h does only to aim names
 * at it; the assertions hold whatever the split is.
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

/* Where shard_int.h splits names in `table` keys of a bucket (objects, or
 * uploads and parts). */
static size_t fit_guess(const char *bucket, bool upload)
{
  size_t fit = 511 - 9 - strlen(bucket) - 1 - 17;
  return upload ? fit - (1 + KS_META_UPLOAD_ID_MAX + 1 + 4) : fit;
}

static void setup_bucket(fx_t *f, const char *b)
{
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_TENANT, .tenant = tenant_a};
  d.name = "acme";
  int rc = apply(f, &d, NULL);
  assert_true(rc == 0 || rc == KS_META_EBUCKETEXISTS);
  ks_meta_delta_t b2 = {
      .type = KS_DELTA_CREATE_BUCKET, .bucket = b, .tenant = tenant_a};
  assert_int_equal(apply(f, &b2, NULL), 0);
}

/* The object's data is its own key, so a get shows which record answered. */
static int put_named(fx_t *f, const char *b, const char *key,
                     ks_meta_apply_t *out)
{
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_OBJECT, .bucket = b, .key = key};
  size_t n = strlen(key);
  d.comp.size = n;
  d.comp.is_inline = true;
  d.comp.inline_data = (const uint8_t *)key;
  d.comp.inline_len = (uint32_t)n;
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

static int get_comp(fx_t *f, const char *b, const char *key, ks_meta_arena_t *a,
                    ks_meta_comp_t *c)
{
  ks_meta_query_t q = {.shard = 1, .bucket = b, .key = key};
  ks_enc_t e = KS_ENC_INIT;
  int rc = ks_meta_shard_query(f->sh, KS_OP_META_GET_OBJECT, &q, &e);
  if (rc == 0)
    assert_int_equal(ks_meta_comp_decode(e.buf.data, e.buf.len, a, c), 0);
  ks_enc_free(&e);
  return rc;
}

/* The object exists and holds its own key (see put_named). */
static void expect_obj(fx_t *f, const char *b, const char *key)
{
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_comp_t c;
  assert_int_equal(get_comp(f, b, key, &a, &c), 0);
  assert_int_equal(c.inline_len, strlen(key));
  assert_memory_equal(c.inline_data, key, strlen(key));
  ks_meta_arena_free(&a);
}

static char *rep(char ch, size_t n, const char *tail)
{
  size_t tn = strlen(tail);
  char *s = malloc(n + tn + 1);
  assert_non_null(s);
  memset(s, ch, n);
  memcpy(s + n, tail, tn + 1);
  return s;
}

/* ---- the model ------------------------------------------------------------
 */

/* The bucket's names, sorted in byte order (strcmp compares unsigned). */
typedef struct model {
  char **names;
  size_t n, cap;
} model_t;

static int name_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool model_has(const model_t *m, const char *s)
{
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->names[i], s) == 0)
      return true;
  return false;
}

/* Put s in the bucket and the model (s is taken over). */
static void model_put(fx_t *f, const char *bucket, model_t *m, char *s)
{
  assert_int_equal(put_named(f, bucket, s, NULL), 0);
  if (model_has(m, s)) {
    free(s);
    return;
  }
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 64;
    m->names = realloc(m->names, m->cap * sizeof(*m->names));
    assert_non_null(m->names);
  }
  m->names[m->n++] = s;
  qsort(m->names, m->n, sizeof(*m->names), name_cmp);
}

static void model_free(model_t *m)
{
  for (size_t i = 0; i < m->n; i++)
    free(m->names[i]);
  free(m->names);
}

typedef struct ent {
  const char *s;
  size_t n;
  bool pfx;
} ent_t;

static int ent_cmp_str(const ent_t *e, const char *s)
{
  size_t sn = strlen(s), n = e->n < sn ? e->n : sn;
  int r = memcmp(e->s, s, n);
  if (r != 0 || e->n == sn)
    return r;
  return e->n < sn ? -1 : 1;
}

/* What S3 lists: names under prefix, rolled up at the first delimiter
 * after it, entries after `after`, at most max. */
static size_t model_list(const model_t *m, const char *prefix,
                         const char *delim, const char *after, uint32_t max,
                         ent_t *out, bool *truncated)
{
  size_t pl = strlen(prefix), dl = strlen(delim), k = 0;
  *truncated = false;
  for (size_t i = 0; i < m->n && max > 0; i++) {
    const char *s = m->names[i];
    if (strncmp(s, prefix, pl) != 0)
      continue;
    ent_t e = {s, strlen(s), false};
    const char *d = dl ? strstr(s + pl, delim) : NULL;
    if (d != NULL) {
      e.n = (size_t)(d - s) + dl;
      e.pfx = true;
    }
    if (ent_cmp_str(&e, after) <= 0)
      continue;
    if (k > 0 && e.pfx && out[k - 1].pfx && out[k - 1].n == e.n &&
        memcmp(out[k - 1].s, e.s, e.n) == 0)
      continue;
    if (k == max) {
      *truncated = true;
      break;
    }
    out[k++] = e;
  }
  return k;
}

static int list(fx_t *f, const char *bucket, const char *prefix,
                const char *delim, const char *after, uint32_t max,
                ks_meta_arena_t *a, ks_meta_objects_t *o)
{
  ks_meta_query_t q = {.shard = 1,
                       .bucket = bucket,
                       .prefix = prefix,
                       .delimiter = delim,
                       .start_after = after,
                       .max = max};
  ks_enc_t e = KS_ENC_INIT;
  int rc = ks_meta_shard_query(f->sh, KS_OP_META_LIST_OBJECTS, &q, &e);
  if (rc == 0)
    assert_int_equal(ks_meta_objects_decode(e.buf.data, e.buf.len, a, o), 0);
  ks_enc_free(&e);
  return rc;
}

static void fail_at(const char *what, const char *prefix, const char *delim,
                    const char *after, uint32_t max, size_t i)
{
  fail_msg("%s (entry %zu) prefix=%zu:%.20s delim=%s after=%zu:%.20s max=%u",
           what, i, strlen(prefix), prefix, delim, strlen(after), after, max);
}

/* One page equals the model's; returns its next marker (malloc'd) or NULL
 * when it was the last page. */
static char *check_page(fx_t *f, const char *bucket, const model_t *m,
                        const char *prefix, const char *delim,
                        const char *after, uint32_t max)
{
  ent_t *want = calloc(m->n + 1, sizeof(*want));
  assert_non_null(want);
  bool trunc;
  size_t nw = model_list(m, prefix, delim, after, max, want, &trunc);
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_objects_t o;
  assert_int_equal(list(f, bucket, prefix, delim, after, max, &a, &o), 0);
  uint32_t ik = 0, ip = 0;
  for (size_t i = 0; i < nw; i++) {
    const char *got = NULL;
    if (want[i].pfx && ip < o.nprefixes)
      got = o.prefixes[ip++];
    else if (!want[i].pfx && ik < o.n)
      got = o.entries[ik++].key;
    if (got == NULL || ent_cmp_str(&want[i], got) != 0)
      fail_at("entry differs", prefix, delim, after, max, i);
  }
  if (ik != o.n || ip != o.nprefixes)
    fail_at("extra entries", prefix, delim, after, max, nw);
  if (trunc != o.truncated)
    fail_at("truncated differs", prefix, delim, after, max, nw);
  char *next = NULL;
  if (nw > 0 && ent_cmp_str(&want[nw - 1], o.next) != 0)
    fail_at("next differs", prefix, delim, after, max, nw);
  if (trunc) {
    next = strdup(o.next);
    assert_non_null(next);
  }
  ks_meta_arena_free(&a);
  free(want);
  return next;
}

/* Every page of a listing, each marker the previous page's next. */
static void check_pages(fx_t *f, const char *bucket, const model_t *m,
                        const char *prefix, const char *delim, uint32_t max)
{
  char *after = strdup("");
  assert_non_null(after);
  for (size_t pages = 0; after != NULL; pages++) {
    assert_true(pages <= m->n + 1);
    char *next = check_page(f, bucket, m, prefix, delim, after, max);
    free(after);
    after = next;
  }
}

static uint64_t rng_next(uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* A name: stem (cut to a random length now and then) and a random tail of
 * 'a', 'b', '/' and 0xFF (sorts above anything, and is what a successor
 * carries over), at most 1,024 bytes. */
static char *random_name(uint64_t *rs, const char *stem)
{
  static const char alpha[] = {'a', 'b', '/', '\xff'};
  size_t sn = strlen(stem);
  if (rng_next(rs) % 8 == 0)
    sn = (size_t)(rng_next(rs) % sn) + 1;
  size_t room = KS_META_KEY_MAX - sn;
  size_t tn = rng_next(rs) % 3 == 0
                  ? rng_next(rs) % (room + 1)
                  : rng_next(rs) % (room < 12 ? room + 1 : 12);
  char *s = malloc(sn + tn + 1);
  assert_non_null(s);
  memcpy(s, stem, sn);
  for (size_t i = 0; i < tn; i++)
    s[sn + i] = alpha[rng_next(rs) % 4];
  s[sn + tn] = '\0';
  return s;
}

/* ---- tests ----------------------------------------------------------------
 */

static void point_ops(const char *bucket)
{
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, bucket);
  size_t fit = fit_guess(bucket, false);
  /* Around the split, and S3's maximum. */
  size_t lens[] = {fit - 1, fit, fit + 1, fit + 2, 700, KS_META_KEY_MAX};
  char *keys[6];
  ks_meta_apply_t out;
  uint64_t inos[6];
  for (int i = 0; i < 6; i++) {
    keys[i] = rep('k', lens[i], "");
    assert_int_equal(put_named(&f, bucket, keys[i], &out), 0);
    inos[i] = out.res.ino;
  }
  for (int i = 0; i < 6; i++)
    expect_obj(&f, bucket, keys[i]);
  /* Overwrite keeps the inode, changes the data. */
  ks_meta_delta_t d = {
      .type = KS_DELTA_PUT_OBJECT, .bucket = bucket, .key = keys[5]};
  d.comp.size = 2;
  d.comp.is_inline = true;
  d.comp.inline_data = (const uint8_t *)"hi";
  d.comp.inline_len = 2;
  d.comp.etag = "e2";
  assert_int_equal(apply(&f, &d, &out), 0);
  assert_int_equal(out.res.ino, inos[5]);
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_comp_t c;
  assert_int_equal(get_comp(&f, bucket, keys[5], &a, &c), 0);
  assert_int_equal(c.inline_len, 2);
  assert_string_equal(c.etag, "e2");
  assert_int_equal(put_named(&f, bucket, keys[5], NULL), 0);
  /* A long name never stored, sharing all the split bytes with stored
   * ones: absent. */
  char *other = rep('k', 900, "x");
  assert_int_equal(get_comp(&f, bucket, other, &a, &c), KS_META_ENOKEY);
  assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, bucket, other, NULL), 0);
  /* Rename long -> long, long -> short, short -> long. */
  assert_int_equal(obj_op(&f, KS_DELTA_RENAME, bucket, keys[4], other), 0);
  assert_int_equal(get_comp(&f, bucket, keys[4], &a, &c), KS_META_ENOKEY);
  assert_int_equal(get_comp(&f, bucket, other, &a, &c), 0);
  assert_int_equal(c.ino, inos[4]);
  assert_int_equal(obj_op(&f, KS_DELTA_RENAME, bucket, other, "short"), 0);
  assert_int_equal(get_comp(&f, bucket, other, &a, &c), KS_META_ENOKEY);
  assert_int_equal(obj_op(&f, KS_DELTA_RENAME, bucket, "short", keys[4]), 0);
  expect_obj(&f, bucket, keys[4]);
  /* mkdir of a long directory marker. */
  char *dir = rep('d', 1000, "/");
  assert_int_equal(obj_op(&f, KS_DELTA_MKDIR, bucket, dir, NULL), 0);
  assert_int_equal(obj_op(&f, KS_DELTA_MKDIR, bucket, dir, NULL),
                   KS_META_EBUCKETEXISTS);
  /* A bucket holding only long keys is not empty. */
  for (int i = 0; i < 4; i++)
    assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, bucket, keys[i], NULL),
                     0);
  assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, bucket, dir, NULL), 0);
  ks_meta_delta_t db = {
      .type = KS_DELTA_DELETE_BUCKET, .bucket = bucket, .tenant = tenant_a};
  assert_int_equal(apply(&f, &db, NULL), KS_META_ENOTEMPTY);
  /* Delete, idempotent; then the bucket can go. */
  for (int i = 4; i < 6; i++) {
    assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, bucket, keys[i], NULL),
                     0);
    assert_int_equal(obj_op(&f, KS_DELTA_DELETE_OBJECT, bucket, keys[i], NULL),
                     0);
    assert_int_equal(get_comp(&f, bucket, keys[i], &a, &c), KS_META_ENOKEY);
  }
  assert_int_equal(apply(&f, &db, NULL), 0);
  for (int i = 0; i < 6; i++)
    free(keys[i]);
  free(other);
  free(dir);
  ks_meta_arena_free(&a);
  fx_close(&f);
}

static void test_point_ops(void **state)
{
  (void)state;
  point_ops("b");
  char *big = rep('x', KS_META_BUCKET_MAX, "");
  point_ops(big);
  free(big);
}

/* Many names that share long prefixes, short ones among them; every
 * listing the model can think of. */
static void listing_vs_model(const char *bucket, uint64_t seed)
{
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, bucket);
  size_t fit = fit_guess(bucket, false);
  char *stems[] = {
      rep('a', fit - 3, ""),        /* groups just past the split */
      rep('a', fit, ""),            /* the verbatim name at the split */
      rep('a', fit - 1, "/"),       /* delimiter ends at the split */
      rep('a', fit - 1, "ab"),      /* "ab" straddles it */
      rep('a', 200, "/aaaaaaaa"),   /* delimiter well before it */
      rep('b', fit + 5, "/"),       /* delimiter beyond it */
      rep('\xff', fit + 1, "\xff"), /* 0xFF across it */
      strdup("s"),
  };
  size_t nstems = sizeof(stems) / sizeof(*stems);
  model_t m = {0};
  uint64_t rs = seed;
  for (int i = 0; i < 400; i++)
    model_put(&f, bucket, &m, random_name(&rs, stems[rng_next(&rs) % nstems]));
  for (size_t i = 0; i < nstems; i++)
    model_put(&f, bucket, &m, strdup(stems[i]));

  char *prefixes[] = {
      strdup(""),
      strdup("a"),
      rep('a', fit - 10, ""),
      rep('a', fit, ""),
      rep('a', fit + 1, ""),
      rep('a', fit + 3, ""),
      rep('a', fit - 1, "/"),
      rep('b', fit + 5, "/"),
      strdup("\xff"),
      rep('\xff', fit + 2, ""),
      rep('a', 200, "/a"),
  };
  const char *delims[] = {"", "/", "ab", "\xff", "/a"};
  size_t np = sizeof(prefixes) / sizeof(*prefixes);
  size_t nd = sizeof(delims) / sizeof(*delims);
  /* Markers: stored names (also the middle of a group), names cut short,
   * names just after stored ones, and the stems. */
  char *afters[16];
  size_t na = 0;
  afters[na++] = strdup("");
  for (int i = 0; i < 10; i++) {
    const char *s = m.names[rng_next(&rs) % m.n];
    size_t n = strlen(s);
    char *a = malloc(n + 2);
    assert_non_null(a);
    memcpy(a, s, n + 1);
    if (i % 3 == 1)
      a[rng_next(&rs) % n + 1] = '\0';
    else if (i % 3 == 2)
      memcpy(a + n, "a", 2);
    afters[na++] = a;
  }
  afters[na++] = rep('a', fit + 2, "");
  afters[na++] = rep('a', fit - 1, "/");
  afters[na++] = rep('b', fit + 5, "/bb");
  afters[na++] = rep('a', fit, "");
  for (size_t p = 0; p < np; p++)
    for (size_t d = 0; d < nd; d++) {
      for (size_t i = 0; i < na; i++)
        free(check_page(&f, bucket, &m, prefixes[p], delims[d], afters[i],
                        1000));
      check_pages(&f, bucket, &m, prefixes[p], delims[d], 7);
    }
  for (size_t d = 0; d < nd; d++)
    check_pages(&f, bucket, &m, "", delims[d], 1);

  /* The listings survive a snapshot and restore. */
  fx_t g;
  fx_open(&g);
  ks_buf_t s1 = KS_BUF_INIT, s2 = KS_BUF_INIT;
  assert_int_equal(ks_meta_shard_snapshot(f.sh, &s1), 0);
  assert_int_equal(ks_meta_shard_restore(g.sh, s1.data, s1.len), 0);
  for (size_t d = 0; d < nd; d++)
    check_pages(&g, bucket, &m, "", delims[d], 13);
  for (size_t i = 0; i < m.n; i += 7)
    expect_obj(&g, bucket, m.names[i]);
  assert_int_equal(ks_meta_shard_snapshot(g.sh, &s2), 0);
  assert_int_equal(s1.len, s2.len);
  assert_memory_equal(s1.data, s2.data, s1.len);
  ks_buf_free(&s1);
  ks_buf_free(&s2);
  fx_close(&g);

  for (size_t i = 0; i < nstems; i++)
    free(stems[i]);
  for (size_t i = 0; i < np; i++)
    free(prefixes[i]);
  for (size_t i = 0; i < na; i++)
    free(afters[i]);
  model_free(&m);
  fx_close(&f);
}

static void test_list_model(void **state)
{
  (void)state;
  listing_vs_model("b", 0x9e3779b97f4a7c15ULL);
  char *big = rep('x', KS_META_BUCKET_MAX, "");
  listing_vs_model(big, 0x2545f4914f6cdd1dULL);
  free(big);
}

/* One group (all names share the split bytes) larger than a page. */
static void test_big_group(void **state)
{
  (void)state;
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, "b");
  size_t fit = fit_guess("b", false);
  model_t m = {0};
  uint64_t rs = 42;
  char tail[64];
  for (int i = 0; i < 1300; i++) {
    /* Distinct, in an order unrelated to the hashes; every third under a
     * "directory" past the split. */
    snprintf(tail, sizeof(tail), "%s%llu", i % 3 ? "" : "d/",
             (unsigned long long)(rng_next(&rs) % 100000));
    model_put(&f, "b", &m, rep('c', fit + 4, tail));
  }
  model_put(&f, "b", &m, rep('c', fit, ""));
  model_put(&f, "b", &m, strdup("c"));
  model_put(&f, "b", &m, strdup("d"));
  free(check_page(&f, "b", &m, "", "", "", 1000));
  free(check_page(&f, "b", &m, "", "/", "", 1000));
  check_pages(&f, "b", &m, "", "", 1000);
  check_pages(&f, "b", &m, "", "/", 1000);
  check_pages(&f, "b", &m, "", "/", 97);
  char *pfx = rep('c', fit + 4, "d/");
  check_pages(&f, "b", &m, pfx, "", 50);
  free(pfx);
  model_free(&m);
  fx_close(&f);
}

/* ---- multipart ------------------------------------------------------------
 */

static void md5_hex(const char *s, char out[33])
{
  uint8_t m[KS_MD5_LEN];
  assert_int_equal(ks_md5(s, strlen(s), m), 0);
  assert_int_equal(ks_hex_encode(out, 33, m, sizeof(m)), 32);
}

static int mpu(fx_t *f, uint8_t type, const char *b, const char *key,
               const char *id)
{
  ks_meta_delta_t d = {.type = type, .bucket = b, .key = key};
  d.upload_id = id;
  return apply(f, &d, NULL);
}

static int put_part(fx_t *f, const char *b, const char *key, const char *id,
                    uint32_t part, uint64_t size, const char *etag)
{
  ks_meta_extent_t x = {0, size, (const uint8_t *)"d", 1, 0, NULL};
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_PART, .bucket = b, .key = key};
  d.upload_id = id;
  d.part = part;
  d.comp = (ks_meta_comp_t){
      .size = size, .etag = etag, .nextents = 1, .extents = &x};
  return apply(f, &d, NULL);
}

static int query(fx_t *f, uint16_t op, const ks_meta_query_t *q, ks_enc_t *e)
{
  ks_enc_free(e);
  return ks_meta_shard_query(f->sh, op, q, e);
}

typedef struct upl {
  const char *key, *id;
} upl_t;

static int upl_cmp(const void *a, const void *b)
{
  const upl_t *x = a, *y = b;
  int r = strcmp(x->key, y->key);
  return r != 0 ? r : strcmp(x->id, y->id);
}

/* ListMultipartUploads equals the model, for every page size and for
 * markers at every upload (with and without the upload id marker). */
static void check_uploads(fx_t *f, const char *b, const upl_t *u, size_t n,
                          const char *prefix)
{
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_uploads_t got;
  upl_t *want = calloc(n, sizeof(*want));
  assert_non_null(want);
  size_t nw = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(u[i].key, prefix, strlen(prefix)) == 0)
      want[nw++] = u[i];
  for (uint32_t max = 1; max <= 4; max++) {
    ks_meta_query_t q = {.shard = 1, .bucket = b, .prefix = prefix, .max = max};
    char *km = strdup(""), *im = strdup("");
    size_t at = 0;
    for (;;) {
      q.start_after = km;
      q.upload_id_marker = im;
      assert_int_equal(query(f, KS_OP_META_LIST_UPLOADS, &q, &e), 0);
      assert_int_equal(ks_meta_uploads_decode(e.buf.data, e.buf.len, &a, &got),
                       0);
      for (uint32_t i = 0; i < got.n; i++, at++) {
        assert_true(at < nw);
        assert_string_equal(got.uploads[i].key, want[at].key);
        assert_string_equal(got.uploads[i].upload_id, want[at].id);
      }
      free(km);
      free(im);
      km = strdup(got.next_key);
      im = strdup(got.next_upload_id);
      if (!got.truncated)
        break;
    }
    assert_int_equal(at, nw);
    free(km);
    free(im);
  }
  /* Key marker alone skips every upload of that key. */
  for (size_t i = 0; i < nw; i++) {
    ks_meta_query_t q = {.shard = 1,
                         .bucket = b,
                         .prefix = prefix,
                         .start_after = want[i].key,
                         .max = 1000};
    assert_int_equal(query(f, KS_OP_META_LIST_UPLOADS, &q, &e), 0);
    assert_int_equal(ks_meta_uploads_decode(e.buf.data, e.buf.len, &a, &got),
                     0);
    size_t j = i;
    while (j < nw && strcmp(want[j].key, want[i].key) == 0)
      j++;
    assert_int_equal(got.n, nw - j);
    if (got.n > 0)
      assert_string_equal(got.uploads[0].key, want[j].key);
  }
  free(want);
  ks_meta_arena_free(&a);
  ks_enc_free(&e);
}

static void multipart(const char *b)
{
  fx_t f;
  fx_open(&f);
  setup_bucket(&f, b);
  size_t fit = fit_guess(b, true);
  char *keys[] = {
      rep('k', fit, ""),  /* verbatim, at the split */
      rep('k', fit, "a"), /* hashed, group "k"*fit */
      rep('k', fit, "b/b"),     rep('k', KS_META_KEY_MAX, ""),
      rep('k', fit - 1, "z"), /* verbatim, after the group */
      rep('k', fit + 300, "a"), strdup("k"),
  };
  size_t nk = sizeof(keys) / sizeof(*keys);
  const char *ids[] = {"u2", "u1", "u3"};
  upl_t ups[32];
  size_t nu = 0;
  for (size_t i = 0; i < nk; i++)
    for (size_t j = 0; j < 1 + i % 3; j++) {
      assert_int_equal(mpu(&f, KS_DELTA_CREATE_MPU, b, keys[i], ids[j]), 0);
      ups[nu++] = (upl_t){keys[i], ids[j]};
    }
  assert_int_equal(mpu(&f, KS_DELTA_CREATE_MPU, b, keys[3], "u2"),
                   KS_META_EBUCKETEXISTS);
  qsort(ups, nu, sizeof(*ups), upl_cmp);
  check_uploads(&f, b, ups, nu, "");
  char *pfx = rep('k', fit, "");
  check_uploads(&f, b, ups, nu, pfx);
  free(pfx);
  pfx = rep('k', fit + 1, "");
  check_uploads(&f, b, ups, nu, pfx);
  free(pfx);

  /* Parts of a 1,024-byte key's upload: put, list, complete. */
  char e1[33], e2[33];
  md5_hex("one", e1);
  md5_hex("two", e2);
  const char *big = keys[3];
  assert_int_equal(put_part(&f, b, big, "u2", 1, 5 * MIB, e1), 0);
  assert_int_equal(put_part(&f, b, big, "u2", 2, 3, e2), 0);
  assert_int_equal(put_part(&f, b, keys[5], "u2", 1, 7, e2), 0);
  assert_int_equal(put_part(&f, b, big, "nope", 1, 7, e2), KS_META_ENOUPLOAD);
  ks_meta_query_t q = {.shard = 1, .bucket = b, .key = big, .max = 1000};
  q.upload_id = "u2";
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_parts_t pp;
  assert_int_equal(query(&f, KS_OP_META_LIST_PARTS, &q, &e), 0);
  assert_int_equal(ks_meta_parts_decode(e.buf.data, e.buf.len, &a, &pp), 0);
  assert_int_equal(pp.n, 2);
  assert_int_equal(pp.parts[1].part, 2);
  assert_string_equal(pp.parts[1].etag, e2);
  assert_int_equal(query(&f, KS_OP_META_GET_UPLOAD, &q, &e), 0);
  ks_meta_upload_t up;
  assert_int_equal(ks_meta_upload_decode(e.buf.data, e.buf.len, &a, &up), 0);
  assert_string_equal(up.key, big);
  /* A long key that shares the split bytes but has no upload. */
  char *absent = rep('k', fit + 700, "");
  q.key = absent;
  assert_int_equal(query(&f, KS_OP_META_GET_UPLOAD, &q, &e), KS_META_ENOUPLOAD);
  assert_int_equal(query(&f, KS_OP_META_LIST_PARTS, &q, &e), KS_META_ENOUPLOAD);
  q.key = big;
  ks_meta_part_ref_t refs[2] = {{1, e1}, {2, e2}};
  ks_meta_delta_t d = {.type = KS_DELTA_COMPLETE_MPU, .bucket = b, .key = big};
  d.upload_id = "u2";
  d.parts = refs;
  d.nparts = 2;
  ks_meta_apply_t out;
  assert_int_equal(apply(&f, &d, &out), 0);
  assert_int_equal(out.res.size, 5 * MIB + 3);
  ks_meta_comp_t c;
  assert_int_equal(get_comp(&f, b, big, &a, &c), 0);
  assert_int_equal(c.size, 5 * MIB + 3);
  assert_int_equal(query(&f, KS_OP_META_LIST_PARTS, &q, &e), KS_META_ENOUPLOAD);
  /* Abort drops the upload and its parts; the other uploads stay. */
  assert_int_equal(mpu(&f, KS_DELTA_ABORT_MPU, b, keys[5], "u2"), 0);
  assert_int_equal(mpu(&f, KS_DELTA_ABORT_MPU, b, keys[5], "u2"),
                   KS_META_ENOUPLOAD);
  q.key = keys[5];
  assert_int_equal(query(&f, KS_OP_META_LIST_PARTS, &q, &e), KS_META_ENOUPLOAD);
  size_t w = 0;
  for (size_t i = 0; i < nu; i++)
    if (!((ups[i].key == big || ups[i].key == keys[5]) &&
          strcmp(ups[i].id, "u2") == 0))
      ups[w++] = ups[i];
  check_uploads(&f, b, ups, w, "");
  /* No part record was left behind: recreating the upload lists none. */
  assert_int_equal(mpu(&f, KS_DELTA_CREATE_MPU, b, keys[5], "u2"), 0);
  q.upload_id = "u2";
  assert_int_equal(query(&f, KS_OP_META_LIST_PARTS, &q, &e), 0);
  assert_int_equal(ks_meta_parts_decode(e.buf.data, e.buf.len, &a, &pp), 0);
  assert_int_equal(pp.n, 0);

  for (size_t i = 0; i < nk; i++)
    free(keys[i]);
  free(absent);
  ks_meta_arena_free(&a);
  ks_enc_free(&e);
  fx_close(&f);
}

static void test_multipart(void **state)
{
  (void)state;
  multipart("b");
  char *big = rep('x', KS_META_BUCKET_MAX, "");
  multipart(big);
  free(big);
}

/* A version-1 snapshot (before long names; same records) still restores. */
static void test_snapshot_v1(void **state)
{
  (void)state;
  fx_t f, g;
  fx_open(&f);
  fx_open(&g);
  setup_bucket(&f, "b");
  assert_int_equal(put_named(&f, "b", "short", NULL), 0);
  ks_buf_t s = KS_BUF_INIT;
  assert_int_equal(ks_meta_shard_snapshot(f.sh, &s), 0);
  assert_true(s.len > 1 && s.data[0] == 2);
  s.data[0] = 1;
  assert_int_equal(ks_meta_shard_restore(g.sh, s.data, s.len), 0);
  expect_obj(&g, "b", "short");
  s.data[0] = 3;
  assert_int_equal(ks_meta_shard_restore(g.sh, s.data, s.len), KS_EPROTO);
  ks_buf_free(&s);
  fx_close(&f);
  fx_close(&g);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_point_ops),   cmocka_unit_test(test_list_model),
      cmocka_unit_test(test_big_group),   cmocka_unit_test(test_multipart),
      cmocka_unit_test(test_snapshot_v1),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
