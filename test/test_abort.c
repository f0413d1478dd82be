/* Abort tokens (AbortController + AbortSignal): state and reason, reason
 * reference counts, listeners run synchronously in order with EventTarget's
 * rules for listeners added or removed during dispatch, and the
 * self-aborting pact_abort_timeout with its unreferenced timer. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "suites.h"

/* ---- state and reason -------------------------------------------------- */

START_TEST(new_then_abort_default_reason)
{
    pact_abort *a = NULL;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    ck_assert_ptr_nonnull(a);
    ck_assert(!pact_abort_aborted(a));
    ck_assert_ptr_null(pact_abort_reason(a));
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert(pact_abort_aborted(a));
    pact_error *r = pact_abort_reason(a);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(pact_error_code(r), PACT_ECANCELED);
    ck_assert_str_eq(pact_error_message(r), "This operation was aborted");
    pact_abort_unref(a);
}
END_TEST

/* The token takes its own reference: the caller may drop the reason at once,
 * and the token's reference is dropped with the token (valgrind/ASan check
 * both sides). */
START_TEST(custom_reason_is_borrowed)
{
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_error *reason = PACT_ERROR(PACT_EIO, "disk gone");
    ck_assert_int_eq(pact_abort_abort(a, reason), 0);
    pact_error_unref(reason);
    ck_assert_ptr_eq(pact_abort_reason(a), reason);
    ck_assert_int_eq(pact_error_code(pact_abort_reason(a)), PACT_EIO);
    ck_assert_str_eq(pact_error_message(pact_abort_reason(a)), "disk gone");
    pact_abort_unref(a);
}
END_TEST

static void count_listener(pact_error *reason, void *ud)
{
    ck_assert_ptr_nonnull(reason);
    ++*(int *)ud;
}

START_TEST(abort_twice_is_ealready)
{
    pact_abort *a;
    int n = 0;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    ck_assert_int_eq(pact_abort_on(a, count_listener, &n, NULL), 0);
    pact_error *first = PACT_ERROR(PACT_EIO);
    pact_error *second = PACT_ERROR(PACT_EPIPE);
    ck_assert_int_eq(pact_abort_abort(a, first), 0);
    ck_assert_int_eq(pact_abort_abort(a, second), PACT_EALREADY);
    ck_assert_int_eq(pact_abort_abort(a, NULL), PACT_EALREADY);
    ck_assert_ptr_eq(pact_abort_reason(a), first); /* nothing changed */
    ck_assert_int_eq(n, 1); /* listeners ran for the first abort only */
    pact_error_unref(first);
    pact_error_unref(second);
    pact_abort_unref(a);
}
END_TEST

START_TEST(ref_unref)
{
    pact_abort *a;
    ck_assert_ptr_null(pact_abort_ref(NULL));
    pact_abort_unref(NULL);
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    ck_assert_ptr_eq(pact_abort_ref(a), a);
    pact_abort_unref(a);
    ck_assert(!pact_abort_aborted(a)); /* one reference left */
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    pact_abort_unref(a);
}
END_TEST

