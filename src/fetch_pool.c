/* The client's per-loop connection pool (PACT__SVC_FETCH): one origin per
 * scheme, host and port, with its idle kept-alive connections (newest
 * first: the one least likely to have been closed by the server) and its
 * queue of fetches waiting for a connection once max_per_origin are open.
 *
 * A connection is a pact_stream in events mode, serving one fetch at a
 * time. Idle, it keeps no loop alive (its record is unreferenced, as
 * Node's agent unrefs its free sockets) and closes itself after the idle
 * timeout (the stream's own); a byte or an EOF from the server while idle
 * closes it too. pact_loop_free closes the idle ones (the `busy` hook)
 * rather than refusing for them, since the program never held them.
 *
 * The transport is a seam (struct transport): plain TCP, or TLS, whose
 * connect makes a TLS stream (pact_tcp_connect_opts.tls) with a client
 * context from the pool's small cache, keyed by the fetch's ca_file and
 * insecure, the servername the URL's host. */
#include <stdlib.h>
#include <string.h>

#include "fetch_internal.h"
#include "tcp_internal.h"

enum conn_state { C_CONNECTING, C_BUSY, C_IDLE, C_DEAD };

struct fetch_conn {
    struct pact__list node;  /* svc->conns */
    struct pact__list inode; /* origin->idle while idle */
    struct fetch_origin *origin;
    pact_stream *s;     /* NULL while connecting and once closed */
    pact_abort *cabort; /* aborts the connect while it runs */
    struct fetch *f;    /* the fetch it serves or connects for */
    enum conn_state state;
    bool reused;         /* served a fetch before this one */
    pact_stream_opts so; /* as set on the stream */
};

/* ---- transports ---------------------------------------------------------- */

struct transport {
    int (*connect)(struct fetch_conn *c, pact_stream_cb cb);
};

static int tcp_connect(struct fetch_conn *c, pact_stream_cb cb)
{
    pact_tcp_connect_opts o = {.abort = c->cabort, .stream = &c->so};
    return pact_tcp_connect(c->origin->svc->loop, c->origin->host,
                            c->origin->port, &o, cb, c);
}

