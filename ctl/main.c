/*
 * kiseki — the admin command-line tool.  This file only dispatches the
 * first argument to a command in the ks-ctl library (ctl.h); every command
 * parses its own options and prints its own --help.
 *
 * Exit status: 0 done, 1 the operation failed (one line on stderr),
 * 2 usage error.
 *
 * The libraries log events (a refused connection, a retry) the way daemons
 * want them; a command reports its own outcome in one line, so the CLI
 * shows only their errors unless KISEKI_LOG names a level (debug, info,
 * warn, error).
 */
#include "ctl.h"

#include "ks/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctl_cmd {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} ctl_cmd_t;

static const ctl_cmd_t cmds[] = {
    {"init", ctl_init_main,
     "write a node configuration and create its directories"},
    {"tenant", ctl_tenant_main, "create tenants"},
    {"key", ctl_key_main, "create and delete S3 access keys"},
};

static void usage(FILE *out)
{
  fputs("usage: kiseki [--help] [--version] COMMAND [ARGS]\n\ncommands:\n",
        out);
  for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
    fprintf(out, "  %-8s %s\n", cmds[i].name, cmds[i].help);
  fputs("\nRun 'kiseki COMMAND --help' for a command's options.\n", out);
}

static void log_setup(void)
{
  ks_log_level_t lvl = KS_LOG_ERROR;
  const char *env = getenv("KISEKI_LOG");
  if (env != NULL && ks_log_level_parse(env, &lvl) != 0)
    lvl = KS_LOG_ERROR;
  ks_log_set_level(lvl);
}

int main(int argc, char **argv)
{
  log_setup();
  if (argc < 2) {
    usage(stderr);
    return CTL_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    usage(stdout);
    return CTL_OK;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("kiseki %s\n", KS_VERSION);
    return CTL_OK;
  }
  for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
    if (strcmp(cmd, cmds[i].name) == 0)
      return cmds[i].run(argc - 1, argv + 1);
  fprintf(stderr, "kiseki: unknown command '%s' (see 'kiseki --help')\n", cmd);
  return CTL_USAGE;
}
