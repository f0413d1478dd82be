/* Messages on streams (pact/frame.h), with real sockets on 127.0.0.1: in
 * each framing (lengths, lines, JSON lines) and each style (frame events,
 * callback requests, promise twins awaited by a task), two connections at
 * once where one misbehaves (a length over the maximum, a line over it, a
 * line that is not JSON): that one is closed with PACT_EMSGSIZE or
 * PACT_EPROTO, the other is answered in full. Frames split across sends,
 * empty frames, close_all while frames are awaited (one last call), and
 * misuse. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
    ck_assert_int_eq(send(fd, buf, len, 0), (ssize_t)len);
}

static void send_frame(int fd, const char *s, size_t len)
{
    unsigned char h[4] = {(unsigned char)(len >> 24),
                          (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                          (unsigned char)len};
    send_all(fd, h, 4);
    if (len)
        send_all(fd, s, len);
}

/* Everything the server sent @p fd, until its end (NUL-terminated). */
static char *recv_all(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t k;
    while ((k = recv(fd, buf + n, cap - n, 0)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* ---- the server side, shared ----------------------------------------------
 */

/* Per test: how each connection ended. */
struct srv {
    pact_tcp_server *srv;
    int conns;    /* connections to wait for */
    int ended;    /* connections whose reading ended */
    int frames;   /* messages read, all connections */
    int codes[4]; /* the last call's code, by order of end */
    int kind;     /* pact_frame_kind */
    size_t max;
};

static void ended(struct srv *x, pact_stream *s, pact_error *err)
{
    x->codes[x->ended++] = pact_error_code(err);
    pact_stream_close(s);
    if (x->ended == x->conns)
        pact_tcp_server_close(x->srv, NULL, NULL);
}

/* events: each message goes back in the same framing */
static void ev_frame(pact_stream *s, pact_error *err, pact_value *frame,
                     void *ud)
{
    struct srv *x = ud;
    if (err) {
        ended(x, s, err);
        return;
    }
    x->frames++;
    if (frame->kind == PACT_JSON)
        ck_assert_int_ge(pact_stream_write_json(s, frame->u.json), 0);
    else if (x->kind == PACT_FRAME_LENGTH)
        ck_assert_int_ge(
            pact_stream_write_frame(s, frame->u.bytes.data, frame->u.bytes.len),
            0);
    else {
        ck_assert_int_ge(
            pact_stream_write(s, frame->u.bytes.data, frame->u.bytes.len), 0);
        ck_assert_int_ge(pact_stream_write(s, "\n", 1), 0);
    }
}

static void ev_accept(pact_error *err, pact_stream *s, void *ud)
{
    struct srv *x = ud;
    if (err)
        return;
    pact_read_opts o = {.max = x->max};
    ck_assert_int_eq(pact_stream_on_frames(s, x->kind, &o, ev_frame, x), 0);
}

/* a task per connection: the promise twins, awaited */
struct conn {
    struct srv *x;
    pact_stream *s;
};

static pact_error *task_echo(void *arg, pact_value *result)
{
    (void)result;
    struct conn *c = arg;
    struct srv *x = c->x;
    pact_read_opts o = {.max = x->max};
    pact_value v;
    pact_error *err;
    for (;;) {
        pact_promise *p = x->kind == PACT_FRAME_JSON
                              ? pact_stream_read_json_p(c->s, &o)
                              : pact_stream_read_frame_p(c->s, &o);
        if ((err = PACT_AWAIT_ERR(p, &v)))
            break;
        x->frames++;
        pact_promise *w = v.kind == PACT_JSON
                              ? pact_stream_write_json_p(c->s, v.u.json)
                              : pact_stream_write_frame_p(c->s, v.u.bytes.data,
                                                          v.u.bytes.len);
        pact_value_release(&v);
        ck_assert_ptr_null(PACT_AWAIT_ERR(w, NULL));
    }
    ended(x, c->s, err);
    pact_error_unref(err);
    free(c);
    return NULL;
}

static void task_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    struct conn *c = malloc(sizeof *c);
    c->x = ud;
    c->s = s;
    pact_promise_unref(pact_task_spawn(t_loop, task_echo, c, NULL));
}

/* callback requests: one read, its answer, the next read */
static void cb_got(pact_error *err, pact_value *data, void *ud);

static void cb_next(struct conn *c)
{
    pact_read_opts o = {.max = c->x->max};
    int rc = c->x->kind == PACT_FRAME_JSON
                 ? pact_stream_read_json(c->s, &o, cb_got, c)
                 : pact_stream_read_frame(c->s, &o, cb_got, c);
    ck_assert_int_eq(rc, 0);
}

static void cb_got(pact_error *err, pact_value *data, void *ud)
{
    struct conn *c = ud;
    if (err) {
        ended(c->x, c->s, err);
        free(c);
        return;
    }
    c->x->frames++;
    if (data->kind == PACT_JSON)
        ck_assert_int_ge(pact_stream_write_json(c->s, data->u.json), 0);
    else
        ck_assert_int_ge(pact_stream_write_frame(c->s, data->u.bytes.data,
                                                 data->u.bytes.len),
                         0);
    cb_next(c);
}

static void cb_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    struct conn *c = malloc(sizeof *c);
    c->x = ud;
    c->s = s;
    cb_next(c);
}

static int listen_with(struct srv *x, pact_tcp_accept_cb cb)
{
    /* half-open: a last line at the peer's end is answered too */
    pact_stream_opts so = {.allow_half_open = true};
    pact_tcp_listen_opts lo = {.stream = &so};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, &lo, cb, x, &x->srv), 0);
    return pact_tcp_server_port(x->srv);
}

