/*
 * endian.h — little-endian load/store for wire and on-disk formats.
 *
 * Every Kiseki format is little-endian.  These helpers work on unaligned
 * byte pointers (memcpy compiles to a single move on x86-64 and arm64), so
 * decoders never cast a network buffer to a struct.
 */
#ifndef KS_ENDIAN_H
#define KS_ENDIAN_H

#include <stdint.h>
#include <string.h>

static inline void ks_put_le16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static inline void ks_put_le32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ks_put_le64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t ks_get_le16(const uint8_t *p)
{
  return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t ks_get_le32(const uint8_t *p)
{
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static inline uint64_t ks_get_le64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

#endif /* KS_ENDIAN_H */
