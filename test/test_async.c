/* Stackless async functions (PACT_ASYNC, pact/async.h): what a call runs
 * synchronously and what it returns, results and rejections, locals that
 * cross awaits in the frame, every await suspending, the misuse reported at
 * run time (a NULL or unheld promise, an await inside a switch of the body's
 * own), cancellation by pact_loop_close_all, frames never started or started
 * twice, the values an await hands over, and interoperation with stackful
 * tasks both ways. The misuse the
 * compiler must refuse is test/check-async-misuse.sh; the ordering against
 * Node is test/test_aorder.c.
 *
 * Each body counts its entries (the code before PACT_ASYNC_BEGIN runs at the
 * start and at every resume) in C, so a test can tell how often it was
 * re-entered, and every test runs its loop until nothing is left, so that
 * t_teardown's pact_loop_free finds every frame and promise gone. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "suites.h"

#define I2P(i) ((void *)(intptr_t)(i))
#define P2I(p) ((intptr_t)(p))

typedef pact_promise P;

/* Counters the bodies bump; zeroed before each test. */
static struct {
    int entries; /* body entries: the start and each resume */
    int after;   /* code after an await that must (not) run */
    int done;    /* bodies that reached their end */
    int freed;   /* owned values' destructor calls */
    int leaves;  /* chain leaves that ran */
} C;

static void async_setup(void)
{
    memset(&C, 0, sizeof C);
    t_setup();
}

static void run_loop(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}

/* Run the loop until nothing is left, with stderr captured. @return what
 * was printed (malloc'd); the run's result goes to *rc. */
static char *run_captured(int *rc)
{
    struct capture cap;
    capture_begin(&cap);
    *rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    return capture_end(&cap);
}

/* run_captured, which must return 0 and print nothing. */
static void run_quiet(void)
{
    int rc;
    char *err = run_captured(&rc);
    ck_assert_msg(rc == 0 && !err[0], "rc %d, stderr: %s", rc, err);
    free(err);
}

/* One turn that leaves work (the frames' awaits), then
 * pact_loop_close_all. */
static void close_all_after_a_turn(void)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
}

static void expect_int(P *p, int64_t want)
{
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    const pact_value *v = pact_promise_value(p);
    ck_assert_int_eq(v->kind, PACT_INT);
    ck_assert_int_eq(v->u.i, want);
}

static void expect_error(P *p, int code, const char *text)
{
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    pact_error *e = pact_promise_error(p);
    ck_assert_int_eq(pact_error_code(e), code);
    if (text)
        ck_assert_msg(strstr(pact_error_message(e), text),
                      "message '%s' lacks '%s'", pact_error_message(e), text);
}

static void *new_frame(size_t size, pact_async_fn body)
{
    void *f = pact_async_new(t_loop, size, body);
    ck_assert_ptr_nonnull(f);
    return f;
}

