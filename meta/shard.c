/*
 * shard.c — a metadata shard's state machine: typed deltas applied
 * deterministically to LMDB, snapshots as LMDB reads, restore as LMDB writes
 * (ks/shard.h; key layout in shard_int.h).
 *
 * DURABILITY.  The Raft log is the durable record; this LMDB environment is
 * a view of it, and is treated as disposable:
 *
 *   1. A delta is acknowledged only after libraft has committed it (its
 *      log entry is in the raft store on a quorum, fsync'd by the group
 *      commit of raft_io_ks.c) and applied it here.
 *   2. The state environment is opened with MDB_NOSYNC | MDB_NOMETASYNC:
 *      committing a batch of applies never waits for the disk.  After a
 *      power loss its file may therefore be stale or torn.
 *   3. So it is never trusted after a restart: ks_meta_state_open() deletes
 *      the previous files, and libraft rebuilds each shard from durable
 *      data only: it loads the group's last snapshot from the raft store
 *      (written and fsync'd together with the log truncation it allows) and
 *      hands it to fsm->restore, then re-applies every committed entry after
 *      it, in log order.
 *   4. Apply is deterministic (no clock, no randomness, no reads of
 *      anything but this shard's records; times and ids come in the delta,
 *      inode numbers from the shard's own counter), so the rebuilt state
 *      equals the state before the crash, and every acknowledged delta
 *      (1) is in it: it was in the durable log or folded into the durable
 *      snapshot.
 *
 * Restart costs a restore of the last snapshot plus a replay of at most
 * the snapshot threshold's worth of entries (plus the trailing ones).  The
 * threshold is not fixed: the service scales it with the shard, to
 * max(meta.snapshot_threshold, 2 entries per record at the last snapshot),
 * capped at meta.snapshot_log_max bytes of entries (1 GiB), because each
 * snapshot copies and writes the whole shard (service.c, SNAPSHOT
 * THRESHOLD).  So a restart replays up to ~2x the shard's records, at most
 * ~1 GiB of entries: about two to three times the work of the restore,
 * bounded in bytes.  Why not keep the state and
 * skip what was already applied: libraft 0.15's fsm->apply is not told the
 * entry's index, and an applied index is only trustworthy in an fsync'd
 * environment, which would cost one fsync per batch on top of the log's.
 *
 * BATCHING.  Applies share one write transaction (st->wtxn), each in a
 * nested transaction so that a delta that fails validation half-way leaves
 * nothing behind.  The batch is committed by ks_meta_state_flush() (the
 * service calls it once per loop turn), before any read, and every
 * KS_META_STATE_BATCH_MAX applies.  LMDB does not allow nested
 * transactions with MDB_WRITEMAP, so the environment does not use it.
 *
 * ERRORS.  A delta's own failure (no such bucket, ...) is its outcome: the
 * same on every replica, reported in ks_meta_apply_t.err, nothing written.
 * A storage failure (map full, I/O error) is not deterministic: the state
 * is poisoned and every later apply fails, so this replica never serves a
 * state that skipped a delta; the daemon must stop (restart rebuilds).
 *
 * LIMITS.  Keys of up to KS_META_KEY_MAX (1,024) bytes, S3's limit, in
 * buckets of up to 255 bytes, with upload ids of up to 128.  LMDB keys are
 * at most 511 bytes (the environment must allow that much, else open
 * fails with -ENOTSUP), so a name longer than what its key leaves is
 * stored under its first bytes and a hash, with the full name in the value
 * (shard_int.h, LONG NAMES).  Listing order stays byte order of the full
 * names; the price is paid by names that share more than ~470 bytes (~340
 * for uploads) with other long names: a listing page that reaches such a
 * group reads all of it (shard_query.c).  A composition travels in one
 * Raft entry and one RPC body (1 MiB by default): about 2,500 extents,
 * ~10 GiB at 4 MiB chunks.
 *
 * FORMATS.  Snapshot version 2 (since long names): the records are as in
 * version 1, which restore still accepts (it holds no hashed names), but a
 * node that predates long names must refuse version 2 rather than list
 * hashed keys as names.  Deltas and the Raft log are unchanged.
 */
#include "shard_int.h"

#include "ks/codec.h"
#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMP "shard"
#define REC_VERSION 1
#define SNAP_VERSION 2
#define SNAP_VERSION_MIN 1
#define DIR_MODE 040755

/* ---- keys ------------------------------------------------------------------
 */

void ks__mkey_init(mkey_t *k, const ks_meta_state_t *st, uint64_t shard,
                   uint8_t table)
{
  ks__put_be64(k->b, shard);
  k->b[8] = table;
  (void)st; /* the limit is MKEY_MAX on every replica (state_env_open) */
  k->len = MKEY_HDR;
  k->max = MKEY_MAX;
  k->over = false;
  k->hashed = false;
  k->err = 0;
  k->name = NULL;
  k->name_len = 0;
}

void ks__mkey_add(mkey_t *k, const void *p, size_t n)
{
  if (k->over || n > k->max - k->len) {
    k->over = true;
    return;
  }
  memcpy(k->b + k->len, p, n);
  k->len += n;
}

void ks__mkey_str(mkey_t *k, const char *s)
{
  ks__mkey_add(k, s, strlen(s));
}

void ks__mkey_sep(mkey_t *k)
{
  ks__mkey_add(k, "", 1);
}

void ks__mkey_be32(mkey_t *k, uint32_t v)
{
  uint8_t b[4];
  ks__put_be32(b, v);
  ks__mkey_add(k, b, 4);
}

void ks__mkey_name(mkey_t *k, const char *s, size_t fit)
{
  size_t n = strlen(s);
  if (n <= fit) {
    ks__mkey_add(k, s, n);
    return;
  }
  uint8_t h[KS_SHA256_LEN];
  int rc = ks_sha256(s, n, h);
  if (rc != 0) {
    k->err = rc;
    k->over = true;
    return;
  }
  uint8_t mark = NAME_MARK;
  ks__mkey_add(k, s, fit);
  ks__mkey_add(k, &mark, 1);
  ks__mkey_add(k, h, NAME_HASH_LEN);
  k->hashed = true;
  k->name = s;
  k->name_len = n;
}

