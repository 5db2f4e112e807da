/*
 * shard_fixture.h — the shard test fixture shared by test_shard.c and
 * test_shard_long.c: a scratch LMDB state with one shard, and apply() that
 * encodes a delta the way the Raft log carries it (so every test also goes
 * through the delta codec).  Include after <cmocka.h>.
 */
#ifndef KS_TEST_SHARD_FIXTURE_H
#define KS_TEST_SHARD_FIXTURE_H

#include "ks/enc.h"
#include "ks/proto_meta.h"
#include "ks/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fx {
  char dir[64];
  ks_meta_state_t *st;
  ks_meta_shard_t *sh;
  int64_t now;
} fx_t;

static inline void fx_open(fx_t *f)
{
  memset(f, 0, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/ks-shard-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(ks_meta_state_open(f->dir, 1ULL << 30, &f->st), 0);
  assert_int_equal(ks_meta_shard_new(f->st, 1, &f->sh), 0);
  f->now = 1000;
}

static inline void fx_close(fx_t *f)
{
  char p[128];
  ks_meta_shard_free(f->sh);
  ks_meta_state_close(f->st);
  snprintf(p, sizeof(p), "%s/data.mdb", f->dir);
  unlink(p);
  snprintf(p, sizeof(p), "%s/lock.mdb", f->dir);
  unlink(p);
  rmdir(f->dir);
}

/* Apply d (its time set from the fixture's clock); returns the outcome. */
static inline int apply(fx_t *f, ks_meta_delta_t *d, ks_meta_apply_t *out)
{
  ks_meta_apply_t tmp;
  ks_enc_t e = KS_ENC_INIT;
  d->now_ns = ++f->now;
  ks_meta_delta_encode(&e, d);
  assert_int_equal(ks_enc_finish(&e), 0);
  assert_int_equal(
      ks_meta_shard_apply(f->sh, e.buf.data, e.buf.len, out ? out : &tmp), 0);
  ks_enc_free(&e);
  return out ? out->err : tmp.err;
}

#endif /* KS_TEST_SHARD_FIXTURE_H */
