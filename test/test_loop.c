/* The loop itself: making and freeing it, the run modes and their return
 * values, stop, re-entrancy, a loop on a program-owned event_base, handle
 * ref/unref, close_all, the thread check, argument checks and the clock. */
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

/* ---- local helpers ----------------------------------------------------- */

/* ---- new / free -------------------------------------------------------- */

START_TEST(new_and_free)
{
    pact_loop *loop = NULL;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    ck_assert_ptr_nonnull(loop);
    ck_assert_ptr_nonnull(pact_loop_base(loop));
    ck_assert(!pact_loop_alive(loop));
    ck_assert_int_eq(pact_loop_free(loop), 0);
}
END_TEST

static void free_inside_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    int *n = ud;
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ++*n;
}

START_TEST(free_while_running_is_busy)
{
    int n = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 1, free_inside_cb, &n, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
}
END_TEST

/* Open handles refuse free whether referenced or not; after clearing them
 * the fixture's teardown frees the loop. */
START_TEST(free_with_open_handle_is_busy)
{
    int n = 0;
    pact_handle t, u, im;
    ck_assert_int_eq(pact_timeout(t_loop, 1000, count_cb, &n, &t), 0);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ck_assert_int_eq(pact_unref(t_loop, t), 0);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ck_assert_int_eq(pact_clear(t_loop, t), 0);

    ck_assert_int_eq(pact_interval(t_loop, 1000, count_cb, &n, &u), 0);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ck_assert_int_eq(pact_clear(t_loop, u), 0);

    ck_assert_int_eq(pact_immediate(t_loop, count_cb, &n, &im), 0);
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ck_assert_int_eq(pact_clear(t_loop, im), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* Queued ticks, microtasks and posts are dropped, not run, and not leaked. */
START_TEST(free_drops_queued_work)
{
    pact_loop *loop;
    int n = 0;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    ck_assert_int_eq(pact_next_tick(loop, count_fn, &n), 0);
    ck_assert_int_eq(pact_queue_microtask(loop, count_fn, &n), 0);
    ck_assert_int_eq(pact_loop_post(loop, count_fn, &n), 0);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* ---- run modes --------------------------------------------------------- */

START_TEST(run_empty_returns_at_once)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
}
END_TEST

START_TEST(run_default_until_no_work)
{
    int a = 0, b = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &a, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 20, count_cb, &b, NULL), 0);
    ck_assert(pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(b, 1);
    ck_assert(!pact_loop_alive(t_loop));
}
END_TEST

static void watchdog(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    ++*(int *)ud;
    pact_loop_stop(t_loop);
}

/* A slow main turn: the only timer is already due when the run starts. Once
 * it has fired nothing is left, so the run must not go on to wait for I/O.
 * An unreferenced watchdog bounds the wait if it does (it cannot keep the
 * loop alive itself). */
START_TEST(run_with_timer_already_due)
{
    int n = 0, barked = 0;
    pact_handle dog;
    pact_timer_opts o = {.delay_ms = 2000, .unref = true};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, watchdog, &barked, &dog), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &n, NULL), 0);
    sleep_ms(5);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    ck_assert_msg(barked == 0, "the run waited with nothing left to do");
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(pact_clear(t_loop, dog), 0);
}
END_TEST

/* ONCE waits for the first timer, runs it, and reports what remains. */
START_TEST(run_once_waits_then_reports)
{
    int a = 0, b = 0;
    pact_handle hb;
    ck_assert_int_eq(pact_timeout(t_loop, 10, count_cb, &a, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5000, count_cb, &b, &hb), 0);
    int rc = 0;
    /* an early wake-up may fire nothing: allow a few iterations */
    for (int i = 0; i < 50 && a == 0; i++)
        rc = pact_loop_run(t_loop, PACT_RUN_ONCE);
    ck_assert_int_eq(rc, 1);
    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(pact_clear(t_loop, hb), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_ONCE), 0);
}
END_TEST

START_TEST(run_once_last_timer_returns_zero)
{
    int a = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &a, NULL), 0);
    int rc = 1;
    for (int i = 0; i < 50 && a == 0; i++)
        rc = pact_loop_run(t_loop, PACT_RUN_ONCE);
    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(rc, 0);
}
END_TEST

