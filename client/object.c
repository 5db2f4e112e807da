/*
 * object.c — the object layer's client (connections, device table,
 * placement) and the operations that are metadata only: delete, copy,
 * multipart create/complete/abort, part copy of a whole single-part
 * source, buckets, listings (ks/object.h).  Writes of bytes are in
 * object_put.c, reads in object_read.c, part copies that must read in
 * object_copy.c.
 *
 * Every operation is a chain of steps on the loop thread: the bucket
 * check (GET_BUCKET, ownership compared with the op's tenant, the bucket's
 * shard remembered), then the op's own step (op->_next), which either
 * finishes it or starts the next asynchronous call.  A step returns 0 when
 * it started something whose callback will carry on, or an error, which
 * finishes the op at once.
 *
 * Placement is rendezvous hashing: each device has a 64-bit hash of (node
 * address, device id) made at start; a chunk's score on a device is a
 * 64-bit mix of the chunk id's first 8 bytes with that hash, and fragment
 * i goes to the device of i-th highest score, skipping nodes already used
 * while unused nodes remain (failure domain = node) and never using a
 * device twice.  Adding or losing a device moves only the fragments whose
 * top choices changed.  With fewer usable devices than fragments the last
 * fragment indexes stay unplaced (object.h, DEGRADED WRITES).
 *
 * Device lists are per node and renewed one node at a time (object_int.h);
 * a start is every node's listing at once, waiting for one already in
 * flight rather than starting a second.
 */
#include "object_int.h"

#include "ks/codec.h"
#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/frag_client.h"
#include "ks/net.h"
#include "ks/time.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- client ------------------------------------------------------------- */

static int opts_check(const ks_client_opts_t *o)
{
  if (o->meta == NULL || o->kms == NULL || o->nchunkd == 0 ||
      o->nchunkd > KS_OBJ_CHUNKD_MAX || o->chunkd == NULL)
    return -EINVAL;
  unsigned k = o->k ? o->k : 4, m = o->k ? o->m : 2;
  if (o->write_quorum != 0 && (o->write_quorum < k || o->write_quorum > k + m))
    return -EINVAL;
  size_t cs = o->chunk_size ? o->chunk_size : KS_CHUNK_SIZE_DEFAULT;
  size_t im = o->inline_max ? o->inline_max : KS_OBJ_INLINE_DEFAULT;
  if (k + m > KS_META_LOCS_MAX || cs > KS_CHUNK_MAX_LEN || im >= cs ||
      im > KS_META_INLINE_MAX / 2)
    return -EINVAL;
  return 0;
}

static int client_connect(ks_client_t *c, const ks_client_opts_t *o)
{
  char host[64];
  uint16_t port;
  int rc = ks_hostport_parse(o->meta, host, sizeof(host), &port);
  if (rc == 0)
    rc = ks_meta_client_new(c->loop, host, port, o->rpc, &c->meta);
  for (size_t i = 0; rc == 0 && i < o->nchunkd; i++) {
    ks__obj_node_t *n = &c->nodes[i];
    if (strlen(o->chunkd[i]) >= sizeof(n->addr))
      return -EINVAL;
    snprintf(n->addr, sizeof(n->addr), "%s", o->chunkd[i]);
    rc = ks_hostport_parse(n->addr, host, sizeof(host), &port);
    if (rc == 0)
      rc = ks_rpc_client_new(c->loop, host, port, o->rpc, &n->rpc);
    if (rc == 0)
      c->nnodes++;
  }
  return rc;
}

static void client_free(ks_client_t *c)
{
  for (size_t i = 0; i < KS__OBJ_EC_MAX; i++)
    ks_ec_destroy(c->ecs[i]);
  for (size_t i = 0; c->nodes != NULL && i < c->nnodes; i++)
    free(c->nodes[i].devs);
  free(c->nodes);
  free(c->devs);
  free(c);
}

static void client_close_one(void *arg)
{
  ks_client_t *c = arg;
  if (--c->closing > 0)
    return;
  ks_rpc_close_cb cb = c->close_cb;
  void *cb_arg = c->close_arg;
  client_free(c);
  if (cb != NULL)
    cb(cb_arg);
}

void ks_client_close(ks_client_t *c, ks_rpc_close_cb cb, void *arg)
{
  c->close_cb = cb;
  c->close_arg = arg;
  c->closing = 1; /* held until every close is started */
  if (c->meta != NULL) {
    c->closing++;
    ks_meta_client_close(c->meta, client_close_one, c);
  }
  for (size_t i = 0; c->nodes != NULL && i < c->nnodes; i++) {
    c->closing++;
    ks_rpc_client_close(c->nodes[i].rpc, client_close_one, c);
  }
  client_close_one(c);
}

