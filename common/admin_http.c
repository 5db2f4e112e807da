/*
 * admin_http.c — the admin HTTP listener (contract in ks/admin_http.h): the
 * s3d way of running h2o on a libuv loop (a uv_tcp_t listener, each
 * accepted uv_tcp_t wrapped by h2o_uv_socket_create and handed to
 * h2o_accept), with one handler on "/" that answers from a fixed table.
 *
 * Life cycle, and why it is shaped so:
 *   new     bind and listen first, and only then h2o_context_init: a port
 *           that is taken fails before h2o owns anything on the loop, so the
 *           failure path is one uv_close of the listener.
 *   close   close the listener, shut the read side of every connection
 *           (h2o then closes an idle one at once and a busy one after its
 *           answer); after grace_ms, shut both sides of what is left.  When
 *           the last connection is gone, h2o_context_dispose.
 *   free    h2o_context_dispose uv_close()s the context's timers with no
 *           callback, and those handles live inside this struct.  libuv
 *           touches a closing handle until its close phase has run, so the
 *           struct may be freed only after one full close phase: an idle
 *           handle waits two loop iterations (the first may run before the
 *           close phase that finishes h2o's timers), then closes itself and
 *           frees.
 */
#include "ks/admin_http.h"

#include "ks/err.h"
#include "ks/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <h2o.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define COMP "admin"
#define ADMIN_DEF_TIMEOUT_MS 10000u
#define ADMIN_DEF_GRACE_MS 2000u
#define ADMIN_BACKLOG 64

typedef struct admin_conn {
  uv_tcp_t ac_tcp;
  h2o_linklist_t ac_link;
  ks_admin_http_t *ac_admin;
} admin_conn_t;

typedef struct admin_handler {
  h2o_handler_t super;
  ks_admin_http_t *ah_admin;
} admin_handler_t;

struct ks_admin_http {
  h2o_globalconf_t ad_gconf;
  h2o_context_t ad_ctx;
  h2o_accept_ctx_t ad_actx;
  uv_loop_t *ad_loop;
  uv_tcp_t ad_listener;
  uv_timer_t ad_grace;
  uv_idle_t ad_reaper;
  h2o_linklist_t ad_conns; /* admin_conn_t */
  size_t ad_nconns;
  ks_metrics_t *ad_metrics;
  uint64_t ad_requests;
  ks_admin_http_close_cb ad_cb;
  void *ad_arg;
  uint32_t ad_grace_ms;
  int ad_handles; /* open: listener, grace timer */
  int ad_reaper_ticks;
  bool ad_closing;
};

/* ---- answers ------------------------------------------------------------- */

static void admin_send(h2o_req_t *req, int status, const char *reason,
                       const char *ctype, const char *body, size_t len)
{
  req->res.status = status;
  req->res.reason = reason;
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                 ctype, strlen(ctype));
  req->res.content_length = len;
  h2o_send_inline(req, body, len); /* copies; leaves the body out for HEAD */
}

static void admin_send_text(h2o_req_t *req, int status, const char *reason,
                            const char *body)
{
  admin_send(req, status, reason, "text/plain; charset=utf-8", body,
             strlen(body));
}

static void admin_send_metrics(ks_admin_http_t *a, h2o_req_t *req)
{
  ks_buf_t b = KS_BUF_INIT;
  if (ks_metrics_render(a->ad_metrics, &b) != 0) {
    ks_buf_free(&b);
    admin_send_text(req, 500, "Internal Server Error", "out of memory\n");
    return;
  }
  admin_send(req, 200, "OK", KS_METRICS_CONTENT_TYPE,
             b.data ? (const char *)b.data : "", b.len);
  ks_buf_free(&b);
}

static bool admin_path_is(const h2o_req_t *req, const char *path)
{
  size_t n = req->path_normalized.len;
  return h2o_memis(req->path_normalized.base, n, path, strlen(path));
}