/* ---- length-prefixed frames: one client over the maximum ------------------
 */

static void frames_one_bad(pact_tcp_accept_cb accept)
{
    struct srv x = {.conns = 2, .kind = PACT_FRAME_LENGTH, .max = 100};
    int port = listen_with(&x, accept);
    int good = raw_connect(port), bad = raw_connect(port);
    /* a frame split across sends, an empty one, one of the maximum */
    send_all(good, "\0\0\0\5he", 6);
    send_all(bad, "\0\0\x10\0", 4); /* 4096 > 100, said by its length */
    send_all(good, "llo", 3);
    send_frame(good, "", 0);
    char big[100];
    memset(big, 'b', sizeof big);
    send_frame(good, big, sizeof big);
    shutdown(good, SHUT_WR);
    run_ok();
    ck_assert_int_eq(x.frames, 3);
    /* the bad one was closed first, with EMSGSIZE; the good one ended */
    ck_assert_int_eq(x.codes[0], PACT_EMSGSIZE);
    ck_assert_int_eq(x.codes[1], PACT_EOF);
    size_t n;
    char *got = recv_all(good, &n);
    ck_assert_uint_eq(n, 4 + 5 + 4 + 4 + 100);
    ck_assert_int_eq(memcmp(got, "\0\0\0\5hello\0\0\0\0\0\0\0d", 17), 0);
    ck_assert_int_eq(memcmp(got + 17, big, 100), 0);
    free(got);
    got = recv_all(bad, &n);
    ck_assert_uint_eq(n, 0); /* closed on it, nothing said */
    free(got);
    close(good);
    close(bad);
}

START_TEST(frames_events)
{
    frames_one_bad(ev_accept);
}
END_TEST

START_TEST(frames_task)
{
    frames_one_bad(task_accept);
}
END_TEST

START_TEST(frames_callbacks)
{
    frames_one_bad(cb_accept);
}
END_TEST

/* ---- JSON lines: one client sends what is not JSON ------------------------
 */

static void json_one_bad(pact_tcp_accept_cb accept)
{
    struct srv x = {.conns = 2, .kind = PACT_FRAME_JSON};
    int port = listen_with(&x, accept);
    int good = raw_connect(port), bad = raw_connect(port);
    send_all(good, "{\"a\": 1}\n[1, 2", 14);
    send_all(bad, "{\"a\": 1}\n{not json}\n[3]\n", 24);
    send_all(good, "]\r\n\"str\"\n 42 \n", 14);
    shutdown(good, SHUT_WR);
    run_ok();
    ck_assert_int_eq(x.frames, 5); /* four good, one of the bad's */
    ck_assert_int_eq(x.codes[0], PACT_EPROTO);
    ck_assert_int_eq(x.codes[1], PACT_EOF);
    char *got = recv_all(good, NULL);
    ck_assert_str_eq(got, "{\"a\":1}\n[1,2]\n\"str\"\n42\n");
    free(got);
    got = recv_all(bad, NULL);
    ck_assert_str_eq(got, "{\"a\":1}\n"); /* then closed: [3] not read */
    free(got);
    close(good);
    close(bad);
}

