/*
 * object_read.c — the read path of ks/object.h: bytes of a got object, a
 * chunk at a time, in the order the caller pulls them, with read-ahead.
 *
 * The read state has 1 + KS__OBJ_READ_AHEAD chunk slots.  Each slot holds
 * or fetches one extent's plaintext; the small reads a streaming caller
 * makes inside one chunk are answered from its slot at no cost.  Fetching
 * an extent into a slot:
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
 * fragment 0 only).
 *
 * READ-AHEAD.  A read that starts where the last one ended (or the first
 * read) also starts fetching the KS__OBJ_READ_AHEAD extents after the one
 * it reads, those that start before the end the caller declared with
 * ks_obj_read_ahead (none without it: a ranged GET never costs a fetch
 * outside its range).  So fragment fetches, decryption on the threadpool
 * and the caller's sending overlap instead of taking turns.  Memory: each
 * slot holds at most k + m fragment answers while fetching, and one
 * plaintext buffer (the chunk size).  A read-ahead that failed is fetched
 * again when the caller reaches it (a transient error costs a retry, not
 * the read).
 *
 * A slot is never reused while its fragment calls or its open are in
 * flight: a read arrives only when the previous one was answered, so the
 * slot that answered it is idle and a demand fetch always finds a slot.
 *
 * RELEASE with fetches in flight (a client that went away mid-GET): fragment
 * calls cannot be cancelled and a threadpool open cannot be stopped, so the
 * read state outlives the op as an orphan that frees itself when the last
 * of them completes; it no longer touches the op (its composition is gone).
 * An open not yet started is cancelled; one running is waited for (it is a
 * few milliseconds of CPU), so no thread uses the client (kms, EC profile)
 * after release and every plaintext buffer is wiped and freed by release
 * itself.  Plaintext buffers are wiped before they are freed.
 */
#include "object_int.h"

#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/frag_client.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define INLINE_VERSION 1
#define NSLOTS (1 + KS__OBJ_READ_AHEAD)

enum { FRAG_IDLE, FRAG_BUSY, FRAG_HELD, FRAG_FAILED };
/* A slot: FREE (holds nothing), FETCH (fragment calls in flight), OPEN
 * (ks_chunk_open queued or running), READY (pt holds the extent), FAILED
 * (status says why). */
enum { SLOT_FREE, SLOT_FETCH, SLOT_OPEN, SLOT_READY, SLOT_FAILED };

typedef struct read_state read_state_t;

typedef struct slot {
  read_state_t *rs;
  int64_t ext; /* extent held or being fetched; -1: none */
  int state;
  int status;
  uint8_t *pt;
  size_t pt_cap;
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
  bool working; /* work queued; its after_work has not run */
  bool ran;     /* open_work returned (under rs->mu) */
} slot_t;

struct read_state {
  ks_obj_op_t *op; /* NULL once released (an orphan) */
  ks_client_t *c;
  ks_id_t tenant;
  slot_t slots[NSLOTS];
  unsigned pending; /* fragment calls and works in flight */
  uv_mutex_t mu;    /* with cv: release waits for a running open */
  uv_cond_t cv;
  /* read-ahead */
  uint64_t ra_end;   /* ks_obj_read_ahead's end; 0: none */
  uint64_t next_off; /* where the last answered read ended */
  bool read_once;
  bool in_read; /* inside ks_obj_read: answers wait for its end */
  /* the read being served */
  int64_t want;
  uint64_t off;
  size_t max;
  ks_obj_read_cb cb;
};

static void fetch_pump(slot_t *s);

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

static int64_t ext_count(const read_state_t *rs)
{
  const ks_meta_comp_t *m = &rs->op->reply.r.comp;
  return m->is_inline ? 1 : (int64_t)m->nextents;
}

/* Answer the waiting read from s (READY or FAILED).  Last thing a caller
 * does: the callback may release the op. */
static void answer(read_state_t *rs, slot_t *s)
{
  ks_obj_read_cb cb = rs->cb;
  rs->cb = NULL;
  if (s->state != SLOT_READY) {
    cb(rs->op, s->status, NULL, 0);
    return;
  }
  uint64_t in = rs->off - ext_off(rs, s->ext);
  uint64_t n = ext_len(rs, s->ext) - in;
  size_t got = n < rs->max ? (size_t)n : rs->max;
  rs->next_off = rs->off + got;
  cb(rs->op, 0, s->pt + in, got);
}

