/*
 * fuzz_config.c — libFuzzer target for the config loader (ks/config.h).
 *
 * The input is a config file.  It is loaded twice against a schema with every
 * option kind, once as a plain file and once as a node file (our section plus
 * others), through ks_cfg_load_buffer so no file system is involved.  Besides
 * "no crash, no leak, no UB", one property is checked: whatever loads, dumps
 * to JSON that loads back to the same settings (ks_cfg_dump's promise).
 */
#include "ks/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_settings {
  char *listen;
  int64_t max_inflight;
  int64_t timeout_ms;
  int64_t cache_size;
  bool tls;
  double ratio;
  int level;
  char *name;
} fz_t;

static const char *const fz_levels[] = {"debug", "info", "warn", "error", NULL};

static const ks_opt_t fz_schema[] = {
    {"rpc.listen", KS_OPT_STRING, "0.0.0.0:7200", 0, 0, NULL, "",
     offsetof(fz_t, listen)},
    {"rpc.max_inflight", KS_OPT_INT, "256", 1, 65536, NULL, "",
     offsetof(fz_t, max_inflight)},
    {"rpc.timeout", KS_OPT_DURATION_MS, "2s", 0, 0, NULL, "",
     offsetof(fz_t, timeout_ms)},
    {"cache.size", KS_OPT_SIZE, "64MiB", 0, 0, NULL, "",
     offsetof(fz_t, cache_size)},
    {"tls.enabled", KS_OPT_BOOL, NULL, 0, 0, NULL, "", offsetof(fz_t, tls)},
    {"repair.ratio", KS_OPT_DOUBLE, "0.5", -1000, 1000, NULL, "",
     offsetof(fz_t, ratio)},
    {"log.level", KS_OPT_ENUM, "info", 0, 0, fz_levels, "",
     offsetof(fz_t, level)},
    {"node.name", KS_OPT_STRING, NULL, 0, 0, NULL, "", offsetof(fz_t, name)},
};

static const char *const fz_sections[] = {"chunkd", "meta", "s3d", NULL};

static bool fz_str_eq(const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool fz_same(const fz_t *a, const fz_t *b)
{
  return fz_str_eq(a->listen, b->listen) && fz_str_eq(a->name, b->name) &&
         a->max_inflight == b->max_inflight && a->timeout_ms == b->timeout_ms &&
         a->cache_size == b->cache_size && a->tls == b->tls &&
         a->ratio == b->ratio && a->level == b->level;
}

/* Dump s and load the dump back (as a plain file): it must give s again. */
static void fz_round_trip(const ks_cfg_loader_t *plain, const fz_t *s)
{
  char *json = NULL, err[256];
  fz_t back;
  if (ks_cfg_dump(fz_schema, KS_NELEM(fz_schema), s, &json) != 0)
    abort();
  if (ks_cfg_load_buffer(plain, "dump", json, strlen(json), &back, err,
                         sizeof err) != 0 ||
      !fz_same(s, &back))
    abort();
  ks_cfg_free(fz_schema, KS_NELEM(fz_schema), &back);
  free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const ks_cfg_loader_t plain = {.schema = fz_schema, .n = KS_NELEM(fz_schema)};
  ks_cfg_loader_t node = plain;
  node.section = "chunkd";
  node.sections = fz_sections;
  const ks_cfg_loader_t *loaders[] = {&plain, &node};
  for (size_t i = 0; i < KS_NELEM(loaders); i++) {
    fz_t s;
    char err[256];
    int rc = ks_cfg_load_buffer(loaders[i], "fuzz.json", (const char *)data,
                                size, &s, err, sizeof err);
    if (rc == 0)
      fz_round_trip(&plain, &s);
    else if (strlen(err) == 0)
      abort(); /* every failure explains itself */
    ks_cfg_free(fz_schema, KS_NELEM(fz_schema), &s);
  }
  return 0;
}
