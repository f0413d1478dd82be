/* Streamed HTTP responses (pact_http_respond_start, pact_http_write,
 * pact_http_end) on 127.0.0.1 with real sockets: the server's loop on a
 * thread of its own, the test a raw client that decodes chunks. 64 MiB to a
 * client that does not read until the server has felt its back-pressure:
 * the bytes the server holds stay under the mark, counted at each write; a
 * task that awaits each write and returns without ending; a client that
 * goes mid-stream (the pending write fails once with ECONNRESET, the token
 * is aborted, valgrind finds nothing leaked); a streamed response behind a
 * slow one waits its turn and buffers; careless calls get their codes.
 *
 * Streamed request bodies (pact_http_route_stream_body, pact_http_req_read):
 * 64 MiB uploaded to a handler that reads a piece a millisecond holds the
 * server to the mark plus two socket reads, sampled at every read; chunked
 * and Content-Length bodies to a task that awaits each piece; max_body
 * passed mid-stream (413, EMSGSIZE), a stalled body (408, ETIMEDOUT), a
 * client that goes (one ECONNRESET, the token aborted); an answer before
 * the body is read, then pipelined requests; an echo while reading; the
 * server closing mid-body; careless reads. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
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

#define PIECE (64 * 1024)
#define BIG (64u * 1024 * 1024)
#define MARK (64 * 1024)

static struct {
    struct t_http h;
    atomic_int saw_full;    /* a write said 0: the client may read now */
    atomic_size_t max_held; /* the most pact_http_buffered after a write */
    atomic_int fails, sync_fails, fail_code, aborted, late_write, ended;
    atomic_size_t queued_held; /* /order's bytes held behind /slow */
    atomic_int codes[16];
    atomic_int hostile_done;
    /* streamed request bodies */
    atomic_size_t max_in; /* the most body bytes held, at a read */
    atomic_int body_fails, body_code, body_aborted, late_rc;
    atomic_int mis[16], mis_done;
} S;

/* ---- handlers ------------------------------------------------------------ */

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i % 251);
}

/* @p n bytes of the pattern from its index @p from */
static void fill_pattern(unsigned char *b, size_t n, size_t from)
{
    for (size_t i = 0; i < n; i++)
        b[i] = pattern(from + i);
}

/* /big: 64 MiB in 64 KiB pieces, writing while pact_http_write says 1 and
 * waiting for the callback of the write that said 0 (as for `drain`) */
struct big {
    pact_http_req *req;
    size_t sent;
    size_t writes, done; /* writes made; their callbacks run (in order) */
    size_t wait_for;     /* the write whose callback resumes; 0: none */
    unsigned char buf[PIECE];
};

static void big_pump(struct big *b);

static void big_done(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct big *b = ud;
    b->done++;
    if (b->wait_for && b->done == b->wait_for) {
        b->wait_for = 0;
        big_pump(b);
    } else if (b->sent == BIG && b->done == b->writes) {
        free(b);
    }
}

static void big_pump(struct big *b)
{
    while (b->sent < BIG) {
        fill_pattern(b->buf, PIECE, b->sent);
        b->sent += PIECE;
        int rc = pact_http_write(b->req, b->buf, PIECE, big_done, b);
        ck_assert_int_ge(rc, 0);
        b->writes++;
        size_t held = pact_http_buffered(b->req);
        if (held > atomic_load(&S.max_held))
            atomic_store(&S.max_held, held);
        if (rc == 0 && b->sent < BIG) {
            atomic_store(&S.saw_full, 1);
            b->wait_for = b->writes;
            return;
        }
    }
    ck_assert_int_eq(pact_http_end(b->req, NULL, NULL), 0);
}

static void h_big(pact_http_req *req, void *ud)
{
    (void)ud;
    struct big *b = calloc(1, sizeof *b);
    b->req = req;
    pact_http_res *res = pact_http_res_new(200);
    pact_http_res_header(res, "Content-Type", "application/octet-stream");
    ck_assert_int_eq(pact_http_respond_start(req, res), 0);
    big_pump(b);
}

/* /task: a task awaits each write and returns without ending */
static pact_error *h_task(pact_http_req *req, pact_http_res **res, void *ud)
{
    (void)res, (void)ud;
    pact_http_res *r = pact_http_res_new(200);
    pact_http_res_body(r, "one,", 4); /* the first piece */
    ck_assert_int_eq(pact_http_respond_start(req, r), 0);
    PACT_AWAIT_TRY(pact_http_write_p(req, "two,", 4), NULL);
    PACT_AWAIT_TRY(pact_http_write_p(req, "", 0), NULL);
    PACT_AWAIT_TRY(pact_http_write_p(req, "three", 5), NULL);
    return NULL;
}

/* /forever: writes until the client goes: a write's callback fails, or
 * (the client's FIN seen first) the next write says so at once */
