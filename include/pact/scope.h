/** @file
 * Cancel scopes (layer 4): a deadline, or a cancellation, for everything a
 * task awaits between pact_scope_enter and pact_scope_leave -- trio's
 * move_on_after and fail_after, Python's asyncio.timeout. Scopes nest: an
 * inner scope is cancelled with its outer one, so the earliest deadline
 * wins; a shielded scope is not, so clean-up inside it can still await.
 * One timer per scope, not per await, on the monotonic clock.
 *
 * What the task starts inside the scope without a token of its own (a
 * timer, pact_delay, a pool job, a port receive, a group) takes the scope's
 * token, so cancelling the scope stops it; the task's await wakes with
 * PACT_ECANCELED (cause: the reason), and every later await inside the
 * scope fails at once. In callback and promise code, a group
 * (pact/group.h, opts.timeout_ms) is the scope.
 */
#ifndef PACT_SCOPE_H
#define PACT_SCOPE_H

#if defined(PACT__LAYER) && PACT__LAYER < 4
#error "pact/scope.h is layer 4 (scope): a lower layer must not include it"
#endif

#include "pact/abort.h"
#include "pact/common.h"
#include "pact/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A cancel scope, entered by one task and left by it. */
typedef struct pact_scope pact_scope;

/** Options for pact_scope_enter; NULL means all defaults. */
typedef struct pact_scope_opts {
    /** A deadline this many milliseconds from now: the scope is cancelled
     *  with a PACT_ETIMEDOUT reason. 0: none; negative: PACT_EINVAL. */
    int64_t timeout_ms;
    /** The deadline ends the scope quietly (move_on_after): leave gives
     *  NULL. false (fail_after): leave gives PACT_ETIMEDOUT. */
    bool move_on;
    /** Not cancelled by the scopes around it (trio's shield): for clean-up
     *  that must await even while its task is being cancelled. Its own
     *  deadline still applies. */
    bool shield;
} pact_scope_opts;

/**
 * Enter a scope in the running task. Leave it with pact_scope_leave in the
 * same task, innermost first.
 * @param opts NULL for the defaults.
 * @param out receives the scope.
 * @return 0; PACT_ENOTASK (not in a task); PACT_EINVAL (NULL out, a
 *   negative timeout); PACT_ENOMEM. On failure *@p out is NULL.
 */
PACT_API int pact_scope_enter(const pact_scope_opts *opts, pact_scope **out);

/**
 * Leave @p s and free it. The task's awaits follow the scope around it
 * again.
 * @param s the innermost scope the running task entered.
 * @param expired if not NULL, receives whether the scope's own deadline
 *   passed.
 * @return NULL; or, when the scope's own deadline passed and it is not
 *   move_on, a PACT_ETIMEDOUT error (a new reference). A cancellation from
 *   outside (an outer scope, its group) is not reported here: the awaits
 *   after the scope fail with it. NULL too for misuse (reported on stderr:
 *   not the innermost scope, another task's): then nothing changes.
 *   PACT_ENOMEM when the outer scope cannot be followed again: the scope
 *   then stays entered, cancelled (the task's awaits fail), and is left by
 *   calling this again.
 */
PACT_API pact_error *pact_scope_leave(pact_scope *s, bool *expired);

/**
 * Cancel @p s: its token aborts with @p reason (borrowed; NULL: a
 * PACT_ECANCELED error). pact_scope_leave then gives NULL, as trio's
 * cancel_scope.cancel().
 * @return 0, PACT_EALREADY, PACT_EINVAL, PACT_ETHREAD or PACT_ENOMEM.
 */
PACT_API int pact_scope_cancel(pact_scope *s, pact_error *reason);

/** @return the scope's abort token (borrowed, alive until the scope is
 *  left), for work that takes one explicitly; NULL for NULL. */
PACT_API pact_abort *pact_scope_token(const pact_scope *s);

/** @return whether @p s has been cancelled (by its deadline, its outer
 *  scopes or pact_scope_cancel). */
PACT_API bool pact_scope_cancelled(const pact_scope *s);

#ifdef __cplusplus
}
#endif

#endif
