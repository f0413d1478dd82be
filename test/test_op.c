/* The pending-operation record: one rule for every operation kind and every
 * way of cancelling it (the callback runs exactly once, with ECANCELED when
 * cancelled, never inside the cancelling call; ud always comes back), the
 * program's own operations through pact_op_start, their promise twins, and
 * 100,000 operations cancelled at once. */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "helpers.h"
#include "suites.h"

/* ---- one record per kind, in a table ------------------------------------ */

/* What a kind's callback saw. */
struct seen {
    int calls;
    int code;         /* of the last call's error, 0 for none */
    int cause;        /* of its cause, 0 for none */
    bool in_cancel;   /* called inside the cancelling call */
    bool *cancelling; /* set around the cancelling call */
};

static bool cancelling;

static void record(pact_error *err, struct seen *s)
{
    s->calls++;
    s->code = err ? pact_error_code(err) : 0;
    pact_error *c = err ? pact_error_cause(err) : NULL;
    s->cause = c ? pact_error_code(c) : 0;
    s->in_cancel |= cancelling;
}

static void seen_cb(pact_error *err, void *ud)
{
    record(err, ud);
}

/* The program's own operation: a "request" that only an outside event
 * (complete_user) completes, freed by whichever call ends it. */
struct user {
    pact_op *op;
    struct seen *seen;
    int *dropped;
};

static bool user_cancel(void *ud)
{
    (void)ud;
    return true;
}

static void user_cancelled(pact_error *err, void *ud)
{
    struct user *u = ud;
    record(err, u->seen);
    free(u);
}

static void user_drop(void *ud)
{
    struct user *u = ud;
    ++*u->dropped;
    free(u);
}

static const pact_op_type user_type = {"a test's request", user_cancel,
                                       user_cancelled, user_drop};

static int dropped;

/* @return 1 if it called back, 0 if the record said not to. */
static int complete_user(struct user *u)
{
    pact_error *err;
    struct seen *s = u->seen;
    pact_op *op = u->op;
    int rc = pact_op_end(op, &err);
    ck_assert_int_ge(rc, 0);
    if (rc == 1) {
        free(u);
        record(err, s);
        pact_error_unref(err);
    }
    return rc;
}

enum kind {
    K_TIMER,
    K_INTERVAL,
    K_IMMEDIATE,
    K_POLL,
    K_SIGNAL,
    K_IMMEDIATE_P,
    K_DELAY,
    K_USER,
    K_OFFLOAD,
    K_OFFLOAD_P,
    K_RECV,
    K_RECV_P,
    K_WRITABLE,
    K_WAIT,
    K_WAIT_P,
    K_NKINDS
};

/* ---- the services' kinds ---- */

/* A job that runs until it is cancelled (or 10 s pass: a stuck test). */
static pact_error *until_cancelled(pact_job *job, void *arg, pact_value *result)
{
    (void)arg, (void)result;
    for (int i = 0; i < 10000 && !pact_job_cancelled(job); i++)
        usleep(1000);
    return NULL;
}

static void seen_job(pact_error *err, pact_value *result, void *ud)
{
    (void)result;
    record(err, ud);
}

static void seen_msg(pact_error *err, pact_value *msg, void *ud)
{
    (void)msg;
    record(err, ud);
}

static void seen_exit(pact_error *err, int code, void *ud)
{
    (void)code;
    record(err, ud);
}

static void idle_keepalive(pact_error *err, void *ud)
{
    (void)ud;
    ck_assert_ptr_nonnull(err); /* only its loop's end calls it */
}

/* A worker that sends nothing and waits to be ended. */
static pact_error *idle_worker(pact_loop *loop, pact_port *port, void *arg)
{
    (void)port, (void)arg;
    T_MUST(pact_timeout(loop, 100000, idle_keepalive, NULL, NULL));
    return NULL;
}

static pact_worker *worker; /* of the kinds that wait on one */

static pact_worker *worker_for(enum kind k)
{
    if (k < K_RECV || worker)
        return worker;
    /* a queue of 1, filled: a wait for room then waits */
    pact_worker_opts o = {.queue_max = 1};
    ck_assert_int_eq(pact_worker_new(t_loop, idle_worker, NULL, &o, &worker),
                     0);
    ck_assert_int_eq(pact_worker_unref(worker), 0); /* the test runs it */
    if (k == K_WRITABLE)
        ck_assert_int_eq(
            pact_port_post_json(pact_worker_port(worker), json_integer(1)), 0);
    return worker;
}

