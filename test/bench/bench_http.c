/* make bench: the HTTP server (layer 5's pact/http.h) beside libevent's
 * evhttp, Node's http and Go's net/http (GOMAXPROCS=1), measured in the same
 * run by one load driver pinned to the second core (the C servers and Go's
 * run on the first). Two endpoints: http.hello, `GET /` answered with the
 * 12 bytes of `hello world\n`; http.echo, `POST /echo` of a small JSON body
 * that the server parses (jansson for the C servers) and answers back as
 * compact JSON. The driver is wrk when configure found it (a plain GET for
 * hello, `wrk -s wrk_echo.lua` for the echo; 50 connections, one thread,
 * WRK_SECONDS a run), else the bench's own client, a thread of this program
 * keeping CONNS keep-alive connections busy until REQUESTS responses came
 * back. Every response is checked (the own client checks each one; before
 * each wrk run one request is checked, and wrk's count of non-2xx responses
 * and socket errors must be zero), so a broken server cannot print a fast
 * figure. Figures: wall ns per request (1e9 / figure is the requests per
 * second over all connections) for pact's four handler styles (a callback
 * handler; _promise; _task; _async: a PACT_ASYNC function), each beside the
 * anchors, and each one's _cpu twin, the server's CPU time per request
 * (its thread's for the C servers, the whole process's for Node and Go).
 * README.md says more. */
#include "config.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_EVHTTP
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#endif

#define CONNS 50
#define REQUESTS 50000L
#define WRK_SECONDS 1
#define HELLO "hello world\n"
/* Keys sorted and compact: what every server writes back, Go's
 * encoding/json (which sorts a map's keys) included, so that the drivers
 * can compare the answer with what they sent byte for byte. */
#define ECHO_BODY                                                              \
    "{\"id\":42,\"name\":\"pact\",\"ok\":true,\"tags\":[\"http\",\"bench\"],"  \
    "\"user\":{\"age\":7,\"nick\":\"ev\"}}"

/* ---- the endpoints --------------------------------------------------------
 */

enum endpoint { EP_HELLO, EP_ECHO };

struct ep_def {
    const char *what; /* for messages: the figure's base name */
    const char *path;
    const char *body; /* the response's expected body */
    size_t blen;
    char req[512]; /* the whole request the own client sends */
    size_t rlen;
};

static struct ep_def eps[2] = {
    {"http.hello", "/", HELLO, sizeof HELLO - 1, "", 0},
    {"http.echo", "/echo", ECHO_BODY, sizeof ECHO_BODY - 1, "", 0},
};

