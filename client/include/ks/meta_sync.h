/*
 * meta_sync.h — blocking calls to one meta node, for command-line tools
 * (the `kiseki` admin CLI, the ks-meta-cli test tool).
 *
 * The meta client (ks/meta_client.h) is asynchronous on a libuv loop, which
 * is what daemons want; a tool does one call after another and wants the
 * answer before it goes on.  A ks_meta_sync_t bundles a private loop, one
 * client and one reusable call, and runs the loop until each call's
 * callback has run.  One call at a time, so nothing here needs a queue.
 *
 * LIFECYCLE.  ks_meta_sync_open, then any number of ks_meta_sync_write /
 * ks_meta_sync_query, then ks_meta_sync_close exactly once (also when open
 * failed: close is then harmless).  The struct is caller-owned and must not
 * move while open (the loop and the call are embedded in it).
 *
 * RESULTS.  Both calls return the call's status: 0, a KS_META_E* outcome
 * (ks/proto_meta.h) or a transport error (-ECONNREFUSED when nothing
 * listens, KS_ETIMEDOUT, ...).  On 0 the decoded answer is in s->call
 * (`result` for writes, the member of `r` for the query's opcode); it stays
 * valid until the next call or close, which release it (and wipe a
 * returned secret).
 *
 * THREADS.  One thread; the loop is private to the struct.
 */
#ifndef KS_META_SYNC_H
#define KS_META_SYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ks/meta_client.h"

typedef struct ks_meta_sync {
  ks_meta_call_t call; /* the latest call's answer */
  /* private */
  uv_loop_t _loop;
  ks_meta_client_t *_cl;
  uint32_t _timeout_ms;
  bool _loop_ok;
  bool _done;
  int _status;
} ks_meta_sync_t;

/* Set up a client of the meta node at addr ("host:port", numeric host).
 * Nothing is sent yet: a node that is down shows on the first call.
 * timeout_ms bounds each call (0: 10 s).  Returns 0, -EINVAL (addr),
 * -ENOMEM or a libuv error; call ks_meta_sync_close in every case. */
int ks_meta_sync_open(ks_meta_sync_t *s, const char *addr, uint32_t timeout_ms);

/* Propose delta d on shard and wait for the outcome.  A d->now_ns of 0 is
 * set to the real-time clock first (d is otherwise only read). */
int ks_meta_sync_write(ks_meta_sync_t *s, uint64_t shard, ks_meta_delta_t *d);

/* Run read op with q and wait for the answer. */
int ks_meta_sync_query(ks_meta_sync_t *s, uint16_t op,
                       const ks_meta_query_t *q);

/* Release the answer, close the client (waiting for it) and the loop. */
void ks_meta_sync_close(ks_meta_sync_t *s);

#endif /* KS_META_SYNC_H */
