/* make bench: the TCP echo (layer 5's streams) beside the same echo server
 * on raw libevent events and on libuv, measured in the same run. One load
 * client, a thread of this program pinned to the other core (the server
 * runs on the first), keeps CONNS connections busy, each sending a 64-byte
 * message and waiting for its echo before the next, until MESSAGES echoes
 * came back. Figures: wall ns per message (the inverse of messages per
 * second over all connections) for the server in callback style
 * (tcp.echo), with promise chains (tcp.echo_promise) and as a task per
 * connection (tcp.echo_task), each beside the same two anchors; and the
 * server thread's CPU time per message (the *_cpu figures: what the
 * server itself costs, less sensitive to a busy neighbour than wall
 * time), and the 99th percentile of a message's round trip as the client
 * sees it (the *_p99 figures). The client checks every echo's length, so
 * a broken server cannot print a fast figure. README.md says more. */
#include "config.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
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
#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#define CONNS 50
#define MESSAGES 100000L
#define MSG 64

/* ---- the load client (one thread, epoll) --------------------------------- */

struct load {
    int port;
    double ns;  /* wall time from the first send to the last echo */
    double p99; /* the 99th percentile of the messages' round trips */
};

/* A run's context: which server, and the least p99 of its measured runs
 * (bench_best keeps two figures; the third is kept here). */
struct run {
    int style; /* enum style, for pact */
    int calls;
    double p99;
};

