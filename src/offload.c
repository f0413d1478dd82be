/* The offload pool, each loop's side: pact_offload and its promise twin, the
 * completion queue the pool threads publish to, delivery on the loop thread,
 * cancellation (abort tokens, pact_loop_close_all) and pact_loop_free's wait.
 *
 * Completions come back as pact_loop_post's do: a worker appends the job to
 * its loop's done list under offq.lock and writes the wake-up fd only if no
 * wake-up is pending, so results that arrive together cost one wake-up; the
 * loop takes the whole list at once in its I/O phase. Before the loop blocks
 * with jobs on pool threads it spins briefly on the list (the loop's spin
 * hook), and a worker that sees it spinning skips the fd: a round trip then
 * costs no wake-up at all (and the worker, told the loop was waiting, spins
 * for the next job in turn). Submissions are batched the other way: jobs
 * submitted in one turn wait on a per-loop list and are handed to their lane
 * by one microtask (or every FLUSH_BATCH jobs), under one lane lock.
 * The lock order is in pool_internal.h. */
#include "pool_internal.h"
#include "promise_internal.h"
#include "symbol.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_LIMIT 65536
#define DEFAULT_SHUTDOWN_MS 5000
#define FLUSH_BATCH 256
/* How long the loop spins for results before it sleeps in its poll. */
#define LOOP_SPIN_NS 50000
#define SLAB_JOBS 512
/* Rounds of taking newly arrived results within one I/O callback. */
#define DRAIN_ROUNDS 4

struct slab {
    struct slab *next;
    pact_job jobs[SLAB_JOBS];
};

/* Three parts, each on its own cache lines: what the pool threads only read,
 * what they write (under lock), and the loop thread's own. */
struct offq {
    /* read by the pool threads */
    pact_loop *loop;
    struct pact__wake wake; /* the results' wake-up (an eventfd, or a pipe) */
    /* shared with the pool threads, under lock */
    _Alignas(64) pthread_mutex_t lock;
    pthread_cond_t drained; /* a job was published while free waits */
    struct jlist done;      /* run, not yet taken back by the loop */
    bool wake_pending;      /* fd written; the list not taken since */
    bool spinning;          /* the loop spins on `ready`: skip the fd */
    bool waiting;           /* pact_loop_free waits on `drained` */
    atomic_size_t ready;    /* done is not empty (for the spinning loop) */
    atomic_bool listening;  /* a hint: the loop is awake with jobs out and
                               will look for results before it sleeps */
    /* the loop thread's */
    _Alignas(64) struct event *ev;
    struct jlist pending[PACT_LANES]; /* submitted, not handed to the lane */
    bool flush_queued;
    bool lane_ready[PACT_LANES]; /* the lane has a thread (until we leave) */
    struct jlist todo;           /* to call back: cancelled or taken back */
    size_t inflight[PACT_LANES]; /* submitted, not called back: the limit's
                                    count */
    size_t limit[PACT_LANES];
    size_t in_lanes; /* handed to a lane, not taken back from done */
    size_t current;  /* owed a callback and not cancelled */
    uint64_t shutdown_ms;
    struct slab *slabs; /* newest first; jobs[0..slab_used) handed out */
    size_t slab_used;
    pact_job **spare; /* jobs to reuse, the last freed last */
    size_t nspare, spare_cap;
    char why[200];
};

/* ---- the wake-up fd (as post.c) ------------------------------------------ */

static void wake(struct offq *q)
{
    pact__wake_signal(&q->wake);
}

static void consume_wakeup(struct offq *q)
{
    pact__wake_drain(&q->wake);
}

/* Have the loop call on_ready in its next I/O phase (loop thread). */
static void activate(struct offq *q)
{
    event_active(q->ev, EV_READ, 0);
}

/* ---- jobs ---------------------------------------------------------------- */

/* Jobs come from slabs, handed out in address order, and go back to an
 * array of spares, reused newest first (still in this core's cache): no
 * allocation per job, and no pointer chase through cold jobs to find one. */
