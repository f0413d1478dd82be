/* Connects (pact/tcp.h): a numeric address at once, a host name through
 * getaddrinfo on the offload pool's blocking lane, then every address in
 * turn until one connects, under one timeout. The whole connect is one
 * pending-operation record: an abort token or pact_loop_close_all cancels
 * it at any step (a resolution in flight is aborted, its late answer
 * dropped), and its callback runs once, on a later tick.
 *
 * Why getaddrinfo and not libevent's evdns: getaddrinfo is the system's
 * resolver -- /etc/hosts, nsswitch (mDNS, LDAP, systemd-resolved), the
 * search domains and the address sorting of RFC 6724 -- which evdns
 * re-implements only in part; a name that works for every other program on
 * the machine works here too. Its cost, a blocking call, is what the
 * blocking lane is for. */
#include <event2/event.h>

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "pool_internal.h"
#include "promise_internal.h"
#include "tls_internal.h"

#define MAX_ADDRS 16

struct resolve;

struct conn {
    struct pact__op op;
    struct due due;
    struct tcp_svc *svc;
    pact_loop *loop;
    struct sockaddr_storage addr[MAX_ADDRS];
    socklen_t len[MAX_ADDRS];
    size_t n, i;
    int fd;
    struct event *ev, *tmo;
    bool ev_on, tmo_on;
    pact_stream_opts so;
    pact_stream_cb cb;
    void *ud;
    pact_fn ud_drop;
    pact_error *err;       /* the outcome: an error, */
    pact_stream *result;   /* or the stream */
    struct resolve *res;   /* the name's job while it runs */
    pact_abort *res_abort; /* aborts it */
    pact_tls_ctx *tls;     /* a reference, or NULL */
    char *servername;      /* with tls: what the certificate must name */
    pact_stream *hs;       /* connected, its TLS handshake under way */
    char host[112];        /* for print_pending */
};

/* The name's job: it owns this, so a cancelled connect can go at once. */
struct resolve {
    struct conn *c; /* NULL once the connect no longer waits */
    int port;
    struct addrinfo *ai;
    char host[];
};

/* ---- events, counted as the loop's own ----------------------------------- */

static void ev_set(struct conn *c, struct event *ev, bool *on,
                   const struct timeval *tv)
{
    if (*on || event_add(ev, tv) < 0)
        return;
    pact__own_event_added(c->loop);
    *on = true;
}

static void ev_clear(struct conn *c, struct event **ev, bool *on)
{
    if (*on) {
        event_del(*ev);
        pact__own_event_removed(c->loop);
        *on = false;
    }
    if (*ev && ev != &c->tmo) {
        event_free(*ev);
        *ev = NULL;
    }
}

/* ---- the end ------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
    ev_clear(c, &c->ev, &c->ev_on);
    ev_clear(c, &c->tmo, &c->tmo_on);
    if (c->tmo)
        event_free(c->tmo);
    if (c->fd >= 0)
        close(c->fd);
    pact_abort_unref(c->res_abort);
    pact_error_unref(c->err);
    pact__tls_ctx_unref(c->tls);
    free(c->servername);
    free(c);
}

/* Stop every step: the fd, the timer, the resolution. */
static void stop_all(struct conn *c)
{
    ev_clear(c, &c->ev, &c->ev_on);
    ev_clear(c, &c->tmo, &c->tmo_on);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->hs) { /* nobody was given it */
        pact__tls_forget(c->hs);
        pact__stream_kill(c->hs, NULL);
        pact__stream_let_go(c->hs);
        c->hs = NULL;
    }
    if (c->res) {
        c->res->c = NULL;
        c->res = NULL;
        pact_abort_abort(c->res_abort, NULL); /* dequeue it if not started */
    }
}

static void due_run(struct due *d)
{
    struct conn *c = pact__list_entry(d, struct conn, due);
    c->cb(c->err, c->err ? NULL : c->result, c->ud);
    conn_free(c);
}

static void due_drop(struct due *d)
{
    struct conn *c = pact__list_entry(d, struct conn, due);
    if (c->ud_drop)
        c->ud_drop(c->ud);
    conn_free(c); /* the stream, if any, is freed with the loop */
}