/* After a case: a worker still there is freed (its thread ended). */
static void worker_done(bool closed_all)
{
    if (worker && !closed_all) {
        pact_worker_free(worker);
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    }
    worker = NULL;
}

static int poll_sv[2] = {-1, -1}; /* the pollers' socket pair */

static void close_poll_sv(void)
{
    if (poll_sv[0] >= 0) {
        close(poll_sv[0]);
        close(poll_sv[1]);
        poll_sv[0] = poll_sv[1] = -1;
    }
}

static void seen_poll(pact_error *err, int fd, int events, void *ud)
{
    (void)fd, (void)events;
    record(err, ud);
}

static void seen_signal(pact_error *err, int signum, void *ud)
{
    (void)signum;
    record(err, ud);
}

/* A promise's settlement, recorded as a callback would see it. */
static pact_value on_settled(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    record(err, ud);
    return pact_nothing();
}

struct started {
    pact_handle h;
    pact_promise *p, *tail;
    struct user *u;
};

static void start(enum kind k, pact_abort *abort, struct seen *s,
                  struct started *st)
{
    memset(st, 0, sizeof *st);
    switch (k) {
    case K_TIMER: {
        pact_timer_opts o = {.delay_ms = 100000, .abort = abort};
        T_MUST(pact_timer_start(t_loop, &o, seen_cb, s, &st->h));
        break;
    }
    case K_INTERVAL: {
        pact_timer_opts o = {
            .delay_ms = 100000, .repeat_ms = 100000, .abort = abort};
        T_MUST(pact_timer_start(t_loop, &o, seen_cb, s, &st->h));
        break;
    }
    case K_IMMEDIATE: {
        pact_watch_opts o = {.abort = abort};
        T_MUST(pact_immediate_start(t_loop, &o, seen_cb, s, &st->h));
        break;
    }
    case K_POLL: {
        pact_watch_opts o = {.abort = abort};
        if (poll_sv[0] < 0)
            ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, poll_sv), 0);
        /* readable never comes: nothing is written */
        ck_assert_int_eq(pact_poll_start(t_loop, poll_sv[0], PACT_READABLE, &o,
                                         seen_poll, s, &st->h),
                         0);
        break;
    }
    case K_SIGNAL: {
        pact_watch_opts o = {.abort = abort};
        ck_assert_int_eq(
            pact_signal_start(t_loop, SIGUSR2, &o, seen_signal, s, &st->h), 0);
        break;
    }
    case K_IMMEDIATE_P:
    case K_DELAY:
        st->p = k == K_DELAY ? pact_delay(t_loop, 100000, abort)
                             : pact_immediate_p(t_loop, abort);
        ck_assert_ptr_nonnull(st->p);
        st->tail = pact_then_cb(st->p, on_settled, s);
        break;
    case K_OFFLOAD: {
        pact_offload_opts o = {.abort = abort};
        ck_assert_int_eq(
            pact_offload(t_loop, until_cancelled, NULL, &o, seen_job, s), 0);
        break;
    }
    case K_OFFLOAD_P: {
        pact_offload_opts o = {.abort = abort};
        st->p = pact_offload_p(t_loop, until_cancelled, NULL, &o);
        ck_assert_ptr_nonnull(st->p);
        st->tail = pact_then_cb(st->p, on_settled, s);
        break;
    }
    case K_RECV:
    case K_RECV_P:
    case K_WRITABLE:
    case K_WAIT:
    case K_WAIT_P: {
        pact_worker *w = worker_for(k);
        pact_port *port = pact_worker_port(w);
        pact_wait_opts o = {.abort = abort};
        if (k == K_RECV)
            ck_assert_int_eq(pact_port_recv(port, &o, seen_msg, s), 0);
        else if (k == K_WRITABLE)
            ck_assert_int_eq(pact_port_writable(port, &o, seen_cb, s), 0);
        else if (k == K_WAIT)
            ck_assert_int_eq(pact_worker_wait(w, &o, seen_exit, s), 0);
        else
            st->p = k == K_RECV_P ? pact_port_recv_p(port, &o)
                                  : pact_worker_wait_p(w, &o);
        if (st->p)
            st->tail = pact_then_cb(st->p, on_settled, s);
        break;
    }
    case K_USER: {
        struct user *u = calloc(1, sizeof *u);
        u->seen = s;
        u->dropped = &dropped;
        pact_op_opts o = {.abort = abort};
        ck_assert_int_eq(pact_op_start(t_loop, &user_type, u, &o, &u->op), 0);
        st->u = u;
        break;
    }
    default:
        break;
    }
}

