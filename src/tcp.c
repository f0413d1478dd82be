/* Servers (pact/tcp.h): listening on IPv4, IPv6 and Unix sockets, accepting
 * into streams, and the sockets' per-loop service (PACT__SVC_TCP): its due
 * list, delivered by one reserved tick, and what it frees with the loop.
 *
 * A listening server is a pending-operation record (op.c). Accept takes up
 * to ACCEPT_BATCH connections per readable event; EMFILE or ENFILE (or the
 * kernel out of memory for one) stops watching the socket and retries after
 * a back-off that doubles up to a second, so a loop out of descriptors
 * sleeps instead of spinning on a socket that stays readable; the episode
 * is logged once, and ends with the first accept that succeeds. */
#include <event2/event.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "tls_internal.h"

#define ACCEPT_BATCH 32
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000

/* ---- the service --------------------------------------------------------- */

static void deliver(void *ud)
{
    struct tcp_svc *svc = ud;
    struct pact__list due;
    pact__list_init(&due);
    pact__list_splice(&due, &svc->due);
    svc->tick = false;
    struct pact__list *n;
    while ((n = pact__list_first(&due))) {
        pact__list_remove(n);
        struct due *d = pact__list_entry(n, struct due, node);
        d->run(d);                 /* may free what holds d */
        if (svc->loop->uncaught) { /* the rest on the loop's next run */
            pact__list_splice(&due, &svc->due);
            pact__list_splice(&svc->due, &due);
            break;
        }
    }
    if (!pact__list_empty(&svc->due) && !svc->tick) {
        svc->tick = true;
        pact__jobq_put(&svc->loop->ticks, deliver, svc);
    }
}

void pact__tcp_due(struct tcp_svc *svc, struct due *d)
{
    if (pact__list_linked(&d->node))
        return;
    pact__list_push_back(&svc->due, &d->node);
    if (!svc->tick) {
        svc->tick = true;
        pact__jobq_put(&svc->loop->ticks, deliver, svc); /* reserved */
        pact__kick(svc->loop);
    }
}

static void svc_release(pact_loop *loop, void *state)
{
    (void)loop;
    struct tcp_svc *svc = state;
    struct pact__list *n;
    while ((n = pact__list_first(&svc->due))) {
        pact__list_remove(n);
        struct due *d = pact__list_entry(n, struct due, node);
        d->drop(d);
    }
}

static void server_free(pact_tcp_server *srv);

static void svc_free(pact_loop *loop, void *state)
{
    struct tcp_svc *svc = state;
    svc_release(loop, svc);
    struct pact__list *n;
    while ((n = pact__list_first(&svc->streams)))
        pact__stream_release(pact__list_entry(n, pact_stream, node));
    while ((n = pact__list_first(&svc->servers)))
        server_free(pact__list_entry(n, pact_tcp_server, node));
    assert(loop->ticks.reserved > 0);
    loop->ticks.reserved--; /* the delivery's slot */
    pact__read_spares_free(svc);
    free(svc->rbuf);
    free(svc);
}

/* close_all and busy: the records (op.c) say it all */
static const struct pact__service_ops svc_ops = {
    .release = svc_release,
    .free = svc_free,
};

static void *svc_make(pact_loop *loop)
{
    struct tcp_svc *svc = calloc(1, sizeof *svc);
    if (!svc || !(svc->rbuf = malloc(PACT__RBUF)) ||
        pact__jobq_reserve(&loop->ticks) < 0) {
        if (svc)
            free(svc->rbuf);
        free(svc);
        return NULL;
    }
    svc->loop = loop;
    pact__list_init(&svc->streams);
    pact__list_init(&svc->servers);
    pact__list_init(&svc->due);
    return svc;
}

struct tcp_svc *pact__tcp_svc(pact_loop *loop)
{
    return pact__service(loop, PACT__SVC_TCP, &svc_ops, svc_make);
}

/* ---- addresses ----------------------------------------------------------- */

int pact__tcp_addr(const char *host, int port, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (port < 0 || port > 65535)
        return PACT_EINVAL;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 0;
    }
    return PACT_EINVAL;
}

/* ---- accepting ----------------------------------------------------------- */

static void set_on(pact_tcp_server *srv, struct event *ev, bool *on,
                   const struct timeval *tv)
{
    if (*on || event_add(ev, tv) < 0)
        return;
    pact__own_event_added(srv->loop);
    *on = true;
}

