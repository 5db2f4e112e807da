/*
 * output.c — the CLI's tables, JSON and progress bar (ks/ctl_output.h).
 *
 * Column alignment needs the display width of UTF-8 text, not its byte
 * length.  wcwidth(3) would need setlocale() and its answer depends on the
 * user's locale; a CLI whose table breaks under LANG=C is worse than one
 * with a small table of its own, so ks_text_width decodes UTF-8 itself and
 * knows the ranges that matter in names and keys: East Asian wide and
 * full-width characters and emoji take two columns, combining marks and
 * zero-width characters none.  It is an approximation of Unicode's East
 * Asian Width property, good for the text this tool prints.
 *
 * JSON goes through yajl_gen with UTF-8 validation on, so escaping is the
 * library's and invalid text is refused rather than printed.
 *
 * The commands' one-line error messages (ctl.h) are printed here too, so
 * every message has the same shape, and so is the one record most commands
 * answer with (ctl_print_record).
 */
#include "ks/ctl_output.h"

#include "ctl.h"
#include "ks/crypto.h"
#include "ks/err.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#define SEP "  "
#define BAR_CELLS 30

/* ---- UTF-8 width ------------------------------------------------------- */

typedef struct range {
  uint32_t lo, hi;
} range_t;

static const range_t wide[] = {
    {0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},
    {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE30, 0xFE4F},
    {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
    {0x1F900, 0x1F9FF}, {0x20000, 0x3FFFD},
};

static const range_t zero[] = {
    {0x0300, 0x036F}, {0x200B, 0x200F}, {0x20D0, 0x20FF},
    {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
};

static bool in_ranges(uint32_t c, const range_t *r, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (c >= r[i].lo && c <= r[i].hi)
      return true;
  return false;
}

/* Decode one UTF-8 sequence at s[0..n): its length, or 0 when invalid
 * (overlong forms, surrogates and values above U+10FFFF included). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
  static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  size_t len = s[0] < 0x80   ? 1
               : s[0] < 0xC0 ? 0
               : s[0] < 0xE0 ? 2
               : s[0] < 0xF0 ? 3
               : s[0] < 0xF8 ? 4
                             : 0;
  if (len == 0 || len > n)
    return 0;
  uint32_t c = len == 1 ? s[0] : s[0] & (0x7F >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    c = c << 6 | (s[i] & 0x3F);
  }
  if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  *cp = c;
  return len;
}

size_t ks_text_width(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t w = 0;
  while (n > 0) {
    uint32_t c = 0;
    size_t len = utf8_decode(p, n, &c);
    if (len == 0) {
      w++; /* an invalid byte */
      len = 1;
    } else if (in_ranges(c, wide, sizeof(wide) / sizeof(wide[0]))) {
      w += 2;
    } else if (!in_ranges(c, zero, sizeof(zero) / sizeof(zero[0]))) {
      w++;
    }
    p += len;
    n -= len;
  }
  return w;
}

/* ---- Table ------------------------------------------------------------- */

static char *cell_dup(const char *s)
{
  return strdup(s != NULL ? s : "");
}

static const char *cell(const ks_table_t *t, size_t row, size_t col)
{
  return t->_cells[(row + 1) * t->ncols + col]; /* row -1 is the header */
}

static const char *header(const ks_table_t *t, size_t col)
{
  return t->_cells[col];
}

int ks_table_init(ks_table_t *t, size_t ncols, const char *const *headers)
{
  assert(ncols > 0);
  memset(t, 0, sizeof(*t));
  t->_cells = calloc(ncols, sizeof(char *));
  if (t->_cells == NULL)
    return -ENOMEM;
  t->ncols = ncols;
  for (size_t i = 0; i < ncols; i++) {
    t->_cells[i] = cell_dup(headers[i]);
    if (t->_cells[i] == NULL) {
      ks_table_free(t);
      return -ENOMEM;
    }
  }
  return 0;
}

static int table_grow(ks_table_t *t)
{
  size_t cap = t->_cap ? t->_cap * 2 : 8;
  char **c = realloc(t->_cells, (cap + 1) * t->ncols * sizeof(char *));
  if (c == NULL)
    return -ENOMEM;
  t->_cells = c;
  t->_cap = cap;
  return 0;
}

int ks_table_add(ks_table_t *t, const char *const *cells)
{
  assert(t->_cells != NULL);
  if (t->nrows == t->_cap && table_grow(t) != 0)
    return -ENOMEM;
  char **row = t->_cells + (t->nrows + 1) * t->ncols;
  for (size_t i = 0; i < t->ncols; i++) {
    row[i] = cell_dup(cells[i]);
    if (row[i] == NULL) {
      while (i-- > 0)
        free(row[i]);
      return -ENOMEM;
    }
  }
  t->nrows++;
  return 0;
}

