/*
 * chunk.c — ks-bench-chunk: what the chunk codec (ks/chunk.h) costs on one
 * core next to the limits of the machine it runs on (DESIGN.md §12).
 *
 * Limits, measured in this run in this process with no Kiseki code:
 *
 *   memcpy          4 MiB buffer to 4 MiB buffer (warm in cache as far as
 *                   4 MiB fits): the cost of touching the bytes once.
 *   aes_256_gcm     OpenSSL EVP directly, the way `openssl speed -evp
 *                   aes-256-gcm -bytes 16384` drives it: one context, 16 KiB
 *                   EVP_EncryptUpdate calls, here 256 of them per 4 MiB
 *                   message (new IV, final and tag per message).  In-process
 *                   rather than the openssl CLI, so the same library build
 *                   and CPU dispatch are measured that Kiseki uses.
 *   hmac_sha256     OpenSSL EVP_MAC, 16 KiB updates, one 4 MiB message per
 *                   init/final: the chunk id's cost.
 *
 * Kiseki, 4 MiB chunks, profile 4+2, the file key provider in a scratch
 * directory ($KS_BENCH_DIR or TMPDIR), one thread:
 *
 *   seal            ks_chunk_seal: id (HMAC), DEK + wrap, AES-GCM, EC parity
 *   open            ks_chunk_open with all 6 fragments: unwrap, gather, GCM
 *   open_degraded   ks_chunk_open with data fragments 0 and 1 missing:
 *                   rebuild two fragments from 2 data + 2 parity first
 *   ec_encode       ks_ec_encode alone: 2 parity fragments of a 4 MiB chunk
 *   aes_gcm         ks_gcm_seal alone on 4 MiB (the wrapper's overhead)
 *   chunk_id        ks_chunk_id alone on 4 MiB (derive + HMAC)
 *
 * GB/s is 1e9 bytes of plaintext (data, for ec_encode) per second.  Each
 * Kiseki figure is printed with its ratio to the limit it is bounded by:
 * seal to hmac+gcm in series (1 / (1/hmac + 1/gcm): it must hash and
 * encrypt every byte), open to gcm+memcpy in series (it decrypts and gathers
 * every byte), ec_encode to memcpy.  Before anything is timed a sealed chunk
 * must open, whole and degraded, to the same bytes; otherwise exit 1.
 * Timings are never assertions.
 */
#include "ks/chunk.h"

#include "bench_util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "ks/config.h"
#include "ks/err.h"
#include "ks/kms.h"
#include "ks/rand.h"
#include "ks/time.h"

#define CHUNK ((size_t)4 << 20)
#define K 4
#define M 2
#define QUICK_RUN_NS 250000000ULL

typedef struct bench_settings {
  int64_t seconds_ms;
  bool quick;
} bench_settings_t;

static const ks_opt_t bench_opts[] = {
    {"seconds", KS_OPT_DURATION_MS, "2s", 100, 600000, NULL,
     "duration of each measurement (after a warm-up of a fifth of it)",
     offsetof(bench_settings_t, seconds_ms)},
    {"quick", KS_OPT_BOOL, "false", 0, 0, NULL,
     "at most 0.25 s per figure: a smoke test; also KS_BENCH_QUICK=1",
     offsetof(bench_settings_t, quick)},
};

/* Everything the measured operations touch, allocated once. */
typedef struct ctx {
  ks_kms_t *kms;
  ks_ec_t *ec;
  ks_id_t tenant;
  uint8_t *pt, *out, *frags, *copy;
  size_t flen;
  ks_chunk_desc_t desc;
  const uint8_t *all[K + M], *degraded[K + M];
  EVP_CIPHER_CTX *gcm;
  EVP_MAC *mac;
  uint8_t key[32], iv[12];
} ctx_t;

typedef int (*op_fn)(ctx_t *c);

