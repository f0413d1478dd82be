/* Task groups and cancel scopes (pact/group.h, pact/scope.h): the group
 * waits for every child; the first failure cancels the siblings through
 * their pending operations (a timer, a pool job, a channel receive, a
 * callback timer started by a child, a promise that never settles); every
 * failure is reported together; limits, join sets, deadlines, nested and
 * shielded scopes; and careless use: a group dropped with children running,
 * a group cancelled while it waits, close_all, 10,000 children cancelled at
 * once. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <jansson.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "suites.h"

static void run_ok(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* What a wait gave, by its callback twin. */
struct outcome {
    int calls;
    int code;     /* 0: fulfilled */
    size_t count; /* an aggregate's errors */
    int first;    /* the first error's code in an aggregate */
};

static void on_wait(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    struct outcome *o = ud;
    o->calls++;
    o->code = err ? pact_error_code(err) : 0;
    o->count = pact_error_count(err);
    o->first = o->count ? pact_error_code(pact_error_at(err, 0)) : 0;
}

/* ---- children ------------------------------------------------------------ */

struct kid {
    int64_t sleep_ms; /* then */
    int fail;         /* this code, or 0 */
    int got;          /* what the sleep gave */
    int ran;
    int *running, *peak; /* concurrency, if set */
    int *order, *norder, id;
};

static pact_error *kid_body(void *arg, pact_value *result)
{
    struct kid *k = arg;
    k->ran++;
    if (k->order)
        k->order[(*k->norder)++] = k->id;
    if (k->running && ++*k->running > *k->peak)
        *k->peak = *k->running;
    pact_error *err = pact_sleep(k->sleep_ms);
    if (k->running)
        --*k->running;
    k->got = err ? pact_error_code(err) : 0;
    if (err)
        return err;
    *result = pact_int(k->id);
    if (k->fail)
        return PACT_ERROR(k->fail, "kid %d fails", k->id);
    return NULL;
}

START_TEST(waits_for_every_child)
{
    pact_group *g;
    T_MUST(pact_group_new(t_loop, NULL, &g));
    struct kid k[3] = {{.sleep_ms = 30}, {.sleep_ms = 1}, {.sleep_ms = 10}};
    for (int i = 0; i < 3; i++)
        T_MUST(pact_group_spawn(g, kid_body, &k[i], NULL));
    ck_assert_uint_eq(pact_group_size(g), 3);
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    pact_group_unref(g); /* waited: no report, the children go on */
    run_ok();
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.code, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(k[i].ran, 1);
        ck_assert_int_eq(k[i].got, 0);
    }
}
END_TEST

/* ---- the first failure cancels every kind of pending operation ---------- */

static pact_error *slow_job(pact_job *job, void *arg, pact_value *result)
{
    (void)result;
    atomic_int *saw = arg;
    uint64_t t0 = now_us();
    while (!pact_job_cancelled(job) && now_us() - t0 < 20000000)
        sleep_ms(1);
    atomic_store(saw, pact_job_cancelled(job));
    return NULL;
}

struct blocked {
    int sleep_code, pool_code, chan_code, never_code, timer_code, port_code;
    pact_port *port; /* the parent's end of a worker that never posts */
    atomic_int job_saw;
    pact_chan *ch;
    pact_promise *never;
};

static pact_error *in_sleep(void *arg, pact_value *r)
{
    (void)r;
    struct blocked *b = arg;
    pact_error *err = pact_sleep(60000);
    b->sleep_code = pact_error_code(err);
    return err;
}

static pact_error *in_pool(void *arg, pact_value *r)
{
    (void)r;
    struct blocked *b = arg;
    pact_error *err = PACT_AWAIT_ERR(
        pact_offload_p(pact_task_loop(pact_task_current()), slow_job,
                       &b->job_saw,
                       &(pact_offload_opts){.lane = PACT_LANE_BLOCKING}),
        NULL);
    b->pool_code = pact_error_code(err);
    return err;
}

static pact_error *in_chan(void *arg, pact_value *r)
{
    (void)r;
    struct blocked *b = arg;
    pact_error *err = PACT_AWAIT_ERR(pact_chan_recv_p(b->ch, NULL), NULL);
    b->chan_code = pact_error_code(err);
    return err;
}

static pact_error *in_port(void *arg, pact_value *r)
{
    (void)r;
    struct blocked *b = arg;
    pact_error *err = PACT_AWAIT_ERR(pact_port_recv_p(b->port, NULL), NULL);
    b->port_code = pact_error_code(err);
    return err;
}

/* The worker: waits for one message, then ends. */
static void quit_on_message(pact_error *err, pact_value *msg, void *ud)
{
    (void)msg;
    (void)err;
    pact_worker_exit(ud, 0);
}

static pact_error *silent_worker(pact_loop *loop, pact_port *port, void *arg)
{
    (void)loop;
    (void)arg;
    T_MUST(pact_port_recv(port, NULL, quit_on_message, port));
    return NULL;
}

static pact_error *in_never(void *arg, pact_value *r)
{
    (void)r;
    struct blocked *b = arg;
    pact_error *err = PACT_AWAIT_ERR(pact_promise_ref(b->never), NULL);
    b->never_code = pact_error_code(err);
    return err;
}

