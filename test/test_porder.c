/* Node-oracle promise ordering tests. Each case replays, with pact calls, the
 * scenario of test/fixtures/promise/<case>.js and compares pact's trace line
 * by line with what Node v20 printed for it (<case>.txt, made by regen.sh).
 * Read a case beside its .js: same names, same calls in the same order.
 *
 * Mapping: then -> pact_then, catch -> pact_catch, finally -> pact_finally,
 * Promise.resolve -> pact_resolved, Promise.reject -> pact_rejected,
 * new Promise and its resolve/reject -> pact_deferred_new and
 * pact_deferred_resolve/reject, Promise.all/allSettled/race/any ->
 * pact_all/all_settled/race/any, a thenable -> a pact_thenable, setTimeout ->
 * pact_timeout, setImmediate -> pact_immediate, process.nextTick ->
 * pact_next_tick, queueMicrotask -> pact_queue_microtask,
 * process.on('unhandledRejection' / 'rejectionHandled') -> the
 * pact_loop_on_rejection hook (returning true), node
 * --unhandled-rejections=MODE -> pact_loop_set_unhandled. JS strings are
 * pact_ptr values (static strings); new Error('x') is PACT_ERROR(PACT_EIO,
 * "x") and e.message its pact_error_message.
 *
 * References: a chain link that JS leaves to the garbage collector is dropped
 * as soon as the next link is made (then/catch_/finally_ consume their
 * argument), so pact's "freed once its reactions have run" is exercised; a
 * promise or resolver that a later callback still uses is kept in S and
 * dropped after the run.
 *
 * Exit status and stderr: Node's exit status is in <case>.exit (none: 0);
 * status 1 (an unhandled rejection) is pact_loop_run returning
 * PACT_EUNHANDLED. Node's stderr is not compared, only whether there is any:
 * a case Node runs silently must leave pact's stderr empty, and a case whose
 * .js has a "//! stderr:" directive gives what pact's stderr must contain. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsish.h"
#include "suites.h"

#define I2P(i) ((void *)(intptr_t)(i))

typedef pact_promise P;

/* What a case's callbacks share (S.p: promises, S.d: resolve/reject
 * functions a later callback uses). */
static struct js_case S;

/* ---- more of the JavaScript vocabulary (the rest: jsish.h) --------------- */

/* p.finally(fn): consumes @p p and returns the derived promise, as then and
 * catch_ do. */
static P *finally_(P *p, pact_on_finally fn, void *ud)
{
    P *q = nonnull(pact_finally(p, fn, ud));
    pact_promise_unref(p);
    return q;
}

/* reject(new Error(m)) once, as resolve. */
static void reject(pact_deferred **d, const char *m)
{
    ck_assert_int_eq(pact_deferred_reject(*d, new_error(m)), 0);
    pact_deferred_unref(*d);
    *d = NULL;
}

/* new Promise((resolve) => resolve(v)) */
static P *new_resolved(pact_value v)
{
    P *p = NULL;
    pact_deferred *d = defer(&p);
    resolve(&d, v);
    return p;
}

/* ---- handlers ------------------------------------------------------------ */

/* (v) => log(v) */
static pact_value ok_log_value(const pact_value *v, void *ud)
{
    (void)ud;
    trace("%s", sv(v));
    return pact_nothing();
}

/* () => ud (a string) */
static pact_value ok_return(const pact_value *v, void *ud)
{
    (void)v;
    return str(ud);
}

/* (v) => v */
static pact_value ok_identity(const pact_value *v, void *ud)
{
    (void)ud;
    return str(sv(v));
}

/* () => log(ud) as a rejection handler */
static pact_value fail_log(pact_error *e, void *ud)
{
    (void)e;
    trace("%s", (const char *)ud);
    return pact_nothing();
}

/* () => log(ud) as a finally callback */
static pact_value fin_log(void *ud)
{
    trace("%s", (const char *)ud);
    return pact_nothing();
}

/* then((v) => log(ok + ' ' + v), (e) => log(fail + ' ' + e.message)): both
 * handlers share one ud. */
struct two {
    const char *ok, *fail;
};

static pact_value two_ok_log_v(const pact_value *v, void *ud)
{
    trace("%s %s", ((const struct two *)ud)->ok, sv(v));
    return pact_nothing();
}

static pact_value two_fail_log_e(pact_error *e, void *ud)
{
    trace("%s %s", ((const struct two *)ud)->fail, msg(e));
    return pact_nothing();
}

#define NAMED I2P(1)

/* ---- the driver ---------------------------------------------------------- */

/* Run one case (jsish.h) and compare its trace with Node's. */
static void run_case(const char *name, void (*main_turn)(void),
                     const char *err1, const char *err2)
{
    js_run(&S, "promise", JS_RUN_DEBUG_EALREADY, name, main_turn, err1, err2);
    js_expect_fixture("promise", name);
}

static void porder_teardown(void)
{
    js_teardown(&S);
}