int ks_client_new(uv_loop_t *loop, const ks_client_opts_t *o, ks_client_t **out)
{
  int rc = opts_check(o);
  if (rc != 0)
    return rc;
  ks_client_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  c->loop = loop;
  c->kms = o->kms;
  c->k = o->k ? o->k : 4;
  c->m = o->k ? o->m : 2;
  /* k + 1: one more fragment than a read needs, so an acknowledged chunk
   * survives one more loss (object.h, DEGRADED WRITES) */
  c->write_quorum =
      o->write_quorum ? o->write_quorum : (c->m > 0 ? c->k + 1 : c->k);
  c->refresh_ms = o->refresh_ms ? o->refresh_ms : KS_OBJ_REFRESH_DEFAULT_MS;
  c->chunk_size = o->chunk_size ? o->chunk_size : KS_CHUNK_SIZE_DEFAULT;
  c->inline_max = o->inline_max ? o->inline_max : KS_OBJ_INLINE_DEFAULT;
  c->window = o->window ? o->window : KS_OBJ_WINDOW_DEFAULT;
  c->timeout_ms = o->timeout_ms;
  c->nodes = calloc(o->nchunkd, sizeof(*c->nodes));
  c->ec = ks__obj_ec(c, c->k, c->m);
  c->ec_inline = ks__obj_ec(c, 1, 1);
  rc = c->nodes == NULL || c->ec == NULL || c->ec_inline == NULL
           ? -ENOMEM
           : client_connect(c, o);
  if (rc != 0) {
    ks_client_close(c, NULL, NULL); /* frees once the closes complete */
    return rc;
  }
  *out = c;
  return 0;
}

size_t ks_client_devices(const ks_client_t *c)
{
  return c->ndevs;
}

ks_ec_t *ks__obj_ec(ks_client_t *c, unsigned k, unsigned m)
{
  for (size_t i = 0; i < KS__OBJ_EC_MAX && c->ecs[i] != NULL; i++)
    if (ks_ec_k(c->ecs[i]) == k && ks_ec_m(c->ecs[i]) == m)
      return c->ecs[i];
  for (size_t i = 0; i < KS__OBJ_EC_MAX; i++)
    if (c->ecs[i] == NULL)
      return ks_ec_create(&c->ecs[i], k, m) == 0 ? c->ecs[i] : NULL;
  return NULL;
}

ks__obj_node_t *ks__obj_node(ks_client_t *c, const char *addr)
{
  for (size_t i = 0; i < c->nnodes; i++)
    if (strcmp(c->nodes[i].addr, addr) == 0)
      return &c->nodes[i];
  return NULL;
}

int ks__obj_frag_addr(const ks_chunk_desc_t *d, uint8_t out[KS_CHUNK_ID_LEN])
{
  uint8_t in[KS_CHUNK_ID_LEN + KS_GCM_IV_LEN];
  memcpy(in, d->id, KS_CHUNK_ID_LEN);
  memcpy(in + KS_CHUNK_ID_LEN, d->iv, KS_GCM_IV_LEN);
  return ks_sha256(in, sizeof(in), out);
}

/* ---- device table and placement ----------------------------------------- */