int ks__rec_unwrap(MDB_val *v, const uint8_t **name, size_t *n)
{
  ks_dec_t d;
  ks_dec_init(&d, v->mv_data, v->mv_size);
  *name = ks_dec_blob(&d, KS_META_KEY_MAX, n);
  if (d.err != 0 || *n == 0)
    return KS_ECORRUPT;
  v->mv_data = (void *)d.p;
  v->mv_size = d.left;
  return 0;
}

int ks__mdb_err(int rc, const char *what)
{
  if (rc == 0)
    return 0;
  if (rc == MDB_NOTFOUND)
    return -ENOENT;
  ks_log_error(COMP, "lmdb_failed", "op=%s err=\"%s\"", what, mdb_strerror(rc));
  if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
    return -ENOSPC;
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID)
    return KS_ECORRUPT;
  if (rc > 0 && rc < 1000)
    return -rc;
  return -EIO;
}

/* ---- state environment ------------------------------------------------------
 */

static int state_wipe(const char *dir)
{
  static const char *const files[] = {"data.mdb", "lock.mdb"};
  char path[4096];
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return -errno;
  for (size_t i = 0; i < 2; i++) {
    int n = snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
    if (n < 0 || (size_t)n >= sizeof(path))
      return -ENAMETOOLONG;
    if (unlink(path) != 0 && errno != ENOENT)
      return -errno;
  }
  return 0;
}

static int state_env_open(ks_meta_state_t *st, const char *dir,
                          uint64_t map_size)
{
  int rc = mdb_env_create(&st->env);
  if (rc != 0)
    return ks__mdb_err(rc, "env_create");
  rc = mdb_env_set_maxdbs(st->env, 2);
  if (rc == 0)
    rc = mdb_env_set_mapsize(st->env, (size_t)map_size);
  /* NOSYNC/NOMETASYNC: the log is the durable record (top of file). */
  if (rc == 0)
    rc = mdb_env_open(st->env, dir, MDB_NOTLS | MDB_NOSYNC | MDB_NOMETASYNC,
                      0600);
  if (rc != 0)
    return ks__mdb_err(rc, "env_open");
  int key_max = mdb_env_get_maxkeysize(st->env);
  if (key_max < MKEY_MAX) {
    /* The key layout, and so which names are hashed and what snapshots
     * hold, must not depend on how a replica's LMDB was built. */
    ks_log_error(COMP, "lmdb_key_limit", "max=%d need=%d", key_max, MKEY_MAX);
    return -ENOTSUP;
  }
  MDB_txn *txn;
  rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc != 0)
    return ks__mdb_err(rc, "txn_begin");
  rc = mdb_dbi_open(txn, "state", MDB_CREATE, &st->dbi);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return ks__mdb_err(rc, "dbi_open");
  }
  return ks__mdb_err(mdb_txn_commit(txn), "txn_commit");
}

int ks_meta_state_open(const char *dir, uint64_t map_size,
                       ks_meta_state_t **out)
{
  if (map_size == 0)
    map_size = KS_META_STATE_DEFAULT_MAP_SIZE;
  int rc = state_wipe(dir);
  if (rc != 0)
    return rc;
  ks_meta_state_t *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return -ENOMEM;
  rc = state_env_open(st, dir, map_size);
  if (rc != 0) {
    if (st->env != NULL)
      mdb_env_close(st->env);
    free(st);
    return rc;
  }
  *out = st;
  return 0;
}

void ks_meta_state_close(ks_meta_state_t *st)
{
  if (st == NULL)
    return;
  (void)ks_meta_state_flush(st);
  mdb_env_close(st->env);
  free(st);
}

static int state_poison(ks_meta_state_t *st, int err)
{
  if (st->poisoned == 0) {
    st->poisoned = err;
    ks_log_error(COMP, "state_poisoned", "err=%s", ks_errname(err));
  }
  return st->poisoned;
}

int ks_meta_state_flush(ks_meta_state_t *st)
{
  if (st->poisoned != 0)
    return st->poisoned;
  if (st->wtxn == NULL)
    return 0;
  int rc = mdb_txn_commit(st->wtxn);
  st->wtxn = NULL;
  st->batched = 0;
  if (rc != 0)
    return state_poison(st, ks__mdb_err(rc, "txn_commit"));
  st->commits++;
  return 0;
}

uint64_t ks_meta_state_commits(const ks_meta_state_t *st)
{
  return st->commits;
}

int ks__state_read_begin(ks_meta_state_t *st, MDB_txn **txn)
{
  int rc = ks_meta_state_flush(st);
  if (rc != 0)
    return rc;
  return ks__mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn),
                     "txn_begin");
}

static int state_batch(ks_meta_state_t *st)
{
  if (st->poisoned != 0)
    return st->poisoned;
  if (st->wtxn != NULL)
    return 0;
  int rc = mdb_txn_begin(st->env, NULL, 0, &st->wtxn);
  if (rc != 0) {
    st->wtxn = NULL;
    return state_poison(st, ks__mdb_err(rc, "txn_begin"));
  }
  return 0;
}

/* ---- apply context and record access
 * -----------------------------------------
 */

typedef struct actx {
  ks_meta_shard_t *sh;
  MDB_txn *txn;
  const ks_meta_delta_t *d;
  ks_meta_apply_t *out;
  ks_meta_arena_t *a;
  int fail; /* storage error: poisons the state */
} actx_t;

static void key_init(actx_t *c, mkey_t *k, uint8_t table)
{
  ks__mkey_init(k, c->sh->st, c->sh->id, table);
}

static int db_fail(actx_t *c, int rc, const char *what)
{
  c->fail = ks__mdb_err(rc, what);
  return c->fail;
}

/* 0 (found, v points into the map until the transaction ends), -ENOENT, or
 * a storage failure.  For a hashed name v is the record without the name,
 * and a record of another name (a hash collision) is -ENOENT. */
