/** @file
 * Promises (Promises/A+ 1.1, with Node v20's microtask timing), their
 * combinators, unhandled-rejection reporting, and the adapter between
 * error-first callbacks and promises.
 *
 * Ownership: promises are reference-counted. A function that returns a
 * promise gives the caller a new reference (drop it with pact_promise_unref);
 * a promise passed in is borrowed unless the comment says "steals". A settled
 * promise nobody holds any more is freed once its queued reactions have run;
 * a pending one that nobody holds can never settle (whatever could settle it
 * holds it), so it is freed at once and its reactions are dropped unrun.
 * Handlers get the value or error borrowed for the call; what a handler returns
 * is moved into the derived promise.
 *
 * Everything here runs on the loop's thread; handlers always run as
 * microtasks, never inside the call that attaches or settles. Functions that
 * return a promise return NULL only for misuse (NULL arguments, wrong thread:
 * reported on stderr, the function named) or when out of memory; what a
 * promise or a reaction will need later (its microtask) is reserved then, so
 * settling and queueing reactions never fail for want of memory. */
#ifndef PACT_PROMISE_H
#define PACT_PROMISE_H

#if defined(PACT__LAYER) && PACT__LAYER < 2
#error "pact/promise.h is layer 2 (promise): a lower layer must not include it"
#endif

#include "pact/common.h"
#include "pact/error.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A promise's state. */
typedef enum pact_state {
    PACT_PENDING = 0, /**< not settled yet (or adopting another promise) */
    PACT_FULFILLED,   /**< settled with a value (pact_promise_value) */
    PACT_REJECTED,    /**< settled with an error (pact_promise_error) */
} pact_state;

/* ---- producers ----------------------------------------------------------- */

/**
 * Make a pending promise and its resolver (a deferred). Both are the loop's
 * (from its promise slabs): pact_loop_free refuses with PACT_EBUSY while
 * either is referenced, resolved or not.
 * @param loop the loop whose microtasks run its reactions.
 * @param out  receives a new reference to the promise (may be NULL if the
 *   caller only needs the resolver: then only the deferred holds it).
 * @return a new reference to the deferred (pact_deferred_unref), or NULL
 *   (misuse, no memory).
 */
PACT_API pact_deferred *pact_deferred_new(pact_loop *loop, pact_promise **out);
/**
 * Resolve: fulfil with @p v, or for PACT_PROMISE / PACT_THENABLE adopt that
 * outcome, or for PACT_ERROR reject. Steals @p v whatever the result.
 * @return 0; PACT_EALREADY if this deferred already resolved (the promise is
 *   unchanged; @p v is released); PACT_EINVAL for NULL.
 */
PACT_API int pact_deferred_resolve(pact_deferred *d, pact_value v);
/** Reject with @p err (stolen; NULL is PACT_ENOMEM). Returns as
 * pact_deferred_resolve. */
PACT_API int pact_deferred_reject(pact_deferred *d, pact_error *err);
/** @return whether this deferred has resolved its promise (the promise may
 * still be pending while it adopts another). */
PACT_API bool pact_deferred_done(const pact_deferred *d);
/** Take a reference. @return @p d (NULL-safe). */
PACT_API pact_deferred *pact_deferred_ref(pact_deferred *d);
/**
 * Drop a reference (on the loop's thread; NULL is ignored). Dropping the
 * last one of an unresolved deferred rejects its promise with
 * PACT_ECANCELED ("broken promise", as C++'s std::promise), so a consumer
 * never waits on a producer that is gone. A call on a deferred already
 * freed is reported as misuse and does nothing.
 */
PACT_API void pact_deferred_unref(pact_deferred *d);

/** Promise.resolve(@p v): a promise resolved with @p v (stolen). A
 * PACT_PROMISE value is returned as is. @return a new reference. */
PACT_API pact_promise *pact_resolved(pact_loop *loop, pact_value v);
/** Promise.reject(@p err): a rejected promise. Steals @p err.
 * @return a new reference. */
PACT_API pact_promise *pact_rejected(pact_loop *loop, pact_error *err);

