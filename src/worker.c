/* Message-passing workers: a thread with a pact loop of its own, started
 * with an entry function, and its lifetime as the parent sees it: starting,
 * the thread's run and shutdown, the report of its end, termination,
 * pact_loop_close_all and free (include/pact/worker.h, doc/workers.md). The
 * channel between the two is port.c's; src/worker_internal.h describes the
 * design and the lock order. */
#include "worker_internal.h"

#include "promise_internal.h"
#include "task_internal.h"

/* ---- per-loop state (the service) --------------------------------------- */

static int svc_close_all(pact_loop *loop, void *state);

static const char *svc_busy(pact_loop *loop, void *state)
{
    (void)loop;
    struct workers *s = state;
    if (!s->n)
        return NULL;
    snprintf(s->why, sizeof s->why,
             "%zu worker(s) not released (one named %s): pact_worker_free "
             "them, or pact_loop_close_all",
             s->n, pact__list_entry(s->all.next, pact_worker, link)->name);
    return s->why;
}

static void svc_free(pact_loop *loop, void *state)
{
    (void)loop;
    struct workers *s = state;
    assert(pact__list_empty(&s->all) && !s->n);
    free(s);
}

/* pact_loop_print_pending: each worker whose handle is not released. */
static size_t svc_print(pact_loop *loop, void *state, FILE *out)
{
    (void)loop;
    struct workers *s = state;
    size_t n = 0;
    struct pact__list *l, *tmp;
    pact__list_each(l, tmp, &s->all) {
        const pact_worker *w = pact__list_entry(l, pact_worker, link);
        if (w->freed)
            continue;
        fprintf(out, "  worker %s: %s%s\n", w->name,
                w->reaped ? "ended, its handle not freed" : "running",
                !w->reaped && !w->user_ref ? ", unreferenced" : "");
        n++;
    }
    return n;
}

static const struct pact__service_ops workers_ops = {
    .close_all = svc_close_all,
    .busy = svc_busy,
    .free = svc_free,
    .print = svc_print,
};

static void *svc_make(pact_loop *loop)
{
    struct workers *s = calloc(1, sizeof *s);
    if (s) {
        s->loop = loop;
        pact__list_init(&s->all);
    }
    return s;
}

/* The last of the parent's handle and the thread frees the shared part. */
static void worker_unref(pact_worker *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    pact__port_destroy(&w->ep[0]);
    pact__port_destroy(&w->ep[1]);
    pact_error_unref(w->end_err);
    free(w);
}

static void unlink_worker(pact_worker *w)
{
    struct workers *s = w->svc;
    assert(pact__list_linked(&w->link) && s->n > 0);
    pact__list_remove(&w->link);
    s->n--;
}

/* Cancel the waiters of @p p's rings (and its worker's waits, on the
 * parent's end) with PACT_ECANCELED, called back on the next tick (free may
 * run inside their port's callbacks), or at the end of close_all. */
static void cancel_waiters(pact_port *p, const char *why)
{
    pact_worker *w = p->w;
    if (!p->recvs.len && !p->writers.len && !(p->parent && w->waits.len))
        return;
    pact_error *err =
        PACT_ERROR(PACT_ECANCELED, "worker %s was %s", w->name, why);
    if (!err)
        err = pact__enomem();
    if (p->parent)
        pact__waiters_cancel(&w->waits, err);
    pact__waiters_cancel(&p->recvs, err);
    pact__waiters_cancel(&p->writers, err);
    pact_error_unref(err);
}

/* Release what the parent's side still holds; its waiters were cancelled. */
static void drop_parent_ops(pact_worker *w)
{
    pact_port *p = &w->ep[0];
    cancel_waiters(p, "freed");
    p->on_msg = NULL;
    ring_release_values(&p->backlog);
    pact__ring_release(&p->trash);
    pact__ring_release(&p->spare);
}

/* The parent lets go (thread joined or left to end alone): close its inbox
 * so the worker's posts fail, and drop the parent's half. */