static P *start(void *frame)
{
    P *p = pact_async_start(frame);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* p.catch(() => {}): marks @p p handled. @return the derived promise. */
static pact_value swallow(pact_error *err, void *ud)
{
    (void)err;
    (void)ud;
    return pact_nothing();
}

static P *handle(P *p)
{
    P *q = pact_catch(p, swallow, NULL);
    ck_assert_ptr_nonnull(q);
    return q;
}

/* An owned pointer whose destructor counts. */
static void count_free(void *ptr)
{
    C.freed++;
    free(ptr);
}

static pact_value owned_int(int n)
{
    int *x = malloc(sizeof *x);
    ck_assert_ptr_nonnull(x);
    *x = n;
    return pact_owned(x, count_free);
}

/* ---- calls, results, rejections ----------------------------------------- */

/* basic(add): awaits Promise.resolve(40), fulfils with 40 + add. */
struct basic {
    PACT_ASYNC_FRAME;
    int64_t add;
    pact_value got;
};

static pact_error *basic_body(pact_async *a, pact_value *result)
{
    struct basic *f = (struct basic *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    trace("body start");
    PACT_ASYNC_TRY(a, pact_resolved(pact_async_loop(a), pact_int(40)), &f->got);
    ck_assert_int_eq(f->got.kind, PACT_INT);
    trace("body resumed with %lld", (long long)f->got.u.i);
    *result = pact_int(f->got.u.i + f->add);
    C.done++;
    PACT_ASYNC_END(a);
}

static P *basic(int64_t add)
{
    struct basic *f = new_frame(sizeof *f, basic_body);
    f->add = add;
    return start(f);
}

START_TEST(call_runs_body_to_first_await)
{
    trace("before call");
    P *p = basic(2);
    trace("after call");
    ck_assert_str_eq(trace_text(), "before call\nbody start\nafter call\n");
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    ck_assert_int_eq(C.entries, 1);
    ck_assert_ptr_eq(pact_promise_loop(p), t_loop);
    run_loop();
    ck_assert_str_eq(trace_text(), "before call\nbody start\nafter call\n"
                                   "body resumed with 40\n");
    ck_assert_int_eq(C.entries, 2);
    ck_assert_int_eq(C.done, 1);
    expect_int(p, 42);
    pact_promise_unref(p);
}
END_TEST

/* No await at all: the promise is settled when the call returns, as a
 * JavaScript async function's is. */
static pact_error *sync_body(pact_async *a, pact_value *result)
{
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    *result = pact_int(7);
    PACT_ASYNC_END(a);
}

START_TEST(result_without_await)
{
    P *p = start(new_frame(sizeof(pact_async), sync_body));
    ck_assert_int_eq(C.entries, 1);
    expect_int(p, 7);
    run_loop();
    ck_assert_int_eq(C.entries, 1);
    pact_promise_unref(p);
}
END_TEST

/* Returns an error after one await: *result, set before it, is released. */
static pact_error *fails_body(pact_async *a, pact_value *result)
{
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_TRY(a, pact_delay(pact_async_loop(a), 1, NULL), NULL);
    *result = owned_int(1);
    return PACT_ERROR(PACT_EIO, "failed after %d await", 1);
    PACT_ASYNC_END(a);
}

START_TEST(return_error_rejects)
{
    P *p = start(new_frame(sizeof(pact_async), fails_body));
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    P *q = handle(p); /* no unhandled report */
    run_loop();
    ck_assert_int_eq(C.entries, 2);
    ck_assert_int_eq(C.freed, 1);
    expect_error(p, PACT_EIO, "failed after 1 await");
    ck_assert_int_eq(pact_promise_state(q), PACT_FULFILLED);
    pact_promise_unref(q);
    pact_promise_unref(p);
}
END_TEST

/* A synchronous rejection (before any await) and nobody handling it: the
 * loop reports it, as Node does for an unawaited async function. */
static pact_error *fails_sync_body(pact_async *a, pact_value *result)
{
    (void)result;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    return PACT_ERROR(PACT_EIO, "nobody awaits this");
    PACT_ASYNC_END(a);
}

START_TEST(unawaited_rejection_reported)
{
    P *p = start(new_frame(sizeof(pact_async), fails_sync_body));
    expect_error(p, PACT_EIO, "nobody awaits this");
    pact_promise_unref(p);
    int rc;
    char *err = run_captured(&rc);
    ck_assert_int_eq(rc, PACT_EUNHANDLED);
    ck_assert_msg(strstr(err, "nobody awaits this"), "stderr: %s", err);
    free(err);
    ck_assert_int_eq(C.entries, 1);
}
END_TEST

/* PACT_ASYNC_TRY: the rejection becomes the function's, the same error. */
struct try_frame {
    PACT_ASYNC_FRAME;
    pact_error *err; /* what to await the rejection of (a reference) */
};

static pact_error *try_body(pact_async *a, pact_value *result)
{
    struct try_frame *f = (struct try_frame *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_TRY(a, pact_resolved(pact_async_loop(a), pact_int(1)), NULL);
    PACT_ASYNC_TRY(a, pact_rejected(pact_async_loop(a), f->err), result);
    C.after++;
    *result = pact_int(1);
    PACT_ASYNC_END(a);
}

START_TEST(try_propagates_rejection)
{
    pact_error *e = PACT_ERROR(PACT_ETIMEDOUT, "inner");
    struct try_frame *f = new_frame(sizeof *f, try_body);
    f->err = pact_error_ref(e);
    P *p = start(f);
    P *q = handle(p);
    run_loop();
    ck_assert_int_eq(C.entries, 3);
    ck_assert_int_eq(C.after, 0);
    expect_error(p, PACT_ETIMEDOUT, "inner");
    ck_assert_ptr_eq(pact_promise_error(p), e);
    pact_error_unref(e);
    pact_promise_unref(q);
    pact_promise_unref(p);
}
END_TEST

/* PACT_ASYNC_AWAIT_ERR: the body gets the rejection and carries on; on
 * success the error is NULL and the value set. */
struct err_frame {
    PACT_ASYNC_FRAME;
    pact_error *err;
    pact_value v;
};

static pact_error *err_body(pact_async *a, pact_value *result)
{
    struct err_frame *f = (struct err_frame *)a;
    pact_loop *loop = pact_async_loop(a);
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    f->err = (pact_error *)1; /* must be overwritten */
    PACT_ASYNC_AWAIT_ERR(a, pact_rejected(loop, PACT_ERROR(PACT_EIO, "x")),
                         &f->v, f->err);
    ck_assert_ptr_nonnull(f->err);
    ck_assert_int_eq(pact_error_code(f->err), PACT_EIO);
    ck_assert_str_eq(pact_error_message(f->err), "x");
    ck_assert_int_eq(f->v.kind, PACT_NOTHING);
    pact_error_unref(f->err);
    C.after++;
    PACT_ASYNC_AWAIT_ERR(a, pact_resolved(loop, pact_int(5)), &f->v, f->err);
    ck_assert_ptr_null(f->err);
    ck_assert_int_eq(f->v.kind, PACT_INT);
    C.after++;
    PACT_ASYNC_AWAIT_ERR(a, pact_resolved(loop, pact_int(6)), NULL, f->err);
    ck_assert_ptr_null(f->err);
    *result = pact_int(f->v.u.i * 10 + 1);
    PACT_ASYNC_END(a);
}

START_TEST(await_err_hands_rejection_to_body)
{
    P *p = start(new_frame(sizeof(struct err_frame), err_body));
    run_loop();
    ck_assert_int_eq(C.entries, 4);
    ck_assert_int_eq(C.after, 2);
    expect_int(p, 51);
    pact_promise_unref(p);
}
END_TEST

/* ---- many frames --------------------------------------------------------- */

struct sleeper {
    PACT_ASYNC_FRAME;
    int i;
};

static pact_error *sleeper_body(pact_async *a, pact_value *result)
{
    struct sleeper *f = (struct sleeper *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_TRY(a, pact_delay(pact_async_loop(a), 1 + f->i % 3, NULL), NULL);
    C.done++;
    *result = pact_int((int64_t)f->i * 3);
    PACT_ASYNC_END(a);
}

/* 100,000 suspended at once: a frame and promise nodes each, no stack. */
START_TEST(hundred_thousand_frames)
{
    enum { N = 100000 };
    P **ps = malloc(N * sizeof *ps);
    ck_assert_ptr_nonnull(ps);
    for (int i = 0; i < N; i++) {
        struct sleeper *f = new_frame(sizeof *f, sleeper_body);
        f->i = i;
        ps[i] = start(f);
    }
    ck_assert_int_eq(C.entries, N);
    ck_assert_int_eq(C.done, 0);
    run_loop();
    ck_assert_int_eq(C.entries, 2 * N);
    ck_assert_int_eq(C.done, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(pact_promise_state(ps[i]), PACT_FULFILLED);
        ck_assert_int_eq(pact_promise_value(ps[i])->u.i, (int64_t)i * 3);
        pact_promise_unref(ps[i]);
    }
    free(ps);
}
END_TEST

/* ---- locals in the frame ------------------------------------------------- */

struct loops {
    PACT_ASYNC_FRAME;
    char name;
    int i, j;
    int64_t sum;
    pact_value v;
    pact_error *err;
};

/* Awaits in nested loops and in each branch of an if/else chain; the loop
 * counters and the sum live in the frame. */
static pact_error *loops_body(pact_async *a, pact_value *result)
{
    struct loops *f = (struct loops *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    for (f->i = 0; f->i < 5; f->i++) {
        if (f->i % 2 == 0) {
            PACT_ASYNC_TRY(
                a, pact_resolved(pact_async_loop(a), pact_int(f->i * 100)),
                &f->v);
            f->sum += f->v.u.i;
        } else if (f->i == 1) {
            PACT_ASYNC_TRY(a, pact_delay(pact_async_loop(a), 0, NULL), NULL);
            f->sum += 1;
        } else {
            for (f->j = 0; f->j < f->i; f->j++) {
                PACT_ASYNC_AWAIT_ERR(
                    a, pact_rejected(pact_async_loop(a), PACT_ERROR(PACT_EIO)),
                    NULL, f->err);
                ck_assert_int_eq(pact_error_code(f->err), PACT_EIO);
                pact_error_unref(f->err);
                f->sum += 10 * (f->j + 1);
            }
        }
        trace("%c i %d sum %lld", f->name, f->i, (long long)f->sum);
    }
    {
        /* a temporary in a block that closes before the next await */
        int64_t twice = f->sum * 2;
        f->sum = twice;
    }
    PACT_ASYNC_TRY(a, pact_immediate_p(pact_async_loop(a), NULL), NULL);
    *result = pact_int(f->sum);
    PACT_ASYNC_END(a);
}

/* The lines of the trace that start with @p c, without it (malloc'd). */
static char *lines_of(char c)
{
    const char *s = trace_text();
    char *out = malloc(strlen(s) + 1), *o = out;
    ck_assert_ptr_nonnull(out);
    while (*s) {
        size_t n = strcspn(s, "\n") + 1;
        if (s[0] == c && s[1] == ' ') {
            memcpy(o, s + 2, n - 2);
            o += n - 2;
        }
        s += n;
    }
    *o = '\0';
    return out;
}

static P *loops(char name)
{
    struct loops *f = new_frame(sizeof *f, loops_body);
    f->name = name;
    return start(f);
}

START_TEST(locals_cross_awaits_in_frame)
{
    P *p = loops('p');
    P *q = loops('q');
    run_loop();
    /* awaits: i=0 1, i=1 1, i=2 1, i=3 3, i=4 1, the immediate 1 */
    ck_assert_int_eq(C.entries, 2 * (1 + 8));
    /* i=0: 0, i=1: 1, i=2: 200, i=3: 10+20+30, i=4: 400; then doubled */
    expect_int(p, 2 * 661);
    expect_int(q, 2 * 661);
    /* the two frames interleave, each with its own counters */
    static const char want[] = "i 0 sum 0\ni 1 sum 1\ni 2 sum 201\n"
                               "i 3 sum 261\ni 4 sum 661\n";
    for (char c = 'p'; c <= 'q'; c++) {
        char *got = lines_of(c);
        ck_assert_str_eq(got, want);
        free(got);
    }
    ck_assert_int_eq(t_count(trace_text(), "\n"), 10);
    static const char first[] = "p i 0 sum 0\nq i 0 sum 0\n";
    ck_assert_int_eq(strncmp(trace_text(), first, sizeof first - 1), 0);
    pact_promise_unref(p);
    pact_promise_unref(q);
}
END_TEST

/* ---- every await suspends ------------------------------------------------ */

START_TEST(settled_await_suspends)
{
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "queued before"),
                     0);
    P *p = basic(0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "queued after"), 0);
    trace("call returned");
    ck_assert_str_eq(trace_text(), "body start\ncall returned\n");
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    ck_assert_str_eq(trace_text(), "body start\ncall returned\nqueued before\n"
                                   "body resumed with 40\nqueued after\n");
    expect_int(p, 40);
    pact_promise_unref(p);
}
END_TEST

/* ---- await misuse reported at run time ----------------------------------- */

struct one_await {
    PACT_ASYNC_FRAME;
    P *what; /* the promise to await (stolen by the await) */
    pact_error *err;
};

/* Awaits f->what with the error form, fulfils with the error's code. */
static pact_error *one_await_body(pact_async *a, pact_value *result)
{
    struct one_await *f = (struct one_await *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    trace("awaiting");
    PACT_ASYNC_AWAIT_ERR(a, f->what, NULL, f->err);
    trace("resumed");
    *result = pact_int(f->err ? pact_error_code(f->err) : 0);
    pact_error_unref(f->err);
    PACT_ASYNC_END(a);
}

static P *await_one(P *what)
{
    struct one_await *f = new_frame(sizeof *f, one_await_body);
    f->what = what;
    return start(f);
}

/* A pending promise that only the await holds can never settle: the await
 * ends with PACT_ECANCELED (still as a microtask), and nothing is printed. */
START_TEST(await_unheld_promise_cancelled)
{
    P *never = pact_race(t_loop, NULL, 0);
    ck_assert_ptr_nonnull(never);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "queued before"),
                     0);
    struct capture cap;
    capture_begin(&cap);
    P *p = await_one(never);
    ck_assert_str_eq(trace_text(), "awaiting\n");
    run_loop();
    char *err = capture_end(&cap);
    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_str_eq(trace_text(), "awaiting\nqueued before\nresumed\n");
    ck_assert_int_eq(C.entries, 2);
    expect_int(p, PACT_ECANCELED);
    pact_promise_unref(p);
}
END_TEST

/* The last other holder lets go while the frame waits: cancelled too. */
START_TEST(await_promise_dropped_while_waiting)
{
    P *never = pact_race(t_loop, NULL, 0);
    P *p = await_one(pact_promise_ref(never));
    run_loop(); /* nothing to do: the frame waits */
    ck_assert_int_eq(C.entries, 1);
    ck_assert_int_eq(pact_promise_state(p), PACT_PENDING);
    pact_promise_unref(never);
    run_loop();
    ck_assert_int_eq(C.entries, 2);
    expect_int(p, PACT_ECANCELED);
    pact_promise_unref(p);
}
END_TEST

/* pact_loop_close_all drops the timer a frame waits on: its promise rejects
 * with PACT_ECANCELED, and the frame resumes with it (and frees itself). */
START_TEST(close_all_cancels_timer_await)
{
    P *p = await_one(pact_delay(t_loop, 100000, NULL));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(C.entries, 1);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_loop();
    ck_assert_int_eq(C.entries, 2);
    expect_int(p, PACT_ECANCELED);
    pact_promise_unref(p);
}
END_TEST

/* After pact_loop_close_all every later await of a frame started before it
 * fails with PACT_ECANCELED, whatever it awaits (even a promise still
 * pending, or a settled one), and the function rejecting with that is not
 * an unhandled rejection. A frame started afterwards awaits as usual. */
struct shutdown {
    PACT_ASYNC_FRAME;
    P *gate; /* pending: never settled while the frame runs */
    pact_error *err;
};

static pact_error *shutdown_body(pact_async *a, pact_value *result)
{
    struct shutdown *f = (struct shutdown *)a;
    pact_loop *loop = pact_async_loop(a);
    (void)result;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, pact_delay(loop, 100000, NULL), NULL, f->err);
    ck_assert_int_eq(pact_error_code(f->err), PACT_ECANCELED); /* broken */
    pact_error_unref(f->err);
    C.after++;
    PACT_ASYNC_AWAIT_ERR(a, f->gate, NULL, f->err);
    ck_assert_int_eq(pact_error_code(f->err), PACT_ECANCELED);
    ck_assert_ptr_nonnull(strstr(pact_error_message(f->err), "cancelled"));
    pact_error_unref(f->err);
    C.after++;
    PACT_ASYNC_TRY(a, pact_resolved(loop, pact_int(1)), NULL);
    C.done++;
    PACT_ASYNC_END(a);
}

