/*
 * object_copy.c — part copy by reading (ks/object.h, ks_obj_mpu_part_copy):
 * UploadPartCopy of a range, of an inline source or of a multipart source,
 * where the part's ETag (the MD5 of its bytes) is not known without
 * reading them.
 *
 * The range is cut into segments, one per source extent it touches (one
 * for an inline source).  The segments are read in order through the read
 * path (ks_obj_read on a reader op that borrows the source composition:
 * fetch, decode, decrypt, verify; the range's next chunks are read ahead
 * while one is hashed) and every answer is hashed on the threadpool, so
 * the ETag costs no loop time.  Then per segment:
 *   - it covers its source extent whole: the extent is reused as it is
 *     (a metadata copy, as ks_obj_copy does; the chunk is this tenant's
 *     and stays immutable), nothing is written;
 *   - it cuts its extent (only the first and the last segment can), or
 *     the source is inline (a blob in the composition, not a chunk an
 *     extent can name): its bytes are gathered into a buffer and stored
 *     through the put path, as an upload_part of those bytes would be
 *     (new chunk id and DEK, EC, placement, write quorum), by a "piece"
 *     op whose delta is captured (KS__OBJ_QOP_CAPTURE) instead of
 *     proposed: its extents are kept for the part.
 * When every segment is read and every piece stored, one PUT_PART delta
 * records the part: the segments' extents rebased to the part, the MD5.
 *
 * Why reuse rather than re-seal everything: a range that follows the
 * source's chunk boundaries (aws s3 cp of a big object copies 8 MiB
 * ranges over 4 MiB chunks) then writes nothing; a cut range writes at
 * most two chunks.  The bytes are read either way: the ETag needs them.
 *
 * Memory is bounded whatever the part's size (up to 5 GiB): the read
 * path's chunk slots (the one read and those read ahead), at most two
 * piece buffers (each at most one source extent) and their put state
 * (window sealed chunks).
 *
 * Order and lifetimes: one read or hash at a time (an answer's bytes are
 * valid only until the next read); pieces run beside the reads.  A piece's
 * end is handed back to the loop through a threadpool no-op before it is
 * acted on: its callback runs inside the put path's frames (the capture
 * is called from them), which must be gone before the part copy can
 * finish and its caller release everything.  On an error nothing new
 * starts; the op finishes once the read, the hash and the pieces in
 * flight have ended.  Chunks of pieces already stored stay as garbage
 * (no GC yet, as for any failed put).  Plaintext buffers are wiped
 * before they are freed.
 */
#include "object_int.h"

#include "ks/codec.h"
#include "ks/crypto.h"
#include "ks/err.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Segments cut from their extent: the first and the last; an inline
 * source is one. */
#define PIECES_MAX 2

typedef struct copy_state copy_state_t;

/* One source extent's share of the range (the whole blob when inline). */
typedef struct copy_seg {
  uint64_t off, len; /* in the source */
  uint32_t ext;      /* the source extent, when reused */
  int piece;         /* index into pieces, or -1: the extent is reused */
} copy_seg_t;

typedef struct copy_piece {
  copy_state_t *cs;
  ks_obj_op_t op; /* a PUT_PART of buf, its delta captured */
  uv_work_t work; /* back to the loop after its end */
  struct iovec iov;
  uint8_t *buf;
  size_t len;
  bool used, busy;
  int status;
  const ks_meta_extent_t *made; /* its extents (in op's put state) */
  uint32_t nmade;
} copy_piece_t;

struct copy_state {
  ks_obj_op_t *op;
  ks_obj_op_t rd; /* reader: reply.r.comp is a copy of *op->src */
  ks_hash_ctx_t md5;
  copy_seg_t *segs;
  uint64_t len;        /* the part's */
  uint32_t nsegs, seg; /* seg: the one being read */
  uint64_t pos;        /* next source byte to read */
  copy_piece_t pieces[PIECES_MAX];
  unsigned npieces, pieces_busy;
  /* the answer being hashed */
  uv_work_t hash_work;
  const uint8_t *hp;
  size_t hn;
  uint8_t *hdst; /* where the answer goes in a piece's buffer, or NULL */
  int hash_status;
  bool io; /* a read or its hash is in flight */
  bool delta, pumping, again;
  int status;
};