/* The waiting read's slot, when it is done; NULL otherwise. */
static slot_t *answer_due(read_state_t *rs)
{
  if (rs->cb == NULL)
    return NULL;
  for (unsigned i = 0; i < NSLOTS; i++) {
    slot_t *s = &rs->slots[i];
    if (s->ext == rs->want &&
        (s->state == SLOT_READY || s->state == SLOT_FAILED))
      return s;
  }
  return NULL;
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

/* ---- slots and the orphan -------------------------------------------------
 */

static void rs_maybe_free(read_state_t *rs)
{
  if (rs->op != NULL || rs->pending > 0)
    return;
  uv_cond_destroy(&rs->cv);
  uv_mutex_destroy(&rs->mu);
  free(rs);
}

/* Drop the fragment answers of s that are not in flight. */
static void slot_release_frags(slot_t *s)
{
  for (unsigned i = 0; i < KS_EC_MAX_FRAGS; i++) {
    if (s->fstate[i] == FRAG_BUSY)
      continue;
    ks_frag_call_release(&s->calls[i]);
    s->frag[i] = NULL;
    s->fstate[i] = FRAG_IDLE;
  }
  free(s->inl_frag);
  s->inl_frag = NULL;
}

static void pt_free(slot_t *s)
{
  if (s->pt != NULL)
    ks_secure_zero(s->pt, s->pt_cap);
  free(s->pt);
  s->pt = NULL;
  s->pt_cap = 0;
}

/* s's fetch ended with status.  The waiting read is answered at once when
 * it wants s, unless ks_obj_read is on the stack (it answers last). */
static void slot_done(slot_t *s, int status)
{
  read_state_t *rs = s->rs;
  s->status = status;
  s->state = status == 0 ? SLOT_READY : SLOT_FAILED;
  if (!rs->in_read && rs->cb != NULL && rs->want == s->ext)
    answer(rs, s);
}

/* ---- opening ---------------------------------------------------------------
 */

static void open_work(uv_work_t *w)
{
  slot_t *s = w->data;
  read_state_t *rs = s->rs;
  int rc = ks_chunk_open(rs->c->kms, s->ec, &rs->tenant, &s->desc, s->frag,
                         s->pt, s->pt_cap);
  uv_mutex_lock(&rs->mu);
  s->status = rc;
  s->ran = true;
  uv_cond_signal(&rs->cv);
  uv_mutex_unlock(&rs->mu);
}

static void open_after(uv_work_t *w, int status)
{
  slot_t *s = w->data;
  read_state_t *rs = s->rs;
  s->working = false;
  rs->pending--;
  slot_release_frags(s);
  if (rs->op == NULL) {
    rs_maybe_free(rs);
    return;
  }
  if (status != 0 && s->status == 0)
    s->status = status;
  slot_done(s, s->status);
}

static int pt_reserve(slot_t *s, size_t n)
{
  if (s->pt_cap >= n)
    return 0;
  pt_free(s);
  s->pt = malloc(n ? n : 1);
  if (s->pt == NULL)
    return -ENOMEM;
  s->pt_cap = n;
  return 0;
}

static int open_start(slot_t *s)
{
  int rc = pt_reserve(s, s->desc.pt_len);
  if (rc != 0)
    return rc;
  s->state = SLOT_OPEN;
  s->status = 0;
  s->ran = false;
  s->work.data = s;
  rc = uv_queue_work(s->rs->c->loop, &s->work, open_work, open_after);
  if (rc == 0) {
    s->working = true;
    s->rs->pending++;
  }
  return rc;
}

/* ---- fetching fragments ----------------------------------------------------
 */

static void frag_get_cb(ks_frag_call_t *call, int status)
{
  slot_t *s = call->data;
  read_state_t *rs = s->rs;
  unsigned i = (unsigned)(call - s->calls);
  s->busy--;
  rs->pending--;
  if (rs->op == NULL) {
    ks_frag_call_release(call);
    s->fstate[i] = FRAG_IDLE;
    rs_maybe_free(rs);
    return;
  }
  if (status == 0 && call->offset == 0 && call->len == s->desc.frag_len) {
    s->fstate[i] = FRAG_HELD;
    s->frag[i] = call->bytes;
    s->ok++;
  } else {
    s->fstate[i] = FRAG_FAILED;
    ks_frag_call_release(call);
  }
  fetch_pump(s);
}

static int frag_start(slot_t *s, unsigned i)
{
  ks_client_t *c = s->rs->c;
  const ks_meta_loc_t *loc = &s->x->locs[i];
  if (ks__obj_loc_absent(loc))
    return -ENOENT; /* never written (object.h, DEGRADED WRITES) */
  ks__obj_node_t *node = ks__obj_node(c, loc->node);
  if (node == NULL)
    return -EHOSTUNREACH; /* a node this client does not know */
  ks_frag_req_t req = {.dev = loc->dev};
  memcpy(req.key.chunk_id, s->addr, KS_CHUNK_ID_LEN);
  req.key.index = (uint8_t)i;
  s->calls[i].data = s;
  return ks_frag_get(node->rpc, &s->calls[i], &req, c->timeout_ms, frag_get_cb);
}

static void fetch_pump(slot_t *s)
{
  unsigned k = s->desc.k, n = s->desc.k + s->desc.m;
  while (s->ok + s->busy < k && s->next < n) {
    unsigned i = s->next++;
    if (frag_start(s, i) == 0) {
      s->fstate[i] = FRAG_BUSY;
      s->busy++;
      s->rs->pending++;
    } else {
      s->fstate[i] = FRAG_FAILED;
    }
  }
  if (s->busy > 0)
    return;
  int rc = s->ok >= k ? open_start(s) : -ENODATA;
  if (rc != 0) {
    slot_release_frags(s);
    slot_done(s, rc);
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

static int fetch_extent(slot_t *s)
{
  read_state_t *rs = s->rs;
  const ks_meta_extent_t *x = &rs->op->reply.r.comp.extents[s->ext];
  int rc = desc_decode(x->desc, x->desc_len, &s->desc);
  unsigned n = s->desc.k + s->desc.m;
  if (rc == 0 &&
      (s->desc.pt_len != x->length || x->nlocs != n || n > KS_EC_MAX_FRAGS))
    rc = KS_ECORRUPT;
  if (rc == 0)
    rc = ks__obj_frag_addr(&s->desc, s->addr);
  if (rc == 0 && (s->ec = ks__obj_ec(rs->c, s->desc.k, s->desc.m)) == NULL)
    rc = -ENOMEM;
  if (rc != 0)
    return rc;
  s->x = x;
  s->ok = s->busy = s->next = 0;
  fetch_pump(s);
  return 0;
}

/* The inline blob: version, descriptor, fragment 0 of a 1+1 seal. */
static int fetch_inline(slot_t *s)
{
  const ks_meta_comp_t *m = &s->rs->op->reply.r.comp;
  ks_dec_t d;
  size_t dlen = 0, flen = 0;
  ks_dec_init(&d, m->inline_data, m->inline_len);
  uint8_t ver = ks_dec_u8(&d);
  const uint8_t *desc = ks_dec_blob(&d, KS_META_DESC_MAX, &dlen);
  const uint8_t *frag = ks_dec_blob(&d, KS_META_INLINE_MAX, &flen);
  if (ks_dec_finish(&d) != 0 || ver != INLINE_VERSION ||
      desc_decode(desc, dlen, &s->desc) != 0 || s->desc.k != 1 ||
      s->desc.m != 1 || flen != s->desc.frag_len || s->desc.pt_len != m->size)
    return KS_ECORRUPT;
  s->ec = ks__obj_ec(s->rs->c, 1, 1);
  s->inl_frag = aligned_alloc(KS_EC_ALIGN, flen);
  if (s->ec == NULL || s->inl_frag == NULL)
    return -ENOMEM;
  memcpy(s->inl_frag, frag, flen);
  s->frag[0] = s->inl_frag;
  return open_start(s);
}

/* Start fetching extent e into the idle slot s.  A start error leaves s
 * FAILED with it. */
static void slot_fetch(slot_t *s, int64_t e)
{
  assert(s->state != SLOT_FETCH && s->state != SLOT_OPEN);
  s->ext = e;
  s->state = SLOT_FETCH;
  int rc =
      s->rs->op->reply.r.comp.is_inline ? fetch_inline(s) : fetch_extent(s);
  if (rc != 0) {
    slot_release_frags(s);
    slot_done(s, rc);
  }
}

static slot_t *slot_find(read_state_t *rs, int64_t e)
{
  for (unsigned i = 0; i < NSLOTS; i++)
    if (rs->slots[i].ext == e && rs->slots[i].state != SLOT_FREE)
      return &rs->slots[i];
  return NULL;
}

/* An idle slot whose extent is not in [lo, hi]; NULL: none. */
static slot_t *slot_spare(read_state_t *rs, int64_t lo, int64_t hi)
{
  slot_t *best = NULL;
  for (unsigned i = 0; i < NSLOTS; i++) {
    slot_t *s = &rs->slots[i];
    if (s->state == SLOT_FETCH || s->state == SLOT_OPEN)
      continue;
    if (s->state == SLOT_FREE)
      return s;
    if (s->ext < lo || s->ext > hi)
      best = s;
  }
  return best;
}

/* Fetch the extents after w the caller will read next, as slots allow. */
static void read_ahead(read_state_t *rs, int64_t w)
{
  int64_t last = w + KS__OBJ_READ_AHEAD, n = ext_count(rs);
  if (last >= n)
    last = n - 1;
  for (int64_t e = w + 1; e <= last && ext_off(rs, e) < rs->ra_end; e++) {
    if (slot_find(rs, e) != NULL)
      continue;
    slot_t *s = slot_spare(rs, w, last);
    if (s == NULL)
      return;
    slot_fetch(s, e);
  }
}

/* ---- entry points ----------------------------------------------------------
 */

static read_state_t *rs_get(ks_obj_op_t *op)
{
  read_state_t *rs = op->_rd;
  if (rs != NULL)
    return rs;
  rs = calloc(1, sizeof(*rs));
  if (rs == NULL)
    return NULL;
  if (uv_mutex_init(&rs->mu) != 0) {
    free(rs);
    return NULL;
  }
  if (uv_cond_init(&rs->cv) != 0) {
    uv_mutex_destroy(&rs->mu);
    free(rs);
    return NULL;
  }
  rs->op = op;
  rs->c = op->_c;
  rs->tenant = op->tenant;
  for (unsigned i = 0; i < NSLOTS; i++) {
    rs->slots[i].rs = rs;
    rs->slots[i].ext = -1;
  }
  op->_rd = rs;
  return rs;
}

int ks_obj_read_ahead(ks_obj_op_t *op, uint64_t end)
{
  if (!op->_reply_held)
    return -EINVAL;
  read_state_t *rs = rs_get(op);
  if (rs == NULL)
    return -ENOMEM;
  uint64_t size = op->reply.r.comp.size;
  rs->ra_end = end < size ? end : size;
  return 0;
}

int ks_obj_read(ks_obj_op_t *op, uint64_t off, size_t max, ks_obj_read_cb cb)
{
  const ks_meta_comp_t *m = &op->reply.r.comp;
  if (!op->_reply_held || off >= m->size || max == 0)
    return -EINVAL;
  read_state_t *rs = rs_get(op);
  if (rs == NULL)
    return -ENOMEM;
  if (rs->cb != NULL)
    return KS_EBUSY;
  bool seq = !rs->read_once || off == rs->next_off;
  int64_t w = ext_find(m, off);
  rs->read_once = true;
  rs->want = w;
  rs->off = off;
  rs->max = max;
  rs->cb = cb;
  rs->in_read = true;
  slot_t *s = slot_find(rs, w);
  if (s == NULL) /* rather not one holding a chunk fetched ahead */
    s = slot_spare(rs, w, w + KS__OBJ_READ_AHEAD);
  if (s == NULL)
    s = slot_spare(rs, w, w);
  if (s == NULL) { /* cannot happen: the last answered slot is idle */
    rs->in_read = false;
    rs->cb = NULL;
    return KS_EBUSY;
  }
  /* a failed fetch (a read-ahead's, or a read's that is tried again) is
   * fetched anew */
  if (s->ext != w || s->state == SLOT_FREE || s->state == SLOT_FAILED)
    slot_fetch(s, w);
  if (seq && off < rs->ra_end)
    read_ahead(rs, w);
  rs->in_read = false;
  s = answer_due(rs);
  if (s != NULL)
    answer(rs, s);
  return 0;
}

void ks__obj_read_free(ks_obj_op_t *op)
{
  read_state_t *rs = op->_rd;
  if (rs == NULL)
    return;
  assert(rs->cb == NULL);
  op->_rd = NULL;
  rs->op = NULL;
  for (unsigned i = 0; i < NSLOTS; i++) {
    slot_t *s = &rs->slots[i];
    if (s->working && uv_cancel((uv_req_t *)&s->work) != 0) {
      /* running (or done, its after_work due): wait until it no longer
       * touches pt or the client */
      uv_mutex_lock(&rs->mu);
      while (!s->ran)
        uv_cond_wait(&rs->cv, &rs->mu);
      uv_mutex_unlock(&rs->mu);
    }
    if (!s->working)
      slot_release_frags(s); /* else its after_work does */
    pt_free(s);
  }
  rs_maybe_free(rs);
}