/* The connect is over with @p err (taken) or @p s. */
static void finish(struct conn *c, pact_error *err, pact_stream *s)
{
    pact_error *e;
    if (!pact__op_end(&c->op, &e)) { /* cancelled meanwhile (close_all) */
        pact_error_unref(err);
        return;
    }
    assert(!e);
    stop_all(c);
    c->err = err;
    c->result = s;
    pact__tcp_due(c->svc, &c->due);
}

static bool op_stop(struct pact__op *op)
{
    stop_all(pact__list_entry(op, struct conn, op));
    return true;
}

static void op_fail(struct pact__op *op, pact_error *err)
{
    struct conn *c = pact__list_entry(op, struct conn, op);
    c->cb(err, NULL, c->ud);
    conn_free(c);
}

static void op_drop(struct pact__op *op)
{
    due_drop(&pact__list_entry(op, struct conn, op)->due);
}

static void op_describe(const struct pact__op *op, char *buf, size_t len)
{
    const struct conn *c = pact__list_entry(op, const struct conn, op);
    char call[160];
    pact__describe_call(call, sizeof call, (void (*)(void))c->cb, c->ud);
    snprintf(buf, len, "connect to %s (%s, address %zu of %zu), calls %s",
             c->host,
             c->res  ? "resolving"
             : c->hs ? "TLS handshake"
                     : "connecting",
             c->i + 1, c->n, call);
}

static const struct pact__op_type conn_type = {
    .what = "connect",
    .stop = op_stop,
    .fail = op_fail,
    .drop = op_drop,
    .describe = op_describe,
};

/* ---- trying the addresses ------------------------------------------------ */

static void try_next(struct conn *c, int last);

/* tls_io.c: the handshake is over (@p err borrowed). */
static void handshaken(void *arg, pact_stream *s, pact_error *err)
{
    struct conn *c = arg;
    c->hs = NULL;
    if (err) {
        pact__stream_let_go(s); /* it is dead: freed after its events */
        finish(c, pact_error_ref(err), NULL);
    } else {
        finish(c, NULL, s);
    }
}

static void connected(struct conn *c)
{
    int fd = c->fd;
    c->fd = -1;
    ev_clear(c, &c->ev, &c->ev_on);
    int family = ((struct sockaddr *)&c->addr[c->i])->sa_family;
    pact_stream *s = pact__stream_new(c->svc, fd, family, &c->so, c->so.abort);
    if (!s)
        close(fd);
    if (s && c->tls) {
        int rc = pact__tls_attach(s, c->tls, c->servername, handshaken, c);
        if (rc == 0) {
            c->hs = s; /* the connect settles when the handshake does */
            return;
        }
        pact__stream_kill(s, NULL);
        pact__stream_let_go(s);
        finish(c, pact__sock_error(rc, "TLS"), NULL);
        return;
    }
    finish(c, s ? NULL : pact__enomem(), s);
}

