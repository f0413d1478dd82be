/* TLS on streams (pact/tls.h), with a CA and a server certificate made at
 * test time (tls_certs.c) on 127.0.0.1: an echo server in callback,
 * promise and task style driven by one TLS client giving one transcript;
 * certificates that do not verify (an unknown CA, a wrong name); a MiB each
 * way with back-pressure (the output stays bounded); peers that close
 * mid-handshake, and one that sends garbage instead of a ClientHello (the
 * server goes on serving); abort tokens, close_all and pact_loop_free with
 * handshakes pending (one ECANCELED call each); pact_stream_end sending
 * close_notify (seen by a plain OpenSSL client on a thread); an HTTPS
 * server answered by curl; misuse. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"
#include "tls_certs.h"

static struct t_certs certs;
static pact_tls_ctx *srv_ctx, *cli_ctx;

static void setup(void)
{
    t_setup();
    t_certs_make(&certs);
    pact_error *err = NULL;
    srv_ctx = pact_tls_server_ctx_new(certs.cert, certs.key, NULL, &err);
    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(srv_ctx);
    pact_tls_opts co = {.ca_file = certs.ca, .no_system_ca = true};
    cli_ctx = pact_tls_client_ctx_new(&co, &err);
    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(cli_ctx);
}

static void teardown(void)
{
    pact_tls_ctx_free(srv_ctx);
    pact_tls_ctx_free(cli_ctx);
    t_certs_remove(&certs);
    t_teardown();
}

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* A server on 127.0.0.1 with @p ctx (NULL: plain TCP). */
static pact_tcp_server *listen_with(pact_tls_ctx *ctx, pact_tcp_accept_cb cb,
                                    void *ud)
{
    pact_tcp_server *srv;
    pact_tcp_listen_opts lo = {.tls = ctx};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, &lo, cb, ud, &srv),
                     0);
    return srv;
}

static pact_tcp_server *tls_listen(pact_tcp_accept_cb cb, void *ud)
{
    return listen_with(srv_ctx, cb, ud);
}

/* Connect to @p srv with @p o (may be NULL: plain TCP). */
static void connect_to(pact_tcp_server *srv, const pact_tcp_connect_opts *o,
                       pact_stream_cb cb, void *ud)
{
    ck_assert_int_eq(pact_tcp_connect(t_loop, "127.0.0.1",
                                      pact_tcp_server_port(srv), o, cb, ud),
                     0);
}

/* Connect to @p srv with TLS: @p ctx, the server checked against @p name. */
static void tls_connect(pact_tcp_server *srv, pact_tls_ctx *ctx,
                        const char *name, pact_stream_cb cb, void *ud)
{
    pact_tcp_connect_opts o = {.tls = ctx, .servername = name};
    connect_to(srv, &o, cb, ud);
}

/* A blocking TCP socket connected to @p port. */
static int raw_connect(int port)
{
    return t_dial(port, 0);
}

/* In a task: the peer's end (PACT_EOF) comes next on @p s; then close it. */
static void expect_eof_and_close(pact_stream *s)
{
    pact_error *err = PACT_AWAIT_ERR(pact_stream_read_some_p(s, NULL), NULL);
    ck_assert_int_eq(pact_error_code(err), PACT_EOF);
    pact_error_unref(err);
    pact_stream_close(s);
}

/* ---- echo in three styles, one client ------------------------------------ */

/* The servers and the client are helpers.c's, shared with the TCP suite;
 * this one also checks that the stream it serves is a TLS one. */
static void echo_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (!err)
        ck_assert(pact_stream_is_tls(s));
    t_echo_accept_cb(err, s, ud);
}

static char *echo_transcript(pact_tcp_accept_cb accept, const char *name)
{
    pact_tcp_listen_opts lo = {.tls = srv_ctx};
    pact_tcp_connect_opts co = {.tls = cli_ctx, .servername = name};
    return t_echo_transcript("127.0.0.1", &lo, &co, accept);
}

START_TEST(echo_three_styles)
{
    /* by IP address (checked against the certificate's IP entry), and by
     * name */
    char *a = echo_transcript(echo_accept, NULL);
    char *b = echo_transcript(t_echo_accept_promise, "localhost");
    char *c = echo_transcript(t_echo_accept_task, NULL);
    ck_assert_int_eq(t_count(a, "tls up"), 1);
    ck_assert_int_eq(t_count(a, "got line"), T_ECHO_LINES);
    ck_assert_int_eq(t_count(a, "then EOF"), 1);
    ck_assert_str_eq(a, b);
    ck_assert_str_eq(a, c);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* ---- the callback style on the client side too --------------------------- */

struct cb_client {
    struct t_seen seen; /* first: the ud of t_seen_end and t_seen_close too */
    int connected;
    char got[64];
    size_t n;
};

static void cbc_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    struct cb_client *c = ud;
    ck_assert_int_le(c->n + len, sizeof c->got - 1);
    memcpy(c->got + c->n, buf, len);
    c->n += len;
    if (c->n == 5)
        ck_assert_int_eq(pact_stream_end(s), 0);
}

