/* A connected stream (pact/stream.h): its two raw events, reading (one recv
 * per readable event), writing (one send at once when nothing is queued,
 * sendmsg of the queued evbuffer when the socket is writable again), the
 * back-pressure both ways, and its end (stream_timer.c has the timeouts;
 * a TLS stream's socket calls go through tls_io.c).
 * tcp_internal.h has the design.
 *
 * A stream's memory lives until it is dead (socket closed), its final
 * events were delivered, and the program let go of it (a close callback
 * set, or pact_stream_close/destroy called): a task that only reads never
 * finds its stream freed under it. */
#include <event2/buffer.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "tls_internal.h"

#define DEFAULT_HWM 65536

pact_error *pact__sock_error(int rc, const char *what)
{
    pact_error *e = PACT_ERROR(rc, "%s: %s", what, pact_strerror(rc));
    return e ? e : pact__enomem();
}

/* ---- events on and off (counted as the loop's own) ----------------------- */

void pact__stream_ev_on(pact_stream *s, struct event *ev, bool *on,
                        const struct timeval *tv)
{
    if (*on && !tv)
        return;
    if (event_add(ev, tv) < 0)
        return; /* epoll_ctl on a live socket: nothing to do about it */
    if (!*on)
        pact__own_event_added(s->loop);
    *on = true;
}

void pact__stream_ev_off(pact_stream *s, struct event *ev, bool *on)
{
    if (!*on)
        return;
    event_del(ev);
    pact__own_event_removed(s->loop);
    *on = false;
}

/* ---- the end of a stream ------------------------------------------------- */

/* Close the socket and stop everything; the final events are not sent. */
static void kill_io(pact_stream *s, pact_error *why)
{
    s->flags |= S_DEAD;
    pact__stream_ev_off(s, s->rev, &s->rd_on);
    pact__stream_ev_off(s, s->wev, &s->wr_on);
    pact__stream_ev_off(s, s->tev, &s->tm_on);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    evbuffer_drain(s->out, evbuffer_get_length(s->out));
    pact__stream_drop_files(s);
    pact__stream_fail_reqs(s, why);
    if (s->tls)
        pact__tls_dead(s, why);
    if (s->server) {
        pact__server_stream_gone(s->server);
        s->server = NULL;
    }
}

static void stream_free(pact_stream *s)
{
    pact__list_remove(&s->node);
    if (pact__list_linked(&s->fin.node))
        pact__list_remove(&s->fin.node);
    event_free(s->rev);
    event_free(s->wev);
    event_free(s->tev);
    if (s->tls)
        pact__tls_free(s);
    evbuffer_free(s->in);
    evbuffer_free(s->out);
    pact_error_unref(s->err);
    free(s);
}

/* Freed once dead, told, let go of, and off the stack. */
void pact__stream_maybe_free(pact_stream *s)
{
    if ((s->flags & S_FREE_LATER) && !s->in_cb)
        stream_free(s);
}

static void emit_final(pact_stream *s, pact_error *err)
{
    s->in_cb++;
    if (err && s->ev.error) {
        pact__label_refine(s->loop, PACT_STEP_TICK, (void (*)(void))s->ev.error,
                           s->ud);
        s->ev.error(s, err, s->ud);
    }
    if (s->ev.close) {
        pact__label_refine(s->loop, PACT_STEP_TICK, (void (*)(void))s->ev.close,
                           s->ud);
        s->ev.close(s, s->ud);
    }
    s->in_cb--;
    s->flags |= S_TOLD;
    if (s->flags & S_LET_GO)
        s->flags |= S_FREE_LATER;
    pact__stream_maybe_free(s);
}

static void fin_run(struct due *d)
{
    pact_stream *s = pact__list_entry(d, pact_stream, fin);
    pact_error *err = s->err;
    s->err = NULL;
    emit_final(s, err);
    pact_error_unref(err);
}

static void fin_drop(struct due *d)
{
    pact_stream *s = pact__list_entry(d, pact_stream, fin);
    s->flags |= S_TOLD | S_LET_GO | S_FREE_LATER;
    pact__stream_maybe_free(s);
}

void pact__stream_kill(pact_stream *s, pact_error *err)
{
    if (s->flags & S_DEAD) {
        pact_error_unref(err);
        return;
    }
    kill_io(s, err);
    pact_error *e;
    if (pact__op_end(&s->op, &e)) {
        pact_error_unref(e);
        s->err = err;
        pact__tcp_due(s->svc, &s->fin);
    } else {
        pact_error_unref(err);
    }
}