static bool same_file(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int pact__fetch_tls_ctx(struct fetch_svc *svc, const char *ca_file,
                        bool insecure, pact_tls_ctx **out, pact_error **err)
{
    struct fetch_tls *t = NULL;
    for (size_t i = 0; i < FETCH_TLS_CTXS; i++) {
        struct fetch_tls *e = &svc->tls[i];
        if (e->ctx && e->insecure == insecure &&
            same_file(e->ca_file, ca_file)) {
            *out = e->ctx;
            return 0;
        }
        if (!e->ctx && !t)
            t = e;
    }
    char *copy = NULL;
    if (ca_file && !(copy = strdup(ca_file)))
        return PACT_ENOMEM;
    pact_tls_opts o = {.ca_file = ca_file, .insecure_no_verify = insecure};
    pact_tls_ctx *ctx = pact_tls_client_ctx_new(&o, err);
    if (!ctx) {
        free(copy);
        return *err ? pact_error_code(*err) : PACT_ENOMEM;
    }
    if (!t) { /* all taken: the oldest goes (its connections keep it) */
        t = &svc->tls[svc->tls_next];
        svc->tls_next = (svc->tls_next + 1) % FETCH_TLS_CTXS;
        pact_tls_ctx_free(t->ctx);
        free(t->ca_file);
    }
    t->ctx = ctx;
    t->ca_file = copy;
    t->insecure = insecure;
    *out = ctx;
    return 0;
}

static int tls_connect(struct fetch_conn *c, pact_stream_cb cb)
{
    struct fetch_origin *o = c->origin;
    pact_tls_ctx *ctx;
    pact_error *err = NULL;
    int rc = pact__fetch_tls_ctx(o->svc, o->ca_file, o->insecure, &ctx, &err);
    pact_error_unref(err); /* fetch.c made the same context before: rare */
    if (rc < 0)
        return rc;
    pact_tcp_connect_opts to = {.abort = c->cabort,
                                .stream = &c->so,
                                .tls = ctx,
                                .servername = o->host};
    return pact_tcp_connect(o->svc->loop, o->host, o->port, &to, cb, c);
}

static const struct transport transports[2] = {{tcp_connect}, {tls_connect}};

/* ---- the service --------------------------------------------------------- */

static void conn_free(struct fetch_conn *c)
{
    assert(c->origin->records > 0);
    c->origin->records--;
    pact__list_remove(&c->node);
    if (pact__list_linked(&c->inode))
        pact__list_remove(&c->inode);
    pact_abort_unref(c->cabort);
    free(c);
}

static void origin_free(struct fetch_origin *o)
{
    pact__list_remove(&o->node);
    free(o->ca_file);
    free(o);
}

/* An origin with nothing open nor waiting goes. */
static void origin_maybe_free(struct fetch_origin *o)
{
    if (o->records == 0 && pact__list_empty(&o->waiters))
        origin_free(o);
}

static void set_ref(struct fetch_conn *c, bool ref)
{
    if (c->s)
        pact__op_set_ref(&c->s->op, ref);
}

/* Close @p c (gracefully when @p graceful: its output is flushed); it
 * leaves its origin's count now, its record goes at the close event. */
static void conn_kill(struct fetch_conn *c, bool graceful)
{
    if (c->state == C_DEAD)
        return;
    bool connecting = c->state == C_CONNECTING;
    c->state = C_DEAD;
    c->f = NULL;
    if (pact__list_linked(&c->inode))
        pact__list_remove(&c->inode);
    struct fetch_origin *o = c->origin;
    assert(o->open > 0);
    o->open--;
    if (connecting) {
        pact_abort_abort(c->cabort, NULL); /* its callback frees it */
    } else if (c->s) {
        set_ref(c, true); /* as every stream closing */
        if (graceful)
            pact_stream_close(c->s);
        else
            pact_stream_destroy(c->s, NULL);
    }
}

static size_t close_idle(struct fetch_svc *svc)
{
    size_t k = 0;
    struct pact__list *n, *on, *tmp;
    pact__list_each(on, tmp, &svc->origins) {
        struct fetch_origin *o =
            pact__list_entry(on, struct fetch_origin, node);
        while ((n = pact__list_first(&o->idle))) {
            conn_kill(pact__list_entry(n, struct fetch_conn, inode), false);
            k++;
        }
        origin_maybe_free(o);
    }
    return k;
}

/* pact_loop_free: the idle connections are the pool's, not the program's:
 * close them rather than refuse. Their streams are dropped with the loop
 * (their close events never run), so their records go now. */
static const char *svc_busy(pact_loop *loop, void *state)
{
    (void)loop;
    struct fetch_svc *svc = state;
    struct pact__list *n, *on, *tmp;
    pact__list_each(on, tmp, &svc->origins) {
        struct fetch_origin *o =
            pact__list_entry(on, struct fetch_origin, node);
        while ((n = pact__list_first(&o->idle))) {
            struct fetch_conn *c =
                pact__list_entry(n, struct fetch_conn, inode);
            pact_stream *s = c->s;
            conn_kill(c, false);
            pact_stream_events none = {0};
            pact_stream_on(s, &none, NULL);
            c->s = NULL;
            conn_free(c);
        }
    }
    return NULL;
}

static void svc_free(pact_loop *loop, void *state)
{
    (void)loop;
    struct fetch_svc *svc = state;
    struct pact__list *n;
    /* the streams and connects are the tcp service's, freed after */
    while ((n = pact__list_first(&svc->conns)))
        conn_free(pact__list_entry(n, struct fetch_conn, node));
    while ((n = pact__list_first(&svc->origins)))
        origin_free(pact__list_entry(n, struct fetch_origin, node));
    for (size_t i = 0; i < FETCH_TLS_CTXS; i++) {
        pact_tls_ctx_free(svc->tls[i].ctx);
        free(svc->tls[i].ca_file);
    }
    free(svc);
}

static const struct pact__service_ops svc_ops = {
    .busy = svc_busy,
    .free = svc_free,
};

static void *svc_make(pact_loop *loop)
{
    struct fetch_svc *svc = calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    svc->loop = loop;
    pact__list_init(&svc->origins);
    pact__list_init(&svc->conns);
    svc->o.max_per_origin = 64;
    svc->o.idle_timeout_ms = 4000;
    return svc;
}

struct fetch_svc *pact__fetch_svc(pact_loop *loop)
{
    return pact__service(loop, PACT__SVC_FETCH, &svc_ops, svc_make);
}

static void kick(struct fetch_origin *o);
static void release_conn(struct fetch_conn *c);

/* ---- a connection's events ----------------------------------------------- */

static void on_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)s;
    struct fetch_conn *c = ud;
    if (c->state == C_BUSY && c->f)
        pact__fetch_data(c->f, buf, len);
    else
        conn_kill(c, false); /* a byte nobody asked for */
}

static void on_end(pact_stream *s, void *ud)
{
    (void)s;
    struct fetch_conn *c = ud;
    if (c->state == C_BUSY && c->f) {
        struct fetch *f = c->f;
        pact__fetch_conn_lost(f, NULL); /* releases or kills c */
    } else {
        conn_kill(c, true);
    }
}

