/** @file
 * The abort token: AbortController and AbortSignal in one object. Any
 * operation that accepts one ends with PACT_ECANCELED (cause: the reason)
 * when it is aborted. Loop-thread only: the functions that take a loop or a
 * token return PACT_ETHREAD off its thread, and PACT_EINVAL for a NULL
 * argument. */
#ifndef PACT_ABORT_H
#define PACT_ABORT_H

#include "pact/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Listener, called once when the token aborts: @p reason is borrowed for
 * the call (pact_error_ref it to keep it). */
typedef void (*pact_abort_cb)(pact_error *reason, void *ud);

/**
 * Make a token that is not aborted.
 * @param loop the loop whose thread may use the token.
 * @param out receives a new reference (drop it with pact_abort_unref).
 * @return 0, PACT_EINVAL, PACT_ETHREAD or PACT_ENOMEM (then @p out is
 *   untouched).
 */
PACT_API int pact_abort_new(pact_loop *loop, pact_abort **out);
/**
 * A token that aborts by itself after @p ms with a PACT_ETIMEDOUT reason
 * (AbortSignal.timeout). Its timer is unreferenced: it does not keep the loop
 * alive, and dropping the last reference clears it.
 * @param loop the token's loop.
 * @param ms the delay in milliseconds, as pact_timer_start's.
 * @param out receives a new reference (pact_abort_unref), NULL on failure.
 * @return 0, or as pact_abort_new and pact_timer_start.
 */
PACT_API int pact_abort_timeout(pact_loop *loop, uint64_t ms, pact_abort **out);

/** Take a reference. @return @p a (NULL-safe). */
PACT_API pact_abort *pact_abort_ref(pact_abort *a);
/** Drop a reference; at zero the token and its listeners are freed.
 * NULL-safe. */
PACT_API void pact_abort_unref(pact_abort *a);

/**
 * Abort: record @p reason (borrowed; NULL means a PACT_ECANCELED error
 * "This operation was aborted") and call every listener synchronously, in the
 * order they were added, as EventTarget does. Listeners added meanwhile are
 * not called; listeners removed meanwhile are skipped.
 * @return 0, PACT_EALREADY if the token was already aborted (nothing
 *   changes), PACT_ENOMEM (the default reason could not be made; the token
 *   stays unaborted), PACT_EINVAL or PACT_ETHREAD.
 */
PACT_API int pact_abort_abort(pact_abort *a, pact_error *reason);

/** @return whether the token has been aborted. */
PACT_API bool pact_abort_aborted(const pact_abort *a);
/** @return the reason (borrowed), or NULL while not aborted. */
PACT_API pact_error *pact_abort_reason(const pact_abort *a);

/**
 * Add a listener, called once when the token aborts. If it already has, the
 * listener is not called: check pact_abort_aborted first, as with AbortSignal.
 * @param a the token (borrowed: the listener holds no reference to it).
 * @param cb the listener; @p ud is passed back to it.
 * @param ud the listener's data, owned by the caller.
 * @param id  if not NULL, receives an id for pact_abort_off (0 when the
 *   token has already aborted).
 * @return 0, PACT_ENOMEM, PACT_EINVAL or PACT_ETHREAD.
 */
PACT_API int pact_abort_on(pact_abort *a, pact_abort_cb cb, void *ud,
                           uint64_t *id);
/** Remove a listener, which then is never called. @return 0 (also once the
 * token has aborted), PACT_ENOENT if it is not registered, PACT_EINVAL or
 * PACT_ETHREAD. */
PACT_API int pact_abort_off(pact_abort *a, uint64_t id);

#ifdef __cplusplus
}
#endif
#endif
