/* I/O watchers: fd pollers on real pipes and socketpairs, signal watchers
 * fed by raise() and by kill() from another thread, the I/O-then-check order,
 * and pact_close's callback in the close phase. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "suites.h"

/* ---- fd pollers -------------------------------------------------------- */

struct watch {
    pact_handle h;
    int fds[2];
    int calls, events, fd, wrote, reads_needed;
};

static void readable_cb(pact_error *err, int fd, int events, void *ud)
{
    ck_assert_ptr_null(err);
    struct watch *w = ud;
    w->calls++;
    w->fd = fd;
    w->events = events;
    ck_assert_int_eq(w->wrote, 1); /* not before there was something to read */
    /* leave the byte unread the first time: level-triggered, as uv_poll */
    if (w->calls < w->reads_needed)
        return;
    char c;
    ck_assert_int_eq(read(fd, &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    ck_assert_int_eq(pact_clear(t_loop, w->h), 0);
}

static void write_later(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct watch *w = ud;
    ck_assert_int_eq(w->calls, 0);
    ck_assert_int_eq(write(w->fds[1], "x", 1), 1);
    w->wrote = 1;
}

START_TEST(poll_pipe_readable)
{
    struct watch w = {.reads_needed = 2};
    ck_assert_int_eq(pipe(w.fds), 0);
    ck_assert_int_eq(
        pact_poll(t_loop, w.fds[0], PACT_READABLE, readable_cb, &w, &w.h), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 10, write_later, &w, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(w.calls, 2);
    ck_assert_int_eq(w.fd, w.fds[0]);
    ck_assert_int_eq(w.events, PACT_READABLE);
    ck_assert_int_eq(pact_clear(t_loop, w.h), PACT_ENOENT);
    close(w.fds[0]);
    close(w.fds[1]);
}
END_TEST

static void writable_cb(pact_error *err, int fd, int events, void *ud)
{
    ck_assert_ptr_null(err);
    struct watch *w = ud;
    w->calls++;
    w->fd = fd;
    w->events = events;
    ck_assert_int_eq(pact_clear(t_loop, w->h), 0);
}

START_TEST(poll_socketpair_writable)
{
    struct watch w = {0};
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, w.fds), 0);
    ck_assert_int_eq(
        pact_poll(t_loop, w.fds[0], PACT_WRITABLE, writable_cb, &w, &w.h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_int_eq(w.fd, w.fds[0]);
    ck_assert_int_eq(w.events, PACT_WRITABLE);
    close(w.fds[0]);
    close(w.fds[1]);
}
END_TEST

/* Data waiting and room to write: one call reports both. */
START_TEST(poll_reports_both_events)
{
    struct watch w = {0};
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, w.fds), 0);
    ck_assert_int_eq(write(w.fds[1], "x", 1), 1);
    ck_assert_int_eq(pact_poll(t_loop, w.fds[0], PACT_READABLE | PACT_WRITABLE,
                               writable_cb, &w, &w.h),
                     0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_int_eq(w.events, PACT_READABLE | PACT_WRITABLE);
    close(w.fds[0]);
    close(w.fds[1]);
}
END_TEST

START_TEST(poll_cleared_never_called)
{
    struct watch w = {0};
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, w.fds), 0);
    ck_assert_int_eq(
        pact_poll(t_loop, w.fds[0], PACT_WRITABLE, writable_cb, &w, &w.h), 0);
    ck_assert_int_eq(pact_clear(t_loop, w.h), 0);
    ck_assert_int_eq(pact_clear(t_loop, w.h), PACT_ENOENT);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(w.calls, 0);
    close(w.fds[0]);
    close(w.fds[1]);
}
END_TEST

/* Each of two ready pollers stops the loop: the run returns after the first
 * callback, and the second runs in the next run, as pact_loop_stop says. */
static void stop_on_ready(pact_error *err, int fd, int events, void *ud)
{
    (void)fd;
    (void)events;
    ck_assert_ptr_null(err);
    struct watch *w = ud;
    w->calls++;
    ck_assert_int_eq(pact_clear(t_loop, w->h), 0);
    ck_assert_int_eq(pact_loop_stop(t_loop), 0);
}