/* One Check test per case, named after it. */
#define PORDER_CASE(c)                                                         \
    START_TEST(c)                                                              \
    {                                                                          \
        run_case(#c, c##_main, NULL, NULL);                                    \
    }                                                                          \
    END_TEST
/* A case after which pact's stderr must hold @p e1 and @p e2. */
#define PORDER_CASE_STDERR(c, e1, e2)                                          \
    START_TEST(c)                                                              \
    {                                                                          \
        run_case(#c, c##_main, e1, e2);                                        \
    }                                                                          \
    END_TEST

/* ---- adoption ------------------------------------------------------------ */

static pact_value adopt_resolved_a1(const pact_value *v, void *ud)
{
    (void)ud;
    trace("a1 %s returns a fulfilled promise", sv(v));
    return pact_promise_v(resolved(str("x")));
}

static pact_value adopt_resolved_b1(const pact_value *v, void *ud)
{
    (void)ud;
    trace("b1 %s returns a value", sv(v));
    return str("y");
}

static void adopt_resolved_main(void)
{
    P *p = resolved(str("a"));
    p = then(p, adopt_resolved_a1, NULL, NULL);
    drop(then(p, ok_log_v, NULL, "a2"));
    p = resolved(str("b"));
    p = then(p, adopt_resolved_b1, NULL, NULL);
    drop(then(p, ok_log_v, NULL, "b2"));
    turns(5);
    trace("sync");
}
PORDER_CASE(adopt_resolved)

/* S.p[0]: d; S.d[0]: resolveD */
static pact_value adopt_pending_a1(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("a1 returns pending d");
    return pact_promise_v(ref(S.p[0]));
}

static pact_value adopt_pending_b2(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("b2 resolves d");
    resolve(&S.d[0], str("dv"));
    return pact_nothing();
}

static void adopt_pending_main(void)
{
    S.d[0] = defer(&S.p[0]);
    P *p = resolved(pact_nothing());
    p = then(p, adopt_pending_a1, NULL, NULL);
    drop(then(p, ok_log_v, NULL, "a2"));
    drop(then(ref(S.p[0]), ok_log_v, NULL, "d then"));
    p = resolved(pact_nothing());
    p = then(p, ok_log, NULL, "b1");
    p = then(p, adopt_pending_b2, NULL, NULL);
    p = then(p, ok_log, NULL, "b3");
    p = then(p, ok_log, NULL, "b4");
    drop(then(p, ok_log, NULL, "b5"));
}
PORDER_CASE(adopt_pending)

static pact_value adopt_rejected_a1(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("a1 returns a rejected promise");
    return pact_promise_v(rejected("inner"));
}

static pact_value adopt_rejected_b1(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("b1 throws");
    return pact_throw(new_error("thrown"));
}

static const struct two adopt_rejected_a2 = {"a2: must not run", "a2 rejected"};

static void adopt_rejected_main(void)
{
    P *p = resolved(pact_nothing());
    p = then(p, adopt_rejected_a1, NULL, NULL);
    drop(then(p, two_ok_log_v, two_fail_log_e, (void *)&adopt_rejected_a2));
    p = resolved(pact_nothing());
    p = then(p, adopt_rejected_b1, NULL, NULL);
    drop(catch_(p, fail_log_e, "b2 caught"));
    turns(5);
}
PORDER_CASE(adopt_rejected)

static void adopt_in_executor_main(void)
{
    P *q = resolved(str("q"));
    drop(then(new_resolved(pact_promise_v(ref(q))), ok_log_v, NULL, "adopted"));
    drop(then(new_resolved(str("plain")), ok_log_v, NULL, "plain"));
    P *r = rejected("r");
    drop(catch_(new_resolved(pact_promise_v(ref(r))), fail_log_e,
                "adopted rejection"));
    turns(4);
    drop(q);
    drop(r);
}
PORDER_CASE(adopt_in_executor)

static void resolve_identity_main(void)
{
    P *p = resolved(str("v"));
    P *r = resolved(pact_promise_v(ref(p)));
    trace("Promise.resolve(p) is p: %s", r == p ? "true" : "false");
    P *n = new_resolved(pact_promise_v(ref(p)));
    trace("new Promise(r => r(p)) is p: %s", n == p ? "true" : "false");
    drop(then(n, ok_log_v, NULL, "n"));
    drop(then(ref(r), ok_log_v, NULL, "r"));
    drop(then(ref(p), ok_log_v, NULL, "p"));
    drop(then(r, ok_log_v, NULL, "r again"));
    drop(p);
}
PORDER_CASE(resolve_identity)

static pact_value adopt_nested_inner(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("inner handler");
    return pact_promise_v(resolved(str("deep")));
}

static pact_value adopt_nested_outer(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("outer handler");
    return pact_promise_v(
        then(resolved(pact_nothing()), adopt_nested_inner, NULL, NULL));
}

static void adopt_nested_main(void)
{
    P *p = resolved(pact_nothing());
    p = then(p, adopt_nested_outer, NULL, NULL);
    drop(then(p, ok_log_v, NULL, "outer next"));
    turns(8);
}
PORDER_CASE(adopt_nested)

/* S.p[0]: q; S.d[0]: resolveQ */
static void adopt_late_timer(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timeout resolves q");
    resolve(&S.d[0], str("late"));
    turns(3);
}

static void adopt_late_main(void)
{
    S.d[0] = defer(&S.p[0]);
    P *p = NULL;
    pact_deferred *d = defer(&p);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_promise_v(ref(S.p[0]))), 0);
    ck_assert_int_eq(pact_deferred_reject(d, new_error("ignored")),
                     PACT_EALREADY);
    pact_deferred_unref(d);
    drop(then(p, ok_log_v, NULL, "p"));
    drop(then(ref(S.p[0]), ok_log_v, NULL, "q"));
    set_timeout(1, adopt_late_timer, NULL);
}
PORDER_CASE(adopt_late)

