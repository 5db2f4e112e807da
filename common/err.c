/*
 * err.c — the one table that names every error code (see ks/err.h).
 */
#include "ks/err.h"

#include <string.h>

const char *ks_strerror(int err)
{
  if (err == 0)
    return "ok";
  switch (err) {
#define KS__ERR_MSG(name, off, msg) \
  case name:                        \
    return msg;
    KS_ERR_MAP(KS__ERR_MSG)
#undef KS__ERR_MSG
  default:
    break;
  }
  if (err < 0 && err > KS_ERR_BASE)
    return strerror(-err); /* glibc's table is static and thread-safe */
  return "unknown error";
}

const char *ks_errname(int err)
{
  if (err == 0)
    return "OK";
  switch (err) {
#define KS__ERR_NAME(name, off, msg) \
  case name:                         \
    return #name;
    KS_ERR_MAP(KS__ERR_NAME)
#undef KS__ERR_NAME
  default:
    break;
  }
  if (err < 0 && err > KS_ERR_BASE) {
    const char *n = strerrorname_np(-err);
    return n ? n : "EUNKNOWN";
  }
  return "EUNKNOWN";
}

int ks_err_from_wire(int wire)
{
  if (wire == 0)
    return 0;
  if (wire < 0 && wire > KS_ERR_BASE)
    return wire;
  switch (wire) {
#define KS__ERR_KNOWN(name, off, msg) case name:
    KS_ERR_MAP(KS__ERR_KNOWN)
#undef KS__ERR_KNOWN
    return wire;
  default:
    return KS_EREMOTE;
  }
}
