/* Node-oracle ordering of async functions and tasks. Each case replays, with
 * pact calls, the scenario of test/fixtures/async/<case>.js and compares
 * pact's trace line by line with what Node v20 printed for it (<case>.txt,
 * made by regen.sh there). Read a case beside its .js: same names, same
 * calls in the same order.
 *
 * Mapping: a JavaScript async function is a PACT_ASYNC function (a frame of
 * struct fn and its body); `await x` is PACT_ASYNC_TRY, and `try { await x }
 * catch` is PACT_ASYNC_AWAIT_ERR; `await null` and `await 'v'` (a value, not
 * a promise) await pact_resolved of it; `return p` (a promise) stores
 * pact_promise_v(p) in *result; `throw new Error(m)` returns the error. A
 * task is an async function that the .js starts with queueMicrotask(() =>
 * f()), since pact_task_spawn begins its task as a microtask; inside it
 * `await` is PACT_AWAIT (which throws on rejection, as await does) or
 * PACT_AWAIT_ERR for a try, and the timers/promises setTimeout and
 * setImmediate awaited are pact_sleep and pact_yield. A .then attached to a
 * task's promise right after the call inside that microtask is attached in C
 * just after the spawn: either way its reaction is queued when the body
 * settles the promise, or, if the body settled it before its first await,
 * at the end of that same microtask. Otherwise as test_porder.c: then ->
 * pact_then, setTimeout -> pact_timeout, setImmediate -> pact_immediate,
 * process.nextTick -> pact_next_tick, queueMicrotask -> pact_queue_microtask,
 * timers/promises setTimeout and setImmediate -> pact_delay and
 * pact_immediate_p, process.on('unhandledRejection' / 'rejectionHandled') ->
 * the pact_loop_on_rejection hook; JS strings are pact_ptr values (static
 * strings) and new Error('x') is PACT_ERROR(PACT_EIO, "x").
 *
 * Where a task deliberately differs from its JavaScript twin the case says
 * so and asserts the difference (task_await_any): pact_await_any waits on
 * the promises themselves, Promise.race on a derived one.
 *
 * Exit status and stderr as in test_porder.c: Node's exit status is in
 * <case>.exit (none: 0), status 1 is pact_loop_run returning
 * PACT_EUNHANDLED; a case Node runs silently must leave pact's stderr
 * empty. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsish.h"
#include "suites.h"

typedef pact_promise P;

/* What a case's callbacks share (S.p: promises, S.d: resolve functions a
 * later callback uses). */
static struct js_case S;

/* ---- more of the JavaScript vocabulary (the rest: jsish.h) --------------- */

/* Promise.resolve().then(() => log(a)).then(() => log(b))...: @p n lines,
 * "<prefix> 1" to "<prefix> n" (static strings). */
static void then_chain(const char *const *lines, int n)
{
    P *p = resolved(pact_nothing());
    for (int i = 0; i < n; i++)
        p = then(p, ok_log, NULL, (void *)lines[i]);
    drop(p);
}

static const char *const then_lines[] = {"then 1", "then 2", "then 3", "then 4",
                                         "then 5"};

/* ---- async functions and tasks ------------------------------------------- */

/* The frame of every async function here: its arguments and the locals that
 * cross its awaits. */
struct fn {
    PACT_ASYNC_FRAME;
    const char *name; /* an argument */
    P *arg;           /* an argument promise (stolen by its await) */
    int i;
    pact_value v;
    pact_error *err;
};

/* Call the async function @p body(@p name, @p arg). */
static P *call(pact_async_fn body, const char *name, P *arg)
{
    struct fn *f = pact_async_new(t_loop, sizeof *f, body);
    ck_assert_ptr_nonnull(f);
    f->name = name;
    f->arg = arg;
    return nonnull(pact_async_start(f));
}

#define FRAME(a) ((struct fn *)(a))

/* `await null` */
#define AWAIT_NULL(a) PACT_ASYNC_TRY((a), resolved(pact_nothing()), NULL)

/* queueMicrotask(() => f(arg)): the task's promise. */
static P *spawn(pact_task_fn fn, const char *arg)
{
    return nonnull(pact_task_spawn(t_loop, fn, (void *)arg, NULL));
}