/* ---- then, catch, finally ------------------------------------------------ */

static void reject_passthrough_main(void)
{
    P *p = rejected("r");
    p = then(p, ok_log, NULL, "then 1: must not run");
    p = then(p, ok_log, NULL, "then 2: must not run");
    drop(catch_(p, fail_log_e, "caught"));
    p = resolved(str("v"));
    p = catch_(p, fail_log, "catch 1: must not run");
    p = catch_(p, fail_log, "catch 2: must not run");
    drop(then(p, ok_log_v, NULL, "fulfilled"));
    turns(4);
}
PORDER_CASE(reject_passthrough)

static pact_value then_both_handlers_fail(pact_error *e, void *ud)
{
    (void)ud;
    trace("fail %s recovers", msg(e));
    return str("recovered");
}

static pact_value then_both_handlers_catch(pact_error *e, void *ud)
{
    (void)ud;
    trace("catch %s throws e2", msg(e));
    return pact_throw(new_error("e2"));
}

static void then_both_handlers_main(void)
{
    P *p = rejected("e1");
    P *q = then(ref(p), ok_log, then_both_handlers_fail, "ok: must not run");
    drop(then(q, ok_log_v, NULL, "then"));
    q = catch_(ref(p), then_both_handlers_catch, NULL);
    drop(catch_(q, fail_log_e, "catch"));
    drop(then(p, NULL, fail_log_e, "fail again"));
    turns(3);
}
PORDER_CASE(then_both_handlers)

static void finally_fulfilled_main(void)
{
    P *p = resolved(str("v"));
    p = finally_(p, fin_log, "finally");
    drop(then(p, ok_log_v, NULL, "then"));
    p = resolved(str("w"));
    p = then(p, ok_identity, NULL, NULL);
    drop(then(p, ok_log_v, NULL, "plain"));
    turns(5);
}
PORDER_CASE(finally_fulfilled)

static void finally_rejected_main(void)
{
    P *p = rejected("r");
    p = finally_(p, fin_log, "finally");
    drop(catch_(p, fail_log_e, "caught"));
    p = rejected("s");
    p = finally_(p, fin_log, "finally 1");
    p = finally_(p, fin_log, "finally 2");
    drop(catch_(p, fail_log_e, "caught"));
    turns(8);
}
PORDER_CASE(finally_rejected)

/* S.p[0]: gate; S.d[0]: release */
static pact_value finally_returns_promise_a(void *ud)
{
    (void)ud;
    trace("finally a returns pending gate");
    return pact_promise_v(ref(S.p[0]));
}

static pact_value finally_returns_promise_b(void *ud)
{
    (void)ud;
    trace("finally b returns a fulfilled promise");
    return pact_promise_v(resolved(str("ignored")));
}

static pact_value finally_returns_promise_open(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("turn 2 opens the gate");
    resolve(&S.d[0], str("gate value"));
    return pact_nothing();
}

static void finally_returns_promise_main(void)
{
    S.d[0] = defer(&S.p[0]);
    P *p = resolved(str("a"));
    p = finally_(p, finally_returns_promise_a, NULL);
    drop(then(p, ok_log_v, NULL, "then a"));
    p = resolved(str("b"));
    p = finally_(p, finally_returns_promise_b, NULL);
    drop(then(p, ok_log_v, NULL, "then b"));
    p = resolved(str("c"));
    p = finally_(p, fin_log, "finally c returns nothing");
    drop(then(p, ok_log_v, NULL, "then c"));
    p = resolved(pact_nothing());
    p = then(p, ok_log, NULL, "turn 1");
    p = then(p, finally_returns_promise_open, NULL, NULL);
    p = then(p, ok_log, NULL, "turn 3");
    p = then(p, ok_log, NULL, "turn 4");
    p = then(p, ok_log, NULL, "turn 5");
    p = then(p, ok_log, NULL, "turn 6");
    drop(then(p, ok_log, NULL, "turn 7"));
}
PORDER_CASE(finally_returns_promise)

static pact_value finally_throws_1(void *ud)
{
    (void)ud;
    trace("finally 1 throws f1");
    return pact_throw(new_error("f1"));
}

static pact_value finally_throws_2(void *ud)
{
    (void)ud;
    trace("finally 2 returns a rejected promise");
    return pact_promise_v(rejected("f2"));
}

static const struct two finally_throws_then = {"then 1: must not run",
                                               "rejected"};

static void finally_throws_main(void)
{
    P *p = resolved(str("v"));
    p = finally_(p, finally_throws_1, NULL);
    drop(then(p, two_ok_log_v, two_fail_log_e, (void *)&finally_throws_then));
    p = rejected("orig");
    p = finally_(p, finally_throws_2, NULL);
    drop(catch_(p, fail_log_e, "caught"));
    turns(5);
}
PORDER_CASE(finally_throws)

/* ---- ticks, microtasks and macrotasks ------------------------------------ */

static pact_value tick_micro_then_1(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("then 1");
    next_tick(trace_fn, "tick from then");
    queue_microtask(trace_fn, "micro from then");
    return pact_nothing();
}

static void tick_micro_then_tick2(void *ud)
{
    (void)ud;
    trace("tick 2");
    drop(then(resolved(pact_nothing()), ok_log, NULL, "then from tick"));
}

