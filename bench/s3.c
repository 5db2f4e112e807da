/*
 * s3.c — ks-bench-s3: what the S3 service does on a real single-node
 * cluster next to the limits of the machine it runs on (DESIGN.md §12).
 *
 * The benchmark starts its own cluster from the binaries next to it
 * (kiseki init in a scratch directory under $KS_BENCH_DIR or TMPDIR, then
 * kiseki-meta, kiseki-chunkd with 6 device directories and kiseki-s3d on
 * free loopback ports, a tenant and an access key made by the `kiseki` CLI,
 * one bucket), measures, and stops the daemons with SIGTERM, also when it
 * fails.  Every listener, admin ones included, is moved to a port the
 * kernel picked, so the benchmark runs beside `make run` or the tests.  The
 * scratch directory is removed after a good run and kept (with the daemons'
 * logs) after a failed one.
 *
 * Limits, measured in this run with no Kiseki code:
 *
 *   disk_write    256 MiB written in 1 MiB write()s to a file in the
 *                 cluster's directory, then one fsync; timed to the fsync's
 *                 return.  (fio is not used: this is the same file system
 *                 and the same path through the page cache the daemons use.)
 *   disk_read     that file read back in 1 MiB reads with O_DIRECT; where
 *                 O_DIRECT is refused (tmpfs), after POSIX_FADV_DONTNEED,
 *                 and the line says the page cache may have served it.
 *   fsync_4KiB    4 KiB pwrite + fdatasync, one at a time: how many durable
 *                 small writes per second the device takes.
 *   aes_256_gcm   OpenSSL EVP on one core, 16 KiB updates (`openssl speed
 *                 -evp aes-256-gcm -bytes 16384`), as bench/chunk.c does.
 *   md5           OpenSSL EVP on one core, 16 KiB updates (the ETag).
 *
 * Kiseki, through libcurl's multi interface on one thread (HTTP/1.1,
 * connections kept and reused, SigV4 by CURLOPT_AWS_SIGV4 with
 * UNSIGNED-PAYLOAD for bodies):
 *
 *   put/get_4KiB_cN    N requests in flight (1, 16, 64) for a fixed time
 *                      after a warm-up: ops/s, p50 and p99 latency
 *   put/get_1MiB       a few objects, one at a time: MB/s
 *   put/get_256MiB     two objects, one at a time: MB/s
 *
 * Every object's bytes are distinct (an 8-byte stamp of object and 4 KiB
 * block over a random base), so nothing can be deduplicated, and are made
 * in the read callback, so no body is copied before it is sent.  GET bodies
 * are counted and dropped; every GET must return exactly the object's size,
 * and before the timed GETs of each size one object is read back and
 * compared byte by byte.  Any failed request (transport error, status other
 * than 200, short body, wrong bytes) ends the run with exit status 1.
 *
 * For each phase, the CPU time each daemon and this client used in the
 * timed window (from /proc/PID/stat and getrusage) is printed per 1000
 * operations or per GB: with daemons and client sharing a small machine,
 * costs say more than rates.  A `load` line says how much CPU the rest of
 * the machine used meanwhile.  Targets (4 KiB PUT >= 2,000/s and GET >=
 * 8,000/s at 64 in flight; 256 MiB GET >= 50% of one core's AES-GCM rate)
 * are reported as PASS or BELOW and never change the exit status: timings
 * are not assertions.  MB/s is 1e6 bytes per second.
 *
 * --quick (or KS_BENCH_QUICK=1): 0.3 s per 4 KiB phase, 0.2 s limits on a
 * 32 MiB file, 4 objects of 1 MiB and one of 256 MiB: a smoke test (e.g.
 * under ASan, where the daemons must also exit 0 with no leak).  --keep
 * keeps the cluster directory after a good run too; the setup line prints
 * the daemons' pids and admin ports, for perf or /metrics while it runs.
 */
#include "ks/config.h"
#include "ks/err.h"
#include "ks/time.h"

#include "bench_util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define SMALL (4 * KiB)
#define STAMP_BLOCK 4096 /* every object block starts with its stamp */
#define BIG_MAX (256 * MiB)
#define GCM_MSG (4 * MiB)
#define MAX_CONC 64
#define MAX_SAMPLES ((size_t)1 << 21)
#define NDAEMON 3
#define READY_MS 30000
#define STOP_MS 20000
#define BUCKET "bench"
#define TENANT "bench"
#define CREATE_TRIES 50
#define QUICK_RUN_NS 300000000ULL
#define TARGET_PUT_4K 2000.0
#define TARGET_GET_4K 8000.0
#define TARGET_GET_BIG_GCM 0.50
#define LOAD_WIDTH 14 /* `load` lines: the longest phase name */
/* object ids: one range per size, so every stamp is distinct */
#define ID_SMALL 0
#define ID_1MIB 1000000000LL
#define ID_256MIB 2000000000LL

/* ---- settings ------------------------------------------------------------ */

typedef struct bench_settings {
  int64_t seconds_ms;
  int64_t mib1_objects;
  int64_t mib256_objects;
  bool quick;
  bool keep;
} bench_settings_t;

static const ks_opt_t bench_opts[] = {
    {"seconds", KS_OPT_DURATION_MS, "3s", 100, 600000, NULL,
     "duration of each timed 4 KiB phase (after a warm-up of a fifth of it)",
     offsetof(bench_settings_t, seconds_ms)},
    {"objects_1mib", KS_OPT_INT, "32", 1, 100000, NULL,
     "1 MiB objects written and read",
     offsetof(bench_settings_t, mib1_objects)},
    {"objects_256mib", KS_OPT_INT, "2", 1, 100, NULL,
     "256 MiB objects written and read",
     offsetof(bench_settings_t, mib256_objects)},
    {"quick", KS_OPT_BOOL, "false", 0, 0, NULL,
     "short runs (0.3 s per 4 KiB phase, 4 + 1 large objects): a smoke test; "
     "also KS_BENCH_QUICK=1",
     offsetof(bench_settings_t, quick)},
    {"keep", KS_OPT_BOOL, "false", 0, 0, NULL,
     "keep the scratch cluster directory (logs, data) after a good run",
     offsetof(bench_settings_t, keep)},
};

/* ---- helpers ------------------------------------------------------------- */

