/* Timers and immediates: never early, 0 as 1 ms, insertion order for equal
 * delays, intervals, clearing (twice, after firing, from other callbacks),
 * refresh, abort tokens, and many timers at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "suites.h"

/* ---- timing ------------------------------------------------------------ */

struct timed {
    uint64_t delay_ms, set_us, fired_us;
    int n;
};

static void timed_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct timed *t = ud;
    t->fired_us = now_us();
    t->n++;
}

/* The start time is read before the call, so the measured wait is, if
 * anything, longer than the timer's: any shortfall is a real early fire. */
static void start_timed(struct timed *t)
{
    t->set_us = now_us();
    ck_assert_int_eq(pact_timeout(t_loop, t->delay_ms, timed_cb, t, NULL), 0);
}

static void assert_not_early(const struct timed *t, uint64_t min_ms)
{
    ck_assert_int_eq(t->n, 1);
    uint64_t waited = t->fired_us - t->set_us;
    ck_assert_msg(waited >= min_ms * 1000, "delay %llu ms fired after %llu us",
                  (unsigned long long)t->delay_ms, (unsigned long long)waited);
}

START_TEST(never_early)
{
    struct timed t[] = {{1, 0, 0, 0},  {2, 0, 0, 0},  {5, 0, 0, 0},
                        {10, 0, 0, 0}, {25, 0, 0, 0}, {50, 0, 0, 0}};
    size_t n = sizeof t / sizeof t[0];
    for (size_t i = 0; i < n; i++)
        start_timed(&t[i]);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    for (size_t i = 0; i < n; i++)
        assert_not_early(&t[i], t[i].delay_ms);
}
END_TEST

struct chain {
    struct timed t;
    int left;
};

static void chain_cb(pact_error *err, void *ud)
{
    struct chain *c = ud;
    timed_cb(err, &c->t);
    assert_not_early(&c->t, c->t.delay_ms);
    c->t.n = 0;
    if (--c->left > 0) {
        c->t.set_us = now_us();
        ck_assert_int_eq(pact_timeout(t_loop, c->t.delay_ms, chain_cb, c, NULL),
                         0);
    }
}

/* Timers set from inside a callback are not early either, round after round. */
START_TEST(never_early_from_callbacks)
{
    struct chain c = {{3, 0, 0, 0}, 20};
    c.t.set_us = now_us();
    ck_assert_int_eq(pact_timeout(t_loop, 3, chain_cb, &c, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.left, 0);
}
END_TEST

START_TEST(zero_is_one_ms)
{
    struct timed t = {0, 0, 0, 0};
    start_timed(&t);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    assert_not_early(&t, 1);
}
END_TEST

/* If 0 were shorter than 1, the second timer would overtake the first. */
START_TEST(zero_keeps_order_with_one)
{
    ck_assert_int_eq(pact_timeout(t_loop, 1, trace_cb, "one", NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 0, trace_cb, "zero", NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, trace_cb, "one again", NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "one\nzero\none again\n");
}
END_TEST

static void trace_index(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    trace("%d", (int)(intptr_t)ud);
}

START_TEST(equal_delays_in_insertion_order)
{
    char want[1024] = "";
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(
            pact_timeout(t_loop, 5, trace_index, (void *)(intptr_t)i, NULL), 0);
        snprintf(want + strlen(want), sizeof want - strlen(want), "%d\n", i);
    }
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), want);
}
END_TEST

/* Each timer starts at its own call (as Node's, which reads the clock in
 * every setTimeout): delays 100 ms apart, so that a loaded machine pausing
 * the process between two calls cannot reorder them (10 ms apart, it did). */
