/* TCP servers, clients and streams (pact/tcp.h, pact/stream.h), with real
 * sockets on 127.0.0.1 and ::1: an echo server in callback, promise and
 * task style driven by one client producing one transcript; a thousand
 * connections at once; peers that reset mid-read and mid-write (error
 * events, never SIGPIPE); a slow reader (the output stays bounded, drain
 * follows); an over-long line (that connection only); half-close; refused
 * connects and names that do not resolve; accept out of descriptors (no
 * spin, recovery); abort tokens and close_all on pending connects and reads
 * (one ECANCELED call each); pact_loop_free refusing with a server open. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

static bool have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    a.sin6_addr = in6addr_loopback;
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* ---- echo in three styles, one client ------------------------------------ */

/* The servers and the client are helpers.c's, shared with the TLS suite. */
static void three_styles(const char *host)
{
    char *a = t_echo_transcript(host, NULL, NULL, t_echo_accept_cb);
    char *b = t_echo_transcript(host, NULL, NULL, t_echo_accept_promise);
    char *c = t_echo_transcript(host, NULL, NULL, t_echo_accept_task);
    ck_assert_int_eq(t_count(a, "got line"), T_ECHO_LINES);
    ck_assert_int_eq(t_count(a, "then EOF"), 1);
    ck_assert_str_eq(a, b);
    ck_assert_str_eq(a, c);
    free(a);
    free(b);
    free(c);
}

START_TEST(echo_three_styles_v4)
{
    three_styles("127.0.0.1");
}
END_TEST

START_TEST(echo_three_styles_v6)
{
    if (!have_ipv6()) {
        fprintf(stderr, "tcp: no IPv6 on this kernel: ::1 skipped\n");
        return;
    }
    three_styles("::1");
}
END_TEST

/* ---- many connections ---------------------------------------------------- */

#define MANY 1000

struct many {
    int connected, echoed, closed;
    pact_tcp_server *srv;
};

static void many_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)buf;
    struct many *m = ud;
    ck_assert_int_eq(len, 64);
    m->echoed++;
    pact_stream_close(s);
}

static void many_close(pact_stream *s, void *ud)
{
    (void)s;
    struct many *m = ud;
    if (++m->closed == MANY)
        pact_tcp_server_close(m->srv, NULL, NULL);
}

static void many_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    struct many *m = ud;
    m->connected++;
    pact_stream_events ev = {.data = many_data, .close = many_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, m), 0);
    char msg[64];
    memset(msg, 'x', sizeof msg);
    ck_assert_int_eq(pact_stream_write(s, msg, sizeof msg), 1);
}

START_TEST(many_connections)
{
    struct many m = {0};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     t_echo_accept_cb, NULL, &m.srv),
                     0);
    int port = pact_tcp_server_port(m.srv);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(pact_tcp_connect(t_loop, "127.0.0.1", port, NULL,
                                          many_connected, &m),
                         0);
    run_ok();
    ck_assert_int_eq(m.connected, MANY);
    ck_assert_int_eq(m.echoed, MANY);
    ck_assert_int_eq(m.closed, MANY);
}
END_TEST

/* ---- peers that go away -------------------------------------------------- */

struct peer {
    struct t_seen seen; /* first: the ud of t_seen_close too */
    int errors, code, reads;
    pact_stream *server_side;
    int raw; /* the client, a plain socket */
    size_t written;
};

static void peer_error(pact_stream *s, pact_error *err, void *ud)
{
    (void)s;
    struct peer *p = ud;
    p->errors++;
    p->code = pact_error_code(err);
}

static int raw_connect(int port)
{
    return t_dial(port, 0);
}

/* close with a reset (SO_LINGER 0) */
static void raw_reset(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static void reset_soon(pact_error *err, void *ud)
{
    (void)err;
    struct peer *p = ud;
    raw_reset(p->raw);
}

static void mid_read_got(pact_error *err, pact_value *data, void *ud)
{
    (void)data;
    struct peer *p = ud;
    p->reads++;
    p->code = pact_error_code(err);
}

static void mid_read_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct peer *p = ud;
    if (err)
        return;
    pact_stream_events ev = {.error = peer_error, .close = t_seen_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, p), 0);
    ck_assert_int_eq(pact_stream_read_exact(s, 1000, NULL, mid_read_got, p), 0);
    ck_assert_int_eq(send(p->raw, "only ten b", 10, 0), 10);
    T_MUST(pact_timeout(t_loop, 20, reset_soon, p, NULL));
}

START_TEST(peer_resets_mid_read)
{
    struct peer p = {0};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     mid_read_accept, &p, &p.seen.srv),
                     0);
    p.raw = raw_connect(pact_tcp_server_port(p.seen.srv));
    run_ok();
    ck_assert_int_eq(p.reads, 1);
    ck_assert_int_eq(p.code, PACT_ECONNRESET);
    ck_assert_int_eq(p.errors, 1);
    ck_assert_int_eq(p.seen.closes, 1);
}
END_TEST

static void flood(pact_stream *s, void *ud);

static void mid_write_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct peer *p = ud;
    if (err)
        return;
    pact_stream_events ev = {
        .error = peer_error, .close = t_seen_close, .drain = flood};
    ck_assert_int_eq(pact_stream_on(s, &ev, p), 0);
    flood(s, p);
    raw_reset(p->raw); /* it never read a byte */
}

static void flood(pact_stream *s, void *ud)
{
    struct peer *p = ud;
    static char chunk[16384];
    int rc;
    while ((rc = pact_stream_write(s, chunk, sizeof chunk)) == 1)
        p->written += sizeof chunk;
}

START_TEST(peer_resets_mid_write)
{
    /* a SIGPIPE would end this process: Check reports the signal */
    struct peer p = {0};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     mid_write_accept, &p, &p.seen.srv),
                     0);
    p.raw = raw_connect(pact_tcp_server_port(p.seen.srv));
    run_ok();
    ck_assert_int_eq(p.errors, 1);
    ck_assert(p.code == PACT_EPIPE || p.code == PACT_ECONNRESET);
    ck_assert_int_eq(p.seen.closes, 1);
}
END_TEST

/* ---- a slow reader ------------------------------------------------------- */

#define SLOW_TOTAL (4u << 20)
#define SLOW_CHUNK 4096u
#define SLOW_HWM 32768u