/* Run op repeatedly for run_ns after a warm-up; GB/s of `bytes` per op, or
 * a negative value if an op failed. */
static double measure(ctx_t *c, op_fn op, size_t bytes, uint64_t run_ns)
{
  uint64_t t0 = ks_time_mono_ns(), n = 0;
  while (ks_time_mono_ns() - t0 < run_ns / 5)
    if (op(c) != 0)
      return -1;
  t0 = ks_time_mono_ns();
  uint64_t t = t0;
  while (t - t0 < run_ns) {
    if (op(c) != 0)
      return -1;
    n++;
    t = ks_time_mono_ns();
  }
  return (double)n * (double)bytes / (double)(t - t0);
}

/* ---- limits -------------------------------------------------------------- */

static int op_memcpy(ctx_t *c)
{
  memcpy(c->copy, c->pt, CHUNK);
  __asm__ volatile("" : : "r"(c->copy) : "memory"); /* keep the copy */
  return 0;
}

static int op_evp_gcm(ctx_t *c)
{
  return ks_bench_gcm_message(c->gcm, c->iv, c->pt, c->copy, CHUNK);
}

static int op_evp_hmac(ctx_t *c)
{
  EVP_MAC_CTX *m = EVP_MAC_CTX_new(c->mac);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
      OSSL_PARAM_construct_end()};
  uint8_t out[32];
  size_t outl;
  int rc = -1;
  if (m == NULL || EVP_MAC_init(m, c->key, sizeof(c->key), params) != 1)
    goto out;
  for (size_t off = 0; off < CHUNK; off += KS_BENCH_EVP_BLOCK)
    if (EVP_MAC_update(m, c->pt + off, KS_BENCH_EVP_BLOCK) != 1)
      goto out;
  if (EVP_MAC_final(m, out, &outl, sizeof(out)) == 1)
    rc = 0;
out:
  EVP_MAC_CTX_free(m);
  return rc;
}

/* ---- Kiseki ---------------------------------------------------------------
 */

static int op_seal(ctx_t *c)
{
  return ks_chunk_seal(c->kms, c->ec, &c->tenant, c->pt, CHUNK, c->frags,
                       (K + M) * c->flen, &c->desc);
}

static int op_open(ctx_t *c)
{
  return ks_chunk_open(c->kms, c->ec, &c->tenant, &c->desc, c->all, c->out,
                       CHUNK);
}

static int op_open_degraded(ctx_t *c)
{
  return ks_chunk_open(c->kms, c->ec, &c->tenant, &c->desc, c->degraded, c->out,
                       CHUNK);
}

static int op_ec_encode(ctx_t *c)
{
  uint8_t *parity[M] = {c->frags + K * c->flen, c->frags + (K + 1) * c->flen};
  return ks_ec_encode(c->ec, c->flen, c->all, parity);
}

static int op_ks_gcm(ctx_t *c)
{
  uint8_t tag[16];
  return ks_gcm_seal(c->key, c->iv, NULL, 0, c->pt, CHUNK, c->copy, tag);
}

static int op_chunk_id(ctx_t *c)
{
  uint8_t id[KS_CHUNK_ID_LEN];
  return ks_chunk_id(c->kms, &c->tenant, c->pt, CHUNK, id);
}

/* ---- setup --------------------------------------------------------------- */