START_TEST(shorter_delays_first)
{
    ck_assert_int_eq(pact_timeout(t_loop, 300, trace_cb, "300", NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 100, trace_cb, "100", NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 200, trace_cb, "200", NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 100, trace_cb, "100b", NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "100\n100b\n200\n300\n");
}
END_TEST

/* The delays are signed (a negative one once became a huge unsigned value
 * refused with PACT_ERANGE): as Node, below 1 is 1 ms, and above
 * PACT_TIMEOUT_MAX is 1 ms with one TimeoutOverflowWarning per call. The
 * order against Node's is test/fixtures/order/timer_clamp. */
START_TEST(delay_clamped_as_node)
{
    int n = 0;
    ck_assert_int_eq(pact_timeout(t_loop, -5, count_cb, &n, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, INT64_MIN, count_cb, &n, NULL), 0);
    struct capture cap;
    capture_begin(&cap);
    int rc = pact_timeout(t_loop, PACT_TIMEOUT_MAX + 1, count_cb, &n, NULL);
    pact_timer_opts o = {.delay_ms = INT64_MAX, .repeat_ms = INT64_MAX};
    pact_handle iv = {0};
    int rc2 = pact_timer_start(t_loop, &o, count_cb, &n, &iv);
    char *out = capture_end(&cap);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(rc2, 0);
    ck_assert_int_eq(t_count(out, "TimeoutOverflowWarning"), 2);
    free(out);
    /* a maximal delay is taken as it is, without a warning */
    pact_handle max = {0};
    capture_begin(&cap);
    rc = pact_timeout(t_loop, PACT_TIMEOUT_MAX, count_cb, &n, &max);
    out = capture_end(&cap);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out, "");
    free(out);
    ck_assert_int_eq(pact_clear(t_loop, max), 0);
    ck_assert_int_eq(pact_clear(t_loop, iv), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 3);
}
END_TEST

/* An interval with a negative or overflowing period repeats every 1 ms. */
static void stop_at_three(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    pact_handle *h = ud;
    static int n;
    if (++n == 3) {
        n = 0;
        ck_assert_int_eq(pact_clear(t_loop, *h), 0);
    }
    trace("tick");
}

START_TEST(interval_negative_period)
{
    pact_handle h;
    ck_assert_int_eq(pact_interval(t_loop, -100, stop_at_three, &h, &h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "tick\ntick\ntick\n");
}
END_TEST

/* ---- intervals --------------------------------------------------------- */

struct ticker {
    pact_handle h;
    uint64_t start_us;
    uint64_t ms;
    int n, stop_at;
};

static void ticker_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct ticker *t = ud;
    t->n++;
    /* the k-th call comes no sooner than k intervals after the start */
    ck_assert_uint_ge(now_us() - t->start_us, t->n * t->ms * 1000);
    if (t->n == t->stop_at) {
        ck_assert_int_eq(pact_clear(t_loop, t->h), 0);
        /* gone at once, though its callback is still running */
        ck_assert_int_eq(pact_clear(t_loop, t->h), PACT_ENOENT);
        ck_assert_int_eq(pact_has_ref(t_loop, t->h), PACT_ENOENT);
    }
}

START_TEST(interval_repeats_and_clears_itself)
{
    struct ticker t = {{0}, now_us(), 3, 0, 5};
    ck_assert_int_eq(pact_interval(t_loop, 3, ticker_cb, &t, &t.h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.n, 5);
    ck_assert_int_eq(pact_clear(t_loop, t.h), PACT_ENOENT);
}
END_TEST

/* clearTimeout(t) inside t's own callback is harmless in Node; pact_clear
 * of a one-shot timer there is 0 (it was PACT_ENOENT), as for an interval,
 * in its callback and in the tick that follows it; afterwards the handle is
 * gone (PACT_ENOENT), and a timer set in the callback is its own handle. */
struct once_clear {
    pact_handle h, other;
    int calls;
};

static void clear_self_tick(void *ud)
{
    struct once_clear *c = ud;
    ck_assert_int_eq(pact_clear(t_loop, c->h), 0);
}

static void clear_self_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct once_clear *c = ud;
    c->calls++;
    /* a timer made here may take the freed slot: it stays a handle apart */
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &c->calls, &c->other),
                     0);
    ck_assert_int_eq(pact_clear(t_loop, c->h), 0);
    ck_assert_int_eq(pact_next_tick(t_loop, clear_self_tick, c), 0);
}

START_TEST(timeout_clears_itself)
{
    struct once_clear c = {{0}, {0}, 0};
    ck_assert_int_eq(pact_timeout(t_loop, 1, clear_self_cb, &c, &c.h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.calls, 2); /* the other timer was not cleared */
    ck_assert_int_eq(pact_clear(t_loop, c.h), PACT_ENOENT);
}
END_TEST

/* repeat_ms through pact_timer_start; the first expiry is delay_ms. */
START_TEST(timer_start_with_repeat)
{
    struct ticker t = {{0}, now_us(), 2, 0, 4};
    pact_timer_opts o = {.delay_ms = 2, .repeat_ms = 2};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, ticker_cb, &t, &t.h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.n, 4);
}
END_TEST