static void on_error(pact_stream *s, pact_error *err, void *ud)
{
    (void)s;
    struct fetch_conn *c = ud;
    if (c->state == C_BUSY && c->f)
        pact__fetch_conn_lost(c->f, err);
    else
        conn_kill(c, false);
}

static void on_close(pact_stream *s, void *ud)
{
    (void)s;
    struct fetch_conn *c = ud;
    if (c->state == C_BUSY && c->f) {
        /* closed without an end or error event: as an EOF */
        pact__fetch_conn_lost(c->f, NULL);
    }
    conn_kill(c, false);
    struct fetch_origin *o = c->origin;
    c->s = NULL;
    conn_free(c);
    kick(o);
    origin_maybe_free(o);
}

static const pact_stream_events conn_events = {
    .data = on_data,
    .end = on_end,
    .error = on_error,
    .close = on_close,
};

/* ---- handing connections out --------------------------------------------- */

static void attach(struct fetch_conn *c, struct fetch *f)
{
    c->f = f;
    f->conn = c;
    c->state = C_BUSY;
    if (pact__list_linked(&c->inode))
        pact__list_remove(&c->inode);
    set_ref(c, true);
    if (c->so.idle_timeout_ms) {
        c->so.idle_timeout_ms = 0;
        pact_stream_set_opts(c->s, &c->so);
    }
    pact__fetch_send(f, c->s);
}

static void connected(pact_error *err, pact_stream *s, void *ud)
{
    struct fetch_conn *c = ud;
    struct fetch_origin *o = c->origin;
    pact_abort_unref(c->cabort);
    c->cabort = NULL;
    if (err) {
        struct fetch *f = c->state == C_CONNECTING ? c->f : NULL;
        if (c->state != C_DEAD) {
            c->state = C_DEAD;
            o->open--;
        }
        conn_free(c);
        if (f) {
            f->conn = NULL;
            pact__fetch_conn_failed(f, err);
        }
        kick(o);
        origin_maybe_free(o);
        return;
    }
    c->s = s;
    pact_stream_on(s, &conn_events, c);
    if (c->state == C_DEAD) { /* let go of while connecting */
        set_ref(c, true);
        pact_stream_destroy(s, NULL);
        return;
    }
    struct fetch *f = c->f;
    if (f) {
        attach(c, f);
    } else {
        c->state = C_IDLE; /* no one waits any more: keep it for later */
        release_conn(c);
    }
}

static int conn_new(struct fetch_origin *o, struct fetch *f)
{
    struct fetch_conn *c = calloc(1, sizeof *c);
    if (!c)
        return PACT_ENOMEM;
    c->origin = o;
    c->state = C_CONNECTING;
    c->so.nodelay = true;
    pact__list_init(&c->inode);
    int rc = pact_abort_new(o->svc->loop, &c->cabort);
    if (rc == 0) {
        /* the connection is the pool's, whatever scope asked for it */
        struct pact__ambient outer =
            pact__ambient_enter(o->svc->loop, NULL, NULL);
        rc = transports[o->https].connect(c, connected);
        pact__ambient_leave(o->svc->loop, outer);
    }
    if (rc < 0) {
        pact_abort_unref(c->cabort);
        free(c);
        return rc;
    }
    pact__list_push_back(&o->svc->conns, &c->node);
    o->open++;
    o->records++;
    c->f = f;
    f->conn = c;
    return 0;
}

/* Connections became possible: start one for the first waiters. */
static void kick(struct fetch_origin *o)
{
    struct pact__list *n;
    while (o->open < o->svc->o.max_per_origin &&
           (n = pact__list_first(&o->waiters))) {
        struct fetch *f = pact__list_entry(n, struct fetch, wnode);
        pact__list_remove(n);
        struct pact__list *in = pact__list_first(&o->idle);
        if (in) {
            attach(pact__list_entry(in, struct fetch_conn, inode), f);
            continue;
        }
        int rc = conn_new(o, f);
        if (rc < 0) {
            pact_error *e =
                PACT_ERROR(rc, "fetch: no connection: %s", pact_strerror(rc));
            pact__fetch_conn_failed(f, e ? e : pact__enomem());
            pact_error_unref(e);
        }
    }
}

