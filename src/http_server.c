/* The HTTP server's connections (pact/http.h): listening on
 * pact_tcp_listen, reading each connection in events mode into one input
 * buffer, taking heads and bodies off it (http_parse.c), queueing requests
 * in arrival order and writing each response once every earlier one has
 * been written (pipelining), and one lazy deadline per connection: idle
 * between requests, the head's total time (slowloris), the body's.
 *
 * Memory is bounded per connection: a head is at most max_header_bytes, a
 * body max_body, at most max_pipeline requests are read ahead (then the
 * stream is paused), and reading also stops while the output is past the
 * stream's high-water mark (until its drain event). A client that goes
 * (its stream closes) aborts every request it had: what their handlers
 * started is cancelled through the requests' tokens. */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

static void kick(struct http_conn *c);

/* ---- the deadline -------------------------------------------------------- */

static void on_timer(pact_error *err, void *ud);

static void arm(struct http_conn *c, uint64_t ms)
{
    pact_loop *loop = c->srv->loop;
    /* the timer is the connection's: no scope cancels it */
    struct pact__ambient outer = pact__ambient_enter(loop, NULL, NULL);
    pact_timer_opts o = {.delay_ms = (int64_t)ms, .unref = true};
    c->timer_on = pact_timer_start(loop, &o, on_timer, c, &c->timer) == 0;
    pact__ambient_leave(loop, outer);
}

/* Set the deadline: @p kind, @p ms from now. Activity stores a time; the
 * timer is re-armed only when it fires early or is due too late. */
static void deadline(struct http_conn *c, int kind, uint64_t ms)
{
    pact_loop *loop = c->srv->loop;
    c->dkind = kind;
    if (kind == D_NONE)
        return;
    uint64_t now = pact_loop_now(loop);
    c->due = now + ms;
    if (c->timer_on && c->armed > c->due) {
        pact_clear(loop, c->timer);
        c->timer_on = false;
    }
    if (!c->timer_on) {
        c->armed = c->due;
        arm(c, ms);
    }
}

static int fail(struct http_conn *c, pact_http_req *r, int status);

static void on_timer(pact_error *err, void *ud)
{
    struct http_conn *c = ud;
    c->timer_on = false;
    if (err || c->dead || c->dkind == D_NONE)
        return;
    uint64_t now = pact_loop_now(c->srv->loop);
    if (now < c->due) {
        c->armed = c->due;
        arm(c, c->due - now);
        return;
    }
    int kind = c->dkind;
    c->dkind = D_NONE;
    if (kind == D_IDLE) {
        pact_stream_close(c->s);
        return;
    }
    /* the head or the body took too long: 408, then close */
    fail(c, kind == D_BODY ? c->cur : NULL, 408);
    kick(c);
}

/* ---- the queue ----------------------------------------------------------- */

static void enqueue(struct http_conn *c, pact_http_req *r)
{
    pact__list_push_back(&c->reqs, &r->node);
    c->nreqs++;
}

/* The reader's part of a streamed body: @p c stops reading it. */
static void body_release(struct http_conn *c)
{
    pact_http_req *r = c->cur;
    c->cur = NULL;
    c->in_body = false;
    r->rconn = NULL;
    pact__http_body_wake(r);
    pact__http_req_unref(r);
}

/* A streamed body failed (@p status: 413, 408, 400 cut): its read fails;
 * the server answers with @p status if the handler has not answered, and
 * the connection closes (after the response). */
static int body_fail(struct http_conn *c, pact_http_req *r, int status)
{
    r->berr = status == 413   ? PACT_EMSGSIZE
              : status == 408 ? PACT_ETIMEDOUT
                              : PACT_ECONNRESET;
    c->broken = c->closing = true;
    c->ilen = 0;
    r->keep_alive = false;
    if (!r->answered) {
        r->forced = r->answered = true;
        r->err_status = status;
        r->expect = false;
        if (pact__http_error_out(c->srv, r, status) != 0)
            pact_stream_destroy(c->s, NULL);
    }
    body_release(c);
    return -1;
}

/* A request the server answers itself (400, 408, 413, 431...): the last
 * one read on this connection, which closes once it is written. */
static int fail(struct http_conn *c, pact_http_req *r, int status)
{
    if (r && r->bstream && r->rconn == c)
        return body_fail(c, r, status);
    if (!r) {
        r = pact__http_req_new(c);
        if (!r) {
            pact_stream_destroy(c->s, NULL);
            return -1;
        }
        enqueue(c, r);
    }
    c->broken = true;
    c->in_body = false;
    c->cur = NULL;
    c->ilen = 0;
    r->err_status = status;
    r->complete = r->answered = true;
    r->expect = false;
    if (pact__http_error_out(c->srv, r, status) != 0)
        pact_stream_destroy(c->s, NULL);
    return -1;
}

