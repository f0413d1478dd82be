/** @file
 * Task groups (layer 4): structured concurrency, as trio's nurseries,
 * Python's asyncio.TaskGroup, tokio's JoinSet and Go's errgroup. A group
 * runs children -- stackful tasks, any function that starts work and returns
 * a promise (a PACT_ASYNC function, an offloaded job, a fetch), or a promise
 * it is handed -- and finishes only when every child has finished.
 *
 * Cancellation is the group's abort token (pact_group_token). Each task
 * child follows it, and whatever a child starts without a token of its own
 * (a timer, pact_delay, a pool job, a port receive, a nested group) takes
 * it as the scope's token: cancelling the group stops those operations, and
 * the child's await wakes with PACT_ECANCELED. The token aborts on the first
 * failure of a child (unless the group is a join set), on the group's
 * deadline, on pact_group_cancel, and when the scope the group was made in
 * is cancelled (its parent: opts.abort, or the ambient scope of the task or
 * group callback that made it).
 *
 * Every call is made on the loop's thread. doc/structured.md is the guide.
 */
#ifndef PACT_GROUP_H
#define PACT_GROUP_H

#if defined(PACT__LAYER) && PACT__LAYER < 4
#error "pact/group.h is layer 4 (scope): a lower layer must not include it"
#endif

#include "pact/abort.h"
#include "pact/common.h"
#include "pact/promise.h"
#include "pact/task.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A task group; the reference pact_group_new gives is the caller's. */
typedef struct pact_group pact_group;

/** Options for pact_group_new; NULL means all defaults. */
typedef struct pact_group_opts {
    /** For reports and the task dump (borrowed: static storage, or alive as
     *  long as the group). NULL: the site that made it. */
    const char *name;
    /** At most this many children run at once; the rest wait, in spawn
     *  order, for one to finish. 0: no limit. A promise handed over with
     *  pact_group_add runs already: it counts, but never waits. */
    size_t limit;
    /** A deadline this many milliseconds from now, on the monotonic clock
     *  (one timer for the group): it cancels the group with a PACT_ETIMEDOUT
     *  reason. 0: none; negative: PACT_EINVAL. */
    int64_t timeout_ms;
    /** The deadline ends the group quietly (trio's move_on_after): the wait
     *  fulfils as if the cancelled children had finished. false: the wait
     *  rejects with PACT_ETIMEDOUT (trio's fail_after). */
    bool move_on;
    /** A join set (tokio's JoinSet): each child's outcome is kept, in the
     *  order they finish, for pact_group_next; a failure does not cancel the
     *  siblings and is not part of the wait's outcome. */
    bool join;
    /** The parent scope (borrowed): its abort cancels the group. NULL: the
     *  ambient scope's, if the group is made inside one (a task of a group,
     *  a task in a pact_scope, a group's start function). */
    pact_abort *abort;
} pact_group_opts;

/**
 * Make a group. Prefer pact_group_new, which records the call site.
 * @param loop the group's loop.
 * @param opts NULL for the defaults.
 * @param out receives a new reference (pact_group_unref).
 * @param file, line the call site, for reports.
 * @return 0, PACT_EINVAL (NULL loop or out, a negative timeout),
 *   PACT_ETHREAD or PACT_ENOMEM (then *@p out is NULL).
 */
PACT_API int pact_group_new_at(pact_loop *loop, const pact_group_opts *opts,
                               pact_group **out, const char *file, int line);
/** pact_group_new(loop, opts, out): pact_group_new_at at the call site
 *  (variadic, so that a compound literal with commas can be the opts). */
#define pact_group_new(loop, ...)                                              \
    pact_group_new_at((loop), __VA_ARGS__, __FILE__, __LINE__)

/**
 * Drop the caller's reference. A child cannot outlive its group: if
 * children are still running, nobody waits for the group and it was not
 * cancelled, they are cancelled and the misuse is reported on stderr with
 * the group's and the last child's call sites. The group's memory lasts
 * until its last child has finished. NULL-safe.
 */
PACT_API void pact_group_unref(pact_group *g);

/**
 * Spawn @p fn(@p arg) as a task child (pact_task_spawn's rules). Prefer
 * pact_group_spawn, which records the call site.
 * @param g the group.
 * @param fn, arg as pact_task_spawn's; @p arg is borrowed by the body.
 * @param opts NULL or the task's options; its abort token is replaced by
 *   the group's.
 * @param file, line the spawn site, for reports.
 * @return 0; PACT_EINVAL (NULL g or fn; the group has finished);
 *   PACT_ETHREAD; PACT_ENOMEM (nothing spawned). Spawned while the group is
 *   cancelled: the body never runs (it counts as a cancellation).
 */
PACT_API int pact_group_spawn_at(pact_group *g, pact_task_fn fn, void *arg,
                                 const pact_task_opts *opts, const char *file,
                                 int line);
/** pact_group_spawn(g, fn, arg, opts): pact_group_spawn_at at the call
 *  site. */
#define pact_group_spawn(g, fn, ...)                                           \
    pact_group_spawn_at((g), (fn), __VA_ARGS__, __FILE__, __LINE__)

/**
 * A child that starts its work when the group has room for it.
 * @param loop the group's loop.
 * @param cancelled NULL when it is to start; else the group's cancellation
 *   (borrowed): the group was cancelled before the child could start, so
 *   release @p ud and return NULL.
 * @param ud the pointer given to pact_group_go.
 * @return the promise of the child's work (a reference the group takes), or
 *   NULL (when cancelled, or a failure to start: then a PACT_ENOMEM
 *   failure of the child).
 */