/* The program lets go of @p s. */
void pact__stream_let_go(pact_stream *s)
{
    s->flags |= S_LET_GO;
    if (s->flags & S_TOLD)
        s->flags |= S_FREE_LATER;
    pact__stream_maybe_free(s);
}

static bool op_stop(struct pact__op *op)
{
    pact_stream *s = pact__list_entry(op, pact_stream, op);
    kill_io(s, op->err);
    return true;
}

static void op_fail(struct pact__op *op, pact_error *err)
{
    emit_final(pact__list_entry(op, pact_stream, op), err);
}

static void op_drop(struct pact__op *op)
{
    pact_stream *s = pact__list_entry(op, pact_stream, op);
    s->flags |= S_TOLD | S_LET_GO | S_FREE_LATER;
    pact__stream_maybe_free(s);
}

/* The peer's address as text into @p name (for print_pending: a system
 * call each time, none per connection). */
static void peer_name(const pact_stream *s, char *name, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    snprintf(name, len, "?");
    if (s->fd < 0 || getpeername(s->fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    char host[48] = "";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(name, len, "%s:%d", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(name, len, "[%s]:%d", host, ntohs(a->sin6_port));
    } else {
        snprintf(name, len, "unix socket");
    }
}

static void op_describe(const struct pact__op *op, char *buf, size_t len)
{
    const pact_stream *s = pact__list_entry(op, const pact_stream, op);
    char name[64];
    peer_name(s, name, sizeof name);
    snprintf(buf, len, "stream fd %d, peer %s, %zu bytes to write", s->fd, name,
             evbuffer_get_length(s->out));
}

static const struct pact__op_type stream_type = {
    .what = "stream",
    .stop = op_stop,
    .fail = op_fail,
    .drop = op_drop,
    .describe = op_describe,
};

void pact__stream_release(pact_stream *s)
{
    pact__tls_forget(s); /* its owner is freed with the loop too */
    if (!(s->flags & S_DEAD))
        kill_io(s, NULL);
    stream_free(s);
}

/* ---- reading ------------------------------------------------------------- */

bool pact__stream_wants_read(const pact_stream *s)
{
    if (s->tls && pact__tls_handshaking(s))
        return !(s->flags & (S_DEAD | S_EOF));
    if (s->flags & (S_DEAD | S_EOF | S_PAUSED | S_CLOSING) ||
        !(s->flags & S_STARTED))
        return false;
    return s->ev.data || s->rreq || pact__stream_in_len(s) < s->read_hw;
}

void pact__stream_update(pact_stream *s)
{
    if (pact__stream_wants_read(s)) {
        pact__stream_ev_on(s, s->rev, &s->rd_on, NULL);
        /* input that TLS decrypted already: no readable event would come */
        if (s->tls && s->rd_on && pact__tls_more(s))
            event_active(s->rev, EV_READ, 0);
    } else {
        pact__stream_ev_off(s, s->rev, &s->rd_on);
    }
}

/* Both sides done: the stream closes (its input consumed). */
static void maybe_done(pact_stream *s)
{
    if ((s->flags & (S_EOF | S_SHUT | S_DEAD)) == (S_EOF | S_SHUT) &&
        !s->rreq && !pact__stream_in_len(s))
        pact__stream_kill(s, NULL);
}

static void do_end(pact_stream *s);

void pact__stream_eof(pact_stream *s)
{
    s->flags |= S_EOF;
    pact__stream_update(s);
    pact__read_try(s);
    if (s->ev.end && !(s->flags & S_DEAD))
        s->ev.end(s, s->ud);
    if (!s->o.allow_half_open && !(s->flags & (S_ENDING | S_DEAD)))
        do_end(s);
    maybe_done(s);
}

/* Bytes read: handed to the data event (events mode), straight to a
 * read_some request (no input buffered), or added to the input for the
 * requests. */
void pact__stream_got(pact_stream *s, const void *buf, size_t n)
{
    if (s->ev.data) {
        s->ev.data(s, buf, n, s->ud);
        return;
    }
    if (!pact__read_direct(s, buf, n)) {
        if (evbuffer_add(s->in, buf, n) < 0) {
            pact__stream_kill(s, pact__enomem());
            return;
        }
        s->in_some = true;
        pact__read_try(s);
    }
    pact__stream_update(s);
}

/* One recv into the loop's buffer (TLS: tls_io.c decrypts first). */
static void do_read(pact_stream *s)
{
    if (s->tls) {
        pact__tls_read(s);
        return;
    }
    unsigned char *buf = s->svc->rbuf;
    errno = 0;
    ssize_t n = recv(s->fd, buf, PACT__RBUF, 0);
    if (n > 0) {
        if (pact__stream_timeouts(s))
            s->last_rd = pact__now_ms();
        pact__stream_got(s, buf, (size_t)n);
    } else if (n == 0) {
        pact__stream_eof(s);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        pact__stream_kill(s, pact__sock_error(pact__sys_err(), "recv"));
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_stream *s = arg;
    PACT__OWN_CALLBACK(s, do_read(s));
}

/* ---- writing ------------------------------------------------------------- */

/* The end of our side: TLS's close_notify first (S_SHUT waits until it is
 * sent), then the TCP end. */
static void shut(pact_stream *s)
{
    if (s->flags & S_SHUT)
        return;
    if (s->tls && !pact__tls_handshaking(s) && !(s->flags & S_DEAD)) {
        int rc = pact__tls_shut(s);
        if (rc < 0) {
            pact__stream_kill(s, pact__sock_error(rc, "send"));
            return;
        }
        if (rc == 0) {
            pact__stream_ev_on(s, s->wev, &s->wr_on, NULL);
            return;
        }
    }
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_WR);
    s->flags |= S_SHUT;
}

/* Hand the queued output to the kernel. @return 0 or the send's error. */
static int flush(pact_stream *s)
{
    if (s->tls) { /* the records made before go first */
        int rc = pact__tls_flush(s);
        if (rc <= 0)
            return rc;
        if (pact__tls_handshaking(s)) { /* nothing more until it is done */
            pact__stream_ev_off(s, s->wev, &s->wr_on);
            return 0;
        }
    }
    for (;;) {
        size_t lim = pact__stream_mem_before_file(s);
        if (!lim || !evbuffer_get_length(s->out)) {
            if (lim) /* no file part, nothing in memory */
                return 0;
            int rc = pact__stream_flush_file(s);
            if (rc <= 0)
                return rc;
            continue;
        }
        struct evbuffer_iovec v[16];
        int nv = evbuffer_peek(s->out, -1, NULL, v, 16);
        size_t iovs = (size_t)(nv > 16 ? 16 : nv), sum = 0;
        for (size_t i = 0; i < iovs; i++) { /* not past a file part */
            if (sum + v[i].iov_len >= lim) {
                v[i].iov_len = lim - sum;
                iovs = i + 1;
                break;
            }
            sum += v[i].iov_len;
        }
        struct msghdr m = {.msg_iov = (struct iovec *)v, .msg_iovlen = iovs};
        ssize_t n;
        if (s->tls) {
            n = pact__tls_sendv(s, (struct iovec *)v, iovs);
            if (n <= 0)
                return (int)n; /* 0: the records wait for the socket */
        } else {
            n = sendmsg(s->fd, &m, MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return pact__sys_err();
        }
        evbuffer_drain(s->out, (size_t)n);
        s->sent += (uint64_t)n;
        if (pact__stream_timeouts(s))
            s->last_wr = pact__now_ms();
    }
    return 0;
}

/* The output is empty: what waited for that. */
static void flushed(pact_stream *s)
{
    pact__stream_ev_off(s, s->wev, &s->wr_on);
    if (s->flags & S_ENDING)
        shut(s);
    pact__write_reqs_done(s);
    if (s->flags & S_CLOSING) {
        if (!pact__out_pending(s)) /* else TLS's close_notify is on its way */
            pact__stream_kill(s, NULL);
        return;
    }
    maybe_done(s);
    if ((s->flags & (S_NEED_DRAIN | S_DEAD)) == S_NEED_DRAIN) {
        s->flags &= ~(unsigned)S_NEED_DRAIN;
        if (s->ev.drain)
            s->ev.drain(s, s->ud);
    }
}

static void do_write(pact_stream *s)
{
    errno = 0;
    int rc = flush(s);
    if (rc < 0) {
        pact__stream_kill(s, pact__sock_error(rc, "send"));
        return;
    }
    if (!pact__out_pending(s))
        flushed(s);
    else
        pact__write_reqs_done(s);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_stream *s = arg;
    PACT__OWN_CALLBACK(s, do_write(s));
}

int pact__stream_write(pact_stream *s, const void *data, size_t len)
{
    return pact__stream_write_ref(s, data, len, NULL, NULL);
}

int pact__stream_write_ref(pact_stream *s, const void *data, size_t len,
                           pact_stream_release_fn release, void *ud)
{
    if (s->flags & S_DEAD)
        return s->err ? pact_error_code(s->err) : PACT_EPIPE;
    if (s->flags & (S_ENDING | S_CLOSING))
        return PACT_EPIPE;
    size_t off = 0;
    if (!pact__out_pending(s) && len) {
        ssize_t n;
        if (s->tls) {
            struct iovec v = {(void *)data, len};
            n = pact__tls_sendv(s, &v, 1);
            errno = n < 0 ? -(int)n : 0;
        } else {
            n = send(s->fd, data, len, MSG_NOSIGNAL);
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            int rc = pact__sys_err();
            pact__stream_kill(s, pact__sock_error(rc, "send"));
            return rc;
        }
        off = n > 0 ? (size_t)n : 0;
        s->sent += off;
        if (off && pact__stream_timeouts(s))
            s->last_wr = pact__now_ms(); /* activity, for the idle timeout */
    }
    if (off < len) {
        const char *rest = (const char *)data + off;
        if ((release
                 ? evbuffer_add_reference(s->out, rest, len - off, release, ud)
                 : evbuffer_add(s->out, rest, len - off)) < 0) {
            s->queued += off; /* what was sent: queued - sent stays exact */
            return PACT_ENOMEM;
        }
        if (pact__stream_timeouts(s) && !s->wr_on)
            s->last_wr = pact__now_ms();
        if (!pact__tls_handshaking(s)) /* sent once it is done */
            pact__stream_ev_on(s, s->wev, &s->wr_on, NULL);
    } else if (release) { /* all taken by the kernel: nothing to keep */
        release(data, len, ud);
    }
    s->queued += len;
    if (pact__out_pending(s) &&
        evbuffer_get_length(s->out) >= s->o.high_water) {
        s->flags |= S_NEED_DRAIN;
        return 0;
    }
    return 1;
}

/* ---- making one ---------------------------------------------------------- */

static int apply_opts(pact_stream *s, const pact_stream_opts *o)
{
    pact_abort *abort = s->o.abort;
    s->o = *o;
    s->o.abort = abort;
    if (!s->o.high_water)
        s->o.high_water = DEFAULT_HWM;
    if (!s->o.read_high_water)
        s->o.read_high_water = DEFAULT_HWM;
    s->read_hw = s->o.read_high_water;
    s->timeouts =
        s->o.idle_timeout_ms || s->o.read_timeout_ms || s->o.write_timeout_ms;
    int rc = 0;
    /* a new socket has both off: no call unless one changes */
    int nd = o->nodelay, ka = o->keepalive_s > 0;
    if (s->tcp && nd != s->nodelay &&
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &nd, sizeof nd) < 0)
        rc = pact__sys_err();
    if (!rc && s->tcp && (ka || s->keepalive) &&
        setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &ka, sizeof ka) < 0)
        rc = pact__sys_err();
    if (!rc && s->tcp && ka &&
        setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPIDLE, &o->keepalive_s,
                   sizeof o->keepalive_s) < 0)
        rc = pact__sys_err();
    if (!rc) {
        s->nodelay = nd;
        s->keepalive = ka;
    }
    if (pact__stream_timeouts(s)) {
        uint64_t now = pact__now_ms();
        s->last_rd = s->last_wr = now;
        pact__stream_arm_timer(s, now);
    }
    return rc;
}