void pact__worker_release(pact_worker *w)
{
    pact_port *p = &w->ep[0];
    struct ring left = {0};
    if (p->poll.id)
        pact_clear(p->loop, p->poll); /* ENOENT after close_all: fine */
    pthread_mutex_lock(&p->in.lock);
    p->in.closed = true;
    ring_move(&left, &p->in.q, sizeof(pact_value));
    pthread_mutex_unlock(&p->in.lock);
    ring_release_values(&left);
    ring_free(&left);
    drop_parent_ops(w);
    ring_free(&p->backlog);
    pact_error_unref(w->err);
    w->err = NULL;
    unlink_worker(w);
    worker_unref(w);
}

/* The worker has reported its end (ep[0].in.ended): join its thread and
 * report to the waits. */
void pact__worker_reap(pact_worker *w)
{
    pthread_join(w->thread, NULL);
    w->reaped = true;
    if (w->freed) {
        w->dead = true; /* pass() releases it */
        return;
    }
    if (!w->waits.len && w->err) /* an 'error' event nobody listens to */
        pact_loop_raise(w->ep[0].loop, w->err);
    pact__worker_fire_waits(w);
}

void pact__worker_fire_waits(pact_worker *w)
{
    /* each wait once: one made by a callback here comes in a later pass */
    uint64_t limit = w->ep[0].svc->wseq;
    struct waiter x;
    while (pact__waiter_pop(&w->waits, limit, &x)) {
        pact__waiter_call(&x, w->err, NULL, w->code);
        pact__drain(w->ep[0].loop);
        if (w->dead)
            return;
    }
}

static void seed_json(void)
{
    json_object_seed(0); /* a no-op if the program seeded it already */
}

static void *worker_main(void *arg);

static int start_thread(pact_worker *w, const pact_worker_opts *o)
{
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc)
        return -rc;
    if (o && o->stack_size &&
        (rc = pthread_attr_setstacksize(&attr, o->stack_size)) != 0) {
        pthread_attr_destroy(&attr);
        return -rc; /* EINVAL: below the system's minimum */
    }
    /* the program's signals go to its own threads, as a pool thread's */
    rc = pact__thread_start(&w->thread, &attr, worker_main, w, true);
    pthread_attr_destroy(&attr);
    return rc;
}

/* Make the worker's loop (on this thread: worker_main makes it the worker
 * thread's before anything else touches it) with its end's watcher and its
 * service state. */
static int make_worker_loop(pact_worker *w)
{
    int rc = pact_loop_new(&w->wloop);
    if (rc < 0)
        return rc;
    struct workers *ws =
        pact__service(w->wloop, PACT__SVC_WORKERS, &workers_ops, svc_make);
    if (!ws)
        return PACT_ENOMEM;
    ws->own = &w->ep[1];
    w->ep[1].loop = w->wloop;
    w->ep[1].svc = ws;
    return pact__port_watch(&w->ep[1]);
}

static void free_worker_loop(pact_worker *w)
{
    if (!w->wloop)
        return;
    pact_loop_close_all(w->wloop);
    pact_loop_free(w->wloop);
}