static int db_get(actx_t *c, const mkey_t *k, MDB_val *v)
{
  if (k->over)
    return -ENOENT;
  MDB_val key = ks__mkey_val(k);
  int rc = mdb_get(c->txn, c->sh->st->dbi, &key, v);
  if (rc == MDB_NOTFOUND)
    return -ENOENT;
  if (rc != 0)
    return db_fail(c, rc, "get");
  if (!k->hashed)
    return 0;
  const uint8_t *name;
  size_t n;
  if (ks__rec_unwrap(v, &name, &n) != 0)
    return (c->fail = KS_ECORRUPT);
  return ks__name_cmp(name, n, k->name, k->name_len) == 0 ? 0 : -ENOENT;
}

static bool db_exists(actx_t *c, const mkey_t *k)
{
  MDB_val v;
  return db_get(c, k, &v) == 0;
}

/* Store record e at k; a hashed name goes in front of it.  Overwriting a
 * record of another name that hashed alike is refused (KS_META_EINVAL), a
 * deterministic outcome like any other. */
static int db_put(actx_t *c, const mkey_t *k, const ks_enc_t *e)
{
  if (ks_enc_finish(e) != 0)
    return (c->fail = ks_enc_finish(e));
  MDB_val key = ks__mkey_val(k);
  MDB_val val = {.mv_size = e->buf.len, .mv_data = e->buf.data};
  ks_enc_t w = KS_ENC_INIT;
  if (k->hashed) {
    MDB_val old;
    int rc = mdb_get(c->txn, c->sh->st->dbi, &key, &old);
    if (rc != 0 && rc != MDB_NOTFOUND)
      return db_fail(c, rc, "get");
    if (rc == 0) {
      rc = db_get(c, k, &old);
      if (rc != 0)
        return c->fail ? c->fail : KS_META_EINVAL;
    }
    ks_enc_blob(&w, k->name, k->name_len);
    ks_enc_bytes(&w, e->buf.data, e->buf.len);
    if (ks_enc_finish(&w) != 0) {
      ks_enc_free(&w);
      return (c->fail = -ENOMEM);
    }
    val = (MDB_val){.mv_size = w.buf.len, .mv_data = w.buf.data};
  }
  int rc = mdb_put(c->txn, c->sh->st->dbi, &key, &val, 0);
  ks_enc_free(&w);
  return rc == 0 ? 0 : db_fail(c, rc, "put");
}

/* Delete k (a record of another name at a hashed k stays). */
static int db_del(actx_t *c, const mkey_t *k)
{
  if (k->hashed) {
    MDB_val v;
    int rc = db_get(c, k, &v);
    if (rc != 0)
      return rc == -ENOENT ? 0 : rc;
  }
  MDB_val key = ks__mkey_val(k);
  int rc = mdb_del(c->txn, c->sh->st->dbi, &key, NULL);
  if (rc == MDB_NOTFOUND)
    return 0;
  return rc == 0 ? 0 : db_fail(c, rc, "del");
}

/* Delete every record whose key starts with prefix (delete_all: else only
 * report whether one exists: 1). */
static int db_range(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t n,
                    bool delete_all)
{
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != 0)
    return ks__mdb_err(rc, "cursor_open");
  MDB_val k = {.mv_size = n, .mv_data = (void *)prefix}, v;
  int found = 0;
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && ks__has_prefix(&k, prefix, n)) {
    found = 1;
    if (!delete_all)
      break;
    rc = mdb_cursor_del(cur, 0);
    /* Seek again: after a delete LMDB's cursor position is not reliable
     * for GET_CURRENT at the end of a page. */
    k = (MDB_val){.mv_size = n, .mv_data = (void *)prefix};
    if (rc == 0)
      rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return ks__mdb_err(rc, "range");
  return found;
}

static int db_del_prefix(actx_t *c, const mkey_t *k)
{
  int rc = db_range(c->txn, c->sh->st->dbi, k->b, k->len, true);
  if (rc < 0)
    c->fail = rc;
  return rc < 0 ? rc : 0;
}

static bool db_any_prefix(actx_t *c, const mkey_t *k)
{
  int rc = db_range(c->txn, c->sh->st->dbi, k->b, k->len, false);
  if (rc < 0)
    c->fail = rc;
  return rc == 1;
}

/* ---- names and keys
 * ----------------------------------------------------------
 */

static bool name_ok(const char *s, size_t max)
{
  size_t n = strlen(s);
  return n > 0 && n <= max;
}

static bool bucket_ok(const char *b)
{
  return name_ok(b, KS_META_BUCKET_MAX) && strchr(b, '/') == NULL;
}

/* bucket 0x00 name in `table`; a hashing failure poisons (it is not an
 * outcome every replica would share). */
static void key_name(actx_t *c, mkey_t *k, uint8_t table, const char *bucket,
                     const char *name)
{
  key_init(c, k, table);
  ks__mkey_str(k, bucket);
  ks__mkey_sep(k);
  ks__mkey_name(k, name, ks__name_fit(table, strlen(bucket)));
  if (k->err != 0)
    c->fail = k->err;
}

static void key_object(actx_t *c, mkey_t *k, const char *bucket,
                       const char *key)
{
  key_name(c, k, T_OBJECT, bucket, key);
}

static void key_upload(actx_t *c, mkey_t *k, uint8_t table)
{
  key_name(c, k, table, c->d->bucket, c->d->key);
  ks__mkey_sep(k);
  ks__mkey_str(k, c->d->upload_id);
}

static void key_part(actx_t *c, mkey_t *k, uint32_t part)
{
  key_upload(c, k, T_PART);
  ks__mkey_sep(k);
  ks__mkey_be32(k, part);
}

/* ---- inode numbers
 * -----------------------------------------------------------
 */

