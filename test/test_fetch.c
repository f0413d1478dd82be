/* pact_fetch (pact/fetch.h) on 127.0.0.1, client and servers on the test's
 * loop: pact's own HTTP server (JSON round trips in the four styles,
 * redirects) and raw servers whose bytes the test writes (chunked,
 * read-until-close, HEAD and 204, keep-alive reuse counted in accepts, the
 * per-origin bound, malformed and truncated responses, a server that never
 * answers). Cancellation in every form: a token aborted before and in the
 * middle of a body, the timeout, a group's deadline, pact_loop_close_all;
 * each callback runs once. HTTPS (the "https" case) against pact's HTTPS
 * server and raw TLS servers, with a CA and server certificate made at
 * test time (tls_certs.c): verification failures, keep-alive over TLS and
 * per CA setting, redirects both ways, servers that do not speak TLS. No
 * test depends on how long anything takes. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pact.h>

#include "helpers.h"
#include "suites.h"
#include "tls_certs.h"

/* ---- a raw server: the test writes its bytes ----------------------------- */

enum after { R_KEEP, R_CLOSE, R_HOLD };

struct raw {
    pact_tcp_server *srv;
    int port;
    int accepts, requests, open, max_open;
    const char *reply; /* per request; NULL: none */
    enum after after;
    struct rconn *conns[64];
    char last[2048]; /* the last request's head */
};

struct rconn {
    struct raw *r;
    pact_stream *s;
    char buf[8192];
    size_t len;
};

static void r_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    struct rconn *c = ud;
    if (len > sizeof c->buf - c->len)
        len = sizeof c->buf - c->len;
    memcpy(c->buf + c->len, buf, len);
    c->len += len;
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
        size_t n = (size_t)(end + 4 - c->buf);
        struct raw *r = c->r;
        r->requests++;
        snprintf(r->last, sizeof r->last, "%.*s", (int)n, c->buf);
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        if (r->reply)
            pact_stream_write(s, r->reply, strlen(r->reply));
        if (r->after == R_CLOSE) {
            pact_stream_close(s);
            break;
        }
    }
}

static void r_close(pact_stream *s, void *ud)
{
    (void)s;
    struct rconn *c = ud;
    for (size_t i = 0; i < 64; i++)
        if (c->r->conns[i] == c)
            c->r->conns[i] = NULL;
    c->r->open--;
    free(c);
}

static void r_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct raw *r = ud;
    if (err)
        return;
    struct rconn *c = calloc(1, sizeof *c);
    c->r = r;
    c->s = s;
    for (size_t i = 0; i < 64; i++)
        if (!r->conns[i]) {
            r->conns[i] = c;
            break;
        }
    r->accepts++;
    if (++r->open > r->max_open)
        r->max_open = r->open;
    pact_stream_events ev = {.data = r_data, .close = r_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, c), 0);
}

/* A raw server on @p host, speaking TLS with @p tls (NULL: plain). */
static void raw_start_at(struct raw *r, const char *host, pact_tls_ctx *tls,
                         const char *reply, enum after after)
{
    memset(r, 0, sizeof *r);
    r->reply = reply;
    r->after = after;
    pact_tcp_listen_opts lo = {.tls = tls};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, host, 0, &lo, r_accept, r, &r->srv), 0);
    r->port = pact_tcp_server_port(r->srv);
}

static void raw_start(struct raw *r, const char *reply, enum after after)
{
    raw_start_at(r, "127.0.0.1", NULL, reply, after);
}

/* Stop listening and destroy the connections (their close events come on
 * the next run). */
static void raw_stop(struct raw *r)
{
    pact_tcp_server_close(r->srv, NULL, NULL);
    for (size_t i = 0; i < 64; i++)
        if (r->conns[i])
            pact_stream_destroy(r->conns[i]->s, NULL);
}

/* raw_stop for a test that frees the loop without running it again: the
 * close events will never come, so the records go now. */
static void raw_stop_last(struct raw *r)
{
    raw_stop(r);
    for (size_t i = 0; i < 64; i++) {
        free(r->conns[i]);
        r->conns[i] = NULL;
    }
}

static char *url_of(int port, const char *path)
{
    static char buf[8][256];
    static int k;
    char *u = buf[k++ % 8];
    snprintf(u, 256, "http://127.0.0.1:%d%s", port, path);
    return u;
}