static void tick_micro_then_main(void)
{
    trace("sync");
    next_tick(trace_fn, "tick 1");
    P *p = resolved(pact_nothing());
    p = then(p, tick_micro_then_1, NULL, NULL);
    drop(then(p, ok_log, NULL, "then 2"));
    queue_microtask(trace_fn, "micro 1");
    next_tick(tick_micro_then_tick2, NULL);
}
PORDER_CASE(tick_micro_then)

static void tick_after_chain_a(void *ud)
{
    (void)ud;
    trace("tick A");
    drop(then(resolved(pact_nothing()), ok_log, NULL, "then from tick A"));
}

static pact_value tick_after_chain_1(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("then 1 queues a tick");
    next_tick(tick_after_chain_a, NULL);
    next_tick(trace_fn, "tick B");
    return pact_nothing();
}

static void tick_after_chain_main(void)
{
    P *p = resolved(pact_nothing());
    p = then(p, tick_after_chain_1, NULL, NULL);
    p = then(p, ok_log, NULL, "then 2");
    drop(then(p, ok_log, NULL, "then 3"));
}
PORDER_CASE(tick_after_chain)

static void timers_drain_promises_immediate(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate");
    drop(then(resolved(pact_nothing()), ok_log, NULL, "immediate then"));
}

static void timers_drain_promises_1(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timeout 1");
    P *p = resolved(pact_nothing());
    p = then(p, ok_log, NULL, "timeout 1 then 1");
    drop(then(p, ok_log, NULL, "timeout 1 then 2"));
    next_tick(trace_fn, "timeout 1 tick");
    set_immediate(timers_drain_promises_immediate, NULL);
}

static void timers_drain_promises_2(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timeout 2");
    drop(then(resolved(pact_nothing()), ok_log, NULL, "timeout 2 then"));
}

static void timers_drain_promises_main(void)
{
    set_timeout(0, timers_drain_promises_1, NULL);
    set_timeout(0, timers_drain_promises_2, NULL);
    t_spin_ms(10);
}
PORDER_CASE(timers_drain_promises)

/* S.d[0]: resolveP */
static pact_value resolve_from_timer_then(const pact_value *v, void *ud)
{
    (void)ud;
    trace("then %s", sv(v));
    set_immediate(trace_cb, "immediate from then");
    set_timeout(0, trace_cb, "timeout from then");
    return pact_nothing();
}

static void resolve_from_timer_1(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer 1 resolves p");
    resolve(&S.d[0], str("x"));
}

static void resolve_from_timer_main(void)
{
    P *p = NULL;
    S.d[0] = defer(&p);
    p = then(p, resolve_from_timer_then, NULL, NULL);
    drop(then(p, ok_log, NULL, "then 2"));
    set_timeout(5, resolve_from_timer_1, NULL);
    set_timeout(5, trace_cb, "timer 2");
    t_spin_ms(15);
}
PORDER_CASE(resolve_from_timer)

/* S.d[0]: resolveA */
static void resolve_from_immediate_1(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate 1 resolves a");
    resolve(&S.d[0], pact_nothing());
}

static void resolve_from_immediate_main(void)
{
    P *a = NULL;
    S.d[0] = defer(&a);
    a = then(a, ok_log, NULL, "a then 1");
    a = then(a, ok_log, NULL, "a then 2");
    drop(then(a, ok_log, NULL, "a then 3"));
    set_immediate(resolve_from_immediate_1, NULL);
    set_immediate(trace_cb, "immediate 2");
}
PORDER_CASE(resolve_from_immediate)

/* ---- thenables ----------------------------------------------------------- */

static int thenable_sync_then(void *obj, pact_deferred *resolver)
{
    (void)obj;
    trace("thenable.then called");
    ck_assert_int_eq(pact_deferred_resolve(resolver, str("t")), 0);
    return 0;
}

static const pact_thenable_vt thenable_sync_vt = {thenable_sync_then, NULL};

static void thenable_sync_main(void)
{
    static int thenable;
    P *p = resolved(pact_thenable(&thenable, &thenable_sync_vt));
    drop(then(p, ok_log_v, NULL, "from thenable"));
    p = new_resolved(pact_promise_v(resolved(str("n"))));
    drop(then(p, ok_log_v, NULL, "from native"));
    turns(4);
    trace("sync");
}
PORDER_CASE(thenable_sync)

static void thenable_async_timer(pact_error *err, void *ud)
{
    expect_ok(err);
    trace("timer resolves later");
    pact_deferred *d = ud;
    resolve(&d, str("L"));
}

static int thenable_async_later(void *obj, pact_deferred *resolver)
{
    (void)obj;
    trace("later.then called");
    set_timeout(1, thenable_async_timer, pact_deferred_ref(resolver));
    return 0;
}

static int thenable_async_bad(void *obj, pact_deferred *resolver)
{
    (void)obj;
    trace("bad.then called");
    ck_assert_int_eq(pact_deferred_reject(resolver, new_error("bad")), 0);
    return 0;
}

static const pact_thenable_vt thenable_async_later_vt = {thenable_async_later,
                                                         NULL};
static const pact_thenable_vt thenable_async_bad_vt = {thenable_async_bad,
                                                       NULL};

static void thenable_async_main(void)
{
    static int later, bad;
    P *p = resolved(pact_thenable(&later, &thenable_async_later_vt));
    drop(then(p, ok_log_v, NULL, "later"));
    p = resolved(pact_thenable(&bad, &thenable_async_bad_vt));
    drop(catch_(p, fail_log_e, "bad"));
    trace("sync");
}
PORDER_CASE(thenable_async)

