/** @file
 * Stackless async functions: coloured, as in JavaScript, C# and Rust.
 *
 * An async function is a body over a heap frame. Calling it runs the body
 * until its first await and returns the promise of its result; each await
 * returns from the body, and the promise's settlement calls the body again,
 * which jumps back to that await (a switch over the await's line, in the
 * manner of protothreads). A suspended function costs its frame and two
 * promise nodes, not a stack.
 *
 *     struct countdown {  // the frame: what crosses an await
 *         PACT_ASYNC_FRAME;
 *         pact_loop *loop;
 *         int n;
 *     };
 *
 *     static pact_error *countdown_body(pact_async *a, pact_value *result)
 *     {
 *         struct countdown *f = (struct countdown *)a;
 *         PACT_ASYNC_BEGIN(a);
 *         while (f->n > 0) {
 *             PACT_ASYNC_TRY(a, pact_delay(f->loop, 10, NULL), NULL);
 *             f->n--;
 *         }
 *         *result = pact_int(42);
 *         PACT_ASYNC_END(a);
 *     }
 *
 *     pact_promise *countdown(pact_loop *loop, int n)
 *     {
 *         struct countdown *f =
 *             pact_async_new(loop, sizeof *f, countdown_body);
 *         if (!f)
 *             return NULL;
 *         f->loop = loop;
 *         f->n = n;
 *         return pact_async_start(f);
 *     }
 *
 * The rules, since the body is re-entered rather than resumed:
 * - Locals do not survive an await: what crosses one lives in the frame.
 *   With gcc, a local with an initializer in scope at an await is a compile
 *   error ("switch jumps over variable initialization"); keep temporaries in
 *   a block { } that closes before the await.
 * - No await inside a switch statement of the body's own: its case label
 *   would belong to that switch. This is reported at run time, on the first
 *   resume (the promise rejects with PACT_EINVAL); use if/else there.
 * - At most one await per source line (two are a duplicate case: a compile
 *   error), and awaits only between PACT_ASYNC_BEGIN and PACT_ASYNC_END (a
 *   case outside a switch: a compile error).
 * - Set *result just before returning: a value stored before an await is
 *   released when the body suspends.
 * - Return NULL to fulfil with *result, or an error (a reference, stolen) to
 *   reject; PACT_ASYNC_TRY does the latter for a rejected await, which is
 *   what an uncaught rejection does to a JavaScript async function.
 *
 * Every await suspends, even on a settled promise, and resumes as a
 * microtask, as JavaScript's. Frames and tasks interoperate through their
 * promises: a task may PACT_AWAIT an async function's promise and an async
 * function may await a task's.
 *
 * Cancellation: once pact_loop_close_all has run, every later await of a
 * function started before it fails at once with PACT_ECANCELED; the await
 * it is in ends only if its promise breaks (pact_delay's does). A function
 * that ends so with PACT_ECANCELED is not an unhandled rejection. To cancel
 * one function, pass an abort token to what it awaits. */
#ifndef PACT_ASYNC_H
#define PACT_ASYNC_H

#if defined(PACT__LAYER) && PACT__LAYER < 3
#error "pact/async.h is layer 3 (await): a lower layer must not include it"
#endif

#include "pact/common.h"
#include "pact/error.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The header of an async function's frame (see struct pact_async). */
typedef struct pact_async pact_async;

/** An async function's body; see the file comment for what it returns. */
typedef pact_error *(*pact_async_fn)(pact_async *a, pact_value *result);

/** The frame header, first in every frame (PACT_ASYNC_FRAME). Its fields
 *  belong to the macros and the library. */
struct pact_async {
    pact_async_fn body;    /**< the function's body */
    pact_promise *promise; /**< the result, a reference until the body ends */
    pact_promise *settled; /**< the awaited promise after a resume (a ref) */
    int resume;            /**< the __LINE__ of the await to resume; 0: start */
    int flags;             /**< the library's state bits */
    uint32_t epoch; /**< the loop's pact_loop_close_all count at the start */
    uint32_t node;  /**< where the await's node is, past the frame's fields */
};

