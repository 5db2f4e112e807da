/*
 * object_put.c — the write path of ks/object.h: a body becomes sealed
 * chunks on chunk daemons (or one sealed inline blob) and then one delta.
 *
 * A put runs `window` slots.  A slot takes the next chunk of the body,
 * seals it on the threadpool (gathering the plaintext first when it spans
 * iovec pieces), then on the loop places it and writes its k+m fragments
 * in parallel (those that have a device); when all have answered and at
 * least the write quorum are stored, it records the extent (descriptor and
 * locations, the marker for each fragment not stored, in the put's arena)
 * and takes the next chunk (object.h, DEGRADED WRITES).  A fragment that
 * fails asks for its node's device list again (object_int.h), so the
 * next chunks are placed on what the daemon has now.  The body's MD5
 * (the ETag), when the caller did not give it, is one more threadpool job.
 * When every chunk is stored and the MD5 is known, the delta goes to meta.
 *
 * Failure: the first error stops new chunks (a chunk short of its quorum
 * is one: KS_EBUSY, whatever its fragments answered, since chunkd's and
 * the RPC layer's errno values would read as metadata answers: -ENOENT is
 * also "no such key"); the op finishes with it once the slots in flight
 * have drained (their buffers are theirs until then).  Fragments already
 * written stay as garbage (no GC yet).
 *
 * Inline blob (composition kind 1): u8 version (1) | blob chunk descriptor
 * | blob fragment 0 of a 1+1 seal (ciphertext, GCM tag, zero padding).
 */
#include "object_int.h"

#include "ks/codec.h"
#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/frag_client.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define INLINE_VERSION 1

typedef struct put_state put_state_t;

typedef struct put_slot {
  uv_work_t work;
  put_state_t *ps;
  uint64_t index; /* chunk number */
  size_t len;
  uint8_t *frags;
  size_t frag_len;
  ks_chunk_desc_t desc;
  uint8_t addr[KS_CHUNK_ID_LEN];
  unsigned place[KS_META_LOCS_MAX];
  /* fragment i's device, copied at placement (c->devs may be rebuilt
   * while the writes run), and its write's status: KS_EBUSY until one
   * answered, and for a fragment with no device */
  ks__obj_dev_t where[KS_META_LOCS_MAX];
  int fstatus[KS_META_LOCS_MAX];
  ks_frag_call_t *calls;
  unsigned pending;
  int status;
} put_slot_t;

struct put_state {
  ks_obj_op_t *op;
  uint8_t type;
  bool inl;
  uint64_t nchunks, next, stored;
  unsigned nslots, active;
  put_slot_t *slots;
  ks_meta_extent_t *ext;
  ks_meta_arena_t arena;
  uv_work_t md5_work;
  bool md5_busy;
  int md5_status;
  uint8_t md5[KS_MD5_LEN];
  int status;
  uint8_t *inline_blob;
  size_t inline_len;
};

static void put_continue(put_state_t *ps);

/* ---- threadpool jobs ---------------------------------------------------- */

/* Copy body[off, off + n) to dst. */
static void body_copy(const ks_obj_op_t *op, uint64_t off, uint8_t *dst,
                      size_t n)
{
  for (int i = 0; i < op->nbody && n > 0; i++) {
    size_t len = op->body[i].iov_len;
    if (off >= len) {
      off -= len;
      continue;
    }
    size_t take = len - off < n ? len - off : n;
    assert(op->body[i].iov_base != NULL);
    memcpy(dst, (const uint8_t *)op->body[i].iov_base + off, take);
    dst += take;
    n -= take;
    off = 0;
  }
}

/* body[off, off + n) in one piece, or NULL when it spans pieces. */
static const uint8_t *body_piece(const ks_obj_op_t *op, uint64_t off, size_t n)
{
  for (int i = 0; i < op->nbody; i++) {
    size_t len = op->body[i].iov_len;
    if (off < len)
      return len - off >= n ? (const uint8_t *)op->body[i].iov_base + off
                            : NULL;
    off -= len;
  }
  return NULL;
}

/* The tenant's keys are made on its first write: the bucket check has
 * shown that meta knows the tenant (it owns the bucket), and the key
 * provider's tenant list is not kept in step with meta's otherwise.  A
 * concurrent first write may have made them already (-EEXIST). */
static int kms_tenant_ensure(ks_kms_t *kms, const ks_id_t *tenant)
{
  int rc = ks_kms_tenant_create(kms, tenant);
  return rc == -EEXIST ? 0 : rc;
}