static void cbc_connected(pact_error *err, pact_stream *s, void *ud)
{
    struct cb_client *c = ud;
    ck_assert_ptr_null(err);
    c->connected++;
    pact_stream_events ev = {
        .data = cbc_data, .end = t_seen_end, .close = t_seen_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, c), 0);
    ck_assert_int_eq(pact_stream_write(s, "hello", 5), 1);
}

START_TEST(echo_callbacks)
{
    struct cb_client c = {0};
    c.seen.srv = tls_listen(echo_accept, NULL);
    tls_connect(c.seen.srv, cli_ctx, "localhost", cbc_connected, &c);
    run_ok();
    ck_assert_int_eq(c.connected, 1);
    ck_assert_int_eq(c.seen.ends, 1);
    ck_assert_int_eq(c.seen.closes, 1);
    c.got[c.n] = 0;
    ck_assert_str_eq(c.got, "hello");
}
END_TEST

/* ---- verification failures ----------------------------------------------- */

struct outcome {
    int calls, code;
    char msg[256];
    pact_tcp_server *srv;
};

static void count_accept(pact_error *err, pact_stream *s, void *ud)
{
    int *n = ud;
    if (!err) {
        (*n)++;
        pact_stream_destroy(s, NULL);
    }
}

static void record_connect(pact_error *err, pact_stream *s, void *ud)
{
    struct outcome *o = ud;
    o->calls++;
    o->code = err ? pact_error_code(err) : 0;
    if (err)
        snprintf(o->msg, sizeof o->msg, "%s", pact_error_message(err));
    if (s)
        pact_stream_destroy(s, NULL);
    if (o->srv)
        pact_tcp_server_close(o->srv, NULL, NULL);
}

/* Run the loop; the connect's callback came once, with @p code. */
static void run_outcome(const struct outcome *out, int code)
{
    run_ok();
    ck_assert_int_eq(out->calls, 1);
    ck_assert_int_eq(out->code, code);
}

static void expect_failure(pact_tls_ctx *ctx, const char *name, const char *why)
{
    int accepted = 0;
    struct outcome out = {0};
    out.srv = tls_listen(count_accept, &accepted);
    tls_connect(out.srv, ctx, name, record_connect, &out);
    run_outcome(&out, PACT_EPROTO);
    ck_assert_msg(strstr(out.msg, why), "message: %s", out.msg);
    ck_assert_int_eq(accepted, 0); /* the server never handed it over */
}

START_TEST(unknown_ca)
{
    pact_tls_opts co = {.ca_file = certs.other_ca, .no_system_ca = true};
    pact_tls_ctx *other = pact_tls_client_ctx_new(&co, NULL);
    ck_assert_ptr_nonnull(other);
    expect_failure(other, "localhost", "certificate verify failed");
    /* the system's store does not know the test CA either */
    pact_tls_ctx *sys = pact_tls_client_ctx_new(NULL, NULL);
    ck_assert_ptr_nonnull(sys);
    expect_failure(sys, "localhost", "certificate verify failed");
    pact_tls_ctx_free(other);
    pact_tls_ctx_free(sys);
}
END_TEST

START_TEST(wrong_hostname)
{
    expect_failure(cli_ctx, "example.com", "hostname mismatch");
    expect_failure(cli_ctx, "127.0.0.2", "IP address mismatch");
}
END_TEST

START_TEST(insecure_no_verify)
{
    pact_tls_opts co = {.insecure_no_verify = true, .no_system_ca = true};
    pact_tls_ctx *ctx = pact_tls_client_ctx_new(&co, NULL);
    int accepted = 0;
    struct outcome out = {0};
    out.srv = tls_listen(count_accept, &accepted);
    tls_connect(out.srv, ctx, "example.com", record_connect, &out);
    pact_tls_ctx_free(ctx); /* the connect keeps what it needs */
    run_outcome(&out, 0);
}
END_TEST

/* ---- a MiB each way with back-pressure ----------------------------------- */

#define BIG (1 << 20)
#define PIECE 16384
#define HWM 65536

struct pump {
    pact_stream *s;
    size_t sent, got;
    size_t max_out, max_in;
    bool hold_reads; /* pause reading until all is written */
    bool ended;
    int closes;
    int *done;
    pact_tcp_server *srv;
};

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 % 251);
}

