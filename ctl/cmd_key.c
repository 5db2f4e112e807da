/*
 * cmd_key.c — `kiseki key create|delete`: S3 access keys in the metadata
 * service (PUT_ACCESS_KEY / DELETE_ACCESS_KEY on the system shard), and the
 * AWS shared-credentials file that lets aws, boto3, s3cmd and rclone use a
 * new key at once.
 *
 * KEYS.  The id is AWS-shaped so clients and log scrapers treat it as one:
 * 20 characters of A-Z0-9 starting with "KS" (18 random characters, about
 * 93 bits: collisions are not checked for).  The secret is 30 random bytes
 * in base64, 40 characters, like AWS's; the service stores those 40
 * characters, because SigV4 signs with the secret's text.
 *
 * CREDENTIALS FILE.  `--credentials FILE --profile P` replaces section [P]
 * of FILE (or adds it), keeping every other section and line as it was.
 * The new file is written beside the old one (mkstemp: 0600), fsync'd and
 * renamed over it, then the directory is fsync'd: a crash leaves the old
 * file or the new one.  Buffers that held any secret are wiped.
 *
 * Not here: `key list`.  The metadata protocol can look up one access key
 * (GET_ACCESS_KEY) but cannot list a tenant's keys.
 */
#include "ctl.h"

#include "ks/codec.h"
#include "ks/crypto.h"
#include "ks/err.h"
#include "ks/proto_meta.h"
#include "ks/rand.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AKEY_ID_LEN 20
#define AKEY_PREFIX "KS"
#define SECRET_RAW 30 /* bytes; base64 of 30 bytes is 40 characters */
#define SECRET_LEN KS_B64_LEN(SECRET_RAW)
#define CREDS_MAX (1u << 20) /* a credentials file is a few lines */
_Static_assert(SECRET_LEN == 40, "AWS secrets are 40 characters");

static const char key_usage[] =
    "usage: kiseki key create --tenant NAME [--meta ADDR] [--json]\n"
    "                         [--credentials FILE [--profile P]]\n"
    "       kiseki key delete ID [--meta ADDR] [--json]\n"
    "\n"
    "create  make an S3 access key for tenant NAME and print its id and\n"
    "        secret (the secret is shown once; it cannot be read back)\n"
    "delete  remove access key ID; requests signed with it are refused\n"
    "\n"
    "  --tenant NAME       the tenant (see `kiseki tenant create`)\n"
    "  --meta ADDR         metadata node host:port (default $KISEKI_META "
    "or " CTL_META_DEFAULT ")\n"
    "  --credentials FILE  also write the key into this AWS shared-"
    "credentials\n"
    "                      file (mode 0600), replacing section [P]\n"
    "  --profile P         the section (default: default)\n"
    "  --json              print the result as JSON\n"
    "\n"
    "Listing keys is not possible yet: the metadata protocol has no query "
    "for it.\n";

/* ---- generation ------------------------------------------------------- */

static void akey_id_make(char id[AKEY_ID_LEN + 1])
{
  static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  memcpy(id, AKEY_PREFIX, 2);
  for (size_t i = 2; i < AKEY_ID_LEN; i++)
    id[i] = alnum[ks_rand_range(sizeof(alnum) - 1)];
  id[AKEY_ID_LEN] = '\0';
}

static int secret_make(char secret[SECRET_LEN + 1])
{
  uint8_t raw[SECRET_RAW];
  int rc = ks_rand_bytes(raw, sizeof(raw));
  if (rc == 0)
    rc = ks_b64_encode(secret, SECRET_LEN + 1, raw, sizeof(raw));
  ks_secure_zero(raw, sizeof(raw));
  return rc < 0 ? rc : 0;
}

/* ---- credentials file ------------------------------------------------- */

/* Read path whole into a malloc'd buffer (*len bytes, NUL-terminated);
 * a missing file is empty.  0 or a negated errno. */
