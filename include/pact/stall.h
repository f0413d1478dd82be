/** @file
 * Layer 1: the loop-stall detector. "The code looks non-blocking but runs
 * blocking": a watchdog thread notices when the loop thread has been inside
 * one step -- a callback, a tick, a microtask, a promise reaction, a task
 * step or an async function step -- for longer than a threshold, and says
 * which one and for how long; once the step returns, it says for how long in
 * all.
 *
 * Off unless asked for, by pact_loop_watch_stalls or by the environment:
 * PACT_STALL_MS=N at loop creation watches every new loop with an N ms
 * threshold and the default report on stderr (PACT_STALL_STACK=1 adds the
 * loop thread's stack). Off, each step costs one load and a predicted
 * branch; on, a few stores to memory only the loop thread writes, and the
 * watchdog thread wakes four times per threshold. doc/stall.md has the
 * details and how to read a report. */
#ifndef PACT_STALL_H
#define PACT_STALL_H

#include <stdio.h>

#include "pact/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What kind of step the loop thread is in. */
typedef enum pact_step_kind {
    PACT_STEP_NONE = 0,  /**< no particular kind ("step") */
    PACT_STEP_TIMER,     /**< a timer's callback (timers phase) */
    PACT_STEP_IMMEDIATE, /**< an immediate's callback (check phase) */
    PACT_STEP_POLL,      /**< an fd poller's callback (I/O phase) */
    PACT_STEP_SIGNAL,    /**< a signal watcher's callback (I/O phase) */
    PACT_STEP_POST,      /**< a pact_loop_post job (I/O phase) */
    PACT_STEP_CLOSE,     /**< a close callback (close phase) */
    PACT_STEP_TICK,      /**< a nextTick job */
    PACT_STEP_MICROTASK, /**< a queued microtask */
    PACT_STEP_REACTION,  /**< a promise reaction: a then/catch/finally handler
                              or a promise callback */
    PACT_STEP_TASK,      /**< a task, from its start or an await to its next
                              await or its end */
    PACT_STEP_ASYNC,     /**< an async function's body, from its start or an
                              await to its next await or its end */
    PACT_STEP_HOOK,      /**< the unhandled-rejection hook */
} pact_step_kind;

/**
 * One report of the detector. Everything in it is borrowed for the hook's
 * call (copy what you keep). Times are measured by the watchdog, which
 * samples the loop four times per threshold: @c ms is a lower bound, at most
 * a quarter of the threshold below the truth.
 */
typedef struct pact_stall {
    pact_loop *loop;       /**< the loop (do not call into it) */
    uint64_t id;           /**< numbers the stalled step: its reports
                                share the id */
    bool ended;            /**< false: still running; true: it returned */
    int nth;               /**< the how-manieth report of the step: 1 when
                                it first passes the threshold, then at
                                each doubling of its time while it lasts,
                                and once it ended */
    uint64_t ms;           /**< how long it has run (ended: in all) */
    uint64_t threshold_ms; /**< the threshold it passed */
    pact_step_kind kind;   /**< the innermost step running */
    const char *what;      /**< @c kind in words ("timer callback") */
    void (*fn)(void);      /**< the callback, handler or body; may be NULL */
    void *ud;              /**< its user data (a task's arg, a frame) */
    const char *fn_name;   /**< @c fn's name: its exported symbol
                                (dladdr), or with libdw (configure's
                                default when found) its symbol in the
                                symbol table, static functions included;
                                or NULL (no symbol: a static function
                                without libdw, a stripped executable) */
    const char *fn_file;   /**< the executable or library holding @c fn */
    uintptr_t fn_offset;   /**< @c fn's address in it, as `addr2line -f -e
                                fn_file` takes it */
    const char *fn_source; /**< the source file of @c fn from the debug
                                information (libdw, a build with -g), or
                                NULL */
    int fn_line;           /**< ... and the line of @c fn there (0: not
                                known) */
    const char *task;      /**< a task step: its name ("file:line" of the
                                spawn without one); else NULL */
    const char *file;      /**< a task step: where it was spawned */
    int line;              /**< ... and the line */
    const char *at_file;   /**< a task step: the await it resumed from
                                (NULL: its first step) */
    int at_line;           /**< ... its line; an async function step: the
                                line of the await it resumed from (0: its
                                first step) */
    const char *state;     /**< what the loop thread was doing when
                                sampled (Linux): "running", or "sleeping in
                                system call clock_nanosleep" and the like;
                                or NULL */
    void *const *stack;    /**< the loop thread's stack when the step was
                                first reported (pact_stall_opts.stack),
                                innermost first; or NULL */
    int stack_depth;       /**< its frames */
} pact_stall;

/** Called on the watchdog thread, never on the loop's: it must not call
 *  into the loop (nor stop the watchdog); printing or recording is fine. */
typedef void (*pact_stall_hook)(const pact_stall *stall, void *ud);

/** How to watch a loop; zero-initialise and set what you need. */
typedef struct pact_stall_opts {
    /** Report a step running longer than this; 0 turns the detector off. */
    uint64_t threshold_ms;
    /** Who hears of it: NULL for the default report on stderr
     *  (pact_stall_print). */
    pact_stall_hook hook;
    void *ud; /**< for @c hook */
    /** Also take the loop thread's stack at the first report of a step, by
     *  a signal (SIGURG) to the loop thread, sent only while that thread is
     *  running (never while it sleeps in a system call, which the signal
     *  would cut short). Skipped when the program has a SIGURG handler of
     *  its own, and off Linux. See doc/stall.md. */
    bool stack;
} pact_stall_opts;

/**
 * Watch @p loop for stalls (or, with a threshold of 0, stop watching it).
 * Replaces an earlier setting; a report in progress goes to the old hook.
 * Stopping waits for the watchdog thread, which first delivers the report
 * of a stalled step that has ended meanwhile. pact_loop_free stops it too.
 * @return 0, PACT_EINVAL (NULL opts), PACT_ERANGE (a threshold above
 *   PACT_TIMEOUT_MAX), PACT_ENOMEM, PACT_ENOTHREAD (the watchdog thread
 *   could not start), PACT_ETHREAD (off the loop thread).
 */
PACT_API int pact_loop_watch_stalls_opts(pact_loop *loop,
                                         const pact_stall_opts *opts);
/** pact_loop_watch_stalls_opts without the stack. @return as
 * pact_loop_watch_stalls_opts. */
PACT_API int pact_loop_watch_stalls(pact_loop *loop, uint64_t threshold_ms,
                                    pact_stall_hook hook, void *ud);
/** @return the threshold the loop is watched with, 0 when it is not (or
 *  when called off the loop thread). */
PACT_API uint64_t pact_loop_stall_threshold(pact_loop *loop);
/** Print @p stall as the default report does (several lines): the
 * callback by name and file:line, and the stack's frames by function and
 * file:line too when pact is built with libdw. Reads debug information:
 * never call it from a signal handler. */
PACT_API void pact_stall_print(const pact_stall *stall, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