static pact_job *job_alloc(struct offq *q)
{
    if (q->nspare)
        return q->spare[--q->nspare];
    if (!q->slabs || q->slab_used == SLAB_JOBS) {
        /* room for every job to be a spare at once, so freeing never fails */
        size_t cap = q->spare_cap + SLAB_JOBS;
        pact_job **v = realloc(q->spare, cap * sizeof *v);
        if (!v)
            return NULL;
        q->spare = v;
        struct slab *s = aligned_alloc(_Alignof(struct slab), sizeof *s);
        if (!s)
            return NULL;
        q->spare_cap = cap;
        s->next = q->slabs;
        q->slabs = s;
        q->slab_used = 0;
    }
    return &q->slabs->jobs[q->slab_used++];
}

static void job_free(struct offq *q, pact_job *j)
{
    q->spare[q->nspare++] = j;
}

/* The error the callback gets (j->result is left to match): its own, or,
 * cancelled while it ran (@p cancel, taken), the cancellation -- caused by
 * the job's own failure when it failed in its own way. */
static pact_error *outcome(pact_job *j, pact_error *cancel)
{
    pact_error *err = j->err;
    j->err = NULL;
    if (cancel) {
        pact_error *own = err                            ? err
                          : j->result.kind == PACT_ERROR ? j->result.u.error
                                                         : NULL;
        if (own && pact_error_code(own) != PACT_ECANCELED) {
            pact_error *wrapped = PACT_ERROR_CAUSE(own, PACT_ECANCELED, "%s",
                                                   pact_error_message(cancel));
            pact_error_unref(cancel);
            cancel = wrapped ? wrapped : pact__enomem();
        }
        pact_error_unref(err);
        err = cancel;
    } else if (!err && j->result.kind == PACT_ERROR) {
        err = j->result.u.error ? j->result.u.error : pact__enomem();
        j->result = pact_nothing();
    } else if (!err && j->result.kind >= PACT_LIST) { /* a loop's things */
        err = PACT_ERROR(PACT_EINVAL,
                         "an offloaded job's value cannot be a promise, "
                         "thenable or list (they belong to a loop)");
        if (!err)
            err = pact__enomem();
    }
    if (err)
        pact_value_release(&j->result);
    return err;
}

/* Call back @p j, back from its lane, and recycle it. */
static void deliver(struct offq *q, pact_job *j)
{
    pact_loop *loop = q->loop;
    pact_error *cancel;
    bool call = pact__op_end(&j->op, &cancel);
    assert(call); /* a job stopped by its cancellation never comes back */
    (void)call;
    q->inflight[j->lane]--;
    if (!cancel)
        q->current--;
    pact_error *err = outcome(j, cancel);
    job_set_state(j, J_DONE);
    j->cb(pact__error_site(err, j->site), &j->result, j->ud);
    pact_value_release(&j->result);
    pact_error_unref(err);
    job_free(q, j);
    pact__drain(loop);
}

/* pact_loop_free after pact_loop_close_all: @p j's callback will never run. */
static void drop(struct offq *q, pact_job *j)
{
    q->inflight[j->lane]--;
    pact_error_unref(j->err);
    j->err = NULL;
    pact_value_release(&j->result);
    if (j->drop) /* e.g. the promise twin's deferred */
        j->drop(j->ud);
    job_free(q, j);
}

/* ---- the pending-operation record ----------------------------------------
 * Cancelled (an abort token, pact_loop_close_all): a job not yet on a pool
 * thread is taken off and called back by the core on the next tick; one
 * running (or run and not yet taken back) gets the flag it polls
 * (pact_job_cancelled), and its callback, with the cancellation, comes when
 * the loop takes it back: its argument may be in use until then. */

static pact_job *op_job(struct pact__op *op)
{
    return pact__list_entry(op, pact_job, op);
}

static bool job_stop(struct pact__op *op)
{
    pact_job *j = op_job(op);
    struct offq *q = j->q;
    q->current--;
    switch (job_state(j)) {
    case J_PENDING:
        if (j->next || j->prev || q->pending[j->lane].head == j)
            jlist_unlink(&q->pending[j->lane], j);
        job_set_state(j, J_CANCELLED);
        return true;
    case J_QUEUED:
        if (pact__lane_cancel(j)) {
            q->in_lanes--;
            return true;
        }
        break; /* it started meanwhile */
    default:
        break;
    }
    atomic_store_explicit(&j->cancelled, true, memory_order_relaxed);
    return false;
}