START_TEST(close_all_cancels_later_awaits)
{
    P *gate = NULL;
    pact_deferred *d = pact_deferred_new(t_loop, &gate);
    ck_assert_ptr_nonnull(d);
    struct shutdown *f = new_frame(sizeof *f, shutdown_body);
    f->gate = pact_promise_ref(gate);
    P *p = start(f);
    close_all_after_a_turn();
    P *later = basic(1); /* started after: not cancelled */
    run_quiet();
    ck_assert_int_eq(C.after, 2);
    ck_assert_int_eq(C.done, 1); /* basic's only */
    ck_assert_int_eq(pact_promise_state(gate), PACT_PENDING);
    expect_error(p, PACT_ECANCELED, "pact_loop_close_all");
    expect_int(later, 41);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_nothing()), 0);
    pact_deferred_unref(d);
    pact_promise_unref(gate);
    pact_promise_unref(p);
    pact_promise_unref(later);
}
END_TEST

/* Another error a cancelled function returns is reported as usual. */
static pact_error *shutdown_fails_body(pact_async *a, pact_value *result)
{
    struct shutdown *f = (struct shutdown *)a;
    (void)result;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, pact_delay(pact_async_loop(a), 100000, NULL), NULL,
                         f->err);
    pact_error_unref(f->err);
    PACT_ASYNC_AWAIT_ERR(a, pact_resolved(pact_async_loop(a), pact_int(1)),
                         NULL, f->err);
    ck_assert_int_eq(pact_error_code(f->err), PACT_ECANCELED);
    pact_error_unref(f->err);
    return PACT_ERROR(PACT_EIO, "cleanup failed");
    PACT_ASYNC_END(a);
}

