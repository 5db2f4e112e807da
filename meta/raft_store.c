/*
 * raft_store.c — every Raft group's log, term, vote and snapshot in one LMDB
 * environment (layout and contract in ks/raft_store.h).
 *
 * The store knows nothing of libraft: it stores entries, states and
 * snapshots by group id, so it can be tested alone and the io layer above
 * (raft_io_ks.c) decides when to commit.  Values are checked when read back
 * (version byte, lengths): a record that does not decode is KS_ECORRUPT,
 * never a crash.
 *
 * One write transaction at a time (LMDB allows one writer); it is kept in
 * the store so that the io layer can batch many groups' appends into it.
 * MDB_NOTLS lets read transactions run beside it on the same thread.
 */
#include "ks/raft_store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ks/enc.h"
#include "ks/err.h"
#include "ks/log.h"

#define REC_VERSION 1
#define META_STATE 1
#define META_SNAP 2
#define LOG_HDR_LEN 11 /* u8 version, u64 term, u16 type */
#define GROUP_KEY_LEN 8

struct ks_raft_store {
  MDB_env *env;
  MDB_dbi log_dbi;
  MDB_dbi meta_dbi;
  MDB_dbi snap_dbi;
  MDB_txn *wtxn; /* the open write transaction, or NULL */
  uint64_t commits;
};

/* ---- keys (big-endian, so memcmp order is numeric order) ------------- */

static void put_be64(uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static uint64_t get_be64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
  for (int i = 3; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static MDB_val key_log(uint8_t buf[16], uint64_t group, uint64_t index)
{
  put_be64(buf, group);
  put_be64(buf + 8, index);
  return (MDB_val){.mv_size = 16, .mv_data = buf};
}

static MDB_val key_meta(uint8_t buf[9], uint64_t group, uint8_t kind)
{
  put_be64(buf, group);
  buf[8] = kind;
  return (MDB_val){.mv_size = 9, .mv_data = buf};
}

static MDB_val key_snap(uint8_t buf[12], uint64_t group, uint32_t chunk)
{
  put_be64(buf, group);
  put_be32(buf + 8, chunk);
  return (MDB_val){.mv_size = 12, .mv_data = buf};
}

/* ---- errors ------------------------------------------------------------ */

static int mdb_err(int rc, const char *what)
{
  if (rc == 0)
    return 0;
  if (rc == MDB_NOTFOUND)
    return -ENOENT;
  ks_log_error("raft_store", "lmdb_failed", "op=%s err=\"%s\"", what,
               mdb_strerror(rc));
  if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
    return -ENOSPC;
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID)
    return KS_ECORRUPT;
  if (rc > 0 && rc < 1000)
    return -rc;
  return -EIO;
}

/* ---- open / close ------------------------------------------------------ */

static int store_open_dbis(ks_raft_store_t *st)
{
  MDB_txn *txn;
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc != 0)
    return mdb_err(rc, "txn_begin");
  rc = mdb_dbi_open(txn, "log", MDB_CREATE, &st->log_dbi);
  if (rc == 0)
    rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta_dbi);
  if (rc == 0)
    rc = mdb_dbi_open(txn, "snap", MDB_CREATE, &st->snap_dbi);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return mdb_err(rc, "dbi_open");
  }
  return mdb_err(mdb_txn_commit(txn), "txn_commit");
}

int ks_raft_store_open(const char *dir, const ks_raft_store_opts_t *opts,
                       ks_raft_store_t **out)
{
  uint64_t map_size = KS_RAFT_STORE_DEFAULT_MAP_SIZE;
  if (opts != NULL && opts->map_size != 0)
    map_size = opts->map_size;
  ks_raft_store_t *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return -ENOMEM;
  int rc = mdb_env_create(&st->env);
  if (rc != 0) {
    free(st);
    return mdb_err(rc, "env_create");
  }
  rc = mdb_env_set_maxdbs(st->env, 4);
  if (rc == 0)
    rc = mdb_env_set_mapsize(st->env, (size_t)map_size);
  if (rc == 0)
    rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600);
  int err = mdb_err(rc, "env_open");
  if (err == 0)
    err = store_open_dbis(st);
  if (err != 0) {
    mdb_env_close(st->env);
    free(st);
    return err;
  }
  *out = st;
  return 0;
}

void ks_raft_store_close(ks_raft_store_t *st)
{
  if (st == NULL)
    return;
  if (st->wtxn != NULL)
    mdb_txn_abort(st->wtxn);
  mdb_env_close(st->env);
  free(st);
}

uint64_t ks_raft_store_commits(const ks_raft_store_t *st)
{
  return st->commits;
}