START_TEST(stop_in_io_phase_leaves_other_ready_events)
{
    struct watch a = {0}, b = {0};
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a.fds), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b.fds), 0);
    ck_assert_int_eq(
        pact_poll(t_loop, a.fds[0], PACT_WRITABLE, stop_on_ready, &a, &a.h), 0);
    ck_assert_int_eq(
        pact_poll(t_loop, b.fds[0], PACT_WRITABLE, stop_on_ready, &b, &b.h), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 1);
    ck_assert_int_eq(a.calls + b.calls, 1);
    /* nothing is left once the second has run and cleared itself */
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(b.calls, 1);
    for (int i = 0; i < 2; i++) {
        close(a.fds[i]);
        close(b.fds[i]);
    }
}
END_TEST

static void io_then_schedule(pact_error *err, int fd, int events, void *ud)
{
    ck_assert_ptr_null(err);
    struct watch *w = ud;
    char c;
    ck_assert(events & PACT_READABLE);
    ck_assert_int_eq(read(fd, &c, 1), 1);
    w->calls++;
    trace("io");
    ck_assert_int_eq(pact_clear(t_loop, w->h), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 0, trace_cb, "timeout", NULL), 0);
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "immediate", NULL), 0);
}

/* From an I/O callback the check phase comes before the next timers phase,
 * so the immediate always wins (unlike from the main turn). */
START_TEST(io_callback_then_immediate_before_timeout)
{
    struct watch w = {0};
    ck_assert_int_eq(pipe(w.fds), 0);
    ck_assert_int_eq(write(w.fds[1], "x", 1), 1);
    ck_assert_int_eq(
        pact_poll(t_loop, w.fds[0], PACT_READABLE, io_then_schedule, &w, &w.h),
        0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_str_eq(trace_text(), "io\nimmediate\ntimeout\n");
    close(w.fds[0]);
    close(w.fds[1]);
}
END_TEST

/* ---- signals ----------------------------------------------------------- */

struct sig {
    pact_handle h;
    pthread_t loop_thread;
    int calls, signum, on_loop_thread, clear_rc;
};

static void sig_cb(pact_error *err, int signum, void *ud)
{
    ck_assert_ptr_null(err);
    struct sig *s = ud;
    s->calls++;
    s->signum = signum;
    s->on_loop_thread = pthread_equal(pthread_self(), s->loop_thread);
    s->clear_rc = pact_clear(t_loop, s->h);
}

static void raise_usr1(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    ++*(int *)ud;
    ck_assert_int_eq(raise(SIGUSR1), 0);
}

START_TEST(signal_raised_from_timer)
{
    struct sig s = {.loop_thread = pthread_self(), .clear_rc = 1};
    int raised = 0;
    ck_assert_int_eq(pact_signal(t_loop, SIGUSR1, sig_cb, &s, &s.h), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, raise_usr1, &raised, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(raised, 1);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.signum, SIGUSR1);
    ck_assert(s.on_loop_thread);
    ck_assert_int_eq(s.clear_rc, 0);
}
END_TEST

static void *kill_later(void *p)
{
    (void)p;
    sleep_ms(10);
    kill(getpid(), SIGUSR2);
    return NULL;
}

/* The signal may land on the killing thread; the callback still runs on the
 * loop's thread. */
START_TEST(signal_killed_from_thread)
{
    struct sig s = {.loop_thread = pthread_self(), .clear_rc = 1};
    pthread_t th;
    ck_assert_int_eq(pact_signal(t_loop, SIGUSR2, sig_cb, &s, &s.h), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, kill_later, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.signum, SIGUSR2);
    ck_assert(s.on_loop_thread);
    ck_assert_int_eq(s.clear_rc, 0);
}
END_TEST

struct sig_clearer {
    pact_handle h;
    int rc, raised;
};

static void clear_then_raise(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct sig_clearer *c = ud;
    c->rc = pact_clear(t_loop, c->h);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    c->raised++;
}

/* SIGUSR1 is ignored beforehand so a raise after the watcher is gone cannot
 * kill the test, whatever disposition is restored; the watcher must not see
 * it, and the loop must not stay alive for it. */
START_TEST(signal_cleared_not_called)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &ign, &old), 0);
    struct sig s = {.loop_thread = pthread_self(), .clear_rc = 1};
    struct sig_clearer c = {{0}, 1, 0};
    ck_assert_int_eq(pact_signal(t_loop, SIGUSR1, sig_cb, &s, &c.h), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, clear_then_raise, &c, NULL), 0);
    int later = 0;
    ck_assert_int_eq(pact_timeout(t_loop, 30, count_cb, &later, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(c.raised, 1);
    ck_assert_int_eq(later, 1);
    ck_assert_int_eq(s.calls, 0);
    ck_assert_int_eq(pact_clear(t_loop, c.h), PACT_ENOENT);
    sigaction(SIGUSR1, &old, NULL);
}
END_TEST

/* ---- close ------------------------------------------------------------- */

struct closer {
    pact_handle victim;
    int victim_calls, closed_during_cb, rc_clear, rc_close;
};

static void closed_fn(void *ud)
{
    (void)ud;
    trace("close");
}

static void close_from_timer(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct closer *c = ud;
    trace("timer");
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "immediate", NULL), 0);
    ck_assert_int_eq(pact_close(t_loop, c->victim, closed_fn, c), 0);
    c->closed_during_cb = strstr(trace_text(), "close") != NULL;
    c->rc_clear = pact_clear(t_loop, c->victim);
    c->rc_close = pact_close(t_loop, c->victim, closed_fn, c);
}

