/* Node-oracle ordering tests. Each case replays, with pact calls, the
 * scenario of test/fixtures/order/<case>.js and compares pact's trace line by
 * line with what Node v20 printed for it (<case>.txt, made by regen.sh).
 * Read a case beside its .js: same names, same calls in the same order.
 *
 * Mapping: setTimeout -> pact_timeout, setInterval -> pact_interval,
 * clear* -> pact_clear, setImmediate -> pact_immediate, process.nextTick ->
 * pact_next_tick, queueMicrotask -> pact_queue_microtask, fs.readFile's
 * callback -> a pact_poll on a pipe that already holds data, the main
 * module -> the code before pact_loop_run, process.on('exit') -> after it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsish.h"
#include "suites.h"

#define I2P(i) ((void *)(intptr_t)(i))
#define P2I(p) ((int)(intptr_t)(p))

/* What a case's callbacks share; zeroed before each case. */
static struct {
    pact_handle h[3]; /* handles a case clears, refreshes or unrefs later */
    int n;            /* run count of an interval */
    int fds[2];       /* the pipe behind an I/O case; -1 when closed */
    pact_handle poll; /* its poller: a one-shot read, as fs.readFile is */
} S;

/* ---- a pipe for fs.readFile (the JavaScript vocabulary: jsish.h) --------- */

/* Start the I/O of a case: a pipe with a byte in it is readable at once. */
static void start_io(pact_poll_cb cb)
{
    ck_assert_int_eq(pipe(S.fds), 0);
    ck_assert_int_eq(write(S.fds[1], "x", 1), 1);
    ck_assert_int_eq(
        pact_poll(t_loop, S.fds[0], PACT_READABLE, cb, NULL, &S.poll), 0);
}

/* First thing in an I/O callback: a read completes once. */
static void io_done(pact_error *err, int events)
{
    expect_ok(err);
    ck_assert(events & PACT_READABLE);
    clear(S.poll);
}

/* ---- the driver ---------------------------------------------------------- */

/* Run one case: its main turn, the loop, then what runs at exit. */
static void run_case(const char *name, void (*main_turn)(void),
                     void (*at_exit)(void))
{
    memset(&S, 0, sizeof S);
    S.fds[0] = S.fds[1] = -1;
    main_turn();
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    if (rc != 0)
        fprintf(stderr, "order/%s: pact_loop_run returned %d; trace:\n%s", name,
                rc, trace_text());
    ck_assert_int_eq(rc, 0);
    if (at_exit)
        at_exit();
    for (int i = 0; i < 2; i++)
        if (S.fds[i] >= 0)
            close(S.fds[i]);
    js_expect_fixture("order", name);
}

