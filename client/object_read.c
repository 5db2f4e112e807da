/*
 * object_read.c — the read path of ks/object.h: bytes of a got object, a
 * chunk at a time, in the order the caller pulls them.
 *
 * The read state keeps the last opened chunk's plaintext (cur), so the
 * small reads a streaming caller makes inside one chunk cost nothing.  A
 * read outside it fetches the chunk that holds the offset:
 *   1. decode the extent's descriptor; the fragment address is derived
 *      from it (object.h, FRAGMENT ADDRESSES);
 *   2. FRAG_GET of the k data fragments in parallel;
 *   3. each one that fails (any error: missing, corrupt, device failed,
 *      timeout, unknown node, wrong length), or that the extent marks
 *      absent (a degraded write: no call is made), is replaced by the next
 *      parity fragment not yet tried, keeping k in flight or held;
 *   4. with k fragments, ks_chunk_open on the threadpool rebuilds missing
 *      data fragments, unwraps the DEK, decrypts and verifies;
 *   5. fewer than k obtainable: -ENODATA.
 * An inline object is opened from the blob in its composition (1+1 seal,
 * fragment 0 only).  Plaintext buffers are wiped before they are freed.
 */
#include "object_int.h"

#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/frag_client.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define INLINE_VERSION 1

enum { FRAG_IDLE, FRAG_BUSY, FRAG_HELD, FRAG_FAILED };

typedef struct read_state {
  ks_obj_op_t *op;
  int64_t cur; /* extent whose plaintext is in pt; -1: none */
  uint8_t *pt;
  size_t pt_cap;
  /* the read being served */
  int64_t want;
  uint64_t off;
  size_t max;
  ks_obj_read_cb cb;
  /* the fetch */
  ks_chunk_desc_t desc;
  ks_ec_t *ec;
  const ks_meta_extent_t *x;
  uint8_t addr[KS_CHUNK_ID_LEN];
  ks_frag_call_t calls[KS_EC_MAX_FRAGS];
  uint8_t fstate[KS_EC_MAX_FRAGS];
  const uint8_t *frag[KS_EC_MAX_FRAGS];
  uint8_t *inl_frag;
  unsigned ok, busy, next;
  uv_work_t work;
  int status;
} read_state_t;

static void fetch_pump(read_state_t *rs);

/* ---- answering ------------------------------------------------------------
 */

static uint64_t ext_off(const read_state_t *rs, int64_t i)
{
  const ks_meta_comp_t *m = &rs->op->reply.r.comp;
  return m->is_inline ? 0 : m->extents[i].offset;
}

static uint64_t ext_len(const read_state_t *rs, int64_t i)
{
  const ks_meta_comp_t *m = &rs->op->reply.r.comp;
  return m->is_inline ? m->size : m->extents[i].length;
}

static void deliver(read_state_t *rs, int status)
{
  ks_obj_read_cb cb = rs->cb;
  rs->cb = NULL;
  if (status != 0) {
    cb(rs->op, status, NULL, 0);
    return;
  }
  uint64_t in = rs->off - ext_off(rs, rs->cur);
  uint64_t n = ext_len(rs, rs->cur) - in;
  cb(rs->op, 0, rs->pt + in, n < rs->max ? (size_t)n : rs->max);
}

