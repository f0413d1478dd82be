/** @file
 * Layer 1: the event loop. One macrotask at a time in Node's phases (timers,
 * I/O, immediates, close callbacks); after every macrotask callback the
 * nextTick queue and then the microtask queue are drained, as in Node v20.
 * Every function here, pact_loop_run included, must be called on the loop's
 * thread (the thread that created it; a worker's loop is its worker's)
 * except pact_loop_post, pact_loop_hold and pact_loop_release; others return
 * PACT_ETHREAD and name themselves on stderr. A NULL loop or callback is
 * PACT_EINVAL. A callback given to a function that returned an error is
 * never called; otherwise it runs on the loop's thread, never inside the
 * call that registered it. */
#ifndef PACT_LOOP_H
#define PACT_LOOP_H

#include "pact/common.h"

struct event_base;

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the loop ---------------------------------------------------------- */

/** How pact_loop_run runs (uv_run_mode). */
typedef enum pact_run_mode {
    /** until no referenced handle or work is left, or stopped */
    PACT_RUN_DEFAULT = 0,
    /** one iteration; waits for I/O if nothing is ready */
    PACT_RUN_ONCE,
    /** one iteration without waiting */
    PACT_RUN_NOWAIT
} pact_run_mode;

/**
 * Make a loop with its own event_base, owned by the calling thread. The
 * program may put its own events on it too (pact_loop_base; bufferevents,
 * listeners, evdns, evhttp): run by pact_loop_run, they are dispatched in
 * its I/O phase, each callback followed by the tick and microtask drain, and
 * they keep the loop alive while added (see pact_loop_unref_event).
 * @param out receives the loop (free with pact_loop_free).
 * @return 0; PACT_EINVAL (NULL @p out); PACT_EMFILE or PACT_ENFILE (out of
 *   descriptors: a loop needs five, and four more for a moment while its
 *   base is made, as libevent would otherwise end the process, see
 *   doc/loop.md); PACT_ENOMEM. On error nothing was made.
 */
PACT_API int pact_loop_new(pact_loop **out);
/**
 * Make a loop on an event_base the program already owns (borrowed: it must
 * outlive the loop, which never frees it). Run it with pact_loop_run: the
 * program's own events on that base are dispatched in its I/O phase, each
 * callback followed by the tick and microtask drain, and keep it alive while
 * added (see pact_loop_unref_event). Or dispatch the base yourself: pact's
 * phases then run from libevent callbacks (see doc/loop.md), and
 * pact_loop_stop ends that dispatch.
 * @param base the program's event_base (borrowed).
 * @param out receives the loop (free with pact_loop_free).
 * @return 0; PACT_EINVAL (NULL @p base or @p out); PACT_EMFILE, PACT_ENFILE
 *   or PACT_ENOMEM, as pact_loop_new. On error nothing was made.
 */
PACT_API int pact_loop_from_base(struct event_base *base, pact_loop **out);

/**
 * Run the loop. Before the first phase the tick and microtask queues are
 * drained (the end of the main program's first turn).
 * @return 1 if work remains (after ONCE, NOWAIT or pact_loop_stop), 0 if none,
 *   PACT_EBUSY if the loop is already running, PACT_ETHREAD off the loop's
 *   thread (the loop is not taken over), or the (negative) code of an
 *   uncaught error that stopped it (see pact_loop_raise).
 */
PACT_API int pact_loop_run(pact_loop *loop, pact_run_mode mode);
/** Make pact_loop_run return after the current callback and its microtasks
 * (or, on a base the program dispatches, end that dispatch).
 * @return 0, PACT_EINVAL or PACT_ETHREAD. */
PACT_API int pact_loop_stop(pact_loop *loop);
/**
 * Free the loop. Queued ticks, microtasks and posts are dropped.
 * @return 0, or PACT_EBUSY (nothing freed) while it runs or has open handles
 *   (referenced or not): clear or close them first, or pact_loop_close_all;
 *   PACT_EBUSY too while promises of the loop are still referenced (queued
 *   promise reactions, which will then never run, are dropped first), and,
 *   on a loop made by pact_loop_new (whose base goes with it), while events
 *   of the program's own are still added to its base.
 */
