/*
 * config.c — defaults, a JSON-with-comments file and flags into a daemon's
 * settings struct, driven by the daemon's schema (see ks/config.h).
 *
 * Shape, and why:
 *
 *  1. Two phases.  yajl's callback parser builds a small tree of our own
 *     (cfg_node_t) in which every node remembers its line; only then is the
 *     tree checked against the schema.  yajl_tree would be shorter but knows
 *     no positions, and "line 12" is most of what makes a config error quick
 *     to fix.  A node's line is the line where its token ends, found from
 *     yajl_get_bytes_consumed() inside the callback by counting newlines
 *     forward (the offset only grows, so the whole parse counts each byte
 *     once).  The whole text goes to one yajl_parse() call, so the offset is
 *     always relative to the start of the text.
 *
 *  2. Everything is bounded: the file (KS_CFG_FILE_MAX), nesting
 *     (CFG_DEPTH_MAX), values (CFG_NODES_MAX) and key paths (CFG_KEY_MAX),
 *     so a wrong path or hostile input fails cleanly instead of eating
 *     memory or stack (the tree is freed recursively; depth is bounded).
 *
 *  3. Strict.  Unknown keys, keys set twice, wrong JSON types, values out of
 *     range and unknown flags are errors; a near miss gets a suggestion
 *     (edit distance <= 2).  Each message is `where:line: key: expected X,
 *     got Y` and the first error stops the load.
 *
 *  4. One conversion path per source.  Flags and defaults are text; file
 *     values are typed JSON, except that durations, sizes, enums and strings
 *     also come as JSON strings and then take the text path.  Both end in
 *     cfg__store(), the only place that writes the settings struct.
 *
 *  5. Failure leaves nothing behind: on any non-zero return every string
 *     field is freed and NULL, so callers have one cleanup rule.
 *
 * Not covered: arrays (no option kind takes one yet; a JSON array is a type
 * error), fractional or compound durations ("1.5s", "1m30s").
 */
#include "ks/config.h"

#include "ks/err.h"
#include "ks/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#define CFG_DEPTH_MAX 32    /* real files nest 2-3 levels */
#define CFG_NODES_MAX 65536 /* values in one file; schemas hold ~100 keys */
#define CFG_KEY_MAX 256     /* longest dotted key path, NUL included */
#define CFG_SUGGEST_MAX 64  /* keys longer than this get no suggestion */

#ifndef KS_VERSION
#define KS_VERSION "unknown"
#endif

/* ---- the tree ------------------------------------------------------------ */

typedef enum cfg_kind {
  CN_NULL,
  CN_BOOL,
  CN_INT,
  CN_DOUBLE,
  CN_STRING,
  CN_OBJECT,
  CN_ARRAY,
} cfg_kind_t;

typedef struct cfg_node {
  cfg_kind_t cn_kind;
  int cn_line;
  char *cn_key;      /* member name when the parent is an object */
  size_t cn_key_len; /* may differ from strlen if the name holds \u0000 */
  union {
    bool b;
    long long i;
    double d;
    struct {
      char *p;
      size_t len;
    } s;
  } cn_v;
  struct cfg_node *cn_parent, *cn_child, *cn_last, *cn_next;
} cfg_node_t;

/* Recursion depth is bounded by CFG_DEPTH_MAX, enforced while parsing. */
static void cfg__node_free(cfg_node_t *n) // NOLINT(misc-no-recursion)
{
  while (n != NULL) {
    cfg_node_t *next = n->cn_next;
    cfg__node_free(n->cn_child); /* depth <= CFG_DEPTH_MAX */
    if (n->cn_kind == CN_STRING)
      free(n->cn_v.s.p);
    free(n->cn_key);
    free(n);
    n = next;
  }
}

/* ---- parsing: yajl callbacks build the tree ------------------------------ */

typedef struct cfg_parser {
  yajl_handle cp_h;
  const char *cp_data;
  size_t cp_len;
  size_t cp_off; /* newlines counted in cp_data[0..cp_off) */
  int cp_line;   /* 1-based line at cp_off */
  cfg_node_t *cp_root, *cp_cur;
  char *cp_key; /* member name waiting for its value */
  size_t cp_key_len;
  int cp_depth;
  size_t cp_nodes;
  const char *cp_fail; /* why a callback stopped the parse */
  bool cp_oom;
} cfg_parser_t;

/* Line of the token yajl has just lexed. */
static int cfg__line(cfg_parser_t *p)
{
  size_t off = yajl_get_bytes_consumed(p->cp_h);
  if (off > p->cp_len)
    off = p->cp_len;
  for (; p->cp_off < off; p->cp_off++) {
    if (p->cp_data[p->cp_off] == '\n')
      p->cp_line++;
  }
  return p->cp_line;
}

static char *cfg__memdup(const void *s, size_t len)
{
  char *c = malloc(len + 1);
  if (c != NULL) {
    memcpy(c, s, len);
    c[len] = '\0';
  }
  return c;
}

static cfg_node_t *cfg__add(cfg_parser_t *p, cfg_kind_t kind)
{
  if (++p->cp_nodes > CFG_NODES_MAX) {
    p->cp_fail = "too many values";
    return NULL;
  }
  cfg_node_t *n = calloc(1, sizeof *n);
  if (n == NULL) {
    p->cp_oom = true;
    return NULL;
  }
  n->cn_kind = kind;
  n->cn_line = cfg__line(p);
  n->cn_key = p->cp_key;
  n->cn_key_len = p->cp_key_len;
  p->cp_key = NULL;
  n->cn_parent = p->cp_cur;
  if (p->cp_cur == NULL)
    p->cp_root = n;
  else if (p->cp_cur->cn_last == NULL)
    p->cp_cur->cn_child = p->cp_cur->cn_last = n;
  else
    p->cp_cur->cn_last = p->cp_cur->cn_last->cn_next = n;
  return n;
}

static int cfg__cb_null(void *ctx)
{
  return cfg__add(ctx, CN_NULL) != NULL;
}

static int cfg__cb_bool(void *ctx, int b)
{
  cfg_node_t *n = cfg__add(ctx, CN_BOOL);
  if (n != NULL)
    n->cn_v.b = b != 0;
  return n != NULL;
}