/**
 * Node's `reject(new Error(...))` in one call: reject the deferred @p d with
 * a new error made here (this file:line) from a code and an optional printf
 * message: PACT_REJECT(d, PACT_EINVAL) or
 * PACT_REJECT(d, PACT_EINVAL, "no user %s", name). Steals nothing but the
 * error it makes. @return as pact_deferred_reject.
 */
#define PACT_REJECT(d, ...) pact_deferred_reject((d), PACT_ERROR(__VA_ARGS__))
/**
 * Promise.reject(new Error(...)) in one call: a promise rejected with a new
 * error made here from a code and an optional printf message, as
 * PACT_REJECT. @return a new reference (NULL as pact_rejected).
 */
#define PACT_REJECTED(loop, ...) pact_rejected((loop), PACT_ERROR(__VA_ARGS__))
/**
 * `throw new Error(...)` from a handler: the resolution that rejects the
 * derived promise with a new error made here from a code and an optional
 * printf message (return PACT_THROW(PACT_ERANGE, "%d is too big", n);).
 */
#define PACT_THROW(...) pact_throw(PACT_ERROR(__VA_ARGS__))

/* ---- consumers ----------------------------------------------------------- */

/** A fulfilment handler: @p v borrowed; returns the derived promise's
 * resolution (a value, pact_promise_v(q) to adopt q, or pact_throw(err)). */
typedef pact_value (*pact_on_fulfilled)(const pact_value *v, void *ud);
/** A rejection handler: @p err borrowed; returns as pact_on_fulfilled. */
typedef pact_value (*pact_on_rejected)(pact_error *err, void *ud);
/** A finally handler: its value is ignored unless it is a promise (waited
 * for) or an error (which replaces the outcome). */
typedef pact_value (*pact_on_finally)(void *ud);
/** An error-first handler for either outcome: @p err is NULL and @p v the
 * value when fulfilled; @p v is NULL when rejected. */
typedef pact_value (*pact_on_settled)(pact_error *err, const pact_value *v,
                                      void *ud);
/** An error-first callback that consumes an outcome (callbackify). */
typedef void (*pact_value_cb)(pact_error *err, const pact_value *v, void *ud);

/**
 * p.then(@p ok, @p fail): a new promise resolved with what the handler that
 * runs returns. A NULL handler passes the value or error through.
 * @return a new reference.
 */
PACT_API pact_promise *pact_then(pact_promise *p, pact_on_fulfilled ok,
                                 pact_on_rejected fail, void *ud);
/** p.catch(@p fail): pact_then(p, NULL, fail, ud). @return a new
 * reference. */
PACT_API pact_promise *pact_catch(pact_promise *p, pact_on_rejected fail,
                                  void *ud);
/** p.finally(@p fn): runs @p fn on either outcome, then passes the outcome
 * through (after the promise @p fn returns, if any, settles); an error from
 * @p fn or its promise replaces it. Same microtask turns as Node.
 * @return a new reference. */
PACT_API pact_promise *pact_finally(pact_promise *p, pact_on_finally fn,
                                    void *ud);
/** then with one error-first handler for both outcomes. @return a new
 * reference. */
PACT_API pact_promise *pact_then_cb(pact_promise *p, pact_on_settled fn,
                                    void *ud);

/* The _take forms steal their source, so a chain is one expression with no
 * temporaries and no leak: a.then(f).then(g).catch(h) is
 *
 *     pact_promise *r = pact_catch_take(
 *         pact_then_take(pact_then_take(a, f, NULL, ud), g, NULL, ud), h, ud);
 *
 * (a's reference goes to the chain; r is the caller's). Each steals @p p's
 * reference whatever the result; the derived promise keeps the source alive
 * for as long as it waits on it. A NULL @p p (an earlier link that could not
 * be made: out of memory or misuse, reported then) gives NULL at once, with
 * nothing to drop and no handler called: check the end of a chain only.
 * @p ud stays the caller's either way. */

/** pact_then that steals @p p (see above). @return a new reference, or
 * NULL. */
PACT_API pact_promise *pact_then_take(pact_promise *p, pact_on_fulfilled ok,
                                      pact_on_rejected fail, void *ud);
