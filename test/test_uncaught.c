/* Uncaught errors (pact_loop_raise): by default printed with their cause
 * chain to stderr, the loop stops after the current callback and
 * pact_loop_run returns the code; pact_loop_error keeps it; a hook may handle
 * it (the loop goes on) or decline (the default follows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

/* ---- the default: print, stop, return the code ------------------------- */

struct raiser {
    pact_error *err; /* what was raised (the test keeps a reference) */
    int calls;
};

static void raise_cb(pact_error *e, void *ud)
{
    ck_assert_ptr_null(e);
    struct raiser *r = ud;
    r->calls++;
    pact_error *cause = PACT_ERROR(PACT_ECONNRESET, "peer went away");
    r->err = PACT_ERROR_CAUSE(cause, PACT_EIO, "disk on fire");
    pact_error_unref(cause);
    pact_loop_raise(t_loop, r->err); /* borrowed: the loop keeps its own */
}

START_TEST(raise_stops_run_and_prints)
{
    struct raiser r = {NULL, 0};
    int same_phase = 0, later = 0;
    ck_assert_ptr_null(pact_loop_error(t_loop));
    ck_assert_int_eq(pact_timeout(t_loop, 5, raise_cb, &r, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &same_phase, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 50, count_cb, &later, NULL), 0);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    char *out = capture_end(&cap);

    ck_assert_int_eq(rc, PACT_EIO);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(same_phase, 0); /* stopped after the raising callback */
    ck_assert_int_eq(later, 0);
    char *want = t_error_text(r.err);
    ck_assert_ptr_nonnull(
        strstr(want, "  caused by: ECONNRESET: peer went away"));
    ck_assert_msg(t_count(out, want) == 1, "stderr: '%s'\nwant: '%s'", out,
                  want);
    free(want);
    free(out);

    ck_assert_ptr_eq(pact_loop_error(t_loop), r.err);
    pact_error_unref(r.err); /* the loop's reference keeps it */
    ck_assert_int_eq(pact_error_code(pact_loop_error(t_loop)), PACT_EIO);
    ck_assert_str_eq(pact_error_message(pact_loop_error(t_loop)),
                     "disk on fire");

    /* the loop is still usable: the remaining timers run next time, and
     * that run, ending normally, leaves no error behind */
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(same_phase, 1);
    ck_assert_int_eq(later, 1);
    ck_assert_ptr_null(pact_loop_error(t_loop));
}
END_TEST

/* The main program's turn is a callback too: nothing else runs. */
START_TEST(raise_from_main_turn)
{
    int n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &n, &h), 0);
    pact_error *e = PACT_ERROR(PACT_EPIPE, "main failed");
    struct capture cap;
    capture_begin(&cap);
    pact_loop_raise(t_loop, e);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EPIPE);
    ck_assert_int_eq(n, 0);
    char *want = t_error_text(e);
    ck_assert_msg(t_count(out, want) == 1, "stderr: '%s'", out);
    free(want);
    free(out);
    ck_assert_ptr_eq(pact_loop_error(t_loop), e);
    pact_error_unref(e);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
}
END_TEST

static void raise_in_tick(void *ud)
{
    pact_error *e = PACT_ERROR(PACT_ERANGE);
    pact_loop_raise(t_loop, e);
    pact_error_unref(e);
    ++*(int *)ud;
}

START_TEST(raise_from_tick)
{
    int ticks = 0, n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_next_tick(t_loop, raise_in_tick, &ticks), 0);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_ERANGE);
    ck_assert_int_eq(ticks, 1);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_nonnull(strstr(out, "ERANGE: result out of range (at "));
    free(out);
    ck_assert_int_eq(pact_error_code(pact_loop_error(t_loop)), PACT_ERANGE);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
}
END_TEST

static void post_trace(void *ud)
{
    trace("%s", (const char *)ud);
}

static void post_raise(void *ud)
{
    (void)ud;
    trace("raise");
    pact_error *e = PACT_ERROR(PACT_EPROTO);
    pact_loop_raise(t_loop, e);
    pact_error_unref(e);
}

/* Posts run one callback at a time too: those after the raising one wait
 * for the next run, none is lost or run twice. */
