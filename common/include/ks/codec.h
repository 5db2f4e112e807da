/*
 * codec.h — hex and base64 text encodings of binary data.
 *
 * Hex is what ids, digests and keys look like in logs, metadata keys and
 * JSON; base64 is what S3 puts in headers (Content-MD5, x-amz-checksum-*)
 * and URL-safe base64 without padding is what JWTs (OIDC tokens) and
 * tokens embedded in URLs use.
 *
 * Calling convention, the same for every function here (as snprintf):
 *   - the caller provides the output buffer `out` of `size` bytes;
 *   - the return value is the output length (>= 0) or a negative error:
 *       -ENOSPC     out is too small (see the size macros below);
 *       -EINVAL     the text to decode is malformed (odd hex length, a
 *                   character outside the alphabet, misplaced or missing
 *                   padding, non-zero padding bits);
 *       -EOVERFLOW  the input is longer than KS_CODEC_MAX bytes;
 *   - encoders NUL-terminate, so `size` must count the NUL as well, and the
 *     returned length does not include it;
 *   - decoders take text with an explicit length (it need not be
 *     NUL-terminated) and write exactly the decoded bytes, no NUL;
 *   - on error the contents of out are unspecified (possibly partly
 *     written); nothing is allocated, so nothing needs freeing.
 * Decoders are strict: no whitespace, no line breaks, canonical padding.
 * All functions are pure and thread-safe.
 */
#ifndef KS_CODEC_H
#define KS_CODEC_H

#include <limits.h>
#include <stddef.h>

/* Inputs are limited so that every output length fits the int return value
 * (and OpenSSL's int lengths, which base64 goes through). */
#define KS_CODEC_MAX ((size_t)INT_MAX / 2)

/* Text length (without NUL) of the encoding of n bytes.  Buffers for the
 * encoders need one byte more. */
#define KS_HEX_LEN(n) ((n)*2)
#define KS_B64_LEN(n) (((n) + 2) / 3 * 4)  /* padded, standard alphabet */
#define KS_B64URL_LEN(n) (((n)*4 + 2) / 3) /* unpadded, URL-safe */

/* Bytes that decoding a text of length n can produce (exact for hex, an
 * upper bound for both base64 variants). */
#define KS_HEX_DECODED_LEN(n) ((n) / 2)
#define KS_B64_DECODED_MAX(n) (((n) + 3) / 4 * 3)

/* Lower-case hex of in[0..n).  size >= KS_HEX_LEN(n) + 1. */
/* The value of one hex digit (either case), or -1. */
int ks_hex_value(char c);

int ks_hex_encode(char *out, size_t size, const void *in, size_t n);
/* Hex text in[0..n) (either case) to bytes.  size >= KS_HEX_DECODED_LEN(n). */
int ks_hex_decode(void *out, size_t size, const char *in, size_t n);

/* RFC 4648 section 4 base64, "+/" alphabet, '=' padding.
 * size >= KS_B64_LEN(n) + 1. */
int ks_b64_encode(char *out, size_t size, const void *in, size_t n);
/* Decode padded standard base64; n must be a multiple of 4.  size must hold
 * the decoded length (at most KS_B64_DECODED_MAX(n)). */
int ks_b64_decode(void *out, size_t size, const char *in, size_t n);

/* RFC 4648 section 5 base64url, "-_" alphabet, no padding (RFC 7515 style).
 * size >= KS_B64URL_LEN(n) + 1. */
int ks_b64url_encode(char *out, size_t size, const void *in, size_t n);
/* Decode unpadded base64url; '=' is rejected, as is a length of 4k+1. */
int ks_b64url_decode(void *out, size_t size, const char *in, size_t n);

#endif /* KS_CODEC_H */