static int ino_alloc(actx_t *c, uint64_t *ino)
{
  mkey_t k;
  MDB_val v;
  key_init(c, &k, T_INFO);
  *ino = KS_META_FIRST_INO;
  int rc = db_get(c, &k, &v);
  if (rc == 0) {
    ks_dec_t d;
    ks_dec_init(&d, v.mv_data, v.mv_size);
    if (ks_dec_u8(&d) != REC_VERSION)
      return (c->fail = KS_ECORRUPT);
    *ino = ks_dec_u64(&d);
    if (ks_dec_finish(&d) != 0)
      return (c->fail = KS_ECORRUPT);
  } else if (rc != -ENOENT) {
    return rc;
  }
  ks_enc_t e = KS_ENC_INIT;
  ks_enc_u8(&e, REC_VERSION);
  ks_enc_u64(&e, *ino + 1);
  rc = db_put(c, &k, &e);
  ks_enc_free(&e);
  return rc;
}

/* ---- tenants and access keys
 * -------------------------------------------------
 */

static int tenant_exists(actx_t *c, const ks_id_t *tenant)
{
  mkey_t k;
  key_init(c, &k, T_TENANT);
  ks__mkey_add(&k, tenant->b, KS_ID_LEN);
  return db_exists(c, &k) ? 0 : KS_META_ENOTENANT;
}

static int apply_create_tenant(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  if (ks_id_is_zero(&d->tenant) || !name_ok(d->name, KS_META_STR_MAX))
    return KS_META_EINVAL;
  if (tenant_exists(c, &d->tenant) == 0)
    return KS_META_EBUCKETEXISTS;
  mkey_t k;
  key_init(c, &k, T_TENANT);
  ks__mkey_add(&k, d->tenant.b, KS_ID_LEN);
  ks_enc_t e = KS_ENC_INIT;
  ks_enc_u8(&e, REC_VERSION);
  ks_enc_str(&e, d->name);
  ks_enc_i64(&e, d->now_ns);
  int rc = db_put(c, &k, &e);
  ks_enc_free(&e);
  return rc;
}

static void key_akey(actx_t *c, mkey_t *k)
{
  key_init(c, k, T_AKEY);
  ks__mkey_str(k, c->d->name);
}

static int apply_put_akey(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  if (!name_ok(d->name, 128) || d->secret_len == 0)
    return KS_META_EINVAL;
  int rc = tenant_exists(c, &d->tenant);
  if (rc != 0)
    return rc;
  mkey_t k;
  key_akey(c, &k);
  if (k.over)
    return KS_META_EINVAL;
  ks_meta_akey_t ak = {.id = d->name,
                       .tenant = d->tenant,
                       .secret = d->secret,
                       .secret_len = d->secret_len,
                       .created_ns = d->now_ns};
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_akey_encode(&e, &ak);
  rc = db_put(c, &k, &e);
  ks_secure_zero(e.buf.data, e.buf.len);
  ks_enc_free(&e);
  return rc;
}

static int apply_delete_akey(actx_t *c)
{
  mkey_t k;
  key_akey(c, &k);
  if (k.over || !db_exists(c, &k))
    return c->fail ? c->fail : KS_META_ENOACCESSKEY;
  return db_del(c, &k);
}

/* ---- buckets
 * -----------------------------------------------------------------
 */

/* The bucket record (decoded into c->a) or an outcome. */
static int bucket_get(actx_t *c, const char *name, ks_meta_bucket_t *b)
{
  if (!bucket_ok(name))
    return KS_META_EINVAL;
  mkey_t k;
  MDB_val v;
  key_init(c, &k, T_BUCKET);
  ks__mkey_str(&k, name);
  int rc = db_get(c, &k, &v);
  if (rc == -ENOENT)
    return KS_META_ENOBUCKET;
  if (rc != 0)
    return rc;
  if (ks_meta_bucket_decode(v.mv_data, v.mv_size, c->a, b) != 0)
    return (c->fail = KS_ECORRUPT);
  return 0;
}

static int apply_create_bucket(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  ks_meta_bucket_t b;
  int rc = bucket_get(c, d->bucket, &b);
  if (rc == 0)
    return ks_id_cmp(&b.tenant, &d->tenant) == 0 ? KS_META_EOWNED
                                                 : KS_META_EBUCKETEXISTS;
  if (rc != KS_META_ENOBUCKET)
    return rc;
  rc = tenant_exists(c, &d->tenant);
  if (rc != 0)
    return rc;
  b = (ks_meta_bucket_t){.name = d->bucket,
                         .tenant = d->tenant,
                         .created_ns = d->now_ns,
                         .shard = d->shard ? d->shard : c->sh->id};
  mkey_t k;
  key_init(c, &k, T_BUCKET);
  ks__mkey_str(&k, d->bucket);
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_bucket_encode(&e, &b);
  rc = db_put(c, &k, &e);
  ks_enc_free(&e);
  return rc;
}

static int apply_delete_bucket(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  ks_meta_bucket_t b;
  int rc = bucket_get(c, d->bucket, &b);
  if (rc != 0)
    return rc;
  if (ks_id_cmp(&b.tenant, &d->tenant) != 0)
    return KS_META_EACCESS;
  mkey_t k;
  key_object(c, &k, d->bucket, "");
  if (db_any_prefix(c, &k))
    return KS_META_ENOTEMPTY;
  k.b[8] = T_UPLOAD;
  if (db_any_prefix(c, &k))
    return KS_META_ENOTEMPTY;
  if (c->fail)
    return c->fail;
  key_init(c, &k, T_BUCKET);
  ks__mkey_str(&k, d->bucket);
  return db_del(c, &k);
}

/* ---- objects
 * ------------------------------------------------------------------
 */

/* Extents must tile [0, size) in order, without holes or empty pieces. */
static bool comp_ok(const ks_meta_comp_t *m)
{
  if (m->is_inline)
    return m->nextents == 0;
  uint64_t off = 0;
  for (uint32_t i = 0; i < m->nextents; i++) {
    const ks_meta_extent_t *x = &m->extents[i];
    if (x->offset != off || x->length == 0 || x->length > UINT64_MAX - off)
      return false;
    off += x->length;
  }
  return off == m->size;
}

