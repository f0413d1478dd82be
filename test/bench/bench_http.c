/* make bench: the HTTP hello server (layer 5's pact/http.h) beside libevent's
 * evhttp and Node's http, measured in the same run by one load client, a
 * thread of this program pinned to the other core (the C servers run on
 * the first). The client keeps CONNS keep-alive connections busy, each
 * sending `GET / HTTP/1.1` and waiting for its whole response before the
 * next, until REQUESTS responses came back; it checks every response's
 * status and body length, so a broken server cannot print a fast figure.
 * Figures: wall ns per request (1e9 / figure is the requests per second
 * over all connections) for pact's four handler styles (http.hello: a
 * callback handler; _promise; _task; _async: a PACT_ASYNC function), each
 * beside evhttp and Node. README.md says more. */
#include "config.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pact.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef HAVE_EVHTTP
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#endif

#define CONNS 50
#define REQUESTS 50000L
#define HELLO "hello world\n"

/* ---- the load client ----------------------------------------------------- */

struct load {
    int port;
    double ns;
};

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        bench_fail("http.hello: the client cannot connect: %s",
                   strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return fd;
}

static const char GET[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/* One connection's input: whole responses are taken off its front. */
struct cin {
    char buf[4096];
    size_t len;
};

/* @return how many whole responses @p c held (and drops them). */
static int responses(struct cin *c)
{
    int n = 0;
    for (;;) {
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            break;
        const char *cl = strcasestr(c->buf, "\r\nContent-Length: ");
        if (strncmp(c->buf, "HTTP/1.1 200 ", 13) != 0 || !cl || cl > end ||
            strtoul(cl + 18, NULL, 10) != sizeof HELLO - 1)
            bench_fail("http.hello: not the response expected: %.300s", c->buf);
        size_t whole = (size_t)(end - c->buf) + 4 + sizeof HELLO - 1;
        if (c->len < whole)
            break;
        memmove(c->buf, c->buf + whole, c->len - whole);
        c->len -= whole;
        n++;
    }
    return n;
}

/* Send a last request to @p port's /exit, which stops the server. */
static void say_exit(int port)
{
    int fd = dial(port);
    static const char bye[] =
        "GET /exit HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    if (send(fd, bye, sizeof bye - 1, MSG_NOSIGNAL) < 0)
        bench_fail("http.hello: cannot say exit");
    char b[512];
    while (recv(fd, b, sizeof b, 0) > 0)
        ;
    close(fd);
}

static void *client_main(void *arg)
{
    struct load *l = arg;
    bench_pin(1);
    int ep = epoll_create1(0), fds[CONNS];
    static struct cin in[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fds[i] = dial(l->port);
        in[i].len = 0;
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    long sent = 0, done = 0;
    double t0 = bench_wall_ns();
    for (int i = 0; i < CONNS; i++, sent++)
        if (send(fds[i], GET, sizeof GET - 1, MSG_NOSIGNAL) < 0)
            bench_fail("http.hello: the client's send failed");
    while (done < REQUESTS) {
        struct epoll_event ev[CONNS];
        int n = epoll_wait(ep, ev, CONNS, 5000);
        if (n <= 0)
            bench_fail("http.hello: no response for 5 s (%ld of %ld)", done,
                       REQUESTS);
        for (int k = 0; k < n; k++) {
            int i = (int)ev[k].data.u32;
            struct cin *c = &in[i];
            ssize_t r =
                recv(fds[i], c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
            if (r <= 0)
                bench_fail("http.hello: the server closed a connection");
            c->len += (size_t)r;
            int got = responses(c);
            done += got;
            for (int g = 0; g < got && sent < REQUESTS; g++, sent++)
                if (send(fds[i], GET, sizeof GET - 1, MSG_NOSIGNAL) < 0)
                    bench_fail("http.hello: the client's send failed");
        }
    }
    l->ns = bench_wall_ns() - t0;
    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    close(ep);
    return NULL;
}

static pthread_t start_client(struct load *l)
{
    pthread_t t;
    if (pthread_create(&t, NULL, client_main, l) != 0)
        bench_fail("http.hello: no client thread");
    return t;
}

/* The client, then /exit: for servers on this thread's loop. */
static void *client_then_exit(void *arg)
{
    struct load *l = arg;
    client_main(l);
    say_exit(l->port);
    return NULL;
}

/* ---- pact: the four styles ----------------------------------------------- */

enum style { CALLBACKS, PROMISES, TASKS, ASYNC, NSTYLES };

static pact_loop *ploop;
static pact_http_server *psrv;

static pact_http_res *hello(void)
{
    pact_http_res *res = pact_http_res_new(200);
    if (!res || pact_http_res_header(res, "Content-Type", "text/plain") ||
        pact_http_res_body(res, HELLO, sizeof HELLO - 1))
        bench_fail("http.hello: no response");
    return res;
}

static void h_cb(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_http_respond(req, hello());
}

static pact_promise *h_promise(pact_http_req *req, void *ud)
{
    (void)req, (void)ud;
    return pact_resolved(ploop, pact_http_res_value(hello()));
}

static pact_error *h_task(pact_http_req *req, pact_http_res **res, void *ud)
{
    (void)req, (void)ud;
    *res = hello();
    return NULL;
}

struct h_frame {
    PACT_ASYNC_FRAME;
};

static pact_error *h_async_body(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    *result = pact_http_res_value(hello());
    PACT_ASYNC_END(a);
}

static pact_promise *h_async(pact_http_req *req, void *ud)
{
    (void)req, (void)ud;
    struct h_frame *f = pact_async_new(ploop, sizeof *f, h_async_body);
    return f ? pact_async_start(f) : NULL;
}

static void h_exit(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_http_reply(req, 200, NULL, "bye", 3);
    pact_http_server_close(psrv, NULL, NULL);
}

static void pact_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    int style = *(int *)ctx;
    ploop = bench_new_loop();
    BENCH_CHECK(pact_http_listen(ploop, "127.0.0.1", 0, NULL, &psrv));
    BENCH_CHECK(pact_http_route(psrv, "GET", "/exit", h_exit, NULL));
    if (style == CALLBACKS)
        BENCH_CHECK(pact_http_route(psrv, "GET", "/", h_cb, NULL));
    else if (style == PROMISES)
        BENCH_CHECK(pact_http_route_p(psrv, "GET", "/", h_promise, NULL));
    else if (style == TASKS)
        BENCH_CHECK(pact_http_route_task(psrv, "GET", "/", h_task, NULL));
    else
        BENCH_CHECK(pact_http_route_p(psrv, "GET", "/", h_async, NULL));
    struct load l = {pact_http_server_port(psrv), 0};
    pthread_t t;
    if (pthread_create(&t, NULL, client_then_exit, &l) != 0)
        bench_fail("http.hello: no client thread");
    bench_run_loop(ploop);
    pthread_join(t, NULL);
    BENCH_CHECK(pact_loop_free(ploop));
    figs[0] = l.ns / REQUESTS;
}

/* ---- evhttp (libevent's HTTP server) ------------------------------------- */

#ifdef HAVE_EVHTTP
static void ev_hello(struct evhttp_request *req, void *arg)
{
    struct event_base *base = arg;
    struct evbuffer *b = evbuffer_new();
    const char *uri = evhttp_request_get_uri(req);
    if (strcmp(uri, "/exit") == 0) {
        evbuffer_add(b, "bye", 3);
        evhttp_send_reply(req, 200, "OK", b);
        event_base_loopexit(base, NULL);
    } else {
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Content-Type", "text/plain");
        evbuffer_add(b, HELLO, sizeof HELLO - 1);
        evhttp_send_reply(req, 200, "OK", b);
    }
    evbuffer_free(b);
}

static void evhttp_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    (void)ctx;
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (!bs)
        bench_fail("http.hello: evhttp cannot listen");
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a, &al);
    evhttp_set_gencb(http, ev_hello, base);
    struct load l = {ntohs(a.sin_port), 0};
    pthread_t t;
    if (pthread_create(&t, NULL, client_then_exit, &l) != 0)
        bench_fail("http.hello: no client thread");
    event_base_dispatch(base);
    evhttp_free(http); /* closes the /exit connection, which the client reads */
    pthread_join(t, NULL);
    event_base_free(base);
    figs[0] = l.ns / REQUESTS;
}
#endif

