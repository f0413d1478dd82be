/** @file
 * Message-passing workers (Node's worker_threads): a worker is a thread
 * running a pact loop of its own, started with an entry function. The
 * parent and the worker each hold one end of a channel, a port, and share
 * nothing else: a message is moved from one thread to the other, never
 * shared. Layer 5; see doc/workers.md for the model and its costs.
 *
 * Messages. A message is a pact_value of one of these kinds:
 *   PACT_JSON    a jansson value. Sending moves the caller's reference to
 *                the receiver. When the caller's tree is exclusively held
 *                (every node's reference count is 1, as json_pack,
 *                json_loads and the *_new setters make it) the very tree
 *                moves, without a copy; when any node is also held
 *                elsewhere (json_incref'd, or set into two containers) the
 *                tree is deep-copied first (the structured clone) and the
 *                caller's reference is dropped. Either way the receiver gets
 *                a tree nobody else holds, and a pointer the sender kept
 *                into a moved tree is as dead as a freed one. A tree that
 *                cannot be copied (one holding a cycle) is refused.
 *   PACT_BYTES   a malloc'd buffer: a transferable. Its ownership moves
 *                without a copy (the receiver gets the same pointer) and the
 *                sender's value is emptied (as a transferred ArrayBuffer is
 *                detached).
 *   PACT_STRING  a malloc'd C string: moved as PACT_BYTES is.
 *   PACT_NOTHING, PACT_INT, PACT_DOUBLE   plain values, copied.
 * Any other kind (borrowed pointers, owned pointers, promises, lists,
 * errors) would share memory or belong to one loop: PACT_EINVAL.
 *
 * Posting moves the message only on success: on any error (PACT_EAGAIN
 * included) the caller still owns it, unchanged, and may post it again.
 *
 * Back-pressure. Each direction holds at most queue_max messages that were
 * posted and not yet consumed by the receiver (handed to its callback or
 * promise); past that a post returns PACT_EAGAIN at once. Wait for room with
 * pact_port_writable (or its promise): it completes once the receiver has
 * consumed down to half the limit. A receiver that does not consume (no
 * listener, no pending receive) holds its sender back.
 *
 * Waits. A receive, a wait for room and a wait for a worker's end each call
 * their callback exactly once: with what they waited for, or with an error
 * (PACT_ECANCELED when cancelled: by their abort token, by pact_worker_free,
 * by pact_loop_close_all), so that their ud always comes back. A wait that
 * ends without a message takes none: the next message goes to the next
 * receive. To give up on a receive after a while, pass it an abort token
 * (pact_abort_timeout), as Node's events.once(port, 'message', {signal}):
 * racing its promise with pact_promise_timeout or pact_race leaves the
 * receive waiting, and the message it then takes is lost to the caller.
 *
 * Threads. pact_worker_* functions run on the parent loop's thread,
 * pact_port_* functions on the thread of the port's own loop (the parent's
 * port on the parent's, the worker's port on the worker's); the exception is
 * pact_worker_terminating, which any thread may call. Everything a callback
 * gets is borrowed for the call. */
#ifndef PACT_WORKER_H
#define PACT_WORKER_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/worker.h is layer 5 (services): a lower layer must not include it"
#endif

#include "pact/common.h"
#include "pact/error.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/** A worker, as the parent sees it (owned by the parent: pact_worker_free). */
typedef struct pact_worker pact_worker;
/** One end of a worker's channel. The parent's belongs to its pact_worker,
 * the worker's to the worker; neither is freed on its own. */
typedef struct pact_port pact_port;

/**
 * A worker's entry: runs on the new thread, on the worker's own @p loop,
 * before that loop runs. Set up what the worker does (a message listener,
 * timers, tasks) and return; the worker then runs its loop until nothing
 * keeps it alive, pact_worker_exit, or termination.
 * @param loop  the worker's loop (borrowed; pact frees it when the worker
 *   ends).
 * @param port  the worker's end of the channel (borrowed; valid until the
 *   worker ends).
 * @param arg   as given to pact_worker_new, passed as is: sharing what it
 *   points to between threads is the program's business.
 * @return NULL, or an error (a reference, stolen): the worker then does not
 *   run its loop and ends with exit code 1 and that error.
 */
typedef pact_error *(*pact_worker_fn)(pact_loop *loop, pact_port *port,
                                      void *arg);