struct slow {
    size_t sent, got, max_buffered;
    int drains, zeros;
    pact_tcp_server *srv;
    pact_stream *reader;
    bool reader_paused;
};

static void slow_fill(pact_stream *s, void *ud)
{
    struct slow *w = ud;
    static char chunk[SLOW_CHUNK];
    if (s && w->sent) /* called as the drain event */
        w->drains++;
    while (w->sent < SLOW_TOTAL) {
        int rc = pact_stream_write(s, chunk, SLOW_CHUNK);
        ck_assert_int_ge(rc, 0);
        w->sent += SLOW_CHUNK;
        size_t b = pact_stream_buffered(s);
        if (b > w->max_buffered)
            w->max_buffered = b;
        if (rc == 0) {
            w->zeros++;
            return; /* wait for drain */
        }
    }
    pact_stream_close(s);
}

static void slow_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_stream_opts o = {.high_water = SLOW_HWM};
    ck_assert_int_eq(pact_stream_set_opts(s, &o), 0);
    pact_stream_events ev = {.drain = slow_fill};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
    slow_fill(s, ud);
}

static void slow_resume(pact_error *err, void *ud)
{
    (void)err;
    struct slow *w = ud;
    w->reader_paused = false;
    pact_stream_resume(w->reader);
}

static void slow_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)buf;
    struct slow *w = ud;
    w->got += len;
    /* read a little, then pause a while */
    pact_stream_pause(s);
    w->reader_paused = true;
    T_MUST(pact_timeout(t_loop, 1, slow_resume, w, NULL));
}

static void slow_end(pact_stream *s, void *ud)
{
    (void)s;
    struct slow *w = ud;
    pact_tcp_server_close(w->srv, NULL, NULL);
}

static void slow_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    struct slow *w = ud;
    w->reader = s;
    pact_stream_events ev = {.data = slow_data, .end = slow_end};
    ck_assert_int_eq(pact_stream_on(s, &ev, w), 0);
}

START_TEST(slow_reader_bounded)
{
    struct slow w = {0};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, slow_accept, &w, &w.srv),
        0);
    pact_stream_opts small = {.read_high_water = 4096};
    pact_tcp_connect_opts co = {.stream = &small};
    ck_assert_int_eq(pact_tcp_connect(t_loop, "127.0.0.1",
                                      pact_tcp_server_port(w.srv), &co,
                                      slow_connected, &w),
                     0);
    run_ok();
    ck_assert_uint_eq(w.got, SLOW_TOTAL);
    ck_assert_uint_eq(w.sent, SLOW_TOTAL);
    ck_assert_int_gt(w.zeros, 0);
    ck_assert_int_eq(w.drains, w.zeros);
    ck_assert_uint_le(w.max_buffered, SLOW_HWM + SLOW_CHUNK);
}
END_TEST

/* ---- a slow consumer: reading stops at the read high-water mark ---------- */

#define RHWM 16384u

struct consumer {
    pact_stream *s;
    size_t got, max_input;
    bool first;
};

static void first_byte(pact_error *err, pact_value *data, void *ud)
{
    ck_assert_ptr_null(err);
    ck_assert_int_eq(data->u.bytes.len, 1);
    ((struct consumer *)ud)->first = true;
}

static void consumer_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    struct consumer *c = ud;
    c->s = s;
    pact_stream_opts o = {.read_high_water = RHWM};
    ck_assert_int_eq(pact_stream_set_opts(s, &o), 0);
    /* one byte is taken; the rest waits for a consumer that does not come */
    ck_assert_int_eq(pact_stream_read_exact(s, 1, NULL, first_byte, c), 0);
}

static void drained(pact_error *err, pact_value *data, void *ud)
{
    ck_assert_ptr_null(err);
    struct consumer *c = ud;
    c->got = data->u.bytes.len;
    pact_stream_close(c->s);
}

START_TEST(slow_consumer_bounded)
{
    struct consumer c = {0};
    pact_tcp_server *srv;
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     consumer_accept, &c, &srv),
                     0);
    int raw = raw_connect(pact_tcp_server_port(srv));
    static char chunk[65536];
    size_t sent = 0;
    int stuck = 0;
    /* the client writes until the kernel's buffers are full: the server
     * must stop reading, not take it all */
    while (stuck < 50 && sent < (64u << 20)) {
        ssize_t n = send(raw, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t)n, stuck = 0;
        else
            stuck++;
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
        if (c.s && pact_stream_input(c.s) > c.max_input)
            c.max_input = pact_stream_input(c.s);
        if (n <= 0)
            usleep(1000);
    }
    ck_assert(c.first);
    ck_assert_uint_lt(sent, 64u << 20); /* it did push back */
    ck_assert_uint_le(c.max_input, RHWM + 65536);
    /* now consume: everything arrives */
    shutdown(raw, SHUT_WR);
    ck_assert_int_eq(pact_stream_read_exact(c.s, sent - 1, NULL, drained, &c),
                     0);
    pact_tcp_server_close(srv, NULL, NULL);
    run_ok();
    ck_assert_uint_eq(c.got, sent - 1);
    close(raw);
}
END_TEST

/* ---- an over-long line hurts that connection only ------------------------ */

struct longl {
    int errors, lines, closes;
    int code;
    pact_tcp_server *srv;
};

static void long_got(pact_error *err, pact_value *data, void *ud)
{
    struct longl *l = ud;
    if (err) {
        l->errors++;
        l->code = pact_error_code(err);
        return;
    }
    ck_assert_str_eq(data->u.bytes.data, "short");
    l->lines++;
}

static void long_close(pact_stream *s, void *ud)
{
    (void)s;
    struct longl *l = ud;
    if (++l->closes == 2)
        pact_tcp_server_close(l->srv, NULL, NULL);
}

static void long_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_stream_events ev = {.close = long_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
    pact_read_opts o = {.max = 16};
    ck_assert_int_eq(pact_stream_read_line(s, &o, long_got, ud), 0);
}

