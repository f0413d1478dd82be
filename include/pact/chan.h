/** @file
 * Channels (layer 2): Go's typed channel between the tasks, callbacks and
 * promise chains of one loop. Bounded (capacity 0 is an unbuffered
 * rendezvous), closeable; a send hands its value straight to a parked
 * receiver, with no promise on the callback path. Every call is made on the
 * loop's thread; callbacks run on a later tick, never inside the call. */
#ifndef PACT_CHAN_H
#define PACT_CHAN_H

#include "pact/abort.h"
#include "pact/common.h"
#include "pact/promise.h"
#include "pact/value.h"

#if defined(PACT__LAYER) && PACT__LAYER < 2
#error "pact/chan.h is layer 2 (promise): a lower layer must not include it"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** A channel; owned by whoever made it (pact_chan_free). */
typedef struct pact_chan pact_chan;

/** Options for a send or receive; NULL means all defaults. */
typedef struct pact_chan_opts {
    /** Borrowed; may be NULL. Aborting it takes a parked send or receive
     *  off (a send then delivers nothing and its value is released) and its
     *  callback gets PACT_ECANCELED (cause: the reason) on the next tick. A
     *  token aborted already: the call succeeds and is cancelled so. */
    pact_abort *abort;
} pact_chan_opts;

/**
 * A receive's callback. @p v the value, lent: take it (`pact_value mine =
 * *v; *v = pact_nothing();`) to keep it; what is left in *@p v is released
 * when the callback returns. On failure @p v is NULL and @p err (borrowed)
 * is PACT_EOF (closed and drained), or PACT_ECANCELED (aborted,
 * pact_loop_close_all, or the channel freed).
 */
typedef void (*pact_chan_recv_cb)(pact_error *err, pact_value *v, void *ud);

/**
 * A new channel of @p loop holding up to @p capacity values (0: each send
 * waits for a receive, as Go's unbuffered channel).
 * @return the channel; NULL on PACT_ENOMEM or a NULL loop.
 */
PACT_API pact_chan *pact_chan_new(pact_loop *loop, size_t capacity);

/**
 * Free @p ch: every parked send and receive is called back once, on the
 * next tick, with PACT_ECANCELED; buffered values are released. Callbacks
 * already due still run with their result. NULL is a no-op.
 */
PACT_API void pact_chan_free(pact_chan *ch);

/**
 * Close @p ch: parked receives get PACT_EOF once the buffer is drained
 * (there is nothing buffered while one is parked), later receives take what
 * is buffered and then get PACT_EOF; parked and later sends get PACT_EPIPE
 * (their value released).
 * @return 0; PACT_EALREADY if closed already; PACT_EINVAL for NULL;
 *   PACT_ENOMEM (nothing changed).
 */
PACT_API int pact_chan_close(pact_chan *ch);

/**
 * Send @p value (stolen: the receiver owns it; released if the send fails).
 * @p cb(NULL, ud) once a receiver took it or it is buffered; or
 * cb(PACT_EPIPE) if the channel is or gets closed first, cb(PACT_ECANCELED)
 * if cancelled (abort token, pact_loop_close_all, pact_chan_free). Called
 * once, on a later tick. @p cb may be NULL (fire and forget).
 * @param ch  the channel (borrowed).
 * @param value  the value to send (stolen).
 * @param opts  the abort token; may be NULL.
 * @param cb, ud  the callback (may be NULL) and its data (the caller's).
 * @return 0; PACT_EINVAL, PACT_ETHREAD, PACT_ENOMEM (then @p cb is never
 *   called and @p value is released).
 */
PACT_API int pact_chan_send(pact_chan *ch, pact_value value,
                            const pact_chan_opts *opts, pact_cb cb, void *ud);

/**
 * Receive the next value: @p cb(NULL, value, ud) once one is there, or fails
 * as pact_chan_recv_cb says. Receives are served in the order made. Called
 * once, on a later tick.
 * @param ch  the channel (borrowed).
 * @param opts  the abort token; may be NULL.
 * @param cb, ud  the callback and its data (the caller's).
 * @return 0; PACT_EINVAL, PACT_ETHREAD, PACT_ENOMEM (then @p cb is never
 *   called).
 */
PACT_API int pact_chan_recv(pact_chan *ch, const pact_chan_opts *opts,
                            pact_chan_recv_cb cb, void *ud);

/** pact_chan_send's promise twin: fulfils with nothing, or rejects as the
 * callback would fail. @return a new reference; NULL for misuse (@p value
 * is then released). */
PACT_API pact_promise *pact_chan_send_p(pact_chan *ch, pact_value value,
                                        const pact_chan_opts *opts);

/** pact_chan_recv's promise twin: fulfils with the value (moved into the
 * promise; a PACT_PROMISE value is adopted, a PACT_ERROR one rejects, as
 * pact_deferred_resolve), or rejects as the callback would fail.
 * @return a new reference; NULL for misuse. */
PACT_API pact_promise *pact_chan_recv_p(pact_chan *ch,
                                        const pact_chan_opts *opts);

/** @return the number of values buffered in @p ch (0 for NULL). */
PACT_API size_t pact_chan_len(const pact_chan *ch);

#ifdef __cplusplus
}
#endif
#endif