static void forever_gone(pact_http_req *req)
{
    atomic_store(&S.aborted, pact_abort_aborted(pact_http_req_abort(req)));
    atomic_store(&S.late_write, pact_http_write(req, "x", 1, NULL, NULL));
    atomic_store(&S.ended, pact_http_end(req, NULL, NULL));
}

static void forever_done(pact_error *err, void *ud);

static void forever_write(pact_http_req *req)
{
    static const char piece[PIECE];
    int rc = pact_http_write(req, piece, sizeof piece, forever_done, req);
    if (rc >= 0)
        return;
    atomic_fetch_add(&S.sync_fails, 1);
    atomic_store(&S.fail_code, rc);
    forever_gone(req);
}

static void forever_done(pact_error *err, void *ud)
{
    pact_http_req *req = ud;
    if (!err) {
        forever_write(req);
        return;
    }
    atomic_fetch_add(&S.fails, 1);
    atomic_store(&S.fail_code, pact_error_code(err));
    forever_gone(req);
}

static void h_forever(pact_http_req *req, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_http_respond_start(req, pact_http_res_new(200)), 0);
    forever_write(req);
}

/* /slow/...: a whole response, 80 ms later */
static void h_slow(pact_http_req *req, void *ud)
{
    (void)ud;
    t_http_path_later(S.h.loop, req, 80);
}

/* /order: streams at once, behind /slow: it is held in the server */
static void h_order(pact_http_req *req, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_http_respond_start(req, pact_http_res_new(200)), 0);
    ck_assert_int_eq(pact_http_write(req, "ab", 2, NULL, NULL), 1);
    ck_assert_int_eq(pact_http_write(req, "cd", 2, NULL, NULL), 1);
    atomic_store(&S.queued_held, pact_http_buffered(req));
    ck_assert_int_eq(pact_http_end(req, NULL, NULL), 0);
}

static void h_echo(pact_http_req *req, void *ud)
{
    (void)ud;
    size_t len;
    const void *b = pact_http_req_body(req, &len);
    pact_http_reply(req, 200, NULL, b, len);
}

/* /hostile: every careless call, and the code it gets */
static void h_hostile(pact_http_req *req, void *ud)
{
    (void)ud;
    int i = 0;
    atomic_store(&S.codes[i++], pact_http_write(req, "x", 1, NULL, NULL));
    atomic_store(&S.codes[i++], pact_http_end(req, NULL, NULL));
    atomic_store(&S.codes[i++], pact_http_respond_start(req, NULL));
    atomic_store(&S.codes[i++],
                 pact_http_respond_start(req, pact_http_res_new(200)));
    atomic_store(&S.codes[i++],
                 pact_http_respond_start(req, pact_http_res_new(200)));
    atomic_store(&S.codes[i++], pact_http_respond(req, pact_http_res_new(500)));
    atomic_store(&S.codes[i++], pact_http_reply(req, 500, NULL, "x", 1));
    atomic_store(&S.codes[i++], pact_http_write(NULL, "x", 1, NULL, NULL));
    atomic_store(&S.codes[i++], pact_http_write(req, NULL, 1, NULL, NULL));
    atomic_store(&S.codes[i++], pact_http_write(req, "ok", 2, NULL, NULL));
    atomic_store(&S.codes[i++], pact_http_end(req, NULL, NULL));
    /* req may be retired now: still a clear answer */
    atomic_store(&S.codes[i++], pact_http_end(req, NULL, NULL));
    atomic_store(&S.codes[i++], pact_http_write(req, "x", 1, NULL, NULL));
    atomic_store(&S.codes[i++], pact_http_respond(req, pact_http_res_new(500)));
    atomic_store(&S.hostile_done, i);
}

/* /whole: answered whole; then the streaming calls */
static void h_whole(pact_http_req *req, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_http_reply(req, 200, NULL, "w", 1), 0);
    ck_assert_int_eq(pact_http_write(req, "x", 1, NULL, NULL), PACT_EPIPE);
    ck_assert_int_eq(pact_http_end(req, NULL, NULL), PACT_EALREADY);
    ck_assert_int_eq(pact_http_respond_start(req, pact_http_res_new(200)),
                     PACT_EALREADY);
}

/* /up: a streamed body read slowly (a read 1 ms after the last one); what
 * the server held of it, sampled at each read, stays bounded; the reply is
 * the length and the bytes that broke the pattern */
struct up {
    pact_http_req *req;
    size_t total, bad;
};

static void up_got(pact_error *err, const pact_value *v, void *ud);

static void up_later(pact_error *err, void *ud)
{
    (void)err;
    struct up *u = ud;
    ck_assert_int_eq(pact_http_req_read(u->req, up_got, u), 0);
}