static void pump_write(struct pump *p)
{
    unsigned char buf[PIECE];
    while (p->sent < BIG) {
        for (size_t i = 0; i < PIECE; i++)
            buf[i] = pattern(p->sent + i);
        int rc = pact_stream_write(p->s, buf, PIECE);
        ck_assert_int_ge(rc, 0);
        p->sent += PIECE;
        size_t out = pact_stream_buffered(p->s);
        if (out > p->max_out)
            p->max_out = out;
        if (rc == 0)
            return; /* until drain */
    }
    if (p->hold_reads)
        ck_assert_int_eq(pact_stream_resume(p->s), 0);
    p->hold_reads = false;
}

static void pump_maybe_end(struct pump *p)
{
    if (p->got == BIG && p->sent == BIG && !p->ended) {
        p->ended = true;
        ck_assert_int_eq(pact_stream_end(p->s), 0);
    }
}

static void pump_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)s;
    struct pump *p = ud;
    const unsigned char *b = buf;
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(b[i], pattern(p->got + i));
    p->got += len;
    ck_assert_int_le(p->got, BIG);
    pump_maybe_end(p);
}

static void pump_drain(pact_stream *s, void *ud)
{
    (void)s;
    struct pump *p = ud;
    pump_write(p);
    pump_maybe_end(p);
}

static void pump_close(pact_stream *s, void *ud)
{
    (void)s;
    struct pump *p = ud;
    p->closes++;
    if (++*p->done == 2)
        pact_tcp_server_close(p->srv, NULL, NULL);
}

static void pump_start(struct pump *p, pact_stream *s)
{
    p->s = s;
    pact_stream_opts so = {.high_water = HWM, .read_high_water = HWM};
    ck_assert_int_eq(pact_stream_set_opts(s, &so), 0);
    pact_stream_events ev = {
        .data = pump_data, .drain = pump_drain, .close = pump_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, p), 0);
    if (p->hold_reads)
        ck_assert_int_eq(pact_stream_pause(s), 0);
    pump_write(p);
}

static void pump_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (!err)
        pump_start(ud, s);
}

static void pump_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    pump_start(ud, s);
}

START_TEST(mib_each_way)
{
    int done = 0;
    /* the server reads nothing until it has written its MiB: the client's
     * writes back up behind it, and its output must stay bounded */
    struct pump sp = {.hold_reads = true, .done = &done};
    struct pump cp = {.done = &done};
    pact_tcp_server *srv = tls_listen(pump_accept, &sp);
    sp.srv = cp.srv = srv;
    tls_connect(srv, cli_ctx, "localhost", pump_connected, &cp);
    run_ok();
    ck_assert_int_eq(sp.got, BIG);
    ck_assert_int_eq(cp.got, BIG);
    ck_assert_int_eq(sp.closes, 1);
    ck_assert_int_eq(cp.closes, 1);
    /* the output never grew past the mark by more than a write */
    ck_assert_int_le(sp.max_out, HWM + PIECE);
    ck_assert_int_le(cp.max_out, HWM + PIECE);
}
END_TEST

/* ---- peers that close mid-handshake, or speak no TLS --------------------- */

static void hang_up_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (!err)
        pact_stream_destroy(s, NULL);
}

START_TEST(server_closes_mid_handshake)
{
    struct outcome out = {0};
    out.srv = listen_with(NULL, hang_up_accept, NULL);
    tls_connect(out.srv, cli_ctx, "localhost", record_connect, &out);
    run_outcome(&out, PACT_ECONNRESET);
}
END_TEST

/* A raw peer (plain TCP to the TLS server): writes junk, or hangs up
 * without a ClientHello; once the server has closed it, a good client
 * connects and must be served. */
struct good_client {
    const char *junk;
    int raw_closes, ok;
    pact_tcp_server *srv;
    int port;
};

static void good_echo(pact_stream *s, const void *buf, size_t len, void *ud)
{
    struct good_client *g = ud;
    ck_assert_int_eq(len, 1);
    ck_assert_int_eq(*(const char *)buf, 'x');
    g->ok++;
    pact_stream_close(s);
    pact_tcp_server_close(g->srv, NULL, NULL);
}

static void good_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    pact_stream_events ev = {.data = good_echo};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
    ck_assert_int_eq(pact_stream_write(s, "x", 1), 1);
}

static void count_echo_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    (*(int *)ud)++;
    echo_accept(err, s, NULL);
}

static void raw_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)s;
    (void)buf;
    (void)len;
    (void)ud; /* an alert, perhaps */
}

static void raw_close(pact_stream *s, void *ud)
{
    (void)s;
    struct good_client *g = ud;
    g->raw_closes++;
    pact_tcp_connect_opts o = {.tls = cli_ctx, .servername = "localhost"};
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "127.0.0.1", g->port, &o, good_connected, g),
        0);
}