static void set_off(pact_tcp_server *srv, struct event *ev, bool *on)
{
    if (!*on)
        return;
    event_del(ev);
    pact__own_event_removed(srv->loop);
    *on = false;
}

/* Out of descriptors (or memory for a connection): stop watching. */
static void back_off(pact_tcp_server *srv, int err)
{
    if (!srv->episode) {
        srv->episode = true;
        srv->backoff_ms = BACKOFF_MIN_MS;
        fprintf(stderr,
                "pact: accept on port %d: %s (%s); pausing accepts (retried "
                "with back-off; said once until an accept succeeds)\n",
                srv->port, pact_strerror(err), pact_err_name(err));
    } else if ((srv->backoff_ms *= 2) > BACKOFF_MAX_MS) {
        srv->backoff_ms = BACKOFF_MAX_MS;
    }
    set_off(srv, srv->ev, &srv->ev_on);
    struct timeval tv = {0, (suseconds_t)srv->backoff_ms * 1000};
    if (srv->backoff_ms >= 1000)
        tv = (struct timeval){1, 0};
    set_on(srv, srv->backoff, &srv->bo_on, &tv);
}

/* tls_io.c: an accepted connection's handshake is over. */
static void handshaken(void *arg, pact_stream *s, pact_error *err)
{
    (void)arg;
    pact_tcp_server *srv = s->server;
    if (!err && srv && !srv->closed &&
        (srv->op.state == PACT__OP_PENDING || srv->shutting)) {
        pact__label_refine(srv->loop, PACT_STEP_POLL, (void (*)(void))srv->cb,
                           srv->ud);
        srv->cb(NULL, s, srv->ud);
        return;
    }
    /* failed, or nobody to hand it to: closed without a word */
    if (!err)
        pact__stream_kill(s, NULL);
    pact__stream_let_go(s);
}

static void take(pact_tcp_server *srv, int fd)
{
    if (srv->max_conns && srv->conns >= srv->max_conns) {
        close(fd);
        return;
    }
    pact_stream *s =
        pact__stream_new(srv->svc, fd, srv->family, &srv->so, NULL);
    if (!s) {
        close(fd);
        return;
    }
    s->server = srv;
    srv->conns++;
    if (srv->tls) { /* handed over once its handshake is done */
        if (pact__tls_attach(s, srv->tls, NULL, handshaken, NULL) < 0) {
            pact__stream_kill(s, NULL);
            pact__stream_let_go(s);
        }
        return;
    }
    pact__label_refine(srv->loop, PACT_STEP_POLL, (void (*)(void))srv->cb,
                       srv->ud);
    srv->cb(NULL, s, srv->ud);
}

static void do_accept(pact_tcp_server *srv, size_t batch)
{
    for (size_t i = 0; i < batch && !srv->stopped; i++) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                back_off(srv, -e);
                return;
            }
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            continue; /* ECONNABORTED, EINTR, EPROTO...: the next one */
        }
        if (srv->episode) {
            srv->episode = false;
            fprintf(stderr, "pact: accept on port %d: recovered\n", srv->port);
        }
        take(srv, fd);
    }
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_tcp_server *srv = arg;
    pact_loop *loop = srv->loop;
    bool was = pact__own_begin(loop);
    pact__step_begin(loop, PACT_STEP_POLL, (void (*)(void))srv->cb, srv->ud);
    do_accept(srv, ACCEPT_BATCH);
    pact__step_end(loop);
    pact__drain(loop);
    pact__own_end(loop, was);
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_tcp_server *srv = arg;
    srv->bo_on = false; /* fired: no longer added */
    pact__own_event_removed(srv->loop);
    if (!srv->stopped)
        set_on(srv, srv->ev, &srv->ev_on, NULL);
}

void pact__server_stream_gone(pact_tcp_server *srv)
{
    assert(srv->conns > 0);
    if (--srv->conns == 0 && srv->shutting)
        pact__server_shutdown_done(srv, NULL);
}

/* ---- its life ------------------------------------------------------------ */

static void stop_listening(pact_tcp_server *srv);

void pact__server_stop(pact_tcp_server *srv)
{
    do_accept(srv, SIZE_MAX); /* the kernel's queue: none is lost */
    stop_listening(srv);
}

static void stop_listening(pact_tcp_server *srv)
{
    if (srv->stopped)
        return;
    srv->stopped = true;
    set_off(srv, srv->ev, &srv->ev_on);
    set_off(srv, srv->backoff, &srv->bo_on);
    close(srv->fd);
    srv->fd = -1;
    if (srv->path[0])
        unlink(srv->path);
}