/* One Check test per case, named after it; <case>_exit runs at exit. */
#define ORDER_CASE(c)                                                          \
    START_TEST(c)                                                              \
    {                                                                          \
        run_case(#c, c##_main, NULL);                                          \
    }                                                                          \
    END_TEST
#define ORDER_CASE_EXIT(c)                                                     \
    START_TEST(c)                                                              \
    {                                                                          \
        run_case(#c, c##_main, c##_exit);                                      \
    }                                                                          \
    END_TEST

/* ---- ticks and microtasks ------------------------------------------------ */

static void sync_tick_micro_main(void)
{
    trace("sync 1");
    queue_microtask(trace_fn, "micro 1");
    next_tick(trace_fn, "tick 1");
    queue_microtask(trace_fn, "micro 2");
    next_tick(trace_fn, "tick 2");
    trace("sync 2");
}
ORDER_CASE(sync_tick_micro)

static void nested_tick_1_1(void *ud)
{
    (void)ud;
    trace("tick 1.1");
    next_tick(trace_fn, "tick 1.1.1");
}

static void nested_tick_1(void *ud)
{
    (void)ud;
    trace("tick 1");
    next_tick(nested_tick_1_1, NULL);
    next_tick(trace_fn, "tick 1.2");
}

static void nested_ticks_main(void)
{
    next_tick(nested_tick_1, NULL);
    next_tick(trace_fn, "tick 2");
    queue_microtask(trace_fn, "micro");
    trace("sync");
}
ORDER_CASE(nested_ticks)

static void levels_micro_a2(void *ud)
{
    (void)ud;
    trace("micro A2");
    next_tick(trace_fn, "tick A3");
    queue_microtask(trace_fn, "micro A3");
}

static void levels_tick_a1(void *ud)
{
    (void)ud;
    trace("tick A1");
    queue_microtask(levels_micro_a2, NULL);
    next_tick(trace_fn, "tick A2");
}

static void levels_micro_a(void *ud)
{
    (void)ud;
    trace("micro A");
    next_tick(levels_tick_a1, NULL);
    queue_microtask(trace_fn, "micro A1");
}

static void levels_micro_b1(void *ud)
{
    (void)ud;
    trace("micro B1");
    next_tick(trace_fn, "tick B2");
}

static void levels_tick_b(void *ud)
{
    (void)ud;
    trace("tick B");
    queue_microtask(levels_micro_b1, NULL);
    next_tick(trace_fn, "tick B1");
}

static void micro_tick_levels_main(void)
{
    queue_microtask(levels_micro_a, NULL);
    next_tick(levels_tick_b, NULL);
    trace("sync");
}
ORDER_CASE(micro_tick_levels)

static void mqt_tick(void *ud)
{
    trace("tick %d", P2I(ud));
}

static void mqt_step(void *ud)
{
    int i = P2I(ud);
    trace("micro %d", i);
    next_tick(mqt_tick, ud);
    if (i < 4)
        queue_microtask(mqt_step, I2P(i + 1));
}

static void micro_queues_ticks_main(void)
{
    queue_microtask(mqt_step, I2P(0));
}
ORDER_CASE(micro_queues_ticks)

static void chain_tick(void *ud)
{
    (void)ud;
    trace("tick from micro 10");
    queue_microtask(trace_fn, "micro from tick");
}

static void chain_step(void *ud)
{
    int i = P2I(ud);
    trace("micro %d", i);
    if (i == 10)
        next_tick(chain_tick, NULL);
    if (i < 99)
        queue_microtask(chain_step, I2P(i + 1));
}

static void micro_chain_long_main(void)
{
    queue_microtask(chain_step, I2P(0));
}
ORDER_CASE(micro_chain_long)

/* ---- timers -------------------------------------------------------------- */

static void timers_equal_delay_main(void)
{
    static const char *const names[] = {"timer a", "timer b", "timer c",
                                        "timer d", "timer e"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        set_timeout(10, trace_cb, (void *)names[i]);
}
ORDER_CASE(timers_equal_delay)

static void log_ms_cb(pact_error *err, void *ud)
{
    expect_ok(err);
    trace("timer %d", P2I(ud));
}

static void timers_different_delay_main(void)
{
    static const int ms[] = {160, 80, 1, 120, 40};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        set_timeout((uint64_t)ms[i], log_ms_cb, I2P(ms[i]));
}
ORDER_CASE(timers_different_delay)

static void timeout_zero_is_one_main(void)
{
    set_timeout(50, trace_cb, "timer 50");
    set_timeout(1, trace_cb, "timer a (1 ms)");
    set_timeout(0, trace_cb, "timer b (0 ms)");
    set_timeout(1, trace_cb, "timer c (1 ms)");
    set_timeout(0, trace_cb, "timer d (0 ms)");
}
ORDER_CASE(timeout_zero_is_one)

static void drain_a_micro(void *ud)
{
    (void)ud;
    trace("a micro");
    next_tick(trace_fn, "a micro tick");
}

static void drain_timer_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer a");
    next_tick(trace_fn, "a tick");
    queue_microtask(drain_a_micro, NULL);
}

static void drain_timer_b(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer b");
    queue_microtask(trace_fn, "b micro");
    next_tick(trace_fn, "b tick");
}

static void timers_drain_between_main(void)
{
    set_timeout(5, drain_timer_a, NULL);
    set_timeout(5, drain_timer_b, NULL);
    t_spin_ms(15);
}
ORDER_CASE(timers_drain_between)

static void named_tick(void *ud)
{
    trace("%s tick", (const char *)ud);
}

/* timer(name): log it, then a tick logs "<name> tick". */
static void named_timer(pact_error *err, void *ud)
{
    expect_ok(err);
    trace("timer %s", (const char *)ud);
    next_tick(named_tick, ud);
}

static void timers_due_together_main(void)
{
    set_timeout(100, named_timer, "b (100 ms)");
    set_timeout(10, named_timer, "a (10 ms)");
    set_timeout(10, named_timer, "c (10 ms)");
    t_spin_ms(120);
}
ORDER_CASE(timers_due_together)

static void nested_timer_b(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer B (from A)");
    set_timeout(1, trace_cb, "timer D (from B)");
}

static void nested_timer_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer A");
    next_tick(trace_fn, "A tick");
    set_timeout(1, nested_timer_b, NULL);
    set_timeout(100, trace_cb, "timer C (100 ms from A)");
}

static void nested_timers_main(void)
{
    set_timeout(1, nested_timer_a, NULL);
}
ORDER_CASE(nested_timers)

static void timers_from_main_ticks_b(void *ud)
{
    (void)ud;
    set_timeout(5, trace_cb, "timer B (from tick)");
}

static void timers_from_main_ticks_c(void *ud)
{
    (void)ud;
    set_timeout(5, trace_cb, "timer C (from micro)");
}

static void timers_from_main_ticks_main(void)
{
    set_timeout(5, trace_cb, "timer A");
    next_tick(timers_from_main_ticks_b, NULL);
    queue_microtask(timers_from_main_ticks_c, NULL);
    set_timeout(5, trace_cb, "timer D");
}
ORDER_CASE(timers_from_main_ticks)

static void snapshot_timer_10(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer 10 spins past 200 ms");
    set_immediate(trace_cb, "immediate from timer 10");
    t_spin_ms(220);
}

static void timers_pass_snapshot_main(void)
{
    set_timeout(10, snapshot_timer_10, NULL);
    set_timeout(200, trace_cb, "timer 200");
}
ORDER_CASE(timers_pass_snapshot)

static void refresh_timer_80(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer 40 refreshes the 80 ms timer");
    ck_assert_int_eq(pact_timer_refresh(t_loop, S.h[0]), 0);
}

static void timer_refresh_main(void)
{
    set_timeout(100, trace_cb, "timer 100");
    set_timeout(40, refresh_timer_80, NULL);
    S.h[0] = set_timeout(80, trace_cb, "timer 80 (refreshed at 40)");
}
ORDER_CASE(timer_refresh)

static void unref_timer_exit_main(void)
{
    S.h[0] = set_timeout(200, trace_cb, "unref timer: must not run");
    ck_assert_int_eq(pact_unref(t_loop, S.h[0]), 0);
    set_timeout(5, trace_cb, "timer 5");
}

/* The loop ended with the unreferenced timer still pending: clear it. */
static void unref_timer_exit_exit(void)
{
    trace("exit");
    clear(S.h[0]);
}
ORDER_CASE_EXIT(unref_timer_exit)

static void unref_timer_fires_main(void)
{
    S.h[0] = set_timeout(5, trace_cb, "unref timer 5");
    ck_assert_int_eq(pact_unref(t_loop, S.h[0]), 0);
    set_timeout(50, trace_cb, "timer 50");
}

/* It fired, so its handle is gone. */
static void unref_timer_fires_exit(void)
{
    trace("exit");
    ck_assert_int_eq(pact_clear(t_loop, S.h[0]), PACT_ENOENT);
}
ORDER_CASE_EXIT(unref_timer_fires)

/* ---- clearing timers ----------------------------------------------------- */

static void clear_from_tick(void *ud)
{
    (void)ud;
    trace("tick clears the 5 ms timer");
    clear(S.h[0]);
}

static void clear_timeout_from_tick_main(void)
{
    S.h[0] = set_timeout(5, trace_cb, "cleared timer: must not run");
    set_timeout(20, trace_cb, "timer 20");
    next_tick(clear_from_tick, NULL);
}
ORDER_CASE(clear_timeout_from_tick)

static void timer_a_clears_b(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer a clears b");
    clear(S.h[0]);
}

static void clear_timeout_from_timer_main(void)
{
    set_timeout(10, timer_a_clears_b, NULL);
    S.h[0] = set_timeout(10, trace_cb, "timer b: must not run");
    set_timeout(10, trace_cb, "timer c");
    t_spin_ms(15);
}
ORDER_CASE(clear_timeout_from_timer)

static void interval_negative(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("interval -100");
    if (++S.n == 3)
        clear(S.h[0]);
}

static void timer_2_starts_interval(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer 2");
    S.h[0] = set_interval(-100, interval_negative, NULL);
}

/* The delays are signed: below 1 is 1 ms; above PACT_TIMEOUT_MAX is 1 ms
 * with Node's warning (its text asserted here: Node's goes to its stderr). */
static void timer_clamp_main(void)
{
    set_timeout(0, trace_cb, "timer 0");
    set_timeout(-5, trace_cb, "timer -5");
    struct capture cap;
    capture_begin(&cap);
    set_timeout(PACT_TIMEOUT_MAX + 1, trace_cb, "timer 2**31");
    char *out = capture_end(&cap);
    ck_assert_ptr_nonnull(strstr(out, "TimeoutOverflowWarning: 2147483648 does "
                                      "not fit into a 32-bit signed "
                                      "integer.\nTimeout duration was set "
                                      "to 1.\n"));
    free(out);
    set_timeout(INT64_MIN, trace_cb, "timer -2**63");
    set_timeout(2, timer_2_starts_interval, NULL);
}
ORDER_CASE(timer_clamp)

static void timer_x_clears_y(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer x clears y");
    clear(S.h[0]);
}

static void clear_due_timer_other_delay_main(void)
{
    set_timeout(10, timer_x_clears_y, NULL);
    S.h[0] = set_timeout(20, trace_cb, "timer y: must not run");
    set_timeout(60, trace_cb, "timer z");
    t_spin_ms(30);
}
ORDER_CASE(clear_due_timer_other_delay)

static void a_tick_clears_b(void *ud)
{
    (void)ud;
    trace("a tick clears b");
    clear(S.h[0]);
}

static void between_timer_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer a");
    next_tick(a_tick_clears_b, NULL);
}