/* ---- clearing ---------------------------------------------------------- */

START_TEST(clear_twice)
{
    int n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 3600000, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
    ck_assert_int_eq(pact_clear(t_loop, h), PACT_ENOENT);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* Aborted: the ECANCELED delivery is queued; one clear suppresses it and the
 * handle is gone from then on. */
START_TEST(clear_twice_while_cancel_queued)
{
    int n = 0;
    pact_abort *a;
    pact_handle h;
    ck_assert_int_eq(pact_abort_new(t_loop, &a), 0);
    pact_timer_opts o = {.delay_ms = 100, .abort = a};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_abort_abort(a, NULL), 0);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
    ck_assert_int_eq(pact_clear(t_loop, h), PACT_ENOENT);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 0); /* count_cb would also fail on the error */
    pact_abort_unref(a);
}
END_TEST

START_TEST(clear_after_fire)
{
    int n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(pact_clear(t_loop, h), PACT_ENOENT);
    ck_assert_int_eq(pact_clear(t_loop, (pact_handle){0}), PACT_ENOENT);
}
END_TEST

struct self_clear {
    pact_handle h;
    int n, rc;
};

static void self_clear_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct self_clear *s = ud;
    s->n++;
    s->rc = pact_clear(t_loop, s->h);
}

/* A one-shot's handle is spent once its callback starts, but clearing it
 * there is harmless, as clearTimeout: 0 (see timeout_clears_itself). */
START_TEST(clear_inside_own_timeout)
{
    struct self_clear s = {{0}, 0, 1};
    ck_assert_int_eq(pact_timeout(t_loop, 1, self_clear_cb, &s, &s.h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.rc, 0);
    ck_assert_int_eq(pact_clear(t_loop, s.h), PACT_ENOENT);
}
END_TEST

struct clearer {
    pact_handle victim;
    int n, rc;
};

static void clearer_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct clearer *c = ud;
    c->n++;
    c->rc = pact_clear(t_loop, c->victim);
}

START_TEST(clear_from_other_timer)
{
    struct clearer c = {{0}, 0, 1};
    int victim = 0;
    ck_assert_int_eq(
        pact_timeout(t_loop, 3600000, count_cb, &victim, &c.victim), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, clearer_cb, &c, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(victim, 0);
}
END_TEST

/* Both are due in the same timers phase; the first clears the second. */
START_TEST(clear_timer_due_in_same_phase)
{
    struct clearer c = {{0}, 0, 1};
    int victim = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 5, clearer_cb, &c, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &victim, &c.victim), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(victim, 0);
}
END_TEST

/* The interval's second tick sets a 20 ms timeout that clears it: at least
 * two ticks whatever the load, and never more than 2 + 20/2 + 1 since an
 * interval never fires early and fires at most once per timers phase. */
struct ticks_then_clear {
    struct clearer c;
    int ticks;
};

static void tick_then_arm_clearer(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct ticks_then_clear *t = ud;
    if (++t->ticks == 2)
        ck_assert_int_eq(pact_timeout(t_loop, 20, clearer_cb, &t->c, NULL), 0);
}

START_TEST(clear_interval_from_timeout)
{
    struct ticks_then_clear t = {{{0}, 0, 1}, 0};
    ck_assert_int_eq(
        pact_interval(t_loop, 2, tick_then_arm_clearer, &t, &t.c.victim), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.c.n, 1);
    ck_assert_int_eq(t.c.rc, 0);
    ck_assert_int_ge(t.ticks, 2);
    ck_assert_int_le(t.ticks, 13);
}
END_TEST

/* ---- refresh ----------------------------------------------------------- */

struct refresher {
    pact_handle target;
    uint64_t refreshed_us;
    int rc;
};

static void refresher_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct refresher *r = ud;
    r->refreshed_us = now_us();
    r->rc = pact_timer_refresh(t_loop, r->target);
}