static uint64_t mix64(uint64_t x)
{
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

static uint64_t dev_hash(const char *addr, const ks_id_t *id)
{
  uint8_t sum[KS_SHA256_LEN], in[KS__OBJ_ADDR_MAX + KS_ID_LEN];
  size_t n = strlen(addr);
  memcpy(in, addr, n);
  memcpy(in + n, id->b, KS_ID_LEN);
  uint64_t h = 0;
  if (ks_sha256(in, n + KS_ID_LEN, sum) == 0)
    memcpy(&h, sum, sizeof(h));
  return h;
}

static bool placed(const unsigned *out, unsigned n, unsigned dev)
{
  for (unsigned i = 0; i < n; i++)
    if (out[i] == dev)
      return true;
  return false;
}

static bool node_used(const ks_client_t *c, const unsigned *out, unsigned n,
                      unsigned node)
{
  for (unsigned i = 0; i < n; i++)
    if (c->devs[out[i]].node == node)
      return true;
  return false;
}

/* The best-scoring device not yet placed; with fresh_node, on a node not
 * yet used.  -1 when none. */
static long place_one(const ks_client_t *c, uint64_t key, const unsigned *out,
                      unsigned n, bool fresh_node)
{
  long best = -1;
  uint64_t best_score = 0;
  for (size_t d = 0; d < c->ndevs; d++) {
    if (placed(out, n, (unsigned)d) ||
        (fresh_node && node_used(c, out, n, c->devs[d].node)))
      continue;
    uint64_t s = mix64(key ^ c->devs[d].hash);
    if (best < 0 || s > best_score) {
      best = (long)d;
      best_score = s;
    }
  }
  return best;
}

int ks_client_place(const ks_client_t *c, const uint8_t chunk_id[32],
                    unsigned n, unsigned out[])
{
  unsigned placed = n < c->ndevs ? n : (unsigned)c->ndevs;
  uint64_t key;
  memcpy(&key, chunk_id, sizeof(key));
  for (unsigned i = 0; i < placed; i++) {
    long d = place_one(c, key, out, i, true);
    if (d < 0)
      d = place_one(c, key, out, i, false);
    assert(d >= 0);
    out[i] = (unsigned)d;
  }
  for (unsigned i = placed; i < n; i++)
    out[i] = KS_OBJ_UNPLACED;
  return (int)placed;
}

const ks_meta_loc_t ks__obj_loc_none = {"", {{0}}};

bool ks__obj_loc_absent(const ks_meta_loc_t *l)
{
  return l->node[0] == '\0' && ks_id_is_zero(&l->dev);
}

/* ---- device lists: DEV_LIST per node, start = every node --------------- */

/* c->devs from every node's last list: the devices listed "ok". */
static int devs_rebuild(ks_client_t *c)
{
  size_t n = 0;
  for (size_t i = 0; i < c->nnodes; i++)
    n += c->nodes[i].ndevs;
  ks__obj_dev_t *devs = calloc(n ? n : 1, sizeof(*devs));
  if (devs == NULL)
    return -ENOMEM;
  n = 0;
  for (size_t i = 0; i < c->nnodes; i++)
    for (size_t j = 0; j < c->nodes[i].ndevs; j++) {
      const ks__obj_ndev_t *nd = &c->nodes[i].devs[j];
      if (nd->state != KS_DEV_OK)
        continue;
      devs[n] = (ks__obj_dev_t){(unsigned)i, nd->id,
                                dev_hash(c->nodes[i].addr, &nd->id)};
      n++;
    }
  free(c->devs);
  c->devs = devs;
  c->ndevs = n;
  return 0;
}

/* Keep a node's answer: its table, then the flat one. */
static int node_store(ks_client_t *c, ks__obj_node_t *node,
                      const ks_frag_call_t *call)
{
  ks__obj_ndev_t *devs = calloc(call->ndevs ? call->ndevs : 1, sizeof(*devs));
  if (devs == NULL)
    return -ENOMEM;
  for (size_t j = 0; j < call->ndevs; j++)
    devs[j] = (ks__obj_ndev_t){call->devs[j].id, call->devs[j].state};
  free(node->devs);
  node->devs = devs;
  node->ndevs = call->ndevs;
  node->listed = true;
  return devs_rebuild(c);
}

/* One node's part of a start is over. */
static void start_one(ks_client_t *c, int status)
{
  if (status != 0 && c->lists_status == 0)
    c->lists_status = status;
  if (--c->lists_pending > 0)
    return;
  c->starting = false;
  c->start_cb(c->start_arg, c->lists_status);
}

static ks_client_t *node_client(ks__obj_node_t *node)
{
  return node->list.data;
}

static void dev_list_cb(ks_frag_call_t *call, int status)
{
  ks__obj_node_t *node =
      (ks__obj_node_t *)((char *)call - offsetof(ks__obj_node_t, list));
  ks_client_t *c = node_client(node);
  node->listing = false;
  /* a failed listing keeps the node's last list: its devices stay where
   * they were, and writes to them fail (and retry the listing) if gone */
  if (status == 0 && c->closing == 0)
    status = node_store(c, node, call);
  ks_frag_call_release(call);
  if (node->start_wait) {
    node->start_wait = false;
    start_one(c, status);
  }
}

static int node_list(ks_client_t *c, ks__obj_node_t *node)
{
  node->list = (ks_frag_call_t){.data = c};
  node->listed_ms = uv_now(c->loop);
  int rc = ks_frag_dev_list(node->rpc, &node->list, c->timeout_ms, dev_list_cb);
  node->listing = rc == 0;
  return rc;
}

void ks__obj_refresh(ks_client_t *c, ks__obj_node_t *node)
{
  if (c->closing > 0 || node->listing ||
      (node->listed_ms != 0 &&
       uv_now(c->loop) - node->listed_ms < KS__OBJ_RELIST_MS))
    return;
  (void)node_list(c, node); /* best effort: the next failure tries again */
}

void ks__obj_refresh_older(ks_client_t *c, uint32_t age_ms)
{
  uint64_t now = uv_now(c->loop);
  for (size_t i = 0; i < c->nnodes; i++) {
    ks__obj_node_t *node = &c->nodes[i];
    if (!node->listed || now - node->listed_ms >= age_ms)
      ks__obj_refresh(c, node);
  }
}

int ks_client_start(ks_client_t *c, ks_client_cb cb, void *arg)
{
  if (c->starting || c->closing > 0)
    return KS_EBUSY;
  c->starting = true;
  c->start_cb = cb;
  c->start_arg = arg;
  c->lists_status = 0;
  c->lists_pending = 1; /* held while starting */
  for (size_t i = 0; i < c->nnodes; i++) {
    ks__obj_node_t *node = &c->nodes[i];
    int rc = node->listing ? 0 : node_list(c, node);
    if (rc == 0) {
      node->start_wait = true; /* a listing in flight counts as ours */
      c->lists_pending++;
    } else if (c->lists_status == 0) {
      c->lists_status = rc;
    }
  }
  start_one(c, 0);
  return 0;
}

/* ---- step helpers ---------------------------------------------------------
 */

int64_t ks__obj_now(const ks_obj_op_t *op)
{
  return op->now_ns ? op->now_ns : ks_time_real_ns();
}

void ks__obj_finish(ks_obj_op_t *op, int status)
{
  ks_obj_cb cb = op->_cb;
  op->_cb = NULL;
  assert(cb != NULL);
  cb(op, status);
}

static void op_step(ks_obj_op_t *op)
{
  int rc = op->_next(op);
  if (rc != 0)
    ks__obj_finish(op, rc);
}

static void bucket_checked(ks_meta_call_t *mc, int status)
{
  ks_obj_op_t *op = mc->data;
  if (status == 0 && ks_id_cmp(&mc->r.bucket.tenant, &op->tenant) != 0)
    status = KS_META_EACCESS;
  if (status == 0)
    op->_shard = mc->r.bucket.shard ? mc->r.bucket.shard : KS_META_SYSTEM_SHARD;
  if (op->_qop == KS_OP_META_GET_BUCKET && status == 0) {
    op->reply = *mc; /* head: the answer is the bucket itself */
    op->_reply_held = true;
    memset(mc, 0, sizeof(*mc));
  } else {
    ks_meta_call_release(mc);
  }
  if (status != 0)
    ks__obj_finish(op, status);
  else
    op_step(op);
}

void ks__obj_op_init(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  op->_c = c;
  op->_cb = cb;
  op->_shard = KS_META_SYSTEM_SHARD;
  op->_st = op->_rd = op->_cp = NULL;
  op->_reply_held = false;
  memset(&op->result, 0, sizeof(op->result));
  memset(&op->reply, 0, sizeof(op->reply));
  memset(&op->_bc, 0, sizeof(op->_bc));
}

int ks__obj_begin(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb,
                  int (*next)(ks_obj_op_t *op))
{
  if (op->bucket == NULL)
    return -EINVAL;
  uint16_t qop = op->_qop;
  ks__obj_op_init(c, op, cb);
  op->_qop = qop;
  op->_next = next;
  op->_bc.data = op;
  ks_meta_query_t q = {.shard = KS_META_SYSTEM_SHARD, .bucket = op->bucket};
  return ks_meta_query(c->meta, &op->_bc, KS_OP_META_GET_BUCKET, &q,
                       c->timeout_ms, bucket_checked);
}

static void written(ks_meta_call_t *mc, int status)
{
  ks_obj_op_t *op = mc->data;
  if (status == 0)
    op->result = mc->result;
  ks_meta_call_release(mc);
  ks__obj_finish(op, status);
}

int ks__obj_write(ks_obj_op_t *op, const ks_meta_delta_t *d)
{
  if (op->_qop == KS__OBJ_QOP_CAPTURE)
    return ks__obj_copy_capture(op, d);
  ks_meta_call_t *mc = &op->_bc;
  memset(mc, 0, sizeof(*mc));
  mc->data = op;
  return ks_meta_write(op->_c->meta, mc, op->_shard, d, op->_c->timeout_ms,
                       written);
}

static void queried(ks_meta_call_t *mc, int status)
{
  ks_obj_op_t *op = mc->data;
  op->_reply_held = true;
  ks__obj_finish(op, status);
}

static int query_step(ks_obj_op_t *op)
{
  op->_q.shard = op->_shard;
  op->_q.bucket = op->bucket;
  op->reply.data = op;
  return ks_meta_query(op->_c->meta, &op->reply, op->_qop, &op->_q,
                       op->_c->timeout_ms, queried);
}

void ks_obj_op_release(ks_obj_op_t *op)
{
  ks__obj_copy_free(op);
  ks__obj_put_free(op);
  ks__obj_read_free(op);
  if (op->_reply_held)
    ks_meta_call_release(&op->reply);
  op->_reply_held = false;
}

/* ---- objects --------------------------------------------------------------
 */

int ks_obj_put(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  if (op->key == NULL || (op->body_len > 0 && op->body == NULL))
    return -EINVAL;
  op->_qop = 0;
  return ks__obj_begin(c, op, cb, ks__obj_put_start_object);
}

int ks_obj_get(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  if (op->key == NULL)
    return -EINVAL;
  op->_qop = KS_OP_META_GET_OBJECT;
  memset(&op->_q, 0, sizeof(op->_q));
  op->_q.key = op->key;
  return ks__obj_begin(c, op, cb, query_step);
}

static int delete_step(ks_obj_op_t *op)
{
  ks_meta_delta_t d = {.type = KS_DELTA_DELETE_OBJECT,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .key = op->key};
  return ks__obj_write(op, &d);
}

int ks_obj_delete(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  if (op->key == NULL)
    return -EINVAL;
  op->_qop = 0;
  return ks__obj_begin(c, op, cb, delete_step);
}

/* The composition a copy writes: the source's data, the chosen attrs. */
static ks_meta_comp_t copy_comp(const ks_obj_op_t *op)
{
  const ks_meta_comp_t *s = op->src, *a = op->attrs ? op->attrs : op->src;
  ks_meta_comp_t m = *s;
  m.ino = 0;
  m.mtime_ns = 0;
  m.content_type = a->content_type;
  m.content_encoding = a->content_encoding;
  m.content_disposition = a->content_disposition;
  m.cache_control = a->cache_control;
  m.expires = a->expires;
  m.content_language = a->content_language;
  m.nmeta = a->nmeta;
  m.meta = a->meta;
  return m;
}

static int copy_step(ks_obj_op_t *op)
{
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_OBJECT,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .key = op->key,
                       .comp = copy_comp(op)};
  return ks__obj_write(op, &d);
}