static void job_fail(struct pact__op *op, pact_error *err)
{
    pact_job *j = op_job(op);
    struct offq *q = j->q;
    q->inflight[j->lane]--;
    pact_value nothing = pact_nothing();
    j->cb(pact__error_site(err, j->site), &nothing, j->ud);
    job_free(q, j);
}

static void job_drop(struct pact__op *op)
{
    pact_job *j = op_job(op);
    drop(j->q, j);
}

static void job_describe(const struct pact__op *op, char *buf, size_t len)
{
    const pact_job *j = pact__list_entry(op, const pact_job, op);
    static const char *const state[] = {
        [J_PENDING] = "submitted",   [J_QUEUED] = "queued",
        [J_RUNNING] = "running",     [J_DONE] = "done",
        [J_CANCELLED] = "cancelled",
    };
    char call[160];
    pact__describe_call(call, sizeof call, (void (*)(void))j->fn, j->arg);
    snprintf(buf, len, "%s on the %s lane, runs %s", state[job_state(j)],
             j->lane == PACT_LANE_CPU ? "CPU" : "blocking", call);
}

static const struct pact__op_type job_type = {
    .what = "offloaded job",
    .stop = job_stop,
    .fail = job_fail,
    .drop = job_drop,
    .describe = job_describe,
    .waited = true,
};

/* ---- completions --------------------------------------------------------- */

bool pact__offq_publish(struct offq *q, struct jlist *jobs)
{
    pthread_mutex_lock(&q->lock);
    bool awaited = q->spinning ||
                   atomic_load_explicit(&q->listening, memory_order_relaxed);
    jlist_append(&q->done, jobs);
    atomic_store_explicit(&q->ready, 1, memory_order_relaxed);
    if (q->waiting) {
        pthread_cond_signal(&q->drained);
    } else if (!q->wake_pending && !q->spinning) {
        q->wake_pending = true;
        /* under the lock: once it is released the loop may take this job,
         * call it back and be freed, fd and all */
        wake(q);
    }
    pthread_mutex_unlock(&q->lock);
    return awaited;
}

/* Move the done list to the loop's todo list. */
static void take_done(struct offq *q)
{
    pthread_mutex_lock(&q->lock);
    struct jlist got = q->done;
    q->done = (struct jlist){0};
    /* under the lock, as the fd is written: consumed after it, a wake-up
     * written meanwhile (with wake_pending set again) would be lost */
    if (q->wake_pending)
        consume_wakeup(q);
    q->wake_pending = false;
    atomic_store_explicit(&q->ready, 0, memory_order_relaxed);
    pthread_mutex_unlock(&q->lock);
    q->in_lanes -= got.len;
    jlist_append(&q->todo, &got);
}

/* The I/O phase's callback: call back everything there is, taking what
 * arrives meanwhile too (a few rounds, so other I/O is not starved). */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct offq *q = arg;
    pact_loop *loop = q->loop;
    bool was = pact__own_begin(loop);
    atomic_store_explicit(&q->listening, true, memory_order_relaxed);
    for (int round = 0;; round++) {
        take_done(q);
        pact_job *j;
        while (!pact__halted(loop) && (j = jlist_pop(&q->todo)))
            deliver(q, j);
        if (pact__halted(loop)) {
            if (q->todo.len)
                activate(q); /* resume when the loop runs again */
            break;
        }
        if (round + 1 == DRAIN_ROUNDS ||
            !atomic_load_explicit(&q->ready, memory_order_relaxed))
            break;
    }
    atomic_store_explicit(&q->listening, q->in_lanes && loop->running,
                          memory_order_relaxed);
    pact__own_end(loop, was);
}

/* The loop's spin hook: with jobs on pool threads, spin briefly for their
 * results before the poll sleeps. */
static bool offq_spin(pact_loop *loop, void *state, uint64_t wait_ns)
{
    (void)loop;
    struct offq *q = state;
    if (q->todo.len)
        return true; /* activated already */
    uint64_t ns = pact__spin_ns(LOOP_SPIN_NS, 1);
    if (!q->in_lanes || !ns) {
        atomic_store_explicit(&q->listening, false, memory_order_relaxed);
        return false;
    }
    if (ns > wait_ns)
        ns = wait_ns;
    pthread_mutex_lock(&q->lock);
    q->spinning = true;
    pthread_mutex_unlock(&q->lock);
    pact__spin_on(&q->ready, ns);
    pthread_mutex_lock(&q->lock);
    q->spinning = false;
    bool have = q->done.head != NULL;
    pthread_mutex_unlock(&q->lock);
    if (have)
        activate(q);
    else /* it sleeps now */
        atomic_store_explicit(&q->listening, false, memory_order_relaxed);
    return have;
}