/**
 * A received message, or why none will come. On success @p err is NULL and
 * @p msg the message, lent to the callback: take it (`pact_value mine =
 * *msg; *msg = pact_nothing();`) to keep it, with no copy; what is left in
 * *@p msg is released when the callback returns. On failure @p msg is NULL.
 */
typedef void (*pact_msg_cb)(pact_error *err, pact_value *msg, void *ud);

/**
 * A worker's end. @p code is its exit code: 0 when its loop ran out of
 * work, the code given to pact_worker_exit, or 1 when it was terminated, its
 * entry failed or an uncaught error stopped its loop (as Node). @p err
 * (borrowed) is NULL, or in the last two cases the error: the worker's
 * 'error' event.
 */
typedef void (*pact_exit_cb)(pact_error *err, int code, void *ud);

/** Options for the waits (receives, waits for room, waits for a worker's
 * end); NULL means all defaults. Zero-initialise and set what you need. */
typedef struct pact_wait_opts {
    /** Borrowed; may be NULL. Aborting it takes the wait off (a receive
     *  then takes no message) and its callback gets PACT_ECANCELED (cause:
     *  the reason) on the next tick, never inside the abort call. A token
     *  aborted already: the call succeeds and the cancellation comes on the
     *  next tick too. */
    pact_abort *abort;
} pact_wait_opts;

/** The default bound of each direction's queue (messages posted and not yet
 * consumed). */
#define PACT_WORKER_QUEUE_DEFAULT 16384
/** The default spin (µs): how long a port that waits for messages keeps its
 * thread busy looking for the next one before it sleeps. */
#define PACT_WORKER_SPIN_DEFAULT 50
/** How long pact_loop_close_all waits for a terminated worker (ms) before it
 * leaves the thread to end on its own. */
#define PACT_WORKER_CLOSE_WAIT_MS 2000

/** Options for pact_worker_new; zero-initialise and set what you need. NULL
 * means all defaults. */
typedef struct pact_worker_opts {
    /** Messages each direction holds (posted, not yet consumed) before a post
     *  returns PACT_EAGAIN; 0: PACT_WORKER_QUEUE_DEFAULT. */
    size_t queue_max;
    /** The worker thread's stack in bytes; 0: the system's default. */
    size_t stack_size;
    /** For reports and the thread's name (static, or alive as long as the
     *  worker); NULL: "pact-worker". */
    const char *name;
    /** µs a port spins for its next message after a delivery before its
     *  loop sleeps (both ends); 0: PACT_WORKER_SPIN_DEFAULT; negative: never
     *  spin. Spinning saves the wake-up (over a microsecond) of a sleeping
     *  thread when messages come back quickly; it adapts, spinning less
     *  while it catches nothing. */
    int spin_us;
    /** Start unreferenced (pact_worker_unref). */
    bool unref;
} pact_worker_opts;

/* ---- the parent's side ----------------------------------------------------
 */

/**
 * Start a worker: a new thread with its own loop, which calls @p entry and
 * then runs that loop. Until its end is reported the worker keeps @p loop
 * alive, unless unreferenced (pact_worker_unref). Seeds jansson's hash
 * (json_object_seed(0)) before the first worker starts, so that objects are
 * made alike on every thread.
 * @param loop  the parent loop, whose thread calls this.
 * @param entry, arg  the worker's entry and its argument (see
 *   pact_worker_fn; @p arg stays the caller's).
 * @param opts  NULL for the defaults; read during the call only.
 * @param out  receives the worker (free with pact_worker_free).
 * @return 0, PACT_EINVAL (NULL loop, entry or out, or a stack size the
 *   system refuses), PACT_ETHREAD, PACT_ENOMEM, PACT_EMFILE or PACT_ENFILE
 *   (out of descriptors: a worker needs seven, see pact_loop_new),
 *   PACT_ENOTHREAD (the thread could not start: the system's thread limit,
 *   no memory for its stack, or a stack it will not map): then nothing was
 *   started.
 */
PACT_API int pact_worker_new(pact_loop *loop, pact_worker_fn entry, void *arg,
                             const pact_worker_opts *opts, pact_worker **out);

/** @return the parent's end of the channel (borrowed: it lives as long as @p
 * w), or NULL for NULL. */
PACT_API pact_port *pact_worker_port(pact_worker *w);