static int thenable_twice(void *obj, pact_deferred *resolver)
{
    (void)obj;
    trace("twice.then");
    ck_assert_int_eq(pact_deferred_resolve(resolver, str("first")), 0);
    ck_assert_int_eq(pact_deferred_resolve(resolver, str("second")),
                     PACT_EALREADY);
    ck_assert_int_eq(pact_deferred_reject(resolver, new_error("third")),
                     PACT_EALREADY);
    return 0;
}

/* A throw is a negative return. */
static int thenable_throws_after(void *obj, pact_deferred *resolver)
{
    (void)obj;
    trace("throwsAfter.then");
    ck_assert_int_eq(pact_deferred_resolve(resolver, str("ok")), 0);
    return PACT_EIO;
}

static int thenable_throws_before(void *obj, pact_deferred *resolver)
{
    (void)obj;
    (void)resolver;
    trace("throwsBefore.then");
    return PACT_EIO;
}

static pact_value thenable_throws_before_caught(pact_error *e, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_error_code(e), PACT_EIO);
    trace("throwsBefore rejected");
    return pact_nothing();
}

static const pact_thenable_vt thenable_twice_vt = {thenable_twice, NULL};
static const pact_thenable_vt thenable_throws_after_vt = {thenable_throws_after,
                                                          NULL};
static const pact_thenable_vt thenable_throws_before_vt = {
    thenable_throws_before, NULL};

static void thenable_settles_twice_main(void)
{
    static int twice, throws_after, throws_before;
    P *p = resolved(pact_thenable(&twice, &thenable_twice_vt));
    drop(then(p, ok_log_v, NULL, "twice"));
    p = resolved(pact_thenable(&throws_after, &thenable_throws_after_vt));
    drop(then(p, ok_log_v, NULL, "throwsAfter"));
    p = resolved(pact_thenable(&throws_before, &thenable_throws_before_vt));
    drop(catch_(p, thenable_throws_before_caught, NULL));
}
PORDER_CASE(thenable_settles_twice)

static int thenable_from_handler_then(void *obj, pact_deferred *resolver)
{
    (void)obj;
    ck_assert_int_eq(pact_deferred_resolve(resolver, str("thenable")), 0);
    return 0;
}

static const pact_thenable_vt thenable_from_handler_vt = {
    thenable_from_handler_then, NULL};

static pact_value thenable_from_handler_native(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    return pact_promise_v(resolved(str("native")));
}

static pact_value thenable_from_handler_thenable(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    static int thenable;
    return pact_thenable(&thenable, &thenable_from_handler_vt);
}

static void thenable_from_handler_main(void)
{
    P *p = resolved(pact_nothing());
    p = then(p, thenable_from_handler_native, NULL, NULL);
    drop(then(p, ok_log_value, NULL, NULL));
    p = resolved(pact_nothing());
    p = then(p, thenable_from_handler_thenable, NULL, NULL);
    drop(then(p, ok_log_value, NULL, NULL));
    p = resolved(pact_nothing());
    p = then(p, ok_return, NULL, "value");
    drop(then(p, ok_log_value, NULL, NULL));
    turns(4);
}
PORDER_CASE(thenable_from_handler)

/* ---- combinators --------------------------------------------------------- */

/* (vs) => log(ud + ' ' + vs.join(',')) */
static pact_value ok_log_list(const pact_value *v, void *ud)
{
    ck_assert_int_eq(v->kind, PACT_LIST);
    char line[256] = "";
    size_t n = pact_list_len(v->u.list);
    for (size_t i = 0; i < n; i++) {
        P *p = pact_list_at(v->u.list, i);
        ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
        snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s",
                 i ? "," : "", sv(pact_promise_value(p)));
    }
    trace("%s %s", (const char *)ud, line);
    return pact_nothing();
}

/* (e) => log(e.name + ' ' + e.errors.map((r) => r.message).join(',')) */
static pact_value fail_log_aggregate(pact_error *e, void *ud)
{
    (void)ud;
    ck_assert_int_eq(pact_error_code(e), PACT_EAGGREGATE);
    char line[256] = "";
    size_t n = pact_error_count(e);
    for (size_t i = 0; i < n; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s",
                 i ? "," : "", msg(pact_error_at(e, i)));
    trace("AggregateError %s", line);
    return pact_nothing();
}

/* (e) => log(ud + ' ' + e.name + ' ' + e.errors.length) */
static pact_value fail_log_aggregate_len(pact_error *e, void *ud)
{
    ck_assert_int_eq(pact_error_code(e), PACT_EAGGREGATE);
    trace("%s AggregateError %zu", (const char *)ud, pact_error_count(e));
    return pact_nothing();
}

static P *all(P *const *ps, size_t n)
{
    return nonnull(pact_all(t_loop, ps, n));
}

/* S.d[0]: resolveC */
static pact_value all_fulfilled_turn2(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("turn 2 resolves c");
    resolve(&S.d[0], str("c"));
    return pact_nothing();
}