/* ---- submission ---------------------------------------------------------- */

static void flush(struct offq *q, int lane)
{
    q->in_lanes += q->pending[lane].len;
    pact__lane_push(lane, &q->pending[lane]);
}

static void flush_job(void *ud)
{
    struct offq *q = ud;
    q->flush_queued = false;
    for (int lane = 0; lane < PACT_LANES; lane++)
        if (q->pending[lane].len)
            flush(q, lane);
}

static int offq_get(pact_loop *loop, struct offq **out);

/* A job from its submission's arguments, pending. */
static pact_job *job_new(struct offq *q, unsigned lane, pact_offload_fn fn,
                         void *arg, pact_offload_cb cb, void *ud,
                         pact_fn drop_ud)
{
    pact_job *j = job_alloc(q);
    if (!j)
        return NULL;
    /* field by field: a compound literal would clear the padding too */
    j->fn = fn;
    j->arg = arg;
    j->q = q;
    j->result = pact_nothing();
    j->lane = (uint8_t)lane;
    j->drop = drop_ud;
    j->cb = cb;
    j->ud = ud;
    j->err = NULL;
    j->next = j->prev = NULL;
    atomic_store_explicit(&j->cancelled, false, memory_order_relaxed);
    job_set_state(j, J_PENDING);
    return j;
}

/* Queue @p j for its lane: handed over at the end of the turn, or at once
 * every FLUSH_BATCH jobs. */
static void queue(struct offq *q, pact_job *j)
{
    struct jlist *pending = &q->pending[j->lane];
    jlist_push(pending, j);
    if (pending->len >= FLUSH_BATCH) {
        flush(q, j->lane);
    } else if (!q->flush_queued) {
        q->flush_queued = true;
        pact__micro_must(q->loop, flush_job, q);
    }
}

static int submit(pact_loop *loop, pact_offload_fn fn, void *arg,
                  const pact_offload_opts *opts, pact_offload_cb cb, void *ud,
                  pact_fn drop_ud, const void *site, const char *name)
{
    PACT_CHECK_LOOP(loop, name);
    PACT_CHECK_ARG(fn, name);
    PACT_CHECK_ARG(cb, name);
    unsigned lane = opts ? (unsigned)opts->lane : PACT_LANE_CPU;
    if (lane >= PACT_LANES)
        return pact__misuse(name, PACT_EINVAL, "no such lane");
    struct offq *q;
    int made = offq_get(loop, &q);
    if (made < 0)
        return made;
    if (q->inflight[lane] >= q->limit[lane])
        return PACT_EAGAIN;
    if (!q->lane_ready[lane]) {
        int rc = pact__lane_ready((int)lane);
        if (rc < 0)
            return rc;
        q->lane_ready[lane] = true;
    }
    pact_job *j = job_new(q, lane, fn, arg, cb, ud, drop_ud);
    if (!j)
        return PACT_ENOMEM;
    j->site = site;
    q->inflight[lane]++;
    q->current++;
    /* a token aborted already stops it here (J_PENDING, on no list yet):
     * its call is then due, and it is never queued */
    int rc = pact__op_start(loop, &j->op, &job_type, opts ? opts->abort : NULL,
                            PACT__OP_REF);
    if (rc < 0) {
        q->inflight[lane]--;
        q->current--;
        job_free(q, j);
        return rc;
    }
    if (job_state(j) == J_PENDING)
        queue(q, j);
    return 0;
}

int pact_offload(pact_loop *loop, pact_offload_fn fn, void *arg,
                 const pact_offload_opts *opts, pact_offload_cb cb, void *ud)
{
    return submit(loop, fn, arg, opts, cb, ud, NULL, PACT__CALLER(),
                  "pact_offload");
}