static void up_got(pact_error *err, const pact_value *v, void *ud)
{
    struct up *u = ud;
    if (err) {
        int code = pact_error_code(err);
        if (code == PACT_EOF) {
            char out[64];
            int n = snprintf(out, sizeof out, "%zu %zu", u->total, u->bad);
            pact_http_reply(u->req, 200, "text/plain", out, (size_t)n);
        } else {
            atomic_fetch_add(&S.body_fails, 1);
            atomic_store(&S.body_code, code);
            atomic_store(&S.body_aborted,
                         pact_abort_aborted(pact_http_req_abort(u->req)));
            atomic_store(&S.late_rc, pact_http_reply(u->req, 500, NULL, "", 0));
        }
        free(u);
        return;
    }
    ck_assert_int_eq(v->kind, PACT_BYTES);
    const unsigned char *b = v->u.bytes.data;
    size_t len = v->u.bytes.len;
    size_t held = len + pact_http_req_buffered(u->req);
    if (held > atomic_load(&S.max_in))
        atomic_store(&S.max_in, held);
    for (size_t i = 0; i < len; i++)
        if (b[i] != pattern(u->total + i))
            u->bad++;
    u->total += len;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(S.h.loop, 1, up_later, u, &h), 0);
}

static void h_up(pact_http_req *req, void *ud)
{
    (void)ud;
    struct up *u = calloc(1, sizeof *u);
    u->req = req;
    ck_assert_int_eq(pact_http_req_read(req, up_got, u), 0);
}

/* /sum: a task awaits each piece and replies the length and a checksum */
static pact_error *h_sum(pact_http_req *req, pact_http_res **res, void *ud)
{
    (void)ud;
    size_t total = 0;
    unsigned long sum = 0;
    for (;;) {
        pact_value v;
        pact_error *err = PACT_AWAIT_ERR(pact_http_req_read_p(req), &v);
        if (err) {
            int code = pact_error_code(err);
            pact_error_unref(err);
            if (code == PACT_EOF)
                break;
            return PACT_ERROR(code, "the body failed");
        }
        const unsigned char *b = v.u.bytes.data;
        for (size_t i = 0; i < v.u.bytes.len; i++)
            sum = (sum * 31 + b[i]) % 1000000007ul;
        total += v.u.bytes.len;
        pact_value_release(&v);
    }
    char out[64];
    int n = snprintf(out, sizeof out, "%zu %lu", total, sum);
    *res = pact_http_res_new(200);
    pact_http_res_body(*res, out, (size_t)n);
    return NULL;
}

/* /early: answers before reading; the body is dropped */
static void h_early(pact_http_req *req, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_http_reply(req, 200, NULL, "early", 5), 0);
}

/* /big413: reads until the body fails past max_body; the server answered */
static void big413_got(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    pact_http_req *req = ud;
    if (!err) {
        ck_assert_int_eq(pact_http_req_read(req, big413_got, req), 0);
        return;
    }
    atomic_fetch_add(&S.body_fails, 1);
    atomic_store(&S.body_code, pact_error_code(err));
    atomic_store(&S.late_rc, pact_http_reply(req, 200, NULL, "no", 2));
}

static void h_big413(pact_http_req *req, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_http_req_read(req, big413_got, req), 0);
}

/* /echo2: a streamed response of the streamed body, a read after each
 * write's callback (the client's pace both ways) */
static void echo_got(pact_error *err, const pact_value *v, void *ud);

static void echo_wrote(pact_error *err, void *ud)
{
    pact_http_req *req = ud;
    if (err) {
        pact_http_end(req, NULL, NULL);
        return;
    }
    ck_assert_int_eq(pact_http_req_read(req, echo_got, req), 0);
}

static void echo_got(pact_error *err, const pact_value *v, void *ud)
{
    pact_http_req *req = ud;
    if (err) {
        ck_assert_int_eq(pact_error_code(err), PACT_EOF);
        ck_assert_int_eq(pact_http_end(req, NULL, NULL), 0);
        return;
    }
    ck_assert_int_ge(
        pact_http_write(req, v->u.bytes.data, v->u.bytes.len, echo_wrote, req),
        0);
}

static void h_echo2(pact_http_req *req, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_http_respond_start(req, pact_http_res_new(200)), 0);
    ck_assert_int_eq(pact_http_req_read(req, echo_got, req), 0);
}

/* /mis: careless reads; /plain (not streamed): the body, then the end */
static void mis_got(pact_error *err, const pact_value *v, void *ud)
{
    pact_http_req *req = ud;
    int i = atomic_load(&S.mis_done);
    if (!err) {
        atomic_store(&S.mis[i++], (int)v->u.bytes.len);
        atomic_store(&S.mis_done, i);
        ck_assert_int_eq(pact_http_req_read(req, mis_got, req), 0);
        return;
    }
    atomic_store(&S.mis[i++], pact_error_code(err));
    atomic_store(&S.mis_done, i);
    if (i < 7) { /* the end, again */
        ck_assert_int_eq(pact_http_req_read(req, mis_got, req), 0);
        return;
    }
    ck_assert_int_eq(pact_http_reply(req, 200, NULL, "m", 1), 0);
}