typedef pact_promise *(*pact_group_fn)(pact_loop *loop, pact_error *cancelled,
                                       void *ud);

/**
 * Add a child that @p fn starts: a PACT_ASYNC function, an offloaded job,
 * any work with a promise. @p fn runs exactly once: when the group has room
 * (at once without a limit), with the group's token as the ambient scope,
 * so that what it starts without a token of its own is the group's; or
 * with the cancellation, if the group is cancelled first.
 * @return 0; PACT_EINVAL (NULL g or fn, the group has finished: @p fn is
 *   not called); PACT_ETHREAD; PACT_ENOMEM (@p fn is not called).
 */
PACT_API int pact_group_go_at(pact_group *g, pact_group_fn fn, void *ud,
                              const char *file, int line);
/** pact_group_go(g, fn, ud): pact_group_go_at at the call site. */
#define pact_group_go(g, fn, ud)                                               \
    pact_group_go_at((g), (fn), (ud), __FILE__, __LINE__)

/**
 * Add a promise as a child; steals @p p (also on failure). The group waits
 * for it but cannot stop the work behind it: give that work
 * pact_group_token(g).
 * @return 0; PACT_EINVAL (NULL, another loop's promise, the group has
 *   finished); PACT_ETHREAD; PACT_ENOMEM.
 */
PACT_API int pact_group_add(pact_group *g, pact_promise *p);

/** @return the group's abort token (borrowed: alive as long as the group),
 *  to hand to work the group should cancel; NULL for NULL. */
PACT_API pact_abort *pact_group_token(const pact_group *g);

/**
 * Cancel the group: its token aborts with @p reason (borrowed; NULL: a
 * PACT_ECANCELED error), so children's pending operations end with
 * PACT_ECANCELED, children not yet started never start, and the wait
 * rejects with the reason (unless a failure came first).
 * @return 0, PACT_EALREADY (cancelled already), PACT_EINVAL, PACT_ETHREAD or
 *   PACT_ENOMEM.
 */
PACT_API int pact_group_cancel(pact_group *g, pact_error *reason);

/**
 * Wait for the group: a promise that settles when every child has
 * finished. It fulfils with no value; rejects with a PACT_EAGGREGATE error
 * holding every failure in the order they happened (cancellations are not
 * failures), else with PACT_ETIMEDOUT when the deadline ended the group
 * (not move_on), else with PACT_ECANCELED (cause: the reason) when it was
 * cancelled. May be called more than once. Once the group has finished,
 * nothing more can be added to it.
 * @return a new reference, or NULL (misuse, no memory).
 */
PACT_API pact_promise *pact_group_wait(pact_group *g);

/**
 * In a task: await the group as pact_group_wait, so that no child outlives
 * the await. If the task is cancelled meanwhile (its scope or group, its
 * token, pact_loop_close_all), the group is cancelled too and still awaited
 * to its end, shielded, before this returns.
 * @return NULL when the group fulfilled; its failure (a PACT_EAGGREGATE
 *   error, a new reference) when it failed; else the task's cancellation or
 *   the group's; PACT_ENOTASK outside a task; PACT_ENOMEM.
 */
PACT_NODISCARD PACT_API pact_error *
pact_group_await_at(pact_group *g, const char *file, int line);
/** pact_group_await(g): pact_group_await_at at the call site. */
#define pact_group_await(g) pact_group_await_at((g), __FILE__, __LINE__)

/**
 * pact_group_wait's callback twin (through pact_promise_callback): @p cb(err,
 * v, @p ud) runs once, as a microtask, with its outcome (@p v holds no
 * value).
 * @return 0 (then @p cb runs exactly once), PACT_EINVAL, PACT_ETHREAD or
 *   PACT_ENOMEM (then it never runs).
 */
PACT_API int pact_group_wait_cb(pact_group *g, pact_value_cb cb, void *ud);

/**
 * A join set's next outcome (tokio's JoinSet::join_next): a promise that
 * settles as the next child finishes, in the order they finish, with its
 * value or its error; rejects with PACT_EOF once no child is left.
 * @return a new reference; NULL for misuse (not a join set: opts.join) or
 *   no memory.
 */
PACT_API pact_promise *pact_group_next(pact_group *g);

/** @return the children not finished yet (running or waiting for room). */
PACT_API size_t pact_group_size(const pact_group *g);
/** @return the children running now (never above opts.limit, promises
 *  handed over with pact_group_add aside). */
PACT_API size_t pact_group_running(const pact_group *g);

/** The body of pact_group_run: add the children to @p g (alive while the
 *  group is). */
typedef void (*pact_group_body)(pact_group *g, void *ud);

/**
 * The nursery shape: make a group, call @p body(g, @p ud) with the group's
 * token as the ambient scope, and wait for it. The group exists only
 * inside @p body and its children, so no child can outlive it.
 * @return pact_group_wait's promise (a new reference), or NULL as
 *   pact_group_new (then @p body is not called).
 */
PACT_API pact_promise *pact_group_run_at(pact_loop *loop,
                                         const pact_group_opts *opts,
                                         pact_group_body body, void *ud,
                                         const char *file, int line);
/** pact_group_run(loop, opts, body, ud) at the call site. */
#define pact_group_run(loop, ...)                                              \
    pact_group_run_at((loop), __VA_ARGS__, __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif

#endif