static void clear_timer_from_tick_between_main(void)
{
    set_timeout(5, between_timer_a, NULL);
    S.h[0] = set_timeout(5, trace_cb, "timer b: must not run");
    set_timeout(5, trace_cb, "timer c");
    t_spin_ms(15);
}
ORDER_CASE(clear_timer_from_tick_between)

static void immediate_clears_200(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate clears the 200 ms timer");
    clear(S.h[0]);
}

static void immediate_clears_timer_main(void)
{
    S.h[0] = set_timeout(200, trace_cb, "timer 200: must not run");
    set_timeout(210, trace_cb, "timer 210");
    set_immediate(immediate_clears_200, NULL);
}
ORDER_CASE(immediate_clears_timer)

/* ---- intervals ----------------------------------------------------------- */

static void self_tick(void *ud)
{
    trace("tick %d", P2I(ud));
}

static void self_clearing_interval(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    S.n++;
    trace("interval %d", S.n);
    next_tick(self_tick, I2P(S.n));
    if (S.n == 3) {
        clear(S.h[0]);
        trace("cleared");
    }
}

static void interval_clear_self_main(void)
{
    S.h[0] = set_interval(5, self_clearing_interval, NULL);
}
ORDER_CASE(interval_clear_self)

static void tick_clears_interval(void *ud)
{
    (void)ud;
    trace("tick clears the interval");
    clear(S.h[0]);
}