/** pact_catch that steals @p p (see pact_then_take). @return a new
 * reference, or NULL. */
PACT_API pact_promise *pact_catch_take(pact_promise *p, pact_on_rejected fail,
                                       void *ud);
/** pact_finally that steals @p p (see pact_then_take). @return a new
 * reference, or NULL. */
PACT_API pact_promise *pact_finally_take(pact_promise *p, pact_on_finally fn,
                                         void *ud);
/** pact_then_cb that steals @p p (see pact_then_take). @return a new
 * reference, or NULL. */
PACT_API pact_promise *pact_then_cb_take(pact_promise *p, pact_on_settled fn,
                                         void *ud);

/**
 * callbackify: call @p cb (err, value) when @p p settles, as a microtask.
 * Marks @p p handled. No derived promise.
 * @return 0, PACT_EINVAL, PACT_ENOMEM, PACT_ETHREAD.
 */
PACT_API int pact_promise_callback(pact_promise *p, pact_value_cb cb, void *ud);

/* ---- inspection and references ------------------------------------------ */

/** Take a reference. @return @p p (NULL-safe). */
PACT_API pact_promise *pact_promise_ref(pact_promise *p);
/** Drop a reference (see the top of this file for when it is freed). */
PACT_API void pact_promise_unref(pact_promise *p);
/** @return the promise's state (PACT_PENDING for NULL). */
PACT_API pact_state pact_promise_state(const pact_promise *p);
/** @return the value (borrowed, valid while @p p lives) if fulfilled, else
 * NULL. */
PACT_API const pact_value *pact_promise_value(const pact_promise *p);
/** @return the error (borrowed) if rejected, else NULL. */
PACT_API pact_error *pact_promise_error(const pact_promise *p);
/** @return the promise's loop (borrowed). */
PACT_API pact_loop *pact_promise_loop(const pact_promise *p);

/* ---- combinators --------------------------------------------------------- */
/* Each takes @p n promises (borrowed; n may be 0; @p ps may be NULL when n
 * is 0) and attaches its reactions in array order, as Node does. Each
 * returns a new reference, NULL for misuse or out of memory. */

/** Promise.all: fulfils with a list of the inputs (all fulfilled, in input
 * order) or rejects with the first error. The inputs are borrowed; @return
 * a new reference. */
PACT_API pact_promise *pact_all(pact_loop *loop, pact_promise *const *ps,
                                size_t n);
/** Promise.allSettled: fulfils with a list of the inputs once all settled.
 * @return a new reference. */
PACT_API pact_promise *pact_all_settled(pact_loop *loop,
                                        pact_promise *const *ps, size_t n);
/** Promise.race: settles as the first input to settle (never, for 0).
 * @return a new reference. */
PACT_API pact_promise *pact_race(pact_loop *loop, pact_promise *const *ps,
                                 size_t n);
/** Promise.any: fulfils with the first value, or rejects with a
 * PACT_EAGGREGATE error holding every reason in input order (see
 * pact_error_count). @return a new reference. */
PACT_API pact_promise *pact_any(pact_loop *loop, pact_promise *const *ps,
                                size_t n);
/** Settles as @p p (borrowed), or rejects with PACT_ETIMEDOUT after @p ms.
 * @return a new reference. */
PACT_API pact_promise *pact_promise_timeout(pact_promise *p, uint64_t ms);
/** Settles as @p p, or rejects with @p abort's reason once it is aborted
 * (at once if it already is). @p p and @p abort are borrowed; @p p itself
 * goes on (what produces it is not cancelled). @return a new reference. */
PACT_API pact_promise *pact_promise_abortable(pact_promise *p,
                                              pact_abort *abort);

/* ---- the adapter: callbacks <-> promises -------------------------------- */

/**
 * Start a callback operation for pact_promisify: call it with
 * pact_deferred_cb (or pact_deferred_value_cb) and @p d as its callback and
 * user data, and return its result. The callback then owns the reference to
 * @p d. On a negative return the adapter rejects the promise with that code
 * (the operation, as every pact call that fails synchronously, never calls
 * its callback).
 */