PACT_API int pact_loop_free(pact_loop *loop);
/**
 * For shutdown: cancel every pending operation. Every armed handle (timers,
 * intervals, immediates, pollers, signals) is cleared and its callback called
 * once more with PACT_ECANCELED on the next tick, never inside this call (a
 * handle cleared before then is not called); so are the services' pending
 * operations (offloads, fs requests, tasks' awaits, port receives and waits
 * for room, worker exit waits) and the program's own (pact_op_start); promise
 * twins reject with it. Handles closing (pact_close) are freed without their
 * close callbacks. pact_loop_free right after, without a run, drops the
 * calls still owed and releases the ud pact owns (a twin's deferred; the
 * program's own: pact_op_type's drop). Promises that
 * wait on each other in a cycle (resolved with each other, directly or round a
 * chain), which nothing could settle or free, are rejected with PACT_ECANCELED,
 * and so are those waiting on them: their reactions run when the loop next
 * runs.
 * @return 0, or PACT_ENOMEM if the search for such cycles had no memory
 *   (the handles are closed all the same; the cycles are left).
 */
PACT_API int pact_loop_close_all(pact_loop *loop);
/** @return whether referenced handles or pending work would keep it running
 * (false for NULL). */
PACT_API bool pact_loop_alive(pact_loop *loop);
/** @return the loop's event_base (borrowed). */
PACT_API struct event_base *pact_loop_base(pact_loop *loop);
/**
 * The program's own events on the loop's base (added with event_add, or by
 * a bufferevent, an evconnlistener, evdns, evhttp) keep pact_loop_run going
 * while they are added, on either kind of base, as they keep
 * event_base_dispatch going: a listener keeps a server running, as a
 * referenced server does in Node. pact_loop_unref_event stops one of them
 * from counting (as Node's server.unref()); the calls are counted: N unrefs
 * let the loop end while N of the program's events are still added.
 * pact_loop_ref_event undoes one: call it when the unreferenced event is
 * deleted or freed, or should count again. libevent counts events, not
 * objects: a listener is one, a bufferevent one per direction that is
 * enabled and waiting (and one per timeout it has set).
 * @return 0, PACT_ETHREAD; pact_loop_ref_event: PACT_EINVAL with no unref
 *   to undo.
 */
PACT_API int pact_loop_unref_event(pact_loop *loop);
/** Undo one pact_loop_unref_event (see there). @return 0, PACT_EINVAL with
 * no unref to undo, PACT_ETHREAD. */
PACT_API int pact_loop_ref_event(pact_loop *loop);
/** @return the loop's clock in ms (monotonic, cached per iteration; 0 for
 * NULL). */
PACT_API uint64_t pact_loop_now(pact_loop *loop);
/** Refresh the cached clock. @return the new value. */
PACT_API uint64_t pact_loop_update_time(pact_loop *loop);

/* ---- macrotasks -------------------------------------------------------- */

/** The longest delay a timer takes (as Node's TIMEOUT_MAX, 2^31-1 ms). As in
 * Node, a delay below 1 is 1 ms, and a delay above this is 1 ms too, with a
 * TimeoutOverflowWarning printed on stderr. */
#define PACT_TIMEOUT_MAX INT64_C(2147483647)

/** Timer options; zero-initialise and set what you need. */
typedef struct pact_timer_opts {
    int64_t delay_ms;  /**< first expiry; below 1 is 1 ms, as in Node */
    int64_t repeat_ms; /**< 0: one-shot; else the interval (below 1: 1 ms) */
    pact_abort *abort; /**< borrowed; when aborted the timer stops and its
                            callback gets PACT_ECANCELED (cause: the reason)
                            on the next tick, never inside the abort call.
                            A token aborted already: the start succeeds and
                            the cancellation comes on the next tick too. */
    bool unref;        /**< start unreferenced: does not keep the loop alive */
} pact_timer_opts;

/**
 * setTimeout: call @p cb after @p ms, never earlier. As in Node, @p ms below 1
 * (0, negative) is 1 ms, and above PACT_TIMEOUT_MAX is 1 ms with a
 * TimeoutOverflowWarning on stderr. Equal delays fire in the order they were
 * set. @p cb gets NULL as its error, or PACT_ECANCELED once, on the next
 * tick, if an abort token (pact_timer_start) or pact_loop_close_all cancels
 * the timer.
 * @param loop, cb, ud  the loop, the callback and its data (the caller's).
 * @param ms  the delay in milliseconds.
 * @param out  if not NULL, receives the handle; it stays valid until the
 *   callback starts (one-shot) or the timer is cleared.
 * @return 0, PACT_EINVAL (NULL callback), PACT_ENOMEM, PACT_ETHREAD; when it
 *   fails @p cb never runs, so the result must be checked.
 */
PACT_NODISCARD PACT_API int pact_timeout(pact_loop *loop, int64_t ms,
                                         pact_cb cb, void *ud,
                                         pact_handle *out);
