/*
 * fuzz_proto_meta.c — libFuzzer target for the metadata protocol's decoders
 * (ks/proto_meta.h): request bodies arrive from the network, deltas from
 * the Raft log of any replica, records from LMDB.
 *
 * The first input byte picks the message, the rest is the body.  Besides
 * "no crash, no out-of-bounds read, no leak", the encoding must be
 * canonical: whatever decodes re-encodes to exactly the input, so two
 * replicas can never read one delta two ways.
 */
#include "ks/enc.h"
#include "ks/err.h"
#include "ks/proto_meta.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(ks_enc_t *e, const uint8_t *p, size_t n)
{
  if (ks_enc_finish(e) != 0)
    abort();
  if (e->buf.len != n || (n && memcmp(e->buf.data, p, n) != 0))
    abort();
}

static int fuzz_records(uint8_t sel, const uint8_t *p, size_t n,
                        ks_meta_arena_t *a, ks_enc_t *e)
{
  union {
    ks_meta_delta_t d;
    ks_meta_comp_t c;
    ks_meta_bucket_t b;
    ks_meta_akey_t k;
    ks_meta_upload_t u;
  } m;
  switch (sel) {
  case 0:
    if (ks_meta_delta_decode(p, n, a, &m.d) != 0)
      return -1;
    ks_meta_delta_encode(e, &m.d);
    return 0;
  case 1:
    if (ks_meta_comp_decode(p, n, a, &m.c) != 0)
      return -1;
    ks_meta_comp_encode(e, &m.c);
    return 0;
  case 2:
    if (ks_meta_bucket_decode(p, n, a, &m.b) != 0)
      return -1;
    ks_meta_bucket_encode(e, &m.b);
    return 0;
  case 3:
    if (ks_meta_akey_decode(p, n, a, &m.k) != 0)
      return -1;
    ks_meta_akey_encode(e, &m.k);
    return 0;
  default:
    if (ks_meta_upload_decode(p, n, a, &m.u) != 0)
      return -1;
    ks_meta_upload_encode(e, &m.u);
    return 0;
  }
}

static int fuzz_lists(uint8_t sel, const uint8_t *p, size_t n,
                      ks_meta_arena_t *a, ks_enc_t *e)
{
  union {
    ks_meta_objects_t o;
    ks_meta_uploads_t u;
    ks_meta_parts_t pp;
    ks_meta_buckets_t b;
  } m;
  switch (sel) {
  case 5:
    if (ks_meta_objects_decode(p, n, a, &m.o) != 0)
      return -1;
    ks_meta_objects_encode(e, &m.o);
    return 0;
  case 6:
    if (ks_meta_uploads_decode(p, n, a, &m.u) != 0)
      return -1;
    ks_meta_uploads_encode(e, &m.u);
    return 0;
  case 7:
    if (ks_meta_parts_decode(p, n, a, &m.pp) != 0)
      return -1;
    ks_meta_parts_encode(e, &m.pp);
    return 0;
  default:
    if (ks_meta_buckets_decode(p, n, a, &m.b) != 0)
      return -1;
    ks_meta_buckets_encode(e, &m.b);
    return 0;
  }
}

/* Selectors 9..17: the read requests of opcodes GET_BUCKET..GET_ACCESS_KEY;
 * 18: a write request. */
static int fuzz_requests(uint8_t sel, const uint8_t *p, size_t n,
                         ks_meta_arena_t *a, ks_enc_t *e)
{
  if (sel == 18) {
    uint64_t shard;
    const uint8_t *delta;
    size_t len;
    ks_meta_delta_t d;
    if (ks_meta_write_decode(p, n, &shard, &delta, &len) != 0 ||
        ks_meta_delta_decode(delta, len, a, &d) != 0)
      return -1;
    ks_meta_write_encode(e, shard, &d);
    return 0;
  }
  uint16_t op = (uint16_t)(KS_OP_META_GET_BUCKET + (sel - 9));
  ks_meta_query_t q;
  if (ks_meta_query_decode(p, n, op, a, &q) != 0)
    return -1;
  return ks_meta_query_encode(e, op, &q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  uint8_t sel = data[0] % 19;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  ks_meta_arena_t a = KS_META_ARENA_INIT;
  ks_enc_t e = KS_ENC_INIT;
  int rc;
  if (sel < 5)
    rc = fuzz_records(sel, p, n, &a, &e);
  else if (sel < 9)
    rc = fuzz_lists(sel, p, n, &a, &e);
  else
    rc = fuzz_requests(sel, p, n, &a, &e);
  if (rc == 0)
    check_same(&e, p, n);
  ks_enc_free(&e);
  ks_meta_arena_free(&a);
  return 0;
}