static int admin_on_req(h2o_handler_t *self, h2o_req_t *req)
{
  ks_admin_http_t *a = ((admin_handler_t *)self)->ah_admin;
  a->ad_requests++;
  bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
             h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
  if (!get) {
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                   H2O_STRLIT("GET, HEAD"));
    admin_send_text(req, 405, "Method Not Allowed", "method not allowed\n");
  } else if (admin_path_is(req, "/metrics") && a->ad_metrics) {
    admin_send_metrics(a, req);
  } else if (admin_path_is(req, "/healthz")) {
    admin_send_text(req, 200, "OK", "ok\n");
  } else {
    admin_send_text(req, 404, "Not Found", "not found\n");
  }
  return 0;
}

/* ---- connections ----------------------------------------------------------
 */

static void admin_try_finish(ks_admin_http_t *a);

static void admin_conn_closed(uv_handle_t *h)
{
  admin_conn_t *c = H2O_STRUCT_FROM_MEMBER(admin_conn_t, ac_tcp, (uv_tcp_t *)h);
  ks_admin_http_t *a = c->ac_admin;
  h2o_linklist_unlink(&c->ac_link);
  free(c);
  assert(a->ad_nconns > 0);
  a->ad_nconns--;
  if (a->ad_closing)
    admin_try_finish(a);
}

static void admin_on_accept(uv_stream_t *listener, int status)
{
  ks_admin_http_t *a = listener->data;
  if (status != 0 || a->ad_closing)
    return;
  admin_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL || uv_tcp_init(a->ad_loop, &c->ac_tcp) != 0) {
    free(c);
    return;
  }
  c->ac_admin = a;
  if (uv_accept(listener, (uv_stream_t *)&c->ac_tcp) != 0) {
    uv_close((uv_handle_t *)&c->ac_tcp, (uv_close_cb)free);
    return;
  }
  h2o_linklist_insert(&a->ad_conns, &c->ac_link);
  a->ad_nconns++;
  h2o_socket_t *sock =
      h2o_uv_socket_create((uv_stream_t *)&c->ac_tcp, admin_conn_closed);
  h2o_accept(&a->ad_actx, sock);
}

static void admin_conns_shutdown(ks_admin_http_t *a, int how)
{
  for (h2o_linklist_t *l = a->ad_conns.next; l != &a->ad_conns; l = l->next) {
    admin_conn_t *c = H2O_STRUCT_FROM_MEMBER(admin_conn_t, ac_link, l);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->ac_tcp, &fd) == 0)
      (void)shutdown(fd, how);
  }
}

/* ---- set-up ----------------------------------------------------------------
 */

static int admin_listen(ks_admin_http_t *a, const char *host, uint16_t port)
{
  struct sockaddr_storage ss;
  if (host == NULL)
    return KS_ECONFIG;
  int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (rc != 0)
    rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  if (rc != 0)
    return KS_ECONFIG;
  rc = uv_tcp_init(a->ad_loop, &a->ad_listener);
  if (rc != 0)
    return rc;
  a->ad_listener.data = a;
  a->ad_handles = 1;
  rc = uv_tcp_bind(&a->ad_listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&a->ad_listener, ADMIN_BACKLOG,
                   admin_on_accept);
  return rc;
}