static void finish(struct started *st)
{
    pact_promise_unref(st->p);
    pact_promise_unref(st->tail);
}

static void run_ok(void)
{
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* The table: every kind, cancelled by an aborted token, by a token aborted
 * while pending, and by pact_loop_close_all. */
START_TEST(each_kind_each_cancel)
{
    static const char *how[] = {"aborted before", "abort while pending",
                                "close_all"};
    for (int k = 0; k < K_NKINDS; k++) {
        for (int c = 0; c < 3; c++) {
            struct seen s = {0};
            struct started st;
            pact_abort *a;
            ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
            pact_error *why = PACT_ERROR(PACT_EPERM, "why");
            if (c == 0)
                ck_assert_int_eq(pact_abort_abort(a, why), 0);
            start((enum kind)k, a, &s, &st);
            cancelling = true;
            if (c == 1)
                ck_assert_int_eq(pact_abort_abort(a, why), 0);
            if (c == 2)
                ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
            cancelling = false;
            pact_error_unref(why);
            run_ok();
            ck_assert_msg(s.calls == 1, "kind %d, %s: %d calls", k, how[c],
                          s.calls);
            ck_assert_msg(!s.in_cancel, "kind %d, %s: called inside", k,
                          how[c]);
            ck_assert_int_eq(s.code, PACT_ECANCELED);
            ck_assert_int_eq(s.cause, c == 2 ? 0 : PACT_EPERM);
            finish(&st);
            pact_abort_unref(a);
            worker_done(c == 2);
        }
    }
    close_poll_sv();
}
END_TEST

/* pact_loop_close_all, then pact_loop_free without a run: nothing is
 * called, and what pact owns (the twins' deferreds) or the type drops comes
 * back; nothing leaks (valgrind, ASan). */
START_TEST(close_all_then_free_drops)
{
    pact_loop *saved = t_loop;
    ck_assert_int_eq(pact_loop_new(&t_loop), 0);
    struct seen s[K_NKINDS] = {{0}};
    struct started st[K_NKINDS];
    dropped = 0;
    for (int k = 0; k < K_NKINDS; k++) {
        if (k == K_WAIT || k == K_WAIT_P || k == K_WRITABLE)
            continue; /* one worker per loop here: its receives stand in */
        start((enum kind)k, NULL, &s[k], &st[k]);
    }
    for (int k = 0; k < K_NKINDS; k++)
        if (k != K_WAIT && k != K_WAIT_P && k != K_WRITABLE)
            finish(&st[k]);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(pact_loop_free(t_loop), 0);
    t_loop = saved;
    worker = NULL; /* released by close_all */
    for (int k = 0; k < K_NKINDS; k++)
        ck_assert_int_eq(s[k].calls, 0);
    ck_assert_int_eq(dropped, 1);
    close_poll_sv();
}
END_TEST

/* Completion and cancellation in one turn, in both orders: one call. */
START_TEST(complete_and_cancel_same_turn)
{
    struct seen s1 = {0}, s2 = {0};
    struct started a, b;
    start(K_USER, NULL, &s1, &a);
    start(K_USER, NULL, &s2, &b);
    /* completed first: the cancel finds nothing */
    ck_assert_int_eq(complete_user(a.u), 1);
    ck_assert_int_eq(s1.calls, 1);
    /* cancelled first: the completion is not reported */
    pact_op *op = b.u->op;
    ck_assert_int_eq(pact_op_cancel(op, NULL), 0);
    ck_assert_int_eq(pact_op_cancel(op, NULL), 0); /* twice: harmless */
    pact_error *err;
    ck_assert_int_eq(pact_op_end(op, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(s2.calls, 0);
    run_ok();
    ck_assert_int_eq(s1.calls, 1);
    ck_assert_int_eq(s1.code, 0);
    ck_assert_int_eq(s2.calls, 1);
    ck_assert_int_eq(s2.code, PACT_ECANCELED);
}
END_TEST

/* A cleared timer whose cancellation is due is not called at all. */
START_TEST(cleared_while_due)
{
    struct seen s = {0};
    struct started st;
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    start(K_TIMER, a, &s, &st);
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert_int_eq(pact_clear(t_loop, st.h), 0);
    run_ok();
    ck_assert_int_eq(s.calls, 0);
    pact_abort_unref(a);
}
END_TEST

/* ---- work that cannot stop at once (another thread) ---------------------- */

struct threaded {
    pact_loop *loop;
    pact_op *op;
    pthread_t th;
    struct seen *seen;
    int value;
};

static bool threaded_cancel(void *ud)
{
    (void)ud;
    return false; /* the thread still runs: it ends the op */
}

static void threaded_cancelled(pact_error *err, void *ud)
{
    (void)err, (void)ud;
    ck_abort_msg("a stopping operation is called back by its completion");
}

static const pact_op_type threaded_type = {"a thread's work", threaded_cancel,
                                           threaded_cancelled, NULL};

static void threaded_done(void *ud)
{
    struct threaded *t = ud;
    pthread_join(t->th, NULL);
    pact_error *err;
    ck_assert_int_eq(pact_op_end(t->op, &err), 1);
    record(err, t->seen);
    pact_error_unref(err);
    pact_loop_release(t->loop);
}

static void *threaded_main(void *ud)
{
    struct threaded *t = ud;
    t->value = 42;
    ck_assert_int_eq(pact_loop_post(t->loop, threaded_done, t), 0);
    return NULL;
}

/* Cancelled while its thread runs: the thread's result is replaced by the
 * cancellation, once the thread is done (its memory was still in use). */
START_TEST(stopping_ends_with_the_cancellation)
{
    struct seen s = {0};
    struct threaded t = {.loop = t_loop, .seen = &s};
    pact_op_opts o = {.ref = true};
    ck_assert_int_eq(pact_op_start(t_loop, &threaded_type, &t, &o, &t.op), 0);
    ck_assert(pact_loop_alive(t_loop)); /* a referenced op */
    ck_assert_int_eq(pact_op_cancel(t.op, NULL), 0);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY); /* still running */
    pact_loop_hold(t_loop);
    ck_assert_int_eq(pthread_create(&t.th, NULL, threaded_main, &t), 0);
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.code, PACT_ECANCELED);
    ck_assert_int_eq(t.value, 42);
}
END_TEST

/* ---- the program's own operation as a promise twin ---------------------- */

struct twin_args {
    pact_abort *abort;
};

struct twin_op {
    pact_op *op;
    pact_deferred *d;
};

static bool twin_cancel(void *ud)
{
    (void)ud;
    return true;
}

static void twin_cancelled(pact_error *err, void *ud)
{
    struct twin_op *o = ud;
    pact_deferred_cb(err, o->d); /* rejects, drops the deferred */
    free(o);
}

static void twin_drop(void *ud)
{
    struct twin_op *o = ud;
    pact_deferred_unref(o->d);
    free(o);
}

static const pact_op_type twin_type = {"a twin's request", twin_cancel,
                                       twin_cancelled, twin_drop};

static int twin_start(pact_loop *loop, void *args, pact_deferred *d)
{
    const struct twin_args *a = args;
    struct twin_op *o = malloc(sizeof *o);
    if (!o)
        return PACT_ENOMEM;
    o->d = d;
    pact_op_opts opts = {.abort = a->abort};
    int rc = pact_op_start(loop, &twin_type, o, &opts, &o->op);
    if (rc < 0)
        free(o);
    return rc;
}

/* Its promise rejects with ECANCELED at close_all and with the abort reason
 * as cause when aborted; freed at once, its deferred is released (the loop
 * frees, which it refuses while a promise is referenced). */
START_TEST(twin_rejects_when_cancelled)
{
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    struct twin_args args = {a};
    pact_promise *p1 = pact_promisify(t_loop, twin_start, &args);
    args.abort = NULL;
    pact_promise *p2 = pact_promisify(t_loop, twin_start, &args);
    struct seen s1 = {0}, s2 = {0};
    pact_promise *t1 = pact_then_cb(p1, on_settled, &s1);
    pact_promise *t2 = pact_then_cb(p2, on_settled, &s2);
    pact_error *why = PACT_ERROR(PACT_ETIMEDOUT, "late");
    ck_assert_int_eq(pact_abort_abort(a, why), 0);
    pact_error_unref(why);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_ok();
    ck_assert_int_eq(s1.calls, 1);
    ck_assert_int_eq(s1.code, PACT_ECANCELED);
    ck_assert_int_eq(s1.cause, PACT_ETIMEDOUT);
    ck_assert_int_eq(s2.calls, 1);
    ck_assert_int_eq(s2.code, PACT_ECANCELED);
    pact_promise_unref(p1);
    pact_promise_unref(p2);
    pact_promise_unref(t1);
    pact_promise_unref(t2);
    pact_abort_unref(a);

    pact_loop *loop;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    pact_promise *p3 = pact_promisify(loop, twin_start, &args);
    pact_promise_unref(p3);
    ck_assert_int_eq(pact_loop_close_all(loop), 0);
    ck_assert_int_eq(pact_loop_free(loop), 0);
}
END_TEST

/* ---- the await styles: a task and an async function awaiting each twin --
 * The same cancellations, seen where the code awaits: the await returns
 * ECANCELED (the abort reason as its cause), once. */

static const enum kind twins[] = {K_DELAY, K_IMMEDIATE_P, K_OFFLOAD_P, K_RECV_P,
                                  K_WAIT_P};

static struct seen twin_tail; /* what start()'s own reaction records */

static pact_promise *make_twin(enum kind k, pact_abort *abort)
{
    struct started st;
    start(k, abort, &twin_tail, &st);
    pact_promise_unref(st.tail); /* the await below is the one that counts */
    return st.p;
}

struct awaiter {
    PACT_ASYNC_FRAME; /* first: the async style's frame */
    enum kind k;
    pact_abort *abort;
    struct seen *out; /* outlives the frame (freed when its body ends) */
};

static pact_error *task_awaits(void *arg, pact_value *result)
{
    (void)result;
    struct awaiter *w = arg;
    pact_error *err = PACT_AWAIT_ERR(make_twin(w->k, w->abort), NULL);
    record(err, w->out);
    pact_error_unref(err);
    return NULL;
}

static pact_error *async_awaits(pact_async *a, pact_value *result)
{
    (void)result;
    struct awaiter *w = (struct awaiter *)a;
    pact_error *err = NULL;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, make_twin(w->k, w->abort), NULL, err);
    record(err, w->out);
    pact_error_unref(err);
    PACT_ASYNC_END(a);
}

