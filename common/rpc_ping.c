/*
 * rpc_ping.c — the RPC layer's own service: PING (echo), SINK (consume bulk)
 * and SOURCE (produce bulk).  Used by liveness checks, the tests and
 * bench/rpc; every daemon may register it.
 *
 * PING replies with the request's own body and bulk, pointing into the
 * request message: zero copies on the server.  SOURCE serves its bytes from
 * one zero-filled static buffer repeated across the reply's iovec pieces, so
 * producing 64 MiB costs no allocation and no page faults after the first.
 */
#include "rpc_int.h"

#include "ks/endian.h"
#include "ks/err.h"

#define KS__SOURCE_PIECE ((uint64_t)KS_RPC_DEFAULT_MAX_BULK / KS_RPC_IOV_MAX)

static uint8_t source_zeros[KS__SOURCE_PIECE]; /* never written */

static void ping_handler(ks_rpc_sreq_t *req, void *ctx)
{
  (void)ctx;
  const ks_rpc_msg_t *m = ks_rpc_sreq_msg(req);
  struct iovec body = {m->body, m->body_len};
  struct iovec bulk = {m->bulk, (size_t)m->bulk_len};
  if (ks_rpc_reply(req, 0, &body, m->body_len ? 1 : 0, &bulk,
                   m->bulk_len ? 1 : 0, NULL, NULL) != 0)
    ks_rpc_reply_status(req, KS_ETOOBIG);
}

static void sink_handler(ks_rpc_sreq_t *req, void *ctx)
{
  (void)ctx;
  ks_rpc_reply_status(req, 0);
}

static void source_handler(ks_rpc_sreq_t *req, void *ctx)
{
  (void)ctx;
  const ks_rpc_msg_t *m = ks_rpc_sreq_msg(req);
  if (m->body_len != 8) {
    ks_rpc_reply_status(req, -EINVAL);
    return;
  }
  uint64_t n = ks_get_le64(m->body);
  if (n > KS__SOURCE_PIECE * KS_RPC_IOV_MAX) {
    ks_rpc_reply_status(req, KS_ETOOBIG);
    return;
  }
  struct iovec bulk[KS_RPC_IOV_MAX];
  int k = 0;
  while (n > 0) {
    uint64_t piece = n < KS__SOURCE_PIECE ? n : KS__SOURCE_PIECE;
    bulk[k].iov_base = source_zeros;
    bulk[k++].iov_len = (size_t)piece;
    n -= piece;
  }
  if (ks_rpc_reply(req, 0, NULL, 0, bulk, k, NULL, NULL) != 0)
    ks_rpc_reply_status(req, KS_ETOOBIG);
}

int ks_rpc_ping_register(ks_rpc_server_t *srv)
{
  int rc = ks_rpc_server_handle(srv, KS_OP_PING, ping_handler, NULL);
  if (rc == 0)
    rc = ks_rpc_server_handle(srv, KS_OP_SINK, sink_handler, NULL);
  if (rc == 0)
    rc = ks_rpc_server_handle(srv, KS_OP_SOURCE, source_handler, NULL);
  return rc;
}
