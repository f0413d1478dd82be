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

#include "helpers.h"
#include "suites.h"

typedef pact_promise P;

/* What a case's callbacks share; zeroed before each case, and whatever it
 * still holds is dropped after the run. */
static struct {
    P *p[4];             /* promises a later callback uses */
    pact_deferred *d[4]; /* resolve functions a later callback calls */
    struct capture cap;  /* stderr during the case */
    bool capturing;
} S;

/* ---- the JavaScript vocabulary, each call asserted to succeed ---------- */

static void set_timeout(uint64_t ms, pact_cb cb, void *ud)
{
    ck_assert_int_eq(pact_timeout(t_loop, ms, cb, ud, NULL), 0);
}

static void set_immediate(pact_cb cb, void *ud)
{
    ck_assert_int_eq(pact_immediate(t_loop, cb, ud, NULL), 0);
}

static void next_tick(pact_fn fn, void *ud)
{
    ck_assert_int_eq(pact_next_tick(t_loop, fn, ud), 0);
}

static void queue_microtask(pact_fn fn, void *ud)
{
    ck_assert_int_eq(pact_queue_microtask(t_loop, fn, ud), 0);
}

/* A JS string value, and the string a value holds. */
static pact_value str(const char *s)
{
    return pact_ptr((void *)s);
}

static const char *sv(const pact_value *v)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->kind, PACT_PTR);
    return (const char *)v->u.ptr;
}

/* new Error(msg) */
static pact_error *error(const char *msg)
{
    pact_error *e = PACT_ERROR(PACT_EIO, "%s", msg);
    ck_assert_ptr_nonnull(e);
    return e;
}

static const char *msg(pact_error *e)
{
    ck_assert_ptr_nonnull(e);
    return pact_error_message(e);
}

static P *nonnull(P *p)
{
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Promise.resolve(v), Promise.reject(new Error(m)). */
static P *resolved(pact_value v)
{
    return nonnull(pact_resolved(t_loop, v));
}

static P *rejected(const char *m)
{
    return nonnull(pact_rejected(t_loop, error(m)));
}

/* p.then(ok), p.catch(fail): each consumes @p p and returns the derived
 * promise. */
static P *then(P *p, pact_on_fulfilled ok, pact_on_rejected fail, void *ud)
{
    P *q = nonnull(pact_then(p, ok, fail, ud));
    pact_promise_unref(p);
    return q;
}

static P *catch_(P *p, pact_on_rejected fail, void *ud)
{
    P *q = nonnull(pact_catch(p, fail, ud));
    pact_promise_unref(p);
    return q;
}

static P *ref(P *p)
{
    return pact_promise_ref(p);
}

static void drop(P *p)
{
    pact_promise_unref(p);
}

/* new Promise((resolve) => ...): the resolver, and the promise in *out. */
static pact_deferred *defer(P **out)
{
    pact_deferred *d = pact_deferred_new(t_loop, out);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* resolve(v) once; then the case forgets the resolver. */
static void resolve(pact_deferred **d, pact_value v)
{
    ck_assert_int_eq(pact_deferred_resolve(*d, v), 0);
    pact_deferred_unref(*d);
    *d = NULL;
}

/* () => log(ud) */
static pact_value ok_log(const pact_value *v, void *ud)
{
    (void)v;
    trace("%s", (const char *)ud);
    return pact_nothing();
}

/* (v) => log(ud + ' ' + v) */
static pact_value ok_log_v(const pact_value *v, void *ud)
{
    trace("%s %s", (const char *)ud, sv(v));
    return pact_nothing();
}

/* (e) => log(ud + ' ' + e.message) */
static pact_value fail_log_e(pact_error *e, void *ud)
{
    trace("%s %s", (const char *)ud, msg(e));
    return pact_nothing();
}

/* A plain chain: one line per microtask turn, to count turns by.
 *   let p = Promise.resolve();
 *   for (let i = 1; i <= n; i++) p = p.then(() => log('turn ' + i)); */
static pact_value turns_step(const pact_value *v, void *ud)
{
    (void)v;
    trace("turn %d", (int)(intptr_t)ud);
    return pact_nothing();
}

static void turns(int n)
{
    P *p = resolved(pact_nothing());
    for (int i = 1; i <= n; i++)
        p = then(p, turns_step, NULL, (void *)(intptr_t)i);
    drop(p);
}

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

/* process.on('unhandledRejection', (e) => log('unhandledRejection ' +
 * e.message)) and process.on('rejectionHandled', () =>
 * log('rejectionHandled')). */
static bool log_hook(pact_loop *loop, pact_rejection_event ev, P *p, void *ud)
{
    (void)ud;
    ck_assert_ptr_eq(loop, t_loop);
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    if (ev == PACT_REJECTION_UNHANDLED)
        trace("unhandledRejection %s", msg(pact_promise_error(p)));
    else
        trace("rejectionHandled");
    return true;
}

static void on_rejection(void)
{
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, log_hook, NULL), 0);
}

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

/* The 1-based number of the first line where @p a and @p b differ. */
static int first_diff_line(const char *a, const char *b)
{
    int line = 1;
    for (; *a && *a == *b; a++, b++)
        if (*a == '\n')
            line++;
    return line;
}

