/*
 * cmd_init.c — `kiseki init`: a working configuration for a new node.
 *
 * Writes DIR/node.json (DIR defaults to var/dev, where `make run` keeps its
 * data): one JSON-with-comments file with a section per daemon ("meta",
 * "chunkd", "s3d"; DESIGN §11), which every daemon reads with
 * `--config DIR/node.json`, taking its own section.
 *
 * It creates the data directories (DIR/meta, DIR/chunkd/dev0..N-1,
 * DIR/tmp for s3d's large request bodies) and the internal key provider's
 * directory DIR/keys, all 0700.  The key directory is opened once with
 * ks_kms_file_open, which checks its ownership and permissions the way
 * every later open will, so a bad one shows now rather than at first use.
 *
 * SAFETY.  An existing configuration file is never overwritten without
 * --force, and that is checked before anything is written.
 * Directories that exist are kept with their contents (init never removes
 * data); a key directory that others may enter is refused.  Paths in the
 * files are absolute, so the daemons can start from any directory.  Files
 * are written to a temporary name, fsync'd and linked (without --force:
 * an existing file makes link fail) or renamed (--force) into place.
 */
#include "ctl.h"

#include "ks/err.h"
#include "ks/kms.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#define INIT_DIR_DEFAULT "var/dev"
#define INIT_DEVICES_DEFAULT 6
#define INIT_META_ADDR "127.0.0.1:7100"
#define INIT_CHUNKD_ADDR "127.0.0.1:7200"
#define INIT_S3_ADDR "127.0.0.1:9000"
#define INIT_META_ADMIN "127.0.0.1:7101"
#define INIT_CHUNKD_ADMIN "127.0.0.1:7201"
#define INIT_S3_ADMIN "127.0.0.1:9001"
#define CONF_MAX 8192

static const char init_usage[] =
    "usage: kiseki init [--dir DIR] [--devices N] [--force] [--json]\n"
    "\n"
    "Write a node configuration (DIR/node.json, a section per daemon)\n"
    "and create the data and key directories (0700).\n"
    "Existing files are kept unless --force; existing data is never "
    "touched.\n"
    "\n"
    "  --dir DIR      where (default " INIT_DIR_DEFAULT ")\n"
    "  --devices N    chunk device directories, 1..64 (default 6)\n"
    "  --force        overwrite existing configuration files\n"
    "  --json         print what was done as JSON\n"
    "\n"
    "Then start each daemon with --config DIR/node.json (it reads its own\n"
    "section); any setting can be overridden with a flag\n"
    "(kiseki-meta --rpc.listen=...).\n";

typedef struct init {
  char dir[PATH_MAX]; /* absolute */
  long devices;
  bool force;
  ks_table_t done; /* action | path */
} init_t;

/* ---- paths and directories -------------------------------------------- */

static int path_join(char *out, const char *dir, const char *name)
{
  int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
  return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int done_add(init_t *in, const char *action, const char *path)
{
  const char *row[] = {action, path};
  return ks_table_add(&in->done, row);
}

/* mkdir -p with mode 0700 for what is created; reports the last part. */
static int dir_make(init_t *in, const char *path, bool report)
{
  char p[PATH_MAX];
  snprintf(p, sizeof(p), "%s", path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
      return ctl_fail("cannot create %s: %s", p, strerror(errno));
    *s = '/';
  }
  bool made = mkdir(p, 0700) == 0;
  if (!made && errno != EEXIST)
    return ctl_fail("cannot create %s: %s", p, strerror(errno));
  struct stat st;
  if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
    return ctl_fail("%s exists and is not a directory", p);
  if (report && done_add(in, made ? "created" : "kept", p) != 0)
    return ctl_fail("out of memory");
  return CTL_OK;
}

static int sub_dir(init_t *in, const char *name)
{
  char p[PATH_MAX];
  if (path_join(p, in->dir, name) != 0)
    return ctl_fail("path too long: %s/%s", in->dir, name);
  return dir_make(in, p, true);
}

static int keys_dir(init_t *in)
{
  char p[PATH_MAX];
  if (path_join(p, in->dir, "keys") != 0 || dir_make(in, p, true) != CTL_OK)
    return CTL_FAIL;
  struct stat st;
  if (stat(p, &st) != 0 || (st.st_mode & 077) != 0)
    return ctl_fail("key directory %s may be entered by group or others "
                    "(chmod 700 it)",
                    p);
  ks_kms_t *kms;
  int rc = ks_kms_file_open(p, &kms);
  if (rc != 0)
    return ctl_fail("key directory %s: %s", p, ks_strerror(rc));
  ks_kms_close(kms);
  return CTL_OK;
}

static int dirs_make(init_t *in)
{
  int rc = sub_dir(in, "meta");
  for (long i = 0; rc == CTL_OK && i < in->devices; i++) {
    char name[32];
    snprintf(name, sizeof(name), "chunkd/dev%ld", i);
    rc = sub_dir(in, name);
  }
  if (rc == CTL_OK)
    rc = sub_dir(in, "tmp");
  if (rc == CTL_OK)
    rc = keys_dir(in);
  return rc;
}

/* ---- configuration text ----------------------------------------------- */

/* s as a JSON string literal (quotes included) in out[0..size). */
static int json_quote(const char *s, char *out, size_t size)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  if (g == NULL)
    return -ENOMEM;
  yajl_gen_config(g, yajl_gen_validate_utf8, 1);
  int rc = yajl_gen_string(g, (const unsigned char *)s, strlen(s)) ==
                   yajl_gen_status_ok
               ? 0
               : -EINVAL;
  const unsigned char *buf;
  size_t len;
  if (rc == 0) {
    yajl_gen_get_buf(g, &buf, &len);
    rc = len < size ? 0 : -ENAMETOOLONG;
  }
  if (rc == 0)
    snprintf(out, size, "%.*s", (int)len, (const char *)buf);
  yajl_gen_free(g);
  return rc;
}