static void abort_now(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    pact_error *why = PACT_ERROR(PACT_EPERM, "why");
    ck_assert_int_eq(pact_abort_abort(ud, why), 0);
    pact_error_unref(why);
}

static void close_all_now(pact_error *err, void *ud)
{
    (void)ud;
    ck_assert_ptr_null(err);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
}

START_TEST(each_twin_awaited)
{
    for (size_t i = 0; i < sizeof twins / sizeof *twins; i++) {
        for (int style = 0; style < 2; style++) {
            for (int c = 0; c < 3; c++) {
                enum kind k = twins[i];
                pact_abort *a;
                ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
                if (c == 0) {
                    pact_error *why = PACT_ERROR(PACT_EPERM, "why");
                    ck_assert_int_eq(pact_abort_abort(a, why), 0);
                    pact_error_unref(why);
                }
                struct seen seen = {0};
                struct awaiter *w, task_frame = {.k = k, .abort = a};
                task_frame.out = &seen;
                /* runs in the first check phase: after the body has
                 * suspended in its await (a task starts in the drain
                 * before it, an async function inside pact_async_start),
                 * and before the twin's own immediate, queued later */
                if (c == 1)
                    T_MUST(pact_immediate(t_loop, abort_now, a, NULL));
                if (c == 2)
                    T_MUST(pact_immediate(t_loop, close_all_now, NULL, NULL));
                pact_promise *done;
                if (style == 0) {
                    done =
                        pact_task_spawn(t_loop, task_awaits, &task_frame, NULL);
                } else {
                    w = pact_async_new(t_loop, sizeof *w, async_awaits);
                    ck_assert_ptr_nonnull(w);
                    w->k = k;
                    w->abort = a;
                    w->out = &seen;
                    done = pact_async_start(w);
                }
                ck_assert_ptr_nonnull(done);
                run_ok();
                ck_assert_int_eq(pact_promise_state(done), PACT_FULFILLED);
                pact_promise_unref(done);
                pact_abort_unref(a);
                worker_done(c == 2);
                ck_assert_msg(seen.calls == 1,
                              "twin %zu, style %d, %d: %d calls", i, style, c,
                              seen.calls);
                ck_assert_msg(seen.code == PACT_ECANCELED,
                              "twin %zu, style %d, %d: code %d", i, style, c,
                              seen.code);
                if (c != 2)
                    ck_assert_int_eq(seen.cause, PACT_EPERM);
            }
        }
    }
}
END_TEST