static void raw_connected(pact_error *err, pact_stream *s, void *ud)
{
    struct good_client *g = ud;
    ck_assert_ptr_null(err);
    pact_stream_events ev = {.data = raw_data, .close = raw_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, g), 0);
    if (g->junk)
        ck_assert_int_ge(pact_stream_write(s, g->junk, strlen(g->junk)), 0);
    else
        ck_assert_int_eq(pact_stream_end(s), 0);
}

static void bad_peer_then_good(const char *junk)
{
    int accepted = 0;
    struct good_client g = {.junk = junk};
    g.srv = tls_listen(count_echo_accept, &accepted);
    g.port = pact_tcp_server_port(g.srv);
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "127.0.0.1", g.port, NULL, raw_connected, &g),
        0);
    run_ok();
    ck_assert_int_eq(g.raw_closes, 1); /* the server closed it */
    ck_assert_int_eq(g.ok, 1);         /* and served the next one */
    ck_assert_int_eq(accepted, 1);
}

START_TEST(client_closes_mid_handshake)
{
    bad_peer_then_good(NULL);
}
END_TEST

START_TEST(garbage_instead_of_client_hello)
{
    bad_peer_then_good("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
}
END_TEST

/* ---- cancellation -------------------------------------------------------- */

/* A plain server that holds every connection and aborts @p ud (a token)
 * when the first bytes (a ClientHello) arrive. */
struct holder {
    pact_abort *abort;
    pact_stream *held;
    int hellos;
};

static void hold_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)s;
    (void)buf;
    (void)len;
    struct holder *h = ud;
    if (h->hellos++ == 0 && h->abort)
        pact_abort_abort(h->abort, NULL);
}

static void hold_close(pact_stream *s, void *ud)
{
    struct holder *h = ud;
    if (h->held == s)
        h->held = NULL; /* freed after this event */
}

static void hold_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct holder *h = ud;
    if (err)
        return;
    h->held = s;
    pact_stream_events ev = {.data = hold_data, .close = hold_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, h), 0);
}

struct starter {
    int calls, code, closes;
    pact_abort *abort;
    pact_tcp_server *srv;
    struct holder *h;
};

static void started(pact_error *err, void *ud)
{
    struct starter *st = ud;
    st->calls++;
    st->code = err ? pact_error_code(err) : 0;
    pact_tcp_server_close(st->srv, NULL, NULL);
    if (st->h->held)
        pact_stream_destroy(st->h->held, NULL);
}

static void start_close(pact_stream *s, void *ud)
{
    (void)s;
    ((struct starter *)ud)->closes++;
}

static void plain_connected(pact_error *err, pact_stream *s, void *ud)
{
    struct starter *st = ud;
    ck_assert_ptr_null(err);
    pact_stream_events ev = {.close = start_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, st), 0);
    pact_tls_start_opts so = {.servername = "localhost", .abort = st->abort};
    ck_assert_int_eq(pact_tls_start(s, cli_ctx, &so, started, st), 0);
    ck_assert_int_eq(pact_tls_start(s, cli_ctx, &so, started, st),
                     PACT_EALREADY);
}

START_TEST(abort_during_handshake)
{
    /* pact_tls_start */
    struct holder h = {0};
    struct starter st = {.h = &h};
    ck_assert_int_eq(pact_abort_new(t_loop, &st.abort), 0);
    h.abort = st.abort;
    st.srv = listen_with(NULL, hold_accept, &h);
    connect_to(st.srv, NULL, plain_connected, &st);
    run_ok();
    ck_assert_int_eq(st.calls, 1);
    ck_assert_int_eq(st.code, PACT_ECANCELED);
    ck_assert_int_eq(st.closes, 1);
    pact_abort_unref(st.abort);

    /* a connect with .tls */
    struct holder h2 = {0};
    struct outcome out = {0};
    ck_assert_int_eq(pact_abort_new(t_loop, &h2.abort), 0);
    out.srv = listen_with(NULL, hold_accept, &h2);
    pact_tcp_connect_opts o = {
        .tls = cli_ctx, .servername = "localhost", .abort = h2.abort};
    connect_to(out.srv, &o, record_connect, &out);
    run_outcome(&out, PACT_ECANCELED);
    ck_assert_ptr_null(h2.held); /* closed by the client's end */
    pact_abort_unref(h2.abort);
}
END_TEST

static void count_err_cb(pact_error *err, void *ud)
{
    int *n = ud;
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    (*n)++;
}

static void count_connect(pact_error *err, pact_stream *s, void *ud)
{
    int *n = ud;
    ck_assert_ptr_null(s);
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    (*n)++;
}