static int cfg__cb_int(void *ctx, long long i)
{
  cfg_node_t *n = cfg__add(ctx, CN_INT);
  if (n != NULL)
    n->cn_v.i = i;
  return n != NULL;
}

static int cfg__cb_double(void *ctx, double d)
{
  cfg_node_t *n = cfg__add(ctx, CN_DOUBLE);
  if (n != NULL)
    n->cn_v.d = d;
  return n != NULL;
}

static int cfg__cb_string(void *ctx, const unsigned char *s, size_t len)
{
  cfg_parser_t *p = ctx;
  cfg_node_t *n = cfg__add(p, CN_STRING);
  if (n == NULL)
    return 0;
  n->cn_v.s.p = cfg__memdup(s, len);
  n->cn_v.s.len = len;
  p->cp_oom = n->cn_v.s.p == NULL;
  return !p->cp_oom;
}

static int cfg__cb_key(void *ctx, const unsigned char *s, size_t len)
{
  cfg_parser_t *p = ctx;
  free(p->cp_key); /* never set here, but cheap insurance */
  p->cp_key = cfg__memdup(s, len);
  p->cp_key_len = len;
  p->cp_oom = p->cp_key == NULL;
  return !p->cp_oom;
}

static int cfg__open(cfg_parser_t *p, cfg_kind_t kind)
{
  if (++p->cp_depth > CFG_DEPTH_MAX) {
    p->cp_fail = "nesting too deep";
    return 0;
  }
  cfg_node_t *n = cfg__add(p, kind);
  if (n != NULL)
    p->cp_cur = n;
  return n != NULL;
}

static int cfg__close(cfg_parser_t *p)
{
  assert(p->cp_cur != NULL && p->cp_depth > 0);
  p->cp_depth--;
  p->cp_cur = p->cp_cur->cn_parent;
  return 1;
}

static int cfg__cb_start_map(void *ctx)
{
  return cfg__open(ctx, CN_OBJECT);
}
static int cfg__cb_start_array(void *ctx)
{
  return cfg__open(ctx, CN_ARRAY);
}
static int cfg__cb_end(void *ctx)
{
  return cfg__close(ctx);
}

static const yajl_callbacks cfg__callbacks = {
    .yajl_null = cfg__cb_null,
    .yajl_boolean = cfg__cb_bool,
    .yajl_integer = cfg__cb_int,
    .yajl_double = cfg__cb_double,
    .yajl_string = cfg__cb_string,
    .yajl_start_map = cfg__cb_start_map,
    .yajl_map_key = cfg__cb_key,
    .yajl_end_map = cfg__cb_end,
    .yajl_start_array = cfg__cb_start_array,
    .yajl_end_array = cfg__cb_end,
};

/* `name:line:col: message` for a syntax error at byte `off`. */
static void cfg__syntax_error(const cfg_parser_t *p, const char *name,
                              size_t off, const char *msg, char *err,
                              size_t size)
{
  int line = 1;
  size_t bol = 0;
  for (size_t i = 0; i < off && i < p->cp_len; i++) {
    if (p->cp_data[i] == '\n') {
      line++;
      bol = i + 1;
    }
  }
  size_t mlen = strcspn(msg, "\n"); /* yajl ends its message in "\n" */
  snprintf(err, size, "%s:%d:%zu: %.*s", name, line, off - bol + 1, (int)mlen,
           msg);
}

/* Report why yajl stopped; `at_end` when it failed in yajl_complete_parse. */
static int cfg__parse_failed(cfg_parser_t *p, const char *name, bool at_end,
                             char *err, size_t size)
{
  if (p->cp_oom)
    return -ENOMEM;
  size_t off = at_end ? p->cp_len : yajl_get_bytes_consumed(p->cp_h);
  if (p->cp_fail != NULL) {
    cfg__syntax_error(p, name, off, p->cp_fail, err, size);
    return KS_ECONFIG;
  }
  unsigned char *msg = yajl_get_error(p->cp_h, 0, NULL, 0);
  if (msg == NULL)
    return -ENOMEM;
  cfg__syntax_error(p, name, off, (const char *)msg, err, size);
  yajl_free_error(p->cp_h, msg);
  return KS_ECONFIG;
}

/* Parse data[0..len) into *root.  0, KS_ECONFIG (message in err), -ENOMEM. */
static int cfg__parse(const char *name, const char *data, size_t len,
                      cfg_node_t **root, char *err, size_t size)
{
  cfg_parser_t p = {.cp_data = data, .cp_len = len, .cp_line = 1};
  p.cp_h = yajl_alloc(&cfg__callbacks, NULL, &p);
  if (p.cp_h == NULL)
    return -ENOMEM;
  yajl_config(p.cp_h, yajl_allow_comments, 1);
  int rc = 0;
  if (len > 0 &&
      yajl_parse(p.cp_h, (const unsigned char *)data, len) != yajl_status_ok)
    rc = cfg__parse_failed(&p, name, false, err, size);
  else if (yajl_complete_parse(p.cp_h) != yajl_status_ok)
    rc = cfg__parse_failed(&p, name, true, err, size);
  yajl_free(p.cp_h);
  free(p.cp_key);
  if (rc != 0) {
    cfg__node_free(p.cp_root);
    return rc;
  }
  *root = p.cp_root;
  return 0;
}

/* ---- errors -------------------------------------------------------------- */

typedef struct cfg_ctx {
  const ks_cfg_loader_t *cx_ld;
  void *cx_settings;
  const char *cx_where;  /* file name, "command line" or "default" */
  const char *cx_keypfx; /* shown before keys: "", "chunkd." or "--" */
  int *cx_lines;         /* per option: line that set it in the file */
  char *cx_err;
  size_t cx_errsz;
} cfg_ctx_t;

/* `where[:line]: [key: ]message`; returns KS_ECONFIG. */
static int cfg__fail(cfg_ctx_t *cx, int line, const char *key, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static int cfg__fail(cfg_ctx_t *cx, int line, const char *key, const char *fmt,
                     ...)
{
  if (cx->cx_errsz == 0)
    return KS_ECONFIG;
  char loc[32] = "";
  if (line > 0)
    snprintf(loc, sizeof loc, ":%d", line);
  int n = snprintf(cx->cx_err, cx->cx_errsz, "%s%s: ", cx->cx_where, loc);
  if (key != NULL && n >= 0 && (size_t)n < cx->cx_errsz)
    n += snprintf(cx->cx_err + n, cx->cx_errsz - (size_t)n,
                  "%s%s: ", cx->cx_keypfx, key);
  va_list ap;
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < cx->cx_errsz)
    vsnprintf(cx->cx_err + n, cx->cx_errsz - (size_t)n, fmt, ap);
  va_end(ap);
  return KS_ECONFIG;
}