typedef int (*pact_start_fn)(pact_loop *loop, void *args, pact_deferred *d);
/** util.promisify: the promise of one callback operation. @p args is
 * borrowed for the call to @p start. @return a new reference. */
PACT_API pact_promise *pact_promisify(pact_loop *loop, pact_start_fn start,
                                      void *args);
/** A pact_cb that settles the deferred @p d (fulfils with nothing, or rejects
 * with @p err) and drops the operation's reference to it. */
PACT_API void pact_deferred_cb(pact_error *err, void *d);
/** As pact_deferred_cb for callbacks with a value (borrowed): the promise
 * keeps pact_value_copy(v), so a PACT_OWNED or PACT_THENABLE value rejects
 * with PACT_EINVAL; operations that make one resolve the deferred
 * themselves. */
PACT_API void pact_deferred_value_cb(pact_error *err, const pact_value *v,
                                     void *d);

/** setTimeout's promise twin (timers/promises setTimeout): fulfils with
 * nothing after @p ms (clamped as pact_timeout's: below 1 is 1), or rejects
 * with PACT_ECANCELED (its cause: the reason) when @p abort (may be NULL,
 * borrowed) is aborted first. If pact_loop_close_all drops its timer, it
 * rejects with PACT_ECANCELED. @return a new reference. */
PACT_API pact_promise *pact_delay(pact_loop *loop, int64_t ms,
                                  pact_abort *abort);
/** setImmediate's promise twin: fulfils with nothing in the next check
 * phase, or rejects with PACT_ECANCELED (its cause: the reason) once @p abort
 * (may be NULL, borrowed) is aborted first; the immediate itself still runs
 * (and keeps the loop alive until then). Dropped by pact_loop_close_all, it
 * rejects with PACT_ECANCELED. @return a new reference. */
PACT_API pact_promise *pact_immediate_p(pact_loop *loop, pact_abort *abort);

/* ---- unhandled rejections ------------------------------------------------ */

/** What to do with a rejection nobody handled by the end of a microtask
 * drain (Node's --unhandled-rejections). */
typedef enum pact_unhandled_mode {
    /** Default: unless the hook handles it, an uncaught PACT_EUNHANDLED error
     * (caused by the rejection) stops the loop (see pact_loop_raise). */
    PACT_UNHANDLED_THROW = 0,
    /** Print a warning to stderr (even when the hook handled it) and go on. */
    PACT_UNHANDLED_WARN,
    /** Only the hook hears of it (a handler attached after the report is
     * still announced on stderr unless the hook takes it, as in Node). */
    PACT_UNHANDLED_NONE,
} pact_unhandled_mode;

/** What the hook is told. */
typedef enum pact_rejection_event {
    /** process 'unhandledRejection': @p p is rejected and unhandled. */
    PACT_REJECTION_UNHANDLED,
    /** process 'rejectionHandled': a handler was attached to @p p after it
     * had been reported. */
    PACT_REJECTION_HANDLED,
} pact_rejection_event;

/**
 * The program's say on rejections (@p p borrowed). Return true if handled:
 * in THROW mode the loop then goes on; for PACT_REJECTION_HANDLED, true
 * silences the warning that is printed otherwise.
 */
typedef bool (*pact_rejection_hook)(pact_loop *loop, pact_rejection_event ev,
                                    pact_promise *p, void *ud);
/** Set the mode (also read from the environment variable
 * PACT_UNHANDLED_REJECTIONS=throw|warn|none when the loop is made).
 * @return 0, PACT_EINVAL (no such mode) or PACT_ETHREAD. */
PACT_API int pact_loop_set_unhandled(pact_loop *loop, pact_unhandled_mode mode);
/** Install (or with NULL remove) the rejection hook; @p ud is passed to it
 * and stays the caller's. @return 0, PACT_EINVAL or PACT_ETHREAD. */
PACT_API int pact_loop_on_rejection(pact_loop *loop, pact_rejection_hook hook,
                                    void *ud);

#ifdef __cplusplus
}
#endif
#endif
