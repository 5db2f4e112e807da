/*
 * meta_sync.c — blocking meta calls for tools (ks/meta_sync.h): each call
 * starts the asynchronous one and runs the private loop one turn at a time
 * until its callback has set _done.
 */
#include "ks/meta_sync.h"

#include "ks/err.h"
#include "ks/net.h"
#include "ks/time.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#define SYNC_TIMEOUT_MS 10000

static void sync_cb(ks_meta_call_t *c, int status)
{
  ks_meta_sync_t *s = c->data;
  s->_done = true;
  s->_status = status;
}

static void closed_cb(void *arg)
{
  *(bool *)arg = true;
}

int ks_meta_sync_open(ks_meta_sync_t *s, const char *addr, uint32_t timeout_ms)
{
  memset(s, 0, sizeof(*s));
  s->_timeout_ms = timeout_ms ? timeout_ms : SYNC_TIMEOUT_MS;
  char host[64];
  uint16_t port;
  int rc = ks_hostport_parse(addr, host, sizeof(host), &port);
  if (rc != 0)
    return -EINVAL;
  rc = uv_loop_init(&s->_loop);
  if (rc != 0)
    return rc;
  s->_loop_ok = true;
  return ks_meta_client_new(&s->_loop, host, port, NULL, &s->_cl);
}

/* Run the loop until the call started with rc (its start result) is done. */
static int sync_wait(ks_meta_sync_t *s, int rc)
{
  if (rc != 0)
    return rc;
  while (!s->_done)
    uv_run(&s->_loop, UV_RUN_ONCE);
  return s->_status;
}

static void sync_reset(ks_meta_sync_t *s)
{
  ks_meta_call_release(&s->call);
  s->call.data = s;
  s->_done = false;
  s->_status = 0;
}

int ks_meta_sync_write(ks_meta_sync_t *s, uint64_t shard, ks_meta_delta_t *d)
{
  assert(s->_cl != NULL);
  sync_reset(s);
  if (d->now_ns == 0)
    d->now_ns = ks_time_real_ns();
  return sync_wait(
      s, ks_meta_write(s->_cl, &s->call, shard, d, s->_timeout_ms, sync_cb));
}

int ks_meta_sync_query(ks_meta_sync_t *s, uint16_t op, const ks_meta_query_t *q)
{
  assert(s->_cl != NULL);
  sync_reset(s);
  return sync_wait(
      s, ks_meta_query(s->_cl, &s->call, op, q, s->_timeout_ms, sync_cb));
}

void ks_meta_sync_close(ks_meta_sync_t *s)
{
  ks_meta_call_release(&s->call);
  if (s->_cl != NULL) {
    bool closed = false;
    ks_meta_client_close(s->_cl, closed_cb, &closed);
    s->_cl = NULL;
    while (!closed)
      uv_run(&s->_loop, UV_RUN_ONCE);
  }
  if (s->_loop_ok) {
    uv_run(&s->_loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&s->_loop);
    assert(rc == 0);
    (void)rc;
    s->_loop_ok = false;
  }
}
