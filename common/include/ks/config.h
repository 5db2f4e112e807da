/*
 * config.h — a daemon's settings from defaults, a JSON file and flags.
 *
 * Each daemon describes its settings once, as a static table of ks_opt_t
 * (the schema), and keeps the values in a plain struct of its own; the
 * loader fills that struct.  The same table drives validation, `--help`
 * and `config show`, so a setting cannot exist in one and not the others.
 *
 *   typedef struct chunkd_settings {
 *     char *listen;            // KS_OPT_STRING
 *     int64_t max_inflight;    // KS_OPT_INT
 *     int64_t timeout_ms;      // KS_OPT_DURATION_MS
 *     int log_level;           // KS_OPT_ENUM (index into choices)
 *   } chunkd_settings_t;
 *
 *   static const char *const levels[] = {"debug", "info", "warn", "error",
 *                                        NULL};
 *   static const ks_opt_t chunkd_opts[] = {
 *     {"rpc.listen", KS_OPT_STRING, "0.0.0.0:7200", 0, 0, NULL,
 *      "address to serve RPC on", offsetof(chunkd_settings_t, listen)},
 *     {"rpc.max_inflight", KS_OPT_INT, "256", 1, 65536, NULL,
 *      "requests in flight per connection",
 *      offsetof(chunkd_settings_t, max_inflight)},
 *     ...
 *   };
 *
 *   chunkd_settings_t s;
 *   char err[512];
 *   int rc = ks_cfg_load(chunkd_opts, KS_NELEM(chunkd_opts),
 *                        "/etc/kiseki/node.json", argc, argv, &s, err,
 *                        sizeof err);
 *   if (rc > 0) exit(0);        // --help or --version was printed
 *   if (rc < 0) { fprintf(stderr, "%s\n", err); exit(2); }
 *   ...
 *   ks_cfg_free(chunkd_opts, KS_NELEM(chunkd_opts), &s);
 *
 * Precedence, lowest first: the schema's defaults, the file, the flags.
 *
 * The file is JSON with // and C comments.  Nested objects name dotted keys:
 * {"rpc": {"listen": "x"}} and {"rpc.listen": "x"} both set "rpc.listen".
 * Validation is strict, because a typo that silently keeps a default is the
 * worst kind of misconfiguration: an unknown key, a wrong JSON type, a number
 * out of range, a value not among an enum's choices, a key set twice, an
 * unknown flag, all fail the load.  Every message says where (file and line,
 * or "command line"), which key, what was expected and what was found:
 *
 *   node.json:12: rpc.max_inflight: expected integer in 1..65536, got
 *     string "lots"
 *   node.json:3:17: parse error: invalid object key (must be a string)
 *
 * (a syntax error's column is where yajl stopped: at or just past the
 * offending token).
 *
 * Flags: `--KEY=VALUE` or `--KEY VALUE` for every schema key; a bare
 * `--KEY` sets a KS_OPT_BOOL to true (a bool takes a value only with '=').
 * The loader also handles `--config PATH` (overrides the default path),
 * `--help`/`-h` (prints usage built from the schema to stdout) and
 * `--version`.  Arguments that are not flags are errors.
 *
 * Node files (DESIGN §11: one file per node, a section per daemon) are read
 * with ks_cfg_load_ex() and a `section`: that top-level object is the
 * daemon's namespace (absent: defaults and flags only), every other top-level
 * member must be an object (another daemon's section, not validated here)
 * and, when `sections` lists them, one of those names.  Keys in messages are
 * then shown in full ("chunkd.rpc.listen"); flags stay relative.
 *
 * Thread-safety: the functions keep no global state; a settings struct
 * belongs to whoever loaded it.  To reload (SIGHUP), load into a fresh struct
 * and swap it in, so a failed reload leaves the running settings untouched.
 */
#ifndef KS_CONFIG_H
#define KS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The C type of the settings field each kind writes (at `offset`). */
typedef enum ks_opt_type {
  KS_OPT_STRING,      /* char *: malloc'd copy; NULL: no default, or null */
  KS_OPT_INT,         /* int64_t: JSON integer, or decimal text on a flag */
  KS_OPT_BOOL,        /* bool: true/false (flags: also yes/no/on/off/1/0) */
  KS_OPT_DOUBLE,      /* double: any JSON number; finite */
  KS_OPT_DURATION_MS, /* int64_t ms: integer ms, "500ms" "2s" "1m" "1h" "1d" */
  KS_OPT_SIZE,        /* int64_t bytes: integer, or "4KiB" "1G" (binary:
                         K M G T P, KiB..PiB = 1024^n) "1GB" (SI: KB..PB) */
  KS_OPT_ENUM,        /* int: index into choices; the file holds the name */
} ks_opt_type_t;

