/* Unhandled rejections, as Node v20's --unhandled-rejections: a rejected
 * promise with no handler by the end of a microtask drain is reported. THROW
 * (the default) raises an uncaught PACT_EUNHANDLED caused by the rejection;
 * WARN prints and goes on; NONE only tells the hook. A handler attached
 * later is PACT_REJECTION_HANDLED. The mode can come from
 * PACT_UNHANDLED_REJECTIONS when the loop is made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "suites.h"

#define ENV_NAME "PACT_UNHANDLED_REJECTIONS"

/* The environment of the runner must not choose the mode for these tests. */
static void u_setup(void)
{
    unsetenv(ENV_NAME);
    t_setup();
}

/* Run @p loop with stderr captured; *out receives what was printed. */
static int run_captured(pact_loop *loop, char **out)
{
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
    *out = capture_end(&cap);
    return rc;
}

static pact_promise *reject_eio(pact_loop *loop)
{
    pact_promise *p = pact_rejected(loop, PACT_ERROR(PACT_EIO, "disk on fire"));
    ck_assert_ptr_nonnull(p);
    return p;
}

struct hook_log {
    bool handle;         /* answer for PACT_REJECTION_UNHANDLED */
    bool handle_handled; /* answer for PACT_REJECTION_HANDLED */
    int n;
    pact_loop *loop[8];
    pact_rejection_event ev[8];
    pact_promise *p[8]; /* compared only */
    int code[8];        /* the promise's error, read during the call */
};

static bool rej_hook(pact_loop *loop, pact_rejection_event ev, pact_promise *p,
                     void *ud)
{
    struct hook_log *h = ud;
    ck_assert_int_lt(h->n, 8);
    h->loop[h->n] = loop;
    h->ev[h->n] = ev;
    h->p[h->n] = p;
    ck_assert_int_eq(pact_promise_state(p), PACT_REJECTED);
    h->code[h->n] = pact_error_code(pact_promise_error(p));
    h->n++;
    trace("%s", ev == PACT_REJECTION_UNHANDLED ? "unhandled" : "handled");
    return ev == PACT_REJECTION_UNHANDLED ? h->handle : h->handle_handled;
}

static pact_value count_fail(pact_error *err, void *ud)
{
    (void)err;
    ++*(int *)ud;
    return pact_nothing();
}

static pact_value count_ok(const pact_value *v, void *ud)
{
    (void)v;
    ++*(int *)ud;
    return pact_nothing();
}

/* ---- THROW, the default -------------------------------------------------- */

/* Reported after the main turn's drain: the run stops with
 * PACT_EUNHANDLED, the chain (with the rejection as cause) is printed once,
 * pact_loop_error keeps it; the next run goes on without a second report. */
START_TEST(throw_stops_and_prints_chain)
{
    int later = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 10, count_cb, &later, NULL), 0);
    pact_promise *p = reject_eio(t_loop);
    char *out;
    int rc = run_captured(t_loop, &out);
    ck_assert_int_eq(rc, PACT_EUNHANDLED);
    ck_assert_int_eq(later, 0);
    pact_error *u = pact_loop_error(t_loop);
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(pact_error_code(u), PACT_EUNHANDLED);
    ck_assert_ptr_eq(pact_error_cause(u), pact_promise_error(p));
    char *want = t_error_text(u);
    ck_assert_ptr_nonnull(strstr(want, "EUNHANDLED"));
    ck_assert_ptr_nonnull(strstr(want, "  caused by: EIO: disk on fire"));
    ck_assert_msg(t_count(out, want) == 1, "stderr: '%s'\nwant: '%s'", out,
                  want);
    free(want);
    free(out);

    rc = run_captured(t_loop, &out);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(later, 1);
    ck_assert_msg(strstr(out, "EUNHANDLED") == NULL, "stderr: '%s'", out);
    ck_assert_ptr_null(pact_loop_error(t_loop));
    free(out);
    pact_promise_unref(p);
}
END_TEST

struct rejector {
    pact_deferred *d;
    pact_promise *p;
};