static int quoted(const init_t *in, const char *name, char *out, size_t size)
{
  char p[PATH_MAX];
  int rc = path_join(p, in->dir, name);
  return rc == 0 ? json_quote(p, out, size) : rc;
}

/* The node file: a section per daemon (DESIGN §11), each read by its
 * daemon with the loader's section support (ks_daemon_settings). */
static int node_conf(const init_t *in, char *out)
{
  char meta[2 * PATH_MAX];
  char chunkd[2 * PATH_MAX];
  char tmp[2 * PATH_MAX];
  char keys[2 * PATH_MAX];
  int rc = quoted(in, "meta", meta, sizeof(meta));
  if (rc == 0)
    rc = quoted(in, "chunkd", chunkd, sizeof(chunkd));
  if (rc == 0)
    rc = quoted(in, "tmp", tmp, sizeof(tmp));
  if (rc == 0)
    rc = quoted(in, "keys", keys, sizeof(keys));
  if (rc != 0)
    return rc;
  int n = snprintf(
      out, CONF_MAX,
      "// A Kiseki node: one section per daemon.  Written by `kiseki init`.\n"
      "// Start each daemon with --config <this file>; it reads its own\n"
      "// section.  Flags override any key of it (kiseki-meta\n"
      "// --rpc.listen=...); <daemon> --help lists them with defaults.\n"
      "{\n"
      "  // kiseki-meta: the metadata service (Raft groups on LMDB).\n"
      "  \"meta\": {\n"
      "    \"rpc\": {\"listen\": \"" INIT_META_ADDR "\"},\n"
      "    \"admin\": {\"listen\": \"" INIT_META_ADMIN "\"},\n"
      "    \"meta\": {\n"
      "      // Raft log, snapshots and state: put it on a durable disk.\n"
      "      \"data_dir\": %s,\n"
      "      // This node's Raft id; unique in the cluster.\n"
      "      \"node_id\": 1\n"
      "    },\n"
      "    \"log\": {\"level\": \"info\"}\n"
      "  },\n"
      "\n"
      "  // kiseki-chunkd: the chunk store (erasure-coded fragments).\n"
      "  \"chunkd\": {\n"
      "    \"rpc\": {\"listen\": \"" INIT_CHUNKD_ADDR "\"},\n"
      "    \"admin\": {\"listen\": \"" INIT_CHUNKD_ADMIN "\"},\n"
      "    \"chunkd\": {\n"
      "      // Devices dev0..dev<N-1> under data_dir; for one directory per\n"
      "      // disk list them instead: \"devices\": "
      "\"/disk1=hdd,/disk2=fast-nvme\".\n"
      "      \"data_dir\": %s,\n"
      "      \"device_count\": %ld,\n"
      "      \"device_class\": \"bulk-nvme\"\n"
      "    },\n"
      "    \"log\": {\"level\": \"info\"}\n"
      "  },\n"
      "\n"
      "  // kiseki-s3d: the S3 gateway.  Access keys: kiseki key create "
      "--tenant NAME.\n"
      "  \"s3d\": {\n"
      "    \"s3\": {\n"
      "      \"listen\": \"" INIT_S3_ADDR "\",\n"
      "      \"region\": \"us-east-1\",\n"
      "      // Large request bodies are staged here: keep it on a data "
      "disk.\n"
      "      \"mmap_dir\": %s,\n"
      "      \"meta\": \"" INIT_META_ADDR "\",\n"
      "      \"chunkd\": \"" INIT_CHUNKD_ADDR "\",\n"
      "      // Tenant keys of the internal key provider (0700).\n"
      "      \"kms_dir\": %s\n"
      "    },\n"
      "    \"admin\": {\"listen\": \"" INIT_S3_ADMIN "\"},\n"
      "    \"log\": {\"level\": \"info\"}\n"
      "  }\n"
      "}\n",
      meta, chunkd, in->devices, tmp, keys);
  return n < 0 || n >= CONF_MAX ? -ENAMETOOLONG : 0;
}