static void interval_then_tick(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    S.n++;
    trace("interval %d", S.n);
    if (S.n == 2)
        next_tick(tick_clears_interval, NULL);
}

static void interval_clear_from_tick_main(void)
{
    set_timeout(100, trace_cb, "timeout 100");
    S.h[0] = set_interval(5, interval_then_tick, NULL);
}
ORDER_CASE(interval_clear_from_tick)

static void reinsert_interval(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    S.n++;
    trace("interval %d", S.n);
    if (S.n == 1)
        set_timeout(10, trace_cb, "timeout set in interval 1");
    if (S.n == 2)
        clear(S.h[0]);
}

static void interval_reinsert_after_callback_main(void)
{
    S.h[0] = set_interval(10, reinsert_interval, NULL);
    set_timeout(10, trace_cb, "timeout set after the interval");
}
ORDER_CASE(interval_reinsert_after_callback)

static void mixed_interval(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    S.n++;
    if (S.n == 2)
        set_timeout(5, trace_cb, "timeout 5 (set in interval 2)");
    trace("interval %d", S.n);
    if (S.n == 3) {
        clear(S.h[0]);
        trace("cleared");
    }
}

static void interval_and_timeouts_main(void)
{
    set_timeout(1, trace_cb, "timeout 1");
    set_timeout(75, trace_cb, "timeout 75");
    S.h[0] = set_interval(50, mixed_interval, NULL);
}
ORDER_CASE(interval_and_timeouts)