int pact_worker_new(pact_loop *loop, pact_worker_fn entry, void *arg,
                    const pact_worker_opts *opts, pact_worker **out)
{
    static const char fn[] = "pact_worker_new";
    static pthread_once_t seeded = PTHREAD_ONCE_INIT;
    PACT_CHECK_LOOP(loop, fn);
    PACT_CHECK_ARG(entry, fn);
    PACT_CHECK_ARG(out, fn);
    struct workers *s =
        pact__service(loop, PACT__SVC_WORKERS, &workers_ops, svc_make);
    pact_worker *w = calloc(1, sizeof *w);
    if (!s || !w) {
        free(w);
        return PACT_ENOMEM;
    }
    wlist_init(&w->waits);
    pthread_once(&seeded, seed_json); /* before any worker thread exists */
    size_t max =
        opts && opts->queue_max ? opts->queue_max : PACT_WORKER_QUEUE_DEFAULT;
    int spin_us =
        opts && opts->spin_us ? opts->spin_us : PACT_WORKER_SPIN_DEFAULT;
    uint64_t spin_ns = spin_us > 0 ? (uint64_t)spin_us * 1000 : 0;
    /* valgrind runs one thread at a time: a spinner only holds up the
     * thread it waits for (as the pool's spin) */
    if (pact__on_valgrind())
        spin_ns = 0;
    /* for pact__port_destroy if init fails */
    pact__wake_init(&w->ep[0].wake);
    pact__wake_init(&w->ep[1].wake);
    atomic_init(&w->refs, 2);
    atomic_init(&w->terminate, false);
    w->entry = entry;
    w->arg = arg;
    w->name = opts && opts->name ? opts->name : "pact-worker";
    w->user_ref = !(opts && opts->unref);
    w->ep[0].loop = loop;
    w->ep[0].svc = s;
    int rc = pact__port_init(&w->ep[0], w, &w->ep[1], true, max, spin_ns);
    if (rc == 0)
        rc = pact__port_init(&w->ep[1], w, &w->ep[0], false, max, spin_ns);
    if (rc == 0)
        rc = make_worker_loop(w);
    if (rc == 0)
        rc = pact__port_watch(&w->ep[0]);
    if (rc == 0)
        rc = start_thread(w, opts);
    if (rc < 0) {
        if (w->ep[0].poll.id)
            pact_clear(loop, w->ep[0].poll);
        free_worker_loop(w);
        atomic_store(&w->refs, 1);
        worker_unref(w);
        return rc;
    }
    w->svc = s;
    pact__list_push_front(&s->all, &w->link);
    s->n++;
    *out = w;
    return 0;
}

/* ---- the worker's thread --------------------------------------------------
 */

/* Cancel what is left on the worker's loop, let it unwind (tasks see
 * PACT_ECANCELED at their awaits), and free it. */
static void shutdown_loop(pact_worker *w)
{
    pact_loop *loop = w->wloop;
    w->ep[1].closing = true;
    for (int i = 0; i < 16; i++) {
        pact_loop_close_all(loop);
        pact_loop_run(loop, PACT_RUN_NOWAIT);
        if (!pact_loop_alive(loop) && !pact_loop_tasks(loop))
            break;
    }
    pact_loop_close_all(loop);
    int rc = pact_loop_free(loop);
    if (rc < 0)
        fprintf(stderr,
                "pact: worker %s: its loop cannot be freed (%s: something "
                "still holds a promise of it); left allocated\n",
                w->name, pact_err_name(rc));
    w->wloop = NULL;
}

/* Report the end to the parent: close the worker's inbox (later posts fail),
 * drop what it never consumed, then publish code and error with `ended`. */
static void worker_end(pact_worker *w, int code, pact_error *err)
{
    pact_port *wp = &w->ep[1], *pp = &w->ep[0];
    struct ring left = {0};
    pthread_mutex_lock(&wp->in.lock);
    wp->in.closed = true;
    ring_move(&left, &wp->in.q, sizeof(pact_value));
    pthread_mutex_unlock(&wp->in.lock);
    ring_release_values(&left);
    ring_free(&left);
    pact__ring_release(&wp->backlog);
    pact__ring_release(&wp->trash);
    pact__ring_release(&wp->spare);
    assert(!wp->recvs.len && !wp->writers.len); /* its loop cancelled them */
    pthread_mutex_lock(&pp->in.lock);
    w->end_code = code;
    w->end_err = err;
    pp->in.ended = true;
    pthread_mutex_unlock(&pp->in.lock);
    pact__port_notify(pp);
    worker_unref(w);
}