START_TEST(close_all_other_error_reported)
{
    P *p = start(new_frame(sizeof(struct shutdown), shutdown_fails_body));
    pact_promise_unref(p);
    close_all_after_a_turn();
    int rc;
    char *err = run_captured(&rc);
    ck_assert_msg(rc == PACT_EUNHANDLED && strstr(err, "cleanup failed"),
                  "rc %d, stderr: %s", rc, err);
    free(err);
}
END_TEST

/* A frame whose current await breaks at pact_loop_close_all and which
 * passes the ECANCELED on (TRY) ends quietly: a cancelled shutdown is not
 * an unhandled rejection. */
static pact_error *shutdown_try_body(pact_async *a, pact_value *result)
{
    (void)result;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_TRY(a, pact_delay(pact_async_loop(a), 100000, NULL), NULL);
    C.done++; /* not reached */
    PACT_ASYNC_END(a);
}

START_TEST(close_all_current_await_quiet)
{
    P *p = start(new_frame(sizeof(pact_async), shutdown_try_body));
    pact_promise_unref(p);
    close_all_after_a_turn();
    run_quiet();
    ck_assert_int_eq(C.entries, 2);
    ck_assert_int_eq(C.done, 0);
}
END_TEST

/* A frame awaiting a promise of a cycle (two promises resolved with each
 * other) waits with the node kept in its own allocation, in no slab:
 * pact_loop_close_all's search for cycles cancels that await as well, and
 * the loop then frees (the teardown asserts it). */
