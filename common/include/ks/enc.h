/*
 * enc.h — the binary encoding of RPC bodies (and of records that components
 * store): little-endian fixed-width integers and u32-length-prefixed byte
 * strings, written in a fixed order that each message documents.
 *
 * Why not a schema compiler: bodies are small and few, and a hand-ordered
 * encoding with sticky errors reads like the message definition.  Errors are
 * sticky on both sides, so a sequence of puts or gets is checked once at the
 * end (ks_enc_finish / ks_dec_finish), and a decoder can never read past its
 * input: after the first short read every get returns zero/NULL.
 *
 * Ownership: a ks_enc_t owns its buffer until ks_enc_finish hands it over or
 * ks_enc_free drops it.  A ks_dec_t borrows its input; pointers returned by
 * ks_dec_bytes/ks_dec_blob point into that input.  Not thread-safe.
 */
#ifndef KS_ENC_H
#define KS_ENC_H

#include <stddef.h>
#include <stdint.h>

#include "ks/buf.h"

typedef struct ks_enc {
  ks_buf_t buf;
  int err; /* first error (-ENOMEM), sticky */
} ks_enc_t;

#define KS_ENC_INIT \
  {                 \
    KS_BUF_INIT, 0  \
  }

void ks_enc_u8(ks_enc_t *e, uint8_t v);
void ks_enc_u16(ks_enc_t *e, uint16_t v);
void ks_enc_u32(ks_enc_t *e, uint32_t v);
void ks_enc_u64(ks_enc_t *e, uint64_t v);
void ks_enc_i64(ks_enc_t *e, int64_t v);
/* n raw bytes, no length (fixed-size fields such as ids). */
void ks_enc_bytes(ks_enc_t *e, const void *p, size_t n);
/* u32 length, then the bytes. */
void ks_enc_blob(ks_enc_t *e, const void *p, size_t n);
/* A NUL-terminated string as a blob (without the NUL). */
void ks_enc_str(ks_enc_t *e, const char *s);
/* 0 or the first error.  The bytes are in e->buf. */
int ks_enc_finish(const ks_enc_t *e);
void ks_enc_free(ks_enc_t *e);

typedef struct ks_dec {
  const uint8_t *p;
  size_t left;
  int err; /* KS_EPROTO after a short read, sticky */
} ks_dec_t;

void ks_dec_init(ks_dec_t *d, const void *p, size_t n);
uint8_t ks_dec_u8(ks_dec_t *d);
uint16_t ks_dec_u16(ks_dec_t *d);
uint32_t ks_dec_u32(ks_dec_t *d);
uint64_t ks_dec_u64(ks_dec_t *d);
int64_t ks_dec_i64(ks_dec_t *d);
/* Pointer to the next n bytes (NULL after an error). */
const uint8_t *ks_dec_bytes(ks_dec_t *d, size_t n);
/* A u32-length-prefixed blob of at most max bytes; *n receives its length.
 * Longer than max is KS_ETOOBIG. */
const uint8_t *ks_dec_blob(ks_dec_t *d, size_t max, size_t *n);
/* A blob copied into buf as a NUL-terminated string (size includes the NUL).
 * Embedded NULs and overlong strings are KS_EPROTO / KS_ETOOBIG. */
void ks_dec_str(ks_dec_t *d, char *buf, size_t size);
/* 0 if everything was read cleanly and nothing is left over, else the
 * error (KS_EPROTO for trailing bytes). */
int ks_dec_finish(const ks_dec_t *d);

#endif /* KS_ENC_H */
