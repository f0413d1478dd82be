/** @file
 * Stackful tasks: colourless await, as goroutines.
 *
 * A task runs a function on a stack of its own. Inside it, PACT_AWAIT and
 * its forms suspend the task until a promise settles; any function the task
 * calls, at any depth, may await, so nothing has to be written "async"
 * (no function colouring). The loop thread switches between tasks and its
 * own stack; tasks never run in parallel and never leave their loop's thread.
 *
 * An await always suspends, even on a settled promise, and resumes as a
 * microtask, as JavaScript's await does: what was queued before it runs
 * first. Await is the only place a task gives up the thread. On x86-64
 * with GNU C the awaits switch stacks inline, in the function they are
 * written in (pact/task_switch.h): the compiler saves that function's live
 * registers around each await, as around a call.
 *
 * Stacks are mmap'd with a guard page below them, their size set per loop
 * or per task, and kept in a per-loop pool for reuse. Overflowing into the
 * guard page prints the task's name and spawn site and ends the process with
 * SIGSEGV (the fault cannot be recovered from: the stack is gone). Each
 * stack with its guard page is two kernel mappings, so live tasks are bounded
 * by vm.max_map_count / 2 (about 32,000 with the default 65530): raise it
 * with `sysctl vm.max_map_count=N`, or turn the guard pages off per loop
 * (then overflow is caught later, by a canary checked at every switch). */
#ifndef PACT_TASK_H
#define PACT_TASK_H

#if defined(PACT__LAYER) && PACT__LAYER < 3
#error "pact/task.h is layer 3 (await): a lower layer must not include it"
#endif

#include "pact/chan.h"
#include "pact/common.h"
#include "pact/error.h"
#include "pact/task_switch.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A running or suspended task (owned by its loop; see pact_task_current). */
typedef struct pact_task pact_task;

/**
 * A task's body. @p result starts as nothing; what the body stores there
 * becomes the value of the task's promise (ownership moves to it; it may be
 * a promise to adopt). Return NULL to fulfil the promise, or an error (a
 * reference, stolen) to reject it, in which case @p result is released.
 */
typedef pact_error *(*pact_task_fn)(void *arg, pact_value *result);

/** Options for pact_task_spawn; NULL means all defaults. */
typedef struct pact_task_opts {
    /** For reports (borrowed: static storage, or alive as long as the
     *  task). NULL: the body's spawn site is the name. */
    const char *name;
    /** Usable stack in bytes, rounded up to whole pages; 0: the loop's
     *  (pact_loop_set_stack_size, 256 KiB unless set). */
    size_t stack_size;
    /** Cancels this task (borrowed: the task keeps its own reference while
     *  it listens); NULL: none. Aborted before the body starts (already at
     *  spawn, or before the microtask that starts it): the body never runs
     *  and the promise rejects with PACT_ECANCELED caused by the reason (no
     *  stack is taken when aborted at spawn). Aborted while it runs or is
     *  suspended: the await it is suspended in resumes, as a microtask,
     *  with that error, and so fails every later await of the task, so its
     *  code unwinds. A task ended so is not an unhandled rejection. After
     *  the task has finished, aborting is a no-op (it stops listening). */
    pact_abort *abort;
} pact_task_opts;

/**
 * Start @p fn(@p arg, result) as a task. It begins as a microtask (as `go f()`
 * begins later, not inside the call); @p arg is borrowed by the body.
 * @return a new reference to the promise of its result; NULL only for misuse
 * or when out of memory. When no stack can be had (mmap failed: memory, or
 * vm.max_map_count), the promise comes back already rejected with
 * PACT_ENOMEM and @p fn never runs.
 *
 * Cancellation: after pact_loop_close_all the task's suspended await and
 * every later one give PACT_ECANCELED, so its code unwinds; its promise
 * rejecting with PACT_ECANCELED then is not an unhandled rejection.
 * pact_loop_free returns PACT_EBUSY while a task has not finished. To cancel
 * one task, give it an abort token (pact_task_opts.abort): its awaits then
 * fail with PACT_ECANCELED caused by the reason, as after close_all.
 * @param loop  the loop whose thread runs the task.
 * @param fn, arg  the body and its argument (borrowed, the caller's).
 * @param opts  NULL for the defaults; read during the call only.
 * @param file, line  the spawn site for reports (static strings).
 */
PACT_API pact_promise *pact_task_spawn_at(pact_loop *loop, pact_task_fn fn,
                                          void *arg, const pact_task_opts *opts,
                                          const char *file, int line);