static void admin_h2o_setup(ks_admin_http_t *a, uint32_t timeout_ms)
{
  h2o_config_init(&a->ad_gconf);
  a->ad_gconf.server_name = h2o_iovec_init(H2O_STRLIT("kiseki"));
  a->ad_gconf.max_request_entity_size = 64 * 1024; /* we take no bodies */
  a->ad_gconf.http1.req_timeout = timeout_ms;
  a->ad_gconf.http1.upgrade_to_http2 = 0;
  h2o_hostconf_t *host = h2o_config_register_host(
      &a->ad_gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
  admin_handler_t *h = (admin_handler_t *)h2o_create_handler(path, sizeof(*h));
  h->super.on_req = admin_on_req;
  h->ah_admin = a;
  h2o_context_init(&a->ad_ctx, a->ad_loop, &a->ad_gconf);
  a->ad_actx.ctx = &a->ad_ctx;
  a->ad_actx.hosts = a->ad_gconf.hosts;
}

static void admin_listener_failed(uv_handle_t *h)
{
  free(h->data);
}

int ks_admin_http_new(uv_loop_t *loop, const ks_admin_http_opts_t *opts,
                      ks_admin_http_t **out)
{
  *out = NULL;
  ks_admin_http_t *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return -ENOMEM;
  a->ad_loop = loop;
  a->ad_metrics = opts->metrics;
  h2o_linklist_init_anchor(&a->ad_conns);
  a->ad_grace_ms = opts->grace_ms ? opts->grace_ms : ADMIN_DEF_GRACE_MS;
  int rc = admin_listen(a, opts->host, opts->port);
  if (rc != 0 && a->ad_handles > 0) {
    /* the listener handle exists: its memory goes in its close callback */
    uv_close((uv_handle_t *)&a->ad_listener, admin_listener_failed);
    return rc;
  }
  if (rc != 0) {
    free(a);
    return rc;
  }
  admin_h2o_setup(a,
                  opts->timeout_ms ? opts->timeout_ms : ADMIN_DEF_TIMEOUT_MS);
  rc = uv_timer_init(loop, &a->ad_grace);
  assert(rc == 0); /* cannot fail on Linux */
  (void)rc;
  a->ad_grace.data = a;
  a->ad_handles++;
  *out = a;
  return 0;
}

uint16_t ks_admin_http_port(const ks_admin_http_t *a)
{
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getsockname(&a->ad_listener, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

uint64_t ks_admin_http_requests(const ks_admin_http_t *a)
{
  return a->ad_requests;
}

/* ---- close ------------------------------------------------------------------
 */

static void admin_reaper_closed(uv_handle_t *h)
{
  ks_admin_http_t *a = h->data;
  ks_admin_http_close_cb cb = a->ad_cb;
  void *arg = a->ad_arg;
  free(a);
  if (cb)
    cb(arg);
}

/* See the file comment: two iterations, so h2o's timers have finished. */
static void admin_reaper_cb(uv_idle_t *idle)
{
  ks_admin_http_t *a = idle->data;
  if (++a->ad_reaper_ticks < 2)
    return;
  uv_idle_stop(idle);
  uv_close((uv_handle_t *)idle, admin_reaper_closed);
}

static void admin_dispose(ks_admin_http_t *a)
{
  h2o_context_dispose(&a->ad_ctx);
  h2o_config_dispose(&a->ad_gconf);
  int rc = uv_idle_init(a->ad_loop, &a->ad_reaper);
  assert(rc == 0); /* cannot fail on Linux */
  (void)rc;
  a->ad_reaper.data = a;
  uv_idle_start(&a->ad_reaper, admin_reaper_cb);
}

/* The listener and the grace timer: the last one closed disposes. */
static void admin_handle_closed(uv_handle_t *h)
{
  ks_admin_http_t *a = h->data;
  assert(a->ad_handles > 0);
  if (--a->ad_handles == 0)
    admin_dispose(a);
}

static void admin_try_finish(ks_admin_http_t *a)
{
  if (a->ad_nconns > 0 || uv_is_closing((uv_handle_t *)&a->ad_grace))
    return;
  uv_timer_stop(&a->ad_grace);
  uv_close((uv_handle_t *)&a->ad_grace, admin_handle_closed);
}

static void admin_grace_cb(uv_timer_t *t)
{
  ks_admin_http_t *a = t->data;
  ks_log_warn(COMP, "close_forced", "conns=%zu", a->ad_nconns);
  uv_timer_stop(t);
  admin_conns_shutdown(a, SHUT_RDWR);
}

void ks_admin_http_close(ks_admin_http_t *a, ks_admin_http_close_cb cb,
                         void *arg)
{
  assert(!a->ad_closing);
  a->ad_closing = true;
  a->ad_cb = cb;
  a->ad_arg = arg;
  uv_close((uv_handle_t *)&a->ad_listener, admin_handle_closed);
  uv_timer_start(&a->ad_grace, admin_grace_cb, a->ad_grace_ms, 0);
  admin_conns_shutdown(a, SHUT_RD);
  admin_try_finish(a);
}