/* ---- write transaction ------------------------------------------------- */

int ks_raft_store_begin(ks_raft_store_t *st)
{
  if (st->wtxn != NULL)
    return -EBUSY;
  return mdb_err(mdb_txn_begin(st->env, NULL, 0, &st->wtxn), "txn_begin");
}

int ks_raft_store_commit(ks_raft_store_t *st)
{
  if (st->wtxn == NULL)
    return -EINVAL;
  int rc = mdb_txn_commit(st->wtxn);
  st->wtxn = NULL;
  if (rc == 0)
    st->commits++;
  return mdb_err(rc, "txn_commit");
}

void ks_raft_store_abort(ks_raft_store_t *st)
{
  if (st->wtxn == NULL)
    return;
  mdb_txn_abort(st->wtxn);
  st->wtxn = NULL;
}

int ks_raft_store_entry_put(ks_raft_store_t *st, uint64_t group, uint64_t index,
                            uint64_t term, uint16_t type, const void *payload,
                            size_t len)
{
  if (st->wtxn == NULL)
    return -EINVAL;
  uint8_t kb[16];
  MDB_val key = key_log(kb, group, index);
  MDB_val val = {.mv_size = LOG_HDR_LEN + len, .mv_data = NULL};
  int rc = mdb_put(st->wtxn, st->log_dbi, &key, &val, MDB_RESERVE);
  if (rc != 0)
    return mdb_err(rc, "log_put");
  /* The header is fixed-size; ks/enc.h's layout written in place so that
   * the payload is copied once, straight into the map. */
  uint8_t *p = val.mv_data;
  ks_enc_t e = KS_ENC_INIT;
  ks_enc_u8(&e, REC_VERSION);
  ks_enc_u64(&e, term);
  ks_enc_u16(&e, type);
  int err = ks_enc_finish(&e);
  if (err == 0) {
    memcpy(p, e.buf.data, LOG_HDR_LEN);
    if (len > 0)
      memcpy(p + LOG_HDR_LEN, payload, len);
  }
  ks_enc_free(&e);
  return err;
}

static bool cursor_in_group(const MDB_val *key, uint64_t group)
{
  return key->mv_size == 16 && get_be64(key->mv_data) == group;
}

int ks_raft_store_entries_delete(ks_raft_store_t *st, uint64_t group,
                                 uint64_t from, uint64_t to)
{
  if (st->wtxn == NULL)
    return -EINVAL;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(st->wtxn, st->log_dbi, &cur);
  if (rc != 0)
    return mdb_err(rc, "cursor_open");
  /* Seek again after each delete: a cursor whose tree became empty is
   * no longer positioned, so MDB_GET_CURRENT cannot be trusted. */
  uint8_t kb[16];
  MDB_val key, val;
  for (;;) {
    key = key_log(kb, group, from);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc != 0 || !cursor_in_group(&key, group) ||
        get_be64((const uint8_t *)key.mv_data + 8) > to)
      break;
    from = get_be64((const uint8_t *)key.mv_data + 8);
    rc = mdb_cursor_del(cur, 0);
    if (rc != 0)
      break;
  }
  mdb_cursor_close(cur);
  return rc == 0 || rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "log_delete");
}

int ks_raft_store_state_put(ks_raft_store_t *st, uint64_t group, uint64_t term,
                            uint64_t vote)
{
  if (st->wtxn == NULL)
    return -EINVAL;
  ks_enc_t e = KS_ENC_INIT;
  ks_enc_u8(&e, REC_VERSION);
  ks_enc_u64(&e, term);
  ks_enc_u64(&e, vote);
  int err = ks_enc_finish(&e);
  if (err == 0) {
    uint8_t kb[9];
    MDB_val key = key_meta(kb, group, META_STATE);
    MDB_val val = {.mv_size = e.buf.len, .mv_data = e.buf.data};
    err = mdb_err(mdb_put(st->wtxn, st->meta_dbi, &key, &val, 0), "state_put");
  }
  ks_enc_free(&e);
  return err;
}

static int snap_chunks_delete(ks_raft_store_t *st, uint64_t group)
{
  MDB_cursor *cur;
  int rc = mdb_cursor_open(st->wtxn, st->snap_dbi, &cur);
  if (rc != 0)
    return mdb_err(rc, "cursor_open");
  uint8_t kb[12];
  MDB_val key, val;
  for (;;) {
    key = key_snap(kb, group, 0);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc != 0 || key.mv_size != 12 || get_be64(key.mv_data) != group)
      break;
    rc = mdb_cursor_del(cur, 0);
    if (rc != 0)
      break;
  }
  mdb_cursor_close(cur);
  return rc == 0 || rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "snap_delete");
}

