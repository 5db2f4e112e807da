/*
 * s3_backend_kiseki.h — the production S3 backend (ks/s3_backend.h): every
 * S3 operation mapped onto libkiseki's object layer (ks/object.h), with
 * the metadata service's outcomes turned into S3 error codes.
 *
 * Principals.  An access key belongs to a tenant; the principal's tenant
 * string is the tenant id in hex (32 characters), which is also the owner
 * id listings print.
 *
 * Access keys.  key_lookup() must answer synchronously, so keys are served
 * from an in-memory cache (at most KS_S3K_KEYS_MAX entries, the oldest
 * replaced first).  A miss starts a GET_ACCESS_KEY query and answers
 * -EAGAIN (the client sees InternalError 500, which every AWS SDK and the
 * CLI retry); the retry finds the key, or, when meta said the key does not
 * exist, a negative entry that answers InvalidAccessKeyId for
 * KS_S3K_NEGATIVE_MS.  Keys listed in `preload` are fetched at start.
 * Staleness: every cached key is re-read every refresh_ms (default 30 s);
 * a deleted or changed key keeps working (or failing) until then.
 *
 * KS_ENOTIMPL from the object layer is answered NotImplemented.
 *
 * Lifetime: the backend borrows the client (which must outlive it); free
 * it after the S3 server using it has closed.  Threads: the loop thread.
 */
#ifndef KS_S3_BACKEND_KISEKI_H
#define KS_S3_BACKEND_KISEKI_H

#include "ks/object.h"
#include "ks/s3_backend.h"

#include <uv.h>

#define KS_S3K_KEYS_MAX 4096
#define KS_S3K_NEGATIVE_MS 5000

typedef struct ks_s3_kiseki ks_s3_kiseki_t;

typedef struct ks_s3_kiseki_opts {
  uint32_t refresh_ms;        /* 0: 30 s */
  const char *const *preload; /* access key ids to fetch at start */
  size_t npreload;
} ks_s3_kiseki_opts_t;

/* A backend over cl.  0, -ENOMEM.  *out holds the ks_s3_backend_t to give
 * the server (ks_s3_kiseki_backend). */
int ks_s3_kiseki_new(uv_loop_t *loop, ks_client_t *cl,
                     const ks_s3_kiseki_opts_t *opts, ks_s3_kiseki_t **out);
const ks_s3_backend_t *ks_s3_kiseki_backend(ks_s3_kiseki_t *be);
/* Stop the refresh timer and key fetches, free, then cb(arg). */
void ks_s3_kiseki_close(ks_s3_kiseki_t *be, ks_rpc_close_cb cb, void *arg);

/* The S3 error for an object-layer status (0: KS_S3_OK). */
ks_s3_code_t ks_s3_kiseki_code(int status);

#endif /* KS_S3_BACKEND_KISEKI_H */