static void all_fulfilled_main(void)
{
    P *a = resolved(str("a"));
    P *c = NULL;
    S.d[0] = defer(&c);
    P *b = then(ref(a), ok_return, NULL, "b");
    P *cab[] = {c, a, b};
    drop(then(all(cab, 3), ok_log_list, NULL, "all"));
    P *ab[] = {a, b};
    drop(then(all(ab, 2), ok_log_list, NULL, "all of a, b"));
    P *p = resolved(pact_nothing());
    p = then(p, ok_log, NULL, "turn 1");
    p = then(p, all_fulfilled_turn2, NULL, NULL);
    p = then(p, ok_log, NULL, "turn 3");
    p = then(p, ok_log, NULL, "turn 4");
    drop(then(p, ok_log, NULL, "turn 5"));
    drop(a);
    drop(b);
    drop(c);
}
PORDER_CASE(all_fulfilled)

/* S.d[0]: rejectA; S.d[1]: rejectB */
static pact_value all_rejects_first_1(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("turn 1 rejects b");
    reject(&S.d[1], "b");
    return pact_nothing();
}

static pact_value all_rejects_first_2(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("turn 2 rejects a");
    reject(&S.d[0], "a");
    return pact_nothing();
}

static void all_rejects_first_main(void)
{
    P *a = NULL, *b = NULL;
    S.d[0] = defer(&a);
    S.d[1] = defer(&b);
    P *ab[] = {a, b};
    drop(catch_(all(ab, 2), fail_log_e, "all rejected"));
    P *p = resolved(pact_nothing());
    p = then(p, all_rejects_first_1, NULL, NULL);
    p = then(p, all_rejects_first_2, NULL, NULL);
    p = then(p, ok_log, NULL, "turn 3");
    drop(then(p, ok_log, NULL, "turn 4"));
    drop(a);
    drop(b);
}
PORDER_CASE(all_rejects_first)

/* The texts pact's own rejections carry are Node's (V8's). */
static void node_texts_main(void)
{
    P *p = NULL;
    pact_deferred *d = defer(&p);
    drop(catch_(ref(p), fail_log_e, "self"));
    resolve(&d, pact_promise_v(p)); /* steals the reference */
    P *a[] = {rejected("a")};
    drop(catch_(nonnull(pact_any(t_loop, a, 1)), fail_log_e, "any"));
    drop(a[0]);
    drop(catch_(nonnull(pact_any(t_loop, NULL, 0)), fail_log_e, "any of none"));
}
PORDER_CASE(node_texts)

/* S.d[0]: rejectB */
static pact_value all_settled_log(const pact_value *v, void *ud)
{
    (void)ud;
    ck_assert_int_eq(v->kind, PACT_LIST);
    for (size_t i = 0; i < pact_list_len(v->u.list); i++) {
        P *r = pact_list_at(v->u.list, i);
        if (pact_promise_state(r) == PACT_FULFILLED)
            trace("fulfilled %s", sv(pact_promise_value(r)));
        else if (pact_promise_state(r) == PACT_REJECTED)
            trace("rejected %s", msg(pact_promise_error(r)));
        else
            trace("pending: must not be listed");
    }
    return pact_nothing();
}

static pact_value all_settled_turn1(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("turn 1 rejects b");
    reject(&S.d[0], "b");
    return pact_nothing();
}

static void all_settled_main(void)
{
    P *a = resolved(str("a"));
    P *b = NULL;
    S.d[0] = defer(&b);
    P *c = rejected("c");
    P *abc[] = {a, b, c};
    drop(then(nonnull(pact_all_settled(t_loop, abc, 3)), all_settled_log, NULL,
              NULL));
    P *p = resolved(pact_nothing());
    p = then(p, all_settled_turn1, NULL, NULL);
    p = then(p, ok_log, NULL, "turn 2");
    p = then(p, ok_log, NULL, "turn 3");
    drop(then(p, ok_log, NULL, "turn 4"));
    drop(a);
    drop(b);
    drop(c);
}
PORDER_CASE(all_settled)

/* S.d[0]: resolveA; S.d[1]: rejectD */
static void race_timer(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timeout rejects d, then resolves a");
    reject(&S.d[1], "d");
    resolve(&S.d[0], str("a"));
}

static const struct two race_1 = {"race 1 fulfilled", "race 1 rejected"};
static const struct two race_2 = {"race 2 fulfilled", "race 2 rejected"};

static void race_main(void)
{
    P *a = NULL, *d = NULL;
    S.d[0] = defer(&a);
    P *b = rejected("b");
    P *c = resolved(str("c"));
    P *abc[] = {a, b, c};
    drop(then(nonnull(pact_race(t_loop, abc, 3)), two_ok_log_v, two_fail_log_e,
              (void *)&race_1));
    P *acb[] = {a, c, b};
    drop(then(nonnull(pact_race(t_loop, acb, 3)), two_ok_log_v, two_fail_log_e,
              (void *)&race_2));
    S.d[1] = defer(&d);
    P *da[] = {d, a};
    drop(catch_(nonnull(pact_race(t_loop, da, 2)), fail_log_e,
                "race 3 rejected"));
    set_timeout(1, race_timer, NULL);
    drop(a);
    drop(b);
    drop(c);
    drop(d);
}
PORDER_CASE(race)

/* S.d[0]: rejectX */
static pact_value any_turn2(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("turn 2 rejects x");
    reject(&S.d[0], "x");
    return pact_nothing();
}

