/** @file
 * Layer 5: the offload pool (uv_queue_work, tokio's spawn_blocking,
 * asyncio's run_in_executor). A job function runs on a pool thread; its
 * result comes back to the loop's thread as an error-first callback, or as a
 * promise (pact_offload_p) that a task can PACT_AWAIT.
 *
 * The pool is one per process, shared by every loop, in two lanes with their
 * own threads: PACT_LANE_CPU for computation and PACT_LANE_BLOCKING for calls
 * that wait (file systems, a library's blocking API), so that slow blocking
 * calls cannot starve computation of threads. Threads start when jobs first
 * need them and stop when the last loop that used the pool is freed.
 *
 * Ownership: @c arg is borrowed by the job and must stay valid until its
 * callback has run (the callback never runs before the job function has
 * returned, so it may free @c arg). The job's result moves to the callback
 * (see pact_offload_cb) or into the promise.
 *
 * Threads: pact_offload, pact_offload_p, pact_offload_set_limit and
 * pact_offload_pending are loop-thread calls (PACT_ETHREAD otherwise, the
 * function named on stderr); pact_pool_set_threads, pact_pool_threads and
 * pact_job_cancelled may be called from any thread. doc/offload.md is the
 * guide. */
#ifndef PACT_POOL_H
#define PACT_POOL_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error "pact/pool.h is layer 5 (services): a lower layer must not include it"
#endif

#include "pact/common.h"
#include "pact/error.h"
#include "pact/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Which threads run a job. Each lane has its own threads and its own
 *  queue: a lane full of blocked jobs does not hold up the other. */
typedef enum pact_lane {
    /** Computation: as many threads as cores (PACT_POOL_SIZE). The default. */
    PACT_LANE_CPU = 0,
    /** Calls that block (I/O, sleeping, a library's blocking API): more
     *  threads than cores, since they mostly wait (PACT_POOL_BLOCKING_SIZE). */
    PACT_LANE_BLOCKING = 1,
} pact_lane;

/** The number of lanes. */
#define PACT_LANES 2

/** A job as its function sees it (owned by the pool; valid during the job
 *  function only). */
typedef struct pact_job pact_job;

/**
 * A job function: runs on a pool thread with @p arg (borrowed). Store the
 * job's value in @p result (it starts as nothing; ownership moves to the
 * pool) and return NULL, or return an error (a new reference, stolen; make it
 * with PACT_ERROR: errors are safe to make and drop on any thread), in which
 * case whatever @p result holds is released.
 *
 * The value must be one that can cross threads: nothing, an int, a double, a
 * pointer, an owned pointer, JSON (jansson's reference counts are atomic) or
 * bytes. A promise, thenable or list belongs to a loop and is refused (the
 * callback gets PACT_EINVAL); a PACT_ERROR value is taken as the error.
 *
 * On the pool thread only the thread-safe calls are allowed: error and value
 * constructors, jansson, pact_loop_post, pact_job_cancelled. Poll
 * pact_job_cancelled(@p job) in long computations to stop early; nothing
 * interrupts a call that blocks.
 */
typedef pact_error *(*pact_offload_fn)(pact_job *job, void *arg,
                                       pact_value *result);

/**
 * A job's completion, on the loop's thread: @p err is NULL on success
 * (borrowed for the call). @p result is the job's value, owned by the pool
 * for the call: take it by moving it out (`mine = *result; *result =
 * pact_nothing();`), or leave it to be released after the callback returns.
 * On error it is nothing. Cancellation is PACT_ECANCELED; its cause is the
 * job's own error if the job failed with one other than PACT_ECANCELED
 * (kept, not replaced), else the abort reason, if an abort token cancelled
 * it (the token still has it: pact_abort_reason).
 */
typedef void (*pact_offload_cb)(pact_error *err, pact_value *result, void *ud);

/** Options for pact_offload; NULL means all defaults. Zero-initialise and
 *  set what you need. */
typedef struct pact_offload_opts {
    pact_lane lane;    /**< PACT_LANE_CPU (0, the default) or _BLOCKING */
    pact_abort *abort; /**< borrowed; may be NULL. Aborting removes the job if
                            it has not started (the callback gets
                            PACT_ECANCELED, never inside the abort call), or
                            sets the flag pact_job_cancelled reads if it runs:
                            the callback then comes when the job function
                            returns, still with PACT_ECANCELED (the result is
                            released). Already aborted: the submission
                            succeeds and the job never runs. */
} pact_offload_opts;