/* The existing object's inode, or a new one. */
static int object_ino(actx_t *c, const mkey_t *k, uint64_t *ino)
{
  MDB_val v;
  int rc = db_get(c, k, &v);
  if (rc == -ENOENT)
    return ino_alloc(c, ino);
  if (rc != 0)
    return rc;
  ks_meta_comp_t old;
  if (ks_meta_comp_decode(v.mv_data, v.mv_size, c->a, &old) != 0)
    return (c->fail = KS_ECORRUPT);
  *ino = old.ino;
  return 0;
}

static void result_set(actx_t *c, const ks_meta_comp_t *m)
{
  c->out->res.ino = m->ino;
  c->out->res.size = m->size;
  snprintf(c->out->res.etag, sizeof(c->out->res.etag), "%s",
           m->etag ? m->etag : "");
}

/* Store m at k (its ino, ctime and mtime set by the caller). */
static int object_put(actx_t *c, const mkey_t *k, const ks_meta_comp_t *m)
{
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_comp_encode(&e, m);
  int rc = db_put(c, k, &e);
  ks_enc_free(&e);
  if (rc == 0)
    result_set(c, m);
  return rc;
}

static int object_prepare(actx_t *c, const char *key, mkey_t *k)
{
  ks_meta_bucket_t b;
  int rc = bucket_get(c, c->d->bucket, &b);
  if (rc != 0)
    return rc;
  if (!name_ok(key, KS_META_KEY_MAX))
    return KS_META_EINVAL;
  key_object(c, k, c->d->bucket, key);
  return k->over ? KS_META_EINVAL : 0;
}

static int apply_put_object(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  mkey_t k;
  int rc = object_prepare(c, d->key, &k);
  if (rc != 0)
    return rc;
  if (!comp_ok(&d->comp))
    return KS_META_EINVAL;
  ks_meta_comp_t m = d->comp;
  rc = object_ino(c, &k, &m.ino);
  if (rc != 0)
    return rc;
  m.ctime_ns = d->now_ns;
  if (m.mtime_ns == 0)
    m.mtime_ns = d->now_ns;
  return object_put(c, &k, &m);
}

static int apply_delete_object(actx_t *c)
{
  mkey_t k;
  int rc = object_prepare(c, c->d->key, &k);
  return rc != 0 ? rc : db_del(c, &k);
}

static int apply_mkdir(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  mkey_t k;
  int rc = object_prepare(c, d->key, &k);
  if (rc != 0)
    return rc;
  if (d->key[strlen(d->key) - 1] != '/')
    return KS_META_EINVAL;
  if (db_exists(c, &k))
    return KS_META_EBUCKETEXISTS;
  ks_meta_comp_t m = d->comp;
  m.size = 0;
  m.is_inline = false;
  m.nextents = 0;
  m.inline_len = 0;
  if (m.mode == 0)
    m.mode = DIR_MODE;
  m.mtime_ns = m.ctime_ns = d->now_ns;
  rc = ino_alloc(c, &m.ino);
  return rc != 0 ? rc : object_put(c, &k, &m);
}

static int apply_rename(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  mkey_t src, dst;
  MDB_val v;
  int rc = object_prepare(c, d->key, &src);
  if (rc == 0)
    rc = object_prepare(c, d->new_key, &dst);
  if (rc != 0)
    return rc;
  rc = db_get(c, &src, &v);
  if (rc != 0)
    return rc == -ENOENT ? KS_META_ENOKEY : rc;
  ks_meta_comp_t m;
  if (ks_meta_comp_decode(v.mv_data, v.mv_size, c->a, &m) != 0)
    return (c->fail = KS_ECORRUPT);
  if (strcmp(d->key, d->new_key) == 0) {
    result_set(c, &m);
    return 0;
  }
  m.ctime_ns = d->now_ns;
  rc = object_put(c, &dst, &m);
  return rc != 0 ? rc : db_del(c, &src);
}

/* ---- multipart uploads
 * --------------------------------------------------------
 */

static int upload_get(actx_t *c, ks_meta_upload_t *u)
{
  mkey_t k;
  int rc = object_prepare(c, c->d->key, &k);
  if (rc != 0)
    return rc;
  if (!name_ok(c->d->upload_id, KS_META_UPLOAD_ID_MAX))
    return KS_META_ENOUPLOAD;
  key_upload(c, &k, T_UPLOAD);
  MDB_val v;
  rc = k.over ? -ENOENT : db_get(c, &k, &v);
  if (rc != 0)
    return rc == -ENOENT ? KS_META_ENOUPLOAD : rc;
  if (ks_meta_upload_decode(v.mv_data, v.mv_size, c->a, u) != 0)
    return (c->fail = KS_ECORRUPT);
  return 0;
}

static int apply_create_mpu(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  ks_meta_upload_t u;
  int rc = upload_get(c, &u);
  if (rc == 0)
    return KS_META_EBUCKETEXISTS;
  if (rc != KS_META_ENOUPLOAD || !name_ok(d->upload_id, KS_META_UPLOAD_ID_MAX))
    return rc == KS_META_ENOUPLOAD ? KS_META_EINVAL : rc;
  mkey_t k;
  key_upload(c, &k, T_UPLOAD);
  mkey_t pk;
  key_part(c, &pk, 1);
  if (k.over || pk.over)
    return KS_META_EINVAL;
  u = (ks_meta_upload_t){.key = d->key,
                         .upload_id = d->upload_id,
                         .initiated_ns = d->now_ns,
                         .meta = d->comp};
  u.meta.size = 0;
  u.meta.is_inline = false;
  u.meta.nextents = 0;
  ks_enc_t e = KS_ENC_INIT;
  ks_meta_upload_encode(&e, &u);
  rc = db_put(c, &k, &e);
  ks_enc_free(&e);
  return rc;
}