static void eps_init(void)
{
    int n = snprintf(eps[EP_HELLO].req, sizeof eps[EP_HELLO].req,
                     "GET / HTTP/1.1\r\nHost: bench\r\n\r\n");
    eps[EP_HELLO].rlen = (size_t)n;
    n = snprintf(eps[EP_ECHO].req, sizeof eps[EP_ECHO].req,
                 "POST /echo HTTP/1.1\r\nHost: bench\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 sizeof ECHO_BODY - 1, ECHO_BODY);
    eps[EP_ECHO].rlen = (size_t)n;
    setenv("PACT_BENCH_ECHO_BODY", ECHO_BODY, 1); /* for wrk_echo.lua */
}

/* ---- the bench's own load client ------------------------------------------
 */

struct load {
    int port;
    enum endpoint ep;
    double ns; /* the figure: wall ns per request */
    long reqs; /* the requests the server answered, checks included */
};

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        bench_fail("http: the client cannot connect: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return fd;
}

/* One connection's input: whole responses are taken off its front. */
struct cin {
    char buf[4096];
    size_t len;
};

/* @return how many whole responses @p c held (and drops them), each
 * checked: status 200, the expected Content-Length and body. */
static int responses(struct cin *c, const struct ep_def *e)
{
    int n = 0;
    for (;;) {
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            break;
        const char *cl = strcasestr(c->buf, "\r\nContent-Length: ");
        if (strncmp(c->buf, "HTTP/1.1 200 ", 13) != 0 || !cl || cl > end ||
            strtoul(cl + 18, NULL, 10) != e->blen)
            bench_fail("%s: not the response expected: %.300s", e->what,
                       c->buf);
        size_t whole = (size_t)(end - c->buf) + 4 + e->blen;
        if (c->len < whole)
            break;
        if (memcmp(end + 4, e->body, e->blen) != 0)
            bench_fail("%s: not the body expected: %.300s", e->what, end + 4);
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
        bench_fail("http: cannot say exit");
    char b[512];
    while (recv(fd, b, sizeof b, 0) > 0)
        ;
    close(fd);
}

/* One request on a connection of its own, its response checked: what a
 * wrk run is preceded by, as wrk only counts statuses. */
static void check_once(int port, const struct ep_def *e)
{
    int fd = dial(port);
    struct cin c = {.len = 0};
    if (send(fd, e->req, e->rlen, MSG_NOSIGNAL) < 0)
        bench_fail("%s: the check's send failed", e->what);
    while (responses(&c, e) == 0) {
        ssize_t r = recv(fd, c.buf + c.len, sizeof c.buf - 1 - c.len, 0);
        if (r <= 0)
            bench_fail("%s: the server closed the check's connection", e->what);
        c.len += (size_t)r;
    }
    close(fd);
}

static void own_client(struct load *l)
{
    const struct ep_def *e = &eps[l->ep];
    int ep = epoll_create1(0), fds[CONNS];
    static struct cin in[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fds[i] = dial(l->port);
        in[i].len = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    long sent = 0, done = 0;
    double t0 = bench_wall_ns();
    for (int i = 0; i < CONNS; i++, sent++)
        if (send(fds[i], e->req, e->rlen, MSG_NOSIGNAL) < 0)
            bench_fail("%s: the client's send failed", e->what);
    while (done < REQUESTS) {
        struct epoll_event ev[CONNS];
        int n = epoll_wait(ep, ev, CONNS, 5000);
        if (n <= 0)
            bench_fail("%s: no response for 5 s (%ld of %ld)", e->what, done,
                       REQUESTS);
        for (int k = 0; k < n; k++) {
            int i = (int)ev[k].data.u32;
            struct cin *c = &in[i];
            ssize_t r =
                recv(fds[i], c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
            if (r <= 0)
                bench_fail("%s: the server closed a connection", e->what);
            c->len += (size_t)r;
            int got = responses(c, e);
            done += got;
            for (int g = 0; g < got && sent < REQUESTS; g++, sent++)
                if (send(fds[i], e->req, e->rlen, MSG_NOSIGNAL) < 0)
                    bench_fail("%s: the client's send failed", e->what);
        }
    }
    l->ns = bench_wall_ns() - t0;
    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    close(ep);
    l->ns /= REQUESTS;
    l->reqs = REQUESTS;
}

/* ---- wrk ------------------------------------------------------------------
 */

static const char *wrk_path(void)
{
    const char *w = getenv("PACT_BENCH_WRK");
    return w && *w ? w : NULL;
}

/* Run wrk against @p l's server for WRK_SECONDS (from this thread, so that
 * it inherits the client core) and read its summary. */
static void wrk_client(struct load *l)
{
    const struct ep_def *e = &eps[l->ep];
    const char *lua = getenv("PACT_BENCH_WRK_LUA");
    char cmd[4096], script[2100] = "";
    check_once(l->port, e);
    if (l->ep == EP_ECHO)
        snprintf(script, sizeof script, "-s '%s' ",
                 lua && *lua ? lua : "test/bench/wrk_echo.lua");
    snprintf(cmd, sizeof cmd,
             "'%s' -t1 -c%d -d%ds %shttp://127.0.0.1:%d%s 2>&1", wrk_path(),
             CONNS, WRK_SECONDS, script, l->port, e->path);
    FILE *p = popen(cmd, "r");
    if (!p)
        bench_fail("%s: cannot run %s", e->what, cmd);
    char line[512], errs[512] = "";
    double rps = -1;
    long reqs = -1, non2xx = 0;
    while (fgets(line, sizeof line, p)) {
        const char *s = line + strspn(line, " \t");
        if (strstr(s, " requests in "))
            reqs = strtol(s, NULL, 10);
        else if (strncmp(s, "Requests/sec:", 13) == 0)
            rps = strtod(s + 13, NULL);
        else if (strncmp(s, "Non-2xx or 3xx responses:", 25) == 0)
            non2xx = strtol(s + 25, NULL, 10);
        else if (strncmp(s, "Socket errors:", 14) == 0)
            snprintf(errs, sizeof errs, "%s", s);
    }
    int status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_fail("%s: exit status %d", cmd, status);
    if (reqs <= 0 || rps <= 0)
        bench_fail("%s: no request count in wrk's output", cmd);
    if (non2xx != 0)
        bench_fail("%s: %ld responses were not 2xx", cmd, non2xx);
    if (*errs)
        bench_fail("%s: %s", cmd, errs);
    l->ns = 1e9 / rps;
    l->reqs = reqs + 1; /* and the check; those in flight at the end are
                           not counted, at most CONNS */
}

/* The load on @p l's server from the client core: wrk or the own client. */
static void *load_main(void *arg)
{
    struct load *l = arg;
    bench_pin(1);
    if (wrk_path())
        wrk_client(l);
    else
        own_client(l);
    return NULL;
}

/* The load, then /exit: for servers on the benchmark's thread's loop. */
static void *load_then_exit(void *arg)
{
    struct load *l = arg;
    load_main(l);
    say_exit(l->port);
    return NULL;
}

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- pact: the four styles ------------------------------------------------
 */

enum style { CALLBACKS, PROMISES, TASKS, ASYNC, NSTYLES };

struct pact_ctx {
    enum style style;
    enum endpoint ep;
};

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

/* The echo's work: parse the body with jansson, answer it back as JSON. */
static pact_http_res *echo(pact_http_req *req)
{
    json_t *j = pact_http_req_json(req);
    if (!j)
        bench_fail("http.echo: the body is not JSON");
    pact_http_res *res = pact_http_res_new_json(200, j);
    json_decref(j);
    if (!res)
        bench_fail("http.echo: no response");
    return res;
}

static pact_http_res *answer(pact_http_req *req, void *ud)
{
    return ud ? echo(req) : hello();
}

static void h_cb(pact_http_req *req, void *ud)
{
    pact_http_respond(req, answer(req, ud));
}

static pact_promise *h_promise(pact_http_req *req, void *ud)
{
    return pact_resolved(ploop, pact_http_res_value(answer(req, ud)));
}

static pact_error *h_task(pact_http_req *req, pact_http_res **res, void *ud)
{
    *res = answer(req, ud);
    return NULL;
}

struct h_frame {
    PACT_ASYNC_FRAME;
    pact_http_req *req;
    void *ud;
};

static pact_error *h_async_body(pact_async *a, pact_value *result)
{
    struct h_frame *f = (struct h_frame *)a;
    PACT_ASYNC_BEGIN(a);
    *result = pact_http_res_value(answer(f->req, f->ud));
    PACT_ASYNC_END(a);
}

static pact_promise *h_async(pact_http_req *req, void *ud)
{
    struct h_frame *f = pact_async_new(ploop, sizeof *f, h_async_body);
    if (!f)
        return NULL;
    f->req = req;
    f->ud = ud;
    return pact_async_start(f);
}

static void h_exit(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_http_reply(req, 200, NULL, "bye", 3);
    pact_http_server_close(psrv, NULL, NULL);
}

/* Route @p method @p path to the handler of @p style; @p ud non-NULL
 * makes it the echo. */
static void route(enum style style, const char *method, const char *path,
                  void *ud)
{
    if (style == CALLBACKS)
        BENCH_CHECK(pact_http_route(psrv, method, path, h_cb, ud));
    else if (style == PROMISES)
        BENCH_CHECK(pact_http_route_p(psrv, method, path, h_promise, ud));
    else if (style == TASKS)
        BENCH_CHECK(pact_http_route_task(psrv, method, path, h_task, ud));
    else
        BENCH_CHECK(pact_http_route_p(psrv, method, path, h_async, ud));
}

static void pact_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    struct pact_ctx *c = ctx;
    static int echo_ud;
    ploop = bench_new_loop();
    BENCH_CHECK(pact_http_listen(ploop, "127.0.0.1", 0, NULL, &psrv));
    BENCH_CHECK(pact_http_route(psrv, "GET", "/exit", h_exit, NULL));
    route(c->style, "GET", "/", NULL);
    route(c->style, "POST", "/echo", &echo_ud);
    struct load l = {pact_http_server_port(psrv), c->ep, 0, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, load_then_exit, &l) != 0)
        bench_fail("http: no load thread");
    double c0 = thread_cpu_ns();
    bench_run_loop(ploop);
    double cpu = thread_cpu_ns() - c0;
    pthread_join(t, NULL);
    BENCH_CHECK(pact_loop_free(ploop));
    figs[0] = l.ns;
    figs[1] = cpu / (double)(l.reqs + 1); /* and /exit */
}

/* ---- evhttp (libevent's HTTP server) --------------------------------------
 */

#ifdef HAVE_EVHTTP
static void ev_reply(struct evhttp_request *req, const char *type,
                     const char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      type);
    evbuffer_add(b, body, len);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void ev_handler(struct evhttp_request *req, void *arg)
{
    struct event_base *base = arg;
    const char *uri = evhttp_request_get_uri(req);
    if (strcmp(uri, "/exit") == 0) {
        ev_reply(req, "text/plain", "bye", 3);
        event_base_loopexit(base, NULL);
    } else if (strcmp(uri, "/echo") == 0 &&
               evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        json_t *j = json_loadb((const char *)evbuffer_pullup(in, -1), n,
                               JSON_DECODE_ANY, NULL);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (!s)
            bench_fail("http.echo: evhttp got no JSON");
        ev_reply(req, "application/json", s, strlen(s));
        free(s);
        json_decref(j);
    } else {
        ev_reply(req, "text/plain", HELLO, sizeof HELLO - 1);
    }
}

static void evhttp_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (!bs)
        bench_fail("http: evhttp cannot listen");
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a, &al);
    evhttp_set_gencb(http, ev_handler, base);
    struct load l = {ntohs(a.sin_port), *(enum endpoint *)ctx, 0, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, load_then_exit, &l) != 0)
        bench_fail("http: no load thread");
    double c0 = thread_cpu_ns();
    event_base_dispatch(base);
    double cpu = thread_cpu_ns() - c0;
    evhttp_free(http); /* closes the /exit connection, which the client reads */
    pthread_join(t, NULL);
    event_base_free(base);
    figs[0] = l.ns;
    figs[1] = cpu / (double)(l.reqs + 1);
}
#endif