START_TEST(read_line_too_long)
{
    struct longl l = {0};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, long_accept, &l, &l.srv),
        0);
    int port = pact_tcp_server_port(l.srv);
    int bad = raw_connect(port), good = raw_connect(port);
    char junk[100];
    memset(junk, 'j', sizeof junk);
    ck_assert_int_eq(send(bad, junk, sizeof junk, 0), 100);
    ck_assert_int_eq(send(good, "short\r\n", 7, 0), 7);
    shutdown(good, SHUT_WR);
    run_ok();
    ck_assert_int_eq(l.errors, 1);
    ck_assert_int_eq(l.code, PACT_EMSGSIZE);
    ck_assert_int_eq(l.lines, 1);
    char buf[8];
    ck_assert_int_eq(recv(bad, buf, sizeof buf, 0), 0); /* closed on it */
    close(bad);
    close(good);
}
END_TEST

/* ---- half-close ---------------------------------------------------------- */

static pact_error *half_server(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    pact_value v;
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_stream_read_exact_p(s, 5, NULL), &v));
    ck_assert_str_eq(v.u.bytes.data, "hello");
    pact_value_release(&v);
    pact_error *err = PACT_AWAIT_ERR(pact_stream_read_some_p(s, NULL), NULL);
    ck_assert_int_eq(pact_error_code(err), PACT_EOF); /* the client ended */
    pact_error_unref(err);
    /* its side is still open: answer, then end */
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_write_p(s, "bye", 3), NULL));
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_end_p(s), NULL));
    pact_stream_close(s);
    return NULL;
}

static pact_tcp_server *half_srv;

static void half_accept(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    if (err)
        return;
    pact_tcp_server_close(half_srv, NULL, NULL);
    pact_promise_unref(pact_task_spawn(t_loop, half_server, s, NULL));
}

static pact_error *half_client(void *arg, pact_value *result)
{
    (void)result;
    pact_stream_opts o = {.allow_half_open = true};
    pact_tcp_connect_opts co = {.stream = &o};
    pact_value v;
    ck_assert_ptr_null(PACT_AWAIT_ERR(
        pact_tcp_connect_p(t_loop, "127.0.0.1", *(int *)arg, &co), &v));
    pact_stream *s = v.u.ptr;
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_stream_write_p(s, "hello", 5), NULL));
    ck_assert_int_eq(pact_stream_end(s), 0);
    ck_assert_int_eq(pact_stream_write(s, "x", 1), PACT_EPIPE);
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_stream_read_until_p(s, "e", 1, NULL), &v));
    ck_assert_str_eq(v.u.bytes.data, "bye");
    pact_value_release(&v);
    pact_error *err = PACT_AWAIT_ERR(pact_stream_read_some_p(s, NULL), NULL);
    ck_assert_int_eq(pact_error_code(err), PACT_EOF);
    pact_error_unref(err);
    pact_stream_close(s);
    return NULL;
}

START_TEST(half_close)
{
    pact_stream_opts o = {.allow_half_open = true};
    pact_tcp_listen_opts lo = {.stream = &o};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, &lo, half_accept,
                                     NULL, &half_srv),
                     0);
    int port = pact_tcp_server_port(half_srv);
    pact_promise *t = pact_task_spawn(t_loop, half_client, &port, NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(t), PACT_FULFILLED);
    pact_promise_unref(t);
}
END_TEST

/* ---- connects that fail -------------------------------------------------- */

static void expect_code(pact_error *err, pact_stream *s, void *ud)
{
    int *want = ud;
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(err);
    trace("%s", pact_err_name(pact_error_code(err)));
    *want = pact_error_code(err);
}

START_TEST(connect_refused)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd); /* bound, never listened: nothing there */
    int code = 0;
    ck_assert_int_eq(pact_tcp_connect(t_loop, "127.0.0.1", ntohs(a.sin_port),
                                      NULL, expect_code, &code),
                     0);
    run_ok();
    ck_assert_int_eq(code, PACT_ECONNREFUSED);
}
END_TEST

START_TEST(name_does_not_resolve)
{
    int code = 0;
    ck_assert_int_eq(pact_tcp_connect(t_loop, "no-such-host.invalid", 80, NULL,
                                      expect_code, &code),
                     0);
    run_ok();
    ck_assert_int_eq(code, PACT_ENOENT);
}
END_TEST

static void resolved_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    pact_stream_destroy(s, NULL);
    pact_tcp_server_close(ud, NULL, NULL);
}

START_TEST(name_resolves)
{
    pact_tcp_server *srv;
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     t_echo_accept_cb, NULL, &srv),
                     0);
    ck_assert_int_eq(pact_tcp_connect(t_loop, "localhost",
                                      pact_tcp_server_port(srv), NULL,
                                      resolved_connected, srv),
                     0);
    run_ok();
}
END_TEST

/* ---- cancellation -------------------------------------------------------- */

static int cancelled;
static void count_cancel(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    ck_assert_ptr_null(s);
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    cancelled++;
}

START_TEST(abort_pending_connect)
{
    cancelled = 0;
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_tcp_connect_opts o = {.abort = a};
    /* a name: its resolution is a pool job, so the connect is pending */
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "localhost", 9, &o, count_cancel, NULL), 0);
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert_int_eq(cancelled, 0); /* never inside the abort */
    run_ok();
    ck_assert_int_eq(cancelled, 1);
    /* close_all, while resolving */
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "localhost", 9, NULL, count_cancel, NULL), 0);
    pact_loop_close_all(t_loop);
    run_ok();
    ck_assert_int_eq(cancelled, 2);
    pact_abort_unref(a);
}
END_TEST

/* a listener that never accepts, its queue full: connects to it wait */
static int full_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 0), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void read_cancelled(pact_error *err, pact_value *data, void *ud)
{
    ck_assert_ptr_null(data);
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    (*(int *)ud)++;
}

struct pend {
    pact_abort *a;
    int reads, accepts_cancelled, errors, closes;
    pact_stream *s;
};

static void pend_error(pact_stream *s, pact_error *err, void *ud)
{
    (void)s;
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    ((struct pend *)ud)->errors++;
}

static void pend_close(pact_stream *s, void *ud)
{
    (void)s;
    ((struct pend *)ud)->closes++;
}

static void pend_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct pend *p = ud;
    if (err) {
        ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
        p->accepts_cancelled++;
        return;
    }
    p->s = s;
    pact_stream_events ev = {.error = pend_error, .close = pend_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, p), 0);
    pact_read_opts o = {.abort = p->a};
    ck_assert_int_eq(pact_stream_read_some(s, &o, read_cancelled, &p->reads),
                     0);
    ck_assert_int_eq(pact_abort_abort(p->a, NULL), 0);
    ck_assert_int_eq(p->reads, 0);
    /* the stream stays open: a second read, left pending */
    ck_assert_int_eq(pact_stream_read_some(s, NULL, read_cancelled, &p->reads),
                     0);
}