typedef struct ks_opt {
  const char *key; /* dotted, lower_snake parts: "rpc.listen" */
  ks_opt_type_t type;
  /* The default, written as on a flag ("256", "2s", "info"); NULL means
   * NULL / 0 / false / the first choice.  A bad default is a schema bug and
   * fails every load with a "default:" message. */
  const char *def;
  /* Inclusive bounds for INT, DOUBLE, DURATION_MS (ms) and SIZE (bytes);
   * min == max == 0 means unbounded (DURATION_MS and SIZE are never
   * negative anyway).  Ignored for other kinds. */
  int64_t min, max;
  const char *const *choices; /* ENUM: NULL-terminated names; else NULL */
  const char *help;           /* one line for --help */
  size_t offset;              /* offsetof(your_settings_t, field) */
} ks_opt_t;

/* Extended loader arguments; ks_cfg_load() is this with only schema, n and
 * path set. */
typedef struct ks_cfg_loader {
  const ks_opt_t *schema;
  size_t n;
  const char *path;    /* default file; NULL: none unless --config is given */
  const char *section; /* node file: the top-level object that is ours */
  const char *const *sections; /* node file: all allowed top-level names,
                                  NULL-terminated; NULL: any object */
  const char *version; /* printed by --version; NULL: the build's version */
} ks_cfg_loader_t;

/* Positive results: the loader printed what was asked; main() exits 0. */
#define KS_CFG_HELP 1
#define KS_CFG_VERSION 2

/* Largest file the loader reads; config files are small, and a bound keeps a
 * wrong path (a disk image, /dev/zero) from eating memory. */
#define KS_CFG_FILE_MAX (1u << 20)

#ifndef KS_NELEM
#define KS_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* Fill `settings` from defaults, then the file (`path`, or the --config
 * flag's), then the flags in argv[1..argc) (argv[0] names the program in
 * --help).  Every schema field is written; previous contents are NOT freed
 * (call ks_cfg_free first when reusing a struct).
 *
 * Returns 0 on success: the string fields now own malloc'd memory, released
 * by ks_cfg_free().  KS_CFG_HELP / KS_CFG_VERSION: usage or version was
 * printed to stdout.  KS_ECONFIG: the file or the flags are invalid, the file
 * cannot be read, or the schema has a bad default; err holds one line
 * (always NUL-terminated, truncated to err_size).  -ENOMEM.  On any non-zero
 * return the settings hold no memory (string fields are NULL) and
 * ks_cfg_free() is harmless. */
int ks_cfg_load(const ks_opt_t *schema, size_t n, const char *path, int argc,
                char **argv, void *settings, char *err, size_t err_size);
int ks_cfg_load_ex(const ks_cfg_loader_t *ld, int argc, char **argv,
                   void *settings, char *err, size_t err_size);

/* Defaults, then the JSON text data[0..len) (no NUL needed), named `name`
 * in messages; no flags.  For tests, fuzzing and `kiseki config check`.
 * Uses ld->schema, n, section and sections; same results as ks_cfg_load. */
int ks_cfg_load_buffer(const ks_cfg_loader_t *ld, const char *name,
                       const char *data, size_t len, void *settings, char *err,
                       size_t err_size);

/* Free the string fields and set them to NULL.  Safe on a struct that a
 * failed load left behind, and idempotent. */
void ks_cfg_free(const ks_opt_t *schema, size_t n, void *settings);

/* The effective settings as pretty JSON, nested by key, that the loader
 * reads back to the same values (durations and sizes in their largest exact
 * unit: "2s", "4MiB").  *out is malloc'd and NUL-terminated; the caller
 * frees it.  Returns 0 or -ENOMEM. */
int ks_cfg_dump(const ks_opt_t *schema, size_t n, const void *settings,
                char **out);

/* The --help text: usage line, standard flags, then one entry per key with
 * its type, range or choices, default and help. */
void ks_cfg_usage(const ks_opt_t *schema, size_t n, const char *prog,
                  FILE *out);

/* Text parsers shared with flags and CLI tools.  0 or KS_ECONFIG; *out is
 * written only on success. */
int ks_cfg_parse_duration_ms(const char *s, int64_t *out);
int ks_cfg_parse_size(const char *s, int64_t *out);

#endif /* KS_CONFIG_H */