static int ctx_init(ctx_t *c, const char *dir)
{
  c->flen = ks_chunk_frag_len(K, CHUNK);
  c->pt = aligned_alloc(64, CHUNK);
  c->out = aligned_alloc(64, CHUNK);
  c->copy = aligned_alloc(64, CHUNK + 64);
  c->frags = aligned_alloc(64, (K + M) * c->flen);
  c->gcm = EVP_CIPHER_CTX_new();
  c->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (!c->pt || !c->out || !c->copy || !c->frags || !c->gcm || !c->mac)
    return -ENOMEM;
  if (ks_rand_bytes(c->pt, CHUNK) != 0 || ks_rand_bytes(c->key, 32) != 0 ||
      ks_rand_bytes(c->iv, 12) != 0)
    return KS_ECRYPTO;
  if (EVP_EncryptInit_ex(c->gcm, EVP_aes_256_gcm(), NULL, c->key, c->iv) != 1)
    return KS_ECRYPTO;
  for (int i = 0; i < K + M; i++) {
    c->all[i] = c->frags + (size_t)i * c->flen;
    c->degraded[i] = i < 2 ? NULL : c->all[i];
  }
  int rc = ks_kms_file_open(dir, &c->kms);
  if (rc == 0)
    rc = ks_ec_create(&c->ec, K, M);
  if (rc == 0)
    rc = ks_id_generate(&c->tenant);
  if (rc == 0)
    rc = ks_kms_tenant_create(c->kms, &c->tenant);
  return rc;
}

static void ctx_free(ctx_t *c)
{
  ks_kms_close(c->kms);
  ks_ec_destroy(c->ec);
  EVP_CIPHER_CTX_free(c->gcm);
  EVP_MAC_free(c->mac);
  free(c->pt);
  free(c->out);
  free(c->copy);
  free(c->frags);
}

/* A sealed chunk opens to the same bytes, whole and degraded. */
static int verify(ctx_t *c)
{
  if (op_seal(c) != 0)
    return -1;
  memset(c->out, 0, CHUNK);
  if (op_open(c) != 0 || memcmp(c->out, c->pt, CHUNK) != 0)
    return -1;
  memset(c->out, 0, CHUNK);
  if (op_open_degraded(c) != 0 || memcmp(c->out, c->pt, CHUNK) != 0)
    return -1;
  return 0;
}

typedef struct figures {
  double memcpy, gcm, hmac;                          /* limits */
  double seal, open, degraded, ec, ks_gcm, chunk_id; /* Kiseki */
} figures_t;

static int run_all(ctx_t *c, uint64_t ns, figures_t *f)
{
  f->memcpy = measure(c, op_memcpy, CHUNK, ns);
  f->gcm = measure(c, op_evp_gcm, CHUNK, ns);
  f->hmac = measure(c, op_evp_hmac, CHUNK, ns);
  f->seal = measure(c, op_seal, CHUNK, ns);
  f->open = measure(c, op_open, CHUNK, ns);
  f->degraded = measure(c, op_open_degraded, CHUNK, ns);
  f->ec = measure(c, op_ec_encode, CHUNK, ns);
  f->ks_gcm = measure(c, op_ks_gcm, CHUNK, ns);
  f->chunk_id = measure(c, op_chunk_id, CHUNK, ns);
  const double *v = &f->memcpy;
  for (size_t i = 0; i < sizeof(*f) / sizeof(double); i++)
    if (v[i] < 0)
      return -1;
  return 0;
}