static void pend_later(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
}

START_TEST(cancel_pending_connect_and_read)
{
    cancelled = 0;
    int port;
    int full = full_listener(&port);
    int fill[4];
    for (int i = 0; i < 4; i++) { /* fill its accept queue */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "127.0.0.1", port, NULL, count_cancel, NULL),
        0);
    struct pend p = {0};
    ck_assert_int_eq(pact_abort_new(t_loop, &p.a), 0);
    pact_tcp_server *srv;
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, pend_accept, &p, &srv),
        0);
    int raw = raw_connect(pact_tcp_server_port(srv));
    T_MUST(pact_timeout(t_loop, 100, pend_later, NULL, NULL));
    run_ok();
    ck_assert_int_eq(cancelled, 1); /* the connect, once */
    ck_assert_int_eq(p.reads, 2);   /* the aborted read and close_all's */
    ck_assert_int_eq(p.accepts_cancelled, 1);
    ck_assert_int_eq(p.errors, 1);
    ck_assert_int_eq(p.closes, 1);
    pact_tcp_server_close(srv, NULL, NULL);
    run_ok();
    pact_abort_unref(p.a);
    close(raw);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(full);
}
END_TEST

START_TEST(connect_timeout)
{
    int port;
    int full = full_listener(&port);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    trace_reset();
    int code = 0;
    pact_tcp_connect_opts o = {.timeout_ms = 50};
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "127.0.0.1", port, &o, expect_code, &code), 0);
    run_ok();
    ck_assert_int_eq(code, PACT_ETIMEDOUT);
    ck_assert_str_eq(trace_text(), "ETIMEDOUT\n"); /* once */
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(full);
}
END_TEST

START_TEST(reuseport)
{
    pact_tcp_server *a, *b;
    pact_tcp_listen_opts o = {.reuseport = true};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, &o, t_echo_accept_cb, NULL, &a),
        0);
    int port = pact_tcp_server_port(a);
    /* a second socket on the port: only with SO_REUSEPORT on both */
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", port, NULL,
                                     t_echo_accept_cb, NULL, &b),
                     PACT_EADDRINUSE);
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", port, &o,
                                     t_echo_accept_cb, NULL, &b),
                     0);
    ck_assert_int_eq(pact_tcp_server_port(b), port);
    pact_tcp_server_close(a, NULL, NULL);
    pact_tcp_server_close(b, NULL, NULL);
    run_ok();
}
END_TEST

static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    ck_assert_int_eq(getsockopt(fd, level, name, &v, &l), 0);
    return v;
}

static void opts_connected(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    int fd = pact_stream_fd(s);
    ck_assert_int_ne(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    ck_assert_int_ne(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    ck_assert_int_eq(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
    pact_stream_opts off = {0};
    ck_assert_int_eq(pact_stream_set_opts(s, &off), 0);
    ck_assert_int_eq(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    pact_stream_destroy(s, NULL);
    pact_tcp_server_close(ud, NULL, NULL);
}

START_TEST(socket_options)
{
    pact_tcp_server *srv;
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     t_echo_accept_cb, NULL, &srv),
                     0);
    pact_stream_opts so = {.nodelay = true, .keepalive_s = 30};
    pact_tcp_connect_opts co = {.stream = &so};
    ck_assert_int_eq(pact_tcp_connect(t_loop, "127.0.0.1",
                                      pact_tcp_server_port(srv), &co,
                                      opts_connected, srv),
                     0);
    run_ok();
}
END_TEST

/* ---- pact_loop_free ------------------------------------------------------ */

START_TEST(free_busy_with_server)
{
    pact_tcp_server *srv;
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     t_echo_accept_cb, NULL, &srv),
                     0);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    struct capture c;
    capture_begin(&c);
    ck_assert_uint_ge(pact_loop_print_pending(t_loop, stderr), 1);
    char *text = capture_end(&c);
    ck_assert_ptr_nonnull(strstr(text, "server on port"));
    free(text);
    ck_assert_int_eq(pact_tcp_server_close(srv, NULL, NULL), 0);
    run_ok();
}
END_TEST

/* ---- timeouts ------------------------------------------------------------ */

struct tmo {
    struct t_seen seen; /* first: the ud of t_seen_close too */
    int errors;
    char why[64];
};

static void tmo_error(pact_stream *s, pact_error *err, void *ud)
{
    (void)s;
    struct tmo *t = ud;
    ck_assert_int_eq(pact_error_code(err), PACT_ETIMEDOUT);
    snprintf(t->why, sizeof t->why, "%s", pact_error_message(err));
    t->errors++;
}

static void tmo_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_stream_events ev = {.error = tmo_error, .close = t_seen_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
}

static void tmo_read_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    static struct peer ignored;
    tmo_accept(err, s, ud);
    ck_assert_int_eq(pact_stream_read_line(s, NULL, mid_read_got, &ignored), 0);
}

static void tmo_write_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    tmo_accept(err, s, ud);
    static char chunk[65536];
    while (pact_stream_write(s, chunk, sizeof chunk) == 1)
        ;
}

static void one_timeout(pact_tcp_accept_cb accept, pact_stream_opts *o,
                        const char *why)
{
    struct tmo t = {0};
    pact_tcp_listen_opts lo = {.stream = o};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, &lo, accept, &t, &t.seen.srv),
        0);
    int raw = raw_connect(pact_tcp_server_port(t.seen.srv));
    uint64_t t0 = now_us();
    run_ok();
    ck_assert_uint_ge(now_us() - t0, 40000); /* not before its time */
    ck_assert_int_eq(t.errors, 1);
    ck_assert_int_eq(t.seen.closes, 1);
    ck_assert_str_eq(t.why, why);
    close(raw);
}

START_TEST(timeouts)
{
    pact_stream_opts idle = {.idle_timeout_ms = 50};
    one_timeout(tmo_accept, &idle, "idle timeout");
    pact_stream_opts rd = {.read_timeout_ms = 50};
    one_timeout(tmo_read_accept, &rd, "read timeout");
    /* the client never reads: the kernel's buffers fill, then nothing */
    pact_stream_opts wr = {.write_timeout_ms = 50, .high_water = 1 << 20};
    one_timeout(tmo_write_accept, &wr, "write timeout");
}
END_TEST