static void reject_in_timer(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct rejector *r = ud;
    trace("reject");
    ck_assert_int_eq(
        pact_deferred_reject(r->d, PACT_ERROR(PACT_EPIPE, "in a timer")), 0);
}

/* From a macrotask: reported in that callback's drain, and the loop stops
 * after it, as for any uncaught error. */
START_TEST(throw_from_macrotask)
{
    struct rejector r;
    r.d = pact_deferred_new(t_loop, &r.p);
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 5, reject_in_timer, &r, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, trace_cb, "same phase", &h), 0);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), PACT_EUNHANDLED);
    ck_assert_str_eq(trace_text(), "reject\n");
    ck_assert_ptr_nonnull(strstr(out, "caused by: EPIPE: in a timer"));
    ck_assert_int_eq(pact_error_code(pact_error_cause(pact_loop_error(t_loop))),
                     PACT_EPIPE);
    free(out);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
    pact_deferred_unref(r.d);
    pact_promise_unref(r.p);
}
END_TEST

/* Nobody holds the promise any more: still reported (the tracker keeps it
 * for the hook). */
START_TEST(dropped_rejection_still_reported)
{
    struct hook_log h = {.handle = true};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    pact_promise_unref(reject_eio(t_loop));
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_int_eq(h.n, 1);
    ck_assert_int_eq(h.code[0], PACT_EIO);
    free(out);

    ck_assert_int_eq(pact_loop_on_rejection(t_loop, NULL, NULL), 0);
    pact_promise_unref(reject_eio(t_loop));
    ck_assert_int_eq(run_captured(t_loop, &out), PACT_EUNHANDLED);
    ck_assert_ptr_nonnull(strstr(out, "caused by: EIO: disk on fire"));
    free(out);
}
END_TEST

/* ---- handled in time ----------------------------------------------------- */

struct attach {
    pact_promise *p;
    pact_promise *c;
    int caught;
};

static void attach_fn(void *ud)
{
    struct attach *a = ud;
    trace("attach");
    a->c = pact_catch(a->p, count_fail, &a->caught);
}

static void tick_then_attach(void *ud)
{
    ck_assert_int_eq(pact_queue_microtask(t_loop, attach_fn, ud), 0);
}

static void reject_then_tick_attaches(void *ud)
{
    struct attach *a = ud;
    a->p = reject_eio(t_loop);
    ck_assert_int_eq(pact_next_tick(t_loop, attach_fn, a), 0);
}

/* A handler attached anywhere in the same drain (a microtask queued after
 * the rejection; a tick that queues a microtask; a tick queued by the
 * microtask that rejected) is in time: nothing is reported. */
START_TEST(handler_later_in_same_drain)
{
    struct hook_log h = {.handle = false};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    struct attach a1 = {reject_eio(t_loop), NULL, 0};
    ck_assert_int_eq(pact_queue_microtask(t_loop, attach_fn, &a1), 0);
    struct attach a2 = {reject_eio(t_loop), NULL, 0};
    ck_assert_int_eq(pact_next_tick(t_loop, tick_then_attach, &a2), 0);
    struct attach a3 = {NULL, NULL, 0};
    ck_assert_int_eq(
        pact_queue_microtask(t_loop, reject_then_tick_attaches, &a3), 0);
    char *out;
    int rc = run_captured(t_loop, &out);
    ck_assert_msg(rc == 0, "rc %d, stderr '%s'", rc, out);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(h.n, 0);
    ck_assert_int_eq(a1.caught + a2.caught + a3.caught, 3);
    free(out);
    struct attach *all[] = {&a1, &a2, &a3};
    for (int i = 0; i < 3; i++) {
        pact_promise_unref(all[i]->p);
        pact_promise_unref(all[i]->c);
    }
}
END_TEST

static void ignore_cb(pact_error *err, const pact_value *v, void *ud)
{
    (void)v;
    ck_assert_ptr_nonnull(err);
    ++*(int *)ud;
}

/* then with a rejection handler, and pact_promise_callback, count as
 * handlers. */
