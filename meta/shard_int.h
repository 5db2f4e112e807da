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
 * LONG NAMES.  LMDB keys are at most 511 bytes (MKEY_MAX; an environment
 * whose build allows less is refused at open, so every replica splits names
 * alike), but an S3 key may have 1,024 bytes.  An object name is therefore
 * written into T_OBJECT, T_UPLOAD and T_PART keys by ks__mkey_name():
 *
 *   len <= fit:  the name verbatim
 *   len >  fit:  name[0..fit) | NAME_MARK | SHA-256(name)[0..16)  ("hashed")
 *
 * where fit (ks__name_fit) is what the table's longest key leaves for the
 * name after the bucket, and for T_UPLOAD/T_PART the longest upload id and
 * part suffix, minus the 17-byte tail: 474 bytes for objects and 340 for
 * uploads with a 10-byte bucket name, 229 / 95 with a 255-byte one.  The
 * value of a record with a hashed name is blob(full name) | the record
 * (ks__rec_unwrap); readers check the name, so a hash collision reads as
 * "absent" and a put that would overwrite another name is refused.
 *
 * Order.  Every verbatim name is at most fit bytes, so the hashed names
 * that share their first fit bytes g form one contiguous run of records
 * ("a group": keys g | NAME_MARK | ...), preceded only by the verbatim name
 * g itself, and every record outside the run compares with all its names
 * as it does with g.  Only inside a group does the record order (by hash)
 * differ from the name order; the scanners (shard_query.c) sort each group
 * they cross by full name.  NAME_MARK is not 0x00, so a hashed name can
 * never be read as a verbatim one followed by a separator (which one a
 * record holds is ks__name_hashed).
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

#define NAME_MARK 0xFF
#define NAME_HASH_LEN 16
#define NAME_TAIL (1 + NAME_HASH_LEN)
/* After the name in the longest T_PART key: 0x00 id 0x00 part. */
#define NAME_UPLOAD_TAIL (1 + KS_META_UPLOAD_ID_MAX + 1 + 4)
_Static_assert(MKEY_MAX - MKEY_HDR - KS_META_BUCKET_MAX - 1 - NAME_TAIL -
                       NAME_UPLOAD_TAIL >=
                   64,
               "a long bucket name leaves too little of a key verbatim");

struct ks_meta_state {
  MDB_env *env;
  MDB_dbi dbi;
  MDB_txn *wtxn;    /* the open batch, or NULL */
  unsigned batched; /* applies in wtxn */
  uint64_t commits;
  int poisoned; /* first storage error, sticky */
};

struct ks_meta_shard {
  ks_meta_state_t *st;
  uint64_t id;
  struct raft_fsm fsm;
  ks_meta_apply_t last;
  uint64_t records;  /* as of the last snapshot or restore */
  size_t snap_bytes; /* size of the last snapshot: the next one's reserve */
  uint64_t entries, entry_bytes; /* applied by fsm_apply since start */
  ks_meta_shard_records_cb records_cb;
  void *records_arg;
};

/* A key being built; `over` records that it outgrew the limit.  When
 * ks__mkey_name hashed a name, `name` is the full name (not owned: it must
 * outlive the key) that the record's value carries; `err` is a hashing
 * failure (the key is then also `over`). */
typedef struct mkey {
  uint8_t b[MKEY_MAX];
  size_t len;
  size_t max;
  bool over;
  bool hashed;
  int err;
  const char *name;
  size_t name_len;
} mkey_t;

void ks__mkey_init(mkey_t *k, const ks_meta_state_t *st, uint64_t shard,
                   uint8_t table);
void ks__mkey_add(mkey_t *k, const void *p, size_t n);
void ks__mkey_str(mkey_t *k, const char *s);
void ks__mkey_sep(mkey_t *k);
void ks__mkey_be32(mkey_t *k, uint32_t v);
/* Append object name s, verbatim or hashed (LONG NAMES above). */
void ks__mkey_name(mkey_t *k, const char *s, size_t fit);

/* The longest name stored verbatim in `table`'s keys (T_OBJECT, T_UPLOAD
 * or T_PART) of a bucket whose name has blen bytes. */
static inline size_t ks__name_fit(uint8_t table, size_t blen)
{
  if (blen > KS_META_BUCKET_MAX)
    blen = KS_META_BUCKET_MAX; /* no such bucket: any split will do */
  size_t fit = MKEY_MAX - MKEY_HDR - blen - 1 - NAME_TAIL;
  return table == T_OBJECT ? fit : fit - NAME_UPLOAD_TAIL;
}

/* Does record key k hold a hashed name at k[base..]? */
static inline bool ks__name_hashed(const MDB_val *k, size_t base, size_t fit)
{
  const uint8_t *p = k->mv_data;
  return k->mv_size > base + fit && p[base + fit] == NAME_MARK &&
         memchr(p + base, 0, fit) == NULL;
}

/* Split the value of a record with a hashed name: *name (*n bytes) is the
 * full name, v becomes the record.  0 or KS_ECORRUPT. */
int ks__rec_unwrap(MDB_val *v, const uint8_t **name, size_t *n);

/* Byte order of a[0..an) and b[0..bn): a prefix sorts first. */
static inline int ks__name_cmp(const void *a, size_t an, const void *b,
                               size_t bn)
{
  size_t n = an < bn ? an : bn;
  int r = n > 0 ? memcmp(a, b, n) : 0;
  if (r != 0 || an == bn)
    return r;
  return an < bn ? -1 : 1;
}
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