/* a stream that keeps writing is not idle */
struct talker {
    pact_stream *s;
    int ticks;
    pact_handle h;
    pact_tcp_server *srv;
    int errors;
};

static void talk(pact_error *err, void *ud)
{
    (void)err;
    struct talker *t = ud;
    if (++t->ticks == 40) { /* 800 ms, over two idle timeouts, then stop */
        T_MUST(pact_clear(t_loop, t->h));
        pact_stream_close(t->s);
        pact_tcp_server_close(t->srv, NULL, NULL);
        return;
    }
    ck_assert_int_eq(pact_stream_write(t->s, "tick\n", 5), 1);
}

static void talker_error(pact_stream *s, pact_error *err, void *ud)
{
    (void)s;
    (void)err;
    ((struct talker *)ud)->errors++;
}

static void talker_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    struct talker *t = ud;
    t->s = s;
    pact_stream_events ev = {.error = talker_error};
    ck_assert_int_eq(pact_stream_on(s, &ev, t), 0);
    T_MUST(pact_interval(t_loop, 20, talk, t, &t->h));
}

START_TEST(writing_is_not_idle)
{
    struct talker t = {0};
    /* far above the 20 ms between writes: a loaded machine delays them */
    pact_stream_opts idle = {.idle_timeout_ms = 300};
    pact_tcp_listen_opts lo = {.stream = &idle};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, &lo, talker_accept, &t, &t.srv),
        0);
    int raw = raw_connect(pact_tcp_server_port(t.srv));
    run_ok();
    ck_assert_int_eq(t.ticks, 40);
    ck_assert_int_eq(t.errors, 0);
    close(raw);
}
END_TEST

/* ---- Unix sockets, the connection limit, the stream's token ---------------
 */

static void unix_data(pact_stream *s, const void *buf, size_t len, void *ud)
{
    (void)buf;
    ck_assert_int_eq(len, 64);
    (*(int *)ud)++;
    pact_stream_close(s);
}

static pact_tcp_server *unix_srv;
static void unix_close(pact_stream *s, void *ud)
{
    (void)s;
    (void)ud;
    pact_tcp_server_close(unix_srv, NULL, NULL);
}

static void unix_client(pact_error *err, pact_stream *s, void *ud)
{
    ck_assert_ptr_null(err);
    pact_stream_events ev = {.data = unix_data, .close = unix_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
    char msg[64];
    memset(msg, 'u', sizeof msg);
    ck_assert_int_eq(pact_stream_write(s, msg, sizeof msg), 1);
}

START_TEST(unix_socket)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/pact-test-%d.sock", (int)getpid());
    unlink(path);
    int echoed = 0;
    ck_assert_int_eq(
        pact_unix_listen(t_loop, path, NULL, t_echo_accept_cb, NULL, &unix_srv),
        0);
    ck_assert_int_eq(access(path, F_OK), 0);
    pact_tcp_server *again;
    ck_assert_int_eq(
        pact_unix_listen(t_loop, path, NULL, t_echo_accept_cb, NULL, &again),
        PACT_EADDRINUSE);
    ck_assert_int_eq(pact_tcp_server_port(unix_srv), 0);
    ck_assert_int_eq(
        pact_unix_connect(t_loop, path, NULL, unix_client, &echoed), 0);
    run_ok();
    ck_assert_int_eq(echoed, 1);
    ck_assert_int_eq(access(path, F_OK), -1); /* unlinked with the server */
}
END_TEST

static void limit_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    int *n = ud;
    (*n)++;
    pact_stream_events ev = {.data = t_echo_data};
    ck_assert_int_eq(pact_stream_on(s, &ev, NULL), 0);
}

struct limit {
    pact_tcp_server *srv;
    int fds[4];
    int refused;
};

static void limit_done(pact_error *err, void *ud)
{
    (void)err;
    struct limit *l = ud;
    pact_tcp_server_close(l->srv, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        char c;
        /* the two past the limit were closed: EOF (or a reset); the two
         * accepted have nothing to say (EAGAIN) */
        ssize_t n = recv(l->fds[i], &c, 1, MSG_DONTWAIT);
        l->refused += n == 0 || (n < 0 && errno != EAGAIN);
        close(l->fds[i]);
    }
}

START_TEST(connection_limit)
{
    int accepted = 0;
    struct limit l = {0};
    pact_tcp_listen_opts lo = {.max_connections = 2};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, &lo, limit_accept,
                                     &accepted, &l.srv),
                     0);
    for (int i = 0; i < 4; i++)
        l.fds[i] = raw_connect(pact_tcp_server_port(l.srv));
    T_MUST(pact_timeout(t_loop, 100, limit_done, &l, NULL));
    run_ok();
    ck_assert_int_eq(accepted, 2);
    ck_assert_int_eq(l.refused, 2);
}
END_TEST

START_TEST(stream_abort_token)
{
    struct pend p = {0};
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_tcp_server *srv;
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     t_echo_accept_cb, NULL, &srv),
                     0);
    pact_stream_opts so = {.abort = a};
    pact_tcp_connect_opts co = {.stream = &so};
    pact_promise *c =
        pact_tcp_connect_p(t_loop, "127.0.0.1", pact_tcp_server_port(srv), &co);
    while (pact_promise_state(c) == PACT_PENDING)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_stream *s = pact_promise_value(c)->u.ptr;
    pact_stream_events ev = {.error = pend_error, .close = pend_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, &p), 0);
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert_int_eq(p.errors + p.closes, 0); /* never inside the abort */
    pact_tcp_server_close(srv, NULL, NULL);
    run_ok();
    ck_assert_int_eq(p.errors, 1);
    ck_assert_int_eq(p.closes, 1);
    pact_promise_unref(c);
    pact_abort_unref(a);
}
END_TEST

/* ---- requests ------------------------------------------------------------ */