static void on_connect(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    pact_loop *loop = c->loop;
    bool was = pact__own_begin(loop);
    pact__step_begin(loop, PACT_STEP_POLL, (void (*)(void))c->cb, c->ud);
    int e = 0;
    socklen_t el = sizeof e;
    if (getsockopt((int)fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
        e = errno;
    if (e == 0) {
        connected(c);
    } else {
        ev_clear(c, &c->ev, &c->ev_on);
        close(c->fd);
        c->fd = -1;
        c->i++;
        try_next(c, -e);
    }
    pact__step_end(loop);
    pact__drain(loop);
    pact__own_end(loop, was);
}

/* Start the next address; @p last the previous one's error. */
static void try_next(struct conn *c, int last)
{
    for (; c->i < c->n; c->i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&c->addr[c->i];
        c->fd = socket(sa->sa_family,
                       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            last = pact__sys_err();
            continue;
        }
        if (connect(c->fd, sa, c->len[c->i]) == 0) {
            connected(c);
            return;
        }
        if (errno == EINPROGRESS) {
            c->ev = event_new(c->loop->base, c->fd, EV_WRITE, on_connect, c);
            if (c->ev) {
                ev_set(c, c->ev, &c->ev_on, NULL);
                return;
            }
            last = PACT_ENOMEM;
        } else {
            last = pact__sys_err();
        }
        close(c->fd);
        c->fd = -1;
    }
    finish(c, pact__sock_error(last, "connect"), NULL);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    pact_loop *loop = c->loop;
    bool was = pact__own_begin(loop);
    c->tmo_on = false; /* fired */
    pact__own_event_removed(loop);
    finish(c, PACT_ERROR(PACT_ETIMEDOUT, "connect to %s timed out", c->host),
           NULL);
    pact__drain(loop);
    pact__own_end(loop, was);
}

/* ---- resolving a name ---------------------------------------------------- */

static void free_ai(void *ai)
{
    freeaddrinfo(ai);
}

static pact_error *resolve_job(pact_job *job, void *arg, pact_value *result)
{
    (void)job;
    struct resolve *r = arg;
    char port[8];
    snprintf(port, sizeof port, "%d", r->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(r->host, port, &hints, &ai);
    if (rc == EAI_SYSTEM)
        return PACT_ERROR(-errno, "getaddrinfo(%s): %s", r->host,
                          strerror(errno));
    if (rc)
        return PACT_ERROR(PACT_ENOENT, "getaddrinfo(%s): %s", r->host,
                          gai_strerror(rc));
    *result = pact_owned(ai, free_ai);
    return NULL;
}

static void resolved(pact_error *err, pact_value *result, void *ud)
{
    struct resolve *r = ud;
    struct conn *c = r->c;
    free(r);
    if (!c)
        return; /* the connect was cancelled: the answer is dropped */
    c->res = NULL;
    if (err) {
        finish(c, pact_error_ref(err), NULL);
        return;
    }
    for (struct addrinfo *a = result->u.owned.ptr; a && c->n < MAX_ADDRS;
         a = a->ai_next) {
        if (a->ai_addrlen > sizeof c->addr[0])
            continue;
        memcpy(&c->addr[c->n], a->ai_addr, a->ai_addrlen);
        c->len[c->n++] = a->ai_addrlen;
    }
    try_next(c, PACT_ENOENT);
}

static void drop_resolve(void *ud)
{
    free(ud);
}

static int resolve(struct conn *c, const char *host, int port)
{
    size_t n = strlen(host) + 1;
    struct resolve *r = malloc(sizeof *r + n);
    if (!r)
        return PACT_ENOMEM;
    r->c = c;
    r->port = port;
    memcpy(r->host, host, n);
    int rc = pact_abort_new(c->loop, &c->res_abort);
    pact_offload_opts o = {.lane = PACT_LANE_BLOCKING, .abort = c->res_abort};
    if (rc == 0)
        rc = pact__offload(c->loop, resolve_job, r, &o, resolved, r,
                           drop_resolve, "pact_tcp_connect");
    if (rc < 0) {
        free(r);
        return rc;
    }
    c->res = r;
    return 0;
}

/* ---- the calls ----------------------------------------------------------- */

struct target {
    const char *host; /* a name or a numeric address, or NULL */
    int port;
    const struct sockaddr_un *un;
};

static int start(pact_loop *loop, const struct target *t,
                 const pact_tcp_connect_opts *o, pact_stream_cb cb, void *ud,
                 pact_fn ud_drop)
{
    struct tcp_svc *svc = pact__tcp_svc(loop);
    struct conn *c = svc ? calloc(1, sizeof *c) : NULL;
    if (!c)
        return PACT_ENOMEM;
    c->svc = svc;
    c->loop = loop;
    c->fd = -1;
    c->cb = cb;
    c->ud = ud;
    c->ud_drop = ud_drop;
    c->due.run = due_run;
    c->due.drop = due_drop;
    pact__list_init(&c->due.node);
    if (o && o->stream)
        c->so = *o->stream;
    if (o && o->tls) {
        const char *name = o->servername ? o->servername : t->host;
        if (o->tls->server || (o->tls->verify && !name)) {
            free(c);
            return pact__misuse("pact_tcp_connect", PACT_EINVAL,
                                o->tls->server ? "opts->tls is a server context"
                                               : "no servername to verify");
        }
        c->tls = pact__tls_ctx_ref(o->tls);
        if (name && !(c->servername = strdup(name))) {
            pact__tls_ctx_unref(c->tls);
            free(c);
            return PACT_ENOMEM;
        }
    }
    snprintf(c->host, sizeof c->host, "%s",
             t->host ? t->host : t->un->sun_path);
    int rc = 0;
    bool name = false;
    if (t->un) {
        memcpy(&c->addr[0], t->un, sizeof *t->un);
        c->len[0] = sizeof *t->un;
        c->n = 1;
    } else if (pact__tcp_addr(t->host, t->port, &c->addr[0], &c->len[0]) == 0) {
        c->n = 1;
    } else {
        name = true;
        rc = resolve(c, t->host, t->port);
    }
    c->tmo = evtimer_new(loop->base, on_timeout, c);
    if (rc == 0 && !c->tmo)
        rc = PACT_ENOMEM;
    if (rc == 0)
        rc = pact__op_start(loop, &c->op, &conn_type, o ? o->abort : NULL,
                            PACT__OP_REF);
    if (rc < 0) {
        stop_all(c);
        conn_free(c);
        return rc;
    }
    if (c->op.state != PACT__OP_PENDING)
        return 0; /* aborted already: its cancellation is due */
    if (o && o->timeout_ms) {
        struct timeval tv = {(time_t)(o->timeout_ms / 1000),
                             (suseconds_t)(o->timeout_ms % 1000) * 1000};
        ev_set(c, c->tmo, &c->tmo_on, &tv);
    }
    if (!name)
        try_next(c, PACT_ENOENT);
    return 0;
}

int pact_tcp_connect(pact_loop *loop, const char *host, int port,
                     const pact_tcp_connect_opts *opts, pact_stream_cb cb,
                     void *ud)
{
    static const char fn[] = "pact_tcp_connect";
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(host && *host && cb, fn);
    PACT_CHECK_ARG(port > 0 && port <= 65535, fn);
    struct target t = {host, port, NULL};
    return start(loop, &t, opts, cb, ud, NULL);
}

int pact_unix_connect(pact_loop *loop, const char *path,
                      const pact_tcp_connect_opts *opts, pact_stream_cb cb,
                      void *ud)
{
    static const char fn[] = "pact_unix_connect";
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(path && cb, fn);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof un.sun_path)
        return PACT_ENAMETOOLONG;
    memcpy(un.sun_path, path, strlen(path) + 1);
    struct target t = {NULL, 0, &un};
    return start(loop, &t, opts, cb, ud, NULL);
}

/* ---- the promise twin ---------------------------------------------------- */

static void settle(pact_error *err, pact_stream *s, void *d)
{
    if (err)
        pact_deferred_reject(d, pact_error_ref(err));
    else
        pact_deferred_resolve(d, pact_ptr(s));
    pact_deferred_unref(d);
}

static void unref_deferred(void *d)
{
    pact_deferred_unref(d);
}

struct connect_args {
    const char *host;
    int port;
    const pact_tcp_connect_opts *opts;
};

static int start_twin(pact_loop *loop, void *args, pact_deferred *d)
{
    const struct connect_args *a = args;
    static const char fn[] = "pact_tcp_connect_p";
    PACT_CHECK_ARG(a->host && *a->host, fn);
    PACT_CHECK_ARG(a->port > 0 && a->port <= 65535, fn);
    struct target t = {a->host, a->port, NULL};
    return start(loop, &t, a->opts, settle, d, unref_deferred);
}

pact_promise *pact_tcp_connect_p(pact_loop *loop, const char *host, int port,
                                 const pact_tcp_connect_opts *opts)
{
    struct connect_args a = {host, port, opts};
    return pact__promisify(loop, start_twin, &a, "pact_tcp_connect_p");
}
