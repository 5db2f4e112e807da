/*
 * test_raft_store.c — the LMDB store of Raft state alone (ks/raft_store.h):
 * entries, ranges, term/vote, chunked snapshots, durability across reopen,
 * commit counting, map-full and corrupt records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "ks/err.h"
#include "ks/raft_store.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir_make(void)
{
  char tmpl[] = "/tmp/ks-raft-store-XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

static void dir_remove(char *d)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/data.mdb", d);
  unlink(path);
  snprintf(path, sizeof(path), "%s/lock.mdb", d);
  unlink(path);
  rmdir(d);
  free(d);
}

typedef struct seen {
  uint64_t first, next;
  size_t n;
  int stop_at;
} seen_t;

static int seen_fn(void *arg, uint64_t index, uint64_t term, uint16_t type,
                   const uint8_t *p, size_t len)
{
  seen_t *s = arg;
  if (s->n == 0)
    s->first = index;
  assert_int_equal(index, s->first + s->n);
  assert_int_equal(term, index * 10);
  assert_int_equal(type, 1);
  assert_int_equal(len, 8);
  uint64_t v;
  memcpy(&v, p, 8);
  assert_int_equal(v, index);
  s->n++;
  s->next = index + 1;
  return 0;
}

static void put_entries(ks_raft_store_t *st, uint64_t group, uint64_t from,
                        uint64_t to)
{
  assert_int_equal(ks_raft_store_begin(st), 0);
  for (uint64_t i = from; i <= to; i++)
    assert_int_equal(ks_raft_store_entry_put(st, group, i, i * 10, 1, &i, 8),
                     0);
  assert_int_equal(ks_raft_store_commit(st), 0);
}

static void test_entries(void **state)
{
  (void)state;
  char *d = dir_make();
  ks_raft_store_t *st;
  assert_int_equal(ks_raft_store_open(d, NULL, &st), 0);
  uint64_t first, last;
  assert_int_equal(ks_raft_store_log_bounds(st, 7, &first, &last), -ENOENT);
  /* Three groups side by side: scans and bounds never cross groups. */
  put_entries(st, 6, 1, 5);
  put_entries(st, 7, 1, 300);
  put_entries(st, 8, 1, 3);
  assert_int_equal(ks_raft_store_commits(st), 3);
  assert_int_equal(ks_raft_store_log_bounds(st, 7, &first, &last), 0);
  assert_int_equal(first, 1);
  assert_int_equal(last, 300);
  seen_t s = {0};
  assert_int_equal(ks_raft_store_log_scan(st, 7, 1, seen_fn, &s), 0);
  assert_int_equal(s.n, 300);
  /* Compact a prefix and truncate a suffix. */
  assert_int_equal(ks_raft_store_begin(st), 0);
  assert_int_equal(ks_raft_store_begin(st), -EBUSY);
  assert_int_equal(ks_raft_store_entries_delete(st, 7, 0, 100), 0);
  assert_int_equal(ks_raft_store_entries_delete(st, 7, 251, UINT64_MAX), 0);
  assert_int_equal(ks_raft_store_commit(st), 0);
  assert_int_equal(ks_raft_store_log_bounds(st, 7, &first, &last), 0);
  assert_int_equal(first, 101);
  assert_int_equal(last, 250);
  memset(&s, 0, sizeof(s));
  assert_int_equal(ks_raft_store_log_scan(st, 7, 200, seen_fn, &s), 0);
  assert_int_equal(s.n, 51);
  assert_int_equal(ks_raft_store_log_bounds(st, 8, &first, &last), 0);
  assert_int_equal(last, 3);
  assert_int_equal(ks_raft_store_log_bounds(st, 6, &first, &last), 0);
  assert_int_equal(last, 5);
  /* Aborted writes leave nothing. */
  assert_int_equal(ks_raft_store_begin(st), 0);
  assert_int_equal(ks_raft_store_entries_delete(st, 7, 0, UINT64_MAX), 0);
  ks_raft_store_abort(st);
  assert_int_equal(ks_raft_store_log_bounds(st, 7, &first, &last), 0);
  assert_int_equal(first, 101);
  /* Writes outside a transaction are refused. */
  assert_int_equal(ks_raft_store_state_put(st, 7, 1, 1), -EINVAL);
  ks_raft_store_close(st);
  dir_remove(d);
}

static void test_state_durable(void **state)
{
  (void)state;
  char *d = dir_make();
  ks_raft_store_t *st;
  assert_int_equal(ks_raft_store_open(d, NULL, &st), 0);
  uint64_t term, vote;
  assert_int_equal(ks_raft_store_state_get(st, 1, &term, &vote), 0);
  assert_int_equal(term, 0);
  assert_int_equal(ks_raft_store_begin(st), 0);
  assert_int_equal(ks_raft_store_state_put(st, 1, 42, 3), 0);
  assert_int_equal(ks_raft_store_state_put(st, 2, 9, 0), 0);
  assert_int_equal(ks_raft_store_commit(st), 0);
  put_entries(st, 1, 1, 10);
  ks_raft_store_close(st);
  assert_int_equal(ks_raft_store_open(d, NULL, &st), 0);
  assert_int_equal(ks_raft_store_state_get(st, 1, &term, &vote), 0);
  assert_int_equal(term, 42);
  assert_int_equal(vote, 3);
  assert_int_equal(ks_raft_store_state_get(st, 2, &term, &vote), 0);
  assert_int_equal(term, 9);
  uint64_t first, last;
  assert_int_equal(ks_raft_store_log_bounds(st, 1, &first, &last), 0);
  assert_int_equal(last, 10);
  assert_int_equal(ks_raft_store_commits(st), 0); /* per open */
  ks_raft_store_close(st);
  dir_remove(d);
}