START_TEST(null_arguments)
{
    pact_abort *a;
    ck_assert_int_eq(pact_abort_new(t_loop, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_abort_new(NULL, &a), PACT_EINVAL);
    ck_assert_int_eq(pact_abort_timeout(t_loop, 10, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    ck_assert_int_eq(pact_abort_on(a, NULL, NULL, NULL), PACT_EINVAL);
    pact_abort_unref(a);
}
END_TEST

/* ---- listeners --------------------------------------------------------- */

struct listen {
    pact_abort *token;
    pact_error *reason_seen[8];
    uint64_t ids[8];
    int off_rc, on_rc, late_calls;
};

static void record(struct listen *l, int i, pact_error *reason)
{
    l->reason_seen[i] = reason;
    trace("l%d", i);
}

static void l0(pact_error *r, void *ud)
{
    record(ud, 0, r);
}

static void l1(pact_error *r, void *ud)
{
    record(ud, 1, r);
}

static void l2(pact_error *r, void *ud)
{
    record(ud, 2, r);
}

static void late(pact_error *r, void *ud)
{
    (void)r;
    struct listen *l = ud;
    l->late_calls++;
}

START_TEST(listeners_sync_in_order)
{
    static struct listen l;
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(pact_abort_new(t_loop, &l.token), 0);
    ck_assert_int_eq(pact_abort_on(l.token, l2, &l, &l.ids[2]), 0);
    ck_assert_int_eq(pact_abort_on(l.token, l0, &l, &l.ids[0]), 0);
    ck_assert_int_eq(pact_abort_on(l.token, l1, &l, &l.ids[1]), 0);
    ck_assert(l.ids[0] != l.ids[1] && l.ids[1] != l.ids[2]);
    pact_error *reason = PACT_ERROR(PACT_ETIMEDOUT);
    ck_assert_int_eq(pact_abort_abort(l.token, reason), 0);
    ck_assert_str_eq(trace_text(), "l2\nl0\nl1\n"); /* before abort returned */
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(l.reason_seen[i], reason);
    /* once aborted, a new listener is never called */
    ck_assert_int_eq(pact_abort_on(l.token, late, &l, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(l.late_calls, 0);
    pact_error_unref(reason);
    pact_abort_unref(l.token);
}
END_TEST

static void removes_l2(pact_error *r, void *ud)
{
    struct listen *l = ud;
    record(l, 0, r);
    l->off_rc = pact_abort_off(l->token, l->ids[2]);
}

START_TEST(listener_removed_during_dispatch_skipped)
{
    static struct listen l;
    memset(&l, 0, sizeof l);
    l.off_rc = 1;
    ck_assert_int_eq(pact_abort_new(t_loop, &l.token), 0);
    ck_assert_int_eq(pact_abort_on(l.token, removes_l2, &l, &l.ids[0]), 0);
    ck_assert_int_eq(pact_abort_on(l.token, l1, &l, &l.ids[1]), 0);
    ck_assert_int_eq(pact_abort_on(l.token, l2, &l, &l.ids[2]), 0);
    ck_assert_int_eq(pact_abort_abort(l.token, NULL), 0);
    ck_assert_int_eq(l.off_rc, 0);
    ck_assert_str_eq(trace_text(), "l0\nl1\n");
    pact_abort_unref(l.token);
}
END_TEST

static void adds_late(pact_error *r, void *ud)
{
    struct listen *l = ud;
    record(l, 0, r);
    l->on_rc = pact_abort_on(l->token, late, l, NULL);
}

START_TEST(listener_added_during_dispatch_not_called)
{
    static struct listen l;
    memset(&l, 0, sizeof l);
    l.on_rc = 1;
    ck_assert_int_eq(pact_abort_new(t_loop, &l.token), 0);
    ck_assert_int_eq(pact_abort_on(l.token, adds_late, &l, NULL), 0);
    ck_assert_int_eq(pact_abort_on(l.token, l1, &l, NULL), 0);
    ck_assert_int_eq(pact_abort_abort(l.token, NULL), 0);
    ck_assert_int_eq(l.on_rc, 0);
    ck_assert_str_eq(trace_text(), "l0\nl1\n");
    ck_assert_int_eq(l.late_calls, 0);
    pact_abort_unref(l.token); /* frees the late listener too */
}
END_TEST

START_TEST(off_bad_id)
{
    static struct listen l;
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(pact_abort_new(t_loop, &l.token), 0);
    ck_assert_int_eq(pact_abort_off(l.token, 12345), PACT_ENOENT);
    ck_assert_int_eq(pact_abort_on(l.token, l0, &l, &l.ids[0]), 0);
    ck_assert_int_eq(pact_abort_on(l.token, l1, &l, &l.ids[1]), 0);
    ck_assert_int_eq(pact_abort_off(l.token, l.ids[0] + l.ids[1] + 1000),
                     PACT_ENOENT);
    ck_assert_int_eq(pact_abort_off(l.token, l.ids[0]), 0);
    ck_assert_int_eq(pact_abort_off(l.token, l.ids[0]), PACT_ENOENT);
    ck_assert_int_eq(pact_abort_abort(l.token, NULL), 0);
    ck_assert_str_eq(trace_text(), "l1\n");
    pact_abort_unref(l.token);
}
END_TEST

static void drops_token(pact_error *r, void *ud)
{
    struct listen *l = ud;
    record(l, 0, r);
    pact_abort_unref(l->token); /* the last reference, mid-dispatch */
}

/* The library holds the token across each listener: dropping the last
 * reference inside one must not free it under the dispatch. */
START_TEST(last_reference_dropped_in_listener)
{
    static struct listen l;
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(pact_abort_new(t_loop, &l.token), 0);
    ck_assert_int_eq(pact_abort_on(l.token, drops_token, &l, NULL), 0);
    ck_assert_int_eq(pact_abort_on(l.token, l1, &l, NULL), 0);
    pact_abort *a = l.token;
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert_str_eq(trace_text(), "l0\nl1\n");
    ck_assert_ptr_eq(l.reason_seen[1], l.reason_seen[0]);
}
END_TEST

/* ---- pact_abort_timeout ------------------------------------------------ */

struct on_timeout {
    pact_abort *token;
    uint64_t start_us, fired_us;
    int calls, code, aborted_then;
};

static void timeout_listener(pact_error *r, void *ud)
{
    struct on_timeout *t = ud;
    t->calls++;
    t->fired_us = now_us();
    t->code = pact_error_code(r);
    t->aborted_then = pact_abort_aborted(t->token);
}

START_TEST(timeout_aborts_with_etimedout)
{
    struct on_timeout t = {.start_us = now_us()};
    int kept = 0;
    ck_assert_int_eq(pact_abort_timeout(t_loop, 10, &t.token), 0);
    ck_assert(!pact_abort_aborted(t.token));
    ck_assert_int_eq(pact_abort_on(t.token, timeout_listener, &t, NULL), 0);
    /* the token's timer does not keep the loop alive: this timer does */
    ck_assert_int_eq(pact_timeout(t_loop, 40, count_cb, &kept, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(kept, 1);
    ck_assert_int_eq(t.calls, 1);
    ck_assert_int_eq(t.code, PACT_ETIMEDOUT);
    ck_assert(t.aborted_then);
    ck_assert_uint_ge(t.fired_us - t.start_us, 10000);
    ck_assert_int_eq(pact_error_code(pact_abort_reason(t.token)),
                     PACT_ETIMEDOUT);
    pact_abort_unref(t.token);
}
END_TEST

START_TEST(timeout_does_not_keep_alive)
{
    struct on_timeout t = {.start_us = now_us()};
    ck_assert_int_eq(pact_abort_timeout(t_loop, 3600000, &t.token), 0);
    ck_assert_int_eq(pact_abort_on(t.token, timeout_listener, &t, NULL), 0);
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.calls, 0);
    ck_assert(!pact_abort_aborted(t.token));
    /* clears the timer, so the teardown's free succeeds */
    pact_abort_unref(t.token);
}
END_TEST

/* Dropping the token before its time clears its timer: it never fires, the
 * listener is never called, and the loop frees (the fixture checks). */
START_TEST(dropped_token_clears_timer)
{
    struct on_timeout t = {.start_us = now_us()};
    int kept = 0;
    ck_assert_int_eq(pact_abort_timeout(t_loop, 10, &t.token), 0);
    ck_assert_int_eq(pact_abort_on(t.token, timeout_listener, &t, NULL), 0);
    pact_abort_unref(t.token);
    t.token = NULL;
    ck_assert_int_eq(pact_timeout(t_loop, 40, count_cb, &kept, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(kept, 1);
    ck_assert_int_eq(t.calls, 0);
}
END_TEST

/* Aborting a timeout token by hand first: the timer's own abort must not
 * follow (it would be a second abort). */
START_TEST(timeout_token_aborted_by_hand)
{
    struct on_timeout t = {.start_us = now_us()};
    int kept = 0;
    ck_assert_int_eq(pact_abort_timeout(t_loop, 10, &t.token), 0);
    ck_assert_int_eq(pact_abort_on(t.token, timeout_listener, &t, NULL), 0);
    ck_assert_int_eq(pact_abort_abort(t.token, NULL), 0);
    ck_assert_int_eq(t.calls, 1);
    ck_assert_int_eq(t.code, PACT_ECANCELED);
    ck_assert_int_eq(pact_timeout(t_loop, 40, count_cb, &kept, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(kept, 1);
    ck_assert_int_eq(t.calls, 1);
    ck_assert_int_eq(pact_error_code(pact_abort_reason(t.token)),
                     PACT_ECANCELED);
    pact_abort_unref(t.token);
}
END_TEST

Suite *suite_abort(void)
{
    Suite *s = suite_create("abort");
    TCase *st = tcase_create("state");
    tcase_add_checked_fixture(st, t_setup, t_teardown);
    tcase_add_test(st, new_then_abort_default_reason);
    tcase_add_test(st, custom_reason_is_borrowed);
    tcase_add_test(st, abort_twice_is_ealready);
    tcase_add_test(st, ref_unref);
    tcase_add_test(st, null_arguments);
    suite_add_tcase(s, st);

    TCase *ls = tcase_create("listeners");
    tcase_add_checked_fixture(ls, t_setup, t_teardown);
    tcase_add_test(ls, listeners_sync_in_order);
    tcase_add_test(ls, listener_removed_during_dispatch_skipped);
    tcase_add_test(ls, listener_added_during_dispatch_not_called);
    tcase_add_test(ls, off_bad_id);
    tcase_add_test(ls, last_reference_dropped_in_listener);
    suite_add_tcase(s, ls);

    TCase *tm = tcase_create("timeout");
    tcase_add_checked_fixture(tm, t_setup, t_teardown);
    tcase_add_test(tm, timeout_aborts_with_etimedout);
    tcase_add_test(tm, timeout_does_not_keep_alive);
    tcase_add_test(tm, dropped_token_clears_timer);
    tcase_add_test(tm, timeout_token_aborted_by_hand);
    suite_add_tcase(s, tm);
    return s;
}