/* Write the data pieces as consecutive KS_RAFT_SNAP_CHUNK-sized values. */
static int snap_chunks_put(ks_raft_store_t *st, uint64_t group,
                           const struct iovec *data, int n, uint64_t size)
{
  uint32_t chunk = 0;
  int piece = 0;
  size_t piece_off = 0;
  for (uint64_t done = 0; done < size; chunk++) {
    size_t len = size - done < KS_RAFT_SNAP_CHUNK ? (size_t)(size - done)
                                                  : KS_RAFT_SNAP_CHUNK;
    uint8_t kb[12];
    MDB_val key = key_snap(kb, group, chunk);
    MDB_val val = {.mv_size = len, .mv_data = NULL};
    int rc = mdb_put(st->wtxn, st->snap_dbi, &key, &val, MDB_RESERVE);
    if (rc != 0)
      return mdb_err(rc, "snap_put");
    for (size_t off = 0; off < len;) {
      if (piece >= n)
        return -EINVAL; /* pieces shorter than hdr->size */
      size_t take = data[piece].iov_len - piece_off;
      if (take > len - off)
        take = len - off;
      memcpy((uint8_t *)val.mv_data + off,
             (const uint8_t *)data[piece].iov_base + piece_off, take);
      off += take;
      piece_off += take;
      if (piece_off == data[piece].iov_len) {
        piece++;
        piece_off = 0;
      }
    }
    done += len;
  }
  return 0;
}

int ks_raft_store_snapshot_put(ks_raft_store_t *st, uint64_t group,
                               const ks_raft_snap_hdr_t *hdr, const void *conf,
                               size_t conf_len, const struct iovec *data, int n)
{
  if (st->wtxn == NULL)
    return -EINVAL;
  if (ks_iov_total(data, n) != hdr->size)
    return -EINVAL;
  int err = snap_chunks_delete(st, group);
  if (err == 0)
    err = snap_chunks_put(st, group, data, n, hdr->size);
  if (err != 0)
    return err;
  ks_enc_t e = KS_ENC_INIT;
  ks_enc_u8(&e, REC_VERSION);
  ks_enc_u64(&e, hdr->index);
  ks_enc_u64(&e, hdr->term);
  ks_enc_u64(&e, hdr->conf_index);
  ks_enc_u64(&e, hdr->size);
  ks_enc_u32(&e, KS_RAFT_SNAP_CHUNK);
  ks_enc_blob(&e, conf, conf_len);
  err = ks_enc_finish(&e);
  if (err == 0) {
    uint8_t kb[9];
    MDB_val key = key_meta(kb, group, META_SNAP);
    MDB_val val = {.mv_size = e.buf.len, .mv_data = e.buf.data};
    err = mdb_err(mdb_put(st->wtxn, st->meta_dbi, &key, &val, 0), "snap_put");
  }
  ks_enc_free(&e);
  return err;
}

/* ---- reading ----------------------------------------------------------- */

static int rtxn_begin(ks_raft_store_t *st, MDB_txn **txn)
{
  return mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn), "txn_begin");
}

static int meta_get(ks_raft_store_t *st, uint64_t group, uint8_t kind,
                    MDB_txn *txn, MDB_val *val)
{
  uint8_t kb[9];
  MDB_val key = key_meta(kb, group, kind);
  return mdb_err(mdb_get(txn, st->meta_dbi, &key, val), "meta_get");
}

int ks_raft_store_state_get(ks_raft_store_t *st, uint64_t group, uint64_t *term,
                            uint64_t *vote)
{
  *term = 0;
  *vote = 0;
  MDB_txn *txn;
  int err = rtxn_begin(st, &txn);
  if (err != 0)
    return err;
  MDB_val val;
  err = meta_get(st, group, META_STATE, txn, &val);
  if (err == 0) {
    ks_dec_t d;
    ks_dec_init(&d, val.mv_data, val.mv_size);
    uint8_t ver = ks_dec_u8(&d);
    *term = ks_dec_u64(&d);
    *vote = ks_dec_u64(&d);
    err = ks_dec_finish(&d) != 0 || ver != REC_VERSION ? KS_ECORRUPT : 0;
  } else if (err == -ENOENT) {
    err = 0;
  }
  mdb_txn_abort(txn);
  return err;
}

