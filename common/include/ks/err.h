/*
 * err.h — error codes shared by every Kiseki library and daemon.
 *
 * Convention (as libuv): a function that can fail returns int, 0 on success
 * and a negative code on failure.  Codes in -1..-999 are negated errno values
 * (so -ENOENT passes straight through from a system call); Kiseki's own codes
 * live below KS_ERR_BASE, out of errno's range, as LMDB keeps MDB_* away from
 * errno.  ks_strerror() names every code, from one X-macro table, so logs and
 * RPC status fields always print the same text for the same failure.
 *
 * The numeric values of KS_E* travel on the wire (RPC response status) and
 * must never be renumbered; add new codes at the end.
 */
#ifndef KS_ERR_H
#define KS_ERR_H

#include <errno.h>

#define KS_ERR_BASE (-1000)

/* name, value offset, message */
#define KS_ERR_MAP(X)                                  \
  X(KS_EPROTO, 1, "protocol violation")                \
  X(KS_EBADMAGIC, 2, "bad frame magic")                \
  X(KS_EBADVERSION, 3, "unsupported protocol version") \
  X(KS_EBADCRC, 4, "checksum mismatch")                \
  X(KS_ETOOBIG, 5, "length exceeds limit")             \
  X(KS_ETIMEDOUT, 6, "request timed out")              \
  X(KS_ECLOSED, 7, "connection closed")                \
  X(KS_EBUSY, 8, "too many requests in flight")        \
  X(KS_ENOHANDLER, 9, "no handler for opcode")         \
  X(KS_ECONFIG, 10, "invalid configuration")           \
  X(KS_ETLS, 11, "TLS failure")                        \
  X(KS_ECRYPTO, 12, "cryptographic operation failed")  \
  X(KS_EAUTH, 13, "authentication failed")             \
  X(KS_ECORRUPT, 14, "data corrupt")                   \
  X(KS_ECANCELED, 15, "operation canceled")            \
  X(KS_EPARSE, 16, "parse error")                      \
  X(KS_ENOTIMPL, 17, "not implemented")                \
  X(KS_EREMOTE, 18, "remote error with unknown code")

enum ks_err_code {
#define KS__ERR_ENUM(name, off, msg) name = KS_ERR_BASE - (off),
  KS_ERR_MAP(KS__ERR_ENUM)
#undef KS__ERR_ENUM
};

/* Human-readable text for any code: KS_E*, a negated errno, or 0 ("ok").
 * Never returns NULL; the string is static and thread-safe to use. */
const char *ks_strerror(int err);

/* Symbolic name ("KS_ETIMEDOUT", "ENOENT") for logs that are grepped. */
const char *ks_errname(int err);

/* Map a code received from a peer back to a local one: known codes pass
 * through, anything unknown becomes KS_EREMOTE (never a positive value). */
int ks_err_from_wire(int wire);

#endif /* KS_ERR_H */