static void timer_cb(pact_error *err, void *ud)
{
    struct blocked *b = ud;
    b->timer_code = err ? pact_error_code(err) : -1;
}

/* A go child that starts a callback timer (no token: the group's). */
static pact_promise *starts_timer(pact_loop *loop, pact_error *cancelled,
                                  void *ud)
{
    ck_assert_ptr_null(cancelled);
    pact_handle h;
    T_MUST(pact_timer_start(loop, &(pact_timer_opts){.delay_ms = 60000},
                            timer_cb, ud, &h));
    return pact_resolved(loop, pact_nothing());
}

START_TEST(first_failure_cancels_each_kind)
{
    struct blocked b = {0};
    pact_deferred *d;
    b.never = t_pending(&d);
    b.ch = pact_chan_new(t_loop, 0);
    pact_worker *w;
    T_MUST(pact_worker_new(t_loop, silent_worker, NULL, NULL, &w));
    b.port = pact_worker_port(w);
    T_MUST(pact_worker_unref(w)); /* the group's run, not the worker's */
    pact_group *g;
    T_MUST(pact_group_new(t_loop, NULL, &g));
    T_MUST(pact_group_spawn(g, in_sleep, &b, NULL));
    T_MUST(pact_group_spawn(g, in_pool, &b, NULL));
    T_MUST(pact_group_spawn(g, in_chan, &b, NULL));
    T_MUST(pact_group_spawn(g, in_never, &b, NULL));
    T_MUST(pact_group_spawn(g, in_port, &b, NULL));
    T_MUST(pact_group_go(g, starts_timer, &b));
    struct kid bad = {.sleep_ms = 20, .fail = PACT_EIO, .id = 7};
    T_MUST(pact_group_spawn(g, kid_body, &bad, NULL));
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    pact_group_unref(g);
    run_ok();
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.code, PACT_EAGGREGATE);
    ck_assert_uint_eq(o.count, 1); /* cancellations are not failures */
    ck_assert_int_eq(o.first, PACT_EIO);
    ck_assert_int_eq(b.sleep_code, PACT_ECANCELED);
    ck_assert_int_eq(b.pool_code, PACT_ECANCELED);
    ck_assert_int_eq(atomic_load(&b.job_saw), 1); /* the job saw it */
    ck_assert_int_eq(b.chan_code, PACT_ECANCELED);
    ck_assert_int_eq(b.never_code, PACT_ECANCELED);
    ck_assert_int_eq(b.timer_code, PACT_ECANCELED);
    ck_assert_int_eq(b.port_code, PACT_ECANCELED);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    T_MUST(pact_worker_ref(w)); /* now run until it has ended */
    pact_value bye = pact_int(1);
    T_MUST(pact_port_post(b.port, &bye));
    run_ok();
    pact_worker_free(w);
    pact_chan_free(b.ch);
    pact_promise_unref(b.never);
    pact_deferred_unref(d);
}
END_TEST

/* ---- a socket: a child blocked in a read ------------------------------- */

struct sock {
    pact_tcp_server *srv;
    pact_stream *accepted;
    int connect_code, read_code;
};

static void keep_accepted(pact_error *err, pact_stream *s, void *ud)
{
    struct sock *k = ud;
    if (!err)
        k->accepted = s; /* it never writes */
}

static pact_error *reads_forever(void *arg, pact_value *r)
{
    (void)r;
    struct sock *k = arg;
    pact_value v;
    pact_error *err =
        PACT_AWAIT_ERR(pact_tcp_connect_p(t_loop, "127.0.0.1",
                                          pact_tcp_server_port(k->srv), NULL),
                       &v);
    k->connect_code = pact_error_code(err);
    if (err)
        return err;
    pact_stream *s = v.u.ptr;
    err = PACT_AWAIT_ERR(pact_stream_read_some_p(s, NULL), NULL);
    k->read_code = pact_error_code(err);
    pact_stream_close(s);
    return err;
}

START_TEST(child_in_a_socket_read_is_woken)
{
    struct sock k = {0};
    T_MUST(pact_tcp_listen(t_loop, "127.0.0.1", 0, NULL, keep_accepted, &k,
                           &k.srv));
    pact_group *g;
    /* long enough for a connect on 127.0.0.1 on a loaded machine */
    T_MUST(pact_group_new(t_loop, &(pact_group_opts){.timeout_ms = 500}, &g));
    T_MUST(pact_group_spawn(g, reads_forever, &k, NULL));
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    pact_group_unref(g);
    /* the server keeps the loop alive: run until the group is done */
    while (!o.calls)
        ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    ck_assert_int_eq(k.connect_code, 0);
    ck_assert_int_eq(k.read_code, PACT_ECANCELED);
    ck_assert_int_eq(o.code, PACT_ETIMEDOUT);
    if (k.accepted)
        T_MUST(pact_stream_close(k.accepted));
    T_MUST(pact_tcp_server_close(k.srv, NULL, NULL));
    run_ok();
}
END_TEST

/* ---- nested three deep, several failing at once ------------------------- */

/* Rejected once for every level: the failing children of all three groups
 * wake in one microtask drain, so they fail "at once". */
static pact_promise *shared;

static pact_error *fails_with_others(void *arg, pact_value *r)
{
    (void)r;
    pact_error_unref(PACT_AWAIT_ERR(pact_promise_ref(shared), NULL));
    return PACT_ERROR((int)(intptr_t)arg, "failed with the others");
}