START_TEST(json_events)
{
    json_one_bad(ev_accept);
}
END_TEST

START_TEST(json_task)
{
    json_one_bad(task_accept);
}
END_TEST

START_TEST(json_callbacks)
{
    json_one_bad(cb_accept);
}
END_TEST

/* ---- lines with a maximum, as events --------------------------------------
 */

START_TEST(lines_events)
{
    struct srv x = {.conns = 2, .kind = PACT_FRAME_LINE, .max = 8};
    int port = listen_with(&x, ev_accept);
    int good = raw_connect(port), bad = raw_connect(port);
    send_all(good, "one\ntwo\r\nthree", 14);
    send_all(bad, "ok\nthis line is far too long\n", 29);
    shutdown(good, SHUT_WR);
    run_ok();
    ck_assert_int_eq(x.codes[0], PACT_EMSGSIZE);
    ck_assert_int_eq(x.codes[1], PACT_EOF);
    char *got = recv_all(good, NULL);
    ck_assert_str_eq(got, "one\ntwo\nthree\n"); /* the last at the end */
    free(got);
    got = recv_all(bad, NULL);
    ck_assert_str_eq(got, "ok\n");
    free(got);
    close(good);
    close(bad);
}
END_TEST

/* ---- the events stop when the program closes the stream -------------------
 */

struct stopper {
    pact_tcp_server *srv;
    int frames, last, code;
};

static void stop_frame(pact_stream *s, pact_error *err, pact_value *frame,
                       void *ud)
{
    struct stopper *st = ud;
    if (err) {
        st->last++;
        st->code = pact_error_code(err);
        pact_stream_close(s);
        pact_tcp_server_close(st->srv, NULL, NULL);
        return;
    }
    (void)frame;
    if (++st->frames == 2)
        pact_stream_close(s); /* no third frame, one last call */
}

static void stop_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (!err)
        ck_assert_int_eq(
            pact_stream_on_frames(s, PACT_FRAME_LINE, NULL, stop_frame, ud), 0);
}

START_TEST(events_stop_on_close)
{
    struct stopper st = {0};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, stop_accept,
                                     &st, &st.srv),
                     0);
    int fd = raw_connect(pact_tcp_server_port(st.srv));
    send_all(fd, "a\nb\nc\nd\n", 8);
    run_ok();
    ck_assert_int_eq(st.frames, 2);
    ck_assert_int_eq(st.last, 1);
    ck_assert_int_eq(st.code, PACT_ECANCELED);
    close(fd);
}
END_TEST

/* ---- frames with the stream's close event: the stream outlives the last
 * call (it is freed after both, whichever comes first) ------------------- */

struct both {
    pact_tcp_server *srv;
    int frames, last, closes, code;
};

static void both_frame(pact_stream *s, pact_error *err, pact_value *frame,
                       void *ud)
{
    (void)frame;
    struct both *b = ud;
    if (!err) {
        b->frames++;
        return;
    }
    b->last++;
    b->code = pact_error_code(err);
    ck_assert_int_eq(pact_stream_fd(s), -1); /* s is still there, closed */
}

static void both_close(pact_stream *s, void *ud)
{
    (void)s;
    struct both *b = ud;
    b->closes++;
    pact_tcp_server_close(b->srv, NULL, NULL);
}

static void both_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    pact_stream_events ev = {.close = both_close};
    ck_assert_int_eq(pact_stream_on(s, &ev, ud), 0);
    pact_read_opts o = {.max = 10};
    ck_assert_int_eq(
        pact_stream_on_frames(s, PACT_FRAME_LENGTH, &o, both_frame, ud), 0);
}

START_TEST(events_with_close_event)
{
    struct both b = {0};
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, both_accept, &b, &b.srv),
        0);
    int fd = raw_connect(pact_tcp_server_port(b.srv));
    send_frame(fd, "ok", 2);
    send_frame(fd, "far too long", 12);
    run_ok();
    ck_assert_int_eq(b.frames, 1);
    ck_assert_int_eq(b.last, 1);
    ck_assert_int_eq(b.code, PACT_EMSGSIZE);
    ck_assert_int_eq(b.closes, 1);
    close(fd);
}
END_TEST

