/* A server's graceful shutdown (pact/tcp.h): on the tick after the call it
 * accepts what the kernel's queue holds, stops listening and aborts the
 * server's shutdown token; then it waits for its connections (each one
 * freed calls pact__server_stream_gone) until a deadline, a raw libevent
 * timer, past which the rest are destroyed with PACT_ECANCELED. The server's
 * due (pact__server_closed) then frees it and calls back, once. The
 * signals' watchers only start it. */
#include <event2/event.h>

#include <signal.h>
#include <stdlib.h>

#include "tcp_internal.h"

static void deadline_off(pact_tcp_server *srv)
{
    if (!srv->dl_on)
        return;
    event_del(srv->deadline);
    pact__own_event_removed(srv->loop);
    srv->dl_on = false;
}

void pact__server_shutdown_done(pact_tcp_server *srv, pact_error *err)
{
    if (srv->finishing) {
        pact_error_unref(err);
        return;
    }
    srv->finishing = true;
    srv->shut_err = err;
    deadline_off(srv);
    srv->due.run = pact__server_closed;
    pact__tcp_due(srv->svc, &srv->due); /* after the streams' close events */
}

/* What is still open is closed, and the callback is due. */
static void close_rest(pact_tcp_server *srv)
{
    size_t n = 0;
    struct pact__list *node, *tmp;
    bool was = srv->finishing;
    srv->finishing = true; /* each kill calls pact__server_stream_gone */
    pact__list_each(node, tmp, &srv->svc->streams) {
        pact_stream *s = pact__list_entry(node, pact_stream, node);
        if (s->server != srv || (s->flags & S_DEAD))
            continue;
        pact_error *e = PACT_ERROR(PACT_ECANCELED,
                                   "the server shut down (its deadline of "
                                   "%llu ms passed, or a second signal)",
                                   (unsigned long long)srv->deadline_ms);
        pact__stream_kill(s, e ? e : pact__enomem());
        n++;
    }
    srv->finishing = was;
    pact_error *err =
        n ? PACT_ERROR(PACT_ETIMEDOUT,
                       "shutdown: %zu connection%s closed at the deadline", n,
                       n == 1 ? "" : "s")
          : NULL;
    pact__server_shutdown_done(srv, err);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pact_tcp_server *srv = arg;
    pact_loop *loop = srv->loop;
    srv->dl_on = false; /* fired: no longer added */
    pact__own_event_removed(loop);
    bool was = pact__own_begin(loop);
    close_rest(srv);
    pact__drain(loop);
    pact__own_end(loop, was);
}

/* The server's due on the tick after pact_tcp_server_shutdown. */
static void shutdown_begin(struct due *d)
{
    pact_tcp_server *srv = pact__list_entry(d, pact_tcp_server, due);
    pact__server_stop(srv); /* its accept callback sees the last ones */
    srv->shutting = true;
    if (srv->token && !pact_abort_aborted(srv->token)) {
        pact_error *why =
            PACT_ERROR(PACT_ECANCELED, "the server is shutting down");
        pact_abort_abort(srv->token, why);
        pact_error_unref(why);
    }
    if (!srv->conns) {
        pact__server_shutdown_done(srv, NULL);
    } else if (srv->deadline_ms && !srv->finishing) {
        struct timeval tv = {(time_t)(srv->deadline_ms / 1000),
                             (suseconds_t)(srv->deadline_ms % 1000) * 1000};
        if (event_add(srv->deadline, &tv) == 0) {
            pact__own_event_added(srv->loop);
            srv->dl_on = true;
        }
    }
}

int pact_tcp_server_shutdown(pact_tcp_server *srv, uint64_t deadline_ms,
                             pact_cb cb, void *ud)
{
    static const char fn[] = "pact_tcp_server_shutdown";
    if (!srv || srv->closed)
        return pact__misuse(fn, PACT_EINVAL, "srv is NULL or closed");
    PACT_CHECK_THREAD(srv->loop, fn);
    if (!srv->deadline &&
        !(srv->deadline = evtimer_new(srv->loop->base, on_deadline, srv)))
        return PACT_ENOMEM;
    srv->closed = true;
    srv->deadline_ms = deadline_ms;
    srv->shut_cb = cb;
    srv->shut_ud = ud;
    if (srv->op.state == PACT__OP_CANCELLED)
        return 0; /* srv_fail, due, closes it */
    pact_error *e;
    if (srv->op.state == PACT__OP_PENDING && pact__op_end(&srv->op, &e))
        pact_error_unref(e);
    srv->due.run = shutdown_begin;
    pact__tcp_due(srv->svc, &srv->due);
    return 0;
}

pact_abort *pact_tcp_server_shutdown_token(pact_tcp_server *srv)
{
    if (!srv ||
        pact__misuse_thread(srv->loop, "pact_tcp_server_shutdown_token"))
        return NULL;
    if (!srv->token && pact_abort_new(srv->loop, &srv->token) < 0)
        return NULL;
    return srv->token;
}

/* ---- on SIGTERM and SIGINT ----------------------------------------------- */

static void on_signal(pact_error *err, int signum, void *ud)
{
    (void)signum;
    pact_tcp_server *srv = ud;
    if (err) { /* cancelled (pact_loop_close_all): the watcher is gone */
        srv->sigs[signum == SIGINT].id = 0;
        return;
    }
    if (!srv->closed) {
        pact_tcp_server_shutdown(srv, srv->sig_deadline_ms, srv->sig_cb,
                                 srv->sig_ud);
    } else if (srv->shutting && !srv->finishing) {
        deadline_off(srv); /* a second signal: no more waiting */
        close_rest(srv);
    }
}

int pact_tcp_server_shutdown_on_signals(pact_tcp_server *srv,
                                        uint64_t deadline_ms, pact_cb cb,
                                        void *ud)
{
    static const char fn[] = "pact_tcp_server_shutdown_on_signals";
    if (!srv || srv->closed)
        return pact__misuse(fn, PACT_EINVAL, "srv is NULL or closed");
    PACT_CHECK_THREAD(srv->loop, fn);
    if (srv->sigs[0].id || srv->sigs[1].id)
        return PACT_EALREADY;
    pact_watch_opts o = {.unref = true};
    static const int signums[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        int rc = pact_signal_start(srv->loop, signums[i], &o, on_signal, srv,
                                   &srv->sigs[i]);
        if (rc < 0) {
            if (i)
                pact_clear(srv->loop, srv->sigs[0]);
            srv->sigs[0].id = 0;
            return rc;
        }
    }
    srv->sig_deadline_ms = deadline_ms;
    srv->sig_cb = cb;
    srv->sig_ud = ud;
    return 0;
}

void pact__server_shutdown_release(pact_tcp_server *srv)
{
    for (int i = 0; i < 2; i++)
        if (srv->sigs[i].id)
            pact_clear(srv->loop, srv->sigs[i]);
    if (srv->deadline) {
        deadline_off(srv);
        event_free(srv->deadline);
    }
    pact_abort_unref(srv->token);
    pact_error_unref(srv->shut_err);
}
