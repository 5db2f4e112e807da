/*
 * metrics.c — the metrics registry and its text exposition (contract in
 * ks/metrics.h).
 *
 * Storage: every metric has one array of _Atomic uint64_t cells, allocated
 * at registration and never resized, so updates are a single relaxed atomic
 * on a fixed address:
 *   counter    cells[idx]                          the count
 *   gauge      cells[idx]                          int64 as two's complement
 *   histogram  cells[idx * stride + b], b <= nb    per-bucket counts (not
 *                                                  cumulative; b == nb is +Inf)
 *              cells[idx * stride + nb + 1]        the sum, as double bits
 *   *_fn       no cells: the callback gives the value at render time.
 * Buckets are stored per bucket and summed at render time, so an observe is
 * one increment plus a compare-and-swap loop on the sum (no lock), and the
 * rendered _count is by construction the +Inf bucket.
 *
 * Numbers are written the way Prometheus' Go parser reads them: integers
 * in full, other values in the shortest of %.15g / %.17g that reads back
 * exactly, and NaN / +Inf / -Inf spelled out.
 */
#include "ks/metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum metric_kind {
  METRIC_COUNTER,
  METRIC_GAUGE,
  METRIC_HISTOGRAM,
} metric_kind_t;

struct ks_metric {
  ks_metric_t *mt_next; /* registration order */
  metric_kind_t mt_kind;
  char *mt_name;
  char *mt_help;
  char *mt_label; /* NULL: one series, no label */
  char **mt_values;
  size_t mt_n; /* series: number of label values, or 1 */
  ks_metric_read_cb mt_cb;
  void *mt_arg;
  double *mt_bounds;
  size_t mt_nb;
  size_t mt_stride; /* histogram: cells per series */
  _Atomic uint64_t *mt_cells;
};

struct ks_metrics {
  ks_metric_t *ms_head;
  ks_metric_t *ms_tail;
};

static const char *const kind_names[] = {"counter", "gauge", "histogram"};
static const char *const hist_suffixes[] = {"_bucket", "_sum", "_count"};

/* ---- registration ------------------------------------------------------- */

int ks_metrics_new(ks_metrics_t **out)
{
  *out = calloc(1, sizeof(**out));
  return *out ? 0 : -ENOMEM;
}

static void metric_free(ks_metric_t *mt)
{
  for (size_t i = 0; mt->mt_values && i < mt->mt_n; i++)
    free(mt->mt_values[i]);
  free(mt->mt_values);
  free(mt->mt_name);
  free(mt->mt_help);
  free(mt->mt_label);
  free(mt->mt_bounds);
  free((void *)mt->mt_cells);
  free(mt);
}

void ks_metrics_free(ks_metrics_t *m)
{
  if (m == NULL)
    return;
  for (ks_metric_t *mt = m->ms_head, *next; mt; mt = next) {
    next = mt->mt_next;
    metric_free(mt);
  }
  free(m);
}