static void h_mis(pact_http_req *req, void *ud)
{
    (void)ud;
    int i = 0;
    atomic_store(&S.mis[i++], pact_http_req_read(NULL, mis_got, req));
    atomic_store(&S.mis[i++], pact_http_req_read(req, NULL, req));
    atomic_store(&S.mis[i++], pact_http_req_read(req, mis_got, req));
    atomic_store(&S.mis[i++], pact_http_req_read(req, mis_got, req));
    atomic_store(&S.mis_done, i);
}

/* ---- the server ---------------------------------------------------------- */

static void routes(pact_http_server *srv)
{
    ck_assert_int_eq(pact_http_route(srv, "POST", "/up", h_up, NULL), 0);
    ck_assert_int_eq(pact_http_route_task(srv, "POST", "/sum", h_sum, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "POST", "/early", h_early, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "POST", "/big413", h_big413, NULL),
                     0);
    ck_assert_int_eq(pact_http_route(srv, "POST", "/mis", h_mis, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "POST", "/plain", h_mis, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "POST", "/echo2", h_echo2, NULL), 0);
    const char *streamed[] = {"/up",     "/sum", "/early",
                              "/big413", "/mis", "/echo2"};
    for (size_t i = 0; i < sizeof streamed / sizeof *streamed; i++)
        ck_assert_int_eq(pact_http_route_stream_body(srv, "POST", streamed[i]),
                         0);
    ck_assert_int_eq(pact_http_route_stream_body(srv, "GET", "/up"),
                     PACT_ENOENT);
    ck_assert_int_eq(pact_http_route_stream_body(srv, NULL, "/up"),
                     PACT_ENOENT);
    ck_assert_int_eq(pact_http_route_stream_body(NULL, "POST", "/up"),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/big", h_big, NULL), 0);
    ck_assert_int_eq(pact_http_route_task(srv, "GET", "/task", h_task, NULL),
                     0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/forever", h_forever, NULL),
                     0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/slow/*", h_slow, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/order", h_order, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "POST", "/echo", h_echo, NULL), 0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/hostile", h_hostile, NULL),
                     0);
    ck_assert_int_eq(pact_http_route(srv, "GET", "/whole", h_whole, NULL), 0);
}

/* The server's options; 0 for each: its default (max_body: 2 * BIG). */
static void start_with(size_t max_body, uint64_t body_timeout_ms,
                       uint64_t send_timeout_ms)
{
    memset(&S, 0, sizeof S);
    S.h.opts = (pact_http_opts){.max_body = max_body ? max_body : 2 * BIG,
                                .body_timeout_ms = body_timeout_ms,
                                .send_timeout_ms = send_timeout_ms};
    S.h.routes = routes;
    t_http_start(&S.h);
}

static void start(void)
{
    start_with(0, 0, 0);
}

static void do_close(void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_http_server_close(S.h.srv, NULL, NULL), 0);
}

static void stop(void)
{
    t_http_stop(&S.h);
}

/* Wait (up to @p secs: never a verdict on speed) until @p a or @p b (may be
 * NULL) is set by the server's thread. */
static void wait_set(atomic_int *a, atomic_int *b, unsigned secs)
{
    uint64_t t0 = now_us();
    while (!atomic_load(a) && !(b && atomic_load(b)) &&
           now_us() - t0 < secs * 1000000ull)
        sleep_ms(5);
}

/* After a failed upload: the body's read failed once with @p code, and the
 * handler's answer after it got @p late_rc. */
static void stop_body_failed(int code, int late_rc)
{
    wait_set(&S.body_fails, NULL, 20);
    stop();
    ck_assert_int_eq(atomic_load(&S.body_fails), 1);
    ck_assert_int_eq(atomic_load(&S.body_code), code);
    ck_assert_int_eq(atomic_load(&S.late_rc), late_rc);
}

/* ---- the raw client ------------------------------------------------------ */

static int dial(void)
{
    return t_dial(S.h.port, 20);
}

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    ck_assert_int_eq(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* a buffered reader over a socket */
struct rd {
    int fd;
    char buf[1 << 16];
    size_t pos, len;
};

static struct rd *rd_new(int fd)
{
    struct rd *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->fd = fd;
    return r;
}

/* Close the socket and free the reader. */
static void rd_free(struct rd *r)
{
    close(r->fd);
    free(r);
}

/* A server (start) and a client connected to it. */
static struct rd *start_client(void)
{
    start();
    return rd_new(dial());
}

/* The client goes, then the server (stop). */
static void stop_client(struct rd *r)
{
    rd_free(r);
    stop();
}

static int rd_byte(struct rd *r)
{
    if (r->pos == r->len) {
        ssize_t n = recv(r->fd, r->buf, sizeof r->buf, 0);
        if (n <= 0)
            return -1;
        r->pos = 0;
        r->len = (size_t)n;
    }
    return (unsigned char)r->buf[r->pos++];
}

/* a line without its CRLF into @p out (at most @p cap - 1 bytes) */
static bool rd_line(struct rd *r, char *out, size_t cap)
{
    size_t n = 0;
    int ch;
    while ((ch = rd_byte(r)) >= 0) {
        if (ch == '\n') {
            if (n && out[n - 1] == '\r')
                n--;
            out[n] = '\0';
            return true;
        }
        if (n + 1 < cap)
            out[n++] = (char)ch;
    }
    return false;
}

/* A response's head into @p head (lines joined by \n); its status. */
static int rd_head(struct rd *r, char *head, size_t cap)
{
    char line[1024];
    size_t n = 0;
    head[0] = '\0';
    while (rd_line(r, line, sizeof line) && line[0]) {
        n += (size_t)snprintf(head + n, cap - n, "%s\n", line);
        if (n >= cap)
            n = cap - 1;
    }
    return strncmp(head, "HTTP/1.1 ", 9) == 0 ? atoi(head + 9) : 0;
}

/* A chunked body: each data byte to @p fn (may be NULL) with its index;
 * @return its length, or (size_t)-1 when it is cut or malformed. */
static size_t rd_chunked(struct rd *r, void (*fn)(size_t i, int ch, void *ud),
                         void *ud)
{
    char line[64];
    size_t total = 0;
    for (;;) {
        if (!rd_line(r, line, sizeof line))
            return (size_t)-1;
        char *end;
        size_t n = strtoul(line, &end, 16);
        if (end == line)
            return (size_t)-1;
        if (n == 0)
            return rd_line(r, line, sizeof line) && !line[0] ? total
                                                             : (size_t)-1;
        for (size_t i = 0; i < n; i++) {
            int ch = rd_byte(r);
            if (ch < 0)
                return (size_t)-1;
            if (fn)
                fn(total + i, ch, ud);
        }
        total += n;
        if (!rd_line(r, line, sizeof line) || line[0])
            return (size_t)-1;
    }
}

/* The connection goes on after what was read: /whole is answered. */
static void whole_goes_on(struct rd *r)
{
    char head[1024];
    put(r->fd, "GET /whole HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    ck_assert_int_eq(rd_byte(r), 'w');
}

static void collect(size_t i, int ch, void *ud)
{
    char *s = ud;
    if (i < 255) {
        s[i] = (char)ch;
        s[i + 1] = '\0';
    }
}

static void check_pattern(size_t i, int ch, void *ud)
{
    size_t *bad = ud;
    if ((unsigned char)ch != pattern(i))
        (*bad)++;
}

/* ---- the tests ----------------------------------------------------------- */

/* 64 MiB to a client that reads only once the server has felt its
 * back-pressure: what the server holds of the response, sampled after
 * every write, stays under the mark plus one piece. */
START_TEST(big_body_bounded)
{
    start();
    int fd = dial();
    put(fd, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    while (!atomic_load(&S.saw_full))
        sleep_ms(5);
    struct rd *r = rd_new(fd);
    char head[1024];
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    ck_assert_ptr_nonnull(strstr(head, "Transfer-Encoding: chunked"));
    size_t bad = 0;
    ck_assert_uint_eq(rd_chunked(r, check_pattern, &bad), BIG);
    ck_assert_uint_eq(bad, 0);
    size_t max = atomic_load(&S.max_held);
    ck_assert_msg(max < MARK + PIECE + 64, "held %zu", max);
    whole_goes_on(r);
    stop_client(r);
}
END_TEST

/* A task awaits each write (a body set on the response is the first
 * piece, an empty write sends nothing) and returns: the response ends. */
START_TEST(task_streams)
{
    struct rd *r = start_client();
    int fd = r->fd;
    char head[1024], body[256] = "";
    for (int i = 0; i < 2; i++) { /* twice on one connection */
        put(fd, "GET /task HTTP/1.1\r\nHost: t\r\n\r\n");
        ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
        ck_assert_uint_eq(rd_chunked(r, collect, body), 13);
        ck_assert_str_eq(body, "one,two,three");
    }
    /* HEAD: the head alone; HTTP/1.0: the body ends with the connection */
    put(fd, "HEAD /task HTTP/1.1\r\nHost: t\r\n\r\n"
            "GET /task HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    ck_assert_ptr_null(strstr(head, "Transfer-Encoding"));
    ck_assert_ptr_nonnull(strstr(head, "Connection: close"));
    char rest[64];
    size_t n = 0;
    int ch;
    while ((ch = rd_byte(r)) >= 0 && n < sizeof rest - 1)
        rest[n++] = (char)ch;
    rest[n] = '\0';
    ck_assert_str_eq(rest, "one,two,three");
    stop_client(r);
}
END_TEST

/* The client goes mid-stream: the pending write fails once with
 * ECONNRESET, the token is aborted, later writes say ECONNRESET. */
START_TEST(client_goes_mid_stream)
{
    start();
    int fd = dial();
    put(fd, "GET /forever HTTP/1.1\r\nHost: t\r\n\r\n");
    char buf[4096];
    size_t got = 0;
    while (got < 3 * PIECE) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
    }
    close(fd);
    wait_set(&S.fails, &S.sync_fails, 20);
    stop(); /* the loop has ended: nothing more can come */
    /* one write learnt it: its callback, or at once (and then no
     * callback was pending) */
    ck_assert_int_eq(atomic_load(&S.fails) + atomic_load(&S.sync_fails), 1);
    ck_assert_int_eq(atomic_load(&S.fail_code), PACT_ECONNRESET);
    ck_assert_int_eq(atomic_load(&S.aborted), 1);
    ck_assert_int_eq(atomic_load(&S.late_write), PACT_ECONNRESET);
    ck_assert_int_eq(atomic_load(&S.ended), PACT_ECONNRESET);
}
END_TEST

/* A client that asks for a stream and stops reading: once the kernel's
 * buffers are full and it takes nothing for send_timeout_ms, the server
 * cuts the connection, the pending write fails once and the token is
 * aborted, so the handler lets go (a reverse slowloris holds nothing). */
START_TEST(client_stops_reading)
{
    start_with(0, 0, 200);
    int fd = dial();
    int small = 4096; /* so that the buffers fill soon */
    ck_assert_int_eq(
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    put(fd, "GET /forever HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_set(&S.fails, &S.sync_fails, 60);
    ck_assert_int_eq(atomic_load(&S.fails) + atomic_load(&S.sync_fails), 1);
    ck_assert_int_eq(atomic_load(&S.aborted), 1);
    /* the server's side is gone: what was sent drains, then the end */
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        ;
    ck_assert_int_le(n, 0);
    close(fd);
    stop();
    ck_assert_int_eq(atomic_load(&S.fails) + atomic_load(&S.sync_fails), 1);
}
END_TEST

/* Pipelined: a streamed response behind a slow whole one waits its turn,
 * held in the server, and the one after it waits for its end. */
START_TEST(stream_keeps_order)
{
    start();
    int fd = dial();
    put(fd, "GET /slow/a HTTP/1.1\r\nHost: t\r\n\r\n"
            "GET /order HTTP/1.1\r\nHost: t\r\n\r\n"
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nz");
    struct rd *r = rd_new(fd);
    char head[1024], body[256] = "";
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    for (const char *p = "/slow/a"; *p; p++)
        ck_assert_int_eq(rd_byte(r), *p);
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    ck_assert_uint_eq(rd_chunked(r, collect, body), 4);
    ck_assert_str_eq(body, "abcd");
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    ck_assert_int_eq(rd_byte(r), 'z');
    /* "2\r\nab\r\n" and "2\r\ncd\r\n" waited in the server */
    ck_assert_uint_eq(atomic_load(&S.queued_held), 14);
    stop_client(r);
}
END_TEST

/* Careless calls: each gets its code, nothing crashes (ASan, valgrind). */
START_TEST(careless_calls)
{
    start();
    int fd = dial();
    put(fd, "GET /hostile HTTP/1.1\r\nHost: t\r\n\r\n"
            "GET /whole HTTP/1.1\r\nHost: t\r\n\r\n");
    struct rd *r = rd_new(fd);
    char head[1024], body[256] = "";
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    ck_assert_uint_eq(rd_chunked(r, collect, body), 2);
    ck_assert_str_eq(body, "ok");
    ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
    ck_assert_int_eq(rd_byte(r), 'w');
    stop_client(r);
    const int want[] = {
        PACT_EINVAL,
        PACT_EINVAL,
        PACT_EINVAL,
        0,
        PACT_EALREADY,
        PACT_EALREADY,
        PACT_EALREADY,
        PACT_EINVAL,
        PACT_EINVAL,
        1,
        0,
        PACT_EALREADY,
        PACT_EPIPE,
        PACT_EALREADY,
    };
    int n = (int)(sizeof want / sizeof want[0]);
    ck_assert_int_eq(atomic_load(&S.hostile_done), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(atomic_load(&S.codes[i]) == want[i], "call %d: %d", i,
                      atomic_load(&S.codes[i]));
}
END_TEST

/* curl decodes the chunks as the raw client does (the same connection
 * twice: the keep-alive survives a streamed response) */
START_TEST(curl_agrees)
{
    if (!t_have("curl"))
        return; /* curl is not installed */
    start();
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 10 http://127.0.0.1:%d/task "
             "--next http://127.0.0.1:%d/order",
             S.h.port, S.h.port);
    char out[256];
    t_output(cmd, out, sizeof out);
    ck_assert_str_eq(out, "one,two,threeabcd");
    stop();
}
END_TEST

/* ---- streamed request bodies --------------------------------------------- */

static void put_n(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        ck_assert_int_gt(k, 0);
        c += k;
        n -= (size_t)k;
    }
}

/* A whole response with Content-Length: its status, its body in @p body. */
static int rd_whole(struct rd *r, char *body, size_t cap)
{
    char head[1024];
    int st = rd_head(r, head, sizeof head);
    const char *cl = strstr(head, "Content-Length: ");
    size_t n = cl ? strtoul(cl + 16, NULL, 10) : 0, i = 0;
    for (; i < n; i++) {
        int ch = rd_byte(r);
        if (ch < 0)
            break;
        if (i + 1 < cap)
            body[i] = (char)ch;
    }
    body[i < cap ? i : cap - 1] = '\0';
    return st;
}

/* The server answers @p status, then closes: the reader is freed. */
static void rd_closed_after(struct rd *r, int status)
{
    char body[256];
    ck_assert_int_eq(rd_whole(r, body, sizeof body), status);
    ck_assert_int_lt(rd_byte(r), 0); /* closed */
    rd_free(r);
}

/* 64 MiB uploaded to a handler that reads a piece a millisecond: what the
 * server holds of the body, sampled at every read, stays under the mark
 * plus two socket reads (64 KiB each), and every byte arrives in order. */
START_TEST(upload_bounded)
{
    start();
    int fd = dial();
    char head[256];
    snprintf(head, sizeof head,
             "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n\r\n", BIG);
    put(fd, head);
    unsigned char *buf = malloc(PIECE);
    for (size_t sent = 0; sent < BIG; sent += PIECE) {
        fill_pattern(buf, PIECE, sent);
        put_n(fd, buf, PIECE);
    }
    free(buf);
    struct rd *r = rd_new(fd);
    char body[256];
    ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
    snprintf(head, sizeof head, "%u 0", BIG);
    ck_assert_str_eq(body, head);
    size_t max = atomic_load(&S.max_in);
    ck_assert_msg(max <= MARK + 2 * 65536, "held %zu", max);
    ck_assert_msg(max >= MARK, "never filled: held %zu", max);
    whole_goes_on(r);
    stop_client(r);
}
END_TEST

/* A chunked body (after 100 Continue) and a Content-Length one to a task
 * that awaits pact_http_req_read_p in a loop: the length and checksum
 * match the client's. */
START_TEST(task_reads_chunked)
{
    struct rd *r = start_client();
    int fd = r->fd;
    char line[256], body[256], want[64];
    put(fd, "POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            "Expect: 100-continue\r\n\r\n");
    ck_assert(rd_line(r, line, sizeof line));
    ck_assert_str_eq(line, "HTTP/1.1 100 Continue");
    ck_assert(rd_line(r, line, sizeof line));
    ck_assert_str_eq(line, "");
    static unsigned char data[300000];
    unsigned long sum = 0;
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (unsigned char)(i * 7 + 3);
        sum = (sum * 31 + data[i]) % 1000000007ul;
    }
    size_t off = 0, sizes[] = {1, 10, 1000, 70000, 100000, 128989};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        char ch[32];
        snprintf(ch, sizeof ch, "%zx;ext=1\r\n", sizes[k]);
        put(fd, ch);
        put_n(fd, data + off, sizes[k]);
        put(fd, "\r\n");
        off += sizes[k];
    }
    ck_assert_uint_eq(off, sizeof data);
    put(fd, "0\r\nTrailer: x\r\n\r\n");
    snprintf(want, sizeof want, "%zu %lu", sizeof data, sum);
    ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
    ck_assert_str_eq(body, want);
    /* Content-Length, pipelined with an empty body */
    snprintf(line, sizeof line,
             "POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
             sizeof data);
    put(fd, line);
    put_n(fd, data, sizeof data);
    put(fd, "POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
    ck_assert_str_eq(body, want);
    ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
    ck_assert_str_eq(body, "0 0");
    stop_client(r);
}
END_TEST

/* Past max_body mid-stream (a chunk too big): the pending read fails with
 * EMSGSIZE, the server answers 413 and closes; the handler's own answer
 * is refused (and lets go of the request: valgrind finds nothing). */
START_TEST(upload_too_big)
{
    start_with(100000, 0, 0);
    int fd = dial();
    put(fd, "POST /big413 HTTP/1.1\r\nHost: t\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
    static char data[60000];
    memset(data, 'a', sizeof data);
    put(fd, "ea60\r\n"); /* 60000 */
    put_n(fd, data, sizeof data);
    /* the next chunk's size is past the limit: refused before its bytes
     * (nothing unread is left that would make the close a reset) */
    put(fd, "\r\nea60\r\n");
    struct rd *r = rd_new(fd);
    rd_closed_after(r, 413);
    stop_body_failed(PACT_EMSGSIZE, PACT_EALREADY);
}
END_TEST

/* The client stalls mid-body: past body_timeout_ms the pending read fails
 * with ETIMEDOUT and the server answers 408 and closes. */
START_TEST(upload_stalls)
{
    start_with(0, 300, 0);
    int fd = dial();
    put(fd, "POST /big413 HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n"
            "\r\nsome of it");
    struct rd *r = rd_new(fd);
    rd_closed_after(r, 408);
    stop_body_failed(PACT_ETIMEDOUT, PACT_EALREADY);
}
END_TEST

/* The client goes mid-body: the read fails once with ECONNRESET and the
 * token is aborted; the late answer is dropped (0). */
START_TEST(upload_client_goes)
{
    start();
    int fd = dial();
    put(fd, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
    static unsigned char data[100000];
    fill_pattern(data, sizeof data, 0);
    put_n(fd, data, sizeof data);
    close(fd);
    stop_body_failed(PACT_ECONNRESET, 0);
    ck_assert_int_eq(atomic_load(&S.body_aborted), 1);
}
END_TEST

/* A handler answers before reading: the body (a big one, chunked, then one
 * with Content-Length) is dropped and the pipelined request after it is
 * answered on the same connection. */
START_TEST(early_answer_pipelined)
{
    struct rd *r = start_client();
    int fd = r->fd;
    char body[256];
    static unsigned char data[200000];
    memset(data, 'x', sizeof data);
    put(fd,
        "POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n");
    ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
    ck_assert_str_eq(body, "early");
    put_n(fd, data, sizeof data);
    put(fd, "POST /early HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            "\r\n30d40\r\n");
    put_n(fd, data, sizeof data);
    put(fd, "\r\n0\r\n\r\nGET /whole HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
    ck_assert_str_eq(body, "early");
    ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
    ck_assert_str_eq(body, "w");
    stop_client(r);
}
END_TEST

/* A streamed response echoes the streamed body as it is read, and the
 * connection goes on after it. */
START_TEST(echo_while_reading)
{
    struct rd *r = start_client();
    int fd = r->fd;
    static unsigned char data[200000];
    fill_pattern(data, sizeof data, 0);
    for (int k = 0; k < 2; k++) {
        put(fd, "POST /echo2 HTTP/1.1\r\nHost: t\r\n"
                "Content-Length: 200000\r\n\r\n");
        put_n(fd, data, sizeof data);
        char head[1024];
        ck_assert_int_eq(rd_head(r, head, sizeof head), 200);
        size_t bad = 0;
        ck_assert_uint_eq(rd_chunked(r, check_pattern, &bad), sizeof data);
        ck_assert_uint_eq(bad, 0);
    }
    stop_client(r);
}
END_TEST

/* The server closes while a body is read: the body is read to its end,
 * answered, and then the connection and the server close. */
START_TEST(close_mid_body)
{
    start();
    int fd = dial();
    static unsigned char data[200000];
    fill_pattern(data, sizeof data, 0);
    put(fd, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n");
    put_n(fd, data, 100000);
    while (!atomic_load(&S.max_in)) /* its handler has read a piece */
        sleep_ms(5);
    ck_assert_int_eq(pact_loop_post(S.h.loop, do_close, NULL), 0);
    put_n(fd, data + 100000, 100000);
    struct rd *r = rd_new(fd);
    char body[256];
    ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
    ck_assert_str_eq(body, "200000 0");
    ck_assert_int_lt(rd_byte(r), 0); /* closed */
    rd_free(r);
    t_http_join(&S.h);
}
END_TEST

/* Careless reads: NULL -> EINVAL, a second read pending -> EBUSY, reads
 * after the end get the end again; a route not streamed gives its body as
 * one piece, then the end. */
START_TEST(careless_reads)
{
    struct rd *r = start_client();
    int fd = r->fd;
    char body[256];
    const char *paths[] = {"/mis", "/plain"};
    for (int k = 0; k < 2; k++) {
        char req[256];
        snprintf(req, sizeof req,
                 "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                 "\r\nhello",
                 paths[k]);
        put(fd, req);
        ck_assert_int_eq(rd_whole(r, body, sizeof body), 200);
        ck_assert_str_eq(body, "m");
        const int want[] = {PACT_EINVAL, PACT_EINVAL, 0,       PACT_EBUSY,
                            5,           PACT_EOF,    PACT_EOF};
        ck_assert_int_eq(atomic_load(&S.mis_done), 7);
        for (int i = 0; i < 7; i++)
            ck_assert_msg(atomic_load(&S.mis[i]) == want[i], "%s %d: %d",
                          paths[k], i, atomic_load(&S.mis[i]));
        atomic_store(&S.mis_done, 0);
    }
    stop_client(r);
}
END_TEST

Suite *suite_http_stream(void)
{
    Suite *s = suite_create("http_stream");
    TCase *tc = tcase_create("stream");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, big_body_bounded);
    tcase_add_test(tc, task_streams);
    tcase_add_test(tc, client_goes_mid_stream);
    tcase_add_test(tc, client_stops_reading);
    tcase_add_test(tc, stream_keeps_order);
    tcase_add_test(tc, careless_calls);
    tcase_add_test(tc, curl_agrees);
    tcase_add_test(tc, upload_bounded);
    tcase_add_test(tc, task_reads_chunked);
    tcase_add_test(tc, upload_too_big);
    tcase_add_test(tc, upload_client_goes);
    tcase_add_test(tc, upload_stalls);
    tcase_add_test(tc, early_answer_pipelined);
    tcase_add_test(tc, careless_reads);
    tcase_add_test(tc, echo_while_reading);
    tcase_add_test(tc, close_mid_body);
    suite_add_tcase(s, tc);
    return s;
}