START_TEST(run_nowait_does_not_wait)
{
    int a = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 3600000, count_cb, &a, &h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(a, 0);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
}
END_TEST

static void requeue_immediate(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    int *n = ud;
    if (++*n == 1)
        ck_assert_int_eq(pact_immediate(t_loop, requeue_immediate, n, NULL), 0);
}

/* An immediate queued by an immediate belongs to the next iteration. */
START_TEST(run_nowait_runs_one_iteration)
{
    int n = 0;
    ck_assert_int_eq(pact_immediate(t_loop, requeue_immediate, &n, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 0);
    ck_assert_int_eq(n, 2);
}
END_TEST

START_TEST(run_bad_mode)
{
    ck_assert_int_eq(pact_loop_run(t_loop, (pact_run_mode)42), PACT_EINVAL);
}
END_TEST

/* ---- stop and re-entrancy ---------------------------------------------- */

struct stopper {
    pact_handle h;
    int n;
};

static void stop_at_three(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct stopper *s = ud;
    if (++s->n == 3)
        ck_assert_int_eq(pact_loop_stop(t_loop), 0);
}

START_TEST(stop_from_interval)
{
    struct stopper s = {{0}, 0};
    ck_assert_int_eq(pact_interval(t_loop, 1, stop_at_three, &s, &s.h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 1);
    ck_assert_int_eq(s.n, 3);
    /* the stop flag is spent: the loop runs again */
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), 1);
    ck_assert_int_eq(pact_clear(t_loop, s.h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
}
END_TEST

struct stop_order {
    int first, micro, second;
};

static void stop_micro(void *ud)
{
    struct stop_order *o = ud;
    o->micro++;
}

static void stop_first(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct stop_order *o = ud;
    o->first++;
    ck_assert_int_eq(pact_queue_microtask(t_loop, stop_micro, o), 0);
    ck_assert_int_eq(pact_loop_stop(t_loop), 0);
}

static void stop_second(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct stop_order *o = ud;
    o->second++;
}

/* "Return after the current callback and its microtasks": a timer due in the
 * same phase waits for the next run. */
START_TEST(stop_returns_after_callback_and_microtasks)
{
    struct stop_order o = {0, 0, 0};
    ck_assert_int_eq(pact_timeout(t_loop, 5, stop_first, &o, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, stop_second, &o, NULL), 0);
    int rc = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    ck_assert_int_eq(o.first, 1);
    ck_assert_int_eq(o.micro, 1);
    ck_assert_msg(o.second == 0, "a timer ran after pact_loop_stop");
    ck_assert_int_eq(rc, 1);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(o.second, 1);
}
END_TEST

static void reenter_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), PACT_EBUSY);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_ONCE), PACT_EBUSY);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), PACT_EBUSY);
    ++*(int *)ud;
}

static void reenter_fn(void *ud)
{
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_NOWAIT), PACT_EBUSY);
    ++*(int *)ud;
}

START_TEST(reentrant_run_is_busy)
{
    int n = 0, m = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 1, reenter_cb, &n, NULL), 0);
    ck_assert_int_eq(pact_next_tick(t_loop, reenter_fn, &m), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(m, 1);
}
END_TEST

/* ---- a program-owned event_base ---------------------------------------- */

static void own_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ++*(int *)arg;
}

/* The program's own timer is the only thing on the base: it must keep
 * pact_loop_run going until it fires. */
START_TEST(from_base_own_event_keeps_alive)
{
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_from_base(base, &loop), 0);
    ck_assert_ptr_eq(pact_loop_base(loop), base);

    int n = 0;
    struct event *ev = evtimer_new(base, own_event_cb, &n);
    struct timeval tv = {0, 30000};
    uint64_t t0 = now_us();
    ck_assert_int_eq(evtimer_add(ev, &tv), 0);
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
    /* libevent's own timers may use the coarse monotonic clock (a few ms) */
    ck_assert_uint_ge(now_us() - t0, 20000);

    ck_assert_int_eq(pact_loop_free(loop), 0);
    event_free(ev);
    event_base_free(base);
}
END_TEST

