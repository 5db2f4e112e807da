/*
 * raft_msg.c — the wire encoding of libraft messages between Kiseki nodes
 * (contract in ks/raft_io_ks.h), kept apart from the io so that it is pure
 * code that a fuzzer can drive.
 *
 * BODY (ks/enc.h, little-endian):
 *   u8 version(1) | u8 type | u64 group | u64 from id | str from address
 *   then per type:
 *   REQUEST_VOTE         u64 term, candidate, last_log_index, last_log_term,
 *                        u8 disrupt_leader, u8 pre_vote
 *   REQUEST_VOTE_RESULT  u64 term, u8 vote_granted, u8 pre_vote (tribool)
 *   APPEND_ENTRIES       u64 term, prev_log_index, prev_log_term,
 *                        leader_commit, u32 n, n × (u64 term, u16 type,
 *                        u64 length)
 *   APPEND_ENTRIES_RESULT u64 term, rejected, last_log_index
 *   INSTALL_SNAPSHOT     u64 term, last_index, last_term, conf_index,
 *                        configuration (ks_raft_conf_encode), u64 data
 *                        length (must equal the bulk length)
 *   TIMEOUT_NOW          u64 term, last_log_index, last_log_term
 * BULK: the entries' payloads back to back (their lengths must add up to
 * the bulk length exactly), or the snapshot data; empty for other types.
 *
 * DEFENCE.  Every count is checked against the bytes that remain before
 * anything is allocated (an entry descriptor is 18 bytes, a server at least
 * 13), every length against the bulk, every enum against its range; the
 * decoder allocates only once the whole body has parsed, so a failure
 * leaves nothing to free.
 */
#include "ks/raft_io_ks.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "ks/err.h"

#define WIRE_VERSION 1
#define ENTRY_DESC_LEN 18 /* u64 term, u16 type, u64 length */
#define SERVER_MIN_LEN 13 /* u64 id, u8 role, u32 address length */

/* ---- configuration ----------------------------------------------------- */

void ks_raft_conf_encode(ks_enc_t *e, const struct raft_configuration *c)
{
  ks_enc_u32(e, c->n);
  for (unsigned i = 0; i < c->n; i++) {
    ks_enc_u64(e, c->servers[i].id);
    ks_enc_u8(e, (uint8_t)c->servers[i].role);
    ks_enc_str(e, c->servers[i].address);
  }
}

int ks_raft_conf_decode(ks_dec_t *d, struct raft_configuration *c)
{
  raft_configuration_init(c);
  uint32_t n = ks_dec_u32(d);
  if (d->err != 0 || n > d->left / SERVER_MIN_LEN)
    return KS_EPROTO;
  for (uint32_t i = 0; i < n; i++) {
    char addr[KS_RAFT_ADDR_MAX];
    uint64_t id = ks_dec_u64(d);
    uint8_t role = ks_dec_u8(d);
    ks_dec_str(d, addr, sizeof(addr));
    if (d->err != 0 || id == 0 || addr[0] == '\0')
      return KS_EPROTO;
    if (role != RAFT_STANDBY && role != RAFT_VOTER && role != RAFT_SPARE)
      return KS_EPROTO;
    if (raft_configuration_add(c, id, addr, role) != 0)
      return KS_EPROTO; /* duplicate id or address, or out of memory */
  }
  return 0;
}

/* ---- encode ------------------------------------------------------------ */

static void enc_append_entries(ks_enc_t *e, const struct raft_append_entries *a)
{
  ks_enc_u64(e, a->term);
  ks_enc_u64(e, a->prev_log_index);
  ks_enc_u64(e, a->prev_log_term);
  ks_enc_u64(e, a->leader_commit);
  ks_enc_u32(e, a->n_entries);
  for (unsigned i = 0; i < a->n_entries; i++) {
    ks_enc_u64(e, a->entries[i].term);
    ks_enc_u16(e, a->entries[i].type);
    ks_enc_u64(e, a->entries[i].buf.len);
  }
}