START_TEST(raise_from_post_keeps_the_rest)
{
    ck_assert_int_eq(pact_loop_post(t_loop, post_trace, "p1"), 0);
    ck_assert_int_eq(pact_loop_post(t_loop, post_raise, NULL), 0);
    ck_assert_int_eq(pact_loop_post(t_loop, post_trace, "p3"), 0);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    free(capture_end(&cap));
    ck_assert_int_eq(rc, PACT_EPROTO);
    ck_assert_str_eq(trace_text(), "p1\nraise\n");
    ck_assert(pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "p1\nraise\np3\n");
}
END_TEST

/* ---- hooks ------------------------------------------------------------- */

struct hook_state {
    bool handle;
    int calls, code;
    pact_loop *loop_seen;
    pact_error *err_seen;
};

static bool hook(pact_loop *loop, pact_error *err, void *ud)
{
    struct hook_state *h = ud;
    h->calls++;
    h->loop_seen = loop;
    h->err_seen = err;
    h->code = pact_error_code(err);
    return h->handle;
}

START_TEST(hook_handles_and_loop_goes_on)
{
    struct hook_state hs = {.handle = true};
    struct raiser r = {NULL, 0};
    int same_phase = 0, later = 0;
    ck_assert_int_eq(pact_loop_on_uncaught(t_loop, hook, &hs), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, raise_cb, &r, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &same_phase, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 30, count_cb, &later, NULL), 0);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(hs.calls, 1);
    ck_assert_ptr_eq(hs.loop_seen, t_loop);
    ck_assert_ptr_eq(hs.err_seen, r.err);
    ck_assert_int_eq(hs.code, PACT_EIO);
    ck_assert_int_eq(same_phase, 1);
    ck_assert_int_eq(later, 1);
    ck_assert_str_eq(out, ""); /* handled: nothing printed */
    ck_assert_ptr_null(pact_loop_error(t_loop));
    free(out);
    pact_error_unref(r.err);
}
END_TEST

START_TEST(hook_declines_falls_back)
{
    struct hook_state hs = {.handle = false};
    struct raiser r = {NULL, 0};
    int later = 0;
    pact_handle h;
    ck_assert_int_eq(pact_loop_on_uncaught(t_loop, hook, &hs), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, raise_cb, &r, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 30, count_cb, &later, &h), 0);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EIO);
    ck_assert_int_eq(hs.calls, 1);
    ck_assert_int_eq(later, 0);
    ck_assert_ptr_nonnull(strstr(out, "EIO: disk on fire (at "));
    ck_assert_ptr_eq(pact_loop_error(t_loop), r.err);
    free(out);
    pact_error_unref(r.err);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
}
END_TEST

/* pact_loop_on_uncaught(loop, NULL, NULL) restores the default. */
START_TEST(hook_removed)
{
    struct hook_state hs = {.handle = true};
    struct raiser r = {NULL, 0};
    ck_assert_int_eq(pact_loop_on_uncaught(t_loop, hook, &hs), 0);
    ck_assert_int_eq(pact_loop_on_uncaught(t_loop, NULL, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, raise_cb, &r, NULL), 0);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, PACT_EIO);
    ck_assert_int_eq(hs.calls, 0);
    ck_assert_ptr_nonnull(strstr(out, "EIO: disk on fire"));
    free(out);
    pact_error_unref(r.err);
}
END_TEST

START_TEST(on_uncaught_null_loop)
{
    ck_assert_int_eq(pact_loop_on_uncaught(NULL, hook, NULL), PACT_EINVAL);
}
END_TEST

Suite *suite_uncaught(void)
{
    Suite *s = suite_create("uncaught");
    TCase *tc = tcase_create("default");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, raise_stops_run_and_prints);
    tcase_add_test(tc, raise_from_main_turn);
    tcase_add_test(tc, raise_from_tick);
    tcase_add_test(tc, raise_from_post_keeps_the_rest);
    suite_add_tcase(s, tc);

    TCase *hk = tcase_create("hook");
    tcase_add_checked_fixture(hk, t_setup, t_teardown);
    tcase_add_test(hk, hook_handles_and_loop_goes_on);
    tcase_add_test(hk, hook_declines_falls_back);
    tcase_add_test(hk, hook_removed);
    tcase_add_test(hk, on_uncaught_null_loop);
    suite_add_tcase(s, hk);
    return s;
}
