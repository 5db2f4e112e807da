/*
 * daemon.h — what every Kiseki daemon does the same way around its own
 * work: open the log from its settings, turn SIGTERM/SIGINT into one
 * graceful stop, reopen the log on SIGHUP (log rotation), ignore SIGPIPE,
 * and log "started", "ready" and "stopped" events that tests and operators
 * wait on.
 *
 * Usage, in a daemon's main():
 *   ks_daemon_t d;
 *   ks_daemon_init(&d, loop, "ks-echod", on_stop, ctx);  // signals armed
 *   ks_daemon_log_open(&d, settings.log_file, settings.log_level);
 *   ... start servers ...;  ks_daemon_ready(&d, "listen=%s", addr);
 *   uv_run(loop, UV_RUN_DEFAULT);   // on_stop closes the servers
 *   ks_daemon_close(&d);            // after the loop has drained
 *
 * A second SIGTERM while stopping exits at once (status 1): an operator who
 * insists gets their shell back.  Not thread-safe; the loop's thread only.
 */
#ifndef KS_DAEMON_H
#define KS_DAEMON_H

#include <stdbool.h>
#include <uv.h>

#include "ks/admin_http.h"
#include "ks/config.h"
#include "ks/log.h"
#include "ks/rpc.h"

typedef struct ks_daemon ks_daemon_t;
typedef void (*ks_daemon_stop_cb)(ks_daemon_t *d, void *arg);

struct ks_daemon {
  const char *name;
  uv_loop_t *loop;
  ks_daemon_stop_cb on_stop;
  void *arg;
  bool stopping;
  char *log_path; /* for SIGHUP reopen; owned */
  uv_signal_t _sigterm;
  uv_signal_t _sigint;
  uv_signal_t _sighup;
};

/* The sections a node file may have (DESIGN §11), NULL-terminated: one per
 * daemon that reads it.  Any other top-level name is a typo and refused. */
extern const char *const ks_node_sections[];

/* Load a daemon's settings (defaults, then its `section` of the node file
 * named by --config, then flags: ks_cfg_load_ex) and turn the outcome into
 * its exit: true to go on; false with *status = 0 after --help/--version,
 * or 2 after a configuration error, which is printed to stderr as
 * "NAME: message" (the log is not open yet).  section NULL: a flat file
 * (test tools). */
bool ks_daemon_settings(const char *name, const char *section,
                        const ks_opt_t *schema, size_t n, int argc, char **argv,
                        void *settings, int *status);

/* The RPC TLS context that a daemon's rpc.tls.* settings ask for: *out stays
 * NULL when TLS is off; KS_ECONFIG (logged as bad_tls) when it is on without
 * all three files; KS_ETLS when they cannot be used.  The caller frees *out
 * with ks_rpc_tls_free after every server and client using it is closed. */
int ks_daemon_rpc_tls(const char *name, bool enabled, const char *ca,
                      const char *cert, const char *key, ks_rpc_tls_t **out);

/* Serve m's /metrics and /healthz on `listen` (a daemon's admin.listen,
 * "host:port"); host (host_size bytes) receives the host for the ready line.
 * Logs bad_listen or admin_listen_failed under comp and returns the error:
 * a daemon nobody can watch should not start. */
int ks_daemon_admin_listen(const char *comp, uv_loop_t *loop,
                           const char *listen, ks_metrics_t *m, char *host,
                           size_t host_size, ks_admin_http_t **out);

/* Arm the signal handlers (the handles do not keep the loop alive).
 * Returns 0 or a negated errno. */
int ks_daemon_init(ks_daemon_t *d, uv_loop_t *loop, const char *name,
                   ks_daemon_stop_cb on_stop, void *arg);
/* Open the log sink (NULL/"" = stderr) at the given level name. */
int ks_daemon_log_open(ks_daemon_t *d, const char *path, const char *level);
/* Log event=ready with extra key=value fields. */
void ks_daemon_ready(ks_daemon_t *d, const char *kvfmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Close the signal handles and log event=stopped; run the loop once more
 * afterwards so the closes complete. */
void ks_daemon_close(ks_daemon_t *d);

#endif /* KS_DAEMON_H */