struct pipe_io {
    int fds[2];
    struct event *ev;
    int reads, writes;
};

static void own_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pipe_io *p = arg;
    char c;
    ck_assert(what & EV_READ);
    ck_assert_int_eq(read(fd, &c, 1), 1);
    p->reads++;
    event_del(p->ev); /* the loop may now end */
}

static void write_pipe_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct pipe_io *p = ud;
    ck_assert_int_eq(p->reads, 0);
    ck_assert_int_eq(write(p->fds[1], "x", 1), 1);
    p->writes++;
}

/* pact's timer and the program's persistent read event share the base; the
 * read event is dispatched in pact_loop_run's I/O phase. */
START_TEST(from_base_own_io_dispatched)
{
    struct event_base *base = event_base_new();
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_from_base(base, &loop), 0);
    struct pipe_io p = {{-1, -1}, NULL, 0, 0};
    ck_assert_int_eq(pipe(p.fds), 0);
    p.ev = event_new(base, p.fds[0], EV_READ | EV_PERSIST, own_read_cb, &p);
    ck_assert_int_eq(event_add(p.ev, NULL), 0);
    ck_assert_int_eq(pact_timeout(loop, 5, write_pipe_cb, &p, NULL), 0);
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(p.writes, 1);
    ck_assert_int_eq(p.reads, 1);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    event_free(p.ev);
    close(p.fds[0]);
    close(p.fds[1]);
    event_base_free(base);
}
END_TEST

/* The loop borrows the base: after pact_loop_free it still works. */
START_TEST(from_base_not_freed_with_loop)
{
    struct event_base *base = event_base_new();
    pact_loop *loop;
    int n = 0;
    ck_assert_int_eq(pact_loop_from_base(base, &loop), 0);
    ck_assert_int_eq(pact_timeout(loop, 1, count_cb, &n, NULL), 0);
    ck_assert_int_eq(pact_loop_run(loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(pact_loop_free(loop), 0);

    int m = 0;
    struct event *ev = evtimer_new(base, own_event_cb, &m);
    struct timeval tv = {0, 1000};
    ck_assert_int_eq(evtimer_add(ev, &tv), 0);
    /* 1: it returned because no events were left, after running ours */
    ck_assert_int_eq(event_base_dispatch(base), 1);
    ck_assert_int_eq(m, 1);
    event_free(ev);
    event_base_free(base);
}
END_TEST

/* The program dispatches the base itself: pact's phases still run, in Node's
 * order within each callback (ticks, then microtasks), immediates after the
 * timer that queued them, close callbacks, intervals; pact_loop_stop ends the
 * program's dispatch. */
struct ext {
    pact_loop *loop;
    pact_handle iv;
    int ticks;
};

static void ext_interval(pact_error *err, void *ud);

static void ext_close(void *ud)
{
    struct ext *x = ud;
    trace("close");
    ck_assert_int_eq(pact_loop_stop(x->loop), 0);
}

static void ext_immediate(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct ext *x = ud;
    trace("immediate");
    ck_assert_int_eq(pact_interval(x->loop, 40, ext_interval, x, &x->iv), 0);
}

static void ext_interval(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct ext *x = ud;
    trace("interval %d", ++x->ticks);
    if (x->ticks == 3)
        ck_assert_int_eq(pact_close(x->loop, x->iv, ext_close, x), 0);
}

static void ext_timer(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct ext *x = ud;
    trace("timer");
    ck_assert_int_eq(pact_queue_microtask(x->loop, trace_fn, "microtask"), 0);
    ck_assert_int_eq(pact_next_tick(x->loop, trace_fn, "tick"), 0);
    ck_assert_int_eq(pact_immediate(x->loop, ext_immediate, x, NULL), 0);
    /* started in the timers phase, so never due in it: it follows the
     * immediate however late this callback ran (a fixed delay from the start
     * would race a loaded machine) */
    ck_assert_int_eq(pact_timeout(x->loop, 1, trace_cb, "second timer", NULL),
                     0);
}

START_TEST(from_base_dispatched_by_program)
{
    struct event_base *base = event_base_new();
    struct ext x = {NULL, {0}, 0};
    ck_assert_int_eq(pact_loop_from_base(base, &x.loop), 0);
    ck_assert_int_eq(pact_next_tick(x.loop, trace_fn, "main tick"), 0);
    ck_assert_int_eq(pact_timeout(x.loop, 3, ext_timer, &x, NULL), 0);
    uint64_t t0 = now_us();
    ck_assert_int_eq(event_base_dispatch(base), 0);
    ck_assert_uint_ge(now_us() - t0, 30000); /* never early, here too */
    ck_assert_str_eq(trace_text(), "main tick\n"
                                   "timer\n"
                                   "tick\n"
                                   "microtask\n"
                                   "immediate\n"
                                   "second timer\n"
                                   "interval 1\n"
                                   "interval 2\n"
                                   "interval 3\n"
                                   "close\n");
    ck_assert_int_eq(pact_loop_free(x.loop), 0);
    event_base_free(base);
}
END_TEST

START_TEST(from_base_null)
{
    pact_loop *loop = NULL;
    ck_assert_int_eq(pact_loop_from_base(NULL, &loop), PACT_EINVAL);
    struct event_base *base = event_base_new();
    ck_assert_int_eq(pact_loop_from_base(base, NULL), PACT_EINVAL);
    event_base_free(base);
}
END_TEST

/* ---- ref / unref ------------------------------------------------------- */

START_TEST(unref_timer_does_not_keep_alive)
{
    int n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 3600000, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_has_ref(t_loop, h), 1);
    ck_assert_int_eq(pact_unref(t_loop, h), 0);
    ck_assert_int_eq(pact_has_ref(t_loop, h), 0);
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(pact_clear(t_loop, h), 0); /* still pending, still open */
}
END_TEST

START_TEST(unref_timer_fires_while_running)
{
    int a = 0, b = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &a, &h), 0);
    ck_assert_int_eq(pact_unref(t_loop, h), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 40, count_cb, &b, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(b, 1);
}
END_TEST