static void server_free(pact_tcp_server *srv)
{
    stop_listening(srv);
    /* its streams outlive it */
    struct pact__list *n, *tmp;
    pact__list_each(n, tmp, &srv->svc->streams) {
        pact_stream *s = pact__list_entry(n, pact_stream, node);
        if (s->server != srv)
            continue;
        s->server = NULL;
        if (pact__tls_handshaking(s)) { /* nobody to hand it to */
            pact__tls_forget(s);
            pact__stream_kill(s, NULL);
            pact__stream_let_go(s);
        }
    }
    pact__list_remove(&srv->node);
    if (pact__list_linked(&srv->due.node))
        pact__list_remove(&srv->due.node);
    pact__server_shutdown_release(srv);
    event_free(srv->ev);
    event_free(srv->backoff);
    pact__tls_ctx_unref(srv->tls);
    free(srv);
}

static bool srv_stop(struct pact__op *op)
{
    stop_listening(pact__list_entry(op, pact_tcp_server, op));
    return true;
}

void pact__server_closed(struct due *d)
{
    pact_tcp_server *srv = pact__list_entry(d, pact_tcp_server, due);
    pact_fn cb = srv->close_cb;
    void *ud = srv->close_ud;
    pact_cb shut_cb = srv->shut_cb;
    void *shut_ud = srv->shut_ud;
    pact_error *err = srv->shut_err;
    srv->shut_err = NULL;
    server_free(srv);
    if (cb)
        cb(ud);
    if (shut_cb)
        shut_cb(err, shut_ud);
    pact_error_unref(err);
}

static void closed_drop(struct due *d)
{
    server_free(pact__list_entry(d, pact_tcp_server, due));
}

static void srv_fail(struct pact__op *op, pact_error *err)
{
    pact_tcp_server *srv = pact__list_entry(op, pact_tcp_server, op);
    if (srv->closed) { /* closed while its cancellation was due */
        if (srv->shut_cb && !srv->shut_err)
            srv->shut_err = pact_error_ref(err);
        pact__server_closed(&srv->due);
        return;
    }
    pact__label_refine(srv->loop, PACT_STEP_TICK, (void (*)(void))srv->cb,
                       srv->ud);
    srv->cb(err, NULL, srv->ud);
}

static void srv_describe(const struct pact__op *op, char *buf, size_t len)
{
    const pact_tcp_server *srv =
        pact__list_entry(op, const pact_tcp_server, op);
    char call[160];
    pact__describe_call(call, sizeof call, (void (*)(void))srv->cb, srv->ud);
    if (srv->path[0])
        snprintf(buf, len, "server on %s, %zu connections, calls %s", srv->path,
                 srv->conns, call);
    else
        snprintf(buf, len, "server on port %d, %zu connections, calls %s",
                 srv->port, srv->conns, call);
}

/* dropped at pact_loop_free: the service frees it */
static const struct pact__op_type srv_type = {
    .what = "tcp server",
    .stop = srv_stop,
    .fail = srv_fail,
    .describe = srv_describe,
};

int pact_tcp_server_close(pact_tcp_server *srv, pact_fn cb, void *ud)
{
    if (!srv || srv->closed)
        return pact__misuse("pact_tcp_server_close", PACT_EINVAL,
                            "srv is NULL or closed");
    PACT_CHECK_THREAD(srv->loop, "pact_tcp_server_close");
    srv->closed = true;
    srv->close_cb = cb;
    srv->close_ud = ud;
    if (srv->op.state == PACT__OP_CANCELLED)
        return 0; /* srv_fail, due, closes it */
    pact_error *e;
    if (srv->op.state == PACT__OP_PENDING && pact__op_end(&srv->op, &e))
        pact_error_unref(e);
    stop_listening(srv);
    pact__tcp_due(srv->svc, &srv->due);
    return 0;
}

int pact_tcp_server_port(const pact_tcp_server *srv)
{
    return srv ? srv->port : 0;
}

size_t pact_tcp_server_connections(const pact_tcp_server *srv)
{
    return srv ? srv->conns : 0;
}

/* ---- listening ----------------------------------------------------------- */