struct on_cycle {
    PACT_ASYNC_FRAME;
    P *p; /* the await takes it */
};

static int cycle_code; /* what the await gave (the frame is gone after) */

static pact_error *on_cycle_body(pact_async *a, pact_value *result)
{
    struct on_cycle *f = (struct on_cycle *)a;
    pact_error *err;
    (void)result;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, f->p, NULL, err);
    cycle_code = err ? pact_error_code(err) : 0;
    pact_error_unref(err);
    C.done++;
    PACT_ASYNC_END(a);
}

START_TEST(close_all_cancels_await_on_cycle)
{
    P *p1 = t_promise_cycle(NULL);
    struct on_cycle *f = new_frame(sizeof *f, on_cycle_body);
    f->p = p1;
    cycle_code = -1;
    P *p = start(f);
    run_quiet();
    ck_assert_int_eq(C.done, 0);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    run_quiet();
    ck_assert_int_eq(C.done, 1);
    ck_assert_int_eq(cycle_code, PACT_ECANCELED);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    pact_promise_unref(p);
}
END_TEST

START_TEST(await_null_einval)
{
    struct capture cap;
    capture_begin(&cap);
    P *p = await_one(NULL);
    char *err = capture_end(&cap);
    ck_assert_msg(strstr(err, "PACT_ASYNC_AWAIT") &&
                      strstr(err, "promise is NULL") && strstr(err, "EINVAL"),
                  "stderr: %s", err);
    free(err);
    ck_assert_str_eq(trace_text(), "awaiting\n"); /* suspended all the same */
    run_loop();
    ck_assert_str_eq(trace_text(), "awaiting\nresumed\n");
    expect_int(p, PACT_EINVAL);
    pact_promise_unref(p);
}
END_TEST

START_TEST(await_other_loops_promise_einval)
{
    pact_loop *other = NULL;
    ck_assert_int_eq(pact_loop_new(&other), 0);
    struct capture cap;
    capture_begin(&cap);
    P *p = await_one(pact_resolved(other, pact_int(1)));
    char *err = capture_end(&cap);
    ck_assert_msg(strstr(err, "another loop"), "stderr: %s", err);
    free(err);
    run_loop();
    expect_int(p, PACT_EINVAL);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_loop_free(other), 0); /* the await dropped it */
}
END_TEST

/* An await inside a switch statement of the body's own: its case label is
 * that switch's, so the resume cannot reach it. */
struct sw {
    PACT_ASYNC_FRAME;
    int k;
};