static int file_slurp(const char *path, char **out, size_t *len)
{
  *out = calloc(1, CREDS_MAX + 1);
  *len = 0;
  if (*out == NULL)
    return -ENOMEM;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  ssize_t n;
  while ((n = read(fd, *out + *len, CREDS_MAX + 1 - *len)) > 0)
    *len += (size_t)n;
  int rc = n < 0 ? -errno : *len > CREDS_MAX ? -EFBIG : 0;
  close(fd);
  return rc;
}

/* Does line l[0..n) open section [profile]? */
static bool section_is(const char *l, size_t n, const char *profile)
{
  while (n > 0 && (*l == ' ' || *l == '\t'))
    l++, n--;
  while (n > 0 && strchr(" \t\r\n", l[n - 1]) != NULL)
    n--;
  size_t pl = strlen(profile);
  return n == pl + 2 && l[0] == '[' && l[n - 1] == ']' &&
         memcmp(l + 1, profile, pl) == 0;
}

static bool section_start(const char *l, size_t n)
{
  while (n > 0 && (*l == ' ' || *l == '\t'))
    l++, n--;
  return n > 0 && *l == '[';
}

/* old[0..n) without section [profile], into out (room for n bytes);
 * returns the length written. */
static size_t creds_strip(const char *old, size_t n, const char *profile,
                          char *out)
{
  size_t w = 0;
  bool skip = false;
  for (size_t i = 0; i < n;) {
    const char *nl = memchr(old + i, '\n', n - i);
    size_t ll = nl ? (size_t)(nl - (old + i)) + 1 : n - i;
    if (section_start(old + i, ll))
      skip = section_is(old + i, ll, profile);
    if (!skip) {
      memcpy(out + w, old + i, ll);
      w += ll;
    }
    i += ll;
  }
  if (w > 0 && out[w - 1] != '\n')
    out[w++] = '\n'; /* room: the caller reserves it */
  return w;
}

static int write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Write data to a temporary beside path, fsync, rename over path, fsync
 * the directory. */
static int file_replace(const char *path, const char *data, size_t n)
{
  char tmp[4096], dir[4096];
  if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  snprintf(dir, sizeof(dir), "%s", path);
  int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
  if (fd < 0)
    return -errno;
  int rc = write_all(fd, data, n);
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -errno;
  if (rc != 0) {
    unlink(tmp);
    return rc;
  }
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -errno;
  rc = fsync(dfd) == 0 ? 0 : -errno;
  close(dfd);
  return rc;
}

static int creds_write(const char *path, const char *profile, const char *id,
                       const char *secret)
{
  char *old;
  size_t n;
  int rc = file_slurp(path, &old, &n);
  char sect[512];
  int sl = snprintf(sect, sizeof(sect),
                    "[%s]\naws_access_key_id = %s\naws_secret_access_key = "
                    "%s\n",
                    profile, id, secret);
  char *out = rc == 0 ? malloc(n + 1 + (size_t)sl) : NULL;
  if (rc == 0 && out == NULL)
    rc = -ENOMEM;
  if (rc == 0) {
    size_t w = creds_strip(old, n, profile, out);
    memcpy(out + w, sect, (size_t)sl);
    rc = file_replace(path, out, w + (size_t)sl);
    ks_secure_zero(out, n + 1 + (size_t)sl);
  }
  free(out);
  ks_secure_zero(sect, sizeof(sect));
  ks_secure_zero(old, CREDS_MAX + 1);
  free(old);
  return rc;
}

static bool profile_ok(const char *p)
{
  size_t n = strlen(p);
  return n > 0 && n <= 128 && strpbrk(p, "[]\r\n") == NULL;
}

/* ---- commands --------------------------------------------------------- */

static int key_print(const ctl_args_t *a, const char *id, const char *secret)
{
  static const char *const cols[] = {"access_key_id", "secret_access_key",
                                     "tenant", "credentials", "profile"};
  const char *row[] = {id, secret, a->tenant, a->credentials, a->profile};
  return ctl_print_record(a->credentials != NULL ? 5 : 3, cols, row, a->json);
}