/* CPU seconds (user + system) process pid has used so far; 0 if unknown. */
static double pid_cpu_s(pid_t pid)
{
  char path[64], line[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  double s = 0;
  if (fgets(line, sizeof(line), f)) {
    /* after "pid (comm) ", which may hold spaces: state ppid pgrp session
     * tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
    char *p = strrchr(line, ')');
    for (int field = 3; p != NULL && field <= 15; field++) {
      p = strchr(p, ' ');
      if (p == NULL)
        break;
      p++;
      if (field == 14)
        s = (double)strtoull(p, NULL, 10);
      else if (field == 15)
        s += (double)strtoull(p, NULL, 10);
    }
    s = p != NULL ? s / (double)sysconf(_SC_CLK_TCK) : 0;
  }
  fclose(f);
  return s;
}

/* ---- object contents ----------------------------------------------------- */

/* A random base with an 8-byte stamp (object id, block) at the start of every
 * 4 KiB block: distinct bytes per object without a copy per object. */
static uint8_t *g_base;

static void base_fill(uint8_t *p, size_t n)
{
  uint64_t x = ks_time_mono_ns() | 1;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    x ^= x << 13; /* xorshift64: incompressible enough, fast */
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(p + i, &x, 8);
  }
}

/* Bytes [off, off+n) of object id into dst. */
static void obj_fill(int64_t id, size_t off, uint8_t *dst, size_t n)
{
  memcpy(dst, g_base + off, n);
  size_t blk = off / STAMP_BLOCK;
  for (size_t b0 = blk * STAMP_BLOCK; b0 < off + n; b0 += STAMP_BLOCK, blk++) {
    uint64_t stamp = (uint64_t)id << 20 | blk;
    uint8_t sb[8];
    memcpy(sb, &stamp, 8);
    for (size_t i = 0; i < 8; i++)
      if (b0 + i >= off && b0 + i < off + n)
        dst[b0 + i - off] = sb[i];
  }
}

/* ---- limits -------------------------------------------------------------- */

typedef struct limits {
  double write_mb_s, read_mb_s, fsync_ops;
  bool read_direct;
  double gcm_mb_s, md5_mb_s;
} limits_t;

static int write_full(int fd, const uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? -errno : -EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int limit_disk(const char *dir, size_t bytes, uint64_t fsync_ns,
                      limits_t *l)
{
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/limit.dat", dir);
  uint8_t *buf = aligned_alloc(4096, MiB);
  if (buf == NULL)
    return -ENOMEM;
  int rc = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = -errno;
    goto out;
  }
  uint64_t t0 = ks_time_mono_ns();
  for (size_t off = 0; off < bytes && rc == 0; off += MiB) {
    memcpy(buf, g_base + off % BIG_MAX, MiB);
    rc = write_full(fd, buf, MiB);
  }
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  uint64_t t1 = ks_time_mono_ns();
  close(fd);
  if (rc != 0)
    goto out;
  l->write_mb_s = (double)bytes / 1e6 / ks_bench_secs_of(t1 - t0);

  l->read_direct = true;
  fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    l->read_direct = false;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
      (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  }
  if (fd < 0) {
    rc = -errno;
    goto out;
  }
  t0 = ks_time_mono_ns();
  size_t got = 0;
  while (got < bytes) {
    ssize_t r = read(fd, buf, MiB);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      rc = r < 0 ? -errno : -EIO;
      break;
    }
    got += (size_t)r;
  }
  t1 = ks_time_mono_ns();
  close(fd);
  if (rc != 0)
    goto out;
  l->read_mb_s = (double)bytes / 1e6 / ks_bench_secs_of(t1 - t0);

  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    goto out;
  }
  int64_t n = 0;
  t0 = t1 = ks_time_mono_ns();
  while (t1 - t0 < fsync_ns) {
    if (pwrite(fd, buf, SMALL, (off_t)((size_t)(n % 256) * SMALL)) !=
            (ssize_t)SMALL ||
        fdatasync(fd) != 0) {
      rc = -errno;
      break;
    }
    n++;
    t1 = ks_time_mono_ns();
  }
  close(fd);
  if (rc == 0)
    l->fsync_ops = (double)n / ks_bench_secs_of(t1 - t0);
out:
  (void)unlink(path);
  free(buf);
  return rc;
}

/* MB/s of one core encrypting 4 MiB messages with AES-256-GCM in 16 KiB
 * updates, or a negative value on a failure. */
static double limit_gcm(uint64_t run_ns)
{
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  uint8_t *out = malloc(GCM_MSG + 64), key[32], iv[12];
  double mb_s = -1;
  memcpy(key, g_base, sizeof(key));
  memcpy(iv, g_base + 32, sizeof(iv));
  if (c == NULL || out == NULL ||
      EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1)
    goto out;
  uint64_t t0 = ks_time_mono_ns(), t = t0, n = 0;
  while (t - t0 < run_ns) {
    if (ks_bench_gcm_message(c, iv, g_base, out, GCM_MSG) != 0)
      goto out;
    n++;
    t = ks_time_mono_ns();
  }
  mb_s = (double)n * (double)GCM_MSG / 1e6 / ks_bench_secs_of(t - t0);
out:
  EVP_CIPHER_CTX_free(c);
  free(out);
  return mb_s;
}

static double limit_md5(uint64_t run_ns)
{
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned mdl;
  double mb_s = -1;
  if (c == NULL)
    return -1;
  uint64_t t0 = ks_time_mono_ns(), t = t0, n = 0;
  while (t - t0 < run_ns) {
    if (EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1)
      goto out;
    for (size_t off = 0; off < GCM_MSG; off += KS_BENCH_EVP_BLOCK)
      if (EVP_DigestUpdate(c, g_base + off, KS_BENCH_EVP_BLOCK) != 1)
        goto out;
    if (EVP_DigestFinal_ex(c, md, &mdl) != 1)
      goto out;
    n++;
    t = ks_time_mono_ns();
  }
  mb_s = (double)n * (double)GCM_MSG / 1e6 / ks_bench_secs_of(t - t0);
out:
  EVP_MD_CTX_free(c);
  return mb_s;
}

/* ---- the cluster --------------------------------------------------------- */

static const char *const daemon_names[NDAEMON] = {
    "kiseki-meta", "kiseki-chunkd", "kiseki-s3d"};

typedef struct cluster {
  char bin[PATH_MAX];
  char dir[PATH_MAX];
  int meta_port, meta_admin, chunkd_port, chunkd_admin, s3_port, s3_admin;
  pid_t pid[NDAEMON];
  char akid[128], secret[128];
  char endpoint[64];
} cluster_t;

/* A loopback port nothing listens on now (the kernel's pick). */
static int free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                   getsockname(fd, (struct sockaddr *)&a, &len) == 0
               ? ntohs(a.sin_port)
               : -errno;
  close(fd);
  return rc;
}