void ks_table_free(ks_table_t *t)
{
  if (t->_cells != NULL) {
    for (size_t i = 0; i < (t->nrows + 1) * t->ncols; i++) {
      if (t->_cells[i] == NULL)
        continue; /* a header row that failed half-way */
      ks_secure_zero(t->_cells[i], strlen(t->_cells[i]));
      free(t->_cells[i]);
    }
    free(t->_cells);
  }
  memset(t, 0, sizeof(*t));
}

/* ---- Human form -------------------------------------------------------- */

static size_t width(const char *s)
{
  return ks_text_width(s, strlen(s));
}

static void pad(FILE *out, size_t n)
{
  while (n-- > 0)
    fputc(' ', out);
}

static void upper_put(const char *s, FILE *out)
{
  for (; *s; s++)
    fputc(toupper((unsigned char)*s), out);
}

/* One line of cells; the last column is not padded (no trailing blanks). */
static void row_put(const ks_table_t *t, size_t row, const size_t *w, FILE *out)
{
  for (size_t c = 0; c < t->ncols; c++) {
    const char *s = row == SIZE_MAX ? header(t, c) : cell(t, row, c);
    if (c > 0)
      fputs(SEP, out);
    if (row == SIZE_MAX)
      upper_put(s, out);
    else
      fputs(s, out);
    if (c + 1 < t->ncols)
      pad(out, w[c] - width(s));
  }
  fputc('\n', out);
}

static int table_human(const ks_table_t *t, FILE *out)
{
  size_t *w = calloc(t->ncols, sizeof(size_t));
  if (w == NULL)
    return -ENOMEM;
  for (size_t c = 0; c < t->ncols; c++) {
    w[c] = width(header(t, c));
    for (size_t r = 0; r < t->nrows; r++) {
      size_t cw = width(cell(t, r, c));
      w[c] = cw > w[c] ? cw : w[c];
    }
  }
  row_put(t, SIZE_MAX, w, out);
  for (size_t r = 0; r < t->nrows; r++)
    row_put(t, r, w, out);
  free(w);
  return ferror(out) ? -EIO : 0;
}

static int record_human(const ks_table_t *t, FILE *out)
{
  size_t w = 0;
  for (size_t c = 0; c < t->ncols; c++) {
    size_t hw = width(header(t, c));
    w = hw > w ? hw : w;
  }
  for (size_t c = 0; c < t->ncols; c++) {
    fputs(header(t, c), out);
    pad(out, w - width(header(t, c)));
    fprintf(out, SEP "%s\n", cell(t, 0, c));
  }
  return ferror(out) ? -EIO : 0;
}

/* ---- JSON form --------------------------------------------------------- *
 * yajl's buffer holds the printed cells (a new secret key among them), so
 * it gets an allocator that wipes every block it gives back: each block
 * carries its size in front. */

typedef struct blk {
  size_t n;
  max_align_t _align[];
} blk_t;

static void *wipe_malloc(void *ctx, size_t n)
{
  (void)ctx;
  blk_t *b = malloc(sizeof(blk_t) + n);
  if (b == NULL)
    return NULL;
  b->n = n;
  return b + 1;
}

static void wipe_free(void *ctx, void *p)
{
  (void)ctx;
  if (p == NULL)
    return;
  blk_t *b = (blk_t *)p - 1;
  ks_secure_zero(p, b->n);
  free(b);
}

static void *wipe_realloc(void *ctx, void *p, size_t n)
{
  if (p == NULL)
    return wipe_malloc(ctx, n);
  void *q = wipe_malloc(ctx, n);
  if (q == NULL)
    return NULL;
  size_t old = ((blk_t *)p - 1)->n;
  memcpy(q, p, old < n ? old : n);
  wipe_free(ctx, p);
  return q;
}

static const yajl_alloc_funcs wipe_funcs = {wipe_malloc, wipe_realloc,
                                            wipe_free, NULL};

static int gen_str(yajl_gen g, const char *s)
{
  yajl_gen_status st = yajl_gen_string(g, (const unsigned char *)s, strlen(s));
  if (st == yajl_gen_invalid_string)
    return -EINVAL;
  return st == yajl_gen_status_ok ? 0 : -ENOMEM;
}