static struct fetch_origin *origin_get(struct fetch_svc *svc,
                                       const struct fetch *f)
{
    const struct fetch_url *u = &f->url;
    /* plain http ignores the TLS settings: one origin for them all */
    const char *ca_file = u->https ? f->ca_file : NULL;
    bool insecure = u->https && f->insecure;
    struct pact__list *n, *tmp;
    pact__list_each(n, tmp, &svc->origins) {
        struct fetch_origin *o = pact__list_entry(n, struct fetch_origin, node);
        if (o->https == u->https && o->port == u->port &&
            strcmp(o->host, u->host) == 0 && o->insecure == insecure &&
            same_file(o->ca_file, ca_file))
            return o;
    }
    struct fetch_origin *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    if (ca_file && !(o->ca_file = strdup(ca_file))) {
        free(o);
        return NULL;
    }
    o->insecure = insecure;
    o->svc = svc;
    o->https = u->https;
    o->port = u->port;
    memcpy(o->host, u->host, sizeof o->host);
    pact__list_init(&o->idle);
    pact__list_init(&o->waiters);
    pact__list_push_back(&svc->origins, &o->node);
    return o;
}

int pact__fetch_acquire(struct fetch *f)
{
    struct fetch_origin *o = origin_get(f->svc, f);
    if (!o)
        return PACT_ENOMEM;
    struct pact__list *in = pact__list_first(&o->idle);
    if (in && pact__list_empty(&o->waiters)) {
        attach(pact__list_entry(in, struct fetch_conn, inode), f);
        return 0;
    }
    if (o->open < f->svc->o.max_per_origin && pact__list_empty(&o->waiters)) {
        int rc = conn_new(o, f);
        if (rc < 0)
            origin_maybe_free(o);
        return rc;
    }
    pact__list_push_back(&o->waiters, &f->wnode);
    return 0;
}

void pact__fetch_detach(struct fetch *f)
{
    if (pact__list_linked(&f->wnode)) {
        pact__list_remove(&f->wnode);
        /* the origin stays: its connections are counted there */
    }
    struct fetch_conn *c = f->conn;
    f->conn = NULL;
    if (c) {
        c->f = NULL;
        conn_kill(c, false);
    }
}

static void release_conn(struct fetch_conn *c)
{
    struct fetch_origin *o = c->origin;
    c->f = NULL;
    struct pact__list *n = pact__list_first(&o->waiters);
    c->reused = true;
    if (n) {
        struct fetch *w = pact__list_entry(n, struct fetch, wnode);
        pact__list_remove(n);
        attach(c, w);
        return;
    }
    c->state = C_IDLE;
    pact__list_push_front(&o->idle, &c->inode);
    set_ref(c, false);
    c->so.idle_timeout_ms = o->svc->o.idle_timeout_ms;
    pact_stream_set_opts(c->s, &c->so);
}

void pact__fetch_release(struct fetch *f, bool keep)
{
    struct fetch_conn *c = f->conn;
    f->conn = NULL;
    if (!c)
        return;
    if (keep && c->state == C_BUSY)
        release_conn(c);
    else
        conn_kill(c, !keep);
}

bool pact__fetch_conn_reused(const struct fetch *f)
{
    return f->conn && f->conn->reused;
}

/* ---- the pool's calls ---------------------------------------------------- */

int pact_fetch_pool_set(pact_loop *loop, const pact_fetch_pool_opts *opts)
{
    static const char fn[] = "pact_fetch_pool_set";
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(opts, fn);
    struct fetch_svc *svc = pact__fetch_svc(loop);
    if (!svc)
        return PACT_ENOMEM;
    svc->o.max_per_origin = opts->max_per_origin ? opts->max_per_origin : 64;
    svc->o.idle_timeout_ms =
        opts->idle_timeout_ms ? opts->idle_timeout_ms : 4000;
    struct pact__list *n, *tmp;
    pact__list_each(n, tmp, &svc->origins) {
        /* a higher bound lets waiters connect now */
        kick(pact__list_entry(n, struct fetch_origin, node));
    }
    return 0;
}

size_t pact_fetch_pool_close_idle(pact_loop *loop)
{
    if (!loop || pact__misuse_thread(loop, "pact_fetch_pool_close_idle"))
        return 0;
    struct fetch_svc *svc = pact__service_find(loop, PACT__SVC_FETCH);
    return svc ? close_idle(svc) : 0;
}

size_t pact_fetch_pool_idle(pact_loop *loop)
{
    if (!loop || pact__misuse_thread(loop, "pact_fetch_pool_idle"))
        return 0;
    struct fetch_svc *svc = pact__service_find(loop, PACT__SVC_FETCH);
    size_t k = 0;
    struct pact__list *on, *n, *t1, *t2;
    if (svc)
        pact__list_each(on, t1, &svc->origins) {
            struct fetch_origin *o =
                pact__list_entry(on, struct fetch_origin, node);
            pact__list_each(n, t2, &o->idle)
                k++;
        }
    return k;
}