struct nest {
    int depth;
    int code; /* its group's outcome */
    size_t count;
    int aggregates; /* failures that are a nested group's */
    struct kid sleeper;
};

static pact_error *nester(void *arg, pact_value *r)
{
    (void)r;
    struct nest *n = arg;
    pact_group *g;
    T_MUST(pact_group_new(t_loop, NULL, &g));
    struct nest inner = {.depth = n->depth - 1};
    n->sleeper = (struct kid){.sleep_ms = 60000};
    if (n->depth > 1)
        T_MUST(pact_group_spawn(g, nester, &inner, NULL));
    T_MUST(pact_group_spawn(g, fails_with_others, (void *)(intptr_t)PACT_EIO,
                            NULL));
    T_MUST(pact_group_spawn(g, fails_with_others, (void *)(intptr_t)PACT_EPIPE,
                            NULL));
    T_MUST(pact_group_spawn(g, kid_body, &n->sleeper, NULL));
    pact_error *err = pact_group_await(g); /* children end before we do */
    pact_group_unref(g);
    n->code = pact_error_code(err);
    n->count = pact_error_count(err);
    for (size_t i = 0; i < n->count; i++)
        n->aggregates +=
            pact_error_code(pact_error_at(err, i)) == PACT_EAGGREGATE;
    ck_assert_int_eq(n->sleeper.got, PACT_ECANCELED);
    if (n->depth > 1)
        ck_assert_int_eq(inner.code, PACT_EAGGREGATE);
    return err;
}

static pact_value swallow(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    return pact_nothing();
}

START_TEST(nested_three_deep)
{
    pact_deferred *d;
    shared = t_pending(&d);
    struct nest top = {.depth = 3};
    pact_promise *p = pact_task_spawn(t_loop, nester, &top, NULL);
    pact_promise *q = pact_catch(p, swallow, NULL);
    t_settle_later(d, 5, pact_throw(PACT_ERROR(PACT_EIO, "now")), NULL);
    run_ok();
    /* its own two, and the nested group's aggregate */
    ck_assert_int_eq(top.code, PACT_EAGGREGATE);
    ck_assert_uint_eq(top.count, 3);
    ck_assert_int_eq(top.aggregates, 1);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(q);
    pact_promise_unref(p);
    pact_promise_unref(shared);
}
END_TEST

/* ---- a parent's cancellation reaches its grandchildren ------------------ */

struct parent {
    struct kid grandchild;
    int inner_code;
};

static pact_error *makes_a_group(void *arg, pact_value *r)
{
    (void)r;
    struct parent *pa = arg;
    pact_group *g; /* no opts.abort: the ambient token, its parent's */
    T_MUST(pact_group_new(t_loop, NULL, &g));
    pa->grandchild = (struct kid){.sleep_ms = 60000, .got = -1};
    T_MUST(pact_group_spawn(g, kid_body, &pa->grandchild, NULL));
    pact_error *err = pact_group_await(g);
    pact_group_unref(g);
    pa->inner_code = pact_error_code(err);
    return err;
}

START_TEST(parent_cancel_reaches_grandchildren)
{
    pact_group *g;
    T_MUST(pact_group_new(t_loop, NULL, &g));
    struct parent pa = {0};
    T_MUST(pact_group_spawn(g, makes_a_group, &pa, NULL));
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    ck_assert_int_eq(pa.grandchild.ran, 1); /* asleep in the inner group */
    pact_error *why = PACT_ERROR(PACT_ECONNRESET, "the client went away");
    T_MUST(pact_group_cancel(g, why));
    pact_group_unref(g);
    run_ok();
    ck_assert_int_eq(pa.grandchild.got, PACT_ECANCELED);
    ck_assert_int_eq(pa.inner_code, PACT_ECANCELED);
    ck_assert_int_eq(o.code, PACT_ECANCELED);
    pact_error_unref(why);
}
END_TEST

/* ---- many children, cancelled at once ----------------------------------- */

#ifdef PACT__TSAN_BUILD
/* TSan tracks each task's stack as a fiber, and dies past 8128 of them;
 * each costs it enough that 4000 passed a minute on a loaded machine (the
 * other trees run the full ten thousand) */
#define MANY 1000
#else
#define MANY 10000
#endif
START_TEST(ten_thousand_cancelled_at_once)
{
    pact_loop_set_stack_size(t_loop, 16 * 1024);
    pact_group *g;
    T_MUST(pact_group_new(t_loop, NULL, &g));
    struct kid *k = calloc(MANY, sizeof *k);
    ck_assert_ptr_nonnull(k);
    for (int i = 0; i < MANY; i++) {
        k[i].sleep_ms = 60000;
        k[i].got = -1;
        T_MUST(pact_group_spawn(g, kid_body, &k[i], NULL));
    }
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    ck_assert_uint_eq(pact_group_size(g), MANY);
    T_MUST(pact_group_cancel(g, NULL));
    ck_assert_int_eq(pact_group_cancel(g, NULL), PACT_EALREADY);
    pact_group_unref(g);
    run_ok();
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.code, PACT_ECANCELED);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(k[i].got, PACT_ECANCELED);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    free(k);
}
END_TEST

/* ---- cancellation racing completion ------------------------------------- */