pact_stream *pact__stream_new(struct tcp_svc *svc, int fd, int family,
                              const pact_stream_opts *opts, pact_abort *abort)
{
    /* on a cache line of its own: its hot fields then span the fewest */
    size_t size = (sizeof(pact_stream) + 63) / 64 * 64;
    pact_stream *s = aligned_alloc(64, size);
    if (!s)
        return NULL;
    memset(s, 0, size);
    struct event_base *b = svc->loop->base;
    s->svc = svc;
    s->loop = svc->loop;
    s->fd = fd;
    s->tcp = family != AF_UNIX;
    pact__list_init(&s->wreq);
    pact__list_init(&s->files);
    pact__list_init(&s->fin.node);
    s->fin.run = fin_run;
    s->fin.drop = fin_drop;
    s->in = evbuffer_new();
    s->out = evbuffer_new();
    s->rev = event_new(b, fd, EV_READ | EV_PERSIST, on_readable, s);
    s->wev = event_new(b, fd, EV_WRITE | EV_PERSIST, on_writable, s);
    s->tev = evtimer_new(b, pact__stream_on_timer, s);
    static const pact_stream_opts none;
    if (!s->in || !s->out || !s->rev || !s->wev || !s->tev ||
        pact__op_start(svc->loop, &s->op, &stream_type, abort, PACT__OP_REF) <
            0) {
        if (s->rev)
            event_free(s->rev);
        if (s->wev)
            event_free(s->wev);
        if (s->tev)
            event_free(s->tev);
        if (s->in)
            evbuffer_free(s->in);
        if (s->out)
            evbuffer_free(s->out);
        free(s);
        return NULL;
    }
    pact__list_push_back(&svc->streams, &s->node);
    (void)apply_opts(s, opts ? opts : &none);
    return s;
}

