/*
 * fuzz_rpc_frame.c — libFuzzer target for the RPC frame codec and framer
 * (common/rpc_frame.c): the code that turns untrusted bytes from the network
 * into messages.
 *
 * Input: byte 0 chooses how the stream is cut into reads (and, bit 6, whether
 * to repair checksums first, see fix_crcs); bytes 1.. are the byte stream a
 * connection receives.  The stream goes through a framer with
 * small limits (max_body 4096, max_bulk 65536) three ways:
 *   1. copy mode, as conn_feed() does with a staging buffer: reads of
 *      input-chosen sizes, each copied window by window into the framer;
 *   2. direct mode, as a read into ks__framer_window() does (plain TCP bulk
 *      reads, SSL_read): each read fills at most the current window;
 *   3. the whole stream as one read (copy mode), the reference;
 *   4. sealed mode (TLS, rpc_tls.c): bulk followed by a 16-byte tag that a
 *      stand-in open function accepts when its first byte is the bulk
 *      length's low byte; checks the window, the message invariants and
 *      poisoning (the layout differs, so no comparison with 1-3).
 * Besides "no crash, no leak, no UB", it checks:
 *   - the window is never empty;
 *   - every message is exactly the bytes of its frame in the stream, with
 *     sane lengths and alignment, and re-encodes (ks__out_prepare) to the
 *     same header bytes;
 *   - after an error the framer is poisoned: later commits return the same
 *     error and no message;
 *   - all three ways yield the same messages and the same error, however
 *     the stream is cut;
 *   - ks_rpc_hdr_decode of the first 48 bytes agrees with the framer, and a
 *     header it accepts re-encodes to the same 48 bytes.
 */
#include "../../common/rpc_int.h"

#include "ks/crc32c.h"
#include "ks/endian.h"
#include "ks/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_BODY 4096U
#define FZ_MAX_BULK 65536U

#define FZ_CHECK(cond) \
  do {                 \
    if (!(cond))       \
      abort();         \
  } while (0)

/* Read sizes: a xorshift sequence seeded by the control byte.  High bit
 * set: reads up to 8 KiB; else up to 1..128 bytes (many tiny reads). */
typedef struct fz_cuts {
  uint32_t state;
  size_t limit;
} fz_cuts_t;

static void cuts_init(fz_cuts_t *c, uint8_t ctl)
{
  c->state = (uint32_t)(ctl | 1U) * 2654435761U;
  if (c->state == 0)
    c->state = 1;
  c->limit = (ctl & 0x80) ? 8192 : (size_t)(ctl & 0x7F) + 1;
}

static size_t cuts_next(fz_cuts_t *c)
{
  uint32_t x = c->state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  c->state = x;
  return 1 + (size_t)x % c->limit;
}

/* Checksums gate everything after the header crc, and a fuzzer rarely
 * guesses a crc32c.  In this mode the frames' crcs are recomputed in place
 * (header crc always; body and bulk crcs when the frame is whole and within
 * the limits) so that mutations of the other fields reach the length,
 * kind, allocation and payload paths. */
static void fix_crcs(uint8_t *s, size_t len)
{
  size_t pos = 0;
  while (len - pos >= KS_RPC_HDR_SIZE) {
    uint8_t *h = s + pos;
    uint32_t body_len = ks_get_le32(h + 20);
    uint64_t bulk_len = ks_get_le64(h + 24);
    bool whole = body_len <= FZ_MAX_BODY && bulk_len <= FZ_MAX_BULK &&
                 len - pos - KS_RPC_HDR_SIZE >= body_len + bulk_len;
    if (whole) {
      const uint8_t *body = h + KS_RPC_HDR_SIZE;
      ks_put_le32(h + 32, ks_crc32c(0, body, body_len));
      ks_put_le32(h + 36, ks_crc32c(0, body + body_len, (size_t)bulk_len));
    }
    ks_put_le32(h + 44, ks_crc32c(0, h, 44));
    if (!whole)
      break;
    pos += KS_RPC_HDR_SIZE + body_len + (size_t)bulk_len;
  }
}

/* What one way of feeding produced. */
typedef struct fz_result {
  size_t nmsgs;
  size_t consumed; /* stream offset after the last whole frame */
  int err;
} fz_result_t;