static void *worker_main(void *arg)
{
    pact_worker *w = arg;
    pact_loop *loop = w->wloop;
    loop->thread = &pact__thread_tag; /* the loop is this thread's now */
    char name[16];
    snprintf(name, sizeof name, "%s", w->name);
    pthread_setname_np(pthread_self(), name);

    pact_error *err = NULL;
    if (!atomic_load(&w->terminate))
        err = w->entry(loop, &w->ep[1], w->arg);
    if (!err && !w->exit_req && !atomic_load(&w->terminate)) {
        int rc = pact_loop_run(loop, PACT_RUN_DEFAULT);
        if (rc < 0) {
            err = pact_error_ref(pact_loop_error(loop));
            if (!err)
                err = PACT_ERROR(rc, "worker %s: its loop stopped", w->name);
        }
    }
    int code = err                          ? 1
               : w->exit_req                ? w->exit_code
               : atomic_load(&w->terminate) ? 1
                                            : 0;
    shutdown_loop(w);
    worker_end(w, code, err);
    return NULL;
}

/* ---- the service: close_all ------------------------------------------------
 */

/* Ask the worker to end: close its inbox and wake it (parent's thread). */
static void terminate(pact_worker *w)
{
    if (atomic_exchange(&w->terminate, true) || w->reaped)
        return;
    pact_port *wp = &w->ep[1];
    pthread_mutex_lock(&wp->in.lock);
    wp->in.closed = true;
    pthread_mutex_unlock(&wp->in.lock);
    pact__port_notify(wp);
}

/* Terminate, wait for the thread a while, and release the parent's half;
 * a thread that does not end in time is left to free its half itself. */
static void close_worker(pact_worker *w)
{
    pact_port *p = &w->ep[0];
    /* close_all cancelled its poller (its ECANCELED call is due): the port
     * goes now, so that call must not come */
    if (p->poll.id)
        pact_clear(p->loop, p->poll);
    p->poll.id = 0;
    w->freed = true;
    cancel_waiters(p, "closed (pact_loop_close_all)");
    drop_parent_ops(w);
    if (!w->reaped) {
        terminate(w);
        struct timespec until =
            pact__timespec_in_ms(CLOCK_REALTIME, PACT_WORKER_CLOSE_WAIT_MS);
        if (pthread_timedjoin_np(w->thread, NULL, &until) != 0) {
            fprintf(stderr,
                    "pact: worker %s did not end within %d ms of "
                    "pact_loop_close_all; left to end on its own\n",
                    w->name, PACT_WORKER_CLOSE_WAIT_MS);
            pthread_detach(w->thread);
        }
        w->reaped = true;
    }
    if (p->in_pass)
        w->dead = true;
    else
        pact__worker_release(w);
}

static int svc_close_all(pact_loop *loop, void *state)
{
    (void)loop;
    struct workers *s = state;
    struct pact__list *n, *tmp;
    pact__list_each(n, tmp, &s->all) {
        pact_worker *w = pact__list_entry(n, pact_worker, link);
        if (!w->dead)
            close_worker(w);
    }
    pact_port *own = s->own;
    if (own) { /* a worker's loop: its end's operations are cancelled */
        if (own->poll.id) /* its poller's cancellation is due: not for us */
            pact_clear(own->loop, own->poll);
        own->poll.id = 0;
        own->poll_ref = false;
        own->on_msg = NULL;
        cancel_waiters(own, "closed (pact_loop_close_all)");
    }
    return 0;
}

/* ---- the parent's API ------------------------------------------------------
 */

static bool bad_worker(pact_worker *w, const char *fn)
{
    if (!w) {
        pact__misuse(fn, PACT_EINVAL, "worker is NULL");
        return true;
    }
    if (pact__misuse_thread(w->ep[0].loop, fn))
        return true;
    if (w->freed) {
        pact__misuse_always(fn, PACT_EINVAL, "the worker was freed");
        return true;
    }
    return false;
}

