/* Message-passing workers: a thread with a pact loop of its own, and a
 * channel of two ports between it and its parent (include/pact/worker.h,
 * doc/workers.md).
 *
 * Each end (struct pact_port) owns an inbox (struct chan): a FIFO of
 * messages under its own lock, filled by the other thread, with a bound
 * counted in messages posted and not yet consumed. Each end also owns an
 * eventfd, watched by a poll handle on its loop. A sender appends under the
 * lock and wakes the receiver only when it finds the queue empty: a
 * sequence counter says something happened, a flag says the fd was written
 * and not yet read, so a burst of posts costs one write and the receiver
 * takes the whole queue per wake-up (rule 17). A receiver that is awake (in
 * its delivery pass) needs no write at all, and one that has just delivered
 * messages spins briefly for the next before its loop sleeps: the wake-up
 * of a sleeping thread costs more than a microsecond, a spin that catches a
 * reply a fraction of that.
 *
 * Lock order: every chan lock is a leaf. No code holds two of them, and none
 * is held while a user callback runs or while the loop's own post_lock is
 * taken. Everything else that both threads touch is atomic (seq, signalled,
 * awake, terminate, refs, inflight) or is written by one thread before an
 * event the other observes under a chan lock (a worker's exit code and error
 * are written before `ended`, under the parent inbox's lock).
 *
 * Lifetime: struct pact_worker holds both ends and is counted twice, by the
 * parent's handle and by the thread; the last of them frees it, so the fds
 * and queues the other side may still touch outlive both. The parent joins
 * the thread when it reports its end, or, at pact_loop_close_all, waits a
 * while and leaves a thread that does not end to free its half itself. */
#include "internal.h"

#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_EVENTFD_H
#include <sys/eventfd.h>
#endif

#include "promise_internal.h"

/* Rule 18: a JSON tree handed to another thread is reference-counted there
 * (the receiver's decref, a reader's incref) while the sender may still
 * drop references to nodes it shared: only atomic reference counts make
 * that safe. */
#ifndef JANSSON_THREAD_SAFE_REFCOUNT
#error "pact's workers need jansson built with atomic reference counts"
#endif

/* A delivery pass returns to the loop after this long (ns), so that a
 * steady stream of messages cannot starve timers and immediates. */
#define PASS_MAX_NS 1000000u

/* ---- rings ----------------------------------------------------------------
 * A growable FIFO of fixed-size items (cap a power of two); used for
 * messages, receives and waiters, so that none costs an allocation. */

struct ring {
    unsigned char *v;
    size_t head, len, cap;
};

static int ring_push(struct ring *r, const void *item, size_t size)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        unsigned char *v = malloc(cap * size);
        if (!v)
            return PACT_ENOMEM;
        for (size_t i = 0; i < r->len; i++)
            memcpy(v + i * size, r->v + ((r->head + i) & (r->cap - 1)) * size,
                   size);
        free(r->v);
        r->v = v;
        r->head = 0;
        r->cap = cap;
    }
    memcpy(r->v + ((r->head + r->len) & (r->cap - 1)) * size, item, size);
    r->len++;
    return 0;
}

static bool ring_pop(struct ring *r, void *out, size_t size)
{
    if (!r->len)
        return false;
    memcpy(out, r->v + r->head * size, size);
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
    return true;
}

/* Append all of @p from to @p to (from is emptied); swaps when @p to is
 * empty, which is the common case and costs nothing. */
static int ring_move(struct ring *to, struct ring *from, size_t size)
{
    if (!to->len) {
        struct ring t = *to;
        *to = *from;
        *from = t;
        from->head = from->len = 0;
        return 0;
    }
    unsigned char item[sizeof(pact_value)];
    while (from->len) {
        memcpy(item, from->v + from->head * size, size);
        if (ring_push(to, item, size) < 0)
            return PACT_ENOMEM;
        from->head = (from->head + 1) & (from->cap - 1);
        from->len--;
    }
    return 0;
}

static void ring_release_values(struct ring *r)
{
    pact_value v;
    while (ring_pop(r, &v, sizeof v))
        pact_value_release(&v);
}

