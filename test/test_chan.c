/* Channels (pact/chan.h): unbuffered ping-pong between tasks, buffered
 * capacity and order, close (drain then EOF, EPIPE to senders), and hostile
 * use: free and close_all with parked waiters, an aborted receive, a
 * callback that receives again from its own callback, owned values never
 * leaked (valgrind/ASan see them). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include "helpers.h"
#include "suites.h"

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

static int frees;
static void count_free(void *p)
{
    free(p);
    frees++;
}

static pact_value owned_int(int i)
{
    int *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    *p = i;
    return pact_owned(p, count_free);
}

/* ---- tasks ----------------------------------------------------------------
 */

#define ROUNDS 100
struct pp {
    pact_chan *ping, *pong;
};

static pact_error *pinger(void *arg, pact_value *result)
{
    struct pp *pp = arg;
    for (int i = 0; i < ROUNDS; i++) {
        pact_value v;
        pact_error *err =
            PACT_AWAIT_ERR(pact_chan_send_p(pp->ping, pact_int(i), NULL), NULL);
        if (err)
            return err;
        err = PACT_AWAIT_ERR(pact_chan_recv_p(pp->pong, NULL), &v);
        if (err)
            return err;
        ck_assert_int_eq(v.kind, PACT_INT);
        ck_assert_int_eq(v.u.i, i + 1000);
    }
    *result = pact_int(ROUNDS);
    return NULL;
}

static pact_error *ponger(void *arg, pact_value *result)
{
    struct pp *pp = arg;
    int n = 0;
    for (;;) {
        pact_value v;
        pact_error *err = PACT_AWAIT_ERR(pact_chan_recv_p(pp->ping, NULL), &v);
        if (err) {
            ck_assert_int_eq(pact_error_code(err), PACT_EOF);
            pact_error_unref(err);
            break;
        }
        n++;
        err = PACT_AWAIT_ERR(
            pact_chan_send_p(pp->pong, pact_int(v.u.i + 1000), NULL), NULL);
        if (err)
            return err;
    }
    *result = pact_int(n);
    return NULL;
}

static pact_value close_ping(const pact_value *v, void *ud)
{
    (void)v;
    ck_assert_int_eq(pact_chan_close(ud), 0);
    return pact_nothing();
}

START_TEST(unbuffered_pingpong)
{
    struct pp pp = {pact_chan_new(t_loop, 0), pact_chan_new(t_loop, 0)};
    ck_assert_ptr_nonnull(pp.ping);
    pact_promise *b = pact_task_spawn(t_loop, ponger, &pp, NULL);
    pact_promise *a = pact_task_spawn(t_loop, pinger, &pp, NULL);
    pact_promise *c = pact_then(a, close_ping, NULL, pp.ping);
    run_ok();
    ck_assert_int_eq(pact_promise_state(a), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_state(b), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_value(b)->u.i, ROUNDS);
    pact_promise_unref(a);
    pact_promise_unref(b);
    pact_promise_unref(c);
    pact_chan_free(pp.ping);
    pact_chan_free(pp.pong);
}
END_TEST

/* ---- callbacks ------------------------------------------------------------
 */

static void recv_trace(pact_error *err, pact_value *v, void *ud)
{
    (void)ud;
    if (err)
        trace("recv %s", pact_strerror(pact_error_code(err)));
    else if (v->kind == PACT_OWNED)
        trace("recv %d", *(int *)v->u.owned.ptr);
    else
        trace("recv %lld", (long long)v->u.i);
}

static void send_trace(pact_error *err, void *ud)
{
    if (err)
        trace("send%d %s", (int)(intptr_t)ud,
              pact_strerror(pact_error_code(err)));
    else
        trace("send%d ok", (int)(intptr_t)ud);
}