static void keep_p99(struct run *r, double p99)
{
    if (r->calls++ < BENCH_WARMUP)
        return;
    if (r->p99 <= 0 || p99 < r->p99)
        r->p99 = p99;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void pin(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % n, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void unpin(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n && i < CPU_SETSIZE; i++)
        CPU_SET(i, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static int client_socket(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int on = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        bench_fail("tcp.echo: the client cannot connect: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return fd;
}

static void *client_main(void *arg)
{
    struct load *l = arg;
    pin(1);
    int ep = epoll_create1(0), fds[CONNS];
    size_t got[CONNS] = {0};
    char msg[MSG], buf[4096];
    memset(msg, 'm', sizeof msg);
    for (int i = 0; i < CONNS; i++) {
        fds[i] = client_socket(l->port);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    long sent = 0, echoed = 0;
    double *rtt = malloc(MESSAGES * sizeof *rtt), at[CONNS];
    if (!rtt)
        bench_fail("out of memory");
    double t0 = bench_wall_ns();
    for (int i = 0; i < CONNS; i++, sent++) {
        at[i] = bench_wall_ns();
        if (send(fds[i], msg, MSG, MSG_NOSIGNAL) != MSG)
            bench_fail("tcp.echo: the client's send failed");
    }
    while (echoed < MESSAGES) {
        struct epoll_event ev[CONNS];
        int n = epoll_wait(ep, ev, CONNS, 5000);
        if (n <= 0)
            bench_fail("tcp.echo: no echo for 5 s (%ld of %ld)", echoed,
                       MESSAGES);
        for (int k = 0; k < n; k++) {
            int i = (int)ev[k].data.u32;
            ssize_t r = recv(fds[i], buf, sizeof buf, 0);
            if (r <= 0)
                bench_fail("tcp.echo: the server closed a connection");
            got[i] += (size_t)r;
            if (got[i] > MSG)
                bench_fail("tcp.echo: more bytes than sent came back");
            if (got[i] < MSG)
                continue;
            got[i] = 0;
            double now = bench_wall_ns();
            rtt[echoed++] = now - at[i];
            if (sent < MESSAGES) {
                sent++;
                at[i] = now;
                if (send(fds[i], msg, MSG, MSG_NOSIGNAL) != MSG)
                    bench_fail("tcp.echo: the client's send failed");
            }
        }
    }
    l->ns = bench_wall_ns() - t0;
    qsort(rtt, MESSAGES, sizeof *rtt, cmp_double);
    l->p99 = rtt[MESSAGES * 99 / 100];
    free(rtt);
    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    close(ep);
    return NULL;
}

/* CPU time of the calling thread (the server's), in ns */
static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static pthread_t start_client(struct load *l)
{
    pthread_t t;
    if (pthread_create(&t, NULL, client_main, l) != 0)
        bench_fail("tcp.echo: no client thread");
    return t;
}

/* ---- pact: the callback, promise and task styles --------------------------
 */

enum style { CALLBACKS, PROMISES, TASKS };

struct pact_echo {
    pact_loop *loop;
    pact_tcp_server *srv;
    enum style style;
    int closed;
};

static void p_gone(struct pact_echo *e)
{
    if (++e->closed == CONNS)
        pact_tcp_server_close(e->srv, NULL, NULL);
}

static void p_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)ud;
    if (pact_stream_write(s, buf, len) < 0)
        bench_fail("tcp.echo: pact_stream_write failed");
}

static void p_close(pact_stream *s, void *ud)
{
    (void)s;
    p_gone(ud);
}

/* promises: read_some_p, then write_p of what came, then again */
struct p_conn {
    pact_stream *s;
    struct pact_echo *e;
};

static void pr_step(struct p_conn *c);

static pact_value pr_written(const pact_value *v, void *ud)
{
    (void)v;
    pr_step(ud);
    return pact_nothing();
}

static pact_value pr_got(const pact_value *v, void *ud)
{
    struct p_conn *c = ud;
    pact_promise *w =
        pact_stream_write_p(c->s, v->u.bytes.data, v->u.bytes.len);
    pact_promise *next = pact_then(w, pr_written, NULL, c);
    pact_promise_unref(w);
    return pact_promise_v(next);
}

static pact_value pr_end(pact_error *err, void *ud)
{
    (void)err;
    struct p_conn *c = ud;
    pact_stream_close(c->s);
    p_gone(c->e);
    free(c);
    return pact_nothing();
}

static void pr_step(struct p_conn *c)
{
    pact_promise *r = bench_must(pact_stream_read_some_p(c->s, NULL),
                                 "pact_stream_read_some_p");
    pact_promise_unref(pact_then(r, pr_got, pr_end, c));
    pact_promise_unref(r);
}

/* a task per connection awaiting the same twins */
static pact_error *t_echo(void *arg, pact_value *result)
{
    (void)result;
    struct p_conn *c = arg;
    for (;;) {
        pact_value v;
        pact_error *err =
            PACT_AWAIT_ERR(pact_stream_read_some_p(c->s, NULL), &v);
        if (err) {
            pact_error_unref(err);
            break;
        }
        err = PACT_AWAIT_ERR(
            pact_stream_write_p(c->s, v.u.bytes.data, v.u.bytes.len), NULL);
        pact_value_release(&v);
        if (err) {
            pact_error_unref(err);
            break;
        }
    }
    pact_stream_close(c->s);
    p_gone(c->e);
    free(c);
    return NULL;
}

static void p_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct pact_echo *e = ud;
    if (err)
        bench_fail("tcp.echo: the pact server failed");
    if (e->style == CALLBACKS) {
        pact_stream_events ev = {.data = p_data, .close = p_close};
        BENCH_CHECK(pact_stream_on(s, &ev, ud));
        return;
    }
    struct p_conn *c = malloc(sizeof *c);
    if (!c)
        bench_fail("out of memory");
    *c = (struct p_conn){s, e};
    if (e->style == PROMISES)
        pr_step(c);
    else
        pact_promise_unref(
            bench_must(pact_task_spawn(e->loop, t_echo, c, NULL), "spawn"));
}

static void pact_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    struct run *r = ctx;
    pact_loop *loop = bench_new_loop();
    struct pact_echo e = {loop, NULL, (enum style)r->style, 0};
    pact_stream_opts so = {.nodelay = true};
    pact_tcp_listen_opts lo = {.stream = &so};
    BENCH_CHECK(
        pact_tcp_listen(loop, "127.0.0.1", 0, &lo, p_accept, &e, &e.srv));
    struct load l = {pact_tcp_server_port(e.srv), 0, 0};
    pthread_t t = start_client(&l);
    double c0 = thread_cpu_ns();
    bench_run_loop(loop);
    figs[1] = (thread_cpu_ns() - c0) / MESSAGES;
    pthread_join(t, NULL);
    BENCH_CHECK(pact_loop_free(loop));
    figs[0] = l.ns / MESSAGES;
    keep_p99(r, l.p99);
}

/* ---- raw libevent: one recv and one send a message ------------------------
 */

struct ev_conn {
    struct event *rev, *wev;
    int fd;
    size_t pending; /* bytes the kernel did not take */
    char out[65536];
    struct ev_echo *e;
};

struct ev_echo {
    struct event_base *base;
    struct event *lev;
    int lfd, closed;
    char buf[65536];
};

static void ev_gone(struct ev_conn *c)
{
    event_free(c->rev);
    event_free(c->wev);
    close(c->fd);
    struct ev_echo *e = c->e;
    free(c);
    if (++e->closed == CONNS) {
        event_free(e->lev);
        close(e->lfd);
    }
}

static void ev_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct ev_conn *c = arg;
    ssize_t n = send(fd, c->out, c->pending, MSG_NOSIGNAL);
    if (n < 0)
        return;
    memmove(c->out, c->out + n, c->pending - (size_t)n);
    c->pending -= (size_t)n;
    if (!c->pending)
        event_del(c->wev);
}