static pact_promise *hand_over(pact_loop *loop, pact_error *cancelled, void *ud)
{
    (void)loop;
    ck_assert_ptr_null(cancelled);
    return pact_promise_ref(ud);
}

START_TEST(cancel_races_completion)
{
    for (int order = 0; order < 2; order++) {
        pact_deferred *d;
        pact_promise *p = t_pending(&d);
        pact_group *g;
        T_MUST(pact_group_new(t_loop, NULL, &g));
        T_MUST(pact_group_go(g, hand_over, p));
        struct outcome o = {0};
        T_MUST(pact_group_wait_cb(g, on_wait, &o));
        if (order == 0) { /* completes, then cancelled in the same turn */
            T_MUST(pact_deferred_resolve(d, pact_int(1)));
            T_MUST(pact_group_cancel(g, NULL));
        } else { /* cancelled, then completes: the group still waits */
            T_MUST(pact_group_cancel(g, NULL));
            ck_assert_uint_eq(pact_group_size(g), 1);
            T_MUST(pact_deferred_resolve(d, pact_int(1)));
        }
        pact_group_unref(g);
        run_ok();
        ck_assert_int_eq(o.calls, 1);
        ck_assert_int_eq(o.code, PACT_ECANCELED);
        pact_deferred_unref(d);
        pact_promise_unref(p);
    }
}
END_TEST

/* ---- deadlines ----------------------------------------------------------- */

START_TEST(group_deadline_fail_and_move_on)
{
    for (int move_on = 0; move_on < 2; move_on++) {
        pact_group *g;
        /* quick's zero delay is due long before the deadline even on a
         * loaded machine under TSan (20 ms against 1 ms was not) */
        T_MUST(pact_group_new(
            t_loop, &(pact_group_opts){.timeout_ms = 300, .move_on = move_on},
            &g));
        struct kid k = {.sleep_ms = 60000}, quick = {.sleep_ms = 0};
        T_MUST(pact_group_spawn(g, kid_body, &k, NULL));
        T_MUST(pact_group_spawn(g, kid_body, &quick, NULL));
        struct outcome o = {0};
        T_MUST(pact_group_wait_cb(g, on_wait, &o));
        pact_group_unref(g);
        run_ok();
        ck_assert_int_eq(o.calls, 1);
        ck_assert_int_eq(o.code, move_on ? 0 : PACT_ETIMEDOUT);
        ck_assert_int_eq(k.got, PACT_ECANCELED);
        ck_assert_int_eq(quick.got, 0);
    }
}
END_TEST

struct scoped {
    int inner_code, cause_code, leave_code, after_code;
    bool expired;
};

static pact_error *fail_after_body(void *arg, pact_value *r)
{
    (void)r;
    struct scoped *s = arg;
    pact_scope *sc;
    T_MUST(pact_scope_enter(&(pact_scope_opts){.timeout_ms = 20}, &sc));
    pact_error *err = pact_sleep(60000);
    s->inner_code = pact_error_code(err);
    s->cause_code = pact_error_code(pact_error_cause(err));
    pact_error_unref(err);
    /* later awaits in the scope fail at once */
    err = pact_sleep(0);
    ck_assert_int_eq(pact_error_code(err), PACT_ECANCELED);
    pact_error_unref(err);
    err = pact_scope_leave(sc, &s->expired);
    s->leave_code = pact_error_code(err);
    pact_error_unref(err);
    err = pact_sleep(1); /* outside: awaits work again */
    s->after_code = pact_error_code(err);
    pact_error_unref(err);
    return NULL;
}

START_TEST(scope_fail_after)
{
    struct scoped s = {0};
    pact_promise *p = pact_task_spawn(t_loop, fail_after_body, &s, NULL);
    run_ok();
    ck_assert_int_eq(s.inner_code, PACT_ECANCELED);
    ck_assert_int_eq(s.cause_code, PACT_ETIMEDOUT);
    ck_assert_int_eq(s.leave_code, PACT_ETIMEDOUT);
    ck_assert(s.expired);
    ck_assert_int_eq(s.after_code, 0);
    pact_promise_unref(p);
}
END_TEST

struct nested_scopes {
    int sleep_code, inner_leave, outer_leave;
    bool inner_expired, outer_expired;
};

static pact_error *nested_scopes_body(void *arg, pact_value *r)
{
    (void)r;
    struct nested_scopes *n = arg;
    pact_scope *outer, *inner;
    T_MUST(pact_scope_enter(&(pact_scope_opts){.timeout_ms = 20, .move_on = 1},
                            &outer));
    T_MUST(pact_scope_enter(&(pact_scope_opts){.timeout_ms = 60000}, &inner));
    /* leaving out of order is refused and changes nothing */
    struct capture cap;
    capture_begin(&cap);
    ck_assert_ptr_null(pact_scope_leave(outer, NULL));
    free(capture_end(&cap));
    pact_error *err = pact_sleep(60000); /* the earliest deadline wins */
    n->sleep_code = pact_error_code(err);
    pact_error_unref(err);
    ck_assert(pact_scope_cancelled(inner));
    err = pact_scope_leave(inner, &n->inner_expired);
    n->inner_leave = pact_error_code(err);
    pact_error_unref(err);
    err = pact_scope_leave(outer, &n->outer_expired);
    n->outer_leave = pact_error_code(err);
    pact_error_unref(err);
    return NULL;
}