START_TEST(other_handlers_count)
{
    int n = 0;
    pact_promise *p = reject_eio(t_loop);
    pact_promise *q = pact_then(p, count_ok, count_fail, &n);
    pact_promise *r = reject_eio(t_loop);
    ck_assert_int_eq(pact_promise_callback(r, ignore_cb, &n), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 2);
    pact_promise_unref(p);
    pact_promise_unref(q);
    pact_promise_unref(r);
}
END_TEST

/* Only the leaf of a chain is unhandled: each link handles the one before. */
START_TEST(chain_reports_leaf_only)
{
    struct hook_log h = {.handle = true};
    int ok = 0;
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    pact_promise *p;
    pact_deferred *d = pact_deferred_new(t_loop, &p);
    pact_promise *q = pact_then(p, count_ok, NULL, &ok);
    pact_promise *r = pact_then(q, count_ok, NULL, &ok);
    ck_assert_int_eq(pact_deferred_reject(d, PACT_ERROR(PACT_EIO)), 0);
    pact_deferred_unref(d);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_int_eq(ok, 0);
    ck_assert_int_eq(h.n, 1);
    ck_assert_ptr_eq(h.p[0], r);
    ck_assert_int_eq(h.code[0], PACT_EIO);
    ck_assert_ptr_eq(pact_promise_error(r), pact_promise_error(p));
    free(out);
    pact_promise_unref(p);
    pact_promise_unref(q);
    pact_promise_unref(r);
}
END_TEST

/* Resolving with a rejected promise: the inner one is handled by the
 * adoption, the outer one is what nobody handles. */
START_TEST(adoption_reports_outer)
{
    struct hook_log h = {.handle = true};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    pact_promise *inner = reject_eio(t_loop);
    pact_promise *outer;
    pact_deferred *d = pact_deferred_new(t_loop, &outer);
    ck_assert_int_eq(
        pact_deferred_resolve(d, pact_promise_v(pact_promise_ref(inner))), 0);
    pact_deferred_unref(d);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(h.n, 1);
    ck_assert_ptr_eq(h.p[0], outer);
    pact_promise_unref(inner);
    pact_promise_unref(outer);
}
END_TEST

/* ---- the hook ------------------------------------------------------------ */

/* Handled by the hook: nothing printed, the loop goes on, no loop error. */
START_TEST(hook_handles_loop_goes_on)
{
    struct hook_log h = {.handle = true};
    int later = 0;
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &later, NULL), 0);
    pact_promise *p = reject_eio(t_loop);
    pact_promise *p2 = pact_rejected(t_loop, PACT_ERROR(PACT_EPIPE, "second"));
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(later, 1);
    ck_assert_int_eq(h.n, 2); /* in the order they were rejected */
    ck_assert_ptr_eq(h.loop[0], t_loop);
    ck_assert_int_eq(h.ev[0], PACT_REJECTION_UNHANDLED);
    ck_assert_ptr_eq(h.p[0], p);
    ck_assert_int_eq(h.code[0], PACT_EIO);
    ck_assert_int_eq(h.ev[1], PACT_REJECTION_UNHANDLED);
    ck_assert_ptr_eq(h.p[1], p2);
    ck_assert_int_eq(h.code[1], PACT_EPIPE);
    ck_assert_ptr_null(pact_loop_error(t_loop));
    free(out);
    pact_promise_unref(p);
    pact_promise_unref(p2);
}
END_TEST

START_TEST(hook_declines_throws)
{
    struct hook_log h = {.handle = false};
    int later = 0;
    pact_handle th;
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &later, &th), 0);
    pact_promise *p = reject_eio(t_loop);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), PACT_EUNHANDLED);
    ck_assert_int_eq(h.n, 1);
    ck_assert_int_eq(later, 0);
    ck_assert_ptr_nonnull(strstr(out, "EUNHANDLED"));
    ck_assert_ptr_nonnull(strstr(out, "caused by: EIO: disk on fire"));
    free(out);
    ck_assert_int_eq(pact_clear(t_loop, th), 0);
    pact_promise_unref(p);
}
END_TEST

START_TEST(hook_removed)
{
    struct hook_log h = {.handle = true};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, NULL, NULL), 0);
    pact_promise *p = reject_eio(t_loop);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), PACT_EUNHANDLED);
    ck_assert_int_eq(h.n, 0);
    free(out);
    pact_promise_unref(p);
}
END_TEST