/* s double-quoted with escapes (always quoted), cut to fit, for messages. */
static const char *cfg__quote(char *buf, size_t size, const char *s)
{
  char q[72];
  ks_log_quote(q, sizeof q, s);
  snprintf(buf, size, q[0] == '"' ? "%s" : "\"%s\"", q);
  return buf;
}

/* Levenshtein distance, or SIZE_MAX for strings too long to bother. */
static size_t cfg__distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > CFG_SUGGEST_MAX || lb > CFG_SUGGEST_MAX)
    return SIZE_MAX;
  size_t row[CFG_SUGGEST_MAX + 1];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[lb];
}

/* Suggestions: the closest candidate within edit distance 2. */
typedef struct cfg_near {
  const char *best;
  size_t dist;
} cfg_near_t;

static void cfg__consider(cfg_near_t *near, const char *key, const char *cand)
{
  size_t d = cfg__distance(key, cand);
  if (d < near->dist) {
    near->dist = d;
    near->best = cand;
  }
}

static const char *cfg__suggest_key(const ks_cfg_loader_t *ld, const char *key)
{
  cfg_near_t near = {NULL, 3};
  for (size_t i = 0; i < ld->n; i++)
    cfg__consider(&near, key, ld->schema[i].key);
  return near.best;
}

static const char *cfg__suggest_name(const char *const *names, const char *key)
{
  cfg_near_t near = {NULL, 3};
  for (size_t i = 0; names[i] != NULL; i++)
    cfg__consider(&near, key, names[i]);
  return near.best;
}

static int cfg__unknown(cfg_ctx_t *cx, int line, const char *key,
                        const char *what)
{
  const char *near = cfg__suggest_key(cx->cx_ld, key);
  if (near == NULL)
    return cfg__fail(cx, line, key, "unknown %s", what);
  return cfg__fail(cx, line, key, "unknown %s (did you mean %s%s?)", what,
                   cx->cx_keypfx, near);
}

/* ---- schema lookups ------------------------------------------------------ */

static const ks_opt_t *cfg__find(const ks_cfg_loader_t *ld, const char *key,
                                 size_t len)
{
  for (size_t i = 0; i < ld->n; i++) {
    const char *k = ld->schema[i].key;
    if (strncmp(k, key, len) == 0 && k[len] == '\0')
      return &ld->schema[i];
  }
  return NULL;
}

/* Whether some key continues `prefix` with a '.': "rpc" for "rpc.listen". */
static bool cfg__is_section(const ks_cfg_loader_t *ld, const char *prefix)
{
  size_t len = strlen(prefix);
  for (size_t i = 0; i < ld->n; i++) {
    const char *k = ld->schema[i].key;
    if (strncmp(k, prefix, len) == 0 && k[len] == '.')
      return true;
  }
  return false;
}

/* Debug-build check of the table itself: kinds, choices, unique keys, no
 * key that is also another's section. */
static bool cfg__schema_ok(const ks_opt_t *schema, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    const ks_opt_t *o = &schema[i];
    if (o->key == NULL || o->key[0] == '\0' || o->type > KS_OPT_ENUM)
      return false;
    if ((o->type == KS_OPT_ENUM) != (o->choices != NULL))
      return false;
    if (o->type == KS_OPT_ENUM && o->choices[0] == NULL)
      return false;
    for (size_t j = 0; j < i; j++) {
      size_t lj = strlen(schema[j].key), li = strlen(o->key);
      size_t m = li < lj ? li : lj;
      if (strncmp(o->key, schema[j].key, m) == 0 &&
          (o->key[m] == '\0' || o->key[m] == '.') &&
          (schema[j].key[m] == '\0' || schema[j].key[m] == '.'))
        return false;
    }
  }
  return true;
}

/* ---- values -------------------------------------------------------------- */

typedef union cfg_scalar {
  int64_t i; /* INT, DURATION_MS, SIZE */
  double d;
  bool b;
  int e; /* ENUM index */
  const char *s;
} cfg_scalar_t;

typedef struct cfg_unit {
  const char *name;
  int64_t mult;
} cfg_unit_t;

static const cfg_unit_t cfg__duration_units[] = {
    {"", 1},        {"ms", 1},      {"s", 1000},     {"m", 60000},
    {"min", 60000}, {"h", 3600000}, {"d", 86400000}, {NULL, 0},
};

static const cfg_unit_t cfg__size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1LL << 10},
    {"kib", 1LL << 10},
    {"kb", 1000LL},
    {"m", 1LL << 20},
    {"mib", 1LL << 20},
    {"mb", 1000000LL},
    {"g", 1LL << 30},
    {"gib", 1LL << 30},
    {"gb", 1000000000LL},
    {"t", 1LL << 40},
    {"tib", 1LL << 40},
    {"tb", 1000000000000LL},
    {"p", 1LL << 50},
    {"pib", 1LL << 50},
    {"pb", 1000000000000000LL},
    {NULL, 0},
};

/* Digits, optional spaces, a unit from `units`: "4 MiB", "500ms", "7". */
static int cfg__parse_units(const char *s, const cfg_unit_t *units, bool icase,
                            int64_t *out)
{
  if (s == NULL || *s < '0' || *s > '9')
    return KS_ECONFIG;
  int64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (INT64_MAX - (*s - '0')) / 10)
      return KS_ECONFIG;
    v = v * 10 + (*s - '0');
  }
  while (*s == ' ')
    s++;
  for (const cfg_unit_t *u = units; u->name != NULL; u++) {
    bool same = icase ? strcasecmp(s, u->name) == 0 : strcmp(s, u->name) == 0;
    if (!same)
      continue;
    if (v > INT64_MAX / u->mult)
      return KS_ECONFIG;
    *out = v * u->mult;
    return 0;
  }
  return KS_ECONFIG;
}

int ks_cfg_parse_duration_ms(const char *s, int64_t *out)
{
  return cfg__parse_units(s, cfg__duration_units, false, out);
}