static int apply_put_part(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  ks_meta_upload_t u;
  int rc = upload_get(c, &u);
  if (rc != 0)
    return rc;
  if (d->part < 1 || d->part > KS_META_PARTS_MAX || d->comp.is_inline ||
      !comp_ok(&d->comp))
    return KS_META_EINVAL;
  ks_meta_comp_t m = d->comp;
  m.mtime_ns = m.ctime_ns = d->now_ns;
  mkey_t k;
  key_part(c, &k, d->part);
  ks_enc_t e = KS_ENC_INIT;
  ks_enc_u8(&e, REC_VERSION);
  ks_meta_comp_encode(&e, &m);
  rc = db_put(c, &k, &e);
  ks_enc_free(&e);
  if (rc == 0)
    result_set(c, &m);
  return rc;
}

static int upload_remove(actx_t *c)
{
  mkey_t k;
  key_upload(c, &k, T_UPLOAD);
  int rc = db_del(c, &k);
  if (rc != 0)
    return rc;
  key_upload(c, &k, T_PART);
  ks__mkey_sep(&k);
  return db_del_prefix(c, &k);
}

static int apply_abort_mpu(actx_t *c)
{
  ks_meta_upload_t u;
  int rc = upload_get(c, &u);
  return rc != 0 ? rc : upload_remove(c);
}

/* "abc" or "\"abc\"" compare equal: clients quote ETags, stores need not. */
static bool etag_eq(const char *a, const char *b)
{
  size_t na = strlen(a), nb = strlen(b);
  if (na >= 2 && a[0] == '"' && a[na - 1] == '"')
    a++, na -= 2;
  if (nb >= 2 && b[0] == '"' && b[nb - 1] == '"')
    b++, nb -= 2;
  return na == nb && memcmp(a, b, na) == 0;
}

static int part_load(actx_t *c, uint32_t part, ks_meta_comp_t *m)
{
  mkey_t k;
  MDB_val v;
  key_part(c, &k, part);
  int rc = db_get(c, &k, &v);
  if (rc != 0)
    return rc == -ENOENT ? KS_META_EBADPART : rc;
  const uint8_t *p = v.mv_data;
  if (v.mv_size < 1 || p[0] != REC_VERSION ||
      ks_meta_comp_decode(p + 1, v.mv_size - 1, c->a, m) != 0)
    return (c->fail = KS_ECORRUPT);
  return 0;
}

/* Load the listed parts, checking order, existence, ETags and sizes in the
 * order S3 reports them. */
static int parts_load(actx_t *c, ks_meta_comp_t *parts)
{
  const ks_meta_delta_t *d = c->d;
  if (d->nparts == 0)
    return KS_META_EINVAL;
  for (uint32_t i = 0; i < d->nparts; i++) {
    if (d->parts[i].part < 1 || d->parts[i].part > KS_META_PARTS_MAX)
      return KS_META_EINVAL;
    if (i > 0 && d->parts[i].part <= d->parts[i - 1].part)
      return KS_META_EPARTORDER;
  }
  for (uint32_t i = 0; i < d->nparts; i++) {
    int rc = part_load(c, d->parts[i].part, &parts[i]);
    if (rc != 0)
      return rc;
    if (!etag_eq(parts[i].etag, d->parts[i].etag))
      return KS_META_EBADPART;
  }
  for (uint32_t i = 0; i + 1 < d->nparts; i++)
    if (parts[i].size < KS_META_PART_MIN)
      return KS_META_ETOOSMALL;
  return 0;
}

/* ETag of a multipart object: hex MD5 of the concatenated binary MD5s of
 * the parts, then "-" and the part count (what S3 returns).  Computed here,
 * from the stored part ETags, so no client can make it lie. */
static int mpu_etag(const ks_meta_comp_t *parts, uint32_t n, char *out,
                    size_t size, ks_meta_arena_t *a)
{
  uint8_t *md5s = ks_meta_arena_alloc(a, (size_t)n * KS_MD5_LEN);
  if (md5s == NULL)
    return -ENOMEM;
  for (uint32_t i = 0; i < n; i++) {
    const char *t = parts[i].etag;
    size_t len = strlen(t);
    if (len == 34 && t[0] == '"')
      t++, len -= 2;
    if (len != 2 * KS_MD5_LEN ||
        ks_hex_decode(md5s + (size_t)i * KS_MD5_LEN, KS_MD5_LEN, t, len) < 0)
      return KS_META_EBADPART;
  }
  uint8_t sum[KS_MD5_LEN];
  char hex[2 * KS_MD5_LEN + 1];
  if (ks_md5(md5s, (size_t)n * KS_MD5_LEN, sum) != 0 ||
      ks_hex_encode(hex, sizeof(hex), sum, sizeof(sum)) < 0)
    return KS_ECRYPTO;
  snprintf(out, size, "%s-%u", hex, (unsigned)n);
  return 0;
}

/* The parts' extents laid end to end. */
static int mpu_extents(actx_t *c, const ks_meta_comp_t *parts,
                       ks_meta_comp_t *m)
{
  uint32_t n = 0;
  for (uint32_t i = 0; i < c->d->nparts; i++) {
    if (parts[i].nextents > KS_META_EXTENTS_MAX - n)
      return KS_META_EINVAL;
    n += parts[i].nextents;
  }
  ks_meta_extent_t *x = ks_meta_arena_alloc(c->a, sizeof(*x) * (n ? n : 1));
  if (x == NULL)
    return (c->fail = -ENOMEM);
  uint64_t off = 0;
  uint32_t j = 0;
  for (uint32_t i = 0; i < c->d->nparts; i++) {
    for (uint32_t e = 0; e < parts[i].nextents; e++) {
      x[j] = parts[i].extents[e];
      x[j++].offset = off + parts[i].extents[e].offset;
    }
    off += parts[i].size;
  }
  m->extents = x;
  m->nextents = n;
  m->size = off;
  return 0;
}