START_TEST(ref_again_keeps_alive)
{
    int n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 20, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_unref(t_loop, h), 0);
    ck_assert_int_eq(pact_unref(t_loop, h), 0); /* not a counter: idempotent */
    ck_assert_int_eq(pact_ref(t_loop, h), 0);
    ck_assert_int_eq(pact_has_ref(t_loop, h), 1);
    ck_assert(pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(opts_unref_starts_unreferenced)
{
    int n = 0;
    pact_handle h;
    pact_timer_opts o = {.delay_ms = 1000, .unref = true};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_has_ref(t_loop, h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
}
END_TEST

/* An unreferenced interval keeps firing while a referenced timer keeps the
 * loop alive, and the run ends as soon as only the interval is left: its
 * third tick clears the 10 s keeper. Counting ticks, not time, keeps this
 * exact on a loaded machine. */
struct alongside {
    pact_handle keeper;
    int ticks;
};

static void alongside_tick(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct alongside *a = ud;
    if (++a->ticks == 3)
        ck_assert_int_eq(pact_clear(t_loop, a->keeper), 0);
}

START_TEST(unref_interval_runs_alongside)
{
    struct alongside a = {{0}, 0};
    int kept = 0;
    pact_handle iv;
    ck_assert_int_eq(pact_interval(t_loop, 5, alongside_tick, &a, &iv), 0);
    ck_assert_int_eq(pact_unref(t_loop, iv), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 3600000, count_cb, &kept, &a.keeper),
                     0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(a.ticks, 3); /* nothing referenced after the third */
    ck_assert_int_eq(kept, 0);
    ck_assert_int_eq(pact_clear(t_loop, iv), 0);
}
END_TEST

START_TEST(ref_bad_handle)
{
    pact_handle zero = {0}, h;
    int n = 0;
    ck_assert_int_eq(pact_ref(t_loop, zero), PACT_ENOENT);
    ck_assert_int_eq(pact_unref(t_loop, zero), PACT_ENOENT);
    ck_assert_int_eq(pact_has_ref(t_loop, zero), PACT_ENOENT);
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(pact_ref(t_loop, h), PACT_ENOENT);
    ck_assert_int_eq(pact_unref(t_loop, h), PACT_ENOENT);
    ck_assert_int_eq(pact_has_ref(t_loop, h), PACT_ENOENT);
}
END_TEST

START_TEST(alive_tracks_work)
{
    int n = 0;
    pact_handle h;
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_immediate(t_loop, count_cb, &n, &h), 0);
    ck_assert(pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_clear(t_loop, h), 0);
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_post(t_loop, count_fn, &n), 0);
    ck_assert(pact_loop_alive(t_loop)); /* a queued post keeps it alive */
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
    ck_assert(!pact_loop_alive(t_loop));
}
END_TEST