static void copy_pump(copy_state_t *cs);

static void buf_wipe_free(uint8_t *p, size_t n)
{
  if (p != NULL)
    ks_secure_zero(p, n);
  free(p);
}

/* ---- pieces: cut extents stored again through the put path -------------- */

static void piece_noop(uv_work_t *w)
{
  (void)w;
}

static void piece_after(uv_work_t *w, int status)
{
  copy_piece_t *pc = w->data;
  copy_state_t *cs = pc->cs;
  (void)status; /* a no-op cannot be cancelled: nothing else cancels */
  pc->busy = false;
  cs->pieces_busy--;
  buf_wipe_free(pc->buf, pc->len); /* stored: the put is done with it */
  pc->buf = NULL;
  if (pc->status != 0 && cs->status == 0)
    cs->status = pc->status;
  copy_pump(cs);
}

static void piece_cb(ks_obj_op_t *op, int status)
{
  copy_piece_t *pc = op->data;
  pc->status = status;
  pc->work.data = pc;
  /* out of the put path's frames before anything acts on it */
  if (uv_queue_work(op->_c->loop, &pc->work, piece_noop, piece_after) != 0)
    piece_after(&pc->work, 0); /* cannot happen: work_cb is set */
}

int ks__obj_copy_capture(ks_obj_op_t *op, const ks_meta_delta_t *d)
{
  copy_piece_t *pc = op->data;
  assert(d->type == KS_DELTA_PUT_PART && d->comp.size == pc->len);
  pc->made = d->comp.extents;
  pc->nmade = d->comp.nextents;
  ks__obj_finish(op, 0);
  return 0;
}

/* Store pc's bytes as chunks: the put path of an upload_part. */
static int piece_start(copy_state_t *cs, copy_piece_t *pc)
{
  const ks_obj_op_t *op = cs->op;
  /* the ETag of the piece's own delta is unused: no hash is made */
  static const uint8_t md5_unused[KS_MD5_LEN] = {0};
  pc->iov = (struct iovec){pc->buf, pc->len};
  pc->op = (ks_obj_op_t){.data = pc,
                         .tenant = op->tenant,
                         .bucket = op->bucket,
                         .key = op->key,
                         .upload_id = op->upload_id,
                         .part = op->part,
                         .body = &pc->iov,
                         .nbody = 1,
                         .body_len = pc->len,
                         .md5 = md5_unused,
                         .now_ns = op->now_ns};
  ks__obj_op_init(op->_c, &pc->op, piece_cb);
  pc->op._shard = op->_shard;
  pc->op._qop = KS__OBJ_QOP_CAPTURE;
  pc->busy = true;
  cs->pieces_busy++;
  int rc = ks__obj_put_start_part(&pc->op);
  if (rc != 0) {
    pc->busy = false;
    cs->pieces_busy--;
  }
  return rc;
}

/* ---- reading and hashing ---------------------------------------------- */

static void hash_work(uv_work_t *w)
{
  copy_state_t *cs = w->data;
  if (cs->hdst != NULL)
    memcpy(cs->hdst, cs->hp, cs->hn);
  cs->hash_status = ks_hash_update(&cs->md5, cs->hp, cs->hn);
}

static void hash_after(uv_work_t *w, int status)
{
  copy_state_t *cs = w->data;
  cs->io = false;
  if (status == 0)
    status = cs->hash_status;
  if (status != 0 && cs->status == 0)
    cs->status = status;
  if (cs->status == 0) {
    const copy_seg_t *s = &cs->segs[cs->seg];
    cs->pos += cs->hn;
    if (cs->pos == s->off + s->len) {
      if (s->piece >= 0)
        cs->status = piece_start(cs, &cs->pieces[s->piece]);
      cs->seg++; /* piece_start never calls back before it returns */
    }
  }
  copy_pump(cs);
}