static void ev_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct ev_conn *c = arg;
    char *buf = c->e->buf;
    ssize_t n = recv(fd, buf, sizeof c->e->buf, 0);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return;
        ev_gone(c);
        return;
    }
    ssize_t w = 0;
    if (!c->pending)
        w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w < 0)
        w = 0;
    if (w < n) { /* the rest when writable */
        memcpy(c->out + c->pending, buf + w, (size_t)(n - w));
        c->pending += (size_t)(n - w);
        event_add(c->wev, NULL);
    }
}

static void ev_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct ev_echo *e = arg;
    int cfd;
    while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        struct ev_conn *c = calloc(1, sizeof *c);
        int on = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        c->fd = cfd;
        c->e = e;
        c->rev = event_new(e->base, cfd, EV_READ | EV_PERSIST, ev_readable, c);
        c->wev = event_new(e->base, cfd, EV_WRITE | EV_PERSIST, ev_writable, c);
        event_add(c->rev, NULL);
    }
}

static int listen_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), on = 1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 511) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0)
        bench_fail("tcp.echo: cannot listen");
    *port = ntohs(a.sin_port);
    return fd;
}

static void ev_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    static struct ev_echo e;
    memset(&e, 0, sizeof e);
    e.base = event_base_new();
    struct load l = {0, 0, 0};
    e.lfd = listen_socket(&l.port);
    e.lev = event_new(e.base, e.lfd, EV_READ | EV_PERSIST, ev_accept, &e);
    event_add(e.lev, NULL);
    pthread_t t = start_client(&l);
    double c0 = thread_cpu_ns();
    event_base_dispatch(e.base);
    figs[1] = (thread_cpu_ns() - c0) / MESSAGES;
    pthread_join(t, NULL);
    event_base_free(e.base);
    figs[0] = l.ns / MESSAGES;
    keep_p99(ctx, l.p99);
}

/* ---- libuv: uv_try_write first, as its streams do -------------------------
 */

#ifdef HAVE_LIBUV
struct uv_echo {
    uv_tcp_t server;
    int closed;
    char buf[65536];
};

static void uv_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    (void)size;
    struct uv_echo *e = h->loop->data;
    *b = uv_buf_init(e->buf, sizeof e->buf);
}

static void uv_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void uv_closed(uv_handle_t *h)
{
    struct uv_echo *e = h->loop->data;
    free(h);
    if (++e->closed == CONNS)
        uv_close((uv_handle_t *)&e->server, NULL);
}

static void uv_got(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) {
        uv_close((uv_handle_t *)s, uv_closed);
        return;
    }
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    int w = n ? uv_try_write(s, &out, 1) : 0;
    if (w < 0)
        w = 0;
    if (w < n) { /* the rest through a request, copied */
        uv_write_t *req = malloc(sizeof *req + (size_t)(n - w));
        char *copy = (char *)(req + 1);
        memcpy(copy, b->base + w, (size_t)(n - w));
        uv_buf_t rest = uv_buf_init(copy, (unsigned)(n - w));
        uv_write(req, s, &rest, 1, uv_written);
    }
}