int ks_obj_copy(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  if (op->key == NULL || op->src == NULL)
    return -EINVAL;
  op->_qop = 0;
  return ks__obj_begin(c, op, cb, copy_step);
}

/* ---- multipart ------------------------------------------------------------
 */

static int mpu_create_step(ks_obj_op_t *op)
{
  ks_meta_delta_t d = {.type = KS_DELTA_CREATE_MPU,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .key = op->key,
                       .upload_id = op->upload_id_out};
  if (op->attrs != NULL)
    d.comp = *op->attrs;
  d.comp.is_inline = false;
  d.comp.nextents = 0;
  d.comp.size = 0;
  return ks__obj_write(op, &d);
}

int ks_obj_mpu_create(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  ks_id_t id;
  if (op->key == NULL)
    return -EINVAL;
  int rc = ks_id_generate(&id);
  if (rc != 0)
    return rc;
  ks_id_to_hex(&id, op->upload_id_out);
  op->_qop = 0;
  return ks__obj_begin(c, op, cb, mpu_create_step);
}

int ks_obj_mpu_part(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  if (op->key == NULL || op->upload_id == NULL || op->part < 1 ||
      op->part > KS_META_PARTS_MAX || (op->body_len > 0 && op->body == NULL))
    return -EINVAL;
  op->_qop = 0;
  return ks__obj_begin(c, op, cb, ks__obj_put_start_part);
}