static void send_continue(struct http_conn *c, pact_http_req *r)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    r->expect = false;
    pact_stream_write(c->s, cont, sizeof cont - 1);
}

/* Take the written @p r off the queue; true if the connection stays open
 * for the ones after it. */
static bool retire(struct http_conn *c, pact_http_req *r)
{
    pact__list_remove(&r->node);
    c->nreqs--;
    bool keep = r->keep_alive;
    r->conn = NULL;
    pact__http_req_unref(r);
    return keep;
}

/* Nothing more is read or written; the close event fails what is left. */
static void shut(struct http_conn *c)
{
    c->closing = true;
    c->dead = true;
    pact_stream_close(c->s);
}

/* Write the answered responses at the head of the queue, in order. */
static bool flush(struct http_conn *c)
{
    bool popped = false;
    while (!pact__list_empty(&c->reqs) && !c->dead) {
        pact_http_req *r = pact__list_entry(c->reqs.next, pact_http_req, node);
        if (r->streaming) {
            int st = pact__http_stream_flush(c, r);
            if (st == 0)
                break; /* more of it to come; the ones after it wait */
            if (st < 0) {
                shut(c);
                return popped;
            }
            popped = true;
            if (!retire(c, r)) {
                shut(c);
                return popped;
            }
            continue;
        }
        if (!r->out) {
            if (r->expect && !r->complete)
                send_continue(c, r);
            break;
        }
        int rc = pact_stream_write(c->s, r->out, r->olen);
        popped = true;
        bool keep = retire(c, r);
        if (rc == 0)
            c->full = true;
        if (rc < 0 || !keep) {
            shut(c);
            return popped;
        }
    }
    return popped;
}

/* ---- reading ------------------------------------------------------------- */

static void complete(struct http_conn *c, pact_http_req *r)
{
    r->complete = true;
    if (!r->keep_alive || c->parser.upgrade)
        c->closing = true; /* the last request read on this connection */
    deadline(c, D_NONE, 0);
    if (r->bstream) {
        body_release(c); /* its handler runs already */
        return;
    }
    c->cur = NULL;
    c->in_body = false;
    pact__http_dispatch(r);
}

/* The room @p r's streamed body has in the server before the parser
 * stops; SIZE_MAX for a body not streamed, or dropped. */
static size_t room(const pact_http_req *r)
{
    if (!r->bstream || pact__http_body_dropping(r))
        return SIZE_MAX;
    return r->blen < HTTP_RMARK ? HTTP_RMARK - r->blen : 0;
}

/* A LF without its CR in @p len bytes of a head. */
static bool bare_lf(const char *p, size_t len)
{
    const char *e = p + len, *q = p;
    while ((q = memchr(q, '\n', (size_t)(e - q))) != NULL) {
        if (q == p || q[-1] != '\r')
            return true;
        q++;
    }
    return false;
}

/* Abort the tokens of the requests not answered yet: the client went. */
static void abort_unanswered(struct http_conn *c)
{
    pact_error *why = NULL;
    struct pact__list *n, *tmp;
    pact__list_each(n, tmp, &c->reqs) {
        pact_http_req *r = pact__list_entry(n, pact_http_req, node);
        if ((r->answered && !r->streaming) || pact_abort_aborted(r->abort))
            continue; /* a streamed response in the queue is not written */
        if (!why)
            why = PACT_ERROR(PACT_ECONNRESET, "the client went away");
        pact_abort_abort(r->abort, why);
    }
    if (why)
        pact_error_unref(why);
}

