/* make bench: the TCP echo (layer 5's streams) beside the same echo server
 * on raw libevent events, on libevent's bufferevents, on libuv and on
 * Node's net, measured in the same run. One load client, a thread of this
 * program pinned to the other core (the server runs on the first), keeps
 * 50 connections busy (then 1,000: the _1k figures), each sending a 64-byte
 * message and waiting for its echo before the next, until MESSAGES echoes
 * came back. Figures: wall ns per message (the inverse of messages per
 * second over all connections) for the server in callback style
 * (tcp.echo), with promise chains (tcp.echo_promise), as a task per
 * connection (tcp.echo_task) and as a stackless async function per
 * connection (tcp.echo_async), each beside the anchors; and the server's
 * CPU time per message (the *_cpu figures: what the server itself costs,
 * less sensitive to a busy neighbour than wall time), and the 99th
 * percentile of a message's round trip as the client sees it (the *_p99
 * figures). The client checks every echo's length, so a broken server
 * cannot print a fast figure. README.md says more. */
#include "config.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#define MESSAGES 50000L
#define MSG 64

/* The connections of the run under way: 50, then 1,000 (the _1k figures). */
static int conns = 50;

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
    bench_pin(1);
    int ep = epoll_create1(0), *fds = calloc((size_t)conns, sizeof *fds);
    size_t *got = calloc((size_t)conns, sizeof *got);
    double *at = calloc((size_t)conns, sizeof *at);
    struct epoll_event *ev = calloc((size_t)conns, sizeof *ev);
    char msg[MSG], buf[4096];
    if (!fds || !got || !at || !ev)
        bench_fail("out of memory");
    memset(msg, 'm', sizeof msg);
    for (int i = 0; i < conns; i++) {
        fds[i] = client_socket(l->port);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    long sent = 0, echoed = 0;
    double *rtt = malloc(MESSAGES * sizeof *rtt);
    if (!rtt)
        bench_fail("out of memory");
    double t0 = bench_wall_ns();
    for (int i = 0; i < conns; i++, sent++) {
        at[i] = bench_wall_ns();
        if (send(fds[i], msg, MSG, MSG_NOSIGNAL) != MSG)
            bench_fail("tcp.echo: the client's send failed");
    }
    while (echoed < MESSAGES) {
        int n = epoll_wait(ep, ev, conns, 5000);
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
    for (int i = 0; i < conns; i++)
        close(fds[i]);
    close(ep);
    free(fds);
    free(got);
    free(at);
    free(ev);
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

enum style { CALLBACKS, PROMISES, TASKS, ASYNC };

struct pact_echo {
    pact_loop *loop;
    pact_tcp_server *srv;
    enum style style;
    int closed;
};

static void p_gone(struct pact_echo *e)
{
    if (++e->closed == conns)
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
    pact_stream *s = c->s; /* on the task's stack, as a handler would */
    for (;;) {
        pact_value v;
        pact_error *err = PACT_AWAIT_ERR(pact_stream_read_some_p(s, NULL), &v);
        if (err) {
            pact_error_unref(err);
            break;
        }
        err = PACT_AWAIT_ERR(
            pact_stream_write_p(s, v.u.bytes.data, v.u.bytes.len), NULL);
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

/* an async function per connection (stackless), the same twins */
struct a_echo {
    PACT_ASYNC_FRAME;
    struct p_conn *c;
    pact_stream *s; /* c->s, in the frame, as a handler would keep it */
    pact_value v;
};

static pact_error *a_echo_body(pact_async *a, pact_value *result)
{
    struct a_echo *f = (struct a_echo *)a;
    pact_error *err;
    PACT_ASYNC_BEGIN(a);
    for (;;) {
        PACT_ASYNC_AWAIT_ERR(a, pact_stream_read_some_p(f->s, NULL), &f->v,
                             err);
        if (err)
            break;
        PACT_ASYNC_AWAIT_ERR(
            a, pact_stream_write_p(f->s, f->v.u.bytes.data, f->v.u.bytes.len),
            NULL, err);
        pact_value_release(&f->v);
        if (err)
            break;
    }
    pact_error_unref(err);
    pact_stream_close(f->c->s);
    p_gone(f->c->e);
    free(f->c);
    *result = pact_nothing();
    PACT_ASYNC_END(a);
}

static void a_start(pact_loop *loop, struct p_conn *c)
{
    struct a_echo *f = pact_async_new(loop, sizeof *f, a_echo_body);
    if (!f)
        bench_fail("out of memory");
    f->c = c;
    f->s = c->s;
    pact_promise_unref(bench_must(pact_async_start(f), "pact_async_start"));
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
    else if (e->style == ASYNC)
        a_start(e->loop, c);
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
    if (++e->closed == conns) {
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

/* ---- libevent's bufferevents: the input buffer moved to the output ------
 */

static void bev_gone(struct bufferevent *bev, struct ev_echo *e)
{
    bufferevent_free(bev);
    if (++e->closed == conns) {
        event_free(e->lev);
        close(e->lfd);
    }
}

static void bev_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev),
                        bufferevent_get_input(bev));
}

static void bev_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bev_gone(bev, arg);
}

static void bev_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct ev_echo *e = arg;
    int cfd;
    while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        int on = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        struct bufferevent *bev =
            bufferevent_socket_new(e->base, cfd, BEV_OPT_CLOSE_ON_FREE);
        if (!bev)
            bench_fail("tcp.echo: bufferevent_socket_new failed");
        bufferevent_setcb(bev, bev_read, NULL, bev_event, e);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    }
}