START_TEST(refresh_restarts_delay)
{
    struct timed t = {40, 0, 0, 0};
    struct refresher r = {{0}, 0, 1};
    /* the refresher first: started second, a paused test could find the
     * 40 ms target due before it */
    t.set_us = now_us();
    ck_assert_int_eq(pact_timeout(t_loop, 20, refresher_cb, &r, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 40, timed_cb, &t, &r.target), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_uint_ge(t.fired_us - r.refreshed_us, 40000);
    ck_assert_uint_ge(t.fired_us - t.set_us, 60000);
    ck_assert_int_eq(pact_timer_refresh(t_loop, r.target), PACT_ENOENT);
}
END_TEST

START_TEST(refresh_cleared)
{
    int n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timer_refresh(t_loop, (pact_handle){0}), PACT_ENOENT);
    ck_assert_int_eq(pact_timeout(t_loop, 10, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
    ck_assert_int_eq(pact_timer_refresh(t_loop, h), PACT_ENOENT);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* An immediate has no delay to restart: that is a wrong kind of handle
 * (PACT_EINVAL), not a missing one (it said PACT_ENOENT). */
START_TEST(refresh_immediate_einval)
{
    int n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_immediate(t_loop, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_timer_refresh(t_loop, h), PACT_EINVAL);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1); /* and it still runs */
    ck_assert_int_eq(pact_timer_refresh(t_loop, h), PACT_ENOENT);
}
END_TEST

/* ---- abort tokens ------------------------------------------------------ */

struct aborted_timer {
    pact_error *cause; /* borrowed pointer, compared only */
    int n, code, calls_before_abort_returned;
};

static void aborted_cb(pact_error *err, void *ud)
{
    struct aborted_timer *a = ud;
    a->n++;
    a->code = err ? pact_error_code(err) : 0;
    a->cause = err ? pact_error_cause(err) : NULL;
}

struct aborter {
    pact_abort *token;
    pact_error *reason;
    struct aborted_timer *victim;
    int rc;
};

static void aborter_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct aborter *ab = ud;
    ab->rc = pact_abort_abort(ab->token, ab->reason);
    /* callbacks are never called from inside the call that caused them */
    ab->victim->calls_before_abort_returned = ab->victim->n;
}

START_TEST(abort_cancels_timer)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    pact_error *reason = PACT_ERROR(PACT_EIO, "shutting down");
    struct aborted_timer v = {NULL, 0, 0, -1};
    struct aborter ab = {tok, reason, &v, 1};
    pact_timer_opts o = {.delay_ms = 3600000, .abort = tok};
    pact_handle h;
    ck_assert_int_eq(pact_timer_start(t_loop, &o, aborted_cb, &v, &h), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, aborter_cb, &ab, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(ab.rc, 0);
    ck_assert_int_eq(v.n, 1);
    ck_assert_int_eq(v.code, PACT_ECANCELED);
    ck_assert_ptr_eq(v.cause, reason);
    ck_assert_int_eq(v.calls_before_abort_returned, 0);
    ck_assert_int_eq(pact_clear(t_loop, h), PACT_ENOENT);
    pact_error_unref(reason);
    pact_abort_unref(tok);
}
END_TEST

/* An interval is cancelled the same way, once, and stops repeating. */
START_TEST(abort_cancels_interval_default_reason)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    struct aborted_timer v = {NULL, 0, 0, -1};
    struct aborter ab = {tok, NULL, &v, 1};
    pact_timer_opts o = {.delay_ms = 1000, .repeat_ms = 1000, .abort = tok};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, aborted_cb, &v, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, aborter_cb, &ab, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(v.n, 1);
    ck_assert_int_eq(v.code, PACT_ECANCELED);
    pact_error *r = pact_abort_reason(tok);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(pact_error_code(r), PACT_ECANCELED);
    ck_assert_str_eq(pact_error_message(r), "This operation was aborted");
    ck_assert_ptr_eq(v.cause, r);
    pact_abort_unref(tok);
}
END_TEST

struct pre_aborted {
    pact_error *reason;
    int n, code, cause_ok;
};

static void pre_aborted_cb(pact_error *err, void *ud)
{
    struct pre_aborted *p = ud;
    p->n++;
    p->code = err ? pact_error_code(err) : 0;
    p->cause_ok = err && pact_error_cause(err) == p->reason;
}

/* The header leaves open whether starting on an aborted token fails at once
 * (then, by the callback rule, the callback is never called) or starts and
 * ends with PACT_ECANCELED; either way the timer never fires normally and
 * nothing happens synchronously. */
