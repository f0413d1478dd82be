/* The HTTP server (pact/http.h) on 127.0.0.1 with real sockets: the server's
 * loop runs on a thread of its own, the test is the client (raw sockets,
 * and curl where installed). Every handler style gives the same bytes; each
 * bad request gets its 4xx (or 505) and closes only its own connection;
 * slowloris is cut at the head's deadline; pipelined responses come in
 * order; 100-continue; a client that goes cancels its handler's timer and
 * task; 200 keep-alive clients at once; every run ends with the server
 * closed and pact_loop_free succeeding. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <pact.h>

#include "helpers.h"
#include "suites.h"

/* ---- the server, on its own thread --------------------------------------- */

static struct {
    struct t_http h;
    atomic_int cancelled; /* handlers' operations that saw ECANCELED */
    atomic_int handled;
    atomic_int slow_started;          /* h_slow calls */
    atomic_int shut_calls, shut_code; /* pact_http_server_shutdown's cb */
    uint64_t shut_ms;
    atomic_int twice[4]; /* the answers after the first (PACT_EALREADY) */
    atomic_int twice_n;
} S;

/* the styles: each answers 200 with the same headers and body */
static pact_http_res *hello_res(pact_http_req *req)
{
    char body[128];
    int n = snprintf(body, sizeof body, "hello %s q=%s\n",
                     pact_http_req_param(req, "id"), pact_http_req_query(req));
    pact_http_res *res = pact_http_res_new(200);
    pact_http_res_header(res, "Content-Type", "text/plain");
    pact_http_res_header(res, "X-Id", pact_http_req_param(req, "id"));
    pact_http_res_body(res, body, (size_t)n);
    return res;
}

static void h_cb_later(pact_error *err, void *ud)
{
    (void)err;
    pact_http_respond(ud, hello_res(ud));
}

static void h_cb(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(S.h.loop, 1, h_cb_later, req, &h), 0);
}

static pact_value to_res(const pact_value *v, void *ud)
{
    (void)v;
    return pact_http_res_value(hello_res(ud));
}

static pact_promise *h_promise(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_promise *d = pact_delay(S.h.loop, 1, NULL);
    pact_promise *p = pact_then(d, to_res, NULL, req);
    pact_promise_unref(d);
    return p;
}

static pact_error *h_task(pact_http_req *req, pact_http_res **res, void *ud)
{
    (void)ud;
    /* named by its route in stall reports and the dump: else a 500 */
    const char *name = pact_task_name(pact_task_current());
    if (strcmp(name, "GET /task/:id") != 0)
        return PACT_ERROR(PACT_EINVAL, "the handler's task is named %s", name);
    pact_error *err = pact_sleep(1);
    if (err)
        return err;
    *res = hello_res(req);
    return NULL;
}

struct h_async {
    PACT_ASYNC_FRAME;
    pact_http_req *req;
};

static pact_error *h_async_body(pact_async *a, pact_value *result)
{
    struct h_async *f = (struct h_async *)a;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_TRY(a, pact_delay(S.h.loop, 1, NULL), NULL);
    *result = pact_http_res_value(hello_res(f->req));
    PACT_ASYNC_END(a);
}

static pact_promise *h_async(pact_http_req *req, void *ud)
{
    (void)ud;
    struct h_async *f = pact_async_new(S.h.loop, sizeof *f, h_async_body);
    if (!f)
        return NULL;
    f->req = req;
    return pact_async_start(f);
}

/* echoes the body */
static void h_echo(pact_http_req *req, void *ud)
{
    (void)ud;
    size_t len;
    const void *b = pact_http_req_body(req, &len);
    pact_http_reply(req, 200, "application/octet-stream", b, len);
}

/* a JSON round trip */
static void h_json(pact_http_req *req, void *ud)
{
    (void)ud;
    json_t *in = pact_http_req_json(req);
    json_t *out = json_pack("{s:o?}", "got", in);
    pact_http_respond(req, pact_http_res_new_json(in ? 200 : 400, out));
    json_decref(out);
}