/** pact_task_spawn_at with the caller's file:line as the spawn site. */
#define pact_task_spawn(loop, fn, arg, opts)                                   \
    pact_task_spawn_at((loop), (fn), (arg), (opts), __FILE__, __LINE__)

/* ---- awaiting -------------------------------------------------------------
 * Three forms, all stealing the promise (so PACT_AWAIT(pact_delay(...))
 * leaks nothing):
 *   v = PACT_AWAIT(p);              the value; a rejection "throws"
 *   err = PACT_AWAIT_ERR(p, &v);    the error, for the caller to handle
 *   PACT_AWAIT_TRY(p, &v);          on rejection, `return err;` from here
 * The value (&v may be NULL to drop it) is the caller's own: a copy, a new
 * reference, or the value itself when the task held the last reference to the
 * promise. A PACT_OWNED value still shared with other holders cannot be
 * copied: the await then fails with PACT_EINVAL.
 *
 * "Throws" means what an uncaught exception does in an async function: the
 * task unwinds at once (longjmp) to its body's caller and its promise rejects
 * with the error. Frames between are skipped, so what they own leaks: in code
 * that holds resources use the ERR or TRY forms.
 *
 * Awaiting outside a task is misuse: reported on stderr, the ERR and TRY
 * forms give PACT_ENOTASK and PACT_AWAIT a PACT_ERROR value holding it.
 * After pact_loop_close_all a suspended await gives PACT_ECANCELED, and so
 * does every later await in that task, so its code can unwind. */

/** The error form: NULL and *@p out set, or the rejection (a new reference;
 *  *@p out is then nothing). */
PACT_NODISCARD PACT_API pact_error *
pact_await_at(pact_promise *p, pact_value *out, const char *file, int line);
/** The throwing form's function (see PACT_AWAIT). */
PACT_API pact_value pact_await_value_at(pact_promise *p, const char *file,
                                        int line);

/** PACT_AWAIT's first half, for the inline switch (pact/task_switch.h):
 *  not to be called directly. As pact_await_at up to the point of
 *  suspending: there it stores in @p sw the contexts to switch from and to,
 *  and returns 1 (the caller switches, then calls pact_await_leave_);
 *  else it returns 0 with the await's outcome in *@p err. */
PACT_API int pact_await_enter_(pact_promise *p, pact_value *out,
                               const char *file, int line, void *sw[2],
                               pact_error **err);
/** PACT_AWAIT's second half, once switched back to (see
 *  pact_await_enter_): the outcome, as pact_await_at's. */
PACT_NODISCARD PACT_API pact_error *pact_await_leave_(pact_value *out);
/** The throwing form's rejection (see PACT_AWAIT): unwinds the task, or
 *  outside one returns a PACT_ERROR value holding @p err. */
PACT_API pact_value pact_await_throw_(pact_error *err);

/** @cond PACT_INTERNAL */
#if PACT_SWITCH_INLINE
static inline __attribute__((always_inline)) pact_error *
pact_await_inline_(pact_promise *p, pact_value *out, const char *file, int line)
{
    void *sw[2];
    pact_error *err;
    if (pact_await_enter_(p, out, file, line, sw, &err)) {
        pact_switch_((void **)sw[0], (void *const *)sw[1]);
        return pact_await_leave_(out);
    }
    return err;
}
static inline __attribute__((always_inline)) pact_value
pact_await_value_inline_(pact_promise *p, const char *file, int line)
{
    pact_value v;
    pact_error *err = pact_await_inline_(p, &v, file, line);
    if (__builtin_expect(err == NULL, 1))
        return v;
    return pact_await_throw_(err);
}
#define PACT_AWAIT_AT_(p, out, file, line)                                     \
    pact_await_inline_((p), (out), (file), (line))
#define PACT_AWAIT_VALUE_AT_(p, file, line)                                    \
    pact_await_value_inline_((p), (file), (line))
#else
#define PACT_AWAIT_AT_(p, out, file, line)                                     \
    pact_await_at((p), (out), (file), (line))
#define PACT_AWAIT_VALUE_AT_(p, file, line)                                    \
    pact_await_value_at((p), (file), (line))
#endif
/** @endcond */

/** In a task, await @p p (stolen): the value, the caller's own. A rejection
 *  "throws": the task unwinds at once to its body's caller, whose promise
 *  rejects with the error (frames between leak what they own: use the ERR
 *  or TRY forms there). Outside a task: a PACT_ERROR value (PACT_ENOTASK). */
#define PACT_AWAIT(p) PACT_AWAIT_VALUE_AT_((p), __FILE__, __LINE__)
/** In a task, await @p p (stolen): NULL and the value in *@p out (may be
 *  NULL to drop it), or the rejection (a new reference, to handle or drop):
 *  PACT_ECANCELED after pact_loop_close_all, PACT_ENOTASK outside a task. */