/* ---- the API ------------------------------------------------------------- */

#define CHECK_STREAM(s, fn)                                                    \
    do {                                                                       \
        if (!(s))                                                              \
            return pact__misuse(fn, PACT_EINVAL, "s is NULL");                 \
        PACT_CHECK_THREAD((s)->loop, fn);                                      \
    } while (0)

int pact_stream_on(pact_stream *s, const pact_stream_events *ev, void *ud)
{
    CHECK_STREAM(s, "pact_stream_on");
    PACT_CHECK_ARG(ev, "pact_stream_on");
    if (ev->data && (s->rreq || pact__stream_in_len(s)))
        return pact__misuse("pact_stream_on", PACT_EINVAL,
                            "a read request is pending or input buffered");
    if (ev->data)
        pact__stream_read_clock(s);
    s->ev = *ev;
    s->ud = ud;
    if (ev->data)
        s->flags |= S_STARTED;
    pact__stream_update(s);
    if (ev->close || ev->data) /* events mode: freed after close, as Node */
        pact__stream_let_go(s);
    return 0;
}

int pact_stream_set_opts(pact_stream *s, const pact_stream_opts *o)
{
    CHECK_STREAM(s, "pact_stream_set_opts");
    PACT_CHECK_ARG(o, "pact_stream_set_opts");
    if (s->flags & S_DEAD)
        return 0;
    int rc = apply_opts(s, o);
    pact__stream_update(s);
    return rc;
}