static pact_error *reads_task(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    pact_value v;
    pact_error *err;
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_stream_read_exact_p(s, 7, NULL), &v));
    ck_assert_str_eq(v.u.bytes.data, "abcdefg");
    pact_value_release(&v);
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_stream_read_until_p(s, "--", 2, NULL), &v));
    ck_assert_str_eq(v.u.bytes.data, "hij--");
    pact_value_release(&v);
    pact_read_opts three = {.max = 3};
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_read_some_p(s, &three), &v));
    ck_assert_str_eq(v.u.bytes.data, "klm");
    pact_value_release(&v);
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &v));
    ck_assert_str_eq(v.u.bytes.data, "nop");
    pact_value_release(&v);
    /* an aborted read leaves the input where it was */
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_read_opts ao = {.abort = a};
    pact_promise *p3 = pact_stream_read_exact_p(s, 100, &ao);
    /* a second request while one is pending: EBUSY */
    err = PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), NULL);
    ck_assert_int_eq(pact_error_code(err), PACT_EBUSY);
    pact_error_unref(err);
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_delay(t_loop, 20, NULL), NULL));
    pact_abort_abort(a, NULL);
    err = PACT_AWAIT_ERR(p3, NULL);
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    pact_error_unref(err);
    pact_abort_unref(a);
    ck_assert_ptr_null(PACT_AWAIT_ERR(pact_stream_read_line_p(s, NULL), &v));
    ck_assert_str_eq(v.u.bytes.data, "rest");
    pact_value_release(&v);
    /* events mode refuses requests, and requests refuse events mode with
     * input buffered */
    ck_assert_ptr_null(
        PACT_AWAIT_ERR(pact_stream_read_exact_p(s, 1, NULL), &v));
    pact_value_release(&v);
    pact_stream_close(s);
    return NULL;
}

static void reads_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_tcp_server_close(ud, NULL, NULL);
    pact_promise_unref(pact_task_spawn(t_loop, reads_task, s, NULL));
}

static pact_tcp_server *reads_srv;
static void reads_accept_g(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    reads_accept(err, s, reads_srv);
}

START_TEST(read_requests)
{
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     reads_accept_g, NULL, &reads_srv),
                     0);
    int raw = raw_connect(pact_tcp_server_port(reads_srv));
    const char *parts[] = {"abc", "defghij-", "-klmnop\n", "rest\nZ"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(send(raw, parts[i], strlen(parts[i]), 0),
                         (ssize_t)strlen(parts[i]));
        usleep(5000);
    }
    run_ok();
    close(raw);
}
END_TEST

/* ---- misuse -------------------------------------------------------------- */

static void never_read(pact_error *err, pact_value *data, void *ud)
{
    (void)err;
    (void)data;
    (void)ud;
    ck_abort_msg("called");
}

static void misuse_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_stream_events ev = {.data = t_echo_data};
    ck_assert_int_eq(pact_stream_on(s, &ev, NULL), 0);
    ck_assert_int_eq(pact_stream_read_some(s, NULL, never_read, NULL),
                     PACT_EINVAL);
    pact_stream_destroy(s, NULL);
    ck_assert_int_eq(pact_stream_write(s, "x", 1), PACT_EPIPE);
    pact_tcp_server_close(ud, NULL, NULL);
}

static pact_tcp_server *misuse_srv;
static void misuse_accept_g(pact_error *err, pact_stream *s, void *ud)
{
    (void)ud;
    misuse_accept(err, s, misuse_srv);
}

START_TEST(misuse)
{
    pact_tcp_server *srv;
    ck_assert_int_eq(pact_tcp_listen(t_loop, "localhost", 0, NULL,
                                     t_echo_accept_cb, NULL, &srv),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 70000, NULL,
                                     t_echo_accept_cb, NULL, &srv),
                     PACT_EINVAL);
    ck_assert_int_eq(
        pact_tcp_connect(t_loop, "127.0.0.1", 0, NULL, expect_code, NULL),
        PACT_EINVAL);
    ck_assert_int_eq(pact_stream_write(NULL, "x", 1), PACT_EINVAL);
    ck_assert_ptr_null(pact_stream_read_line_p(NULL, NULL));
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL,
                                     misuse_accept_g, NULL, &misuse_srv),
                     0);
    int raw = raw_connect(pact_tcp_server_port(misuse_srv));
    run_ok();
    close(raw);
}
END_TEST

/* ---- close_all, then free without a run: nothing leaks ------------------- */

static void hold_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_promise **p = ud;
    *p = pact_stream_read_line_p(s, NULL); /* left pending */
}

START_TEST(close_all_then_free)
{
    pact_promise *read = NULL;
    pact_tcp_server *srv;
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, hold_accept, &read, &srv),
        0);
    int raw = raw_connect(pact_tcp_server_port(srv));
    while (!read)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_promise *conn = pact_tcp_connect_p(t_loop, "localhost",
                                            pact_tcp_server_port(srv), NULL);
    struct capture c;
    capture_begin(&c);
    pact_loop_print_pending(t_loop, stderr);
    char *text = capture_end(&c);
    ck_assert_ptr_nonnull(strstr(text, "stream fd"));
    ck_assert_ptr_nonnull(strstr(text, "reads a line"));
    ck_assert_ptr_nonnull(strstr(text, "connect to localhost"));
    free(text);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    pact_promise_unref(read);
    pact_promise_unref(conn);
    ck_assert_int_eq(pact_loop_free(t_loop), 0); /* no run between */
    t_loop = NULL;
    close(raw);
    ck_assert_int_eq(pact_loop_new(&t_loop), 0); /* for the teardown */
}
END_TEST

/* ---- accept out of descriptors ------------------------------------------- */

#define EMFILE_CONNS 6

struct exhaust {
    pact_stream *held[EMFILE_CONNS];
    int accepted;
    pact_tcp_server *srv;
};

static void ex_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct exhaust *x = ud;
    if (err)
        return;
    x->held[x->accepted++] = s;
}