/* ---- files ------------------------------------------------------------ */

typedef struct conf_file {
  const char *name;
  int (*text)(const init_t *in, char *out);
} conf_file_t;

static const conf_file_t conf_files[] = {
    {"node.json", node_conf},
};
#define NCONF (sizeof(conf_files) / sizeof(conf_files[0]))

/* Without --force, fail before writing anything if one exists. */
static int files_check(const init_t *in)
{
  for (size_t i = 0; i < NCONF && !in->force; i++) {
    char p[PATH_MAX];
    if (path_join(p, in->dir, conf_files[i].name) != 0)
      return ctl_fail("path too long: %s", in->dir);
    if (access(p, F_OK) == 0)
      return ctl_fail("%s exists; nothing was written (use --force to "
                      "overwrite the configuration)",
                      p);
  }
  return CTL_OK;
}

static int tmp_write(char *tmp, const char *text)
{
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t n = strlen(text);
  int rc = write(fd, text, n) == (ssize_t)n ? 0 : -EIO;
  if (rc == 0 && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  return rc;
}

static int file_put(const init_t *in, const char *path, const char *text)
{
  char tmp[PATH_MAX + 8];
  snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
  int rc = tmp_write(tmp, text);
  if (rc == 0 && in->force && rename(tmp, path) != 0)
    rc = -errno;
  if (rc == 0 && !in->force && link(tmp, path) != 0)
    rc = -errno;
  unlink(tmp); /* after rename: already gone */
  return rc;
}

static int files_write(init_t *in)
{
  char text[CONF_MAX];
  for (size_t i = 0; i < NCONF; i++) {
    char p[PATH_MAX];
    int rc = path_join(p, in->dir, conf_files[i].name);
    if (rc == 0)
      rc = conf_files[i].text(in, text);
    if (rc == 0)
      rc = file_put(in, p, text);
    if (rc != 0)
      return ctl_fail("cannot write %s: %s", p, ks_strerror(rc));
    if (done_add(in, "wrote", p) != 0)
      return ctl_fail("out of memory");
  }
  int dfd = open(in->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return CTL_OK;
}

/* ---- the command ------------------------------------------------------ */

static int init_print(const init_t *in, bool json)
{
  int rc = ks_table_write(&in->done, json ? KS_OUT_JSON : KS_OUT_HUMAN, stdout);
  if (rc == 0 && !json)
    printf("\nStart the node:\n"
           "  kiseki-meta   --config %s/node.json\n"
           "  kiseki-chunkd --config %s/node.json\n"
           "  kiseki-s3d    --config %s/node.json\n",
           in->dir, in->dir, in->dir);
  return rc == 0 ? CTL_OK : ctl_fail("cannot print: %s", ks_strerror(rc));
}

static int init_run(init_t *in, const char *dir, bool json)
{
  int rc = dir_make(in, dir, false);
  if (rc == CTL_OK && realpath(dir, in->dir) == NULL)
    rc = ctl_fail("cannot resolve %s: %s", dir, strerror(errno));
  if (rc == CTL_OK)
    rc = files_check(in);
  if (rc == CTL_OK)
    rc = dirs_make(in);
  if (rc == CTL_OK)
    rc = files_write(in);
  if (rc == CTL_OK)
    rc = init_print(in, json);
  return rc;
}

int ctl_init_main(int argc, char **argv)
{
  ctl_args_t a;
  int rc = ctl_args_parse("init", "dnfj", 0, argc, argv, &a);
  if (rc != CTL_OK)
    return rc;
  if (a.help) {
    fputs(init_usage, stdout);
    return CTL_OK;
  }
  static const char *const cols[] = {"action", "path"};
  init_t in = {.devices = a.devices ? a.devices : INIT_DEVICES_DEFAULT,
               .force = a.force};
  if (ks_table_init(&in.done, 2, cols) != 0)
    return ctl_fail("out of memory");
  const char *dir = a.dir != NULL ? a.dir : INIT_DIR_DEFAULT;
  if (strlen(dir) == 0 || strlen(dir) >= PATH_MAX - 64)
    rc = ctl_usage("init", "bad --dir");
  else
    rc = init_run(&in, dir, a.json);
  ks_table_free(&in.done);
  return rc;
}