struct pending3 {
    struct holder h;
    pact_stream *plain; /* to pact_tls_start on */
};

static void keep_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    ((struct pending3 *)ud)->plain = s;
}

/* Three handshakes pending: a server's (a raw client that sends
 * nothing), a connect's and a pact_tls_start's (to a plain server that
 * holds them). @return after both ClientHellos arrived. */
static void three_pending(struct pending3 *p, pact_tcp_server **tls_srv,
                          pact_tcp_server **plain_srv, int *raw, int *calls)
{
    *tls_srv = tls_listen(count_accept, calls + 3);
    *raw = raw_connect(pact_tcp_server_port(*tls_srv));
    *plain_srv = listen_with(NULL, hold_accept, &p->h);
    int port = pact_tcp_server_port(*plain_srv);
    pact_tcp_connect_opts o = {.tls = cli_ctx, .servername = "localhost"};
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "127.0.0.1", port, &o, count_connect, calls),
        0);
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "127.0.0.1", port, NULL, keep_connected, p),
        0);
    while (!p->plain || pact_tcp_server_connections(*tls_srv) < 1)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_stream_events ev = {0};
    ck_assert_int_eq(pact_stream_on(p->plain, &ev, NULL), 0);
    pact_tls_start_opts so = {.servername = "localhost"};
    ck_assert_int_eq(
        pact_tls_start(p->plain, cli_ctx, &so, count_err_cb, calls + 1), 0);
    while (p->h.hellos < 2)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
}

START_TEST(close_all_with_handshakes_pending)
{
    struct pending3 p = {0};
    pact_tcp_server *tls_srv, *plain_srv;
    int raw, calls[4] = {0};
    three_pending(&p, &tls_srv, &plain_srv, &raw, calls);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_ok();
    ck_assert_int_eq(calls[0], 1); /* the connect's */
    ck_assert_int_eq(calls[1], 1); /* pact_tls_start's */
    ck_assert_int_eq(calls[3], 0); /* nothing accepted */
    pact_stream_destroy(p.plain, NULL);
    pact_tcp_server_close(tls_srv, NULL, NULL);
    pact_tcp_server_close(plain_srv, NULL, NULL);
    run_ok();
    close(raw);
}
END_TEST

START_TEST(loop_freed_with_handshakes_pending)
{
    struct pending3 p = {0};
    pact_tcp_server *tls_srv, *plain_srv;
    int raw, calls[4] = {0};
    three_pending(&p, &tls_srv, &plain_srv, &raw, calls);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(pact_loop_free(t_loop), 0); /* no run between */
    t_loop = NULL;
    ck_assert_int_eq(calls[0] + calls[1] + calls[3], 0); /* dropped */
    close(raw);
    ck_assert_int_eq(pact_loop_new(&t_loop), 0); /* for the teardown */
}
END_TEST

START_TEST(handshake_timeout)
{
    pact_tls_opts so = {.handshake_timeout_ms = 50};
    pact_tls_ctx *quick =
        pact_tls_server_ctx_new(certs.cert, certs.key, &so, NULL);
    ck_assert_ptr_nonnull(quick);
    int accepted = 0;
    pact_tcp_server *srv = listen_with(quick, count_accept, &accepted);
    pact_tls_ctx_free(quick);
    int raw = raw_connect(pact_tcp_server_port(srv));
    /* the server gives up on a client that says nothing: EOF here */
    while (pact_tcp_server_connections(srv) < 1)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    while (pact_tcp_server_connections(srv) > 0)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    char c;
    ck_assert_int_le(read(raw, &c, 1), 0);
    close(raw);
    ck_assert_int_eq(accepted, 0);
    pact_tcp_server_close(srv, NULL, NULL);
    run_ok();
}
END_TEST

/* ---- close_notify, seen by a plain OpenSSL client ------------------------ */

struct ossl_client {
    int port;
    pthread_t th;
    char got[64];
    int last_error; /* SSL_get_error of the read that ended */
    pact_tcp_server *srv;
};

static void *ossl_run(void *arg)
{
    struct ossl_client *c = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, certs.ca, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set1_host(ssl, "localhost");
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set_fd(ssl, raw_connect(c->port));
    c->last_error = -1;
    if (SSL_connect(ssl) == 1) {
        size_t n = 0;
        int r;
        while ((r = SSL_read(ssl, c->got + n, (int)(sizeof c->got - 1 - n))) >
               0)
            n += (size_t)r;
        c->got[n] = 0;
        c->last_error = SSL_get_error(ssl, r);
        SSL_shutdown(ssl);
    }
    close(SSL_get_fd(ssl));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    OPENSSL_thread_stop();
    return NULL;
}