/* Entry payloads as bulk: one piece each when they fit, else one copy. */
static int bulk_entries(const struct raft_append_entries *a,
                        struct iovec bulk[KS_RPC_IOV_MAX], int *nbulk,
                        ks_buf_t *copy)
{
  *nbulk = 0;
  if (a->n_entries <= KS_RPC_IOV_MAX) {
    for (unsigned i = 0; i < a->n_entries; i++) {
      if (a->entries[i].buf.len == 0)
        continue;
      bulk[*nbulk].iov_base = a->entries[i].buf.base;
      bulk[*nbulk].iov_len = a->entries[i].buf.len;
      (*nbulk)++;
    }
    return 0;
  }
  for (unsigned i = 0; i < a->n_entries; i++) {
    int err =
        ks_buf_append(copy, a->entries[i].buf.base, a->entries[i].buf.len);
    if (err != 0)
      return err;
  }
  if (copy->len > 0) {
    bulk[0].iov_base = copy->data;
    bulk[0].iov_len = copy->len;
    *nbulk = 1;
  }
  return 0;
}

static void enc_fields(ks_enc_t *e, const struct raft_message *m)
{
  switch (m->type) {
  case RAFT_IO_REQUEST_VOTE:
    ks_enc_u64(e, m->request_vote.term);
    ks_enc_u64(e, m->request_vote.candidate_id);
    ks_enc_u64(e, m->request_vote.last_log_index);
    ks_enc_u64(e, m->request_vote.last_log_term);
    ks_enc_u8(e, m->request_vote.disrupt_leader);
    ks_enc_u8(e, m->request_vote.pre_vote);
    break;
  case RAFT_IO_REQUEST_VOTE_RESULT:
    ks_enc_u64(e, m->request_vote_result.term);
    ks_enc_u8(e, m->request_vote_result.vote_granted);
    ks_enc_u8(e, (uint8_t)m->request_vote_result.pre_vote);
    break;
  case RAFT_IO_APPEND_ENTRIES:
    enc_append_entries(e, &m->append_entries);
    break;
  case RAFT_IO_APPEND_ENTRIES_RESULT:
    ks_enc_u64(e, m->append_entries_result.term);
    ks_enc_u64(e, m->append_entries_result.rejected);
    ks_enc_u64(e, m->append_entries_result.last_log_index);
    break;
  case RAFT_IO_INSTALL_SNAPSHOT:
    ks_enc_u64(e, m->install_snapshot.term);
    ks_enc_u64(e, m->install_snapshot.last_index);
    ks_enc_u64(e, m->install_snapshot.last_term);
    ks_enc_u64(e, m->install_snapshot.conf_index);
    ks_raft_conf_encode(e, &m->install_snapshot.conf);
    ks_enc_u64(e, m->install_snapshot.data.len);
    break;
  case RAFT_IO_TIMEOUT_NOW:
    ks_enc_u64(e, m->timeout_now.term);
    ks_enc_u64(e, m->timeout_now.last_log_index);
    ks_enc_u64(e, m->timeout_now.last_log_term);
    break;
  default:
    break;
  }
}

int ks_raft_msg_encode(uint64_t group, raft_id from_id, const char *from_addr,
                       const struct raft_message *m, ks_enc_t *body,
                       struct iovec bulk[KS_RPC_IOV_MAX], int *nbulk,
                       ks_buf_t *copy)
{
  *nbulk = 0;
  if (m->type < RAFT_IO_APPEND_ENTRIES || m->type > RAFT_IO_TIMEOUT_NOW)
    return -EINVAL;
  if (strlen(from_addr) >= KS_RAFT_ADDR_MAX)
    return -EINVAL;
  ks_enc_u8(body, WIRE_VERSION);
  ks_enc_u8(body, (uint8_t)m->type);
  ks_enc_u64(body, group);
  ks_enc_u64(body, from_id);
  ks_enc_str(body, from_addr);
  enc_fields(body, m);
  int err = ks_enc_finish(body);
  if (err != 0)
    return err;
  if (m->type == RAFT_IO_APPEND_ENTRIES)
    return bulk_entries(&m->append_entries, bulk, nbulk, copy);
  if (m->type == RAFT_IO_INSTALL_SNAPSHOT && m->install_snapshot.data.len > 0) {
    bulk[0].iov_base = m->install_snapshot.data.base;
    bulk[0].iov_len = m->install_snapshot.data.len;
    *nbulk = 1;
  }
  return 0;
}

