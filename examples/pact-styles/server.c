/* pact-styles --serve=DAEMON:STYLE: one daemon in one style, in a process of
 * its own so that its peak RSS is its own. It listens on 127.0.0.1, says
 * "port N" on stdout, and serves until SIGTERM, then shuts down gracefully
 * and frees everything (valgrind finds no leak). The setup is the same for
 * every pact style; only the accept callback or the routes differ. */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#ifdef HAVE_EVHTTP
#include <event2/http.h>
#endif
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "styles.h"

const char *const style_names[NSTYLES] = {"callbacks", "promises", "task",
                                          "async", "libevent"};

static const pact_tcp_accept_cb echo_accept[] = {echo_callbacks, echo_promises,
                                                 echo_task, echo_async};
static int (*const api_routes[])(pact_http_server *) = {
    api_callbacks, api_promises, api_task, api_async};

static void listening(int port)
{
    printf("port %d\n", port);
    fflush(stdout);
}

int serve_listen_failed(int port, const char *why)
{
    fprintf(stderr, "cannot listen on 127.0.0.1:%d: %s\n", port, why);
    return 3; /* the parent says so and stops */
}

/* ---- pact's styles ------------------------------------------------------ */

static pact_loop *loop;
static pact_http_server *http;
static pact_handle term;

static void on_term(pact_error *err, int signum, void *ud)
{
    (void)signum, (void)ud;
    if (err)
        return;
    pact_clear(loop, term);
    pact_http_server_shutdown(http, 1000, NULL, NULL);
}

static int serve_pact(const char *daemon, int style, int port)
{
    int rc = pact_loop_new(&loop);
    if (rc < 0)
        return 1;
    pact_stream_opts so = {.nodelay = true};
    if (!strcmp(daemon, "echo")) {
        pact_tcp_listen_opts lo = {.stream = &so};
        pact_tcp_server *srv;
        rc = pact_tcp_listen(loop, "127.0.0.1", port, &lo, echo_accept[style],
                             loop, &srv);
        if (rc < 0) {
            pact_loop_free(loop);
            return serve_listen_failed(port, pact_strerror(rc));
        }
        rc = pact_tcp_server_shutdown_on_signals(srv, 1000, NULL, NULL);
        port = pact_tcp_server_port(srv);
    } else {
        rc = pact_http_listen(loop, "127.0.0.1", port, NULL, &http);
        if (rc < 0) {
            pact_loop_free(loop);
            return serve_listen_failed(port, pact_strerror(rc));
        }
        rc = api_routes[style](http);
        if (rc == 0)
            rc = pact_signal(loop, SIGTERM, on_term, NULL, &term);
        port = pact_http_server_port(http);
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", daemon, pact_strerror(rc));
        return 1;
    }
    listening(port);
    rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    return rc < 0 || pact_loop_free(loop) < 0;
}

/* ---- raw libevent ---------------------------------------------------------
 */

static void on_term_ev(evutil_socket_t sig, short what, void *base)
{
    (void)sig, (void)what;
    event_base_loopbreak(base);
}

static int bound_port(evutil_socket_t fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    return ntohs(a.sin_port);
}

/* A listening socket on 127.0.0.1:@p port, or -1 with errno. */
static evutil_socket_t tcp_listener(int port)
{
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (evutil_make_listen_socket_reuseable(fd) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 511) < 0 ||
        evutil_make_socket_nonblocking(fd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int serve_libevent(const char *daemon, int port)
{
    struct event_base *base = event_base_new();
    struct event *sig =
        base ? evsignal_new(base, SIGTERM, on_term_ev, base) : NULL;
    struct event *acc = NULL;
#ifdef HAVE_EVHTTP
    struct evhttp *h = NULL;
#endif
    evutil_socket_t fd = -1;
    int rc = 1;
    if (!sig || evsignal_add(sig, NULL) < 0)
        goto out;
    if (!strcmp(daemon, "echo")) {
        if ((fd = tcp_listener(port)) < 0) {
            rc = serve_listen_failed(port, strerror(errno));
            goto out;
        }
        if (!(acc = echo_libevent(base, fd)))
            goto out;
    } else {
#ifndef HAVE_EVHTTP
        fprintf(stderr,
                "evhttp (libevent_extra) was not found at build time\n");
        goto out;
#else
        struct evhttp_bound_socket *bs;
        if (!(h = evhttp_new(base)))
            goto out;
        if (!(bs = evhttp_bind_socket_with_handle(h, "127.0.0.1",
                                                  (uint16_t)port))) {
            rc = serve_listen_failed(port, "in use, or not allowed");
            goto out;
        }
        if (api_libevent(h) < 0)
            goto out;
        fd = evhttp_bound_socket_get_fd(bs);
#endif
    }
    listening(bound_port(fd));
    rc = event_base_dispatch(base) < 0;
out:
    if (acc)
        event_free(acc);
#ifdef HAVE_EVHTTP
    if (h)
        evhttp_free(h); /* closes its socket */
    else
#endif
        if (fd >= 0)
        close(fd);
    if (sig)
        event_free(sig);
    if (base)
        event_base_free(base);
    libevent_global_shutdown();
    return rc;
}

int serve_main(const char *daemon, const char *style, int port)
{
    if (!strcmp(daemon, "block"))
        return block_main(style, port);
    if (strcmp(daemon, "echo") && strcmp(daemon, "api"))
        return 2;
    for (int i = 0; i < NSTYLES; i++)
        if (!strcmp(style, style_names[i]))
            return i == STYLE_LIBEVENT ? serve_libevent(daemon, port)
                                       : serve_pact(daemon, i, port);
    return 2;
}
