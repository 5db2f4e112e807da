/*
 * shard_int.h — what shard.c (apply, snapshots) and shard_query.c (reads)
 * share: the state environment's struct and the LMDB key encoding.
 *
 * KEYS.  One named database "state" holds every shard's records; a key is
 *
 *   shard u64 BE | u8 table | rest
 *
 *   T_INFO    rest: empty                      val: u8 ver | u64 next ino
 *   T_TENANT  rest: tenant id[16]              val: u8 ver | str name |
 *                                                   i64 created_ns
 *   T_AKEY    rest: access key id              val: access key record
 *   T_BUCKET  rest: bucket name                val: bucket record
 *   T_OBJECT  rest: bucket 0x00 key            val: composition record
 *   T_UPLOAD  rest: bucket 0x00 key 0x00 id    val: upload record
 *   T_PART    rest: bucket 0x00 key 0x00 id 0x00 part u32 BE
 *                                              val: u8 ver | composition
 *
 * Big-endian shard and part numbers and the 0x00 separators (no name or
 * key may contain NUL) make LMDB's memcmp order the order every listing
 * wants: a shard's records are one range (snapshots), a bucket's objects are
 * one range in key byte order (prefix listing is a cursor range scan), an
 * upload's parts are one range in part order.  0x00 sorts below every other
 * byte, so "a" 0x00 ... (key "a") comes before "a!" 0x00 ... (key "a!").
 *
 * LMDB bounds keys (mdb_env_get_maxkeysize: 511 bytes in Debian's build):
 * a record whose key would be longer is refused (KS_META_EINVAL), which
 * limits bucket + key (+ upload id) to about 490 bytes; see shard.c.
 */
#ifndef KS_SHARD_INT_H
#define KS_SHARD_INT_H

#include "ks/shard.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum shard_table {
  T_INFO = 0,
  T_TENANT = 1,
  T_AKEY = 2,
  T_BUCKET = 3,
  T_OBJECT = 4,
  T_UPLOAD = 5,
  T_PART = 6,
};

#define MKEY_MAX 511
#define MKEY_HDR 9 /* shard + table */

struct ks_meta_state {
  MDB_env *env;
  MDB_dbi dbi;
  MDB_txn *wtxn;    /* the open batch, or NULL */
  unsigned batched; /* applies in wtxn */
  uint64_t commits;
  size_t key_max; /* mdb_env_get_maxkeysize */
  int poisoned;   /* first storage error, sticky */
};

struct ks_meta_shard {
  ks_meta_state_t *st;
  uint64_t id;
  struct raft_fsm fsm;
  ks_meta_apply_t last;
};

/* A key being built; `over` records that it outgrew the limit. */
typedef struct mkey {
  uint8_t b[MKEY_MAX];
  size_t len;
  size_t max;
  bool over;
} mkey_t;

void ks__mkey_init(mkey_t *k, const ks_meta_state_t *st, uint64_t shard,
                   uint8_t table);
void ks__mkey_add(mkey_t *k, const void *p, size_t n);
void ks__mkey_str(mkey_t *k, const char *s);
void ks__mkey_sep(mkey_t *k);
void ks__mkey_be32(mkey_t *k, uint32_t v);
static inline MDB_val ks__mkey_val(const mkey_t *k)
{
  return (MDB_val){.mv_size = k->len, .mv_data = (void *)k->b};
}

static inline void ks__put_be32(uint8_t *p, uint32_t v)
{
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static inline void ks__put_be64(uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static inline uint32_t ks__get_be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* An LMDB code as a ks/err.h code (logged); MDB_NOTFOUND is -ENOENT. */
int ks__mdb_err(int rc, const char *what);
/* Flush the batch, then begin a read-only transaction. */
int ks__state_read_begin(ks_meta_state_t *st, MDB_txn **txn);

/* Is the record key k (a full key) inside the range that starts with
 * prefix[0..n)? */
static inline bool ks__has_prefix(const MDB_val *k, const uint8_t *prefix,
                                  size_t n)
{
  return k->mv_size >= n && memcmp(k->mv_data, prefix, n) == 0;
}

#endif /* KS_SHARD_INT_H */
