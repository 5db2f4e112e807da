/*
 * fuzz_proto_chunk.c — libFuzzer target for chunkd's RPC body decoders
 * (ks/proto_chunk.h), which read bytes straight off the network.
 *
 * The first input byte picks the message (put request, get/stat/delete
 * request, fragment info, get answer, device list), the rest is the body.
 * Besides "no crash, no out-of-bounds read, no leak", one property is
 * checked: the encoding is canonical, so whatever decodes re-encodes to
 * exactly the input (two peers can never read one body two ways).
 */
#include "ks/enc.h"
#include "ks/err.h"
#include "ks/proto_chunk.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ks_dev_info_t devs[KS_DEV_MAX];

static void check_same(ks_enc_t *e, const uint8_t *p, size_t n)
{
  if (ks_enc_finish(e) != 0)
    abort();
  if (e->buf.len != n || (n && memcmp(e->buf.data, p, n) != 0))
    abort();
  ks_enc_free(e);
}

static void fuzz_frag_req(uint16_t op, const uint8_t *p, size_t n)
{
  ks_frag_req_t r;
  ks_enc_t e = KS_ENC_INIT;
  if (ks_frag_req_decode(p, n, op, &r) != 0)
    return;
  ks_frag_req_encode(&e, op, &r);
  check_same(&e, p, n);
}

static void fuzz_one(uint8_t sel, const uint8_t *p, size_t n)
{
  ks_enc_t e = KS_ENC_INIT;
  ks_frag_put_req_t put;
  ks_frag_info_t info;
  ks_frag_get_resp_t gr;
  size_t count;
  switch (sel % 7) {
  case 0:
    if (ks_frag_put_req_decode(p, n, &put) != 0)
      return;
    ks_frag_put_req_encode(&e, &put);
    break;
  case 1:
    fuzz_frag_req(KS_OP_FRAG_GET, p, n);
    return;
  case 2:
    fuzz_frag_req(KS_OP_FRAG_STAT, p, n);
    return;
  case 3:
    fuzz_frag_req(KS_OP_FRAG_DELETE, p, n);
    return;
  case 4:
    if (ks_frag_info_decode(p, n, &info) != 0)
      return;
    ks_frag_info_encode(&e, &info);
    break;
  case 5:
    if (ks_frag_get_resp_decode(p, n, &gr) != 0)
      return;
    ks_frag_get_resp_encode(&e, &gr);
    break;
  default:
    if (ks_dev_list_resp_decode(p, n, devs, KS_DEV_MAX, &count) != 0)
      return;
    ks_dev_list_resp_encode(&e, devs, count);
    break;
  }
  check_same(&e, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  fuzz_one(data[0], data + 1, size - 1);
  return 0;
}
