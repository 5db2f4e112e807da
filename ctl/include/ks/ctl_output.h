/*
 * ctl_output.h — how the `kiseki` admin CLI prints: tables for people,
 * JSON for programs, and a progress bar for long work.
 *
 * A command collects its answer in a ks_table_t (column names, then rows of
 * strings) and hands it to one writer, so the human and the machine form
 * cannot drift apart:
 *
 *   KS_OUT_HUMAN  a table whose columns are aligned by display width
 *                 (UTF-8 aware: a CJK character takes two cells, a combining
 *                 mark none), two spaces between columns, header in upper
 *                 case; or, for a record (one row), "name  value" lines.
 *   KS_OUT_JSON   yajl_gen output: an array of objects keyed by column name,
 *                 or one object for a record; every value is a string;
 *                 escaping is yajl's (quotes, backslash, control
 *                 characters); text that is not valid UTF-8 is refused.
 *
 * The progress bar redraws one line ("\r") on a terminal and prints a plain
 * line at each tenth of the work otherwise, so logs and pipes stay
 * readable.
 *
 * OWNERSHIP.  A table copies every string it is given and frees them in
 * ks_table_free, wiping them first (a cell may hold a new secret key);
 * the JSON writer's buffers are wiped too.  Writers only read the table.
 * Nothing is global.
 *
 * ERRORS.  0, -ENOMEM, -EINVAL (wrong number of cells, invalid UTF-8 for
 * JSON), -EIO (the stream failed).
 *
 * THREADS.  A table or progress bar belongs to one thread.
 */
#ifndef KS_CTL_OUTPUT_H
#define KS_CTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum ks_out_fmt { KS_OUT_HUMAN, KS_OUT_JSON } ks_out_fmt_t;

typedef struct ks_table {
  size_t ncols;
  size_t nrows;
  /* private: ncols headers, then nrows * ncols cells, all owned */
  char **_cells;
  size_t _cap; /* rows the cell array has room for */
} ks_table_t;

/* A table with ncols (>= 1) columns named headers[0..ncols) (lower_snake:
 * they are the JSON keys).  On failure the table is empty and
 * ks_table_free is harmless. */
int ks_table_init(ks_table_t *t, size_t ncols, const char *const *headers);
/* Append a row of exactly t->ncols cells (NULL prints as ""). */
int ks_table_add(ks_table_t *t, const char *const *cells);
void ks_table_free(ks_table_t *t);

/* The whole table: aligned columns, or a JSON array of objects. */
int ks_table_write(const ks_table_t *t, ks_out_fmt_t fmt, FILE *out);
/* Row 0 as a record: "name  value" lines, or one JSON object.  -EINVAL
 * when the table has no row. */
int ks_table_write_record(const ks_table_t *t, ks_out_fmt_t fmt, FILE *out);

/* Columns the UTF-8 text s[0..n) takes on a terminal.  Invalid bytes count
 * one column each (they print as one replacement glyph). */
size_t ks_text_width(const char *s, size_t n);

/* ---- Progress ---------------------------------------------------------- */

typedef enum ks_progress_mode {
  KS_PROGRESS_AUTO, /* a bar when out is a terminal, lines otherwise */
  KS_PROGRESS_BAR,
  KS_PROGRESS_LINES,
} ks_progress_mode_t;

typedef struct ks_progress {
  FILE *out;
  const char *label; /* borrowed: must outlive the bar */
  uint64_t total;
  uint64_t done;
  bool bar;
  int shown; /* last percentage drawn (bar) or tenth printed (lines) */
} ks_progress_t;

/* Start reporting `total` units of work labelled `label` on out. */
void ks_progress_init(ks_progress_t *p, FILE *out, const char *label,
                      uint64_t total, ks_progress_mode_t mode);
/* done units are finished (clamped to total); redraws only when the
 * shown figure changes, so calling it per item is cheap. */
void ks_progress_update(ks_progress_t *p, uint64_t done);
/* Show 100% and end the line. */
void ks_progress_finish(ks_progress_t *p);

#endif /* KS_CTL_OUTPUT_H */