/* ---- Node's http: node/http_hello.js, a server the client drives --------- */

static void node_client(void *ctx, double figs[BENCH_MAX_FIGS])
{
    struct load l = {*(int *)ctx, 0};
    pthread_t t = start_client(&l);
    pthread_join(t, NULL);
    figs[0] = l.ns / REQUESTS;
}

/* @return Node's ns per request, or -1 without Node. */
static double node_hello(void)
{
    const char *node = getenv("PACT_BENCH_NODE");
    const char *dir = getenv("PACT_BENCH_JS");
    if (!node || !*node)
        return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s/http_hello.js'", node,
             dir && *dir ? dir : "test/bench/node");
    FILE *p = popen(cmd, "r");
    int port = 0;
    if (!p || fscanf(p, "%d", &port) != 1 || port <= 0)
        bench_fail("%s: printed no port", cmd);
    double f[BENCH_MAX_FIGS] = {0};
    bench_best(node_client, &port, f);
    say_exit(port);
    if (pclose(p) != 0)
        bench_fail("%s: failed", cmd);
    return f[0];
}

static void bench_hello(void)
{
    double p[NSTYLES][BENCH_MAX_FIGS], ev[BENCH_MAX_FIGS] = {-1};
    bench_pin(0); /* the C servers on one core, the client on the other */
    for (int st = CALLBACKS; st < NSTYLES; st++)
        bench_best(pact_run, &st, p[st]);
#ifdef HAVE_EVHTTP
    bench_best(evhttp_run, NULL, ev);
#endif
    bench_unpin();
    double nd = node_hello();
    static const char *const names[NSTYLES] = {
        "http.hello", "http.hello_promise", "http.hello_task",
        "http.hello_async"};
    bench_anchor a[] = {{"evhttp", ev[0]}, {"node", nd}};
    for (int st = CALLBACKS; st < NSTYLES; st++)
        bench_print(names[st], "ns", p[st][0], a, 2);
}

const bench_def bench_http[] = {
    {"http.hello", bench_hello},
    {NULL, NULL},
};
