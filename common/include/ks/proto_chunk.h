/*
 * proto_chunk.h — the chunk daemon's RPC protocol (DESIGN.md §4–§6): the
 * opcodes in chunkd's range (0x200..) and the encoding of every request and
 * response body.
 *
 * A fragment is addressed by (device id, chunk id, fragment index).  The
 * device id is the stable 128-bit id chunkd persists in each device
 * directory, so a placement recorded in an extent keeps naming the same
 * device after a restart that lists the devices in another order.
 *
 * Fragment bytes never travel in a body: a PUT carries the payload as the
 * request's RPC bulk, a GET answer carries it as the response's bulk.  Bodies
 * are small, fixed-order ks/enc.h encodings:
 *
 *   FRAG_PUT     req:  dev id[16] chunk id[32] u8 index u8 k u8 m
 *                      u32 payload crc32c (end to end: computed by the
 *                      writer, checked by chunkd against the bulk, stored)
 *                      bulk = payload
 *                resp: empty
 *   FRAG_GET     req:  dev id[16] chunk id[32] u8 index u64 offset
 *                      u64 length (0 = to the end of the payload)
 *                resp: fragment info (below) u64 offset
 *                      bulk = payload[offset .. offset + bulk length)
 *   FRAG_DELETE  req:  dev id[16] chunk id[32] u8 index
 *                resp: empty
 *   FRAG_STAT    req:  dev id[16] chunk id[32] u8 index
 *                resp: fragment info
 *   DEV_LIST     req:  empty
 *                resp: u32 count, then per device: id[16] u8 class u8 state
 *                      str path u64 capacity u64 free u64 fragments
 *
 *   fragment info: u8 k u8 m u64 payload length u32 payload crc32c
 *
 * Errors travel as the RPC status: -ENOENT (no such fragment), -ENODEV (unknown
 * device id: the caller's device list is stale), -EEXIST (a different fragment
 * already has this key), KS_ECORRUPT (the stored fragment fails its checks; the
 * bytes are never returned), KS_EBADCRC (a PUT's bulk does not match its crc),
 * -EIO (failed device), -EINVAL, KS_EBUSY (device queue full), KS_EPROTO
 * (undecodable body).
 *
 * The functions are pure and thread-safe.  Encoders append to a ks_enc_t
 * (errors are sticky there: check ks_enc_finish).  Decoders take a body and
 * its length, fill the caller's struct and return 0, KS_EPROTO (short,
 * trailing bytes, out-of-range field) or KS_ETOOBIG; on error the struct's
 * contents are unspecified.
 */
#ifndef KS_PROTO_CHUNK_H
#define KS_PROTO_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "ks/enc.h"
#include "ks/id.h"

enum ks_chunk_opcode {
  KS_OP_FRAG_PUT = 0x200,
  KS_OP_FRAG_GET = 0x201,
  KS_OP_FRAG_DELETE = 0x202,
  KS_OP_FRAG_STAT = 0x203,
  KS_OP_DEV_LIST = 0x204,
};

#define KS_CHUNK_ID_LEN 32 /* HMAC-SHA256 of the plaintext (DESIGN §3) */
/* Largest fragment payload: one RPC bulk (a 64 MiB chunk with k = 1). */
#define KS_FRAG_MAX_LEN (64ULL << 20)
/* Most devices one chunkd serves, and the longest device path. */
#define KS_DEV_MAX 256
#define KS_DEV_PATH_MAX 1024

typedef enum ks_dev_class {
  KS_DEV_FAST_NVME = 0,
  KS_DEV_BULK_NVME = 1,
  KS_DEV_HDD = 2,
} ks_dev_class_t;
#define KS_DEV_CLASS_COUNT 3

typedef enum ks_dev_state {
  KS_DEV_OK = 0,
  KS_DEV_FAILED = 1, /* unreadable directory, I/O errors: ops return -EIO */
} ks_dev_state_t;
#define KS_DEV_STATE_COUNT 2

/* "fast-nvme", "bulk-nvme", "hdd"; "ok", "failed"; "?" when out of range. */
const char *ks_dev_class_name(int cls);
const char *ks_dev_state_name(int state);
/* Parse a class name: 0 or -EINVAL. */
int ks_dev_class_parse(const char *s, ks_dev_class_t *out);

typedef struct ks_frag_key {
  uint8_t chunk_id[KS_CHUNK_ID_LEN];
  uint8_t index; /* 0..k+m-1 */
} ks_frag_key_t;

/* What a fragment's header records besides its key. */
typedef struct ks_frag_info {
  uint64_t len; /* payload bytes */
  uint32_t crc; /* crc32c of the whole payload */
  uint8_t k, m; /* the chunk's erasure-code profile */
} ks_frag_info_t;

typedef struct ks_frag_put_req {
  ks_id_t dev;
  ks_frag_key_t key;
  uint8_t k, m;
  uint32_t crc; /* of the bulk */
} ks_frag_put_req_t;

/* GET, DELETE and STAT; offset and length only mean something to GET. */
typedef struct ks_frag_req {
  ks_id_t dev;
  ks_frag_key_t key;
  uint64_t offset;
  uint64_t length; /* 0: to the end */
} ks_frag_req_t;

typedef struct ks_frag_get_resp {
  ks_frag_info_t info;
  uint64_t offset; /* of the bulk within the payload */
} ks_frag_get_resp_t;

typedef struct ks_dev_info {
  ks_id_t id;
  uint8_t cls;   /* ks_dev_class_t */
  uint8_t state; /* ks_dev_state_t */
  char path[KS_DEV_PATH_MAX];
  uint64_t capacity; /* bytes of the file system (statvfs) */
  uint64_t free;     /* bytes available to us */
  uint64_t frags;    /* fragments stored */
} ks_dev_info_t;

void ks_frag_put_req_encode(ks_enc_t *e, const ks_frag_put_req_t *r);
int ks_frag_put_req_decode(const void *p, size_t n, ks_frag_put_req_t *r);

/* FRAG_GET encodes offset and length; DELETE and STAT do not. */
void ks_frag_req_encode(ks_enc_t *e, uint16_t opcode, const ks_frag_req_t *r);
int ks_frag_req_decode(const void *p, size_t n, uint16_t opcode,
                       ks_frag_req_t *r);

void ks_frag_info_encode(ks_enc_t *e, const ks_frag_info_t *info);
int ks_frag_info_decode(const void *p, size_t n, ks_frag_info_t *info);

void ks_frag_get_resp_encode(ks_enc_t *e, const ks_frag_get_resp_t *r);
int ks_frag_get_resp_decode(const void *p, size_t n, ks_frag_get_resp_t *r);

/* DEV_LIST answer.  Decoding fills out[0..*count) and fails with KS_ETOOBIG
 * when the answer lists more than max devices (or more than KS_DEV_MAX). */
void ks_dev_list_resp_encode(ks_enc_t *e, const ks_dev_info_t *devs,
                             size_t count);
int ks_dev_list_resp_decode(const void *p, size_t n, ks_dev_info_t *out,
                            size_t max, size_t *count);

#endif /* KS_PROTO_CHUNK_H */