/* Whether the servers are pinned to the first core (the C servers' thread,
 * Go's process): yes, unless PACT_BENCH_HTTP_PIN=0. On a quiet machine
 * pinning keeps the server and the driver on cores of their own; on a
 * busy one a pinned server waits for its core while a neighbour holds it,
 * though the other may be free, and Node's process is never pinned. */
static int pin_servers(void)
{
    const char *v = getenv("PACT_BENCH_HTTP_PIN");
    return !(v && strcmp(v, "0") == 0);
}

/* ---- Node's http and Go's net/http: servers in processes of their own ----
 */

/* A server process: node/http_hello.js or `anchors http-server`; it
 * prints its port and stops on /exit. */
struct proc {
    FILE *p;
    char cmd[4096];
    int port;
    enum endpoint ep;
};

static void proc_start(struct proc *s)
{
    s->p = popen(s->cmd, "r");
    s->port = 0;
    if (!s->p || fscanf(s->p, "%d", &s->port) != 1 || s->port <= 0)
        bench_fail("%s: printed no port", s->cmd);
}

static void proc_stop(struct proc *s)
{
    say_exit(s->port);
    if (pclose(s->p) != 0)
        bench_fail("%s: failed", s->cmd);
}

/* @return the CPU time the server process @p port has used (all its
 * threads, user and system), in ns: its answer to `GET /cpu`. */