/* ---- decode ------------------------------------------------------------ */

static int dec_bool(ks_dec_t *d, bool *out)
{
  uint8_t v = ks_dec_u8(d);
  *out = v != 0;
  return v > 1 ? KS_EPROTO : 0;
}

static int dec_request_vote(ks_dec_t *d, struct raft_request_vote *rv)
{
  rv->term = ks_dec_u64(d);
  rv->candidate_id = ks_dec_u64(d);
  rv->last_log_index = ks_dec_u64(d);
  rv->last_log_term = ks_dec_u64(d);
  int err = dec_bool(d, &rv->disrupt_leader);
  if (err == 0)
    err = dec_bool(d, &rv->pre_vote);
  return err;
}

static int dec_request_vote_result(ks_dec_t *d,
                                   struct raft_request_vote_result *r)
{
  r->term = ks_dec_u64(d);
  int err = dec_bool(d, &r->vote_granted);
  uint8_t pv = ks_dec_u8(d);
  if (pv > raft_tribool_false)
    return KS_EPROTO;
  r->pre_vote = (raft_tribool)pv;
  return err;
}

static bool entry_type_ok(uint16_t type)
{
  return type == RAFT_COMMAND || type == RAFT_BARRIER || type == RAFT_CHANGE;
}

/* Parse the descriptors into entries (allocated here once n is known to fit
 * the body), checking that the lengths add up to the bulk exactly. */
static int dec_entries(ks_dec_t *d, struct raft_append_entries *a,
                       size_t bulk_len)
{
  uint32_t n = ks_dec_u32(d);
  if (d->err != 0 || n > d->left / ENTRY_DESC_LEN)
    return KS_EPROTO;
  a->n_entries = n;
  a->entries = NULL;
  if (n == 0)
    return bulk_len == 0 ? 0 : KS_EPROTO;
  a->entries = raft_calloc(n, sizeof(*a->entries));
  if (a->entries == NULL)
    return -ENOMEM;
  size_t used = 0;
  for (uint32_t i = 0; i < n; i++) {
    a->entries[i].term = ks_dec_u64(d);
    a->entries[i].type = ks_dec_u16(d);
    uint64_t len = ks_dec_u64(d);
    if (d->err != 0 || !entry_type_ok(a->entries[i].type) ||
        len > bulk_len - used)
      return KS_EPROTO;
    a->entries[i].buf.len = (size_t)len;
    used += (size_t)len;
  }
  return used == bulk_len ? 0 : KS_EPROTO;
}

/* Give the entries one batch holding a copy of the bulk: libraft frees the
 * batch once no entry of it is referenced. */
static int entries_attach_batch(struct raft_append_entries *a,
                                const uint8_t *bulk, size_t bulk_len)
{
  if (a->n_entries == 0)
    return 0;
  uint8_t *batch = raft_malloc(bulk_len > 0 ? bulk_len : 1);
  if (batch == NULL)
    return -ENOMEM;
  if (bulk_len > 0)
    memcpy(batch, bulk, bulk_len);
  size_t off = 0;
  for (unsigned i = 0; i < a->n_entries; i++) {
    a->entries[i].batch = batch;
    a->entries[i].buf.base = batch + off;
    off += a->entries[i].buf.len;
  }
  return 0;
}

static int dec_install_snapshot(ks_dec_t *d, struct raft_install_snapshot *s,
                                const uint8_t *bulk, size_t bulk_len)
{
  s->term = ks_dec_u64(d);
  s->last_index = ks_dec_u64(d);
  s->last_term = ks_dec_u64(d);
  s->conf_index = ks_dec_u64(d);
  s->data.base = NULL;
  s->data.len = 0;
  int err = ks_raft_conf_decode(d, &s->conf);
  uint64_t len = ks_dec_u64(d);
  if (err != 0 || (err = ks_dec_finish(d)) != 0)
    return err;
  if (len != bulk_len)
    return KS_EPROTO;
  s->data.base = raft_malloc(bulk_len > 0 ? bulk_len : 1);
  if (s->data.base == NULL)
    return -ENOMEM;
  if (bulk_len > 0)
    memcpy(s->data.base, bulk, bulk_len);
  s->data.len = bulk_len;
  return 0;
}

