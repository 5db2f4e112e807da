/*
 * bigbuf.c — the large-buffer cache (see ks/bigbuf.h for why).
 */
#include "ks/bigbuf.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define BIGBUF_ROUND ((size_t)64 * 1024)

typedef struct bigbuf_slot {
  void *p;
  size_t cap;
} bigbuf_slot_t;

static pthread_mutex_t bigbuf_lock = PTHREAD_MUTEX_INITIALIZER;
static bigbuf_slot_t bigbuf_slots[KS_BIGBUF_SLOTS];
static size_t bigbuf_cached; /* bytes held by the cache */

static void *bigbuf_take(size_t n, size_t *cap)
{
  int best = -1;
  pthread_mutex_lock(&bigbuf_lock);
  for (int i = 0; i < KS_BIGBUF_SLOTS; i++) {
    size_t c = bigbuf_slots[i].cap;
    if (bigbuf_slots[i].p && c >= n && c / 4 <= n &&
        (best < 0 || c < bigbuf_slots[best].cap))
      best = i;
  }
  void *p = NULL;
  if (best >= 0) {
    p = bigbuf_slots[best].p;
    *cap = bigbuf_slots[best].cap;
    bigbuf_cached -= *cap;
    bigbuf_slots[best].p = NULL;
    bigbuf_slots[best].cap = 0;
  }
  pthread_mutex_unlock(&bigbuf_lock);
  return p;
}

void *ks_bigbuf_alloc(size_t n, size_t *cap)
{
  void *p = NULL;
  if (n < KS_BIGBUF_MIN) {
    *cap = n;
    return posix_memalign(&p, 64, n ? n : 1) == 0 ? p : NULL;
  }
  p = bigbuf_take(n, cap);
  if (p)
    return p;
  if (n > SIZE_MAX - BIGBUF_ROUND)
    return NULL;
  size_t c = (n + BIGBUF_ROUND - 1) & ~(BIGBUF_ROUND - 1);
  if (posix_memalign(&p, 64, c) != 0)
    return NULL;
  *cap = c;
  return p;
}

void ks_bigbuf_free(void *p, size_t cap)
{
  if (p == NULL)
    return;
  if (cap >= KS_BIGBUF_MIN) {
    pthread_mutex_lock(&bigbuf_lock);
    for (int i = 0; i < KS_BIGBUF_SLOTS; i++) {
      if (bigbuf_slots[i].p == NULL &&
          bigbuf_cached + cap <= KS_BIGBUF_CACHE_MAX) {
        bigbuf_slots[i].p = p;
        bigbuf_slots[i].cap = cap;
        bigbuf_cached += cap;
        p = NULL;
        break;
      }
    }
    pthread_mutex_unlock(&bigbuf_lock);
  }
  free(p);
}

void ks_bigbuf_trim(void)
{
  pthread_mutex_lock(&bigbuf_lock);
  for (int i = 0; i < KS_BIGBUF_SLOTS; i++) {
    free(bigbuf_slots[i].p);
    bigbuf_slots[i].p = NULL;
    bigbuf_slots[i].cap = 0;
  }
  bigbuf_cached = 0;
  pthread_mutex_unlock(&bigbuf_lock);
}