static void any_main(void)
{
    P *x = NULL;
    S.d[0] = defer(&x);
    P *y = rejected("y");
    P *z = resolved(str("z"));
    P *yz[] = {y, z};
    drop(then(nonnull(pact_any(t_loop, yz, 2)), ok_log_v, NULL, "any 1"));
    P *xy[] = {x, y};
    drop(catch_(nonnull(pact_any(t_loop, xy, 2)), fail_log_aggregate, NULL));
    P *p = resolved(pact_nothing());
    p = then(p, ok_log, NULL, "turn 1");
    p = then(p, any_turn2, NULL, NULL);
    p = then(p, ok_log, NULL, "turn 3");
    drop(then(p, ok_log, NULL, "turn 4"));
    drop(x);
    drop(y);
    drop(z);
}
PORDER_CASE(any)

/* (vs) => log(ud + ' ' + vs.length) */
static pact_value ok_log_len(const pact_value *v, void *ud)
{
    ck_assert_int_eq(v->kind, PACT_LIST);
    trace("%s %zu", (const char *)ud, pact_list_len(v->u.list));
    return pact_nothing();
}

static void combinators_empty_main(void)
{
    drop(then(all(NULL, 0), ok_log_len, NULL, "all []"));
    drop(then(nonnull(pact_all_settled(t_loop, NULL, 0)), ok_log_len, NULL,
              "allSettled []"));
    drop(catch_(nonnull(pact_any(t_loop, NULL, 0)), fail_log_aggregate_len,
                "any []"));
    drop(then(nonnull(pact_race(t_loop, NULL, 0)), ok_log, NULL,
              "race []: must not run"));
    P *p = resolved(pact_nothing());
    p = then(p, ok_log, NULL, "turn 1");
    drop(then(p, ok_log, NULL, "turn 2"));
}
PORDER_CASE(combinators_empty)

/* ---- unhandled rejections ------------------------------------------------ */

static bool unhandled_event_hook(pact_loop *loop, pact_rejection_event ev, P *p,
                                 void *ud)
{
    (void)loop;
    (void)ud;
    ck_assert_int_eq(ev, PACT_REJECTION_UNHANDLED);
    trace("unhandledRejection %s", msg(pact_promise_error(p)));
    next_tick(trace_fn, "tick from listener");
    drop(then(resolved(pact_nothing()), ok_log, NULL, "then from listener"));
    return true;
}

static void unhandled_event_main(void)
{
    on_rejection(unhandled_event_hook, NULL);
    drop(rejected("r1"));
    next_tick(trace_fn, "tick");
    drop(then(resolved(pact_nothing()), ok_log, NULL, "then"));
    set_timeout(0, trace_cb, "timeout");
    trace("sync");
}
PORDER_CASE(unhandled_event)

/* S.p[0]: b; S.p[1]: c */
static pact_value unhandled_which_1(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("then catches b");
    drop(catch_(ref(S.p[0]), fail_log_e, "caught"));
    return pact_nothing();
}

static void unhandled_which_tick(void *ud)
{
    (void)ud;
    trace("tick catches c");
    drop(catch_(ref(S.p[1]), fail_log_e, "caught"));
}

static pact_value unhandled_which_2(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("then queues a tick");
    next_tick(unhandled_which_tick, NULL);
    return pact_nothing();
}

static void unhandled_which_main(void)
{
    on_rejection(log_hook, NAMED);
    P *a = rejected("a");
    S.p[0] = rejected("b");
    S.p[1] = rejected("c");
    drop(rejected("d"));
    drop(then(a, ok_log, NULL, "a then: must not run"));
    P *p = resolved(pact_nothing());
    p = then(p, unhandled_which_1, NULL, NULL);
    drop(then(p, unhandled_which_2, NULL, NULL));
}
PORDER_CASE(unhandled_which)

/* S.p[0]: p */
static void rejection_handled_later_1(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timeout 1 attaches a catch");
    drop(catch_(ref(S.p[0]), fail_log_e, "caught"));
    next_tick(trace_fn, "tick after attach");
}

static void rejection_handled_later_main(void)
{
    on_rejection(log_hook, NAMED);
    S.p[0] = rejected("late");
    set_timeout(1, rejection_handled_later_1, NULL);
    set_timeout(1, trace_cb, "timeout 2");
}
PORDER_CASE(rejection_handled_later)

static void unhandled_in_macrotasks_1(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer 1 rejects");
    drop(rejected("t1"));
    drop(then(resolved(pact_nothing()), ok_log, NULL, "timer 1 then"));
}

static pact_value unhandled_in_macrotasks_throw(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    return pact_throw(new_error("i1"));
}

static void unhandled_in_macrotasks_imm(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate 1 rejects in a handler");
    drop(then(resolved(pact_nothing()), unhandled_in_macrotasks_throw, NULL,
              NULL));
}

static void unhandled_in_macrotasks_3(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer 3");
    set_immediate(unhandled_in_macrotasks_imm, NULL);
    set_immediate(trace_cb, "immediate 2");
}

static void unhandled_in_macrotasks_main(void)
{
    on_rejection(log_hook, NAMED);
    set_timeout(5, unhandled_in_macrotasks_1, NULL);
    set_timeout(5, trace_cb, "timer 2");
    set_timeout(5, unhandled_in_macrotasks_3, NULL);
    t_spin_ms(15);
}
PORDER_CASE(unhandled_in_macrotasks)

/* S.p[0]: a; S.p[1]: b */
static pact_value unhandled_none_reported_then(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    return pact_promise_v(catch_(ref(S.p[0]), fail_log_e, "caught"));
}