static void bev_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    static struct ev_echo e;
    memset(&e, 0, sizeof e);
    e.base = event_base_new();
    struct load l = {0, 0, 0};
    e.lfd = listen_socket(&l.port);
    e.lev = event_new(e.base, e.lfd, EV_READ | EV_PERSIST, bev_accept, &e);
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

/* ---- Node's net: node/tcp_echo.js, a child process ----------------------- */

static const char *node_bin(void)
{
    const char *node = getenv("PACT_BENCH_NODE");
    return node && *node ? node : NULL;
}

/* The script prints its port once listening, and the CPU it used (ns)
 * once the client's connections are all closed; it runs on the first
 * core, as the other servers (a child inherits the affinity). */
static void node_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    const char *dir = getenv("PACT_BENCH_JS");
    char script[2048], nconns[16];
    snprintf(script, sizeof script, "%s/tcp_echo.js",
             dir && *dir ? dir : "test/bench/node");
    snprintf(nconns, sizeof nconns, "%d", conns);
    int out[2];
    if (pipe(out) < 0)
        bench_fail("tcp.echo: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("tcp.echo: fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execlp(node_bin(), node_bin(), script, nconns, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    struct load l = {0, 0, 0};
    double cpu = 0;
    if (!f || fscanf(f, "%d", &l.port) != 1)
        bench_fail("tcp.echo: %s printed no port", script);
    pthread_t t = start_client(&l);
    pthread_join(t, NULL);
    if (fscanf(f, "%lf", &cpu) != 1)
        bench_fail("tcp.echo: %s printed no CPU time", script);
    fclose(f);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        bench_fail("tcp.echo: %s: exit status %d", script, status);
    figs[0] = l.ns / MESSAGES;
    figs[1] = cpu / MESSAGES;
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
    if (++e->closed == conns)
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

/* The servers: pact's four styles, then the anchors. */
enum system { SYS_LIBEVENT = ASYNC + 1, SYS_BEV, SYS_LIBUV, SYS_NODE, SYS_N };

static const char *const sys_names[SYS_N] = {
    "pact",         "pact-promise", "pact-task", "pact-async",
    "libevent-raw", "bufferevent",  "libuv",     "node"};

static bool sys_present(int sys)
{
#ifndef HAVE_LIBUV
    if (sys == SYS_LIBUV)
        return false;
#endif
    return sys != SYS_NODE || node_bin();
}

static void sys_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    struct run *r = ctx;
    switch (r->style) {
    case SYS_LIBEVENT:
        ev_run(ctx, figs);
        break;
    case SYS_BEV:
        bev_run(ctx, figs);
        break;
#ifdef HAVE_LIBUV
    case SYS_LIBUV:
        uv_run_echo(ctx, figs);
        break;
#endif
    case SYS_NODE:
        node_run(ctx, figs);
        break;
    default:
        pact_run(ctx, figs);
    }
}

/* Room for a thousand connections on both sides, and the rest. */
static void more_descriptors(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* PACT_BENCH_TCP_ONLY=pact|pact-promise|pact-task|pact-async|libevent-raw|
 * bufferevent|libuv|node (and PACT_BENCH_TCP_CONNS=1000): one run of that
 * server alone, for counting its system calls (strace -c: the server is
 * the main thread, the client another). */
static bool only(void)
{
    const char *name = getenv("PACT_BENCH_TCP_ONLY");
    const char *n = getenv("PACT_BENCH_TCP_CONNS");
    if (!name || !*name)
        return false;
    if (n && atoi(n) > 0)
        conns = atoi(n);
    struct run r = {-1, 0, 0};
    for (int sys = 0; sys < SYS_N; sys++)
        if (strcmp(name, sys_names[sys]) == 0 && sys_present(sys))
            r.style = sys;
    if (r.style < 0)
        bench_fail("PACT_BENCH_TCP_ONLY=%s: no such server", name);
    double f[BENCH_MAX_FIGS] = {0};
    sys_run(&r, f);
    fprintf(stderr, "tcp.echo %s alone: %ld messages on %d connections\n", name,
            MESSAGES, conns);
    bench_print("tcp.echo", "ns", f[0], NULL, 0);
    bench_print("tcp.echo_cpu", "ns", f[1], NULL, 0); /* the server's */
    return true;
}

/* Every system at @p n connections (the anchors in @p anchors only), then
 * the pact styles' lines with those anchors, the names ending in
 * @p suffix. */
static void echo_at(int n, const bool anchors[SYS_N], const char *suffix)
{
    double fig[SYS_N][BENCH_MAX_FIGS + 1];
    struct run r[SYS_N];
    conns = n;
    for (int sys = 0; sys < SYS_N; sys++) {
        fig[sys][0] = fig[sys][1] = fig[sys][2] = -1;
        r[sys] = (struct run){sys, 0, 0};
    }
    /* Round by round, every system once per round, rather than each
     * system's runs back to back: the machine's speed drifts over seconds,
     * and a drift would otherwise land on one system only. */
    bench_pin(0); /* the servers on one core, the client on the other */
    for (int round = 0; round < BENCH_WARMUP + BENCH_RUNS; round++)
        for (int sys = 0; sys < SYS_N; sys++) {
            if (sys > ASYNC && (!anchors[sys] || !sys_present(sys)))
                continue;
            double f[BENCH_MAX_FIGS] = {0};
            sys_run(&r[sys], f);
            if (round < BENCH_WARMUP)
                continue;
            for (int k = 0; k < BENCH_MAX_FIGS; k++)
                if (fig[sys][k] < 0 || f[k] < fig[sys][k])
                    fig[sys][k] = f[k];
        }
    bench_unpin();
    for (int sys = 0; sys < SYS_N; sys++)
        fig[sys][2] = r[sys].p99 > 0 ? r[sys].p99 : -1;
    static const char *const styles[] = {"", "_promise", "_task", "_async"};
    static const char *const kinds[] = {"", "_cpu", "_p99"};
    for (int f = 0; f < 3; f++) {
        bench_anchor a[SYS_N];
        size_t na = 0;
        for (int sys = ASYNC + 1; sys < SYS_N; sys++)
            if (fig[sys][f] >= 0)
                a[na++] = (bench_anchor){sys_names[sys], fig[sys][f]};
        for (int st = CALLBACKS; st <= ASYNC; st++) {
            char name[64];
            snprintf(name, sizeof name, "tcp.echo%s%s%s", styles[st], suffix,
                     kinds[f]);
            bench_print(name, "ns", fig[st][f], a, na);
        }
    }
}

static void bench_echo(void)
{
    more_descriptors();
    if (only())
        return;
    /* 50 connections beside every anchor; 1,000 beside libuv and Node
     * (the targets' anchors), to keep the whole under a minute */
    bool all[SYS_N], targets[SYS_N] = {false};
    for (int sys = 0; sys < SYS_N; sys++)
        all[sys] = true;
    targets[SYS_LIBUV] = targets[SYS_NODE] = true;
    echo_at(50, all, "");
    echo_at(1000, targets, "_1k");
}

const bench_def bench_tcp[] = {
    {"tcp.echo", bench_echo},
    {NULL, NULL},
};