static double proc_cpu_ns(int port)
{
    static const char q[] =
        "GET /cpu HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    int fd = dial(port);
    char b[1024];
    size_t n = 0;
    ssize_t r;
    if (send(fd, q, sizeof q - 1, MSG_NOSIGNAL) < 0)
        bench_fail("http: cannot ask for /cpu");
    while (n < sizeof b - 1 && (r = recv(fd, b + n, sizeof b - 1 - n, 0)) > 0)
        n += (size_t)r;
    close(fd);
    b[n] = '\0';
    const char *body = strstr(b, "\r\n\r\n");
    double ns = body ? strtod(body + 4, NULL) : -1;
    if (strncmp(b, "HTTP/1.1 200 ", 13) != 0 || ns <= 0)
        bench_fail("http: not the /cpu answer expected: %.200s", b);
    return ns;
}

static void proc_run(void *ctx, double figs[BENCH_MAX_FIGS])
{
    struct proc *s = ctx;
    struct load l = {s->port, s->ep, 0, 0};
    double c0 = proc_cpu_ns(s->port);
    pthread_t t;
    if (pthread_create(&t, NULL, load_main, &l) != 0)
        bench_fail("http: no load thread");
    pthread_join(t, NULL);
    figs[0] = l.ns;
    figs[1] = (proc_cpu_ns(s->port) - c0) / (double)l.reqs;
}