static void ring_free(struct ring *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* ---- the structures ------------------------------------------------------ */

/* An inbox: messages one way, to the end that owns it. */
struct chan {
    pthread_mutex_t lock;
    struct ring q; /* pact_value: posted, not yet taken; lock */
    /* pact_value: what the receiver consumed and left, for the sender's
     * thread to release (lock; see publish) */
    struct ring trash;
    /* posted and not yet consumed by the receiver: written under lock, read
     * without it for a quick refusal */
    atomic_size_t inflight;
    size_t max;      /* the bound on inflight */
    bool closed;     /* the receiver is gone: posts fail (lock) */
    bool ended;      /* the sender is gone: nothing after q (lock) */
    bool wants_room; /* the sender waits for room (lock) */
};

/* A pending receive, or a waiter for room or for the worker's end. */
struct waiter {
    void (*fn)(void); /* pact_msg_cb, pact_cb or pact_exit_cb */
    void *ud;
    bool owned; /* ud is a deferred of a promise twin: dropped if unrun */
};

struct pact_port {
    /* ---- the thread of the port's loop only ---- */
    pact_loop *loop;
    pact_worker *w;
    pact_port *peer;
    bool parent;         /* the parent's end */
    bool poll_ref;       /* the poll handle keeps the loop alive */
    bool in_pass;        /* inside pass() */
    bool self;           /* a completion of ours waits for a pass */
    bool peer_ended;     /* saw in.ended with an empty queue */
    bool term_seen;      /* the worker's end noticed termination */
    bool closing;        /* the worker's end is shutting down */
    pact_handle poll;    /* the fd's watcher on loop */
    struct ring backlog; /* pact_value: taken from in, not consumed */
    struct ring recvs;   /* struct waiter: pending receives */
    struct ring writers; /* struct waiter: waiting for room */
    pact_msg_cb on_msg;
    void *on_msg_ud;
    size_t consumed;     /* consumed since the last publish */
    struct ring trash;   /* pact_value: consumed, to hand back */
    struct ring spare;   /* trash taken back from the other end */
    uint64_t spin_max;   /* ns; 0: never spin */
    uint64_t spin_cur;   /* the adaptive allowance; 0: probe only */
    unsigned spin_skips; /* spins skipped since the last probe */

    /* ---- written by the other thread too ---- */
    alignas(64) atomic_uint_fast64_t seq; /* bumped per event for this end */
    atomic_bool signalled;                /* fd written and not yet read */
    atomic_bool awake; /* in a pass: it looks at seq again before sleeping */
    int fd;
    struct chan in;
};

struct workers; /* a loop's service state */

struct pact_worker {
    struct pact_port ep[2]; /* [0] the parent's, [1] the worker's */
    atomic_int refs;        /* the parent's handle and the thread */
    atomic_bool terminate;  /* asked to terminate */

    /* the parent loop's thread */
    struct workers *svc;
    pact_worker *prev, *next;
    pthread_t thread;
    struct ring waits; /* struct waiter: pact_worker_wait */
    bool user_ref;     /* pact_worker_ref / unref */
    bool freed;        /* the handle was released: reap, then release */
    bool reaped;       /* the thread was joined (or left) */
    bool dead;         /* release at the end of the current pass */
    int code;          /* after reaped */
    pact_error *err;   /* after reaped */
    const char *name;

    /* the worker's thread */
    pact_loop *wloop;
    pact_worker_fn entry;
    void *arg;
    bool exit_req;
    int exit_code;

    /* set by the worker's thread before ep[0].in.ended, under its lock */
    int end_code;
    pact_error *end_err;
};

struct workers {
    pact_worker *head;
    size_t n;
    pact_port *own; /* on a worker's loop: the worker's end */
    char why[160];
};

/* ---- per-loop state (the service) --------------------------------------- */

static void svc_close_all(pact_loop *loop, void *state);

static const char *svc_busy(pact_loop *loop, void *state)
{
    (void)loop;
    struct workers *s = state;
    if (!s->n)
        return NULL;
    snprintf(s->why, sizeof s->why,
             "%zu worker(s) not released (one named %s): pact_worker_free "
             "them, or pact_loop_close_all",
             s->n, s->head->name);
    return s->why;
}

static void svc_free(pact_loop *loop, void *state)
{
    (void)loop;
    free(state);
}

static const struct pact__service_ops workers_ops = {
    svc_close_all,
    svc_busy,
    svc_free,
};

static void *svc_make(pact_loop *loop)
{
    (void)loop;
    return calloc(1, sizeof(struct workers));
}

/* ---- wake-ups -------------------------------------------------------------
 */

static void write_fd(pact_port *p)
{
    uint64_t one = 1;
    ssize_t n = write(p->fd, &one, sizeof one);
    (void)n; /* EAGAIN: the counter is full, so a wake-up is pending anyway */
}

/* Tell @p p something happened (any thread). While its pass runs (and
 * spins) the receiver needs no write: the seq_cst pair with pass() (our
 * bump, then our look at awake; its clear of awake, then its look at seq)
 * means a receiver about to sleep always sees the bump, so skipping the
 * write is safe. */
static void notify(pact_port *p)
{
    atomic_fetch_add(&p->seq, 1);
    if (atomic_load(&p->awake))
        return;
    if (!atomic_exchange(&p->signalled, true))
        write_fd(p);
}

static void update_ref(pact_port *p);

/* Have a pass run on our own loop soon (loop thread): for completions that
 * must not run inside the call that made them. */
static void self_wake(pact_port *p)
{
    p->self = true;
    if (!p->in_pass)
        notify(p);
    update_ref(p);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- messages --------------------------------------------------------------
 */

/* Whether every node of @p root is held once (the root by the caller), so
 * that moving it shares nothing. Immortal singletons (true, false, null) are
 * immutable and shared safely. Iterative: trees may be deep. */
static bool exclusive(json_t *root)
{
    json_t *local[64], **stack = local;
    size_t n = 0, cap = 64;
    bool ok = true;
    stack[n++] = root;
    while (ok && n) {
        json_t *j = stack[--n];
        size_t rc = __atomic_load_n(&j->refcount, __ATOMIC_RELAXED);
        if (rc == (size_t)-1)
            continue;
        if (rc != 1) {
            ok = false;
            break;
        }
        size_t kids = json_is_object(j)  ? json_object_size(j)
                      : json_is_array(j) ? json_array_size(j)
                                         : 0;
        if (n + kids > cap) {
            size_t ncap = (n + kids) * 2;
            json_t **s = stack == local ? malloc(ncap * sizeof *s)
                                        : realloc(stack, ncap * sizeof *s);
            if (!s) {
                ok = false; /* copy instead: that reports ENOMEM if need be */
                break;
            }
            if (stack == local)
                memcpy(s, local, n * sizeof *s);
            stack = s;
            cap = ncap;
        }
        if (json_is_object(j)) {
            const char *key;
            json_t *v;
            json_object_foreach(j, key, v) stack[n++] = v;
        } else if (json_is_array(j)) {
            for (size_t i = 0; i < kids; i++)
                stack[n++] = json_array_get(j, i);
        }
    }
    if (stack != local)
        free(stack);
    return ok;
}

/* Check that @p v can be sent and make what travels: @p v itself, or for a
 * shared JSON tree a deep copy in *@p copy (the caller's reference is dropped
 * only once the post succeeds). */
static int prepare(const pact_value *v, json_t **copy)
{
    *copy = NULL;
    switch (v->kind) {
    case PACT_NOTHING:
    case PACT_INT:
    case PACT_DOUBLE:
        return 0;
    case PACT_BYTES:
        return v->u.bytes.data || !v->u.bytes.len ? 0 : PACT_EINVAL;
    case PACT_JSON:
        if (!v->u.json)
            return PACT_EINVAL;
        if (exclusive(v->u.json))
            return 0;
        /* NULL: a cycle (jansson refuses to copy one) or no memory */
        *copy = json_deep_copy(v->u.json);
        return *copy ? 0 : PACT_EINVAL;
    default:
        return PACT_EINVAL;
    }
}

/* ---- the receiving end: one pass over what arrived ----------------------- */

/* Take everything posted to @p p into its backlog. */
static void take(pact_port *p)
{
    struct chan *c = &p->in;
    pthread_mutex_lock(&c->lock);
    if (c->q.len)
        ring_move(&p->backlog, &c->q, sizeof(pact_value));
    if (c->ended && !c->q.len && !p->peer_ended) {
        p->peer_ended = true;
        if (p->parent) { /* written before ended, under this lock */
            p->w->code = p->w->end_code;
            p->w->err = p->w->end_err;
            p->w->end_err = NULL;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

/* What a callback left in a message goes back to the sender's thread to be
 * released there: its allocator made it, and freeing it on this thread
 * would contend for that allocator's arena with the sender's next
 * allocation (glibc), which costs more than the whole post. */
static void keep_trash(pact_port *p, pact_value *m)
{
    if ((m->kind == PACT_JSON || m->kind == PACT_BYTES) &&
        ring_push(&p->trash, m, sizeof *m) == 0)
        return;
    pact_value_release(m);
}

/* Release what the other end handed back (the sender's side of the above).
 * @p c is the other end's inbox; called with its lock held: only swaps. */
static void take_trash_locked(pact_port *p, struct chan *c)
{
    if (c->trash.len && !p->spare.len) {
        struct ring t = p->spare;
        p->spare = c->trash;
        c->trash = t;
    }
}

/* Give the sender back the room of what we consumed, and what is left of
 * the messages (up to the bound: a sender that posts no more cannot take
 * them back, so past that we release them here); wake it if it waits. */
static void publish(pact_port *p)
{
    if (!p->consumed && !p->trash.len)
        return;
    struct chan *c = &p->in;
    pthread_mutex_lock(&c->lock);
    if (p->trash.len && c->trash.len < c->max)
        ring_move(&c->trash, &p->trash, sizeof(pact_value));
    size_t left =
        atomic_load_explicit(&c->inflight, memory_order_relaxed) - p->consumed;
    atomic_store_explicit(&c->inflight, left, memory_order_relaxed);
    bool wake = c->wants_room && left <= c->max / 2;
    if (wake)
        c->wants_room = false;
    pthread_mutex_unlock(&c->lock);
    p->consumed = 0;
    ring_release_values(&p->trash); /* what did not fit */
    if (wake)
        notify(p->peer);
}

static void call_msg(const struct waiter *r, pact_error *err, pact_value *m)
{
    ((pact_msg_cb)r->fn)(err, m, r->ud);
}

/* Fail every pending receive with @p err (loop thread, in a pass or at a
 * point where calling back is allowed). */
static void fail_recvs(pact_port *p, pact_error *err)
{
    struct waiter r;
    while (ring_pop(&p->recvs, &r, sizeof r)) {
        call_msg(&r, err, NULL);
        pact__drain(p->loop);
        if (p->w->dead)
            return;
    }
}

static void fail_writers(pact_port *p, pact_error *err)
{
    struct waiter r;
    while (ring_pop(&p->writers, &r, sizeof r)) {
        ((pact_cb)r.fn)(err, r.ud);
        pact__drain(p->loop);
        if (p->w->dead)
            return;
    }
}

/* Drop pending operations unrun (close_all, free): promise twins' deferreds
 * are released, which rejects their promises with PACT_ECANCELED. */
static void drop_waiters(struct ring *r)
{
    struct waiter x;
    while (ring_pop(r, &x, sizeof x))
        if (x.owned)
            pact_deferred_unref(x.ud);
    ring_free(r);
}

static bool stopped(pact_port *p)
{
    return p->w->dead || pact__halted(p->loop);
}

/* Hand the backlog to pending receives, then to the listener. */
static void deliver(pact_port *p)
{
    while (p->backlog.len && !stopped(p)) {
        struct waiter r;
        bool recv = ring_pop(&p->recvs, &r, sizeof r);
        if (!recv && !p->on_msg)
            break;
        pact_value m;
        ring_pop(&p->backlog, &m, sizeof m);
        p->consumed++;
        if (recv)
            call_msg(&r, NULL, &m);
        else
            p->on_msg(NULL, &m, p->on_msg_ud);
        keep_trash(p, &m);
        pact__drain(p->loop);
        if (p->consumed >= 64)
            publish(p);
    }
    if (p->peer_ended && !p->backlog.len && p->recvs.len && !stopped(p)) {
        pact_error *err = p->parent && p->w->err
                              ? pact_error_ref(p->w->err)
                              : PACT_ERROR(PACT_EOF,
                                           "worker %s has ended: "
                                           "no more messages",
                                           p->w->name);
        fail_recvs(p, err);
        pact_error_unref(err);
    }
}

/* Waiters for room: complete them once the other end's inbox has room. */
static void check_room(pact_port *p)
{
    struct chan *c = &p->peer->in;
    pthread_mutex_lock(&c->lock);
    bool closed = c->closed;
    bool room =
        atomic_load_explicit(&c->inflight, memory_order_relaxed) <= c->max / 2;
    c->wants_room = !closed && !room;
    pthread_mutex_unlock(&c->lock);
    if (closed) {
        pact_error *err = PACT_ERROR(
            PACT_EPIPE, "worker %s has ended or is terminating", p->w->name);
        fail_writers(p, err);
        pact_error_unref(err);
    } else if (room) {
        fail_writers(p, NULL);
    }
}

/* The worker's end notices termination: fail its receives, stop its loop
 * (worker_main then cancels what is left). */
static void terminated(pact_port *p)
{
    p->term_seen = true;
    pact_error *err =
        PACT_ERROR(PACT_ECANCELED, "worker %s was terminated", p->w->name);
    fail_recvs(p, err);
    fail_writers(p, err);
    pact_error_unref(err);
    pact_loop_stop(p->loop);
}

static void reap(pact_worker *w);
static void fire_waits(pact_worker *w);

/* Release what the other end handed back (when this end posts no more). */
static void collect(pact_port *p)
{
    struct chan *c = &p->peer->in;
    pthread_mutex_lock(&c->lock);
    take_trash_locked(p, c);
    pthread_mutex_unlock(&c->lock);
    ring_release_values(&p->spare);
}

static void step(pact_port *p)
{
    pact_worker *w = p->w;
    take(p);
    collect(p);
    if (!p->parent && !p->term_seen && atomic_load(&w->terminate)) {
        terminated(p);
        return;
    }
    deliver(p);
    publish(p);
    if (p->writers.len && !stopped(p))
        check_room(p);
    if (p->parent && p->peer_ended && !w->reaped && !stopped(p))
        reap(w);
    if (p->parent && w->reaped && w->waits.len && !stopped(p))
        fire_waits(w);
}

/* Whether a spin could catch something somebody waits for. */
static bool waiting(const pact_port *p)
{
    return !p->peer_ended && (p->on_msg || p->recvs.len || p->writers.len ||
                              (p->parent && !p->w->reaped && p->w->waits.len));
}

/* Spin for the next event after @p seen, up to the current allowance.
 * @return whether one came. A spin pays only while the other thread runs
 * at the same time: on a machine with a core to spare, a reply comes within
 * the spin; on one that is oversubscribed, the other thread may be waiting
 * for the very core we spin on, and every spin is lost time. So a hit
 * restores the full allowance, a miss halves it, and below a microsecond
 * spinning stops but for one full-length probe every SPIN_PROBE spins, which
 * finds out when spinning pays again. */
#define SPIN_PROBE 32
#define SPIN_YIELD_NS 2000
static bool spin(pact_port *p, uint64_t seen, uint64_t pass_start)
{
    if (!p->spin_max || !waiting(p))
        return false;
    uint64_t allowance = p->spin_cur;
    if (!allowance) {
        if (++p->spin_skips < SPIN_PROBE)
            return false;
        p->spin_skips = 0;
        allowance = p->spin_max;
    }
    uint64_t t0 = pact__now_ns();
    if (t0 - pass_start > PASS_MAX_NS)
        return false;
    bool hit = false;
    uint64_t yielded = t0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&p->seq, memory_order_acquire) != seen) {
            hit = true;
            break;
        }
        cpu_relax();
        if (i & 15)
            continue;
        uint64_t t = pact__now_ns();
        if (t - t0 > allowance)
            break;
        /* the other thread may be waiting for this very core (the
         * scheduler often wakes it here): let it run now and then */
        if (t - yielded > SPIN_YIELD_NS) {
            sched_yield();
            yielded = t;
        }
    }
    if (hit)
        p->spin_cur = p->spin_max;
    else if ((p->spin_cur /= 2) < 1000)
        p->spin_cur = 0;
    return hit;
}

static void release(pact_worker *w);

/* Everything that arrived for @p p, in the I/O phase: messages, room, the
 * other end's termination or end. */
static void pass(pact_port *p)
{
    pact_worker *w = p->w;
    uint64_t start = pact__now_ns();
    p->in_pass = true;
    atomic_store(&p->awake, true);
    for (;;) {
        uint64_t seen = atomic_load(&p->seq);
        p->self = false;
        step(p);
        if (stopped(p) || p->term_seen)
            break;
        if (atomic_load(&p->seq) != seen || p->self)
            continue;
        if (spin(p, seen, start))
            continue;
        /* about to sleep: from here on senders write the fd (see notify) */
        atomic_store(&p->awake, false);
        if (atomic_load(&p->seq) == seen)
            break;
        atomic_store(&p->awake, true);
    }
    atomic_store(&p->awake, false);
    p->in_pass = false;
    if (w->dead) {
        release(w);
        return;
    }
    /* halted (pact_loop_stop, an uncaught error) with work left: resume in
     * the next run */
    if (pact__halted(p->loop) && !p->term_seen)
        notify(p);
    update_ref(p);
}

static void poll_cb(pact_error *err, int fd, int events, void *ud)
{
    (void)err, (void)events;
    pact_port *p = ud;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    atomic_store(&p->signalled, false); /* before looking: see notify */
    pass(p);
}

/* ---- liveness --------------------------------------------------------------
 */

/* The parent's end keeps its loop alive while the worker runs (unless
 * unreferenced); the worker's end while something waits on it (a listener,
 * a receive, room), as Node's parentPort; both while a completion of
 * theirs is due. */
static void update_ref(pact_port *p)
{
    pact_worker *w = p->w;
    bool want = p->self;
    if (p->parent)
        want =
            want || (!w->reaped && w->user_ref) || (w->reaped && w->waits.len);
    else
        want = want || p->on_msg || p->recvs.len || p->writers.len;
    if (!p->poll.id || want == p->poll_ref)
        return;
    if ((want ? pact_ref : pact_unref)(p->loop, p->poll) == 0)
        p->poll_ref = want;
}

static int watch(pact_port *p)
{
    int rc = pact_poll(p->loop, p->fd, PACT_READABLE, poll_cb, p, &p->poll);
    if (rc == 0) {
        p->poll_ref = true;
        update_ref(p);
    }
    return rc;
}

/* ---- making and freeing ---------------------------------------------------
 */

static int port_init(pact_port *p, pact_worker *w, pact_port *peer, bool parent,
                     size_t max, uint64_t spin_ns)
{
    p->w = w;
    p->peer = peer;
    p->parent = parent;
    p->spin_max = p->spin_cur = spin_ns;
    atomic_init(&p->seq, 0);
    atomic_init(&p->signalled, false);
    atomic_init(&p->awake, false);
    atomic_init(&p->in.inflight, 0);
    p->in.max = max;
    p->fd = -1;
    if (pthread_mutex_init(&p->in.lock, NULL) != 0)
        return PACT_ENOMEM;
#ifdef HAVE_SYS_EVENTFD_H
    p->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
#endif
    return p->fd < 0 ? -errno : 0;
}

static void release_ring(struct ring *r)
{
    ring_release_values(r);
    ring_free(r);
}

static void port_destroy(pact_port *p)
{
    if (p->fd >= 0)
        close(p->fd);
    release_ring(&p->in.q);
    release_ring(&p->in.trash);
    release_ring(&p->trash);
    release_ring(&p->spare);
    ring_release_values(&p->backlog);
    ring_free(&p->backlog);
    ring_free(&p->recvs);
    ring_free(&p->writers);
    pthread_mutex_destroy(&p->in.lock);
}

/* The last of the parent's handle and the thread frees the shared part. */
static void worker_unref(pact_worker *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    port_destroy(&w->ep[0]);
    port_destroy(&w->ep[1]);
    pact_error_unref(w->end_err);
    free(w);
}

static void unlink_worker(pact_worker *w)
{
    struct workers *s = w->svc;
    if (w->prev)
        w->prev->next = w->next;
    else
        s->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    s->n--;
}

/* Drop what the parent's side still has pending, without callbacks. */
static void drop_parent_ops(pact_worker *w)
{
    pact_port *p = &w->ep[0];
    drop_waiters(&w->waits);
    drop_waiters(&p->recvs);
    drop_waiters(&p->writers);
    p->on_msg = NULL;
    ring_release_values(&p->backlog);
    release_ring(&p->trash);
    release_ring(&p->spare);
}

/* The parent lets go (thread joined or left to end alone): close its inbox
 * so the worker's posts fail, and drop the parent's half. */
static void release(pact_worker *w)
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
static void reap(pact_worker *w)
{
    pthread_join(w->thread, NULL);
    w->reaped = true;
    if (w->freed) {
        w->dead = true; /* pass() releases it */
        return;
    }
    if (!w->waits.len && w->err) /* an 'error' event nobody listens to */
        pact_loop_raise(w->ep[0].loop, w->err);
    fire_waits(w);
}

static void fire_waits(pact_worker *w)
{
    struct waiter x;
    while (ring_pop(&w->waits, &x, sizeof x)) {
        ((pact_exit_cb)x.fn)(w->err, w->code, x.ud);
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
    if (o && o->stack_size)
        rc = pthread_attr_setstacksize(&attr, o->stack_size);
    if (!rc)
        rc = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    return -rc;
}

/* Make the worker's loop (on this thread: pact_loop_run hands it to the
 * worker's) with its end's watcher and its service state. */
static int make_worker_loop(pact_worker *w)
{
    int rc = pact_loop_new(&w->wloop);
    if (rc < 0)
        return rc;
    struct workers *ws = pact__service(w->wloop, &workers_ops, svc_make);
    if (!ws)
        return PACT_ENOMEM;
    ws->own = &w->ep[1];
    w->ep[1].loop = w->wloop;
    return watch(&w->ep[1]);
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
    struct workers *s = pact__service(loop, &workers_ops, svc_make);
    pact_worker *w = calloc(1, sizeof *w);
    if (!s || !w) {
        free(w);
        return PACT_ENOMEM;
    }
    pthread_once(&seeded, seed_json); /* before any worker thread exists */
    size_t max =
        opts && opts->queue_max ? opts->queue_max : PACT_WORKER_QUEUE_DEFAULT;
    int spin_us =
        opts && opts->spin_us ? opts->spin_us : PACT_WORKER_SPIN_DEFAULT;
    uint64_t spin_ns = spin_us > 0 ? (uint64_t)spin_us * 1000 : 0;
    atomic_init(&w->refs, 2);
    atomic_init(&w->terminate, false);
    w->entry = entry;
    w->arg = arg;
    w->name = opts && opts->name ? opts->name : "pact-worker";
    w->user_ref = !(opts && opts->unref);
    w->ep[0].loop = loop;
    int rc = port_init(&w->ep[0], w, &w->ep[1], true, max, spin_ns);
    if (rc == 0)
        rc = port_init(&w->ep[1], w, &w->ep[0], false, max, spin_ns);
    if (rc == 0)
        rc = make_worker_loop(w);
    if (rc == 0)
        rc = watch(&w->ep[0]);
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
    w->next = s->head;
    if (s->head)
        s->head->prev = w;
    s->head = w;
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
    release_ring(&wp->backlog);
    release_ring(&wp->trash);
    release_ring(&wp->spare);
    ring_free(&wp->recvs);
    ring_free(&wp->writers);
    pthread_mutex_lock(&pp->in.lock);
    w->end_code = code;
    w->end_err = err;
    pp->in.ended = true;
    pthread_mutex_unlock(&pp->in.lock);
    notify(pp);
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
    notify(wp);
}

/* Terminate, wait for the thread a while, and release the parent's half;
 * a thread that does not end in time is left to free its half itself. */
static void close_worker(pact_worker *w)
{
    pact_port *p = &w->ep[0];
    p->poll.id = 0; /* close_all has cleared it */
    w->freed = true;
    drop_parent_ops(w);
    if (!w->reaped) {
        terminate(w);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += PACT_WORKER_CLOSE_WAIT_MS / 1000;
        until.tv_nsec += (PACT_WORKER_CLOSE_WAIT_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
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
        release(w);
}

static void svc_close_all(pact_loop *loop, void *state)
{
    (void)loop;
    struct workers *s = state;
    pact_worker *w = s->head;
    while (w) {
        pact_worker *next = w->next;
        if (!w->dead)
            close_worker(w);
        w = next;
    }
    pact_port *own = s->own;
    if (own) { /* a worker's loop: its end's operations go, unrun */
        own->poll.id = 0;
        own->poll_ref = false;
        own->on_msg = NULL;
        drop_waiters(&own->recvs);
        drop_waiters(&own->writers);
    }
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

static int wait_push(pact_worker *w, pact_exit_cb cb, void *ud, bool owned)
{
    struct waiter x = {(void (*)(void))cb, ud, owned};
    int rc = ring_push(&w->waits, &x, sizeof x);
    if (rc == 0 && w->reaped)
        self_wake(&w->ep[0]);
    update_ref(&w->ep[0]);
    return rc;
}

int pact_worker_wait(pact_worker *w, pact_exit_cb cb, void *ud)
{
    CHECK_WORKER(w, "pact_worker_wait");
    PACT_CHECK_ARG(cb, "pact_worker_wait");
    return wait_push(w, cb, ud, false);
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
    return wait_push(args, wait_settle, d, true);
}

pact_promise *pact_worker_wait_p(pact_worker *w)
{
    if (bad_worker(w, "pact_worker_wait_p"))
        return NULL;
    return pact__promisify(w->ep[0].loop, start_wait, w, "pact_worker_wait_p");
}

int pact_worker_ref(pact_worker *w)
{
    CHECK_WORKER(w, "pact_worker_ref");
    w->user_ref = true;
    update_ref(&w->ep[0]);
    return 0;
}

int pact_worker_unref(pact_worker *w)
{
    CHECK_WORKER(w, "pact_worker_unref");
    w->user_ref = false;
    update_ref(&w->ep[0]);
    return 0;
}

void pact_worker_free(pact_worker *w)
{
    if (bad_worker(w, "pact_worker_free"))
        return;
    w->freed = true;
    drop_parent_ops(w);
    if (!w->reaped) { /* reap() releases it */
        terminate(w);
        update_ref(&w->ep[0]);
        return;
    }
    if (w->ep[0].in_pass)
        w->dead = true;
    else
        release(w);
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

/* ---- ports -----------------------------------------------------------------
 */

#define CHECK_PORT(p, fn)                                                      \
    do {                                                                       \
        if (!(p))                                                              \
            return pact__misuse(fn, PACT_EINVAL, "port is NULL");              \
        PACT_CHECK_THREAD((p)->loop, fn);                                      \
        if ((p)->parent && (p)->w->freed)                                      \
            return pact__misuse_always(fn, PACT_EINVAL,                        \
                                       "the worker was freed");                \
    } while (0)

int pact_port_post(pact_port *port, pact_value *msg)
{
    static const char fn[] = "pact_port_post";
    CHECK_PORT(port, fn);
    PACT_CHECK_ARG(msg, fn);
    struct chan *c = &port->peer->in;
    /* a quick refusal when full, before any copy (inflight only falls
     * meanwhile: only this thread raises it) */
    if (atomic_load_explicit(&c->inflight, memory_order_relaxed) >= c->max) {
        pthread_mutex_lock(&c->lock);
        bool closed = c->closed;
        pthread_mutex_unlock(&c->lock);
        return closed ? PACT_EPIPE : PACT_EAGAIN;
    }
    json_t *copy;
    int rc = prepare(msg, &copy);
    if (rc < 0)
        return pact__misuse(fn, rc,
                            msg->kind == PACT_JSON
                                ? "the JSON value cannot be copied (a cycle?)"
                                : "this kind of value cannot be sent");
    pact_value v = *msg;
    if (copy)
        v.u.json = copy;
    bool first = false;
    pthread_mutex_lock(&c->lock);
    take_trash_locked(port, c);
    if (c->closed) {
        rc = PACT_EPIPE;
    } else if (atomic_load_explicit(&c->inflight, memory_order_relaxed) >=
               c->max) {
        rc = PACT_EAGAIN;
    } else if ((rc = ring_push(&c->q, &v, sizeof v)) == 0) {
        atomic_store_explicit(
            &c->inflight,
            atomic_load_explicit(&c->inflight, memory_order_relaxed) + 1,
            memory_order_relaxed);
        /* the receiver takes the whole queue at once: only a message that
         * finds it empty needs to tell it (one wake-up per batch) */
        first = c->q.len == 1;
    }
    pthread_mutex_unlock(&c->lock);
    ring_release_values(&port->spare);
    if (rc < 0) {
        json_decref(copy);
        return rc;
    }
    if (copy)
        json_decref(msg->u.json); /* the caller's reference: moved */
    *msg = pact_nothing();
    if (first)
        notify(port->peer);
    return 0;
}

int pact_port_post_json(pact_port *port, json_t *json)
{
    if (!json)
        return pact__misuse("pact_port_post_json", PACT_EINVAL, "json is NULL");
    pact_value v = pact_json(json);
    return pact_port_post(port, &v);
}

int pact_port_post_bytes(pact_port *port, void **data, size_t len)
{
    PACT_CHECK_ARG(data, "pact_port_post_bytes");
    pact_value v = pact_bytes(*data, len);
    int rc = pact_port_post(port, &v);
    if (rc == 0)
        *data = NULL;
    return rc;
}

/* A message or a completion may be due now: run a pass soon. */
static void poke(pact_port *p)
{
    if (p->backlog.len || p->peer_ended || p->writers.len)
        self_wake(p);
    update_ref(p);
}

int pact_port_on_message(pact_port *port, pact_msg_cb cb, void *ud)
{
    CHECK_PORT(port, "pact_port_on_message");
    port->on_msg = cb;
    port->on_msg_ud = ud;
    if (cb && port->backlog.len)
        self_wake(port);
    update_ref(port);
    return 0;
}

static int recv_push(pact_port *p, pact_msg_cb cb, void *ud, bool owned)
{
    if (!p->parent && (p->closing || p->term_seen))
        return PACT_ECANCELED;
    struct waiter r = {(void (*)(void))cb, ud, owned};
    int rc = ring_push(&p->recvs, &r, sizeof r);
    if (rc == 0)
        poke(p);
    return rc;
}

int pact_port_recv(pact_port *port, pact_msg_cb cb, void *ud)
{
    CHECK_PORT(port, "pact_port_recv");
    PACT_CHECK_ARG(cb, "pact_port_recv");
    return recv_push(port, cb, ud, false);
}

/* The promise twin's callback: the message moves into the promise. */
static void recv_settle(pact_error *err, pact_value *msg, void *ud)
{
    pact_deferred *d = ud;
    if (err) {
        pact_deferred_reject(d, pact_error_ref(err));
    } else {
        pact_value v = *msg;
        *msg = pact_nothing();
        pact_deferred_resolve(d, v);
    }
    pact_deferred_unref(d);
}

static int start_recv(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    return recv_push(args, recv_settle, d, true);
}

pact_promise *pact_port_recv_p(pact_port *port)
{
    if (!port) {
        pact__misuse("pact_port_recv_p", PACT_EINVAL, "port is NULL");
        return NULL;
    }
    if (port->parent && port->w->freed) {
        pact__misuse_always("pact_port_recv_p", PACT_EINVAL,
                            "the worker was freed");
        return NULL;
    }
    return pact__promisify(port->loop, start_recv, port, "pact_port_recv_p");
}

static int writable_push(pact_port *p, pact_cb cb, void *ud, bool owned)
{
    struct chan *c = &p->peer->in;
    pthread_mutex_lock(&c->lock);
    bool closed = c->closed;
    pthread_mutex_unlock(&c->lock);
    if (closed)
        return PACT_EPIPE;
    struct waiter x = {(void (*)(void))cb, ud, owned};
    int rc = ring_push(&p->writers, &x, sizeof x);
    if (rc == 0)
        self_wake(p); /* the pass looks at the room */
    return rc;
}

int pact_port_writable(pact_port *port, pact_cb cb, void *ud)
{
    CHECK_PORT(port, "pact_port_writable");
    PACT_CHECK_ARG(cb, "pact_port_writable");
    return writable_push(port, cb, ud, false);
}

static int start_writable(pact_loop *loop, void *args, pact_deferred *d)
{
    (void)loop;
    return writable_push(args, pact_deferred_cb, d, true);
}

pact_promise *pact_port_writable_p(pact_port *port)
{
    if (!port) {
        pact__misuse("pact_port_writable_p", PACT_EINVAL, "port is NULL");
        return NULL;
    }
    if (port->parent && port->w->freed) {
        pact__misuse_always("pact_port_writable_p", PACT_EINVAL,
                            "the worker was freed");
        return NULL;
    }
    return pact__promisify(port->loop, start_writable, port,
                           "pact_port_writable_p");
}

size_t pact_port_pending(const pact_port *port)
{
    return port ? atomic_load_explicit(&port->peer->in.inflight,
                                       memory_order_relaxed)
                : 0;
}
