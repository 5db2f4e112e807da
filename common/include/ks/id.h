/*
 * id.h — 128-bit identifiers (objects, chunks, nodes, devices, requests).
 *
 * An id is 16 opaque bytes, compared bytewise, written as 32 lower-case hex
 * digits (no dashes: ids appear in LMDB keys and file names, where a fixed
 * width and no punctuation keep them sortable and easy to split).  Random
 * ids use the RFC 9562 UUIDv4 layout (122 random bits, version and variant
 * bits set) so that tools that expect UUIDs accept them; ids derived from
 * content (chunk ids) need not follow it, so parsing accepts any value.
 *
 * ks_id_t is a plain value: copy it with `=`, no ownership, thread-safe.
 */
#ifndef KS_ID_H
#define KS_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KS_ID_LEN 16
#define KS_ID_HEX_LEN 32 /* characters, without the NUL */

typedef struct ks_id {
  uint8_t b[KS_ID_LEN];
} ks_id_t;

#define KS_ID_ZERO \
  {                \
    {              \
      0            \
    }              \
  }

/* A new random (UUIDv4) id.  Returns 0, or KS_ECRYPTO when the DRBG fails
 * (*id is then all zero, never a guessable value). */
int ks_id_generate(ks_id_t *id);

/* Write the 32 hex digits and a NUL into out; returns out (for printf). */
char *ks_id_to_hex(const ks_id_t *id, char out[KS_ID_HEX_LEN + 1]);

/* Parse exactly n == 32 hex digits (either case; s need not be
 * NUL-terminated).  Returns 0 or -EINVAL (wrong length, non-hex character);
 * *id is unchanged on error. */
int ks_id_from_hex(ks_id_t *id, const char *s, size_t n);

/* memcmp order: < 0, 0 or > 0.  Matches the order of the hex strings. */
int ks_id_cmp(const ks_id_t *a, const ks_id_t *b);

/* The all-zero id means "none" (as KS_ID_ZERO initialises). */
bool ks_id_is_zero(const ks_id_t *id);

#endif /* KS_ID_H */
