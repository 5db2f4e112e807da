/*
 * bench_util.h — what the ks-bench-* programs (bench/<name>.c) share: settings
 * and --quick handling, the arithmetic of figures and ratios, latency
 * percentiles, the machine and build description every report starts with,
 * CPU accounting (this process, and what the rest of the machine used
 * meanwhile: the `load` lines), scratch directories, and the one-core
 * AES-256-GCM limit that several benchmarks compare against.
 *
 * Benchmarks only: not part of any daemon, built as the static library
 * ks-bench-util that every ks-bench-* links.  Nothing here allocates or
 * keeps state, so each benchmark stays one self-contained file that reads
 * top to bottom; what it prints is its own (the line formats are parsed by
 * notes and tools), only the pieces of those lines are common.
 */
#ifndef KS_BENCH_UTIL_H
#define KS_BENCH_UTIL_H

#include "ks/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Above this many cores' worth of CPU used by other processes during a
 * figure, its `load` line says the figure was disturbed. */
#define KS_BENCH_OTHER_LOAD_WARN 0.25

/* ---- settings ------------------------------------------------------------ */

/* Parse argv by opts into settings (ks_cfg_load), then apply the shared
 * conventions: KS_BENCH_QUICK set to anything but "" or "0" sets *quick
 * (which points into settings: the --quick flag), and logging is cut to
 * warnings.  Returns true if the benchmark should run; false if main()
 * should return *status at once (0 after --help, 2 after a bad flag, with
 * "<prog>: <why>" on stderr).  On true the caller owns settings and frees
 * them with ks_cfg_free. */
bool ks_bench_args(const char *prog, const ks_opt_t *opts, size_t nopts,
                   int argc, char **argv, void *settings, bool *quick,
                   int *status);

/* seconds_ms in nanoseconds, at most quick_max_ns when quick. */
uint64_t ks_bench_run_ns(int64_t seconds_ms, bool quick, uint64_t quick_max_ns);

/* ---- figures ------------------------------------------------------------- */

double ks_bench_secs_of(uint64_t ns);
/* part / whole, 0 when whole is not positive (a share of samples). */
double ks_bench_frac(int64_t part, int64_t whole);
/* x / lim, 0 when the limit is not positive (a ratio to a limit). */
double ks_bench_ratio(double x, double lim);
/* The rate of two stages every byte goes through in series, 1/(1/a + 1/b);
 * 0 unless both are positive. */
double ks_bench_serial(double a, double b);
/* "PASS" if value >= target, else "BELOW": targets never fail a run. */
const char *ks_bench_verdict(double value, double target);

/* qsort comparator for uint64_t samples. */
int ks_bench_cmp_u64(const void *a, const void *b);
/* Percentile pct (0..100) of n sorted nanosecond samples, in microseconds;
 * 0 when n is 0. */
double ks_bench_pct_us(const uint64_t *sorted, size_t n, double pct);

/* ---- the machine and the build ------------------------------------------- */

/* The first "model name" of /proc/cpuinfo into out, or "unknown". */
void ks_bench_cpu_model(char *out, size_t size);
/* What the compiler says of this build ("optimized, assertions on
 * (Release)", "sanitized (...)"): a static string. */
const char *ks_bench_build_desc(void);
/* The directory this executable is in (from /proc/self/exe).  0, or a
 * negated errno (-ENAMETOOLONG if it does not fit). */
int ks_bench_exe_dir(char *out, size_t size);
/* A fresh directory $KS_BENCH_DIR/<prog>-XXXXXX (else under $TMPDIR, else
 * /tmp) into dir; the caller removes it.  0 or a negated errno. */
int ks_bench_scratch_dir(const char *prog, char *dir, size_t size);

/* ---- CPU accounting ------------------------------------------------------ */

/* CPU seconds this process (all its threads) has used so far. */
double ks_bench_self_cpu_s(void);
/* Busy CPU seconds of the whole machine so far (/proc/stat: user, nice,
 * system, irq, softirq, steal); 0 if unreadable. */
double ks_bench_machine_busy_s(void);
/* Cores' worth of CPU other processes used over wall_ns, given the
 * machine's busy seconds and ours (every process the benchmark counts as
 * its own) over the same window; never negative. */
double ks_bench_other_cores(double busy_s, double ours_s, uint64_t wall_ns);

/* A point to measure the rest of the machine's load from, counting only
 * this process as ours.  The figures are only as good as the machine was
 * quiet; this says how quiet it was. */
typedef struct ks_bench_load_mark {
  uint64_t t_ns;
  double busy_s, self_s;
} ks_bench_load_mark_t;

void ks_bench_load_mark(ks_bench_load_mark_t *m);
/* Cores' worth of CPU that other processes used since `from`. */
double ks_bench_load_other(const ks_bench_load_mark_t *from);
/* "load  <what> other processes used X of N cores meanwhile", `what`
 * left-aligned in `width` columns, with a warning past
 * KS_BENCH_OTHER_LOAD_WARN. */
void ks_bench_print_load(int width, const char *what, double other, long cores);

/* ---- limits -------------------------------------------------------------- */

/* The update size of the AES-GCM limit: `openssl speed -evp aes-256-gcm
 * -bytes 16384`. */
#define KS_BENCH_EVP_BLOCK 16384

/* One AES-256-GCM message of len bytes (a multiple of KS_BENCH_EVP_BLOCK)
 * from in to out in KS_BENCH_EVP_BLOCK updates, the way openssl speed
 * drives EVP: c was initialised with EVP_aes_256_gcm() and a key; each
 * message gets iv, a final and a tag.  In-process rather than the openssl
 * CLI, so the same library build and CPU dispatch are measured that Kiseki
 * uses.  0, or -1 if OpenSSL failed. */
int ks_bench_gcm_message(EVP_CIPHER_CTX *c, const uint8_t iv[12],
                         const uint8_t *in, uint8_t *out, size_t len);

#endif /* KS_BENCH_UTIL_H */
