/* The nextTick and microtask queues: ticks before microtasks, nesting both
 * ways, the drain after the main program's turn and after each macrotask
 * callback, argument checks, and long chains without recursion. */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "suites.h"

START_TEST(tick_before_microtask)
{
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "micro"), 0);
    ck_assert_int_eq(pact_next_tick(t_loop, trace_fn, "tick"), 0);
    ck_assert_str_eq(trace_text(), ""); /* nothing runs synchronously */
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "tick\nmicro\n");
}
END_TEST

static void tick_queues_tick(void *ud)
{
    (void)ud;
    trace("t1");
    ck_assert_int_eq(pact_next_tick(t_loop, trace_fn, "t2"), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m2"), 0);
}

/* A tick queued by a tick runs before any microtask, even ones queued
 * earlier. */
START_TEST(nested_ticks)
{
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m1"), 0);
    ck_assert_int_eq(pact_next_tick(t_loop, tick_queues_tick, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "t1\nt2\nm1\nm2\n");
}
END_TEST

static void micro_queues_both(void *ud)
{
    (void)ud;
    trace("m1");
    ck_assert_int_eq(pact_next_tick(t_loop, trace_fn, "t2"), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m3"), 0);
}

static void tick_queues_micro(void *ud)
{
    (void)ud;
    trace("t2");
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m4"), 0);
}

/* As Node: the microtask queue drains fully (m3 included) before the ticks
 * queued from it run, then their microtasks; all before the next macrotask. */
START_TEST(microtasks_and_ticks_queue_each_other)
{
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "immediate", NULL), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, micro_queues_both, NULL), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m2"), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "m1\nm2\nm3\nt2\nimmediate\n");
}
END_TEST

START_TEST(tick_queues_microtask)
{
    ck_assert_int_eq(pact_next_tick(t_loop, tick_queues_micro, NULL), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "m1"), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "t2\nm1\nm4\n");
}
END_TEST

/* The main program's turn ends before the first phase: its ticks and
 * microtasks run before timers and immediates set earlier. */
START_TEST(drain_after_main_turn)
{
    ck_assert_int_eq(pact_timeout(t_loop, 0, trace_cb, "timeout", NULL), 0);
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "immediate", NULL), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "micro"), 0);
    ck_assert_int_eq(pact_next_tick(t_loop, trace_fn, "tick"), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    /* a 1 ms timeout against an immediate from the main turn races in Node
     * too, so only the prefix is fixed */
    const char *t = trace_text();
    ck_assert_msg(strncmp(t, "tick\nmicro\n", 11) == 0, "trace: %s", t);
    ck_assert_ptr_nonnull(strstr(t, "timeout\n"));
    ck_assert_ptr_nonnull(strstr(t, "immediate\n"));
    ck_assert_uint_eq(strlen(t), strlen("tick\nmicro\ntimeout\nimmediate\n"));
}
END_TEST

static void immediate_queues(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    const char *name = ud;
    trace("%s", name);
    ck_assert_int_eq(pact_queue_microtask(t_loop, trace_fn, "micro"), 0);
    ck_assert_int_eq(pact_next_tick(t_loop, trace_fn, "tick"), 0);
}

/* Node >= 11: the queues drain after each callback, not after each phase. */
START_TEST(drain_after_each_immediate)
{
    ck_assert_int_eq(pact_immediate(t_loop, immediate_queues, "i1", NULL), 0);
    ck_assert_int_eq(pact_immediate(t_loop, immediate_queues, "i2", NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "i1\ntick\nmicro\ni2\ntick\nmicro\n");
}
END_TEST

START_TEST(drain_after_each_timer)
{
    ck_assert_int_eq(pact_timeout(t_loop, 5, immediate_queues, "t1", NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, immediate_queues, "t2", NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "t1\ntick\nmicro\nt2\ntick\nmicro\n");
}
END_TEST

START_TEST(null_fn)
{
    ck_assert_int_eq(pact_next_tick(t_loop, NULL, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_queue_microtask(t_loop, NULL, NULL), PACT_EINVAL);
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}
END_TEST

/* ---- long chains ------------------------------------------------------- */

enum { CHAIN = 1000000 };

/* Failures are counted, not asserted, in the hot callbacks: each passing
 * ck_assert costs a message to Check's parent process. */
static int chain_n, chain_failed;

static void chain_micro(void *ud)
{
    (void)ud;
    if (++chain_n < CHAIN &&
        pact_queue_microtask(t_loop, chain_micro, NULL) != 0)
        chain_failed++;
}

static void chain_tick(void *ud)
{
    (void)ud;
    if (++chain_n < CHAIN && pact_next_tick(t_loop, chain_tick, NULL) != 0)
        chain_failed++;
}

/* Each job queues the next: a drain that recursed would blow the stack. */
START_TEST(million_chained_microtasks)
{
    chain_n = chain_failed = 0;
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "after", NULL), 0);
    ck_assert_int_eq(pact_queue_microtask(t_loop, chain_micro, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(chain_failed, 0);
    ck_assert_int_eq(chain_n, CHAIN);
    ck_assert_str_eq(trace_text(), "after\n");
}
END_TEST

START_TEST(million_chained_ticks)
{
    chain_n = chain_failed = 0;
    ck_assert_int_eq(pact_next_tick(t_loop, chain_tick, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(chain_failed, 0);
    ck_assert_int_eq(chain_n, CHAIN);
}
END_TEST

static int alt_n;

/* Alternating queues: every hop crosses from one queue to the other. */
static void alt_fn(void *ud)
{
    (void)ud;
    if (++alt_n >= 200000)
        return;
    int rc = alt_n % 2 ? pact_next_tick(t_loop, alt_fn, NULL)
                       : pact_queue_microtask(t_loop, alt_fn, NULL);
    if (rc != 0)
        chain_failed++;
}

START_TEST(alternating_chain)
{
    alt_n = chain_failed = 0;
    ck_assert_int_eq(pact_queue_microtask(t_loop, alt_fn, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(chain_failed, 0);
    ck_assert_int_eq(alt_n, 200000);
}
END_TEST

Suite *suite_tick(void)
{
    Suite *s = suite_create("tick");
    TCase *tc = tcase_create("order");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, tick_before_microtask);
    tcase_add_test(tc, nested_ticks);
    tcase_add_test(tc, microtasks_and_ticks_queue_each_other);
    tcase_add_test(tc, tick_queues_microtask);
    tcase_add_test(tc, drain_after_main_turn);
    tcase_add_test(tc, drain_after_each_immediate);
    tcase_add_test(tc, drain_after_each_timer);
    tcase_add_test(tc, null_fn);
    suite_add_tcase(s, tc);

    TCase *big = tcase_create("chains");
    tcase_add_checked_fixture(big, t_setup, t_teardown);
    tcase_set_timeout(big, 60);
    tcase_add_test(big, million_chained_microtasks);
    tcase_add_test(big, million_chained_ticks);
    tcase_add_test(big, alternating_chain);
    suite_add_tcase(s, big);
    return s;
}