/* fork + exec argv with stdout to out_fd (or the log) and stderr to the
 * file log; the child dies with us (PR_SET_PDEATHSIG). */
static pid_t spawn(char *const argv[], const char *log, int out_fd)
{
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 || dup2(out_fd >= 0 ? out_fd : fd, 1) < 0 || dup2(fd, 2) < 0)
    _exit(127);
  int nul = open("/dev/null", O_RDONLY);
  if (nul >= 0)
    (void)dup2(nul, 0);
  execv(argv[0], argv);
  _exit(127);
}

/* Run the kiseki CLI with args; its stdout into out (NUL-terminated).
 * 0 if it exited 0. */
static int ctl_run(const cluster_t *c, char *const args[], char *out,
                   size_t size)
{
  char exe[PATH_MAX + 16], log[PATH_MAX + 16];
  char *argv[16];
  size_t n = 0;
  snprintf(exe, sizeof(exe), "%s/kiseki", c->bin);
  snprintf(log, sizeof(log), "%s/kiseki-cli.log", c->dir);
  argv[n++] = exe;
  while (*args != NULL && n < 15)
    argv[n++] = *args++;
  argv[n] = NULL;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0)
    return -errno;
  pid_t pid = spawn(argv, log, p[1]);
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return -errno;
  }
  size_t got = 0;
  for (;;) {
    ssize_t r = read(p[0], out + got, size - 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
    if (got == size - 1)
      break;
  }
  out[got] = '\0';
  close(p[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

/* The value after `key` at the start of a line of `kiseki` human output. */
static int kv_find(const char *text, const char *key, char *out, size_t size)
{
  size_t kl = strlen(key);
  for (const char *l = text; l != NULL && *l; l = strchr(l, '\n')) {
    while (*l == '\n' || *l == ' ')
      l++;
    if (strncmp(l, key, kl) != 0 || (l[kl] != ' ' && l[kl] != '\t'))
      continue;
    const char *v = l + kl;
    while (*v == ' ' || *v == '\t')
      v++;
    size_t vl = strcspn(v, " \t\r\n");
    if (vl == 0 || vl >= size)
      return -EINVAL;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return 0;
  }
  return -ENOENT;
}

/* Whether the log file holds "event=EVENT" past byte `from`. */
static bool log_has(const char *log, const char *event)
{
  FILE *f = fopen(log, "r");
  if (f == NULL)
    return false;
  char want[128], line[4096];
  snprintf(want, sizeof(want), "event=%s", event);
  bool found = false;
  while (!found && fgets(line, sizeof(line), f))
    found = strstr(line, want) != NULL;
  fclose(f);
  return found;
}

static void daemon_log(const cluster_t *c, int i, char *out, size_t size)
{
  snprintf(out, size, "%s/%s.log", c->dir, daemon_names[i]);
}

/* Wait until daemon i logged EVENT, or it exited, or READY_MS. */
static int wait_event(cluster_t *c, int i, const char *event)
{
  char log[PATH_MAX + 32];
  daemon_log(c, i, log, sizeof(log));
  for (int t = 0; t < READY_MS / 50; t++) {
    if (log_has(log, event))
      return 0;
    int st;
    if (waitpid(c->pid[i], &st, WNOHANG) == c->pid[i]) {
      c->pid[i] = 0;
      fprintf(stderr, "ks-bench-s3: %s exited before %s; see %s\n",
              daemon_names[i], event, log);
      return -ECHILD;
    }
    usleep(50000);
  }
  fprintf(stderr, "ks-bench-s3: %s not %s after %d s; see %s\n",
          daemon_names[i], event, READY_MS / 1000, log);
  return -ETIMEDOUT;
}

static int daemon_start(cluster_t *c, int i, char *const extra[])
{
  char exe[PATH_MAX + 32], conf[PATH_MAX + 32], logf[PATH_MAX + 48],
      out[PATH_MAX + 32];
  char *argv[16];
  size_t n = 0;
  snprintf(exe, sizeof(exe), "%s/%s", c->bin, daemon_names[i]);
  snprintf(conf, sizeof(conf), "%s/node.json", c->dir); /* kiseki init */
  snprintf(logf, sizeof(logf), "--log.file=%s/%s.log", c->dir, daemon_names[i]);
  snprintf(out, sizeof(out), "%s/%s.out", c->dir, daemon_names[i]);
  argv[n++] = exe;
  argv[n++] = (char *)"--config";
  argv[n++] = conf;
  argv[n++] = logf;
  while (*extra != NULL && n < 15)
    argv[n++] = *extra++;
  argv[n] = NULL;
  c->pid[i] = spawn(argv, out, -1);
  if (c->pid[i] < 0) {
    c->pid[i] = 0;
    return -errno;
  }
  return 0;
}

/* SIGTERM s3d, chunkd, meta in that order (s3d holds clients of the others)
 * and wait for each; SIGKILL after STOP_MS.  Returns 0 if all exited 0. */
static int cluster_stop(cluster_t *c)
{
  int rc = 0;
  for (int i = NDAEMON - 1; i >= 0; i--) {
    if (c->pid[i] <= 0)
      continue;
    kill(c->pid[i], SIGTERM);
    int st = 0;
    pid_t w = 0;
    for (int t = 0; t < STOP_MS / 20 && w == 0; t++) {
      w = waitpid(c->pid[i], &st, WNOHANG);
      if (w == 0)
        usleep(20000);
    }
    if (w == 0) {
      fprintf(stderr, "ks-bench-s3: %s did not stop; killed\n",
              daemon_names[i]);
      kill(c->pid[i], SIGKILL);
      (void)waitpid(c->pid[i], &st, 0);
      rc = -ETIMEDOUT;
    } else if (w < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "ks-bench-s3: %s exited badly (status 0x%x)\n",
              daemon_names[i], st);
      rc = -ECHILD;
    }
    c->pid[i] = 0;
    char log[PATH_MAX + 32];
    daemon_log(c, i, log, sizeof(log));
    if (log_has(log, "handles_left_open"))
      fprintf(stderr,
              "ks-bench-s3: warning: %s left libuv handles open "
              "at exit; see %s\n",
              daemon_names[i], log);
  }
  return rc;
}

static int cluster_start(cluster_t *c)
{
  char out[4096];
  int rc = ks_bench_exe_dir(
      c->bin, sizeof(c->bin)); /* the daemons are built next to us */
  if (rc != 0)
    return rc;
  int *ports[] = {&c->meta_port,    &c->meta_admin, &c->chunkd_port,
                  &c->chunkd_admin, &c->s3_port,    &c->s3_admin};
  for (size_t i = 0; i < KS_NELEM(ports); i++) {
    *ports[i] = free_port();
    if (*ports[i] < 0)
      return *ports[i];
  }
  snprintf(c->endpoint, sizeof(c->endpoint), "http://127.0.0.1:%d", c->s3_port);
  char *init_args[] = {(char *)"init", (char *)"--dir", c->dir, NULL};
  if (ctl_run(c, init_args, out, sizeof(out)) != 0) {
    fprintf(stderr, "ks-bench-s3: kiseki init --dir %s failed\n", c->dir);
    return -ECHILD;
  }
  char meta_addr[64], m_listen[96], m_admin[64], c_listen[64], c_admin[64],
      s_listen[64], s_admin[64], s_meta[80], s_chunkd[80];
  snprintf(meta_addr, sizeof(meta_addr), "127.0.0.1:%d", c->meta_port);
  snprintf(m_listen, sizeof(m_listen), "--rpc.listen=%s", meta_addr);
  snprintf(m_admin, sizeof(m_admin), "--admin.listen=127.0.0.1:%d",
           c->meta_admin);
  snprintf(c_listen, sizeof(c_listen), "--rpc.listen=127.0.0.1:%d",
           c->chunkd_port);
  snprintf(c_admin, sizeof(c_admin), "--admin.listen=127.0.0.1:%d",
           c->chunkd_admin);
  snprintf(s_listen, sizeof(s_listen), "--s3.listen=127.0.0.1:%d", c->s3_port);
  snprintf(s_admin, sizeof(s_admin), "--admin.listen=127.0.0.1:%d",
           c->s3_admin);
  snprintf(s_meta, sizeof(s_meta), "--s3.meta=%s", meta_addr);
  snprintf(s_chunkd, sizeof(s_chunkd), "--s3.chunkd=127.0.0.1:%d",
           c->chunkd_port);
  char *meta_x[] = {m_listen, m_admin, NULL};
  char *chunkd_x[] = {c_listen, c_admin, NULL};
  char *s3d_x[] = {s_listen, s_admin, s_meta, s_chunkd, NULL};
  if ((rc = daemon_start(c, 0, meta_x)) != 0 ||
      (rc = wait_event(c, 0, "ready")) != 0 ||
      (rc = daemon_start(c, 1, chunkd_x)) != 0 ||
      (rc = wait_event(c, 1, "ready")) != 0 ||
      (rc = daemon_start(c, 2, s3d_x)) != 0 ||
      (rc = wait_event(c, 2, "ready")) != 0)
    return rc;
  char *tenant_args[] = {(char *)"tenant", (char *)"create", (char *)TENANT,
                         (char *)"--meta", meta_addr,        NULL};
  char *key_args[] = {(char *)"key",
                      (char *)"create",
                      (char *)"--tenant",
                      (char *)TENANT,
                      (char *)"--meta",
                      meta_addr,
                      NULL};
  if (ctl_run(c, tenant_args, out, sizeof(out)) != 0 ||
      ctl_run(c, key_args, out, sizeof(out)) != 0) {
    fprintf(stderr,
            "ks-bench-s3: kiseki tenant/key create failed; see "
            "%s/kiseki-cli.log\n",
            c->dir);
    return -ECHILD;
  }
  if (kv_find(out, "access_key_id", c->akid, sizeof(c->akid)) != 0 ||
      kv_find(out, "secret_access_key", c->secret, sizeof(c->secret)) != 0) {
    fprintf(stderr, "ks-bench-s3: no key in `kiseki key create` output\n");
    return -EINVAL;
  }
  return wait_event(c, 2, "devices_listed");
}

/* ---- the client ---------------------------------------------------------- */

typedef struct bench bench_t;

typedef struct slot {
  CURL *e;
  bench_t *b;
  int64_t id;  /* object */
  size_t size; /* its size */
  bool put;
  size_t pos;  /* PUT: bytes sent */
  size_t got;  /* GET: bytes received */
  bool verify; /* GET: compare every byte */
  bool mismatch;
  uint64_t t0;
  char err[256]; /* first bytes of an error body */
  size_t errlen;
  uint8_t cmp[64 * 1024]; /* expected bytes while verifying */
} slot_t;

typedef struct phase {
  const char *name; /* put_4KiB_c64 ... */
  bool put;
  size_t size;
  int conc;
  int64_t first;            /* object id of index 0 */
  int64_t nobj;             /* GET: objects to cycle through */
  int64_t count;            /* >0: this many operations, timed from the first */
  uint64_t warm_ns, run_ns; /* count == 0: timed window after the warm-up */
  bool verify;
} phase_t;

typedef struct result {
  int64_t issued; /* operations started, timed or not */
  int64_t ops;
  double secs, ops_s, mb_s, p50_us, p99_us;
  double cpu_s[NDAEMON + 1]; /* daemons, then this client */
  double other_cores;
  long conns;
} result_t;

struct bench {
  cluster_t *c;
  CURLM *m;
  slot_t *slots[MAX_CONC];
  struct curl_slist *hdrs;
  char userpwd[300];
  uint64_t *samples;
  size_t nsamples;
};

static size_t read_cb(char *dst, size_t sz, size_t nmemb, void *arg)
{
  slot_t *s = arg;
  size_t n = sz * nmemb;
  if (n > s->size - s->pos)
    n = s->size - s->pos;
  obj_fill(s->id, s->pos, (uint8_t *)dst, n);
  s->pos += n;
  return n;
}

static size_t write_cb(char *src, size_t sz, size_t nmemb, void *arg)
{
  slot_t *s = arg;
  size_t n = sz * nmemb;
  if (s->errlen < sizeof(s->err) - 1) {
    size_t k = sizeof(s->err) - 1 - s->errlen;
    k = k < n ? k : n;
    memcpy(s->err + s->errlen, src, k);
    s->errlen += k;
    s->err[s->errlen] = '\0';
  }
  if (s->verify && !s->mismatch) {
    for (size_t off = 0; off < n; off += sizeof(s->cmp)) {
      size_t k = n - off < sizeof(s->cmp) ? n - off : sizeof(s->cmp);
      if (s->got + off + k > s->size) {
        s->mismatch = true;
        break;
      }
      obj_fill(s->id, s->got + off, s->cmp, k);
      if (memcmp(s->cmp, src + off, k) != 0) {
        s->mismatch = true;
        break;
      }
    }
  }
  s->got += n;
  return n;
}

static int slot_init(bench_t *b, slot_t *s)
{
  s->b = b;
  s->e = curl_easy_init();
  if (s->e == NULL)
    return -ENOMEM;
  CURLcode r = CURLE_OK;
#define SETOPT(o, v)                    \
  do {                                  \
    if (r == CURLE_OK)                  \
      r = curl_easy_setopt(s->e, o, v); \
  } while (0)
  SETOPT(CURLOPT_PRIVATE, s);
  SETOPT(CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
  SETOPT(CURLOPT_USERPWD, b->userpwd);
  SETOPT(CURLOPT_READFUNCTION, read_cb);
  SETOPT(CURLOPT_READDATA, s);
  SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
  SETOPT(CURLOPT_WRITEDATA, s);
  SETOPT(CURLOPT_HTTPHEADER, b->hdrs);
  SETOPT(CURLOPT_NOSIGNAL, 1L);
  SETOPT(CURLOPT_TCP_NODELAY, 1L);
  SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  SETOPT(CURLOPT_TIMEOUT, 300L);
#undef SETOPT
  return r == CURLE_OK ? 0 : -EINVAL;
}

/* Point slot s at operation number i of ph and put it in flight. */
static int slot_start(bench_t *b, slot_t *s, const phase_t *ph, int64_t i)
{
  char url[256];
  s->id = ph->first + (ph->put ? i : i % ph->nobj);
  s->size = ph->size;
  s->put = ph->put;
  s->pos = s->got = s->errlen = 0;
  s->err[0] = '\0';
  s->verify = ph->verify;
  s->mismatch = false;
  snprintf(url, sizeof(url), "%s/%s/o%lld", b->c->endpoint, BUCKET,
           (long long)s->id);
  CURLcode r = curl_easy_setopt(s->e, CURLOPT_URL, url);
  if (r == CURLE_OK && ph->put) {
    r = curl_easy_setopt(s->e, CURLOPT_UPLOAD, 1L);
    if (r == CURLE_OK)
      r = curl_easy_setopt(s->e, CURLOPT_INFILESIZE_LARGE,
                           (curl_off_t)ph->size);
  } else if (r == CURLE_OK) {
    r = curl_easy_setopt(s->e, CURLOPT_HTTPGET, 1L);
  }
  if (r != CURLE_OK)
    return -EINVAL;
  s->t0 = ks_time_mono_ns();
  return curl_multi_add_handle(b->m, s->e) == CURLM_OK ? 0 : -EINVAL;
}

/* The outcome of a finished transfer: 0, or a message and -EIO. */
static int slot_check(const slot_t *s, CURLcode res, const char *what)
{
  long code = 0;
  curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &code);
  if (res != CURLE_OK)
    fprintf(stderr, "ks-bench-s3: %s o%lld: %s\n", what, (long long)s->id,
            curl_easy_strerror(res));
  else if (code != 200)
    fprintf(stderr, "ks-bench-s3: %s o%lld: HTTP %ld: %s\n", what,
            (long long)s->id, code, s->err);
  else if (s->mismatch)
    fprintf(stderr,
            "ks-bench-s3: %s o%lld: the bytes read differ from the "
            "bytes written\n",
            what, (long long)s->id);
  else if (!s->put && s->got != s->size)
    fprintf(stderr, "ks-bench-s3: %s o%lld: %zu bytes, not %zu\n", what,
            (long long)s->id, s->got, s->size);
  else if (s->put && s->pos != s->size)
    fprintf(stderr, "ks-bench-s3: %s o%lld: sent %zu bytes of %zu\n", what,
            (long long)s->id, s->pos, s->size);
  else
    return 0;
  return -EIO;
}

typedef struct cpu_mark {
  uint64_t t;
  double cpu[NDAEMON + 1];
  double busy;
} cpu_mark_t;

static void cpu_mark(const bench_t *b, cpu_mark_t *m)
{
  m->t = ks_time_mono_ns();
  for (int i = 0; i < NDAEMON; i++)
    m->cpu[i] = pid_cpu_s(b->c->pid[i]);
  m->cpu[NDAEMON] = ks_bench_self_cpu_s();
  m->busy = ks_bench_machine_busy_s();
}

static void cpu_since(const cpu_mark_t *a, const cpu_mark_t *z, result_t *r)
{
  double ours = 0;
  for (int i = 0; i <= NDAEMON; i++) {
    r->cpu_s[i] = z->cpu[i] - a->cpu[i];
    ours += r->cpu_s[i];
  }
  r->other_cores = ks_bench_other_cores(z->busy - a->busy, ours, z->t - a->t);
}

/* Run one phase; its figures in r.  0, or negative if a request failed (all
 * transfers are taken out of the multi handle either way). */
static int phase_run(bench_t *b, const phase_t *ph, result_t *r)
{
  memset(r, 0, sizeof(*r));
  uint64_t t0 = ks_time_mono_ns(), warm_end = t0 + ph->warm_ns,
           end = warm_end + ph->run_ns, last = t0;
  int64_t issued = 0;
  int active = 0, rc = 0;
  bool marked = false, closed = false;
  cpu_mark_t m0 = {0}, m1 = {0};
  b->nsamples = 0;
  if (ph->warm_ns == 0 || ph->count > 0) {
    cpu_mark(b, &m0);
    marked = true;
  }
  for (int i = 0; i < ph->conc && rc == 0; i++) {
    if (ph->count > 0 && issued >= ph->count)
      break;
    rc = slot_start(b, b->slots[i], ph, issued++);
    active += rc == 0;
  }
  while (active > 0) {
    int running;
    if (curl_multi_perform(b->m, &running) != CURLM_OK && rc == 0)
      rc = -EIO;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(b->m, &left)) != NULL) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      CURL *e = msg->easy_handle;
      CURLcode res = msg->data.result;
      char *priv = NULL;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
      slot_t *s = (slot_t *)priv;
      uint64_t t = ks_time_mono_ns();
      curl_multi_remove_handle(b->m, e);
      active--;
      long conns = 0;
      curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
      r->conns += conns;
      if (rc == 0)
        rc = slot_check(s, res, ph->name);
      if (!marked && t >= warm_end) {
        cpu_mark(b, &m0);
        marked = true;
      }
      if (ph->count == 0 && !closed && t >= end) {
        cpu_mark(b, &m1);
        closed = true;
      }
      bool in_window = ph->count > 0 || (t >= warm_end && !closed);
      if (rc == 0 && in_window) {
        if (b->nsamples < MAX_SAMPLES)
          b->samples[b->nsamples++] = t - s->t0;
        r->ops++;
        last = t;
      }
      bool more = ph->count > 0 ? issued < ph->count : t < end;
      if (rc == 0 && more) {
        rc = slot_start(b, s, ph, issued++);
        active += rc == 0;
      }
    }
    if (active > 0 && curl_multi_poll(b->m, NULL, 0, 100, NULL) != CURLM_OK &&
        rc == 0)
      rc = -EIO;
  }
  r->issued = issued;
  if (rc != 0)
    return rc;
  if (!marked) /* no operation ended after the warm-up: an empty window */
    cpu_mark(b, &m0);
  if (!closed)
    cpu_mark(b, &m1);
  cpu_since(&m0, &m1, r);
  r->secs = ph->count > 0 ? ks_bench_secs_of(last - t0)
                          : ks_bench_secs_of(ph->run_ns);
  r->ops_s = r->secs > 0 ? (double)r->ops / r->secs : 0;
  r->mb_s = r->ops_s * (double)ph->size / 1e6;
  qsort(b->samples, b->nsamples, sizeof(uint64_t), ks_bench_cmp_u64);
  r->p50_us = ks_bench_pct_us(b->samples, b->nsamples, 50);
  r->p99_us = ks_bench_pct_us(b->samples, b->nsamples, 99);
  return 0;
}

