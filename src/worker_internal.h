/* Private to the workers: worker.c (the threads, their lifetime, the
 * parent's API), port.c (the channel, the ports' API) and waiter.c (the
 * waits' abort tokens and cancellation).
 *
 * Each end (struct pact_port) owns an inbox (struct chan): a FIFO of
 * messages under its own lock, filled by the other thread, with a bound
 * counted in messages posted and not yet consumed. Each end also owns a
 * wake-up object (src/wake.h: an eventfd, else a pipe), watched by a poll
 * handle on its loop. A sender appends under the lock and wakes the
 * receiver only when it finds the queue empty: a sequence counter says
 * something happened, a flag says the object was signalled and not drained, so
 * a burst of posts costs one write and the receiver takes the whole queue per
 * wake-up (rule 17). A receiver that is awake (in its delivery pass) needs no
 * write at all, and one that has just delivered messages spins briefly for the
 * next before its loop sleeps: the wake-up of a sleeping thread costs more than
 * a microsecond, a spin that catches a reply a fraction of that.
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
#ifndef PACT_WORKER_INTERNAL_H
#define PACT_WORKER_INTERNAL_H

#if defined(PACT__LAYER) && PACT__LAYER < 5
#error                                                                         \
    "worker_internal.h is layer 5 (services): a lower layer must not include it"
#endif

#include <jansson.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pact/worker.h"
#include "symbol.h"

/* Rule 18: a JSON tree handed to another thread is reference-counted there
 * (the receiver's decref, a reader's incref) while the sender may still
 * drop references to nodes it shared: only atomic reference counts make
 * that safe. */
#ifndef JANSSON_THREAD_SAFE_REFCOUNT
#error "pact's workers need jansson built with atomic reference counts"
#endif

/* ---- rings ----------------------------------------------------------------
 * A growable FIFO of fixed-size items (cap a power of two); used for
 * messages, receives and waiters, so that none costs an allocation. */

struct ring {
    unsigned char *v;
    size_t head, len, cap;
};

static inline int ring_push(struct ring *r, const void *item, size_t size)
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

static inline bool ring_pop(struct ring *r, void *out, size_t size)
{
    if (!r->len)
        return false;
    memcpy(out, r->v + r->head * size, size);
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
    return true;
}

/* The @p i th item from the head (i < len). */
static inline void *ring_at(const struct ring *r, size_t i, size_t size)
{
    return r->v + ((r->head + i) & (r->cap - 1)) * size;
}

/* Remove the @p i th item, keeping the order of the others. */
static inline void ring_remove_at(struct ring *r, size_t i, size_t size)
{
    for (; i + 1 < r->len; i++)
        memcpy(ring_at(r, i, size), ring_at(r, i + 1, size), size);
    r->len--;
}

/* Append all of @p from to @p to (from is emptied); swaps when @p to is
 * empty, which is the common case and costs nothing. */
static inline int ring_move(struct ring *to, struct ring *from, size_t size)
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

static inline void ring_release_values(struct ring *r)
{
    pact_value v;
    while (ring_pop(r, &v, sizeof v))
        pact_value_release(&v);
}

static inline void ring_free(struct ring *r)
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

/* What a waiter waits for: which callback type its fn is. */
enum waiter_kind {
    W_RECV,     /* pact_msg_cb */
    W_WRITABLE, /* pact_cb */
    W_EXIT,     /* pact_exit_cb */
};

/* Waiters, oldest first (pending receives, waits for room, waits for a
 * worker's end). */
struct wlist {
    struct pact__list head;
    size_t len;
};

static inline void wlist_init(struct wlist *l)
{
    pact__list_init(&l->head);
    l->len = 0;
}

/* A pending receive, or a waiter for room or for the worker's end: a
 * pending-operation record (op.c), so that abort tokens,
 * pact_loop_close_all and pact_worker_free cancel it as everything else. */
struct waiter {
    struct pact__op op;
    struct pact__list link; /* in *list while waiting */
    struct wlist *list;
    pact_port *port;  /* whose liveness its list counts toward */
    void (*fn)(void); /* by kind */
    void *ud;
    pact_fn ud_drop;  /* releases ud if never called (a twin's deferred) */
    uint64_t seq;     /* order of registration on its loop (see fire) */
    const void *site; /* the program's call that started it (symbol.h) */
    uint8_t kind;     /* enum waiter_kind */
};

/* What the promise twins pass to their start functions. */
struct wait_args {
    void *target; /* the port, or the worker */
    const pact_wait_opts *opts;
    const void *site; /* the program's call of the twin */
};