int ks_cfg_parse_size(const char *s, int64_t *out)
{
  return cfg__parse_units(s, cfg__size_units, true, out);
}

static bool cfg__parse_int(const char *s, int64_t *out)
{
  if (!(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
    return false; /* strtoll would skip spaces */
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0')
    return false;
  *out = v;
  return true;
}

static bool cfg__parse_double(const char *s, double *out)
{
  if (!(*s == '-' || *s == '+' || *s == '.' || (*s >= '0' && *s <= '9')))
    return false; /* no spaces, "nan" or "inf" */
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
    return false;
  *out = v;
  return true;
}

static bool cfg__parse_bool(const char *s, bool *out)
{
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < KS_NELEM(yes); i++) {
    if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
      *out = strcasecmp(s, yes[i]) == 0;
      return true;
    }
  }
  return false;
}

static bool cfg__parse_enum(const ks_opt_t *o, const char *s, int *out)
{
  for (int i = 0; o->choices[i] != NULL; i++) {
    if (strcmp(s, o->choices[i]) == 0) {
      *out = i;
      return true;
    }
  }
  return false;
}

/* Text (a flag, a default or a JSON string) to a value of o's kind. */
static bool cfg__from_text(const ks_opt_t *o, const char *s, cfg_scalar_t *v)
{
  switch (o->type) {
  case KS_OPT_STRING:
    v->s = s;
    return true;
  case KS_OPT_INT:
    return cfg__parse_int(s, &v->i);
  case KS_OPT_BOOL:
    return cfg__parse_bool(s, &v->b);
  case KS_OPT_DOUBLE:
    return cfg__parse_double(s, &v->d);
  case KS_OPT_DURATION_MS:
    return ks_cfg_parse_duration_ms(s, &v->i) == 0;
  case KS_OPT_SIZE:
    return ks_cfg_parse_size(s, &v->i) == 0;
  case KS_OPT_ENUM:
    return cfg__parse_enum(o, s, &v->e);
  }
  return false;
}

/* Whether kind o takes a JSON string through the text parsers. */
static bool cfg__takes_text(const ks_opt_t *o)
{
  return o->type == KS_OPT_STRING || o->type == KS_OPT_DURATION_MS ||
         o->type == KS_OPT_SIZE || o->type == KS_OPT_ENUM;
}

/* A typed (non-string) JSON value, or null, to a value of o's kind.  The node's
 * kind is checked before its union is read. */
static bool cfg__from_json(const ks_opt_t *o, const cfg_node_t *n,
                           cfg_scalar_t *v)
{
  bool is_int = n->cn_kind == CN_INT;
  switch (o->type) {
  case KS_OPT_STRING: /* null unsets: what ks_cfg_dump writes for NULL */
    v->s = NULL;
    return n->cn_kind == CN_NULL;
  case KS_OPT_INT:
    if (is_int)
      v->i = n->cn_v.i;
    return is_int;
  case KS_OPT_DURATION_MS:
  case KS_OPT_SIZE:
    if (is_int)
      v->i = n->cn_v.i;
    return is_int && n->cn_v.i >= 0;
  case KS_OPT_BOOL:
    if (n->cn_kind == CN_BOOL)
      v->b = n->cn_v.b;
    return n->cn_kind == CN_BOOL;
  case KS_OPT_DOUBLE:
    if (is_int || n->cn_kind == CN_DOUBLE)
      v->d = is_int ? (double)n->cn_v.i : n->cn_v.d;
    return is_int || n->cn_kind == CN_DOUBLE;
  default:
    return false;
  }
}

static bool cfg__bounded(const ks_opt_t *o)
{
  return o->min != 0 || o->max != 0;
}

static bool cfg__in_range(const ks_opt_t *o, const cfg_scalar_t *v)
{
  if (!cfg__bounded(o))
    return true;
  switch (o->type) {
  case KS_OPT_INT:
  case KS_OPT_DURATION_MS:
  case KS_OPT_SIZE:
    return v->i >= o->min && v->i <= o->max;
  case KS_OPT_DOUBLE:
    return v->d >= (double)o->min && v->d <= (double)o->max;
  default:
    return true;
  }
}

/* "integer in 1..65536", `one of "a", "b"`, ... for messages. */
static const char *cfg__expected(const ks_opt_t *o, char *buf, size_t size)
{
  static const char *const what[KS_OPT_ENUM + 1] = {
      [KS_OPT_STRING] = "string",        [KS_OPT_INT] = "integer",
      [KS_OPT_BOOL] = "true or false",   [KS_OPT_DOUBLE] = "number",
      [KS_OPT_DURATION_MS] = "duration", [KS_OPT_SIZE] = "size",
      [KS_OPT_ENUM] = "one of"};
  static const char *const unit[KS_OPT_ENUM + 1] = {
      [KS_OPT_DURATION_MS] = " ms", [KS_OPT_SIZE] = " bytes"};
  size_t n = (size_t)snprintf(buf, size, "%s", what[o->type]);
  if (cfg__bounded(o) && o->type != KS_OPT_ENUM && n < size)
    n += (size_t)snprintf(buf + n, size - n, " in %" PRId64 "..%" PRId64 "%s",
                          o->min, o->max, unit[o->type] ? unit[o->type] : "");
  if (o->type == KS_OPT_DURATION_MS && n < size)
    snprintf(buf + n, size - n, " (integer ms, or \"500ms\", \"2s\", \"1m\")");
  if (o->type == KS_OPT_SIZE && n < size)
    snprintf(buf + n, size - n, " (integer bytes, or \"4KiB\", \"1G\")");
  for (int i = 0; o->type == KS_OPT_ENUM && o->choices[i] && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s\"%s\"", i ? ", " : " ",
                          o->choices[i]);
  return buf;
}

/* `string "lots"`, "integer 7", "object", ... for messages. */
static const char *cfg__got(const cfg_node_t *n, char *buf, size_t size)
{
  char q[80];
  switch (n->cn_kind) {
  case CN_NULL:
    snprintf(buf, size, "null");
    break;
  case CN_BOOL:
    snprintf(buf, size, n->cn_v.b ? "true" : "false");
    break;
  case CN_INT:
    snprintf(buf, size, "integer %lld", n->cn_v.i);
    break;
  case CN_DOUBLE:
    snprintf(buf, size, "number %g", n->cn_v.d);
    break;
  case CN_OBJECT:
    snprintf(buf, size, "object");
    break;
  case CN_ARRAY:
    snprintf(buf, size, "array");
    break;
  case CN_STRING:
    if (strlen(n->cn_v.s.p) != n->cn_v.s.len)
      snprintf(buf, size, "string holding \\u0000");
    else
      snprintf(buf, size, "string %s", cfg__quote(q, sizeof q, n->cn_v.s.p));
    break;
  }
  return buf;
}