static int dec_fields(ks_dec_t *d, struct raft_message *m, const uint8_t *bulk,
                      size_t bulk_len)
{
  if (m->type != RAFT_IO_APPEND_ENTRIES &&
      m->type != RAFT_IO_INSTALL_SNAPSHOT && bulk_len != 0)
    return KS_EPROTO;
  switch (m->type) {
  case RAFT_IO_REQUEST_VOTE:
    return dec_request_vote(d, &m->request_vote);
  case RAFT_IO_REQUEST_VOTE_RESULT:
    return dec_request_vote_result(d, &m->request_vote_result);
  case RAFT_IO_APPEND_ENTRIES:
    m->append_entries.term = ks_dec_u64(d);
    m->append_entries.prev_log_index = ks_dec_u64(d);
    m->append_entries.prev_log_term = ks_dec_u64(d);
    m->append_entries.leader_commit = ks_dec_u64(d);
    return dec_entries(d, &m->append_entries, bulk_len);
  case RAFT_IO_APPEND_ENTRIES_RESULT:
    m->append_entries_result.term = ks_dec_u64(d);
    m->append_entries_result.rejected = ks_dec_u64(d);
    m->append_entries_result.last_log_index = ks_dec_u64(d);
    return 0;
  case RAFT_IO_INSTALL_SNAPSHOT:
    return dec_install_snapshot(d, &m->install_snapshot, bulk, bulk_len);
  case RAFT_IO_TIMEOUT_NOW:
    m->timeout_now.term = ks_dec_u64(d);
    m->timeout_now.last_log_index = ks_dec_u64(d);
    m->timeout_now.last_log_term = ks_dec_u64(d);
    return 0;
  default:
    return KS_EPROTO;
  }
}

void ks_raft_msg_release(struct raft_message *m)
{
  if (m->type == RAFT_IO_APPEND_ENTRIES && m->append_entries.entries != NULL) {
    raft_free(m->append_entries.entries[0].batch);
    raft_free(m->append_entries.entries);
    m->append_entries.entries = NULL;
    m->append_entries.n_entries = 0;
  } else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
    raft_configuration_close(&m->install_snapshot.conf);
    raft_free(m->install_snapshot.data.base);
    m->install_snapshot.data.base = NULL;
  }
}

int ks_raft_msg_decode(const uint8_t *body, size_t body_len,
                       const uint8_t *bulk, size_t bulk_len, uint64_t *group,
                       char addr[KS_RAFT_ADDR_MAX], struct raft_message *out)
{
  memset(out, 0, sizeof(*out));
  ks_dec_t d;
  ks_dec_init(&d, body, body_len);
  uint8_t version = ks_dec_u8(&d);
  out->type = ks_dec_u8(&d);
  *group = ks_dec_u64(&d);
  out->server_id = ks_dec_u64(&d);
  ks_dec_str(&d, addr, KS_RAFT_ADDR_MAX);
  if (d.err != 0)
    return d.err;
  if (version != WIRE_VERSION || out->server_id == 0 || addr[0] == '\0')
    return KS_EPROTO;
  out->server_address = addr;
  int err = dec_fields(&d, out, bulk, bulk_len);
  if (err == 0)
    err = ks_dec_finish(&d);
  if (err == 0 && out->type == RAFT_IO_APPEND_ENTRIES)
    err = entries_attach_batch(&out->append_entries, bulk, bulk_len);
  if (err != 0) {
    /* Entries without a batch yet: free the array alone. */
    if (out->type == RAFT_IO_APPEND_ENTRIES) {
      raft_free(out->append_entries.entries);
      out->append_entries.entries = NULL;
    } else {
      ks_raft_msg_release(out);
    }
    return err;
  }
  return 0;
}