static void ossl_done(void *ud)
{
    struct ossl_client *c = ud;
    pthread_join(c->th, NULL);
    pact_tcp_server_close(c->srv, NULL, NULL);
    pact_loop_release(t_loop);
}

static void *ossl_thread(void *arg)
{
    ossl_run(arg);
    pact_loop_post(t_loop, ossl_done, arg);
    return NULL;
}

static void hello_end_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (err)
        return;
    pact_stream_events ev = {.data = t_echo_data};
    ck_assert_int_eq(pact_stream_on(s, &ev, NULL), 0);
    ck_assert_int_ge(pact_stream_write(s, "hello", 5), 0);
    ck_assert_int_eq(pact_stream_end(s), 0);
}

START_TEST(end_sends_close_notify)
{
    struct ossl_client c = {0};
    c.srv = tls_listen(hello_end_accept, NULL);
    c.port = pact_tcp_server_port(c.srv);
    pact_loop_hold(t_loop);
    ck_assert_int_eq(pthread_create(&c.th, NULL, ossl_thread, &c), 0);
    run_ok();
    ck_assert_str_eq(c.got, "hello");
    /* a clean end (close_notify), not a truncation (SSL_ERROR_SYSCALL) */
    ck_assert_int_eq(c.last_error, SSL_ERROR_ZERO_RETURN);
}
END_TEST

/* ---- HTTPS, answered by curl --------------------------------------------- */

static void hello_handler(pact_http_req *req, void *ud)
{
    (void)ud;
    pact_http_reply(req, 200, "text/plain", "hello over tls\n", 15);
}

struct curl_run {
    char cmd[512];
    int status;
    pthread_t th;
    pact_http_server *srv;
    char out[96];
};

static void curl_done(void *ud)
{
    struct curl_run *c = ud;
    pthread_join(c->th, NULL);
    pact_http_server_close(c->srv, NULL, NULL);
    pact_loop_release(t_loop);
}

static void *curl_thread(void *arg)
{
    struct curl_run *c = arg;
    FILE *f = popen(c->cmd, "r");
    size_t n = f ? fread(c->out, 1, sizeof c->out - 1, f) : 0;
    c->out[n] = 0;
    c->status = f ? pclose(f) : -1;
    pact_loop_post(t_loop, curl_done, c);
    return NULL;
}

START_TEST(https_server_with_curl)
{
    if (system("command -v curl >/dev/null 2>&1") != 0)
        return; /* curl is not installed */
    struct curl_run c = {0};
    pact_http_opts ho = {.tls = srv_ctx};
    ck_assert_int_eq(pact_http_listen(t_loop, "127.0.0.1", 0, &ho, &c.srv), 0);
    ck_assert_int_eq(
        pact_http_route(c.srv, "GET", "/hello", hello_handler, NULL), 0);
    snprintf(c.cmd, sizeof c.cmd,
             "curl -s --max-time 20 --cacert %s "
             "--resolve localhost:%d:127.0.0.1 https://localhost:%d/hello",
             certs.ca, pact_http_server_port(c.srv),
             pact_http_server_port(c.srv));
    pact_loop_hold(t_loop);
    ck_assert_int_eq(pthread_create(&c.th, NULL, curl_thread, &c), 0);
    run_ok();
    ck_assert_int_eq(c.status, 0);
    ck_assert_str_eq(c.out, "hello over tls\n");
}
END_TEST

/* ---- STARTTLS: pact_tls_start on streams both sides hold, in tasks ------- */

struct starttls {
    pact_tcp_server *srv;
    int port;
    char client_got[32];
};

static pact_error *starttls_server(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    pact_value v;
    /* the client sends its ClientHello right behind this line: it may be
     * read ahead, and pact_tls_start must take it */
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &v));
    ck_assert_str_eq((char *)v.u.bytes.data, "STARTTLS");
    pact_value_release(&v);
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_tls_start_p(s, srv_ctx, NULL), NULL));
    ck_assert_ptr_nonnull(pact_tls_version(s));
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &v));
    ck_assert_str_eq((char *)v.u.bytes.data, "hi");
    pact_value_release(&v);
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_stream_write_p(s, "secret\n", 7), NULL));
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_end_p(s), NULL));
    expect_eof_and_close(s);
    return NULL;
}

static void starttls_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (!err)
        pact_promise_unref(pact_task_spawn(t_loop, starttls_server, s, NULL));
}