int pact_stream_write(pact_stream *s, const void *data, size_t len)
{
    CHECK_STREAM(s, "pact_stream_write");
    PACT_CHECK_ARG(data || !len, "pact_stream_write");
    return pact__stream_write(s, data, len);
}

size_t pact_stream_buffered(const pact_stream *s)
{
    return s ? evbuffer_get_length(s->out) : 0;
}

size_t pact_stream_input(const pact_stream *s)
{
    return s ? evbuffer_get_length(s->in) : 0;
}

int pact_stream_fd(const pact_stream *s)
{
    return s ? s->fd : -1;
}

int pact_stream_pause(pact_stream *s)
{
    CHECK_STREAM(s, "pact_stream_pause");
    s->flags |= S_PAUSED;
    pact__stream_update(s);
    return 0;
}

int pact_stream_resume(pact_stream *s)
{
    CHECK_STREAM(s, "pact_stream_resume");
    pact__stream_read_clock(s);
    s->flags &= ~(unsigned)S_PAUSED;
    pact__stream_update(s);
    return 0;
}

static void do_end(pact_stream *s)
{
    s->flags |= S_ENDING;
    if (!pact__out_pending(s)) {
        shut(s);
        pact__write_reqs_done(s);
    }
}

int pact__stream_end(pact_stream *s)
{
    if (s->flags & S_ENDING)
        return PACT_EALREADY;
    if (s->flags & S_DEAD)
        return 0;
    do_end(s);
    maybe_done(s);
    return 0;
}

int pact_stream_end(pact_stream *s)
{
    CHECK_STREAM(s, "pact_stream_end");
    return pact__stream_end(s);
}

int pact_stream_close(pact_stream *s)
{
    CHECK_STREAM(s, "pact_stream_close");
    if (!(s->flags & (S_DEAD | S_CLOSING))) {
        s->flags |= S_CLOSING | S_ENDING;
        pact__stream_update(s);
        if (s->tls && !pact__out_pending(s))
            shut(s); /* close_notify, then the close once it is sent */
        if (!pact__out_pending(s) && !(s->flags & S_DEAD))
            pact__stream_kill(s, NULL);
    }
    pact__stream_let_go(s);
    return 0;
}

int pact_stream_destroy(pact_stream *s, pact_error *err)
{
    CHECK_STREAM(s, "pact_stream_destroy");
    pact__stream_kill(s, err ? pact_error_ref(err) : NULL);
    pact__stream_let_go(s);
    return 0;
}