/* The extent holding off (extents tile the object in order). */
static int64_t ext_find(const ks_meta_comp_t *m, uint64_t off)
{
  if (m->is_inline)
    return 0;
  uint32_t lo = 0, hi = m->nextents;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (m->extents[mid].offset <= off)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/* ---- opening ---------------------------------------------------------------
 */

static void open_work(uv_work_t *w)
{
  read_state_t *rs = w->data;
  ks_client_t *c = rs->op->_c;
  rs->status = ks_chunk_open(c->kms, rs->ec, &rs->op->tenant, &rs->desc,
                             rs->frag, rs->pt, rs->pt_cap);
}

static void fetch_release(read_state_t *rs)
{
  for (unsigned i = 0; i < KS_EC_MAX_FRAGS; i++) {
    ks_frag_call_release(&rs->calls[i]);
    rs->frag[i] = NULL;
    rs->fstate[i] = FRAG_IDLE;
  }
  free(rs->inl_frag);
  rs->inl_frag = NULL;
}

static void open_after(uv_work_t *w, int status)
{
  read_state_t *rs = w->data;
  if (status != 0 && rs->status == 0)
    rs->status = status;
  fetch_release(rs);
  rs->cur = rs->status == 0 ? rs->want : -1;
  deliver(rs, rs->status);
}

static int pt_reserve(read_state_t *rs, size_t n)
{
  if (rs->pt_cap >= n)
    return 0;
  if (rs->pt != NULL)
    ks_secure_zero(rs->pt, rs->pt_cap);
  free(rs->pt);
  rs->pt_cap = 0;
  rs->pt = malloc(n ? n : 1);
  if (rs->pt == NULL)
    return -ENOMEM;
  rs->pt_cap = n;
  return 0;
}

static int open_start(read_state_t *rs)
{
  rs->cur = -1; /* pt is about to change */
  int rc = pt_reserve(rs, rs->desc.pt_len);
  if (rc != 0)
    return rc;
  rs->status = 0;
  rs->work.data = rs;
  return uv_queue_work(rs->op->_c->loop, &rs->work, open_work, open_after);
}

/* ---- fetching fragments ----------------------------------------------------
 */

static void frag_get_cb(ks_frag_call_t *call, int status)
{
  read_state_t *rs = call->data;
  unsigned i = (unsigned)(call - rs->calls);
  rs->busy--;
  if (status == 0 && call->offset == 0 && call->len == rs->desc.frag_len) {
    rs->fstate[i] = FRAG_HELD;
    rs->frag[i] = call->bytes;
    rs->ok++;
  } else {
    rs->fstate[i] = FRAG_FAILED;
    ks_frag_call_release(call);
  }
  fetch_pump(rs);
}

static int frag_start(read_state_t *rs, unsigned i)
{
  ks_client_t *c = rs->op->_c;
  const ks_meta_loc_t *loc = &rs->x->locs[i];
  if (ks__obj_loc_absent(loc))
    return -ENOENT; /* never written (object.h, DEGRADED WRITES) */
  ks__obj_node_t *node = ks__obj_node(c, loc->node);
  if (node == NULL)
    return -EHOSTUNREACH; /* a node this client does not know */
  ks_frag_req_t req = {.dev = loc->dev};
  memcpy(req.key.chunk_id, rs->addr, KS_CHUNK_ID_LEN);
  req.key.index = (uint8_t)i;
  rs->calls[i].data = rs;
  return ks_frag_get(node->rpc, &rs->calls[i], &req, c->timeout_ms,
                     frag_get_cb);
}

static void fetch_pump(read_state_t *rs)
{
  unsigned k = rs->desc.k, n = rs->desc.k + rs->desc.m;
  while (rs->ok + rs->busy < k && rs->next < n) {
    unsigned i = rs->next++;
    if (frag_start(rs, i) == 0) {
      rs->fstate[i] = FRAG_BUSY;
      rs->busy++;
    } else {
      rs->fstate[i] = FRAG_FAILED;
    }
  }
  if (rs->busy > 0)
    return;
  int rc = rs->ok >= k ? open_start(rs) : -ENODATA;
  if (rc != 0) {
    fetch_release(rs);
    deliver(rs, rc);
  }
}

static int desc_decode(const uint8_t *p, size_t n, ks_chunk_desc_t *d)
{
  ks_dec_t dec;
  ks_dec_init(&dec, p, n);
  int rc = ks_chunk_desc_decode(&dec, d);
  if (rc == 0)
    rc = ks_dec_finish(&dec);
  return rc == 0 ? 0 : KS_ECORRUPT;
}

static int fetch_extent(read_state_t *rs)
{
  const ks_meta_extent_t *x = &rs->op->reply.r.comp.extents[rs->want];
  int rc = desc_decode(x->desc, x->desc_len, &rs->desc);
  unsigned n = rs->desc.k + rs->desc.m;
  if (rc == 0 &&
      (rs->desc.pt_len != x->length || x->nlocs != n || n > KS_EC_MAX_FRAGS))
    rc = KS_ECORRUPT;
  if (rc == 0)
    rc = ks__obj_frag_addr(&rs->desc, rs->addr);
  if (rc == 0 &&
      (rs->ec = ks__obj_ec(rs->op->_c, rs->desc.k, rs->desc.m)) == NULL)
    rc = -ENOMEM;
  if (rc != 0)
    return rc;
  rs->x = x;
  rs->ok = rs->busy = rs->next = 0;
  fetch_pump(rs);
  return 0;
}

/* The inline blob: version, descriptor, fragment 0 of a 1+1 seal. */
static int fetch_inline(read_state_t *rs)
{
  const ks_meta_comp_t *m = &rs->op->reply.r.comp;
  ks_dec_t d;
  size_t dlen = 0, flen = 0;
  ks_dec_init(&d, m->inline_data, m->inline_len);
  uint8_t ver = ks_dec_u8(&d);
  const uint8_t *desc = ks_dec_blob(&d, KS_META_DESC_MAX, &dlen);
  const uint8_t *frag = ks_dec_blob(&d, KS_META_INLINE_MAX, &flen);
  if (ks_dec_finish(&d) != 0 || ver != INLINE_VERSION ||
      desc_decode(desc, dlen, &rs->desc) != 0 || rs->desc.k != 1 ||
      rs->desc.m != 1 || flen != rs->desc.frag_len ||
      rs->desc.pt_len != m->size)
    return KS_ECORRUPT;
  rs->ec = ks__obj_ec(rs->op->_c, 1, 1);
  rs->inl_frag = aligned_alloc(KS_EC_ALIGN, flen);
  if (rs->ec == NULL || rs->inl_frag == NULL)
    return -ENOMEM;
  memcpy(rs->inl_frag, frag, flen);
  rs->frag[0] = rs->inl_frag;
  int rc = open_start(rs);
  if (rc != 0)
    fetch_release(rs);
  return rc;
}

/* ---- entry points ----------------------------------------------------------
 */

int ks_obj_read(ks_obj_op_t *op, uint64_t off, size_t max, ks_obj_read_cb cb)
{
  const ks_meta_comp_t *m = &op->reply.r.comp;
  read_state_t *rs = op->_rd;
  if (!op->_reply_held || off >= m->size || max == 0)
    return -EINVAL;
  if (rs == NULL) {
    rs = op->_rd = calloc(1, sizeof(*rs));
    if (rs == NULL)
      return -ENOMEM;
    rs->op = op;
    rs->cur = -1;
  }
  if (rs->cb != NULL)
    return KS_EBUSY;
  rs->want = ext_find(m, off);
  rs->off = off;
  rs->max = max;
  rs->cb = cb;
  if (rs->want == rs->cur) {
    deliver(rs, 0);
    return 0;
  }
  int rc = m->is_inline ? fetch_inline(rs) : fetch_extent(rs);
  if (rc != 0)
    rs->cb = NULL;
  return rc;
}

void ks__obj_read_free(ks_obj_op_t *op)
{
  read_state_t *rs = op->_rd;
  if (rs == NULL)
    return;
  assert(rs->cb == NULL);
  fetch_release(rs);
  if (rs->pt != NULL)
    ks_secure_zero(rs->pt, rs->pt_cap);
  free(rs->pt);
  free(rs);
  op->_rd = NULL;
}