static pact_error *starttls_client(void *arg, pact_value *result)
{
    (void)result;
    struct starttls *st = arg;
    pact_value v;
    ck_assert_ptr_null(PACT_AWAIT_ERR(
        pact_tcp_connect_p(t_loop, "127.0.0.1", st->port, NULL), &v));
    pact_stream *s = v.u.ptr;
    ck_assert_int_eq(pact_stream_write(s, "STARTTLS\n", 9), 1);
    pact_tls_start_opts so = {.servername = "localhost"};
    pact_promise *hs = pact_tls_start_p(s, cli_ctx, &so);
    ck_assert_ptr_nonnull(hs);
    ck_assert(pact_stream_is_tls(s));
    /* written during the handshake: sent, encrypted, once it is done */
    ck_assert_int_ge(pact_stream_write(s, "hi\n", 3), 0);
    ck_assert_ptr_null(PACT_AWAIT_ERR(hs, NULL));
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &v));
    snprintf(st->client_got, sizeof st->client_got, "%s",
             (char *)v.u.bytes.data);
    pact_value_release(&v);
    expect_eof_and_close(s);
    pact_tcp_server_close(st->srv, NULL, NULL);
    return NULL;
}

START_TEST(starttls_in_tasks)
{
    struct starttls st = {0};
    st.srv = listen_with(NULL, starttls_accept, NULL);
    st.port = pact_tcp_server_port(st.srv);
    pact_promise *t = pact_task_spawn(t_loop, starttls_client, &st, NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(t), PACT_FULFILLED);
    pact_promise_unref(t);
    ck_assert_str_eq(st.client_got, "secret");
}
END_TEST

/* ---- sendfile and timeouts on a TLS stream ------------------------------- */

#define SF_LEN 300000
#define SF_OFF 7

struct sf {
    int fd, port;
    pact_tcp_server *srv;
    unsigned char *want;
};

static struct sf *sf_cur;

static pact_error *sf_serve(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    ck_assert_int_ge(pact_stream_write(s, "head\n", 5), 0);
    pact_promise *f = pact_stream_sendfile_p(s, sf_cur->fd, SF_OFF, SF_LEN);
    ck_assert_int_ge(pact_stream_write(s, "tail\n", 5), 0);
    ck_assert_ptr_null(PACT_AWAIT_ERR(f, NULL));
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_end_p(s), NULL));
    pact_stream_close(s);
    return NULL;
}

static void sf_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (!err)
        pact_promise_unref(pact_task_spawn(t_loop, sf_serve, s, NULL));
}

static pact_error *sf_client(void *arg, pact_value *result)
{
    (void)result;
    struct sf *f = arg;
    pact_tcp_connect_opts o = {.tls = cli_ctx, .servername = "localhost"};
    pact_value v;
    ck_assert_ptr_null(PACT_AWAIT_ERR(
        pact_tcp_connect_p(t_loop, "127.0.0.1", f->port, &o), &v));
    pact_stream *s = v.u.ptr;
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_stream_read_exact_p(s, 5 + SF_LEN + 5, NULL), &v));
    const unsigned char *b = v.u.bytes.data;
    ck_assert(memcmp(b, "head\n", 5) == 0);
    ck_assert(memcmp(b + 5, f->want + SF_OFF, SF_LEN) == 0);
    ck_assert(memcmp(b + 5 + SF_LEN, "tail\n", 5) == 0);
    pact_value_release(&v);
    expect_eof_and_close(s);
    pact_tcp_server_close(f->srv, NULL, NULL);
    return NULL;
}

START_TEST(sendfile_over_tls)
{
    struct sf f = {0};
    f.want = malloc(SF_OFF + SF_LEN);
    for (size_t i = 0; i < SF_OFF + SF_LEN; i++)
        f.want[i] = pattern(i);
    char path[] = "/tmp/pact-tls-sendfile-XXXXXX";
    f.fd = mkstemp(path);
    ck_assert_int_ge(f.fd, 0);
    unlink(path);
    ck_assert_int_eq(write(f.fd, f.want, SF_OFF + SF_LEN),
                     (ssize_t)(SF_OFF + SF_LEN));
    sf_cur = &f;
    f.srv = tls_listen(sf_accept, NULL);
    f.port = pact_tcp_server_port(f.srv);
    pact_promise *t = pact_task_spawn(t_loop, sf_client, &f, NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(t), PACT_FULFILLED);
    pact_promise_unref(t);
    close(f.fd);
    free(f.want);
}
END_TEST

struct idle {
    struct t_seen seen; /* first: the ud of t_seen_end and t_seen_close too */
    int code;
};

static void idle_error(pact_stream *s, pact_error *err, void *ud)
{
    (void)s;
    ((struct idle *)ud)->code = pact_error_code(err);
}

static void idle_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_stream_events ev = {.data = t_echo_data, .error = idle_error};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
}

static void idle_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    pact_stream_events ev = {
        .data = t_echo_data, .end = t_seen_end, .close = t_seen_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
}