static int apply_complete_mpu(actx_t *c)
{
  const ks_meta_delta_t *d = c->d;
  ks_meta_upload_t u;
  int rc = upload_get(c, &u);
  if (rc != 0)
    return rc;
  ks_meta_comp_t *parts =
      ks_meta_arena_alloc(c->a, sizeof(*parts) * (d->nparts ? d->nparts : 1));
  if (parts == NULL)
    return (c->fail = -ENOMEM);
  rc = parts_load(c, parts);
  if (rc != 0)
    return rc;
  ks_meta_comp_t m = u.meta;
  char *etag = ks_meta_arena_alloc(c->a, KS_META_ETAG_MAX);
  if (etag == NULL)
    return (c->fail = -ENOMEM);
  rc = mpu_etag(parts, d->nparts, etag, KS_META_ETAG_MAX, c->a);
  if (rc == 0)
    rc = mpu_extents(c, parts, &m);
  if (rc != 0)
    return rc;
  m.etag = etag;
  m.is_inline = false;
  m.mtime_ns = m.ctime_ns = d->now_ns;
  mkey_t k;
  key_object(c, &k, d->bucket, d->key);
  rc = object_ino(c, &k, &m.ino);
  if (rc == 0)
    rc = object_put(c, &k, &m);
  return rc != 0 ? rc : upload_remove(c);
}

/* ---- apply
 * -------------------------------------------------------------------
 */

typedef int (*apply_fn)(actx_t *c);

static const apply_fn apply_fns[KS_DELTA_TYPE_MAX + 1] = {
    [KS_DELTA_CREATE_TENANT] = apply_create_tenant,
    [KS_DELTA_PUT_ACCESS_KEY] = apply_put_akey,
    [KS_DELTA_DELETE_ACCESS_KEY] = apply_delete_akey,
    [KS_DELTA_CREATE_BUCKET] = apply_create_bucket,
    [KS_DELTA_DELETE_BUCKET] = apply_delete_bucket,
    [KS_DELTA_PUT_OBJECT] = apply_put_object,
    [KS_DELTA_DELETE_OBJECT] = apply_delete_object,
    [KS_DELTA_CREATE_MPU] = apply_create_mpu,
    [KS_DELTA_PUT_PART] = apply_put_part,
    [KS_DELTA_COMPLETE_MPU] = apply_complete_mpu,
    [KS_DELTA_ABORT_MPU] = apply_abort_mpu,
    [KS_DELTA_RENAME] = apply_rename,
    [KS_DELTA_MKDIR] = apply_mkdir,
};

/* Apply d in a nested transaction: committed if it succeeds, dropped if it
 * fails.  Returns a storage failure; the outcome goes to out->err. */
static int apply_delta(ks_meta_shard_t *sh, const ks_meta_delta_t *d,
                       ks_meta_arena_t *a, ks_meta_apply_t *out)
{
  ks_meta_state_t *st = sh->st;
  int rc = state_batch(st);
  if (rc != 0)
    return rc;
  actx_t c = {.sh = sh, .d = d, .out = out, .a = a};
  rc = mdb_txn_begin(st->env, st->wtxn, 0, &c.txn);
  if (rc != 0)
    return state_poison(st, ks__mdb_err(rc, "txn_begin"));
  int outcome = apply_fns[d->type](&c);
  if (c.fail != 0) {
    mdb_txn_abort(c.txn);
    return state_poison(st, c.fail);
  }
  if (outcome != 0) {
    mdb_txn_abort(c.txn);
    memset(&out->res, 0, sizeof(out->res));
    out->err = outcome;
    return 0;
  }
  rc = mdb_txn_commit(c.txn);
  if (rc != 0)
    return state_poison(st, ks__mdb_err(rc, "txn_commit"));
  if (++st->batched >= KS_META_STATE_BATCH_MAX)
    return ks_meta_state_flush(st);
  return 0;
}

int ks_meta_shard_apply(ks_meta_shard_t *sh, const void *delta, size_t len,
                        ks_meta_apply_t *out)
{
  memset(out, 0, sizeof(*out));
  if (sh->st->poisoned != 0)
    return sh->st->poisoned;
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_meta_delta_t d;
  int rc = ks_meta_delta_decode(delta, len, &a, &d);
  if (rc == -ENOMEM) {
    ks_meta_arena_free(&a);
    return state_poison(sh->st, rc);
  }
  if (rc != 0) {
    out->err = KS_EPROTO;
    ks_meta_arena_free(&a);
    return 0;
  }
  rc = apply_delta(sh, &d, &a, out);
  ks_meta_arena_free(&a);
  return rc;
}

/* ---- snapshot and restore
 * ------------------------------------------------------ Snapshot: u8 version |
 * repeated (blob key without the shard prefix | blob value) in key order.
 * Restore deletes the shard's records and writes these, in one transaction. */

int ks_meta_shard_snapshot(ks_meta_shard_t *sh, ks_buf_t *out)
{
  MDB_txn *txn;
  int rc = ks__state_read_begin(sh->st, &txn);
  if (rc != 0)
    return rc;
  uint8_t prefix[8];
  ks__put_be64(prefix, sh->id);
  ks_enc_t e = {.buf = *out};
  /* Reserve what the last snapshot took (plus an eighth for growth): the
   * buffer is then filled without a chain of reallocs and their copies. */
  if (sh->snap_bytes > 0)
    (void)ks_buf_reserve(&e.buf, sh->snap_bytes + sh->snap_bytes / 8);
  ks_enc_u8(&e, SNAP_VERSION);
  uint64_t records = 0;
  MDB_cursor *cur;
  rc = mdb_cursor_open(txn, sh->st->dbi, &cur);
  if (rc == 0) {
    MDB_val k = {.mv_size = 8, .mv_data = prefix}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && ks__has_prefix(&k, prefix, 8)) {
      ks_enc_blob(&e, (uint8_t *)k.mv_data + 8, k.mv_size - 8);
      ks_enc_blob(&e, v.mv_data, v.mv_size);
      records++;
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
  }
  mdb_txn_abort(txn);
  *out = e.buf;
  if (rc != 0 && rc != MDB_NOTFOUND)
    return ks__mdb_err(rc, "snapshot");
  rc = ks_enc_finish(&e);
  if (rc == 0) {
    sh->records = records;
    sh->snap_bytes = e.buf.len;
    if (sh->records_cb != NULL)
      sh->records_cb(sh->records_arg, records);
  }
  return rc;
}