/* May run inside ks_obj_read (bytes of the chunk already open). */
static void read_cb(ks_obj_op_t *rd, int status, const void *p, size_t n)
{
  copy_state_t *cs = rd->data;
  if (status == 0) {
    const copy_seg_t *s = &cs->segs[cs->seg];
    assert(n >= 1 && n <= s->off + s->len - cs->pos);
    cs->hp = p;
    cs->hn = n;
    cs->hdst =
        s->piece >= 0 ? cs->pieces[s->piece].buf + (cs->pos - s->off) : NULL;
    cs->hash_work.data = cs;
    status =
        uv_queue_work(cs->op->_c->loop, &cs->hash_work, hash_work, hash_after);
    if (status == 0)
      return;
  }
  cs->io = false;
  if (cs->status == 0)
    cs->status = status;
  copy_pump(cs);
}

/* Read the next bytes of the current segment (a piece's buffer is made
 * at its first read). */
static int copy_read(copy_state_t *cs)
{
  const copy_seg_t *s = &cs->segs[cs->seg];
  if (s->piece >= 0 && cs->pos == s->off) {
    copy_piece_t *pc = &cs->pieces[s->piece];
    pc->buf = malloc(pc->len);
    if (pc->buf == NULL)
      return -ENOMEM;
  }
  uint64_t left = s->off + s->len - cs->pos;
  cs->io = true;
  int rc = ks_obj_read(&cs->rd, cs->pos,
                       left < SIZE_MAX ? (size_t)left : SIZE_MAX, read_cb);
  if (rc != 0)
    cs->io = false;
  return rc;
}

/* ---- the part ---------------------------------------------------------- */

/* The part's extents: each segment's, rebased to the part. */
static int copy_extents(copy_state_t *cs, ks_meta_extent_t **out, uint32_t *n)
{
  const ks_meta_comp_t *src = cs->op->src;
  uint64_t total = 0;
  for (uint32_t i = 0; i < cs->nsegs; i++) {
    const copy_seg_t *s = &cs->segs[i];
    total += s->piece >= 0 ? cs->pieces[s->piece].nmade : 1;
  }
  if (total > KS_META_EXTENTS_MAX)
    return KS_ETOOBIG;
  ks_meta_extent_t *x = calloc(total ? total : 1, sizeof(*x));
  if (x == NULL)
    return -ENOMEM;
  uint64_t off = 0;
  uint32_t j = 0;
  for (uint32_t i = 0; i < cs->nsegs; i++) {
    const copy_seg_t *s = &cs->segs[i];
    if (s->piece < 0) {
      assert(src->extents[s->ext].length == s->len);
      x[j] = src->extents[s->ext];
      x[j++].offset = off;
    } else {
      const copy_piece_t *pc = &cs->pieces[s->piece];
      for (uint32_t e = 0; e < pc->nmade; e++) {
        x[j] = pc->made[e];
        x[j++].offset = off + pc->made[e].offset;
      }
    }
    off += s->len;
  }
  *out = x;
  *n = j;
  return 0;
}

static int copy_delta(copy_state_t *cs)
{
  ks_obj_op_t *op = cs->op;
  uint8_t md5[KS_MD5_LEN];
  char etag[2 * KS_MD5_LEN + 1];
  ks_meta_extent_t *x = NULL;
  uint32_t n = 0;
  int rc = ks_hash_final(&cs->md5, md5);
  if (rc == 0 && ks_hex_encode(etag, sizeof(etag), md5, KS_MD5_LEN) < 0)
    rc = -EINVAL;
  if (rc == 0)
    rc = copy_extents(cs, &x, &n);
  if (rc != 0)
    return rc;
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_PART,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .key = op->key,
                       .upload_id = op->upload_id,
                       .part = op->part};
  d.comp.size = cs->len;
  d.comp.etag = etag;
  d.comp.nextents = n;
  d.comp.extents = x;
  rc = ks__obj_write(op, &d); /* the delta is encoded by now */
  free(x);
  return rc;
}

/* One turn: start what can start; the status to finish the op with, or
 * 0 while something runs. */
static int copy_turn(copy_state_t *cs)
{
  if (cs->status == 0 && !cs->io && cs->seg < cs->nsegs) {
    /* an error answered inside ks_obj_read is already in cs->status */
    int rc = copy_read(cs);
    if (rc != 0 && cs->status == 0)
      cs->status = rc;
  }
  if (cs->io || cs->pieces_busy > 0 || cs->delta)
    return 0;
  if (cs->status != 0)
    return cs->status;
  assert(cs->seg == cs->nsegs);
  cs->delta = true; /* the op now ends with the delta's callback */
  return copy_delta(cs);
}