#define PACT_AWAIT_ERR(p, out) PACT_AWAIT_AT_((p), (out), __FILE__, __LINE__)
/** A statement: on rejection, return the error from the enclosing function
 *  (which must return pact_error *), as Rust's `?`. */
#define PACT_AWAIT_TRY(p, out)                                                 \
    do {                                                                       \
        pact_error *pact_await_err__ =                                         \
            PACT_AWAIT_AT_((p), (out), __FILE__, __LINE__);                    \
        if (pact_await_err__)                                                  \
            return pact_await_err__;                                           \
    } while (0)

/**
 * Wait for the first of @p n promises to settle (Go's select over receives,
 * Promise.race with the winner's index). The promises are borrowed: the
 * others stay yours, still pending or settled, to await again or drop.
 * @param ps, n  the promises (borrowed), at least one.
 * @param index  receives the winner's position (may be NULL).
 * @param out    as pact_await_at.
 * @param file, line  the caller's, for reports (the macro passes them).
 * @return as pact_await_at; PACT_EINVAL when @p n is 0.
 */
PACT_NODISCARD PACT_API pact_error *
pact_await_any_at(pact_promise *const *ps, size_t n, size_t *index,
                  pact_value *out, const char *file, int line);
/** pact_await_any_at with the caller's file:line. */
#define pact_await_any(ps, n, index, out)                                      \
    pact_await_any_at((ps), (n), (index), (out), __FILE__, __LINE__)

/** Suspend the current task for @p ms (pact_delay). @return NULL, or
 *  PACT_ENOTASK / PACT_ECANCELED (a new reference). */
PACT_NODISCARD PACT_API pact_error *pact_sleep_at(int64_t ms, const char *file,
                                                  int line);
/** pact_sleep_at with the caller's file:line. */
#define pact_sleep(ms) pact_sleep_at((ms), __FILE__, __LINE__)
/** Let the loop run a turn (timers, I/O, immediates) before going on: the
 *  task resumes in the next check phase, as `await setImmediate()`.
 *  @return as pact_sleep. */
PACT_NODISCARD PACT_API pact_error *pact_yield_at(const char *file, int line);
/** pact_yield_at with the caller's file:line. */
#define pact_yield() pact_yield_at(__FILE__, __LINE__)

/**
 * In a task: receive from @p ch with no promise in between (Go's
 * `v := <-ch`). A value buffered, or a sender parked, completes it at once,
 * without suspending, as Go's receive; else the task parks on the channel
 * and a send hands its value straight over, the task resuming as a
 * microtask. Cancelled by the task's scope (its group, cancel scope or
 * token, pact_loop_close_all): then nothing is taken from the channel.
 * @param ch the channel, of the task's loop.
 * @param out receives the value (the caller's), or PACT_NOTHING.
 * @param file, line the await's site, for reports.
 * @return NULL; PACT_EOF (closed and drained), PACT_ECANCELED (cancelled,
 *   the channel freed), PACT_ENOTASK, PACT_EINVAL, PACT_ENOMEM (a new
 *   reference).
 */
PACT_NODISCARD PACT_API pact_error *
pact_await_recv_at(pact_chan *ch, pact_value *out, const char *file, int line);
/**
 * In a task: send @p value (stolen, released on failure) on @p ch with no
 * promise in between (Go's `ch <- v`): at once when a receiver is parked
 * (the hand-off) or the buffer has room, else parked until one comes.
 * Cancellation as pact_await_recv_at: a cancelled send delivers nothing.
 * @return NULL; PACT_EPIPE (closed), PACT_ECANCELED, PACT_ENOTASK,
 *   PACT_EINVAL, PACT_ENOMEM (a new reference).
 */
PACT_NODISCARD PACT_API pact_error *
pact_await_send_at(pact_chan *ch, pact_value value, const char *file, int line);
/** pact_await_recv's first half for the inline switch (see
 *  pact_await_enter_): not to be called directly. */
PACT_API int pact_await_recv_enter_(pact_chan *ch, pact_value *out,
                                    const char *file, int line, void *sw[2],
                                    pact_error **err);
/** pact_await_send's first half for the inline switch (see
 *  pact_await_enter_): not to be called directly. */
PACT_API int pact_await_send_enter_(pact_chan *ch, pact_value value,
                                    const char *file, int line, void *sw[2],
                                    pact_error **err);
/** The second half of pact_await_recv_enter_ and pact_await_send_enter_,
 *  once switched back to: the outcome, as pact_await_recv_at's. */