/* Measure the server @p s->cmd into @p figs (ns per request, its CPU
 * time per request), best of 3 after a warm-up, all against one process;
 * @p pin: the process is started from this thread pinned to the server
 * core, so that it runs there as the C servers do. */
static void proc_measure(struct proc *s, int pin, double figs[BENCH_MAX_FIGS])
{
    if (pin)
        bench_pin(0);
    proc_start(s);
    if (pin)
        bench_unpin();
    bench_best(proc_run, s, figs);
    proc_stop(s);
}

/* Node's figures, left at -1 without Node. Node's process is not pinned
 * (its own threads do its garbage collection and I/O). */
static void node_measure(enum endpoint ep, double figs[BENCH_MAX_FIGS])
{
    const char *node = getenv("PACT_BENCH_NODE");
    const char *dir = getenv("PACT_BENCH_JS");
    if (!node || !*node)
        return;
    struct proc s = {.ep = ep};
    snprintf(s.cmd, sizeof s.cmd, "'%s' '%s/http_hello.js'", node,
             dir && *dir ? dir : "test/bench/node");
    proc_measure(&s, 0, figs);
}

/* Go's figures, left at -1 without Go: pinned to the server core as the C
 * servers are (GOMAXPROCS=1: one thread runs its goroutines, as one runs
 * pact's). */
static void go_measure(enum endpoint ep, double figs[BENCH_MAX_FIGS])
{
    const char *bin = bench_go_program();
    if (!bin)
        return;
    struct proc s = {.ep = ep};
    snprintf(s.cmd, sizeof s.cmd, "'%s' http-server", bin);
    proc_measure(&s, pin_servers(), figs);
}

static void bench_endpoint(enum endpoint ep)
{
    double p[NSTYLES][BENCH_MAX_FIGS], ev[BENCH_MAX_FIGS] = {-1, -1},
                                       nd[BENCH_MAX_FIGS] = {-1, -1},
                                       go[BENCH_MAX_FIGS] = {-1, -1};
    eps_init();
    if (wrk_path())
        fprintf(stderr,
                "bench: %s: driven by wrk (-t1 -c%d -d%ds, %s), on core 1\n",
                eps[ep].what, CONNS, WRK_SECONDS,
                ep == EP_ECHO ? "-s wrk_echo.lua" : "a plain GET");
    else
        fprintf(stderr,
                "bench: %s: driven by the bench's own client (%d "
                "connections, %ld requests; no wrk), on core 1\n",
                eps[ep].what, CONNS, REQUESTS);
    if (pin_servers())
        bench_pin(0); /* the C servers on one core, the driver on the other */
    else
        fprintf(stderr,
                "bench: %s: servers not pinned "
                "(PACT_BENCH_HTTP_PIN=0)\n",
                eps[ep].what);
    for (int st = CALLBACKS; st < NSTYLES; st++) {
        struct pact_ctx c = {(enum style)st, ep};
        bench_best(pact_run, &c, p[st]);
    }
#ifdef HAVE_EVHTTP
    bench_best(evhttp_run, &ep, ev);
#endif
    bench_unpin();
    node_measure(ep, nd);
    go_measure(ep, go);
    static const char *const names[2][NSTYLES] = {
        {"http.hello", "http.hello_promise", "http.hello_task",
         "http.hello_async"},
        {"http.echo", "http.echo_promise", "http.echo_task",
         "http.echo_async"}};
    for (int f = 0; f < 2; f++) {
        bench_anchor a[] = {{"evhttp", ev[f]}, {"node", nd[f]}, {"go", go[f]}};
        for (int st = CALLBACKS; st < NSTYLES; st++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", names[ep][st], f ? "_cpu" : "");
            bench_print(name, "ns", p[st][f], a, 3);
        }
    }
}

static void bench_hello(void)
{
    bench_endpoint(EP_HELLO);
}

static void bench_echo(void)
{
    bench_endpoint(EP_ECHO);
}

const bench_def bench_http[] = {
    {"http.hello", bench_hello},
    {"http.echo", bench_echo},
    {NULL, NULL},
};