/* ---- misuse ------------------------------------------------------------- */

START_TEST(misuse)
{
    pact_op *op = NULL;
    static const pact_op_type no_cancel = {"x", NULL, user_cancelled, NULL};
    ck_assert_int_eq(pact_op_start(t_loop, NULL, NULL, NULL, &op), PACT_EINVAL);
    ck_assert_int_eq(pact_op_start(t_loop, &no_cancel, NULL, NULL, &op),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_op_start(t_loop, &user_type, NULL, NULL, NULL),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_op_end(NULL, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_op_cancel(NULL, NULL), PACT_EINVAL);
    ck_assert_ptr_null(pact_op_loop(NULL));
    struct seen s = {0};
    struct started st;
    start(K_USER, NULL, &s, &st);
    ck_assert_ptr_eq(pact_op_loop(st.u->op), t_loop);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY); /* pending */
    ck_assert_int_eq(complete_user(st.u), 1);
}
END_TEST

/* ---- pact_loop_print_pending ------------------------------------------- */

static char *pending_text(size_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    *n = pact_loop_print_pending(t_loop, f);
    fclose(f);
    return buf;
}

/* Each pending thing on a line of its own, with what a reader needs to find
 * it in the program: kind, delay, fd, referenced or not, the callback's
 * name, and whether a cancellation is due. */