static int bound_socket(const struct sockaddr *sa, socklen_t sl,
                        const pact_tcp_listen_opts *o, int *port)
{
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pact__sys_err();
    int on = 1, v6only = o && o->ipv6_only;
    int rc = 0;
    if (sa->sa_family != AF_UNIX &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
        rc = pact__sys_err();
#ifdef SO_REUSEPORT
    if (!rc && o && o->reuseport &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0)
        rc = pact__sys_err();
#endif
    if (!rc && sa->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
        rc = pact__sys_err();
    if (!rc && (bind(fd, sa, sl) < 0 ||
                listen(fd, o && o->backlog > 0 ? o->backlog : 511) < 0))
        rc = pact__sys_err();
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!rc && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        *port = ss.ss_family == AF_INET
                    ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                : ss.ss_family == AF_INET6
                    ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                    : 0;
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

static int start(pact_loop *loop, const struct sockaddr *sa, socklen_t sl,
                 const pact_tcp_listen_opts *o, pact_tcp_accept_cb cb, void *ud,
                 pact_tcp_server **out, const char *path)
{
    if (o && o->tls && !o->tls->server)
        return pact__misuse("pact_tcp_listen", PACT_EINVAL,
                            "opts->tls is a client context");
    struct tcp_svc *svc = pact__tcp_svc(loop);
    pact_tcp_server *srv = svc ? calloc(1, sizeof *srv) : NULL;
    if (!srv)
        return PACT_ENOMEM;
    int port = 0, fd = bound_socket(sa, sl, o, &port);
    if (fd < 0) {
        free(srv);
        return fd;
    }
    srv->svc = svc;
    srv->loop = loop;
    srv->fd = fd;
    srv->port = port;
    srv->family = sa->sa_family;
    srv->cb = cb;
    srv->ud = ud;
    srv->due.run = pact__server_closed;
    srv->due.drop = closed_drop;
    pact__list_init(&srv->due.node);
    if (o && o->stream)
        srv->so = *o->stream;
    srv->so.abort = NULL;
    srv->max_conns = o ? o->max_connections : 0;
    srv->tls = pact__tls_ctx_ref(o ? o->tls : NULL);
    if (path)
        snprintf(srv->path, sizeof srv->path, "%s", path);
    srv->ev = event_new(loop->base, fd, EV_READ | EV_PERSIST, on_accept, srv);
    srv->backoff = evtimer_new(loop->base, on_backoff, srv);
    int rc = srv->ev && srv->backoff ? 0 : PACT_ENOMEM;
    if (rc == 0)
        rc = pact__op_start(loop, &srv->op, &srv_type, o ? o->abort : NULL,
                            PACT__OP_REF);
    if (rc < 0) {
        if (srv->ev)
            event_free(srv->ev);
        if (srv->backoff)
            event_free(srv->backoff);
        close(fd);
        if (path)
            unlink(path);
        pact__tls_ctx_unref(srv->tls);
        free(srv);
        return rc;
    }
    pact__list_push_back(&svc->servers, &srv->node);
    if (!srv->stopped) /* a token aborted already stopped it */
        set_on(srv, srv->ev, &srv->ev_on, NULL);
    *out = srv;
    return 0;
}

int pact_tcp_listen(pact_loop *loop, const char *host, int port,
                    const pact_tcp_listen_opts *opts, pact_tcp_accept_cb cb,
                    void *ud, pact_tcp_server **out)
{
    static const char fn[] = "pact_tcp_listen";
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(cb, fn);
    PACT_CHECK_ARG(out, fn);
    struct sockaddr_storage ss;
    socklen_t sl;
    if (pact__tcp_addr(host ? host : "::", port, &ss, &sl) < 0)
        return pact__misuse(fn, PACT_EINVAL, "not a numeric address or port");
    int rc = start(loop, (struct sockaddr *)&ss, sl, opts, cb, ud, out, NULL);
    if (rc == -EAFNOSUPPORT && !host) { /* no IPv6 here */
        pact__tcp_addr("0.0.0.0", port, &ss, &sl);
        rc = start(loop, (struct sockaddr *)&ss, sl, opts, cb, ud, out, NULL);
    }
    return rc;
}

int pact_unix_listen(pact_loop *loop, const char *path,
                     const pact_tcp_listen_opts *opts, pact_tcp_accept_cb cb,
                     void *ud, pact_tcp_server **out)
{
    static const char fn[] = "pact_unix_listen";
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(path && cb && out, fn);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof un.sun_path)
        return PACT_ENAMETOOLONG;
    memcpy(un.sun_path, path, strlen(path) + 1);
    return start(loop, (struct sockaddr *)&un, sizeof un, opts, cb, ud, out,
                 path);
}