START_TEST(already_aborted_token)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    pact_error *reason = PACT_ERROR(PACT_EPIPE);
    ck_assert_int_eq(pact_abort_abort(tok, reason), 0);
    struct pre_aborted p = {reason, 0, 0, 0};
    pact_timer_opts o = {.delay_ms = 3600000, .abort = tok};
    int rc = pact_timer_start(t_loop, &o, pre_aborted_cb, &p, NULL);
    ck_assert_int_eq(p.n, 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    if (rc == 0) {
        ck_assert_int_eq(p.n, 1);
        ck_assert_int_eq(p.code, PACT_ECANCELED);
        ck_assert(p.cause_ok);
    } else {
        ck_assert_int_eq(rc, PACT_ECANCELED);
        ck_assert_int_eq(p.n, 0);
    }
    pact_error_unref(reason);
    pact_abort_unref(tok);
}
END_TEST

/* A timer that already fired (or was cleared) ignores a later abort. */
START_TEST(abort_after_fire_or_clear)
{
    pact_abort *tok;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    struct aborted_timer fired = {NULL, 0, 0, -1};
    struct aborted_timer cleared = {NULL, 0, 0, -1};
    struct aborter ab = {tok, NULL, &fired, 1};
    pact_timer_opts o1 = {.delay_ms = 1, .abort = tok};
    pact_timer_opts o2 = {.delay_ms = 50, .abort = tok};
    pact_handle h2;
    ck_assert_int_eq(pact_timer_start(t_loop, &o1, aborted_cb, &fired, NULL),
                     0);
    ck_assert_int_eq(pact_timer_start(t_loop, &o2, aborted_cb, &cleared, &h2),
                     0);
    ck_assert_int_eq(pact_clear(t_loop, h2), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 10, aborter_cb, &ab, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(ab.rc, 0);
    ck_assert_int_eq(fired.n, 1);
    ck_assert_int_eq(fired.code, 0); /* fired normally, err NULL */
    ck_assert_int_eq(cleared.n, 0);
    pact_abort_unref(tok);
}
END_TEST

/* opts.abort is borrowed: the program may drop its reference at once and
 * the timer still fires normally (and nothing leaks or is used after free). */
START_TEST(token_dropped_after_start)
{
    pact_abort *tok;
    int n = 0;
    ck_assert_int_eq(pact_abort_new(t_loop, &tok), 0);
    pact_timer_opts o = {.delay_ms = 2, .abort = tok};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, count_cb, &n, NULL), 0);
    pact_abort_unref(tok);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
}
END_TEST

/* AbortSignal.timeout composed with a timer: the timer ends with ECANCELED
 * whose cause is the token's ETIMEDOUT reason. */
START_TEST(abort_timeout_token_cancels_timer)
{
    pact_abort *tok;
    uint64_t t0 = now_us(); /* before the token's 5 ms start */
    ck_assert_int_eq(pact_abort_timeout(t_loop, 5, &tok), 0);
    struct aborted_timer v = {NULL, 0, 0, -1};
    pact_timer_opts o = {.delay_ms = 3600000, .abort = tok};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, aborted_cb, &v, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_uint_ge(now_us() - t0, 5000);
    ck_assert_int_eq(v.n, 1);
    ck_assert_int_eq(v.code, PACT_ECANCELED);
    ck_assert_ptr_eq(v.cause, pact_abort_reason(tok));
    ck_assert_int_eq(pact_error_code(v.cause), PACT_ETIMEDOUT);
    pact_abort_unref(tok);
}
END_TEST

/* ---- immediates -------------------------------------------------------- */

START_TEST(immediates_in_order)
{
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "a", NULL), 0);
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "b", NULL), 0);
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "c", NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "a\nb\nc\n");
}
END_TEST