/* Take what heads and bodies the input holds. */
static void parse(struct http_conn *c)
{
    const pact_http_opts *o = &c->srv->o;
    size_t pos = 0;
    /* closing (the server's close, a last request): the body being read
     * is still read to its end, nothing after it */
    while (!c->broken && !c->dead && pos < c->ilen &&
           (!c->closing || c->in_body)) {
        char *in = c->in + pos;
        size_t n = c->ilen - pos;
        if (c->in_body) {
            pact_http_req *r = c->cur;
            size_t used = 0, max = room(r);
            if (!max)
                break; /* its handler has not read: wait for it */
            int st = pact__http_body(c, in, n < max ? n : max, &used);
            pos += used;
            if (st) {
                fail(c, r, st);
                break;
            }
            if (c->msg_done) {
                complete(c, r);
            } else if (r->bstream) {
                if (used && pact__http_body_dropping(r)) /* no reads now */
                    deadline(c, D_BODY, o->body_timeout_ms);
                pact__http_body_wake(r);
            }
            continue;
        }
        if (c->nreqs >= o->max_pipeline)
            break;
        if (n >= 2 && in[0] == '\r' && in[1] == '\n') {
            pos += 2; /* empty lines before a request line are ignored */
            continue;
        }
        if (c->dkind != D_HEAD)
            deadline(c, D_HEAD, o->header_timeout_ms);
        char *end = memmem(in, n, "\r\n\r\n", 4);
        size_t hlen = end ? (size_t)(end - in) + 4 : n;
        if (bare_lf(in, hlen)) {
            fail(c, NULL, 400); /* lines end with CRLF (RFC 9112 2.2) */
            break;
        }
        if (hlen > o->max_header_bytes) {
            fail(c, NULL, 431);
            break;
        }
        if (!end)
            break;
        pact_http_req *r = NULL;
        int st = pact__http_head(c, in, hlen, &r);
        if (r)
            enqueue(c, r);
        if (st) {
            fail(c, r, st);
            break;
        }
        pos += hlen;
        if (c->msg_done) {
            complete(c, r);
        } else {
            c->in_body = true;
            deadline(c, D_BODY, o->body_timeout_ms);
            if (r->expect && c->reqs.next == &r->node)
                send_continue(c, r);
            if (pact__http_route_streams(r)) {
                r->bstream = true;
                r->rconn = c;
                r->refs++; /* the reader's part, until the body is over */
                pact__http_dispatch(r);
            }
        }
    }
    if (c->broken || (c->closing && !c->in_body))
        pos = c->ilen; /* nothing more is read on this connection */
    memmove(c->in, c->in + pos, c->ilen - pos);
    c->ilen -= pos;
}

static void reading(struct http_conn *c)
{
    if (c->dead)
        return;
    bool want = c->nreqs < c->srv->o.max_pipeline && !c->full &&
                !(c->in_body && c->cur && room(c->cur) == 0);
    if (want && c->paused) {
        c->paused = false;
        pact_stream_resume(c->s);
    } else if (!want && !c->paused) {
        c->paused = true;
        pact_stream_pause(c->s);
    }
}

/* Parse and write until neither makes progress; re-entry (a handler that
 * responds at once) asks for another round instead. */
static void kick(struct http_conn *c)
{
    if (c->kicking) {
        c->again = true;
        return;
    }
    c->kicking = true;
    do {
        c->again = false;
        parse(c);
        if (flush(c) && c->ilen)
            c->again = true;
    } while (c->again && !c->dead);
    c->kicking = false;
    if (c->dead)
        return;
    if (pact__list_empty(&c->reqs)) {
        if (c->closing || c->eof || c->srv->closing) {
            c->dead = true;
            pact_stream_close(c->s);
            return;
        }
        if (!c->ilen && !c->in_body && c->dkind != D_IDLE)
            deadline(c, D_IDLE, c->srv->o.idle_timeout_ms);
    }
    reading(c);
}

void pact__http_answered(pact_http_req *r)
{
    if (pact__http_body_dropping(r)) {
        r->blen = 0; /* what it did not read is dropped */
        pact__http_body_wake(r);
    }
    if (r->conn)
        kick(r->conn);
    else if (r->rconn)
        kick(r->rconn);
}

void pact__http_body_resume(struct http_conn *c)
{
    if (c->dead)
        return;
    if (c->in_body)
        deadline(c, D_BODY, c->srv->o.body_timeout_ms);
    kick(c);
}

static void on_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)s;
    struct http_conn *c = ud;
    if (c->broken || c->dead || (c->closing && !c->in_body))
        return; /* read only to see the peer go */
    if (c->ilen + len > c->icap) {
        size_t cap = c->icap ? c->icap : 4096;
        while (cap < c->ilen + len)
            cap *= 2;
        char *in = realloc(c->in, cap);
        if (!in) {
            pact_stream_destroy(c->s, NULL);
            return;
        }
        c->in = in;
        c->icap = cap;
    }
    memcpy(c->in + c->ilen, buf, len);
    c->ilen += len;
    kick(c);
}

/* The client went while its streamed body was read: the read fails once
 * with PACT_ECONNRESET and the token is aborted (whatever the response). */