/* Copy line @p n (1-based) of @p s into @p buf, or "(end)" past the end. */
static const char *nth_line(const char *s, int n, char *buf, size_t len)
{
    for (; n > 1 && *s; s++)
        if (*s == '\n')
            n--;
    if (!*s)
        return "(end)";
    size_t k = strcspn(s, "\n");
    snprintf(buf, len, "%.*s", (int)k, s);
    return buf;
}

static char *read_fixture(const char *name, const char *ext)
{
    char rel[128];
    snprintf(rel, sizeof rel, "async/%s.%s", name, ext);
    return t_read_fixture(rel);
}

/* pact's trace must be @p want (Node's, unless a case says otherwise). */
static void expect_trace(const char *name, const char *want)
{
    char want_line[256], got_line[256];
    const char *got = trace_text();
    if (strcmp(want, got) == 0)
        return;
    int line = first_diff_line(want, got);
    fprintf(stderr,
            "async/%s: pact's trace differs from Node's at line %d\n"
            "--- node\n%s--- pact\n%s---\n",
            name, line, want, got);
    const char *w = nth_line(want, line, want_line, sizeof want_line);
    const char *g = nth_line(got, line, got_line, sizeof got_line);
    ck_abort_msg("%s: line %d: node '%s', pact '%s'", name, line, w, g);
}

static void expect_fixture(const char *name)
{
    char *want = read_fixture(name, "txt");
    ck_assert_msg(want != NULL,
                  "no fixture async/%s.txt (is PACT_FIXTURES "
                  "set?)",
                  name);
    expect_trace(name, want);
    free(want);
}

/* Node's exit status for the case: <case>.exit, or 0 without one. */
static int fixture_exit(const char *name)
{
    char *s = read_fixture(name, "exit");
    if (!s)
        return 0;
    int status = atoi(s);
    free(s);
    return status;
}

/* Drop what the case still holds. */
static void release_held(void)
{
    for (size_t i = 0; i < sizeof S.p / sizeof S.p[0]; i++) {
        if (S.p[i])
            pact_promise_unref(S.p[i]);
        S.p[i] = NULL;
    }
    for (size_t i = 0; i < sizeof S.d / sizeof S.d[0]; i++) {
        if (S.d[i])
            pact_deferred_unref(S.d[i]);
        S.d[i] = NULL;
    }
}

/* Run one case: its main turn and the loop, with stderr captured. @p err1
 * and @p err2 (may be NULL) are what pact must print on stderr; with both
 * NULL, nothing. The trace is left for the caller to compare. */
static void run_only(const char *name, void (*main_turn)(void),
                     const char *err1, const char *err2)
{
    memset(&S, 0, sizeof S);
    int want_exit = fixture_exit(name);
    capture_begin(&S.cap);
    S.capturing = true;
    main_turn();
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    S.capturing = false;
    char *err = capture_end(&S.cap);
    release_held();
    if (want_exit != 0)
        pact_loop_close_all(t_loop); /* the process ended there */
    /* what the release let go of (a task's stale wake-ups) */
    ck_assert_int_ge(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);

    int want_rc = want_exit == 0 ? 0 : PACT_EUNHANDLED;
    bool err_ok = err1 ? strstr(err, err1) && (!err2 || strstr(err, err2))
                       : err[0] == '\0';
    if (rc != want_rc || !err_ok)
        fprintf(stderr,
                "async/%s: pact_loop_run returned %d (node exits %d); "
                "trace:\n%s--- stderr:\n%s---\n",
                name, rc, want_exit, trace_text(), err);
    free(err);
    ck_assert_msg(want_exit == 0 || want_exit == 1, "%s: exit %d", name,
                  want_exit);
    ck_assert_int_eq(rc, want_rc);
    if (err1)
        ck_assert_msg(err_ok, "%s: pact's stderr lacks '%s'%s%s", name, err1,
                      err2 ? " or " : "", err2 ? err2 : "");
    else
        ck_assert_msg(err_ok, "%s: pact wrote to stderr, node did not", name);
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
}

static void run_case(const char *name, void (*main_turn)(void),
                     const char *err1, const char *err2)
{
    run_only(name, main_turn, err1, err2);
    expect_fixture(name);
}

static void aorder_teardown(void)
{
    if (S.capturing) { /* the case failed inside its run */
        S.capturing = false;
        char *err = capture_end(&S.cap);
        fputs(err, stderr);
        free(err);
    }
    release_held();
    t_teardown();
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
    return error("boom");
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
    return error("sync");
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
    return error(f->name);
    PACT_ASYNC_END(a);
}

static pact_error *unhandled_fails_at_once(pact_async *a, pact_value *result)
{
    (void)result;
    PACT_ASYNC_BEGIN(a);
    trace("failsAtOnce throws");
    return error("at once");
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
    on_rejection();
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
    return error("unawaited");
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
    on_rejection();
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
    return error("inner");
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
    return error("lonely");
}

static void task_throw_main(void)
{
    on_rejection();
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
    char *node = read_fixture("task_await_any", "txt");
    ck_assert_msg(node != NULL, "no fixture async/task_await_any.txt");
    ck_assert_str_eq(node, task_await_any_node);
    free(node);
    run_only("task_await_any", task_await_any_main, NULL, NULL);
    expect_trace("task_await_any", task_await_any_pact);
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