/* A whole single-part chunked source is copied as metadata: its extents
 * and its ETag, which is the MD5 of its bytes.  Anything else needs the
 * bytes read for the part's ETag (object_copy.c). */
static int part_copy_step(ks_obj_op_t *op)
{
  const ks_meta_comp_t *s = op->src;
  uint64_t len = op->src_len ? op->src_len : s->size - op->src_off;
  if (op->src_off != 0 || len != s->size || s->is_inline ||
      strchr(s->etag, '-') != NULL)
    return ks__obj_copy_start(op);
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_PART,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .key = op->key,
                       .upload_id = op->upload_id,
                       .part = op->part};
  d.comp.size = s->size;
  d.comp.nextents = s->nextents;
  d.comp.extents = s->extents;
  d.comp.etag = s->etag;
  return ks__obj_write(op, &d);
}

int ks_obj_mpu_part_copy(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  if (op->key == NULL || op->upload_id == NULL || op->src == NULL ||
      op->part < 1 || op->part > KS_META_PARTS_MAX)
    return -EINVAL;
  const ks_meta_comp_t *s = op->src;
  if (op->src_off > s->size || op->src_len > s->size - op->src_off)
    return -EINVAL;
  op->_qop = 0;
  return ks__obj_begin(c, op, cb, part_copy_step);
}