/**
 * Terminate the worker, cooperatively: from now on posts to it fail with
 * PACT_EPIPE; the worker's loop notices in its next I/O phase (a callback
 * that is running is not interrupted: a long computation can look at
 * pact_worker_terminating), its pending receives get PACT_ECANCELED, its
 * loop stops, and everything left on it is cancelled as by
 * pact_loop_close_all (tasks' awaits give PACT_ECANCELED, handles are
 * cleared). It then ends with exit code 1, reported as any end. Messages it
 * posted before it noticed are still delivered first.
 * @return 0 (also when it is already ending or ended), PACT_EINVAL,
 *   PACT_ETHREAD.
 */
PACT_API int pact_worker_terminate(pact_worker *w);

/**
 * Call @p cb(err, code, ud) once the worker has ended (after every message
 * it posted has been delivered to a listener or receive that was waiting),
 * in the I/O phase; at once (in the next I/O phase) if it has already
 * ended. Several waits may be pending; each is called once (a wait made in
 * the callback is called in a later I/O phase). A worker that fails while
 * nobody waits raises its error on the parent loop (pact_loop_raise), as a
 * worker's unhandled 'error' event throws in Node: wait before it can fail.
 * Cancellation gives @p cb PACT_ECANCELED and code 0: by @p opts' abort
 * token, pact_worker_free or pact_loop_close_all, each on the next tick
 * (never inside the call that cancels).
 * @param w  the worker (borrowed).
 * @param opts  the abort token; may be NULL.
 * @param cb, ud  the callback and its data (the caller's).
 * @return 0, PACT_EINVAL, PACT_ETHREAD, PACT_ENOMEM (then @p cb is never
 *   called).
 */
PACT_API int pact_worker_wait(pact_worker *w, const pact_wait_opts *opts,
                              pact_exit_cb cb, void *ud);
/** pact_worker_wait's promise twin: fulfils with the exit code (PACT_INT),
 * or rejects with the worker's error, or with PACT_ECANCELED when cancelled
 * as above. @return a new reference; NULL for misuse. */
PACT_API pact_promise *pact_worker_wait_p(pact_worker *w,
                                          const pact_wait_opts *opts);

/** Let the worker keep the parent loop alive until its end is reported (the
 * default), as Node's worker.ref(). @return 0, PACT_EINVAL, PACT_ETHREAD. */
PACT_API int pact_worker_ref(pact_worker *w);
/** Stop the worker from keeping the parent loop alive (worker.unref()); its
 * messages and end are still delivered while the loop runs. @return as
 * pact_worker_ref. */
PACT_API int pact_worker_unref(pact_worker *w);

/**
 * Release the parent's handle. A worker that has not ended is terminated
 * first (pact_worker_terminate) and reaped later by the parent loop, which
 * it keeps alive until then (unless unreferenced); its pending waits,
 * receives and waits for room get PACT_ECANCELED on the next tick (never
 * inside this call; promises reject with it), and messages not yet
 * consumed are released. @p w and its
 * port are invalid afterwards. Safe inside the worker's own callbacks.
 * pact_loop_close_all does this for every worker of the loop, waiting for
 * each to end (PACT_WORKER_CLOSE_WAIT_MS at most) and calling the pending
 * callbacks with PACT_ECANCELED on the next tick (on a worker's loop, those of
 * the worker's end too), and pact_loop_free refuses (PACT_EBUSY) while any
 * worker's handle is not released.
 */
PACT_API void pact_worker_free(pact_worker *w);

/* ---- the worker's side ----------------------------------------------------
 */

/**
 * End the worker from inside (process.exit in a worker): its loop stops after
 * the current callback, what is left on it is cancelled as for termination,
 * and it ends with exit code @p code (unless an error ends it first).
 * @p port is the worker's port.
 * @return 0, PACT_EINVAL (NULL, or the parent's port), PACT_ETHREAD.
 */
PACT_API int pact_worker_exit(pact_port *port, int code);
/** @return whether the worker whose port (either end) is @p port was asked to
 * terminate: a long computation in a worker callback may look at this and
 * return early. Any thread; false for NULL. */
PACT_API bool pact_worker_terminating(const pact_port *port);

/* ---- ports: both sides ----------------------------------------------------
 */

/**
 * Send @p msg (see the top of this file for the kinds) to the other end.
 * On success the message is moved: *@p msg becomes PACT_NOTHING and whatever
 * it held (a JSON tree, a byte buffer) is no longer the caller's. On error
 * *@p msg is unchanged and still the caller's.
 * @return 0; PACT_EAGAIN when the other end's queue is full (see
 *   pact_port_writable); PACT_EPIPE when the other end is gone (the worker
 *   ended or was terminated; the parent released it); PACT_EINVAL (NULL, a
 *   kind that cannot be sent, a JSON tree with a cycle, bytes with a NULL
 *   buffer and a non-zero length); PACT_ENOMEM; PACT_ETHREAD.
 */