static void unhandled_none_reported_tick(void *ud)
{
    (void)ud;
    drop(catch_(ref(S.p[1]), fail_log_e, "caught"));
}

static void unhandled_none_reported_timer(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    S.p[1] = rejected("b");
    next_tick(unhandled_none_reported_tick, NULL);
    trace("timeout");
}

static void unhandled_none_reported_main(void)
{
    S.p[0] = rejected("a");
    drop(then(resolved(pact_nothing()), unhandled_none_reported_then, NULL,
              NULL));
    set_timeout(0, unhandled_none_reported_timer, NULL);
}
PORDER_CASE(unhandled_none_reported)

static void unhandled_exit_main(void)
{
    trace("sync");
    drop(rejected("boom"));
    next_tick(trace_fn, "tick");
    drop(then(resolved(pact_nothing()), ok_log, NULL, "then"));
    set_timeout(0, trace_cb, "timeout: must not run");
}
PORDER_CASE_STDERR(unhandled_exit, "EUNHANDLED", "boom")

static pact_value unhandled_exit_in_timer_throw(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("then throws");
    return pact_throw(new_error("thrown in then"));
}

static void unhandled_exit_in_timer_1(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer 1");
    drop(then(resolved(pact_nothing()), unhandled_exit_in_timer_throw, NULL,
              NULL));
    next_tick(trace_fn, "tick");
}

static void unhandled_exit_in_timer_main(void)
{
    set_timeout(5, unhandled_exit_in_timer_1, NULL);
    set_timeout(5, trace_cb, "timer 2: must not run");
}
PORDER_CASE_STDERR(unhandled_exit_in_timer, "EUNHANDLED", "thrown in then")

static void unhandled_warn_main(void)
{
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_WARN), 0);
    trace("sync");
    drop(rejected("w1"));
    next_tick(trace_fn, "tick");
    set_timeout(0, trace_cb, "timeout");
}
PORDER_CASE_STDERR(unhandled_warn, "w1", NULL)

/* S.p[0]: p */
static void unhandled_warn_listener_timer(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timeout attaches a catch");
    drop(catch_(ref(S.p[0]), fail_log_e, "caught"));
}

static void unhandled_warn_listener_main(void)
{
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_WARN), 0);
    on_rejection(log_hook, NULL);
    S.p[0] = rejected("w2");
    set_timeout(1, unhandled_warn_listener_timer, NULL);
}
PORDER_CASE_STDERR(unhandled_warn_listener, "w2", NULL)

static void unhandled_none_mode_timer(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timeout");
    drop(rejected("n2"));
}

static void unhandled_none_mode_main(void)
{
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_NONE), 0);
    on_rejection(log_hook, NAMED);
    drop(rejected("n1"));
    set_timeout(0, unhandled_none_mode_timer, NULL);
}
PORDER_CASE(unhandled_none_mode)

/* ---- the suite ----------------------------------------------------------- */

Suite *suite_porder(void)
{
    Suite *s = suite_create("porder");
    TCase *tc = tcase_create("node");
    tcase_add_checked_fixture(tc, t_setup, porder_teardown);
    /* adoption */
    tcase_add_test(tc, adopt_resolved);
    tcase_add_test(tc, adopt_pending);
    tcase_add_test(tc, adopt_rejected);
    tcase_add_test(tc, adopt_in_executor);
    tcase_add_test(tc, resolve_identity);
    tcase_add_test(tc, adopt_nested);
    tcase_add_test(tc, adopt_late);
    /* then, catch, finally */
    tcase_add_test(tc, reject_passthrough);
    tcase_add_test(tc, then_both_handlers);
    tcase_add_test(tc, finally_fulfilled);
    tcase_add_test(tc, finally_rejected);
    tcase_add_test(tc, finally_returns_promise);
    tcase_add_test(tc, finally_throws);
    /* ticks, microtasks and macrotasks */
    tcase_add_test(tc, tick_micro_then);
    tcase_add_test(tc, tick_after_chain);
    tcase_add_test(tc, timers_drain_promises);
    tcase_add_test(tc, resolve_from_timer);
    tcase_add_test(tc, resolve_from_immediate);
    /* thenables */
    tcase_add_test(tc, thenable_sync);
    tcase_add_test(tc, thenable_async);
    tcase_add_test(tc, thenable_settles_twice);
    tcase_add_test(tc, thenable_from_handler);
    /* combinators */
    tcase_add_test(tc, all_fulfilled);
    tcase_add_test(tc, all_rejects_first);
    tcase_add_test(tc, node_texts);
    tcase_add_test(tc, all_settled);
    tcase_add_test(tc, race);
    tcase_add_test(tc, any);
    tcase_add_test(tc, combinators_empty);
    /* unhandled rejections */
    tcase_add_test(tc, unhandled_event);
    tcase_add_test(tc, unhandled_which);
    tcase_add_test(tc, rejection_handled_later);
    tcase_add_test(tc, unhandled_in_macrotasks);
    tcase_add_test(tc, unhandled_none_reported);
    tcase_add_test(tc, unhandled_exit);
    tcase_add_test(tc, unhandled_exit_in_timer);
    tcase_add_test(tc, unhandled_warn);
    tcase_add_test(tc, unhandled_warn_listener);
    tcase_add_test(tc, unhandled_none_mode);
    suite_add_tcase(s, tc);
    return s;
}