static void timeout_clears_interval(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timeout clears the interval");
    clear(S.h[0]);
}

static void interval_sets_timeout(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    set_timeout(5, timeout_clears_interval, NULL);
    trace("interval");
}

static void clear_interval_from_timeout_main(void)
{
    S.h[0] = set_interval(40, interval_sets_timeout, NULL);
}
ORDER_CASE(clear_interval_from_timeout)

/* ---- immediates ---------------------------------------------------------- */

static void from_imm_a_tick(void *ud)
{
    (void)ud;
    trace("A tick");
    set_immediate(trace_cb, "immediate D (from A tick)");
}

static void from_imm_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate A");
    set_immediate(trace_cb, "immediate C (from A)");
    next_tick(from_imm_a_tick, NULL);
}

static void immediate_from_immediate_main(void)
{
    set_immediate(from_imm_a, NULL);
    set_immediate(trace_cb, "immediate B");
}
ORDER_CASE(immediate_from_immediate)

static void between_imm_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate A");
    queue_microtask(trace_fn, "A micro");
    next_tick(trace_fn, "A tick");
}

static void between_imm_b_tick(void *ud)
{
    (void)ud;
    trace("B tick");
    queue_microtask(trace_fn, "B tick micro");
}

static void between_imm_b(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate B");
    next_tick(between_imm_b_tick, NULL);
}

static void ticks_between_immediates_main(void)
{
    set_immediate(between_imm_a, NULL);
    set_immediate(between_imm_b, NULL);
    set_immediate(trace_cb, "immediate C");
}
ORDER_CASE(ticks_between_immediates)

static void a_tick_clears_c(void *ud)
{
    (void)ud;
    trace("A tick clears C");
    clear(S.h[1]);
}

static void imm_a_clears_b(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate A clears B");
    clear(S.h[0]);
    next_tick(a_tick_clears_c, NULL);
}

static void clear_immediate_main(void)
{
    set_immediate(imm_a_clears_b, NULL);
    S.h[0] = set_immediate(trace_cb, "immediate B: must not run");
    S.h[1] = set_immediate(trace_cb, "immediate C: must not run");
    set_immediate(trace_cb, "immediate D");
}
ORDER_CASE(clear_immediate)

static void imm_from_tick(void *ud)
{
    (void)ud;
    set_immediate(trace_cb, "immediate B (from tick)");
}

static void imm_from_micro(void *ud)
{
    (void)ud;
    set_immediate(trace_cb, "immediate C (from micro)");
}

static void immediates_from_main_ticks_main(void)
{
    set_immediate(trace_cb, "immediate A");
    next_tick(imm_from_tick, NULL);
    queue_microtask(imm_from_micro, NULL);
    set_immediate(trace_cb, "immediate D");
}
ORDER_CASE(immediates_from_main_ticks)