static void seal_work(uv_work_t *w)
{
  put_slot_t *s = w->data;
  const ks_obj_op_t *op = s->ps->op;
  ks_client_t *c = op->_c;
  uint64_t off = s->index * c->chunk_size;
  const uint8_t *pt = body_piece(op, off, s->len);
  uint8_t *copy = NULL;
  if (pt == NULL && s->len > 0) {
    copy = malloc(s->len);
    if (copy == NULL) {
      s->status = -ENOMEM;
      return;
    }
    body_copy(op, off, copy, s->len);
    pt = copy;
  }
  unsigned k = s->ps->inl ? 1 : c->k, m = s->ps->inl ? 1 : c->m;
  ks_ec_t *ec = s->ps->inl ? c->ec_inline : c->ec;
  s->status = ks_chunk_seal(c->kms, ec, &op->tenant, pt, s->len, s->frags,
                            (k + m) * s->frag_len, &s->desc);
  if (s->status == -ENOKEY && kms_tenant_ensure(c->kms, &op->tenant) == 0)
    s->status = ks_chunk_seal(c->kms, ec, &op->tenant, pt, s->len, s->frags,
                              (k + m) * s->frag_len, &s->desc);
  if (copy != NULL) {
    ks_secure_zero(copy, s->len);
    free(copy);
  }
}

static void md5_work(uv_work_t *w)
{
  put_state_t *ps = w->data;
  const ks_obj_op_t *op = ps->op;
  ks_hash_ctx_t h = KS_HASH_CTX_INIT;
  int rc = ks_hash_init(&h, KS_HASH_MD5);
  for (int i = 0; rc == 0 && i < op->nbody; i++)
    rc = ks_hash_update(&h, op->body[i].iov_base, op->body[i].iov_len);
  if (rc == 0)
    rc = ks_hash_final(&h, ps->md5);
  ks_hash_free(&h);
  ps->md5_status = rc;
}

static void md5_after(uv_work_t *w, int status)
{
  put_state_t *ps = w->data;
  ps->md5_busy = false;
  if (status != 0 || ps->md5_status != 0)
    ps->status = ps->status ? ps->status : (status ? status : ps->md5_status);
  put_continue(ps);
}

/* ---- a slot's life ------------------------------------------------------ */

static void slot_free(put_slot_t *s)
{
  free(s->frags);
  s->frags = NULL;
  free(s->calls);
  s->calls = NULL;
}

static void slot_done(put_slot_t *s)
{
  put_state_t *ps = s->ps;
  if (s->status != 0 && ps->status == 0)
    ps->status = s->status;
  slot_free(s);
  ps->active--;
  if (s->status == 0)
    ps->stored++;
  put_continue(ps);
}

/* Record the extent of a stored chunk (descriptor and locations). */
static int slot_extent(put_slot_t *s)
{
  put_state_t *ps = s->ps;
  ks_client_t *c = ps->op->_c;
  unsigned n = c->k + c->m;
  ks_enc_t e = KS_ENC_INIT;
  ks_chunk_desc_encode(&e, &s->desc);
  int rc = ks_enc_finish(&e);
  uint8_t *d = rc ? NULL : ks_meta_arena_alloc(&ps->arena, e.buf.len);
  ks_meta_loc_t *locs = ks_meta_arena_alloc(&ps->arena, n * sizeof(*locs));
  if (rc == 0 && (d == NULL || locs == NULL))
    rc = -ENOMEM;
  if (rc == 0) {
    memcpy(d, e.buf.data, e.buf.len);
    for (unsigned i = 0; i < n; i++) {
      const ks__obj_dev_t *dev = &s->where[i];
      locs[i] = s->fstatus[i] == 0
                    ? (ks_meta_loc_t){c->nodes[dev->node].addr, dev->id}
                    : ks__obj_loc_none;
    }
    ps->ext[s->index] = (ks_meta_extent_t){
        s->index * c->chunk_size, s->len, d, (uint32_t)e.buf.len, n, locs};
  }
  ks_enc_free(&e);
  return rc;
}

/* The quorum (object.h, DEGRADED WRITES): enough fragments stored for
 * the chunk to be acknowledged.  An acknowledged chunk with `stored`
 * fragments survives the loss of stored - k more of their holders. */
static int slot_quorum(const put_slot_t *s)
{
  const ks_client_t *c = s->ps->op->_c;
  unsigned stored = 0;
  for (unsigned i = 0; i < c->k + c->m; i++)
    stored += s->fstatus[i] == 0;
  return stored >= c->write_quorum ? 0 : KS_EBUSY;
}

static void slot_frag_done(put_slot_t *s)
{
  if (--s->pending > 0)
    return;
  if (s->status == 0)
    s->status = slot_quorum(s);
  if (s->status == 0)
    s->status = slot_extent(s);
  slot_done(s);
}

/* A fragment write failed: remember why, and have its node listed again
 * (an unknown device was replaced, a failed one is to be avoided). */