/** setInterval: call @p cb every @p ms (clamped as pact_timeout's) until
 * cleared. @p out and the errors as pact_timeout's; the handle stays valid
 * until cleared. */
PACT_NODISCARD PACT_API int pact_interval(pact_loop *loop, int64_t ms,
                                          pact_cb cb, void *ud,
                                          pact_handle *out);
/** The general form of pact_timeout and pact_interval, with an abort token
 * and unref (pact_timer_opts; @p opts is read during the call only).
 * @return as pact_timeout (PACT_EINVAL for NULL @p opts too). */
PACT_NODISCARD PACT_API int pact_timer_start(pact_loop *loop,
                                             const pact_timer_opts *opts,
                                             pact_cb cb, void *ud,
                                             pact_handle *out);
/** timeout.refresh(): restart a pending timer's delay from now.
 * @return 0, PACT_ENOENT (no such timer: it fired, was cleared or cancelled),
 *   PACT_EINVAL (the handle is not a timer: an immediate, a signal...). */
PACT_NODISCARD PACT_API int pact_timer_refresh(pact_loop *loop,
                                               pact_handle timer);

/** setImmediate: call @p cb in the next check phase (after I/O).
 * @p out, if not NULL, receives the handle (valid until the callback starts
 * or the immediate is cleared). pact_loop_close_all cancels it: @p cb gets
 * PACT_ECANCELED on the next tick.
 * @return 0, PACT_EINVAL, PACT_ENOMEM, PACT_ETHREAD (then @p cb never runs). */
PACT_NODISCARD PACT_API int pact_immediate(pact_loop *loop, pact_cb cb,
                                           void *ud, pact_handle *out);

/** Signal callback: runs on the loop thread in the I/O phase, each time
 * @p signum arrives; @p err is NULL. */
typedef void (*pact_signal_cb)(pact_error *err, int signum, void *ud);
/** Watch a signal (through libevent; one loop per process may watch
 * signals). Persistent until pact_clear or pact_close; @p out, if not NULL,
 * receives the handle. pact_loop_close_all cancels it: @p cb gets
 * PACT_ECANCELED once, on the next tick.
 * @return 0; PACT_EINVAL (NULL callback, a signal number out of range or one
 *   that cannot be caught); PACT_ENOMEM; PACT_ETHREAD. */
PACT_API int pact_signal(pact_loop *loop, int signum, pact_signal_cb cb,
                         void *ud, pact_handle *out);

/** pact_poll's event: the fd is readable (same bit as EV_READ) */
#define PACT_READABLE 0x02
/** pact_poll's event: the fd is writable (same bit as EV_WRITE) */
#define PACT_WRITABLE 0x04
/** fd poller callback: @p events is what is ready
 * (PACT_READABLE|PACT_WRITABLE). */
typedef void (*pact_poll_cb)(pact_error *err, int fd, int events, void *ud);
/** Watch @p fd (not owned) for @p events until cleared (uv_poll_t):
 * level-triggered and persistent, the events watched cannot be changed (clear
 * it and poll again); clear it before closing @p fd. @p out, if not NULL,
 * receives the handle. pact_loop_close_all cancels it: @p cb gets
 * PACT_ECANCELED once, on the next tick.
 * @return 0; PACT_EINVAL (NULL callback, negative fd, bad events); the
 *   system's reason when epoll refuses the fd: PACT_EPERM (a regular file or
 *   directory), PACT_EBADF (not open); PACT_ENOMEM; PACT_ETHREAD. */
PACT_API int pact_poll(pact_loop *loop, int fd, int events, pact_poll_cb cb,
                       void *ud, pact_handle *out);

/** Options of the watchers (pact_poll_start, pact_signal_start) and
 * pact_immediate_start; zero-initialise and set what you need. */
typedef struct pact_watch_opts {
    pact_abort *abort; /**< borrowed; when aborted the handle stops and its
                            callback gets PACT_ECANCELED (cause: the reason)
                            once, on the next tick, never inside the abort
                            call. A token aborted already: the start
                            succeeds (nothing is watched) and the
                            cancellation comes on the next tick too. */
    bool unref;        /**< start unreferenced: does not keep the loop alive */
} pact_watch_opts;
/** pact_poll with options (an abort token, unreferenced from the start). */
PACT_API int pact_poll_start(pact_loop *loop, int fd, int events,
                             const pact_watch_opts *opts, pact_poll_cb cb,
                             void *ud, pact_handle *out);