/* ---- storing ------------------------------------------------------------- */

static void *cfg__field(const cfg_ctx_t *cx, const ks_opt_t *o)
{
  return (char *)cx->cx_settings + o->offset;
}

/* The one place that writes the settings struct. */
static int cfg__store(cfg_ctx_t *cx, const ks_opt_t *o, const cfg_scalar_t *v)
{
  void *f = cfg__field(cx, o);
  switch (o->type) {
  case KS_OPT_STRING: {
    char *copy = v->s ? strdup(v->s) : NULL;
    if (v->s != NULL && copy == NULL)
      return -ENOMEM;
    free(*(char **)f);
    *(char **)f = copy;
    break;
  }
  case KS_OPT_INT:
  case KS_OPT_DURATION_MS:
  case KS_OPT_SIZE:
    *(int64_t *)f = v->i;
    break;
  case KS_OPT_BOOL:
    *(bool *)f = v->b;
    break;
  case KS_OPT_DOUBLE:
    *(double *)f = v->d;
    break;
  case KS_OPT_ENUM:
    *(int *)f = v->e;
    break;
  }
  return 0;
}

/* Set o from text; errors are reported at `line` (0: none) as `shown`. */
static int cfg__set_text(cfg_ctx_t *cx, const ks_opt_t *o, int line,
                         const char *shown, const char *s)
{
  cfg_scalar_t v;
  if (cfg__from_text(o, s, &v) && cfg__in_range(o, &v))
    return cfg__store(cx, o, &v);
  char exp[256], q[80];
  return cfg__fail(cx, line, shown, "expected %s, got %s",
                   cfg__expected(o, exp, sizeof exp),
                   cfg__quote(q, sizeof q, s));
}

static int cfg__set_json(cfg_ctx_t *cx, const ks_opt_t *o, const cfg_node_t *n,
                         const char *shown)
{
  cfg_scalar_t v;
  bool ok;
  if (n->cn_kind == CN_STRING && cfg__takes_text(o))
    ok = strlen(n->cn_v.s.p) == n->cn_v.s.len && /* no \u0000 inside */
         cfg__from_text(o, n->cn_v.s.p, &v);
  else
    ok = cfg__from_json(o, n, &v);
  if (ok && cfg__in_range(o, &v))
    return cfg__store(cx, o, &v);
  char exp[256], got[96];
  return cfg__fail(cx, n->cn_line, shown, "expected %s, got %s",
                   cfg__expected(o, exp, sizeof exp),
                   cfg__got(n, got, sizeof got));
}

/* ---- applying the file --------------------------------------------------- */

// NOLINTBEGIN(misc-no-recursion): apply_object and apply_member recurse once
// per nesting level of the tree, bounded by CFG_DEPTH_MAX at parse time.
static int cfg__apply_object(cfg_ctx_t *cx, const cfg_node_t *obj, char *path,
                             size_t plen);

static int cfg__apply_leaf(cfg_ctx_t *cx, const ks_opt_t *o,
                           const cfg_node_t *n, const char *path)
{
  int *first = &cx->cx_lines[o - cx->cx_ld->schema];
  if (*first != 0)
    return cfg__fail(cx, n->cn_line, path, "set twice (first at line %d)",
                     *first);
  *first = n->cn_line;
  return cfg__set_json(cx, o, n, path);
}

/* One member, whose dotted path is path[0..len). */
static int cfg__apply_member(cfg_ctx_t *cx, const cfg_node_t *n, char *path,
                             size_t len)
{
  const ks_opt_t *o = cfg__find(cx->cx_ld, path, len);
  if (o != NULL)
    return cfg__apply_leaf(cx, o, n, path);
  if (!cfg__is_section(cx->cx_ld, path))
    return cfg__unknown(cx, n->cn_line, path, "key");
  if (n->cn_kind == CN_OBJECT)
    return cfg__apply_object(cx, n, path, len);
  char got[96];
  return cfg__fail(cx, n->cn_line, path, "expected object (keys %s.*), got %s",
                   path, cfg__got(n, got, sizeof got));
}

/* path[0..plen) names obj ("" at the top); path has CFG_KEY_MAX bytes. */
static int cfg__apply_object(cfg_ctx_t *cx, const cfg_node_t *obj, char *path,
                             size_t plen)
{
  for (const cfg_node_t *n = obj->cn_child; n != NULL; n = n->cn_next) {
    size_t len = plen + (plen > 0) + n->cn_key_len;
    if (len >= CFG_KEY_MAX || strlen(n->cn_key) != n->cn_key_len) {
      path[plen] = '\0';
      return cfg__fail(cx, n->cn_line, plen ? path : NULL,
                       "member name too long or holding NUL");
    }
    if (plen > 0)
      path[plen] = '.';
    memcpy(path + plen + (plen > 0), n->cn_key, n->cn_key_len + 1);
    int rc = cfg__apply_member(cx, n, path, len);
    path[plen] = '\0';
    if (rc != 0)
      return rc;
  }
  return 0;
}

// NOLINTEND(misc-no-recursion)

