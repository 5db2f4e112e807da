/*
 * metrics.h — a small Prometheus metrics registry: counters, gauges and
 * histograms, rendered in the text exposition format 0.0.4 (what every
 * daemon serves on GET /metrics, see ks/admin_http.h and DESIGN §11).
 *
 * SHAPE.  A metric is one family: a name, a help text and at most one label
 * whose values are fixed when the metric is registered (device index,
 * operation name, error class...).  A series is addressed by the index of
 * its label value, so an update is one atomic add on a cell known at
 * registration time: no lookup, no allocation, no lock.  A metric without a
 * label has one series, index 0.  Families with several label dimensions
 * or label values discovered at run time are deliberately out of scope.
 *
 * Two ways to get values in:
 *  - owned cells, updated by the component (ks_counter_add, ks_gauge_set,
 *    ks_histogram_observe);
 *  - read callbacks (ks_metric_counter_fn / ks_metric_gauge_fn), called at
 *    scrape time, for values a component already keeps (ks_rpc_server_stats,
 *    ks_s3_server_stats...), so nothing is counted twice.
 *
 * THREADS.  Registration (ks_metric_*_new) and ks_metrics_free are not
 * concurrent with anything: do them at start-up and shutdown on one thread.
 * Updates of owned cells may come from any thread at any time (relaxed
 * atomics).  ks_metrics_render may run concurrently with updates; each cell
 * is read once, so a histogram's _count always equals its +Inf bucket.
 * Read callbacks run on the thread that renders (for daemons, the loop
 * thread serving /metrics) and must not block.
 *
 * OWNERSHIP.  The registry owns its metrics; handles (ks_metric_t *) stay
 * valid until ks_metrics_free.  Names, help texts, label names and values
 * and bucket bounds are copied at registration.
 *
 * ERRORS.  0 or -EINVAL (bad name: not [a-zA-Z_:][a-zA-Z0-9_:]*; bad label
 * name: not [a-zA-Z_][a-zA-Z0-9_]*, or starting with "__", or "le" on a
 * histogram; label without values or values without a label; more than
 * KS_METRIC_VALUES_MAX values; bounds not strictly increasing or more than
 * KS_METRIC_BOUNDS_MAX), -EEXIST (name taken, including as a histogram's
 * NAME_bucket, NAME_sum or NAME_count), -ENOMEM.
 *
 * TRAPS.  A series index out of range is a bug (assert).  Counter names
 * should end in _total; the registry does not add it.  Callbacks receive
 * the arg given at registration: the component it reads must outlive every
 * render (close the admin listener before freeing the component).
 */
#ifndef KS_METRICS_H
#define KS_METRICS_H

#include "ks/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Label values per metric: a chunkd's device list (KS_DEV_MAX, 256) is the
 * longest list a daemon has. */
#define KS_METRIC_VALUES_MAX 256
/* Enough for a latency histogram from 10 us to 100 s in 1-2-5 steps. */
#define KS_METRIC_BOUNDS_MAX 32

typedef struct ks_metrics ks_metrics_t;
typedef struct ks_metric ks_metric_t;

/* The single label of a metric: name and its values (values[0..n)).  Pass
 * NULL for a metric without a label. */
typedef struct ks_metric_label {
  const char *name;
  const char *const *values;
  size_t n;
} ks_metric_label_t;

/* Read callback: the current value of series idx (0 when no label). */
typedef double (*ks_metric_read_cb)(void *arg, size_t idx);

/* New empty registry.  Errors: -ENOMEM. */
int ks_metrics_new(ks_metrics_t **out);
/* Free the registry and every metric in it.  NULL is a no-op. */
void ks_metrics_free(ks_metrics_t *m);

/* Register a counter (monotonic, starts at 0). */
int ks_metric_counter_new(ks_metrics_t *m, const char *name, const char *help,
                          const ks_metric_label_t *label, ks_metric_t **out);
/* Register a gauge (signed, starts at 0). */
int ks_metric_gauge_new(ks_metrics_t *m, const char *name, const char *help,
                        const ks_metric_label_t *label, ks_metric_t **out);
/* Register a histogram with bucket upper bounds bounds[0..nbounds)
 * (strictly increasing, finite; +Inf is implicit). */
int ks_metric_histogram_new(ks_metrics_t *m, const char *name, const char *help,
                            const ks_metric_label_t *label,
                            const double *bounds, size_t nbounds,
                            ks_metric_t **out);
/* Register a counter or gauge whose values cb(arg, idx) gives at scrape
 * time.  out may be NULL (there is nothing to update). */
int ks_metric_counter_fn(ks_metrics_t *m, const char *name, const char *help,
                         const ks_metric_label_t *label, ks_metric_read_cb cb,
                         void *arg, ks_metric_t **out);
int ks_metric_gauge_fn(ks_metrics_t *m, const char *name, const char *help,
                       const ks_metric_label_t *label, ks_metric_read_cb cb,
                       void *arg, ks_metric_t **out);

/* Updates: any thread, lock-free.  idx selects the label value. */
void ks_counter_add(ks_metric_t *c, size_t idx, uint64_t n);
static inline void ks_counter_inc(ks_metric_t *c, size_t idx)
{
  ks_counter_add(c, idx, 1);
}
void ks_gauge_set(ks_metric_t *g, size_t idx, int64_t v);
void ks_gauge_add(ks_metric_t *g, size_t idx, int64_t delta);
void ks_histogram_observe(ks_metric_t *h, size_t idx, double v);

/* Current value of an owned counter or gauge cell (tests, logs). */
uint64_t ks_counter_get(const ks_metric_t *c, size_t idx);
int64_t ks_gauge_get(const ks_metric_t *g, size_t idx);

/* Append every metric, in registration order, in the text format 0.0.4
 * (# HELP, # TYPE, then the series) to out.  Errors: -ENOMEM (out then
 * holds a prefix; the caller discards it). */
int ks_metrics_render(const ks_metrics_t *m, ks_buf_t *out);

/* The content type of what ks_metrics_render writes. */
#define KS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif /* KS_METRICS_H */
