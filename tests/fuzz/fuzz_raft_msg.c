/*
 * fuzz_raft_msg.c — libFuzzer target for the Raft message decoder
 * (ks_raft_msg_decode in ks/raft_io_ks.h), which parses bytes from the
 * network before libraft sees them.
 *
 * Input: u32 little-endian body length, the body, then the bulk (the rest).
 * Besides "no crash, no leak, no UB", one property is checked: whatever
 * decodes re-encodes to a body that decodes again to the same type, group
 * and sender.
 */
#include "ks/endian.h"
#include "ks/raft_io_ks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(uint64_t group, const struct raft_message *m)
{
  ks_enc_t body = KS_ENC_INIT;
  ks_buf_t copy = KS_BUF_INIT;
  ks_buf_t bulk = KS_BUF_INIT;
  struct iovec iov[KS_RPC_IOV_MAX];
  int n = 0;
  if (ks_raft_msg_encode(group, m->server_id, m->server_address, m, &body, iov,
                         &n, &copy) != 0)
    abort();
  for (int i = 0; i < n; i++)
    if (ks_buf_append(&bulk, iov[i].iov_base, iov[i].iov_len) != 0)
      abort();
  uint64_t group2;
  char addr[KS_RAFT_ADDR_MAX];
  struct raft_message m2;
  if (ks_raft_msg_decode(body.buf.data, body.buf.len, bulk.data, bulk.len,
                         &group2, addr, &m2) != 0)
    abort();
  if (group2 != group || m2.type != m->type || m2.server_id != m->server_id ||
      strcmp(m2.server_address, m->server_address) != 0)
    abort();
  ks_raft_msg_release(&m2);
  ks_buf_free(&bulk);
  ks_buf_free(&copy);
  ks_enc_free(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 4)
    return 0;
  uint32_t body_len = ks_get_le32(data);
  if (body_len > size - 4)
    return 0;
  const uint8_t *body = data + 4;
  const uint8_t *bulk = body + body_len;
  size_t bulk_len = size - 4 - body_len;
  uint64_t group;
  char addr[KS_RAFT_ADDR_MAX];
  struct raft_message m;
  if (ks_raft_msg_decode(body, body_len, bulk, bulk_len, &group, addr, &m) != 0)
    return 0;
  roundtrip(group, &m);
  ks_raft_msg_release(&m);
  return 0;
}