static void exhausted_child(void *arg)
{
    (void)arg;
    pact_loop *loop;
    T_CHILD_ASSERT(pact_loop_new(&loop) == 0);
    struct exhaust x = {0};
    T_CHILD_ASSERT(pact_tcp_listen(loop, "127.0.0.1", 0, NULL, ex_accept, &x,
                                   &x.srv) == 0);
    int port = pact_tcp_server_port(x.srv);
    int fds[EMFILE_CONNS];
    for (int i = 0; i < EMFILE_CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        T_CHILD_ASSERT(connect(fds[i], (struct sockaddr *)&a, sizeof a) == 0);
    }
    /* what it says goes to a file */
    FILE *log = tmpfile();
    T_CHILD_ASSERT(log && dup2(fileno(log), 2) == 2);
    t_child_fd_limit(2); /* two accepts, then EMFILE */
    /* a spinning loop would turn thousands of times in this while */
    int turns = 0;
    uint64_t until = now_us() + 300000;
    while (now_us() < until) {
        pact_loop_run(loop, PACT_RUN_ONCE);
        turns++;
    }
    T_CHILD_ASSERT(x.accepted == 2);
    T_CHILD_ASSERT(turns < 200);
    /* descriptors come back: the rest are accepted */
    for (int i = 0; i < 2; i++)
        pact_stream_destroy(x.held[i], NULL);
    until = now_us() + 5000000;
    while (x.accepted < 4 && now_us() < until)
        pact_loop_run(loop, PACT_RUN_ONCE);
    T_CHILD_ASSERT(x.accepted == 4);
    for (int i = 2; i < 4; i++)
        pact_stream_destroy(x.held[i], NULL);
    until = now_us() + 5000000;
    while (x.accepted < EMFILE_CONNS && now_us() < until)
        pact_loop_run(loop, PACT_RUN_ONCE);
    T_CHILD_ASSERT(x.accepted == EMFILE_CONNS);
    for (int i = 4; i < EMFILE_CONNS; i++)
        pact_stream_destroy(x.held[i], NULL);
    pact_tcp_server_close(x.srv, NULL, NULL);
    T_CHILD_ASSERT(pact_loop_run(loop, PACT_RUN_DEFAULT) == 0);
    T_CHILD_ASSERT(pact_loop_free(loop) == 0);
    for (int i = 0; i < EMFILE_CONNS; i++)
        close(fds[i]);
    /* three episodes (2 accepted, then 2, then 2 and the next accept finds
     * no descriptor), each said once however many retries it took */
    char text[4096] = "";
    fflush(stderr);
    rewind(log);
    size_t n = fread(text, 1, sizeof text - 1, log);
    text[n] = '\0';
    T_CHILD_ASSERT(t_count(text, "pausing accepts") == 3);
    T_CHILD_ASSERT(t_count(text, "recovered") == 2);
    fclose(log);
}

START_TEST(accept_out_of_descriptors)
{
    t_forked(exhausted_child, NULL);
}
END_TEST

/* ---- output without copies: sendfile and writes by reference ----------- */

#define ZC_FILE (3u << 20)
#define ZC_OFF 10u

/* A reader thread: connects, reads until EOF into a buffer. */
struct slurp {
    int port;
    pthread_t th;
    char *buf;
    size_t len, cap;
    bool slow; /* starts reading late, so that the server's output queues */
};

static void *slurp_main(void *arg)
{
    struct slurp *r = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)r->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return NULL;
    if (r->slow)
        sleep_ms(200);
    for (;;) {
        if (r->len == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 65536;
            r->buf = realloc(r->buf, r->cap);
        }
        ssize_t n = recv(fd, r->buf + r->len, r->cap - r->len, 0);
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    close(fd);
    return NULL;
}

struct zc {
    pact_tcp_server *srv;
    int file;
    size_t file_len; /* what sendfile is asked for */
    int file_code, closed;
    int releases;
    char *ref; /* for write_ref */
};

static void zc_file_sent(pact_error *err, void *ud)
{
    struct zc *z = ud;
    z->file_code = err ? pact_error_code(err) : 1;
}

static void zc_closed(pact_stream *s, void *ud)
{
    (void)s;
    ((struct zc *)ud)->closed++;
}

static void zc_released(const void *data, size_t len, void *ud)
{
    struct zc *z = ud;
    ck_assert_ptr_eq(data, z->ref);
    ck_assert_uint_eq(len, ZC_FILE);
    z->releases++;
}

static void zc_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct zc *z = ud;
    if (err)
        return;
    pact_stream_events ev = {.close = zc_closed};
    T_MUST(pact_stream_on(s, &ev, z));
    ck_assert_int_ge(pact_stream_write(s, "head\n", 5), 0);
    if (z->ref)
        ck_assert_int_ge(
            pact_stream_write_ref(s, z->ref, ZC_FILE, zc_released, z), 0);
    else {
        /* an error found at once is returned (and destroys the stream);
         * later, it goes to the callback */
        int rc = pact_stream_sendfile(s, z->file, ZC_OFF, z->file_len,
                                      zc_file_sent, z);
        if (rc < 0)
            z->file_code = rc;
    }
    if (z->file_code >= 0)
        ck_assert_int_ge(pact_stream_write(s, "tail\n", 5), 0);
    T_MUST(pact_stream_close(s)); /* once all of it has gone */
    T_MUST(pact_tcp_server_close(z->srv, NULL, NULL));
}

static char *zc_pattern(void)
{
    char *b = malloc(ZC_FILE + ZC_OFF);
    for (size_t i = 0; i < ZC_FILE + ZC_OFF; i++)
        b[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    return b;
}

static void zc_run(struct zc *z, struct slurp *r)
{
    T_MUST(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, zc_accept, z, &z->srv));
    r->port = pact_tcp_server_port(z->srv);
    ck_assert_int_eq(pthread_create(&r->th, NULL, slurp_main, r), 0);
    run_ok();
    pthread_join(r->th, NULL);
}

START_TEST(sendfile_in_order_with_writes)
{
    char *pat = zc_pattern();
    char path[] = "/tmp/pact-sendfile-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(write(fd, pat, ZC_FILE + ZC_OFF),
                     (ssize_t)(ZC_FILE + ZC_OFF));
    struct zc z = {.file = fd, .file_len = ZC_FILE};
    struct slurp r = {.slow = true}; /* the file queues behind a full socket */
    zc_run(&z, &r);
    ck_assert_int_eq(z.file_code, 1);
    ck_assert_int_eq(z.closed, 1);
    ck_assert_uint_eq(r.len, 5 + ZC_FILE + 5);
    ck_assert(memcmp(r.buf, "head\n", 5) == 0);
    ck_assert(memcmp(r.buf + 5, pat + ZC_OFF, ZC_FILE) == 0);
    ck_assert(memcmp(r.buf + 5 + ZC_FILE, "tail\n", 5) == 0);
    /* the file's own position was not used or moved */
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), ZC_FILE + ZC_OFF);
    free(r.buf);

    /* a file shorter than promised destroys the stream with EIO */
    struct zc z2 = {.file = fd, .file_len = ZC_FILE + 100};
    struct slurp r2 = {0};
    zc_run(&z2, &r2);
    ck_assert_int_eq(z2.file_code, PACT_EIO);
    ck_assert_uint_le(r2.len, 5 + ZC_FILE);
    free(r2.buf);
    close(fd);
    free(pat);
}
END_TEST