/* ---- the driver ---------------------------------------------------------- */

/* Run one case (jsish.h); the trace is left for the caller to compare. */
static void run_only(const char *name, void (*main_turn)(void),
                     const char *err1, const char *err2)
{
    js_run(&S, "async", JS_RUN_TASKS, name, main_turn, err1, err2);
}

static void run_case(const char *name, void (*main_turn)(void),
                     const char *err1, const char *err2)
{
    run_only(name, main_turn, err1, err2);
    js_expect_fixture("async", name);
}

static void aorder_teardown(void)
{
    js_teardown(&S);
}

/* One Check test per case, named after it. */
#define AORDER_CASE(c)                                                         \
    START_TEST(c)                                                              \
    {                                                                          \
        run_case(#c, c##_main, NULL, NULL);                                    \
    }                                                                          \
    END_TEST
/* A case after which pact's stderr must hold @p e1 and @p e2. */
#define AORDER_CASE_STDERR(c, e1, e2)                                          \
    START_TEST(c)                                                              \
    {                                                                          \
        run_case(#c, c##_main, e1, e2);                                        \
    }                                                                          \
    END_TEST

/* ---- async functions: the synchronous part, awaits ---------------------- */

static pact_error *sync_until_await_f(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    trace("f before await");
    AWAIT_NULL(a);
    trace("f after await");
    *result = str("f");
    PACT_ASYNC_END(a);
}

static pact_error *sync_until_await_g(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    trace("g runs to the end");
    *result = str("g");
    PACT_ASYNC_END(a);
}

static void sync_until_await_main(void)
{
    trace("main start");
    queue_microtask(trace_fn, "micro queued before");
    P *p = call(sync_until_await_f, NULL, NULL);
    trace("main after f()");
    drop(then(p, ok_log_v, NULL, "f result"));
    drop(
        then(call(sync_until_await_g, NULL, NULL), ok_log_v, NULL, "g result"));
    queue_microtask(trace_fn, "micro queued after");
    trace("main end");
}
AORDER_CASE(sync_until_await)

/* S.p[0]: pending; S.d[0]: resolvePending */
static pact_error *await_kinds_pending(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("pending start");
    PACT_ASYNC_TRY(a, ref(S.p[0]), &f->v);
    trace("pending got %s", sv(&f->v));
    queue_microtask(trace_fn, "micro from pending");
    PACT_ASYNC_TRY(a, resolved(str("again")), &f->v);
    trace("pending got %s", sv(&f->v));
    PACT_ASYNC_END(a);
}

static pact_error *await_kinds_settled(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("settled start");
    PACT_ASYNC_TRY(a, resolved(str("s")), &f->v);
    trace("settled got %s", sv(&f->v));
    PACT_ASYNC_END(a);
}

static pact_error *await_kinds_value(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("value start");
    PACT_ASYNC_TRY(a, resolved(str("v")), &f->v);
    trace("value got %s", sv(&f->v));
    PACT_ASYNC_END(a);
}

static pact_value await_kinds_then2(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("then 2 resolves pending");
    resolve(&S.d[0], str("p"));
    return pact_nothing();
}

static void await_kinds_main(void)
{
    S.d[0] = defer(&S.p[0]);
    drop(call(await_kinds_pending, NULL, NULL));
    drop(call(await_kinds_settled, NULL, NULL));
    queue_microtask(trace_fn, "micro 1");
    drop(call(await_kinds_value, NULL, NULL));
    P *p = resolved(pact_nothing());
    p = then(p, ok_log, NULL, "then 1");
    p = then(p, await_kinds_then2, NULL, NULL);
    p = then(p, ok_log, NULL, "then 3");
    p = then(p, ok_log, NULL, "then 4");
    drop(then(p, ok_log, NULL, "then 5"));
    queue_microtask(trace_fn, "micro 2");
    trace("sync");
}
AORDER_CASE(await_kinds)

/* ---- returning a promise --------------------------------------------------
 */

static pact_error *return_promise_value(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    *result = str("value");
    PACT_ASYNC_END(a);
}

static pact_error *return_promise_settled(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    *result = pact_promise_v(resolved(str("settled")));
    PACT_ASYNC_END(a);
}

/* S.p[0]: q; S.d[0]: resolveQ */
static pact_error *return_promise_pending(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    *result = pact_promise_v(ref(S.p[0]));
    PACT_ASYNC_END(a);
}

static pact_error *return_promise_caller(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("caller awaits retSettled");
    PACT_ASYNC_TRY(a, call(return_promise_settled, NULL, NULL), &f->v);
    trace("caller got %s", sv(&f->v));
    PACT_ASYNC_END(a);
}

static pact_value return_promise_resolve_q(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("resolves q");
    resolve(&S.d[0], str("pending"));
    return pact_nothing();
}

static void return_promise_main(void)
{
    S.d[0] = defer(&S.p[0]);
    drop(then(call(return_promise_value, NULL, NULL), ok_log_v, NULL, "then"));
    drop(
        then(call(return_promise_settled, NULL, NULL), ok_log_v, NULL, "then"));
    drop(
        then(call(return_promise_pending, NULL, NULL), ok_log_v, NULL, "then"));
    drop(call(return_promise_caller, NULL, NULL));
    drop(then(resolved(pact_nothing()), return_promise_resolve_q, NULL, NULL));
    turns(7);
}
AORDER_CASE(return_promise)

static pact_error *return_other_rejected(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    *result = pact_promise_v(rejected("rejected"));
    PACT_ASYNC_END(a);
}

static int return_other_then(void *obj, pact_deferred *resolver)
{
    (void)obj;
    trace("thenable then");
    ck_assert_int_eq(pact_deferred_resolve(resolver, str("thenable")), 0);
    return 0;
}

static const pact_thenable_vt return_other_vt = {return_other_then, NULL};

static pact_error *return_other_thenable(pact_async *a, pact_value *result)
{
    static int thenable;
    PACT_ASYNC_BEGIN(a);
    *result = pact_thenable(&thenable, &return_other_vt);
    PACT_ASYNC_END(a);
}

static pact_error *return_other_inner(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    AWAIT_NULL(a);
    trace("inner returns");
    *result = str("inner");
    PACT_ASYNC_END(a);
}

static pact_error *return_other_call(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    *result = pact_promise_v(call(return_other_inner, NULL, NULL));
    PACT_ASYNC_END(a);
}

static void return_other_main(void)
{
    drop(catch_(call(return_other_rejected, NULL, NULL), fail_log_e, "caught"));
    drop(then(call(return_other_thenable, NULL, NULL), ok_log_v, NULL, "then"));
    drop(then(call(return_other_call, NULL, NULL), ok_log_v, NULL, "then"));
    turns(6);
}
AORDER_CASE(return_other)

/* S.p[0]: p; S.d[0]: resolveP */
static pact_error *await_same_promise_w(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("%s awaits", f->name);
    PACT_ASYNC_TRY(a, ref(S.p[0]), &f->v);
    trace("%s got %s", f->name, sv(&f->v));
    PACT_ASYNC_END(a);
}

static pact_value await_same_promise_resolve(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("resolves p");
    resolve(&S.d[0], str("p"));
    drop(call(await_same_promise_w, "w3", NULL));
    drop(then(ref(S.p[0]), ok_log_v, NULL, "late then got"));
    return pact_nothing();
}

static void await_same_promise_main(void)
{
    S.d[0] = defer(&S.p[0]);
    drop(call(await_same_promise_w, "w1", NULL));
    drop(then(ref(S.p[0]), ok_log_v, NULL, "then got"));
    drop(call(await_same_promise_w, "w2", NULL));
    drop(
        then(resolved(pact_nothing()), await_same_promise_resolve, NULL, NULL));
    turns(3);
}
AORDER_CASE(await_same_promise)

/* ---- nested calls, rejections -------------------------------------------- */

static pact_error *nested_c(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    trace("c start");
    AWAIT_NULL(a);
    trace("c resumed");
    AWAIT_NULL(a);
    trace("c returns");
    *result = str("c");
    PACT_ASYNC_END(a);
}

static pact_error *nested_b(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    PACT_ASYNC_BEGIN(a);
    trace("b start");
    PACT_ASYNC_TRY(a, call(nested_c, NULL, NULL), &f->v);
    trace("b got %s", sv(&f->v));
    *result = str("b");
    PACT_ASYNC_END(a);
}

static pact_error *nested_a(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    PACT_ASYNC_BEGIN(a);
    trace("a start");
    PACT_ASYNC_TRY(a, call(nested_b, NULL, NULL), &f->v);
    trace("a got %s", sv(&f->v));
    *result = str("a");
    PACT_ASYNC_END(a);
}

static void nested_main(void)
{
    drop(then(call(nested_a, NULL, NULL), ok_log_v, NULL, "a result"));
    trace("a() returned");
    turns(7);
}
AORDER_CASE(nested)

static pact_error *reject_through_c(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("c start");
    AWAIT_NULL(a);
    trace("c throws");
    return new_error("boom");
    PACT_ASYNC_END(a);
}

static pact_error *reject_through_b(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("b start");
    PACT_ASYNC_TRY(a, call(reject_through_c, NULL, NULL), NULL);
    trace("b: must not run");
    PACT_ASYNC_END(a);
}

static pact_error *reject_through_a(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    PACT_ASYNC_BEGIN(a);
    trace("a start");
    PACT_ASYNC_AWAIT_ERR(a, call(reject_through_b, NULL, NULL), NULL, f->err);
    if (!f->err) {
        trace("a: must not run");
    } else {
        trace("a caught %s", msg(f->err));
        pact_error_unref(f->err);
    }
    *result = str("recovered");
    PACT_ASYNC_END(a);
}

static pact_error *reject_through_s(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("s throws at once");
    return new_error("sync");
    PACT_ASYNC_END(a);
}

static void reject_through_main(void)
{
    drop(then(call(reject_through_a, NULL, NULL), ok_log_v, NULL, "a result"));
    drop(catch_(call(reject_through_s, NULL, NULL), fail_log_e, "s caught"));
    turns(6);
}
AORDER_CASE(reject_through)

/* ---- unhandled rejections -------------------------------------------------
 */

/* fails(m): await null; log('fails ' + m); throw new Error(m) */
static pact_error *fails(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    AWAIT_NULL(a);
    trace("fails %s", f->name);
    return new_error(f->name);
    PACT_ASYNC_END(a);
}

static pact_error *unhandled_fails_at_once(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("failsAtOnce throws");
    return new_error("at once");
    PACT_ASYNC_END(a);
}

static pact_error *unhandled_catcher(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, call(fails, "awaited", NULL), NULL, f->err);
    if (f->err) {
        trace("catcher caught %s", msg(f->err));
        pact_error_unref(f->err);
    }
    PACT_ASYNC_END(a);
}

/* S.p[0]: late */
static pact_value unhandled_then3(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    return pact_promise_v(catch_(ref(S.p[0]), fail_log_e, "caught"));
}

static void unhandled_main(void)
{
    on_rejection(log_hook, NULL);
    drop(call(fails, "nobody", NULL));
    drop(call(unhandled_fails_at_once, NULL, NULL));
    S.p[0] = call(fails, "late", NULL);
    P *p = resolved(pact_nothing());
    p = then(p, ok_log, NULL, "then 1");
    p = then(p, ok_log, NULL, "then 2");
    drop(then(p, unhandled_then3, NULL, NULL));
    drop(call(unhandled_catcher, NULL, NULL));
    set_timeout(0, trace_cb, "timeout");
    trace("sync");
}
AORDER_CASE(unhandled)

static pact_error *unhandled_exit_f(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("f start");
    AWAIT_NULL(a);
    trace("f throws");
    return new_error("unawaited");
    PACT_ASYNC_END(a);
}

static void unhandled_exit_main(void)
{
    drop(call(unhandled_exit_f, NULL, NULL));
    next_tick(trace_fn, "tick");
    then_chain(then_lines, 3);
    set_timeout(0, trace_cb, "timeout: must not run");
    trace("sync");
}
AORDER_CASE_STDERR(unhandled_exit, "EUNHANDLED", "unawaited")

/* S.p[0]: r */
static pact_error *await_handles_late_f(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("f waits");
    PACT_ASYNC_TRY(a, pact_delay(t_loop, 1, NULL), NULL);
    trace("f awaits r");
    PACT_ASYNC_AWAIT_ERR(a, ref(S.p[0]), NULL, f->err);
    if (f->err) {
        trace("f caught %s", msg(f->err));
        pact_error_unref(f->err);
    }
    PACT_ASYNC_END(a);
}

static void await_handles_late_main(void)
{
    on_rejection(log_hook, NULL);
    S.p[0] = rejected("early");
    drop(call(await_handles_late_f, NULL, NULL));
}
AORDER_CASE(await_handles_late)

/* ---- awaits in loops and branches, timers, thenables --------------------- */

static pact_error *await_in_loop_one(pact_async *a, pact_value *result)
{
    PACT_ASYNC_BEGIN(a);
    AWAIT_NULL(a);
    *result = str("one");
    PACT_ASYNC_END(a);
}

static pact_error *await_in_loop_loop(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    for (f->i = 0; f->i < 4; f->i++) {
        trace("loop %d", f->i);
        if (f->i % 2 == 0) {
            AWAIT_NULL(a);
        } else {
            PACT_ASYNC_TRY(a, call(await_in_loop_one, NULL, NULL), &f->v);
            trace("loop %d got %s", f->i, sv(&f->v));
        }
    }
    trace("loop done");
    PACT_ASYNC_END(a);
}

static void await_in_loop_main(void)
{
    drop(call(await_in_loop_loop, NULL, NULL));
    turns(10);
}
AORDER_CASE(await_in_loop)

static pact_error *timers_t(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("t start");
    PACT_ASYNC_TRY(a, pact_delay(t_loop, 1, NULL), NULL);
    trace("t after timeout");
    next_tick(trace_fn, "tick from t");
    queue_microtask(trace_fn, "micro from t");
    PACT_ASYNC_TRY(a, pact_immediate_p(t_loop, NULL), NULL);
    trace("t after immediate");
    PACT_ASYNC_TRY(a, pact_delay(t_loop, 1, NULL), NULL);
    trace("t after second timeout");
    PACT_ASYNC_END(a);
}

static void timers_main(void)
{
    drop(call(timers_t, NULL, NULL));
    set_timeout(1, trace_cb, "timeout 1");
    set_immediate(trace_cb, "immediate 1");
    t_spin_ms(10);
}
AORDER_CASE(timers)

static int thenable_then(void *obj, pact_deferred *resolver)
{
    (void)obj;
    trace("thenable then");
    ck_assert_int_eq(pact_deferred_resolve(resolver, str("t")), 0);
    return 0;
}

static const pact_thenable_vt thenable_vt = {thenable_then, NULL};

static pact_error *thenable_f(pact_async *a, pact_value *result)
{
    static int thenable;
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("f start");
    PACT_ASYNC_TRY(a, resolved(pact_thenable(&thenable, &thenable_vt)), &f->v);
    trace("f got %s", sv(&f->v));
    PACT_ASYNC_END(a);
}

static void thenable_main(void)
{
    drop(call(thenable_f, NULL, NULL));
    turns(4);
}
AORDER_CASE(thenable)

/* ---- tasks ----------------------------------------------------------------
 */

/* task(name): log; v = await Promise.resolve(name); log; return name */
static pact_error *task_start_task(void *arg, pact_value *result)
{
    const char *name = arg;
    trace("%s starts", name);
    pact_value v = PACT_AWAIT(resolved(str(name)));
    trace("%s got %s", name, sv(&v));
    *result = str(name);
    return NULL;
}

static pact_error *task_start_direct(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("direct starts");
    AWAIT_NULL(a);
    trace("direct resumed");
    PACT_ASYNC_END(a);
}

static void task_start_main(void)
{
    trace("main");
    drop(then(spawn(task_start_task, "t1"), ok_log_v, NULL, "t1 result"));
    then_chain(then_lines, 4);
    drop(spawn(task_start_task, "t2"));
    drop(call(task_start_direct, NULL, NULL));
    queue_microtask(trace_fn, "micro");
    next_tick(trace_fn, "tick");
    trace("sync");
}
AORDER_CASE(task_start)

static pact_error *task_timers_task(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    trace("task starts");
    ck_assert_ptr_null(pact_sleep(1));
    trace("task after sleep");
    next_tick(trace_fn, "tick from task");
    queue_microtask(trace_fn, "micro from task");
    ck_assert_ptr_null(pact_yield());
    trace("task after yield");
    ck_assert_ptr_null(pact_sleep(1));
    trace("task after second sleep");
    return NULL;
}

static void spin_10(void *ud)
{
    (void)ud;
    t_spin_ms(10);
}

static void task_timers_main(void)
{
    drop(spawn(task_timers_task, NULL));
    set_timeout(1, trace_cb, "timeout 1");
    set_immediate(trace_cb, "immediate 1");
    queue_microtask(spin_10, NULL);
}
AORDER_CASE(task_timers)

/* af(name): an async function awaited by a task */
static pact_error *task_interop_af(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    PACT_ASYNC_BEGIN(a);
    trace("%s start", f->name);
    AWAIT_NULL(a);
    trace("%s returns", f->name);
    *result = str(f->name);
    PACT_ASYNC_END(a);
}

static pact_error *task_interop_task1(void *arg, pact_value *result)
{
    (void)arg;
    trace("task1 starts");
    pact_value v = PACT_AWAIT(call(task_interop_af, "af1", NULL));
    trace("task1 got %s", sv(&v));
    *result = str("task1");
    return NULL;
}

static pact_error *task_interop_task2(void *arg, pact_value *result)
{
    (void)arg;
    trace("task2 starts");
    PACT_AWAIT(resolved(pact_nothing()));
    trace("task2 returns");
    *result = str("task2");
    return NULL;
}

/* waiter(p): an async function awaiting a task's promise */
static pact_error *task_interop_waiter(pact_async *a, pact_value *result)
{
    struct fn *f = FRAME(a);
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("waiter awaits task2");
    PACT_ASYNC_TRY(a, f->arg, &f->v);
    trace("waiter got %s", sv(&f->v));
    PACT_ASYNC_END(a);
}

/* S.p[0]: t2 */
static void task_interop_start_waiter(void *ud)
{
    (void)ud;
    drop(call(task_interop_waiter, NULL, ref(S.p[0])));
}

static void task_interop_main(void)
{
    drop(then(spawn(task_interop_task1, NULL), ok_log_v, NULL, "task1 result"));
    S.p[0] = spawn(task_interop_task2, NULL);
    queue_microtask(task_interop_start_waiter, NULL);
    turns(6);
}
AORDER_CASE(task_interop)

/* inner: an async function; outer: a task that catches its rejection */
static pact_error *task_throw_inner(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("inner starts");
    AWAIT_NULL(a);
    trace("inner throws");
    return new_error("inner");
    PACT_ASYNC_END(a);
}

static pact_error *task_throw_outer(void *arg, pact_value *result)
{
    (void)arg;
    trace("outer starts");
    pact_error *err = PACT_AWAIT_ERR(call(task_throw_inner, NULL, NULL), NULL);
    if (!err) {
        trace("outer: must not run");
    } else {
        trace("outer caught %s", msg(err));
        pact_error_unref(err);
    }
    *result = str("outer");
    return NULL;
}

/* a throwing await unwinds the task */
static pact_error *task_throw_thrower(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    trace("thrower starts");
    PACT_AWAIT(rejected("thrown"));
    trace("thrower: must not run");
    return NULL;
}

static pact_error *task_throw_lonely(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    trace("lonely starts");
    PACT_AWAIT(resolved(pact_nothing()));
    return new_error("lonely");
}

static void task_throw_main(void)
{
    on_rejection(log_hook, NULL);
    drop(then(spawn(task_throw_outer, NULL), ok_log_v, NULL, "outer result"));
    drop(catch_(spawn(task_throw_thrower, NULL), fail_log_e,
                "thrower rejected"));
    drop(spawn(task_throw_lonely, NULL));
    then_chain(then_lines, 4);
}
AORDER_CASE(task_throw)

static pact_error *task_return_promise_plain(void *arg, pact_value *result)
{
    (void)arg;
    trace("plain starts");
    *result = str("plain");
    return NULL;
}

static pact_error *task_return_promise_adopting(void *arg, pact_value *result)
{
    (void)arg;
    trace("adopting starts");
    *result = pact_promise_v(resolved(str("adopted")));
    return NULL;
}

static void task_return_promise_main(void)
{
    drop(then(spawn(task_return_promise_adopting, NULL), ok_log_v, NULL,
              "result"));
    drop(
        then(spawn(task_return_promise_plain, NULL), ok_log_v, NULL, "result"));
    turns(5);
}
AORDER_CASE(task_return_promise)

/* A deliberate difference. pact_await_any(a, b) attaches the task's wake-up
 * to a and b themselves, as Go's select waits on its channels: the task
 * resumes one turn after a settles. Its nearest JavaScript twin, await
 * Promise.race([a, b]), waits on a derived promise that race settles one
 * turn after a does, so Node resumes one turn later. Both traces are written
 * out here: Node's must still be the fixture, and pact's must be this one,
 * differing only in where "task got a" comes.
 *
 * S.p[0]: a; S.d[0]: resolveA; S.p[1]: b (never settles) */
static const char task_await_any_node[] = "task waits for a or b\n"
                                          "then resolves a\n"
                                          "turn 1\n"
                                          "turn 2\n"
                                          "task got a\n"
                                          "turn 3\n"
                                          "turn 4\n";
static const char task_await_any_pact[] = "task waits for a or b\n"
                                          "then resolves a\n"
                                          "turn 1\n"
                                          "task got a\n"
                                          "turn 2\n"
                                          "turn 3\n"
                                          "turn 4\n";

static pact_error *task_await_any_task(void *arg, pact_value *result)
{
    (void)arg;
    (void)result;
    trace("task waits for a or b");
    P *ab[] = {S.p[0], S.p[1]};
    size_t index = 9;
    pact_value v;
    ck_assert_ptr_null(pact_await_any(ab, 2, &index, &v));
    ck_assert_uint_eq(index, 0);
    trace("task got %s", sv(&v));
    return NULL;
}

static pact_value task_await_any_resolve_a(const pact_value *v, void *ud)
{
    (void)v;
    (void)ud;
    trace("then resolves a");
    resolve(&S.d[0], str("a"));
    return pact_nothing();
}

static void task_await_any_main(void)
{
    S.d[0] = defer(&S.p[0]);
    S.p[1] = nonnull(pact_race(t_loop, NULL, 0)); /* new Promise(() => {}) */
    drop(spawn(task_await_any_task, NULL));
    drop(then(resolved(pact_nothing()), task_await_any_resolve_a, NULL, NULL));
    turns(4);
}

START_TEST(task_await_any)
{
    char *node = js_read_fixture("async", "task_await_any", "txt");
    ck_assert_msg(node != NULL, "no fixture async/task_await_any.txt");
    ck_assert_str_eq(node, task_await_any_node);
    free(node);
    run_only("task_await_any", task_await_any_main, NULL, NULL);
    js_expect_trace("async", "task_await_any", task_await_any_pact);
}
END_TEST

/* ---- the suite ----------------------------------------------------------- */

Suite *suite_aorder(void)
{
    Suite *s = suite_create("aorder");
    TCase *tc = tcase_create("node");
    tcase_add_checked_fixture(tc, t_setup, aorder_teardown);
    /* async functions */
    tcase_add_test(tc, sync_until_await);
    tcase_add_test(tc, await_kinds);
    tcase_add_test(tc, return_promise);
    tcase_add_test(tc, return_other);
    tcase_add_test(tc, await_same_promise);
    tcase_add_test(tc, nested);
    tcase_add_test(tc, reject_through);
    tcase_add_test(tc, unhandled);
    tcase_add_test(tc, unhandled_exit);
    tcase_add_test(tc, await_handles_late);
    tcase_add_test(tc, await_in_loop);
    tcase_add_test(tc, timers);
    tcase_add_test(tc, thenable);
    /* tasks */
    tcase_add_test(tc, task_start);
    tcase_add_test(tc, task_timers);
    tcase_add_test(tc, task_interop);
    tcase_add_test(tc, task_throw);
    tcase_add_test(tc, task_return_promise);
    tcase_add_test(tc, task_await_any);
    suite_add_tcase(s, tc);
    return s;
}
