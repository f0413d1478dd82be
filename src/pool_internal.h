/* Private to the offload pool: pool.c (the process-wide lanes and their
 * threads) and offload.c (each loop's side: submission, completions,
 * cancellation, shutdown), and what they call in one another.
 *
 * Lock order (no thread ever holds two locks but these pairs, in this
 * order):
 *   pool.lock -> lane.lock   starting and stopping threads, resizing
 *   lane.lock and offq.lock are never held together: a worker takes a job
 *   under lane.lock, drops it, runs the job, then publishes the result under
 *   its loop's offq.lock; the loop thread takes either alone.
 * No user code (job function or callback) runs while any of them is held. */
#ifndef PACT_POOL_INTERNAL_H
#define PACT_POOL_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error                                                                         \
    "pool_internal.h is layer 5 (services): a lower layer must not include it"
#endif

#include "internal.h"
#include "pact/pool.h"

/* Where a job is (STYLE 13: it goes back to the free list only once it has
 * been called back, and only the loop thread calls back). */
enum job_state {
    J_PENDING,   /* on its loop's pending list, not yet handed to its lane */
    J_QUEUED,    /* in its lane's queue (changed under lane.lock only) */
    J_RUNNING,   /* a pool thread took it into its batch (whichever thread
                    claims it checks pact_job_cancelled before running it);
                    on its loop's done list once run */
    J_DONE,      /* taken back by the loop thread, to be called back */
    J_CANCELLED, /* taken off before it ran, to be called back */
};

struct offq;

/* Two cache lines: a pool thread touches only the first (and the second's
 * err when the job fails), so the second stays in the loop thread's cache
 * and each job crosses between cores as one line each way. */
struct pact_job {
    /* line 0: shared with the pool thread that runs it */
    _Alignas(64) struct pact_job *next; /* in one list at a time (state) */
    pact_offload_fn fn;
    void *arg;
    struct offq *q;        /* its loop's side */
    pact_value result;     /* written by the worker, read once published */
    _Atomic uint8_t state; /* job_state */
    atomic_bool cancelled; /* cancelled while it ran: the flag it polls */
    uint8_t lane;
    /* line 1: the loop thread's */
    _Alignas(64) struct pact_job *prev;
    pact_offload_cb cb;
    void *ud;
    pact_error *err;    /* the job's error (written by the worker only then) */
    pact_fn drop;       /* releases ud if the callback is dropped at
                           pact_loop_free (pact__offload), or NULL */
    const void *site;   /* the program's call that started it, or NULL
                           (pact__error_site marks its error with it) */
    struct pact__op op; /* its pending-operation record */
};

/* A FIFO of jobs through next/prev. */
struct jlist {
    pact_job *head, *tail;
    size_t len;
};

static inline void jlist_push(struct jlist *l, pact_job *j)
{
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->len++;
}

static inline void jlist_unlink(struct jlist *l, pact_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    l->len--;
}

/* Take the first job. Only the head's prev is read (none), so lists linked
 * through next alone (what pool threads hand back) can be popped too. */
static inline pact_job *jlist_pop(struct jlist *l)
{
    pact_job *j = l->head;
    if (!j)
        return NULL;
    l->head = j->next;
    if (l->head)
        l->head->prev = NULL;
    else
        l->tail = NULL;
    l->len--;
    return j;
}

/* Move all of @p from to the end of @p to. */
static inline void jlist_append(struct jlist *to, struct jlist *from)
{
    if (!from->head)
        return;
    if (to->tail) {
        to->tail->next = from->head;
        from->head->prev = to->tail;
    } else {
        to->head = from->head;
    }
    to->tail = from->tail;
    to->len += from->len;
    from->head = from->tail = NULL;
    from->len = 0;
}

static inline enum job_state job_state(const pact_job *j)
{
    return (enum job_state)atomic_load_explicit(&j->state,
                                                memory_order_relaxed);
}

static inline void job_set_state(pact_job *j, enum job_state s)
{
    atomic_store_explicit(&j->state, (uint8_t)s, memory_order_relaxed);
}

/* ---- pool.c: the lanes (any thread unless said) -------------------------- */

/* A loop starts or stops using the pool: the first one in starts nothing
 * (threads start with jobs); the last one out stops and joins every thread. */
void pact__pool_enter(void);
void pact__pool_leave(void);
/* Make sure @p lane has a thread to run what is queued. @return 0 or the
 * (negative) error of pthread_create. */
int pact__lane_ready(int lane);
/* Queue @p jobs (all of @p lane, state J_PENDING) at the end of the lane and
 * wake or start threads for them; @p jobs is emptied. */
void pact__lane_push(int lane, struct jlist *jobs);
/* Take @p j out of its lane if it has not started. @return whether it did
 * (then it is J_CANCELLED). */
bool pact__lane_cancel(pact_job *j);

/* How long a thread with nothing to do may spin before it sleeps: @p ns,
 * or 0 when there are fewer cores than threads running CPU jobs plus
 * @p spinners (the loop thread and this one, or the loop thread alone), and
 * under valgrind, which runs one thread at a time. */
uint64_t pact__spin_ns(uint64_t ns, unsigned spinners);
/* Spin until *@p word is not zero or @p ns have passed; a spinner that finds
 * it lost its core meanwhile stops, and pact__spin_ns says 0 for a while.
 * @return whether *word became non-zero. */
bool pact__spin_on(const atomic_size_t *word, uint64_t ns);

/* ---- offload.c ----------------------------------------------------------- */

/* A worker ran @p jobs (all of @p q): hand them back to their loop, under
 * offq.lock; @p jobs is emptied. @return whether the loop was spinning for
 * results. */
bool pact__offq_publish(struct offq *q, struct jlist *jobs);

/* offload.c, for the services built on the pool (fs.c): pact_offload, named
 * @p name in misuse reports, whose @p ud is released by @p drop_ud (may be
 * NULL) when its callback will never run: pact_loop_free after
 * pact_loop_close_all drops the callbacks still owed, once no pool thread
 * runs the job (so @p arg may go with @p ud). */
int pact__offload(pact_loop *loop, pact_offload_fn fn, void *arg,
                  const pact_offload_opts *opts, pact_offload_cb cb, void *ud,
                  pact_fn drop_ud, const char *name);

#endif