static void body_gone(struct http_conn *c)
{
    pact_http_req *r = c->cur;
    if (!r->berr)
        r->berr = PACT_ECONNRESET;
    /* a complete response is not aborted (as abort_unanswered) */
    if (!pact__http_body_dropping(r) && !pact_abort_aborted(r->abort)) {
        pact_error *why = PACT_ERROR(PACT_ECONNRESET, "the client went away");
        pact_abort_abort(r->abort, why);
        pact_error_unref(why);
    }
    c->ilen = 0;
    body_release(c);
}

static void on_end(pact_stream *s, void *ud)
{
    (void)s;
    struct http_conn *c = ud;
    c->eof = true;
    c->closing = true;
    if (c->in_body && c->cur && c->cur->bstream)
        body_gone(c);
    else if (c->in_body && c->cur)
        fail(c, c->cur, 400); /* the body was cut short */
    c->ilen = 0;
    /* as Node's server (httpAllowHalfOpen false): a client that ended its
     * side has gone; what it asked and is not answered is aborted, and the
     * connection closes once the answers it has are written */
    abort_unanswered(c);
    kick(c);
}

static void on_drain(pact_stream *s, void *ud)
{
    (void)s;
    struct http_conn *c = ud;
    c->full = false;
    kick(c);
}

static void maybe_free(pact_http_server *srv);

/* The stream is closed: its requests lose their connection; their handlers
 * are told through their tokens, and answer into nothing. */
static void on_close(pact_stream *s, void *ud)
{
    (void)s;
    struct http_conn *c = ud;
    pact_http_server *srv = c->srv;
    c->dead = true;
    if (c->timer_on)
        pact_clear(srv->loop, c->timer);
    abort_unanswered(c);
    if (c->in_body && c->cur && c->cur->bstream)
        body_gone(c);
    /* every request lets go of the connection before any write callback
     * runs (one may answer another request) */
    struct pact__list gone, *n, *tmp;
    pact__list_init(&gone);
    pact__list_each(n, tmp, &c->reqs) {
        pact_http_req *r = pact__list_entry(n, pact_http_req, node);
        pact__list_remove(&r->node);
        pact__list_push_back(&gone, &r->node);
        r->conn = NULL;
    }
    while ((n = pact__list_first(&gone))) {
        pact_http_req *r = pact__list_entry(n, pact_http_req, node);
        pact__list_remove(n);
        pact__http_stream_fail(r);
        pact__http_req_unref(r);
    }
    pact__list_remove(&c->node);
    srv->nconns--;
    free(c->in);
    free(c);
    maybe_free(srv);
}

static void on_conn(pact_error *err, pact_stream *s, void *ud)
{
    pact_http_server *srv = ud;
    if (err)
        return; /* cancelled: pact_http_server_close frees the server */
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        pact_stream_destroy(s, NULL);
        return;
    }
    c->srv = srv;
    c->s = s;
    pact__list_init(&c->reqs);
    pact__http_parser_init(c);
    pact_stream_events ev = {
        .data = on_data, .end = on_end, .drain = on_drain, .close = on_close};
    pact__list_push_back(&srv->conns, &c->node);
    srv->nconns++;
    pact_stream_on(s, &ev, c);
    deadline(c, D_IDLE, srv->o.idle_timeout_ms);
}

/* ---- the server ---------------------------------------------------------- */