/* ---- close_all --------------------------------------------------------- */

/* Counts calls in [0] and those with ECANCELED in [1]. */
static void cancel_cb(pact_error *err, void *ud)
{
    int *n = ud;
    n[0]++;
    n[1] += pact_error_code(err) == PACT_ECANCELED;
}

static void cancel_poll(pact_error *err, int fd, int events, void *ud)
{
    (void)fd;
    (void)events;
    cancel_cb(err, ud);
}

static void cancel_signal(pact_error *err, int signum, void *ud)
{
    (void)signum;
    cancel_cb(err, ud);
}

/* Every armed handle is called once more, with ECANCELED, on the next tick
 * (never inside close_all); unreferenced ones too. */
START_TEST(close_all_clears_everything)
{
    int n[2] = {0, 0};
    int sv[2];
    pact_handle t1, t2, t3;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, cancel_cb, n, &t1), 0);
    ck_assert_int_eq(pact_interval(t_loop, 1, cancel_cb, n, &t2), 0);
    ck_assert_int_eq(pact_immediate(t_loop, cancel_cb, n, NULL), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, cancel_cb, n, &t3), 0);
    ck_assert_int_eq(pact_unref(t_loop, t3), 0);
    ck_assert_int_eq(
        pact_poll(t_loop, sv[0], PACT_WRITABLE, cancel_poll, n, NULL), 0);
    ck_assert_int_eq(pact_signal(t_loop, SIGUSR1, cancel_signal, n, NULL), 0);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(n[0], 0);          /* not inside close_all */
    ck_assert(pact_loop_alive(t_loop)); /* the calls are due */
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n[0], 6);
    ck_assert_int_eq(n[1], 6);
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_clear(t_loop, t1), PACT_ENOENT);
    ck_assert_int_eq(pact_clear(t_loop, t2), PACT_ENOENT);
    /* a second close_all finds nothing left to call */
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n[0], 6);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* Cleared after close_all, before its call is due: no call at all, as a
 * cleared timer's; freed without a run: the calls owed are dropped. */
START_TEST(close_all_then_clear_or_free)
{
    int n[2] = {0, 0};
    pact_handle t1;
    ck_assert_int_eq(pact_timeout(t_loop, 5, cancel_cb, n, &t1), 0);
    ck_assert_int_eq(pact_immediate(t_loop, cancel_cb, n, NULL), 0);
    ck_assert_int_eq(pact_loop_close_all(t_loop), 0);
    ck_assert_int_eq(pact_clear(t_loop, t1), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n[0], 1);
    pact_loop *loop;
    ck_assert_int_eq(pact_loop_new(&loop), 0);
    ck_assert_int_eq(pact_timeout(loop, 5, cancel_cb, n, &t1), 0);
    ck_assert_int_eq(pact_loop_free(loop), PACT_EBUSY); /* still armed */
    ck_assert_int_eq(pact_loop_close_all(loop), 0);
    ck_assert_int_eq(pact_loop_free(loop), 0);
    ck_assert_int_eq(n[0], 1);
}
END_TEST

/* ---- threads ----------------------------------------------------------- */

struct wrong {
    pact_loop *loop;
    pact_handle h;
    int rc[20];
    int ncalls, ran;
};

static void never_fn(void *ud)
{
    ++*(int *)ud;
}

static bool never_hook(pact_loop *loop, pact_error *err, void *ud)
{
    (void)loop;
    (void)err;
    (void)ud;
    return true;
}