/* ---- close_all while frames are awaited: one last call each ---------------
 */

START_TEST(close_all_frames)
{
    struct stopper st = {0};
    ck_assert_int_eq(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, stop_accept,
                                     &st, &st.srv),
                     0);
    int fd = raw_connect(pact_tcp_server_port(st.srv));
    send_all(fd, "a\n", 2);
    while (st.frames < 1)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_loop_close_all(t_loop);
    run_ok();
    ck_assert_int_eq(st.last, 1);
    ck_assert_int_eq(st.code, PACT_ECANCELED);
    close(fd);
}
END_TEST

/* ---- misuse ---------------------------------------------------------------
 */

static void never_frame(pact_stream *s, pact_error *err, pact_value *frame,
                        void *ud)
{
    (void)s;
    (void)frame;
    int *n = ud;
    ck_assert_ptr_nonnull(err);
    (*n)++;
}

static void never_read(pact_error *err, pact_value *data, void *ud)
{
    (void)data;
    int *n = ud;
    ck_assert_ptr_nonnull(err);
    (*n)++;
}

static void misuse_accept(pact_error *err, pact_stream *s, void *ud)
{
    if (err)
        return;
    int *n = ud;
    ck_assert_int_eq(pact_stream_on_frames(s, 7, NULL, never_frame, n),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_stream_on_frames(s, PACT_FRAME_LENGTH, NULL, NULL, n),
                     PACT_EINVAL);
    ck_assert_int_eq(
        pact_stream_on_frames(s, PACT_FRAME_LENGTH, NULL, never_frame, n), 0);
    /* one reader at a time */
    ck_assert_int_eq(pact_stream_read_frame(s, NULL, never_read, n),
                     PACT_EBUSY);
    ck_assert_int_eq(pact_stream_read_json(s, NULL, never_read, n), PACT_EBUSY);
    ck_assert_int_eq(pact_stream_write_frame(s, NULL, 3), PACT_EINVAL);
    ck_assert_int_eq(pact_stream_write_json(s, NULL), PACT_EINVAL);
    ck_assert_ptr_null(pact_stream_write_json_p(s, NULL));
    ck_assert_int_eq(pact_stream_write_frame(s, NULL, 0), 1); /* empty */
    json_t *j = json_pack("{s:i}", "k", 1);
    ck_assert_int_eq(pact_stream_write_json(s, j), 1);
    json_decref(j);
    pact_stream_destroy(s, NULL);
}

START_TEST(misuse)
{
    int n = 0;
    pact_tcp_server *srv;
    ck_assert_int_eq(
        pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, misuse_accept, &n, &srv),
        0);
    ck_assert_int_eq(pact_stream_read_frame(NULL, NULL, never_read, &n),
                     PACT_EINVAL);
    ck_assert_ptr_null(pact_stream_read_json_p(NULL, NULL));
    int fd = raw_connect(pact_tcp_server_port(srv));
    while (n < 1)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    pact_tcp_server_close(srv, NULL, NULL);
    run_ok();
    ck_assert_int_eq(n, 1); /* the frame events' last call, once */
    size_t len;
    char *got = recv_all(fd, &len);
    ck_assert_uint_eq(len, 4 + 8); /* sent at once: the kernel took them */
    ck_assert_int_eq(memcmp(got, "\0\0\0\0{\"k\":1}\n", 12), 0);
    free(got);
    close(fd);
}
END_TEST

Suite *suite_frame(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("frame");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, frames_events);
    tcase_add_test(tc, frames_task);
    tcase_add_test(tc, frames_callbacks);
    tcase_add_test(tc, json_events);
    tcase_add_test(tc, json_task);
    tcase_add_test(tc, json_callbacks);
    tcase_add_test(tc, lines_events);
    tcase_add_test(tc, events_stop_on_close);
    tcase_add_test(tc, events_with_close_event);
    tcase_add_test(tc, close_all_frames);
    tcase_add_test(tc, misuse);
    suite_add_tcase(s, tc);
    return s;
}