static void frag_failed(put_slot_t *s, unsigned i, int status)
{
  ks_client_t *c = s->ps->op->_c;
  s->fstatus[i] = status;
  ks__obj_refresh(c, &c->nodes[s->where[i].node]);
}

static void frag_put_cb(ks_frag_call_t *call, int status)
{
  put_slot_t *s = call->data;
  unsigned i = (unsigned)(call - s->calls);
  ks_frag_call_release(call);
  if (status != 0)
    frag_failed(s, i, status);
  else
    s->fstatus[i] = 0;
  slot_frag_done(s);
}

static void slot_frags_put(put_slot_t *s)
{
  ks_client_t *c = s->ps->op->_c;
  unsigned n = c->k + c->m, placed = 0;
  for (unsigned i = 0; i < n; i++)
    s->fstatus[i] = KS_EBUSY;
  int rc = ks__obj_frag_addr(&s->desc, s->addr);
  if (rc == 0) {
    rc = ks_client_place(c, s->desc.id, n, s->place);
    placed = rc > 0 ? (unsigned)rc : 0;
    rc = rc < 0 ? rc : 0;
  }
  if (rc == 0 && placed < c->write_quorum) {
    ks__obj_refresh_older(c, 0);
    rc = KS_EBUSY;
  }
  for (unsigned i = 0; i < placed; i++)
    s->where[i] = c->devs[s->place[i]];
  s->calls = rc ? NULL : calloc(n ? n : 1, sizeof(*s->calls));
  if (rc == 0 && s->calls == NULL)
    rc = -ENOMEM;
  s->status = rc;
  s->pending = 1; /* held while starting */
  for (unsigned i = 0; rc == 0 && i < placed; i++) {
    const ks__obj_dev_t *dev = &s->where[i];
    ks_frag_put_req_t req = {
        .dev = dev->id, .k = (uint8_t)c->k, .m = (uint8_t)c->m};
    memcpy(req.key.chunk_id, s->addr, KS_CHUNK_ID_LEN);
    req.key.index = (uint8_t)i;
    struct iovec iov = {s->frags + (size_t)i * s->frag_len, s->frag_len};
    s->calls[i].data = s;
    int frc = ks_frag_put(c->nodes[dev->node].rpc, &s->calls[i], &req, &iov, 1,
                          c->timeout_ms, frag_put_cb);
    if (frc == 0)
      s->pending++;
    else
      frag_failed(s, i, frc);
  }
  slot_frag_done(s);
}

/* The inline blob: version, descriptor, fragment 0. */
static int slot_inline(put_slot_t *s)
{
  put_state_t *ps = s->ps;
  ks_enc_t e = KS_ENC_INIT;
  ks_enc_u8(&e, INLINE_VERSION);
  ks_chunk_desc_t *d = &s->desc;
  ks_enc_t de = KS_ENC_INIT;
  ks_chunk_desc_encode(&de, d);
  ks_enc_blob(&e, de.buf.data, de.buf.len);
  ks_enc_blob(&e, s->frags, s->frag_len);
  int rc = ks_enc_finish(&de);
  if (rc == 0)
    rc = ks_enc_finish(&e);
  if (rc == 0) {
    ps->inline_blob = ks_meta_arena_alloc(&ps->arena, e.buf.len);
    ps->inline_len = e.buf.len;
    rc = ps->inline_blob ? 0 : -ENOMEM;
  }
  if (rc == 0)
    memcpy(ps->inline_blob, e.buf.data, e.buf.len);
  ks_enc_free(&de);
  ks_enc_free(&e);
  return rc;
}

static void seal_after(uv_work_t *w, int status)
{
  put_slot_t *s = w->data;
  if (s->status == 0 && status != 0)
    s->status = status;
  if (s->status == 0 && s->ps->status == 0 && !s->ps->inl) {
    slot_frags_put(s);
    return;
  }
  if (s->status == 0 && s->ps->inl)
    s->status = slot_inline(s);
  slot_done(s);
}

static int slot_start(put_state_t *ps, put_slot_t *s)
{
  ks_client_t *c = ps->op->_c;
  unsigned k = ps->inl ? 1 : c->k, m = ps->inl ? 1 : c->m;
  uint64_t off = ps->next * c->chunk_size;
  *s = (put_slot_t){.ps = ps, .index = ps->next};
  s->len =
      (size_t)(ps->op->body_len - off < c->chunk_size ? ps->op->body_len - off
                                                      : c->chunk_size);
  s->frag_len = ks_chunk_frag_len(k, s->len);
  s->frags = aligned_alloc(KS_EC_ALIGN, (k + m) * s->frag_len);
  if (s->frags == NULL)
    return -ENOMEM;
  s->work.data = s;
  int rc = uv_queue_work(c->loop, &s->work, seal_work, seal_after);
  if (rc != 0) {
    slot_free(s);
    return rc;
  }
  ps->next++;
  ps->active++;
  return 0;
}