PACT_NODISCARD PACT_API pact_error *pact_await_park_leave_(pact_value *out);

/** @cond PACT_INTERNAL */
#if PACT_SWITCH_INLINE
static inline __attribute__((always_inline)) pact_error *
pact_await_recv_inline_(pact_chan *ch, pact_value *out, const char *file,
                        int line)
{
    void *sw[2];
    pact_error *err;
    if (pact_await_recv_enter_(ch, out, file, line, sw, &err)) {
        pact_switch_((void **)sw[0], (void *const *)sw[1]);
        return pact_await_park_leave_(out);
    }
    return err;
}
static inline __attribute__((always_inline)) pact_error *
pact_await_send_inline_(pact_chan *ch, pact_value value, const char *file,
                        int line)
{
    void *sw[2];
    pact_error *err;
    if (pact_await_send_enter_(ch, value, file, line, sw, &err)) {
        pact_switch_((void **)sw[0], (void *const *)sw[1]);
        return pact_await_park_leave_(NULL);
    }
    return err;
}
#define PACT_AWAIT_RECV_AT_(ch, out, file, line)                               \
    pact_await_recv_inline_((ch), (out), (file), (line))
#define PACT_AWAIT_SEND_AT_(ch, value, file, line)                             \
    pact_await_send_inline_((ch), (value), (file), (line))
#else
#define PACT_AWAIT_RECV_AT_(ch, out, file, line)                               \
    pact_await_recv_at((ch), (out), (file), (line))
#define PACT_AWAIT_SEND_AT_(ch, value, file, line)                             \
    pact_await_send_at((ch), (value), (file), (line))
#endif
/** @endcond */

/** pact_await_recv_at with the caller's file:line (the switch inline where
 *  it can be, as PACT_AWAIT's). */
#define pact_await_recv(ch, out)                                               \
    PACT_AWAIT_RECV_AT_((ch), (out), __FILE__, __LINE__)
/** pact_await_send_at with the caller's file:line (the switch inline where
 *  it can be, as PACT_AWAIT's). */
#define pact_await_send(ch, value)                                             \
    PACT_AWAIT_SEND_AT_((ch), (value), __FILE__, __LINE__)

/* ---- introspection and settings ------------------------------------------ */

/** @return the task running now on this thread, or NULL on a loop's own
 *  stack. */
PACT_API pact_task *pact_task_current(void);
/** @return the task's loop (borrowed; NULL for NULL). */
PACT_API pact_loop *pact_task_loop(const pact_task *t);
/** @return its name: the option, else "file:line" of the spawn. */
PACT_API const char *pact_task_name(const pact_task *t);
/** @return the file where it was spawned (a static string from __FILE__;
 *  NULL for NULL). */
PACT_API const char *pact_task_file(const pact_task *t);
/** @return the line where it was spawned (0 for NULL). */
PACT_API int pact_task_line(const pact_task *t);
/** @return its usable stack size in bytes. */
PACT_API size_t pact_task_stack_size(const pact_task *t);
/** @return the number of tasks started and not yet finished on @p loop. */
PACT_API size_t pact_loop_tasks(pact_loop *loop);

/** The stack size of tasks spawned from now on without their own (bytes,
 *  rounded up to pages; at least 16 KiB). @return 0, PACT_EINVAL (NULL loop,
 *  0 bytes), PACT_ETHREAD or PACT_ENOMEM. */
PACT_API int pact_loop_set_stack_size(pact_loop *loop, size_t bytes);
/** How many finished tasks' stacks (of the loop's default size) the loop
 *  keeps indefinitely for reuse (default 64). Beyond them, stacks freed
 *  while the pool is full are kept as a surplus (up to 4,096) and unmapped
 *  once idle for about a second, by a timer that never keeps the loop
 *  alive; 0 keeps nothing at all, surplus included (doc/await.md, "The
 *  pool"). Setting it cuts what is kept to @p stacks at once.
 *  @return 0, PACT_EINVAL, PACT_ETHREAD or PACT_ENOMEM. */
PACT_API int pact_loop_set_stack_pool(pact_loop *loop, size_t stacks);
/** Guard pages (the default) or not. Without them a stack is one mapping
 *  (no vm.max_map_count ceiling on live tasks), and an overflow is found
 *  only at the task's next switch, by a canary, and aborts the process.
 *  Applies to stacks mapped from now on. @return 0, PACT_EINVAL,
 *  PACT_ETHREAD or PACT_ENOMEM. */
PACT_API int pact_loop_set_stack_guard(pact_loop *loop, bool guard);

#ifdef __cplusplus
}
#endif
#endif