/* A completed message must be exactly its frame's bytes at stream[start..]. */
static void check_msg(const uint8_t *stream, size_t len, size_t start,
                      size_t end, ks_rpc_msg_t *m)
{
  FZ_CHECK(m != NULL);
  FZ_CHECK(m->kind == KS_RPC_REQUEST || m->kind == KS_RPC_RESPONSE);
  FZ_CHECK(m->body_len <= FZ_MAX_BODY && m->bulk_len <= FZ_MAX_BULK);
  FZ_CHECK((m->body == NULL) == (m->body_len == 0));
  FZ_CHECK((m->bulk == NULL) == (m->bulk_len == 0));
  FZ_CHECK(m->bulk == NULL || (uintptr_t)m->bulk % 64 == 0);
  FZ_CHECK(end <= len);
  FZ_CHECK(end - start == KS_RPC_HDR_SIZE + m->body_len + m->bulk_len);

  const uint8_t *hdr = stream + start;
  ks_rpc_hdr_t h;
  FZ_CHECK(ks_rpc_hdr_decode(hdr, FZ_MAX_BODY, FZ_MAX_BULK, &h) == 0);
  FZ_CHECK(h.kind == m->kind && h.opcode == m->opcode && h.id == m->id &&
           h.status == m->status && h.timeout_ms == m->timeout_ms &&
           h.body_len == m->body_len && h.bulk_len == m->bulk_len);
  if (m->body_len)
    FZ_CHECK(memcmp(m->body, hdr + KS_RPC_HDR_SIZE, m->body_len) == 0);
  if (m->bulk_len)
    FZ_CHECK(memcmp(m->bulk, hdr + KS_RPC_HDR_SIZE + m->body_len,
                    (size_t)m->bulk_len) == 0);

  /* The sending side's encoder gives back the same header bytes. */
  ks_rpc_out_t out;
  ks_rpc_hdr_t eh = {.kind = m->kind,
                     .opcode = m->opcode,
                     .id = m->id,
                     .status = m->status,
                     .timeout_ms = m->timeout_ms};
  struct iovec body = {m->body, m->body_len};
  struct iovec bulk = {m->bulk, (size_t)m->bulk_len};
  FZ_CHECK(ks__out_prepare(&out, &eh, &body, m->body_len ? 1 : 0, &bulk,
                           m->bulk_len ? 1 : 0, false) == 0);
  FZ_CHECK(memcmp(out._hdr, hdr, KS_RPC_HDR_SIZE) == 0);
}

/* A failed framer stays failed. */
static void check_poisoned(ks__framer_t *f, int err)
{
  ks_rpc_msg_t *m = (ks_rpc_msg_t *)1;
  FZ_CHECK(err != 0 && f->err == err);
  FZ_CHECK(ks__framer_commit(f, 0, &m) == err && m == NULL);
  m = (ks_rpc_msg_t *)1;
  FZ_CHECK(ks__framer_commit(f, 1, &m) == err && m == NULL);
}

/* Commit n bytes just written into the window; handle a message. */
static int commit(ks__framer_t *f, const uint8_t *stream, size_t len,
                  size_t pos, size_t n, fz_result_t *r)
{
  ks_rpc_msg_t *m = (ks_rpc_msg_t *)1;
  int rc = ks__framer_commit(f, n, &m);
  if (rc != 0) {
    FZ_CHECK(m == NULL);
    check_poisoned(f, rc);
    r->err = rc;
    return rc;
  }
  if (m != NULL) {
    check_msg(stream, len, r->consumed, pos + n, m);
    ks_rpc_msg_free(m);
    r->nmsgs++;
    r->consumed = pos + n;
  }
  return 0;
}

/* Way 1 and 3: reads land in a staging buffer and are copied in
 * (conn_feed).  cuts == NULL: the whole stream is one read. */
static void feed_copy(const uint8_t *stream, size_t len, fz_cuts_t *cuts,
                      fz_result_t *r)
{
  ks__framer_t f;
  ks__framer_init(&f, FZ_MAX_BODY, FZ_MAX_BULK);
  memset(r, 0, sizeof(*r));
  size_t pos = 0;
  while (pos < len && r->err == 0) {
    size_t rd = cuts ? cuts_next(cuts) : len;
    if (rd > len - pos)
      rd = len - pos;
    const uint8_t *p = stream + pos;
    size_t n = rd;
    while (n > 0) {
      uint8_t *w;
      size_t wn;
      ks__framer_window(&f, &w, &wn);
      FZ_CHECK(w != NULL && wn > 0);
      if (wn > n)
        wn = n;
      memcpy(w, p, wn);
      if (commit(&f, stream, len, (size_t)(p - stream), wn, r))
        break;
      p += wn;
      n -= wn;
    }
    pos += rd;
  }
  ks__framer_reset(&f); /* frees a partly received message */
}

/* Way 2: every read goes straight into the window, never past it. */
static void feed_direct(const uint8_t *stream, size_t len, fz_cuts_t *cuts,
                        fz_result_t *r)
{
  ks__framer_t f;
  ks__framer_init(&f, FZ_MAX_BODY, FZ_MAX_BULK);
  memset(r, 0, sizeof(*r));
  size_t pos = 0;
  while (pos < len) {
    uint8_t *w;
    size_t wn;
    ks__framer_window(&f, &w, &wn);
    FZ_CHECK(w != NULL && wn > 0);
    size_t n = cuts_next(cuts);
    if (n > wn)
      n = wn;
    if (n > len - pos)
      n = len - pos;
    memcpy(w, stream + pos, n);
    if (commit(&f, stream, len, pos, n, r))
      break;
    pos += n;
  }
  ks__framer_reset(&f);
}

/* Way 4's stand-in for AES-GCM open: deterministic, and it must be handed
 * exactly the frame's header and bulk. */