static void timers_imm_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate A");
    set_timeout(5, trace_cb, "timer 1 (from A)");
    set_timeout(5, trace_cb, "timer 2 (from A)");
}

static void timers_imm_b(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate B");
    set_timeout(5, trace_cb, "timer 3 (from B)");
}

static void timers_from_immediates_main(void)
{
    set_immediate(timers_imm_a, NULL);
    set_immediate(timers_imm_b, NULL);
}
ORDER_CASE(timers_from_immediates)

static void unref_immediate_exit_main(void)
{
    S.h[0] = set_immediate(trace_cb, "unref immediate: must not run");
    ck_assert_int_eq(pact_unref(t_loop, S.h[0]), 0);
    next_tick(trace_fn, "tick");
}

/* The loop ended with the unreferenced immediate still queued: clear it. */
static void unref_immediate_exit_exit(void)
{
    trace("exit");
    clear(S.h[0]);
}
ORDER_CASE_EXIT(unref_immediate_exit)

static void unref_immediate_runs_main(void)
{
    S.h[0] = set_immediate(trace_cb, "unref immediate");
    ck_assert_int_eq(pact_unref(t_loop, S.h[0]), 0);
    set_timeout(200, trace_cb, "timer 200");
}

static void unref_immediate_runs_exit(void)
{
    trace("exit");
}
ORDER_CASE_EXIT(unref_immediate_runs)

/* ---- timers against immediates ------------------------------------------- */

static void timeout_immediate_main_spin_main(void)
{
    set_immediate(trace_cb, "immediate");
    set_timeout(0, trace_cb, "timeout 0");
    t_spin_ms(10);
}
ORDER_CASE(timeout_immediate_main_spin)

static void new_timeout_timer_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer a");
    set_timeout(0, trace_cb, "timeout 0 from a");
    set_immediate(trace_cb, "immediate from a");
}

static void timer_immediate_before_new_timeout_main(void)
{
    set_timeout(5, new_timeout_timer_a, NULL);
    set_timeout(5, trace_cb, "timer b");
    t_spin_ms(15);
}
ORDER_CASE(timer_immediate_before_new_timeout)

static void timer_sched_tick(void *ud)
{
    (void)ud;
    trace("tick");
    set_immediate(trace_cb, "immediate from tick");
    set_timeout(0, trace_cb, "timeout 0 from tick");
}

static void timer_sched_micro(void *ud)
{
    (void)ud;
    trace("micro");
    set_immediate(trace_cb, "immediate from micro");
}

static void timer_sched(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("timer");
    next_tick(timer_sched_tick, NULL);
    queue_microtask(timer_sched_micro, NULL);
}

static void timer_ticks_schedule_main(void)
{
    set_timeout(1, timer_sched, NULL);
}
ORDER_CASE(timer_ticks_schedule)

static void due_imm_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate A");
    set_timeout(0, trace_cb, "timeout 0 from A");
    set_immediate(trace_cb, "immediate B from A");
    t_spin_ms(5);
}

static void immediate_timeout_due_main(void)
{
    set_immediate(due_imm_a, NULL);
}
ORDER_CASE(immediate_timeout_due)

static void later_imm_b(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate B from A");
    set_immediate(trace_cb, "immediate C from B");
}

static void later_imm_a(pact_error *err, void *ud)
{
    (void)ud;
    expect_ok(err);
    trace("immediate A");
    set_timeout(200, trace_cb, "timeout 200 from A");
    set_immediate(later_imm_b, NULL);
}

static void immediate_timeout_later_main(void)
{
    set_immediate(later_imm_a, NULL);
}
ORDER_CASE(immediate_timeout_later)

/* ---- I/O ----------------------------------------------------------------- */

static void io_then_both(pact_error *err, int fd, int events, void *ud)
{
    (void)fd, (void)ud;
    io_done(err, events);
    trace("io");
    set_timeout(0, trace_cb, "timeout 0");
    set_immediate(trace_cb, "immediate");
    next_tick(trace_fn, "io tick");
    queue_microtask(trace_fn, "io micro");
}