/* Everything that ends comes back here; a read answered at once comes
 * back inside a turn and is taken by the next one. */
static void copy_pump(copy_state_t *cs)
{
  if (cs->pumping) {
    cs->again = true;
    return;
  }
  cs->pumping = true;
  int rc = 0;
  do {
    cs->again = false;
    rc = copy_turn(cs);
  } while (cs->again && rc == 0);
  cs->pumping = false;
  if (rc != 0)
    ks__obj_finish(cs->op, rc); /* last: the caller may release cs */
}

/* The segments of [off, off + len) of src. */
static int copy_plan(copy_state_t *cs, uint64_t off, uint64_t len)
{
  const ks_meta_comp_t *src = cs->op->src;
  uint32_t n = 0, first = 0;
  for (uint32_t i = 0; !src->is_inline && i < src->nextents; i++) {
    const ks_meta_extent_t *x = &src->extents[i];
    if (x->offset + x->length <= off || x->offset >= off + len)
      continue;
    first = n == 0 ? i : first;
    n++;
  }
  if (src->is_inline && len > 0)
    n = 1;
  cs->segs = calloc(n ? n : 1, sizeof(*cs->segs));
  if (cs->segs == NULL)
    return -ENOMEM;
  for (uint32_t j = 0; j < n; j++) {
    copy_seg_t *s = &cs->segs[j];
    uint64_t xo = src->is_inline ? 0 : src->extents[first + j].offset;
    uint64_t xl = src->is_inline ? src->size : src->extents[first + j].length;
    s->off = xo > off ? xo : off;
    s->len = (xo + xl < off + len ? xo + xl : off + len) - s->off;
    s->ext = first + j;
    s->piece = -1;
    if (src->is_inline || s->len != xl) {
      if (cs->npieces == PIECES_MAX)
        return KS_ECORRUPT; /* extents that do not tile the source */
      s->piece = (int)cs->npieces++;
      cs->pieces[s->piece].used = true;
      cs->pieces[s->piece].len = (size_t)s->len;
    }
  }
  cs->nsegs = n;
  cs->len = len;
  cs->pos = off;
  return 0;
}

int ks__obj_copy_start(ks_obj_op_t *op)
{
  const ks_meta_comp_t *src = op->src;
  uint64_t len = op->src_len ? op->src_len : src->size - op->src_off;
  copy_state_t *cs = calloc(1, sizeof(*cs));
  if (cs == NULL)
    return -ENOMEM;
  op->_cp = cs;
  cs->op = op;
  for (unsigned i = 0; i < PIECES_MAX; i++)
    cs->pieces[i].cs = cs;
  int rc = ks_hash_init(&cs->md5, KS_HASH_MD5);
  if (rc == 0)
    rc = copy_plan(cs, op->src_off, len);
  if (rc != 0)
    return rc;
  /* the reader borrows the source composition: it holds no reply of its
   * own (_reply_held is cleared before its release) */
  cs->rd.data = cs;
  cs->rd.tenant = op->tenant;
  cs->rd._c = op->_c;
  cs->rd.reply.r.comp = *src;
  cs->rd._reply_held = true;
  /* the next chunks are fetched while one is hashed */
  rc = ks_obj_read_ahead(&cs->rd, op->src_off + len);
  if (rc != 0)
    return rc;
  copy_pump(cs);
  return 0;
}

void ks__obj_copy_free(ks_obj_op_t *op)
{
  copy_state_t *cs = op->_cp;
  if (cs == NULL)
    return;
  assert(!cs->io && cs->pieces_busy == 0);
  for (unsigned i = 0; i < PIECES_MAX; i++) {
    copy_piece_t *pc = &cs->pieces[i];
    if (pc->used)
      ks_obj_op_release(&pc->op);
    buf_wipe_free(pc->buf, pc->len);
  }
  cs->rd._reply_held = false;
  ks_obj_op_release(&cs->rd);
  ks_hash_free(&cs->md5);
  free(cs->segs);
  free(cs);
  op->_cp = NULL;
}