int ks_raft_store_snapshot_get(ks_raft_store_t *st, uint64_t group,
                               ks_raft_snap_hdr_t *hdr, ks_buf_t *conf)
{
  MDB_txn *txn;
  int err = rtxn_begin(st, &txn);
  if (err != 0)
    return err;
  MDB_val val;
  err = meta_get(st, group, META_SNAP, txn, &val);
  if (err == 0) {
    ks_dec_t d;
    ks_dec_init(&d, val.mv_data, val.mv_size);
    uint8_t ver = ks_dec_u8(&d);
    hdr->index = ks_dec_u64(&d);
    hdr->term = ks_dec_u64(&d);
    hdr->conf_index = ks_dec_u64(&d);
    hdr->size = ks_dec_u64(&d);
    uint32_t chunk = ks_dec_u32(&d);
    size_t n = 0;
    const uint8_t *p = ks_dec_blob(&d, val.mv_size, &n);
    if (ks_dec_finish(&d) != 0 || ver != REC_VERSION ||
        chunk != KS_RAFT_SNAP_CHUNK)
      err = KS_ECORRUPT;
    else
      err = ks_buf_append(conf, p, n);
  }
  mdb_txn_abort(txn);
  return err;
}

int ks_raft_store_snapshot_read(ks_raft_store_t *st, uint64_t group,
                                const ks_raft_snap_hdr_t *hdr, void *dst)
{
  MDB_txn *txn;
  int err = rtxn_begin(st, &txn);
  if (err != 0)
    return err;
  uint64_t done = 0;
  for (uint32_t chunk = 0; err == 0 && done < hdr->size; chunk++) {
    uint8_t kb[12];
    MDB_val key = key_snap(kb, group, chunk), val;
    err = mdb_err(mdb_get(txn, st->snap_dbi, &key, &val), "snap_get");
    uint64_t want = hdr->size - done < KS_RAFT_SNAP_CHUNK ? hdr->size - done
                                                          : KS_RAFT_SNAP_CHUNK;
    if (err == -ENOENT || (err == 0 && val.mv_size != want))
      err = KS_ECORRUPT;
    if (err == 0) {
      memcpy((uint8_t *)dst + done, val.mv_data, val.mv_size);
      done += val.mv_size;
    }
  }
  mdb_txn_abort(txn);
  return err;
}

int ks_raft_store_log_bounds(ks_raft_store_t *st, uint64_t group,
                             uint64_t *first, uint64_t *last)
{
  MDB_txn *txn;
  int err = rtxn_begin(st, &txn);
  if (err != 0)
    return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, st->log_dbi, &cur);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return mdb_err(rc, "cursor_open");
  }
  uint8_t kb[16];
  MDB_val key = key_log(kb, group, 0), val;
  rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  if (rc == 0 && !cursor_in_group(&key, group))
    rc = MDB_NOTFOUND;
  if (rc == 0) {
    *first = get_be64((const uint8_t *)key.mv_data + 8);
    /* The last entry: the one before the first key of the next group. */
    key = key_log(kb, group, UINT64_MAX);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == 0 && cursor_in_group(&key, group))
      rc = 0; /* index UINT64_MAX itself */
    else
      rc = mdb_cursor_get(cur, &key, &val,
                          rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    if (rc == 0)
      *last = get_be64((const uint8_t *)key.mv_data + 8);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return mdb_err(rc, "log_bounds");
}

static int entry_decode_visit(const MDB_val *key, const MDB_val *val,
                              ks_raft_store_entry_fn fn, void *arg)
{
  if (val->mv_size < LOG_HDR_LEN)
    return KS_ECORRUPT;
  ks_dec_t d;
  ks_dec_init(&d, val->mv_data, LOG_HDR_LEN);
  uint8_t ver = ks_dec_u8(&d);
  uint64_t term = ks_dec_u64(&d);
  uint16_t type = ks_dec_u16(&d);
  if (ks_dec_finish(&d) != 0 || ver != REC_VERSION)
    return KS_ECORRUPT;
  const uint8_t *payload = (const uint8_t *)val->mv_data + LOG_HDR_LEN;
  return fn(arg, get_be64((const uint8_t *)key->mv_data + 8), term, type,
            payload, val->mv_size - LOG_HDR_LEN);
}

int ks_raft_store_log_scan(ks_raft_store_t *st, uint64_t group, uint64_t from,
                           ks_raft_store_entry_fn fn, void *arg)
{
  MDB_txn *txn;
  int err = rtxn_begin(st, &txn);
  if (err != 0)
    return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, st->log_dbi, &cur);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return mdb_err(rc, "cursor_open");
  }
  uint8_t kb[16];
  MDB_val key = key_log(kb, group, from), val;
  rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
  while (err == 0 && rc == 0 && cursor_in_group(&key, group)) {
    err = entry_decode_visit(&key, &val, fn, arg);
    if (err == 0)
      rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (err != 0)
    return err;
  return rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "log_scan");
}