static int key_store(const char *addr, const ctl_args_t *a, const char *id,
                     const char *secret)
{
  ks_id_t tenant;
  int rc = ctl_tenant_id(a->tenant, &tenant);
  if (rc != 0)
    return ctl_fail("bad tenant name '%s'", a->tenant);
  ks_meta_delta_t d = {.type = KS_DELTA_PUT_ACCESS_KEY,
                       .name = id,
                       .tenant = tenant,
                       .secret = (const uint8_t *)secret,
                       .secret_len = SECRET_LEN};
  if (ctl_meta_system_write(addr, &d, &rc) != CTL_OK)
    return CTL_FAIL;
  if (rc == KS_META_ENOTENANT)
    return ctl_fail("tenant '%s' does not exist (create it with 'kiseki "
                    "tenant create %s')",
                    a->tenant, a->tenant);
  return rc == 0 ? CTL_OK : ctl_meta_fail(rc, addr, "store the access key");
}

static int key_create(ctl_args_t *a)
{
  if (a->npos != 1)
    return ctl_usage("key", "create takes no argument besides options");
  if (a->tenant == NULL)
    return ctl_usage("key", "create needs --tenant NAME");
  if (a->profile != NULL && a->credentials == NULL)
    return ctl_usage("key", "--profile needs --credentials FILE");
  if (a->credentials != NULL && a->profile == NULL)
    a->profile = "default";
  if (a->profile != NULL && !profile_ok(a->profile))
    return ctl_usage("key", "bad profile name '%s'", a->profile);
  char id[AKEY_ID_LEN + 1], secret[SECRET_LEN + 1];
  akey_id_make(id);
  if (secret_make(secret) != 0)
    return ctl_fail("cannot generate a secret: no randomness");
  int rc = key_store(ctl_meta_addr(a->meta), a, id, secret);
  if (rc == CTL_OK) {
    /* Print first: if the file cannot be written the key still exists,
     * and this is the only time its secret can be seen. */
    rc = key_print(a, id, secret);
    int frc = a->credentials != NULL
                  ? creds_write(a->credentials, a->profile, id, secret)
                  : 0;
    if (frc != 0)
      rc = ctl_fail("access key %s was created, but %s was not written: %s", id,
                    a->credentials, ks_strerror(frc));
  }
  ks_secure_zero(secret, sizeof(secret));
  return rc;
}

static int key_delete(ctl_args_t *a)
{
  if (a->npos != 2)
    return ctl_usage("key", "delete needs exactly one access key ID");
  const char *id = a->pos[1];
  const char *addr = ctl_meta_addr(a->meta);
  ks_meta_delta_t d = {.type = KS_DELTA_DELETE_ACCESS_KEY, .name = id};
  int rc;
  if (ctl_meta_system_write(addr, &d, &rc) != CTL_OK)
    return CTL_FAIL;
  if (rc == KS_META_ENOACCESSKEY || rc == KS_META_EINVAL)
    return ctl_fail("no access key '%s'", id);
  if (rc != 0)
    return ctl_meta_fail(rc, addr, "delete the access key");
  static const char *const cols[] = {"access_key_id", "status"};
  const char *row[] = {id, "deleted"};
  return ctl_print_record(2, cols, row, a->json);
}

static int key_list(ctl_args_t *a)
{
  (void)a;
  return ctl_fail("key list: not supported yet (the metadata protocol "
                  "cannot list access keys)");
}

int ctl_key_main(int argc, char **argv)
{
  static const ctl_sub_t subs[] = {
      {"create", key_create}, {"delete", key_delete}, {"list", key_list}};
  static const ctl_subcmds_t key = {.cmd = "key",
                                    .allowed = "mtcpj",
                                    .usage = key_usage,
                                    .names = "create, delete",
                                    .subs = subs,
                                    .nsubs = sizeof(subs) / sizeof(subs[0])};
  return ctl_subcmds_main(&key, argc, argv);
}