static void attach_in_immediate(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    attach_fn(ud);
}

/* A handler attached in a later macrotask: PACT_REJECTION_HANDLED for the
 * same promise; the hook's true silences the notice. */
START_TEST(hook_sees_handled_later)
{
    struct hook_log h = {.handle = true, .handle_handled = true};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    struct attach a = {reject_eio(t_loop), NULL, 0};
    ck_assert_int_eq(pact_immediate(t_loop, attach_in_immediate, &a, NULL), 0);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_str_eq(trace_text(), "unhandled\nattach\nhandled\n");
    ck_assert_int_eq(h.n, 2);
    ck_assert_int_eq(h.ev[0], PACT_REJECTION_UNHANDLED);
    ck_assert_int_eq(h.ev[1], PACT_REJECTION_HANDLED);
    ck_assert_ptr_eq(h.p[0], a.p);
    ck_assert_ptr_eq(h.p[1], a.p);
    ck_assert_int_eq(a.caught, 1);
    ck_assert_str_eq(out, "");
    free(out);
    pact_promise_unref(a.p);
    pact_promise_unref(a.c);
}
END_TEST

/* The hook declining PACT_REJECTION_HANDLED: the notice is printed. */
START_TEST(hook_declines_handled_notice)
{
    struct hook_log h = {.handle = true, .handle_handled = false};
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    struct attach a = {reject_eio(t_loop), NULL, 0};
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_str_eq(out, "");
    free(out);
    attach_fn(&a);
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_int_eq(h.n, 2);
    ck_assert_int_eq(h.ev[1], PACT_REJECTION_HANDLED);
    ck_assert_msg(strcasestr(out, "handled") != NULL, "stderr: '%s'", out);
    free(out);
    pact_promise_unref(a.p);
    pact_promise_unref(a.c);
}
END_TEST

/* ---- WARN and NONE ------------------------------------------------------- */

/* WARN: printed (with the error), the loop goes on, exit 0; even when the
 * hook says it handled it. */
START_TEST(warn_mode)
{
    for (int with_hook = 0; with_hook < 2; with_hook++) {
        struct hook_log h = {.handle = true};
        int later = 0;
        ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_WARN),
                         0);
        ck_assert_int_eq(
            pact_loop_on_rejection(t_loop, with_hook ? rej_hook : NULL, &h), 0);
        ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &later, NULL), 0);
        pact_promise *p = reject_eio(t_loop);
        char *out;
        ck_assert_int_eq(run_captured(t_loop, &out), 0);
        ck_assert_int_eq(later, 1);
        ck_assert_int_eq(h.n, with_hook ? 1 : 0);
        ck_assert_msg(strstr(out, "disk on fire") != NULL, "stderr: '%s'", out);
        ck_assert_ptr_null(pact_loop_error(t_loop));
        free(out);
        pact_promise_unref(p);
    }
}
END_TEST

/* WARN without a hook: a handler attached later prints a notice. */
START_TEST(warn_handled_notice)
{
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_WARN), 0);
    struct attach a = {reject_eio(t_loop), NULL, 0};
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "disk on fire"));
    free(out);
    attach_fn(&a);
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_int_eq(a.caught, 1);
    ck_assert_msg(strcasestr(out, "handled") != NULL, "stderr: '%s'", out);
    free(out);
    pact_promise_unref(a.p);
    pact_promise_unref(a.c);
}
END_TEST

/* NONE: silent, the loop goes on; the hook still hears of it (and its
 * answer changes nothing). */
START_TEST(none_mode)
{
    for (int with_hook = 0; with_hook < 2; with_hook++) {
        struct hook_log h = {.handle = false};
        int later = 0;
        ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_NONE),
                         0);
        ck_assert_int_eq(
            pact_loop_on_rejection(t_loop, with_hook ? rej_hook : NULL, &h), 0);
        ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &later, NULL), 0);
        pact_promise *p = reject_eio(t_loop);
        char *out;
        ck_assert_int_eq(run_captured(t_loop, &out), 0);
        ck_assert_int_eq(later, 1);
        ck_assert_str_eq(out, "");
        ck_assert_int_eq(h.n, with_hook ? 1 : 0);
        if (with_hook)
            ck_assert_ptr_eq(h.p[0], p);
        free(out);
        pact_promise_unref(p);
    }
}
END_TEST

