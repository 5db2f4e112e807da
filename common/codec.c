/*
 * codec.c — hex and base64 (ks/codec.h).
 *
 * Hex is a table lookup and needs no library.  Base64 goes through
 * OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock, which are fast and audited, but
 * EVP_DecodeBlock is a PEM-oriented decoder with quirks that a strict codec
 * must hide:
 *   - it skips leading whitespace and drops trailing whitespace, newlines and
 *     '-' characters, so "Zm9v-" would decode as "Zm9v";
 *   - it treats '=' as the value 0 wherever it appears ("Zm=v" decodes);
 *   - it always returns 3 bytes per 4 characters, counting the zero bytes
 *     that padding stands for, and writes them to the output.
 * So the text is validated here character by character (and translated
 * from the URL-safe alphabet) into a small stack block before OpenSSL sees
 * it; only whole unpadded quanta go to OpenSSL straight into `out`, and the
 * final partial quantum is decoded into a 3-byte temporary so that `out`
 * never needs room for padding bytes.  Encoding splits the same way: whole
 * 3-byte groups directly, the tail through a temporary, so the unpadded
 * URL-safe form needs no room for the '=' OpenSSL would write.
 */
#include "ks/codec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

/* Characters validated per EVP_DecodeBlock call; a multiple of 4.  The
 * stack block this sizes is the only memory decoding uses. */
#define KS_B64_BLOCK 512

static const char ks_hex_digits[] = "0123456789abcdef";
static const char ks_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int ks_hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int ks_hex_encode(char *out, size_t size, const void *in, size_t n)
{
  const uint8_t *p = in;
  if (n > KS_CODEC_MAX)
    return -EOVERFLOW;
  if (size < KS_HEX_LEN(n) + 1)
    return -ENOSPC;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = ks_hex_digits[p[i] >> 4];
    out[2 * i + 1] = ks_hex_digits[p[i] & 0x0f];
  }
  out[2 * n] = '\0';
  return (int)(2 * n);
}

int ks_hex_decode(void *out, size_t size, const char *in, size_t n)
{
  uint8_t *p = out;
  if (n > KS_CODEC_MAX)
    return -EOVERFLOW;
  if (n % 2 != 0)
    return -EINVAL;
  if (size < KS_HEX_DECODED_LEN(n))
    return -ENOSPC;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = ks_hex_value(in[2 * i]), lo = ks_hex_value(in[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -EINVAL;
    p[i] = (uint8_t)(hi << 4 | lo);
  }
  return (int)(n / 2);
}

/* The standard-alphabet character for c in the chosen alphabet, or 0 when c
 * is not part of it ('=' included: padding is handled by the callers). */
static unsigned char b64_std_char(char c, bool url)
{
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= '0' && c <= '9'))
    return (unsigned char)c;
  if (url)
    return c == '-' ? '+' : c == '_' ? '/' : 0;
  return (c == '+' || c == '/') ? (unsigned char)c : 0;
}

/* Validate and decode k (a multiple of 4) characters without padding. */
static int b64_decode_block(uint8_t *out, const char *in, size_t k, bool url)
{
  unsigned char q[KS_B64_BLOCK];
  for (size_t i = 0; i < k; i++) {
    q[i] = b64_std_char(in[i], url);
    if (q[i] == 0)
      return -EINVAL;
  }
  if (EVP_DecodeBlock(out, q, (int)k) != (int)(k / 4 * 3))
    return -EINVAL;
  return 0;
}

/* Decode the last r (2 or 3) characters of a text: r - 1 bytes. */
static int b64_decode_tail(uint8_t *out, const char *in, size_t r, bool url)
{
  unsigned char q[4] = {'=', '=', '=', '='};
  uint8_t t[3];
  for (size_t i = 0; i < r; i++) {
    q[i] = b64_std_char(in[i], url);
    if (q[i] == 0)
      return -EINVAL;
  }
  /* The bits of the last character past the last whole byte must be zero,
   * or two different texts would decode to the same bytes. */
  int last = (int)(strchr(ks_b64_alphabet, q[r - 1]) - ks_b64_alphabet);
  if ((last & (r == 2 ? 0x0f : 0x03)) != 0)
    return -EINVAL;
  if (EVP_DecodeBlock(t, q, 4) != 3)
    return -EINVAL;
  memcpy(out, t, r - 1);
  return 0;
}

/* Decode ndata characters of base64 with any padding already removed. */
static int b64_decode_data(uint8_t *out, size_t size, const char *in,
                           size_t ndata, bool url)
{
  size_t r = ndata % 4, full = ndata - r;
  if (r == 1)
    return -EINVAL; /* 6 bits cannot end a byte */
  size_t outlen = full / 4 * 3 + (r ? r - 1 : 0);
  if (size < outlen)
    return -ENOSPC;
  for (size_t off = 0; off < full; off += KS_B64_BLOCK) {
    size_t k = full - off < KS_B64_BLOCK ? full - off : KS_B64_BLOCK;
    int rc = b64_decode_block(out + off / 4 * 3, in + off, k, url);
    if (rc != 0)
      return rc;
  }
  if (r != 0) {
    int rc = b64_decode_tail(out + full / 4 * 3, in + full, r, url);
    if (rc != 0)
      return rc;
  }
  return (int)outlen;
}

int ks_b64_decode(void *out, size_t size, const char *in, size_t n)
{
  size_t pad = 0;
  if (n > KS_CODEC_MAX)
    return -EOVERFLOW;
  if (n % 4 != 0)
    return -EINVAL;
  while (pad < 2 && pad < n && in[n - 1 - pad] == '=')
    pad++;
  /* A third '=' stays in the data and is rejected there. */
  return b64_decode_data(out, size, in, n - pad, false);
}

int ks_b64url_decode(void *out, size_t size, const char *in, size_t n)
{
  if (n > KS_CODEC_MAX)
    return -EOVERFLOW;
  return b64_decode_data(out, size, in, n, true);
}

static void b64_to_url(char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+')
      s[i] = '-';
    else if (s[i] == '/')
      s[i] = '_';
  }
}

static int b64_encode(char *out, size_t size, const uint8_t *in, size_t n,
                      bool url)
{
  if (n > KS_CODEC_MAX)
    return -EOVERFLOW;
  size_t len = url ? KS_B64URL_LEN(n) : KS_B64_LEN(n);
  size_t full = n / 3 * 3, head = full / 3 * 4;
  if (size < len + 1)
    return -ENOSPC;
  if (full != 0) /* writes head characters and a NUL, within len + 1 */
    EVP_EncodeBlock((unsigned char *)out, in, (int)full);
  if (n != full) {
    unsigned char t[5]; /* one padded quantum and its NUL */
    EVP_EncodeBlock(t, in + full, (int)(n - full));
    memcpy(out + head, t, len - head);
  }
  out[len] = '\0';
  if (url)
    b64_to_url(out, len);
  return (int)len;
}

int ks_b64_encode(char *out, size_t size, const void *in, size_t n)
{
  return b64_encode(out, size, in, n, false);
}

int ks_b64url_encode(char *out, size_t size, const void *in, size_t n)
{
  return b64_encode(out, size, in, n, true);
}