/* Node file: our section holds our keys; the others must be sections. */
static int cfg__apply_sections(cfg_ctx_t *cx, const cfg_node_t *root)
{
  const ks_cfg_loader_t *ld = cx->cx_ld;
  for (const cfg_node_t *n = root->cn_child; n != NULL; n = n->cn_next) {
    bool ours = strcmp(n->cn_key, ld->section) == 0;
    char got[96], path[CFG_KEY_MAX] = "";
    if (n->cn_kind != CN_OBJECT)
      return cfg__fail(cx, n->cn_line, n->cn_key,
                       "expected object (a daemon's section), got %s",
                       cfg__got(n, got, sizeof got));
    if (!ours && ld->sections != NULL) {
      const char *near = cfg__suggest_name(ld->sections, n->cn_key);
      bool known = near != NULL && strcmp(near, n->cn_key) == 0;
      if (!known)
        return cfg__fail(cx, n->cn_line, n->cn_key, "unknown section%s%s%s",
                         near ? " (did you mean " : "", near ? near : "",
                         near ? "?)" : "");
    }
    if (!ours)
      continue;
    char pfx[CFG_KEY_MAX]; /* messages show "chunkd.rpc.listen" */
    snprintf(pfx, sizeof pfx, "%s.", ld->section);
    cx->cx_keypfx = pfx;
    int rc = cfg__apply_object(cx, n, path, 0);
    cx->cx_keypfx = "";
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Parse the text and apply it over the settings. */
static int cfg__apply_text(cfg_ctx_t *cx, const char *name, const char *data,
                           size_t len)
{
  cfg_node_t *root = NULL;
  cx->cx_where = name;
  if (len > KS_CFG_FILE_MAX)
    return cfg__fail(cx, 0, NULL, "larger than %u bytes", KS_CFG_FILE_MAX);
  int rc = cfg__parse(name, data, len, &root, cx->cx_err, cx->cx_errsz);
  if (rc != 0)
    return rc;
  char got[96], path[CFG_KEY_MAX] = "";
  if (root->cn_kind != CN_OBJECT)
    rc = cfg__fail(cx, root->cn_line, NULL,
                   "expected an object at the top, got %s",
                   cfg__got(root, got, sizeof got));
  else if (cx->cx_ld->section != NULL)
    rc = cfg__apply_sections(cx, root);
  else
    rc = cfg__apply_object(cx, root, path, 0);
  cfg__node_free(root);
  return rc;
}

/* Read up to KS_CFG_FILE_MAX + 1 bytes of path (one more than allowed, so
 * cfg__apply_text can tell a file that is too large) into a malloc'd buffer. */
static int cfg__read_file(cfg_ctx_t *cx, const char *path, char **data,
                          size_t *len)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cfg__fail(cx, 0, NULL, "cannot open: %s", strerror(errno));
  char *buf = malloc(KS_CFG_FILE_MAX + 1);
  size_t got = 0;
  ssize_t r = 1;
  while (buf != NULL && got <= KS_CFG_FILE_MAX && r != 0) {
    r = read(fd, buf + got, KS_CFG_FILE_MAX + 1 - got);
    if (r < 0 && errno != EINTR)
      break;
    got += r > 0 ? (size_t)r : 0;
  }
  int e = errno;
  close(fd);
  if (buf == NULL)
    return -ENOMEM;
  if (r < 0) {
    free(buf);
    return cfg__fail(cx, 0, NULL, "cannot read: %s", strerror(e));
  }
  *data = buf;
  *len = got;
  return 0;
}

static int cfg__apply_file(cfg_ctx_t *cx, const char *path)
{
  char *data = NULL;
  size_t len = 0;
  cx->cx_where = path;
  int rc = cfg__read_file(cx, path, &data, &len);
  if (rc == 0) {
    rc = cfg__apply_text(cx, path, data, len);
    free(data);
  }
  return rc;
}

/* ---- defaults and flags -------------------------------------------------- */

static int cfg__defaults(cfg_ctx_t *cx)
{
  const ks_cfg_loader_t *ld = cx->cx_ld;
  cx->cx_where = "default";
  for (size_t i = 0; i < ld->n; i++) {
    const ks_opt_t *o = &ld->schema[i];
    static const cfg_scalar_t zero; /* NULL string: nothing to store */
    int rc = 0;
    if (o->def != NULL)
      rc = cfg__set_text(cx, o, 0, o->key, o->def);
    else if (o->type != KS_OPT_STRING)
      rc = cfg__store(cx, o, &zero);
    if (rc != 0)
      return rc;
  }
  return 0;
}

typedef enum cfg_action { CFG_RUN, CFG_HELP, CFG_VERSION } cfg_action_t;

/* "--name" or "--name=..." */
static bool cfg__is_flag(const char *arg, const char *name)
{
  size_t n = strlen(name);
  return strncmp(arg, "--", 2) == 0 && strncmp(arg + 2, name, n) == 0 &&
         (arg[2 + n] == '\0' || arg[2 + n] == '=');
}

/* Whether argv[i] is a schema flag whose value is the next argument. */
static bool cfg__takes_next(const ks_cfg_loader_t *ld, const char *arg)
{
  if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') != NULL)
    return false;
  const ks_opt_t *o = cfg__find(ld, arg + 2, strlen(arg + 2));
  return o != NULL && o->type != KS_OPT_BOOL;
}

/* First pass: --help, --version and --config, before anything is read. */
static int cfg__scan_std(cfg_ctx_t *cx, int argc, char **argv,
                         const char **path, cfg_action_t *act)
{
  cx->cx_where = "command line";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      *act = CFG_HELP;
      return 0;
    }
    if (strcmp(a, "--version") == 0)
      *act = CFG_VERSION;
    else if (strcmp(a, "--config") == 0 && i + 1 < argc)
      *path = argv[++i];
    else if (strcmp(a, "--config") == 0)
      return cfg__fail(cx, 0, "--config", "missing value (a file path)");
    else if (strncmp(a, "--config=", 9) == 0)
      *path = a + 9;
    else if (cfg__takes_next(cx->cx_ld, a) && i + 1 < argc)
      i++;
  }
  return 0;
}

/* One "--key[=value]" at argv[*i]; advances *i past a separate value. */
static int cfg__apply_flag(cfg_ctx_t *cx, int argc, char **argv, int *i)
{
  const char *a = argv[*i], *name = a + 2, *eq = strchr(name, '=');
  size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
  char key[CFG_KEY_MAX];
  int shown = (int)(nlen < CFG_KEY_MAX ? nlen : CFG_KEY_MAX - 1);
  snprintf(key, sizeof key, "%.*s", shown, name);
  const ks_opt_t *o = cfg__find(cx->cx_ld, name, nlen);
  if (o == NULL)
    return cfg__unknown(cx, 0, key, "option");
  const char *val = eq ? eq + 1 : NULL;
  if (val == NULL && o->type == KS_OPT_BOOL)
    val = "true";
  else if (val == NULL && *i + 1 < argc)
    val = argv[++*i];
  if (val == NULL)
    return cfg__fail(cx, 0, key, "missing value");
  return cfg__set_text(cx, o, 0, key, val);
}