static void io_immediate_before_timeout_main(void)
{
    start_io(io_then_both);
    trace("sync");
}
ORDER_CASE(io_immediate_before_timeout)

static void io_sched_tick(void *ud)
{
    (void)ud;
    trace("io tick");
    set_timeout(0, trace_cb, "timeout from tick");
    set_immediate(trace_cb, "immediate from tick");
}

static void io_sched_micro(void *ud)
{
    (void)ud;
    trace("io micro");
    set_timeout(0, trace_cb, "timeout from micro");
    set_immediate(trace_cb, "immediate from micro");
}

static void io_sched(pact_error *err, int fd, int events, void *ud)
{
    (void)fd, (void)ud;
    io_done(err, events);
    trace("io");
    next_tick(io_sched_tick, NULL);
    queue_microtask(io_sched_micro, NULL);
    set_timeout(0, trace_cb, "timeout from io");
    set_immediate(trace_cb, "immediate from io");
}

static void io_ticks_schedule_main(void)
{
    start_io(io_sched);
}
ORDER_CASE(io_ticks_schedule)

/* ---- the suite ----------------------------------------------------------- */

Suite *suite_order(void)
{
    Suite *s = suite_create("order");
    TCase *tc = tcase_create("node");
    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    /* ticks and microtasks */
    tcase_add_test(tc, sync_tick_micro);
    tcase_add_test(tc, nested_ticks);
    tcase_add_test(tc, micro_tick_levels);
    tcase_add_test(tc, micro_queues_ticks);
    tcase_add_test(tc, micro_chain_long);
    /* timers */
    tcase_add_test(tc, timers_equal_delay);
    tcase_add_test(tc, timers_different_delay);
    tcase_add_test(tc, timeout_zero_is_one);
    tcase_add_test(tc, timers_drain_between);
    tcase_add_test(tc, timers_due_together);
    tcase_add_test(tc, nested_timers);
    tcase_add_test(tc, timers_from_main_ticks);
    tcase_add_test(tc, timers_pass_snapshot);
    tcase_add_test(tc, timer_refresh);
    tcase_add_test(tc, unref_timer_exit);
    tcase_add_test(tc, unref_timer_fires);
    /* clearing timers */
    tcase_add_test(tc, clear_timeout_from_tick);
    tcase_add_test(tc, clear_timeout_from_timer);
    tcase_add_test(tc, timer_clamp);
    tcase_add_test(tc, clear_due_timer_other_delay);
    tcase_add_test(tc, clear_timer_from_tick_between);
    tcase_add_test(tc, immediate_clears_timer);
    /* intervals */
    tcase_add_test(tc, interval_clear_self);
    tcase_add_test(tc, interval_clear_from_tick);
    tcase_add_test(tc, interval_reinsert_after_callback);
    tcase_add_test(tc, interval_and_timeouts);
    tcase_add_test(tc, clear_interval_from_timeout);
    /* immediates */
    tcase_add_test(tc, immediate_from_immediate);
    tcase_add_test(tc, ticks_between_immediates);
    tcase_add_test(tc, clear_immediate);
    tcase_add_test(tc, immediates_from_main_ticks);
    tcase_add_test(tc, timers_from_immediates);
    tcase_add_test(tc, unref_immediate_exit);
    tcase_add_test(tc, unref_immediate_runs);
    /* timers against immediates */
    tcase_add_test(tc, timeout_immediate_main_spin);
    tcase_add_test(tc, timer_immediate_before_new_timeout);
    tcase_add_test(tc, timer_ticks_schedule);
    tcase_add_test(tc, immediate_timeout_due);
    tcase_add_test(tc, immediate_timeout_later);
    /* I/O */
    tcase_add_test(tc, io_immediate_before_timeout);
    tcase_add_test(tc, io_ticks_schedule);
    suite_add_tcase(s, tc);
    return s;
}