START_TEST(scopes_nest_earliest_deadline)
{
    struct nested_scopes n = {0};
    pact_promise *p = pact_task_spawn(t_loop, nested_scopes_body, &n, NULL);
    run_ok();
    ck_assert_int_eq(n.sleep_code, PACT_ECANCELED);
    ck_assert_int_eq(n.inner_leave, 0); /* not its own deadline */
    ck_assert(!n.inner_expired);
    ck_assert_int_eq(n.outer_leave, 0); /* move_on */
    ck_assert(n.outer_expired);
    pact_promise_unref(p);
}
END_TEST

struct shielded {
    int first, cleanup, after;
};

static pact_error *shielded_body(void *arg, pact_value *r)
{
    (void)r;
    struct shielded *s = arg;
    pact_error *err = pact_sleep(60000);
    s->first = pact_error_code(err);
    pact_error_unref(err);
    pact_scope *sc;
    T_MUST(pact_scope_enter(&(pact_scope_opts){.shield = true}, &sc));
    err = pact_sleep(20); /* clean-up: runs to its end */
    s->cleanup = err ? pact_error_code(err) : 0;
    pact_error_unref(err);
    pact_error_unref(pact_scope_leave(sc, NULL));
    err = pact_sleep(1); /* outside the shield: cancelled again */
    s->after = pact_error_code(err);
    return err;
}

START_TEST(deadline_during_shielded_cleanup)
{
    pact_group *g;
    T_MUST(pact_group_new(t_loop, &(pact_group_opts){.timeout_ms = 10}, &g));
    struct shielded s = {0};
    T_MUST(pact_group_spawn(g, shielded_body, &s, NULL));
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    pact_group_unref(g);
    run_ok();
    ck_assert_int_eq(s.first, PACT_ECANCELED);
    ck_assert_int_eq(s.cleanup, 0);
    ck_assert_int_eq(s.after, PACT_ECANCELED);
    ck_assert_int_eq(o.code, PACT_ETIMEDOUT);
}
END_TEST

/* ---- limits and join sets ------------------------------------------------ */

START_TEST(limit_never_exceeded)
{
    enum { N = 40, LIMIT = 3 };
    pact_group *g;
    T_MUST(pact_group_new(t_loop, &(pact_group_opts){.limit = LIMIT}, &g));
    struct kid k[N];
    int running = 0, peak = 0, order[N], norder = 0;
    for (int i = 0; i < N; i++) {
        k[i] = (struct kid){.sleep_ms = 1 + i % 4,
                            .running = &running,
                            .peak = &peak,
                            .order = order,
                            .norder = &norder,
                            .id = i};
        T_MUST(pact_group_spawn(g, kid_body, &k[i], NULL));
        ck_assert_uint_le(pact_group_running(g), LIMIT);
    }
    ck_assert_uint_eq(pact_group_size(g), N);
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    pact_group_unref(g);
    run_ok();
    ck_assert_int_eq(o.code, 0);
    ck_assert_int_eq(peak, LIMIT);
    ck_assert_int_eq(norder, N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(order[i], i); /* started in spawn order */
}
END_TEST

struct joiner {
    int64_t got[4];
    int codes[4];
    int n, eof;
};

static pact_error *join_body(void *arg, pact_value *r)
{
    (void)r;
    struct joiner *j = arg;
    pact_group *g;
    T_MUST(pact_group_new(t_loop, &(pact_group_opts){.join = true}, &g));
    struct kid k[3] = {{.sleep_ms = 30, .id = 30},
                       {.sleep_ms = 1, .id = 1, .fail = PACT_EIO},
                       {.sleep_ms = 10, .id = 10}};
    for (int i = 0; i < 3; i++)
        T_MUST(pact_group_spawn(g, kid_body, &k[i], NULL));
    for (;;) {
        pact_value v;
        pact_error *err = PACT_AWAIT_ERR(pact_group_next(g), &v);
        if (err && pact_error_code(err) == PACT_EOF) {
            j->eof = 1;
            pact_error_unref(err);
            break;
        }
        j->codes[j->n] = pact_error_code(err);
        j->got[j->n++] = err ? -1 : v.u.i;
        pact_error_unref(err);
    }
    pact_error *err = PACT_AWAIT_ERR(pact_group_wait(g), NULL);
    pact_group_unref(g);
    ck_assert_ptr_null(err); /* a join set's failures went to next */
    return NULL;
}

START_TEST(join_set_in_finish_order)
{
    struct joiner j = {0};
    pact_promise *p = pact_task_spawn(t_loop, join_body, &j, NULL);
    run_ok();
    ck_assert_int_eq(j.n, 3);
    ck_assert_int_eq(j.codes[0], PACT_EIO); /* failed first, no cancel */
    ck_assert_int_eq(j.got[1], 10);
    ck_assert_int_eq(j.got[2], 30);
    ck_assert_int_eq(j.eof, 1);
    pact_promise_unref(p);
}
END_TEST

/* ---- go children: async functions, queued ones told of a cancellation ---- */

struct go_rec {
    int started, told;
};

static pact_promise *go_sleep(pact_loop *loop, pact_error *cancelled, void *ud)
{
    struct go_rec *r = ud;
    if (cancelled) {
        ck_assert_int_eq(pact_error_code(cancelled), PACT_ECANCELED);
        r->told++;
        return NULL;
    }
    r->started++;
    return pact_delay(loop, 60000, NULL); /* the group's, by ambience */
}

START_TEST(queued_go_children_told_of_cancel)
{
    pact_group *g;
    T_MUST(pact_group_new(t_loop, &(pact_group_opts){.limit = 2}, &g));
    struct go_rec r = {0};
    for (int i = 0; i < 5; i++)
        T_MUST(pact_group_go(g, go_sleep, &r));
    ck_assert_int_eq(r.started, 2);
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    pact_group_unref(g);
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    T_MUST(pact_group_cancel(g, NULL)); /* still alive: it has children */
    run_ok();
    ck_assert_int_eq(r.started, 2);
    ck_assert_int_eq(r.told, 3); /* each callback exactly once */
    ck_assert_int_eq(o.code, PACT_ECANCELED);
}
END_TEST

/* ---- careless use ---------------------------------------------------------
 */

START_TEST(dropped_group_cancels_and_reports)
{
    pact_group *g;
    T_MUST(pact_group_new(t_loop, NULL, &g));
    struct kid k = {.sleep_ms = 60000};
    T_MUST(pact_group_spawn(g, kid_body, &k, NULL));
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0); /* asleep */
    struct capture cap;
    capture_begin(&cap);
    pact_group_unref(g); /* nobody waits: the child may not outlive it */
    char *out = capture_end(&cap);
    ck_assert_msg(strstr(out, "cannot outlive") && strstr(out, "test_group.c"),
                  "stderr: '%s'", out);
    free(out);
    run_ok();
    ck_assert_int_eq(k.got, PACT_ECANCELED);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
}
END_TEST