/**
 * Run @p fn(job, @p arg, &result) on a pool thread, then call
 * @p cb(err, &result, @p ud) on the loop's thread, in its I/O phase (results
 * that arrive together are delivered in one wake-up of the loop). A lane
 * takes its jobs first in, first out; with several threads they run side by
 * side and finish, and are called back, in any order. A job keeps the loop
 * alive until its callback has run.
 *
 * Back-pressure: a loop has at most a limit of jobs in flight per lane
 * (submitted, callback not yet run; 65536 unless pact_offload_set_limit or
 * PACT_POOL_QUEUE says otherwise). Past it the submission fails with
 * PACT_EAGAIN and nothing is queued: submit again after a callback.
 *
 * Cancellation: by opts->abort (see pact_offload_opts), or by
 * pact_loop_close_all, which cancels every job of the loop the same way:
 * the callback gets PACT_ECANCELED once, never inside the cancelling call
 * (for a job that runs, when its function returns).
 *
 * @param loop  the loop whose thread submits and gets the callback.
 * @param fn, arg  the job function and its argument (borrowed, see above).
 * @param opts  lane and abort token; NULL for the CPU lane without one.
 * @param cb, ud  the completion and its data (the caller's).
 * @return 0; PACT_EAGAIN (the lane's limit is reached); PACT_EINVAL (NULL
 *   loop, fn or cb; a lane that does not exist); PACT_ENOMEM; PACT_ETHREAD
 *   (not the loop's thread, which includes a pool thread); PACT_EMFILE or
 *   PACT_ENFILE (the loop's first offload needs a descriptor for its
 *   results); PACT_ENOTHREAD when the lane has no thread and none can be
 *   started. On any error @p cb is never called.
 */
PACT_API int pact_offload(pact_loop *loop, pact_offload_fn fn, void *arg,
                          const pact_offload_opts *opts, pact_offload_cb cb,
                          void *ud);

/**
 * The promise twin of pact_offload (through pact_promisify): fulfils with the
 * job's value (moved in, so owned values and bytes arrive as they are) or
 * rejects with its error, PACT_ECANCELED, or the submission's error (e.g.
 * PACT_EAGAIN, or PACT_EINVAL for misuse, as the callback form returns).
 * PACT_AWAIT(pact_offload_p(...)) works in a task.
 * @return a new reference; NULL only when no promise can be made (off the
 *   loop's thread, out of memory).
 */
PACT_API pact_promise *pact_offload_p(pact_loop *loop, pact_offload_fn fn,
                                      void *arg, const pact_offload_opts *opts);

/**
 * @return whether the job was cancelled: its abort token was aborted, or
 *   pact_loop_close_all ran on its loop. Any thread; cheap (atomic loads),
 *   meant to be polled from the job function. false for NULL.
 */
PACT_API bool pact_job_cancelled(const pact_job *job);

/**
 * Set the most jobs @p loop may have in flight in @p lane (see
 * pact_offload). Lowering it below what is in flight refuses new jobs until
 * enough have completed.
 * @param loop, lane  the loop and lane it applies to.
 * @param max  at least 1.
 * @return 0, PACT_EINVAL, PACT_ETHREAD, PACT_ENOMEM.
 */
PACT_API int pact_offload_set_limit(pact_loop *loop, pact_lane lane,
                                    size_t max);
/** @return the jobs @p loop has in flight in @p lane (submitted, callback
 *  not yet run), 0 for misuse. */
PACT_API size_t pact_offload_pending(pact_loop *loop, pact_lane lane);

/**
 * How long pact_loop_free waits for cancelled jobs still running on pool
 * threads before it gives up with PACT_EBUSY (default 5000 ms; 0 does not
 * wait). See doc/offload.md, "Shutdown".
 * @return 0, PACT_EINVAL, PACT_ETHREAD, PACT_ENOMEM.
 */
PACT_API int pact_offload_set_shutdown_ms(pact_loop *loop, uint64_t ms);

/**
 * Set how many threads @p lane may run, for the whole process; 0 restores the
 * default: the environment variable (PACT_POOL_SIZE for the CPU lane,
 * PACT_POOL_BLOCKING_SIZE for the blocking lane) if set, else the number of
 * cores (at least 2) for the CPU lane and 4 per core (at least 8, at most 64)
 * for the blocking lane. Threads start one by one as queued jobs need them;
 * raising the size takes effect with the next job, lowering it below the
 * threads already started once they stop (when the last loop using the pool
 * is freed).
 * @param lane  the lane to size.
 * @param n  at most 1024.
 * @return 0 or PACT_EINVAL. Any thread.
 */
PACT_API int pact_pool_set_threads(pact_lane lane, unsigned n);
/** @return the size @p lane has now (as resolved above), 0 for a lane that
 *  does not exist. Any thread. */
PACT_API unsigned pact_pool_threads(pact_lane lane);

#ifdef __cplusplus
}
#endif
#endif