START_TEST(buffered_capacity_order)
{
    trace_reset();
    pact_chan *ch = pact_chan_new(t_loop, 2);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(pact_chan_send(ch, pact_int(i), NULL, send_trace,
                                        (void *)(intptr_t)i),
                         0);
    ck_assert_uint_eq(pact_chan_len(ch), 2);
    run_ok(); /* the third send stays parked: it does not keep the loop */
    ck_assert_str_eq(trace_text(), "send1 ok\nsend2 ok\n");
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pact_chan_recv(ch, NULL, recv_trace, NULL), 0);
    run_ok();
    ck_assert_str_eq(trace_text(),
                     "send1 ok\nsend2 ok\nrecv 1\nsend3 ok\nrecv 2\nrecv 3\n");
    ck_assert_uint_eq(pact_chan_len(ch), 0);
    pact_chan_free(ch);
}
END_TEST

START_TEST(close_drains_then_eof_epipe)
{
    trace_reset();
    frees = 0;
    pact_chan *ch = pact_chan_new(t_loop, 1);
    ck_assert_int_eq(
        pact_chan_send(ch, owned_int(7), NULL, send_trace, (void *)1), 0);
    ck_assert_int_eq(
        pact_chan_send(ch, owned_int(8), NULL, send_trace, (void *)2),
        0); /* parked */
    ck_assert_int_eq(pact_chan_close(ch), 0);
    ck_assert_int_eq(pact_chan_close(ch), PACT_EALREADY);
    ck_assert_int_eq(
        pact_chan_send(ch, owned_int(9), NULL, send_trace, (void *)3), 0);
    ck_assert_int_eq(pact_chan_recv(ch, NULL, recv_trace, NULL), 0);
    ck_assert_int_eq(pact_chan_recv(ch, NULL, recv_trace, NULL), 0);
    run_ok();
    ck_assert_str_eq(trace_text(), "send1 ok\nsend2 broken pipe\n"
                                   "send3 broken pipe\nrecv 7\n"
                                   "recv end of file\n");
    ck_assert_int_eq(frees, 3);
    pact_chan_free(ch);
}
END_TEST

/* A receive that parks again from its own callback. */
static int again_n;
static pact_chan *again_ch;
static void recv_again(pact_error *err, pact_value *v, void *ud)
{
    recv_trace(err, v, ud);
    if (!err && ++again_n < 3)
        ck_assert_int_eq(pact_chan_recv(again_ch, NULL, recv_again, NULL), 0);
}

static void send_more(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    intptr_t i = (intptr_t)ud;
    if (i < 3)
        ck_assert_int_eq(pact_chan_send(again_ch, pact_int(i + 1), NULL,
                                        send_more, (void *)(i + 1)),
                         0);
}

START_TEST(callback_reregisters)
{
    trace_reset();
    again_n = 0;
    again_ch = pact_chan_new(t_loop, 0);
    ck_assert_int_eq(pact_chan_recv(again_ch, NULL, recv_again, NULL), 0);
    ck_assert_int_eq(
        pact_chan_send(again_ch, pact_int(1), NULL, send_more, (void *)1), 0);
    run_ok();
    ck_assert_str_eq(trace_text(), "recv 1\nrecv 2\nrecv 3\n");
    pact_chan_free(again_ch);
}
END_TEST

START_TEST(free_with_parked)
{
    trace_reset();
    frees = 0;
    pact_chan *r = pact_chan_new(t_loop, 0), *s = pact_chan_new(t_loop, 0);
    ck_assert_int_eq(pact_chan_recv(r, NULL, recv_trace, NULL), 0);
    ck_assert_int_eq(pact_chan_recv(r, NULL, recv_trace, NULL), 0);
    ck_assert_int_eq(
        pact_chan_send(s, owned_int(1), NULL, send_trace, (void *)1), 0);
    ck_assert_int_eq(
        pact_chan_send(s, owned_int(2), NULL, send_trace, (void *)2), 0);
    pact_chan_free(r);
    pact_chan_free(s);
    ck_assert_str_eq(trace_text(), ""); /* never inside the call */
    run_ok();
    ck_assert_str_eq(trace_text(),
                     "recv operation canceled\nrecv operation canceled\n"
                     "send1 operation canceled\nsend2 operation canceled\n");
    ck_assert_int_eq(frees, 2);
}
END_TEST