static pact_error *switch_body(pact_async *a, pact_value *result)
{
    struct sw *f = (struct sw *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    switch (f->k) {
    case 1:
        PACT_ASYNC_TRY(a, pact_resolved(pact_async_loop(a), pact_int(1)), NULL);
        C.after++;
        break;
    default:
        break;
    }
    C.done++;
    *result = pact_int(1);
    PACT_ASYNC_END(a);
}

START_TEST(await_inside_switch_reported)
{
    struct sw *f = new_frame(sizeof *f, switch_body);
    f->k = 1;
    P *p = start(f);
    P *q = handle(p);
    struct capture cap;
    capture_begin(&cap);
    run_loop();
    char *err = capture_end(&cap);
    ck_assert_msg(strstr(err, "switch statement") && strstr(err, "EINVAL"),
                  "stderr: %s", err);
    free(err);
    ck_assert_int_eq(C.entries, 2);
    ck_assert_int_eq(C.after, 0);
    ck_assert_int_eq(C.done, 0);
    expect_error(p, PACT_EINVAL, "switch statement");
    pact_promise_unref(q);
    pact_promise_unref(p);
}
END_TEST

/* ---- frames: never started, started twice, bad arguments ----------------- */

struct holder {
    PACT_ASYNC_FRAME;
    char name[64];
};

START_TEST(drop_never_started)
{
    struct holder *f = new_frame(sizeof *f, basic_body);
    snprintf(f->name, sizeof f->name, "never run");
    pact_async_drop(f);
    pact_async_drop(NULL);
    run_loop();
    ck_assert_int_eq(C.entries, 0);
    /* its promise went with it: t_teardown's pact_loop_free would refuse */
}
END_TEST

START_TEST(start_twice_refused)
{
    pact_deferred *d = NULL;
    P *gate = NULL;
    ck_assert_ptr_nonnull(d = pact_deferred_new(t_loop, &gate));
    struct one_await *f = new_frame(sizeof *f, one_await_body);
    f->what = gate;
    P *p = start(f);
    ck_assert_int_eq(C.entries, 1);
    struct capture cap;
    capture_begin(&cap);
    P *again = pact_async_start(f);
    pact_async_drop(f); /* started: refused too, the frame stays */
    char *err = capture_end(&cap);
    ck_assert_ptr_null(again);
    ck_assert_msg(strstr(err, "pact_async_start") &&
                      strstr(err, "started already"),
                  "stderr: %s", err);
    ck_assert_msg(strstr(err, "pact_async_drop"), "stderr: %s", err);
    free(err);
    ck_assert_int_eq(C.entries, 1);
    ck_assert_int_eq(pact_deferred_resolve(d, pact_int(3)), 0);
    pact_deferred_unref(d);
    run_loop();
    ck_assert_int_eq(C.entries, 2);
    expect_int(p, 0);
    pact_promise_unref(p);
}
END_TEST

START_TEST(new_and_start_misuse)
{
    struct capture cap;
    capture_begin(&cap);
    ck_assert_ptr_null(pact_async_new(NULL, sizeof(pact_async), sync_body));
    ck_assert_ptr_null(pact_async_new(t_loop, sizeof(pact_async), NULL));
    ck_assert_ptr_null(
        pact_async_new(t_loop, sizeof(pact_async) - 1, sync_body));
    ck_assert_ptr_null(pact_async_start(NULL));
    char *err = capture_end(&cap);
    free(err); /* the new() reports are for debug builds only */
    ck_assert_ptr_null(pact_async_loop(NULL));
    ck_assert_int_eq(C.entries, 0);
}
END_TEST

/* ---- values -------------------------------------------------------------- */

struct take {
    PACT_ASYNC_FRAME;
    P *what;
    pact_value v;
    pact_error *err;
};

/* Awaits f->what and fulfils with the value it got (moved on), or rejects
 * with the await's error. */
static pact_error *take_body(pact_async *a, pact_value *result)
{
    struct take *f = (struct take *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, f->what, &f->v, f->err);
    if (f->err)
        return f->err;
    C.after++;
    *result = f->v;
    PACT_ASYNC_END(a);
}

static P *take(P *what)
{
    struct take *f = new_frame(sizeof *f, take_body);
    f->what = what;
    return start(f);
}

START_TEST(owned_value_moved_out)
{
    pact_value o = owned_int(11);
    void *ptr = o.u.owned.ptr;
    P *p = take(pact_resolved(t_loop, o)); /* the frame holds the last ref */
    run_loop();
    ck_assert_int_eq(C.after, 1);
    ck_assert_int_eq(C.freed, 0);
    ck_assert_int_eq(pact_promise_state(p), PACT_FULFILLED);
    const pact_value *v = pact_promise_value(p);
    ck_assert_int_eq(v->kind, PACT_OWNED);
    ck_assert_ptr_eq(v->u.owned.ptr, ptr); /* moved, not copied */
    ck_assert_int_eq(*(int *)v->u.owned.ptr, 11);
    pact_promise_unref(p);
    ck_assert_int_eq(C.freed, 1);
}
END_TEST

/* Passed down a chain by a then without handlers (which cannot copy it) and
 * awaited at its end: still moved out, once nothing else holds the chain. */
START_TEST(owned_value_through_chain)
{
    pact_value o = owned_int(13);
    void *ptr = o.u.owned.ptr;
    P *src = pact_resolved(t_loop, o);
    P *mid = pact_then(src, NULL, NULL, NULL);
    pact_promise_unref(src);
    P *end = pact_then(mid, NULL, NULL, NULL);
    pact_promise_unref(mid);
    P *p = take(end);
    run_loop();
    ck_assert_int_eq(C.after, 1);
    ck_assert_int_eq(C.freed, 0);
    ck_assert_int_eq(pact_promise_value(p)->kind, PACT_OWNED);
    ck_assert_ptr_eq(pact_promise_value(p)->u.owned.ptr, ptr);
    pact_promise_unref(p);
    ck_assert_int_eq(C.freed, 1);
}
END_TEST

START_TEST(owned_value_shared_einval)
{
    P *src = pact_resolved(t_loop, owned_int(12));
    P *p = take(pact_promise_ref(src)); /* src still holds it */
    P *q = handle(p);
    run_loop();
    ck_assert_int_eq(C.after, 0);
    expect_error(p, PACT_EINVAL, "owned");
    ck_assert_int_eq(C.freed, 0);
    ck_assert_int_eq(*(int *)pact_promise_value(src)->u.owned.ptr, 12);
    pact_promise_unref(q);
    pact_promise_unref(p);
    pact_promise_unref(src);
    ck_assert_int_eq(C.freed, 1);
}
END_TEST

/* A value stored in *result before an await is released when the body
 * suspends (see the rules); what it stores at the end is the result. */
static pact_error *early_result_body(pact_async *a, pact_value *result)
{
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    *result = owned_int(1);
    PACT_ASYNC_TRY(a, pact_resolved(pact_async_loop(a), pact_nothing()), NULL);
    *result = owned_int(2);
    PACT_ASYNC_END(a);
}

START_TEST(result_before_await_released)
{
    P *p = start(new_frame(sizeof(pact_async), early_result_body));
    ck_assert_int_eq(C.freed, 1);
    run_loop();
    ck_assert_int_eq(C.freed, 1);
    ck_assert_int_eq(*(int *)pact_promise_value(p)->u.owned.ptr, 2);
    pact_promise_unref(p);
    ck_assert_int_eq(C.freed, 2);
}
END_TEST

START_TEST(json_and_bytes_values)
{
    /* moved when the frame held the last reference */
    json_t *j = json_pack("{s:i}", "n", 5);
    ck_assert_ptr_nonnull(j);
    P *p = take(pact_resolved(t_loop, pact_json(json_incref(j))));
    /* shared: a new reference */
    P *src = pact_resolved(t_loop, pact_json(json_incref(j)));
    P *q = take(pact_promise_ref(src));
    char *bytes = strdup("bytes");
    P *r = take(pact_resolved(t_loop, pact_bytes(bytes, 6)));
    run_loop();
    ck_assert_int_eq(C.after, 3);
    ck_assert_ptr_eq(pact_promise_value(p)->u.json, j);
    ck_assert_ptr_eq(pact_promise_value(q)->u.json, j);
    /* j: ours, p's (moved through), src's and q's */
    ck_assert_int_eq(j->refcount, 4);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "n")), 5);
    ck_assert_int_eq(pact_promise_value(r)->kind, PACT_BYTES);
    ck_assert_ptr_eq(pact_promise_value(r)->u.bytes.data, bytes);
    pact_promise_unref(p);
    pact_promise_unref(q);
    pact_promise_unref(r);
    pact_promise_unref(src);
    ck_assert_int_eq(j->refcount, 1);
    json_decref(j);
}
END_TEST