static void never_poll(pact_error *err, int fd, int events, void *ud)
{
    (void)err;
    (void)fd;
    (void)events;
    ++*(int *)ud;
}

static void *wrong_thread(void *p)
{
    struct wrong *w = p;
    pact_loop *l = w->loop;
    static int n;
    pact_timer_opts o = {.delay_ms = 1};
    pact_abort *a = NULL;
    int i = 0;
    w->rc[i++] = pact_timeout(l, 1, count_cb, &n, NULL);
    w->rc[i++] = pact_interval(l, 1, count_cb, &n, NULL);
    w->rc[i++] = pact_timer_start(l, &o, count_cb, &n, NULL);
    w->rc[i++] = pact_timer_refresh(l, w->h);
    w->rc[i++] = pact_immediate(l, count_cb, &n, NULL);
    w->rc[i++] = pact_poll(l, 0, PACT_READABLE, never_poll, &n, NULL);
    w->rc[i++] = pact_clear(l, w->h);
    w->rc[i++] = pact_close(l, w->h, never_fn, &n);
    w->rc[i++] = pact_ref(l, w->h);
    w->rc[i++] = pact_unref(l, w->h);
    w->rc[i++] = pact_has_ref(l, w->h);
    w->rc[i++] = pact_next_tick(l, never_fn, &n);
    w->rc[i++] = pact_queue_microtask(l, never_fn, &n);
    w->rc[i++] = pact_loop_stop(l);
    w->rc[i++] = pact_loop_close_all(l);
    w->rc[i++] = pact_loop_on_uncaught(l, never_hook, NULL);
    w->rc[i++] = pact_abort_new(l, &a);
    w->rc[i++] = pact_loop_free(l);
    w->ncalls = i;
    w->ran = n;
    return NULL;
}

/* Only the loop's own thread may touch it; the call fails without effect and
 * names the function on stderr (pact_loop_run: see
 * run_from_other_thread_is_ethread). */
START_TEST(wrong_thread_is_ethread)
{
    struct wrong w = {t_loop, {0}, {0}, 0, 0};
    int fired = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 5, count_cb, &fired, &w.h), 0);
    struct capture cap;
    pthread_t th;
    capture_begin(&cap);
    ck_assert_int_eq(pthread_create(&th, NULL, wrong_thread, &w), 0);
    pthread_join(th, NULL);
    char *err = capture_end(&cap);
    for (int i = 0; i < w.ncalls; i++)
        ck_assert_msg(w.rc[i] == PACT_ETHREAD, "call #%d returned %d", i,
                      w.rc[i]);
    ck_assert_int_eq(w.ran, 0); /* no callback ran on the wrong thread */
    ck_assert_msg(strstr(err, "pact_timeout") != NULL, "stderr: '%s'", err);
    ck_assert_msg(strstr(err, "pact_loop_free") != NULL, "stderr: '%s'", err);
    free(err);
    /* nothing changed: the timer is still there and fires */
    ck_assert_int_eq(pact_has_ref(t_loop, w.h), 1);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(fired, 1);
}
END_TEST

struct other_run {
    int rc_run, rc_stop;
};

static void *run_from_thread(void *p)
{
    struct other_run *o = p;
    o->rc_run = pact_loop_run(t_loop, PACT_RUN_DEFAULT);
    o->rc_stop = pact_loop_stop(t_loop);
    return NULL;
}

static void other_run_in_timer(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, run_from_thread, ud), 0);
    pthread_join(th, NULL);
}

/* Running the loop is its thread's alone: another thread is refused, even
 * while the loop runs, and the loop stays its thread's. */