START_TEST(abort_parked_recv)
{
    trace_reset();
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_chan *ch = pact_chan_new(t_loop, 0);
    pact_chan_opts o = {.abort = a};
    ck_assert_int_eq(pact_chan_recv(ch, &o, recv_trace, NULL), 0);
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert_str_eq(trace_text(), "");
    run_ok();
    ck_assert_str_eq(trace_text(), "recv operation canceled\n");
    /* the channel still works: the next send parks (nobody to take it) */
    ck_assert_int_eq(pact_chan_len(ch), 0);
    pact_abort_unref(a);
    pact_chan_free(ch);
}
END_TEST

START_TEST(close_all_parked)
{
    trace_reset();
    frees = 0;
    pact_chan *ch = pact_chan_new(t_loop, 0);
    ck_assert_int_eq(pact_chan_recv(ch, NULL, recv_trace, NULL), 0);
    pact_chan *s = pact_chan_new(t_loop, 0);
    ck_assert_int_eq(
        pact_chan_send(s, owned_int(5), NULL, send_trace, (void *)1), 0);
    pact_loop_close_all(t_loop);
    run_ok();
    ck_assert_str_eq(trace_text(),
                     "recv operation canceled\nsend1 operation canceled\n");
    ck_assert_int_eq(frees, 1);
    pact_chan_free(ch);
    pact_chan_free(s);
}
END_TEST

/* pact_await_any over two receives: the one that gets a value wins. */
static pact_error *selector(void *arg, pact_value *result)
{
    pact_chan **chs = arg;
    pact_promise *ps[2] = {pact_chan_recv_p(chs[0], NULL),
                           pact_chan_recv_p(chs[1], NULL)};
    size_t idx = 9;
    pact_value v;
    pact_error *err = pact_await_any(ps, 2, &idx, &v);
    pact_promise_unref(ps[0]);
    pact_promise_unref(ps[1]);
    if (err)
        return err;
    *result = pact_int((int64_t)idx * 100 + v.u.i);
    return NULL;
}

START_TEST(select_with_await_any)
{
    pact_chan *chs[2] = {pact_chan_new(t_loop, 0), pact_chan_new(t_loop, 0)};
    pact_promise *t = pact_task_spawn(t_loop, selector, chs, NULL);
    ck_assert_int_eq(pact_chan_send(chs[1], pact_int(42), NULL, NULL, NULL), 0);
    run_ok();
    ck_assert_int_eq(pact_promise_state(t), PACT_FULFILLED);
    ck_assert_int_eq(pact_promise_value(t)->u.i, 142);
    pact_promise_unref(t);
    pact_chan_free(chs[0]); /* its parked receive: ECANCELED, promise rejects */
    pact_chan_free(chs[1]);
    run_ok();
}
END_TEST

/* ---- direct awaits: pact_await_recv / pact_await_send -------------------- */

struct direct {
    pact_chan *ping, *pong;
    int rounds, got;
    int suspended; /* how often a buffered receive suspended: never */
};

static pact_error *d_pinger(void *arg, pact_value *result)
{
    (void)result;
    struct direct *d = arg;
    for (int i = 0; i < d->rounds; i++) {
        pact_error *err = pact_await_send(d->ping, owned_int(i));
        if (err)
            return err;
        pact_value v;
        if ((err = pact_await_recv(d->pong, &v)))
            return err;
        ck_assert_int_eq(v.kind, PACT_OWNED);
        ck_assert_int_eq(*(int *)v.u.owned.ptr, i + 1);
        pact_value_release(&v);
        d->got++;
    }
    return NULL;
}

static pact_error *d_ponger(void *arg, pact_value *result)
{
    (void)result;
    struct direct *d = arg;
    for (;;) {
        pact_value v;
        pact_error *err = pact_await_recv(d->ping, &v);
        if (err) /* PACT_EOF: the pinger is done */
            return pact_error_code(err) == PACT_EOF
                       ? (pact_error_unref(err), NULL)
                       : err;
        int n = *(int *)v.u.owned.ptr;
        pact_value_release(&v);
        if ((err = pact_await_send(d->pong, owned_int(n + 1))))
            return err;
    }
}