int pact__offload(pact_loop *loop, pact_offload_fn fn, void *arg,
                  const pact_offload_opts *opts, pact_offload_cb cb, void *ud,
                  pact_fn drop_ud, const char *name)
{
    /* the service calling (fs) marks its errors with its own caller */
    return submit(loop, fn, arg, opts, cb, ud, drop_ud, NULL, name);
}

/* ---- the promise twin ---------------------------------------------------- */

struct offload_args {
    pact_offload_fn fn;
    void *arg;
    const pact_offload_opts *opts;
    const void *site; /* the program's call of pact_offload_p */
};

/* The value moves into the promise: owned values and bytes need no copy. */
static void settle(pact_error *err, pact_value *result, void *d)
{
    if (err) {
        pact_deferred_reject(d, pact_error_ref(err));
    } else {
        pact_deferred_resolve(d, *result);
        *result = pact_nothing();
    }
    pact_deferred_unref(d);
}

static void unref_deferred(void *d)
{
    pact_deferred_unref(d);
}

static int start_offload(pact_loop *loop, void *args, pact_deferred *d)
{
    const struct offload_args *a = args;
    return submit(loop, a->fn, a->arg, a->opts, settle, d, unref_deferred,
                  a->site, "pact_offload_p");
}

pact_promise *pact_offload_p(pact_loop *loop, pact_offload_fn fn, void *arg,
                             const pact_offload_opts *opts)
{
    struct offload_args a = {fn, arg, opts, PACT__CALLER()};
    return pact__promisify(loop, start_offload, &a, "pact_offload_p");
}

bool pact_job_cancelled(const pact_job *job)
{
    return job && atomic_load_explicit(&job->cancelled, memory_order_relaxed);
}

/* ---- the loop's service: close_all, free --------------------------------- */

/* Wait (up to the shutdown limit) until no job of @p q is on a pool thread,
 * taking none back. @return how many still are. */
static size_t lanes_running(struct offq *q)
{
    pthread_mutex_lock(&q->lock);
    if (q->done.len < q->in_lanes) {
        /* drained's clock */
        struct timespec until =
            pact__timespec_in_ms(CLOCK_MONOTONIC, q->shutdown_ms);
        q->waiting = true;
        while (q->done.len < q->in_lanes &&
               pthread_cond_timedwait(&q->drained, &q->lock, &until) == 0)
            ;
        q->waiting = false;
        /* publishers skipped the fd meanwhile: if pact_loop_free refuses
         * after all, the loop that runs again must still see their jobs */
        if (q->done.head && !q->wake_pending) {
            q->wake_pending = true;
            wake(q);
        }
    }
    assert(q->done.len <= q->in_lanes);
    size_t running = q->in_lanes - q->done.len;
    pthread_mutex_unlock(&q->lock);
    return running;
}

/* Whether pact_loop_free must refuse: a question only (offq_release drops
 * what is owed once every service has said yes). */
static const char *offq_busy(pact_loop *loop, void *state)
{
    (void)loop;
    struct offq *q = state;
    size_t owed = 0;
    for (int lane = 0; lane < PACT_LANES; lane++)
        owed += q->inflight[lane];
    if (!owed)
        return NULL;
    if (q->current) {
        snprintf(q->why, sizeof q->why,
                 "%zu offloaded job(s) not called back yet: run the loop, or "
                 "cancel them with pact_loop_close_all",
                 q->current);
        return q->why;
    }
    /* every job left was cancelled: those on pool threads must end first */
    size_t running = lanes_running(q);
    if (running) {
        snprintf(q->why, sizeof q->why,
                 "%zu cancelled offloaded job(s) still running after %llu ms "
                 "(nothing interrupts a running job)",
                 running, (unsigned long long)q->shutdown_ms);
        return q->why;
    }
    return NULL;
}

/* pact_loop_free, nothing busy: every job left was cancelled and is off the
 * pool threads; drop the callbacks still owed, as close_all drops handles'. */
static void offq_release(pact_loop *loop, void *state)
{
    (void)loop;
    struct offq *q = state;
    take_done(q);
    assert(!q->in_lanes && !q->current);
    pact_job *j;
    while ((j = jlist_pop(&q->todo))) {
        pact_error *cancel;
        if (pact__op_end(&j->op, &cancel)) /* cancelled while it ran */
            pact_error_unref(cancel);
        drop(q, j);
    }
}