/* failing handlers: 500 */
static pact_promise *h_reject(pact_http_req *req, void *ud)
{
    (void)req, (void)ud;
    return pact_rejected(S.h.loop, PACT_ERROR(PACT_EIO, "handler failed"));
}

static pact_error *h_task_fail(pact_http_req *req, pact_http_res **res,
                               void *ud)
{
    (void)req, (void)res, (void)ud;
    return PACT_ERROR(PACT_EIO, "task handler failed");
}

/* slow answers, for the pipelining order */
static void h_slow(pact_http_req *req, void *ud)
{
    (void)ud;
    atomic_fetch_add(&S.slow_started, 1);
    t_http_path_later(S.h.loop, req, 80);
}

/* a handler whose timer is cancelled when the client goes */
static void h_hang_timer(pact_error *err, void *ud)
{
    if (err && pact_error_code(err) == PACT_ECANCELED)
        atomic_fetch_add(&S.cancelled, 1);
    pact_http_reply(ud, 200, NULL, "late", 4);
}

static void h_hang(pact_http_req *req, void *ud)
{
    (void)ud;
    atomic_fetch_add(&S.handled, 1);
    pact_handle h;
    ck_assert_int_eq(pact_timeout(S.h.loop, 10000, h_hang_timer, req, &h), 0);
}

static pact_error *h_hang_task(pact_http_req *req, pact_http_res **res,
                               void *ud)
{
    (void)req, (void)ud;
    atomic_fetch_add(&S.handled, 1);
    pact_error *err = pact_sleep(10000);
    if (err && pact_error_code(err) == PACT_ECANCELED)
        atomic_fetch_add(&S.cancelled, 1);
    if (err)
        return err;
    *res = pact_http_res_new(200);
    return NULL;
}

/* an async handler whose delay is the request's (made while its token is
 * ambient) */
struct h_hang_async {
    PACT_ASYNC_FRAME;
    pact_error *err;
};

static pact_error *h_hang_async_body(pact_async *a, pact_value *result)
{
    struct h_hang_async *f = (struct h_hang_async *)a;
    PACT_ASYNC_BEGIN(a);
    atomic_fetch_add(&S.handled, 1);
    PACT_ASYNC_AWAIT_ERR(a, pact_delay(S.h.loop, 10000, NULL), NULL, f->err);
    if (f->err && pact_error_code(f->err) == PACT_ECANCELED)
        atomic_fetch_add(&S.cancelled, 1);
    if (f->err)
        return f->err;
    *result = pact_http_res_value(pact_http_res_new(200));
    PACT_ASYNC_END(a);
}

static pact_promise *h_hang_async(pact_http_req *req, void *ud)
{
    (void)req, (void)ud;
    struct h_hang_async *f =
        pact_async_new(S.h.loop, sizeof *f, h_hang_async_body);
    return f ? pact_async_start(f) : NULL;
}

/* handlers that block their loop, for the stall detector */
static void h_block(pact_http_req *req, void *ud)
{
    (void)ud;
    usleep(100 * 1000);
    pact_http_reply(req, 200, "text/plain", "late\n", 5);
}

static pact_promise *h_pblock(pact_http_req *req, void *ud)
{
    (void)ud;
    usleep(100 * 1000);
    return pact_resolved(S.h.loop, pact_http_res_value(hello_res(req)));
}

static pact_error *h_tblock(pact_http_req *req, pact_http_res **res, void *ud)
{
    (void)ud;
    usleep(100 * 1000);
    *res = hello_res(req);
    return NULL;
}

/* answers, then answers again: at once, and on a later turn, after the
 * request has been written and retired (no use after free: ASan and
 * valgrind run this) */
static void h_twice_later(pact_error *err, void *ud)
{
    (void)err;
    atomic_store(&S.twice[2], pact_http_respond(ud, pact_http_res_new(500)));
    atomic_store(&S.twice[3], pact_http_reply(ud, 500, NULL, "x", 1));
    atomic_fetch_add(&S.twice_n, 1);
}