/* ---- the put --------------------------------------------------------------
 */

static put_slot_t *slot_idle(put_state_t *ps)
{
  for (unsigned i = 0; i < ps->nslots; i++)
    if (ps->slots[i].ps == NULL || ps->slots[i].frags == NULL)
      return &ps->slots[i];
  return NULL;
}

static int put_delta(put_state_t *ps)
{
  ks_obj_op_t *op = ps->op;
  const uint8_t *md5 = op->md5 ? op->md5 : ps->md5;
  char etag[2 * KS_MD5_LEN + 1];
  if (ks_hex_encode(etag, sizeof(etag), md5, KS_MD5_LEN) < 0)
    return -EINVAL;
  ks_meta_delta_t d = {.type = ps->type,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .key = op->key,
                       .upload_id = op->upload_id,
                       .part = op->part};
  if (op->attrs != NULL && ps->type == KS_DELTA_PUT_OBJECT)
    d.comp = *op->attrs;
  d.comp.ino = 0;
  d.comp.mtime_ns = 0;
  d.comp.size = op->body_len;
  d.comp.etag = etag;
  d.comp.is_inline = ps->inl;
  d.comp.inline_data = ps->inline_blob;
  d.comp.inline_len = (uint32_t)ps->inline_len;
  d.comp.nextents = ps->inl ? 0 : (uint32_t)ps->nchunks;
  d.comp.extents = ps->inl ? NULL : ps->ext;
  return ks__obj_write(op, &d);
}

/* Start what can start; 0 while something runs (or the delta started), the
 * error to finish with when nothing is left in flight. */
static int put_pump(put_state_t *ps)
{
  while (ps->status == 0 && ps->next < ps->nchunks) {
    put_slot_t *s = slot_idle(ps);
    if (s == NULL)
      break;
    int rc = slot_start(ps, s);
    if (rc != 0)
      ps->status = rc;
  }
  if (ps->active > 0 || ps->md5_busy)
    return 0;
  if (ps->status != 0)
    return ps->status;
  assert(ps->stored == ps->nchunks);
  return put_delta(ps);
}

static void put_continue(put_state_t *ps)
{
  int rc = put_pump(ps);
  if (rc != 0)
    ks__obj_finish(ps->op, rc);
}

static int put_start(ks_obj_op_t *op, uint8_t type, bool allow_inline)
{
  ks_client_t *c = op->_c;
  put_state_t *ps = calloc(1, sizeof(*ps));
  if (ps == NULL)
    return -ENOMEM;
  op->_st = ps;
  ps->op = op;
  ps->type = type;
  ps->inl = allow_inline && op->body_len > 0 && op->body_len <= c->inline_max;
  ps->nchunks =
      ps->inl ? 1 : (op->body_len + c->chunk_size - 1) / c->chunk_size;
  if (!ps->inl && ps->nchunks > 0) {
    ks__obj_refresh_older(c, c->refresh_ms);
    if (c->ndevs < c->write_quorum) {
      ks__obj_refresh_older(c, 0); /* devices may be back: look again */
      return KS_EBUSY;
    }
  }
  if (ps->nchunks > KS_META_EXTENTS_MAX)
    return KS_ETOOBIG;
  ps->nslots = c->window;
  ps->slots = calloc(ps->nslots, sizeof(*ps->slots));
  ps->ext = calloc(ps->nchunks ? ps->nchunks : 1, sizeof(*ps->ext));
  if (ps->slots == NULL || ps->ext == NULL)
    return -ENOMEM;
  if (op->md5 == NULL) {
    ps->md5_work.data = ps;
    int rc = uv_queue_work(c->loop, &ps->md5_work, md5_work, md5_after);
    if (rc != 0)
      return rc;
    ps->md5_busy = true;
  }
  return put_pump(ps);
}

int ks__obj_put_start_object(ks_obj_op_t *op)
{
  return put_start(op, KS_DELTA_PUT_OBJECT, true);
}

int ks__obj_put_start_part(ks_obj_op_t *op)
{
  return put_start(op, KS_DELTA_PUT_PART, false);
}

void ks__obj_put_free(ks_obj_op_t *op)
{
  put_state_t *ps = op->_st;
  if (ps == NULL)
    return;
  assert(ps->active == 0 && !ps->md5_busy);
  ks_meta_arena_free(&ps->arena);
  free(ps->slots);
  free(ps->ext);
  free(ps);
  op->_st = NULL;
}