/* Run until nothing is left (the servers closed). */
static void run(void)
{
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* Run until *@p n reaches @p want: a listening server keeps the loop
 * alive. */
static void run_until(const int *n, int want)
{
    while (*n < want)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
}

static void run_promise(pact_promise *p)
{
    while (pact_promise_state(p) == PACT_PENDING)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
}

/* ---- what a callback saw ------------------------------------------------- */

struct got {
    int calls;
    int code; /* 0: a response */
    int status;
    char body[4096];
    size_t blen;
    unsigned redirects;
    char url[256];
    char ctype[128];
    char msg[512]; /* the error's message */
    pact_fetch_res *keep;
};

static void got_cb(pact_error *err, pact_fetch_res *res, void *ud)
{
    struct got *g = ud;
    g->calls++;
    if (err) {
        ck_assert_ptr_null(res);
        g->code = pact_error_code(err);
        snprintf(g->msg, sizeof g->msg, "%s", pact_error_message(err));
        return;
    }
    g->code = 0;
    g->status = pact_fetch_res_status(res);
    size_t n;
    const char *b = pact_fetch_res_body(res, &n);
    g->blen = n;
    snprintf(g->body, sizeof g->body, "%.*s", (int)n, b);
    g->redirects = pact_fetch_res_redirects(res);
    snprintf(g->url, sizeof g->url, "%s", pact_fetch_res_url(res));
    const char *ct = pact_fetch_res_header(res, "content-type");
    snprintf(g->ctype, sizeof g->ctype, "%s", ct ? ct : "");
}

static void fetch_get(const char *url, const pact_fetch_opts *o, struct got *g)
{
    memset(g, 0, sizeof *g);
    ck_assert_int_eq(pact_fetch_cb(t_loop, url, o, got_cb, g), 0);
    run_until(&g->calls, 1);
    /* one turn more: nothing calls it again */
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    ck_assert_int_eq(g->calls, 1);
}

/* ---- pact's own server --------------------------------------------------- */

static pact_http_server *hs;
static int hport;

static void h_json(pact_http_req *req, void *ud)
{
    (void)ud;
    json_t *in = pact_http_req_json(req);
    json_t *out = json_pack("{s:o?}", "got", in);
    pact_http_respond(req, pact_http_res_new_json(in ? 200 : 400, out));
    json_decref(out);
}

static void h_hello(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_http_reply(req, 200, "text/plain", "hello", 5);
}

static void redirect(pact_http_req *req, int status, const char *loc)
{
    pact_http_res *res = pact_http_res_new(status);
    pact_http_res_header(res, "Location", loc);
    pact_http_res_body(res, "moved", 5);
    pact_http_respond(req, res);
}

static void h_redir(pact_http_req *req, void *ud)
{
    (void)ud;
    int n = atoi(pact_http_req_param(req, "n"));
    if (n == 0) {
        pact_http_reply(req, 200, "text/plain", "done", 4);
        return;
    }
    char loc[64];
    /* relative, absolute-path and absolute Locations in turn */
    if (n % 3 == 0)
        snprintf(loc, sizeof loc, "%d", n - 1);
    else if (n % 3 == 1)
        snprintf(loc, sizeof loc, "/redir/%d", n - 1);
    else
        snprintf(loc, sizeof loc, "http://127.0.0.1:%d/redir/%d", hport, n - 1);
    redirect(req, 302, loc);
}

static void h_loop(pact_http_req *req, void *ud)
{
    (void)ud;
    redirect(req, 302, "/loop");
}

static void h_status(pact_http_req *req, void *ud)
{
    (void)ud;
    redirect(req, atoi(pact_http_req_param(req, "st")), "/method");
}

static void h_method(pact_http_req *req, void *ud)
{
    (void)ud;
    size_t n;
    pact_http_req_body(req, &n);
    const char *ct = pact_http_req_header(req, "Content-Type");
    char b[128];
    int k = snprintf(b, sizeof b, "%s %zu %s", pact_http_req_method(req), n,
                     ct ? ct : "-");
    pact_http_reply(req, 200, "text/plain", b, (size_t)k);
}

static void h_big(pact_http_req *req, void *ud)
{
    (void)ud;
    static char big[2000];
    memset(big, 'x', sizeof big);
    pact_http_reply(req, 200, "text/plain", big, sizeof big);
}

/* pact's server on @p host, HTTPS with @p tls (NULL: plain HTTP). */
static void http_start_at(const char *host, pact_tls_ctx *tls)
{
    pact_http_opts ho = {.tls = tls};
    ck_assert_int_eq(pact_http_listen(t_loop, host, 0, &ho, &hs), 0);
    hport = pact_http_server_port(hs);
    ck_assert_int_eq(pact_http_route(hs, "POST", "/json", h_json, NULL), 0);
    ck_assert_int_eq(pact_http_route(hs, "GET", "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(pact_http_route(hs, "GET", "/redir/:n", h_redir, NULL), 0);
    ck_assert_int_eq(pact_http_route(hs, "GET", "/loop", h_loop, NULL), 0);
    ck_assert_int_eq(pact_http_route(hs, NULL, "/status/:st", h_status, NULL),
                     0);
    ck_assert_int_eq(pact_http_route(hs, NULL, "/method", h_method, NULL), 0);
    ck_assert_int_eq(pact_http_route(hs, "GET", "/big", h_big, NULL), 0);
}

static void http_start(void)
{
    http_start_at("127.0.0.1", NULL);
}

static void http_stop(void)
{
    pact_fetch_pool_close_idle(t_loop);
    ck_assert_int_eq(pact_http_server_close(hs, NULL, NULL), 0);
    run();
    hs = NULL;
}

/* ---- JSON round trips in the four styles --------------------------------- */

static json_t *req_json(void)
{
    return json_pack("{s:i,s:s}", "n", 42, "s", "héllo");
}

static void check_echo(json_t *j)
{
    json_t *want = json_pack("{s:o}", "got", req_json());
    ck_assert_msg(json_equal(j, want), "the echo differs");
    json_decref(want);
}

static pact_fetch_opts post_opts(json_t *body)
{
    pact_fetch_opts o = {.method = "post", .json = body};
    return o;
}

START_TEST(json_callback)
{
    http_start();
    json_t *body = req_json();
    pact_fetch_opts o = post_opts(body);
    struct got g;
    fetch_get(url_of(hport, "/json"), &o, &g);
    json_decref(body);
    ck_assert_int_eq(g.code, 0);
    ck_assert_int_eq(g.status, 200);
    ck_assert_str_eq(g.ctype, "application/json");
    json_t *j = json_loads(g.body, 0, NULL);
    check_echo(j);
    json_decref(j);
    /* and a GET on the same connection */
    fetch_get(url_of(hport, "/hello"), NULL, &g);
    ck_assert_str_eq(g.body, "hello");
    ck_assert_uint_eq(pact_fetch_pool_idle(t_loop), 1);
    http_stop();
}
END_TEST

static int settled;
static json_t *got_json;

static pact_value keep_json(const pact_value *v, void *ud)
{
    (void)ud;
    ck_assert_int_eq(v->kind, PACT_JSON);
    got_json = json_incref(v->u.json);
    settled++;
    return pact_nothing();
}

START_TEST(json_promise)
{
    http_start();
    json_t *body = req_json();
    pact_fetch_opts o = post_opts(body);
    settled = 0;
    /* fetch(url).then(res => res.json()) */
    pact_promise *p = pact_then_take(
        pact_then_take(pact_fetch(t_loop, url_of(hport, "/json"), &o),
                       pact_fetch_res_to_json, NULL, NULL),
        keep_json, NULL, NULL);
    json_decref(body);
    ck_assert_ptr_nonnull(p);
    run_promise(p);
    ck_assert_int_eq(settled, 1);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
    check_echo(got_json);
    json_decref(got_json);
    /* the one-call form, and a body that is not JSON */
    p = pact_fetch_json(t_loop, url_of(hport, "/hello"), NULL);
    run_promise(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    ck_assert_int_eq(pact_error_code(pact_promise_error(p)), PACT_EINVAL);
    ck_assert_ptr_nonnull(
        strstr(pact_error_message(pact_promise_error(p)), "not JSON"));
    pact_promise_unref(p);
    http_stop();
}
END_TEST

static pact_error *task_body(void *arg, pact_value *result)
{
    (void)arg;
    json_t *body = req_json();
    pact_fetch_opts o = post_opts(body);
    pact_value v;
    pact_error *err =
        PACT_AWAIT_ERR(pact_fetch(t_loop, url_of(hport, "/json"), &o), &v);
    json_decref(body);
    if (err)
        return err;
    pact_fetch_res *res = pact_fetch_res_of(&v);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(pact_fetch_res_status(res), 200);
    json_t *j;
    err = pact_fetch_res_json(res, &j);
    pact_value_release(&v);
    if (err)
        return err;
    *result = pact_json(j);
    return NULL;
}

/* Run @p p, a job fulfilled with the echo's JSON, and check that echo. */
static void check_json_job(pact_promise *p)
{
    run_promise(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    check_echo(pact_promise_value(p)->u.json);
    pact_promise_unref(p);
}

START_TEST(json_task)
{
    http_start();
    check_json_job(pact_task_spawn(t_loop, task_body, NULL, NULL));
    http_stop();
}
END_TEST

struct afetch {
    PACT_ASYNC_FRAME;
    json_t *body;
    pact_fetch_opts o;
    pact_value v;
};

static pact_error *async_body(pact_async *a, pact_value *result)
{
    struct afetch *f = (struct afetch *)a;
    PACT_ASYNC_BEGIN(a);
    f->body = req_json();
    f->o = post_opts(f->body);
    PACT_ASYNC_TRY(a, pact_fetch(t_loop, url_of(hport, "/json"), &f->o), &f->v);
    json_decref(f->body);
    {
        json_t *j;
        pact_error *err = pact_fetch_res_json(pact_fetch_res_of(&f->v), &j);
        pact_value_release(&f->v);
        if (err)
            return err;
        *result = pact_json(j);
    }
    PACT_ASYNC_END(a);
}

START_TEST(json_async)
{
    http_start();
    struct afetch *f = pact_async_new(t_loop, sizeof *f, async_body);
    check_json_job(pact_async_start(f));
    http_stop();
}
END_TEST

/* ---- framing ------------------------------------------------------------- */

START_TEST(chunked)
{
    struct raw r;
    raw_start(&r,
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
              "X-Twice: a\r\nx-twice: b\r\nX-Empty:\r\n\r\n"
              "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n",
              R_KEEP);
    pact_fetch_res *kept = NULL;
    struct got g;
    fetch_get(url_of(r.port, "/c"), NULL, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_str_eq(g.body, "hello world");
    /* again on the same connection: the framing ended where it should */
    fetch_get(url_of(r.port, "/c"), NULL, &g);
    ck_assert_str_eq(g.body, "hello world");
    ck_assert_int_eq(r.accepts, 1);
    (void)kept;
    raw_stop(&r);
    run();
}
END_TEST

static pact_fetch_res *kept_res;

static void keep_cb(pact_error *err, pact_fetch_res *res, void *ud)
{
    (void)ud;
    ck_assert_ptr_null(err);
    kept_res = pact_fetch_res_ref(res);
}

START_TEST(headers)
{
    struct raw r;
    raw_start(&r,
              "HTTP/1.1 201 Created Here\r\nContent-Length: 2\r\n"
              "X-Twice: a\r\nx-twice: b\r\nX-Empty:\r\nX-Last: z\r\n\r\nok",
              R_KEEP);
    pact_fetch_header h[] = {{"X-Mine", "1"}, {"Accept", "text/plain"}};
    pact_fetch_opts o = {.headers = h, .nheaders = 2};
    ck_assert_int_eq(
        pact_fetch_cb(t_loop, url_of(r.port, "/h?q=1#frag"), &o, keep_cb, NULL),
        0);
    while (!kept_res)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_fetch_res *res = kept_res;
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(pact_fetch_res_status(res), 201);
    ck_assert(pact_fetch_res_ok(res));
    ck_assert_str_eq(pact_fetch_res_reason(res), "Created Here");
    ck_assert_str_eq(pact_fetch_res_header(res, "X-TWICE"), "a");
    ck_assert_str_eq(pact_fetch_res_header(res, "x-empty"), "");
    ck_assert_str_eq(pact_fetch_res_header(res, "x-last"), "z");
    ck_assert_ptr_null(pact_fetch_res_header(res, "nope"));
    ck_assert_uint_eq(pact_fetch_res_header_count(res), 5);
    const char *n, *v;
    ck_assert_int_eq(pact_fetch_res_header_at(res, 2, &n, &v), 0);
    ck_assert_str_eq(n, "x-twice");
    ck_assert_str_eq(v, "b");
    ck_assert_int_eq(pact_fetch_res_header_at(res, 5, &n, &v), PACT_EINVAL);
    ck_assert_str_eq(pact_fetch_res_text(res), "ok");
    pact_fetch_res_unref(res);
    /* what went on the wire */
    ck_assert_ptr_nonnull(strstr(r.last, "GET /h?q=1 HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(r.last, "\r\nHost: 127.0.0.1:"));
    ck_assert_ptr_nonnull(strstr(r.last, "\r\nX-Mine: 1\r\n"));
    ck_assert_ptr_nonnull(strstr(r.last, "\r\nAccept: text/plain\r\n"));
    ck_assert_ptr_null(strstr(r.last, "*/*"));
    ck_assert_ptr_null(strstr(r.last, "frag"));
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(until_close)
{
    struct raw r;
    raw_start(&r, "HTTP/1.1 200 OK\r\n\r\nuntil the end", R_CLOSE);
    struct got g;
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_str_eq(g.body, "until the end");
    ck_assert_uint_eq(pact_fetch_pool_idle(t_loop), 0);
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(no_body)
{
    struct raw r;
    /* HEAD: a Content-Length but no body; then a 204 and a 304 */
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", R_KEEP);
    pact_fetch_opts o = {.method = "HEAD"};
    struct got g;
    fetch_get(url_of(r.port, "/"), &o, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_uint_eq(g.blen, 0);
    r.reply = "HTTP/1.1 204 No Content\r\n\r\n";
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.status, 204);
    ck_assert_uint_eq(g.blen, 0);
    r.reply = "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n";
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.status, 304);
    ck_assert_uint_eq(g.blen, 0);
    r.reply = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
              "Content-Length: 3\r\n\r\nyes";
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.status, 200);
    ck_assert_str_eq(g.body, "yes");
    ck_assert_int_eq(r.accepts, 1); /* all on one connection */
    raw_stop(&r);
    run();
}
END_TEST

/* ---- the pool ------------------------------------------------------------ */

static struct raw *chain_r;
static int chain_left;
static struct got chain_g;

static void chain_cb(pact_error *err, pact_fetch_res *res, void *ud)
{
    (void)ud;
    ck_assert_ptr_null(err);
    ck_assert_str_eq(pact_fetch_res_text(res), "ok");
    chain_g.calls++;
    if (--chain_left > 0)
        ck_assert_int_eq(pact_fetch_cb(t_loop, url_of(chain_r->port, "/k"),
                                       NULL, chain_cb, NULL),
                         0);
}

START_TEST(keepalive_reuse)
{
    struct raw r;
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", R_KEEP);
    chain_r = &r;
    chain_left = 5;
    memset(&chain_g, 0, sizeof chain_g);
    /* the next fetch from inside the callback: the connection is back */
    ck_assert_int_eq(
        pact_fetch_cb(t_loop, url_of(r.port, "/k"), NULL, chain_cb, NULL), 0);
    run_until(&chain_g.calls, 5);
    ck_assert_int_eq(chain_g.calls, 5);
    ck_assert_int_eq(r.requests, 5);
    ck_assert_int_eq(r.accepts, 1);
    ck_assert_uint_eq(pact_fetch_pool_idle(t_loop), 1);
    /* the server goes; the idle connection is closed by pact_loop_free */
    raw_stop_last(&r);
}
END_TEST

START_TEST(server_closes_idle)
{
    struct raw r;
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", R_KEEP);
    struct got g;
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_uint_eq(pact_fetch_pool_idle(t_loop), 1);
    /* the server closes the idle connection: the pool lets it go */
    for (size_t i = 0; i < 64; i++)
        if (r.conns[i])
            pact_stream_close(r.conns[i]->s);
    while (pact_fetch_pool_idle(t_loop) > 0)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_int_eq(r.accepts, 2);
    ck_assert_uint_eq(pact_fetch_pool_close_idle(t_loop), 1);
    raw_stop(&r);
    run();
}
END_TEST

static struct got stale_g[2];

static void stale_first(pact_error *err, pact_fetch_res *res, void *ud)
{
    got_cb(err, res, &stale_g[0]);
    /* at once: the connection is back in the pool, its EOF not read yet */
    ck_assert_int_eq(pact_fetch_cb(t_loop, url_of(*(int *)ud, "/"), NULL,
                                   got_cb, &stale_g[1]),
                     0);
}

START_TEST(stale_connection_retried)
{
    struct raw r;
    /* kept alive by its headers, closed by the server all the same */
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", R_CLOSE);
    memset(stale_g, 0, sizeof stale_g);
    ck_assert_int_eq(
        pact_fetch_cb(t_loop, url_of(r.port, "/"), NULL, stale_first, &r.port),
        0);
    run_until(&stale_g[1].calls, 1);
    ck_assert_int_eq(stale_g[0].code, 0);
    ck_assert_int_eq(stale_g[1].code, 0);
    ck_assert_str_eq(stale_g[1].body, "ok");
    ck_assert_int_eq(r.accepts, 2);
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(idle_timeout)
{
    struct raw r;
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", R_KEEP);
    pact_fetch_pool_opts po = {.idle_timeout_ms = 20};
    ck_assert_int_eq(pact_fetch_pool_set(t_loop, &po), 0);
    struct got g;
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.code, 0);
    /* the pool closes it by itself, and the server sees it go */
    while (pact_fetch_pool_idle(t_loop) > 0 || r.open > 0)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_int_eq(r.accepts, 2);
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(per_origin_bound)
{
    struct raw r;
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", R_KEEP);
    pact_fetch_pool_opts po = {.max_per_origin = 2};
    ck_assert_int_eq(pact_fetch_pool_set(t_loop, &po), 0);
    struct got g[6];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(
            pact_fetch_cb(t_loop, url_of(r.port, "/b"), NULL, got_cb, &g[i]),
            0);
    for (int i = 0; i < 6; i++)
        run_until(&g[i].calls, 1);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(g[i].calls, 1);
        ck_assert_str_eq(g[i].body, "ok");
    }
    ck_assert_int_eq(r.requests, 6);
    ck_assert_int_eq(r.accepts, 2);
    ck_assert_int_le(r.max_open, 2);
    raw_stop(&r);
    run();
}
END_TEST

/* ---- redirects ----------------------------------------------------------- */

START_TEST(redirects)
{
    http_start();
    struct got g;
    fetch_get(url_of(hport, "/redir/6"), NULL, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_str_eq(g.body, "done");
    ck_assert_uint_eq(g.redirects, 6);
    ck_assert_str_eq(g.url, url_of(hport, "/redir/0"));
    /* the limit */
    pact_fetch_opts o = {.max_redirects = 2};
    fetch_get(url_of(hport, "/redir/3"), &o, &g);
    ck_assert_int_eq(g.code, PACT_ELOOP);
    /* a loop ends at the default limit */
    fetch_get(url_of(hport, "/loop"), NULL, &g);
    ck_assert_int_eq(g.code, PACT_ELOOP);
    /* manual: the 3xx itself */
    o = (pact_fetch_opts){.redirect = PACT_FETCH_MANUAL};
    fetch_get(url_of(hport, "/redir/1"), &o, &g);
    ck_assert_int_eq(g.status, 302);
    ck_assert_str_eq(g.body, "moved");
    http_stop();
}
END_TEST

START_TEST(redirect_methods)
{
    http_start();
    pact_fetch_header ct = {"Content-Type", "text/plain"};
    pact_fetch_opts o = {.method = "POST",
                         .body = "abc",
                         .body_len = 3,
                         .headers = &ct,
                         .nheaders = 1};
    /* what the redirect's target saw: its method, body length and type */
    static const struct {
        const char *method, *path, *seen;
    } cases[] = {
        /* 303: GET, the body and its headers dropped */
        {"POST", "/status/303", "GET 0 -"},
        /* 301 and 302 turn a POST into a GET */
        {"POST", "/status/301", "GET 0 -"},
        {"POST", "/status/302", "GET 0 -"},
        /* 307 and 308 keep the method and the body */
        {"POST", "/status/307", "POST 3 text/plain"},
        {"POST", "/status/308", "POST 3 text/plain"},
        /* a PUT through a 302 stays a PUT */
        {"put", "/status/302", "PUT 3 text/plain"},
    };
    struct got g;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        o.method = cases[i].method;
        fetch_get(url_of(hport, cases[i].path), &o, &g);
        ck_assert_msg(strcmp(g.body, cases[i].seen) == 0,
                      "%s through %s: the target saw \"%s\", not \"%s\"",
                      cases[i].method, cases[i].path, g.body, cases[i].seen);
    }
    http_stop();
}
END_TEST

/* ---- failures ------------------------------------------------------------ */

START_TEST(timeout)
{
    struct raw r;
    raw_start(&r, NULL, R_HOLD); /* never answers */
    pact_fetch_opts o = {.timeout_ms = 50};
    struct got g;
    fetch_get(url_of(r.port, "/"), &o, &g);
    ck_assert_int_eq(g.code, PACT_ETIMEDOUT);
    ck_assert_int_eq(r.requests, 1);
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(abort_before)
{
    struct raw r;
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", R_KEEP);
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    pact_fetch_opts o = {.abort = a};
    struct got g;
    fetch_get(url_of(r.port, "/"), &o, &g);
    ck_assert_int_eq(g.code, PACT_ECANCELED);
    ck_assert_int_eq(r.requests, 0);
    pact_abort_unref(a);
    raw_stop(&r);
    run();
}
END_TEST

static int progress_calls;

static void abort_on_progress(size_t received, int64_t total, void *ud)
{
    progress_calls++;
    ck_assert_uint_eq(received, 10);
    ck_assert_int_eq(total, 100);
    pact_abort_abort(ud, NULL);
}

START_TEST(abort_mid_body)
{
    struct raw r;
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
              R_HOLD);
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_fetch_opts o = {
        .abort = a, .progress = abort_on_progress, .progress_ud = a};
    progress_calls = 0;
    struct got g;
    fetch_get(url_of(r.port, "/"), &o, &g);
    ck_assert_int_eq(g.code, PACT_ECANCELED);
    ck_assert_int_eq(progress_calls, 1);
    while (r.open > 0) /* the connection went with it */
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_abort_unref(a);
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(closed_mid_body)
{
    struct raw r;
    raw_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
              R_CLOSE);
    pact_fetch_opts o = {.method = "POST"}; /* not sent again */
    struct got g;
    fetch_get(url_of(r.port, "/"), &o, &g);
    ck_assert_int_eq(g.code, PACT_ECONNRESET);
    /* a chunked body cut short too */
    r.reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.code, PACT_ECONNRESET);
    /* and no answer at all */
    r.reply = NULL;
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.code, PACT_ECONNRESET);
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(malformed)
{
    static const char *const bad[] = {
        "HTTP/1.1 abc OK\r\n\r\n",
        "SSH-2.0-OpenSSH_9.6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct raw r;
        raw_start(&r, bad[i], R_HOLD);
        struct got g;
        fetch_get(url_of(r.port, "/"), NULL, &g);
        ck_assert_msg(g.code == PACT_EPROTO, "case %zu: %s", i,
                      pact_err_name(g.code));
        raw_stop(&r);
        run();
    }
}
END_TEST

START_TEST(max_body)
{
    http_start();
    pact_fetch_opts o = {.max_body = 1000};
    struct got g;
    fetch_get(url_of(hport, "/big"), &o, &g);
    ck_assert_int_eq(g.code, PACT_EMSGSIZE);
    o.max_body = 2000; /* exactly */
    fetch_get(url_of(hport, "/big"), &o, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_uint_eq(g.blen, 2000);
    http_stop();
    /* chunked and read-until-close, found while reading */
    struct raw r;
    raw_start(&r,
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
              R_KEEP);
    o.max_body = 5;
    fetch_get(url_of(r.port, "/"), &o, &g);
    ck_assert_int_eq(g.code, PACT_EMSGSIZE);
    r.reply = "HTTP/1.1 200 OK\r\n\r\nabcdef";
    r.after = R_CLOSE;
    fetch_get(url_of(r.port, "/"), &o, &g);
    ck_assert_int_eq(g.code, PACT_EMSGSIZE);
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(refused)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd); /* nothing listens there now */
    struct got g;
    fetch_get(url_of(ntohs(a.sin_port), "/"), NULL, &g);
    ck_assert_int_eq(g.code, PACT_ECONNREFUSED);
}
END_TEST

START_TEST(no_such_host)
{
    struct got g;
    fetch_get("http://no-such-host.invalid/", NULL, &g);
    ck_assert_int_eq(g.code, PACT_ENOENT);
}
END_TEST

START_TEST(bad_calls)
{
    static const char *const bad_urls[] = {
        "ftp://x/",           "http://",     "http://u:p@host/",
        "http://host:99999/", "http://a b/",
    };
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) {
        int rc = pact_fetch_cb(t_loop, bad_urls[i], NULL, got_cb, NULL);
        ck_assert_msg(rc == PACT_EINVAL, "%s: %s, not EINVAL", bad_urls[i],
                      pact_err_name(rc));
    }
    pact_fetch_opts o = {0};
    ck_assert_int_eq(pact_fetch_cb(t_loop, NULL, NULL, got_cb, NULL),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_fetch_cb(t_loop, "http://h/", NULL, NULL, NULL),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_fetch_cb(NULL, "http://h/", NULL, got_cb, NULL),
                     PACT_EINVAL);
    o.method = "GE T";
    ck_assert_int_eq(pact_fetch_cb(t_loop, "http://h/", &o, got_cb, NULL),
                     PACT_EINVAL);
    o = (pact_fetch_opts){.body = "x", .body_len = 1};
    ck_assert_int_eq(pact_fetch_cb(t_loop, "http://h/", &o, got_cb, NULL),
                     PACT_EINVAL); /* a GET with a body */
    pact_fetch_header h = {"Host", "evil"};
    o = (pact_fetch_opts){.headers = &h, .nheaders = 1};
    ck_assert_int_eq(pact_fetch_cb(t_loop, "http://h/", &o, got_cb, NULL),
                     PACT_EINVAL);
    h = (pact_fetch_header){"X-Split", "a\r\nInjected: 1"};
    ck_assert_int_eq(pact_fetch_cb(t_loop, "http://h/", &o, got_cb, NULL),
                     PACT_EINVAL);
    /* a CA file that does not load, at the call; the promise rejects
     * with the same code */
    o = (pact_fetch_opts){.ca_file = "/nonexistent/ca.pem"};
    ck_assert_int_eq(
        pact_fetch_cb(t_loop, "https://127.0.0.1/", &o, got_cb, NULL),
        PACT_ENOENT);
    pact_promise *p = pact_fetch(t_loop, "https://127.0.0.1/", &o);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    ck_assert_int_eq(pact_error_code(pact_promise_error(p)), PACT_ENOENT);
    pact_promise_unref(p);
    /* the response's accessors take NULL */
    ck_assert_int_eq(pact_fetch_res_status(NULL), 0);
    ck_assert_ptr_null(pact_fetch_res_header(NULL, "x"));
    ck_assert_ptr_null(pact_fetch_res_of(NULL));
    pact_value v = pact_int(3);
    ck_assert_ptr_null(pact_fetch_res_of(&v));
    pact_fetch_res_unref(NULL);
    run();
}
END_TEST

START_TEST(redirect_bad_location)
{
    struct raw r;
    raw_start(&r,
              "HTTP/1.1 302 Found\r\nLocation: http://[::1\r\n"
              "Content-Length: 0\r\n\r\n",
              R_KEEP);
    struct got g;
    fetch_get(url_of(r.port, "/"), NULL, &g);
    ck_assert_int_eq(g.code, PACT_EINVAL);
    raw_stop(&r);
    run();
}
END_TEST

/* ---- cancellation from outside: groups, close_all ------------------------ */

static pact_promise *group_fetch_p;

static pact_promise *start_fetch(pact_loop *loop, pact_error *cancelled,
                                 void *ud)
{
    if (cancelled)
        return NULL;
    /* no token of its own: the group's is ambient */
    pact_promise *p = pact_fetch(loop, ud, NULL);
    group_fetch_p = pact_promise_ref(p);
    return p;
}

START_TEST(group_deadline)
{
    struct raw r;
    raw_start(&r, NULL, R_HOLD);
    pact_group *g;
    pact_group_opts go = {.timeout_ms = 50};
    ck_assert_int_eq(pact_group_new(t_loop, &go, &g), 0);
    ck_assert_int_eq(pact_group_go(g, start_fetch, url_of(r.port, "/")), 0);
    pact_promise *w = pact_group_wait(g);
    run_promise(w);
    run_promise(group_fetch_p);
    ck_assert_int_eq(pact_promise_state(w), PACT_REJECTED);
    ck_assert_int_eq(pact_error_code(pact_promise_error(w)), PACT_ETIMEDOUT);
    ck_assert_int_eq(pact_promise_state(group_fetch_p), PACT_REJECTED);
    ck_assert_int_eq(pact_error_code(pact_promise_error(group_fetch_p)),
                     PACT_ECANCELED);
    while (r.open > 0) /* its connection went with it */
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_promise_unref(group_fetch_p);
    pact_promise_unref(w);
    pact_group_unref(g);
    raw_stop(&r);
    run();
}
END_TEST

static int cancelled_calls;

static void count_cancel(pact_error *err, pact_fetch_res *res, void *ud)
{
    (void)res, (void)ud;
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    cancelled_calls++;
}

static void close_all_soon(pact_error *err, void *ud)
{
    struct raw *r = ud;
    if (err)
        return;
    if (r->requests < 2) { /* both requests are in: now */
        pact_handle h;
        ck_assert_int_eq(pact_timeout(t_loop, 1, close_all_soon, r, &h), 0);
        return;
    }
    pact_loop_close_all(t_loop);
}

START_TEST(close_all_pending)
{
    struct raw r;
    raw_start(&r, NULL, R_HOLD);
    pact_fetch_pool_opts po = {.max_per_origin = 2};
    ck_assert_int_eq(pact_fetch_pool_set(t_loop, &po), 0);
    cancelled_calls = 0;
    /* two sent, one queued, one by name (resolving, connecting or sent) */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pact_fetch_cb(t_loop, url_of(r.port, "/"), NULL,
                                       count_cancel, NULL),
                         0);
    char byname[64];
    snprintf(byname, sizeof byname, "http://localhost:%d/", r.port);
    ck_assert_int_eq(pact_fetch_cb(t_loop, byname, NULL, count_cancel, NULL),
                     0);
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 1, close_all_soon, &r, &h), 0);
    run(); /* close_all stops the server too */
    ck_assert_int_eq(cancelled_calls, 4);
    pact_tcp_server_close(r.srv, NULL, NULL);
    run();
}
END_TEST

START_TEST(loop_freed_pending)
{
    /* promises dropped with the loop: close_all, then free without a run */
    struct raw r;
    raw_start(&r, NULL, R_HOLD);
    pact_promise *p = pact_fetch(t_loop, url_of(r.port, "/"), NULL);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    raw_stop_last(&r);
}
END_TEST

/* The tests look at rejected promises after the run: not unhandled. */
static void setup(void)
{
    t_setup();
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_NONE), 0);
}

/* ---- HTTPS --------------------------------------------------------------- */

static struct t_certs certs;
static pact_tls_ctx *srv_tls;

static void https_setup(void)
{
    setup();
    /* idle connections stay however slow the handshakes (valgrind) */
    pact_fetch_pool_opts po = {.idle_timeout_ms = 600000};
    ck_assert_int_eq(pact_fetch_pool_set(t_loop, &po), 0);
    t_certs_make(&certs);
    pact_error *e = NULL;
    srv_tls = pact_tls_server_ctx_new(certs.cert, certs.key, NULL, &e);
    ck_assert_ptr_nonnull(srv_tls);
}

static void https_teardown(void)
{
    pact_tls_ctx_free(srv_tls);
    t_certs_remove(&certs);
    t_teardown();
}

static char *https_url(const char *host, int port, const char *path)
{
    static char buf[8][256];
    static int k;
    char *u = buf[k++ % 8];
    snprintf(u, 256, "https://%s:%d%s", host, port, path);
    return u;
}

START_TEST(https_json)
{
    http_start_at("127.0.0.1", srv_tls);
    json_t *body = req_json();
    pact_fetch_opts o = post_opts(body);
    o.ca_file = certs.ca;
    pact_promise *p =
        pact_fetch_json(t_loop, https_url("127.0.0.1", hport, "/json"), &o);
    json_decref(body);
    run_promise(p);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_value(p)->kind, PACT_JSON);
    check_echo(pact_promise_value(p)->u.json);
    pact_promise_unref(p);
    /* a GET, by name this time: SNI and the certificate's DNS entry */
    o = (pact_fetch_opts){.ca_file = certs.ca};
    struct got g;
    fetch_get(https_url("localhost", hport, "/hello"), &o, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_int_eq(g.status, 200);
    ck_assert_str_eq(g.body, "hello");
    ck_assert_str_eq(g.url, https_url("localhost", hport, "/hello"));
    http_stop();
}
END_TEST

START_TEST(https_verify_fails)
{
    http_start_at("127.0.0.1", srv_tls);
    struct got g;
    /* the system's store does not know the test's CA */
    fetch_get(https_url("127.0.0.1", hport, "/hello"), NULL, &g);
    ck_assert_int_eq(g.code, PACT_EPROTO);
    ck_assert_msg(strstr(g.msg, "certificate verify failed"), "%s", g.msg);
    /* nor does another CA */
    pact_fetch_opts o = {.ca_file = certs.other_ca};
    fetch_get(https_url("127.0.0.1", hport, "/hello"), &o, &g);
    ck_assert_int_eq(g.code, PACT_EPROTO);
    ck_assert_msg(strstr(g.msg, "certificate verify failed"), "%s", g.msg);
    /* insecure takes anything */
    o = (pact_fetch_opts){.insecure = true};
    fetch_get(https_url("127.0.0.1", hport, "/hello"), &o, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_str_eq(g.body, "hello");
    http_stop();
}
END_TEST

START_TEST(https_wrong_host)
{
    /* the right CA, but the certificate names 127.0.0.1 and localhost */
    http_start_at("127.0.0.2", srv_tls);
    pact_fetch_opts o = {.ca_file = certs.ca};
    struct got g;
    fetch_get(https_url("127.0.0.2", hport, "/hello"), &o, &g);
    ck_assert_int_eq(g.code, PACT_EPROTO);
    ck_assert_msg(strstr(g.msg, "mismatch"), "%s", g.msg);
    o.insecure = true;
    fetch_get(https_url("127.0.0.2", hport, "/hello"), &o, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_str_eq(g.body, "hello");
    http_stop();
}
END_TEST

START_TEST(https_keepalive)
{
    struct raw r;
    raw_start_at(&r, "127.0.0.1", srv_tls,
                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", R_KEEP);
    pact_fetch_opts o = {.ca_file = certs.ca};
    struct got g;
    for (int i = 0; i < 4; i++) {
        fetch_get(https_url("127.0.0.1", r.port, "/k"), &o, &g);
        ck_assert_int_eq(g.code, 0);
        ck_assert_str_eq(g.body, "ok");
    }
    ck_assert_int_eq(r.requests, 4);
    ck_assert_int_eq(r.accepts, 1);
    ck_assert_uint_eq(pact_fetch_pool_idle(t_loop), 1);
    /* another CA setting never gets the verified connection: its own
     * connect, which fails */
    fetch_get(https_url("127.0.0.1", r.port, "/k"), NULL, &g);
    ck_assert_int_eq(g.code, PACT_EPROTO);
    o = (pact_fetch_opts){.insecure = true};
    fetch_get(https_url("127.0.0.1", r.port, "/k"), &o, &g);
    ck_assert_int_eq(g.code, 0);
    /* the failed handshake never reached the server's accept callback */
    ck_assert_int_eq(r.accepts, 2);
    ck_assert_uint_eq(pact_fetch_pool_idle(t_loop), 2);
    /* and plain http to the same port is another origin: not TLS */
    o = (pact_fetch_opts){.timeout_ms = 20000};
    fetch_get(url_of(r.port, "/k"), &o, &g);
    ck_assert_int_ne(g.code, 0);
    raw_stop_last(&r);
}
END_TEST

START_TEST(https_redirects)
{
    /* http -> https -> http, each hop its own raw server */
    struct raw first, tls, last;
    static char to_https[256], to_http[256];
    raw_start(&first, to_https, R_KEEP);
    raw_start_at(&tls, "127.0.0.1", srv_tls, to_http, R_KEEP);
    raw_start(&last, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
              R_KEEP);
    snprintf(to_https, sizeof to_https,
             "HTTP/1.1 301 Moved\r\nLocation: https://localhost:%d/a\r\n"
             "Content-Length: 0\r\n\r\n",
             tls.port);
    snprintf(to_http, sizeof to_http,
             "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/done\r\n"
             "Content-Length: 0\r\n\r\n",
             last.port);
    pact_fetch_opts o = {.ca_file = certs.ca};
    struct got g;
    fetch_get(url_of(first.port, "/start"), &o, &g);
    ck_assert_int_eq(g.code, 0);
    ck_assert_int_eq(g.status, 200);
    ck_assert_str_eq(g.body, "done");
    ck_assert_uint_eq(g.redirects, 2);
    ck_assert_str_eq(g.url, url_of(last.port, "/done"));
    ck_assert_int_eq(tls.requests, 1);
    ck_assert_msg(strstr(tls.last, "GET /a HTTP/1.1"), "%s", tls.last);
    /* the https hop verifies too: without the CA it fails there */
    fetch_get(url_of(first.port, "/start"), NULL, &g);
    ck_assert_int_eq(g.code, PACT_EPROTO);
    ck_assert_msg(strstr(g.msg, "https://localhost"), "%s", g.msg);
    pact_fetch_pool_close_idle(t_loop);
    raw_stop(&first);
    raw_stop(&tls);
    raw_stop(&last);
    run();
}
END_TEST

START_TEST(https_to_plain)
{
    /* a server that does not speak TLS answers the ClientHello as HTTP */
    http_start_at("127.0.0.1", NULL);
    pact_fetch_opts o = {.ca_file = certs.ca};
    struct got g;
    fetch_get(https_url("127.0.0.1", hport, "/hello"), &o, &g);
    ck_assert_msg(g.code == PACT_EPROTO || g.code == PACT_ECONNRESET, "%d %s",
                  g.code, g.msg);
    http_stop();
}
END_TEST

START_TEST(https_silent_server)
{
    /* a plain server that never answers the ClientHello: the fetch's
     * timeout ends the handshake, and so does its token */
    struct raw r;
    raw_start(&r, NULL, R_HOLD);
    pact_fetch_opts o = {.ca_file = certs.ca, .timeout_ms = 50};
    struct got g;
    fetch_get(https_url("127.0.0.1", r.port, "/"), &o, &g);
    ck_assert_int_eq(g.code, PACT_ETIMEDOUT);
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    o = (pact_fetch_opts){.ca_file = certs.ca, .abort = a};
    memset(&g, 0, sizeof g);
    ck_assert_int_eq(pact_fetch_cb(t_loop, https_url("127.0.0.1", r.port, "/"),
                                   &o, got_cb, &g),
                     0);
    run_until(&r.accepts, 2);
    pact_abort_abort(a, NULL);
    run_until(&g.calls, 1);
    ck_assert_int_eq(g.code, PACT_ECANCELED);
    pact_abort_unref(a);
    while (r.open > 0) /* the connections went with them */
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    raw_stop(&r);
    run();
}
END_TEST

START_TEST(https_many_settings)
{
    /* more CA settings than the pool keeps contexts: the oldest goes, and
     * its connection, idle, still serves its own setting */
    struct raw r;
    raw_start_at(&r, "127.0.0.1", srv_tls,
                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", R_KEEP);
    char same_ca[128];
    snprintf(same_ca, sizeof same_ca, "%s/./ca.pem", certs.dir);
    const char *files[] = {certs.ca, same_ca,        NULL,
                           NULL,     certs.other_ca, certs.ca};
    const bool insecure[] = {false, false, true, false, false, false};
    const int want[] = {0, 0, 0, PACT_EPROTO, PACT_EPROTO, 0};
    struct got g;
    for (size_t i = 0; i < 6; i++) {
        pact_fetch_opts o = {.ca_file = files[i], .insecure = insecure[i]};
        fetch_get(https_url("127.0.0.1", r.port, "/"), &o, &g);
        ck_assert_msg(g.code == want[i], "%zu: %d %s", i, g.code, g.msg);
    }
    /* three settings connected, the last one reused the first's */
    ck_assert_int_eq(r.accepts, 3);
    ck_assert_int_eq(r.requests, 4);
    raw_stop_last(&r);
}
END_TEST

Suite *suite_fetch(void)
{
    Suite *s = suite_create("fetch");
    TCase *tc = tcase_create("fetch");
    tcase_add_checked_fixture(tc, setup, t_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, json_callback);
    tcase_add_test(tc, json_promise);
    tcase_add_test(tc, json_task);
    tcase_add_test(tc, json_async);
    tcase_add_test(tc, chunked);
    tcase_add_test(tc, headers);
    tcase_add_test(tc, until_close);
    tcase_add_test(tc, no_body);
    tcase_add_test(tc, keepalive_reuse);
    tcase_add_test(tc, server_closes_idle);
    tcase_add_test(tc, stale_connection_retried);
    tcase_add_test(tc, idle_timeout);
    tcase_add_test(tc, per_origin_bound);
    tcase_add_test(tc, redirects);
    tcase_add_test(tc, redirect_methods);
    tcase_add_test(tc, timeout);
    tcase_add_test(tc, abort_before);
    tcase_add_test(tc, abort_mid_body);
    tcase_add_test(tc, closed_mid_body);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, max_body);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, no_such_host);
    tcase_add_test(tc, bad_calls);
    tcase_add_test(tc, redirect_bad_location);
    tcase_add_test(tc, group_deadline);
    tcase_add_test(tc, close_all_pending);
    tcase_add_test(tc, loop_freed_pending);
    suite_add_tcase(s, tc);
    tc = tcase_create("https");
    tcase_add_checked_fixture(tc, https_setup, https_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, https_json);
    tcase_add_test(tc, https_verify_fails);
    tcase_add_test(tc, https_wrong_host);
    tcase_add_test(tc, https_keepalive);
    tcase_add_test(tc, https_redirects);
    tcase_add_test(tc, https_to_plain);
    tcase_add_test(tc, https_silent_server);
    tcase_add_test(tc, https_many_settings);
    suite_add_tcase(s, tc);
    return s;
}