/* ---- interop with tasks -------------------------------------------------- */

/* chain(depth, frame, fail): a chain alternating async functions and tasks,
 * @p depth awaits deep. A link awaits the next one down and fulfils with its
 * value * 10 + its kind (1 for a frame, 2 for a task); the leaf (depth 0)
 * waits 1 ms and fulfils with its kind, or with @p fail rejects. */
static P *chain(int depth, bool frame, bool fail);

static int leaf_line; /* where the leaf's error is made */

static pact_error *leaf_error(void)
{
    C.leaves++;
    leaf_line = __LINE__ + 1;
    return PACT_ERROR(PACT_ETIMEDOUT, "the leaf failed");
}

struct link {
    PACT_ASYNC_FRAME;
    int depth;
    bool fail;
    pact_value v;
};

static pact_error *link_body(pact_async *a, pact_value *result)
{
    struct link *f = (struct link *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    if (f->depth == 0) {
        PACT_ASYNC_TRY(a, pact_delay(pact_async_loop(a), 1, NULL), NULL);
        if (f->fail)
            return leaf_error();
        C.leaves++;
        *result = pact_int(1);
        return NULL;
    }
    PACT_ASYNC_TRY(a, chain(f->depth - 1, false, f->fail), &f->v);
    C.after++;
    *result = pact_int(f->v.u.i * 10 + 1);
    PACT_ASYNC_END(a);
}

#define LINK_ARG(depth, fail) I2P((depth)*2 + (fail))

static pact_error *link_task(void *arg, pact_value *result)
{
    int depth = (int)(P2I(arg) / 2);
    bool fail = P2I(arg) % 2;
    ck_assert_ptr_nonnull(pact_task_current());
    if (depth == 0) {
        pact_error *err = pact_sleep(1);
        ck_assert_ptr_null(err);
        if (fail)
            return leaf_error();
        C.leaves++;
        *result = pact_int(2);
        return NULL;
    }
    /* the throwing form: a rejection unwinds the task */
    pact_value v = PACT_AWAIT(chain(depth - 1, true, fail));
    C.after++;
    *result = pact_int(v.u.i * 10 + 2);
    return NULL;
}

static P *chain(int depth, bool frame, bool fail)
{
    if (!frame)
        return pact_task_spawn(t_loop, link_task, LINK_ARG(depth, fail), NULL);
    struct link *f = new_frame(sizeof *f, link_body);
    f->depth = depth;
    f->fail = fail;
    return start(f);
}

START_TEST(task_awaits_async_chain)
{
    P *p = chain(4, false, false); /* task, frame, task, frame, task */
    run_loop();
    expect_int(p, 21212);
    ck_assert_int_eq(C.leaves, 1);
    ck_assert_int_eq(C.after, 4);
    ck_assert_int_eq(C.entries, 2 * 2); /* two frames, one await each */
    ck_assert_uint_eq(pact_loop_tasks(t_loop), 0);
    pact_promise_unref(p);
}
END_TEST

START_TEST(async_awaits_task_chain)
{
    P *p = chain(4, true, false); /* frame, task, frame, task, frame */
    run_loop();
    expect_int(p, 12121);
    ck_assert_int_eq(C.leaves, 1);
    ck_assert_int_eq(C.after, 4);
    ck_assert_int_eq(C.entries, 3 * 2);
    pact_promise_unref(p);
}
END_TEST

/* The same error object crosses every link, whichever kind each is. */
START_TEST(error_crosses_chain)
{
    P *p = chain(4, false, true);
    P *q = chain(4, true, true);
    P *pc = handle(p);
    P *qc = handle(q);
    run_loop();
    ck_assert_int_eq(C.leaves, 2);
    ck_assert_int_eq(C.after, 0);
    expect_error(p, PACT_ETIMEDOUT, "the leaf failed");
    expect_error(q, PACT_ETIMEDOUT, "the leaf failed");
    ck_assert_int_eq(pact_error_line(pact_promise_error(p)), leaf_line);
    ck_assert_int_eq(pact_error_line(pact_promise_error(q)), leaf_line);
    pact_promise_unref(pc);
    pact_promise_unref(qc);
    pact_promise_unref(p);
    pact_promise_unref(q);
}
END_TEST

/* Each side catches the other's error with its error form. */
static pact_error *catching_task(void *arg, pact_value *result)
{
    (void)arg;
    pact_error *err = PACT_AWAIT_ERR(chain(2, true, true), NULL);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(pact_error_line(err), leaf_line);
    *result = pact_int(pact_error_code(err));
    pact_error_unref(err);
    return NULL;
}

struct catching {
    PACT_ASYNC_FRAME;
    pact_error *err;
};

static pact_error *catching_body(pact_async *a, pact_value *result)
{
    struct catching *f = (struct catching *)a;
    C.entries++;
    PACT_ASYNC_BEGIN(a);
    PACT_ASYNC_AWAIT_ERR(a, chain(2, false, true), NULL, f->err);
    ck_assert_ptr_nonnull(f->err);
    ck_assert_int_eq(pact_error_line(f->err), leaf_line);
    *result = pact_int(pact_error_code(f->err));
    pact_error_unref(f->err);
    PACT_ASYNC_END(a);
}

START_TEST(error_caught_across)
{
    P *p = pact_task_spawn(t_loop, catching_task, NULL, NULL);
    P *q = start(new_frame(sizeof(struct catching), catching_body));
    run_loop();
    ck_assert_int_eq(C.leaves, 2);
    ck_assert_int_eq(C.after, 0);
    expect_int(p, PACT_ETIMEDOUT);
    expect_int(q, PACT_ETIMEDOUT);
    pact_promise_unref(p);
    pact_promise_unref(q);
}
END_TEST

Suite *suite_async(void)
{
    Suite *s = suite_create("async");
    TCase *tc = tcase_create("async");
    tcase_add_checked_fixture(tc, async_setup, t_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, call_runs_body_to_first_await);
    tcase_add_test(tc, result_without_await);
    tcase_add_test(tc, return_error_rejects);
    tcase_add_test(tc, unawaited_rejection_reported);
    tcase_add_test(tc, try_propagates_rejection);
    tcase_add_test(tc, await_err_hands_rejection_to_body);
    tcase_add_test(tc, hundred_thousand_frames);
    tcase_add_test(tc, locals_cross_awaits_in_frame);
    tcase_add_test(tc, settled_await_suspends);
    tcase_add_test(tc, await_unheld_promise_cancelled);
    tcase_add_test(tc, await_promise_dropped_while_waiting);
    tcase_add_test(tc, close_all_cancels_timer_await);
    tcase_add_test(tc, close_all_cancels_later_awaits);
    tcase_add_test(tc, close_all_other_error_reported);
    tcase_add_test(tc, close_all_current_await_quiet);
    tcase_add_test(tc, close_all_cancels_await_on_cycle);
    tcase_add_test(tc, await_null_einval);
    tcase_add_test(tc, await_other_loops_promise_einval);
    tcase_add_test(tc, await_inside_switch_reported);
    tcase_add_test(tc, drop_never_started);
    tcase_add_test(tc, start_twice_refused);
    tcase_add_test(tc, new_and_start_misuse);
    tcase_add_test(tc, owned_value_moved_out);
    tcase_add_test(tc, owned_value_through_chain);
    tcase_add_test(tc, owned_value_shared_einval);
    tcase_add_test(tc, result_before_await_released);
    tcase_add_test(tc, json_and_bytes_values);
    tcase_add_test(tc, task_awaits_async_chain);
    tcase_add_test(tc, async_awaits_task_chain);
    tcase_add_test(tc, error_crosses_chain);
    tcase_add_test(tc, error_caught_across);
    suite_add_tcase(s, tc);
    return s;
}
