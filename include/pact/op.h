/** @file
 * Layer 1: pending operations of the program's own. Every asynchronous
 * operation of pact (timers, offloads, fs requests, port receives...) is a
 * pending-operation record registered with its loop; an operation the
 * program writes itself on pact's primitives, or on its own events or
 * threads, registers one too, and then behaves as pact's own do: an abort
 * token or pact_loop_close_all cancels it, its callback runs exactly once
 * (with PACT_ECANCELED, or the abort reason as its cause, when cancelled),
 * and its ud goes back to its owner even when the loop is freed first. Its
 * promise twin (pact_promisify) then rejects instead of leaking its deferred.
 * doc/cancellation.md tells the rule and shows a whole operation. */
#ifndef PACT_OP_H
#define PACT_OP_H

#include <stdio.h>

#include "pact/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A registered operation (opaque); made by pact_op_start, gone after the
 * call that ends it (pact_op_end returning 1, or the type's `cancelled` or
 * `drop`). */
typedef struct pact_op pact_op;

/** How the loop cancels an operation of this type. Static storage. */
typedef struct pact_op_type {
    /** What it waits on, a short static string ("reading the config"):
     * shown by pact_loop_print_pending. */
    const char *what;
    /** Cancelled (its abort token fired, pact_loop_close_all, pact_op_cancel):
     * stop the work now, without calling the operation's callback.
     * @return true when nothing of it runs any more: `cancelled` is then
     *   called on a later tick, never inside this call; false when part of
     *   it still runs elsewhere (on another thread): call pact_op_end when
     *   that returns, which then hands you the cancellation to call back
     *   with. Required. */
    bool (*cancel)(void *ud);
    /** Call the operation's callback with @p err (borrowed; ECANCELED) and
     * release what it holds: the operation is over. Required. */
    void (*cancelled)(pact_error *err, void *ud);
    /** The loop is being freed while `cancelled` was still due (after
     * pact_loop_close_all, without a run between): release @p ud without
     * calling back (a promise twin's deferred: pact_deferred_unref). May be
     * NULL when there is nothing to release. */
    void (*drop)(void *ud);
} pact_op_type;

/** Options of pact_op_start; zero-initialise and set what you need. */
typedef struct pact_op_opts {
    /** Borrowed; cancels the operation when aborted. A token aborted already:
     * the start succeeds and the cancellation comes on the next tick. */
    pact_abort *abort;
    /** Keep the loop alive while the operation is pending (as a pool job
     * does); false when something else of yours does already (an event
     * added to the loop's base, a referenced handle). */
    bool ref;
} pact_op_opts;

/**
 * Register a pending operation of @p type whose state is @p ud (passed to
 * the type's functions). Call it when the operation starts, before anything
 * can complete it.
 * @param loop the loop whose thread runs the operation's callbacks.
 * @param type its functions (static storage).
 * @param ud the operation's state, the caller's (see pact_op_type).
 * @param opts may be NULL (no token, not referenced).
 * @param out receives the operation.
 * @return 0; PACT_EINVAL (NULL @p type, `cancel` or `cancelled`, or @p out);
 *   PACT_ENOMEM; PACT_ETHREAD. On error nothing is registered.
 */
PACT_NODISCARD PACT_API int pact_op_start(pact_loop *loop,
                                          const pact_op_type *type, void *ud,
                                          const pact_op_opts *opts,
                                          pact_op **out);
/**
 * The operation completed: call this before calling its callback.
 * @param op the operation.
 * @param err receives NULL, or, when it was cancelled while part of it still
 *   ran (`cancel` returned false), the cancellation: a reference to pass to
 *   the callback instead of the result, then unref.
 * @return 1: call the callback now (the operation is freed); 0: it was
 *   cancelled and stopped, so `cancelled` calls back (or has): do not call
 *   back, release only what the completion brought (@p op stays valid until
 *   then); PACT_EINVAL (NULL), PACT_ETHREAD.
 */
PACT_API int pact_op_end(pact_op *op, pact_error **err);
/**
 * Cancel @p op with @p reason (borrowed; NULL: ECANCELED "The operation was
 * cancelled"): as an abort token does. Harmless once it has ended or while
 * its cancellation is due.
 * @return 0, PACT_EINVAL, PACT_ETHREAD.
 */
PACT_API int pact_op_cancel(pact_op *op, pact_error *reason);
/** @return the loop @p op is registered with, or NULL. */
PACT_API pact_loop *pact_op_loop(const pact_op *op);

/**
 * Print on @p out, one per line, what is pending on @p loop: every armed
 * handle (its kind, delay, fd or signal, whether referenced, the callback by
 * its symbol where the program exports one), every pending operation
 * (offloaded jobs and fs requests, port and worker waits, the program's own:
 * what each waits on, and whether its cancellation is due), the handles
 * closing, the tasks not finished (name, spawn site, the await they are
 * in) and the workers not freed: what keeps the loop alive, and why
 * pact_loop_free says PACT_EBUSY.
 * @param loop the loop (its thread only).
 * @param out where to print, e.g. stderr.
 * @return how many lines (0: nothing pending; also on misuse).
 */
PACT_API size_t pact_loop_print_pending(pact_loop *loop, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
