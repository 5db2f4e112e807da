/*
 * bench_util.c — the helpers every ks-bench-* program shares
 * (bench_util.h).  One copy of each, so that two benchmarks that print
 * "build=", "load" or a percentile mean the same thing by it.
 */
#include "bench_util.h"

#include "ks/log.h"
#include "ks/time.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- settings ------------------------------------------------------------ */

bool ks_bench_args(const char *prog, const ks_opt_t *opts, size_t nopts,
                   int argc, char **argv, void *settings, bool *quick,
                   int *status)
{
  char err[512];
  int rc =
      ks_cfg_load(opts, nopts, NULL, argc, argv, settings, err, sizeof(err));
  if (rc > 0) { /* --help or --version was printed */
    *status = 0;
    return false;
  }
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", prog, err);
    *status = 2;
    return false;
  }
  const char *q = getenv("KS_BENCH_QUICK");
  if (q != NULL && *q != '\0' && strcmp(q, "0") != 0)
    *quick = true;
  ks_log_set_level(KS_LOG_WARN);
  *status = 0;
  return true;
}

uint64_t ks_bench_run_ns(int64_t seconds_ms, bool quick, uint64_t quick_max_ns)
{
  uint64_t ns = (uint64_t)seconds_ms * 1000000u;
  return quick && ns > quick_max_ns ? quick_max_ns : ns;
}

/* ---- figures ------------------------------------------------------------- */

double ks_bench_secs_of(uint64_t ns)
{
  return (double)ns / 1e9;
}

double ks_bench_frac(int64_t part, int64_t whole)
{
  return whole > 0 ? (double)part / (double)whole : 0;
}

double ks_bench_ratio(double x, double lim)
{
  return lim > 0 ? x / lim : 0;
}

double ks_bench_serial(double a, double b)
{
  return a > 0 && b > 0 ? 1.0 / (1.0 / a + 1.0 / b) : 0;
}

const char *ks_bench_verdict(double value, double target)
{
  return value >= target ? "PASS" : "BELOW";
}

int ks_bench_cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

double ks_bench_pct_us(const uint64_t *sorted, size_t n, double pct)
{
  if (n == 0)
    return 0;
  size_t i = (size_t)((pct / 100.0) * (double)(n - 1) + 0.5);
  return (double)sorted[i] / 1e3;
}

/* ---- the machine and the build ------------------------------------------- */

void ks_bench_cpu_model(char *out, size_t size)
{
  snprintf(out, size, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f == NULL)
    return;
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "model name", 10) != 0)
      continue;
    const char *p = strchr(line, ':');
    if (p == NULL)
      break;
    p++;
    while (*p == ' ' || *p == '\t')
      p++;
    snprintf(out, size, "%s", p);
    out[strcspn(out, "\n")] = '\0';
    break;
  }
  fclose(f);
}

/* Compiled into this library, so it describes the flags the benchmarks were
 * built with too: they share CMAKE_BUILD_TYPE.  Release keeps assertions. */
const char *ks_bench_build_desc(void)
{
#if defined(__SANITIZE_ADDRESS__)
  return "sanitized (ASan; figures not representative)";
#elif defined(__OPTIMIZE__) && defined(NDEBUG)
  return "optimized, assertions off";
#elif defined(__OPTIMIZE__)
  return "optimized, assertions on (Release)";
#else
  return "not optimized (Debug; figures not representative)";
#endif
}

int ks_bench_exe_dir(char *out, size_t size)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return n < 0 ? -errno : -ENOENT;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL)
    return -ENOENT;
  *slash = '\0';
  int w = snprintf(out, size, "%s", exe);
  return w >= 0 && (size_t)w < size ? 0 : -ENAMETOOLONG;
}

int ks_bench_scratch_dir(const char *prog, char *dir, size_t size)
{
  const char *base = getenv("KS_BENCH_DIR");
  if (base == NULL)
    base = getenv("TMPDIR");
  int w = snprintf(dir, size, "%s/%s-XXXXXX", base ? base : "/tmp", prog);
  if (w < 0 || (size_t)w >= size)
    return -ENAMETOOLONG;
  return mkdtemp(dir) ? 0 : -errno;
}

/* ---- CPU accounting ------------------------------------------------------ */

double ks_bench_self_cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double ks_bench_machine_busy_s(void)
{
  unsigned long long v[8] = {0};
  double busy = 0;
  FILE *f = fopen("/proc/stat", "r");
  char line[256];
  if (f != NULL && fgets(line, sizeof(line), f) &&
      strncmp(line, "cpu ", 4) == 0) {
    /* cpu user nice system idle iowait irq softirq steal, in clock ticks */
    char *p = line + 4;
    for (int i = 0; i < 8; i++)
      v[i] = strtoull(p, &p, 10);
    busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
           (double)sysconf(_SC_CLK_TCK);
  }
  if (f != NULL)
    fclose(f);
  return busy;
}

double ks_bench_other_cores(double busy_s, double ours_s, uint64_t wall_ns)
{
  double wall = ks_bench_secs_of(wall_ns), other = busy_s - ours_s;
  return wall > 0 && other > 0 ? other / wall : 0;
}

void ks_bench_load_mark(ks_bench_load_mark_t *m)
{
  m->t_ns = ks_time_mono_ns();
  m->busy_s = ks_bench_machine_busy_s();
  m->self_s = ks_bench_self_cpu_s();
}

double ks_bench_load_other(const ks_bench_load_mark_t *from)
{
  ks_bench_load_mark_t now;
  ks_bench_load_mark(&now);
  return ks_bench_other_cores(now.busy_s - from->busy_s,
                              now.self_s - from->self_s, now.t_ns - from->t_ns);
}

void ks_bench_print_load(int width, const char *what, double other, long cores)
{
  printf("load  %-*s other processes used %.2f of %ld cores meanwhile%s\n",
         width, what, other, cores,
         other > KS_BENCH_OTHER_LOAD_WARN
             ? " (figures disturbed: rerun when idle)"
             : "");
}

/* ---- limits -------------------------------------------------------------- */

int ks_bench_gcm_message(EVP_CIPHER_CTX *c, const uint8_t iv[12],
                         const uint8_t *in, uint8_t *out, size_t len)
{
  int outl;
  uint8_t tag[16];
  if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) != 1)
    return -1;
  for (size_t off = 0; off < len; off += KS_BENCH_EVP_BLOCK)
    if (EVP_EncryptUpdate(c, out + off, &outl, in + off, KS_BENCH_EVP_BLOCK) !=
        1)
      return -1;
  if (EVP_EncryptFinal_ex(c, out, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
    return -1;
  return 0;
}