static void uv_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        bench_fail("tcp.echo: libuv accept failed");
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(server->loop, c);
    BENCH_CHECK(uv_accept(server, (uv_stream_t *)c));
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, uv_alloc, uv_got);
}

static void uv_run_echo(void *ctx, double figs[BENCH_MAX_FIGS])
{
    uv_loop_t loop;
    static struct uv_echo e;
    memset(&e, 0, sizeof e);
    uv_loop_init(&loop);
    loop.data = &e;
    uv_tcp_init(&loop, &e.server);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    BENCH_CHECK(uv_tcp_bind(&e.server, (struct sockaddr *)&a, 0));
    BENCH_CHECK(uv_listen((uv_stream_t *)&e.server, 511, uv_connection));
    int al = sizeof a;
    uv_tcp_getsockname(&e.server, (struct sockaddr *)&a, &al);
    struct load l = {ntohs(a.sin_port), 0, 0};
    pthread_t t = start_client(&l);
    double c0 = thread_cpu_ns();
    uv_run(&loop, UV_RUN_DEFAULT);
    figs[1] = (thread_cpu_ns() - c0) / MESSAGES;
    pthread_join(t, NULL);
    uv_loop_close(&loop);
    figs[0] = l.ns / MESSAGES;
    keep_p99(ctx, l.p99);
}
#endif

/* PACT_BENCH_TCP_ONLY=pact|pact-promise|pact-task|libevent-raw|libuv: one
 * run of that server
 * alone, for counting its system calls (strace -c: the server is the main
 * thread, the client another). */
static bool only(void)
{
    const char *sys = getenv("PACT_BENCH_TCP_ONLY");
    if (!sys || !*sys)
        return false;
    double f[BENCH_MAX_FIGS] = {0};
    struct run r = {CALLBACKS, 0, 0};
    if (strcmp(sys, "pact-promise") == 0)
        r.style = PROMISES;
    else if (strcmp(sys, "pact-task") == 0)
        r.style = TASKS;
    if (strncmp(sys, "pact", 4) == 0)
        pact_run(&r, f);
    else if (strcmp(sys, "libevent-raw") == 0)
        ev_run(&r, f);
#ifdef HAVE_LIBUV
    else if (strcmp(sys, "libuv") == 0)
        uv_run_echo(&r, f);
#endif
    else
        bench_fail("PACT_BENCH_TCP_ONLY=%s: no such server", sys);
    fprintf(stderr, "tcp.echo %s alone: %ld messages\n", sys, MESSAGES);
    bench_print("tcp.echo", "ns", f[0], NULL, 0);
    return true;
}

static void bench_echo(void)
{
    double p[3][BENCH_MAX_FIGS + 1], ev[BENCH_MAX_FIGS + 1],
        uv[BENCH_MAX_FIGS + 1] = {-1, -1, -1};
    if (only())
        return;
    pin(0); /* the servers on one core, the client on the other */
    for (int st = CALLBACKS; st <= TASKS; st++) {
        struct run r = {st, 0, 0};
        bench_best(pact_run, &r, p[st]);
        p[st][2] = r.p99;
    }
    struct run re = {0, 0, 0};
    bench_best(ev_run, &re, ev);
    ev[2] = re.p99;
#ifdef HAVE_LIBUV
    struct run ru = {0, 0, 0};
    bench_best(uv_run_echo, &ru, uv);
    uv[2] = ru.p99;
#endif
    unpin();
    static const char *const names[3][3] = {
        {"tcp.echo", "tcp.echo_cpu", "tcp.echo_p99"},
        {"tcp.echo_promise", "tcp.echo_promise_cpu", "tcp.echo_promise_p99"},
        {"tcp.echo_task", "tcp.echo_task_cpu", "tcp.echo_task_p99"}};
    for (int f = 0; f < 3; f++) {
        bench_anchor a[] = {{"libevent-raw", ev[f]}, {"libuv", uv[f]}};
        for (int st = CALLBACKS; st <= TASKS; st++)
            bench_print(names[st][f], "ns", p[st][f], a, 2);
    }
}

const bench_def bench_tcp[] = {
    {"tcp.echo", bench_echo},
    {NULL, NULL},
};
