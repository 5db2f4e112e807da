/*
 * id.c — 128-bit ids (ks/id.h): random generation from ks_rand_bytes and
 * the hex form through ks/codec.h, so there is one hex codec in the tree.
 */
#include "ks/id.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "ks/codec.h"
#include "ks/rand.h"

int ks_id_generate(ks_id_t *id)
{
  int rc = ks_rand_bytes(id->b, sizeof(id->b));
  if (rc != 0) {
    memset(id->b, 0, sizeof(id->b));
    return rc;
  }
  id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40); /* version 4 */
  id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80); /* variant 10 */
  return 0;
}

char *ks_id_to_hex(const ks_id_t *id, char out[KS_ID_HEX_LEN + 1])
{
  int rc = ks_hex_encode(out, KS_ID_HEX_LEN + 1, id->b, sizeof(id->b));
  assert(rc == KS_ID_HEX_LEN); /* cannot fail: the size is exact */
  (void)rc;
  return out;
}

int ks_id_from_hex(ks_id_t *id, const char *s, size_t n)
{
  ks_id_t tmp;
  if (n != KS_ID_HEX_LEN)
    return -EINVAL;
  int rc = ks_hex_decode(tmp.b, sizeof(tmp.b), s, n);
  if (rc < 0)
    return rc;
  *id = tmp;
  return 0;
}

int ks_id_cmp(const ks_id_t *a, const ks_id_t *b)
{
  return memcmp(a->b, b->b, sizeof(a->b));
}

bool ks_id_is_zero(const ks_id_t *id)
{
  static const ks_id_t zero = KS_ID_ZERO;
  return ks_id_cmp(id, &zero) == 0;
}