START_TEST(close_all_ends_groups)
{
    pact_group *g;
    T_MUST(pact_group_new(t_loop, &(pact_group_opts){.timeout_ms = 60000}, &g));
    struct kid k = {.sleep_ms = 60000};
    T_MUST(pact_group_spawn(g, kid_body, &k, NULL));
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    T_MUST(pact_loop_close_all(t_loop));
    run_ok();
    ck_assert_int_eq(k.got, PACT_ECANCELED);
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.code, 0); /* close_all is not the group's cancel */
    /* finished: closed to more */
    struct capture cap;
    capture_begin(&cap);
    ck_assert_int_eq(pact_group_spawn(g, kid_body, &k, NULL), PACT_EINVAL);
    free(capture_end(&cap));
    pact_group_unref(g);
}
END_TEST

/* A deadline keeps the loop alive only while the group has children. */
START_TEST(deadline_alone_keeps_nothing_alive)
{
    pact_group *g;
    T_MUST(pact_group_new(t_loop, &(pact_group_opts){.timeout_ms = 60000}, &g));
    struct kid k = {.sleep_ms = 1};
    T_MUST(pact_group_spawn(g, kid_body, &k, NULL));
    run_ok(); /* returns once the child is done, not after 60 s */
    ck_assert_int_eq(k.ran, 1);
    ck_assert_uint_eq(pact_group_size(g), 0);
    /* a child added later is under the deadline again */
    struct kid k2 = {.sleep_ms = 1};
    T_MUST(pact_group_spawn(g, kid_body, &k2, NULL));
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    pact_group_unref(g);
    run_ok();
    ck_assert_int_eq(k2.ran, 1);
    ck_assert_int_eq(o.code, 0);
}
END_TEST

/* A waiter that waits again from its own callback gets the same outcome,
 * once per wait. */
struct rewait {
    pact_group *g;
    int calls, codes[4];
};

static void on_rewait(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    struct rewait *r = ud;
    r->codes[r->calls++] = pact_error_code(err);
    if (r->calls < 3)
        T_MUST(pact_group_wait_cb(r->g, on_rewait, r));
}