#define CHECK_WORKER(w, fn)                                                    \
    do {                                                                       \
        if (!(w))                                                              \
            return pact__misuse(fn, PACT_EINVAL, "worker is NULL");            \
        PACT_CHECK_THREAD((w)->ep[0].loop, fn);                                \
        if ((w)->freed)                                                        \
            return pact__misuse_always(fn, PACT_EINVAL,                        \
                                       "the worker was freed");                \
    } while (0)

pact_port *pact_worker_port(pact_worker *w)
{
    return w ? &w->ep[0] : NULL;
}

int pact_worker_terminate(pact_worker *w)
{
    CHECK_WORKER(w, "pact_worker_terminate");
    terminate(w);
    return 0;
}

static void wait_settle(pact_error *err, int code, void *ud);

/* The loop is freed before a twin's wait could call back: its deferred. */
static void unref_deferred(void *d)
{
    pact_deferred_unref(d);
}

static int wait_push(pact_worker *w, const pact_wait_opts *opts,
                     pact_exit_cb cb, void *ud, const void *site)
{
    int rc =
        pact__waiter_add(&w->ep[0], &w->waits, W_EXIT, (void (*)(void))cb, ud,
                         cb == wait_settle ? unref_deferred : NULL, opts, site);
    if (rc == 0 && w->reaped)
        pact__port_self_wake(&w->ep[0]);
    pact__port_update_ref(&w->ep[0]);
    return rc;
}

int pact_worker_wait(pact_worker *w, const pact_wait_opts *opts,
                     pact_exit_cb cb, void *ud)
{
    CHECK_WORKER(w, "pact_worker_wait");
    PACT_CHECK_ARG(cb, "pact_worker_wait");
    return wait_push(w, opts, cb, ud, PACT__CALLER());
}

static void wait_settle(pact_error *err, int code, void *ud)
{
    pact_deferred *d = ud;
    if (err)
        pact_deferred_reject(d, pact_error_ref(err));
    else
        pact_deferred_resolve(d, pact_int(code));
    pact_deferred_unref(d);
}

static int start_wait(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    struct wait_args *a = args;
    return wait_push(a->target, a->opts, wait_settle, d, a->site);
}

pact_promise *pact_worker_wait_p(pact_worker *w, const pact_wait_opts *opts)
{
    if (bad_worker(w, "pact_worker_wait_p"))
        return NULL;
    struct wait_args a = {w, opts, PACT__CALLER()};
    return pact__promisify(w->ep[0].loop, start_wait, &a, "pact_worker_wait_p");
}

int pact_worker_ref(pact_worker *w)
{
    CHECK_WORKER(w, "pact_worker_ref");
    w->user_ref = true;
    pact__port_update_ref(&w->ep[0]);
    return 0;
}

int pact_worker_unref(pact_worker *w)
{
    CHECK_WORKER(w, "pact_worker_unref");
    w->user_ref = false;
    pact__port_update_ref(&w->ep[0]);
    return 0;
}

void pact_worker_free(pact_worker *w)
{
    if (bad_worker(w, "pact_worker_free"))
        return;
    w->freed = true;
    drop_parent_ops(w);
    if (!w->reaped) { /* pact__worker_reap() releases it */
        terminate(w);
        pact__port_update_ref(&w->ep[0]);
        return;
    }
    if (w->ep[0].in_pass)
        w->dead = true;
    else
        pact__worker_release(w);
}

/* ---- the worker's side -----------------------------------------------------
 */

int pact_worker_exit(pact_port *port, int code)
{
    static const char fn[] = "pact_worker_exit";
    PACT_CHECK_ARG(port, fn);
    PACT_CHECK_THREAD(port->loop, fn);
    if (port->parent)
        return pact__misuse(fn, PACT_EINVAL, "the port is the parent's");
    if (!port->w->exit_req) {
        port->w->exit_req = true;
        port->w->exit_code = code;
    }
    pact_loop_stop(port->loop);
    return 0;
}

bool pact_worker_terminating(const pact_port *port)
{
    return port && atomic_load(&port->w->terminate);
}