struct pact_port {
    /* ---- the thread of the port's loop only ---- */
    pact_loop *loop;
    pact_worker *w;
    pact_port *peer;
    struct workers *svc;  /* the service state of loop */
    bool parent;          /* the parent's end */
    bool poll_ref;        /* the poll handle keeps the loop alive */
    bool in_pass;         /* inside pass() */
    bool self;            /* a completion of ours waits for a pass */
    bool peer_ended;      /* saw in.ended with an empty queue */
    bool term_seen;       /* the worker's end noticed termination */
    bool closing;         /* the worker's end is shutting down */
    pact_handle poll;     /* the fd's watcher on loop */
    struct ring backlog;  /* pact_value: taken from in, not consumed */
    struct wlist recvs;   /* pending receives */
    struct wlist writers; /* waiting for room */
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
    atomic_bool signalled;                /* wake signalled, not drained */
    atomic_bool awake; /* in a pass: it looks at seq again before sleeping */
    atomic_int cpu;    /* the core it last ran a pass or a spin on (a hint) */
    struct pact__wake wake; /* signalled by either thread */
    struct chan in;
};

struct workers; /* a loop's service state */

struct pact_worker {
    struct pact_port ep[2]; /* [0] the parent's, [1] the worker's */
    atomic_int refs;        /* the parent's handle and the thread */
    atomic_bool terminate;  /* asked to terminate */

    /* the parent loop's thread */
    struct workers *svc;
    struct pact__list link; /* in svc->all */
    pthread_t thread;
    struct wlist waits; /* pact_worker_wait */
    bool user_ref;      /* pact_worker_ref / unref */
    bool freed;         /* the handle was released: reap, then release */
    bool reaped;        /* the thread was joined (or left) */
    bool dead;          /* release at the end of the current pass */
    int code;           /* after reaped */
    pact_error *err;    /* after reaped */
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
    pact_loop *loop;
    struct pact__list all; /* pact_worker.link: not released, newest first */
    size_t n;
    pact_port *own; /* on a worker's loop: the worker's end */
    uint64_t wseq;  /* numbers the waiters made on this loop */
    char why[160];
};

/* ---- port.c ----------------------------------------------------------------
 */

int pact__port_init(pact_port *p, pact_worker *w, pact_port *peer, bool parent,
                    size_t max, uint64_t spin_ns);
void pact__port_destroy(pact_port *p);
/* Watch the port's fd on its loop. */
int pact__port_watch(pact_port *p);
/* Tell @p p something happened (any thread). */
void pact__port_notify(pact_port *p);
/* Have a pass run on the port's own loop soon (its thread). */
void pact__port_self_wake(pact_port *p);
/* Let the port keep its loop alive as its state says. */
void pact__port_update_ref(pact_port *p);
void pact__ring_release(struct ring *r);

/* ---- waiter.c --------------------------------------------------------------
 */

/* Add a waiter to @p r (one of @p port's lists, or its worker's waits),
 * with @p opts' abort token if any: a token aborted already makes its
 * cancellation due at once. @p ud_drop (may be NULL) releases @p ud if the
 * loop is freed before the call. @p site: the program's call that started
 * the wait (its error's "started at"). @return 0 or PACT_ENOMEM (nothing
 * added). */
int pact__waiter_add(pact_port *port, struct wlist *r, int kind,
                     void (*fn)(void), void *ud, pact_fn ud_drop,
                     const pact_wait_opts *opts, const void *site);
/* Take the first waiter of @p r registered before @p limit (a value of
 * svc->wseq read earlier), so that a walk that calls back never reaches the
 * waiters its callbacks add: its call (fn, ud, kind) goes to @p out, its
 * record ends. @return whether one was taken. */
bool pact__waiter_pop(struct wlist *r, uint64_t limit, struct waiter *out);
/* Call @p x back with @p err (and, by kind, @p msg or @p code). */
void pact__waiter_call(const struct waiter *x, pact_error *err, pact_value *msg,
                       int code);
/* Cancel every waiter of @p r with @p err (borrowed): each is called back
 * on the next tick, never inside the call that cancels. */
void pact__waiters_cancel(struct wlist *r, pact_error *err);

/* ---- worker.c --------------------------------------------------------------
 */

/* The worker reported its end: join it, report to the waits. */
void pact__worker_reap(pact_worker *w);
void pact__worker_fire_waits(pact_worker *w);
/* The parent lets go of its half. */
void pact__worker_release(pact_worker *w);

#endif
