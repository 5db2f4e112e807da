/*
 * ctl.h — what the `kiseki` admin CLI's commands share (internal to ctl/).
 *
 * Each command is a function taking the arguments after its own name
 * (argv[0] is the command name) and returning the process exit status:
 *
 *   CTL_OK     0  done
 *   CTL_FAIL   1  the operation failed; one line on stderr says why
 *   CTL_USAGE  2  the command line is wrong; one line on stderr, and the
 *                 hint to run --help
 *
 * Commands that talk to the metadata service take --meta ADDR (default:
 * $KISEKI_META, else CTL_META_DEFAULT) and --json.
 *
 * TENANT IDS.  The metadata protocol names a tenant by a 128-bit id and
 * has no lookup by name, while people name tenants.  The CLI therefore
 * derives the id from the name (ctl_tenant_id: SHA-256 of a fixed label
 * and the name, in the RFC 9562 UUIDv8 layout), so `tenant create NAME` and
 * `key create --tenant NAME` agree with no extra state, and a name maps to
 * one tenant forever.
 */
#ifndef KS_CTL_H
#define KS_CTL_H

#include "ks/ctl_output.h"
#include "ks/id.h"
#include "ks/meta_sync.h"

#include <stdbool.h>
#include <stddef.h>

#define CTL_OK 0
#define CTL_FAIL 1
#define CTL_USAGE 2

#define CTL_META_DEFAULT "127.0.0.1:7100"

int ctl_init_main(int argc, char **argv);
int ctl_tenant_main(int argc, char **argv);
int ctl_key_main(int argc, char **argv);

/* The options of every subcommand, parsed by ctl_args_parse.  Strings
 * point into argv. */
#define CTL_POS_MAX 4
typedef struct ctl_args {
  const char *meta;        /* --meta ADDR (m) */
  const char *tenant;      /* --tenant NAME (t) */
  const char *credentials; /* --credentials FILE (c) */
  const char *profile;     /* --profile P (p) */
  const char *kms_dir;     /* --kms-dir DIR (k) */
  const char *dir;         /* --dir DIR (d) */
  long devices;            /* --devices N (n), 0 when absent */
  bool force;              /* --force (f) */
  bool json;               /* --json (j) */
  bool help;               /* --help, -h (always allowed) */
  int npos;
  char *pos[CTL_POS_MAX]; /* positional arguments, in order */
} ctl_args_t;

/* Parse argv[1..argc) of command `cmd` ("key create") accepting only the
 * options whose letters are in `allowed` (see above) and at most npos_max
 * positional arguments.  CTL_OK, or CTL_USAGE after printing why. */
int ctl_args_parse(const char *cmd, const char *allowed, int npos_max, int argc,
                   char **argv, ctl_args_t *a);

/* "kiseki: <message>" on stderr; returns CTL_FAIL. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "kiseki <cmd>: <message> (see 'kiseki <cmd> --help')"; returns
 * CTL_USAGE. */
int ctl_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The tenant id for name (see above).  0, -EINVAL (empty name) or
 * KS_ECRYPTO. */
int ctl_tenant_id(const char *name, ks_id_t *out);

/* Print one record (cols[i]: row[i], or a JSON object with --json) on
 * stdout.  CTL_OK, or CTL_FAIL after saying it could not. */
int ctl_print_record(size_t ncols, const char *const *cols,
                     const char *const *row, bool json);

/* A command made of subcommands (`kiseki key create|delete`): the options
 * it accepts (letters, as ctl_args_parse), its --help text, and one entry
 * per subcommand, each run with the parsed arguments (pos[0] is the
 * subcommand's name). */
typedef struct ctl_sub {
  const char *name;
  int (*run)(ctl_args_t *a);
} ctl_sub_t;

typedef struct ctl_subcmds {
  const char *cmd;     /* "key" */
  const char *allowed; /* option letters */
  const char *usage;   /* printed by --help */
  const char *names;   /* "create, delete": said when none is given */
  const ctl_sub_t *subs;
  size_t nsubs;
} ctl_subcmds_t;

/* Parse argv (at most 2 positional arguments: the subcommand and one
 * more), answer --help, and run the subcommand named.  Returns the exit
 * status (CTL_USAGE for a missing or unknown subcommand). */
int ctl_subcmds_main(const ctl_subcmds_t *c, int argc, char **argv);

/* meta_conn.c: reaching kiseki-meta. */

/* The meta address: explicit (from --meta), else $KISEKI_META, else
 * CTL_META_DEFAULT. */
const char *ctl_meta_addr(const char *flag);
/* ks_meta_sync_open; on failure prints why, closes s and returns
 * CTL_FAIL. */
int ctl_meta_open(ks_meta_sync_t *s, const char *addr);
/* One call: open a client to addr, propose d on the system shard, close.
 * CTL_OK when the call was made, its result (0 or a meta error, for the
 * caller to explain) in *status; CTL_FAIL when no client could be set up
 * (already reported, *status untouched). */
int ctl_meta_system_write(const char *addr, ks_meta_delta_t *d, int *status);
/* A one-line explanation of a meta call's failure rc for `what` ("create
 * tenant t1"), printed like ctl_fail; returns CTL_FAIL. */
int ctl_meta_fail(int rc, const char *addr, const char *what);

#endif /* KS_CTL_H */