START_TEST(read_timeout_after_handshake)
{
    struct idle i = {0};
    pact_stream_opts so = {.read_timeout_ms = 100};
    pact_tcp_listen_opts lo = {.tls = srv_ctx, .stream = &so};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, &lo, idle_accept,
                                     &i, &i.seen.srv),
                     0);
    tls_connect(i.seen.srv, cli_ctx, "localhost", idle_connected, &i);
    run_ok();
    ck_assert_int_eq(i.code, PACT_ETIMEDOUT); /* the server's stream */
    ck_assert_int_eq(i.seen.closes, 1);       /* and the client saw it go */
}
END_TEST

/* ---- misuse and bad files ------------------------------------------------ */

START_TEST(misuse)
{
    pact_error *err = NULL;
    ck_assert_ptr_null(pact_tls_server_ctx_new("/nonexistent/cert.pem",
                                               certs.key, NULL, &err));
    ck_assert_int_eq(pact_error_code(err), PACT_ENOENT);
    pact_error_unref(err);
    /* a key that is not the certificate's */
    ck_assert_ptr_null(
        pact_tls_server_ctx_new(certs.ca, certs.key, NULL, &err));
    ck_assert_int_eq(pact_error_code(err), PACT_EPROTO);
    pact_error_unref(err);
    /* a CA file that is not PEM */
    pact_tls_opts co = {.ca_file = certs.dir};
    ck_assert_ptr_null(pact_tls_client_ctx_new(&co, &err));
    ck_assert_ptr_nonnull(err);
    pact_error_unref(err);
    ck_assert_ptr_null(pact_tls_server_ctx_new(NULL, NULL, NULL, &err));
    ck_assert_int_eq(pact_error_code(err), PACT_EINVAL);
    pact_error_unref(err);
    pact_tls_ctx_free(NULL);

    /* a client context to listen with, a server one to connect with */
    pact_tcp_server *srv;
    pact_tcp_listen_opts lo = {.tls = cli_ctx};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, &lo, count_accept, NULL, &srv),
        PACT_EINVAL);
    pact_tcp_connect_opts o = {.tls = srv_ctx};
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "127.0.0.1", 1, &o, record_connect, NULL),
        PACT_EINVAL);
    ck_assert_int_eq(pact_tls_start(NULL, cli_ctx, NULL, count_cb, NULL),
                     PACT_EINVAL);
    ck_assert_ptr_null(pact_tls_start_p(NULL, cli_ctx, NULL));
    ck_assert(!pact_stream_is_tls(NULL));
    ck_assert_ptr_null(pact_tls_version(NULL));
}
END_TEST

/* A plain stream: pact_tls_start's own refusals. */
static void refusals_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    pact_tcp_server *srv = ud;
    ck_assert_int_eq(pact_tls_start(s, NULL, NULL, count_cb, NULL),
                     PACT_EINVAL);
    /* a verifying client needs a name */
    ck_assert_int_eq(pact_tls_start(s, cli_ctx, NULL, count_cb, NULL),
                     PACT_EINVAL);
    ck_assert(!pact_stream_is_tls(s));
    pact_stream_destroy(s, NULL);
    pact_tcp_server_close(srv, NULL, NULL);
}

START_TEST(start_refusals)
{
    struct holder h = {0};
    pact_tcp_server *srv = listen_with(NULL, hold_accept, &h);
    connect_to(srv, NULL, refusals_connected, srv);
    run_ok();
    ck_assert_ptr_null(h.held);
}
END_TEST

Suite *suite_tls(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, echo_three_styles);
    tcase_add_test(tc, echo_callbacks);
    tcase_add_test(tc, unknown_ca);
    tcase_add_test(tc, wrong_hostname);
    tcase_add_test(tc, insecure_no_verify);
    tcase_add_test(tc, mib_each_way);
    tcase_add_test(tc, server_closes_mid_handshake);
    tcase_add_test(tc, client_closes_mid_handshake);
    tcase_add_test(tc, garbage_instead_of_client_hello);
    tcase_add_test(tc, abort_during_handshake);
    tcase_add_test(tc, close_all_with_handshakes_pending);
    tcase_add_test(tc, loop_freed_with_handshakes_pending);
    tcase_add_test(tc, handshake_timeout);
    tcase_add_test(tc, end_sends_close_notify);
    tcase_add_test(tc, https_server_with_curl);
    tcase_add_test(tc, starttls_in_tasks);
    tcase_add_test(tc, sendfile_over_tls);
    tcase_add_test(tc, read_timeout_after_handshake);
    tcase_add_test(tc, misuse);
    tcase_add_test(tc, start_refusals);
    suite_add_tcase(s, tc);
    return s;
}