int pact_http_listen(pact_loop *loop, const char *host, int port,
                     const pact_http_opts *opts, pact_http_server **out)
{
    if (!loop || !out)
        return PACT_EINVAL;
    if (!pact__http_svc(loop)) /* the quarantine, made before it is needed */
        return PACT_ENOMEM;
    pact_http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return PACT_ENOMEM;
    srv->loop = loop;
    if (opts)
        srv->o = *opts;
    pact_http_opts *o = &srv->o;
    o->max_header_bytes = o->max_header_bytes ? o->max_header_bytes : 16384;
    o->max_headers = o->max_headers ? o->max_headers : 100;
    o->max_body = o->max_body ? o->max_body : 1 << 20;
    o->header_timeout_ms = o->header_timeout_ms ? o->header_timeout_ms : 10000;
    o->body_timeout_ms = o->body_timeout_ms ? o->body_timeout_ms : 60000;
    o->idle_timeout_ms = o->idle_timeout_ms ? o->idle_timeout_ms : 5000;
    o->send_timeout_ms = o->send_timeout_ms ? o->send_timeout_ms : 60000;
    o->max_pipeline = o->max_pipeline ? o->max_pipeline : 16;
    srv->tail = &srv->routes;
    pact__list_init(&srv->conns);
    pact_stream_opts so = {.nodelay = true,
                           .allow_half_open = true,
                           .write_timeout_ms = o->send_timeout_ms};
    pact_tcp_listen_opts lo = {
        .stream = &so, .max_connections = o->max_connections, .tls = o->tls};
    int rc = pact_tcp_listen(loop, host, port, &lo, on_conn, srv, &srv->tcp);
    if (rc < 0) {
        free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

int pact_http_server_port(const pact_http_server *srv)
{
    return srv ? pact_tcp_server_port(srv->tcp) : 0;
}

size_t pact_http_server_connections(const pact_http_server *srv)
{
    return srv ? srv->nconns : 0;
}

static void maybe_free(pact_http_server *srv)
{
    if (!srv->closing || !srv->tcp_closed || srv->nconns)
        return;
    while (srv->routes) {
        struct http_route *rt = srv->routes;
        srv->routes = rt->next;
        free(rt->method);
        free(rt->pattern);
        free(rt);
    }
    pact_fn cb = srv->close_cb;
    void *ud = srv->close_ud;
    free(srv);
    if (cb)
        cb(ud);
}

static void on_tcp_closed(void *ud)
{
    pact_http_server *srv = ud;
    srv->tcp_closed = true;
    maybe_free(srv);
}

int pact_http_server_close(pact_http_server *srv, pact_fn cb, void *ud)
{
    if (!srv || srv->closing)
        return PACT_EINVAL;
    int rc = pact_tcp_server_close(srv->tcp, on_tcp_closed, srv);
    if (rc < 0)
        return rc;
    srv->closing = true;
    srv->close_cb = cb;
    srv->close_ud = ud;
    struct pact__list *n, *tmp;
    pact__list_each(n, tmp, &srv->conns) {
        struct http_conn *c = pact__list_entry(n, struct http_conn, node);
        c->closing = true;
        if (!c->dead && pact__list_empty(&c->reqs)) {
            c->dead = true;
            pact_stream_close(c->s);
        }
    }
    return 0;
}

/* ---- a shutdown with a deadline ------------------------------------------ */

struct shutdown {
    pact_http_server *srv; /* NULL once freed */
    pact_loop *loop;
    pact_handle timer;
    bool timer_on, forced;
    pact_cb cb;
    void *ud;
};

static void shutdown_closed(void *ud)
{
    struct shutdown *sd = ud;
    sd->srv = NULL;
    if (sd->timer_on)
        pact_clear(sd->loop, sd->timer);
    pact_error *err =
        sd->forced ? PACT_ERROR(PACT_ETIMEDOUT, "connections were still open "
                                                "at the shutdown's deadline")
                   : NULL;
    pact_cb cb = sd->cb;
    void *cud = sd->ud;
    free(sd);
    if (cb)
        cb(err, cud);
    pact_error_unref(err);
}

static void shutdown_deadline(pact_error *err, void *ud)
{
    struct shutdown *sd = ud;
    sd->timer_on = false;
    if (err || !sd->srv)
        return; /* cancelled (close_all): the connections close anyway */
    pact_error *why = PACT_ERROR(PACT_ETIMEDOUT, "the server's shutdown "
                                                 "deadline passed");
    struct pact__list *n, *tmp;
    pact__list_each(n, tmp, &sd->srv->conns) {
        struct http_conn *c = pact__list_entry(n, struct http_conn, node);
        sd->forced = true;
        if (!c->dead) {
            c->dead = true;
            pact_stream_destroy(c->s, why);
        }
    }
    pact_error_unref(why);
}

int pact_http_server_shutdown(pact_http_server *srv, uint64_t deadline_ms,
                              pact_cb cb, void *ud)
{
    if (!srv || srv->closing)
        return PACT_EINVAL;
    PACT_CHECK_THREAD(srv->loop, "pact_http_server_shutdown");
    struct shutdown *sd = calloc(1, sizeof *sd);
    if (!sd)
        return PACT_ENOMEM;
    sd->srv = srv;
    sd->loop = srv->loop;
    sd->cb = cb;
    sd->ud = ud;
    /* the deadline is the server's own: no scope cancels it */
    struct pact__ambient outer = pact__ambient_enter(srv->loop, NULL, NULL);
    int rc = pact_timer_start(
        srv->loop, &(pact_timer_opts){.delay_ms = (int64_t)deadline_ms},
        shutdown_deadline, sd, &sd->timer);
    pact__ambient_leave(srv->loop, outer);
    if (rc < 0) {
        free(sd);
        return rc;
    }
    sd->timer_on = true;
    rc = pact_http_server_close(srv, shutdown_closed, sd);
    if (rc < 0) {
        pact_clear(srv->loop, sd->timer);
        free(sd);
    }
    return rc;
}