static void report(const figures_t *f)
{
  double seal_lim = ks_bench_serial(f->hmac, f->gcm);
  double open_lim = ks_bench_serial(f->gcm, f->memcpy);
  printf("limit memcpy_4MiB          %7.2f GB/s\n", f->memcpy);
  printf("limit aes_256_gcm_evp_16K  %7.2f GB/s   (in-process EVP, "
         "openssl-speed style)\n",
         f->gcm);
  printf("limit hmac_sha256_evp_16K  %7.2f GB/s\n", f->hmac);
  printf("limit seal = hmac+gcm      %7.2f GB/s   open = gcm+memcpy %.2f "
         "GB/s\n",
         seal_lim, open_lim);
  printf("chunk seal_4MiB_4+2        %7.2f GB/s   %.2f of hmac+gcm, %.2f of "
         "gcm\n",
         f->seal, ks_bench_ratio(f->seal, seal_lim),
         ks_bench_ratio(f->seal, f->gcm));
  printf("chunk open_4MiB_4+2        %7.2f GB/s   %.2f of gcm+memcpy, %.2f "
         "of gcm\n",
         f->open, ks_bench_ratio(f->open, open_lim),
         ks_bench_ratio(f->open, f->gcm));
  printf("chunk open_degraded_2lost  %7.2f GB/s   %.2f of gcm+memcpy, %.2f "
         "of open\n",
         f->degraded, ks_bench_ratio(f->degraded, open_lim),
         ks_bench_ratio(f->degraded, f->open));
  printf("chunk ec_encode_4MiB_4+2   %7.2f GB/s   %.2f of memcpy\n", f->ec,
         ks_bench_ratio(f->ec, f->memcpy));
  printf("chunk ks_gcm_seal_4MiB     %7.2f GB/s   %.2f of gcm\n", f->ks_gcm,
         ks_bench_ratio(f->ks_gcm, f->gcm));
  printf("chunk chunk_id_4MiB        %7.2f GB/s   %.2f of hmac\n", f->chunk_id,
         ks_bench_ratio(f->chunk_id, f->hmac));
  printf("json: {\"bench\":\"chunk\",\"limit_memcpy\":%.3f,\"limit_gcm\":%.3f,"
         "\"limit_hmac\":%.3f,\"seal\":%.3f,\"open\":%.3f,"
         "\"open_degraded\":%.3f,\"ec_encode\":%.3f,\"ks_gcm\":%.3f,"
         "\"chunk_id\":%.3f}\n",
         f->memcpy, f->gcm, f->hmac, f->seal, f->open, f->degraded, f->ec,
         f->ks_gcm, f->chunk_id);
}

static int bench(const bench_settings_t *s, const char *dir)
{
  ctx_t c;
  figures_t f;
  uint64_t ns = ks_bench_run_ns(s->seconds_ms, s->quick, QUICK_RUN_NS);
  memset(&c, 0, sizeof(c));
  int rc = ctx_init(&c, dir);
  if (rc != 0) {
    fprintf(stderr, "ks-bench-chunk: setup: %s\n", ks_strerror(rc));
    ctx_free(&c);
    return 1;
  }
  printf("setup build=\"%s\" cores=%ld chunk=4MiB profile=4+2 "
         "fragment=%zu B, one thread; %.2f s per figure\n",
         ks_bench_build_desc(), sysconf(_SC_NPROCESSORS_ONLN), c.flen,
         (double)ns / 1e9);
  if (verify(&c) != 0) {
    fprintf(stderr, "ks-bench-chunk: a sealed chunk did not open back\n");
    ctx_free(&c);
    return 1;
  }
  rc = run_all(&c, ns, &f);
  ctx_free(&c);
  if (rc != 0) {
    fprintf(stderr, "ks-bench-chunk: an operation failed while timed\n");
    return 1;
  }
  report(&f);
  return 0;
}

/* The key directory (ks_bench_scratch_dir) and the key file in it. */
static void scratch_remove(const char *dir)
{
  char path[4200];
  snprintf(path, sizeof(path), "%s/tenant-keys", dir);
  (void)unlink(path);
  (void)rmdir(dir);
}

int main(int argc, char **argv)
{
  bench_settings_t s;
  char dir[4096];
  int rc;
  if (!ks_bench_args("ks-bench-chunk", bench_opts, KS_NELEM(bench_opts), argc,
                     argv, &s, &s.quick, &rc))
    return rc;
  if (ks_bench_scratch_dir("ks-bench-chunk", dir, sizeof(dir)) != 0) {
    fprintf(stderr, "ks-bench-chunk: cannot make a scratch directory\n");
    ks_cfg_free(bench_opts, KS_NELEM(bench_opts), &s);
    return 1;
  }
  rc = bench(&s, dir);
  scratch_remove(dir);
  ks_cfg_free(bench_opts, KS_NELEM(bench_opts), &s);
  return rc;
}