START_TEST(run_from_other_thread_is_ethread)
{
    struct other_run o = {0, 0};
    int n = 0;
    pthread_t th;
    struct capture cap;
    capture_begin(&cap);
    /* while the loop runs */
    ck_assert_int_eq(pact_timeout(t_loop, 1, other_run_in_timer, &o, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    char *err = capture_end(&cap);
    ck_assert_int_eq(o.rc_run, PACT_ETHREAD);
    ck_assert_int_eq(o.rc_stop, PACT_ETHREAD);
    ck_assert_msg(strstr(err, "pact_loop_run") != NULL, "stderr: '%s'", err);
    free(err);
    /* after it, too */
    capture_begin(&cap);
    ck_assert_int_eq(pthread_create(&th, NULL, run_from_thread, &o), 0);
    pthread_join(th, NULL);
    free(capture_end(&cap));
    ck_assert_int_eq(o.rc_run, PACT_ETHREAD);
    /* the creating thread still owns it */
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &n, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 1);
}
END_TEST

/* ---- descriptor exhaustion ---------------------------------------------
 * In a child of fork(): the limit is the process's. libevent would end the
 * process when its base cannot have its signal pipe. */

static void loops_until_emfile(void *arg)
{
    (void)arg;
    enum { MAX = 16 };
    pact_loop *loops[MAX];
    int n = 0, rc = 0;
    int lowest = t_child_fd_limit(20);
    while (n < MAX && (rc = pact_loop_new(&loops[n])) == 0)
        n++;
    T_CHILD_ASSERT(rc == PACT_EMFILE);
    T_CHILD_ASSERT(n >= 1);
    while (n > 0)
        T_CHILD_ASSERT(pact_loop_free(loops[--n]) == 0);
    /* each spare count makes the making fail at another step, or not */
    int made = 0, refused = 0;
    for (int spare = 0; spare <= 12; spare++) {
        t_child_fd_limit(spare);
        pact_loop *loop = NULL;
        rc = pact_loop_new(&loop);
        T_CHILD_ASSERT(rc == 0 || rc == PACT_EMFILE);
        if (rc == 0) {
            made++;
            T_CHILD_ASSERT(pact_loop_free(loop) == 0);
        } else {
            refused++;
        }
    }
    T_CHILD_ASSERT(made && refused);
    T_CHILD_ASSERT(t_child_fd_limit(0) == lowest);
}

START_TEST(descriptor_exhaustion_is_emfile)
{
    t_forked(loops_until_emfile, NULL);
}
END_TEST

/* ---- arguments --------------------------------------------------------- */

START_TEST(null_arguments)
{
    int n = 0;
    pact_handle h;
    pact_abort *a;
    ck_assert_int_eq(pact_loop_new(NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_timeout(t_loop, 1, NULL, NULL, &h), PACT_EINVAL);
    ck_assert_int_eq(pact_interval(t_loop, 1, NULL, NULL, &h), PACT_EINVAL);
    ck_assert_int_eq(pact_timer_start(t_loop, NULL, count_cb, &n, &h),
                     PACT_EINVAL);
    pact_timer_opts o = {.delay_ms = 1};
    ck_assert_int_eq(pact_timer_start(t_loop, &o, NULL, NULL, &h), PACT_EINVAL);
    ck_assert_int_eq(pact_immediate(t_loop, NULL, NULL, &h), PACT_EINVAL);
    ck_assert_int_eq(pact_signal(t_loop, SIGUSR1, NULL, NULL, &h), PACT_EINVAL);
    ck_assert_int_eq(pact_poll(t_loop, 0, PACT_READABLE, NULL, NULL, &h),
                     PACT_EINVAL);
    ck_assert_int_eq(pact_next_tick(t_loop, NULL, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_queue_microtask(t_loop, NULL, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_loop_post(t_loop, NULL, NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_abort_new(t_loop, NULL), PACT_EINVAL);
    /* a NULL loop */
    ck_assert_int_eq(pact_timeout(NULL, 1, count_cb, &n, &h), PACT_EINVAL);
    ck_assert_int_eq(pact_immediate(NULL, count_cb, &n, &h), PACT_EINVAL);
    ck_assert_int_eq(pact_next_tick(NULL, count_fn, &n), PACT_EINVAL);
    ck_assert_int_eq(pact_loop_run(NULL, PACT_RUN_DEFAULT), PACT_EINVAL);
    ck_assert_int_eq(pact_loop_stop(NULL), PACT_EINVAL);
    ck_assert_int_eq(pact_loop_post(NULL, count_fn, &n), PACT_EINVAL);
    ck_assert_int_eq(pact_abort_new(NULL, &a), PACT_EINVAL);
    /* nothing was started */
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* ---- the clock --------------------------------------------------------- */

START_TEST(now_is_cached_until_updated)
{
    uint64_t a = pact_loop_now(t_loop);
    sleep_ms(20);
    ck_assert_uint_eq(pact_loop_now(t_loop), a);
    uint64_t b = pact_loop_update_time(t_loop);
    ck_assert_uint_ge(b, a + 20);
    ck_assert_uint_eq(pact_loop_now(t_loop), b);
    uint64_t prev = b;
    for (int i = 0; i < 1000; i++) {
        uint64_t t = pact_loop_update_time(t_loop);
        ck_assert_uint_ge(t, prev);
        prev = t;
    }
}
END_TEST

struct clock_probe {
    uint64_t set_at, seen;
    int n;
};

static void clock_cb(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct clock_probe *c = ud;
    c->seen = pact_loop_now(t_loop);
    c->n++;
}

/* The loop's clock advances with its iterations: a 30 ms timer sees it at
 * least 30 ms later than when it was set. */
START_TEST(now_advances_with_the_loop)
{
    struct clock_probe c = {pact_loop_update_time(t_loop), 0, 0};
    ck_assert_int_eq(pact_timeout(t_loop, 30, clock_cb, &c, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.n, 1);
    ck_assert_uint_ge(c.seen, c.set_at + 30);
}
END_TEST

Suite *suite_loop(void)
{
    Suite *s = suite_create("loop");
    TCase *life = tcase_create("lifecycle");
    tcase_add_test(life, new_and_free);
    tcase_add_test(life, descriptor_exhaustion_is_emfile);
    tcase_add_test(life, free_drops_queued_work);
    suite_add_tcase(s, life);

    TCase *run = tcase_create("run");
    tcase_add_checked_fixture(run, t_setup, t_teardown);
    tcase_add_test(run, free_while_running_is_busy);
    tcase_add_test(run, free_with_open_handle_is_busy);
    tcase_add_test(run, run_empty_returns_at_once);
    tcase_add_test(run, run_default_until_no_work);
    tcase_add_test(run, run_with_timer_already_due);
    tcase_add_test(run, run_once_waits_then_reports);
    tcase_add_test(run, run_once_last_timer_returns_zero);
    tcase_add_test(run, run_nowait_does_not_wait);
    tcase_add_test(run, run_nowait_runs_one_iteration);
    tcase_add_test(run, run_bad_mode);
    tcase_add_test(run, stop_from_interval);
    tcase_add_test(run, stop_returns_after_callback_and_microtasks);
    tcase_add_test(run, reentrant_run_is_busy);
    suite_add_tcase(s, run);

    TCase *base = tcase_create("from_base");
    tcase_add_test(base, from_base_own_event_keeps_alive);
    tcase_add_test(base, from_base_own_io_dispatched);
    tcase_add_test(base, from_base_not_freed_with_loop);
    tcase_add_test(base, from_base_dispatched_by_program);
    tcase_add_test(base, from_base_null);
    suite_add_tcase(s, base);

    TCase *ref = tcase_create("ref");
    tcase_add_checked_fixture(ref, t_setup, t_teardown);
    tcase_add_test(ref, unref_timer_does_not_keep_alive);
    tcase_add_test(ref, unref_timer_fires_while_running);
    tcase_add_test(ref, ref_again_keeps_alive);
    tcase_add_test(ref, opts_unref_starts_unreferenced);
    tcase_add_test(ref, unref_interval_runs_alongside);
    tcase_add_test(ref, ref_bad_handle);
    tcase_add_test(ref, alive_tracks_work);
    tcase_add_test(ref, close_all_clears_everything);
    tcase_add_test(ref, close_all_then_clear_or_free);
    suite_add_tcase(s, ref);

    TCase *th = tcase_create("threads");
    tcase_add_checked_fixture(th, t_setup, t_teardown);
    tcase_add_test(th, wrong_thread_is_ethread);
    tcase_add_test(th, run_from_other_thread_is_ethread);
    tcase_add_test(th, null_arguments);
    tcase_add_test(th, now_is_cached_until_updated);
    tcase_add_test(th, now_advances_with_the_loop);
    suite_add_tcase(s, th);
    return s;
}
