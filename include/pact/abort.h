/* The abort token: AbortController and AbortSignal in one object. Any
 * operation that accepts one ends with PACT_ECANCELED (cause: the reason)
 * when it is aborted. Loop-thread only. */
#ifndef PACT_ABORT_H
#define PACT_ABORT_H

#include "pact/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Listener: @p reason is borrowed for the call. */
typedef void (*pact_abort_cb)(pact_error *reason, void *ud);

/** Make a token that is not aborted. @param out receives a new reference. */
PACT_API int pact_abort_new(pact_loop *loop, pact_abort **out);
/**
 * A token that aborts by itself after @p ms with a PACT_ETIMEDOUT reason
 * (AbortSignal.timeout). Its timer is unreferenced: it does not keep the loop
 * alive, and dropping the last reference clears it.
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
 * @return 0, or PACT_EALREADY if the token was already aborted (nothing
 *   changes).
 */
PACT_API int pact_abort_abort(pact_abort *a, pact_error *reason);

/** @return whether the token has been aborted. */
PACT_API bool pact_abort_aborted(const pact_abort *a);
/** @return the reason (borrowed), or NULL while not aborted. */
PACT_API pact_error *pact_abort_reason(const pact_abort *a);

/**
 * Add a listener, called once when the token aborts. If it already has, the
 * listener is not called: check pact_abort_aborted first, as with AbortSignal.
 * @param id  if not NULL, receives an id for pact_abort_off.
 */
PACT_API int pact_abort_on(pact_abort *a, pact_abort_cb cb, void *ud,
                           uint64_t *id);
/** Remove a listener. @return 0, or PACT_ENOENT if it is not registered. */
PACT_API int pact_abort_off(pact_abort *a, uint64_t id);

#ifdef __cplusplus
}
#endif
#endif