static void offq_free(pact_loop *loop, void *state)
{
    struct offq *q = state;
    if (q->ev) {
        event_free(q->ev);
        pact__own_event_removed(loop);
    }
    pact__wake_close(&q->wake);
    while (q->slabs) {
        struct slab *s = q->slabs;
        q->slabs = s->next;
        free(s);
    }
    free(q->spare);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->drained);
    pact__pool_leave();
    pact__micro_unreserve(loop); /* the flush job's */
    free(q);
}

/* pact_loop_close_all cancels the jobs through their records (op.c) */
static const struct pact__service_ops offq_ops = {
    .busy = offq_busy,
    .release = offq_release,
    .free = offq_free,
    .spin = offq_spin,
};

static size_t env_limit(void)
{
    const char *s = getenv("PACT_POOL_QUEUE");
    if (!s || !*s)
        return DEFAULT_LIMIT;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    return *end || n == 0 || n > SIZE_MAX ? DEFAULT_LIMIT : (size_t)n;
}

static void *offq_make(pact_loop *loop)
{
    /* the one flush job queued at a time is queued where a submit has
     * already succeeded: its slot is held for the queue's life */
    if (pact__micro_reserve(loop) < 0) {
        errno = ENOMEM;
        return NULL;
    }
    struct offq *q = aligned_alloc(_Alignof(struct offq), sizeof *q);
    if (!q) {
        pact__micro_unreserve(loop);
        errno = ENOMEM;
        return NULL;
    }
    memset(q, 0, sizeof *q);
    q->loop = loop;
    pact__wake_init(&q->wake);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
#ifdef PTHREAD_MUTEX_ADAPTIVE_NP
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&q->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->drained, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&q->ready, 0);
    atomic_init(&q->listening, false);
    q->shutdown_ms = DEFAULT_SHUTDOWN_MS;
    q->limit[0] = q->limit[1] = env_limit();
    pact__pool_enter();
    int rc = pact__wake_open(&q->wake);
    if (rc == 0 && !(q->ev = event_new(loop->base, pact__wake_fd(&q->wake),
                                       EV_READ | EV_PERSIST, on_ready, q)))
        rc = PACT_ENOMEM;
    errno = 0;
    if (rc == 0 && event_add(q->ev, NULL) < 0)
        rc = pact__ev_error();
    if (rc < 0) {
        if (q->ev)
            pact__own_event_added(loop); /* offq_free takes it back */
        offq_free(loop, q);
        errno = -rc; /* for offq_get */
        return NULL;
    }
    pact__own_event_added(loop);
    return q;
}

/* The loop's queue, made on first use. @return 0, or why it could not be
 * made (offq_make leaves that in errno: PACT_EMFILE for its wake-up). */
static int offq_get(pact_loop *loop, struct offq **out)
{
    errno = 0;
    *out = pact__service(loop, PACT__SVC_OFFLOAD, &offq_ops, offq_make);
    return *out ? 0 : errno > 0 ? -errno : PACT_ENOMEM;
}

/* ---- settings ------------------------------------------------------------ */

int pact_offload_set_limit(pact_loop *loop, pact_lane lane, size_t max)
{
    static const char fn[] = "pact_offload_set_limit";
    PACT_CHECK_LOOP(loop, fn);
    if ((unsigned)lane >= PACT_LANES)
        return pact__misuse(fn, PACT_EINVAL, "no such lane");
    PACT_CHECK_ARG(max > 0, fn);
    struct offq *q;
    int made = offq_get(loop, &q);
    if (made < 0)
        return made;
    q->limit[lane] = max;
    return 0;
}

size_t pact_offload_pending(pact_loop *loop, pact_lane lane)
{
    if (!loop || (unsigned)lane >= PACT_LANES ||
        pact__misuse_thread(loop, "pact_offload_pending"))
        return 0;
    struct offq *q = pact__service_find(loop, PACT__SVC_OFFLOAD);
    return q ? q->inflight[lane] : 0;
}

int pact_offload_set_shutdown_ms(pact_loop *loop, uint64_t ms)
{
    PACT_CHECK_LOOP(loop, "pact_offload_set_shutdown_ms");
    struct offq *q;
    int made = offq_get(loop, &q);
    if (made < 0)
        return made;
    q->shutdown_ms = ms;
    return 0;
}