START_TEST(waiter_waits_again)
{
    struct rewait r = {0};
    T_MUST(pact_group_new(t_loop, NULL, &r.g));
    struct kid k = {.sleep_ms = 1, .fail = PACT_EIO};
    T_MUST(pact_group_spawn(r.g, kid_body, &k, NULL));
    T_MUST(pact_group_wait_cb(r.g, on_rewait, &r));
    run_ok();
    ck_assert_int_eq(r.calls, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(r.codes[i], PACT_EAGGREGATE);
    /* finished: closed to children, open to more waits */
    struct capture cap;
    capture_begin(&cap);
    ck_assert_int_eq(pact_group_spawn(r.g, kid_body, &k, NULL), PACT_EINVAL);
    free(capture_end(&cap));
    pact_group_unref(r.g);
}
END_TEST

static void body_spawns(pact_group *g, void *ud)
{
    struct kid *k = ud;
    for (int i = 0; i < 2; i++)
        T_MUST(pact_group_spawn(g, kid_body, &k[i], NULL));
}

START_TEST(run_is_a_nursery)
{
    struct kid k[2] = {{.sleep_ms = 1, .id = 1}, {.sleep_ms = 2, .id = 2}};
    pact_promise *p = pact_group_run(t_loop, NULL, body_spawns, k);
    ck_assert_ptr_nonnull(p);
    run_ok();
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    ck_assert_int_eq(k[0].got + k[1].got, 0);
    ck_assert_int_eq(k[0].ran + k[1].ran, 2);
    pact_promise_unref(p);
    /* misuse */
    struct capture cap;
    capture_begin(&cap);
    pact_scope *sc;
    ck_assert_int_eq(pact_scope_enter(NULL, &sc), PACT_ENOTASK);
    pact_group *g;
    ck_assert_int_eq(
        pact_group_new(t_loop, &(pact_group_opts){.timeout_ms = -1}, &g),
        PACT_EINVAL);
    ck_assert_ptr_null(g);
    ck_assert_ptr_null(pact_group_next(NULL));
    free(capture_end(&cap));
}
END_TEST

/* ---- the task dump ------------------------------------------------------- */

static char *normalize(const char *in)
{
    static const struct {
        const char *re, *to;
    } rules[] = {
        {"[^ (]*test_group\\.c:[0-9]+", "test_group.c:L"},
        {"0x[0-9a-f]+", "0x?"},
        {"[0-9]+ ms", "N ms"},
        {"line [0-9]+", "line L"},
    };
    char *s = strdup(in);
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        regex_t re;
        ck_assert_int_eq(regcomp(&re, rules[r].re, REG_EXTENDED), 0);
        size_t cap = strlen(s) * 2 + 64, len = 0;
        char *out = malloc(cap);
        const char *p = s;
        regmatch_t m;
        while (regexec(&re, p, 1, &m, p == s ? 0 : REG_NOTBOL) == 0 &&
               m.rm_eo > 0) {
            size_t need = len + (size_t)m.rm_so + strlen(rules[r].to) + 1;
            ck_assert_uint_lt(need, cap);
            memcpy(out + len, p, (size_t)m.rm_so);
            len += (size_t)m.rm_so;
            len += (size_t)sprintf(out + len, "%s", rules[r].to);
            p += m.rm_eo;
        }
        ck_assert_uint_lt(len + strlen(p), cap);
        strcpy(out + len, p);
        regfree(&re);
        free(s);
        s = out;
    }
    return s;
}

static pact_error *scoped_sleeper(void *arg, pact_value *r)
{
    (void)arg;
    (void)r;
    pact_scope *sc;
    T_MUST(pact_scope_enter(&(pact_scope_opts){.timeout_ms = 60000}, &sc));
    pact_error *err = pact_sleep(60000);
    pact_error_unref(pact_scope_leave(sc, NULL));
    return err;
}

typedef struct waiting_frame {
    PACT_ASYNC_FRAME;
    pact_promise *on;
    pact_error *err;
} waiting_frame;

static pact_error *waiting_body(pact_async *a, pact_value *result)
{
    (void)result;
    waiting_frame *f = (waiting_frame *)a;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, pact_promise_ref(f->on), NULL, f->err);
    pact_error_unref(f->err);
    return NULL;
    PACT_ASYNC_END(a);
}

static void noop_timer(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
}

START_TEST(dump_of_a_known_tree)
{
    pact_group *g;
    T_MUST(pact_group_new(
        t_loop, &(pact_group_opts){.name = "fetchers", .limit = 2}, &g));
    T_MUST(pact_group_spawn(g, scoped_sleeper, NULL,
                            &(pact_task_opts){.name = "fetch-a"}));
    struct kid b = {.sleep_ms = 60000}, c = {.sleep_ms = 60000};
    T_MUST(pact_group_spawn(g, kid_body, &b,
                            &(pact_task_opts){.name = "fetch-b"}));
    T_MUST(pact_group_spawn(g, kid_body, &c,
                            &(pact_task_opts){.name = "fetch-c"}));
    pact_deferred *d;
    pact_promise *never = t_pending(&d);
    pact_promise *lonely =
        pact_task_spawn(t_loop, in_never, &(struct blocked){.never = never},
                        &(pact_task_opts){.name = "lonely"});
    waiting_frame *wf = pact_async_new(t_loop, sizeof *wf, waiting_body);
    ck_assert_ptr_nonnull(wf);
    wf->on = never;
    pact_promise *waiting = pact_async_start(wf);
    pact_handle h;
    T_MUST(pact_timer_start(t_loop, &(pact_timer_opts){.delay_ms = 60000},
                            noop_timer, NULL, &h));
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);

    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    ck_assert_uint_eq(pact_loop_dump(t_loop, f), 10);
    fclose(f);
    char *got = normalize(text);
    free(text);
    const char *want =
        "pact: dump of loop: 4 task(s), 1 group(s), 4 operation(s)\n"
        "  group fetchers (made at test_group.c:L): 2 running, 1 queued, "
        "limit 2\n"
        "    task fetch-b (spawned at test_group.c:L): awaiting at "
        "test_group.c:L\n"
        "      operation timer: N ms, due in N ms, calls "
        "pact_deferred_cb(0x?)\n"
        "    task fetch-a (spawned at test_group.c:L): awaiting at "
        "test_group.c:L\n"
        "      scope, deadline in N ms\n"
        "      operation timer: N ms, due in N ms, calls 0x?(0x?)\n"
        "      operation timer: N ms, due in N ms, calls "
        "pact_deferred_cb(0x?)\n"
        "  task lonely (spawned at test_group.c:L): awaiting at "
        "test_group.c:L\n"
        "  async function 0x?: awaiting at test_group.c:L\n"
        "  operation timer: N ms, due in N ms, calls 0x?((nil))\n";
    ck_assert_str_eq(got, want);
    free(got);

    json_t *j = pact_loop_dump_json(t_loop);
    ck_assert_ptr_nonnull(j);
    json_int_t ntasks, queued, limit;
    json_t *gt, *tt, *ot;
    ck_assert_int_eq(json_unpack(j, "{s:I, s:o, s:o, s:o}", "tasks", &ntasks,
                                 "groups_tree", &gt, "tasks_tree", &tt,
                                 "operations_tree", &ot),
                     0);
    ck_assert_int_eq(ntasks, 4);
    ck_assert_uint_eq(json_array_size(gt), 1);
    ck_assert_int_eq(json_unpack(json_array_get(gt, 0), "{s:I, s:I}", "queued",
                                 &queued, "limit", &limit),
                     0);
    ck_assert_int_eq(queued, 1);
    ck_assert_int_eq(limit, 2);
    ck_assert_uint_eq(
        json_array_size(json_object_get(json_array_get(gt, 0), "tasks")), 2);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(tt, 0), "name")),
        "lonely");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(tt, 1), "kind")),
        "async");
    ck_assert_uint_eq(json_array_size(ot), 1);
    json_decref(j);

    T_MUST(pact_clear(t_loop, h));
    T_MUST(pact_group_cancel(g, NULL));
    T_MUST(pact_deferred_resolve(d, pact_nothing()));
    struct outcome o = {0};
    T_MUST(pact_group_wait_cb(g, on_wait, &o));
    pact_group_unref(g);
    run_ok();
    ck_assert_int_eq(o.code, PACT_ECANCELED);
    /* empty now */
    f = open_memstream(&text, &len);
    ck_assert_uint_eq(pact_loop_dump(t_loop, f), 0);
    fclose(f);
    ck_assert_str_eq(text, "pact: dump of loop: 0 task(s), 0 group(s), 0 "
                           "operation(s)\n  nothing\n");
    free(text);
    pact_promise_unref(lonely);
    pact_promise_unref(waiting);
    pact_promise_unref(never);
    pact_deferred_unref(d);
}
END_TEST