/* Second pass: every flag over defaults and file. */
static int cfg__apply_flags(cfg_ctx_t *cx, int argc, char **argv)
{
  char q[80];
  cx->cx_where = "command line";
  cx->cx_keypfx = "--";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int rc = 0;
    if (strcmp(a, "--config") == 0)
      i++; /* its value was taken by cfg__scan_std */
    else if (cfg__is_flag(a, "config") || strcmp(a, "--version") == 0)
      continue;
    else if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
      rc = cfg__fail(cx, 0, NULL, "unexpected argument %s",
                     cfg__quote(q, sizeof q, a));
    else
      rc = cfg__apply_flag(cx, argc, argv, &i);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- usage --------------------------------------------------------------- */

/* What a NULL default means, for --help. */
static const char *cfg__default_text(const ks_opt_t *o)
{
  if (o->def != NULL)
    return o->def;
  switch (o->type) {
  case KS_OPT_STRING:
    return "none";
  case KS_OPT_BOOL:
    return "false";
  case KS_OPT_ENUM:
    return o->choices[0];
  default:
    return "0";
  }
}

static void cfg__usage_opt(const ks_opt_t *o, FILE *out)
{
  static const char *const meta[KS_OPT_ENUM + 1] = {[KS_OPT_STRING] = "=STRING",
                                                    [KS_OPT_INT] = "=INT",
                                                    [KS_OPT_BOOL] = "[=BOOL]",
                                                    [KS_OPT_DOUBLE] = "=NUMBER",
                                                    [KS_OPT_DURATION_MS] =
                                                        "=DURATION",
                                                    [KS_OPT_SIZE] = "=SIZE",
                                                    [KS_OPT_ENUM] = "="};
  fprintf(out, "  --%s%s", o->key, meta[o->type]);
  for (int i = 0; o->type == KS_OPT_ENUM && o->choices[i]; i++)
    fprintf(out, "%s%s", i ? "|" : "", o->choices[i]);
  if (cfg__bounded(o) && o->type != KS_OPT_BOOL && o->type != KS_OPT_ENUM &&
      o->type != KS_OPT_STRING)
    fprintf(out, "  (%" PRId64 "..%" PRId64 "%s)", o->min, o->max,
            o->type == KS_OPT_DURATION_MS ? " ms"
            : o->type == KS_OPT_SIZE      ? " bytes"
                                          : "");
  fprintf(out, "\n      %s (default: %s)\n", o->help ? o->help : "",
          cfg__default_text(o));
}

void ks_cfg_usage(const ks_opt_t *schema, size_t n, const char *prog, FILE *out)
{
  fprintf(out,
          "usage: %s [--config PATH] [--KEY=VALUE ...]\n\n"
          "  --config PATH\n      read settings from PATH (JSON, comments "
          "allowed)\n"
          "  --help, -h\n      print this help and exit\n"
          "  --version\n      print the version and exit\n\n"
          "Settings (flags override the file; in the file, dotted keys may "
          "nest as objects;\ndurations: 500ms 2s 1m 1h 1d; sizes: 4KiB 1M 1G "
          "(1024^n) or 1MB 1GB (1000^n)):\n",
          prog);
  for (size_t i = 0; i < n; i++)
    cfg__usage_opt(&schema[i], out);
}

static const char *cfg__prog(int argc, char **argv)
{
  if (argc < 1 || argv[0] == NULL)
    return "kiseki";
  const char *slash = strrchr(argv[0], '/');
  return slash ? slash + 1 : argv[0];
}

static int cfg__act(const ks_cfg_loader_t *ld, cfg_action_t act, int argc,
                    char **argv)
{
  if (act == CFG_HELP) {
    ks_cfg_usage(ld->schema, ld->n, cfg__prog(argc, argv), stdout);
    return KS_CFG_HELP;
  }
  printf("%s %s\n", cfg__prog(argc, argv),
         ld->version ? ld->version : KS_VERSION);
  return KS_CFG_VERSION;
}

/* ---- loading ------------------------------------------------------------- */

/* Null the string fields (without freeing) and set up the context. */
static int cfg__begin(cfg_ctx_t *cx, const ks_cfg_loader_t *ld, void *settings,
                      char *err, size_t err_size)
{
  assert(ld != NULL && settings != NULL);
  assert(cfg__schema_ok(ld->schema, ld->n));
  *cx = (cfg_ctx_t){.cx_ld = ld,
                    .cx_settings = settings,
                    .cx_where = "",
                    .cx_keypfx = "",
                    .cx_err = err,
                    .cx_errsz = err ? err_size : 0};
  if (cx->cx_errsz > 0)
    err[0] = '\0';
  for (size_t i = 0; i < ld->n; i++) {
    if (ld->schema[i].type == KS_OPT_STRING)
      *(char **)cfg__field(cx, &ld->schema[i]) = NULL;
  }
  cx->cx_lines = calloc(ld->n ? ld->n : 1, sizeof *cx->cx_lines);
  return cx->cx_lines ? 0 : -ENOMEM;
}

static int cfg__end(cfg_ctx_t *cx, int rc)
{
  free(cx->cx_lines);
  if (rc != 0)
    ks_cfg_free(cx->cx_ld->schema, cx->cx_ld->n, cx->cx_settings);
  if (rc == -ENOMEM && cx->cx_errsz > 0)
    snprintf(cx->cx_err, cx->cx_errsz, "out of memory");
  return rc;
}

int ks_cfg_load_ex(const ks_cfg_loader_t *ld, int argc, char **argv,
                   void *settings, char *err, size_t err_size)
{
  cfg_ctx_t cx;
  const char *path = ld->path;
  cfg_action_t act = CFG_RUN;
  int rc = cfg__begin(&cx, ld, settings, err, err_size);
  if (rc == 0)
    rc = cfg__scan_std(&cx, argc, argv, &path, &act);
  if (rc == 0 && act != CFG_RUN)
    return cfg__end(&cx, cfg__act(ld, act, argc, argv));
  if (rc == 0)
    rc = cfg__defaults(&cx);
  if (rc == 0 && path != NULL)
    rc = cfg__apply_file(&cx, path);
  if (rc == 0)
    rc = cfg__apply_flags(&cx, argc, argv);
  return cfg__end(&cx, rc);
}

int ks_cfg_load(const ks_opt_t *schema, size_t n, const char *path, int argc,
                char **argv, void *settings, char *err, size_t err_size)
{
  ks_cfg_loader_t ld = {.schema = schema, .n = n, .path = path};
  return ks_cfg_load_ex(&ld, argc, argv, settings, err, err_size);
}

int ks_cfg_load_buffer(const ks_cfg_loader_t *ld, const char *name,
                       const char *data, size_t len, void *settings, char *err,
                       size_t err_size)
{
  cfg_ctx_t cx;
  int rc = cfg__begin(&cx, ld, settings, err, err_size);
  if (rc == 0)
    rc = cfg__defaults(&cx);
  if (rc == 0)
    rc = cfg__apply_text(&cx, name, data, len);
  return cfg__end(&cx, rc);
}

void ks_cfg_free(const ks_opt_t *schema, size_t n, void *settings)
{
  for (size_t i = 0; i < n; i++) {
    if (schema[i].type != KS_OPT_STRING)
      continue;
    char **f = (char **)((char *)settings + schema[i].offset);
    free(*f);
    *f = NULL;
  }
}

/* ---- dump ---------------------------------------------------------------- */

/* v in the largest unit of `units` (ordered small to large) that divides it
 * exactly; "0ms" / "0" for zero. */
static void cfg__format_units(int64_t v, const cfg_unit_t *units,
                              const char *const *names, char *buf, size_t size)
{
  size_t best = 0;
  for (size_t i = 0; units[i].name != NULL; i++) {
    if (names[i] != NULL && v != 0 && v % units[i].mult == 0 &&
        units[i].mult >= units[best].mult)
      best = i;
  }
  snprintf(buf, size, "%" PRId64 "%s", v / units[best].mult,
           names[best] ? names[best] : "");
}

/* An enum's name, or NULL for an index the caller has broken. */
static const char *cfg__choice(const ks_opt_t *o, int e)
{
  for (int i = 0; o->choices[i] != NULL; i++) {
    if (i == e)
      return o->choices[i];
  }
  return NULL;
}

/* Durations, sizes and enums as a user would write them: "2s", "4MiB". */
static const char *cfg__value_text(const ks_opt_t *o, const void *f, char *buf,
                                   size_t size)
{
  /* Display names, parallel to the unit tables; NULL: not used for output. */
  static const char *const dur[] = {"ms", NULL, "s", "m", NULL, "h", "d"};
  static const char *const bytes[] = {"",    NULL, NULL, "KiB", NULL, NULL,
                                      "MiB", NULL, NULL, "GiB", NULL, NULL,
                                      "TiB", NULL, NULL, "PiB", NULL};
  if (o->type == KS_OPT_DURATION_MS)
    cfg__format_units(*(const int64_t *)f, cfg__duration_units, dur, buf, size);
  else if (o->type == KS_OPT_SIZE)
    cfg__format_units(*(const int64_t *)f, cfg__size_units, bytes, buf, size);
  else
    return cfg__choice(o, *(const int *)f);
  return buf;
}

static void cfg__dump_value(yajl_gen g, const ks_opt_t *o, const void *settings)
{
  const void *f = (const char *)settings + o->offset;
  const char *s = NULL;
  char buf[48];
  switch (o->type) {
  case KS_OPT_STRING:
    s = *(char *const *)f;
    break;
  case KS_OPT_INT:
    yajl_gen_integer(g, *(const int64_t *)f);
    return;
  case KS_OPT_BOOL:
    yajl_gen_bool(g, *(const bool *)f);
    return;
  case KS_OPT_DOUBLE:
    yajl_gen_double(g, *(const double *)f);
    return;
  case KS_OPT_SIZE: /* a size in no exact binary unit stays a number */
    if (*(const int64_t *)f % 1024 != 0 || *(const int64_t *)f == 0) {
      yajl_gen_integer(g, *(const int64_t *)f);
      return;
    }
    s = cfg__value_text(o, f, buf, sizeof buf);
    break;
  case KS_OPT_DURATION_MS:
  case KS_OPT_ENUM:
    s = cfg__value_text(o, f, buf, sizeof buf);
    break;
  }
  if (s == NULL)
    yajl_gen_null(g);
  else
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* Whether an earlier key already opened component key[plen..plen+clen). */
static bool cfg__dumped(const ks_opt_t *schema, size_t i, size_t plen,
                        size_t clen)
{
  const char *k = schema[i].key;
  for (size_t j = 0; j < i; j++) {
    const char *kj = schema[j].key;
    if (strncmp(kj, k, plen + clen) == 0 &&
        (kj[plen + clen] == '.' || kj[plen + clen] == '\0'))
      return true;
  }
  return false;
}

/* Members whose keys start with prefix[0..plen) (empty or ending in '.').
 * Recursion depth is the number of dots in the schema's longest key. */
// NOLINTNEXTLINE(misc-no-recursion)
static void cfg__dump_level(yajl_gen g, const ks_opt_t *schema, size_t n,
                            const void *settings, const char *prefix,
                            size_t plen)
{
  for (size_t i = 0; i < n; i++) {
    const char *k = schema[i].key, *rest = k + plen;
    if (strncmp(k, prefix, plen) != 0)
      continue;
    size_t clen = strcspn(rest, ".");
    if (cfg__dumped(schema, i, plen, clen))
      continue;
    yajl_gen_string(g, (const unsigned char *)rest, clen);
    if (rest[clen] == '\0') {
      cfg__dump_value(g, &schema[i], settings);
      continue;
    }
    yajl_gen_map_open(g);
    cfg__dump_level(g, schema, n, settings, k, plen + clen + 1);
    yajl_gen_map_close(g);
  }
}

int ks_cfg_dump(const ks_opt_t *schema, size_t n, const void *settings,
                char **out)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  if (g == NULL)
    return -ENOMEM;
  yajl_gen_config(g, yajl_gen_beautify, 1);
  yajl_gen_config(g, yajl_gen_indent_string, "  ");
  yajl_gen_map_open(g);
  cfg__dump_level(g, schema, n, settings, "", 0);
  yajl_gen_map_close(g);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  *out = cfg__memdup(buf, len);
  yajl_gen_free(g);
  return *out ? 0 : -ENOMEM;
}