START_TEST(direct_pingpong)
{
    struct direct d = {.rounds = 200};
    d.ping = pact_chan_new(t_loop, 0);
    d.pong = pact_chan_new(t_loop, 0);
    frees = 0;
    pact_promise *a = pact_task_spawn(t_loop, d_ponger, &d, NULL);
    pact_promise *b = pact_task_spawn(t_loop, d_pinger, &d, NULL);
    run_ok(); /* the ponger waits on ping: not keeping the loop alive */
    ck_assert_int_eq(d.got, 200);
    ck_assert_int_eq(pact_promise_state(b), PACT_FULFILLED);
    T_MUST(pact_chan_close(d.ping));
    run_ok();
    ck_assert_int_eq(pact_promise_state(a), PACT_FULFILLED);
    ck_assert_int_eq(frees, 400); /* every value freed once */
    pact_promise_unref(a);
    pact_promise_unref(b);
    pact_chan_free(d.ping);
    pact_chan_free(d.pong);
}
END_TEST

static pact_error *buffered_body(void *arg, pact_value *result)
{
    (void)result;
    pact_chan *ch = arg;
    for (int i = 0; i < 3; i++) /* room: none suspends */
        pact_error_unref(pact_await_send(ch, pact_int(i)));
    for (int i = 0; i < 3; i++) {
        pact_value v;
        pact_error *err = pact_await_recv(ch, &v);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(v.u.i, i);
    }
    T_MUST(pact_chan_close(ch));
    pact_value v;
    pact_error *err = pact_await_recv(ch, &v);
    ck_assert_int_eq(pact_error_code(err), PACT_EOF);
    pact_error_unref(err);
    err = pact_await_send(ch, owned_int(9)); /* released, not leaked */
    ck_assert_int_eq(pact_error_code(err), PACT_EPIPE);
    pact_error_unref(err);
    return NULL;
}