PACT_API int pact_port_post(pact_port *port, pact_value *msg);
/** pact_port_post of pact_json(@p json): on success the reference is moved,
 * on error it is still the caller's (a NULL @p json is PACT_EINVAL).
 * @return as pact_port_post. */
PACT_API int pact_port_post_json(pact_port *port, struct json_t *json);
/** pact_port_post of pact_bytes(*@p data, @p len), a transfer: on success
 * *@p data is set to NULL and the buffer (malloc'd) belongs to the receiver,
 * which gets the same pointer; on error *@p data is unchanged. @return as
 * pact_port_post. */
PACT_API int pact_port_post_bytes(pact_port *port, void **data, size_t len);

/**
 * Listen: @p cb gets every message for which no receive is waiting, in the
 * order they were posted, each as its own macrotask in the I/O phase
 * (ticks and microtasks drain after each, as after a Node 'message' event).
 * Replaces the previous listener; a NULL @p cb stops listening (messages
 * then wait for a receive or a listener, and count against the sender's
 * queue). On the worker's side a listening port keeps the worker's loop
 * alive, as a 'message' listener on Node's parentPort does.
 * @return 0, PACT_EINVAL (NULL port), PACT_ETHREAD.
 */
PACT_API int pact_port_on_message(pact_port *port, pact_msg_cb cb, void *ud);

/**
 * Receive one message: @p cb gets the next message, before any listener
 * (receives waiting together are served in the order they were made).
 * Called in the I/O phase, never inside this call. Fails with PACT_EOF when
 * the other end has ended and every message it sent has been consumed (on
 * the parent's side, with the worker's error instead if it failed), with
 * PACT_ECANCELED when the worker is terminated (on its own side), freed,
 * closed by pact_loop_close_all, or @p opts' abort token is aborted. A
 * receive that fails takes no message.
 * @param port  this end (borrowed).
 * @param opts  the abort token; may be NULL (see pact_wait_opts).
 * @param cb, ud  the callback and its data (the caller's).
 * @return 0, PACT_EINVAL, PACT_ETHREAD, PACT_ENOMEM (then @p cb is never
 *   called).
 */
PACT_API int pact_port_recv(pact_port *port, const pact_wait_opts *opts,
                            pact_msg_cb cb, void *ud);
/** pact_port_recv's promise twin: fulfils with the message, which the
 * promise then owns (no copy: awaiting it as the last holder hands over the
 * same buffer or tree), or rejects as the callback would fail. To time it
 * out, give it pact_abort_timeout's token, not pact_promise_timeout (which
 * leaves the receive waiting: see the top of this file). @return a new
 * reference; NULL for misuse. */
PACT_API pact_promise *pact_port_recv_p(pact_port *port,
                                        const pact_wait_opts *opts);

/**
 * Wait for room: @p cb(NULL, ud) once the other end's queue has room again
 * (consumed down to half its bound; in the next I/O phase if it has room
 * now), or @p cb(PACT_EPIPE error) if the other end goes away. Called once,
 * and only while there is room: waits served together are called in order
 * while room lasts (the rest wait for more), and a wait made in the
 * callback (post until PACT_EAGAIN, then wait again) is called only once
 * the receiver has made room again. Cancelled as pact_port_recv is
 * (PACT_ECANCELED).
 * @param port  this end (borrowed).
 * @param opts  the abort token; may be NULL (see pact_wait_opts).
 * @param cb, ud  the callback and its data (the caller's).
 * @return 0, PACT_EPIPE (the other end is gone already: no callback),
 *   PACT_EINVAL, PACT_ETHREAD, PACT_ENOMEM.
 */
PACT_API int pact_port_writable(pact_port *port, const pact_wait_opts *opts,
                                pact_cb cb, void *ud);
/** pact_port_writable's promise twin: fulfils with nothing, or rejects as
 * the callback would fail. @return a new reference; NULL for misuse. */
PACT_API pact_promise *pact_port_writable_p(pact_port *port,
                                            const pact_wait_opts *opts);

/** @return how many messages this end has posted that the other end has
 * not consumed yet (what the bound counts). */
PACT_API size_t pact_port_pending(const pact_port *port);

#ifdef __cplusplus
}
#endif
#endif