static void test_snapshot_chunks(void **state)
{
  (void)state;
  char *d = dir_make();
  ks_raft_store_t *st;
  assert_int_equal(ks_raft_store_open(d, NULL, &st), 0);
  ks_raft_snap_hdr_t hdr;
  ks_buf_t conf = KS_BUF_INIT;
  assert_int_equal(ks_raft_store_snapshot_get(st, 5, &hdr, &conf), -ENOENT);
  /* 2.5 chunks in three uneven pieces. */
  size_t size = KS_RAFT_SNAP_CHUNK * 2 + KS_RAFT_SNAP_CHUNK / 2;
  uint8_t *data = malloc(size);
  for (size_t i = 0; i < size; i++)
    data[i] = (uint8_t)(i * 7 + i / 1000);
  struct iovec iov[3] = {
      {data, 1000},
      {data + 1000, KS_RAFT_SNAP_CHUNK},
      {data + 1000 + KS_RAFT_SNAP_CHUNK, size - 1000 - KS_RAFT_SNAP_CHUNK}};
  ks_raft_snap_hdr_t put = {
      .index = 100, .term = 4, .conf_index = 1, .size = size};
  assert_int_equal(ks_raft_store_begin(st), 0);
  assert_int_equal(ks_raft_store_snapshot_put(st, 5, &put, "conf", 4, iov, 3),
                   0);
  assert_int_equal(ks_raft_store_commit(st), 0);
  assert_int_equal(ks_raft_store_snapshot_get(st, 5, &hdr, &conf), 0);
  assert_int_equal(hdr.index, 100);
  assert_int_equal(hdr.term, 4);
  assert_int_equal(hdr.size, size);
  assert_int_equal(conf.len, 4);
  assert_memory_equal(conf.data, "conf", 4);
  uint8_t *back = malloc(size);
  assert_int_equal(ks_raft_store_snapshot_read(st, 5, &hdr, back), 0);
  assert_memory_equal(back, data, size);
  /* A smaller snapshot replaces it; stale chunks go. */
  struct iovec small = {data, 10};
  put.index = 200;
  put.size = 10;
  assert_int_equal(ks_raft_store_begin(st), 0);
  assert_int_equal(ks_raft_store_snapshot_put(st, 5, &put, "", 0, &small, 1),
                   0);
  /* Pieces that do not add up to the size are refused. */
  put.size = 11;
  assert_int_equal(ks_raft_store_snapshot_put(st, 5, &put, "", 0, &small, 1),
                   -EINVAL);
  assert_int_equal(ks_raft_store_commit(st), 0);
  ks_buf_reset(&conf);
  assert_int_equal(ks_raft_store_snapshot_get(st, 5, &hdr, &conf), 0);
  assert_int_equal(hdr.index, 200);
  assert_int_equal(conf.len, 0);
  assert_int_equal(ks_raft_store_snapshot_read(st, 5, &hdr, back), 0);
  assert_memory_equal(back, data, 10);
  /* A header claiming more than the chunks hold is corrupt. */
  hdr.size = size;
  assert_int_equal(ks_raft_store_snapshot_read(st, 5, &hdr, back), KS_ECORRUPT);
  free(back);
  free(data);
  ks_buf_free(&conf);
  ks_raft_store_close(st);
  dir_remove(d);
}

static void test_map_full(void **state)
{
  (void)state;
  char *d = dir_make();
  ks_raft_store_t *st;
  ks_raft_store_opts_t o = {.map_size = 1 << 20};
  assert_int_equal(ks_raft_store_open(d, &o, &st), 0);
  static uint8_t big[64 << 10];
  int err = 0;
  assert_int_equal(ks_raft_store_begin(st), 0);
  for (uint64_t i = 1; i < 100 && err == 0; i++)
    err = ks_raft_store_entry_put(st, 1, i, 1, 1, big, sizeof(big));
  assert_int_equal(err, -ENOSPC);
  ks_raft_store_abort(st);
  ks_raft_store_close(st);
  dir_remove(d);
}

/* Records written behind the store's back (a bad disk, a bug) must come
 * back as KS_ECORRUPT, not as garbage or a crash. */
static void test_corrupt_records(void **state)
{
  (void)state;
  char *d = dir_make();
  ks_raft_store_t *st;
  assert_int_equal(ks_raft_store_open(d, NULL, &st), 0);
  put_entries(st, 3, 1, 3);
  ks_raft_store_close(st);

  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi log, meta;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
  assert_int_equal(mdb_env_open(env, d, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "log", 0, &log), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  uint8_t k[16] = {0};
  k[7] = 3;
  k[15] = 2;
  MDB_val key = {16, k}, val = {3, "abc"};
  assert_int_equal(mdb_put(txn, log, &key, &val, 0), 0);
  uint8_t mk[9] = {0, 0, 0, 0, 0, 0, 0, 3, 1};
  MDB_val mkey = {9, mk}, mval = {5, "\x09zzzz"};
  assert_int_equal(mdb_put(txn, meta, &mkey, &mval, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  assert_int_equal(ks_raft_store_open(d, NULL, &st), 0);
  seen_t s = {0};
  assert_int_equal(ks_raft_store_log_scan(st, 3, 1, seen_fn, &s), KS_ECORRUPT);
  assert_int_equal(s.n, 1);
  uint64_t term, vote;
  assert_int_equal(ks_raft_store_state_get(st, 3, &term, &vote), KS_ECORRUPT);
  ks_raft_store_close(st);
  dir_remove(d);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_entries),
      cmocka_unit_test(test_state_durable),
      cmocka_unit_test(test_snapshot_chunks),
      cmocka_unit_test(test_map_full),
      cmocka_unit_test(test_corrupt_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