static void dump_by_signal(void *arg)
{
    (void)arg;
    setenv("PACT_DUMP_SIGNAL", "USR2", 1);
    pact_loop *loop;
    T_CHILD_ASSERT(pact_loop_new(&loop) == 0);
    pact_group *g;
    T_CHILD_ASSERT(
        pact_group_new(loop, &(pact_group_opts){.name = "sig"}, &g) == 0);
    struct capture cap;
    capture_begin(&cap);
    raise(SIGUSR2);
    /* the watcher keeps nothing alive: a timer gives the loop a turn */
    pact_handle h;
    T_CHILD_ASSERT(pact_timer_start(loop, &(pact_timer_opts){.delay_ms = 20},
                                    noop_timer, NULL, &h) == 0);
    T_CHILD_ASSERT(pact_loop_run(loop, PACT_RUN_DEFAULT) == 0);
    char *out = capture_end(&cap);
    if (!strstr(out, "group sig (made at"))
        fprintf(stderr, "child: stderr was '%s'\n", out);
    T_CHILD_ASSERT(strstr(out, "group sig (made at") != NULL);
    free(out);
    pact_group_unref(g);
    T_CHILD_ASSERT(pact_loop_free(loop) == 0); /* it never blocks free */
    _exit(0);
}

START_TEST(dump_on_a_signal)
{
    t_forked(dump_by_signal, NULL);
}
END_TEST

Suite *suite_group(void)
{
    Suite *s = suite_create("group");
    TCase *tc = tcase_create("group");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, waits_for_every_child);
    tcase_add_test(tc, first_failure_cancels_each_kind);
    tcase_add_test(tc, child_in_a_socket_read_is_woken);
    tcase_add_test(tc, nested_three_deep);
    tcase_add_test(tc, parent_cancel_reaches_grandchildren);
    tcase_add_test(tc, ten_thousand_cancelled_at_once);
    tcase_add_test(tc, cancel_races_completion);
    tcase_add_test(tc, group_deadline_fail_and_move_on);
    tcase_add_test(tc, limit_never_exceeded);
    tcase_add_test(tc, join_set_in_finish_order);
    tcase_add_test(tc, queued_go_children_told_of_cancel);
    tcase_add_test(tc, dropped_group_cancels_and_reports);
    tcase_add_test(tc, close_all_ends_groups);
    tcase_add_test(tc, deadline_alone_keeps_nothing_alive);
    tcase_add_test(tc, waiter_waits_again);
    tcase_add_test(tc, run_is_a_nursery);
    tcase_add_test(tc, dump_of_a_known_tree);
    tcase_add_test(tc, dump_on_a_signal);
    suite_add_tcase(s, tc);
    TCase *sc = tcase_create("scope");
    tcase_add_checked_fixture(sc, t_setup, t_teardown);
    tcase_set_timeout(sc, 60);
    tcase_add_test(sc, scope_fail_after);
    tcase_add_test(sc, scopes_nest_earliest_deadline);
    tcase_add_test(sc, deadline_during_shielded_cleanup);
    suite_add_tcase(s, sc);
    return s;
}