START_TEST(print_pending_lists_everything)
{
    size_t n;
    char *txt = pending_text(&n);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_nonnull(strstr(txt, "nothing"));
    free(txt);

    int count = 0, sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pact_handle t1, t2, p1;
    T_MUST(pact_timeout(t_loop, 1234, count_cb, &count, &t1));
    T_MUST(pact_interval(t_loop, 77, count_cb, &count, &t2));
    ck_assert_int_eq(pact_unref(t_loop, t2), 0);
    ck_assert_int_eq(pact_poll(t_loop, sv[0], PACT_READABLE,
                               (pact_poll_cb)(void (*)(void))count_cb, &count,
                               &p1),
                     0);
    struct seen s = {0};
    struct started st;
    start(K_USER, NULL, &s, &st);
    txt = pending_text(&n);
    ck_assert_int_eq(n, 4);
    ck_assert_ptr_nonnull(strstr(txt, "timer: 1234 ms, due in "));
    ck_assert_ptr_nonnull(strstr(txt, " ms, calls count_cb("));
    ck_assert_ptr_nonnull(strstr(txt, "timer: every 77 ms, due in "));
    ck_assert_ptr_nonnull(strstr(txt, " ms, unreferenced, calls "));
    char fd[64];
    snprintf(fd, sizeof fd, "fd poller: fd %d, calls count_cb(", sv[0]);
    ck_assert_ptr_nonnull(strstr(txt, fd));
    ck_assert_ptr_nonnull(strstr(txt, "a test's request"));
    free(txt);

    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_timer_opts o = {.delay_ms = 10, .abort = a};
    T_MUST(pact_timer_start(t_loop, &o, seen_cb, &s, NULL));
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert_int_eq(pact_close(t_loop, t1, NULL, NULL), 0);
    txt = pending_text(&n);
    ck_assert_int_eq(n, 5);
    ck_assert_ptr_nonnull(strstr(txt, "(cancelled, its call due)"));
    ck_assert_ptr_nonnull(strstr(txt, "a handle closing"));
    free(txt);

    ck_assert_int_eq(pact_clear(t_loop, t2), 0);
    ck_assert_int_eq(pact_clear(t_loop, p1), 0);
    ck_assert_int_eq(complete_user(st.u), 1);
    run_ok();
    ck_assert_int_eq(s.calls, 2); /* the user op and the aborted timer */
    pact_abort_unref(a);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* Tasks (with their spawn sites and the await they wait in), workers and
 * offloaded jobs are listed too: what keeps a loop alive, whichever layer
 * made it. */
static pact_error *sleeper(void *arg, pact_value *result)
{
    (void)arg, (void)result;
    pact_error *err = PACT_AWAIT_ERR(pact_delay(t_loop, 100000, NULL), NULL);
    pact_error_unref(err); /* ECANCELED: the test ends it */
    return NULL;
}

START_TEST(print_pending_lists_tasks_workers_jobs)
{
    pact_task_opts to = {.name = "the sleeper"};
    pact_promise *task = pact_task_spawn(t_loop, sleeper, NULL, &to);
    ck_assert_ptr_nonnull(task);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    pact_worker *w = worker_for(K_WAIT);
    struct seen s = {0};
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_offload_opts oo = {.abort = a};
    ck_assert_int_eq(
        pact_offload(t_loop, until_cancelled, NULL, &oo, seen_job, &s), 0);
    size_t n;
    char *txt = pending_text(&n);
    ck_assert_ptr_nonnull(strstr(txt, "task the sleeper: spawned at "));
    ck_assert_ptr_nonnull(strstr(txt, "test_op.c"));
    ck_assert_ptr_nonnull(strstr(txt, "awaiting at "));
    ck_assert_ptr_nonnull(strstr(txt, "timer: 100000 ms"));
    ck_assert_ptr_nonnull(strstr(txt, "worker "));
    ck_assert_ptr_nonnull(strstr(txt, "offloaded job: "));
    ck_assert(strstr(txt, "runs until_cancelled") || strstr(txt, "runs 0x"));
    ck_assert_int_ge(n, 4);
    free(txt);
    (void)w;
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    worker = NULL;
    run_ok();
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(pact_promise_state(task), PACT_FULFILLED);
    pact_promise_unref(task);
    pact_abort_unref(a);
    txt = pending_text(&n);
    ck_assert_int_eq(n, 0);
    free(txt);
}
END_TEST

/* ---- many ---------------------------------------------------------------- */

enum { MANY = 100000 };

/* 100,000 pending operations (timers on one token, the program's own)
 * cancelled at once: each called once, in the order cancelled. */
START_TEST(many_cancelled_at_once)
{
    struct seen *s = calloc(2 * MANY, sizeof *s);
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    for (int i = 0; i < MANY; i++) {
        pact_timer_opts o = {.delay_ms = 1000 + i % 7, .abort = a};
        T_MUST(pact_timer_start(t_loop, &o, seen_cb, &s[i], NULL));
        struct started st;
        start(K_USER, NULL, &s[MANY + i], &st);
    }
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_ok();
    for (int i = 0; i < 2 * MANY; i++) {
        ck_assert_int_eq(s[i].calls, 1);
        ck_assert_int_eq(s[i].code, PACT_ECANCELED);
    }
    pact_abort_unref(a);
    free(s);
}
END_TEST

Suite *suite_op(void)
{
    Suite *s = suite_create("op");
    TCase *tc = tcase_create("op");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, each_kind_each_cancel);
    tcase_add_test(tc, each_twin_awaited);
    tcase_add_test(tc, close_all_then_free_drops);
    tcase_add_test(tc, complete_and_cancel_same_turn);
    tcase_add_test(tc, cleared_while_due);
    tcase_add_test(tc, stopping_ends_with_the_cancellation);
    tcase_add_test(tc, twin_rejects_when_cancelled);
    tcase_add_test(tc, misuse);
    tcase_add_test(tc, print_pending_lists_everything);
    tcase_add_test(tc, print_pending_lists_tasks_workers_jobs);
    tcase_add_test(tc, many_cancelled_at_once);
    suite_add_tcase(s, tc);
    return s;
}