/* Back to THROW after another mode. */
START_TEST(set_mode_back_to_throw)
{
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_NONE), 0);
    ck_assert_int_eq(pact_loop_set_unhandled(t_loop, PACT_UNHANDLED_THROW), 0);
    pact_promise *p = reject_eio(t_loop);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), PACT_EUNHANDLED);
    free(out);
    pact_promise_unref(p);
}
END_TEST

/* ---- the environment ----------------------------------------------------- */

/* @return what running a loop made under PACT_UNHANDLED_REJECTIONS=@p val
 * (NULL: unset) gives for one unhandled rejection; *out: its stderr. */
static int run_with_env(const char *val, int mode_after, char **out)
{
    if (val)
        ck_assert_int_eq(setenv(ENV_NAME, val, 1), 0);
    else
        unsetenv(ENV_NAME);
    pact_loop *l = NULL;
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_new(&l);
    free(capture_end(&cap));
    unsetenv(ENV_NAME);
    ck_assert_int_eq(rc, 0);
    if (mode_after >= 0)
        ck_assert_int_eq(
            pact_loop_set_unhandled(l, (pact_unhandled_mode)mode_after), 0);
    pact_promise *p = reject_eio(l);
    rc = run_captured(l, out);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_loop_free(l), 0);
    return rc;
}

START_TEST(env_selects_mode)
{
    char *out;
    ck_assert_int_eq(run_with_env("warn", -1, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "disk on fire"));
    free(out);
    ck_assert_int_eq(run_with_env("none", -1, &out), 0);
    ck_assert_str_eq(out, "");
    free(out);
    ck_assert_int_eq(run_with_env("throw", -1, &out), PACT_EUNHANDLED);
    ck_assert_ptr_nonnull(strstr(out, "caused by: EIO: disk on fire"));
    free(out);
    ck_assert_int_eq(run_with_env(NULL, -1, &out), PACT_EUNHANDLED);
    free(out);
    /* the program's call wins over the environment */
    ck_assert_int_eq(run_with_env("none", PACT_UNHANDLED_THROW, &out),
                     PACT_EUNHANDLED);
    free(out);
}
END_TEST

START_TEST(env_invalid_ignored)
{
    static const char *const bad[] = {"bogus", "", "WARN1", "strict-ish"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out;
        int rc = run_with_env(bad[i], -1, &out);
        ck_assert_msg(rc == PACT_EUNHANDLED, "'%s': rc %d", bad[i], rc);
        free(out);
    }
}
END_TEST

/* Read when the loop is made, not later. */
START_TEST(env_read_at_creation)
{
    ck_assert_int_eq(setenv(ENV_NAME, "none", 1), 0);
    pact_promise *p = reject_eio(t_loop);
    char *out;
    int rc = run_captured(t_loop, &out);
    unsetenv(ENV_NAME);
    ck_assert_int_eq(rc, PACT_EUNHANDLED);
    free(out);
    pact_promise_unref(p);
}
END_TEST

/* ---- with the uncaught hook ---------------------------------------------- */

struct uncaught_log {
    bool handle;
    int calls, code, cause_code;
};

static bool uncaught_hook(pact_loop *loop, pact_error *err, void *ud)
{
    (void)loop;
    struct uncaught_log *u = ud;
    u->calls++;
    u->code = pact_error_code(err);
    u->cause_code =
        pact_error_cause(err) ? pact_error_code(pact_error_cause(err)) : 0;
    return u->handle;
}

/* THROW goes through the uncaught-error path: its hook sees EUNHANDLED
 * caused by the rejection and can handle it. */