static int fz_open(void *arg, const uint8_t *hdr, uint8_t *bulk, uint64_t len,
                   const uint8_t *tag)
{
  FZ_CHECK(arg == (void *)fz_open);
  FZ_CHECK(ks_get_le64(hdr + 24) == len && len > 0 && bulk != NULL);
  return tag[0] == (uint8_t)len ? 0 : KS_EAUTH;
}

static void feed_sealed(const uint8_t *stream, size_t len, fz_cuts_t *cuts)
{
  ks__framer_t f;
  ks__framer_init(&f, FZ_MAX_BODY, FZ_MAX_BULK);
  ks__framer_seal(&f, fz_open, (void *)fz_open);
  size_t pos = 0;
  while (pos < len) {
    uint8_t *w;
    size_t wn;
    ks__framer_window(&f, &w, &wn);
    FZ_CHECK(w != NULL && wn > 0);
    size_t n = cuts_next(cuts);
    if (n > wn)
      n = wn;
    if (n > len - pos)
      n = len - pos;
    memcpy(w, stream + pos, n);
    ks_rpc_msg_t *m = (ks_rpc_msg_t *)1;
    int rc = ks__framer_commit(&f, n, &m);
    if (rc != 0) {
      FZ_CHECK(m == NULL);
      FZ_CHECK(rc == KS_EBADMAGIC || rc == KS_EBADVERSION || rc == KS_EBADCRC ||
               rc == KS_EPROTO || rc == KS_ETOOBIG || rc == KS_EAUTH);
      check_poisoned(&f, rc);
      break;
    }
    if (m != NULL) {
      FZ_CHECK(m->body_len <= FZ_MAX_BODY && m->bulk_len <= FZ_MAX_BULK);
      FZ_CHECK((m->bulk == NULL) == (m->bulk_len == 0));
      FZ_CHECK(m->bulk == NULL || (uintptr_t)m->bulk % 64 == 0);
      FZ_CHECK(!ks__framer_raw(&f));
      ks_rpc_msg_free(m);
    }
    pos += n;
  }
  ks__framer_reset(&f);
}

/* The header codec alone, on the first 48 bytes. */
static int check_header(const uint8_t *stream, size_t len)
{
  if (len < KS_RPC_HDR_SIZE)
    return 1; /* no verdict */
  ks_rpc_hdr_t h;
  int rc = ks_rpc_hdr_decode(stream, FZ_MAX_BODY, FZ_MAX_BULK, &h);
  ks_rpc_hdr_t wide;
  int wrc = ks_rpc_hdr_decode(stream, UINT32_MAX, UINT64_MAX, &wide);
  if (rc == 0 || rc == KS_ETOOBIG) {
    /* The limits are the only difference between the two decodes. */
    FZ_CHECK(wrc == 0);
    uint8_t again[KS_RPC_HDR_SIZE];
    ks_rpc_hdr_encode(&wide, again);
    FZ_CHECK(memcmp(again, stream, KS_RPC_HDR_SIZE) == 0);
    FZ_CHECK(wide.version == KS_RPC_VERSION);
    FZ_CHECK(rc == KS_ETOOBIG ||
             (wide.body_len <= FZ_MAX_BODY && wide.bulk_len <= FZ_MAX_BULK));
  } else {
    FZ_CHECK(rc == KS_EBADMAGIC || rc == KS_EBADVERSION || rc == KS_EBADCRC ||
             rc == KS_EPROTO);
    FZ_CHECK(wrc == rc);
  }
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const uint8_t *stream = data + 1;
  size_t len = size - 1;
  uint8_t *fixed = NULL;
  if (data[0] & 0x40) {
    fixed = malloc(len ? len : 1);
    FZ_CHECK(fixed != NULL);
    memcpy(fixed, stream, len);
    fix_crcs(fixed, len);
    stream = fixed;
  }

  fz_result_t ref, copy, direct;
  fz_cuts_t cuts;
  feed_copy(stream, len, NULL, &ref);
  cuts_init(&cuts, data[0]);
  feed_copy(stream, len, &cuts, &copy);
  cuts_init(&cuts, data[0]);
  feed_direct(stream, len, &cuts, &direct);
  cuts_init(&cuts, data[0]);
  feed_sealed(stream, len, &cuts);

  /* However the stream is cut, the framer decides the same. */
  FZ_CHECK(copy.nmsgs == ref.nmsgs && copy.err == ref.err &&
           copy.consumed == ref.consumed);
  FZ_CHECK(direct.nmsgs == ref.nmsgs && direct.err == ref.err &&
           direct.consumed == ref.consumed);
  FZ_CHECK(ref.err == 0 || ref.err == KS_EBADMAGIC ||
           ref.err == KS_EBADVERSION || ref.err == KS_EBADCRC ||
           ref.err == KS_EPROTO || ref.err == KS_ETOOBIG);

  /* The codec and the framer agree on the first header. */
  int hrc = check_header(stream, len);
  if (hrc != 1 && hrc != 0)
    FZ_CHECK(ref.nmsgs == 0 && ref.err == hrc);
  if (len >= 4 && memcmp(stream, "KSRP", 4) != 0)
    FZ_CHECK(ref.nmsgs == 0 && ref.err == KS_EBADMAGIC);
  free(fixed);
  return 0;
}