static void immediate_then_next(pact_error *err, void *ud)
{
    (void)ud;
    ck_assert_ptr_null(err);
    trace("immediate");
    ck_assert_int_eq(pact_immediate(t_loop, trace_cb, "next iteration", NULL),
                     0);
}

/* timers -> check (immediate) -> close, all in one iteration; the immediate
 * queued by the immediate belongs to the next iteration, after the close. */
START_TEST(close_callback_in_close_phase)
{
    struct closer c = {.rc_clear = 1, .rc_close = 1};
    ck_assert_int_eq(
        pact_timeout(t_loop, 1000, count_cb, &c.victim_calls, &c.victim), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 5, close_from_timer, &c, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.closed_during_cb, 0);
    ck_assert_int_eq(c.rc_clear, PACT_EALREADY);
    ck_assert_int_eq(c.rc_close, PACT_EALREADY);
    ck_assert_int_eq(c.victim_calls, 0);
    ck_assert_str_eq(trace_text(), "timer\nimmediate\nclose\n");
    ck_assert_int_eq(pact_clear(t_loop, c.victim), PACT_ENOENT);
}
END_TEST

static void close_in_immediate(pact_error *err, void *ud)
{
    ck_assert_ptr_null(err);
    struct closer *c = ud;
    trace("first");
    ck_assert_int_eq(pact_close(t_loop, c->victim, closed_fn, c), 0);
    ck_assert_int_eq(pact_immediate(t_loop, immediate_then_next, NULL, NULL),
                     0);
}

/* Closed from an immediate: the close phase of this same iteration runs it,
 * before the immediate queued meanwhile (next iteration's check phase). */
START_TEST(close_before_next_iteration)
{
    struct closer c = {0};
    ck_assert_int_eq(
        pact_timeout(t_loop, 1000, count_cb, &c.victim_calls, &c.victim), 0);
    ck_assert_int_eq(pact_immediate(t_loop, close_in_immediate, &c, NULL), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "first\nclose\nimmediate\nnext iteration\n");
    ck_assert_int_eq(c.victim_calls, 0);
}
END_TEST

/* A closing handle keeps the loop alive until its close callback, and the
 * loop cannot be freed before then (memory is reusable only after it). */
START_TEST(closing_handle_keeps_loop)
{
    int n = 0;
    pact_handle h;
    ck_assert_int_eq(pact_timeout(t_loop, 1000, count_cb, &n, &h), 0);
    ck_assert_int_eq(pact_close(t_loop, h, trace_fn, "closed"), 0);
    ck_assert_str_eq(trace_text(), "");
    ck_assert_int_eq(pact_loop_free(t_loop), PACT_EBUSY);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "closed\n");
    ck_assert_int_eq(n, 0);
}
END_TEST

static void never_poll(pact_error *err, int fd, int events, void *ud)
{
    (void)err;
    (void)fd;
    (void)events;
    ++*(int *)ud;
}