START_TEST(direct_buffered_and_closed)
{
    pact_chan *ch = pact_chan_new(t_loop, 3);
    frees = 0;
    pact_promise *p = pact_task_spawn(t_loop, buffered_body, ch, NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(frees, 1);
    pact_promise_unref(p);
    pact_chan_free(ch);
    /* outside a task */
    pact_chan *c2 = pact_chan_new(t_loop, 1);
    struct capture cap;
    capture_begin(&cap);
    pact_error *err = pact_await_recv(c2, NULL);
    free(capture_end(&cap));
    ck_assert_int_eq(pact_error_code(err), PACT_ENOTASK);
    pact_error_unref(err);
    pact_chan_free(c2);
}
END_TEST

/* A task meeting a callback's parked record: the hand-off completes inside
 * the task's await (it does not suspend), and the callback runs on the
 * channel's later tick, once, with the value. */
static int mixed_got = -1, mixed_sent_cb, mixed_steps;
static void mixed_recv_cb(pact_error *err, pact_value *v, void *ud)
{
    (void)ud;
    ck_assert_ptr_null(err);
    mixed_got = (int)v->u.i;
    ck_assert_int_eq(mixed_steps, 2); /* after the task's synchronous part */
}
static void mixed_send_cb(pact_error *err, void *ud)
{
    (void)ud;
    ck_assert_ptr_null(err);
    mixed_sent_cb++;
}
static pact_error *mixed_body(void *arg, pact_value *result)
{
    (void)result;
    pact_chan **ch = arg;
    ck_assert_ptr_null(pact_await_send(ch[0], pact_int(7))); /* to the cb */
    mixed_steps++;
    pact_value v;
    ck_assert_ptr_null(pact_await_recv(ch[1], &v)); /* from the parked cb */
    ck_assert_int_eq(v.u.i, 8);
    mixed_steps++;
    return NULL;
}

START_TEST(direct_meets_callbacks)
{
    pact_chan *ch[2] = {pact_chan_new(t_loop, 0), pact_chan_new(t_loop, 0)};
    T_MUST(pact_chan_recv(ch[0], NULL, mixed_recv_cb, NULL));
    T_MUST(pact_chan_send(ch[1], pact_int(8), NULL, mixed_send_cb, NULL));
    pact_promise *p = pact_task_spawn(t_loop, mixed_body, ch, NULL);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(mixed_got, 7);
    ck_assert_int_eq(mixed_sent_cb, 1);
    ck_assert_int_eq(mixed_steps, 2);
    pact_promise_unref(p);
    pact_chan_free(ch[0]);
    pact_chan_free(ch[1]);
}
END_TEST

struct cancelled_recv {
    pact_chan *ch;
    int code, later;
};

static void send_late(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    T_MUST(pact_chan_send(ud, pact_int(42), NULL, NULL, NULL));
}

static pact_error *recv_in_scope(void *arg, pact_value *result)
{
    (void)result;
    struct cancelled_recv *c = arg;
    pact_scope *s;
    T_MUST(pact_scope_enter(&(pact_scope_opts){.timeout_ms = 10}, &s));
    pact_value v;
    pact_error *err = pact_await_recv(c->ch, &v);
    c->code = pact_error_code(err);
    pact_error_unref(err);
    pact_error_unref(pact_scope_leave(s, NULL));
    /* sent only now: a cancelled receive still parked would take it */
    T_MUST(pact_timeout(t_loop, 0, send_late, c->ch, NULL));
    /* the cancelled receive took nothing: this one gets the value */
    err = pact_await_recv(c->ch, &v);
    ck_assert_ptr_null(err);
    c->later = (int)v.u.i;
    return NULL;
}

START_TEST(direct_recv_cancelled_takes_nothing)
{
    struct cancelled_recv c = {.ch = pact_chan_new(t_loop, 0)};
    pact_promise *p = pact_task_spawn(t_loop, recv_in_scope, &c, NULL);
    run_ok();
    ck_assert_int_eq(c.code, PACT_ECANCELED);
    ck_assert_int_eq(c.later, 42);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
    pact_chan_free(c.ch);
}
END_TEST

static int freed_code;

static pact_error *recv_until_freed(void *arg, pact_value *result)
{
    (void)result;
    pact_error *err = pact_await_recv(arg, NULL);
    freed_code = pact_error_code(err);
    pact_error_unref(err);
    return NULL;
}

START_TEST(direct_recv_freed_and_close_all)
{
    pact_chan *ch = pact_chan_new(t_loop, 0);
    pact_promise *p = pact_task_spawn(t_loop, recv_until_freed, ch, NULL);
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    freed_code = 0;
    pact_chan_free(ch); /* parked: ECANCELED on the next tick */
    run_ok();
    ck_assert_int_eq(freed_code, PACT_ECANCELED);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);

    ch = pact_chan_new(t_loop, 0);
    p = pact_task_spawn(t_loop, recv_until_freed, ch, NULL);
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    freed_code = 0;
    T_MUST(pact_loop_close_all(t_loop));
    run_ok();
    ck_assert_int_eq(freed_code, PACT_ECANCELED);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
    pact_chan_free(ch);
}
END_TEST

Suite *suite_chan(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("chan");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, unbuffered_pingpong);
    tcase_add_test(tc, buffered_capacity_order);
    tcase_add_test(tc, close_drains_then_eof_epipe);
    tcase_add_test(tc, callback_reregisters);
    tcase_add_test(tc, free_with_parked);
    tcase_add_test(tc, abort_parked_recv);
    tcase_add_test(tc, close_all_parked);
    tcase_add_test(tc, select_with_await_any);
    tcase_add_test(tc, direct_pingpong);
    tcase_add_test(tc, direct_buffered_and_closed);
    tcase_add_test(tc, direct_meets_callbacks);
    tcase_add_test(tc, direct_recv_cancelled_takes_nothing);
    tcase_add_test(tc, direct_recv_freed_and_close_all);
    suite_add_tcase(s, tc);
    return s;
}
