/*
 * args.c — one option parser for every `kiseki` subcommand (ctl.h).
 *
 * getopt_long with one table of every long option; each subcommand says
 * which it accepts, so `--tenant` means the same thing everywhere and a
 * misplaced option is a usage error rather than silently ignored.  GNU
 * getopt permutes, so options may follow positional arguments
 * (`kiseki tenant create t1 --json`).  getopt's own messages are off
 * (opterr = 0) so that every usage error has the CLI's one-line shape.
 *
 * Commands made of subcommands (`key create|delete`) share one entry point,
 * ctl_subcmds_main: options, --help and the choice of subcommand work, and
 * fail, the same way in each.
 */
#include "ctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct option long_opts[] = {
    {"meta", required_argument, NULL, 'm'},
    {"tenant", required_argument, NULL, 't'},
    {"credentials", required_argument, NULL, 'c'},
    {"profile", required_argument, NULL, 'p'},
    {"kms-dir", required_argument, NULL, 'k'},
    {"dir", required_argument, NULL, 'd'},
    {"devices", required_argument, NULL, 'n'},
    {"force", no_argument, NULL, 'f'},
    {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The long name of option letter c. */
static const char *opt_name(int c)
{
  for (const struct option *o = long_opts; o->name != NULL; o++)
    if (o->val == c)
      return o->name;
  return "?";
}

static int devices_parse(const char *cmd, const char *s, ctl_args_t *a)
{
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 1 || v > 64)
    return ctl_usage(cmd, "--devices: expected 1..64, got '%s'", s);
  a->devices = v;
  return CTL_OK;
}

static int opt_set(const char *cmd, int c, ctl_args_t *a)
{
  switch (c) {
  case 'm':
    a->meta = optarg;
    break;
  case 't':
    a->tenant = optarg;
    break;
  case 'c':
    a->credentials = optarg;
    break;
  case 'p':
    a->profile = optarg;
    break;
  case 'k':
    a->kms_dir = optarg;
    break;
  case 'd':
    a->dir = optarg;
    break;
  case 'n':
    return devices_parse(cmd, optarg, a);
  case 'f':
    a->force = true;
    break;
  case 'j':
    a->json = true;
    break;
  default:
    a->help = true;
    break;
  }
  return CTL_OK;
}

/* An option getopt refused: unknown, or missing its argument. */
static int opt_bad(const char *cmd, int c, int argc, char **argv)
{
  const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
  if (c == ':')
    return ctl_usage(cmd, "option %s needs a value", arg);
  return ctl_usage(cmd, "unknown option '%s'", arg);
}

int ctl_args_parse(const char *cmd, const char *allowed, int npos_max, int argc,
                   char **argv, ctl_args_t *a)
{
  memset(a, 0, sizeof(*a));
  optind = 0; /* glibc: full re-initialisation */
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
    if (c == '?' || c == ':')
      return opt_bad(cmd, c, argc, argv);
    if (c != 'h' && strchr(allowed, c) == NULL)
      return ctl_usage(cmd, "option --%s does not apply here", opt_name(c));
    if (opt_set(cmd, c, a) != CTL_OK)
      return CTL_USAGE;
  }
  if (a->help)
    return CTL_OK;
  for (int i = optind; i < argc; i++) {
    if (a->npos == npos_max || a->npos == CTL_POS_MAX)
      return ctl_usage(cmd, "unexpected argument '%s'", argv[i]);
    a->pos[a->npos++] = argv[i];
  }
  return CTL_OK;
}

int ctl_subcmds_main(const ctl_subcmds_t *c, int argc, char **argv)
{
  ctl_args_t a;
  int rc = ctl_args_parse(c->cmd, c->allowed, 2, argc, argv, &a);
  if (rc != CTL_OK)
    return rc;
  if (a.help) {
    fputs(c->usage, stdout);
    return CTL_OK;
  }
  if (a.npos == 0)
    return ctl_usage(c->cmd, "missing subcommand (%s)", c->names);
  for (size_t i = 0; i < c->nsubs; i++)
    if (strcmp(a.pos[0], c->subs[i].name) == 0)
      return c->subs[i].run(&a);
  return ctl_usage(c->cmd, "unknown subcommand '%s'", a.pos[0]);
}