static bool name_valid(const char *s, bool colon)
{
  if (s == NULL || s[0] == '\0')
    return false;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

static bool label_valid(const ks_metric_label_t *l, metric_kind_t kind)
{
  if (l == NULL)
    return true;
  if (!name_valid(l->name, false) || strncmp(l->name, "__", 2) == 0)
    return false;
  if (kind == METRIC_HISTOGRAM && strcmp(l->name, "le") == 0)
    return false;
  if (l->values == NULL || l->n == 0 || l->n > KS_METRIC_VALUES_MAX)
    return false;
  for (size_t i = 0; i < l->n; i++)
    if (l->values[i] == NULL)
      return false;
  return true;
}

static bool bounds_valid(const double *b, size_t n)
{
  if (n > KS_METRIC_BOUNDS_MAX || (n > 0 && b == NULL))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
      return false;
  return true;
}

/* Is `name` what histogram `hist` exposes as one of its suffixed series? */
static bool hist_owns(const char *hist, const char *name)
{
  size_t n = strlen(hist);
  if (strncmp(hist, name, n) != 0)
    return false;
  for (size_t i = 0; i < 3; i++)
    if (strcmp(name + n, hist_suffixes[i]) == 0)
      return true;
  return false;
}

static bool name_taken(const ks_metrics_t *m, const char *name,
                       metric_kind_t kind)
{
  for (const ks_metric_t *mt = m->ms_head; mt; mt = mt->mt_next) {
    if (strcmp(mt->mt_name, name) == 0)
      return true;
    if (mt->mt_kind == METRIC_HISTOGRAM && hist_owns(mt->mt_name, name))
      return true;
    if (kind == METRIC_HISTOGRAM && hist_owns(name, mt->mt_name))
      return true;
  }
  return false;
}

static int metric_copy_label(ks_metric_t *mt, const ks_metric_label_t *l)
{
  mt->mt_n = 1;
  if (l == NULL)
    return 0;
  mt->mt_label = strdup(l->name);
  mt->mt_values = calloc(l->n, sizeof(*mt->mt_values));
  if (mt->mt_label == NULL || mt->mt_values == NULL)
    return -ENOMEM;
  mt->mt_n = l->n;
  for (size_t i = 0; i < l->n; i++) {
    mt->mt_values[i] = strdup(l->values[i]);
    if (mt->mt_values[i] == NULL)
      return -ENOMEM;
  }
  return 0;
}

static int metric_copy_bounds(ks_metric_t *mt, const double *b, size_t nb)
{
  mt->mt_nb = nb;
  mt->mt_stride = nb + 2; /* buckets, +Inf, sum */
  if (nb == 0)
    return 0;
  mt->mt_bounds = malloc(nb * sizeof(*b));
  if (mt->mt_bounds == NULL)
    return -ENOMEM;
  memcpy(mt->mt_bounds, b, nb * sizeof(*b));
  return 0;
}

/* Everything but the cells; rc 0 or -ENOMEM with *out NULL. */
static int metric_make(metric_kind_t kind, const char *name, const char *help,
                       const ks_metric_label_t *label, ks_metric_t **out)
{
  ks_metric_t *mt = calloc(1, sizeof(*mt));
  *out = NULL;
  if (mt == NULL)
    return -ENOMEM;
  mt->mt_kind = kind;
  mt->mt_name = strdup(name);
  mt->mt_help = strdup(help ? help : "");
  int rc = mt->mt_name && mt->mt_help ? metric_copy_label(mt, label) : -ENOMEM;
  if (rc != 0) {
    metric_free(mt);
    return rc;
  }
  *out = mt;
  return 0;
}

static int metric_cells_alloc(ks_metric_t *mt)
{
  size_t per = mt->mt_kind == METRIC_HISTOGRAM ? mt->mt_stride : 1;
  mt->mt_cells = calloc(mt->mt_n * per, sizeof(*mt->mt_cells));
  if (mt->mt_cells == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < mt->mt_n * per; i++)
    atomic_init(&mt->mt_cells[i], 0);
  return 0;
}

static void metric_link(ks_metrics_t *m, ks_metric_t *mt)
{
  if (m->ms_tail)
    m->ms_tail->mt_next = mt;
  else
    m->ms_head = mt;
  m->ms_tail = mt;
}

typedef struct metric_spec {
  metric_kind_t kind;
  const char *name;
  const char *help;
  const ks_metric_label_t *label;
  const double *bounds;
  size_t nbounds;
  ks_metric_read_cb cb;
  void *arg;
} metric_spec_t;

static int metric_register(ks_metrics_t *m, const metric_spec_t *sp,
                           ks_metric_t **out)
{
  if (out)
    *out = NULL;
  if (!name_valid(sp->name, true) || !label_valid(sp->label, sp->kind) ||
      !bounds_valid(sp->bounds, sp->nbounds))
    return -EINVAL;
  if (name_taken(m, sp->name, sp->kind))
    return -EEXIST;
  ks_metric_t *mt;
  int rc = metric_make(sp->kind, sp->name, sp->help, sp->label, &mt);
  if (rc != 0)
    return rc;
  mt->mt_cb = sp->cb;
  mt->mt_arg = sp->arg;
  rc = metric_copy_bounds(mt, sp->bounds, sp->nbounds);
  if (rc == 0 && sp->cb == NULL)
    rc = metric_cells_alloc(mt);
  if (rc != 0) {
    metric_free(mt);
    return rc;
  }
  metric_link(m, mt);
  if (out)
    *out = mt;
  return 0;
}

int ks_metric_counter_new(ks_metrics_t *m, const char *name, const char *help,
                          const ks_metric_label_t *label, ks_metric_t **out)
{
  metric_spec_t sp = {METRIC_COUNTER, name, help, label, NULL, 0, NULL, NULL};
  return metric_register(m, &sp, out);
}

int ks_metric_gauge_new(ks_metrics_t *m, const char *name, const char *help,
                        const ks_metric_label_t *label, ks_metric_t **out)
{
  metric_spec_t sp = {METRIC_GAUGE, name, help, label, NULL, 0, NULL, NULL};
  return metric_register(m, &sp, out);
}

int ks_metric_histogram_new(ks_metrics_t *m, const char *name, const char *help,
                            const ks_metric_label_t *label,
                            const double *bounds, size_t nbounds,
                            ks_metric_t **out)
{
  metric_spec_t sp = {METRIC_HISTOGRAM, name,    help, label,
                      bounds,           nbounds, NULL, NULL};
  return metric_register(m, &sp, out);
}

int ks_metric_counter_fn(ks_metrics_t *m, const char *name, const char *help,
                         const ks_metric_label_t *label, ks_metric_read_cb cb,
                         void *arg, ks_metric_t **out)
{
  metric_spec_t sp = {METRIC_COUNTER, name, help, label, NULL, 0, cb, arg};
  return cb ? metric_register(m, &sp, out) : -EINVAL;
}

int ks_metric_gauge_fn(ks_metrics_t *m, const char *name, const char *help,
                       const ks_metric_label_t *label, ks_metric_read_cb cb,
                       void *arg, ks_metric_t **out)
{
  metric_spec_t sp = {METRIC_GAUGE, name, help, label, NULL, 0, cb, arg};
  return cb ? metric_register(m, &sp, out) : -EINVAL;
}

/* ---- updates ------------------------------------------------------------ */

static _Atomic uint64_t *metric_cell(const ks_metric_t *mt, size_t idx,
                                     metric_kind_t kind)
{
  assert(mt->mt_kind == kind);
  assert(mt->mt_cells != NULL); /* not a callback metric */
  assert(idx < mt->mt_n);
  (void)kind;
  return &mt->mt_cells[mt->mt_kind == METRIC_HISTOGRAM ? idx * mt->mt_stride
                                                       : idx];
}

void ks_counter_add(ks_metric_t *c, size_t idx, uint64_t n)
{
  atomic_fetch_add_explicit(metric_cell(c, idx, METRIC_COUNTER), n,
                            memory_order_relaxed);
}

void ks_gauge_set(ks_metric_t *g, size_t idx, int64_t v)
{
  atomic_store_explicit(metric_cell(g, idx, METRIC_GAUGE), (uint64_t)v,
                        memory_order_relaxed);
}

void ks_gauge_add(ks_metric_t *g, size_t idx, int64_t delta)
{
  /* unsigned wrap-around is two's complement addition */
  atomic_fetch_add_explicit(metric_cell(g, idx, METRIC_GAUGE), (uint64_t)delta,
                            memory_order_relaxed);
}

uint64_t ks_counter_get(const ks_metric_t *c, size_t idx)
{
  return atomic_load_explicit(metric_cell(c, idx, METRIC_COUNTER),
                              memory_order_relaxed);
}

int64_t ks_gauge_get(const ks_metric_t *g, size_t idx)
{
  return (int64_t)atomic_load_explicit(metric_cell(g, idx, METRIC_GAUGE),
                                       memory_order_relaxed);
}

static double bits_double(uint64_t u)
{
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}

static uint64_t double_bits(double d)
{
  uint64_t u;
  memcpy(&u, &d, sizeof(u));
  return u;
}

void ks_histogram_observe(ks_metric_t *h, size_t idx, double v)
{
  _Atomic uint64_t *s = metric_cell(h, idx, METRIC_HISTOGRAM);
  size_t b = 0;
  while (b < h->mt_nb && !(v <= h->mt_bounds[b]))
    b++; /* NaN lands in +Inf, like Prometheus' client_golang */
  atomic_fetch_add_explicit(&s[b], 1, memory_order_relaxed);
  _Atomic uint64_t *sum = &s[h->mt_nb + 1];
  uint64_t old = atomic_load_explicit(sum, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(
      sum, &old, double_bits(bits_double(old) + v), memory_order_relaxed,
      memory_order_relaxed))
    ;
}

/* ---- exposition --------------------------------------------------------- */

/* Output with a sticky error, so rendering reads straight through. */
typedef struct render {
  ks_buf_t *r_out;
  int r_rc;
} render_t;

static void put_str(render_t *r, const char *s)
{
  if (r->r_rc == 0)
    r->r_rc = ks_buf_append_str(r->r_out, s);
}

static void put_char(render_t *r, char c)
{
  if (r->r_rc == 0)
    r->r_rc = ks_buf_append(r->r_out, &c, 1);
}

/* Help text escapes \ and newline; label values also escape ". */
static void put_escaped(render_t *r, const char *s, bool quote)
{
  for (; *s; s++) {
    if (*s == '\\')
      put_str(r, "\\\\");
    else if (*s == '\n')
      put_str(r, "\\n");
    else if (quote && *s == '"')
      put_str(r, "\\\"");
    else
      put_char(r, *s);
  }
}

static void put_double(render_t *r, double v)
{
  char tmp[40];
  if (isnan(v)) {
    put_str(r, "NaN");
    return;
  }
  if (isinf(v)) {
    put_str(r, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  snprintf(tmp, sizeof(tmp), "%.15g", v);
  if (strtod(tmp, NULL) != v)
    snprintf(tmp, sizeof(tmp), "%.17g", v);
  put_str(r, tmp);
}

static void put_u64(render_t *r, uint64_t v)
{
  char tmp[24];
  snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
  put_str(r, tmp);
}

/* name{label="value",le="bound"}: either part may be absent. */
static void put_series(render_t *r, const ks_metric_t *mt, const char *suffix,
                       size_t idx, const double *le)
{
  put_str(r, mt->mt_name);
  put_str(r, suffix);
  if (mt->mt_label == NULL && le == NULL) {
    put_char(r, ' ');
    return;
  }
  put_char(r, '{');
  if (mt->mt_label) {
    put_str(r, mt->mt_label);
    put_str(r, "=\"");
    put_escaped(r, mt->mt_values[idx], true);
    put_str(r, le ? "\"," : "\"");
  }
  if (le) {
    put_str(r, "le=\"");
    put_double(r, *le);
    put_char(r, '"');
  }
  put_str(r, "} ");
}

static void render_histogram(render_t *r, const ks_metric_t *mt, size_t idx)
{
  const _Atomic uint64_t *s = &mt->mt_cells[idx * mt->mt_stride];
  uint64_t cum = 0;
  double inf = INFINITY;
  for (size_t b = 0; b <= mt->mt_nb; b++) {
    cum += atomic_load_explicit(&s[b], memory_order_relaxed);
    put_series(r, mt, "_bucket", idx, b < mt->mt_nb ? &mt->mt_bounds[b] : &inf);
    put_u64(r, cum);
    put_char(r, '\n');
  }
  put_series(r, mt, "_sum", idx, NULL);
  put_double(r, bits_double(atomic_load_explicit(&s[mt->mt_nb + 1],
                                                 memory_order_relaxed)));
  put_char(r, '\n');
  put_series(r, mt, "_count", idx, NULL);
  put_u64(r, cum);
  put_char(r, '\n');
}

static void render_value(render_t *r, const ks_metric_t *mt, size_t idx)
{
  put_series(r, mt, "", idx, NULL);
  if (mt->mt_cb) {
    put_double(r, mt->mt_cb(mt->mt_arg, idx));
  } else {
    uint64_t v = atomic_load_explicit(&mt->mt_cells[idx], memory_order_relaxed);
    char tmp[24];
    if (mt->mt_kind == METRIC_GAUGE)
      snprintf(tmp, sizeof(tmp), "%" PRId64, (int64_t)v);
    else
      snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    put_str(r, tmp);
  }
  put_char(r, '\n');
}

static void render_metric(render_t *r, const ks_metric_t *mt)
{
  put_str(r, "# HELP ");
  put_str(r, mt->mt_name);
  put_char(r, ' ');
  put_escaped(r, mt->mt_help, false);
  put_str(r, "\n# TYPE ");
  put_str(r, mt->mt_name);
  put_char(r, ' ');
  put_str(r, kind_names[mt->mt_kind]);
  put_char(r, '\n');
  for (size_t i = 0; i < mt->mt_n; i++) {
    if (mt->mt_kind == METRIC_HISTOGRAM)
      render_histogram(r, mt, i);
    else
      render_value(r, mt, i);
  }
}

int ks_metrics_render(const ks_metrics_t *m, ks_buf_t *out)
{
  render_t r = {out, 0};
  for (const ks_metric_t *mt = m->ms_head; mt && r.r_rc == 0; mt = mt->mt_next)
    render_metric(&r, mt);
  return r.r_rc;
}