static void h_twice(pact_http_req *req, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_http_reply(req, 200, "text/plain", "once\n", 5), 0);
    atomic_store(&S.twice[0], pact_http_respond(req, pact_http_res_new(500)));
    atomic_store(&S.twice[1], pact_http_reply(req, 500, NULL, "x", 1));
    /* the request stays readable, if empty */
    ck_assert_ptr_nonnull(pact_http_req_method(req));
    pact_handle h;
    ck_assert_int_eq(pact_timeout(S.h.loop, 20, h_twice_later, req, &h), 0);
}

static void routes(pact_http_server *srv)
{
    ck_assert_int_eq(
        pact_http_route_task(srv, "GET", "/tblock", h_tblock, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/twice", h_twice, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/block", h_block, NULL), 0);
    ck_assert_int_eq(pact_http_route_p(srv, "GET", "/pblock", h_pblock, NULL),
                     0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/cb/:id", h_cb, NULL), 0);
    ck_assert_int_eq(pact_http_route_p(srv, "GET", "/p/:id", h_promise, NULL),
                     0);
    ck_assert_int_eq(
        pact_http_route_task(srv, "GET", "/task/:id", h_task, NULL), 0);
    ck_assert_int_eq(pact_http_route_p(srv, "GET", "/async/:id", h_async, NULL),
                     0);
    ck_assert_int_eq(pact_http_route(srv, NULL, "/echo", h_echo, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "POST", "/json", h_json, NULL), 0);
    ck_assert_int_eq(pact_http_route_p(srv, "GET", "/reject", h_reject, NULL),
                     0);
    ck_assert_int_eq(
        pact_http_route_task(srv, "GET", "/taskfail", h_task_fail, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/slow/*", h_slow, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/hang", h_hang, NULL), 0);
    ck_assert_int_eq(
        pact_http_route_task(srv, "GET", "/hangtask", h_hang_task, NULL), 0);
    ck_assert_int_eq(
        pact_http_route_p(srv, "GET", "/hangasync", h_hang_async, NULL), 0);
}

static void start(const pact_http_opts *o)
{
    memset(&S, 0, sizeof S);
    if (o)
        S.h.opts = *o;
    S.h.routes = routes;
    t_http_start(&S.h);
}

/* close the server (its open connections once answered) and join */
static void stop(void)
{
    t_http_stop(&S.h);
}

/* ---- the raw client ------------------------------------------------------ */

static int dial(void)
{
    int fd = t_dial(S.h.port, 5);
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return fd;
}

static void put(int fd, const char *s, size_t n)
{
    ck_assert_int_eq(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

#define PUT(fd, s) put((fd), (s), strlen(s))

/* Read one response (head, then Content-Length bytes) into a malloc'd
 * string, its Date line dropped; NULL at EOF before any byte. */
static char *response(int fd)
{
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap + 1);
    char *end = NULL;
    size_t want = 0;
    for (;;) {
        if (end && len >= want)
            break;
        ssize_t r = recv(fd, b + len, 1, 0); /* byte by byte: stop exactly */
        if (r <= 0)
            break;
        len++;
        b[len] = '\0';
        if (!end && (end = strstr(b, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(b, "\r\nContent-Length: ");
            size_t n = cl ? strtoul(cl + 18, NULL, 10) : 0;
            want = (size_t)(end - b) + 4 + n;
            if (!strncmp(b, "HTTP/1.1 100", 12)) { /* an interim one */
                len = 0, end = NULL;
                b[0] = '\0';
            }
        }
    }
    if (!len) {
        free(b);
        return NULL;
    }
    b[len] = '\0';
    char *d = strstr(b, "\r\nDate: ");
    if (d) {
        char *e = strstr(d + 2, "\r\n");
        memmove(d, e, strlen(e) + 1);
    }
    return b;
}

static int status_of(const char *r)
{
    return r && !strncmp(r, "HTTP/1.1 ", 9) ? atoi(r + 9) : 0;
}

/* the peer closed (EOF or reset) within the receive timeout */
static bool closed(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) <= 0;
}

/* one request on a fresh connection; its response */
static char *once(const char *req)
{
    int fd = dial();
    PUT(fd, req);
    char *r = response(fd);
    close(fd);
    return r;
}

/* ---- the tests ----------------------------------------------------------- */

START_TEST(styles_same_bytes)
{
    start(NULL);
    const char *paths[] = {"/cb/7?x=1", "/p/7?x=1", "/task/7?x=1",
                           "/async/7?x=1"};
    char *first = NULL;
    for (size_t i = 0; i < 4; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
                 paths[i]);
        char *r = once(req);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(status_of(r), 200);
        ck_assert_ptr_nonnull(strstr(r, "hello 7 q=x=1\n"));
        if (!first)
            first = r;
        else {
            ck_assert_str_eq(r, first);
            free(r);
        }
    }
    free(first);
    stop();
}
END_TEST

/* ---- the stall detector names the handler ------------------------------- */

/* reports naming h_block, h_pblock, h_tblock */
static atomic_int named_cb, named_p, named_t;
static sem_t watching;

static void on_stall(const pact_stall *st, void *ud)
{
    (void)ud;
    if (st->fn == (void (*)(void))h_block)
        atomic_fetch_add(&named_cb, 1);
    else if (st->fn == (void (*)(void))h_pblock)
        atomic_fetch_add(&named_p, 1);
    else if (st->fn == (void (*)(void))h_tblock)
        atomic_fetch_add(&named_t, 1);
}

static void watch(void *ud)
{
    ck_assert_int_eq(pact_loop_watch_stalls(S.h.loop, 20, on_stall, ud), 0);
    sem_post(&watching);
}

/* A callback, promise or task handler that blocks the loop is what a stall
 * report names (its function), not the server's code that called it. */
START_TEST(stall_names_the_handler)
{
    start(NULL);
    atomic_store(&named_cb, 0);
    atomic_store(&named_p, 0);
    atomic_store(&named_t, 0);
    sem_init(&watching, 0, 0);
    ck_assert_int_eq(pact_loop_post(S.h.loop, watch, NULL), 0);
    sem_wait(&watching);
    /* a loaded machine may not run the watchdog in time: try again */
    for (int i = 0; i < 20 && !atomic_load(&named_cb); i++) {
        char *r = once("GET /block HTTP/1.1\r\nHost: t\r\n\r\n");
        ck_assert_int_eq(status_of(r), 200);
        free(r);
    }
    for (int i = 0; i < 20 && !atomic_load(&named_p); i++) {
        char *r = once("GET /pblock HTTP/1.1\r\nHost: t\r\n\r\n");
        ck_assert_int_eq(status_of(r), 200);
        free(r);
    }
    for (int i = 0; i < 20 && !atomic_load(&named_t); i++) {
        char *r = once("GET /tblock HTTP/1.1\r\nHost: t\r\n\r\n");
        ck_assert_int_eq(status_of(r), 200);
        free(r);
    }
    ck_assert_int_gt(atomic_load(&named_cb), 0);
    ck_assert_int_gt(atomic_load(&named_p), 0);
    ck_assert_int_gt(atomic_load(&named_t), 0);
    stop(); /* pact_loop_free stops the watchdog */
    sem_destroy(&watching);
}
END_TEST

START_TEST(errors_are_500_and_keep_alive)
{
    start(NULL);
    int fd = dial();
    const char *paths[] = {"/reject", "/taskfail", "/nowhere", "/json"};
    int want[] = {500, 500, 404, 405};
    for (int i = 0; i < 4; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
                 paths[i]);
        PUT(fd, req);
        char *r = response(fd);
        ck_assert_int_eq(status_of(r), want[i]);
        free(r);
    }
    PUT(fd, "POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n"
            "{\"a\":1}");
    char *r = response(fd);
    ck_assert_int_eq(status_of(r), 200);
    ck_assert_ptr_nonnull(strstr(r, "{\"got\":{\"a\":1}}"));
    free(r);
    close(fd);
    stop();
}
END_TEST

static const struct bad {
    const char *what, *req;
    int status;
} bad[] = {
    {"obs-fold", "GET /echo HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400},
    {"space in a name", "GET /echo HTTP/1.1\r\nHost: t\r\nX Y: a\r\n\r\n", 400},
    {"space before the colon", "GET /echo HTTP/1.1\r\nHost: t\r\nX : a\r\n\r\n",
     400},
    {"control byte in a value",
     "GET /echo HTTP/1.1\r\nHost: t\r\nX: a\x01z\r\n\r\n", 400},
    {"bare LF", "GET /echo HTTP/1.1\nHost: t\n\n", 400},
    {"+5", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello",
     400},
    {"5, 6",
     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello",
     400},
    {"two lengths",
     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     "Content-Length: 5\r\n\r\nhello",
     400},
    {"length and chunked",
     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400},
    {"gzip last",
     "POST /echo HTTP/1.1\r\nHost: t\r\n"
     "Transfer-Encoding: chunked, gzip\r\n\r\n",
     400},
    {"no Host", "GET /echo HTTP/1.1\r\n\r\n", 400},
    {"two Hosts", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"bad chunk size",
     "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     "zz\r\nhello\r\n0\r\n\r\n",
     400},
    {"garbage line", "HELLO\r\n\r\n", 400},
    {"bad target", "GET echo HTTP/1.1\r\nHost: t\r\n\r\n", 400},
    {"HTTP/2.0", "GET /echo HTTP/2.0\r\nHost: t\r\n\r\n", 505},
    {"unknown method", "BREW /echo HTTP/1.1\r\nHost: t\r\n\r\n", 501},
    {"Expect other", "GET /echo HTTP/1.1\r\nHost: t\r\nExpect: tea\r\n\r\n",
     417},
    {"body over the limit",
     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n", 413},
    {"chunked over the limit",
     "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     "400\r\n",
     413},
};

static char *repeat(const char *line, int n, const char *pre, const char *post)
{
    size_t ll = strlen(line);
    char *b = malloc(strlen(pre) + ll * (size_t)n + strlen(post) + 1);
    strcpy(b, pre);
    for (int i = 0; i < n; i++)
        strcat(b, line);
    strcat(b, post);
    return b;
}

START_TEST(bad_requests)
{
    pact_http_opts o = {
        .max_body = 1000, .max_header_bytes = 2048, .max_headers = 20};
    start(&o);
    /* a bystander: a keep-alive connection that must not notice */
    int by = dial();
    PUT(by, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    free(response(by));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd = dial();
        PUT(fd, bad[i].req);
        char *r = response(fd);
        ck_assert_msg(status_of(r) == bad[i].status, "%s: got %s", bad[i].what,
                      r ? r : "(closed)");
        ck_assert_ptr_nonnull(strstr(r, "Connection: close\r\n"));
        ck_assert_msg(closed(fd), "%s: left open", bad[i].what);
        free(r);
        close(fd);
    }
    char *big = repeat("X-Pad: 0123456789012345678901234567890123456789\r\n",
                       60, "GET /echo HTTP/1.1\r\nHost: t\r\n", "\r\n");
    char *many =
        repeat("A: b\r\n", 30, "GET /echo HTTP/1.1\r\nHost: t\r\n", "\r\n");
    char *huge = repeat("Y", 4000, "GET /", " HTTP/1.1\r\n");
    const char *big3[] = {big, many, huge};
    for (int i = 0; i < 3; i++) {
        char *r = once(big3[i]);
        ck_assert_msg(status_of(r) == 431, "%d: %s", i, r ? r : "(closed)");
        free(r);
    }
    free(big), free(many), free(huge);
    /* chunk extensions are allowed (RFC 9112 7.1.1) */
    char *r = once("POST /echo HTTP/1.1\r\nHost: t\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "5;name=value\r\nhello\r\n3 ; x\r\n!!!\r\n0\r\n\r\n");
    ck_assert_int_eq(status_of(r), 200);
    ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nhello!!!"));
    free(r);
    /* the bystander is still served */
    PUT(by, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    r = response(by);
    ck_assert_int_eq(status_of(r), 200);
    free(r);
    close(by);
    stop();
}
END_TEST

START_TEST(slowloris)
{
    pact_http_opts o = {.header_timeout_ms = 300};
    start(&o);
    int by = dial();
    const char *req = "GET /echo HTTP/1.1\r\nHost: t\r\nX-Slow: "
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int fd = dial();
    size_t sent = 0, n = strlen(req);
    uint64_t t0 = now_us();
    for (; sent < n; sent++) {
        if (send(fd, req + sent, 1, MSG_NOSIGNAL) != 1)
            break;
        struct timeval tv = {0};
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(fd, &rs);
        tv.tv_usec = 100000;
        if (select(fd + 1, &rs, NULL, NULL, &tv) > 0)
            break; /* the server said something */
    }
    ck_assert_uint_lt(sent, n); /* cut before the head was complete */
    char *r = response(fd);
    ck_assert_int_eq(status_of(r), 408);
    ck_assert(closed(fd));
    ck_assert_uint_ge(now_us() - t0, 250000);
    free(r);
    close(fd);
    PUT(by, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    r = response(by);
    ck_assert_int_eq(status_of(r), 200);
    free(r);
    close(by);
    stop();
}
END_TEST

/* A callback handler that answers twice gets PACT_EALREADY, the response
 * it passed freed, also once the request is written and retired. */
START_TEST(respond_twice)
{
    start(NULL);
    int fd = dial();
    PUT(fd, "GET /twice HTTP/1.1\r\nHost: t\r\n\r\n");
    char *r = response(fd);
    ck_assert_int_eq(status_of(r), 200);
    ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nonce\n"));
    free(r);
    close(fd); /* the request is written and its connection gone */
    uint64_t t0 = now_us();
    while (atomic_load(&S.twice_n) < 1 && now_us() - t0 < 10000000)
        sleep_ms(5);
    ck_assert_int_eq(atomic_load(&S.twice_n), 1);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(atomic_load(&S.twice[i]), PACT_EALREADY);
    stop();
}
END_TEST

START_TEST(pipelining_in_order)
{
    start(NULL);
    int fd = dial();
    PUT(fd, "GET /slow/a HTTP/1.1\r\nHost: t\r\n\r\n"
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nb"
            "GET /task/c HTTP/1.1\r\nHost: t\r\n\r\n"
            "GET /slow/d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    const char *want[] = {"/slow/a", "\r\n\r\nb", "hello c", "/slow/d"};
    for (int i = 0; i < 4; i++) {
        char *r = response(fd);
        ck_assert_int_eq(status_of(r), 200);
        ck_assert_msg(strstr(r, want[i]) != NULL, "%d: %s", i, r);
        free(r);
    }
    ck_assert(closed(fd));
    close(fd);
    stop();
}
END_TEST

START_TEST(expect_continue)
{
    start(NULL);
    int fd = dial();
    PUT(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            "Expect: 100-continue\r\n\r\n");
    char buf[64] = {0};
    const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
    ck_assert_int_eq(recv(fd, buf, strlen(cont), MSG_WAITALL),
                     (ssize_t)strlen(cont));
    ck_assert_str_eq(buf, cont);
    PUT(fd, "hello");
    char *r = response(fd);
    ck_assert_int_eq(status_of(r), 200);
    ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nhello"));
    free(r);
    close(fd);
    stop();
}
END_TEST

START_TEST(disconnect_cancels_handler)
{
    start(NULL);
    const char *paths[] = {"/hang", "/hangtask", "/hangasync"};
    for (int i = 0; i < 3; i++) {
        int fd = dial();
        char req[128];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
                 paths[i]);
        PUT(fd, req);
        while (atomic_load(&S.handled) < i + 1)
            sleep_ms(5);
        close(fd);
        uint64_t t0 = now_us();
        while (atomic_load(&S.cancelled) < i + 1 && now_us() - t0 < 3000000)
            sleep_ms(5);
        ck_assert_int_eq(atomic_load(&S.cancelled), i + 1);
    }
    stop();
}
END_TEST

/* An idle keep-alive connection is closed after idle_timeout_ms; HEAD
 * gets the headers of GET and no body. */
START_TEST(idle_timeout_and_head)
{
    pact_http_opts o = {.idle_timeout_ms = 150};
    start(&o);
    int fd = dial();
    PUT(fd, "HEAD /cb/1 HTTP/1.1\r\nHost: t\r\n\r\n");
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_int_eq(status_of(buf), 200);
    ck_assert_ptr_nonnull(strstr(buf, "Content-Length: 11\r\n"));
    ck_assert_str_eq(strstr(buf, "\r\n\r\n"), "\r\n\r\n"); /* no body */
    uint64_t t0 = now_us();
    ck_assert(closed(fd)); /* the server closes it, idle */
    ck_assert_uint_ge(now_us() - t0, 100000);
    close(fd);
    stop();
}
END_TEST

static void do_close_all(void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_loop_close_all(S.h.loop), 0);
    ck_assert_int_eq(pact_http_server_close(S.h.srv, NULL, NULL), 0);
}

/* pact_loop_close_all with a handler waiting: its timer is cancelled, the
 * connection closed, and the loop ends and frees (stop() checks 0). */
START_TEST(close_all_mid_request)
{
    start(NULL);
    int fd = dial();
    PUT(fd, "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n");
    while (atomic_load(&S.handled) < 1)
        sleep_ms(5);
    ck_assert_int_eq(pact_loop_post(S.h.loop, do_close_all, NULL), 0);
    t_http_join(&S.h);
    ck_assert_int_eq(atomic_load(&S.cancelled), 1);
    ck_assert(closed(fd));
    close(fd);
}
END_TEST

static void on_shutdown(pact_error *err, void *ud)
{
    (void)ud;
    atomic_store(&S.shut_code, err ? pact_error_code(err) : 0);
    atomic_fetch_add(&S.shut_calls, 1);
}

static void do_shutdown(void *ud)
{
    (void)ud;
    ck_assert_int_eq(
        pact_http_server_shutdown(S.h.srv, S.shut_ms, on_shutdown, NULL), 0);
    /* closing already: refused, nothing changes */
    ck_assert_int_eq(pact_http_server_shutdown(S.h.srv, 1, on_shutdown, NULL),
                     PACT_EINVAL);
}

/* A graceful shutdown: the request in flight is answered, the idle
 * connection closed at once, new connections refused; a handler still
 * waiting at the deadline has its connection closed and its operation
 * cancelled; the callback once, with PACT_ETIMEDOUT. */
START_TEST(shutdown_with_deadline)
{
    start(NULL);
    S.shut_ms = 1500; /* far past the 80 ms handler, even under valgrind */
    int slow = dial(), hang = dial(), idle = dial();
    PUT(slow, "GET /slow/x HTTP/1.1\r\nHost: t\r\n\r\n");
    PUT(hang, "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n");
    /* both in flight before the shutdown, however loaded the machine */
    while (atomic_load(&S.handled) < 1 || atomic_load(&S.slow_started) < 1)
        sleep_ms(5);
    ck_assert_int_eq(pact_loop_post(S.h.loop, do_shutdown, NULL), 0);
    char *r = response(slow); /* 80 ms handler: answered */
    ck_assert_int_eq(status_of(r), 200);
    free(r);
    ck_assert(closed(idle));
    ck_assert(closed(hang)); /* at the deadline */
    t_http_join(&S.h);       /* the loop ends: nothing is left */
    ck_assert_int_eq(atomic_load(&S.cancelled), 1);
    ck_assert_int_eq(atomic_load(&S.shut_calls), 1);
    ck_assert_int_eq(atomic_load(&S.shut_code), PACT_ETIMEDOUT);
    close(slow);
    close(hang);
    close(idle);
    /* and nothing listens any more */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)S.h.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ne(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
}
END_TEST

/* Every request answered before the deadline: the callback gets NULL. */
START_TEST(shutdown_in_time)
{
    start(NULL);
    S.shut_ms = 5000;
    int fd = dial();
    PUT(fd, "GET /slow/y HTTP/1.1\r\nHost: t\r\n\r\n");
    /* in flight (else the shutdown closes it as idle, rightly) */
    while (atomic_load(&S.slow_started) < 1)
        sleep_ms(5);
    ck_assert_int_eq(pact_loop_post(S.h.loop, do_shutdown, NULL), 0);
    char *r = response(fd);
    ck_assert_int_eq(status_of(r), 200);
    free(r);
    ck_assert(closed(fd));
    t_http_join(&S.h);
    ck_assert_int_eq(atomic_load(&S.shut_calls), 1);
    ck_assert_int_eq(atomic_load(&S.shut_code), 0);
    close(fd);
}
END_TEST

#define MANY 1000 /* the 1,000 concurrent keep-alive clients */

START_TEST(many_keep_alive_clients)
{
    /* dialling a thousand takes long under valgrind: none may idle out */
    pact_http_opts o = {.idle_timeout_ms = 120000};
    start(&o);
    static int fds[MANY];
    for (int i = 0; i < MANY; i++)
        fds[i] = dial();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < MANY; i++) {
            char req[128];
            snprintf(req, sizeof req, "GET /cb/%d HTTP/1.1\r\nHost: t\r\n\r\n",
                     i);
            PUT(fds[i], req);
        }
        for (int i = 0; i < MANY; i++) {
            char *r = response(fds[i]), want[32];
            snprintf(want, sizeof want, "hello %d ", i);
            ck_assert_int_eq(status_of(r), 200);
            ck_assert_ptr_nonnull(strstr(r, want));
            free(r);
        }
    }
    for (int i = 0; i < MANY; i++)
        close(fds[i]);
    stop();
}
END_TEST

START_TEST(curl_agrees)
{
    if (!t_have("curl"))
        return; /* curl is not installed */
    start(NULL);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 5 -d '{\"k\":[1,2]}' "
             "-H 'Content-Type: application/json' "
             "http://127.0.0.1:%d/json --next http://127.0.0.1:%d/task/9",
             S.h.port, S.h.port);
    char out[256];
    t_output(cmd, out, sizeof out);
    ck_assert_str_eq(out, "{\"got\":{\"k\":[1,2]}}hello 9 q=\n");
    stop();
}
END_TEST

Suite *suite_http(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, styles_same_bytes);
    tcase_add_test(tc, shutdown_with_deadline);
    tcase_add_test(tc, shutdown_in_time);
    tcase_add_test(tc, errors_are_500_and_keep_alive);
    tcase_add_test(tc, bad_requests);
    tcase_add_test(tc, slowloris);
    tcase_add_test(tc, pipelining_in_order);
    tcase_add_test(tc, respond_twice);
    tcase_add_test(tc, expect_continue);
    tcase_add_test(tc, disconnect_cancels_handler);
    tcase_add_test(tc, idle_timeout_and_head);
    tcase_add_test(tc, close_all_mid_request);
    tcase_add_test(tc, many_keep_alive_clients);
    tcase_add_test(tc, curl_agrees);
    tcase_add_test(tc, stall_names_the_handler);
    suite_add_tcase(s, tc);
    return s;
}