/** Declares the header as the first member of a frame struct. */
#define PACT_ASYNC_FRAME pact_async pact_async_

/**
 * A zeroed frame of @p size bytes (at least sizeof(pact_async)) with its
 * header set up for @p body. Fill in the arguments, then pact_async_start
 * it (or pact_async_drop it). Loop-thread only.
 * @return the frame, owned by the caller until started; NULL for misuse (a
 *   NULL loop or body, too small a size, off the loop thread: the reason
 *   is printed with PACT_DEBUG=1) or out of memory.
 */
PACT_API void *pact_async_new(pact_loop *loop, size_t size, pact_async_fn body);
/**
 * Run the body until it first awaits or returns. @p frame is stolen: it is
 * freed when the body returns. @return a new reference to the promise of the
 * function's result (pact_promise_unref), or NULL for misuse (a NULL frame,
 * one not from pact_async_new or started already, off the loop thread).
 */
PACT_API pact_promise *pact_async_start(void *frame);
/** Free a frame that was never started (NULL-safe; a started frame frees
 * itself, and is left alone with a message on stderr). */
PACT_API void pact_async_drop(void *frame);
/** @return the frame's loop (borrowed), or NULL for a NULL frame. */
PACT_API pact_loop *pact_async_loop(const pact_async *a);

/* The macros' calls. */
PACT_API void pact_async_await_(pact_async *a, pact_promise *p, int line);
PACT_NODISCARD PACT_API pact_error *pact_async_take_(pact_async *a,
                                                     pact_value *out);
PACT_API pact_error *pact_async_lost_(pact_async *a);
PACT_API void pact_async_site_(pact_async *a, const char *file);

#if defined(__GNUC__) && !defined(__clang__)
#define PACT_ASYNC_PUSH_                                                       \
    _Pragma("GCC diagnostic push")                                             \
        _Pragma("GCC diagnostic error \"-Wjump-misses-init\"")
#define PACT_ASYNC_POP_ _Pragma("GCC diagnostic pop")
#else
#define PACT_ASYNC_PUSH_
#define PACT_ASYNC_POP_
#endif

/** Opens the body: code before it runs again at every resume. */
#define PACT_ASYNC_BEGIN(a)                                                    \
    PACT_ASYNC_PUSH_                                                           \
    switch ((a)->resume) {                                                     \
    default:                                                                   \
        return pact_async_lost_(a);                                            \
    case 0:                                                                    \
        pact_async_site_((a), __FILE__);

/** Closes the body: reaching it fulfils the promise with *result. */
#define PACT_ASYNC_END(a)                                                      \
    }                                                                          \
    PACT_ASYNC_POP_                                                            \
    return NULL

/**
 * Await @p p (stolen). Afterwards @p err (an lvalue) holds NULL and *@p out
 * the value (&v may be NULL; the value is yours, as with pact_await_at), or
 * @p err holds the rejection (a new reference).
 */
#define PACT_ASYNC_AWAIT_ERR(a, p, out, err)                                   \
    do {                                                                       \
        pact_async_await_((a), (p), __LINE__);                                 \
        return NULL;                                                           \
    case __LINE__:                                                             \
        (err) = pact_async_take_((a), (out));                                  \
    } while (0)

/** Await @p p (stolen); on rejection return its error from the body, which
 *  rejects the function's promise. */
#define PACT_ASYNC_TRY(a, p, out)                                              \
    do {                                                                       \
        pact_async_await_((a), (p), __LINE__);                                 \
        return NULL;                                                           \
    case __LINE__: {                                                           \
        pact_error *pact_async_err__ = pact_async_take_((a), (out));           \
        if (pact_async_err__)                                                  \
            return pact_async_err__;                                           \
    }                                                                          \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