static void never_signal(pact_error *err, int signum, void *ud)
{
    (void)err;
    (void)signum;
    ++*(int *)ud;
}

/* A watch the system refuses fails with the system's reason, and leaves no
 * handle behind (the fixture frees the loop). */
START_TEST(poll_refused_says_why)
{
    int n = 0;
    pact_handle h = {0};
    FILE *f = tmpfile(); /* epoll takes no regular file */
    ck_assert_ptr_nonnull(f);
    struct capture cap;
    capture_begin(&cap); /* libevent warns on stderr */
    int rc_file =
        pact_poll(t_loop, fileno(f), PACT_READABLE, never_poll, &n, &h);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[0]);
    close(fds[1]);
    int rc_closed =
        pact_poll(t_loop, fds[0], PACT_READABLE, never_poll, &n, &h);
    int rc_kill = pact_signal(t_loop, SIGKILL, never_signal, &n, &h);
    free(capture_end(&cap));
    fclose(f);
    ck_assert_str_eq(pact_err_name(rc_file), "EPERM");
    ck_assert_str_eq(pact_err_name(rc_closed), "EBADF");
    ck_assert_str_eq(pact_err_name(rc_kill), "EINVAL");
    ck_assert(!pact_loop_alive(t_loop));
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* Every kind of handle closes, callbacks in the order of the close calls;
 * a NULL close callback is allowed. */
START_TEST(close_every_kind_in_order)
{
    int n = 0, sv[2];
    pact_handle t, i, p, s, u;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(pact_timeout(t_loop, 1, count_cb, &n, &t), 0);
    ck_assert_int_eq(pact_immediate(t_loop, count_cb, &n, &i), 0);
    ck_assert_int_eq(
        pact_poll(t_loop, sv[0], PACT_WRITABLE, never_poll, &n, &p), 0);
    ck_assert_int_eq(pact_signal(t_loop, SIGUSR1, never_signal, &n, &s), 0);
    ck_assert_int_eq(pact_interval(t_loop, 1, count_cb, &n, &u), 0);
    ck_assert_int_eq(pact_close(t_loop, s, trace_fn, "signal"), 0);
    ck_assert_int_eq(pact_close(t_loop, t, trace_fn, "timer"), 0);
    ck_assert_int_eq(pact_close(t_loop, p, trace_fn, "poll"), 0);
    ck_assert_int_eq(pact_close(t_loop, u, NULL, NULL), 0);
    ck_assert_int_eq(pact_close(t_loop, i, trace_fn, "immediate"), 0);
    ck_assert_int_eq(pact_loop_run(t_loop, PACT_RUN_DEFAULT), 0);
    ck_assert_str_eq(trace_text(), "signal\ntimer\npoll\nimmediate\n");
    ck_assert_int_eq(n, 0);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

Suite *suite_io(void)
{
    Suite *s = suite_create("io");
    TCase *poll = tcase_create("poll");
    tcase_add_checked_fixture(poll, t_setup, t_teardown);
    tcase_add_test(poll, poll_pipe_readable);
    tcase_add_test(poll, poll_socketpair_writable);
    tcase_add_test(poll, poll_reports_both_events);
    tcase_add_test(poll, poll_cleared_never_called);
    tcase_add_test(poll, io_callback_then_immediate_before_timeout);
    tcase_add_test(poll, stop_in_io_phase_leaves_other_ready_events);
    tcase_add_test(poll, poll_refused_says_why);
    suite_add_tcase(s, poll);

    TCase *sig = tcase_create("signal");
    tcase_add_checked_fixture(sig, t_setup, t_teardown);
    tcase_add_test(sig, signal_raised_from_timer);
    tcase_add_test(sig, signal_killed_from_thread);
    tcase_add_test(sig, signal_cleared_not_called);
    suite_add_tcase(s, sig);

    TCase *cl = tcase_create("close");
    tcase_add_checked_fixture(cl, t_setup, t_teardown);
    tcase_add_test(cl, close_callback_in_close_phase);
    tcase_add_test(cl, close_before_next_iteration);
    tcase_add_test(cl, closing_handle_keeps_loop);
    tcase_add_test(cl, close_every_kind_in_order);
    suite_add_tcase(s, cl);
    return s;
}