static int gen_row(yajl_gen g, const ks_table_t *t, size_t row)
{
  int rc = yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -ENOMEM;
  for (size_t c = 0; c < t->ncols && rc == 0; c++) {
    rc = gen_str(g, header(t, c));
    if (rc == 0)
      rc = gen_str(g, cell(t, row, c));
  }
  if (rc == 0 && yajl_gen_map_close(g) != yajl_gen_status_ok)
    rc = -ENOMEM;
  return rc;
}

static int gen_rows(yajl_gen g, const ks_table_t *t, bool record)
{
  if (record)
    return gen_row(g, t, 0);
  int rc = yajl_gen_array_open(g) == yajl_gen_status_ok ? 0 : -ENOMEM;
  for (size_t r = 0; r < t->nrows && rc == 0; r++)
    rc = gen_row(g, t, r);
  if (rc == 0 && yajl_gen_array_close(g) != yajl_gen_status_ok)
    rc = -ENOMEM;
  return rc;
}

static int table_json(const ks_table_t *t, bool record, FILE *out)
{
  yajl_gen g = yajl_gen_alloc(&wipe_funcs);
  if (g == NULL)
    return -ENOMEM;
  yajl_gen_config(g, yajl_gen_validate_utf8, 1);
  int rc = gen_rows(g, t, record);
  if (rc == 0) {
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    fwrite(buf, 1, len, out);
    fputc('\n', out);
    rc = ferror(out) ? -EIO : 0;
  }
  yajl_gen_free(g);
  return rc;
}

int ks_table_write(const ks_table_t *t, ks_out_fmt_t fmt, FILE *out)
{
  return fmt == KS_OUT_JSON ? table_json(t, false, out) : table_human(t, out);
}

int ks_table_write_record(const ks_table_t *t, ks_out_fmt_t fmt, FILE *out)
{
  if (t->nrows == 0)
    return -EINVAL;
  return fmt == KS_OUT_JSON ? table_json(t, true, out) : record_human(t, out);
}

/* ---- Progress ---------------------------------------------------------- */

void ks_progress_init(ks_progress_t *p, FILE *out, const char *label,
                      uint64_t total, ks_progress_mode_t mode)
{
  *p = (ks_progress_t){.out = out, .label = label, .total = total, .shown = -1};
  p->bar = mode == KS_PROGRESS_BAR ||
           (mode == KS_PROGRESS_AUTO && isatty(fileno(out)));
}

static int percent(const ks_progress_t *p)
{
  if (p->total == 0)
    return 100;
  return (int)((long double)p->done * 100 / p->total);
}

static void bar_draw(ks_progress_t *p, int pct)
{
  int fill = pct * BAR_CELLS / 100;
  fprintf(p->out, "\r%s [", p->label);
  for (int i = 0; i < BAR_CELLS; i++)
    fputc(i < fill ? '#' : ' ', p->out);
  fprintf(p->out, "] %3d%% %llu/%llu", pct, (unsigned long long)p->done,
          (unsigned long long)p->total);
  fflush(p->out);
}

void ks_progress_update(ks_progress_t *p, uint64_t done)
{
  p->done = done < p->total ? done : p->total;
  int pct = percent(p);
  int step = p->bar ? pct : pct / 10;
  if (step == p->shown)
    return;
  p->shown = step;
  if (p->bar)
    bar_draw(p, pct);
  else
    fprintf(p->out, "%s: %d%% (%llu/%llu)\n", p->label, step * 10,
            (unsigned long long)p->done, (unsigned long long)p->total);
}

void ks_progress_finish(ks_progress_t *p)
{
  ks_progress_update(p, p->total);
  if (p->bar)
    fputc('\n', p->out);
  fflush(p->out);
}

/* ---- Errors (ctl.h) ---------------------------------------------------- */

int ctl_fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("kiseki: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return CTL_FAIL;
}

int ctl_usage(const char *cmd, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "kiseki %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see 'kiseki %s --help')\n", cmd);
  va_end(ap);
  return CTL_USAGE;
}

/* ---- One record (ctl.h) ------------------------------------------------ */

/* Flushed at once: a command may still fail after printing (key create
 * prints the secret before writing the credentials file), and the record
 * must be out before that error line. */
int ctl_print_record(size_t ncols, const char *const *cols,
                     const char *const *row, bool json)
{
  ks_table_t t;
  int rc = ks_table_init(&t, ncols, cols);
  if (rc == 0)
    rc = ks_table_add(&t, row);
  if (rc == 0)
    rc = ks_table_write_record(&t, json ? KS_OUT_JSON : KS_OUT_HUMAN, stdout);
  ks_table_free(&t);
  fflush(stdout);
  return rc == 0 ? CTL_OK : ctl_fail("cannot print: %s", ks_strerror(rc));
}