START_TEST(uncaught_hook_handles)
{
    struct uncaught_log u = {.handle = true};
    int later = 0;
    ck_assert_int_eq(pact_loop_on_uncaught(t_loop, uncaught_hook, &u), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &later, NULL), 0);
    pact_promise *p = reject_eio(t_loop);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    ck_assert_int_eq(u.calls, 1);
    ck_assert_int_eq(u.code, PACT_EUNHANDLED);
    ck_assert_int_eq(u.cause_code, PACT_EIO);
    ck_assert_int_eq(later, 1);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_null(pact_loop_error(t_loop));
    free(out);
    pact_promise_unref(p);
}
END_TEST

START_TEST(uncaught_hook_declines)
{
    struct uncaught_log u = {.handle = false};
    ck_assert_int_eq(pact_loop_on_uncaught(t_loop, uncaught_hook, &u), 0);
    pact_promise *p = reject_eio(t_loop);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), PACT_EUNHANDLED);
    ck_assert_int_eq(u.calls, 1);
    ck_assert_ptr_nonnull(strstr(out, "caused by: EIO: disk on fire"));
    free(out);
    pact_promise_unref(p);
}
END_TEST

/* The rejection hook handling it first: nothing is raised. WARN and NONE
 * raise nothing either. */
START_TEST(uncaught_hook_not_called_when_handled)
{
    struct uncaught_log u = {.handle = false};
    struct hook_log h = {.handle = true};
    ck_assert_int_eq(pact_loop_on_uncaught(t_loop, uncaught_hook, &u), 0);
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, rej_hook, &h), 0);
    pact_promise *p = reject_eio(t_loop);
    char *out;
    ck_assert_int_eq(run_captured(t_loop, &out), 0);
    free(out);
    pact_promise_unref(p);
    ck_assert_int_eq(pact_loop_on_rejection(t_loop, NULL, NULL), 0);
    for (int m = PACT_UNHANDLED_WARN; m <= PACT_UNHANDLED_NONE; m++) {
        ck_assert_int_eq(
            pact_loop_set_unhandled(t_loop, (pact_unhandled_mode)m), 0);
        p = reject_eio(t_loop);
        ck_assert_int_eq(run_captured(t_loop, &out), 0);
        free(out);
        pact_promise_unref(p);
    }
    ck_assert_int_eq(h.n, 1);
    ck_assert_int_eq(u.calls, 0);
}
END_TEST

Suite *suite_unhandled(void)
{
    Suite *s = suite_create("unhandled");
    TCase *tc = tcase_create("throw");
    tcase_add_checked_fixture(tc, u_setup, t_teardown);
    tcase_add_test(tc, throw_stops_and_prints_chain);
    tcase_add_test(tc, throw_from_macrotask);
    tcase_add_test(tc, dropped_rejection_still_reported);
    tcase_add_test(tc, handler_later_in_same_drain);
    tcase_add_test(tc, other_handlers_count);
    tcase_add_test(tc, chain_reports_leaf_only);
    tcase_add_test(tc, adoption_reports_outer);
    suite_add_tcase(s, tc);

    tc = tcase_create("hook");
    tcase_add_checked_fixture(tc, u_setup, t_teardown);
    tcase_add_test(tc, hook_handles_loop_goes_on);
    tcase_add_test(tc, hook_declines_throws);
    tcase_add_test(tc, hook_removed);
    tcase_add_test(tc, hook_sees_handled_later);
    tcase_add_test(tc, hook_declines_handled_notice);
    suite_add_tcase(s, tc);

    tc = tcase_create("modes");
    tcase_add_checked_fixture(tc, u_setup, t_teardown);
    tcase_add_test(tc, warn_mode);
    tcase_add_test(tc, warn_handled_notice);
    tcase_add_test(tc, none_mode);
    tcase_add_test(tc, set_mode_back_to_throw);
    tcase_add_test(tc, env_selects_mode);
    tcase_add_test(tc, env_invalid_ignored);
    tcase_add_test(tc, env_read_at_creation);
    suite_add_tcase(s, tc);

    tc = tcase_create("uncaught");
    tcase_add_checked_fixture(tc, u_setup, t_teardown);
    tcase_add_test(tc, uncaught_hook_handles);
    tcase_add_test(tc, uncaught_hook_declines);
    tcase_add_test(tc, uncaught_hook_not_called_when_handled);
    suite_add_tcase(s, tc);
    return s;
}