static int mpu_complete_step(ks_obj_op_t *op)
{
  ks_meta_delta_t d = {.type = KS_DELTA_COMPLETE_MPU,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .key = op->key,
                       .upload_id = op->upload_id,
                       .nparts = op->nparts,
                       .parts = op->parts};
  return ks__obj_write(op, &d);
}

int ks_obj_mpu_complete(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  if (op->key == NULL || op->upload_id == NULL || op->parts == NULL)
    return -EINVAL;
  op->_qop = 0;
  return ks__obj_begin(c, op, cb, mpu_complete_step);
}

static int mpu_abort_step(ks_obj_op_t *op)
{
  ks_meta_delta_t d = {.type = KS_DELTA_ABORT_MPU,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .key = op->key,
                       .upload_id = op->upload_id};
  return ks__obj_write(op, &d);
}

int ks_obj_mpu_abort(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  if (op->key == NULL || op->upload_id == NULL)
    return -EINVAL;
  op->_qop = 0;
  return ks__obj_begin(c, op, cb, mpu_abort_step);
}

/* ---- buckets and listings --------------------------------------------------
 */

static int bucket_write(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb,
                        uint8_t type)
{
  if (op->bucket == NULL)
    return -EINVAL;
  ks__obj_op_init(c, op, cb);
  ks_meta_delta_t d = {.type = type,
                       .now_ns = ks__obj_now(op),
                       .bucket = op->bucket,
                       .tenant = op->tenant,
                       .shard = KS_META_SYSTEM_SHARD};
  return ks__obj_write(op, &d);
}

int ks_obj_bucket_create(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  return bucket_write(c, op, cb, KS_DELTA_CREATE_BUCKET);
}

int ks_obj_bucket_delete(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  return bucket_write(c, op, cb, KS_DELTA_DELETE_BUCKET);
}

static int head_step(ks_obj_op_t *op)
{
  (void)op; /* the check's answer is the result */
  ks__obj_finish(op, 0);
  return 0;
}

int ks_obj_bucket_head(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  op->_qop = KS_OP_META_GET_BUCKET;
  return ks__obj_begin(c, op, cb, head_step);
}

int ks_obj_bucket_list(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb)
{
  ks__obj_op_init(c, op, cb);
  op->_qop = KS_OP_META_LIST_BUCKETS;
  op->reply.data = op;
  ks_meta_query_t q = {.shard = KS_META_SYSTEM_SHARD, .tenant = op->tenant};
  return ks_meta_query(c->meta, &op->reply, KS_OP_META_LIST_BUCKETS, &q,
                       c->timeout_ms, queried);
}

int ks_obj_query(ks_client_t *c, ks_obj_op_t *op, uint16_t qop,
                 const ks_meta_query_t *q, ks_obj_cb cb)
{
  if (qop != KS_OP_META_LIST_OBJECTS && qop != KS_OP_META_LIST_UPLOADS &&
      qop != KS_OP_META_LIST_PARTS && qop != KS_OP_META_GET_UPLOAD)
    return -EINVAL;
  op->_qop = qop;
  op->_q = *q;
  return ks__obj_begin(c, op, cb, query_step);
}

int ks_obj_akey_get(ks_client_t *c, ks_obj_op_t *op, const char *akid,
                    ks_obj_cb cb)
{
  ks__obj_op_init(c, op, cb);
  op->reply.data = op;
  ks_meta_query_t q = {.shard = KS_META_SYSTEM_SHARD, .akey = akid};
  return ks_meta_query(c->meta, &op->reply, KS_OP_META_GET_ACCESS_KEY, &q,
                       c->timeout_ms, queried);
}