START_TEST(clear_immediate)
{
    struct clearer c = {{0}, 0, 1};
    int victim = 0, other = 0;
    pact_handle h;
    ck_assert_int_eq(pact_immediate(t_loop, clearer_cb, &c, NULL), 0);
    ck_assert_int_eq(pact_immediate(t_loop, count_cb, &victim, &c.victim), 0);
    ck_assert_int_eq(pact_immediate(t_loop, count_cb, &other, &h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(victim, 0);
    ck_assert_int_eq(other, 1);
    ck_assert_int_eq(pact_clear(t_loop, c.victim), PACT_ENOENT);
    ck_assert_int_eq(pact_clear(t_loop, h), PACT_ENOENT);
}
END_TEST

/* ---- many timers ------------------------------------------------------- */

enum { MANY = 100000, MAX_DELAY = 50 };

struct many {
    unsigned char count[MANY];
    unsigned char delay[MANY];
    int last_of_delay[MAX_DELAY + 1];
    int fired, out_of_order, errors;
};

static struct many *many;

/* No ck_assert per call: each passing one messages Check's parent. */
static void many_cb(pact_error *err, void *ud)
{
    if (err)
        many->errors++;
    int i = (int)(intptr_t)ud;
    many->count[i]++;
    many->fired++;
    /* equal delays keep insertion order whatever the clock did meanwhile */
    int d = many->delay[i];
    if (many->last_of_delay[d] > i)
        many->out_of_order++;
    many->last_of_delay[d] = i;
}

START_TEST(many_random_timers)
{
    many = calloc(1, sizeof *many);
    unsigned seed = 12345;
    for (int i = 0; i < MANY; i++) {
        seed = seed * 1103515245u + 12345u;
        many->delay[i] = (unsigned char)(1 + (seed >> 16) % MAX_DELAY);
        if (pact_timeout(t_loop, many->delay[i], many_cb, (void *)(intptr_t)i,
                         NULL) != 0)
            many->errors++;
    }
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(many->errors, 0);
    ck_assert_int_eq(many->fired, MANY);
    int wrong = -1;
    for (int i = 0; i < MANY && wrong < 0; i++)
        if (many->count[i] != 1)
            wrong = i;
    ck_assert_msg(wrong < 0, "timer %d fired %d times", wrong,
                  wrong < 0 ? 1 : many->count[wrong]);
    ck_assert_int_eq(many->out_of_order, 0);
    free(many);
    many = NULL;
}
END_TEST

Suite *suite_timer(void)
{
    Suite *s = suite_create("timer");
    TCase *tm = tcase_create("timing");
    tcase_add_checked_fixture(tm, t_setup, t_teardown);
    tcase_add_test(tm, never_early);
    tcase_add_test(tm, never_early_from_callbacks);
    tcase_add_test(tm, zero_is_one_ms);
    tcase_add_test(tm, zero_keeps_order_with_one);
    tcase_add_test(tm, equal_delays_in_insertion_order);
    tcase_add_test(tm, shorter_delays_first);
    tcase_add_test(tm, delay_clamped_as_node);
    tcase_add_test(tm, interval_negative_period);
    tcase_add_test(tm, interval_repeats_and_clears_itself);
    tcase_add_test(tm, timeout_clears_itself);
    tcase_add_test(tm, refresh_immediate_einval);
    tcase_add_test(tm, timer_start_with_repeat);
    suite_add_tcase(s, tm);

    TCase *cl = tcase_create("clear");
    tcase_add_checked_fixture(cl, t_setup, t_teardown);
    tcase_add_test(cl, clear_twice);
    tcase_add_test(cl, clear_twice_while_cancel_queued);
    tcase_add_test(cl, clear_after_fire);
    tcase_add_test(cl, clear_inside_own_timeout);
    tcase_add_test(cl, clear_from_other_timer);
    tcase_add_test(cl, clear_timer_due_in_same_phase);
    tcase_add_test(cl, clear_interval_from_timeout);
    tcase_add_test(cl, refresh_restarts_delay);
    tcase_add_test(cl, refresh_cleared);
    suite_add_tcase(s, cl);

    TCase *ab = tcase_create("abort");
    tcase_add_checked_fixture(ab, t_setup, t_teardown);
    tcase_add_test(ab, abort_cancels_timer);
    tcase_add_test(ab, abort_cancels_interval_default_reason);
    tcase_add_test(ab, already_aborted_token);
    tcase_add_test(ab, abort_after_fire_or_clear);
    tcase_add_test(ab, token_dropped_after_start);
    tcase_add_test(ab, abort_timeout_token_cancels_timer);
    suite_add_tcase(s, ab);

    TCase *im = tcase_create("immediate");
    tcase_add_checked_fixture(im, t_setup, t_teardown);
    tcase_add_test(im, immediates_in_order);
    tcase_add_test(im, clear_immediate);
    suite_add_tcase(s, im);

    TCase *big = tcase_create("many");
    tcase_add_checked_fixture(big, t_setup, t_teardown);
    tcase_set_timeout(big, 60);
    tcase_add_test(big, many_random_timers);
    suite_add_tcase(s, big);
    return s;
}