uint64_t ks_meta_shard_records(const ks_meta_shard_t *sh)
{
  return sh->records;
}

uint64_t ks_meta_shard_entry_size(const ks_meta_shard_t *sh)
{
  if (sh->entries > 0)
    return sh->entry_bytes / sh->entries;
  return sh->records == 0 ? 0 : sh->snap_bytes / sh->records;
}

void ks_meta_shard_on_records(ks_meta_shard_t *sh, ks_meta_shard_records_cb cb,
                              void *arg)
{
  sh->records_cb = cb;
  sh->records_arg = arg;
}

static int restore_records(ks_meta_shard_t *sh, MDB_txn *txn, ks_dec_t *d,
                           uint64_t *records)
{
  uint8_t kb[MKEY_MAX];
  ks__put_be64(kb, sh->id);
  while (d->left > 0) {
    size_t kn, vn;
    const uint8_t *kp = ks_dec_blob(d, MKEY_MAX - 8, &kn);
    const uint8_t *vp = ks_dec_blob(d, SIZE_MAX, &vn);
    if (d->err != 0 || kn == 0)
      return KS_EPROTO;
    memcpy(kb + 8, kp, kn);
    MDB_val k = {.mv_size = kn + 8, .mv_data = kb};
    MDB_val v = {.mv_size = vn, .mv_data = (void *)vp};
    int rc = mdb_put(txn, sh->st->dbi, &k, &v, 0);
    if (rc != 0)
      return ks__mdb_err(rc, "restore_put");
    ++*records;
  }
  return 0;
}

int ks_meta_shard_restore(ks_meta_shard_t *sh, const void *p, size_t n)
{
  ks_meta_state_t *st = sh->st;
  ks_dec_t d;
  ks_dec_init(&d, p, n);
  uint8_t ver = ks_dec_u8(&d);
  if (d.err != 0 || ver < SNAP_VERSION_MIN || ver > SNAP_VERSION)
    return KS_EPROTO;
  int rc = ks_meta_state_flush(st);
  if (rc == 0)
    rc = state_batch(st);
  if (rc != 0)
    return rc;
  MDB_txn *txn;
  rc = mdb_txn_begin(st->env, st->wtxn, 0, &txn);
  if (rc != 0)
    return state_poison(st, ks__mdb_err(rc, "txn_begin"));
  uint8_t prefix[8];
  ks__put_be64(prefix, sh->id);
  uint64_t records = 0;
  rc = db_range(txn, st->dbi, prefix, 8, true);
  if (rc >= 0)
    rc = restore_records(sh, txn, &d, &records);
  if (rc != 0) {
    mdb_txn_abort(txn);
    /* A snapshot that does not decode changed nothing; a storage failure
     * poisons. */
    return rc == KS_EPROTO ? rc : state_poison(st, rc);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0)
    return state_poison(st, ks__mdb_err(rc, "txn_commit"));
  sh->records = records;
  sh->snap_bytes = n;
  if (sh->records_cb != NULL)
    sh->records_cb(sh->records_arg, records);
  return ks_meta_state_flush(st);
}

/* ---- the libraft FSM
 * ----------------------------------------------------------
 */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result)
{
  ks_meta_shard_t *sh = fsm->data;
  sh->entries++;
  sh->entry_bytes += buf->len;
  int rc = ks_meta_shard_apply(sh, buf->base, buf->len, &sh->last);
  *result = &sh->last;
  return rc == 0 ? 0 : RAFT_IOERR;
}

/* Version 2 FSM: the snapshot buffers stay ours (malloc'd, freed by
 * fsm_snapshot_finalize once libraft has stored them), so the encoded
 * shard is handed over as it is instead of being copied into raft_malloc
 * memory: a snapshot of 4 KiB inline objects is tens of MB. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
  ks_meta_shard_t *sh = fsm->data;
  ks_buf_t b = KS_BUF_INIT;
  int rc = ks_meta_shard_snapshot(sh, &b);
  struct raft_buffer *rb = NULL;
  if (rc == 0) {
    rb = malloc(sizeof(*rb));
    if (rb == NULL)
      rc = -ENOMEM;
  }
  if (rc != 0) {
    ks_buf_free(&b);
    return rc == -ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
  }
  rb->len = b.len;
  rb->base = ks_buf_steal(&b, NULL); /* never NULL: it holds the version */
  *bufs = rb;
  *n_bufs = 1;
  return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm,
                                 struct raft_buffer *bufs[], unsigned *n_bufs)
{
  (void)fsm;
  for (unsigned i = 0; i < *n_bufs; i++)
    free((*bufs)[i].base);
  free(*bufs);
  *bufs = NULL;
  *n_bufs = 0;
  return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
  ks_meta_shard_t *sh = fsm->data;
  int rc = ks_meta_shard_restore(sh, buf->base, buf->len);
  if (rc != 0) {
    ks_log_error(COMP, "restore_failed", "shard=%llu err=%s",
                 (unsigned long long)sh->id, ks_errname(rc));
    return rc == KS_EPROTO ? RAFT_MALFORMED : RAFT_IOERR;
  }
  raft_free(buf->base);
  return 0;
}

int ks_meta_shard_new(ks_meta_state_t *st, uint64_t id, ks_meta_shard_t **out)
{
  ks_meta_shard_t *sh = calloc(1, sizeof(*sh));
  if (sh == NULL)
    return -ENOMEM;
  sh->st = st;
  sh->id = id;
  sh->fsm = (struct raft_fsm){.version = 2,
                              .data = sh,
                              .apply = fsm_apply,
                              .snapshot = fsm_snapshot,
                              .restore = fsm_restore,
                              .snapshot_finalize = fsm_snapshot_finalize};
  *out = sh;
  return 0;
}

void ks_meta_shard_free(ks_meta_shard_t *sh)
{
  free(sh);
}

uint64_t ks_meta_shard_id(const ks_meta_shard_t *sh)
{
  return sh->id;
}

struct raft_fsm *ks_meta_shard_fsm(ks_meta_shard_t *sh)
{
  return &sh->fsm;
}