/** pact_signal with options (an abort token, unreferenced from the start). */
PACT_API int pact_signal_start(pact_loop *loop, int signum,
                               const pact_watch_opts *opts, pact_signal_cb cb,
                               void *ud, pact_handle *out);
/** pact_immediate with options (an abort token, unreferenced from the
 * start). */
PACT_NODISCARD PACT_API int pact_immediate_start(pact_loop *loop,
                                                 const pact_watch_opts *opts,
                                                 pact_cb cb, void *ud,
                                                 pact_handle *out);

/**
 * clearTimeout / clearInterval / clearImmediate, and stop for signals and
 * pollers: the handle's callback is not called again and the handle is gone.
 * Safe from inside the handle's own callback; there (and in the ticks and
 * microtasks right after it) clearing a one-shot timer returns 0, as Node's
 * clearTimeout is harmless there.
 * @return 0, or PACT_ENOENT if it already fired, was cleared or never existed,
 *   PACT_EALREADY if it is closing.
 */
PACT_API int pact_clear(pact_loop *loop, pact_handle h);
/** As pact_clear, then call @p cb (may be NULL) in the close phase.
 * @return as pact_clear (then @p cb is never called). */
PACT_API int pact_close(pact_loop *loop, pact_handle h, pact_fn cb, void *ud);
/** Let the handle keep the loop alive (the default).
 * @return 0, PACT_ENOENT (no such handle), PACT_EALREADY (closing),
 *   PACT_EINVAL or PACT_ETHREAD. */
PACT_API int pact_ref(pact_loop *loop, pact_handle h);
/** Stop the handle from keeping the loop alive; it still fires while the
 * loop runs. @return as pact_ref. */
PACT_API int pact_unref(pact_loop *loop, pact_handle h);
/** @return 1 if referenced, 0 if not, or PACT_ENOENT. */
PACT_API int pact_has_ref(pact_loop *loop, pact_handle h);

/* ---- microtasks -------------------------------------------------------- */

/** process.nextTick: runs before microtasks, after the current callback.
 * @return 0, PACT_EINVAL, PACT_ETHREAD or PACT_ENOMEM (then @p fn never
 *   runs). pact_loop_free drops queued jobs without running them. */
PACT_API int pact_next_tick(pact_loop *loop, pact_fn fn, void *ud);
/** queueMicrotask: runs after the nextTick queue, before the next macrotask.
 * @return as pact_next_tick. */
PACT_API int pact_queue_microtask(pact_loop *loop, pact_fn fn, void *ud);

/* ---- the thread-safe doors --------------------------------------------- */

/**
 * Run @p fn(@p ud) on the loop's thread, in its I/O phase, from any thread.
 * Posts that arrive together share one wake-up. A queued post keeps the loop
 * alive; to keep it alive for posts not yet made, hold it (pact_loop_hold).
 * The loop must not be freed while another thread may still post; posts
 * queued when it is freed are dropped without running.
 * @return 0, PACT_EINVAL (NULL @p loop or @p fn) or PACT_ENOMEM (then
 *   @p fn never runs).
 */
PACT_API int pact_loop_post(pact_loop *loop, pact_fn fn, void *ud);
/** Keep the loop alive (from any thread) until a matching pact_loop_release. */
PACT_API void pact_loop_hold(pact_loop *loop);
/** Undo one pact_loop_hold (from any thread); the loop may then end. */
PACT_API void pact_loop_release(pact_loop *loop);

/* ---- uncaught errors --------------------------------------------------- */

/**
 * Hand over an error a callback cannot handle (the analogue of an uncaught
 * exception). @p err is borrowed. Unless the hook handles it, the error and its
 * cause chain are printed to stderr, the loop stops after the current callback
 * and pact_loop_run returns the error's code.
 */
PACT_API void pact_loop_raise(pact_loop *loop, pact_error *err);
/** Decide about uncaught errors: return true to handle it (the loop goes
 * on). @p err is borrowed for the call. */
typedef bool (*pact_uncaught_hook)(pact_loop *loop, pact_error *err, void *ud);
/** Install (or with NULL remove) the hook; @p ud is passed to it and stays
 * the caller's. @return 0, PACT_EINVAL or PACT_ETHREAD. */
PACT_API int pact_loop_on_uncaught(pact_loop *loop, pact_uncaught_hook hook,
                                   void *ud);
/** @return the uncaught error that stopped the last run, or one raised
 *  since and not yet returned by a run (borrowed), or NULL. */
PACT_API pact_error *pact_loop_error(pact_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