/* PUT of the bucket; the first request with a new key may answer 500 while
 * s3d fetches the key from meta, so a few tries. */
static int bucket_create(bench_t *b)
{
  char url[128];
  snprintf(url, sizeof(url), "%s/%s", b->c->endpoint, BUCKET);
  slot_t *s = b->slots[0];
  long code = 0;
  for (int i = 0; i < CREATE_TRIES; i++) {
    s->id = 0;
    s->size = s->pos = s->got = s->errlen = 0;
    s->verify = false;
    if (curl_easy_setopt(s->e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(s->e, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
        curl_easy_setopt(s->e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0) !=
            CURLE_OK)
      return -EINVAL;
    CURLcode res = curl_easy_perform(s->e);
    curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &code);
    if (res == CURLE_OK && code == 200)
      return 0;
    usleep(200000);
  }
  fprintf(stderr, "ks-bench-s3: cannot create bucket %s: HTTP %ld: %s\n",
          BUCKET, code, s->err);
  return -EIO;
}

static void bench_free(bench_t *b)
{
  for (int i = 0; i < MAX_CONC; i++) {
    if (b->slots[i] != NULL)
      curl_easy_cleanup(b->slots[i]->e);
    free(b->slots[i]);
  }
  if (b->m != NULL)
    curl_multi_cleanup(b->m);
  curl_slist_free_all(b->hdrs);
  free(b->samples);
  memset(b->userpwd, 0, sizeof(b->userpwd));
}

static int bench_init(bench_t *b, cluster_t *c)
{
  memset(b, 0, sizeof(*b));
  b->c = c;
  snprintf(b->userpwd, sizeof(b->userpwd), "%s:%s", c->akid, c->secret);
  b->m = curl_multi_init();
  /* no Expect: 100-continue round trip before large bodies */
  b->hdrs = curl_slist_append(NULL, "Expect:");
  /* libcurl 7.88 signs an empty PUT without the payload header s3d needs;
   * named here, curl signs with this value for every request */
  struct curl_slist *h =
      b->hdrs ? curl_slist_append(b->hdrs, "x-amz-content-sha256: "
                                           "UNSIGNED-PAYLOAD")
              : NULL;
  if (h != NULL)
    b->hdrs = h;
  b->samples = malloc(MAX_SAMPLES * sizeof(uint64_t));
  if (b->m == NULL || h == NULL || b->samples == NULL)
    return -ENOMEM;
  if (curl_multi_setopt(b->m, CURLMOPT_MAXCONNECTS, (long)MAX_CONC) != CURLM_OK)
    return -EINVAL;
  for (int i = 0; i < MAX_CONC; i++) {
    b->slots[i] = calloc(1, sizeof(slot_t));
    if (b->slots[i] == NULL)
      return -ENOMEM;
    int rc = slot_init(b, b->slots[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- the run ------------------------------------------------------------- */

enum { SMALL_CONCS = 3, NBIG = 2 };
static const int small_concs[SMALL_CONCS] = {1, 16, 64};

typedef struct figures {
  limits_t lim;
  result_t put4[SMALL_CONCS], get4[SMALL_CONCS];
  result_t put_big[NBIG], get_big[NBIG];
} figures_t;

static const char *const cpu_names[NDAEMON + 1] = {"meta", "chunkd", "s3d",
                                                   "client"};

static void print_cpu_per(const result_t *r, double per, const char *unit)
{
  printf("  cpu s/%s:", unit);
  for (int i = 0; i <= NDAEMON; i++)
    printf(" %s %.3f", cpu_names[i], per > 0 ? r->cpu_s[i] / per : 0);
  printf("\n");
}

static void print_small(const char *name, const result_t *r, double target,
                        const limits_t *l, long cores)
{
  printf("s3 %-16s %8.0f ops/s  p50 %8.1f us  p99 %8.1f us  ops=%lld "
         "conns=%ld",
         name, r->ops_s, r->p50_us, r->p99_us, (long long)r->ops, r->conns);
  printf("  ratio_to_fsync_4KiB=%.2f", ks_bench_ratio(r->ops_s, l->fsync_ops));
  if (target > 0)
    printf("  (target >= %.0f/s) %s", target,
           ks_bench_verdict(r->ops_s, target));
  printf("\n");
  print_cpu_per(r, (double)r->ops / 1000.0, "1000 ops");
  ks_bench_print_load(LOAD_WIDTH, name, r->other_cores, cores);
}

static void print_big(const char *name, const result_t *r, size_t size,
                      const limits_t *l, bool put, long cores)
{
  printf("s3 %-16s %8.1f MB/s   p50 %8.1f ms  objects=%lld conns=%ld  "
         "ratio_to_gcm=%.2f",
         name, r->mb_s, r->p50_us / 1e3, (long long)r->ops, r->conns,
         ks_bench_ratio(r->mb_s, l->gcm_mb_s));
  if (put)
    printf(" ratio_to_md5+gcm=%.2f ratio_to_disk_write=%.2f",
           ks_bench_ratio(r->mb_s, ks_bench_serial(l->md5_mb_s, l->gcm_mb_s)),
           ks_bench_ratio(r->mb_s, l->write_mb_s));
  else
    printf(" ratio_to_disk_read=%.2f", ks_bench_ratio(r->mb_s, l->read_mb_s));
  printf("\n");
  print_cpu_per(r, (double)r->ops * (double)size / 1e9, "GB");
  ks_bench_print_load(LOAD_WIDTH, name, r->other_cores, cores);
}

static void json_result(const char *name, const result_t *r)
{
  printf(",\"%s\":{\"ops\":%lld,\"ops_per_s\":%.1f,\"mb_per_s\":%.2f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"cpu_s\":{\"meta\":%.3f,"
         "\"chunkd\":%.3f,\"s3d\":%.3f,\"client\":%.3f},\"other_cores\":%.2f}",
         name, (long long)r->ops, r->ops_s, r->mb_s, r->p50_us, r->p99_us,
         r->cpu_s[0], r->cpu_s[1], r->cpu_s[2], r->cpu_s[3], r->other_cores);
}

typedef struct plan {
  uint64_t run_ns, warm_ns, limit_ns, fsync_ns;
  size_t disk_bytes;
  int64_t n1, n256;
} plan_t;

static int run_phases(bench_t *b, const plan_t *pl, figures_t *f, long cores)
{
  char name[64];
  int64_t nput = 0;
  result_t vr;
  for (int i = 0; i < SMALL_CONCS; i++) {
    phase_t ph = {.name = name,
                  .put = true,
                  .size = SMALL,
                  .conc = small_concs[i],
                  .first = ID_SMALL + nput,
                  .warm_ns = pl->warm_ns,
                  .run_ns = pl->run_ns};
    snprintf(name, sizeof(name), "put_4KiB_c%d", ph.conc);
    int rc = phase_run(b, &ph, &f->put4[i]);
    if (rc != 0)
      return rc;
    /* every PUT issued wrote its object (or the run failed) */
    nput += f->put4[i].issued;
    print_small(name, &f->put4[i], ph.conc == 64 ? TARGET_PUT_4K : 0, &f->lim,
                cores);
    fflush(stdout);
  }
  int64_t nobj = nput > 0 ? nput : 1;
  phase_t v = {.name = "verify_4KiB",
               .size = SMALL,
               .conc = 1,
               .first = ID_SMALL,
               .nobj = 1,
               .count = 1,
               .verify = true};
  int rc = phase_run(b, &v, &vr);
  if (rc != 0)
    return rc;
  for (int i = 0; i < SMALL_CONCS; i++) {
    phase_t ph = {.name = name,
                  .size = SMALL,
                  .conc = small_concs[i],
                  .first = ID_SMALL,
                  .nobj = nobj,
                  .warm_ns = pl->warm_ns,
                  .run_ns = pl->run_ns};
    snprintf(name, sizeof(name), "get_4KiB_c%d", ph.conc);
    rc = phase_run(b, &ph, &f->get4[i]);
    if (rc != 0)
      return rc;
    print_small(name, &f->get4[i], ph.conc == 64 ? TARGET_GET_4K : 0, &f->lim,
                cores);
    fflush(stdout);
  }
  static const char *const big_names[NBIG] = {"1MiB", "256MiB"};
  const size_t big_sizes[NBIG] = {MiB, BIG_MAX};
  const int64_t big_first[NBIG] = {ID_1MIB, ID_256MIB};
  const int64_t big_n[NBIG] = {pl->n1, pl->n256};
  for (int i = 0; i < NBIG; i++) {
    phase_t ph = {.name = name,
                  .put = true,
                  .size = big_sizes[i],
                  .conc = 1,
                  .first = big_first[i],
                  .nobj = big_n[i],
                  .count = big_n[i]};
    snprintf(name, sizeof(name), "put_%s", big_names[i]);
    if ((rc = phase_run(b, &ph, &f->put_big[i])) != 0)
      return rc;
    print_big(name, &f->put_big[i], big_sizes[i], &f->lim, true, cores);
    fflush(stdout);
    phase_t vb = {.name = "verify",
                  .size = big_sizes[i],
                  .conc = 1,
                  .first = big_first[i] + big_n[i] - 1,
                  .nobj = 1,
                  .count = 1,
                  .verify = true};
    if ((rc = phase_run(b, &vb, &vr)) != 0)
      return rc;
    ph.put = false;
    snprintf(name, sizeof(name), "get_%s", big_names[i]);
    if ((rc = phase_run(b, &ph, &f->get_big[i])) != 0)
      return rc;
    print_big(name, &f->get_big[i], big_sizes[i], &f->lim, false, cores);
    fflush(stdout);
  }
  return 0;
}

static void print_summary(const figures_t *f)
{
  const result_t *p64 = &f->put4[SMALL_CONCS - 1],
                 *g64 = &f->get4[SMALL_CONCS - 1], *g256 = &f->get_big[1];
  double gr = ks_bench_ratio(g256->mb_s, f->lim.gcm_mb_s);
  printf("target put_4KiB_c64 %.0f ops/s >= %.0f: %s\n", p64->ops_s,
         TARGET_PUT_4K, ks_bench_verdict(p64->ops_s, TARGET_PUT_4K));
  printf("target get_4KiB_c64 %.0f ops/s >= %.0f: %s\n", g64->ops_s,
         TARGET_GET_4K, ks_bench_verdict(g64->ops_s, TARGET_GET_4K));
  printf("target get_256MiB %.1f MB/s = %.2f of one core's AES-256-GCM "
         "(%.1f MB/s) >= %.2f: %s\n",
         g256->mb_s, gr, f->lim.gcm_mb_s, TARGET_GET_BIG_GCM,
         ks_bench_verdict(gr, TARGET_GET_BIG_GCM));
}

static void print_json(const figures_t *f, const char *cpu, long cores)
{
  const limits_t *l = &f->lim;
  printf("json: {\"bench\":\"s3\",\"cpu\":\"%s\",\"cores\":%ld,"
         "\"build\":\"%s\",\"limit\":{\"disk_write_mb_s\":%.1f,"
         "\"disk_read_mb_s\":%.1f,\"disk_read_direct\":%s,"
         "\"fsync_4k_ops\":%.1f,\"gcm_mb_s\":%.1f,\"md5_mb_s\":%.1f}",
         cpu, cores, ks_bench_build_desc(), l->write_mb_s, l->read_mb_s,
         l->read_direct ? "true" : "false", l->fsync_ops, l->gcm_mb_s,
         l->md5_mb_s);
  char name[32];
  for (int i = 0; i < SMALL_CONCS; i++) {
    snprintf(name, sizeof(name), "put_4KiB_c%d", small_concs[i]);
    json_result(name, &f->put4[i]);
    snprintf(name, sizeof(name), "get_4KiB_c%d", small_concs[i]);
    json_result(name, &f->get4[i]);
  }
  json_result("put_1MiB", &f->put_big[0]);
  json_result("get_1MiB", &f->get_big[0]);
  json_result("put_256MiB", &f->put_big[1]);
  json_result("get_256MiB", &f->get_big[1]);
  printf("}\n");
}

static int bench(const plan_t *pl, cluster_t *c)
{
  figures_t f;
  memset(&f, 0, sizeof(f));
  char cpu[256];
  ks_bench_cpu_model(cpu, sizeof(cpu));
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  printf("setup cpu=\"%s\" cores=%ld build=\"%s\" libcurl %s\n", cpu, cores,
         ks_bench_build_desc(), curl_version_info(CURLVERSION_NOW)->version);
  printf("setup 4 KiB phases: %.2f s after %.2f s warm-up, in flight 1/16/64; "
         "1 MiB: %lld objects, 256 MiB: %lld objects, one at a time; "
         "MB/s = 1e6 B/s\n",
         ks_bench_secs_of(pl->run_ns), ks_bench_secs_of(pl->warm_ns),
         (long long)pl->n1, (long long)pl->n256);
  printf("setup note: every S3 request makes linearizable meta reads (a "
         "one-voter shard answers them locally; PUTs commit a Raft entry, "
         "an fsync shared by a group commit); ratio_to_fsync_4KiB compares "
         "4 KiB ops/s with one-at-a-time fsyncs\n");
  fflush(stdout);

  int rc = limit_disk(c->dir, pl->disk_bytes, pl->fsync_ns, &f.lim);
  if (rc != 0) {
    fprintf(stderr, "ks-bench-s3: disk limit in %s: %s\n", c->dir,
            ks_strerror(rc));
    return 1;
  }
  f.lim.gcm_mb_s = limit_gcm(pl->limit_ns);
  f.lim.md5_mb_s = limit_md5(pl->limit_ns);
  if (f.lim.gcm_mb_s < 0 || f.lim.md5_mb_s < 0) {
    fprintf(stderr, "ks-bench-s3: OpenSSL limit failed\n");
    return 1;
  }
  printf("limit disk_write_%zuMiB_fsync %8.1f MB/s   (1 MiB writes, one "
         "fsync, in the cluster's directory)\n",
         pl->disk_bytes / MiB, f.lim.write_mb_s);
  printf("limit disk_read_%zuMiB        %8.1f MB/s   (%s)\n",
         pl->disk_bytes / MiB, f.lim.read_mb_s,
         f.lim.read_direct ? "O_DIRECT, 1 MiB reads"
                           : "no O_DIRECT here: page cache may serve it");
  printf("limit fsync_4KiB              %8.0f ops/s  (4 KiB pwrite + "
         "fdatasync, one at a time)\n",
         f.lim.fsync_ops);
  printf("limit aes_256_gcm_evp_16K     %8.1f MB/s   (one core, in-process "
         "EVP, openssl-speed style)\n",
         f.lim.gcm_mb_s);
  printf("limit md5_evp_16K             %8.1f MB/s   (one core)\n",
         f.lim.md5_mb_s);
  fflush(stdout);

  bench_t b;
  rc = bench_init(&b, c);
  if (rc == 0)
    rc = bucket_create(&b);
  if (rc == 0)
    rc = run_phases(&b, pl, &f, cores);
  bench_free(&b);
  if (rc != 0) {
    fprintf(stderr, "ks-bench-s3: %s\n", ks_strerror(rc));
    return 1;
  }
  print_summary(&f);
  print_json(&f, cpu, cores);
  return 0;
}

/* ---- main ---------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *fb)
{
  (void)st;
  (void)fb;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int main(int argc, char **argv)
{
  bench_settings_t s;
  int rc;
  if (!ks_bench_args("ks-bench-s3", bench_opts, KS_NELEM(bench_opts), argc,
                     argv, &s, &s.quick, &rc))
    return rc;
  signal(SIGPIPE, SIG_IGN);

  plan_t pl = {.run_ns = ks_bench_run_ns(s.seconds_ms, s.quick, QUICK_RUN_NS),
               .limit_ns = 1000000000ULL,
               .fsync_ns = 1000000000ULL,
               .disk_bytes = BIG_MAX,
               .n1 = s.mib1_objects,
               .n256 = s.mib256_objects};
  if (s.quick) {
    pl.limit_ns = pl.fsync_ns = 200000000ULL;
    pl.disk_bytes = 32 * MiB;
    pl.n1 = pl.n1 < 4 ? pl.n1 : 4;
    pl.n256 = 1;
  }
  pl.warm_ns = pl.run_ns / 5;

  cluster_t c;
  memset(&c, 0, sizeof(c));
  g_base = malloc(BIG_MAX);
  if (g_base == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "ks-bench-s3: out of memory\n");
    free(g_base);
    ks_cfg_free(bench_opts, KS_NELEM(bench_opts), &s);
    return 1;
  }
  base_fill(g_base, BIG_MAX);
  rc = ks_bench_scratch_dir("ks-bench-s3", c.dir, sizeof(c.dir));
  if (rc != 0) {
    fprintf(stderr, "ks-bench-s3: cannot make a scratch directory: %s\n",
            ks_strerror(rc));
    rc = 1;
  } else if (cluster_start(&c) != 0) {
    rc = 1;
  } else {
    printf("setup cluster %s: meta pid %d 127.0.0.1:%d, chunkd pid %d "
           "127.0.0.1:%d (6 devices), s3d pid %d %s; admin (/metrics) "
           "ports meta %d chunkd %d s3d %d\n",
           c.dir, (int)c.pid[0], c.meta_port, (int)c.pid[1], c.chunkd_port,
           (int)c.pid[2], c.endpoint, c.meta_admin, c.chunkd_admin, c.s3_admin);
    fflush(stdout);
    rc = bench(&pl, &c);
  }
  if (cluster_stop(&c) != 0)
    rc = 1;
  if (rc == 0 && !s.keep)
    (void)nftw(c.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  else if (c.dir[0] != '\0' && rc != 0)
    fprintf(stderr, "ks-bench-s3: logs and data kept in %s\n", c.dir);
  memset(c.secret, 0, sizeof(c.secret));
  curl_global_cleanup();
  free(g_base);
  ks_cfg_free(bench_opts, KS_NELEM(bench_opts), &s);
  return rc;
}