START_TEST(write_by_reference)
{
    struct zc z = {.ref = zc_pattern()};
    struct slurp r = {.slow = true};
    zc_run(&z, &r);
    ck_assert_int_eq(z.releases, 1); /* once, after it was sent */
    ck_assert_uint_eq(r.len, 5 + ZC_FILE + 5);
    ck_assert(memcmp(r.buf + 5, z.ref, ZC_FILE) == 0);
    ck_assert(memcmp(r.buf + 5 + ZC_FILE, "tail\n", 5) == 0);
    free(r.buf);
    free(z.ref);
    /* misuse: nothing taken */
    struct capture cap;
    capture_begin(&cap);
    ck_assert_int_eq(pact_stream_write_ref(NULL, "x", 1, zc_released, &z),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_stream_sendfile(NULL, 0, 0, 1, NULL, NULL),
                     PACT_EINVAL);
    free(capture_end(&cap));
}
END_TEST

/* ---- write twins: settled at once when the kernel takes the bytes, else
 * once it has taken them, in order; a write started in an aborted scope is
 * cancelled and writes nothing ------------------------------------------ */

#define WT_BIG (8u << 20) /* past any socket buffer: it waits in the output */

struct wt {
    pact_tcp_server *srv;
    pact_abort *token;
    int cancelled;
    bool done;
};

static void wt_cancelled(pact_error *err, void *ud)
{
    struct wt *w = ud;
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    w->cancelled++;
}

static struct wt *wt_now;

static pact_error *wt_body(void *arg, pact_value *result)
{
    (void)result;
    pact_stream *s = arg;
    struct wt *w = wt_now;
    /* the kernel takes it at once: the promise is settled already */
    pact_promise *p = pact_stream_write_p(s, "head\n", 5);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_ptr_null(PACT_AWAIT_ERR(p, NULL));
    char *big = malloc(WT_BIG);
    ck_assert_ptr_nonnull(big);
    memset(big, 'b', WT_BIG);
    p = pact_stream_write_p(s, big, WT_BIG); /* copied: freed at once */
    free(big);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    pact_promise *q = pact_stream_write_p(s, "tail\n", 5); /* behind it */
    ck_assert_int_eq(pact_promise_state(q), PACT_PENDING);
    ck_assert_ptr_null(PACT_AWAIT_ERR(p, NULL));
    ck_assert_ptr_null(PACT_AWAIT_ERR(q, NULL));
    /* the scope is aborted: a write with a callback is cancelled (before,
     * it tripped an assert), and writes nothing */
    pact_abort_abort(w->token, NULL);
    ck_assert_int_eq(pact_stream_write_cb(s, "X", 1, wt_cancelled, w), 1);
    pact_stream_close(s);
    w->done = true;
    return NULL;
}

static void wt_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct wt *w = ud;
    if (err)
        return;
    pact_tcp_server_close(w->srv, NULL, NULL);
    pact_task_opts o = {.abort = w->token};
    pact_promise *t = pact_task_spawn(t_loop, wt_body, s, &o);
    ck_assert_ptr_nonnull(t);
    pact_promise_unref(t);
}

START_TEST(write_twins_settle_in_order)
{
    struct wt w = {0};
    wt_now = &w;
    T_MUST(pact_abort_new(t_loop, &w.token));
    T_MUST(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, wt_accept, &w, &w.srv));
    struct slurp r = {.port = pact_tcp_server_port(w.srv), .slow = true};
    ck_assert_int_eq(pthread_create(&r.th, NULL, slurp_main, &r), 0);
    run_ok();
    pthread_join(r.th, NULL);
    ck_assert(w.done);
    ck_assert_int_eq(w.cancelled, 1);
    ck_assert_uint_eq(r.len, 5 + WT_BIG + 5);
    ck_assert(memcmp(r.buf, "head\n", 5) == 0);
    ck_assert(r.buf[5] == 'b' && r.buf[5 + WT_BIG - 1] == 'b');
    ck_assert(memcmp(r.buf + 5 + WT_BIG, "tail\n", 5) == 0);
    free(r.buf);
    pact_abort_unref(w.token);
}
END_TEST

Suite *suite_tcp(void)
{
    Suite *s = suite_create("tcp");
    TCase *tc = tcase_create("tcp");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, echo_three_styles_v4);
    tcase_add_test(tc, sendfile_in_order_with_writes);
    tcase_add_test(tc, write_by_reference);
    tcase_add_test(tc, write_twins_settle_in_order);
    tcase_add_test(tc, echo_three_styles_v6);
    tcase_add_test(tc, many_connections);
    tcase_add_test(tc, peer_resets_mid_read);
    tcase_add_test(tc, peer_resets_mid_write);
    tcase_add_test(tc, slow_reader_bounded);
    tcase_add_test(tc, read_line_too_long);
    tcase_add_test(tc, half_close);
    tcase_add_test(tc, connect_refused);
    tcase_add_test(tc, name_does_not_resolve);
    tcase_add_test(tc, name_resolves);
    tcase_add_test(tc, abort_pending_connect);
    tcase_add_test(tc, cancel_pending_connect_and_read);
    tcase_add_test(tc, free_busy_with_server);
    tcase_add_test(tc, accept_out_of_descriptors);
    tcase_add_test(tc, timeouts);
    tcase_add_test(tc, unix_socket);
    tcase_add_test(tc, connection_limit);
    tcase_add_test(tc, stream_abort_token);
    tcase_add_test(tc, read_requests);
    tcase_add_test(tc, misuse);
    tcase_add_test(tc, close_all_then_free);
    tcase_add_test(tc, connect_timeout);
    tcase_add_test(tc, reuseport);
    tcase_add_test(tc, socket_options);
    tcase_add_test(tc, slow_consumer_bounded);
    tcase_add_test(tc, writing_is_not_idle);
    suite_add_tcase(s, tc);
    return s;
}
