/* make bench: pact_fetch (layer 5's pact/fetch.h) against one local hello
 * server, beside Node's fetch (undici), Node's http.request with a
 * keep-alive agent and Go's http.Client (GOMAXPROCS=1, go/http.go), in the
 * same run. The server is a thread of this program
 * (epoll, pinned to the second core; the clients are not pinned),
 * answering every `GET` with the 12 bytes of `hello world\n`, so that every
 * client talks to the same server. Two figures, wall ns per request (1e9 /
 * figure is requests per second): fetch.get, SEQ fetches one after the
 * other on one kept-alive connection; fetch.get_c50, TOTAL fetches with 50
 * in flight at once (50 kept-alive connections). Every response's status
 * and body is checked. README.md says more. */
#include "config.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pact.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEQ 5000L
#define TOTAL 20000L
#define CONC 50
#define HELLO "hello world\n"

/* ---- the server ---------------------------------------------------------- */

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 12\r\n\r\n" HELLO;

struct server {
    int lfd, stop, port;
    pthread_t th;
};

struct sconn {
    int fd;
    size_t len;
    char buf[4096];
};

static void serve_conn(int ep, struct sconn *c)
{
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
    if (r <= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c);
        return;
    }
    c->len += (size_t)r;
    c->buf[c->len] = '\0';
    char *end;
    int n = 0;
    while ((end = strstr(c->buf, "\r\n\r\n"))) { /* GETs: no bodies */
        size_t whole = (size_t)(end - c->buf) + 4;
        memmove(c->buf, c->buf + whole, c->len - whole + 1);
        c->len -= whole;
        n++;
    }
    for (int i = 0; i < n; i++)
        if (send(c->fd, RESPONSE, sizeof RESPONSE - 1, MSG_NOSIGNAL) < 0)
            break;
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    bench_pin(1);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->lfd, &e);
    e.data.ptr = &s->stop;
    epoll_ctl(ep, EPOLL_CTL_ADD, s->stop, &e);
    for (;;) {
        struct epoll_event ev[64];
        int n = epoll_wait(ep, ev, 64, -1);
        for (int k = 0; k < n; k++) {
            if (ev[k].data.ptr == &s->stop) {
                close(ep); /* the connections left close with the process's
                              clients, which have closed theirs */
                return NULL;
            }
            if (!ev[k].data.ptr) {
                int fd = accept(s->lfd, NULL, NULL), on = 1;
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
                struct sconn *c = calloc(1, sizeof *c);
                c->fd = fd;
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            serve_conn(ep, ev[k].data.ptr);
        }
    }
}

static void server_start(struct server *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(s->lfd, 511) < 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) < 0)
        bench_fail("fetch.get: the server cannot listen: %s", strerror(errno));
    s->port = ntohs(a.sin_port);
    s->stop = eventfd(0, 0);
    if (pthread_create(&s->th, NULL, server_main, s) != 0)
        bench_fail("fetch.get: no server thread");
}

static void server_stop(struct server *s)
{
    uint64_t one = 1;
    if (write(s->stop, &one, sizeof one) < 0)
        bench_fail("fetch.get: cannot stop the server");
    pthread_join(s->th, NULL);
    close(s->stop);
    close(s->lfd);
}

/* ---- pact's client ------------------------------------------------------- */

struct run {
    pact_loop *loop;
    char url[64];
    long started, done, total;
};

static void got(pact_error *err, pact_fetch_res *res, void *ud);

static void start_one(struct run *r)
{
    r->started++;
    BENCH_CHECK(pact_fetch_cb(r->loop, r->url, NULL, got, r));
}

static void got(pact_error *err, pact_fetch_res *res, void *ud)
{
    struct run *r = ud;
    size_t n;
    if (err)
        bench_fail("fetch.get: %s", pact_error_message(err));
    const char *b = pact_fetch_res_body(res, &n);
    if (pact_fetch_res_status(res) != 200 || n != sizeof HELLO - 1 ||
        memcmp(b, HELLO, n) != 0)
        bench_fail("fetch.get: not the response expected");
    r->done++;
    if (r->started < r->total)
        start_one(r);
}

/* ctx: the port; figs[0] sequential, figs[1] 50 at once (ns/request) */
static void pact_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    struct run r = {.loop = bench_new_loop()};
    snprintf(r.url, sizeof r.url, "http://127.0.0.1:%d/", *(int *)ctx);
    r.total = SEQ;
    double t0 = bench_wall_ns();
    start_one(&r);
    bench_run_loop(r.loop);
    figs[0] = (bench_wall_ns() - t0) / SEQ;
    if (r.done != SEQ)
        bench_fail("fetch.get: %ld of %ld came back", r.done, SEQ);
    r.started = r.done = 0;
    r.total = TOTAL;
    t0 = bench_wall_ns();
    for (int i = 0; i < CONC; i++)
        start_one(&r);
    bench_run_loop(r.loop);
    figs[1] = (bench_wall_ns() - t0) / TOTAL;
    if (r.done != TOTAL)
        bench_fail("fetch.get: %ld of %ld came back", r.done, TOTAL);
    BENCH_CHECK(pact_loop_free(r.loop)); /* closes the idle connections */
}

static void bench_get(void)
{
    struct server s;
    server_start(&s);
    double p[BENCH_MAX_FIGS];
    /* the client unpinned, as Node's process is: on a shared machine a
     * pinned thread waits for its core while the other is free */
    bench_best(pact_run, &s.port, p);
    /* Node's clients against the same server: the port by environment */
    char port[16];
    snprintf(port, sizeof port, "%d", s.port);
    setenv("PACT_BENCH_FETCH_PORT", port, 1);
    double nd[4] = {-1, -1, -1, -1};
    bench_node("fetch_get.js", nd, 4);
    /* Go's http.Client (GOMAXPROCS=1, 50 goroutines for _c50), unpinned */
    char args[64];
    snprintf(args, sizeof args, "fetch-get %d", s.port);
    double go[2] = {-1, -1};
    bench_go(args, go, 2);
    server_stop(&s);
    bench_anchor seq[] = {{"node", nd[0]}, {"node_http", nd[2]}, {"go", go[0]}};
    bench_anchor conc[] = {
        {"node", nd[1]}, {"node_http", nd[3]}, {"go", go[1]}};
    bench_print("fetch.get", "ns", p[0], seq, 3);
    bench_print("fetch.get_c50", "ns", p[1], conc, 3);
}

const bench_def bench_fetch[] = {
    {"fetch.get", bench_get},
    {NULL, NULL},
};
