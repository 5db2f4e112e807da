/*
 * object_int.h — what the object layer's files share (ks/object.h is the
 * contract): the client struct, the device table placement draws from,
 * and the step helpers every operation chains (bucket check, delta).
 *
 * The device table is kept per node (what that chunkd's last DEV_LIST
 * answered) and flattened into c->devs, the usable devices placement draws
 * from.  A node lists again on its own (ks__obj_refresh) when a fragment
 * call to it fails or its list is old, so c->devs may change between two
 * steps of a write: a write copies the devices it placed on, never keeps
 * indexes into c->devs across an asynchronous call.
 */
#ifndef KS_OBJECT_INT_H
#define KS_OBJECT_INT_H

#include "ks/chunk.h"
#include "ks/ec.h"
#include "ks/frag_client.h"
#include "ks/object.h"

#define KS__OBJ_ADDR_MAX KS_META_NODE_MAX
/* EC profiles a client opens on demand for descriptors it reads; a pool
 * uses one or two, and 1+1 is the inline profile. */
#define KS__OBJ_EC_MAX 8
/* Chunks a sequential read fetches ahead of the one the caller reads
 * (object_read.c, READ-AHEAD): each costs up to k + m fragment answers and
 * a chunk of plaintext while in flight.  2: fetching one chunk overlaps
 * opening the next and sending the current. */
#define KS__OBJ_READ_AHEAD 2
/* Least time between two device listings of one node on failures. */
#define KS__OBJ_RELIST_MS 1000

/* A device as the node's last DEV_LIST answered it. */
typedef struct ks__obj_ndev {
  ks_id_t id;
  uint8_t state; /* ks_dev_state_t */
} ks__obj_ndev_t;

typedef struct ks__obj_node {
  char addr[KS__OBJ_ADDR_MAX]; /* "host:port" as recorded in extents */
  ks_rpc_client_t *rpc;
  ks__obj_ndev_t *devs; /* the last list that succeeded */
  size_t ndevs;
  bool listed;        /* devs holds an answer */
  bool listing;       /* `list` is in flight */
  bool start_wait;    /* a ks_client_start counts this listing */
  uint64_t listed_ms; /* loop time the last listing started (rate limit) */
  ks_frag_call_t list;
} ks__obj_node_t;

/* One usable device: its node and id, and the hash rendezvous mixes with
 * each chunk id. */
typedef struct ks__obj_dev {
  unsigned node;
  ks_id_t id;
  uint64_t hash;
} ks__obj_dev_t;

struct ks_client {
  uv_loop_t *loop;
  ks_meta_client_t *meta;
  ks__obj_node_t *nodes;
  size_t nnodes;
  ks__obj_dev_t *devs;
  size_t ndevs;
  ks_kms_t *kms;
  ks_ec_t *ec;        /* the write profile */
  ks_ec_t *ec_inline; /* 1+1: inline blobs */
  ks_ec_t *ecs[KS__OBJ_EC_MAX];
  unsigned k, m;
  unsigned write_quorum; /* fragments a chunk write needs, k..k+m */
  size_t chunk_size, inline_max;
  unsigned window;
  uint32_t timeout_ms;
  uint32_t refresh_ms; /* a node's device list older than this is renewed */
  /* start */
  bool starting;
  size_t lists_pending;
  int lists_status;
  ks_client_cb start_cb;
  void *start_arg;
  /* close */
  size_t closing;
  ks_rpc_close_cb close_cb;
  void *close_arg;
};

/* The fragment address of a sealed chunk: SHA-256(chunk id || IV). */
int ks__obj_frag_addr(const ks_chunk_desc_t *d, uint8_t out[KS_CHUNK_ID_LEN]);
/* The profile (k, m), opened on first use.  NULL: -ENOMEM or bad profile. */
ks_ec_t *ks__obj_ec(ks_client_t *c, unsigned k, unsigned m);
/* The node with address addr, or NULL. */
ks__obj_node_t *ks__obj_node(ks_client_t *c, const char *addr);
/* List node's devices again in the background unless a listing is in
 * flight or one started less than KS__OBJ_RELIST_MS ago: called when a
 * fragment call to the node failed (unknown or failed device, broken
 * connection), so a stale table heals without flooding a sick daemon. */
void ks__obj_refresh(ks_client_t *c, ks__obj_node_t *node);
/* ks__obj_refresh of every node whose list is at least age_ms old or
 * missing: c->refresh_ms is the periodic renewal, driven by writes (the
 * client has no timer); 0 is every node. */
void ks__obj_refresh_older(ks_client_t *c, uint32_t age_ms);
/* Whether an extent's location is the absent-fragment marker (object.h,
 * DEGRADED WRITES), and the marker itself. */
bool ks__obj_loc_absent(const ks_meta_loc_t *l);
extern const ks_meta_loc_t ks__obj_loc_none;

/* Finish op: run its callback with status. */
void ks__obj_finish(ks_obj_op_t *op, int status);
/* Check the bucket's owner, then run op->_next (its result, when not 0,
 * finishes the op).  Returns the query's start error. */
int ks__obj_begin(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb,
                  int (*next)(ks_obj_op_t *op));
/* Propose d on op->_shard; the op finishes with the write's status and
 * op->result. */
int ks__obj_write(ks_obj_op_t *op, const ks_meta_delta_t *d);
int64_t ks__obj_now(const ks_obj_op_t *op);

/* object_put.c: steps that store op->body as chunks (inline when small,
 * for objects only), then propose PUT_OBJECT / PUT_PART. */
int ks__obj_put_start_object(ks_obj_op_t *op);
int ks__obj_put_start_part(ks_obj_op_t *op);
void ks__obj_put_free(ks_obj_op_t *op);
/* object_read.c */
void ks__obj_read_free(ks_obj_op_t *op);

/* object.c: reset op's results and private state for a run of steps by
 * client c ending in cb (what ks__obj_begin does before the bucket
 * check), for ops started without one. */
void ks__obj_op_init(ks_client_t *c, ks_obj_op_t *op, ks_obj_cb cb);
/* An op whose _qop is this is a put of one piece of a part copy: its
 * delta is handed to ks__obj_copy_capture instead of meta (no meta
 * operation has this number). */
#define KS__OBJ_QOP_CAPTURE 0xffffu
/* object_copy.c: part copy by reading (ks/object.h).  start: the step
 * after the bucket check when the metadata-only copy does not apply;
 * capture: ks__obj_write of a piece's delta (keeps its extents, which
 * live in the piece op's put state, and finishes the piece); free: from
 * ks_obj_op_release. */
int ks__obj_copy_start(ks_obj_op_t *op);
int ks__obj_copy_capture(ks_obj_op_t *op, const ks_meta_delta_t *d);
void ks__obj_copy_free(ks_obj_op_t *op);

#endif /* KS_OBJECT_INT_H */
